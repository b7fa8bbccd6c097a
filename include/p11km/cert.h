/* cert.h: certificates as CAs send them (PEM, DER, PEM bundles, PKCS#7
 * certs-only), chains, verification and the checks before installing.
 * Never calls PKCS#11. */
#ifndef P11KM_CERT_H
#define P11KM_CERT_H

#include <stddef.h>

#include <openssl/x509.h>

/* Limits on input: a CA reply is a few kB; a root bundle a few hundred kB. */
#define P11KM_CERT_FILE_MAX (4u << 20)   /* bytes in one input file */
#define P11KM_REPLY_MAX_CERTS 32         /* certificates in a CA reply */
#define P11KM_ROOTS_MAX_CERTS 4096       /* certificates in one roots run */
#define P11KM_CHAIN_MAX_DEPTH 10         /* intermediates + root above a leaf */

/*
 * Parse certificates from data: one DER certificate, DER PKCS#7
 * (certs-only), or PEM text holding CERTIFICATE, TRUSTED CERTIFICATE and
 * PKCS7 blocks (any other block, e.g. a private key, is refused; a
 * CERTIFICATE block holding PKCS#7 is read as PKCS#7); also base64 DER
 * with no armor, and any of these as UTF-16 text with a BOM.  what
 * names the input in messages.  More than max certificates, none at all,
 * trailing garbage after DER, or a certificate with a negative, zero-length
 * or over-20-byte serial number are errors (P11KM_ERR_INPUT).  Exact
 * duplicates are dropped.  *out is a new stack (free with
 * sk_X509_pop_free(*out, X509_free)).
 */
int p11km_certs_parse(const unsigned char *data, size_t len, const char *what, size_t max,
                      STACK_OF(X509) **out);
/* Read a file ("-" = stdin) with p11km_read_file() and parse it. */
int p11km_certs_read(const char *path, size_t max, STACK_OF(X509) **out);

/* Checks of one certificate; each returns 0 or P11KM_ERR_INPUT with a message. */
int p11km_cert_check_serial(X509 *cert);
/* Is it self-issued (subject == issuer) and does its signature verify with
 * its own key? 1 yes, 0 no. */
int p11km_cert_self_signed(X509 *cert);
/* A placeholder, not an issued certificate: self-issued with notBefore =
 * notAfter (what ykcs11 writes into a PIV slot at key generation; its
 * signature does not verify). */
int p11km_cert_is_placeholder(X509 *cert);
/* A CA certificate fit to be a trust anchor: basicConstraints CA true and,
 * when self-issued, a valid self-signature.  P11KM_ERR_INPUT otherwise. */
int p11km_cert_check_anchor(X509 *cert);

/*
 * Order a chain: from leaf, follow issuers among certs (by name, key
 * identifier and signature).  *chain gets the intermediates (leaf and root
 * excluded, nearest first), *root the self-signed top when present in certs
 * (borrowed; NULL if none).  A cycle or more than P11KM_CHAIN_MAX_DEPTH
 * links is an error.  Certificates not on the path are ignored.
 */
int p11km_chain_order(X509 *leaf, STACK_OF(X509) *certs, STACK_OF(X509) **chain, X509 **root);

/* Where trusted roots for verification come from. */
struct p11km_trust {
	STACK_OF(X509) *anchors;  /* e.g. the token's trusted certificates (borrowed) */
	const char *ca_file;
	const char *ca_path;
	int use_system;           /* OpenSSL's default paths */
};

/*
 * Verify leaf with the untrusted intermediates against trust.  Time errors
 * of the leaf itself are left to p11km_cert_check_validity().  On failure
 * P11KM_ERR_VERIFY with OpenSSL's reason and the failing subject.
 */
int p11km_chain_verify(X509 *leaf, STACK_OF(X509) *untrusted, const struct p11km_trust *trust);

/* Validity of a leaf: 0 valid, 1 not yet valid (warn), P11KM_ERR_VERIFY
 * when expired (unless force, then 2). */
int p11km_cert_check_validity(X509 *cert, int force);
/* Key usage fit for a signing key (digitalSignature when keyUsage is
 * present; an extended key usage, when present, must allow TLS server,
 * TLS client, code signing, email or any).  0 or P11KM_ERR_VERIFY. */
int p11km_cert_check_usage(X509 *cert);

/* DER encoding (malloc'ed). */
int p11km_cert_der(X509 *cert, unsigned char **der, size_t *len);
/* PEM of certs, appended to b. */
struct p11km_buf;
int p11km_cert_pem_append(X509 *cert, struct p11km_buf *b);
/* A public key (SubjectPublicKeyInfo) as PEM, or DER when der, appended to b. */
int p11km_pubkey_append(EVP_PKEY *pk, int der, struct p11km_buf *b);
/* SHA-256 fingerprint of the DER: raw (32 bytes) and hex text (malloc'ed, or NULL). */
int p11km_cert_sha256(X509 *cert, unsigned char out[32]);
char *p11km_cert_fingerprint(X509 *cert);
/* Subject in RFC 2253 form (malloc'ed). */
char *p11km_cert_subject(X509 *cert);
/* A short name for labels and file names: the subject CN, else the whole
 * subject (malloc'ed, at most max bytes, control characters replaced). */
char *p11km_cert_short_name(X509 *cert, size_t max);
/* DER of the serial INTEGER (tag, length, content), as CKA_SERIAL_NUMBER. */
int p11km_cert_serial_der(X509 *cert, unsigned char **der, size_t *len);
/* DER of the subject / issuer names. */
int p11km_cert_name_der(X509 *cert, int issuer, unsigned char **der, size_t *len);
/* Key identifier for CKA_ID: the SubjectKeyIdentifier, else the RFC 5280
 * method 1 identifier of the public key. */
int p11km_cert_keyid(X509 *cert, unsigned char **id, size_t *len);
/* X509 from DER (NULL when it does not parse exactly). */
X509 *p11km_cert_x509_der(const unsigned char *der, size_t len);

#endif
