/* cmd-cert-prune.c: 'cert prune': destroy the retired certificates
 * ("<L>.retired-YYYYMMDD[-N]", left by 'cert install --keep-old' and by a
 * rekey) and, with --keys, retired key pairs, that no binding uses.
 * Objects with the same label and id are one group: when a binding uses
 * one of them, the whole group stays.  Refusals come before anything is
 * destroyed; certificates go first, private keys last. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "p11km/bind.h"
#include "p11km/cmd.h"
#include "p11km/store.h"
#include "p11km/util.h"

enum { O_OLDER = 1, O_DRY_RUN, O_KEYS, O_BINDINGS };

const struct p11km_opt p11km_cert_prune_opts[] = {
	{ "older-than", 1, O_OLDER, "DAYS", "only objects retired more than DAYS days ago" },
	{ "dry-run", 0, O_DRY_RUN, NULL, "list what would be destroyed; destroy nothing" },
	{ "keys", 0, O_KEYS, NULL, "also destroy retired key pairs (private and public keys)" },
	{ "bindings", 1, O_BINDINGS, "DIR", "keep what a binding under DIR uses" },
	{ NULL, 0, 0, NULL, NULL },
};

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

struct prune {
	long older;   /* days, -1: any */
	int dry_run, keys;
	const char *bindings;
};

/* Keep in objs[0..*n) only the retired objects prune may destroy; kept[i]
 * names the binding that keeps a group (NULL: none). */
static int
select_doomed(struct p11km_session *s, const struct prune *p, struct p11km_object *objs,
              size_t *n, size_t *n_kept)
{
	struct p11km_bind_refs refs = { 0 };
	long today = (long)(time(NULL) / 86400);
	unsigned char *keep = calloc(*n ? *n : 1, 1);
	size_t k = 0;
	int r = 0;

	if (keep == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < *n; i++) {
		long day = retired_day(objs[i].label);
		CK_OBJECT_CLASS c = objs[i].cls;
		keep[i] = day < 0 || (p->older >= 0 && today - day <= p->older) ||
		          (c != CKO_CERTIFICATE && (!p->keys || (c != CKO_PRIVATE_KEY &&
		                                                 c != CKO_PUBLIC_KEY)));
	}
	if (p->bindings != NULL && (r = p11km_bind_refs_read(p->bindings, &refs)) < 0)
		goto out;
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
	free(keep);
	return r;
}

static void
prune_print(struct p11km_ctx *ctx, const struct p11km_token *tok, const struct p11km_object *objs,
            size_t n, size_t n_kept, int dry_run)
{
	struct p11km_json j;

	if (ctx->json) {
		p11km_json_init(&j, stdout);
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "token", tok->uri);
		p11km_json_kv_bool(&j, "dry_run", dry_run);
		p11km_json_kv_int(&j, "kept_for_bindings", (long)n_kept);
		p11km_json_key(&j, "destroyed");
		p11km_json_array_begin(&j);
	}
	for (size_t i = 0; i < n; i++) {
		char *u = p11km_object_uri(tok, &objs[i]);
		if (ctx->json)
			p11km_json_string(&j, u);
		else
			printf("%s %s\n", dry_run ? "would destroy" : "destroyed", u ? u : "?");
		free(u);
	}
	if (ctx->json) {
		p11km_json_array_end(&j);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
	} else if (n == 0) {
		printf("nothing to prune on token '%s'\n", tok->label);
	}
}

int
p11km_cert_prune_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct prune p = { -1, 0, 0, NULL };
	struct p11km_uri *uri = NULL;
	struct p11km_token *tok = NULL;
	struct p11km_session s = { 0 };
	struct p11km_object *objs = NULL;
	size_t n = 0, done = 0, n_kept = 0;
	char *end;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			return r;
		if (r == O_OLDER) {
			p.older = strtol(g.optarg, &end, 10);
			if (*g.optarg == '\0' || *end != '\0' || p.older < 0 || p.older > 100000)
				return p11km_fail(P11KM_ERR_USAGE, "--older-than wants a number of days, "
				                  "not '%s'", p11km_esc(g.optarg));
		} else if (r == O_DRY_RUN) {
			p.dry_run = 1;
		} else if (r == O_KEYS) {
			p.keys = 1;
		} else if (r == O_BINDINGS) {
			p.bindings = g.optarg;
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	if ((r = p11km_uri_parse(argc > g.argi ? argv[g.argi] : "pkcs11:", &uri)) < 0 ||
	    (r = p11km_token_open(ctx, uri, P11KM_OPEN_INITIALISED | (p.dry_run ? 0 : P11KM_OPEN_RW) |
	                                    (p.keys ? P11KM_OPEN_LOGIN : 0), &tok, &s)) < 0 ||
	    (r = p11km_objects_find(&s, uri, (CK_OBJECT_CLASS)-1, &objs, &n)) < 0 ||
	    (r = select_doomed(&s, &p, objs, &n, &n_kept)) < 0)
		goto out;
	if (p.bindings == NULL && n > 0)
		p11km_note("no --bindings DIR: retired objects a binding still uses are not kept");
	for (; !p.dry_run && done < n; done++)
		if ((r = p11km_tok_destroy(&s, objs[done].h)) < 0)
			break;
	if (r < 0 && done > 0) {
		char *msg = strdup(p11km_errmsg(r));
		r = p11km_fail(r, "%s; %zu objects were destroyed before the failure", msg ? msg : "?",
		               done);
		free(msg);
	}
	if (r == 0)
		prune_print(ctx, tok, objs, n, n_kept, p.dry_run);
out:
	p11km_objects_free(objs, n);
	p11km_session_close(&s);
	p11km_token_free(tok);
	p11km_uri_free(uri);
	return r;
}
