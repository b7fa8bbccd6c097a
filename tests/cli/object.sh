#!/bin/bash
# object list: objects made by pkcs11-tool are listed with the attributes
# pkcs11-tool and openssl report; every URI p11km prints selects the same
# object in p11tool (GnuTLS); the engine-safe URI of each private key signs
# through the libp11 engine, verified with the public key pkcs11-tool
# exports.  Then a TPM 2.0 token (tpm2-pkcs11 on swtpm), which differs from
# SoftHSM the way real tokens do.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/tpm2.sh"

setup() {
	need pkcs11-tool p11tool openssl python3
	softhsm_setup

	new_token T1 1234 12345678
	PIN=$T/pin-T1
	M=$SOFTHSM2_MODULE
	p11tool_sm --token-label T1 --login --pin 1234 --keypairgen --key-type rsa:2048 --label rsa1 --id 01 >/dev/null 2>&1
	p11tool_sm --token-label T1 --login --pin 1234 --keypairgen --key-type EC:prime256v1 --label ec1 --id 02 >/dev/null 2>&1
	p11tool_sm --token-label T1 --login --pin 1234 --keypairgen --key-type EC:secp384r1 --label 'ec two;%x' --id a0b1 >/dev/null 2>&1
	# A one-byte id 0x00 (binary ids may hold NUL: id=%00).
	p11tool_sm --token-label T1 --login --pin 1234 --keypairgen --key-type EC:prime256v1 --label zero --id 00 >/dev/null 2>&1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ck.pem" \
		-subj "/CN=object test/O=p11km" -days 30 -outform DER -out "$T/c.der" 2>/dev/null
	p11tool_sm --token-label T1 --login --pin 1234 --write-object "$T/c.der" --type cert --id 03 --label cert1 >/dev/null 2>&1
	check "pkcs11-tool made 8 keys and a certificate" test "$(p11tool_sm --token-label T1 --login --pin 1234 -O 2>/dev/null | grep -c 'Object;')" -eq 9
}

# the listing against pkcs11-tool and openssl
test_listing() {
	check "object list --json" "$P11KM" --pin-source "file:$PIN" --json object list 'pkcs11:token=T1'
	cp "$T/out" "$T/list.json"
	check "the JSON is valid (python3 -m json.tool)" python3 -m json.tool "$T/list.json"
	p11tool_sm --token-label T1 --login --pin 1234 -O > "$T/p11tool-O.txt" 2>/dev/null
	openssl x509 -inform DER -in "$T/c.der" -noout -subject -issuer -serial -enddate -nameopt RFC2253 > "$T/x509.txt"

	cat > "$T/compare.py" <<'EOF'
# Compare p11km's JSON with pkcs11-tool -O and openssl x509 output.
import calendar, datetime, json, re, sys, time
p11km = json.load(open(sys.argv[1]))["objects"]
text = open(sys.argv[2]).read()
x509 = dict(l.split("=", 1) for l in open(sys.argv[3]).read().splitlines())
curves = {"06082a8648ce3d030107": "P-256", "06052b81040022": "P-384", "06052b81040023": "P-521"}
ref = []
for block in re.split(r"\n(?=\S)", text.strip()):
    head, *lines = block.splitlines()
    o = {"head": head}
    for l in lines:
        k, _, v = l.strip().partition(":")
        o[k.strip()] = v.strip()
    o["class"] = {"Private Key Object": "private", "Public Key Object": "public",
                  "Certificate Object": "cert"}[head.split(";")[0]]
    ref.append(o)
bad = []
def fail(msg):
    bad.append(msg)
# The documented schema (doc/p11km-object.1), exactly.
base = {"uri", "engine_uri", "token", "class", "label", "id", "retired"}
keyk = base | {"key_type", "curve", "bits", "attributes"}
attrs = {"private", "sensitive", "extractable", "always_sensitive", "never_extractable",
         "sign", "verify", "decrypt", "encrypt", "unwrap", "wrap", "derive", "modifiable"}
certk = {"subject", "issuer", "serial", "not_before", "not_after", "days_left", "sha256",
         "trusted"}
for m in p11km:
    want = keyk if m["class"] in ("private", "public") else base | {"certificate"}
    if set(m) != want:
        fail("%s: keys %s, documented %s" % (m["uri"], sorted(m), sorted(want)))
    elif m["class"] in ("private", "public"):
        if set(m["attributes"]) != attrs or not all(v in (True, False, None) for v in m["attributes"].values()):
            fail("%s: attributes %s" % (m["uri"], m["attributes"]))
        if not isinstance(m["bits"], int) or not isinstance(m["key_type"], str):
            fail("%s: bits/key_type types" % m["uri"])
    elif set(m["certificate"]) != certk:
        fail("%s: certificate keys %s" % (m["uri"], sorted(m["certificate"])))
    if not isinstance(m["id"], str) or not re.fullmatch(r"([0-9a-f]{2})*", m["id"]):
        fail("%s: id %r is not lower-case hex" % (m["uri"], m["id"]))
if len(ref) != len(p11km):
    fail("pkcs11-tool lists %d objects, p11km %d" % (len(ref), len(p11km)))
# key size and curve come from the public key of the same id
pub = {o["ID"].lower(): o for o in ref if o["class"] == "public"}
for o in ref:
    key = (o["class"], o["ID"].lower(), o["label"])
    mine = [m for m in p11km if (m["class"], m["id"], m["label"]) == key]
    if len(mine) != 1:
        fail("%s: p11km lists it %d times" % (key, len(mine)))
        continue
    m = mine[0]
    for k in ("uri", "engine_uri", "token"):
        if not m.get(k):
            fail("%s: no %s" % (key, k))
    if o["class"] in ("private", "public"):
        p = pub[o["ID"].lower()]
        kt = "rsa" if "RSA" in o["head"] else "ec"
        if m["key_type"] != kt:
            fail("%s: key_type %s, pkcs11-tool says %s" % (key, m["key_type"], kt))
        if kt == "rsa":
            bits = int(re.search(r"(\d+) bits", p["head"]).group(1))
            if m["bits"] != bits:
                fail("%s: %s bits, pkcs11-tool says %d" % (key, m["bits"], bits))
        else:
            want = curves.get(p["EC_PARAMS"])
            if m["curve"] != want:
                fail("%s: curve %s, pkcs11-tool says %s" % (key, m["curve"], want))
        usage = [u.strip() for u in o.get("Usage", "").split(",")]
        access = [a.strip() for a in o.get("Access", "").split(",")]
        a = m["attributes"]
        for word, attr in (("sign", "sign"), ("verify", "verify"), ("decrypt", "decrypt"),
                           ("encrypt", "encrypt"), ("derive", "derive")):
            if (word in usage) != (a[attr] is True):
                fail("%s: %s is %s, pkcs11-tool usage %s" % (key, attr, a[attr], usage))
        if o["class"] == "private":
            if a["sensitive"] is not ("sensitive" in access):
                fail("%s: sensitive %s, pkcs11-tool access %s" % (key, a["sensitive"], access))
            if a["never_extractable"] is not ("never extractable" in access):
                fail("%s: never_extractable %s" % (key, a["never_extractable"]))
            if a["private"] is not True:
                fail("%s: private key not CKA_PRIVATE" % (key,))
    else:
        c = m["certificate"]
        if c["subject"] != x509["subject"] or c["issuer"] != x509["issuer"]:
            fail("cert: subject/issuer %s / %s, openssl: %s / %s" % (
                c["subject"], c["issuer"], x509["subject"], x509["issuer"]))
        if c["serial"].lstrip("0").upper() != x509["serial"].lstrip("0").upper():
            fail("cert: serial %s, openssl %s" % (c["serial"], x509["serial"]))
        if c["serial"].lstrip("0").upper() != o["serial"].lstrip("0").upper():
            fail("cert: serial %s, pkcs11-tool %s" % (c["serial"], o["serial"]))
        na = calendar.timegm(time.strptime(x509["notAfter"], "%b %d %H:%M:%S %Y GMT"))
        mine_na = calendar.timegm(time.strptime(c["not_after"], "%Y-%m-%dT%H:%M:%SZ"))
        if na != mine_na:
            fail("cert: not_after %s, openssl %s" % (c["not_after"], x509["notAfter"]))
        left = (na - time.time()) / 86400
        if not (int(left) - 1 <= c["days_left"] <= int(left) + 1):
            fail("cert: days_left %s, expected about %.1f" % (c["days_left"], left))
for b in bad:
    print("# " + b)
sys.exit(1 if bad else 0)
EOF
	check "every object: the documented JSON schema; class, label, id, key type, size, curve, usage, access, certificate fields" \
		python3 "$T/compare.py" "$T/list.json" "$T/p11tool-O.txt" "$T/x509.txt"
	[ -s "$T/out" ] && sed 's/^/#/' "$T/out"

	# Text output carries the same URIs.
	check "object list (text)" "$P11KM" --pin-source "file:$PIN" object list 'pkcs11:token=T1'
	cp "$T/out" "$T/list.txt"
	json_get "$T/list.json" '"\n".join(o["uri"] for o in d["objects"])' | sort > "$T/uris.json"
	grep '^pkcs11:' "$T/list.txt" | sort > "$T/uris.txt"
	check "text and JSON list the same URIs" cmp "$T/uris.json" "$T/uris.txt"
	check_grep "text output has engine uri: lines" '^    engine uri:  pkcs11:' "$T/list.txt"
	check_eq "9 objects listed" "$(wc -l < "$T/uris.txt")" 9
}

trust_env() { env P11SHIM_MODULE="$trust" P11SHIM_INIT_RESERVED="paths=$T/anchors" "$@"; }

# every URI selects the same object in p11tool and in p11km
test_uri_selects() {
	n=0; same=0; self=0
	while read -r uri; do
		n=$((n + 1))
		GNUTLS_PIN=1234 p11tool --provider "$M" --login --list-all "$uri" 2>/dev/null |
			sed -n 's/^[[:space:]]*URL: //p' > "$T/p11tool.urls"
		if [ "$(wc -l < "$T/p11tool.urls")" = 1 ] && [ "$(cat "$T/p11tool.urls")" = "$uri" ]; then
			same=$((same + 1))
		else
			echo "# p11tool selects for $uri:"; sed 's/^/#   /' "$T/p11tool.urls"
		fi
		"$P11KM" --pin-source "file:$PIN" --json object list "$uri" > "$T/one.json" 2>/dev/null
		if [ "$(json_get "$T/one.json" '[o["uri"] for o in d["objects"]]')" = "['$uri']" ]; then
			self=$((self + 1))
		else
			echo "# p11km selects for $uri:"; sed 's/^/#   /' "$T/one.json"
		fi
	done < "$T/uris.txt"
	check_eq "p11tool selects exactly the object of each of the $n URIs" "$same" "$n"
	check_eq "p11km selects exactly the object of each of the $n URIs" "$self" "$n"
	check_grep "the id 0x00 key has id=%00 in its URI" ';id=%00;object=zero;type=private' "$T/uris.txt"
	check_grep "a label with ; and % is percent-encoded" 'object=ec%20two%3B%25x' "$T/uris.txt"

	# Selecting by id alone gives the key pair.
	check "select by id" "$P11KM" --pin-source "file:$PIN" --json object list 'pkcs11:token=T1;id=%01'
	check_eq "id=%01 selects the private and the public key" \
		"$(json_get "$T/out" 'sorted(o["class"] for o in d["objects"])')" "['private', 'public']"

	# Without a PIN: public objects only, and a note saying so.
	check "object list without a PIN" "$P11KM" --json object list 'pkcs11:token=T1'
	check_eq "no private object without login" \
		"$(json_get "$T/out" 'sorted(set(o["class"] for o in d["objects"]))')" "['cert', 'public']"
	check_grep "a note says private keys need a PIN" 'note: .*public objects only.*--pin-source' "$T/err"

	# Two key pairs with the same label and id cannot be told apart by a URI:
	# p11km says so (on a second token, so the checks above keep their count).
	new_token T2 1234 12345678
	for i in 1 2; do
		p11tool_sm --token-label T2 --login --pin 1234 --keypairgen --key-type EC:prime256v1 \
			--label twin --id 99 >/dev/null 2>&1
	done
	check "object list with twin keys" "$P11KM" --pin-source "file:$T/pin-T2" object list 'pkcs11:token=T2'
	check_grep "a warning names the shared private key URI" \
		"warning: 2 objects share the URI pkcs11:.*token=T2;id=%99;object=twin;type=private: no URI" "$T/err"
	check_eq "one warning per shared URI (private and public)" "$(grep -c 'warning: 2 objects share' "$T/err")" 2

	# p11-kit's read-only trust token: CA certificates, each with vendor trust
	# objects sharing its label and id.  p11km lists the certificates, with
	# exactly the URIs p11tool prints for them.  Not the machine's own trust
	# store (its content differs between machines, e.g. the older Mozilla set
	# has two roots sharing label and id): the module serves a directory of
	# roots made here (through the shim, which hands it "paths=DIR"), two of
	# them with the same subject and key, hence the same URI.
	trust=$(find /usr/lib -name p11-kit-trust.so -path '*pkcs11*' 2>/dev/null | head -1)
	[ -n "$trust" ] || skip_all "p11-kit-trust.so not found"
	shim_available || skip_all "the PKCS#11 shim is not built"
	mkdir "$T/anchors"
	for n in one two; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/root-$n.key" \
			-subj "/CN=p11km trust $n" -days 30 -addext basicConstraints=critical,CA:TRUE \
			-out "$T/anchors/$n.pem" 2>/dev/null
	done
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/twin.key" 2>/dev/null
	for s in 1 2; do
		openssl req -x509 -new -key "$T/twin.key" -subj "/CN=p11km twin" -set_serial $s -days 30 \
			-addext basicConstraints=critical,CA:TRUE -out "$T/anchors/twin$s.pem" 2>/dev/null
	done
	check "object list on a p11-kit trust token" trust_env "$P11KM" --module "$P11SHIM" --json object list 'pkcs11:token=anchors'
	json_get "$T/out" '"\n".join(sorted(set(o["class"] for o in d["objects"])))' > "$T/trust.classes"
	json_get "$T/out" '"\n".join(sorted(o["uri"] for o in d["objects"]))' > "$T/trust.p11km"
	check_eq "trust token: certificates only (no vendor trust objects)" "$(cat "$T/trust.classes")" cert
	check_eq "trust token: the four certificates" "$(wc -l < "$T/trust.p11km")" 4
	check_eq "trust token: one warning, for the two roots that share a URI" \
		"$(grep -c 'share the URI' "$T/err")" 1
	check_grep "  ... naming it" "warning: 2 objects share the URI pkcs11:.*object=p11km%20twin;type=cert" "$T/err"
	trust_env p11tool --provider "$P11SHIM" --list-all 'pkcs11:token=anchors;type=cert' 2>/dev/null |
		sed -n 's/^[[:space:]]*URL: //p' | LC_ALL=C sort > "$T/trust.p11tool"
	check "trust token: p11km's certificate URIs are p11tool's ($(wc -l < "$T/trust.p11tool") certificates)" \
		cmp "$T/trust.p11km" "$T/trust.p11tool"
}

# the engine-safe URI of each private key signs through libp11
test_engine_uri() {
	engine_so=$(find /usr/lib -name pkcs11.so -path '*engines-3*' 2>/dev/null | head -1)
	[ -n "$engine_so" ] || skip_all "libengine-pkcs11-openssl not installed"
	cat > "$T/openssl.cnf" <<EOF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
dynamic_path = $engine_so
MODULE_PATH = $M
EOF
	echo "data to sign" > "$T/data"
	openssl dgst -sha256 -binary "$T/data" > "$T/hash"
	json_get "$T/list.json" '"\n".join(o["engine_uri"] + " " + o["id"] + " " + [p["uri"] for p in d["objects"] if p["class"] == "public" and p["id"] == o["id"]][0] for o in d["objects"] if o["class"] == "private")' > "$T/engine.txt"
	check_eq "4 private keys have an engine_uri" "$(wc -l < "$T/engine.txt")" 4
	# libp11 takes pin-source as a query attribute (RFC 7512) or after ';'.
	nsigned=0; sep='?'
	while read -r euri id puburi; do
		[ "$sep" = '?' ] && sep=';' || sep='?'
		case $euri in *slot-id*|*module-*|*library-*) echo "# not engine-safe: $euri"; continue ;; esac
		rm -f "$T/sig" "$T/pub.der" "$T/pub.pem"
		p11tool_sm --token-label T1 --read-object --type pubkey --id "$id" -o "$T/pub.der" >/dev/null 2>&1
		openssl pkey -pubin -inform DER -in "$T/pub.der" -out "$T/pub.pem" 2>/dev/null ||
			# OpenSC 0.23 cannot export P-384 public keys ("cannot create EVP_PKEY"): GnuTLS can
			GNUTLS_PIN=1234 p11tool --provider "$M" --login --export-pubkey "$puburi" \
				--outfile "$T/pub.pem" >/dev/null 2>&1
		if OPENSSL_CONF=$T/openssl.cnf openssl pkeyutl -engine pkcs11 -keyform engine \
			-inkey "$euri${sep}pin-source=$PIN" -sign -in "$T/hash" -pkeyopt digest:sha256 \
			-out "$T/sig" >/dev/null 2>"$T/engine.err" &&
		   openssl pkeyutl -verify -pubin -inkey "$T/pub.pem" -in "$T/hash" -sigfile "$T/sig" \
			-pkeyopt digest:sha256 >/dev/null 2>&1; then
			nsigned=$((nsigned + 1))
		else
			echo "# engine signing with $euri failed:"; sed 's/^/#   /' "$T/engine.err" | head -5
		fi
	done < "$T/engine.txt"
	check_eq "each engine-safe key URI signs through the libp11 engine; openssl verifies with the public key" "$nsigned" 4
}

# a label longer than the one-call read's buffer (256 bytes): asked again
test_long_label() {
	# alone, never cut, whatever code the first call returned (SoftHSM answers
	# CKR_ATTRIBUTE_TYPE_INVALID, not CKR_BUFFER_TOO_SMALL, for a key asked
	# certificate attributes too); pkcs11-tool takes ids up to 100 bytes
	LONGL=$(printf 'L%.0s' $(seq 300))
	LONGID=$(printf 'ab%.0s' $(seq 100))
	p11tool_sm --token-label T1 --login --pin 1234 --keypairgen --key-type EC:prime256v1 \
		--label "$LONGL" --id "$LONGID" >/dev/null 2>&1
	p11tool_sm --token-label T1 --login --pin 1234 --write-object "$T/c.der" --type cert \
		--label "$LONGL" --id "$LONGID" >/dev/null 2>&1
	check "object list with 300-byte labels" "$P11KM" --pin-source "file:$PIN" --json \
		object list 'pkcs11:token=T1'
	cp "$T/out" "$T/long.json"
	check_eq "...the private key, public key and certificate, label and id whole" \
		"$(json_get "$T/long.json" 'sorted(o["class"] for o in d["objects"] if o["label"] == "'"$LONGL"'" and o["id"] == "'"$LONGID"'")')" \
		"['cert', 'private', 'public']"
	check_eq "...the certificate's value whole (its SHA-256 is openssl's)" \
		"$(json_get "$T/long.json" '[o["certificate"]["sha256"].replace(":", "").lower() for o in d["objects"] if o["class"] == "cert" and o["label"] == "'"$LONGL"'"][0]')" \
		"$(openssl x509 -inform DER -in "$T/c.der" -outform DER | sha256sum | cut -d' ' -f1)"
}

# a private key's CKA_VALUE is never asked for, not even its length
test_no_cka_value() {
	# The judge is OpenSC's pkcs11-spy, which logs every C_GetAttributeValue
	# template with the object handle; an object's class comes from the log too.
	SPY=/usr/lib/x86_64-linux-gnu/pkcs11-spy.so
	[ -f "$SPY" ] || SPY=$(find /usr/lib -name pkcs11-spy.so 2>/dev/null | head -1)
	if [ -n "$SPY" ]; then
		# a certificate larger than the first read's buffer (16 KiB): 900 DNS names
		printf 'subjectAltName=' > "$T/big.ext"
		for i in $(seq 1 900); do printf 'DNS:host-%04d.big.example.test,' "$i"; done >> "$T/big.ext"
		sed -i 's/,$//' "$T/big.ext"
		openssl req -x509 -key "$T/ck.pem" -subj "/CN=big" -days 30 -outform DER -out "$T/big.der" \
			-addext "$(cat "$T/big.ext")" 2>/dev/null
		check "a certificate over 16 KiB" test "$(stat -c %s "$T/big.der")" -gt 16384
		openssl x509 -inform DER -in "$T/big.der" -out "$T/big.pem"
		# (pkcs11-tool cannot parse a certificate this large; p11tool writes it)
		GNUTLS_PIN=1234 p11tool --provider "$M" --login --write --label big --id 0b \
			--load-certificate "$T/big.pem" 'pkcs11:token=T1' >/dev/null 2>&1
		rm -f "$T/spy.log"
		check "object list through pkcs11-spy" env ASAN_OPTIONS=detect_leaks=0 PKCS11SPY="$M" \
			PKCS11SPY_OUTPUT="$T/spy.log" "$P11KM" --module "$SPY" --pin-source "file:$PIN" --json \
			object list 'pkcs11:token=T1'
		cp "$T/out" "$T/spy-list.json"
		check "the large certificate is read whole (its SHA-256 is openssl's)" python3 -c '
import json, sys, hashlib
d = json.load(open(sys.argv[1]))
want = hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
got = [o for o in d["objects"] if o.get("label") == "big"]
assert got and got[0]["certificate"]["sha256"].replace(":", "").lower() == want, got
' "$T/spy-list.json" "$T/big.der"
		check "no C_GetAttributeValue asks a private key for CKA_VALUE (pkcs11-spy log)" python3 -c '
import re, sys
log = open(sys.argv[1]).read()
calls = re.split(r"\n\d+: ", log)
cls, asked = {}, []
for c in calls:
    if not c.startswith("C_GetAttributeValue"):
        continue
    h = re.search(r"\[in\] hObject = (0x[0-9a-f]+)", c).group(1)
    parts = c.split("[out]")
    names = re.findall(r"^\s+(CKA_[A-Z_]+)", parts[0], re.M)
    m = re.search(r"CKA_CLASS\s+(CKO_[A-Z_]+)", c)
    if m:
        cls[h] = m.group(1)
    asked.append((h, names))
keys = [h for h, k in cls.items() if k in ("CKO_PRIVATE_KEY", "CKO_SECRET_KEY")]
assert len(keys) >= 4, cls
bad = [(h, n) for h, names in asked if h in keys
       for n in names if n in ("CKA_VALUE", "CKA_PRIVATE_EXPONENT", "CKA_PRIME_1", "CKA_PRIME_2")]
assert not bad, bad
' "$T/spy.log"
		p11tool_sm --token-label T1 --login --pin 1234 --delete-object --type cert --label big >/dev/null 2>&1
	else
		not_ok "pkcs11-spy.so (opensc) is missing: CI installs it"
	fi
}

# a TPM 2.0 token
test_tpm2() {
	if tpm2_available; then
		mkdir -p "$T/tpm"
		if tpm2_token_start "$T/tpm" tpmtok 123456 12345678; then
			cleanup_add "tpm2_token_stop '$T/tpm'"
			printf 123456 > "$T/tpm-pin"; chmod 600 "$T/tpm-pin"
			pkcs11-tool --module "$TPM2_MODULE" --login --pin 123456 --keypairgen \
				--key-type EC:prime256v1 --label tk --id 07 >/dev/null 2>&1
			check "tpm2: token list" "$P11KM" --module "$TPM2_MODULE" --json token list 'pkcs11:token=tpmtok'
			cp "$T/out" "$T/tpm-tokens.json"
			check_eq "tpm2: model shown trimmed" "$(json_get "$T/tpm-tokens.json" 'd["tokens"][0]["model"]')" \
				"$(pkcs11-tool --module "$TPM2_MODULE" -L 2>/dev/null | sed -n 's/^ *token model *: //p' | head -1 | sed 's/ *$//')"
			check_eq "tpm2: serial of zeros shown as is" \
				"$(json_get "$T/tpm-tokens.json" 'd["tokens"][0]["serial"]')" 0000000000000000
			turi=$(json_get "$T/tpm-tokens.json" 'd["tokens"][0]["uri"]')
			check "tpm2: the token URI (NUL-padded model left out) selects it in p11km" \
				"$P11KM" --module "$TPM2_MODULE" token list "$turi"
			check "tpm2: object list" "$P11KM" --module "$TPM2_MODULE" --pin-source "file:$T/tpm-pin" \
				--json object list "$turi"
			cp "$T/out" "$T/tpm.json"
			check_eq "tpm2: the key pair is listed" \
				"$(json_get "$T/tpm.json" 'sorted((o["class"], o["label"], o["id"], o["curve"]) for o in d["objects"])')" \
				"[('private', 'tk', '07', 'P-256'), ('public', 'tk', '07', 'P-256')]"
			# tpm2-pkcs11 omits attributes never set: shown as null, not false
			check_eq "tpm2: absent attributes are null, not false" \
				"$(json_get "$T/tpm.json" 'any(v is None for o in d["objects"] for v in o["attributes"].values())')" True
			tsame=0
			for u in $(json_get "$T/tpm.json" '" ".join(o["uri"] for o in d["objects"])'); do
				got=$(GNUTLS_PIN=123456 p11tool --provider "$TPM2_MODULE" --login --list-all "$u" 2>/dev/null |
					sed -n 's/^[[:space:]]*URL: //p')
				case $got in *"id=%07;object=tk;type="*) [ "$(printf '%s\n' "$got" | wc -l)" = 1 ] && tsame=$((tsame + 1)) ;; esac
				case $u in *model=*) echo "# model= in $u" ;; esac
			done
			check_eq "tpm2: both URIs select exactly their object in p11tool" "$tsame" 2
		else
			not_ok "tpm2: token did not start"; tail -5 "$T/tpm/tpm2.log" | sed 's/^/#   /'
		fi
	else
		echo "# tpm2 part skipped: swtpm/tpm2-pkcs11 not installed"
	fi
}

run_tests
