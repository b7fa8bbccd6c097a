#!/bin/bash
# The quick start after the README's in-tree build step: contrib/build.sh
# (which demo.sh and test.sh use) builds where the tree was configured
# instead of failing with "source directory already configured".  A copy
# of the source tree is configured in place by the real configure; make is
# a stub that records where it ran (the build itself is what CI does anyway).
. "$top_srcdir/tests/lib/common.sh"

setup() {
	need tar
	mkdir "$T/src" "$T/bin"
	tar -C "$top_srcdir" --exclude='./_build*' --exclude=./.git --exclude=./config.status \
		--exclude=./config.log --exclude=./Makefile -cf - . | tar -C "$T/src" -xf -
	[ -x "$T/src/configure" ] || skip_all "the source tree has no configure (run autoreconf -fi)"
}

# the README's in-tree build: configure, then contrib/build.sh
test_in_tree_build() {
	check "./configure in the source tree (the README's Build step)" sh -c "cd '$T/src' && ./configure --quiet"
	printf '#!/bin/sh\npwd >> "%s"\n' "$T/make.cwd" > "$T/bin/make"
	chmod +x "$T/bin/make"
	check "contrib/build.sh then succeeds" env PATH="$T/bin:$PATH" sh "$T/src/contrib/build.sh"
	check_eq "  ... and names the source tree as the build directory" "$(cat "$T/out")" "$T/src"
	check_eq "  ... where make ran" "$(cat "$T/make.cwd" 2>/dev/null)" "$T/src"
	check_grep "  ... saying so" "building in the source tree" "$T/err"
}

run_tests
