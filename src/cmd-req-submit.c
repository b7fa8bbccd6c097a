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
#include <openssl/x509.h>

#include "p11km/ca.h"
#include "p11km/cmd.h"
#include "p11km/util.h"

enum { O_CA = 1000, O_INSTALL, O_STANDALONE, O_WEBROOT, O_CONFIG_DIR, O_VERIFY_CA_FILE, O_CMP,
       O_OLD_CERT, O_KEY };

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
	  "protects the message)" },
	{ "key", 1, O_KEY, "URI", "CMP ir/cr/kur: the token (pkcs11: URI) holding the request's key "
	  "(default: the profile's --key)" },
	{ "config-dir", 1, O_CONFIG_DIR, "DIR", "where CA profiles live (default /etc/p11km/ca.d)" },
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

/* The request as DER: PEM or DER input, its signature checked. */
static int
read_request(const char *path, unsigned char **der, size_t *der_len)
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
	free(data);
	if (req == NULL)
		return p11km_fail(P11KM_ERR_INPUT, "'%s' is not a certificate request (PEM or DER "
		                  "PKCS#10)", path);
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

	for (const struct p11km_cmd *c = p11km_cmds_cert; c->verb != NULL; c++) {
		if (strcmp(c->verb, "install") != 0)
			continue;
		argv[argc++] = "install";
		argv[argc++] = (char *)chain;
		if (key_uri != NULL)
			argv[argc++] = (char *)key_uri;
		if (ca_file != NULL) {
			argv[argc++] = "--ca-file";
			argv[argc++] = (char *)ca_file;
		}
		argv[argc] = NULL;
		return c->run(ctx, c, argc, argv);
	}
	return p11km_fail(P11KM_ERR_FAILED, "'cert install' is missing from the command table");
}

/* A private temporary file holding the chain (for --install without -o). */
static int
temp_chain(const char *chain, size_t len, char **path)
{
	const char *tmp = getenv("TMPDIR");
	char *p = p11km_asprintf("%s/p11km-chain.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd;

	if (p == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((fd = mkstemp(p)) < 0 || p11km_write_all(fd, chain, len) < 0) {
		int e = errno;
		if (fd >= 0) {
			close(fd);
			unlink(p);
		}
		free(p);
		return p11km_fail(P11KM_ERR_IO, "cannot write a temporary file: %s", strerror(e));
	}
	close(fd);
	*path = p;
	return 0;
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
	o = json_pack("{s:s,s:s,s:s?,s:s?,s:I,s:I,s:O}", "ca", p->name, "kind", p->kind->name,
	              "order", sub->order_url, "certificate", sub->cert_url,
	              "signatures", (json_int_t)sub->signatures, "requests", (json_int_t)sub->requests,
	              "steps", pr->steps);
	if (out != NULL)
		json_object_set_new(o, "chain_file", json_string(out));
	else
		json_object_set_new(o, "chain", json_string(chain));
	t = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	printf("%s\n", t ? t : "{}");
	free(t);
	json_decref(o);
}

/* Options that belong to one kind of CA. */
static int
kind_options(const struct p11km_ca_profile *p, const struct p11km_ca_submit *sub)
{
	int cmp = strcmp(p->kind->name, "cmp") == 0;

	if (!cmp && (sub->cmp_cmd || sub->old_cert || sub->key_uri))
		return p11km_fail(P11KM_ERR_USAGE, "--cmp, --old-cert and --key go with a CMP CA; "
		                  "'%s' is %s", p->name, p->kind->name);
	if (cmp && (sub->standalone || sub->webroot))
		return p11km_fail(P11KM_ERR_USAGE, "--standalone and --webroot go with an ACME CA; "
		                  "'%s' is cmp", p->name);
	return 0;
}

int
p11km_req_submit_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_ca_submit sub = { 0 };
	struct p11km_ca_profile *p = NULL;
	struct progress pr = { isatty(2), ctx->quiet, json_array() };
	const char *ca = NULL, *out = NULL, *dir_opt = NULL, *verify_ca = NULL, *key_uri;
	unsigned char *der = NULL;
	char *chain = NULL, *tmp = NULL;
	size_t der_len = 0, chain_len = 0;
	int r, do_install = 0;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_CA: ca = g.optarg; break;
		case 'o': out = g.optarg; break;
		case O_INSTALL: do_install = 1; break;
		case O_VERIFY_CA_FILE: verify_ca = g.optarg; break;
		case O_STANDALONE: sub.standalone = g.optarg; break;
		case O_WEBROOT: sub.webroot = g.optarg; break;
		case O_CONFIG_DIR: dir_opt = g.optarg; break;
		case O_CMP: sub.cmp_cmd = g.optarg; break;
		case O_OLD_CERT: sub.old_cert = g.optarg; break;
		case O_KEY: sub.key_uri = g.optarg; break;
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
	if (sub.standalone != NULL && sub.webroot != NULL) {
		r = p11km_fail(P11KM_ERR_USAGE, "give --standalone or --webroot, not both");
		goto out;
	}
	sub.step = on_step;
	sub.step_arg = &pr;
	if ((r = p11km_ca_profile_load(p11km_ca_dir(dir_opt), ca, &p)) < 0 ||
	    (r = kind_options(p, &sub)) < 0 ||
	    (r = read_request(argv[g.argi], &der, &der_len)) < 0 ||
	    (r = p->kind->submit(ctx, p, der, der_len, &sub, &chain, &chain_len)) < 0)
		goto out;
	if (strcmp(p->kind->name, "acme") == 0)
		p11km_verbose("%lu JWS signatures by the account key (one C_Sign each on a token), %lu "
		              "HTTP requests", sub.signatures, sub.requests);
	if (out != NULL && (r = p11km_write_file_atomic(out, chain, chain_len, 0644)) < 0)
		goto out;
	if (do_install) {
		if (out == NULL && (r = temp_chain(chain, chain_len, &tmp)) < 0)
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
	if (tmp != NULL) {
		unlink(tmp);
		free(tmp);
	}
	json_decref(pr.steps);
	free(der);
	free(chain);
	p11km_ca_submit_release(&sub);
	p11km_ca_profile_free(p);
	return r;
}
