#!/bin/bash
# tests/bench/csr.sh: PKCS#11 calls and wall time for one certificate request
# on a SoftHSM2 token that holds 200 other key pairs: p11km, openssl with the
# libp11 engine, GnuTLS certtool, on the same key, in the same run; then the
# same with 1 ms of latency added to every PKCS#11 call (a network HSM).
# Calls are counted by the test shim (tests/shim) placed in front of SoftHSM.
# Not part of 'make check'.  Builds what it needs (without sanitizers).
#
#   tests/bench/csr.sh [OTHER-KEYS]          (default 200)
#   P11KM_BUILD=DIR  build directory to use (default: _build, via contrib/build.sh)
#   BENCH_RUNS=N     runs per measurement; the fastest is shown (default 3)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
others=${1:-200}
runs=${BENCH_RUNS:-3}
SOFTHSM2_MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
ENGINE=${P11_ENGINE:-$(ls /usr/lib/*/engines-3/pkcs11.so 2>/dev/null | head -1)}
for t in pkcs11-tool certtool openssl; do
	command -v $t >/dev/null || { echo "csr.sh: $t is needed" >&2; exit 1; }
done
[ -f "$SOFTHSM2_MODULE" ] || { echo "csr.sh: no SoftHSM2 module at $SOFTHSM2_MODULE" >&2; exit 1; }
[ -n "$ENGINE" ] || { echo "csr.sh: the libp11 engine (libengine-pkcs11-openssl) is needed" >&2; exit 1; }

# --- build --------------------------------------------------------------------
if [ -n "${P11KM_BUILD:-}" ]; then
	B=$P11KM_BUILD
	if [ ! -f "$B/Makefile" ]; then
		mkdir -p "$B"
		(cd "$B" && "$top/configure" --quiet >/dev/null)
	fi
	make -s -C "$B" -j2 p11km >/dev/null
else
	"$top/contrib/build.sh"
	B=$top/_build
fi
make -s -C "$B" tests/p11shim.la >/dev/null
P11KM=$B/p11km
SHIM=$B/tests/.libs/p11shim.so

# --- the token: cached between runs --------------------------------------------
W=$(mktemp -d /tmp/p11km-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
cache=/tmp/p11km-bench-token-$others
if [ ! -f "$cache/done" ]; then
	rm -rf "$cache"
	mkdir -p "$cache/tokens"
	printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
		"$cache" > "$cache/softhsm2.conf"
	export SOFTHSM2_CONF=$cache/softhsm2.conf
	softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 12345678 >/dev/null
	echo "csr.sh: making a token with $others other key pairs (cached in $cache)..." >&2
	for i in $(seq "$others"); do
		pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label bench --login --pin 1234 \
			--keypairgen --key-type EC:prime256v1 --label "other$i" --id "$(printf '%04x' "$i")" >/dev/null 2>&1
	done
	pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label bench --login --pin 1234 \
		--keypairgen --key-type EC:prime256v1 --label bench --id b0b0 >/dev/null 2>&1
	touch "$cache/done"
fi
export SOFTHSM2_CONF=$cache/softhsm2.conf
nobj=$(pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label bench --login --pin 1234 -O 2>/dev/null | grep -c 'Object;')

printf '1234' > "$W/pin"
chmod 600 "$W/pin"
KEY='pkcs11:token=bench;object=bench;type=private'
cat > "$W/openssl.cnf" <<EOC
openssl_conf = oc
[oc]
engines = eng
[eng]
pkcs11 = p11
[p11]
engine_id = pkcs11
dynamic_path = $ENGINE
MODULE_PATH = $SHIM
[req]
distinguished_name = dn
prompt = no
[dn]
CN = bench.example
EOC
printf 'cn = "bench.example"\n' > "$W/certtool.tmpl"

run_p11km() {
	"$P11KM" --module "$SHIM" --pin-source "file:$W/pin" req new "$KEY" \
		--subject CN=bench.example -o "$W/p11km.csr"
}
run_openssl() {
	OPENSSL_CONF=$W/openssl.cnf openssl req -new -engine pkcs11 -keyform engine \
		-key "$KEY;pin-value=1234" -out "$W/openssl.csr"
}
run_certtool() {
	GNUTLS_PIN=1234 certtool --generate-request --provider "$SHIM" --load-privkey "$KEY" \
		--template "$W/certtool.tmpl" --outfile "$W/certtool.csr"
}

# measure NAME LATENCY_US: sets calls and ms (fastest of $runs runs).
measure() {
	local best='' i t0 t1
	for i in $(seq "$runs"); do
		rm -f "$W/counts" "$W/$1.csr"
		t0=$(date +%s%N)
		if ! P11SHIM_MODULE=$SOFTHSM2_MODULE P11SHIM_COUNT_FILE=$W/counts P11SHIM_LATENCY_US=$2 \
			"run_$1" >"$W/$1.log" 2>&1; then
			echo "csr.sh: $1 failed:" >&2
			sed 's/^/    /' "$W/$1.log" >&2
			exit 1
		fi
		t1=$(date +%s%N)
		t=$(((t1 - t0) / 1000000))
		[ -z "$best" ] || [ "$t" -lt "$best" ] && best=$t
	done
	openssl req -in "$W/$1.csr" -verify -noout >/dev/null 2>&1 ||
		{ echo "csr.sh: the request from $1 does not verify" >&2; exit 1; }
	calls=$(awk '$1 == "total" { print $2 }' "$W/counts")
	ms=$best
}

declare -A C T
for lat in 0 1000; do
	for tool in p11km certtool openssl; do
		measure $tool $lat
		C[$tool,$lat]=$calls
		T[$tool,$lat]=$ms
	done
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 1; printf "%.1fx", a / b }'; }
echo "One CSR on an EC P-256 key, SoftHSM2 token with $others other key pairs ($nobj objects);"
echo "PKCS#11 calls counted by the shim; wall time: fastest of $runs runs."
echo
printf '%-40s %7s %9s %8s | %9s %8s\n' "" "calls" "time" "vs p11km" "+1ms/call" "vs p11km"
for tool in p11km certtool openssl; do
	case $tool in
	p11km) name='p11km req new' ;;
	certtool) name='certtool --generate-request (GnuTLS)' ;;
	openssl) name='openssl req -engine pkcs11 (libp11)' ;;
	esac
	printf '%-40s %7s %7sms %8s | %7sms %8s\n' "$name" "${C[$tool,0]}" "${T[$tool,0]}" \
		"$(ratio "${T[$tool,0]}" "${T[p11km,0]}")" "${T[$tool,1000]}" "$(ratio "${T[$tool,1000]}" "${T[p11km,1000]}")"
done
echo
echo "calls vs p11km: certtool $(ratio "${C[certtool,0]}" "${C[p11km,0]}"), openssl $(ratio "${C[openssl,0]}" "${C[p11km,0]}")"
