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

#include "p11km/ca.h"
#include "p11km/cert.h"
#include "p11km/http.h"
#include "p11km/util.h"

#define ACME_NONCE_RETRIES 3   /* badNonce answers retried per request */
#define ACME_POLLS 60          /* polls of one authorization or order */
#define ACME_POLL_MAX_WAIT 10  /* seconds: a longer Retry-After is cut to this */
#define ACME_MAX_AUTHZ 100

struct acme {
	struct p11km_ctx *ctx;
	const struct p11km_ca_profile *p;
	struct p11km_ca_submit *sub;
	struct p11km_http http;
	struct p11km_account_key key;
	json_t *dir;
	const char *new_nonce, *new_account, *new_order; /* borrowed from dir */
	char *nonce, *kid;
};

static void
step(struct acme *a, const char *name, const char *detail)
{
	if (a->sub->step != NULL)
		a->sub->step(a->sub->step_arg, name, detail);
}

/* --- answers ------------------------------------------------------------------------ */

/* One line from a problem document (RFC 7807 / RFC 8555 6.7). */
static int
problem(struct acme *a, const char *what, const struct p11km_http_resp *r, json_t *doc)
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
static int
answer_json(struct acme *a, const char *what, const char *url, const struct p11km_http_resp *r,
            json_t **out)
{
	json_error_t je;
	json_t *o;
	int is_problem = r->content_type && strcmp(r->content_type, "application/problem+json") == 0;

	*out = NULL;
	if (r->status >= 400 && is_problem && (o = json_loadb((const char *)r->body, r->body_len, 0, &je)) != NULL) {
		int rv = json_is_object(o) ? problem(a, what, r, o)
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
static int
url_member(struct acme *a, json_t *o, const char *key, const char *what, const char **out)
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

static int
check_origin(struct acme *a, const char *u, const char *what)
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

/* A signed POST (payload NULL: POST-as-GET); badNonce is retried. */
static int
post(struct acme *a, const char *url, const char *payload, int use_jwk, struct p11km_http_resp *r)
{
	char *jws = NULL;
	int rv;

	for (int attempt = 0;; attempt++) {
		if (a->nonce == NULL && (rv = fresh_nonce(a)) < 0)
			return rv;
		rv = p11km_jws_sign(&a->key, url, a->nonce, use_jwk ? NULL : a->kid, payload, &jws);
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
		p11km_verbose("the CA rejected the nonce (badNonce); retrying with a fresh one");
		p11km_http_resp_release(r);
	}
}

static int
post_json(struct acme *a, const char *url, const char *payload, const char *what, json_t **out,
          char **location)
{
	struct p11km_http_resp r;
	int rv;

	if ((rv = post(a, url, payload, 0, &r)) < 0)
		return rv;
	if ((rv = answer_json(a, what, url, &r, out)) == 0 && location != NULL) {
		if ((rv = check_origin(a, r.location, what)) == 0) {
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

static int
directory(struct acme *a)
{
	struct p11km_http_resp r;
	int rv;

	if (strncmp(a->p->directory, "https://", 8) != 0)
		return p11km_fail(P11KM_ERR_USAGE, "the ACME directory '%s' is not an https URL",
		                  a->p->directory);
	if ((rv = p11km_http_request(&a->http, "GET", a->p->directory, NULL, NULL, 0, &r)) < 0)
		return rv;
	rv = answer_json(a, "the directory request", a->p->directory, &r, &a->dir);
	p11km_http_resp_release(&r);
	if (rv < 0)
		return rv;
	if ((rv = url_member(a, a->dir, "newNonce", "directory", &a->new_nonce)) < 0 ||
	    (rv = url_member(a, a->dir, "newAccount", "directory", &a->new_account)) < 0 ||
	    (rv = url_member(a, a->dir, "newOrder", "directory", &a->new_order)) < 0)
		return rv;
	step(a, "directory", a->p->directory);
	return 0;
}

static int
account(struct acme *a)
{
	json_t *pl = json_object(), *acct = NULL;
	struct p11km_http_resp r;
	char *text = NULL;
	const char *st;
	int rv;

	if (a->p->agree_tos) {
		json_object_set_new(pl, "termsOfServiceAgreed", json_true());
		if (a->p->contact != NULL) {
			json_t *c = json_array();
			json_array_append_new(c, json_string(a->p->contact));
			json_object_set_new(pl, "contact", c);
		}
	} else {
		json_object_set_new(pl, "onlyReturnExisting", json_true());
	}
	text = json_dumps(pl, JSON_COMPACT);
	json_decref(pl);
	if (text == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	rv = post(a, a->new_account, text, 1, &r);
	free(text);
	if (rv < 0)
		return rv;
	rv = answer_json(a, "the account", a->new_account, &r, &acct);
	if (rv < 0 && !a->p->agree_tos && strstr(p11km_errmsg(rv), "accountDoesNotExist") != NULL)
		rv = p11km_fail(P11KM_ERR_NOTFOUND, "the CA has no account for this account key; "
		                "read its terms of service and add the profile again with --agree-tos");
	if (rv == 0 && (rv = check_origin(a, r.location, "the account request")) == 0) {
		a->kid = r.location;
		r.location = NULL;
		st = json_string_value(json_object_get(acct, "status"));
		if (st == NULL || strcmp(st, "valid") != 0)
			rv = p11km_fail(P11KM_ERR_FAILED, "the ACME account '%s' is %s, not valid", a->kid,
			                st ? st : "of unknown status");
	}
	if (rv == 0)
		step(a, "account", a->kid);
	json_decref(acct);
	p11km_http_resp_release(&r);
	return rv;
}

static unsigned
retry_wait(const struct p11km_http_resp *r)
{
	long s = r != NULL && r->retry_after != NULL ? strtol(r->retry_after, NULL, 10) : 1;

	return s < 1 ? 1u : s > ACME_POLL_MAX_WAIT ? ACME_POLL_MAX_WAIT : (unsigned)s;
}

/* Poll url (POST-as-GET) until its status is not one of the waiting states. */
static int
poll_until(struct acme *a, const char *url, const char *what, const char *wait1,
           const char *wait2, json_t **obj)
{
	for (int i = 0; i < ACME_POLLS; i++) {
		struct p11km_http_resp r;
		const char *st;
		json_t *o = NULL;
		int rv;
		if ((rv = post(a, url, NULL, 0, &r)) < 0)
			return rv;
		rv = answer_json(a, what, url, &r, &o);
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

struct challenge {
	char *authz, *url, *token, *keyauth, *ident;
};

static void
challenges_free(struct challenge *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].authz);
		free(c[i].url);
		free(c[i].token);
		free(c[i].keyauth);
		free(c[i].ident);
	}
	free(c);
}

/* The http-01 challenge of a pending authorization. */
static int
authz_challenge(struct acme *a, const char *authz_url, json_t *az, struct challenge *c)
{
	const char *ident = json_string_value(json_object_get(json_object_get(az, "identifier"), "value"));
	json_t *chs = json_object_get(az, "challenges"), *ch;
	size_t i;

	json_array_foreach(chs, i, ch) {
		const char *type = json_string_value(json_object_get(ch, "type"));
		const char *tok = json_string_value(json_object_get(ch, "token"));
		const char *u;
		int rv;
		if (type == NULL || strcmp(type, "http-01") != 0)
			continue;
		if (tok == NULL || *tok == '\0' || strlen(tok) > 256 ||
		    strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != strlen(tok))
			return p11km_fail(P11KM_ERR_INPUT, "the CA's http-01 token for '%s' is not "
			                  "base64url; refused", ident ? ident : "?");
		if ((rv = url_member(a, ch, "url", "challenge", &u)) < 0)
			return rv;
		c->authz = strdup(authz_url);
		c->url = strdup(u);
		c->token = strdup(tok);
		c->keyauth = p11km_asprintf("%s.%s", tok, a->key.thumbprint);
		c->ident = strdup(ident ? ident : "?");
		if (!c->authz || !c->url || !c->token || !c->keyauth || !c->ident)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		return 0;
	}
	return p11km_fail(P11KM_ERR_UNSUPPORTED, "the CA offers no http-01 challenge for '%s' "
	                  "(only http-01 is built yet)", ident ? ident : "?");
}

static int
authorize(struct acme *a, json_t *order, const struct p11km_ca_submit *opts)
{
	json_t *azs = json_object_get(order, "authorizations"), *v;
	struct challenge *cs = NULL;
	char **toks = NULL, **kas = NULL;
	struct p11km_http01 h01;
	size_t i, n = 0;
	int rv = 0;

	memset(&h01, 0, sizeof(h01));
	h01.fd = -1;
	if (!json_is_array(azs) || json_array_size(azs) == 0 || json_array_size(azs) > ACME_MAX_AUTHZ)
		return p11km_fail(P11KM_ERR_INPUT, "the CA's order has no usable authorizations list");
	if ((cs = calloc(json_array_size(azs), sizeof(*cs))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	json_array_foreach(azs, i, v) {
		const char *u = json_string_value(v), *st;
		json_t *az = NULL;
		if (u == NULL || !p11km_http_same_origin(u, a->p->directory)) {
			rv = p11km_fail(P11KM_ERR_INPUT, "the CA's order lists an authorization URL on "
			                "another origin; refused");
			goto out;
		}
		if ((rv = post_json(a, u, NULL, "the authorization", &az, NULL)) < 0)
			goto out;
		st = json_string_value(json_object_get(az, "status"));
		if (st != NULL && strcmp(st, "valid") == 0) {
			json_decref(az);
			continue;
		}
		rv = st != NULL && strcmp(st, "pending") == 0 ? authz_challenge(a, u, az, &cs[n])
		     : p11km_fail(P11KM_ERR_FAILED, "an authorization of the order is %s",
		                  st ? st : "of unknown status");
		json_decref(az);
		if (rv < 0)
			goto out;
		n++;
	}
	step(a, "authorizations", n ? "http-01" : "already valid");
	if (n == 0)
		goto out;
	if ((rv = p11km_http01_init(&h01, opts->standalone, opts->webroot)) < 0)
		goto out;
	if ((toks = calloc(n, sizeof(*toks))) == NULL || (kas = calloc(n, sizeof(*kas))) == NULL) {
		rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		toks[i] = cs[i].token;
		kas[i] = cs[i].keyauth;
	}
	if ((rv = p11km_http01_start(&h01, toks, kas, n)) < 0)
		goto out;
	for (i = 0; i < n && rv == 0; i++) {
		json_t *ch = NULL, *az = NULL;
		const char *st;
		if ((rv = post_json(a, cs[i].url, "{}", "the challenge", &ch, NULL)) < 0)
			break;
		json_decref(ch);
		if ((rv = poll_until(a, cs[i].authz, "the authorization", "pending", "processing", &az)) < 0)
			break;
		st = json_string_value(json_object_get(az, "status"));
		if (st == NULL || strcmp(st, "valid") != 0) {
			json_t *chs = json_object_get(az, "challenges"), *c, *err = NULL;
			size_t k;
			json_array_foreach(chs, k, c)
				if (json_object_get(c, "error") != NULL)
					err = json_object_get(c, "error");
			char *what = p11km_asprintf("the http-01 validation of '%s'", cs[i].ident);
			rv = err ? problem(a, what ? what : "the validation", NULL, err)
			         : p11km_fail(P11KM_ERR_FAILED, "the authorization of '%s' is %s",
			                      cs[i].ident, st ? st : "of unknown status");
			free(what);
		} else {
			step(a, "validated", cs[i].ident);
		}
		json_decref(az);
	}
out:
	p11km_http01_stop(&h01);
	free(toks);
	free(kas);
	challenges_free(cs, json_is_array(azs) ? json_array_size(azs) : 0);
	return rv;
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

	if ((rv = url_member(a, *order, "finalize", "order", &fin)) < 0)
		return rv;
	if ((b64 = p11km_b64url(csr, csr_len)) == NULL ||
	    (pl = p11km_asprintf("{\"csr\":\"%s\"}", b64)) == NULL) {
		rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rv = post_json(a, fin, pl, "the finalize request", &o, NULL)) < 0)
		goto out;
	st = json_string_value(json_object_get(o, "status"));
	/* an order that is valid at once needs no poll (one signature less) */
	if ((st == NULL || strcmp(st, "valid") != 0) &&
	    (rv = poll_until(a, a->sub->order_url, "the order", "processing", "ready", &o)) < 0)
		goto out;
	st = json_string_value(json_object_get(o, "status"));
	if (st == NULL || strcmp(st, "valid") != 0) {
		json_t *err = json_object_get(o, "error");
		rv = err ? problem(a, "the order", NULL, err)
		         : p11km_fail(P11KM_ERR_FAILED, "the order is %s after finalize",
		                      st ? st : "of unknown status");
		goto out;
	}
	json_decref(*order);
	*order = o;
	o = NULL;
	step(a, "finalized", a->sub->order_url);
out:
	json_decref(o);
	free(b64);
	free(pl);
	return rv;
}

static int
download(struct acme *a, json_t *order, X509_REQ *req, char **chain, size_t *chain_len)
{
	struct p11km_http_resp r;
	STACK_OF(X509) *certs = NULL;
	const char *u;
	int rv;

	if ((rv = url_member(a, order, "certificate", "order", &u)) < 0)
		return rv;
	if ((a->sub->cert_url = strdup(u)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((rv = post(a, u, NULL, 0, &r)) < 0)
		return rv;
	if (r.status != 200) {
		json_t *o = NULL;
		rv = answer_json(a, "the certificate download", u, &r, &o);
		json_decref(o);
		if (rv == 0)
			rv = p11km_fail(P11KM_ERR_INPUT, "the certificate download answered HTTP %ld", r.status);
	} else if (r.content_type == NULL || strcmp(r.content_type, "application/pem-certificate-chain") != 0) {
		rv = p11km_fail(P11KM_ERR_INPUT, "the CA sent the certificate as '%s', not "
		                "application/pem-certificate-chain", r.content_type ? r.content_type : "none");
	} else if ((rv = p11km_certs_parse(r.body, r.body_len, "the CA's certificate chain",
	                                   P11KM_REPLY_MAX_CERTS, &certs)) == 0) {
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(certs, 0)), X509_REQ_get0_pubkey(req)) != 1) {
			rv = p11km_fail(P11KM_ERR_VERIFY, "the CA's certificate is for another key than the "
			                "request's; refused");
		} else {
			*chain = (char *)r.body;
			*chain_len = r.body_len;
			r.body = NULL;
			step(a, "certificate", u);
		}
	}
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

	memset(&a, 0, sizeof(a));
	a.ctx = ctx;
	a.p = p;
	a.sub = sub;
	a.http.ca_file = p->ca_file;
	a.http.timeout = p->timeout;
	a.key.s.logged_in = (CK_USER_TYPE)-1;
	*chain = NULL;
	*chain_len = 0;
	if (req == NULL || q != csr + csr_len)
		return p11km_fail(P11KM_ERR_INPUT, "the request does not parse as one PKCS#10 request");
	/* everything that can be refused here is refused before the CA sees anything */
	if ((pl = order_payload(req, &rv)) == NULL)
		goto out;
	if (sub->standalone == NULL && sub->webroot == NULL) {
		rv = p11km_http01_init(&probe, NULL, NULL);
		goto out;
	}
	if (p->account_key == NULL) {
		rv = p11km_fail(P11KM_ERR_USAGE, "CA profile '%s' has no account key", p->name);
		goto out;
	}
	/* the directory first: a CA that cannot be reached changes nothing here
	 * (not even a new account key file) */
	if ((rv = directory(&a)) < 0 || (rv = p11km_account_key_open(ctx, p->account_key, &a.key)) < 0 ||
	    (rv = account(&a)) < 0)
		goto out;
	if ((rv = post_json(&a, a.new_order, pl, "the new order", &order, &sub->order_url)) < 0)
		goto out;
	step(&a, "order", sub->order_url);
	if ((rv = authorize(&a, order, sub)) < 0 || (rv = finalize(&a, &order, csr, csr_len)) < 0 ||
	    (rv = download(&a, order, req, chain, chain_len)) < 0)
		goto out;
out:
	sub->signatures += a.key.signatures;
	sub->requests += a.http.requests;
	free(pl);
	free(a.nonce);
	free(a.kid);
	json_decref(order);
	json_decref(a.dir);
	p11km_account_key_release(&a.key);
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
