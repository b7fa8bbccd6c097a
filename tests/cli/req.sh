#!/bin/bash
# req new: requests signed on a SoftHSM2 token.  Judges: openssl req -verify,
# a test CA made with the openssl CLI whose certificate must carry the token
# key (as pkcs11-tool reports it), openssl's view of subjects and
# extensions, the shim's call counts.  Bad input changes nothing.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

with_softhsm_leaks() { ASAN_OPTIONS=${ASAN_OPTIONS:-}:fast_unwind_on_malloc=0 LSAN_OPTIONS=suppressions=$T/lsan.supp "$@"; }
pk() { p11tool_sm --token-label "$1" --login --pin 1234 "${@:2}" 2>/dev/null; }
# token_pub TOKEN LABEL: the key's public key as pkcs11-tool reports it:
# the DER SubjectPublicKeyInfo for RSA, the raw point for EC/EdDSA (hex).
token_pub() {
	_blk=$(pk "$1" -O --type pubkey | awk -v l="$2" '
		/Object;/ { if (keep) print buf; buf = $0; keep = 0; next }
		{ buf = buf "\n" $0; if ($1 == "label:") { s = $0; sub(/^ *label: */, "", s); keep = (s == l) } }
		END { if (keep) print buf }')
	if echo "$_blk" | grep -q 'RSA'; then
		p11tool_sm --token-label "$1" --read-object --type pubkey --label "$2" -o "$T/tp.der" >/dev/null 2>&1
		xxd -p "$T/tp.der" | tr -d '\n'
	else
		_pt=$(echo "$_blk" | sed -n 's/^ *EC_POINT: *//p')
		echo "${_pt:4}"
	fi
}
# cert_has_token_key CERT TOKEN LABEL
cert_has_token_key() {
	_want=$(token_pub "$2" "$3")
	_got=$(openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | xxd -p | tr -d '\n')
	[ -n "$_want" ] && case $_got in *"$_want") return 0;; esac
	return 1
}

setup() {
	need pkcs11-tool openssl python3 xxd sha256sum
	softhsm_setup
	# SoftHSM 2.6.1 leaks in C_SignInit for EdDSA (inside libsofthsm2, with
	# OpenSSL frames that need the slow unwinder to be seen): suppress only that.
	echo 'leak:libsofthsm2.so' > "$T/lsan.supp"

	new_token R 1234 12345678
	PIN=$T/pin-R
	TOK='pkcs11:token=R'

	ca_setup "$T/ca" || { echo "# cannot make the test CA"; exit 99; }

	# Keys: made by p11km, and by pkcs11-tool.
	for t in ec:p256 ec:p384 rsa:2048; do
		"$P11KM" --pin-source "file:$PIN" key generate "$TOK" --type $t --label "p-${t/:/-}" >/dev/null
	done
	pk R --keypairgen --key-type EC:prime256v1 --label t-ec --id 01 >/dev/null
	pk R --keypairgen --key-type rsa:2048 --label t-rsa --id 02 >/dev/null
	new_token ED 1234 12345678
	"$P11KM" --pin-source "file:$T/pin-ED" key generate 'pkcs11:token=ED' --type ed25519 --label p-ed >/dev/null 2>&1
}

# one request per key type: verify, issue, compare keys
test_key_types() {
	n=0
	for spec in "R p-ec-p256" "R p-ec-p384" "R p-rsa-2048" "R t-ec" "R t-rsa" "ED p-ed" "R p-rsa-2048 --rsa-pss" "R t-rsa --rsa-pss"; do
		set -- $spec
		tok=$1 label=$2 extra=${3:-}
		n=$((n + 1))
		csr=$T/r$n.csr
		lc=
		[ "$tok" = ED ] && lc=with_softhsm_leaks
		check "$label$extra: req new" $lc "$P11KM" --pin-source "file:$T/pin-$tok" req new "pkcs11:token=$tok;object=$label" \
			--subject "CN=host$n.example.com,O=p11km tests,C=DE" $extra -o "$csr"
		check "$label$extra: openssl req -verify" openssl req -in "$csr" -verify -noout
		check "$label$extra: the test CA issues a certificate" issue_csr "$T/ca" "$csr" "$T/r$n.pem" 10 root
		check "$label$extra: the certificate's key is the token key (pkcs11-tool)" cert_has_token_key "$T/r$n.pem" "$tok" "$label"
		check "$label$extra: the certificate verifies against the CA" openssl verify -CAfile "$T/ca/root.pem" "$T/r$n.pem"
		if [ -n "$extra" ]; then
			check_grep "$label$extra: signed with RSA-PSS, salt = hash length" 'rsassaPss' <(openssl req -in "$csr" -noout -text)
			check_grep "$label$extra: salt length 32" 'Salt Length: 0x20' <(openssl req -in "$csr" -noout -text)
		fi
	done
	openssl req -in "$T/r2.csr" -noout -text > "$T/r2.txt"
	check_grep "P-384 signs with SHA-384 by default" 'ecdsa-with-SHA384' "$T/r2.txt"
	openssl req -in "$T/r6.csr" -noout -text > "$T/r6.txt"
	check_grep "Ed25519 request" 'Signature Algorithm: ED25519' "$T/r6.txt"
}

# a token with only the private key and its certificate (PIV style)
test_piv_style() {
	pk R --keypairgen --key-type EC:prime256v1 --label piv --id 9a >/dev/null
	"$P11KM" --pin-source "file:$PIN" req new "$TOK;object=piv" --subject 'CN=piv.example.com' -o "$T/piv0.csr"
	issue_csr "$T/ca" "$T/piv0.csr" "$T/piv.pem" 10 root
	openssl x509 -in "$T/piv.pem" -outform DER -out "$T/piv.der"
	pk R --write-object "$T/piv.der" --type cert --id 9a --label piv >/dev/null
	pk R --delete-object --type pubkey --id 9a >/dev/null
	check_eq "the public key object is gone" "$(pk R -O --type pubkey | grep -c 'label: *piv$')" 0
	check "req new with only the private key and its certificate" "$P11KM" --pin-source "file:$PIN" \
		req new "$TOK;object=piv;type=private" --subject 'CN=piv.example.com' -o "$T/piv.csr"
	check_grep "...says it used the certificate's public key" "using its certificate" "$T/err"
	check "...verifies" openssl req -in "$T/piv.csr" -verify -noout
	check_eq "...with the key of the certificate" \
		"$(openssl req -in "$T/piv.csr" -noout -pubkey)" "$(openssl x509 -in "$T/piv.pem" -noout -pubkey)"
}

# defaults for a TLS server
test_tls_defaults() {
	openssl req -in "$T/r1.csr" -noout -text > "$T/r1.txt"
	check_grep "default SAN: DNS = the CN" 'DNS:host1.example.com$' "$T/r1.txt"
	check_grep "default keyUsage is critical" 'X509v3 Key Usage: critical' "$T/r1.txt"
	check_grep "default keyUsage (EC): digitalSignature only" '^ +Digital Signature$' "$T/r1.txt"
	check_grep "default EKU: serverAuth" '^ +TLS Web Server Authentication$' "$T/r1.txt"
	check_grep "default keyUsage (RSA): + keyEncipherment" '^ +Digital Signature, Key Encipherment$' \
		<(openssl req -in "$T/r3.csr" -noout -text)
	check "CN that is not a host name: no default SAN" "$P11KM" --pin-source "file:$PIN" req new "$TOK;object=t-ec" \
		--subject 'CN=Example Service,O=Example' -o "$T/nosan.csr"
	check_nogrep "...no subjectAltName" 'Subject Alternative Name' <(openssl req -in "$T/nosan.csr" -noout -text)
}

subj() { openssl req -in "$1" -noout -subject -nameopt RFC2253,-esc_msb,utf8 | sed 's/^subject=//'; }

# subjects, SANs, usages as openssl reads them
test_subjects() {
	check "RFC 4514 subject with an escaped comma" "$P11KM" --pin-source "file:$PIN" req new "$TOK;object=t-ec" \
		--subject 'CN=www.example.com,O=Example\, Inc.,C=US' -o "$T/s1.csr"
	check_eq "...openssl reads CN, O with a comma, C" "$(subj "$T/s1.csr")" 'CN=www.example.com,O=Example\, Inc.,C=US'
	check "OpenSSL /C=/O=/CN= subject" "$P11KM" --pin-source "file:$PIN" req new "$TOK;object=t-ec" \
		--subject '/C=US/O=Example, Inc./CN=www.example.com' -o "$T/s2.csr"
	check_eq "...the same name" "$(subj "$T/s2.csr")" 'CN=www.example.com,O=Example\, Inc.,C=US'
	check "multi-valued RDN and UTF-8" "$P11KM" --pin-source "file:$PIN" req new "$TOK;object=t-ec" \
		--subject 'CN=a.example+OU=ops,O=Grüße GmbH,C=DE' -o "$T/s3.csr"
	check_eq "...openssl reads them" "$(subj "$T/s3.csr")" 'CN=a.example+OU=ops,O=Grüße GmbH,C=DE'
	check "hex escapes and escaped specials" "$P11KM" --pin-source "file:$PIN" req new "$TOK;object=t-ec" \
		--subject 'CN=a\2Bb\+c\"d\\e\#,O=x' -o "$T/s4.csr"
	check_grep "...decoded into one CN" 'commonName += a\+b\+c"d\\\\e#$' \
		<(openssl req -in "$T/s4.csr" -noout -subject -nameopt multiline,-esc_msb,utf8)
	# An escaped separator cannot smuggle an RDN: one CN, one O
	check "an escaped ',O=evil' stays inside the CN" "$P11KM" --pin-source "file:$PIN" req new "$TOK;object=t-ec" \
		--subject 'CN=www.example.com\,O=evil,O=good' -o "$T/s5.csr"
	check_eq "...two RDNs only" "$(openssl req -in "$T/s5.csr" -noout -subject -nameopt multiline | grep -c ' = ')" 2
	check "a '/' inside an RFC 4514 value is literal" "$P11KM" --pin-source "file:$PIN" req new "$TOK;object=t-ec" \
		--subject 'CN=www.example.com/O=evil' -o "$T/s6.csr"
	check_eq "...one RDN" "$(openssl req -in "$T/s6.csr" -noout -subject -nameopt multiline | grep -c ' = ')" 1

	check "SANs: repeated and comma-separated, all four types" "$P11KM" --pin-source "file:$PIN" req new "$TOK;object=t-ec" \
		--subject 'CN=www' --san DNS:a.example,DNS:b.example --san 'IP:192.0.2.1' \
		--san 'IP:2001:db8::1,email:x@example.com' --san 'URI:https://example.com/a,b' --san 'DNS:*.c.example' -o "$T/san.csr"
	check_grep "...openssl lists them in order" \
		'DNS:a.example, DNS:b.example, IP Address:192.0.2.1, IP Address:2001:DB8:0:0:0:0:0:1, email:x@example.com, URI:https://example.com/a,b, DNS:\*.c.example$' \
		<(openssl req -in "$T/san.csr" -noout -text)
	check "explicit usages" "$P11KM" --pin-source "file:$PIN" req new "$TOK;object=t-rsa" --subject 'CN=c.example' \
		--key-usage digitalSignature --ext-key-usage clientAuth,serverAuth,1.3.6.1.5.5.7.3.17 --digest sha384 -o "$T/u.csr"
	openssl req -in "$T/u.csr" -noout -text > "$T/u.txt"
	check_grep "...keyUsage" '^ +Digital Signature$' "$T/u.txt"
	check_grep "...EKU with a dotted OID" 'TLS Web Client Authentication, TLS Web Server Authentication, ipsec Internet Key Exchange' "$T/u.txt"
	check_grep "...--digest sha384" 'sha384WithRSAEncryption' "$T/u.txt"
	check "--ext-key-usage none" "$P11KM" --pin-source "file:$PIN" req new "$TOK;object=t-ec" --subject 'CN=d.example' \
		--ext-key-usage none -o "$T/none.csr"
	check_nogrep "...no EKU" 'Extended Key Usage' <(openssl req -in "$T/none.csr" -noout -text)
}

# output forms
test_output_forms() {
	check "--der -o FILE" "$P11KM" --pin-source "file:$PIN" req new "$TOK;object=t-ec" --subject 'CN=e.example' --der -o "$T/d.der"
	check "...DER verifies" openssl req -inform DER -in "$T/d.der" -verify -noout
	check "-o - writes PEM to stdout" "$P11KM" --pin-source "file:$PIN" req new "$TOK;object=t-ec" --subject 'CN=e.example' -o -
	cp "$T/out" "$T/stdout.csr"
	check "...which verifies" openssl req -in "$T/stdout.csr" -verify -noout
	check "--json -o FILE" "$P11KM" --pin-source "file:$PIN" --json req new "$TOK;object=p-ec-p256" \
		--subject 'CN=j.example' --san DNS:j.example --san IP:192.0.2.9 -o "$T/j.csr"
	cp "$T/out" "$T/j.json"
	check_eq "--json: sha256 is that of the request's DER" "$(json_get "$T/j.json" 'd["sha256"]')" \
		"$(openssl req -in "$T/j.csr" -outform DER | sha256sum | cut -d' ' -f1)"
	check_eq "--json: subject" "$(json_get "$T/j.json" 'd["subject"]')" 'CN=j.example'
	check_eq "--json: SANs" "$(json_get "$T/j.json" '",".join(d["san"])')" 'DNS:j.example,IP:192.0.2.9'
	check_grep "--json: the key URI" 'object=p-ec-p256' <(json_get "$T/j.json" 'd["key_uri"]')
	check_eq "--json: the file" "$(json_get "$T/j.json" 'd["file"]')" "$T/j.csr"
	# a label over the one-call read's 256-byte buffer: read whole (SoftHSM hides
	# the too-small buffer behind CKR_ATTRIBUTE_TYPE_INVALID), so the key URI names it
	LONGL=$(printf 'L%.0s' $(seq 300))
	pk R --keypairgen --key-type EC:prime256v1 --label "$LONGL" --id 4c >/dev/null
	check "--json: a key with a 300-byte label" "$P11KM" --pin-source "file:$PIN" --json req new \
		"$TOK;id=%4c;type=private" --subject 'CN=l.example' -o "$T/l.csr"
	check_grep "...the key URI carries the whole label" "object=$LONGL;" <(json_get "$T/out" 'd["key_uri"]')
}

# PKCS#11 calls: few, and independent of the other objects on the token
test_pkcs11_calls() {
	if shim_available; then
		check "req new through the shim" shim_p11km --pin-source "file:$PIN" req new "$TOK;object=p-ec-p256;type=private" \
			--subject 'CN=count.example' -o "$T/c.csr"
		c1=$(count_of total)
		check "at most 20 PKCS#11 calls for one request (got $c1)" test "$c1" -le 20
		check_eq "one C_SignInit" "$(count_of C_SignInit)" 1
		check_eq "one C_Sign (no length query)" "$(count_of C_Sign)" 1
		check_eq "one C_Login" "$(count_of C_Login)" 1
		check_eq "no C_GetMechanismList" "$(count_of C_GetMechanismList)" 0
		for i in $(seq 15); do pk R --keypairgen --key-type EC:prime256v1 --label "other$i" --id "a$i" >/dev/null; done
		shim_p11km --pin-source "file:$PIN" req new "$TOK;object=p-ec-p256;type=private" --subject 'CN=count.example' -o "$T/c.csr"
		check_eq "the same count with 15 more key pairs on the token" "$(count_of total)" "$c1"
		# A key that needs its PIN for every signature (CKA_ALWAYS_AUTHENTICATE,
		# as PIV signature keys): a context-specific login after C_SignInit.
		pk R --keypairgen --key-type EC:prime256v1 --label always --id aa --always-auth >/dev/null
		check "a CKA_ALWAYS_AUTHENTICATE key signs" shim_p11km --pin-source "file:$PIN" req new "$TOK;object=always" \
			--subject 'CN=always.example' -o "$T/always.csr"
		check "...the request verifies" openssl req -in "$T/always.csr" -verify -noout
		check_eq "...two C_Login: the user, then the context-specific one" "$(count_of C_Login)" 2
		# A mechanism the token refuses: a clear error naming what it can do
		P11SHIM_FAIL_FUNC=C_SignInit P11SHIM_FAIL_AT=1 P11SHIM_FAIL_RV=CKR_MECHANISM_INVALID \
			check_fails "a signing mechanism the token lacks: exit 1" 1 shim_p11km --pin-source "file:$PIN" \
			req new "$TOK;object=p-ec-p256" --subject 'CN=m.example' -o "$T/mech.csr"
		check_one_line_error "...one line naming what the token signs with" 'cannot sign ECDSA.*CKR_MECHANISM_INVALID.*signs with: .*ecdsa'
		check "...and nothing written" test ! -e "$T/mech.csr"
		BAD=$(pin_file badpin 0000)
		check_fails "wrong PIN: exit 3" 3 shim_p11km --pin-source "file:$BAD" req new "$TOK;object=p-ec-p256" \
			--subject 'CN=w.example' -o "$T/wrong.csr"
		check_eq "wrong PIN: one C_Login" "$(count_of C_Login)" 1
		check_eq "wrong PIN: nothing signed" "$(count_of C_Sign)" 0
		check "wrong PIN: nothing written" test ! -e "$T/wrong.csr"
	fi
}

bad() { # DESCRIPTION STATUS ARGS...: fails with STATUS, keep.csr untouched
	_d=$1 _s=$2
	shift 2
	check_fails "$_d" "$_s" "$P11KM" --pin-source "file:$PIN" req new "$@" -o "$T/keep.csr"
	check_one_line_error "...one error line"
}

# bad input: exit 2 (3 for the PIN), one line, nothing written
test_bad_input() {
	echo "old content" > "$T/keep.csr"
	K="$TOK;object=t-ec"
	bad "NUL through a hex escape" 2 "$K" --subject 'CN=a\00b'
	bad "a newline in a value" 2 "$K" --subject "$(printf 'CN=a\nO=evil')"
	bad "an unescaped ';'" 2 "$K" --subject 'CN=a;O=evil'
	bad "an unescaped '\"'" 2 "$K" --subject 'CN=a"b'
	bad "an unknown attribute type" 2 "$K" --subject 'CN=a,XYZ=b'
	bad "a value without a type" 2 "$K" --subject 'CN=a,evil'
	bad "an empty value" 2 "$K" --subject 'CN=,O=x'
	bad "a CN over 64 characters" 2 "$K" --subject "CN=$(printf 'a%.0s' $(seq 65))"
	check "...while 64 characters are fine" "$P11KM" --pin-source "file:$PIN" req new "$K" --subject "CN=$(printf 'a%.0s' $(seq 64))" -o "$T/cn64.csr"
	bad "invalid UTF-8" 2 "$K" --subject "$(printf 'CN=\xff\xfe')"
	bad "overlong UTF-8" 2 "$K" --subject "$(printf 'CN=\xc0\xaf')"
	bad "a C of three letters" 2 "$K" --subject 'CN=a,C=USA'
	bad "IP:999.1.1.1" 2 "$K" --subject 'CN=a' --san IP:999.1.1.1
	bad "a host name with '_'" 2 "$K" --subject 'CN=a' --san DNS:a_b.example
	bad "a label starting with '-'" 2 "$K" --subject 'CN=a' --san DNS:-a.example
	bad "an address as DNS:" 2 "$K" --subject 'CN=a' --san DNS:192.0.2.1
	bad "email: without @" 2 "$K" --subject 'CN=a' --san email:nobody
	bad "URI: without a scheme" 2 "$K" --subject 'CN=a' --san URI:/relative
	bad "an unknown SAN type" 2 "$K" --subject 'CN=a' --san RID:1.2.3
	bad "an unknown key usage" 2 "$K" --subject 'CN=a' --key-usage signEverything
	bad "an unknown digest" 2 "$K" --subject 'CN=a' --digest md5
	bad "--rsa-pss with an EC key" 2 "$K" --subject 'CN=a' --rsa-pss
	bad "--subject missing" 2 "$K"
	check_fails "--json --der to stdout" 2 "$P11KM" --json --pin-source "file:$PIN" req new "$K" --subject CN=a --der
	bad "a key URI without object or id" 2 "$TOK" --subject 'CN=a'
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ck.pem" \
		-subj '/CN=cert on token' -days 3 -outform DER -out "$T/c.der" 2>/dev/null
	pk R --write-object "$T/c.der" --type cert --id c0 --label tokcert >/dev/null
	bad "a key URI naming a certificate (type=cert)" 2 "$TOK;object=tokcert;type=cert" --subject 'CN=a'
	bad "a key URI that matches only a certificate" 2 "$TOK;object=tokcert" --subject 'CN=a'
	check_grep "...says it is a certificate" 'certificate, not a private key' "$T/err"
	bad "no such key" 4 "$TOK;object=nonesuch" --subject 'CN=a'
	check_eq "keep.csr was never touched" "$(cat "$T/keep.csr")" "old content"
	check_eq "no temporary files left" "$(ls "$T" | grep -c 'p11km-')" 0
	check_fails "wrong PIN: exit 3" 3 "$P11KM" --pin-source "file:$(pin_file bad2 4321)" req new "$K" --subject 'CN=a' -o "$T/keep.csr"
	check_eq "wrong PIN: keep.csr untouched" "$(cat "$T/keep.csr")" "old content"
}

run_tests
