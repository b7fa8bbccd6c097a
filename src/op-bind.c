/* op-bind.c: the emit operation ('bind emit'): the config that makes a
 * server use a token key by URI, decided by trying (the key is loaded through
 * the engine as the server would before anything is written).  The reports
 * of emit, check and verify are in op-bind-report.c. */
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
#include "p11km/op.h"
#include "p11km/store.h"
#include "p11km/util.h"

/* Values that go into configs: refuse anything that could add a directive. */
static int
emit_validate(const struct p11km_bind_flavour *fl, const struct p11km_bind_emit_opts *a)
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

/*
 * The PIN file the server reads: --pin-file (written from --pin-source, or
 * existing, and then also the PIN p11km logs in with), else the key URI's
 * pin-source.  *pin_spec is the "file:" source set in ctx (freed by caller).
 */
static int
emit_pin_file(struct p11km_ctx *ctx, const struct p11km_bind_emit_opts *a, char **pin_file,
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

/* The result: what was rendered, and where it went. */
static int
emit_result(const struct p11km_bind_params *p, struct p11km_bind_files *fs, int to_stdout,
            const char *pin_written, struct p11km_bind_emit_result *res)
{
	res->to_stdout = to_stdout;
	res->files = *fs;
	memset(fs, 0, sizeof(*fs));
	res->server = strdup(p->fl->name);
	res->key_uri = strdup(p->key_uri);
	res->dir = strdup(p->dir);
	res->snippet = p->fl->snippet_name ? p11km_asprintf("%s/%s", p->dir, p->fl->snippet_name)
	                                   : NULL;
	res->pin_file = p->pin_file ? strdup(p->pin_file) : NULL;
	res->pin_written = pin_written ? strdup(pin_written) : NULL;
	res->next[0] = subst_dir(p->fl->next, p->dir);
	res->next[1] = p11km_asprintf("p11km bind check %s", p->dir);
	if (res->server == NULL || res->key_uri == NULL || res->dir == NULL ||
	    (p->fl->snippet_name && res->snippet == NULL) || (p->pin_file && !res->pin_file) ||
	    (pin_written && !res->pin_written) || !res->next[0] || !res->next[1])
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return 0;
}

void
p11km_bind_emit_result_release(struct p11km_bind_emit_result *res)
{
	p11km_bind_files_release(&res->files);
	free(res->server);
	free(res->key_uri);
	free(res->dir);
	free(res->snippet);
	free(res->pin_file);
	free(res->pin_written);
	free(res->next[0]);
	free(res->next[1]);
	memset(res, 0, sizeof(*res));
}

int
p11km_bind_emit(struct p11km_ctx *ctx, const struct p11km_bind_emit_opts *o,
                struct p11km_bind_emit_result *res)
{
	const struct p11km_bind_emit_opts *a = o;
	struct p11km_bind_params p;
	struct p11km_bind_files fs = { 0 };
	struct p11km_listen ls[P11KM_BIND_MAX_LISTEN];
	const struct p11km_bind_flavour *fl;
	char *dir = NULL, *pin_file = NULL, *pin_spec = NULL, *pin = NULL;
	size_t pin_len = 0;
	int r, write_pin = 0, pin_created = 0;

	memset(&p, 0, sizeof(p));
	memset(res, 0, sizeof(*res));
	if (a->n_listen > P11KM_BIND_MAX_LISTEN)
		return p11km_fail(P11KM_ERR_USAGE, "at most %d --listen", P11KM_BIND_MAX_LISTEN);
	if ((fl = p11km_bind_flavour_find(a->server)) == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "unknown server '%s': use one of %s", a->server,
		                  p11km_bind_flavour_names());
	if (fl->why_not != NULL)
		return p11km_fail(P11KM_ERR_UNSUPPORTED, "%s", fl->why_not);
	if ((r = emit_validate(fl, a)) < 0)
		return r;
	for (size_t i = 0; i < a->n_listen; i++)
		if ((r = p11km_listen_parse(a->listen[i], &ls[i])) < 0)
			return r;
	if (a->acme_webroot != NULL &&
	    (r = p11km_listen_parse(a->acme_listen ? a->acme_listen : "*:80", &p.acme_listen)) < 0)
		return r;
	p.acme_webroot = a->acme_webroot;
	if (a->allow_pin_value)
		p11km_warn("--allow-pin-value: the PIN will be written into the server config, "
		           "readable by whoever can read that file");

	if ((r = emit_pin_file(ctx, a, &pin_file, &pin_spec, &write_pin)) < 0)
		goto out;

	/* where the files go and are referenced */
	if (a->out_dir != NULL) {
		if ((dir = abs_path(a->out_dir)) == NULL) {
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
	p.n_listen = a->n_listen;
	p.server_name = a->server_name;
	p.service_user = a->user;
	p.connect = a->connect;
	p.dir = dir;
	p.pin_file = pin_file;
	if ((r = p11km_bind_resolve(ctx, a->key, a->cert, pin_file, a->allow_pin_value, &p)) < 0)
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
	if ((r = emit_trial(&p, pin, pin_len, write_pin, a->allow_pin_value)) < 0)
		goto out;
	if ((r = p11km_bind_render(&p, &fs)) < 0)
		goto out;
	/* The PIN file first: configs that name a PIN file not written are broken;
	 * one this run created goes again when the binding cannot be written. */
	pin_created = write_pin && access(pin_file, F_OK) != 0;
	if (write_pin && (r = pin_file_write(pin_file, pin, pin_len, a->user)) < 0)
		goto out;
	if (a->out_dir != NULL && (r = p11km_bind_write(dir, &fs)) < 0)
		goto out;
	r = emit_result(&p, &fs, a->out_dir == NULL, write_pin ? pin_file : NULL, res);
out:
	if (r < 0)
		p11km_bind_emit_result_release(res);
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

