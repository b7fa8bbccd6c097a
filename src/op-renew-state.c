/* op-renew-state.c: what the steps of the renew operation share: the
 * entry's work files and its record, failures with their backoff, the
 * run's token sessions, the live certificate. */
#include "config.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "p11km/op.h"
#include "p11km/track.h"
#include "p11km/util.h"
#include "p11km/x509.h"
#include "p11km/req.h"

#include "op-renew.h"

void
renew_say(struct p11km_renew_item *it, enum p11km_renew_outcome oc, const char *fmt, ...)
{
	va_list ap;
	char *s;

	/* formatted before the old reason goes: an argument may be it */
	va_start(ap, fmt);
	s = p11km_vasprintf(fmt, ap);
	va_end(ap);
	free(it->reason);
	it->reason = s;
	it->outcome = oc;
}

int
renew_set_str(char **slot, const char *v)
{
	char *c = v ? strdup(v) : NULL;

	if (v != NULL && c == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	free(*slot);
	*slot = c;
	return 0;
}

int
renew_deploys(const struct p11km_track *t)
{
	return t->n_bind > 0 || t->n_reload > 0 || t->verify != NULL;
}

char *
renew_work(struct renew_one *r1, const char *name)
{
	return p11km_track_work(r1->run->dir, r1->t->id, name);
}

void
renew_kill_point(const char *point)
{
	const char *k = getenv("P11KM_TEST_KILL_AT");

	if (k != NULL && strcmp(k, point) == 0)
		raise(SIGKILL);
}

int
renew_save(struct renew_one *r1)
{
	int r;

	r1->t->last_run = r1->run->now;
	if (r1->run->o->dry_run)
		return 0;
	if ((r = p11km_track_save(r1->run->dir, r1->t)) == 0)
		renew_kill_point(p11km_track_step_name(r1->t->step));
	return r;
}

int
renew_failed(struct renew_one *r1, int code, const char *what)
{
	struct p11km_track *t = r1->t;
	char *msg = p11km_asprintf("%s: %s", what, p11km_errmsg(code));

	t->attempts++;
	t->next_attempt = r1->run->now + p11km_track_backoff(t->attempts);
	free(t->last_error);
	t->last_error = msg;
	(void)renew_set_str(&t->last_result, "failed");
	renew_say(r1->item, P11KM_RENEW_FAILED, "%s", msg ? msg : what);
	r1->item->next_attempt = t->next_attempt;
	r1->run->res->n_failed++;
	p11km_error_clear();
	if (renew_save(r1) < 0)
		p11km_warn("cannot record the failure of '%s': %s", t->id, p11km_errmsg(-1));
	return 0;
}

/* --- the token ---------------------------------------------------------------------- */

void
renew_held_drop(struct renew_run *run)
{
	for (size_t i = 0; i < run->n_held; i++) {
		run->held[i].s.open = 0;
		run->held[i].s.certs = NULL;
		p11km_tokcerts_free(run->held[i].certs);
		p11km_token_free(run->held[i].tok);
	}
	free(run->held);
	run->held = NULL;
	run->n_held = 0;
}

int
renew_held_get(struct renew_one *r1)
{
	struct renew_run *run = r1->run;
	struct renew_held *nh;
	int r;

	for (size_t i = 0; i < run->n_held; i++)
		if (p11km_uri_match_token(r1->uri, NULL, NULL, &run->held[i].tok->info)) {
			r1->h = &run->held[i];
			return 0;
		}
	if ((nh = realloc(run->held, (run->n_held + 1) * sizeof(*nh))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	run->held = nh;
	memset(&nh[run->n_held], 0, sizeof(*nh));
	if ((r = p11km_token_open(run->ctx, r1->uri, P11KM_OPEN_RW | P11KM_OPEN_LOGIN |
	                          P11KM_OPEN_INITIALISED, &nh[run->n_held].tok,
	                          &nh[run->n_held].s)) < 0)
		return r;
	r1->h = &nh[run->n_held++];
	/* a batch: the token's certificates read once (under the token's lock,
	 * which the read-write session took), unless there are many more of
	 * them than a search for each entry's would cost */
	if (run->n_entries > 1 && !run->reopened) {
		if ((r = p11km_tokcerts_load(&r1->h->s, 8 * run->n_entries + 16, &r1->h->certs)) < 0)
			return r;
		r1->h->s.certs = r1->h->certs;
	}
	return 0;
}

time_t
renew_asn1_time(const ASN1_TIME *a)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	return a != NULL && ASN1_TIME_to_tm(a, &tm) == 1 ? timegm(&tm) : 0;
}

int
renew_read_live(struct renew_one *r1)
{
	struct p11km_object co;
	struct p11km_cert_summary cs = { 0 };
	X509 *x = NULL;
	int r;

	X509_free(r1->live);
	r1->live = NULL;
	if ((r = p11km_object_find_one(&r1->h->s, r1->uri, CKO_CERTIFICATE, &co)) < 0)
		return r;
	if (co.value_len == 0)
		r = p11km_fail(P11KM_ERR_INPUT, "the tracked certificate object has no value");
	else
		r = p11km_cert_from_der(co.value, co.value_len, "the certificate on the token", &x);
	if (r == 0 && (r = p11km_cert_summary_x509(x, &cs)) == 0) {
		free(r1->label);
		free(r1->live_serial);
		free(r1->live_sha256);
		free(r1->live_key_id);
		free(r1->live_id);
		r1->label = strdup(co.label ? co.label : "");
		r1->live_serial = cs.serial;
		r1->live_sha256 = cs.sha256;
		r1->live_key_id = co.id_len ? p11km_hex(co.id, co.id_len) : strdup("");
		r1->live_id = co.id;
		r1->live_id_len = co.id_len;
		co.id = NULL;
		co.id_len = 0;
		cs.serial = cs.sha256 = NULL;
		r1->nb = renew_asn1_time(X509_get0_notBefore(x));
		r1->na = renew_asn1_time(X509_get0_notAfter(x));
		r1->item->not_after = r1->na;
		r1->live = x;
		x = NULL;
		if (r1->label == NULL || r1->live_key_id == NULL)
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	p11km_cert_summary_release(&cs);
	p11km_object_release(&co);
	X509_free(x);
	return r;
}

