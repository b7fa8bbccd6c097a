#!/bin/bash
# renew --rekey always on the TPM: tpm2-pkcs11 over swtpm, a two-day
# certificate from a local CA, tracked with a file CA (the request written,
# the reply signed by openssl and dropped in by this test, the next run
# installs) and a reload command.  The new key is made on the TPM, the
# request signed by it, the certificate installed next to it, the old pair
# and certificate retired.  Judges: pkcs11-tool (the token's objects),
# openssl (the request's signature, the certificate's key).
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/tpm2.sh"
. "$top_srcdir/tests/lib/certs.sh"

setup() {
	need pkcs11-tool openssl python3
	tpm2_available || skip_all "swtpm or tpm2-pkcs11 not installed"
	tpm2_test_token
	S=$T/st
	CA=$T/ca-in
	mkdir -p "$CA"
	ca_setup "$T/lca"
	CERT="$TOK;object=web;type=cert"
}

km() { "$P11KM" --pin-source "file:$PIN" "$@"; }
# objs CLASS: "label|id" of the token's objects of CLASS (pkcs11-tool -O)
objs() {
	pkcs11-tool --module "$TPM2_MODULE" --token-label tp --login --pin 1234 -O --type "$1" 2>/dev/null |
	awk '/^  label:/{sub(/^  label: +/,""); l=$0} /^  ID:/{print l"|"$2}' | sort
}

test_first_certificate() {
	check "key generate web (EC P-256 on the TPM)" km key generate "$TOK" --type ec:p256 --label web
	check "req new" km req new "$TOK;object=web;type=private" --subject CN=web.tpm.test \
		--san DNS:web.tpm.test -o "$T/web.csr"
	check "the local CA issues a two-day certificate" openssl x509 -req -in "$T/web.csr" \
		-CA "$T/lca/inter.pem" -CAkey "$T/lca/inter.key" -set_serial 0x3001 -days 2 \
		-copy_extensions copy -out "$T/web1.pem"
	cat "$T/web1.pem" "$T/lca/inter.pem" > "$T/web1-chain.pem"
	check "cert install it on the TPM" km cert install "$T/web1-chain.pem" "$TOK;object=web;type=private" \
		--ca-file "$T/lca/root.pem"
	OLDID=$(objs privkey | sed -n 's/^web|//p')
	check "one key pair web (pkcs11-tool)" test -n "$OLDID"
}

test_track_rekey_always() {
	printf '#!/bin/sh\necho "$P11KM_OLD_SERIAL $P11KM_NEW_SERIAL" >> "%s"\n' "$T/reload.log" > "$T/reload"
	chmod +x "$T/reload"
	check "track add --rekey always --ca file:DIR --reload -- CMD" km track add "$CERT" \
		--state-dir "$S" --ca "file:$CA" --ca-file "$T/lca/root.pem" --rekey always \
		--reload -- "$T/reload"
	check "renew --all: the request goes to the file CA" km renew --all --state-dir "$S"
	check_grep "... waiting for the reply" '^web: waiting: waiting for the reply' "$T/out"
	check "the request verifies (openssl req -verify)" openssl req -in "$CA/web.csr" -verify -noout
	openssl req -in "$CA/web.csr" -pubkey -noout > "$T/req.pub"
	openssl x509 -in "$T/web1.pem" -pubkey -noout > "$T/old.pub"
	check "... signed by a new key, not the old one" sh -c "! cmp -s '$T/req.pub' '$T/old.pub'"
	check_grep "the new pair is 'web.pending' on the TPM (pkcs11-tool)" '^web\.pending\|' \
		<(objs privkey)
}

test_renew_installs_the_new_key() {
	check "the CA signs the request" openssl x509 -req -in "$CA/web.csr" -CA "$T/lca/inter.pem" \
		-CAkey "$T/lca/inter.key" -set_serial 0x3002 -days 90 -copy_extensions copy \
		-out "$CA/web.crt"
	check "renew --all --json: renewed" km --json renew --all --state-dir "$S"
	cp "$T/out" "$T/renew.json"
	check "... serial 3002" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))[0]
assert d["result"] == "renewed" and d["new_serial"] == "3002" and d["old_serial"] == "3001", d' \
		"$T/renew.json"
	check_eq "the reload command ran with both serials" "$(cat "$T/reload.log")" "3001 3002"
	pkcs11-tool --module "$TPM2_MODULE" --token-label tp --read-object --type cert --label web \
		-o "$T/now.der" >/dev/null 2>&1
	check "the token's web is the new certificate (pkcs11-tool)" \
		test "$(openssl x509 -inform DER -in "$T/now.der" -noout -serial)" = serial=3002
	openssl x509 -inform DER -in "$T/now.der" -pubkey -noout > "$T/now.pub"
	check "... for the request's new key" cmp "$T/now.pub" "$T/req.pub"
	NEWID=$(objs privkey | sed -n 's/^web|//p')
	check "the private key labelled web is the new one (another CKA_ID)" \
		test -n "$NEWID" -a "$NEWID" != "$OLDID"
	check_grep "the old pair is retired, not destroyed" "^web\.retired-[0-9]{8}(-[0-9]+)?\|$OLDID\$" \
		<(objs privkey)
	check_grep "the old certificate too" '^web\.retired-' <(objs cert)
	check_nogrep "no pending key is left" '^web\.pending' <(objs privkey)
	check "renew again: not due" km renew --all --state-dir "$S"
	check_grep "... not due" '^web: not due' "$T/out"
}

run_tests
