#!/bin/bash
# renew and ARI (RFC 9773 4.2): the renewal time is chosen at random inside
# the window the CA suggests, once, and kept in the entry, so that runs on
# many machines do not renew at the same moment; the CA is not asked again
# before its Retry-After; a window open now is due now.  pebble has no
# renewalInfo: tests/tools/ari-proxy.py, a stand-in in front of it, answers
# the last third of the certificate's life.  And an ACME order still
# processing when the run's --ca-wait is over: the entry waits and the next
# run resumes that order (tests/tools/acme-slow-proxy.py, a stand-in in
# front of pebble, which issues at once).  Judges: the stand-ins' logs (what
# was asked), python (the window from the certificate's own dates).
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/acme.sh"

setup() {
	need pebble openssl python3 curl
	acme_setup ari
	S=$T/st
	CERT="$TOK;object=web;type=cert"
	HTTPPORT=$(free_port)
	PNAME=pebble
	PEBBLE_ENV="PEBBLE_VA_ALWAYS_VALID=1 PEBBLE_WFE_NONCEREJECT=0"
	start_server "$T/pebble.srv" 2 start_pebble || return 1
	P=${PORTS%% *}
	M=${PORTS#* }
	DIRURL="https://127.0.0.1:$P/dir"
	start_server "$T/ari.srv" 1 ari_start || return 1
	ARI=$PORT
	for n in p:"$DIRURL" ari:"https://127.0.0.1:$ARI/dir" ari-now:"https://127.0.0.1:$ARI/now/dir"; do
		"$P11KM" -q ca add "${n%%:*}" --kind acme --directory "${n#*:}" --ca-file "$T/tls/root.pem" \
			--agree-tos --config-dir "$CFG" || return 1
	done
}
ari_start() {
	python3 "$top_srcdir/tests/tools/ari-proxy.py" "$1" "$T/tls/cert.pem" "$T/tls/key.pem" \
		"$DIRURL" "https://127.0.0.1:$M" "$T/tls/root.pem" > "$T/ari.log" 2>&1 &
	SERVER_PID=$!
	cleanup_add "kill $SERVER_PID"
}
asked() { grep -c 'GET /renewal-info/' "$T/ari.log"; }
renew() { "$P11KM" renew --all --state-dir "$S" --config-dir "$CFG" "$@"; }

test_certificate_from_pebble() {
	check "key generate web" "$P11KM" key generate "$TOK" --type ec:p256 --label web --pin-source "file:$PIN"
	check "req new web" "$P11KM" req new "$TOK;object=web;type=private" --subject CN=web.ari.test \
		--san DNS:web.ari.test -o "$T/web.csr" --pin-source "file:$PIN"
	mkdir -p "$T/www"
	pebble_get "$M" /roots/0 > "$T/root.pem"
	check "req submit --install (pebble)" "$P11KM" req submit "$T/web.csr" "$TOK;object=web;type=private" \
		--ca p --webroot "$T/www" --install --verify-ca-file "$T/root.pem" -o "$T/web.pem" \
		--pin-source "file:$PIN" --config-dir "$CFG"
	read -r WSTART WEND <<-EOF
	$(python3 - "$T/web.pem" <<'PY'
import sys
from cryptography import x509
c = x509.load_pem_x509_certificate(open(sys.argv[1], "rb").read())
nb, na = c.not_valid_before_utc, c.not_valid_after_utc
print(int((nb + (na - nb) * 2 / 3).timestamp()), int((na - (na - nb) / 10).timestamp()))
PY
	)
	EOF
	check "the proxy's window for it: the last third of its life" test "$WEND" -gt "$WSTART"
}

test_chosen_once_inside_the_window() {
	for id in a b c; do
		check "track add --id $id --ca ari" "$P11KM" track add "$CERT" --id "$id" --state-dir "$S" \
			--pin-source "file:$PIN" --ca ari --webroot "$T/www"
	done
	check "renew --all: not due" renew
	check_eq "... not due, all three" "$(grep -c ': not due' "$T/out")" 3
	check_eq "the CA was asked once per entry" "$(asked)" 3
	for id in a b c; do
		check "$id: the window is kept in the entry, the time chosen inside it" python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["state"]
start, end = int(sys.argv[2]), int(sys.argv[3])
assert s["ari_start"] == start and s["ari_end"] == end, s
assert start <= s["ari_renew_at"] < end, s
assert s["ari_ca"] == "ari" and s["ari_serial"], s' "$S/track/$id.json" "$WSTART" "$WEND"
	done
	AT_A=$(json_get "$S/track/a.json" 'd["state"]["ari_renew_at"]')
	AT_B=$(json_get "$S/track/b.json" 'd["state"]["ari_renew_at"]')
	AT_C=$(json_get "$S/track/c.json" 'd["state"]["ari_renew_at"]')
	check "three entries chose three times: they do not herd" test "$AT_A" != "$AT_B" -a \
		"$AT_B" != "$AT_C" -a "$AT_A" != "$AT_C"
	check "renew --all again" renew
	check_eq "... the CA is not asked again before its Retry-After (6 hours)" "$(asked)" 3
	check_eq "... and the choice stays" "$(json_get "$S/track/a.json" 'd["state"]["ari_renew_at"]')" "$AT_A"
	check "the next check is the Retry-After from now" python3 -c '
import json, sys, time
s = json.load(open(sys.argv[1]))["state"]
assert abs(s["ari_next_check"] - (time.time() + 21600)) < 300, s' "$S/track/a.json"
}

test_asked_again_keeps_the_choice() {
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1])); d["state"]["ari_next_check"] = 1
json.dump(d, open(sys.argv[1], "w"))' "$S/track/a.json"
	check "renew after the Retry-After (moved into the past)" renew
	check_eq "... the CA is asked again for that entry" "$(asked)" 4
	check_eq "... the same window: the same time" "$(json_get "$S/track/a.json" 'd["state"]["ari_renew_at"]')" \
		"$AT_A"
}

test_window_open_now_is_due() {
	check "track add --force --id a --ca ari-now (a window open now)" "$P11KM" --force track add "$CERT" \
		--id a --state-dir "$S" --pin-source "file:$PIN" --ca ari-now --webroot "$T/www"
	check "renew --dry-run a: due" "$P11KM" --verbose renew a --dry-run --state-dir "$S" --config-dir "$CFG"
	check_grep "... due" '^a: due' "$T/out"
	check_grep "... by the renewal window (ARI)" 'renewal window \(ARI\)' "$T/err"
	check_eq "... asked again: another profile, another answer" "$(grep -c 'GET /now/info/' "$T/ari.log")" 1
}

# --- an order still processing after the run's wait: waiting, resumed -------------
slow_start() {
	python3 "$top_srcdir/tests/tools/acme-slow-proxy.py" "$1" "$T/tls/cert.pem" "$T/tls/key.pem" "$P" \
		"$T/tls/root.pem" 3 > "$T/slow.log" 2>&1 &
	SERVER_PID=$!
	cleanup_add "kill $SERVER_PID"
}

test_order_processing_is_resumed() {
	check "the slow stand-in starts (orders processing for 3 answers)" start_server "$T/slow.srv" 1 slow_start
	check "ca add slow (through it)" "$P11KM" -q ca add slow --kind acme --directory \
		"https://127.0.0.1:$PORT/dir" --ca-file "$T/tls/root.pem" --agree-tos --config-dir "$CFG"
	check "track add --id s --ca slow" "$P11KM" track add "$CERT" --id s --state-dir "$S" \
		--pin-source "file:$PIN" --ca slow --webroot "$T/www" --ca-file "$T/root.pem"
	check "renew --force s --ca-wait 1: the order is still processing" "$P11KM" --force renew s \
		--ca-wait 1 --state-dir "$S" --config-dir "$CFG"
	check_grep "... waiting, the CA holds it" '^s: waiting: CA .slow. holds the request as pending' "$T/out"
	check_eq "... the entry waits" "$(json_get "$S/track/s.json" 'd["state"]["step"]')" waiting
	check_grep "... the order's URL kept for the next run" '"cookie": "https://127.0.0.1:[0-9]+/my-order/' \
		"$(ls "$P11KM_STATE_DIR"/pending/*.json "$S"/pending/*.json 2>/dev/null | head -1)"
	check "renew s: the next run resumes the order" "$P11KM" --json renew s --state-dir "$S" --config-dir "$CFG"
	check_eq "... renewed" "$(json_get "$T/out" 'd[0]["result"]')" renewed
	check_eq "one order only: the second run made none" "$(grep -c 'POST /order-plz' "$T/slow.log")" 1
	check_eq "one finalize only" "$(grep -c 'POST /finalize-order/' "$T/slow.log")" 1
	check_eq "the stand-in said processing three times" "$(grep -c ' processing$' "$T/slow.log")" 3
	check "no pending request is left" sh -c "! ls '$S'/pending/*.json 2>/dev/null | grep -q ."
}

run_tests
