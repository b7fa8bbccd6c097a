#!/bin/sh
# Quick start, command 2: install what is missing, build, run every test.
#   contrib/test.sh [configure flags]     (CI: --enable-werror --enable-sanitizers)
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/contrib/deps.sh"
"$top/contrib/build.sh" "$@"
cd "$top/_build"
if make -j"$(nproc)" check; then
	status=0
else
	status=$?
	for f in $(find tests -name '*.log' ! -name test-suite.log); do
		grep -qE '^(FAIL|ERROR)' "${f%.log}.trs" 2>/dev/null && { echo "=== $f"; tail -n 60 "$f"; }
	done
fi
# One closing line for humans and CI: "N passed, N failed, N skipped".
pass=$(grep -h '^:test-result: PASS' $(find tests -name '*.trs') 2>/dev/null | wc -l)
fail=$(grep -hE '^:test-result: (FAIL|ERROR|XPASS)' $(find tests -name '*.trs') 2>/dev/null | wc -l)
skip=$(grep -h '^:test-result: SKIP' $(find tests -name '*.trs') 2>/dev/null | wc -l)
echo "$pass passed, $fail failed, $skip skipped"
exit $status
