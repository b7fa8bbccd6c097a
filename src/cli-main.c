/* cli-main.c: the run of the binary: the global options (wherever they
 * are in argv), the verb of argv in the command table, the setup the verb's
 * flags ask for, and the one report of a failure.  main.c passes the
 * table. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11km/audit.h"
#include "p11km/cli.h"
#include "p11km/pin.h"
#include "p11km/util.h"

struct globals {
	int help, version, json, verbose, quiet, trace;
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
		case G_JSON: g->json = 1; break;
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
p11km_cli_main(const struct p11km_noun *nouns, const struct p11km_alias *aliases, int argc,
               char **argv)
{
	struct p11km_ctx ctx;
	struct globals g = { 0 };
	struct p11km_cli cli;
	const struct p11km_noun *n;
	const struct p11km_cmd *c = NULL;
	int r, nargs;
	char what[64], **vargv;

	p11km_cmd_table_use(nouns);
	p11km_ctx_init(&ctx);
	r = take_globals(&ctx, &g, &argc, argv);
	cli.json = g.json;
	cli.verbose = g.verbose;
	cli.quiet = g.quiet;
	p11km_cli_use(&cli); /* before any report: '--json --pin 1' fails in JSON */
	if (r < 0)
		return p11km_report(r);
	/* a PIN in an env:VAR source reaches no child process */
	p11km_pin_env_hide(ctx.pin_source_opt);
	p11km_pin_env_hide(ctx.so_pin_source_opt);
	p11km_log_set(g.quiet ? P11KM_LOG_QUIET : g.verbose ? P11KM_LOG_VERBOSE : P11KM_LOG_NORMAL,
	              g.trace);
	if (ctx.module_opt == NULL && getenv("P11KM_MODULE") != NULL && *getenv("P11KM_MODULE"))
		ctx.module_opt = getenv("P11KM_MODULE");
	if (g.version) {
		printf("p11km %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (argc < 2) {
		if (g.help) {
			p11km_cli_usage_main(stdout);
			return 0;
		}
		p11km_cli_usage_main(stderr);
		return P11KM_EXIT_USAGE;
	}
	if (strcmp(argv[1], "help") == 0)
		return p11km_report(p11km_cli_help(argc - 1, argv + 1));
	if (argv[1][0] == '-') {
		char name[40] = "", hint[96];
		struct p11km_guess gs = { name, NULL, 99 };
		int bl = (int)strcspn(argv[1], "=");
		if (strncmp(argv[1], "--", 2) == 0 && bl - 2 < (int)sizeof(name))
			snprintf(name, sizeof(name), "%.*s", bl - 2, argv[1] + 2);
		for (const struct p11km_opt *o = p11km_global_opts; name[0] && o->name; o++)
			p11km_guess_try(&gs, o->name);
		return p11km_report(p11km_fail(P11KM_ERR_USAGE,
		    "unknown option '%.*s'%s; see 'p11km --help'", bl, argv[1],
		    p11km_guess_text(&gs, "--", hint, sizeof(hint))));
	}
	if (strcmp(argv[1], "version") == 0 && argc == 2) {
		printf("p11km %s\n", PACKAGE_VERSION);
		return 0;
	}
	/* 'p11km renew ...' is 'p11km track renew ...': the verb is argv[1] */
	vargv = argv + 2;
	nargs = argc - 2;
	for (const struct p11km_alias *al = aliases; al != NULL && al->word != NULL && c == NULL; al++)
		if (strcmp(argv[1], al->word) == 0 && (n = p11km_cli_find_noun(al->noun)) != NULL &&
		    (c = p11km_cli_find_verb(n, al->word)) != NULL) {
			vargv = argv + 1;
			nargs = argc - 1;
		}
	if (c == NULL && (n = p11km_cli_find_noun(argv[1])) == NULL)
		return p11km_report(p11km_cli_unknown_noun(argv[1]));
	if (c != NULL) {
		/* an alias */
	} else if ((argc < 3 || argv[2][0] == '-') && (c = p11km_cli_default_verb(n)) != NULL) {
		/* 'p11km audit --since T': the noun's default verb, from the noun on */
		vargv = argv + 1;
		nargs = argc - 1;
	} else if (argc < 3 || argv[2][0] == '-') {
		if (!g.help && cli.json)
			return p11km_report(p11km_fail(P11KM_ERR_USAGE, "'%s' needs a verb; see "
			                    "'p11km help %s'", n->name, n->name));
		p11km_cli_usage_noun(g.help ? stdout : stderr, n);
		return g.help ? 0 : P11KM_EXIT_USAGE;
	} else if ((c = p11km_cli_find_verb(n, argv[2])) == NULL) {
		return p11km_report(p11km_cli_unknown_verb(n, argv[2]));
	}
	if (g.help) {
		p11km_cli_usage_cmd(stdout, n, c);
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
	return p11km_report(r);
}
