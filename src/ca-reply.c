/* ca-reply.c: what a CA sent, as the PEM chain p11km passes on: parsed,
 * and its leaf checked against the request's key before anything is
 * written or installed. */
#include "config.h"

#include <string.h>

#include <openssl/x509.h>

#include "p11km/ca.h"
#include "p11km/cert.h"
#include "p11km/util.h"

static int
to_pem(STACK_OF(X509) *certs, int first, char **pem, size_t *pem_len)
{
	struct p11km_buf b = { 0 };
	int r = 0;

	if (first >= 0)
		r = p11km_cert_pem_append(sk_X509_value(certs, first), &b);
	for (int i = 0; r == 0 && i < sk_X509_num(certs); i++)
		if (i != first)
			r = p11km_cert_pem_append(sk_X509_value(certs, i), &b);
	if (r == 0 && (r = p11km_buf_append(&b, "", 1)) == 0) {
		*pem = (char *)b.data;
		*pem_len = b.len - 1;
		return 0;
	}
	p11km_buf_release(&b);
	return r < 0 ? r : p11km_fail(P11KM_ERR_NOMEM, "out of memory");
}

int
p11km_ca_reply_chain(const unsigned char *data, size_t len, const char *what,
                     const unsigned char *csr, size_t csr_len, char **pem, size_t *pem_len)
{
	const unsigned char *q = csr;
	X509_REQ *req = d2i_X509_REQ(NULL, &q, (long)csr_len);
	STACK_OF(X509) *certs = NULL;
	int r, leaf = -1;

	*pem = NULL;
	if (req == NULL)
		return p11km_fail(P11KM_ERR_INPUT, "the request cannot be read back");
	if ((r = p11km_certs_parse(data, len, what, P11KM_REPLY_MAX_CERTS, &certs)) < 0)
		goto out;
	for (int i = 0; i < sk_X509_num(certs) && leaf < 0; i++)
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(certs, i)), X509_REQ_get0_pubkey(req)) == 1)
			leaf = i;
	if (leaf < 0)
		r = p11km_fail(P11KM_ERR_VERIFY, "%s holds no certificate for the request's key; "
		               "refused", what);
	else
		r = to_pem(certs, leaf, pem, pem_len);
out:
	sk_X509_pop_free(certs, X509_free);
	X509_REQ_free(req);
	(void)p11km_openssl_error();
	return r;
}

int
p11km_ca_reply_certs(const unsigned char *data, size_t len, const char *what, char **pem,
                     size_t *pem_len)
{
	STACK_OF(X509) *certs = NULL;
	int r;

	*pem = NULL;
	if ((r = p11km_certs_parse(data, len, what, P11KM_REPLY_MAX_CERTS, &certs)) == 0)
		r = to_pem(certs, -1, pem, pem_len);
	sk_X509_pop_free(certs, X509_free);
	return r;
}
