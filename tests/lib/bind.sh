# tests/lib/bind.sh: for the tests that bind servers (sourced after common.sh).
# A throwaway SoftHSM2 token with keys made by pkcs11-tool, certificates
# issued by the test CA (tests/lib/certs.sh, in $T/ca: its root signs them
# here) with the openssl CLI (never by p11km), free ports.

. "$top_srcdir/tests/lib/serve.sh"
. "$top_srcdir/tests/lib/certs.sh"
USERPIN=1234
# bind_setup: token "bind" with a mode 0600 PIN file; the test CA in $T/ca.
bind_setup() {
	softhsm_setup
	need openssl pkcs11-tool
	new_token bind "$USERPIN"
	PIN=$T/pin-bind
	TOKEN='pkcs11:token=bind'
	ca_setup "$T/ca" || { echo "# cannot make the test CA"; exit 99; }
}

# make_key LABEL ID TYPE (rsa:2048 | EC:prime256v1): a key pair on the token.
make_key() {
	p11tool_sm --token-label bind --login --pin "$USERPIN" --keypairgen \
		--key-type "$3" --label "$1" --id "$2" >/dev/null 2>&1
}

# issue_token LABEL ID CN SERIAL [DAYS]: a certificate from the test CA's root
# for the token key's public key (exported by pkcs11-tool: $T/LABEL.pub.pem),
# for a TLS server named CN (issue ... server), in $T/LABEL-SERIAL.pem and
# .der; put_cert writes it to the token.
issue_token() {
	_l=$1 _id=$2 _cn=$3 _ser=$4 _days=${5:-20}
	p11tool_sm --token-label bind --read-object --type pubkey --label "$_l" \
		-o "$T/$_l.pub.der" >/dev/null 2>&1
	openssl pkey -pubin -inform DER -in "$T/$_l.pub.der" -out "$T/$_l.pub.pem"
	issue "$T/ca" "$T/$_l.pub.pem" "$T/$_l-$_ser.pem" "$_cn" "$_ser" server "$_days" root
	openssl x509 -in "$T/$_l-$_ser.pem" -outform DER -out "$T/$_l-$_ser.der"
}

# put_cert LABEL ID FILE.der: replace the token certificate LABEL by FILE.
put_cert() {
	p11tool_sm --token-label bind --login --pin "$USERPIN" --delete-object --type cert \
		--label "$1" >/dev/null 2>&1 || true
	p11tool_sm --token-label bind --login --pin "$USERPIN" --write-object "$3" \
		--type cert --label "$1" --id "$2" >/dev/null 2>&1
}

# track_setup: what the renew tests start from: bind_setup, key web1 (id 01,
# EC P-256) with a two-day certificate, serial 1001, on the token; S the state
# directory, CA the file CA's directory.
track_setup() {
	bind_setup
	S=$T/state
	CA=$T/ca-in
	mkdir -p "$CA"
	make_key web1 01 EC:prime256v1
	issue_token web1 01 web1.test 1001 2
	put_cert web1 01 "$T/web1-1001.der"
}

# serial_served PORT [NAME]: the serial of the leaf served (openssl s_client).
serial_served() {
	openssl s_client -connect "127.0.0.1:$1" ${2:+-servername "$2"} </dev/null 2>/dev/null |
		openssl x509 -noout -serial 2>/dev/null | sed 's/serial=//'
}

# s_client_ok PORT NAME: a handshake that verifies the chain and the name.
s_client_ok() {
	openssl s_client -connect "127.0.0.1:$1" -servername "$2" -verify_hostname "$2" \
		-CAfile "$T/ca/root.pem" -verify_return_error </dev/null >"$T/sc.out" 2>&1 &&
		grep -q 'Verify return code: 0 (ok)' "$T/sc.out"
}

