#!/bin/bash
# Secrets and output (issue 8, section 5): a PIN from env:VAR reaches no
# child process; PIN source text that may be a PIN is never echoed; a PIN
# file that is a FIFO is refused at once; the engine probe never spends a
# PIN try on a PIN p11km has not proved; token init's SO PIN guards hold
# under --force; control characters are escaped in messages and listings.
# Judges: the children's own /proc/PID/environ, the shim's C_Login counts.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/bind.sh"

setup() {
	need certutil openssl pkcs11-tool softhsm2-util timeout
	shim_available || skip_all "the p11shim module is not built"
	USERPIN=c4n4ry95173  # the canary: the token's real PIN, unlike anything else here
	bind_setup
	make_key web 01 EC:prime256v1
	issue_token web 01 web.test 1001
	put_cert web 01 "$T/web-1001.der"
	KEY="$TOKEN;object=web;type=private"
	PROBE=$(dirname "$P11KM")/p11km-engine-probe
}

# child_env_clean NAME FILE: the child ran, got the environment, not the PIN
child_env_clean() {
	check_grep "$1: the child ran and its environment was read" "^P11KM_VISIBLE=visible-marker-8d1f$" "$2"
	check_nogrep "$1: the PIN is not in the child's environment" "$USERPIN" "$2"
	check_nogrep "$1: nor the variable that held it" "^P11KM_CANARY_PIN=" "$2"
}

# 1. a PIN in env:VAR reaches no child
test_env_pin_no_child() {
	# Each child dumps its own /proc/PID/environ (what any root process or the
	# same user can read); a harmless marker proves the dump holds the environment.
	export P11KM_CANARY_PIN=$USERPIN P11KM_VISIBLE=visible-marker-8d1f
	mkdir "$T/bin"
	cat > "$T/bin/certutil" <<EOF
#!/bin/sh
tr '\0' '\n' < /proc/\$\$/environ >> "$T/env-certutil"
exec "$(command -v certutil)" "\$@"
EOF
	cat > "$T/bin/update-ca-certificates" <<EOF
#!/bin/sh
tr '\0' '\n' < /proc/\$\$/environ >> "$T/env-update"
case "\$*" in *--help*) echo "  --sysroot DIR  the root"; exit 0;; esac
exit 0
EOF
	cat > "$T/probe-dump" <<EOF
#!/bin/sh
tr '\0' '\n' < /proc/\$\$/environ >> "$T/env-probe"
exec "$PROBE" "\$@"
EOF
	chmod +x "$T/bin/certutil" "$T/bin/update-ca-certificates" "$T/probe-dump"
	mkdir -p "$T/sysroot/etc/ssl/certs" "$T/sysroot/usr/local/share/ca-certificates"
	PATH="$T/bin:$PATH" "$P11KM" --pin-source env:P11KM_CANARY_PIN roots install "$T/ca/root.pem" \
		--to "nss:$T/nss" >"$T/out" 2>"$T/err"
	child_env_clean "certutil (roots install --to nss:)" "$T/env-certutil"
	PATH="$T/bin:$PATH" "$P11KM" --so-pin-source env:P11KM_CANARY_PIN roots install "$T/ca/root.pem" \
		--to system --system-root "$T/sysroot" >"$T/out" 2>"$T/err"
	child_env_clean "update-ca-certificates (roots install --to system)" "$T/env-update"
	check "bind emit with the PIN from env:" env P11KM_ENGINE_PROBE="$T/probe-dump" "$P11KM" \
		--pin-source env:P11KM_CANARY_PIN bind emit nginx --key "$KEY" --listen 127.0.0.1:8443 \
		--out-dir "$T/b" --pin-file "$T/srv.pin"
	child_env_clean "the engine probe (bind emit)" "$T/env-probe"
	rm -f "$T/env-probe"
	check "bind check with the PIN from env:" env P11KM_ENGINE_PROBE="$T/probe-dump" "$P11KM" \
		--pin-source env:P11KM_CANARY_PIN bind check "$T/b"
	child_env_clean "the engine probe (bind check)" "$T/env-probe"
	unset P11KM_CANARY_PIN
}

# 2. PIN source text that may be the PIN is not echoed
test_source_text_not_echoed() {
	SECRET=86420357
	# SPEC EXIT: a number that is no open fd (1), text that is no number or no
	# variable name (2), a file name without '/' that does not exist (1)
	for case in "fd:$SECRET 1" "fd:${SECRET}x 2" "env:$SECRET 2" "env:$SECRET-x 2" "file:$SECRET 1"; do
		spec=${case% *}
		check_fails "--pin-source ${spec%%:*}:SECRET is an error" "${case#* }" \
			"$P11KM" --pin-source "$spec" object list "$KEY"
		check_one_line_error "  ... in one line" "PIN"
		check_nogrep "  ... that does not echo the secret" "$SECRET" "$T/err"
	done
	check_fails "a URI pin-source=fd:SECRET" 1 "$P11KM" object list "$KEY?pin-source=fd:$SECRET"
	check_nogrep "  ... is not echoed either" "$SECRET" "$T/err"
}

# 5. a PIN file that is a FIFO
test_fifo_pin_file() {
	mkfifo "$T/pin.fifo"
	ln -s "$T/pin.fifo" "$T/pin.link"
	for src in "file:$T/pin.fifo" "file:$T/pin.link"; do
		check_fails "a FIFO as PIN file ($src) is refused, not waited on (timeout: 124)" 1 \
			timeout 20 "$P11KM" --pin-source "$src" object list "$KEY"
		check_one_line_error "  ... in one line saying what it is" "is not a regular file \\(it is a FIFO"
	done
	check_fails "a FIFO as the URI's pin-source" 1 timeout 20 "$P11KM" object list "$KEY?pin-source=$T/pin.fifo"
	check_one_line_error "  ... one line" "FIFO"
	check_fails "a character device as PIN file" 1 timeout 20 "$P11KM" --pin-source file:/dev/zero object list "$KEY"
	check_one_line_error "  ... one line" "is not a regular file \\(it is a character device"
}

probe_logins() { awk '$1 == "C_Login" { n = $2 } END { print n + 0 }' "$T/counts-probe" 2>/dev/null || echo 0; }

# 3. the engine probe's login counts against the budget
test_engine_probe_logins() {
	# p11km and the probe both load the shim; the probe writes its own counts.
	cat > "$T/probe-count" <<EOF
#!/bin/sh
P11SHIM_COUNT_FILE=$T/counts-probe P11SHIM_COUNT_EVERY=1 exec "$PROBE" "\$@"
EOF
	chmod +x "$T/probe-count"
	export P11KM_ENGINE_PROBE="$T/probe-count"
	printf '%s' "$USERPIN" > "$T/good.pin"; chmod 600 "$T/good.pin"
	rm -f "$T/counts-probe"
	check "bind emit through the shim" shim_p11km --pin-source "file:$T/good.pin" bind emit nginx \
		--key "$KEY" --listen 127.0.0.1:8443 --out-dir "$T/s" --pin-file "$T/s.pin"
	check_eq "  ... p11km logs in once" "$(count_of C_Login)" 1
	check_eq "  ... the probe once, with the PIN p11km proved" "$(probe_logins)" 1
	# A PIN file with a newline: p11km strips it, libp11 0.4.12 sends it (a wrong PIN)
	printf '%s\n' "$USERPIN" > "$T/nl.pin"; chmod 600 "$T/nl.pin"
	rm -f "$T/counts-probe"
	check_fails "bind emit with an existing PIN file that ends with a newline" 1 shim_p11km \
		bind emit nginx --key "$KEY" --listen 127.0.0.1:8443 --out-dir "$T/nl" --pin-file "$T/nl.pin"
	check_one_line_error "  ... one line naming the newline" "ends with a newline"
	check_eq "  ... p11km logged in once" "$(count_of C_Login)" 1
	check_eq "  ... the probe did not try the wrong PIN" "$(probe_logins)" 0
	check "  ... and nothing was written" test ! -e "$T/nl"
	rm -f "$T/counts-probe"
	check "bind check of the good binding" shim_p11km bind check "$T/s"
	check_eq "  ... p11km logs in once" "$(count_of C_Login)" 1
	check_eq "  ... the probe once, with the proved PIN" "$(probe_logins)" 1
	# the same binding once its PIN file holds a wrong PIN: one try in all
	# (before: the probe tried it, then p11km did)
	chmod 600 "$T/s.pin"; printf 'wrong-pin' > "$T/s.pin"
	rm -f "$T/counts-probe"
	check_fails "bind check with a wrong PIN in the PIN file: problems (exit 5)" 5 shim_p11km \
		bind check "$T/s"
	check_eq "  ... p11km tried the PIN once" "$(count_of C_Login)" 1
	check_eq "  ... the probe did not try it again" "$(probe_logins)" 0
	check_grep "  ... and says why the engine check did not run" "engine check was not run" "$T/out"
	check_grep "  ... and that the PIN is wrong" "CKR_PIN_INCORRECT" "$T/out"
	# a PIN file with a newline: p11km strips it and logs in, libp11 would not
	printf '%s\n' "$USERPIN" > "$T/s.pin"
	rm -f "$T/counts-probe"
	check_fails "bind check with a newline in the PIN file: problems (exit 5)" 5 shim_p11km \
		bind check "$T/s"
	check_grep "  ... the newline is named" "ends with a newline" "$T/out"
	check_eq "  ... the probe did not try the PIN with its newline" "$(probe_logins)" 0
	# a FIFO in place of the PIN file: reported, not waited on
	chmod 600 "$T/s.pin"; rm -f "$T/s.pin"; mkfifo "$T/s.pin"
	check_fails "bind check with a FIFO as the PIN file: problems, no hang (timeout: 124)" 5 \
		timeout 60 "$P11KM" bind check "$T/s"
	check_grep "  ... says it is not a regular file" "PIN file '$T/s.pin' is not a regular file" "$T/out"
	rm -f "$T/s.pin"; printf '%s' "$USERPIN" > "$T/s.pin"; chmod 400 "$T/s.pin"
	unset P11KM_ENGINE_PROBE
}

# 4. token init --force never tries a locked or final-try SO PIN
test_init_force_so_pin() {
	new_token old 1234 12345678
	SO=$(pin_file sopin-old 12345678); UP=$(pin_file pin-old 1234)
	for fl in CKF_SO_PIN_LOCKED CKF_SO_PIN_FINAL_TRY; do
		export P11SHIM_TOKEN_FLAGS_SET=$fl
		check_fails "token init --force of an initialised token with $fl: refused" 3 \
			shim_p11km --force token init 'pkcs11:token=old' --label old --so-pin-source "file:$SO" \
			--pin-source "file:$UP"
		check_one_line_error "  ... one line saying --force does not override it" "SO PIN.*--force does not override"
		check_eq "  ... C_InitToken never called" "$(count_of C_InitToken)" 0
		check_no_stdout "  ... nothing on stdout"
		unset P11SHIM_TOKEN_FLAGS_SET
	done
	check "the token is as it was: its user PIN still logs in (pkcs11-tool)" \
		p11tool_sm --token-label old --login --pin 1234 --list-objects
	check "without the flags, token init --force works" "$P11KM" --force token init 'pkcs11:token=old' \
		--label old --so-pin-source "file:$SO" --pin-source "file:$UP"
}

# check_no_raw "description" FILE: no ESC, BEL or CR byte in FILE (the
# newlines there are the lines themselves)
check_no_raw() {
	if LC_ALL=C grep -q "[$ESC$(printf '\007\r')]" "$2"; then not_ok "$1"; else ok "$1"; fi
}

# 6. control characters are escaped; addresses are validated
test_control_characters() {
	ESC=$(printf '\033')
	check_fails "an unknown command with a newline and a terminal escape" 2 "$P11KM" \
		"$(printf 'frob\nnicate\033]0;owned\007')" list
	check_one_line_error "  ... one line, escaped" "unknown command 'frob\\\\nnicate\\\\x1b\]0;owned\\\\x07'"
	check_no_raw "  ... no raw control character on stderr" "$T/err"
	check_fails "a module path with a terminal escape" 3 "$P11KM" --module "$(printf '/no\033[2Jpe.so')" token list
	check_one_line_error "  ... one line, escaped" "module '/no\\\\x1b\\[2Jpe.so'"
	check_no_raw "  ... no raw control character on stderr" "$T/err"
	# a token whose label the module reports with control characters (SoftHSM
	# keeps what pkcs11-tool sets)
	softhsm2-util --init-token --free --label "$(printf 'ev\033[31mil\tlabel')" --so-pin 12345678 \
		--pin 1234 >/dev/null 2>&1
	check "token list (text) with a label holding control characters" "$P11KM" token list
	cp "$T/out" "$T/tokens.txt"
	check_grep "  ... the label is escaped" '^    label: +ev\\x1b\[31mil\\tlabel$' "$T/out"
	check_no_raw "  ... no raw control character on stdout" "$T/out"
	check "token list --json keeps the label exact (JSON escapes it)" "$P11KM" --json token list
	check_eq "  ... python reads the same label" \
		"$(json_get "$T/out" "[t['label'] for t in d['tokens'] if t['label'].startswith('ev')][0] == 'ev\x1b[31mil\tlabel'")" True
	check_fails "an error naming that token" 1 "$P11KM" token init "$(grep '^pkcs11:.*token=ev%1B' "$T/tokens.txt" | head -1)" \
		--label x --so-pin-source "file:$SO" --pin-source "file:$UP"
	check_one_line_error "  ... one line, the label escaped" "token 'ev\\\\x1b\[31mil\\\\tlabel' is already initialised"
	check_no_raw "  ... no raw control character on stderr" "$T/err"
	# an object label with a newline
	p11tool_sm --token-label bind --login --pin "$USERPIN" --write-object "$T/web-1001.der" --type cert \
		--label "$(printf 'two\nlines')" --id 77 >/dev/null 2>&1
	check "object list (text) with a label holding a newline" "$P11KM" object list "$TOKEN;id=%77"
	check_grep "  ... the label is one escaped line" '^    label: +two\\nlines$' "$T/out"
	check_nogrep "  ... no line starts with the label's second half" '^lines' "$T/out"
	# a NUL in a certificate's CN: the label p11km gives it is not cut at the NUL
	python3 - "$T/nul.pem" <<'PY'
import sys, datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
k = ec.generate_private_key(ec.SECP256R1())
n = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "good.example\x00.evil")])
now = datetime.datetime.utcnow()
c = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(k.public_key())
     .serial_number(77).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=2))
     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
     .sign(k, hashes.SHA256()))
open(sys.argv[1], "wb").write(c.public_bytes(serialization.Encoding.PEM))
PY
	check "roots install of a CA whose CN holds a NUL" "$P11KM" --so-pin-source "file:$T/sopin-bind" \
		roots install "$T/nul.pem" --to "token:$TOKEN"
	check "  ... pkcs11-tool sees its label, the NUL escaped and nothing cut" sh -c \
		"pkcs11-tool --module '$SOFTHSM2_MODULE' --token-label bind --list-objects --type cert | grep -q 'label: *good.example_.evil$'"
	# a store named on the command line with a terminal escape: the report escapes it
	check "roots install into a bundle whose name holds ESC" "$P11KM" roots install "$T/ca/root.pem" \
		--to "pem-bundle:$T/b$(printf '\033')[2Jx.pem"
	check_grep "  ... the report names it escaped" '^pem-bundle:.*/b\\x1b\[2Jx\.pem: 1 added' "$T/out"
	check_no_raw "  ... no raw control character on stdout" "$T/out"
	# --listen: real addresses only
	for bad in 300.1.1.1:443 1.2.3:443 '[::g]:443' '[1.2.3.4]:443' 127.0.0.1:0 '*:65536'; do
		check_fails "bind emit --listen $bad is refused" 2 "$P11KM" bind emit nginx --key "$KEY" \
			--listen "$bad" --pin-file "$T/s.pin"
		check_one_line_error "  ... one line" "invalid --listen '.*': use IP:PORT"
		check_no_stdout "  ... nothing on stdout"
	done
}

run_tests
