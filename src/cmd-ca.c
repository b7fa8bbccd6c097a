/* cmd-ca.c: 'ca add/list/show/remove': profiles of online CAs. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "p11km/bind.h"
#include "p11km/ca.h"
#include "p11km/cert.h"
#include "p11km/cmd.h"
#include "p11km/pin.h"
#include "p11km/util.h"

enum { O_KIND = 1000, O_DIRECTORY, O_CA_FILE, O_CONTACT, O_ACCOUNT_KEY, O_AGREE_TOS, O_TIMEOUT,
       O_CONFIG_DIR, O_COMMAND, O_URL, O_TEMPLATE, O_AUTH, O_USER, O_PASSWORD_SOURCE,
       O_INSECURE_HTTP, O_EAB_KID, O_EAB_HMAC_SOURCE, O_NEW_KEY, O_RECIPIENT, O_REF,
       O_SECRET_SOURCE, O_CERT, O_KEY, O_CMP_CMD };

#define CONFIG_DIR_OPT { "config-dir", 1, O_CONFIG_DIR, "DIR", \
	"where CA profiles live (default /etc/p11km/ca.d, or P11KM_CONFIG_DIR)" }

static const struct p11km_opt add_opts[] = {
	{ "kind", 1, O_KIND, "KIND", "acme, cmp, helper (certmonger CA helper) or adcs (AD CS web "
	  "enrollment)" },
	{ "directory", 1, O_DIRECTORY, "URL", "the ACME directory URL (https)" },
	{ "ca-file", 1, O_CA_FILE, "FILE", "trusted roots (PEM) for the CA's TLS certificate" },
	{ "contact", 1, O_CONTACT, "URI", "account contact, mailto:ADDRESS" },
	{ "account-key", 1, O_ACCOUNT_KEY, "URI|FILE",
	  "account key: pkcs11: URI of a token key, or a PEM file (made if absent; default DIR/NAME.key)" },
	{ "agree-tos", 0, O_AGREE_TOS, NULL, "agree to the CA's terms of service (creates the account)" },
	{ "timeout", 1, O_TIMEOUT, "SECONDS", "timeout of one HTTP request (default 30; a helper "
	  "run: 300)" },
	{ "command", 1, O_COMMAND, "PATH", "helper: the certmonger CA helper to run (its arguments "
	  "follow NAME, after --)" },
	{ "template", 1, O_TEMPLATE, "NAME", "adcs: the certificate template; helper: "
	  "CERTMONGER_CA_PROFILE" },
	{ "url", 1, O_URL, "URL", "adcs: the web enrollment, https://HOST/certsrv; cmp: the CMP "
	  "endpoint, http(s)://HOST:PORT/PATH" },
	{ "recipient", 1, O_RECIPIENT, "NAME", "cmp: the CA's name, /CN=.../O=..." },
	{ "ref", 1, O_REF, "TEXT", "cmp: the reference (sender KID) that goes with the shared secret" },
	{ "secret-source", 1, O_SECRET_SOURCE, "SPEC", "cmp: where the shared secret for MAC (PBM) "
	  "protection is read: file:PATH, env:VAR, fd:N or prompt (stored as that reference)" },
	{ "cert", 1, O_CERT, "FILE", "cmp: signature protection with this certificate (PEM) ..." },
	{ "key", 1, O_KEY, "URI", "cmp: ... and its key (pkcs11: URI; also the token for ir/cr/kur)" },
	{ "cmp-cmd", 1, O_CMP_CMD, "TYPE", "cmp: p10cr (default), ir, cr or kur" },
	{ "auth", 1, O_AUTH, "METHOD", "adcs: basic, negotiate or ntlm (default: none)" },
	{ "user", 1, O_USER, "NAME", "adcs: the user name for basic or ntlm" },
	{ "password-source", 1, O_PASSWORD_SOURCE, "SPEC", "adcs: where the password is read, "
	  "file:PATH or env:VAR (stored as that reference)" },
	{ "insecure-http", 0, O_INSECURE_HTTP, NULL, "adcs: allow an http:// URL (credentials and "
	  "requests in the clear; warned about)" },
	{ "eab-kid", 1, O_EAB_KID, "KID", "External Account Binding: the key id the CA gave out" },
	{ "eab-hmac-source", 1, O_EAB_HMAC_SOURCE, "SPEC",
	  "... and where its HMAC key (base64url) is: file:PATH, env:VAR or fd:N (stored as a reference)" },
	CONFIG_DIR_OPT,
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt dir_opts[] = { CONFIG_DIR_OPT, { NULL, 0, 0, NULL, NULL } };

static const struct p11km_opt account_opts[] = {
	{ "new-key", 1, O_NEW_KEY, "URI|FILE", "rollover: the new account key (pkcs11: URI, or a PEM "
	  "file, made if absent)" },
	CONFIG_DIR_OPT,
	{ NULL, 0, 0, NULL, NULL },
};

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

/* The account key reference: a URI as given, a file as an absolute path
 * (the file itself may not exist yet: p11km makes it on first use). */
static int
account_ref(const char *dir, const char *name, const char *opt, char **out)
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
add_helper(struct p11km_ca_profile *p, const char *command, int n, char **args)
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
	if ((p->command = calloc((size_t)n + 2, sizeof(*p->command))) == NULL) {
		free(path);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	p->command[0] = path;
	p->n_command = 1;
	for (int i = 0; i < n; i++)
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
		if ((r = p11km_certs_read(p->cert, 16, &certs)) < 0)
			return r;
		sk_X509_pop_free(certs, X509_free);
		if ((r = abs_existing("cert", p->cert, &p->cert)) < 0)
			return r;
	}
	p->url = (char *)url;
	return 0;
}

/* Save a helper or adcs profile (r: the result of its checks). */
static int
add_other(struct p11km_ctx *ctx, struct p11km_ca_profile *p, const char *name,
          const char *dir_opt, const char *kind, int r)
{
	const char *dir = p11km_ca_dir(dir_opt);

	if (r == 0 && (r = p11km_ca_name_check(name)) == 0 &&
	    (r = p11km_ca_kind_find(kind, &p->kind)) == 0) {
		p->name = (char *)name;
		r = p11km_ca_profile_save(dir, p, ctx->force);
	}
	if (r == 0 && ctx->json) {
		char *t = p11km_ca_profile_json(p);
		printf("%s\n", t ? t : "{}");
		free(t);
	} else if (r == 0 && !ctx->quiet) {
		printf("added CA profile '%s' (%s, %s)\n", p11km_esc(name), p->kind->name,
		       p11km_esc(p->url ? p->url : p->command[0]));
	}
	for (size_t i = 0; i < p->n_command; i++)
		free(p->command[i]);
	free(p->command);
	p->command = NULL;
	p->n_command = 0;
	return r;
}

static int
cmd_ca_add(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_ca_profile p = { 0 };
	const char *kind = NULL, *directory = NULL, *ca_file = NULL, *contact = NULL,
	           *account_key = NULL, *dir_opt = NULL, *dir, *command = NULL, *url = NULL,
	           *eab_kid = NULL, *eab_src = NULL;
	struct p11km_pinsrc src = { 0 };
	STACK_OF(X509) *roots = NULL;
	char *eab_abs = NULL;
	char *end;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_KIND: kind = g.optarg; break;
		case O_DIRECTORY: directory = g.optarg; break;
		case O_CA_FILE: ca_file = g.optarg; break;
		case O_CONTACT: contact = g.optarg; break;
		case O_ACCOUNT_KEY: account_key = g.optarg; break;
		case O_AGREE_TOS: p.agree_tos = 1; break;
		case O_TIMEOUT:
			p.timeout = strtol(g.optarg, &end, 10);
			if (*end != '\0' || p.timeout < 1 || p.timeout > 3600)
				return p11km_fail(P11KM_ERR_USAGE, "--timeout '%s': give 1 to 3600 seconds",
				                  g.optarg);
			break;
		case O_CONFIG_DIR: dir_opt = g.optarg; break;
		case O_EAB_KID: eab_kid = g.optarg; break;
		case O_EAB_HMAC_SOURCE: eab_src = g.optarg; break;
		case O_COMMAND: command = g.optarg; break;
		case O_URL: url = g.optarg; break;
		case O_TEMPLATE: p.template_name = (char *)g.optarg; break;
		case O_AUTH: p.auth = (char *)g.optarg; break;
		case O_USER: p.user = (char *)g.optarg; break;
		case O_PASSWORD_SOURCE: p.password_source = (char *)g.optarg; break;
		case O_INSECURE_HTTP: p.insecure_http = 1; break;
		case O_RECIPIENT: p.recipient = (char *)g.optarg; break;
		case O_REF: p.ref = (char *)g.optarg; break;
		case O_SECRET_SOURCE: p.secret = (char *)g.optarg; break;
		case O_CERT: p.cert = (char *)g.optarg; break;
		case O_KEY: p.key = (char *)g.optarg; break;
		case O_CMP_CMD: p.cmd = (char *)g.optarg; break;
		default: return r < 0 ? r : p11km_fail(P11KM_ERR_USAGE, "unexpected option");
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	if (kind != NULL && strcmp(kind, "helper") == 0)
		return add_other(ctx, &p, argv[g.argi], dir_opt, kind, add_helper(&p, command, argc - g.argi - 1,
		                                                            argv + g.argi + 1));
	if (argc - g.argi > 1)
		return p11km_fail(P11KM_ERR_USAGE, "'ca add' takes one NAME (arguments after it are a "
		                  "helper's, with --kind helper)");
	if (kind != NULL && strcmp(kind, "cmp") == 0) {
		const char *cert = p.cert;
		if (ca_file != NULL && (r = abs_existing("ca-file", ca_file, &p.ca_file)) < 0)
			return r;
		r = add_cmp(&p, url, p.ca_file);
		r = add_other(ctx, &p, argv[g.argi], dir_opt, kind, r);
		free(p.ca_file);
		if (p.cert != cert)
			free(p.cert);
		return r;
	}
	if (p.recipient || p.ref || p.secret || p.cert || p.key || p.cmd)
		return p11km_fail(P11KM_ERR_USAGE, "--recipient, --ref, --secret-source, --cert, --key "
		                  "and --cmp-cmd go with --kind cmp");
	if (kind != NULL && strcmp(kind, "adcs") == 0) {
		if (ca_file != NULL && (r = abs_existing("ca-file", ca_file, &p.ca_file)) < 0)
			return r;
		r = add_adcs(&p, url, p.ca_file);
		r = add_other(ctx, &p, argv[g.argi], dir_opt, kind, r);
		free(p.ca_file);
		return r;
	}
	dir = p11km_ca_dir(dir_opt);
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
	if ((r = p11km_ca_name_check(argv[g.argi])) < 0)
		return r;
	if (kind == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "'ca add' needs --kind (acme, cmp, helper, adcs)");
	if ((r = p11km_ca_kind_find(kind, &p.kind)) < 0)
		return r;
	if (directory == NULL || strncmp(directory, "https://", 8) != 0)
		return p11km_fail(P11KM_ERR_USAGE, "--kind acme needs --directory https://...");
	if (ca_file == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "give --ca-file FILE: the roots the CA's TLS "
		                  "certificate is checked against (p11km never uses a default bundle)");
	if (contact != NULL && (strncmp(contact, "mailto:", 7) != 0 || !p11km_config_safe(contact)))
		return p11km_fail(P11KM_ERR_USAGE, "--contact '%s': give mailto:ADDRESS", contact);
	if ((r = p11km_certs_read(ca_file, P11KM_ROOTS_MAX_CERTS, &roots)) < 0)
		return r;
	sk_X509_pop_free(roots, X509_free);
	p.name = argv[g.argi];
	p.directory = (char *)directory;
	p.contact = (char *)contact;
	p.eab_kid = (char *)eab_kid;
	p.eab_hmac_source = (char *)eab_src;
	if (eab_src != NULL && strncmp(eab_src, "file:", 5) == 0 && eab_src[5] != '/') {
		char *abs = NULL;
		if ((r = abs_existing("eab-hmac-source", eab_src + 5, &abs)) < 0)
			goto out;
		p.eab_hmac_source = eab_abs = p11km_asprintf("file:%s", abs);
		free(abs);
		if (eab_abs == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			goto out;
		}
	}
	if ((r = abs_existing("ca-file", ca_file, &p.ca_file)) < 0 ||
	    (r = account_ref(dir, p.name, account_key, &p.account_key)) < 0 ||
	    (r = p11km_ca_profile_save(dir, &p, ctx->force)) < 0)
		goto out;
	if (ctx->json) {
		char *t = p11km_ca_profile_json(&p);
		printf("%s\n", t ? t : "{}");
		free(t);
	} else if (!ctx->quiet) {
		printf("added CA profile '%s' (%s, %s)\n", p.name, p.kind->name, p11km_esc(p.directory));
	}
out:
	free(eab_abs);
	free(p.ca_file);
	free(p.account_key);
	return r;
}

static const char *
dir_from_opts(const struct p11km_cmd *cmd, int argc, char **argv, struct p11km_getopt *g, int *r)
{
	const char *dir_opt = NULL;

	while ((*r = p11km_getopt(g, cmd, argc, argv)) != -1) {
		if (*r != O_CONFIG_DIR) {
			if (*r >= 0)
				*r = p11km_fail(P11KM_ERR_USAGE, "unexpected option");
			return NULL;
		}
		dir_opt = g->optarg;
	}
	*r = p11km_check_args(cmd, argc - g->argi);
	return p11km_ca_dir(dir_opt);
}

/* Where the CA is: its directory, URL or helper. */
static const char *
where(const struct p11km_ca_profile *p)
{
	return p->directory ? p->directory : p->url ? p->url : p->n_command ? p->command[0] : "-";
}

static int
cmd_ca_list(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	int r = 0;
	const char *dir = dir_from_opts(cmd, argc, argv, &g, &r);
	json_t *arr = NULL;
	char **names = NULL;
	size_t n = 0;

	if (dir == NULL || r < 0)
		return r < 0 ? r : P11KM_ERR_USAGE;
	if ((r = p11km_ca_profile_names(dir, &names, &n)) < 0)
		return r;
	arr = json_array();
	for (size_t i = 0; i < n; i++) {
		struct p11km_ca_profile *p = NULL;
		if (p11km_ca_profile_load(dir, names[i], &p) < 0) {
			p11km_warn("%s", p11km_errmsg(P11KM_ERR_INPUT));
			continue;
		}
		if (ctx->json) {
			json_t *o = json_object();
			json_object_set_new(o, "name", json_string(p->name));
			json_object_set_new(o, "kind", json_string(p->kind->name));
			json_object_set_new(o, "directory", json_string(p->directory));
			if (p->url)
				json_object_set_new(o, "url", json_string(p->url));
			if (p->n_command > 0)
				json_object_set_new(o, "command", json_string(p->command[0]));
			json_array_append_new(arr, o);
		} else {
			printf("%-20s %-6s %s\n", p11km_esc(p->name), p->kind->name, p11km_esc(where(p)));
		}
		p11km_ca_profile_free(p);
	}
	if (ctx->json) {
		json_t *top = json_pack("{s:s,s:O}", "config_dir", dir, "profiles", arr);
		char *t = json_dumps(top, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		printf("%s\n", t ? t : "{}");
		free(t);
		json_decref(top);
	}
	json_decref(arr);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return 0;
}

static int
cmd_ca_show(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_ca_profile *p = NULL;
	int r = 0;
	const char *dir = dir_from_opts(cmd, argc, argv, &g, &r);
	char *t;

	if (dir == NULL || r < 0)
		return r < 0 ? r : P11KM_ERR_USAGE;
	if ((r = p11km_ca_profile_load(dir, argv[g.argi], &p)) < 0)
		return r;
	if (ctx->json) {
		t = p11km_ca_profile_json(p);
		printf("%s\n", t ? t : "{}");
		free(t);
	} else if (strcmp(p->kind->name, "cmp") == 0) {
#define OR_DASH(x) p11km_esc((x) ? (x) : "-")
		printf("name: %s\nkind: cmp\nurl: %s\nca-file: %s\nrecipient: %s\nref: %s\n"
		       "secret-source: %s\ncert: %s\nkey: %s\ncmp-cmd: %s\ntimeout: %ld\n",
		       p11km_esc(p->name), OR_DASH(p->url), OR_DASH(p->ca_file), OR_DASH(p->recipient),
		       OR_DASH(p->ref), OR_DASH(p->secret), OR_DASH(p->cert), OR_DASH(p->key),
		       p->cmd ? p->cmd : "p10cr", p->timeout > 0 ? p->timeout : 30L);
#undef OR_DASH
	} else if (p->directory == NULL) {
		printf("name: %s\nkind: %s\n", p11km_esc(p->name), p->kind->name);
		for (size_t i = 0; i < p->n_command; i++)
			printf("%s %s\n", i == 0 ? "command:" : "argument:", p11km_esc(p->command[i]));
		printf("url: %s\ntemplate: %s\nauth: %s\nuser: %s\npassword-source: %s\n"
		       "ca-file: %s\ninsecure-http: %s\ntimeout: %ld\n",
		       p11km_esc(p->url ? p->url : "-"),
		       p11km_esc(p->template_name ? p->template_name : "-"),
		       p->auth ? p->auth : "none", p11km_esc(p->user ? p->user : "-"),
		       p11km_esc(p->password_source ? p->password_source : "-"),
		       p11km_esc(p->ca_file ? p->ca_file : "-"), p->insecure_http ? "yes" : "no",
		       p->timeout > 0 ? p->timeout : p->n_command ? 300L : 30L);
	} else {
		printf("name: %s\nkind: %s\ndirectory: %s\nca-file: %s\ncontact: %s\naccount-key: %s\n"
		       "agree-tos: %s\ntimeout: %ld\neab-kid: %s\neab-hmac-source: %s\n",
		       p11km_esc(p->name), p->kind->name,
		       p11km_esc(p->directory), p11km_esc(p->ca_file ? p->ca_file : "-"),
		       p11km_esc(p->contact ? p->contact : "-"),
		       p11km_esc(p->account_key ? p->account_key : "-"), p->agree_tos ? "yes" : "no",
		       p->timeout > 0 ? p->timeout : 30L, p11km_esc(p->eab_kid ? p->eab_kid : "-"),
		       p11km_esc(p->eab_hmac_source ? p->eab_hmac_source : "-"));
	}
	p11km_ca_profile_free(p);
	return 0;
}

static int
cmd_ca_remove(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	int r = 0;
	const char *dir = dir_from_opts(cmd, argc, argv, &g, &r);

	if (dir == NULL || r < 0)
		return r < 0 ? r : P11KM_ERR_USAGE;
	if ((r = p11km_ca_profile_remove(dir, argv[g.argi])) < 0)
		return r;
	if (!ctx->quiet && !ctx->json)
		printf("removed CA profile '%s' (its account key file, if any, is kept)\n",
		       p11km_esc(argv[g.argi]));
	if (ctx->json)
		printf("{\"removed\": \"%s\"}\n", argv[g.argi]); /* a checked name: no escaping needed */
	return 0;
}

static void
print_progress(void *arg, const char *name, const char *detail)
{
	struct p11km_ctx *ctx = arg;

	if (!ctx->quiet && (isatty(2) || p11km_log_verbose_on()))
		fprintf(stderr, "p11km: %s: %s\n", name, p11km_esc(detail));
}

/* 'ca account show|rollover|deactivate NAME' */
static int
cmd_ca_account(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	static const char *const actions[] = { "show", "rollover", "deactivate" };
	struct p11km_getopt g = { 0 };
	struct p11km_ca_submit sub = { 0 };
	struct p11km_ca_profile *p = NULL;
	const char *dir_opt = NULL, *new_key = NULL, *dir;
	char *url = NULL, *ref = NULL, *old = NULL;
	int r, op = -1;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_NEW_KEY: new_key = g.optarg; break;
		case O_CONFIG_DIR: dir_opt = g.optarg; break;
		default: return r < 0 ? r : p11km_fail(P11KM_ERR_USAGE, "unexpected option");
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	for (int i = 0; i < 3; i++)
		if (strcmp(argv[g.argi], actions[i]) == 0)
			op = i;
	if (op < 0)
		return p11km_fail(P11KM_ERR_USAGE, "'ca account %s': give show, rollover or deactivate",
		                  p11km_esc(argv[g.argi]));
	if ((op == P11KM_ACME_ROLLOVER) != (new_key != NULL))
		return p11km_fail(P11KM_ERR_USAGE, "--new-key goes with 'ca account rollover' (and "
		                  "only there)");
	dir = p11km_ca_dir(dir_opt);
	if ((r = p11km_ca_profile_load(dir, argv[g.argi + 1], &p)) < 0)
		return r;
	if (strcmp(p->kind->name, "acme") != 0) {
		r = p11km_fail(P11KM_ERR_USAGE, "CA profile '%s' is not an ACME CA", p->name);
		goto out;
	}
	if (new_key != NULL && (r = account_ref(dir, p->name, new_key, &ref)) < 0)
		goto out;
	sub.step = print_progress;
	sub.step_arg = ctx;
	if ((r = p11km_acme_account(ctx, p, (enum p11km_acme_account_op)op, ref, &sub, &url)) < 0)
		goto out;
	if (ref != NULL) {
		/* the CA has the new key now: the profile follows (the old key is kept) */
		old = p->account_key;
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
	p11km_verbose("%lu JWS signatures, %lu HTTP requests", sub.signatures, sub.requests);
	if (ctx->json) {
		json_t *o = json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:I}", "ca", p->name, "account", url,
		                      "status", op == P11KM_ACME_DEACTIVATE ? "deactivated" : "valid",
		                      "account_key", p->account_key, "old_account_key", old,
		                      "signatures", (json_int_t)sub.signatures);
		p11km_json_print_free(o);
	} else if (!ctx->quiet) {
		printf("%s %s (%s)\n", op == P11KM_ACME_DEACTIVATE ? "deactivated account"
		       : op == P11KM_ACME_ROLLOVER ? "rolled over the key of account" : "account",
		       p11km_esc(url), op == P11KM_ACME_DEACTIVATE ? "deactivated" : "valid");
		if (old != NULL)
			printf("account key: %s (was %s)\n", p11km_esc(p->account_key), p11km_esc(old));
	}
out:
	p11km_ca_submit_release(&sub);
	p11km_ca_profile_free(p);
	free(url);
	free(ref);
	free(old);
	return r;
}

static void
print_time(const char *what, time_t t)
{
	char buf[32];
	struct tm tm;

	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	printf("%s: %s\n", what, buf);
}

/* 'ca renewal-info NAME CERT': the CA's suggested renewal window (ARI). */
static int
cmd_ca_renewal_info(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_ca_profile *p = NULL;
	struct p11km_renewal_window w = { 0 };
	int r = 0;
	const char *dir = dir_from_opts(cmd, argc, argv, &g, &r);
	X509 *cert = NULL;

	if (dir == NULL || r < 0)
		return r < 0 ? r : P11KM_ERR_USAGE;
	if ((r = p11km_ca_profile_load(dir, argv[g.argi], &p)) < 0 ||
	    (r = p11km_bind_load_cert(ctx, argv[g.argi + 1], &cert)) < 0 ||
	    (r = p11km_acme_renewal_window(ctx, p, cert, &w)) < 0)
		goto out;
	if (ctx->json) {
		json_t *o = json_pack("{s:s,s:s,s:I,s:I,s:s?,s:I}", "ca", p->name, "cert_id", w.cert_id,
		                      "start", (json_int_t)w.start, "end", (json_int_t)w.end,
		                      "explanation", w.explanation, "retry_after",
		                      (json_int_t)w.retry_after);
		p11km_json_print_free(o);
	} else {
		printf("cert-id: %s\n", w.cert_id);
		print_time("start", w.start);
		print_time("end", w.end);
		if (w.explanation != NULL)
			printf("explanation: %s\n", p11km_esc(w.explanation));
		if (w.retry_after > 0)
			printf("retry-after: %ld\n", w.retry_after);
	}
out:
	p11km_renewal_window_release(&w);
	X509_free(cert);
	p11km_ca_profile_free(p);
	return r;
}

const struct p11km_cmd p11km_cmds_ca[] = {
	{ "add", "NAME [-- HELPER-ARG...]", "add a CA profile (ACME, CMP, a certmonger helper, AD CS)",
	  cmd_ca_add, add_opts, 1, -1, 0 },
	{ "list", NULL, "list the CA profiles", cmd_ca_list, dir_opts, 0, 0, 0 },
	{ "show", "NAME", "show one CA profile", cmd_ca_show, dir_opts, 1, 1, 0 },
	{ "remove", "NAME", "remove a CA profile", cmd_ca_remove, dir_opts, 1, 1, 0 },
	{ "account", "show|rollover|deactivate NAME", "find the CA's account of the profile's key "
	  "(onlyReturnExisting), roll its key over (--new-key), or deactivate it", cmd_ca_account,
	  account_opts, 2, 2, 0 },
	{ "renewal-info", "NAME CERT", "the renewal window the CA suggests for CERT (ACME ARI, "
	  "RFC 9773)", cmd_ca_renewal_info, dir_opts, 2, 2, 0 },
	{ "roots", "NAME", "fetch the CA's own certificates; install them as trusted roots with --to",
	  p11km_ca_roots_run, p11km_ca_roots_opts, 1, 1, P11KM_CMD_CHANGES_TOKEN },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
