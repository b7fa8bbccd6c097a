#!/bin/bash
# renew end to end through ACME: a two-day certificate from a local CA (openssl
# signs the token-made request) is tracked with --ca an ACME profile (pebble,
# real http-01 validation through the nginx that serves the site, --webroot),
# an nginx binding, a reload command (argv) and a verify.  'renew --all'
# renews it through pebble, nginx is reloaded and serves the new serial,
# 'status --probe' shows it, the old certificate is retired.  Judges: bind
# verify and openssl s_client against pebble's root, pkcs11-tool (the token's
# objects), openssl verify, python's json.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/acme.sh"
. "$top_srcdir/tests/lib/bind.sh"

setup() {
	need pebble nginx openssl python3 curl pkcs11-tool
	acme_setup web
	S=$T/st
	KEY="$TOK;object=web;type=private"
	CERT="$TOK;object=web;type=cert"
	HTTPPORT=$(free_port)
	PNAME=pebble
	PEBBLE_ENV="PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0"
	start_server "$T/pebble.srv" 2 start_pebble || return 1
	P=${PORTS%% *}
	M=${PORTS#* }
	pebble_get "$M" /roots/0 > "$T/root.pem"
	"$P11KM" -q ca add p --kind acme --directory "https://127.0.0.1:$P/dir" \
		--ca-file "$T/tls/root.pem" --agree-tos --config-dir "$CFG" || return 1
	# the first certificate: two days, from a local CA that is not pebble
	ca_setup "$T/lca"
}

serial_of() { openssl x509 -in "$1" -noout -serial | sed 's/serial=//'; }

test_first_certificate() {
	check "key generate web" "$P11KM" key generate "$TOK" --type ec:p256 --label web \
		--pin-source "file:$PIN"
	check "req new (IP:127.0.0.1)" "$P11KM" req new "$KEY" --subject "CN=127.0.0.1" \
		--san IP:127.0.0.1 -o "$T/web.csr" --pin-source "file:$PIN"
	check "the local CA issues a two-day certificate" openssl x509 -req -in "$T/web.csr" \
		-CA "$T/lca/inter.pem" -CAkey "$T/lca/inter.key" -set_serial 0x2001 -days 2 \
		-copy_extensions copy -out "$T/web1.pem"
	cat "$T/web1.pem" "$T/lca/inter.pem" > "$T/web1-chain.pem"
	check "cert install it" "$P11KM" cert install "$T/web1-chain.pem" "$KEY" \
		--ca-file "$T/lca/root.pem" --pin-source "file:$PIN"
}

emit() {
	"$P11KM" bind emit nginx --key "$KEY" --listen "127.0.0.1:$TLSPORT" --out-dir "$T/b" \
		--pin-file "$T/web.pin" --pin-source "file:$PIN" --service-user nobody \
		--acme-webroot "$WWW" --acme-listen "127.0.0.1:$HTTPPORT"
}
start_nginx() { # TLSPORT (the ACME port is pebble's httpPort, fixed)
	if [ "$1" != "${TLSPORT:-}" ]; then TLSPORT=$1; emit || return 1; fi
	OPENSSL_CONF=$T/b/openssl.cnf nginx -p "$N" -c "$N/nginx.conf"
}

test_nginx_serves_the_first() {
	WWW=$T/www N=$T/nginx
	mkdir -p "$WWW"
	TLSPORT=$(free_port)
	check "bind emit nginx --acme-webroot" emit
	open_token_dir nobody
	chmod o+rx "$WWW"
	nginx_conf "$N" "hello" "$T/b"
	check "nginx starts with the binding" start_server "$N/error.log" 1 start_nginx "$TLSPORT"
	cleanup_add "kill \$(cat '$N/nginx.pid') 2>/dev/null"
	check_eq "nginx serves the local CA's certificate" "$(serial_served "$TLSPORT")" 2001
}

test_track_add() {
	# the objects SoftHSM writes are root's: the deploy hook lets the workers read them
	cat > "$T/fixperms" <<-EOF
	#!/bin/sh
	echo "\$P11KM_TRACK_ID \$P11KM_OLD_SERIAL \$P11KM_NEW_SERIAL" >> "$T/hook.log"
	chgrp -R nogroup "$T/tokens" && chmod -R g+rX "$T/tokens"
	EOF
	chmod +x "$T/fixperms"
	# the reload command as argv: a wrapper that records its words, then reloads
	cat > "$T/reload" <<-'EOF'
	#!/bin/sh
	printf '%s\n' "$#" "$1" "$2" >> "${0%/*}/reload.log"
	shift 2
	exec "$@"
	EOF
	chmod +x "$T/reload"
	check_fails "track add --reload -- with no command: exit 2" 2 "$P11KM" track add "$CERT" \
		--state-dir "$S" --ca p --reload --
	check_one_line_error "... one line" 'give the command after "--"'
	check "track add --ca p (ACME) --webroot, binding, reload, verify" "$P11KM" track add "$CERT" \
		--state-dir "$S" --pin-source "file:$PIN" --ca p --webroot "$WWW" --ca-file "$T/root.pem" \
		--bind "$T/b" --verify "127.0.0.1:$TLSPORT" --reload -- "$T/reload" "a b" "x;y" \
		nginx -p "$N" -c "$N/nginx.conf" -s reload
	check "track show: the reload command kept word for word" "$P11KM" track show web --state-dir "$S"
	cp "$T/out" "$T/show.json"
	check "... the blank and the ';' inside their words" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["reload"]
assert d[:3] == [sys.argv[2] + "/reload", "a b", "x;y"] and d[-2:] == ["-s", "reload"], d' \
		"$T/show.json" "$T"
	check "renew --dry-run: the two-day certificate is due" "$P11KM" renew --all --dry-run \
		--state-dir "$S" --config-dir "$CFG"
	check_grep "... due" '^web: due' "$T/out"
}

test_renew_through_pebble() {
	check "renew --all --json: renewed through pebble" "$P11KM" --verbose --json renew --all \
		--state-dir "$S" --config-dir "$CFG" --deploy-hook "$T/fixperms"
	cp "$T/out" "$T/renew.json"
	check_grep "pebble validated 127.0.0.1 (through nginx's webroot)" "web: validated: 127.0.0.1" "$T/err"
	check "renew --json: renewed, a new serial" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))[0]
assert d["id"] == "web" and d["result"] == "renewed" and d["old_serial"] == "2001", d
assert d["new_serial"] and d["new_serial"] != "2001", d' "$T/renew.json"
	NEW=$(json_get "$T/renew.json" 'd[0]["new_serial"]')
	check_eq "nginx was reloaded and serves the new serial (s_client)" \
		"$(serial_served "$TLSPORT")" "$NEW"
	check "bind verify: the served chain verifies to pebble's root" "$P11KM" bind verify \
		"127.0.0.1:$TLSPORT" --cert "$CERT" --ca-file "$T/root.pem"
	check_grep "... the token's certificate" "same certificate" "$T/out"
	pebble_get "$M" "/cert-status-by-serial/$NEW" > "$T/status.json"
	check "pebble knows the served serial as one it issued" python3 -c '
import json, sys; d = json.load(open(sys.argv[1])); assert d["Status"] == "Valid", d' "$T/status.json"
	check_eq "the reload command ran once, its words as given (no shell, no split)" \
		"$(tr '\n' '|' < "$T/reload.log")" "9|a b|x;y|"
	check_eq "the deploy hook ran once, with both serials" "$(cat "$T/hook.log")" "web 2001 $NEW"
	check "the old certificate is kept, retired (pkcs11-tool)" sh -c \
		"pkcs11-tool --module '$SOFTHSM2_MODULE' --token-label web -O --type cert 2>/dev/null |
		 grep -q 'label: *web.retired-'"
	check_grep "the rewritten binding still serves the http-01 challenges (the next renewal needs them)" \
		"location \^~ /.well-known/acme-challenge/" "$T/b/nginx-server.conf"
	check_eq "the challenge files are gone from the webroot" "$(find "$WWW" -type f | wc -l)" 0
}

test_status_after() {
	check "status --probe: all fine, exit 0" "$P11KM" --json status --probe --state-dir "$S"
	cp "$T/out" "$T/st.json"
	check "status shows the new serial, served, idle, renewed" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))[0]
assert d["level"] == "ok" and d["serial"] == sys.argv[2] and d["served_serial"] == sys.argv[2], d
assert d["state"] == "idle" and d["last_result"] == "renewed" and d["ca"] == "p", d
assert d["days_left"] > 300, d' "$T/st.json" "$NEW"
	check "renew again: not due (five years from pebble)" "$P11KM" renew --all --state-dir "$S" \
		--config-dir "$CFG"
	check_grep "... not due" '^web: not due' "$T/out"
}

test_rekey_always() {
	OLDPUB=$T/old.pub
	pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label web --read-object --type pubkey --label web \
		-o "$OLDPUB.der" >/dev/null 2>&1
	check "track add --force --rekey always (same binding, reload, verify)" "$P11KM" --force track add \
		"$CERT" --state-dir "$S" --pin-source "file:$PIN" --ca p --webroot "$WWW" \
		--ca-file "$T/root.pem" --bind "$T/b" --verify "127.0.0.1:$TLSPORT" --rekey always \
		--reload -- "$T/reload" "a b" "x;y" nginx -p "$N" -c "$N/nginx.conf" -s reload
	check "renew --force --json: renewed through pebble with a new key" "$P11KM" --force --json renew web \
		--state-dir "$S" --config-dir "$CFG" --deploy-hook "$T/fixperms"
	cp "$T/out" "$T/rekey.json"
	NEW2=$(json_get "$T/rekey.json" 'd[0]["new_serial"]')
	check "... renewed, from the last serial" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))[0]
assert d["result"] == "renewed" and d["old_serial"] == sys.argv[2], d' "$T/rekey.json" "$NEW"
	check_eq "nginx serves the rekeyed certificate" "$(serial_served "$TLSPORT")" "$NEW2"
	check "bind verify: served with the new key, verified to pebble's root" "$P11KM" bind verify \
		"127.0.0.1:$TLSPORT" --cert "$CERT" --ca-file "$T/root.pem"
	openssl s_client -connect "127.0.0.1:$TLSPORT" </dev/null 2>/dev/null | openssl x509 -pubkey -noout \
		> "$T/served.pub"
	check "... a key other than the old one" sh -c "! cmp -s '$T/served.pub' \
		\"\$(openssl pkey -pubin -inform DER -in '$OLDPUB.der' -out '$OLDPUB' && echo '$OLDPUB')\""
	check "the old key pair is retired on the token (pkcs11-tool)" sh -c \
		"pkcs11-tool --module '$SOFTHSM2_MODULE' --token-label web --login --pin 1234 -O --type privkey \
		 2>/dev/null | grep -q 'label: *web.retired-'"
}

test_status_probes_the_bindings() {
	check "track add --force: the binding and the reload, no --verify" "$P11KM" --force track add \
		"$CERT" --state-dir "$S" --pin-source "file:$PIN" --ca p --webroot "$WWW" \
		--ca-file "$T/root.pem" --bind "$T/b" --rekey always \
		--reload -- "$T/reload" "a b" "x;y" nginx -p "$N" -c "$N/nginx.conf" -s reload
	check "status --probe --json: fine, exit 0" "$P11KM" --json status --probe --state-dir "$S"
	cp "$T/out" "$T/probe1.json"
	check "... the binding's listen address asked (its manifest), the served serial the token's" \
		python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))[0]
assert d["probes"] == [{"address": "127.0.0.1:" + sys.argv[2], "serial": sys.argv[3]}], d
assert d["served_serial"] == sys.argv[3] and not d["not_reloaded"] and d["level"] == "ok", d' \
		"$T/probe1.json" "$TLSPORT" "$NEW2"
	# a certificate installed by hand into the binding, nginx not reloaded
	check "req renew" "$P11KM" req renew "$CERT" -o "$T/web3.csr" --pin-source "file:$PIN"
	check "the local CA issues it" openssl x509 -req -in "$T/web3.csr" -CA "$T/lca/inter.pem" \
		-CAkey "$T/lca/inter.key" -set_serial 0x2002 -days 90 -copy_extensions copy -out "$T/web3.pem"
	cat "$T/web3.pem" "$T/lca/inter.pem" > "$T/web3-chain.pem"
	check "cert install --bind, without a reload" "$P11KM" cert install "$T/web3-chain.pem" "$KEY" \
		--ca-file "$T/lca/root.pem" --bind "$T/b" --pin-source "file:$PIN"
	check_fails "status --probe: installed but not reloaded, exit 1" 1 "$P11KM" status --probe \
		--state-dir "$S"
	check_grep "... said so, with what is served where" \
		"^warn +web .* 2002 .*installed but not reloaded;.* 127.0.0.1:$TLSPORT serves $NEW2" "$T/out"
	check_fails "status --probe of the binding directory: the same, exit 1" 1 "$P11KM" --json status \
		--probe "$T/b"
	cp "$T/out" "$T/probe2.json"
	check "... not_reloaded, the served serial" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))[0]
assert d["not_reloaded"] and d["serial"] == "2002" and d["served_serial"] == sys.argv[2], d' \
		"$T/probe2.json" "$NEW2"
	"$T/fixperms"
	check "nginx reloaded" env OPENSSL_CONF="$T/b/openssl.cnf" nginx -p "$N" -c "$N/nginx.conf" -s reload
	for _i in $(seq 300); do   # the new workers take a moment
		[ "$(serial_served "$TLSPORT")" = 2002 ] && break
		sleep 0.1
	done
	check "status --probe: fine again, exit 0" "$P11KM" status --probe --state-dir "$S"
	check_grep "... served 2002" "^ok +web .* 2002 .* served 2002" "$T/out"
}

run_tests
