# tests/lib/remote.sh - a network token for tests: p11-kit's RPC in front of
# a SoftHSM2 token, the stand-in for a network HSM (every PKCS#11 call is a
# round trip through a socket).
#
# Source this file from bash after tests/lib/common.sh; it defines
# functions and runs nothing.
#
#   remote_available
#       0 if p11-kit (with its "server" command) and p11-kit-client.so are
#       installed.
#
#   remote_token_start DIR LABEL [MODULE]
#       Starts "p11-kit server -f --provider MODULE -n DIR/p11-kit.sock
#       pkcs11:token=LABEL" (MODULE defaults to $SOFTHSM2_MODULE; the token
#       must exist and the module's configuration, SOFTHSM2_CONF, must be
#       in the environment).  The socket is a Unix socket in DIR (no TCP
#       port).  On success exports:
#         P11_KIT_SERVER_ADDRESS  unix:path=DIR/p11-kit.sock
#         REMOTE_MODULE           p11-kit-client.so: load it (p11km
#                                 --module, pkcs11-tool --module) to use
#                                 the token through the socket
#       The server's output goes to DIR/p11-kit-server.log.  On failure
#       prints one line on stderr and returns 1.
#
#   remote_token_stop DIR
#       Stops the server whose pid is in DIR/p11-kit-server.pid and waits
#       for it (about a second: it finishes its client threads).
#
# Facts (Debian 12, p11-kit 0.24.1): the client lists one slot per token
# the server exports, and 36 of SoftHSM2's 70 mechanisms: the ones its RPC
# cannot carry are left out of the list (the SHA-n RSA-PSS ones, EdDSA, the
# AES and DES modes with parameters ...) and fail at C_SignInit with
# CKR_MECHANISM_INVALID if asked; SoftHSM2 2.6 has no CKM_ECDSA_SHA256 at
# all.  CKM_ECDSA, CKM_SHA256_RSA_PKCS and CKM_RSA_PKCS_PSS with parameters
# work.

REMOTE_CLIENT_DEFAULT=/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so

remote_available()
{
	command -v p11-kit >/dev/null 2>&1 && [ -r "${REMOTE_MODULE:-$REMOTE_CLIENT_DEFAULT}" ] &&
		p11-kit server --help >/dev/null 2>&1
}

_remote_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
declare -F daemon_spawn >/dev/null || . "$_remote_here/daemon.sh"

remote_token_start()
{
	if [ $# -lt 2 ] || [ $# -gt 3 ]; then
		echo "usage: remote_token_start DIR LABEL [MODULE]" >&2
		return 2
	fi
	local dir label=$2 module=${3:-${SOFTHSM2_MODULE:-}} pid i sock

	dir=$(cd "$1" 2>/dev/null && pwd) || { echo "remote_token_start: no directory '$1'" >&2; return 1; }
	sock=$dir/p11-kit.sock
	rm -f "$sock"
	: >"$dir/p11-kit-server.log"
	pid=$(daemon_spawn "$dir/p11-kit-server.log" p11-kit server -f --provider "$module" \
		-n "$sock" "pkcs11:token=$label")
	echo "$pid" >"$dir/p11-kit-server.pid"
	for i in $(seq 250); do
		[ -S "$sock" ] && break
		if ! _tpm2_pid_alive "$pid" || [ "$i" = 250 ]; then
			echo "remote_token_start: p11-kit server did not start (see $dir/p11-kit-server.log)" >&2
			remote_token_stop "$dir"
			return 1
		fi
		sleep 0.01
	done
	export P11_KIT_SERVER_ADDRESS=unix:path=$sock
	export REMOTE_MODULE=${REMOTE_MODULE:-$REMOTE_CLIENT_DEFAULT}
}

remote_token_stop()
{
	local dir=${1:?usage: remote_token_stop DIR} r=0
	daemon_stop "$dir/p11-kit-server.pid" p11-kit-server || r=1
	rm -f "$dir/p11-kit.sock"
	return $r
}
