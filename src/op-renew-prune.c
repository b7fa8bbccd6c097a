/* op-renew-prune.c: what a renewal retired ("<label>.retired-DATE": the old
 * certificate, with a rekey the old key pair, and what a rollback put
 * aside), destroyed once the entry's grace period (track add --prune-after,
 * 30 days by default) is over, through the prune operation (op-prune.c),
 * on the run's session.  What a binding beside the entry's bindings still
 * uses is kept.  A renewal records when the next prune is due, so a run
 * with nothing to prune spends no PKCS#11 call on it. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/op.h"
#include "p11km/track.h"
#include "p11km/util.h"

#include "op-renew.h"

/* The first moment objects retired now are older than the grace period
 * (a retired label carries its day: the end of that day counts). */
static time_t
prune_time(time_t retired, int days)
{
	return ((retired / 86400) + days + 1) * 86400;
}

void
renew_prune_schedule(struct renew_one *r1)
{
	int days = p11km_track_prune_days(r1->t);

	if (days >= 0 && r1->t->prune_at == 0)
		r1->t->prune_at = prune_time(r1->run->now, days);
}

/* The directories that hold the entry's bindings (their siblings are
 * bindings too: what any of them uses is kept). */
static size_t
binding_parents(const struct p11km_track *t, char **v)
{
	size_t n = 0;

	for (size_t i = 0; i < t->n_bind; i++) {
		const char *sl = strrchr(t->bind[i], '/');
		char *d = sl == NULL ? NULL : sl == t->bind[i] ? strdup("/")
		                                              : strndup(t->bind[i], sl - t->bind[i]);
		int dup = 0;
		for (size_t k = 0; d != NULL && k < n; k++)
			dup |= strcmp(v[k], d) == 0;
		if (d != NULL && !dup)
			v[n++] = d;
		else
			free(d);
	}
	return n;
}

int
renew_prune(struct renew_one *r1)
{
	struct p11km_track *t = r1->t;
	struct p11km_prune_opts po;
	struct p11km_prune_result pr;
	char *dirs[P11KM_TRACK_MAX_BIND];
	int days = p11km_track_prune_days(t), r;

	if (days < 0 || t->prune_at == 0 || r1->run->now < t->prune_at || r1->run->o->dry_run ||
	    t->step != P11KM_STEP_IDLE || r1->live == NULL || r1->label == NULL)
		return 0;
	memset(&po, 0, sizeof(po));
	po.uri = r1->h->tok->uri;
	po.older_than = days;
	po.label = r1->label;
	po.keys = t->rekey != NULL && strcmp(t->rekey, "never") != 0;
	po.session = &r1->h->s;
	po.n_more_bindings = binding_parents(t, dirs);
	po.more_bindings = (const char *const *)dirs;
	if ((r = p11km_cert_prune(r1->run->ctx, &po, &pr)) < 0) {
		/* the renewal goes on; the next run tries again */
		p11km_warn("%s: the retired objects were not pruned: %s", t->id, p11km_errmsg(r));
		p11km_error_clear();
	} else {
		r1->item->pruned = pr.n;
		for (size_t i = 0; i < pr.n; i++)
			p11km_note("%s: pruned %s (retired more than %d days ago)", t->id,
			           pr.destroyed[i], days);
		p11km_prune_result_release(&pr);
		/* what the last renewal retired may still be inside the grace period */
		t->prune_at = t->last_renewed != 0 && prune_time(t->last_renewed, days) > r1->run->now
		              ? prune_time(t->last_renewed, days) : 0;
		r = renew_save(r1);
	}
	for (size_t i = 0; i < po.n_more_bindings; i++)
		free(dirs[i]);
	return r < 0 ? r : 0;
}
