/* store.h: where certificates go: token objects, files, the system trust
 * store and NSS databases. */
#ifndef P11KM_STORE_H
#define P11KM_STORE_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/x509.h>

#include "p11km/p11.h"
#include "p11km/txn.h"

/* --- certificate objects on a token (store-token.c) ----------------------- */

/* CKA_CERTIFICATE_CATEGORY values (PKCS#11 2.40). */
#define P11KM_CAT_USER 1UL
#define P11KM_CAT_AUTHORITY 2UL

/*
 * Create a certificate object: CKO_CERTIFICATE, CKC_X_509, CKA_TOKEN,
 * CKA_PRIVATE FALSE, CKA_LABEL, CKA_ID (left out when id_len is 0),
 * CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER (DER INTEGER), CKA_VALUE,
 * CKA_CERTIFICATE_CATEGORY, and CKA_TRUSTED TRUE when trusted.  The object
 * is read back and its CKA_VALUE compared; a mismatch destroys it and
 * fails.  *out is its handle.
 */
int p11km_tok_cert_create(struct p11km_session *s, X509 *cert, const char *label,
                          const unsigned char *id, size_t id_len, CK_ULONG category,
                          int trusted, CK_OBJECT_HANDLE *out);
/* Certificates with this CKA_ID (id_len 0: an empty CKA_ID and, when label
 * is not NULL, this label). */
int p11km_tok_certs_by_id(struct p11km_session *s, const unsigned char *id, size_t id_len,
                          const char *label, struct p11km_object **objs, size_t *n);
/* The certificate object holding exactly cert (searched by CKA_SUBJECT,
 * CKA_ISSUER and CKA_SERIAL_NUMBER, then CKA_VALUE compared): 1 and *h when
 * found, 0 when not. */
int p11km_tok_cert_find(struct p11km_session *s, X509 *cert, CK_OBJECT_HANDLE *h);
/* Objects with this label, of class cls ((CK_OBJECT_CLASS)-1: any). */
int p11km_tok_by_label(struct p11km_session *s, const char *label, CK_OBJECT_CLASS cls,
                       struct p11km_object **objs, size_t *n);
int p11km_tok_relabel(struct p11km_session *s, CK_OBJECT_HANDLE h, const char *label);
int p11km_tok_destroy(struct p11km_session *s, CK_OBJECT_HANDLE h);
/* "<base>.retired-YYYYMMDD", then "-2", "-3" ... until no object of class
 * cls carries it.  *out is malloc'ed. */
int p11km_tok_retired_label(struct p11km_session *s, const char *base, CK_OBJECT_CLASS cls,
                            char **out);
/* The token's trusted certificates (CKA_TRUSTED TRUE), as a new stack. */
int p11km_tok_trusted_certs(struct p11km_session *s, STACK_OF(X509) **out);
/* A certificate on the token that issued cert (searched by CKA_SUBJECT =
 * cert's issuer name, then checked by name and key identifiers); *out is a
 * new reference, or NULL when there is none. */
int p11km_tok_cert_issuer(struct p11km_session *s, X509 *cert, X509 **out);
/* Does this label end in ".retired-YYYYMMDD[-N]" or ".pending"? */
int p11km_label_is_retired(const char *label);
int p11km_label_is_pending(const char *label);

/* --- trust stores for roots ------------------------------------------------ */

enum p11km_store_kind {
	P11KM_STORE_TOKEN,
	P11KM_STORE_PEM_BUNDLE,
	P11KM_STORE_OPENSSL_DIR,
	P11KM_STORE_SYSTEM,
	P11KM_STORE_NSS,
};

struct p11km_store {
	enum p11km_store_kind kind;
	char *spec;            /* as given, for messages */
	char *path;            /* FILE, DIR, or the token URI text */
	char *system_root;     /* "/" or a scratch root (system store) */
	/* what the store holds now (after p11km_store_load) */
	STACK_OF(X509) *certs;
	char **names;          /* per cert: file name, NSS nickname, or NULL */
	CK_OBJECT_HANDLE *handles; /* per cert, token stores */
	size_t cap;
	int loaded;
	/* token stores */
	struct p11km_uri *uri;
	struct p11km_token *tok;
	struct p11km_session s;
	int logged_in_so;
};

/*
 * Parse "token:URI", "pem-bundle:FILE", "openssl-dir:DIR", "system" or
 * "nss:DIR".  system_root: the root of the file system for the system store
 * (NULL: P11KM_SYSTEM_ROOT, else "/").
 */
int p11km_store_parse(const char *spec, const char *system_root, struct p11km_store **out);
void p11km_store_free(struct p11km_store *st);
const char *p11km_store_kind_name(enum p11km_store_kind k);
/*
 * Read what the store holds.  A token store opens one session; for_write
 * logs in (as SO when --so-pin-source is given, else as user).  A store
 * that does not exist yet (file, directory, NSS database) is empty.
 */
int p11km_store_load(struct p11km_ctx *ctx, struct p11km_store *st, int for_write);
/* The same, for a caller that only asks which of wanted the store holds
 * (p11km_store_index): a token store may then load just those. */
int p11km_store_load_for(struct p11km_ctx *ctx, struct p11km_store *st, int for_write,
                         STACK_OF(X509) *wanted);
/* Index of cert in the store (same DER), or -1. */
int p11km_store_index(const struct p11km_store *st, X509 *cert);
/*
 * Add certs (not yet present) and remove the entries at the indexes in
 * rm, in one go: one rewrite of a file, one session and login on a token,
 * one update-ca-certificates run.  Files change atomically (all or none).
 */
int p11km_store_commit(struct p11km_ctx *ctx, struct p11km_store *st, STACK_OF(X509) *add,
                       const size_t *rm, size_t n_rm);

/* Used by the store back ends. */
int p11km_store_push(struct p11km_store *st, X509 *cert, const char *name, CK_OBJECT_HANDLE h);
int p11km_store_token_load(struct p11km_ctx *ctx, struct p11km_store *st, int for_write);
int p11km_store_token_load_for(struct p11km_ctx *ctx, struct p11km_store *st, int for_write,
                               STACK_OF(X509) *wanted);
int p11km_store_token_commit(struct p11km_ctx *ctx, struct p11km_store *st,
                             STACK_OF(X509) *add, const size_t *rm, size_t n_rm);
int p11km_store_system_load(struct p11km_store *st);
int p11km_store_system_commit(struct p11km_ctx *ctx, struct p11km_store *st,
                              STACK_OF(X509) *add, const size_t *rm, size_t n_rm);
int p11km_store_nss_load(struct p11km_store *st);
int p11km_store_nss_commit(struct p11km_ctx *ctx, struct p11km_store *st,
                           STACK_OF(X509) *add, const size_t *rm, size_t n_rm);

/*
 * Run a program (argv[0] looked up in PATH) without a shell; stdin from
 * /dev/null, stdout captured into *out (NULL: discarded), stderr kept for
 * messages.  Returns 0 when it exits 0, P11KM_ERR_FAILED with the program's
 * last stderr line otherwise.
 */
int p11km_run(char *const argv[], char **out, size_t *out_len);

/* --- files (store-file.c) --------------------------------------------------- */

/* Stage dir/p11km-<first 16 hex digits of the SHA-256>.<ext> holding x as
 * PEM, mode 0644, with a subject and fingerprint comment when header.  The
 * file name (not the path) goes to *name when name is not NULL. */
int p11km_ftxn_write_cert(struct p11km_ftxn *t, const char *dir, X509 *x, const char *ext,
                          int header, char **name);

/* Subject-name hash as 'openssl rehash' uses it ("%08lx"). */
unsigned long p11km_cert_subject_hash(X509 *cert);

#endif
