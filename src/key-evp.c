/* key-evp.c: a token key as an OpenSSL EVP_PKEY, for the OpenSSL code that
 * signs by itself (libcrypto's CMP client: message protection, CRMF proof of
 * possession).
 *
 * OpenSSL 3.0 offers no public way to plug a signing callback into a
 * provider key short of writing a provider; the legacy key methods
 * (EC_KEY_METHOD, RSA_METHOD) still work and are what this file uses: the
 * key carries the public half only, and every signature OpenSSL asks of it
 * goes to the p11km signer (one C_Sign each).  The deprecated API is used
 * here and nowhere else, with the warning silenced for this file only.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "p11km/keys.h"
#include "p11km/sign.h"
#include "p11km/util.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

struct bridge {
	struct p11km_signer *sg;   /* borrowed */
	unsigned long *count;      /* signatures made, or NULL */
	int *err;                  /* the p11km error of a failed signature, or NULL */
};

static int ec_idx = -1, rsa_idx = -1;
static EC_KEY_METHOD *ec_meth;
static RSA_METHOD *rsa_meth;

static void
bridge_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	(void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
	free(ptr);
}

/* The digest a signature of dlen bytes was made with (ECDSA is not told). */
static const EVP_MD *
md_by_size(size_t dlen)
{
	return dlen == 32 ? EVP_sha256() : dlen == 48 ? EVP_sha384() : dlen == 64 ? EVP_sha512() : NULL;
}

/* Sign through the bridge; the signature (DER ECDSA or RSA) into out, at most cap bytes. */
static int
bridge_sign(struct bridge *b, const EVP_MD *md, const unsigned char *dgst, size_t dlen,
            unsigned char *out, size_t cap, size_t *out_len)
{
	unsigned char *sig = NULL;
	size_t n = 0;
	int r;

	if (b == NULL)
		return 0;
	if (b->sg->sign_digest == NULL || md == NULL)
		r = p11km_fail(P11KM_ERR_UNSUPPORTED, "OpenSSL asked for a signature with a digest "
		               "p11km does not sign (SHA-256, -384 or -512 only)");
	else if ((r = b->sg->sign_digest(b->sg, md, dgst, dlen, &sig, &n)) == 0 && n > cap) {
		free(sig);
		r = p11km_fail(P11KM_ERR_TOKEN, "the token's signature is longer than the key allows");
	}
	if (r < 0) {
		if (b->err != NULL)
			*b->err = r;
		return 0;
	}
	memcpy(out, sig, n);
	free(sig);
	*out_len = n;
	if (b->count != NULL)
		(*b->count)++;
	return 1;
}

static int
ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig, unsigned int *siglen,
        const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey)
{
	struct bridge *b = EC_KEY_get_ex_data(eckey, ec_idx);
	size_t n = 0;

	(void)type; (void)kinv; (void)r;
	if (dlen <= 0 || !bridge_sign(b, md_by_size((size_t)dlen), dgst, (size_t)dlen, sig,
	                              (size_t)ECDSA_size(eckey), &n))
		return 0;
	*siglen = (unsigned int)n;
	return 1;
}

static ECDSA_SIG *
ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv, const BIGNUM *r,
            EC_KEY *eckey)
{
	unsigned char buf[256];
	const unsigned char *p = buf;
	unsigned int n = 0;

	if (ECDSA_size(eckey) > (int)sizeof(buf) ||
	    !ec_sign(0, dgst, dlen, buf, &n, kinv, r, eckey))
		return NULL;
	return d2i_ECDSA_SIG(NULL, &p, (long)n);
}

static int
rsa_sign(int type, const unsigned char *m, unsigned int m_len, unsigned char *sigret,
         unsigned int *siglen, const RSA *rsa)
{
	struct bridge *b = RSA_get_ex_data(rsa, rsa_idx);
	size_t n = 0;

	if (!bridge_sign(b, EVP_get_digestbynid(type), m, m_len, sigret, (size_t)RSA_size(rsa), &n))
		return 0;
	*siglen = (unsigned int)n;
	return 1;
}

static int
methods_init(void)
{
	int (*sign)(int, const unsigned char *, int, unsigned char *, unsigned int *,
	            const BIGNUM *, const BIGNUM *, EC_KEY *) = NULL;
	int (*setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;
	ECDSA_SIG *(*sign_sig)(const unsigned char *, int, const BIGNUM *, const BIGNUM *,
	                       EC_KEY *) = NULL;

	if (ec_meth != NULL)
		return 0;
	ec_idx = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, bridge_free);
	rsa_idx = RSA_get_ex_new_index(0, NULL, NULL, NULL, bridge_free);
	if (ec_idx < 0 || rsa_idx < 0 || (ec_meth = EC_KEY_METHOD_new(EC_KEY_OpenSSL())) == NULL ||
	    (rsa_meth = RSA_meth_dup(RSA_PKCS1_OpenSSL())) == NULL) {
		EC_KEY_METHOD_free(ec_meth);
		ec_meth = NULL;
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	EC_KEY_METHOD_get_sign(EC_KEY_OpenSSL(), &sign, &setup, &sign_sig);
	EC_KEY_METHOD_set_sign(ec_meth, ec_sign, setup, ec_sign_sig);
	RSA_meth_set1_name(rsa_meth, "p11km token key");
	RSA_meth_set_sign(rsa_meth, rsa_sign);
	return 0;
}

int
p11km_key_evp_new(struct p11km_signer *sg, unsigned long *count, int *err, EVP_PKEY **out)
{
	struct bridge *b = NULL;
	EVP_PKEY *pk = NULL;
	EC_KEY *ec = NULL;
	RSA *rsa = NULL;
	int r;

	*out = NULL;
	if ((r = methods_init()) < 0)
		return r;
	if (sg->sign_digest == NULL || (sg->alg != P11KM_SIG_ECDSA && sg->alg != P11KM_SIG_RSA_PKCS1))
		return p11km_fail(P11KM_ERR_UNSUPPORTED, "only EC keys and RSA keys with PKCS#1 v1.5 "
		                  "signatures can sign for OpenSSL here (the key is neither)");
	if ((b = calloc(1, sizeof(*b))) == NULL || (pk = EVP_PKEY_new()) == NULL)
		goto nomem;
	b->sg = sg;
	b->count = count;
	b->err = err;
	/* a copy of the public key (EVP_PKEY_get1_* would hand out the cache of sg->pubkey) */
	if (sg->alg == P11KM_SIG_ECDSA) {
		if ((ec = EC_KEY_dup(EVP_PKEY_get0_EC_KEY(sg->pubkey))) == NULL ||
		    EC_KEY_set_method(ec, ec_meth) != 1 || EC_KEY_set_ex_data(ec, ec_idx, b) != 1)
			goto fail;
		b = NULL; /* freed with ec */
		if (EVP_PKEY_assign_EC_KEY(pk, ec) != 1)
			goto fail;
		ec = NULL;
	} else {
		if ((rsa = RSAPublicKey_dup(EVP_PKEY_get0_RSA(sg->pubkey))) == NULL ||
		    RSA_set_method(rsa, rsa_meth) != 1 || RSA_set_ex_data(rsa, rsa_idx, b) != 1)
			goto fail;
		b = NULL;
		if (EVP_PKEY_assign_RSA(pk, rsa) != 1)
			goto fail;
		rsa = NULL;
	}
	*out = pk;
	return 0;
nomem:
	free(b);
	EVP_PKEY_free(pk);
	return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
fail:
	free(b);
	EC_KEY_free(ec);
	RSA_free(rsa);
	EVP_PKEY_free(pk);
	return p11km_fail(P11KM_ERR_FAILED, "cannot make an OpenSSL key for the token key: %s",
	                  p11km_openssl_error());
}

#pragma GCC diagnostic pop
