/* ca-acme.c: what every ACME operation (RFC 8555) is made of: the
 * directory, nonces, signed POSTs, polls, and the checks of every answer.
 *
 * Every POST is one JWS, so one signature by the account key; badNonce is
 * retried (bounded).  Every URL the CA hands out must be on the directory's
 * origin; every answer is checked for its status, content type and shape
 * before use; a problem document becomes one line.  The operations:
 * ca-acme-order.c (submit), ca-acme-account.c, ca-acme-authz.c,
 * ca-acme-revoke.c, ca-acme-ari.c.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ca-acme.h"
#include "p11km/ca.h"
#include "p11km/http.h"
#include "p11km/util.h"

#define ACME_NONCE_RETRIES 10  /* attempts per request while the CA answers badNonce */
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

	if (a->p->directory == NULL || strcmp(a->p->kind->name, "acme") != 0)
		return p11km_fail(P11KM_ERR_USAGE, "CA profile '%s' is not an ACME CA", a->p->name);
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
	unsigned waited = 0;

	for (int i = 0; i < ACME_POLLS; i++) {
		struct p11km_http_resp r;
		const char *st;
		json_t *o = NULL;
		unsigned w;
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
		w = retry_wait(&r);
		if (a->budget != 0 && waited + w > a->budget) {
			json_decref(*obj);
			*obj = o;
			p11km_http_resp_release(&r);
			return 1;
		}
		json_decref(o);
		sleep(w);
		waited += w;
		p11km_http_resp_release(&r);
	}
	return p11km_fail(P11KM_ERR_FAILED, "%s is still pending after %d polls; run the same "
	                  "command again later", what, ACME_POLLS);
}

/* The order's identifiers: those of the request. */
void
p11km_ca_submit_release(struct p11km_ca_submit *sub)
{
	free(sub->order_url);
	free(sub->cert_url);
	free(sub->cookie);
	sub->order_url = sub->cert_url = sub->cookie = NULL;
}
