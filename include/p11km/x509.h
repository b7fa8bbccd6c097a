/* x509.h: certificates and public keys (OpenSSL).  Never calls PKCS#11 and
 * knows no token type: what joins the two is in the key layer (keys.h). */
#ifndef P11KM_X509_H
#define P11KM_X509_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>


/* Curve of a DER CKA_EC_PARAMS: "P-256", "P-384", "P-521", "Ed25519",
 * "Ed448", or NULL.  *bits gets its size when known. */
const char *p11km_ec_params_curve(const unsigned char *der, size_t len, int *bits);

/* RFC 2253 text of a name (malloc'ed), NULL on allocation failure. */
char *p11km_name_text(const X509_NAME *name);

/* RFC 5280 key identifier (method 1): SHA-1 of the subjectPublicKey bits. */
int p11km_pubkey_keyid(EVP_PKEY *pkey, unsigned char out[20]);

struct p11km_cert_summary {
	char *subject;      /* RFC 2253 form */
	char *issuer;
	char *serial;       /* hex */
	char *not_before;   /* ISO 8601 UTC */
	char *not_after;
	long days_left;     /* negative when expired */
	int is_ca;
	char *sha256;       /* hex fingerprint of the DER */
};

/* Summary of a DER certificate; P11KM_ERR_INPUT when it does not parse. */
int p11km_cert_summary(const unsigned char *der, size_t len, struct p11km_cert_summary *out);
int p11km_cert_summary_x509(X509 *cert, struct p11km_cert_summary *out);
void p11km_cert_summary_release(struct p11km_cert_summary *s);


#endif
