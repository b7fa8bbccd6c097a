# tests/lib/bind.sh: for the tests that bind servers (sourced after common.sh).
# A throwaway SoftHSM2 token with keys made by pkcs11-tool, certificates
# issued by a throwaway CA with the openssl CLI (never by p11km), free ports.

. "$top_srcdir/tests/lib/serve.sh"
USERPIN=1234
# bind_setup: token "bind" with a mode 0600 PIN file; a test CA.
bind_setup() {
	softhsm_setup
	command -v openssl >/dev/null || skip_all "openssl not found"
	command -v pkcs11-tool >/dev/null || skip_all "pkcs11-tool not found"
	new_token bind "$USERPIN"
	PIN=$T/pin-bind
	TOKEN='pkcs11:token=bind'
	# the test CA (file keys, plain openssl: the engine is never global)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$T/ca.key" -out "$T/ca.pem" -days 30 -subj "/CN=p11km test CA" \
		-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
		2>/dev/null
}

# make_key LABEL ID TYPE (rsa:2048 | EC:prime256v1): a key pair on the token.
make_key() {
	p11tool_sm --token-label bind --login --pin "$USERPIN" --keypairgen \
		--key-type "$3" --label "$1" --id "$2" >/dev/null 2>&1
}

# issue LABEL ID CN SERIAL [DAYS]: a certificate from the test CA for the token
# key's public key (exported by pkcs11-tool), written to the token as a cert
# object with the same label and id; also left in $T/LABEL-SERIAL.pem.
issue() {
	_l=$1 _id=$2 _cn=$3 _ser=$4 _days=${5:-20}
	p11tool_sm --token-label bind --read-object --type pubkey --label "$_l" \
		-o "$T/$_l.pub.der" >/dev/null 2>&1
	openssl pkey -pubin -inform DER -in "$T/$_l.pub.der" -out "$T/$_l.pub.pem"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$T/throwaway.key" -subj "/CN=$_cn" -out "$T/throwaway.csr" 2>/dev/null
	printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
		"$_cn" > "$T/ext.cnf"
	openssl x509 -req -in "$T/throwaway.csr" -force_pubkey "$T/$_l.pub.pem" \
		-CA "$T/ca.pem" -CAkey "$T/ca.key" -set_serial "$_ser" -days "$_days" \
		-extfile "$T/ext.cnf" -out "$T/$_l-$_ser.pem" 2>/dev/null
	openssl x509 -in "$T/$_l-$_ser.pem" -outform DER -out "$T/$_l-$_ser.der"
}

# put_cert LABEL ID FILE.der: replace the token certificate LABEL by FILE.
put_cert() {
	p11tool_sm --token-label bind --login --pin "$USERPIN" --delete-object --type cert \
		--label "$1" >/dev/null 2>&1 || true
	p11tool_sm --token-label bind --login --pin "$USERPIN" --write-object "$3" \
		--type cert --label "$1" --id "$2" >/dev/null 2>&1
}

# serial_served PORT [NAME]: the serial of the leaf served (openssl s_client).
serial_served() {
	openssl s_client -connect "127.0.0.1:$1" ${2:+-servername "$2"} </dev/null 2>/dev/null |
		openssl x509 -noout -serial 2>/dev/null | sed 's/serial=//'
}

# s_client_ok PORT NAME: a handshake that verifies the chain and the name.
s_client_ok() {
	openssl s_client -connect "127.0.0.1:$1" -servername "$2" -verify_hostname "$2" \
		-CAfile "$T/ca.pem" -verify_return_error </dev/null >"$T/sc.out" 2>&1 &&
		grep -q 'Verify return code: 0 (ok)' "$T/sc.out"
}

