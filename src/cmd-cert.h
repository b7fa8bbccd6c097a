/* cmd-cert.h: what the parts of 'cert install' share (cmd-cert.c: the
 * token; cmd-cert-out.c: the --out-dir files and --bind bindings). */
#ifndef P11KM_CMD_CERT_H
#define P11KM_CMD_CERT_H

#include <openssl/x509.h>

#include "p11km/bind.h"
#include "p11km/p11.h"
#include "p11km/store.h"

#define MAX_BIND 8

struct opts {
	const char *reply, *uri, *ca_file, *ca_path, *out_dir;
	const char *bind[MAX_BIND];
	size_t n_bind;
	int no_verify, no_chain, keep_old, destroy_old, der, dry_run;
};

/* One line of the report: written / replaced / kept. */
enum { ACT_WRITTEN, ACT_REPLACED, ACT_KEPT };
struct act {
	int cat;
	char *what;    /* "certificate", "intermediate", "key", "file" */
	char *name;    /* label, path */
	char *detail;  /* "destroyed", "relabelled X", "already present", sha256 ... */
};

/* An old object --destroy-old destroys once the bindings have switched. */
struct doomed {
	CK_OBJECT_HANDLE h;
	CK_OBJECT_CLASS cls;
	char *label;
};

struct install {
	struct p11km_ctx *ctx;
	struct opts o;
	struct p11km_uri *uri;
	struct p11km_token *tok;
	struct p11km_session s;
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
	struct act *acts;
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
 * a file first (cmd-cert-slot.c).  *path: where (NULL when o is a
 * placeholder, not worth keeping); with --dry-run nothing is written. */
int cert_slot_keep(struct install *in, const struct p11km_object *o, char **path);

#endif
