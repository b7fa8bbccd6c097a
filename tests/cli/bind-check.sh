#!/bin/bash
# bind check catches each trap on purpose, with one line that says the fix.
# Every trap is also confirmed with a real tool where one exists (openssl
# through the engine), so the check is not judged by p11km alone.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/bind.sh"

setup() {
	bind_setup

	make_key web 01 rsa:2048
	issue_token web 01 web.test 1001
	put_cert web 01 "$T/web-1001.der"
	make_key other 02 EC:prime256v1
	issue_token other 02 other.test 2001
	put_cert other 02 "$T/other-2001.der"
	open_token_dir nobody
}

# variant NAME: a copy of the good binding (paths rewritten) to break on purpose
variant() {
	rm -rf "$T/$1"
	cp -a "$T/good" "$T/$1"
	sed -i "s|$T/good/|$T/$1/|g" "$T/$1"/*
	cp -a "$T/good.pin" "$T/$1.pin"
	sed -i "s|good\.pin|$1.pin|g" "$T/$1"/*
}
# trap NAME PATTERN: bind check fails (exit 5) and says PATTERN
trap_caught() {
	check_fails "$1: bind check fails" 5 "$P11KM" bind check "$T/$1"
	check_grep "$1: the problem and its fix" "$2" "$T/out"
}
not() { ! "$@"; }
engine_login() { # the same URI and PIN file through openssl (the judge)
	OPENSSL_CONF=$T/$1/openssl.cnf openssl pkey -engine pkcs11 -inform engine -pubout \
		-in "$(sed -n 's/.*ssl_certificate_key "engine:pkcs11:\(.*\)";/\1/p' "$T/$1/nginx-server.conf")" \
		>/dev/null 2>&1 </dev/null
}
nginx_t() { # nginx -t with the variant's emitted files: nginx loads the key at config time
	command -v nginx >/dev/null || return 2
	mkdir -p "$T/ngx-$1"
	cat > "$T/ngx-$1/nginx.conf" <<EOF
include $T/$1/nginx-main.conf;
pid $T/ngx-$1/nginx.pid;
error_log $T/ngx-$1/error.log;
events { worker_connections 16; }
http { access_log off; client_body_temp_path $T/ngx-$1; proxy_temp_path $T/ngx-$1;
  fastcgi_temp_path $T/ngx-$1; uwsgi_temp_path $T/ngx-$1; scgi_temp_path $T/ngx-$1;
  include $T/$1/nginx-server.conf; }
EOF
	OPENSSL_CONF=$T/$1/openssl.cnf nginx -t -p "$T/ngx-$1" -c "$T/ngx-$1/nginx.conf" >"$T/nginx-t.out" 2>&1
}

# a good binding passes
test_good() {
	check "emit a good binding" "$P11KM" bind emit nginx --key "$TOKEN;object=web;type=private" \
		--listen "127.0.0.1:$(free_port)" --server-name web.test --out-dir "$T/good" --pin-file "$T/good.pin" \
		--pin-source "file:$PIN" --service-user nobody
	check "bind check: a good binding passes" "$P11KM" bind check "$T/good"
	check_grep "bind check: says what it proved" '^ok: the key signs through the engine as the service user' "$T/out"
	check "bind check FILE (the manifest) works too" "$P11KM" bind check "$T/good/p11km-binding.conf"


	check "good: nginx -t loads the key (the judge)" nginx_t good
}

# 1. a PIN file written with echo: trailing newline
test_echo_pin_newline() {
	variant newline
	chmod 600 "$T/newline.pin"; echo "$USERPIN" > "$T/newline.pin"; chown nobody "$T/newline.pin"
	trap_caught newline "problem: the PIN file '$T/newline.pin' ends with a newline.*printf"
	check "newline: openssl through the engine fails as well (the judge)" not engine_login newline
	check "newline: nginx -t fails as well (the judge)" not nginx_t newline
	check "good: openssl through the engine loads the key (the judge)" engine_login good
}

# 2. the token store unreadable by the worker user (the fork trap)
test_store_unreadable() {
	chmod -R g-rwx "$T/tokens"
	trap_caught good "problem: user 'nobody' cannot read the SoftHSM token directory '$T/tokens'.*chmod -R g\+rX"
	chmod -R g+rX "$T/tokens"
	check "store readable again: passes" "$P11KM" bind check "$T/good"
}

# 3. a key URI libp11 rejects (slot-id), edited into the server config
test_slot_id_uri() {
	variant slotid
	sed -i 's|engine:pkcs11:pkcs11:|engine:pkcs11:pkcs11:slot-id=0;|' "$T/slotid/nginx-server.conf"
	trap_caught slotid "problem: the key URI carries 'slot-\.\.\.' attributes.*use only token, id, object and type"
	check "slotid: openssl through the engine rejects that URI too (the judge)" not engine_login slotid
	check "slotid: nginx -t fails as well (the judge)" not nginx_t slotid
}

start_wrongcert() { # PORT: the variant's copy of the binding, on PORT
	sed -i "s/127\.0\.0\.1:$WPORT\b/127.0.0.1:$1/" "$T/wrongcert/nginx-server.conf" \
		"$T/wrongcert/p11km-binding.conf"
	WPORT=$1
	OPENSSL_CONF="$T/wrongcert/openssl.cnf" nginx -p "$T/ngx-wrongcert" -c "$T/ngx-wrongcert/nginx.conf"
}

# 4. a certificate that belongs to another key
test_other_key_cert() {
	variant wrongcert
	cp "$T/other-2001.pem" "$(sed -n 's/.*ssl_certificate "\(.*\)";/\1/p' "$T/wrongcert/nginx-server.conf")"
	trap_caught wrongcert "problem: the certificate does not belong to the key"
	check "wrongcert: openssl agrees the public keys differ (the judge)" \
		not cmp -s <(openssl x509 -in "$T/other-2001.pem" -noout -pubkey) "$T/web.pub.pem"
	# nginx -t accepts this (it cannot compare an engine key with the certificate):
	# the judge is a real handshake, which the client must reject
	WPORT=$(sed -n 's/^listen = 127\.0\.0\.1://p' "$T/wrongcert/p11km-binding.conf")
	nginx_t wrongcert
	check "wrongcert: nginx starts" start_server "$T/ngx-wrongcert/error.log" 1 start_wrongcert "$WPORT"
	cleanup_add "kill \$(cat '$T/ngx-wrongcert/nginx.pid') 2>/dev/null"
	check "wrongcert: the TLS handshake fails (openssl s_client, the judge)" not s_client_ok "$PORT" other.test
	check_grep "wrongcert: the server cannot complete a handshake" "handshake failure|bad signature|decrypt error" "$T/sc.out"
	kill "$(cat "$T/ngx-wrongcert/nginx.pid")"
}

# 5. PIN file mode and owner
test_pin_file_mode() {
	variant perms
	chmod 644 "$T/perms.pin"; chown root "$T/perms.pin"
	trap_caught perms "problem: the PIN file '$T/perms.pin' is readable by others \(mode 0644\): chmod 0400"
	check_grep "perms: the owner too" "problem: the PIN file '$T/perms.pin' is not owned by 'nobody': chown nobody" "$T/out"
}

# 6. a PIN longer than libp11 accepts
test_long_pin() {
	variant longpin
	printf '%s' "$(printf 'x%.0s' $(seq 40))" > "$T/longpin.pin"; chown nobody "$T/longpin.pin"; chmod 400 "$T/longpin.pin"
	trap_caught longpin "problem: the PIN in '$T/longpin.pin' is longer than 32 bytes"
	check "longpin: nginx -t fails as well (the judge)" not nginx_t longpin
}

# 7. an engine section with init = 0 (nginx never calls ENGINE_init)
test_engine_init_0() {
	variant noinit
	sed -i 's/^init = 1$/init = 0/' "$T/noinit/openssl.cnf"
	trap_caught noinit "problem: the pkcs11 engine is not initialised.*add 'init = 1'"
	check "noinit: nginx -t fails the same way (the judge)" not nginx_t noinit
	check_grep "noinit: nginx says not initialised" 'not initialised' "$T/nginx-t.out"
}

# 8. --json lists the problems
test_json() {
	check_fails "json: exit 5" 5 "$P11KM" --json bind check "$T/wrongcert"
	cp "$T/out" "$T/check.json"
	check "json: ok false and the problem listed" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] is False and len(d["problems"]) == 1, d
assert "does not belong" in d["problems"][0]
' "$T/check.json"
}

# 9. an Ed25519 key on the token breaks libp11 for every key on it
test_ed25519_key() {
	p11tool_sm --token-label bind --login --pin "$USERPIN" --keypairgen --key-type EC:edwards25519 \
		--label ed --id 09 >/dev/null 2>&1
	trap_caught good "problem: token 'bind' holds an EdDSA \(Ed25519\) key.*delete"
	check "ed25519: openssl through the engine now fails for the RSA key too (the judge)" \
		not engine_login good
	p11tool_sm --token-label bind --login --pin "$USERPIN" --delete-object --type privkey --label ed >/dev/null 2>&1
	p11tool_sm --token-label bind --login --pin "$USERPIN" --delete-object --type pubkey --label ed >/dev/null 2>&1
	check "ed25519 key gone: passes again" "$P11KM" bind check "$T/good"
}

# 10. a key URI carrying the PIN itself (pin-value): flagged, and the PIN
# reaches neither a command line (the engine probe's argv, readable by every
# user in /proc) nor the report
test_pin_value_uri() {
	cat > "$T/probe-spy" <<EOF
#!/bin/sh
printf '%s\n' "\$*" >> "$T/probe-argv"
exec "$(dirname "$P11KM")/p11km-engine-probe" "\$@"
EOF
	chmod +x "$T/probe-spy"
	export P11KM_ENGINE_PROBE="$T/probe-spy"
	variant pinvalue
	sed -i "s|?pin-source=[^\";]*|?pin-value=$USERPIN|" "$T/pinvalue/nginx-server.conf" "$T/pinvalue/p11km-binding.conf"
	check_grep "pinvalue: the config carries the PIN" "pin-value=$USERPIN" "$T/pinvalue/nginx-server.conf"
	trap_caught pinvalue "problem: the key URI carries the PIN \(pin-value\)"
	check_nogrep "pinvalue: the engine still loads the key (it got the URI)" "cannot load the key" "$T/out"
	check_grep "pinvalue: the engine probe ran" "openssl.cnf" "$T/probe-argv"
	check_nogrep "pinvalue: the PIN is not on the probe's command line" "pin-value" "$T/probe-argv"
	check_nogrep "pinvalue: the report does not print the PIN" "pin-value=$USERPIN" "$T/out"
	check_fails "pinvalue: --json exits 5" 5 "$P11KM" --json bind check "$T/pinvalue"
	check_nogrep "pinvalue: nor does --json" "pin-value=$USERPIN" "$T/out"
	variant pinvalue2
	sed -i -e "s|?pin-source=[^\";]*|?pin-value=$USERPIN|" -e 's|id=%01;|id=%99;|' \
		"$T/pinvalue2/nginx-server.conf" "$T/pinvalue2/p11km-binding.conf"
	trap_caught pinvalue2 "problem: the pkcs11 engine cannot load the key '.*id=%99"
	check_nogrep "pinvalue2: the engine's error does not print the PIN" "pin-value=$USERPIN" "$T/out"
	check_nogrep "  ... not even on stderr" "pin-value=$USERPIN" "$T/err"
	check_eq "  ... where every line is p11km's own (libp11's messages are not passed on)" \
		"$(grep -vc '^p11km: ' "$T/err")" 0
	unset P11KM_ENGINE_PROBE
}

# 11. a key URI naming a token that is not there: each problem says why
test_no_such_token() {
	variant notoken
	sed -i 's|token=bind;|token=gone;|' "$T/notoken/nginx-server.conf" "$T/notoken/p11km-binding.conf"
	trap_caught notoken "problem: p11km cannot open the key's token to look for EdDSA keys \(no token matches"
}

s_server_expired() { # PORT
	openssl s_server -accept "127.0.0.1:$1" -cert "$T/exp.pem" -key "$T/exp.key" -www -quiet </dev/null &
	SERVER_PID=$!
}
http_server() { python3 -m http.server --bind 127.0.0.1 "$1" & SERVER_PID=$!; }

# 12. bind verify: a failure says what to do
test_verify_failure() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/exp.key" \
		-subj /CN=expired.test -out "$T/exp.csr" 2>/dev/null
	openssl x509 -req -in "$T/exp.csr" -signkey "$T/exp.key" -days -1 -out "$T/exp.pem" 2>/dev/null
	check "openssl made an expired certificate (the judge)" not openssl x509 -in "$T/exp.pem" -noout -checkend 0
	check "openssl s_server starts with it" start_server "$T/s_server.log" 1 s_server_expired
	XPORT=$PORT XPID=$SERVER_PID
	cleanup_add "kill $XPID"
	check_fails "bind verify of a server with an expired certificate" 5 "$P11KM" bind verify "127.0.0.1:$XPORT"
	check_one_line_error "  ... one line saying how to renew" "has expired; renew it .*reload the server"
	kill "$XPID" 2>/dev/null
	check "a plain HTTP server starts" start_server "$T/http.log" 1 http_server
	PPORT=$PORT PPID2=$SERVER_PID
	cleanup_add "kill $PPID2"
	check_fails "bind verify of a port that does not speak TLS" 5 "$P11KM" bind verify "127.0.0.1:$PPORT"
	check_one_line_error "  ... one line saying what to check" "TLS handshake with .* failed: .*is it a TLS port"
	kill "$PPID2" 2>/dev/null

	check_fails "not a binding directory" 1 "$P11KM" bind check "$T/tokens"
}

run_tests
