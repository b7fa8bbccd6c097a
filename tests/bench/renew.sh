#!/bin/bash
# tests/bench/renew.sh: 50 certificates on one SoftHSM2 token, renewed by
# 'p11km renew --all' with a local CA that answers in the same run (a
# certmonger CA helper that signs with 'openssl x509 -req': one run does
# request, submit and install), against the floor (tests/tools/floor-renew.c:
# only the PKCS#11 calls a renewal needs, the same helper as CA), the same
# with a file CA (two runs: the requests, then the replies), and 50 separate
# 'req renew' runs plus 50 'cert install' runs.  PKCS#11 calls counted by
# the test shim (tests/shim), wall time of the whole commands, CA included;
# each directly on SoftHSM2, with 1 ms of latency on every call, and
# through the p11-kit remote token (tests/lib/remote.sh) with 1 ms per call.
# Ratios to the floor are printed.  Not part of 'make check'.  Builds what
# it needs without sanitizers (in _build-bench/).
#
#   tests/bench/renew.sh [CERTS]          (default 50)
#   P11KM_BUILD=DIR  build directory to use (default: _build-bench)
#   BENCH_QUICK=1    only the helper CA and the floor, directly (no latency)
#   BENCH_RUNS=N     the helper-CA and floor rows: the fastest of N runs (default 1)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-50}
SOFTHSM2_MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
for t in pkcs11-tool softhsm2-util openssl; do
	command -v $t >/dev/null || { echo "renew.sh: $t is needed" >&2; exit 1; }
done
. "$top/tests/lib/remote.sh"

# --- build --------------------------------------------------------------------
B=${P11KM_BUILD:-$top/_build-bench}
if [ ! -f "$B/Makefile" ]; then
	mkdir -p "$B"
	(cd "$top" && { [ -x configure ] || autoreconf -fi >/dev/null 2>&1; })
	(cd "$B" && "$top/configure" --quiet >/dev/null)
fi
make -s -C "$B" -j2 p11km tests/p11shim.la tests/floor-renew >/dev/null
P11KM=$B/p11km
SHIM=$B/tests/.libs/p11shim.so
FLOOR=$B/tests/floor-renew

# --- a token with N key pairs and their certificates (cached) --------------------
W=$(mktemp -d /tmp/p11km-bench.XXXXXX)
trap 'remote_token_stop "$W" >/dev/null 2>&1 || :; rm -rf "$W"' EXIT
cache=/tmp/p11km-bench-renew-$n
mk_token() {
	rm -rf "$cache"
	mkdir -p "$cache/tokens" "$cache/certs"
	printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
		"$cache" > "$cache/softhsm2.conf"
	export SOFTHSM2_CONF=$cache/softhsm2.conf
	softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 12345678 >/dev/null
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$cache/ca.key" \
		-out "$cache/ca.pem" -days 30 -subj "/CN=bench CA" -addext basicConstraints=critical,CA:TRUE \
		-addext keyUsage=critical,keyCertSign 2>/dev/null
	printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$cache/ext.cnf"
	echo "renew.sh: making a token with $n key pairs and certificates (cached in $cache)..." >&2
	for i in $(seq "$n"); do
		id=$(printf '%04x' "$i")
		p() { pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label bench --login --pin 1234 "$@" >/dev/null 2>&1; }
		p --keypairgen --key-type EC:prime256v1 --label "c$i" --id "$id"
		pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label bench --read-object --type pubkey \
			--label "c$i" -o "$cache/pub.der" >/dev/null 2>&1
		openssl pkey -pubin -inform DER -in "$cache/pub.der" -out "$cache/pub.pem"
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null \
			-subj "/CN=c$i.bench" -out "$cache/t.csr" 2>/dev/null
		openssl x509 -req -in "$cache/t.csr" -force_pubkey "$cache/pub.pem" -CA "$cache/ca.pem" \
			-CAkey "$cache/ca.key" -set_serial "$i" -days 2 -extfile "$cache/ext.cnf" \
			-outform DER -out "$cache/certs/c$i.der" 2>/dev/null
		p --write-object "$cache/certs/c$i.der" --type cert --label "c$i" --id "$id"
	done
	touch "$cache/done"
}
[ -f "$cache/done" ] || mk_token
export SOFTHSM2_CONF=$W/softhsm2.conf
printf '1234' > "$W/pin"
chmod 600 "$W/pin"
printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$W/ext.cnf"
# the CA that answers at once: certmonger's helper protocol (CERTMONGER_CSR in,
# the certificate on stdout), a random serial from 'openssl x509 -req'
cat > "$W/helper" <<EOF
#!/bin/sh
[ "\$CERTMONGER_OPERATION" = SUBMIT ] || exit 6
printf '%s\n' "\$CERTMONGER_CSR" | exec openssl x509 -req -CA "$cache/ca.pem" -CAkey "$cache/ca.key" \\
	-days 90 -extfile "$W/ext.cnf" 2>/dev/null
EOF
chmod 755 "$W/helper"
export P11KM_CONFIG_DIR=$W/ca.d
"$P11KM" ca add bench --kind helper --command "$W/helper" >/dev/null

# a fresh copy of the token for each measurement
fresh() {
	remote_token_stop "$W" >/dev/null 2>&1 || :
	rm -rf "$W/tokens" "$W/state" "$W/ca-in" "$W/req"
	cp -a "$cache/tokens" "$W/tokens"
	printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
		"$W" > "$W/softhsm2.conf"
	mkdir -p "$W/ca-in" "$W/req"
	if [ "$via" = remote ]; then
		remote_token_start "$W" bench >/dev/null
		mod=$REMOTE_MODULE
	else
		mod=$SOFTHSM2_MODULE
	fi
}
sign() { # CSR OUT
	openssl x509 -req -in "$1" -CA "$cache/ca.pem" -CAkey "$cache/ca.key" -days 90 \
		-extfile "$W/ext.cnf" -out "$2" 2>/dev/null
}
# counted CMD ARGS: one run through the shim; adds to calls and ms; the
# per-function counts of the last run stay in $W/counts
counted() {
	local t0 t1 c
	rm -f "$W/counts"
	t0=$(date +%s%N)
	P11SHIM_MODULE=$mod P11SHIM_COUNT_FILE=$W/counts P11SHIM_LATENCY_US=$lat "$@" \
		>"$W/last.log" 2>&1 || { echo "renew.sh: $* failed:" >&2; sed 's/^/    /' "$W/last.log" >&2; exit 1; }
	t1=$(date +%s%N)
	c=$(awk '$1 == "total" { print $2 }' "$W/counts")
	calls=$((calls + c)) ms=$((ms + (t1 - t0) / 1000000))
}
p11km() { counted "$P11KM" --module "$SHIM" --pin-source "file:$W/pin" "$@"; }
track_all() { # CA
	for i in $(seq "$n"); do
		P11SHIM_MODULE=$mod P11KM_MODULE=$SHIM "$P11KM" --pin-source "file:$W/pin" track add \
			"pkcs11:token=bench;object=c$i;type=cert" --state-dir "$W/state" --ca "$1" \
			--ca-file "$cache/ca.pem" >/dev/null
	done
}
renewed_all() {
	[ "$(grep -c ': renewed' "$W/last.log")" = "$n" ] ||
		{ echo "renew.sh: renew --all did not renew all $n:" >&2; cat "$W/last.log" >&2; exit 1; }
}
# the token holds the n new certificates under the old labels, the old ones retired
judged() {
	local got
	got=$(pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label bench --list-objects --type cert 2>/dev/null |
		grep -c 'label: *c[0-9]*\.retired-')
	[ "$got" = "$n" ] || { echo "renew.sh: $1: $got retired certificates on the token, not $n" >&2; exit 1; }
}
labels=$(for i in $(seq "$n"); do printf 'c%s ' "$i"; done)

declare -A C T
modes="direct:0 direct:1000 remote:1000"
remote_available || { echo "renew.sh: no p11-kit server / p11-kit-client.so: no remote column" >&2; modes="direct:0 direct:1000"; }
[ -n "${BENCH_QUICK:-}" ] && modes="direct:0"
# best KEY MODE: keep the fastest run's time (the calls are the same every run)
best() {
	C[$1,$2]=$calls
	if [ -z "${T[$1,$2]:-}" ] || [ "$ms" -lt "${T[$1,$2]}" ]; then T[$1,$2]=$ms; fi
}
for m in $modes; do
	via=${m%%:*} lat=${m#*:}
	for _ in $(seq "${BENCH_RUNS:-1}"); do
		# renew --all with the helper CA: request, submit, install in one run
		fresh
		track_all bench
		calls=0 ms=0
		p11km renew --all --state-dir "$W/state"
		renewed_all
		[ "$via" = remote ] || judged "renew --all"
		best helper "$m"
		[ "$m" = direct:0 ] && cp "$W/counts" "$W/counts.renew"
		# the floor, same helper
		fresh
		calls=0 ms=0
		# shellcheck disable=SC2086
		counted "$FLOOR" "$SHIM" bench "$W/pin" "$W/helper" $labels
		[ "$via" = remote ] || judged floor
		best floor "$m"
		[ "$m" = direct:0 ] && cp "$W/counts" "$W/counts.floor"
	done
	[ -n "${BENCH_QUICK:-}" ] && continue
	# renew --all with a file CA: one run for the requests, one for the replies
	fresh
	track_all "file:$W/ca-in"
	calls=0 ms=0
	p11km renew --all --state-dir "$W/state"
	for i in $(seq "$n"); do sign "$W/ca-in/c$i.csr" "$W/ca-in/c$i.crt"; done
	p11km renew --all --state-dir "$W/state"
	renewed_all
	C[file,$m]=$calls T[file,$m]=$ms
	# N separate req renew runs, then N cert install runs (the CA not timed)
	fresh
	calls=0 ms=0
	for i in $(seq "$n"); do
		p11km req renew "pkcs11:token=bench;object=c$i;type=cert" -o "$W/req/c$i.csr"
	done
	C[req,$m]=$calls T[req,$m]=$ms
	for i in $(seq "$n"); do sign "$W/req/c$i.csr" "$W/req/c$i.crt"; done
	calls=0 ms=0
	for i in $(seq "$n"); do
		p11km cert install "$W/req/c$i.crt" "pkcs11:token=bench" --ca-file "$cache/ca.pem"
	done
	C[inst,$m]=$calls T[inst,$m]=$ms
	C[sep,$m]=$((C[req,$m] + C[inst,$m])) T[sep,$m]=$((T[req,$m] + T[inst,$m]))
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 1; printf "%.2fx", a / b }'; }
echo "$n certificates (EC P-256) on one SoftHSM2 token; PKCS#11 calls counted by the shim;"
echo "wall time of the whole commands (the CA's signing included for the helper rows)."
echo
printf '%-40s | %6s %7s %6s | %7s %6s | %6s %7s %6s\n' "" "calls" "ms" "ratio" "+1ms/c" "ratio" \
	"remote" "+1ms/c" "ratio"
rows="helper floor"
[ -n "${BENCH_QUICK:-}" ] || rows="helper floor file req inst sep"
for k in $rows; do
	case $k in
	helper) name="p11km renew --all (helper CA, 1 run)" ;;
	floor) name="floor (tests/tools/floor-renew.c)" ;;
	file) name="p11km renew --all (file CA, 2 runs)" ;;
	req) name="$n x p11km req renew" ;;
	inst) name="$n x p11km cert install" ;;
	sep) name="$n x (req renew + cert install)" ;;
	esac
	line=$(printf '%-40s | %6s %7s %6s' "$name" "${C[$k,direct:0]}" "${T[$k,direct:0]}" \
		"$(ratio "${T[$k,direct:0]}" "${T[floor,direct:0]}")")
	if [ -z "${BENCH_QUICK:-}" ]; then
		line="$line $(printf '| %7s %6s | %6s %7s %6s' "${T[$k,direct:1000]}" \
			"$(ratio "${T[$k,direct:1000]}" "${T[floor,direct:1000]}")" "${C[$k,remote:1000]}" \
			"${T[$k,remote:1000]}" "$(ratio "${T[$k,remote:1000]}" "${T[floor,remote:1000]}")")"
	fi
	echo "$line"
done
echo
echo "renew --all (helper CA) vs the floor: calls $(ratio "${C[helper,direct:0]}" "${C[floor,direct:0]}")" \
	"(target <= 1.30x), time $(ratio "${T[helper,direct:0]}" "${T[floor,direct:0]}") (target <= 1.50x)"
if [ -z "${BENCH_QUICK:-}" ]; then
	echo "  with 1 ms per call: $(ratio "${T[helper,direct:1000]}" "${T[floor,direct:1000]}");" \
		"through the remote token, 1 ms per call: calls" \
		"$(ratio "${C[helper,remote:1000]}" "${C[floor,remote:1000]}"), time" \
		"$(ratio "${T[helper,remote:1000]}" "${T[floor,remote:1000]}")"
fi
echo
echo "calls per function, directly (renew --all, helper CA | floor):"
join -a1 -a2 -e0 -o 0,1.2,2.2 <(sort "$W/counts.renew") <(sort "$W/counts.floor") |
	awk '{ printf "    %-22s %6s %6s\n", $1, $2, $3 }'
