#!/bin/bash
# bind + real Apache httpd (mod_ssl): SSLCryptoDevice pkcs11, key and
# certificate both by token URI, workers as www-data (prefork, several
# processes).  Judges: openssl s_client -verify_return_error, curl --cacert.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/bind.sh"

setup() {
	need apache2 curl
	MODS=/usr/lib/apache2/modules
	[ -f "$MODS/mod_ssl.so" ] || skip_all "mod_ssl not found"
	bind_setup

	make_key site 0a EC:prime256v1
	issue_token site 0a site.test 3001
	put_cert site 0a "$T/site-3001.der"
}

emit_site() {
	"$P11KM" bind emit apache --key "$TOKEN;object=site;type=private" \
		--listen "127.0.0.1:$P" --server-name site.test --out-dir "$T/ap" \
		--pin-file "$T/ap.pin" --pin-source "file:$PIN" --service-user www-data
}

# emit apache, bind check
test_emit_check() {
	P=$(free_port)
	check "emit apache" emit_site
	V=$T/ap/apache-vhost.conf
	check_grep "SSLCryptoDevice pkcs11" '^SSLCryptoDevice pkcs11$' "$V"
	check_grep "certificate from the binding's file" "^    SSLCertificateFile \"$T/ap/cert-[0-9a-f]{16}\.pem\"\$" "$V"
	check_grep "key by URI, by id" '^    SSLCertificateKeyFile "pkcs11:.*id=%0A;type=private\?pin-source=' "$V"
	check "PIN file owned by www-data" test "$(stat -c %U:%a "$T/ap.pin")" = www-data:400

	check_fails "bind check: www-data cannot read the token store yet" 5 "$P11KM" bind check "$T/ap"
	open_token_dir www-data
	check "bind check passes" "$P11KM" bind check "$T/ap"
}

start_apache() { # PORT
	if [ "$1" != "$P" ]; then P=$1; emit_site || return 1; fi  # the port was taken meanwhile
	apache2 -f "$A/httpd.conf" -k start
}

# Apache serves the token key, workers as www-data
test_apache_serves() {
	A=$T/httpd
	mkdir -p "$A/htdocs"
	echo "apache serves a token key" > "$A/htdocs/index.html"
	chmod -R a+rX "$A"
	cat > "$A/httpd.conf" <<EOF
ServerRoot $A
ServerName localhost
PidFile $A/httpd.pid
ErrorLog $A/error.log
LogLevel warn
Mutex file:$A default
LoadModule mpm_prefork_module $MODS/mod_mpm_prefork.so
LoadModule authz_core_module $MODS/mod_authz_core.so
LoadModule socache_shmcb_module $MODS/mod_socache_shmcb.so
LoadModule ssl_module $MODS/mod_ssl.so
User www-data
Group www-data
StartServers 2
MinSpareServers 1
MaxSpareServers 3
DocumentRoot $A/htdocs
<Directory $A/htdocs>
    Require all granted
</Directory>
SSLSessionCache shmcb:$A/ssl_scache(512000)
Include $V
EOF
	export OPENSSL_CONF=$T/ap/openssl.cnf
	check "apache2 -t accepts the emitted config" apache2 -f "$A/httpd.conf" -t
	check "apache2 starts, listening" start_server "$A/error.log" 1 start_apache "$P"
	unset OPENSSL_CONF
	cleanup_add "kill \$(cat '$A/httpd.pid') 2>/dev/null"
	for i in $(seq 300); do [ -s "$A/httpd.pid" ] && break; sleep 0.1; done
	main=$(cat "$A/httpd.pid")
	for i in $(seq 300); do
		[ "$(ps -o user= --ppid "$main" 2>/dev/null | grep -c '^www-data')" -ge 2 ] && break
		sleep 0.1
	done
	check "children run as www-data" test "$(ps -o user= --ppid "$main" | grep -c '^www-data')" -ge 2

	check "s_client verifies (chain + name)" s_client_ok "$P" site.test
	check "the served certificate is the token's" test "$(serial_served "$P" site.test)" = 0BB9
	for i in 1 2 3 4; do   # several connections: more than one worker process
		check "curl --cacert ($i)" curl -sSf --cacert "$T/ca/root.pem" --resolve "site.test:$P:127.0.0.1" \
			-o "$T/body" "https://site.test:$P/index.html"
	done
	check_grep "curl got the page" 'apache serves a token key' "$T/body"
	check "bind verify" "$P11KM" bind verify "127.0.0.1:$P" --server-name site.test \
		--cert "$TOKEN;object=site;type=cert" --ca-file "$T/ca/root.pem"
	check_grep "bind verify: same certificate" 'same certificate' "$T/out"
}

# renewal: a new certificate on the token; the same emit switches the
# binding to it (Apache reads it at reload)
test_renewal() {
	issue_token site 0a site.test 3002
	put_cert site 0a "$T/site-3002.der"
	check "re-emit switches the binding to the new certificate" "$P11KM" bind emit apache \
		--key "$TOKEN;object=site;type=private" --listen "127.0.0.1:$P" --server-name site.test \
		--out-dir "$T/ap" --pin-file "$T/ap.pin" --service-user www-data
	check_fails "before reload: bind verify reports the mismatch" 5 "$P11KM" bind verify "127.0.0.1:$P" \
		--server-name site.test --cert "$TOKEN;object=site;type=cert" --ca-file "$T/ca/root.pem"
	OPENSSL_CONF=$T/ap/openssl.cnf apache2 -f "$A/httpd.conf" -k graceful
	for i in $(seq 300); do [ "$(serial_served "$P" site.test)" = 0BBA ] && break; sleep 0.1; done
	check "after reload: bind verify passes" "$P11KM" bind verify "127.0.0.1:$P" --server-name site.test \
		--cert "$TOKEN;object=site;type=cert" --ca-file "$T/ca/root.pem"
	check_grep "after reload: the new serial" 'serial: +0BBA' "$T/out"

	kill "$main"
	for i in $(seq 300); do kill -0 "$main" 2>/dev/null || break; sleep 0.1; done
	check "apache stopped" sh -c "! kill -0 $main 2>/dev/null"
}

emit_acme() {
	"$P11KM" bind emit apache --key "$TOKEN;object=site;type=private" --listen "127.0.0.1:$P" \
		--server-name site.test --out-dir "$T/ap2" --pin-file "$T/ap2.pin" --pin-source "file:$PIN" \
		--service-user www-data --acme-webroot "$WWW" --acme-listen "127.0.0.1:$HP"
}
start_apache2() { OPENSSL_CONF=$T/ap2/openssl.cnf apache2 -f "$A/httpd2.conf" -k start; }

# --acme-webroot: Apache loads the emitted http-01 virtual host and serves
# what 'req submit --webroot' writes (here: a file the test writes)
test_acme_webroot() {
	WWW=$T/www
	mkdir -p "$WWW/.well-known/acme-challenge"
	echo "token.thumbprint" > "$WWW/.well-known/acme-challenge/tok-1"
	chmod -R a+rX "$WWW"
	read -r P HP <<EOF2
$(free_port 2)
EOF2
	check "emit apache --acme-webroot" emit_acme
	sed -e "s|^Include $V\$|LoadModule alias_module $MODS/mod_alias.so\nInclude $T/ap2/apache-vhost.conf|" \
		-e "s|$A/httpd.pid|$A/httpd2.pid|" -e "s|$A/error.log|$A/error2.log|" "$A/httpd.conf" > "$A/httpd2.conf"
	check "apache2 -t accepts the config with the http-01 virtual host" env OPENSSL_CONF="$T/ap2/openssl.cnf" \
		apache2 -f "$A/httpd2.conf" -t
	check "apache2 starts with it" start_server "$A/error2.log" 1 start_apache2 "$P"
	cleanup_add "kill \$(cat '$A/httpd2.pid') 2>/dev/null"
	check "apache serves the challenge over plain HTTP" curl -sSf -o "$T/chal" \
		"http://127.0.0.1:$HP/.well-known/acme-challenge/tok-1"
	check_grep "... with the file's content" '^token\.thumbprint$' "$T/chal"
	check "... and redirects everything else to https (301), as the nginx snippet does" sh -c \
		"curl -s -o /dev/null -H 'Host: site.test:$HP' -w '%{http_code} %{redirect_url}' http://127.0.0.1:$HP/index.html > '$T/redir'"
	check_eq "... to the same host (without the port) and path on https" "$(cat "$T/redir")" \
		"301 https://site.test/index.html"
	check "... while TLS is still served from the token key" s_client_ok "$P" site.test
	kill "$(cat "$A/httpd2.pid")" 2>/dev/null
}

run_tests
