/* x509-req.c: PKCS#10 requests assembled with OpenSSL and signed through a
 * struct p11km_signer; the extensions a renewal copies; certificate files. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "p11km/req.h"
#include "p11km/util.h"
#include "p11km/x509.h"

/* --- software signer (tests) ------------------------------------------------ */

static void
soft_release(struct p11km_signer *sg)
{
	EVP_PKEY_free(sg->priv);
}

static int
soft_sign(struct p11km_signer *sg, const unsigned char *tbs, size_t tbs_len, unsigned char **sig,
          size_t *sig_len)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char *buf = NULL;
	size_t len = 0;
	int r = P11KM_ERR_FAILED;

	if (mctx == NULL || EVP_DigestSignInit(mctx, &pctx, sg->md, NULL, sg->priv) != 1)
		goto out;
	if (sg->alg == P11KM_SIG_RSA_PSS &&
	    (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
	     EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1))
		goto out;
	if (EVP_DigestSign(mctx, NULL, &len, tbs, tbs_len) != 1 || (buf = malloc(len)) == NULL ||
	    EVP_DigestSign(mctx, buf, &len, tbs, tbs_len) != 1)
		goto out;
	*sig = buf;
	*sig_len = len;
	buf = NULL;
	r = 0;
out:
	if (r < 0)
		p11km_fail(r, "software signature failed: %s", p11km_openssl_error());
	free(buf);
	EVP_MD_CTX_free(mctx);
	return r;
}

int
p11km_soft_signer_new(EVP_PKEY *key, const char *digest, int pss, struct p11km_signer **out)
{
	struct p11km_signer *sg = calloc(1, sizeof(*sg));
	int r;

	if (sg == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = p11km_sigalg_choose(key, digest, pss, &sg->alg, &sg->md)) < 0) {
		free(sg);
		return r;
	}
	EVP_PKEY_up_ref(key);
	EVP_PKEY_up_ref(key);
	sg->priv = key;
	sg->pubkey = key;
	sg->sign = soft_sign;
	sg->release = soft_release;
	*out = sg;
	return 0;
}

/* --- the signature algorithm ------------------------------------------------- */

static int
pss_params(const EVP_MD *md, ASN1_STRING **out)
{
	RSA_PSS_PARAMS *pss = RSA_PSS_PARAMS_new();
	X509_ALGOR *mgfmd = X509_ALGOR_new();
	ASN1_STRING *mgfparam = NULL;
	int ok = 0;

	if (pss == NULL || mgfmd == NULL)
		goto out;
	if ((pss->hashAlgorithm = X509_ALGOR_new()) == NULL ||
	    (pss->maskGenAlgorithm = X509_ALGOR_new()) == NULL ||
	    (pss->saltLength = ASN1_INTEGER_new()) == NULL)
		goto out;
	X509_ALGOR_set_md(pss->hashAlgorithm, md);
	X509_ALGOR_set_md(mgfmd, md);
	if (ASN1_INTEGER_set(pss->saltLength, EVP_MD_get_size(md)) != 1 ||
	    ASN1_item_pack(mgfmd, ASN1_ITEM_rptr(X509_ALGOR), &mgfparam) == NULL)
		goto out;
	if (X509_ALGOR_set0(pss->maskGenAlgorithm, OBJ_nid2obj(NID_mgf1), V_ASN1_SEQUENCE,
	                    mgfparam) != 1)
		goto out;
	mgfparam = NULL;
	ok = ASN1_item_pack(pss, ASN1_ITEM_rptr(RSA_PSS_PARAMS), out) != NULL;
out:
	ASN1_STRING_free(mgfparam);
	X509_ALGOR_free(mgfmd);
	RSA_PSS_PARAMS_free(pss);
	return ok ? 0 : p11km_fail(P11KM_ERR_FAILED, "unable to encode RSA-PSS parameters");
}

static int
sig_algor(const struct p11km_signer *sg, X509_ALGOR **out)
{
	X509_ALGOR *alg = X509_ALGOR_new();
	ASN1_STRING *params = NULL;
	int nid = NID_undef, ptype = V_ASN1_UNDEF, r;

	if (alg == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	switch (sg->alg) {
	case P11KM_SIG_RSA_PKCS1:
		OBJ_find_sigid_by_algs(&nid, EVP_MD_get_type(sg->md), EVP_PKEY_RSA);
		ptype = V_ASN1_NULL;
		break;
	case P11KM_SIG_ECDSA:
		OBJ_find_sigid_by_algs(&nid, EVP_MD_get_type(sg->md), EVP_PKEY_EC);
		break;
	case P11KM_SIG_EDDSA:
		nid = EVP_PKEY_is_a(sg->pubkey, "ED448") ? NID_ED448 : NID_ED25519;
		break;
	case P11KM_SIG_RSA_PSS:
		if ((r = pss_params(sg->md, &params)) < 0) {
			X509_ALGOR_free(alg);
			return r;
		}
		nid = NID_rsassaPss;
		ptype = V_ASN1_SEQUENCE;
		break;
	}
	if (nid == NID_undef || X509_ALGOR_set0(alg, OBJ_nid2obj(nid), ptype, params) != 1) {
		ASN1_STRING_free(params);
		X509_ALGOR_free(alg);
		return p11km_fail(P11KM_ERR_UNSUPPORTED, "no signature algorithm for this key and digest");
	}
	*out = alg;
	return 0;
}

int
p11km_req_build(const X509_NAME *subject, const STACK_OF(X509_EXTENSION) *exts,
                struct p11km_signer *sg, X509_REQ **out)
{
	X509_REQ *req = X509_REQ_new();
	X509_ALGOR *alg = NULL;
	ASN1_BIT_STRING *bits = NULL;
	unsigned char *tbs = NULL, *sig = NULL;
	size_t sig_len = 0;
	int tbs_len, r;

	if (req == NULL || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
	    X509_REQ_set_subject_name(req, subject) != 1 || X509_REQ_set_pubkey(req, sg->pubkey) != 1 ||
	    (exts != NULL && sk_X509_EXTENSION_num(exts) > 0 &&
	     X509_REQ_add_extensions(req, exts) != 1)) {
		r = p11km_fail(P11KM_ERR_FAILED, "unable to assemble the request: %s",
		               p11km_openssl_error());
		goto out;
	}
	if ((r = sig_algor(sg, &alg)) < 0)
		goto out;
	if (X509_REQ_set1_signature_algo(req, alg) != 1 ||
	    (tbs_len = i2d_re_X509_REQ_tbs(req, &tbs)) <= 0) {
		r = p11km_fail(P11KM_ERR_FAILED, "unable to encode the request: %s",
		               p11km_openssl_error());
		goto out;
	}
	if ((r = sg->sign(sg, tbs, (size_t)tbs_len, &sig, &sig_len)) < 0)
		goto out;
	if ((bits = ASN1_BIT_STRING_new()) == NULL ||
	    ASN1_BIT_STRING_set(bits, sig, (int)sig_len) != 1) {
		ASN1_BIT_STRING_free(bits);
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	X509_REQ_set0_signature(req, bits);
	if (X509_REQ_verify(req, sg->pubkey) != 1) {
		r = p11km_fail(P11KM_ERR_VERIFY,
		    "the token's signature on the request does not verify with the key's public key "
		    "(%s); nothing was written", p11km_openssl_error());
		goto out;
	}
	*out = req;
	req = NULL;
	r = 0;
out:
	free(sig);
	OPENSSL_free(tbs);
	X509_ALGOR_free(alg);
	X509_REQ_free(req);
	return r;
}

int
p11km_req_encode(X509_REQ *req, int der, unsigned char **out, size_t *len)
{
	BIO *b;
	char *p;
	long n;
	unsigned char *d = NULL;
	int dl;

	if (der) {
		if ((dl = i2d_X509_REQ(req, &d)) <= 0)
			return p11km_fail(P11KM_ERR_FAILED, "unable to encode the request");
		*out = p11km_memdup(d, (size_t)dl);
		OPENSSL_free(d);
		*len = (size_t)dl;
		return *out ? 0 : p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	if ((b = BIO_new(BIO_s_mem())) == NULL || PEM_write_bio_X509_REQ(b, req) != 1 ||
	    (n = BIO_get_mem_data(b, &p)) <= 0) {
		BIO_free(b);
		return p11km_fail(P11KM_ERR_FAILED, "unable to encode the request as PEM");
	}
	*out = p11km_memdup(p, (size_t)n);
	*len = (size_t)n;
	BIO_free(b);
	return *out ? 0 : p11km_fail(P11KM_ERR_NOMEM, "out of memory");
}

/* --- renewal --------------------------------------------------------------- */

/* What a requester legitimately asks for; everything else in a certificate
 * is the CA's (key identifiers, CRL and OCSP pointers, policies, SCTs,
 * nsComment, Microsoft's template and application policies ...). */
static int
requester_ext(int nid, int is_ca)
{
	switch (nid) {
	case NID_subject_alt_name: case NID_key_usage: case NID_ext_key_usage:
	case NID_tlsfeature: case NID_SMIMECapabilities:
		return 1;
	case NID_basic_constraints:
		return is_ca;
	default:
		return 0;
	}
}

/* Names of extensions OpenSSL does not know. */
static const struct { const char *oid, *name; } ext_names[] = {
	{ "1.3.6.1.4.1.311.20.2", "Microsoft certificate template name" },
	{ "1.3.6.1.4.1.311.21.7", "Microsoft certificate template" },
	{ "1.3.6.1.4.1.311.21.10", "Microsoft application policies" },
};

static char *
ext_name(const X509_EXTENSION *e)
{
	const ASN1_OBJECT *obj = X509_EXTENSION_get_object((X509_EXTENSION *)e);
	char oid[128];

	if (OBJ_obj2nid(obj) != NID_undef)
		return strdup(OBJ_nid2ln(OBJ_obj2nid(obj)));
	if (OBJ_obj2txt(oid, sizeof(oid), obj, 1) <= 0)
		return strdup("?");
	for (size_t i = 0; i < sizeof(ext_names) / sizeof(ext_names[0]); i++)
		if (strcmp(oid, ext_names[i].oid) == 0)
			return p11km_asprintf("%s (%s)", ext_names[i].name, oid);
	return strdup(oid);
}

static int
names_push(struct p11km_names *l, char *s)
{
	char **v;

	if (s == NULL || (v = realloc(l->v, (l->n + 1) * sizeof(*v))) == NULL) {
		free(s);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	l->v = v;
	l->v[l->n++] = s;
	return 0;
}

void
p11km_names_release(struct p11km_names *l)
{
	for (size_t i = 0; l != NULL && i < l->n; i++)
		free(l->v[i]);
	if (l != NULL) {
		free(l->v);
		l->v = NULL;
		l->n = 0;
	}
}

/* keyUsage bits, RFC 5280 order, and the key types that can do them. */
static const char *const ku_bits[] = {
	"digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment",
	"keyAgreement", "keyCertSign", "cRLSign", "encipherOnly", "decipherOnly",
};

static int
ku_possible(int bit, int key_type)
{
	switch (key_type) {
	case EVP_PKEY_RSA: case EVP_PKEY_RSA_PSS:   /* no key agreement */
		return bit != 4 && bit != 7 && bit != 8;
	case EVP_PKEY_EC:                           /* no key transport, no encryption */
		return bit != 2 && bit != 3;
	case EVP_PKEY_ED25519: case EVP_PKEY_ED448: /* signatures only */
		return bit == 0 || bit == 1 || bit == 5 || bit == 6;
	default:
		return 1;
	}
}

/* The keyUsage e minus what key_type cannot do: *out the new extension (NULL
 * when nothing is left), the dropped bits' names added to dropped_ku. */
static int
ku_filter(X509_EXTENSION *e, int key_type, X509_EXTENSION **out, struct p11km_names *dropped_ku)
{
	ASN1_BIT_STRING *bs = X509V3_EXT_d2i(e);
	int r = 0, left = 0, changed = 0;

	*out = NULL;
	if (bs == NULL) {
		ERR_clear_error();
		return p11km_fail(P11KM_ERR_INPUT, "the certificate's keyUsage does not parse");
	}
	for (int bit = 0; bit < 9 && r == 0; bit++) {
		if (!ASN1_BIT_STRING_get_bit(bs, bit))
			continue;
		if (ku_possible(bit, key_type)) {
			left = 1;
			continue;
		}
		changed = 1;
		if (!ASN1_BIT_STRING_set_bit(bs, bit, 0))
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		else
			r = names_push(dropped_ku, strdup(ku_bits[bit]));
	}
	if (r == 0 && left)
		*out = changed ? X509V3_EXT_i2d(NID_key_usage, X509_EXTENSION_get_critical(e), bs)
		               : X509_EXTENSION_dup(e);
	if (r == 0 && left && *out == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	ASN1_BIT_STRING_free(bs);
	return r;
}

int
p11km_req_exts_from_cert(X509 *cert, int key_type, STACK_OF(X509_EXTENSION) **out,
                         struct p11km_names *dropped, struct p11km_names *dropped_ku)
{
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	int is_ca = X509_check_ca(cert) > 0, r = 0;

	*out = NULL;
	if (exts == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (int i = 0; i < X509_get_ext_count(cert) && r == 0; i++) {
		X509_EXTENSION *e = X509_get_ext(cert, i), *d = NULL;
		int nid = OBJ_obj2nid(X509_EXTENSION_get_object(e));
		if (!requester_ext(nid, is_ca)) {
			r = names_push(dropped, ext_name(e));
			continue;
		}
		if (nid == NID_key_usage)
			r = ku_filter(e, key_type, &d, dropped_ku);
		else if ((d = X509_EXTENSION_dup(e)) == NULL)
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		if (r == 0 && d != NULL && sk_X509_EXTENSION_push(exts, d) <= 0) {
			X509_EXTENSION_free(d);
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		}
	}
	ERR_clear_error();
	if (r < 0) {
		sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		return r;
	}
	*out = exts;
	return 0;
}

int
p11km_exts_set(STACK_OF(X509_EXTENSION) **exts, X509_EXTENSION *ext)
{
	int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));

	if (*exts == NULL && (*exts = sk_X509_EXTENSION_new_null()) == NULL) {
		X509_EXTENSION_free(ext);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	for (int i = 0; i < sk_X509_EXTENSION_num(*exts); i++) {
		X509_EXTENSION *e = sk_X509_EXTENSION_value(*exts, i);
		if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == nid) {
			X509_EXTENSION_free(e);
			sk_X509_EXTENSION_set(*exts, i, ext);
			return 0;
		}
	}
	if (sk_X509_EXTENSION_push(*exts, ext) <= 0) {
		X509_EXTENSION_free(ext);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	return 0;
}

/* --- certificate files --------------------------------------------------------- */

int
p11km_cert_from_der(const unsigned char *der, size_t len, const char *what, X509 **out)
{
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	X509_REQ *req;

	if (cert != NULL && (size_t)(p - der) == len) {
		*out = cert;
		return 0;
	}
	X509_free(cert);
	p = der;
	if ((req = d2i_X509_REQ(NULL, &p, (long)len)) != NULL) {
		X509_REQ_free(req);
		ERR_clear_error();
		return p11km_fail(P11KM_ERR_INPUT,
		    "%s is a certificate request (CSR), not a certificate; give the certificate "
		    "that the CA issued", what);
	}
	ERR_clear_error();
	return p11km_fail(P11KM_ERR_INPUT,
	    "%s is not an X.509 certificate (not PEM, and not complete DER); is it truncated?", what);
}

int
p11km_cert_load(const char *path, X509 **out)
{
	unsigned char *data = NULL, *der = NULL;
	size_t len = 0;
	char *name = NULL, *header = NULL;
	long dlen = 0;
	BIO *b = NULL;
	int r;

	if ((r = p11km_read_file(path, 1 << 20, &data, &len)) < 0)
		return r;
	if (len >= 11 && memmem(data, len, "-----BEGIN ", 11) != NULL) {
		if ((b = BIO_new_mem_buf(data, (int)len)) == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			goto out;
		}
		if (PEM_read_bio(b, &name, &header, &der, &dlen) != 1) {
			ERR_clear_error();
			r = p11km_fail(P11KM_ERR_INPUT,
			    "'%s' holds damaged or truncated PEM; give the whole certificate file", path);
			goto out;
		}
		if (strstr(name, "CERTIFICATE REQUEST") != NULL) {
			r = p11km_fail(P11KM_ERR_INPUT,
			    "'%s' is a certificate request (CSR), not a certificate; give the "
			    "certificate that the CA issued", path);
			goto out;
		}
		if (strcmp(name, "CERTIFICATE") != 0 && strcmp(name, "X509 CERTIFICATE") != 0) {
			r = p11km_fail(P11KM_ERR_INPUT, "'%s' holds a PEM '%s', not a certificate", path,
			               name);
			goto out;
		}
		char *what = p11km_asprintf("'%s'", path);
		r = p11km_cert_from_der(der, (size_t)dlen, what ? what : path, out);
		free(what);
		goto out;
	}
	char *what = p11km_asprintf("'%s'", path);
	r = p11km_cert_from_der(data, len, what ? what : path, out);
	free(what);
out:
	BIO_free(b);
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	free(data);
	return r;
}
