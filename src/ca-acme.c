/* ca-acme.c: submitting a request to an ACME CA (RFC 8555).
 *
 * directory -> newNonce -> newAccount (terms agreed, or onlyReturnExisting:
 * the account URL is found again every run, never cached) -> newOrder with
 * the request's identifiers -> authorizations (http-01) -> finalize with the
 * token-signed request -> poll -> certificate.  Every POST is one JWS, so
 * one signature by the account key.  Every URL the CA hands out must be on
 * the directory's origin; every answer is checked for its status, content
 * type and shape before use; a problem document becomes one line.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ca-acme.h"
#include "p11km/ca.h"
#include "p11km/cert.h"
#include "p11km/http.h"
#include "p11km/util.h"

#define ACME_NONCE_RETRIES 8   /* attempts per request while the CA answers badNonce */
#define ACME_POLLS 60          /* polls of one authorization or order */
#define ACME_POLL_MAX_WAIT 10  /* seconds: a longer Retry-After is cut to this */


void
acme_step(struct acme *a, const char *name, const char *detail)
{
	if (a->sub != NULL && a->sub->step != NULL)
		a->sub->step(a->sub->step_arg, name, detail);
}

/* --- answers ------------------------------------------------------------------------ */

/* One line from a problem document (RFC 7807 / RFC 8555 6.7). */
int
acme_problem(struct acme *a, const char *what, const struct p11km_http_resp *r, json_t *doc)
{
	const char *type = json_string_value(json_object_get(doc, "type"));
	const char *detail = json_string_value(json_object_get(doc, "detail"));
	const char *instance = json_string_value(json_object_get(doc, "instance"));
	json_t *subs = json_object_get(doc, "subproblems"), *sp;
	struct p11km_buf b = { 0 };
	const char *t = type ? type : "about:blank";
	char *line = NULL;
	size_t i;
	int r_;

	if (strncmp(t, "urn:ietf:params:acme:error:", 27) == 0)
		t += 27;
	json_array_foreach(subs, i, sp) {
		const char *st = json_string_value(json_object_get(sp, "type"));
		const char *sd = json_string_value(json_object_get(sp, "detail"));
		const char *iv = json_string_value(json_object_get(json_object_get(sp, "identifier"), "value"));
		char *one = p11km_asprintf("%s%s: %s: %s", i ? "; " : "; subproblems: ", iv ? iv : "?",
		                           st && strncmp(st, "urn:ietf:params:acme:error:", 27) == 0 ? st + 27
		                                                                     : st ? st : "?",
		                           sd ? sd : "");
		if (one == NULL || p11km_buf_append(&b, one, strlen(one)) < 0) {
			free(one);
			p11km_buf_release(&b);
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		}
		free(one);
		if (i >= 8)
			break;
	}
	p11km_buf_append(&b, "", 1);
	if (strcmp(t, "rateLimited") == 0 && r != NULL && r->retry_after != NULL)
		line = p11km_asprintf("; try again after %s", r->retry_after);
	else if (strcmp(t, "userActionRequired") == 0 && instance != NULL)
		line = p11km_asprintf("; visit %s", instance);
	char status[32] = "";
	if (r != NULL)
		snprintf(status, sizeof(status), " (HTTP %ld)", r->status);
	r_ = p11km_fail(P11KM_ERR_FAILED, "the CA refused %s: %s: %s%s%s%s", what, t,
	                detail ? detail : "(no detail)", b.data ? (char *)b.data : "",
	                line ? line : "", status);
	free(line);
	p11km_buf_release(&b);
	return r_;
}

/* The JSON object of an answer: status 2xx, application/json (or problem+json
 * for errors), a valid object.  *out owned by the caller. */
int
acme_answer_json(struct acme *a, const char *what, const char *url, const struct p11km_http_resp *r,
            json_t **out)
{
	json_error_t je;
	json_t *o;
	int is_problem = r->content_type && strcmp(r->content_type, "application/problem+json") == 0;

	*out = NULL;
	if (r->status >= 400 && is_problem && (o = json_loadb((const char *)r->body, r->body_len, 0, &je)) != NULL) {
		int rv = json_is_object(o) ? acme_problem(a, what, r, o)
		                           : p11km_fail(P11KM_ERR_INPUT, "the CA's error for %s is not "
		                                        "a JSON object (HTTP %ld)", what, r->status);
		json_decref(o);
		return rv;
	}
	if (r->status >= 400)
		return p11km_fail(P11KM_ERR_FAILED, "the CA refused %s: HTTP %ld%s%.*s", what, r->status,
		                  r->body_len ? ": " : "", (int)(r->body_len > 200 ? 200 : r->body_len),
		                  (const char *)r->body);
	if (r->status < 200 || r->status > 299)
		return p11km_fail(P11KM_ERR_INPUT, "unexpected HTTP %ld from '%s' for %s", r->status,
		                  url, what);
	if (r->content_type == NULL || strcmp(r->content_type, "application/json") != 0)
		return p11km_fail(P11KM_ERR_INPUT, "the CA answered %s with content type '%s', not "
		                  "application/json", what, r->content_type ? r->content_type : "none");
	if ((o = json_loadb((const char *)r->body, r->body_len, JSON_REJECT_DUPLICATES, &je)) == NULL)
		return p11km_fail(P11KM_ERR_INPUT, "the CA's answer to %s is not valid JSON (line %d: "
		                  "%s)", what, je.line, je.text);
	if (!json_is_object(o)) {
		json_decref(o);
		return p11km_fail(P11KM_ERR_INPUT, "the CA's answer to %s is not a JSON object", what);
	}
	*out = o;
	return 0;
}

/* A URL member of o that must be an https URL on the directory's origin. */
int
acme_url_member(struct acme *a, json_t *o, const char *key, const char *what, const char **out)
{
	const char *u = json_string_value(json_object_get(o, key));

	*out = NULL;
	if (u == NULL)
		return p11km_fail(P11KM_ERR_INPUT, "the CA's %s has no \"%s\" URL", what, key);
	if (!p11km_http_same_origin(u, a->p->directory))
		return p11km_fail(P11KM_ERR_INPUT, "the CA's %s points \"%s\" to '%s', another origin "
		                  "than the directory '%s'; refused", what, key, u, a->p->directory);
	*out = u;
	return 0;
}

int
acme_check_origin(struct acme *a, const char *u, const char *what)
{
	if (u == NULL)
		return p11km_fail(P11KM_ERR_INPUT, "the CA's answer to %s has no Location", what);
	if (!p11km_http_same_origin(u, a->p->directory))
		return p11km_fail(P11KM_ERR_INPUT, "the CA's answer to %s points to '%s', another "
		                  "origin than the directory; refused", what, u);
	return 0;
}

/* --- requests ------------------------------------------------------------------------ */

static void
take_nonce(struct acme *a, struct p11km_http_resp *r)
{
	if (r->replay_nonce != NULL && r->replay_nonce[0] != '\0' &&
	    strspn(r->replay_nonce, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
	        == strlen(r->replay_nonce)) {
		free(a->nonce);
		a->nonce = r->replay_nonce;
		r->replay_nonce = NULL;
	}
}

static int
fresh_nonce(struct acme *a)
{
	struct p11km_http_resp r;
	int rv;

	if ((rv = p11km_http_request(&a->http, "HEAD", a->new_nonce, NULL, NULL, 0, &r)) < 0)
		return rv;
	take_nonce(a, &r);
	if (r.status != 200 && r.status != 204)
		rv = p11km_fail(P11KM_ERR_INPUT, "newNonce answered HTTP %ld", r.status);
	else if (a->nonce == NULL)
		rv = p11km_fail(P11KM_ERR_INPUT, "the CA's newNonce gave no Replay-Nonce");
	p11km_http_resp_release(&r);
	return rv;
}

static int
is_bad_nonce(const struct p11km_http_resp *r)
{
	json_t *o;
	int bad = 0;

	if (r->status != 400 || r->content_type == NULL ||
	    strcmp(r->content_type, "application/problem+json") != 0)
		return 0;
	if ((o = json_loadb((const char *)r->body, r->body_len, 0, NULL)) != NULL) {
		const char *t = json_string_value(json_object_get(o, "type"));
		bad = t != NULL && strcmp(t, "urn:ietf:params:acme:error:badNonce") == 0;
		json_decref(o);
	}
	return bad;
}

int
acme_post_by(struct acme *a, struct p11km_account_key *k, const char *url, const char *payload,
             int use_jwk, struct p11km_http_resp *r)
{
	char *jws = NULL;
	int rv;

	if (k == NULL)
		k = &a->key;
	for (int attempt = 0;; attempt++) {
		if (a->nonce == NULL && (rv = fresh_nonce(a)) < 0)
			return rv;
		rv = p11km_jws_sign(k, url, a->nonce, use_jwk ? NULL : a->kid, payload, &jws);
		free(a->nonce);
		a->nonce = NULL;
		if (rv < 0)
			return rv;
		rv = p11km_http_request(&a->http, "POST", url, "application/jose+json", jws,
		                        strlen(jws), r);
		free(jws);
		jws = NULL;
		if (rv < 0)
			return rv;
		take_nonce(a, r);
		if (!is_bad_nonce(r) || attempt + 1 >= ACME_NONCE_RETRIES)
			return 0;
		a->bad_nonces++;
		p11km_verbose("the CA rejected the nonce (badNonce); retrying with a fresh one");
		p11km_http_resp_release(r);
	}
}

int
acme_post(struct acme *a, const char *url, const char *payload, int use_jwk, struct p11km_http_resp *r)
{
	return acme_post_by(a, NULL, url, payload, use_jwk, r);
}

int
acme_post_json(struct acme *a, const char *url, const char *payload, const char *what, json_t **out,
          char **location)
{
	struct p11km_http_resp r;
	int rv;

	if ((rv = acme_post(a, url, payload, 0, &r)) < 0)
		return rv;
	if ((rv = acme_answer_json(a, what, url, &r, out)) == 0 && location != NULL) {
		if ((rv = acme_check_origin(a, r.location, what)) == 0) {
			*location = r.location;
			r.location = NULL;
		} else {
			json_decref(*out);
			*out = NULL;
		}
	}
	p11km_http_resp_release(&r);
	return rv;
}

/* --- the steps ------------------------------------------------------------------------ */

/* An optional URL member: absent is NULL, present must be on the origin. */
static int
opt_url(struct acme *a, const char *key, const char **out)
{
	*out = NULL;
	return json_object_get(a->dir, key) == NULL ? 0 : acme_url_member(a, a->dir, key, "directory", out);
}

int
acme_directory(struct acme *a, int lookup_only)
{
	struct p11km_http_resp r;
	int rv;

	if (strncmp(a->p->directory, "https://", 8) != 0)
		return p11km_fail(P11KM_ERR_USAGE, "the ACME directory '%s' is not an https URL",
		                  a->p->directory);
	if ((rv = p11km_http_request(&a->http, "GET", a->p->directory, NULL, NULL, 0, &r)) < 0)
		return rv;
	rv = acme_answer_json(a, "the directory request", a->p->directory, &r, &a->dir);
	p11km_http_resp_release(&r);
	if (rv < 0)
		return rv;
	if (!lookup_only &&
	    ((rv = acme_url_member(a, a->dir, "newNonce", "directory", &a->new_nonce)) < 0 ||
	     (rv = acme_url_member(a, a->dir, "newAccount", "directory", &a->new_account)) < 0 ||
	     (rv = acme_url_member(a, a->dir, "newOrder", "directory", &a->new_order)) < 0))
		return rv;
	if ((rv = opt_url(a, "keyChange", &a->key_change)) < 0 ||
	    (rv = opt_url(a, "revokeCert", &a->revoke_cert)) < 0 ||
	    (rv = opt_url(a, "renewalInfo", &a->renewal_info)) < 0)
		return rv;
	acme_step(a, "directory", a->p->directory);
	return 0;
}

void
acme_init(struct acme *a, struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
          struct p11km_ca_submit *sub)
{
	memset(a, 0, sizeof(*a));
	a->ctx = ctx;
	a->p = p;
	a->sub = sub;
	a->http.ca_file = p->ca_file;
	a->http.timeout = p->timeout;
	a->key.s.logged_in = (CK_USER_TYPE)-1;
}

void
acme_done(struct acme *a)
{
	if (a->sub != NULL) {
		a->sub->signatures += a->key.signatures + a->extra_signatures;
		a->sub->requests += a->http.requests;
		a->sub->bad_nonces += a->bad_nonces;
	}
	free(a->nonce);
	free(a->kid);
	json_decref(a->dir);
	p11km_account_key_release(&a->key);
	memset(a, 0, sizeof(*a));
}

static unsigned
retry_wait(const struct p11km_http_resp *r)
{
	long s = r != NULL && r->retry_after != NULL ? strtol(r->retry_after, NULL, 10) : 1;

	return s < 1 ? 1u : s > ACME_POLL_MAX_WAIT ? ACME_POLL_MAX_WAIT : (unsigned)s;
}

/* Poll url (POST-as-GET) until its status is not one of the waiting states. */
int
acme_poll_until(struct acme *a, const char *url, const char *what, const char *wait1,
           const char *wait2, json_t **obj)
{
	for (int i = 0; i < ACME_POLLS; i++) {
		struct p11km_http_resp r;
		const char *st;
		json_t *o = NULL;
		int rv;
		if ((rv = acme_post(a, url, NULL, 0, &r)) < 0)
			return rv;
		rv = acme_answer_json(a, what, url, &r, &o);
		if (rv < 0) {
			p11km_http_resp_release(&r);
			return rv;
		}
		st = json_string_value(json_object_get(o, "status"));
		if (st == NULL || (strcmp(st, wait1) != 0 && (wait2 == NULL || strcmp(st, wait2) != 0))) {
			json_decref(*obj);
			*obj = o;
			p11km_http_resp_release(&r);
			return 0;
		}
		json_decref(o);
		sleep(retry_wait(&r));
		p11km_http_resp_release(&r);
	}
	return p11km_fail(P11KM_ERR_FAILED, "%s is still pending after %d polls; run the same "
	                  "command again later", what, ACME_POLLS);
}

/* The order's identifiers: those of the request. */
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

static int
finalize(struct acme *a, json_t **order, const unsigned char *csr, size_t csr_len)
{
	const char *fin, *st;
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
	st = json_string_value(json_object_get(o, "status"));
	/* an order that is valid at once needs no poll (one signature less) */
	if ((st == NULL || strcmp(st, "valid") != 0) &&
	    (rv = acme_poll_until(a, a->sub->order_url, "the order", "processing", "ready", &o)) < 0)
		goto out;
	st = json_string_value(json_object_get(o, "status"));
	if (st == NULL || strcmp(st, "valid") != 0) {
		json_t *err = json_object_get(o, "error");
		rv = err ? acme_problem(a, "the order", NULL, err)
		         : p11km_fail(P11KM_ERR_FAILED, "the order is %s after finalize",
		                      st ? st : "of unknown status");
		goto out;
	}
	json_decref(*order);
	*order = o;
	o = NULL;
	acme_step(a, "finalized", a->sub->order_url);
out:
	json_decref(o);
	free(b64);
	free(pl);
	return rv;
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
		if ((rv = fetch_chain(a, r.link_alt[i], req, &alt, &ac)) < 0)
			goto out;
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
out:
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
	if ((rv = acme_post_json(&a, a.new_order, pl, "the new order", &order, &sub->order_url)) < 0)
		goto out;
	acme_step(&a, "order", sub->order_url);
	if ((rv = acme_authorize(&a, order, sub)) < 0 || (rv = finalize(&a, &order, csr, csr_len)) < 0 ||
	    (rv = download(&a, order, req, chain, chain_len)) < 0)
		goto out;
out:
	acme_done(&a);
	free(pl);
	json_decref(order);
	X509_REQ_free(req);
	return rv;
}

void
p11km_ca_submit_release(struct p11km_ca_submit *sub)
{
	free(sub->order_url);
	free(sub->cert_url);
	free(sub->cookie);
	sub->order_url = sub->cert_url = sub->cookie = NULL;
}
