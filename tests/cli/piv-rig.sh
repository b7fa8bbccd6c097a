#!/bin/bash
# The PIV card emulator (tests/piv, tests/lib/piv.sh) judged by the vendors'
# tools before p11km uses it: yubico-piv-tool, ykcs11 and OpenSC
# (pkcs11-tool, pkcs15-tool), with openssl checking every signature and the
# attestation chain.  Also: PIN lock-out and unblock, card pull and
# re-insert, state kept across a restart, chained PUT DATA and 61xx.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/piv.sh"

ypt() { yubico-piv-tool -r "$PIV_READER" "$@"; }
ck() { pkcs11-tool --module "$1" "${@:2}"; }
# certify PUBKEY CN OUT: a certificate for a key on the card, from the rig CA
certify() {
	openssl x509 -new -force_pubkey "$1" -subj "/CN=$2" -CA "$T/ca.pem" -CAkey "$T/ca.key" \
		-days 2 -out "$3" 2>/dev/null
}

setup() {
	need openssl pkcs11-tool pkcs15-tool yubico-piv-tool p11tool
	piv_available || skip_all "pcscd, vsmartcard-vpcd, ykcs11, opensc or python3-cryptography missing, or no mount namespace (unshare)"
	mkdir -p "$T/piv"
	export PIV_CARD_TRACE=1
	piv_card_start "$T/piv" || { echo "# cannot start the PIV card"; exit 99; }
	cleanup_add "piv_card_stop '$T/piv'"
	Y=$PIV_YKCS11
	O=$PIV_OPENSC
	echo hello piv > "$T/msg"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca.key" \
		-out "$T/ca.pem" -subj /CN=rig-ca -days 2 2>/dev/null || { echo "# no CA"; exit 99; }
}

# yubico-piv-tool
test_yubico_piv_tool() {
	check "yubico-piv-tool -a status" ypt -a status
	cp "$T/out" "$T/status"
	check_grep "version 5.2.7" "^Version:	5\.2\.7" "$T/status"
	check_grep "a serial number" "^Serial Number:	[0-9]+" "$T/status"
	check_grep "three PIN tries" "^PIN tries left:	3" "$T/status"
	SERIAL=$(sed -n 's/^Serial Number:	//p' "$T/status")
	check "-a generate -s 9a -A ECCP256 (default management key)" ypt -a generate -s 9a -A ECCP256 -o "$T/9a.pub"
	check "the public key is a P-256 key" sh -c "openssl pkey -pubin -in '$T/9a.pub' -text -noout | grep -q 'NIST CURVE: P-256'"
	check "-a verify-pin" ypt -a verify-pin -P 123456
	certify "$T/9a.pub" "alice piv" "$T/9a.pem"
	check "-a import-certificate -s 9a" ypt -a import-certificate -s 9a -i "$T/9a.pem"
	check "-a read-certificate -s 9a" ypt -a read-certificate -s 9a -o "$T/9a.back"
	check_eq "the certificate reads back unchanged" "$(openssl x509 -in "$T/9a.back" -outform DER | od -An -tx1)" \
		"$(openssl x509 -in "$T/9a.pem" -outform DER | od -An -tx1)"
	check_fails "generate with a wrong management key fails" 1 \
		ypt -a generate -s 9e -A ECCP256 -k 0102030405060708010203040506070801020304050607FF
}

# attestation
test_attestation() {
	check "-a attest -s 9a" ypt -a attest -s 9a -o "$T/att9a.pem"
	check "-a read-certificate -s f9 (device attestation)" ypt -a read-certificate -s f9 -o "$T/f9.pem"
	check "openssl: the chain verifies to the card's attestation root" \
		openssl verify -CAfile "$PIV_ATTEST_ROOT" -untrusted "$T/f9.pem" "$T/att9a.pem"
	check_eq "the attested key is the 9a key" "$(openssl x509 -in "$T/att9a.pem" -pubkey -noout)" "$(cat "$T/9a.pub")"
	openssl x509 -in "$T/att9a.pem" -text -noout > "$T/att.txt" 2>/dev/null
	check_grep "it carries the YubiKey serial extension" "1\.3\.6\.1\.4\.1\.41482\.3\.7" "$T/att.txt"
}

# ykcs11
test_ykcs11() {
	check "ykcs11: pkcs11-tool -L" ck "$Y" -L
	check_grep "token 'YubiKey PIV #serial'" "token label +: YubiKey PIV #$SERIAL" "$T/out"
	check "ykcs11: pkcs11-tool -O" ck "$Y" -O
	check_grep "the 9a certificate (id 01)" "subject: +DN: CN=alice piv" "$T/out"
	check_grep "the slot's attestation certificate" "X.509 Certificate for PIV Attestation 9a" "$T/out"
	check "ykcs11: --sign ECDSA-SHA256 with the 9a key" ck "$Y" --login --pin 123456 --sign --id 01 \
		-m ECDSA-SHA256 --signature-format openssl -i "$T/msg" -o "$T/sig"
	check "openssl verifies it" openssl dgst -sha256 -verify "$T/9a.pub" -signature "$T/sig" "$T/msg"
	check "ykcs11: RSA 2048 into 9c (SO login = management key)" ck "$Y" --login --login-type so \
		--so-pin "$PIV_MGM_KEY" --keypairgen --key-type rsa:2048 --id 02
	check "ykcs11: read the 9c public key" ck "$Y" --read-object --type pubkey --id 02 -o "$T/9c.der"
	openssl pkey -pubin -inform DER -in "$T/9c.der" -out "$T/9c.pub" 2>/dev/null
	check "ykcs11: SHA256-RSA-PKCS with the 9c key (context-specific login)" ck "$Y" --login --pin 123456 \
		--sign --id 02 -m SHA256-RSA-PKCS -i "$T/msg" -o "$T/sig9c"
	check "openssl verifies it" openssl dgst -sha256 -verify "$T/9c.pub" -signature "$T/sig9c" "$T/msg"
	check "ykcs11: EC P-384 into 9d" ck "$Y" --login --login-type so --so-pin "$PIV_MGM_KEY" \
		--keypairgen --key-type EC:secp384r1 --id 03
	# (pkcs11-tool 0.23 cannot export a P-384 public key: "cannot create EVP_PKEY")
	check "p11tool exports the 9d public key" sh -c "GNUTLS_PIN=123456 p11tool --login --provider '$Y' \
	--export-pubkey 'pkcs11:id=%03;type=public' --outfile '$T/9d.pub' 2>/dev/null"
	check "ykcs11: ECDSA-SHA384 with the 9d key" ck "$Y" --login --pin 123456 --sign --id 03 \
		-m ECDSA-SHA384 --signature-format openssl -i "$T/msg" -o "$T/sig9d"
	check "openssl verifies it" openssl dgst -sha384 -verify "$T/9d.pub" -signature "$T/sig9d" "$T/msg"
	certify "$T/9c.pub" "alice signing" "$T/9c.pem"
	openssl x509 -in "$T/9c.pem" -outform DER -out "$T/9c.crt"
	check "ykcs11: write the 9c certificate (SO login)" ck "$Y" --login --login-type so --so-pin "$PIV_MGM_KEY" \
		--write-object "$T/9c.crt" --type cert --id 02
	check_grep "the APDU trace shows a chained PUT DATA" "^> 10db3fff" "$T/piv/card.log"
	check_grep "and GET RESPONSE after 61xx" "^> 00c00000" "$T/piv/card.log"
}

# OpenSC
test_opensc() {
	check "pkcs15-tool -D" pkcs15-tool -r 0 -D
	check_grep "the PKCS#15 card is labelled by the 9a certificate's CN" "PKCS#15 Card \[alice piv\]" "$T/out"
	check_grep "the 9a key" "Private EC Key \[PIV AUTH key\]" "$T/out"
	check_grep "the 9c key" "Private RSA Key \[SIGN key\]" "$T/out"
	check "OpenSC: pkcs11-tool -L" ck "$O" -L
	check_grep "token label 'alice piv'" "token label +: alice piv" "$T/out"
	check "OpenSC: ECDSA-SHA256 with the 9a key" ck "$O" --login --pin 123456 --sign --id 01 \
		-m ECDSA-SHA256 --signature-format openssl -i "$T/msg" -o "$T/sig-o"
	check "openssl verifies it" openssl dgst -sha256 -verify "$T/9a.pub" -signature "$T/sig-o" "$T/msg"
	check "OpenSC: SHA256-RSA-PKCS with the 9c key" ck "$O" --login --pin 123456 --sign --id 02 \
		-m SHA256-RSA-PKCS -i "$T/msg" -o "$T/sig9c-o"
	check "openssl verifies it" openssl dgst -sha256 -verify "$T/9c.pub" -signature "$T/sig9c-o" "$T/msg"
	check_fails "OpenSC cannot generate keys (read-only)" 1 ck "$O" --login --pin 123456 \
		--keypairgen --key-type EC:prime256v1 --id 04
}

# PIN lock-out
test_pin_lockout() {
	for i in 1 2 3; do ypt -a verify-pin -P 000000 >/dev/null 2>&1; done
	check "status after three wrong PINs" ypt -a status
	check_grep "no PIN tries left" "^PIN tries left:	0" "$T/out"
	check_fails "the right PIN is refused now" 1 ypt -a verify-pin -P 123456
	check_fails "ykcs11 says the PIN is locked" 1 ck "$Y" --login --pin 123456 --sign --id 01 \
		-m ECDSA-SHA256 -i "$T/msg" -o "$T/x"
	check_grep "CKR_PIN_LOCKED" "CKR_PIN_LOCKED" "$T/err"
	check "unblock with the PUK" ypt -a unblock-pin -P 12345678 -N 123456
	check "the PIN works again" ypt -a verify-pin -P 123456
}

# card pull, re-insert, restart
test_card_pull() {
	check "pull the card" piv_card_pull "$T/piv"
	check_fails "yubico-piv-tool finds no card" 1 ypt -a status
	ck "$Y" -L > "$T/l" 2>&1
	check_nogrep "ykcs11 lists no token" "token label" "$T/l"
	check "re-insert it" piv_card_insert "$T/piv"
	check "yubico-piv-tool works again" ypt -a status
	check "restart the emulator on the same state" piv_card_restart "$T/piv"
	check "ykcs11 after the restart" ck "$Y" -L
	check_grep "same card (serial)" "serial num +: $SERIAL" "$T/out"
	check "ykcs11: objects after the restart" ck "$Y" -O
	check_grep "the certificates survived" "subject: +DN: CN=alice signing" "$T/out"
	check "and still signs" ck "$Y" --login --pin 123456 --sign --id 01 -m ECDSA-SHA256 \
		--signature-format openssl -i "$T/msg" -o "$T/sig2"
	check "openssl verifies it" openssl dgst -sha256 -verify "$T/9a.pub" -signature "$T/sig2" "$T/msg"
}

run_tests
