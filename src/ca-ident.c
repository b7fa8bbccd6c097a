/* ca-ident.c: the identifiers an ACME order asks for, from a request's
 * subjectAltName (OpenSSL only). */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "p11km/ca.h"
#include "p11km/util.h"

int
p11km_req_identifiers(X509_REQ *req, const char ***types, char ***values, size_t *n)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
	GENERAL_NAMES *gens = NULL;
	const char **t = NULL;
	char **v = NULL;
	size_t k = 0;
	int r = 0, m;

	*types = NULL;
	*values = NULL;
	*n = 0;
	for (int i = 0; exts != NULL && i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
		if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name)
			gens = X509V3_EXT_d2i(e);
	}
	m = gens ? sk_GENERAL_NAME_num(gens) : 0;
	if (m > 0 && ((t = calloc((size_t)m, sizeof(*t))) == NULL ||
	              (v = calloc((size_t)m, sizeof(*v))) == NULL)) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < m; i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		int type;
		ASN1_STRING *s = GENERAL_NAME_get0_value(g, &type);
		char ip[64];
		if (type == GEN_DNS) {
			t[k] = "dns";
			v[k] = strndup((const char *)ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
		} else if (type == GEN_IPADD) {
			const unsigned char *a = ASN1_STRING_get0_data(s);
			int l = ASN1_STRING_length(s);
			if (l == 4)
				snprintf(ip, sizeof(ip), "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
			else if (l != 16 || inet_ntop(AF_INET6, a, ip, sizeof(ip)) == NULL)
				continue;
			t[k] = "ip";
			v[k] = strdup(ip);
		} else {
			continue;
		}
		if (v[k] == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			goto out;
		}
		k++;
	}
	if (k == 0) {
		r = p11km_fail(P11KM_ERR_INPUT, "the request names no DNS name or IP address in its "
		               "subjectAltName: an ACME CA cannot validate it; make it with 'p11km req "
		               "new --san DNS:NAME'");
		goto out;
	}
	*types = t;
	*values = v;
	*n = k;
	t = NULL;
	v = NULL;
	k = 0;
out:
	for (size_t i = 0; i < k; i++)
		free(v[i]);
	free(t);
	free(v);
	GENERAL_NAMES_free(gens);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return r;
}
