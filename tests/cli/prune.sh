#!/bin/bash
# cert prune and the retired marks of object list on SoftHSM2: what is
# destroyed and what stays is judged by pkcs11-tool.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

certs() { token_certs "$M" pr | sort; }
keys() { token_keys "$M" pr "$PIN" | sort; }
pr() { "$P11KM" --pin-source "file:$PIN" "$@"; }

setup() {
	need openssl pkcs11-tool python3
	softhsm_setup
	new_token pr
	M=$SOFTHSM2_MODULE
	PIN=$T/pin-pr
	TOK="pkcs11:token=pr"
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	CA=$T/ca
	token_keypair "$M" pr "$PIN" web 01 "$T/web.pub" || { echo "keygen failed"; exit 99; }
	# two retired key pairs (a rekey leaves them so): one a binding uses, one not
	token_keypair "$M" pr "$PIN" old.retired-20200101 03 "$T/old.pub" || { echo "keygen failed"; exit 99; }
	token_keypair "$M" pr "$PIN" gone.retired-20200101 04 "$T/gone.pub" || { echo "keygen failed"; exit 99; }
	for s in 0e01 0e02; do
		issue "$CA" "$T/web.pub" "$T/leaf-$s.pem" web.example.test 0x$s
		cat "$T/leaf-$s.pem" "$CA/inter.pem" > "$T/reply-$s.pem"
		"$P11KM" cert install "$T/reply-$s.pem" "$TOK" --keep-old --pin-source "file:$PIN" \
			--ca-file "$CA/root.pem" >"$T/install.log" 2>&1 ||
			{ echo "cert install failed"; cat "$T/install.log"; exit 99; }
	done
	today=$(date -u +%Y%m%d)
	certs > "$T/certs.orig"
	keys > "$T/keys.orig"
	grep -q "^01|web.retired-$today|0e01$" "$T/certs.orig" && grep -q '^01|web|0e02$' "$T/certs.orig" ||
		{ echo "setup: no retired certificate"; cat "$T/certs.orig"; exit 99; }
}

# object list marks retired objects
test_list_retired() {
	check "object list --json" pr --json object list "$TOK"
	check_eq "  ... the retired certificate is \"retired\": true" \
		"$(json_get "$T/out" '[o["retired"] for o in d["objects"] if o["label"] == "web.retired-'"$today"'"]')" "[True]"
	check_eq "  ... the current one is not" \
		"$(json_get "$T/out" '[o["retired"] for o in d["objects"] if o["label"] == "web" and o["class"] == "cert"]')" "[False]"
	check "object list (text)" pr object list "$TOK;object=web.retired-$today"
	check_grep "  ... says retired" "^    retired: +yes" "$T/out"
	check "object list of the current pair" pr object list "$TOK;object=web"
	check_nogrep "  ... no retired mark" "retired:" "$T/out"
}

# refusals and dry runs: nothing changes
test_refusals_dry_run() {
	check_fails "--older-than not a number" 2 pr cert prune "$TOK" --older-than soon
	check_one_line_error "  ... one line" "--older-than wants a number"
	check "--dry-run" pr cert prune "$TOK" --dry-run
	check_eq "  ... lists the one retired certificate" "$(grep -c '^would destroy pkcs11:' "$T/out")" 1
	check_grep "  ... it is web.retired-$today" "^would destroy .*object=web.retired-$today;.*type=cert" "$T/out"
	check "--older-than 1: retired today, too young" pr cert prune "$TOK" --older-than 1
	check_grep "  ... nothing to prune" "^nothing to prune" "$T/out"
	check_eq "  ... pkcs11-tool: the certificates are all there" "$(certs)" "$(cat "$T/certs.orig")"
	check_eq "  ... and the keys" "$(keys)" "$(cat "$T/keys.orig")"
}

# a binding uses the old pair (its key URI); prune keeps it
test_binding_keeps_old() {
	mkdir -p "$T/bind/old"
	printf 'server = nginx\nkey = %s\n' "$TOK;object=old.retired-20200101;type=private" \
		> "$T/bind/old/p11km-binding.conf"
	check "prune --json (certificates only)" pr --json cert prune "$TOK" --bindings "$T/bind"
	check_eq "  ... one destroyed" "$(json_get "$T/out" 'len(d["destroyed"])')" 1
	check_eq "  ... pkcs11-tool: the retired certificate is gone, the current one stays" \
		"$(certs)" "$(grep -v "|web.retired-$today|" "$T/certs.orig")"
	check_eq "  ... no key was touched without --keys" "$(keys)" "$(cat "$T/keys.orig")"
	check "prune --keys --bindings" pr cert prune "$TOK" --keys --bindings "$T/bind"
	check_grep "  ... says which binding keeps the old pair" \
		"keeping .*old.retired-20200101.*$T/bind/old/p11km-binding.conf" "$T/err"
	check_eq "  ... destroys the unused retired pair (two objects)" \
		"$(grep -c '^destroyed pkcs11:.*object=gone.retired-20200101' "$T/out")" 2
	check_eq "  ... pkcs11-tool: web and the pair the binding uses stay" "$(keys)" \
		"$(grep -v gone.retired "$T/keys.orig")"
	check_eq "  ... and the current certificate" "$(certs)" "$(grep -v "|web.retired-$today|" "$T/certs.orig")"
	rm -r "$T/bind/old"
	check "prune --keys --older-than 36500 (retired in 2020: younger)" pr cert prune "$TOK" --keys --older-than 36500
	check_grep "  ... nothing to prune" "^nothing to prune" "$T/out"
	check "prune --keys, no binding left" pr cert prune "$TOK" --keys
	check_grep "  ... a note: bindings were not checked" "no --bindings" "$T/err"
	check_eq "  ... pkcs11-tool: only the web pair left" "$(keys)" "$(grep '|web$' "$T/keys.orig")"
}

# distinct labels: no two certificates share label, id and class
test_distinct_labels() {
	# Mozilla's two "Autoridad de Certificacion Firmaprofesional CIF A62634068"
	# roots: same subject and key, another serial and validity.
	new_token trust
	subj="/C=ES/CN=Autoridad de Certificacion Firmaprofesional CIF A62634068"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/firma.key" 2>/dev/null
	openssl req -x509 -new -key "$T/firma.key" -subj "$subj" -set_serial 0x11 -days 3650 \
		-out "$T/firma1.pem" 2>/dev/null
	openssl req -x509 -new -key "$T/firma.key" -subj "$subj" -set_serial 0x22 -days 7300 \
		-out "$T/firma2.pem" 2>/dev/null
	check "roots install of the two twins" "$P11KM" roots install "$T/firma1.pem" "$T/firma2.pem" \
		--to "token:pkcs11:token=trust" --so-pin-source "file:$T/sopin-trust"
	token_certs "$M" trust | sort > "$T/twins"
	check_eq "  ... pkcs11-tool: two certificates" "$(wc -l < "$T/twins")" 2
	check_eq "  ... with two labels" "$(cut -d'|' -f2 "$T/twins" | sort -u | wc -l)" 2
	check_grep "  ... the second is '<label> (2)'" \
		"\|Autoridad de Certificacion Firmaprofesional CIF A62634068 \(2\)\|" "$T/twins"
	check "  ... each has a URI that selects it alone" "$P11KM" object export \
		"pkcs11:token=trust;object=Autoridad%20de%20Certificacion%20Firmaprofesional%20CIF%20A62634068%20(2);type=cert"
	check_eq "  ... the one with serial 22" "$(openssl x509 -in "$T/out" -noout -serial)" "serial=22"
}

# CKA_START_DATE / CKA_END_DATE: the validity, judged by softhsm2-dump-file
test_validity_dates() {
	if command -v softhsm2-dump-file >/dev/null; then
		# "CKA_START_DATE YYYYMMDD" for every date attribute with a value
		dates() {
			for f in "$T"/tokens/*/*.object; do
				softhsm2-dump-file "$f" 2>/dev/null | awk '/ CKA_(START|END)_DATE$/ { a = $NF; getline;
				getline; if ($0 ~ /length 8/) { getline; print a, substr($0, index($0, "<") + 1, 8) } }'
			done | sort | uniq -c | awk '{ print $2, $3, $1 }'
		}
		d() { date -u -d "$(openssl x509 -in "$1" -noout "-$2" | sed 's/^[^=]*=//')" +%Y%m%d; }
		dates > "$T/dates"
		check_grep "the twin roots carry their start date" "^CKA_START_DATE $(d "$T/firma1.pem" startdate) " "$T/dates"
		check_grep "  ... the first its end date" "^CKA_END_DATE $(d "$T/firma1.pem" enddate) 1" "$T/dates"
		check_grep "  ... the second its own" "^CKA_END_DATE $(d "$T/firma2.pem" enddate) 1" "$T/dates"
		check_grep "the installed leaf its end date" "^CKA_END_DATE $(d "$T/leaf-0e02.pem" enddate) " "$T/dates"
		# a token that does not know the dates: CKR_ATTRIBUTE_TYPE_INVALID, once
		openssl req -x509 -new -key "$T/firma.key" -subj "/CN=no dates" -set_serial 0x33 -days 1000 \
			-out "$T/nodates.pem" 2>/dev/null
		if shim_available; then
			check "a token that refuses CKA_START_DATE: roots install retries without" \
				env P11SHIM_FAIL_FUNC=C_CreateObject P11SHIM_FAIL_AT=1 P11SHIM_FAIL_RV=0x12 \
				P11SHIM_MODULE="$M" "$P11KM" --module "$P11SHIM" roots install "$T/nodates.pem" \
				--to "token:pkcs11:token=trust" --so-pin-source "file:$T/sopin-trust"
			check_grep "  ... pkcs11-tool: the certificate is there" "\|no dates\|33$" \
				<(token_certs "$M" trust)
			dates > "$T/dates"
			check_nogrep "  ... without dates" "^CKA_END_DATE $(d "$T/nodates.pem" enddate) " "$T/dates"
		else
			not_ok "the PKCS#11 shim is not built"
		fi
	else
		not_ok "softhsm2-dump-file (softhsm2) is not installed"
	fi
}

run_tests
