# tests/lib/common.sh: sourced by the shell tests.
# Gives each test a private SoftHSM2 token directory and helpers to assert.
set -u

: "${P11KM:?run through 'make check' (P11KM is not set)}"
: "${top_srcdir:?}"
SOFTHSM2_MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

T=$(mktemp -d "${TMPDIR:-/tmp}/p11km-test.XXXXXX")
_cleanups=""
cleanup_add() { _cleanups="$1; $_cleanups"; }
_on_exit() {
	status=$?
	eval "$_cleanups" 2>/dev/null || true
	rm -rf "$T"
	exit $status
}
trap _on_exit EXIT INT TERM

failures=0
checks=0
ok() { checks=$((checks + 1)); printf 'ok %d - %s\n' "$checks" "$1"; }
not_ok() { checks=$((checks + 1)); failures=$((failures + 1)); printf 'not ok %d - %s\n' "$checks" "$1"; }
# check "description" command...: passes when the command exits 0.
check() { d=$1; shift; if "$@" >"$T/out" 2>"$T/err"; then ok "$d"; else not_ok "$d"; sed 's/^/#   /' "$T/err" | head -20; fi; }
# check_fails "description" EXPECTED_STATUS command...
check_fails() {
	d=$1; want=$2; shift 2
	set +e; "$@" >"$T/out" 2>"$T/err"; got=$?; set -e 2>/dev/null || true
	if [ "$got" = "$want" ]; then ok "$d (exit $got)"; else
		not_ok "$d: expected exit $want, got $got"; sed 's/^/#   /' "$T/err" | head -20; fi
}
# check_grep "description" PATTERN FILE
check_grep() { if grep -qE -- "$2" "$3"; then ok "$1"; else not_ok "$1: no /$2/ in $3"; sed 's/^/#   /' "$3" | head -20; fi; }
check_nogrep() { if grep -qE -- "$2" "$3"; then not_ok "$1: /$2/ found in $3"; sed 's/^/#   /' "$3" | head -20; else ok "$1"; fi; }
skip_all() { echo "1..0 # SKIP $*"; exit 77; }
done_testing() {
	echo "1..$checks"
	[ "$checks" -gt 0 ] || { echo "# no checks ran"; exit 99; }
	[ "$failures" -eq 0 ] || { echo "# $failures of $checks checks failed"; exit 1; }
	exit 0
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
