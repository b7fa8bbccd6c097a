#!/bin/bash
# Faults injected with the PKCS#11 shim (tests/shim/README.md): a module
# that fails C_Initialize, a token removed in the middle of a listing, any
# single failing call; and the call count of a targeted lookup, which must
# not grow with the number of other objects on the token.
. "$top_srcdir/tests/lib/common.sh"

mk_ec() { pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label F1 --login --pin 1234 --keypairgen \
	--key-type EC:prime256v1 --label "$1" --id "$2" >/dev/null 2>&1; }

setup() {
	need python3 pkcs11-tool
	softhsm_setup
	shim_available || skip_all "the p11shim module is not built"
	new_token F1 1234 12345678
	PIN=$T/pin-F1
	mk_ec k1 01
	mk_ec other1 11
	mk_ec other2 12
	K='pkcs11:token=F1;object=k1;type=private'
}

# a module that fails C_Initialize
test_init_fails() {
	export P11SHIM_FAIL_FUNC=C_Initialize P11SHIM_FAIL_AT=1 P11SHIM_FAIL_RV=CKR_DEVICE_ERROR
	check_fails "C_Initialize fails: exit 3" 3 shim_p11km token list
	check_no_stdout "C_Initialize fails: nothing on stdout"
	check_one_line_error "C_Initialize fails: one line naming the module and CKR_DEVICE_ERROR" \
		"module '.*p11shim.so' failed to initialise: C_Initialize: CKR_DEVICE_ERROR"
	check_grep "C_Initialize fails: the line says what to check" "CKR_DEVICE_ERROR; check the module's configuration" "$T/err"
	unset P11SHIM_FAIL_FUNC P11SHIM_FAIL_AT P11SHIM_FAIL_RV
}

# the token goes away in the middle of a listing
test_token_gone() {
	check "reference listing through the shim" shim_p11km --pin-source "file:$PIN" object list 'pkcs11:token=F1'
	cp "$T/out" "$T/ref.out"
	check_eq "6 objects in the reference listing" "$(grep -c '^pkcs11:' "$T/ref.out")" 6
	export P11SHIM_FAIL_FUNC=C_GetAttributeValue P11SHIM_FAIL_AT=4 P11SHIM_FAIL_STICKY=1 P11SHIM_FAIL_RV=CKR_DEVICE_REMOVED
	check_fails "CKR_DEVICE_REMOVED after 3 objects read: exit 3" 3 \
		shim_p11km --pin-source "file:$PIN" object list 'pkcs11:token=F1'
	check_no_stdout "CKR_DEVICE_REMOVED: no partial output on stdout"
	check_one_line_error "CKR_DEVICE_REMOVED: one line naming the call and the CKR_" \
		"C_GetAttributeValue failed: CKR_DEVICE_REMOVED"
	export P11SHIM_FAIL_FUNC=C_GetMechanismInfo P11SHIM_FAIL_AT=3
	check_fails "CKR_DEVICE_REMOVED during token list: exit 3" 3 shim_p11km token list
	check_no_stdout "token list: no partial output"
	check_one_line_error "token list: one line" "CKR_DEVICE_REMOVED"
	export P11SHIM_FAIL_RV=CKR_DEVICE_ERROR P11SHIM_FAIL_STICKY=0
	check_fails "CKR_DEVICE_ERROR during token list: exit 3" 3 shim_p11km token list
	check_one_line_error "CKR_DEVICE_ERROR: one line that says what to do" \
		"C_GetMechanismInfo failed: CKR_DEVICE_ERROR: the token or its module failed; check the token .* and try again"
	unset P11SHIM_FAIL_FUNC P11SHIM_FAIL_AT P11SHIM_FAIL_STICKY P11SHIM_FAIL_RV
}

# a URI that matches no token
test_no_token() {
	check_fails "a URI matching no token: exit 4" 4 shim_p11km object list 'pkcs11:token=nosuch'
	check_no_stdout "no token: nothing on stdout"
	check_one_line_error "no token: one line pointing at token list" "no token matches.*p11km token list"
	check_fails "a URI matching no object: exit 4" 4 shim_p11km --pin-source "file:$PIN" object list 'pkcs11:token=F1;object=nosuch'
	check_no_stdout "no object: nothing on stdout"
}

# any single failing call: a clean error, never partial output
test_single_failure() {
	# Fail the Nth call for every N of a listing.  Each run either succeeds with
	# the full listing (a failure p11km may ignore: C_CloseSession, C_Finalize)
	# or exits 3 with one line naming CKR_DEVICE_ERROR and nothing on stdout.
	shim_p11km --pin-source "file:$PIN" object list 'pkcs11:token=F1' >/dev/null 2>&1
	total=$(count_of total)
	clean=0; failed_runs=0
	for n in $(seq 1 "$total"); do
		if P11SHIM_FAIL_AT=$n P11SHIM_FAIL_RV=CKR_DEVICE_ERROR \
			shim_p11km --pin-source "file:$PIN" object list 'pkcs11:token=F1' >"$T/o" 2>"$T/e"; then
			cmp -s "$T/o" "$T/ref.out" && clean=$((clean + 1)) || echo "# call $n: exit 0 with other output"
		else
			rc=$?
			if [ $rc = 3 ] && [ ! -s "$T/o" ] && [ "$(wc -l < "$T/e")" = 1 ] && grep -q 'CKR_DEVICE_ERROR' "$T/e"; then
				clean=$((clean + 1)); failed_runs=$((failed_runs + 1))
			else
				echo "# call $n: exit $rc, $(wc -c < "$T/o") bytes on stdout:"; sed 's/^/#   /' "$T/e" | head -3
			fi
		fi
	done
	echo "# $total calls in a listing of 6 objects; $failed_runs of them end the run when they fail"
	check_eq "each of the $total calls failing in turn gives the full output or a clean exit 3" "$clean" "$total"
}

# the call count of a targeted lookup does not grow with the token
test_lookup_calls() {
	shim_p11km --pin-source "file:$PIN" object list "$K" > "$T/k1.out" 2>/dev/null
	calls_small=$(count_of total); finds_small=$(count_of C_FindObjects); attrs_small=$(count_of C_GetAttributeValue)
	check_eq "the lookup finds k1 alone (2 other key pairs)" "$(grep -c '^pkcs11:' "$T/k1.out")" 1
	for i in $(seq 13 70); do mk_ec "other$i" "$(printf '%02x' "$i")"; done
	check_eq "60 other key pairs on the token" \
		"$(pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label F1 --login --pin 1234 -O --type privkey 2>/dev/null | grep -c 'Private Key Object')" 61
	shim_p11km --pin-source "file:$PIN" object list "$K" > "$T/k1b.out" 2>/dev/null
	calls_big=$(count_of total)
	echo "# object list '$K': $calls_small PKCS#11 calls with 2 other key pairs, $calls_big with 60"
	check_eq "the same number of PKCS#11 calls with 2 and with 60 other key pairs" "$calls_big" "$calls_small"
	check_eq "C_FindObjects calls unchanged" "$(count_of C_FindObjects)" "$finds_small"
	check_eq "C_GetAttributeValue calls unchanged (only k1 is read)" "$(count_of C_GetAttributeValue)" "$attrs_small"
	check "and the output is the same" cmp "$T/k1.out" "$T/k1b.out"
}

init_run() {
	rm -rf "$T/sweep/tokens"; mkdir "$T/sweep/tokens"
	SOFTHSM2_CONF=$T/sweep.conf shim_p11km token init --label S \
		--so-pin-source "file:$so" --pin-source "file:$up" >"$T/o" 2>"$T/e"
}

# token init with any single failing call
test_token_init_failure() {
	# Each run on an empty token directory.  A failure is exit 3, one line,
	# nothing on stdout; one that leaves the token initialised without its
	# user PIN (after C_InitToken) says so.
	mkdir -p "$T/sweep"
	sed "s|@TOKENDIR@|$T/sweep/tokens|" "$top_srcdir/tokens/softhsm2/softhsm2.conf.in" > "$T/sweep.conf"
	so=$(pin_file so-sweep 12345678); up=$(pin_file up-sweep 1234)
	init_run
	total=$(count_of total)
	clean=0; half=0
	for n in $(seq 1 "$total"); do
		if P11SHIM_FAIL_AT=$n P11SHIM_FAIL_RV=CKR_DEVICE_ERROR init_run; then rc=0; else rc=$?; fi
		if [ $rc = 0 ]; then
			grep -q '^pkcs11:.*token=S$' "$T/o" && clean=$((clean + 1)) || echo "# call $n: exit 0, output: $(cat "$T/o")"
			continue
		fi
		inited=$(SOFTHSM2_CONF=$T/sweep.conf pkcs11-tool --module "$SOFTHSM2_MODULE" -L 2>/dev/null | grep -c 'token label *: S$')
		if [ $rc = 3 ] && [ ! -s "$T/o" ] && [ "$(wc -l < "$T/e")" = 1 ] && grep -q CKR_DEVICE_ERROR "$T/e" &&
		   { [ "$inited" = 0 ] || grep -q "token 'S' is initialised but its user PIN is not set" "$T/e"; }; then
			clean=$((clean + 1)); [ "$inited" = 0 ] || half=$((half + 1))
		else
			echo "# call $n: exit $rc, initialised: $inited"; sed 's/^/#   /' "$T/e" | head -3
		fi
	done
	echo "# token init: $total calls; $half failures leave the token without a user PIN (and say so)"
	check_eq "token init: each of the $total calls failing in turn gives success or a clean, explained exit 3" "$clean" "$total"
	check "token init: some failures happen after C_InitToken (the sweep reaches them)" test "$half" -gt 0
}

run_tests
