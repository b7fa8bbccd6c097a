/* op.h: library operations with option and result structs, called by the
 * commands (cmd-*.c: parse -> call -> print) and by the renewal tracker.
 * An operation prints nothing on stdout; notes and warnings go through the
 * log (p11km_note/p11km_warn), failures through p11km_fail(). */
#ifndef P11KM_OP_H
#define P11KM_OP_H

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include <openssl/x509.h>

#include "p11km/bind.h"
#include "p11km/p11.h"
#include "p11km/req.h"
#include "p11km/x509.h"

/* --- cert install (op-install.c) ------------------------------------------------ */

#define P11KM_INSTALL_MAX_BIND 8

struct p11km_install_opts {
	const char *reply;      /* the CA's reply: PEM, DER, bundle or PKCS#7 file */
	const char *uri;        /* token or key URI, or NULL: the one initialised token */
	const char *ca_file, *ca_path; /* trusted roots to verify the chain against */
	const char *out_dir;    /* also write cert.pem, chain.pem, fullchain.pem (cert.der) */
	const char *bind[P11KM_INSTALL_MAX_BIND]; /* bindings switched to the new certificate */
	size_t n_bind;
	int no_verify, no_chain, keep_old, destroy_old, der, dry_run;
	/* a session the caller holds open on the token, logged in (borrowed,
	 * NULL: the operation finds the token and logs in): the renewal batch */
	struct p11km_token *tok;
	struct p11km_session *session;
	/* with session: the private key this run signed the request with, and
	 * its public key (borrowed; the renewal batch): a leaf of the reply with
	 * that public key is its certificate, found without a search */
	const struct p11km_object *key;
	EVP_PKEY *key_pub;
};

/* One line of the report: written / replaced / kept. */
enum { P11KM_ACT_WRITTEN, P11KM_ACT_REPLACED, P11KM_ACT_KEPT };
struct p11km_install_act {
	int cat;
	char *what;    /* "certificate", "intermediate", "key", "file", "binding" */
	char *name;    /* label, path */
	char *detail;  /* "destroyed", "relabelled X", "already present", sha256 ... */
};

struct p11km_install_result {
	int dry_run, rekey;
	char *token_uri;    /* the token's URI */
	char *key_uri;      /* the key's URI (as found: a rekey key with its .pending label) */
	char *subject;      /* the leaf's subject */
	char *sha256;       /* the leaf's fingerprint (hex) */
	char *serial;       /* the leaf's serial number (hex) */
	struct p11km_install_act *acts;
	size_t n_acts;
};

/*
 * Install the reply's leaf next to its key (see op-install.c for the order
 * of the token changes: the old certificate goes only once the new one has
 * been read back).  The options are checked here too (--keep-old with
 * --destroy-old, --der without --out-dir: P11KM_ERR_USAGE).  On success
 * *res is filled (release with p11km_install_result_release); on failure it
 * is empty.
 */
int p11km_cert_install(struct p11km_ctx *ctx, const struct p11km_install_opts *o,
                       struct p11km_install_result *res);
void p11km_install_result_release(struct p11km_install_result *res);

/* --- req new, req renew (op-req.c) ---------------------------------------------- */

struct p11km_req_opts {
	const char *key;      /* req new: the key URI; renew: the key or its token, or NULL */
	const char *cert;     /* renew: the certificate, a pkcs11: URI or a file */
	const char *subject;  /* DN (new: required; renew: replaces the certificate's) */
	const char *const *sans; /* --san values */
	size_t n_sans;
	const char *ku, *eku; /* lists, or "none" */
	const char *digest;   /* sha256, sha384, sha512 or NULL: from the key */
	const char *out;      /* write the request there atomically; NULL or "-": only in
	                       * the result */
	int pss, der;
	int rekey;            /* renew: a new key pair '<old label>.pending' */
	int type;             /* with rekey: P11KM_KEY_* of the new key, -1: the old one's */
	int reuse_pending;    /* with rekey: sign with a pending key an interrupted renewal
	                       * left (else P11KM_ERR_EXISTS unless --force) */
	/* renew: a session the caller holds open on the certificate's token,
	 * logged in, and the certificate it read there (all borrowed; NULL: the
	 * operation finds the token, logs in and reads the certificate) */
	struct p11km_token *tok;
	struct p11km_session *session;
	X509 *cert_x509;
	/* renew, with session: the certificate's CKA_ID; its private key is
	 * searched by it first (one search), and the request's signature proves
	 * it is the certificate's key (if not, the search by public key follows) */
	const unsigned char *key_id;
	size_t key_id_len;
	int ms_renewal;       /* renew: the PKCS#10 inside a CMS SignedData by the old key
	                       * (MS-WCCE, for AD CS) */
};

struct p11km_req_result {
	unsigned char *request; /* the request, PEM text (not NUL-terminated) or DER */
	size_t request_len;
	int der, renew, rekey, ms_renewal;
	char *subject;          /* RFC 2253 */
	struct p11km_names san; /* the request's subjectAltNames, "DNS:a" ... */
	char *key_uri;          /* the key that signed */
	const char *signature;  /* "rsa-pss", "rsa-pkcs1", "ecdsa", "eddsa" (static) */
	char *sha256;           /* of the request's DER */
	char *renews;           /* renew: the old certificate's sha256 */
	struct p11km_names dropped, dropped_ku; /* renew: extensions and usages left out */
	char *new_key_uri;      /* rekey: the pending key */
	/* with a session of the caller (the renewal batch): the private key
	 * that signed and its public key, for p11km_install_opts.key */
	struct p11km_object key;
	EVP_PKEY *key_pub;
	int have_key;
};

/* Options are validated first (P11KM_ERR_USAGE), then the token is used.
 * On failure *res is empty; release it with p11km_req_result_release. */
int p11km_req_new(struct p11km_ctx *ctx, const struct p11km_req_opts *o,
                  struct p11km_req_result *res);
int p11km_req_renew(struct p11km_ctx *ctx, const struct p11km_req_opts *o,
                    struct p11km_req_result *res);
void p11km_req_result_release(struct p11km_req_result *res);

/* --- renew: the tracked certificates (op-renew.c, op-renew-deploy.c) ------------- */

enum p11km_renew_outcome {
	P11KM_RENEW_RENEWED,   /* a new certificate is installed (and served) */
	P11KM_RENEW_NOT_DUE,
	P11KM_RENEW_DUE,       /* --dry-run: would be renewed */
	P11KM_RENEW_WAITING,   /* the request is at the CA (file CA: the reply is awaited) */
	P11KM_RENEW_FAILED,    /* see reason; next_attempt */
};
const char *p11km_renew_outcome_name(enum p11km_renew_outcome o);

struct p11km_renew_opts {
	const char *state_dir;       /* NULL: p11km_state_dir(NULL) */
	const char *ca_dir;          /* CA profiles: NULL: p11km_ca_dir(NULL) */
	const char *const *ids;      /* the entries to look at; NULL with all */
	size_t n_ids;
	int all, dry_run, force;     /* force: renew even when not due, ignore the backoff */
	int wait;                    /* wait for another run's lock, else fail at once */
	const char *pre_hook, *post_hook, *deploy_hook; /* split into words as systemd does, no shell */
	unsigned hook_timeout;       /* seconds, 0: 60 */
	unsigned ca_wait;            /* seconds an ACME order may stay processing in this run
	                              * (then the entry waits, and the next run resumes it);
	                              * 0: 120 */
};

struct p11km_renew_item {
	char *id;
	enum p11km_renew_outcome outcome;
	char *reason;             /* why failed / what it waits for / when due */
	char *old_serial, *new_serial;
	time_t not_after;         /* of the live certificate (the new one when renewed) */
	time_t next_attempt;      /* 0: the next run */
	size_t pruned;            /* retired objects of the entry destroyed in this run */
};

struct p11km_renew_result {
	struct p11km_renew_item *items;
	size_t n;
	int n_failed;
};

/*
 * Renew what is due, one step after another, each recorded in the entry
 * before the next (a run killed anywhere is finished by the next one),
 * under one lock for the whole run ("another renew is running").  Returns
 * 0 when every entry was looked at (see the items: a failed renewal is an
 * item, not an error); an error for the run itself (lock, state dir).
 */
int p11km_renew(struct p11km_ctx *ctx, const struct p11km_renew_opts *o,
                struct p11km_renew_result *res);
void p11km_renew_result_release(struct p11km_renew_result *res);

/* --- status (op-status.c) ---------------------------------------------------------- */

/* The monitoring level of one row (and of the whole table: the worst). */
enum p11km_status_level {
	P11KM_STATUS_OK = 0,       /* not due, or being renewed */
	P11KM_STATUS_WARN = 1,     /* inside its window and not renewing, or its renewal failed */
	P11KM_STATUS_EXPIRED = 2,
};

struct p11km_status_opts {
	const char *state_dir;       /* NULL: p11km_state_dir(NULL) */
	const char *const *args;     /* tracking ids, pkcs11: URIs, certificate files, binding
	                              * directories; none: every tracked certificate */
	size_t n_args;
	int warn_days;               /* -1: the tracked policy, 30 days for the untracked */
	int probe;                   /* ask each tracked server which certificate it serves */
};

struct p11km_status_row {
	char *id;                    /* tracking id, or NULL */
	char *source;                /* the URI, file or binding the certificate came from */
	char *token;                 /* the token's URI, or NULL */
	char *subject, *serial;
	time_t not_after;
	long days_left;
	char *state;                 /* "idle", "waiting", ... ; "untracked" */
	char *last_result, *last_error, *ca;
	char *bindings;              /* space-separated */
	char *served;                /* --probe: the serial the server serves, or NULL */
	char *error;                 /* the certificate could not be read: why */
	enum p11km_status_level level;
	/* --probe: each address asked (--verify, the bindings' listen addresses)
	 * and the serial served there (NULL: no answer); not_reloaded: one serves
	 * another serial than the certificate's ("installed but not reloaded") */
	struct p11km_status_probe {
		char *addr, *serial;
	} *probes;
	size_t n_probes;
	int not_reloaded;
};

struct p11km_status_result {
	struct p11km_status_row *rows;
	size_t n;
	enum p11km_status_level worst;
	time_t last_run;             /* the latest renew run over the tracked certificates */
};

int p11km_status(struct p11km_ctx *ctx, const struct p11km_status_opts *o,
                 struct p11km_status_result *res);
/* The node_exporter textfile of res (p11km_cert_not_after_seconds,
 * p11km_cert_renewal_state, p11km_renew_last_run_timestamp_seconds), written
 * atomically (a temporary file renamed over path). */
int p11km_status_prom(const struct p11km_status_result *res, const char *path);
void p11km_status_result_release(struct p11km_status_result *res);

/* --- cert prune (op-prune.c) ------------------------------------------------------ */

struct p11km_prune_opts {
	const char *uri;        /* token (or objects) URI; NULL: the one initialised token */
	long older_than;        /* days: only objects retired more than this ago; -1: any */
	time_t retired_before;  /* only objects retired before T (a label's day counts as its
	                         * end: retired on day D is before T when D+1 <= T's day); 0: any */
	const char *label;      /* only "<label>.retired-..." objects; NULL: any label */
	int dry_run, keys;      /* keys: also retired key pairs (then it logs in) */
	const char *bindings;   /* keep what a binding under this directory uses; NULL: none */
	const char *const *more_bindings; /* ... and under these (the renewal: its entry's) */
	size_t n_more_bindings;
	/* a session the caller holds open on the token (read-write, logged in for
	 * keys; borrowed; NULL: the operation opens its own): the renewal run */
	struct p11km_session *session;
};

struct p11km_prune_result {
	int dry_run;
	char *token_uri, *token_label;
	char **destroyed;       /* the URIs of the objects destroyed (dry run: that would be) */
	size_t n;
	size_t n_kept;          /* retired objects kept because a binding uses them */
};

/* On success *res is filled (release with p11km_prune_result_release); on
 * failure it is empty (a failure after objects were destroyed says how many). */
int p11km_cert_prune(struct p11km_ctx *ctx, const struct p11km_prune_opts *o,
                     struct p11km_prune_result *res);
void p11km_prune_result_release(struct p11km_prune_result *res);
/* The report 'cert prune' prints: text lines, or one JSON object. */
void p11km_prune_print(FILE *fp, int json, const struct p11km_prune_result *res);

/* --- roots install, remove, list (op-roots.c, op-roots-report.c) ----------------- */

struct p11km_roots_opts {
	const char *const *stores;  /* install: --to, remove: --from specs (1 to 16) */
	size_t n_stores;
	const char *const *certs;   /* install: certificate files; remove: SHA-256
	                             * fingerprints or certificate files */
	size_t n_certs;
	const char *system_root;    /* root of the file system for the system store, or NULL */
	int dry_run;
	int allow_non_ca;           /* install: also trust certificates that are not CAs (warned) */
	int force;                  /* remove: a store that lacks a certificate is no error */
};

struct p11km_root {
	char *sha256, *subject;
	char *name;                 /* list: the file name or nickname in the store, or NULL */
};

struct p11km_roots_store {
	char *spec;                 /* the store as given */
	struct p11km_root *certs;   /* remove: what was (dry run: would be) removed; list: all */
	size_t n;
	unsigned char *added;       /* install: per certificate of the result, 1: added */
	size_t n_added;
};

enum p11km_roots_verb { P11KM_ROOTS_INSTALL, P11KM_ROOTS_REMOVE, P11KM_ROOTS_LIST };

struct p11km_roots_result {
	enum p11km_roots_verb verb;
	int dry_run;
	struct p11km_root *certs;   /* install: the certificates given (duplicates dropped) */
	size_t n;
	struct p11km_roots_store *stores;
	size_t n_stores;
};

/* Install: every certificate is read and checked (a CA certificate unless
 * allow_non_ca: else P11KM_ERR_INPUT, nothing written), every store read,
 * then each store changed in one go.  Remove: likewise; a store lacking a
 * certificate fails before anything changes (P11KM_ERR_NOTFOUND) unless
 * force.  List: the certificates of one store (that must exist).  On
 * failure *res is empty; release it with p11km_roots_result_release. */
int p11km_roots_install(struct p11km_ctx *ctx, const struct p11km_roots_opts *o,
                        struct p11km_roots_result *res);
int p11km_roots_remove(struct p11km_ctx *ctx, const struct p11km_roots_opts *o,
                       struct p11km_roots_result *res);
int p11km_roots_list(struct p11km_ctx *ctx, const char *store, const char *system_root,
                     struct p11km_roots_result *res);
void p11km_roots_result_release(struct p11km_roots_result *res);
/* The report the roots verbs print: text lines, or one JSON object. */
void p11km_roots_print(FILE *fp, int json, const struct p11km_roots_result *res);

/* --- bind emit, and the reports of bind emit/check/verify (op-bind*.c) ------------ */

#define P11KM_BIND_MAX_LISTEN 16

struct p11km_bind_emit_opts {
	const char *server;         /* the flavour: nginx, apache, stunnel, openssl-conf */
	const char *key;            /* the key URI (required) */
	const char *server_name, *cert, *out_dir, *pin_file, *user, *connect;
	const char *acme_webroot, *acme_listen;
	const char *listen[P11KM_BIND_MAX_LISTEN];
	size_t n_listen;
	int allow_pin_value;
};

struct p11km_bind_emit_result {
	char *server, *key_uri, *dir;
	char *snippet;              /* dir/<the server's snippet>, or NULL */
	char *pin_file;             /* the PIN file the config names, or NULL */
	char *pin_written;          /* the PIN file this run wrote, or NULL */
	int to_stdout;              /* no out_dir: the files are only in the result */
	struct p11km_bind_files files;
	char *next[2];              /* the commands to run next */
};

/*
 * Validate, resolve the key (and its certificate), load it through the
 * engine as the server would (in a fresh process: ctx's modules are
 * released first), then write the PIN file and, with out_dir, the files
 * (all or none).  A PIN file this run created goes again on failure.  On
 * failure *res is empty; release it with p11km_bind_emit_result_release.
 */
int p11km_bind_emit(struct p11km_ctx *ctx, const struct p11km_bind_emit_opts *o,
                    struct p11km_bind_emit_result *res);
void p11km_bind_emit_result_release(struct p11km_bind_emit_result *res);
void p11km_bind_emit_print(FILE *fp, int json, const struct p11km_bind_emit_result *res);
/* bind check: the report of p11km_bind_check(), and its verdict: 0, or
 * P11KM_ERR_VERIFY with the count of problems. */
void p11km_bind_check_print(FILE *fp, int json, const struct p11km_bind_report *rep,
                            const struct p11km_problems *pr);
int p11km_bind_check_verdict(const struct p11km_problems *pr);
/* bind verify: the report of p11km_bind_verify() for address (server_name:
 * the SNI name sent, or NULL), and its verdict: 0, or P11KM_ERR_VERIFY
 * (another certificate than expected, a chain that does not verify, expired). */
void p11km_bind_verify_print(FILE *fp, int json, const char *address, const char *server_name,
                             const struct p11km_verify_result *res);
int p11km_bind_verify_verdict(const char *address, const struct p11km_verify_result *res);

/* --- token doctor (op-doctor.c) ------------------------------------------------------ */

#define P11KM_DOCTOR_MAX_FACTS 32

struct p11km_doctor_opts {
	const char *uri;    /* the token; NULL: the key's, or the one initialised token */
	const char *key;    /* also check this private key (test signature, engine load) */
	const char *user;   /* run the engine test as this user (needs key) */
};

struct p11km_doctor_result {
	char *name[P11KM_DOCTOR_MAX_FACTS], *value[P11KM_DOCTOR_MAX_FACTS]; /* the facts, in order */
	size_t n;
	struct p11km_problems pr;  /* one advice line per problem */
	char token_label[33];
};

/* Examine the token (and the key): 0 with the facts and problems in *res
 * (a problem is not an error: see p11km_doctor_verdict), or an error when
 * the examination itself fails (no such token, bad URI; *res empty).  ctx's
 * modules are released before the engine test (a server starts fresh). */
int p11km_token_doctor(struct p11km_ctx *ctx, const struct p11km_doctor_opts *o,
                       struct p11km_doctor_result *res);
void p11km_doctor_result_release(struct p11km_doctor_result *res);
void p11km_doctor_print(FILE *fp, int json, const struct p11km_doctor_result *res);
/* 0, or P11KM_ERR_VERIFY with the count of problems. */
int p11km_doctor_verdict(const struct p11km_doctor_result *res);

/* --- audit show (op-audit.c) ------------------------------------------------------- */

/* --since: "2026-12-01[THH:MM[:SS]][Z]" (UTC), or "N[smhd]" ago, as seconds
 * since the epoch in *out; else P11KM_ERR_USAGE. */
int p11km_audit_since(const char *s, long long *out);

struct json_t;
struct p11km_audit_show_opts {
	long long since;             /* records from then on (p11km_audit_since); -1: all */
	/* called with each record shown, in the log's order (rec borrowed); a
	 * negative return stops the reading and is returned */
	int (*each)(void *arg, struct json_t *rec);
	void *arg;
};

struct p11km_audit_show_result {
	size_t shown;                /* records given to each() */
	size_t skipped;              /* lines that were no record (each warned about) */
};

/* Read the audit log (--audit-log, P11KM_AUDIT_LOG or the default): a log
 * not written yet has no record (a note says so); a log sent to syslog is
 * P11KM_ERR_USAGE (it is read with journalctl). */
int p11km_audit_show(const struct p11km_audit_show_opts *o, struct p11km_audit_show_result *res);

#endif
