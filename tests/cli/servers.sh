#!/bin/bash
# The helpers every server test uses (tests/lib/common.sh): a port another
# program holds is never used, a port taken between the choice and the
# server's bind is retried, and a server that fails shows its log.
# Judges: ss (who listens) and python3's own http.server.
. "$top_srcdir/tests/lib/common.sh"

setup() {
	need python3 ss
	BUSY=$(free_port)
	python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(60)' "$BUSY" &
	BUSY_PID=$!
	cleanup_add "kill $BUSY_PID"
	wait_port "$BUSY" "$BUSY_PID" || { echo "cannot hold a port for the test"; exit 99; }
}

http() { python3 -m http.server --bind 127.0.0.1 "$1" & SERVER_PID=$!; }

# a port another program holds is not free: the server starts on another
test_port_held() {
	check_fails "bindable: a port another program listens on is not free" 1 bindable "$BUSY"

	check "a server asked to start on a port another program holds starts on another one" \
		start_server "$T/http.log" 1 http "$BUSY"
	H1=$SERVER_PID
	cleanup_add "kill $H1"
	check "  ... not on the taken port" test "$PORT" != "$BUSY"
	check "  ... and it is the one listening there (ss)" \
		sh -c "ss -ltnpH 'sport = :$PORT' | grep -q 'pid=$H1,'"
}

# server fails with "Address already in use", start_server tries again
late() { # the first try binds the busy port instead of the one it was given
	if [ ! -e "$T/late.once" ]; then : > "$T/late.once"; set -- "$BUSY"; fi
	http "$1"
}

# the port is taken after the check, before the server binds it: the
test_port_taken_late() {
	check "a port taken between the choice and the bind: started again on another" \
		start_server "$T/late.log" 1 late
	H2=$SERVER_PID
	cleanup_add "kill $H2"
	check_grep "  ... after saying so" "taken meanwhile \(try 1\)" "$T/err"
	check "  ... and it holds the new port (ss)" sh -c "ss -ltnpH 'sport = :$PORT' | grep -q 'pid=$H2,'"
}

broken() { echo "nginx: [emerg] cannot load certificate key: engine says no"; return 1; }

# a server that does not start fails the check
test_server_fails() {
	check_fails "a server that does not start fails the check" 1 start_server "$T/broken.log" 1 broken
	check_grep "  ... showing the server's own output" "cannot load certificate key: engine says no" "$T/err"
}

run_tests
