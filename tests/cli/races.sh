#!/bin/sh
# Parallel runs lose nothing: two p11km runs at once on one store or one
# token, in a loop.  Each race must end with the state of one run or of
# both (never a lost or a duplicated root, hash link, leaf or key pair),
# and each run's exit status and report must say what it really did.
# Judges: openssl (bundle contents, subject hashes), pkcs11-tool (objects).
# RACE_LOOPS sets the number of rounds per race (default 30).
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	TMPDIR=/dev/shm
	export TMPDIR
fi
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

# root NAME: a self-signed CA certificate $T/NAME.pem with CN "race NAME"
root() {
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$T/$1.key" -out "$T/$1.pem" -days 30 -subj "/CN=race $1" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
# both CMD...: run CMD twice at once (the arguments of run 2 after "--"),
# outputs in $T/o1 $T/e1 $T/o2 $T/e2, exit statuses in s1 s2
both() {
	_a=""
	while [ "$1" != "--" ]; do _a="$_a '$1'"; shift; done
	shift
	eval "$_a" >"$T/o1" 2>"$T/e1" &
	_p1=$!
	"$@" >"$T/o2" 2>"$T/e2" &
	_p2=$!
	if wait $_p1; then s1=0; else s1=$?; fi
	if wait $_p2; then s2=0; else s2=$?; fi
}
# show_round WHAT: the outputs of the last round (once per race), for the log
show_round() {
	[ -z "${_shown:-}" ] || return 0
	_shown=1
	echo "# $1, round $i: exit $s1 and $s2"
	for _f in o1 e1 o2 e2; do sed "s/^/#   $_f: /" "$T/$_f" | head -8; done
}
# race_figures NAME LOST DUP BAD: the figures of one race, and its checks
race_figures() {
	echo "# race loops: $1: $N rounds, lost $2, duplicated $3, wrong reports $4"
	_shown=
	check_eq "$1: nothing lost in $N rounds" "$2" 0
	check_eq "$1: nothing duplicated in $N rounds" "$3" 0
	check_eq "$1: every run's exit status and report say what it did" "$4" 0
}
# subjects FILE: the subject of every certificate of a PEM bundle
subjects() {
	openssl crl2pkcs7 -nocrl -certfile "$1" 2>/dev/null | openssl pkcs7 -print_certs -noout 2>/dev/null |
		sed -n 's/^subject=//p'
}

setup() {
	need openssl pkcs11-tool flock
	softhsm_setup
	N=${RACE_LOOPS:-30}
	M=$SOFTHSM2_MODULE
	# the token locks of these runs, in a directory of this test (the variable,
	# not --lock-dir: a p11km without locks must fail here, not on the option)
	P11KM_LOCK_DIR=$T/locks
	export P11KM_LOCK_DIR
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	CA=$T/ca

	root a && root b || { echo "cannot make roots"; exit 99; }
}

# two roots into one pem-bundle at once: both are kept
test_two_roots_bundle() {
	lost=0 dup=0 bad=0
	i=0
	while [ $i -lt $N ]; do
		i=$((i + 1))
		B=$T/bundle$i.pem
		both "$P11KM" roots install "$T/a.pem" --to "pem-bundle:$B" -- \
			"$P11KM" roots install "$T/b.pem" --to "pem-bundle:$B"
		subjects "$B" > "$T/subj"
		na=$(grep -c 'CN *= *race a$' "$T/subj"); nb=$(grep -c 'CN *= *race b$' "$T/subj")
		[ "$na" -ge 1 ] && [ "$nb" -ge 1 ] || { lost=$((lost + 1)); show_round lost; }
		[ "$na" -le 1 ] && [ "$nb" -le 1 ] || { dup=$((dup + 1)); show_round duplicated; }
		[ $s1 = 0 ] && [ $s2 = 0 ] && grep -q ': 1 added, 0 already present$' "$T/o1" &&
			grep -q ': 1 added, 0 already present$' "$T/o2" || { bad=$((bad + 1)); show_round "wrong report"; }
	done
	race_figures "pem-bundle, two roots" $lost $dup $bad
}

# one root into one pem-bundle twice at once: one copy, one run added it
test_one_root_bundle_twice() {
	lost=0 dup=0 bad=0
	i=0
	while [ $i -lt $N ]; do
		i=$((i + 1))
		B=$T/same$i.pem
		both "$P11KM" roots install "$T/a.pem" --to "pem-bundle:$B" -- \
			"$P11KM" roots install "$T/a.pem" --to "pem-bundle:$B"
		na=$(subjects "$B" | grep -c 'CN *= *race a$')
		[ "$na" -ge 1 ] || { lost=$((lost + 1)); show_round lost; }
		[ "$na" -le 1 ] || { dup=$((dup + 1)); show_round duplicated; }
		added=$(cat "$T/o1" "$T/o2" | grep -c ': 1 added, 0 already present$')
		present=$(cat "$T/o1" "$T/o2" | grep -c ': 0 added, 1 already present$')
		[ $s1 = 0 ] && [ $s2 = 0 ] && [ "$added" = 1 ] && [ "$present" = 1 ] || { bad=$((bad + 1)); show_round "wrong report"; }
	done
	race_figures "pem-bundle, one root twice" $lost $dup $bad
}

# linked DIR HASH FP: DIR/HASH.0 is a link to a file holding the certificate FP
linked() { [ -L "$1/$2.0" ] && [ "$(fp "$1/$2.0" 2>/dev/null)" = "$3" ]; }

# two roots into one openssl-dir at once: both files and hash links
test_two_roots_dir() {
	ha=$(openssl x509 -hash -noout -in "$T/a.pem"); hb=$(openssl x509 -hash -noout -in "$T/b.pem")
	fpa=$(fp "$T/a.pem"); fpb=$(fp "$T/b.pem")
	lost=0 dup=0 bad=0
	i=0
	while [ $i -lt $N ]; do
		i=$((i + 1))
		D=$T/dir$i
		both "$P11KM" roots install "$T/a.pem" --to "openssl-dir:$D" -- \
			"$P11KM" roots install "$T/b.pem" --to "openssl-dir:$D"
		linked "$D" "$ha" "$fpa" && linked "$D" "$hb" "$fpb" || { lost=$((lost + 1)); show_round lost; }
		[ "$(ls "$D" | grep -c '\.pem$')" = 2 ] && [ ! -e "$D/$ha.1" ] && [ ! -e "$D/$hb.1" ] ||
			{ dup=$((dup + 1)); show_round duplicated; }
		[ $s1 = 0 ] && [ $s2 = 0 ] && grep -q ': 1 added, 0 already present$' "$T/o1" &&
			grep -q ': 1 added, 0 already present$' "$T/o2" || { bad=$((bad + 1)); show_round "wrong report"; }
	done
	race_figures "openssl-dir, two roots" $lost $dup $bad

	# a run that finds the store locked says so and waits
	D=$T/dir1
	hold_lock "$D" || exit 99
	check_waits "an install into a locked openssl-dir waits for the lock" "waiting for another" \
		"$P11KM" roots install "$T/a.pem" "$CA/root.pem" --to "openssl-dir:$D"
	check_grep "... and says what it waits for" "waiting for another p11km run writing in '$D'" "$T/err"
	check_grep "... then adds what is missing" ": 1 added, 1 already present$" "$T/out"
}

# count_label TOKEN LABEL [PINFILE]: objects labelled LABEL (pkcs11-tool -O)
count_label() {
	pkcs11-tool --module "$M" --token-label "$1" ${3:+--login --pin "$(cat "$3")"} -O 2>/dev/null |
		grep -c "^  label: *$2\$"
}

# one root into one token twice at once: one object, one run added it
test_one_root_token_twice() {
	new_token rt
	SOPIN=$T/sopin-rt
	lost=0 dup=0 bad=0
	i=0
	while [ $i -lt $N ]; do
		i=$((i + 1))
		root "t$i" || { echo "cannot make a root"; exit 99; }
		both "$P11KM" roots install "$T/t$i.pem" --to "token:pkcs11:token=rt" --so-pin-source "file:$SOPIN" -- \
			"$P11KM" roots install "$T/t$i.pem" --to "token:pkcs11:token=rt" --so-pin-source "file:$SOPIN"
		n=$(count_label rt "race t$i")
		[ "$n" -ge 1 ] || { lost=$((lost + 1)); show_round lost; }
		[ "$n" -le 1 ] || { dup=$((dup + 1)); show_round duplicated; }
		added=$(cat "$T/o1" "$T/o2" | grep -c ': 1 added, 0 already present$')
		present=$(cat "$T/o1" "$T/o2" | grep -c ': 0 added, 1 already present$')
		[ $s1 = 0 ] && [ $s2 = 0 ] && [ "$added" = 1 ] && [ "$present" = 1 ] || { bad=$((bad + 1)); show_round "wrong report"; }
	done
	race_figures "token, one root twice" $lost $dup $bad

	# SoftHSM2 reads its token directory at C_Initialize and leaves out a token
	# whose files another run rewrites at that moment (pkcs11-tool -L misses it
	# about once in 100 listings during the race above): a URI that names a
	# token and matches none initialises the module once more and looks again.
	# p11hostile's hide-first-init shows no slot until the second C_Initialize.
	if [ -f "${P11HOSTILE:-}" ]; then
		check "a token the module left out at its first C_Initialize is found on the second" \
			env P11HOSTILE_MODULE="$M" P11HOSTILE_MODE=hide-first-init \
			"$P11KM" --module "$P11HOSTILE" object list "pkcs11:token=rt"
		check_grep "... and listed" "token=rt" "$T/out"
		check_fails "a token that is really not there: exit 4, after one more look" 4 \
			env P11HOSTILE_MODULE="$M" P11HOSTILE_MODE=hide-first-init \
			"$P11KM" --module "$P11HOSTILE" object list "pkcs11:token=no-such"
		check_one_line_error "... in one line" "no token matches"
	else
		not_ok "p11hostile.so not built (P11HOSTILE)"
	fi
}

# two leaves for one key at once: one leaf labelled like the key
test_two_leaves() {
	new_token ci
	PIN=$T/pin-ci
	TOK="pkcs11:token=ci"
	token_keypair "$M" ci "$PIN" web 77 "$T/web.pub" || { echo "keygen failed"; exit 99; }
	issue "$CA" "$T/web.pub" "$T/leaf0.pem" web.example.test 0x3000
	cat "$T/leaf0.pem" "$CA/inter.pem" > "$T/reply0.pem"
	check "install the first leaf" "$P11KM" cert install "$T/reply0.pem" "$TOK" --pin-source "file:$PIN" \
		--ca-file "$CA/root.pem"
	lost=0 dup=0 bad=0
	i=0
	while [ $i -lt $N ]; do
		i=$((i + 1))
		sa=$(printf '%04x' $((0x3000 + 2 * i))); sb=$(printf '%04x' $((0x3001 + 2 * i)))
		issue "$CA" "$T/web.pub" "$T/la.pem" web.example.test "0x$sa"
		issue "$CA" "$T/web.pub" "$T/lb.pem" web.example.test "0x$sb"
		both "$P11KM" cert install "$T/la.pem" "$TOK" --pin-source "file:$PIN" --ca-file "$CA/root.pem" -- \
			"$P11KM" cert install "$T/lb.pem" "$TOK" --pin-source "file:$PIN" --ca-file "$CA/root.pem"
		token_certs "$M" ci > "$T/certs"
		# one leaf labelled like the key: one of the two (the same key: the
		# later install replaces the earlier one)
		nweb=$(grep -c '^77|web|' "$T/certs")
		cur=$(sed -n 's/^77|web|//p' "$T/certs" | head -1)
		[ "$nweb" -ge 1 ] && { [ "$cur" = "$sa" ] || [ "$cur" = "$sb" ]; } ||
			{ lost=$((lost + 1)); [ -n "${_shown:-}" ] || sed "s/^/#   certs: /" "$T/certs"; show_round lost; }
		[ "$nweb" -le 1 ] || { dup=$((dup + 1)); show_round duplicated; }
		# each created its leaf and replaced the one before (the earlier run's)
		[ $s1 = 0 ] && [ $s2 = 0 ] && [ "$(cat "$T/o1" "$T/o2" |
			grep -c -e "^written: certificate 'web': created" -e "^replaced: certificate 'web'")" = 4 ] ||
			{ bad=$((bad + 1)); show_round "wrong report"; }
	done
	race_figures "cert install, two leaves for one key" $lost $dup $bad
	echo "# certificates on the token after the race:"; sed 's/^/#   /' "$T/certs" | tail -4

	# a run that finds the token locked says so, waits, then reads it again
	# (the lock file of token ci: its serial from a report)
	serial=$(sed -n 's/.*;serial=\([0-9a-zA-Z]*\);token=ci;.*/\1/p' "$T/o1" | head -1)
	L=$(ls "$P11KM_LOCK_DIR" | grep "^token-$serial-" | head -1)
	check_eq "the lock directory is made 0700" "$(stat -c %a "$P11KM_LOCK_DIR")" 700
	check_grep "a token's lock is a file token-SERIAL-HASH.lock" '^token-[0-9a-zA-Z]*-[0-9a-f]{16}\.lock$' \
		"$(ls "$P11KM_LOCK_DIR" > "$T/lockfiles"; echo "$T/lockfiles")"
	issue "$CA" "$T/web.pub" "$T/lw.pem" web.example.test 0x4000
	hold_lock "$P11KM_LOCK_DIR/${L:-none}" || exit 99
	check_waits "a cert install on a locked token waits" "waiting for another" "$P11KM" cert install "$T/lw.pem" "$TOK" \
		--pin-source "file:$PIN" --ca-file "$CA/root.pem"
	check_grep "... and says so" "waiting for another p11km on token 'ci'\.\.\." "$T/err"
	check_fails "an unusable --lock-dir is an error before the token changes" 1 \
		"$P11KM" --lock-dir /proc/no-such cert install "$T/lw.pem" "$TOK" --pin-source "file:$PIN"
	check_one_line_error "... in one line" "lock directory"

	# SoftHSM2 2.6.1 writes a file out after it has unlocked it: a run that
	# read the token while another one wrote it may see the token as broken
	# until its next C_Initialize (C_Login: CKR_GENERAL_ERROR; the race above
	# hit it about once in 300 rounds).  A run that waited for the token's
	# lock initialises the module again before it logs in.  p11hostile's
	# stale-first-init fails every C_Login until the second C_Initialize.
	if [ -f "${P11HOSTILE:-}" ]; then
		issue "$CA" "$T/web.pub" "$T/ls.pem" web.example.test 0x4001
		issue "$CA" "$T/web.pub" "$T/lt.pem" web.example.test 0x4002
		ls "$P11KM_LOCK_DIR" > "$T/locks-before"
		check "an install through p11hostile (a lock file of its own)" env P11HOSTILE_MODULE="$M" \
			"$P11KM" --module "$P11HOSTILE" cert install "$T/ls.pem" "$TOK" --pin-source "file:$PIN" \
			--ca-file "$CA/root.pem"
		HL=$(ls "$P11KM_LOCK_DIR" | grep -vxF -f "$T/locks-before" | head -1)
		hold_lock "$P11KM_LOCK_DIR/${HL:-none}" || exit 99
		check_waits "a run that waited for the token initialises its module again before it logs in" \
			"waiting for another" env P11HOSTILE_MODULE="$M" P11HOSTILE_MODE=stale-first-init \
			"$P11KM" --module "$P11HOSTILE" cert install "$T/lt.pem" "$TOK" --pin-source "file:$PIN" \
			--ca-file "$CA/root.pem"
		check_grep "... and replaces the leaf" "^replaced: certificate 'web'" "$T/out"
		token_certs "$M" ci > "$T/certs"
		check_grep "... the token's leaf is the new one (pkcs11-tool)" '^77\|web\|4002$' "$T/certs"
	else
		not_ok "p11hostile.so not built (P11HOSTILE)"
	fi
}

# two rekeys of one key at once: one pending pair, one run refused
test_two_rekeys() {
	lost=0 dup=0 bad=0
	i=0
	while [ $i -lt $N ]; do
		i=$((i + 1))
		both "$P11KM" --pin-source "file:$PIN" req renew "$TOK;object=web;type=cert" --rekey -o "$T/k1.csr" -- \
			"$P11KM" --pin-source "file:$PIN" req renew "$TOK;object=web;type=cert" --rekey -o "$T/k2.csr"
		n=$(pkcs11-tool --module "$M" --token-label ci --login --pin "$(cat "$PIN")" -O --type privkey 2>/dev/null |
			grep -c '^  label: *web.pending$')
		[ "$n" -ge 1 ] || { lost=$((lost + 1)); show_round lost; }
		[ "$n" -le 1 ] || { dup=$((dup + 1)); show_round duplicated; }
		# one run made the pair and wrote its request; the other refused (exit 1)
		if [ "$s1" = 0 ] && [ "$s2" = 1 ]; then okf=$T/k1.csr; errf=$T/e2
		elif [ "$s1" = 1 ] && [ "$s2" = 0 ]; then okf=$T/k2.csr; errf=$T/e1
		else okf=; errf=; fi
		if [ -z "$okf" ] || ! openssl req -in "$okf" -noout -verify 2>/dev/null ||
			! grep -q 'pending' "$errf"; then
			bad=$((bad + 1))
			show_round "wrong report"
		fi
		rm -f "$T/k1.csr" "$T/k2.csr"
		for ty in privkey pubkey; do
			pkcs11-tool --module "$M" --token-label ci --login --pin "$(cat "$PIN")" \
				--delete-object --type $ty --label web.pending >/dev/null 2>&1
		done
	done
	race_figures "req renew --rekey, twice at once" $lost $dup $bad
}

run_tests
