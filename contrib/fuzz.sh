#!/bin/sh
# Build the libFuzzer targets of tests/fuzz (clang-14, ASan, UBSan) out of
# tree in _build-fuzz/ and run each one.  A crash, a leak, undefined
# behaviour or a broken invariant fails the run (exit 1) and leaves the
# input in _build-fuzz/artifacts/.
#   contrib/fuzz.sh [--ci] [SECONDS]
#     --ci      short runs for CI: SECONDS (default 30) per target
#     SECONDS   per target; without --ci the default is 3600 (hours in all)
# Each target starts from its committed corpus (tests/fuzz/corpus/TARGET)
# and keeps what it learns in _build-fuzz/corpus/TARGET for the next run.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
usage() { sed -n 's/^#   //p' "$0"; exit "$1"; }
ci=0
secs=
while [ $# -gt 0 ]; do
	case $1 in
	--ci) ci=1 ;;
	-h|--help) usage 0 ;;
	''|*[!0-9]*) echo "p11km: fuzz.sh: unknown argument '$1'" >&2; usage 2 >&2 ;;
	*) secs=$1 ;;
	esac
	shift
done
[ -n "$secs" ] || { [ "$ci" = 1 ] && secs=30 || secs=3600; }
# CI runs a fixed sequence (the same inputs at every run, a prefix of it on a
# slower machine): a red CI is then a change's doing, not the luck of a draw.
# Long runs explore with random seeds.
seedopt=
[ "$ci" = 1 ] && seedopt=-seed=1
[ "$secs" -gt 0 ] || { echo "p11km: fuzz.sh: SECONDS must be at least 1" >&2; exit 2; }
CC=${FUZZ_CC:-clang-14}
command -v "$CC" >/dev/null 2>&1 || "$top/contrib/deps.sh"
command -v "$CC" >/dev/null 2>&1 || {
	echo "p11km: fuzz.sh: $CC not found; contrib/deps.sh installs clang-14, libfuzzer-14-dev" \
	     "and libclang-rt-14-dev" >&2
	exit 1
}

# --- build: configure once per compiler, then 'make fuzz'
cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] || \
	autoreconf -fi >/dev/null 2>&1 || { echo "p11km: autoreconf failed" >&2; autoreconf -fi; exit 1; }
b=$top/_build-fuzz
mkdir -p "$b"
cd "$b"
flags="--enable-fuzzing CC=$CC"
if [ ! -f Makefile ] || [ "$(cat .configure-flags 2>/dev/null)" != "$flags" ]; then
	# shellcheck disable=SC2086
	../configure --quiet $flags >/dev/null
	printf '%s' "$flags" > .configure-flags
fi
make -j"$(nproc)" fuzz >build.log 2>&1 || { tail -n 40 build.log >&2; echo "p11km: fuzz.sh: the build failed" >&2; exit 1; }

# --- run: each target for $secs seconds
mkdir -p artifacts
status=0
total=0
for t in uri certs req pin; do
	mkdir -p "corpus/$t"
	log=artifacts/fuzz-$t.log
	maxlen=4096
	[ "$t" = certs ] && maxlen=16384
	start=$(date +%s)
	if UBSAN_OPTIONS=print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
	   "./tests/fuzz/fuzz-$t" $seedopt -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-max_len="$maxlen" -dict="$top/tests/fuzz/dict/$t.dict" -print_final_stats=1 \
		-artifact_prefix="artifacts/$t-" "corpus/$t" "$top/tests/fuzz/corpus/$t" \
		> "$log" 2>&1; then
		result=ok
	else
		result=FAILED
		status=1
	fi
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	[ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
	total=$((total + ${execs:-0}))
	echo "fuzz-$t: ${execs:-0} executions in $(( $(date +%s) - start )) s," \
	     "corpus $(ls "corpus/$t" | wc -l) + $(ls "$top/tests/fuzz/corpus/$t" | wc -l) inputs: $result"
	if [ "$result" = FAILED ]; then
		grep -E 'ERROR: |runtime error|invariant broken|SUMMARY' "$log" | head -n 5 | sed 's/^/  /'
		tail -n 40 "$log" | sed 's/^/  | /'
		echo "  the input is $b/$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1);" \
		     "replay it with $b/tests/fuzz/fuzz-$t FILE, fix, and commit it as" \
		     "tests/fuzz/corpus/$t/regress-WHAT"
	fi
done
echo "fuzz: $total executions in all"
[ "$status" = 0 ] || echo "p11km: fuzz.sh: a fuzz target failed (see above; logs in $b/artifacts/)" >&2
exit $status
