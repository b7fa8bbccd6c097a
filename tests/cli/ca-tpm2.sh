#!/bin/bash
# The online CA kinds with the request's key on a second, stricter token:
# tpm2-pkcs11 over a software TPM (swtpm).  A token-signed request through
# certmonger's local-submit and through the AD CS stand-in
# (tests/tools/certsrv.py), each reply installed on the TPM token; and an
# MS renewal (CMS SignedData) signed by the TPM key, verified by openssl cms
# and renewed by the stand-in.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/tpm2.sh"
. "$top_srcdir/tests/lib/certs.sh"
. "$top_srcdir/tests/lib/certsrv.sh"

km() { "$P11KM" --pin-source "file:$PIN" "$@"; }
submit() { km req submit "$@" --config-dir "$CFG" --state-dir "$ST"; }
tokcert() { pkcs11-tool --module "$TPM2_MODULE" --token-label tp --read-object --type cert \
	--label "$1" -o "$2" >/dev/null 2>&1; }

setup() {
	LOCAL_SUBMIT=/usr/lib/certmonger/local-submit
	[ -x "$LOCAL_SUBMIT" ] || skip_all "certmonger's local-submit is not installed"
	need pkcs11-tool openssl python3
	tpm2_available || skip_all "swtpm or tpm2-pkcs11 not installed"

	mkdir -p "$T/lca"
	tpm2_test_token
	CFG=$T/ca.d
	ST=$T/state
	export P11KM_CONFIG_DIR="$T/not-used" P11KM_STATE_DIR="$T/not-used-state"
	export CERTMONGER_LOCAL_CA_DIR=$T/lca
	unset CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR 2>/dev/null || true

	check "key generate lcl (EC P-256 on the TPM)" km key generate "$TOK" --type ec:p256 --label lcl
	check "key generate corp (RSA 2048 on the TPM)" km key generate "$TOK" --type rsa:2048 --label corp
	check "req new lcl" km req new "$TOK;object=lcl;type=private" --subject CN=lcl.tpm.test -o "$T/lcl.csr"
	check "req new corp" km req new "$TOK;object=corp;type=private" --subject CN=corp.tpm.test \
		-o "$T/corp.csr"
}

# certmonger's local-submit
test_local_submit() {
	check "ca add lcl" "$P11KM" ca add lcl --kind helper --command "$LOCAL_SUBMIT" --config-dir "$CFG"
	check "ca roots lcl" "$P11KM" ca roots lcl -o "$T/lca-root.pem" --config-dir "$CFG"
	check "req submit --install through local-submit" submit "$T/lcl.csr" "$TOK;object=lcl;type=private" \
		--ca lcl --install --verify-ca-file "$T/lca-root.pem" -o "$T/lcl-chain.pem"
	check "openssl verifies it against local-submit's root" openssl verify -CAfile "$T/lca-root.pem" \
		"$T/lcl-chain.pem"
	tokcert lcl "$T/lcl-token.der"
	openssl x509 -in "$T/lcl-chain.pem" -outform DER -out "$T/lcl-leaf.der"
	check "the TPM token holds it next to its key (pkcs11-tool)" cmp "$T/lcl-token.der" "$T/lcl-leaf.der"
}

# the AD CS stand-in
test_adcs() {
	certsrv_setup ca-tpm2.sh
	check "the certsrv stand-in starts" start_server "$T/certsrv.srv" 1 start_certsrv
	CERTSRV_PORT=$PORT
	check "ca add corp (adcs)" certsrv_add corp ok
	check "req submit --install through AD CS" submit "$T/corp.csr" "$TOK;object=corp;type=private" \
		--ca corp --install --verify-ca-file "$T/ca/ca.pem" -o "$T/corp-chain.pem"
	tokcert corp "$T/corp-token.der"
	openssl x509 -in "$T/corp-chain.pem" -outform DER -out "$T/corp-leaf.der"
	check "the TPM token holds it next to its key (pkcs11-tool)" cmp "$T/corp-token.der" "$T/corp-leaf.der"
	check "req renew --format ms-renewal (signed by the TPM's RSA key)" km req renew \
		"$TOK;object=corp;type=cert" --format ms-renewal -o "$T/renew.p7"
	check "openssl cms -verify: signed by the old certificate" openssl cms -verify -inform PEM \
		-in "$T/renew.p7" -CAfile "$T/ca/ca.pem" -purpose any -binary -out "$T/inner.der"
	check "... around the PKCS#10" openssl req -inform DER -in "$T/inner.der" -noout -verify
	openssl asn1parse -inform PEM -in "$T/renew.p7" > "$T/renew.asn1"
	check_grep "openssl asn1parse: szOID_RENEWAL_CERTIFICATE" ":1\.3\.6\.1\.4\.1\.311\.13\.1$" "$T/renew.asn1"
	check_grep "... signed with rsaEncryption (PKCS#1 v1.5)" ":rsaEncryption" "$T/renew.asn1"
	check "req submit the MS renewal --install" submit "$T/renew.p7" "$TOK;object=corp;type=private" \
		--ca corp --install --verify-ca-file "$T/ca/ca.pem" -o "$T/renewed.pem"
	tokcert corp "$T/renewed-token.der"
	openssl x509 -in "$T/renewed.pem" -outform DER -out "$T/renewed-leaf.der"
	check "the TPM token holds the renewed certificate" cmp "$T/renewed-token.der" "$T/renewed-leaf.der"
}

run_tests
