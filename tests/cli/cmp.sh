#!/bin/sh
# CMP (RFC 4210/9483): ca add --kind cmp, req submit and ca roots against a
# CMP CA that really issues (tests/tools/cmp-ca.c, libcrypto's
# OSSL_CMP_SRV_CTX, on 127.0.0.1) and against 'openssl cmp -port', the mock
# server nobody here wrote (it answers with a fixed certificate the test made
# for the token key).  p10cr with MAC (PBM) protection, ir with proof of
# possession by the token key, kur protected by the old certificate's token
# key, certConf, genm for the CA certificates; the chain installed with
# --install and judged by openssl and pkcs11-tool.  Every bad answer
# (wrong MAC, rejection with failInfo bits, a certificate for another key, a
# truncated answer, a web page, a CA that never answers) is one line and
# changes nothing.
# 'openssl cmp -port' listens on every address, never on 127.0.0.1 alone: the
# whole test runs in a network namespace of its own, whose only interface is
# loopback, so nothing of it is reachable from another address.
if [ -z "${P11KM_TEST_NETNS:-}" ] && unshare -n true 2>/dev/null; then
	P11KM_TEST_NETNS=1 exec unshare -n "${BASH:-sh}" -c 'ip link set lo up && exec "$0" "$1"' \
		"${BASH:-sh}" "$0"
fi
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/serve.sh"

setup() {
	[ -n "${P11KM_TEST_NETNS:-}" ] ||
		skip_all "no network namespace (unshare -n, as root): openssl cmp -port would listen on every address"
	need openssl pkcs11-tool ip unshare nginx
	check_eq "the test's network namespace has loopback alone" "$(ip -o link show | awk '{print $2}' | tr -d '\n')" "lo:"
	CMPCA=$top_builddir/tests/cmp-ca
	[ -x "$CMPCA" ] || skip_all "tests/cmp-ca not built"
	softhsm_setup
	new_token cmp
	PIN=$T/pin-cmp
	TOK="pkcs11:token=cmp"
	CFG=$T/ca.d
	export P11KM_CONFIG_DIR="$T/not-used"   # every command below names --config-dir
	unset CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR 2>/dev/null || true
}

start_cmpca() { "$CMPCA" "$1" "$T/ca.pem" "$T/ca.key" "$T/secret" "$MODE" > "$T/cmpca.log" 2>&1 &
	SERVER_PID=$!; cleanup_add "kill $SERVER_PID"; }
# counts of certificates on the token, and whether a file appeared
token_certs_n() { p11tool_sm --token-label cmp --list-objects --type cert 2>/dev/null | grep -c '^Certificate'; }

# the CA: its certificate and key, the shared secret
test_ca() {
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3 \
		-keyout "$T/ca.key" -out "$T/ca.pem" -subj "/CN=cmp.sh CA $$" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
	(umask 077; printf 'shared-secret-%s' "$$" > "$T/secret"; printf 'wrong' > "$T/wrong")
	MODE=$T/mode

	check "the CMP test CA starts on 127.0.0.1" start_server "$T/cmpca.log" 1 start_cmpca
	CP=$PORT
}

# profiles
test_profiles() {
	check_fails "ca add --kind cmp without --url: exit 2" 2 "$P11KM" ca add x --kind cmp \
		--secret-source "file:$T/secret" --config-dir "$CFG"
	check_fails "ca add --kind cmp without any protection: exit 2" 2 "$P11KM" ca add x --kind cmp \
		--url "http://127.0.0.1:$CP/pkix/" --config-dir "$CFG"
	check_fails "a secret given inline is refused: exit 2" 2 "$P11KM" ca add x --kind cmp \
		--url "http://127.0.0.1:$CP/pkix/" --secret-source "pass:$(cat "$T/secret")" --config-dir "$CFG"
	check_fails "https without --ca-file: exit 2" 2 "$P11KM" ca add x --kind cmp \
		--url "https://127.0.0.1:$CP/pkix/" --secret-source "file:$T/secret" --config-dir "$CFG"
	check_fails "--secret-source with --kind acme: exit 2" 2 "$P11KM" ca add x --kind acme \
		--directory https://127.0.0.1:1/dir --ca-file "$T/ca.pem" --secret-source "file:$T/secret" \
		--config-dir "$CFG"
	[ ! -e "$CFG" ] && ok "refused profiles wrote nothing" || not_ok "refused profiles wrote $CFG"
	check "ca add cmpca (MAC protection, secret from a file)" "$P11KM" ca add cmpca --kind cmp \
		--url "http://127.0.0.1:$CP/pkix/" --secret-source "file:$T/secret" --ref client1 \
		--recipient "/CN=cmp.sh CA $$" --ca-file "$T/ca.pem" --config-dir "$CFG"
	check_nogrep "the profile holds a reference to the secret, never the secret" \
		"shared-secret" "$CFG/cmpca.json"
	check "ca show cmpca" "$P11KM" ca show cmpca --config-dir "$CFG"
	check_grep "ca show: the secret source" "^secret-source: file:$T/secret" "$T/out"
	check "ca list" "$P11KM" ca list --config-dir "$CFG"
	check_grep "ca list names cmpca with its URL" "^cmpca +cmp +http://127.0.0.1:$CP/pkix/" "$T/out"
}

same_key() { openssl x509 -in "$1" -noout -pubkey | cmp -s - "$2"; }

# the token key and its request
test_token_key() {
	check "key generate web" "$P11KM" key generate "$TOK" --type ec:p256 --label web \
		--pin-source "file:$PIN"
	check "req new web" "$P11KM" req new "$TOK;object=web;type=private" \
		--subject "CN=web.example.test" --san DNS:web.example.test -o "$T/web.csr" \
		--pin-source "file:$PIN"
	openssl req -in "$T/web.csr" -noout -pubkey > "$T/web.pub"
}

# p10cr + PBM
test_p10cr_pbm() {
	check "req submit (p10cr, MAC)" "$P11KM" --verbose req submit "$T/web.csr" --ca cmpca \
		-o "$T/p10.pem" --config-dir "$CFG"
	check_grep "... certConf sent" "certConf" "$T/err"
	check_grep "the CA saw the certConf accept" "certConf: PKIStatus: accepted" "$T/cmpca.log"
	check "openssl verifies the issued certificate against the CA" openssl verify -CAfile "$T/ca.pem" \
		"$T/p10.pem"
	same_key "$T/p10.pem" "$T/web.pub" && ok "the certificate is for the token key" \
		|| not_ok "the certificate is for another key"
	openssl x509 -in "$T/p10.pem" -noout -ext subjectAltName > "$T/san" 2>&1
	check_grep "the request's subjectAltName is in it" "DNS:web.example.test" "$T/san"
	check "req submit --json" "$P11KM" --json req submit "$T/web.csr" --ca cmpca \
		-o "$T/p10b.pem" --config-dir "$CFG"
	check_eq "--json: two messages (p10cr, certConf)" "$(json_get "$T/out" 'd["requests"]')" "2"
	check_eq "--json: no signature on the token for a p10cr" "$(json_get "$T/out" 'd["signatures"]')" "0"
}

# p10cr --install
test_p10cr_install() {
	check "req submit --install" "$P11KM" req submit "$T/web.csr" "$TOK;object=web;type=private" \
		--ca cmpca --install --verify-ca-file "$T/ca.pem" -o "$T/inst.pem" --pin-source "file:$PIN" \
		--config-dir "$CFG"
	p11tool_sm --token-label cmp --read-object --type cert --label web -o "$T/web-token.der" \
		>/dev/null 2>&1
	openssl x509 -in "$T/inst.pem" -outform DER -out "$T/inst.der"
	check "the token holds the issued certificate (pkcs11-tool)" cmp "$T/web-token.der" "$T/inst.der"
	# served: nginx with the binding of what the CMP CA issued
	nginx_serves cmp "$TOK;object=web;type=private" "$TOK;object=web;type=cert" "$T/ca.pem"
}

# ir: POP by the token key
test_ir_pop() {
	check "req submit --cmp ir (POP signed on the token)" "$P11KM" --json --verbose req submit \
		"$T/web.csr" --ca cmpca --cmp ir --key "$TOK" -o "$T/ir.pem" --pin-source "file:$PIN" \
		--config-dir "$CFG"
	check_eq "ir: one signature on the token (the POP)" "$(json_get "$T/out" 'd["signatures"]')" "1"
	check_grep "the CA issued for a CRMF request (its POP verified)" "issued for a CRMF request" \
		"$T/cmpca.log"
	same_key "$T/ir.pem" "$T/web.pub" && ok "ir: the certificate is for the token key" \
		|| not_ok "ir: another key"
	check "ir: openssl verifies it" openssl verify -CAfile "$T/ca.pem" "$T/ir.pem"
}

# kur: protected by the old certificate's token key
test_kur() {
	check "key generate web2 (the new key)" "$P11KM" key generate "$TOK" --type ec:p256 --label web2 \
		--pin-source "file:$PIN"
	check "req new web2" "$P11KM" req new "$TOK;object=web2;type=private" \
		--subject "CN=web.example.test" --san DNS:web.example.test -o "$T/web2.csr" \
		--pin-source "file:$PIN"
	openssl req -in "$T/web2.csr" -noout -pubkey > "$T/web2.pub"
	check_fails "kur without --old-cert: exit 2" 2 "$P11KM" req submit "$T/web2.csr" --ca cmpca \
		--cmp kur --key "$TOK" -o "$T/kur.pem" --pin-source "file:$PIN" --config-dir "$CFG"
	check "req submit --cmp kur --old-cert" "$P11KM" --json req submit "$T/web2.csr" --ca cmpca \
		--cmp kur --old-cert "$T/inst.pem" --key "$TOK" -o "$T/kur.pem" --pin-source "file:$PIN" \
		--config-dir "$CFG"
	check_eq "kur: three signatures on the token (protection, POP, certConf)" \
		"$(json_get "$T/out" 'd["signatures"]')" "3"
	same_key "$T/kur.pem" "$T/web2.pub" && ok "kur: the certificate is for the new key" \
		|| not_ok "kur: another key"
	check "kur: openssl verifies it" openssl verify -CAfile "$T/ca.pem" "$T/kur.pem"
}

# ir --install: the POP and the install in one login
test_ir_install_one_login() {
	if shim_available; then
		check "req submit --cmp ir --install --json through the shim" shim_p11km --json req submit \
			"$T/web2.csr" "$TOK;object=web2;type=private" --ca cmpca --cmp ir --key "$TOK" --install \
			--verify-ca-file "$T/ca.pem" -o "$T/ir2.pem" --pin-source "file:$PIN" --config-dir "$CFG"
		check_eq "one C_Login for the POP and the install" "$(count_of C_Login)" 1
		check_eq "the document: the POP's signature, and the install's leaf is the chain's" \
			"$(json_get "$T/out" 'd["signatures"], d["install"]["leaf"]["sha256"]')" \
			"(1, '$(openssl x509 -in "$T/ir2.pem" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)')"
		p11tool_sm --token-label cmp --read-object --type cert --label web2 -o "$T/web2-token.der" \
			>/dev/null 2>&1
		openssl x509 -in "$T/ir2.pem" -outform DER -out "$T/ir2.der"
		check "the token holds it next to web2 (pkcs11-tool)" cmp "$T/web2-token.der" "$T/ir2.der"
	else
		not_ok "the shim module is not built"
	fi
}

# an RSA key: the bridge's RSA_METHOD (PKCS#1 v1.5 on the token)
test_rsa() {
	check "key generate rsa (RSA 2048)" "$P11KM" key generate "$TOK" --type rsa:2048 --label rsa \
		--pin-source "file:$PIN"
	check "req new rsa" "$P11KM" req new "$TOK;object=rsa;type=private" --subject "CN=rsa.example.test" \
		-o "$T/rsa.csr" --pin-source "file:$PIN"
	check "req submit --cmp ir with the RSA key (POP by CKM_RSA_PKCS)" "$P11KM" req submit \
		"$T/rsa.csr" --ca cmpca --cmp ir --key "$TOK" -o "$T/rsa.pem" --pin-source "file:$PIN" \
		--config-dir "$CFG"
	openssl req -in "$T/rsa.csr" -noout -pubkey > "$T/rsa.pub"
	same_key "$T/rsa.pem" "$T/rsa.pub" && ok "rsa: the certificate is for the token key" \
		|| not_ok "rsa: another key"
}

# cr with signature protection: the profile's certificate and its token key
test_cr_signature() {
	check "ca add cmpsig (--cert/--key: signed by the token key)" "$P11KM" ca add cmpsig --kind cmp \
		--url "http://127.0.0.1:$CP/pkix/" --cert "$T/inst.pem" --key "$TOK" --cmp-cmd cr \
		--ca-file "$T/ca.pem" --config-dir "$CFG"
	check "req submit to cmpsig (cr: protection and POP by the same token key)" "$P11KM" --json \
		req submit "$T/web.csr" --ca cmpsig -o "$T/cr.pem" --pin-source "file:$PIN" --config-dir "$CFG"
	check_eq "cr: three signatures (protection, POP, certConf)" "$(json_get "$T/out" 'd["signatures"]')" "3"
	same_key "$T/cr.pem" "$T/web.pub" && ok "cr: the certificate is for the token key" \
		|| not_ok "cr: another key"
}

# genm: ca roots
test_genm_roots() {
	check "ca roots --out (genm id-it-caCerts)" "$P11KM" ca roots cmpca --out "$T/roots.pem" \
		--config-dir "$CFG"
	check "... the CA's certificate" cmp "$T/roots.pem" "$T/ca.pem"
	check "ca roots --to the token" "$P11KM" ca roots cmpca --to "token:$TOK" --pin-source "file:$PIN" \
		--so-pin-source "file:$T/sopin-cmp" --config-dir "$CFG"
	p11tool_sm --token-label cmp --list-objects --type cert > "$T/certs" 2>&1
	check_grep "the CA's certificate is on the token (pkcs11-tool)" "cmp.sh CA $$" "$T/certs"
	check "ca roots on stdout" "$P11KM" ca roots cmpca --config-dir "$CFG"
	cp "$T/out" "$T/roots-stdout.pem"
	check "... the CA's certificate" cmp "$T/roots-stdout.pem" "$T/ca.pem"
}

# bad NAME EXIT PATTERN ARGS...: submit with --install and -o; the exit code,
# one line matching PATTERN, no chain file, the token unchanged.
bad() {
	_d=$1 _x=$2 _p=$3
	shift 3
	rm -f "$T/bad.pem"
	check_fails "$_d: exit $_x" "$_x" "$P11KM" req submit "$T/web.csr" \
		"$TOK;object=web;type=private" --install -o "$T/bad.pem" --pin-source "file:$PIN" \
		--config-dir "$CFG" "$@"
	check_one_line_error "$_d: one line" "$_p"
	[ ! -e "$T/bad.pem" ] && ok "$_d: no chain written" || not_ok "$_d: a chain was written"
	check_eq "$_d: the token is unchanged" "$(token_certs_n)" "$BEFORE"
}

# bad answers: one line, nothing changed
test_bad_answers() {
	BEFORE=$(token_certs_n)
	check "ca add cmpwrong (the wrong secret)" "$P11KM" ca add cmpwrong --kind cmp \
		--url "http://127.0.0.1:$CP/pkix/" --secret-source "file:$T/wrong" --ref client1 \
		--ca-file "$T/ca.pem" --config-dir "$CFG"
	echo maconly > "$MODE"
	bad "wrong shared secret" 5 "not protected as expected" --ca cmpwrong
	echo reject > "$MODE"
	bad "rejection" 1 "rejected the p10cr: PKIStatus rejection, failInfo badPOP,badCertTemplate: policy says no" --ca cmpca
	echo otherkey > "$MODE"
	bad "a certificate for another key" 5 "does not accept" --ca cmpca
	grep -q "certConf: PKIStatus: rejection" "$T/cmpca.log" && ok "... refused to the CA in certConf" \
		|| not_ok "no certConf rejection reached the CA"
	echo truncate > "$MODE"
	bad "a truncated answer" 2 "not one whole CMP message" --ca cmpca
	echo html > "$MODE"
	bad "a web page instead" 2 "content type 'text/html'" --ca cmpca
	echo hang > "$MODE"
	check "ca add cmpslow (--timeout 2)" "$P11KM" ca add cmpslow --kind cmp \
		--url "http://127.0.0.1:$CP/pkix/" --secret-source "file:$T/secret" --ca-file "$T/ca.pem" \
		--timeout 2 --config-dir "$CFG"
	bad "a CA that never answers" 1 "did not answer within 2 s" --ca cmpslow
	bad "ACME options for a CMP CA" 2 "go with an ACME CA" --ca cmpca --webroot "$T"
	echo normal > "$MODE"
}

# start_mock PORT: (MOCK_ARGS from the caller) -port binds every address: only
# loopback exists in this test's network namespace; it is asked on 127.0.0.1
start_mock() {
	# shellcheck disable=SC2086
	openssl cmp -port "$1" -srv_secret "file:$T/secret" -srv_ref mock -srv_cert "$T/ca.pem" \
		-srv_key "$T/ca.key" -verbosity 7 $MOCK_ARGS > "$T/mock.log" 2>&1 &
	SERVER_PID=$!
	cleanup_add "kill $SERVER_PID"
}
# mock_with ARGS...: the mock again, answering as ARGS say; profile "mock" points at it
mock_with() {
	kill "$SERVER_PID" 2>/dev/null
	MOCK_ARGS="$*"
	check "the mock, with $*" start_server "$T/mock.log" 1 start_mock
	"$P11KM" -q ca add mock --kind cmp --url "http://127.0.0.1:$PORT/pkix/" \
		--secret-source "file:$T/secret" --ref client1 --config-dir "$CFG" --force
}

# openssl cmp's mock server
# its fixed answer: a certificate the test made for the token key
test_openssl_mock() {
	openssl x509 -req -in "$T/web.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -set_serial 4242 -days 2 \
		-out "$T/fixed.pem" 2>/dev/null
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/other.key" \
		-out "$T/other.csr" -subj "/CN=other" 2>/dev/null
	openssl x509 -req -in "$T/other.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -set_serial 4343 -days 2 \
		-out "$T/otherkey.pem" 2>/dev/null
	MOCK_ARGS="-rsp_cert $T/fixed.pem"
	check "openssl cmp -port (mock) starts" start_server "$T/mock.log" 1 start_mock
	MP=$PORT
	check "ca add mock" "$P11KM" ca add mock --kind cmp --url "http://127.0.0.1:$MP/pkix/" \
		--secret-source "file:$T/secret" --ref client1 --config-dir "$CFG"
	check "req submit to the mock (p10cr)" "$P11KM" req submit "$T/web.csr" --ca mock \
		-o "$T/mock.pem" --config-dir "$CFG"
	check "the mock's fixed certificate came back" cmp "$T/mock.pem" "$T/fixed.pem"
	check_grep "the mock got the certConf" "received CERTCONF" "$T/mock.log"
	check "req submit to the mock (ir, POP on the token)" "$P11KM" req submit "$T/web.csr" --ca mock \
		--cmp ir --key "$TOK" -o "$T/mock-ir.pem" --pin-source "file:$PIN" --config-dir "$CFG"
	check "... the fixed certificate" cmp "$T/mock-ir.pem" "$T/fixed.pem"
	check "ca add mockwrong (the wrong secret)" "$P11KM" ca add mockwrong --kind cmp \
		--url "http://127.0.0.1:$MP/pkix/" --secret-source "file:$T/wrong" --ref client1 \
		--config-dir "$CFG"
	bad "mock: the wrong secret" 5 "not protected as expected" --ca mockwrong
	mock_with -rsp_cert "$T/otherkey.pem"
	bad "mock: a certificate for another key" 5 "does not accept" --ca mock
	mock_with -rsp_cert "$T/fixed.pem" -pkistatus 2 -failurebits 516 -statusstring no-way
	bad "mock: a rejection" 1 "PKIStatus rejection, failInfo badRequest,badPOP: no-way" --ca mock
	mock_with -rsp_cert "$T/fixed.pem" -send_unprotected
	bad "mock: an unprotected answer" 5 "not protected as expected" --ca mock
}

run_tests
