/* ca-acme-order.c: submitting a request to an ACME CA (RFC 8555 7.4).
 *
 * directory -> newNonce -> the account (ca-acme-account.c) -> newOrder with
 * the request's identifiers -> authorizations (ca-acme-authz.c) -> finalize
 * with the token-signed request -> poll -> certificate, and with
 * --preferred-chain the alternate chains the CA links.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ca-acme.h"
#include "p11km/ca.h"
#include "p11km/cert.h"
#include "p11km/http.h"
#include "p11km/util.h"

static char *
order_payload(X509_REQ *req, int *rv)
{
	const char **types = NULL;
	char **values = NULL, *text = NULL;
	json_t *o = json_object(), *ids = json_array();
	size_t n = 0;

	if ((*rv = p11km_req_identifiers(req, &types, &values, &n)) == 0) {
		for (size_t i = 0; i < n; i++) {
			json_t *id = json_object();
			json_object_set_new(id, "type", json_string(types[i]));
			json_object_set_new(id, "value", json_string(values[i]));
			json_array_append_new(ids, id);
			free(values[i]);
		}
		json_object_set(o, "identifiers", ids);
		if ((text = json_dumps(o, JSON_COMPACT)) == NULL)
			*rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	free(types);
	free(values);
	json_decref(ids);
	json_decref(o);
	return text;
}

/* The order until it is valid (*order replaced by its last state): with a
 * budget (sub->max_wait), an order still processing past it leaves the
 * submit pending, its URL the cookie the next run resumes with. */
static int
order_wait(struct acme *a, json_t **order)
{
	const char *st = json_string_value(json_object_get(*order, "status"));
	int rv = 0;

	/* an order that is valid at once needs no poll (one signature less) */
	if (st == NULL || strcmp(st, "valid") != 0) {
		a->budget = a->sub->max_wait;
		rv = acme_poll_until(a, a->sub->order_url, "the order", "processing", "ready", order);
		a->budget = 0;
		if (rv < 0)
			return rv;
	}
	st = json_string_value(json_object_get(*order, "status"));
	if (rv == 1) {
		free(a->sub->cookie);
		if ((a->sub->cookie = strdup(a->sub->order_url)) == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		a->sub->pending = 1;
		acme_step(a, "processing", a->sub->order_url);
		return 0;
	}
	if (st == NULL || strcmp(st, "valid") != 0) {
		json_t *err = json_object_get(*order, "error");
		return err ? acme_problem(a, "the order", NULL, err)
		           : p11km_fail(P11KM_ERR_FAILED, "the order is %s after finalize",
		                        st ? st : "of unknown status");
	}
	acme_step(a, "finalized", a->sub->order_url);
	return 0;
}

static int
finalize(struct acme *a, json_t **order, const unsigned char *csr, size_t csr_len)
{
	const char *fin;
	char *b64 = NULL, *pl = NULL;
	json_t *o = NULL;
	int rv;

	if ((rv = acme_url_member(a, *order, "finalize", "order", &fin)) < 0)
		return rv;
	if ((b64 = p11km_b64url(csr, csr_len)) == NULL ||
	    (pl = p11km_asprintf("{\"csr\":\"%s\"}", b64)) == NULL) {
		rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rv = acme_post_json(a, fin, pl, "the finalize request", &o, NULL)) < 0)
		goto out;
	json_decref(*order);
	*order = o;
	o = NULL;
	rv = order_wait(a, order);
out:
	json_decref(o);
	free(b64);
	free(pl);
	return rv;
}

/* An order an earlier run left processing (sub->cookie_in): 1 when it is
 * resumed (*order its state, finalized or still processing), 0 when it is
 * gone or failed (a new order is made; said in a note). */
static int
order_resume(struct acme *a, json_t **order, const unsigned char *csr, size_t csr_len)
{
	const char *st;
	int rv;

	if (acme_check_origin(a, a->sub->cookie_in, "the pending order") < 0 ||
	    (a->sub->order_url = strdup(a->sub->cookie_in)) == NULL ||
	    acme_post_json(a, a->sub->order_url, NULL, "the pending order", order, NULL) < 0) {
		p11km_note("the order '%s' an earlier run left is gone (%s); a new order",
		           a->sub->cookie_in, p11km_errmsg(-1));
		goto fresh;
	}
	st = json_string_value(json_object_get(*order, "status"));
	acme_step(a, "order", a->sub->order_url);
	if (st != NULL && (strcmp(st, "processing") == 0 || strcmp(st, "valid") == 0))
		return (rv = order_wait(a, order)) < 0 ? rv : 1;
	if (st != NULL && strcmp(st, "ready") == 0)
		return (rv = finalize(a, order, csr, csr_len)) < 0 ? rv : 1;
	p11km_note("the order '%s' an earlier run left is %s; a new order", a->sub->cookie_in,
	           st ? st : "of unknown status");
fresh:
	p11km_error_clear();
	json_decref(*order);
	*order = NULL;
	free(a->sub->order_url);
	a->sub->order_url = NULL;
	return 0;
}

/* One chain (POST-as-GET of u): its content type, its certificates, and a
 * leaf for the request's key. */
static int
fetch_chain(struct acme *a, const char *u, X509_REQ *req, struct p11km_http_resp *r,
            STACK_OF(X509) **certs)
{
	int rv;

	*certs = NULL;
	if ((rv = acme_post(a, u, NULL, 0, r)) < 0)
		return rv;
	if (r->status != 200) {
		json_t *o = NULL;
		rv = acme_answer_json(a, "the certificate download", u, r, &o);
		json_decref(o);
		if (rv == 0)
			rv = p11km_fail(P11KM_ERR_INPUT, "the certificate download answered HTTP %ld", r->status);
	} else if (r->content_type == NULL || strcmp(r->content_type, "application/pem-certificate-chain") != 0) {
		rv = p11km_fail(P11KM_ERR_INPUT, "the CA sent the certificate as '%s', not "
		                "application/pem-certificate-chain", r->content_type ? r->content_type : "none");
	} else if ((rv = p11km_certs_parse(r->body, r->body_len, "the CA's certificate chain",
	                                   P11KM_REPLY_MAX_CERTS, certs)) == 0 &&
	           EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(*certs, 0)), X509_REQ_get0_pubkey(req)) != 1) {
		rv = p11km_fail(P11KM_ERR_VERIFY, "the CA's certificate is for another key than the "
		                "request's; refused");
	}
	if (rv < 0) {
		sk_X509_pop_free(*certs, X509_free);
		*certs = NULL;
		p11km_http_resp_release(r);
	}
	return rv;
}

/* The common name of the issuer of the chain's top certificate (into buf). */
static const char *
top_issuer_cn(STACK_OF(X509) *certs, char *buf, size_t size)
{
	X509_NAME *n = X509_get_issuer_name(sk_X509_value(certs, sk_X509_num(certs) - 1));

	buf[0] = '\0';
	if (X509_NAME_get_text_by_NID(n, NID_commonName, buf, (int)size) < 0)
		buf[0] = '\0';
	return buf;
}

static int
download(struct acme *a, json_t *order, X509_REQ *req, char **chain, size_t *chain_len)
{
	const char *pref = a->sub->preferred_chain, *u;
	struct p11km_http_resp r, alt;
	STACK_OF(X509) *certs = NULL, *ac = NULL;
	char cn[256];
	int rv;

	if ((rv = acme_url_member(a, order, "certificate", "order", &u)) < 0)
		return rv;
	if ((a->sub->cert_url = strdup(u)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((rv = fetch_chain(a, u, req, &r, &certs)) < 0)
		return rv;
	/* an alternate chain only when the default one is not the preferred */
	for (size_t i = 0; pref != NULL && strcmp(top_issuer_cn(certs, cn, sizeof(cn)), pref) != 0 &&
	                   i < r.n_link_alt; i++) {
		if (!p11km_http_same_origin(r.link_alt[i], a->p->directory)) {
			p11km_verbose("alternate chain '%s' is on another origin; skipped", r.link_alt[i]);
			continue;
		}
		if ((rv = fetch_chain(a, r.link_alt[i], req, &alt, &ac)) < 0) {
			/* the certificate is issued: a bad alternate costs it nothing */
			p11km_warn("alternate chain skipped: %s", p11km_errmsg(rv));
			rv = 0;
			continue;
		}
		if (strcmp(top_issuer_cn(ac, cn, sizeof(cn)), pref) == 0) {
			p11km_http_resp_release(&r);
			sk_X509_pop_free(certs, X509_free);
			r = alt;
			certs = ac;
			break;
		}
		p11km_http_resp_release(&alt);
		sk_X509_pop_free(ac, X509_free);
	}
	top_issuer_cn(certs, cn, sizeof(cn));
	if (pref != NULL && strcmp(cn, pref) != 0)
		p11km_note("no chain the CA offers (%zu alternates) ends below '%s'; the default "
		           "chain (below '%s') is kept", r.n_link_alt, pref, cn);
	*chain = (char *)r.body;
	*chain_len = r.body_len;
	r.body = NULL;
	acme_step(a, "certificate", u);
	if (pref != NULL)
		acme_step(a, "chain", cn);
	sk_X509_pop_free(certs, X509_free);
	p11km_http_resp_release(&r);
	return rv;
}

int
p11km_acme_submit(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                  const unsigned char *csr, size_t csr_len, struct p11km_ca_submit *sub,
                  char **chain, size_t *chain_len)
{
	struct acme a;
	const unsigned char *q = csr;
	X509_REQ *req = d2i_X509_REQ(NULL, &q, (long)csr_len);
	json_t *order = NULL;
	char *pl = NULL;
	struct p11km_http01 probe;
	int rv;

	acme_init(&a, ctx, p, sub);
	*chain = NULL;
	*chain_len = 0;
	if (req == NULL || q != csr + csr_len) {
		X509_REQ_free(req);
		return p11km_fail(P11KM_ERR_INPUT, "the request does not parse as one PKCS#10 request");
	}
	/* everything that can be refused here is refused before the CA sees anything */
	if ((pl = order_payload(req, &rv)) == NULL)
		goto out;
	if (sub->standalone == NULL && sub->webroot == NULL && sub->dns_hook == NULL) {
		rv = p11km_http01_init(&probe, NULL, NULL);
		goto out;
	}
	if (p->account_key == NULL) {
		rv = p11km_fail(P11KM_ERR_USAGE, "CA profile '%s' has no account key", p->name);
		goto out;
	}
	/* the directory first: a CA that cannot be reached changes nothing here
	 * (not even a new account key file) */
	if ((rv = acme_directory(&a, 0)) < 0 || (rv = acme_account(&a)) < 0)
		goto out;
	if (sub->cookie_in != NULL && (rv = order_resume(&a, &order, csr, csr_len)) < 0)
		goto out;
	rv = 0;
	if (order == NULL) {
		if ((rv = acme_post_json(&a, a.new_order, pl, "the new order", &order,
		                         &sub->order_url)) < 0)
			goto out;
		acme_step(&a, "order", sub->order_url);
		if ((rv = acme_authorize(&a, order, sub)) < 0 ||
		    (rv = finalize(&a, &order, csr, csr_len)) < 0)
			goto out;
	}
	if (!sub->pending)
		rv = download(&a, order, req, chain, chain_len);
out:
	acme_done(&a);
	free(pl);
	json_decref(order);
	X509_REQ_free(req);
	return rv;
}
