/* x509-key.c: EC curves, key identifiers and certificate summaries (the
 * public key of a token object is in key-pub.c, the key layer). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "p11km/util.h"
#include "p11km/x509.h"

const char *
p11km_ec_params_curve(const unsigned char *der, size_t len, int *bits)
{
	const unsigned char *p = der;
	ASN1_OBJECT *obj;
	const char *name = NULL;
	int b = 0;

	if (der == NULL || len == 0)
		return NULL;
	if (der[0] == 0x13) { /* PrintableString, as some tokens write for EdDSA */
		if (len >= 14 && memcmp(der + 2, "edwards25519", 12) == 0)
			name = "Ed25519", b = 255;
		else if (len >= 12 && memcmp(der + 2, "edwards448", 10) == 0)
			name = "Ed448", b = 448;
	} else if ((obj = d2i_ASN1_OBJECT(NULL, &p, (long)len)) != NULL) {
		switch (OBJ_obj2nid(obj)) {
		case NID_X9_62_prime256v1: name = "P-256"; b = 256; break;
		case NID_secp384r1: name = "P-384"; b = 384; break;
		case NID_secp521r1: name = "P-521"; b = 521; break;
		case NID_secp256k1: name = "secp256k1"; b = 256; break;
		case NID_ED25519: name = "Ed25519"; b = 255; break;
		case NID_ED448: name = "Ed448"; b = 448; break;
		default: break;
		}
		ASN1_OBJECT_free(obj);
	}
	if (bits != NULL)
		*bits = b;
	return name;
}

int
p11km_pubkey_keyid(EVP_PKEY *pkey, unsigned char out[20])
{
	X509_PUBKEY *xpk = NULL;
	const unsigned char *bits;
	int len;

	if (X509_PUBKEY_set(&xpk, pkey) != 1 ||
	    X509_PUBKEY_get0_param(NULL, &bits, &len, NULL, xpk) != 1) {
		X509_PUBKEY_free(xpk);
		return p11km_fail(P11KM_ERR_FAILED, "unable to encode the public key: %s",
		                  p11km_openssl_error());
	}
	SHA1(bits, (size_t)len, out);
	X509_PUBKEY_free(xpk);
	return 0;
}

static char *
time_text(const ASN1_TIME *t)
{
	struct tm tm;
	char buf[32];

	if (ASN1_TIME_to_tm(t, &tm) != 1)
		return strdup("?");
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return strdup(buf);
}

int
p11km_cert_summary_x509(X509 *cert, struct p11km_cert_summary *out)
{
	const ASN1_INTEGER *sn = X509_get0_serialNumber(cert);
	BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
	char *hex = bn ? BN_bn2hex(bn) : NULL;
	unsigned char md[32];
	unsigned int mdlen = 0;
	int pday = 0, psec = 0;

	memset(out, 0, sizeof(*out));
	out->subject = p11km_name_text(X509_get_subject_name(cert));
	out->issuer = p11km_name_text(X509_get_issuer_name(cert));
	out->serial = hex ? strdup(hex) : NULL;
	out->not_before = time_text(X509_get0_notBefore(cert));
	out->not_after = time_text(X509_get0_notAfter(cert));
	if (ASN1_TIME_diff(&pday, &psec, NULL, X509_get0_notAfter(cert)) == 1)
		out->days_left = pday;
	out->is_ca = X509_check_ca(cert) > 0;
	if (X509_digest(cert, EVP_sha256(), md, &mdlen) == 1)
		out->sha256 = p11km_hex(md, mdlen);
	OPENSSL_free(hex);
	BN_free(bn);
	if (out->subject == NULL || out->issuer == NULL || out->serial == NULL ||
	    out->not_after == NULL || out->sha256 == NULL) {
		p11km_cert_summary_release(out);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	return 0;
}

int
p11km_cert_summary(const unsigned char *der, size_t len, struct p11km_cert_summary *out)
{
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	int r;

	if (cert == NULL || (size_t)(p - der) != len) {
		X509_free(cert);
		ERR_clear_error();
		return p11km_fail(P11KM_ERR_INPUT, "the certificate does not parse as DER X.509");
	}
	r = p11km_cert_summary_x509(cert, out);
	X509_free(cert);
	return r;
}

void
p11km_cert_summary_release(struct p11km_cert_summary *s)
{
	free(s->subject);
	free(s->issuer);
	free(s->serial);
	free(s->not_before);
	free(s->not_after);
	free(s->sha256);
	memset(s, 0, sizeof(*s));
}
