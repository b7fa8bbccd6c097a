#!/bin/sh
# req submit / ca roots through certmonger CA helpers (--kind helper): a
# helper script for every exit status of certmonger's helper protocol
# (0 issued, 1 wait + cookie, 2 rejected, 3 unreachable, 4 underconfigured,
# 5 wait + delay, 6 unsupported, others), the pending state kept across runs
# and resumed with --poll, and certmonger's own local-submit issuing from the
# CA it makes in CERTMONGER_LOCAL_CA_DIR, the reply installed on SoftHSM2 and
# judged by openssl and pkcs11-tool.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/serve.sh"

# helper NAME EXIT OUTPUT: a helper that records its environment and answers
helper() {
	printf '#!/bin/sh\nenv > "%s/h/%s.env"\nprintf "%s"\nexit %s\n' "$T" "$1" "$3" "$2" > "$T/h/$1"
	chmod 755 "$T/h/$1"
	"$P11KM" ca add "$1" --kind helper --command "$T/h/$1" --config-dir "$CFG" >/dev/null
}
submit() { "$P11KM" req submit "$@" --config-dir "$CFG" --state-dir "$ST"; }

setup() {
	LOCAL_SUBMIT=/usr/lib/certmonger/local-submit
	[ -x "$LOCAL_SUBMIT" ] || skip_all "certmonger's local-submit is not installed"
	need openssl pkcs11-tool python3 nginx
	softhsm_setup
	new_token hlp
	PIN=$T/pin-hlp
	TOK="pkcs11:token=hlp"
	CFG=$T/ca.d
	ST=$T/state
	export P11KM_CONFIG_DIR="$T/not-used" P11KM_STATE_DIR="$T/not-used-state"
	mkdir -p "$T/lca" "$T/h"
	CERTMONGER_LOCAL_CA_DIR=$T/lca
	export CERTMONGER_LOCAL_CA_DIR

	check "key generate web" "$P11KM" key generate "$TOK" --type ec:p256 --label web --pin-source "file:$PIN"
	check "req new web" "$P11KM" req new "$TOK;object=web;type=private" --subject "CN=web.example.test" \
		-o "$T/web.csr" --pin-source "file:$PIN"
	check "req new web2 (a second request for the same key)" "$P11KM" req new \
		"$TOK;object=web;type=private" --subject "CN=web2.example.test" -o "$T/web2.csr" --pin-source "file:$PIN"
}

# profiles
test_profiles() {
	check_fails "ca add --kind helper without --command: exit 2" 2 "$P11KM" ca add x --kind helper \
		--config-dir "$CFG"
	check_fails "ca add --kind helper with a command that is not there: exit 2" 2 "$P11KM" ca add x \
		--kind helper --command "$T/h/none" --config-dir "$CFG"
	check_fails "arguments after NAME belong to a helper only: exit 2" 2 "$P11KM" ca add x --kind acme \
		--directory https://127.0.0.1:1/d --ca-file "$T/web.csr" --config-dir "$CFG" extra
	[ ! -e "$CFG" ] && ok "refused profiles wrote nothing" || not_ok "refused profiles wrote $CFG"
	check "ca add lcl (local-submit, with arguments after --)" "$P11KM" ca add lcl --kind helper \
		--command "$LOCAL_SUBMIT" --template WebServer --config-dir "$CFG" -- -v
	check "ca show --json lcl" "$P11KM" --json ca show lcl --config-dir "$CFG"
	check_eq "the profile keeps the command and its arguments" \
		"$(json_get "$T/out" '" ".join(d["command"])')" "$LOCAL_SUBMIT -v"
	check "ca list" "$P11KM" ca list --config-dir "$CFG"
	check_grep "ca list names lcl with its helper" "^lcl +helper +$LOCAL_SUBMIT" "$T/out"
}

# exit 0: certmonger's local-submit issues; installed on the token
test_local_submit() {
	check "ca roots lcl (FETCH-ROOTS)" "$P11KM" ca roots lcl -o "$T/lca-root.pem" --config-dir "$CFG"
	check_grep "the root is local-submit's own CA" "BEGIN CERTIFICATE" "$T/lca-root.pem"
	check "req submit --install through local-submit" "$P11KM" --json req submit \
		"$T/web.csr" "$TOK;object=web;type=private" --ca lcl --install -o "$T/web-chain.pem" \
		--verify-ca-file "$T/lca-root.pem" --pin-source "file:$PIN" --config-dir "$CFG" --state-dir "$ST"
	check "openssl verifies the issued certificate against local-submit's root" openssl verify \
		-CAfile "$T/lca-root.pem" "$T/web-chain.pem"
	check_eq "it is for the request's subject" "$(openssl x509 -in "$T/web-chain.pem" -noout -subject)" \
		"subject=CN = web.example.test"
	pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label hlp --read-object --type cert --label web \
		-o "$T/web-token.der" >/dev/null 2>&1
	openssl x509 -in "$T/web-chain.pem" -outform DER -out "$T/web-leaf.der"
	check "the token holds it next to its key (pkcs11-tool)" cmp "$T/web-token.der" "$T/web-leaf.der"
	# served: nginx with the binding of what local-submit issued
	nginx_serves local-submit "$TOK;object=web;type=private" "$TOK;object=web;type=cert" "$T/lca-root.pem"
	check "ca roots lcl --to pem-bundle:" "$P11KM" ca roots lcl --to "pem-bundle:$T/bundle.pem" \
		--config-dir "$CFG"
	check_eq "the bundle holds local-submit's root" \
		"$(openssl x509 -in "$T/bundle.pem" -noout -fingerprint -sha256 2>&1)" \
		"$(openssl x509 -in "$T/lca-root.pem" -noout -fingerprint -sha256)"
}

# the environment a helper gets
test_helper_environment() {
	printf '#!/bin/sh\nenv > "%s/h/envdump.env"\nexec %s\n' "$T" "$LOCAL_SUBMIT" > "$T/h/envdump"
	chmod 755 "$T/h/envdump"
	check "ca add envdump" "$P11KM" ca add envdump --kind helper --command "$T/h/envdump" \
		--template Prof1 --config-dir "$CFG"
	check "req submit --install with an env: PIN source through a helper" env P11KM_TEST_PIN=1234 \
		CERTMONGER_CA_COOKIE=stale-from-the-caller CERTMONGER_OPERATION=POLL \
		"$P11KM" req submit "$T/web2.csr" "$TOK;object=web;type=private" --ca envdump --install \
		--verify-ca-file "$T/lca-root.pem" --old-cert "$T/web-chain.pem" --pin-source env:P11KM_TEST_PIN \
		--config-dir "$CFG" --state-dir "$ST"
	check_nogrep "the PIN variable never reaches the helper" "P11KM_TEST_PIN" "$T/h/envdump.env"
	check_grep "CERTMONGER_OPERATION=SUBMIT" "^CERTMONGER_OPERATION=SUBMIT$" "$T/h/envdump.env"
	check_grep "CERTMONGER_CA_PROFILE from --template" "^CERTMONGER_CA_PROFILE=Prof1$" "$T/h/envdump.env"
	openssl req -in "$T/web2.csr" > "$T/web2.pem" 2>/dev/null
	python3 -c 'import os,sys
env=open(sys.argv[1]).read()
csr=open(sys.argv[2]).read().rstrip("\n")
sys.exit(0 if "CERTMONGER_CSR="+csr in env else 1)' "$T/h/envdump.env" "$T/web2.pem" &&
		ok "CERTMONGER_CSR is the request, PEM" || not_ok "CERTMONGER_CSR is not the request"
	python3 -c 'import sys
env=open(sys.argv[1]).read()
pem=open(sys.argv[2]).read().rstrip("\n")
sys.exit(0 if "CERTMONGER_CERTIFICATE="+pem in env else 1)' "$T/h/envdump.env" "$T/web-chain.pem" &&
		ok "CERTMONGER_CERTIFICATE is the --old-cert" || not_ok "CERTMONGER_CERTIFICATE is not the --old-cert"
	check_nogrep "no cookie on a SUBMIT (not even the caller's)" "^CERTMONGER_CA_COOKIE=" "$T/h/envdump.env"
}

# exit 1: wait with a cookie; the state is kept; --poll resumes
test_wait_cookie_poll() {
	cat > "$T/h/wait" <<-H
		#!/bin/sh
		echo "\$CERTMONGER_OPERATION \${CERTMONGER_CA_COOKIE:-}" >> "$T/h/wait.log"
		case "\$CERTMONGER_OPERATION" in
		SUBMIT) echo "cookie-42"; exit 1;;
		POLL) [ "\$CERTMONGER_CA_COOKIE" = cookie-42 ] || { echo "bad cookie"; exit 2; }
		      [ -e "$T/h/wait.approved" ] || { echo "cookie-42"; exit 1; }
		      CERTMONGER_OPERATION=SUBMIT exec $LOCAL_SUBMIT;;
		esac
		exit 6
	H
	chmod 755 "$T/h/wait"
	check "ca add wait" "$P11KM" ca add wait --kind helper --command "$T/h/wait" --config-dir "$CFG"
	check_fails "req submit: the CA holds the request (exit 1)" 1 submit "$T/web.csr" --ca wait \
		-o "$T/wait-chain.pem"
	check_one_line_error "... one line that says how to go on" "pending.*--poll"
	[ ! -e "$T/wait-chain.pem" ] && ok "no chain written while pending" || not_ok "a chain was written"
	ls "$ST"/pending/wait-*.json > "$T/pending.list" 2>/dev/null
	check_eq "one pending file for the request" "$(wc -l < "$T/pending.list")" "1"
	PF=$(cat "$T/pending.list")
	check_eq "the pending file is mode 0600" "$(stat -c %a "$PF")" "600"
	check_eq "it keeps the cookie" "$(json_get "$PF" 'd["cookie"]')" "cookie-42"
	check_fails "submitting the pending request again is refused (exit 1)" 1 submit "$T/web.csr" --ca wait \
		-o "$T/wait-chain.pem"
	check_one_line_error "... in one line naming --poll" "pending already.*--poll"
	check_fails "req submit --poll: still pending (exit 1)" 1 submit "$T/web.csr" --ca wait --poll \
		-o "$T/wait-chain.pem"
	check_eq "the pending file is still there" "$(ls "$ST"/pending/wait-*.json 2>/dev/null | wc -l)" "1"
	touch "$T/h/wait.approved"
	check "req submit --poll: issued now" submit "$T/web.csr" --ca wait --poll -o "$T/wait-chain.pem"
	check "the chain is local-submit's certificate" openssl verify -CAfile "$T/lca-root.pem" \
		"$T/wait-chain.pem"
	check_eq "the helper saw SUBMIT, then POLL with the cookie twice" \
		"$(tr '\n' '|' < "$T/h/wait.log")" "SUBMIT |POLL cookie-42|POLL cookie-42|"
	check_eq "the pending file is gone once issued" "$(ls "$ST"/pending/ 2>/dev/null | wc -l)" "0"
	check_fails "req submit --poll with nothing pending: exit 4" 4 submit "$T/web.csr" --ca wait --poll \
		-o "$T/wait-chain2.pem"
	check_one_line_error "... in one line" "no pending request"
}

# renew (track) resumes a pending request as req submit --poll does
test_renew_resumes_pending() {
	sed "s|wait.approved|wait2.approved|; s|wait.log|wait2.log|" "$T/h/wait" > "$T/h/wait2"
	chmod 755 "$T/h/wait2"
	check "ca add wait2" "$P11KM" ca add wait2 --kind helper --command "$T/h/wait2" --config-dir "$CFG"
	TS=$T/track
	check "track add the local-submit certificate, renewed through wait2" "$P11KM" track add \
		"$TOK;object=web;type=cert" --id web --ca wait2 --ca-file "$T/lca-root.pem" --renew-before 400 \
		--pin-source "file:$PIN" --state-dir "$TS"
	check "renew: the CA holds the request" "$P11KM" --json renew --all --config-dir "$CFG" --state-dir "$TS"
	check_grep "... reported as waiting" '"waiting"' "$T/out"
	check_eq "the pending state is kept under the state dir" "$(ls "$TS"/pending/wait2-*.json 2>/dev/null | wc -l)" "1"
	check "renew again: still pending" "$P11KM" renew --all --config-dir "$CFG" --state-dir "$TS"
	touch "$T/h/wait2.approved"
	check "renew after the approval: renewed" "$P11KM" --json renew --all --config-dir "$CFG" --state-dir "$TS"
	check_grep "... reported as renewed" '"renewed"' "$T/out"
	check_eq "the helper saw SUBMIT, then POLL with the cookie (never a second SUBMIT)" \
		"$(tr '\n' '|' < "$T/h/wait2.log")" "SUBMIT |POLL cookie-42|POLL cookie-42|"
	check_eq "the pending state is gone" "$(ls "$TS"/pending/ 2>/dev/null | wc -l)" "0"
	pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label hlp --read-object --type cert --label web \
		-o "$T/web-renewed.der" >/dev/null 2>&1
	if [ -s "$T/web-renewed.der" ] && ! cmp -s "$T/web-renewed.der" "$T/web-leaf.der"; then
		ok "the token holds the renewed certificate"; else not_ok "the token's certificate was not renewed"; fi
}

# exit 5: wait with a delay and a cookie
test_wait_delay() {
	helper delay 5 '30\ncookie-5\n'
	check_fails "exit 5: pending (exit 1)" 1 submit "$T/web.csr" --ca delay -o "$T/x.pem"
	check_one_line_error "... says when to ask again" "in 30 s"
	PF=$(ls "$ST"/pending/delay-*.json)
	check_eq "the delay is kept" "$(json_get "$PF" 'd["delay"]')" "30"
	check_eq "the cookie is kept" "$(json_get "$PF" 'd["cookie"]')" "cookie-5"
	helper baddelay 5 'soon\n'
	check_fails "exit 5 without a number of seconds: exit 2" 2 submit "$T/web.csr" --ca baddelay -o "$T/x.pem"
	check_one_line_error "... in one line" "without a delay"
}

# refusals: one line each, nothing written, nothing kept
test_refusals() {
	helper rej 2 'denied by policy: no such host\n'
	helper unreach 3 'connection refused\n'
	helper uncfg 4 'no CA URL configured\n'
	helper unsup 6 ''
	helper odd 9 'what?\n'
	helper nocookie 1 ''
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/other.key" \
		-subj /CN=other -x509 -days 1 -out "$T/other.pem" 2>/dev/null
	printf '#!/bin/sh\ncat "%s"\n' "$T/other.pem" > "$T/h/otherkey"
	chmod 755 "$T/h/otherkey"
	"$P11KM" ca add otherkey --kind helper --command "$T/h/otherkey" --config-dir "$CFG" >/dev/null
	printf '#!/bin/sh\nhead -c 300 "%s"\n' "$T/web-chain.pem" > "$T/h/trunc"
	chmod 755 "$T/h/trunc"
	"$P11KM" ca add trunc --kind helper --command "$T/h/trunc" --config-dir "$CFG" >/dev/null
	printf '#!/bin/sh\nexec sleep 30\n' > "$T/h/hang"
	chmod 755 "$T/h/hang"
	"$P11KM" ca add hang --kind helper --command "$T/h/hang" --timeout 1 --config-dir "$CFG" >/dev/null
	certs_before=$(pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label hlp --list-objects --type cert 2>/dev/null | grep -c label)
	for c in "rej 1 rejected the request: denied by policy" "unreach 1 could not be reached.*try again" \
		"uncfg 1 not configured.*no CA URL" "unsup 1 does not support SUBMIT" \
		"odd 1 exited 9" "nocookie 2 without a cookie" "otherkey 5 no certificate for the request's key" \
		"trunc 2 ." "hang 1 did not finish in time"; do
		set -- $c
		n=$1 want=$2
		shift 2
		check_fails "helper $n: refused" "$want" submit "$T/web.csr" "$TOK;object=web;type=private" \
			--ca "$n" --install -o "$T/$n.pem" --pin-source "file:$PIN"
		check_one_line_error "helper $n: one line" "$*"
		[ ! -e "$T/$n.pem" ] && ok "helper $n: no chain written" || not_ok "helper $n: a chain was written"
	done
	check_eq "no pending state for a refusal" "$(ls "$ST"/pending/ | grep -cv '^delay-\|^baddelay-')" "0"
	check_eq "the token's certificates are unchanged" \
		"$(pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label hlp --list-objects --type cert 2>/dev/null | grep -c label)" \
		"$certs_before"
	check_fails "ca roots with a helper that cannot FETCH-ROOTS (exit 6): exit 1" 1 "$P11KM" ca roots \
		unsup --config-dir "$CFG"
	check_one_line_error "... in one line" "does not support FETCH-ROOTS"
	check_fails "--old-cert to a CA that is not a helper: exit 2" 2 env P11KM_CONFIG_DIR="$T/adcs.d" sh -c \
		"'$P11KM' ca add c --kind adcs --url https://127.0.0.1:1/certsrv --template W --ca-file '$T/lca-root.pem' >/dev/null &&
	 '$P11KM' req submit '$T/web.csr' --ca c --old-cert '$T/web-chain.pem' --state-dir '$ST'"
	check_one_line_error "... one line" "goes to a CMP CA .*certmonger helper"
	check_fails "--poll on an ACME profile: exit 2" 2 env P11KM_CONFIG_DIR="$T/acme.d" sh -c \
		"'$P11KM' ca add a --kind acme --directory https://127.0.0.1:1/d --ca-file '$T/lca-root.pem' >/dev/null &&
	 '$P11KM' req submit '$T/web.csr' --ca a --poll --state-dir '$ST'"
}

run_tests
