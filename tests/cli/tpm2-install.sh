#!/bin/bash
# cert install and roots on a second, different token: tpm2-pkcs11 over a
# private swtpm (tests/lib/tpm2.sh).  Its keys made without CKA_ID have an
# empty id, unset attributes are absent rather than false, and trusted
# certificates want the user's login, not the SO's.  pkcs11-tool and p11tool
# judge.  (The libp11 engine cannot use tpm2-pkcs11 keys on bookworm, see
# FIELD-NOTES, so no engine check here.)
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"
. "$top_srcdir/tests/lib/tpm2.sh"

p11() { pkcs11-tool --module "$M" --token-label tp --login --pin 1234 "$@"; }
install() { "$P11KM" --module "$M" cert install "$@" --pin-source "file:$PIN" --ca-file "$CA/root.pem"; }
certs() { token_certs "$M" tp > "$T/certs"; }
# keypair LABEL [IDHEX]: EC P-256 on the TPM; public key in $T/LABEL.pub
keypair() {
	p11 --keypairgen --key-type EC:prime256v1 --label "$1" ${2:+--id "$2"} >/dev/null 2>&1 || return 1
	pkcs11-tool --module "$M" --token-label tp --read-object --type pubkey --label "$1" \
		-o "$T/$1.der" >/dev/null 2>&1 || return 1
	openssl pkey -pubin -inform DER -in "$T/$1.der" -out "$T/$1.pub" 2>/dev/null
}

setup() {
	need openssl pkcs11-tool p11tool
	tpm2_available || skip_all "swtpm / tpm2-pkcs11 not installed"
	mkdir -p "$T/tpm"
	tpm2_token_start "$T/tpm" tp 1234 12345678 || { echo "# cannot start the TPM token"; exit 99; }
	cleanup_add "tpm2_token_stop '$T/tpm'"
	M=$TPM2_MODULE
	PIN=$(pin_file pin 1234)
	SOPIN=$(pin_file sopin 12345678)
	TOK="pkcs11:token=tp"
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	CA=$T/ca
}

# a key with an empty CKA_ID
test_empty_id() {
	keypair web || { echo "# keygen on the TPM failed"; exit 99; }
	p11 -O --type privkey > "$T/key" 2>/dev/null
	check_nogrep "the TPM key really has no CKA_ID" "ID:" "$T/key"
	issue "$CA" "$T/web.pub" "$T/web1.pem" web.example.test 0x0e01
	cat "$T/web1.pem" "$CA/inter.pem" > "$T/web1.reply"
	check "install a certificate for an empty-id key" install "$T/web1.reply" "$TOK"
	certs
	check_grep "pkcs11-tool: the leaf carries the key's label (and its empty id)" "^\|web\|0e01$" "$T/certs"
	check_grep "the intermediate is there" "Intermediate.*\|1001$" "$T/certs"
	issue "$CA" "$T/web.pub" "$T/web2.pem" web.example.test 0x0e02
	check "install a renewal" install "$T/web2.pem" "$TOK"
	certs
	[ "$(grep -c '|web|' "$T/certs")" = 1 ] && grep -q '^|web|0e02$' "$T/certs" &&
		ok "exactly one leaf labelled web, the renewed one" || not_ok "certificates: $(tr '\n' ' ' < "$T/certs")"
	[ "$(grep -c 'Intermediate' "$T/certs")" = 1 ] && ok "the intermediate is there once" || not_ok "intermediates"
	check "installing the same one again" install "$T/web2.pem" "$TOK"
	check_grep "changes nothing and says so" "kept: certificate 'web': already on the token" "$T/out"
}

# a key with an id
test_with_id() {
	keypair api 4242 || { echo "# keygen failed"; exit 99; }
	issue "$CA" "$T/api.pub" "$T/api.pem" api.example.test 0x0f01
	check "install for a key with an id" install "$T/api.pem" "$TOK"
	certs
	check_grep "the leaf has the key's id" "^4242\|api\|0f01$" "$T/certs"
	p11tool --provider "$M" --list-all-certs "$TOK" > "$T/p11tool" 2>/dev/null
	check_grep "p11tool lists it with the key's id" "id=%42%42;object=api;type=cert" "$T/p11tool"
}

# rekey with empty ids
test_rekey_empty_ids() {
	keypair web.pending || { echo "# keygen failed"; exit 99; }
	issue "$CA" "$T/web.pending.pub" "$T/web3.pem" web.example.test 0x0e03
	check "rekey install on the TPM" install "$T/web3.pem" "$TOK"
	certs
	check_grep "the new certificate is labelled web" "^\|web\|0e03$" "$T/certs"
	check_grep "the old one is retired" "^\|web\.retired-[0-9]{8}\|0e02$" "$T/certs"
	p11 -O > "$T/objs" 2>/dev/null
	[ "$(grep -c 'label: *web$' "$T/objs")" = 3 ] && ok "key pair and certificate labelled web (3 objects)" ||
		not_ok "$(grep -c 'label: *web$' "$T/objs") objects labelled web"
	[ "$(grep -cE 'label: *web\.retired-[0-9]{8}$' "$T/objs")" = 3 ] && ok "the old pair and certificate are retired" ||
		not_ok "retired: $(grep -c retired "$T/objs")"
	check_nogrep "nothing is left pending" "pending" "$T/objs"
	# the certificate labelled web belongs to the key labelled web
	pkcs11-tool --module "$M" --token-label tp --read-object --type pubkey --label web -o "$T/now.der" >/dev/null 2>&1
	[ "$(openssl pkey -pubin -inform DER -in "$T/now.der" 2>/dev/null)" = "$(cat "$T/web.pending.pub")" ] &&
		ok "the public key labelled web is the new one" || not_ok "wrong public key labelled web"
}

# refusals
test_refusals() {
	openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$T/soft.key" 2>/dev/null
	openssl pkey -in "$T/soft.key" -pubout -out "$T/soft.pub" 2>/dev/null
	issue "$CA" "$T/soft.pub" "$T/foreign.pem" foreign.example.test 0x0f02
	certs; cp "$T/certs" "$T/before"
	check_fails "a certificate for a key not on the TPM is refused" 4 install "$T/foreign.pem" "$TOK"
	certs
	cmp -s "$T/certs" "$T/before" && ok "the TPM token is unchanged" || not_ok "token changed"
}

# roots: the user's login on tpm2-pkcs11
test_roots() {
	check "roots install into the TPM token with the user PIN" "$P11KM" --module "$M" roots install "$CA/root.pem" \
		--to "token:$TOK" --pin-source "file:$PIN"
	p11tool --provider "$M" --list-all-trusted "$TOK" > "$T/trusted" 2>/dev/null
	check_grep "p11tool lists it as trusted" "object=p11km%20Test%20Root" "$T/trusted"
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/r2.key" \
		-out "$T/root2.pem" -days 30 -subj "/CN=p11km Second Root" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
	check_fails "with the SO PIN it is refused (tpm2-pkcs11 wants the user)" 3 "$P11KM" --module "$M" roots install \
		"$T/root2.pem" --to "token:$TOK" --so-pin-source "file:$SOPIN"
	check_grep "the error says to use --pin-source" "CKR_USER_NOT_LOGGED_IN.*--pin-source" "$T/err"
	check "roots list on the TPM token" "$P11KM" --module "$M" roots list "token:$TOK"
	check_grep "lists the root" "^$(fp "$CA/root.pem") " "$T/out"
	check "roots remove from the TPM token" "$P11KM" --module "$M" roots remove "$CA/root.pem" --from "token:$TOK" \
		--pin-source "file:$PIN"
	p11tool --provider "$M" --list-all-trusted "$TOK" > "$T/trusted" 2>/dev/null
	check_nogrep "p11tool no longer lists it" "p11km%20Test%20Root" "$T/trusted"
}

run_tests
