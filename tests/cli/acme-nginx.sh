#!/bin/sh
# http-01 through the server that already runs: a real nginx (workers as
# nobody) with a p11km binding emitted with --acme-webroot serves the
# challenges 'req submit --webroot' writes, and pebble (on 127.0.0.1, real
# validation) fetches them from it.  The first certificate comes through the
# built-in --standalone responder and is installed, bound and served: bind
# verify passes against pebble's root.  Also the emitted Apache snippet.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/acme.sh"
. "$top_srcdir/tests/lib/bind.sh"

setup() {
	need pebble nginx openssl python3 curl
	acme_setup ngx
	HTTPPORT=$(free_port)
	PNAME=pebble
	PEBBLE_ENV="PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0"
	pebble_up "pebble (real validation) starts"
	check "ca add p" "$P11KM" -q ca add p --kind acme --directory "https://127.0.0.1:$P/dir" \
		--ca-file "$T/tls/root.pem" --agree-tos --config-dir "$CFG"
	check "key generate web" "$P11KM" key generate "$TOK" --type ec:p256 --label web --pin-source "file:$PIN"
	check "req new (IP:127.0.0.1)" "$P11KM" req new "$TOK;object=web;type=private" --subject "CN=127.0.0.1" \
		--san IP:127.0.0.1 -o "$T/web.csr" --pin-source "file:$PIN"
	check "req submit --standalone --install (the first certificate)" "$P11KM" req submit "$T/web.csr" \
		"$TOK;object=web;type=private" --ca p --standalone "127.0.0.1:$HTTPPORT" --install \
		--verify-ca-file "$T/root.pem" -o "$T/chain1.pem" --pin-source "file:$PIN" --config-dir "$CFG"
}

emit() { "$P11KM" bind emit nginx --key "$TOK;object=web;type=private" --listen "127.0.0.1:$TLSPORT" \
	--out-dir "$T/b" --pin-file "$T/web.pin" --pin-source "file:$PIN" --service-user nobody \
	--acme-webroot "$WWW" --acme-listen "127.0.0.1:$HTTPPORT"; }

# bind emit --acme-webroot: nginx and Apache snippets
test_acme_webroot_emit() {
	WWW=$T/www
	mkdir -p "$WWW"
	TLSPORT=$(free_port)
	check_fails "--acme-webroot with stunnel: exit 2" 2 "$P11KM" bind emit stunnel --key "$TOK;object=web;type=private" \
		--listen "127.0.0.1:$TLSPORT" --connect 127.0.0.1:1 --acme-webroot "$WWW" --pin-source "file:$PIN"
	check_one_line_error "... one line" "acme-webroot goes with nginx and apache"
	check_fails "--acme-webroot relative: exit 2" 2 "$P11KM" bind emit nginx --key "$TOK;object=web;type=private" \
		--listen "127.0.0.1:$TLSPORT" --acme-webroot www --pin-source "file:$PIN"
	check_one_line_error "... one line" "absolute directory"
	check "bind emit nginx --acme-webroot" emit
	check_grep "the snippet serves the challenges from the webroot" \
		"location \^~ /.well-known/acme-challenge/ \{" "$T/b/nginx-server.conf"
	check_grep "... over plain HTTP on --acme-listen" "listen 127.0.0.1:$HTTPPORT;" "$T/b/nginx-server.conf"
	check "bind emit apache --acme-webroot" "$P11KM" bind emit apache --key "$TOK;object=web;type=private" \
		--listen "127.0.0.1:$TLSPORT" --acme-webroot "$WWW" --out-dir "$T/ba" --pin-file "$T/web.pin" \
		--pin-source "file:$PIN"
	check_grep "apache: an Alias for the challenges" "Alias /.well-known/acme-challenge/ \"$WWW/.well-known/acme-challenge/\"" "$T/ba/apache-vhost.conf"
	check_grep "apache: on *:80 by default" "^Listen 80 http$" "$T/ba/apache-vhost.conf"
}

start_nginx() { # TLSPORT: the ACME port is pebble's httpPort, fixed
	if [ "$1" != "$TLSPORT" ]; then TLSPORT=$1; emit || return 1; fi
	OPENSSL_CONF=$T/b/openssl.cnf nginx -p "$N" -c "$N/nginx.conf"
}

# nginx serves the binding and the challenges
test_nginx_serves() {
	open_token_dir nobody
	chmod o+rx "$WWW"
	N=$T/nginx
	nginx_conf "$N" "hello" "$T/b"
	check "nginx starts with the binding" start_server "$N/error.log" 1 start_nginx "$TLSPORT"
	cleanup_add "kill \$(cat '$N/nginx.pid') 2>/dev/null"
	check "bind verify: nginx serves the installed certificate, the chain verifies to pebble's root" \
		"$P11KM" bind verify "127.0.0.1:$TLSPORT" --cert "$TOK;object=web;type=cert" --ca-file "$T/root.pem"
	check_grep "... same certificate" "same certificate" "$T/out"
	check_fails "nginx answers 404 for a challenge nobody wrote" 22 curl -sf -o /dev/null \
		"http://127.0.0.1:$HTTPPORT/.well-known/acme-challenge/nothing"
	check "nginx redirects everything else to https" sh -c \
		"curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$HTTPPORT/ | grep -qx 301"
}

# the renewal's validation goes through nginx (the responder port is nginx's now)
test_renewal_through_nginx() {
	check "req submit --webroot (validated by pebble through nginx)" "$P11KM" --verbose req submit "$T/web.csr" \
		--ca p --webroot "$WWW" -o "$T/chain2.pem" --config-dir "$CFG"
	check_grep "pebble validated 127.0.0.1" "validated: 127.0.0.1" "$T/err"
	check "the new chain verifies" openssl verify -CAfile "$T/root.pem" -untrusted "$T/chain2.pem" "$T/chain2.pem"
	check_eq "the challenge files are gone from the webroot" "$(find "$WWW" -type f | wc -l)" "0"
}

run_tests
