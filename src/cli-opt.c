/* cli-opt.c: the command line's options: the global options' table,
 * option parsing with "did you mean" and the positional argument check,
 * for every verb (the cli layer, doc/HACKING.md). */
#include "config.h"

#include <ctype.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "p11km/cmd.h"
#include "p11km/util.h"

const struct p11km_opt p11km_global_opts[] = {
	{ "module", 1, G_MODULE, "NAME|PATH",
	  "PKCS#11 module: a p11-kit registered name or a path (also P11KM_MODULE)" },
	{ "pin-source", 1, G_PIN_SOURCE, "SPEC", "user PIN from file:PATH, env:VAR, fd:N or prompt" },
	{ "so-pin-source", 1, G_SO_PIN_SOURCE, "SPEC", "security officer PIN, same forms" },
	{ "json", 0, G_JSON, NULL, "machine-readable output (schemas in the man pages)" },
	{ "verbose", 0, G_VERBOSE, NULL, "say more about what is done (-v)" },
	{ "quiet", 0, G_QUIET, NULL, "no notes or warnings, errors only (-q)" },
	{ "trace", 0, G_TRACE, NULL, "log every PKCS#11 call and its result (never PINs)" },
	{ "force", 0, G_FORCE, NULL, "override safety refusals (see each command)" },
	{ "lock-dir", 1, G_LOCK_DIR, "DIR",
	  "directory for token locks (also P11KM_LOCK_DIR; default /run/p11km)" },
	{ "audit-log", 1, G_AUDIT_LOG, "FILE|syslog",
	  "where changes are recorded (also P11KM_AUDIT_LOG; see p11km-audit(1))" },
	{ "help", 0, G_HELP, NULL, "show help (-h)" },
	{ "version", 0, G_VERSION, NULL, "show the version (-V; also 'p11km version')" },
	{ NULL, 0, 0, NULL, NULL },
};


/* The command table, for messages that name a verb's noun (set by main()). */
static const struct p11km_noun *cmd_table;

void
p11km_cmd_table_use(const struct p11km_noun *nouns)
{
	cmd_table = nouns;
}

const struct p11km_noun *
p11km_cmd_table(void)
{
	return cmd_table;
}

/* The run's printing options (set by p11km_cli_main()). */
static struct p11km_cli cli_opts;

void
p11km_cli_use(const struct p11km_cli *c)
{
	cli_opts = *c;
}

const struct p11km_cli *
p11km_cli(void)
{
	return &cli_opts;
}

/* --- option parsing for commands ---------------------------------------- */

size_t
p11km_opts_count(const struct p11km_opt *opts)
{
	size_t n = 0;

	while (opts != NULL && opts[n].name != NULL)
		n++;
	return n;
}

/* --- "did you mean" ------------------------------------------------------- */

/* Edit distance with adjacent transpositions ("lsit" -> "list" is 1);
 * words longer than 32 bytes are not compared. */
static size_t
distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), d[34][34];

	if (la > 32 || lb > 32)
		return 99;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t k = 0; k <= lb; k++)
		d[0][k] = k;
	for (size_t i = 1; i <= la; i++) {
		for (size_t k = 1; k <= lb; k++) {
			size_t c = d[i - 1][k - 1] + (a[i - 1] != b[k - 1]);
			if (d[i - 1][k] + 1 < c)
				c = d[i - 1][k] + 1;
			if (d[i][k - 1] + 1 < c)
				c = d[i][k - 1] + 1;
			if (i > 1 && k > 1 && a[i - 1] == b[k - 2] && a[i - 2] == b[k - 1] &&
			    d[i - 2][k - 2] + 1 < c)
				c = d[i - 2][k - 2] + 1;
			d[i][k] = c;
		}
	}
	return d[la][lb];
}

void
p11km_guess_try(struct p11km_guess *g, const char *cand)
{
	size_t d = distance(g->word, cand);

	if (d < g->dist) {
		g->dist = d;
		g->best = cand;
	}
}

/* " (did you mean 'X'?)" when one candidate is close (at most 2 edits, and
 * fewer than the word's length), else "". */
const char *
p11km_guess_text(const struct p11km_guess *g, const char *prefix, char *buf, size_t len)
{
	if (g->best == NULL || g->dist > 2 || g->dist >= strlen(g->word))
		return "";
	snprintf(buf, len, " (did you mean '%s%s'?)", prefix, g->best);
	return buf;
}

/* The noun whose table holds cmd, for messages. */
static const char *
noun_of(const struct p11km_cmd *cmd)
{
	for (const struct p11km_noun *n = cmd_table; n != NULL && n->name != NULL; n++)
		for (const struct p11km_cmd *c = n->cmds; c != NULL && c->verb != NULL; c++)
			if (c == cmd)
				return n->name;
	return "...";
}

/* Is "--xy" (or "--xy=v") the start of several of the command's options? */
static int
ambiguous(const struct p11km_cmd *cmd, const char *arg)
{
	size_t len, k = 0;

	if (strncmp(arg, "--", 2) != 0)
		return 0;
	arg += 2;
	len = strcspn(arg, "=");
	for (size_t i = 0; i < p11km_opts_count(cmd->opts); i++)
		if (strncmp(cmd->opts[i].name, arg, len) == 0)
			k++;
	return k > 1;
}

int
p11km_opt_has_short(int key)
{
	return key > 0 && key < 128 && isalnum(key);
}

int
p11km_getopt(struct p11km_getopt *g, const struct p11km_cmd *cmd, int argc, char **argv)
{
	size_t n = p11km_opts_count(cmd->opts);
	struct option *lo = calloc(n + 1, sizeof(*lo));
	/* ':' first: report a missing value as ':'; no '+': GNU permutation,
	 * so options may follow the positional arguments. */
	char shorts[128] = ":";
	size_t sl = 1;
	int c, idx = -1;

	if (lo == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		lo[i].name = cmd->opts[i].name;
		lo[i].has_arg = cmd->opts[i].has_arg ? required_argument : no_argument;
		lo[i].val = cmd->opts[i].key;
		/* Only a letter or digit key is also a short option (-o); keys
		 * like 1, 2 ... (an enum) are long-only. */
		if (p11km_opt_has_short(cmd->opts[i].key) && sl + 3 < sizeof(shorts)) {
			shorts[sl++] = (char)cmd->opts[i].key;
			if (cmd->opts[i].has_arg)
				shorts[sl++] = ':';
		}
	}
	shorts[sl] = '\0';
	if (g->priv == NULL) {
		optind = 0; /* glibc: 0 re-initialises getopt's whole state */
		g->priv = (void *)1;
	}
	opterr = 0;
	c = getopt_long(argc, argv, shorts, lo, &idx);
	g->optarg = optarg;
	if (c == -1) {
		g->argi = optind;
		free(lo);
		return -1;
	}
	if (c == '?' || c == ':') {
		char shortopt[3] = { '-', (char)optopt, '\0' };
		/* optopt names a short option; a long one is the argument itself */
		const char *bad = optopt > 0 && optopt < 128 && isalnum(optopt) ? shortopt
		                                                                  : argv[optind - 1];
		const char *noun = noun_of(cmd);
		/* the name only, never "=VALUE": '--pin=1234' must not echo a PIN */
		int bl = (int)strcspn(bad, "=");
		free(lo);
		if (c == ':')
			return p11km_fail(P11KM_ERR_USAGE,
			    "option '%.*s' needs a value; see 'p11km %s %s --help'", bl, bad, noun,
			    cmd->verb);
		if (ambiguous(cmd, bad))
			return p11km_fail(P11KM_ERR_USAGE,
			    "option '%.*s' is ambiguous (it starts several options); see 'p11km %s %s "
			    "--help'", bl, bad, noun, cmd->verb);
		char name[40] = "", hint[96];
		struct p11km_guess gs = { name, NULL, 99 };
		if (strncmp(bad, "--", 2) == 0 && bl - 2 < (int)sizeof(name))
			snprintf(name, sizeof(name), "%.*s", bl - 2, bad + 2);
		for (size_t i = 0; name[0] && i < n; i++)
			p11km_guess_try(&gs, cmd->opts[i].name);
		for (const struct p11km_opt *o = p11km_global_opts; name[0] && o->name; o++)
			p11km_guess_try(&gs, o->name);
		return p11km_fail(P11KM_ERR_USAGE, "unknown option '%.*s'%s; see 'p11km %s %s --help'",
		                  bl, bad, p11km_guess_text(&gs, "--", hint, sizeof(hint)), noun, cmd->verb);
	}
	free(lo);
	return c;
}

int
p11km_check_args(const struct p11km_cmd *cmd, int nargs)
{
	if (nargs < cmd->min_args)
		return p11km_fail(P11KM_ERR_USAGE, "'%s' needs %s; see --help", cmd->verb,
		                  cmd->args ? cmd->args : "arguments");
	if (cmd->max_args >= 0 && nargs > cmd->max_args)
		return p11km_fail(P11KM_ERR_USAGE, "'%s' takes at most %d argument%s (%s); see --help",
		                  cmd->verb, cmd->max_args, cmd->max_args == 1 ? "" : "s",
		                  cmd->args ? cmd->args : "none");
	return 0;
}
int
p11km_opt_set(void *opts, int key, const char *arg)
{
	char *field = (char *)opts + (key & 0xfffff);

	if (key < 0)
		return key;
	if ((key & ~0xfffff) == 0x100000)
		memcpy(field, &arg, sizeof(arg));
	else if ((key & ~0xfffff) == 0x200000)
		*(int *)(void *)field = 1;
	else
		return p11km_fail(P11KM_ERR_USAGE, "unexpected option");
	return 0;
}

int
p11km_opts_parse(const struct p11km_cmd *cmd, int argc, char **argv, void *opts, int *argi)
{
	struct p11km_getopt g = { 0 };
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1)
		if ((r = p11km_opt_set(opts, r, g.optarg)) < 0)
			return r;
	*argi = g.argi;
	return p11km_check_args(cmd, argc - g.argi);
}
