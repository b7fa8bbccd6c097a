#!/bin/sh
# roots install/remove/list: Debian's Mozilla roots into every store in one
# process, judged by openssl rehash/verify, curl --capath, p11tool,
# certutil and update-ca-certificates (in a scratch root).
# hundreds of token writes: use a RAM file system when there is one
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	TMPDIR=/dev/shm
	export TMPDIR
fi
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

setup() {
	need openssl p11tool certutil curl update-ca-certificates python3
	MOZ=/usr/share/ca-certificates/mozilla
	ls $MOZ/*.crt >/dev/null 2>&1 || skip_all "ca-certificates is not installed"
	[ -f "${P11SHIM:-}" ] || skip_all "the PKCS#11 shim is not built"
	softhsm_setup
	new_token trust
	M=$SOFTHSM2_MODULE
	SOPIN=$T/sopin-trust
	TOK="pkcs11:token=trust"
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	CA=$T/ca
	NMOZ=$(ls $MOZ/*.crt | wc -l)
}

links() { # DIR: "link sha256-of-target" for every hash link, sorted (python3 reads the PEM)
	python3 - "$1" <<'EOF'
import base64, hashlib, os, re, sys
d = sys.argv[1]
out = []
for n in os.listdir(d):
    p = os.path.join(d, n)
    if not (os.path.islink(p) and re.fullmatch(r"[0-9a-f]{8}\.[0-9]+", n)):
        continue
    pem = open(p).read()
    b64 = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S).group(1)
    out.append("%s %s" % (n, hashlib.sha256(base64.b64decode("".join(b64.split()))).hexdigest()))
print("\n".join(sorted(out)))
EOF
}
s_server() { # PORT
	openssl s_server -accept "127.0.0.1:$1" -cert "$T/srv.pem" -cert_chain "$CA/inter.pem" -key "$T/srv.key" \
		-www -quiet </dev/null &
	SERVER_PID=$!
}

# all Mozilla roots into four stores, one process, one session, one login
test_mozilla_four_stores() {
	check "install $NMOZ Mozilla roots into a token, a PEM bundle and an openssl-dir" \
		env P11KM_MODULE="$P11SHIM" P11SHIM_MODULE="$M" P11SHIM_COUNT_FILE="$T/counts" \
		"$P11KM" roots install $MOZ/*.crt "$CA/root.pem" --to "token:$TOK" --to "pem-bundle:$T/bundle.pem" \
		--to "openssl-dir:$T/dir" --so-pin-source "file:$SOPIN"
	cp "$T/out" "$T/install.out"
	N=$((NMOZ + 1))
	[ "$(awk '$1=="C_Login"{print $2}' "$T/counts")" = 1 ] && ok "one C_Login for $N certificates" ||
		not_ok "C_Login count: $(grep C_Login "$T/counts")"
	[ "$(awk '$1=="C_OpenSession"{print $2}' "$T/counts")" = 1 ] && ok "one C_OpenSession" ||
		not_ok "C_OpenSession count: $(grep C_OpenSession "$T/counts")"
	check_grep "each certificate is shown with its SHA-256 fingerprint and subject" \
		"openssl-dir:$T/dir: added: $(fp "$CA/root.pem") CN=p11km Test Root" "$T/install.out"
	check_grep "the summary counts them" "openssl-dir:$T/dir: $N added, 0 already present" "$T/install.out"

	# openssl-dir: the links openssl rehash makes
	mkdir "$T/rehash-ours" "$T/rehash-moz"
	cp "$T/dir/"*.pem "$T/rehash-ours/"
	openssl rehash "$T/rehash-ours" 2>/dev/null
	links "$T/dir" > "$T/links.ours"
	links "$T/rehash-ours" > "$T/links.rehash"
	[ "$(wc -l < "$T/links.ours")" = "$N" ] && ok "one hash link per certificate ($N)" ||
		not_ok "$(wc -l < "$T/links.ours") links"
	cmp -s "$T/links.ours" "$T/links.rehash" && ok "the same links (names and targets) as openssl rehash" ||
		{ not_ok "links differ from openssl rehash"; diff "$T/links.ours" "$T/links.rehash" | head -5 | sed 's/^/#   /'; }
	cp $MOZ/*.crt "$CA/root.pem" "$T/rehash-moz/"
	openssl rehash "$T/rehash-moz" 2>/dev/null
	links "$T/rehash-moz" | sed 's/\.[0-9]* / /' | sort > "$T/moz.pairs"
	sed 's/\.[0-9]* / /' "$T/links.ours" | sort > "$T/ours.pairs"
	cmp -s "$T/moz.pairs" "$T/ours.pairs" && ok "the same hash/certificate pairs as openssl rehash of the originals" ||
		not_ok "hash pairs differ from a rehash of the originals"

	# verify and curl with a chain rooted in the test root
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/srv.key" \
		-out "$T/srv.csr" -subj /CN=localhost 2>/dev/null
	openssl x509 -req -in "$T/srv.csr" -CA "$CA/inter.pem" -CAkey "$CA/inter.key" -set_serial 0x5001 \
		-days 30 -extfile "$CA/ca.cnf" -extensions leaf -out "$T/srv.pem" 2>/dev/null
	check "openssl verify -CApath accepts a chain rooted in the openssl-dir" \
		openssl verify -CApath "$T/dir" -untrusted "$CA/inter.pem" "$T/srv.pem"
	check "openssl verify -CAfile accepts it with the PEM bundle" \
		openssl verify -CAfile "$T/bundle.pem" -untrusted "$CA/inter.pem" "$T/srv.pem"
	[ "$(grep -c 'BEGIN CERTIFICATE' "$T/bundle.pem")" = "$N" ] && ok "the bundle holds $N certificates" ||
		not_ok "bundle count"
	check "openssl s_server starts" start_server "$T/s_server.log" 1 s_server
	SPID=$SERVER_PID
	cleanup_add "kill $SPID"
	check "curl --capath accepts the server" curl -sS -o /dev/null --capath "$T/dir" \
		--resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/"
	mkdir "$T/empty"
	check_fails "and refuses it with an empty capath" 60 curl -sS -o /dev/null --capath "$T/empty" \
		--resolve "localhost:$PORT:127.0.0.1" "https://localhost:$PORT/"
	kill $SPID 2>/dev/null

	# token: p11tool lists them as trusted
	p11tool --provider "$M" --list-all-trusted "$TOK" > "$T/trusted" 2>/dev/null
	[ "$(grep -c 'type=cert' "$T/trusted")" = "$N" ] && ok "p11tool --list-all-trusted shows the $N roots" ||
		not_ok "p11tool lists $(grep -c 'type=cert' "$T/trusted") trusted certificates"
	check_grep "including the test root" "object=p11km%20Test%20Root" "$T/trusted"
	p11tool --provider "$M" --list-all-certs "$TOK" > "$T/allcerts" 2>/dev/null
	check_grep "they are authority certificates" "CKA_CERTIFICATE_CATEGORY=CA" "$T/allcerts"

	# again: nothing changes, and it says so
	ls -l --time-style=full-iso "$T/dir" "$T/bundle.pem" > "$T/before"
	check "installing them again succeeds" "$P11KM" roots install $MOZ/*.crt "$CA/root.pem" \
		--to "token:$TOK" --to "pem-bundle:$T/bundle.pem" --to "openssl-dir:$T/dir" --so-pin-source "file:$SOPIN"
	check_grep "and says they are already present" "0 added, $N already present" "$T/out"
	check_grep "per certificate" "already present, unchanged: $(fp "$CA/root.pem")" "$T/out"
	ls -l --time-style=full-iso "$T/dir" "$T/bundle.pem" > "$T/after"
	cmp -s "$T/before" "$T/after" && ok "no file was rewritten" || not_ok "files changed"
	p11tool --provider "$M" --list-all-trusted "$TOK" 2>/dev/null | grep -c 'type=cert' > "$T/n"
	[ "$(cat "$T/n")" = "$N" ] && ok "no duplicate on the token" || not_ok "$(cat "$T/n") trusted objects"

	# a token store changes in one go: a failure half-way takes back what the run added
	new_token trust2
	FIVE=$(ls $MOZ/*.crt | head -5)
	check_fails "the 4th C_CreateObject fails (shim): the install fails" 3 env P11KM_MODULE="$P11SHIM" \
		P11SHIM_MODULE="$M" P11SHIM_FAIL_FUNC=C_CreateObject P11SHIM_FAIL_AT=4 P11SHIM_FAIL_RV=CKR_DEVICE_MEMORY \
		"$P11KM" roots install $FIVE --to "token:pkcs11:token=trust2" --so-pin-source "file:$T/sopin-trust2"
	p11tool --provider "$M" --list-all-trusted "pkcs11:token=trust2" > "$T/trusted2" 2>/dev/null
	[ "$(grep -c 'type=cert' "$T/trusted2")" = 0 ] && ok "p11tool: the three added before the failure were taken back" ||
		not_ok "$(grep -c 'type=cert' "$T/trusted2") trusted certificates left"

	# removals too: the 3rd C_DestroyObject fails, the two destroyed before are put back
	FOUR=$(ls $MOZ/*.crt | head -4)
	"$P11KM" roots install $FOUR --to "token:pkcs11:token=trust2" --so-pin-source "file:$T/sopin-trust2" >/dev/null
	check_fails "the 3rd C_DestroyObject fails (shim): the removal fails" 3 env P11KM_MODULE="$P11SHIM" \
		P11SHIM_MODULE="$M" P11SHIM_FAIL_FUNC=C_DestroyObject P11SHIM_FAIL_AT=3 P11SHIM_FAIL_RV=CKR_DEVICE_MEMORY \
		"$P11KM" roots remove $FOUR --from "token:pkcs11:token=trust2" --so-pin-source "file:$T/sopin-trust2"
	check_grep "and says the two removed before were put back" "2 certificates removed before were put back" "$T/err"
	p11tool --provider "$M" --list-all-trusted "pkcs11:token=trust2" > "$T/trusted2" 2>/dev/null
	check_eq "p11tool: the token still trusts all four" "$(grep -c 'type=cert' "$T/trusted2")" 4
	check "a clean removal afterwards" "$P11KM" roots remove $FOUR --from "token:pkcs11:token=trust2" \
		--so-pin-source "file:$T/sopin-trust2"
	p11tool --provider "$M" --list-all-trusted "pkcs11:token=trust2" > "$T/trusted2" 2>/dev/null
	check_eq "p11tool: none left" "$(grep -c 'type=cert' "$T/trusted2")" 0
}

# one root into a token: the calls do not grow with the roots the token holds
# (trust2 holds 5 roots, $TOK holds all $N Mozilla roots and the test root)
shim_roots() { # shim_roots TOKEN SOPIN CERT: install, counts in $T/counts
	env P11KM_MODULE="$P11SHIM" P11SHIM_MODULE="$M" P11SHIM_COUNT_FILE="$T/counts" \
		"$P11KM" roots install "$3" --to "token:pkcs11:token=$1" --so-pin-source "file:$2" >/dev/null 2>&1
}

# list, dry run, JSON
test_list_dry_run_json() {
	check "roots list openssl-dir" "$P11KM" roots list "openssl-dir:$T/dir"
	[ "$(wc -l < "$T/out")" = "$N" ] && ok "lists $N certificates" || not_ok "list: $(wc -l < "$T/out")"
	check "roots list token" "$P11KM" roots list "token:$TOK"
	check_grep "the token list shows the test root's fingerprint" "^$(fp "$CA/root.pem") " "$T/out"
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/r2.key" \
		-out "$T/root2.pem" -days 30 -subj "/CN=p11km Second Root" \
		-addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
	check "--dry-run" "$P11KM" roots install "$T/root2.pem" --to "openssl-dir:$T/dir" --to "pem-bundle:$T/bundle.pem" --dry-run
	check_grep "--dry-run shows what would change per store" "openssl-dir:$T/dir: would add: $(fp "$T/root2.pem")" "$T/out"
	check_grep "in each store" "pem-bundle:$T/bundle.pem: would add" "$T/out"
	ls -l --time-style=full-iso "$T/dir" "$T/bundle.pem" > "$T/after"
	cmp -s "$T/before" "$T/after" && ok "--dry-run changed nothing" || not_ok "--dry-run changed files"
	"$P11KM" roots install $FIVE --to "token:pkcs11:token=trust2" --so-pin-source "file:$T/sopin-trust2" >/dev/null
	shim_roots trust2 "$T/sopin-trust2" "$T/root2.pem"; c_empty=$(count_of total)
	shim_roots trust "$SOPIN" "$T/root2.pem"; c_full=$(count_of total); g_full=$(count_of C_GetAttributeValue)
	check_eq "installing one root into a token holding $N roots: as many calls as into one holding 5 ($c_empty)" \
		"$c_full" "$c_empty"
	check_eq "one C_GetAttributeValue (the read-back of the new object)" "$g_full" 1
	p11tool --provider "$M" --list-all-trusted "$TOK" 2>/dev/null | grep -c 'type=cert' > "$T/n"
	check_eq "p11tool: the token holds the new root too" "$(cat "$T/n")" "$((N + 1))"
	shim_roots trust "$SOPIN" "$T/root2.pem"; c_again=$(count_of total)
	check_eq "installing it again finds it with a targeted search, adds nothing" \
		"$(count_of C_CreateObject)|$(count_of C_GetAttributeValue)" "0|0"
	p11tool --provider "$M" --list-all-trusted "$TOK" 2>/dev/null | grep -c 'type=cert' > "$T/n"
	check_eq "p11tool: no duplicate" "$(cat "$T/n")" "$((N + 1))"
	echo "# one root into a token: $c_empty calls (5 roots), $c_full ($N roots), $c_again (already there)"
	check "--json install" "$P11KM" --json roots install "$T/root2.pem" --to "pem-bundle:$T/bundle.pem"
	cp "$T/out" "$T/json"
	check "the JSON says what was added" python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
assert d['stores'][0]['added'] == [sys.argv[2]], d
assert d['certificates'][0]['subject'] == 'CN=p11km Second Root', d
" "$T/json" "$(fp "$T/root2.pem")"
}

# only CA certificates
test_ca_only() {
	check_fails "a non-CA certificate is refused as a root" 2 "$P11KM" roots install "$T/srv.pem" --to "pem-bundle:$T/b2.pem"
	check_grep "saying why and what to do" "not a CA certificate.*--allow-non-ca" "$T/err"
	[ ! -e "$T/b2.pem" ] && ok "nothing was written" || not_ok "b2.pem written"
	check "--allow-non-ca accepts it" "$P11KM" roots install "$T/srv.pem" --to "pem-bundle:$T/b2.pem" --allow-non-ca
	# a CA certificate claiming to be self-issued whose signature does not verify
	openssl x509 -in "$CA/root.pem" -outform DER -out "$T/root.der"
	python3 - "$T/root.der" "$T/forged.der" <<'EOF'
import sys
d = bytearray(open(sys.argv[1], 'rb').read())
d[-5] ^= 0x01   # inside the signature value
open(sys.argv[2], 'wb').write(d)
EOF
	check_fails "a root with a broken self-signature is refused" 2 "$P11KM" roots install "$T/forged.der" --to "pem-bundle:$T/b3.pem"
	check_grep "saying so" "self-signature" "$T/err"
}

# remove
test_remove() {
	FPR=$(fp "$T/root2.pem" | sed 's/../&:/g; s/:$//')
	check "remove by fingerprint (with colons)" "$P11KM" roots remove "$FPR" --from "pem-bundle:$T/bundle.pem"
	check "openssl: the bundle no longer verifies the second root" sh -c "! openssl verify -CAfile '$T/bundle.pem' '$T/root2.pem' >/dev/null 2>&1"
	check_fails "removing it again is an error" 4 "$P11KM" roots remove "$FPR" --from "pem-bundle:$T/bundle.pem"
	check "unless --force" "$P11KM" --force roots remove "$FPR" --from "pem-bundle:$T/bundle.pem"
	check "remove the test root by file from the token and the openssl-dir" "$P11KM" roots remove "$CA/root.pem" \
		--from "token:$TOK" --from "openssl-dir:$T/dir" --so-pin-source "file:$SOPIN"
	check_fails "openssl verify -CApath no longer accepts the chain" 2 openssl verify -CApath "$T/dir" -untrusted "$CA/inter.pem" "$T/srv.pem"
	links "$T/dir" > "$T/links.ours"
	rm -rf "$T/rehash-ours"; mkdir "$T/rehash-ours"; cp "$T/dir/"*.pem "$T/rehash-ours/"
	openssl rehash "$T/rehash-ours" 2>/dev/null
	links "$T/rehash-ours" > "$T/links.rehash"
	cmp -s "$T/links.ours" "$T/links.rehash" && ok "after removal the links still match openssl rehash" ||
		not_ok "links differ after removal"
	p11tool --provider "$M" --list-all-trusted "$TOK" > "$T/trusted" 2>/dev/null
	check_nogrep "p11tool no longer lists the test root" "p11km%20Test%20Root" "$T/trusted"
}

# NSS
test_nss() {
	check "install into a new NSS database" "$P11KM" roots install "$CA/root.pem" "$T/root2.pem" --to "nss:$T/nss"
	certutil -L -d "sql:$T/nss" > "$T/certutil" 2>&1
	check_grep "certutil lists the test root with trust C,," "p11km Test Root.*C,," "$T/certutil"
	check_grep "and the second root" "p11km Second Root.*C,," "$T/certutil"
	check "again: nothing changes" "$P11KM" roots install "$CA/root.pem" --to "nss:$T/nss"
	check_grep "it says so" "0 added, 1 already present" "$T/out"
	check "roots list nss" "$P11KM" roots list "nss:$T/nss"
	check_grep "lists it by fingerprint" "^$(fp "$CA/root.pem") " "$T/out"
	check "remove from NSS" "$P11KM" roots remove "$T/root2.pem" --from "nss:$T/nss"
	certutil -L -d "sql:$T/nss" > "$T/certutil" 2>&1
	check_nogrep "certutil no longer lists it" "Second Root" "$T/certutil"
	# an NSS database changes in one go: the 2nd certutil -A fails (a certutil
	# wrapper first in PATH), the first one added is taken back out
	mkdir -p "$T/fakebin"
	REAL_CERTUTIL=$(command -v certutil)
	cat > "$T/fakebin/certutil" <<EOF
#!/bin/sh
case " \$* " in *" -A "*)
	n=\$(cat "$T/fakebin/n" 2>/dev/null || echo 0); n=\$((n + 1)); echo \$n > "$T/fakebin/n"
	[ \$n = 2 ] && { echo "certutil: injected failure" >&2; exit 1; };;
esac
exec "$REAL_CERTUTIL" "\$@"
EOF
	chmod +x "$T/fakebin/certutil"
	THREE=$(ls $MOZ/*.crt | head -3)
	check_fails "the 2nd certutil -A fails: the install fails" 1 env PATH="$T/fakebin:$PATH" \
		"$P11KM" roots install $THREE --to "nss:$T/nss"
	check_grep "and says the first was taken back" "taken back" "$T/err"
	certutil -L -d "sql:$T/nss" > "$T/certutil" 2>&1
	check_eq "certutil: the database holds what it held before (the test root alone)" \
		"$(tail -n +5 "$T/certutil" | grep -c .)" 1
}

anchors() { find "$R/usr/local/share/ca-certificates" -type f -exec sha256sum {} + | sort; }
bundle_sum() { { sha256sum < "$R/etc/ssl/certs/ca-certificates.crt"; } 2>/dev/null || echo none; }

# system store in a scratch root
test_system_store() {
	R=$T/sysroot
	mkdir -p "$R/etc/ssl/certs" "$R/usr/local/share/ca-certificates" "$R/usr/share/ca-certificates" \
		"$R/etc/ca-certificates/update.d"
	: > "$R/etc/ca-certificates.conf"
	# someone else's local root: Debian's tool rebuilds the bundle only when it
	# holds at least one certificate
	cp "$T/root2.pem" "$R/usr/local/share/ca-certificates/other.crt"
	ls -la /usr/local/share/ca-certificates > "$T/real.before" 2>&1
	# ca-certificates before 20250419 (a fresh Debian 12 image has 20230311) has
	# no --sysroot: given one, its tool prints its usage, exits 0 and changes
	# nothing.  A stub that does just that stands for it whatever this machine has.
	mkdir -p "$T/oldbin"
	printf '#!/bin/sh\necho "$0: [--verbose] [--fresh]"\nexit 0\n' > "$T/oldbin/update-ca-certificates"
	chmod +x "$T/oldbin/update-ca-certificates"
	anchors > "$T/anchors.before"; bundle_sum > "$T/bundle.before"
	check_fails "an update-ca-certificates without --sysroot: the install under --system-root is refused" 1 \
		env PATH="$T/oldbin:$PATH" "$P11KM" roots install "$CA/root.pem" --to system --system-root "$R"
	check_one_line_error "  ... in one line naming the tool and its version" \
		"update-ca-certificates \(ca-certificates [^)]+\) has no --sysroot.*nothing was changed"
	anchors > "$T/anchors.after"; bundle_sum > "$T/bundle.after"
	check "  ... before any anchor file changed" cmp "$T/anchors.before" "$T/anchors.after"
	check "  ... or the bundle" cmp "$T/bundle.before" "$T/bundle.after"
	check "  ... and roots list shows no such root" env P11KM_SYSTEM_ROOT="$R" "$P11KM" roots list system
	check_nogrep "  ... (roots list)" "^$(fp "$CA/root.pem") " "$T/out"

	UCC=$(command -v update-ca-certificates)
	if ! grep -q -- '--sysroot)' "$UCC"; then
		# this machine's tool is the old one: p11km refuses it the same way
		check_fails "this machine's $UCC has no --sysroot: refused too" 1 \
			"$P11KM" roots install "$CA/root.pem" --to system --system-root "$R"
		if [ "${CI:-}" = true ]; then
			not_ok "update-ca-certificates has no --sysroot: contrib/deps.sh must upgrade ca-certificates"
		else
			echo "# $(dpkg-query -W ca-certificates 2>/dev/null): no --sysroot; the tests with the real tool need ca-certificates >= 20250419 (contrib/deps.sh)"
		fi
	else
	check "install into the system store under --system-root" "$P11KM" roots install "$CA/root.pem" --to system --system-root "$R"
	check "update-ca-certificates put it into the bundle" openssl verify -CAfile "$R/etc/ssl/certs/ca-certificates.crt" \
		-untrusted "$CA/inter.pem" "$T/srv.pem"
	check "P11KM_SYSTEM_ROOT works the same (list)" env P11KM_SYSTEM_ROOT="$R" "$P11KM" roots list system
	check_grep "and lists the root" "^$(fp "$CA/root.pem") " "$T/out"
	check "remove from the system store" env P11KM_SYSTEM_ROOT="$R" "$P11KM" roots remove "$CA/root.pem" --from system
	check_fails "the bundle no longer has it" 2 openssl verify -CAfile "$R/etc/ssl/certs/ca-certificates.crt" \
		-untrusted "$CA/inter.pem" "$T/srv.pem"
	# update-ca-certificates fails: the anchor files are put back, so that the
	# next run (which then succeeds) does the whole install again
	mkdir -p "$T/fakebin2"
	# (it fails for the store's root only, not for p11km's --sysroot check)
	printf '#!/bin/sh\n[ "$2" = "%s" ] || exec "%s" "$@"\necho "update-ca-certificates: injected failure" >&2\nexit 1\n' \
		"$R" "$UCC" > "$T/fakebin2/update-ca-certificates"
	chmod +x "$T/fakebin2/update-ca-certificates"
	ls -R "$R/usr/local/share/ca-certificates" > "$T/anchors.before"
	check_fails "update-ca-certificates fails: the install fails" 1 env PATH="$T/fakebin2:$PATH" \
		"$P11KM" roots install "$CA/root.pem" --to system --system-root "$R"
	check_grep "and says the anchor files were put back" "put back as they were" "$T/err"
	check_nogrep "without waiting on its own directory lock" "waiting for another p11km run" "$T/err"
	ls -R "$R/usr/local/share/ca-certificates" > "$T/anchors.after"
	check "the anchor files are as before" cmp "$T/anchors.before" "$T/anchors.after"
	# update-ca-certificates exits 0 and changes nothing (for the store's root;
	# the real tool answers p11km's --sysroot check): p11km reads the bundle
	# back, fails and puts the anchor files back
	mkdir -p "$T/fakebin3"
	printf '#!/bin/sh\n[ "$2" = "%s" ] || exec "%s" "$@"\nexit 0\n' "$R" "$UCC" > "$T/fakebin3/update-ca-certificates"
	chmod +x "$T/fakebin3/update-ca-certificates"
	anchors > "$T/anchors.before"; bundle_sum > "$T/bundle.before"
	check_fails "update-ca-certificates exits 0, the bundle is unchanged: the install fails" 1 \
		env PATH="$T/fakebin3:$PATH" "$P11KM" roots install "$CA/root.pem" --to system --system-root "$R"
	check_one_line_error "  ... in one line naming the tool, its version and the missing root" \
		"update-ca-certificates \(ca-certificates [^)]+\) exited 0 but '$R/etc/ssl/certs/ca-certificates.crt' does not hold the added root $(fp "$CA/root.pem"); the anchor files were put back as they were"
	anchors > "$T/anchors.after"; bundle_sum > "$T/bundle.after"
	check "  ... the anchor files are as before" cmp "$T/anchors.before" "$T/anchors.after"
	check "  ... and the bundle" cmp "$T/bundle.before" "$T/bundle.after"
	check "the next run installs it" "$P11KM" roots install "$CA/root.pem" --to system --system-root "$R"
	check "and the bundle has it" openssl verify -CAfile "$R/etc/ssl/certs/ca-certificates.crt" \
		-untrusted "$CA/inter.pem" "$T/srv.pem"
	anchors > "$T/anchors.before"
	check_fails "a removal whose bundle still holds the root fails" 1 env PATH="$T/fakebin3:$PATH" \
		"$P11KM" roots remove "$CA/root.pem" --from system --system-root "$R"
	check_one_line_error "  ... saying so" "exited 0 but '.*' still holds the removed root $(fp "$CA/root.pem"); the anchor files were put back"
	check "  ... and puts its anchor file back" sh -c "ls '$R/usr/local/share/ca-certificates/p11km/' | grep -q '^p11km-.*\.crt$'"
	check "remove it again" env P11KM_SYSTEM_ROOT="$R" "$P11KM" roots remove "$CA/root.pem" --from system
	check_fails "and the bundle no longer has it" 2 openssl verify -CAfile "$R/etc/ssl/certs/ca-certificates.crt" \
		-untrusted "$CA/inter.pem" "$T/srv.pem"
	fi
	ls -la /usr/local/share/ca-certificates > "$T/real.after" 2>&1
	cmp -s "$T/real.before" "$T/real.after" && ok "the real /usr/local/share/ca-certificates is untouched" ||
		not_ok "the real system store changed"

	# a RHEL-like scratch root: the anchors directory, update-ca-trust not run off "/"
	RH=$T/rhel
	mkdir -p "$RH/etc/pki/ca-trust/source/anchors"
	check "install into a RHEL-style system store" "$P11KM" roots install "$CA/root.pem" --to system --system-root "$RH"
	check_grep "it notes that update-ca-trust only runs on /" "not running update-ca-trust" "$T/err"
	check "the anchor file is the root" sh -c "openssl x509 -in $RH/etc/pki/ca-trust/source/anchors/p11km-*.crt -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr A-F a-f | grep -qx $(fp "$CA/root.pem")"
	check_fails "no system store at all is an error" 1 "$P11KM" roots list system --system-root "$T/empty"
}

# bad store names
test_bad_store_names() {
	check_fails "an unknown store kind is a usage error" 2 "$P11KM" roots list "ldap:x"
	check_fails "a store is required" 2 "$P11KM" roots install "$CA/root.pem"
	# listing a store that is not there (a mistyped path) fails instead of
	# printing an empty store
	for st in "pem-bundle:$T/no-such.pem" "openssl-dir:$T/no-such-dir" "nss:$T/no-such-db"; do
		check_fails "roots list of a missing store: $st" 4 "$P11KM" roots list "$st"
		check_one_line_error "  ... one line saying so" "No such file or directory; check the path"
		check_no_stdout "  ... and nothing on stdout"
	done
	check_fails "roots list pem-bundle: of a directory" 2 "$P11KM" roots list "pem-bundle:$T"
	check_one_line_error "  ... one line pointing to openssl-dir:" "is a directory; pem-bundle: names a file"
}

run_tests
