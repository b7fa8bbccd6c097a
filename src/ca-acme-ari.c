/* ca-acme-ari.c: ACME Renewal Information (RFC 9773).
 *
 * When the CA's directory has renewalInfo, GET renewalInfo/CERT-ID answers
 * the window in which the CA suggests renewing the certificate (it may move
 * it earlier, e.g. before a mass revocation).  The renewal tracker asks for
 * it with p11km_acme_renewal_window(); no account key is needed.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509v3.h>

#include "ca-acme.h"
#include "p11km/ca.h"
#include "p11km/util.h"

#define ARI_MAX_RETRY_AFTER (7L * 86400) /* seconds: a longer Retry-After is cut to this */

char *
p11km_ari_cert_id(X509 *cert)
{
	AUTHORITY_KEYID *akid = X509_get_ext_d2i(cert, NID_authority_key_identifier, NULL, NULL);
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	unsigned char buf[64], *start = buf + 1;
	char *a = NULL, *b = NULL, *id = NULL;
	size_t n;

	if (akid == NULL || akid->keyid == NULL || bn == NULL || BN_is_negative(bn) ||
	    BN_num_bytes(bn) > (int)sizeof(buf) - 1)
		goto out;
	/* the DER INTEGER's content octets: a leading 0 when the high bit is set */
	buf[0] = 0;
	n = (size_t)BN_bn2bin(bn, buf + 1);
	if (n == 0 || (buf[1] & 0x80) != 0) {
		start = buf;
		n++;
	}
	if ((a = p11km_b64url(ASN1_STRING_get0_data(akid->keyid),
	                      (size_t)ASN1_STRING_length(akid->keyid))) != NULL &&
	    (b = p11km_b64url(start, n)) != NULL)
		id = p11km_asprintf("%s.%s", a, b);
out:
	AUTHORITY_KEYID_free(akid);
	BN_free(bn);
	free(a);
	free(b);
	return id;
}

/* An RFC 3339 date-time (UTC "Z" or an offset; fractions ignored). */
static int
rfc3339(const char *s, time_t *out)
{
	struct tm tm;
	const char *p;
	int oh = 0, om = 0, sign = 0;

	memset(&tm, 0, sizeof(tm));
	if (s == NULL || (p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return -1;
	if (*p == '.')
		p += 1 + strspn(p + 1, "0123456789");
	if (*p == 'Z' || *p == 'z')
		p++;
	else if ((*p == '+' || *p == '-') && sscanf(p + 1, "%2d:%2d", &oh, &om) == 2 &&
	         strlen(p) == 6) {
		sign = *p == '+' ? 1 : -1;
		p += 6;
	} else
		return -1;
	if (*p != '\0')
		return -1;
	*out = timegm(&tm) - sign * (oh * 3600 + om * 60);
	return 0;
}

static int
parse_window(const char *url, json_t *o, struct p11km_renewal_window *w)
{
	json_t *sw = json_object_get(o, "suggestedWindow");
	const char *ex = json_string_value(json_object_get(o, "explanationURL"));

	if (!json_is_object(sw) ||
	    rfc3339(json_string_value(json_object_get(sw, "start")), &w->start) < 0 ||
	    rfc3339(json_string_value(json_object_get(sw, "end")), &w->end) < 0)
		return p11km_fail(P11KM_ERR_INPUT, "the renewal information from '%s' has no "
		                  "suggestedWindow with RFC 3339 start and end", url);
	if (w->end < w->start)
		return p11km_fail(P11KM_ERR_INPUT, "the renewal window from '%s' ends before it "
		                  "starts", url);
	if (ex != NULL && strncmp(ex, "https://", 8) == 0 && p11km_config_safe(ex) &&
	    (w->explanation = strdup(ex)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return 0;
}

int
p11km_acme_renewal_window(struct p11km_ctx *ctx, const struct p11km_ca_profile *p, X509 *cert,
                          struct p11km_renewal_window *w)
{
	struct p11km_http_resp r;
	json_t *o = NULL;
	char *url = NULL;
	struct acme a;
	int rv;

	memset(w, 0, sizeof(*w));
	memset(&r, 0, sizeof(r));
	acme_init(&a, ctx, p, NULL);
	if ((w->cert_id = p11km_ari_cert_id(cert)) == NULL) {
		rv = p11km_fail(P11KM_ERR_INPUT, "the certificate has no authority key identifier: "
		                "no ARI certificate id");
		goto out;
	}
	if ((rv = acme_directory(&a, 1)) < 0)
		goto out;
	if (a.renewal_info == NULL) {
		rv = p11km_fail(P11KM_ERR_UNSUPPORTED, "the CA's directory '%s' has no renewalInfo "
		                "(RFC 9773): renew by the certificate's dates", p->directory);
		goto out;
	}
	if ((url = p11km_asprintf("%s%s%s", a.renewal_info,
	                          a.renewal_info[strlen(a.renewal_info) - 1] == '/' ? "" : "/",
	                          w->cert_id)) == NULL) {
		rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rv = p11km_http_request(&a.http, "GET", url, NULL, NULL, 0, &r)) < 0 ||
	    (rv = acme_answer_json(&a, "the renewal information request", url, &r, &o)) < 0 ||
	    (rv = parse_window(url, o, w)) < 0)
		goto out;
	if (r.retry_after != NULL) {
		long s = strtol(r.retry_after, NULL, 10);
		w->retry_after = s < 0 ? 0 : s > ARI_MAX_RETRY_AFTER ? ARI_MAX_RETRY_AFTER : s;
	}
out:
	if (rv < 0)
		p11km_renewal_window_release(w);
	acme_done(&a);
	p11km_http_resp_release(&r);
	json_decref(o);
	free(url);
	return rv;
}

void
p11km_renewal_window_release(struct p11km_renewal_window *w)
{
	free(w->cert_id);
	free(w->explanation);
	memset(w, 0, sizeof(*w));
}
