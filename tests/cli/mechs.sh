#!/bin/bash
# A token that lists hash-and-sign mechanisms and refuses them at
# C_SignInit, as a network HSM or an RPC layer may (p11hostile's
# mechs-refused mode in front of SoftHSM2: CKM_ECDSA_SHA256,
# CKM_SHA256_RSA_PKCS, CKM_SHA256_RSA_PKCS_PSS).  p11km must sign anyway,
# with the raw mechanism over a digest made on the host, under one login,
# and token doctor must show the fallback and that no profile records it.
# Judges: openssl (the signatures), pkcs11-tool (what the module lists).
. "$top_srcdir/tests/lib/common.sh"

p() { "$P11KM" --pin-source "file:$PIN" "$@"; }
logins() { grep -c 'trace: C_Login ' "$T/err"; }

setup() {
	need openssl pkcs11-tool
	[ -f "${P11HOSTILE:-}" ] || skip_all "p11hostile.so not built"
	softhsm_setup
	new_token mech || { echo "# cannot make the token"; exit 99; }
	PIN=$T/pin-mech
	TOK="pkcs11:token=mech"
	export P11HOSTILE_MODULE=$SOFTHSM2_MODULE P11HOSTILE_MODE=mechs-refused P11KM_MODULE=$P11HOSTILE
}

# what the module lists; keys
test_mechanisms_keys() {
	pkcs11-tool --module "$P11HOSTILE" -M > "$T/mechs" 2>&1
	check_grep "the module lists CKM_ECDSA_SHA256 (pkcs11-tool)" "ECDSA-SHA256" "$T/mechs"
	check_grep "...and CKM_SHA256_RSA_PKCS_PSS" "SHA256-RSA-PKCS-PSS" "$T/mechs"
	check "key generate ec:p256" p key generate "$TOK" --type ec:p256 --label ec
	check "key generate rsa:2048" p key generate "$TOK" --type rsa:2048 --label rsa
}

# requests signed with the raw mechanism over a digest made on the host
test_raw_mechanism_requests() {
	check "req new, ECDSA" p --trace req new "$TOK;object=ec;type=private" --subject CN=ec.test -o "$T/ec.csr"
	check_nogrep "...never asks for CKM_ECDSA_SHA256 (no refusal)" "C_SignInit -> CKR_MECHANISM_INVALID" "$T/err"
	check "openssl: it verifies" openssl req -in "$T/ec.csr" -verify -noout
	check "req new, RSA PKCS#1 v1.5" p --trace --verbose req new "$TOK;object=rsa;type=private" \
		--subject CN=rsa.test -o "$T/rsa.csr"
	check_grep "CKM_SHA256_RSA_PKCS is refused at C_SignInit" "C_SignInit -> CKR_MECHANISM_INVALID" "$T/err"
	check_grep "...p11km says what signed instead" \
		"CKM_SHA256_RSA_PKCS refused \(CKR_MECHANISM_INVALID\): CKM_RSA_PKCS over a digest made on the host" "$T/err"
	check_eq "...with one C_Login" "$(logins)" 1
	check "openssl: it verifies" openssl req -in "$T/rsa.csr" -verify -noout
	check "req new --rsa-pss" p --trace req new "$TOK;object=rsa;type=private" --rsa-pss \
		--subject CN=rsa.test -o "$T/pss.csr"
	check_grep "CKM_SHA256_RSA_PKCS_PSS is refused at C_SignInit" "C_SignInit -> CKR_MECHANISM_INVALID" "$T/err"
	check_eq "...with one C_Login" "$(logins)" 1
	check "openssl: it verifies" openssl req -in "$T/pss.csr" -verify -noout
	openssl req -in "$T/pss.csr" -noout -text > "$T/pss.txt" 2>/dev/null
	check_grep "...and it is RSA-PSS" "Signature Algorithm: rsassaPss" "$T/pss.txt"
}

# the key has no certificate: doctor reports that (exit 5), the signatures are fine
test_doctor() {
	check_fails "token doctor --key (RSA)" 5 p token doctor "$TOK" --key "$TOK;object=rsa;type=private"
	check_nogrep "doctor: no signature problem" "^problem: +(the key cannot sign|a signature by the key)" "$T/out"
	check_grep "doctor: the PKCS#1 fallback, not in the SoftHSM2 profile" \
		"^fallback +CKM_SHA256_RSA_PKCS refused .*: CKM_RSA_PKCS over .*; not in the token's profile" "$T/out"
	check_grep "doctor: the PSS fallback too" \
		"^fallback +CKM_SHA256_RSA_PKCS_PSS refused .*: CKM_RSA_PKCS_PSS over .*; not in the token's profile" "$T/out"
}

run_tests
