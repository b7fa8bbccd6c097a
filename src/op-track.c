/* op-track.c: 'track add' (the settings checked and kept as references, an
 * entry tracked again with the same settings left unchanged, with others
 * replaced only with force and then its state kept) and 'track list'. */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "p11km/bind.h"
#include "p11km/op-track.h"
#include "p11km/track.h"
#include "p11km/uri.h"
#include "p11km/util.h"

static int
dup_str(char **slot, const char *v)
{
	if (v != NULL && (*slot = strdup(v)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return 0;
}

int
p11km_track_reload_tail(int *argc, char **argv, char ***words, size_t *n)
{
	*words = NULL;
	*n = 0;
	for (int i = 1; i < *argc; i++) {
		int at;
		if (strcmp(argv[i], "--") == 0)
			return 0;  /* an end of options without --reload: getopt's */
		if (strcmp(argv[i], "--reload=--") == 0)
			at = i + 1;
		else if (strcmp(argv[i], "--reload") == 0 && i + 1 < *argc &&
		         strcmp(argv[i + 1], "--") == 0)
			at = i + 2;
		else
			continue;
		if (at >= *argc)
			return p11km_fail(P11KM_ERR_USAGE, "--reload --: give the command after \"--\"");
		if (*argc - at > P11KM_TRACK_MAX_ARGV)
			return p11km_fail(P11KM_ERR_USAGE, "--reload: at most %d words",
			                  P11KM_TRACK_MAX_ARGV);
		*words = argv + at;
		*n = (size_t)(*argc - at);
		argv[i] = NULL;
		*argc = i;
		return 0;
	}
	return 0;
}

/* The reload command: argv words as given, or one string split into words
 * as systemd does (quotes and backslashes; no shell). */
static int
reload_of(const struct p11km_track_add_opts *o, struct p11km_track *t)
{
	char *buf = NULL, *words[P11KM_TRACK_MAX_ARGV + 1];
	int r;

	if (o->reload != NULL && o->n_reload_argv > 0)
		return p11km_fail(P11KM_ERR_USAGE, "give --reload once");
	for (size_t i = 0; i < o->n_reload_argv; i++)
		if (dup_str(&t->reload[t->n_reload++], o->reload_argv[i]) < 0)
			return P11KM_ERR_NOMEM;
	if (o->reload == NULL)
		return 0;
	if ((r = p11km_split_words("--reload", o->reload, words, P11KM_TRACK_MAX_ARGV, &buf)) < 0) {
		free(buf);
		return r;
	}
	for (int i = 0; i < r; i++)
		if (dup_str(&t->reload[t->n_reload++], words[i]) < 0) {
			free(buf);
			return P11KM_ERR_NOMEM;
		}
	free(buf);
	return t->n_reload == 0 ? p11km_fail(P11KM_ERR_USAGE, "--reload needs a command") : 0;
}

/* A default id from the URI's object label: letters, digits, '.', '_', '-'. */
static char *
default_id(const char *uri_s)
{
	struct p11km_uri *u = NULL;
	char *id = NULL;
	CK_ATTRIBUTE *a;

	if (p11km_uri_parse(uri_s, &u) == 0 &&
	    (a = p11_kit_uri_get_attribute(u->u, CKA_LABEL)) != NULL && a->ulValueLen > 0) {
		id = strndup(a->pValue, a->ulValueLen < 64 ? a->ulValueLen : 64);
		for (char *p = id; p != NULL && *p; p++)
			if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", *p)
			    == NULL)
				*p = '-';
		if (id != NULL && (id[0] == '.' || id[0] == '-'))
			id[0] = '_';
	}
	p11km_error_clear();
	p11km_uri_free(u);
	return id;
}

static int
add_check(struct p11km_ctx *ctx, struct p11km_track *t)
{
	struct p11km_uri *u = NULL;
	int r;

	if ((r = p11km_uri_parse(t->cert, &u)) < 0)
		return r;
	if (!u->has_object) {
		p11km_uri_free(u);
		return p11km_fail(P11KM_ERR_USAGE, "the certificate URI names no object: add "
		                  "object=LABEL or id=HEX and type=cert");
	}
	p11km_uri_free(u);
	if (t->rekey != NULL && strcmp(t->rekey, "never") != 0 && strcmp(t->rekey, "always") != 0 &&
	    p11km_keytype_parse(t->rekey) < 0)
		return p11km_fail(P11KM_ERR_USAGE, "--rekey '%s': give never, always or a key type "
		                  "(rsa:2048, rsa:3072, rsa:4096, ec:p256, ec:p384, ec:p521, ed25519)",
		                  t->rekey);
	if (t->ca != NULL && strncmp(t->ca, "file:", 5) == 0 && t->ca[5] != '/')
		return p11km_fail(P11KM_ERR_USAGE, "--ca file:DIR needs an absolute directory");
	if (t->server_name != NULL && t->verify == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "--server-name goes with --verify");
	for (size_t i = 0; i < t->n_bind; i++) {
		struct p11km_bind_manifest m;
		if (t->bind[i][0] != '/')
			return p11km_fail(P11KM_ERR_USAGE, "--bind '%s': give an absolute directory",
			                  t->bind[i]);
		if ((r = p11km_bind_manifest_read(t->bind[i], &m)) < 0)
			return r;
		p11km_bind_manifest_release(&m);
	}
	return p11km_track_pin_check(ctx->pin_source_opt);
}

/* The entry of the options (settings only, no state). */
static int
settings(struct p11km_ctx *ctx, const struct p11km_track_add_opts *o, struct p11km_track *t)
{
	int r;

	t->before_days = t->before_pct = -1;
	t->prune_days = P11KM_TRACK_PRUNE_DEFAULT;
	if (o->n_bind > P11KM_TRACK_MAX_BIND)
		return p11km_fail(P11KM_ERR_USAGE, "at most %d --bind", P11KM_TRACK_MAX_BIND);
	for (size_t i = 0; i < o->n_bind; i++)
		if ((r = dup_str(&t->bind[t->n_bind++], o->bind[i])) < 0)
			return r;
	if ((r = dup_str(&t->cert, o->cert)) < 0 || (r = dup_str(&t->module, ctx->module_opt)) < 0 ||
	    (r = dup_str(&t->pin_source, ctx->pin_source_opt)) < 0 ||
	    (r = dup_str(&t->ca, o->ca)) < 0 || (r = dup_str(&t->ca_file, o->ca_file)) < 0 ||
	    (r = dup_str(&t->rekey, o->rekey)) < 0 || (r = dup_str(&t->verify, o->verify)) < 0 ||
	    (r = dup_str(&t->server_name, o->server_name)) < 0 ||
	    (r = dup_str(&t->standalone, o->standalone)) < 0 ||
	    (r = dup_str(&t->webroot, o->webroot)) < 0 || (r = reload_of(o, t)) < 0)
		return r;
	if (o->renew_before != NULL &&
	    (r = p11km_track_before_parse(o->renew_before, &t->before_days, &t->before_pct)) < 0)
		return r;
	if (o->prune_after != NULL && (r = p11km_track_prune_parse(o->prune_after, &t->prune_days)) < 0)
		return r;
	if ((t->id = o->id ? strdup(o->id) : default_id(t->cert)) == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "give --id: the URI has no object label to name it by");
	if ((r = p11km_track_id_check(t->id)) < 0)
		return r;
	return add_check(ctx, t);
}

/* Is t what old is, state aside? */
static int
same_settings(const struct p11km_track *t, const struct p11km_track *old)
{
	struct p11km_track cfg = *old;
	char *a, *b;
	int same;

	memset(&cfg.step, 0, sizeof(*old) - offsetof(struct p11km_track, step));
	a = p11km_track_json(t);
	b = p11km_track_json(&cfg);
	same = a != NULL && b != NULL && strcmp(a, b) == 0;
	free(a);
	free(b);
	return same;
}

int
p11km_track_add(struct p11km_ctx *ctx, const struct p11km_track_add_opts *o,
                struct p11km_track_add_result *res)
{
	const char *dir = p11km_state_dir(o->state_dir);
	struct p11km_track *t = calloc(1, sizeof(*t)), *old = NULL;
	size_t off = offsetof(struct p11km_track, step);
	int r;

	memset(res, 0, sizeof(*res));
	if (t == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = settings(ctx, o, t)) < 0)
		goto out;
	if ((r = p11km_track_load(dir, t->id, &old)) == 0) {
		if (same_settings(t, old)) {
			/* again with the same settings: unchanged (the state is kept either way) */
			res->unchanged = 1;
			res->t = old;
			old = NULL;
			goto out;
		}
		if (!o->force) {
			r = p11km_fail(P11KM_ERR_EXISTS, "'%s' is tracked already with other settings; "
			               "give --force to replace them (its state is kept)", t->id);
			goto out;
		}
		memcpy((char *)t + off, (char *)old + off, sizeof(*t) - off);
		memset((char *)old + off, 0, sizeof(*old) - off);
	} else if (r != P11KM_ERR_NOTFOUND) {
		goto out;
	}
	p11km_error_clear();
	if ((r = p11km_track_save(dir, t)) < 0)
		goto out;
	res->t = t;
	t = NULL;
out:
	p11km_track_free(old);
	p11km_track_free(t);
	return r < 0 ? r : 0;
}

void
p11km_track_add_result_release(struct p11km_track_add_result *res)
{
	p11km_track_free(res->t);
	memset(res, 0, sizeof(*res));
}

void
p11km_track_list_free(struct p11km_track **v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++)
		p11km_track_free(v[i]);
	free(v);
}

int
p11km_track_list(const char *state_dir, struct p11km_track ***out, size_t *out_n)
{
	const char *dir = p11km_state_dir(state_dir);
	struct p11km_track **v = NULL;
	char **ids = NULL;
	size_t n = 0, k = 0;
	int r;

	*out = NULL;
	*out_n = 0;
	if ((r = p11km_track_ids(dir, &ids, &n)) < 0)
		return r;
	if ((v = calloc(n + 1, sizeof(*v))) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (; r == 0 && k < n; k++)
		if ((r = p11km_track_load(dir, ids[k], &v[k])) < 0)
			break;
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	if (r < 0) {
		p11km_track_list_free(v, k);
		return r;
	}
	*out = v;
	*out_n = n;
	return 0;
}
