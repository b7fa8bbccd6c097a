#!/bin/bash
# token pin change (user and SO) and token pin init (the SO sets the user
# PIN) on SoftHSM2: PINs from PIN sources only, one login attempt, the
# final-try and locked refusals; judged by pkcs11-tool logging in with the
# PINs afterwards, and by the shim's call counts.
. "$top_srcdir/tests/lib/common.sh"

user_pin_works() { pkcs11-tool --module "$M" --token-label pt --login --pin "$1" -O >/dev/null 2>&1; }
# logs in as SO (and, as a side effect, sets the user PIN to $2)
so_pin_works() { pkcs11-tool --module "$M" --token-label pt --login --login-type so --so-pin "$1" \
	--init-pin --pin "$2" >/dev/null 2>&1; }
pin() { "$P11KM" token pin "$@"; }
# flags_p11km FLAGS ARGS...: p11km through the shim, the token reporting FLAGS
flags_p11km() {
	_f=$1; shift
	export P11SHIM_TOKEN_FLAGS_SET=$_f
	if shim_p11km "$@"; then _rc=0; else _rc=$?; fi
	unset P11SHIM_TOKEN_FLAGS_SET
	return $_rc
}

setup() {
	need pkcs11-tool python3
	softhsm_setup
	new_token pt 1234 12345678
	M=$SOFTHSM2_MODULE
	TOK="pkcs11:token=pt"
	OLD=$T/pin-pt
	SO=$T/sopin-pt
	NEW=$(pin_file new 5678)
	SO2=$(pin_file so2 87654321)
	RESET=$(pin_file reset 2468)
}

# refusals, nothing changed
test_refusals() {
	check_fails "no --new-pin-source" 2 pin change "$TOK" --pin-source "file:$OLD"
	check_one_line_error "  ... one line naming it" "new-pin-source"
	check_fails "an unknown form" 2 pin frob "$TOK" --pin-source "file:$OLD" --new-pin-source "file:$NEW"
	check_fails "no current PIN" 2 pin change "$TOK" --new-pin-source "file:$NEW"
	check_fails "the new PIN from the current PIN's source" 2 pin change "$TOK" \
		--pin-source "file:$OLD" --new-pin-source "file:$OLD"
	check_fails "a PIN on the command line is not a PIN source" 2 pin change "$TOK" \
		--pin-source "file:$OLD" --new-pin-source 5678
	check_nogrep "  ... and the value is not echoed" "5678" "$T/err"
	check "--dry-run reads no PIN (the new PIN file does not exist)" pin change "$TOK" \
		--pin-source "file:$OLD" --new-pin-source "file:$T/nonesuch" --dry-run
	check_grep "  ... says what it would do" "^would change user PIN of pkcs11:" "$T/out"
	check "  ... pkcs11-tool: the old user PIN still works" user_pin_works 1234
	if shim_available; then
		BAD=$(pin_file bad 0000)
		check_fails "a wrong current PIN: exit 3" 3 shim_p11km token pin change "$TOK" \
			--pin-source "file:$BAD" --new-pin-source "file:$NEW"
		check_eq "  ... one C_Login" "$(count_of C_Login)" 1
		check_eq "  ... no C_SetPIN" "$(count_of C_SetPIN)" 0
		check_fails "the token reports the final try: refused without a C_Login" 3 \
			flags_p11km CKF_USER_PIN_FINAL_TRY token pin change "$TOK" \
			--pin-source "file:$OLD" --new-pin-source "file:$NEW"
		check_grep "  ... saying why" "one more wrong user PIN locks it" "$T/err"
		check_eq "  ... no C_Login" "$(count_of C_Login)" 0
		check_fails "a locked user PIN: refused" 3 flags_p11km CKF_USER_PIN_LOCKED \
			token pin change "$TOK" --pin-source "file:$OLD" --new-pin-source "file:$NEW"
		check_eq "  ... no C_Login" "$(count_of C_Login)" 0
	else
		not_ok "the PKCS#11 shim is not built"
	fi
	check "  ... pkcs11-tool: the old user PIN still works" user_pin_works 1234
}

# change the user PIN
test_change_user_pin() {
	check "change the user PIN" pin change "$TOK" --pin-source "file:$OLD" --new-pin-source "file:$NEW"
	check_grep "  ... says so" "^changed the user PIN of pkcs11:.*token=pt" "$T/out"
	check "  ... pkcs11-tool logs in with the new PIN" user_pin_works 5678
	check_fails "  ... and not with the old one" 1 user_pin_works 1234
	check "the new PIN from standard input (fd:0), with --json" sh -c \
		'"$1" --json token pin change "$2" --pin-source "file:$3" --new-pin-source fd:0 < "$4"' _ \
		"$P11KM" "$TOK" "$NEW" "$OLD"
	check_eq "  ... --json" "$(json_get "$T/out" 'd["action"] + "/" + d["pin"] + "/" + str(d["dry_run"])')" \
		"change/user/False"
	check "  ... pkcs11-tool logs in with 1234 again" user_pin_works 1234
}

# change the SO PIN, then the SO sets the user PIN
test_change_so_pin() {
	check "change the SO PIN (--so)" pin change "$TOK" --so --so-pin-source "file:$SO" \
		--new-pin-source "file:$SO2"
	check_fails "  ... pkcs11-tool: the old SO PIN no longer logs in" 1 so_pin_works 12345678 1111
	check "  ... the new SO PIN does" so_pin_works 87654321 1111
	check "token pin init: the SO sets the user PIN" pin init "$TOK" --so-pin-source "file:$SO2" \
		--new-pin-source "file:$RESET"
	check_grep "  ... says so" "^set the user PIN of pkcs11:" "$T/out"
	check "  ... pkcs11-tool logs in with it" user_pin_works 2468
	check_fails "  ... and not with the one before" 1 user_pin_works 1111
	check_fails "token pin init with a wrong SO PIN: exit 3" 3 pin init "$TOK" --so-pin-source "file:$SO" \
		--new-pin-source "file:$NEW"
	check "  ... the user PIN is unchanged" user_pin_works 2468
	check_fails "init --so is refused" 2 pin init "$TOK" --so --so-pin-source "file:$SO2" \
		--new-pin-source "file:$NEW"
	if shim_available; then
		check "--force: the final try is used, with one C_Login" flags_p11km CKF_USER_PIN_FINAL_TRY \
			--force token pin change "$TOK" --pin-source "file:$RESET" --new-pin-source "file:$NEW"
		check_eq "  ... one C_Login" "$(count_of C_Login)" 1
		check_eq "  ... one C_SetPIN" "$(count_of C_SetPIN)" 1
		check "  ... pkcs11-tool logs in with the new PIN" user_pin_works 5678
	fi
}

run_tests
