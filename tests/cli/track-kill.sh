#!/bin/bash
# renew --rekey always, killed with SIGKILL at every step (P11KM_TEST_KILL_AT,
# op-renew.h): each next run resumes from the step recorded, and at the end
# the token holds one new key pair and one new certificate, the old ones
# retired, nothing pending, the binding on the new key; the file CA saw one
# request.  Judges: pkcs11-tool (objects), openssl (keys, requests).
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/bind.sh"

setup() {
	need python3
	track_setup
	openssl pkey -pubin -in "$T/web1.pub.pem" -outform DER -out "$T/old.pub.der"
	check "emit a binding" "$P11KM" bind emit nginx --key "$TOKEN;object=web1;type=private" \
		--listen "127.0.0.1:$(free_port)" --server-name web1.test --out-dir "$T/b1" \
		--pin-file "$T/web.pin" --pin-source "file:$PIN"
	printf '#!/bin/sh\necho reload >> "%s/reload.log"\n' "$T" > "$T/reload" && chmod +x "$T/reload"
	check "track add --rekey always" "$P11KM" track add "$TOKEN;object=web1;type=cert" \
		--state-dir "$S" --pin-source "file:$PIN" --ca "file:$CA" --ca-file "$T/ca/root.pem" \
		--rekey always --bind "$T/b1" --reload "$T/reload"
}

renew() { "$P11KM" renew --all --state-dir "$S"; }
killed_at() { P11KM_TEST_KILL_AT=$1 "$P11KM" renew --all --state-dir "$S"; }
step_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"]["step"])' "$S/track/$1.json"; }
step() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"]["step"])' "$S/track/web1.json"; }
pending() { pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label bind --login --pin "$USERPIN" -O 2>/dev/null | grep -c "label: *web1.pending"; }

# killed at each step up to 'waiting': each next run resumes
test_killed_before_reply() {
	for p in signed requested waiting; do
		check_fails "killed at '$p'" 137 killed_at "$p"
	done
	check_eq "recorded: waiting" "$(step)" waiting
	check "the next run: still waiting for the reply" renew
	check_grep "waiting" '^web1: waiting' "$T/out"
	check "the request verifies" openssl req -in "$CA/web1.csr" -verify -noout
	openssl req -in "$CA/web1.csr" -pubkey -noout | openssl pkey -pubin -outform DER -out "$T/req.pub.der"
	check "the request carries a new key" sh -c "! cmp -s '$T/req.pub.der' '$T/old.pub.der'"
	check_eq "one pending key pair (the killed request's key was reused)" "$(pending)" 2
}

# the CA answers; killed at each later step: the last run finishes on the new key
test_killed_after_reply() {
	printf 'subjectAltName=DNS:web1.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$T/ext.cnf"
	check "the CA answers" openssl x509 -req -in "$CA/web1.csr" -CA "$T/ca/root.pem" -CAkey "$T/ca/root.key" \
		-set_serial 1002 -days 90 -extfile "$T/ext.cnf" -out "$CA/web1.crt"
	for p in stored issued install-done installed reloaded; do
		check_fails "killed at '$p'" 137 killed_at "$p"
	done
	check "the last run finishes" renew
	check_grep "renewed" '^web1: renewed \(serial 03EA' "$T/out"
	check_eq "recorded: idle" "$(step)" idle
	pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label bind --login --pin "$USERPIN" -O > "$T/objs" 2>/dev/null
	check_eq "one certificate with the new serial" "$(grep -c '^ *serial: *03EA' "$T/objs")" 1
	check_eq "no pending objects left" "$(grep -c 'label: *web1.pending' "$T/objs")" 0
	check_eq "one private key labelled web1" "$(grep -A1 '^Private Key Object' "$T/objs" | grep -c 'label: *web1$')" 1
	check_eq "the old pair and certificate retired" "$(grep -c 'label: *web1.retired-' "$T/objs")" 3
	p11tool_sm --token-label bind --read-object --type cert --label web1 -o "$T/now.der" >/dev/null 2>&1
	openssl x509 -inform DER -in "$T/now.der" -pubkey -noout | openssl pkey -pubin -outform DER -out "$T/now.pub.der"
	check "the token's web1 certificate is for the new key" cmp "$T/now.pub.der" "$T/req.pub.der"
	check "bind check passes: the binding is on the new key and certificate" "$P11KM" bind check "$T/b1"
	G=$(openssl x509 -inform DER -in "$T/now.der" | sha256sum | cut -c1-16)
	check_grep "the binding names the new certificate" "fullchain-$G.pem" "$T/b1/nginx-server.conf"
	check "the reload ran" test -s "$T/reload.log"
	check "the reply and the request left the CA directory" test ! -e "$CA/web1.crt" -a ! -e "$CA/web1.csr"
	check "the next run: not due" renew
	check_grep "not due" '^web1: not due' "$T/out"
}

# a CA that does not answer: failed, backoff, the request kept
test_ca_silent() {
	make_key web2 02 EC:prime256v1
	issue_token web2 02 web2.test 2001 2
	put_cert web2 02 "$T/web2-2001.der"
	check "an ACME profile whose CA is down" "$P11KM" ca add down --kind acme --agree-tos \
		--directory "https://127.0.0.1:$(free_port)/dir" --ca-file "$T/ca/root.pem" --config-dir "$T/cfg"
	check "track web2 with it" "$P11KM" track add "$TOKEN;object=web2;type=cert" --state-dir "$S" \
		--pin-source "file:$PIN" --ca down
	check_fails "renew: the CA is down, exit 1" 1 "$P11KM" --json renew web2 --state-dir "$S" \
		--config-dir "$T/cfg"
	cp "$T/out" "$T/down.json"
	check "failed, with the reason and the next attempt" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))[0]
assert d["result"] == "failed" and "the CA did not issue" in d["reason"] and d["next_attempt"], d' \
		"$T/down.json"
	check_eq "the request is kept for the next attempt" "$(step_of web2)" requested
	cp "$S/track/web2.d/request.pem" "$T/req1.pem"
	check_fails "renew at once: backing off (no second attempt), exit 1" 1 "$P11KM" renew web2 \
		--state-dir "$S" --config-dir "$T/cfg"
	check_grep "it says when" 'next attempt 20' "$T/out"
	check_eq "attempts: 1" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"]["attempts"])' "$S/track/web2.json")" 1
	check_fails "renew --force: tried again, exit 1" 1 "$P11KM" --force renew web2 --state-dir "$S" \
		--config-dir "$T/cfg"
	check "the same request was submitted again (not a new one)" cmp "$S/track/web2.d/request.pem" "$T/req1.pem"
	check_eq "attempts: 2 (the backoff doubles)" "$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["state"]; print(d["attempts"], d["next_attempt"] - d["last_run"])' "$S/track/web2.json")" "2 600"
}

run_tests
