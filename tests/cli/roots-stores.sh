#!/bin/sh
# roots install into several stores: when a later store fails, the error
# says which earlier stores were already changed (and they really were:
# openssl judges), so that the user knows what to finish.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	TMPDIR=/dev/shm
	export TMPDIR
fi
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

setup() {
	need openssl
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	CA=$T/ca
	# an openssl-dir that fails at its commit: the file p11km would write for
	# the root is a symbolic link there (refused), found only when writing
	mkdir "$T/dir"
	ln -s /dev/null "$T/dir/p11km-$(fp "$CA/root.pem" | cut -c1-16).pem"
}

# a failing later store: the error names the stores already changed
test_later_store_fails() {
	check_fails "a failing second store fails the install" 1 "$P11KM" roots install "$CA/root.pem" \
		--to "pem-bundle:$T/a.pem" --to "pem-bundle:$T/b.pem" --to "openssl-dir:$T/dir"
	check_one_line_error "... in one line" "symbolic link"
	check_grep "... that names the stores already changed, with what changed" \
		"these stores were already changed: pem-bundle:$T/a.pem \(1 added\), pem-bundle:$T/b.pem \(1 added\); run the same command again" \
		"$T/err"
	check_no_stdout "... and prints no report"
	for b in a b; do
		check_eq "pem-bundle $b really holds the root" \
			"$(openssl x509 -in "$T/$b.pem" -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f')" \
			"$(fp "$CA/root.pem")"
	done
}

# nothing changed before the failure: the error does not claim otherwise
test_first_store_fails() {
	check_fails "a failing first store" 1 "$P11KM" roots install "$CA/root.pem" --to "openssl-dir:$T/dir" \
		--to "pem-bundle:$T/c.pem"
	check_nogrep "... names no store as changed" "already changed" "$T/err"
	[ ! -e "$T/c.pem" ] && ok "... and the later store is untouched" || not_ok "$T/c.pem was written"
}

# a store already holding the root is not "changed"
test_store_holds_root() {
	check_fails "the first store already holds the root" 1 "$P11KM" roots install "$CA/root.pem" \
		--to "pem-bundle:$T/a.pem" --to "openssl-dir:$T/dir"
	check_nogrep "... it is not named as changed" "already changed" "$T/err"
}

run_tests
