/* ca.h: online certificate authorities: profiles, kinds, submission.
 *
 * A profile is one JSON file DIR/NAME.json (0600) in the configuration
 * directory (/etc/p11km/ca.d, --config-dir or P11KM_CONFIG_DIR).  It holds
 * references only: the account key is a file path or a pkcs11: URI, never
 * key material or a secret.
 */
#ifndef P11KM_CA_H
#define P11KM_CA_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/x509.h>

#include "p11km/p11.h"
#include "p11km/uri.h"

#define P11KM_CA_DIR_DEFAULT "/etc/p11km/ca.d"

struct p11km_ca_profile {
	char *name;
	const struct p11km_ca_kind *kind;
	char *directory;    /* ACME directory URL */
	char *ca_file;      /* trusted roots for the CA's TLS certificate (PEM) */
	char *contact;      /* "mailto:..." or NULL */
	char *account_key;  /* file path or pkcs11: URI */
	int agree_tos;      /* the terms of service were agreed with 'ca add --agree-tos' */
	long timeout;       /* seconds per HTTP request */
	/* CMP (and URL-based kinds) */
	char *url;          /* the CA's endpoint (CMP: http(s)://HOST:PORT/PATH) */
	char *recipient;    /* CMP recipient name, "/CN=.../O=..." or NULL */
	char *ref;          /* CMP sender reference (senderKID) for MAC protection */
	char *secret;       /* a secret source (file:, env:, fd:, prompt) for PBM, never the secret */
	char *cert;         /* CMP signature protection: our certificate (PEM file) */
	char *key;          /* ... and its key on a token (pkcs11: URI) */
	char *cmd;          /* CMP request type: "p10cr", "ir", "cr" or "kur" (NULL: p10cr) */
};

/* How a submission goes (the command's options). */
struct p11km_ca_submit {
	const char *standalone;  /* "ADDR:PORT" for the built-in http-01 responder */
	const char *webroot;     /* DIR: http-01 files under DIR/.well-known/acme-challenge/ */
	const char *cmp_cmd;     /* CMP: request type for this run (NULL: the profile's) */
	const char *old_cert;    /* CMP kur: the certificate to update (PEM file) */
	const char *key_uri;     /* CMP ir/cr/kur: where the request's key is (pkcs11: URI) */
	/* progress: called once per step with a short line (may be NULL) */
	void (*step)(void *arg, const char *name, const char *detail);
	void *step_arg;
	/* results */
	unsigned long signatures;  /* JWS signatures made (one C_Sign each on a token) */
	unsigned long requests;    /* HTTP requests */
	char *order_url, *cert_url;
};
void p11km_ca_submit_release(struct p11km_ca_submit *sub);

/* One kind of CA.  A kind with why_not set is refused with that text. */
struct p11km_ca_kind {
	const char *name;
	const char *why_not;
	/* Submit the DER request; *chain gets the PEM chain (leaf first). */
	int (*submit)(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
	              const unsigned char *csr, size_t csr_len, struct p11km_ca_submit *sub,
	              char **chain, size_t *chain_len);
	/* The CA's own certificates for 'ca roots' (NULL: the kind cannot). */
	int (*roots)(struct p11km_ctx *ctx, const struct p11km_ca_profile *p, STACK_OF(X509) **out);
};
/* The kind called name; P11KM_ERR_USAGE (with the kinds, or why_not) otherwise. */
int p11km_ca_kind_find(const char *name, const struct p11km_ca_kind **out);

/* The configuration directory: opt, else $P11KM_CONFIG_DIR, else the default. */
const char *p11km_ca_dir(const char *opt);
/* A profile name: 1-64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
int p11km_ca_name_check(const char *name);

int p11km_ca_profile_load(const char *dir, const char *name, struct p11km_ca_profile **out);
/* Write DIR/NAME.json atomically (0600); an existing one is P11KM_ERR_EXISTS
 * unless replace. */
int p11km_ca_profile_save(const char *dir, const struct p11km_ca_profile *p, int replace);
int p11km_ca_profile_remove(const char *dir, const char *name);
/* The profile names in dir, sorted (*names NULL-terminated; free each and it). */
int p11km_ca_profile_names(const char *dir, char ***names, size_t *n);
void p11km_ca_profile_free(struct p11km_ca_profile *p);
/* The profile as JSON text (malloc'ed), as stored. */
char *p11km_ca_profile_json(const struct p11km_ca_profile *p);

/* The DNS and IP identifiers of a request's subjectAltName.
 * (*types)[i] is "dns" or "ip" (static); values malloc'ed.  None is P11KM_ERR_INPUT. */
int p11km_req_identifiers(X509_REQ *req, const char ***types, char ***values, size_t *n);

/* --- JWS (RFC 7515) with an account key behind the signer interface (ca-jws.c) --- */
struct p11km_signer;
struct p11km_account_key {
	struct p11km_signer *sg;
	const char *alg;       /* "ES256" or "RS256" */
	char *jwk;             /* the public key as a JWK, compact, keys sorted */
	char *thumbprint;      /* base64url SHA-256 of jwk (RFC 7638) */
	unsigned long signatures;
	/* a token key: what must stay open while signing */
	struct p11km_uri *uri;
	struct p11km_token *tok;
	struct p11km_session s;
	struct p11km_object priv;
	int have_priv;
	EVP_PKEY *pub;
};
/*
 * Open the account key spec: a pkcs11: URI (a private key on a token,
 * logged in with the run's PIN source), or a PEM file, created (EC P-256,
 * 0600) when absent; a file readable by others is refused.
 */
int p11km_account_key_open(struct p11km_ctx *ctx, const char *spec, struct p11km_account_key *k);
void p11km_account_key_release(struct p11km_account_key *k);
/* base64url without padding (malloc'ed, NULL: no memory). */
char *p11km_b64url(const unsigned char *p, size_t n);
/*
 * A flattened JWS: protected header {alg, nonce, url, and kid (when not
 * NULL) or jwk}, payload (NULL: "" for POST-as-GET).  *out malloc'ed.
 * One signature (one C_Sign on a token).
 */
int p11km_jws_sign(struct p11km_account_key *k, const char *url, const char *nonce,
                   const char *kid, const char *payload, char **out);

/* --- http-01 (ca-acme-http01.c): a built-in responder or a webroot --- */
struct p11km_http01 {
	int fd;                /* the standalone responder's listening socket, or -1 */
	pid_t pid;             /* its process, or 0 */
	const char *webroot;   /* or NULL */
	char **files;          /* webroot files written (removed by stop) */
	size_t n_files;
};
/* Prepare: bind ADDR:PORT now (so a busy port fails before an order is
 * made), or check that DIR exists. */
int p11km_http01_init(struct p11km_http01 *h, const char *standalone, const char *webroot);
/* Serve key authorizations keyauth[i] for token[i] until stop. */
int p11km_http01_start(struct p11km_http01 *h, char *const *token, char *const *keyauth,
                       size_t n);
/* Stop the responder, remove the files written (NULL-safe, idempotent). */
void p11km_http01_stop(struct p11km_http01 *h);

/* ACME (ca-acme.c) */
int p11km_acme_submit(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                      const unsigned char *csr, size_t csr_len, struct p11km_ca_submit *sub,
                      char **chain, size_t *chain_len);

/* CMP (ca-cmp.c): the request as the profile's (or sub->cmp_cmd's) message
 * type, certConf, the chain back. */
int p11km_cmp_submit(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                     const unsigned char *csr, size_t csr_len, struct p11km_ca_submit *sub,
                     char **chain, size_t *chain_len);
/* The CA's certificates (genm with id-it-caCerts, RFC 9483 4.3.1); *out
 * has at least one. */
int p11km_cmp_ca_certs(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                       STACK_OF(X509) **out);

#endif
