# tests/lib/common.sh: sourced by the shell tests.
# Gives each test a private scratch directory ($T, removed at exit), a private
# SoftHSM2 token directory on request, helpers to assert, and the runner.
#
# How a test file looks (p11-kit's test-*.sh):
#
#	#!/bin/sh
#	# What the file proves, and who judges (openssl, pkcs11-tool...).
#	. "$top_srcdir/tests/lib/common.sh"
#	. "$top_srcdir/tests/lib/certs.sh"         # the test CA, when needed
#
#	setup() {                                   # optional
#		need openssl pkcs11-tool            # skip_all when a tool is missing
#		softhsm_setup
#		new_token T
#	}
#	teardown() { ...; }                         # optional
#
#	test_install() {
#		check "cert install" "$P11KM" cert install ...
#		check_grep "... says so" 'installed' "$T/out"
#	}
#	test_reinstall() { ...; }
#
#	run_tests
#
# run_tests runs setup, then every test_* function in the order the file
# defines them (one "test_name() {" per line start), then teardown, and ends
# with done_testing (the TAP plan; exit 1 when a check failed).  The test
# functions run in one shell, one after the other: a later one may use what an
# earlier one made.  A failed check fails the file, not the function; what a
# test function returns is only noted.  setup failing (non-zero) ends the file
# as an error (exit 99); skip_all in setup skips the file (exit 77; under
# CI=true contrib/test.sh counts a skip as a failure).  Servers and other
# processes go to cleanup_add, which runs at exit whatever happened; teardown
# runs at exit too when a test ended the file early.
#   P11KM_TEST_ONLY="name ..." runs setup and only those test functions
#   (with or without the test_ prefix), e.g.
#   P11KM_TEST_ONLY=roots_list make check TESTS=tests/cli/roots.sh
set -u

: "${P11KM:?run through 'make check' (P11KM is not set)}"
: "${top_srcdir:?}"
SOFTHSM2_MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

T=$(mktemp -d "${TMPDIR:-/tmp}/p11km-test.XXXXXX")
# what p11km keeps (learned token quirks, replaced PIV certificates) stays in the test
export P11KM_STATE_DIR=$T/state
_cleanups=""
cleanup_add() { _cleanups="$1; $_cleanups"; }
_on_exit() {
	status=$?
	if [ -n "${_teardown_due:-}" ]; then _teardown_due=; teardown || true; fi
	eval "$_cleanups" 2>/dev/null || true
	rm -rf "$T"
	exit $status
}
trap _on_exit EXIT INT TERM
# Every change a test makes goes to its own audit log (p11km-audit(1)),
# never to /var/log/p11km or the tester's home.
P11KM_AUDIT_LOG=$T/audit.log
export P11KM_AUDIT_LOG

failures=0
checks=0
ok() { checks=$((checks + 1)); printf 'ok %d - %s\n' "$checks" "$1"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); printf 'not ok %d - %s\n' "$checks" "$1"; }
# check "description" command...: passes when the command exits 0.
check() { d=$1; shift; if "$@" >"$T/out" 2>"$T/err"; then ok "$d"; else not_ok "$d"; sed 's/^/#   /' "$T/err" | head -20; fi; }
# check_fails "description" EXPECTED_STATUS command...
# (works with and without set -e; leaves stdout in $T/out, stderr in $T/err)
check_fails() {
	d=$1; want=$2; shift 2
	if "$@" >"$T/out" 2>"$T/err"; then got=0; else got=$?; fi
	if [ "$got" = "$want" ]; then ok "$d (exit $got)"; else
		not_ok "$d: expected exit $want, got $got"; sed 's/^/#   /' "$T/err" | head -20; fi
}
# check_no_stdout "description": the last check/check_fails printed nothing on stdout.
check_no_stdout() {
	if [ -s "$T/out" ]; then not_ok "$1: stdout is not empty"; sed 's/^/#   /' "$T/out" | head -5
	else ok "$1"; fi
}
# check_one_line_error "description" [PATTERN]: the last command wrote exactly one
# line on stderr, "p11km: ...", matching PATTERN when given.
check_one_line_error() {
	_n=$(wc -l < "$T/err")
	if [ "$_n" -eq 1 ] && grep -q '^p11km: ' "$T/err" && { [ $# -lt 2 ] || grep -qE -- "$2" "$T/err"; }; then
		ok "$1"
	else
		not_ok "$1: want one 'p11km:' line${2:+ matching /$2/}, got $_n lines"; sed 's/^/#   /' "$T/err" | head -10
	fi
}
# check_eq "description" GOT WANT
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1: got '$2', want '$3'"; fi; }
# check_grep "description" PATTERN FILE
check_grep() { if grep -qE -- "$2" "$3"; then ok "$1"; else not_ok "$1: no /$2/ in $3"; sed 's/^/#   /' "$3" | head -20; fi; }
check_nogrep() { if grep -qE -- "$2" "$3"; then not_ok "$1: /$2/ found in $3"; sed 's/^/#   /' "$3" | head -20; else ok "$1"; fi; }
# hold_lock FILE: hold flock(FILE) in a background process until
# release_lock; returns once the lock is held (no sleep-and-hope).
hold_lock() {
	rm -f "$T/.lock-held" "$T/.lock-release"
	flock "$1" sh -c 'touch "$1/.lock-held"; while [ ! -e "$1/.lock-release" ]; do sleep 0.05; done' sh "$T" &
	_holder=$!
	_n=0
	while [ ! -e "$T/.lock-held" ]; do
		_n=$((_n + 1)); [ $_n -lt 1200 ] || { echo "# the lock holder never took $1"; return 1; }
		sleep 0.05
	done
}
release_lock() { touch "$T/.lock-release"; wait "$_holder" 2>/dev/null || true; }
# check_waits "description" PATTERN command...: with a lock held (hold_lock),
# the command reports PATTERN on stderr while it waits, then, once the lock is
# released, succeeds.  However slow the machine, it never races the holder.
check_waits() {
	d=$1; _pat=$2; shift 2
	"$@" >"$T/out" 2>"$T/err" &
	_w=$!
	_n=0
	while ! grep -qE -- "$_pat" "$T/err" && kill -0 $_w 2>/dev/null && [ $_n -lt 1200 ]; do
		_n=$((_n + 1)); sleep 0.05
	done
	release_lock
	if wait $_w; then ok "$d"; else not_ok "$d"; sed 's/^/#   /' "$T/err" | head -20; fi
}
skip_all() { echo "1..0 # SKIP $*"; exit 77; }
done_testing() {
	echo "1..$checks"
	[ "$checks" -gt 0 ] || { echo "# no checks ran"; exit 99; }
	[ "$failures" -eq 0 ] || { echo "# $failures of $checks checks failed"; exit 1; }
	exit 0
}

# run_tests [test_name...]: setup, the test functions (by default every
# test_* the script defines, in file order), teardown, done_testing.
run_tests() {
	_rt_all=$*
	[ -n "$_rt_all" ] || _rt_all=$(sed -n 's/^\(test_[A-Za-z0-9_]*\)[[:space:]]*().*/\1/p' "$0")
	[ -n "$_rt_all" ] || { echo "# run_tests: no test_* function in $0"; exit 99; }
	_rt_dup=$(printf '%s\n' $_rt_all | sort | uniq -d | head -1)
	[ -z "$_rt_dup" ] || { echo "# run_tests: $_rt_dup is defined twice in $0"; exit 99; }
	_rt_run=$_rt_all
	if [ -n "${P11KM_TEST_ONLY:-}" ]; then
		_rt_run=
		for _rt_t in $(printf '%s' "$P11KM_TEST_ONLY" | tr ',' ' '); do
			_rt_t=test_${_rt_t#test_}
			printf '%s\n' $_rt_all | grep -qx -- "$_rt_t" ||
				{ echo "# run_tests: no $_rt_t in $0 (P11KM_TEST_ONLY)"; exit 99; }
			_rt_run="$_rt_run $_rt_t"
		done
	fi
	if [ "$(command -v setup)" = setup ]; then
		setup || { _rt_rc=$?; echo "# run_tests: setup failed (status $_rt_rc)"; exit 99; }
	fi
	[ "$(command -v teardown)" != teardown ] || _teardown_due=1
	for _rt_t in $_rt_run; do
		[ "$(command -v "$_rt_t")" = "$_rt_t" ] || { echo "# run_tests: $_rt_t is not a function"; exit 99; }
		echo "# $_rt_t"
		"$_rt_t" || echo "# $_rt_t returned $?"
	done
	if [ -n "${_teardown_due:-}" ]; then
		_teardown_due=
		teardown || echo "# teardown returned $?"
	fi
	done_testing
}

# softhsm_setup: a private SoftHSM2 configuration and token directory.
softhsm_setup() {
	[ -f "$SOFTHSM2_MODULE" ] || skip_all "SoftHSM2 module not found"
	mkdir -p "$T/tokens"
	sed "s|@TOKENDIR@|$T/tokens|" "$top_srcdir/tokens/softhsm2/softhsm2.conf.in" > "$T/softhsm2.conf"
	SOFTHSM2_CONF=$T/softhsm2.conf
	export SOFTHSM2_CONF
	P11KM_MODULE=$SOFTHSM2_MODULE
	export P11KM_MODULE
}

# pin_file NAME VALUE: a mode 0600 PIN file without a trailing newline.
pin_file() { (umask 077; printf '%s' "$2" > "$T/$1"); echo "$T/$1"; }

# new_token LABEL [USERPIN] [SOPIN]: initialise a SoftHSM2 token with p11km.
new_token() {
	_u=$(pin_file "pin-$1" "${2:-1234}")
	_s=$(pin_file "sopin-$1" "${3:-12345678}")
	"$P11KM" token init --label "$1" --so-pin-source "file:$_s" --pin-source "file:$_u" >/dev/null
}

# pkcs11-tool against the test module
p11tool_sm() { pkcs11-tool --module "$SOFTHSM2_MODULE" "$@"; }

# --- the PKCS#11 shim (tests/shim/README.md) ------------------------------
# shim_p11km ARGS...: run p11km through the shim wrapping SoftHSM2; the call
# counts land in $T/counts (reset first).  Fault settings come from the
# caller's environment (P11SHIM_FAIL_*, P11SHIM_TOKEN_FLAGS_*), e.g.
#   P11SHIM_FAIL_FUNC=C_Login P11SHIM_FAIL_AT=1 shim_p11km object list
shim_p11km() {
	rm -f "$T/counts"
	P11SHIM_MODULE=$SOFTHSM2_MODULE P11SHIM_COUNT_FILE=$T/counts \
		"$P11KM" --module "$P11SHIM" "$@"
}
shim_available() { [ -n "${P11SHIM:-}" ] && [ -f "$P11SHIM" ]; }
# count_of FUNC: calls of FUNC in the last shim run ("total" for all).
count_of() { awk -v f="$1" '$1 == f { n = $2 } END { print n + 0 }' "$T/counts" 2>/dev/null || echo 0; }

# need TOOL...: skip the whole file when a tool is missing (CI installs all).
need() { for _t in "$@"; do command -v "$_t" >/dev/null 2>&1 || skip_all "$_t not installed"; done; }

# --- servers on 127.0.0.1 ------------------------------------------------
# Other tests, and other people's servers, run on this machine at the same
# time: a port is free only when it can be bound, a port may be taken between
# the choice and the server's bind, and a server is up only when it answers.

# free_port [N]: N (default 1) TCP ports that can be bound on 127.0.0.1 now
# (random, 20000-31999: below the ephemeral range, so no client connection of
# a parallel test holds one), none given out before in this test.
# bindable PORT...: each of them can be bound now.
free_port() { _ports pick "${1:-1}"; }
bindable() { _ports check "$@"; }
_ports() {
	python3 - "$T/ports.used" "$@" <<'EOF'
import os, random, socket, sys
used_file, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
def bindable(p):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do
    try:
        s.bind(("127.0.0.1", int(p)))
        return True
    except OSError:
        return False
    finally:
        s.close()
if mode == "check":
    sys.exit(0 if all(bindable(p) for p in args) else 1)
used = set(open(used_file).read().split()) if os.path.exists(used_file) else set()
out = []
while len(out) < int(args[0]):
    p = str(random.randint(20000, 31999))
    if p not in used and p not in out and bindable(p):
        out.append(p)
open(used_file, "a").write("\n".join(out) + "\n")
print(" ".join(out))
EOF
}

# wait_port PORT [PID]: until something accepts on 127.0.0.1:PORT (30 s);
# with PID: until PID itself listens there (ss), failing at once when PID is
# gone (another program may hold the port).
wait_port() {
	for _i in $(seq 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			[ -z "${2:-}" ] && return 0
			ss -ltnpH "sport = :$1" 2>/dev/null | grep -q "pid=$2," && return 0
		fi
		[ -z "${2:-}" ] || kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# start_server LOG N FUNC [PORT...]: start a server on N free ports (the
# first try on PORT... when they are still free: ports already written into
# a binding).  "FUNC PORT..." writes the server's configuration for those
# ports and starts it; the server logs to LOG (which it creates: some open it
# after dropping privileges), FUNC's own output goes to LOG.start, and a
# server run in the background of this shell sets SERVER_PID.  When a port
# was taken meanwhile ("in use" in the logs) it starts again on other ports
# (5 tries).  Up when every port accepts a connection (from SERVER_PID when
# set).  Sets PORTS (PORT: the first).  On failure the logs go to stderr
# (which check shows) and it returns 1.  Use: check "..." start_server ...
start_server() {
	_log=$1 _n=$2 _fn=$3
	shift 3
	_first=$*
	for _try in 1 2 3 4 5; do
		if [ -n "$_first" ] && bindable $_first; then PORTS=$_first; else PORTS=$(free_port "$_n"); fi
		_first= PORT=${PORTS%% *} SERVER_PID=
		[ ! -f "$_log" ] || : > "$_log"
		if "$_fn" $PORTS >"$_log.start" 2>&1; then
			_up=1
			for _p in $PORTS; do wait_port "$_p" "$SERVER_PID" || { _up=0; break; }; done
			[ $_up = 1 ] && ! cat "$_log" "$_log.start" 2>/dev/null | grep -qi 'in use' && return 0
		fi
		[ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null
		cat "$_log" "$_log.start" 2>/dev/null | grep -qi 'in use' || break
		echo "# port ${PORTS} taken meanwhile (try $_try), again with others" >&2
	done
	echo "server not up on 127.0.0.1 port(s) $PORTS; its log ($_log) and output:" >&2
	tail -n 12 "$_log" >&2 2>/dev/null
	tail -n 6 "$_log.start" >&2
	return 1
}

# json_get FILE PYTHON-EXPR: evaluate an expression over the parsed JSON (d).
json_get() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
