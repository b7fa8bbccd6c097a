# tests/lib/certs.sh: a test CA (root + intermediate) made with the openssl
# CLI, key pairs made on a token with pkcs11-tool, and leaf certificates for
# token keys (openssl x509 -req -force_pubkey), without p11km's own code.
# Source after tests/lib/common.sh.

# ca_setup DIR: DIR/root.pem, DIR/root.key, DIR/inter.pem, DIR/inter.key
ca_setup() {
	_d=$1
	mkdir -p "$_d"
	cat > "$_d/ca.cnf" <<-'EOF'
	[ca]
	basicConstraints = critical, CA:TRUE
	keyUsage = critical, keyCertSign, cRLSign
	subjectKeyIdentifier = hash
	authorityKeyIdentifier = keyid
	[leaf]
	basicConstraints = CA:FALSE
	keyUsage = critical, digitalSignature
	extendedKeyUsage = serverAuth, clientAuth
	subjectKeyIdentifier = hash
	authorityKeyIdentifier = keyid
	subjectAltName = DNS:localhost, IP:127.0.0.1
	[nosig]
	basicConstraints = CA:FALSE
	keyUsage = critical, keyEncipherment
	subjectKeyIdentifier = hash
	authorityKeyIdentifier = keyid
	EOF
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$_d/root.key" -out "$_d/root.pem" -days 3650 -subj "/CN=p11km Test Root $$" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		2>/dev/null || return 1
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$_d/inter.key" -out "$_d/inter.csr" -subj "/CN=p11km Test Intermediate $$" 2>/dev/null || return 1
	openssl x509 -req -in "$_d/inter.csr" -CA "$_d/root.pem" -CAkey "$_d/root.key" \
		-set_serial 0x1001 -days 3000 -extfile "$_d/ca.cnf" -extensions ca \
		-out "$_d/inter.pem" 2>/dev/null || return 1
	# a throwaway request whose key is replaced by -force_pubkey
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$_d/throwaway.key" -out "$_d/throwaway.csr" -subj "/CN=throwaway" 2>/dev/null
}

# token_keypair MODULE TOKEN PINFILE LABEL IDHEX OUTPUB: an EC P-256 pair on
# the token; its public key as PEM in OUTPUB.
token_keypair() {
	pkcs11-tool --module "$1" --token-label "$2" --login --pin "$(cat "$3")" \
		--keypairgen --key-type EC:prime256v1 --label "$4" --id "$5" >/dev/null 2>&1 || return 1
	pkcs11-tool --module "$1" --token-label "$2" --read-object --type pubkey --id "$5" \
		-o "$6.der" >/dev/null 2>&1 || return 1
	openssl pkey -pubin -inform DER -in "$6.der" -out "$6" 2>/dev/null
}

# pub_keyid PUBPEM: RFC 5280 key identifier (SHA-1 of the EC point) in hex.
pub_keyid() {
	openssl pkey -pubin -in "$1" -outform DER 2>/dev/null | tail -c 65 | sha1sum | cut -c1-40
}

# issue CADIR PUBPEM OUT CN SERIAL [EXT] [DAYS] [ISSUER]: a leaf for PUBPEM
# (ISSUER: inter (default) or root).  EXT: a section of CADIR/ca.cnf (leaf,
# the default: for localhost and 127.0.0.1; nosig; ca), or server: a TLS
# server named CN (subjectAltName DNS:CN, serverAuth; the extensions are left
# in CADIR/server.cnf).
issue() {
	_iss=${8:-inter} _sect=${6:-leaf} _cnf=$1/ca.cnf
	if [ "$_sect" = server ]; then
		_cnf=$1/server.cnf
		printf '[server]\nsubjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
			"$4" > "$_cnf"
	fi
	openssl x509 -req -in "$1/throwaway.csr" -force_pubkey "$2" -CA "$1/$_iss.pem" \
		-CAkey "$1/$_iss.key" -set_serial "$5" -days "${7:-365}" -subj "/CN=$4" \
		-extfile "$_cnf" -extensions "$_sect" -out "$3" 2>/dev/null
}

# issue_csr CADIR CSR OUT [DAYS] [ISSUER]: the CA signs a request as it is:
# its subject, its key (openssl checks the request's signature) and its
# extensions (copied); a serial of the CA's own (CADIR/ISSUER.srl).  ISSUER:
# inter (default) or root; DAYS: 365.  openssl's complaints: CADIR/issue.err.
issue_csr() {
	_iss=${5:-inter}
	openssl x509 -req -in "$2" -CA "$1/$_iss.pem" -CAkey "$1/$_iss.key" -CAcreateserial \
		-CAserial "$1/$_iss.srl" -days "${4:-365}" -copy_extensions copyall -out "$3" 2>"$1/issue.err"
}

# fp FILE: SHA-256 fingerprint of a PEM certificate (lower-case hex, no colons).
fp() {
	openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}

# token_certs MODULE TOKEN [PINFILE]: "id|label|serial" of every certificate
# object, from pkcs11-tool -O (the judge).
token_certs() {
	pkcs11-tool --module "$1" --token-label "$2" ${3:+--login --pin "$(cat "$3")"} -O --type cert 2>/dev/null |
	awk '/^Certificate Object/{if(n)print id"|"l"|"s; n=1; id="";l="";s=""}
	     /^  label:/{sub(/^  label: +/,""); l=$0}
	     /^  ID:/{id=$2} /^  serial:/{s=tolower($2)} END{if(n)print id"|"l"|"s}'
}

# token_keys MODULE TOKEN PINFILE: "class|id|label" of every key object.
token_keys() {
	pkcs11-tool --module "$1" --token-label "$2" --login --pin "$(cat "$3")" -O 2>/dev/null |
	awk '/^(Private|Public) Key Object/{if(n)print c"|"id"|"l; n=1; c=$1; id="";l=""}
	     /^Certificate Object/{if(n)print c"|"id"|"l; n=0}
	     /^  label:/{sub(/^  label: +/,""); l=$0} /^  ID:/{id=$2} END{if(n)print c"|"id"|"l}'
}

# token_import MODULE TOKEN PINFILE KEYPEM IDHEX LABEL: put a software EC key
# pair on the token (tests only: lets openssl sign requests with dates).
token_import() {
	openssl pkey -in "$4" -pubout -out "$4.pub" 2>/dev/null || return 1
	pkcs11-tool --module "$1" --token-label "$2" --login --pin "$(cat "$3")" \
		--write-object "$4" --type privkey --id "$5" --label "$6" >/dev/null 2>&1 || return 1
	pkcs11-tool --module "$1" --token-label "$2" --login --pin "$(cat "$3")" \
		--write-object "$4.pub" --type pubkey --id "$5" --label "$6" >/dev/null 2>&1
}

# issue_dates CADIR KEYPEM OUT CN SERIAL START END: a leaf from the
# intermediate with explicit dates (YYYYMMDDHHMMSSZ), through 'openssl ca'.
issue_dates() {
	_db=$1/db
	mkdir -p "$_db"
	[ -f "$_db/index" ] || : > "$_db/index"
	echo "$5" > "$_db/serial"
	cat > "$1/ca-tool.cnf" <<-EOF
	[ca]
	default_ca = c
	[c]
	database = $_db/index
	new_certs_dir = $_db
	serial = $_db/serial
	default_md = sha256
	policy = p
	unique_subject = no
	[p]
	commonName = supplied
	[ext]
	basicConstraints = CA:FALSE
	keyUsage = critical, digitalSignature
	subjectKeyIdentifier = hash
	authorityKeyIdentifier = keyid
	EOF
	openssl req -new -key "$2" -subj "/CN=$4" -out "$3.csr" 2>/dev/null || return 1
	openssl ca -batch -config "$1/ca-tool.cnf" -in "$3.csr" -cert "$1/inter.pem" \
		-keyfile "$1/inter.key" -startdate "$6" -enddate "$7" -extensions ext \
		-out "$3" >/dev/null 2>&1
}

# tls_server DIR NAME: a throwaway TLS root (DIR/root.pem, root.key) and a
# server certificate for 127.0.0.1 and localhost (DIR/cert.pem, key.pem),
# for test servers on the loopback (pebble, certsrv.py...).
tls_server() {
	mkdir -p "$1"
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-keyout "$1/root.key" -out "$1/root.pem" -subj "/CN=$2 TLS root $$" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" 2>/dev/null &&
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1/key.pem" \
		-out "$1/srv.csr" -subj "/CN=127.0.0.1" 2>/dev/null &&
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > "$1/ext" &&
	openssl x509 -req -in "$1/srv.csr" -CA "$1/root.pem" -CAkey "$1/root.key" -days 2 \
		-set_serial 7 -extfile "$1/ext" -out "$1/cert.pem" 2>/dev/null
}
