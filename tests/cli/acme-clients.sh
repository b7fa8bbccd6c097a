#!/bin/sh
# Cross-check: the same token-signed CSR that 'p11km req submit' sends is
# issued by pebble (127.0.0.1) through two independent ACME clients, lego
# 4.9 (--csr run) and certbot 2.1 (certonly --csr), and the three leaves
# carry the token key and the CSR's name.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/acme.sh"

setup() {
	need pebble lego certbot openssl python3 curl
	acme_setup cli
	HTTPPORT=$(free_port)
	PNAME=pebble
	PEBBLE_ENV="PEBBLE_VA_ALWAYS_VALID=1 PEBBLE_WFE_NONCEREJECT=0"
	pebble_up "pebble starts"
	DIRURL="https://127.0.0.1:$P/dir"
	check "key generate web" "$P11KM" key generate "$TOK" --type ec:p256 --label web --pin-source "file:$PIN"
	check "req new web.example.test" "$P11KM" req new "$TOK;object=web;type=private" \
		--subject "CN=web.example.test" --san DNS:web.example.test -o "$T/web.csr" --pin-source "file:$PIN"
	openssl req -in "$T/web.csr" -outform DER -out "$T/web.der"
	openssl req -in "$T/web.csr" -noout -pubkey > "$T/csr.pub"
}

# p11km req submit
test_p11km_submit() {
	check "ca add p" "$P11KM" -q ca add p --kind acme --directory "$DIRURL" --ca-file "$T/tls/root.pem" \
		--agree-tos --config-dir "$CFG"
	mkdir -p "$T/www"
	check "p11km req submit" "$P11KM" req submit "$T/web.csr" --ca p --webroot "$T/www" -o "$T/p11km.pem" \
		--config-dir "$CFG"
}

# lego and certbot with the same CSR
test_lego_certbot() {
	check "lego --csr run (the same CSR)" env LEGO_CA_CERTIFICATES="$T/tls/root.pem" lego \
		--server "$DIRURL" --email ops@example.test --accept-tos --path "$T/lego" --csr "$T/web.csr" \
		--http --http.port "127.0.0.1:$HTTPPORT" run
	check "certbot certonly --csr (the same CSR)" env REQUESTS_CA_BUNDLE="$T/tls/root.pem" certbot certonly \
		--non-interactive --agree-tos -m ops@example.test --server "$DIRURL" --csr "$T/web.der" \
		--standalone --http-01-address 127.0.0.1 --http-01-port "$HTTPPORT" \
		--config-dir "$T/certbot" --work-dir "$T/certbot/work" --logs-dir "$T/certbot/logs" \
		--cert-path "$T/certbot.pem" --fullchain-path "$T/certbot-full.pem" --chain-path "$T/certbot-chain.pem"
	cp "$T/lego/certificates/web.example.test.crt" "$T/lego.pem" 2>/dev/null
}

# three leaves: the token key, the name, three orders
test_three_leaves() {
	for c in p11km lego certbot-full; do
		check "$c: the chain verifies against pebble's root" openssl verify -CAfile "$T/root.pem" \
			-untrusted "$T/$c.pem" "$T/$c.pem"
		openssl x509 -in "$T/$c.pem" -noout -pubkey > "$T/$c.pub" 2>/dev/null
		check "$c: the leaf carries the token key of the CSR" cmp "$T/csr.pub" "$T/$c.pub"
		openssl x509 -in "$T/$c.pem" -noout -ext subjectAltName > "$T/$c.san" 2>/dev/null
		check_grep "$c: the leaf names web.example.test" "DNS:web.example.test" "$T/$c.san"
	done
	s1=$(openssl x509 -in "$T/p11km.pem" -noout -serial)
	s2=$(openssl x509 -in "$T/lego.pem" -noout -serial)
	s3=$(openssl x509 -in "$T/certbot.pem" -noout -serial)
	[ "$s1" != "$s2" ] && [ "$s2" != "$s3" ] && [ "$s1" != "$s3" ] && ok "three certificates, three orders" ||
		not_ok "serials: $s1 $s2 $s3"
}

run_tests
