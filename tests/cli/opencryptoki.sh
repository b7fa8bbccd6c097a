#!/bin/bash
# p11km on opencryptoki's soft token, with a pkcsslotd of the test's own (a
# private mount + IPC namespace, tests/lib/ock.sh): token init where
# C_InitToken needs the current SO PIN, PINs of at most 8 characters, RSA
# only, no CKM_SHA256_RSA_PKCS (the host hashes, CKM_RSA_PKCS signs), and
# a certificate template without the attributes it does not know.
# Judges: pkcs11-tool and pkcsconf on the token, openssl.
. "$top_srcdir/tests/lib/ock.sh"
if ! ock_available; then
	echo "1..0 # SKIP opencryptoki (pkcsslotd, the soft token) missing, or no mount + IPC namespace (root)"
	exit 77
fi
ock_reexec "$@"
. "$top_srcdir/tests/lib/common.sh"

p11km() {
	LD_PRELOAD="$(readlink -f "$OCK_MODULE"):$OCK_STDLL_DIR/libpkcs11_sw.so" \
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
	LSAN_OPTIONS="suppressions=$T/lsan.supp:print_suppressions=0" "$P11KM" "$@"
}
p() { p11km --pin-source "file:$PIN" "$@"; }
ocktool() { pkcs11-tool --module "$OCK_MODULE" --slot "$OCK_SLOT" "$@"; }
logins() { grep -c 'trace: C_Login ' "$T/err"; }

setup() {
	need openssl pkcs11-tool pkcsconf
	mkdir -p "$T/ock"
	ock_start "$T/ock" || { echo "# cannot start pkcsslotd"; exit 99; }
	cleanup_add "ock_stop"
	export P11KM_MODULE=$OCK_MODULE
	# opencryptoki 3.8 frees little of what it allocates at C_Finalize: loaded
	# before p11km, it stays mapped after dlclose, so that its own leaks can be
	# told from p11km's (suppressed by library name; p11km's are still reported)
	printf 'leak:libopencryptoki.so\nleak:libpkcs11_sw.so\n' > "$T/lsan.supp"
	SO=$(pin_file so 87654321)       # the soft token's default SO PIN
	BADSO=$(pin_file badso 11223344)
	PIN=$(pin_file pin 12345678)     # 8 characters: its longest
	LONG=$(pin_file long 123456789)
	TOK="pkcs11:token=ock"

	check "token list: the soft token, not initialised" p11km token list
	check_grep "...named by its model" "model: +IBM SoftTok" "$T/out"
	check_grep "...not initialised" "not initialised" "$T/out"
}

# token init
test_token_init() {
	check_fails "token init: a user PIN of 9 characters is refused" 2 \
		p11km token init --label ock --so-pin-source "file:$SO" --pin-source "file:$LONG"
	check_grep "...with the token's PIN length range" "takes user PINs of 4 to 8 characters.*nothing was changed" "$T/err"
	ocktool -L > "$T/slots" 2>&1
	check_grep "...before C_InitToken: the token is still not initialised (pkcs11-tool)" \
		"token state: +uninitialized" "$T/slots"
	check_fails "token init: a wrong SO PIN" 3 \
		p11km token init --label ock --so-pin-source "file:$BADSO" --pin-source "file:$PIN"
	check_grep "...is the SO PIN C_InitToken checks" "C_InitToken failed: CKR_PIN_INCORRECT" "$T/err"
	check "token init with the current SO PIN (87654321)" \
		p11km token init --label ock --so-pin-source "file:$SO" --pin-source "file:$PIN"
	ocktool -L > "$T/slots" 2>&1
	check_grep "pkcs11-tool: the token is labelled ock" "token label +: ock" "$T/slots"
	check_grep "pkcs11-tool: its user PIN is set" "PIN initialized" "$T/slots"
	check "pkcs11-tool logs in with the new user PIN" ocktool --login --pin 12345678 -O
}

# keys: RSA only
test_keys() {
	check_fails "key generate ec:p256: refused" 1 p key generate "$TOK" --type ec:p256 --label e
	check_grep "...naming what the token can generate" "cannot generate and sign with ec:p256.*it can: rsa:2048" "$T/err"
	check "key generate rsa:2048" p key generate "$TOK" --type rsa:2048 --label web
	ocktool --login --pin 12345678 -O --type privkey > "$T/keys" 2>&1
	check_grep "pkcs11-tool: the private key is on the token" "label: +web" "$T/keys"
}

# requests: no CKM_SHA256_RSA_PKCS
test_requests() {
	check "req new" p --trace req new "$TOK;object=web;type=private" --subject CN=web.example.test \
		-o "$T/web.csr"
	check_grep "CKM_SHA256_RSA_PKCS is refused at C_SignInit" "C_SignInit -> CKR_MECHANISM_INVALID" "$T/err"
	check_eq "...p11km hashes and signs with CKM_RSA_PKCS, with one C_Login" "$(logins)" 1
	check "openssl: the request's signature verifies" openssl req -in "$T/web.csr" -verify -noout
	check "req new --rsa-pss (CKM_SHA256_RSA_PKCS_PSS works)" p req new "$TOK;object=web;type=private" \
		--rsa-pss --subject CN=web.example.test -o "$T/pss.csr"
	check "openssl: the PSS request verifies" openssl req -in "$T/pss.csr" -verify -noout
}

# cert install: its template rules
test_cert_install() {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" -days 30 \
		-subj "/CN=p11km ock test CA" -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign 2>/dev/null
	openssl x509 -req -in "$T/web.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -set_serial 0x0c01 \
		-days 60 -out "$T/web.pem" 2>/dev/null
	check "cert install" p --verbose --trace cert install "$T/web.pem" "$TOK" --ca-file "$T/ca.pem"
	check_grep "the first template is refused (CKA_CERTIFICATE_CATEGORY, the dates)" \
		"C_CreateObject -> CKR_ATTRIBUTE_TYPE_INVALID" "$T/err"
	check_grep "...and retried once without the optional attributes" \
		"refused an optional certificate attribute" "$T/err"
	check_eq "...two C_CreateObject in all" "$(grep -c 'trace: C_CreateObject ' "$T/err")" 2
	ocktool --read-object --type cert --label web -o "$T/back.der" >/dev/null 2>&1
	openssl x509 -in "$T/web.pem" -outform DER -out "$T/web.der"
	check "pkcs11-tool reads back the certificate that was installed" cmp "$T/back.der" "$T/web.der"
	check "object list" p --json object list "$TOK"
	check_eq "object list: the key pair and its certificate, by one label" \
		"$(json_get "$T/out" "sorted((o['class'], o['label']) for o in d['objects'])")" \
		"[('cert', 'web'), ('private', 'web'), ('public', 'web')]"
	check "req renew (the key of the installed certificate)" p req renew "$TOK;object=web;type=cert" \
		-o "$T/renew.csr"
	check_eq "it is for the same key" "$(openssl req -in "$T/renew.csr" -noout -pubkey)" \
		"$(openssl x509 -in "$T/web.pem" -noout -pubkey)"
	check "openssl: the renewal request verifies" openssl req -in "$T/renew.csr" -verify -noout
}

# trusted roots: not on this token
test_roots() {
	check_fails "roots install under the default SO PIN: it must be changed first" 3 \
		p11km roots install "$T/ca.pem" --to "token:$TOK" --so-pin-source "file:$SO"
	check_grep "...which p11km says, and how" "CKR_PIN_EXPIRED.*p11km token pin change.*--so" "$T/err"
	NEWSO=$(pin_file newso 24681357)
	check "token pin change --so (away from the default)" p11km token pin change "$TOK" --so \
		--so-pin-source "file:$SO" --new-pin-source "file:$NEWSO"
	check_fails "roots install: the token does not store trusted certificates" 1 \
		p11km roots install "$T/ca.pem" --to "token:$TOK" --so-pin-source "file:$NEWSO"
	check_grep "...said as what it cannot do, not 'try again'" \
		"does not store trusted certificates.*file store" "$T/err"
	ocktool -O > "$T/objs" 2>&1
	check_nogrep "pkcs11-tool: no root certificate was left on the token" "p11km ock test CA" "$T/objs"
}

# token doctor
test_doctor() {
	check "token doctor --key" p token doctor "$TOK" --key "$TOK;object=web;type=private"
	check_grep "doctor: the opencryptoki profile" "^profile +opencryptoki" "$T/out"
	check_grep "doctor: its refused mechanism" "^refused +CKM_SHA256_RSA_PKCS" "$T/out"
	check_grep "doctor: the fallback the test signature made, which the profile records" \
		"^fallback +CKM_SHA256_RSA_PKCS refused \(CKR_MECHANISM_INVALID\): CKM_RSA_PKCS over .*; the profile records it" "$T/out"
	check_grep "doctor: the test signature verifies" "^test signature +made by the key, verified" "$T/out"
	check_grep "doctor: the clock it reports is not a PKCS#11 time, said as a fact" \
		"^clock +the token's clock reads '[0-9:]+" "$T/out"
}

run_tests
