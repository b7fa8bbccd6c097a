/* op-ca.h: the operations on online CAs, with option and result structs:
 * the profiles ('ca add/list/show/remove', op-ca.c, op-ca-add.c), the ACME
 * account, the renewal window, the CA's own certificates and a revocation
 * (op-ca.c), a request submitted (op-submit.c: 'req submit', with
 * --install through p11km_cert_install() in the same login).  Like every
 * operation they print nothing on stdout; the renderings of their results
 * are in op-ca-report.c (text, or JSON under --json). */
#ifndef P11KM_OP_CA_H
#define P11KM_OP_CA_H

#include <stddef.h>

#include "p11km/ca.h"
#include "p11km/json.h"
#include "p11km/op.h"

/* --- profiles (op-ca-add.c, op-ca.c) ------------------------------------------------ */

/* 'ca add': every value as the command line gave it (NULL: not given). */
struct p11km_ca_add_opts {
	const char *name, *config_dir, *kind;
	const char *directory, *ca_file, *contact, *account_key, *timeout;
	const char *eab_kid, *eab_hmac_source;                 /* acme */
	const char *command;                                   /* helper */
	const char *url, *template_name, *auth, *user, *password_source; /* adcs (url: cmp too) */
	const char *recipient, *ref, *secret, *cert, *key, *cmp_cmd;    /* cmp */
	int agree_tos, insecure_http;
	const char *const *args;  /* helper: its arguments (after NAME); others: none */
	size_t n_args;
};

/* Check the options for the kind, make paths absolute, save DIR/NAME.json
 * (an existing profile only with ctx->force).  *out: the profile as saved
 * (p11km_ca_profile_free).  On failure nothing is written. */
int p11km_ca_add(struct p11km_ctx *ctx, const struct p11km_ca_add_opts *o,
                 struct p11km_ca_profile **out);

/* An account key reference as a profile keeps it: a pkcs11: URI as given,
 * a file as an absolute path (it may not exist yet: made on first use);
 * opt NULL: DIR/NAME.key.  *out malloc'ed. */
int p11km_ca_account_ref(const char *dir, const char *name, const char *opt, char **out);

/* What the other profile verbs take (each reads the fields it names). */
struct p11km_ca_opts {
	const char *config_dir;  /* NULL: p11km_ca_dir(NULL) */
	const char *name;        /* the profile */
	const char *action;      /* account: "show", "rollover" or "deactivate" */
	const char *new_key;     /* account rollover: the new key (pkcs11: URI or PEM file) */
	const char *cert;        /* renewal-info, revoke: a pkcs11: URI or a file */
	const char *reason;      /* revoke: RFC 5280 name or number (NULL: unspecified) */
	const char *cert_key;    /* revoke: sign with the certificate's own key */
	const char *out;         /* roots: also write the certificates (PEM) there */
	const char *const *to;   /* roots: install them as trusted roots into these stores */
	size_t n_to;
	int dry_run;             /* roots, with to: what would change */
};

struct p11km_ca_list_result {
	const char *config_dir;            /* borrowed */
	struct p11km_ca_profile **profiles; /* those that load (the others warned about) */
	size_t n;
};
int p11km_ca_list(struct p11km_ctx *ctx, const struct p11km_ca_opts *o,
                  struct p11km_ca_list_result *res);
void p11km_ca_list_result_release(struct p11km_ca_list_result *res);
int p11km_ca_show(struct p11km_ctx *ctx, const struct p11km_ca_opts *o,
                  struct p11km_ca_profile **out);
/* The profile file goes; its account key file, if any, is kept. */
int p11km_ca_remove(struct p11km_ctx *ctx, const struct p11km_ca_opts *o);

/* --- ACME account, ARI, roots, revocation (op-ca.c) --------------------------- */

struct p11km_ca_account_result {
	char *ca, *url;          /* the profile, the account's URL */
	int op;                  /* enum p11km_acme_account_op */
	char *account_key;       /* the profile's key (the new one after a rollover) */
	char *old_account_key;   /* rollover: the key before, or NULL */
	unsigned long signatures, requests;
};
/* 'ca account ACTION NAME' (its steps on stderr: p11km_ca_step_print). */
int p11km_ca_account(struct p11km_ctx *ctx, const struct p11km_ca_opts *o,
                     struct p11km_ca_account_result *res);
void p11km_ca_account_result_release(struct p11km_ca_account_result *res);

struct p11km_ca_window_result {
	char *ca;
	struct p11km_renewal_window w;
};
int p11km_ca_renewal_info(struct p11km_ctx *ctx, const struct p11km_ca_opts *o,
                          struct p11km_ca_window_result *res);
void p11km_ca_window_result_release(struct p11km_ca_window_result *res);

struct p11km_ca_roots_result {
	char *ca;
	const char *kind;        /* static */
	char *pem;               /* the CA's certificates */
	size_t pem_len;
	const char *file;        /* o->out, written (0644), or NULL */
	int installed;           /* o->to: roots holds what p11km_roots_install() did */
	struct p11km_roots_result roots;
};
/* The CA's own certificates (P11KM_ERR_UNSUPPORTED for a kind without),
 * with o->to installed as trusted roots (p11km_roots_install). */
int p11km_ca_roots(struct p11km_ctx *ctx, const struct p11km_ca_opts *o,
                   struct p11km_ca_roots_result *res);
void p11km_ca_roots_result_release(struct p11km_ca_roots_result *res);

struct p11km_revoke_result {
	char *ca;
	char serial[128];        /* hex */
	int reason;
	const char *reason_name; /* as given */
	int by_cert_key;
	unsigned long signatures, requests;
};
/* 'cert revoke': ACME revokeCert of o->cert at profile o->name. */
int p11km_cert_revoke(struct p11km_ctx *ctx, const struct p11km_ca_opts *o,
                      struct p11km_revoke_result *res);
void p11km_revoke_result_release(struct p11km_revoke_result *res);

/* --- req submit (op-submit.c) --------------------------------------------------------- */

struct p11km_submit_opts {
	const char *request;     /* the request file: PEM or DER PKCS#10, or an MS renewal */
	const char *ca, *config_dir, *state_dir;
	const char *out;         /* write the chain there (0644) */
	int install;             /* install the chain next to its key (p11km_cert_install) */
	const char *key_uri;     /* with install: the token or key, or NULL */
	const char *verify_ca_file; /* with install: the roots to verify the chain against */
	int poll;                /* helper, adcs: ask again for a pending request */
	/* how the CA is talked to (borrowed into struct p11km_ca_submit) */
	const char *standalone, *webroot, *dns_hook, *preferred_chain, *cmp_cmd, *old_cert, *key;
};

struct p11km_submit_result {
	char *ca;
	const char *kind;        /* static */
	char *order_url, *cert_url;
	unsigned long signatures, requests, bad_nonces;
	struct json_t *steps;    /* [{step, detail}] as they went (also on stderr) */
	char *chain;             /* PEM, leaf first */
	size_t chain_len;
	const char *chain_file;  /* o->out, or NULL */
	int installed;           /* install holds what p11km_cert_install() did */
	struct p11km_install_result install;
};

/*
 * Submit the request to the CA profile, and with o->install put the chain
 * next to its key in the same login (the account key on that token signs
 * in the session the install uses).  A request the CA holds as pending is
 * kept in the state directory and is P11KM_ERR_FAILED ("ask again with
 * --poll").  On failure *res is empty.
 */
int p11km_req_submit(struct p11km_ctx *ctx, const struct p11km_submit_opts *o,
                     struct p11km_submit_result *res);
void p11km_submit_result_release(struct p11km_submit_result *res);

/* --- renderings on stdout: text, or JSON under --json (op-ca-report.c) ---------- */

void p11km_ca_profile_print(int json, const struct p11km_ca_profile *p);
void p11km_ca_added_print(int json, const struct p11km_ca_profile *p);
void p11km_ca_list_print(int json, const struct p11km_ca_list_result *res);
void p11km_ca_removed_print(int json, const char *name);
void p11km_ca_account_print(int json, const struct p11km_ca_account_result *res);
void p11km_ca_window_print(int json, const struct p11km_ca_window_result *res);
void p11km_ca_roots_print(int json, const struct p11km_ca_roots_result *res);
void p11km_revoke_print(int json, const struct p11km_revoke_result *res);
/* The submit's report; with an install, its result too (JSON: one document,
 * the install's object under "install"). */
void p11km_submit_print(int json, const struct p11km_submit_result *res);
/* The install's report (cert install). */
void p11km_install_print(int json, const struct p11km_install_result *res);
/* A progress line on stderr (a terminal, or --verbose; never with --quiet). */
void p11km_ca_step_print(struct p11km_ctx *ctx, const char *name, const char *detail);

#endif
