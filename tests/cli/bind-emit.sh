#!/bin/bash
# bind emit: what is written, what is refused before anything is written.
# Judges: openssl through the emitted openssl.cnf (the engine loads the
# emitted URI and its public key equals pkcs11-tool's), file modes, od.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/bind.sh"

setup() {
	bind_setup

	make_key web1 01 rsa:2048
	issue_token web1 01 web1.test 1001
	put_cert web1 01 "$T/web1-1001.der"
	make_key web2 02 EC:prime256v1
	issue_token web2 02 web2.test 2001
	put_cert web2 02 "$T/web2-2001.der"
	KEY1="$TOKEN;object=web1;type=private"
}

# nginx to a directory
test_nginx_dir() {
	check "emit nginx writes a binding" "$P11KM" bind emit nginx --key "$KEY1" \
		--listen 127.0.0.1:8443 --listen '[::1]:8443' --listen '*:9443' --server-name web1.test \
		--out-dir "$T/ng" --pin-file "$T/srv.pin" --pin-source "file:$PIN" --service-user nobody
	# the generation: the first 16 hex digits of the SHA-256 of the leaf (PEM)
	G1=$(openssl x509 -in "$T/web1-1001.pem" | sha256sum | cut -c1-16)
	for f in nginx-server.conf nginx-main.conf openssl.cnf environment systemd-dropin.conf \
		cert.pem fullchain.pem p11km-binding.conf "cert-$G1.pem" "fullchain-$G1.pem"; do
		check "file $f written" test -s "$T/ng/$f"
	done
	S=$T/ng/nginx-server.conf
	check_grep "listen on IPv4" '^    listen 127\.0\.0\.1:8443 ssl;$' "$S"
	check_grep "listen on IPv6" '^    listen \[::1\]:8443 ssl;$' "$S"
	check_grep "listen on all addresses" '^    listen \*:9443 ssl;$' "$S"
	check_grep "server_name" '^    server_name web1\.test;$' "$S"
	check_grep "key by engine URI, by id" '^    ssl_certificate_key "engine:pkcs11:pkcs11:.*token=bind;id=%01;type=private\?pin-source=' "$S"
	check_nogrep "no label in the URI (labels move on a rekey; ids never change meaning)" 'object=' "$S"
	check_nogrep "no pin-value anywhere" 'pin-value' "$T/ng/p11km-binding.conf"
	check_nogrep "no slot-id / module-path in the URI" 'slot-|module-' "$S"
	check_grep "this generation's certificate file referenced" "ssl_certificate \"$T/ng/fullchain-$G1.pem\";" "$S"
	check "fullchain.pem is a copy of it" cmp "$T/ng/fullchain.pem" "$T/ng/fullchain-$G1.pem"
	check_grep "workers keep SOFTHSM2_CONF" '^env SOFTHSM2_CONF;$' "$T/ng/nginx-main.conf"
	check_grep "engine: init = 1" '^init = 1$' "$T/ng/openssl.cnf"
	check_grep "engine: MODULE_PATH" "^MODULE_PATH = $SOFTHSM2_MODULE\$" "$T/ng/openssl.cnf"
	check_grep "engine: dynamic_path exists" '^dynamic_path = /.*pkcs11\.so$' "$T/ng/openssl.cnf"
	check "engine: dynamic_path is readable" test -r "$(sed -n 's/^dynamic_path = //p' "$T/ng/openssl.cnf")"
	check_grep "drop-in sets OPENSSL_CONF" "^Environment=OPENSSL_CONF=$T/ng/openssl.cnf\$" "$T/ng/systemd-dropin.conf"
	check_grep "environment file" "^OPENSSL_CONF=$T/ng/openssl.cnf\$" "$T/ng/environment"

	# the certificate files hold the token's certificate (pkcs11-tool reads it)
	p11tool_sm --token-label bind --read-object --type cert --label web1 -o "$T/tokcert.der" >/dev/null 2>&1
	openssl x509 -inform DER -in "$T/tokcert.der" -out "$T/tokcert.pem"
	check "cert.pem is the token's certificate" cmp "$T/tokcert.pem" "$T/ng/cert.pem"

	# the PIN file: mode 0400, owner nobody, the PIN and no newline
	check "PIN file mode 0400" test "$(stat -c %a "$T/srv.pin")" = 400
	check "PIN file owned by the service user" test "$(stat -c %U "$T/srv.pin")" = nobody
	check "PIN file holds the PIN, no newline" test "$(od -An -c "$T/srv.pin" | tr -d ' ')" = 1234
	check "PIN file has no trailing newline" test "$(tail -c1 "$T/srv.pin" | od -An -tx1 | tr -d ' ')" != 0a

	# the emitted URI works in openssl with the emitted openssl.cnf: same public key
	URI=$(sed -n 's/.*ssl_certificate_key "engine:pkcs11:\(.*\)";/\1/p' "$S")
	OPENSSL_CONF=$T/ng/openssl.cnf openssl pkey -engine pkcs11 -inform engine -in "$URI" \
		-pubout -out "$T/engine.pub" >/dev/null 2>&1
	check "openssl loads the emitted key URI through the emitted openssl.cnf" \
		cmp "$T/engine.pub" "$T/web1.pub.pem"
}

# stdout, --json, other flavours
test_stdout_json_flavours() {
	check "emit apache to stdout" "$P11KM" bind emit apache --key "$KEY1" --listen 127.0.0.1:8443 \
		--pin-file "$T/srv.pin"
	cp "$T/out" "$T/apache.out"
	check_grep "apache: SSLCryptoDevice pkcs11" '^SSLCryptoDevice pkcs11$' "$T/apache.out"
	check_grep "apache: certificate from this generation's file" "^    SSLCertificateFile \"/etc/p11km/bind/apache/cert-$G1.pem\"\$" "$T/apache.out"
	check_grep "apache: key by URI, by id" '^    SSLCertificateKeyFile "pkcs11:.*token=bind;id=%01;type=private\?pin-source=' "$T/apache.out"
	check_grep "apache: VirtualHost" '^<VirtualHost 127\.0\.0\.1:8443>$' "$T/apache.out"
	check "nothing written without --out-dir" test ! -e /etc/p11km/bind/apache
	check "emit stunnel --json" "$P11KM" --json bind emit stunnel --key "$TOKEN;object=web2;type=private" \
		--listen 127.0.0.1:8443 --connect 127.0.0.1:8080 --out-dir "$T/st" --pin-file "$T/srv.pin"
	cp "$T/out" "$T/emit.json"
	check "json parses, lists files and next commands" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["server"] == "stunnel"
paths = [f["path"] for f in d["files"]]
assert sys.argv[2] + "/stunnel.conf" in paths and sys.argv[2] + "/openssl.cnf" in paths, paths
assert any("stunnel" in n for n in d["next"]) and any("bind check" in n for n in d["next"])
' "$T/emit.json" "$T/st"
	check_grep "stunnel: engine" '^engine = pkcs11$' "$T/st/stunnel.conf"
	check_grep "stunnel: key by URI, by id" '^key = pkcs11:.*id=%02;type=private' "$T/st/stunnel.conf"
	G2=$(openssl x509 -in "$T/web2-2001.pem" | sha256sum | cut -c1-16)
	check_grep "stunnel: certificate from this generation's file" "^cert = $T/st/fullchain-$G2.pem\$" "$T/st/stunnel.conf"
	check "emit openssl-conf" "$P11KM" bind emit openssl-conf --key "$KEY1" --out-dir "$T/oc" --pin-file "$T/srv.pin"
	check "openssl-conf: the engine config" test -s "$T/oc/openssl.cnf"
	check "openssl-conf: no server snippet" test ! -e "$T/oc/nginx-server.conf"
}

# an intermediate CA on the token: the chain goes to chain.pem / fullchain.pem
test_intermediate_chain() {
	# the test CA's intermediate (tests/lib/certs.sh) issues web3
	cp "$T/ca/inter.pem" "$T/int.pem"
	openssl x509 -in "$T/int.pem" -outform DER -out "$T/int.der"
	openssl x509 -in "$T/ca/root.pem" -outform DER -out "$T/ca.der"
	make_key web3 03 EC:prime256v1
	p11tool_sm --token-label bind --read-object --type pubkey --label web3 -o "$T/web3.pub.der" >/dev/null 2>&1
	openssl pkey -pubin -inform DER -in "$T/web3.pub.der" -out "$T/web3.pub.pem"
	issue "$T/ca" "$T/web3.pub.pem" "$T/web3.pem" web3.test 3001 server 5
	openssl x509 -in "$T/web3.pem" -outform DER -out "$T/web3.der"
	put_cert web3 03 "$T/web3.der"
	put_cert inter 77 "$T/int.der"
	put_cert root 78 "$T/ca.der"
	check "emit nginx for a certificate issued by an intermediate" "$P11KM" bind emit nginx \
		--key "$TOKEN;object=web3;type=private" --listen 127.0.0.1:8443 --out-dir "$T/ch" \
		--pin-file "$T/srv.pin"
	check "chain.pem is the intermediate from the token (no root)" cmp "$T/ch/chain.pem" "$T/int.pem"
	check "fullchain.pem = cert + intermediate" cmp "$T/ch/fullchain.pem" <(cat "$T/web3.pem" "$T/int.pem")
	check "openssl verifies cert.pem with chain.pem up to the root" \
		openssl verify -CAfile "$T/ca/root.pem" -untrusted "$T/ch/chain.pem" "$T/ch/cert.pem"
	check "emit apache: chain from the token in a file" "$P11KM" bind emit apache \
		--key "$TOKEN;object=web3;type=private" --listen 127.0.0.1:8443 --out-dir "$T/cha" \
		--pin-file "$T/srv.pin"
	G3=$(openssl x509 -in "$T/web3.pem" | sha256sum | cut -c1-16)
	check_grep "apache: SSLCertificateChainFile" "^    SSLCertificateChainFile \"$T/cha/chain-$G3.pem\"\$" "$T/cha/apache-vhost.conf"
	check "apache: chain.pem is the intermediate" cmp "$T/cha/chain.pem" "$T/int.pem"
	check "emit with --cert as a token URI" "$P11KM" bind emit apache \
		--key "$TOKEN;object=web3;type=private" --cert "$TOKEN;object=web3;type=cert" \
		--listen 127.0.0.1:8443 --pin-file "$T/srv.pin"
	check_grep "--cert URI: the certificate goes into the binding as a file" "SSLCertificateFile \"/etc/p11km/bind/apache/cert-$G3.pem\"" "$T/out"
}

# a binding is written all or none
test_all_or_none() {
	# The last rename of a second emit (the last file of the set going in place)
	# fails: every file keeps the first run's content (a server config next to a
	# cert.pem or openssl.cnf of another run is broken), no temporary or backup
	# file is left.  The renames are counted in a clean run under strace first.
	if command -v strace >/dev/null 2>&1; then
		EMIT2="bind emit nginx --key $KEY1 --listen 127.0.0.1:8444 --server-name other.test
		--out-dir $T/ng --pin-file $T/srv.pin --pin-source file:$PIN"
		cp -a "$T/ng" "$T/ng.orig"
		# shellcheck disable=SC2086
		ASAN_OPTIONS=detect_leaks=0 strace -f -qq -o "$T/renames" -e trace=rename "$P11KM" $EMIT2 >/dev/null 2>&1
		NREN=$(grep -c 'rename(' "$T/renames")
		rm -rf "$T/ng"; cp -a "$T/ng.orig" "$T/ng"
		(cd "$T/ng" && ls -A && cat ./*) > "$T/ng.before"
		# shellcheck disable=SC2086
		ASAN_OPTIONS=detect_leaks=0 strace -f -o /dev/null -e trace=rename \
			-e inject=rename:error=EIO:when="$NREN" "$P11KM" $EMIT2 >/dev/null 2>"$T/err"
		check_eq "rename $NREN (the last) fails: emit fails" "$?" 1
		check_grep "rename $NREN fails: the error says what could not be replaced" 'unable to replace' "$T/err"
		(cd "$T/ng" && ls -A && cat ./*) > "$T/ng.after"
		check "rename $NREN fails: every file of the binding keeps its old content" \
			cmp "$T/ng.before" "$T/ng.after"
		check_eq "and no temporary file is left" "$(find "$T/ng" -name '*.p11km-*' | wc -l)" 0
		# a file system without hard links (link() fails with EPERM, as on vfat):
		# the old content is kept as a copy instead; the same rollback holds
		# shellcheck disable=SC2086
		ASAN_OPTIONS=detect_leaks=0 strace -f -o /dev/null -e trace=rename,link \
			-e inject=link:error=EPERM -e inject=rename:error=EIO:when="$NREN" \
			"$P11KM" $EMIT2 >/dev/null 2>"$T/err"
		check_eq "no hard links, rename $NREN fails: emit fails" "$?" 1
		(cd "$T/ng" && ls -A && cat ./*) > "$T/ng.after"
		check "no hard links, rename $NREN fails: every file keeps its old content" \
			cmp "$T/ng.before" "$T/ng.after"
		check_eq "no hard links: no temporary file is left" "$(find "$T/ng" -name '*.p11km-*' | wc -l)" 0
		# shellcheck disable=SC2086
		(umask 077; ASAN_OPTIONS=detect_leaks=0 strace -f -o /dev/null -e trace=link \
			-e inject=link:error=EPERM "$P11KM" $EMIT2 >/dev/null 2>"$T/err")
		check_eq "no hard links: emit succeeds" "$?" 0
		check_grep "no hard links: the new binding is in place" 'server_name other\.test;' "$T/ng/nginx-server.conf"
		check_eq "replaced files keep mode 0644 (umask 077)" \
			"$(stat -c %a "$T/ng/nginx-server.conf" "$T/ng/cert.pem" | sort -u)" 644
		check_eq "no hard links: no temporary file is left" "$(find "$T/ng" -name '*.p11km-*' | wc -l)" 0
		rm -rf "$T/ng"; cp -a "$T/ng.orig" "$T/ng"
		# a crash (SIGKILL) in the middle of the commit: each file holds its old or
		# its new content, never a part; the next run removes the leftover copies,
		# says so, and completes the binding
		# shellcheck disable=SC2086
		ASAN_OPTIONS=detect_leaks=0 strace -f -o /dev/null -e trace=rename \
			-e inject=rename:signal=KILL:when=$((NREN - 3)) "$P11KM" $EMIT2 >/dev/null 2>&1
		nleft=$(find "$T/ng" -name '*.p11km-*' | wc -l)
		[ "$nleft" -gt 0 ] && ok "killed half way: $nleft temporary/backup files left" ||
			not_ok "killed half way: no leftovers (the kill did not hit the commit)"
		cp -a "$T/ng" "$T/ng.crashed"
		# shellcheck disable=SC2086
		check "the next run succeeds" "$P11KM" $EMIT2
		check_grep "and says it removed what the interrupted run left" \
			"removed '$T/ng/[^']*\.p11km-[A-Za-z0-9]{6}', left next to .* by an interrupted p11km run" "$T/err"
		check_eq "no temporary or backup file is left" "$(find "$T/ng" -name '*.p11km-*' | wc -l)" 0
		mixed=0; bad=""
		for f in $(cd "$T/ng.orig" && ls); do
			if cmp -s "$T/ng.crashed/$f" "$T/ng.orig/$f"; then :
			elif cmp -s "$T/ng.crashed/$f" "$T/ng/$f"; then mixed=$((mixed + 1))
			else bad="$bad $f"; fi
		done
		check_eq "after the crash every file was whole: old or new ($mixed new)" "$bad" ""
		rm -rf "$T/ng" "$T/ng.crashed"; cp -a "$T/ng.orig" "$T/ng"
	else
		not_ok "strace is missing (CI installs it)"
	fi
}

refuse() { # refuse DESC STATUS PATTERN args...
	_d=$1 _s=$2 _p=$3; shift 3
	rm -rf "$T/refused"
	check_fails "$_d" "$_s" "$P11KM" bind emit "$@" --out-dir "$T/refused"
	check_grep "$_d: says why" "$_p" "$T/err"
	check "$_d: nothing written" test ! -e "$T/refused"
}
flush_tpm() { for _f in -t -s -l; do tpm2_flushcontext $_f >/dev/null 2>&1; done; }

# refusals: exit status, one-line reason, nothing written
test_refusals() {
	refuse "haproxy cannot load token keys" 1 'HAProxy.*cannot load' haproxy --key "$KEY1" --listen 127.0.0.1:1
	refuse "lighttpd cannot load token keys" 1 'lighttpd.*cannot' lighttpd --key "$KEY1" --listen 127.0.0.1:1
	refuse "unknown server" 2 'unknown server' tomcat --key "$KEY1" --listen 127.0.0.1:1
	refuse "server name with ;" 2 'inject' nginx --key "$KEY1" --listen 127.0.0.1:1 \
		--server-name 'a;include /etc/passwd' --pin-file "$T/srv.pin"
	refuse "server name with a quote" 2 'inject' nginx --key "$KEY1" --listen 127.0.0.1:1 \
		--server-name 'a"b' --pin-file "$T/srv.pin"
	refuse "PIN file path with a brace" 2 'inject' nginx --key "$KEY1" --listen 127.0.0.1:1 \
		--pin-file "$T/x}y"
	refuse "newline in a value" 2 'inject' nginx --key "$KEY1" --listen 127.0.0.1:1 \
		--server-name "$(printf 'a\nssl off')" --pin-file "$T/srv.pin"
	refuse "bad --listen" 2 'invalid --listen' nginx --key "$KEY1" --listen 127.0.0.1 --pin-file "$T/srv.pin"
	refuse "port out of range" 2 'invalid --listen' nginx --key "$KEY1" --listen '*:70000' --pin-file "$T/srv.pin"
	refuse "no PIN file" 2 'pin-file' nginx --key "$KEY1" --listen 127.0.0.1:1
	refuse "stunnel without a backend" 2 'connect' stunnel --key "$KEY1" --listen 127.0.0.1:1 --pin-file "$T/srv.pin"
	refuse "certificate of another key" 5 'does not belong' nginx --key "$KEY1" --listen 127.0.0.1:1 \
		--pin-file "$T/srv.pin" --cert "$T/web2-2001.pem"
	refuse "pin-value in the URI" 2 'pin-value|pin-file' nginx --key "$KEY1?pin-value=1234" --listen 127.0.0.1:1
	check "--allow-pin-value insists" "$P11KM" bind emit nginx --key "$KEY1?pin-value=1234" \
		--listen 127.0.0.1:1 --allow-pin-value
	check_grep "--allow-pin-value: the PIN is in the config" 'pin-value=1234' "$T/out"
	check_grep "--allow-pin-value: with a warning" 'warning|PIN will be written' "$T/err"
	# the files that carry the PIN are for their owner only; the engine trial
	# gets the URI without putting the PIN on a command line (a spy records argv)
	printf '#!/bin/sh\nprintf "%%s\\n" "$*" >> "%s"\nexec "%s" "$@"\n' "$T/probe-argv" \
		"$(dirname "$P11KM")/p11km-engine-probe" > "$T/probe-spy"
	chmod +x "$T/probe-spy"
	check "--allow-pin-value to a directory" env P11KM_ENGINE_PROBE="$T/probe-spy" "$P11KM" bind emit \
		nginx --key "$KEY1?pin-value=1234" --listen 127.0.0.1:1 --allow-pin-value --out-dir "$T/pv"
	for f in nginx-server.conf p11km-binding.conf; do
		check_grep "--allow-pin-value: $f carries the PIN" 'pin-value=1234' "$T/pv/$f"
		check_eq "  ... so it is mode 0600" "$(stat -c %a "$T/pv/$f")" 600
	done
	check_eq "--allow-pin-value: openssl.cnf (no PIN) stays 0644" "$(stat -c %a "$T/pv/openssl.cnf")" 644
	check_grep "--allow-pin-value: the engine trial ran" 'openssl.cnf' "$T/probe-argv"
	check_nogrep "--allow-pin-value: the PIN is not on its command line" 'pin-value' "$T/probe-argv"

	make_key dupa 04 rsa:2048
	make_key dupb 04 rsa:2048
	refuse "an id shared by two keys" 4 'several private keys .* id' nginx \
		--key "$TOKEN;object=dupa;type=private" --listen 127.0.0.1:1 --pin-file "$T/srv.pin" \
		--cert "$T/web1-1001.pem"

	# Ed25519: a token with an EdDSA key cannot serve any key through libp11
	new_token ed 1234
	p11tool_sm --token-label ed --login --pin 1234 --keypairgen --key-type rsa:2048 --label r --id 01 >/dev/null 2>&1
	p11tool_sm --token-label ed --login --pin 1234 --keypairgen --key-type EC:edwards25519 --label e --id 02 >/dev/null 2>&1
	refuse "an Ed25519 key" 1 'EdDSA|Ed25519' nginx --key 'pkcs11:token=ed;object=e;type=private' \
		--listen 127.0.0.1:1 --pin-file "$T/pin-ed" --cert "$T/web1-1001.pem"
	refuse "a key on a token with an Ed25519 key" 1 'EdDSA|Ed25519' nginx \
		--key 'pkcs11:token=ed;object=r;type=private' --listen 127.0.0.1:1 --pin-file "$T/pin-ed" \
		--cert "$T/web1-1001.pem"

	# a TPM 2.0 token: emit decides by trying the engine, not from the module's
	# name; its verdict must agree with a real nginx loading the same key.
	. "$top_srcdir/tests/lib/tpm2.sh"
	if tpm2_available && mkdir -p "$T/tpm" && tpm2_token_start "$T/tpm" tpmtok 123456 12345678; then
		cleanup_add "tpm2_token_stop '$T/tpm'"
		pkcs11-tool --module "$TPM2_MODULE" --token-label tpmtok --login --pin 123456 \
			--keypairgen --key-type EC:prime256v1 --label tk --id 07 >/dev/null 2>&1
		pkcs11-tool --module "$TPM2_MODULE" --token-label tpmtok --read-object --type pubkey \
			--label tk -o "$T/tk.der" >/dev/null 2>&1
		openssl pkey -pubin -inform DER -in "$T/tk.der" -out "$T/tk.pub.pem"
		openssl x509 -req -in "$T/ca/throwaway.csr" -force_pubkey "$T/tk.pub.pem" -CA "$T/ca/root.pem" \
			-CAkey "$T/ca/root.key" -set_serial 7 -days 5 -out "$T/tk.pem" 2>/dev/null
		(umask 077; printf 123456 > "$T/tpm.pin")
		flush_tpm
		emit_rc=0
		"$P11KM" bind emit nginx --module "$TPM2_MODULE" --key 'pkcs11:token=tpmtok;object=tk;type=private' \
			--listen "127.0.0.1:$(free_port)" --pin-file "$T/tpm.pin" --cert "$T/tk.pem" --out-dir "$T/tpmb" \
			>"$T/tpm-emit.out" 2>"$T/tpm-emit.err" || emit_rc=$?
		# the same key through real nginx, with a config the test writes itself
		flush_tpm
		mkdir -p "$T/tng"
		printf 'openssl_conf = i\n[i]\nengines = e\n[e]\npkcs11 = p\n[p]\nengine_id = pkcs11\ndynamic_path = %s\nMODULE_PATH = %s\ninit = 1\n' \
			/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so "$TPM2_MODULE" > "$T/tng/openssl.cnf"
		start_tpm_nginx() { # PORT
			cat > "$T/tng/nginx.conf" <<EOF
env TPM2_PKCS11_TCTI; env TPM2_PKCS11_STORE; env TSS2_LOG;
worker_processes 1;
pid $T/tng/nginx.pid;
error_log $T/tng/error.log;
events { worker_connections 16; }
http { access_log off; client_body_temp_path $T/tng; proxy_temp_path $T/tng; fastcgi_temp_path $T/tng;
  uwsgi_temp_path $T/tng; scgi_temp_path $T/tng;
  server { listen 127.0.0.1:$1 ssl; ssl_certificate $T/tk.pem;
    ssl_certificate_key "engine:pkcs11:pkcs11:token=tpmtok;object=tk;type=private?pin-source=$T/tpm.pin"; } }
EOF
			OPENSSL_CONF=$T/tng/openssl.cnf nginx -p "$T/tng" -c "$T/tng/nginx.conf"
		}
		# nginx may legitimately fail to load the TPM key (then emit must refuse it)
		nginx_ok=1
		start_server "$T/tng/error.log" 1 start_tpm_nginx 2>"$T/tng/start.err" || nginx_ok=0
		TP=$PORT
		cleanup_add "[ -f '$T/tng/nginx.pid' ] && kill \$(cat '$T/tng/nginx.pid')"
		if [ $nginx_ok = 1 ]; then
			[ "$(serial_served "$TP")" = 07 ] || nginx_ok=0
		fi
		if [ $nginx_ok = 1 ]; then
			check "tpm2: nginx serves the TPM key, and emit accepted it" test "$emit_rc" = 0
		else
			check "tpm2: nginx cannot load the TPM key, and emit refused it" test "$emit_rc" = 1
			check_grep "tpm2: emit says the engine cannot use the key" 'engine cannot use this key' "$T/tpm-emit.err"
		fi
		echo "# tpm2: emit exit $emit_rc; nginx serves the key: $nginx_ok"
	else
		not_ok "the tpm2 token could not be started (CI installs swtpm and tpm2-pkcs11)"
	fi
}

run_tests
