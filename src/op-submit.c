/* op-submit.c: 'req submit' as an operation: a token-signed request to an
 * online CA, the chain back, and with install the chain next to its key
 * through p11km_cert_install(), in the session (and the one login) the
 * account key signed in when it lives on that token. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "p11km/ca.h"
#include "p11km/cert.h"
#include "p11km/op-ca.h"
#include "p11km/util.h"

struct submit {
	struct p11km_ctx *ctx;
	const struct p11km_submit_opts *o;
	struct p11km_submit_result *res;
	struct p11km_ca_submit sub;
	struct p11km_ca_profile *p;
	const char *state;
	struct p11km_ca_pending *pd;
	unsigned char *der, *wrapped;
	size_t der_len;
	char *old_pem, *tmp;
	/* --install: the key's token, logged in once for the account key and the install */
	struct p11km_uri *uri;
	struct p11km_token *tok;
	struct p11km_session s;
};

static void
on_step(void *arg, const char *name, const char *detail)
{
	struct submit *sm = arg;

	json_array_append_new(sm->res->steps, json_pack("{s:s,s:s}", "step", name, "detail", detail));
	p11km_ca_step_print(sm->ctx, name, detail);
}

/* An MS renewal (CMS SignedData, PEM or DER): its signature checked with
 * the certificate it carries; the PKCS#10 inside in *req, the whole in
 * *wrapped (DER).  0 and no *req when data is no PKCS#7. */
static int
unwrap_renewal(const char *path, const unsigned char *data, size_t len, X509_REQ **req,
               unsigned char **wrapped, size_t *wrapped_len)
{
	BIO *bio = BIO_new_mem_buf(data, (int)len), *out = NULL;
	const unsigned char *q = data;
	PKCS7 *p7 = bio ? PEM_read_bio_PKCS7(bio, NULL, NULL, NULL) : NULL;
	char *inner;
	long n;
	int r = 0, dl;

	if (p7 == NULL)
		p7 = d2i_PKCS7(NULL, &q, (long)len);
	if (p7 == NULL)
		goto out;
	if (!PKCS7_type_is_signed(p7) || (out = BIO_new(BIO_s_mem())) == NULL ||
	    PKCS7_verify(p7, NULL, NULL, NULL, out, PKCS7_NOVERIFY) != 1 ||
	    (n = BIO_get_mem_data(out, &inner)) <= 0) {
		r = p11km_fail(P11KM_ERR_VERIFY, "'%s' is a PKCS#7 whose signature does not verify with "
		               "the certificate it carries (not an MS renewal of p11km's)", path);
		goto out;
	}
	q = (const unsigned char *)inner;
	if ((*req = d2i_X509_REQ(NULL, &q, n)) == NULL || q != (const unsigned char *)inner + n) {
		X509_REQ_free(*req);
		*req = NULL;
		r = p11km_fail(P11KM_ERR_INPUT, "'%s' is a PKCS#7 that holds no certificate request",
		               path);
	} else if ((dl = i2d_PKCS7(p7, wrapped)) <= 0) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	} else {
		*wrapped_len = (size_t)dl;
	}
out:
	BIO_free(out);
	BIO_free(bio);
	PKCS7_free(p7);
	(void)p11km_openssl_error();
	return r;
}

/* The request as DER: PEM or DER input (or an MS renewal around it), its
 * signature checked. */
static int
read_request(const char *path, unsigned char **der, size_t *der_len, unsigned char **wrapped,
             size_t *wrapped_len)
{
	unsigned char *data = NULL;
	size_t len = 0;
	X509_REQ *req = NULL;
	BIO *bio;
	int r, n;

	*der = NULL;
	if ((r = p11km_read_file(path, 1u << 20, &data, &len)) < 0)
		return r;
	if ((bio = BIO_new_mem_buf(data, (int)len)) != NULL)
		req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (req == NULL) {
		const unsigned char *q = data;
		req = d2i_X509_REQ(NULL, &q, (long)len);
		if (req != NULL && q != data + len) {
			X509_REQ_free(req);
			req = NULL;
		}
	}
	if (req == NULL && (r = unwrap_renewal(path, data, len, &req, wrapped, wrapped_len)) < 0) {
		free(data);
		return r;
	}
	free(data);
	if (req == NULL)
		return p11km_fail(P11KM_ERR_INPUT, "'%s' is not a certificate request (PEM or DER "
		                  "PKCS#10, or an MS renewal)", path);
	if (X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) != 1)
		r = p11km_fail(P11KM_ERR_VERIFY, "the signature of the request '%s' does not verify",
		               path);
	else if ((n = i2d_X509_REQ(req, der)) <= 0)
		r = p11km_fail(P11KM_ERR_NOMEM, "cannot encode the request");
	else
		*der_len = (size_t)n;
	X509_REQ_free(req);
	(void)p11km_openssl_error();
	return r;
}

/* --old-cert for a helper: the certificate as PEM (CERTMONGER_CERTIFICATE). */
static int
old_cert_pem(const char *path, char **pem)
{
	struct p11km_buf b = { 0 };
	X509 *cert = NULL;
	int r;

	if ((r = p11km_cert_load(path, &cert)) == 0 && (r = p11km_cert_pem_append(cert, &b)) == 0 &&
	    (r = p11km_buf_append(&b, "", 1)) == 0) {
		*pem = (char *)b.data;
		b.data = NULL;
	}
	p11km_buf_release(&b);
	X509_free(cert);
	return r < 0 ? r : 0;
}

/* Options that belong to one kind of CA. */
static int
kind_options(const struct p11km_ca_profile *p, const struct p11km_ca_submit *sub)
{
	int cmp = strcmp(p->kind->name, "cmp") == 0, helper = strcmp(p->kind->name, "helper") == 0;

	if (!cmp && (sub->cmp_cmd || sub->key_uri))
		return p11km_fail(P11KM_ERR_USAGE, "--cmp and --key go with a CMP CA; '%s' is %s",
		                  p->name, p->kind->name);
	if (!cmp && !helper && sub->old_cert)
		return p11km_fail(P11KM_ERR_USAGE, "--old-cert goes to a CMP CA (kur) or a certmonger "
		                  "helper (CERTMONGER_CERTIFICATE); '%s' is %s", p->name, p->kind->name);
	if (cmp && (sub->standalone || sub->webroot || sub->dns_hook || sub->preferred_chain))
		return p11km_fail(P11KM_ERR_USAGE, "--standalone, --webroot, --dns-hook and "
		                  "--preferred-chain go with an ACME CA; '%s' is cmp", p->name);
	return 0;
}

/* A pending request: --poll needs its state; a new submission of a request
 * the CA already holds is refused unless --force. */
static int
pending_before(struct submit *sm)
{
	const struct p11km_ca_profile *p = sm->p;
	int r;

	if (strcmp(p->kind->name, "helper") != 0 && strcmp(p->kind->name, "adcs") != 0)
		/* acme: orders are polled within the run */
		return sm->o->poll ? p11km_fail(P11KM_ERR_USAGE, "--poll applies to helper and adcs "
		                                "CAs; CA '%s' is %s", p->name, p->kind->name) : 0;
	r = p11km_ca_pending_load(sm->state, p->name, sm->der, sm->der_len, &sm->pd);
	if (sm->o->poll || (r < 0 && r != P11KM_ERR_NOTFOUND))
		return r;
	if (r == P11KM_ERR_NOTFOUND) {
		p11km_error_clear();
		return 0;
	}
	if (!sm->ctx->force)
		r = p11km_fail(P11KM_ERR_EXISTS, "CA '%s' holds this request as pending already ('%s'); "
		               "ask again with --poll, or give --force to submit it anew", p->name,
		               sm->pd->path);
	p11km_ca_pending_free(sm->pd);
	sm->pd = NULL;
	return r;
}

/* The CA holds the request: keep its cookie, and say how to go on (exit 1). */
static int
pending_after(struct submit *sm)
{
	const struct p11km_ca_submit *sub = &sm->sub;
	char after[64] = "";
	int r;

	if ((r = p11km_ca_pending_save(sm->state, sm->p->name, sm->der, sm->der_len, sub->cookie,
	                               sub->delay, sm->pd ? sm->pd->since : 0)) < 0)
		return r;
	if (sub->delay > 0)
		snprintf(after, sizeof(after), " in %ld s", sub->delay);
	return p11km_fail(P11KM_ERR_FAILED, "CA '%s' holds the request as pending%s; ask again%s "
	                  "with 'p11km req submit %s --ca %s --poll'", sm->p->name,
	                  sub->cookie ? "" : " (it asks for the request again later)", after,
	                  sm->o->request, sm->p->name);
}

/* --install: the key's token, opened and logged in before the CA is asked
 * (a wrong PIN costs no certificate), the session lent to the account key
 * and to the install.  With --so-pin-source the install logs in itself. */
static int
install_open(struct submit *sm)
{
	int r;

	if (!sm->o->install || sm->ctx->so_pin_source_opt != NULL)
		return 0;
	if ((sm->o->key_uri != NULL && (r = p11km_uri_parse(sm->o->key_uri, &sm->uri)) < 0) ||
	    (r = p11km_token_find_initialised(sm->ctx, sm->uri, &sm->tok)) < 0 ||
	    (r = p11km_session_open_login(sm->ctx, sm->tok, sm->uri, 1, 1, &sm->s)) < 0)
		return r;
	sm->sub.held = &sm->s;
	return 0;
}

static int
install(struct submit *sm, const char *chain_file)
{
	struct p11km_install_opts io = { 0 };
	int r;

	io.reply = chain_file;
	io.uri = sm->o->key_uri;
	io.ca_file = sm->o->verify_ca_file;
	if (sm->s.open) {
		io.tok = sm->tok;
		io.session = &sm->s;
	}
	if ((r = p11km_cert_install(sm->ctx, &io, &sm->res->install)) == 0)
		sm->res->installed = 1;
	return r;
}

static int
submit_run(struct submit *sm)
{
	const struct p11km_submit_opts *o = sm->o;
	struct p11km_submit_result *res = sm->res;
	const char *kind;
	int r;

	if (o->ca == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "'req submit' needs --ca NAME (see 'p11km ca list')");
	if (!o->install && (o->key_uri != NULL || o->verify_ca_file != NULL))
		return p11km_fail(P11KM_ERR_USAGE, "a KEY-URI and --verify-ca-file go with --install");
	if ((o->standalone != NULL) + (o->webroot != NULL) + (o->dns_hook != NULL) > 1)
		return p11km_fail(P11KM_ERR_USAGE, "give one of --standalone, --webroot and --dns-hook");
	sm->state = p11km_state_dir(o->state_dir);
	if ((r = p11km_ca_profile_load(p11km_ca_dir(o->config_dir), o->ca, &sm->p)) < 0 ||
	    (r = kind_options(sm->p, &sm->sub)) < 0 ||
	    (r = read_request(o->request, &sm->der, &sm->der_len, &sm->wrapped,
	                      &sm->sub.wrapped_len)) < 0 ||
	    (r = pending_before(sm)) < 0)
		return r;
	kind = sm->p->kind->name;
	sm->sub.cookie_in = sm->pd ? sm->pd->cookie : NULL;
	sm->sub.wrapped = sm->wrapped;
	if (o->old_cert != NULL && strcmp(kind, "helper") == 0 &&
	    (r = old_cert_pem(o->old_cert, &sm->old_pem)) < 0)
		return r;
	sm->sub.old_cert_pem = sm->old_pem;
	if (sm->wrapped != NULL && strcmp(kind, "adcs") != 0)
		return p11km_fail(P11KM_ERR_USAGE, "'%s' is an MS renewal (a CMS SignedData), which "
		                  "only AD CS takes; CA '%s' is %s: submit a plain request ('req renew' "
		                  "without --format ms-renewal)", o->request, sm->p->name, kind);
	if ((r = install_open(sm)) < 0 ||
	    (r = sm->p->kind->submit(sm->ctx, sm->p, sm->der, sm->der_len, &sm->sub, &res->chain,
	                             &res->chain_len)) < 0)
		return r;
	if (sm->sub.pending)
		return pending_after(sm);
	if (strcmp(kind, "acme") == 0)
		p11km_verbose("%lu JWS signatures by the account key (one C_Sign each on a token), %lu "
		              "HTTP requests, %lu badNonce retries", sm->sub.signatures,
		              sm->sub.requests, sm->sub.bad_nonces);
	if (o->out != NULL &&
	    (r = p11km_write_file_atomic(o->out, res->chain, res->chain_len, 0644)) < 0)
		return r;
	res->chain_file = o->out;
	if (!o->install)
		return 0;
	if (o->out == NULL && (r = p11km_temp_file(res->chain, res->chain_len, &sm->tmp)) < 0)
		return r;
	if ((r = install(sm, o->out ? o->out : sm->tmp)) < 0 && o->out == NULL) {
		char *msg = strdup(p11km_errmsg(r));
		r = p11km_fail(r, "%s; the issued chain was not kept: give -o FILE to keep it",
		               msg ? msg : p11km_strerror(r));
		free(msg);
	}
	return r;
}

int
p11km_req_submit(struct p11km_ctx *ctx, const struct p11km_submit_opts *o,
                 struct p11km_submit_result *res)
{
	struct submit sm = { .ctx = ctx, .o = o, .res = res };
	int r;

	memset(res, 0, sizeof(*res));
	sm.s.logged_in = (CK_USER_TYPE)-1;
	sm.sub.standalone = o->standalone;
	sm.sub.webroot = o->webroot;
	sm.sub.dns_hook = o->dns_hook;
	sm.sub.preferred_chain = o->preferred_chain;
	sm.sub.cmp_cmd = o->cmp_cmd;
	sm.sub.old_cert = o->old_cert;
	sm.sub.key_uri = o->key;
	sm.sub.step = on_step;
	sm.sub.step_arg = &sm;
	if ((res->steps = json_array()) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	r = submit_run(&sm);
	/* issued: the pending state goes once the chain is written or installed */
	if (r == 0 && sm.pd != NULL &&
	    p11km_ca_pending_remove(sm.state, sm.p->name, sm.der, sm.der_len) < 0)
		p11km_warn("%s", p11km_errmsg(P11KM_ERR_IO));
	if (r == 0) {
		res->signatures = sm.sub.signatures;
		res->requests = sm.sub.requests;
		res->bad_nonces = sm.sub.bad_nonces;
		res->kind = sm.p->kind->name;
		if ((res->ca = strdup(sm.p->name)) == NULL ||
		    (sm.sub.order_url && (res->order_url = strdup(sm.sub.order_url)) == NULL) ||
		    (sm.sub.cert_url && (res->cert_url = strdup(sm.sub.cert_url)) == NULL))
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	if (r < 0)
		p11km_submit_result_release(res);
	p11km_ca_pending_free(sm.pd);
	if (sm.tmp != NULL) {
		unlink(sm.tmp);
		free(sm.tmp);
	}
	p11km_session_close(&sm.s);
	p11km_token_free(sm.tok);
	p11km_uri_free(sm.uri);
	free(sm.der);
	OPENSSL_free(sm.wrapped);
	free(sm.old_pem);
	p11km_ca_submit_release(&sm.sub);
	p11km_ca_profile_free(sm.p);
	return r;
}

void
p11km_submit_result_release(struct p11km_submit_result *res)
{
	json_decref(res->steps);
	free(res->ca);
	free(res->order_url);
	free(res->cert_url);
	free(res->chain);
	p11km_install_result_release(&res->install);
	memset(res, 0, sizeof(*res));
}
