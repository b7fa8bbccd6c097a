/* track.h: tracked certificates (service layer): one JSON file per tracked
 * certificate in the state directory (DIR/track/ID.json, written
 * atomically, 0600), its renewal's work files beside it (DIR/track/ID.d/).
 * A tracked entry holds references only: the certificate's pkcs11: URI, a
 * PIN source spec, a CA profile name; never a PIN.
 */
#ifndef P11KM_TRACK_H
#define P11KM_TRACK_H

#include <stddef.h>
#include <time.h>

#include "p11km/ca.h"

#define P11KM_TRACK_MAX_BIND 8
#define P11KM_TRACK_MAX_ARGV 32

/* The steps of one renewal, each recorded before the next begins. */
enum p11km_track_step {
	P11KM_STEP_IDLE = 0,   /* no renewal under way */
	P11KM_STEP_REQUESTED,  /* the request is in ID.d/request.pem */
	P11KM_STEP_WAITING,    /* submitted; the reply is awaited (file CA, pending) */
	P11KM_STEP_ISSUED,     /* the issued chain is in ID.d/chain.pem */
	P11KM_STEP_INSTALLED,  /* on the token, the bindings switched */
	P11KM_STEP_RELOADED,   /* the reload command ran */
};
const char *p11km_track_step_name(enum p11km_track_step s);

struct p11km_track {
	char *id;
	char *cert;              /* pkcs11: URI of the certificate */
	char *module;            /* the module it was tracked with, or NULL */
	char *pin_source;        /* PIN source spec, or NULL */
	char *ca;                /* CA profile name, or "file:DIR" */
	char *ca_file;           /* roots to verify the issued chain against, or NULL */
	char *standalone, *webroot; /* ACME http-01: the responder's ADDR:PORT, or DIR */
	int before_days;         /* renew this many days before notAfter; -1: default */
	int before_pct;          /* ... or when this percent of the lifetime is left; -1 */
	char *rekey;             /* "never", "always" or a key type ("ec:p256") */
	char *bind[P11KM_TRACK_MAX_BIND];
	size_t n_bind;
	char *reload[P11KM_TRACK_MAX_ARGV]; /* argv, no shell */
	size_t n_reload;
	char *verify, *server_name; /* ADDR:PORT and SNI name to check the served serial */
	int prune_days;          /* retired objects of the entry destroyed this many days after
	                          * they were retired; P11KM_TRACK_PRUNE_NEVER, or
	                          * P11KM_TRACK_PRUNE_DEFAULT (30) when not given */
	/* state */
	enum p11km_track_step step;
	char *old_serial, *old_sha256; /* the certificate being renewed */
	char *old_key_id;          /* its key's CKA_ID (hex): the rollback finds it */
	char *new_serial;          /* the issued one (from ISSUED on) */
	char *old_chain;           /* ID.d/old.pem written: the old leaf and chain */
	char *last_result;         /* "renewed", "not due", "waiting", "failed", "rolled back" */
	char *last_error;
	long attempts;             /* failed attempts in a row */
	time_t next_attempt;       /* 0: now */
	time_t last_run, last_renewed;
	time_t prune_at;           /* a renewal retired objects: prune from then on (0: nothing) */
	/* ARI (RFC 9773): the window the CA suggested for the certificate of
	 * serial ari_serial through profile ari_ca, the moment chosen at random
	 * inside it (once per window: runs on many machines do not herd), and
	 * when to ask the CA again (its Retry-After) */
	char *ari_serial, *ari_ca;
	time_t ari_start, ari_end, ari_renew_at, ari_next_check;
};

#define P11KM_TRACK_PRUNE_DEFAULT (-2)
#define P11KM_TRACK_PRUNE_NEVER (-1)
/* An entry's grace period in days (-1: never pruned). */
int p11km_track_prune_days(const struct p11km_track *t);
/* A --prune-after value: DAYS (0-3650) or "never". */
int p11km_track_prune_parse(const char *s, int *days);

/* The state directory: opt, else $P11KM_STATE_DIR, else the default
 * (p11km_state_dir(), ca.h: the CA's pending requests live there too). */
/* An id: 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
int p11km_track_id_check(const char *id);
/* DIR/track/ID.json, DIR/track/ID.d/NAME (malloc'ed; NULL: no memory). */
char *p11km_track_path(const char *dir, const char *id);
char *p11km_track_work(const char *dir, const char *id, const char *name);

int p11km_track_load(const char *dir, const char *id, struct p11km_track **out);
/* Write atomically (0600); creates DIR/track (0700). */
int p11km_track_save(const char *dir, const struct p11km_track *t);
/* Remove the entry and its work files. */
int p11km_track_remove(const char *dir, const char *id);
/* The ids in DIR/track, sorted (free each and the array). */
int p11km_track_ids(const char *dir, char ***ids, size_t *n);
void p11km_track_free(struct p11km_track *t);
/* The entry as a JSON text (malloc'ed), as stored. */
char *p11km_track_json(const struct p11km_track *t);

/* A --renew-before value: "DAYS" or "PERCENT%". */
int p11km_track_before_parse(const char *s, int *days, int *pct);
/*
 * When t's certificate (valid not_before..not_after) is due: the earlier of
 * not_after - days and the moment pct percent of the lifetime is left; the
 * defaults are 30 days and 33 percent (a third).  An ARI window from the CA
 * moves it earlier (renew: the time chosen inside the window).
 */
time_t p11km_track_due(const struct p11km_track *t, time_t not_before, time_t not_after);

/* A PIN source a tracked entry may keep: a file:PATH must be a regular file
 * of this user, mode 0600 or 0400 (P11KM_ERR_INPUT otherwise). */
int p11km_track_pin_check(const char *spec);

/* The backoff after n failed attempts: 5 minutes doubled per attempt, at
 * most a day. */
long p11km_track_backoff(long n);

#endif
