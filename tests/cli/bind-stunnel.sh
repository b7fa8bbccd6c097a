#!/bin/bash
# bind + real stunnel4: key and certificate by token URI (engine = pkcs11),
# in front of a local HTTP backend.  Judges: openssl s_client, curl --cacert.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/bind.sh"

backend() { # PORT
	(cd "$T/www" && exec python3 -m http.server --bind 127.0.0.1 "$1") &
	SERVER_PID=$!
}

setup() {
	need stunnel4 curl python3
	bind_setup

	make_key tun 0b rsa:2048
	issue_token tun 0b tun.test 4001
	put_cert tun 0b "$T/tun-4001.der"
	# the backend: plain HTTP on loopback
	mkdir -p "$T/www"
	echo "behind stunnel" > "$T/www/index.html"
	check "the HTTP backend starts" start_server "$T/backend.log" 1 backend
	B=$PORT backend=$SERVER_PID
	cleanup_add "kill $backend"
	P=$(free_port)
}

emit_tun() {
	"$P11KM" bind emit stunnel --key "$TOKEN;object=tun;type=private" \
		--listen "127.0.0.1:$P" --connect "127.0.0.1:$B" --server-name tun.test --out-dir "$T/st" \
		--pin-file "$T/st.pin" --pin-source "file:$PIN" --service-user nobody
}

# emit stunnel, bind check
test_emit_check() {
	check "emit stunnel" emit_tun
	S=$T/st/stunnel.conf
	check_grep "stunnel drops to the service user" '^setuid = nobody$' "$S"
	check_fails "bind check: nobody cannot read the token store yet" 5 "$P11KM" bind check "$T/st"
	open_token_dir nobody
	check_grep "engine = pkcs11" '^engine = pkcs11$' "$S"
	check_grep "engineId in the service" '^engineId = pkcs11$' "$S"
	check_grep "key by URI, by id" '^key = pkcs11:.*id=%0B;type=private\?pin-source=' "$S"
	check_grep "certificate from the binding's file" "^cert = $T/.*/fullchain-[0-9a-f]{16}\.pem\$" "$S"
	check "bind check passes" "$P11KM" bind check "$T/st"
}

start_stunnel() { # PORT
	if [ "$1" != "$P" ]; then P=$1; emit_tun || return 1; fi  # the port was taken meanwhile
	{ echo "pid = $T/run/stunnel.pid"; echo "output = $T/run/stunnel.log"; cat "$S"; } > "$T/run.conf"
	OPENSSL_CONF="$T/st/openssl.cnf" stunnel4 "$T/run.conf"
}

# the emitted file, with the process settings of this test in front
# (stunnel writes its pid file after dropping to nobody)
test_stunnel_starts() {
	mkdir -p "$T/run"; chown nobody "$T/run"
	check "stunnel starts, listening" start_server "$T/run/stunnel.log" 1 start_stunnel "$P"
	for i in $(seq 300); do [ -s "$T/run/stunnel.pid" ] && break; sleep 0.1; done
	cleanup_add "kill \$(cat '$T/run/stunnel.pid') 2>/dev/null"
}

# what stunnel serves
test_served() {
	check "s_client verifies (chain + name)" s_client_ok "$P" tun.test
	check "the served certificate is the token's" test "$(serial_served "$P" tun.test)" = 0FA1
	check "curl --cacert through stunnel to the backend" curl -sSf --cacert "$T/ca/root.pem" \
		--resolve "tun.test:$P:127.0.0.1" -o "$T/body" "https://tun.test:$P/"
	check_grep "the backend's page came through" 'behind stunnel' "$T/body"
	check "stunnel runs as nobody" test "$(ps -o user= -p "$(cat "$T/run/stunnel.pid")")" = nobody
	check "bind verify" "$P11KM" bind verify "127.0.0.1:$P" --server-name tun.test \
		--cert "$TOKEN;object=tun;type=cert" --ca-file "$T/ca/root.pem"
	check_grep "bind verify: same certificate" 'same certificate' "$T/out"
}

# stunnel stops
test_stop() {
	pid=$(cat "$T/run/stunnel.pid")
	kill "$pid"
	for i in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	check "stunnel stopped" sh -c "! kill -0 $pid 2>/dev/null"
}

run_tests
