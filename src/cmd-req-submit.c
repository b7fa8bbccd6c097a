/* cmd-req-submit.c: 'req submit': a token-signed request to an online CA,
 * the chain back, and with --install the chain through 'cert install' in
 * the same run (the PIN read once). */
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
#include "p11km/req.h"
#include "p11km/cmd.h"
#include "p11km/util.h"

enum { O_CA = 1000, O_INSTALL, O_STANDALONE, O_WEBROOT, O_CONFIG_DIR, O_VERIFY_CA_FILE, O_POLL,
       O_STATE_DIR, O_DNS_HOOK, O_PREFERRED_CHAIN, O_CMP, O_OLD_CERT, O_KEY };

const struct p11km_opt p11km_req_submit_opts[] = {
	{ "ca", 1, O_CA, "NAME", "the CA profile to submit to (see 'p11km ca list')" },
	{ "out", 1, 'o', "FILE", "write the issued chain (PEM, leaf first) to FILE" },
	{ "install", 0, O_INSTALL, NULL, "install the chain next to its key ('cert install'; KEY-URI "
	  "as second argument)" },
	{ "verify-ca-file", 1, O_VERIFY_CA_FILE, "FILE", "with --install: roots to verify the issued "
	  "chain against (cert install --ca-file)" },
	{ "standalone", 1, O_STANDALONE, "ADDR:PORT", "answer http-01 with a built-in responder there" },
	{ "webroot", 1, O_WEBROOT, "DIR", "answer http-01 with files under DIR/.well-known/acme-challenge/" },
	{ "cmp", 1, O_CMP, "TYPE", "CMP: send the request as p10cr, ir, cr or kur (default: the "
	  "profile's --cmp-cmd)" },
	{ "old-cert", 1, O_OLD_CERT, "FILE", "CMP kur: the certificate being updated (its token key "
	  "protects the message); a helper gets it as CERTMONGER_CERTIFICATE" },
	{ "key", 1, O_KEY, "URI", "CMP ir/cr/kur: the token (pkcs11: URI) holding the request's key "
	  "(default: the profile's --key)" },
	{ "dns-hook", 1, O_DNS_HOOK, "CMD", "answer dns-01: run \"PROG [ARG...]\" (no shell) with "
	  "P11KM_ACME_ACTION=present|cleanup, _RECORD, _VALUE" },
	{ "preferred-chain", 1, O_PREFERRED_CHAIN, "CN", "take the CA's (alternate) chain whose top "
	  "certificate is issued by CN" },
	{ "config-dir", 1, O_CONFIG_DIR, "DIR", "where CA profiles live (default /etc/p11km/ca.d)" },
	{ "poll", 0, O_POLL, NULL, "ask again for a request the CA holds as pending (helper, adcs)" },
	{ "state-dir", 1, O_STATE_DIR, "DIR", "where pending requests are kept (default "
	  "/var/lib/p11km, or P11KM_STATE_DIR)" },
	{ NULL, 0, 0, NULL, NULL },
};

struct progress {
	int tty, quiet;
	json_t *steps;
};

static void
on_step(void *arg, const char *name, const char *detail)
{
	struct progress *pr = arg;

	json_array_append_new(pr->steps, json_pack("{s:s,s:s}", "step", name, "detail", detail));
	if (pr->quiet)
		return;
	if (pr->tty || p11km_log_verbose_on())
		fprintf(stderr, "p11km: %s: %s\n", name, p11km_esc(detail));
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

/* Run 'cert install CHAIN [KEY-URI] [--ca-file FILE]' in this process. */
static int
install(struct p11km_ctx *ctx, const char *chain, const char *key_uri, const char *ca_file)
{
	char *argv[8];
	int argc = 0;

	argv[argc++] = "install";
	argv[argc++] = (char *)chain;
	if (key_uri != NULL)
		argv[argc++] = (char *)key_uri;
	if (ca_file != NULL) {
		argv[argc++] = "--ca-file";
		argv[argc++] = (char *)ca_file;
	}
	argv[argc] = NULL;
	return p11km_cmd_run_verb(ctx, p11km_cmds_cert, "install", argc, argv);
}

static void
print_result(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
             const struct p11km_ca_submit *sub, struct progress *pr, const char *out,
             const char *chain)
{
	json_t *o;
	char *t;

	if (!ctx->json) {
		if (out == NULL)
			fputs(chain, stdout);
		else if (!ctx->quiet)
			printf("wrote the chain from CA '%s' to '%s'\n", p->name, p11km_esc(out));
		return;
	}
	o = json_pack("{s:s,s:s,s:s?,s:s?,s:I,s:I,s:I,s:O}", "ca", p->name, "kind", p->kind->name,
	              "order", sub->order_url, "certificate", sub->cert_url,
	              "signatures", (json_int_t)sub->signatures, "requests", (json_int_t)sub->requests,
	              "bad_nonces", (json_int_t)sub->bad_nonces, "steps", pr->steps);
	if (out != NULL)
		json_object_set_new(o, "chain_file", json_string(out));
	else
		json_object_set_new(o, "chain", json_string(chain));
	t = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("%s\n", t ? t : "{}");
	free(t);
	json_decref(o);
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
pending_before(struct p11km_ctx *ctx, const struct p11km_ca_profile *p, const char *state,
               const unsigned char *der, size_t der_len, int poll, struct p11km_ca_pending **pd)
{
	int r;

	*pd = NULL;
	if (strcmp(p->kind->name, "helper") != 0 && strcmp(p->kind->name, "adcs") != 0)
		/* acme: orders are polled within the run */
		return poll ? p11km_fail(P11KM_ERR_USAGE, "--poll applies to helper and adcs CAs; CA "
		                         "'%s' is %s", p->name, p->kind->name) : 0;
	r = p11km_ca_pending_load(state, p->name, der, der_len, pd);
	if (poll || (r < 0 && r != P11KM_ERR_NOTFOUND))
		return r;
	if (r == P11KM_ERR_NOTFOUND) {
		p11km_error_clear();
		return 0;
	}
	if (!ctx->force) {
		r = p11km_fail(P11KM_ERR_EXISTS, "CA '%s' holds this request as pending already ('%s'); "
		               "ask again with --poll, or give --force to submit it anew", p->name,
		               (*pd)->path);
		p11km_ca_pending_free(*pd);
		*pd = NULL;
		return r;
	}
	p11km_ca_pending_free(*pd);
	*pd = NULL;
	return 0;
}

/* The CA holds the request: keep its cookie, and say how to go on (exit 1). */
static int
pending_after(const struct p11km_ca_profile *p, const char *state, const unsigned char *der,
              size_t der_len, const struct p11km_ca_submit *sub, const struct p11km_ca_pending *pd,
              const char *req)
{
	char after[64] = "";
	int r;

	if ((r = p11km_ca_pending_save(state, p->name, der, der_len, sub->cookie, sub->delay,
	                               pd ? pd->since : 0)) < 0)
		return r;
	if (sub->delay > 0)
		snprintf(after, sizeof(after), " in %ld s", sub->delay);
	return p11km_fail(P11KM_ERR_FAILED, "CA '%s' holds the request as pending%s; ask again%s "
	                  "with 'p11km req submit %s --ca %s --poll'", p->name,
	                  sub->cookie ? "" : " (it asks for the request again later)", after,
	                  req, p->name);
}

int
p11km_req_submit_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_ca_submit sub = { 0 };
	struct p11km_ca_profile *p = NULL;
	struct progress pr = { isatty(2), ctx->quiet, json_array() };
	const char *ca = NULL, *out = NULL, *dir_opt = NULL, *verify_ca = NULL, *key_uri,
	           *state_opt = NULL, *state = NULL;
	struct p11km_ca_pending *pd = NULL;
	unsigned char *der = NULL, *wrapped = NULL;
	char *old_pem = NULL;
	char *chain = NULL, *tmp = NULL;
	size_t der_len = 0, chain_len = 0;
	int r, do_install = 0, poll = 0;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_CA: ca = g.optarg; break;
		case 'o': out = g.optarg; break;
		case O_INSTALL: do_install = 1; break;
		case O_VERIFY_CA_FILE: verify_ca = g.optarg; break;
		case O_STANDALONE: sub.standalone = g.optarg; break;
		case O_WEBROOT: sub.webroot = g.optarg; break;
		case O_DNS_HOOK: sub.dns_hook = g.optarg; break;
		case O_PREFERRED_CHAIN: sub.preferred_chain = g.optarg; break;
		case O_CONFIG_DIR: dir_opt = g.optarg; break;
		case O_CMP: sub.cmp_cmd = g.optarg; break;
		case O_OLD_CERT: sub.old_cert = g.optarg; break;
		case O_KEY: sub.key_uri = g.optarg; break;
		case O_POLL: poll = 1; break;
		case O_STATE_DIR: state_opt = g.optarg; break;
		default: r = r < 0 ? r : p11km_fail(P11KM_ERR_USAGE, "unexpected option"); goto out;
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		goto out;
	key_uri = g.argi + 1 < argc ? argv[g.argi + 1] : NULL;
	if (ca == NULL) {
		r = p11km_fail(P11KM_ERR_USAGE, "'req submit' needs --ca NAME (see 'p11km ca list')");
		goto out;
	}
	if (!do_install && (key_uri != NULL || verify_ca != NULL)) {
		r = p11km_fail(P11KM_ERR_USAGE, "a KEY-URI and --verify-ca-file go with --install");
		goto out;
	}
	if ((sub.standalone != NULL) + (sub.webroot != NULL) + (sub.dns_hook != NULL) > 1) {
		r = p11km_fail(P11KM_ERR_USAGE, "give one of --standalone, --webroot and --dns-hook");
		goto out;
	}
	sub.step = on_step;
	sub.step_arg = &pr;
	state = p11km_state_dir(state_opt);
	if ((r = p11km_ca_profile_load(p11km_ca_dir(dir_opt), ca, &p)) < 0 ||
	    (r = kind_options(p, &sub)) < 0 ||
	    (r = read_request(argv[g.argi], &der, &der_len, &wrapped, &sub.wrapped_len)) < 0 ||
	    (r = pending_before(ctx, p, state, der, der_len, poll, &pd)) < 0)
		goto out;
	sub.cookie_in = pd ? pd->cookie : NULL;
	sub.wrapped = wrapped;
	if (sub.old_cert != NULL && strcmp(p->kind->name, "helper") == 0 &&
	    (r = old_cert_pem(sub.old_cert, &old_pem)) < 0)
		goto out;
	sub.old_cert_pem = old_pem;
	if (wrapped != NULL && strcmp(p->kind->name, "adcs") != 0) {
		r = p11km_fail(P11KM_ERR_USAGE, "'%s' is an MS renewal (a CMS SignedData), which only "
		               "AD CS takes; CA '%s' is %s: submit a plain request ('req renew' without "
		               "--format ms-renewal)", argv[g.argi], p->name, p->kind->name);
		goto out;
	}
	if ((r = p->kind->submit(ctx, p, der, der_len, &sub, &chain, &chain_len)) < 0)
		goto out;
	if (sub.pending) {
		r = pending_after(p, state, der, der_len, &sub, pd, argv[g.argi]);
		goto out;
	}
	if (strcmp(p->kind->name, "acme") == 0)
		p11km_verbose("%lu JWS signatures by the account key (one C_Sign each on a token), %lu "
		              "HTTP requests, %lu badNonce retries", sub.signatures, sub.requests,
		              sub.bad_nonces);
	if (out != NULL && (r = p11km_write_file_atomic(out, chain, chain_len, 0644)) < 0)
		goto out;
	if (do_install) {
		if (out == NULL && (r = p11km_cmd_temp_file(chain, chain_len, &tmp)) < 0)
			goto out;
		r = install(ctx, out ? out : tmp, key_uri, verify_ca);
		if (r < 0 && out == NULL) {
			char *msg = strdup(p11km_errmsg(r));
			r = p11km_fail(r, "%s; the issued chain was not kept: give -o FILE to keep it",
			               msg ? msg : p11km_strerror(r));
			free(msg);
		}
		goto out;
	}
	print_result(ctx, p, &sub, &pr, out, chain);
out:
	/* issued: the pending state goes once the chain is written or installed */
	if (r == 0 && pd != NULL && state != NULL && p11km_ca_pending_remove(state, p->name, der, der_len) < 0)
		p11km_warn("%s", p11km_errmsg(P11KM_ERR_IO));
	p11km_ca_pending_free(pd);
	if (tmp != NULL) {
		unlink(tmp);
		free(tmp);
	}
	json_decref(pr.steps);
	free(der);
	OPENSSL_free(wrapped);
	free(old_pem);
	free(chain);
	p11km_ca_submit_release(&sub);
	p11km_ca_profile_free(p);
	return r;
}
