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
#include <time.h>

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
	/* CMP (url below: http(s)://HOST:PORT/PATH) */
	char *recipient;    /* CMP recipient name, "/CN=.../O=..." or NULL */
	char *ref;          /* CMP sender reference (senderKID) for MAC protection */
	char *secret;       /* a secret source (file:, env:, fd:, prompt) for PBM, never the secret */
	char *cert;         /* CMP signature protection: our certificate (PEM file) */
	char *key;          /* ... and its key on a token (pkcs11: URI) */
	char *cmd;          /* CMP request type: "p10cr", "ir", "cr" or "kur" (NULL: p10cr) */
	long timeout;       /* seconds per HTTP request (helper: per run of the helper) */
	/* helper (certmonger CA helper) */
	char **command;     /* argv of the helper, NULL-terminated (command[0] a path) */
	size_t n_command;
	/* adcs (AD CS web enrollment); template also goes to a helper as
	 * CERTMONGER_CA_PROFILE */
	char *url;          /* https://HOST/certsrv (adcs), the CMP endpoint (cmp) */
	char *template_name; /* certificate template (adcs) or CA profile (helper) */
	char *auth;         /* "basic", "negotiate", "ntlm" or NULL (none) */
	char *user;         /* user name for basic/ntlm */
	char *password_source; /* secret source spec (file:PATH, env:VAR), never a password */
	int insecure_http;  /* http:// allowed ('ca add --insecure-http') */
	char *eab_kid;      /* External Account Binding: the key id the CA gave out */
	char *eab_hmac_source; /* ... and where its HMAC key is (file:, env:, fd:), never the key */
};

/* How a submission goes (the command's options). */
struct p11km_ca_submit {
	const char *standalone;  /* "ADDR:PORT" for the built-in http-01 responder */
	const char *webroot;     /* DIR: http-01 files under DIR/.well-known/acme-challenge/ */
	const char *cmp_cmd;     /* CMP: request type for this run (NULL: the profile's) */
	const char *old_cert;    /* CMP kur: the certificate to update (PEM file) */
	const char *key_uri;     /* CMP ir/cr/kur: where the request's key is (pkcs11: URI) */
	const char *dns_hook;    /* "PROG [ARG...]": dns-01 through this hook (no shell) */
	const char *preferred_chain; /* the issuer CN of the chain's top certificate, or NULL */
	/* a session the caller holds on a token, logged in as the user (req
	 * submit --install: the key's token), or NULL: an account key on that
	 * token signs in a session of its own without a second C_Login */
	const struct p11km_session *held;
	/* progress: called once per step with a short line (may be NULL) */
	void (*step)(void *arg, const char *name, const char *detail);
	void *step_arg;
	/* results */
	unsigned long signatures;  /* JWS signatures made (one C_Sign each on a token) */
	unsigned long requests;    /* HTTP requests */
	unsigned long bad_nonces;  /* badNonce answers retried */
	char *order_url, *cert_url;
	/* pending requests (helper, adcs): in, the cookie of an earlier "come
	 * back later" when polling (NULL: submit); out, pending set when the CA
	 * holds the request, with its cookie (may be NULL: submit again) and
	 * the delay it asked for (seconds, 0: none given) */
	const char *cookie_in;
	/* an MS renewal (req renew --format ms-renewal): the CMS SignedData
	 * (DER) around the request, sent instead of it (adcs only) */
	const unsigned char *wrapped;
	size_t wrapped_len;
	/* the certificate the request renews (PEM), for a helper's
	 * CERTMONGER_CERTIFICATE; NULL: none */
	const char *old_cert_pem;
	/* ACME: how long (seconds) this run waits for an order that is still
	 * processing after finalize; past it, pending is set with the order's
	 * URL as the cookie, and a cookie_in resumes that order.  0: no limit
	 * but the poll count (a failure then) */
	unsigned max_wait;
	int pending;
	char *cookie;
	long delay;
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
	/* The CA's own certificates (PEM, malloc'ed); NULL: not supported. */
	int (*roots)(struct p11km_ctx *ctx, const struct p11km_ca_profile *p, char **pem,
	             size_t *pem_len);
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
/* The same; a key on the token of held (a logged-in session, or NULL) is
 * used without logging in again. */
int p11km_account_key_open_held(struct p11km_ctx *ctx, const char *spec,
                                const struct p11km_session *held, struct p11km_account_key *k);
void p11km_account_key_release(struct p11km_account_key *k);
/* base64url without padding (malloc'ed, NULL: no memory). */
char *p11km_b64url(const unsigned char *p, size_t n);
/* base64url (padding and trailing whitespace allowed) decoded; NULL when
 * it is not base64url.  malloc'ed. */
unsigned char *p11km_b64url_decode(const char *s, size_t *n);
/*
 * A flattened JWS: protected header {alg, nonce (when not NULL), url, and
 * kid (when not NULL) or jwk}, payload (NULL: "" for POST-as-GET).  *out malloc'ed.
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

/* --- pending requests (ca-pending.c): one file per request ----------------
 * STATE/pending/CA-SHA256.json (0600, written atomically), SHA256 the hash
 * of the DER request; STATE is --state-dir, else $P11KM_STATE_DIR, else
 * /var/lib/p11km. */
#define P11KM_STATE_DIR_DEFAULT "/var/lib/p11km"
const char *p11km_state_dir(const char *opt);
struct p11km_ca_pending {
	char *ca;          /* profile name */
	char *cookie;      /* the CA's cookie (helper) or request id (adcs); may be NULL */
	long delay;        /* seconds the CA asked to wait; 0: none */
	long long since;   /* when the CA first held the request (time()) */
	long long updated; /* the last answer */
	char *path;        /* the file */
};
void p11km_ca_pending_free(struct p11km_ca_pending *pd);
/* The pending file of this request at CA ca; P11KM_ERR_NOTFOUND if none. */
int p11km_ca_pending_load(const char *state, const char *ca, const unsigned char *csr,
                          size_t csr_len, struct p11km_ca_pending **out);
/* Store (create or replace) the pending state of the request. */
int p11km_ca_pending_save(const char *state, const char *ca, const unsigned char *csr,
                          size_t csr_len, const char *cookie, long delay, long long since);
int p11km_ca_pending_remove(const char *state, const char *ca, const unsigned char *csr,
                            size_t csr_len);

/* A CA's answer as a PEM chain for the request: certificates parsed with
 * p11km_certs_parse(), the one whose key is the request's first (another
 * key is P11KM_ERR_VERIFY).  *pem malloc'ed. */
int p11km_ca_reply_chain(const unsigned char *data, size_t len, const char *what,
                         const unsigned char *csr, size_t csr_len, char **pem, size_t *pem_len);
/* Certificates as a PEM bundle (for 'ca roots'), at least one. */
int p11km_ca_reply_certs(const unsigned char *data, size_t len, const char *what, char **pem,
                         size_t *pem_len);

/* certmonger CA helpers (ca-helper.c) */
int p11km_helper_submit(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                        const unsigned char *csr, size_t csr_len, struct p11km_ca_submit *sub,
                        char **chain, size_t *chain_len);
int p11km_helper_roots(struct p11km_ctx *ctx, const struct p11km_ca_profile *p, char **pem,
                       size_t *pem_len);

/* AD CS web enrollment (ca-adcs.c) */
int p11km_adcs_submit(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                      const unsigned char *csr, size_t csr_len, struct p11km_ca_submit *sub,
                      char **chain, size_t *chain_len);
int p11km_adcs_roots(struct p11km_ctx *ctx, const struct p11km_ca_profile *p, char **pem,
                     size_t *pem_len);

/* ACME (ca-acme.c) */
int p11km_acme_submit(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                      const unsigned char *csr, size_t csr_len, struct p11km_ca_submit *sub,
                      char **chain, size_t *chain_len);

/* CMP (ca-cmp.c): the request as the profile's (or sub->cmp_cmd's) message
 * type, certConf, the chain back. */
int p11km_cmp_submit(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                     const unsigned char *csr, size_t csr_len, struct p11km_ca_submit *sub,
                     char **chain, size_t *chain_len);
/* The CA's certificates (genm with id-it-caCerts, RFC 9483 4.3.1) as PEM,
 * at least one. */
int p11km_cmp_roots(struct p11km_ctx *ctx, const struct p11km_ca_profile *p, char **pem,
                    size_t *pem_len);
/* The account of the profile's key, found with onlyReturnExisting (never
 * created), and then: nothing (SHOW), its key rolled over to new_key (a
 * pkcs11: URI or a PEM file, made if absent), or deactivated.
 * *account_url malloc'ed. */
enum p11km_acme_account_op { P11KM_ACME_SHOW, P11KM_ACME_ROLLOVER, P11KM_ACME_DEACTIVATE };
int p11km_acme_account(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                       enum p11km_acme_account_op op, const char *new_key,
                       struct p11km_ca_submit *sub, char **account_url);

/* revokeCert (RFC 8555 7.6) of the DER certificate, signed by the account
 * key (cert_key NULL) or by the certificate's own key (cert_key a pkcs11:
 * URI or a file; it must match the certificate).  reason: RFC 5280 code. */
int p11km_acme_revoke(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                      const unsigned char *der, size_t der_len, int reason,
                      const char *cert_key, struct p11km_ca_submit *sub);
/* An RFC 5280 reason name (keyCompromise, superseded, ...) or number; -1 if unknown. */
int p11km_revoke_reason(const char *name);

/* --- ARI, RFC 9773 (ca-acme-ari.c) --- */
struct p11km_renewal_window {
	time_t start, end;        /* the suggested window */
	char *cert_id;            /* base64url(AKI keyIdentifier) "." base64url(serial) */
	char *explanation;        /* explanationURL, or NULL */
	long retry_after;         /* seconds until asking again (Retry-After; 0: none) */
};
/* The CA's suggested renewal window for cert (issued by the profile's CA).
 * P11KM_ERR_UNSUPPORTED when its directory has no renewalInfo; no account
 * key is used (a GET). */
int p11km_acme_renewal_window(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                              X509 *cert, struct p11km_renewal_window *w);
void p11km_renewal_window_release(struct p11km_renewal_window *w);
/* The ARI certificate identifier of cert (malloc'ed; NULL: no AKI keyIdentifier). */
char *p11km_ari_cert_id(X509 *cert);

#endif
