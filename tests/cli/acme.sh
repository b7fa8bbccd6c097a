#!/bin/sh
# ca add/list/show/remove and req submit against Debian's pebble (ACME) on
# 127.0.0.1: an account key as a file and on SoftHSM2, http-01 through
# --webroot (PEBBLE_VA_ALWAYS_VALID) and really validated through the
# built-in --standalone responder, nonce rejection left at pebble's default
# (5%), the chain installed with --install and judged by openssl and
# pkcs11-tool; and a misbehaving CA (tests/tools/fake-ca.py) whose every
# fault is one line and changes nothing.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/acme.sh"

setup() {
	need pebble openssl pkcs11-tool python3 curl
	acme_setup acme
}

# --- CA profiles ---------------------------------------------------------
test_ca_profiles() {
	check_fails "ca add --kind cmp with an ACME directory, no --url: usage (exit 2)" 2 "$P11KM" ca add x \
		--kind cmp --directory https://127.0.0.1:1/dir --ca-file "$T/tls/root.pem" --config-dir "$CFG"
	check_one_line_error "ca add --kind cmp: one line saying what it needs" "needs --url"
	check_fails "ca add --kind nope: usage (exit 2)" 2 "$P11KM" ca add x --kind nope \
		--directory https://127.0.0.1:1/dir --config-dir "$CFG"
	check_fails "ca add with an http directory: exit 2" 2 "$P11KM" ca add x --kind acme \
		--directory http://127.0.0.1:1/dir --ca-file "$T/tls/root.pem" --config-dir "$CFG"
	check_fails "ca add without --ca-file: exit 2" 2 "$P11KM" ca add x --kind acme \
		--directory https://127.0.0.1:1/dir --config-dir "$CFG"
	check_fails "ca add with a bad name: exit 2" 2 "$P11KM" ca add ../x --kind acme \
		--directory https://127.0.0.1:1/dir --ca-file "$T/tls/root.pem" --config-dir "$CFG"
	[ ! -e "$CFG" ] && ok "refused profiles wrote nothing" || not_ok "refused profiles wrote $CFG"
}

# --- pebble 1: PEBBLE_VA_ALWAYS_VALID, --webroot, a file account key ------
test_pebble_always_valid() {
	HTTPPORT=$(free_port)
	PNAME=pebble1
	PEBBLE_ENV=PEBBLE_VA_ALWAYS_VALID=1
	check "pebble (always valid) starts" start_server "$T/pebble1.srv" 2 start_pebble
	P1=${PORTS%% *}
	M1=${PORTS#* }
	check "ca add p1 (file account key, made on first use)" "$P11KM" ca add p1 --kind acme \
		--directory "https://127.0.0.1:$P1/dir" --ca-file "$T/tls/root.pem" \
		--contact mailto:ops@example.test --agree-tos --config-dir "$CFG"
	check_eq "the profile is mode 0600" "$(stat -c %a "$CFG/p1.json")" "600"
	check "ca list" "$P11KM" ca list --config-dir "$CFG"
	check_grep "ca list names p1" "^p1 +acme +https://127.0.0.1:$P1/dir" "$T/out"
	check "ca list through P11KM_CONFIG_DIR" env P11KM_CONFIG_DIR="$CFG" "$P11KM" ca list
	check_grep "... names p1" "^p1 +acme" "$T/out"
	check "ca show --json" "$P11KM" --json ca show p1 --config-dir "$CFG"
	check_eq "ca show: the account key is a reference to a file" \
		"$(json_get "$T/out" 'd["account_key"]')" "$(cd "$CFG" && pwd)/p1.key"
	check_nogrep "the profile holds no key material" "PRIVATE|BEGIN" "$CFG/p1.json"

	check "key generate web (request key on the token)" "$P11KM" key generate "$TOK" --type ec:p256 \
		--label web --pin-source "file:$PIN"
	check "req new web with a DNS name" "$P11KM" req new "$TOK;object=web;type=private" \
		--subject "CN=web.example.test" --san DNS:web.example.test -o "$T/web.csr" --pin-source "file:$PIN"
	check "req new nosan (no name an ACME CA can validate)" "$P11KM" req new \
		"$TOK;object=web;type=private" --subject "CN=not a host" -o "$T/nosan.csr" --pin-source "file:$PIN"

	mkdir -p "$T/www"
	check_fails "req submit without --standalone or --webroot: exit 2" 2 "$P11KM" req submit \
		"$T/web.csr" --ca p1 --config-dir "$CFG" -o "$T/none.pem"
	check_fails "a request without DNS/IP names is refused before ordering: exit 2" 2 "$P11KM" req \
		submit "$T/nosan.csr" --ca p1 --webroot "$T/www" --config-dir "$CFG" -o "$T/none.pem"
	check_one_line_error "... in one line" "no DNS name or IP address"
	[ ! -e "$CFG/p1.key" ] && ok "nothing was sent: no account key made yet" || not_ok "account key made"

	check "req submit --webroot (file account key)" "$P11KM" --json --verbose req submit "$T/web.csr" \
		--ca p1 --webroot "$T/www" --config-dir "$CFG" -o "$T/web-chain.pem"
	cp "$T/out" "$T/submit1.json"
	cp "$T/err" "$T/submit1.err"
	check_eq "the account key file was made, mode 0600" "$(stat -c %a "$CFG/p1.key" 2>&1)" "600"
	check "the account key is EC P-256" sh -c "openssl pkey -in '$CFG/p1.key' -noout -text | grep -q 'NIST CURVE: P-256'"
	check_eq "webroot files were removed afterwards" "$(find "$T/www" -type f | wc -l)" "0"
	curl -s --cacert "$T/tls/root.pem" "https://127.0.0.1:$M1/roots/0" > "$T/root1.pem"
	curl -s --cacert "$T/tls/root.pem" "https://127.0.0.1:$M1/intermediates/0" > "$T/inter1.pem"
	check "openssl verifies the chain against pebble's root" openssl verify -CAfile "$T/root1.pem" \
		-untrusted "$T/web-chain.pem" "$T/web-chain.pem"
	openssl x509 -in "$T/web-chain.pem" -noout -ext subjectAltName > "$T/san" 2>/dev/null
	check_grep "the certificate names web.example.test" "DNS:web.example.test" "$T/san"
	openssl req -in "$T/web.csr" -noout -pubkey > "$T/csr.pub"
	openssl x509 -in "$T/web-chain.pem" -noout -pubkey > "$T/leaf.pub"
	check "the certificate is for the token key of the request" cmp "$T/csr.pub" "$T/leaf.pub"
	sig=$(json_get "$T/submit1.json" 'd["signatures"]')
	echo "# one order, one name, file account key: $sig JWS signatures, $(json_get "$T/submit1.json" 'd["requests"]') HTTP requests"
	check_eq "--json: every step reported" "$(json_get "$T/submit1.json" '" ".join(s["step"] for s in d["steps"])')" \
		"directory account order authorizations validated finalized certificate"
	check_grep "--verbose: the number of JWS signatures" "$sig JWS signatures" "$T/submit1.err"

	check "the same account is found again (onlyReturnExisting after --agree-tos is off)" sh -c \
		"sed 's/\"agree_tos\": true/\"agree_tos\": false/' '$CFG/p1.json' > '$CFG/p1b.json' && chmod 600 '$CFG/p1b.json'"
	check "req submit with onlyReturnExisting finds the account" "$P11KM" req submit "$T/web.csr" \
		--ca p1b --webroot "$T/www" --config-dir "$CFG" -o "$T/web-chain2.pem"
	check "a second certificate for the same key" openssl verify -CAfile "$T/root1.pem" \
		-untrusted "$T/web-chain2.pem" "$T/web-chain2.pem"

	check "ca add p1new with a new key file, no --agree-tos" "$P11KM" ca add p1new --kind acme \
		--directory "https://127.0.0.1:$P1/dir" --ca-file "$T/tls/root.pem" --config-dir "$CFG"
	check_fails "no account for a new key without --agree-tos: exit 4" 4 "$P11KM" -q req submit \
		"$T/web.csr" --ca p1new --webroot "$T/www" --config-dir "$CFG" -o "$T/none.pem"
	check_one_line_error "... one line that says what to do" "agree-tos"
	check "ca add p1bad trusting another root" "$P11KM" ca add p1bad --kind acme \
		--directory "https://127.0.0.1:$P1/dir" --ca-file "$T/tls/other.pem" --config-dir "$CFG"
	# the environment trusting the CA changes nothing: only the profile's CA file counts
	check_fails "a CA whose TLS certificate does not verify: exit 5" 5 env CURL_CA_BUNDLE="$T/tls/root.pem" \
		SSL_CERT_FILE="$T/tls/root.pem" SSL_CERT_DIR="$T/tls" "$P11KM" req submit "$T/web.csr" --ca p1bad --webroot "$T/www" --config-dir "$CFG" -o "$T/none.pem"
	check_one_line_error "... one line" "does not verify"
	[ ! -e "$T/none.pem" ] && ok "no refused run wrote a chain" || not_ok "a refused run wrote $T/none.pem"
}

# --- pebble 2: real http-01 validation, account key on SoftHSM2, --install ---
test_pebble_real_validation() {
	HTTPPORT=$(free_port)
	PNAME=pebble2
	PEBBLE_ENV=
	check "pebble (real validation) starts" start_server "$T/pebble2.srv" 2 start_pebble
	P2=${PORTS%% *}
	M2=${PORTS#* }
	check "account key pair on the token" pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label acme \
		--login --pin "$(cat "$PIN")" --keypairgen --key-type EC:prime256v1 --label acct --id 0a
	check "ca add p2 (account key on the token)" "$P11KM" ca add p2 --kind acme \
		--directory "https://127.0.0.1:$P2/dir" --ca-file "$T/tls/root.pem" --agree-tos \
		--account-key "$TOK;object=acct;type=private" --config-dir "$CFG"
	check "key generate ip (request key)" "$P11KM" key generate "$TOK" --type ec:p256 --label ip \
		--pin-source "file:$PIN"
	check "req new ip with IP:127.0.0.1" "$P11KM" req new "$TOK;object=ip;type=private" \
		--subject "CN=127.0.0.1" --san IP:127.0.0.1 -o "$T/ip.csr" --pin-source "file:$PIN"
	curl -s --cacert "$T/tls/root.pem" "https://127.0.0.1:$M2/roots/0" > "$T/root2.pem"
	check "req submit --standalone --install (validated for real)" "$P11KM" --verbose req submit \
		"$T/ip.csr" "$TOK;object=ip;type=private" --ca p2 --standalone "127.0.0.1:$HTTPPORT" \
		--install --verify-ca-file "$T/root2.pem" -o "$T/ip-chain.pem" --pin-source "file:$PIN" \
		--config-dir "$CFG"
	cp "$T/err" "$T/submit2.err"
	sed -n 's/^p11km: \([0-9]* JWS signatures.*\)/# token account key, real validation: \1/p' "$T/submit2.err"
	check_grep "pebble fetched the challenge from the responder" "validated: 127.0.0.1" "$T/submit2.err"
	check "openssl verifies the installed chain" openssl verify -CAfile "$T/root2.pem" \
		-untrusted "$T/ip-chain.pem" "$T/ip-chain.pem"
	pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label acme --read-object --type cert --label ip \
		-o "$T/ip-token.der" >/dev/null 2>&1
	openssl x509 -in "$T/ip-chain.pem" -outform DER -out "$T/ip-leaf.der"
	check "the token holds the issued certificate next to its key (pkcs11-tool)" cmp "$T/ip-token.der" \
		"$T/ip-leaf.der"
	check_fails "the standalone responder is gone afterwards (curl: connection refused)" 7 curl -s -o /dev/null \
		"http://127.0.0.1:$HTTPPORT/.well-known/acme-challenge/x"
	[ "$(stat -c %a "$T/ip-chain.pem")" = 644 ] && ok "chain written 0644" || not_ok "chain mode"
}

# one C_Sign per JWS, no more (the shim counts the calls)
test_sign_counts() {
	if shim_available; then
		check "req submit through the call-counting shim" shim_p11km --json req submit "$T/ip.csr" \
			--ca p2 --standalone "127.0.0.1:$HTTPPORT" -o "$T/ip-chain3.pem" --pin-source "file:$PIN" \
			--config-dir "$CFG"
		check_eq "C_Sign calls = the JWS signatures reported" "$(count_of C_Sign)" \
			"$(json_get "$T/out" 'd["signatures"]')"
		echo "# C_Sign per order (token account key): $(count_of C_Sign); PKCS#11 calls in all: $(count_of total)"
		# --install --json: one document, the submit's report with the install's result inside,
		# and one login for both (the account key signs in the session the install uses)
		check "req submit --install --json through the shim" shim_p11km --json req submit "$T/ip.csr" \
			"$TOK;object=ip;type=private" --ca p2 --standalone "127.0.0.1:$HTTPPORT" --install \
			--verify-ca-file "$T/root2.pem" -o "$T/ip-chain4.pem" --pin-source "file:$PIN" \
			--config-dir "$CFG"
		cp "$T/out" "$T/submit-install.json"
		check_eq "one C_Login for the account key and the install" "$(count_of C_Login)" 1
		check_eq "the document carries the submit's signatures (= C_Sign)" \
			"$(json_get "$T/submit-install.json" 'd["signatures"]')" "$(count_of C_Sign)"
		check_eq "... and the install's result: the leaf is the issued chain's (openssl)" \
			"$(json_get "$T/submit-install.json" 'd["install"]["leaf"]["sha256"]')" \
			"$(openssl x509 -in "$T/ip-chain4.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)"
		check_eq "... its token is the key's" "$(json_get "$T/submit-install.json" \
			'[a for a in d["install"]["token"][7:].split(";") if a.startswith("token=")]')" "['token=acme']"
		pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label acme --read-object --type cert --label ip \
			-o "$T/ip-token4.der" >/dev/null 2>&1
		openssl x509 -in "$T/ip-chain4.pem" -outform DER -out "$T/ip-leaf4.der"
		check "the token holds that certificate (pkcs11-tool)" cmp "$T/ip-token4.der" "$T/ip-leaf4.der"
	else
		not_ok "the shim module is not built"
	fi
}

# --- a CA that misbehaves: one line each, nothing written ---------------
fake_start() { python3 "$top_srcdir/tests/tools/fake-ca.py" "$1" "$T/tls/cert.pem" "$T/tls/key.pem" \
	"$T/otherkey-chain.pem" \
	> "$T/fake.log" 2>&1 & SERVER_PID=$!; cleanup_add "kill $SERVER_PID"; }
fake() { "$P11KM" -q req submit "$T/web.csr" --ca "f-$1" --webroot "$T/www" --config-dir "$CFG" -o "$T/fake.pem"; }

test_misbehaving_ca() {
	# a certificate for another key than web.csr's (the TLS server's, say)
	cat "$T/tls/cert.pem" "$T/tls/root.pem" > "$T/otherkey-chain.pem"
	check "the fake CA starts" start_server "$T/fake.srv" 1 fake_start
	F=$PORT
	for mode in bad-json wrong-ctype hang redirect other-origin big problem ratelimited wrongkey truncated; do
		"$P11KM" ca add "f-$mode" --kind acme --directory "https://127.0.0.1:$F/$mode/dir" \
			--ca-file "$T/tls/root.pem" --agree-tos --timeout 2 --config-dir "$CFG" >/dev/null
	done
	check_fails "malformed JSON: exit 2" 2 fake bad-json
	check_one_line_error "... one line" "not valid JSON"
	check_fails "a directory served as text/html: exit 2" 2 fake wrong-ctype
	check_one_line_error "... one line" "content type 'text/html'"
	check_fails "a CA that never answers: exit 1" 1 fake hang
	check_one_line_error "... one line naming the timeout" "did not answer within 2 s"
	check_fails "a redirect to another host: exit 2" 2 fake redirect
	check_one_line_error "... one line" "redirect.*not followed"
	check_fails "a directory pointing to another origin: exit 2" 2 fake other-origin
	check_one_line_error "... one line" "another origin"
	check_fails "a 2 MiB answer: exit 2" 2 fake big
	check_one_line_error "... one line" "larger than"
	check_fails "a problem document: exit 1" 1 fake problem
	check_one_line_error "... type, detail and subproblems in one line" \
		"rejectedIdentifier: policy forbids this account; subproblems: bad.example: invalidContact: no such mailbox \(HTTP 403\)"
	check_fails "rateLimited: exit 1" 1 fake ratelimited
	check_one_line_error "... one line with its Retry-After" "rateLimited: too many new accounts; try again after 3600 \(HTTP 429\)"
	check_fails "a certificate for another key than the request's: exit 5" 5 fake wrongkey
	check_one_line_error "... one line" "for another key"
	check_fails "a truncated certificate chain: exit 2" 2 fake truncated
	check_one_line_error "... one line"
	[ ! -e "$T/fake.pem" ] && ok "no faulty CA got a chain written" || not_ok "$T/fake.pem written"
	for mode in bad-json wrong-ctype hang redirect other-origin big; do
		[ -e "$CFG/f-$mode.key" ] && { not_ok "f-$mode made an account key"; continue; }
	done
	ok "a CA whose directory is bad makes no account key"
}

# --- a removed profile is gone ---------------------------------------------
test_ca_remove() {
	check "ca remove p1new" "$P11KM" ca remove p1new --config-dir "$CFG"
	check_fails "ca show of a removed profile: exit 4" 4 "$P11KM" ca show p1new --config-dir "$CFG"
}

run_tests
