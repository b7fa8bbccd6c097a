/* key-pub.c (the key layer): the public key of a token object, from its
 * attributes (CKA_PUBLIC_KEY_INFO, or the RSA modulus and exponent, or the
 * EC parameters and point) as an OpenSSL key. */
#include "config.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "p11km/keys.h"
#include "p11km/util.h"
#include "p11km/x509.h"

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
