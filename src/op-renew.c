/* op-renew.c: 'renew': the tracked certificates that are due, one step at a
 * time, each step recorded in the entry before the next begins:
 *
 *   idle -> requested (ID.d/request.pem) -> waiting (at the CA) -> issued
 *   (ID.d/chain.pem, stored before anything is installed) -> installed
 *   (token and bindings) -> reloaded -> verified: idle again.
 *
 * A run killed anywhere is finished by the next run from the step
 * recorded; the live certificate is read from the token on every run, so a
 * certificate renewed by someone else is noticed, never renewed twice.
 * One lock (DIR/renew.lock) for the whole run; one session and one login
 * per token for all its entries.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "p11km/ca.h"
#include "p11km/cert.h"
#include "p11km/lock.h"
#include "p11km/op.h"
#include "p11km/req.h"
#include "p11km/track.h"
#include "p11km/util.h"
#include "p11km/x509.h"

#include "op-renew.h"

const char *
p11km_renew_outcome_name(enum p11km_renew_outcome o)
{
	switch (o) {
	case P11KM_RENEW_RENEWED: return "renewed";
	case P11KM_RENEW_NOT_DUE: return "not due";
	case P11KM_RENEW_DUE: return "due";
	case P11KM_RENEW_WAITING: return "waiting";
	case P11KM_RENEW_FAILED: return "failed";
	}
	return "?";
}

/* --- request and submit --------------------------------------------------------------- */

static int
write_live_pem(struct renew_one *r1, const char *path)
{
	struct p11km_buf b = { 0 };
	int r;

	if ((r = p11km_cert_pem_append(r1->live, &b)) == 0)
		r = p11km_write_file_atomic(path, b.data, b.len, 0600);
	p11km_buf_release(&b);
	return r;
}

/* idle -> requested: the old certificate kept, the renewal request signed. */
static int
step_request(struct renew_one *r1)
{
	struct p11km_track *t = r1->t;
	struct p11km_req_opts ro;
	struct p11km_req_result rr = { 0 };
	char *wd = renew_work(r1, NULL), *req = renew_work(r1, "request.pem");
	char *old = renew_work(r1, "old.pem"), *chain = NULL, *prev = NULL;
	int r;

	memset(&ro, 0, sizeof(ro));
	ro.cert = t->cert;
	ro.out = req;
	ro.type = -1;
	ro.reuse_pending = 1;
	ro.tok = r1->h->tok;
	ro.session = &r1->h->s;
	ro.cert_x509 = r1->live;
	ro.key_id = r1->live_id;
	ro.key_id_len = r1->live_id_len;
	if (t->rekey != NULL && strcmp(t->rekey, "never") != 0) {
		ro.rekey = 1;
		if (strcmp(t->rekey, "always") != 0)
			ro.type = p11km_keytype_parse(t->rekey);
	}
	if (wd == NULL || req == NULL || old == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (mkdir(wd, 0700) != 0 && errno != EEXIST) {
		r = p11km_fail(P11KM_ERR_IO, "cannot create '%s': %s", wd, strerror(errno));
		goto out;
	}
	if (renew_deploys(t) && (r = write_live_pem(r1, old)) < 0)
		goto out;
	/* a chain.pem left by a run killed after its renewal was recorded */
	if ((chain = renew_work(r1, "chain.pem")) == NULL ||
	    (prev = renew_work(r1, "chain-prev.pem")) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (rename(chain, prev) != 0 && errno != ENOENT) {
		r = p11km_fail(P11KM_ERR_IO, "cannot rename '%s': %s", chain, strerror(errno));
		goto out;
	}
	if ((r = p11km_req_renew(r1->run->ctx, &ro, &rr)) < 0)
		goto out;
	renew_kill_point("signed");
	if (rr.have_key && rr.key_pub != NULL) {
		/* the install of this run finds the leaf by it */
		if (r1->have_key)
			p11km_object_release(&r1->key);
		EVP_PKEY_free(r1->key_pub);
		r1->key = rr.key;
		r1->key_pub = rr.key_pub;
		r1->have_key = 1;
		rr.have_key = 0;
		rr.key_pub = NULL;
	}
	if ((r = renew_set_str(&t->old_serial, r1->live_serial)) < 0 ||
	    (r = renew_set_str(&t->old_sha256, r1->live_sha256)) < 0 ||
	    (r = renew_set_str(&t->old_key_id, r1->live_key_id)) < 0 ||
	    (r = renew_set_str(&t->new_serial, NULL)) < 0)
		goto out;
	t->step = P11KM_STEP_REQUESTED;
	r = renew_save(r1);
	p11km_verbose("%s: renewal request signed (sha256 %s)%s", t->id, rr.sha256,
	              rr.rekey ? " with a new key" : "");
out:
	p11km_req_result_release(&rr);
	free(wd);
	free(req);
	free(old);
	free(chain);
	free(prev);
	return r;
}

/* The serial of the stored chain's first certificate into t->new_serial. */
static int
chain_serial(struct renew_one *r1, const char *path)
{
	STACK_OF(X509) *chain = NULL;
	struct p11km_cert_summary cs = { 0 };
	int r;

	if ((r = p11km_certs_read(path, P11KM_REPLY_MAX_CERTS, &chain)) == 0 &&
	    (r = p11km_cert_summary_x509(sk_X509_value(chain, 0), &cs)) == 0) {
		free(r1->t->new_serial);
		r1->t->new_serial = cs.serial;
		cs.serial = NULL;
	}
	p11km_cert_summary_release(&cs);
	sk_X509_pop_free(chain, X509_free);
	return r;
}

/* The issued chain into ID.d/chain.pem (before anything is installed). */
static int
store_chain(struct renew_one *r1, const char *pem, size_t len)
{
	char *path = renew_work(r1, "chain.pem"), *tmp = NULL;
	STACK_OF(X509) *chain = NULL;
	struct p11km_cert_summary cs = { 0 };
	int r;

	if (path == NULL || (tmp = p11km_asprintf("%s.new", path)) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* a reply that does not parse is not stored: the next run asks again */
	if ((r = p11km_write_file_atomic(tmp, pem, len, 0600)) < 0 ||
	    (r = p11km_certs_read(tmp, P11KM_REPLY_MAX_CERTS, &chain)) < 0 ||
	    (r = p11km_cert_summary_x509(sk_X509_value(chain, 0), &cs)) < 0)
		goto out;
	if (rename(tmp, path) != 0) {
		r = p11km_fail(P11KM_ERR_IO, "cannot rename '%s': %s", tmp, strerror(errno));
		goto out;
	}
	renew_kill_point("stored");
	free(r1->t->new_serial);
	r1->t->new_serial = cs.serial;
	cs.serial = NULL;
	r1->t->step = P11KM_STEP_ISSUED;
	r = renew_save(r1);
out:
	if (tmp != NULL)
		unlink(tmp);
	p11km_cert_summary_release(&cs);
	sk_X509_pop_free(chain, X509_free);
	free(tmp);
	free(path);
	return r;
}

/* file:DIR: the reply is stored with the entry; the CA's files are done with. */
static void
file_ca_done(struct renew_one *r1)
{
	char *csr, *crt;

	if (r1->t->ca == NULL || strncmp(r1->t->ca, "file:", 5) != 0)
		return;
	csr = p11km_asprintf("%s/%s.csr", r1->t->ca + 5, r1->t->id);
	crt = p11km_asprintf("%s/%s.crt", r1->t->ca + 5, r1->t->id);
	if (crt != NULL)
		(void)unlink(crt);
	if (csr != NULL)
		(void)unlink(csr);
	free(csr);
	free(crt);
}

/* file:DIR: the request goes to DIR/ID.csr, the reply is DIR/ID.crt. */
static int
submit_file(struct renew_one *r1)
{
	const char *cadir = r1->t->ca + 5;
	char *csr = p11km_asprintf("%s/%s.csr", cadir, r1->t->id);
	char *crt = p11km_asprintf("%s/%s.crt", cadir, r1->t->id), *req = renew_work(r1, "request.pem");
	unsigned char *data = NULL;
	size_t len = 0;
	int r = 0;

	if (csr == NULL || crt == NULL || req == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (r1->t->step == P11KM_STEP_REQUESTED) {
		/* a reply left from an earlier renewal answers no request of this one */
		if (unlink(crt) != 0 && errno != ENOENT) {
			r = p11km_fail(P11KM_ERR_IO, "cannot remove the old reply '%s': %s", crt,
			               strerror(errno));
			goto out;
		}
		if ((r = p11km_read_file(req, 1u << 20, &data, &len)) < 0 ||
		    (r = p11km_write_file_atomic(csr, data, len, 0644)) < 0)
			goto out;
		free(data);
		data = NULL;
		r1->t->step = P11KM_STEP_WAITING;
		if ((r = renew_save(r1)) < 0)
			goto out;
	}
	if (access(crt, F_OK) != 0) {
		renew_say(r1->item, P11KM_RENEW_WAITING, "waiting for the reply: the request is '%s', "
		         "the CA's reply goes to '%s'", csr, crt);
		(void)renew_set_str(&r1->t->last_result, "waiting");
		r = renew_save(r1);
		goto out;
	}
	if ((r = p11km_read_file(crt, 1u << 20, &data, &len)) < 0 ||
	    (r = store_chain(r1, (const char *)data, len)) < 0)
		goto out;
	file_ca_done(r1);
out:
	free(data);
	free(csr);
	free(crt);
	free(req);
	return r;
}

/* The request file as DER. */
static int
request_der(const char *path, unsigned char **der, size_t *len)
{
	unsigned char *data = NULL;
	BIO *bio = NULL;
	X509_REQ *req = NULL;
	size_t n = 0;
	int r = 0, l;

	*der = NULL;
	if ((r = p11km_read_file(path, 1u << 20, &data, &n)) < 0)
		return r;
	if ((bio = BIO_new_mem_buf(data, (int)n)) == NULL ||
	    (req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL)) == NULL ||
	    (l = i2d_X509_REQ(req, der)) <= 0)
		r = p11km_fail(P11KM_ERR_INPUT, "the stored request '%s' does not parse", path);
	else
		*len = (size_t)l;
	X509_REQ_free(req);
	BIO_free(bio);
	free(data);
	return r;
}

/* A request a helper or AD CS holds as pending (req submit's state, the
 * same file): its cookie, so this run asks again instead of submitting. */
static int
pending_resume(const char *dir, const struct p11km_ca_profile *p, const unsigned char *der,
               size_t der_len, struct p11km_ca_pending **pd, struct p11km_ca_submit *sub)
{
	int r = p11km_ca_pending_load(dir, p->name, der, der_len, pd);

	if (r == P11KM_ERR_NOTFOUND) {
		p11km_error_clear();
		return 0;
	}
	if (r == 0)
		sub->cookie_in = (*pd)->cookie;
	return r;
}

/* The CA holds the request: its cookie kept, the entry waits for the next run. */
static int
pending_wait(struct renew_one *r1, const struct p11km_ca_profile *p, const unsigned char *der,
             size_t der_len, const struct p11km_ca_submit *sub, const struct p11km_ca_pending *pd)
{
	int r = p11km_ca_pending_save(r1->run->dir, p->name, der, der_len, sub->cookie, sub->delay,
	                              pd ? pd->since : 0);

	if (r < 0)
		return r;
	r1->t->step = P11KM_STEP_WAITING;
	renew_say(r1->item, P11KM_RENEW_WAITING, "CA '%s' holds the request as pending%s; the next "
	          "run asks again", p->name, sub->cookie ? "" : " (it asks for it again later)");
	(void)renew_set_str(&r1->t->last_result, "waiting");
	return renew_save(r1);
}

/* The CA's steps (ACME: order, authorizations, validated ...), with --verbose. */
static void
submit_step(void *arg, const char *name, const char *detail)
{
	p11km_verbose("%s: %s: %s", (const char *)arg, name, p11km_esc(detail));
}

/* A CMP profile that sends kur: the certificate being updated (the live one,
 * as a file) and the token whose key protects the message. */
static int
kur_setup(struct renew_one *r1, const struct p11km_ca_profile *p, struct p11km_ca_submit *sub,
          char **old)
{
	if (strcmp(p->kind->name, "cmp") != 0 || p->cmd == NULL || strcmp(p->cmd, "kur") != 0)
		return 0;
	if (r1->live == NULL)
		return p11km_fail(P11KM_ERR_NOTFOUND, "a CMP kur updates the certificate on the "
		                  "token, and there is none");
	if ((*old = renew_work(r1, "kur-old.pem")) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	sub->old_cert = *old;
	sub->key_uri = r1->h->tok->uri;
	return write_live_pem(r1, *old);
}

/* A kur to a new key (--rekey) signs with the old key (the protection) and
 * the new one (the proof of possession) in one run; tpm2-pkcs11 over a TPM
 * keeps the first loaded and has no room for the second (tpm2-cmp.sh).
 * Refused before the new key is made: nothing on the token changes. */
static int
kur_rekey_check(struct renew_one *r1)
{
	struct p11km_ca_profile *p = NULL;
	const char *mod = r1->h->tok->mod ? r1->h->tok->mod->name : NULL;
	int r = 0;

	if (r1->t->rekey == NULL || strcmp(r1->t->rekey, "never") == 0 || r1->t->ca == NULL ||
	    strncmp(r1->t->ca, "file:", 5) == 0 || mod == NULL ||
	    (strstr(mod, "tpm2_pkcs11") == NULL && strstr(mod, "tpm2-pkcs11") == NULL))
		return 0;
	if (p11km_ca_profile_load(p11km_ca_dir(r1->run->o->ca_dir), r1->t->ca, &p) == 0 &&
	    strcmp(p->kind->name, "cmp") == 0 && p->cmd != NULL && strcmp(p->cmd, "kur") == 0)
		r = p11km_fail(P11KM_ERR_USAGE, "a CMP kur to a new key (--rekey %s) signs with the "
		               "old and the new key in one run, and a TPM (tpm2-pkcs11) has room for one "
		               "loaded key: track it with --rekey never, or give the CA profile --cmp-cmd "
		               "ir or p10cr; nothing was changed", r1->t->rekey);
	else
		p11km_error_clear();  /* a profile that does not load: submit says why */
	p11km_ca_profile_free(p);
	return r;
}

/* A CA profile: submit now (ACME: the chain comes back in this run). */
static int
submit_profile(struct renew_one *r1)
{
	struct renew_run *run = r1->run;
	struct p11km_ca_profile *p = NULL;
	struct p11km_ca_submit sub = { 0 };
	struct p11km_ca_pending *pd = NULL;
	unsigned char *der = NULL;
	char *chain = NULL, *req = renew_work(r1, "request.pem"), *old = NULL;
	size_t der_len = 0, chain_len = 0;
	int r;

	sub.standalone = r1->t->standalone;
	sub.webroot = r1->t->webroot;
	sub.max_wait = run->o->ca_wait ? run->o->ca_wait : 120;
	sub.step = submit_step;
	sub.step_arg = r1->t->id;
	if (req == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	else if ((r = p11km_ca_profile_load(p11km_ca_dir(run->o->ca_dir), r1->t->ca, &p)) == 0 &&
	         (r = request_der(req, &der, &der_len)) == 0 &&
	         (r = kur_setup(r1, p, &sub, &old)) == 0 &&
	         (r = pending_resume(run->dir, p, der, der_len, &pd, &sub)) == 0 &&
	         (r = p->kind->submit(run->ctx, p, der, der_len, &sub, &chain, &chain_len)) < 0)
		r = renew_failed(r1, r, "the CA did not issue");
	else if (r == 0 && sub.pending)
		r = pending_wait(r1, p, der, der_len, &sub, pd);
	else if (r == 0 && (r = store_chain(r1, chain, chain_len)) == 0 && pd != NULL &&
	         p11km_ca_pending_remove(run->dir, p->name, der, der_len) < 0)
		p11km_warn("%s", p11km_errmsg(P11KM_ERR_IO));
	p11km_ca_pending_free(pd);
	p11km_ca_submit_release(&sub);
	p11km_ca_profile_free(p);
	free(der);
	free(chain);
	free(req);
	free(old);
	return r;
}

/* --- one entry ------------------------------------------------------------------------ */

/* A renewal under way, but the token holds neither the old certificate nor
 * the new one: someone renewed it by hand.  That renewal is dropped. */
static int
renewed_elsewhere(struct renew_one *r1)
{
	struct p11km_track *t = r1->t;

	if (t->step == P11KM_STEP_IDLE || r1->live == NULL || t->old_serial == NULL)
		return 0;
	if (strcmp(r1->live_serial, t->old_serial) == 0 ||
	    (t->new_serial != NULL && strcmp(r1->live_serial, t->new_serial) == 0))
		return 0;
	p11km_note("%s: the token holds another certificate now (serial %s, not %s): renewed "
	           "by someone else; the renewal under way (%s) is dropped", t->id, r1->live_serial,
	           t->old_serial, p11km_track_step_name(t->step));
	t->step = P11KM_STEP_IDLE;
	return 1;
}

/* ARI (RFC 9773 4.2): the renewal time is chosen once per window, at
 * random inside it (uniformly: many machines that got the same window do
 * not renew at the same moment), and kept in the entry; the CA is asked
 * again when its Retry-After has passed, when the certificate or the
 * profile changed, and a new window gets a new choice.  A time before the
 * next run (the timer runs twice a day) is now.  The choice moves the due
 * time earlier, never later (the dates stay the limit).  A CA without
 * renewalInfo, or one that does not answer, leaves the dates' due time
 * (said with --verbose). */
#define ARI_RUN_INTERVAL (12 * 3600)   /* p11km-renew.timer: twice a day */
#define ARI_DEFAULT_RECHECK (6 * 3600) /* without Retry-After */

static time_t
ari_pick(time_t start, time_t end)
{
	unsigned long long rnd = 0;

	if (end <= start)
		return start;
	if (RAND_bytes((unsigned char *)&rnd, sizeof(rnd)) != 1)
		rnd = (unsigned long long)getpid() * 2654435761u ^ (unsigned long long)time(NULL);
	return start + (time_t)(rnd % (unsigned long long)(end - start));
}

/* Ask the CA (when the entry's answer is stale) and record the window. */
static int
ari_refresh(struct renew_one *r1, const struct p11km_ca_profile *p)
{
	struct p11km_track *t = r1->t;
	struct p11km_renewal_window w;
	time_t now = r1->run->now;
	int r;

	if (t->ari_serial != NULL && strcmp(t->ari_serial, r1->live_serial) == 0 &&
	    t->ari_ca != NULL && strcmp(t->ari_ca, p->name) == 0 && now < t->ari_next_check)
		return 0;
	if ((r = p11km_acme_renewal_window(r1->run->ctx, p, r1->live, &w)) < 0)
		return r;
	if (t->ari_serial == NULL || strcmp(t->ari_serial, r1->live_serial) != 0 ||
	    t->ari_ca == NULL || strcmp(t->ari_ca, p->name) != 0 || t->ari_start != w.start ||
	    t->ari_end != w.end) {
		t->ari_start = w.start;
		t->ari_end = w.end;
		t->ari_renew_at = ari_pick(w.start, w.end);
		p11km_verbose("%s: the CA's renewal window (ARI) is %ld s long; renewing %ld s into "
		              "it", t->id, (long)(w.end - w.start), (long)(t->ari_renew_at - w.start));
	}
	t->ari_next_check = now + (w.retry_after > 0 ? w.retry_after : ARI_DEFAULT_RECHECK);
	p11km_renewal_window_release(&w);
	if ((r = renew_set_str(&t->ari_serial, r1->live_serial)) < 0 ||
	    (r = renew_set_str(&t->ari_ca, p->name)) < 0)
		return r;
	return 0;
}

static time_t
ari_due(struct renew_one *r1, time_t due)
{
	struct p11km_ca_profile *p = NULL;
	struct p11km_track *t = r1->t;
	const char *ca = t->ca;
	time_t at;
	int r;

	if (ca == NULL || strncmp(ca, "file:", 5) == 0 || r1->live == NULL)
		return due;
	if (p11km_ca_profile_load(p11km_ca_dir(r1->run->o->ca_dir), ca, &p) < 0 ||
	    strcmp(p->kind->name, "acme") != 0) {
		p11km_error_clear();
		p11km_ca_profile_free(p);
		return due;
	}
	if ((r = ari_refresh(r1, p)) < 0) {
		p11km_verbose("%s: no renewal window from the CA: %s", t->id, p11km_errmsg(r));
		p11km_error_clear();
	}
	p11km_ca_profile_free(p);
	if (t->ari_serial == NULL || strcmp(t->ari_serial, r1->live_serial) != 0)
		return due;
	at = t->ari_renew_at < r1->run->now + ARI_RUN_INTERVAL ? r1->run->now : t->ari_renew_at;
	if (at < due) {
		p11km_verbose("%s: the CA's renewal window (ARI) starts %ld s before the dates say",
		              t->id, (long)(due - t->ari_start));
		due = at;
	}
	return due;
}

static int
renew_entry(struct renew_one *r1)
{
	struct renew_run *run = r1->run;
	struct p11km_track *t = r1->t;
	char *chain = NULL;
	time_t due;
	int r;

	if (run->pin_opt == NULL && (r = p11km_track_pin_check(t->pin_source)) < 0)
		return renew_failed(r1, r, "the tracked PIN source");
	run->ctx->pin_source_opt = run->pin_opt ? run->pin_opt : t->pin_source;
	if ((r = p11km_uri_parse(t->cert, &r1->uri)) < 0 || (r = renew_held_get(r1)) < 0)
		return renew_failed(r1, r, "the token");
	r = renew_read_live(r1);
	/* installing: old and new may both carry the label for a moment */
	if (r < 0 && !(r == P11KM_ERR_AMBIGUOUS && t->step >= P11KM_STEP_ISSUED))
		return renew_failed(r1, r, "the tracked certificate");
	p11km_error_clear();
	if (r1->live != NULL && t->step == P11KM_STEP_IDLE && t->old_serial != NULL &&
	    strcmp(t->old_serial, r1->live_serial) != 0)
		p11km_note("%s: the token holds a newer certificate (serial %s) than the last run "
		           "saw (%s): renewed by someone else, not renewed again", t->id,
		           r1->live_serial, t->old_serial);
	/* the chain is stored before the step is: a run killed in between */
	if ((t->step == P11KM_STEP_REQUESTED || t->step == P11KM_STEP_WAITING) &&
	    (chain = renew_work(r1, "chain.pem")) != NULL && access(chain, F_OK) == 0) {
		t->step = P11KM_STEP_ISSUED;
		r = chain_serial(r1, chain);
		free(chain);
		if (r < 0 || (r = renew_save(r1)) < 0)
			return renew_failed(r1, r, "the stored chain");
	} else {
		free(chain);
	}
	if (renewed_elsewhere(r1) || (t->step == P11KM_STEP_IDLE && r1->live != NULL)) {
		if ((r = renew_set_str(&t->old_serial, r1->live_serial)) < 0)
			return r;
		r1->item->old_serial = strdup(r1->live_serial);
	}
	if ((r = renew_prune(r1)) < 0)
		return renew_failed(r1, r, "recording the prune");
	if (t->step == P11KM_STEP_IDLE) {
		due = ari_due(r1, p11km_track_due(t, r1->nb, r1->na));
		if (run->now < due && !run->o->force) {
			renew_say(r1->item, P11KM_RENEW_NOT_DUE, "due in %ld days",
			         (long)((due - run->now) / 86400));
			r1->item->next_attempt = due;
			(void)renew_set_str(&t->last_result, "not due");
			return renew_save(r1);
		}
	}
	/* a failed attempt waits for its backoff, whatever step it failed in */
	if (t->next_attempt > run->now && !run->o->force) {
		renew_say(r1->item, P11KM_RENEW_FAILED, "%s (attempt %ld failed; the next one not "
		          "before the backoff ends)", t->last_error ? t->last_error : "failed",
		          t->attempts);
		r1->item->next_attempt = t->next_attempt;
		run->res->n_failed++;
		return 0;
	}
	if (run->o->dry_run && t->step == P11KM_STEP_IDLE) {
		renew_say(r1->item, P11KM_RENEW_DUE, "would be renewed");
		return 0;
	}
	if (run->o->dry_run) {
		renew_say(r1->item, P11KM_RENEW_WAITING, "a renewal is under way (%s)",
		         p11km_track_step_name(t->step));
		return 0;
	}
	if (!run->pre_done && run->o->pre_hook != NULL) {
		run->pre_done = 1;
		if ((r = renew_hook(run, run->o->pre_hook, NULL)) < 0)
			return renew_failed(r1, r, "the pre-hook");
	}
	run->pre_done = 1;
	if (t->step == P11KM_STEP_IDLE && (r = kur_rekey_check(r1)) < 0)
		return renew_failed(r1, r, "the renewal request");
	if (t->step == P11KM_STEP_IDLE && (r = step_request(r1)) < 0)
		return renew_failed(r1, r, "the renewal request");
	if (t->step == P11KM_STEP_REQUESTED || t->step == P11KM_STEP_WAITING) {
		if (t->ca == NULL)
			return renew_failed(r1, p11km_fail(P11KM_ERR_USAGE, "no --ca: give one with "
			                    "'track add --ca NAME|file:DIR'"), "submit");
		r = strncmp(t->ca, "file:", 5) == 0 ? submit_file(r1) : submit_profile(r1);
		if (r < 0)
			return renew_failed(r1, r, "submit");
	}
	if (t->step < P11KM_STEP_ISSUED)
		return 0;
	file_ca_done(r1);  /* again: a run killed before it got there */
	return renew_deploy(r1);
}

/* --- the run ------------------------------------------------------------------------- */

static void
one_release(struct renew_one *r1)
{
	X509_free(r1->live);
	free(r1->label);
	free(r1->live_serial);
	free(r1->live_sha256);
	free(r1->live_key_id);
	free(r1->live_id);
	if (r1->have_key)
		p11km_object_release(&r1->key);
	EVP_PKEY_free(r1->key_pub);
	p11km_uri_free(r1->uri);
	p11km_track_free(r1->t);
}

static int
run_one(struct renew_run *run, const char *id)
{
	struct p11km_renew_item *it;
	struct renew_one r1;
	int r;

	if ((it = realloc(run->res->items, (run->res->n + 1) * sizeof(*it))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	run->res->items = it;
	it = &it[run->res->n++];
	memset(it, 0, sizeof(*it));
	memset(&r1, 0, sizeof(r1));
	r1.run = run;
	r1.item = it;
	if ((it->id = strdup(id)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = p11km_track_load(run->dir, id, &r1.t)) < 0) {
		renew_say(it, P11KM_RENEW_FAILED, "%s", p11km_errmsg(r));
		run->res->n_failed++;
		return r == P11KM_ERR_NOMEM ? r : 0;
	}
	if (r1.t->module != NULL && run->ctx->module_opt == NULL)
		run->ctx->module_opt = r1.t->module;
	if (r1.t->module != NULL && strcmp(r1.t->module, run->ctx->module_opt) != 0) {
		r = renew_failed(&r1, p11km_fail(P11KM_ERR_USAGE, "tracked with module '%s', this run "
		                 "uses '%s'; renew it in a run of its own", r1.t->module,
		                 run->ctx->module_opt), "the module");
	} else {
		r = renew_entry(&r1);
	}
	if (r < 0) /* what renew_entry could not even record */
		renew_say(it, P11KM_RENEW_FAILED, "%s", p11km_errmsg(r));
	run->ctx->pin_source_opt = run->pin_opt;
	if (it->new_serial == NULL && r1.t->new_serial != NULL &&
	    it->outcome == P11KM_RENEW_RENEWED)
		it->new_serial = strdup(r1.t->new_serial);
	one_release(&r1);
	return r == P11KM_ERR_NOMEM ? r : 0;
}

static int
lock_run(struct renew_run *run, struct p11km_lock **lk)
{
	char *path = p11km_asprintf("%s/renew.lock", run->dir);
	int r;

	if (path == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (mkdir(run->dir, 0700) != 0 && errno != EEXIST) {
		r = p11km_fail(P11KM_ERR_IO, "cannot create '%s': %s", run->dir, strerror(errno));
	} else {
		r = p11km_lock_take(path, P11KM_LOCK_CREATE, run->o->wait ? "waiting: another renew is "
		                    "running" : NULL, run->o->wait ? -1 : 0, P11KM_ERR_FAILED, lk, NULL);
		if (r < 0 && !run->o->wait)
			r = p11km_fail(P11KM_ERR_FAILED, "another renew is running (it holds '%s'); give "
			               "--wait to wait for it", path);
	}
	free(path);
	return r < 0 ? r : 0;
}

/* The hooks are split into words before anything happens, so a bad quote
 * is a usage error and not a failed renewal. */
static int
hooks_check(const struct p11km_renew_opts *o)
{
	const char *hooks[] = { o->pre_hook, o->post_hook, o->deploy_hook };
	static const char *names[] = { "--pre-hook", "--post-hook", "--deploy-hook" };

	for (size_t i = 0; i < 3; i++) {
		char *buf = NULL, *w[P11KM_TRACK_MAX_ARGV + 1];
		int r = hooks[i] ? p11km_split_words(names[i], hooks[i], w, P11KM_TRACK_MAX_ARGV,
		                                     &buf) : 0;

		free(buf);
		if (r < 0)
			return r;
	}
	return 0;
}

int
p11km_renew(struct p11km_ctx *ctx, const struct p11km_renew_opts *o,
            struct p11km_renew_result *res)
{
	struct renew_run run;
	struct p11km_lock *lk = NULL;
	const char *pin_opt = ctx->pin_source_opt, *mod_opt = ctx->module_opt;
	int force = ctx->force;
	char **ids = NULL;
	size_t n = 0;
	int r;

	memset(res, 0, sizeof(*res));
	memset(&run, 0, sizeof(run));
	run.ctx = ctx;
	run.o = o;
	run.dir = o->state_dir ? o->state_dir : p11km_state_dir(NULL);
	run.res = res;
	run.pin_opt = pin_opt;
	if (o->all == (o->n_ids > 0))
		return p11km_fail(P11KM_ERR_USAGE, "give tracking ids or --all (not both)");
	for (size_t i = 0; i < o->n_ids; i++)
		if ((r = p11km_track_id_check(o->ids[i])) < 0)
			return r;
	if ((r = hooks_check(o)) < 0)
		return r;
	if ((r = lock_run(&run, &lk)) < 0)
		return r;
	/* o->force: not due, backoff; it overrides nothing else of the run (the
	 * operations it calls read ctx->force) */
	ctx->force = 0;
	run.now = time(NULL);
	if (o->all && (r = p11km_track_ids(run.dir, &ids, &n)) < 0)
		goto out;
	run.n_entries = o->all ? n : o->n_ids;
	for (size_t i = 0; r == 0 && i < (o->all ? n : o->n_ids); i++)
		r = run_one(&run, o->all ? ids[i] : o->ids[i]);
	if (r == 0 && run.pre_done && o->post_hook != NULL && renew_hook(&run, o->post_hook, NULL) < 0)
		p11km_warn("the post-hook failed: %s", p11km_errmsg(-1));
out:
	for (size_t i = 0; i < run.n_held; i++)
		p11km_session_close(&run.held[i].s);
	renew_held_drop(&run);
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	ctx->pin_source_opt = pin_opt;
	ctx->module_opt = mod_opt;
	ctx->force = force;
	p11km_lock_release(lk);
	if (r < 0)
		p11km_renew_result_release(res);
	return r;
}

void
p11km_renew_result_release(struct p11km_renew_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->n; i++) {
		free(res->items[i].id);
		free(res->items[i].reason);
		free(res->items[i].old_serial);
		free(res->items[i].new_serial);
	}
	free(res->items);
	memset(res, 0, sizeof(*res));
}
