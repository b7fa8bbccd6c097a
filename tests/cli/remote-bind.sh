#!/bin/bash
# bind emit / check / verify with a real nginx whose key is on the network
# token: p11-kit-client.so in nginx's workers (as nobody), talking to
# 'p11-kit server' in front of SoftHSM2 (tests/lib/remote.sh).  The binding
# must carry P11_KIT_SERVER_ADDRESS as it carries SOFTHSM2_CONF, and bind
# check must say (not hang) when the workers cannot reach the socket.
# Judges: openssl s_client -verify_return_error, curl --cacert, the
# workers' memory maps, pkcs11-tool on the SoftHSM token directly.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/bind.sh"
. "$top_srcdir/tests/lib/remote.sh"

setup() {
	need nginx curl p11-kit
	remote_available || skip_all "p11-kit server or p11-kit-client.so missing"
	bind_setup
	make_key web1 01 EC:prime256v1
	issue_token web1 01 web1.test 1001
	put_cert web1 01 "$T/web1-1001.der"
	mkdir -p "$T/remote"
	remote_token_start "$T/remote" bind || { echo "# cannot start p11-kit server"; exit 99; }
	cleanup_add "remote_token_stop '$T/remote'"
	export P11KM_MODULE=$REMOTE_MODULE
	SOCK=$T/remote/p11-kit.sock
	P1=$(free_port)
	KEY="$TOKEN;object=web1;type=private"
}

emit() { # PORT
	"$P11KM" bind emit nginx --key "$KEY" --listen "127.0.0.1:$1" --server-name web1.test \
		--out-dir "$T/b" --pin-file "$T/web.pin" --pin-source "file:$PIN" --service-user nobody
}

# bind emit through the remote token
test_emit() {
	check "bind emit through the remote token" emit "$P1"
	check_grep "the environment file names the server socket" \
		"^P11_KIT_SERVER_ADDRESS=unix:path=$SOCK\$" "$T/b/environment"
	check_grep "the systemd drop-in too" "^Environment=P11_KIT_SERVER_ADDRESS=unix:path=$SOCK\$" \
		"$T/b/systemd-dropin.conf"
	check_grep "nginx passes it to its workers" "^env P11_KIT_SERVER_ADDRESS;\$" "$T/b/nginx-main.conf"
	check_grep "the manifest carries it for bind check" "^env = P11_KIT_SERVER_ADDRESS=unix:path=$SOCK\$" \
		"$T/b/p11km-binding.conf"
	check_grep "openssl.cnf loads the client module, not SoftHSM" \
		"MODULE_PATH *= *$REMOTE_MODULE" "$T/b/openssl.cnf"
	check_nogrep "...and the binding does not name SoftHSM's configuration" "SOFTHSM2_CONF" "$T/b/environment"
}

# the socket is root's (srwx--x--x) in a 0700 directory: the workers cannot connect
test_socket_unreachable() {
	t0=$(date +%s)
	check_fails "bind check: the worker user cannot reach the socket" 5 \
		env -u P11_KIT_SERVER_ADDRESS "$P11KM" bind check "$T/b"
	check_grep "bind check says so and how to fix it" \
		"user 'nobody' cannot connect to the p11-kit server socket '$SOCK' \(Permission denied\).*chmod g\+w" "$T/out"
	check_nogrep "...instead of hanging" "hung" "$T/out"
	check "...at once (not after the 20 s alarm)" test $(($(date +%s) - t0)) -lt 15
	chmod o+x "$T" "$T/remote"
	chgrp nogroup "$SOCK" && chmod g+w "$SOCK"
	check "bind check passes once the workers can connect" env -u P11_KIT_SERVER_ADDRESS \
		"$P11KM" bind check "$T/b"
	check_grep "it signed as the service user after fork, through the socket" \
		'as the service user after fork' "$T/out"
}

start_nginx() { # PORT
	if [ "$1" != "$P1" ]; then P1=$1; emit "$P1" || return 1; fi
	env -u P11_KIT_SERVER_ADDRESS -u SOFTHSM2_CONF $(cat "$T/b/environment") \
		nginx -p "$N" -c "$N/nginx.conf"
}

# nginx started with the binding's environment (as its systemd drop-in would)
test_nginx() {
	N=$T/ngx
	nginx_conf "$N" "hello from the network token" "$T/b"
	check "nginx starts with the binding's environment" start_server "$N/error.log" 1 start_nginx "$P1"
	P1=$PORT
	cleanup_add "kill \$(cat '$N/nginx.pid') 2>/dev/null"
	master=$(cat "$N/nginx.pid" 2>/dev/null)
	for i in $(seq 300); do
		[ "$(ps -o user= --ppid "$master" 2>/dev/null | grep -c '^nobody')" = 2 ] && break
		sleep 0.1
	done
	check "two workers, both running as nobody" \
		test "$(ps -o user= --ppid "$master" | grep -c '^nobody')" = 2
	check "s_client: the chain and name verify" s_client_ok "$P1" web1.test
	check "the certificate served is the token's" test "$(serial_served "$P1" web1.test)" = 03E9
	check "curl --cacert gets the page" curl -sSf --cacert "$T/ca/root.pem" \
		--resolve "web1.test:$P1:127.0.0.1" -o "$T/body" "https://web1.test:$P1/"
	check_grep "...the page" 'hello from the network token' "$T/body"
	w=$(ps -o pid= --ppid "$master" | head -1 | tr -d ' ')
	check_grep "a worker signs through p11-kit-client.so" "p11-kit-client.so" "/proc/$w/maps"
	check "...and has not loaded SoftHSM itself" sh -c "grep -q p11-kit-client /proc/$w/maps && ! grep -q libsofthsm2 /proc/$w/maps"
	check "bind verify: nginx serves the token's certificate" "$P11KM" --pin-source "file:$PIN" \
		bind verify "127.0.0.1:$P1" --server-name web1.test --cert "$TOKEN;object=web1;type=cert" \
		--ca-file "$T/ca/root.pem"
	check_grep "bind verify: same certificate" 'same certificate' "$T/out"
	check_grep "bind verify: the chain verifies" 'chain: +verifies' "$T/out"
	kill "$master"
	for i in $(seq 300); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
	check "nginx stopped" sh -c "! kill -0 $master 2>/dev/null"
}

run_tests
