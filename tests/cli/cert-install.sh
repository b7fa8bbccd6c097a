#!/bin/sh
# cert install: replies in every format onto SoftHSM2, judged by pkcs11-tool,
# p11tool, the libp11 engine and openssl; renewal, --keep-old, rekey,
# refusals, dry runs, --json and --out-dir.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

install() { "$P11KM" cert install "$@" --pin-source "file:$PIN"; }
certs() { token_certs "$M" inst > "$T/certs"; }
# count PATTERN: certificates (id|label|serial lines) matching PATTERN
count() { certs; grep -cE -- "$1" "$T/certs" || true; }

setup() {
	need openssl pkcs11-tool p11tool python3
	ENGCERT=$top_builddir/tests/engine-cert
	[ -x "$ENGCERT" ] || skip_all "tests/engine-cert not built"
	softhsm_setup
	new_token inst
	M=$SOFTHSM2_MODULE
	PIN=$T/pin-inst
	TOK="pkcs11:token=inst"
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	CA=$T/ca
}

# every reply format
test_reply_formats() {
	# the bundle formats first: they bring the intermediate that the single
	# certificate replies (pem, der) then find on the token
	for fmt in bundle p7b-pem p7b-der stdin pem der; do
		case $fmt in pem) n=1 ;; der) n=2 ;; bundle) n=3 ;; p7b-pem) n=4 ;; p7b-der) n=5 ;; stdin) n=6 ;; esac
		id=$(printf '%02x' $((0x10 + n)))
		serial=$(printf '%04x' $((0x200 + n)))
		token_keypair "$M" inst "$PIN" "k-$fmt" "$id" "$T/$fmt.pub" || { echo "keygen failed"; exit 99; }
		issue "$CA" "$T/$fmt.pub" "$T/$fmt.leaf" "$fmt.example.test" "0x$serial"
		case $fmt in
		pem) cp "$T/$fmt.leaf" "$T/$fmt.reply" ;;
		der) openssl x509 -in "$T/$fmt.leaf" -outform DER -out "$T/$fmt.reply" ;;
		bundle) cat "$T/$fmt.leaf" "$CA/inter.pem" "$CA/root.pem" > "$T/$fmt.reply" ;;
		p7b-pem) openssl crl2pkcs7 -nocrl -certfile "$T/$fmt.leaf" -certfile "$CA/inter.pem" \
			-out "$T/$fmt.reply" ;;
		p7b-der) openssl crl2pkcs7 -nocrl -certfile "$T/$fmt.leaf" -certfile "$CA/inter.pem" \
			-outform DER -out "$T/$fmt.reply" ;;
		stdin) cat "$T/$fmt.leaf" "$CA/inter.pem" > "$T/$fmt.reply" ;;
		esac
		if [ $fmt = stdin ]; then
			check "install a $fmt reply" sh -c "\"$P11KM\" cert install - $TOK --pin-source file:$PIN --ca-file $CA/root.pem < $T/$fmt.reply"
		else
			check "install a $fmt reply" install "$T/$fmt.reply" "$TOK" --ca-file "$CA/root.pem"
		fi
		certs
		check_grep "pkcs11-tool: the $fmt leaf has the key's id and label" "^$id\|k-$fmt\|$serial\$" "$T/certs"
	done
	check_grep "the intermediate went on the token" "\|p11km Test Intermediate [0-9]+\|1001$" "$T/certs"
	c=$(count "Intermediate")
	[ "$c" = 1 ] && ok "the intermediate is on the token once after six installs" ||
		not_ok "intermediate copies: $c"

	p11tool --provider "$M" --list-all "$TOK" > "$T/p11tool" 2>&1
	check_grep "p11tool lists the leaf with the key's id" "token=inst;id=%11;object=k-pem;type=cert" "$T/p11tool"
	p11tool --provider "$M" --list-all-certs "$TOK" > "$T/p11tool-certs" 2>&1
	check_grep "p11tool: the intermediate is an authority certificate" "CKA_CERTIFICATE_CATEGORY=CA" "$T/p11tool-certs"
}

# an intermediate re-issued on the same key: a distinct label, never a twin
test_reissued_intermediate() {
	# Same subject and key (so the same label and id as the one on the token), a
	# new serial: one URI must still select one object (pkcs11-tool is the judge).
	openssl x509 -req -in "$CA/inter.csr" -CA "$CA/root.pem" -CAkey "$CA/root.key" -set_serial 0x1002 \
		-days 2999 -extfile "$CA/ca.cnf" -extensions ca -out "$CA/inter-b.pem" 2>/dev/null
	token_keypair "$M" inst "$PIN" k-reissued 30 "$T/reissued.pub"
	issue "$CA" "$T/reissued.pub" "$T/reissued.leaf" reissued.example.test 0x0301
	cat "$T/reissued.leaf" "$CA/inter-b.pem" > "$T/reissued.reply"
	check "install a reply with the re-issued intermediate" install "$T/reissued.reply" "$TOK" \
		--ca-file "$CA/root.pem"
	certs
	check_grep "pkcs11-tool: the re-issued intermediate is labelled '<label> (2)'" \
		"\|p11km Test Intermediate [0-9]+ \(2\)\|1002$" "$T/certs"
	check_grep "...the first keeps its label" "\|p11km Test Intermediate [0-9]+\|1001$" "$T/certs"
	check_eq "...no two certificates share id and label" "$(cut -d'|' -f1,2 "$T/certs" | sort | uniq -d)" ""

	# the libp11 engine (what Apache and stunnel use) loads the certificate by URI
	ASAN_OPTIONS=detect_leaks=0 "$ENGCERT" "$M" "pkcs11:token=inst;id=%11;type=cert?pin-source=$PIN" > "$T/eng.pem" 2>"$T/eng.err"
	if [ "$(fp "$T/eng.pem" 2>/dev/null)" = "$(fp "$T/pem.leaf")" ]; then
		ok "libp11 LOAD_CERT_CTRL loads the installed leaf by id"
	else
		not_ok "libp11 did not load the leaf"; sed 's/^/#   /' "$T/eng.err" | head -5
	fi
	ASAN_OPTIONS=detect_leaks=0 "$ENGCERT" "$M" "pkcs11:token=inst;object=k-der;type=cert?pin-source=$PIN" > "$T/eng2.pem" 2>/dev/null
	[ "$(fp "$T/eng2.pem" 2>/dev/null)" = "$(fp "$T/der.leaf")" ] &&
		ok "libp11 loads the leaf by label" || not_ok "libp11 did not load the leaf by label"
}

# renewal: exactly one leaf with the id
test_renewal() {
	issue "$CA" "$T/pem.pub" "$T/renew1.pem" "pem.example.test" 0x0301
	check "install a renewed certificate for the same key" install "$T/renew1.pem" "$TOK" --ca-file "$CA/root.pem"
	c=$(count "^11\|")
	[ "$c" = 1 ] && ok "exactly one certificate with the key's id after renewal" || not_ok "$c certificates with id 11"
	check_grep "and it is the renewed one" "^11\|k-pem\|0301$" "$T/certs"

	# --keep-old keeps the replaced one under a retired label
	issue "$CA" "$T/pem.pub" "$T/renew2.pem" "pem.example.test" 0x0302
	check "install with --keep-old" install "$T/renew2.pem" "$TOK" --ca-file "$CA/root.pem" --keep-old
	certs
	check_grep "--keep-old: the new leaf carries the key's label" "^11\|k-pem\|0302$" "$T/certs"
	check_grep "--keep-old: the old one is relabelled k-pem.retired-DATE" "^11\|k-pem\.retired-[0-9]{8}\|0301$" "$T/certs"

	# installing the same reply again changes nothing
	certs; cp "$T/certs" "$T/certs.before"
	check "installing the same reply again succeeds" install "$T/renew2.pem" "$TOK" --ca-file "$CA/root.pem"
	check_grep "and says it was already there" "kept: certificate 'k-pem': already on the token" "$T/out"
	certs
	cmp -s "$T/certs" "$T/certs.before" && ok "the token is unchanged" || not_ok "token changed"
}

# refusals leave the token unchanged
test_refusals() {
	openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$T/soft.key" 2>/dev/null
	openssl pkey -in "$T/soft.key" -pubout -out "$T/soft.pub" 2>/dev/null
	issue "$CA" "$T/soft.pub" "$T/foreign.pem" "foreign.example.test" 0x0400
	certs; cp "$T/certs" "$T/certs.before"
	check_fails "a certificate for a key not on the token is refused" 4 install "$T/foreign.pem" "$TOK" --ca-file "$CA/root.pem"
	check_grep "the error says which keys were compared and how" "CKA_MODULUS|CKA_EC_POINT" "$T/err"
	certs
	cmp -s "$T/certs" "$T/certs.before" && ok "token unchanged after the refusal" || not_ok "token changed"

	issue "$CA" "$T/der.pub" "$T/unverified.pem" "der.example.test" 0x0402
	check_fails "a chain that does not verify is refused" 5 install "$T/unverified.pem" "$TOK"
	check_grep "the error names the verification failure" "does not verify" "$T/err"
	issue "$CA" "$T/der.pub" "$T/nosig.pem" "der.example.test" 0x0403 nosig
	check_fails "a leaf without digitalSignature is refused" 5 install "$T/nosig.pem" "$TOK" --ca-file "$CA/root.pem"
	certs
	cmp -s "$T/certs" "$T/certs.before" && ok "token unchanged after the refused chain and usage" || not_ok "token changed"
	check "--no-verify installs it with a warning" install "$T/unverified.pem" "$TOK" --no-verify
	check_grep "--no-verify warns" "warning.*not verified" "$T/err"

	# two leaves for two token keys in one reply
	cat "$T/der.leaf" "$T/bundle.leaf" > "$T/two.pem"
	check_fails "a reply with two leaves for token keys is refused" 4 install "$T/two.pem" "$TOK" --ca-file "$CA/root.pem"

	# validity: expired needs --force, not-yet-valid warns
	openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$T/imp.key" 2>/dev/null
	token_import "$M" inst "$PIN" "$T/imp.key" 33 imported || { echo "import failed"; exit 99; }
	issue_dates "$CA" "$T/imp.key" "$T/expired.pem" imported.example.test 0500 20200101000000Z 20210101000000Z
	issue_dates "$CA" "$T/imp.key" "$T/future.pem" imported.example.test 0501 20990101000000Z 20991231000000Z
	check_fails "an expired certificate is refused" 5 install "$T/expired.pem" "$TOK" --ca-file "$CA/root.pem"
	check_grep "the error says expired and --force" "expired.*--force" "$T/err"
	check "a not-yet-valid certificate installs" install "$T/future.pem" "$TOK" --ca-file "$CA/root.pem"
	check_grep "with a warning" "not valid yet" "$T/err"
	check "--force installs an expired certificate" "$P11KM" --force cert install "$T/expired.pem" "$TOK" --ca-file "$CA/root.pem" --pin-source "file:$PIN"
	check_grep "the expired one replaced the other" "^33\|imported\|0500$" "$(certs; echo "$T/certs")"
}

# where the trusted roots come from: --ca-path, the token's trusted certificates
test_trusted_roots() {
	"$P11KM" roots install "$CA/root.pem" --to "openssl-dir:$T/capath" >/dev/null 2>&1
	issue "$CA" "$T/stdin.pub" "$T/capath.pem" "stdin.example.test" 0x0650
	check "--ca-path with an openssl-dir of roots verifies the chain" install "$T/capath.pem" "$TOK" --ca-path "$T/capath"
	issue "$CA" "$T/stdin.pub" "$T/tokroot.pem" "stdin.example.test" 0x0651
	check_fails "without a root the same kind of reply does not verify" 5 install "$T/tokroot.pem" "$TOK"
	check "put the root on the token as trusted (SO PIN)" "$P11KM" roots install "$CA/root.pem" --to "token:$TOK" \
		--so-pin-source "file:$T/sopin-inst"
	check "the token's trusted root now verifies the chain" install "$T/tokroot.pem" "$TOK"
	certs
	check_grep "  ... and the leaf is on the token" "^16\|k-stdin\|0651$" "$T/certs"
}

# --no-chain: a new intermediate stays off the token
test_no_chain() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$CA/inter2.key" \
		-out "$CA/inter2.csr" -subj "/CN=p11km Other Intermediate" 2>/dev/null
	openssl x509 -req -in "$CA/inter2.csr" -CA "$CA/root.pem" -CAkey "$CA/root.key" -set_serial 0x2002 \
		-days 300 -extfile "$CA/ca.cnf" -extensions ca -out "$CA/inter2.pem" 2>/dev/null
	openssl x509 -req -in "$CA/throwaway.csr" -force_pubkey "$T/stdin.pub" -CA "$CA/inter2.pem" \
		-CAkey "$CA/inter2.key" -set_serial 0x0652 -days 30 -subj "/CN=stdin.example.test" \
		-extfile "$CA/ca.cnf" -extensions leaf -out "$T/other.pem" 2>/dev/null
	cat "$T/other.pem" "$CA/inter2.pem" > "$T/other.reply"
	check "--no-chain installs the leaf" install "$T/other.reply" "$TOK" --no-chain
	certs
	check_grep "  ... the leaf is there" "^16\|k-stdin\|0652$" "$T/certs"
	check_nogrep "  ... the new intermediate is not" "Other Intermediate" "$T/certs"
}

# dry run and --json
test_dry_run_json() {
	issue "$CA" "$T/p7b-pem.pub" "$T/dry.pem" "p7b-pem.example.test" 0x0600
	certs; cp "$T/certs" "$T/certs.before"
	check "--dry-run succeeds" install "$T/dry.pem" "$TOK" --ca-file "$CA/root.pem" --dry-run --out-dir "$T/dryout"
	check_grep "--dry-run says what would be created" "would be created" "$T/out"
	check_grep "--dry-run says what would be replaced" "replaced: certificate 'k-p7b-pem': would be destroyed" "$T/out"
	certs
	cmp -s "$T/certs" "$T/certs.before" && ok "--dry-run changed nothing on the token" || not_ok "token changed"
	[ ! -e "$T/dryout" ] && ok "--dry-run wrote no files" || not_ok "--dry-run created $T/dryout"

	check "--json install" "$P11KM" --json cert install "$T/dry.pem" "$TOK" --ca-file "$CA/root.pem" --pin-source "file:$PIN"
	cp "$T/out" "$T/json"
	check "the JSON parses and lists what was written and replaced" python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
assert d['dry_run'] is False
assert any(w['what'] == 'certificate' and w['name'] == 'k-p7b-pem' for w in d['written']), d
assert any(w['what'] == 'certificate' for w in d['replaced']), d
assert d['leaf']['sha256'] == sys.argv[2], d
" "$T/json" "$(fp "$T/dry.pem")"
}

# --out-dir
test_out_dir() {
	issue "$CA" "$T/bundle.pub" "$T/files.pem" "bundle.example.test" 0x0700
	cat "$T/files.pem" "$CA/inter.pem" > "$T/files.reply"
	check "install with --out-dir and --der" install "$T/files.reply" "$TOK" --ca-file "$CA/root.pem" --out-dir "$T/srv" --der
	[ "$(fp "$T/srv/cert.pem")" = "$(fp "$T/files.pem")" ] && ok "cert.pem is the leaf" || not_ok "cert.pem differs"
	[ "$(fp "$T/srv/chain.pem")" = "$(fp "$CA/inter.pem")" ] && ok "chain.pem is the intermediate" || not_ok "chain.pem differs"
	check "openssl verifies fullchain.pem against the root" openssl verify -CAfile "$CA/root.pem" -untrusted "$T/srv/fullchain.pem" "$T/srv/fullchain.pem"
	[ "$(openssl x509 -inform DER -in "$T/srv/cert.der" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f)" = "$(fp "$T/files.pem")" ] &&
		ok "cert.der is the leaf in DER" || not_ok "cert.der differs"
	[ "$(stat -c %a "$T/srv/cert.pem") $(stat -c %a "$T/srv/fullchain.pem")" = "644 644" ] &&
		ok "files are mode 0644" || not_ok "modes: $(stat -c %a "$T/srv/"*)"
	[ -z "$(find "$T/srv" -name '*.p11km-*')" ] && ok "no temporary files left" || not_ok "temp files left"
}

# rekey: "<L>.pending" becomes "<L>", the old pair and cert retire
test_rekey() {
	token_keypair "$M" inst "$PIN" svc 51 "$T/svc.pub"
	issue "$CA" "$T/svc.pub" "$T/svc-old.pem" "svc.example.test" 0x0800
	check "install the service's first certificate" install "$T/svc-old.pem" "$TOK" --ca-file "$CA/root.pem"
	openssl genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out "$T/tmp.key" 2>/dev/null
	token_keypair "$M" inst "$PIN" svc.pending 5252 "$T/svcnew.pub"
	issue "$CA" "$T/svcnew.pub" "$T/svc-new.pem" "svc.example.test" 0x0801
	check "install the certificate of the pending key (rekey)" install "$T/svc-new.pem" "$TOK" --ca-file "$CA/root.pem"
	check_grep "the output says rekey" "\(rekey\)" "$T/out"
	token_keys "$M" inst "$PIN" > "$T/keys"
	certs
	check_grep "rekey: the new private key is labelled svc (its id unchanged)" "^Private\|5252\|svc$" "$T/keys"
	check_grep "rekey: the new public key is labelled svc" "^Public\|5252\|svc$" "$T/keys"
	check_grep "rekey: the old private key is retired" "^Private\|51\|svc\.retired-[0-9]{8}$" "$T/keys"
	check_grep "rekey: the new certificate is labelled svc with the new id" "^5252\|svc\|0801$" "$T/certs"
	check_grep "rekey: the old certificate is retired" "^51\|svc\.retired-[0-9]{8}\|0800$" "$T/certs"
	check_nogrep "rekey: nothing is left pending" "pending" "$T/keys"

	token_keypair "$M" inst "$PIN" db 61 "$T/db.pub"
	issue "$CA" "$T/db.pub" "$T/db-old.pem" "db.example.test" 0x0900
	install "$T/db-old.pem" "$TOK" --ca-file "$CA/root.pem" >/dev/null 2>&1
	token_keypair "$M" inst "$PIN" db.pending 6262 "$T/dbnew.pub"
	issue "$CA" "$T/dbnew.pub" "$T/db-new.pem" "db.example.test" 0x0901
	check "rekey with --destroy-old" install "$T/db-new.pem" "$TOK" --ca-file "$CA/root.pem" --destroy-old
	token_keys "$M" inst "$PIN" > "$T/keys"
	certs
	check_nogrep "--destroy-old: the old key pair is gone" "\|61\|" "$T/keys"
	check_nogrep "--destroy-old: the old certificate is gone" "^61\|" "$T/certs"
	check_grep "--destroy-old: the new pair is labelled db" "^Private\|6262\|db$" "$T/keys"
}

# the whole lifecycle with p11km's own key and request commands
test_lifecycle() {
	L="pkcs11:token=inst;object=life"
	check "key generate" "$P11KM" key generate "$TOK" --type ec:p256 --label life --pin-source "file:$PIN"
	check "req new" "$P11KM" req new "$L;type=private" --subject "CN=life.example.test" -o "$T/life.csr" \
		--pin-source "file:$PIN"
	openssl x509 -req -in "$T/life.csr" -CA "$CA/inter.pem" -CAkey "$CA/inter.key" -set_serial 0x1101 \
		-days 30 -extfile "$CA/ca.cnf" -extensions leaf -out "$T/life1.pem" 2>/dev/null
	check "install the CA's reply to p11km's request" install "$T/life1.pem" "$TOK" --ca-file "$CA/root.pem"
	check "req renew --rekey (makes 'life.pending')" "$P11KM" req renew "$L;type=cert" --rekey \
		-o "$T/life2.csr" --pin-source "file:$PIN"
	openssl x509 -req -in "$T/life2.csr" -CA "$CA/inter.pem" -CAkey "$CA/inter.key" -set_serial 0x1102 \
		-days 30 -extfile "$CA/ca.cnf" -extensions leaf -out "$T/life2.pem" 2>/dev/null
	check "install the renewal completes the rekey" install "$T/life2.pem" "$TOK" --ca-file "$CA/root.pem"
	openssl x509 -in "$T/life2.pem" -noout -pubkey > "$T/life2.pub"
	NEWID=$(pub_keyid "$T/life2.pub")
	token_keys "$M" inst "$PIN" > "$T/keys"
	certs
	check_grep "the new key (id = its key identifier) is labelled life" "^Private\|$NEWID\|life$" "$T/keys"
	check_grep "the new certificate is labelled life with that id" "^$NEWID\|life\|1102$" "$T/certs"
	check_grep "the first certificate is retired" "\|life\.retired-[0-9]{8}\|1101$" "$T/certs"
}

# no token URI: the one initialised token (SoftHSM's free slot is no candidate)
test_no_token_uri() {
	token_keypair "$M" inst "$PIN" solo 71 "$T/solo.pub"
	issue "$CA" "$T/solo.pub" "$T/solo.pem" "solo.example.test" 0x0a00
	check "no URI: installs on the only initialised token" install "$T/solo.pem" --ca-file "$CA/root.pem"
	certs
	check_grep "...next to its key (id 71)" "^71\|" "$T/certs"
	new_token other
	issue "$CA" "$T/solo.pub" "$T/solo2.pem" "solo.example.test" 0x0a01
	check_fails "no URI and two initialised tokens: exit 4" 4 install "$T/solo2.pem" --ca-file "$CA/root.pem"
	check_grep "...naming both tokens" "token=inst.*token=other|token=other.*token=inst" "$T/err"
}

run_tests
