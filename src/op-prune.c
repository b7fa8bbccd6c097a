/* op-prune.c: the prune operation ('cert prune', the renewal tracker):
 * destroy the retired certificates ("<L>.retired-YYYYMMDD[-N]", left by
 * 'cert install --keep-old' and by a rekey) and, with keys, retired key
 * pairs, that no binding uses.  Objects with the same label and id are one
 * group: when a binding uses one of them, the whole group stays.  Refusals
 * come before anything is destroyed; certificates go first, private keys
 * last. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "p11km/bind.h"
#include "p11km/json.h"
#include "p11km/op.h"
#include "p11km/store.h"
#include "p11km/util.h"

/* The day a label says its object was retired (days since 1970), or -1. */
static long
retired_day(const char *label)
{
	const char *p = label ? strstr(label, ".retired-") : NULL;
	struct tm tm = { 0 };
	int y, m, d;

	if (p == NULL || !p11km_label_is_retired(label) ||
	    sscanf(p + strlen(".retired-"), "%4d%2d%2d", &y, &m, &d) != 3 || m < 1 || m > 12 ||
	    d < 1 || d > 31)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d;
	return (long)(timegm(&tm) / 86400);
}

static int
same_group(const struct p11km_object *a, const struct p11km_object *b)
{
	return a->label != NULL && b->label != NULL && strcmp(a->label, b->label) == 0 &&
	       a->id_len == b->id_len && (a->id_len == 0 || memcmp(a->id, b->id, a->id_len) == 0);
}

static int
rank(CK_OBJECT_CLASS c)
{
	return c == CKO_CERTIFICATE ? 0 : c == CKO_PUBLIC_KEY ? 1 : 2;
}

static int
cmp_rank(const void *a, const void *b)
{
	return rank(((const struct p11km_object *)a)->cls) -
	       rank(((const struct p11km_object *)b)->cls);
}

/* Is object o outside what the options select (kept whatever bindings say)? */
static int
not_selected(const struct p11km_prune_opts *p, const struct p11km_object *o, long today)
{
	long day = retired_day(o->label);
	CK_OBJECT_CLASS c = o->cls;
	size_t bl = p->label ? strlen(p->label) : 0;

	if (day < 0 || (p->older_than >= 0 && today - day <= p->older_than))
		return 1;
	/* retired on day D: at the latest at the end of D */
	if (p->retired_before != 0 && (time_t)(day + 1) * 86400 > p->retired_before)
		return 1;
	if (p->label != NULL && (strncmp(o->label, p->label, bl) != 0 ||
	                         strncmp(o->label + bl, ".retired-", 9) != 0))
		return 1;
	return c != CKO_CERTIFICATE &&
	       (!p->keys || (c != CKO_PRIVATE_KEY && c != CKO_PUBLIC_KEY));
}

/* Keep in objs[0..*n) only the retired objects prune may destroy. */
static int
select_doomed(struct p11km_session *s, const struct p11km_prune_opts *p,
              struct p11km_object *objs, size_t *n, size_t *n_kept)
{
	struct p11km_bind_refs refs = { 0 }, more = { 0 };
	long today = (long)(time(NULL) / 86400);
	unsigned char *keep = calloc(*n ? *n : 1, 1);
	size_t k = 0;
	int r = 0;

	if (keep == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < *n; i++)
		keep[i] = not_selected(p, &objs[i], today);
	if (p->bindings != NULL && (r = p11km_bind_refs_read(p->bindings, &refs)) < 0)
		goto out;
	for (size_t d = 0; d < p->n_more_bindings; d++) {
		struct p11km_bind_ref *v;
		if ((r = p11km_bind_refs_read(p->more_bindings[d], &more)) < 0)
			goto out;
		if ((v = realloc(refs.v, (refs.n + more.n + 1) * sizeof(*v))) == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			goto out;
		}
		refs.v = v;
		memcpy(refs.v + refs.n, more.v, more.n * sizeof(*v));
		refs.n += more.n;
		free(more.v);  /* its entries are refs' now */
		memset(&more, 0, sizeof(more));
	}
	*n_kept = 0;
	for (size_t i = 0; i < *n; i++) {
		if (keep[i])
			continue;
		for (size_t b = 0; b < refs.n; b++) {
			if (!p11km_binding_uses(s, &refs.v[b], &objs[i]))
				continue;
			for (size_t g = 0; g < *n; g++)
				if (same_group(&objs[g], &objs[i]) && !keep[g]) {
					char *u = p11km_object_uri(s->tok, &objs[g]);
					p11km_note("keeping %s: the binding '%s' uses %s", u ? u : "?",
					           refs.v[b].manifest,
					           g == i ? "it" : "an object of its pair");
					free(u);
					keep[g] = 1;
					(*n_kept)++;
				}
			break;
		}
	}
	for (size_t i = 0; i < *n; i++) {
		if (keep[i])
			p11km_object_release(&objs[i]);
		else
			objs[k++] = objs[i];
	}
	*n = k;
	qsort(objs, *n, sizeof(*objs), cmp_rank);
out:
	p11km_bind_refs_release(&refs);
	p11km_bind_refs_release(&more);
	free(keep);
	return r;
}

/* The result: the token and the URIs of objs[0..n). */
static int
prune_result(const struct p11km_token *tok, const struct p11km_object *objs, size_t n,
             struct p11km_prune_result *res)
{
	res->token_uri = strdup(tok->uri);
	res->token_label = strdup(tok->label);
	res->destroyed = calloc(n + 1, sizeof(*res->destroyed));
	if (res->token_uri == NULL || res->token_label == NULL || res->destroyed == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (; res->n < n; res->n++)
		if ((res->destroyed[res->n] = p11km_object_uri(tok, &objs[res->n])) == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return 0;
}

int
p11km_cert_prune(struct p11km_ctx *ctx, const struct p11km_prune_opts *o,
                 struct p11km_prune_result *res)
{
	struct p11km_uri *uri = NULL;
	struct p11km_token *tok = NULL;
	struct p11km_session own = { 0 }, *s = o->session;
	struct p11km_object *objs = NULL;
	size_t n = 0, done = 0;
	int r;

	memset(res, 0, sizeof(*res));
	res->dry_run = o->dry_run;
	if (o->older_than < -1 || o->older_than > 100000)
		return p11km_fail(P11KM_ERR_USAGE, "--older-than wants a number of days, not %ld",
		                  o->older_than);
	if ((r = p11km_uri_parse(o->uri ? o->uri : "pkcs11:", &uri)) < 0)
		return r;
	if (s == NULL) {
		if ((r = p11km_token_open(ctx, uri, P11KM_OPEN_INITIALISED |
		                          (o->dry_run ? 0 : P11KM_OPEN_RW) |
		                          (o->keys ? P11KM_OPEN_LOGIN : 0), &tok, &own)) < 0)
			goto out;
		s = &own;
	}
	if ((r = p11km_objects_find(s, uri, (CK_OBJECT_CLASS)-1, &objs, &n)) < 0 ||
	    (r = select_doomed(s, o, objs, &n, &res->n_kept)) < 0)
		goto out;
	if (o->bindings == NULL && o->n_more_bindings == 0 && n > 0)
		p11km_note("no --bindings DIR: retired objects a binding still uses are not kept");
	for (; !o->dry_run && done < n; done++)
		if ((r = p11km_tok_destroy(s, objs[done].h)) < 0)
			break;
	if (r < 0 && done > 0) {
		char *msg = strdup(p11km_errmsg(r));
		r = p11km_fail(r, "%s; %zu objects were destroyed before the failure", msg ? msg : "?",
		               done);
		free(msg);
	}
	if (r == 0)
		r = prune_result(s->tok, objs, n, res);
out:
	if (r < 0)
		p11km_prune_result_release(res);
	p11km_objects_free(objs, n);
	p11km_session_close(&own);
	p11km_token_free(tok);
	p11km_uri_free(uri);
	return r;
}

void
p11km_prune_result_release(struct p11km_prune_result *res)
{
	for (size_t i = 0; res->destroyed != NULL && i < res->n; i++)
		free(res->destroyed[i]);
	free(res->destroyed);
	free(res->token_uri);
	free(res->token_label);
	memset(res, 0, sizeof(*res));
}

void
p11km_prune_print(FILE *fp, int json, const struct p11km_prune_result *res)
{
	struct p11km_json j;

	if (json) {
		p11km_json_init(&j, fp);
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "token", res->token_uri);
		p11km_json_kv_bool(&j, "dry_run", res->dry_run);
		p11km_json_kv_int(&j, "kept_for_bindings", (long)res->n_kept);
		p11km_json_key(&j, "destroyed");
		p11km_json_array_begin(&j);
		for (size_t i = 0; i < res->n; i++)
			p11km_json_string(&j, res->destroyed[i]);
		p11km_json_array_end(&j);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
		return;
	}
	for (size_t i = 0; i < res->n; i++)
		fprintf(fp, "%s %s\n", res->dry_run ? "would destroy" : "destroyed", res->destroyed[i]);
	if (res->n == 0)
		fprintf(fp, "nothing to prune on token '%s'\n", res->token_label);
}
