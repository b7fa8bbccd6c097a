# tests/lib/daemon.sh - background daemons of the test rigs (tests/lib/piv.sh,
# tests/lib/remote.sh): start detached, stop by pid file.  Sourced; runs
# nothing.
#
#   daemon_spawn LOG CMD...      start CMD in the background with stdin
#                                /dev/null, stdout and stderr appended to LOG
#                                and no other descriptor of the caller (a
#                                test harness's pipes); prints its pid
#   daemon_is PID COMM           PID is alive (not a zombie) and runs COMM
#   daemon_stop PIDFILE COMM     SIGTERM (SIGKILL after 1 s) the pid in
#                                PIDFILE if it still runs COMM, wait for it,
#                                remove PIDFILE; 1 if it would not die

_daemon_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
declare -F _tpm2_pid_alive >/dev/null || . "$_daemon_here/tpm2.sh"

daemon_spawn()
{
	local log=$1
	shift
	(
		for fd in /proc/self/fd/*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null
		done
		exec "$@"
	) </dev/null >>"$log" 2>&1 &
	echo $!
}

daemon_is()
{
	_tpm2_pid_alive "$1" && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}

daemon_stop()
{
	local pid i

	[ -f "$1" ] || return 0
	pid=$(cat "$1" 2>/dev/null)
	case $pid in '' | *[!0-9]*) rm -f "$1"; return 0 ;; esac
	if daemon_is "$pid" "$2"; then
		kill -TERM "$pid" 2>/dev/null
		for i in $(seq 150); do
			_tpm2_pid_alive "$pid" || break
			[ "$i" = 50 ] && kill -KILL "$pid" 2>/dev/null
			sleep 0.02
		done
	fi
	rm -f "$1"
	! _tpm2_pid_alive "$pid"
}
