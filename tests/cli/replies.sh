#!/bin/sh
# cert install with replies as real CAs hand them out (FIELD-NOTES "CA
# replies as real CAs hand them out"): certsrv's bare base64 (64/76
# columns, CRLF, one line), its base64 .p7b under CERTIFICATE armor, UTF-16
# saves with a BOM, and a leaf-only reply whose intermediate is missing.
# Inputs made with openssl, base64, sed and iconv; judged by pkcs11-tool.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

install() { "$P11KM" cert install "$@" "$TOK" --pin-source "file:$PIN" --ca-file "$CA/root.pem"; }
serial_on_token() { token_certs "$M" rep | awk -F'|' '$1 == "01" { print $3 }'; }

setup() {
	need openssl pkcs11-tool base64 iconv
	softhsm_setup
	new_token rep
	M=$SOFTHSM2_MODULE
	PIN=$T/pin-rep
	TOK="pkcs11:token=rep"
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	CA=$T/ca
	token_keypair "$M" rep "$PIN" web 01 "$T/web.pub" || { echo "keygen failed"; exit 99; }
}

# a leaf-only reply whose intermediate is nowhere: the message names it
test_leaf_only() {
	issue "$CA" "$T/web.pub" "$T/alone.pem" web.example.test 0x0a00
	INTER=$(openssl x509 -in "$T/alone.pem" -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//')
	check_fails "a leaf-only reply without its intermediate is refused" 5 install "$T/alone.pem"
	check_one_line_error "  ... in one line" "missing"
	check_grep "  ... naming the missing issuer's subject (as openssl prints it)" \
		"issuer '$INTER' of 'CN=web.example.test' is missing" "$T/err"
	check_nogrep "  ... without sending the user for a root first" "give the issuing root" "$T/err"
	check_eq "  ... and nothing is on the token" "$(serial_on_token)" ""
}

each() { # DESCRIPTION FILE
	check "$1" install "$2"
	check_eq "  ... pkcs11-tool reads serial $serial on the token" "$(serial_on_token)" "$serial"
}
next() { # make $T/leaf.pem/.der and $T/leaf.p7b (leaf + intermediate) with a new serial
	n=$((n + 1))
	serial=$(printf '0b%02x' $n)
	issue "$CA" "$T/web.pub" "$T/leaf.pem" web.example.test "0x$serial"
	openssl x509 -in "$T/leaf.pem" -outform DER -out "$T/leaf.der"
	openssl crl2pkcs7 -nocrl -certfile "$T/leaf.pem" -certfile "$CA/inter.pem" -outform DER \
		-out "$T/leaf.p7b" 2>/dev/null
}
crlf() { sed 's/$/\r/'; }

# each format: a new serial, installed, read back by pkcs11-tool
test_formats() {
	n=0

	# the first reply carries the intermediate: later leaf-only ones find it on the token
	next
	{ echo "-----BEGIN CERTIFICATE-----"; base64 -w 64 "$T/leaf.p7b"; echo "-----END CERTIFICATE-----"; } |
		crlf > "$T/certnew.p7b"
	openssl x509 -in "$T/certnew.p7b" -noout 2>/dev/null && echo "# warning: openssl reads certnew.p7b as X.509"
	openssl pkcs7 -in "$T/certnew.p7b" -print_certs -noout >/dev/null 2>&1 ||
		{ echo "openssl cannot read the test's certsrv .p7b"; exit 99; }
	each "certsrv's base64 .p7b (PKCS#7 under CERTIFICATE armor, CRLF)" "$T/certnew.p7b"
	check_eq "  ... the intermediate from the PKCS#7 is on the token" \
		"$(token_certs "$M" rep | grep -c '|1001$')" 1
	next; base64 -w 64 "$T/leaf.der" > "$T/b64-64.cer"
	each "bare base64 DER, 64 columns" "$T/b64-64.cer"
	next; base64 -w 76 "$T/leaf.der" | crlf > "$T/b64-76.cer"
	each "bare base64 DER, 76 columns, CRLF" "$T/b64-76.cer"
	next; base64 -w 0 "$T/leaf.der" > "$T/b64-1.cer"
	each "bare base64 DER, one line without a newline" "$T/b64-1.cer"
	next; base64 -w 64 "$T/leaf.p7b" | crlf > "$T/b64.p7b"
	each "bare base64 PKCS#7, CRLF" "$T/b64.p7b"
	next; iconv -f UTF-8 -t UTF-16 "$T/leaf.pem" > "$T/u16le.pem"
	[ "$(head -c 2 "$T/u16le.pem" | od -An -tx1 | tr -d ' ')" = fffe ] || { echo "iconv made no UTF-16LE BOM"; exit 99; }
	each "a UTF-16LE PEM with a BOM (Windows 'Unicode')" "$T/u16le.pem"
	next; { printf '\376\377'; iconv -f UTF-8 -t UTF-16BE "$T/leaf.pem"; } > "$T/u16be.pem"
	each "a UTF-16BE PEM with a BOM" "$T/u16be.pem"
	next; base64 -w 76 "$T/leaf.der" | crlf | iconv -f UTF-8 -t UTF-16 > "$T/u16-b64.cer"
	each "UTF-16LE bare base64 with a BOM" "$T/u16-b64.cer"
}

# and what is still refused, in one line
test_refused() {
	iconv -f UTF-8 -t UTF-16LE "$T/leaf.pem" > "$T/nobom.pem"
	check_fails "UTF-16 without a BOM is refused" 2 install "$T/nobom.pem"
	check_one_line_error "  ... saying exactly that" "UTF-16 text without a byte order mark"
	base64 -w 64 "$T/leaf.der" | head -n 5 > "$T/cut.cer"
	check_fails "bare base64 cut short is refused" 2 install "$T/cut.cer"
	check_one_line_error "  ... in one line" "cut short|does not parse"
	{ base64 -w 64 "$T/leaf.der"; echo "not base64!"; } > "$T/junk.cer"
	check_fails "base64 followed by other text is refused" 2 install "$T/junk.cer"
	check_one_line_error "  ... in one line" "neither PEM nor DER nor base64"
	{ cat "$T/leaf.pem"; printf -- '-----BEGIN CERTIF'; } > "$T/cut-begin.pem"
	check_fails "a reply cut inside the BEGIN line of its second block is refused" 2 install "$T/cut-begin.pem"
	check_one_line_error "  ... in one line" "cut off inside its BEGIN line"
	check_eq "the last good reply is still on the token" "$(serial_on_token)" "$serial"
}

run_tests
