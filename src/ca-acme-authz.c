/* ca-acme-authz.c: the authorizations of an order (RFC 8555 7.5, 8):
 * http-01 through the built-in responder or a webroot, or dns-01 through a
 * hook the operator gives (--dns-hook "PROG [ARG...]").
 *
 * The hook runs without a shell (its words split at spaces), once per
 * record with P11KM_ACME_ACTION=present and once more with cleanup (always,
 * also when validation failed), the record in its environment:
 * P11KM_ACME_IDENTIFIER (the name), P11KM_ACME_RECORD
 * (_acme-challenge.NAME.) and P11KM_ACME_VALUE (the TXT value).  Nothing
 * secret is in that environment: the TXT value is public by design.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ca-acme.h"
#include "p11km/ca.h"
#include "p11km/run.h"
#include "p11km/util.h"

#define ACME_MAX_AUTHZ 100
#define HOOK_MAX_ARGS 16
#define HOOK_TIMEOUT 120   /* seconds one hook call may take */

struct challenge {
	char *authz, *url, *token, *keyauth, *ident;
	char *record, *value;  /* dns-01 */
	int presented;         /* dns-01: the hook set the record */
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
		free(c[i].record);
		free(c[i].value);
	}
	free(c);
}

/* dns-01: the TXT record's name and value (RFC 8555 8.4). */
static int
dns_record(struct challenge *c)
{
	unsigned char dig[32];
	const char *name = strncmp(c->ident, "*.", 2) == 0 ? c->ident + 2 : c->ident;

	if (!EVP_Digest(c->keyauth, strlen(c->keyauth), dig, NULL, EVP_sha256(), NULL) ||
	    (c->value = p11km_b64url(dig, sizeof(dig))) == NULL ||
	    (c->record = p11km_asprintf("_acme-challenge.%s.", name)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return 0;
}

/* The challenge of the wanted type in a pending authorization. */
static int
authz_challenge(struct acme *a, const char *authz_url, json_t *az, int dns, struct challenge *c)
{
	const char *ident = json_string_value(json_object_get(json_object_get(az, "identifier"), "value"));
	const char *want = dns ? "dns-01" : "http-01";
	json_t *chs = json_object_get(az, "challenges"), *ch;
	int wildcard = json_is_true(json_object_get(az, "wildcard"));
	size_t i;

	if (ident == NULL || *ident == '\0' || strlen(ident) > 253 || !p11km_config_safe(ident))
		return p11km_fail(P11KM_ERR_INPUT, "the CA's authorization names no usable identifier");
	json_array_foreach(chs, i, ch) {
		const char *type = json_string_value(json_object_get(ch, "type"));
		const char *tok = json_string_value(json_object_get(ch, "token"));
		const char *u;
		int rv;
		if (type == NULL || strcmp(type, want) != 0)
			continue;
		if (tok == NULL || *tok == '\0' || strlen(tok) > 256 ||
		    strspn(tok, ACME_B64URL) != strlen(tok))
			return p11km_fail(P11KM_ERR_INPUT, "the CA's %s token for '%s' is not "
			                  "base64url; refused", want, ident);
		if ((rv = acme_url_member(a, ch, "url", "challenge", &u)) < 0)
			return rv;
		c->authz = strdup(authz_url);
		c->url = strdup(u);
		c->token = strdup(tok);
		c->keyauth = p11km_asprintf("%s.%s", tok, a->key.thumbprint);
		c->ident = p11km_asprintf("%s%s", wildcard ? "*." : "", ident);
		if (!c->authz || !c->url || !c->token || !c->keyauth || !c->ident)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		return dns ? dns_record(c) : 0;
	}
	if (!dns)
		return p11km_fail(P11KM_ERR_UNSUPPORTED, "the CA offers no http-01 challenge for "
		                  "'%s%s'%s", wildcard ? "*." : "", ident,
		                  wildcard ? ": a wildcard name needs dns-01 (--dns-hook CMD)" : "");
	return p11km_fail(P11KM_ERR_UNSUPPORTED, "the CA offers no dns-01 challenge for '%s'", ident);
}

/* One hook call: "PROG [ARG...]" split at spaces, no shell. */
static int
dns_hook(const char *hook, const char *action, const struct challenge *c)
{
	char *words = strdup(hook), *argv[HOOK_MAX_ARGS + 1], *save = NULL, *w;
	char *env[4] = { NULL, NULL, NULL, NULL };
	struct p11km_run_opts o = { 0 };
	struct p11km_run_result res;
	int n = 0, r;

	if (words == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (w = strtok_r(words, " \t", &save); w != NULL && n < HOOK_MAX_ARGS;
	     w = strtok_r(NULL, " \t", &save))
		argv[n++] = w;
	argv[n] = NULL;
	env[0] = p11km_asprintf("P11KM_ACME_ACTION=%s", action);
	env[1] = p11km_asprintf("P11KM_ACME_IDENTIFIER=%s", c->ident);
	env[2] = p11km_asprintf("P11KM_ACME_RECORD=%s", c->record);
	env[3] = p11km_asprintf("P11KM_ACME_VALUE=%s", c->value);
	if (n == 0 || w != NULL) {
		r = p11km_fail(P11KM_ERR_USAGE, "--dns-hook '%s': give a program and at most %d "
		               "arguments", hook, HOOK_MAX_ARGS - 1);
	} else if (!env[0] || !env[1] || !env[2] || !env[3]) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	} else {
		o.flags = strchr(argv[0], '/') ? 0 : P11KM_RUN_PATH;
		o.env = env;
		o.n_env = 4;
		o.timeout = HOOK_TIMEOUT;
		r = p11km_run_ex(argv, &o, &res);
		p11km_run_result_release(&res);
		if (r < 0) {
			char *msg = strdup(p11km_errmsg(r));
			r = p11km_fail(r, "the dns hook (%s %s): %s", action, c->record,
			               msg ? msg : "failed");
			free(msg);
		} else {
			p11km_verbose("dns hook: %s %s", action, c->record);
		}
	}
	for (int i = 0; i < 4; i++)
		free(env[i]);
	free(words);
	return r;
}

/* Answer the challenges: start the responder, write the files or call the hook. */
static int
present(struct p11km_http01 *h01, const struct p11km_ca_submit *opts, struct challenge *cs,
        size_t n)
{
	char **toks, **kas;
	int rv = 0;

	if (opts->dns_hook != NULL) {
		for (size_t i = 0; i < n && rv == 0; i++)
			if ((rv = dns_hook(opts->dns_hook, "present", &cs[i])) == 0)
				cs[i].presented = 1;
		return rv;
	}
	if ((rv = p11km_http01_init(h01, opts->standalone, opts->webroot)) < 0)
		return rv;
	toks = calloc(n, sizeof(*toks));
	kas = calloc(n, sizeof(*kas));
	if (toks == NULL || kas == NULL) {
		rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	} else {
		for (size_t i = 0; i < n; i++) {
			toks[i] = cs[i].token;
			kas[i] = cs[i].keyauth;
		}
		rv = p11km_http01_start(h01, toks, kas, n);
	}
	free(toks);
	free(kas);
	return rv;
}

/* Stop the responder, remove the files and records; rv's message is kept. */
static int
clean_up(struct p11km_http01 *h01, const struct p11km_ca_submit *opts, struct challenge *cs,
         size_t n, int rv)
{
	char *msg = rv < 0 ? strdup(p11km_errmsg(rv)) : NULL;
	int r;

	p11km_http01_stop(h01);
	for (size_t i = 0; i < n; i++)
		if (cs[i].presented && (r = dns_hook(opts->dns_hook, "cleanup", &cs[i])) < 0)
			p11km_warn("%s", p11km_errmsg(r));
	if (rv < 0)
		rv = p11km_fail(rv, "%s", msg ? msg : p11km_strerror(rv));
	free(msg);
	return rv;
}

/* Tell the CA to validate c, and wait for the authorization. */
static int
validate(struct acme *a, const struct challenge *c, const char *type)
{
	json_t *ch = NULL, *az = NULL;
	const char *st;
	int rv;

	if ((rv = acme_post_json(a, c->url, "{}", "the challenge", &ch, NULL)) < 0)
		return rv;
	json_decref(ch);
	if ((rv = acme_poll_until(a, c->authz, "the authorization", "pending", "processing", &az)) < 0)
		return rv;
	st = json_string_value(json_object_get(az, "status"));
	if (st == NULL || strcmp(st, "valid") != 0) {
		json_t *chs = json_object_get(az, "challenges"), *x, *err = NULL;
		size_t k;
		json_array_foreach(chs, k, x)
			if (json_object_get(x, "error") != NULL)
				err = json_object_get(x, "error");
		char *what = p11km_asprintf("the %s validation of '%s'", type, c->ident);
		rv = err ? acme_problem(a, what ? what : "the validation", NULL, err)
		         : p11km_fail(P11KM_ERR_FAILED, "the authorization of '%s' is %s",
		                      c->ident, st ? st : "of unknown status");
		free(what);
	} else {
		acme_step(a, "validated", c->ident);
	}
	json_decref(az);
	return rv;
}

int
acme_authorize(struct acme *a, json_t *order, const struct p11km_ca_submit *opts)
{
	json_t *azs = json_object_get(order, "authorizations"), *v;
	const char *type = opts->dns_hook ? "dns-01" : "http-01";
	struct challenge *cs = NULL;
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
		if ((rv = acme_post_json(a, u, NULL, "the authorization", &az, NULL)) < 0)
			goto out;
		st = json_string_value(json_object_get(az, "status"));
		if (st != NULL && strcmp(st, "valid") == 0) {
			json_decref(az);
			continue;
		}
		rv = st != NULL && strcmp(st, "pending") == 0
		     ? authz_challenge(a, u, az, opts->dns_hook != NULL, &cs[n])
		     : p11km_fail(P11KM_ERR_FAILED, "an authorization of the order is %s",
		                  st ? st : "of unknown status");
		json_decref(az);
		if (rv < 0)
			goto out;
		n++;
	}
	acme_step(a, "authorizations", n ? type : "already valid");
	if (n == 0)
		goto out;
	if ((rv = present(&h01, opts, cs, n)) < 0)
		goto out;
	for (i = 0; i < n && rv == 0; i++)
		rv = validate(a, &cs[i], type);
out:
	rv = clean_up(&h01, opts, cs, n, rv);
	challenges_free(cs, json_array_size(azs));
	return rv;
}
