#!/bin/sh
# Install what p11km needs to build, test and run its demo on Debian 12.
# Idempotent: installs only what is missing.  Needs root (or sudo).
set -eu
PKGS="build-essential autoconf automake libtool pkg-config libssl-dev libp11-kit-dev
p11-kit check softhsm2 opensc gnutls-bin libengine-pkcs11-openssl openssl
nginx-light apache2 stunnel4 curl libnss3-tools ca-certificates
swtpm swtpm-tools libtpm2-pkcs11-1 libtpm2-pkcs11-tools tpm2-tools libtss2-tcti-swtpm0
iproute2 procps python3 strace
pcscd vsmartcard-vpcd ykcs11 yubico-piv-tool python3-cryptography"
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "p11km: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
# shellcheck disable=SC2086
$SUDO apt-get install -y -q $missing >/dev/null
