/* cmd-track.c: 'track add/list/show/remove', 'track renew' ('p11km renew')
 * and 'track status' ('p11km status'): parse, call the library (track.c,
 * op-renew.c, op-status.c), print. */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "p11km/bind.h"
#include "p11km/cmd.h"
#include "p11km/op.h"
#include "p11km/track.h"
#include "p11km/util.h"

enum { O_ID = 1000, O_CA, O_CA_FILE, O_BEFORE, O_REKEY, O_BIND, O_RELOAD, O_VERIFY,
       O_SERVER_NAME, O_STANDALONE, O_WEBROOT, O_STATE_DIR, O_ALL, O_DRY_RUN, O_WAIT,
       O_PRE_HOOK, O_POST_HOOK, O_DEPLOY_HOOK, O_HOOK_TIMEOUT, O_CONFIG_DIR, O_WARN_DAYS,
       O_PROM, O_PROBE, O_PRUNE_AFTER };

#define STATE_DIR_OPT \
	{ "state-dir", 1, O_STATE_DIR, "DIR", "the state directory (default $P11KM_STATE_DIR, " \
	  "/var/lib/p11km)" }

static const struct p11km_opt add_opts[] = {
	{ "id", 1, O_ID, "ID", "the tracking id (default: the certificate's label)" },
	{ "ca", 1, O_CA, "NAME", "the CA profile to renew with, or file:DIR (request and reply as files)" },
	{ "ca-file", 1, O_CA_FILE, "FILE", "roots to verify the issued chain against (cert install --ca-file)" },
	{ "renew-before", 1, O_BEFORE, "DAYS|PCT%", "renew this many days, or this share of the "
	  "lifetime, before expiry (default: 30 days or a third, whichever first)" },
	{ "prune-after", 1, O_PRUNE_AFTER, "DAYS", "destroy what a renewal retired (the old "
	  "certificate; with --rekey the old key pair) this many days later, or never (default 30)" },
	{ "rekey", 1, O_REKEY, "POLICY", "never (default), always (same key type) or a key type (ec:p256 ...)" },
	{ "bind", 1, O_BIND, "DIR", "a binding ('bind emit') switched to the renewed certificate (repeatable)" },
	{ "reload", 1, O_RELOAD, "COMMAND", "the server's reload command, no shell: '--reload -- CMD "
	  "ARG...' at the end of the line takes each word as is; '--reload \"CMD ARG\"' is split on blanks" },
	{ "verify", 1, O_VERIFY, "ADDR:PORT", "after the reload, check that the server there serves the new certificate" },
	{ "server-name", 1, O_SERVER_NAME, "NAME", "the TLS server name (SNI) for --verify" },
	{ "standalone", 1, O_STANDALONE, "ADDR:PORT", "ACME http-01: the built-in responder's address" },
	{ "webroot", 1, O_WEBROOT, "DIR", "ACME http-01: files under DIR/.well-known/acme-challenge/" },
	STATE_DIR_OPT,
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt dir_opts[] = {
	STATE_DIR_OPT,
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt renew_opts[] = {
	{ "all", 0, O_ALL, NULL, "every tracked certificate" },
	{ "dry-run", 0, O_DRY_RUN, NULL, "say what is due; change nothing" },
	{ "wait", 0, O_WAIT, NULL, "wait for another renew run to finish (default: fail at once)" },
	{ "pre-hook", 1, O_PRE_HOOK, "COMMAND", "run before the first renewal of this run (no shell)" },
	{ "post-hook", 1, O_POST_HOOK, "COMMAND", "run after the last renewal of this run (no shell)" },
	{ "deploy-hook", 1, O_DEPLOY_HOOK, "COMMAND", "run after each installed certificate (no shell)" },
	{ "hook-timeout", 1, O_HOOK_TIMEOUT, "SECONDS", "kill a hook or reload command after this long (default 60)" },
	{ "config-dir", 1, O_CONFIG_DIR, "DIR", "where CA profiles live (default /etc/p11km/ca.d)" },
	STATE_DIR_OPT,
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt status_opts[] = {
	{ "warn-days", 1, O_WARN_DAYS, "N", "warn this many days before expiry (untracked: default 30)" },
	{ "prom", 1, O_PROM, "FILE", "write a node_exporter textfile to FILE (atomically)" },
	{ "probe", 0, O_PROBE, NULL, "ask each tracked server which certificate it serves" },
	STATE_DIR_OPT,
	{ NULL, 0, 0, NULL, NULL },
};

static int
number(const char *s, long max, const char *opt, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end != '\0' || v < 0 || v > max)
		return p11km_fail(P11KM_ERR_USAGE, "--%s '%s': give a number from 0 to %ld", opt, s, max);
	*out = v;
	return 0;
}

/* A JSON document on stdout, the one a script reads (an error after it adds
 * no second one). */
static void
print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	struct p11km_json j;

	fputs(s ? s : "null", stdout);
	free(s);
	p11km_json_init(&j, stdout);
	p11km_json_end(&j);
}

static int
dup_str(char **slot, const char *v)
{
	if (v != NULL && (*slot = strdup(v)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return 0;
}

/* --- track add ------------------------------------------------------------------ */

static int
split_words(const char *cmd, char **argv, size_t *n, const char *opt)
{
	char *copy = strdup(cmd), *sp = NULL;

	*n = 0;
	if (copy == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (char *w = strtok_r(copy, " \t", &sp); w != NULL; w = strtok_r(NULL, " \t", &sp)) {
		if (*n == P11KM_TRACK_MAX_ARGV || (argv[*n] = strdup(w)) == NULL) {
			free(copy);
			return p11km_fail(P11KM_ERR_USAGE, "--%s: at most %d words", opt,
			                  P11KM_TRACK_MAX_ARGV);
		}
		(*n)++;
	}
	free(copy);
	return *n == 0 ? p11km_fail(P11KM_ERR_USAGE, "--%s needs a command", opt) : 0;
}

/* '--reload -- CMD ARG...': the words after "--" are the reload command, each
 * as is (blanks, ';' and quotes included); they are taken out of argv
 * before getopt sees them (p11km's global options stop at "--" too). */
static int
reload_argv(int *argc, char **argv, struct p11km_track *t)
{
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
		for (int k = at; k < *argc; k++)
			if ((t->reload[t->n_reload] = strdup(argv[k])) == NULL)
				return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			else
				t->n_reload++;
		argv[i] = NULL;
		*argc = i;
		return 0;
	}
	return 0;
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
	if ((r = p11km_track_pin_check(ctx->pin_source_opt)) < 0)
		return r;
	return 0;
}

static int
cmd_track_add(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_track *t = calloc(1, sizeof(*t)), *old = NULL;
	const char *dir = NULL, *id = NULL, *reload = NULL;
	char *text = NULL, *oldtext = NULL;
	int r = 0;

	if (t == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	t->before_days = t->before_pct = -1;
	t->prune_days = P11KM_TRACK_PRUNE_DEFAULT;
	if ((r = reload_argv(&argc, argv, t)) < 0)
		goto out;
	while (r == 0 && (r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_ID: id = g.optarg; r = 0; break;
		case O_CA: r = dup_str(&t->ca, g.optarg); break;
		case O_CA_FILE: r = dup_str(&t->ca_file, g.optarg); break;
		case O_BEFORE: r = p11km_track_before_parse(g.optarg, &t->before_days, &t->before_pct); break;
		case O_REKEY: r = dup_str(&t->rekey, g.optarg); break;
		case O_PRUNE_AFTER: r = p11km_track_prune_parse(g.optarg, &t->prune_days); break;
		case O_BIND:
			if (t->n_bind == P11KM_TRACK_MAX_BIND)
				r = p11km_fail(P11KM_ERR_USAGE, "at most %d --bind", P11KM_TRACK_MAX_BIND);
			else if ((r = dup_str(&t->bind[t->n_bind], g.optarg)) == 0)
				t->n_bind++;
			break;
		case O_RELOAD: reload = g.optarg; r = 0; break;
		case O_VERIFY: r = dup_str(&t->verify, g.optarg); break;
		case O_SERVER_NAME: r = dup_str(&t->server_name, g.optarg); break;
		case O_STANDALONE: r = dup_str(&t->standalone, g.optarg); break;
		case O_WEBROOT: r = dup_str(&t->webroot, g.optarg); break;
		case O_STATE_DIR: dir = g.optarg; r = 0; break;
		default: r = r < 0 ? r : p11km_fail(P11KM_ERR_USAGE, "unexpected option");
		}
	}
	if (r < -1 || (r = p11km_check_args(cmd, argc - g.argi)) < 0)
		goto out;
	dir = p11km_state_dir(dir);
	if ((r = dup_str(&t->cert, argv[g.argi])) < 0 || (r = dup_str(&t->module, ctx->module_opt)) < 0 ||
	    (r = dup_str(&t->pin_source, ctx->pin_source_opt)) < 0)
		goto out;
	if (reload != NULL && t->n_reload > 0) {
		r = p11km_fail(P11KM_ERR_USAGE, "give --reload once");
		goto out;
	}
	if (reload != NULL && (r = split_words(reload, t->reload, &t->n_reload, "reload")) < 0)
		goto out;
	if ((t->id = id ? strdup(id) : default_id(t->cert)) == NULL) {
		r = p11km_fail(P11KM_ERR_USAGE, "give --id: the URI has no object label to name it by");
		goto out;
	}
	if ((r = p11km_track_id_check(t->id)) < 0 || (r = add_check(ctx, t)) < 0)
		goto out;
	/* again with the same settings: unchanged (the state is kept either way) */
	if ((r = p11km_track_load(dir, t->id, &old)) == 0) {
		struct p11km_track cfg = *old;

		text = p11km_track_json(t);
		memset(&cfg.step, 0, sizeof(*old) - offsetof(struct p11km_track, step));
		oldtext = p11km_track_json(&cfg);
		if (text != NULL && oldtext != NULL && strcmp(text, oldtext) == 0) {
			if (!ctx->quiet && !ctx->json)
				printf("unchanged: %s\n", t->id);
			r = 0;
			goto out;
		}
		if (!ctx->force) {
			r = p11km_fail(P11KM_ERR_EXISTS, "'%s' is tracked already with other settings; "
			               "give --force to replace them (its state is kept)", t->id);
			goto out;
		}
		/* keep the state */
		size_t off = offsetof(struct p11km_track, step);
		memcpy((char *)t + off, (char *)old + off, sizeof(*t) - off);
		memset((char *)old + off, 0, sizeof(*old) - off);
	} else if (r != P11KM_ERR_NOTFOUND) {
		goto out;
	}
	p11km_error_clear();
	if ((r = p11km_track_save(dir, t)) < 0)
		goto out;
	if (ctx->json) {
		char *s = p11km_track_json(t);
		printf("%s\n", s ? s : "{}");
		free(s);
	} else if (!ctx->quiet) {
		printf("tracking %s: %s\n", t->id, p11km_esc(t->cert));
	}
out:
	free(text);
	free(oldtext);
	p11km_track_free(old);
	p11km_track_free(t);
	return r < 0 ? r : 0;
}

/* --- list, show, remove ------------------------------------------------------------- */

static int
dir_opt(const struct p11km_cmd *cmd, int argc, char **argv, const char **dir, int *argi)
{
	struct p11km_getopt g = { 0 };
	int r;

	*dir = NULL;
	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r == O_STATE_DIR)
			*dir = g.optarg;
		else
			return r < 0 ? r : p11km_fail(P11KM_ERR_USAGE, "unexpected option");
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	*dir = p11km_state_dir(*dir);
	*argi = g.argi;
	return 0;
}

static json_t *
track_json_obj(const struct p11km_track *t)
{
	char *s = p11km_track_json(t);
	json_t *o = s ? json_loads(s, 0, NULL) : NULL;

	free(s);
	return o;
}

static int
cmd_track_list(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	const char *dir;
	char **ids = NULL;
	size_t n = 0;
	json_t *arr = json_array();
	int argi, r;

	if ((r = dir_opt(cmd, argc, argv, &dir, &argi)) < 0 || (r = p11km_track_ids(dir, &ids, &n)) < 0)
		goto out;
	if (!ctx->json && n > 0)
		printf("%-20s %-10s %-12s %-20s %s\n", "ID", "STEP", "LAST", "CA", "CERTIFICATE");
	for (size_t i = 0; i < n; i++) {
		struct p11km_track *t = NULL;
		if ((r = p11km_track_load(dir, ids[i], &t)) < 0)
			goto out;
		if (ctx->json)
			json_array_append_new(arr, track_json_obj(t));
		else
			printf("%-20s %-10s %-12s %-20s %s\n", t->id, p11km_track_step_name(t->step),
			       t->last_result ? t->last_result : "-", t->ca ? p11km_esc(t->ca) : "-",
			       p11km_esc(t->cert));
		p11km_track_free(t);
	}
	if (ctx->json)
		print_json(arr);
out:
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	json_decref(arr);
	return r;
}

static int
cmd_track_show(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_track *t = NULL;
	const char *dir;
	char *s;
	int argi, r;

	(void)ctx;
	if ((r = dir_opt(cmd, argc, argv, &dir, &argi)) < 0 ||
	    (r = p11km_track_load(dir, argv[argi], &t)) < 0)
		return r;
	s = p11km_track_json(t);
	printf("%s\n", s ? s : "{}");
	free(s);
	p11km_track_free(t);
	return 0;
}

static int
cmd_track_remove(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	const char *dir;
	int argi, r;

	if ((r = dir_opt(cmd, argc, argv, &dir, &argi)) < 0 ||
	    (r = p11km_track_id_check(argv[argi])) < 0 || (r = p11km_track_remove(dir, argv[argi])) < 0)
		return r;
	if (!ctx->quiet && !ctx->json)
		printf("no longer tracked: %s\n", argv[argi]);
	return 0;
}

/* --- renew -------------------------------------------------------------------------- */

static void
iso_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t <= 0 || gmtime_r(&t, &tm) == NULL)
		snprintf(buf, len, "-");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void
print_renew(struct p11km_ctx *ctx, const struct p11km_renew_result *res)
{
	json_t *arr = json_array();
	char na[32], nx[32];

	for (size_t i = 0; i < res->n; i++) {
		const struct p11km_renew_item *it = &res->items[i];
		iso_time(it->not_after, na, sizeof(na));
		iso_time(it->next_attempt, nx, sizeof(nx));
		if (ctx->json) {
			json_array_append_new(arr, json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:I}",
			    "id", it->id, "result", p11km_renew_outcome_name(it->outcome),
			    "reason", it->reason, "old_serial", it->old_serial,
			    "new_serial", it->new_serial, "not_after", it->not_after ? na : NULL,
			    "next_attempt", it->next_attempt ? nx : NULL,
			    "pruned", (json_int_t)it->pruned));
			continue;
		}
		printf("%s: %s", it->id, p11km_renew_outcome_name(it->outcome));
		if (it->outcome == P11KM_RENEW_RENEWED)
			printf(" (serial %s, not after %s)", it->new_serial ? it->new_serial : "?", na);
		else if (it->reason != NULL)
			printf(": %s", p11km_esc(it->reason));
		if (it->next_attempt > 0 && it->outcome != P11KM_RENEW_RENEWED)
			printf("; next attempt %s", nx);
		printf("\n");
	}
	if (ctx->json)
		print_json(arr);
	json_decref(arr);
}

static int
cmd_renew(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_renew_opts o;
	struct p11km_renew_result res;
	long v;
	int r, force = ctx->force;

	memset(&o, 0, sizeof(o));
	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_ALL: o.all = 1; break;
		case O_DRY_RUN: o.dry_run = 1; break;
		case O_WAIT: o.wait = 1; break;
		case O_PRE_HOOK: o.pre_hook = g.optarg; break;
		case O_POST_HOOK: o.post_hook = g.optarg; break;
		case O_DEPLOY_HOOK: o.deploy_hook = g.optarg; break;
		case O_HOOK_TIMEOUT:
			if ((r = number(g.optarg, 86400, "hook-timeout", &v)) < 0)
				return r;
			o.hook_timeout = (unsigned)v;
			break;
		case O_CONFIG_DIR: o.ca_dir = g.optarg; break;
		case O_STATE_DIR: o.state_dir = g.optarg; break;
		default: return r < 0 ? r : p11km_fail(P11KM_ERR_USAGE, "unexpected option");
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	if (o.all == (argc - g.argi > 0))
		return p11km_fail(P11KM_ERR_USAGE, "give tracking ids or --all (not both)");
	o.ids = (const char *const *)argv + g.argi;
	o.n_ids = (size_t)(argc - g.argi);
	/* --force here: not due, backoff; it overrides nothing else of the run */
	o.force = force;
	ctx->force = 0;
	r = p11km_renew(ctx, &o, &res);
	ctx->force = force;
	if (r < 0)
		return r;
	print_renew(ctx, &res);
	r = res.n_failed > 0 ? P11KM_ERR_FAILED : 0;
	if (r < 0)
		p11km_fail(r, "%d of %zu tracked certificates failed to renew", res.n_failed, res.n);
	p11km_renew_result_release(&res);
	return r;
}

/* --- status ------------------------------------------------------------------------- */

static const char *
level_name(enum p11km_status_level l)
{
	return l == P11KM_STATUS_OK ? "ok" : l == P11KM_STATUS_WARN ? "warn" : "expired";
}

static void
print_status(struct p11km_ctx *ctx, const struct p11km_status_result *res)
{
	json_t *arr = json_array();
	char na[32];

	if (!ctx->json && res->n > 0)
		printf("%-7s %-16s %-28s %-18s %-20s %5s %-10s %s\n", "LEVEL", "ID", "SUBJECT",
		       "SERIAL", "NOT AFTER", "DAYS", "STATE", "DETAIL");
	for (size_t i = 0; i < res->n; i++) {
		const struct p11km_status_row *w = &res->rows[i];
		iso_time(w->not_after, na, sizeof(na));
		if (ctx->json) {
			json_t *o = json_pack("{s:s,s:s?,s:s,s:s?,s:s?,s:s?,s:s?,s:I,s:s?,s:s?,s:s?,s:s?,"
			                      "s:s?,s:s?,s:s?}",
			    "level", level_name(w->level), "id", w->id, "source", w->source,
			    "token", w->token, "subject", w->subject, "serial", w->serial,
			    "not_after", w->not_after ? na : NULL, "days_left", (json_int_t)w->days_left,
			    "state", w->state, "last_result", w->last_result, "last_error", w->last_error,
			    "ca", w->ca, "bindings", w->bindings, "served_serial", w->served,
			    "error", w->error);
			if (w->n_probes > 0) {
				json_t *pa = json_array();
				for (size_t k = 0; k < w->n_probes; k++)
					json_array_append_new(pa, json_pack("{s:s,s:s?}", "address",
					    w->probes[k].addr, "serial", w->probes[k].serial));
				json_object_set_new(o, "probes", pa);
				json_object_set_new(o, "not_reloaded", json_boolean(w->not_reloaded));
			}
			json_array_append_new(arr, o);
			continue;
		}
		printf("%-7s %-16s %-28s %-18s %-20s %5ld %-10s %s%s%s%s%s", level_name(w->level),
		       w->id ? w->id : "-", w->subject ? p11km_esc(w->subject) : "-",
		       w->serial ? w->serial : "-", na, w->days_left, w->state ? w->state : "-",
		       w->not_reloaded ? "installed but not reloaded;" :
		       w->error ? p11km_esc(w->error) : w->last_error ? p11km_esc(w->last_error) :
		       w->last_result ? w->last_result : "",
		       w->served ? " served " : "", w->served ? w->served : "",
		       w->bindings && *w->bindings ? " bindings " : "",
		       w->bindings ? p11km_esc(w->bindings) : "");
		for (size_t k = 0; w->not_reloaded && k < w->n_probes; k++)
			printf(" %s serves %s", w->probes[k].addr,
			       w->probes[k].serial ? w->probes[k].serial : "(no answer)");
		printf("\n");
	}
	if (ctx->json)
		print_json(arr);
	json_decref(arr);
}

static int
cmd_status(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_status_opts o;
	struct p11km_status_result res;
	const char *prom = NULL;
	long v;
	int r;

	memset(&o, 0, sizeof(o));
	o.warn_days = -1;
	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_WARN_DAYS:
			if ((r = number(g.optarg, 3650, "warn-days", &v)) < 0)
				return r;
			o.warn_days = (int)v;
			break;
		case O_PROM: prom = g.optarg; break;
		case O_PROBE: o.probe = 1; break;
		case O_STATE_DIR: o.state_dir = g.optarg; break;
		default: return r < 0 ? r : p11km_fail(P11KM_ERR_USAGE, "unexpected option");
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	o.args = (const char *const *)argv + g.argi;
	o.n_args = (size_t)(argc - g.argi);
	if ((r = p11km_status(ctx, &o, &res)) < 0)
		return r;
	if (prom != NULL && (r = p11km_status_prom(&res, prom)) < 0) {
		p11km_status_result_release(&res);
		return r;
	}
	print_status(ctx, &res);
	/* monitoring: 0 all fine, 1 something to look at, 5 something expired */
	if (res.worst == P11KM_STATUS_EXPIRED)
		r = p11km_fail(P11KM_ERR_VERIFY, "a certificate has expired");
	else if (res.worst == P11KM_STATUS_WARN)
		r = p11km_fail(P11KM_ERR_FAILED, "a certificate is inside its renewal window and not "
		               "being renewed, or its renewal failed");
	p11km_status_result_release(&res);
	return r;
}

const struct p11km_cmd p11km_cmds_track[] = {
	{ "add", "CERT-URI", "track a certificate on a token for unattended renewal", cmd_track_add,
	  add_opts, 1, 1, 0 },
	{ "list", NULL, "the tracked certificates", cmd_track_list, dir_opts, 0, 0, 0 },
	{ "show", "ID", "one tracked certificate: settings and state (JSON)", cmd_track_show,
	  dir_opts, 1, 1, 0 },
	{ "remove", "ID", "stop tracking a certificate (the token is not touched)", cmd_track_remove,
	  dir_opts, 1, 1, 0 },
	{ "renew", "[ID...]", "renew the tracked certificates that are due (also 'p11km renew')",
	  cmd_renew, renew_opts, 0, -1, P11KM_CMD_CHANGES_TOKEN },
	{ "status", "[ID|URI|FILE|DIR...]", "expiry and renewal state, for people and monitoring "
	  "(also 'p11km status')", cmd_status, status_opts, 0, -1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
