/* op-token.h: library operations on tokens and their objects, with option
 * and result structs: tokens (op-token.c: list, init), PINs (op-pin.c),
 * objects (op-object.c: list; op-object-edit.c: export, delete, relabel)
 * and keys (op-key.c: generate, attest).  The commands (cmd-token.c,
 * cmd-object.c, cmd-key.c) parse, call one of these and print its result
 * with the p11km_*_print() beside it; an operation prints nothing on stdout
 * (notes and warnings through the log, failures through p11km_fail()).  On
 * failure a result is empty; release it with its _release() either way. */
#ifndef P11KM_OP_TOKEN_H
#define P11KM_OP_TOKEN_H

#include <stddef.h>
#include <stdio.h>

#include "p11km/keygen.h"
#include "p11km/p11.h"
#include "p11km/x509.h"

/* --- token list, token init (op-token.c) ------------------------------------------ */

struct p11km_token_list_opts {
	const char *uri;              /* NULL: every token */
};

struct p11km_token_list_result {
	int all;                      /* no URI was given */
	struct p11km_token *toks;
	size_t n;
	struct p11km_caps *caps;      /* per token; have_caps[i]: initialised, read */
	int *have_caps;
};

/* P11KM_ERR_NOTFOUND when a URI matches no token (none found without one is
 * an empty list, with a note when printed). */
int p11km_token_list(struct p11km_ctx *ctx, const struct p11km_token_list_opts *o,
                     struct p11km_token_list_result *res);
void p11km_token_list_print(FILE *fp, int json, const struct p11km_token_list_result *res);
void p11km_token_list_result_release(struct p11km_token_list_result *res);

struct p11km_token_init_opts {
	const char *uri;              /* NULL: the one uninitialised token */
	const char *label;            /* 1 to 32 bytes */
	const char *so_pin_source;    /* the SO PIN (the old one, when re-initialising) */
	const char *pin_source;       /* the new user PIN */
	int force;                    /* re-initialise; a label another token has */
};

struct p11km_token_init_result {
	char *uri, *label, *serial;   /* of the initialised token */
};

/* Both PINs are read before the token is touched; a failure after
 * C_InitToken says that the user PIN is not set and how to finish. */
int p11km_token_init(struct p11km_ctx *ctx, const struct p11km_token_init_opts *o,
                     struct p11km_token_init_result *res);
void p11km_token_init_print(FILE *fp, int json, const struct p11km_token_init_result *res);
void p11km_token_init_result_release(struct p11km_token_init_result *res);

/* --- token pin change, token pin init (op-pin.c) ------------------------------------ */

struct p11km_pin_opts {
	const char *uri;              /* NULL: the one initialised token */
	int init;                     /* the SO sets the user PIN (else: change) */
	int so;                       /* change the SO PIN (not with init) */
	const char *new_pin_source;   /* the new PIN: file:, env:, fd: or prompt (asked twice) */
	int dry_run;                  /* read no PIN, change nothing */
};

struct p11km_pin_result {
	char *token_uri;
	int init, so, dry_run;
};

/* The current PIN (--pin-source, --so-pin-source or the URI's) is tried
 * once, by p11km_login(). */
int p11km_pin_change(struct p11km_ctx *ctx, const struct p11km_pin_opts *o,
                     struct p11km_pin_result *res);
void p11km_pin_print(FILE *fp, int json, const struct p11km_pin_result *res);
void p11km_pin_result_release(struct p11km_pin_result *res);

/* --- object list (op-object.c) ------------------------------------------------------ */

struct p11km_object_list_opts {
	const char *uri;              /* NULL: every token */
	const char *type;             /* cert, private, public, key, trusted, all (NULL) */
};

struct p11km_listed {             /* the objects of one token */
	struct p11km_token *tok;      /* borrowed from the result's toks */
	struct p11km_object *objs;
	size_t n;
	int logged_in;
	struct p11km_cert_summary *certs; /* per object, for certificates */
};

struct p11km_object_list_result {
	struct p11km_token *toks;
	size_t n;
	struct p11km_listed *l;       /* per token (empty for an uninitialised one) */
};

int p11km_object_list(struct p11km_ctx *ctx, const struct p11km_object_list_opts *o,
                      struct p11km_object_list_result *res);
void p11km_object_list_print(FILE *fp, int json, const struct p11km_object_list_result *res);
void p11km_object_list_result_release(struct p11km_object_list_result *res);

/* --- object export, delete, relabel (op-object-edit.c) ------------------------------ */

struct p11km_export_opts {
	const char *uri;              /* names a certificate or public key */
	const char *out;              /* written there atomically; NULL: only in the result */
	int der, chain;
};

struct p11km_export_result {
	char *uri;                    /* the object exported */
	CK_OBJECT_CLASS cls;
	int der, certificates;        /* certificates: how many (0: a public key) */
	const char *out;              /* borrowed from the options */
	unsigned char *data;          /* PEM (NUL-terminated) or DER */
	size_t len;
};

/* A private or secret key is refused before the token is touched. */
int p11km_object_export(struct p11km_ctx *ctx, const struct p11km_export_opts *o,
                        struct p11km_export_result *res);
/* The JSON document on fp (holding the PEM when no file was written); without
 * json and without a file, the data on stdout (p11km_write_file_atomic("-"):
 * a write that fails, a full disk, is an error). */
int p11km_object_export_print(FILE *fp, int json, const struct p11km_export_result *res);
void p11km_export_result_release(struct p11km_export_result *res);

struct p11km_delete_opts {
	const char *uri;
	const char *bindings;         /* never delete what a binding under this directory uses */
	int all;                      /* every object the URI selects, else exactly one */
	int dry_run;
	int force;                    /* a private or secret key too */
};

struct p11km_delete_result {
	char *token_uri;
	char **uris;                  /* what was (dry run: would be) destroyed, in order */
	size_t n;
	int dry_run;
};

int p11km_object_delete(struct p11km_ctx *ctx, const struct p11km_delete_opts *o,
                        struct p11km_delete_result *res);
void p11km_object_delete_print(FILE *fp, int json, const struct p11km_delete_result *res);
void p11km_delete_result_release(struct p11km_delete_result *res);

struct p11km_relabel_opts {
	const char *uri;              /* an object of the pair */
	const char *label;            /* the new CKA_LABEL */
	const unsigned char *id;      /* with set_id: the new CKA_ID */
	size_t id_len;
	int set_id, dry_run;
};

struct p11km_relabel_item {
	CK_OBJECT_CLASS cls;
	char *from, *to;              /* URIs */
};

struct p11km_relabel_result {
	struct p11km_relabel_item *items;
	size_t n;
	int dry_run;
};

/* Key, public key and certificate of the pair change together; what a
 * failing step had changed is put back. */
int p11km_object_relabel(struct p11km_ctx *ctx, const struct p11km_relabel_opts *o,
                         struct p11km_relabel_result *res);
void p11km_object_relabel_print(FILE *fp, int json, const struct p11km_relabel_result *res);
void p11km_relabel_result_release(struct p11km_relabel_result *res);

/* --- key generate, key attest (op-key.c) -------------------------------------------- */

struct p11km_keygen_opts {
	const char *uri;              /* the token (no object attributes) */
	enum p11km_keytype type;
	const char *label;            /* NULL: the PIV slot's name (with slot) */
	const unsigned char *id;      /* NULL: the key identifier of the public key */
	size_t id_len;
	const char *slot;             /* PIV slot 9a, 9c, 9d, 9e (one-byte id 01..04), or NULL */
	int allow_engine_breaking, force;
};

struct p11km_keygen_result {
	char *uri, *token, *label, *id; /* id in hex */
	enum p11km_keytype type;
	int sensitive, extractable;
};

int p11km_key_generate(struct p11km_ctx *ctx, const struct p11km_keygen_opts *o,
                       struct p11km_keygen_result *res);
void p11km_key_generate_print(FILE *fp, int json, const struct p11km_keygen_result *res);
void p11km_keygen_result_release(struct p11km_keygen_result *res);

struct p11km_attest_opts {
	const char *uri;              /* the key */
	const char *out;              /* the two certificates (PEM); NULL or "-": only in the result */
	const char *ca_file;          /* the vendor's attestation root(s), or NULL: not verified */
};

struct p11km_attest_result {
	char *key, *attestation, *device; /* the key's URI, the two subjects */
	int root_verified;
	const char *out;              /* borrowed from the options */
	unsigned char *pem;
	size_t len;
};

int p11km_key_attest(struct p11km_ctx *ctx, const struct p11km_attest_opts *o,
                     struct p11km_attest_result *res);
/* The PEM on stdout when no file was given (p11km_write_file_atomic("-")),
 * then the JSON document on fp, or the verdict on stderr (unless quiet). */
int p11km_key_attest_print(FILE *fp, int json, int quiet, const struct p11km_attest_result *res);
void p11km_attest_result_release(struct p11km_attest_result *res);

#endif
