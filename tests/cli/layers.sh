#!/bin/bash
# The layers hold (doc/HACKING.md): the file-level call graph of the
# library and the programs, from nm of the objects make built, has no
# circle and no call from a lower layer to a higher one
# (util <- uri <- p11 <- x509 <- key <- store/bind/ca/track <- op <- cli <- cmd),
# but for the calls tests/tools/layers.py allows by name, and no source file
# is over 800 lines, and cmd-*.c + main.c stay under 1,800.  First the checker
# itself must fail where it should: made-up graphs, then made-up objects.
. "$top_srcdir/tests/lib/common.sh"

setup() {
	need python3 nm cc
	LAYERS="python3 $top_srcdir/tests/tools/layers.py"
}

# the checker's own tests (fake graphs)
test_self_test() {
	check "the checker's own tests (fake graphs)" $LAYERS --self-test
	sed 's/^/#   /' "$T/out"
}

fake() { # fake NAME 'C source'
	printf '%s\n' "$2" > "$T/fake/src/src/$1.c"
	cc -c -o "$T/fake/build/src/.libs/$1.o" "$T/fake/src/src/$1.c"
}

# Objects that break the rules, compiled here: util calls up into p11, and
# p11-a <-> p11-b call each other.
test_made_up_objects() {
	mkdir -p "$T/fake/src/src" "$T/fake/build/src/.libs"
	fake util 'int p11_a(void); int util_f(void) { return p11_a(); }'
	fake p11-a 'int p11_b(void); int p11_a(void) { return p11_b(); }'
	fake p11-b 'int p11_a(void); int p11_b(void) { return p11_a() + 1; }'
	check_fails "objects with an upward call and a circle fail" 1 $LAYERS "$T/fake/build" "$T/fake/src"
	check_grep "the upward call is named" '^layers: upward call: util \(util\) -> p11-a \(p11\)' "$T/out"
	check_grep "the circle is named" '^layers: circle: p11-a <-> p11-b' "$T/out"
	fake frob 'int frob(void) { return 0; }'
	check_fails "a file of no layer fails" 1 $LAYERS "$T/fake/build" "$T/fake/src"
	check_grep "the file of no layer is named" '^layers: frob: no layer' "$T/out"
	fake util-big "$(yes '/* a line */' | head -n 800; echo 'int big(void) { return 0; }')"
	check_fails "a source file over 800 lines fails" 1 $LAYERS "$T/fake/build" "$T/fake/src"
	check_grep "the file over 800 lines is named" '^layers: util-big.c: 801 lines, over 800' "$T/out"
	check_fails "no objects: a usage error" 2 $LAYERS "$T/nothing" "$T/fake/src"
}

# The real build.
test_real_build() {
	check "p11km's layers hold" $LAYERS "$top_builddir" "$top_srcdir"
	sed 's/^/#   /' "$T/out"
	nsrc=$(ls "$top_srcdir"/src/*.c | wc -l)
	check_grep "the graph has every source file of the library and the programs" "^files: $nsrc," "$T/out"
	check_nogrep "no violation" '^layers: ' "$T/out"
}

# The figures (make figures): adding a store kind stays one new file, one
# row in store.c's table and its line in Makefile.am.
test_figures() {
	check "the figures" $LAYERS --figures "$top_builddir" "$top_srcdir"
	sed 's/^/#   /' "$T/out"
	check_grep "adding a store kind touches store.c and Makefile.am only" \
		'^adding a store kind: 1 new file \+ 2 touched \(Makefile.am, src/store.c\)' "$T/out"
	check_grep "no source file over 800 lines" '^over 800 lines: 0 ' "$T/out"
}

run_tests
