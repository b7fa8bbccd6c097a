#!/bin/bash
# tests/bench/remote.sh: PKCS#11 calls and wall time of each lifecycle
# command on a SoftHSM2 token, directly and through p11-kit's RPC (p11-kit
# server + p11-kit-client.so, tests/lib/remote.sh), the stand-in for a
# network HSM where every call is a round trip.  Calls are counted by the
# test shim (tests/shim) in front of the module p11km loads.
# A third run adds 1 ms to every call (the shim's P11SHIM_LATENCY_US=1000),
# the round trip of a network HSM.
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
export P11KM_TOKENS_DIR=${P11KM_TOKENS_DIR:-$top/tokens}
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
# change the token: NAME ends in '!'), and the calls of the last.  The
# calls are p11km's own: the engine probe of bind emit/check (a child
# process with libp11, through the shim too) is not counted.
run() {
	local name=$1 module=$2 best=999999 t0 t1 ms n=$runs
	shift 2
	case $name in *!) n=1 ;; esac
	for _ in $(seq "$n"); do
		rm -f "$W/counts"
		t0=$(date +%s%N)
		P11SHIM_MODULE=$module P11SHIM_COUNT_FILE=$W/counts P11KM_ENGINE_PROBE=$W/probe \
			"$P11KM" --module "$SHIM" --pin-source "file:$W/pin" "$@" >"$W/out" 2>"$W/err" ||
			{ echo "bench: $name failed: $(head -1 "$W/err")" >&2; cat "$W/out" >&2; exit 1; }
		t1=$(date +%s%N)
		ms=$(((t1 - t0) / 1000000))
		[ "$ms" -lt "$best" ] && best=$ms
	done
	echo "$(awk '$1 == "total" { print $2 }' "$W/counts") | $best"
}

# the engine probe without the shim's count file (it would overwrite p11km's)
printf '#!/bin/sh\nexec env -u P11SHIM_COUNT_FILE "%s/p11km-engine-probe" "$@"\n' "$B" >"$W/probe"
chmod +x "$W/probe"

# one lifecycle per module, with fresh labels: keys, requests, install,
# renew, roots, bind, doctor
lifecycle() {
	local m=$1 l=$2
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/$l-ca.key" \
		-out "$W/$l-ca.pem" -subj "/CN=bench-ca-$l" -days 400 2>/dev/null
	printf '| token list | %s |\n' "$(run list "$m" token list)"
	printf '| key generate ec:p256 | %s |\n' "$(run keygen! "$m" key generate "$TOK" --label "$l")"
	printf '| key generate rsa:2048 | %s |\n' "$(run keygen! "$m" key generate "$TOK" \
		--type rsa:2048 --label "$l-rsa")"
	printf '| req new (ECDSA) | %s |\n' "$(run req "$m" req new "$TOK;object=$l;type=private" \
		--subject "CN=$l.example.test" -o "$W/$l.csr")"
	printf '| req new --rsa-pss | %s |\n' "$(run pss "$m" req new "$TOK;object=$l-rsa;type=private" \
		--rsa-pss --subject "CN=$l-rsa.example.test" -o "$W/$l-rsa.csr")"
	openssl x509 -req -in "$W/$l.csr" -CA "$W/$l-ca.pem" -CAkey "$W/$l-ca.key" \
		-set_serial "0x$RANDOM" -days 90 -out "$W/$l.pem" 2>/dev/null
	printf '| cert install | %s |\n' "$(run install! "$m" cert install "$W/$l.pem" "$TOK" \
		--ca-file "$W/$l-ca.pem")"
	printf '| req renew | %s |\n' "$(run renew "$m" req renew "$TOK;object=$l;type=cert" \
		-o "$W/$l.r.csr")"
	printf '| roots install --to token: | %s |\n' "$(run roots! "$m" roots install "$W/$l-ca.pem" \
		--to "token:$TOK" --so-pin-source "file:$W/sopin")"
	printf '| object list | %s |\n' "$(run objects "$m" object list "$TOK")"
	printf '| bind emit nginx | %s |\n' "$(run emit! "$m" bind emit nginx \
		--key "$TOK;object=$l;type=private" --listen 127.0.0.1:8443 --out-dir "$W/b-$l" \
		--pin-file "$W/$l.pin")"
	printf '| bind check | %s |\n' "$(run check "$m" bind check "$W/b-$l")"
	printf '| token doctor --key | %s |\n' "$(run doctor "$m" token doctor "$TOK" \
		--key "$TOK;object=$l;type=private")"
}

lifecycle "$SOFTHSM2_MODULE" direct >"$W/direct"
lifecycle "$REMOTE_MODULE" remote >"$W/remote"
P11SHIM_LATENCY_US=1000 lifecycle "$REMOTE_MODULE" slow >"$W/slow"
echo "SoftHSM2 with 20 other key pairs; fastest of $runs runs (those that change the token: 1)"
echo
echo "| command | direct: calls | direct: ms | p11-kit RPC: calls | p11-kit RPC: ms | RPC, +1 ms/call: ms |"
echo "|---|---:|---:|---:|---:|---:|"
paste -d'|' <(sed 's/ |$/ /' "$W/direct") <(sed 's/^| [^|]* |//; s/ |$/ /' "$W/remote") \
	<(sed 's/^| [^|]* | [^|]* |//' "$W/slow")
