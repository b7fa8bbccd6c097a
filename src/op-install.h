/* op-install.h: what the parts of the install operation share (op-install.c:
 * the token; op-install-out.c: the --out-dir files and --bind bindings). */
#ifndef P11KM_OP_INSTALL_H
#define P11KM_OP_INSTALL_H

#include <openssl/x509.h>

#include "p11km/bind.h"
#include "p11km/p11.h"
#include "p11km/store.h"

#include "p11km/op.h"

#define MAX_BIND P11KM_INSTALL_MAX_BIND
enum { ACT_WRITTEN = P11KM_ACT_WRITTEN, ACT_REPLACED = P11KM_ACT_REPLACED,
       ACT_KEPT = P11KM_ACT_KEPT };

/* An old object --destroy-old destroys once the bindings have switched. */
struct doomed {
	CK_OBJECT_HANDLE h;
	CK_OBJECT_CLASS cls;
	char *label;
};

struct install {
	struct p11km_ctx *ctx;
	struct p11km_install_opts o;
	struct p11km_uri *uri;
	struct p11km_token *tok;
	struct p11km_session s;
	int borrowed;               /* tok and s are the caller's (o.session) */
	STACK_OF(X509) *reply;
	X509 *leaf;                 /* borrowed from reply */
	STACK_OF(X509) *inter;      /* borrowed certs, nearest first */
	STACK_OF(X509) *from_token; /* intermediates found on the token (owned) */
	struct p11km_ftxn *files;   /* --out-dir files, staged before the token changes */
	struct p11km_rebind *rebind[MAX_BIND]; /* --bind: staged, too */
	struct doomed *doomed;      /* --destroy-old: retired first, destroyed last */
	size_t n_doomed;
	X509 *root;
	struct p11km_object key;    /* the private key */
	int have_key;
	char *key_label;            /* the label the key keeps: L */
	int rekey;
	char *leaf_fp;
	struct p11km_install_act *acts;
	size_t n_acts;
	char date[16];
};

int cert_act(struct install *in, int cat, const char *what, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Stage the --out-dir files and the --bind rewrites, before the token
 * changes; commit the bindings after it. */
int cert_stage_files(struct install *in);
int cert_stage_bindings(struct install *in);
int cert_commit_bindings(struct install *in);

/* A token that keeps one certificate per key slot overwrites o: keep it as
 * a file first (op-install-slot.c).  *path: where (NULL when o is a
 * placeholder, not worth keeping); with --dry-run nothing is written. */
int cert_slot_keep(struct install *in, const struct p11km_object *o, char **path);

#endif
