#!/bin/sh
# tests/fuzz/seeds.sh: (re)make the seed inputs of tests/fuzz/corpus/*/seed-*
# (the committed ones were made by it).  Certificates come from the openssl
# CLI through tests/lib/certs.sh, as the CLI tests make them; URIs are the
# RFC 7512 section 7 examples and URIs as p11km prints them.  Inputs the
# fuzzers found (regress-*) are kept.
#   tests/fuzz/seeds.sh
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
c=$top/tests/fuzz/corpus
. "$top/tests/lib/certs.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -f "$c"/*/seed-*
mkdir -p "$c/uri" "$c/certs" "$c/req" "$c/pin"

# --- certificates: a root, an intermediate and leaves, in every form a CA uses
ca_setup "$tmp" >/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/leaf.key" 2>/dev/null
openssl pkey -in "$tmp/leaf.key" -pubout -out "$tmp/leaf.pub"
issue "$tmp" "$tmp/leaf.pub" "$tmp/leaf.pem" www.example.com 0x2001
issue "$tmp" "$tmp/leaf.pub" "$tmp/nosig.pem" nosig.example.com 0x2002 nosig
issue "$tmp" "$tmp/leaf.pub" "$tmp/direct.pem" direct.example.com 0x2003 leaf 30 root
cp "$tmp/root.pem" "$c/certs/seed-root.pem"
cp "$tmp/leaf.pem" "$c/certs/seed-leaf.pem"
cp "$tmp/nosig.pem" "$c/certs/seed-leaf-keyencipherment.pem"
cp "$tmp/direct.pem" "$c/certs/seed-leaf-by-root.pem"
# DER too: libFuzzer's mutations reach far more of a certificate in DER than in base64
for f in leaf root inter nosig direct; do
	openssl x509 -in "$tmp/$f.pem" -outform DER -out "$c/certs/seed-$f.der"
done
cat "$tmp/leaf.pem" "$tmp/inter.pem" "$tmp/root.pem" > "$c/certs/seed-bundle.pem"
openssl crl2pkcs7 -nocrl -certfile "$c/certs/seed-bundle.pem" -outform DER \
	-out "$c/certs/seed-chain.p7b"
openssl crl2pkcs7 -nocrl -certfile "$tmp/leaf.pem" -certfile "$tmp/inter.pem" \
	-out "$c/certs/seed-chain.p7.pem"
openssl x509 -in "$tmp/root.pem" -trustout -addtrust serverAuth -out "$c/certs/seed-root-trusted.pem"
# as Windows CAs hand them out: UTF-16 with a BOM, a UTF-8 BOM, base64 without armor
iconv -f UTF-8 -t UTF-16 "$tmp/leaf.pem" > "$c/certs/seed-leaf-utf16le.pem"
{ printf '\376\377'; iconv -f UTF-8 -t UTF-16BE "$tmp/inter.pem"; } > "$c/certs/seed-inter-utf16be.pem"
{ printf '\357\273\277'; cat "$tmp/leaf.pem"; } > "$c/certs/seed-leaf-utf8bom.pem"
openssl base64 -in "$c/certs/seed-leaf.der" | sed 's/$/\r/' > "$c/certs/seed-leaf.b64"

# --- URIs: RFC 7512 section 7, then as p11km prints and takes them
i=0
while IFS= read -r u; do
	i=$((i + 1))
	printf '%s' "$u" > "$c/uri/seed-$(printf %02d $i)"
done <<'URIS'
pkcs11:
pkcs11:object=my-pubkey;type=public
pkcs11:object=my-key;type=private?pin-source=file:/etc/token
pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin
pkcs11:object=my-sign-key;type=private?module-name=mypkcs11
pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1
pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin
pkcs11:slot-description=Sun%20Metaslot
pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23
pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;id=%01%02%03%Ba%dd%Ca%fe%04%05%06
pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert
pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert
pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a?pin-source=file:/etc/token_pin&vendor-bbb=value-b
pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=4b1a8f0c2e9d7a61;token=my-token;id=%5a%01%c3;object=web;type=private
pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=4b1a8f0c2e9d7a61;token=my-token;object=web.pending;type=cert?pin-source=/run/p11km/web.pin
pkcs11:manufacturer=Intel%00%00%00;model=TPM2%00%00;token=tpm;object=k;type=public
pkcs11:token=a;slot-id=18446744073709551615;slot-manufacturer=x;slot-description=y?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234
pkcs11:type=secret-key;object=%E2%82%AC;id=%00%00;token=%20padded%20
URIS

# --- req new options: SUBJECT, SAN, KU, EKU one a line
w() { printf "$2" > "$c/req/seed-$1"; }
w cn 'CN=www.example.com\n\n\n'
w rfc4514 'CN=www.example.com,OU=Web+OU=Ops,O=Example\\, Inc.,L=Z\\C3\\BCrich,C=CH\nDNS:www.example.com,DNS:*.example.com,IP:192.0.2.1,IP:[2001:db8::1],email:ops@example.com,URI:https://example.com/a,b\ndigitalSignature,keyEncipherment\nserverAuth,clientAuth,1.3.6.1.5.5.7.3.9\n'
w slash '/C=US/ST=CA/O=Example/CN=mail.example.com/emailAddress=a@example.com/\nemail:a@example.com\nnonRepudiation\nemailProtection\n'
w escapes 'CN=\\#hash\\20and\\2Cmore\\;\\<\\>\\=\\"\\\\ ,serialNumber=42+title=x\n\nkeyCertSign,cRLSign\nanyExtendedKeyUsage\n'
w ip-cn 'CN=192.0.2.7,DC=example,DC=com,UID=u1\n\ndigitalSignature\ncodeSigning,timeStamping,OCSPSigning,ipsecIKE,msSmartcardLogin\n'
w san-only '\nDNS:a.example,URI:urn:x:y,IP:::1\nkeyAgreement,encipherOnly,decipherOnly,dataEncipherment,contentCommitment\n2.5.29.37.0\n'

# --- PIN sources: flags byte (1: a bare path is a file), source, content
p() { printf "$2" > "$c/pin/seed-$1"; }
p file '\000file:/etc/p11km/pin\n1234\n'
p bare '\001/etc/p11km/pin\n1234'
p env '\000env:P11KM_PIN\n1234\r\n'
p fd '\000fd:3\nsecret pin'
p prompt '\000prompt\n\n'
p unknown '\0001234\n1234\n\n'
p long "\\000file:/x\\n$(head -c 256 /dev/zero | tr '\0' 7)\\r\\n"
echo "seeds written to $c" >&2
