#!/bin/bash
# renew prunes what renewals retired once the entry's grace period is over
# (track add --prune-after DAYS, 30 by default): a retired object older than
# the grace is destroyed, a newer one kept, an object a binding uses never;
# retired key pairs only for an entry that rekeys; nothing with
# --prune-after never, and nothing (not one PKCS#11 search) before the
# renewal's recorded prune time.  Labels carry the day an object was
# retired, so objects retired long ago are made by pkcs11-tool with such
# labels; the prune time is moved into the past in the entry, as a later
# run would see it.  Judge: pkcs11-tool (the token's objects).
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/bind.sh"

setup() {
	need openssl pkcs11-tool python3
	bind_setup
	S=$T/st
	CA=$T/ca-in
	mkdir -p "$CA" "$T/bind"
	CERT="$TOKEN;object=web;type=cert"
	make_key web 01 EC:prime256v1 && issue_token web 01 web.test 1001 2 &&
		put_cert web 01 "$T/web-1001.der" || return 1
	# retired long ago: a certificate of another key, alone
	make_key junk 09 EC:prime256v1 && issue_token junk 09 junk.test 1009 &&
		put_cert web.retired-20200101 09 "$T/junk-1009.der" || return 1
	# retired long ago, but the binding 'other' (beside the entry's) still uses the pair
	make_key web.retired-20200102 02 EC:prime256v1 && issue_token web.retired-20200102 02 old.test 1002 &&
		put_cert web.retired-20200102 02 "$T/web.retired-20200102-1002.der" || return 1
	"$P11KM" bind emit nginx --key "$TOKEN;object=web;type=private" --listen 127.0.0.1:1 \
		--out-dir "$T/bind/web" --pin-file "$T/web.pin" --pin-source "file:$PIN" >/dev/null &&
	"$P11KM" bind emit nginx --key "$TOKEN;object=web.retired-20200102;type=private" \
		--listen 127.0.0.1:2 --out-dir "$T/bind/other" --pin-file "$T/other.pin" \
		--pin-source "file:$PIN" >/dev/null
}

labels() { # CLASS: the token's labels of that class (pkcs11-tool)
	p11tool_sm --token-label bind --login --pin "$USERPIN" -O --type "$1" 2>/dev/null |
		sed -n 's/^  label: *//p' | sort | tr '\n' ' '
}
has() { case " $(labels "$1")" in *" $2 "*) return 0;; esac; return 1; }
prune_now() { # the entry's prune time moved into the past
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); d["state"]["prune_at"] = 1
json.dump(d, open(sys.argv[1], "w"))' "$S/track/web.json"
}
add() { "$P11KM" track add "$CERT" --state-dir "$S" --pin-source "file:$PIN" --ca "file:$CA" \
	--ca-file "$T/ca/root.pem" --bind "$T/bind/web" "$@"; }

test_prune_after_parse() {
	check_fails "--prune-after soon: exit 2" 2 add --prune-after soon
	check_one_line_error "... one line" "give DAYS \(0-3650\) or never"
	check "track add (the default grace: 30 days)" add
	check_nogrep "... not written into the entry" prune_after "$S/track/web.json"
}

test_renewal_schedules_the_prune() {
	check "renew: the request goes to the file CA" "$P11KM" renew --all --state-dir "$S"
	printf 'subjectAltName=DNS:web.test\n' > "$T/ext.cnf"
	check "the CA signs it" openssl x509 -req -in "$CA/web.csr" -CA "$T/ca/root.pem" -CAkey "$T/ca/root.key" \
		-set_serial 1010 -days 90 -extfile "$T/ext.cnf" -out "$CA/web.crt"
	check "renew: renewed" "$P11KM" renew --all --state-dir "$S"
	check_grep "... renewed" '^web: renewed' "$T/out"
	TODAY=$(date -u +%Y%m%d)
	check "the old certificate is retired today (pkcs11-tool)" has cert "web.retired-$TODAY"
	check "the prune is due after the grace period: 30 days from today's end" python3 -c '
import json, sys, time
at = json.load(open(sys.argv[1]))["state"]["prune_at"]
assert at == (int(time.time()) // 86400 + 31) * 86400, at' "$S/track/web.json"
	check "renew again: not due" "$P11KM" --json renew --all --state-dir "$S"
	check_eq "... nothing pruned before then" "$(json_get "$T/out" 'd[0]["pruned"]')" 0
	check "the long-retired certificate is still there" has cert web.retired-20200101
}

test_prune_after_the_grace() {
	check "a run after the prune time (moved into the past)" prune_now
	check "renew: not due, and it prunes" "$P11KM" --json renew --all --state-dir "$S"
	cp "$T/out" "$T/prune.json"
	cp "$T/err" "$T/prune.err"
	check_eq "... one object pruned" "$(json_get "$T/prune.json" 'd[0]["pruned"]')" 1
	check_grep "... said in a note" 'web: pruned pkcs11:.*object=web.retired-20200101' "$T/prune.err"
	check "the certificate retired in 2020 is destroyed (pkcs11-tool)" sh -c \
		"! echo '$(labels cert)' | grep -q 'web.retired-20200101 '"
	check "the one retired today is kept (inside the grace)" has cert "web.retired-$TODAY"
	check "what the binding beside the entry's uses is kept: its certificate" has cert \
		web.retired-20200102
	check "... and its key pair (no --rekey: keys are never pruned)" has privkey web.retired-20200102
	check_grep "... the binding named" "keeping .*the binding '$T/bind/other/p11km-binding.conf'" \
		"$T/prune.err"
	check "the next prune: when today's retired certificate leaves the grace" python3 -c '
import json, sys, time
at = json.load(open(sys.argv[1]))["state"]["prune_at"]
assert at == (int(time.time()) // 86400 + 31) * 86400, at' "$S/track/web.json"
}

test_rekey_entry_prunes_keys() {
	# a key pair retired long ago by a rekey, used by no binding
	make_key web.retired-20200104 04 EC:prime256v1
	p11tool_sm --token-label bind --login --pin "$USERPIN" --delete-object --type cert \
		--label web.retired-20200101 >/dev/null 2>&1
	put_cert web.retired-20200103 09 "$T/junk-1009.der"
	check "track add --force --prune-after never" "$P11KM" --force track add "$CERT" --state-dir "$S" \
		--pin-source "file:$PIN" --ca "file:$CA" --ca-file "$T/ca/root.pem" --bind "$T/bind/web" \
		--prune-after never
	check_grep "... kept in the entry as -1" '"prune_after_days": -1' "$S/track/web.json"
	prune_now
	check "renew: never prunes" "$P11KM" --json renew --all --state-dir "$S"
	check_eq "... nothing pruned" "$(json_get "$T/out" 'd[0]["pruned"]')" 0
	check "... the 2020 certificate stays" has cert web.retired-20200103
	check "track add --force --rekey always --prune-after 10" "$P11KM" --force track add "$CERT" \
		--state-dir "$S" --pin-source "file:$PIN" --ca "file:$CA" --ca-file "$T/ca/root.pem" \
		--bind "$T/bind/web" --rekey always --prune-after 10
	prune_now
	check "renew: prunes certificates and retired key pairs" "$P11KM" --json renew --all --state-dir "$S"
	check_eq "... three objects (a certificate and a key pair)" "$(json_get "$T/out" 'd[0]["pruned"]')" 3
	check "the 2020 certificate is destroyed" sh -c "! echo ' $(labels cert)' | grep -q ' web.retired-20200103 '"
	check "the retired key pair is destroyed" sh -c \
		"! echo ' $(labels privkey) $(labels pubkey)' | grep -q ' web.retired-20200104 '"
	check "the binding's pair is kept still" has privkey web.retired-20200102
	check "today's retired certificate is kept" has cert "web.retired-$TODAY"
	check "the live key and certificate are untouched" sh -c "echo ' $(labels privkey)' | grep -q ' web ' &&
		echo ' $(labels cert)' | grep -q ' web '"
}

run_tests
