/* x509-msrenew.c: the renewal request AD CS expects (MS-WCCE 3.2.1.4.2.1.4:
 * "a CMS SignedData around the PKCS#10"): the PKCS#10 as the signed
 * content (id-data), one SignerInfo signed by the old certificate's key
 * (through the signer interface: on a token, one C_Sign), the old
 * certificate in the certificates and, as a signed attribute,
 * szOID_RENEWAL_CERTIFICATE (1.3.6.1.4.1.311.13.1).  Built with OpenSSL's
 * PKCS#7 structures by hand, since the key is not an EVP_PKEY. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "p11km/req.h"
#include "p11km/util.h"

#define OID_RENEWAL_CERTIFICATE "1.3.6.1.4.1.311.13.1"

/* The signed attributes: content type, message digest, signing time, the
 * renewal certificate. */
static int
signed_attrs(PKCS7_SIGNER_INFO *si, const EVP_MD *md, const unsigned char *csr, size_t csr_len,
             X509 *old)
{
	unsigned char h[EVP_MAX_MD_SIZE], *der = NULL;
	unsigned int hl = 0;
	int dl = i2d_X509(old, &der), ok;
	ASN1_OCTET_STRING *mdv = ASN1_OCTET_STRING_new();
	ASN1_OBJECT *oid = OBJ_txt2obj(OID_RENEWAL_CERTIFICATE, 1);
	X509_ATTRIBUTE *ra = NULL;

	ok = dl > 0 && mdv != NULL && oid != NULL && EVP_Digest(csr, csr_len, h, &hl, md, NULL) == 1 &&
	     ASN1_OCTET_STRING_set(mdv, h, (int)hl) == 1 &&
	     PKCS7_add_signed_attribute(si, NID_pkcs9_contentType, V_ASN1_OBJECT,
	                                OBJ_nid2obj(NID_pkcs7_data)) == 1;
	if (ok) {
		ok = PKCS7_add_signed_attribute(si, NID_pkcs9_messageDigest, V_ASN1_OCTET_STRING, mdv) == 1;
		if (ok)
			mdv = NULL; /* owned by the attribute */
	}
	ok = ok && PKCS7_add0_attrib_signing_time(si, NULL) == 1 &&
	     (ra = X509_ATTRIBUTE_create_by_OBJ(NULL, oid, V_ASN1_SEQUENCE, der, dl)) != NULL &&
	     sk_X509_ATTRIBUTE_push(si->auth_attr, ra) > 0;
	if (ok)
		ra = NULL;
	X509_ATTRIBUTE_free(ra);
	ASN1_OCTET_STRING_free(mdv);
	ASN1_OBJECT_free(oid);
	OPENSSL_free(der);
	return ok ? 0 : p11km_fail(P11KM_ERR_FAILED, "cannot build the signed attributes of the "
	                           "renewal: %s", p11km_openssl_error());
}

/* Sign the DER SET OF the signed attributes (RFC 5652 5.4). */
static int
sign_attrs(PKCS7_SIGNER_INFO *si, struct p11km_signer *sg)
{
	unsigned char *abuf = NULL, *sig = NULL;
	size_t sig_len = 0;
	int al = ASN1_item_i2d((ASN1_VALUE *)si->auth_attr, &abuf, ASN1_ITEM_rptr(PKCS7_ATTR_SIGN)), r;

	if (al <= 0)
		return p11km_fail(P11KM_ERR_FAILED, "cannot encode the signed attributes");
	r = sg->sign(sg, abuf, (size_t)al, &sig, &sig_len);
	OPENSSL_free(abuf);
	if (r < 0)
		return r;
	if (sig_len > INT32_MAX || ASN1_STRING_set(si->enc_digest, sig, (int)sig_len) != 1)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	free(sig);
	return r;
}

int
p11km_ms_renewal_wrap(const unsigned char *csr, size_t csr_len, X509 *old,
                      struct p11km_signer *sg, int der, unsigned char **out, size_t *out_len)
{
	PKCS7 *p7 = NULL;
	PKCS7_SIGNER_INFO *si = NULL;
	STACK_OF(X509) *signers = NULL;
	BIO *bio = NULL, *sink = NULL;
	char *data;
	long n;
	int r = P11KM_ERR_FAILED;

	*out = NULL;
	if (sg->alg != P11KM_SIG_RSA_PKCS1 && sg->alg != P11KM_SIG_ECDSA)
		return p11km_fail(P11KM_ERR_USAGE, "an MS renewal is signed with RSA PKCS#1 v1.5 or "
		                  "ECDSA (AD CS takes no RSA-PSS or EdDSA here); leave --rsa-pss out");
	if (EVP_PKEY_eq(X509_get0_pubkey(old), sg->pubkey) != 1)
		return p11km_fail(P11KM_ERR_VERIFY, "the renewal must be signed by the old certificate's "
		                  "key");
	if ((p7 = PKCS7_new()) == NULL || PKCS7_set_type(p7, NID_pkcs7_signed) != 1 ||
	    PKCS7_content_new(p7, NID_pkcs7_data) != 1 ||
	    ASN1_OCTET_STRING_set(p7->d.sign->contents->d.data, csr, (int)csr_len) != 1 ||
	    PKCS7_add_certificate(p7, old) != 1 || (si = PKCS7_SIGNER_INFO_new()) == NULL ||
	    PKCS7_SIGNER_INFO_set(si, old, sg->pubkey, sg->md) != 1) {
		r = p11km_fail(P11KM_ERR_FAILED, "cannot build the renewal's SignedData: %s",
		               p11km_openssl_error());
		goto out;
	}
	if (PKCS7_add_signer(p7, si) != 1) {
		r = p11km_fail(P11KM_ERR_FAILED, "cannot add the signer: %s", p11km_openssl_error());
		goto out;
	}
	si = NULL; /* owned by p7 */
	si = sk_PKCS7_SIGNER_INFO_value(PKCS7_get_signer_info(p7), 0);
	if ((r = signed_attrs(si, sg->md, csr, csr_len, old)) < 0 || (r = sign_attrs(si, sg)) < 0) {
		si = NULL;
		goto out;
	}
	si = NULL;
	/* check what the token signed before anyone else sees it */
	if ((signers = sk_X509_new_null()) == NULL || sk_X509_push(signers, old) <= 0 ||
	    (sink = BIO_new(BIO_s_null())) == NULL ||
	    PKCS7_verify(p7, signers, NULL, NULL, sink, PKCS7_NOVERIFY | PKCS7_NOINTERN) != 1) {
		r = p11km_fail(P11KM_ERR_VERIFY, "the renewal's signature by the token does not verify: "
		               "%s", p11km_openssl_error());
		goto out;
	}
	if ((bio = BIO_new(BIO_s_mem())) == NULL ||
	    (der ? i2d_PKCS7_bio(bio, p7) : PEM_write_bio_PKCS7(bio, p7)) != 1 ||
	    (n = BIO_get_mem_data(bio, &data)) <= 0 || (*out = p11km_memdup(data, (size_t)n)) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "cannot encode the renewal");
		goto out;
	}
	*out_len = (size_t)n;
	r = 0;
out:
	PKCS7_SIGNER_INFO_free(si);
	sk_X509_free(signers);
	BIO_free(sink);
	BIO_free(bio);
	PKCS7_free(p7);
	return r;
}
