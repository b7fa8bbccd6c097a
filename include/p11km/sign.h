/* sign.h: the signer interface between the x509 layer and a key.
 *
 * The x509 layer builds a request and asks a signer to sign its
 * to-be-signed bytes; p11-sign.c implements it with C_Sign on a token key,
 * x509-req.c with a software EVP_PKEY (for unit tests).  A signer never
 * exposes the private key.
 */
#ifndef P11KM_SIGN_H
#define P11KM_SIGN_H

#include <stddef.h>

#include <openssl/evp.h>

#include "p11km/p11.h"

enum p11km_sigalg {
	P11KM_SIG_RSA_PKCS1,   /* RSASSA-PKCS1-v1_5 */
	P11KM_SIG_RSA_PSS,     /* RSASSA-PSS, MGF1 with the same hash, salt = hash length */
	P11KM_SIG_ECDSA,       /* DER Ecdsa-Sig-Value */
	P11KM_SIG_EDDSA,       /* pure Ed25519 / Ed448 */
};

struct p11km_signer {
	enum p11km_sigalg alg;
	const EVP_MD *md;      /* NULL for EdDSA */
	EVP_PKEY *pubkey;      /* the public key (owned by the signer) */
	/* Sign tbs (the whole to-be-signed encoding; the signer hashes it).
	 * *sig is malloc'ed, in the form that goes into the BIT STRING. */
	int (*sign)(struct p11km_signer *sg, const unsigned char *tbs, size_t tbs_len,
	            unsigned char **sig, size_t *sig_len);
	/* Sign a digest made elsewhere (an OpenSSL key method, key-evp.c):
	 * ECDSA gets the digest, RSA PKCS#1 v1.5 the DigestInfo of md around it;
	 * NULL where the signer cannot (EdDSA, PSS).  Output as for sign. */
	int (*sign_digest)(struct p11km_signer *sg, const EVP_MD *md, const unsigned char *dgst,
	                   size_t dlen, unsigned char **sig, size_t *sig_len);
	void (*release)(struct p11km_signer *sg);
	void *priv;
};

/* Free a signer (NULL-safe). */
void p11km_signer_free(struct p11km_signer *sg);

/*
 * Choose the algorithm for a public key: digest NULL picks the default
 * (SHA-256 for RSA and P-256, SHA-384 for P-384, SHA-512 for P-521); pss
 * asks for RSA-PSS (RSA keys only).  EdDSA takes no digest: one given is
 * a usage error.
 */
int p11km_sigalg_choose(EVP_PKEY *pub, const char *digest, int pss, enum p11km_sigalg *alg,
                        const EVP_MD **md);

/*
 * A signer that signs with the private key object key on the token of
 * session s (which must stay open and logged in while the signer is used).
 * pub is the key's public key (a reference is taken).  One C_SignInit and
 * one C_Sign per signature, with an output buffer sized from the public
 * key.  A mechanism the token refuses is an error naming what it can do.
 * A key that needs its PIN for every signature (CKA_ALWAYS_AUTHENTICATE)
 * gets a C_Login(CKU_CONTEXT_SPECIFIC) with pin (NULL: the PIN pad), which
 * must stay valid while the signer is used.
 */
int p11km_token_signer_new(struct p11km_session *s, const struct p11km_object *key,
                           EVP_PKEY *pub, const char *digest, int pss,
                           const struct p11km_pinsrc *pin, struct p11km_signer **out);

/*
 * After a signature by a token signer: the hash-and-sign mechanism the
 * token refused at C_SignInit and what signed instead, one line
 * ("CKM_SHA256_RSA_PKCS refused (CKR_MECHANISM_INVALID): CKM_RSA_PKCS over
 * a digest made on the host"), or NULL when none was refused (borrowed,
 * valid while the signer is).  token doctor shows it; the signer also says
 * it with --verbose.
 */
const char *p11km_token_signer_fallback(const struct p11km_signer *sg);

/* A signer with a software private key (tests).  A reference is taken. */
int p11km_soft_signer_new(EVP_PKEY *key, const char *digest, int pss,
                          struct p11km_signer **out);

#endif
