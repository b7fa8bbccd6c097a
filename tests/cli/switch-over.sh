#!/bin/sh
# Every instant of a switch-over is usable.  An nginx and an Apache binding
# (bind emit) serve key "web"; then 'cert install --bind' installs a rekey
# (new pair "web.pending", --destroy-old) and a plain renewal (same key, new
# certificate).  Through the shim each PKCS#11 call of the install fails in
# turn: sticky CKR_DEVICE_REMOVED, CKR_DEVICE_ERROR once, and every
# create/destroy/relabel taking effect before it reports CKR_DEVICE_ERROR;
# and the install is killed (SIGKILL) at 40 random moments.  After each,
# 'bind check' (the libp11 engine loading key and certificate in a fresh
# process, as the server does) must find a key that signs and the
# certificate that belongs to it, in both bindings: the old pair or the
# new one, never nothing, never a key with another key's certificate.
# After a kill, the next run completes the switch.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	TMPDIR=/dev/shm
	export TMPDIR
fi
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"
. "$top_srcdir/tests/lib/faults.sh"

restore() {
	rm -rf "$T/tokens" "$B"
	cp -a "$T/snap" "$T/tokens"
	cp -a "$T/bind.snap" "$B"
}
shim() { P11KM_MODULE=$P11SHIM P11SHIM_MODULE=$M "$@"; }
# served DIR: the serial of the certificate the binding's snippet names
served() {
	_f=$(sed -n 's/^ *\(ssl_certificate\|SSLCertificateFile\) "\(.*\)";\{0,1\}$/\2/p' \
		"$1/nginx-server.conf" "$1/apache-vhost.conf" 2>/dev/null | head -1)
	openssl x509 -in "$_f" -noout -serial 2>/dev/null | sed 's/.*=//' | tr 'A-F' 'a-f'
}
# loads TAG [BINDING...]: the bindings (default: both) load a key with its
# certificate, as the server would; the served certificate is the old or
# the new one (else bad += TAG)
loads() {
	_tag=$1
	shift
	for _b in ${*:-ng ap}; do
		if ! "$P11KM" bind check "$B/$_b" > "$T/chk" 2>&1 || ! grep -q '^ok:' "$T/chk"; then
			bad="$bad $_tag:$_b"
			{ echo "# $_tag:$_b"; sed 's/^/#   /' "$T/chk" | head -5; } >> "$T/bad.log"
			return
		fi
		case $(served "$B/$_b") in
		"$OLD"|"$NEW") ;;
		*) bad="$bad $1:$_b-serial"; return ;;
		esac
	done
}
# sweep: for each "i env..." line on stdin, fail call i of $CMD, then loads
sweep() {
	bad=""
	runs=0
	while read -r _i _env; do
		restore
		# shellcheck disable=SC2086
		shim env $_env P11SHIM_FAIL_AT=$_i "$P11KM" $CMD >/dev/null 2>&1
		runs=$((runs + 1))
		# every PKCS#11 call comes before both bindings switch, one after the
		# other with no call between: at a fault point both are old or both
		# new, so the sweep checks them in turn (the kills check both)
		loads "$_i:${_env%% *}" "$([ $((runs % 2)) = 0 ] && echo ng || echo ap)"
	done
}
# switch_over NAME OLD-SERIAL NEW-SERIAL REPLY OPTIONS...
switch_over() {
	_name=$1 OLD=$2 NEW=$3 _reply=$4
	shift 4
	CMD="cert install $_reply $TOK --pin-source file:$PIN --ca-file $CA/root.pem --bind $B/ng --bind $B/ap $*"
	restore
	# shellcheck disable=SC2086
	shim env P11SHIM_COUNT_FILE="$T/counts" "$P11KM" $CMD > "$T/clean" 2>&1
	check_eq "$_name: a clean run succeeds" "$?" 0
	N=$(awk '$1=="total"{print $2}' "$T/counts")
	N=$((N - $(awk '$1=="C_GetFunctionList"{print $2}' "$T/counts")))
	for _b in ng ap; do
		check_eq "$_name: after it the $_b binding serves the new certificate" "$(served "$B/$_b")" "$NEW"
	done
	bad=""
	loads clean
	check_eq "$_name: after it both bindings load key and certificate" "$bad" ""
	total=0 fine=0
	calls "$N" "P11SHIM_FAIL_RV=CKR_DEVICE_REMOVED P11SHIM_FAIL_STICKY=1" > "$T/plan"
	sweep < "$T/plan"
	check_eq "$_name: sticky CKR_DEVICE_REMOVED at each of $N calls: a server loads old or new pair" "$bad" ""
	total=$((total + runs)) fine=$((fine + runs - $(echo "$bad" | wc -w)))
	calls "$N" "P11SHIM_FAIL_RV=CKR_DEVICE_ERROR" > "$T/plan"
	sweep < "$T/plan"
	check_eq "$_name: CKR_DEVICE_ERROR once at each of $N calls: a server loads old or new pair" "$bad" ""
	total=$((total + runs)) fine=$((fine + runs - $(echo "$bad" | wc -w)))
	effectful "$T/counts" > "$T/plan"
	sweep < "$T/plan"
	[ "$runs" -ge 2 ] || bad="$bad too-few-effectful-calls($runs)"
	check_eq "$_name: each of $runs creates/destroys/relabels taking effect, then failing: old or new pair" "$bad" ""
	total=$((total + runs)) fine=$((fine + runs - $(echo "$bad" | wc -w)))
	echo "# $_name: fault points x modes where a server could load the binding: $fine/$total"

	# kill -9 at random moments of a run as long as a clean one
	restore
	_t0=$(date +%s%N)
	# shellcheck disable=SC2086
	"$P11KM" $CMD >/dev/null 2>&1
	_ms=$(( ($(date +%s%N) - _t0) / 1000000 + 1 ))
	bad="" killed=0 conv=""
	for _k in $(seq 1 40); do
		restore
		_at=$(( $(od -An -N2 -tu2 /dev/urandom) % _ms ))
		# shellcheck disable=SC2086
		"$P11KM" $CMD >/dev/null 2>&1 &
		_pid=$!
		sleep "$(awk -v ms="$_at" 'BEGIN { printf "%.3f", ms / 1000 }')"
		kill -9 "$_pid" 2>/dev/null
		wait "$_pid" 2>/dev/null
		[ $? -eq 137 ] && killed=$((killed + 1))
		loads "kill$_k@${_at}ms"
		# shellcheck disable=SC2086
		"$P11KM" $CMD >/dev/null 2>"$T/rerun" || conv="$conv kill$_k"
		for _b in ng ap; do
			[ "$(served "$B/$_b")" = "$NEW" ] || conv="$conv kill$_k:$_b"
		done
	done
	check_eq "$_name: killed (SIGKILL) at 40 random moments within ${_ms} ms ($killed before it ended): a server loads old or new pair" "$bad" ""
	check_eq "$_name: after each kill the next run completes the switch" "$conv" ""
	echo "# $_name: kill -9: a server could load the binding after $((40 - $(echo "$bad" | wc -w)))/40 kills ($killed hit a running install)"
}

setup() {
	need openssl pkcs11-tool
	[ -f "${P11SHIM:-}" ] || skip_all "the PKCS#11 shim is not built"
	[ -n "$(find /usr/lib -name pkcs11.so -path '*engines-3*' 2>/dev/null | head -1)" ] ||
		skip_all "the libp11 engine (libengine-pkcs11-openssl) is not installed"
	softhsm_setup
	new_token sw
	M=$SOFTHSM2_MODULE
	PIN=$T/pin-sw
	TOK="pkcs11:token=sw"
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	CA=$T/ca
	B=$T/bind
	mkdir -p "$B"

	token_keypair "$M" sw "$PIN" web 01 "$T/web.pub" || { echo "keygen failed"; exit 99; }
	issue "$CA" "$T/web.pub" "$T/old.pem" web.example.test 0x0a01
	issue "$CA" "$T/web.pub" "$T/renew.pem" web.example.test 0x0a02
	token_keypair "$M" sw "$PIN" web.pending 02 "$T/pending.pub" || { echo "keygen failed"; exit 99; }
	issue "$CA" "$T/pending.pub" "$T/rekey.pem" web.example.test 0x0b01
	# replies as CAs send them: the leaf and the intermediate
	# another key, with a certificate: its binding is not this key's
	token_keypair "$M" sw "$PIN" other 03 "$T/other.pub" || { echo "keygen failed"; exit 99; }
	issue "$CA" "$T/other.pub" "$T/other.pem" other.example.test 0x0c01
	for f in old renew rekey other; do cat "$CA/inter.pem" >> "$T/$f.pem"; done
	"$P11KM" cert install "$T/old.pem" "$TOK" --pin-source "file:$PIN" --ca-file "$CA/root.pem" \
		> "$T/first" 2>&1 || { cat "$T/first"; echo "first install failed"; exit 99; }
	KEY="$TOK;object=web;type=private"
	check "bind emit nginx" "$P11KM" bind emit nginx --key "$KEY" --listen 127.0.0.1:1 \
		--out-dir "$B/ng" --pin-file "$T/srv.pin" --pin-source "file:$PIN"
	check "bind emit apache" "$P11KM" bind emit apache --key "$KEY" --listen 127.0.0.1:1 \
		--out-dir "$B/ap" --pin-file "$T/srv.pin"
	check "bind check: the nginx binding loads" "$P11KM" bind check "$B/ng"
	check "bind check: the apache binding loads" "$P11KM" bind check "$B/ap"
	cp -a "$T/tokens" "$T/snap"
	cp -a "$B" "$T/bind.snap"
}

# a rekey with --destroy-old
test_rekey_destroy_old() {
	: > "$T/bad.log"
	switch_over "rekey --destroy-old" 0a01 0b01 "$T/rekey.pem" --destroy-old
	# the old pair is gone, the new one is labelled web; the bindings name it by id
	restore
	"$P11KM" cert install "$T/rekey.pem" "$TOK" --pin-source "file:$PIN" --ca-file "$CA/root.pem" \
		--bind "$B/ng" --bind "$B/ap" --destroy-old > "$T/out" 2>&1
	pkcs11-tool --module "$M" --token-label sw --login --pin "$(cat "$PIN")" -O > "$T/objs" 2>/dev/null
	check_nogrep "rekey --destroy-old: the old key pair is gone" 'ID: +01$' "$T/objs"
	check_grep "rekey: the bindings name the new key by id" 'id=%02;type=private' "$B/ng/nginx-server.conf"
	check_grep "rekey: the report says the binding switched" "binding '$B/ng': switched" "$T/out"
	check_eq "rekey: the previous generation's files are kept, none older" \
		"$(ls "$B/ng" | sed -n 's/.*-\([0-9a-f]\{16\}\)\.pem$/\1/p' | sort -u | wc -l)" 2
	"$P11KM" cert install "$T/rekey.pem" "$TOK" --pin-source "file:$PIN" --ca-file "$CA/root.pem" \
		--bind "$B/ng" >/dev/null 2>&1
	check_eq "  ... and once the replaced snippet no longer names it, it goes" \
		"$(ls "$B/ng" | sed -n 's/.*-\([0-9a-f]\{16\}\)\.pem$/\1/p' | sort -u | wc -l)" 1
}

# a plain renewal
test_renewal() {
	switch_over "plain renewal" 0a01 0a02 "$T/renew.pem"
}

# a binding of another key is refused before the token changes
test_other_key_binding() {
	restore
	cp -a "$T/tokens" "$T/snap2"
	check_fails "--bind with the binding of another key is refused" 2 "$P11KM" cert install \
		"$T/other.pem" "$TOK" --pin-source "file:$PIN" --ca-file "$CA/root.pem" --bind "$B/ng"
	check_grep "  ... saying so" "binding '$B/ng' serves another key" "$T/err"
	diff -rq -x token.object -x '*.lock' "$T/snap2" "$T/tokens" >/dev/null 2>&1 &&
		ok "  ... before the token changed" || not_ok "the token changed"
	check_eq "  ... and the binding is unchanged" "$(served "$B/ng")" 0a01

	[ -s "$T/bad.log" ] && { echo "# what bind check said where it failed:"; cat "$T/bad.log"; }
}

run_tests
