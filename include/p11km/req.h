/* req.h: subjects, subjectAltNames, usages and PKCS#10 requests (OpenSSL).
 * Never calls PKCS#11: requests are signed through a struct p11km_signer. */
#ifndef P11KM_REQ_H
#define P11KM_REQ_H

#include <stddef.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "p11km/sign.h"

/*
 * Parse a subject: RFC 4514 ("CN=www.example.com,O=Example\, Inc.,C=US",
 * most specific RDN first; escapes \, \+ \" \\ \# \; \< \> \= \space and
 * \XX; multi-valued RDNs with +) or OpenSSL's "/C=US/O=Example/CN=www"
 * (starts with '/'; order as written).  Values must be valid UTF-8 without
 * NUL or control characters, attribute types known, lengths within the
 * X.520 upper bounds.  P11KM_ERR_USAGE with a one-line reason otherwise.
 */
int p11km_name_parse(const char *s, X509_NAME **out);

/* The name in RFC 2253 form (malloc'ed), for messages and --json. */

/*
 * Add the names of a --san value ("DNS:a.example,IP:192.0.2.1,email:x@y,
 * URI:https://a/") to *gens (created when NULL).  Hostnames (with an
 * optional leading "*." wildcard) and addresses (inet_pton) are validated.
 */
int p11km_san_parse(const char *spec, GENERAL_NAMES **gens);

/* Does s look like a DNS host name (the CN-to-SAN default)?  Is it an IP? */
int p11km_is_hostname(const char *s);
int p11km_is_ip(const char *s);

/* "type:value" text of one general name (malloc'ed), as in openssl's output
 * ("DNS:a", "IP Address:...") but with p11km's prefixes (DNS, IP, email, URI). */
char *p11km_general_name_text(const GENERAL_NAME *g);

/* keyUsage from "digitalSignature,keyEncipherment" (critical). */
int p11km_ku_parse(const char *list, X509_EXTENSION **out);
/* extendedKeyUsage from "serverAuth,clientAuth" or dotted OIDs. */
int p11km_eku_parse(const char *list, X509_EXTENSION **out);

/*
 * Build a request: subject, the signer's public key, the extensions (may
 * be NULL or empty), signed through the signer and verified with its
 * public key before it is returned.  P11KM_ERR_VERIFY when the signature
 * does not verify.
 */
int p11km_req_build(const X509_NAME *subject, const STACK_OF(X509_EXTENSION) *exts,
                    struct p11km_signer *sg, X509_REQ **out);

/* A list of names (malloc'ed strings). */
struct p11km_names {
	char **v;
	size_t n;
};
void p11km_names_release(struct p11km_names *l);

/*
 * The extensions of a certificate that a renewal request asks for again:
 * only what a requester asks for (subjectAltName, keyUsage,
 * extendedKeyUsage, TLS feature, S/MIME capabilities, and basicConstraints
 * when the certificate is a CA).  Every other extension (what the CA adds:
 * key identifiers, CRL and OCSP pointers, policies, SCTs, nsComment,
 * Microsoft's template and application policies...) is left out and its
 * name added to dropped.  Key usages a key of key_type (EVP_PKEY_RSA,
 * EVP_PKEY_EC, EVP_PKEY_ED25519...) cannot do are removed and named in
 * dropped_ku (the whole keyUsage goes when nothing is left).  *out is a
 * new stack; the lists are the caller's to release, also on failure.
 */
int p11km_req_exts_from_cert(X509 *cert, int key_type, STACK_OF(X509_EXTENSION) **out,
                             struct p11km_names *dropped, struct p11km_names *dropped_ku);

/* Replace (or add) the extension with the NID of ext in *exts (ext is
 * owned by the stack afterwards). */
int p11km_exts_set(STACK_OF(X509_EXTENSION) **exts, X509_EXTENSION *ext);

/* Read a certificate file (PEM or DER).  A request, key or garbage is
 * P11KM_ERR_INPUT with a message that says what the file is. */
int p11km_cert_load(const char *path, X509 **out);
int p11km_cert_from_der(const unsigned char *der, size_t len, const char *what, X509 **out);

/*
 * An AD CS renewal request (MS-WCCE): the DER PKCS#10 csr inside a CMS
 * SignedData signed by sg, the old certificate's key, with old as the
 * signer's certificate and in the szOID_RENEWAL_CERTIFICATE signed
 * attribute.  The signature is verified before the result is returned
 * (P11KM_ERR_VERIFY).  *out: PEM ("PKCS7") or DER, malloc'ed.
 */
int p11km_ms_renewal_wrap(const unsigned char *csr, size_t csr_len, X509 *old,
                          struct p11km_signer *sg, int der, unsigned char **out, size_t *out_len);

/* PEM or DER encoding of a request (malloc'ed). */
int p11km_req_encode(X509_REQ *req, int der, unsigned char **out, size_t *len);

#endif
