#!/bin/bash
# p11km's lifecycle on a network token: p11-kit's RPC (p11-kit server +
# p11-kit-client.so, tests/lib/remote.sh) in front of a SoftHSM2 token.
# The client refuses CKM_SHA256_RSA_PKCS_PSS at C_SignInit (0.24.1 does not
# list it either, nor CKM_ECDSA_SHA256; tests/cli/mechs.sh has a module that
# lists what it refuses): p11km must sign anyway (hash on the host + CKM_ECDSA;
# CKM_RSA_PKCS_PSS with parameters) with one login.  Judges: openssl, and
# pkcs11-tool on the SoftHSM token directly (not through the socket).
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"
. "$top_srcdir/tests/lib/remote.sh"

p() { "$P11KM" --pin-source "file:$PIN" "$@"; }
# judge: the SoftHSM token itself, bypassing the RPC
direct() { token_certs "$SOFTHSM2_MODULE" net "$PIN"; }
sign_cert() { # CSR OUT SERIAL
	openssl x509 -req -in "$1" -CA "$CA/inter.pem" -CAkey "$CA/inter.key" -set_serial "$3" \
		-days 30 -extfile "$CA/ca.cnf" -extensions leaf -out "$2" 2>/dev/null
}
# logins: the number of C_Login calls in a --trace run's stderr
logins() { grep -c 'trace: C_Login ' "$T/err"; }

setup() {
	need openssl pkcs11-tool p11-kit
	remote_available || skip_all "p11-kit server or p11-kit-client.so missing"
	softhsm_setup
	new_token net || { echo "# cannot make the token"; exit 99; }
	PIN=$T/pin-net
	SOPIN=$T/sopin-net
	mkdir -p "$T/remote"
	remote_token_start "$T/remote" net || { echo "# cannot start p11-kit server"; exit 99; }
	cleanup_add "remote_token_stop '$T/remote'"
	export P11KM_MODULE=$REMOTE_MODULE
	ca_setup "$T/ca" || { echo "# cannot make the test CA"; exit 99; }
	CA=$T/ca
	TOK="pkcs11:token=net"

	check "token list through the socket" "$P11KM" token list
	check_grep "the SoftHSM token, through p11-kit-client.so" "module: +$REMOTE_MODULE" "$T/out"
	check_grep "it can sign ECDSA and RSA-PSS (as the client advertises)" "signing: .*rsa-pss.*ecdsa" "$T/out"

	check "key generate ec:p256" p key generate "$TOK" --type ec:p256 --label web
	check "key generate rsa:2048" p key generate "$TOK" --type rsa:2048 --label api
	pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label net -O --type pubkey > "$T/pubs" 2>/dev/null
	check_grep "SoftHSM holds both public keys" "label: +web" "$T/pubs"
	check_grep "...the RSA one too" "label: +api" "$T/pubs"
}

# requests: the hash-and-sign mechanisms are refused at C_SignInit
test_requests() {
	check "req new with the EC key" p --trace req new "$TOK;object=web;type=private" \
		--subject CN=web.example.test -o "$T/web.csr"
	check_eq "one C_Login" "$(logins)" 1
	check_nogrep "no CKM_ECDSA_SHA256 attempt: the host hashes" "CKM_ECDSA_SHA256" "$T/err"
	check "openssl: the EC request's signature verifies" openssl req -in "$T/web.csr" -verify -noout
	check "req new with the RSA key (PKCS#1 v1.5)" p req new "$TOK;object=api;type=private" \
		--subject CN=api.example.test -o "$T/api.csr"
	check "openssl: it verifies" openssl req -in "$T/api.csr" -verify -noout
	check "req new --rsa-pss" p --trace --verbose req new "$TOK;object=api;type=private" --rsa-pss \
		--subject CN=api.example.test -o "$T/pss.csr"
	check_grep "CKM_SHA256_RSA_PKCS_PSS is refused by the RPC" "C_SignInit -> CKR_MECHANISM_INVALID" "$T/err"
	check_eq "...and p11km falls back with still one C_Login" "$(logins)" 1
	check_grep "...and says so with --verbose" \
		"CKM_SHA256_RSA_PKCS_PSS refused \(CKR_MECHANISM_INVALID\): CKM_RSA_PKCS_PSS over a digest made on the host" "$T/err"
	check "openssl: the PSS request verifies" openssl req -in "$T/pss.csr" -verify -noout
	openssl req -in "$T/pss.csr" -noout -text > "$T/pss.txt" 2>/dev/null
	check_grep "...and it is RSA-PSS" "Signature Algorithm: rsassaPss" "$T/pss.txt"
}

# install, renew, rekey, roots
test_install_renew_roots() {
	sign_cert "$T/web.csr" "$T/web1.pem" 0x1101
	cat "$T/web1.pem" "$CA/inter.pem" > "$T/web1.reply"
	check "cert install (leaf + intermediate)" p cert install "$T/web1.reply" "$TOK" --ca-file "$CA/root.pem"
	direct > "$T/certs"
	check_grep "SoftHSM: the leaf is labelled web" "\|web\|1101$" "$T/certs"
	check_grep "SoftHSM: the intermediate is there" "Intermediate.*\|1001$" "$T/certs"
	check "req renew (same key)" p req renew "$TOK;object=web;type=cert" -o "$T/web2.csr"
	check "openssl: the renewal request verifies" openssl req -in "$T/web2.csr" -verify -noout
	check_eq "it is for the same key" "$(openssl req -in "$T/web2.csr" -noout -pubkey)" \
		"$(openssl x509 -in "$T/web1.pem" -noout -pubkey)"
	check "req renew --rekey" p req renew "$TOK;object=web;type=cert" --rekey -o "$T/web3.csr"
	check "openssl: the rekey request verifies" openssl req -in "$T/web3.csr" -verify -noout
	sign_cert "$T/web3.csr" "$T/web3.pem" 0x1102
	check "cert install completes the rekey" p cert install "$T/web3.pem" "$TOK" --ca-file "$CA/root.pem"
	direct > "$T/certs"
	check_grep "SoftHSM: the new certificate is labelled web" "\|web\|1102$" "$T/certs"
	check_grep "SoftHSM: the old one is retired" "\|web\.retired-[0-9]{8}\|1101$" "$T/certs"
	check "roots install into token: (SO PIN)" "$P11KM" roots install "$CA/root.pem" --to "token:$TOK" \
		--so-pin-source "file:$SOPIN"
	pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label net -O --type cert > "$T/c" 2>/dev/null
	check_grep "SoftHSM: the root is on the token" "subject: +DN: CN=p11km Test Root" "$T/c"
	# (the RSA key has no certificate yet: doctor reports that, and exits 5)
	check_fails "token doctor --key (RSA): the signatures requests use, probed" 5 \
		p token doctor "$TOK" --key "$TOK;object=api;type=private"
	check_nogrep "doctor: no signature problem" "^problem: +the key cannot sign|does not verify" "$T/out"
	check_grep "doctor: the p11-kit-client profile" "^profile +p11-kit-client" "$T/out"
	check_grep "doctor: the RSA-PSS test signature verifies" "^test signature +RSA-PSS: made by the key, verified" "$T/out"
	check_grep "doctor: the fallback it made, which the profile records" \
		"^fallback +CKM_SHA256_RSA_PKCS_PSS refused \(CKR_MECHANISM_INVALID\): CKM_RSA_PKCS_PSS .*; the profile records it" "$T/out"
	check "object list" p --json object list "$TOK"
	check_eq "object list: the certificates it installed, through the socket" \
		"$(json_get "$T/out" "sorted(o['label'] for o in d['objects'] if o['class'] == 'cert')" 2>&1)" \
		"$(python3 -c "print(sorted(['web', 'web.retired-$(date +%Y%m%d)', 'p11km Test Intermediate $$', 'p11km Test Root $$']))")"
}

# token init through the socket (last: it empties the token)
test_token_init() {
	# the server exports one initialised token: re-initialising it is what a client can do
	check "token init --force of the exported token, through the socket" "$P11KM" --force token init \
		"$TOK" --label net2 --so-pin-source "file:$SOPIN" --pin-source "file:$PIN"
	pkcs11-tool --module "$SOFTHSM2_MODULE" -L > "$T/slots" 2>/dev/null
	check_grep "SoftHSM: the token is labelled net2 (32 bytes: p11-kit's client reads the label as a string)" \
		"token label +: net2$" "$T/slots"
	check "SoftHSM: the new user PIN logs in, and the token is empty" sh -c \
		"o=\$(pkcs11-tool --module '$SOFTHSM2_MODULE' --token-label net2 --login --pin 1234 -O) && [ -z \"\$o\" ]"
}

run_tests
