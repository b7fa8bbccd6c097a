/* bind-resolve.c: find the key and certificate of a binding on the token,
 * with targeted searches, and form the URIs a server config carries. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <p11-kit/p11-kit.h>

#include "p11km/bind.h"
#include "p11km/cert.h"
#include "p11km/keys.h"
#include "p11km/store.h"
#include "p11km/util.h"
#include "p11km/x509.h"

/* --- resolving the key and certificate ---------------------------------------- */

void
p11km_bind_params_release(struct p11km_bind_params *p)
{
	free(p->key_uri);
	free(p->cert_pem);
	free(p->chain_pem);
	free(p->module_path);
	free(p->engine_path);
	for (size_t i = 0; i < p->n_env; i++)
		free(p->env[i]);
	p->n_env = 0;
	p->key_uri = p->module_path = p->engine_path = NULL;
	p->cert_pem = p->chain_pem = NULL;
}

/* The variables a module reads to find its tokens, which a server's
 * process must have too: SoftHSM2's configuration, the p11-kit client's
 * server socket. */
static const char *const module_vars[] = { "SOFTHSM2_CONF", "P11_KIT_SERVER_ADDRESS" };

int
p11km_bind_env_known(const char *nv)
{
	for (size_t i = 0; i < sizeof(module_vars) / sizeof(module_vars[0]); i++) {
		size_t l = strlen(module_vars[i]);
		if (strncmp(nv, module_vars[i], l) == 0 && nv[l] == '=')
			return 1;
	}
	return 0;
}

int
p11km_bind_env_add(struct p11km_bind_params *p, const char *name, const char *value)
{
	char *nv;

	if (!p11km_config_safe(value))
		return p11km_fail(P11KM_ERR_USAGE, "%s is not a value that is safe in a config", name);
	if (p->n_env >= P11KM_BIND_ENV_MAX)
		return p11km_fail(P11KM_ERR_USAGE, "too many module variables for a binding");
	if ((nv = p11km_asprintf("%s=%s", name, value)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	p->env[p->n_env++] = nv;
	return 0;
}

static int
pem_of(X509 *x, unsigned char **out, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *d;
	long n;

	if (b == NULL || !PEM_write_bio_X509(b, x)) {
		BIO_free(b);
		return p11km_fail(P11KM_ERR_NOMEM, "unable to write a certificate as PEM");
	}
	n = BIO_get_mem_data(b, &d);
	*out = p11km_memdup(d, (size_t)n);
	*len = (size_t)n;
	BIO_free(b);
	return *out ? 0 : p11km_fail(P11KM_ERR_NOMEM, "out of memory");
}

/* A file of one or more PEM certificates (leaf first), or one DER. */
static int
cert_file_read(const char *path, X509 **leaf, unsigned char **chain, size_t *chain_len)
{
	unsigned char *data = NULL;
	size_t len = 0;
	BIO *b = NULL, *cb = NULL;
	X509 *x = NULL;
	const unsigned char *p;
	int r;

	if ((r = p11km_read_file(path, 1 << 20, &data, &len)) < 0)
		return r;
	p = data;
	if ((b = BIO_new_mem_buf(data, (int)len)) == NULL || (cb = BIO_new(BIO_s_mem())) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((*leaf = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL) {
		if ((*leaf = d2i_X509(NULL, &p, (long)len)) == NULL) {
			r = p11km_fail(P11KM_ERR_INPUT, "'%s' holds no certificate (PEM or DER)", path);
			goto out;
		}
	} else {
		while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
			PEM_write_bio_X509(cb, x);
			X509_free(x);
		}
	}
	ERR_clear_error();
	{
		char *d;
		long n = BIO_get_mem_data(cb, &d);
		*chain_len = (size_t)n;
		*chain = n > 0 ? p11km_memdup(d, (size_t)n) : NULL;
	}
	r = 0;
out:
	BIO_free(b);
	BIO_free(cb);
	free(data);
	return r;
}

/* The intermediate certificates of leaf found on the token, as PEM: the
 * shortest path that verifies against the token's trusted issuers and the
 * system store (p11km_tok_chain_complete); roots, which the client must
 * already trust, are left out. */
static int
chain_from_token(struct p11km_session *s, X509 *leaf, unsigned char **out, size_t *len)
{
	struct p11km_trust tr = { NULL, NULL, NULL, 1 };
	STACK_OF(X509) *chain = sk_X509_new_null(), *added = sk_X509_new_null();
	STACK_OF(X509) *anchors = sk_X509_new_null();
	struct p11km_buf b = { 0 };
	int r = 0;

	*out = NULL;
	*len = 0;
	if (chain == NULL || added == NULL || anchors == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (r == 0 && (r = p11km_tok_chain_complete(s, leaf, chain, &tr, 1, added, anchors)) > 0)
		r = 0;
	for (int i = 0; r == 0 && i < sk_X509_num(chain); i++)
		r = p11km_cert_pem_append(sk_X509_value(chain, i), &b);
	if (r == 0) {
		*out = b.data;
		*len = b.len;
	} else {
		p11km_buf_release(&b);
	}
	sk_X509_free(chain);
	sk_X509_pop_free(added, X509_free);
	sk_X509_pop_free(anchors, X509_free);
	return r;
}

/* How many objects of a class carry this label (0, 1 or 2 = several). */
static int
label_count(struct p11km_session *s, CK_OBJECT_CLASS cls, const char *label, size_t *n)
{
	CK_ATTRIBUTE t[2] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_LABEL, (void *)label, strlen(label) },
	};
	CK_OBJECT_HANDLE *h = NULL;
	int r = p11km_find(s, t, 2, 2, &h, n);

	free(h);
	return r;
}

/* ykcs11's placeholder in a PIV slot (p11km_cert_is_placeholder) is no
 * certificate of the key's. */
static int
placeholder(const struct p11km_object *o)
{
	const unsigned char *p = o->value;
	X509 *x = p != NULL ? d2i_X509(NULL, &p, (long)o->value_len) : NULL;
	int yes = x != NULL && p11km_cert_is_placeholder(x);

	X509_free(x);
	ERR_clear_error();
	return yes;
}

/* Of the n certificates h that carry a key's id, the current one: the one
 * not retired ("<L>.retired-DATE", --keep-old) and not an authority.  On
 * return *n is how many such there are; *cert is read when it is one. */
static int
current_cert(struct p11km_session *s, const CK_OBJECT_HANDLE *h, size_t *n,
             struct p11km_object *cert)
{
	size_t found = 0;
	int r = 0;

	for (size_t i = 0; i < *n && r == 0; i++) {
		struct p11km_object o;
		if ((r = p11km_object_read_as(s, h[i], CKO_CERTIFICATE, &o)) < 0)
			break;
		if ((*n > 1 && ((o.label != NULL && strstr(o.label, ".retired-") != NULL) ||
		                o.cert_category == 2 /* authority */ ||
		                o.token == P11KM_FALSE /* ykcs11: the slot's attestation */)) ||
		    placeholder(&o)) {
			p11km_object_release(&o);
			continue;
		}
		if (found++ == 0)
			*cert = o;
		else
			p11km_object_release(&o);
	}
	if (r < 0 || found != 1) {
		if (found >= 1)
			p11km_object_release(cert);
		memset(cert, 0, sizeof(*cert));
	}
	*n = found;
	return r;
}

/* How many private keys carry this CKA_ID (0, 1 or 2 = several). */
static int
id_count(struct p11km_session *s, const unsigned char *id, size_t id_len, size_t *n)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[2] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_ID, (void *)id, id_len },
	};
	CK_OBJECT_HANDLE *h = NULL;
	int r = p11km_find(s, t, 2, 2, &h, n);

	free(h);
	return r;
}

/* The engine-safe URI of a private key: token + id + type when the key
 * has an id (an id never changes meaning, a label moves on a rekey), else
 * token + label + type. */
int
p11km_bind_key_uri(const struct p11km_token *tok, const struct p11km_object *key,
                   const char *pin_file, const char *pin_value, char **out)
{
	char *s = key->id_len > 0
	              ? p11km_uri_object(&tok->info, NULL, key->id, key->id_len, CKO_PRIVATE_KEY)
	              : p11km_uri_object(&tok->info, key->label, NULL, 0, CKO_PRIVATE_KEY);
	struct p11km_uri *u = NULL;
	int r;

	*out = NULL;
	if (s == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = p11km_uri_parse(s, &u)) == 0) {
		if (pin_value != NULL && pin_file == NULL)
			p11_kit_uri_set_pin_value(u->u, pin_value);
		r = p11km_uri_engine_safe(u, pin_file, pin_value != NULL, out);
	}
	p11km_uri_free(u);
	free(s);
	return r;
}

/* Is a URI safe to put into a config?  Its ';' separators are expected. */
static int
uri_config_safe(const char *s)
{
	char *c = strdup(s);
	int ok;

	if (c == NULL)
		return 0;
	for (char *p = c; *p; p++)
		if (*p == ';')
			*p = ',';
	ok = p11km_config_safe(c);
	free(c);
	return ok;
}

/* Does the key need a context-specific login before each signature? */
static int
always_authenticate(struct p11km_session *s, CK_OBJECT_HANDLE h)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = { CKA_ALWAYS_AUTHENTICATE, &v, sizeof(v) };

	return P11KM_CALL(s->f, C_GetAttributeValue, s->h, h, &a, 1) == CKR_OK &&
	       a.ulValueLen == sizeof(v) && v == CK_TRUE;
}

int
p11km_bind_resolve(struct p11km_ctx *ctx, const char *key_spec, const char *cert_spec,
                   const char *pin_file, int allow_pin_value, struct p11km_bind_params *p)
{
	struct p11km_uri *uri = NULL, *curi = NULL;
	struct p11km_token *tok = NULL;
	struct p11km_session s;
	struct p11km_object key, cert;
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	int sopen = 0, on_token = 0, found = 0, r;
	size_t n = 0;
	const char *pin_value = NULL;

	memset(&key, 0, sizeof(key));
	memset(&cert, 0, sizeof(cert));
	if ((r = p11km_uri_parse(key_spec, &uri)) < 0)
		return r;
	if (allow_pin_value)
		pin_value = p11km_uri_pin_value(uri);
	if ((r = p11km_token_open(ctx, uri, P11KM_OPEN_LOGIN, &tok, &s)) < 0)
		goto out;
	sopen = 1;
	if ((r = p11km_object_find_one(&s, uri, CKO_PRIVATE_KEY, &key)) < 0)
		goto out;
	if (key.key_type == CKK_EC_EDWARDS) {
		r = p11km_fail(P11KM_ERR_UNSUPPORTED,
		    "key '%s' is an EdDSA (Ed25519) key: the pkcs11 engine of libp11 0.4.12 cannot "
		    "use it, so no server on this system can; bind an RSA or EC key instead",
		    key.label ? key.label : "");
		goto out;
	}
	if (always_authenticate(&s, key.h)) {
		r = p11km_fail(P11KM_ERR_UNSUPPORTED,
		    "key '%s' needs its PIN for every signature (CKA_ALWAYS_AUTHENTICATE, e.g. PIV "
		    "slot 9c): the pkcs11 engine of libp11 cannot answer that login, so no server can "
		    "use it; bind a key from another slot (PIV 9a)", key.label ? key.label : "");
		goto out;
	}
	if (key.id_len == 0 && (key.label == NULL || key.label[0] == '\0')) {
		r = p11km_fail(P11KM_ERR_USAGE, "the key has neither id nor label: server configs "
		               "name keys by token and id (or label); give the key a unique id");
		goto out;
	}
	if (key.id_len == 0 && !p11km_config_safe(key.label)) {
		r = p11km_fail(P11KM_ERR_USAGE, "the key's label contains characters that are not "
		               "safe in a server config (quotes, ;, braces, $, #, control characters); "
		               "relabel the key");
		goto out;
	}
	if ((r = p11km_token_has_eddsa(&s, &found)) < 0)
		goto out;
	if (found) {
		r = p11km_fail(P11KM_ERR_UNSUPPORTED, "token '%s' holds an EdDSA (Ed25519) key: "
		               "libp11 0.4.12 then cannot enumerate any key on it, so no server can "
		               "load this key; move or delete the EdDSA key first", tok->label);
		goto out;
	}
	/* the config names the key by id (by label when it has none): unique */
	if ((r = key.id_len > 0 ? id_count(&s, key.id, key.id_len, &n)
	                        : label_count(&s, CKO_PRIVATE_KEY, key.label, &n)) < 0)
		goto out;
	if (n > 1) {
		r = p11km_fail(P11KM_ERR_AMBIGUOUS, "several private keys on token '%s' carry the %s "
		               "of '%s': server configs select the key by it; give each key its own",
		               tok->label, key.id_len > 0 ? "id" : "label", key.label ? key.label : "");
		goto out;
	}
	if ((r = p11km_key_pubkey(&s, &key, &pk)) < 0)
		goto out;

	/* the certificate */
	if (cert_spec != NULL && strncmp(cert_spec, "pkcs11:", 7) == 0) {
		if ((r = p11km_uri_parse(cert_spec, &curi)) < 0)
			goto out;
		if (!p11km_uri_match_token(curi, NULL, NULL, &tok->info)) {
			r = p11km_fail(P11KM_ERR_USAGE, "--cert names a token other than the key's "
			               "token '%s': the certificate must be on the key's token", tok->label);
			goto out;
		}
		if ((r = p11km_object_find_one(&s, curi, CKO_CERTIFICATE, &cert)) < 0)
			goto out;
		on_token = 1;
	} else if (cert_spec != NULL) {
		if ((r = cert_file_read(cert_spec, &x, &p->chain_pem, &p->chain_pem_len)) < 0)
			goto out;
	} else {
		CK_OBJECT_CLASS cc = CKO_CERTIFICATE;
		CK_ATTRIBUTE t[2] = { { CKA_CLASS, &cc, sizeof(cc) }, { CKA_ID, key.id, key.id_len } };
		CK_OBJECT_HANDLE *h = NULL;
		if (key.id_len == 0) {
			r = p11km_fail(P11KM_ERR_NOTFOUND, "the key has no id, so its certificate cannot "
			               "be found; give --cert URI|FILE");
			goto out;
		}
		if ((r = p11km_find(&s, t, 2, 8, &h, &n)) < 0)
			goto out;
		r = current_cert(&s, h, &n, &cert);
		on_token = n == 1;
		free(h);
		if (r < 0)
			goto out;
		if (n != 1) {
			r = p11km_fail(n == 0 ? P11KM_ERR_NOTFOUND : P11KM_ERR_AMBIGUOUS,
			    n == 0 ? "no certificate on token '%s' has the key's id; install one "
			             "('p11km cert install') or give --cert URI|FILE"
			           : "several certificates on token '%s' have the key's id; "
			             "name one with --cert URI", tok->label);
			goto out;
		}
	}
	if (x == NULL) {
		const unsigned char *d = cert.value;
		if (cert.value_len == 0 || (x = d2i_X509(NULL, &d, (long)cert.value_len)) == NULL) {
			r = p11km_fail(P11KM_ERR_INPUT, "the certificate object '%s' does not parse",
			               cert.label ? cert.label : "");
			goto out;
		}
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(x), pk) != 1) {
		r = p11km_fail(P11KM_ERR_VERIFY, "the certificate does not belong to key '%s' (its "
		               "public key differs); give the certificate issued for this key",
		               key.label);
		goto out;
	}
	if ((r = pem_of(x, &p->cert_pem, &p->cert_pem_len)) < 0)
		goto out;
	if (on_token && (r = chain_from_token(&s, x, &p->chain_pem, &p->chain_pem_len)) < 0)
		goto out;
	/* The certificate goes into the binding as a file (never by URI): key id
	 * and certificate file are named by one snippet, so they switch together. */
	if ((r = p11km_bind_key_uri(tok, &key, pin_file, pin_value, &p->key_uri)) < 0)
		goto out;
	if (!uri_config_safe(p->key_uri)) {
		r = p11km_fail(P11KM_ERR_USAGE, "the token URI contains characters that are not safe "
		               "in a server config; check the PIN file path and the labels");
		goto out;
	}
	if ((p->module_path = p11_kit_module_get_filename(tok->f)) == NULL) {
		r = p11km_fail(P11KM_ERR_MODULE, "unable to find the file of module '%s'; "
		               "give --module PATH", tok->mod->name);
		goto out;
	}
	if (!p11km_config_safe(p->module_path)) {
		r = p11km_fail(P11KM_ERR_USAGE, "the module path '%s' is not safe in a config",
		               p->module_path);
		goto out;
	}
	r = 0;
out:
	if (r < 0)
		p11km_bind_params_release(p);
	X509_free(x);
	EVP_PKEY_free(pk);
	p11km_object_release(&key);
	p11km_object_release(&cert);
	if (sopen)
		p11km_session_close(&s);
	p11km_token_free(tok);
	p11km_uri_free(uri);
	p11km_uri_free(curi);
	return r;
}

/* Here, not in bind-check.c, which calls down to this file for it too. */
int
p11km_token_has_eddsa(struct p11km_session *s, int *found)
{
	CK_KEY_TYPE kt = CKK_EC_EDWARDS;
	CK_ATTRIBUTE t[1] = { { CKA_KEY_TYPE, &kt, sizeof(kt) } };
	CK_OBJECT_HANDLE *h = NULL;
	size_t n = 0;
	int r = p11km_find(s, t, 1, 1, &h, &n);

	free(h);
	*found = n > 0;
	return r;
}
