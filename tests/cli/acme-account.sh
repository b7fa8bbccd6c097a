#!/bin/sh
# ACME accounts and certificates after issuance, against Debian's pebble on
# 127.0.0.1: External Account Binding (externalAccountBindingRequired),
# alternate chains (PEBBLE_ALTERNATE_ROOTS) with --preferred-chain, cert
# revoke by the account key and by the certificate's own token key (judged
# at pebble's /cert-status-by-serial/), the account found with
# onlyReturnExisting, key rollover and deactivation; and ARI (RFC 9773)
# through tests/tools/ari-proxy.py, a stand-in, as pebble 2.4 has none.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/acme.sh"

submit() { _ca=$1; shift; "$P11KM" req submit "$T/web.csr" --ca "$_ca" --webroot "$T/www" --config-dir "$CFG" "$@"; }
submitq() { _ca=$1; shift; "$P11KM" -q req submit "$T/web.csr" --ca "$_ca" --webroot "$T/www" --config-dir "$CFG" "$@"; }
add() { _n=$1; shift; "$P11KM" -q ca add "$_n" --kind acme --directory "$DIRURL" --ca-file "$T/tls/root.pem" \
	--agree-tos --config-dir "$CFG" "$@"; }

setup() {
	need pebble openssl pkcs11-tool python3 curl
	acme_setup acct

	# the HMAC key the CA hands out with its key id (base64url of 32 bytes)
	EAB=$(openssl rand 32 | basenc --base64url | tr -d '=\n')
	(umask 077; printf '%s\n' "$EAB" > "$T/eab.key"; openssl rand 32 | basenc --base64url | tr -d '=\n' > "$T/eab-wrong.key")
	HTTPPORT=$(free_port)
	PNAME=pebble
	PEBBLE_ENV="PEBBLE_VA_ALWAYS_VALID=1 PEBBLE_ALTERNATE_ROOTS=1 PEBBLE_WFE_NONCEREJECT=0"
	PEBBLE_JSON=", \"externalAccountMACKeys\": {\"kid-1\": \"$EAB\"}"
	PEBBLE_EAB=true
	check "pebble (EAB required, two chains) starts" start_server "$T/pebble.srv" 2 start_pebble
	P=${PORTS%% *}
	M=${PORTS#* }
	DIRURL="https://127.0.0.1:$P/dir"
	pebble_get "$M" /roots/0 > "$T/root0.pem"
	pebble_get "$M" /roots/1 > "$T/root1.pem"
	CN1=$(openssl x509 -in "$T/root1.pem" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p')
	CN0=$(openssl x509 -in "$T/root0.pem" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= *//p')
	[ -n "$CN1" ] && [ "$CN1" != "$CN0" ] && ok "pebble has two roots ('$CN0', '$CN1')" || not_ok "pebble roots: '$CN0' '$CN1'"

	check "key generate web" "$P11KM" key generate "$TOK" --type ec:p256 --label web --pin-source "file:$PIN"
	check "req new web" "$P11KM" req new "$TOK;object=web;type=private" --subject "CN=web.example.test" \
		--san DNS:web.example.test -o "$T/web.csr" --pin-source "file:$PIN"
	mkdir -p "$T/www"
}

# External Account Binding
test_eab() {
	check_fails "ca add: --eab-kid without --eab-hmac-source: exit 2" 2 add x --eab-kid kid-1
	check_fails "ca add: an EAB secret given as a value, not a source: exit 2" 2 add x --eab-kid kid-1 \
		--eab-hmac-source "$EAB"
	check "ca add noeab" add noeab
	check_fails "no EAB where the CA requires it: exit 1" 1 submitq noeab -o "$T/none.pem"
	check_one_line_error "... one line with the CA's reason" "externalAccountRequired"
	check "ca add badeab (another HMAC key)" add badeab --eab-kid kid-1 --eab-hmac-source "file:$T/eab-wrong.key"
	check_fails "a wrong EAB HMAC key: exit 1" 1 submitq badeab -o "$T/none.pem"
	check_one_line_error "... one line" "the CA refused the account"
	check "ca add eab --eab-kid kid-1 --eab-hmac-source file:... (relative path)" sh -c \
		"cd '$T' && '$P11KM' -q ca add eab --kind acme --directory '$DIRURL' --ca-file tls/root.pem \
	--agree-tos --eab-kid kid-1 --eab-hmac-source file:eab.key --config-dir '$CFG'"
	check_eq "the profile holds the source as an absolute reference" \
		"$(json_get "$CFG/eab.json" 'd["eab_hmac_source"]')" "file:$T/eab.key"
	check_nogrep "the profile holds no HMAC key" "$EAB" "$CFG/eab.json"
	check "req submit with EAB" submit eab --json -o "$T/web0.pem"
	cp "$T/out" "$T/submit-eab.json"
	check_eq "--json: the binding is a step" "$(json_get "$T/submit-eab.json" '[s["detail"] for s in d["steps"] if s["step"]=="eab"]')" "['kid-1']"
	ACCT=$(json_get "$T/submit-eab.json" '[s["detail"] for s in d["steps"] if s["step"]=="account"][0]')
	echo "# order with EAB (new account): $(json_get "$T/submit-eab.json" 'd["signatures"]') JWS signatures"
	check "the default chain verifies against root 0" openssl verify -CAfile "$T/root0.pem" -untrusted "$T/web0.pem" "$T/web0.pem"
}

# alternate chains
test_alternate_chains() {
	check "req submit --preferred-chain '$CN1'" submit eab --json --preferred-chain "$CN1" -o "$T/web1.pem"
	cp "$T/out" "$T/submit-alt.json"
	echo "# order with --preferred-chain (one alternate fetched): $(json_get "$T/submit-alt.json" 'd["signatures"]') JWS signatures"
	check "the chain taken verifies against root 1" openssl verify -CAfile "$T/root1.pem" -untrusted "$T/web1.pem" "$T/web1.pem"
	check_fails "... and not against root 0" 2 openssl verify -CAfile "$T/root0.pem" -untrusted "$T/web1.pem" "$T/web1.pem"
	check_eq "--json: the chain step names its top issuer" \
		"$(json_get "$T/submit-alt.json" '[s["detail"] for s in d["steps"] if s["step"]=="chain"]')" "['$CN1']"
	check "req submit --preferred-chain '$CN0' (the default chain)" submit eab --preferred-chain "$CN0" -o "$T/web2.pem"
	check "... verifies against root 0" openssl verify -CAfile "$T/root0.pem" -untrusted "$T/web2.pem" "$T/web2.pem"
	check "req submit --preferred-chain 'No Such CA': the default chain, with a note" submit eab \
		--preferred-chain "No Such CA" -o "$T/web3.pem"
	check_grep "... the note says so" "no chain .* ends below 'No Such CA'" "$T/err"
	check "... the default chain" openssl verify -CAfile "$T/root0.pem" -untrusted "$T/web3.pem" "$T/web3.pem"
}

# the account, found again (never cached)
test_account_found_again() {
	check "ca account show eab" "$P11KM" --json ca account show eab --config-dir "$CFG"
	check_eq "onlyReturnExisting finds the account of the submit" "$(json_get "$T/out" 'd["account"]')" "$ACCT"
	check "ca add fresh (a new key, never used)" "$P11KM" -q ca add fresh --kind acme --directory "$DIRURL" \
		--ca-file "$T/tls/root.pem" --config-dir "$CFG"
	check_fails "ca account show before the key exists: exit 4" 4 "$P11KM" ca account show fresh --config-dir "$CFG"
	check_one_line_error "... one line" "does not exist yet"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/unused.key" 2>/dev/null && chmod 600 "$T/unused.key"
	check "ca add unused (a key the CA never saw)" "$P11KM" -q ca add unused --kind acme --directory "$DIRURL" \
		--ca-file "$T/tls/root.pem" --account-key "$T/unused.key" --config-dir "$CFG"
	check_fails "ca account show of a key without an account: exit 4" 4 "$P11KM" ca account show unused --config-dir "$CFG"
	check_one_line_error "... one line" "no account for this account key"
	check_fails "ca account frobnicate: exit 2" 2 "$P11KM" ca account frobnicate eab --config-dir "$CFG"
	check_fails "ca account show --new-key: exit 2" 2 "$P11KM" ca account show eab --new-key "$T/k" --config-dir "$CFG"
}

serial_of() { openssl x509 -in "$1" -noout -serial | sed 's/^serial=//' | tr 'A-F' 'a-f' | sed 's/^0*//'; }
status_of() { pebble_get "$M" "/cert-status-by-serial/$(serial_of "$1")" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Status"])'; }

# revocation
test_revocation() {
	check_eq "pebble: web0 is valid before" "$(status_of "$T/web0.pem")" "Valid"
	check_fails "cert revoke --reason nonsense: exit 2" 2 "$P11KM" cert revoke "$T/web0.pem" --ca eab \
		--reason nonsense --config-dir "$CFG"
	check_fails "cert revoke without --ca: exit 2" 2 "$P11KM" cert revoke "$T/web0.pem" --config-dir "$CFG"
	check "cert revoke FILE --ca eab --reason keyCompromise (the account key)" "$P11KM" --json cert revoke \
		"$T/web0.pem" --ca eab --reason keyCompromise --config-dir "$CFG"
	echo "# cert revoke by the account key: $(json_get "$T/out" 'd["signatures"]') JWS signatures"
	check_eq "pebble: web0 is revoked" "$(status_of "$T/web0.pem")" "Revoked"
	check_eq "... for keyCompromise" "$(pebble_get "$M" "/cert-status-by-serial/$(serial_of "$T/web0.pem")" | \
		python3 -c 'import json,sys; print(json.load(sys.stdin)["Reason"])')" "1"
	check_fails "revoking it again: exit 1, the CA's reason in one line" 1 "$P11KM" cert revoke "$T/web0.pem" \
		--ca eab --config-dir "$CFG"
	check_one_line_error "... one line" "alreadyRevoked"
	check_eq "pebble: web2 is valid" "$(status_of "$T/web2.pem")" "Valid"
	check "cert install web2 onto the token" "$P11KM" -q cert install "$T/web2.pem" "$TOK;object=web;type=private" \
		--ca-file "$T/root0.pem" --pin-source "file:$PIN"
	check "key generate other" "$P11KM" key generate "$TOK" --type ec:p256 --label other --pin-source "file:$PIN"
	check_fails "cert revoke --cert-key of another key: exit 2, nothing signed" 2 "$P11KM" cert revoke \
		"$TOK;object=web;type=cert" --ca eab --cert-key "$TOK;object=other;type=private" \
		--pin-source "file:$PIN" --config-dir "$CFG"
	check_one_line_error "... one line" "not the certificate's key"
	check_eq "pebble: web2 is still valid" "$(status_of "$T/web2.pem")" "Valid"
	check "cert revoke URI --cert-key (the certificate's token key, no account)" "$P11KM" --json cert revoke \
		"$TOK;object=web;type=cert" --ca fresh --cert-key "$TOK;object=web;type=private" --reason superseded \
		--pin-source "file:$PIN" --config-dir "$CFG"
	check_eq "... one JWS signature" "$(json_get "$T/out" 'd["signatures"]')" "1"
	check_eq "pebble: web2 is revoked" "$(status_of "$T/web2.pem")" "Revoked"
	[ ! -e "$CFG/fresh.key" ] && ok "revoking by the certificate's key made no account key" || not_ok "fresh.key made"
}

ari_start() { python3 "$top_srcdir/tests/tools/ari-proxy.py" "$1" "$T/tls/cert.pem" "$T/tls/key.pem" \
	"$DIRURL" "https://127.0.0.1:$M" "$T/tls/root.pem" > "$T/ari.log" 2>&1 & SERVER_PID=$!; cleanup_add "kill $SERVER_PID"; }

# ARI through the stand-in proxy
test_ari() {
	check "the ARI proxy starts" start_server "$T/ari.srv" 1 ari_start
	check "ca add ari (the proxy's directory)" "$P11KM" -q ca add ari --kind acme --directory \
		"https://127.0.0.1:$PORT/dir" --ca-file "$T/tls/root.pem" --config-dir "$CFG"
	check "ca renewal-info ari web3.pem" "$P11KM" --json ca renewal-info ari "$T/web3.pem" --config-dir "$CFG"
	cp "$T/out" "$T/ari.json"
	want=$(python3 - "$T/web3.pem" <<'PY'
import sys, datetime
from cryptography import x509
c = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
nb, na = c.not_valid_before_utc, c.not_valid_after_utc
e = lambda t: int(t.timestamp())
print(e(nb + (na - nb) * 2 / 3), e(na - (na - nb) / 10))
PY
	)
	check_eq "the window is the one the proxy suggests for that certificate" \
		"$(json_get "$T/ari.json" '"%d %d" % (d["start"], d["end"])')" "$want"
	check_eq "... with its Retry-After" "$(json_get "$T/ari.json" 'd["retry_after"]')" "21600"
	check "ca renewal-info of the token's certificate (text)" "$P11KM" ca renewal-info ari \
		"$TOK;object=web;type=cert" --config-dir "$CFG"
	check_grep "... start and end in RFC 3339" "^end: [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$" "$T/out"
	check_fails "a certificate without an authority key identifier: exit 2" 2 "$P11KM" ca renewal-info ari \
		"$T/root1.pem" --config-dir "$CFG"
	check_one_line_error "... one line" "no authority key identifier"
	check_fails "a certificate the CA did not issue: exit 1" 1 "$P11KM" ca renewal-info ari "$T/tls/cert.pem" --config-dir "$CFG"
	check_one_line_error "... one line with the CA's answer" "no certificate of that serial"
	for mode in bad-date backwards no-window; do
		"$P11KM" -q ca add "ari-$mode" --kind acme --directory "https://127.0.0.1:$PORT/$mode/dir" \
			--ca-file "$T/tls/root.pem" --config-dir "$CFG"
		check_fails "renewal information that is $mode: exit 2" 2 "$P11KM" ca renewal-info "ari-$mode" \
			"$T/web3.pem" --config-dir "$CFG"
		check_one_line_error "... one line" "suggestedWindow|ends before it starts"
		check_no_stdout "... and no partial output"
	done
	# the tracker: ARI moves the due time earlier, never later
	"$P11KM" -q ca add ari-now --kind acme --directory "https://127.0.0.1:$PORT/now/dir" \
		--ca-file "$T/tls/root.pem" --config-dir "$CFG"
	check "track add the token's certificate (renewed through ari-now)" "$P11KM" track add \
		"$TOK;object=web;type=cert" --state-dir "$T/st" --pin-source "file:$PIN" --ca ari-now --webroot "$T/www"
	check "renew --dry-run: due, as the CA's window is open now" "$P11KM" --verbose renew --all --dry-run \
		--state-dir "$T/st" --config-dir "$CFG"
	check_grep "... due" "^web: due" "$T/out"
	check_grep "... by the renewal window (ARI)" "renewal window \(ARI\) starts" "$T/err"
	check "track add --force: the same certificate through ari (the window in two thirds of its life)" \
		"$P11KM" --force track add "$TOK;object=web;type=cert" --state-dir "$T/st" --pin-source "file:$PIN" \
		--ca ari --webroot "$T/www"
	check "renew --dry-run: not due" "$P11KM" renew --all --dry-run --state-dir "$T/st" --config-dir "$CFG"
	check_grep "... not due" "^web: not due" "$T/out"
	printf '#!/bin/sh\nexit 6\n' > "$T/helper" && chmod 755 "$T/helper"
	check "ca add h --kind helper" "$P11KM" -q ca add h --kind helper --command "$T/helper" --config-dir "$CFG"
	check_fails "ca renewal-info of a profile that is not ACME: exit 2" 2 "$P11KM" ca renewal-info h \
		"$T/web3.pem" --config-dir "$CFG"
	check_one_line_error "... one line" "not an ACME CA"
	check_fails "cert revoke at a profile that is not ACME: exit 2" 2 "$P11KM" cert revoke "$T/web3.pem" \
		--ca h --config-dir "$CFG"
	check_fails "ca account show of a profile that is not ACME: exit 2" 2 "$P11KM" ca account show h \
		--config-dir "$CFG"
	check_fails "a directory without renewalInfo (pebble itself): exit 1" 1 "$P11KM" ca renewal-info eab \
		"$T/web3.pem" --config-dir "$CFG"
	check_one_line_error "... one line saying so" "no renewalInfo"
}

# key rollover and deactivation
test_rollover_deactivation() {
	cp "$CFG/eab.json" "$T/eab-old.json"
	check "ca account rollover eab --new-key (a new file key)" "$P11KM" --json ca account rollover eab \
		--new-key "$T/new.key" --config-dir "$CFG"
	check_eq "the same account" "$(json_get "$T/out" 'd["account"]')" "$ACCT"
	echo "# ca account rollover: $(json_get "$T/out" 'd["signatures"]') JWS signatures"
	check_eq "the profile names the new key" "$(json_get "$CFG/eab.json" 'd["account_key"]')" "$T/new.key"
	check_eq "the new key file is 0600" "$(stat -c %a "$T/new.key")" "600"
	check "ca account show finds the account by the new key" "$P11KM" --json ca account show eab --config-dir "$CFG"
	check_eq "... the same URL" "$(json_get "$T/out" 'd["account"]')" "$ACCT"
	cp "$T/eab-old.json" "$CFG/old.json"
	check_fails "the old key has no account any more: exit 4" 4 "$P11KM" ca account show old --config-dir "$CFG"
	check "pkcs11-tool: an account key pair on the token" pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label acct \
		--login --pin "$(cat "$PIN")" --keypairgen --key-type EC:prime256v1 --label acctkey --id 0b
	check "ca account rollover eab --new-key (onto the token)" "$P11KM" ca account rollover eab \
		--new-key "$TOK;object=acctkey;type=private" --pin-source "file:$PIN" --config-dir "$CFG"
	check "req submit with the rolled-over token key" submit eab --pin-source "file:$PIN" -o "$T/web4.pem"
	check "ca account deactivate eab" "$P11KM" --json ca account deactivate eab --pin-source "file:$PIN" --config-dir "$CFG"
	check_eq "... deactivated" "$(json_get "$T/out" 'd["status"]')" "deactivated"
	check_fails "a deactivated account orders nothing: exit 1" 1 submit eab --pin-source "file:$PIN" -o "$T/none.pem"
	check_one_line_error "... one line"
	[ ! -e "$T/none.pem" ] && ok "no refused run wrote a chain" || not_ok "$T/none.pem written"
}

run_tests
