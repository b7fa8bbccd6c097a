/* x509-cert.c: checks of one certificate, chains, encodings (reading replies: x509-reply.c). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "p11km/cert.h"
#include "p11km/util.h"
#include "p11km/x509.h"

/* --- one certificate ------------------------------------------------------ */

int
p11km_cert_check_serial(X509 *cert)
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
	char *subj;
	int r = 0;

	if (sn == NULL)
		return p11km_fail(P11KM_ERR_INPUT, "a certificate has no serial number");
	if (ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER || ASN1_STRING_length(sn) > 20 ||
	    ASN1_STRING_length(sn) == 0) {
		subj = p11km_cert_subject(cert);
		r = p11km_fail(P11KM_ERR_INPUT,
		    "certificate '%s' has a %s serial number (RFC 5280: positive, at most 20 "
		    "octets); ask the CA for a conforming certificate", subj ? subj : "?",
		    ASN1_STRING_type(sn) == V_ASN1_NEG_INTEGER ? "negative" :
		    ASN1_STRING_length(sn) == 0 ? "empty" : "too long");
		free(subj);
	}
	return r;
}

int
p11km_cert_self_signed(X509 *cert)
{
	EVP_PKEY *k;
	int ok;

	if (X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) != 0)
		return 0;
	if ((k = X509_get0_pubkey(cert)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	ok = X509_verify(cert, k) == 1;
	ERR_clear_error();
	return ok;
}

int
p11km_cert_is_placeholder(X509 *cert)
{
	/* its signature does not verify: the card's key cannot sign for it */
	return ASN1_TIME_compare(X509_get0_notBefore(cert), X509_get0_notAfter(cert)) == 0 &&
	       X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0;
}

int
p11km_cert_check_anchor(X509 *cert)
{
	char *subj = p11km_cert_subject(cert);
	int r = 0;

	if (!(X509_get_extension_flags(cert) & EXFLAG_CA))
		r = p11km_fail(P11KM_ERR_INPUT,
		    "'%s' is not a CA certificate (no basicConstraints CA:TRUE); give "
		    "--allow-non-ca to trust it anyway", subj ? subj : "?");
	else if (X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0 &&
	         !p11km_cert_self_signed(cert))
		r = p11km_fail(P11KM_ERR_INPUT,
		    "root '%s' has no valid self-signature; it is damaged or forged", subj ? subj : "?");
	free(subj);
	return r;
}

/* --- chains --------------------------------------------------------------- */

int
p11km_chain_order(X509 *leaf, STACK_OF(X509) *certs, STACK_OF(X509) **chain, X509 **root)
{
	STACK_OF(X509) *c = sk_X509_new_null();
	X509 *cur = leaf;
	int r = 0;

	*chain = NULL;
	*root = NULL;
	if (c == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	while (!p11km_cert_self_signed(cur)) {
		X509 *next = NULL;
		for (int i = 0; i < sk_X509_num(certs) && next == NULL; i++) {
			X509 *cand = sk_X509_value(certs, i);
			if (cand != cur && X509_check_issued(cand, cur) == X509_V_OK)
				next = cand;
		}
		if (next == NULL)
			break;
		int seen = X509_cmp(next, leaf) == 0;
		for (int i = 0; i < sk_X509_num(c) && !seen; i++)
			seen = X509_cmp(sk_X509_value(c, i), next) == 0;
		if (seen) {
			r = p11km_fail(P11KM_ERR_INPUT,
			    "the certificates form a cycle (a certificate issues one above it); the "
			    "chain cannot be built");
			goto out;
		}
		if (p11km_cert_self_signed(next)) {
			*root = next;
			break;
		}
		if (sk_X509_num(c) >= P11KM_CHAIN_MAX_DEPTH) {
			r = p11km_fail(P11KM_ERR_INPUT, "the chain is longer than %d certificates",
			               P11KM_CHAIN_MAX_DEPTH);
			goto out;
		}
		if (!sk_X509_push(c, next)) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			goto out;
		}
		cur = next;
	}
	ERR_clear_error();
	*chain = c;
	return 0;
out:
	*root = NULL;
	sk_X509_free(c);
	return r;
}

/* Leave the leaf's own time to p11km_cert_check_validity(). */
static int
verify_cb(int ok, X509_STORE_CTX *ctx)
{
	int err = X509_STORE_CTX_get_error(ctx);

	if (!ok && X509_STORE_CTX_get_error_depth(ctx) == 0 &&
	    (err == X509_V_ERR_CERT_NOT_YET_VALID || err == X509_V_ERR_CERT_HAS_EXPIRED))
		return 1;
	return ok;
}

/* Why a chain does not verify.  A missing issuer is named by its subject:
 * above the leaf it is the CA's intermediate the reply left out; higher up
 * it may be a root not yet trusted. */
static int
verify_failure(X509_STORE_CTX *vctx)
{
	X509 *bad = X509_STORE_CTX_get_current_cert(vctx);
	int err = X509_STORE_CTX_get_error(vctx), r;
	char *subj = bad ? p11km_cert_subject(bad) : NULL;
	char *iss = bad ? p11km_name_text(X509_get_issuer_name(bad)) : NULL;

	if ((err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
	     err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT) && iss != NULL &&
	    X509_STORE_CTX_get_error_depth(vctx) == 0)
		r = p11km_fail(P11KM_ERR_VERIFY,
		    "the certificate chain does not verify: the issuer '%s' of '%s' is missing "
		    "(not in the reply, not on the token, not a trusted root); append the CA's "
		    "intermediate certificate to the reply (or give it with --ca-file if it is a "
		    "root)", iss, subj ? subj : "?");
	else if (err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
	         err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
		r = p11km_fail(P11KM_ERR_VERIFY,
		    "the certificate chain does not verify: the issuer '%s' of '%s' is not trusted "
		    "or not found; give that root with --ca-file/--ca-path, install it with "
		    "'p11km roots install', or use --no-verify", iss ? iss : "?", subj ? subj : "?");
	else
		r = p11km_fail(P11KM_ERR_VERIFY,
		    "the certificate chain does not verify: %s (at '%s'); give the issuing root "
		    "with --ca-file/--ca-path, install it with 'p11km roots install', or use "
		    "--no-verify", X509_verify_cert_error_string(err), subj ? subj : "?");
	free(subj);
	free(iss);
	return r;
}

/* The trust store of the files and the system, loaded once per run for the
 * same --ca-file/--ca-path (the renewal batch verifies a chain per
 * certificate; the system bundle alone is 140 certificates to parse). */
static struct {
	char *ca_file, *ca_path;
	int use_system;
	X509_STORE *st;
} trust_cache;

static int
same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* A new reference to the cached store for trust (no anchors), or NULL. */
static X509_STORE *
trust_cached(const struct p11km_trust *trust)
{
	if (trust_cache.st == NULL || !same_str(trust_cache.ca_file, trust->ca_file) ||
	    !same_str(trust_cache.ca_path, trust->ca_path) ||
	    trust_cache.use_system != trust->use_system ||
	    X509_STORE_up_ref(trust_cache.st) != 1)
		return NULL;
	return trust_cache.st;
}

static void
trust_keep(const struct p11km_trust *trust, X509_STORE *st)
{
	char *f = trust->ca_file ? strdup(trust->ca_file) : NULL;
	char *p = trust->ca_path ? strdup(trust->ca_path) : NULL;

	if ((trust->ca_file && f == NULL) || (trust->ca_path && p == NULL) ||
	    X509_STORE_up_ref(st) != 1) {
		free(f);
		free(p);
		return;
	}
	X509_STORE_free(trust_cache.st);
	free(trust_cache.ca_file);
	free(trust_cache.ca_path);
	trust_cache.ca_file = f;
	trust_cache.ca_path = p;
	trust_cache.use_system = trust->use_system;
	trust_cache.st = st;
}

int
p11km_chain_verify(X509 *leaf, STACK_OF(X509) *untrusted, const struct p11km_trust *trust)
{
	int plain = trust->anchors == NULL || sk_X509_num(trust->anchors) == 0;
	X509_STORE *st = plain ? trust_cached(trust) : NULL;
	X509_STORE_CTX *vctx = X509_STORE_CTX_new();
	int r = 0;

	if (st != NULL)
		goto verify;
	if ((st = X509_STORE_new()) == NULL || vctx == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; trust->anchors != NULL && i < sk_X509_num(trust->anchors); i++)
		X509_STORE_add_cert(st, sk_X509_value(trust->anchors, i));
	if ((trust->ca_file || trust->ca_path) &&
	    X509_STORE_load_locations(st, trust->ca_file, trust->ca_path) != 1) {
		r = p11km_fail(P11KM_ERR_IO, "unable to load CA certificates from '%s': %s",
		               trust->ca_file ? trust->ca_file : trust->ca_path, p11km_openssl_error());
		goto out;
	}
	if (trust->use_system && X509_STORE_set_default_paths(st) != 1) {
		r = p11km_fail(P11KM_ERR_IO, "unable to load the system's CA certificates: %s",
		               p11km_openssl_error());
		goto out;
	}
	X509_STORE_set_verify_cb(st, verify_cb);
	if (plain)
		trust_keep(trust, st);
verify:
	if (vctx == NULL || X509_STORE_CTX_init(vctx, st, leaf, untrusted) != 1) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (X509_verify_cert(vctx) != 1)
		r = verify_failure(vctx);
out:
	ERR_clear_error();
	X509_STORE_CTX_free(vctx);
	X509_STORE_free(st);
	return r;
}

int
p11km_cert_check_validity(X509 *cert, int force)
{
	if (X509_cmp_time(X509_get0_notAfter(cert), NULL) < 0) {
		if (!force)
			return p11km_fail(P11KM_ERR_VERIFY,
			    "the certificate has expired; get a new one, or give --force to install it "
			    "anyway");
		return 2;
	}
	if (X509_cmp_time(X509_get0_notBefore(cert), NULL) > 0)
		return 1;
	return 0;
}

int
p11km_cert_check_usage(X509 *cert)
{
	uint32_t fl = X509_get_extension_flags(cert);
	uint32_t ok_eku = XKU_SSL_SERVER | XKU_SSL_CLIENT | XKU_SMIME | XKU_CODE_SIGN |
	                  XKU_OCSP_SIGN | XKU_TIMESTAMP | XKU_ANYEKU;

	if ((fl & EXFLAG_KUSAGE) && !(X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE))
		return p11km_fail(P11KM_ERR_VERIFY,
		    "the certificate's key usage does not include digitalSignature: the token key "
		    "could not sign with it; ask the CA for a signing certificate");
	if ((fl & EXFLAG_XKUSAGE) && !(X509_get_extended_key_usage(cert) & ok_eku))
		return p11km_fail(P11KM_ERR_VERIFY,
		    "the certificate's extended key usage allows no signing purpose (TLS, e-mail, "
		    "code signing)");
	return 0;
}

/* --- encodings ------------------------------------------------------------ */

int
p11km_cert_der(X509 *cert, unsigned char **der, size_t *len)
{
	unsigned char *d = NULL;
	int n = i2d_X509(cert, &d);

	if (n <= 0)
		return p11km_fail(P11KM_ERR_FAILED, "unable to encode a certificate: %s",
		                  p11km_openssl_error());
	*der = p11km_memdup(d, (size_t)n);
	OPENSSL_free(d);
	if (*der == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	*len = (size_t)n;
	return 0;
}

X509 *
p11km_cert_x509_der(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);

	if (x != NULL && p != der + len) {
		X509_free(x);
		x = NULL;
	}
	ERR_clear_error();
	return x;
}

/* PEM of cert (or, cert NULL, of pk) appended to b. */
static int
pem_append(X509 *cert, EVP_PKEY *pk, struct p11km_buf *b)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p;
	long n;
	int r;

	if (bio == NULL || (cert ? PEM_write_bio_X509(bio, cert) : PEM_write_bio_PUBKEY(bio, pk)) != 1) {
		BIO_free(bio);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	n = BIO_get_mem_data(bio, &p);
	r = p11km_buf_append(b, p, (size_t)n);
	BIO_free(bio);
	return r;
}

int
p11km_cert_pem_append(X509 *cert, struct p11km_buf *b)
{
	return pem_append(cert, NULL, b);
}

int
p11km_pubkey_append(EVP_PKEY *pk, int der, struct p11km_buf *b)
{
	unsigned char *d = NULL;
	int len, r;

	if (!der)
		return pem_append(NULL, pk, b);
	if ((len = i2d_PUBKEY(pk, &d)) <= 0)
		return p11km_fail(P11KM_ERR_FAILED, "unable to encode the public key");
	r = p11km_buf_append(b, d, (size_t)len);
	OPENSSL_free(d);
	return r;
}

int
p11km_cert_sha256(X509 *cert, unsigned char out[32])
{
	unsigned int n = 0;

	if (X509_digest(cert, EVP_sha256(), out, &n) != 1 || n != 32)
		return p11km_fail(P11KM_ERR_FAILED, "unable to hash a certificate");
	return 0;
}

char *
p11km_cert_fingerprint(X509 *cert)
{
	unsigned char md[32];

	if (p11km_cert_sha256(cert, md) < 0)
		return NULL;
	return p11km_hex(md, sizeof(md));
}

char *
p11km_cert_subject(X509 *cert)
{
	struct p11km_cert_summary s;
	char *r;

	if (p11km_cert_summary_x509(cert, &s) < 0)
		return NULL;
	r = s.subject;
	s.subject = NULL;
	p11km_cert_summary_release(&s);
	return r;
}

char *
p11km_cert_short_name(X509 *cert, size_t max)
{
	X509_NAME *nm = X509_get_subject_name(cert);
	int i = X509_NAME_get_index_by_NID(nm, NID_commonName, -1), n = 0;
	unsigned char *u = NULL;
	char *s = NULL;
	size_t len;

	/* the CN's full length: a NUL inside it must not cut the label short
	 * (a CA-signed "good.example\0.evil" would be labelled "good.example") */
	if (i >= 0 && (n = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(
	                  X509_NAME_get_entry(nm, i)))) > 0)
		s = p11km_memdup(u, (size_t)n + 1);
	else
		s = p11km_cert_subject(cert);
	OPENSSL_free(u);
	if (s == NULL)
		return NULL;
	len = n > 0 ? (size_t)n : strlen(s);
	s[len] = '\0';
	for (size_t k = 0; k < len; k++)
		if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f)
			s[k] = '_';
	if (len > max) {
		while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
			max--; /* not inside a UTF-8 character */
		s[max] = '\0';
	}
	return s;
}

int
p11km_cert_serial_der(X509 *cert, unsigned char **der, size_t *len)
{
	unsigned char *d = NULL;
	int n = i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), &d);

	if (n <= 0)
		return p11km_fail(P11KM_ERR_FAILED, "unable to encode a serial number");
	*der = p11km_memdup(d, (size_t)n);
	OPENSSL_free(d);
	if (*der == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	*len = (size_t)n;
	return 0;
}

int
p11km_cert_name_der(X509 *cert, int issuer, unsigned char **der, size_t *len)
{
	unsigned char *d = NULL;
	int n = i2d_X509_NAME(issuer ? X509_get_issuer_name(cert) : X509_get_subject_name(cert),
	                      &d);

	if (n <= 0)
		return p11km_fail(P11KM_ERR_FAILED, "unable to encode a name");
	*der = p11km_memdup(d, (size_t)n);
	OPENSSL_free(d);
	if (*der == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	*len = (size_t)n;
	return 0;
}

int
p11km_cert_keyid(X509 *cert, unsigned char **id, size_t *len)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(cert);
	unsigned char kid[20];
	EVP_PKEY *k;

	if (ski != NULL && ASN1_STRING_length(ski) > 0) {
		*len = (size_t)ASN1_STRING_length(ski);
		*id = p11km_memdup(ASN1_STRING_get0_data(ski), *len);
	} else {
		if ((k = X509_get0_pubkey(cert)) == NULL || p11km_pubkey_keyid(k, kid) < 0)
			return p11km_fail(P11KM_ERR_INPUT, "the certificate's public key cannot be read");
		*len = sizeof(kid);
		*id = p11km_memdup(kid, sizeof(kid));
	}
	ERR_clear_error();
	if (*id == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return 0;
}
