#!/bin/bash
# Every command verb (19) against a hostile PKCS#11 module (tests/hostile/README.md)
# in every mode: lengths that grow between the size and the value call, that
# run past the buffer, that never fit, huge and "negative" lengths, handles
# repeated or more than asked for, garbage attribute values and sizes,
# control characters in token info, slot and mechanism counts that change or
# run past the list, signatures longer than their buffer.  Each run ends in
# the correct output or in one clean 'p11km:' line with exit 1-5, never in a
# sanitizer report, a crash or a hang, and never prints a raw control
# character (the tokinfo mode fills the token info with terminal escapes).
# The modes a careful caller survives (a length that changed once,
# duplicates) must give the same output as the real module, judged by the
# module itself and by openssl.
. "$top_srcdir/tests/lib/common.sh"
. "$top_srcdir/tests/lib/bind.sh"

# key_on TOKEN LABEL ID: an EC key pair made by pkcs11-tool; its public key in $T/LABEL.pub.pem
key_on() {
	p11tool_sm --token-label "$1" --login --pin "$USERPIN" --keypairgen --key-type EC:prime256v1 \
		--label "$2" --id "$3" >/dev/null 2>&1
	p11tool_sm --token-label "$1" --read-object --type pubkey --label "$2" -o "$T/$2.pub.der" \
		>/dev/null 2>&1
	openssl pkey -pubin -inform DER -in "$T/$2.pub.der" -out "$T/$2.pub.pem"
}
s_server() { # PORT
	openssl s_server -accept "127.0.0.1:$1" -cert "$T/srv.pem" -key "$T/srv.key" -quiet </dev/null &
	SERVER_PID=$!
}
# verb_run MODE VERB: one p11km run through the hostile module in MODE
verb_run() {
	conf=$SOFTHSM2_CONF
	case $2 in
	token-list) set -- "$1" token list ;;
	object-list) set -- "$1" --pin-source "file:$PIN" object list "$R" ;;
	key-list) set -- "$1" --pin-source "file:$PIN" key list "$R" ;;
	cert-list) set -- "$1" cert list "$R" ;;
	roots-list) set -- "$1" roots list "token:$R" ;;
	object-export) set -- "$1" object export "$R;object=web;type=cert" -o "$T/export-$1.pem" ;;
	object-relabel) set -- "$1" --pin-source "file:$PIN" object relabel \
		"$W;object=r-$1;type=private" --label "s-$1" ;;
	object-delete) set -- "$1" --pin-source "file:$PIN" object delete "$W;object=d-$1;type=cert" ;;
	req-new) set -- "$1" --pin-source "file:$PIN" req new "$R;object=web;type=private" \
		--subject CN=web.test -o "$T/new-$1.csr" ;;
	req-renew) set -- "$1" --pin-source "file:$PIN" req renew "$R;object=web;type=cert" \
		-o "$T/renew-$1.csr" ;;
	bind-verify) set -- "$1" bind verify "127.0.0.1:$PORT" --cert "$R;object=srv;type=cert" ;;
	bind-check) set -- "$1" bind check "$T/bound" ;;
	bind-emit) set -- "$1" --pin-source "file:$PIN" bind emit nginx --key "$R;object=web;type=private" \
		--listen 127.0.0.1:8443 --out-dir "$T/emit-$1" --pin-file "$T/emit-$1.pin" ;;
	key-generate) set -- "$1" --pin-source "file:$PIN" key generate "$W" --label "g-$1" ;;
	cert-install) set -- "$1" --pin-source "file:$PIN" cert install "$T/k-$1.pem" "$W" \
		--ca-file "$T/ca/root.pem" ;;
	roots-install) set -- "$1" --so-pin-source "file:$SOPIN_W" roots install "$T/ca/root.pem" \
		--to "token:$W" ;;
	roots-remove) set -- "$1" --so-pin-source "file:$SOPIN_W" roots remove "$T/ca/root.pem" \
		--from "token:$W" ;;
	token-init) # a token directory of its own per mode: only a free slot in it
		mkdir -p "$T/init-$1"
		sed "s|@TOKENDIR@|$T/init-$1|" "$top_srcdir/tokens/softhsm2/softhsm2.conf.in" \
			> "$T/init-$1.conf"
		conf=$T/init-$1.conf
		set -- "$1" --so-pin-source "file:$SOPIN_W" --pin-source "file:$PIN" token init \
			--label "i-$1" ;;
	token-pin) # the user PIN of the token token-init made
		conf=$T/init-$1.conf
		set -- "$1" --pin-source "file:$PIN" token pin change "pkcs11:token=i-$1" \
			--new-pin-source "file:$T/newpin" ;;
	esac
	_m=$1; shift
	rm -rf "$T/san"; mkdir "$T/san"
	ASAN_OPTIONS="$ASAN_OPTIONS:log_path=$T/san/asan" UBSAN_OPTIONS="log_path=$T/san/ubsan" \
	SOFTHSM2_CONF=$conf P11HOSTILE_MODULE=$SOFTHSM2_MODULE P11HOSTILE_MODE=$_m \
		timeout 30 "$P11KM" --module "$P11HOSTILE" "$@" >"$T/o" 2>"$T/e"
}

setup() {
	need openssl pkcs11-tool timeout
	softhsm_setup
	[ -n "${P11HOSTILE:-}" ] && [ -f "$P11HOSTILE" ] || skip_all "the p11hostile module is not built"

	MODES="grow grow-v240 ok-overlong toosmall-loop huge unavailable garbage garbage-sizes
	find-dup find-extra find-forever slots-change slots-grow slots-overcount slots-dup
	tokinfo mechs-overcount mechs-grow sign-overlong sign-loop keygen-same"
	# modes in which every verb must work as through the real module
	TOLERATED=" grow grow-v240 find-dup slots-change slots-dup "
	VERBS="token-list object-list key-list cert-list roots-list object-export req-new req-renew
	bind-verify bind-check bind-emit key-generate cert-install object-relabel object-delete
	roots-install roots-remove token-init token-pin"

	# two tokens: R is read by the read-only verbs, W is changed
	new_token R "$USERPIN"
	new_token W "$USERPIN"
	PIN=$T/pin-R
	SOPIN_W=$T/sopin-W
	R='pkcs11:token=R'
	W='pkcs11:token=W'
	ca_setup "$T/ca" || { echo "# cannot make the test CA"; exit 99; }
	key_on R web 01
	issue "$T/ca" "$T/web.pub.pem" "$T/web.pem" web.test 1001 server 20 root
	openssl x509 -in "$T/web.pem" -outform DER -out "$T/web.der"
	p11tool_sm --token-label R --login --pin "$USERPIN" --write-object "$T/web.der" --type cert \
		--label web --id 01 >/dev/null 2>&1
	# a certificate the TLS server below serves (its key is a file)
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/srv.key" 2>/dev/null
	openssl pkey -in "$T/srv.key" -pubout -out "$T/srv.pub.pem"
	issue "$T/ca" "$T/srv.pub.pem" "$T/srv.pem" srv.test 2001 server 20 root
	openssl x509 -in "$T/srv.pem" -outform DER -out "$T/srv.der"
	p11tool_sm --token-label R --login --pin "$USERPIN" --write-object "$T/srv.der" --type cert \
		--label srv --id 02 >/dev/null 2>&1
	p11tool_sm --token-label R --login --pin "$USERPIN" --write-object "$T/ca/root.pem" --type cert \
		--label ca >/dev/null 2>&1 || true
	key_on W k 0a
	n=0
	for m in none $MODES; do # per mode: a new certificate for W's key (each install
		n=$((n + 1))      # replaces), a key pair to relabel, a certificate to delete
		issue "$T/ca" "$T/k.pub.pem" "$T/k-$m.pem" k.test $((3000 + n)) server 20 root
		p11tool_sm --token-label W --login --pin "$USERPIN" --keypairgen --key-type EC:prime256v1 \
			--label "r-$m" --id "$(printf '%04x' $((0x100 + n)))" >/dev/null 2>&1
		p11tool_sm --token-label W --login --pin "$USERPIN" --write-object "$T/srv.der" --type cert \
			--label "d-$m" --id "$(printf '%04x' $((0x200 + n)))" >/dev/null 2>&1
	done
	printf 4321 > "$T/newpin"; chmod 600 "$T/newpin"

	start_server "$T/s_server.log" 1 s_server || { echo "# the test TLS server did not start"; exit 99; }
	SERVER=$SERVER_PID
	cleanup_add "kill $SERVER"

	# the binding bind check loads, emitted through the module (its path in openssl.cnf)
	P11HOSTILE_MODULE=$SOFTHSM2_MODULE P11HOSTILE_MODE=none "$P11KM" --module "$P11HOSTILE" \
		bind emit nginx --key "$R;object=web;type=private" --listen "127.0.0.1:$PORT" \
		--out-dir "$T/bound" --pin-file "$T/bound.pin" --pin-source "file:$PIN" >/dev/null 2>"$T/e" ||
		{ cat "$T/e"; echo "# bind emit for the bind check binding failed"; exit 99; }
}

# the real module's answers: every verb works
test_real_module() {
	for v in $VERBS; do
		if verb_run none "$v"; then
			cp "$T/o" "$T/ref-$v.out"
			ok "no misbehaviour: $v works"
		else
			not_ok "no misbehaviour: $v works (exit $?)"; sed 's/^/#   /' "$T/e" | head -5
		fi
	done
}

# the matrix
test_matrix() {
	clean=0; total=0
	for m in $MODES; do
		for v in $VERBS; do
			total=$((total + 1))
			verb_run "$m" "$v"; rc=$?
			errs=$(grep -vc '^p11km: \(warning\|note\):' "$T/e")
			# reports of p11km and of its children (the engine probe) land in
			# $T/san; a crash inside libp11 itself, contained in the probe
			# process, is libp11's and is only noted
			libp11=0
			for f in "$T"/san/*; do
				[ -f "$f" ] && grep -q 'SUMMARY: AddressSanitizer: SEGV .*/engines-3/pkcs11\.so' "$f" &&
					rm -f "$f" && libp11=1
			done
			[ $libp11 = 0 ] || echo "# $m x $v: libp11 crashed in the engine probe (contained; p11km: exit $rc)"
			if [ -n "$(ls "$T/san")" ] || grep -qE 'runtime error|Sanitizer' "$T/e"; then
				verdict="a sanitizer report"; cat "$T"/san/* >> "$T/e" 2>/dev/null
			elif [ $rc = 124 ]; then
				verdict="a hang (killed after 30 s)"
			elif LC_ALL=C grep -q '[[:cntrl:]]' "$T/o" "$T/e"; then
				verdict="raw control characters in what p11km printed"
			elif [ $rc = 0 ] && [ "$errs" = 0 ]; then
				verdict=ok
			elif [ $rc -ge 1 ] && [ $rc -le 5 ] && [ "$errs" = 1 ] && grep -q '^p11km: ' "$T/e" &&
			     { [ ! -s "$T/o" ] || [ "$v.$rc" = bind-check.5 ]; }; then
				verdict=clean # (bind check reports the problems it found on stdout)
			else
				verdict="exit $rc, $errs error lines, $(wc -c < "$T/o") bytes on stdout"
			fi
			# bind emit/check run the engine (libp11) against the module: it is
			# not p11km, so one clean error is all that can be asked of them here
			case $TOLERATED:$v in *" $m "*:bind-emit|*" $m "*:bind-check) ;; *" $m "*)
				if [ "$verdict" != ok ]; then
					verdict="$verdict where the output of the real module was due"
				elif [ -f "$T/ref-$v.out" ] && case $v in *-list) true ;; *) false ;; esac &&
				     ! cmp -s "$T/o" "$T/ref-$v.out"; then
					verdict="other output than the real module's"
				fi ;;
			esac
			case $verdict in
			ok|clean) clean=$((clean + 1)) ;;
			*) echo "# $m x $v: $verdict"; sed 's/^/#   /' "$T/e" | head -20
			   sed 's/^/#   stdout: /' "$T/o" | head -5 ;;
			esac
		done
		# the requests written in a tolerated mode are sound: openssl verifies them
		case $TOLERATED in *" $m "*)
			check "$m: req new wrote a request openssl verifies" \
				openssl req -in "$T/new-$m.csr" -noout -verify
			check "$m: req renew wrote a request for the certificate's subject" sh -c \
				"openssl req -in '$T/renew-$m.csr' -noout -verify -subject | grep -q 'CN = web.test'"
			check "$m: object export wrote the token's certificate" sh -c \
				"openssl x509 -in '$T/export-$m.pem' -outform DER | cmp -s - '$T/web.der'" ;;
		esac
	done
	nmodes=$(echo $MODES | wc -w); nverbs=$(echo $VERBS | wc -w)
	echo "# hostile modes x verbs: $nmodes x $nverbs: clean/total = $clean/$total"
	check_eq "every verb in every hostile mode: correct output or one clean error" "$clean" "$total"
}

# what the module was left holding: nothing damaged
test_left_holding() {
	check "W still holds its key" sh -c "pkcs11-tool --module '$SOFTHSM2_MODULE' --token-label W \
	--login --pin $USERPIN --list-objects --type privkey 2>/dev/null | grep -q 'label: *k\$'"
}

run_tests
