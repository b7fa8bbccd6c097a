#!/bin/sh
# renew --all as a batch: what one more certificate costs in PKCS#11 calls.
# Six EC key pairs made by pkcs11-tool (ids 0001.., not p11km's key ids),
# each with a two-day certificate from the test CA; a certmonger CA helper
# that signs with 'openssl x509 -req' answers in the same run, so one
# 'renew --all' requests, submits and installs.  One tracked certificate in
# one state directory, five in another: the five cost at most 4 x 12 calls
# more than the one (the floor, tests/tools/floor-renew.c, needs 11 per
# certificate: find the certificate and read it, find its key by id, sign,
# create the new one, relabel the old), counted by the shim, and never a
# second login; with a file CA, the run that installs finds each key by
# its live certificate's CKA_ID.  Judges: pkcs11-tool (the token's
# certificates) and openssl verify (the new ones chain to the test CA, for
# the keys on the token).
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

PER_CERT=12
FILE_RUN2=44

setup() {
	need openssl pkcs11-tool
	shim_available || skip_all "the PKCS#11 shim is not built"
	softhsm_setup
	new_token rb
	PIN=$T/pin-rb
	TOK="pkcs11:token=rb"
	ca_setup "$T/ca"
	cat "$T/ca/inter.pem" "$T/ca/root.pem" > "$T/ca/chain.pem"
	for i in 1 2 3 4 5 6; do
		token_keypair "$SOFTHSM2_MODULE" rb "$PIN" "c$i" "000$i" "$T/c$i.pub" || return 1
		issue "$T/ca" "$T/c$i.pub" "$T/c$i.pem" "c$i.example.test" "$((0x100 + i))" leaf 2 || return 1
		openssl x509 -in "$T/c$i.pem" -outform DER -out "$T/c$i.der" || return 1
		p11tool_sm --token-label rb --login --pin 1234 --write-object "$T/c$i.der" --type cert \
			--label "c$i" --id "000$i" >/dev/null 2>&1 || return 1
	done
	# the CA: certmonger's helper protocol, the test intermediate signs
	cat > "$T/helper" <<-EOF
	#!/bin/sh
	[ "\$CERTMONGER_OPERATION" = SUBMIT ] || exit 6
	printf '%s\n' "\$CERTMONGER_CSR" | exec openssl x509 -req -CA "$T/ca/inter.pem" \\
		-CAkey "$T/ca/inter.key" -days 90 -extfile "$T/ca/ca.cnf" -extensions leaf 2>/dev/null
	EOF
	chmod 755 "$T/helper"
	export P11KM_CONFIG_DIR=$T/ca.d
	"$P11KM" -q ca add lca --kind helper --command "$T/helper" || return 1
}

# track DIR LABEL...: track these certificates in state directory DIR
track() {
	_d=$1
	shift
	for _l in "$@"; do
		P11SHIM_MODULE=$SOFTHSM2_MODULE "$P11KM" -q --module "$P11SHIM" --pin-source "file:$PIN" \
			track add "$TOK;object=$_l;type=cert" --ca lca --ca-file "$T/ca/chain.pem" \
			--state-dir "$_d" || return 1
	done
}

track_file() {
	_d=$1
	shift
	for _l in "$@"; do
		P11SHIM_MODULE=$SOFTHSM2_MODULE "$P11KM" -q --module "$P11SHIM" --pin-source "file:$PIN" \
			track add "$TOK;object=$_l;type=cert" --ca "file:$T/fca" --ca-file "$T/ca/chain.pem" \
			--state-dir "$_d" || return 1
	done
}

test_one_certificate() {
	check "track add c1" track "$T/s1" c1
	check "renew --all, one certificate (through the shim)" shim_p11km --pin-source "file:$PIN" \
		renew --all --state-dir "$T/s1"
	check_grep "  ... c1 renewed" '^c1: renewed' "$T/out"
	one=$(count_of total)
	echo "# renew --all of 1 certificate: $one PKCS#11 calls"
}

test_five_certificates() {
	check "track add c2..c6" track "$T/s5" c2 c3 c4 c5 c6
	check "renew --all, five certificates (through the shim)" shim_p11km --pin-source "file:$PIN" \
		renew --all --state-dir "$T/s5"
	check_eq "  ... all five renewed" "$(grep -c ': renewed' "$T/out")" 5
	cp "$T/out" "$T/five.out"
	five=$(count_of total)
	echo "# renew --all of 5 certificates: $five PKCS#11 calls ($(count_of C_FindObjectsInit) searches)"
	check_eq "  ... one login for the five" "$(count_of C_Login)" 1
	check_eq "  ... one C_Initialize" "$(count_of C_Initialize)" 1
	check "  ... the four more cost at most 4 x $PER_CERT calls (got $((five - one)))" \
		test "$((five - one))" -le $((4 * PER_CERT))
}

test_judged() {
	token_certs "$SOFTHSM2_MODULE" rb > "$T/certs"
	for i in 1 2 3 4 5 6; do
		check_eq "c$i: one retired certificate on the token (pkcs11-tool)" \
			"$(grep -c "^000$i|c$i\.retired-[0-9]*|" "$T/certs")" 1
		check_eq "c$i: one current certificate" "$(grep -c "^000$i|c$i|" "$T/certs")" 1
		p11tool_sm --token-label rb --read-object --type cert --label "c$i" -o "$T/new$i.der" \
			>/dev/null 2>&1
		openssl x509 -inform DER -in "$T/new$i.der" -out "$T/new$i.pem" 2>/dev/null
		check "c$i: the current one is not the old one" test \
			"$(openssl x509 -in "$T/new$i.pem" -noout -serial)" != \
			"$(openssl x509 -in "$T/c$i.pem" -noout -serial)"
		check "c$i: openssl verifies the new certificate against the test CA" openssl verify \
			-CAfile "$T/ca/root.pem" -untrusted "$T/ca/inter.pem" "$T/new$i.pem"
		na=$(date -u -d "$(openssl x509 -in "$T/new$i.pem" -noout -enddate | sed 's/notAfter=//')" \
			+%Y-%m-%dT%H:%M:%SZ)
		[ "$i" = 1 ] || check_grep "c$i: renew --all said the new certificate's not-after ($na)" \
			"^c$i: renewed .*not after $na" "$T/five.out"
		check_eq "c$i: for the key on the token" \
			"$(openssl x509 -in "$T/new$i.pem" -noout -pubkey | openssl pkey -pubin -outform DER | sha1sum)" \
			"$(openssl pkey -pubin -in "$T/c$i.pub" -outform DER | sha1sum)"
	done
}

# a file CA: one run writes the requests, the test's CA signs them, the
# next run installs: the key of each by its live certificate's CKA_ID
test_file_ca() {
	mkdir -p "$T/fca"
	check "track add c2 c3 (file CA)" track_file "$T/s3" c2 c3
	check "renew --all --force: the requests" shim_p11km --pin-source "file:$PIN" renew --all \
		--force --state-dir "$T/s3"
	for _l in c2 c3; do
		openssl x509 -req -in "$T/fca/$_l.csr" -CA "$T/ca/inter.pem" -CAkey "$T/ca/inter.key" \
			-days 90 -extfile "$T/ca/ca.cnf" -extensions leaf -out "$T/fca/$_l.crt" 2>/dev/null
	done
	check "renew --all: the replies installed (through the shim)" shim_p11km --pin-source \
		"file:$PIN" renew --all --state-dir "$T/s3"
	check_eq "  ... both renewed" "$(grep -c ': renewed' "$T/out")" 2
	echo "# renew --all installing 2 replies: $(count_of total) PKCS#11 calls"
	check "  ... at most $FILE_RUN2 calls (the search by public key costs 7 more each)" \
		test "$(count_of total)" -le $FILE_RUN2
}

run_tests
