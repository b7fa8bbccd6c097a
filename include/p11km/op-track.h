/* op-track.h: the operations on tracked certificates ('track add/list',
 * src/op-track.c) and the command line's half in the library: the
 * options parsed, the results of these, of renew's and of status's printed
 * (src/cli-track.c, the cli layer).  The operations
 * print nothing on stdout. */
#ifndef P11KM_OP_TRACK_H
#define P11KM_OP_TRACK_H

#include <stddef.h>

#include "p11km/op.h"
#include "p11km/track.h"

/* 'track add CERT-URI': the settings as given on the command line. */
struct p11km_track_add_opts {
	const char *state_dir;      /* NULL: p11km_state_dir(NULL) */
	const char *cert;           /* the certificate's pkcs11: URI */
	const char *id;             /* NULL: from the URI's object label */
	const char *ca, *ca_file, *rekey, *verify, *server_name, *standalone, *webroot;
	const char *renew_before;   /* "DAYS" or "PERCENT%", or NULL */
	const char *prune_after;    /* "DAYS" or "never", or NULL (30) */
	const char *reload;         /* --reload "CMD ARG": split into words as systemd does, or NULL */
	char *const *reload_argv;   /* --reload -- CMD ARG...: each word as is (p11km_track_reload_tail) */
	size_t n_reload_argv;
	const char *bind[P11KM_TRACK_MAX_BIND];
	size_t n_bind;
	int force;                  /* replace the settings of an entry tracked with others */
};

struct p11km_track_add_result {
	int unchanged;              /* tracked already with these settings: nothing written */
	struct p11km_track *t;      /* the entry as saved (or as it was, unchanged) */
};

/* Check the settings (URI names an object, rekey, file:DIR absolute, the
 * bindings' manifests, a tracked PIN source), the module and PIN source
 * of ctx kept as references; write the entry (its state kept when it is
 * replaced with --force). */
int p11km_track_add(struct p11km_ctx *ctx, const struct p11km_track_add_opts *o,
                    struct p11km_track_add_result *res);
void p11km_track_add_result_release(struct p11km_track_add_result *res);

/* '--reload -- CMD ARG...': the words after "--" (borrowed from argv) into
 * *words; argv cut before "--reload" (before getopt and before p11km's
 * global options, which stop at "--" too).  No such tail: *n 0. */
int p11km_track_reload_tail(int *argc, char **argv, char ***words, size_t *n);

/* Every entry of the state directory, sorted by id (free with p11km_track_list_free). */
int p11km_track_list(const char *state_dir, struct p11km_track ***v, size_t *n);
void p11km_track_list_free(struct p11km_track **v, size_t n);

/* --- the command line (cli-track.c) ------------------------------------------ */

/* What the options of 'track ...', 'renew' and 'status' fill: the
 * operations' own structs (their fields named in the option tables with
 * P11KM_OPT_STR(struct p11km_track_args, add.ca) ...), and the rest. */
struct p11km_track_args {
	struct p11km_track_add_opts add;
	struct p11km_renew_opts renew;
	struct p11km_status_opts status;
	const char *state_dir, *hook_timeout, *ca_wait, *warn_days, *prom;
};
#define P11KM_TRACK_OPT_BIND 1000   /* --bind DIR (repeatable) into add.bind */
struct p11km_cmd;
/* argv of cmd into a: '--reload -- CMD ARG...' taken first, --bind
 * collected, --hook-timeout and --warn-days checked as numbers (into renew
 * and status), the positional count checked; the positional arguments as
 * add.cert, renew.ids and status.args; *argi the first of them. */
int p11km_track_args_parse(const struct p11km_cmd *cmd, int argc, char **argv,
                           struct p11km_track_args *a, int *argi);

/* --- printed (cli-track.c): text, or one JSON document under --json -- */

void p11km_track_add_print(const struct p11km_ctx *ctx, const struct p11km_track_add_result *res);
void p11km_track_list_print(const struct p11km_ctx *ctx, struct p11km_track *const *v, size_t n);
void p11km_track_show_print(const struct p11km_track *t);
void p11km_renew_print(const struct p11km_ctx *ctx, const struct p11km_renew_result *res);
void p11km_status_print(const struct p11km_ctx *ctx, const struct p11km_status_result *res);
/* The run's verdict as an error code (0: all fine): renew, a certificate
 * failed; status, for monitoring, something expired (P11KM_ERR_VERIFY, exit
 * 5) or needs looking at (P11KM_ERR_FAILED, exit 1). */
int p11km_renew_verdict(const struct p11km_renew_result *res);
int p11km_status_verdict(const struct p11km_status_result *res);

#endif
