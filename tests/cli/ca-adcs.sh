#!/bin/sh
# req submit / ca roots against AD CS web enrollment (--kind adcs).  No AD CS
# runs on Debian: the CA is tests/tools/certsrv.py, a stand-in on 127.0.0.1
# that implements the documented certfnsh.asp form and the certnew.cer /
# certnew.p7b downloads with HTTP Basic authentication and issues with the
# openssl CLI.  Issued at once and installed on SoftHSM2; held as pending and
# polled; and every bad answer (a denial page, an HTTP error page, a wrong
# content type, a certificate for another key, a truncated chain, a redirect
# to another host, a CA that never answers, wrong credentials) one line that
# changes nothing.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/serve.sh"
. "$top_srcdir/tests/lib/certs.sh"
. "$top_srcdir/tests/lib/certsrv.sh"

# --- the stand-in, its TLS certificate and its issuing CA -----------------------
setup() {
	need openssl pkcs11-tool python3 nginx
	certsrv_token adcs
	certsrv_setup ca-adcs.sh
	pw=$CERTSRV_PW
	pin_file adcs-badpw 'wrong' >/dev/null
	check "the certsrv stand-in starts" start_server "$T/certsrv.srv" 1 start_certsrv
	P=$PORT
	CERTSRV_PORT=$PORT
	U="https://127.0.0.1:$P"

	check "key generate web" "$P11KM" key generate "$TOK" --type ec:p256 --label web --pin-source "file:$PIN"
	check "req new web" "$P11KM" req new "$TOK;object=web;type=private" --subject "CN=web.corp.test" \
		--san DNS:web.corp.test -o "$T/web.csr" --pin-source "file:$PIN"
	check "req new web2" "$P11KM" req new "$TOK;object=web;type=private" --subject "CN=web2.corp.test" \
		-o "$T/web2.csr" --pin-source "file:$PIN"
}

# --- profiles ---------------------------------------------------------------
test_profiles() {
	check_fails "an http:// URL without --insecure-http: exit 2" 2 "$P11KM" ca add x --kind adcs \
		--url "http://127.0.0.1:$P/ok/certsrv" --template WebServer --config-dir "$CFG"
	check_one_line_error "... one line naming the risk" "in the clear.*--insecure-http"
	check_fails "no --template: exit 2" 2 "$P11KM" ca add x --kind adcs --url "$U/ok/certsrv" \
		--ca-file "$T/tls/root.pem" --config-dir "$CFG"
	check_fails "--auth basic without --user: exit 2" 2 "$P11KM" ca add x --kind adcs --url "$U/ok/certsrv" \
		--ca-file "$T/tls/root.pem" --template WebServer --auth basic --password-source "file:$pw" --config-dir "$CFG"
	check_fails "a password source a profile cannot keep (prompt): exit 2" 2 "$P11KM" ca add x --kind adcs \
		--url "$U/ok/certsrv" --ca-file "$T/tls/root.pem" --template WebServer --auth basic --user u \
		--password-source prompt --config-dir "$CFG"
	check_fails "https without --ca-file: exit 2" 2 "$P11KM" ca add x --kind adcs --url "$U/ok/certsrv" \
		--template WebServer --config-dir "$CFG"
	[ ! -e "$CFG" ] && ok "refused profiles wrote nothing" || not_ok "refused profiles wrote $CFG"
	check "ca add --insecure-http warns" "$P11KM" ca add plain --kind adcs --url "http://127.0.0.1:1/certsrv" \
		--template WebServer --insecure-http --config-dir "$CFG"
	check_grep "... about credentials in the clear" "plain HTTP" "$T/err"
	check "ca add corp (basic auth, password from a file)" certsrv_add corp ok
	check_nogrep "the profile holds no password" "S3cret" "$CFG/corp.json"
	check_grep "... but the reference to it" "\"password_source\": \"file:$pw\"" "$CFG/corp.json"
}

# --- roots, then issued at once and installed ----------------------------------
test_roots_install() {
	check "ca roots corp (certnew.cer?ReqID=CACert)" "$P11KM" ca roots corp -o "$T/corp-root.pem" --config-dir "$CFG"
	check_eq "it is the CA's certificate" "$(openssl x509 -in "$T/corp-root.pem" -noout -fingerprint -sha256 2>&1)" \
		"$(openssl x509 -in "$T/ca/ca.pem" -noout -fingerprint -sha256)"
	check "ca roots corp --to token: (trusted on the token)" "$P11KM" ca roots corp --to "token:$TOK" \
		--pin-source "file:$PIN" --so-pin-source "file:$T/sopin-adcs" --config-dir "$CFG"
	check "req submit --install" submit "$T/web.csr" "$TOK;object=web;type=private" --ca corp --install \
		-o "$T/web-chain.pem" --pin-source "file:$PIN"
	check_grep "the form carried the template" "CertAttrib', 'CertificateTemplate:WebServer'" "$T/certsrv.log"
	check_grep "... and Mode=newreq" "'Mode', 'newreq'" "$T/certsrv.log"
	check "openssl verifies the chain" openssl verify -CAfile "$T/ca/ca.pem" "$T/web-chain.pem"
	check_token_cert "the token holds the issued certificate next to its key (pkcs11-tool)" web \
		"$T/web-chain.pem"
	openssl x509 -in "$T/web-chain.pem" -outform DER -out "$T/web-leaf.der"
	# served: nginx with the binding of what the stand-in issued
	nginx_serves adcs "$TOK;object=web;type=private" "$TOK;object=web;type=cert" "$T/ca/ca.pem"
}

# --- renewal as AD CS wants it: a CMS SignedData by the old key (MS-WCCE) ---------
test_ms_renewal() {
	check_fails "req renew --format bogus: exit 2" 2 "$P11KM" req renew "$TOK;object=web;type=cert" \
		--format bogus -o "$T/x.p7" --pin-source "file:$PIN"
	check "req renew --format ms-renewal" "$P11KM" --json req renew "$TOK;object=web;type=cert" \
		--format ms-renewal -o "$T/renew.p7" --pin-source "file:$PIN"
	check_eq "--json says the format" "$(json_get "$T/out" 'd["format"]')" "ms-renewal"
	check_grep "it is PEM PKCS7" "^-----BEGIN PKCS7-----" "$T/renew.p7"
	check "openssl cms -verify: signed by the old certificate, which the CA issued" openssl cms -verify \
		-inform PEM -in "$T/renew.p7" -CAfile "$T/ca/ca.pem" -purpose any -binary -out "$T/renew-inner.der"
	check "the signed content is a PKCS#10 whose signature verifies" openssl req -inform DER \
		-in "$T/renew-inner.der" -noout -verify
	check_eq "... for the old certificate's subject" \
		"$(openssl req -inform DER -in "$T/renew-inner.der" -noout -subject)" "subject=CN = web.corp.test"
	openssl asn1parse -inform PEM -in "$T/renew.p7" > "$T/renew.asn1"
	check_grep "openssl asn1parse: the szOID_RENEWAL_CERTIFICATE attribute" \
		"OBJECT +:1\.3\.6\.1\.4\.1\.311\.13\.1$" "$T/renew.asn1"
	check_grep "... among the signed attributes (content type, message digest)" ":messageDigest" "$T/renew.asn1"
	openssl pkcs7 -inform PEM -in "$T/renew.p7" -outform DER -out "$T/renew.der"
	python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); c=open(sys.argv[2],"rb").read(); sys.exit(0 if d.count(c) == 2 else 1)' \
		"$T/renew.der" "$T/web-leaf.der" && ok "the old certificate is in the certificates and in the attribute" ||
		not_ok "the old certificate is not twice in the SignedData"
	check "req renew --rekey --format ms-renewal" "$P11KM" req renew "$TOK;object=web;type=cert" --rekey \
		--format ms-renewal --der -o "$T/rekey.p7" --pin-source "file:$PIN"
	check "openssl cms -verify (DER): still signed by the old certificate" openssl cms -verify \
		-inform DER -in "$T/rekey.p7" -CAfile "$T/ca/ca.pem" -purpose any -binary -out "$T/rekey-inner.der"
	openssl req -inform DER -in "$T/rekey-inner.der" -pubkey -noout > "$T/rekey-pub.pem" 2>/dev/null
	openssl x509 -in "$T/web-chain.pem" -pubkey -noout > "$T/old-pub.pem"
	if [ -s "$T/rekey-pub.pem" ] && ! cmp -s "$T/rekey-pub.pem" "$T/old-pub.pem"; then
		ok "... around a request for the new key"; else not_ok "the rekey renewal's request is not for a new key"; fi
	"$P11KM" ca add lhelper --kind helper --command /bin/true --config-dir "$CFG" >/dev/null
	check_fails "an MS renewal to a CA that is not AD CS: exit 2" 2 submit "$T/renew.p7" --ca lhelper -o "$T/x.pem"
	check_one_line_error "... one line" "only AD CS takes"
	check "req submit the MS renewal --install" submit "$T/renew.p7" "$TOK;object=web;type=private" \
		--ca corp --install -o "$T/renewed.pem" --pin-source "file:$PIN"
	check "the stand-in unwrapped a CMS (openssl cms -verify there too)" ls "$T"/ca/req-*.cms
	check "openssl verifies the renewed certificate" openssl verify -CAfile "$T/ca/ca.pem" "$T/renewed.pem"
	check_token_cert "the token holds the renewed certificate under the key's label" web "$T/renewed.pem"
}

# --- pending: kept, polled, issued ------------------------------------------------
test_pending() {
	check "ca add held (the CA holds requests for approval)" certsrv_add held pending
	check_fails "req submit: pending (exit 1)" 1 submit "$T/web2.csr" --ca held -o "$T/held.pem"
	check_one_line_error "... one line that says how to go on" "pending.*--poll"
	PF=$(ls "$ST"/pending/held-*.json)
	RID=$(json_get "$PF" 'd["cookie"]')
	case $RID in *[!0-9]*|"") not_ok "the cookie is the request id: '$RID'";; *) ok "the cookie is the request id ($RID)";; esac
	check_fails "--poll: still pending (exit 1)" 1 submit "$T/web2.csr" --ca held --poll -o "$T/held.pem"
	[ ! -e "$T/held.pem" ] && ok "nothing written while pending" || not_ok "a chain was written"
	touch "$T/ca/approve-$RID"
	check "--poll after the approval: issued" submit "$T/web2.csr" --ca held --poll -o "$T/held.pem"
	check "openssl verifies it" openssl verify -CAfile "$T/ca/ca.pem" "$T/held.pem"
	check_eq "the pending file is gone" "$(ls "$ST/pending" | wc -l)" "0"
}

# --- plain HTTP: only with --insecure-http, warned about at every use -------------
start_plain() { python3 "$top_srcdir/tests/tools/certsrv.py" "$1" - - "$T/ca" 'CORP\svc-web' "$pw" \
	> "$T/plain.log" 2>&1 & SERVER_PID=$!; cleanup_add "kill $SERVER_PID"; }
test_plain_http() {
	check "a plain-HTTP stand-in starts" start_server "$T/plain.srv" 1 start_plain
	check "ca add plainok --insecure-http" "$P11KM" ca add plainok --kind adcs \
		--url "http://127.0.0.1:$PORT/ok/certsrv" --template WebServer --insecure-http --auth basic \
		--user 'CORP\svc-web' --password-source "file:$pw" --config-dir "$CFG"
	check "req submit over plain HTTP" submit "$T/web2.csr" --ca plainok -o "$T/plain-chain.pem"
	check_grep "... warned about" "plain HTTP.*credentials" "$T/err"
	check "... and issued" openssl verify -CAfile "$T/ca/ca.pem" "$T/plain-chain.pem"
	sed 's/"insecure_http": true/"insecure_http": false/' "$CFG/plainok.json" > "$CFG/plainno.json"
	check_fails "a profile whose http URL lost insecure_http is refused: exit 2" 2 submit "$T/web2.csr" \
		--ca plainno -o "$T/plainno.pem"
	check_one_line_error "... one line" "not an https URL"
}

# --- NTLM through libcurl: the stand-in checks the NTLMv2 response ----------------
ntlm_add() { "$P11KM" ca add "$1" --kind adcs --url "https://127.0.0.1:$CERTSRV_PORT/ntlm-ok/certsrv" \
	--template WebServer --ca-file "$T/tls/root.pem" --auth ntlm --user "$CERTSRV_USER" \
	--password-source "file:$2" --timeout 2 --config-dir "$CFG"; }
test_ntlm() {
	check "ca add corpntlm (--auth ntlm)" ntlm_add corpntlm "$CERTSRV_PW"
	check "req submit through NTLM" submit "$T/web.csr" --ca corpntlm -o "$T/ntlm.pem"
	check "... the chain verifies" openssl verify -CAfile "$T/ca/ca.pem" "$T/ntlm.pem"
	check_grep "... the stand-in checked an NTLMv2 response for CORP\\svc-web" 'NTLMv2 user CORP\\svc-web' \
		"$T/certsrv.log"
	check "ca add ntlmbad (--auth ntlm, a wrong password)" ntlm_add ntlmbad "$T/adcs-badpw"
	check_fails "a wrong NTLM password: exit 3" 3 submit "$T/web.csr" --ca ntlmbad -o "$T/ntlmbad.pem"
	check_one_line_error "... one line" "refused the ntlm credentials"
	[ ! -e "$T/ntlmbad.pem" ] && ok "... no chain written" || not_ok "... a chain was written"
}

# --- bad answers: one line each, nothing written, the token unchanged ----------------
test_bad_answers() {
	for m in denied error wrong-ctype otherkey truncated redirect hang; do certsrv_add "b-$m" "$m" >/dev/null; done
	certsrv_add badpw ok --force >/dev/null
	sed -i "s|$pw|$T/adcs-badpw|" "$CFG/badpw.json"
	before=$(tokcerts)
	for c in "b-denied 1 denied the request: .*Denied by Policy Module" "b-error 1 answered HTTP 500" \
		"b-wrong-ctype 2 text/plain" "b-otherkey 5 no certificate for the request's key" \
		"b-truncated 2 ." "b-redirect 2 redirect" "b-hang 1 did not answer within 2 s" \
		"badpw 3 refused the basic credentials"; do
		set -- $c
		n=$1 want=$2
		shift 2
		check_fails "$n: refused" "$want" submit "$T/web.csr" "$TOK;object=web;type=private" --ca "$n" \
			--install -o "$T/$n.pem" --pin-source "file:$PIN"
		check_one_line_error "$n: one line" "$*"
		[ ! -e "$T/$n.pem" ] && ok "$n: no chain written" || not_ok "$n: a chain was written"
	done
	check_eq "the token's certificates are unchanged" "$(tokcerts)" "$before"
	check_eq "no pending state for a refusal" "$(ls "$ST/pending" | wc -l)" "0"
}

run_tests
