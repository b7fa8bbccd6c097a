#!/bin/bash
# track + renew + status: a two-day certificate from the test CA, tracked with
# an nginx binding, a reload command and a verify; a file CA (the request
# written, the reply dropped in by this test, the next run installs);
# renewed by hand in between; a verify that fails after the reload (rolled
# back); two runs at once; status and its node_exporter textfile.  Judges:
# pkcs11-tool (token objects), openssl s_client (the served serial),
# promtool check metrics, python's json.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/bind.sh"

emit_web1() {
	"$P11KM" bind emit nginx --key "$TOKEN;object=web1;type=private" --listen "127.0.0.1:$P1" \
		--server-name web1.test --out-dir "$T/b1" --pin-file "$T/web.pin" \
		--pin-source "file:$PIN" --service-user nobody
}
start_nginx() { [ "$1" = "$P1" ] || { P1=$1; emit_web1 || return 1; }; OPENSSL_CONF=$T/b1/openssl.cnf nginx -p "$N" -c "$N/nginx.conf"; }

setup() {
	need nginx promtool python3 flock
	track_setup
	CERT="$TOKEN;object=web1;type=cert"
	P1=$(free_port)

	check "emit an nginx binding for web1" emit_web1
	open_token_dir nobody
	N=$T/ngx
	nginx_conf "$N" "web1" "$T/b1"
	check "nginx serves web1 from the token" start_server "$N/error.log" 1 start_nginx "$P1"
	cleanup_add "kill \$(cat '$N/nginx.pid') 2>/dev/null"
	check_eq "nginx serves serial 1001" "$(serial_served "$P1" web1.test)" 03E9
}

# --- track add / list / show ------------------------------------------------------
add() {
	"$P11KM" track add "$CERT" --state-dir "$S" --pin-source "file:$PIN" --ca "file:$CA" \
		--ca-file "$T/ca/root.pem" --bind "$T/b1" --verify "127.0.0.1:$P1" --server-name web1.test \
		--reload "$1" "${@:2}"
}
test_track_add() {
	chmod 0644 "$PIN"
	check_fails "track add: a PIN file readable by others is refused" 2 "$P11KM" track add "$CERT" \
		--state-dir "$S" --pin-source "file:$PIN" --ca "file:$CA"
	check_grep "which says the mode it needs" 'must be 0600 or 0400' "$T/err"
	chmod 0600 "$PIN"
	check_fails "track add: --rekey takes never, always or a key type" 2 "$P11KM" track add "$CERT" \
		--state-dir "$S" --rekey sometimes
	RELOAD="nginx -p $N -c $N/nginx.conf -s reload"
	check "track add (id from the label)" add "$RELOAD"
	check_grep "tracking web1" '^tracking web1: ' "$T/out"
	check "track add again, same settings: unchanged" add "$RELOAD"
	check_grep "unchanged" '^unchanged: web1' "$T/out"
	check_fails "other settings without --force: refused" 1 add "true"
	check "the entry is 0600" test "$(stat -c %a "$S/track/web1.json")" = 600
	check_nogrep "the entry holds no PIN" 1234 "$S/track/web1.json"
	check "track show web1" "$P11KM" track show web1 --state-dir "$S"
	cp "$T/out" "$T/show.json"
	check "track show: the PIN source as a reference, the reload as argv" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["pin_source"] == "file:" + sys.argv[2] and d["reload"][0] == "nginx", d
assert d["state"]["step"] == "idle", d' "$T/show.json" "$PIN"
	check "track list" "$P11KM" track list --state-dir "$S"
	check_grep "lists web1" '^web1 +idle' "$T/out"
}

# --- renew: due, waiting for the file CA, installed, reloaded, verified -------------
sign() { # SERIAL: the test CA answers the request
	printf 'subjectAltName=DNS:web1.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$T/ext.cnf"
	openssl x509 -req -in "$CA/web1.csr" -CA "$T/ca/root.pem" -CAkey "$T/ca/root.key" -set_serial "$1" \
		-days 90 -extfile "$T/ext.cnf" -out "$CA/web1.crt" 2>/dev/null
}
test_renew() {
	check "renew --dry-run" "$P11KM" renew --all --dry-run --state-dir "$S"
	check_grep "a two-day certificate is due" '^web1: due' "$T/out"
	check "dry run: nothing written to the CA" test ! -e "$CA/web1.csr"
	check "renew --all: the request goes to the file CA" "$P11KM" renew --all --state-dir "$S"
	check_grep "waiting for the reply" '^web1: waiting: waiting for the reply' "$T/out"
	check "the request verifies (openssl req -verify)" openssl req -in "$CA/web1.csr" -verify -noout
	check "renew again: still waiting, exit 0" "$P11KM" renew web1 --state-dir "$S"
	check_grep "still waiting" '^web1: waiting' "$T/out"
	check "the CA signs the request" sign 1002
	# the objects SoftHSM writes are root's: the deploy hook lets the workers read them
	cat > "$T/fixperms" <<EOF
#!/bin/sh
echo "\$P11KM_TRACK_ID \$P11KM_OLD_SERIAL \$P11KM_NEW_SERIAL \$#:\$1|\$2" >> "$T/hook.log"
chgrp -R nogroup "$T/tokens" && chmod -R g+rX "$T/tokens"
EOF
	chmod +x "$T/fixperms"
	# the hook's words as systemd splits them: quotes keep a blank and a ';' in one word
	HOOK="$T/fixperms 'a b' \"x;y\""
	check_fails "a hook with an unclosed quote: usage error, exit 2, before anything" 2 \
		"$P11KM" renew --all --state-dir "$S" --deploy-hook "$T/fixperms 'a b"
	check_grep "  ... saying which hook and what" '^p11km: --deploy-hook: a single quote is not closed' "$T/err"
	check "renew --all --json: installed, reloaded, verified" "$P11KM" --json renew --all --state-dir "$S" \
		--deploy-hook "$HOOK"
	cp "$T/out" "$T/renew.json"
	check "renew --json: renewed, serial 03EA" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d[0]["id"] == "web1" and d[0]["result"] == "renewed" and d[0]["new_serial"] == "03EA", d' \
		"$T/renew.json"
	check_eq "nginx serves the new serial (s_client)" "$(serial_served "$P1" web1.test)" 03EA
	p11tool_sm --token-label bind --read-object --type cert --label web1 -o "$T/now.der" >/dev/null 2>&1
	check "the token's web1 is the new certificate (pkcs11-tool)" \
		test "$(openssl x509 -inform DER -in "$T/now.der" -noout -serial)" = serial=03EA
	check "the old certificate is kept, retired (pkcs11-tool)" \
		sh -c "pkcs11-tool --module '$SOFTHSM2_MODULE' --token-label bind -O 2>/dev/null | grep -q 'label: *web1.retired-'"
	check_eq "the deploy hook ran once, with the P11KM_* variables" "$(cat "$T/hook.log")" "web1 03E9 03EA 2:a b|x;y"
	check "the reply is stored with the entry" test -s "$S/track/web1.d/chain-03EA.pem"
	check "renew again: not due" "$P11KM" renew --all --state-dir "$S"
	check_grep "not due" '^web1: not due' "$T/out"
}

# --- status ---------------------------------------------------------------------------
test_status() {
	check "status: all fine, exit 0" "$P11KM" status --state-dir "$S" --prom "$T/p11km.prom" --probe
	check_grep "status shows web1 ok, serial and state" '^ok +web1 .*03EA .* idle ' "$T/out"
	check_grep "and the served serial (--probe)" 'served 03EA' "$T/out"
	check "promtool check metrics accepts the textfile" sh -c "promtool check metrics < '$T/p11km.prom'"
	check_grep "the textfile has not_after with the id label" \
		'^p11km_cert_not_after_seconds\{id="web1",.*\} [0-9]+$' "$T/p11km.prom"
	check_grep "the renewal state" '^p11km_cert_renewal_state\{id="web1".*\} 0$' "$T/p11km.prom"
	check_grep "the last run" '^p11km_renew_last_run_timestamp_seconds [1-9][0-9]+$' "$T/p11km.prom"
	check_fails "status --warn-days 100: inside the window, exit 1" 1 "$P11KM" status --warn-days 100 \
		--state-dir "$S" --json
	cp "$T/out" "$T/status.json"
	check "status --json names the level" python3 -c '
import json, sys; d = json.load(open(sys.argv[1])); assert d[0]["level"] == "warn", d' "$T/status.json"
}

# --- renewed by hand: noticed, never renewed twice ---------------------------------------
by_hand() { # SERIAL: a certificate installed with 'cert install', not by renew
	issue_token web1 01 web1.test "$1" 90 &&
	"$P11KM" cert install "$T/web1-$1.pem" "$TOKEN;object=web1;type=private" --ca-file "$T/ca/root.pem" \
		--pin-source "file:$PIN" --bind "$T/b1" >/dev/null && "$T/fixperms"
}
test_renewed_by_hand() {
	check "a newer certificate installed by hand (serial 1003)" by_hand 1003
	check "renew: not due" "$P11KM" renew --all --state-dir "$S"
	check_grep "and it noticed the new certificate" 'renewed by someone else, not renewed again' "$T/err"
	check "the entry now follows serial 03EB" python3 -c '
import json, sys; d = json.load(open(sys.argv[1])); assert d["state"]["old_serial"] == "03EB", d' \
		"$S/track/web1.json"
	check "renew --force starts a renewal: waiting" "$P11KM" --force renew web1 --state-dir "$S"
	check_grep "waiting" '^web1: waiting' "$T/out"
	check "meanwhile someone installs serial 1004 by hand" by_hand 1004
	check "renew: the renewal under way is dropped" "$P11KM" renew --all --state-dir "$S"
	check_grep "dropped, as the note says" 'renewed by someone else; the renewal under way \(waiting\) is dropped' "$T/err"
	check_grep "not due" '^web1: not due' "$T/out"
	check "the entry is idle again" python3 -c '
import json, sys; d = json.load(open(sys.argv[1])); assert d["state"]["step"] == "idle", d' \
		"$S/track/web1.json"
}

# --- a verify that fails after the reload: rolled back ----------------------------------
test_rollback() {
	check "reload nginx (serves 1004)" env OPENSSL_CONF="$T/b1/openssl.cnf" nginx -p "$N" -c "$N/nginx.conf" -s reload
	for i in $(seq 300); do   # the new workers take a moment; a slow machine may need a second HUP
		[ "$(serial_served "$P1" web1.test)" = 03EC ] && break
		[ "$i" != 150 ] || env OPENSSL_CONF="$T/b1/openssl.cnf" nginx -p "$N" -c "$N/nginx.conf" -s reload
		sleep 0.1
	done
	check_eq "nginx serves 1004" "$(serial_served "$P1" web1.test)" 03EC
	[ "$(serial_served "$P1" web1.test)" = 03EC ] || tail -5 "$N/error.log" | sed 's/^/#   /'
	check "track add --force: a reload command that does not reload" env OPENSSL_CONF=/dev/null \
		"$P11KM" --force track add "$CERT" --state-dir "$S" --pin-source "file:$PIN" --ca "file:$CA" \
		--ca-file "$T/ca/root.pem" --bind "$T/b1" --verify "127.0.0.1:$P1" --server-name web1.test --reload true
	check "renew --force: waiting" "$P11KM" --force renew web1 --state-dir "$S"
	check "the CA signs (1005)" sign 1005
	check_fails "renew: the server keeps the old certificate, exit 1" 1 "$P11KM" --json renew --all \
		--state-dir "$S" --deploy-hook "$HOOK"
	cp "$T/out" "$T/rb.json"
	check "renew --json: failed, rolled back to 03EC, with the next attempt" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))[0]
assert d["result"] == "failed" and "rolled back to serial 03EC" in d["reason"], d
assert "serves serial 03EC, not the new 03ED" in d["reason"] and d["next_attempt"], d' "$T/rb.json"
	p11tool_sm --token-label bind --read-object --type cert --label web1 -o "$T/now.der" >/dev/null 2>&1
	check "the token's web1 is 1004 again (pkcs11-tool)" \
		test "$(openssl x509 -inform DER -in "$T/now.der" -noout -serial)" = serial=03EC
	G=$(openssl x509 -in "$T/web1-1004.pem" | sha256sum | cut -c1-16)
	check_grep "the binding names 1004's file again" "fullchain-$G.pem" "$T/b1/nginx-server.conf"
	check "bind check passes on the rolled-back binding" "$P11KM" bind check "$T/b1"
	check_eq "nginx still serves 1004" "$(serial_served "$P1" web1.test)" 03EC
	check "the entry records the failed attempt and the backoff" python3 -c '
import json, sys, time; d = json.load(open(sys.argv[1]))["state"]
assert d["attempts"] == 1 and d["next_attempt"] > time.time() + 200 and d["step"] == "idle", d' \
		"$S/track/web1.json"
	check_fails "status: the failed renewal is a warning, exit 1" 1 "$P11KM" status web1 --state-dir "$S"
	check_grep "status shows the rollback" 'rolled back to serial 03EC' "$T/out"
}

# --- two runs at once -------------------------------------------------------------------
test_two_runs() {
	check "another run holds the renew lock" hold_lock "$S/renew.lock"
	check_fails "a second run says so, exit 1" 1 "$P11KM" renew --all --state-dir "$S"
	check_grep "another renew is running" 'another renew is running' "$T/err"
	check_waits "with --wait it waits, then runs" 'waiting: another renew is running' \
		"$P11KM" renew --all --wait --state-dir "$S" --force --dry-run
}

# --- status of a certificate file that has expired -------------------------------------
test_status_expired() {
	python3 - "$T/expired.pem" <<'EOF'
import datetime, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
k = ec.generate_private_key(ec.SECP256R1())
n = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "old.test")])
t = datetime.datetime(2020, 1, 1)
c = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(k.public_key())
     .serial_number(9).not_valid_before(t).not_valid_after(t + datetime.timedelta(days=1))
     .sign(k, hashes.SHA256()))
open(sys.argv[1], "wb").write(c.public_bytes(serialization.Encoding.PEM))
EOF
	check_fails "status of an expired certificate file: exit 5" 5 "$P11KM" status "$T/expired.pem"
	check_grep "shown as expired" '^expired ' "$T/out"
}

# --- track remove ----------------------------------------------------------------------
test_track_remove() {
	check "track remove" "$P11KM" track remove web1 --state-dir "$S"
	check "the entry is gone" test ! -e "$S/track/web1.json"
}

run_tests
