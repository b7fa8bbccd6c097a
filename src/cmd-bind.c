/* cmd-bind.c: 'bind emit', 'bind check', 'bind verify'. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p11km/bind.h"
#include "p11km/cmd.h"
#include "p11km/store.h"
#include "p11km/util.h"

enum {
	O_KEY = 256, O_LISTEN, O_SERVER_NAME, O_CERT, O_OUT_DIR, O_PIN_FILE, O_SERVICE_USER,
	O_CONNECT, O_ALLOW_PIN_VALUE, O_CA_FILE, O_CA_PATH, O_ACME_WEBROOT, O_ACME_LISTEN,
};

#define MAX_LISTEN 16

/* --- bind emit ---------------------------------------------------------------- */

struct emit_args {
	const char *key, *server_name, *cert, *out_dir, *pin_file, *user, *connect;
	const char *acme_webroot, *acme_listen;
	const char *listen[MAX_LISTEN];
	size_t n_listen;
	int allow_pin_value;
};

static int
emit_parse(const struct p11km_cmd *cmd, int argc, char **argv, struct emit_args *a, int *argi)
{
	struct p11km_getopt g = { 0 };
	int r;

	memset(a, 0, sizeof(*a));
	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_KEY: a->key = g.optarg; break;
		case O_SERVER_NAME: a->server_name = g.optarg; break;
		case O_CERT: a->cert = g.optarg; break;
		case O_OUT_DIR: a->out_dir = g.optarg; break;
		case O_PIN_FILE: a->pin_file = g.optarg; break;
		case O_SERVICE_USER: a->user = g.optarg; break;
		case O_CONNECT: a->connect = g.optarg; break;
		case O_ALLOW_PIN_VALUE: a->allow_pin_value = 1; break;
		case O_ACME_WEBROOT: a->acme_webroot = g.optarg; break;
		case O_ACME_LISTEN: a->acme_listen = g.optarg; break;
		case O_LISTEN:
			if (a->n_listen == MAX_LISTEN)
				return p11km_fail(P11KM_ERR_USAGE, "at most %d --listen", MAX_LISTEN);
			a->listen[a->n_listen++] = g.optarg;
			break;
		default:
			if (r < 0)
				return r;
		}
	}
	*argi = g.argi;
	return p11km_check_args(cmd, argc - g.argi);
}

/* Values that go into configs: refuse anything that could add a directive. */
static int
emit_validate(const struct p11km_bind_flavour *fl, const struct emit_args *a)
{
	const char *names[] = { "--server-name", "--out-dir", "--pin-file", "--service-user",
	                        "--connect", "--acme-webroot" };
	const char *vals[] = { a->server_name, a->out_dir, a->pin_file, a->user, a->connect,
	                       a->acme_webroot };

	if (a->key == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "bind emit needs --key KEY-URI");
	if (a->n_listen == 0 && fl->render != NULL)
		return p11km_fail(P11KM_ERR_USAGE, "bind emit %s needs --listen ADDR:PORT", fl->name);
	if (fl->needs_connect && a->connect == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "bind emit %s needs --connect ADDR:PORT (the "
		                  "backend it forwards to)", fl->name);
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		if (vals[i] != NULL && !p11km_config_safe(vals[i]))
			return p11km_fail(P11KM_ERR_USAGE, "%s '%s' contains characters that could "
			                  "inject a directive (quotes, ;, braces, $, #, newlines...); "
			                  "use a plain value", names[i], vals[i]);
	if (a->server_name && strspn(a->server_name, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*") != strlen(a->server_name))
		return p11km_fail(P11KM_ERR_USAGE, "--server-name '%s' is not a DNS name",
		                  a->server_name);
	if (a->user && getpwnam(a->user) == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "no user '%s' on this system; give the user the "
		                  "server's workers run as", a->user);
	if ((a->acme_webroot || a->acme_listen) && strcmp(fl->name, "nginx") != 0 &&
	    strcmp(fl->name, "apache") != 0)
		return p11km_fail(P11KM_ERR_USAGE, "--acme-webroot goes with nginx and apache");
	if (a->acme_listen && !a->acme_webroot)
		return p11km_fail(P11KM_ERR_USAGE, "--acme-listen goes with --acme-webroot");
	if (a->acme_webroot && a->acme_webroot[0] != '/')
		return p11km_fail(P11KM_ERR_USAGE, "--acme-webroot '%s': give an absolute directory "
		                  "(the one 'req submit --webroot' writes into)", a->acme_webroot);
	if (a->cert && strncmp(a->cert, "pkcs11:", 7) != 0 && !p11km_config_safe(a->cert))
		return p11km_fail(P11KM_ERR_USAGE, "--cert '%s' is not a safe file name", a->cert);
	return 0;
}

/* An absolute form of a path whose directory exists. */
static char *
abs_path(const char *path)
{
	char cwd[PATH_MAX];

	if (path[0] == '/')
		return strdup(path);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	return p11km_asprintf("%s/%s", cwd, path);
}

/* What the binding's module needs from the environment to find its token:
 * SoftHSM2's SOFTHSM2_CONF (absolute), the p11-kit client's
 * P11_KIT_SERVER_ADDRESS (a Unix socket by absolute path: the server's
 * workers connect to it themselves). */
static int
module_env(struct p11km_bind_params *p)
{
	const char *base = strrchr(p->module_path, '/'), *v;
	char *conf;
	int r;

	base = base ? base + 1 : p->module_path;
	if (strcmp(base, "libsofthsm2.so") == 0 && (v = getenv("SOFTHSM2_CONF")) != NULL) {
		if ((conf = abs_path(v)) == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		r = p11km_bind_env_add(p, "SOFTHSM2_CONF", conf);
		free(conf);
		return r;
	}
	if (strcmp(base, "p11-kit-client.so") == 0) {
		if ((v = getenv("P11_KIT_SERVER_ADDRESS")) == NULL)
			return 0; /* the client's default socket, under $XDG_RUNTIME_DIR */
		if (strncmp(v, "unix:path=/", 11) != 0)
			return p11km_fail(P11KM_ERR_USAGE, "P11_KIT_SERVER_ADDRESS is '%s': a server "
			                  "binding needs a Unix socket by absolute path "
			                  "(unix:path=/...)", p11km_esc(v));
		return p11km_bind_env_add(p, "P11_KIT_SERVER_ADDRESS", v);
	}
	return 0;
}

/* The PIN p11km logged in with, copied (it must outlive the module
 * release): the PIN file is written from it, and the engine probe may log
 * in only with it.  *out NULL: no PIN was proved (a PIN pad). */
static int
pin_copy(struct p11km_ctx *ctx, char **out, size_t *out_len)
{
	const char *pin;
	size_t len;

	*out = NULL;
	*out_len = 0;
	if (p11km_pin_proved(ctx, NULL, &pin, &len) < 0)
		return 0;
	if (len > 32)
		return p11km_fail(P11KM_ERR_UNSUPPORTED, "the PIN is longer than 32 bytes: libp11 "
		                  "0.4.12 cannot use it; change the token's PIN to a shorter one");
	if ((*out = p11km_memdup(pin, len + 1)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	*out_len = len;
	return 0;
}

/* Write the server's PIN file: no newline, mode 0400, owned by user. */
static int
pin_file_write(const char *path, const char *pin, size_t len, const char *user)
{
	int r;

	if ((r = p11km_write_file_atomic(path, pin, len, 0400)) < 0)
		return r;
	if (user != NULL) {
		struct passwd *pw = getpwnam(user);
		if (pw == NULL || chown(path, pw->pw_uid, pw->pw_gid) != 0)
			return p11km_fail(P11KM_ERR_IO, "cannot give the PIN file '%s' to user '%s': %s",
			                  path, user, strerror(errno));
	}
	return 0;
}

/* Decide by trying: load the key through the engine as a server would. */
static int
emit_trial(const struct p11km_bind_params *p, const char *pin, size_t pin_len,
           int write_pin, int allow_pin_value)
{
	char tmpl[] = "/tmp/p11km-bind.XXXXXX";
	char *dir = NULL, *cnf = NULL, *pinf = NULL, *certf = NULL, *cnf_text = NULL;
	char *trial_uri = NULL;
	struct p11km_uri *u = NULL;
	struct p11km_problems pr = { 0 };
	struct p11km_engine_trial t;
	int r;

	if ((dir = mkdtemp(tmpl)) == NULL)
		return p11km_fail(P11KM_ERR_IO, "mkdtemp: %s", strerror(errno));
	cnf = p11km_asprintf("%s/openssl.cnf", dir);
	pinf = p11km_asprintf("%s/pin", dir);
	certf = p11km_asprintf("%s/cert.pem", dir);
	cnf_text = p11km_bind_openssl_cnf(p->engine_path, p->module_path);
	if (cnf == NULL || pinf == NULL || certf == NULL || cnf_text == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = p11km_write_scratch(cnf, cnf_text, strlen(cnf_text), 0600)) < 0 ||
	    (r = p11km_write_scratch(certf, p->cert_pem, p->cert_pem_len, 0600)) < 0)
		goto out;
	if (write_pin && (r = p11km_write_scratch(pinf, pin, pin_len, 0600)) < 0)
		goto out;
	if ((r = p11km_uri_parse(p->key_uri, &u)) < 0 ||
	    (r = p11km_uri_engine_safe(u, write_pin ? pinf : NULL, allow_pin_value, &trial_uri)) < 0)
		goto out;
	memset(&t, 0, sizeof(t));
	t.openssl_cnf = cnf;
	t.key = trial_uri;
	t.cert = certf;
	t.module_path = p->module_path;
	t.pin = pin;
	t.pin_len = pin_len;
	if ((r = p11km_engine_try(&t, &pr)) < 0)
		goto out;
	if (pr.n > 0)
		r = p11km_fail(P11KM_ERR_UNSUPPORTED, "the server's pkcs11 engine cannot use this key, "
		               "so no config was written: %s%s", pr.lines[0],
		               strstr(pr.lines[0], "keytype") ? " (the OpenSSL 3.0 engine cannot "
		               "drive this token, e.g. tpm2-pkcs11)" : "");
out:
	if (pinf) {
		unlink(pinf);
	}
	if (cnf)
		unlink(cnf);
	if (certf)
		unlink(certf);
	rmdir(dir);
	p11km_problems_release(&pr);
	p11km_uri_free(u);
	free(trial_uri);
	free(cnf_text);
	free(cnf);
	free(pinf);
	free(certf);
	return r;
}

/* s with every @DIR@ replaced by dir (malloc'ed). */
static char *
subst_dir(const char *s, const char *dir)
{
	const char *at;
	char *out = strdup(""), *n;

	while (out != NULL && (at = strstr(s, "@DIR@")) != NULL) {
		n = p11km_asprintf("%s%.*s%s", out, (int)(at - s), s, dir);
		free(out);
		out = n;
		s = at + 5;
	}
	if (out != NULL) {
		n = p11km_asprintf("%s%s", out, s);
		free(out);
		out = n;
	}
	return out;
}

static void
emit_report(struct p11km_ctx *ctx, const struct p11km_bind_params *p,
            const struct p11km_bind_files *fs, int to_stdout, const char *pin_written)
{
	char *snippet = p->fl->snippet_name ? p11km_asprintf("%s/%s", p->dir,
	                p->fl->snippet_name) : NULL;
	char *next1 = subst_dir(p->fl->next, p->dir);
	char *next2 = p11km_asprintf("p11km bind check %s", p->dir);

	if (ctx->json) {
		struct p11km_json j;
		p11km_json_init(&j, stdout);
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "server", p->fl->name);
		p11km_json_kv_string(&j, "key_uri", p->key_uri);
		p11km_json_kv_string(&j, "snippet", snippet);
		p11km_json_kv_string(&j, "pin_file", p->pin_file);
		p11km_json_key(&j, "files");
		p11km_json_array_begin(&j);
		for (size_t i = 0; i < fs->n; i++) {
			char *path = p11km_asprintf("%s/%s", p->dir, fs->f[i].name);
			p11km_json_object_begin(&j);
			p11km_json_kv_string(&j, "path", path);
			if (to_stdout) {
				p11km_json_key(&j, "content");
				p11km_json_stringn(&j, fs->f[i].data, fs->f[i].len);
			}
			p11km_json_object_end(&j);
			free(path);
		}
		if (pin_written) {
			p11km_json_object_begin(&j);
			p11km_json_kv_string(&j, "path", pin_written);
			p11km_json_object_end(&j);
		}
		p11km_json_array_end(&j);
		p11km_json_key(&j, "next");
		p11km_json_array_begin(&j);
		p11km_json_string(&j, next1);
		p11km_json_string(&j, next2);
		p11km_json_array_end(&j);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
	} else if (to_stdout) {
		for (size_t i = 0; i < fs->n; i++) {
			printf("%s==> %s/%s <==\n", i ? "\n" : "", p->dir, fs->f[i].name);
			fwrite(fs->f[i].data, 1, fs->f[i].len, stdout);
		}
	} else {
		for (size_t i = 0; i < fs->n; i++)
			printf("wrote %s/%s\n", p->dir, fs->f[i].name);
		if (pin_written)
			printf("wrote %s (PIN file, mode 0400)\n", pin_written);
		printf("next: %s\nnext: %s\n", next1 ? next1 : "", next2 ? next2 : "");
	}
	free(snippet);
	free(next1);
	free(next2);
}

/*
 * The PIN file the server reads: --pin-file (written from --pin-source, or
 * existing, and then also the PIN p11km logs in with), else the key URI's
 * pin-source.  *pin_spec is the "file:" source set in ctx (freed by caller).
 */
static int
emit_pin_file(struct p11km_ctx *ctx, const struct emit_args *a, char **pin_file,
              char **pin_spec, int *write_pin)
{
	struct p11km_uri *u = NULL;
	const char *ps;
	int r;

	*write_pin = 0;
	if (a->pin_file != NULL) {
		if ((*pin_file = abs_path(a->pin_file)) == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		*write_pin = ctx->pin_source_opt != NULL;
		if (!*write_pin && access(*pin_file, F_OK) != 0)
			return p11km_fail(P11KM_ERR_USAGE, "the PIN file '%s' does not exist; give "
			                  "--pin-source SPEC to create it from that PIN", *pin_file);
		/* log in with the PIN the server will use */
		if (!*write_pin && (*pin_spec = p11km_asprintf("file:%s", *pin_file)) != NULL)
			ctx->pin_source_opt = *pin_spec;
	} else if (!a->allow_pin_value) {
		if ((r = p11km_uri_parse(a->key, &u)) < 0)
			return r;
		if ((ps = p11km_uri_pin_source(u)) != NULL)
			*pin_file = abs_path(strncmp(ps, "file:", 5) == 0 ? ps + 5 : ps);
		p11km_uri_free(u);
		if (*pin_file == NULL)
			return p11km_fail(P11KM_ERR_USAGE, "bind emit needs --pin-file FILE: the server "
			                  "reads the PIN from it (give --pin-source to create it)");
	}
	if (*pin_file && !p11km_config_safe(*pin_file))
		return p11km_fail(P11KM_ERR_USAGE, "the PIN file path '%s' is not safe in a config",
		                  *pin_file);
	return 0;
}

static int
cmd_bind_emit(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct emit_args a;
	struct p11km_bind_params p;
	struct p11km_bind_files fs = { 0 };
	struct p11km_listen ls[MAX_LISTEN];
	const struct p11km_bind_flavour *fl;
	char *dir = NULL, *pin_file = NULL, *pin_spec = NULL, *pin = NULL;
	size_t pin_len = 0;
	int argi = 0, r, write_pin = 0, pin_created = 0;

	memset(&p, 0, sizeof(p));
	if ((r = emit_parse(cmd, argc, argv, &a, &argi)) < 0)
		return r;
	if ((fl = p11km_bind_flavour_find(argv[argi])) == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "unknown server '%s': use one of %s", argv[argi],
		                  p11km_bind_flavour_names());
	if (fl->why_not != NULL)
		return p11km_fail(P11KM_ERR_UNSUPPORTED, "%s", fl->why_not);
	if ((r = emit_validate(fl, &a)) < 0)
		return r;
	for (size_t i = 0; i < a.n_listen; i++)
		if ((r = p11km_listen_parse(a.listen[i], &ls[i])) < 0)
			return r;
	if (a.acme_webroot != NULL &&
	    (r = p11km_listen_parse(a.acme_listen ? a.acme_listen : "*:80", &p.acme_listen)) < 0)
		return r;
	p.acme_webroot = a.acme_webroot;
	if (a.allow_pin_value)
		p11km_warn("--allow-pin-value: the PIN will be written into the server config, "
		           "readable by whoever can read that file");

	if ((r = emit_pin_file(ctx, &a, &pin_file, &pin_spec, &write_pin)) < 0)
		goto out;

	/* where the files go and are referenced */
	if (a.out_dir != NULL) {
		if ((dir = abs_path(a.out_dir)) == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			goto out;
		}
		if (!p11km_config_safe(dir)) {
			r = p11km_fail(P11KM_ERR_USAGE, "the directory '%s' is not safe in a config", dir);
			goto out;
		}
	} else if ((dir = p11km_asprintf("/etc/p11km/bind/%s", fl->name)) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}

	p.fl = fl;
	p.listen = ls;
	p.n_listen = a.n_listen;
	p.server_name = a.server_name;
	p.service_user = a.user;
	p.connect = a.connect;
	p.dir = dir;
	p.pin_file = pin_file;
	if ((r = p11km_bind_resolve(ctx, a.key, a.cert, pin_file, a.allow_pin_value, &p)) < 0)
		goto out;
	if ((r = p11km_bind_engine_path(&p.engine_path)) < 0)
		goto out;
	if ((r = module_env(&p)) < 0)
		goto out;
	if ((r = pin_copy(ctx, &pin, &pin_len)) < 0)
		goto out;
	if (write_pin && pin == NULL) {
		r = p11km_fail(P11KM_ERR_LOGIN, "no PIN logged in to the token, so none can be "
		               "written to '%s'", pin_file);
		goto out;
	}
	/* the engine must not inherit the module p11km loaded: a server starts fresh */
	p11km_ctx_release(ctx);
	if ((r = emit_trial(&p, pin, pin_len, write_pin, a.allow_pin_value)) < 0)
		goto out;
	if ((r = p11km_bind_render(&p, &fs)) < 0)
		goto out;
	/* The PIN file first: configs that name a PIN file not written are broken;
	 * one this run created goes again when the binding cannot be written. */
	pin_created = write_pin && access(pin_file, F_OK) != 0;
	if (write_pin && (r = pin_file_write(pin_file, pin, pin_len, a.user)) < 0)
		goto out;
	if (a.out_dir != NULL && (r = p11km_bind_write(dir, &fs)) < 0)
		goto out;
	emit_report(ctx, &p, &fs, a.out_dir == NULL, write_pin ? pin_file : NULL);
	r = 0;
out:
	if (r < 0 && pin_created)
		(void)unlink(pin_file);
	p11km_bind_files_release(&fs);
	p11km_bind_params_release(&p);
	if (pin_spec != NULL && ctx->pin_source_opt == pin_spec)
		ctx->pin_source_opt = NULL;
	free(pin_spec);
	p11km_freezero(pin, pin_len + 1);
	free(dir);
	free(pin_file);
	return r;
}

/* --- bind check ------------------------------------------------------------------- */

static int
cmd_bind_check(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_bind_report rep;
	struct p11km_problems pr = { 0 };
	const char *user = NULL;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			return r;
		if (r == O_SERVICE_USER)
			user = g.optarg;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	if ((r = p11km_bind_check(ctx, argv[g.argi], user, &rep, &pr)) < 0)
		return r;
	if (ctx->json) {
		struct p11km_json j;
		p11km_json_init(&j, stdout);
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "server", rep.server);
		p11km_json_kv_string(&j, "key", rep.key);
		p11km_json_kv_string(&j, "cert", rep.cert);
		p11km_json_kv_string(&j, "service_user", rep.user);
		p11km_json_kv_string(&j, "openssl_conf", rep.openssl_cnf);
		p11km_json_kv_bool(&j, "ok", pr.n == 0);
		p11km_json_key(&j, "problems");
		p11km_json_array_begin(&j);
		for (size_t i = 0; i < pr.n; i++)
			p11km_json_string(&j, pr.lines[i]);
		p11km_json_array_end(&j);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
	} else {
		printf("server:       %s\n", rep.server);
		printf("key:          %s\n", rep.key);
		printf("certificate:  %s\n", rep.cert ? rep.cert : "(none)");
		printf("service user: %s\n", rep.user ? rep.user : "(the caller)");
		for (size_t i = 0; i < pr.n; i++)
			printf("problem: %s\n", p11km_esc(pr.lines[i]));
		if (pr.n == 0)
			printf("ok: the key signs through the engine%s and the certificate matches it\n",
			       rep.user ? " as the service user after fork" : "");
	}
	r = 0;
	if (pr.n > 0)
		r = p11km_fail(P11KM_ERR_VERIFY, "%zu problem%s with the binding; fix %s and run "
		               "'p11km bind check' again", pr.n, pr.n == 1 ? "" : "s",
		               pr.n == 1 ? "it" : "them");
	p11km_problems_release(&pr);
	p11km_bind_report_release(&rep);
	return r;
}

/* --- bind verify -------------------------------------------------------------------- */

static int
cmd_bind_verify(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_verify_result res;
	const char *name = NULL, *cert = NULL, *ca_file = NULL, *ca_path = NULL;
	X509 *expected = NULL;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_SERVER_NAME: name = g.optarg; break;
		case O_CERT: cert = g.optarg; break;
		case O_CA_FILE: ca_file = g.optarg; break;
		case O_CA_PATH: ca_path = g.optarg; break;
		default:
			if (r < 0)
				return r;
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	if (cert != NULL && (r = p11km_bind_load_cert(ctx, cert, &expected)) < 0)
		return r;
	if ((r = p11km_bind_verify(argv[g.argi], name, expected, ca_file, ca_path, &res)) < 0)
		goto out;
	if (ctx->json) {
		struct p11km_json j;
		p11km_json_init(&j, stdout);
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "address", argv[g.argi]);
		p11km_json_kv_string(&j, "server_name", name);
		p11km_json_kv_string(&j, "protocol", res.protocol);
		p11km_json_kv_string(&j, "subject", res.subject);
		p11km_json_kv_string(&j, "issuer", res.issuer);
		p11km_json_kv_string(&j, "serial", res.serial);
		p11km_json_kv_string(&j, "not_after", res.not_after);
		p11km_json_kv_int(&j, "days_left", res.days_left);
		p11km_json_kv_string(&j, "sha256", res.sha256);
		p11km_json_key(&j, "matches");
		if (res.compared) p11km_json_bool(&j, res.matches); else p11km_json_null(&j);
		p11km_json_kv_string(&j, "expected_serial", res.expected_serial);
		p11km_json_key(&j, "chain_ok");
		if (res.chain_checked) p11km_json_bool(&j, res.chain_ok); else p11km_json_null(&j);
		p11km_json_kv_string(&j, "chain_error", res.chain_error);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
	} else {
		printf("served by %s (%s, %s)\n", argv[g.argi], res.protocol, res.cipher);
		printf("  subject:   %s\n  issuer:    %s\n  serial:    %s\n", res.subject,
		       res.issuer, res.serial);
		printf("  not after: %s (%ld days left)\n", res.not_after, res.days_left);
		if (res.compared)
			printf("  expected:  %s (serial %s)\n", res.matches ? "same certificate" :
			       "MISMATCH", res.expected_serial ? res.expected_serial : "?");
		if (res.chain_checked)
			printf("  chain:     %s%s\n", res.chain_ok ? "verifies" : "does not verify: ",
			       res.chain_ok ? "" : res.chain_error);
	}
	r = 0;
	if (res.compared && !res.matches)
		r = p11km_fail(P11KM_ERR_VERIFY, "%s serves serial %s, not the expected certificate "
		               "(serial %s): if it was just installed, a server that reads "
		               "certificate files (nginx) needs 'p11km bind emit' again to rewrite "
		               "them; then reload the server (with the binding's environment: see "
		               "doc/bindings.md)", argv[g.argi], res.serial,
		               res.expected_serial ? res.expected_serial : "?");
	else if (res.chain_checked && !res.chain_ok)
		r = p11km_fail(P11KM_ERR_VERIFY, "the certificate chain served by %s does not verify: "
		               "%s", argv[g.argi], res.chain_error ? res.chain_error : "?");
	else if (res.days_left < 0)
		r = p11km_fail(P11KM_ERR_VERIFY, "the certificate served by %s has expired; renew it "
		               "('p11km req renew', then 'p11km cert install') and reload the server",
		               argv[g.argi]);
	p11km_verify_result_release(&res);
out:
	X509_free(expected);
	return r;
}

static const struct p11km_opt emit_opts[] = {
	{ "key", 1, O_KEY, "KEY-URI", "the token key the server uses (pkcs11: URI)" },
	{ "listen", 1, O_LISTEN, "ADDR:PORT", "IP:PORT, [IPv6]:PORT or *:PORT (repeatable)" },
	{ "server-name", 1, O_SERVER_NAME, "NAME", "DNS name for SNI / the virtual host" },
	{ "cert", 1, O_CERT, "URI|FILE", "the certificate (default: the token's, with the key's id)" },
	{ "out-dir", 1, O_OUT_DIR, "DIR", "write the files here (default: print them)" },
	{ "pin-file", 1, O_PIN_FILE, "FILE", "PIN file the server reads (created from --pin-source)" },
	{ "service-user", 1, O_SERVICE_USER, "USER", "user the server's workers run as" },
	{ "connect", 1, O_CONNECT, "ADDR:PORT", "backend address (stunnel)" },
	{ "allow-pin-value", 0, O_ALLOW_PIN_VALUE, NULL,
	  "allow the PIN itself (pin-value) in the config (warned about)" },
	{ "acme-webroot", 1, O_ACME_WEBROOT, "DIR", "nginx, apache: serve /.well-known/acme-challenge/ "
	  "from DIR over HTTP (req submit --webroot DIR)" },
	{ "acme-listen", 1, O_ACME_LISTEN, "ADDR:PORT", "where that HTTP server listens (default *:80)" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt check_opts[] = {
	{ "service-user", 1, O_SERVICE_USER, "USER", "check as this user (default: the manifest's)" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt verify_opts[] = {
	{ "server-name", 1, O_SERVER_NAME, "NAME", "SNI name to send (and check with a CA)" },
	{ "cert", 1, O_CERT, "URI|FILE", "the certificate the server should serve" },
	{ "ca-file", 1, O_CA_FILE, "FILE", "verify the served chain with these CA certificates" },
	{ "ca-path", 1, O_CA_PATH, "DIR", "verify the served chain with this hashed CA directory" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct p11km_cmd p11km_cmds_bind[] = {
	{ "emit", "SERVER", "write the config that makes a server use a token key by URI",
	  cmd_bind_emit, emit_opts, 1, 1, 0 },
	{ "check", "DIR|FILE", "load an emitted binding through the engine as the server will",
	  cmd_bind_check, check_opts, 1, 1, 0 },
	{ "verify", "ADDR:PORT", "connect to a server and check the certificate it serves",
	  cmd_bind_verify, verify_opts, 1, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
