#!/bin/sh
# Build p11km and print the build directory (the one line on stdout).
#   contrib/build.sh [configure flags]
# Out of tree in _build/ (P11KM_BUILDDIR=DIR: in DIR instead), or in the
# source tree itself when it was configured there (the README's in-tree
# "./configure && make": configure refuses an out-of-tree build of such a
# tree).  Without flags, a build directory configured before is kept as it
# is; with flags, it is configured again when they differ.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ -x configure ] && [ configure -nt configure.ac ] && [ Makefile.in -nt Makefile.am ] || \
	autoreconf -fi >/dev/null 2>&1 || { echo "p11km: autoreconf failed" >&2; autoreconf -fi; exit 1; }
if [ -f config.status ]; then
	b=$top
	echo "p11km: building in the source tree, which was configured there" >&2
	# the flags it was configured with, as config.status quotes them
	want=
	for a in "$@"; do want="$want '$(printf '%s' "$a" | sed "s/'/'\\\\''/g")'"; done
	if [ $# -gt 0 ] && [ "$(./config.status --config)" != "${want# }" ]; then
		./configure --quiet "$@" >/dev/null
	fi
else
	b=$top/${P11KM_BUILDDIR:-_build}
	mkdir -p "$b"
	cd "$b"
	stamp="$*"
	if [ ! -f Makefile ] || { [ $# -gt 0 ] && [ "$(cat .configure-flags 2>/dev/null)" != "$stamp" ]; }; then
		"$top/configure" --quiet "$@" >/dev/null
		printf '%s' "$stamp" > .configure-flags
	fi
fi
cd "$b"
make -j"$(nproc)" >/dev/null
echo "$b"
