/* op-req.c: the request operations ('req new', 'req renew', the renewal
 * tracker): PKCS#10 requests signed on the token. */
#include "config.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "p11km/cert.h"
#include "p11km/keygen.h"
#include "p11km/keys.h"
#include "p11km/op.h"
#include "p11km/req.h"
#include "p11km/util.h"
#include "p11km/x509.h"

/* Options of both operations, validated before any token is used. */
struct req_opts {
	const char *subject_arg, *ku, *eku, *digest, *out, *key, *cert;
	const char *const *sans;
	size_t n_sans;
	int pss, der, rekey, type, reuse_pending;
	/* renew --format ms-renewal: the old key's signer and certificate */
	struct p11km_signer *renewal_sg;
	X509 *renewal_cert;
	/* parsed */
	X509_NAME *subject;
	GENERAL_NAMES *gens;
	X509_EXTENSION *ku_ext, *eku_ext;
};

static void
req_opts_release(struct req_opts *o)
{
	X509_NAME_free(o->subject);
	GENERAL_NAMES_free(o->gens);
	X509_EXTENSION_free(o->ku_ext);
	X509_EXTENSION_free(o->eku_ext);
}

/* Can the output be written?  Checked before the token signs (or, with
 * --rekey, generates) anything. */
static int
out_dir_ok(const char *out)
{
	char *copy, *dir;
	int ok;

	if (out == NULL || strcmp(out, "-") == 0)
		return 0;
	if (*out == '\0')
		return p11km_fail(P11KM_ERR_USAGE, "-o needs a file name (or - for standard output)");
	if ((copy = strdup(out)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	dir = dirname(copy);
	ok = access(dir, W_OK | X_OK) == 0;
	if (!ok)
		p11km_fail(P11KM_ERR_IO, "cannot write '%s': directory '%s' is missing or not writable",
		           out, dir);
	free(copy);
	return ok ? 0 : P11KM_ERR_IO;
}

static int
req_opts_init(const struct p11km_req_opts *po, struct req_opts *o)
{
	int r;

	memset(o, 0, sizeof(*o));
	o->subject_arg = po->subject;
	o->ku = po->ku;
	o->eku = po->eku;
	o->digest = po->digest;
	o->out = po->out;
	o->key = po->key;
	o->cert = po->cert;
	o->sans = po->sans;
	o->n_sans = po->n_sans;
	o->pss = po->pss;
	o->der = po->der;
	if (po->ms_renewal && po->pss)
		return p11km_fail(P11KM_ERR_USAGE, "--format ms-renewal is signed with RSA PKCS#1 v1.5 "
		                  "or ECDSA: leave --rsa-pss out");
	o->rekey = po->rekey;
	o->reuse_pending = po->reuse_pending;
	o->type = po->rekey ? po->type : -1;
	if (po->type >= 0 && !po->rekey)
		return p11km_fail(P11KM_ERR_USAGE, "--type applies only with --rekey");
	if ((r = out_dir_ok(o->out)) < 0)
		return r;
	if (o->digest != NULL && strcmp(o->digest, "sha256") != 0 && strcmp(o->digest, "sha384") != 0 &&
	    strcmp(o->digest, "sha512") != 0)
		return p11km_fail(P11KM_ERR_USAGE, "unknown digest '%s': use sha256, sha384 or sha512",
		                  o->digest);
	if (o->subject_arg != NULL && (r = p11km_name_parse(o->subject_arg, &o->subject)) < 0)
		return r;
	for (size_t i = 0; i < o->n_sans; i++)
		if ((r = p11km_san_parse(o->sans[i], &o->gens)) < 0)
			return r;
	if (o->ku != NULL && strcmp(o->ku, "none") != 0 && (r = p11km_ku_parse(o->ku, &o->ku_ext)) < 0)
		return r;
	if (o->eku != NULL && strcmp(o->eku, "none") != 0 &&
	    (r = p11km_eku_parse(o->eku, &o->eku_ext)) < 0)
		return r;
	return 0;
}

/* Apply the --san/--key-usage/--ext-key-usage overrides to exts. */
static int
apply_overrides(struct req_opts *o, STACK_OF(X509_EXTENSION) **exts)
{
	X509_EXTENSION *e;
	int r;

	if (o->gens != NULL) {
		if ((e = X509V3_EXT_i2d(NID_subject_alt_name, 0, o->gens)) == NULL)
			return p11km_fail(P11KM_ERR_FAILED, "unable to encode subjectAltName");
		if ((r = p11km_exts_set(exts, e)) < 0)
			return r;
	}
	if (o->ku_ext != NULL) {
		if ((r = p11km_exts_set(exts, o->ku_ext)) < 0) {
			o->ku_ext = NULL;
			return r;
		}
		o->ku_ext = NULL;
	}
	if (o->eku_ext != NULL) {
		r = p11km_exts_set(exts, o->eku_ext);
		o->eku_ext = NULL;
		if (r < 0)
			return r;
	}
	/* "none" removes a copied extension */
	for (int i = *exts ? sk_X509_EXTENSION_num(*exts) - 1 : -1; i >= 0; i--) {
		int nid = OBJ_obj2nid(X509_EXTENSION_get_object(sk_X509_EXTENSION_value(*exts, i)));
		if ((nid == NID_key_usage && o->ku && strcmp(o->ku, "none") == 0) ||
		    (nid == NID_ext_key_usage && o->eku && strcmp(o->eku, "none") == 0))
			X509_EXTENSION_free(sk_X509_EXTENSION_delete(*exts, i));
	}
	return 0;
}

/* The TLS server defaults of 'req new' (see p11km-req(1)). */
static int
tls_defaults(struct req_opts *o, EVP_PKEY *pub, STACK_OF(X509_EXTENSION) **exts)
{
	int r;

	if (o->ku == NULL &&
	    (r = p11km_ku_parse(EVP_PKEY_is_a(pub, "RSA") ? "digitalSignature,keyEncipherment"
	                                                  : "digitalSignature", &o->ku_ext)) < 0)
		return r;
	if (o->eku == NULL && (r = p11km_eku_parse("serverAuth", &o->eku_ext)) < 0)
		return r;
	if (o->n_sans == 0) {
		int loc = X509_NAME_get_index_by_NID(o->subject, NID_commonName, -1);
		const ASN1_STRING *cn = loc >= 0 ?
		    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(o->subject, loc)) : NULL;
		char *cns = cn ? p11km_asprintf("%.*s", ASN1_STRING_length(cn),
		                                ASN1_STRING_get0_data(cn)) : NULL;
		if (cns != NULL && (p11km_is_hostname(cns) || p11km_is_ip(cns))) {
			char *spec = p11km_asprintf("%s:%s", p11km_is_ip(cns) ? "IP" : "DNS", cns);
			r = spec ? p11km_san_parse(spec, &o->gens) : P11KM_ERR_NOMEM;
			free(spec);
			if (r < 0) {
				free(cns);
				return r;
			}
		}
		free(cns);
	}
	return apply_overrides(o, exts);
}

/* A token and a logged-in session. */
struct keyref {
	struct p11km_uri *uri;
	struct p11km_token *tok;
	struct p11km_session s;
	struct p11km_object priv;
	EVP_PKEY *pub;
	int have_priv;
	int borrowed;    /* tok and s are the caller's */
};

static void
keyref_release(struct keyref *k)
{
	EVP_PKEY_free(k->pub);
	if (k->have_priv)
		p11km_object_release(&k->priv);
	if (!k->borrowed) {
		p11km_session_close(&k->s);
		p11km_token_free(k->tok);
	}
	p11km_uri_free(k->uri);
	memset(k, 0, sizeof(*k));
}

static int
keyref_open(struct p11km_ctx *ctx, const char *uri_s, int rw, struct keyref *k)
{
	int r;

	if ((r = p11km_uri_parse(uri_s, &k->uri)) < 0)
		return r;
	return p11km_token_open(ctx, k->uri, (rw ? P11KM_OPEN_RW : 0) | P11KM_OPEN_LOGIN, &k->tok,
	                        &k->s);
}

/*
 * The private key a URI names, and its public key.  One search by the URI's
 * label and id without its class finds the key pair (and a certificate
 * beside it) at once; each is read with one C_GetAttributeValue.  Constant
 * in the number of other objects on the token.
 */
#define KEY_FIND_MAX 16
static int
keyref_find_key(struct keyref *k)
{
	CK_OBJECT_CLASS cls = p11km_uri_class(k->uri), privc;
	CK_ULONG nt = 0, n = 0;
	CK_ATTRIBUTE *ut = p11km_uri_object_template(k->uri, &nt), t[4];
	CK_OBJECT_HANDLE *h = NULL;
	struct p11km_object objs[KEY_FIND_MAX];
	size_t nh = 0, nread = 0, npriv = 0, ncert = 0, ip = 0;
	int r;

	if (cls == CKO_CERTIFICATE || cls == CKO_PUBLIC_KEY || cls == CKO_DATA ||
	    cls == CKO_SECRET_KEY)
		return p11km_fail(P11KM_ERR_USAGE,
		    "the key URI names a %s (type=%s), not a private key; use type=private%s",
		    p11km_class_name(cls), p11km_class_name(cls),
		    cls == CKO_CERTIFICATE ? " (or 'p11km req renew' with the certificate)" : "");
	for (CK_ULONG i = 0; i < nt && n < 4; i++)
		if (ut[i].type != CKA_CLASS)
			t[n++] = ut[i];
	if (n == 0) { /* no label or id: search by class alone */
		privc = CKO_PRIVATE_KEY;
		t[n++] = (CK_ATTRIBUTE){ CKA_CLASS, &privc, sizeof(privc) };
	}
	if ((r = p11km_find(&k->s, t, n, KEY_FIND_MAX, &h, &nh)) < 0)
		return r;
	for (; nread < nh; nread++) {
		if ((r = p11km_object_read_as(&k->s, h[nread], CKO_PRIVATE_KEY, &objs[nread])) < 0)
			goto out;
		if (objs[nread].cls == CKO_PRIVATE_KEY)
			npriv++, ip = nread;
		else if (objs[nread].cls == CKO_CERTIFICATE)
			ncert++;
	}
	if (npriv == 0 && ncert > 0) {
		r = p11km_fail(P11KM_ERR_USAGE,
		    "the key URI names a certificate, not a private key; add type=private, or use "
		    "'p11km req renew' with the certificate");
		goto out;
	}
	if (npriv == 0) {
		r = p11km_fail(P11KM_ERR_NOTFOUND,
		    "no private key on token '%s' matches the key URI; run 'p11km object list' with "
		    "--pin-source to see the keys", k->tok->label);
		goto out;
	}
	if (npriv > 1) {
		r = p11km_fail(P11KM_ERR_AMBIGUOUS,
		    "%zu private keys on token '%s' match the key URI; add id= to select one "
		    "(see 'p11km object list')", npriv, k->tok->label);
		goto out;
	}
	k->priv = objs[ip];
	memset(&objs[ip], 0, sizeof(objs[ip]));
	k->have_priv = 1;
	r = P11KM_ERR_NOTFOUND;
	if (p11km_object_pubkey(&k->priv, &k->pub) == 0) {
		r = 0;
	} else {
		for (size_t i = 0; i < nread && r < 0; i++)
			if (objs[i].cls == CKO_PUBLIC_KEY && objs[i].id_len == k->priv.id_len &&
			    k->priv.id_len > 0 && memcmp(objs[i].id, k->priv.id, k->priv.id_len) == 0)
				r = p11km_object_pubkey(&objs[i], &k->pub);
	}
	p11km_error_clear();
	if (r < 0 && (r = p11km_key_pubkey(&k->s, &k->priv, &k->pub)) == P11KM_ERR_NOTFOUND) {
		char *why = strdup(p11km_errmsg(r));
		if (p11km_key_cert_pubkey(&k->s, &k->priv, &k->pub) == 0)
			r = 0;
		else
			r = p11km_fail(P11KM_ERR_NOTFOUND, "%s, nor a certificate with its id",
			               why ? why : "no public key");
		free(why);
	}
out:
	for (size_t i = 0; i < nread; i++)
		p11km_object_release(&objs[i]);
	free(h);
	return r;
}

static const char *
sigalg_json(enum p11km_sigalg alg)
{
	switch (alg) {
	case P11KM_SIG_RSA_PSS: return "rsa-pss";
	case P11KM_SIG_RSA_PKCS1: return "rsa-pkcs1";
	case P11KM_SIG_ECDSA: return "ecdsa";
	case P11KM_SIG_EDDSA: return "eddsa";
	}
	return "?";
}

/* What the request carries, for the caller to print. */
static int
req_result(struct keyref *k, X509_REQ *req, const X509_NAME *subject, enum p11km_sigalg alg,
           X509 *cert, struct p11km_req_result *res)
{
	STACK_OF(X509_EXTENSION) *rexts = X509_REQ_get_extensions(req);
	int loc = rexts ? X509v3_get_ext_by_NID(rexts, NID_subject_alt_name, -1) : -1;
	GENERAL_NAMES *gens = loc >= 0 ? X509V3_EXT_d2i(sk_X509_EXTENSION_value(rexts, loc)) : NULL;
	unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
	int der_len = i2d_X509_REQ(req, &der), n = gens ? sk_GENERAL_NAME_num(gens) : 0;
	struct p11km_cert_summary cs = { 0 };
	int r = 0;

	sk_X509_EXTENSION_pop_free(rexts, X509_EXTENSION_free);
	res->signature = sigalg_json(alg);
	res->subject = p11km_name_text(subject);
	res->key_uri = p11km_object_uri(k->tok, &k->priv);
	if (der_len > 0) {
		SHA256(der, (size_t)der_len, md);
		res->sha256 = p11km_hex(md, sizeof(md));
	}
	if (n > 0 && (res->san.v = calloc((size_t)n, sizeof(*res->san.v))) != NULL)
		for (int i = 0; i < n; i++)
			if ((res->san.v[res->san.n] = p11km_general_name_text(
			         sk_GENERAL_NAME_value(gens, i))) != NULL)
				res->san.n++;
	if (cert != NULL && p11km_cert_summary_x509(cert, &cs) < 0)
		p11km_error_clear();
	if (cert != NULL) {
		res->renews = cs.sha256;
		cs.sha256 = NULL;
	}
	if (der_len <= 0 || res->subject == NULL || res->key_uri == NULL || res->sha256 == NULL ||
	    res->san.n != (size_t)n)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	p11km_cert_summary_release(&cs);
	GENERAL_NAMES_free(gens);
	OPENSSL_free(der);
	return r;
}

/* Sign, verify, write (o->out: atomically; "-" and NULL: only into the
 * result), describe. */
static int
finish(struct req_opts *o, struct keyref *k, const X509_NAME *subject,
       STACK_OF(X509_EXTENSION) *exts, X509 *cert, struct p11km_ctx *ctx,
       struct p11km_req_result *res)
{
	struct p11km_signer *sg = NULL;
	X509_REQ *req = NULL;
	unsigned char *enc = NULL;
	size_t enc_len = 0;
	int r, to_file = o->out != NULL && strcmp(o->out, "-") != 0;
	struct p11km_pinsrc pin = { 0 };

	if ((r = p11km_pinsrc_for(ctx, k->uri, CKU_USER, &pin)) < 0 ||
	    (r = p11km_token_signer_new(&k->s, &k->priv, k->pub, o->digest, o->pss,
	                                pin.spec ? &pin : NULL, &sg)) < 0 ||
	    (r = p11km_req_build(subject, exts, sg, &req)) < 0 ||
	    (r = p11km_req_encode(req, o->der || o->renewal_sg, &enc, &enc_len)) < 0)
		goto out;
	if (o->renewal_sg != NULL) {
		/* the PKCS#10 (DER) inside a SignedData by the old key (MS-WCCE) */
		unsigned char *cms = NULL;
		size_t cms_len = 0;
		if ((r = p11km_ms_renewal_wrap(enc, enc_len, o->renewal_cert, o->renewal_sg, o->der,
		                               &cms, &cms_len)) < 0)
			goto out;
		free(enc);
		enc = cms;
		enc_len = cms_len;
	}
	if (to_file && (r = p11km_write_file_atomic(o->out, enc, enc_len, 0644)) < 0)
		goto out;
	if (to_file)
		p11km_verbose("wrote the request to '%s'", o->out);
	if ((r = req_result(k, req, subject, sg->alg, cert, res)) < 0)
		goto out;
	res->der = o->der;
	res->request = enc;
	res->request_len = enc_len;
	enc = NULL;
out:
	free(enc);
	X509_REQ_free(req);
	p11km_signer_free(sg);
	p11km_pinsrc_release(&pin);
	return r;
}

int
p11km_req_new(struct p11km_ctx *ctx, const struct p11km_req_opts *po,
              struct p11km_req_result *res)
{
	struct req_opts o;
	struct keyref k = { 0 };
	STACK_OF(X509_EXTENSION) *exts = NULL;
	int r;

	memset(res, 0, sizeof(*res));
	if ((r = req_opts_init(po, &o)) < 0)
		goto out;
	if (o.subject == NULL) {
		r = p11km_fail(P11KM_ERR_USAGE, "req new needs --subject DN, like 'CN=www.example.com'");
		goto out;
	}
	if ((r = keyref_open(ctx, o.key, 0, &k)) < 0)
		goto out;
	if (!k.uri->has_object) {
		r = p11km_fail(P11KM_ERR_USAGE,
		    "the key URI names no key: add object=LABEL or id=HEX (see 'p11km object list')");
		goto out;
	}
	if ((r = keyref_find_key(&k)) < 0 || (r = tls_defaults(&o, k.pub, &exts)) < 0)
		goto out;
	r = finish(&o, &k, o.subject, exts, NULL, ctx, res);
out:
	if (r < 0)
		p11km_req_result_release(res);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	keyref_release(&k);
	req_opts_release(&o);
	return r;
}

/* --- renew -------------------------------------------------------------------- */

static void
cert_warnings(X509 *cert)
{
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(cert, NID_ext_key_usage, NULL, NULL);
	int tls = eku == NULL;

	if (X509_cmp_time(X509_get0_notAfter(cert), NULL) < 0)
		p11km_warn("the certificate has expired; renewing it anyway");
	if (X509_cmp_time(X509_get0_notBefore(cert), NULL) > 0)
		p11km_warn("the certificate is not valid yet; renewing it anyway");
	for (int i = 0; eku != NULL && i < sk_ASN1_OBJECT_num(eku); i++) {
		int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));
		if (nid == NID_server_auth || nid == NID_client_auth || nid == NID_anyExtendedKeyUsage)
			tls = 1;
	}
	if (!tls)
		p11km_warn("the certificate is not a TLS certificate (no serverAuth or clientAuth "
		           "usage); renewing it anyway");
	EXTENDED_KEY_USAGE_free(eku);
}

/* The certificate: from the token of k (cert URI) or a file. */
static int
renew_cert(struct p11km_ctx *ctx, struct req_opts *o, struct keyref *k, X509 **cert)
{
	struct p11km_uri *curi = NULL;
	struct p11km_object co;
	int r;

	if (strncmp(o->cert, "pkcs11:", 7) != 0)
		return p11km_cert_load(o->cert, cert);
	if ((r = p11km_uri_parse(o->cert, &curi)) < 0)
		return r;
	if (!curi->has_object) {
		p11km_uri_free(curi);
		return p11km_fail(P11KM_ERR_USAGE,
		    "the certificate URI names no object: add object=LABEL or id=HEX and type=cert");
	}
	if (k->tok != NULL && !p11km_uri_match_token(curi, NULL, NULL, &k->tok->info)) {
		p11km_uri_free(curi);
		return p11km_fail(P11KM_ERR_USAGE,
		    "the certificate and --key are on different tokens; export the certificate to a "
		    "file and renew from the file");
	}
	if (k->tok == NULL && (r = keyref_open(ctx, o->cert, o->rekey, k)) < 0) {
		p11km_uri_free(curi);
		return r;
	}
	r = p11km_object_find_one(&k->s, curi, CKO_CERTIFICATE, &co);
	p11km_uri_free(curi);
	if (r < 0)
		return r;
	if (co.value_len == 0)
		r = p11km_fail(P11KM_ERR_INPUT, "the certificate object has no value");
	else
		r = p11km_cert_from_der(co.value, co.value_len, "the certificate on the token", cert);
	if (r == 0 && p11km_cert_is_placeholder(*cert)) {
		X509_free(*cert);
		*cert = NULL;
		r = p11km_fail(P11KM_ERR_INPUT, "certificate '%s' is the placeholder ykcs11 wrote at key "
		               "generation (self-issued, notBefore = notAfter), not an issued "
		               "certificate: nothing to renew; make a first request with 'p11km req new "
		               "--subject DN'", p11km_esc(co.label ? co.label : ""));
	}
	p11km_object_release(&co);
	return r;
}

/* The current key of the certificate on the token. */
static int
renew_old_key(struct keyref *k, X509 *cert, int key_named)
{
	int r;

	if (key_named) {
		/* --key named the key: it must be the certificate's key */
		if ((r = keyref_find_key(k)) < 0)
			return r;
		if (EVP_PKEY_eq(k->pub, X509_get0_pubkey(cert)) != 1)
			return p11km_fail(P11KM_ERR_VERIFY,
			    "the key named by --key is not the certificate's key; leave --key out to "
			    "find the certificate's key, or use --rekey for a new key");
		return 0;
	}
	if ((r = p11km_key_for_cert(&k->s, cert, &k->priv, NULL)) < 0) {
		if (r == P11KM_ERR_NOTFOUND)
			p11km_fail(r, "the certificate's key is not on token '%s' (searched by key id and "
			           "by public key); renew on the token that holds the key, or use "
			           "--key", k->tok->label);
		return r;
	}
	k->have_priv = 1;
	/* key_for_cert matched the key against the certificate's public key:
	 * that is the public key (no second search for the public key object) */
	if ((k->pub = X509_get_pubkey(cert)) == NULL)
		return p11km_fail(P11KM_ERR_INPUT, "the certificate's public key cannot be read");
	return 0;
}

/* --rekey: a new key pair "<old label>.pending" on the same token. */
static int
renew_rekey(struct p11km_ctx *ctx, struct req_opts *o, struct keyref *k, char **new_uri)
{
	struct p11km_keygen kg = { 0 };
	CK_OBJECT_CLASS privc = CKO_PRIVATE_KEY;
	struct p11km_object np;
	EVP_PKEY *npub = NULL;
	CK_OBJECT_HANDLE *h = NULL;
	size_t nh = 0;
	char *label = NULL;
	int type = o->type >= 0 ? o->type : p11km_keytype_of(&k->priv), r;

	if (k->priv.label == NULL || k->priv.label[0] == '\0')
		return p11km_fail(P11KM_ERR_USAGE,
		    "the current key has no label, so the pending key cannot be named '<label>.pending'; "
		    "label the key first");
	if (type < 0)
		return p11km_fail(P11KM_ERR_UNSUPPORTED,
		    "the current key's type is not one p11km generates; give --type");
	if ((label = p11km_asprintf("%s.pending", k->priv.label)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	CK_ATTRIBUTE t[2] = { { CKA_CLASS, &privc, sizeof(privc) },
	                      { CKA_LABEL, label, strlen(label) } };
	if ((r = p11km_find(&k->s, t, 2, 2, &h, &nh)) < 0)
		goto out;
	memset(&np, 0, sizeof(np));
	if (nh > 0) {
		/* its public key first: a half-made pending pair (ids that differ)
		 * is reported with how to delete both halves */
		if (nh == 1 && (r = p11km_object_read(&k->s, h[0], &np)) == 0 &&
		    (r = p11km_key_pubkey(&k->s, &np, &npub)) < 0)
			p11km_object_release(&np);
		if (nh == 1 && r < 0)
			goto out;
		if ((!ctx->force && !o->reuse_pending) || nh > 1) {
			if (nh == 1) {
				p11km_object_release(&np);
				EVP_PKEY_free(npub);
			}
			r = p11km_fail(P11KM_ERR_EXISTS,
			    "a pending key '%s' already exists on token '%s' (from an earlier --rekey); "
			    "add --force to sign the request with it again, or install its certificate "
			    "first", label, k->tok->label);
			goto out;
		}
		p11km_note("signing with the existing pending key '%s'", label);
	} else {
		kg.type = type;
		kg.label = label;
		kg.allow_engine_breaking = type == P11KM_KEY_ED25519 &&
		                           p11km_keytype_of(&k->priv) == P11KM_KEY_ED25519;
		if ((r = p11km_keygen_check(&k->s, &kg)) < 0 ||
		    (r = p11km_keygen_run(&k->s, &kg, &np, &npub)) < 0)
			goto out;
	}
	p11km_object_release(&k->priv);
	EVP_PKEY_free(k->pub);
	k->priv = np;
	k->pub = npub;
	if ((*new_uri = p11km_object_uri(k->tok, &k->priv)) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
out:
	free(h);
	free(label);
	return r;
}

static char *
join(const struct p11km_names *l)
{
	struct p11km_buf b = { 0 };
	char *s;

	for (size_t i = 0; i < l->n; i++)
		if ((i > 0 && p11km_buf_append(&b, ", ", 2) < 0) ||
		    p11km_buf_append(&b, l->v[i], strlen(l->v[i])) < 0) {
			p11km_buf_release(&b);
			return NULL;
		}
	s = b.data ? strdup((char *)b.data) : strdup("");
	p11km_buf_release(&b);
	return s;
}

/* The extensions a renewal asks for again, notes on what it leaves out, and
 * the --san/--key-usage/--ext-key-usage overrides. */
static int
renew_exts(struct req_opts *o, X509 *cert, STACK_OF(X509_EXTENSION) **exts,
           struct p11km_names *dropped, struct p11km_names *dropped_ku)
{
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	int type = pub != NULL ? EVP_PKEY_get_base_id(pub) : EVP_PKEY_NONE, r;
	char *list;

	if (o->rekey && o->type >= 0)
		type = o->type == P11KM_KEY_ED25519 ? EVP_PKEY_ED25519 :
		       o->type >= P11KM_KEY_EC_P256 ? EVP_PKEY_EC : EVP_PKEY_RSA;
	if ((r = p11km_req_exts_from_cert(cert, type, exts, dropped, dropped_ku)) < 0)
		return r;
	if (dropped->n > 0 && (list = join(dropped)) != NULL) {
		p11km_note("not asked for again (the CA's own extensions): %s", list);
		free(list);
	}
	if (dropped_ku->n > 0 && (list = join(dropped_ku)) != NULL) {
		p11km_note("key usage %s left out: an %s key cannot do it", list,
		           type == EVP_PKEY_RSA ? "RSA" : type == EVP_PKEY_EC ? "EC" : "EdDSA");
		free(list);
	}
	return apply_overrides(o, exts);
}

/* A certificate file and no --key: the key is on the one initialised token. */
static int
keyref_sole_token(struct p11km_ctx *ctx, int rekey, struct keyref *k)
{
	struct p11km_token *tok = NULL;
	int r;

	if ((r = p11km_token_find_initialised(ctx, NULL, &tok)) < 0) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "%s", p11km_errmsg(r)); /* p11km_fail reuses its buffer */
		return p11km_fail(r, "%s (or give --key with the token or key URI)", msg);
	}
	r = keyref_open(ctx, tok->uri, rekey, k);
	p11km_token_free(tok);
	return r;
}

int
p11km_req_renew(struct p11km_ctx *ctx, const struct p11km_req_opts *po,
                struct p11km_req_result *res)
{
	struct req_opts o;
	struct keyref k = { 0 };
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509 *cert = NULL;
	char *new_uri = NULL;
	const X509_NAME *subject;
	struct p11km_pinsrc renewal_pin = { 0 };
	int r, hinted = 0;

	memset(res, 0, sizeof(*res));
	if ((r = req_opts_init(po, &o)) < 0)
		goto out;
	if (po->session != NULL) {
		/* the caller's session (the renewal batch): no second login */
		k.tok = po->tok;
		k.s = *po->session;
		k.borrowed = 1;
		if ((r = p11km_uri_parse(o.cert, &k.uri)) < 0)
			goto out;
		if (po->cert_x509 != NULL && (cert = X509_dup(po->cert_x509)) == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	if (cert == NULL && strncmp(o.cert, "pkcs11:", 7) != 0 &&
	    (r = p11km_cert_load(o.cert, &cert)) < 0)
		goto out;
	if (!k.borrowed && o.key != NULL && (r = keyref_open(ctx, o.key, o.rekey, &k)) < 0)
		goto out;
	if (!k.borrowed && o.key == NULL && cert != NULL &&
	    (r = keyref_sole_token(ctx, o.rekey, &k)) < 0)
		goto out;
	if (cert == NULL && (r = renew_cert(ctx, &o, &k, &cert)) < 0)
		goto out;
	cert_warnings(cert);
	/* the batch: the key by the certificate's id, proved by the request's
	 * signature that finish() verifies (a rekey or an MS renewal signs
	 * nothing with the old key that would prove it: not for those) */
	if (k.borrowed && o.key == NULL && !o.rekey && !po->ms_renewal &&
	    (hinted = p11km_key_by_id(&k.s, po->key_id, po->key_id_len, X509_get0_pubkey(cert),
	                              &k.priv)) < 0) {
		r = hinted;
		goto out;
	}
	k.have_priv = hinted;
	if (hinted && (k.pub = X509_get_pubkey(cert)) == NULL) {
		r = p11km_fail(P11KM_ERR_INPUT, "the certificate's public key cannot be read");
		goto out;
	}
	if (!hinted && (r = renew_old_key(&k, cert, o.key != NULL && k.uri->has_object)) < 0)
		goto out;
	if ((r = renew_exts(&o, cert, &exts, &res->dropped, &res->dropped_ku)) < 0)
		goto out;
	/* the old key signs the MS renewal: its signer is made before --rekey
	 * moves k to the new key (the token handle stays valid) */
	if (po->ms_renewal &&
	    ((r = p11km_pinsrc_for(ctx, k.uri, CKU_USER, &renewal_pin)) < 0 ||
	     (r = p11km_token_signer_new(&k.s, &k.priv, k.pub, o.digest, 0,
	                                 renewal_pin.spec ? &renewal_pin : NULL, &o.renewal_sg)) < 0))
		goto out;
	o.renewal_cert = cert;
	if (o.rekey && (r = renew_rekey(ctx, &o, &k, &new_uri)) < 0)
		goto out;
	subject = o.subject ? o.subject : X509_get_subject_name(cert);
	r = finish(&o, &k, subject, exts, cert, ctx, res);
	if (r == P11KM_ERR_VERIFY && hinted) {
		/* the key with the certificate's id is another key: search by public key */
		p11km_verbose("the key with the certificate's id is not its key; searching by public key");
		p11km_error_clear();
		p11km_req_result_release(res);
		p11km_object_release(&k.priv);
		EVP_PKEY_free(k.pub);
		k.pub = NULL;
		if ((r = renew_old_key(&k, cert, 0)) == 0)
			r = finish(&o, &k, subject, exts, cert, ctx, res);
	}
	if (r < 0)
		goto out;
	if (k.borrowed) {
		/* for the install of the same batch: the key that signed */
		if ((r = p11km_object_copy(&k.priv, &res->key)) < 0)
			goto out;
		res->have_key = 1;
		if (EVP_PKEY_up_ref(k.pub) == 1)
			res->key_pub = k.pub;
	}
	res->renew = 1;
	res->rekey = new_uri != NULL;
	res->ms_renewal = o.renewal_sg != NULL;
	res->new_key_uri = new_uri;
	new_uri = NULL;
out:
	if (r < 0)
		p11km_req_result_release(res);
	p11km_signer_free(o.renewal_sg);
	p11km_pinsrc_release(&renewal_pin);
	free(new_uri);
	X509_free(cert);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	keyref_release(&k);
	req_opts_release(&o);
	return r;
}

void
p11km_req_result_release(struct p11km_req_result *res)
{
	if (res == NULL)
		return;
	free(res->request);
	free(res->subject);
	free(res->key_uri);
	free(res->sha256);
	free(res->renews);
	free(res->new_key_uri);
	if (res->have_key)
		p11km_object_release(&res->key);
	EVP_PKEY_free(res->key_pub);
	p11km_names_release(&res->san);
	p11km_names_release(&res->dropped);
	p11km_names_release(&res->dropped_ku);
	memset(res, 0, sizeof(*res));
}
