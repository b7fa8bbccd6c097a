#!/bin/sh
# Quick start, command 1: the Key Manager lifecycle on a throwaway SoftHSM2
# token.  Installs what is missing, builds, runs every step, cleans up.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/contrib/deps.sh"
"$top/contrib/build.sh"
P11KM="$top/_build/p11km"

D=$(mktemp -d "${TMPDIR:-/tmp}/p11km-demo.XXXXXX")
trap 'rm -rf "$D"' EXIT INT TERM
step() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

mkdir -p "$D/tokens"
sed "s|@TOKENDIR@|$D/tokens|" "$top/tokens/softhsm2/softhsm2.conf.in" > "$D/softhsm2.conf"
export SOFTHSM2_CONF="$D/softhsm2.conf"
export P11KM_MODULE=softhsm2
(umask 077; printf '%s' 'demo-user-pin' > "$D/user.pin"; printf '%s' 'demo-so-pin' > "$D/so.pin")

step "1. A throwaway SoftHSM2 token (PINs come from files, never argv)"
run "$P11KM" token init --label p11km-demo --so-pin-source "file:$D/so.pin" --pin-source "file:$D/user.pin"
run "$P11KM" token list 'pkcs11:token=p11km-demo'
TOKEN='pkcs11:token=p11km-demo'

step "2. Objects on the token"
run "$P11KM" object list "$TOKEN" --pin-source "file:$D/user.pin"

printf '\nDemo finished: every step ran on a throwaway token in %s (now removed).\n' "$D"
