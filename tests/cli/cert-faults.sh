#!/bin/sh
# cert install under faults.  Token: every PKCS#11 call of an install fails
# in turn (through the shim) with CKR_DEVICE_REMOVED (sticky: the token stays
# gone), CKR_DEVICE_MEMORY, CKR_SESSION_HANDLE_INVALID, and with the call
# taking effect before the failure is reported (P11SHIM_FAIL_AFTER=1).  After
# each, pkcs11-tool must find the old certificate, the new one or both, and
# the key untouched; a second run must converge to exactly one current
# certificate.  The same for a rekey install.  Files: failing renames,
# writes and fsyncs (strace fault injection) and a planted symlink leave
# every --out-dir file with its old content and no temporary file.
# hundreds of token writes: use a RAM file system when there is one
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	TMPDIR=/dev/shm
	export TMPDIR
fi
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"
. "$top_srcdir/tests/lib/faults.sh"

# state: "cert|id|label|serial" and "key|class|id|label" lines, sorted.
state() {
	pkcs11-tool --module "$M" --token-label flt --login --pin "$(cat "$PIN")" -O 2>/dev/null |
	awk '/Object;|Object$|Key Object/{if(n)print k"|"c"|"id"|"l"|"s; n=1; id="";l="";s="";
	         k=($1=="Certificate")?"cert":"key"; c=$1}
	     /^  label:/{sub(/^  label: +/,""); l=$0} /^  ID:/{id=$2} /^  serial:/{s=tolower($2)}
	     END{if(n)print k"|"c"|"id"|"l"|"s}' | sort
}
shim() {
	P11KM_MODULE=$P11SHIM P11SHIM_MODULE=$M "$@"
}

setup() {
	need openssl pkcs11-tool strace
	[ -f "${P11SHIM:-}" ] || skip_all "the PKCS#11 shim is not built"
	softhsm_setup
	new_token flt
	M=$SOFTHSM2_MODULE
	PIN=$T/pin-flt
	TOK="pkcs11:token=flt"
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	CA=$T/ca
}

restore() { rm -rf "$T/tokens"; cp -a "$T/$1" "$T/tokens"; }
# unchanged SNAP: every object file of the token is byte-identical to the
# snapshot (SoftHSM keeps one file per object; token.object holds login
# state and changes on every login).
unchanged() { diff -rq -x token.object -x '*.lock' "$T/$1" "$T/tokens" >/dev/null 2>&1; }
# check_after LABEL: old, new or both; key untouched; then a clean run
# converges (from an unchanged token that is the clean run, proven above).
check_after() {
	unchanged snap && return
	state > "$T/st"
	grep '^key' "$T/st" | cmp -s - "$T/keys.orig" || { bad="$bad $1:key-changed"; return; }
	grep -qE '^cert\|Certificate\|01\|web(\.retired-[0-9]+)?\|0a0[12]$' "$T/st" ||
		{ bad="$bad $1:no-cert"; return; }
	if grep -E '^cert\|Certificate\|01\|' "$T/st" | grep -vqE '\|0a0[12]$'; then
		bad="$bad $1:stray-cert"; return
	fi
	"$P11KM" $INSTALL > "$T/second" 2>&1 || { bad="$bad $1:second-run-failed"; return; }
	state > "$T/st2"
	[ "$(grep -cE '^cert\|Certificate\|01\|' "$T/st2")" = 1 ] &&
		grep -qE '^cert\|Certificate\|01\|web\|0a02$' "$T/st2" ||
		{ bad="$bad $1:not-converged"; return; }
	[ "$(grep -c 'Intermediate' "$T/st2")" = 1 ] || { bad="$bad $1:intermediates"; return; }
	grep '^key' "$T/st2" | cmp -s - "$T/keys.orig" || bad="$bad $1:key-changed-2"
}
# sweep SNAPCHECK RUN...: fail call i for each i given on stdin as
# "i env-settings..." and check after each; sets bad and runs.
sweep() {
	_chk=$1
	bad=""
	runs=0
	while read -r _i _env; do
		restore "$SNAP"
		# shellcheck disable=SC2086
		shim env $_env P11SHIM_FAIL_AT=$_i "$P11KM" $CMD >/dev/null 2>&1
		runs=$((runs + 1))
		$_chk "$_i:$_env"
	done
}

# plain renewal
test_renewal() {
	token_keypair "$M" flt "$PIN" web 01 "$T/web.pub" || { echo "keygen failed"; exit 99; }
	issue "$CA" "$T/web.pub" "$T/old.pem" web.example.test 0x0a01
	issue "$CA" "$T/web.pub" "$T/new.pem" web.example.test 0x0a02
	cat "$CA/inter.pem" > "$T/inter-only.pem"
	"$P11KM" cert install "$T/old.pem" "$TOK" --pin-source "file:$PIN" --ca-file "$CA/root.pem" \
		--no-verify >/dev/null 2>&1
	# the intermediate goes in with the new reply: more calls to fail
	cat "$T/new.pem" "$CA/inter.pem" > "$T/new.reply"
	state | grep '^key' > "$T/keys.orig"
	cp -a "$T/tokens" "$T/snap"

	INSTALL="cert install $T/new.reply $TOK --pin-source file:$PIN --ca-file $CA/root.pem"
	shim env P11SHIM_COUNT_FILE="$T/counts" "$P11KM" $INSTALL >/dev/null 2>&1
	N=$(awk '$1=="total"{print $2}' "$T/counts")
	G=$(awk '$1=="C_GetFunctionList"{print $2}' "$T/counts")
	N=$((N - ${G:-0}))
	[ "$N" -gt 10 ] && ok "a clean install through the shim makes $N PKCS#11 calls" ||
		{ not_ok "call count '$N'"; done_testing; }
}

rekey_part() {
	T=$T/rk
	mkdir -p "$T"
	cp -a "$T/../snap" "$T/tokens"
	sed "s|@TOKENDIR@|$T/tokens|" "$top_srcdir/tokens/softhsm2/softhsm2.conf.in" > "$T/softhsm2.conf"
	SOFTHSM2_CONF=$T/softhsm2.conf
	export SOFTHSM2_CONF
	ok() { echo "ok|$1" >> "$R"; }
	not_ok() { echo "not_ok|$1" >> "$R"; }
	token_keypair "$M" flt "$PIN" web.pending 02 "$T/pending.pub" || { echo "keygen failed"; exit 99; }
	issue "$CA" "$T/pending.pub" "$T/rekey.leaf" web.example.test 0x0b01
	cat "$T/rekey.leaf" "$CA/inter.pem" > "$T/rekey.pem"
	state | grep '^key' > "$T/rekey-keys.orig"
	cp -a "$T/tokens" "$T/snap-rekey"
	REKEY="cert install $T/rekey.pem $TOK --pin-source file:$PIN --ca-file $CA/root.pem"
	shim env P11SHIM_COUNT_FILE="$T/counts2" "$P11KM" $REKEY >/dev/null 2>&1
	NR=$(awk '$1=="total"{print $2}' "$T/counts2")
	NR=$((NR - $(awk '$1=="C_GetFunctionList"{print $2}' "$T/counts2")))

	check_rekey() {
		unchanged snap-rekey && return
		state > "$T/st"
		# every key is still there (labels may have moved)
		[ "$(grep -c '^key' "$T/st")" = 4 ] || { bad="$bad $1:keys"; return; }
		grep -qE '^cert\|Certificate\|01\|web(\.retired-[0-9]+)?\|0a01$|^cert\|Certificate\|02\|web(\.pending)?\|0b01$' "$T/st" ||
			{ bad="$bad $1:no-cert"; return; }
		"$P11KM" $REKEY > "$T/second" 2>&1 || { bad="$bad $1:second-run-failed"; return; }
		state > "$T/st2"
		for want in 'key\|Private\|02\|web\|' 'key\|Public\|02\|web\|' \
		            'key\|Private\|01\|web\.retired-[0-9]{8}\|' 'key\|Public\|01\|web\.retired-[0-9]{8}\|' \
		            'cert\|Certificate\|02\|web\|0b01' 'cert\|Certificate\|01\|web\.retired-[0-9]{8}\|0a01'; do
			grep -qE "^$want\$" "$T/st2" || { bad="$bad $1:missing($want)"; return; }
		done
		[ "$(grep -c '|web|' "$T/st2")" = 3 ] || bad="$bad $1:labels"
	}
	SNAP=snap-rekey CMD=$REKEY
	calls "$NR" "P11SHIM_FAIL_RV=CKR_DEVICE_REMOVED P11SHIM_FAIL_STICKY=1" > "$T/plan"
	sweep check_rekey < "$T/plan"
	[ -z "$bad" ] && ok "rekey, CKR_DEVICE_REMOVED at each of $NR calls: recoverable, the next run completes it" ||
		not_ok "rekey CKR_DEVICE_REMOVED:$bad"
	effectful "$T/counts2" > "$T/plan"
	sweep check_rekey < "$T/plan"
	[ -z "$bad" ] && [ "$runs" -ge 6 ] &&
		ok "rekey, each create/destroy/relabel taking effect but reported failed ($runs calls): the next run completes it" ||
		not_ok "rekey FAIL_AFTER ($runs runs):$bad"
}

# rekey (in the background, on its own copy of the token)
test_rekey() {
	R=$T/rekey.results
	: > "$R"
	( rekey_part ) > "$T/rekey.log" 2>&1 &
	RKPID=$!

	SNAP=snap CMD=$INSTALL
	calls "$N" "P11SHIM_FAIL_RV=CKR_DEVICE_REMOVED P11SHIM_FAIL_STICKY=1" > "$T/plan"
	sweep check_after < "$T/plan"
	[ -z "$bad" ] && ok "CKR_DEVICE_REMOVED (sticky) at each of $N calls: old/new/both, key untouched, converges" ||
		not_ok "CKR_DEVICE_REMOVED:$bad"
	# every call fails once more, non-sticky: CKR_DEVICE_MEMORY on odd calls,
	# CKR_SESSION_HANDLE_INVALID on even ones
	calls "$N" "" | awk '{print $1, ($1 % 2 ? "P11SHIM_FAIL_RV=CKR_DEVICE_MEMORY" : "P11SHIM_FAIL_RV=CKR_SESSION_HANDLE_INVALID")}' > "$T/plan"
	sweep check_after < "$T/plan"
	[ -z "$bad" ] && ok "CKR_DEVICE_MEMORY / CKR_SESSION_HANDLE_INVALID at each of $N calls: old/new/both, key untouched, converges" ||
		not_ok "CKR_DEVICE_MEMORY/CKR_SESSION_HANDLE_INVALID:$bad"
	effectful "$T/counts" > "$T/plan"
	sweep check_after < "$T/plan"
	[ -z "$bad" ] && [ "$runs" -ge 3 ] &&
		ok "each create/destroy/relabel taking effect but reported failed ($runs calls): old/new/both, converges" ||
		not_ok "FAIL_AFTER ($runs runs):$bad"

	# the next run says it finishes an interrupted install
	restore snap
	shim env P11SHIM_FAIL_FUNC=C_DestroyObject P11SHIM_FAIL_AT=1 P11SHIM_FAIL_RV=CKR_DEVICE_REMOVED \
		"$P11KM" $INSTALL >/dev/null 2>&1
	state > "$T/st"
	[ "$(grep -cE '^cert\|Certificate\|01\|' "$T/st")" = 2 ] && ok "a failed C_DestroyObject leaves old and new" ||
		not_ok "expected two certificates"
	check "the next run finishes it" "$P11KM" $INSTALL
	check_grep "and says so" "already on token .* next to 1 older one .*finishing it" "$T/err"

	# a C_CreateObject that made the leaf but reported failure: the leaf is
	# found and destroyed again, and the error says so; the old one stays
	restore snap
	shim env P11SHIM_FAIL_FUNC=C_CreateObject P11SHIM_FAIL_AT=2 P11SHIM_FAIL_AFTER=1 \
		P11SHIM_FAIL_RV=CKR_DEVICE_ERROR "$P11KM" $INSTALL >/dev/null 2>"$T/err"
	check_grep "C_CreateObject took effect, then failed: the error says it was destroyed again" \
		'C_CreateObject.*made the object all the same: destroyed again' "$T/err"
	state > "$T/st"
	[ "$(grep -cE '^cert\|Certificate\|01\|' "$T/st")" = 1 ] && grep -qE '^cert\|Certificate\|01\|web\|0a01$' "$T/st" &&
		ok "  ... it was: the token holds the old leaf alone (pkcs11-tool)" ||
		{ not_ok "expected the old leaf alone"; sed 's/^/#   /' "$T/st"; }

	wait $RKPID
	while IFS='|' read -r _k _m; do $_k "$_m"; done < "$R"
	grep -q . "$R" || not_ok "the rekey part reported nothing (see rekey.log)"
}

snapshot_files() { (cd "$T/srv" && ls -A && cat cert.pem chain.pem fullchain.pem) > "$1"; }

# file faults
test_file_faults() {
	restore snap
	mkdir "$T/srv"
	for f in cert.pem chain.pem fullchain.pem; do echo "old $f" > "$T/srv/$f"; done
	FILES="$INSTALL --out-dir $T/srv"
	# a symlink planted at an output path: refused before the token changes
	rm "$T/srv/chain.pem"; ln -s "$T/elsewhere" "$T/srv/chain.pem"; echo "old elsewhere" > "$T/elsewhere"
	check_fails "a symlink planted at an output path is refused" 1 "$P11KM" $FILES
	check_grep "the error names the symbolic link" "symbolic link" "$T/err"
	[ "$(cat "$T/elsewhere")" = "old elsewhere" ] && [ "$(cat "$T/srv/cert.pem")" = "old cert.pem" ] &&
		ok "the link target and the other files are untouched" || not_ok "files changed"
	unchanged snap && ok "the refusal came before any token change" || not_ok "token changed before the file check"
	rm "$T/srv/chain.pem"; echo "old chain.pem" > "$T/srv/chain.pem"

	# the token is up to date first, so that the injected faults hit the files
	"$P11KM" $INSTALL >/dev/null 2>&1
	rm -rf "$T/snap-files"; cp -a "$T/tokens" "$T/snap-files"
	snapshot_files "$T/files.orig"
	# (SoftHSM writes twice when logging in: writes 3 and 4 are the first two staged files)
	for inj in "rename:error=EIO" "rename:error=EIO:when=2" "rename:error=EIO:when=3" \
	           "write:error=ENOSPC:when=3" "write:error=ENOSPC:when=4" "fsync:error=EIO" "link:error=EMLINK"; do
		# LeakSanitizer cannot run under ptrace
		ASAN_OPTIONS=detect_leaks=0 strace -f -o /dev/null -e trace="${inj%%:*}" -e inject="$inj" \
			"$P11KM" $FILES >/dev/null 2>"$T/err"
		rc=$?
		restore snap-files
		snapshot_files "$T/files.now"
		# (the token was up to date: the error must say so and how to finish)
		if [ $rc -ne 0 ] && cmp -s "$T/files.now" "$T/files.orig" && grep -q "$T/srv" "$T/err" &&
			{ case $inj in rename*) grep -q "run the same command again" "$T/err";;
			  # the backups are taken before the token changes: nothing to finish
			  link*) ! grep -q "already holds" "$T/err";; *) :;; esac; }; then
			ok "injected $inj: install fails, every file keeps its old content, no temp files"
		else
			not_ok "injected $inj: rc=$rc"; diff "$T/files.orig" "$T/files.now" | head -5 | sed 's/^/#   /'
			sed 's/^/#   /' "$T/err" | head -3
		fi
	done
	check "with the faults gone the files are written" "$P11KM" $FILES
	[ "$(fp "$T/srv/cert.pem")" = "$(fp "$T/new.pem")" ] && ok "cert.pem is the new leaf" || not_ok "cert.pem"
	[ -z "$(find "$T/srv" -name '*.p11km-*')" ] && ok "no temporary files" || not_ok "temporary files left"
}

run_tests
