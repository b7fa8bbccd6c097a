#!/bin/bash
# tests/lib/tpm2-selftest.sh - check that tests/lib/tpm2.sh gives a usable
# TPM 2.0 PKCS#11 token.  Prints TAP; exits 0 if every step passed, 1 if
# one failed, 77 (skip) if swtpm/tpm2-pkcs11/p11tool/openssl are missing.
#
# Set TPM2_SELFTEST_VERBOSE=1 to see every command's output.

set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/tpm2.sh"

if ! tpm2_available || ! command -v p11tool >/dev/null ||
	! command -v openssl >/dev/null; then
	echo "1..0 # SKIP swtpm, tpm2-pkcs11, p11tool or openssl not installed"
	exit 77
fi

label=p11km-selftest
upin=123456
sopin=12345678
dir=$(mktemp -d "${TMPDIR:-/tmp}/tpm2-selftest.XXXXXX") || exit 1
trap 'tpm2_token_stop "$dir"; rm -rf "$dir"' EXIT
trap 'exit 1' HUP INT TERM

n=0
failed=0

ms_since()
{
	local now=${EPOCHREALTIME/./}
	echo $(((now - $1) / 1000))
}

# step NAME CMD...: run CMD, output to $dir/out; report ok/not ok.
step()
{
	local name=$1 t0=${EPOCHREALTIME/./}
	shift
	n=$((n + 1))
	if "$@" >"$dir/out" 2>&1; then
		echo "ok $n - $name ($(ms_since "$t0") ms)"
		[ "${TPM2_SELFTEST_VERBOSE:-0}" = 1 ] && sed 's/^/# /' "$dir/out"
	else
		echo "not ok $n - $name ($(ms_since "$t0") ms)"
		sed 's/^/# /' "$dir/out"
		failed=$((failed + 1))
	fi
	return 0
}

p11()
{
	pkcs11-tool --module "$TPM2_MODULE" --token-label "$label" "$@"
}

start_token()
{
	tpm2_token_start "$dir" "$label" "$upin" "$sopin"
}

listens_on_loopback_only()
{
	local p a
	for p in "$TPM2_SWTPM_PORT" $((TPM2_SWTPM_PORT + 1)); do
		a=$(ss -Htln "sport = :$p" | awk '{ print $4 }')
		echo "port $p: $a"
		[ "$a" = "127.0.0.1:$p" ] || return 1
	done
}

list_token()
{
	pkcs11-tool --module "$TPM2_MODULE" --list-token-slots &&
		pkcs11-tool --module "$TPM2_MODULE" --list-token-slots |
		grep -q "token label *: $label\$"
}

keygen()
{
	p11 --login --pin "$upin" --keypairgen --key-type "$1" --id "$2" \
		--label "$3"
}

# sign_verify ID MECH: sign with the token, verify with openssl.
sign_verify()
{
	local id=$1 mech=$2 in=$dir/msg
	printf 'p11km tpm2 selftest %s\n' "$id" >"$in"
	p11 --read-object --type pubkey --id "$id" -o "$dir/pub$id.der" &&
		openssl pkey -pubin -inform DER -in "$dir/pub$id.der" \
			-out "$dir/pub$id.pem" || return 1
	case $mech in
	ECDSA)
		# Raw ECDSA takes a digest; the module refuses other lengths.
		openssl dgst -sha256 -binary "$in" >"$dir/msg.sha256" &&
			p11 --login --pin "$upin" --sign -m ECDSA --id "$id" \
				--signature-format openssl \
				-i "$dir/msg.sha256" -o "$dir/sig$id" || return 1
		;;
	*)
		p11 --login --pin "$upin" --sign -m "$mech" --id "$id" \
			-i "$in" -o "$dir/sig$id" || return 1
		;;
	esac
	openssl dgst -sha256 -verify "$dir/pub$id.pem" \
		-signature "$dir/sig$id" "$in"
}

list_objects()
{
	local out
	out=$(p11 --login --pin "$upin" --list-objects) || return 1
	printf '%s\n' "$out"
	[ "$(grep -c '^Private Key Object' <<<"$out")" = 2 ] &&
		[ "$(grep -c '^Public Key Object' <<<"$out")" = 2 ]
}

wrong_pins_do_not_lock()
{
	local i out
	for i in 1 2 3; do
		if out=$(p11 --login --pin 999999 --list-objects 2>&1); then
			echo "wrong PIN accepted"
			return 1
		fi
		printf '%s\n' "$out"
		grep -q CKR_PIN_INCORRECT <<<"$out" || return 1
	done
	p11 --login --pin "$upin" --list-objects >/dev/null
}

p11tool_lists_token()
{
	local out
	out=$(p11tool --provider "$TPM2_MODULE" --list-tokens) || return 1
	printf '%s\n' "$out"
	grep -q "Label: $label\$" <<<"$out"
}

list_mechanisms()
{
	pkcs11-tool --module "$TPM2_MODULE" --list-mechanisms
}

stop_token()
{
	local pid
	pid=$(cat "$dir/swtpm.pid") || return 1
	tpm2_token_stop "$dir" || return 1
	! _tpm2_pid_alive "$pid" && [ ! -e "$dir/swtpm.pid" ]
}

t_all=${EPOCHREALTIME/./}
echo "1..12"
step "tpm2_token_start" start_token
if [ "$failed" != 0 ]; then
	sed 's/^/# /' "$dir/tpm2.log"
	exit 1
fi
echo "# swtpm port $TPM2_SWTPM_PORT, store $TPM2_PKCS11_STORE"
step "swtpm listens on 127.0.0.1 only" listens_on_loopback_only
step "token listed" list_token
step "EC P-256 key pair" keygen EC:prime256v1 01 k1
step "RSA 2048 key pair" keygen rsa:2048 02 k2
step "ECDSA signature verifies" sign_verify 01 ECDSA
step "SHA256-RSA-PKCS signature verifies" sign_verify 02 SHA256-RSA-PKCS
step "objects listed" list_objects
step "3 wrong PINs, then the right one works" wrong_pins_do_not_lock
step "p11tool lists token" p11tool_lists_token
step "mechanisms listed" list_mechanisms
step "tpm2_token_stop" stop_token
echo "# total $(ms_since "$t_all") ms, $failed failed"
[ "$failed" = 0 ]
