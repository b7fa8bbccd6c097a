/* bind.h: server bindings that reference token keys by URI (bind emit,
 * bind check, bind verify).  Depends on util, uri, p11, x509. */
#ifndef P11KM_BIND_H
#define P11KM_BIND_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include <openssl/x509.h>

#include "p11km/p11.h"

/* --- problems: one line each, saying what to fix ------------------------- */

struct p11km_problems {
	char **lines;
	size_t n;
};
void p11km_problem_add(struct p11km_problems *pr, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void p11km_problems_release(struct p11km_problems *pr);

/* --- server flavours (bind-emit.c) --------------------------------------- */

struct p11km_bind_params;
struct p11km_bind_files;

/*
 * One server the emitter knows.  A flavour with why_not set is refused
 * with that text.  The engine flavour is what works on Debian 12; a
 * provider flavour (pkcs11-provider, "store:" URIs) would be another entry
 * with its own render function and openssl.cnf.
 */
struct p11km_bind_flavour {
	const char *name;
	const char *why_not;         /* non-NULL: cannot load keys from a token */
	const char *snippet_name;    /* file name of the server snippet, or NULL */
	int needs_connect;           /* a backend address is needed (stunnel) */
	const char *unit;            /* systemd unit the drop-in is for */
	/* directives bind check reads back from the snippet */
	const char *key_directive, *cert_directive, *key_prefix;
	int (*render)(const struct p11km_bind_params *p, struct p11km_bind_files *out);
	const char *next;            /* command to run next; @DIR@ is the output directory */
};

const struct p11km_bind_flavour *p11km_bind_flavour_find(const char *name);
/* "nginx apache stunnel openssl-conf" (static). */
const char *p11km_bind_flavour_names(void);

/* A --listen value: "IP:PORT", "[IPv6]:PORT" or "*:PORT". */
struct p11km_listen {
	char host[64];  /* "127.0.0.1", "::1" (no brackets), "*" */
	int v6;
	int port;
};
int p11km_listen_parse(const char *s, struct p11km_listen *out);

#define P11KM_BIND_ENV_MAX 4
/* Is "NAME=value" one of the module variables a binding carries? */
int p11km_bind_env_known(const char *nv);
/* Add "NAME=value" to p->env (copied; safe in a config, else a usage error). */
int p11km_bind_env_add(struct p11km_bind_params *p, const char *name, const char *value);

/* Everything the emitter needs, validated and resolved. */
struct p11km_bind_params {
	const struct p11km_bind_flavour *fl;
	struct p11km_listen *listen;
	size_t n_listen;
	const char *server_name;   /* may be NULL */
	const char *service_user;  /* may be NULL */
	const char *connect;       /* stunnel backend, may be NULL */
	const char *dir;           /* absolute directory files are referenced in */
	char *key_uri;             /* engine-safe, with pin-source */
	unsigned char *cert_pem;   size_t cert_pem_len;   /* the leaf, PEM */
	unsigned char *chain_pem;  size_t chain_pem_len;  /* may be empty */
	char *module_path;
	char *engine_path;
	/* the module's variables the service needs, "NAME=value" (SOFTHSM2_CONF,
	 * P11_KIT_SERVER_ADDRESS): the environment file, the systemd drop-in,
	 * nginx's env lines and the manifest carry them */
	char *env[P11KM_BIND_ENV_MAX];
	size_t n_env;
	const char *pin_file;      /* absolute */
	const char *acme_webroot;  /* http-01 files served from here over HTTP, or NULL */
	struct p11km_listen acme_listen; /* ... on this address */
	char gen[17];              /* generation: 16 hex digits of the leaf's SHA-256 */
};
void p11km_bind_params_release(struct p11km_bind_params *p);

struct p11km_bind_file {
	char *name;      /* relative to dir ("openssl.cnf") */
	char *data;
	size_t len;
	mode_t mode;
};
struct p11km_bind_files {
	struct p11km_bind_file *f;
	size_t n;
};
void p11km_bind_files_release(struct p11km_bind_files *fs);

/* All files of a binding, in the order they are to be put in place: the
 * certificate files of this generation (cert-G.pem, chain-G.pem,
 * fullchain-G.pem; sets p->gen), openssl.cnf, environment, systemd drop-in,
 * the snippet (the one file whose rename switches the server to the new
 * key and certificate), the manifest, and copies of the certificate files
 * under fixed names (cert.pem, chain.pem, fullchain.pem). */
int p11km_bind_render(struct p11km_bind_params *p, struct p11km_bind_files *out);
/* Put the files into dir in that order, all or none (p11km_ftxn), then
 * remove the certificate files of generations that neither the new nor the
 * replaced snippet and manifest name.  In two steps: stage (every file
 * written and synced beside its target, nothing replaced) and commit. */
int p11km_bind_write(const char *dir, const struct p11km_bind_files *fs);
struct p11km_bind_txn;
int p11km_bind_stage(const char *dir, const struct p11km_bind_files *fs,
                     struct p11km_bind_txn **out);
int p11km_bind_commit(struct p11km_bind_txn *bt);
void p11km_bind_txn_free(struct p11km_bind_txn *bt);  /* uncommitted: nothing changes */

/* --- the manifest, and rewriting a binding (bind-manifest.c) ------------- */

#define P11KM_MANIFEST_MAX 16
struct p11km_bind_manifest {
	char *server, *snippet, *openssl_conf, *key, *cert, *module, *user;
	char *server_name, *connect;
	char *acme_webroot, *acme_listen; /* bind emit --acme-webroot, --acme-listen */
	char *env[P11KM_MANIFEST_MAX];
	size_t n_env;
	char *listen[P11KM_MANIFEST_MAX];
	size_t n_listen;
};
/* path: the binding directory or its p11km-binding.conf. */
int p11km_bind_manifest_read(const char *path, struct p11km_bind_manifest *m);
void p11km_bind_manifest_release(struct p11km_bind_manifest *m);
/* A config value without blanks, '=', a trailing ';' and quotes (in place). */
char *p11km_bind_value_trim(char *v);

/*
 * cert install --bind DIR: the binding in DIR, rewritten for key with leaf
 * and chain, keeping everything else the manifest says (the caller checks
 * that the binding is one of this key or of the key it replaces).  prepare renders
 * and stages every file (before the token changes: a full disk or an
 * unwritable directory stops the install there); commit puts them in place,
 * the snippet, the switch, last; free without commit changes nothing.
 */
struct p11km_rebind;
int p11km_bind_rebind_prepare(const char *dir, const struct p11km_token *tok,
                              const struct p11km_object *key, X509 *leaf,
                              STACK_OF(X509) *chain, struct p11km_rebind **out);
int p11km_bind_rebind_commit(struct p11km_rebind *rb);
const char *p11km_rebind_dir(const struct p11km_rebind *rb);
void p11km_rebind_free(struct p11km_rebind *rb);
/* The openssl.cnf that loads the pkcs11 engine (malloc'ed). */
char *p11km_bind_openssl_cnf(const char *engine_path, const char *module_path);
/* The libp11 engine: ENGINESDIR/pkcs11.so or libpkcs11.so. */
int p11km_bind_engine_path(char **out);

/* The engine-safe URI a config names a private key by: token + id + type
 * (token + label + type for a key without an id), with pin_file as
 * pin-source (or pin_value). */
int p11km_bind_key_uri(const struct p11km_token *tok, const struct p11km_object *key,
                       const char *pin_file, const char *pin_value, char **out);

/*
 * Resolve a binding for a key: find the key (refusing Ed25519), check its
 * label is unique among private keys, find the certificate (--cert URI or
 * file; default the certificate with the key's CKA_ID), check that it
 * belongs to the key, and fill key_uri/cert_pem/chain_pem and
 * module_path.  pin_file is the pin-source written into the URIs.
 */
int p11km_bind_resolve(struct p11km_ctx *ctx, const char *key_uri, const char *cert,
                       const char *pin_file, int allow_pin_value,
                       struct p11km_bind_params *p);

/* --- checking (bind-check.c) --------------------------------------------- */

/*
 * Load key and certificate through the libp11 engine the way a server
 * does, in a freshly exec'ed p11km-engine-probe (OpenSSL loads
 * OPENSSL_CONF=openssl_cnf at init; ENGINE_load_private_key,
 * LOAD_CERT_CTRL or a PEM file), sign a test message and verify it with
 * the certificate's public key; then, when user is set, in a forked child
 * running as user (as a server worker, where libp11 re-initialises the
 * module), check that the module's token store is readable and sign again.
 * env ("VAR=value", n_env of them) is set for the probe.  Problems go to
 * pr; returns 0, or an error for failures of the check itself (fork, pipe).
 */
/* Longest key URI handed to the probe (through its standard input). */
#define P11KM_PROBE_KEY_MAX 16384
struct p11km_engine_trial {
	const char *openssl_cnf;
	const char *key;     /* engine key id (a pkcs11: URI) */
	const char *cert;    /* pkcs11: URI or a PEM/DER file */
	const char *user;
	const char *module_path;
	char *const *env;
	size_t n_env;
	/* The PIN p11km's own C_Login accepted in this run (NULL: none).  The
	 * probe's engine logs in too: it is started only when the PIN it will
	 * send (pin-value, or the pin-source file as libp11 reads it) is this
	 * one, so a run never spends a PIN try on a PIN not proved right. */
	const char *pin;
	size_t pin_len;
};
int p11km_engine_try(const struct p11km_engine_trial *t, struct p11km_problems *pr);

/* The work of p11km-engine-probe, the fresh process p11km_engine_try()
 * starts: load and sign as a server, problems to out.  Ends the process. */
void p11km_engine_probe(const struct p11km_engine_trial *t, FILE *out)
	__attribute__((noreturn));

/* PIN file for a server: owner, mode 0400/0600, no trailing newline,
 * at most 32 bytes. */
void p11km_pin_file_check(const char *path, const char *user, struct p11km_problems *pr);

/* URI attributes libp11 0.4.12 rejects, and a missing token name. */
void p11km_engine_uri_check(const char *what, const char *uri, struct p11km_problems *pr);

/* A token key type libp11 cannot enumerate (Ed25519), by a targeted search. */
int p11km_token_has_eddsa(struct p11km_session *s, int *found);

/* bind check DIR|FILE: everything above for an emitted binding. */
struct p11km_bind_report {
	char *server, *key, *cert, *user, *openssl_cnf;
};
int p11km_bind_check(struct p11km_ctx *ctx, const char *path, const char *user_override,
                     struct p11km_bind_report *rep, struct p11km_problems *pr);
void p11km_bind_report_release(struct p11km_bind_report *rep);

/* --- verifying a running server (bind-verify.c) -------------------------- */

struct p11km_verify_result {
	char *subject, *issuer, *serial, *not_after, *sha256;
	long days_left;
	char *protocol, *cipher;
	int compared, matches;      /* expected certificate given; same DER */
	char *expected_serial;
	int chain_checked, chain_ok;
	char *chain_error;
	int host_checked, host_ok;
};
/* Connect to addr (host:port, [v6]:port), handshake with SNI server_name,
 * compare the served leaf with expected (DER; NULL: not compared), verify
 * the chain with ca_file/ca_path when given. */
int p11km_bind_verify(const char *addr, const char *server_name, X509 *expected,
                      const char *ca_file, const char *ca_path, struct p11km_verify_result *res);
void p11km_verify_result_release(struct p11km_verify_result *res);
/* The certificate named by --cert: a token URI (read with a targeted
 * search) or a PEM/DER file. */
int p11km_bind_load_cert(struct p11km_ctx *ctx, const char *spec, X509 **out);

/* --- what bindings reference (bind-refs.c) ------------------------------- */

/* One emitted binding: its manifest, the key URI and the certificate (a
 * file or a pkcs11: URI) it names. */
struct p11km_bind_ref {
	char *manifest, *key, *cert;
};
struct p11km_bind_refs {
	struct p11km_bind_ref *v;
	size_t n;
};
/* The manifests DIR/p11km-binding.conf and DIR/x/p11km-binding.conf (what
 * 'bind emit --out-dir' writes, one directory per binding). */
int p11km_bind_refs_read(const char *dir, struct p11km_bind_refs *refs);
void p11km_bind_refs_release(struct p11km_bind_refs *refs);
/* Does the binding use o, an object of s's token: its key, its certificate,
 * or the key of its certificate (same public key, or the id of the token's
 * copy)?  What 'object delete' and 'cert prune' never destroy. */
int p11km_binding_uses(struct p11km_session *s, const struct p11km_bind_ref *ref,
                       const struct p11km_object *o);

#endif
