/* cli-help.c: help generated from the command table (p11km --help, help
 * NOUN [VERB], VERB --help), the table for the docs test and completion
 * (help --list-commands), and the "unknown command" errors. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "p11km/cli.h"
#include "p11km/util.h"

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

void
p11km_cli_usage_main(FILE *fp)
{
	fprintf(fp,
	    "Usage: p11km [global options] <noun> <verb> [options] [arguments]\n"
	    "Manage certificates for private keys that stay on PKCS#11 tokens.\n\n"
	    "Commands:\n");
	for (const struct p11km_noun *n = p11km_cmd_table(); n != NULL && n->name != NULL; n++) {
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

void
p11km_cli_usage_noun(FILE *fp, const struct p11km_noun *n)
{
	fprintf(fp, "Usage: p11km %s <verb> [options] [arguments]\n%s.\n\nVerbs:\n", n->name,
	        n->summary);
	for (const struct p11km_cmd *c = n->cmds; c->verb != NULL; c++)
		fprintf(fp, "  %-10s %s\n", c->verb, c->summary);
	fprintf(fp, "\n'p11km %s <verb> --help' for details; man p11km-%s.\n", n->name, n->name);
}

void
p11km_cli_usage_cmd(FILE *fp, const struct p11km_noun *n, const struct p11km_cmd *c)
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
	for (const struct p11km_noun *n = p11km_cmd_table(); n != NULL && n->name != NULL; n++) {
		for (const struct p11km_cmd *c = n->cmds; c != NULL && c->verb != NULL; c++) {
			printf("%s %s", n->name, c->verb);
			for (size_t i = 0; i < p11km_opts_count(c->opts); i++)
				printf(" --%s", c->opts[i].name);
			printf("\n");
		}
	}
}

const struct p11km_noun *
p11km_cli_find_noun(const char *name)
{
	for (const struct p11km_noun *n = p11km_cmd_table(); n != NULL && n->name != NULL; n++)
		if (strcmp(n->name, name) == 0 && noun_has_verbs(n))
			return n;
	return NULL;
}

const struct p11km_cmd *
p11km_cli_find_verb(const struct p11km_noun *n, const char *verb)
{
	for (const struct p11km_cmd *c = n->cmds; c->verb != NULL; c++)
		if (strcmp(c->verb, verb) == 0)
			return c;
	return NULL;
}

const struct p11km_cmd *
p11km_cli_default_verb(const struct p11km_noun *n)
{
	for (const struct p11km_cmd *c = n->cmds; c->verb != NULL; c++)
		if (c->flags & P11KM_CMD_DEFAULT)
			return c;
	return NULL;
}

int
p11km_cli_unknown_noun(const char *word)
{
	struct p11km_guess g = { word, NULL, 99 };
	char hint[96];

	for (const struct p11km_noun *n = p11km_cmd_table(); n != NULL && n->name != NULL; n++)
		if (noun_has_verbs(n))
			p11km_guess_try(&g, n->name);
	p11km_guess_try(&g, "help");
	p11km_guess_try(&g, "version");
	return p11km_fail(P11KM_ERR_USAGE, "unknown command '%s'%s; see 'p11km --help'", word,
	                  p11km_guess_text(&g, "", hint, sizeof(hint)));
}

int
p11km_cli_unknown_verb(const struct p11km_noun *n, const char *word)
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

int
p11km_cli_help(int argc, char **argv)
{
	const struct p11km_noun *n;
	const struct p11km_cmd *c = NULL;

	if (argc < 2) {
		p11km_cli_usage_main(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--list-commands") == 0) {
		list_commands();
		return 0;
	}
	if ((n = p11km_cli_find_noun(argv[1])) == NULL)
		return p11km_cli_unknown_noun(argv[1]);
	if (argc < 3) {
		p11km_cli_usage_noun(stdout, n);
		return 0;
	}
	if ((c = p11km_cli_find_verb(n, argv[2])) == NULL)
		return p11km_cli_unknown_verb(n, argv[2]);
	p11km_cli_usage_cmd(stdout, n, c);
	return 0;
}
