#!/bin/sh
# ACME with the keys on tpm2-pkcs11 over a software TPM (swtpm): the request
# key and the account key both on the TPM token, pebble on 127.0.0.1
# (http-01 validated for real against --standalone), the chain installed
# next to the key with --install, the account found again by its TPM key
# and the certificate revoked by it.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/tpm2.sh"
. "$top_srcdir/tests/lib/acme.sh"

km() { "$P11KM" --pin-source "file:$PIN" "$@"; }

setup() {
	need pebble pkcs11-tool openssl python3 curl
	tpm2_available || skip_all "swtpm or tpm2-pkcs11 not installed"
	tpm2_test_token
	CFG=$T/ca.d
	export P11KM_CONFIG_DIR="$T/not-used"
	unset CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR 2>/dev/null || true
	acme_tls_setup

	HTTPPORT=$(free_port)
	PNAME=pebble
	PEBBLE_ENV="PEBBLE_WFE_NONCEREJECT=0"
	pebble_up "pebble (real validation) starts"
}

# the account key and the request key on the TPM
test_tpm_keys() {
	check "key generate acct (the account key) on the TPM" km key generate "$TOK" --type ec:p256 --label acct
	check "key generate web (the request key) on the TPM" km key generate "$TOK" --type ec:p256 --label web
	check "req new (IP:127.0.0.1)" km req new "$TOK;object=web;type=private" --subject "CN=127.0.0.1" \
		--san IP:127.0.0.1 -o "$T/web.csr"
}

# an order signed on the TPM, installed next to the key
test_order_installed() {
	check "ca add p --account-key (the TPM key)" "$P11KM" -q ca add p --kind acme --directory \
		"https://127.0.0.1:$P/dir" --ca-file "$T/tls/root.pem" --agree-tos \
		--account-key "$TOK;object=acct;type=private" --config-dir "$CFG"
	check "req submit --standalone --install (every signature on the TPM)" km --verbose req submit "$T/web.csr" \
		"$TOK;object=web;type=private" --ca p --standalone "127.0.0.1:$HTTPPORT" --install \
		--verify-ca-file "$T/root.pem" -o "$T/chain.pem" --config-dir "$CFG"
	sed -n 's/^p11km: \([0-9]* JWS signatures\).*/# order with the account key on tpm2-pkcs11: \1 (C_Sign on the TPM)/p' "$T/err"
	check "the chain verifies against pebble's root" openssl verify -CAfile "$T/root.pem" -untrusted \
		"$T/chain.pem" "$T/chain.pem"
	openssl req -in "$T/web.csr" -noout -pubkey > "$T/csr.pub"
	openssl x509 -in "$T/chain.pem" -noout -pubkey > "$T/leaf.pub"
	check "the leaf carries the TPM request key" cmp "$T/csr.pub" "$T/leaf.pub"
	pkcs11-tool --module "$TPM2_MODULE" --token-label tp --read-object --type cert --label web \
		-o "$T/token.der" >/dev/null 2>&1
	openssl x509 -in "$T/chain.pem" -outform DER -out "$T/leaf.der"
	check "the TPM token holds the issued certificate (pkcs11-tool)" cmp "$T/token.der" "$T/leaf.der"
}

# the account found again by its TPM key, the certificate revoked
test_account_revoke() {
	check "ca account show: found again by the TPM key" km --json ca account show p --config-dir "$CFG"
	check_grep "... an account URL on pebble" "\"account\": \"https://127.0.0.1:$P/" "$T/out"
	check "cert revoke by the TPM account key" km cert revoke "$TOK;object=web;type=cert" --ca p \
		--reason superseded --config-dir "$CFG"
	serial=$(openssl x509 -in "$T/chain.pem" -noout -serial | sed 's/^serial=//' | tr 'A-F' 'a-f' | sed 's/^0*//')
	check_eq "pebble: revoked" "$(pebble_get "$M" "/cert-status-by-serial/$serial" | \
		python3 -c 'import json,sys; print(json.load(sys.stdin)["Status"])')" "Revoked"
}

run_tests
