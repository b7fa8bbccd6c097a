#!/bin/bash
# CMP with the key on the TPM token (tpm2-pkcs11 over swtpm): p10cr with
# --install, ir with the proof of possession and kur with the protection
# signed by the TPM key through key-evp.c, against the CMP test CA
# (tests/tools/cmp-ca.c) on 127.0.0.1.  Judges: openssl, pkcs11-tool.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/tpm2.sh"

km() { "$P11KM" --pin-source "file:$PIN" "$@"; }
start_cmpca() { "$CMPCA" "$1" "$T/ca.pem" "$T/ca.key" "$T/secret" "$T/mode" > "$T/cmpca.log" 2>&1 &
	SERVER_PID=$!; cleanup_add "kill $SERVER_PID"; }
same_key() { openssl x509 -in "$1" -noout -pubkey | cmp -s - <(openssl req -in "$2" -noout -pubkey); }

setup() {
	need pkcs11-tool openssl
	tpm2_available || skip_all "swtpm or tpm2-pkcs11 not installed"
	CMPCA=$top_builddir/tests/cmp-ca
	[ -x "$CMPCA" ] || skip_all "tests/cmp-ca not built"

	tpm2_test_token
	CFG=$T/ca.d

	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3 \
		-keyout "$T/ca.key" -out "$T/ca.pem" -subj "/CN=tpm2-cmp CA $$" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
	(umask 077; printf 'tpm-secret-%s' "$$" > "$T/secret")
	check "the CMP test CA starts on 127.0.0.1" start_server "$T/cmpca.log" 1 start_cmpca
	check "ca add cmpca" "$P11KM" ca add cmpca --kind cmp --url "http://127.0.0.1:$PORT/pkix/" \
		--secret-source "file:$T/secret" --ref tpm --ca-file "$T/ca.pem" --config-dir "$CFG"
}

# p10cr --install on the TPM
test_p10cr_install() {
	check "key generate ec:p256 on the TPM" km key generate "$TOK" --type ec:p256 --label web
	check "req new" km req new "$TOK;object=web;type=private" --subject CN=web.example.test \
		--san DNS:web.example.test -o "$T/web.csr"
	check "req submit --install (p10cr)" km req submit "$T/web.csr" "$TOK;object=web;type=private" \
		--ca cmpca --install --verify-ca-file "$T/ca.pem" -o "$T/web.pem" --config-dir "$CFG"
	pkcs11-tool --module "$TPM2_MODULE" --token-label tp --read-object --type cert --label web \
		-o "$T/web-token.der" >/dev/null 2>&1
	openssl x509 -in "$T/web.pem" -outform DER -out "$T/web.der"
	check "the TPM token holds the issued certificate (pkcs11-tool)" cmp "$T/web-token.der" "$T/web.der"
}

# ir: POP signed by the TPM key
test_ir() {
	check "req submit --cmp ir (POP signed by the TPM key)" km --json req submit "$T/web.csr" \
		--ca cmpca --cmp ir --key "$TOK" -o "$T/ir.pem" --config-dir "$CFG"
	check_eq "ir: one signature on the TPM" "$(json_get "$T/out" 'd["signatures"]')" "1"
	same_key "$T/ir.pem" "$T/web.csr" && ok "ir: the certificate is for the TPM key" || not_ok "ir: another key"
	check "ir: openssl verifies it" openssl verify -CAfile "$T/ca.pem" "$T/ir.pem"
}

# A kur to a new key signs with two TPM keys in one run: tpm2-pkcs11 keeps
# the first loaded and swtpm has no room for the second (Esys_Load: out of
# memory for object contexts).  That is one clean line (exit 3) and nothing
# written; a kur that keeps the key works.
test_kur() {
	check "key generate ec:p384 (a new key)" km key generate "$TOK" --type ec:p384 --label web2
	check "req new web2" km req new "$TOK;object=web2;type=private" --subject CN=web.example.test \
		-o "$T/web2.csr"
	check_fails "kur to a new key: the TPM cannot load both keys (exit 3)" 3 km req submit \
		"$T/web2.csr" --ca cmpca --cmp kur --old-cert "$T/web.pem" --key "$TOK" -o "$T/kur2.pem" \
		--config-dir "$CFG"
	grep -v '^ERROR: Esys' "$T/err" > "$T/err.p11km"; mv "$T/err.p11km" "$T/err"
	check_one_line_error "... one line naming the key that could not sign" "key 'web' on token 'tp'"
	check_one_line_error "... and what works instead" "kur to a new key signs with the old and the new key.*send the new key's request as --cmp ir or p10cr"
	[ ! -e "$T/kur2.pem" ] && ok "... nothing written" || not_ok "a chain was written"
	check "req submit --cmp kur, same key (signed by the old certificate's TPM key)" km --json \
		req submit "$T/web.csr" --ca cmpca --cmp kur --old-cert "$T/web.pem" --key "$TOK" \
		-o "$T/kur.pem" --config-dir "$CFG"
	check_eq "kur: three signatures on the TPM" "$(json_get "$T/out" 'd["signatures"]')" "3"
	same_key "$T/kur.pem" "$T/web.csr" && ok "kur: the certificate is for the TPM key" \
		|| not_ok "kur: another key"
	check "kur: openssl verifies it" openssl verify -CAfile "$T/ca.pem" "$T/kur.pem"
}

run_tests
