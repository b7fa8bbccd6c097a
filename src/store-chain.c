/* store-chain.c: completing a certificate chain from the token: the
 * shortest path that verifies, never more than the server needs to send. */
#include "config.h"

#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "p11km/cert.h"
#include "p11km/store.h"
#include "p11km/util.h"

/* Certificates on the token that issued cert, searched by CKA_SUBJECT =
 * cert's issuer (and CKA_TRUSTED when trusted), each read in one call and
 * checked with X509_check_issued; appended to out, at most max. */
static int
issuers(struct p11km_session *s, X509 *cert, int trusted, int max, STACK_OF(X509) *out)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_BBOOL yes = CK_TRUE;
	unsigned char *iss = NULL;
	size_t ilen = 0, n = 0;
	CK_OBJECT_HANDLE *h = NULL;
	int r, got = 0;

	if ((r = p11km_cert_name_der(cert, 1, &iss, &ilen)) < 0)
		return r;
	CK_ATTRIBUTE t[3] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_SUBJECT, iss, ilen },
	                      { CKA_TRUSTED, &yes, sizeof(yes) } };
	r = p11km_find(s, t, trusted ? 3 : 2, 16, &h, &n);
	free(iss);
	for (size_t i = 0; r == 0 && i < n && got < max; i++) {
		unsigned char *der = NULL;
		size_t dl = 0;
		X509 *x;
		if ((r = p11km_cert_value_read(s, h[i], &der, &dl)) < 0)
			break;
		x = der != NULL ? p11km_cert_x509_der(der, dl) : NULL;
		free(der);
		if (x != NULL && X509_check_issued(x, cert) == X509_V_OK && sk_X509_push(out, x))
			got++;
		else
			X509_free(x);
	}
	free(h);
	ERR_clear_error();
	return r;
}

int
p11km_tok_trusted_issuers(struct p11km_session *s, X509 *cert, STACK_OF(X509) *out)
{
	return issuers(s, cert, 1, 16, out);
}

int
p11km_tok_cert_issuer(struct p11km_session *s, X509 *cert, X509 **out)
{
	STACK_OF(X509) *one = sk_X509_new_null();
	int r;

	*out = NULL;
	if (one == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = issuers(s, cert, 0, 1, one)) == 0 && sk_X509_num(one) == 1)
		*out = sk_X509_pop(one);
	sk_X509_pop_free(one, X509_free);
	return r;
}

/* Does leaf verify with chain as the untrusted certificates, against
 * trust plus anchors?  Before each no, one more certificate of the chain
 * (top first, then down to the leaf) gets its trusted issuers on the token
 * searched and added to anchors; done[i] marks those searched (i: 0 leaf,
 * 1 the first intermediate...).  1 yes, 0 no, < 0 error of the token. */
static int
verifies(struct p11km_session *s, X509 *leaf, STACK_OF(X509) *chain,
         const struct p11km_trust *trust, STACK_OF(X509) *anchors, char *done)
{
	struct p11km_trust tr = *trust;
	int r, k = sk_X509_num(chain);

	tr.anchors = anchors;
	for (;;) {
		int before = sk_X509_num(anchors);
		if (p11km_chain_verify(leaf, chain, &tr) == 0)
			return 1;
		p11km_error_clear();
		do {
			while (k >= 0 && done[k])
				k--;
			if (k < 0)
				return 0;
			done[k] = 1;
			r = p11km_tok_trusted_issuers(s, k == 0 ? leaf : sk_X509_value(chain, k - 1),
			                              anchors);
			if (r < 0)
				return r;
		} while (sk_X509_num(anchors) == before);
	}
}

int
p11km_tok_chain_complete(struct p11km_session *s, X509 *leaf, STACK_OF(X509) *chain,
                         const struct p11km_trust *trust, int extend, STACK_OF(X509) *added,
                         STACK_OF(X509) *anchors)
{
	char done[P11KM_CHAIN_MAX_DEPTH + 2] = { 0 };
	int r = 0;

	if (sk_X509_num(chain) > P11KM_CHAIN_MAX_DEPTH)
		return p11km_fail(P11KM_ERR_INPUT, "the chain is longer than %d certificates",
		                  P11KM_CHAIN_MAX_DEPTH);
	for (;;) {
		X509 *top = sk_X509_num(chain) > 0 ? sk_X509_value(chain, sk_X509_num(chain) - 1)
		                                   : leaf;
		X509 *next = NULL;
		int seen;
		if (trust != NULL && (r = verifies(s, leaf, chain, trust, anchors, done)) != 0)
			return r;
		/* a self-issued top (a root, or ykcs11's placeholder whose
		 * signature does not verify) has no issuer but itself */
		if (!extend || p11km_cert_self_signed(top) ||
		    X509_NAME_cmp(X509_get_subject_name(top), X509_get_issuer_name(top)) == 0 ||
		    sk_X509_num(chain) >= P11KM_CHAIN_MAX_DEPTH)
			return 0;
		if ((r = p11km_tok_cert_issuer(s, top, &next)) < 0)
			return r;
		if (next == NULL)
			return 0;
		if (p11km_cert_self_signed(next)) {
			X509_free(next);
			return 0;
		}
		seen = X509_cmp(next, leaf) == 0;
		for (int i = 0; i < sk_X509_num(chain) && !seen; i++)
			seen = X509_cmp(sk_X509_value(chain, i), next) == 0;
		if (seen) {
			X509_free(next);
			return p11km_fail(P11KM_ERR_INPUT, "the certificates on the token form a cycle");
		}
		if (!sk_X509_push(added, next)) {
			X509_free(next);
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		}
		if (!sk_X509_push(chain, next))
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
}
