#!/bin/sh
# Build p11km out of tree in _build/ (configure flags as arguments).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] || \
	autoreconf -fi >/dev/null 2>&1 || { echo "p11km: autoreconf failed" >&2; autoreconf -fi; exit 1; }
mkdir -p _build
cd _build
stamp="$*"
if [ ! -f Makefile ] || [ "$(cat .configure-flags 2>/dev/null)" != "$stamp" ]; then
	../configure --quiet "$@" >/dev/null
	printf '%s' "$stamp" > .configure-flags
fi
make -j"$(nproc)" >/dev/null
