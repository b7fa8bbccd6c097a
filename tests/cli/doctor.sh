#!/bin/bash
# token doctor on every token type of the suite, each with a problem planted
# (and a clean run first where the token allows one): SoftHSM2 (token store
# unreadable for the service user, final-try PIN through the shim, a public
# key object of another key, an expired certificate), the p11-kit remote
# token, tpm2-pkcs11 (a certificate of another key under the key's id),
# PIV through ykcs11 (the card really at one PIN try) and OpenSC (a 9c key,
# which bind emit refuses too).  Judges: openssl, pkcs11-tool,
# yubico-piv-tool, the shim's call counts.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

km() { "$P11KM" --pin-source "file:$PIN" "$@"; }
# doctor EXPECTED-EXIT DESCRIPTION ARGS...: run token doctor, check the exit code
doctor() { _e=$1 _d=$2; shift 2; check_fails "$_d" "$_e" "$P11KM" token doctor "$@"; }
# the same where 0 is expected
doctor_ok() { _d=$1; shift; check "$_d" "$P11KM" token doctor "$@"; }
# put_cert MODULE TOKEN PINFILE CERTPEM IDHEX LABEL: a certificate object, by pkcs11-tool
put_cert() {
	openssl x509 -in "$4" -outform DER -out "$4.der" 2>/dev/null &&
	pkcs11-tool --module "$1" --token-label "$2" --login --pin "$(cat "$3")" \
		--write-object "$4.der" --type cert --id "$5" --label "$6" >/dev/null 2>&1
}

setup() {
	need openssl pkcs11-tool
	softhsm_setup
	ca_setup "$T/ca" || { echo "# cannot make the test CA"; exit 99; }
	CA=$T/ca
	new_token doc || { echo "# cannot make the token"; exit 99; }
	PIN=$T/pin-doc
}

# SoftHSM2
test_softhsm2() {
	token_keypair "$SOFTHSM2_MODULE" doc "$PIN" web 01 "$T/web.pub" || { echo "# no key pair"; exit 99; }
	issue "$CA" "$T/web.pub" "$T/web.pem" web.example.test 0x51
	put_cert "$SOFTHSM2_MODULE" doc "$PIN" "$T/web.pem" 01 web || { echo "# no cert"; exit 99; }
	KEY="pkcs11:token=doc;object=web;type=private"
	# the token store must be open to nobody, as bind check asks
	chmod o+x "$T"; chgrp -R nogroup "$T/tokens"; chmod -R g+rX "$T/tokens"; chmod o+r "$T/softhsm2.conf"
	doctor_ok "SoftHSM2: a healthy token and key" pkcs11:token=doc --key "$KEY" --pin-source "file:$PIN" \
		--service-user nobody
	check_grep "...the softhsm2 profile matched" "^profile +softhsm2 " "$T/out"
	check_grep "...the test signature verified" "^test signature +made by the key, verified" "$T/out"
	check_grep "...the engine loaded the key as nobody" "^engine +the libp11 engine loads the key and signs \(and as user 'nobody'\)" "$T/out"
	check_grep "...no problem" "^no problem found$" "$T/out"
	ls -A /tmp | grep -q '^p11km-doctor\.' && not_ok "a temporary directory is left in /tmp" ||
		ok "...and leaves no temporary PIN file"

	chmod -R g-rwx "$T/tokens"
	doctor 5 "SoftHSM2: token directory unreadable for nobody" --key "$KEY" --pin-source "file:$PIN" \
		--service-user nobody
	check_grep "...one advice line naming the directory" "^problem: +user 'nobody' cannot read the SoftHSM token directory '$T/tokens'.*chmod -R g\+rX" "$T/out"
	check_grep "...and a one-line error at the end" "^p11km: 1 problem found on token 'doc'" "$T/err"
	chmod -R g+rX "$T/tokens"
	su -s /bin/sh nobody -c "ls '$T/tokens'/*/ >/dev/null" 2>/dev/null && ok "judge: nobody reads the directory again" ||
		not_ok "nobody cannot read the token directory"

	if shim_available; then
		P11SHIM_TOKEN_FLAGS_SET=CKF_USER_PIN_FINAL_TRY shim_p11km token doctor pkcs11:token=doc \
			--pin-source "file:$PIN" > "$T/out" 2> "$T/err"
		check_eq "SoftHSM2 through the shim, PIN at its final try: exit 5" "$?" 5
		check_grep "...says one try is left" "^user PIN +one try left" "$T/out"
		check_grep "...with advice" "^problem: +the user PIN has one try left.*--pin-source prompt" "$T/out"
		check_eq "...and spends no try (C_Login never called)" "$(count_of C_Login)" 0
		P11SHIM_TOKEN_FLAGS_SET=CKF_USER_PIN_LOCKED shim_p11km --json token doctor pkcs11:token=doc > "$T/out" 2>/dev/null
		check_eq "--json, PIN locked: ok is false" "$(json_get "$T/out" "d['ok']")" False
		check_eq "...one problem, the locked PIN" "$(json_get "$T/out" "[p for p in d['problems'] if 'locked' in p] == d['problems'] and len(d['problems'])")" 1
	else
		not_ok "the shim is not built"
	fi

	# a public key object of another key under the key's id
	token_keypair "$SOFTHSM2_MODULE" doc "$PIN" other 02 "$T/other.pub"
	p11tool_sm --token-label doc --login --pin "$(cat "$PIN")" --delete-object --type pubkey --id 02 >/dev/null 2>&1
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/stray.key" 2>/dev/null
	openssl pkey -in "$T/stray.key" -pubout -out "$T/stray.pub" 2>/dev/null
	p11tool_sm --token-label doc --login --pin "$(cat "$PIN")" --write-object "$T/stray.pub" --type pubkey \
		--id 02 --label other >/dev/null 2>&1
	check_eq "judge (pkcs11-tool): the public key object with id 02 is not the key's" \
		"$(p11tool_sm --token-label doc --read-object --type pubkey --id 02 2>/dev/null | openssl pkey -pubin -inform DER 2>/dev/null)" \
		"$(cat "$T/stray.pub")"
	doctor 5 "SoftHSM2: a key whose public key object is another key's" \
		--key "pkcs11:token=doc;object=other;type=private" --pin-source "file:$PIN"
	check_grep "...the test signature does not verify" "^problem: +a signature by the key does not verify with its public key" "$T/out"

	# an expired certificate on the token
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/old.key" 2>/dev/null
	token_import "$SOFTHSM2_MODULE" doc "$PIN" "$T/old.key" 03 old
	issue_dates "$CA" "$T/old.key" "$T/old.pem" old.example.test 52 20200101000000Z 20210101000000Z
	put_cert "$SOFTHSM2_MODULE" doc "$PIN" "$T/old.pem" 03 old
	check_eq "judge (openssl): the certificate on the token expired in 2021" \
		"$(p11tool_sm --token-label doc --read-object --type cert --id 03 2>/dev/null | openssl x509 -inform DER -noout -enddate)" \
		"notAfter=Jan  1 00:00:00 2021 GMT"
	doctor 5 "SoftHSM2: an expired certificate on the token" pkcs11:token=doc --pin-source "file:$PIN"
	check_grep "...named, with advice" "^problem: +certificate 'old' on the token expired [0-9]+ days ago: renew it" "$T/out"
	check_nogrep "...the valid certificate is not flagged" "certificate 'web'" "$T/out"

	# bad input: one line, documented codes
	check_fails "--key on another token" 2 "$P11KM" token doctor pkcs11:token=doc \
		--key "pkcs11:token=elsewhere;object=web" --pin-source "file:$PIN"
	check_one_line_error "...one line" "another token"
	check_fails "no such token" 4 "$P11KM" token doctor pkcs11:token=nosuch
	check_fails "no such key" 4 "$P11KM" token doctor --key "pkcs11:token=doc;object=nosuch;type=private" \
		--pin-source "file:$PIN"
	check_fails "--service-user without --key" 2 "$P11KM" token doctor pkcs11:token=doc --service-user nobody
	check_one_line_error "...one line" "needs --key"
	check_fails "--key without a PIN" 2 "$P11KM" token doctor --key "$KEY"
	P11KM_TOKENS_DIR=$T/nowhere "$P11KM" token doctor pkcs11:token=doc --pin-source "file:$PIN" > "$T/out" 2>&1
	check_grep "profiles missing: a problem, the checks still run" "problem: +the token profiles cannot be read" "$T/out"
}

# the p11-kit remote token
test_remote() {
	. "$top_srcdir/tests/lib/remote.sh"
	if remote_available; then
		mkdir -p "$T/remote"
		if remote_token_start "$T/remote" doc; then
			cleanup_add "remote_token_stop '$T/remote'"
			P11KM_MODULE=$REMOTE_MODULE "$P11KM" token doctor pkcs11:token=doc --pin-source "file:$PIN" \
				> "$T/out" 2> "$T/err"
			check_eq "remote token: the expired certificate is found through the RPC (exit 5)" "$?" 5
			check_grep "...the p11-kit-client profile" "^profile +p11-kit-client " "$T/out"
			check_grep "...it names the round trip and the refused mechanisms" "^refused +CKM_ECDSA_SHA256 " "$T/out"
			check_grep "...the expired certificate" "^problem: +certificate 'old' on the token expired" "$T/out"
			P11KM_MODULE=$REMOTE_MODULE "$P11KM" token doctor --key "$KEY" --pin-source "file:$PIN" > "$T/out" 2>&1
			check_grep "remote token: the key signs through the RPC (CKM_ECDSA fallback), verified" \
				"^test signature +made by the key, verified" "$T/out"
			remote_token_stop "$T/remote"
		else
			not_ok "p11-kit server starts"
		fi
	else
		[ "${CI:-}" = true ] && not_ok "p11-kit server or p11-kit-client.so missing" || echo "# remote token: skipped"
	fi
}

# tpm2-pkcs11
test_tpm2() {
	. "$top_srcdir/tests/lib/tpm2.sh"
	if tpm2_available; then
		mkdir -p "$T/tpm"
		cleanup_add "tpm2_token_stop '$T/tpm'"
		if tpm2_token_start "$T/tpm" tp 1234 12345678; then
			TPIN=$(pin_file tpin 1234)
			asan=${ASAN_OPTIONS:-}
			export ASAN_OPTIONS=$asan:detect_leaks=0 # tpm2-pkcs11 1.9 leaks in C_SignInit
			token_keypair "$TPM2_MODULE" tp "$TPIN" tkey 07 "$T/tkey.pub" 2>/dev/null
			# a certificate for another key, under this key's id
			put_cert "$TPM2_MODULE" tp "$TPIN" "$T/web.pem" 07 tkey
			P11KM_MODULE=$TPM2_MODULE "$P11KM" token doctor --key "pkcs11:token=tp;object=tkey;type=private" \
				--pin-source "file:$TPIN" > "$T/out" 2> "$T/err"
			check_eq "tpm2: a certificate of another key under the key's id (exit 5)" "$?" 5
			check_grep "...the tpm2-pkcs11 profile" "^profile +tpm2-pkcs11 " "$T/out"
			check_grep "...the key itself signs and verifies" "^test signature +made by the key, verified" "$T/out"
			check_grep "...the certificate is named" "^problem: +certificate 'tkey' has the key's id but not its public key" "$T/out"
			tpm2_token_stop "$T/tpm"
			export ASAN_OPTIONS=$asan
		else
			not_ok "a tpm2-pkcs11 token on swtpm starts"
		fi
	else
		[ "${CI:-}" = true ] && not_ok "swtpm or tpm2-pkcs11 missing" || echo "# tpm2: skipped"
	fi
}

# PIV: ykcs11 and OpenSC
test_piv() {
	. "$top_srcdir/tests/lib/piv.sh"
	if command -v yubico-piv-tool >/dev/null && piv_available; then
		mkdir -p "$T/piv"
		if piv_card_start "$T/piv"; then
			cleanup_add "piv_card_stop '$T/piv'"
			PPIN=$(pin_file ppin 123456)
			BAD=$(pin_file pbad 000000)
			MGM=$(pin_file mgm "$PIV_MGM_KEY")
			ypt() { yubico-piv-tool -r "$PIV_READER" "$@"; }
			SERIAL=$(ypt -a status | sed -n 's/^Serial Number:	//p')
			PTOK="pkcs11:serial=$SERIAL"
			P11KM_MODULE=$PIV_YKCS11 "$P11KM" key generate "$PTOK" --slot 9a --so-pin-source "file:$MGM" >/dev/null 2>&1
			P11KM_MODULE=$PIV_YKCS11 "$P11KM" key generate "$PTOK" --slot 9c --so-pin-source "file:$MGM" >/dev/null 2>&1
			P11KM_MODULE=$PIV_YKCS11 "$P11KM" token doctor "$PTOK" > "$T/out" 2> "$T/err"
			check_eq "ykcs11: a fresh card, no problem (exit 0)" "$?" 0
			check_grep "...the ykcs11 profile" "^profile +ykcs11 " "$T/out"
			check_nogrep "...the placeholder certificates are not taken for expired ones" "^problem" "$T/out"
			# two wrong PINs: the card is at its last try
			ypt -a verify-pin -P 000000 >/dev/null 2>&1; ypt -a verify-pin -P 000000 >/dev/null 2>&1
			check_eq "judge (yubico-piv-tool): one PIN try left" \
				"$(ypt -a status 2>/dev/null | sed -n 's/^PIN tries left:	//p')" 1
			P11KM_MODULE=$PIV_YKCS11 "$P11KM" token doctor "$PTOK" --key "$PTOK;id=%01;type=private" \
				--pin-source "file:$PPIN" > "$T/out" 2> "$T/err"
			check_eq "ykcs11: the card at one PIN try (exit 5)" "$?" 5
			check_grep "...says so, with advice" "^problem: +the user PIN has one try left" "$T/out"
			check_eq "...and spends no try" "$(ypt -a status 2>/dev/null | sed -n 's/^PIN tries left:	//p')" 1
			ypt -a verify-pin -P 123456 >/dev/null 2>&1 # a good PIN: the tries are reset
			# OpenSC: the 9c key needs a certificate to appear, and its PIN at every signature
			openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/pca.key" \
				-out "$T/pca.pem" -subj /CN=piv-doctor-ca -days 2 2>/dev/null
			for s in 9a 9c; do
				pkcs11-tool --module "$PIV_YKCS11" --read-object --type pubkey --id "$([ $s = 9a ] && echo 01 || echo 02)" \
					-o "$T/$s.der" >/dev/null 2>&1
				openssl pkey -pubin -inform DER -in "$T/$s.der" -out "$T/$s.pub" 2>/dev/null
				openssl x509 -new -force_pubkey "$T/$s.pub" -subj "/CN=doctor $s" -CA "$T/pca.pem" \
					-CAkey "$T/pca.key" -days 2 -out "$T/$s.pem" 2>/dev/null
				ypt -a import-certificate -s $s -i "$T/$s.pem" >/dev/null 2>&1
			done
			export P11KM_MODULE=$PIV_OPENSC
			check "OpenSC: token list" "$P11KM" token list
			OTOK=$(head -1 "$T/out")
			pkcs11-tool --module "$PIV_OPENSC" --login --pin 123456 -O --id 02 --type privkey 2>/dev/null > "$T/9c.txt"
			check_grep "judge (pkcs11-tool): OpenSC's 9c key has CKA_ALWAYS_AUTHENTICATE" "[Aa]lways ?[Aa]uthenticate" "$T/9c.txt"
			mkdir -p "$T/bind9c"
			check_fails "bind emit refuses the 9c key for a server" 1 "$P11KM" bind emit nginx \
				--key "$OTOK;id=%02;type=private" --listen 127.0.0.1:8443 --pin-source "file:$PPIN" \
				--pin-file "$PPIN" --out-dir "$T/bind9c"
			check_one_line_error "...saying why in one line" "needs its PIN for every signature \(CKA_ALWAYS_AUTHENTICATE.*libp11 cannot answer"
			[ -z "$(ls -A "$T/bind9c")" ] && ok "...and writes nothing" || not_ok "files written for a refused key"
			"$P11KM" token doctor --key "$OTOK;id=%02;type=private" --pin-source "file:$PPIN" > "$T/out" 2> "$T/err"
			check_eq "OpenSC: token doctor with the 9c key (exit 5)" "$?" 5
			check_grep "...the opensc-piv profile" "^profile +opensc-piv " "$T/out"
			check_grep "...the key signs (context-specific login) and verifies" "^test signature +made by the key, verified" "$T/out"
			check_grep "...no server can use it, and why" "^problem: +no server can use this key yet.*CKA_ALWAYS_AUTHENTICATE" "$T/out"
			unset P11KM_MODULE
		else
			not_ok "the PIV card starts"
		fi
	else
		[ "${CI:-}" = true ] && not_ok "the PIV rig is missing" || echo "# PIV: skipped"
	fi
}

run_tests
