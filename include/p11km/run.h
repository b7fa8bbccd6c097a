/* run.h: the one way p11km starts another program (util layer).
 *
 * Every child (certutil, update-ca-certificates, p11km-engine-probe, ...)
 * is started here, without a shell, with an environment from which every
 * variable that holds a PIN (an env:VAR PIN source) has been removed.
 * Modelled on OpenSSH's subprocess() (misc.c): one function driven by flags.
 */
#ifndef P11KM_RUN_H
#define P11KM_RUN_H

#include <stddef.h>
#include <sys/types.h>

enum p11km_run_flags {
	P11KM_RUN_PATH = 1 << 0,           /* look argv[0] up in PATH (else a path) */
	P11KM_RUN_CAPTURE_STDOUT = 1 << 1, /* stdout into res->out (else /dev/null) */
	P11KM_RUN_STDERR_DISCARD = 1 << 2, /* stderr to /dev/null (else captured) */
	P11KM_RUN_DROP_PRIV = 1 << 3,      /* run as opts->uid/gid, no supplementary groups */
	P11KM_RUN_ANY_EXIT = 1 << 4,       /* a non-zero exit is not an error */
};

struct p11km_run_opts {
	unsigned flags;
	const void *input;        /* written to the child's stdin; NULL: /dev/null */
	size_t input_len;
	char *const *env;         /* "VAR=value" added to the environment; may be NULL */
	size_t n_env;
	const char *const *unset; /* names left out of the inherited environment (not of env);
	                           * NULL-terminated, may be NULL */
	uid_t uid;                /* with P11KM_RUN_DROP_PRIV */
	gid_t gid;
	unsigned timeout;         /* seconds before the child is killed; 0: none */
};

struct p11km_run_result {
	char *out;      /* stdout (NUL-terminated), with P11KM_RUN_CAPTURE_STDOUT */
	size_t out_len;
	char *err;      /* stderr (NUL-terminated) unless P11KM_RUN_STDERR_DISCARD */
	size_t err_len;
	int status;     /* waitpid() status */
	int timed_out;  /* killed after opts->timeout seconds */
};

/*
 * Run argv (argv[0] the program) as described by o and wait for it.
 * Returns 0 when it ran and exited 0 (any exit with P11KM_RUN_ANY_EXIT;
 * then look at res->status); P11KM_ERR_UNSUPPORTED when it cannot be
 * started, P11KM_ERR_FAILED when it fails, is killed or times out (the
 * message has its last stderr line, escaped).  res is filled in every case
 * once the child ran; release it with p11km_run_result_release().
 */
int p11km_run_ex(char *const argv[], const struct p11km_run_opts *o,
                 struct p11km_run_result *res);
void p11km_run_result_release(struct p11km_run_result *res);

/*
 * The plain form: argv[0] looked up in PATH, stdin from /dev/null, stdout
 * captured into *out (NULL: discarded), stderr kept for messages.  Returns
 * 0 when it exits 0, P11KM_ERR_FAILED with the program's last stderr line
 * otherwise.
 */
int p11km_run(char *const argv[], char **out, size_t *out_len);

/*
 * Never pass the variable name to a child: it holds a secret (the PIN of
 * an env:VAR source).  Called by the PIN source parser; idempotent.
 */
int p11km_run_env_hide(const char *name);
/* The environment a child gets ("VAR=value" strings borrowed from environ,
 * add appended, hidden variables and those that add replaces left out);
 * free the array only. */
char **p11km_run_child_env(char *const *add, size_t n_add);

#endif
