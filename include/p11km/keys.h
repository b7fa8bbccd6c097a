/* keys.h: the key layer (p11 and x509 joined): public keys of token objects,
 * finding a token key by its public key (certificates -> keys). */
#ifndef P11KM_KEYS_H
#define P11KM_KEYS_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "p11km/p11.h"

/*
 * (key-pub.c) The public key of a token object (public key, or a private key that
 * carries it): CKA_PUBLIC_KEY_INFO when present, else RSA modulus and
 * exponent, EC parameters and point, or EdDSA point.  *out is a new
 * reference; P11KM_ERR_NOTFOUND when the object carries no public key.
 */
int p11km_object_pubkey(const struct p11km_object *o, EVP_PKEY **out);

/*
 * Find the private key on the token whose public key is pkey, with targeted
 * searches only (never a listing of the token):
 *   1. CKA_ID = the RFC 5280 key identifier of pkey (p11km's own id scheme),
 *      then CKA_ID = hint_id (for example a certificate's CKA_ID or SKI);
 *   2. a private key carrying the same public parts (CKA_MODULUS, or
 *      CKA_EC_POINT), then a public key with those parts and a private key
 *      with its CKA_ID.
 * Every candidate is checked by comparing public keys.  *priv (and *pub,
 * when not NULL, with cls (CK_OBJECT_CLASS)-1 if there is no public key
 * object) are set on success; P11KM_ERR_NOTFOUND otherwise.
 */
int p11km_key_for_pubkey(struct p11km_session *s, EVP_PKEY *pkey,
                         const unsigned char *hint_id, size_t hint_len,
                         struct p11km_object *priv, struct p11km_object *pub);

/* Same for a certificate (its SubjectKeyIdentifier is the hint). */
int p11km_key_for_cert(struct p11km_session *s, X509 *cert, struct p11km_object *priv,
                       struct p11km_object *pub);

/*
 * The one private key with CKA_ID id (one search, one read): 1 and *priv;
 * 0 when there is none or more than one, or when it carries a public key
 * that is not pkey.  One that carries none (SoftHSM2's EC keys) is not
 * compared: the caller proves it (a signature that verifies with pkey).
 */
int p11km_key_by_id(struct p11km_session *s, const unsigned char *id, size_t id_len,
                    EVP_PKEY *pkey, struct p11km_object *priv);

/*
 * The public key of a private key object: its own attributes, else the
 * public key object with the same CKA_ID (one more search).
 */
int p11km_key_pubkey(struct p11km_session *s, const struct p11km_object *priv, EVP_PKEY **out);
/* A token with only the private key and its certificate (PIV cards): the
 * public key of the certificate with priv's CKA_ID (a note says so), or
 * P11KM_ERR_NOTFOUND.  No search when priv has no CKA_ID. */
int p11km_key_cert_pubkey(struct p11km_session *s, const struct p11km_object *priv,
                          EVP_PKEY **out);

/*
 * (key-evp.c) An EVP_PKEY for OpenSSL code that signs by itself (the CMP
 * client): the public key of sg, whose signatures OpenSSL makes through
 * sg->sign_digest (one C_Sign each on a token; *count, when not NULL, counts
 * them; *err, when not NULL, gets the p11km error of a signature that failed,
 * which OpenSSL only sees as a failure).  EC keys, and RSA keys with PKCS#1
 * v1.5.  sg must outlive *out.
 */
struct p11km_signer;
int p11km_key_evp_new(struct p11km_signer *sg, unsigned long *count, int *err, EVP_PKEY **out);

#endif
