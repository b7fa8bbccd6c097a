/* ca-jws.c: the ACME account key (a file or a token key) and JWS signing.
 *
 * Both kinds of key sign through the signer interface (sign.h): a token key
 * with C_Sign, a file key with OpenSSL.  ES256 signatures come back as DER
 * Ecdsa-Sig-Value and are turned into the 64-byte r||s JWS form here.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "p11km/ca.h"
#include "p11km/keys.h"
#include "p11km/pin.h"
#include "p11km/sign.h"
#include "p11km/util.h"

static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *
p11km_b64url(const unsigned char *p, size_t n)
{
	char *out = malloc(n / 3 * 4 + 5), *o = out;

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
		             (i + 2 < n ? p[i + 2] : 0);
		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		if (i + 1 < n)
			*o++ = tab[v >> 6 & 63];
		if (i + 2 < n)
			*o++ = tab[v & 63];
	}
	*o = '\0';
	return out;
}

unsigned char *
p11km_b64url_decode(const char *s, size_t *n)
{
	size_t len = strlen(s), k = 0;
	unsigned acc = 0, bits = 0;
	unsigned char *out;

	while (len > 0 && (s[len - 1] == '=' || s[len - 1] == '\n' || s[len - 1] == '\r' ||
	                   s[len - 1] == ' '))
		len--;
	if ((out = malloc(len * 3 / 4 + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		const char *t = strchr(tab, s[i]);
		if (t == NULL || len % 4 == 1) {
			free(out);
			return NULL;
		}
		acc = (acc << 6 | (unsigned)(t - tab)) & 0xffffu;
		if ((bits += 6) >= 8) {
			bits -= 8;
			out[k++] = (unsigned char)(acc >> bits);
		}
	}
	*n = k;
	return out;
}

static char *
b64url_bn(const BIGNUM *bn, int len)
{
	unsigned char buf[1024];
	int n = len > 0 ? len : BN_num_bytes(bn);

	if (n <= 0 || n > (int)sizeof(buf) || BN_bn2binpad(bn, buf, n) != n)
		return NULL;
	return p11km_b64url(buf, (size_t)n);
}

/* The JWK of pub (RFC 7517/7518) and its algorithm. */
static int
make_jwk(struct p11km_account_key *k)
{
	json_t *o = json_object();
	BIGNUM *a = NULL, *b = NULL;
	char *s1 = NULL, *s2 = NULL, gname[32] = "";
	unsigned char dig[32];
	int r = P11KM_ERR_NOMEM;

	if (o == NULL)
		goto out;
	if (EVP_PKEY_is_a(k->pub, "EC")) {
		if (!EVP_PKEY_get_utf8_string_param(k->pub, OSSL_PKEY_PARAM_GROUP_NAME, gname,
		                                    sizeof(gname), NULL) || strcmp(gname, "prime256v1") != 0) {
			r = p11km_fail(P11KM_ERR_UNSUPPORTED, "the account key is an EC key on '%s': ACME "
			               "account keys here are P-256 (ES256) or RSA (RS256)", gname);
			goto out;
		}
		if (!EVP_PKEY_get_bn_param(k->pub, OSSL_PKEY_PARAM_EC_PUB_X, &a) ||
		    !EVP_PKEY_get_bn_param(k->pub, OSSL_PKEY_PARAM_EC_PUB_Y, &b) ||
		    (s1 = b64url_bn(a, 32)) == NULL || (s2 = b64url_bn(b, 32)) == NULL)
			goto out;
		json_object_set_new(o, "crv", json_string("P-256"));
		json_object_set_new(o, "kty", json_string("EC"));
		json_object_set_new(o, "x", json_string(s1));
		json_object_set_new(o, "y", json_string(s2));
		k->alg = "ES256";
	} else if (EVP_PKEY_is_a(k->pub, "RSA")) {
		if (!EVP_PKEY_get_bn_param(k->pub, OSSL_PKEY_PARAM_RSA_N, &a) ||
		    !EVP_PKEY_get_bn_param(k->pub, OSSL_PKEY_PARAM_RSA_E, &b) ||
		    (s1 = b64url_bn(b, 0)) == NULL || (s2 = b64url_bn(a, 0)) == NULL)
			goto out;
		json_object_set_new(o, "e", json_string(s1));
		json_object_set_new(o, "kty", json_string("RSA"));
		json_object_set_new(o, "n", json_string(s2));
		k->alg = "RS256";
	} else {
		r = p11km_fail(P11KM_ERR_UNSUPPORTED, "the account key must be EC P-256 or RSA");
		goto out;
	}
	/* RFC 7638: the required members, sorted, no whitespace */
	if ((k->jwk = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS)) == NULL ||
	    !EVP_Digest(k->jwk, strlen(k->jwk), dig, NULL, EVP_sha256(), NULL) ||
	    (k->thumbprint = p11km_b64url(dig, sizeof(dig))) == NULL)
		goto out;
	r = 0;
out:
	if (r == P11KM_ERR_NOMEM)
		r = p11km_fail(P11KM_ERR_NOMEM, "cannot encode the account key as a JWK");
	BN_free(a);
	BN_free(b);
	free(s1);
	free(s2);
	json_decref(o);
	return r;
}

/* A new P-256 key written to path (0600). */
static int
file_key_create(const char *path, EVP_PKEY **out)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL;
	long len;
	int r;

	if (pk == NULL || bio == NULL || !PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) ||
	    (len = BIO_get_mem_data(bio, &data)) <= 0) {
		r = p11km_fail(P11KM_ERR_FAILED, "cannot make an account key: %s", p11km_openssl_error());
		goto out;
	}
	if ((r = p11km_write_file_atomic(path, data, (size_t)len, 0600)) < 0)
		goto out;
	p11km_note("made a new ACME account key (EC P-256) in '%s'", path);
	*out = pk;
	pk = NULL;
out:
	BIO_free(bio); /* the memory BIO wipes nothing: the key text is short-lived */
	EVP_PKEY_free(pk);
	return r;
}

static int
file_key_open(const char *path, struct p11km_account_key *k)
{
	EVP_PKEY *pk = NULL;
	unsigned char *data = NULL;
	size_t len = 0;
	struct stat st;
	BIO *bio;
	int r;

	if (stat(path, &st) != 0) {
		if (errno != ENOENT)
			return p11km_fail(P11KM_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
		if ((r = file_key_create(path, &pk)) < 0)
			return r;
	} else {
		if ((st.st_mode & 077) != 0)
			return p11km_fail(P11KM_ERR_USAGE, "the account key '%s' is readable by others "
			                  "(mode %03o): chmod 600 it", path, (unsigned)(st.st_mode & 0777));
		if ((r = p11km_read_file(path, 65536, &data, &len)) < 0)
			return r;
		bio = BIO_new_mem_buf(data, (int)len);
		pk = bio ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;
		BIO_free(bio);
		p11km_freezero(data, len);
		if (pk == NULL)
			return p11km_fail(P11KM_ERR_INPUT, "'%s' holds no PEM private key: %s", path,
			                  p11km_openssl_error());
	}
	if ((k->pub = EVP_PKEY_dup(pk)) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	else
		r = p11km_soft_signer_new(pk, "sha256", 0, &k->sg);
	EVP_PKEY_free(pk);
	return r;
}

static int
token_key_open(struct p11km_ctx *ctx, const char *spec, const struct p11km_session *held,
               struct p11km_account_key *k)
{
	struct p11km_pinsrc pin = { 0 };
	int r;

	k->s.logged_in = (CK_USER_TYPE)-1;
	if ((r = p11km_uri_parse(spec, &k->uri)) < 0 ||
	    (r = p11km_token_find_one(ctx, k->uri, &k->tok)) < 0 ||
	    (r = p11km_session_open_held(ctx, k->tok, k->uri, 0, held, &k->s)) < 0 ||
	    (r = p11km_object_find_one(&k->s, k->uri, CKO_PRIVATE_KEY, &k->priv)) < 0)
		return r;
	k->have_priv = 1;
	if ((r = p11km_key_pubkey(&k->s, &k->priv, &k->pub)) < 0)
		return r;
	if ((r = p11km_pinsrc_for(ctx, k->uri, CKU_USER, &pin)) == 0)
		r = p11km_token_signer_new(&k->s, &k->priv, k->pub, "sha256", 0,
		                           pin.spec ? &pin : NULL, &k->sg);
	p11km_pinsrc_release(&pin);
	return r;
}

int
p11km_account_key_open(struct p11km_ctx *ctx, const char *spec, struct p11km_account_key *k)
{
	return p11km_account_key_open_held(ctx, spec, NULL, k);
}

int
p11km_account_key_open_held(struct p11km_ctx *ctx, const char *spec,
                            const struct p11km_session *held, struct p11km_account_key *k)
{
	int r;

	memset(k, 0, sizeof(*k));
	k->s.logged_in = (CK_USER_TYPE)-1;
	r = strncmp(spec, "pkcs11:", 7) == 0 ? token_key_open(ctx, spec, held, k)
	                                     : file_key_open(spec, k);
	if (r == 0)
		r = make_jwk(k);
	if (r < 0)
		p11km_account_key_release(k);
	return r;
}

void
p11km_account_key_release(struct p11km_account_key *k)
{
	p11km_signer_free(k->sg);
	free(k->jwk);
	free(k->thumbprint);
	EVP_PKEY_free(k->pub);
	if (k->have_priv)
		p11km_object_release(&k->priv);
	p11km_session_close(&k->s);
	p11km_token_free(k->tok);
	p11km_uri_free(k->uri);
	memset(k, 0, sizeof(*k));
	k->s.logged_in = (CK_USER_TYPE)-1;
}

/* DER Ecdsa-Sig-Value -> r||s of 32 bytes each. */
static int
ecdsa_raw(const unsigned char *der, size_t len, unsigned char raw[64])
{
	const unsigned char *p = der;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
	int ok = es != NULL && p == der + len &&
	         BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32) == 32 &&
	         BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32) == 32;

	ECDSA_SIG_free(es);
	return ok ? 0 : p11km_fail(P11KM_ERR_TOKEN, "the account key's signature is not a P-256 "
	                           "ECDSA signature");
}

int
p11km_jws_sign(struct p11km_account_key *k, const char *url, const char *nonce,
               const char *kid, const char *payload, char **out)
{
	json_t *hdr = json_object(), *jws = json_object(), *jwk = NULL;
	char *h = NULL, *hb = NULL, *pb = NULL, *input = NULL, *sb = NULL;
	unsigned char *sig = NULL, raw[64];
	size_t sig_len = 0;
	int r;

	*out = NULL;
	if (hdr == NULL || jws == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	json_object_set_new(hdr, "alg", json_string(k->alg));
	if (kid != NULL) {
		json_object_set_new(hdr, "kid", json_string(kid));
	} else {
		jwk = json_loads(k->jwk, 0, NULL);
		json_object_set_new(hdr, "jwk", jwk);
	}
	if (nonce != NULL)
		json_object_set_new(hdr, "nonce", json_string(nonce));
	json_object_set_new(hdr, "url", json_string(url));
	if ((h = json_dumps(hdr, JSON_COMPACT)) == NULL ||
	    (hb = p11km_b64url((const unsigned char *)h, strlen(h))) == NULL ||
	    (pb = payload ? p11km_b64url((const unsigned char *)payload, strlen(payload)) : strdup("")) == NULL ||
	    (input = p11km_asprintf("%s.%s", hb, pb)) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = k->sg->sign(k->sg, (const unsigned char *)input, strlen(input), &sig, &sig_len)) < 0)
		goto out;
	k->signatures++;
	if (k->sg->alg == P11KM_SIG_ECDSA) {
		if ((r = ecdsa_raw(sig, sig_len, raw)) < 0)
			goto out;
		sb = p11km_b64url(raw, sizeof(raw));
	} else {
		sb = p11km_b64url(sig, sig_len);
	}
	if (sb == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	json_object_set_new(jws, "protected", json_string(hb));
	json_object_set_new(jws, "payload", json_string(pb));
	json_object_set_new(jws, "signature", json_string(sb));
	if ((*out = json_dumps(jws, JSON_COMPACT)) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
out:
	json_decref(hdr);
	json_decref(jws);
	free(h);
	free(hb);
	free(pb);
	free(input);
	free(sb);
	free(sig);
	return r;
}
