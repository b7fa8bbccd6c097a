#!/bin/sh
# Clients that read what p11km wrote: a SoftHSM2 token set up with p11km
# alone (token init, key generate, req new, cert install --out-dir, roots
# install --to token:), then read by the tools servers and users run:
# gnutls-serv/gnutls-cli, curl (libp11 engine) against openssl s_server
# -Verify 1, ssh-keygen -D, p11-kit trust list, certutil (NSS),
# pkcs11-tool -O and p11tool --list-all.  Everything on 127.0.0.1.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

setup() {
	need openssl gnutls-serv gnutls-cli curl ssh-keygen trust certutil modutil pkcs11-tool p11tool python3 ss
	ENGINE=$(openssl version -e | sed 's/^ENGINESDIR: "\(.*\)"$/\1/')/pkcs11.so
	[ -f "$ENGINE" ] || skip_all "libp11's pkcs11 engine is not installed ($ENGINE)"
	softhsm_setup
	M=$SOFTHSM2_MODULE
	new_token web
	PIN=$T/pin-web
	SOPIN=$T/sopin-web
	TOK="pkcs11:token=web"
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	CA=$T/ca
}

# count the certificates a TLS server sends (openssl s_client -showcerts)
sent() { echo | timeout 10 openssl s_client -connect "127.0.0.1:$1" -showcerts 2>/dev/null | grep -c 'BEGIN CERTIFICATE'; }

# the token, made by p11km
test_token() {
	check "key generate srv" "$P11KM" key generate "$TOK" --type ec:p256 --label srv --pin-source "file:$PIN"
	check "req new" "$P11KM" req new "$TOK;object=srv;type=private" --subject CN=localhost \
		-o "$T/srv.csr" --pin-source "file:$PIN"
	openssl x509 -req -in "$T/srv.csr" -CA "$CA/inter.pem" -CAkey "$CA/inter.key" -set_serial 0x2101 \
		-days 30 -extfile "$CA/ca.cnf" -extensions leaf -out "$T/srv.pem" 2>/dev/null
	cat "$T/srv.pem" "$CA/inter.pem" > "$T/reply.pem"
	check "cert install --out-dir" "$P11KM" cert install "$T/reply.pem" "$TOK" --ca-file "$CA/root.pem" \
		--out-dir "$T/srvdir" --pin-source "file:$PIN"
	check "roots install --to token:" "$P11KM" roots install "$CA/root.pem" --to "token:$TOK" \
		--so-pin-source "file:$SOPIN"
	ROOTCN=$(openssl x509 -in "$CA/root.pem" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= //p')
	INTERCN=$(openssl x509 -in "$CA/inter.pem" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= //p')
	KEY="$TOK;object=srv;type=private"
	CERT="$TOK;object=srv;type=cert"
}

gserv() { # CERTSPEC PORT
	gnutls-serv --provider "$M" --x509keyfile "$KEY;pin-source=$PIN" --x509certfile "$1" \
		-p "$2" --echo </dev/null >/dev/null 2>&1 &
	SERVER_PID=$!
	cleanup_add "kill $SERVER_PID"
}
gserv_file() { gserv "$T/srvdir/fullchain.pem" "$1"; }
gserv_uri() { gserv "$CERT" "$1"; }

# gnutls-serv: the key by URI, the chain from p11km's fullchain.pem
test_gnutls_serv() {
	check "gnutls-serv starts with the key by URI and fullchain.pem" start_server "$T/gs1.log" 1 gserv_file
	P1=$PORT
	check_eq "gnutls-serv with fullchain.pem sends leaf + intermediate" "$(sent "$P1")" 2
	check "gnutls-cli verifies that chain up to the root" \
		gnutls-cli --x509cafile "$CA/root.pem" --verify-hostname localhost -p "$P1" 127.0.0.1 </dev/null
	check "gnutls-serv starts with the certificate by URI" start_server "$T/gs2.log" 1 gserv_uri
	check_eq "gnutls-serv with the certificate by URI sends the leaf alone (untrusted intermediate not followed)" \
		"$(sent "$PORT")" 1
}

sserver() {
	openssl s_server -accept "127.0.0.1:$1" -cert "$T/s.pem" -key "$T/s.key" -Verify 1 \
		-CAfile "$T/cas.pem" -verify_return_error -www </dev/null >"$T/sserver.log" 2>&1 &
	SERVER_PID=$!
	cleanup_add "kill $SERVER_PID"
}

# client certificates on the token: curl (libp11 engine), gnutls-cli
test_client_certs() {
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/s.key" \
		-out "$T/s.pem" -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
	cat "$CA/root.pem" "$CA/inter.pem" > "$T/cas.pem"
	check "openssl s_server -Verify 1 starts" start_server "$T/sserver.log" 1 sserver
	# curl sees a pkcs11: --cert/--key and uses OpenSSL's pkcs11 engine; the
	# engine's module is set in a private OpenSSL configuration (else it loads
	# p11-kit-proxy, every registered module)
	cat > "$T/engine.cnf" <<CNF
openssl_conf = conf
[conf]
engines = engines
[engines]
pkcs11 = pkcs11
[pkcs11]
engine_id = pkcs11
dynamic_path = $ENGINE
MODULE_PATH = $M
init = 0
CNF
	check "curl --cert/--key pkcs11: authenticates to s_server -Verify 1" \
		env OPENSSL_CONF="$T/engine.cnf" curl -sS --cacert "$T/s.pem" --cert "$CERT" \
		--key "$KEY;pin-source=file:$PIN" -o "$T/curl.html" "https://127.0.0.1:$PORT/"
	check_grep "...s_server saw p11km's certificate as the client's" "Subject: CN *= *localhost" "$T/curl.html"
	check "gnutls-cli with the client key on the token authenticates too" sh -c \
		'echo "GET / HTTP/1.0" | gnutls-cli --provider "$1" --x509keyfile "$2" --x509certfile "$3" --x509cafile "$4" -p "$5" 127.0.0.1 > "$6"' \
		sh "$M" "$KEY;pin-source=$PIN" "$T/srvdir/cert.pem" "$T/s.pem" "$PORT" "$T/gcli.html"
	check_grep "...s_server saw the client certificate" "Subject: CN *= *localhost" "$T/gcli.html"
}

# ssh-keygen -D: the key, and the CA certificates' keys as clutter
test_ssh_keygen() {
	pkcs11-tool --module "$M" --token-label web --read-object --type pubkey --label srv -o "$T/srv.pub.der" >/dev/null 2>&1
	openssl pkey -pubin -inform DER -in "$T/srv.pub.der" -out "$T/srv.pub.pem" 2>/dev/null
	SSHPUB=$(ssh-keygen -i -m PKCS8 -f "$T/srv.pub.pem" | cut -d' ' -f2)
	check "ssh-keygen -D lists the module's keys" sh -c 'ssh-keygen -D "$1" > "$2"' sh "$M" "$T/ssh.txt"
	grep -qxF "ecdsa-sha2-nistp256 $SSHPUB srv" "$T/ssh.txt" && ok "...the token's public key srv among them" ||
		not_ok "...no 'ecdsa-sha2-nistp256 $SSHPUB srv' in ssh-keygen -D's list"
	check_grep "...and the root's key (roots on the key token clutter the list)" "/CN=$ROOTCN\$" "$T/ssh.txt"
	check_eq "...three keys: srv, root, intermediate" "$(wc -l < "$T/ssh.txt")" 3
	# a separate token (here: a separate SoftHSM2 configuration) for roots keeps it clean
	mkdir "$T/rtokens"
	sed "s|@TOKENDIR@|$T/rtokens|" "$top_srcdir/tokens/softhsm2/softhsm2.conf.in" > "$T/roots.conf"
	SOFTHSM2_CONF=$T/roots.conf "$P11KM" token init --label roots --so-pin-source "file:$SOPIN" \
		--pin-source "file:$PIN" >/dev/null
	check "roots install into a roots token of its own" env SOFTHSM2_CONF="$T/roots.conf" \
		"$P11KM" roots install "$CA/root.pem" --to "token:pkcs11:token=roots" --so-pin-source "file:$SOPIN"
	SOFTHSM2_CONF=$T/roots.conf ssh-keygen -D "$M" > "$T/ssh-roots.txt" 2>/dev/null
	check_grep "...ssh-keygen -D there shows only the root's key" "/CN=$ROOTCN\$" "$T/ssh-roots.txt"
	check_nogrep "...not the server key" " srv\$" "$T/ssh-roots.txt"
}

trust_list() {
	if [ "$(id -u)" != 0 ]; then
		HOME=$T/home trust list --filter="$TOK"
	elif unshare -m true 2>/dev/null; then
		unshare -m sh -c 'mount --bind "$1" /usr/share/p11-kit/modules && trust list --filter="$2"' \
			sh "$T/modules" "$TOK"
	else # no mount namespace (a container): as nobody, on a copy of the token
		mkdir "$T/nobody" && cp -r "$T/tokens" "$T/softhsm2.conf" "$T/home" "$T/nobody/" &&
		sed -i "s|$T/tokens|$T/nobody/tokens|" "$T/nobody/softhsm2.conf" &&
		rm "$T/nobody/home/.config/pkcs11/modules" && cp -r "$T/modules" "$T/nobody/home/.config/pkcs11/" &&
		chown -R nobody "$T/nobody" && chmod 711 "$T" &&
		setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME="$T/nobody/home" \
			SOFTHSM2_CONF="$T/nobody/softhsm2.conf" trust list --filter="$TOK"
	fi
}

# p11-kit trust list with the token as a trust module
test_p11kit_trust() {
	# p11-kit reads no user configuration as root, and has no variable for its
	# module directory: as root a private mount namespace puts a module
	# directory of our own in its place; else ~/.config/pkcs11/modules.
	mkdir -p "$T/modules" "$T/home/.config/pkcs11"
	printf 'module: %s\ntrust-policy: yes\n' "$M" > "$T/modules/softhsm2.module"
	ln -s "$T/modules" "$T/home/.config/pkcs11/modules"
	check "trust list --filter=$TOK (SoftHSM2 as a trust-policy module)" trust_list
	awk '/^ *label:/{sub(/^ *label: /,""); l=$0} /^ *trust:/{print l"|"$2}' "$T/out" > "$T/trust.txt"
	check_grep "...shows the root p11km wrote as an anchor" "^$ROOTCN\\|anchor\$" "$T/trust.txt"
	check_nogrep "...and the intermediate as no anchor" "^$INTERCN\\|anchor\$" "$T/trust.txt"
}

# NSS: trust flags of the nss: store versus roots on the token
test_nss_trust() {
	check "roots install --to nss:" "$P11KM" roots install "$CA/root.pem" --to "nss:$T/nssdb"
	certutil -L -d "sql:$T/nssdb" > "$T/nss.txt" 2>&1
	check_grep "certutil -L: the nss: store's root has C,, (a TLS anchor)" "^$ROOTCN .* C,, *\$" "$T/nss.txt"
	mkdir "$T/nss-token"
	certutil -N -d "sql:$T/nss-token" --empty-password
	modutil -dbdir "sql:$T/nss-token" -add softhsm -libfile "$M" -force >/dev/null 2>&1
	certutil -L -d "sql:$T/nss-token" -h web -f "$PIN" > "$T/nss-token.txt" 2>&1
	check_grep "certutil -L -h web lists the token's root..." "^web:$ROOTCN " "$T/nss-token.txt"
	check_grep "...with no trust flags (NSS ignores CKA_TRUSTED)" "^web:$ROOTCN +,, *\$" "$T/nss-token.txt"
	check_grep "...and the key's certificate as a user certificate" "^web:srv +u,u,u *\$" "$T/nss-token.txt"
}

# pkcs11-tool -O and p11tool --list-all
test_pkcs11_tool_p11tool() {
	pkcs11-tool --module "$M" --token-label web --login --pin "$(cat "$PIN")" -O > "$T/ptool.txt" 2>&1
	for l in srv "$ROOTCN" "$INTERCN"; do
		check_grep "pkcs11-tool -O lists certificate '$l'" "^  label: +$l\$" "$T/ptool.txt"
	done
	check_eq "pkcs11-tool -O: private key, public key, three certificates" \
		"$(grep -cE '^(Private Key|Public Key|Certificate) Object' "$T/ptool.txt")" 5
	GNUTLS_PIN=$(cat "$PIN") p11tool --provider "$M" --login --list-all "$TOK" > "$T/p11tool.txt" 2>&1
	for u in "object=srv;type=private" "object=srv;type=public" "object=srv;type=cert"; do
		check_grep "p11tool --list-all shows $u" "URL: pkcs11:.*token=web;.*$u\$" "$T/p11tool.txt"
	done
	GNUTLS_PIN= p11tool --provider "$M" --list-all-trusted "$TOK" > "$T/p11tool-trusted.txt" 2>&1
	check_grep "p11tool --list-all-trusted shows the root" "Label: $ROOTCN\$" "$T/p11tool-trusted.txt"
	check_nogrep "...and not the intermediate" "Label: $INTERCN\$" "$T/p11tool-trusted.txt"
}

run_tests
