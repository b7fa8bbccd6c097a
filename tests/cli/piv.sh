#!/bin/bash
# p11km on an emulated PIV card (tests/lib/piv.sh): through ykcs11 (keys
# in slots 9a/9c with the SO login = management key, requests, PIN rules,
# card pulled) and through OpenSC (read-only: requests yes, writes refused
# with a reason).  Judges: yubico-piv-tool (status, attestation), pkcs11-tool
# and openssl.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/piv.sh"

tries() { ypt -a status 2>/dev/null | sed -n 's/^PIN tries left:	//p'; }
# pub9 ID OUT: the public key ykcs11 shows for slot id ID (01 = 9a)
pub9() {
	pkcs11-tool --module "$PIV_YKCS11" --read-object --type pubkey --id "$1" -o "$2.der" >/dev/null 2>&1 &&
		openssl pkey -pubin -inform DER -in "$2.der" -out "$2" 2>/dev/null
}

setup() {
	need openssl pkcs11-tool yubico-piv-tool
	piv_test_card
	BAD=$(pin_file bad 000000)
}

# key generate
test_key_generate() {
	check_fails "key generate with the user PIN only: exit 3" 3 "$P11KM" key generate "$TOK" --slot 9a \
		--pin-source "file:$PIN"
	check_one_line_error "...saying the SO login (management key) is needed" "security officer.*--so-pin-source.*management key"
	check_fails "a two-byte id on a YubiKey is refused: exit 1" 1 "$P11KM" key generate "$TOK" --id 0101 \
		--label x --so-pin-source "file:$MGM"
	check_one_line_error "...it says the ids are one byte" "one byte.*--slot"
	check "key generate --slot 9a (SO login with the management key)" "$P11KM" key generate "$TOK" \
		--slot 9a --so-pin-source "file:$MGM"
	check_grep "the key's URI has id 01" "id=%01;.*type=private" "$T/out"
	ypt -a status > "$T/status" 2>&1
	check_grep "yubico-piv-tool: slot 9a holds an ECCP256 key" "Slot 9a:" "$T/status"
	check "yubico-piv-tool: the card attests the 9a key" ypt -a attest -s 9a -o "$T/att.pem"
	ypt -a read-certificate -s f9 -o "$T/f9.pem" >/dev/null 2>&1
	check "openssl: the attestation chain verifies" openssl verify -CAfile "$PIV_ATTEST_ROOT" \
		-untrusted "$T/f9.pem" "$T/att.pem"
	pub9 01 "$T/9a.pub"
	check_eq "the attested key is the one ykcs11 shows in 9a" "$(openssl x509 -in "$T/att.pem" -noout -pubkey)" \
		"$(cat "$T/9a.pub")"
	check_fails "9a is occupied: refused without --force (exit 1)" 1 "$P11KM" key generate "$TOK" \
		--slot 9a --so-pin-source "file:$MGM"
	check_one_line_error "...one line" "already exists"
	pub9 01 "$T/9a.again"
	check_eq "...and the 9a key is unchanged" "$(cat "$T/9a.again")" "$(cat "$T/9a.pub")"
	check "key generate --slot 9c --type rsa:2048" "$P11KM" key generate "$TOK" --slot 9c --type rsa:2048 \
		--so-pin-source "file:$MGM"
	pub9 02 "$T/9c.pub"
	check "--force replaces the 9a key" "$P11KM" --force key generate "$TOK" --slot 9a --so-pin-source "file:$MGM"
	pub9 01 "$T/9a.new"
	[ -s "$T/9a.new" ] && [ "$(cat "$T/9a.new")" != "$(cat "$T/9a.pub")" ] && ok "...a new key is in 9a" ||
		not_ok "9a key not replaced"
}

# key attest: the card's evidence that it generated the key
test_key_attest() {
	check "key attest the 9a key, verified to the card's attestation root" "$P11KM" key attest \
		"$TOK;id=%01;type=private" -o "$T/attest.pem" --ca-file "$PIV_ATTEST_ROOT" --pin-source "file:$PIN"
	check_grep "...it says so" "^ok: the card attests that it generated .*id=%01.*verified to the vendor root" "$T/err"
	awk '/BEGIN/{n++} {print > ("'"$T"'/attest-" n ".pem")}' "$T/attest.pem"
	check "openssl: the exported pair verifies to the root" openssl verify -CAfile "$PIV_ATTEST_ROOT" \
		-untrusted "$T/attest-2.pem" "$T/attest-1.pem"
	check_eq "...and attests the key now in 9a" "$(openssl x509 -in "$T/attest-1.pem" -noout -pubkey)" \
		"$(cat "$T/9a.new")"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/other.key" \
		-out "$T/other.pem" -subj /CN=not-the-vendor -days 2 2>/dev/null
	check_fails "key attest against another root: exit 5" 5 "$P11KM" key attest "$TOK;id=%01;type=private" \
		-o "$T/attest2.pem" --ca-file "$T/other.pem" --pin-source "file:$PIN"
	[ -e "$T/attest2.pem" ] && not_ok "...but it wrote the file" || ok "...and writes nothing"
	check_fails "key attest of an empty slot: exit 4" 4 "$P11KM" key attest "$TOK;id=%03;type=private" \
		-o "$T/attest3.pem" --pin-source "file:$PIN"
}

# requests
test_requests() {
	check "req new with the 9a key" "$P11KM" --trace req new "$TOK;id=%01;type=private" \
		--subject CN=piv.example.test -o "$T/9a.csr" --pin-source "file:$PIN"
	check_eq "one C_Login" "$(grep -c 'trace: C_Login ' "$T/err")" 1
	check "openssl: the request verifies" openssl req -in "$T/9a.csr" -verify -noout
	check_eq "...and is for the 9a key" "$(openssl req -in "$T/9a.csr" -noout -pubkey)" "$(cat "$T/9a.new")"
	check "req new with the 9c key (CKA_ALWAYS_AUTHENTICATE)" "$P11KM" req new "$TOK;id=%02;type=private" \
		--subject CN=sign.example.test -o "$T/9c.csr" --pin-source "file:$PIN"
	check "openssl: it verifies" openssl req -in "$T/9c.csr" -verify -noout
	check_eq "...for the 9c key" "$(openssl req -in "$T/9c.csr" -noout -pubkey)" "$(cat "$T/9c.pub")"
}

# PIN rules: one attempt per run, the final try is not spent
test_pin_rules() {
	check_fails "a wrong PIN with the 9c key: exit 3" 3 "$P11KM" req new "$TOK;id=%02;type=private" \
		--subject CN=x -o "$T/x.csr" --pin-source "file:$BAD"
	check_eq "...it spent one try, not two (the card says)" "$(tries)" 2
	ypt -a verify-pin -P 000000 >/dev/null 2>&1
	check_eq "one try left" "$(tries)" 1
	check_fails "p11km refuses the final try non-interactively: exit 3" 3 "$P11KM" req new \
		"$TOK;id=%01;type=private" --subject CN=x -o "$T/x.csr" --pin-source "file:$PIN"
	check_one_line_error "...saying why" "one more wrong user PIN locks it"
	check_eq "...and the card still has one try" "$(tries)" 1
	check "the right PIN resets the counter (yubico-piv-tool)" ypt -a verify-pin -P 123456
}

# card pulled and re-inserted
test_card_reinserted() {
	piv_card_pull "$T/piv"
	if "$P11KM" req new "$TOK;id=%01;type=private" --subject CN=x -o "$T/gone.csr" \
		--pin-source "file:$PIN" >"$T/out" 2>"$T/err"; then got=0; else got=$?; fi
	case $got in 3|4) ok "card pulled: req new fails (exit $got)" ;; *) not_ok "card pulled: exit $got" ;; esac
	check_one_line_error "...with one line" "token"
	[ -e "$T/gone.csr" ] && not_ok "card pulled: a request file was written" || ok "...and writes no request"
	piv_card_insert "$T/piv"
	check "re-inserted: req new works again" "$P11KM" req new "$TOK;id=%01;type=private" \
		--subject CN=back.example.test -o "$T/back.csr" --pin-source "file:$PIN"
	check "openssl: it verifies" openssl req -in "$T/back.csr" -verify -noout
}

# OpenSC: the same card, read-only
test_opensc() {
	export P11KM_MODULE=$PIV_OPENSC
	check "OpenSC: token list" "$P11KM" token list
	check_grep "OpenSC's PIV token" "manufacturer: +piv_II" "$T/out"
	OTOK=$(head -1 "$T/out")
	check_fails "OpenSC: key generate is refused (exit 1)" 1 "$P11KM" key generate "$OTOK" --slot 9d \
		--pin-source "file:$PIN"
	check_one_line_error "...naming what the token cannot do" "cannot generate"
	check_fails "OpenSC: key attest is refused (exit 1)" 1 "$P11KM" key attest "$OTOK;id=%01;type=private" \
		-o "$T/o-attest.pem" --pin-source "file:$PIN"
	check_one_line_error "...it does not support attestation" "does not support attestation"
	check "OpenSC: req new with the 9a key" "$P11KM" req new "$OTOK;id=%01;type=private" \
		--subject CN=opensc.example.test -o "$T/o.csr" --pin-source "file:$PIN"
	check "openssl: it verifies" openssl req -in "$T/o.csr" -verify -noout
	check_eq "...for the 9a key" "$(openssl req -in "$T/o.csr" -noout -pubkey)" "$(cat "$T/9a.new")"
}

# OpenSC labels the card with the 9a certificate's CN: URIs go by serial
test_opensc_labels() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca.key" \
		-out "$T/ca.pem" -subj /CN=piv-test-ca -days 2 2>/dev/null
	for cn in alice bob; do
		openssl x509 -new -force_pubkey "$T/9a.new" -subj "/CN=$cn piv" -CA "$T/ca.pem" \
			-CAkey "$T/ca.key" -days 2 -out "$T/$cn.pem" 2>/dev/null
	done
	check "yubico-piv-tool: a certificate for alice into 9a" ypt -a import-certificate -s 9a -i "$T/alice.pem"
	check "OpenSC: object list" "$P11KM" --json object list "$OTOK" --pin-source "file:$PIN"
	KURI=$(json_get "$T/out" "[o['uri'] for o in d['objects'] if o['class'] == 'private' and o['id'] == '01'][0]")
	echo "$KURI" > "$T/kuri"
	check_grep "the 9a key's URI" "^pkcs11:.*serial=.*id=%01;.*type=private" "$T/kuri"
	check_nogrep "...does not name the label (now 'alice piv')" "token=" "$T/kuri"
	check "yubico-piv-tool: bob's certificate replaces it" ypt -a import-certificate -s 9a -i "$T/bob.pem"
	check "OpenSC: the token label follows (bob piv)" "$P11KM" token list
	check_grep "...as OpenSC does" "label: +bob piv" "$T/out"
	check "the URI printed before still selects the key: req new" "$P11KM" req new "$KURI" \
		--subject CN=again.example.test -o "$T/again.csr" --pin-source "file:$PIN"
	check "openssl: it verifies" openssl req -in "$T/again.csr" -verify -noout
}

run_tests
