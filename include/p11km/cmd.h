/* cmd.h: the command table.  Only cmd-*.c, main.c and the cli layer (cli-*.c) read
 * argv and print. */
#ifndef P11KM_CMD_H
#define P11KM_CMD_H

#include <stddef.h>
#include <stdio.h>

#include "p11km/json.h"
#include "p11km/p11.h"

struct p11km_opt {
	const char *name;     /* long name, without "--" */
	int has_arg;          /* 0 no, 1 required */
	int key;              /* value returned by p11km_getopt() */
	const char *argname;  /* "FILE", "HEX" ... */
	const char *help;     /* one line */
};

struct p11km_cmd;
typedef int (*p11km_cmd_fn)(struct p11km_ctx *ctx, const struct p11km_cmd *cmd,
                            int argc, char **argv);

struct p11km_cmd {
	const char *verb;
	const char *args;      /* synopsis after the verb: "[URI]" */
	const char *summary;   /* one line */
	p11km_cmd_fn run;
	const struct p11km_opt *opts; /* terminated by {NULL}; may be NULL */
	int min_args, max_args;       /* positional arguments (-1: no max) */
	unsigned flags;               /* P11KM_CMD_* : what the dispatcher sets up */
};

/* The verb changes tokens: its read-write sessions take the token's lock
 * (ctx->lock_tokens, p11km_token_lock()) before anything is read. */
#define P11KM_CMD_CHANGES_TOKEN 0x1u
/* The verb runs when its noun is given without one ('p11km audit' is
 * 'p11km audit show'). */
#define P11KM_CMD_DEFAULT 0x2u

struct p11km_noun {
	const char *name;
	const char *summary;
	const struct p11km_cmd *cmds; /* terminated by {NULL} */
};

/* What the global options set for the printing of this run (cli-main.c):
 * no layer below cli sees it (the operations get what they need in their
 * options, the log level is util's). */
struct p11km_cli {
	int json;      /* --json: one JSON document on stdout */
	int verbose;   /* --verbose (also p11km_log_verbose_on()) */
	int quiet;     /* --quiet (also p11km_log_quiet_on()) */
};
const struct p11km_cli *p11km_cli(void);
void p11km_cli_use(const struct p11km_cli *c);

/* The command table (main.c). */
extern const struct p11km_noun p11km_nouns[];
/* The global options (cli-opt.c), keys G_*. */
enum { G_MODULE = 1000, G_PIN_SOURCE, G_SO_PIN_SOURCE, G_JSON, G_VERBOSE, G_QUIET, G_TRACE,
       G_FORCE, G_HELP, G_VERSION, G_LOCK_DIR, G_AUDIT_LOG };
extern const struct p11km_opt p11km_global_opts[];
/* Tell the option parser the command table, for the noun in its messages. */
void p11km_cmd_table_use(const struct p11km_noun *nouns);
const struct p11km_noun *p11km_cmd_table(void);

/* Per-noun verb tables (cmd-<noun>.c). */
extern const struct p11km_cmd p11km_cmds_token[];
extern const struct p11km_cmd p11km_cmds_object[];
extern const struct p11km_cmd p11km_cmds_key[];
extern const struct p11km_cmd p11km_cmds_req[];
extern const struct p11km_cmd p11km_cmds_cert[];
extern const struct p11km_cmd p11km_cmds_roots[];
extern const struct p11km_cmd p11km_cmds_bind[];
extern const struct p11km_cmd p11km_cmds_ca[];
extern const struct p11km_cmd p11km_cmds_track[];
extern const struct p11km_cmd p11km_cmds_audit[];

/* Verbs that live in their own files, named in their noun's table. */
int p11km_token_doctor_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc,
                           char **argv);
extern const struct p11km_opt p11km_token_doctor_opts[];
int p11km_key_list_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv);
int p11km_req_submit_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc,
                         char **argv);
extern const struct p11km_opt p11km_req_submit_opts[];
int p11km_ca_roots_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv);
extern const struct p11km_opt p11km_ca_roots_opts[];
int p11km_cert_prune_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc,
                         char **argv);
extern const struct p11km_opt p11km_cert_prune_opts[];
int p11km_cert_revoke_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc,
                          char **argv);
extern const struct p11km_opt p11km_cert_revoke_opts[];
int p11km_cert_list_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv);

/*
 * Command option parsing.  argv[0] is the verb; call until it returns -1.
 * Returns the option's key, or P11KM_ERR_USAGE (message recorded) for an
 * unknown option or missing argument.  On -1, *argi is the index of the
 * first positional argument; positional arguments are moved to the end
 * of argv (GNU permutation).
 */
struct p11km_getopt {
	int argi;
	const char *optarg;
	void *priv;
};
int p11km_getopt(struct p11km_getopt *g, const struct p11km_cmd *cmd, int argc, char **argv);
/* Check positional count against cmd->min_args/max_args (usage error). */
int p11km_check_args(const struct p11km_cmd *cmd, int nargs);
/*
 * Option keys that name a field of an operation's options struct, so that
 * a verb needs no switch: P11KM_OPT_STR(struct x_opts, field) stores the
 * value (a const char *), P11KM_OPT_FLAG(...) sets the int field to 1.
 * p11km_opts_parse() loops p11km_getopt() over such keys into opts and
 * checks the positional count (*argi: the first positional argument); a
 * key of another form is P11KM_ERR_USAGE.
 */
#define P11KM_OPT_STR(type, field) (0x100000 | (int)offsetof(type, field))
#define P11KM_OPT_FLAG(type, field) (0x200000 | (int)offsetof(type, field))
int p11km_opt_set(void *opts, int key, const char *arg);
int p11km_opts_parse(const struct p11km_cmd *cmd, int argc, char **argv, void *opts, int *argi);

/* Options in a {NULL}-terminated table; can key be a short option (-k)? */
size_t p11km_opts_count(const struct p11km_opt *opts);
int p11km_opt_has_short(int key);
/* "Did you mean": try candidates against word, then the text
 * " (did you mean 'PREFIXbest'?)" when one is close (at most 2 edits, and
 * fewer than the word's length), else "". */
struct p11km_guess {
	const char *word;   /* what was typed */
	const char *best;
	size_t dist;
};
void p11km_guess_try(struct p11km_guess *g, const char *cand);
const char *p11km_guess_text(const struct p11km_guess *g, const char *prefix, char *buf,
                             size_t len);

/* Output helpers for commands. */
/* Print "p11km: <message>" for code; returns the exit status. */
int p11km_report(int code);

#endif
