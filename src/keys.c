/* keys.c: find a token key from a public key, with targeted searches. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/x509v3.h>

#include "p11km/keys.h"
#include "p11km/req.h"
#include "p11km/util.h"
#include "p11km/x509.h"

/* The two halves of a key pair with different ids: a key generation that
 * stopped between setting the private and the public key's id.  Nothing
 * finds the one from the other, so say so, and how to delete both. */
static int
halves_fail(struct p11km_session *s, const struct p11km_object *priv,
            const struct p11km_object *pub)
{
	char *a = p11km_hex(priv->id, priv->id_len), *b = p11km_hex(pub->id, pub->id_len);
	int r = p11km_fail(P11KM_ERR_TOKEN,
	    "the key pair '%s' on token '%s' is half made: its private key has id %s, its public "
	    "key id %s (a key generation stopped half way); delete both halves "
	    "(pkcs11-tool --login --delete-object --type privkey --id %s, and --type pubkey "
	    "--id %s) and make the key again", priv->label ? priv->label : "", s->tok->label,
	    a ? a : "?", b ? b : "?", a ? a : "?", b ? b : "?");

	free(a);
	free(b);
	return r;
}

/* The other half of o (class cls) by o's label, when it carries another id:
 * halves_fail(); else P11KM_ERR_NOTFOUND.  One search, on failure paths only. */
static int
other_half(struct p11km_session *s, const struct p11km_object *o, CK_OBJECT_CLASS cls)
{
	CK_ATTRIBUTE t[2] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_LABEL, NULL, 0 } };
	CK_OBJECT_HANDLE *h = NULL;
	struct p11km_object other;
	size_t n = 0;
	int r;

	if (o->label == NULL || o->label[0] == '\0' || o->id_len == 0)
		return P11KM_ERR_NOTFOUND;
	t[1].pValue = o->label;
	t[1].ulValueLen = strlen(o->label);
	if ((r = p11km_find(s, t, 2, 2, &h, &n)) < 0)
		return r;
	r = P11KM_ERR_NOTFOUND;
	if (n == 1 && p11km_object_read(s, h[0], &other) == 0) {
		if (other.id_len > 0 && (other.id_len != o->id_len ||
		                         memcmp(other.id, o->id, o->id_len) != 0))
			r = cls == CKO_PUBLIC_KEY ? halves_fail(s, o, &other) : halves_fail(s, &other, o);
		p11km_object_release(&other);
	}
	free(h);
	if (r == P11KM_ERR_NOTFOUND)
		p11km_error_clear();
	return r;
}

/* Find objects by template and keep the first whose public key is pkey (a
 * private key before a public one, when the template names no class). */
static int
find_matching(struct p11km_session *s, CK_ATTRIBUTE *t, CK_ULONG nt, EVP_PKEY *pkey,
              struct p11km_object *out)
{
	CK_OBJECT_HANDLE *h = NULL;
	size_t n = 0;
	int r, found = 0;

	if ((r = p11km_find(s, t, nt, 16, &h, &n)) < 0)
		return r;
	for (size_t i = 0; i < n && !(found && out->cls == CKO_PRIVATE_KEY); i++) {
		struct p11km_object o;
		EVP_PKEY *k = NULL;
		if ((r = p11km_object_read(s, h[i], &o)) < 0)
			break;
		if (o.cls == CKO_PRIVATE_KEY && p11km_object_pubkey(&o, &k) < 0)
			k = NULL;
		if (o.cls == CKO_PRIVATE_KEY && k == NULL) {
			/* a half-made pair is an error, not a mismatch */
			if ((r = p11km_key_pubkey(s, &o, &k)) < 0 && r != P11KM_ERR_NOTFOUND) {
				p11km_object_release(&o);
				free(h);
				return r;
			}
			r = 0;
		} else if (o.cls == CKO_PUBLIC_KEY && k == NULL) {
			p11km_object_pubkey(&o, &k);
		}
		if (k != NULL && EVP_PKEY_eq(k, pkey) == 1 && (!found || o.cls == CKO_PRIVATE_KEY)) {
			if (found)
				p11km_object_release(out);
			*out = o;
			found = 1;
		} else {
			p11km_object_release(&o);
		}
		EVP_PKEY_free(k);
	}
	free(h);
	p11km_error_clear();
	if (r < 0 && !found)
		return r;
	return found ? 0 : P11KM_ERR_NOTFOUND;
}

int
p11km_key_pubkey(struct p11km_session *s, const struct p11km_object *priv, EVP_PKEY **out)
{
	CK_OBJECT_CLASS pubc = CKO_PUBLIC_KEY;
	CK_ATTRIBUTE t[2];
	struct p11km_object *objs = NULL;
	CK_OBJECT_HANDLE *h = NULL;
	size_t n = 0;
	int r;

	if (p11km_object_pubkey(priv, out) == 0)
		return 0;
	if (priv->id_len == 0)
		return p11km_fail(P11KM_ERR_NOTFOUND,
		    "key '%s' carries no public key and has no CKA_ID to find its public key by",
		    priv->label ? priv->label : "");
	t[0] = (CK_ATTRIBUTE){ CKA_CLASS, &pubc, sizeof(pubc) };
	t[1] = (CK_ATTRIBUTE){ CKA_ID, priv->id, priv->id_len };
	if ((r = p11km_find(s, t, 2, 2, &h, &n)) < 0)
		return r;
	if (n == 0 && (r = other_half(s, priv, CKO_PUBLIC_KEY)) != P11KM_ERR_NOTFOUND) {
		free(h);
		return r;
	}
	r = p11km_fail(P11KM_ERR_NOTFOUND, "no public key on the token for key '%s'",
	               priv->label ? priv->label : "");
	if (n > 0 && (objs = calloc(1, sizeof(*objs))) != NULL &&
	    p11km_object_read(s, h[0], objs) == 0)
		r = p11km_object_pubkey(objs, out);
	p11km_objects_free(objs, objs ? 1 : 0);
	free(h);
	return r;
}

/* Private key with the id of a matched public key. */
static int
priv_for_pub(struct p11km_session *s, const struct p11km_object *pub, EVP_PKEY *pkey,
             struct p11km_object *priv)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[2] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_ID, pub->id, pub->id_len },
	};
	CK_OBJECT_HANDLE *h = NULL;
	size_t n = 0;
	int r;

	if (pub->id_len == 0)
		return P11KM_ERR_NOTFOUND;
	if ((r = p11km_find(s, t, 2, 2, &h, &n)) < 0)
		return r;
	r = n == 1 ? p11km_object_read(s, h[0], priv) : P11KM_ERR_NOTFOUND;
	free(h);
	(void)pkey;
	return r;
}

/* DER OCTET STRING of an EC point, as CKA_EC_POINT holds it. */
static unsigned char *
ec_point_der(EVP_PKEY *pkey, size_t *len)
{
	unsigned char raw[256], *der = NULL;
	size_t rlen = 0;
	ASN1_OCTET_STRING *os;
	int dlen;

	if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, raw, sizeof(raw),
	                                    &rlen) != 1 &&
	    EVP_PKEY_get_raw_public_key(pkey, raw, &rlen) != 1)
		return NULL;
	if ((os = ASN1_OCTET_STRING_new()) == NULL ||
	    ASN1_OCTET_STRING_set(os, raw, (int)rlen) != 1 ||
	    (dlen = i2d_ASN1_OCTET_STRING(os, &der)) <= 0) {
		ASN1_OCTET_STRING_free(os);
		return NULL;
	}
	ASN1_OCTET_STRING_free(os);
	*len = (size_t)dlen;
	return der;
}

static int
by_public_parts(struct p11km_session *s, EVP_PKEY *pkey, struct p11km_object *priv,
                struct p11km_object *pub)
{
	CK_ATTRIBUTE t[1];
	unsigned char *part = NULL;
	size_t plen = 0;
	BIGNUM *n = NULL;
	int r = P11KM_ERR_NOTFOUND;
	struct p11km_object po;
	CK_ATTRIBUTE_TYPE type;

	if (EVP_PKEY_is_a(pkey, "RSA")) {
		if (EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_RSA_N, &n) != 1)
			return P11KM_ERR_NOTFOUND;
		plen = (size_t)BN_num_bytes(n);
		if ((part = malloc(plen)) == NULL) {
			BN_free(n);
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		}
		BN_bn2bin(n, part);
		BN_free(n);
		type = CKA_MODULUS;
	} else {
		if ((part = ec_point_der(pkey, &plen)) == NULL)
			return P11KM_ERR_NOTFOUND;
		type = CKA_EC_POINT;
	}
	/* One search for both halves: SoftHSM's EC private keys carry no
	 * CKA_EC_POINT, tpm2-pkcs11's do; an RSA private key its modulus. */
	t[0] = (CK_ATTRIBUTE){ type, part, plen };
	if ((r = find_matching(s, t, 1, pkey, &po)) < 0)
		goto out;
	if (po.cls == CKO_PRIVATE_KEY) {
		*priv = po;
		goto out;
	}
	if ((r = priv_for_pub(s, &po, pkey, priv)) == P11KM_ERR_NOTFOUND)
		r = other_half(s, &po, CKO_PRIVATE_KEY);
	if (r == 0 && pub != NULL)
		*pub = po;
	else
		p11km_object_release(&po);
	OPENSSL_free(part);
	return r;
out:
	if (r == 0 && pub != NULL)
		pub->cls = (CK_OBJECT_CLASS)-1;
	OPENSSL_free(part);
	return r;
}

int
p11km_key_for_pubkey(struct p11km_session *s, EVP_PKEY *pkey, const unsigned char *hint_id,
                     size_t hint_len, struct p11km_object *priv, struct p11km_object *pub)
{
	CK_OBJECT_CLASS privc = CKO_PRIVATE_KEY;
	unsigned char keyid[20];
	CK_ATTRIBUTE t[2];
	int r;

	if (pub != NULL)
		memset(pub, 0, sizeof(*pub)), pub->cls = (CK_OBJECT_CLASS)-1;
	t[0] = (CK_ATTRIBUTE){ CKA_CLASS, &privc, sizeof(privc) };
	if (p11km_pubkey_keyid(pkey, keyid) == 0) {
		t[1] = (CK_ATTRIBUTE){ CKA_ID, keyid, sizeof(keyid) };
		if ((r = find_matching(s, t, 2, pkey, priv)) != P11KM_ERR_NOTFOUND)
			return r;
	}
	if (hint_id != NULL && hint_len > 0 &&
	    (hint_len != sizeof(keyid) || memcmp(hint_id, keyid, hint_len) != 0)) {
		t[1] = (CK_ATTRIBUTE){ CKA_ID, (void *)hint_id, hint_len };
		if ((r = find_matching(s, t, 2, pkey, priv)) != P11KM_ERR_NOTFOUND)
			return r;
	}
	if ((r = by_public_parts(s, pkey, priv, pub)) != P11KM_ERR_NOTFOUND)
		return r;
	return p11km_fail(P11KM_ERR_NOTFOUND,
	    "no private key on token '%s' matches the public key (compared by key id and by "
	    "public key); is this the right token?", s->tok->label);
}

int
p11km_key_for_cert(struct p11km_session *s, X509 *cert, struct p11km_object *priv,
                   struct p11km_object *pub)
{
	EVP_PKEY *pkey = X509_get0_pubkey(cert);
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(cert);

	if (pkey == NULL)
		return p11km_fail(P11KM_ERR_INPUT, "the certificate's public key cannot be read");
	return p11km_key_for_pubkey(s, pkey, ski ? ASN1_STRING_get0_data(ski) : NULL,
	                            ski ? (size_t)ASN1_STRING_length(ski) : 0, priv, pub);
}

/*
 * A token with only the private key and its certificate (PIV cards): the
 * public key of the certificate with the key's CKA_ID.
 */
int
p11km_key_cert_pubkey(struct p11km_session *s, const struct p11km_object *priv, EVP_PKEY **out)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE t[2] = { { CKA_CLASS, &cls, sizeof(cls) },
	                      { CKA_ID, priv->id, priv->id_len } };
	CK_OBJECT_HANDLE *h = NULL;
	struct p11km_object co;
	X509 *cert = NULL;
	size_t n = 0;
	int r;

	if (priv->id_len == 0 || p11km_find(s, t, 2, 1, &h, &n) < 0 || n == 0) {
		free(h);
		return P11KM_ERR_NOTFOUND;
	}
	r = p11km_object_read_as(s, h[0], CKO_CERTIFICATE, &co);
	free(h);
	if (r < 0)
		return r;
	r = p11km_cert_from_der(co.value, co.value_len, "the key's certificate", &cert);
	p11km_object_release(&co);
	if (r < 0)
		return r;
	if ((*out = X509_get_pubkey(cert)) == NULL)
		r = p11km_fail(P11KM_ERR_INPUT, "the key's certificate has no usable public key");
	else
		p11km_note("key '%s' has no public key on the token: using its certificate's",
		           priv->label ? priv->label : "");
	X509_free(cert);
	p11km_error_clear();
	return r == 0 ? 0 : P11KM_ERR_NOTFOUND;
}

int
p11km_key_by_id(struct p11km_session *s, const unsigned char *id, size_t id_len, EVP_PKEY *pkey,
                struct p11km_object *priv)
{
	CK_OBJECT_CLASS pc = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE t[2] = { { CKA_CLASS, &pc, sizeof(pc) }, { CKA_ID, (void *)id, id_len } };
	CK_OBJECT_HANDLE *h = NULL;
	EVP_PKEY *own = NULL;
	size_t n = 0;
	int r, eq = 1;

	if (id_len == 0 || pkey == NULL)
		return 0;
	if ((r = p11km_find(s, t, 2, 2, &h, &n)) < 0)
		return r;
	if (n != 1) {
		free(h);
		return 0;
	}
	r = p11km_object_read_as(s, h[0], CKO_PRIVATE_KEY, priv);
	free(h);
	if (r < 0)
		return r;
	if (priv->cls == CKO_PRIVATE_KEY && p11km_object_pubkey(priv, &own) == 0)
		eq = EVP_PKEY_eq(own, pkey) == 1;
	EVP_PKEY_free(own);
	p11km_error_clear();
	if (priv->cls != CKO_PRIVATE_KEY || !eq) {
		p11km_object_release(priv);
		return 0;
	}
	return 1;
}
