#!/bin/sh
# A full disk stops 'cert install --out-dir' and 'cert install --bind'
# before the token changes: what the file changes need (the staged files,
# and the backups the commit keeps, copies on a file system without hard
# links) is taken first.  'bind emit' that fails leaves no PIN file behind.
# The disk is a small tmpfs this test mounts (and unmounts); a file system
# without hard links is simulated by failing link() (strace).
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	TMPDIR=/dev/shm
	export TMPDIR
fi
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

unchanged() { diff -rq -x token.object -x '*.lock' "$T/snap" "$T/tokens" >/dev/null 2>&1; }
files() { (cd "$SMALL" && find . -type f | sort && cat srv/* ng/*); }
# fill FREE: leave FREE blocks of the tmpfs free
fill() {
	rm -f "$SMALL/fill"
	_free=$(stat -f -c %a "$SMALL")
	dd if=/dev/zero of="$SMALL/fill" bs=4096 count=$((_free - $1)) 2>/dev/null
}

setup() {
	need openssl pkcs11-tool strace
	[ "$(id -u)" = 0 ] || skip_all "mounting a small tmpfs needs root"
	softhsm_setup
	new_token df
	M=$SOFTHSM2_MODULE
	PIN=$T/pin-df
	TOK="pkcs11:token=df"
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	CA=$T/ca
	token_keypair "$M" df "$PIN" web 01 "$T/web.pub" || { echo "keygen failed"; exit 99; }
	for s in 1 2; do
		issue "$CA" "$T/web.pub" "$T/r$s.pem" web.example.test "0x0a0$s"
		cat "$CA/inter.pem" >> "$T/r$s.pem"
	done
	SMALL=$T/small
	mkdir "$SMALL"
	mount -t tmpfs -o size=256k,mode=0755 p11km-test "$SMALL" || skip_all "cannot mount a tmpfs here"
	cleanup_add "umount '$SMALL'"
	INSTALL="cert install $T/r2.pem $TOK --pin-source file:$PIN --ca-file $CA/root.pem"
	"$P11KM" cert install "$T/r1.pem" "$TOK" --pin-source "file:$PIN" --ca-file "$CA/root.pem" \
		--out-dir "$SMALL/srv" >/dev/null 2>&1 || { echo "first install failed"; exit 99; }
	"$P11KM" bind emit nginx --key "$TOK;object=web;type=private" --listen 127.0.0.1:1 \
		--out-dir "$SMALL/ng" --pin-file "$T/srv.pin" --pin-source "file:$PIN" >/dev/null 2>&1 ||
		{ echo "bind emit failed"; exit 99; }
	cp -a "$T/tokens" "$T/snap"
	files > "$T/files.before"
}

# a full disk, no hard links: the install fails before the token changes
# Room for the staged files (one block each), none for copies of the old
# ones: the commit on a file system without hard links keeps copies.
# shellcheck disable=SC2086
test_full_disk_no_links() {
	for what in "--out-dir $SMALL/srv:3" "--bind $SMALL/ng:13"; do
		opt=${what%:*} room=${what##*:}
		fill "$room"
		# shellcheck disable=SC2086
		ASAN_OPTIONS=detect_leaks=0 strace -f -o /dev/null -e trace=link -e inject=link:error=EPERM \
			"$P11KM" $INSTALL $opt >/dev/null 2>"$T/err"
		rc=$?
		check_eq "full disk, no hard links, ${opt%% *}: install fails" "$rc" 1
		check_grep "  ... saying why" 'No space left on device' "$T/err"
		unchanged && ok "  ... before the token changed" || not_ok "  ... the token changed first"
		check_nogrep "  ... and not 'already holds' (nothing to finish)" 'already holds' "$T/err"
		rm -f "$SMALL/fill"
		files > "$T/files.after"
		check "  ... every file keeps its old content, no temporary file left" \
			cmp "$T/files.before" "$T/files.after"
	done
}

# with room, the same runs succeed
test_with_room() {
	check "with room, --out-dir and --bind work" "$P11KM" $INSTALL --out-dir "$SMALL/srv" --bind "$SMALL/ng"
	check "  ... cert.pem is the new leaf" test "$(fp "$SMALL/srv/cert.pem")" = "$(fp "$T/r2.pem")"
}

# bind emit: a binding that cannot be written leaves no PIN file behind
test_bind_emit_no_pin_left() {
	: > "$T/notadir"
	check_fails "bind emit into a directory that cannot be made fails" 1 "$P11KM" bind emit nginx \
		--key "$TOK;object=web;type=private" --listen 127.0.0.1:1 --out-dir "$T/notadir" \
		--pin-file "$T/new.pin" --pin-source "file:$PIN"
	check "  ... and leaves no PIN file behind" test ! -e "$T/new.pin"
	fill 0
	check_fails "bind emit on a full disk fails" 1 "$P11KM" bind emit nginx \
		--key "$TOK;object=web;type=private" --listen 127.0.0.1:1 --out-dir "$SMALL/ng2" \
		--pin-file "$SMALL/new.pin" --pin-source "file:$PIN"
	check "  ... and leaves no PIN file behind" test ! -e "$SMALL/new.pin"
	check_eq "  ... nor anything else" "$(ls -A "$SMALL" | grep -v '^fill$' | sort | tr '\n' ' ')" "ng srv "
	rm -f "$SMALL/fill"
	check "an existing PIN file is kept when emit fails" sh -c "cp '$T/srv.pin' '$T/keep.pin' &&
	! '$P11KM' bind emit nginx --key '$TOK;object=web;type=private' --listen 127.0.0.1:1 \
	--out-dir '$T/notadir' --pin-file '$T/keep.pin' --pin-source 'file:$PIN' 2>/dev/null &&
	test -s '$T/keep.pin'"
}

run_tests
