/* store.h: where certificates go: token objects, files, the system trust
 * store and NSS databases. */
#ifndef P11KM_STORE_H
#define P11KM_STORE_H

#include <stddef.h>
#include <sys/types.h>

#include <openssl/x509.h>

#include "p11km/p11.h"
#include "p11km/run.h"
#include "p11km/txn.h"
#include "p11km/util.h"

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
int p11km_tok_cert_issuer(struct p11km_session *s, X509 *cert, X509 **out); /* store-chain.c */
/* Append to out the trusted certificates on the token that issued cert
 * (one targeted search: CKA_TRUSTED and CKA_SUBJECT = cert's issuer). */
int p11km_tok_trusted_issuers(struct p11km_session *s, X509 *cert, STACK_OF(X509) *out);
/* Complete chain (the intermediates above leaf, nearest first) from the
 * token, one issuer at a time (p11km_tok_cert_issuer), stopping at the
 * shortest chain that verifies against trust plus the token's trusted
 * issuers, which are searched for (targeted, p11km_tok_trusted_issuers)
 * only while it does not verify and appended to anchors (owned by the
 * caller).  trust NULL: no verification, walk up to a self-signed
 * certificate or until no issuer is found; extend 0: only verify.  What is
 * added is pushed to chain and, owned, to added.  1 when the chain
 * verifies, 0 when not (or trust is NULL), < 0 on error (store-chain.c). */
struct p11km_trust;
int p11km_tok_chain_complete(struct p11km_session *s, X509 *leaf, STACK_OF(X509) *chain,
                             const struct p11km_trust *trust, int extend, STACK_OF(X509) *added,
                             STACK_OF(X509) *anchors);
/* Does this label end in ".retired-YYYYMMDD[-N]" or ".pending"? */
int p11km_label_is_retired(const char *label);
int p11km_label_is_pending(const char *label);

/* --- trust stores for roots ------------------------------------------------ */

struct p11km_store;

/*
 * A store kind (one file each: store-token.c, store-pem.c, store-dir.c,
 * store-system.c, store-nss.c, each defining one p11km_store_<kind>_ops),
 * and one row in the table in store.c that gives its prefix.  The
 * dispatcher calls lock, then load, then commit at most once, then
 * release: a store is read only under the lock its commit holds.
 */
struct p11km_store_ops {
	/* Take the store's lock: exclusive for_write, else at least what
	 * keeps a reader from seeing half a change. */
	int (*lock)(struct p11km_ctx *ctx, struct p11km_store *st, int for_write);
	/* Read what the store holds (p11km_store_push for each certificate).
	 * A store that does not exist yet is empty.  wanted: see
	 * p11km_store_open_for(); a kind may ignore it. */
	int (*load)(struct p11km_ctx *ctx, struct p11km_store *st, int for_write,
	            STACK_OF(X509) *wanted);
	/* Add and remove (indexes into st->certs) in one go, or change nothing. */
	int (*commit)(struct p11km_ctx *ctx, struct p11km_store *st, STACK_OF(X509) *add,
	              const size_t *rm, size_t n_rm);
	/* roots list: fail when the store does not exist (NULL: no check). */
	int (*check_exists)(const struct p11km_store *st);
	/* Free st->priv (NULL: nothing to free). */
	void (*release)(struct p11km_store *st);
};

struct p11km_store {
	const struct p11km_store_ops *ops;
	char *spec;            /* as given, for messages */
	char *path;            /* FILE, DIR, or the token URI text */
	char *system_root;     /* "/" or a scratch root (system store) */
	/* what the store holds now (after p11km_store_open) */
	STACK_OF(X509) *certs;
	char **names;          /* per cert: file name, NSS nickname, or NULL */
	CK_OBJECT_HANDLE *handles; /* per cert, token stores */
	size_t cap;
	int loaded, for_write;
	/* the lock of a store kept in a directory (p11km_store_lock_dir) */
	struct p11km_lock *lock;
	char *made_dir;        /* created by the lock for a write; removed if left empty */
	void *priv;            /* the kind's own state */
};

/* "store to install into (repeatable): token:URI pem-bundle:FILE ...",
 * and the same for removing: from the table of kinds (store.c). */
extern const char p11km_store_to_help[], p11km_store_from_help[];

/*
 * Parse "token:URI", "pem-bundle:FILE", "openssl-dir:DIR", "system" or
 * "nss:DIR" (the table of kinds in store.c).  system_root: the root of the
 * file system for the system store (NULL: P11KM_SYSTEM_ROOT, else "/").
 */
int p11km_store_parse(const char *spec, const char *system_root, struct p11km_store **out);
/* Releases the store's lock too (NULL-safe). */
void p11km_store_free(struct p11km_store *st);
/*
 * Lock the store, then read what it holds.  A token store opens one
 * session; for_write logs in (as SO when --so-pin-source is given, else as
 * user).  The lock is held until p11km_store_free(), so that what was read
 * is still what the store holds when p11km_store_commit() changes it.
 */
int p11km_store_open(struct p11km_ctx *ctx, struct p11km_store *st, int for_write);
/* The same, for a caller that only asks which of wanted the store holds
 * (p11km_store_index): a token store may then load just those. */
int p11km_store_open_for(struct p11km_ctx *ctx, struct p11km_store *st, int for_write,
                         STACK_OF(X509) *wanted);
/* Index of cert in the store (same DER), or -1. */
int p11km_store_index(const struct p11km_store *st, X509 *cert);
/*
 * Add certs (not yet present) and remove the entries at the indexes in
 * rm, in one go: one rewrite of a file, one session and login on a token,
 * one update-ca-certificates run.  Files change atomically (all or none).
 * Only after p11km_store_open(..., for_write).
 */
int p11km_store_commit(struct p11km_ctx *ctx, struct p11km_store *st, STACK_OF(X509) *add,
                       const size_t *rm, size_t n_rm);
/* roots list: the store must exist (a mistyped path is not an empty store). */
int p11km_store_check_exists(const struct p11km_store *st);

/* --- for the store kinds (store-common.c) ----------------------------------- */

int p11km_store_push(struct p11km_store *st, X509 *cert, const char *name, CK_OBJECT_HANDLE h);
/* Is index i in rm? */
int p11km_store_removing(size_t i, const size_t *rm, size_t n_rm);
/*
 * Lock the directory dir for the store (the lock p11km_ftxn takes there
 * too): exclusive for_write, shared otherwise.  With for_write and mode,
 * an absent dir is created first (and removed again on release if it is
 * still empty); without, an absent dir is not locked (nothing to read).
 */
int p11km_store_lock_dir(struct p11km_store *st, const char *dir, int for_write, mode_t mode);
/* check_exists for kinds kept in a file (want_dir 0) or a directory. */
int p11km_store_path_exists(const struct p11km_store *st, int want_dir);
/* "# <subject>\n# SHA256 <fingerprint>\n" and the PEM of x. */
int p11km_store_pem_entry(X509 *x, struct p11km_buf *b);
/* Stage the removal of dir/name (name NULL: out of memory). */
int p11km_ftxn_unlink_in(struct p11km_ftxn *t, const char *dir, const char *name);
/* Stage dir/p11km-<first 16 hex digits of the SHA-256>.<ext> holding x as
 * PEM, mode 0644, with a subject and fingerprint comment when header.  The
 * file name (not the path) goes to *name when name is not NULL. */
int p11km_ftxn_write_cert(struct p11km_ftxn *t, const char *dir, X509 *x, const char *ext,
                          int header, char **name);

/* p11km_run(): the subprocess runner, include/p11km/run.h (util layer). */

/* Subject-name hash as 'openssl rehash' uses it ("%08lx"; store-dir.c). */
unsigned long p11km_cert_subject_hash(X509 *cert);

#endif
