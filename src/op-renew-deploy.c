/* op-renew-deploy.c: a renewal from the issued chain on: install (the old
 * certificate kept), the bindings' check, the reload command, the verify
 * that the server serves the new serial; a failed check or verify puts
 * token and bindings back on the old certificate.  And the hooks. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "p11km/bind.h"
#include "p11km/cert.h"
#include "p11km/keys.h"
#include "p11km/op.h"
#include "p11km/req.h"
#include "p11km/run.h"
#include "p11km/store.h"
#include "p11km/track.h"
#include "p11km/util.h"
#include "p11km/x509.h"

#include "op-renew.h"

#define VERIFY_WAIT_MS 10000
#define ENV_MAX 48

/* --- environment, hooks, reload ----------------------------------------------------- */

struct envv {
	char *v[ENV_MAX];
	size_t n;
};

static void
env_add(struct envv *e, const char *name, const char *value)
{
	if (e->n < ENV_MAX && value != NULL)
		if ((e->v[e->n] = p11km_asprintf("%s=%s", name, value)) != NULL)
			e->n++;
}

static void
env_release(struct envv *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i]);
	e->n = 0;
}

static void
env_of(struct renew_run *run, struct renew_one *r1, struct envv *e)
{
	env_add(e, "P11KM_STATE_DIR", run->dir);
	if (r1 == NULL)
		return;
	char *chain = renew_work(r1, "chain.pem");
	env_add(e, "P11KM_TRACK_ID", r1->t->id);
	env_add(e, "P11KM_CERT_URI", r1->t->cert);
	env_add(e, "P11KM_OLD_SERIAL", r1->t->old_serial);
	env_add(e, "P11KM_NEW_SERIAL", r1->t->new_serial);
	env_add(e, "P11KM_CHAIN_FILE", chain);
	free(chain);
}

/* The "VAR=value" lines of a binding's environment file. */
static void
env_binding(const char *dir, struct envv *e)
{
	char *path = p11km_asprintf("%s/environment", dir), line[4096];
	FILE *fp = path ? fopen(path, "re") : NULL;

	while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] != '#' && strchr(line, '=') != NULL && line[0] != '=' && e->n < ENV_MAX)
			if ((e->v[e->n] = strdup(line)) != NULL)
				e->n++;
	}
	if (fp != NULL)
		fclose(fp);
	free(path);
}

static int
run_argv(struct renew_run *run, char *const *argv, struct envv *e, const char *what)
{
	struct p11km_run_opts ro = { 0 };
	struct p11km_run_result rr = { 0 };
	int r;

	ro.flags = P11KM_RUN_PATH;
	ro.env = e->v;
	ro.n_env = e->n;
	ro.timeout = run->o->hook_timeout ? run->o->hook_timeout : 60;
	p11km_verbose("running the %s: %s", what, argv[0]);
	r = p11km_run_ex(argv, &ro, &rr);
	if (r < 0) {
		char *msg = strdup(p11km_errmsg(r));
		r = p11km_fail(r, "the %s '%s' %s: %s", what, argv[0],
		               rr.timed_out ? "timed out" : "failed", msg ? msg : "?");
		free(msg);
	}
	p11km_run_result_release(&rr);
	return r;
}

int
renew_hook(struct renew_run *run, const char *cmd, struct renew_one *r1)
{
	char *buf = NULL, *argv[P11KM_TRACK_MAX_ARGV + 1];
	struct envv e = { { 0 }, 0 };
	int r;

	if ((r = p11km_split_words("hook", cmd, argv, P11KM_TRACK_MAX_ARGV, &buf)) < 0) {
		free(buf);
		return r;
	}
	env_of(run, r1, &e);
	r = run_argv(run, argv, &e, "hook");
	env_release(&e);
	free(buf);
	return r;
}

static int
reload(struct renew_one *r1)
{
	struct envv e = { { 0 }, 0 };
	char *argv[P11KM_TRACK_MAX_ARGV + 1];
	int r;

	if (r1->t->n_reload == 0)
		return 0;
	for (size_t i = 0; i < r1->t->n_reload; i++)
		argv[i] = r1->t->reload[i];
	argv[r1->t->n_reload] = NULL;
	for (size_t i = 0; i < r1->t->n_bind; i++)
		env_binding(r1->t->bind[i], &e);
	env_of(r1->run, r1, &e);
	r = run_argv(r1->run, argv, &e, "reload command");
	env_release(&e);
	return r;
}

/* --- the certificates of this renewal ----------------------------------------------- */

struct certs {
	X509 *old, *new_;          /* new_ borrowed from chain */
	STACK_OF(X509) *chain;
	STACK_OF(X509) *inter;     /* borrowed: the chain without the leaf */
};

static void
certs_release(struct certs *c)
{
	X509_free(c->old);
	sk_X509_free(c->inter);
	sk_X509_pop_free(c->chain, X509_free);
	memset(c, 0, sizeof(*c));
}

static int
certs_load(struct renew_one *r1, struct certs *c)
{
	char *old = renew_work(r1, "old.pem"), *chain = renew_work(r1, "chain.pem");
	int r;

	memset(c, 0, sizeof(*c));
	if (old == NULL || chain == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	else if ((r = p11km_cert_load(old, &c->old)) == 0 &&
	         (r = p11km_certs_read(chain, P11KM_REPLY_MAX_CERTS, &c->chain)) == 0) {
		c->new_ = sk_X509_value(c->chain, 0);
		if ((c->inter = sk_X509_new_null()) == NULL)
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		for (int i = 1; r == 0 && i < sk_X509_num(c->chain); i++)
			if (X509_check_issued(sk_X509_value(c->chain, i), sk_X509_value(c->chain, i)) !=
			    X509_V_OK)
				sk_X509_push(c->inter, sk_X509_value(c->chain, i));
	}
	free(old);
	free(chain);
	if (r < 0)
		certs_release(c);
	return r;
}

/* chain.pem done with (installed or rolled back): kept as chain-SERIAL.pem. */
static void
chain_retire(struct renew_one *r1, const char *serial)
{
	char *from = renew_work(r1, "chain.pem");
	char *name = p11km_asprintf("chain-%s.pem", serial ? serial : "x");
	char *to = name ? renew_work(r1, name) : NULL;

	if (from != NULL && to != NULL && rename(from, to) != 0 && errno != ENOENT)
		p11km_warn("cannot rename '%s': %s", from, strerror(errno));
	free(from);
	free(name);
	free(to);
}

/* --- rollback ------------------------------------------------------------------------- */

static int
relabel_if(struct p11km_session *s, CK_OBJECT_HANDLE h, const char *cur, const char *want)
{
	if (cur != NULL && strcmp(cur, want) == 0)
		return 0;
	return p11km_tok_relabel(s, h, want);
}

static int
retire_obj(struct p11km_session *s, const struct p11km_object *o, const char *L)
{
	char *nl = NULL;
	int r;

	if (o->label != NULL && p11km_label_is_retired(o->label))
		return 0;
	if ((r = p11km_tok_retired_label(s, L, o->cls, &nl)) == 0)
		r = p11km_tok_relabel(s, o->h, nl);
	free(nl);
	return r;
}

/* The old key pair (by the CKA_ID recorded before the request): its private
 * key into *priv; both halves labelled L again. */
static int
old_keys_back(struct p11km_session *s, const char *id_hex, const char *L,
              struct p11km_object *priv)
{
	unsigned char *id = NULL;
	size_t idl = 0, nh = 0;
	CK_OBJECT_HANDLE *h = NULL;
	int r, have = 0;

	if ((r = p11km_unhex(id_hex, &id, &idl)) < 0)
		return r;
	CK_ATTRIBUTE t[1] = { { CKA_ID, id, idl } };
	if ((r = p11km_find(s, t, 1, 8, &h, &nh)) < 0)
		goto out;
	for (size_t i = 0; r == 0 && i < nh; i++) {
		struct p11km_object o;
		if ((r = p11km_object_read(s, h[i], &o)) < 0)
			break;
		if (o.cls == CKO_PRIVATE_KEY || o.cls == CKO_PUBLIC_KEY)
			r = relabel_if(s, o.h, o.label, L);
		if (r == 0 && o.cls == CKO_PRIVATE_KEY && !have) {
			*priv = o;
			have = 1;
		} else {
			p11km_object_release(&o);
		}
	}
	if (r == 0 && !have)
		r = p11km_fail(P11KM_ERR_NOTFOUND, "the old key (id %s) is not on the token", id_hex);
	if (r < 0 && have)
		p11km_object_release(priv);
out:
	free(h);
	free(id);
	return r;
}

static int
rollback_token(struct renew_one *r1, struct certs *c, struct p11km_object *oldkey)
{
	struct p11km_session *s = &r1->h->s;
	struct p11km_object *objs = NULL;
	CK_OBJECT_HANDLE h;
	size_t n = 0;
	char *L = NULL;
	int r;

	/* L: the label the new certificate took over */
	if ((r = p11km_tok_cert_find(s, c->new_, &h)) == 1) {
		struct p11km_object o;
		if ((r = p11km_object_read(s, h, &o)) < 0)
			return r;
		L = strdup(o.label && !p11km_label_is_retired(o.label) ? o.label
		           : r1->label ? r1->label : "");
		if (L == NULL)
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		if (r >= 0 && (r = p11km_tok_by_label(s, L, (CK_OBJECT_CLASS)-1, &objs, &n)) == 0)
			for (size_t i = 0; r == 0 && i < n; i++)
				if (objs[i].cls == CKO_CERTIFICATE || objs[i].cls == CKO_PRIVATE_KEY ||
				    objs[i].cls == CKO_PUBLIC_KEY)
					r = retire_obj(s, &objs[i], L);
		p11km_object_release(&o);
	} else if (r == 0) {
		L = strdup(r1->label ? r1->label : "");
	}
	if (r < 0 || L == NULL)
		goto out;
	if ((r = old_keys_back(s, r1->t->old_key_id, L, oldkey)) < 0)
		goto out;
	if ((r = p11km_tok_cert_find(s, c->old, &h)) == 1)
		r = p11km_tok_relabel(s, h, L);
	else if (r == 0)
		r = p11km_fail(P11KM_ERR_NOTFOUND, "the old certificate is not on the token any more");
out:
	p11km_objects_free(objs, n);
	free(L);
	return r < 0 ? r : 0;
}

/* Token and bindings back on the old certificate (and the server reloaded
 * when it was); the entry idle, failed with why. */
static int
rollback(struct renew_one *r1, int code, const char *why, int reloaded)
{
	struct p11km_track *t = r1->t;
	struct p11km_object oldkey;
	struct certs c;
	char *msg = strdup(p11km_errmsg(code)), *what = NULL;
	int r;

	memset(&oldkey, 0, sizeof(oldkey));
	if ((r = certs_load(r1, &c)) < 0)
		goto out;
	p11km_warn("%s: %s: %s; putting the server back on the old certificate (serial %s)", t->id,
	           why, msg ? msg : "?", t->old_serial ? t->old_serial : "?");
	if ((r = rollback_token(r1, &c, &oldkey)) < 0)
		goto out;
	for (size_t i = 0; r == 0 && i < t->n_bind; i++) {
		struct p11km_rebind *rb = NULL;
		if ((r = p11km_bind_rebind_prepare(t->bind[i], r1->h->tok, &oldkey, c.old, c.inter,
		                                   &rb)) == 0)
			r = p11km_bind_rebind_commit(rb);
		p11km_rebind_free(rb);
	}
	if (r == 0 && reloaded)
		r = reload(r1);
out:
	if (oldkey.label != NULL || oldkey.id != NULL)
		p11km_object_release(&oldkey);
	certs_release(&c);
	if (r < 0) {
		/* the entry stays where it is: the next run tries the rollback again */
		char *rm = strdup(p11km_errmsg(r));
		what = p11km_asprintf("%s (%s), and the rollback failed", why, msg ? msg : "?");
		r = renew_failed(r1, p11km_fail(r, "%s", rm ? rm : "?"), what ? what : why);
		free(rm);
	} else {
		chain_retire(r1, t->new_serial);
		renew_prune_schedule(r1);  /* the new certificate was put aside */
		t->step = P11KM_STEP_IDLE;
		free(t->new_serial);
		t->new_serial = NULL;
		what = p11km_asprintf("%s; rolled back to serial %s", why,
		                      t->old_serial ? t->old_serial : "?");
		r = renew_failed(r1, p11km_fail(code, "%s", msg ? msg : "?"), what ? what : why);
		free(t->last_result);
		t->last_result = strdup("rolled back");
		(void)renew_save(r1);
	}
	free(what);
	free(msg);
	return r;
}

/* --- the steps ------------------------------------------------------------------------ */

/* The reply of an earlier run (a file CA): the key with the live
 * certificate's CKA_ID, which PKCS#11 links to it, and the live
 * certificate's public key: the install takes the reply's certificate
 * with that public key (a renewal with the same key) without a search by
 * public key.  Nothing found: the install searches as 'cert install' does. */
static void
install_key_of_live(struct renew_one *r1)
{
	EVP_PKEY *pub = r1->live != NULL ? X509_get_pubkey(r1->live) : NULL;

	if (pub != NULL && p11km_key_by_id(&r1->h->s, r1->live_id, r1->live_id_len, pub,
	                                   &r1->key) == 1) {
		r1->key_pub = pub;
		r1->have_key = 1;
		return;
	}
	EVP_PKEY_free(pub);
	p11km_error_clear();
}

static int
step_install(struct renew_one *r1)
{
	struct p11km_track *t = r1->t;
	struct p11km_install_opts io;
	struct p11km_install_result ir;
	char *chain = renew_work(r1, "chain.pem");
	int r;

	memset(&io, 0, sizeof(io));
	io.reply = chain;
	io.uri = r1->h->tok->uri;
	io.ca_file = t->ca_file;
	io.keep_old = 1;
	io.tok = r1->h->tok;
	io.session = &r1->h->s;
	if (!r1->have_key)
		install_key_of_live(r1);
	if (r1->have_key) {
		io.key = &r1->key;
		io.key_pub = r1->key_pub;
	}
	for (size_t i = 0; i < t->n_bind && i < P11KM_INSTALL_MAX_BIND; i++)
		io.bind[io.n_bind++] = t->bind[i];
	if (chain == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	else
		r = p11km_cert_install(r1->run->ctx, &io, &ir);
	free(chain);
	if (r < 0)
		return r;
	renew_kill_point("install-done");
	free(t->new_serial);
	t->new_serial = ir.serial;
	ir.serial = NULL;
	p11km_install_result_release(&ir);
	t->step = P11KM_STEP_INSTALLED;
	t->last_renewed = r1->run->now;
	/* nothing to deploy: the next record is the last (a run killed before
	 * it installs again, which finds the certificate there) */
	return renew_deploys(t) ? renew_save(r1) : 0;
}

static int
bind_checks(struct renew_one *r1)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < r1->t->n_bind; i++) {
		struct p11km_bind_report rep = { 0 };
		struct p11km_problems pr = { 0 };
		if ((r = p11km_bind_check(r1->run->ctx, r1->t->bind[i], NULL, &rep, &pr)) == 0 &&
		    pr.n > 0)
			r = p11km_fail(P11KM_ERR_VERIFY, "bind check '%s': %s%s", r1->t->bind[i],
			               pr.lines[0], pr.n > 1 ? " (and more)" : "");
		p11km_bind_report_release(&rep);
		p11km_problems_release(&pr);
	}
	return r;
}

/* Poll until the server serves the new certificate (a reload takes a moment). */
static int
verify_new(struct renew_one *r1)
{
	struct certs c;
	struct p11km_verify_result vr;
	char *served = NULL;
	int r, waited = 0;

	if (r1->t->verify == NULL)
		return 0;
	if ((r = certs_load(r1, &c)) < 0)
		return r;
	for (;;) {
		memset(&vr, 0, sizeof(vr));
		r = p11km_bind_verify(r1->t->verify, r1->t->server_name, c.new_, NULL, NULL, &vr);
		if (r == 0 && vr.matches)
			break;
		free(served);
		served = vr.serial ? strdup(vr.serial) : NULL;
		p11km_verify_result_release(&vr);
		p11km_error_clear();
		if (waited >= VERIFY_WAIT_MS) {
			r = p11km_fail(P11KM_ERR_VERIFY, "%s serves serial %s, not the new %s",
			               r1->t->verify, served ? served : "(no answer)",
			               r1->t->new_serial ? r1->t->new_serial : "?");
			goto out;
		}
		struct timespec ts = { 0, 200 * 1000000L };
		nanosleep(&ts, NULL);
		waited += 200;
	}
	p11km_verify_result_release(&vr);
out:
	free(served);
	certs_release(&c);
	return r;
}

int
renew_deploy(struct renew_one *r1)
{
	struct p11km_track *t = r1->t;
	int r;

	if (t->step == P11KM_STEP_ISSUED) {
		if ((r = step_install(r1)) < 0)
			return renew_failed(r1, r, "install");
		if (r1->run->o->deploy_hook != NULL &&
		    (r = renew_hook(r1->run, r1->run->o->deploy_hook, r1)) < 0)
			p11km_warn("%s: the deploy-hook failed: %s", t->id, p11km_errmsg(r));
	}
	if (t->step == P11KM_STEP_INSTALLED) {
		r = bind_checks(r1);
		if (t->n_bind > 0) {
			/* bind check released the modules (its probe starts as a server does) */
			r1->run->reopened = 1;
			renew_held_drop(r1->run);
			int r2 = renew_held_get(r1);
			if (r2 < 0)
				return renew_failed(r1, r2, "the token after bind check");
		}
		if (r < 0)
			return rollback(r1, r, "bind check", 0);
		if ((r = reload(r1)) < 0)
			return rollback(r1, r, "reload", 1);
		t->step = P11KM_STEP_RELOADED;
		if (renew_deploys(t) && (r = renew_save(r1)) < 0)
			return r;
	}
	if ((r = verify_new(r1)) < 0)
		return rollback(r1, r, "verify", 1);
	t->step = P11KM_STEP_IDLE;
	renew_prune_schedule(r1);
	t->attempts = 0;
	t->next_attempt = 0;
	free(t->last_error);
	t->last_error = NULL;
	free(t->last_result);
	t->last_result = strdup("renewed");
	r1->item->new_serial = t->new_serial ? strdup(t->new_serial) : NULL;
	/* a renewal finished in a later run (a reply that came): its old serial too */
	if (r1->item->old_serial == NULL && t->old_serial != NULL)
		r1->item->old_serial = strdup(t->old_serial);
	free(t->old_serial);
	t->old_serial = t->new_serial;
	t->new_serial = NULL;
	r1->item->outcome = P11KM_RENEW_RENEWED;
	free(r1->item->reason);
	r1->item->reason = NULL;
	/* the new certificate's date from the chain: no search on the token (the
	 * chain alone: old.pem is kept only for an entry that deploys) */
	char *cp = renew_work(r1, "chain.pem");
	STACK_OF(X509) *ch = NULL;
	if (cp != NULL && p11km_certs_read(cp, P11KM_REPLY_MAX_CERTS, &ch) == 0)
		r1->item->not_after = renew_asn1_time(X509_get0_notAfter(sk_X509_value(ch, 0)));
	sk_X509_pop_free(ch, X509_free);
	free(cp);
	p11km_error_clear();
	/* recorded first: a stale chain.pem is set aside by the next request */
	if ((r = renew_save(r1)) == 0)
		chain_retire(r1, t->old_serial);
	return r;
}
