# tests/lib/ock.sh - a private opencryptoki soft token for tests.
#
# opencryptoki has one slot daemon per machine (pkcsslotd) with compiled-in
# paths: /etc/opencryptoki/opencryptoki.conf, /var/lib/opencryptoki (token
# data), /var/lock/opencryptoki, /run/pkcsslotd.{pid,socket}, and SysV shared
# memory.  A test gets its own by running in a private mount and IPC
# namespace (unshare -m -i, as root) where a tmpfs covers /run and its own
# directories are bound over the others: the machine's opencryptoki is never
# touched, and the namespace (with its mounts) goes with the test.
#
# Source this file from bash BEFORE tests/lib/common.sh; it defines
# functions and runs nothing.
#
#   ock_available
#       0 if pkcsslotd, the soft token (PKCS11_SW) and libopencryptoki.so are
#       installed and this process may make a mount + IPC namespace (root).
#
#   ock_reexec ARGS...
#       Run the calling test script again, with ARGS, in a namespace of its
#       own (once: inside it, returns at once).  Never returns otherwise.
#
#   ock_start DIR
#       In that namespace: the private directories under DIR, a
#       configuration with the soft token alone, pkcsslotd started and its
#       socket up.  Exports OCK_MODULE (libopencryptoki.so) and OCK_SLOT (the
#       soft token's slot id).  On failure one line on stderr and 1.
#
#   ock_stop
#       Stops the pkcsslotd ock_start started and waits for it.
#
# Facts (Debian 12, opencryptoki 3.8.1): start to ready ~50 ms; a fresh
# soft token is labelled "IBM OS PKCS#11", model "IBM SoftTok", PIN length
# 4-8, its SO PIN 87654321; C_InitToken needs the current SO PIN.

OCK_MODULE_DEFAULT=/usr/lib/x86_64-linux-gnu/pkcs11/libopencryptoki.so
OCK_STDLL_DIR=/usr/lib/x86_64-linux-gnu/opencryptoki/stdll
OCK_SLOT=3

ock_available()
{
	[ "$(id -u)" = 0 ] && command -v pkcsslotd >/dev/null 2>&1 &&
		[ -r "${OCK_MODULE:-$OCK_MODULE_DEFAULT}" ] && [ -r "$OCK_STDLL_DIR/libpkcs11_sw.so" ] &&
		getent group pkcs11 >/dev/null && unshare -m -i --propagation private true 2>/dev/null
}

ock_reexec()
{
	[ -n "${P11KM_OCK_NS:-}" ] && return 0
	P11KM_OCK_NS=1 exec unshare -m -i --propagation private "$BASH" "$0" "$@"
}

ock_start()
{
	local dir i
	dir=$(cd "${1:?usage: ock_start DIR}" 2>/dev/null && pwd) || {
		echo "ock_start: no directory '$1'" >&2
		return 1
	}
	[ -n "${P11KM_OCK_NS:-}" ] || { echo "ock_start: not in a namespace of its own (ock_reexec)" >&2; return 1; }
	mkdir -p "$dir/etc" "$dir/lib/swtok/TOK_OBJ" "$dir/log" &&
	printf 'version opencryptoki-3.1\nslot %s\n{\nstdll = libpkcs11_sw.so\n}\n' "$OCK_SLOT" \
		>"$dir/etc/opencryptoki.conf" &&
	chgrp -R pkcs11 "$dir/lib" && chmod -R 0770 "$dir/lib" &&
	mount -t tmpfs -o mode=0755 p11km-ock-run /run &&
	mkdir -p /run/lock/opencryptoki/swtok && chgrp -R pkcs11 /run/lock/opencryptoki &&
	chmod -R 0770 /run/lock/opencryptoki &&
	mount --bind "$dir/etc" /etc/opencryptoki &&
	mount --bind "$dir/lib" /var/lib/opencryptoki || {
		echo "ock_start: cannot set up the private directories" >&2
		return 1
	}
	if [ -d /var/log/opencryptoki ]; then mount --bind "$dir/log" /var/log/opencryptoki; fi
	pkcsslotd >"$dir/pkcsslotd.log" 2>&1 </dev/null || {
		echo "ock_start: pkcsslotd failed: $(head -1 "$dir/pkcsslotd.log")" >&2
		return 1
	}
	for i in $(seq 300); do
		[ -S /run/pkcsslotd.socket ] && [ -s /run/pkcsslotd.pid ] && break
		if [ "$i" = 300 ]; then
			echo "ock_start: pkcsslotd did not open its socket" >&2
			return 1
		fi
		sleep 0.01
	done
	export OCK_MODULE=${OCK_MODULE:-$OCK_MODULE_DEFAULT} OCK_SLOT
}

ock_stop()
{
	local pid i
	pid=$(cat /run/pkcsslotd.pid 2>/dev/null) || return 0
	case $pid in '' | *[!0-9]*) return 0 ;; esac
	[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = pkcsslotd ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for i in $(seq 150); do
		[ -d "/proc/$pid" ] || return 0
		[ "$i" = 50 ] && kill -KILL "$pid" 2>/dev/null
		sleep 0.02
	done
	return 1
}
