/* p11.h: modules, tokens, sessions, logins, object searches. */
#ifndef P11KM_P11_H
#define P11KM_P11_H

#include <p11-kit/pkcs11.h>
#include <stddef.h>

#include "p11km/pin.h"
#include "p11km/uri.h"

/* Call a PKCS#11 function through a token, logged with --trace (the
 * function name and its CK_RV, never arguments, so never a PIN). */
#define P11KM_CALL(f, fn, ...) p11km_traced(#fn, (f)->fn(__VA_ARGS__))
CK_RV p11km_traced(const char *fn, CK_RV rv);

/* "CKR_PIN_INCORRECT" for a CK_RV; "CKR_0x..." for an unknown value. */
const char *p11km_ckr_name(CK_RV rv);
/* Map a CK_RV to an error code and record "fn: what failed: CKR_NAME". */
int p11km_fail_ckr(CK_RV rv, const char *what, const char *fn);
/* The same for a call to tok: a failure that may be a token pulled out
 * (CKR_DEVICE_ERROR, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, a vanished
 * session, CKR_GENERAL_ERROR ...) costs one C_GetSlotInfo: a slot without
 * its token says it was removed, a removable one asks whether it was
 * pulled (ykcs11 says CKR_DEVICE_ERROR and keeps the slot full). */
struct p11km_token;
int p11km_fail_ckr_tok(const struct p11km_token *tok, CK_RV rv, const char *what, const char *fn);
/* A module answered what no module may (a length past the buffer, more
 * handles than asked for, a count that keeps changing): record "what: fn
 * misbehaved: <detail>; ..." and return P11KM_ERR_TOKEN (exit 3). */
int p11km_fail_module(const char *what, const char *fn, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

struct p11km_module {
	CK_FUNCTION_LIST *f;
	char *name;        /* registry name, or the path given */
	int initialized;
	int from_p11kit;   /* part of the registry list (released with it) */
	int used;          /* a session was opened on one of its tokens */
	int rescanned;     /* initialised again once to find a token (p11-module.c) */
};

struct p11km_login_failure;
struct p11km_pin_cache;

struct p11km_ctx {
	/* global options (borrowed from argv or the environment) */
	const char *module_opt;      /* --module or P11KM_MODULE */
	const char *pin_source_opt;  /* --pin-source */
	const char *so_pin_source_opt; /* --so-pin-source */
	/* --force: override a safety refusal; the operations that honour it
	 * say so (the validity check of an install, a pending key of an
	 * interrupted renewal, a PIN source that is not private) */
	int force;
	/* modules, loaded on demand by p11km_modules_load() */
	struct p11km_module *modules;
	size_t n_modules;
	CK_FUNCTION_LIST **registry;
	int modules_loaded;
	/* PINs read in this run, and logins that failed: never retried */
	struct p11km_pin_cache *pins;
	struct p11km_login_failure *failures;
	/* token locks (p11-lock.c): taken by read-write sessions when
	 * lock_tokens (the command changes tokens), held until release */
	const char *lock_dir_opt;    /* --lock-dir (NULL: P11KM_LOCK_DIR, /run/p11km) */
	int lock_tokens;
	struct p11km_lock **locks;
	size_t n_locks;
};

void p11km_ctx_init(struct p11km_ctx *ctx);
/* Wipe and forget the PINs read in this run. */
void p11km_pin_cache_clear(struct p11km_ctx *ctx);
/* "a b c" of strings (malloc'ed), for lists of candidate URIs. */
char *p11km_join_uris(char **uris, size_t n);
/* Finalize and release modules, wipe cached PINs. */
void p11km_ctx_release(struct p11km_ctx *ctx);

/*
 * Load modules: --module (name from the p11-kit registry, or a path), else
 * the URI's module-name/module-path, else every registered module (those
 * that fail to initialise are skipped with a one-line note).  Idempotent.
 */
int p11km_modules_load(struct p11km_ctx *ctx, const struct p11km_uri *uri);

struct p11km_token {
	struct p11km_module *mod;
	CK_FUNCTION_LIST *f;
	CK_SLOT_ID slot;
	CK_TOKEN_INFO info;
	char label[33], manufacturer[33], model[17], serial[17]; /* trimmed */
	char *uri;           /* the token's URI */
};

/*
 * Every present, initialised-or-not token matching uri (NULL: all).
 * *toks is an array of *n tokens (possibly 0); free with p11km_tokens_free().
 */
int p11km_tokens_find(struct p11km_ctx *ctx, const struct p11km_uri *uri,
                      struct p11km_token **toks, size_t *n);
void p11km_tokens_free(struct p11km_token *toks, size_t n);
/* Exactly one token: P11KM_ERR_NOTFOUND / P11KM_ERR_AMBIGUOUS (listing the
 * candidates' URIs) otherwise.  *tok is a copy owned by the caller: free
 * with p11km_token_free(). */
int p11km_token_find_one(struct p11km_ctx *ctx, const struct p11km_uri *uri,
                         struct p11km_token **tok);
void p11km_token_free(struct p11km_token *tok);
/* Exactly one initialised token matching uri (NULL: any): what a command
 * that works on keys needs when no token is named.  Uninitialised slots
 * (SoftHSM's free slot) and write-protected tokens (p11-kit's System Trust)
 * are not candidates.  Errors as above. */
int p11km_token_find_initialised(struct p11km_ctx *ctx, const struct p11km_uri *uri,
                                 struct p11km_token **tok);
/* Refresh tok->info (one C_GetTokenInfo). */
int p11km_token_refresh(struct p11km_token *tok);
/* After waiting for the token's lock: the module initialised again when
 * this run has no session on it (SoftHSM2 2.6.1, p11-module.c), the token
 * found again by serial and label; else p11km_token_refresh(). */
int p11km_token_reload(struct p11km_token *tok);
/*
 * Lock tok against other p11km processes that change it (keyed by module
 * file, serial and label; a file in the lock directory, see lock.h), with
 * a note while it waits; held until p11km_ctx_release().  When it had to
 * wait, the token information is read again.  p11km_session_open() calls
 * it for read-write sessions when ctx->lock_tokens is set.
 */
int p11km_token_lock(struct p11km_ctx *ctx, struct p11km_token *tok);

struct p11km_session {
	struct p11km_ctx *ctx;
	struct p11km_token *tok;   /* borrowed */
	CK_FUNCTION_LIST *f;
	CK_SESSION_HANDLE h;
	int open;
	CK_USER_TYPE logged_in;    /* (CK_USER_TYPE)-1 when not logged in */
	struct p11km_tokcerts *certs; /* borrowed: the token's certificates, read once for a
	                            * batch (p11km_tokcerts_load), or NULL */
};

int p11km_session_open(struct p11km_ctx *ctx, struct p11km_token *tok, int rw,
                       struct p11km_session *out);
void p11km_session_close(struct p11km_session *s);

/*
 * Log in as user (CKU_USER or CKU_SO) with the PIN from src (NULL: the
 * token must have a protected authentication path).  Uses the token flags
 * read when the token was found: refuses a locked PIN, and a final-try PIN
 * unless ctx->force (or the source is interactive).  At most one C_Login
 * per token, user type and PIN per run: a PIN that failed is never sent
 * again.  CKR_USER_ALREADY_LOGGED_IN counts as success.
 */
int p11km_login(struct p11km_session *s, CK_USER_TYPE user, const struct p11km_pinsrc *src);
/* The token flags that forbid trying a PIN of user from src, read before
 * any C_Login or C_InitToken: a locked PIN always; a final-try PIN unless
 * src is a prompt (or force_ok and --force).  P11KM_ERR_LOGIN with the
 * reason, or 0. */
int p11km_pin_flags_check(struct p11km_ctx *ctx, const struct p11km_token *tok, CK_USER_TYPE user,
                          const struct p11km_pinsrc *src, int force_ok);
/* The PIN of a source, read at most once per run (cached, wiped at
 * p11km_ctx_release()).  *pin is borrowed. */
int p11km_pin_get(struct p11km_ctx *ctx, const struct p11km_pinsrc *src, const char *prompt,
                  const char **pin, size_t *len);
/* The same for the PIN of user (CKU_SO or CKU_USER) of token tok (a token
 * URI; NULL: any).  A "prompt" source asks again for another user or token:
 * what was typed for one prompt never answers another (p11km_pin_get() is
 * the user PIN of any token). */
int p11km_pin_get_for(struct p11km_ctx *ctx, const struct p11km_pinsrc *src, CK_USER_TYPE user,
                      const char *tok, const char *prompt, const char **pin, size_t *len);
/* The user PIN that a C_Login to token tok_uri (NULL: any token) accepted
 * earlier in this run: *pin is borrowed (wiped at p11km_ctx_release()).
 * P11KM_ERR_NOTFOUND (no message) when none did.  A process p11km starts
 * that logs in itself (the engine probe) may use only this PIN. */
int p11km_pin_proved(struct p11km_ctx *ctx, const char *tok_uri, const char **pin, size_t *len);
/*
 * The PIN source to use for a token URI: --pin-source (or, for CKU_SO,
 * --so-pin-source), else the URI's pin-source, else its pin-value (with a
 * warning).  Returns 0 and *src->spec == NULL when there is none.
 */
int p11km_pinsrc_for(struct p11km_ctx *ctx, const struct p11km_uri *uri, CK_USER_TYPE user,
                     struct p11km_pinsrc *src);
/* The PIN cache's bookkeeping for p11km_login() (p11-pin.c): the key of a
 * login (token, user, source; malloc'ed), whether it failed before in this
 * run, remembering that it failed (takes key), and that the cached PIN pin
 * logged in to token tok_uri. */
char *p11km_login_failure_key(const struct p11km_token *tok, CK_USER_TYPE user,
                              const struct p11km_pinsrc *src);
int p11km_login_failed_before(struct p11km_ctx *ctx, const char *key);
void p11km_login_failure_remember(struct p11km_ctx *ctx, char *key);
void p11km_pin_mark_proved(struct p11km_ctx *ctx, const char *pin, const char *tok_uri);
/* Open a session (rw or not) and log in when a PIN source exists (or
 * require_login).  The usual prologue of a command. */
int p11km_session_open_login(struct p11km_ctx *ctx, struct p11km_token *tok,
                             const struct p11km_uri *uri, int rw, int require_login,
                             struct p11km_session *out);
/* The same logged in as the user, but on the token of held (a session the
 * caller keeps open, logged in as the user; may be NULL) a session of that
 * login: the login is the token's, for every session of this process, so
 * no second C_Login. */
int p11km_session_open_held(struct p11km_ctx *ctx, struct p11km_token *tok,
                            const struct p11km_uri *uri, int rw,
                            const struct p11km_session *held, struct p11km_session *out);
/* A read-write session logged in as the security officer when an SO PIN
 * source is given (--so-pin-source: ykcs11 generates keys and writes
 * certificates only for the SO, whose PIN is the PIV management key), else
 * as the user (a PIN is required). */
int p11km_session_open_so_or_user(struct p11km_ctx *ctx, struct p11km_token *tok,
                                  const struct p11km_uri *uri, struct p11km_session *out);
/*
 * Open this URI's token and log in, the prologue of most commands: the
 * URI's one token (modules loaded as needed; P11KM_OPEN_INITIALISED: its
 * one initialised token, as p11km_token_find_initialised()), a session
 * (P11KM_OPEN_RW: read-write) logged in when a PIN source exists
 * (P11KM_OPEN_LOGIN: always; P11KM_OPEN_SO_OR_USER: read-write, as the SO
 * when an SO PIN source is given, else as the user, as
 * p11km_session_open_so_or_user()).  On success *tok (p11km_token_free()
 * after p11km_session_close(s)) and s are the caller's; on failure nothing
 * is left open and *tok is NULL.
 */
enum { P11KM_OPEN_RW = 1 << 0, P11KM_OPEN_LOGIN = 1 << 1, P11KM_OPEN_INITIALISED = 1 << 2,
       P11KM_OPEN_SO_OR_USER = 1 << 3 };
int p11km_token_open(struct p11km_ctx *ctx, const struct p11km_uri *uri, unsigned flags,
                     struct p11km_token **tok, struct p11km_session *s);

/* Tri-state boolean attribute: absent on tokens that omit unset attributes. */
enum p11km_tri { P11KM_ABSENT = -1, P11KM_FALSE = 0, P11KM_TRUE = 1 };

/* An object as read by p11km_object_read(): one C_GetAttributeValue into
 * pre-sized buffers (a certificate's CKA_VALUE needs a second one unless
 * the class is known beforehand: p11km_object_read_as()). */
struct p11km_object {
	CK_OBJECT_HANDLE h;
	CK_OBJECT_CLASS cls;         /* (CK_OBJECT_CLASS)-1 if unreadable */
	CK_KEY_TYPE key_type;        /* (CK_KEY_TYPE)-1 if absent */
	CK_CERTIFICATE_TYPE cert_type;
	CK_ULONG cert_category;      /* (CK_ULONG)-1 if absent */
	CK_ULONG modulus_bits;       /* 0 if absent */
	char *label;                 /* NULL if absent */
	unsigned char *id;  size_t id_len;
	enum p11km_tri token, private_, sensitive, extractable, always_sensitive,
	               never_extractable, sign, verify, decrypt, encrypt, unwrap,
	               wrap, derive, trusted, modifiable;
	/* public key material (public keys, or private keys that carry it) */
	unsigned char *modulus;   size_t modulus_len;
	unsigned char *pub_exp;   size_t pub_exp_len;
	unsigned char *ec_params; size_t ec_params_len;
	unsigned char *ec_point;  size_t ec_point_len;
	unsigned char *pubkey_info; size_t pubkey_info_len; /* CKA_PUBLIC_KEY_INFO */
	/* certificates */
	unsigned char *value;     size_t value_len;   /* CKA_VALUE (certs only) */
	unsigned char *subject;   size_t subject_len;
	unsigned char *issuer;    size_t issuer_len;
	unsigned char *serial;    size_t serial_len;
};

/* Read the attributes p11km uses.  Never reads CKA_VALUE of a key.  More
 * calls only for an attribute that may not have fit its buffer. */
int p11km_object_read(struct p11km_session *s, CK_OBJECT_HANDLE h, struct p11km_object *o);
/* The same for an object found as one of class hint (the search's CKA_CLASS,
 * or what the caller wants): with CKO_CERTIFICATE, CKA_VALUE is in the same
 * call (wiped unread should the object be of another class after all); with
 * CKO_PRIVATE_KEY or CKO_PUBLIC_KEY, a certificate found all the same is
 * read without it; (CK_OBJECT_CLASS)-1: as p11km_object_read(). */
int p11km_object_read_as(struct p11km_session *s, CK_OBJECT_HANDLE h, CK_OBJECT_CLASS hint,
                         struct p11km_object *o);
void p11km_object_release(struct p11km_object *o);
/* CKA_VALUE of a certificate object, in one C_GetAttributeValue (with
 * CKA_CLASS) into a buffer sized for any certificate; more calls only on
 * CKR_BUFFER_TOO_SMALL.  *out NULL (and 0) when the object is not a
 * certificate or has no value.  *out is malloc'ed. */
int p11km_cert_value_read(struct p11km_session *s, CK_OBJECT_HANDLE h, unsigned char **out,
                          size_t *len);

/*
 * Find objects with a template: C_FindObjectsInit, C_FindObjects (batches of
 * 64), C_FindObjectsFinal.  At most max handles (0: no limit).  CKA_TOKEN
 * TRUE is added to the template.  *out is malloc'ed (free()).
 */
int p11km_find(struct p11km_session *s, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
               size_t max, CK_OBJECT_HANDLE **out, size_t *n_out);
/* Find and read the objects a URI selects (its class/label/id), plus an
 * optional extra class filter (cls (CK_OBJECT_CLASS)-1: any). */
int p11km_objects_find(struct p11km_session *s, const struct p11km_uri *uri,
                       CK_OBJECT_CLASS cls, struct p11km_object **objs, size_t *n);
/* Exactly one object: P11KM_ERR_NOTFOUND / P11KM_ERR_AMBIGUOUS listing the
 * candidates' URIs. */
int p11km_object_find_one(struct p11km_session *s, const struct p11km_uri *uri,
                          CK_OBJECT_CLASS cls, struct p11km_object *out);
void p11km_objects_free(struct p11km_object *objs, size_t n);
/* The certificate objects with CKA_ID id (at most 16), token and session
 * objects alike (ykcs11's attestation certificates are session objects),
 * read.  *objs is NULL when there are none; free with p11km_objects_free(). */
int p11km_cert_objects_by_id(struct p11km_session *s, const unsigned char *id, size_t id_len,
                             struct p11km_object **objs, size_t *n);

/*
 * (p11-certs.c) A token's certificates read once, for a batch: one search
 * for CKO_CERTIFICATE and one C_GetAttributeValue each, or *out NULL (and 0)
 * when the token holds more than max.  Attached to a session (s->certs), it
 * answers p11km_find() for templates with CKA_CLASS CKO_CERTIFICATE and the
 * reads of those certificates from memory, and follows what this process
 * changes on the token (p11km_obj_create/set/destroy); the holder keeps the
 * token's lock meanwhile.  A template it cannot answer exactly, and a
 * certificate this process created, go to the token.
 */
struct p11km_tokcerts;
int p11km_tokcerts_load(struct p11km_session *s, size_t max, struct p11km_tokcerts **out);
void p11km_tokcerts_free(struct p11km_tokcerts *c);
/* (what p11km_tokcerts_load builds it with) An empty one; o (as read) added,
 * taken over (o is emptied, also on failure). */
struct p11km_tokcerts *p11km_tokcerts_new(void);
int p11km_tokcerts_take(struct p11km_tokcerts *c, struct p11km_object *o);
/* 1 and *out (malloc'ed handles) when s->certs answers the search, 0 when the
 * token must. */
int p11km_tokcerts_search(struct p11km_session *s, const CK_ATTRIBUTE *t, CK_ULONG n, size_t max,
                       CK_OBJECT_HANDLE **out, size_t *n_out);
/* 1 and *o (a copy) when s->certs holds h as read, 0 when the token must be asked. */
int p11km_tokcerts_read(struct p11km_session *s, CK_OBJECT_HANDLE h, struct p11km_object *o);
/* o was read from the token: a created certificate's entry becomes that read. */
void p11km_tokcerts_was_read(struct p11km_session *s, const struct p11km_object *o);
/* The changes (p11-change.c), after the module said CKR_OK. */
void p11km_tokcerts_created(struct p11km_session *s, CK_OBJECT_HANDLE h, const CK_ATTRIBUTE *t,
                         CK_ULONG n);
void p11km_tokcerts_set(struct p11km_session *s, CK_OBJECT_HANDLE h, const CK_ATTRIBUTE *a,
                     CK_ULONG n);
void p11km_tokcerts_destroyed(struct p11km_session *s, CK_OBJECT_HANDLE h);
/* The attribute of this type in template t that carries a value, or NULL. */
const CK_ATTRIBUTE *p11km_template_attr(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type);
/* (p11-objmem.c) A deep copy of o (release it with p11km_object_release). */
int p11km_object_copy(const struct p11km_object *o, struct p11km_object *out);

/* An object label given by the user: 1 to max bytes, no control
 * characters; P11KM_ERR_USAGE naming --label otherwise. */
int p11km_label_check(const char *label, size_t max);

/* URI of an object on the token (malloc'ed). */
char *p11km_object_uri(const struct p11km_token *tok, const struct p11km_object *o);

/* "private", "public", "cert", "secret-key", "data", or "other". */
const char *p11km_class_name(CK_OBJECT_CLASS cls);
/* "rsa", "ec", "ed25519"/"eddsa", ... */
const char *p11km_key_type_name(CK_KEY_TYPE kt);

/* Mechanisms: does the token have mech with these flags (CKF_SIGN ...)? */
int p11km_mechanisms(struct p11km_token *tok, CK_MECHANISM_TYPE **out, size_t *n);
int p11km_mechanism_info(struct p11km_token *tok, CK_MECHANISM_TYPE m, CK_MECHANISM_INFO *info);
const char *p11km_mech_name(CK_MECHANISM_TYPE m);

/*
 * What a token can do, from its mechanism list (one C_GetMechanismList and
 * a C_GetMechanismInfo per key-generation mechanism present).
 */
enum p11km_keytype {
	P11KM_KEY_RSA2048, P11KM_KEY_RSA3072, P11KM_KEY_RSA4096,
	P11KM_KEY_EC_P256, P11KM_KEY_EC_P384, P11KM_KEY_EC_P521,
	P11KM_KEY_ED25519,
	P11KM_KEY_N
};
enum p11km_signcap {
	P11KM_SIGN_RSA_PKCS1 = 1 << 0,  /* CKM_RSA_PKCS */
	P11KM_SIGN_RSA_PSS = 1 << 1,    /* CKM_RSA_PKCS_PSS */
	P11KM_SIGN_ECDSA = 1 << 2,      /* CKM_ECDSA */
	P11KM_SIGN_EDDSA = 1 << 3,      /* CKM_EDDSA */
};
struct p11km_caps {
	unsigned keygen;  /* bit (1 << enum p11km_keytype): can generate */
	unsigned sign;    /* enum p11km_signcap bits */
};
int p11km_token_caps(struct p11km_token *tok, struct p11km_caps *caps);
/* The same for key type t only: one C_GetMechanismInfo instead of three
 * (about all types, from the same mechanism list, when t is not usable). */
int p11km_token_caps_for(struct p11km_token *tok, enum p11km_keytype t, struct p11km_caps *caps);
/* A PIV card (or a YubiKey's PIV application): its certificates live in
 * its key slots, one per key, with one-byte ids; no trusted roots, no
 * intermediates.  P11KM_PIV_WRITABLE through ykcs11 (manufacturer
 * "Yubico..."), P11KM_PIV_READ_ONLY through OpenSC (manufacturer "piv_II"),
 * 0 for any other token. */
enum { P11KM_PIV_WRITABLE = 1, P11KM_PIV_READ_ONLY = 2 };
int p11km_token_is_piv(const struct p11km_token *tok);
/* What probing taught p11km about tok's family (p11-learn.c): a note in
 * this run and, once, the line "what: TEXT" in
 * STATE/learned/MODULE_MANUFACTURER_MODEL (P11KM_STATE_DIR, default
 * /var/lib/p11km; best effort).  p11km_learned_read: that file's text
 * (malloc'ed; NULL when nothing was learned). */
void p11km_learned(const struct p11km_token *tok, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int p11km_learned_read(const struct p11km_token *tok, char **text);
/* "rsa:2048", "ec:p256", "ed25519" ... */
const char *p11km_keytype_name(enum p11km_keytype t);
/* Parse a key type name; -1 when unknown. */
int p11km_keytype_parse(const char *s);
/* Can the token generate *and* sign with t? */
int p11km_caps_usable(const struct p11km_caps *caps, enum p11km_keytype t);
/* "rsa:2048 ec:p256 ..." of the usable types (malloc'ed). */
char *p11km_caps_usable_list(const struct p11km_caps *caps);

#endif
