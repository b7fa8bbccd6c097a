#!/bin/bash
# object export / delete / relabel on SoftHSM2, judged by openssl (what was
# exported) and pkcs11-tool (what is on the token afterwards).
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

p11() { "$P11KM" --pin-source "file:$PIN" object "$@"; }
objs() { token_keys "$M" ed "$PIN"; token_certs "$M" ed | sed 's/^/cert|/'; }
der_fp() { openssl x509 -inform "${2:-PEM}" -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'; }
pub_der() { openssl pkey -pubin -inform "${2:-PEM}" -in "$1" -outform DER | od -An -tx1 | tr -d ' \n'; }

setup() {
	need openssl pkcs11-tool python3
	softhsm_setup
	new_token ed
	M=$SOFTHSM2_MODULE
	PIN=$T/pin-ed
	TOK="pkcs11:token=ed"
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	CA=$T/ca
	token_keypair "$M" ed "$PIN" web 01 "$T/web.pub" || { echo "keygen failed"; exit 99; }
	token_keypair "$M" ed "$PIN" other 02 "$T/other.pub" || { echo "keygen failed"; exit 99; }
	issue "$CA" "$T/web.pub" "$T/leaf.pem" web.example.test 0x0e01
	cat "$T/leaf.pem" "$CA/inter.pem" > "$T/reply.pem"
	"$P11KM" cert install "$T/reply.pem" "$TOK" --pin-source "file:$PIN" --ca-file "$CA/root.pem" \
		>/dev/null 2>&1 || { echo "cert install failed"; exit 99; }
	objs > "$T/objs.orig"
	grep -q '^Private|01|web$' "$T/objs.orig" && grep -q '^cert|01|web|0e01$' "$T/objs.orig" ||
		{ echo "setup failed"; cat "$T/objs.orig"; exit 99; }
}

# export
test_export() {
	check "export the certificate (PEM on stdout)" p11 export "$TOK;object=web;type=cert"
	check_eq "  ... openssl reads the issued certificate" "$(der_fp "$T/out")" "$(der_fp "$T/leaf.pem")"
	check "export 'object=web' (key pair and certificate): the certificate" p11 export "$TOK;object=web"
	check_eq "  ... the same certificate" "$(der_fp "$T/out")" "$(der_fp "$T/leaf.pem")"
	check "export -o FILE --der" p11 export "$TOK;object=web;type=cert" -o "$T/leaf.der" --der
	check_eq "  ... openssl reads the DER" "$(der_fp "$T/leaf.der" DER)" "$(der_fp "$T/leaf.pem")"
	check_no_stdout "  ... nothing on stdout"
	check "export --chain" p11 export "$TOK;object=web;type=cert" --chain -o "$T/chain.pem"
	check_eq "  ... two certificates (the root is not on the token)" "$(grep -c 'BEGIN CERTIFICATE' "$T/chain.pem")" 2
	check "  ... openssl verify: leaf then its intermediate" openssl verify -CAfile "$CA/root.pem" \
		-untrusted "$T/chain.pem" "$T/chain.pem"
	check "export the public key" p11 export "$TOK;object=web;type=public"
	check_eq "  ... the key pkcs11-tool reads" "$(pub_der "$T/out")" "$(pub_der "$T/web.pub")"
	check "export the public key --der" p11 export "$TOK;id=%02;type=public" --der -o "$T/other.der"
	check_eq "  ... the key pkcs11-tool reads" "$(pub_der "$T/other.der" DER)" "$(pub_der "$T/other.pub")"
	check "--json export" p11 --json export "$TOK;object=web;type=cert"
	check_eq "  ... the PEM in the JSON is the certificate" \
		"$(json_get "$T/out" 'd["pem"]' | der_fp /dev/stdin)" "$(der_fp "$T/leaf.pem")"
	check_fails "a private key is never exported" 2 p11 export "$TOK;object=web;type=private"
	check_one_line_error "  ... saying so" "never exports a private"
	check_no_stdout "  ... and nothing on stdout"
	check_fails "a URI that selects nothing" 4 p11 export "$TOK;object=nonesuch"
	check_fails "--der --chain" 2 p11 export "$TOK;object=web;type=cert" --der --chain
	check_fails "a URI without object attributes" 2 p11 export "$TOK"
}

# delete: refusals first
test_delete() {
	check_fails "delete 'object=web' (three objects) without --all" 4 p11 delete "$TOK;object=web"
	check_one_line_error "  ... lists them" "3 objects match.*type=private.*type=public.*type=cert|3 objects match"
	check_fails "delete a private key without --force" 2 p11 delete "$TOK;object=other;type=private"
	check_one_line_error "  ... says --force" "private key.*--force"
	# a real binding of the web key
	mkdir -p "$T/bind"
	"$P11KM" bind emit nginx --key "$TOK;object=web;type=private" --listen 127.0.0.1:8443 \
		--out-dir "$T/bind/web" --pin-file "$T/srv.pin" --pin-source "file:$PIN" >"$T/emit.log" 2>&1 ||
		{ echo "bind emit failed"; cat "$T/emit.log"; exit 99; }
	check_fails "--force delete of a key a binding uses" 1 "$P11KM" --force --pin-source "file:$PIN" \
		object delete "$TOK;object=web;type=private" --bindings "$T/bind"
	check_one_line_error "  ... names the binding" "binding '$T/bind/web/p11km-binding.conf' uses"
	check_fails "delete of the certificate a binding uses" 1 p11 delete "$TOK;object=web;type=cert" \
		--bindings "$T/bind"
	check_fails "--all --force of the pair: refused as a whole" 1 "$P11KM" --force --pin-source "file:$PIN" \
		object delete "$TOK;object=web" --all --bindings "$T/bind"
	objs > "$T/objs.now"
	check "pkcs11-tool: nothing was deleted by the refusals" cmp -s "$T/objs.orig" "$T/objs.now"

	check "--dry-run --all lists what would go" "$P11KM" --force --pin-source "file:$PIN" \
		object delete "$TOK;object=other" --all --dry-run
	check_eq "  ... two objects" "$(grep -c '^would delete pkcs11:' "$T/out")" 2
	objs > "$T/objs.now"
	check "  ... and pkcs11-tool still sees them" cmp -s "$T/objs.orig" "$T/objs.now"
	check "--force --all deletes the other pair" "$P11KM" --json --force --pin-source "file:$PIN" \
		object delete "$TOK;object=other" --all
	check_eq "  ... --json lists two" "$(json_get "$T/out" 'len(d["deleted"])')" 2
	check_eq "  ... pkcs11-tool: no object with id 02 left" "$(objs | grep -c '|02|')" 0
	check_eq "  ... and the rest is as it was" "$(objs)" "$(grep -v '|02|' "$T/objs.orig")"
}

# relabel
test_relabel() {
	check "--dry-run relabel" p11 relabel "$TOK;object=web" --label www --id 0a --dry-run
	check_eq "  ... three objects would change" "$(grep -c '^would relabel' "$T/out")" 3
	check_eq "  ... pkcs11-tool: nothing changed" "$(objs)" "$(grep -v '|02|' "$T/objs.orig")"
	check "relabel the pair and its certificate" p11 relabel "$TOK;object=web;type=private" --label www --id 0a
	objs > "$T/objs.now"
	for o in 'Private|0a|www' 'Public|0a|www' 'cert|0a|www|0e01'; do
		check_grep "  ... pkcs11-tool: $o" "^${o//|/\\|}\$" "$T/objs.now"
	done
	check_nogrep "  ... nothing keeps the old label" '\|web(\||$)' "$T/objs.now"
	check_grep "  ... the intermediate is untouched" '^cert\|.*\|1001$' "$T/objs.now"
	check "the key still signs under its new URI (req new)" "$P11KM" --pin-source "file:$PIN" \
		req new "$TOK;object=www;type=private" --subject CN=www -o "$T/www.csr"
	check "  ... openssl req -verify" openssl req -in "$T/www.csr" -verify -noout
	token_keypair "$M" ed "$PIN" third 03 "$T/third.pub" || { echo "keygen failed"; exit 99; }
	check_fails "relabel onto another pair's label and id" 1 p11 relabel "$TOK;object=third" --label www --id 0a
	check_one_line_error "  ... one URI would select both" "one URI would select both"
	if shim_available; then
		objs > "$T/objs.before"
		check_fails "the 2nd C_SetAttributeValue fails" 3 env P11SHIM_FAIL_FUNC=C_SetAttributeValue \
			P11SHIM_FAIL_AT=2 P11SHIM_MODULE="$M" "$P11KM" --module "$P11SHIM" --pin-source "file:$PIN" \
			object relabel "$TOK;object=third" --label moved
		check_grep "  ... says what was put back" "put back" "$T/err"
		objs > "$T/objs.after"
		check "  ... pkcs11-tool: the pair keeps its old label" cmp -s "$T/objs.before" "$T/objs.after"
	else
		not_ok "the PKCS#11 shim is not built"
	fi
}

run_tests
