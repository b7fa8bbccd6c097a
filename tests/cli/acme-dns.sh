#!/bin/sh
# ACME validation for real against Debian's pebble on 127.0.0.1, the names
# resolved by pebble-challtestsrv (its DNS answers 127.0.0.1 for every name):
# dns-01 through a --dns-hook that calls challtestsrv's /set-txt and
# /clear-txt (a wildcard name too), the hook's failures and a wrong record,
# and http-01 of a DNS name against the built-in --standalone responder;
# pebble rejects 30% of good nonces here (badNonce retried, bounded).
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/acme.sh"

# pebble-challtestsrv: DNS on the first port (udp and tcp), management on the second
start_cts() {
	pebble-challtestsrv -dns01 "127.0.0.1:$1" -management "127.0.0.1:$2" -http01 "" -https01 "" \
		-tlsalpn01 "" -defaultIPv4 127.0.0.1 -defaultIPv6 "" > "$T/cts.log" 2>&1 &
	SERVER_PID=$!
	cleanup_add "kill $SERVER_PID"
}

setup() {
	need pebble pebble-challtestsrv openssl python3 curl
	acme_setup dns

	check "pebble-challtestsrv starts" start_server "$T/cts.srv" 2 start_cts
	DNSPORT=${PORTS%% *}
	CM=${PORTS#* }
	HTTPPORT=$(free_port)
	PNAME=pebble
	PEBBLE_ENV="PEBBLE_WFE_NONCEREJECT=30 PEBBLE_AUTHZREUSE=0"
	PEBBLE_DNS=127.0.0.1:$DNSPORT
	pebble_up "pebble (real validation, 30% nonces rejected) starts"
	check "ca add p (file account key)" "$P11KM" -q ca add p --kind acme --directory "https://127.0.0.1:$P/dir" \
		--ca-file "$T/tls/root.pem" --agree-tos --config-dir "$CFG"

	check "key generate web" "$P11KM" key generate "$TOK" --type ec:p256 --label web --pin-source "file:$PIN"
	check "req new: a name and a wildcard" "$P11KM" req new "$TOK;object=web;type=private" \
		--subject "CN=dns.example.test" --san DNS:dns.example.test --san "DNS:*.wild.example.test" \
		-o "$T/dns.csr" --pin-source "file:$PIN"
}

SUB() { "$P11KM" --json --verbose req submit "$T/dns.csr" --ca p --config-dir "$CFG" "$@"; }
# SUBE VAR=VALUE ARGS...: the same with VAR in the hook's environment
SUBE() { _e=$1; shift; env "$_e" "$P11KM" --json --verbose req submit "$T/dns.csr" --ca p --config-dir "$CFG" "$@"; }

# dns-01 through a --dns-hook
# the hook: no shell between p11km and it; its arguments as given; the record in its environment
test_dns01_hook() {
	cat > "$T/hook" <<H
#!/bin/sh
echo "\$P11KM_ACME_ACTION \$P11KM_ACME_IDENTIFIER \$P11KM_ACME_RECORD \$P11KM_ACME_VALUE args=\$*" >> "$T/hook.log"
env | grep -c -e '^ACME_PIN=' -e "$PIN" >> "$T/hook.env"
case \$P11KM_ACME_ACTION in
present) what=set-txt; body="{\"host\":\"\$P11KM_ACME_RECORD\",\"value\":\"\${HOOK_VALUE:-\$P11KM_ACME_VALUE}\"}" ;;
cleanup) what=clear-txt; body="{\"host\":\"\$P11KM_ACME_RECORD\"}" ;;
*) exit 9 ;;
esac
# HOOK_FAIL=present2: the second record cannot be set
[ "\${HOOK_FAIL:-}" = "\$P11KM_ACME_ACTION\$(grep -c "^\$P11KM_ACME_ACTION" "$T/hook.log")" ] && \
	{ echo "hook: refused by the test" >&2; exit 3; }
curl -sf -d "\$body" "http://127.0.0.1:$CM/\$what"
H
	chmod 755 "$T/hook"

	check_fails "a CA name check before anything: --dns-hook with --webroot: exit 2" 2 SUB --dns-hook "$T/hook" \
		--webroot "$T" -o "$T/none.pem"
	check "req submit --dns-hook (dns-01 for a name and a wildcard; a PIN in env:ACME_PIN)" SUBE \
		"ACME_PIN=$(cat "$PIN")" --pin-source env:ACME_PIN --dns-hook "$T/hook one two" -o "$T/dns-chain.pem"
	cp "$T/out" "$T/dns1.json"; cp "$T/err" "$T/dns1.err"
	BAD=$(json_get "$T/dns1.json" 'd["bad_nonces"]')
	echo "# dns-01 order, 2 names: $(json_get "$T/dns1.json" 'd["signatures"]') JWS signatures ($BAD badNonce retries among them)"
	check "the chain verifies against pebble's root" openssl verify -CAfile "$T/root.pem" -untrusted \
		"$T/dns-chain.pem" "$T/dns-chain.pem"
	openssl x509 -in "$T/dns-chain.pem" -noout -ext subjectAltName > "$T/san" 2>/dev/null
	check_grep "the certificate names the wildcard" "DNS:\*\.wild\.example\.test" "$T/san"
	check_eq "the hook: present then cleanup, for each record" "$(cut -d' ' -f1,3 "$T/hook.log" | sort | tr '\n' ' ')" \
		"cleanup _acme-challenge.dns.example.test. cleanup _acme-challenge.wild.example.test. present _acme-challenge.dns.example.test. present _acme-challenge.wild.example.test. "
	check_grep "... its arguments as given, no shell" "args=one two$" "$T/hook.log"
	check_grep "... the wildcard is named as such" "^present \*\.wild\.example\.test " "$T/hook.log"
	check_eq "... neither the PIN's variable (ACME_PIN) nor the PIN file in its environment" "$(sort -u "$T/hook.env")" "0"
	# the value is base64url(SHA-256(token "." thumbprint)): 43 characters
	check_grep "... a TXT value of 43 base64url characters" "^present dns\.example\.test _acme-challenge\.dns\.example\.test\. [A-Za-z0-9_-]{43} " "$T/hook.log"
}

# the hook's failures and a wrong record
test_hook_failures() {
	: > "$T/hook.log"
	check_fails "a hook that fails to set the second record: exit 1" 1 SUBE HOOK_FAIL=present2 --dns-hook "$T/hook" -o "$T/none.pem"
	check_grep "... the hook's own words in the error" "^p11km: the dns hook \(present .*refused by the test" "$T/err"
	check_eq "... the record set before was cleaned up (present/cleanup)" \
		"$(grep -c '^present' "$T/hook.log")/$(grep -c '^cleanup' "$T/hook.log")" "2/1"
	: > "$T/hook.log"
	check_fails "a hook that sets a wrong value: the CA's refusal, exit 1" 1 SUBE HOOK_VALUE=wrong-value \
		--dns-hook "$T/hook" -o "$T/none.pem"
	check_grep "... the dns-01 validation problem in one line" "^p11km: the CA refused the dns-01 validation of .*unauthorized" "$T/err"
	check_eq "... and both records cleaned up" "$(grep -c '^cleanup' "$T/hook.log")" "$(grep -c '^present' "$T/hook.log")"
	check_fails "a hook that is not there: exit 1" 1 SUB --dns-hook "$T/no-such-hook" -o "$T/none.pem"
	[ ! -e "$T/none.pem" ] && ok "no refused run wrote a chain" || not_ok "$T/none.pem written"
}

# http-01 of a DNS name: pebble resolves it through challtestsrv and fetches from the responder
test_http01_standalone() {
	check "req new http.example.test" "$P11KM" req new "$TOK;object=web;type=private" --subject "CN=http.example.test" \
		--san DNS:http.example.test -o "$T/http.csr" --pin-source "file:$PIN"
	check "req submit --standalone (http-01 validated for real)" "$P11KM" --json --verbose req submit "$T/http.csr" \
		--ca p --standalone "127.0.0.1:$HTTPPORT" --config-dir "$CFG" -o "$T/http-chain.pem"
	cp "$T/out" "$T/http.json"
	check_grep "pebble validated http.example.test" "validated: http.example.test" "$T/err"
	check "the chain verifies" openssl verify -CAfile "$T/root.pem" -untrusted "$T/http-chain.pem" "$T/http-chain.pem"
	BAD=$((BAD + $(json_get "$T/http.json" 'd["bad_nonces"]')))
	[ "$BAD" -gt 0 ] && ok "badNonce answers were retried ($BAD in these orders)" || not_ok "no badNonce retried"
	echo "# badNonce retries in two orders at 30% rejection: $BAD"
}

run_tests
