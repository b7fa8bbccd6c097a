/* cmd-ca.c: 'ca add/list/show/remove': profiles of online CAs. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "p11km/ca.h"
#include "p11km/cert.h"
#include "p11km/cmd.h"
#include "p11km/pin.h"
#include "p11km/util.h"

enum { O_KIND = 1000, O_DIRECTORY, O_CA_FILE, O_CONTACT, O_ACCOUNT_KEY, O_AGREE_TOS, O_TIMEOUT,
       O_CONFIG_DIR, O_URL, O_RECIPIENT, O_REF, O_SECRET_SOURCE, O_CERT, O_KEY, O_CMP_CMD };

#define CONFIG_DIR_OPT { "config-dir", 1, O_CONFIG_DIR, "DIR", \
	"where CA profiles live (default /etc/p11km/ca.d, or P11KM_CONFIG_DIR)" }

static const struct p11km_opt add_opts[] = {
	{ "kind", 1, O_KIND, "KIND", "acme or cmp (helper and adcs are not built yet)" },
	{ "directory", 1, O_DIRECTORY, "URL", "the ACME directory URL (https)" },
	{ "url", 1, O_URL, "URL", "cmp: the CMP endpoint, http(s)://HOST:PORT/PATH" },
	{ "ca-file", 1, O_CA_FILE, "FILE", "trusted roots (PEM) for the CA's TLS certificate "
	  "(cmp: also for signed CMP answers)" },
	{ "recipient", 1, O_RECIPIENT, "NAME", "cmp: the CA's name, /CN=.../O=..." },
	{ "ref", 1, O_REF, "TEXT", "cmp: the reference (sender KID) that goes with the shared secret" },
	{ "secret-source", 1, O_SECRET_SOURCE, "SRC", "cmp: where the shared secret for MAC (PBM) "
	  "protection is read: file:PATH, env:VAR, fd:N or prompt (never the secret itself)" },
	{ "cert", 1, O_CERT, "FILE", "cmp: signature protection with this certificate (PEM) ..." },
	{ "key", 1, O_KEY, "URI", "cmp: ... and its key (pkcs11: URI; also the token for ir/cr/kur)" },
	{ "cmp-cmd", 1, O_CMP_CMD, "TYPE", "cmp: p10cr (default), ir, cr or kur" },
	{ "contact", 1, O_CONTACT, "URI", "account contact, mailto:ADDRESS" },
	{ "account-key", 1, O_ACCOUNT_KEY, "URI|FILE",
	  "account key: pkcs11: URI of a token key, or a PEM file (made if absent; default DIR/NAME.key)" },
	{ "agree-tos", 0, O_AGREE_TOS, NULL, "agree to the CA's terms of service (creates the account)" },
	{ "timeout", 1, O_TIMEOUT, "SECONDS", "timeout of one HTTP request (default 30)" },
	CONFIG_DIR_OPT,
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt dir_opts[] = { CONFIG_DIR_OPT, { NULL, 0, 0, NULL, NULL } };

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

struct cmp_opts {
	const char *url, *recipient, *ref, *secret, *cert, *key, *cmd;
};

static void
added(struct p11km_ctx *ctx, const struct p11km_ca_profile *p, const char *where)
{
	if (ctx->json) {
		char *t = p11km_ca_profile_json(p);
		printf("%s\n", t ? t : "{}");
		free(t);
	} else if (!ctx->quiet) {
		printf("added CA profile '%s' (%s, %s)\n", p->name, p->kind->name, p11km_esc(where));
	}
}

/* 'ca add --kind cmp': the endpoint, and MAC or signature protection. */
static int
add_cmp(struct p11km_ctx *ctx, const char *dir, const char *name, struct p11km_ca_profile *p,
        const char *ca_file, const struct cmp_opts *co)
{
	struct p11km_pinsrc src = { 0 };
	STACK_OF(X509) *certs = NULL;
	struct p11km_uri *u = NULL;
	int r, https;

	if (co->url == NULL || !p11km_config_safe(co->url) ||
	    (strncmp(co->url, "http://", 7) != 0 && strncmp(co->url, "https://", 8) != 0))
		return p11km_fail(P11KM_ERR_USAGE, "--kind cmp needs --url http(s)://HOST:PORT/PATH");
	https = strncmp(co->url, "https://", 8) == 0;
	if (https && ca_file == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "give --ca-file FILE: the roots the CA's TLS "
		                  "certificate is checked against (p11km never uses a default bundle)");
	if (co->secret == NULL && (co->cert == NULL || co->key == NULL))
		return p11km_fail(P11KM_ERR_USAGE, "--kind cmp needs --secret-source SRC (MAC "
		                  "protection) or --cert FILE with --key pkcs11:... (signature)");
	if ((co->cert == NULL) != (co->key == NULL))
		return p11km_fail(P11KM_ERR_USAGE, "--cert and --key go together");
	if (co->cmd != NULL && strcmp(co->cmd, "p10cr") != 0 && strcmp(co->cmd, "ir") != 0 &&
	    strcmp(co->cmd, "cr") != 0 && strcmp(co->cmd, "kur") != 0)
		return p11km_fail(P11KM_ERR_USAGE, "--cmp-cmd '%s': give p10cr, ir, cr or kur", co->cmd);
	if (co->secret != NULL) {
		if ((r = p11km_pinsrc_parse(co->secret, 0, &src)) < 0)
			return r;
		p11km_pinsrc_release(&src);
	}
	if (co->key != NULL) {
		if (strncmp(co->key, "pkcs11:", 7) != 0)
			return p11km_fail(P11KM_ERR_USAGE, "--key '%s': give a pkcs11: URI", co->key);
		if ((r = p11km_uri_parse(co->key, &u)) < 0)
			return r;
		p11km_uri_free(u);
	}
	if ((co->recipient && (co->recipient[0] != '/' || !p11km_config_safe(co->recipient))) ||
	    (co->ref && !p11km_config_safe(co->ref)))
		return p11km_fail(P11KM_ERR_USAGE, "--recipient /TYPE=VALUE/... and --ref TEXT: "
		                  "printable text");
	if (ca_file != NULL) {
		if ((r = p11km_certs_read(ca_file, P11KM_ROOTS_MAX_CERTS, &certs)) < 0)
			return r;
		sk_X509_pop_free(certs, X509_free);
		if ((r = abs_existing("ca-file", ca_file, &p->ca_file)) < 0)
			return r;
	}
	if (co->cert != NULL) {
		if ((r = p11km_certs_read(co->cert, 16, &certs)) < 0 ||
		    (sk_X509_pop_free(certs, X509_free), r = abs_existing("cert", co->cert, &p->cert)) < 0)
			goto out;
	}
	p->name = (char *)name;
	p->url = (char *)co->url;
	p->recipient = (char *)co->recipient;
	p->ref = (char *)co->ref;
	p->secret = (char *)co->secret;
	p->key = (char *)co->key;
	p->cmd = (char *)co->cmd;
	if ((r = p11km_ca_profile_save(dir, p, ctx->force)) == 0)
		added(ctx, p, p->url);
out:
	free(p->ca_file);
	free(p->cert);
	return r;
}

static int
cmd_ca_add(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_ca_profile p = { 0 };
	const char *kind = NULL, *directory = NULL, *ca_file = NULL, *contact = NULL,
	           *account_key = NULL, *dir_opt = NULL, *dir;
	struct cmp_opts co = { 0 };
	STACK_OF(X509) *roots = NULL;
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
		case O_URL: co.url = g.optarg; break;
		case O_RECIPIENT: co.recipient = g.optarg; break;
		case O_REF: co.ref = g.optarg; break;
		case O_SECRET_SOURCE: co.secret = g.optarg; break;
		case O_CERT: co.cert = g.optarg; break;
		case O_KEY: co.key = g.optarg; break;
		case O_CMP_CMD: co.cmd = g.optarg; break;
		default: return r < 0 ? r : p11km_fail(P11KM_ERR_USAGE, "unexpected option");
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	dir = p11km_ca_dir(dir_opt);
	if ((r = p11km_ca_name_check(argv[g.argi])) < 0)
		return r;
	if (kind == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "'ca add' needs --kind (acme, cmp)");
	if ((r = p11km_ca_kind_find(kind, &p.kind)) < 0)
		return r;
	if (strcmp(p.kind->name, "cmp") == 0)
		return add_cmp(ctx, dir, argv[g.argi], &p, ca_file, &co);
	if (co.url || co.recipient || co.ref || co.secret || co.cert || co.key || co.cmd)
		return p11km_fail(P11KM_ERR_USAGE, "--url, --recipient, --ref, --secret-source, --cert, "
		                  "--key and --cmp-cmd go with --kind cmp");
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
	if ((r = abs_existing("ca-file", ca_file, &p.ca_file)) < 0 ||
	    (r = account_ref(dir, p.name, account_key, &p.account_key)) < 0 ||
	    (r = p11km_ca_profile_save(dir, &p, ctx->force)) < 0)
		goto out;
	added(ctx, &p, p.directory);
out:
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
			json_object_set_new(o, p->directory ? "directory" : "url",
			                    json_string(p->directory ? p->directory : p->url));
			json_array_append_new(arr, o);
		} else {
			printf("%-20s %-6s %s\n", p11km_esc(p->name), p->kind->name,
			       p11km_esc(p->directory ? p->directory : p->url ? p->url : "-"));
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
	} else {
		printf("name: %s\nkind: %s\ndirectory: %s\nca-file: %s\ncontact: %s\naccount-key: %s\n"
		       "agree-tos: %s\ntimeout: %ld\n", p11km_esc(p->name), p->kind->name,
		       p11km_esc(p->directory), p11km_esc(p->ca_file ? p->ca_file : "-"),
		       p11km_esc(p->contact ? p->contact : "-"),
		       p11km_esc(p->account_key ? p->account_key : "-"), p->agree_tos ? "yes" : "no",
		       p->timeout > 0 ? p->timeout : 30L);
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

enum { O_TO = 1100, O_DRY_RUN, O_SYSTEM_ROOT, O_OUT };

static const struct p11km_opt roots_opts[] = {
	{ "to", 1, O_TO, "STORE", "install them as trusted roots there (as 'roots install --to')" },
	{ "out", 1, O_OUT, "FILE", "write them (PEM) to FILE" },
	{ "dry-run", 0, O_DRY_RUN, NULL, "with --to: show what would change; change nothing" },
	{ "system-root", 1, O_SYSTEM_ROOT, "DIR", "file system root for the system store (tests)" },
	CONFIG_DIR_OPT,
	{ NULL, 0, 0, NULL, NULL },
};

/* The CA's certificates as PEM text (malloc'ed). */
static int
certs_pem(STACK_OF(X509) *sk, char **out, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;

	for (int i = 0; b != NULL && i < sk_X509_num(sk); i++)
		if (!PEM_write_bio_X509(b, sk_X509_value(sk, i)))
			break;
	if (b == NULL || (n = BIO_get_mem_data(b, &data)) <= 0 ||
	    (*out = p11km_memdup(data, (size_t)n)) == NULL) {
		BIO_free(b);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	*len = (size_t)n;
	BIO_free(b);
	return 0;
}

/* 'roots install TMP --to S...' in this process. */
static int
roots_install(struct p11km_ctx *ctx, const char *file, const char **to, int nto, int dry_run,
              const char *system_root)
{
	char **v = calloc((size_t)nto * 2 + 6, sizeof(*v));
	int argc = 0, r;

	if (v == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	v[argc++] = "install";
	v[argc++] = (char *)file;
	for (int i = 0; i < nto; i++) {
		v[argc++] = "--to";
		v[argc++] = (char *)to[i];
	}
	if (dry_run)
		v[argc++] = "--dry-run";
	if (system_root != NULL) {
		v[argc++] = "--system-root";
		v[argc++] = (char *)system_root;
	}
	r = p11km_fail(P11KM_ERR_FAILED, "'roots install' is missing from the command table");
	for (const struct p11km_cmd *c = p11km_cmds_roots; c->verb != NULL; c++)
		if (strcmp(c->verb, "install") == 0) {
			p11km_error_clear();
			r = c->run(ctx, c, argc, v);
			break;
		}
	free(v);
	return r;
}

static int
cmd_ca_roots(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_ca_profile *p = NULL;
	STACK_OF(X509) *certs = NULL;
	const char *dir_opt = NULL, *out = NULL, *system_root = NULL;
	const char **to = calloc((size_t)argc + 1, sizeof(*to));
	char *pem = NULL, *tmp = NULL;
	size_t len = 0;
	int r, nto = 0, dry_run = 0, fd = -1;

	if (to == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_TO: to[nto++] = g.optarg; break;
		case O_OUT: out = g.optarg; break;
		case O_DRY_RUN: dry_run = 1; break;
		case O_SYSTEM_ROOT: system_root = g.optarg; break;
		case O_CONFIG_DIR: dir_opt = g.optarg; break;
		default: r = r < 0 ? r : p11km_fail(P11KM_ERR_USAGE, "unexpected option"); goto out;
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		goto out;
	if (nto == 0 && out == NULL) {
		r = p11km_fail(P11KM_ERR_USAGE, "'ca roots' needs --to STORE or --out FILE");
		goto out;
	}
	if ((r = p11km_ca_profile_load(p11km_ca_dir(dir_opt), argv[g.argi], &p)) < 0)
		goto out;
	if (p->kind->roots == NULL) {
		r = p11km_fail(P11KM_ERR_UNSUPPORTED, "CA kind '%s' cannot send its CA certificates "
		               "here: fetch them from the CA and run 'p11km roots install FILE --to "
		               "STORE'", p->kind->name);
		goto out;
	}
	if ((r = p->kind->roots(ctx, p, &certs)) < 0 || (r = certs_pem(certs, &pem, &len)) < 0)
		goto out;
	if (out != NULL && (r = p11km_write_file_atomic(out, pem, len, 0644)) < 0)
		goto out;
	if (nto > 0) {
		const char *t = getenv("TMPDIR");
		if ((tmp = p11km_asprintf("%s/p11km-roots.XXXXXX", t && *t ? t : "/tmp")) == NULL ||
		    (fd = mkstemp(tmp)) < 0 || p11km_write_all(fd, pem, len) < 0) {
			r = p11km_fail(P11KM_ERR_IO, "cannot write a temporary file: %s", strerror(errno));
			goto out;
		}
		r = roots_install(ctx, tmp, to, nto, dry_run, system_root);
	} else if (!ctx->quiet && !ctx->json) {
		printf("wrote %d CA certificate(s) from CA '%s' to '%s'\n", sk_X509_num(certs),
		       p->name, p11km_esc(out));
	}
out:
	if (fd >= 0)
		close(fd);
	if (tmp != NULL && fd >= 0)
		unlink(tmp);
	free(tmp);
	free(pem);
	free(to);
	sk_X509_pop_free(certs, X509_free);
	p11km_ca_profile_free(p);
	return r;
}

const struct p11km_cmd p11km_cmds_ca[] = {
	{ "add", "NAME", "add a CA profile (ACME directory, TLS roots, account key)", cmd_ca_add,
	  add_opts, 1, 1, 0 },
	{ "list", NULL, "list the CA profiles", cmd_ca_list, dir_opts, 0, 0, 0 },
	{ "show", "NAME", "show one CA profile", cmd_ca_show, dir_opts, 1, 1, 0 },
	{ "remove", "NAME", "remove a CA profile", cmd_ca_remove, dir_opts, 1, 1, 0 },
	{ "roots", "NAME", "fetch the CA's own certificates and install them as trusted roots (CMP)",
	  cmd_ca_roots, roots_opts, 1, 1, P11KM_CMD_CHANGES_TOKEN },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
