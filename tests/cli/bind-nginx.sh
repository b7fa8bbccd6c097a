#!/bin/bash
# bind + real nginx: master process on, two workers as nobody, key on a
# SoftHSM2 token; the same binding on *:PORT and 127.0.0.1:PORT; two virtual
# hosts with different token keys (RSA and EC) chosen by SNI; renewal end to
# end.  Judges: openssl s_client -verify_return_error, curl --cacert, ps, ss.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/bind.sh"

setup() {
	need nginx curl
	bind_setup

	make_key web1 01 rsa:2048
	issue_token web1 01 web1.test 1001
	put_cert web1 01 "$T/web1-1001.der"
	make_key web2 02 EC:prime256v1
	issue_token web2 02 web2.test 2001
	put_cert web2 02 "$T/web2-2001.der"
	P12=$(free_port 2)
	P1=${P12% *} P2=${P12#* }
	CERT1="$TOKEN;object=web1;type=cert"
}

emit_web1() {
	"$P11KM" bind emit nginx \
		--key "$TOKEN;object=web1;type=private" --listen "127.0.0.1:$P1" --listen "*:$P2" \
		--server-name web1.test --out-dir "$T/b1" --pin-file "$T/web.pin" --pin-source "file:$PIN" \
		--service-user nobody
}
emit_web2() {
	"$P11KM" bind emit nginx \
		--key "$TOKEN;object=web2;type=private" --listen "127.0.0.1:$P1" --server-name web2.test \
		--out-dir "$T/b2" --pin-file "$T/web.pin" --service-user nobody
}

# emit for two keys
test_emit() {
	check "emit web1 on 127.0.0.1 and *:PORT" emit_web1
	check "emit web2 (EC key) on 127.0.0.1" emit_web2
}

# the fork trap: the token was made by root, mode 0700; the workers run as nobody
test_fork_trap() {
	check_fails "bind check: the worker user cannot read the token store" 5 "$P11KM" bind check "$T/b1"
	check_grep "bind check says which store and how to fix it" \
		"user 'nobody' cannot read the SoftHSM token directory .*chmod -R g\+rX" "$T/out"
	open_token_dir nobody
	check "bind check passes once the store is readable (web1)" "$P11KM" bind check "$T/b1"
	check_grep "bind check signed as the service user" 'as the service user after fork' "$T/out"
	check "bind check passes (web2)" "$P11KM" bind check "$T/b2"
}

start_nginx() { # P1 P2
	if [ "$1 $2" != "$P1 $P2" ]; then  # a port was taken meanwhile: emit for the new ones
		P1=$1 P2=$2
		emit_web1 && emit_web2 || return 1
	fi
	OPENSSL_CONF=$T/b1/openssl.cnf nginx -p "$N" -c "$N/nginx.conf"
}

# nginx, configured with what p11km emitted
test_nginx_workers() {
	N=$T/ngx
	nginx_conf "$N" "hello from the token" "$T/b1" "$T/b2"
	check "nginx starts, listening on both ports" start_server "$N/error.log" 2 start_nginx "$P1" "$P2"
	cleanup_add "kill \$(cat '$N/nginx.pid') 2>/dev/null"
	check "nginx -t accepts the emitted config" env OPENSSL_CONF="$T/b1/openssl.cnf" nginx -t -p "$N" -c "$N/nginx.conf"
	master=$(cat "$N/nginx.pid" 2>/dev/null)
	for i in $(seq 300); do   # workers fork and switch user right after start
		[ "$(ps -o user= --ppid "$master" 2>/dev/null | grep -c '^nobody')" = 2 ] && break
		sleep 0.1
	done
	check "master process runs as root" test "$(ps -o user= -p "$master")" = root
	check "two workers, both running as nobody" \
		test "$(ps -o user= --ppid "$master" | grep -c '^nobody')" = 2
}

# what nginx serves: SNI, chains, curl, bind verify
test_served() {
	check "s_client: web1 verifies (chain + name)" s_client_ok "$P1" web1.test
	check "s_client: web2 verifies (chain + name)" s_client_ok "$P1" web2.test
	check "SNI web1 -> the RSA key's certificate" test "$(serial_served "$P1" web1.test)" = 03E9
	check "SNI web2 -> the EC key's certificate" test "$(serial_served "$P1" web2.test)" = 07D1
	check "curl --cacert web1" curl -sSf --cacert "$T/ca/root.pem" --resolve "web1.test:$P1:127.0.0.1" \
		-o "$T/body" "https://web1.test:$P1/"
	check_grep "curl got the page" 'hello from the token' "$T/body"
	check "curl --cacert web2" curl -sSf --cacert "$T/ca/root.pem" --resolve "web2.test:$P1:127.0.0.1" \
		-o /dev/null "https://web2.test:$P1/"
	check "*:PORT binds all addresses (ss)" sh -c "ss -ltnH | grep -qE '(0\.0\.0\.0|\*):$P2 '"
	check "*:PORT serves web1, reached on 127.0.0.1" s_client_ok "$P2" web1.test
	check "bind verify web1" "$P11KM" bind verify "127.0.0.1:$P1" --server-name web1.test \
		--cert "$CERT1" --ca-file "$T/ca/root.pem"
	check_grep "bind verify: same certificate" 'same certificate' "$T/out"
	check_grep "bind verify: chain verifies" 'chain: +verifies' "$T/out"
	check_grep "bind verify: days left" '\(1[89]|20) days left\)' "$T/out"
	check "bind verify web2 on the token URI" "$P11KM" bind verify "127.0.0.1:$P1" \
		--server-name web2.test --cert "$TOKEN;object=web2;type=cert" --ca-file "$T/ca/root.pem"
	check "bind verify *:PORT via 127.0.0.1" "$P11KM" bind verify "127.0.0.1:$P2" \
		--server-name web1.test --cert "$CERT1" --ca-file "$T/ca/root.pem"
	mkdir -p "$T/capath" && cp "$T/ca/root.pem" "$T/capath/" && openssl rehash "$T/capath" 2>/dev/null
	check "bind verify --ca-path (hashed directory)" "$P11KM" bind verify "127.0.0.1:$P1" \
		--server-name web2.test --ca-path "$T/capath"
	check_fails "bind verify --json on a mismatch" 5 "$P11KM" --json bind verify "127.0.0.1:$P1" \
		--server-name web1.test --cert "$T/web2-2001.pem" --ca-file "$T/ca/root.pem"
	cp "$T/out" "$T/verify.json"
	check "bind verify --json: matches false, serial and chain reported" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["matches"] is False and d["serial"] == "03E9" and d["expected_serial"] == "07D1", d
assert d["chain_ok"] is True and d["days_left"] >= 18, d
' "$T/verify.json"
	check_fails "bind verify: nothing listening" 1 "$P11KM" bind verify "127.0.0.1:$(free_port)"
	check_fails "bind verify: web2's certificate is not what web1 serves" 5 "$P11KM" bind verify \
		"127.0.0.1:$P1" --server-name web1.test --cert "$T/web2-2001.pem"
	check_fails "bind verify: a wrong name fails the chain check" 5 "$P11KM" bind verify \
		"127.0.0.1:$P1" --server-name other.test --ca-file "$T/ca/root.pem"
}

# renewal: a new certificate for the same key, installed by 'p11km cert
# install --bind', which also switches the binding nginx reads
test_renewal() {
	issue_token web1 01 web1.test 1002
	check "cert install --bind puts the renewed certificate on the token and in the binding" \
		"$P11KM" cert install "$T/web1-1002.pem" "$TOKEN;object=web1;type=private" \
		--ca-file "$T/ca/root.pem" --pin-source "file:$PIN" --bind "$T/b1"
	p11tool_sm --token-label bind --read-object --type cert --label web1 -o "$T/now.der" >/dev/null 2>&1
	check "the token's certificate 'web1' is the renewed one (pkcs11-tool)" cmp "$T/now.der" "$T/web1-1002.der"
	G=$(openssl x509 -in "$T/web1-1002.pem" | sha256sum | cut -c1-16)
	check_grep "the nginx snippet names the renewed certificate's file" \
		"ssl_certificate \"$T/b1/fullchain-$G.pem\";" "$T/b1/nginx-server.conf"
	check "which holds the renewed certificate" cmp "$T/b1/cert-$G.pem" "$T/web1-1002.pem"
	check "cert.pem is the renewed certificate" cmp "$T/b1/cert.pem" "$T/web1-1002.pem"
	# (the certificate object SoftHSM just wrote is root's: the workers must read it)
	open_token_dir nobody
	check "bind check passes on the switched binding" "$P11KM" bind check "$T/b1"
	check_fails "before reload: bind verify reports the mismatch" 5 "$P11KM" bind verify \
		"127.0.0.1:$P1" --server-name web1.test --cert "$CERT1" --ca-file "$T/ca/root.pem"
	check_grep "the mismatch message says to reload" 'serves serial 03E9.*reload' "$T/err"
	check_grep "  ... after rerunning bind emit, for servers that read certificate files" \
		"needs 'p11km bind emit' again.*then reload" "$T/err"
	OPENSSL_CONF=$T/b1/openssl.cnf nginx -p "$N" -c "$N/nginx.conf" -s reload 2>/dev/null
	for i in $(seq 300); do [ "$(serial_served "$P1" web1.test)" = 03EA ] && break; sleep 0.1; done
	check "after reload: bind verify passes" "$P11KM" bind verify "127.0.0.1:$P1" \
		--server-name web1.test --cert "$CERT1" --ca-file "$T/ca/root.pem"
	check_grep "after reload: the new serial is served" 'serial: +03EA' "$T/out"
	check "after reload: s_client verifies" s_client_ok "$P1" web1.test
	check "after reload: web2 unchanged" test "$(serial_served "$P1" web2.test)" = 07D1
	for i in $(seq 300); do   # the old workers finish and exit
		[ "$(ps -o user= --ppid "$master" | grep -c '^nobody')" = 2 ] && break
		sleep 0.1
	done
	check "after reload: two workers as nobody" \
		test "$(ps -o user= --ppid "$master" | grep -c '^nobody')" = 2
}

# nginx stops
test_stop() {
	kill "$master"
	for i in $(seq 300); do kill -0 "$master" 2>/dev/null || break; sleep 0.1; done
	check "nginx stopped" sh -c "! kill -0 $master 2>/dev/null"
}

run_tests
