#!/bin/sh
# A key pair whose halves carry different ids: key generation sets CKA_ID
# on the private key, then on the public key; the token is pulled between
# the two (the shim fails the second C_SetAttributeValue with a sticky
# CKR_DEVICE_REMOVED).  key generate says the pair is still there and how
# to delete both halves; every later command that meets the pair (req new,
# req renew --rekey, cert install) detects it and gives advice that,
# followed, deletes both halves (pkcs11-tool is the judge); req renew
# --rekey then works.  A C_GenerateKeyPair that made the pair but reported
# failure is found and destroyed, and key generate says so.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

shim() { P11KM_MODULE=$P11SHIM P11SHIM_MODULE=$M "$@"; }
# objs LABEL: "class id" of the token's objects labelled LABEL (pkcs11-tool)
objs() {
	pkcs11-tool --module "$M" --token-label hv --login --pin "$(cat "$PIN")" -O 2>/dev/null |
	awk -v l="$1" '/Object;/{c=$1} /^  label:/{sub(/^  label: +/,""); lab=$0}
	     /^  ID:/{if (lab == l) print c, $2}' | sort
}
# follow FILE: run the pkcs11-tool commands the advice in FILE gives
follow() {
	_args=$(sed -n 's/.*(pkcs11-tool --login --delete-object \(--type privkey --id [0-9a-f]*\), and \(--type pubkey --id [0-9a-f]*\)).*/\1|\2/p' "$1")
	[ -n "$_args" ] || return 1
	for _a in "${_args%%|*}" "${_args#*|}"; do
		# shellcheck disable=SC2086
		pkcs11-tool --module "$M" --token-label hv --login --pin "$(cat "$PIN")" \
			--delete-object $_a >/dev/null 2>&1 || return 1
	done
}

setup() {
	need openssl pkcs11-tool
	[ -f "${P11SHIM:-}" ] || skip_all "the PKCS#11 shim is not built"
	softhsm_setup
	new_token hv
	M=$SOFTHSM2_MODULE
	PIN=$T/pin-hv
	TOK="pkcs11:token=hv"
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	CA=$T/ca
	P="--pin-source file:$PIN"
	HALF="P11SHIM_FAIL_FUNC=C_SetAttributeValue P11SHIM_FAIL_AT=2 P11SHIM_FAIL_RV=CKR_DEVICE_REMOVED P11SHIM_FAIL_STICKY=1"
}

# key generate, cut between the two ids
test_generate_cut() {
	# shellcheck disable=SC2086
	check_fails "key generate: the token goes between the two ids: fails" 3 \
		shim env $HALF "$P11KM" key generate "$TOK" --label half $P
	check_grep "  ... and says the pair is still there, halves by label" \
		"could not be destroyed.*still on token 'hv' as label 'half'.*--type privkey --label 'half', and --type pubkey --label 'half'" "$T/err"
	objs half > "$T/o"
	check_eq "  ... it is: a private and a public key with different ids" \
		"$(awk '{print $1}' "$T/o" | tr '\n' ' ')$(cut -d' ' -f2 "$T/o" | sort -u | wc -l)" "Private Public 2"
	check_fails "req new for the half-made key: detected" 3 "$P11KM" req new "$TOK;object=half;type=private" \
		--subject CN=half.test $P -o "$T/half.csr"
	check_grep "  ... saying it is half made and how to delete both halves" \
		"key pair 'half' on token 'hv' is half made: its private key has id [0-9a-f]{40}, its public key id [0-9a-f]{40}" "$T/err"
	cp "$T/err" "$T/advice"
	check "  ... which, followed, works" follow "$T/advice"
	check_eq "  ... and deletes both halves" "$(objs half)" ""
}

# req renew --rekey, cut the same way
test_rekey_cut() {
	check "key generate web" "$P11KM" key generate "$TOK" --label web $P
	check "req new web" "$P11KM" req new "$TOK;object=web;type=private" --subject CN=web.test $P -o "$T/web.csr"
	openssl req -in "$T/web.csr" -pubkey -noout > "$T/web.pub"
	issue "$CA" "$T/web.pub" "$T/web.pem" web.test 0x0a01
	cat "$CA/inter.pem" >> "$T/web.pem"
	check "cert install web" "$P11KM" cert install "$T/web.pem" "$TOK" $P --ca-file "$CA/root.pem"
	CERT="$TOK;object=web;type=cert"
	# shellcheck disable=SC2086
	check_fails "req renew --rekey, the token pulled between the two ids: fails" 3 \
		shim env $HALF "$P11KM" req renew "$CERT" --rekey $P -o "$T/rk.csr"
	check_grep "  ... saying the new pair is still there" "could not be destroyed.*label 'web.pending'" "$T/err"
	check_eq "  ... a half-made pending pair" "$(objs web.pending | cut -d' ' -f2 | sort -u | wc -l)" 2
	check_fails "req renew --rekey again: the half-made pending pair is detected" 3 "$P11KM" req renew \
		"$CERT" --rekey $P -o "$T/rk.csr"
	check_grep "  ... with how to delete both halves" "key pair 'web.pending' .* is half made" "$T/err"
	cp "$T/err" "$T/advice2"
	# a reply for the half-made key (its public key) is refused with the same advice
	pkcs11-tool --module "$M" --token-label hv --read-object --type pubkey --label web.pending \
		-o "$T/pending.der" >/dev/null 2>&1
	openssl pkey -pubin -inform DER -in "$T/pending.der" -out "$T/pending.pub"
	issue "$CA" "$T/pending.pub" "$T/pending.pem" web.test 0x0b01
	cat "$CA/inter.pem" >> "$T/pending.pem"
	check_fails "cert install for the half-made key: detected" 3 "$P11KM" cert install "$T/pending.pem" \
		"$TOK" $P --ca-file "$CA/root.pem"
	check_grep "  ... with how to delete both halves" "key pair 'web.pending' .* is half made" "$T/err"
	check "following the advice" follow "$T/advice2"
	check_eq "  ... deletes both halves" "$(objs web.pending)" ""
	check "req renew --rekey then works" "$P11KM" req renew "$CERT" --rekey $P -o "$T/rk.csr"
	check "  ... its request verifies (openssl)" openssl req -in "$T/rk.csr" -verify -noout
	check_eq "  ... and the pending pair's halves share one id" \
		"$(objs web.pending | cut -d' ' -f2 | sort -u | wc -l)$(objs web.pending | wc -l)" 12
}

# C_GenerateKeyPair makes the pair, then reports a failure
test_keypair_then_failure() {
	# shellcheck disable=SC2086
	check_fails "C_GenerateKeyPair took effect but failed: key generate fails" 3 shim env \
		P11SHIM_FAIL_FUNC=C_GenerateKeyPair P11SHIM_FAIL_AT=1 P11SHIM_FAIL_AFTER=1 \
		P11SHIM_FAIL_RV=CKR_DEVICE_ERROR "$P11KM" key generate "$TOK" --label ghost $P
	check_grep "  ... says the pair was made all the same, and destroyed" \
		"did not generate .*the new key pair \(made all the same\) was destroyed" "$T/err"
	check_eq "  ... it was (pkcs11-tool)" "$(objs ghost)" ""
}

run_tests
