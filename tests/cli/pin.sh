#!/bin/bash
# PIN sources and the login rules: file (with and without a line ending),
# env:, fd:, a URI's pin-source and pin-value; at most one C_Login; the
# token flags that forbid a non-interactive try; PIN pads; --trace never
# shows the PIN.  Logins are counted with the PKCS#11 shim.
. "$top_srcdir/tests/lib/common.sh"

# private_listed: the last command listed the private key (it logged in).
private_listed() { grep -q '"class":"private"' "$T/out"; }
check_private() { if private_listed; then ok "$1"; else not_ok "$1"; sed 's/^/#   /' "$T/err" | head -5; fi; }

setup() {
	need python3
	softhsm_setup
	shim_available || skip_all "the p11shim module is not built"
	PINVAL=86420357
	new_token P1 "$PINVAL" 12345678
	printf '%s' "$PINVAL" > "$T/pin"; chmod 600 "$T/pin"
	pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label P1 --login --pin "$PINVAL" --keypairgen \
		--key-type EC:prime256v1 --label k1 --id 01 >/dev/null 2>&1
	K='pkcs11:token=P1;object=k1;type=private'
}

# sources that work
test_sources() {
	check "file: without a line ending" "$P11KM" --json --pin-source "file:$T/pin" object list "$K"
	check_private "file: logs in"
	printf '%s\n' "$PINVAL" > "$T/pin-nl"; chmod 600 "$T/pin-nl"
	check "file: with a trailing newline" "$P11KM" --json --pin-source "file:$T/pin-nl" object list "$K"
	check_private "the newline is stripped"
	printf '%s\r\n' "$PINVAL" > "$T/pin-crlf"; chmod 600 "$T/pin-crlf"
	check "file: with CRLF" "$P11KM" --json --pin-source "file:$T/pin-crlf" object list "$K"
	check_private "CRLF is stripped"
	check "env:VAR" env P11KM_TEST_PIN="$PINVAL" "$P11KM" --json --pin-source env:P11KM_TEST_PIN object list "$K"
	check_private "env: logs in"
	check "fd:3" sh -c "exec 3<'$T/pin'; '$P11KM' --json --pin-source fd:3 object list '$K'"
	check_private "fd: logs in"
	check "the URI's pin-source (file:PATH)" "$P11KM" --json object list "$K?pin-source=file:$T/pin"
	check_private "pin-source=file: logs in"
	check "the URI's pin-source (a bare path, as RFC 7512 writes it)" "$P11KM" --json object list "$K?pin-source=$T/pin"
	check_private "pin-source=PATH logs in"
	check "the URI's pin-value" "$P11KM" --json object list "$K?pin-value=$PINVAL"
	check_private "pin-value logs in"
	check_grep "pin-value warns that the PIN is visible" 'warning: .*pin-value.*visible' "$T/err"
	check_nogrep "the warning does not show the PIN" "$PINVAL" "$T/err"
	chmod 644 "$T/pin-nl"
	check "a world-readable PIN file still works" "$P11KM" --json --pin-source "file:$T/pin-nl" object list "$K"
	check_private "world-readable: logs in"
	check_grep "with a warning naming the file and chmod 600" "warning: PIN file '$T/pin-nl' is readable by other users: chmod 600" "$T/err"
}

# exactly one C_Login, never a retry
test_one_login() {
	check "one login for a listing" shim_p11km --pin-source "file:$T/pin" --json object list 'pkcs11:token=P1'
	check_eq "C_Login called once" "$(count_of C_Login)" 1
	printf 'wrong-pin' > "$T/bad"; chmod 600 "$T/bad"
	check_fails "a wrong PIN (SoftHSM says so): exit 3" 3 shim_p11km --pin-source "file:$T/bad" object list 'pkcs11:token=P1'
	check_eq "a wrong PIN: exactly one C_Login" "$(count_of C_Login)" 1
	check_no_stdout "a wrong PIN: nothing on stdout"
	check_one_line_error "a wrong PIN: one line naming CKR_PIN_INCORRECT" "CKR_PIN_INCORRECT.*does not retry"
	export P11SHIM_FAIL_FUNC=C_Login P11SHIM_FAIL_AT=1 P11SHIM_FAIL_RV=CKR_PIN_INCORRECT
	check_fails "CKR_PIN_INCORRECT injected by the shim: exit 3" 3 shim_p11km --pin-source "file:$T/pin" object list "$K"
	check_eq "CKR_PIN_INCORRECT: the shim counted exactly one C_Login" "$(count_of C_Login)" 1
	check_no_stdout "CKR_PIN_INCORRECT: nothing on stdout"
	check_one_line_error "CKR_PIN_INCORRECT: one line" "CKR_PIN_INCORRECT"
	export P11SHIM_FAIL_RV=CKR_PIN_LOCKED
	check_fails "CKR_PIN_LOCKED from C_Login: exit 3" 3 shim_p11km --pin-source "file:$T/pin" object list "$K"
	check_one_line_error "CKR_PIN_LOCKED: one line" "CKR_PIN_LOCKED"
	unset P11SHIM_FAIL_FUNC P11SHIM_FAIL_AT P11SHIM_FAIL_RV
}

# token flags read before any login
test_flags_first() {
	export P11SHIM_TOKEN_FLAGS_SET=0x20000  # CKF_USER_PIN_FINAL_TRY
	check_fails "final PIN try: refused without --force" 3 shim_p11km --pin-source "file:$T/pin" object list "$K"
	check_eq "final PIN try: zero C_Login" "$(count_of C_Login)" 0
	check_no_stdout "final PIN try: nothing on stdout"
	check_one_line_error "final PIN try: one line saying why and what to do" "one more wrong user PIN locks it.*--force"
	check "final PIN try with --force: one login" shim_p11km --force --json --pin-source "file:$T/pin" object list "$K"
	check_eq "final PIN try with --force: exactly one C_Login" "$(count_of C_Login)" 1
	check_private "final PIN try with --force: logged in"
	export P11SHIM_TOKEN_FLAGS_SET=0x40000  # CKF_USER_PIN_LOCKED
	check_fails "locked PIN: refused" 3 shim_p11km --pin-source "file:$T/pin" object list "$K"
	check_eq "locked PIN: zero C_Login" "$(count_of C_Login)" 0
	check_one_line_error "locked PIN: one line" "locked"
	check_fails "locked PIN: refused even with --force" 3 shim_p11km --force --pin-source "file:$T/pin" object list "$K"
	check_eq "locked PIN with --force: zero C_Login" "$(count_of C_Login)" 0
	export P11SHIM_TOKEN_FLAGS_SET=0x100    # CKF_PROTECTED_AUTHENTICATION_PATH
	# A PIN pad: "prompt" means the pad, so C_Login gets a NULL PIN and no
	# terminal is read.  SoftHSM has no pad and answers as it does; p11km must
	# have tried exactly once and said so.
	shim_p11km --pin-source prompt object list "$K" </dev/null >"$T/out" 2>"$T/err"
	check_eq "PIN pad: exactly one C_Login" "$(count_of C_Login)" 1
	check_grep "PIN pad: p11km says to use the pad" "note: log in on the PIN pad of token 'P1'" "$T/err"
	check_nogrep "PIN pad: no terminal prompt" 'no terminal' "$T/err"
	check "PIN pad, no PIN source: public objects, no login" shim_p11km object list 'pkcs11:token=P1'
	check_eq "PIN pad, no PIN source: zero C_Login" "$(count_of C_Login)" 0
	check_grep "PIN pad: the note mentions the pad" 'PIN pad' "$T/err"
	unset P11SHIM_TOKEN_FLAGS_SET
}

# a PIN is for one token
test_pin_per_token() {
	# With two tokens, a PIN source and a URI that selects both, p11km does not
	# try P1's PIN on P2 (that would count against P2's retry budget).
	new_token P2 97531 12345678
	check_fails "a PIN source with two tokens matching: exit 4" 4 shim_p11km --pin-source "file:$T/pin" object list
	check_eq "two tokens: zero C_Login" "$(count_of C_Login)" 0
	check_no_stdout "two tokens: nothing on stdout"
	check_one_line_error "two tokens: one line listing both" "a PIN is for one token.*token=P1.*token=P2|a PIN is for one token.*token=P2.*token=P1"
	check "naming the token works" shim_p11km --json --pin-source "file:$T/pin" object list 'pkcs11:token=P1'
	check_eq "one C_Login" "$(count_of C_Login)" 1
	check "without a PIN, both tokens are listed (public objects)" shim_p11km object list
	check_eq "without a PIN: zero C_Login" "$(count_of C_Login)" 0
}

# prompt: on a terminal, without echo
test_prompt() {
	# A pseudo-terminal driven by python: wait for the prompt, type the PIN.
	cat > "$T/ptydrive.py" <<'EOF'
import os, pty, sys, time
pin = sys.argv[1].encode() + b"\n"
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
out, deadline = b"", time.time() + 60
while b"PIN for token" not in out and time.time() < deadline:
    try:
        out += os.read(fd, 4096)
    except OSError:
        break
os.write(fd, pin)
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.WEXITSTATUS(status))
EOF
	check "prompt: the PIN typed on a terminal" python3 "$T/ptydrive.py" "$PINVAL" "$P11KM" --pin-source prompt --json object list "$K"
	check_private "prompt: logs in"
	check_grep "prompt: asks for the user PIN of the token" "User PIN for token 'P1': " "$T/out"
	check_nogrep "prompt: the PIN is not echoed" "$PINVAL" "$T/out"
	export P11SHIM_TOKEN_FLAGS_SET=0x20000  # CKF_USER_PIN_FINAL_TRY: a person may still try
	check "prompt on a final-try token: allowed (interactive)" python3 "$T/ptydrive.py" "$PINVAL" \
		env P11SHIM_MODULE="$SOFTHSM2_MODULE" P11SHIM_COUNT_FILE="$T/counts" "$P11KM" --module "$P11SHIM" \
		--pin-source prompt --json object list "$K"
	check_eq "prompt on a final-try token: one C_Login" "$(count_of C_Login)" 1
	unset P11SHIM_TOKEN_FLAGS_SET
	check_fails "prompt: a wrong PIN: exit 3" 3 python3 "$T/ptydrive.py" 11111111 \
		env P11SHIM_MODULE="$SOFTHSM2_MODULE" P11SHIM_COUNT_FILE="$T/counts" "$P11KM" --module "$P11SHIM" \
		--pin-source prompt object list "$K"
	check_eq "prompt: a wrong PIN: one C_Login, no second prompt" "$(count_of C_Login)" 1
	check_eq "prompt: asked once" "$(grep -c 'PIN for token' "$T/out")" 1

	# Several prompts in one run: each answer goes to its own prompt only (the
	# SO PIN is not the user PIN; one token's PIN is never sent to another).
	cat > "$T/ptymulti.py" <<'EOF'
import os, pty, re, sys, time
pins = [p.encode() + b"\n" for p in sys.argv[1].split(",")]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
out, sent, deadline = b"", 0, time.time() + 60
while time.time() < deadline:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
    while sent < len(pins) and len(re.findall(rb"PIN[^\r\n]*: ", out)) > sent:
        os.write(fd, pins[sent])
        sent += 1
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.WEXITSTATUS(status))
EOF
	check "token init with both PINs typed at prompts" python3 "$T/ptymulti.py" 87654321,24680135 \
		"$P11KM" token init --label P3 --so-pin-source prompt --pin-source prompt
	check_eq "token init: asked for the SO PIN, then the user PIN (and no more)" \
		"$(grep -o 'New [a-zA-Z]* PIN: \|PIN for token' "$T/out" | tr '\n' ,)" "New SO PIN: ,New user PIN: ,"
	check "token init: the user PIN is the one typed for it (pkcs11-tool)" pkcs11-tool \
		--module "$SOFTHSM2_MODULE" --token-label P3 --login --pin 24680135 --list-objects
	check "token init: the SO PIN is the one typed for it (pkcs11-tool --init-pin needs it)" pkcs11-tool \
		--module "$SOFTHSM2_MODULE" --token-label P3 --login --login-type so --so-pin 87654321 \
		--init-pin --new-pin 24680135
	new_token P4 13572468 87651234
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca.key" \
		-subj "/CN=pin test CA" -days 2 -addext basicConstraints=critical,CA:TRUE -out "$T/ca.pem" 2>/dev/null
	check "roots install to two tokens, each SO PIN typed at its prompt" python3 "$T/ptymulti.py" \
		"12345678,87651234" "$P11KM" roots install "$T/ca.pem" --to "token:pkcs11:token=P1" \
		--to "token:pkcs11:token=P4" --so-pin-source prompt
	check_eq "  ... one prompt per token" "$(grep -o "SO PIN for token '[^']*'" "$T/out" | tr '\n' ,)" \
		"SO PIN for token 'P1',SO PIN for token 'P4',"
	check "  ... the CA is on P4 (pkcs11-tool)" sh -c "pkcs11-tool --module '$SOFTHSM2_MODULE' \
	--token-label P4 --list-objects --type cert | grep -q 'pin test CA'"

	# A store named by a URI with pin-value: the store is printed, its PIN never
	check "roots with a pin-value store URI" "$P11KM" roots remove "$T/ca.pem" \
		--from "token:pkcs11:token=P1?pin-value=$PINVAL" --dry-run
	check_grep "  ... names the store" "token:pkcs11:token=P1.*would remove" "$T/out"
	check_nogrep "  ... without its PIN" "$PINVAL" "$T/out"
	check "roots list --json of that store" "$P11KM" --json roots list "token:pkcs11:token=P1?pin-value=$PINVAL"
	check_grep "  ... lists the CA" "pin test CA" "$T/out"
	check_nogrep "  ... without the PIN" "$PINVAL" "$T/out"
	check_fails "a mistyped store kind with pin-value" 2 "$P11KM" roots list "tokn:pkcs11:token=P1?pin-value=$PINVAL"
	check_one_line_error "  ... one line" "unknown store"
	check_nogrep "  ... that does not echo the PIN" "$PINVAL" "$T/err"
	check_fails "a URI with a mistyped scheme and pin-value" 2 "$P11KM" object list "pkcs1:token=P1?pin-value=$PINVAL"
	check_one_line_error "  ... one line" "must start with 'pkcs11:'"
	check_nogrep "  ... that does not echo the PIN" "$PINVAL" "$T/err"
	check_fails "a URI with a mistyped pin-value attribute" 2 "$P11KM" object list "pkcs11:token=P1?pin-value:$PINVAL"
	check_one_line_error "  ... one line" "has no '='"
	check_nogrep "  ... that does not echo the PIN" "$PINVAL" "$T/err"
}

# bad sources: an error before any login
test_bad_sources() {
	: > "$T/empty"; chmod 600 "$T/empty"
	check_fails "an empty PIN file: exit 2" 2 shim_p11km --pin-source "file:$T/empty" object list "$K"
	check_eq "an empty PIN file: zero C_Login" "$(count_of C_Login)" 0
	check_one_line_error "an empty PIN file: one line" "empty"
	check_fails "an unset env: variable: exit 2" 2 env -u P11KM_NOPE "$P11KM" --pin-source env:P11KM_NOPE object list "$K"
	check_one_line_error "unset variable: one line naming it" "env:P11KM_NOPE.*not set"
	check_no_stdout "unset variable: nothing on stdout"
	check_fails "a PIN given as the source is refused: exit 2" 2 "$P11KM" --pin-source "$PINVAL" object list "$K"
	check_nogrep "... and not echoed" "$PINVAL" "$T/err"
	check_fails "no --pin option exists: exit 2" 2 "$P11KM" object list --pin "$PINVAL" "$K"
	check_nogrep "... and the PIN is not echoed" "$PINVAL" "$T/err"
	for args in "object list --pin=$PINVAL" "--pin=$PINVAL object list" "key generate --so-pin=$PINVAL" \
		"--so-pin=$PINVAL token init" "object list --pi=$PINVAL"; do
		# shellcheck disable=SC2086
		check_fails "'${args%%=*}=PIN' is refused: exit 2" 2 "$P11KM" $args
		check_one_line_error "  ... in one line naming the option" "option '--[a-z-]*'"
		check_nogrep "  ... without echoing the PIN" "$PINVAL" "$T/err"
	done
}

# --trace shows calls, never the PIN
test_trace() {
	check "--trace" "$P11KM" --trace --pin-source "file:$T/pin" object list "$K"
	check_grep "--trace shows C_Login and its result" 'trace: C_Login -> CKR_OK' "$T/err"
	check_nogrep "--trace does not show the PIN" "$PINVAL" "$T/err"
	check "--verbose says which module and login" "$P11KM" --verbose --pin-source "file:$T/pin" object list "$K"
	check_grep "--verbose: the module" "^p11km: module '.*' initialised$" "$T/err"
	check_grep "--verbose: the login" "^p11km: logged in to token 'P1' as user$" "$T/err"
	check "--quiet: no note" "$P11KM" --quiet object list 'pkcs11:token=P1'
	check_eq "--quiet: nothing on stderr" "$(wc -c < "$T/err")" 0
	check "--trace --verbose with pin-value" "$P11KM" --trace --verbose object list "$K?pin-value=$PINVAL"
	check_nogrep "--trace with pin-value does not show the PIN" "$PINVAL" "$T/err"
}

run_tests
