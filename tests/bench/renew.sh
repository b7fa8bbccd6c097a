#!/bin/bash
# tests/bench/renew.sh: 50 certificates on one SoftHSM2 token, renewed with a
# local file CA: 'p11km renew --all' (one run writes the 50 requests, the CA
# signs them, the next run installs the 50 replies) against 50 separate
# 'req renew' runs plus 50 'cert install' runs, PKCS#11 calls (counted by the
# test shim, tests/shim) and wall time side by side; then the same with 1 ms
# of latency on every call (a network HSM).  Not part of 'make check'.
# Builds what it needs without sanitizers (in _build-bench/).
#
#   tests/bench/renew.sh [CERTS]          (default 50)
#   P11KM_BUILD=DIR  build directory to use (default: _build-bench)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-50}
SOFTHSM2_MODULE=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
for t in pkcs11-tool softhsm2-util openssl; do
	command -v $t >/dev/null || { echo "renew.sh: $t is needed" >&2; exit 1; }
done

# --- build --------------------------------------------------------------------
B=${P11KM_BUILD:-$top/_build-bench}
if [ ! -f "$B/Makefile" ]; then
	mkdir -p "$B"
	(cd "$top" && { [ -x configure ] || autoreconf -fi >/dev/null 2>&1; })
	(cd "$B" && "$top/configure" --quiet >/dev/null)
fi
make -s -C "$B" -j2 p11km tests/p11shim.la >/dev/null
P11KM=$B/p11km
SHIM=$B/tests/.libs/p11shim.so

# --- a token with N key pairs and their certificates (cached) --------------------
W=$(mktemp -d /tmp/p11km-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
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

# a fresh copy of the token for each measurement
fresh() {
	rm -rf "$W/tokens" "$W/state" "$W/ca-in" "$W/req"
	cp -a "$cache/tokens" "$W/tokens"
	printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
		"$W" > "$W/softhsm2.conf"
	mkdir -p "$W/ca-in" "$W/req"
}
sign() { # CSR OUT SERIAL
	openssl x509 -req -in "$1" -CA "$cache/ca.pem" -CAkey "$cache/ca.key" -set_serial "$3" -days 90 \
		-extfile "$W/ext.cnf" -out "$2" 2>/dev/null
}
# counted P11KM ARGS: one p11km run through the shim; adds to calls and ms
counted() {
	local t0 t1 c
	rm -f "$W/counts"
	t0=$(date +%s%N)
	P11SHIM_MODULE=$SOFTHSM2_MODULE P11SHIM_COUNT_FILE=$W/counts P11SHIM_LATENCY_US=$lat \
		"$P11KM" --module "$SHIM" --pin-source "file:$W/pin" "$@" >"$W/last.log" 2>&1 ||
		{ echo "renew.sh: p11km $* failed:" >&2; sed 's/^/    /' "$W/last.log" >&2; exit 1; }
	t1=$(date +%s%N)
	c=$(awk '$1 == "total" { print $2 }' "$W/counts")
	calls=$((calls + c)) ms=$((ms + (t1 - t0) / 1000000))
}

declare -A C T
for lat in 0 1000; do
	# p11km renew --all: one run for the requests, one for the replies
	fresh
	for i in $(seq "$n"); do
		P11KM_MODULE=$SHIM "$P11KM" --pin-source "file:$W/pin" track add \
			"pkcs11:token=bench;object=c$i;type=cert" --state-dir "$W/state" --ca "file:$W/ca-in" \
			--ca-file "$cache/ca.pem" >/dev/null
	done
	calls=0 ms=0
	counted renew --all --state-dir "$W/state"
	for i in $(seq "$n"); do sign "$W/ca-in/c$i.csr" "$W/ca-in/c$i.crt" $((1000 + i)); done
	counted renew --all --state-dir "$W/state"
	grep -c ': renewed' "$W/last.log" | grep -qx "$n" || { echo "renew.sh: renew --all did not renew all" >&2; cat "$W/last.log" >&2; exit 1; }
	C[renew,$lat]=$calls T[renew,$lat]=$ms
	# N separate req renew runs, then N cert install runs
	fresh
	calls=0 ms=0
	for i in $(seq "$n"); do
		counted req renew "pkcs11:token=bench;object=c$i;type=cert" -o "$W/req/c$i.csr"
	done
	C[req,$lat]=$calls T[req,$lat]=$ms
	for i in $(seq "$n"); do sign "$W/req/c$i.csr" "$W/req/c$i.crt" $((1000 + i)); done
	calls=0 ms=0
	for i in $(seq "$n"); do
		counted cert install "$W/req/c$i.crt" "pkcs11:token=bench" --ca-file "$cache/ca.pem"
	done
	C[inst,$lat]=$calls T[inst,$lat]=$ms
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) b = 1; printf "%.2fx", a / b }'; }
echo "$n certificates (EC P-256) on one SoftHSM2 token, renewed with a local file CA"
echo "(the CA's signing is not counted); PKCS#11 calls counted by the shim."
echo
printf '%-44s %7s %9s | %9s\n' "" "calls" "time" "+1ms/call"
for k in renew req inst; do
	case $k in
	renew) name="p11km renew --all (2 runs)" ;;
	req) name="$n x p11km req renew" ;;
	inst) name="$n x p11km cert install" ;;
	esac
	printf '%-44s %7s %7sms | %7sms\n' "$name" "${C[$k,0]}" "${T[$k,0]}" "${T[$k,1000]}"
done
sep_c=$((C[req,0] + C[inst,0])) sep_t=$((T[req,0] + T[inst,0])) sep_t1=$((T[req,1000] + T[inst,1000]))
printf '%-44s %7s %7sms | %7sms\n' "$n x (req renew + cert install)" "$sep_c" "$sep_t" "$sep_t1"
echo
echo "renew --all vs separate runs: calls $(ratio "${C[renew,0]}" "$sep_c"), time $(ratio "${T[renew,0]}" "$sep_t"), time at 1 ms/call $(ratio "${T[renew,1000]}" "$sep_t1")"
