# tests/lib/acme.sh: pebble (Debian's ACME test CA) on 127.0.0.1 for the
# ACME tests, sourced after common.sh (it sources certs.sh).
#   acme_setup TOKEN: a SoftHSM2 token TOKEN (PIN in $PIN, URI in $TOK), CA
#     profiles in $CFG, no CA bundle from the environment, and acme_tls_setup
#   acme_tls_setup: $T/tls/{root,cert,key,other}.pem, the TLS certificate of
#     the CA's own endpoint (pebble ships none) and a root that trusts nothing
#   start_pebble LISTEN MGMT: through start_server; from the caller: PNAME,
#     HTTPPORT (where pebble fetches http-01), PEBBLE_ENV (VAR=value...),
#     PEBBLE_JSON (extra members of its config, ', "k": v'), PEBBLE_EAB
#     (true: externalAccountBindingRequired), PEBBLE_DNS (a
#     DNS server ADDR:PORT for the names, pebble-challtestsrv)
#   pebble_get MGMT PATH: a GET on the management port (roots, intermediates,
#     cert-status-by-serial)
#   pebble_up DESCRIPTION: check DESCRIPTION: pebble starts (start_pebble);
#     its ports in P (ACME) and M (management), its root in $T/root.pem

. "$top_srcdir/tests/lib/certs.sh"

acme_setup() {
	softhsm_setup
	new_token "$1"
	PIN=$T/pin-$1
	TOK="pkcs11:token=$1"
	CFG=$T/ca.d
	export P11KM_CONFIG_DIR="$T/not-used"   # every command names --config-dir
	unset CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR 2>/dev/null || true
	acme_tls_setup
}

acme_tls_setup() {
	tls_server "$T/tls" acme
	# a CA file that trusts something else (a TLS failure must be an error)
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
		-keyout "$T/tls/other.key" -out "$T/tls/other.pem" -subj "/CN=unrelated root" 2>/dev/null
}

start_pebble() {
	cat > "$T/$PNAME.json" <<-J
	{"pebble": {"listenAddress": "127.0.0.1:$1", "managementListenAddress": "127.0.0.1:$2",
	 "certificate": "$T/tls/cert.pem", "privateKey": "$T/tls/key.pem",
	 "httpPort": $HTTPPORT, "tlsPort": $(free_port), "ocspResponderURL": "",
	 "externalAccountBindingRequired": ${PEBBLE_EAB:-false} ${PEBBLE_JSON:-}}}
	J
	# shellcheck disable=SC2086
	env PEBBLE_VA_NOSLEEP=1 $PEBBLE_ENV pebble -config "$T/$PNAME.json" \
		${PEBBLE_DNS:+-dnsserver "$PEBBLE_DNS"} > "$T/$PNAME.log" 2>&1 &
	SERVER_PID=$!
	cleanup_add "kill $SERVER_PID"
}

pebble_get() { curl -s --cacert "$T/tls/root.pem" "https://127.0.0.1:$1$2"; }

pebble_up() {
	check "$1" start_server "$T/pebble.srv" 2 start_pebble
	P=${PORTS%% *}
	M=${PORTS#* }
	pebble_get "$M" /roots/0 > "$T/root.pem"
}
