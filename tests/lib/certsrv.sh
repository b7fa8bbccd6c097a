# tests/lib/certsrv.sh: the AD CS stand-in (tests/tools/certsrv.py) for the
# shell tests.  Source after common.sh and certs.sh.
#
# certsrv_token LABEL: a SoftHSM2 token LABEL to submit from: PIN (its PIN
# file), TOK (its URI), CFG (the CA profiles), ST (the state); p11km's
# default directories and the environment's CA bundles out of the way.
certsrv_token() {
	softhsm_setup
	new_token "$1"
	PIN=$T/pin-$1 TOK="pkcs11:token=$1" CFG=$T/ca.d ST=$T/state TOKLABEL=$1
	export P11KM_CONFIG_DIR="$T/not-used" P11KM_STATE_DIR="$T/not-used-state"
	unset CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR 2>/dev/null || true
}
# submit ARG...: req submit with the test's profiles and state.
submit() { "$P11KM" req submit "$@" --config-dir "$CFG" --state-dir "$ST"; }
# tokcerts: how many certificates the token holds (pkcs11-tool).
tokcerts() { pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label "$TOKLABEL" --list-objects --type cert 2>/dev/null | grep -c label || true; }
# check_token_cert DESCRIPTION LABEL CHAIN: the token's certificate LABEL
# is CHAIN's leaf (read by pkcs11-tool).
check_token_cert() {
	rm -f "$T/tokcert.der"
	pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label "$TOKLABEL" --read-object --type cert \
		--label "$2" -o "$T/tokcert.der" >/dev/null 2>&1
	openssl x509 -in "$3" -outform DER -out "$T/leaf.der"
	check "$1" cmp "$T/tokcert.der" "$T/leaf.der"
}
#
# certsrv_setup NAME: its TLS certificate ($T/tls), the CA it issues from
# ($T/ca/ca.pem; $T/ca/other.pem a certificate for another key), the Basic
# password ($CERTSRV_PW, a 0600 file) and the user ($CERTSRV_USER).
certsrv_setup() {
	mkdir -p "$T/ca"
	tls_server "$T/tls" "$1" &&
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-keyout "$T/ca/ca.key" -out "$T/ca/ca.pem" -subj "/DC=test/DC=corp/CN=corp-CA-$$" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null &&
	cp "$T/tls/cert.pem" "$T/ca/other.pem"
	CERTSRV_PW=$(pin_file certsrv-pw 'S3cret!pw')
	CERTSRV_USER='CORP\svc-web'
}
# start_certsrv PORT: through start_server (HTTPS; log in $T/certsrv.log).
# For Negotiate (/krb-MODE/): CERTSRV_KRBUSER the Kerberos principal it
# lets in, CERTSRV_ENV the service's environment (krb.sh's KRB_KTENV), run
# by Debian's python3 (python3-gssapi is for /usr/bin/python3 only).
start_certsrv() {
	# shellcheck disable=SC2086
	env ${CERTSRV_ENV:-} ${CERTSRV_KRBUSER:+/usr/bin/}python3 "$top_srcdir/tests/tools/certsrv.py" \
		"$1" "$T/tls/cert.pem" "$T/tls/key.pem" "$T/ca" "$CERTSRV_USER" "$CERTSRV_PW" \
		${CERTSRV_KRBUSER:+"$CERTSRV_KRBUSER"} > "$T/certsrv.log" 2>&1 &
	SERVER_PID=$!
	cleanup_add "kill $SERVER_PID"
}
# certsrv_add NAME MODE [OPTION...]: an adcs profile in $CFG for the
# stand-in's behaviour MODE (ok, pending, denied ...), Basic auth.
certsrv_add() {
	_n=$1 _m=$2
	shift 2
	"$P11KM" ca add "$_n" --kind adcs --url "https://127.0.0.1:$CERTSRV_PORT/$_m/certsrv" \
		--template WebServer --ca-file "$T/tls/root.pem" --auth basic --user "$CERTSRV_USER" \
		--password-source "file:$CERTSRV_PW" --timeout 2 --config-dir "$CFG" "$@"
}
