# tests/lib/serve.sh: a real nginx serving what p11km installed and bound
# (sourced after common.sh; tests/lib/bind.sh sources it too).

# open_token_dir USER: let USER reach and read the token store (as bind check advises).
open_token_dir() {
	chmod o+x "$T"
	chgrp -R "$(id -gn "$1")" "$T/tokens"
	chmod -R g+rX "$T/tokens"
	chmod o+r "$T/softhsm2.conf"
}

# nginx_conf N PAGE BINDING-DIR...: an nginx prefix N (html/index.html says
# PAGE) whose nginx.conf runs two workers as nobody and includes the main
# snippet of the first binding and the server snippet of each.
nginx_conf() {
	_n=$1 _page=$2
	shift 2
	mkdir -p "$_n/html"
	echo "$_page" > "$_n/html/index.html"
	chmod -R a+rX "$_n"
	{
		echo "include $1/nginx-main.conf;"
		cat <<EOF
user nobody nogroup;
master_process on;
worker_processes 2;
pid $_n/nginx.pid;
error_log $_n/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $_n/tmp; proxy_temp_path $_n/tmp; fastcgi_temp_path $_n/tmp;
    uwsgi_temp_path $_n/tmp; scgi_temp_path $_n/tmp;
EOF
		for _b in "$@"; do echo "    include $_b/nginx-server.conf;"; done
		echo "}"
	} > "$_n/nginx.conf"
}

# nginx_serves NAME KEY-URI CERT-URI CA-FILE: bind emit nginx for KEY-URI (PIN
# from $PIN) into $T/srv-NAME, nginx (two workers as nobody) on a free port of
# 127.0.0.1, and bind verify that it serves CERT-URI's certificate with a
# chain that verifies to CA-FILE; nginx stopped afterwards.  Checks of its own.
nginx_serves() {
	_sn=$1 _skey=$2 _scert=$3 _sca=$4
	_sb=$T/srv-$_sn _sx=$T/ngx-$_sn
	mkdir -p "$_sx"
	open_token_dir nobody
	check "$_sn: nginx starts with the binding of the installed certificate" \
		start_server "$_sx/error.log" 1 _nginx_serves_start
	cleanup_add "kill \$(cat '$_sx/nginx.pid' 2>/dev/null) 2>/dev/null"
	check "$_sn: bind verify: nginx serves the installed certificate, verified to the CA" \
		"$P11KM" bind verify "127.0.0.1:$PORT" --cert "$_scert" --ca-file "$_sca"
	check_grep "$_sn: ... the same certificate" "same certificate" "$T/out"
	kill "$(cat "$_sx/nginx.pid" 2>/dev/null)" 2>/dev/null || true
}
_nginx_serves_start() {
	"$P11KM" bind emit nginx --key "$_skey" --cert "$_scert" --listen "127.0.0.1:$1" --out-dir "$_sb" \
		--pin-file "$T/srv-$_sn.pin" --pin-source "file:$PIN" --service-user nobody &&
		nginx_conf "$_sx" "$_sn" "$_sb" &&
		OPENSSL_CONF=$_sb/openssl.cnf nginx -p "$_sx" -c "$_sx/nginx.conf"
}
