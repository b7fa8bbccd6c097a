/* op-ca-add.c: 'ca add' as an operation: the options checked for the kind
 * (acme, cmp, helper, adcs), paths made absolute, the profile saved. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "p11km/ca.h"
#include "p11km/cert.h"
#include "p11km/op-ca.h"
#include "p11km/pin.h"
#include "p11km/util.h"

/* An absolute path of an existing file (malloc'ed). */
static int
abs_existing(const char *opt, const char *path, char **out)
{
	char buf[PATH_MAX];

	if (realpath(path, buf) == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "--%s '%s': %s", opt, path, strerror(errno));
	if ((*out = strdup(buf)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return 0;
}

int
p11km_ca_account_ref(const char *dir, const char *name, const char *opt, char **out)
{
	char buf[PATH_MAX];
	const char *path = opt;
	char *def = NULL, *slash;
	int r = 0;

	if (opt != NULL && strncmp(opt, "pkcs11:", 7) == 0) {
		struct p11km_uri *u = NULL;
		if ((r = p11km_uri_parse(opt, &u)) < 0)
			return r;
		p11km_uri_free(u);
		return (*out = strdup(opt)) ? 0 : p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	if (path == NULL && (path = def = p11km_asprintf("%s/%s.key", dir, name)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (realpath(path, buf) != NULL) {
		*out = strdup(buf);
	} else if (errno == ENOENT && (slash = strrchr(path, '/')) != NULL && slash != path) {
		char *parent = strndup(path, (size_t)(slash - path));
		if (parent != NULL && realpath(parent, buf) != NULL)
			*out = p11km_asprintf("%s/%s", buf, slash + 1);
		else
			*out = path[0] == '/' ? strdup(path) : NULL;
		free(parent);
	} else if (errno == ENOENT && path[0] != '/') {
		char cwd[PATH_MAX];
		*out = getcwd(cwd, sizeof(cwd)) ? p11km_asprintf("%s/%s", cwd, path) : NULL;
	} else {
		*out = NULL;
	}
	if (*out == NULL)
		r = p11km_fail(P11KM_ERR_USAGE, "--account-key '%s': cannot use that path", path);
	free(def);
	return r;
}

/* --kind helper: the command (an executable, absolute path) and its arguments. */
static int
add_helper(struct p11km_ca_profile *p, const char *command, size_t n, const char *const *args)
{
	char *path = NULL;
	int r;

	if (command == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "--kind helper needs --command PATH (a certmonger "
		                  "CA helper, e.g. /usr/lib/certmonger/local-submit)");
	if ((r = abs_existing("command", command, &path)) < 0)
		return r;
	if (access(path, X_OK) != 0) {
		r = p11km_fail(P11KM_ERR_USAGE, "--command '%s' is not executable", command);
		free(path);
		return r;
	}
	if ((p->command = calloc(n + 2, sizeof(*p->command))) == NULL) {
		free(path);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	p->command[0] = path;
	p->n_command = 1;
	for (size_t i = 0; i < n; i++)
		if ((p->command[p->n_command++] = strdup(args[i])) == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return 0;
}

/* --kind adcs: the URL (https unless --insecure-http), the template, the
 * authentication and where its password comes from. */
static int
add_adcs(struct p11km_ca_profile *p, const char *url, const char *ca_file)
{
	struct p11km_pinsrc ps = { 0 };
	int http = url != NULL && strncmp(url, "http://", 7) == 0, r;

	if (url == NULL || (strncmp(url, "https://", 8) != 0 && !http) || !p11km_config_safe(url))
		return p11km_fail(P11KM_ERR_USAGE, "--kind adcs needs --url https://HOST/certsrv");
	if (http && !p->insecure_http)
		return p11km_fail(P11KM_ERR_USAGE, "--url '%s' is plain HTTP: requests and credentials "
		                  "would cross the network in the clear (and the endpoint is an NTLM "
		                  "relay target); use https, or give --insecure-http", url);
	if (http)
		p11km_warn("CA '%s' uses plain HTTP: its requests and credentials are not protected",
		           p->name);
	if (!http && ca_file == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "give --ca-file FILE: the roots the CA's TLS "
		                  "certificate is checked against (p11km never uses a default bundle)");
	if (p->template_name == NULL || !p11km_config_safe(p->template_name))
		return p11km_fail(P11KM_ERR_USAGE, "--kind adcs needs --template NAME (the certificate "
		                  "template, e.g. WebServer)");
	if (p->auth != NULL && strcmp(p->auth, "basic") != 0 && strcmp(p->auth, "negotiate") != 0 &&
	    strcmp(p->auth, "ntlm") != 0)
		return p11km_fail(P11KM_ERR_USAGE, "--auth '%s': use basic, negotiate or ntlm", p->auth);
	if (p->auth != NULL && strcmp(p->auth, "negotiate") != 0 &&
	    (p->user == NULL || p->password_source == NULL))
		return p11km_fail(P11KM_ERR_USAGE, "--auth %s needs --user NAME and --password-source "
		                  "file:PATH|env:VAR", p->auth);
	if (p->auth == NULL && (p->user != NULL || p->password_source != NULL))
		return p11km_fail(P11KM_ERR_USAGE, "--user and --password-source go with --auth");
	if (p->auth != NULL && strcmp(p->auth, "negotiate") == 0 &&
	    (p->user != NULL || p->password_source != NULL))
		return p11km_fail(P11KM_ERR_USAGE, "--auth negotiate takes the caller's Kerberos ticket "
		                  "(kinit), never --user or --password-source");
	if (p->password_source != NULL) {
		if ((r = p11km_pinsrc_parse(p->password_source, 0, &ps)) < 0)
			return r;
		r = ps.kind == P11KM_PIN_FILE || ps.kind == P11KM_PIN_ENV ? 0 :
		    p11km_fail(P11KM_ERR_USAGE, "--password-source '%s': a profile can keep file:PATH or "
		               "env:VAR only", p->password_source);
		p11km_pinsrc_release(&ps);
		if (r < 0)
			return r;
	}
	p->url = (char *)url;
	return 0;
}

/* --kind cmp: the endpoint, and MAC (a secret source) or signature protection. */
static int
add_cmp(struct p11km_ca_profile *p, const char *url, const char *ca_file)
{
	struct p11km_pinsrc src = { 0 };
	STACK_OF(X509) *certs = NULL;
	struct p11km_uri *u = NULL;
	int r;

	if (url == NULL || !p11km_config_safe(url) ||
	    (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
		return p11km_fail(P11KM_ERR_USAGE, "--kind cmp needs --url http(s)://HOST:PORT/PATH");
	if (strncmp(url, "https://", 8) == 0 && ca_file == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "give --ca-file FILE: the roots the CA's TLS "
		                  "certificate is checked against (p11km never uses a default bundle)");
	if (p->secret == NULL && (p->cert == NULL || p->key == NULL))
		return p11km_fail(P11KM_ERR_USAGE, "--kind cmp needs --secret-source SPEC (MAC "
		                  "protection) or --cert FILE with --key pkcs11:... (signature)");
	if ((p->cert == NULL) != (p->key == NULL))
		return p11km_fail(P11KM_ERR_USAGE, "--cert and --key go together");
	if (p->cmd != NULL && strcmp(p->cmd, "p10cr") != 0 && strcmp(p->cmd, "ir") != 0 &&
	    strcmp(p->cmd, "cr") != 0 && strcmp(p->cmd, "kur") != 0)
		return p11km_fail(P11KM_ERR_USAGE, "--cmp-cmd '%s': give p10cr, ir, cr or kur", p->cmd);
	if ((p->recipient && (p->recipient[0] != '/' || !p11km_config_safe(p->recipient))) ||
	    (p->ref && !p11km_config_safe(p->ref)))
		return p11km_fail(P11KM_ERR_USAGE, "--recipient /TYPE=VALUE/... and --ref TEXT: "
		                  "printable text");
	/* a reference only: the secret itself is read at each submission */
	if (p->secret != NULL) {
		if ((r = p11km_pinsrc_parse(p->secret, 0, &src)) < 0)
			return r;
		p11km_pinsrc_release(&src);
		if (strncmp(p->secret, "file:", 5) == 0 && p->secret[5] != '/')
			return p11km_fail(P11KM_ERR_USAGE, "--secret-source '%s': give the file as an "
			                  "absolute path (the profile is read from anywhere)", p->secret);
	}
	if (p->key != NULL) {
		if (strncmp(p->key, "pkcs11:", 7) != 0)
			return p11km_fail(P11KM_ERR_USAGE, "--key '%s': give a pkcs11: URI", p->key);
		if ((r = p11km_uri_parse(p->key, &u)) < 0)
			return r;
		p11km_uri_free(u);
	}
	if (ca_file != NULL) {
		if ((r = p11km_certs_read(ca_file, P11KM_ROOTS_MAX_CERTS, &certs)) < 0)
			return r;
		sk_X509_pop_free(certs, X509_free);
	}
	if (p->cert != NULL) {
		const char *given = p->cert;
		if ((r = p11km_certs_read(given, 16, &certs)) < 0)
			return r;
		sk_X509_pop_free(certs, X509_free);
		if ((r = abs_existing("cert", given, &p->cert)) < 0)
			return r;
	}
	p->url = (char *)url;
	return 0;
}

/* --kind acme: the directory, the CA file, the contact, External Account
 * Binding (a reference to its HMAC key), the account key's reference. */
static int
add_acme(const struct p11km_ca_add_opts *o, const char *dir, struct p11km_ca_profile *p)
{
	struct p11km_pinsrc src = { 0 };
	STACK_OF(X509) *roots = NULL;
	const char *eab_src = o->eab_hmac_source, *eab_kid = o->eab_kid;
	int r;

	if ((eab_kid == NULL) != (eab_src == NULL))
		return p11km_fail(P11KM_ERR_USAGE, "--eab-kid and --eab-hmac-source go together");
	if (eab_kid != NULL && (*eab_kid == '\0' || strlen(eab_kid) > 256 || !p11km_config_safe(eab_kid)))
		return p11km_fail(P11KM_ERR_USAGE, "--eab-kid: give the key id as the CA gave it");
	/* a reference only: the HMAC key itself is read when an account is made */
	if (eab_src != NULL) {
		if ((r = p11km_pinsrc_parse(eab_src, 0, &src)) < 0)
			return r;
		p11km_pinsrc_release(&src);
	}
	if ((r = p11km_ca_name_check(o->name)) < 0)
		return r;
	if (o->kind == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "'ca add' needs --kind (acme, cmp, helper, adcs)");
	if ((r = p11km_ca_kind_find(o->kind, &p->kind)) < 0)
		return r;
	if (o->directory == NULL || strncmp(o->directory, "https://", 8) != 0)
		return p11km_fail(P11KM_ERR_USAGE, "--kind acme needs --directory https://...");
	if (o->ca_file == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "give --ca-file FILE: the roots the CA's TLS "
		                  "certificate is checked against (p11km never uses a default bundle)");
	if (o->contact != NULL && (strncmp(o->contact, "mailto:", 7) != 0 ||
	                           !p11km_config_safe(o->contact)))
		return p11km_fail(P11KM_ERR_USAGE, "--contact '%s': give mailto:ADDRESS", o->contact);
	if ((r = p11km_certs_read(o->ca_file, P11KM_ROOTS_MAX_CERTS, &roots)) < 0)
		return r;
	sk_X509_pop_free(roots, X509_free);
	p->directory = (char *)o->directory;
	p->contact = (char *)o->contact;
	p->eab_kid = (char *)eab_kid;
	p->eab_hmac_source = (char *)eab_src;
	if (eab_src != NULL && strncmp(eab_src, "file:", 5) == 0 && eab_src[5] != '/') {
		char *abs = NULL;
		if ((r = abs_existing("eab-hmac-source", eab_src + 5, &abs)) < 0)
			return r;
		p->eab_hmac_source = p11km_asprintf("file:%s", abs);
		free(abs);
		if (p->eab_hmac_source == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	if ((r = abs_existing("ca-file", o->ca_file, &p->ca_file)) < 0)
		return r;
	return p11km_ca_account_ref(dir, p->name, o->account_key, &p->account_key);
}

static int
kind_is(const struct p11km_ca_add_opts *o, const char *kind)
{
	return o->kind != NULL && strcmp(o->kind, kind) == 0;
}

/* The kind's checks (p: the options, borrowed; what they allocate is
 * recorded in p and freed by the caller). */
static int
add_check(const struct p11km_ca_add_opts *o, const char *dir, struct p11km_ca_profile *p)
{
	int r;

	if (kind_is(o, "helper"))
		r = add_helper(p, o->command, o->n_args, o->args);
	else if (o->n_args > 0)
		return p11km_fail(P11KM_ERR_USAGE, "'ca add' takes one NAME (arguments after it are a "
		                  "helper's, with --kind helper)");
	else if (!kind_is(o, "cmp") && (p->recipient || p->ref || p->secret || p->cert || p->key ||
	                                p->cmd))
		return p11km_fail(P11KM_ERR_USAGE, "--recipient, --ref, --secret-source, --cert, --key "
		                  "and --cmp-cmd go with --kind cmp");
	else if (!kind_is(o, "cmp") && !kind_is(o, "adcs"))
		return add_acme(o, dir, p);
	else if ((r = o->ca_file ? abs_existing("ca-file", o->ca_file, &p->ca_file) : 0) == 0)
		r = kind_is(o, "cmp") ? add_cmp(p, o->url, p->ca_file) : add_adcs(p, o->url, p->ca_file);
	if (r == 0 && (r = p11km_ca_name_check(o->name)) == 0)
		r = p11km_ca_kind_find(o->kind, &p->kind);
	return r;
}

int
p11km_ca_add(struct p11km_ctx *ctx, const struct p11km_ca_add_opts *o,
             struct p11km_ca_profile **out)
{
	struct p11km_ca_profile p = { 0 };
	const char *dir = p11km_ca_dir(o->config_dir);
	char *end = NULL;
	int r;

	*out = NULL;
	if (o->timeout != NULL) {
		p.timeout = strtol(o->timeout, &end, 10);
		if (*end != '\0' || p.timeout < 1 || p.timeout > 3600)
			return p11km_fail(P11KM_ERR_USAGE, "--timeout '%s': give 1 to 3600 seconds",
			                  o->timeout);
	}
	p.name = (char *)o->name;
	p.agree_tos = o->agree_tos;
	p.insecure_http = o->insecure_http;
	p.template_name = (char *)o->template_name;
	p.auth = (char *)o->auth;
	p.user = (char *)o->user;
	p.password_source = (char *)o->password_source;
	p.recipient = (char *)o->recipient;
	p.ref = (char *)o->ref;
	p.secret = (char *)o->secret;
	p.cert = (char *)o->cert;
	p.key = (char *)o->key;
	p.cmd = (char *)o->cmp_cmd;
	if ((r = add_check(o, dir, &p)) == 0 && (r = p11km_ca_profile_save(dir, &p, ctx->force)) == 0)
		r = p11km_ca_profile_load(dir, p.name, out);
	/* what the checks allocated */
	for (size_t i = 0; i < p.n_command; i++)
		free(p.command[i]);
	free(p.command);
	free(p.ca_file);
	free(p.account_key);
	if (p.cert != o->cert)
		free(p.cert);
	if (p.eab_hmac_source != o->eab_hmac_source)
		free(p.eab_hmac_source);
	return r;
}
