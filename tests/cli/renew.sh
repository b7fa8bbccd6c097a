#!/bin/bash
# req renew: renewal requests from certificates issued by an openssl CA with
# many extensions.  The request must carry exactly the certificate's subject,
# SAN set and usages (openssl's text of both compared), none of what the CA
# adds, and the certificate's own key: found by public key, never by label.
# --rekey signs with a new "<label>.pending" key and leaves the old key and
# certificate alone.  Bad certificate files change nothing.
. "$top_srcdir/tests/lib/common.sh"

pk() { p11tool_sm --token-label N --login --pin 1234 "$@" 2>/dev/null; }
req() { "$P11KM" --pin-source "file:$PIN" req "$@"; }

setup() {
	need pkcs11-tool openssl xxd python3 sha256sum
	softhsm_setup

	new_token N 1234 12345678
	PIN=$T/pin-N
	TOK='pkcs11:token=N'
}

# ca_issue CSR CERT EXTENSIONS [START END]
ca_issue() {
	openssl ca -batch -notext -config "$T/ca/ca.cnf" -in "$1" -out "$2" -extensions "$3" \
		${4:+-startdate $4 -enddate $5} >"$T/ca.log" 2>&1
}
# A certificate for a token key: p11km makes the CSR (its subject), the CA
# chooses every extension.
cert_for() { # LABEL SUBJECT EXTENSIONS CERT [START END]
	req new "$TOK;object=$1" --subject "$2" -o "$T/tmp.csr" &&
		ca_issue "$T/tmp.csr" "$4" "$3" "${5:-}" "${6:-}"
}
txt_req() { openssl req -in "$1" -noout -text -nameopt RFC2253,-esc_msb,utf8 -reqopt no_sigdump,no_pubkey; }
txt_x509() { openssl x509 -in "$1" -noout -text -nameopt RFC2253,-esc_msb,utf8; }
# ext_line TEXT-FILE NAME: the value line under "X509v3 NAME:" (and the
# critical flag), as openssl prints it.
ext_of() { awk -v n="X509v3 $2:" 'f { gsub(/^ +/, ""); print crit $0; exit } index($0, n) { f = 1; crit = ($0 ~ /critical/) ? "critical " : "" }' "$1"; }
pub_of_req() { openssl req -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | xxd -p | tr -d '\n'; }
pub_of_cert() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | xxd -p | tr -d '\n'; }

# an openssl CA (openssl ca: dates and extensions of our choosing)
test_openssl_ca() {
	mkdir -p "$T/ca"
	: > "$T/ca/index.txt"
	echo 1000 > "$T/ca/serial"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca/ca.key" \
		-subj '/CN=Other CA/O=Elsewhere' -days 30 -out "$T/ca/ca.pem" 2>/dev/null
	cat > "$T/ca/ca.cnf" <<EOF
[ca]
default_ca = CA
[CA]
dir = $T/ca
database = \$dir/index.txt
new_certs_dir = \$dir
serial = \$dir/serial
certificate = \$dir/ca.pem
private_key = \$dir/ca.key
default_md = sha256
default_days = 30
policy = anything
unique_subject = no
preserve = yes
copy_extensions = none
email_in_dn = yes
[anything]
commonName = supplied
organizationalUnitName = optional
organizationName = optional
localityName = optional
countryName = optional
emailAddress = optional
[tls]
subjectAltName = DNS:www.example.com, DNS:example.com, DNS:*.api.example.com, IP:192.0.2.10, IP:2001:db8::10, email:admin@example.com, URI:https://www.example.com/status
keyUsage = critical, digitalSignature, keyAgreement
extendedKeyUsage = serverAuth, clientAuth
basicConstraints = critical, CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://crl.example.net/ca.crl
authorityInfoAccess = OCSP;URI:http://ocsp.example.net/, caIssuers;URI:http://ca.example.net/ca.crt
certificatePolicies = 2.23.140.1.2.2
[mail]
keyUsage = critical, digitalSignature
extendedKeyUsage = emailProtection
subjectAltName = email:someone@example.com
[ca_added]
# what openssl ca, AD CS and pebble put into certificates, not asked for
subjectAltName = DNS:odd.example.com
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
nsComment = OpenSSL Generated Certificate
1.3.6.1.4.1.311.21.7 = DER:30:0e:06:09:2b:06:01:04:01:82:37:15:08:02:01:64:02:01:00
1.3.6.1.4.1.311.21.10 = DER:30:0c:30:0a:06:08:2b:06:01:05:05:07:03:01
subjectKeyIdentifier = hash
[subca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF

	"$P11KM" --pin-source "file:$PIN" key generate "$TOK" --type ec:p256 --label web >/dev/null
	check "the other CA issues a certificate with many extensions" \
		cert_for web 'CN=www.example.com,OU=Web,O=Example Corp,L=Berlin,C=DE' tls "$T/web.pem"
	txt_x509 "$T/web.pem" > "$T/web.txt"
}

# renewal from the certificate file
test_from_file() {
	check "req renew FILE --key TOKEN-URI" req renew "$T/web.pem" --key "$TOK" -o "$T/r1.csr"
	check "openssl req -verify" openssl req -in "$T/r1.csr" -verify -noout
	txt_req "$T/r1.csr" > "$T/r1.txt"
	check_eq "the same subject" "$(openssl req -in "$T/r1.csr" -noout -subject -nameopt RFC2253)" \
		"$(openssl x509 -in "$T/web.pem" -noout -subject -nameopt RFC2253)"
	for e in 'Subject Alternative Name' 'Key Usage' 'Extended Key Usage'; do
		want=$(ext_of "$T/web.txt" "$e")
		check "the certificate has $e" test -n "$want"
		check_eq "the same $e" "$(ext_of "$T/r1.txt" "$e")" "$want"
	done
	for e in 'Subject Key Identifier' 'Authority Key Identifier' 'CRL Distribution Points' \
	         'Authority Information Access' 'Certificate Policies' 'Basic Constraints'; do
		check_nogrep "left out what the CA adds: $e" "$e" "$T/r1.txt"
	done
	check_eq "signed by the certificate's own key" "$(pub_of_req "$T/r1.csr")" "$(pub_of_cert "$T/web.pem")"

	check "--json" "$P11KM" --json --pin-source "file:$PIN" req renew "$T/web.pem" --key "$TOK" -o "$T/rj.csr"
	cp "$T/out" "$T/rj.json"
	check_eq "--json: renews = SHA-256 of the certificate" "$(json_get "$T/rj.json" 'd["renews"]')" \
		"$(openssl x509 -in "$T/web.pem" -outform DER | sha256sum | cut -d' ' -f1)"
	check_eq "--json: the SAN set" "$(json_get "$T/rj.json" '",".join(d["san"])')" \
		'DNS:www.example.com,DNS:example.com,DNS:*.api.example.com,IP:192.0.2.10,IP:2001:db8::10,email:admin@example.com,URI:https://www.example.com/status'
	check_eq "--json: no rekey" "$(json_get "$T/rj.json" 'd["rekey"]')" False
}

# renewal from the certificate on the token
test_from_token() {
	openssl x509 -in "$T/web.pem" -outform DER -out "$T/web.der"
	webid=$(pk -O --type privkey | awk '/label: *web$/ { f = 1 } f && /ID:/ { print $2; exit }')
	pk --write-object "$T/web.der" --type cert --id "$webid" --label web >/dev/null
	check "req renew TOKEN-CERT-URI" req renew "$TOK;object=web;type=cert" -o "$T/r2.csr"
	check "...verifies" openssl req -in "$T/r2.csr" -verify -noout
	txt_req "$T/r2.csr" > "$T/r2.txt"
	check_eq "...the same extensions as from the file" "$(grep -A30 'Requested Extensions' "$T/r2.txt")" \
		"$(grep -A30 'Requested Extensions' "$T/r1.txt")"
	check_eq "...the same key" "$(pub_of_req "$T/r2.csr")" "$(pub_of_cert "$T/web.pem")"
	# PKCS#11 calls: the certificate, its key (matched by public key) and the
	# signature; no second search for the public key, none that grows with the token
	if shim_available; then
		check "req renew TOKEN-CERT-URI through the shim" shim_p11km --pin-source "file:$PIN" \
			req renew "$TOK;object=web;type=cert" -o "$T/r2s.csr"
		c1=$(count_of total)
		echo "# req renew TOKEN-CERT-URI: $c1 PKCS#11 calls, $(count_of C_GetAttributeValue) C_GetAttributeValue"
		check_eq "...3 searches (certificate, private key, its public key)" "$(count_of C_FindObjectsInit)" 3
		check "...at most 23 calls, one C_GetAttributeValue per object ($c1)" \
			test "$c1" -le 23 -a "$(count_of C_GetAttributeValue)" -eq 3
		for i in $(seq 1 20); do
			pk --keypairgen --key-type EC:prime256v1 --label "bulk$i" --id "$(printf 'b0%02x' "$i")" >/dev/null
		done
		check "...with 20 more key pairs" shim_p11km --pin-source "file:$PIN" \
			req renew "$TOK;object=web;type=cert" -o "$T/r2s.csr"
		check_eq "...as many calls as before ($c1)" "$(count_of total)" "$c1"
		check "...verifies" openssl req -in "$T/r2s.csr" -verify -noout
	else
		not_ok "the PKCS#11 shim is not built"
	fi
}

# the key is found by its public key, never by label
# A pkcs11-tool key "real" (id 01) gets a certificate stored with label "decoy"
# and id 99; a different key pair is labelled "decoy" too.
test_key_by_public_key() {
	pk --keypairgen --key-type EC:prime256v1 --label real --id 01 >/dev/null
	pk --keypairgen --key-type EC:prime256v1 --label decoy --id 02 >/dev/null
	check "a certificate for pkcs11-tool's key" cert_for real 'CN=real.example.com' tls "$T/real.pem"
	openssl x509 -in "$T/real.pem" -outform DER -out "$T/real.der"
	pk --write-object "$T/real.der" --type cert --id 99 --label decoy >/dev/null
	check "req renew: certificate labelled like another key" req renew "$TOK;object=decoy;type=cert" -o "$T/r3.csr"
	check_eq "...signed by the key that matches the certificate, not the namesake" \
		"$(pub_of_req "$T/r3.csr")" "$(pub_of_cert "$T/real.pem")"
	check "...verifies" openssl req -in "$T/r3.csr" -verify -noout
	check_fails "--key naming a key that is not the certificate's: exit 5" 5 \
		req renew "$T/real.pem" --key "$TOK;object=decoy;type=private" -o "$T/r4.csr"
	check "...nothing written" test ! -e "$T/r4.csr"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/soft.key" \
		-subj '/CN=soft.example.com' -days 3 -out "$T/soft.pem" 2>/dev/null
	check_fails "a certificate whose key is not on the token: exit 4" 4 req renew "$T/soft.pem" --key "$TOK" -o "$T/r5.csr"
	check_one_line_error "...one line saying so" 'not on token'
}

# flags override the certificate
test_flags_override() {
	check "--subject and --san override" req renew "$T/web.pem" --key "$TOK" --subject 'CN=new.example.com,O=New' \
		--san DNS:new.example.com --ext-key-usage serverAuth -o "$T/r6.csr"
	txt_req "$T/r6.csr" > "$T/r6.txt"
	check_eq "...new subject" "$(openssl req -in "$T/r6.csr" -noout -subject -nameopt RFC2253)" 'subject=CN=new.example.com,O=New'
	check_eq "...new SAN" "$(ext_of "$T/r6.txt" 'Subject Alternative Name')" 'DNS:new.example.com'
	check_eq "...new EKU" "$(ext_of "$T/r6.txt" 'Extended Key Usage')" 'TLS Web Server Authentication'
	check_eq "...key usage still copied" "$(ext_of "$T/r6.txt" 'Key Usage')" "$(ext_of "$T/web.txt" 'Key Usage')"
}

objs() { pk -O | awk '/Object;/ { c = $0 } $1 == "label:" { l = $2 } $1 == "ID:" { print c "|" l "|" $2 }' | grep -v '|web\.pending|' | sort; }

# --rekey
test_rekey() {
	before=$(objs)
	check "req renew --rekey" req renew "$TOK;object=web;type=cert" --rekey -o "$T/k1.csr"
	check_grep "...says which key is pending" 'web\.pending' "$T/err"
	check "...verifies" openssl req -in "$T/k1.csr" -verify -noout
	pk -O > "$T/after.txt"
	check_grep "a private key 'web.pending' exists" 'label: +web\.pending' <(pk -O --type privkey)
	pend=$(pk -O --type pubkey | awk '/Object;/ { p = "" } $1 == "EC_POINT:" { p = $2 } $1 == "label:" && $2 == "web.pending" { print p; exit }')
	check "...an EC P-256 key like the old one" test "${#pend}" -eq 134
	k1pub=$(pub_of_req "$T/k1.csr")
	case $k1pub in *"${pend:4}") ok "the request's key is the pending key";; *) not_ok "the request's key is the pending key";; esac
	check "the request's key is not the old key" test "$k1pub" != "$(pub_of_cert "$T/web.pem")"
	check_eq "every other object is unchanged (class, label, id)" "$(objs)" "$before"
	check_grep "old private key 'web' still there" 'label: +web$' <(pk -O --type privkey)
	check_grep "old certificate 'web' still there" 'label: +web$' <(pk -O --type cert)
	check_fails "--rekey again: the pending key exists, exit 1" 1 req renew "$TOK;object=web;type=cert" --rekey -o "$T/k2.csr"
	check "--rekey --force signs with the existing pending key" "$P11KM" --force --pin-source "file:$PIN" req renew \
		"$TOK;object=web;type=cert" --rekey -o "$T/k2.csr"
	check_eq "...the same pending key" "$(pub_of_req "$T/k2.csr")" "$k1pub"
	check_eq "...still one pending key" "$(pk -O --type privkey | grep -c 'label: *web.pending$')" 1
	check_fails "--rekey with an unwritable output: exit 1" 1 req renew "$T/real.pem" --key "$TOK" --rekey \
		-o "$T/no/such/dir/x.csr"
	check_eq "...and no pending key was made" "$(pk -O --type privkey | grep -c '\.pending$')" 1
	check "--rekey --type rsa:2048" req renew "$T/real.pem" --key "$TOK" --rekey --type rsa:2048 -o "$T/k3.csr"
	check_grep "...an RSA request" 'rsaEncryption' <(openssl req -in "$T/k3.csr" -noout -text)
	check_grep "...from a key 'real.pending'" 'label: +real\.pending' <(pk -O --type privkey)
}

subj_der() { python3 -c 'import sys
from cryptography import x509
d = open(sys.argv[2], "rb").read()
o = x509.load_pem_x509_certificate(d) if sys.argv[1] == "cert" else x509.load_pem_x509_csr(d)
print(o.subject.public_bytes().hex())' "$1" "$2"; }

# only what a requester asks for: an allowlist, every drop named
test_allowlist() {
	"$P11KM" --pin-source "file:$PIN" key generate "$TOK" --type ec:p256 --label odd >/dev/null
	check "openssl ca issues a certificate with nsComment, an AD CS template and a keyEncipherment" \
		cert_for odd 'CN=odd.example.com,O=Example Corp,C=DE' ca_added "$T/odd.pem"
	txt_x509 "$T/odd.pem" > "$T/odd.txt"
	for e in 'Netscape Comment' '1.3.6.1.4.1.311.21.7' '1.3.6.1.4.1.311.21.10' 'Key Encipherment'; do
		check_grep "...the certificate has $e (openssl)" "$e" "$T/odd.txt"
	done
	check "req renew of it" "$P11KM" --json --pin-source "file:$PIN" req renew "$T/odd.pem" --key "$TOK" -o "$T/odd.csr"
	cp "$T/out" "$T/odd.json"; cp "$T/err" "$T/odd.err"
	txt_req "$T/odd.csr" > "$T/odd-req.txt"
	for e in 'Netscape Comment' '1.3.6.1.4.1.311.21.7' '1.3.6.1.4.1.311.21.10' 'Subject Key Identifier'; do
		check_nogrep "...the request does not ask for $e (openssl)" "$e" "$T/odd-req.txt"
	done
	check_eq "...keyUsage without keyEncipherment, still critical (openssl)" \
		"$(ext_of "$T/odd-req.txt" 'Key Usage')" 'critical Digital Signature'
	for e in 'Subject Alternative Name' 'Extended Key Usage'; do
		check_eq "...the same $e" "$(ext_of "$T/odd-req.txt" "$e")" "$(ext_of "$T/odd.txt" "$e")"
	done
	check_eq "...one note line names every dropped extension" \
		"$(grep -c 'note: not asked for again.*Netscape Comment.*Microsoft certificate template (1.3.6.1.4.1.311.21.7).*Microsoft application policies (1.3.6.1.4.1.311.21.10).*X509v3 Subject Key Identifier' "$T/odd.err")" 1
	check_grep "...and a note on the key usage an EC key cannot do" \
		'note: key usage keyEncipherment left out: an EC key cannot do it' "$T/odd.err"
	check_eq "...--json: dropped_extensions" "$(json_get "$T/odd.json" '"|".join(d["dropped_extensions"])')" \
		'Netscape Comment|Microsoft certificate template (1.3.6.1.4.1.311.21.7)|Microsoft application policies (1.3.6.1.4.1.311.21.10)|X509v3 Subject Key Identifier|X509v3 Authority Key Identifier'
	check_eq "...--json: dropped_key_usages" "$(json_get "$T/odd.json" '"|".join(d["dropped_key_usages"])')" \
		'keyEncipherment'
	check_eq "...the subject byte for byte (python3-cryptography)" "$(subj_der req "$T/odd.csr")" \
		"$(subj_der cert "$T/odd.pem")"
}

# certificates out of the ordinary: warnings, CA
test_unusual_certs() {
	"$P11KM" --pin-source "file:$PIN" key generate "$TOK" --label old >/dev/null
	check "an expired certificate" cert_for old 'CN=old.example.com' tls "$T/old.pem" 20200101000000Z 20210101000000Z
	check "...is renewed" req renew "$T/old.pem" --key "$TOK" -o "$T/w1.csr"
	check_grep "...with a warning" 'warning:.*expired' "$T/err"
	check "a certificate not valid yet" cert_for old 'CN=future.example.com' tls "$T/fut.pem" 20990101000000Z 20991231000000Z
	check "...is renewed" req renew "$T/fut.pem" --key "$TOK" -o "$T/w2.csr"
	check_grep "...with a warning" 'warning:.*not valid yet' "$T/err"
	check "an e-mail certificate" cert_for old 'CN=someone' mail "$T/mail.pem"
	check "...is renewed" req renew "$T/mail.pem" --key "$TOK" -o "$T/w3.csr"
	check_grep "...with a warning" 'warning:.*not a TLS certificate' "$T/err"
	check_eq "...keeping its EKU" "$(ext_of <(txt_req "$T/w3.csr") 'Extended Key Usage')" 'E-mail Protection'
	check "a CA certificate" cert_for old 'CN=Sub CA' subca "$T/sub.pem"
	check "...is renewed" req renew "$T/sub.pem" --key "$TOK" -o "$T/w4.csr"
	check_eq "...keeping basicConstraints CA:TRUE" "$(ext_of <(txt_req "$T/w4.csr") 'Basic Constraints')" \
		'critical CA:TRUE, pathlen:0'
	check_nogrep "...but not its SKI" 'Subject Key Identifier' <(txt_req "$T/w4.csr")
}

badcert() { # DESCRIPTION FILE PATTERN
	check_fails "$1" 2 req renew "$2" --key "$TOK" -o "$T/keep.csr"
	check_one_line_error "...one line: $3" "$3"
}

# bad certificate files: exit 2, one line, nothing written
test_bad_cert_files() {
	echo "old" > "$T/keep.csr"
	head -c 700 /dev/urandom > "$T/garbage"
	badcert "garbage" "$T/garbage" 'not an X.509 certificate'
	head -n 5 "$T/web.pem" > "$T/trunc.pem"
	badcert "truncated PEM" "$T/trunc.pem" 'truncated'
	head -c 200 "$T/web.der" > "$T/trunc.der"
	badcert "truncated DER" "$T/trunc.der" 'not an X.509 certificate'
	badcert "a CSR given as the certificate" "$T/r1.csr" 'certificate request'
	openssl req -in "$T/r1.csr" -outform DER -out "$T/r1.der"
	badcert "a DER CSR given as the certificate" "$T/r1.der" 'certificate request'
	badcert "a private key file" "$T/soft.key" 'not a certificate'
	check_fails "a missing file: exit 1" 1 req renew "$T/nonesuch.pem" --key "$TOK" -o "$T/keep.csr"
	check_fails "--type without --rekey" 2 req renew "$T/web.pem" --key "$TOK" --type rsa:2048 -o "$T/keep.csr"
	check_fails "a bad --san" 2 req renew "$T/web.pem" --key "$TOK" --san IP:999.1.1.1 -o "$T/keep.csr"
	check_fails "wrong PIN: exit 3" 3 "$P11KM" --pin-source "file:$(pin_file bad 1111)" req renew "$T/web.pem" --key "$TOK" -o "$T/keep.csr"
	# A certificate file and no --key: the key is on the one initialised token
	# (SoftHSM's free slot is not a candidate); with two, the user must choose.
	check "a certificate file without --key: the only initialised token" \
		req renew "$T/web.pem" -o "$T/nokey.csr"
	check "...the request verifies" openssl req -in "$T/nokey.csr" -verify -noout
	check_eq "...and carries the certificate's key" "$(pub_of_req "$T/nokey.csr")" "$(pub_of_cert "$T/web.pem")"
	new_token N2 1234 12345678
	check_fails "two initialised tokens and no --key: exit 4" 4 req renew "$T/web.pem" -o "$T/keep.csr"
	check_grep "...naming both tokens" 'token=N[^2].*token=N2|token=N2.*token=N([^2]|$)' "$T/err"
	check_grep "...and saying to give --key" '\-\-key' "$T/err"
	check_eq "keep.csr was never touched" "$(cat "$T/keep.csr")" old
}

run_tests
