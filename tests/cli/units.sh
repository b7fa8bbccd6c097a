#!/bin/sh
# The unattended renewal's packaging: 'make install' puts p11km-renew.service
# (its ExecStart the installed binary) and p11km-renew.timer where pkg-config
# systemd says; systemd-analyze verify passes on both (with the installed man
# pages that their Documentation= names); the timer fires twice a day; the
# cron line, run as cron runs it, calls 'p11km renew --all' with the
# environment of /etc/p11km/environment and nothing else; the Ansible
# example passes ansible-playbook --syntax-check and, run twice against this
# machine with p11km on a SoftHSM2 token, tracks the certificate once.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/certs.sh"

setup() {
	need systemd-analyze man python3 ansible-playbook pkg-config pkcs11-tool openssl
	: "${top_builddir:?}"
	UNITDIR=$(pkg-config --variable=systemdsystemunitdir systemd)
	check "pkg-config names systemd's unit directory" test -n "$UNITDIR"
}

# make install
test_make_install() {
	if env MAKEFLAGS= make -s -C "$top_builddir" install DESTDIR="$T/inst" >"$T/install.log" 2>&1; then
		ok "make install DESTDIR=\$T/inst"
	else
		not_ok "make install DESTDIR=\$T/inst"; tail -5 "$T/install.log" | sed 's/^/#   /'
	fi
	SVC=$T/inst$UNITDIR/p11km-renew.service
	TMR=$T/inst$UNITDIR/p11km-renew.timer
	check "the service is installed in $UNITDIR" test -f "$SVC"
	check "the timer is installed in $UNITDIR" test -f "$TMR"
	BIN=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$SVC")
	check "the service runs the installed binary" test -x "$T/inst$BIN"
	check_grep "  ... 'renew --all'" '^ExecStart=[^ ]*/p11km renew --all$' "$SVC"
	MAN=$(dirname "$(dirname "$(find "$T/inst" -path '*/man1/p11km-audit.1' | head -1)")")
}

# systemd-analyze verify
test_systemd_verify() {
	# verify wants ExecStart to exist: a copy of the units that runs the built binary
	mkdir -p "$T/units"
	sed "s|^ExecStart=[^ ]*|ExecStart=$(cd "$top_builddir" && pwd)/p11km|" "$SVC" > "$T/units/p11km-renew.service"
	cp "$TMR" "$T/units/p11km-renew.timer"
	check "systemd-analyze verify p11km-renew.service p11km-renew.timer" \
		env MANPATH="$MAN" systemd-analyze verify "$T/units/p11km-renew.service" "$T/units/p11km-renew.timer"
	check_no_stdout "  ... says nothing"
	sed 's|^ExecStart=[^ ]*|ExecStart=/nonexistent/p11km|' "$T/units/p11km-renew.service" > "$T/units/bad.service"
	check_fails "  ... and fails on a unit whose binary is missing" 1 \
		env MANPATH="$MAN" systemd-analyze verify "$T/units/bad.service"
	rm -f "$T/units/bad.service"
	check_grep "the service is a oneshot" '^Type=oneshot$' "$SVC"
	check_grep "  ... its token environment from /etc/p11km/environment" '^EnvironmentFile=-?/etc/p11km/environment$' "$SVC"
	check_grep "  ... its audit log given" '^Environment=.*P11KM_AUDIT_LOG=/var/log/p11km/audit.log' "$SVC"
	check "  ... writes only its state, log, locks, bindings and token stores" python3 - "$SVC" <<'EOF'
import sys
u = dict()
for l in open(sys.argv[1]):
    if "=" in l and not l.startswith("#"):
        k, v = l.rstrip("\n").split("=", 1)
        u.setdefault(k, []).append(v)
assert u["ProtectSystem"] == ["strict"], u["ProtectSystem"]
rw = " ".join(u["ReadWritePaths"]).split()
assert set(rw) == {"/etc/p11km", "-/var/lib/softhsm", "-/etc/tpm2_pkcs11", "-/var/lib/tpm2-pkcs11"}, rw
assert u["StateDirectory"] == ["p11km"] and u["LogsDirectory"] == ["p11km"], u
assert "AF_UNIX" in u["RestrictAddressFamilies"][0]  # pcscd, p11-kit remote, D-Bus
assert u["NoNewPrivileges"] == ["yes"] and u["DevicePolicy"] == ["closed"]
EOF
	check "the timer: twice a day" env LC_ALL=C systemd-analyze calendar --iterations=2 \
		"$(sed -n 's/^OnCalendar=//p' "$TMR")"
	cp "$T/out" "$T/calendar"
	check "  ... 12 hours apart" python3 - "$T/calendar" <<'EOF'
import re, sys, datetime
ts = re.findall(r"(?:Next elapse|Iter\. #2): \w+ (\S+ \S+)", open(sys.argv[1]).read())
a, b = [datetime.datetime.strptime(t, "%Y-%m-%d %H:%M:%S") for t in ts]
sys.exit(0 if (b - a).total_seconds() == 12 * 3600 else 1)
EOF
	check_grep "  ... with a randomized delay" '^RandomizedDelaySec=[1-9]' "$TMR"
	check_grep "  ... persistent (a missed run runs at boot)" '^Persistent=true$' "$TMR"
}

# the cron line
test_cron() {
	CRON=$top_srcdir/contrib/cron/p11km-renew
	check "the cron file is one job line, five time fields, user root" python3 - "$CRON" "$T/cron.cmd" <<'EOF'
import sys
jobs = [l for l in open(sys.argv[1]) if l.strip() and not l.startswith("#") and "=" not in l.split()[0]]
assert len(jobs) == 1, jobs
f = jobs[0].split(None, 6)
assert f[5] == "root" and len(f) == 7, f
hours = f[1].split(",")
assert len(hours) == 2, f[1]
# cron turns an unescaped % into a newline: every % must be escaped
cmd = f[6].rstrip("\n")
assert "%" not in cmd.replace("\\%", ""), cmd
open(sys.argv[2], "w").write(cmd.replace("\\%", "%"))
EOF
	# run it as cron would (sh -c, cron's PATH), with p11km and sleep stand-ins that
	# record what they got, the systemd test false and the environment file ours
	mkdir -p "$T/bin"
	printf '#!/bin/sh\necho "$*" > "%s/cron.args"; env > "%s/cron.env"\n' "$T" "$T" > "$T/bin/p11km"
	printf '#!/bin/sh\necho "$1" > "%s/cron.sleep"\n' "$T" > "$T/bin/sleep"
	chmod +x "$T/bin/p11km" "$T/bin/sleep"
	printf 'SOFTHSM2_CONF=/etc/softhsm/test.conf\nP11KM_MODULE=softhsm2\n' > "$T/environment"
	sed -e "s|/etc/p11km/environment|$T/environment|g" -e "s|/run/systemd/system|$T/no-systemd|" \
		"$T/cron.cmd" > "$T/cron.sh"
	check "the cron job runs" env -i HOME=/root LOGNAME=root PATH="$T/bin:/usr/bin:/bin" SECRET_FROM_LOGIN=x \
		sh "$T/cron.sh"
	check_eq "  ... 'p11km renew --all'" "$(cat "$T/cron.args" 2>/dev/null)" "renew --all"
	check_grep "  ... with the token environment of the file" '^SOFTHSM2_CONF=/etc/softhsm/test.conf$' "$T/cron.env"
	check_grep "  ... and the audit log" '^P11KM_AUDIT_LOG=/var/log/p11km/audit.log$' "$T/cron.env"
	check "  ... after a delay below an hour" python3 -c 'import sys; n = int(open(sys.argv[1]).read()); sys.exit(0 if 0 <= n < 3600 else 1)' "$T/cron.sleep"
	rm -f "$T/cron.args"
	mkdir "$T/no-systemd"
	check "where systemd runs (the timer does it)" env -i PATH="$T/bin:/usr/bin:/bin" sh "$T/cron.sh"
	check "  ... the cron job does nothing" test ! -e "$T/cron.args"
}

# the Ansible example
test_ansible() {
	PLAY=$top_srcdir/contrib/ansible/p11km-track.yml
	printf 'localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n' > "$T/inventory"
	export ANSIBLE_LOCAL_TEMP="$T/ansible-tmp" ANSIBLE_HOME="$T/ansible" ANSIBLE_NOCOLOR=1
	check "ansible-playbook --syntax-check" ansible-playbook -i "$T/inventory" --syntax-check "$PLAY"
	# run it on this machine, twice, with p11km itself on a SoftHSM2 token
	softhsm_setup
	new_token fleet
	ca_setup "$T/ca" || { echo "cannot make the test CA"; exit 99; }
	token_keypair "$SOFTHSM2_MODULE" fleet "$T/pin-fleet" www 0a "$T/www.pub" || { echo "keygen failed"; exit 99; }
	issue "$T/ca" "$T/www.pub" "$T/www.pem" www.test 0x0a01
	"$P11KM" cert install "$T/www.pem" pkcs11:token=fleet --pin-source "file:$T/pin-fleet" \
		--ca-file "$T/ca/root.pem" --no-verify >/dev/null 2>&1 || { echo "cert install failed"; exit 99; }
	mkdir "$T/state" "$T/reqs"
	cat > "$T/vars.yml" <<EOF
p11km_env:
  SOFTHSM2_CONF: $SOFTHSM2_CONF
  P11KM_MODULE: $SOFTHSM2_MODULE
  P11KM_STATE_DIR: $T/state
  P11KM_AUDIT_LOG: $P11KM_AUDIT_LOG
p11km_certs:
  - cert: "pkcs11:token=fleet;object=www;type=cert"
    ca: "file:$T/reqs"
    ca_file: $T/ca/root.pem
    pin_source: "file:$T/pin-fleet"
    reload: [/bin/true, reload]
EOF
	for run in 1 2; do
		check "ansible-playbook, run $run" ansible-playbook -i "$T/inventory" -e "@$T/vars.yml" \
			-e "p11km=$P11KM" -e ansible_become=false "$PLAY"
		cp "$T/out" "$T/play$run.out"
	done
	check_grep "  ... the first run changed one thing" 'localhost +: ok=[0-9]+ +changed=1 ' "$T/play1.out"
	check_grep "  ... the second run nothing" 'localhost +: ok=[0-9]+ +changed=0 ' "$T/play2.out"
	check "p11km track list" env P11KM_STATE_DIR="$T/state" "$P11KM" --json track list
	cp "$T/out" "$T/tracked.json"
	check "  ... one tracked certificate, the playbook's" python3 -c 'import json, sys
d = json.load(open(sys.argv[1])); d = d.get("tracked", d) if isinstance(d, dict) else d
sys.exit(0 if len(d) == 1 and "object=www" in json.dumps(d) else 1)' "$T/tracked.json"
	check_grep "  ... the play read 'status --json'" 'ok: \[localhost\] => \{' "$T/play2.out"
}

run_tests
