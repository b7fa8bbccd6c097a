#!/bin/bash
# tests/bench/remote.sh: PKCS#11 calls and wall time of each lifecycle
# command on a SoftHSM2 token, directly and through p11-kit's RPC (p11-kit
# server + p11-kit-client.so, tests/lib/remote.sh), the stand-in for a
# network HSM where every call is a round trip.  Calls are counted by the
# test shim (tests/shim) in front of the module p11km loads.
# Not part of 'make check'.  Uses the build in _build (contrib/build.sh).
#
#   tests/bench/remote.sh      BENCH_RUNS=N runs per command, fastest shown (3)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
runs=${BENCH_RUNS:-3}
B=${P11KM_BUILD:-$top/_build}
[ -x "$B/p11km" ] || "$top/contrib/build.sh"
make -s -C "$B" tests/p11shim.la >/dev/null
P11KM=$B/p11km
SHIM=$B/tests/.libs/p11shim.so
SOFTHSM2_MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
. "$top/tests/lib/remote.sh"

W=$(mktemp -d /tmp/p11km-bench-remote.XXXXXX)
trap 'remote_token_stop "$W" >/dev/null 2>&1; rm -rf "$W"' EXIT
mkdir -p "$W/tokens"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$W" \
	>"$W/softhsm2.conf"
export SOFTHSM2_CONF=$W/softhsm2.conf
softhsm2-util --init-token --free --label bench --pin 1234 --so-pin 12345678 >/dev/null
(umask 077; printf 1234 >"$W/pin"; printf 12345678 >"$W/sopin")
for i in $(seq 20); do
	pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label bench --login --pin 1234 \
		--keypairgen --key-type EC:prime256v1 --label "other$i" --id "$(printf '%04x' "$i")" >/dev/null 2>&1
done
remote_token_start "$W" bench
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/ca.key" \
	-out "$W/ca.pem" -subj /CN=bench-ca -days 2 2>/dev/null
TOK=pkcs11:token=bench

# run NAME MODULE ARGS...: fastest of $runs runs (1 for the commands that
# change the token: NAME ends in '!'), and the calls of the last
run() {
	local name=$1 module=$2 best=999999 t0 t1 ms n=$runs
	shift 2
	case $name in *!) n=1 ;; esac
	for _ in $(seq "$n"); do
		t0=$(date +%s%N)
		P11SHIM_MODULE=$module P11SHIM_COUNT_FILE=$W/counts \
			"$P11KM" --module "$SHIM" --pin-source "file:$W/pin" "$@" >"$W/out" 2>"$W/err" ||
			{ echo "bench: $name failed: $(head -1 "$W/err")" >&2; exit 1; }
		t1=$(date +%s%N)
		ms=$(((t1 - t0) / 1000000))
		[ "$ms" -lt "$best" ] && best=$ms
	done
	echo "$(awk '$1 == "total" { print $2 }' "$W/counts") | $best"
}

# one lifecycle per module, with fresh labels: key, request, install, renew
lifecycle() {
	local m=$1 l=$2
	printf '| token list | %s |\n' "$(run list "$m" token list)"
	printf '| key generate ec:p256 | %s |\n' "$(run keygen! "$m" key generate "$TOK" --label "$l")"
	printf '| req new | %s |\n' "$(run req "$m" req new "$TOK;object=$l;type=private" \
		--subject "CN=$l.example.test" -o "$W/$l.csr")"
	openssl x509 -req -in "$W/$l.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -set_serial "0x$RANDOM" \
		-days 30 -out "$W/$l.pem" 2>/dev/null
	printf '| cert install | %s |\n' "$(run install! "$m" cert install "$W/$l.pem" "$TOK" \
		--ca-file "$W/ca.pem")"
	printf '| req renew | %s |\n' "$(run renew "$m" req renew "$TOK;object=$l;type=cert" -o "$W/$l.r.csr")"
	printf '| object list | %s |\n' "$(run objects "$m" object list "$TOK")"
}

lifecycle "$SOFTHSM2_MODULE" direct >"$W/direct"
lifecycle "$REMOTE_MODULE" remote >"$W/remote"
echo "SoftHSM2 with 20 other key pairs; fastest of $runs runs (key generate and cert install: 1)"
echo
echo "| command | direct: calls | direct: ms | p11-kit RPC: calls | p11-kit RPC: ms |"
echo "|---|---:|---:|---:|---:|"
paste -d'|' <(sed 's/ |$//' "$W/direct") <(sed 's/^| [^|]* | //' "$W/remote")
