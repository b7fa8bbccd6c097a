#!/bin/bash
# Bad input: each case gives its documented exit status, one line on stderr
# ("p11km: what is wrong and what to do") and nothing on stdout.
. "$top_srcdir/tests/lib/common.sh"

# bad STATUS "description" PATTERN ARGS...: p11km ARGS fails with STATUS,
# one line matching PATTERN, nothing on stdout.
bad() {
	_st=$1 _d=$2 _p=$3; shift 3
	check_fails "$_d" "$_st" "$P11KM" "$@"
	check_one_line_error "$_d: one line" "$_p"
	check_no_stdout "$_d: nothing on stdout"
}

setup() {
	need python3
	softhsm_setup
	new_token T1 1234 12345678
	new_token T2 1234 12345678
	PIN=$T/pin-T1
}

# modules
test_modules() {
	bad 3 "a module path that does not exist" "unable to load PKCS#11 module '/nonexistent/libnope.so'" \
		--module /nonexistent/libnope.so token list
	bad 3 "a file that is not a module (/etc/passwd)" "unable to load PKCS#11 module '/etc/passwd'" \
		--module /etc/passwd token list
	printf 'not a shared object\n' > "$T/text.so"
	bad 3 "a text file named .so" "unable to load PKCS#11 module '$T/text.so'" --module "$T/text.so" token list
	bad 3 "a shared object that is not a PKCS#11 module" "unable to load PKCS#11 module" \
		--module "$(ls /lib/x86_64-linux-gnu/libz.so.1 /usr/lib/x86_64-linux-gnu/libz.so.1 2>/dev/null | head -1)" token list
	bad 3 "a registered name that does not exist" "no PKCS#11 module named 'nosuch'" --module nosuch token list
}

# with --json, stdout holds one JSON object: the error, nothing else
json_bad() { # STATUS "description" PATTERN ARGS...
	_st=$1 _d=$2 _p=$3; shift 3
	check_fails "$_d" "$_st" "$P11KM" "$@"
	check_one_line_error "$_d: one line" "$_p"
	check_eq "$_d: stdout is the error as one JSON object" \
		"$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(list(d), d["error"]["exit"], "p11km: " + d["error"]["message"] == open(sys.argv[2]).read().rstrip("\n"))' "$T/out" "$T/err")" \
		"['error'] $_st True"
}

# URIs
test_uris() {
	bad 4 "a URI matching no token" "no token matches" token list 'pkcs11:token=nosuch'
	bad 4 "object list: a URI matching no token" "no token matches" object list 'pkcs11:token=nosuch'
	bad 4 "a URI matching no object" "no object matches" --pin-source "file:$PIN" object list 'pkcs11:token=T1;object=nosuch'
	bad 4 "a private key without a PIN: says a login is needed" "no object matches the URI among the public objects \\(private keys need a login: give --pin-source\\)" \
		object list 'pkcs11:token=T1;type=private'
	json_bad 4 "--json: a URI matching no token" "no token matches" --json token list 'pkcs11:token=nosuch'
	json_bad 4 "--json: a URI matching no object" "no object matches" --json --pin-source "file:$PIN" object list 'pkcs11:token=T1;object=nosuch'
	# Both tokens (and the free slot) have model "SoftHSM v2": where one token is
	# needed, that is ambiguous and every candidate is listed.
	bad 4 "an ambiguous token URI (token init)" "tokens match; name one with token= or serial=" \
		token init 'pkcs11:model=SoftHSM%20v2' --label X --so-pin-source "file:$T/sopin-T1" --pin-source "file:$PIN"
	t1=$("$P11KM" token list 'pkcs11:token=T1' | head -1)
	t2=$("$P11KM" token list 'pkcs11:token=T2' | head -1)
	check_grep "the ambiguity lists T1's URI" "$t1( |$)" "$T/err"
	check_grep "the ambiguity lists T2's URI" "$t2( |$)" "$T/err"
	bad 2 "not a pkcs11: URI" "must start with 'pkcs11:'" token list 'http://example.com/'
	bad 2 "bad percent-encoding" "percent-encoding" object list 'pkcs11:token=T%1'
	bad 2 "NUL in a label" "NUL" object list 'pkcs11:token=T1;object=a%00b'
	bad 2 "a duplicate attribute" "appears twice" object list 'pkcs11:token=T1;token=T2'
	bad 2 "an unknown type" "unknown type" object list 'pkcs11:token=T1;type=key'
	bad 2 "a vendor attribute" "vendor" object list 'pkcs11:token=T1;vendor-aaa=1'
	bad 2 "a 33-byte token label" "no token can match" token list 'pkcs11:token=123456789012345678901234567890123'
}

# PIN sources
test_pin_sources() {
	bad 1 "a PIN file that does not exist" "unable to open PIN file '$T/nope'" \
		--pin-source "file:$T/nope" object list 'pkcs11:token=T1'
	: > "$T/empty"; chmod 600 "$T/empty"
	bad 2 "an empty PIN file" "the PIN from file:$T/empty is empty" \
		--pin-source "file:$T/empty" object list 'pkcs11:token=T1'
	mkdir "$T/dir"
	bad 1 "a PIN file that is a directory" "is not a regular file" \
		--pin-source "file:$T/dir" object list 'pkcs11:token=T1'
	bad 2 "an unset env: variable" "env:P11KM_UNSET_PIN: the variable is not set" \
		--pin-source env:P11KM_UNSET_PIN object list 'pkcs11:token=T1'
	bad 2 "an unknown PIN source" "unknown PIN source" --pin-source pass:1234 object list 'pkcs11:token=T1'
	bad 2 "fd: without a number" "fd: takes a file descriptor number" --pin-source fd:x object list 'pkcs11:token=T1'
	cp "$PIN" "$T/readable"; chmod 644 "$T/readable"
	check "a world-readable PIN file works" "$P11KM" --pin-source "file:$T/readable" object list 'pkcs11:token=T1'
	check_one_line_error "... with a one-line warning" "warning: PIN file '$T/readable' is readable by other users: chmod 600"
}

# the command line
test_command_line() {
	bad 2 "an unknown noun" "unknown command 'frobnicate'" frobnicate list
	bad 2 "an unknown verb" "unknown verb 'token frobnicate'" token frobnicate
	bad 2 "an unknown option" "unknown option '--frobnicate'" token list --frobnicate
	bad 2 "an unknown option before the noun" "unknown option '--frobnicate'" --frobnicate token list
	# An abbreviation that starts several options (cert install has --der and --destroy-old).
	if "$P11KM" help --list-commands | grep -q '^cert install .*--der.*' &&
	   "$P11KM" help --list-commands | grep -q '^cert install .*--destroy-old'; then
		bad 2 "an ambiguous abbreviation" "option '--de' is ambiguous" cert install --de x
	fi
	bad 2 "a global option without its value" "option '--module' needs a value" token list --module
	bad 2 "an option without its value" "option '--label' needs a value" token init --label
	bad 2 "too many arguments" "takes at most 1 argument" token list pkcs11:token=T1 pkcs11:token=T2
	bad 2 "help for an unknown noun" "unknown command" help frobnicate
	check_fails "no command: usage, exit 2" 2 "$P11KM"
	check_grep "the usage goes to stderr" '^Usage: p11km' "$T/err"
	check_no_stdout "no command: nothing on stdout"
}

run_tests
