#!/bin/sh
# Bad input to cert install and roots install: one-line errors, exit 2 (or
# the code documented), nothing written to the token or to files.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

bad() { # DESCRIPTION EXIT PATTERN REPLY
	check_fails "$1" "$2" "$P11KM" cert install "$4" "$TOK" --pin-source "file:$PIN" \
		--ca-file "$CA/root.pem" --out-dir "$T/srv"
	check_grep "  ... one line saying what is wrong" "$3" "$T/err"
	[ "$(wc -l < "$T/err")" -le 2 ] || not_ok "  ... error is more than one line"
}

setup() {
	need openssl pkcs11-tool python3
	softhsm_setup
	new_token bad
	M=$SOFTHSM2_MODULE
	PIN=$T/pin-bad
	TOK="pkcs11:token=bad"
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	CA=$T/ca
	token_keypair "$M" bad "$PIN" web 01 "$T/web.pub" || { echo "keygen failed"; exit 99; }
	issue "$CA" "$T/web.pub" "$T/leaf.pem" web.example.test 0x0c01
	cat "$T/leaf.pem" "$CA/inter.pem" > "$T/good.pem"
	"$P11KM" cert install "$T/good.pem" "$TOK" --pin-source "file:$PIN" --ca-file "$CA/root.pem" >/dev/null 2>&1
	token_certs "$M" bad > "$T/certs.orig"
	grep -q "^01|web|0c01$" "$T/certs.orig" || { echo "setup failed"; exit 99; }
	mkdir "$T/srv"
	echo old > "$T/srv/cert.pem"
}

# replies that are no certificates: empty, garbage, truncated, damaged
test_not_certificates() {
	: > "$T/empty"
	bad "an empty reply" 2 "is empty" "$T/empty"
	head -c 3000 /dev/urandom > "$T/garbage"
	printf '\060\202' | cat - "$T/garbage" > "$T/garbage.der"
	bad "garbage" 2 "neither PEM nor DER|does not parse" "$T/garbage"
	bad "garbage that starts like DER" 2 "does not parse" "$T/garbage.der"
	openssl x509 -in "$T/leaf.pem" -outform DER -out "$T/leaf.der"
	LEN=$(wc -c < "$T/leaf.der")
	for cut in 1 2 4 10 100 $((LEN / 2)) $((LEN - 1)); do
		head -c $cut "$T/leaf.der" > "$T/trunc-$cut.der"
		check_fails "DER truncated to $cut of $LEN bytes" 2 "$P11KM" cert install "$T/trunc-$cut.der" "$TOK" \
			--pin-source "file:$PIN" --ca-file "$CA/root.pem"
	done
	cat "$T/leaf.der" "$T/leaf.der" | head -c $((LEN + 7)) > "$T/trailing.der"
	bad "DER with trailing bytes" 2 "does not parse" "$T/trailing.der"
	sed '3d' "$T/leaf.pem" > "$T/damaged.pem"
	bad "a PEM block with a line missing" 2 "does not parse|damaged" "$T/damaged.pem"
	openssl crl2pkcs7 -nocrl -out "$T/empty.p7b" 2>/dev/null
	bad "a PKCS#7 with no certificates" 2 "no certificates" "$T/empty.p7b"
	openssl crl2pkcs7 -nocrl -outform DER -out "$T/empty-der.p7b" 2>/dev/null
	bad "a DER PKCS#7 with no certificates" 2 "no certificates" "$T/empty-der.p7b"
	cat "$T/leaf.pem" "$CA/inter.key" > "$T/withkey.pem"
	bad "a reply with a private key in it" 2 "PRIVATE KEY.*only certificates" "$T/withkey.pem"
}

# serial numbers outside RFC 5280
test_bad_serials() {
	openssl x509 -req -in "$CA/throwaway.csr" -force_pubkey "$T/web.pub" -CA "$CA/inter.pem" \
		-CAkey "$CA/inter.key" -set_serial -5 -days 30 -extfile "$CA/ca.cnf" -extensions leaf \
		-out "$T/neg.pem" 2>/dev/null
	bad "a negative serial number" 2 "negative serial" "$T/neg.pem"
	openssl x509 -req -in "$CA/throwaway.csr" -force_pubkey "$T/web.pub" -CA "$CA/inter.pem" \
		-CAkey "$CA/inter.key" -set_serial 0x0102030405060708090a0b0c0d0e0f101112131415 -days 30 \
		-extfile "$CA/ca.cnf" -extensions leaf -out "$T/s21.pem" 2>/dev/null
	[ "$(openssl x509 -in "$T/s21.pem" -noout -serial | sed 's/serial=//' | wc -c)" = 43 ] ||
		echo "# warning: the 21-byte serial was not made"
	bad "a 21-byte serial number" 2 "too long serial" "$T/s21.pem"
	openssl x509 -req -in "$CA/throwaway.csr" -force_pubkey "$T/web.pub" -CA "$CA/inter.pem" \
		-CAkey "$CA/inter.key" -set_serial 0x0102030405060708090a0b0c0d0e0f1011121314 -days 30 \
		-extfile "$CA/ca.cnf" -extensions leaf -out "$T/s20.pem" 2>/dev/null
	cat "$T/s20.pem" "$CA/inter.pem" > "$T/s20.reply"
	check "a 20-byte serial number is fine" "$P11KM" cert install "$T/s20.reply" "$TOK" --pin-source "file:$PIN" \
		--ca-file "$CA/root.pem" --dry-run
}

# a chain with a cycle: A issued by B, B issued by A, leaf issued by A
test_chain_cycle() {
	for n in A B; do
		openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$n.key" \
			-out "$T/$n.self" -days 30 -subj "/CN=Cycle $n" -addext "basicConstraints=critical,CA:TRUE" \
			-addext "subjectKeyIdentifier=hash" 2>/dev/null
		openssl req -new -key "$T/$n.key" -subj "/CN=Cycle $n" -out "$T/$n.csr" 2>/dev/null
	done
	openssl x509 -req -in "$T/A.csr" -CA "$T/B.self" -CAkey "$T/B.key" -set_serial 0x0d01 -days 30 \
		-extfile "$CA/ca.cnf" -extensions ca -out "$T/A.pem" 2>/dev/null
	openssl x509 -req -in "$T/B.csr" -CA "$T/A.self" -CAkey "$T/A.key" -set_serial 0x0d02 -days 30 \
		-extfile "$CA/ca.cnf" -extensions ca -out "$T/B.pem" 2>/dev/null
	openssl x509 -req -in "$CA/throwaway.csr" -force_pubkey "$T/web.pub" -CA "$T/A.pem" -CAkey "$T/A.key" \
		-set_serial 0x0d03 -days 30 -extfile "$CA/ca.cnf" -extensions leaf -out "$T/cyc-leaf.pem" 2>/dev/null
	cat "$T/cyc-leaf.pem" "$T/A.pem" "$T/B.pem" > "$T/cycle.pem"
	bad "a chain with a cycle" 2 "cycle" "$T/cycle.pem"
}

many() { # N OUT
	python3 - "$T/leaf.der" "$2" "$1" <<'EOF'
import base64, sys
der = open(sys.argv[1], 'rb').read()
i = der.index(b'\x02\x02\x0c\x01')   # the serial INTEGER 0x0c01
with open(sys.argv[2], 'w') as f:
    for k in range(int(sys.argv[3])):
        d = der[:i + 2] + bytes([0x10 + k // 256 % 64, k % 256]) + der[i + 4:]
        b = base64.b64encode(d).decode()
        f.write("-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n" %
                "\n".join(b[j:j + 64] for j in range(0, len(b), 64)))
EOF
}

# thousands of certificates: distinct copies (serial bytes changed) of one
test_thousands() {
	many 2000 "$T/many.pem"
	bad "a reply with 2000 certificates" 2 "more than 32 certificates" "$T/many.pem"
	many 4200 "$T/many2.pem"
	check_fails "roots install of 4200 certificates is refused" 2 "$P11KM" roots install "$T/many2.pem" --to "pem-bundle:$T/b.pem" --allow-non-ca
	check_grep "  ... saying how many are allowed" "more than 4096" "$T/err"
	[ ! -e "$T/b.pem" ] && ok "  ... and no bundle was written" || not_ok "bundle written"
	head -c 5000000 /dev/zero | tr '\0' 'A' > "$T/huge"
	bad "a 5 MB reply" 2 "larger than" "$T/huge"
}

# roots: a non-CA as root, garbage, symlinks at output paths
test_bad_roots() {
	check_fails "roots install of a non-CA certificate" 2 "$P11KM" roots install "$T/leaf.pem" --to "pem-bundle:$T/b.pem"
	check_grep "  ... says it is not a CA" "not a CA certificate" "$T/err"
	check_fails "roots install of garbage" 2 "$P11KM" roots install "$T/garbage" --to "pem-bundle:$T/b.pem"
	echo "precious" > "$T/precious"
	ln -s "$T/precious" "$T/link.pem"
	check_fails "a symlink planted at a pem-bundle path is refused" 1 "$P11KM" roots install "$CA/root.pem" --to "pem-bundle:$T/link.pem"
	check_grep "  ... naming the symbolic link" "symbolic link" "$T/err"
	[ "$(cat "$T/precious")" = precious ] && ok "  ... and its target is untouched" || not_ok "target changed"
	rm "$T/srv/cert.pem"; ln -s "$T/precious" "$T/srv/cert.pem"
	issue "$CA" "$T/web.pub" "$T/leaf2.pem" web.example.test 0x0c02
	cat "$T/leaf2.pem" "$CA/inter.pem" > "$T/good2.pem"
	bad "a symlink planted at --out-dir/cert.pem" 1 "symbolic link" "$T/good2.pem"
	[ "$(cat "$T/precious")" = precious ] && ok "  ... and its target is untouched" || not_ok "target changed"
	check_fails "roots remove with something that is neither fingerprint nor file" 2 "$P11KM" roots remove "abcd" --from "pem-bundle:$T/b.pem"
	check_one_line_error "  ... in one line saying why the file was not read" "nor a certificate file: unable to open 'abcd'"
	echo "not a certificate" > "$T/notcert.pem"
	check_fails "roots remove with a file that holds no certificate" 2 "$P11KM" roots remove "$T/notcert.pem" --from "pem-bundle:$T/b.pem"
	check_nogrep "  ... says why once, not its own first half twice" "certificate file: .*SHA-256 fingerprint" "$T/err"
	check_grep "  ... and why: the file holds no certificate" "certificate file: .*neither PEM nor DER" "$T/err"
}

# nothing of this touched the token
test_token_untouched() {
	token_certs "$M" bad > "$T/certs.now"
	cmp -s "$T/certs.orig" "$T/certs.now" && ok "the token is unchanged after all the bad input" ||
		{ not_ok "the token changed"; diff "$T/certs.orig" "$T/certs.now" | sed 's/^/#   /'; }
	[ -z "$(find "$T/srv" -name '*.p11km-*')" ] && ok "no temporary files in the output directory" || not_ok "temp files"
}

run_tests
