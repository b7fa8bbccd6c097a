#!/bin/bash
# nginx with a key on an emulated PIV card through ykcs11: the master (root)
# loads the key through the pkcs11 engine, two workers run as nobody and
# sign on the card.  An RSA key (slot 9e) works; with an EC key (slot 9a)
# libp11 0.4 leaves an OpenSSL error behind each good signature, which nginx
# takes for a failed handshake: bind check says so.  The 9c key (a PIN per
# signature) is refused by bind emit.  Judges: openssl s_client
# -verify_return_error, ps.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/bind.sh"  # nginx_conf, and the test CA (certs.sh)
. "$top_srcdir/tests/lib/piv.sh"

# slot SLOT ID TYPE SERIAL: a key in SLOT (id ID) with its certificate (the chain in $T/inst-ID: the
# card holds no intermediates)
slot() {
	"$P11KM" key generate "$TOK" --slot "$1" --type "$3" --so-pin-source "file:$MGM" >/dev/null &&
	shift &&
	"$P11KM" req new "$TOK;id=%$1;type=private" --subject CN=localhost -o "$T/$1.csr" \
		--pin-source "file:$PIN" >/dev/null &&
	openssl req -in "$T/$1.csr" -pubkey -noout > "$T/$1.pub" &&
	issue "$T/ca" "$T/$1.pub" "$T/leaf-$1.pem" localhost "$3" &&
	cat "$T/leaf-$1.pem" "$T/ca/inter.pem" > "$T/reply-$1.pem" &&
	"$P11KM" cert install "$T/reply-$1.pem" "$TOK;id=%$1;type=private" --ca-file "$T/ca/root.pem" \
		--so-pin-source "file:$MGM" --out-dir "$T/inst-$1" >/dev/null
}
# emit ID PORT: the nginx binding of slot ID's key in $T/b-ID
emit() {
	"$P11KM" bind emit nginx --key "$TOK;id=%$1;type=private" --listen "127.0.0.1:$2" \
		--server-name localhost --cert "$T/inst-$1/fullchain.pem" --out-dir "$T/b-$1" \
		--pin-file "$T/web.pin" --pin-source "file:$PIN" --service-user nobody
}

setup() {
	need openssl yubico-piv-tool nginx
	piv_test_card
	ca_setup "$T/ca" || { echo "# no test CA"; exit 99; }
}

# keys in slots 9a, 9e and 9c: bind emit refuses 9c's and 9a's
test_slots_and_refusals() {
	check "slot 9a: an EC key and its certificate" slot 9a 01 ec:p256 0x3001
	check "slot 9e: an RSA key and its certificate" slot 9e 04 rsa:2048 0x3004
	check "slot 9c: a key with a PIN per signature" "$P11KM" key generate "$TOK" --slot 9c \
		--so-pin-source "file:$MGM"
	check_fails "bind emit refuses the 9c key (exit 1)" 1 "$P11KM" bind emit nginx --key "$TOK;id=%02;type=private" \
		--listen 127.0.0.1:8443 --out-dir "$T/b9c" --pin-file "$T/b9c.pin" --pin-source "file:$PIN"
	check_one_line_error "...saying why" "CKA_ALWAYS_AUTHENTICATE"
	check_fails "bind emit nginx with the 9a key: refused (exit 1)" 1 emit 01 8443
	check_one_line_error "...the engine leaves an error behind, which nginx takes for a failed handshake" \
		"signs through the engine but the engine leaves an OpenSSL error behind .*nginx fails every handshake"
	[ -e "$T/b-01" ] && not_ok "...but it wrote the binding" || ok "...and writes no binding"
}

# bind emit takes the certificate in the key's slot
test_cert_from_slot() {
	check "bind emit without --cert takes the certificate in the key's slot" "$P11KM" bind emit nginx \
		--key "$TOK;id=%04;type=private" --listen 127.0.0.1:8443 --out-dir "$T/b-plain" \
		--pin-file "$T/plain.pin" --pin-source "file:$PIN"
	check_eq "...the card's, not the attestation or the placeholder" \
		"$(openssl x509 -in "$T/b-plain/cert.pem" -noout -serial)" "serial=3004"
}

start_nginx() {
	if [ "$1" != "$PORT" ]; then PORT=$1; emit 04 "$PORT" >/dev/null || return 1; fi
	OPENSSL_CONF=$T/b-04/openssl.cnf nginx -p "$N" -c "$N/nginx.conf"
}

# nginx with the 9e key, workers as nobody
test_nginx() {
	PORT=$(free_port 1)
	check "bind emit nginx with the 9e key, workers as nobody" emit 04 "$PORT"
	check "bind check: the 9e key signs through the engine as nobody after fork" "$P11KM" bind check "$T/b-04"
	check_grep "...it says so" "^ok: the key signs through the engine as the service user after fork" "$T/out"
	N=$T/ngx
	chmod o+x "$T"
	nginx_conf "$N" "hello from the card" "$T/b-04"
	check "nginx starts with the card's key" start_server "$N/error.log" 1 start_nginx "$PORT"
	cleanup_add "kill \$(cat '$N/nginx.pid') 2>/dev/null"
	master=$(cat "$N/nginx.pid" 2>/dev/null)
	for i in $(seq 300); do
		[ "$(ps -o user= --ppid "$master" 2>/dev/null | grep -c '^nobody')" = 2 ] && break
		sleep 0.1
	done
	check "two workers, both running as nobody" test "$(ps -o user= --ppid "$master" | grep -c '^nobody')" = 2
	for i in 1 2 3 4; do  # several handshakes: each signed on the card by a worker
		check "s_client $i: the chain and the name verify" openssl s_client -connect "127.0.0.1:$PORT" \
			-servername localhost -verify_hostname localhost -CAfile "$T/ca/root.pem" \
			-verify_return_error </dev/null
		check_grep "...verified" "Verify return code: 0 \(ok\)" "$T/out"
	done
	check_eq "the served certificate is the one in slot 9e" \
		"$(openssl s_client -connect "127.0.0.1:$PORT" -servername localhost </dev/null 2>/dev/null |
			openssl x509 -noout -serial)" "serial=3004"
}

run_tests
