#!/bin/sh
# tests/fuzz/replay.sh: every committed fuzz input (seeds and the inputs of
# bugs the fuzzers found, tests/fuzz/corpus/TARGET/) runs once through its
# target under the build's sanitizers; a crash, a leak or a broken invariant
# fails.  contrib/fuzz.sh does the real fuzzing.
set -u
fail=0
for t in uri certs req pin; do
	dir="$top_srcdir/tests/fuzz/corpus/$t"
	n=$(find "$dir" -type f | wc -l)
	if [ "$n" -lt 3 ]; then
		echo "FAIL: $t: only $n inputs in $dir"
		fail=1
		continue
	fi
	if "$top_builddir/tests/fuzz/replay-$t" "$dir"; then
		echo "ok: $t ($n inputs)"
	else
		echo "FAIL: $t: replay-$t exited $? on $dir"
		fail=1
	fi
done
exit $fail
