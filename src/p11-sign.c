/* p11-sign.c: the signer interface implemented with C_Sign on a token key. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>

#include "p11km/sign.h"
#include "p11km/util.h"

void
p11km_signer_free(struct p11km_signer *sg)
{
	if (sg == NULL)
		return;
	if (sg->release != NULL)
		sg->release(sg);
	EVP_PKEY_free(sg->pubkey);
	free(sg);
}

int
p11km_sigalg_choose(EVP_PKEY *pub, const char *digest, int pss, enum p11km_sigalg *alg,
                    const EVP_MD **md)
{
	int bits = EVP_PKEY_get_bits(pub);

	if (EVP_PKEY_is_a(pub, "ED25519") || EVP_PKEY_is_a(pub, "ED448")) {
		if (digest != NULL)
			return p11km_fail(P11KM_ERR_USAGE,
			    "--digest does not apply to an EdDSA key (it hashes internally); leave it out");
		if (pss)
			return p11km_fail(P11KM_ERR_USAGE, "--rsa-pss needs an RSA key; this is an EdDSA key");
		*alg = P11KM_SIG_EDDSA;
		*md = NULL;
		return 0;
	}
	if (EVP_PKEY_is_a(pub, "RSA")) {
		*alg = pss ? P11KM_SIG_RSA_PSS : P11KM_SIG_RSA_PKCS1;
	} else if (EVP_PKEY_is_a(pub, "EC")) {
		if (pss)
			return p11km_fail(P11KM_ERR_USAGE, "--rsa-pss needs an RSA key; this is an EC key");
		*alg = P11KM_SIG_ECDSA;
	} else {
		return p11km_fail(P11KM_ERR_UNSUPPORTED, "unsupported key type '%s'",
		                  EVP_PKEY_get0_type_name(pub));
	}
	if (digest == NULL)
		digest = (*alg == P11KM_SIG_ECDSA && bits > 384) ? "sha512" :
		         (*alg == P11KM_SIG_ECDSA && bits > 256) ? "sha384" : "sha256";
	if (strcmp(digest, "sha256") == 0)
		*md = EVP_sha256();
	else if (strcmp(digest, "sha384") == 0)
		*md = EVP_sha384();
	else if (strcmp(digest, "sha512") == 0)
		*md = EVP_sha512();
	else
		return p11km_fail(P11KM_ERR_USAGE, "unknown digest '%s': use sha256, sha384 or sha512",
		                  digest);
	return 0;
}

/* --- the token signer ------------------------------------------------------ */

struct token_signer {
	struct p11km_session *s;
	CK_OBJECT_HANDLE key;
	enum p11km_tri decrypt;   /* the key's CKA_DECRYPT */
	const struct p11km_pinsrc *pin; /* for a context-specific login, or NULL */
	char *label;
	char fallback[160];       /* p11km_token_signer_fallback() */
};

/* Does the token list mechanism m1 or m2? */
static int
token_lists(struct p11km_token *tok, CK_MECHANISM_TYPE m1, CK_MECHANISM_TYPE m2)
{
	CK_MECHANISM_TYPE *list = NULL;
	size_t n = 0;
	int found = 0;

	if (p11km_mechanisms(tok, &list, &n) < 0) {
		p11km_error_clear();
		return 1; /* unknown: let the token decide */
	}
	for (size_t i = 0; i < n; i++)
		found |= list[i] == m1 || list[i] == m2;
	free(list);
	return found;
}

static void
token_release(struct p11km_signer *sg)
{
	struct token_signer *ts = sg->priv;

	if (ts != NULL)
		free(ts->label);
	free(ts);
}

/* DER DigestInfo prefixes (RFC 8017, section 9.2, note 1). */
static const unsigned char di_sha256[] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
	0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 };
static const unsigned char di_sha384[] = { 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
	0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 };
static const unsigned char di_sha512[] = { 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48,
	0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 };

struct md_mechs {
	int nid;
	const unsigned char *di;
	size_t di_len;
	CK_MECHANISM_TYPE hash, mgf, rsa_pkcs, rsa_pss;
};

static const struct md_mechs md_table[] = {
	{ NID_sha256, di_sha256, sizeof(di_sha256), CKM_SHA256, CKG_MGF1_SHA256, CKM_SHA256_RSA_PKCS,
	  CKM_SHA256_RSA_PKCS_PSS },
	{ NID_sha384, di_sha384, sizeof(di_sha384), CKM_SHA384, CKG_MGF1_SHA384, CKM_SHA384_RSA_PKCS,
	  CKM_SHA384_RSA_PKCS_PSS },
	{ NID_sha512, di_sha512, sizeof(di_sha512), CKM_SHA512, CKG_MGF1_SHA512, CKM_SHA512_RSA_PKCS,
	  CKM_SHA512_RSA_PKCS_PSS },
};

static const struct md_mechs *
md_mechs_for(const EVP_MD *md)
{
	for (size_t i = 0; md != NULL && i < sizeof(md_table) / sizeof(md_table[0]); i++)
		if (md_table[i].nid == EVP_MD_get_type(md))
			return &md_table[i];
	return NULL;
}

static const char *
sigalg_name(enum p11km_sigalg alg)
{
	switch (alg) {
	case P11KM_SIG_RSA_PKCS1: return "RSA PKCS#1 v1.5";
	case P11KM_SIG_RSA_PSS: return "RSA-PSS";
	case P11KM_SIG_ECDSA: return "ECDSA";
	case P11KM_SIG_EDDSA: return "EdDSA";
	}
	return "?";
}

/* A refused mechanism: say what the token can sign with instead. */
static int
fail_mechanism(struct p11km_session *s, struct p11km_signer *sg, CK_MECHANISM_TYPE m, CK_RV rv)
{
	struct p11km_caps caps;
	char can[80] = "";

	if (p11km_token_caps(s->tok, &caps) == 0) {
		if (caps.sign & P11KM_SIGN_RSA_PKCS1) strcat(can, " rsa-pkcs1");
		if (caps.sign & P11KM_SIGN_RSA_PSS) strcat(can, " rsa-pss");
		if (caps.sign & P11KM_SIGN_ECDSA) strcat(can, " ecdsa");
		if (caps.sign & P11KM_SIGN_EDDSA) strcat(can, " eddsa");
	}
	p11km_error_clear();
	return p11km_fail(P11KM_ERR_UNSUPPORTED,
	    "token '%s' cannot sign %s with this key: C_SignInit(%s): %s; the token signs with:%s%s",
	    s->tok->label, sigalg_name(sg->alg), p11km_mech_name(m), p11km_ckr_name(rv),
	    can[0] ? can : " (unknown)",
	    sg->alg == P11KM_SIG_RSA_PSS ? " (leave out --rsa-pss)" : "");
}

static int
mech_refused(CK_RV rv)
{
	return rv == CKR_MECHANISM_INVALID || rv == CKR_MECHANISM_PARAM_INVALID ||
	       rv == CKR_KEY_TYPE_INCONSISTENT || rv == CKR_KEY_FUNCTION_NOT_PERMITTED;
}

/* C_SignInit again, then C_Login(CKU_CONTEXT_SPECIFIC) with the same PIN
 * source (its PIN was just accepted for the user login). */
static int
context_login(struct token_signer *ts, CK_MECHANISM *mech)
{
	struct p11km_session *s = ts->s;
	CK_RV rv = P11KM_CALL(s->f, C_SignInit, s->h, mech, ts->key);
	int r;

	if (rv != CKR_OK)
		return p11km_fail_ckr_tok(ts->s->tok, rv, ts->label, "C_SignInit");
	p11km_verbose("%s needs its PIN for every signature (CKA_ALWAYS_AUTHENTICATE)", ts->label);
	r = p11km_login(s, CKU_CONTEXT_SPECIFIC, ts->pin);
	s->logged_in = CKU_USER; /* the session stays a user session */
	return r;
}

/* No signature is longer (RSA-16384 is 2 KiB): a module asking for more is faulty. */
#define SIG_MAX 65536

/* C_SignInit + C_Sign into a buffer of cap bytes (one retry if too small). */
static int
token_sign_raw(struct p11km_signer *sg, CK_MECHANISM *mech, const unsigned char *data,
               size_t len, unsigned char **out, size_t *out_len, CK_RV *init_rv)
{
	struct token_signer *ts = sg->priv;
	struct p11km_session *s = ts->s;
	CK_ULONG cap = (CK_ULONG)EVP_PKEY_get_size(sg->pubkey) + 16, got;
	unsigned char *buf = NULL;
	CK_RV rv;

	*init_rv = P11KM_CALL(s->f, C_SignInit, s->h, mech, ts->key);
	if (*init_rv != CKR_OK)
		return P11KM_ERR_TOKEN;
	for (int tries = 0, relogged = 0; tries < 2; tries++) {
		unsigned char *nb = realloc(buf, cap);
		if (nb == NULL) {
			/* the operation stays active until the session is closed */
			free(buf);
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		}
		buf = nb;
		got = cap;
		rv = P11KM_CALL(s->f, C_Sign, s->h, (CK_BYTE_PTR)data, len, buf, &got);
		if ((rv == CKR_OK && got > cap) ||
		    (rv == CKR_BUFFER_TOO_SMALL && (got <= cap || got > SIG_MAX))) {
			free(buf);
			return p11km_fail_module(ts->label, "C_Sign", "it answered %s with a "
			                         "%lu-byte signature for a buffer of %lu",
			                         p11km_ckr_name(rv), got, cap);
		}
		if (rv == CKR_OK) {
			*out = buf;
			*out_len = got;
			return 0;
		}
		if (rv == CKR_USER_NOT_LOGGED_IN && !relogged && s->logged_in == CKU_USER) {
			/* A key with CKA_ALWAYS_AUTHENTICATE (PIV signature keys): the
			 * operation ended; start again with a context-specific login. */
			int r = context_login(ts, mech);
			if (r < 0) {
				free(buf);
				return r;
			}
			relogged = 1;
			tries--;
			continue;
		}
		if (rv != CKR_BUFFER_TOO_SMALL)
			break;
		cap = got;
	}
	free(buf);
	if (rv == CKR_BUFFER_TOO_SMALL)
		return p11km_fail_module(ts->label, "C_Sign", "it asked for a larger buffer twice");
	return p11km_fail_ckr_tok(ts->s->tok, rv, ts->label, "C_Sign");
}

/* r||s (two halves of equal length) to a DER Ecdsa-Sig-Value. */
static int
ecdsa_der(const unsigned char *rs, size_t len, unsigned char **out, size_t *out_len)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rs, (int)(len / 2), NULL);
	BIGNUM *sv = BN_bin2bn(rs + len / 2, (int)(len / 2), NULL);
	unsigned char *der = NULL;
	int n;

	if (len == 0 || len % 2 != 0) {
		ECDSA_SIG_free(sig);
		BN_free(r);
		BN_free(sv);
		return p11km_fail(P11KM_ERR_TOKEN,
		    "the token returned an ECDSA signature of odd length %zu", len);
	}
	if (sig == NULL || r == NULL || sv == NULL || ECDSA_SIG_set0(sig, r, sv) != 1) {
		ECDSA_SIG_free(sig);
		BN_free(r);
		BN_free(sv);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	n = i2d_ECDSA_SIG(sig, &der);
	ECDSA_SIG_free(sig);
	if (n <= 0)
		return p11km_fail(P11KM_ERR_FAILED, "unable to encode the ECDSA signature: %s",
		                  p11km_openssl_error());
	*out = p11km_memdup(der, (size_t)n);
	OPENSSL_free(der);
	if (*out == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	*out_len = (size_t)n;
	return 0;
}

/* The outcome of token_sign_raw() (r, init_rv) with mechanism m: an error
 * naming what failed, or the signature in its BIT STRING form. */
static int
sign_result(struct p11km_signer *sg, CK_MECHANISM_TYPE m, int r, CK_RV init_rv,
            unsigned char *raw, size_t raw_len, unsigned char **sig, size_t *sig_len)
{
	struct token_signer *ts = sg->priv;

	if (r < 0 && init_rv != CKR_OK) {
		if (mech_refused(init_rv))
			return fail_mechanism(ts->s, sg, m, init_rv);
		return p11km_fail_ckr_tok(ts->s->tok, init_rv, ts->label, "C_SignInit");
	}
	if (r < 0)
		return r;
	if (sg->alg == P11KM_SIG_ECDSA) {
		r = ecdsa_der(raw, raw_len, sig, sig_len);
		free(raw);
		return r;
	}
	*sig = raw;
	*sig_len = raw_len;
	return 0;
}

static int
token_sign(struct p11km_signer *sg, const unsigned char *tbs, size_t tbs_len,
           unsigned char **sig, size_t *sig_len)
{
	struct token_signer *ts = sg->priv;
	const struct md_mechs *mm = md_mechs_for(sg->md);
	unsigned char digest[EVP_MAX_MD_SIZE + 32], *raw = NULL;
	unsigned int dlen = 0;
	size_t raw_len = 0, off = 0;
	CK_RSA_PKCS_PSS_PARAMS pss;
	CK_MECHANISM mech = { 0, NULL, 0 };
	const unsigned char *data = NULL;
	size_t data_len = 0;
	CK_RV init_rv = CKR_OK;
	int r;

	if (sg->alg != P11KM_SIG_EDDSA) {
		if (mm == NULL)
			return p11km_fail(P11KM_ERR_UNSUPPORTED, "unsupported digest");
		if (sg->alg == P11KM_SIG_RSA_PKCS1) {
			memcpy(digest, mm->di, mm->di_len);
			off = mm->di_len;
		}
		if (EVP_Digest(tbs, tbs_len, digest + off, &dlen, sg->md, NULL) != 1)
			return p11km_fail(P11KM_ERR_FAILED, "unable to hash the request: %s",
			                  p11km_openssl_error());
		data = digest;
		data_len = off + dlen;
	} else {
		data = tbs;
		data_len = tbs_len;
	}
	switch (sg->alg) {
	case P11KM_SIG_RSA_PKCS1:
		/* The token hashes (CKM_SHA256_RSA_PKCS ...): works for sign-only keys
		 * on tokens that do raw RSA as a decryption (tpm2-pkcs11). */
		mech.mechanism = mm->rsa_pkcs;
		data = tbs;
		data_len = tbs_len;
		break;
	case P11KM_SIG_RSA_PSS:
		pss.hashAlg = mm->hash;
		pss.mgf = mm->mgf;
		pss.sLen = dlen;
		mech = (CK_MECHANISM){ mm->rsa_pss, &pss, sizeof(pss) };
		data = tbs;
		data_len = tbs_len;
		break;
	case P11KM_SIG_ECDSA:
		mech.mechanism = CKM_ECDSA;
		break;
	case P11KM_SIG_EDDSA:
		mech.mechanism = CKM_EDDSA;
		break;
	}
	/* A token that lists no PSS mechanism may still accept one and pad it
	 * itself, decrypting with the key (tpm2-pkcs11): a sign-only key then
	 * fails in C_Sign with a generic error.  Decide from the list instead. */
	if (sg->alg == P11KM_SIG_RSA_PSS && ts->decrypt != P11KM_TRUE &&
	    !token_lists(ts->s->tok, mm->rsa_pss, CKM_RSA_PKCS_PSS)) {
		OPENSSL_cleanse(digest, sizeof(digest));
		return p11km_fail(P11KM_ERR_UNSUPPORTED,
		    "token '%s' cannot sign RSA-PSS with this sign-only key: it lists neither %s "
		    "nor CKM_RSA_PKCS_PSS; leave out --rsa-pss", ts->s->tok->label,
		    p11km_mech_name(mm->rsa_pss));
	}
	r = token_sign_raw(sg, &mech, data, data_len, &raw, &raw_len, &init_rv);
	if (r < 0 && init_rv != CKR_OK && mech_refused(init_rv) &&
	    (sg->alg == P11KM_SIG_RSA_PKCS1 || sg->alg == P11KM_SIG_RSA_PSS)) {
		/* Tokens that do not hash: a DigestInfo (PKCS#1) or the digest (PSS). */
		CK_MECHANISM_TYPE first = mech.mechanism;
		CK_RV first_rv = init_rv;
		mech.mechanism = sg->alg == P11KM_SIG_RSA_PKCS1 ? CKM_RSA_PKCS : CKM_RSA_PKCS_PSS;
		r = token_sign_raw(sg, &mech, digest, off + dlen, &raw, &raw_len, &init_rv);
		if (r < 0 && init_rv != CKR_OK && mech_refused(init_rv)) {
			mech.mechanism = first;
		} else if (r == 0) {
			snprintf(ts->fallback, sizeof(ts->fallback), "%s refused (%s): %s over a digest "
			         "made on the host", p11km_mech_name(first), p11km_ckr_name(first_rv),
			         p11km_mech_name(mech.mechanism));
			p11km_verbose("token '%s': %s", ts->s->tok->label, ts->fallback);
		}
	}
	OPENSSL_cleanse(digest, sizeof(digest));
	return sign_result(sg, mech.mechanism, r, init_rv, raw, raw_len, sig, sig_len);
}

/* A digest hashed by the caller: CKM_ECDSA on it, or CKM_RSA_PKCS on its DigestInfo. */
static int
token_sign_digest(struct p11km_signer *sg, const EVP_MD *md, const unsigned char *dgst,
                  size_t dlen, unsigned char **sig, size_t *sig_len)
{
	struct token_signer *ts = sg->priv;
	const struct md_mechs *mm = md_mechs_for(md);
	unsigned char data[EVP_MAX_MD_SIZE + 32], *raw = NULL;
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	size_t off = 0, raw_len = 0;
	CK_RV init_rv = CKR_OK;
	int r;

	if (sg->alg != P11KM_SIG_ECDSA && sg->alg != P11KM_SIG_RSA_PKCS1)
		return p11km_fail(P11KM_ERR_UNSUPPORTED, "%s signs only whole messages",
		                  sigalg_name(sg->alg));
	if (mm == NULL || dlen != (size_t)EVP_MD_get_size(md))
		return p11km_fail(P11KM_ERR_UNSUPPORTED, "unsupported digest for %s", ts->label);
	if (sg->alg == P11KM_SIG_RSA_PKCS1) {
		memcpy(data, mm->di, mm->di_len);
		off = mm->di_len;
		mech.mechanism = CKM_RSA_PKCS;
	}
	memcpy(data + off, dgst, dlen);
	r = token_sign_raw(sg, &mech, data, off + dlen, &raw, &raw_len, &init_rv);
	OPENSSL_cleanse(data, sizeof(data));
	return sign_result(sg, mech.mechanism, r, init_rv, raw, raw_len, sig, sig_len);
}

const char *
p11km_token_signer_fallback(const struct p11km_signer *sg)
{
	const struct token_signer *ts = sg->priv;

	return sg->sign == token_sign && ts != NULL && ts->fallback[0] ? ts->fallback : NULL;
}

int
p11km_token_signer_new(struct p11km_session *s, const struct p11km_object *key, EVP_PKEY *pub,
                       const char *digest, int pss, const struct p11km_pinsrc *pin,
                       struct p11km_signer **out)
{
	struct p11km_signer *sg;
	struct token_signer *ts;
	int r;

	if (key->cls != CKO_PRIVATE_KEY)
		return p11km_fail(P11KM_ERR_USAGE, "object '%s' is a %s, not a private key",
		                  key->label ? key->label : "", p11km_class_name(key->cls));
	if (key->sign == P11KM_FALSE)
		return p11km_fail(P11KM_ERR_UNSUPPORTED,
		    "key '%s' may not sign (CKA_SIGN is false); choose a signing key",
		    key->label ? key->label : "");
	if ((sg = calloc(1, sizeof(*sg))) == NULL || (ts = calloc(1, sizeof(*ts))) == NULL) {
		free(sg);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	sg->priv = ts;
	sg->release = token_release;
	sg->sign = token_sign;
	sg->sign_digest = token_sign_digest;
	ts->s = s;
	ts->key = key->h;
	ts->decrypt = key->decrypt;
	ts->pin = pin;
	ts->label = p11km_asprintf("key '%s' on token '%s'", key->label ? key->label : "",
	                           s->tok->label);
	if (ts->label == NULL) {
		p11km_signer_free(sg);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	if ((r = p11km_sigalg_choose(pub, digest, pss, &sg->alg, &sg->md)) < 0) {
		p11km_signer_free(sg);
		return r;
	}
	if (EVP_PKEY_up_ref(pub) != 1) {
		p11km_signer_free(sg);
		return p11km_fail(P11KM_ERR_FAILED, "unable to reference the public key");
	}
	sg->pubkey = pub;
	*out = sg;
	return 0;
}
