#!/bin/bash
# token init and token list on a throwaway SoftHSM2 token directory, judged
# by pkcs11-tool; module loading by path, by registered name and through the
# p11-kit registry (where tpm2_pkcs11, with no TPM running, fails to start).
. "$top_srcdir/tests/lib/common.sh"

setup() {
	need pkcs11-tool python3
	softhsm_setup
	M=$SOFTHSM2_MODULE
}

# an empty token directory: one free, uninitialised slot
test_empty_slot() {
	check "token list with no initialised token" "$P11KM" token list
	check_grep "the free slot is shown as not initialised" 'state: +not initialised' "$T/out"
	check "token list --json" "$P11KM" --json token list
	check_eq "JSON: one token, initialized false" \
		"$(json_get "$T/out" '[t["flags"]["initialized"] for t in d["tokens"]]')" "[False]"
}

# token init on the free slot
test_init() {
	upin=$(pin_file upin 1234)
	sopin=$(pin_file sopin 12345678)
	check "token init T1" "$P11KM" token init --label T1 --so-pin-source "file:$sopin" --pin-source "file:$upin"
	t1uri=$(cat "$T/out")
	check_grep "token init prints the new token's URI" '^pkcs11:.*token=T1$' "$T/out"
	check "pkcs11-tool sees T1 initialised with its user PIN set" \
		sh -c "pkcs11-tool --module '$M' -L 2>/dev/null | grep -A6 'token label *: T1\$' | grep -q 'PIN initialized'"
	check "pkcs11-tool logs in to T1 with the user PIN" \
		pkcs11-tool --module "$M" --token-label T1 --login --pin 1234 -O
	check_fails "pkcs11-tool refuses a wrong user PIN (the PIN is really set)" 1 \
		pkcs11-tool --module "$M" --token-label T1 --login --pin 9999 -O
	check "pkcs11-tool logs in to T1 as SO with the SO PIN (and sets the user PIN again)" \
		pkcs11-tool --module "$M" --token-label T1 --login --login-type so --so-pin 12345678 --init-pin --pin 1234
	check "token init T2 (the next free slot)" "$P11KM" --json token init --label "T2 with space" \
		--so-pin-source "file:$sopin" --pin-source "file:$upin"
	check_eq "token init --json gives uri, label and serial" \
		"$(json_get "$T/out" 'sorted(d.keys())')" "['label', 'serial', 'uri']"

	# Re-initialising an initialised token destroys its keys: refused.
	check_fails "token init on an initialised token is refused" 1 \
		"$P11KM" token init "$t1uri" --label T1 --so-pin-source "file:$sopin" --pin-source "file:$upin"
	check_no_stdout "no output for the refusal"
	check_one_line_error "the refusal is one line naming --force" 'already initialised.*--force'
	# With --force it is re-initialised: the key pkcs11-tool made is gone.
	pkcs11-tool --module "$M" --token-label T1 --login --pin 1234 --keypairgen --key-type EC:prime256v1 \
		--label doomed --id 01 >/dev/null 2>&1
	check "token init --force re-initialises T1" "$P11KM" --force token init "$t1uri" --label T1 \
		--so-pin-source "file:$sopin" --pin-source "file:$upin"
	check_eq "the re-initialised T1 keeps its URI" "$(cat "$T/out")" "$t1uri"
	check_eq "pkcs11-tool: the key on T1 is gone" \
		"$(pkcs11-tool --module "$M" --token-label T1 --login --pin 1234 -O 2>/dev/null | grep -c 'Object;')" 0
	# Labels select tokens: a second token labelled T1 is refused.
	check_fails "token init with a label another token has: refused" 1 \
		"$P11KM" token init --label T1 --so-pin-source "file:$sopin" --pin-source "file:$upin"
	check_one_line_error "the refusal names the other token" "a token labelled 'T1' exists already \\(pkcs11:.*token=T1\\)"
	check_no_stdout "nothing on stdout"
	check_eq "still one token labelled T1 (pkcs11-tool -L)" "$(pkcs11-tool --module "$M" -L 2>/dev/null | grep -c 'token label *: T1$')" 1
	check_fails "token init without --label" 2 "$P11KM" token init --so-pin-source "file:$sopin" --pin-source "file:$upin"
	check_fails "token init with a 33-byte label" 2 "$P11KM" token init --label 123456789012345678901234567890123 \
		--so-pin-source "file:$sopin" --pin-source "file:$upin"
	check_fails "token init without PIN sources" 2 "$P11KM" token init --label T3
}

# token list against pkcs11-tool -L
test_list() {
	check "token list --json (3 tokens)" "$P11KM" --json token list
	cp "$T/out" "$T/tokens.json"
	check "the JSON is valid" python3 -m json.tool "$T/tokens.json"
	pkcs11-tool --module "$M" -L > "$T/L.txt" 2>/dev/null
	cat > "$T/cmp.py" <<'EOF'
import json, re, sys
mine = json.load(open(sys.argv[1]))["tokens"]
ref = []
for block in re.split(r"\nSlot ", open(sys.argv[2]).read()):
    f = dict((k.strip(), v.strip()) for k, _, v in
             (l.partition(":") for l in block.splitlines()[1:] if ":" in l))
    if "token label" in f or "token state" in f:
        ref.append(f)
bad = []
want_keys = {"uri", "label", "manufacturer", "model", "serial", "module", "slot", "flags",
             "key_types", "signing"}
for t in mine:
    if set(t) != want_keys:
        bad.append("keys %s" % sorted(t))
inited = [f for f in ref if "token label" in f]
if len(mine) != len(ref):
    bad.append("p11km lists %d tokens, pkcs11-tool %d slots with tokens" % (len(mine), len(ref)))
for f in inited:
    m = [t for t in mine if t["label"] == f["token label"]]
    if len(m) != 1:
        bad.append("%s listed %d times" % (f["token label"], len(m)))
        continue
    t = m[0]
    for k, r in (("manufacturer", "token manufacturer"), ("model", "token model"),
                 ("serial", "serial num")):
        if t[k] != f[r]:
            bad.append("%s: %s %r, pkcs11-tool %r" % (t["label"], k, t[k], f[r]))
    flags = f["token flags"]
    for k, words in (("login_required", "login required"), ("rng", "rng"),
                     ("initialized", "token initialized"),
                     ("user_pin_initialized", "PIN initialized")):
        if t["flags"][k] != (words in flags):
            bad.append("%s: flag %s %s, pkcs11-tool: %s" % (t["label"], k, t["flags"][k], flags))
    if "ec:p256" not in t["key_types"] or "rsa:2048" not in t["key_types"]:
        bad.append("%s: key types %s" % (t["label"], t["key_types"]))
    if not t["uri"].startswith("pkcs11:") or "token=" not in t["uri"]:
        bad.append("uri %s" % t["uri"])
for b in bad:
    print("# " + b)
sys.exit(1 if bad else 0)
EOF
	check "label, manufacturer, model, serial and flags match pkcs11-tool -L" \
		python3 "$T/cmp.py" "$T/tokens.json" "$T/L.txt"
	[ -s "$T/out" ] && cat "$T/out"
	# Mechanisms: SoftHSM signs with RSA-PSS and ECDSA (pkcs11-tool -M says so).
	pkcs11-tool --module "$M" --token-label T1 -M > "$T/M.txt" 2>/dev/null
	check_grep "pkcs11-tool: SoftHSM has RSA-PKCS-PSS" 'RSA-PKCS-PSS' "$T/M.txt"
	check_eq "p11km: T1 signs with rsa-pkcs1, rsa-pss, ecdsa, eddsa" \
		"$(json_get "$T/tokens.json" '[t["signing"] for t in d["tokens"] if t["label"] == "T1"][0]')" \
		"['rsa-pkcs1', 'rsa-pss', 'ecdsa', 'eddsa']"

	# Each token URI selects exactly that token.
	n=0; same=0
	for uri in $(json_get "$T/tokens.json" '" ".join(t["uri"] for t in d["tokens"])'); do
		n=$((n + 1))
		"$P11KM" --json token list "$uri" > "$T/one.json" 2>/dev/null &&
			[ "$(json_get "$T/one.json" '[t["uri"] for t in d["tokens"]]')" = "['$uri']" ] && same=$((same + 1))
	done
	check_eq "each of the $n token URIs selects exactly its token" "$same" "$n"
	check_fails "a URI matching no token: exit 4" 4 "$P11KM" token list 'pkcs11:token=nosuch'
	check_no_stdout "nothing on stdout"
	# Global options before the noun and after the verb alike.
	"$P11KM" --json token list > "$T/a" 2>/dev/null
	"$P11KM" token list --json > "$T/b" 2>/dev/null
	check "--json before the noun and after the verb give the same output" cmp "$T/a" "$T/b"

	# A label that is not UTF-8 (nothing stops a token from having one) still
	# gives valid JSON, and its URI still selects it.
	softhsm2-util --init-token --free --label "$(printf 'bad\377label')" --so-pin 12345678 --pin 1234 >/dev/null 2>&1
	check "token list --json with a non-UTF-8 label" "$P11KM" --json token list
	cp "$T/out" "$T/bad.json"
	check "... is valid JSON" python3 -m json.tool "$T/bad.json"
	baduri=$(json_get "$T/bad.json" '[t["uri"] for t in d["tokens"] if t["label"].startswith("bad")][0]')
	check_eq "its URI percent-encodes the byte" "$(printf '%s' "$baduri" | grep -o 'token=bad%FFlabel')" "token=bad%FFlabel"
	check "and selects it" "$P11KM" token list "$baduri"
}

# modules: by path, by registered name, through the registry
test_modules() {
	unset P11KM_MODULE
	check "--module PATH" "$P11KM" --module "$M" token list 'pkcs11:token=T1'
	check_grep "T1 listed (--module PATH)" 'token=T1$' "$T/out"
	check "P11KM_MODULE=PATH" env P11KM_MODULE="$M" "$P11KM" token list 'pkcs11:token=T1'
	if grep -qs softhsm /usr/share/p11-kit/modules/*.module; then
		check "--module softhsm2 (registered name)" "$P11KM" --module softhsm2 token list 'pkcs11:token=T1'
		check_grep "T1 listed (--module softhsm2)" 'module: +softhsm2 ' "$T/out"
		# No --module: every registered module.  tpm2_pkcs11 (registered on this
		# machine) fails to start without a TPM and prints TCTI noise; it leaks
		# in its failed C_Initialize, which LeakSanitizer would report, so leak
		# detection is off for these two runs only.
		check "no --module: the registry" env ASAN_OPTIONS=detect_leaks=0 "$P11KM" --json token list
		cp "$T/out" "$T/reg.json"; cp "$T/err" "$T/reg.err"
		check_eq "the registry finds T1 and T2 through softhsm2" \
			"$(json_get "$T/reg.json" 'sorted(t["label"] for t in d["tokens"] if t["module"] == "softhsm2" and t["label"].startswith("T"))')" \
			"['T1', 'T2 with space']"
		# (On a machine with a TPM, tpm2_pkcs11 starts and there is nothing to skip.)
		if grep -qs tpm2 /usr/share/p11-kit/modules/*.module && [ ! -e /dev/tpmrm0 ] && [ ! -e /dev/tpm0 ]; then
			check_grep "tpm2_pkcs11 is skipped with a one-line note naming it and the CKR_" \
				"^p11km: note: skipping module 'tpm2_pkcs11': C_Initialize failed: CKR_[A-Z_]+$" "$T/reg.err"
			check_eq "one note, not an error" "$(grep -c '^p11km: ' "$T/reg.err")" 1
		fi
		check "no --module, a URI picks the token" env ASAN_OPTIONS=detect_leaks=0 \
			"$P11KM" --pin-source "file:$upin" object list "$t1uri"
		check_fails "--module with an unregistered name: exit 3" 3 "$P11KM" --module nosuchmodule token list
		check_one_line_error "the error lists the registered modules" "no PKCS#11 module named 'nosuchmodule'.*registered: .*softhsm2"
	else
		echo "# softhsm2 is not registered with p11-kit here: registry part skipped"
	fi
}

run_tests
