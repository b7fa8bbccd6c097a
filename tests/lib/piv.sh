# tests/lib/piv.sh - an emulated PIV card (YubiKey 5) behind a private pcscd.
#
# Source this file from bash; it defines functions and runs nothing.
# tests/piv/README.md explains the pieces.
#
#   piv_available
#       0 if python3 with python3-cryptography, pcscd, the vpcd reader
#       driver, unshare, opensc-tool, ss, ykcs11 and opensc-pkcs11 are
#       installed and this process may make a mount namespace (as root,
#       or as a user through a user namespace); 1 otherwise.
#
#   piv_card_start DIR
#       Starts a private pcscd (in its own mount namespace, so that its
#       /run/pcscd is DIR/run/pcscd) with one vpcd reader whose name
#       contains "Yubico", on a free port pair N, N+1 (vpcd listens on
#       both, on every address; its address cannot be set), then the card
#       emulator tests/piv/piv-card.py, which connects to 127.0.0.1:N.
#       The card's state lives in DIR/card: a fresh DIR gets a new card
#       (PIN 123456, PUK 12345678, default management key, no keys); an
#       existing DIR/card is the same card again.  Returns once the card is
#       present (about half a second).  On success exports:
#         PCSCLITE_CSOCK_NAME  DIR/run/pcscd/pcscd.comm: every PC/SC client
#                              (ykcs11, OpenSC, yubico-piv-tool, p11km)
#                              reaches the private pcscd through it
#         OPENSC_CONF          DIR/opensc.conf (no file cache: the tests
#                              change the card under OpenSC's feet)
#         PIV_YKCS11           path of libykcs11.so
#         PIV_OPENSC           path of opensc-pkcs11.so
#         PIV_READER           the reader holding the card
#         PIV_MGM_KEY          the factory management key (48 hex digits)
#         PIV_ATTEST_ROOT      DIR/card/attestation-root.pem, the root that
#                              signed the card's attestation certificate
#         PIV_CARD_DIR         DIR/card
#       Logs: DIR/pcscd.log, DIR/card.log (PIV_CARD_TRACE=1: every APDU).
#       On failure prints one line on stderr, stops what it started and
#       returns 1.
#
#   piv_card_pull DIR / piv_card_insert DIR
#       Takes the card out of the reader / puts it back; each returns once
#       pcscd sees the change.
#
#   piv_card_pull_on DIR INS
#       Arms the card to be pulled mid-command: the next APDU with
#       instruction byte INS (hex: 87 GENERAL AUTHENTICATE, i.e. a signature;
#       db PUT DATA, a certificate write; 47 GENERATE) is not answered, the
#       card is out.  piv_card_insert puts it back.
#
#   piv_card_restart DIR
#       Stops the emulator and starts it again on the same state.
#
#   piv_test_card
#       The prologue of a PIV test file (after common.sh): skips the file
#       without the pieces (piv_available), starts a new card in $T/piv
#       (stopped at exit) and sets PIN and MGM (0600 files: 123456, the
#       management key), SERIAL and TOK (pkcs11:serial=SERIAL),
#       P11KM_MODULE (ykcs11) and ypt (yubico-piv-tool on the card).
#
#   piv_card_stop DIR
#       Stops the emulator and the pcscd (only processes whose pids are in
#       DIR/*.pid and that still run those programs); keeps DIR/card.

PIV_YKCS11_DEFAULT=/usr/lib/x86_64-linux-gnu/libykcs11.so.2
PIV_OPENSC_DEFAULT=/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so
PIV_VPCD_DRIVER=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
PIV_READER_NAME="Yubico YubiKey p11km emulator"
# Debian's python3 with python3-cryptography (a python3 earlier in PATH,
# such as a pyenv one, may lack it)
PIV_PYTHON=${PIV_PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}

_piv_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# the port helper lives beside the TPM rig's
declare -F _tpm2_ports_busy >/dev/null || . "$_piv_here/tpm2.sh"
declare -F daemon_spawn >/dev/null || . "$_piv_here/daemon.sh"

piv_available()
{
	local cmd

	for cmd in "$PIV_PYTHON" pcscd unshare mount opensc-tool ss; do
		command -v "$cmd" >/dev/null 2>&1 || return 1
	done
	[ -r "$PIV_VPCD_DRIVER" ] && [ -r "${PIV_YKCS11:-$PIV_YKCS11_DEFAULT}" ] &&
		[ -r "${PIV_OPENSC:-$PIV_OPENSC_DEFAULT}" ] || return 1
	# the private pcscd needs a mount namespace
	_piv_unshare true 2>/dev/null || return 1
	"$PIV_PYTHON" -c 'import cryptography.x509' 2>/dev/null
}

# _piv_unshare CMD...: CMD in a mount namespace of its own; without root,
# inside a user namespace where this user is root (Debian allows that)
if [ "$(id -u)" = 0 ]; then
	_piv_unshare=(unshare -m --propagation private)
else
	_piv_unshare=(unshare -U -r -m --propagation private)
fi
_piv_unshare() { "${_piv_unshare[@]}" "$@"; }

# _piv_reader_has_card DIR yes|no: pcscd reports the card present/absent
_piv_reader_has_card()
{
	local want=Yes
	[ "$2" = no ] && want=No
	opensc-tool -l 2>/dev/null | grep -qE "^[0-9]+ +$want .*$PIV_READER_NAME 00 00"
}

# _piv_wait_card DIR yes|no: wait up to 5 s for pcscd to see it
_piv_wait_card()
{
	local i
	for i in $(seq 250); do
		_piv_reader_has_card "$1" "$2" && return 0
		sleep 0.02
	done
	return 1
}

# _piv_spawn_pcscd DIR: pcscd with vpcd on a free port pair; sets _piv_port
_piv_spawn_pcscd()
{
	local dir=$1 try port pid i

	for try in $(seq 20); do
		port=$((20000 + 2 * ((RANDOM * 32768 + RANDOM) % 6000)))
		_tpm2_ports_busy "$port" $((port + 1)) && continue
		cat >"$dir/reader.conf" <<-EOF
			FRIENDLYNAME "$PIV_READER_NAME"
			DEVICENAME   /dev/null:$port
			LIBPATH      $PIV_VPCD_DRIVER
			CHANNELID    $port
		EOF
		: >"$dir/pcscd.log"
		pid=$(daemon_spawn "$dir/pcscd.log" "${_piv_unshare[@]}" \
			sh -c 'mount --bind "$1/run" /run && exec pcscd -f -c "$1/reader.conf"' \
			sh "$dir")
		echo "$pid" >"$dir/pcscd.pid"
		# ready when vpcd, inside this pcscd, listens on the port
		for i in $(seq 100); do
			if ss -Htlnp "sport = :$port" 2>/dev/null | grep -q "pid=$pid,"; then
				_piv_port=$port
				return 0
			fi
			# pcscd itself failed: no point in another port
			_tpm2_pid_alive "$pid" || return 1
			sleep 0.01
		done
		# vpcd could not listen (somebody took the port): another one
		daemon_stop "$dir/pcscd.pid" pcscd
	done
	return 1
}

_piv_fail()
{
	echo "piv_card_start: $2" >&2
	piv_card_stop "$1" >/dev/null 2>&1
	return 1
}

_piv_spawn_card()
{
	local dir=$1 pid
	pid=$(daemon_spawn "$dir/card.log" "$PIV_PYTHON" "$_piv_here/../piv/piv-card.py" \
		--dir "$dir/card" --port-file "$dir/port")
	echo "$pid" >"$dir/card.pid"
}

piv_card_start()
{
	if [ $# -ne 1 ]; then
		echo "usage: piv_card_start DIR" >&2
		return 2
	fi
	local dir _piv_port

	# (piv_available is the caller's: its Python import costs 0.2 s)
	command -v pcscd >/dev/null && [ -r "$PIV_VPCD_DRIVER" ] ||
		{ echo "piv_card_start: pcscd or vpcd missing" >&2; return 1; }
	dir=$(cd "$1" 2>/dev/null && pwd) || { echo "piv_card_start: no directory '$1'" >&2; return 1; }
	if [ -f "$dir/pcscd.pid" ] && daemon_is "$(cat "$dir/pcscd.pid")" pcscd; then
		echo "piv_card_start: a pcscd already runs for '$dir'" >&2
		return 1
	fi
	mkdir -p "$dir/run" "$dir/card" && chmod 700 "$dir/card" || return 1
	rm -rf "$dir/run/pcscd"  # left by a pcscd that was killed
	export PCSCLITE_CSOCK_NAME=$dir/run/pcscd/pcscd.comm
	export OPENSC_CONF=$dir/opensc.conf
	printf 'app default {\n\tframework pkcs15 {\n\t\tuse_file_caching = no;\n\t}\n}\n' >"$OPENSC_CONF"
	rm -f "$dir/port"
	: >"$dir/card.log"
	# the emulator starts (Python takes a quarter of a second) while
	# pcscd comes up; it connects once DIR/port is written
	_piv_spawn_card "$dir"
	_piv_spawn_pcscd "$dir" || { _piv_fail "$dir" "cannot start pcscd (see $dir/pcscd.log)"; return 1; }
	echo "$_piv_port" >"$dir/port.tmp" && mv "$dir/port.tmp" "$dir/port"
	_piv_wait_card "$dir" yes || { _piv_fail "$dir" "the card does not come up (see $dir/card.log)"; return 1; }
	export PIV_YKCS11=${PIV_YKCS11:-$PIV_YKCS11_DEFAULT}
	export PIV_OPENSC=${PIV_OPENSC:-$PIV_OPENSC_DEFAULT}
	export PIV_READER="$PIV_READER_NAME 00 00"
	export PIV_MGM_KEY=010203040506070801020304050607080102030405060708
	export PIV_ATTEST_ROOT=$dir/card/attestation-root.pem
	export PIV_CARD_DIR=$dir/card
}

# _piv_signal DIR SIG yes|no
_piv_signal()
{
	local pid
	pid=$(cat "$1/card.pid" 2>/dev/null) && daemon_is "$pid" python3 || return 1
	kill "-$2" "$pid" && _piv_wait_card "$1" "$3"
}

piv_card_pull() { _piv_signal "${1:?usage: piv_card_pull DIR}" USR1 no; }
piv_card_insert() { _piv_signal "${1:?usage: piv_card_insert DIR}" USR2 yes; }

piv_card_pull_on()
{
	local dir=${1:?usage: piv_card_pull_on DIR INS}
	echo "${2:?usage: piv_card_pull_on DIR INS}" >"$dir/card/pull-on.tmp" &&
		mv "$dir/card/pull-on.tmp" "$dir/card/pull-on"
}

# piv_card_wait_pulled DIR: the armed pull happened and pcscd sees it
piv_card_wait_pulled() { [ ! -e "$1/card/pull-on" ] && _piv_wait_card "$1" no; }

piv_card_restart()
{
	local dir=${1:?usage: piv_card_restart DIR}
	daemon_stop "$dir/card.pid" python3 && _piv_wait_card "$dir" no &&
		_piv_spawn_card "$dir" && _piv_wait_card "$dir" yes
}

piv_card_stop()
{
	local dir=${1:?usage: piv_card_stop DIR} rc=0
	daemon_stop "$dir/card.pid" python3 || rc=1
	daemon_stop "$dir/pcscd.pid" pcscd || rc=1
	return $rc
}

piv_test_card()
{
	piv_available || skip_all "pcscd, vsmartcard-vpcd, ykcs11, opensc or python3-cryptography missing, or no mount namespace (unshare)"
	mkdir -p "$T/piv"
	piv_card_start "$T/piv" || { echo "# cannot start the PIV card"; exit 99; }
	cleanup_add "piv_card_stop '$T/piv'"
	PIN=$(pin_file pin 123456)
	MGM=$(pin_file mgm "$PIV_MGM_KEY")
	export P11KM_MODULE=$PIV_YKCS11
	SERIAL=$(ypt -a status | sed -n 's/^Serial Number:	//p')
	TOK="pkcs11:serial=$SERIAL"
}
ypt() { yubico-piv-tool -r "$PIV_READER" "$@"; }
