/* main.c: global options, the command table and the dispatcher. */
#include "config.h"

#include <ctype.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "p11km/cmd.h"
#include "p11km/json.h"
#include "p11km/pin.h"
#include "p11km/util.h"

const struct p11km_noun p11km_nouns[] = {
	{ "token", "list and initialise tokens, change PINs", p11km_cmds_token },
	{ "object", "list, export, delete and relabel keys and certificates", p11km_cmds_object },
	{ "key", "generate keys on a token", p11km_cmds_key },
	{ "req", "certificate requests signed on the token (new, renewal)", p11km_cmds_req },
	{ "cert", "install issued certificates onto tokens and files", p11km_cmds_cert },
	{ "roots", "trusted root certificates in token and file stores", p11km_cmds_roots },
	{ "bind", "server configurations that use token keys, and their checks", p11km_cmds_bind },
	{ NULL, NULL, NULL },
};

enum { G_MODULE = 1000, G_PIN_SOURCE, G_SO_PIN_SOURCE, G_JSON, G_VERBOSE, G_QUIET, G_TRACE,
       G_FORCE, G_HELP, G_VERSION, G_LOCK_DIR };

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
	{ "help", 0, G_HELP, NULL, "show help (-h)" },
	{ "version", 0, G_VERSION, NULL, "show the version (-V; also 'p11km version')" },
	{ NULL, 0, 0, NULL, NULL },
};

/* --- option parsing for commands ---------------------------------------- */

static size_t
count_opts(const struct p11km_opt *opts)
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

struct guess {
	const char *word;   /* what was typed */
	const char *best;
	size_t dist;
};

static void
guess_try(struct guess *g, const char *cand)
{
	size_t d = distance(g->word, cand);

	if (d < g->dist) {
		g->dist = d;
		g->best = cand;
	}
}

/* " (did you mean 'X'?)" when one candidate is close (at most 2 edits, and
 * fewer than the word's length), else "". */
static const char *
guess_text(const struct guess *g, const char *prefix, char *buf, size_t len)
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
	for (const struct p11km_noun *n = p11km_nouns; n->name != NULL; n++)
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
	for (size_t i = 0; i < count_opts(cmd->opts); i++)
		if (strncmp(cmd->opts[i].name, arg, len) == 0)
			k++;
	return k > 1;
}

static int
has_short(int key)
{
	return key > 0 && key < 128 && isalnum(key);
}

int
p11km_getopt(struct p11km_getopt *g, const struct p11km_cmd *cmd, int argc, char **argv)
{
	size_t n = count_opts(cmd->opts);
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
		if (has_short(cmd->opts[i].key) && sl + 3 < sizeof(shorts)) {
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
		struct guess gs = { name, NULL, 99 };
		if (strncmp(bad, "--", 2) == 0 && bl - 2 < (int)sizeof(name))
			snprintf(name, sizeof(name), "%.*s", bl - 2, bad + 2);
		for (size_t i = 0; name[0] && i < n; i++)
			guess_try(&gs, cmd->opts[i].name);
		for (const struct p11km_opt *o = p11km_global_opts; name[0] && o->name; o++)
			guess_try(&gs, o->name);
		return p11km_fail(P11KM_ERR_USAGE, "unknown option '%.*s'%s; see 'p11km %s %s --help'",
		                  bl, bad, guess_text(&gs, "--", hint, sizeof(hint)), noun, cmd->verb);
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
p11km_report(struct p11km_ctx *ctx, int code)
{
	if (code >= 0)
		return P11KM_EXIT_OK;
	fprintf(stderr, "p11km: %s\n", p11km_errmsg(code));
	if (ctx->json && !p11km_json_stdout_done()) {
		/* what a script reads: one object on stdout, the line on stderr */
		struct p11km_json j;
		p11km_json_init(&j, stdout);
		p11km_json_object_begin(&j);
		p11km_json_key(&j, "error");
		p11km_json_object_begin(&j);
		p11km_json_kv_int(&j, "exit", p11km_exit_code(code));
		p11km_json_kv_string(&j, "code", p11km_errname(code));
		p11km_json_kv_string(&j, "message", p11km_errmsg(code));
		p11km_json_object_end(&j);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
	}
	return p11km_exit_code(code);
}

/* --- help ---------------------------------------------------------------- */

static void
print_opts(FILE *fp, const struct p11km_opt *opts)
{
	for (size_t i = 0; opts != NULL && opts[i].name != NULL; i++) {
		char left[64];
		int k = opts[i].key;
		if (has_short(k))
			snprintf(left, sizeof(left), "-%c, --%s%s%s", k, opts[i].name,
			         opts[i].argname ? " " : "", opts[i].argname ? opts[i].argname : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", opts[i].name,
			         opts[i].argname ? " " : "", opts[i].argname ? opts[i].argname : "");
		fprintf(fp, "  %-30s %s\n", left, opts[i].help);
	}
}

static int
noun_has_verbs(const struct p11km_noun *n)
{
	return n->cmds != NULL && n->cmds[0].verb != NULL;
}

static void
usage_main(FILE *fp)
{
	fprintf(fp,
	    "Usage: p11km [global options] <noun> <verb> [options] [arguments]\n"
	    "Manage certificates for private keys that stay on PKCS#11 tokens.\n\n"
	    "Commands:\n");
	for (const struct p11km_noun *n = p11km_nouns; n->name != NULL; n++) {
		if (!noun_has_verbs(n))
			continue;
		for (const struct p11km_cmd *c = n->cmds; c->verb != NULL; c++) {
			char left[48];
			snprintf(left, sizeof(left), "%s %s", n->name, c->verb);
			fprintf(fp, "  %-22s %s\n", left, c->summary);
		}
	}
	fprintf(fp, "\nGlobal options (before the noun or after the verb):\n");
	print_opts(fp, p11km_global_opts);
	fprintf(fp,
	    "\nExit status: 0 ok, 1 failed, 2 usage or invalid input, 3 token, module or login\n"
	    "problem, 4 nothing or several matched, 5 verification failed.\n"
	    "'p11km help <noun> [verb]' or 'p11km <noun> <verb> --help' for details; man p11km.\n");
}

static void
usage_noun(FILE *fp, const struct p11km_noun *n)
{
	fprintf(fp, "Usage: p11km %s <verb> [options] [arguments]\n%s.\n\nVerbs:\n", n->name,
	        n->summary);
	for (const struct p11km_cmd *c = n->cmds; c->verb != NULL; c++)
		fprintf(fp, "  %-10s %s\n", c->verb, c->summary);
	fprintf(fp, "\n'p11km %s <verb> --help' for details; man p11km-%s.\n", n->name, n->name);
}

static void
usage_cmd(FILE *fp, const struct p11km_noun *n, const struct p11km_cmd *c)
{
	fprintf(fp, "Usage: p11km %s %s%s%s [options]\n%s.\n", n->name, c->verb,
	        c->args ? " " : "", c->args ? c->args : "", c->summary);
	if (count_opts(c->opts) > 0) {
		fprintf(fp, "\nOptions:\n");
		print_opts(fp, c->opts);
	}
	fprintf(fp, "\nGlobal options: --module, --pin-source, --so-pin-source, --json, --verbose,\n"
	            "--quiet, --trace, --force (see 'p11km --help').  man p11km-%s.\n", n->name);
}

/* Machine-readable table for the docs test: "noun verb --opt ...". */
static void
list_commands(void)
{
	printf("global");
	for (const struct p11km_opt *o = p11km_global_opts; o->name != NULL; o++)
		printf(" --%s", o->name);
	printf("\n");
	for (const struct p11km_noun *n = p11km_nouns; n->name != NULL; n++) {
		for (const struct p11km_cmd *c = n->cmds; c != NULL && c->verb != NULL; c++) {
			printf("%s %s", n->name, c->verb);
			for (size_t i = 0; i < count_opts(c->opts); i++)
				printf(" --%s", c->opts[i].name);
			printf("\n");
		}
	}
}

static const struct p11km_noun *
find_noun(const char *name)
{
	for (const struct p11km_noun *n = p11km_nouns; n->name != NULL; n++)
		if (strcmp(n->name, name) == 0 && noun_has_verbs(n))
			return n;
	return NULL;
}

static const struct p11km_cmd *
find_verb(const struct p11km_noun *n, const char *verb)
{
	for (const struct p11km_cmd *c = n->cmds; c->verb != NULL; c++)
		if (strcmp(c->verb, verb) == 0)
			return c;
	return NULL;
}

static int
unknown_noun(const char *word)
{
	struct guess g = { word, NULL, 99 };
	char hint[96];

	for (const struct p11km_noun *n = p11km_nouns; n->name != NULL; n++)
		if (noun_has_verbs(n))
			guess_try(&g, n->name);
	guess_try(&g, "help");
	guess_try(&g, "version");
	return p11km_fail(P11KM_ERR_USAGE, "unknown command '%s'%s; see 'p11km --help'", word,
	                  guess_text(&g, "", hint, sizeof(hint)));
}

static int
unknown_verb(const struct p11km_noun *n, const char *word)
{
	struct guess g = { word, NULL, 99 };
	char hint[96], full[80];

	for (const struct p11km_cmd *c = n->cmds; c->verb != NULL; c++)
		guess_try(&g, c->verb);
	if (g.best != NULL)
		snprintf(full, sizeof(full), "%s %s", n->name, g.best);
	g.best = g.best ? full : NULL;
	return p11km_fail(P11KM_ERR_USAGE, "unknown verb '%s %s'%s; see 'p11km help %s'", n->name,
	                  word, guess_text(&g, "", hint, sizeof(hint)), n->name);
}

static int
help(int argc, char **argv)
{
	const struct p11km_noun *n;
	const struct p11km_cmd *c;

	if (argc < 2) {
		usage_main(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--list-commands") == 0) {
		list_commands();
		return 0;
	}
	if ((n = find_noun(argv[1])) == NULL)
		return unknown_noun(argv[1]);
	if (argc < 3) {
		usage_noun(stdout, n);
		return 0;
	}
	if ((c = find_verb(n, argv[2])) == NULL)
		return unknown_verb(n, argv[2]);
	usage_cmd(stdout, n, c);
	return 0;
}

/* --- global options ------------------------------------------------------ */

struct globals {
	int help, version, verbose, quiet, trace;
};

/* "--pin 1234", "--so-pin=...", "-p 1234" (pkcs11-tool's forms): never
 * taken, and never echoed with their value. */
static int
pin_on_command_line(const char *a)
{
	static const char *const forms[] = { "--pin", "--so-pin", "--user-pin", "--pin-value",
	                                     "-p" };
	size_t l = strcspn(a, "=");

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		if (strlen(forms[i]) == l && strncmp(a, forms[i], l) == 0)
			return 1;
	return 0;
}

/* Take the global options out of argv, wherever they are (up to "--"). */
static int
take_globals(struct p11km_ctx *ctx, struct globals *g, int *argc, char **argv)
{
	int out = 1, i;

	for (i = 1; i < *argc; i++) {
		char *a = argv[i];
		const char *val = NULL;
		const struct p11km_opt *o = NULL;

		if (strcmp(a, "--") == 0)
			break;
		if (strcmp(a, "-h") == 0) a = "--help";
		else if (strcmp(a, "-v") == 0) a = "--verbose";
		else if (strcmp(a, "-V") == 0) a = "--version";
		else if (strcmp(a, "-q") == 0) a = "--quiet";
		if (pin_on_command_line(a))
			return p11km_fail(P11KM_ERR_USAGE,
			    "option '%.*s': a PIN never comes from the command line (other users see it in ps "
			    "and shell history); give --%spin-source file:PATH, env:VAR, fd:N or prompt",
			    (int)strcspn(a, "="), a, strncmp(a, "--so", 4) == 0 ? "so-" : "");
		if (strncmp(a, "--", 2) == 0) {
			for (const struct p11km_opt *p = p11km_global_opts; p->name != NULL; p++) {
				size_t l = strlen(p->name);
				if (strncmp(a + 2, p->name, l) == 0 &&
				    (a[2 + l] == '\0' || (a[2 + l] == '=' && p->has_arg))) {
					o = p;
					if (a[2 + l] == '=')
						val = a + 3 + l;
					break;
				}
			}
		}
		if (o == NULL) {
			argv[out++] = argv[i];
			continue;
		}
		if (o->has_arg && val == NULL) {
			if (i + 1 >= *argc)
				return p11km_fail(P11KM_ERR_USAGE, "option '--%s' needs a value", o->name);
			val = argv[++i];
		}
		switch (o->key) {
		case G_MODULE: ctx->module_opt = val; break;
		case G_PIN_SOURCE: ctx->pin_source_opt = val; break;
		case G_SO_PIN_SOURCE: ctx->so_pin_source_opt = val; break;
		case G_JSON: ctx->json = 1; break;
		case G_VERBOSE: g->verbose = 1; break;
		case G_QUIET: g->quiet = 1; break;
		case G_TRACE: g->trace = 1; break;
		case G_FORCE: ctx->force = 1; break;
		case G_LOCK_DIR: ctx->lock_dir_opt = val; break;
		case G_HELP: g->help = 1; break;
		case G_VERSION: g->version = 1; break;
		}
	}
	for (; i < *argc; i++)
		argv[out++] = argv[i];
	argv[out] = NULL;
	*argc = out;
	return 0;
}

int
main(int argc, char **argv)
{
	struct p11km_ctx ctx;
	struct globals g = { 0 };
	const struct p11km_noun *n;
	const struct p11km_cmd *c;
	int r, nargs;

	p11km_ctx_init(&ctx);
	if ((r = take_globals(&ctx, &g, &argc, argv)) < 0)
		return p11km_report(&ctx, r);
	/* a PIN in an env:VAR source reaches no child process */
	p11km_pin_env_hide(ctx.pin_source_opt);
	p11km_pin_env_hide(ctx.so_pin_source_opt);
	p11km_log_set(g.quiet ? P11KM_LOG_QUIET : g.verbose ? P11KM_LOG_VERBOSE : P11KM_LOG_NORMAL,
	              g.trace);
	ctx.verbose = g.verbose;
	ctx.quiet = g.quiet;
	if (ctx.module_opt == NULL && getenv("P11KM_MODULE") != NULL && *getenv("P11KM_MODULE"))
		ctx.module_opt = getenv("P11KM_MODULE");
	if (g.version) {
		printf("p11km %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (argc < 2) {
		if (g.help) {
			usage_main(stdout);
			return 0;
		}
		usage_main(stderr);
		return P11KM_EXIT_USAGE;
	}
	if (strcmp(argv[1], "help") == 0)
		return p11km_report(&ctx, help(argc - 1, argv + 1));
	if (argv[1][0] == '-') {
		char name[40] = "", hint[96];
		struct guess gs = { name, NULL, 99 };
		int bl = (int)strcspn(argv[1], "=");
		if (strncmp(argv[1], "--", 2) == 0 && bl - 2 < (int)sizeof(name))
			snprintf(name, sizeof(name), "%.*s", bl - 2, argv[1] + 2);
		for (const struct p11km_opt *o = p11km_global_opts; name[0] && o->name; o++)
			guess_try(&gs, o->name);
		return p11km_report(&ctx, p11km_fail(P11KM_ERR_USAGE,
		    "unknown option '%.*s'%s; see 'p11km --help'", bl, argv[1],
		    guess_text(&gs, "--", hint, sizeof(hint))));
	}
	if (strcmp(argv[1], "version") == 0 && argc == 2) {
		printf("p11km %s\n", PACKAGE_VERSION);
		return 0;
	}
	if ((n = find_noun(argv[1])) == NULL)
		return p11km_report(&ctx, unknown_noun(argv[1]));
	if (argc < 3 || argv[2][0] == '-') {
		if (!g.help && ctx.json)
			return p11km_report(&ctx, p11km_fail(P11KM_ERR_USAGE, "'%s' needs a verb; see "
			                    "'p11km help %s'", n->name, n->name));
		usage_noun(g.help ? stdout : stderr, n);
		return g.help ? 0 : P11KM_EXIT_USAGE;
	}
	if ((c = find_verb(n, argv[2])) == NULL)
		return p11km_report(&ctx, unknown_verb(n, argv[2]));
	if (g.help) {
		usage_cmd(stdout, n, c);
		return 0;
	}
	nargs = argc - 2;
	ctx.lock_tokens = (c->flags & P11KM_CMD_CHANGES_TOKEN) != 0;
	r = c->run(&ctx, c, nargs, argv + 2);
	p11km_ctx_release(&ctx);
	return p11km_report(&ctx, r);
}
