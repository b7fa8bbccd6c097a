/* cli-track.c: the library half of 'track add/list/show/remove', 'renew'
 * and 'status': their options parsed into the operations' structs; what
 * they print on stdout, text or one JSON document (a failure after it adds
 * no second one); and the verdicts of renew and status runs. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "p11km/cmd.h"
#include "p11km/json.h"
#include "p11km/op-track.h"
#include "p11km/util.h"

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

static void
iso_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t <= 0 || gmtime_r(&t, &tm) == NULL)
		snprintf(buf, len, "-");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* --- options ------------------------------------------------------------------- */

static int
number(const char *opt, const char *s, long max, long *out)
{
	char *end = NULL;
	long v = strtol(s, &end, 10);

	if (end == s || *end != '\0' || v < 0 || v > max)
		return p11km_fail(P11KM_ERR_USAGE, "--%s '%s': give a number from 0 to %ld", opt, s, max);
	*out = v;
	return 0;
}

int
p11km_track_args_parse(const struct p11km_cmd *cmd, int argc, char **argv,
                       struct p11km_track_args *a, int *argi)
{
	struct p11km_getopt g = { 0 };
	long v;
	int r;

	if ((r = p11km_track_reload_tail(&argc, argv, (char ***)&a->add.reload_argv,
	                                 &a->add.n_reload_argv)) < 0)
		return r;
	a->status.warn_days = -1;
	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r == P11KM_TRACK_OPT_BIND && a->add.n_bind == P11KM_TRACK_MAX_BIND)
			return p11km_fail(P11KM_ERR_USAGE, "at most %d --bind", P11KM_TRACK_MAX_BIND);
		if (r == P11KM_TRACK_OPT_BIND)
			a->add.bind[a->add.n_bind++] = g.optarg;
		else if ((r = p11km_opt_set(a, r, g.optarg)) < 0)
			return r;
	}
	*argi = g.argi;
	/* the positional arguments: add's certificate, renew's ids, status's arguments */
	a->add.cert = g.argi < argc ? argv[g.argi] : NULL;
	a->renew.ids = a->status.args = (const char *const *)argv + g.argi;
	a->renew.n_ids = a->status.n_args = (size_t)(argc - g.argi);
	if (a->hook_timeout != NULL) {
		if ((r = number("hook-timeout", a->hook_timeout, 86400, &v)) < 0)
			return r;
		a->renew.hook_timeout = (unsigned)v;
	}
	if (a->ca_wait != NULL) {
		if ((r = number("ca-wait", a->ca_wait, 3600, &v)) < 0)
			return r;
		a->renew.ca_wait = v == 0 ? 1 : (unsigned)v;
	}
	if (a->warn_days != NULL) {
		if ((r = number("warn-days", a->warn_days, 3650, &v)) < 0)
			return r;
		a->status.warn_days = (int)v;
	}
	return p11km_check_args(cmd, argc - g.argi);
}

/* --- track add, list, show ----------------------------------------------------- */

void
p11km_track_show_print(const struct p11km_track *t)
{
	char *s = p11km_track_json(t);

	printf("%s\n", s ? s : "{}");
	free(s);
}

void
p11km_track_add_print(const struct p11km_ctx *ctx, const struct p11km_track_add_result *res)
{
	if (res->unchanged) {
		if (!p11km_cli()->quiet && !p11km_cli()->json)
			printf("unchanged: %s\n", res->t->id);
	} else if (p11km_cli()->json) {
		p11km_track_show_print(res->t);
	} else if (!p11km_cli()->quiet) {
		printf("tracking %s: %s\n", res->t->id, p11km_esc(res->t->cert));
	}
}

void
p11km_track_list_print(const struct p11km_ctx *ctx, struct p11km_track *const *v, size_t n)
{
	json_t *arr = json_array();

	if (!p11km_cli()->json && n > 0)
		printf("%-20s %-10s %-12s %-20s %s\n", "ID", "STEP", "LAST", "CA", "CERTIFICATE");
	for (size_t i = 0; i < n; i++) {
		const struct p11km_track *t = v[i];
		char *s;
		if (!p11km_cli()->json) {
			printf("%-20s %-10s %-12s %-20s %s\n", t->id, p11km_track_step_name(t->step),
			       t->last_result ? t->last_result : "-", t->ca ? p11km_esc(t->ca) : "-",
			       p11km_esc(t->cert));
			continue;
		}
		s = p11km_track_json(t);
		json_array_append_new(arr, s ? json_loads(s, 0, NULL) : json_null());
		free(s);
	}
	if (p11km_cli()->json)
		print_json(arr);
	json_decref(arr);
}

/* --- renew ---------------------------------------------------------------------- */

void
p11km_renew_print(const struct p11km_ctx *ctx, const struct p11km_renew_result *res)
{
	json_t *arr = json_array();
	char na[32], nx[32];

	for (size_t i = 0; i < res->n; i++) {
		const struct p11km_renew_item *it = &res->items[i];
		iso_time(it->not_after, na, sizeof(na));
		iso_time(it->next_attempt, nx, sizeof(nx));
		if (p11km_cli()->json) {
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
	if (p11km_cli()->json)
		print_json(arr);
	json_decref(arr);
}

int
p11km_renew_verdict(const struct p11km_renew_result *res)
{
	if (res->n_failed > 0)
		return p11km_fail(P11KM_ERR_FAILED, "%d of %zu tracked certificates failed to renew",
		                  res->n_failed, res->n);
	return 0;
}

/* --- status --------------------------------------------------------------------- */

static const char *
level_name(enum p11km_status_level l)
{
	return l == P11KM_STATUS_OK ? "ok" : l == P11KM_STATUS_WARN ? "warn" : "expired";
}

static json_t *
status_json(const struct p11km_status_row *w, const char *na)
{
	json_t *o = json_pack("{s:s,s:s?,s:s,s:s?,s:s?,s:s?,s:s?,s:I,s:s?,s:s?,s:s?,s:s?,s:s?,s:s?,"
	                      "s:s?}",
	    "level", level_name(w->level), "id", w->id, "source", w->source,
	    "token", w->token, "subject", w->subject, "serial", w->serial,
	    "not_after", w->not_after ? na : NULL, "days_left", (json_int_t)w->days_left,
	    "state", w->state, "last_result", w->last_result, "last_error", w->last_error,
	    "ca", w->ca, "bindings", w->bindings, "served_serial", w->served, "error", w->error);

	if (o != NULL && w->n_probes > 0) {
		json_t *pa = json_array();
		for (size_t k = 0; k < w->n_probes; k++)
			json_array_append_new(pa, json_pack("{s:s,s:s?}", "address", w->probes[k].addr,
			                                    "serial", w->probes[k].serial));
		json_object_set_new(o, "probes", pa);
		json_object_set_new(o, "not_reloaded", json_boolean(w->not_reloaded));
	}
	return o;
}

static void
status_line(const struct p11km_status_row *w, const char *na)
{
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

void
p11km_status_print(const struct p11km_ctx *ctx, const struct p11km_status_result *res)
{
	json_t *arr = json_array();
	char na[32];

	if (!p11km_cli()->json && res->n > 0)
		printf("%-7s %-16s %-28s %-18s %-20s %5s %-10s %s\n", "LEVEL", "ID", "SUBJECT",
		       "SERIAL", "NOT AFTER", "DAYS", "STATE", "DETAIL");
	for (size_t i = 0; i < res->n; i++) {
		iso_time(res->rows[i].not_after, na, sizeof(na));
		if (p11km_cli()->json)
			json_array_append_new(arr, status_json(&res->rows[i], na));
		else
			status_line(&res->rows[i], na);
	}
	if (p11km_cli()->json)
		print_json(arr);
	json_decref(arr);
}

int
p11km_status_verdict(const struct p11km_status_result *res)
{
	/* monitoring: 0 all fine, 1 something to look at, 5 something expired */
	if (res->worst == P11KM_STATUS_EXPIRED)
		return p11km_fail(P11KM_ERR_VERIFY, "a certificate has expired");
	if (res->worst == P11KM_STATUS_WARN)
		return p11km_fail(P11KM_ERR_FAILED, "a certificate is inside its renewal window and "
		                  "not being renewed, or its renewal failed");
	return 0;
}
