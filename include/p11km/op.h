/* op.h: library operations with option and result structs, called by the
 * commands (cmd-*.c: parse -> call -> print) and by the renewal tracker.
 * An operation prints nothing on stdout; notes and warnings go through the
 * log (p11km_note/p11km_warn), failures through p11km_fail(). */
#ifndef P11KM_OP_H
#define P11KM_OP_H

#include <stddef.h>

#include <openssl/x509.h>

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
};

/* Options are validated first (P11KM_ERR_USAGE), then the token is used.
 * On failure *res is empty; release it with p11km_req_result_release. */
int p11km_req_new(struct p11km_ctx *ctx, const struct p11km_req_opts *o,
                  struct p11km_req_result *res);
int p11km_req_renew(struct p11km_ctx *ctx, const struct p11km_req_opts *o,
                    struct p11km_req_result *res);
void p11km_req_result_release(struct p11km_req_result *res);

#endif
