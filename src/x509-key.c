/* x509-key.c: public keys from token attributes; certificate summaries. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "p11km/util.h"
#include "p11km/x509.h"

const char *
p11km_ec_params_curve(const unsigned char *der, size_t len, int *bits)
{
	const unsigned char *p = der;
	ASN1_OBJECT *obj;
	const char *name = NULL;
	int b = 0;

	if (der == NULL || len == 0)
		return NULL;
	if (der[0] == 0x13) { /* PrintableString, as some tokens write for EdDSA */
		if (len >= 14 && memcmp(der + 2, "edwards25519", 12) == 0)
			name = "Ed25519", b = 255;
		else if (len >= 12 && memcmp(der + 2, "edwards448", 10) == 0)
			name = "Ed448", b = 448;
	} else if ((obj = d2i_ASN1_OBJECT(NULL, &p, (long)len)) != NULL) {
		switch (OBJ_obj2nid(obj)) {
		case NID_X9_62_prime256v1: name = "P-256"; b = 256; break;
		case NID_secp384r1: name = "P-384"; b = 384; break;
		case NID_secp521r1: name = "P-521"; b = 521; break;
		case NID_secp256k1: name = "secp256k1"; b = 256; break;
		case NID_ED25519: name = "Ed25519"; b = 255; break;
		case NID_ED448: name = "Ed448"; b = 448; break;
		default: break;
		}
		ASN1_OBJECT_free(obj);
	}
	if (bits != NULL)
		*bits = b;
	return name;
}

/* CKA_EC_POINT is a DER OCTET STRING; some tokens store the raw point. */
static int
ec_point_raw(const unsigned char *p, size_t len, const unsigned char **raw, size_t *raw_len)
{
	const unsigned char *q = p;
	ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &q, (long)len);

	if (os != NULL && (size_t)(q - p) == len) {
		*raw = p + (len - (size_t)os->length);
		*raw_len = (size_t)os->length;
		ASN1_OCTET_STRING_free(os);
		return 0;
	}
	ASN1_OCTET_STRING_free(os);
	*raw = p;
	*raw_len = len;
	return 0;
}

static int
from_params(const char *type, OSSL_PARAM_BLD *bld, EVP_PKEY **out)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;
	int r = P11KM_ERR_INPUT;

	if (params != NULL && pctx != NULL && EVP_PKEY_fromdata_init(pctx) == 1 &&
	    EVP_PKEY_fromdata(pctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) == 1) {
		*out = pkey;
		r = 0;
	} else {
		p11km_fail(r, "the token's public key attributes do not form a valid %s key: %s",
		           type, p11km_openssl_error());
	}
	EVP_PKEY_CTX_free(pctx);
	OSSL_PARAM_free(params);
	return r;
}

static int
rsa_pubkey(const struct p11km_object *o, EVP_PKEY **out)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	BIGNUM *n = BN_bin2bn(o->modulus, (int)o->modulus_len, NULL);
	BIGNUM *e = BN_bin2bn(o->pub_exp, (int)o->pub_exp_len, NULL);
	int r = P11KM_ERR_NOMEM;

	if (bld != NULL && n != NULL && e != NULL &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) == 1 &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) == 1)
		r = from_params("RSA", bld, out);
	else
		p11km_fail(r, "out of memory");
	BN_free(n);
	BN_free(e);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

static int
ec_pubkey(const struct p11km_object *o, EVP_PKEY **out)
{
	const char *curve = p11km_ec_params_curve(o->ec_params, o->ec_params_len, NULL);
	const unsigned char *raw;
	size_t raw_len;
	OSSL_PARAM_BLD *bld;
	int r;

	if (curve == NULL)
		return p11km_fail(P11KM_ERR_UNSUPPORTED, "the key's EC curve is not supported");
	ec_point_raw(o->ec_point, o->ec_point_len, &raw, &raw_len);
	if (strcmp(curve, "Ed25519") == 0 || strcmp(curve, "Ed448") == 0) {
		EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key(
		    strcmp(curve, "Ed25519") == 0 ? EVP_PKEY_ED25519 : EVP_PKEY_ED448, NULL, raw,
		    raw_len);
		if (pkey == NULL)
			return p11km_fail(P11KM_ERR_INPUT, "the token's EdDSA public key is invalid");
		*out = pkey;
		return 0;
	}
	const char *group = strcmp(curve, "P-256") == 0 ? "prime256v1" :
	                    strcmp(curve, "P-384") == 0 ? "secp384r1" :
	                    strcmp(curve, "P-521") == 0 ? "secp521r1" : "secp256k1";
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, raw, raw_len) != 1)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	else
		r = from_params("EC", bld, out);
	OSSL_PARAM_BLD_free(bld);
	return r;
}

int
p11km_object_pubkey(const struct p11km_object *o, EVP_PKEY **out)
{
	if (o->pubkey_info_len > 0) {
		const unsigned char *p = o->pubkey_info;
		EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)o->pubkey_info_len);
		if (pkey != NULL) {
			*out = pkey;
			return 0;
		}
		ERR_clear_error();
	}
	if (o->key_type == CKK_RSA && o->modulus_len > 0 && o->pub_exp_len > 0)
		return rsa_pubkey(o, out);
	if ((o->key_type == CKK_EC || o->key_type == CKK_EC_EDWARDS) && o->ec_params_len > 0 &&
	    o->ec_point_len > 0)
		return ec_pubkey(o, out);
	return p11km_fail(P11KM_ERR_NOTFOUND,
	    "the object '%s' carries no public key (no CKA_PUBLIC_KEY_INFO, modulus or EC point)",
	    o->label ? o->label : "(no label)");
}

int
p11km_pubkey_keyid(EVP_PKEY *pkey, unsigned char out[20])
{
	X509_PUBKEY *xpk = NULL;
	const unsigned char *bits;
	int len;

	if (X509_PUBKEY_set(&xpk, pkey) != 1 ||
	    X509_PUBKEY_get0_param(NULL, &bits, &len, NULL, xpk) != 1) {
		X509_PUBKEY_free(xpk);
		return p11km_fail(P11KM_ERR_FAILED, "unable to encode the public key: %s",
		                  p11km_openssl_error());
	}
	SHA1(bits, (size_t)len, out);
	X509_PUBKEY_free(xpk);
	return 0;
}

static char *
time_text(const ASN1_TIME *t)
{
	struct tm tm;
	char buf[32];

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return strdup("?");
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return strdup(buf);
}

int
p11km_cert_summary_x509(X509 *cert, struct p11km_cert_summary *out)
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
	BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	unsigned char md[32];
	unsigned int mdlen = 0;
	int pday = 0, psec = 0;

	memset(out, 0, sizeof(*out));
	out->subject = p11km_name_text(X509_get_subject_name(cert));
	out->issuer = p11km_name_text(X509_get_issuer_name(cert));
	out->serial = hex ? strdup(hex) : NULL;
	out->not_before = time_text(X509_get0_notBefore(cert));
	out->not_after = time_text(X509_get0_notAfter(cert));
	if (ASN1_TIME_diff(&pday, &psec, NULL, X509_get0_notAfter(cert)) == 1)
		out->days_left = pday;
	out->is_ca = X509_check_ca(cert) > 0;
	if (X509_digest(cert, EVP_sha256(), md, &mdlen) == 1)
		out->sha256 = p11km_hex(md, mdlen);
	OPENSSL_free(hex);
	BN_free(bn);
	if (out->subject == NULL || out->issuer == NULL || out->serial == NULL ||
	    out->not_after == NULL || out->sha256 == NULL) {
		p11km_cert_summary_release(out);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	return 0;
}

int
p11km_cert_summary(const unsigned char *der, size_t len, struct p11km_cert_summary *out)
{
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	int r;

	if (cert == NULL || (size_t)(p - der) != len) {
		X509_free(cert);
		ERR_clear_error();
		return p11km_fail(P11KM_ERR_INPUT, "the certificate does not parse as DER X.509");
	}
	r = p11km_cert_summary_x509(cert, out);
	X509_free(cert);
	return r;
}

void
p11km_cert_summary_release(struct p11km_cert_summary *s)
{
	free(s->subject);
	free(s->issuer);
	free(s->serial);
	free(s->not_before);
	free(s->not_after);
	free(s->sha256);
	memset(s, 0, sizeof(*s));
}
