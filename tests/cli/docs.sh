#!/bin/bash
# The documentation agrees with the command table ('p11km help
# --list-commands'): every noun that has verbs has doc/p11km-NOUN.1 naming
# each verb and each of its options; p11km.1 names every global option and
# every noun; no man page mentions an option the table does not have;
# '--help' works for every command and names its options; the exit status
# table of p11km.1 is README's.  Then 'make install' installs the binary,
# the man pages and the bash completion, and the completion completes.
. "$top_srcdir/tests/lib/common.sh"

# Man page text with the roff escapes that matter removed.
mantext() { sed -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' -e 's/\\-/-/g' -e 's/\\e/\\/g' -e 's/\\&//g' "$1"; }
# Every --option a text mentions, one per line.
options_in() { grep -oE -- '--[a-z][a-z0-9-]*[a-z0-9]' | sort -u; }
defined_in() { python3 "$T/defined.py" "$1"; }

setup() {
	need python3
	DOC=$top_srcdir/doc

	check "p11km help --list-commands" "$P11KM" help --list-commands
	cp "$T/out" "$T/table"
	check_grep "the table has the global options" '^global --module ' "$T/table"

	# The options a page documents: those its SYNOPSIS shows and those an
	# option list defines (the first word of the line after .TP or .IP).
	# Options of other tools mentioned in prose are not counted.
	cat > "$T/defined.py" <<'EOF'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
opts, sec = set(), ""
for i, l in enumerate(lines):
    if l.startswith(".SH"):
        sec = l[3:].strip().strip('"')
        continue
    if sec == "SYNOPSIS":
        opts.update(re.findall(r"--[a-z][a-z0-9-]*[a-z0-9]", l))
    elif i > 0 and lines[i - 1].startswith((".TP", ".IP")) and l.startswith("."):
        m = re.match(r"\.[A-Z]+ +\"?(--[a-z][a-z0-9-]*[a-z0-9])", l)
        if m:
            opts.add(m.group(1))
print("\n".join(sorted(opts)))
EOF

	globals=$(sed -n 's/^global //p' "$T/table")
	all_opts=$( (echo "$globals" | tr ' ' '\n'; awk '$1 != "global" { for (i = 3; i <= NF; i++) print $i }' "$T/table") | sort -u)
}

# p11km.1
test_man_p11km() {
	mantext "$DOC/p11km.1" > "$T/p11km.txt"
	missing=""
	for o in $globals; do grep -qE -- "$o([^a-z0-9-]|$)" "$T/p11km.txt" || missing="$missing $o"; done
	check_eq "p11km.1 names every global option" "$missing" ""
	missing=""
	for n in $(awk '$1 != "global" { print $1 }' "$T/table" | sort -u); do
		grep -qE "p11km-$n " "$T/p11km.txt" && grep -qE "^\.(B|TP) *$n\$|^\.B $n\$" "$T/p11km.txt" || missing="$missing $n"
	done
	check_eq "p11km.1 names every noun (its entry and its page)" "$missing" ""
	unknown=""
	for o in $(defined_in "$T/p11km.txt"); do echo "$globals" | tr ' ' '\n' | grep -qx -- "$o" || unknown="$unknown $o"; done
	check_eq "every option p11km.1 documents is a global option" "$unknown" ""
	unknown=""
	for o in $(options_in < "$T/p11km.txt"); do echo "$all_opts" | grep -qx -- "$o" || unknown="$unknown $o"; done
	check_eq "every option p11km.1 mentions exists in the table" "$unknown" ""
	for s in "EXIT STATUS" "ENVIRONMENT" "SEE ALSO" "PIN SOURCES" "URIS" "MODULES" "JSON OUTPUT"; do
		check_grep "p11km.1 has a $s section" "^\.SH \"?$s\"?\$" "$T/p11km.txt"
	done
	check_grep "p11km.1 documents P11KM_MODULE" '^\.B P11KM_MODULE$' "$T/p11km.txt"
	check_grep "p11km.1 documents SOFTHSM2_CONF" '^\.B SOFTHSM2_CONF$' "$T/p11km.txt"

	# The exit status table is README's, row for row.
	cat > "$T/exit.py" <<'EOF'
import re, sys
readme = [(c, m.replace("`", "").strip()) for c, m in
          re.findall(r"^\| (\d) \| (.*?) \|$", open(sys.argv[1]).read(), re.M)]
man = open(sys.argv[2]).read()
sec = man.split(".SH EXIT STATUS", 1)[1].split("\n.SH ", 1)[0]
rows = re.findall(r"^\.TP\n\.B (\d)\n(.*)$", sec, re.M)
if not readme or rows != readme:
    print("# README: %s\n# p11km.1: %s" % (readme, rows))
    sys.exit(1)
EOF
	check "p11km.1's EXIT STATUS table is README's" python3 "$T/exit.py" "$top_srcdir/README.md" "$T/p11km.txt"
	[ -s "$T/out" ] && cat "$T/out"
}

# one page per noun with verbs
test_man_nouns() {
	for n in $(awk '$1 != "global" { print $1 }' "$T/table" | sort -u); do
		page=$DOC/p11km-$n.1
		if [ ! -f "$page" ]; then
			not_ok "doc/p11km-$n.1 exists (noun '$n' has verbs)"
			continue
		fi
		ok "doc/p11km-$n.1 exists"
		mantext "$page" > "$T/page.txt"
		missing=""
		noun_opts=$(echo "$globals" | tr ' ' '\n')
		while read -r _n verb opts; do
			[ "$_n" = "$n" ] || continue
			grep -qE "$n $verb([^a-z0-9-]|\$)" "$T/page.txt" || missing="$missing '$n $verb'"
			for o in $opts; do
				grep -qE -- "$o([^a-z0-9-]|\$)" "$T/page.txt" || missing="$missing $verb:$o"
				noun_opts="$noun_opts
$o"
			done
		done < "$T/table"
		check_eq "p11km-$n.1 names each verb and each option" "$missing" ""
		unknown=""
		for o in $(defined_in "$T/page.txt"); do echo "$noun_opts" | grep -qx -- "$o" || unknown="$unknown $o"; done
		check_eq "every option p11km-$n.1 documents (synopsis, option list) exists for '$n' or is global" "$unknown" ""
		check_grep "p11km.1 refers to p11km-$n(1)" "p11km-$n \(1\)" "$T/p11km.txt"
	done
}

# --help and help for every command
test_help() {
	bad=""
	while read -r n verb opts; do
		[ "$n" = global ] && continue
		if ! "$P11KM" "$n" "$verb" --help > "$T/help" 2>"$T/help.err"; then bad="$bad '$n $verb --help' fails;"; continue; fi
		for o in $opts; do grep -qE -- "$o([^a-z0-9-]|\$)" "$T/help" || bad="$bad '$n $verb --help' lacks $o;"; done
		"$P11KM" help "$n" "$verb" | cmp -s - "$T/help" || bad="$bad 'help $n $verb' differs from --help;"
		[ -s "$T/help.err" ] && bad="$bad '$n $verb --help' writes to stderr;"
	done < "$T/table"
	check_eq "'NOUN VERB --help' exits 0, names every option, equals 'help NOUN VERB'" "$bad" ""
	check "p11km --help" "$P11KM" --help
	missing=""
	for o in $globals; do grep -qE -- "$o([^a-z0-9-]|\$)" "$T/out" || missing="$missing $o"; done
	check_eq "p11km --help names every global option" "$missing" ""
	while read -r n verb opts; do
		[ "$n" = global ] && continue
		grep -qE "^  $n $verb " "$T/out" || missing="$missing '$n $verb'"
	done < "$T/table"
	check_eq "p11km --help lists every command" "$missing" ""
}

# make install
test_make_install() {
	if [ -z "${top_builddir:-}" ] || [ ! -f "$top_builddir/Makefile" ]; then
		not_ok "make install: no build directory (run through make check)"
	elif ! env MAKEFLAGS= make -s -C "$top_builddir" install DESTDIR="$T/inst" >"$T/install.log" 2>&1; then
		not_ok "make install DESTDIR=\$T/inst"; tail -5 "$T/install.log" | sed 's/^/#   /'
	else
		ok "make install DESTDIR=\$T/inst"
		bin=$(find "$T/inst" -path '*/bin/p11km' -type f | head -1)
		check "bin/p11km is installed and runs" "$bin" --version
		for p in p11km p11km-token p11km-object; do
			check "man page $p.1 installed" test -n "$(find "$T/inst" -path "*/man/man1/$p.1" -type f)"
		done
		missing=""
		for n in $(awk '$1 != "global" { print $1 }' "$T/table" | sort -u); do
			[ -n "$(find "$T/inst" -path "*/man/man1/p11km-$n.1" -type f)" ] || missing="$missing p11km-$n.1"
		done
		check_eq "a man page installed for every noun with verbs" "$missing" ""
		check_eq "every token profile is installed (pkgdata/tokens/FAMILY/profile)" \
			"$(cd "$top_srcdir" && ls tokens/*/profile | sort)" \
			"$(cd "$T/inst" && find . -path '*/share/p11km/tokens/*/profile' | sed 's|.*/share/p11km/||' | sort)"
		comp=$(find "$T/inst" -path '*completions/p11km' -type f | head -1)
		check "the bash completion is installed" test -n "$comp"

		# Completion: source it, set COMP_WORDS, call _p11km.
		complete_words() {
			bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _p11km; printf "%s\n" "${COMPREPLY[@]}"' \
				_ "$comp" "$@" 2>/dev/null | sort | tr '\n' ' '
		}
		got=$(complete_words "$bin" "")
		want=$( (echo help; awk '$1 != "global" { print $1 }' "$T/table") | sort -u | tr '\n' ' ')
		check_eq "completion of the noun lists every noun and help" "$got" "$want"
		check_eq "completion of 'to' is token" "$(complete_words "$bin" to)" "token "
		check_eq "completion of 'token ' lists its verbs" "$(complete_words "$bin" token "")" "doctor init list pin "
		check_eq "completion of 'token init --la' is --label" "$(complete_words "$bin" token init --la)" "--label "
		check_eq "completion of '--js' (a global option) is --json" "$(complete_words "$bin" --js)" "--json "
		check_eq "completion after a global option with a value" \
			"$(complete_words "$bin" --module softhsm2 token "")" "doctor init list pin "
		check_eq "completion of 'help ob' is object" "$(complete_words "$bin" help ob)" "object "
		check_eq "completion of 'token pin ' is change and init" "$(complete_words "$bin" token pin "")" "change init "
		check_eq "completion of 'roots install --to ' offers the store kinds" \
			"$(complete_words "$bin" roots install r.pem --to "")" "nss: openssl-dir: pem-bundle: system token: "
		check_eq "completion of 'roots remove --from pem' is pem-bundle:" \
			"$(complete_words "$bin" roots remove r.pem --from pem)" "pem-bundle: "
		mkdir -p "$T/cdir/bundles"
		check_eq "completion of '--to pem-bundle:DIR/b' completes the path" \
			"$(complete_words "$bin" roots install r.pem --to "pem-bundle:$T/cdir/b")" "pem-bundle:$T/cdir/bundles "
		check_eq "completion of 'help token ' lists its verbs" "$(complete_words "$bin" help token "")" "doctor init list pin "
	fi
}

run_tests
