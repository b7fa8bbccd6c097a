#!/bin/bash
# key generate: keys made on a SoftHSM2 token, judged by pkcs11-tool and
# openssl: sign-only, sensitive, never extractable, CKA_ID = the RFC 5280
# key identifier of the public key; refusals (label/id taken, Ed25519 next
# to other keys, bad type, wrong PIN) change nothing on the token.
. "$top_srcdir/tests/lib/common.sh"

pk() { p11tool_sm --token-label "$1" --login --pin 1234 "${@:2}" 2>/dev/null; }
nobj() { pk "${1:-K}" -O | grep -c 'Object;'; }
# keyid_of SPKI.der: SHA-1 of the subjectPublicKey BIT STRING contents
# (without its unused-bits byte), computed with openssl asn1parse and dd.
keyid_of() {
	_l=$(openssl asn1parse -inform DER -in "$1" | grep 'BIT STRING' | tail -1)
	set -- "$1" $(echo "$_l" | sed -E 's/^ *([0-9]+):d=[0-9]+ +hl=([0-9]+) +l= *([0-9]+).*/\1 \2 \3/')
	dd if="$1" bs=1 skip=$(($2 + $3 + 1)) count=$(($4 - 1)) 2>/dev/null | openssl sha1 -r | cut -d' ' -f1
}
# block LABEL CLASS: the pkcs11-tool -O block of an object.
block() {
	pk K -O | awk -v l="$1" -v c="$2" '
		/Object;/ { if (buf != "" && keep) print buf; buf = $0; keep = 0; cls = $0; next }
		{ buf = buf "\n" $0; if ($1 == "label:") { lab = $0; sub(/^ *label: */, "", lab); keep = (lab == l && index(cls, c) == 1) } }
		END { if (keep) print buf }'
}

setup() {
	need pkcs11-tool openssl python3 dd xxd
	softhsm_setup

	new_token K 1234 12345678
	PIN=$T/pin-K
	TOK='pkcs11:token=K'



	for t in ec:p256 ec:p384 rsa:2048; do
		l=key-${t/:/-}
		check "key generate --type $t" "$P11KM" --pin-source "file:$PIN" key generate "$TOK" --type $t --label $l
		cp "$T/out" "$T/uri-$l"
		check_grep "$t: prints the private key's URI" "^pkcs11:.*token=K.*object=$l.*type=private\$" "$T/uri-$l"
		block $l 'Private Key Object' > "$T/priv-$l"
		check_grep "$t: pkcs11-tool: private key is sensitive, always sensitive, never extractable" \
			'Access: +sensitive, always sensitive, never extractable' "$T/priv-$l"
		check_grep "$t: pkcs11-tool: private key usage is sign only" 'Usage: +sign$' "$T/priv-$l"
		if [ "${t%%:*}" = rsa ]; then
			check "$t: pkcs11-tool exports the public key" \
				pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label K --read-object --type pubkey --label $l -o "$T/pub-$l.der"
			want=$(keyid_of "$T/pub-$l.der")
		else
			# the key id of an EC key is the SHA-1 of the point (CKA_EC_POINT
			# as pkcs11-tool prints it, without its DER OCTET STRING header)
			pt=$(block $l 'Public Key Object' | sed -n 's/^ *EC_POINT: *//p')
			check_grep "$t: pkcs11-tool shows the public point" '^04' <(echo "$pt")
			want=$(echo "${pt:4}" | xxd -r -p | openssl sha1 -r | cut -d' ' -f1)
		fi
		got=$(sed -n 's/^ *ID: *//p' "$T/priv-$l")
		check_eq "$t: CKA_ID is the SHA-1 key identifier of the public key" "$got" "$want"
		gotpub=$(block $l 'Public Key Object' | sed -n 's/^ *ID: *//p')
		check_eq "$t: the public key has the same CKA_ID" "$gotpub" "$want"
	done

	# --id, --json, and the attributes as --json reports them
	check "key generate --id 0a0b0c --json" "$P11KM" --pin-source "file:$PIN" --json key generate "$TOK" --label withid --id 0a0b0c
	cp "$T/out" "$T/withid.json"
	check_eq "--json: id" "$(json_get "$T/withid.json" 'd["id"]')" 0a0b0c
	check_eq "--json: type defaults to ec:p256" "$(json_get "$T/withid.json" 'd["type"]')" ec:p256
	check_eq "--json: sensitive, not extractable" "$(json_get "$T/withid.json" '(d["sensitive"], d["extractable"])')" "(True, False)"
	check_eq "pkcs11-tool sees id 0a0b0c on the private key" "$(block withid 'Private Key Object' | sed -n 's/^ *ID: *//p')" 0a0b0c
	check_grep "pkcs11-tool: the --id key is an EC P-256 key" 'EC_PARAMS: +06082a8648ce3d030107' <(block withid 'Public Key Object')
}

# refusals: nothing changes on the token
test_refusals() {
	n0=$(nobj)
	check_fails "an existing label is refused" 1 "$P11KM" --pin-source "file:$PIN" key generate "$TOK" --label key-ec-p256
	check_one_line_error "label refusal: one line, names the label" "key-ec-p256.*already exists"
	check_fails "an existing id is refused" 1 "$P11KM" --pin-source "file:$PIN" key generate "$TOK" --label other --id 0a0b0c
	check_grep "id refusal says so" 'with this id already exists' "$T/err"
	check_fails "an unknown type is a usage error" 2 "$P11KM" --pin-source "file:$PIN" key generate "$TOK" --label x --type rsa:1024
	check_fails "--label is required" 2 "$P11KM" --pin-source "file:$PIN" key generate "$TOK"
	check_fails "a URI naming an object is not a token URI" 2 "$P11KM" --pin-source "file:$PIN" key generate "$TOK;object=x" --label x
	check_fails "a control character in the label is refused" 2 "$P11KM" --pin-source "file:$PIN" key generate "$TOK" --label "$(printf 'a\tb')"
	check_eq "the refusals created no object" "$(nobj)" "$n0"

	# wrong PIN: one C_Login, exit 3, nothing created
	BAD=$(pin_file badpin 9999)
	if shim_available; then
		check_fails "wrong PIN: exit 3" 3 shim_p11km --pin-source "file:$BAD" key generate "$TOK" --label wrongpin
		check_eq "wrong PIN: exactly one C_Login" "$(count_of C_Login)" 1
		check_eq "wrong PIN: no C_GenerateKeyPair" "$(count_of C_GenerateKeyPair)" 0
	else
		check_fails "wrong PIN: exit 3" 3 "$P11KM" --pin-source "file:$BAD" key generate "$TOK" --label wrongpin
	fi
	check_eq "wrong PIN: no object created" "$(nobj)" "$n0"

	# --force: a second key pair with a taken label
	check "--force allows a taken label" "$P11KM" --force --pin-source "file:$PIN" key generate "$TOK" --label key-ec-p256
	check_eq "--force: two private keys labelled key-ec-p256" \
		"$(pk K -O --type privkey | grep -c 'label: *key-ec-p256$')" 2

	# calls: one C_GetMechanismInfo (the generator of the type asked for, not all
	# three), and no more calls with 30 more key pairs on the token
	if shim_available; then
		check "key generate through the shim" shim_p11km --pin-source "file:$PIN" key generate "$TOK" --label counted1
		c1=$(count_of total)
		check_eq "key generate: one C_GetMechanismInfo" "$(count_of C_GetMechanismInfo)" 1
		for i in $(seq 1 30); do
			pk K --keypairgen --key-type EC:prime256v1 --label "bulk$i" --id "$(printf 'b0%02x' "$i")" >/dev/null
		done
		check "key generate with 30 more key pairs on the token" shim_p11km --pin-source "file:$PIN" key generate "$TOK" --label counted2
		check_eq "key generate: as many calls as before ($c1)" "$(count_of total)" "$c1"
		# a failure after C_GenerateKeyPair: the half-made pair is destroyed, and
		# when it cannot be (the token is gone) the error says where it is
		keygen_fault() { # keygen_fault LABEL VAR=VALUE...: key generate through the shim
			_l=$1; shift
			(export "$@"; shim_p11km --pin-source "file:$PIN" key generate "$TOK" --label "$_l")
		}
		n0=$(nobj)
		check_fails "C_SetAttributeValue(CKA_ID) fails: exit 3" 3 keygen_fault half1 \
			P11SHIM_FAIL_FUNC=C_SetAttributeValue P11SHIM_FAIL_AT=1 P11SHIM_FAIL_RV=CKR_DEVICE_ERROR
		check_one_line_error "one line saying the new pair was destroyed" 'CKR_DEVICE_ERROR.*the new key pair was destroyed'
		check_eq "pkcs11-tool: no object left" "$(nobj)" "$n0"
		check_fails "the token goes away after C_GenerateKeyPair: exit 3" 3 keygen_fault half2 \
			P11SHIM_FAIL_FUNC=C_SetAttributeValue P11SHIM_FAIL_AT=1 P11SHIM_FAIL_STICKY=1 \
			P11SHIM_FAIL_RV=CKR_DEVICE_REMOVED
		# (its halves may carry different ids: the advice names them by label)
		check_one_line_error "one line saying the pair could not be destroyed, with its label and ids" \
			"could not be destroyed.*label 'half2', its halves with id [0-9a-f]{40} or [0-9a-f]{40}: delete both with pkcs11-tool --login --delete-object --type privkey --label 'half2', and --type pubkey --label 'half2'"
		check_eq "pkcs11-tool: the half-made pair is there under that label" \
			"$(pk K -O | grep -c 'label: *half2$')" 2
	else
		not_ok "the PKCS#11 shim is not built"
	fi
}

# Ed25519
test_ed25519() {
	n0=$(nobj)
	check_fails "ed25519 next to RSA/EC keys is refused" 2 "$P11KM" --pin-source "file:$PIN" key generate "$TOK" --type ed25519 --label ed
	check_grep "the refusal explains libp11 and the flag" 'libp11.*allow-engine-breaking|allow-engine-breaking' "$T/err"
	check_eq "the refusal created no object" "$(nobj)" "$n0"
	check "--allow-engine-breaking makes it" "$P11KM" --pin-source "file:$PIN" key generate "$TOK" --type ed25519 --label ed --allow-engine-breaking
	check_grep "pkcs11-tool: an EDDSA key" 'EC_EDWARDS|EDDSA|Ed25519' <(pk K -O --type privkey; pk K -O --type pubkey)

	new_token E 1234 12345678
	check "ed25519 on a token of its own" "$P11KM" --pin-source "file:$T/pin-E" key generate 'pkcs11:token=E' --type ed25519 --label ed
	check_grep "...with a warning about libp11" 'warning:.*libp11' "$T/err"
	check_grep "pkcs11-tool: it is sensitive and never extractable" 'never extractable' <(pk E -O --type privkey)
}

run_tests
