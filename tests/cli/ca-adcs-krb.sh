#!/bin/sh
# req submit / ca roots to AD CS web enrollment with --auth negotiate:
# Kerberos through SPNEGO, as a domain-joined server does.  A real MIT KDC
# (tests/lib/krb.sh: krb5kdc -n on 127.0.0.1, two realms) and the certsrv
# stand-in (tests/tools/certsrv.py under /krb-MODE/), which answers 401
# "WWW-Authenticate: Negotiate" and accepts the client's token with
# python3-gssapi against the keytab of HTTP/127.0.0.1@CORP.TEST.  With
# alice's ticket the certificate is issued and installed on SoftHSM2
# (pkcs11-tool and openssl judge); without a ticket, with a ticket of a
# realm that has no way to CORP.TEST, and with a ticket the CA does not
# take, one line that says what to do (exit 3) and nothing written.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"
. "$top_srcdir/tests/lib/certsrv.sh"
. "$top_srcdir/tests/lib/krb.sh"

setup() {
	need openssl pkcs11-tool krb5kdc kdb5_util kadmin.local kinit klist kdestroy
	/usr/bin/python3 -c 'import gssapi' 2>/dev/null || skip_all "python3-gssapi not installed"
	certsrv_token krb
	check "the KDC's databases, principals and the service's keytab" krb_setup &&
	check "krb5kdc -n on 127.0.0.1 (TCP)" start_server "$T/krb/kdc.log" 1 start_kdc &&
	certsrv_setup ca-adcs-krb.sh &&
	CERTSRV_KRBUSER=alice@CORP.TEST CERTSRV_ENV=$KRB_KTENV &&
	check "the certsrv stand-in starts (Negotiate against the keytab)" \
		start_server "$T/certsrv.srv" 1 start_certsrv &&
	CERTSRV_PORT=$PORT &&
	check "key generate web" "$P11KM" key generate "$TOK" --type ec:p256 --label web \
		--pin-source "file:$PIN" &&
	check "req new web" "$P11KM" req new "$TOK;object=web;type=private" \
		--subject "CN=web.corp.test" --san DNS:web.corp.test -o "$T/web.csr" --pin-source "file:$PIN"
}

# refused DESCRIPTION PATTERN: req submit --install fails with exit 3 in one
# line matching PATTERN; no chain, no certificate on the token, nothing pending.
refused() {
	check_fails "$1: refused" 3 submit "$T/web.csr" "$TOK;object=web;type=private" --ca corp \
		--install -o "$T/refused.pem" --pin-source "file:$PIN"
	check_one_line_error "$1: one line that says what to do" "$2"
	sed 's/^/# /' "$T/err"
	[ ! -e "$T/refused.pem" ] && ok "$1: no chain written" || not_ok "$1: a chain was written"
	check_eq "$1: the token's certificates are unchanged" "$(tokcerts)" "$before"
	check_eq "$1: no pending state" "$(ls "$ST/pending" 2>/dev/null | wc -l)" "0"
}

test_profile() {
	check_fails "ca add --auth negotiate with a password: exit 2" 2 "$P11KM" ca add x --kind adcs \
		--url "https://127.0.0.1:$CERTSRV_PORT/krb-ok/certsrv" --template WebServer \
		--ca-file "$T/tls/root.pem" --auth negotiate --user alice \
		--password-source "file:$KRB_PW_ALICE" --config-dir "$CFG"
	check_one_line_error "... one line: Kerberos takes a ticket" "negotiate takes the caller's Kerberos ticket"
	[ ! -e "$CFG/x.json" ] && ok "... no profile written" || not_ok "... a profile was written"
	check "ca add corp --auth negotiate (no user, no password)" "$P11KM" ca add corp --kind adcs \
		--url "https://127.0.0.1:$CERTSRV_PORT/krb-ok/certsrv" --template WebServer \
		--ca-file "$T/tls/root.pem" --auth negotiate --timeout 5 --config-dir "$CFG"
	check_grep "... the profile says negotiate" '"auth": "negotiate"' "$CFG/corp.json"
	before=$(tokcerts)
}

# a profile without --auth, or with another one, for a CA that asks for Negotiate
test_profile_auth_mismatch() {
	check "ca add noauth (no --auth)" "$P11KM" ca add noauth --kind adcs \
		--url "https://127.0.0.1:$CERTSRV_PORT/krb-ok/certsrv" --template WebServer \
		--ca-file "$T/tls/root.pem" --config-dir "$CFG"
	check_fails "no --auth: exit 3" 3 submit "$T/web.csr" --ca noauth -o "$T/refused.pem"
	check_one_line_error "... one line naming the --auth it asks for" \
		"asks for Negotiate authentication .*the profile has none: add the profile again with --force and --auth negotiate"
	sed 's/^/# /' "$T/err"
	check "ca add basic (--auth basic)" "$P11KM" ca add basic --kind adcs \
		--url "https://127.0.0.1:$CERTSRV_PORT/krb-ok/certsrv" --template WebServer \
		--ca-file "$T/tls/root.pem" --auth basic --user 'CORP\svc-web' \
		--password-source "file:$CERTSRV_PW" --config-dir "$CFG"
	check_fails "--auth basic where the CA asks for Negotiate: exit 3" 3 submit "$T/web.csr" \
		--ca basic -o "$T/refused.pem"
	check_one_line_error "... one line" "asks for Negotiate authentication, not the profile's basic.*--auth negotiate"
	sed 's/^/# /' "$T/err"
	[ ! -e "$T/refused.pem" ] && ok "... no chain written" || not_ok "... a chain was written"
}

test_no_ticket() {
	check_fails "klist: no ticket yet" 1 klist
	refused "no ticket" "no Kerberos ticket \(credentials cache FILE:$T/krb/cc\): run kinit"
	check_grep "the stand-in asked for Negotiate (401)" \
		'"POST /krb-ok/certsrv/certfnsh.asp HTTP/1.1" 401' "$T/certsrv.log"
	check_fails "ca roots without a ticket: exit 3 too" 3 "$P11KM" ca roots corp \
		-o "$T/roots-none.pem" --config-dir "$CFG"
	check_one_line_error "... one line" "no Kerberos ticket.*run kinit"
	[ ! -e "$T/roots-none.pem" ] && ok "... nothing written" || not_ok "... roots were written"
}

# OTHER.TEST has no trust to CORP.TEST: no ticket for HTTP/127.0.0.1 from there
test_other_realm() {
	check "kinit bob@OTHER.TEST (the password on stdin)" krb_kinit bob@OTHER.TEST "$KRB_PW_BOB"
	refused "a ticket of another realm" \
		"no ticket for its web server could be had: .*krbtgt/CORP.TEST@OTHER.TEST.*run kinit as a user of the CA's realm"
	check_grep "... the KDC was asked (and had no way to CORP.TEST)" \
		"bob@OTHER.TEST for krbtgt/CORP.TEST@OTHER.TEST" "$T/krb/kdc.log"
	kdestroy >/dev/null 2>&1
}

# a ticket of the CA's realm that the CA does not let in
test_refused_user() {
	check "kinit carol@CORP.TEST" krb_kinit carol "$KRB_PW_CAROL"
	refused "a ticket the CA refuses" "refused the Kerberos \(Negotiate\) ticket \(HTTP 401\).*klist"
	check_grep "... the stand-in checked carol's token" \
		"Negotiate user carol@CORP.TEST is not alice@CORP.TEST" "$T/certsrv.log"
	kdestroy >/dev/null 2>&1
}

test_issued() {
	check "kinit alice@CORP.TEST" krb_kinit alice "$KRB_PW_ALICE"
	check "ca roots corp through Negotiate" "$P11KM" ca roots corp -o "$T/corp-root.pem" --config-dir "$CFG"
	check_eq "... it is the CA's certificate" \
		"$(openssl x509 -in "$T/corp-root.pem" -noout -fingerprint -sha256 2>&1)" \
		"$(openssl x509 -in "$T/ca/ca.pem" -noout -fingerprint -sha256)"
	check "ca roots corp --to token: (trusted on the token)" "$P11KM" ca roots corp --to "token:$TOK" \
		--pin-source "file:$PIN" --so-pin-source "file:$T/sopin-krb" --config-dir "$CFG"
	check "req submit --install through Negotiate" submit "$T/web.csr" "$TOK;object=web;type=private" \
		--ca corp --install -o "$T/web-chain.pem" --pin-source "file:$PIN"
	check_grep "the stand-in accepted alice's Kerberos token (python3-gssapi, the keytab)" \
		"Negotiate \(Kerberos\) user alice@CORP.TEST" "$T/certsrv.log"
	check_grep "the KDC issued the ticket for HTTP/127.0.0.1" \
		"alice@CORP.TEST for HTTP/127.0.0.1@CORP.TEST" "$T/krb/kdc.log"
	klist > "$T/klist" 2>&1
	check_grep "klist: the service ticket is in the test's cache" "HTTP/127.0.0.1@CORP.TEST" "$T/klist"
	check "openssl verifies the chain" openssl verify -CAfile "$T/ca/ca.pem" "$T/web-chain.pem"
	check_token_cert "the token holds the issued certificate next to its key (pkcs11-tool)" web \
		"$T/web-chain.pem"
}

run_tests
