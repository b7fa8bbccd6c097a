#!/bin/sh
# The audit trail (p11km-audit(1)).  Each changing command runs once; its
# new lines, replayed on the objects pkcs11-tool -O listed before, must give
# exactly the objects pkcs11-tool lists after (a line missing, extra or
# wrong fails), and a file change names the file with the SHA-256 sha256sum
# computes.  A failed run (a C_CreateObject that takes effect and reports an
# error, through the shim; a rename that fails mid-commit, through strace)
# logs what it changed and the rollback.  A log that cannot be opened stops
# the change.  The PINs used (canaries) never appear in the log.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

# class|label|id of every object, from pkcs11-tool (the judge)
objs() {
	pkcs11-tool --module "$M" --token-label aud --login --pin "$(cat "$PIN")" -O 2>/dev/null |
	awk '/Object;|Object$/{if(n)print c"|"l"|"id; n=1; id="";l="";
	         c=($1=="Certificate")?"cert":($1=="Private")?"private":($1=="Public")?"public":$1}
	     /^  label:/{sub(/^  label: +/,""); l=$0} /^  ID:/{id=$2}
	     END{if(n)print c"|"l"|"id}' | sort
}
lines() { wc -l < "$LOG" 2>/dev/null || echo 0; }
# changes "description" command...: the command succeeds, and its lines
# (left in $T/new) replay to what pkcs11-tool sees after it
changes() {
	_d=$1; shift
	objs > "$T/before"; _n=$(lines)
	if "$@" >"$T/out" 2>"$T/err"; then ok "$_d"; else not_ok "$_d"; sed 's/^/#   /' "$T/err" | head; fi
	objs > "$T/after"
	tail -n +$((_n + 1)) "$LOG" > "$T/new"
	check "  ... the audit lines are exactly its changes" python3 "$T/replay.py" "$T/before" "$T/after" "$T/new"
	[ -s "$T/out" ] && sed 's/^/#   /' "$T/out" | head -5
	return 0
}
# has "description" PYTHON-CONDITION-ON-r: some new line satisfies it
has() {
	check "$1" python3 -c 'import json, sys
sys.exit(0 if any(eval(sys.argv[1], {"r": json.loads(l)}) for l in open(sys.argv[2])) else 1)' "$2" "$T/new"
}
sha() { sha256sum "$1" | cut -c1-64; }

setup() {
	need openssl pkcs11-tool python3 sha256sum strace certutil
	softhsm_setup
	LOG=$P11KM_AUDIT_LOG
	M=$SOFTHSM2_MODULE
	CANARY=Canary-4417x
	CANARY2=Canary-9023y
	SOCANARY=SoCanary-5561z
	new_token aud "$CANARY" "$SOCANARY"
	PIN=$T/pin-aud
	TOK="pkcs11:token=aud"
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	CA=$T/ca

	cat > "$T/replay.py" <<'EOF'
# replay.py BEFORE AFTER NEWLINES: the log's object changes applied to
# BEFORE give AFTER.  A create that reported an error may have happened
# (a later destroy of it is then fine); rollback lines are replayed too.
import json, sys
from urllib.parse import unquote_to_bytes
def key(uri, label=None, idhex=None):
    attrs = dict(a.split("=", 1) for a in uri[len("pkcs11:"):].split(";") if "=" in a)
    l = label if label is not None else unquote_to_bytes(attrs.get("object", "")).decode()
    i = idhex if idhex is not None else unquote_to_bytes(attrs.get("id", "")).hex()
    return "%s|%s|%s" % (attrs.get("type", "?"), l, i)
state = [l for l in open(sys.argv[1]).read().splitlines() if l]
after = sorted(l for l in open(sys.argv[2]).read().splitlines() if l)
maybe, bad = [], []
for n, line in enumerate(open(sys.argv[3]), 1):
    r = json.loads(line)
    act, obj = r.get("action"), r.get("object")
    if act not in ("create", "destroy", "set") or "file" in r:
        continue
    if obj is None:
        bad.append("line %d: no object URI: %s" % (n, line.strip()))
        continue
    k = key(obj)
    if act == "create":
        (maybe if "error" in r else state).append(k)
    elif "error" in r:
        continue
    elif act == "destroy":
        if k in state: state.remove(k)
        elif k in maybe: maybe.remove(k)
        else: bad.append("line %d: destroys %s, which is not there" % (n, k))
    else:
        new = r.get("new", {})
        nk = key(obj, new.get("label"), new.get("id"))
        if k in state: state.remove(k); state.append(nk)
        else: bad.append("line %d: sets %s, which is not there" % (n, k))
state.sort()
if state != after:
    bad.append("replayed: %s\npkcs11-tool: %s" % (state, after))
print("\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
}

# no change bypasses the trail: only p11-change.c calls what changes a token
test_no_bypass() {
	CHANGING='C_(CreateObject|CopyObject|DestroyObject|SetAttributeValue|GenerateKeyPair|GenerateKey|UnwrapKey|DeriveKey|InitToken|InitPIN|SetPIN)'
	grep -nE "P11KM_CALL\([^,]*, *$CHANGING\b|->$CHANGING *\(" "$top_srcdir"/src/*.c |
		grep -v '^[^:]*/src/p11-change\.c:' > "$T/bypass"
	check_eq "every PKCS#11 call that changes a token goes through change.h" "$(cat "$T/bypass")" ""
}

# token init, key, request, install, relabel, prune, delete, roots
test_lifecycle() {
	check_grep "token init: init-token with the new label" '"action":"init-token".*"new":\{"label":"aud"\}' "$LOG"
	check_grep "token init: init-pin of the token" '"action":"init-pin","token":"pkcs11:[^"]*token=aud"' "$LOG"
	changes "key generate" "$P11KM" key generate "$TOK" --label web --pin-source "file:$PIN"
	has "  ... two creates, public and private" 'r["action"] == "create" and r["class"] == "private" and r["command"] == "key generate"'
	KEY="$TOK;object=web;type=private"
	changes "req new -o FILE" "$P11KM" req new "$KEY" --subject CN=web.test -o "$T/web.csr" --pin-source "file:$PIN"
	has "  ... the request file with its SHA-256" "r['action'] == 'write' and r['file'] == '$T/web.csr' and r['new']['sha256'] == '$(sha "$T/web.csr")' and r['new']['mode'] == '0644'"
	openssl req -in "$T/web.csr" -pubkey -noout > "$T/web.pub"
	issue "$CA" "$T/web.pub" "$T/c1.pem" web.test 0x0b01
	issue "$CA" "$T/web.pub" "$T/c2.pem" web.test 0x0b02
	changes "cert install (first)" "$P11KM" cert install "$T/c1.pem" "$TOK" --pin-source "file:$PIN" \
		--ca-file "$CA/root.pem" --no-verify
	has "  ... the certificate with its SHA-256" "r['action'] == 'create' and r['class'] == 'cert' and r.get('sha256') == '$(fp "$T/c1.pem")'"
	changes "cert install --keep-old (renewal: the old one retired)" "$P11KM" cert install "$T/c2.pem" \
		"$TOK" --keep-old --pin-source "file:$PIN" --ca-file "$CA/root.pem" --no-verify
	has "  ... the old certificate relabelled, with its SHA-256" "r['action'] == 'set' and r.get('sha256') == '$(fp "$T/c1.pem")' and r['new']['label'].startswith('web.retired-')"
	changes "bind emit with a PIN file" "$P11KM" bind emit nginx --key "$KEY" --listen 127.0.0.1:8443 \
		--server-name web.test --out-dir "$T/bind" --pin-file "$T/srv.pin" --pin-source "file:$PIN"
	has "  ... the binding's files written" "r['action'] == 'write' and r.get('file') == '$T/bind/nginx-server.conf' and r['new']['sha256'] == '$(sha "$T/bind/nginx-server.conf")'"
	has "  ... the PIN file written, without a hash of its content" "r['action'] == 'write' and r.get('file') == '$T/srv.pin' and 'sha256' not in r['new'] and r['new']['mode'] == '0400'"
	check_nogrep "  ... the engine trial's scratch files are not changes" 'p11km-bind\.' "$T/new"
	changes "object relabel" "$P11KM" object relabel "$KEY" --label web2 --pin-source "file:$PIN"
	has "  ... old and new label" "r['action'] == 'set' and r['old']['label'] == 'web' and r['new']['label'] == 'web2'"
	changes "cert prune" "$P11KM" cert prune "$TOK" --pin-source "file:$PIN"
	has "  ... the retired certificate destroyed" "r['action'] == 'destroy' and r.get('sha256') == '$(fp "$T/c1.pem")'"
	changes "roots install into the token and a PEM bundle" "$P11KM" roots install "$CA/root.pem" \
		--to "token:$TOK" --to "pem-bundle:$T/bundle.pem" --so-pin-source "file:$T/sopin-aud"
	has "  ... the bundle written, with its SHA-256" "r['action'] == 'write' and r['file'] == '$T/bundle.pem' and r['new']['sha256'] == '$(sha "$T/bundle.pem")'"
	has "  ... the root on the token, with its SHA-256" "r['action'] == 'create' and r.get('sha256') == '$(fp "$CA/root.pem")'"
	old=$(sha "$T/bundle.pem")
	changes "roots remove from the token and the bundle" "$P11KM" roots remove "$CA/root.pem" \
		--from "token:$TOK" --from "pem-bundle:$T/bundle.pem" --so-pin-source "file:$T/sopin-aud"
	has "  ... the bundle replaced: old and new SHA-256" "r.get('file') == '$T/bundle.pem' and r['old']['sha256'] == '$old' and r['new']['sha256'] == '$(sha "$T/bundle.pem")'"
	# an NSS database changes through certutil: the store logs it itself
	n=$(lines)
	check "roots install into an NSS database" "$P11KM" roots install "$CA/root.pem" --to "nss:$T/nss"
	tail -n +$((n + 1)) "$LOG" > "$T/new"
	NICK=$(certutil -L -d "sql:$T/nss" | awk 'NR > 4 { sub(/ +C,,.*$/, ""); print }')
	has "  ... the certificate certutil lists, with its SHA-256" "r['action'] == 'create' and r.get('file') == '$T/nss' and r.get('object') == '$NICK' and r.get('sha256') == '$(fp "$CA/root.pem")'"
	check "roots remove from it" "$P11KM" roots remove "$CA/root.pem" --from "nss:$T/nss"
	tail -n +$((n + 1)) "$LOG" > "$T/new"
	has "  ... the removal" "r['action'] == 'destroy' and r.get('file') == '$T/nss' and r.get('object') == '$NICK' and r.get('sha256') == '$(fp "$CA/root.pem")'"
	changes "object delete --all" "$P11KM" --force object delete "$TOK;object=web2" --all --pin-source "file:$PIN"
	has "  ... the private key destroyed" "r['action'] == 'destroy' and r['class'] == 'private'"
	printf '%s' "$CANARY2" > "$T/newpin"; chmod 600 "$T/newpin"
	check "token pin change" "$P11KM" token pin change "$TOK" --pin-source "file:$PIN" --new-pin-source "file:$T/newpin"
	check_grep "  ... set-pin in the log" '"command":"token pin","action":"set-pin"' "$LOG"
	cp "$T/newpin" "$PIN"
}

# a failed run: the object the token made though it reported an error
test_failed_run() {
	if shim_available; then
		token_keypair "$M" aud "$PIN" f 0f "$T/f.pub" || { echo "keygen failed"; exit 99; }
		issue "$CA" "$T/f.pub" "$T/f.pem" f.test 0x0c01
		objs > "$T/before"; n=$(lines)
		check_fails "cert install: C_CreateObject takes effect, then fails" 3 \
			env P11SHIM_MODULE="$M" P11SHIM_FAIL_FUNC=C_CreateObject P11SHIM_FAIL_AT=1 P11SHIM_FAIL_AFTER=1 \
			P11SHIM_FAIL_RV=CKR_DEVICE_ERROR "$P11KM" --module "$P11SHIM" cert install "$T/f.pem" "$TOK" \
			--pin-source "file:$PIN" --ca-file "$CA/root.pem" --no-verify
		objs > "$T/after"
		tail -n +$((n + 1)) "$LOG" > "$T/new"
		check "  ... its audit lines replay to what pkcs11-tool sees" python3 "$T/replay.py" "$T/before" "$T/after" "$T/new"
		has "  ... the create, with the module's error" "r['action'] == 'create' and r.get('error') == 'CKR_DEVICE_ERROR' and r.get('sha256') == '$(fp "$T/f.pem")'"
		has "  ... and its rollback" "r['action'] == 'destroy' and r.get('rollback') is True and r.get('sha256') == '$(fp "$T/f.pem")'"
	else
		not_ok "the PKCS#11 shim is not built"
	fi
}

# a failed file commit: the first file replaced, the second rename fails
test_failed_commit() {
	"$P11KM" roots install "$CA/root.pem" "$CA/inter.pem" --to "openssl-dir:$T/dir" >/dev/null 2>&1
	rm -f "$T/dir"/*.pem
	"$P11KM" roots install "$CA/root.pem" --to "openssl-dir:$T/dir" >/dev/null 2>&1
	ls -l "$T/dir" > "$T/dir.orig"; n=$(lines)
	# (LeakSanitizer cannot run under ptrace)
	ASAN_OPTIONS=detect_leaks=0 strace -f -o /dev/null -e trace=rename -e inject=rename:error=EIO:when=2 \
		"$P11KM" roots install "$CA/inter.pem" --to "openssl-dir:$T/dir" >/dev/null 2>"$T/err"
	rc=$?
	tail -n +$((n + 1)) "$LOG" > "$T/new"
	check_eq "openssl-dir install with its second rename failing: exit 1" "$rc" 1
	ls -l "$T/dir" > "$T/dir.now"
	check "  ... the directory as before" cmp -s "$T/dir.orig" "$T/dir.now"
	has "  ... the first file changed" "r['action'] in ('write', 'replace') and r.get('file', '').startswith('$T/dir/') and 'rollback' not in r"
	has "  ... and taken back" "r.get('rollback') is True and r.get('file', '').startswith('$T/dir/')"
	check "  ... as many rollback lines as changes" python3 -c 'import json, sys
rs = [json.loads(l) for l in open(sys.argv[1])]
sys.exit(0 if sum(1 for r in rs if r.get("rollback")) == sum(1 for r in rs if not r.get("rollback")) > 0 else 1)' "$T/new"
}

# a log that cannot be opened: nothing changes
test_log_unopenable() {
	mkdir "$T/logdir"
	objs > "$T/before"
	check_fails "key generate with an audit log that is a directory" 1 "$P11KM" --audit-log "$T/logdir" \
		key generate "$TOK" --label nolog --pin-source "file:$PIN"
	check_one_line_error "  ... one line naming the log" "audit log '$T/logdir'.*nothing was changed"
	objs > "$T/after"
	check "  ... the token is unchanged" cmp -s "$T/before" "$T/after"
	: > "$T/open.log"; chmod 666 "$T/open.log"
	check_fails "req new -o with an audit log others may write" 1 env P11KM_AUDIT_LOG="$T/open.log" \
		"$P11KM" req new "$TOK;object=f;type=private" --subject CN=x -o "$T/nolog.csr" --pin-source "file:$PIN"
	check "  ... no request file" test ! -e "$T/nolog.csr"
	ln -s "$LOG" "$T/link.log"
	check_fails "a symbolic link as the log is refused" 1 "$P11KM" --audit-log "$T/link.log" \
		req new "$TOK;object=f;type=private" --subject CN=x -o "$T/nolog.csr" --pin-source "file:$PIN"
}

# a user who may not write /var/log/p11km: the trail in that user's home
test_user_log() {
	if [ "$(id -u)" = 0 ] && ! setpriv --reuid=nobody --regid=nogroup --clear-groups test -w /var/log/p11km 2>/dev/null; then
		mkdir -p "$T/nb/home" && cp "$CA/root.pem" "$T/nb/" && chown -R nobody "$T/nb" && chmod 711 "$T"
		asnobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups env -u P11KM_AUDIT_LOG \
			-u XDG_STATE_HOME HOME="$T/nb/home" "$@"; }
		check "as nobody, no --audit-log: roots install into a PEM bundle" asnobody "$P11KM" roots install \
			"$T/nb/root.pem" --to "pem-bundle:$T/nb/b.pem"
		NBLOG=$T/nb/home/.local/state/p11km/audit.log
		check_grep "  ... recorded in ~/.local/state/p11km/audit.log" "\"user\":\"nobody\".*\"file\":\"$T/nb/b.pem\"" "$NBLOG"
		check_eq "  ... mode 0600, owned by that user" "$(stat -c '%a %U' "$NBLOG")" "600 nobody"
		check "  ... which 'p11km audit' as that user reads" asnobody "$P11KM" audit
		check_grep "  ... the write of the bundle" "nobody 'roots install' write $T/nb/b.pem" "$T/out"
		chmod 700 "$T"
	else
		not_ok "not root, or nobody may write /var/log/p11km: the per-user default is untested"
	fi
}

pinsha() { printf '%s' "$1" | sha256sum | cut -c1-64; }

# the log itself, and 'p11km audit'
test_log_and_audit() {
	check_eq "the log is mode 0600" "$(stat -c %a "$LOG")" 600
	check "every line is one JSON object with time, user, command, action" python3 -c 'import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    assert all(k in r for k in ("time", "user", "uid", "pid", "command", "action")), l' "$LOG"
	check_nogrep "no PIN canary in the log" "$CANARY|$CANARY2|$SOCANARY" "$LOG"
	check_nogrep "  ... nor the SHA-256 of one" "$(pinsha "$CANARY")|$(pinsha "$CANARY2")|$(pinsha "$SOCANARY")" "$LOG"
	check "p11km audit --json" "$P11KM" --json audit
	cp "$T/out" "$T/audit.json"
	check "  ... is the log, record for record" python3 -c 'import json, sys
a = json.load(open(sys.argv[1])); b = [json.loads(l) for l in open(sys.argv[2])]
sys.exit(0 if a == b and a else 1)' "$T/audit.json" "$LOG"
	check "p11km audit show --since 1h" "$P11KM" audit show --since 1h
	check_eq "  ... one line per record" "$(wc -l < "$T/out")" "$(wc -l < "$LOG")"
	check_grep "  ... says time, user, command, action and what" "^20[0-9-]+T[0-9:.]+Z [^ ]+ 'object relabel' set pkcs11:" "$T/out"
	check "p11km audit --since 2099-01-01" "$P11KM" audit --since 2099-01-01
	check_no_stdout "  ... prints nothing"
	check_fails "p11km audit --since soon" 2 "$P11KM" audit --since soon
	check_one_line_error "  ... says the forms"
	printf '{"time":"2026-12-0' >> "$LOG"
	check "a cut last line" "$P11KM" audit
	check_grep "  ... is said, not hidden" "line [0-9]+ of .* is not an audit record" "$T/err"
	check_fails "--audit-log syslog: audit show points to journalctl" 2 "$P11KM" --audit-log syslog audit
	check_one_line_error "  ... one line" "journalctl -t p11km"
}

# syslog: the line reaches /dev/log (a private /dev in a mount namespace)
test_syslog() {
	cat > "$T/syslog.sh" <<'EOF'
set -e
mkdir -p "$T/hostdev"
mount --rbind /dev "$T/hostdev"
mount -t tmpfs tmpfs /dev
for d in null zero urandom random; do touch "/dev/$d"; mount --bind "$T/hostdev/$d" "/dev/$d"; done
python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind("/dev/log"); open(sys.argv[1], "w").close()
s.settimeout(60); open(sys.argv[2], "wb").write(s.recv(65536))' "$T/ready" "$T/syslog.got" &
while [ ! -e "$T/ready" ]; do sleep 0.05; done
"$P11KM" --audit-log syslog object relabel "pkcs11:token=aud;object=f;type=public" --label f2 \
	--pin-source "file:$PIN" >/dev/null
wait
EOF
	if unshare -m true 2>/dev/null; then
		check "--audit-log syslog (in a mount namespace with its own /dev/log)" env T="$T" PIN="$PIN" \
			unshare -m sh "$T/syslog.sh"
		check_grep "  ... one authpriv.notice line from p11km, the JSON record" \
			'^<85>.*p11km\[[0-9]+\]: \{"time":.*"command":"object relabel","action":"set".*"new":\{"label":"f2"\}' "$T/syslog.got"
	elif [ "${CI:-}" = true ]; then
		not_ok "unshare -m is not permitted: the syslog sink is untested"
	else
		echo "# unshare -m is not permitted here: the syslog sink is not tested"
	fi
}

run_tests
