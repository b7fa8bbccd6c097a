/* cli.h: the library half of the command line (src/cli-*.c, the cli layer
 * between op and cmd, doc/HACKING.md): the dispatcher, help and the
 * printed form of the operations' results.  main.c holds the command table
 * and calls p11km_cli_main(); each verb in cmd-*.c parses, calls an
 * operation and prints its result with the functions below. */
#ifndef P11KM_CLI_H
#define P11KM_CLI_H

#include <stdio.h>

#include "p11km/cmd.h"
#include "p11km/op.h"

/* A word that stands for "NOUN WORD" ('p11km renew' is 'p11km track renew'). */
struct p11km_alias {
	const char *word;
	const char *noun;
};

/* The whole run of the binary: the global options, the verb of argv in the
 * table (aliases: {NULL}-terminated, may be NULL), the setup its flags ask
 * for, the verb, and the report of a failure.  Returns the exit status. */
int p11km_cli_main(const struct p11km_noun *nouns, const struct p11km_alias *aliases, int argc,
                   char **argv);

/* --- help (cli-help.c), on the table p11km_cmd_table_use() set ------------------- */

void p11km_cli_usage_main(FILE *fp);
void p11km_cli_usage_noun(FILE *fp, const struct p11km_noun *n);
void p11km_cli_usage_cmd(FILE *fp, const struct p11km_noun *n, const struct p11km_cmd *c);
/* 'p11km help [NOUN [VERB]]', 'p11km help --list-commands' (argv[0] is "help"). */
int p11km_cli_help(int argc, char **argv);
/* The noun (one with verbs) or NULL; the verb of n or NULL; n's default verb. */
const struct p11km_noun *p11km_cli_find_noun(const char *name);
const struct p11km_cmd *p11km_cli_find_verb(const struct p11km_noun *n, const char *verb);
const struct p11km_cmd *p11km_cli_default_verb(const struct p11km_noun *n);
/* The usage error for an unknown noun or verb, with "did you mean". */
int p11km_cli_unknown_noun(const char *word);
int p11km_cli_unknown_verb(const struct p11km_noun *n, const char *word);

/* --- results on stdout (cli-report.c): text, or one JSON document ---------------- */

/* 'req new/renew': the request on stdout (o->out NULL or "-"), or the JSON summary. */
int p11km_req_print(int json, const struct p11km_req_opts *o, const struct p11km_req_result *res);
/* 'audit show': one record as a line of text. */
struct json_t;
void p11km_audit_print_text(struct json_t *rec);

#endif
