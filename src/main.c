/* main.c: the command table, help and the dispatcher (what every command
 * shares is in cmd-opts.c). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11km/audit.h"
#include "p11km/cmd.h"
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
	{ "ca", "online certificate authorities (ACME): profiles for 'req submit'", p11km_cmds_ca },
	{ "audit", "the audit trail: every change p11km made to tokens and files", p11km_cmds_audit },
	{ "track", "tracked certificates: unattended renewal and status", p11km_cmds_track },
	{ NULL, NULL, NULL },
};

/* --- help ---------------------------------------------------------------- */

static void
print_opts(FILE *fp, const struct p11km_opt *opts)
{
	for (size_t i = 0; opts != NULL && opts[i].name != NULL; i++) {
		char left[64];
		int k = opts[i].key;
		if (p11km_opt_has_short(k))
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
	if (p11km_opts_count(c->opts) > 0) {
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
			for (size_t i = 0; i < p11km_opts_count(c->opts); i++)
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

static const struct p11km_cmd *
default_verb(const struct p11km_noun *n)
{
	for (const struct p11km_cmd *c = n->cmds; c->verb != NULL; c++)
		if (c->flags & P11KM_CMD_DEFAULT)
			return c;
	return NULL;
}

static int
unknown_noun(const char *word)
{
	struct p11km_guess g = { word, NULL, 99 };
	char hint[96];

	for (const struct p11km_noun *n = p11km_nouns; n->name != NULL; n++)
		if (noun_has_verbs(n))
			p11km_guess_try(&g, n->name);
	p11km_guess_try(&g, "help");
	p11km_guess_try(&g, "version");
	return p11km_fail(P11KM_ERR_USAGE, "unknown command '%s'%s; see 'p11km --help'", word,
	                  p11km_guess_text(&g, "", hint, sizeof(hint)));
}

static int
unknown_verb(const struct p11km_noun *n, const char *word)
{
	struct p11km_guess g = { word, NULL, 99 };
	char hint[96], full[80];

	for (const struct p11km_cmd *c = n->cmds; c->verb != NULL; c++)
		p11km_guess_try(&g, c->verb);
	if (g.best != NULL)
		snprintf(full, sizeof(full), "%s %s", n->name, g.best);
	g.best = g.best ? full : NULL;
	return p11km_fail(P11KM_ERR_USAGE, "unknown verb '%s %s'%s; see 'p11km help %s'", n->name,
	                  word, p11km_guess_text(&g, "", hint, sizeof(hint)), n->name);
}

static int
help(int argc, char **argv)
{
	const struct p11km_noun *n;
	const struct p11km_cmd *c = NULL;

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
	const char *audit_log;
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
		case G_AUDIT_LOG: g->audit_log = val; break;
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
	const struct p11km_cmd *c = NULL;
	int r, nargs;
	char what[64], **vargv;

	p11km_cmd_table_use(p11km_nouns);
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
		struct p11km_guess gs = { name, NULL, 99 };
		int bl = (int)strcspn(argv[1], "=");
		if (strncmp(argv[1], "--", 2) == 0 && bl - 2 < (int)sizeof(name))
			snprintf(name, sizeof(name), "%.*s", bl - 2, argv[1] + 2);
		for (const struct p11km_opt *o = p11km_global_opts; name[0] && o->name; o++)
			p11km_guess_try(&gs, o->name);
		return p11km_report(&ctx, p11km_fail(P11KM_ERR_USAGE,
		    "unknown option '%.*s'%s; see 'p11km --help'", bl, argv[1],
		    p11km_guess_text(&gs, "--", hint, sizeof(hint))));
	}
	if (strcmp(argv[1], "version") == 0 && argc == 2) {
		printf("p11km %s\n", PACKAGE_VERSION);
		return 0;
	}
	/* 'p11km renew ...' and 'p11km status ...' are 'p11km track renew/status ...' */
	if (strcmp(argv[1], "renew") == 0 || strcmp(argv[1], "status") == 0) {
		n = find_noun("track");
		c = find_verb(n, argv[1]);
		vargv = argv + 1;
		nargs = argc - 1;
	} else if ((n = find_noun(argv[1])) == NULL) {
		return p11km_report(&ctx, unknown_noun(argv[1]));
	} else {
		vargv = argv + 2;
		nargs = argc - 2;
	}
	if (vargv == argv + 1 && c != NULL) {
		/* an alias: the verb is argv[1] */
	} else if ((argc < 3 || argv[2][0] == '-') && (c = default_verb(n)) != NULL) {
		/* 'p11km audit --since T': the noun's default verb, from the noun on */
		vargv = argv + 1;
		nargs = argc - 1;
	} else if (argc < 3 || argv[2][0] == '-') {
		if (!g.help && ctx.json)
			return p11km_report(&ctx, p11km_fail(P11KM_ERR_USAGE, "'%s' needs a verb; see "
			                    "'p11km help %s'", n->name, n->name));
		usage_noun(g.help ? stdout : stderr, n);
		return g.help ? 0 : P11KM_EXIT_USAGE;
	} else if ((c = find_verb(n, argv[2])) == NULL) {
		return p11km_report(&ctx, unknown_verb(n, argv[2]));
	}
	if (g.help) {
		usage_cmd(stdout, n, c);
		return 0;
	}
	ctx.lock_tokens = (c->flags & P11KM_CMD_CHANGES_TOKEN) != 0;
	snprintf(what, sizeof(what), "%s %s", n->name, c->verb);
	p11km_audit_config(g.audit_log, what);
	/* a command that changes tokens opens its audit log first: a log it
	 * cannot write stops it before it changes anything (the others open it
	 * at their first change, see p11km-audit(1)) */
	if (!ctx.lock_tokens || (r = p11km_audit_ready()) == 0)
		r = c->run(&ctx, c, nargs, vargv);
	p11km_ctx_release(&ctx);
	p11km_audit_close();
	return p11km_report(&ctx, r);
}
