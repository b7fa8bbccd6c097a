/* op-roots.c: the roots operations ('roots install|remove|list'): trusted
 * roots in token and file stores.  Everything is read and checked first;
 * then each store changes in one go (one rewrite, one session and login,
 * one update-ca-certificates).  The reports are in op-roots-report.c. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/cert.h"
#include "p11km/op.h"
#include "p11km/store.h"
#include "p11km/util.h"

#define MAX_STORES 16

static int
nomem(void)
{
	return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
}

/* Fill one result line from x (name: borrowed, copied; may be NULL). */
static int
root_of(X509 *x, const char *name, struct p11km_root *out)
{
	out->sha256 = p11km_cert_fingerprint(x);
	out->subject = p11km_cert_subject(x);
	out->name = name ? strdup(name) : NULL;
	if (out->sha256 == NULL || out->subject == NULL || (name && out->name == NULL)) {
		free(out->sha256);
		free(out->subject);
		free(out->name);
		memset(out, 0, sizeof(*out));
		return nomem();
	}
	return 0;
}

struct stores {
	struct p11km_store *st[MAX_STORES];
	size_t n;
};

static void
stores_release(struct stores *s)
{
	for (size_t i = 0; i < s->n; i++)
		p11km_store_free(s->st[i]);
	s->n = 0;
}

/* Parse the stores of o (at least one, at most MAX_STORES); the result gets
 * one row per store. */
static int
stores_parse(const struct p11km_roots_opts *o, const char *opt, struct stores *s,
             struct p11km_roots_result *res)
{
	int r;

	if (o->n_stores == 0)
		return p11km_fail(P11KM_ERR_USAGE, "name at least one store with --%s STORE", opt);
	for (size_t i = 0; i < o->n_stores; i++) {
		if (s->n >= MAX_STORES)
			return p11km_fail(P11KM_ERR_USAGE, "at most %d stores at once", MAX_STORES);
		if ((r = p11km_store_parse(o->stores[i], o->system_root, &s->st[s->n])) < 0)
			return r;
		s->n++;
	}
	if ((res->stores = calloc(s->n, sizeof(*res->stores))) == NULL)
		return nomem();
	for (; res->n_stores < s->n; res->n_stores++)
		if ((res->stores[res->n_stores].spec = strdup(s->st[res->n_stores]->spec)) == NULL)
			return nomem();
	return 0;
}

/*
 * The commit of store failed (r) after the stores before it were changed:
 * say which, with what changed in each (counts[k] certificates added or
 * removed), and how to finish.  Returns r.
 */
static int
changed_before(int r, const struct stores *stores, size_t failed, const size_t *counts,
               const char *verb, const char *finish)
{
	struct p11km_buf b = { 0 };
	char *msg = strdup(p11km_errmsg(r));
	size_t n = 0;

	for (size_t k = 0; k < failed; k++) {
		char *one;
		if (counts[k] == 0)
			continue;
		one = p11km_asprintf("%s%s (%zu %s)", n++ ? ", " : "", stores->st[k]->spec, counts[k],
		                     verb);
		if (one == NULL || p11km_buf_append(&b, one, strlen(one) + 1) < 0)
			n = 0;
		else
			b.len--; /* keep the string terminated */
		free(one);
	}
	if (n > 0 && msg != NULL)
		r = p11km_fail(r, "%s; these stores were already changed: %s; %s", msg,
		               (char *)b.data, finish);
	free(msg);
	p11km_buf_release(&b);
	return r;
}

/* Read every certificate file into one stack (duplicates dropped). */
static int
read_certs(const char *const *files, size_t n, STACK_OF(X509) **out)
{
	STACK_OF(X509) *all = sk_X509_new_null();
	int r = 0;

	if (all == NULL)
		return nomem();
	for (size_t i = 0; i < n && r == 0; i++) {
		STACK_OF(X509) *sk = NULL;
		if ((r = p11km_certs_read(files[i], P11KM_ROOTS_MAX_CERTS, &sk)) < 0)
			break;
		while (r == 0 && sk_X509_num(sk) > 0) {
			X509 *x = sk_X509_shift(sk);
			int dup = 0;
			for (int k = 0; k < sk_X509_num(all) && !dup; k++)
				dup = X509_cmp(sk_X509_value(all, k), x) == 0;
			if (dup) {
				X509_free(x);
			} else if (sk_X509_num(all) >= P11KM_ROOTS_MAX_CERTS) {
				X509_free(x);
				r = p11km_fail(P11KM_ERR_INPUT, "more than %d certificates at once",
				               P11KM_ROOTS_MAX_CERTS);
			} else if (!sk_X509_push(all, x)) {
				X509_free(x);
				r = nomem();
			}
		}
		sk_X509_pop_free(sk, X509_free);
	}
	if (r < 0) {
		sk_X509_pop_free(all, X509_free);
		return r;
	}
	*out = all;
	return 0;
}

/* --- install ----------------------------------------------------------------------- */

/* Read and check every certificate: the result's certificates. */
static int
install_certs(const struct p11km_roots_opts *o, STACK_OF(X509) **certs,
              struct p11km_roots_result *res)
{
	int r, n;

	if ((r = read_certs(o->certs, o->n_certs, certs)) < 0)
		return r;
	n = sk_X509_num(*certs);
	if ((res->certs = calloc((size_t)n + 1, sizeof(*res->certs))) == NULL)
		return nomem();
	for (; res->n < (size_t)n; res->n++)
		if ((r = root_of(sk_X509_value(*certs, (int)res->n), NULL, &res->certs[res->n])) < 0)
			return r;
	for (int i = 0; i < n; i++) {
		if ((r = p11km_cert_check_anchor(sk_X509_value(*certs, i))) == 0)
			continue;
		if (!o->allow_non_ca)
			return r;
		p11km_warn("--allow-non-ca: trusting '%s', which is not a CA certificate",
		           res->certs[i].subject);
		p11km_error_clear();
	}
	return 0;
}

int
p11km_roots_install(struct p11km_ctx *ctx, const struct p11km_roots_opts *o,
                    struct p11km_roots_result *res)
{
	struct stores stores = { 0 };
	STACK_OF(X509) *certs = NULL, *adds[MAX_STORES] = { NULL };
	size_t counts[MAX_STORES] = { 0 };
	int r, n = 0;

	memset(res, 0, sizeof(*res));
	res->verb = P11KM_ROOTS_INSTALL;
	res->dry_run = o->dry_run;
	if ((r = stores_parse(o, "to", &stores, res)) < 0 ||
	    (r = install_certs(o, &certs, res)) < 0)
		goto out;
	n = sk_X509_num(certs);
	/* read every store, and work out what changes */
	for (size_t s = 0; s < stores.n; s++) {
		struct p11km_roots_store *rs = &res->stores[s];
		if ((r = p11km_store_open_for(ctx, stores.st[s], !o->dry_run, certs)) < 0)
			goto out;
		if ((adds[s] = sk_X509_new_null()) == NULL ||
		    (rs->added = calloc((size_t)n + 1, 1)) == NULL) {
			r = nomem();
			goto out;
		}
		for (int i = 0; i < n; i++) {
			X509 *x = sk_X509_value(certs, i);
			if (p11km_store_index(stores.st[s], x) >= 0)
				continue;
			if (!sk_X509_push(adds[s], x)) {
				r = nomem();
				goto out;
			}
			rs->added[i] = 1;
			rs->n_added++;
		}
		counts[s] = rs->n_added;
	}
	/* change each store in one go */
	for (size_t s = 0; s < stores.n && !o->dry_run; s++) {
		if (sk_X509_num(adds[s]) > 0)
			p11km_verbose("%s: adding %d certificates", stores.st[s]->spec, sk_X509_num(adds[s]));
		if ((r = p11km_store_commit(ctx, stores.st[s], adds[s], NULL, 0)) < 0) {
			r = changed_before(r, &stores, s, counts, "added",
			    "run the same command again to finish (what is there stays)");
			goto out;
		}
	}
	r = 0;
out:
	if (r < 0)
		p11km_roots_result_release(res);
	for (size_t s = 0; s < stores.n; s++)
		sk_X509_free(adds[s]);
	sk_X509_pop_free(certs, X509_free);
	stores_release(&stores);
	return r;
}

/* --- remove ------------------------------------------------------------------------- */

/* A removal target: a fingerprint, or the certificates of a file. */
struct target {
	unsigned char fp[32];
	const char *arg;
};

static int
target_add(struct target **t, size_t *n, const unsigned char *fp, const char *arg)
{
	struct target *nt = realloc(*t, (*n + 1) * sizeof(*nt));

	if (nt == NULL)
		return nomem();
	*t = nt;
	memcpy(nt[*n].fp, fp, 32);
	nt[(*n)++].arg = arg;
	return 0;
}

/* A SHA-256 fingerprint (64 hex digits, colons allowed): 1 and fp. */
static int
is_fingerprint(const char *a, unsigned char *fp)
{
	unsigned char *raw = NULL;
	size_t rl = 0, hexchars = 0;
	int yes;

	for (const char *p = a; *p; p++)
		hexchars += (*p != ':');
	yes = hexchars == 64 && strspn(a, "0123456789abcdefABCDEF:") == strlen(a) &&
	      p11km_unhex(a, &raw, &rl) == 0 && rl == 32;
	if (yes)
		memcpy(fp, raw, 32);
	free(raw);
	p11km_error_clear();
	return yes;
}

static int
parse_targets(const char *const *args, size_t n_args, struct target **out, size_t *n_out)
{
	struct target *t = NULL;
	size_t n = 0;
	int r = 0;

	for (size_t i = 0; i < n_args && r == 0; i++) {
		STACK_OF(X509) *sk = NULL;
		unsigned char fp[32];
		const char *a = args[i];
		if (is_fingerprint(a, fp)) {
			r = target_add(&t, &n, fp, a);
			continue;
		}
		if ((r = p11km_certs_read(a, P11KM_ROOTS_MAX_CERTS, &sk)) < 0) {
			/* p11km_fail() writes the buffer p11km_errmsg() returns: copy first */
			char *why = strdup(p11km_errmsg(r));
			r = p11km_fail(P11KM_ERR_USAGE,
			    "'%s' is neither a SHA-256 fingerprint (64 hex digits) nor a certificate "
			    "file: %s", a, why ? why : p11km_strerror(r));
			free(why);
			break;
		}
		for (int k = 0; k < sk_X509_num(sk) && r == 0; k++)
			if ((r = p11km_cert_sha256(sk_X509_value(sk, k), fp)) == 0)
				r = target_add(&t, &n, fp, a);
		sk_X509_pop_free(sk, X509_free);
	}
	if (r < 0) {
		free(t);
		return r;
	}
	*out = t;
	*n_out = n;
	return 0;
}

/* The indexes into st->certs the targets select, each once, into rm. */
static int
remove_select(const struct p11km_roots_opts *o, struct p11km_store *st, const struct target *tg,
              size_t ntg, size_t *rm, size_t *n_rm)
{
	for (size_t t = 0; t < ntg; t++) {
		int found = 0;
		for (int i = 0; i < sk_X509_num(st->certs); i++) {
			unsigned char fp[32];
			int dup = 0;
			if (p11km_cert_sha256(sk_X509_value(st->certs, i), fp) < 0 ||
			    memcmp(fp, tg[t].fp, 32) != 0)
				continue;
			found = 1;
			for (size_t k = 0; k < *n_rm && !dup; k++)
				dup = rm[k] == (size_t)i;
			if (!dup)
				rm[(*n_rm)++] = (size_t)i;
		}
		if (!found && !o->force) {
			char *hex = p11km_hex(tg[t].fp, 32);
			int r = p11km_fail(P11KM_ERR_NOTFOUND,
			    "%s does not hold %s (from '%s'); nothing was removed (--force ignores "
			    "absent certificates)", st->spec, hex ? hex : "?", tg[t].arg);
			free(hex);
			return r;
		}
		if (!found)
			p11km_note("%s does not hold a certificate from '%s'; nothing to remove",
			           st->spec, tg[t].arg);
	}
	return 0;
}

int
p11km_roots_remove(struct p11km_ctx *ctx, const struct p11km_roots_opts *o,
                   struct p11km_roots_result *res)
{
	struct stores stores = { 0 };
	struct target *tg = NULL;
	size_t ntg = 0, *rms[MAX_STORES] = { NULL }, nrms[MAX_STORES] = { 0 };
	int r;

	memset(res, 0, sizeof(*res));
	res->verb = P11KM_ROOTS_REMOVE;
	res->dry_run = o->dry_run;
	if ((r = stores_parse(o, "from", &stores, res)) < 0 ||
	    (r = parse_targets(o->certs, o->n_certs, &tg, &ntg)) < 0)
		goto out;
	for (size_t s = 0; s < stores.n; s++) {
		struct p11km_store *st = stores.st[s];
		if ((r = p11km_store_open(ctx, st, !o->dry_run)) < 0)
			goto out;
		if ((rms[s] = calloc((size_t)sk_X509_num(st->certs) + 1, sizeof(size_t))) == NULL) {
			r = nomem();
			goto out;
		}
		if ((r = remove_select(o, st, tg, ntg, rms[s], &nrms[s])) < 0)
			goto out;
	}
	for (size_t s = 0; s < stores.n && !o->dry_run; s++) {
		if ((r = p11km_store_commit(ctx, stores.st[s], NULL, rms[s], nrms[s])) < 0) {
			r = changed_before(r, &stores, s, nrms, "removed",
			                   "run the same command again with --force to finish");
			goto out;
		}
	}
	for (size_t s = 0; s < stores.n && r == 0; s++) {
		struct p11km_roots_store *rs = &res->stores[s];
		if ((rs->certs = calloc(nrms[s] + 1, sizeof(*rs->certs))) == NULL)
			r = nomem();
		for (; r == 0 && rs->n < nrms[s]; rs->n++)
			r = root_of(sk_X509_value(stores.st[s]->certs, (int)rms[s][rs->n]), NULL,
			            &rs->certs[rs->n]);
	}
out:
	if (r < 0)
		p11km_roots_result_release(res);
	for (size_t s = 0; s < stores.n; s++)
		free(rms[s]);
	free(tg);
	stores_release(&stores);
	return r;
}

/* --- list ------------------------------------------------------------------------------ */

int
p11km_roots_list(struct p11km_ctx *ctx, const char *store, const char *system_root,
                 struct p11km_roots_result *res)
{
	struct p11km_store *st = NULL;
	struct p11km_roots_store *rs;
	int r, n;

	memset(res, 0, sizeof(*res));
	res->verb = P11KM_ROOTS_LIST;
	if ((r = p11km_store_parse(store, system_root, &st)) < 0)
		return r;
	if ((r = p11km_store_check_exists(st)) < 0 || (r = p11km_store_open(ctx, st, 0)) < 0)
		goto out;
	n = sk_X509_num(st->certs);
	if ((res->stores = rs = calloc(1, sizeof(*rs))) == NULL) {
		r = nomem();
		goto out;
	}
	res->n_stores = 1;
	if ((rs->certs = calloc((size_t)n + 1, sizeof(*rs->certs))) == NULL ||
	    (rs->spec = strdup(st->spec)) == NULL) {
		r = nomem();
		goto out;
	}
	for (; r == 0 && rs->n < (size_t)n; rs->n++)
		r = root_of(sk_X509_value(st->certs, (int)rs->n), st->names[rs->n], &rs->certs[rs->n]);
out:
	if (r < 0)
		p11km_roots_result_release(res);
	p11km_store_free(st);
	return r;
}
