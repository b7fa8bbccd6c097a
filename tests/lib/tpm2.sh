# tests/lib/tpm2.sh - a throwaway TPM 2.0 PKCS#11 token for tests.
#
# Source this file from bash; it defines functions and runs nothing.
#
#   tpm2_available
#       0 if swtpm, tpm2-tools, the swtpm TCTI, pkcs11-tool and the
#       tpm2-pkcs11 module are installed; 1 otherwise.  Tests should skip
#       (exit 77) when it fails.
#
#   tpm2_token_start DIR LABEL USERPIN SOPIN
#       Starts a private software TPM (swtpm) whose state lives in DIR/state,
#       listening on 127.0.0.1 only, on a free even port N (commands) and
#       N+1 (control; the swtpm TCTI always uses port+1).  Disables the
#       TPM's dictionary-attack lockout, then creates a token labelled LABEL
#       in the tpm2-pkcs11 store DIR/store with the given user and SO PINs.
#       On success exports:
#         TPM2_MODULE          path of libtpm2_pkcs11.so (a value already
#                              set by the caller is kept)
#         TPM2TOOLS_TCTI       swtpm:host=127.0.0.1,port=N
#         TPM2_PKCS11_TCTI     same
#         TPM2_PKCS11_STORE    DIR/store
#         TPM2_SWTPM_PORT      N
#         TSS2_LOG             all+NONE  (unless already set)
#         TPM2_PKCS11_LOG_LEVEL 0        (unless already set; errors only)
#       LABEL is 1 to 32 bytes (longer ones would be cut by C_InitToken).
#       DIR must exist; DIR/state and DIR/store must be absent or empty.
#       Tool output goes to DIR/tpm2.log, swtpm's own log to DIR/swtpm.log.
#       Nothing is exported unless the token is ready.  On failure prints
#       one line on stderr, stops the swtpm it started and returns 1 (2 for
#       a wrong number of arguments).
#
#   tpm2_token_stop DIR
#       Stops the swtpm whose pid is in DIR/swtpm.pid (only if that pid is
#       still a swtpm) and waits until it has exited; a zombie counts as
#       exited, since the daemon's parent is init and may reap it late.
#       Removes the pid file, keeps DIR/state and DIR/store.  Returns 0 if
#       nothing was running, 1 if swtpm would not die even after SIGKILL.
#
# Facts this relies on (Debian 12: swtpm 0.7.1, tpm2-tools 5.4,
# tpm2-pkcs11 1.9.0):
#   - There is no resource manager, so the TPM's three object slots fill up.
#     The token is therefore created through the PKCS#11 module
#     (pkcs11-tool --init-token / --init-pin), which cleans up after itself;
#     "tpm2_ptool addtoken" fails with "out of memory for object contexts"
#     even right after "tpm2_flushcontext -t".
#   - Every token has serial 0000000000000000; select tokens by label.
#   - swtpm exits with status 1 before daemonising when it cannot bind, so
#     a port clash with a parallel test is detected and another port tried.

TPM2_DEFAULT_MODULE=/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so

_tpm2_module()
{
	printf '%s\n' "${TPM2_MODULE:-$TPM2_DEFAULT_MODULE}"
}

tpm2_available()
{
	local cmd

	for cmd in swtpm tpm2_dictionarylockout tpm2_getrandom pkcs11-tool; do
		command -v "$cmd" >/dev/null 2>&1 || return 1
	done
	[ -r "$(_tpm2_module)" ] || return 1
	# The swtpm TCTI is loaded by name at run time.
	compgen -G '/usr/lib/*/libtss2-tcti-swtpm.so*' >/dev/null ||
		compgen -G '/usr/lib/libtss2-tcti-swtpm.so*' >/dev/null
}

# _tpm2_ports_busy PORT...: true if a TCP socket uses one of the PORTs
# locally (any state, any address).  ss asks the kernel with a filter;
# /proc/net/tcp can hold tens of thousands of TIME_WAIT lines.
_tpm2_ports_busy()
{
	local p filter='' out

	if command -v ss >/dev/null 2>&1; then
		for p in "$@"; do
			filter="${filter:+$filter or }sport = :$p"
		done
		out=$(ss -Htan "( $filter )" 2>/dev/null) || return 1
		[ -n "$out" ]
		return
	fi
	for p in "$@"; do
		grep -qF "$(printf ':%04X ' "$p")" /proc/net/tcp /proc/net/tcp6 \
			2>/dev/null && return 0
	done
	return 1
}

# _tpm2_pid_alive PID: true while PID exists and is not a zombie.  The
# daemonised swtpm is reparented to init, which may be slow to reap it.
_tpm2_pid_alive()
{
	local stat

	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	[ "${stat%% *}" != Z ] && [ "${stat%% *}" != X ]
}

# _tpm2_is_swtpm PID: true if PID is a live swtpm process.
_tpm2_is_swtpm()
{
	local comm

	_tpm2_pid_alive "$1" || return 1
	comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
	[ "$comm" = swtpm ]
}

_tpm2_fail()
{
	local dir=$1
	shift
	echo "tpm2_token_start: $*" >&2
	[ -n "$dir" ] && tpm2_token_stop "$dir" >/dev/null 2>&1
	return 1
}

tpm2_token_stop()
{
	local dir=${1:?usage: tpm2_token_stop DIR}
	local pidfile=$dir/swtpm.pid pid i

	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile" 2>/dev/null)
	case $pid in
	'' | *[!0-9]*)
		rm -f "$pidfile"
		return 0
		;;
	esac
	if _tpm2_is_swtpm "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 100); do
			_tpm2_pid_alive "$pid" || break
			sleep 0.02
		done
		if _tpm2_pid_alive "$pid"; then
			kill -KILL "$pid" 2>/dev/null || true
			for i in $(seq 50); do
				_tpm2_pid_alive "$pid" || break
				sleep 0.02
			done
		fi
		if _tpm2_pid_alive "$pid"; then
			echo "tpm2_token_stop: swtpm $pid did not exit" >&2
			return 1
		fi
	fi
	rm -f "$pidfile"
	return 0
}

# _tpm2_spawn DIR: start swtpm on a free port pair; sets _tpm2_port.
_tpm2_spawn()
{
	local dir=$1 try port

	for try in $(seq 40); do
		# Even ports in 20000-31998: below the kernel's ephemeral range
		# (32768-60999), and pairs of two tests never half-overlap.
		port=$((20000 + 2 * ((RANDOM * 32768 + RANDOM) % 6000)))
		_tpm2_ports_busy "$port" $((port + 1)) && continue
		rm -f "$dir/swtpm.pid" "$dir/swtpm.log"
		if (
			# The daemon must not hold a test harness's pipes open.
			for fd in /proc/self/fd/*; do
				fd=${fd##*/}
				[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
			done
			exec swtpm socket --tpm2 \
				--tpmstate "dir=$dir/state,mode=0600" \
				--server "type=tcp,port=$port,bindaddr=127.0.0.1" \
				--ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
				--flags not-need-init,startup-clear \
				--log "file=$dir/swtpm.log" \
				--pid "file=$dir/swtpm.pid" \
				--daemon
		) </dev/null >>"$dir/tpm2.log" 2>&1; then
			_tpm2_port=$port
			return 0
		fi
		cat "$dir/swtpm.log" >>"$dir/tpm2.log" 2>/dev/null || true
		# Lost a race for the port: try another.  Anything else is fatal.
		grep -q 'Address already in use' "$dir/swtpm.log" 2>/dev/null ||
			return 1
	done
	return 1
}

# _tpm2_setup DIR MODULE LABEL USERPIN SOPIN: with the TCTI variables
# exported, wait for the TPM, disable lockout, create the token.
_tpm2_setup()
{
	local dir=$1 module=$2 label=$3 upin=$4 sopin=$5
	local log=$dir/tpm2.log i

	# swtpm binds before it daemonises; still, wait until it answers.
	for i in $(seq 100); do
		tpm2_getrandom 4 >/dev/null 2>>"$log" && break
		if [ "$i" = 100 ]; then
			_tpm2_fail '' "swtpm on port $_tpm2_port does not answer (see $log)"
			return 1
		fi
		sleep 0.02
	done

	# No lockout: wrong PINs in tests must never lock the TPM.
	if ! tpm2_dictionarylockout -s -n 4294967295 -t 0 -l 0 >>"$log" 2>&1; then
		_tpm2_fail '' "tpm2_dictionarylockout failed (see $log)"
		return 1
	fi

	# A fresh store offers exactly one empty slot (index 0).
	if ! pkcs11-tool --module "$module" --slot-index 0 --init-token \
		--label "$label" --so-pin "$sopin" >>"$log" 2>&1; then
		_tpm2_fail '' "cannot initialise token '$label' (see $log)"
		return 1
	fi
	if ! pkcs11-tool --module "$module" --token-label "$label" --login \
		--login-type so --so-pin "$sopin" --init-pin --pin "$upin" \
		>>"$log" 2>&1; then
		_tpm2_fail '' "cannot set user PIN of '$label' (see $log)"
		return 1
	fi
	if ! pkcs11-tool --module "$module" --token-label "$label" --login \
		--pin "$upin" --list-objects >>"$log" 2>&1; then
		_tpm2_fail '' "cannot log in to new token '$label' (see $log)"
		return 1
	fi
}

tpm2_token_start()
{
	if [ $# -ne 4 ]; then
		echo "usage: tpm2_token_start DIR LABEL USERPIN SOPIN" >&2
		return 2
	fi
	local dir=$1 label=$2 upin=$3 sopin=$4
	local module tcti log pid sub _tpm2_port

	module=$(_tpm2_module)
	if [ -z "$label" ] || [ "$(LC_ALL=C; echo ${#label})" -gt 32 ]; then
		_tpm2_fail '' "label '$label' must be 1 to 32 bytes"
		return 1
	fi
	if [ -z "$upin" ] || [ -z "$sopin" ]; then
		_tpm2_fail '' "empty PIN"
		return 1
	fi
	if ! tpm2_available; then
		_tpm2_fail '' "swtpm, tpm2-tools, pkcs11-tool or '$module' missing"
		return 1
	fi
	if ! dir=$(cd "$dir" 2>/dev/null && pwd); then
		_tpm2_fail '' "no directory '$1'"
		return 1
	fi
	log=$dir/tpm2.log
	if [ -f "$dir/swtpm.pid" ] && _tpm2_is_swtpm "$(cat "$dir/swtpm.pid")"; then
		_tpm2_fail '' "swtpm already running for '$dir'"
		return 1
	fi
	for sub in state store; do
		if [ -d "$dir/$sub" ] && [ -n "$(ls -A "$dir/$sub")" ]; then
			_tpm2_fail '' "'$dir/$sub' is not empty"
			return 1
		fi
		mkdir -p "$dir/$sub" || { _tpm2_fail '' "cannot create '$dir/$sub'"; return 1; }
	done
	chmod 700 "$dir/state" "$dir/store"
	: >"$log"

	_tpm2_spawn "$dir" || { _tpm2_fail "$dir" "cannot start swtpm (see $log)"; return 1; }
	pid=$(cat "$dir/swtpm.pid" 2>/dev/null)
	_tpm2_is_swtpm "$pid" || { _tpm2_fail "$dir" "swtpm did not stay up (see $log)"; return 1; }

	tcti="swtpm:host=127.0.0.1,port=$_tpm2_port"
	# Set up in a subshell: the caller's environment changes only on
	# success.
	if ! (
		export TPM2TOOLS_TCTI=$tcti TPM2_PKCS11_TCTI=$tcti
		export TPM2_PKCS11_STORE=$dir/store
		export TSS2_LOG=${TSS2_LOG-all+NONE}
		export TPM2_PKCS11_LOG_LEVEL=${TPM2_PKCS11_LOG_LEVEL-0}
		_tpm2_setup "$dir" "$module" "$label" "$upin" "$sopin"
	); then
		tpm2_token_stop "$dir" >/dev/null 2>&1
		return 1
	fi
	export TPM2_MODULE=$module
	export TPM2TOOLS_TCTI=$tcti
	export TPM2_PKCS11_TCTI=$tcti
	export TPM2_PKCS11_STORE=$dir/store
	export TPM2_SWTPM_PORT=$_tpm2_port
	export TSS2_LOG=${TSS2_LOG-all+NONE}
	export TPM2_PKCS11_LOG_LEVEL=${TPM2_PKCS11_LOG_LEVEL-0}
	return 0
}

# tpm2_test_token: the test's token 'tp' on swtpm in $T/tpm (user PIN 1234 in
# the file $PIN, SO PIN 12345678), stopped at exit, P11KM_MODULE set to
# tpm2-pkcs11 and TOK to the token's URI.  Leak checks off: tpm2-pkcs11 1.9.0
# leaks inside C_SignInit (see tpm2-req.sh).  A token that does not start is
# a failed check and the end of the test.
tpm2_test_token() {
	mkdir -p "$T/tpm"
	cleanup_add "tpm2_token_stop '$T/tpm'"
	if ! tpm2_token_start "$T/tpm" tp 1234 12345678; then
		not_ok "a tpm2-pkcs11 token on swtpm starts"
		sed 's/^/#   /' "$T/tpm/tpm2.log" | tail -20
		done_testing
	fi
	P11KM_MODULE=$TPM2_MODULE
	export P11KM_MODULE
	export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0
	PIN=$(pin_file pin 1234)
	TOK='pkcs11:token=tp'
}
