/* op-renew.h: what the parts of the renew operation share (op-renew.c: the
 * run, the steps up to the issued chain; op-renew-deploy.c: install, bind
 * check, reload, verify, rollback, hooks). */
#ifndef P11KM_OP_RENEW_H
#define P11KM_OP_RENEW_H

#include <time.h>

#include <openssl/x509.h>

#include "p11km/op.h"
#include "p11km/p11.h"
#include "p11km/track.h"
#include "p11km/uri.h"

/* A token session kept open for the whole run: one login per token. */
struct renew_held {
	struct p11km_token *tok;
	struct p11km_session s;
	struct p11km_tokcerts *certs; /* its certificates, read once (s.certs), or NULL */
};

struct renew_run {
	struct p11km_ctx *ctx;
	const struct p11km_renew_opts *o;
	const char *dir;
	const char *pin_opt;     /* --pin-source of the run: wins over the tracked one */
	time_t now;
	int pre_done;            /* the pre-hook ran */
	struct renew_held *held;
	size_t n_held;
	size_t n_entries;        /* how many this run looks at */
	int reopened;            /* the sessions were dropped (bind check) and opened again:
	                          * no second read of the token's certificates */
	struct p11km_renew_result *res;
};

/* One tracked certificate in this run. */
struct renew_one {
	struct renew_run *run;
	struct p11km_track *t;
	struct p11km_renew_item *item;
	struct p11km_uri *uri;
	struct renew_held *h;    /* borrowed from run->held */
	X509 *live;              /* the certificate on the token now, or NULL */
	char *label;             /* its label: the label a renewal keeps */
	char *live_serial, *live_sha256, *live_key_id;
	unsigned char *live_id;  /* its CKA_ID (live_key_id in hex) */
	size_t live_id_len;
	time_t nb, na;           /* its validity */
	/* the key that signed this run's request, and its public key: the
	 * install finds the leaf by it (same session) */
	struct p11km_object key;
	EVP_PKEY *key_pub;
	int have_key;
};

/* The run's session on the token of r1's URI (opened and logged in once);
 * drop: forget them all (bind check releases the modules: the sessions are
 * gone, nothing is closed). */
int renew_held_get(struct renew_one *r1);
void renew_held_drop(struct renew_run *run);

/* The item's outcome and reason (printf). */
void renew_say(struct p11km_renew_item *it, enum p11km_renew_outcome oc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* *slot = a copy of v (NULL: NULL). */
int renew_set_str(char **slot, const char *v);

/* Does the entry deploy (bindings, a reload or a verify): then the steps after
 * install are recorded, and the old certificate kept for a rollback. */
int renew_deploys(const struct p11km_track *t);

/* A work file of the entry (malloc'ed; NULL: no memory). */
char *renew_work(struct renew_one *r1, const char *name);
/* Save the entry (state before the next step). */
int renew_save(struct renew_one *r1);
/* The entry failed: attempts, backoff, the reason; saved. Returns 0. */
int renew_failed(struct renew_one *r1, int code, const char *what);
/* A certificate time as time_t (0: unreadable). */
time_t renew_asn1_time(const ASN1_TIME *a);
/* Re-read the live certificate. */
int renew_read_live(struct renew_one *r1);

/* The kill -9 tests: P11KM_TEST_KILL_AT=POINT kills this process there
 * (points: the step names after their record, and "signed", "stored",
 * "install-done" between a step's work and its record). */
void renew_kill_point(const char *point);

/* op-renew-prune.c: a renewal retired objects: when to prune them (the
 * entry's prune_at); prune them once that time has come (a failure is a
 * warning: the renewal goes on). */
void renew_prune_schedule(struct renew_one *r1);
int renew_prune(struct renew_one *r1);

/* op-renew-deploy.c: from ISSUED to done (or rolled back). */
int renew_deploy(struct renew_one *r1);
/* A hook (split into words as systemd does, no shell) with the P11KM_* variables of r1
 * (NULL: the run's variables only). */
int renew_hook(struct renew_run *run, const char *cmd, struct renew_one *r1);

#endif
