#!/bin/bash
# Chains: send what the CA sent.  A real cross-sign made with the openssl CLI
# (leaf <- "Issuing CA" <- "New Root", and "New Root" cross-signed by "Old
# Root", the 2021 DST Root CA X3 case): after a reply carrying the
# cross-sign is installed once, a later reply without it (or a bare leaf, or
# bind emit from the token) must not get it from the token.  Judges:
# openssl verify, openssl crl2pkcs7/pkcs7 -print_certs, and what a real nginx
# sends (openssl s_client -showcerts).
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/bind.sh"

# the PKI, all made by the openssl CLI
ca() { # NAME SUBJECT: a self-signed CA certificate and its key
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" \
		-out "$T/$1.pem" -days 60 -subj "$2" -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
leaf() { # SERIAL: a leaf for the token key, from the Issuing CA
	openssl x509 -req -in "$T/tw.csr" -force_pubkey "$T/web.pub.pem" -CA "$T/int.pem" \
		-CAkey "$T/int.key" -set_serial "$1" -days 20 -extfile "$T/leaf.ext" \
		-out "$T/leaf$1.pem" 2>/dev/null
}
# subjects of the certificates in a PEM file, one "subject <- issuer" a line
names() {
	openssl crl2pkcs7 -nocrl -certfile "$1" | openssl pkcs7 -print_certs -noout |
		awk '/^subject=/ { s = $0; sub(/^subject=.*CN *= */, "", s) }
		     /^issuer=/ { i = $0; sub(/^issuer=.*CN *= */, "", i); print s " <- " i }'
}
install() { # REPLY OUTDIR CAFILE [more]
	_r=$1 _o=$2 _c=$3
	shift 3
	"$P11KM" cert install "$_r" "$TOKEN" --pin-source "file:$PIN" --ca-file "$_c" \
		--out-dir "$_o" "$@"
}

setup() {
	need nginx
	bind_setup
	SOPIN=$T/sopin-bind

	ca old "/CN=Old Root"
	ca new "/CN=New Root"
	printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' > "$T/ca.ext"
	printf 'subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >> "$T/ca.ext"
	# the cross-sign: New Root's subject and key, issued by Old Root
	openssl x509 -x509toreq -in "$T/new.pem" -signkey "$T/new.key" -out "$T/new.csr" 2>/dev/null
	openssl x509 -req -in "$T/new.csr" -CA "$T/old.pem" -CAkey "$T/old.key" -set_serial 77 \
		-days 60 -extfile "$T/ca.ext" -out "$T/cross.pem" 2>/dev/null
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/int.key" \
		-subj "/CN=Issuing CA" -out "$T/int.csr" 2>/dev/null
	openssl x509 -req -in "$T/int.csr" -CA "$T/new.pem" -CAkey "$T/new.key" -set_serial 88 \
		-days 60 -extfile "$T/ca.ext" -out "$T/int.pem" 2>/dev/null
	check "openssl: the cross-sign is issued by Old Root, with New Root's subject" sh -c \
		"openssl x509 -in '$T/cross.pem' -noout -issuer | grep -q 'Old Root' &&
	 openssl x509 -in '$T/cross.pem' -noout -subject | grep -q 'New Root'"
	check "openssl verify: the intermediate via the cross-sign to Old Root" \
		openssl verify -CAfile "$T/old.pem" -untrusted "$T/cross.pem" "$T/int.pem"

	make_key web 01 EC:prime256v1
	p11tool_sm --token-label bind --read-object --type pubkey --label web -o "$T/web.pub.der" \
		>/dev/null 2>&1
	openssl pkey -pubin -inform DER -in "$T/web.pub.der" -out "$T/web.pub.pem"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tw.key" \
		-subj "/CN=web.test" -out "$T/tw.csr" 2>/dev/null
	printf 'subjectAltName=DNS:web.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
		> "$T/leaf.ext"
}

# 1. the CA sends leaf + intermediate + cross-sign: all of it, in order
test_cross_sign_sent() {
	leaf 1
	cat "$T/leaf1.pem" "$T/int.pem" "$T/cross.pem" > "$T/reply1.pem"
	check "install the reply with the cross-sign (Old Root trusted)" install "$T/reply1.pem" "$T/o1" "$T/old.pem"
	names "$T/o1/chain.pem" > "$T/n1"
	check_eq "chain.pem: intermediate then cross-sign, as the CA sent them" \
		"$(tr '\n' ';' < "$T/n1")" "Issuing CA <- New Root;New Root <- Old Root;"
	check "openssl verify: fullchain.pem to Old Root" \
		openssl verify -CAfile "$T/old.pem" -untrusted "$T/o1/chain.pem" "$T/o1/cert.pem"
}

# 2. a later reply without the cross-sign does not get it from the token
test_no_cross_sign_from_token() {
	leaf 2
	cat "$T/leaf2.pem" "$T/int.pem" > "$T/reply2.pem"
	check "install a reply of leaf + intermediate (New Root trusted)" install "$T/reply2.pem" "$T/o2" "$T/new.pem"
	names "$T/o2/chain.pem" > "$T/n2"
	check_eq "chain.pem: the intermediate alone" "$(tr '\n' ';' < "$T/n2")" "Issuing CA <- New Root;"
	check_eq "fullchain.pem: leaf + intermediate" "$(grep -c BEGIN "$T/o2/fullchain.pem")" 2
	check "openssl verify: to New Root" \
		openssl verify -CAfile "$T/new.pem" -untrusted "$T/o2/chain.pem" "$T/o2/cert.pem"
	check_fails "openssl verify: no path to Old Root (no cross-sign sent)" 2 \
		openssl verify -CAfile "$T/old.pem" -untrusted "$T/o2/chain.pem" "$T/o2/cert.pem"
}

# 3. a bare leaf: the chain comes from the token, the shortest that verifies
test_bare_leaf() {
	leaf 3
	check "install a bare leaf (New Root trusted)" install "$T/leaf3.pem" "$T/o3" "$T/new.pem"
	names "$T/o3/chain.pem" > "$T/n3"
	check_eq "chain.pem: the intermediate from the token, no cross-sign" \
		"$(tr '\n' ';' < "$T/n3")" "Issuing CA <- New Root;"
	check "openssl verify: to New Root" \
		openssl verify -CAfile "$T/new.pem" -untrusted "$T/o3/chain.pem" "$T/o3/cert.pem"
	leaf 4
	check "install a bare leaf (only Old Root trusted)" install "$T/leaf4.pem" "$T/o4" "$T/old.pem"
	names "$T/o4/chain.pem" > "$T/n4"
	check_eq "chain.pem: then the cross-sign is needed, and taken from the token" \
		"$(tr '\n' ';' < "$T/n4")" "Issuing CA <- New Root;New Root <- Old Root;"
	check "openssl verify: to Old Root" \
		openssl verify -CAfile "$T/old.pem" -untrusted "$T/o4/chain.pem" "$T/o4/cert.pem"
}

emit() { # PORT
	"$P11KM" bind emit nginx --key "$TOKEN;object=web;type=private" --listen "127.0.0.1:$1" \
		--server-name web.test --out-dir "$T/b" --pin-file "$T/web.pin" \
		--pin-source "file:$PIN" --service-user nobody
}
start_nginx() { # PORT
	if [ "$1" != "$P" ]; then P=$1; emit "$P" || return 1; fi
	nginx_conf "$N" "chains" "$T/b"
	OPENSSL_CONF=$T/b/openssl.cnf nginx -p "$N" -c "$N/nginx.conf"
}
served() { # the chain nginx sends, as "subject <- issuer" lines
	openssl s_client -connect "127.0.0.1:$P" -servername web.test -showcerts </dev/null \
		2>/dev/null | sed -n '/BEGIN CERT/,/END CERT/p' > "$T/served.pem"
	names "$T/served.pem"
}

# 4. bind emit builds from the token: the shortest path to the token's trusted New Root
test_bind_emit_shortest() {
	check "roots install New Root into the token" "$P11KM" roots install "$T/new.pem" \
		--to "token:$TOKEN" --so-pin-source "file:$SOPIN"
	P=$(free_port)
	check "bind emit nginx" emit "$P"
	G=$(openssl x509 -in "$T/leaf4.pem" | sha256sum | cut -c1-16)
	names "$T/b/fullchain-$G.pem" > "$T/nb"
	check_eq "the binding's fullchain: leaf + intermediate, no cross-sign" \
		"$(tr '\n' ';' < "$T/nb")" "web.test <- Issuing CA;Issuing CA <- New Root;"
	open_token_dir nobody

	N=$T/ngx
	mkdir -p "$N"
	check "nginx starts with the binding" start_server "$N/error.log" 1 start_nginx "$P"
	cleanup_add "kill \$(cat '$N/nginx.pid') 2>/dev/null"
	P=$PORT
	check_eq "nginx sends leaf + intermediate, no cross-sign (s_client -showcerts)" \
		"$(served | tr '\n' ';')" "web.test <- Issuing CA;Issuing CA <- New Root;"
	check "s_client verifies to New Root" sh -c "openssl s_client -connect 127.0.0.1:$P \
	-servername web.test -verify_hostname web.test -CAfile '$T/new.pem' -verify_return_error \
	</dev/null 2>&1 | grep -q 'Verify return code: 0 (ok)'"
}

# 5. a reply with the cross-sign, installed with --bind: nginx sends what the CA sent
test_bind_sends_what_ca_sent() {
	leaf 5
	cat "$T/leaf5.pem" "$T/int.pem" "$T/cross.pem" > "$T/reply5.pem"
	check "cert install --bind with the cross-signed reply" install "$T/reply5.pem" "$T/o5" \
		"$T/old.pem" --bind "$T/b"
	open_token_dir nobody
	OPENSSL_CONF=$T/b/openssl.cnf nginx -p "$N" -c "$N/nginx.conf" -s reload 2>/dev/null
	for i in $(seq 300); do served | grep -q 'Old Root' && break; sleep 0.1; done
	check_eq "after reload nginx sends the cross-sign the CA sent" \
		"$(served | tr '\n' ';')" "web.test <- Issuing CA;Issuing CA <- New Root;New Root <- Old Root;"
	check "s_client verifies to Old Root" sh -c "openssl s_client -connect 127.0.0.1:$P \
	-servername web.test -CAfile '$T/old.pem' -verify_return_error </dev/null 2>&1 |
	grep -q 'Verify return code: 0 (ok)'"
}

# a retired certificate (--keep-old) neither is picked nor makes bind emit ambiguous
test_retired_not_picked() {
	leaf 6
	check "cert install --keep-old" install "$T/leaf6.pem" "$T/o6" "$T/new.pem" --keep-old
	p11tool_sm --token-label bind -O > "$T/objs" 2>&1
	check_grep "pkcs11-tool: the old certificate is kept, retired" 'label: +web\.retired-[0-9]{8}' "$T/objs"
	check "bind emit after --keep-old" emit "$P"
	G=$(openssl x509 -in "$T/leaf6.pem" | sha256sum | cut -c1-16)
	check "the binding names the new certificate, not the retired one" \
		cmp "$T/b/cert-$G.pem" "$T/leaf6.pem"
}

# 6. the issuer is found by a targeted search, not by reading every trusted
# certificate: the same count next to 1 and 149 roots (test shim).  A first
# install (the intermediate is created) with the root trusted on the token,
# then one (the intermediate already there) with the root from --ca-file.
test_targeted_issuer_search() {
	if shim_available; then
		MOZ=/usr/share/ca-certificates/mozilla
		n=60
		for tk in few many; do
			new_token "$tk" "$USERPIN"
			for k in 1 2; do
				n=$((n + 1))
				p11tool_sm --token-label "$tk" --login --pin "$USERPIN" --keypairgen \
					--key-type EC:prime256v1 --label "web$k" --id "0$k" >/dev/null 2>&1
				p11tool_sm --token-label "$tk" --read-object --type pubkey --label "web$k" \
					-o "$T/$tk.pub.der" >/dev/null 2>&1
				openssl pkey -pubin -inform DER -in "$T/$tk.pub.der" -out "$T/web.pub.pem"
				leaf $n && cat "$T/leaf$n.pem" "$T/int.pem" > "$T/reply-$tk$k.pem"
			done
		done
		check "roots install New Root into token 'few'" "$P11KM" roots install "$T/new.pem" \
			--to "token:pkcs11:token=few" --so-pin-source "file:$T/sopin-few"
		NR=$(($(ls $MOZ/*.crt | wc -l) + 1))
		check "roots install New Root and the Mozilla roots into token 'many' ($NR)" \
			"$P11KM" roots install "$T/new.pem" $MOZ/*.crt --to "token:pkcs11:token=many" \
			--so-pin-source "file:$T/sopin-many"
		for tk in few many; do
			check "cert install on token '$tk' (root trusted on the token)" shim_p11km cert install \
				"$T/reply-${tk}1.pem" "pkcs11:token=$tk" --pin-source "file:$T/pin-$tk"
			eval "tok_$tk=\$(count_of total)"
			check "cert install on token '$tk' (root from --ca-file)" shim_p11km cert install \
				"$T/reply-${tk}2.pem" "pkcs11:token=$tk" --pin-source "file:$T/pin-$tk" \
				--ca-file "$T/new.pem"
			eval "file_$tk=\$(count_of total)"
		done
		echo "# cert install, root on the token: $tok_few calls next to 1 root, $tok_many next to $NR"
		echo "# cert install, root from --ca-file: $file_few calls next to 1 root, $file_many next to $NR"
		check_eq "root on the token: as many calls next to $NR roots as next to 1" "$tok_many" "$tok_few"
		check_eq "--ca-file: as many calls next to $NR roots as next to 1" "$file_many" "$file_few"
		check "root on the token: at most 40 calls ($tok_few)" test "$tok_few" -gt 0 -a "$tok_few" -le 40
		check "--ca-file: at most 34 calls ($file_few)" test "$file_few" -gt 0 -a "$file_few" -le 34
	fi
}

run_tests
