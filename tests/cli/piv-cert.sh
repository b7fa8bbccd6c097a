#!/bin/bash
# The certificate lifecycle on an emulated PIV card (tests/lib/piv.sh).
# Through ykcs11: cert install into the key's slot under the SO login (the
# management key) with the template ykcs11 takes, over the placeholder and
# then over the old certificate (a slot holds one: the old one is kept as a
# file), seen by object list, bind emit and req renew; roots install
# refused.  Through OpenSC (read-only): cert install refused, naming the
# tools that can write.  The card pulled mid-command, and put back.
# Judges: yubico-piv-tool, pkcs11-tool and openssl.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"
. "$top_srcdir/tests/lib/piv.sh"

# in9a: the DER of the certificate in slot 9a, as yubico-piv-tool reads it
in9a() { ypt -a read-certificate -s 9a 2>/dev/null | openssl x509 -outform DER 2>/dev/null | od -An -tx1; }
der() { openssl x509 -in "$1" -outform DER 2>/dev/null | od -An -tx1; }

setup() {
	need openssl pkcs11-tool yubico-piv-tool
	piv_test_card
	K="$TOK;id=%01;type=private"
	ca_setup "$T/ca" || { echo "# no test CA"; exit 99; }
	TODAY=$(date -u +%Y%m%d)
}

# cert install through ykcs11
test_install() {
	check "key generate --slot 9a" "$P11KM" key generate "$TOK" --slot 9a --so-pin-source "file:$MGM"
	PLACEHOLDER=$(in9a)
	check_fails "req renew of ykcs11's placeholder: refused (exit 2)" 2 "$P11KM" req renew \
		"$TOK;object=X.509%20Certificate%20for%20PIV%20Authentication;type=cert" -o "$T/ph.csr" \
		--pin-source "file:$PIN"
	check_one_line_error "...it is no issued certificate" "placeholder ykcs11 wrote at key generation.*req new"
	check "req new with the 9a key" "$P11KM" req new "$K" --subject CN=piv.example.test -o "$T/9a.csr" \
		--pin-source "file:$PIN"
	openssl req -in "$T/9a.csr" -pubkey -noout > "$T/9a.pub"
	for n in 1 2 3 4; do
		issue "$T/ca" "$T/9a.pub" "$T/leaf$n.pem" piv.example.test "0x200$n"
		cat "$T/leaf$n.pem" "$T/ca/inter.pem" > "$T/reply$n.pem"
	done
	check_fails "cert install with the user PIN only: exit 3" 3 "$P11KM" cert install "$T/reply1.pem" "$K" \
		--ca-file "$T/ca/root.pem" --pin-source "file:$PIN"
	check_one_line_error "...saying the SO login writes certificates" "security officer.*--so-pin-source.*management key"
	check_eq "...and the slot still holds the placeholder" "$(in9a)" "$PLACEHOLDER"
	check "cert install with --so-pin-source (the management key)" "$P11KM" cert install "$T/reply1.pem" "$K" \
		--ca-file "$T/ca/root.pem" --so-pin-source "file:$MGM" --out-dir "$T/out1"
	cp "$T/out" "$T/install1"
	check_eq "yubico-piv-tool: slot 9a holds the new certificate" "$(in9a)" "$(der "$T/leaf1.pem")"
	check_grep "the placeholder was written over, and not kept" \
		"^replaced: certificate .*overwritten by the token \(one certificate per key slot\); a placeholder, not kept" "$T/install1"
	check_grep "the intermediate is not put on the card (its objects are the key slots)" \
		"^kept: intermediate .*holds certificates only in its key slots" "$T/install1"
	check_grep "the refused template attributes are noted and recorded" \
		"note: .*CKA_CERTIFICATE_CATEGORY.*written without them \(recorded in $P11KM_STATE_DIR/learned/" "$T/err"
	check "openssl: cert.pem and chain.pem verify to the root" openssl verify -CAfile "$T/ca/root.pem" \
		-untrusted "$T/out1/chain.pem" "$T/out1/cert.pem"
	check "the attestation still verifies (yubico-piv-tool -a attest)" ypt -a attest -s 9a -o "$T/att.pem"
	check "key attest still finds the attestation, not the new leaf" "$P11KM" key attest "$K" \
		-o "$T/attest.pem" --ca-file "$PIV_ATTEST_ROOT" --pin-source "file:$PIN"
	check "the same reply again: nothing to do" "$P11KM" cert install "$T/reply1.pem" "$K" \
		--ca-file "$T/ca/root.pem" --so-pin-source "file:$MGM"
	check_grep "...already on the token" "^kept: certificate .*already on the token" "$T/out"
}

# a renewed certificate: the slot's old one is kept as a file
test_renewed() {
	check "cert install --keep-old of the next certificate" "$P11KM" cert install "$T/reply2.pem" "$K" \
		--ca-file "$T/ca/root.pem" --so-pin-source "file:$MGM" --keep-old --out-dir "$T/out2"
	check_grep "the old one is overwritten by the card, and kept in --out-dir" \
		"^replaced: certificate .*overwritten by the token .*kept as $T/out2/replaced-$TODAY-2001\.pem" "$T/out"
	check_eq "...the kept file is the first certificate" "$(der "$T/out2/replaced-$TODAY-2001.pem")" \
		"$(der "$T/leaf1.pem")"
	check_eq "yubico-piv-tool: 9a holds the second" "$(in9a)" "$(der "$T/leaf2.pem")"
	check "without --out-dir" "$P11KM" cert install "$T/reply3.pem" "$K" --ca-file "$T/ca/root.pem" \
		--so-pin-source "file:$MGM"
	KEPT=$P11KM_STATE_DIR/replaced/$SERIAL-01-$TODAY-2002.pem
	check_eq "...the old one is kept in the state directory" "$(der "$KEPT")" "$(der "$T/leaf2.pem")"
	check_eq "yubico-piv-tool: 9a holds the third" "$(in9a)" "$(der "$T/leaf3.pem")"
}

# object list, bind emit, req renew see it (bind emit of an RSA key: piv-nginx.sh)
test_list_bind_renew() {
	check "object list: the slot's certificate" "$P11KM" object list "$TOK;id=%01;type=cert"
	check_grep "...it is the third (serial 2003)" "serial: +2003" "$T/out"
	CURI=$(grep "^pkcs11:.*object=X.509%20Certificate%20for%20PIV%20Authentication;" "$T/out" | head -1)
	check_fails "bind emit nginx with the 9a (EC) key: refused (exit 1)" 1 "$P11KM" bind emit nginx --key "$K" \
		--listen 127.0.0.1:8443 --out-dir "$T/ng" --pin-file "$T/srv.pin" --pin-source "file:$PIN"
	check_one_line_error "...why: the engine leaves an error nginx fails on (piv-nginx.sh: RSA works)" \
		"leaves an OpenSSL error behind"
	check "req renew from the certificate on the card" "$P11KM" req renew "$CURI" -o "$T/renew.csr" \
		--pin-source "file:$PIN"
	check "openssl: the renewal request verifies" openssl req -in "$T/renew.csr" -verify -noout
	check_eq "...it is for the 9a key" "$(openssl req -in "$T/renew.csr" -noout -pubkey)" "$(cat "$T/9a.pub")"
	check_grep "...with the certificate's subject" "subject=CN ?= ?piv.example.test" \
		<(openssl req -in "$T/renew.csr" -noout -subject)
	check "token doctor shows what was learned" "$P11KM" token doctor "$TOK" --pin-source "file:$PIN"
	check_grep "...the refused certificate attributes" "^learned +certificate-template: .*CKA_CERTIFICATE_CATEGORY" "$T/out"
	check_grep "...and the refused sign-only key template" "^learned +key-template: C_GenerateKeyPair refuses" "$T/out"
}

# roots install: a PIV card holds no roots
test_roots() {
	check_fails "roots install into the card: refused (exit 1)" 1 "$P11KM" roots install "$T/ca/root.pem" \
		--to "token:$TOK" --so-pin-source "file:$MGM"
	check_one_line_error "...saying why and where roots can go" "PIV card: it holds certificates only in its key slots.*pem-bundle"
}

# OpenSC: read-only
test_opensc() {
	OTOK=$(P11KM_MODULE=$PIV_OPENSC "$P11KM" token list | head -1)
	check_fails "OpenSC: cert install is refused (exit 1)" 1 env P11KM_MODULE="$PIV_OPENSC" "$P11KM" \
		cert install "$T/reply4.pem" "$OTOK;id=%01;type=private" --ca-file "$T/ca/root.pem" \
		--pin-source "file:$PIN" --out-dir "$T/out4"
	check_one_line_error "...naming what can write to the card" \
		"cannot store certificates through this module.*read-only.*ykcs11.*yubico-piv-tool.*piv-tool"
	check_eq "...the card is unchanged" "$(in9a)" "$(der "$T/leaf3.pem")"
	check "OpenSC: req renew from the certificate on the card" env P11KM_MODULE="$PIV_OPENSC" "$P11KM" \
		req renew "$OTOK;id=%01;type=cert" -o "$T/orenew.csr" --pin-source "file:$PIN"
	check "openssl: it verifies" openssl req -in "$T/orenew.csr" -verify -noout
	check_eq "...for the 9a key" "$(openssl req -in "$T/orenew.csr" -noout -pubkey)" "$(cat "$T/9a.pub")"
	[ -n "$(ls -A "$T/out4" 2>/dev/null)" ] && not_ok "...but it wrote into --out-dir" || ok "...and writes nothing into --out-dir"
}

# pulled INS COMMAND...: the card goes when the command sends INS
pulled() {
	local ins=$1 what=$2
	shift 2
	piv_card_pull_on "$T/piv" "$ins"
	check_fails "card pulled during $what: exit 3" 3 "$@"
	check_one_line_error "...one line saying so" "CKR_DEVICE_ERROR: was the card or key pulled out\? put it back"
	piv_card_wait_pulled "$T/piv" && ok "...the card was pulled then" || not_ok "the card was not pulled"
	rm -f "$PIV_CARD_DIR/pull-on"
	piv_card_insert "$T/piv" || not_ok "the card cannot be put back"
}

# the card pulled mid-command: one line, exit 3; put back: works
test_card_pulled() {
	pulled 87 "req new (the signature)" "$P11KM" req new "$K" --subject CN=x -o "$T/gone.csr" \
		--pin-source "file:$PIN"
	[ -e "$T/gone.csr" ] && not_ok "...but it wrote a request" || ok "...and writes no request"
	pulled db "cert install (the certificate write)" "$P11KM" cert install "$T/reply4.pem" "$K" \
		--ca-file "$T/ca/root.pem" --so-pin-source "file:$MGM" --out-dir "$T/out5"
	# (the slot's old certificate was kept first: replaced-*.pem, nothing lost)
	[ -e "$T/out5/cert.pem" ] && not_ok "...but it wrote cert.pem" || ok "...and writes no cert.pem"
	check_eq "...the old certificate kept before the write" "$(der "$T/out5/replaced-$TODAY-2003.pem")" \
		"$(der "$T/leaf3.pem")"
	pulled 47 "key generate" "$P11KM" key generate "$TOK" --slot 9d --so-pin-source "file:$MGM"
	piv_card_pull_on "$T/piv" 87
	check_fails "OpenSC: card pulled during req new: exit 3" 3 env P11KM_MODULE="$PIV_OPENSC" "$P11KM" req new \
		"$OTOK;id=%01;type=private" --subject CN=x -o "$T/gone2.csr" --pin-source "file:$PIN"
	check_one_line_error "...one line saying so" "CKR_[A-Z_]+: (the token was removed|was the card or key pulled out)"
	piv_card_wait_pulled "$T/piv" && ok "...the card was pulled then" || not_ok "the card was not pulled"
	rm -f "$PIV_CARD_DIR/pull-on"
	piv_card_insert "$T/piv" || not_ok "the card cannot be put back"
	check "OpenSC, put back: req new works" env P11KM_MODULE="$PIV_OPENSC" "$P11KM" req new \
		"$OTOK;id=%01;type=private" --subject CN=back -o "$T/back.csr" --pin-source "file:$PIN"
	check "put back: cert install works" "$P11KM" cert install "$T/reply4.pem" "$K" \
		--ca-file "$T/ca/root.pem" --so-pin-source "file:$MGM"
	check_eq "yubico-piv-tool: 9a holds the fourth" "$(in9a)" "$(der "$T/leaf4.pem")"
}

run_tests
