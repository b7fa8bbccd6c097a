/* ca-acme.h: what the ACME files (ca-acme*.c) share; private to them.
 *
 * One struct acme per run against a CA: the directory, the nonce, the
 * account key and its account URL (kid).  acme_post() is the one place a
 * JWS is made and sent (one signature by the account key each).
 */
#ifndef P11KM_CA_ACME_H
#define P11KM_CA_ACME_H

#include <jansson.h>

#include "p11km/ca.h"
#include "p11km/http.h"

#define ACME_B64URL "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

struct acme {
	struct p11km_ctx *ctx;
	const struct p11km_ca_profile *p;
	struct p11km_ca_submit *sub;
	struct p11km_http http;
	struct p11km_account_key key;
	json_t *dir;
	/* borrowed from dir; the optional ones NULL when the CA has none */
	const char *new_nonce, *new_account, *new_order, *key_change, *revoke_cert, *renewal_info;
	char *nonce, *kid;
	unsigned long extra_signatures; /* by other keys than the account key */
	unsigned long bad_nonces;       /* badNonce answers retried */
	unsigned budget;                /* acme_poll_until: seconds of waiting; past them it
	                                 * returns 1 (0: the poll count only) */
};

/* Set up a (p and sub borrowed; sub may be NULL). */
void acme_init(struct acme *a, struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
               struct p11km_ca_submit *sub);
/* Release what a holds; the counts go into a->sub. */
void acme_done(struct acme *a);
void acme_step(struct acme *a, const char *name, const char *detail);

/* The directory (newNonce, newAccount and newOrder required unless
 * lookup_only, when only the optional members are read). */
int acme_directory(struct acme *a, int lookup_only);
/* Open the profile's account key and find (or with agree_tos create) its
 * account: a->kid.  The account URL is asked for every run, never cached. */
int acme_account(struct acme *a);

/* One line from a problem document. */
int acme_problem(struct acme *a, const char *what, const struct p11km_http_resp *r, json_t *doc);
/* The JSON object of an answer (checked status, content type, shape). */
int acme_answer_json(struct acme *a, const char *what, const char *url,
                     const struct p11km_http_resp *r, json_t **out);
/* A URL member of o that must be on the directory's origin (borrowed). */
int acme_url_member(struct acme *a, json_t *o, const char *key, const char *what, const char **out);
int acme_check_origin(struct acme *a, const char *u, const char *what);
/* A signed POST (payload NULL: POST-as-GET) by k (NULL: the account key),
 * with its jwk when use_jwk, else the account's kid; badNonce retried. */
int acme_post_by(struct acme *a, struct p11km_account_key *k, const char *url,
                 const char *payload, int use_jwk, struct p11km_http_resp *r);
int acme_post(struct acme *a, const char *url, const char *payload, int use_jwk,
              struct p11km_http_resp *r);
int acme_post_json(struct acme *a, const char *url, const char *payload, const char *what,
                   json_t **out, char **location);
/* Poll url until its status is none of the waiting states (*obj: the last
 * answer); 1 when a->budget ran out first. */
int acme_poll_until(struct acme *a, const char *url, const char *what, const char *wait1,
                    const char *wait2, json_t **obj);

/* The authorizations of an order answered (http-01 or, with a dns hook,
 * dns-01) and validated (ca-acme-authz.c). */
int acme_authorize(struct acme *a, json_t *order, const struct p11km_ca_submit *opts);

#endif
