/* op-ca.c: the operations on CA profiles but 'ca add' (op-ca-add.c): list,
 * show, remove, the ACME account (show, rollover, deactivate), the renewal
 * window (ARI), the CA's own certificates, and 'cert revoke'. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/x509.h>

#include "p11km/bind.h"
#include "p11km/ca.h"
#include "p11km/op-ca.h"
#include "p11km/util.h"

int
p11km_ca_list(struct p11km_ctx *ctx, const struct p11km_ca_opts *o,
              struct p11km_ca_list_result *res)
{
	char **names = NULL;
	size_t n = 0;
	int r;

	memset(res, 0, sizeof(*res));
	res->config_dir = p11km_ca_dir(o->config_dir);
	if ((r = p11km_ca_profile_names(res->config_dir, &names, &n)) < 0)
		return r;
	if (n > 0 && (res->profiles = calloc(n, sizeof(*res->profiles))) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (r == 0 && p11km_ca_profile_load(res->config_dir, names[i],
		                                    &res->profiles[res->n]) < 0)
			p11km_warn("%s", p11km_errmsg(P11KM_ERR_INPUT));
		else if (r == 0)
			res->n++;
		free(names[i]);
	}
	free(names);
	if (r < 0)
		p11km_ca_list_result_release(res);
	return r;
}

void
p11km_ca_list_result_release(struct p11km_ca_list_result *res)
{
	for (size_t i = 0; i < res->n; i++)
		p11km_ca_profile_free(res->profiles[i]);
	free(res->profiles);
	memset(res, 0, sizeof(*res));
}

int
p11km_ca_show(struct p11km_ctx *ctx, const struct p11km_ca_opts *o, struct p11km_ca_profile **out)
{
	return p11km_ca_profile_load(p11km_ca_dir(o->config_dir), o->name, out);
}

int
p11km_ca_remove(struct p11km_ctx *ctx, const struct p11km_ca_opts *o)
{
	return p11km_ca_profile_remove(p11km_ca_dir(o->config_dir), o->name);
}

/* The profile o->name, which must be an ACME CA's. */
static int
acme_profile(const struct p11km_ca_opts *o, struct p11km_ca_profile **p)
{
	int r;

	if ((r = p11km_ca_profile_load(p11km_ca_dir(o->config_dir), o->name, p)) < 0)
		return r;
	if (strcmp((*p)->kind->name, "acme") == 0)
		return 0;
	r = p11km_fail(P11KM_ERR_USAGE, "CA profile '%s' is not an ACME CA", (*p)->name);
	p11km_ca_profile_free(*p);
	*p = NULL;
	return r;
}

static void
step_print(void *arg, const char *name, const char *detail)
{
	p11km_ca_step_print(arg, name, detail);
}

int
p11km_ca_account(struct p11km_ctx *ctx, const struct p11km_ca_opts *o,
                 struct p11km_ca_account_result *res)
{
	static const char *const actions[] = { "show", "rollover", "deactivate" };
	struct p11km_ca_submit sub = { 0 };
	struct p11km_ca_profile *p = NULL;
	const char *dir = p11km_ca_dir(o->config_dir);
	char *ref = NULL;
	int r, op = -1;

	memset(res, 0, sizeof(*res));
	for (int i = 0; i < 3; i++)
		if (o->action != NULL && strcmp(o->action, actions[i]) == 0)
			op = i;
	if (op < 0)
		return p11km_fail(P11KM_ERR_USAGE, "'ca account %s': give show, rollover or deactivate",
		                  p11km_esc(o->action ? o->action : ""));
	if ((op == P11KM_ACME_ROLLOVER) != (o->new_key != NULL))
		return p11km_fail(P11KM_ERR_USAGE, "--new-key goes with 'ca account rollover' (and "
		                  "only there)");
	if ((r = acme_profile(o, &p)) < 0 ||
	    (o->new_key != NULL && (r = p11km_ca_account_ref(dir, p->name, o->new_key, &ref)) < 0))
		goto out;
	sub.step = step_print;
	sub.step_arg = ctx;
	res->op = op;
	if ((r = p11km_acme_account(ctx, p, (enum p11km_acme_account_op)op, ref, &sub,
	                            &res->url)) < 0)
		goto out;
	if (ref != NULL) {
		/* the CA has the new key now: the profile follows (the old key is kept) */
		res->old_account_key = p->account_key;
		p->account_key = ref;
		ref = NULL;
		if ((r = p11km_ca_profile_save(dir, p, 1)) < 0) {
			char *msg = strdup(p11km_errmsg(r));
			r = p11km_fail(r, "%s; the CA's account now has the key '%s': set it in the "
			               "profile by hand", msg ? msg : "cannot save the profile",
			               p11km_esc(p->account_key));
			free(msg);
			goto out;
		}
	}
	res->signatures = sub.signatures;
	res->requests = sub.requests;
	p11km_verbose("%lu JWS signatures, %lu HTTP requests", sub.signatures, sub.requests);
	if ((res->ca = strdup(p->name)) == NULL ||
	    (p->account_key && (res->account_key = strdup(p->account_key)) == NULL))
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
out:
	if (r < 0)
		p11km_ca_account_result_release(res);
	p11km_ca_submit_release(&sub);
	p11km_ca_profile_free(p);
	free(ref);
	return r;
}

void
p11km_ca_account_result_release(struct p11km_ca_account_result *res)
{
	free(res->ca);
	free(res->url);
	free(res->account_key);
	free(res->old_account_key);
	memset(res, 0, sizeof(*res));
}

int
p11km_ca_renewal_info(struct p11km_ctx *ctx, const struct p11km_ca_opts *o,
                      struct p11km_ca_window_result *res)
{
	struct p11km_ca_profile *p = NULL;
	X509 *cert = NULL;
	int r;

	memset(res, 0, sizeof(*res));
	if ((r = p11km_ca_profile_load(p11km_ca_dir(o->config_dir), o->name, &p)) < 0 ||
	    (r = p11km_bind_load_cert(ctx, o->cert, &cert)) < 0 ||
	    (r = p11km_acme_renewal_window(ctx, p, cert, &res->w)) < 0)
		goto out;
	if ((res->ca = strdup(p->name)) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
out:
	if (r < 0)
		p11km_ca_window_result_release(res);
	X509_free(cert);
	p11km_ca_profile_free(p);
	return r;
}

void
p11km_ca_window_result_release(struct p11km_ca_window_result *res)
{
	p11km_renewal_window_release(&res->w);
	free(res->ca);
	memset(res, 0, sizeof(*res));
}

/* The certificates into the stores of o->to, from the -o file or a
 * private temporary one. */
static int
roots_install(struct p11km_ctx *ctx, const struct p11km_ca_opts *o,
              struct p11km_ca_roots_result *res)
{
	struct p11km_roots_opts ro = { .stores = o->to, .n_stores = o->n_to, .n_certs = 1,
	                               .dry_run = o->dry_run, .force = ctx->force };
	char *tmp = NULL;
	const char *file = o->out;
	int r;

	if (file == NULL && (r = p11km_temp_file(res->pem, res->pem_len, &tmp)) < 0)
		return r;
	ro.certs = file ? &file : (const char *const *)&tmp;
	if ((r = p11km_roots_install(ctx, &ro, &res->roots)) == 0)
		res->installed = 1;
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	return r;
}

int
p11km_ca_roots(struct p11km_ctx *ctx, const struct p11km_ca_opts *o,
               struct p11km_ca_roots_result *res)
{
	struct p11km_ca_profile *p = NULL;
	int r;

	memset(res, 0, sizeof(*res));
	if (o->dry_run && o->n_to == 0)
		return p11km_fail(P11KM_ERR_USAGE, "--dry-run goes with --to STORE");
	if ((r = p11km_ca_profile_load(p11km_ca_dir(o->config_dir), o->name, &p)) < 0)
		return r;
	if (p->kind->roots == NULL) {
		r = p11km_fail(P11KM_ERR_UNSUPPORTED, "'ca roots' is not supported by CA kind '%s' "
		               "(CA '%s'); fetch its root from the CA's documentation and use "
		               "'p11km roots install'", p->kind->name, p->name);
		goto out;
	}
	if ((r = p->kind->roots(ctx, p, &res->pem, &res->pem_len)) < 0 ||
	    (o->out != NULL && (r = p11km_write_file_atomic(o->out, res->pem, res->pem_len,
	                                                    0644)) < 0))
		goto out;
	res->file = o->out;
	res->kind = p->kind->name;
	if ((res->ca = strdup(p->name)) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	else if (o->n_to > 0)
		r = roots_install(ctx, o, res);
out:
	if (r < 0)
		p11km_ca_roots_result_release(res);
	p11km_ca_profile_free(p);
	return r;
}

void
p11km_ca_roots_result_release(struct p11km_ca_roots_result *res)
{
	free(res->ca);
	free(res->pem);
	if (res->installed)
		p11km_roots_result_release(&res->roots);
	memset(res, 0, sizeof(*res));
}

int
p11km_cert_revoke(struct p11km_ctx *ctx, const struct p11km_ca_opts *o,
                  struct p11km_revoke_result *res)
{
	struct p11km_ca_submit sub = { 0 };
	struct p11km_ca_profile *p = NULL;
	unsigned char *der = NULL;
	X509 *cert = NULL;
	int r, n;

	memset(res, 0, sizeof(*res));
	res->reason_name = o->reason ? o->reason : "unspecified";
	res->by_cert_key = o->cert_key != NULL;
	if (o->name == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "'cert revoke' needs --ca NAME (the CA that issued it)");
	if ((res->reason = p11km_revoke_reason(res->reason_name)) < 0)
		return p11km_fail(P11KM_ERR_USAGE, "--reason '%s': give unspecified, keyCompromise, "
		                  "affiliationChanged, superseded, cessationOfOperation or an RFC 5280 "
		                  "number", p11km_esc(res->reason_name));
	if ((r = acme_profile(o, &p)) < 0 || (r = p11km_bind_load_cert(ctx, o->cert, &cert)) < 0)
		goto out;
	if ((n = i2d_X509(cert, &der)) <= 0) {
		r = p11km_fail(P11KM_ERR_NOMEM, "cannot encode the certificate");
		goto out;
	}
	{
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;
		snprintf(res->serial, sizeof(res->serial), "%s", hex ? hex : "?");
		OPENSSL_free(hex);
		BN_free(bn);
	}
	if ((r = p11km_acme_revoke(ctx, p, der, (size_t)n, res->reason, o->cert_key, &sub)) < 0)
		goto out;
	res->signatures = sub.signatures;
	res->requests = sub.requests;
	p11km_verbose("%lu JWS signatures, %lu HTTP requests", sub.signatures, sub.requests);
	if ((res->ca = strdup(p->name)) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
out:
	if (r < 0)
		p11km_revoke_result_release(res);
	p11km_ca_submit_release(&sub);
	p11km_ca_profile_free(p);
	X509_free(cert);
	OPENSSL_free(der);
	return r;
}

void
p11km_revoke_result_release(struct p11km_revoke_result *res)
{
	free(res->ca);
	res->ca = NULL;
}
