#!/bin/bash
# renew on the TPM (tpm2-pkcs11 over swtpm).  --rekey always: a two-day
# certificate from a local CA, tracked with a file CA (the request written,
# the reply signed by openssl and dropped in by this test, the next run
# installs) and a reload command.  The new key is made on the TPM, the
# request signed by it, the certificate installed next to it, the old pair
# and certificate retired.  And through a CMP CA (tests/cmp-ca) whose
# profile sends kur: the update is protected by the TPM key of the
# certificate it renews.  Judges: pkcs11-tool (the token's objects),
# openssl (the request's signature, the certificate's key and chain).
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

# --- the same through a CMP CA that updates the key's certificate (kur) ----------
start_cmpca() { "$CMPCA" "$1" "$T/cmp.pem" "$T/cmp.key" "$T/secret" "$T/mode" > "$T/cmpca.log" 2>&1 &
	SERVER_PID=$!; cleanup_add "kill $SERVER_PID"; }

test_renew_through_cmp_kur() {
	CMPCA=$top_builddir/tests/cmp-ca
	check "the CMP test CA is built" test -x "$CMPCA"
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3 \
		-keyout "$T/cmp.key" -out "$T/cmp.pem" -subj "/CN=track-tpm2 CMP CA $$" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
	(umask 077; printf 'kur-secret-%s' "$$" > "$T/secret")
	check "the CMP test CA starts on 127.0.0.1" start_server "$T/cmpca.log" 1 start_cmpca
	for k in "cmp:" "cmpkur:--cmp-cmd kur"; do
		# shellcheck disable=SC2086
		check "ca add ${k%%:*}" "$P11KM" ca add "${k%%:*}" --kind cmp --url "http://127.0.0.1:$PORT/pkix/" \
			--secret-source "file:$T/secret" --ref tpm --ca-file "$T/cmp.pem" --config-dir "$T/ca.d" ${k#*:}
	done
	check "key generate upd (EC P-256 on the TPM)" km key generate "$TOK" --type ec:p256 --label upd
	check "req new upd" km req new "$TOK;object=upd;type=private" --subject CN=upd.tpm.test -o "$T/upd.csr"
	check "req submit --install through the CMP CA (p10cr)" km req submit "$T/upd.csr" \
		"$TOK;object=upd;type=private" --ca cmp --install --verify-ca-file "$T/cmp.pem" \
		-o "$T/upd1.pem" --config-dir "$T/ca.d"
	check "track add upd --ca cmpkur (a kur profile)" km track add "$TOK;object=upd;type=cert" \
		--state-dir "$S" --ca cmpkur --ca-file "$T/cmp.pem"
	check "renew --force --json upd: renewed through kur, protected by the TPM key" km --force --json \
		renew upd --state-dir "$S" --config-dir "$T/ca.d"
	cp "$T/out" "$T/kur.json"
	OLDSER=$(openssl x509 -in "$T/upd1.pem" -noout -serial | sed 's/serial=//')
	check "... a new serial" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))[0]
assert d["result"] == "renewed" and d["old_serial"] == sys.argv[2] and d["new_serial"] != sys.argv[2], d' \
		"$T/kur.json" "$OLDSER"
	pkcs11-tool --module "$TPM2_MODULE" --token-label tp --read-object --type cert --label upd \
		-o "$T/upd2.der" >/dev/null 2>&1
	check "the token's upd is the updated certificate, verified by openssl" sh -c \
		"openssl x509 -inform DER -in '$T/upd2.der' -out '$T/upd2.pem' &&
		 openssl verify -CAfile '$T/cmp.pem' '$T/upd2.pem'"
	openssl x509 -in "$T/upd1.pem" -noout -pubkey > "$T/upd1.pub"
	openssl x509 -in "$T/upd2.pem" -noout -pubkey > "$T/upd2.pub"
	check "... for the same key" cmp "$T/upd1.pub" "$T/upd2.pub"
}

test_kur_to_a_new_key_refused() {
	pkcs11-tool --module "$TPM2_MODULE" --token-label tp --login --pin 1234 -O 2>/dev/null > "$T/before.txt"
	check "track add --force upd --rekey always (through the kur profile)" km --force track add \
		"$TOK;object=upd;type=cert" --state-dir "$S" --ca cmpkur --ca-file "$T/cmp.pem" --rekey always
	check_fails "renew --force upd: refused, exit 1" 1 km --force --json renew upd --state-dir "$S" \
		--config-dir "$T/ca.d"
	cp "$T/out" "$T/refused.json"
	check "... in one line, saying why and what works" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))[0]
r = d["reason"]
assert d["result"] == "failed" and "\n" not in r, d
assert "a TPM (tpm2-pkcs11) has room for one loaded key" in r and "--rekey never" in r, d' "$T/refused.json"
	pkcs11-tool --module "$TPM2_MODULE" --token-label tp --login --pin 1234 -O 2>/dev/null > "$T/after.txt"
	check "nothing on the token changed (pkcs11-tool lists the same objects)" cmp "$T/before.txt" "$T/after.txt"
	check_eq "the entry is idle: no renewal under way" "$(json_get "$S/track/upd.json" 'd["state"]["step"]')" idle
}

run_tests
