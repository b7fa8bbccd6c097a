/* ca-acme-revoke.c: revokeCert (RFC 8555 7.6), signed by the account key
 * (the account that ordered the certificate) or by the certificate's own
 * key (its jwk in the header: no account needed, as when the account key
 * is lost). */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ca-acme.h"
#include "p11km/ca.h"
#include "p11km/util.h"

static const char *const reasons[] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
	"cessationOfOperation", "certificateHold", NULL, "removeFromCRL", "privilegeWithdrawn",
	"aACompromise",
};

int
p11km_revoke_reason(const char *name)
{
	char *end;
	long v = strtol(name, &end, 10);

	if (*name != '\0' && *end == '\0')
		return v >= 0 && v <= 10 && v != 7 ? (int)v : -1;
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i] != NULL && strcasecmp(reasons[i], name) == 0)
			return (int)i;
	return -1;
}

int
p11km_acme_revoke(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                  const unsigned char *der, size_t der_len, int reason,
                  const char *cert_key, struct p11km_ca_submit *sub)
{
	struct p11km_account_key ck;
	struct p11km_http_resp r;
	const unsigned char *q = der;
	X509 *cert = d2i_X509(NULL, &q, (long)der_len);
	char *b64 = NULL, *pl = NULL;
	json_t *o = NULL;
	struct acme a;
	int rv;

	memset(&ck, 0, sizeof(ck));
	memset(&r, 0, sizeof(r));
	acme_init(&a, ctx, p, sub);
	if (cert == NULL || q != der + der_len) {
		rv = p11km_fail(P11KM_ERR_INPUT, "the certificate to revoke does not parse");
		goto out;
	}
	if ((b64 = p11km_b64url(der, der_len)) == NULL ||
	    (pl = p11km_asprintf("{\"certificate\":\"%s\",\"reason\":%d}", b64, reason)) == NULL) {
		rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rv = acme_directory(&a, 0)) < 0)
		goto out;
	if (a.revoke_cert == NULL) {
		rv = p11km_fail(P11KM_ERR_UNSUPPORTED, "the CA's directory has no revokeCert");
		goto out;
	}
	if (cert_key != NULL) {
		/* the certificate's key: refused before anything is signed if it is another */
		if (strncmp(cert_key, "pkcs11:", 7) != 0 && access(cert_key, F_OK) != 0) {
			rv = p11km_fail(P11KM_ERR_USAGE, "--cert-key '%s': no such file", cert_key);
			goto out;
		}
		if ((rv = p11km_account_key_open(ctx, cert_key, &ck)) < 0)
			goto out;
		if (EVP_PKEY_eq(ck.pub, X509_get0_pubkey(cert)) != 1) {
			rv = p11km_fail(P11KM_ERR_USAGE, "--cert-key '%s' is not the certificate's key",
			                cert_key);
			goto out;
		}
		rv = acme_post_by(&a, &ck, a.revoke_cert, pl, 1, &r);
	} else {
		if ((rv = acme_account(&a)) < 0)
			goto out;
		rv = acme_post(&a, a.revoke_cert, pl, 0, &r);
	}
	if (rv < 0)
		goto out;
	if (r.status != 200) {
		if ((rv = acme_answer_json(&a, "the revocation", a.revoke_cert, &r, &o)) == 0)
			rv = p11km_fail(P11KM_ERR_INPUT, "the revocation answered HTTP %ld", r.status);
		goto out;
	}
	acme_step(&a, "revoked", reasons[reason] ? reasons[reason] : "?");
out:
	a.extra_signatures += ck.signatures;
	p11km_account_key_release(&ck);
	acme_done(&a);
	p11km_http_resp_release(&r);
	json_decref(o);
	X509_free(cert);
	free(b64);
	free(pl);
	return rv;
}
