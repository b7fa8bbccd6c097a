#!/bin/sh
# Install what p11km needs to build, test and run its demo on Debian 12, at
# the versions the tests need.  Idempotent, and quick when all is there: it
# only reads dpkg's database then.  Needs root (or sudo).
set -eu
# One list: a package, or "package>=VERSION" when the tests need at least
# that version (a fresh image may have an older one; the candidate of an
# up-to-date bookworm + bookworm-security is then installed).
#   ca-certificates: update-ca-certificates --sysroot (tests/cli/roots.sh)
#   prometheus: promtool check metrics on the status textfile (tests/cli/track.sh)
#   opencryptoki: its soft token behind a private pkcsslotd (tests/cli/opencryptoki.sh)
#   certmonger: its CA helper local-submit (tests/cli/ca-helper.sh)
#   systemd (systemd-analyze, systemd.pc), man-db, ansible-core: tests/cli/units.sh
#   lego, certbot: other ACME clients for the same token-signed CSR (tests/cli/acme-clients.sh)
#   krb5-kdc, krb5-admin-server (kadmin.local), krb5-user (kinit, klist), python3-gssapi:
#     a real KDC and the stand-in's Negotiate check (tests/cli/ca-adcs-krb.sh)
PKGS="build-essential autoconf automake libtool pkg-config libssl-dev libp11-kit-dev
p11-kit check softhsm2 opensc gnutls-bin libengine-pkcs11-openssl openssl
nginx-light apache2 stunnel4 curl libnss3-tools ca-certificates>=20250419~
swtpm swtpm-tools libtpm2-pkcs11-1 libtpm2-pkcs11-tools tpm2-tools libtss2-tcti-swtpm0
iproute2 procps python3 strace openssh-client util-linux
pcscd vsmartcard-vpcd ykcs11 yubico-piv-tool python3-cryptography
clang-14 libfuzzer-14-dev libclang-rt-14-dev
libcurl4-openssl-dev libjansson-dev pebble opencryptoki prometheus
certmonger systemd man-db ansible-core lego certbot
krb5-kdc krb5-admin-server krb5-user python3-gssapi"

# "package version" of every installed package of the list, in one query
names=$(for p in $PKGS; do echo "${p%%>=*}"; done)
# shellcheck disable=SC2086
installed=$(dpkg-query -W -f='${Package} ${Status} ${Version}\n' $names 2>/dev/null |
	sed -n 's/^\([^ ]*\) install ok installed /\1 /p') || true
need=
for p in $PKGS; do
	name=${p%%>=*}
	v=$(echo "$installed" | awk -v n="$name" '$1 == n { print $2 }')
	if [ -z "$v" ]; then
		need="$need $name"
	elif [ "$name" != "$p" ] && ! dpkg --compare-versions "$v" ge "${p#*>=}"; then
		need="$need $name"
		echo "p11km: $name $v is older than the tests need (${p#*>=})" >&2
	fi
done
[ -z "$need" ] && exit 0
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q >/dev/null
# a minimum the archive cannot meet is said before anything is installed
for p in $PKGS; do
	[ "${p%%>=*}" != "$p" ] || continue
	cand=$(LC_ALL=C apt-cache policy "${p%%>=*}" | sed -n 's/^ *Candidate: //p')
	if [ -z "$cand" ] || [ "$cand" = "(none)" ] || ! dpkg --compare-versions "$cand" ge "${p#*>=}"; then
		echo "p11km: ${p%%>=*} ${p#*>=} or later is not available (candidate: ${cand:-none}); enable bookworm-security and bookworm-updates in the apt sources" >&2
		exit 1
	fi
done
echo "p11km: installing:$need" >&2
# shellcheck disable=SC2086
$SUDO apt-get install -y -q $need >/dev/null
