#!/bin/bash
# Quick start, command 1: the Key Manager lifecycle on a throwaway SoftHSM2
# token.  Installs what is missing, builds, runs every step, cleans up:
# key on the token -> request -> a local test CA issues -> install the
# certificate and the CA root -> nginx binding -> nginx on loopback ->
# verify -> renew -> reload -> verify the new serial -> stop.
# Run as root (nginx's workers run as nobody).  P11KM=/path/to/p11km skips
# the install and build steps and uses that binary.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${P11KM:-}" ]; then
	"$top/contrib/deps.sh"
	P11KM="$("$top/contrib/build.sh")/p11km"
fi

D=$(mktemp -d "${TMPDIR:-/tmp}/p11km-demo.XXXXXX")
NGINX_PID=
cleanup() {
	[ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
	rm -rf "$D"
}
trap cleanup EXIT INT TERM
step() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }
say() { printf '   %s\n' "$*"; }
have() { "$P11KM" help --list-commands | grep -q "^$1 "; }
missing=""
skip() { say "SKIPPED: 'p11km $1' is not in this build yet"; missing="$missing '$1'"; }

mkdir -p "$D/tokens"
sed "s|@TOKENDIR@|$D/tokens|" "$top/tokens/softhsm2/softhsm2.conf.in" > "$D/softhsm2.conf"
export SOFTHSM2_CONF="$D/softhsm2.conf"
export P11KM_MODULE=${P11KM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
(umask 077; printf '%s' 'demo-user-pin' > "$D/user.pin"; printf '%s' 'demo-so-pin' > "$D/so.pin")
PINSRC="file:$D/user.pin"

step "1. A throwaway SoftHSM2 token (PINs come from files, never argv)"
run "$P11KM" token init --label p11km-demo --so-pin-source "file:$D/so.pin" --pin-source "$PINSRC"
TOKEN='pkcs11:token=p11km-demo'
say "token 'p11km-demo' initialised in $D/tokens"

step "2. A key pair generated on the token (the private key never leaves it)"
if have "key generate"; then
	KEY=$(run "$P11KM" key generate "$TOKEN" --type ec:p256 --label www --pin-source "$PINSRC")
else
	skip "key generate"
	pkcs11-tool --module "$P11KM_MODULE" --token-label p11km-demo --login --pin demo-user-pin \
		--keypairgen --key-type EC:prime256v1 --label www --id 01 >/dev/null
	KEY="$TOKEN;object=www;type=private"
fi
say "key: $KEY"

step "3. A certificate request signed on the token"
if have "req new"; then
	run "$P11KM" req new "$KEY" --subject "CN=www.demo.test" --san DNS:www.demo.test \
		--pin-source "$PINSRC" -o "$D/www.csr"
	openssl req -in "$D/www.csr" -noout -verify 2>&1 | sed 's/^/   openssl: /'
else
	skip "req new"
fi

step "4. A local test CA (openssl CLI) issues the certificate"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/ca.key" \
	-out "$D/ca.pem" -days 30 -subj "/CN=p11km demo CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
printf 'subjectAltName=DNS:www.demo.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$D/ext.cnf"
issue() { # issue CSR SERIAL OUT
	openssl x509 -req -in "$1" -CA "$D/ca.pem" -CAkey "$D/ca.key" -set_serial "$2" -days 20 \
		-extfile "$D/ext.cnf" -out "$3" 2>/dev/null
}
if [ -f "$D/www.csr" ]; then
	issue "$D/www.csr" 0x1001 "$D/www-1.pem"
	say "issued $(openssl x509 -in "$D/www-1.pem" -noout -serial) for $(openssl x509 -in "$D/www-1.pem" -noout -subject)"
fi

step "5. Install the certificate next to its key, and the CA root"
if [ -f "$D/www-1.pem" ] && have "cert install"; then
	run "$P11KM" cert install "$D/www-1.pem" "$KEY" --ca-file "$D/ca.pem" --pin-source "$PINSRC"
else
	[ -f "$D/www-1.pem" ] || { say "no request, so no certificate to install"; }
	have "cert install" || skip "cert install"
fi
if have "roots install"; then
	run "$P11KM" roots install "$D/ca.pem" --to "pem-bundle:$D/trust.pem" --to "token:$TOKEN" \
		--pin-source "$PINSRC" --so-pin-source "file:$D/so.pin"
else
	skip "roots install"
	cp "$D/ca.pem" "$D/trust.pem"
	say "(the demo uses $D/trust.pem, a copy of the CA certificate, as the trust store)"
fi
CERT="$TOKEN;object=www;type=cert"
if ! "$P11KM" object list "$CERT" >/dev/null 2>&1; then
	say "no certificate on the token: the binding steps need one; stopping here"
	printf '\nDemo stopped early; missing commands:%s\n' "$missing"
	exit 1
fi
"$P11KM" object list "$CERT" 2>/dev/null | sed -n 's/^ *\(serial\|not after\|subject\):/   token cert \1:/p'

step "6. An nginx binding: key by URI through the pkcs11 engine, PIN file for the workers"
PORT=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 12000))
run "$P11KM" bind emit nginx --key "$TOKEN;object=www;type=private" --listen "127.0.0.1:$PORT" \
	--server-name www.demo.test --out-dir "$D/bind" --pin-file "$D/nginx.pin" \
	--pin-source "$PINSRC" --service-user nobody
say "the workers run as nobody: 'bind check' loads the key as nobody after a fork, like nginx"
run "$P11KM" bind check "$D/bind" | grep '^problem' || true
say "fixing what it said: let nobody read the token store"
chmod o+x "$D"; chgrp -R nogroup "$D/tokens"; chmod -R g+rX "$D/tokens"; chmod o+r "$D/softhsm2.conf"
run "$P11KM" bind check "$D/bind" | tail -1

step "7. nginx on 127.0.0.1:$PORT (master as root, two workers as nobody)"
mkdir -p "$D/nginx/html"
echo "served with a key on a token" > "$D/nginx/html/index.html"
chmod -R a+rX "$D/nginx"
cat > "$D/nginx/nginx.conf" <<EOF
include $D/bind/nginx-main.conf;
user nobody nogroup;
worker_processes 2;
pid $D/nginx/nginx.pid;
error_log $D/nginx/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $D/nginx/tmp; proxy_temp_path $D/nginx/tmp;
    fastcgi_temp_path $D/nginx/tmp; uwsgi_temp_path $D/nginx/tmp; scgi_temp_path $D/nginx/tmp;
    include $D/bind/nginx-server.conf;
}
EOF
OPENSSL_CONF="$D/bind/openssl.cnf" nginx -p "$D/nginx" -c "$D/nginx/nginx.conf"
for i in $(seq 300); do [ -s "$D/nginx/nginx.pid" ] && break; sleep 0.1; done
NGINX_PID=$(cat "$D/nginx/nginx.pid")
sleep 0.3
say "nginx master pid $NGINX_PID; workers: $(ps -o user=,pid= --ppid "$NGINX_PID" | tr -s ' \n' ' ')"

step "8. Verify what nginx serves"
run "$P11KM" bind verify "127.0.0.1:$PORT" --server-name www.demo.test --cert "$CERT" --ca-file "$D/trust.pem"
printf '   curl: %s' "$(curl -sS --cacert "$D/trust.pem" --resolve "www.demo.test:$PORT:127.0.0.1" "https://www.demo.test:$PORT/")"
echo

step "9. Renew: a renewal request from the installed certificate, issued and installed"
if have "req renew" && have "cert install"; then
	run "$P11KM" req renew "$CERT" --pin-source "$PINSRC" -o "$D/renew.csr"
	issue "$D/renew.csr" 0x1002 "$D/www-2.pem"
	say "issued $(openssl x509 -in "$D/www-2.pem" -noout -serial)"
	say "--bind switches the binding nginx reads to it, in one atomic rename"
	run "$P11KM" cert install "$D/www-2.pem" "$KEY" --ca-file "$D/trust.pem" --pin-source "$PINSRC" \
		--bind "$D/bind" | grep -E "binding|certificate '"
	say "before the reload, nginx still serves the old certificate:"
	run "$P11KM" bind verify "127.0.0.1:$PORT" --server-name www.demo.test --cert "$CERT" \
		--ca-file "$D/trust.pem" | grep -E 'serial|expected' || say "(exit status $? : mismatch, as expected)"

	step "10. Reload nginx and verify the new serial is served"
	OPENSSL_CONF="$D/bind/openssl.cnf" nginx -p "$D/nginx" -c "$D/nginx/nginx.conf" -s reload 2>/dev/null
	for i in $(seq 300); do
		"$P11KM" bind verify "127.0.0.1:$PORT" --server-name www.demo.test --cert "$CERT" >/dev/null 2>&1 && break
		sleep 0.1
	done
	run "$P11KM" bind verify "127.0.0.1:$PORT" --server-name www.demo.test --cert "$CERT" --ca-file "$D/trust.pem"
else
	have "req renew" || skip "req renew"
	have "cert install" || skip "cert install"
fi

step "11. Stop nginx and clean up"
kill "$NGINX_PID"
for i in $(seq 300); do kill -0 "$NGINX_PID" 2>/dev/null || break; sleep 0.1; done
NGINX_PID=
say "nginx stopped; $D (token, keys, configs) is removed on exit"

if [ -n "$missing" ]; then
	printf '\nDemo finished with steps skipped; missing commands:%s\n' "$missing"
else
	printf '\nDemo finished: the whole lifecycle ran on a throwaway token in %s (now removed).\n' "$D"
fi
