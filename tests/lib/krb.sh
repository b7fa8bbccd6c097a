# tests/lib/krb.sh: a real MIT Kerberos KDC for the shell tests (Debian
# krb5-kdc; kadmin.local from krb5-admin-server; kinit from krb5-user), run
# by the test in the foreground (krb5kdc -n, no systemd, no kadmind) on a
# free TCP port of 127.0.0.1, with its own krb5.conf and kdc.conf in
# $T/krb.  Source after common.sh.
#
# Two realms in one KDC: CORP.TEST, the CA's, with the web server's service
# principal HTTP/127.0.0.1 (libcurl asks GSS-API for the host-based name
# HTTP@HOST of the URL's host; krb5.conf turns DNS canonicalisation and
# reverse lookups off, so 127.0.0.1 stays 127.0.0.1 and no name resolves to
# another address) and the user alice; and OTHER.TEST, with the user bob
# and no trust to CORP.TEST.  Passwords are in 0600 files and reach
# kadmin.local and kinit on standard input, never on a command line.
#
# Exported for this test's processes only: KRB5_CONFIG, KRB5_KDC_PROFILE,
# KRB5CCNAME (FILE:$T/krb/cc, no ticket until krb_kinit).  KRB_KTENV is
# what the service needs (KRB5_KTNAME, and its replay cache in $T/krb).

# krb_conf PORT: krb5.conf and kdc.conf for a KDC on 127.0.0.1:PORT (TCP only).
krb_conf() {
	cat > "$T/krb/krb5.conf" <<EOF
[libdefaults]
	default_realm = CORP.TEST
	dns_lookup_kdc = false
	dns_lookup_realm = false
	dns_canonicalize_hostname = false
	rdns = false
	udp_preference_limit = 1
	spake_preauth_groups = edwards25519
[realms]
	CORP.TEST = {
		kdc = 127.0.0.1:$1
	}
	OTHER.TEST = {
		kdc = 127.0.0.1:$1
	}
EOF
	cat > "$T/krb/kdc.conf" <<EOF
[kdcdefaults]
	kdc_listen = ""
	kdc_tcp_listen = 127.0.0.1:$1
[realms]
	CORP.TEST = {
		database_name = $T/krb/corp.db
		key_stash_file = $T/krb/corp.stash
		acl_file = $T/krb/kadm5.acl
		max_life = 1h
	}
	OTHER.TEST = {
		database_name = $T/krb/other.db
		key_stash_file = $T/krb/other.stash
		acl_file = $T/krb/kadm5.acl
		max_life = 1h
	}
[logging]
	kdc = STDERR
EOF
}

# _kadmin REALM QUERY [PASSWORD-FILE]: kadmin.local, the new principal's
# password (twice, as it asks) from the file on its standard input.
_kadmin() {
	if [ -n "${3:-}" ]; then
		{ cat "$3"; echo; cat "$3"; echo; } | kadmin.local -r "$1" -q "$2"
	else
		kadmin.local -r "$1" -q "$2" < /dev/null
	fi >> "$T/krb/kadmin.log" 2>&1
}

# krb_setup: both realms' databases, the principals, the service keytab
# ($T/krb/http.keytab), the users' password files ($KRB_PW_ALICE,
# $KRB_PW_BOB, $KRB_PW_CAROL: carol is of CORP.TEST but not the CA's user).
krb_setup() {
	mkdir -p "$T/krb" && : > "$T/krb/kadm5.acl" && krb_conf 0 || return 1
	KRB5_CONFIG=$T/krb/krb5.conf KRB5_KDC_PROFILE=$T/krb/kdc.conf KRB5CCNAME=FILE:$T/krb/cc
	export KRB5_CONFIG KRB5_KDC_PROFILE KRB5CCNAME
	KRB_KTENV="KRB5_KTNAME=FILE:$T/krb/http.keytab KRB5RCACHEDIR=$T/krb"
	_mk=$(pin_file krb-master "master-$$")
	KRB_PW_ALICE=$(pin_file krb-alice 'Al1ce-pw')
	KRB_PW_BOB=$(pin_file krb-bob 'B0b-pw')
	KRB_PW_CAROL=$(pin_file krb-carol 'C4rol-pw')
	for _r in CORP.TEST OTHER.TEST; do
		{ cat "$_mk"; echo; cat "$_mk"; echo; } | kdb5_util create -s -r "$_r" \
			>> "$T/krb/kadmin.log" 2>&1 || return 1
	done
	_kadmin CORP.TEST "addprinc alice" "$KRB_PW_ALICE" &&
	_kadmin CORP.TEST "addprinc carol" "$KRB_PW_CAROL" &&
	_kadmin OTHER.TEST "addprinc bob" "$KRB_PW_BOB" &&
	_kadmin CORP.TEST "addprinc -randkey HTTP/127.0.0.1" &&
	_kadmin CORP.TEST "ktadd -k $T/krb/http.keytab HTTP/127.0.0.1" &&
	[ -s "$T/krb/http.keytab" ]
}

# start_kdc PORT: for start_server (log in $T/krb/kdc.log).
start_kdc() {
	krb_conf "$1"
	krb5kdc -n -r CORP.TEST -r OTHER.TEST > "$T/krb/kdc.log" 2>&1 &
	SERVER_PID=$!
	cleanup_add "kill $SERVER_PID"
}

# krb_kinit PRINCIPAL PASSWORD-FILE [CCACHE]: a ticket, the password on
# kinit's standard input.
krb_kinit() {
	KRB5CCNAME=${3:-$KRB5CCNAME} kinit "$1" < "$2" > /dev/null
}
