#!/bin/bash
# What a new user types first: typos get a "did you mean", a PIN on the
# command line points to --pin-source without echoing it, -V and 'version',
# 'key list' and 'cert list', 'object list --type', --json errors as JSON,
# -o /dev/null, a relative --module path, and the registry modules' own
# stderr noise kept for --verbose.  Judged by pkcs11-tool and python's json.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

setup() {
	need pkcs11-tool openssl python3
	softhsm_setup
	new_token nc
	M=$SOFTHSM2_MODULE
	PIN=$T/pin-nc
	TOK="pkcs11:token=nc"
}

typo() { # DESCRIPTION SUGGESTION ARGS...
	_d=$1 _s=$2; shift 2
	check_fails "$_d" 2 "$P11KM" "$@"
	check_one_line_error "  ... did you mean $_s" "did you mean '$_s'\\?"
}

# did you mean
test_did_you_mean() {
	typo "cert instal" "cert install" cert instal reply.pem
	typo "token lsit" "token list" token lsit
	typo "tokn list" "token" tokn list
	typo "objcet list" "object" objcet list
	typo "token list --jsn" "--json" token list --jsn
	typo "--jsno before the noun" "--json" --jsno token list
	typo "cert install --ca-fle" "--ca-file" cert install reply.pem --ca-fle x
	check_fails "a word far from every noun" 2 "$P11KM" frobnicate list
	check_nogrep "  ... gets no guess" "did you mean" "$T/err"
}

# a PIN on the command line
test_pin_on_command_line() {
	for form in "--pin 918273" "--pin=918273" "-p 918273" "--so-pin 918273"; do
		# shellcheck disable=SC2086
		check_fails "'$form' is refused" 2 "$P11KM" token list $form
		check_one_line_error "  ... pointing to --pin-source" "never comes from the command line.*--(so-)?pin-source"
		check_nogrep "  ... without echoing the value" "918273" "$T/err"
	done
	check_fails "'bind emit --pin 918273' is not taken for --pin-file" 2 "$P11KM" bind emit nginx \
		--key "$TOK;object=x;type=private" --pin 918273 --out-dir "$T/nobind"
	check_nogrep "  ... and not echoed" "918273" "$T/err"
	check "  ... nothing was written" test ! -e "$T/nobind"
}

# versions
test_versions() {
	"$P11KM" --version > "$T/v"
	check "-V" "$P11KM" -V
	check_eq "  ... prints what --version prints" "$(cat "$T/out")" "$(cat "$T/v")"
	check "p11km version" "$P11KM" version
	check_eq "  ... prints what --version prints" "$(cat "$T/out")" "$(cat "$T/v")"
}

uris() { json_get "$T/out" '"\n".join(o["class"] + " " + o["id"] for o in d["objects"])' | sort; }

# key list, cert list, object list --type
test_lists() {
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	token_keypair "$M" nc "$PIN" web 01 "$T/web.pub" || { echo "keygen failed"; exit 99; }
	issue "$T/ca" "$T/web.pub" "$T/leaf.pem" web.example.test 0x0f01
	cat "$T/leaf.pem" "$T/ca/inter.pem" > "$T/reply.pem"
	"$P11KM" cert install "$T/reply.pem" "$TOK" --pin-source "file:$PIN" --ca-file "$T/ca/root.pem" \
		>/dev/null 2>&1 || { echo "cert install failed"; exit 99; }
	"$P11KM" roots install "$T/ca/root.pem" --to "token:$TOK" --so-pin-source "file:$T/sopin-nc" \
		>/dev/null 2>&1 || { echo "roots install failed"; exit 99; }
	# pkcs11-tool's view: "class id" per object
	pkcs11-tool --module "$M" --token-label nc --login --pin "$(cat "$PIN")" -O 2>/dev/null |
		awk '/^Private Key Object/{c="private"} /^Public Key Object/{c="public"}
	     /^Certificate Object/{c="cert"} /^  ID:/{print c, $2}' | sort > "$T/ref"
	for t in cert private public; do
		check "object list --type $t" "$P11KM" --json --pin-source "file:$PIN" object list "$TOK" --type $t
		check_eq "  ... the objects pkcs11-tool lists as $t" "$(uris)" "$(grep "^$t " "$T/ref")"
	done
	check "object list --type trusted" "$P11KM" --json --pin-source "file:$PIN" object list "$TOK" --type trusted
	check_eq "  ... the root only" "$(json_get "$T/out" '",".join(o["certificate"]["subject"] for o in d["objects"])')" \
		"$(openssl x509 -in "$T/ca/root.pem" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')"
	check_fails "object list --type frob" 2 "$P11KM" object list "$TOK" --type frob
	check "key list" "$P11KM" --json --pin-source "file:$PIN" key list "$TOK"
	check_eq "  ... the private and public keys" "$(uris)" "$(grep -E '^(private|public) ' "$T/ref")"
	check "cert list" "$P11KM" --json cert list "$TOK"
	check_eq "  ... the certificates" "$(uris)" "$(grep '^cert ' "$T/ref")"
	check "object list (text)" "$P11KM" --pin-source "file:$PIN" object list "$TOK"
	check_eq "  ... an engine uri line for each key only" "$(grep -c '^    engine uri:' "$T/out")" \
		"$(grep -cE '^(private|public) ' "$T/ref")"
}

# --json errors
test_json_errors() {
	check_fails "--json and an unknown verb" 2 "$P11KM" --json token frob
	check_eq "  ... one JSON object on stdout with the exit status" \
		"$(json_get "$T/out" 'd["error"]["exit"]')" 2
	check_eq "  ... and the message of the stderr line" "p11km: $(json_get "$T/out" 'd["error"]["message"]')" \
		"$(cat "$T/err")"
	check_fails "--json and nothing matched" 4 "$P11KM" --json object list "pkcs11:token=nonesuch"
	check_eq "  ... exit 4 in the JSON" "$(json_get "$T/out" 'd["error"]["exit"]')" 4
	check_eq "  ... and nothing else on stdout" "$(wc -l < "$T/out")" 1
}

# -o /dev/null
test_dev_null() {
	check "req new -o /dev/null" "$P11KM" --pin-source "file:$PIN" req new "$TOK;object=web;type=private" \
		--subject CN=x -o /dev/null
	check "object export -o /dev/null" "$P11KM" object export "$TOK;object=web;type=cert" -o /dev/null
	check "  ... /dev/null is still a character device" test -c /dev/null
}

# a relative --module path
test_relative_module() {
	mkdir -p "$T/lib"
	cp "$M" "$T/lib/softhsm-copy.so"
	check "--module lib/softhsm-copy.so (relative to the working directory)" \
		sh -c 'cd "$1" && "$2" --module lib/softhsm-copy.so token list' _ "$T" "$P11KM"
	check_grep "  ... lists the token" "token=nc" "$T/out"
}

# registry modules' stderr
test_registry_stderr() {
	if [ -f /usr/share/p11-kit/modules/tpm2_pkcs11.module ]; then
		# tpm2-pkcs11 without a TPM prints ERROR:tcti lines (and leaks: not ours)
		mkdir -p "$T/tpm2store"
		check "without --module: token list walks the registry" env -u P11KM_MODULE \
			ASAN_OPTIONS=detect_leaks=0 TPM2_PKCS11_STORE="$T/tpm2store" "$P11KM" token list
		check_nogrep "  ... the module's own ERROR lines are not shown" '^(ERROR|WARNING)|tcti' "$T/err"
		check_grep "  ... p11km's one-line note is" "note: skipping module 'tpm2_pkcs11'" "$T/err"
		check "  ... --verbose" env -u P11KM_MODULE ASAN_OPTIONS=detect_leaks=0 \
			TPM2_PKCS11_STORE="$T/tpm2store" "$P11KM" --verbose token list
		check_grep "  ... shows them, attributed to the module" "module 'tpm2_pkcs11' printed: .*ERROR" "$T/err"
	else
		not_ok "tpm2-pkcs11 is not registered with p11-kit (contrib/deps.sh installs libtpm2-pkcs11-1)"
	fi
}

run_tests
