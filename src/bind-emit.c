/* bind-emit.c: server flavours and the files of a binding. */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <p11-kit/p11-kit.h>

#include "p11km/bind.h"
#include "p11km/keys.h"
#include "p11km/store.h"
#include "p11km/util.h"
#include "p11km/x509.h"

/* --- problems ------------------------------------------------------------- */

void
p11km_problem_add(struct p11km_problems *pr, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL, **n;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s == NULL || (n = realloc(pr->lines, (pr->n + 1) * sizeof(*n))) == NULL) {
		free(s);
		return;
	}
	pr->lines = n;
	pr->lines[pr->n++] = s;
}

void
p11km_problems_release(struct p11km_problems *pr)
{
	for (size_t i = 0; i < pr->n; i++)
		free(pr->lines[i]);
	free(pr->lines);
	pr->lines = NULL;
	pr->n = 0;
}

/* --- listen addresses ----------------------------------------------------- */

int
p11km_listen_parse(const char *s, struct p11km_listen *out)
{
	const char *colon;
	char *end;
	long port;
	size_t hl;
	struct in_addr a4;
	struct in6_addr a6;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			goto bad;
		hl = (size_t)(rb - s - 1);
		if (hl == 0 || hl >= sizeof(out->host) || strspn(s + 1, "0123456789abcdefABCDEF:.") < hl)
			goto bad;
		memcpy(out->host, s + 1, hl);
		if (inet_pton(AF_INET6, out->host, &a6) != 1)
			goto bad;
		out->v6 = 1;
		colon = rb + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL || colon == s)
			goto bad;
		hl = (size_t)(colon - s);
		if (hl >= sizeof(out->host))
			goto bad;
		memcpy(out->host, s, hl);
		if (strcmp(out->host, "*") != 0 && (strspn(out->host, "0123456789.") != hl ||
		                                     inet_pton(AF_INET, out->host, &a4) != 1))
			goto bad; /* 300.1.1.1, 1.2.3, 01.2.3.4 */
	}
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 || port < 1 ||
	    port > 65535)
		goto bad;
	out->port = (int)port;
	return 0;
bad:
	return p11km_fail(P11KM_ERR_USAGE,
	    "invalid --listen '%s': use IP:PORT, [IPv6]:PORT or *:PORT (port 1-65535)", s);
}

static void
listen_fmt(const struct p11km_listen *l, char *buf, size_t len)
{
	if (l->v6)
		snprintf(buf, len, "[%s]:%d", l->host, l->port);
	else
		snprintf(buf, len, "%s:%d", l->host, l->port);
}

/* --- the rendered files --------------------------------------------------- */

void
p11km_bind_files_release(struct p11km_bind_files *fs)
{
	for (size_t i = 0; i < fs->n; i++) {
		free(fs->f[i].name);
		p11km_freezero(fs->f[i].data, fs->f[i].len); /* may hold a pin-value */
	}
	free(fs->f);
	fs->f = NULL;
	fs->n = 0;
}

static int
files_add(struct p11km_bind_files *fs, const char *name, char *data, size_t len, mode_t mode)
{
	struct p11km_bind_file *n;

	if (data == NULL || (n = realloc(fs->f, (fs->n + 1) * sizeof(*n))) == NULL) {
		free(data);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	fs->f = n;
	n[fs->n].name = strdup(name);
	n[fs->n].data = data;
	n[fs->n].len = len;
	n[fs->n].mode = mode;
	if (n[fs->n].name == NULL) {
		free(data);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	fs->n++;
	return 0;
}

/* A text file built with fprintf on a memory stream. */
struct text {
	FILE *fp;
	char *buf;
	size_t len;
};

static int
text_open(struct text *t)
{
	t->buf = NULL;
	t->len = 0;
	if ((t->fp = open_memstream(&t->buf, &t->len)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return 0;
}

static int
text_add(struct p11km_bind_files *fs, struct text *t, const char *name, mode_t mode)
{
	if (fclose(t->fp) != 0) {
		free(t->buf);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	return files_add(fs, name, t->buf, t->len, mode);
}

/*
 * The certificate files a config names carry the generation of the
 * binding in their name: DIR/cert-G.pem, chain-G.pem, fullchain-G.pem, G
 * the first 16 hex digits of the SHA-256 of the leaf.  A new generation is
 * written beside the old one, and the snippet (one file, renamed into
 * place) is the switch: a server that reads the old snippet finds the old
 * key id and the old certificate files, one that reads the new snippet the
 * new ones, never one with the other's.
 */
static char *
gen_path(const struct p11km_bind_params *p, const char *base)
{
	return p11km_asprintf("%s/%s-%s.pem", p->dir, base, p->gen);
}

static int
gen_set(struct p11km_bind_params *p)
{
	unsigned char md[32];
	unsigned int mdl = 0;
	char *hex;

	if (!EVP_Digest(p->cert_pem, p->cert_pem_len, md, &mdl, EVP_sha256(), NULL))
		return p11km_fail(P11KM_ERR_NOMEM, "SHA-256 failed");
	if ((hex = p11km_hex(md, 8)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	memcpy(p->gen, hex, 16);
	p->gen[16] = '\0';
	free(hex);
	return 0;
}

char *
p11km_bind_openssl_cnf(const char *engine_path, const char *module_path)
{
	return p11km_asprintf(
	    "# OpenSSL configuration written by p11km for one service: it loads the\n"
	    "# pkcs11 engine (libp11).  Give it to the service with OPENSSL_CONF; never\n"
	    "# put the engine into the global openssl.cnf.\n"
	    "openssl_conf = p11km_init\n\n"
	    "[p11km_init]\n"
	    "engines = p11km_engines\n\n"
	    "[p11km_engines]\n"
	    "pkcs11 = p11km_pkcs11\n\n"
	    "[p11km_pkcs11]\n"
	    "engine_id = pkcs11\n"
	    "dynamic_path = %s\n"
	    "MODULE_PATH = %s\n"
	    "# nginx loads keys without ENGINE_init(): the engine must be initialised here\n"
	    "init = 1\n", engine_path, module_path);
}

/* --- nginx ------------------------------------------------------------------ */

/* --acme-webroot: a plain HTTP server for http-01 (RFC 8555 8.3) that serves
 * what 'req submit --webroot DIR' writes and redirects everything else. */
static void
nginx_acme(const struct p11km_bind_params *p, FILE *fp)
{
	char addr[96];

	listen_fmt(&p->acme_listen, addr, sizeof(addr));
	fprintf(fp, "# http-01 (ACME): 'p11km req submit --webroot %s' writes the challenges\n"
	            "server {\n    listen %s;\n", p->acme_webroot, addr);
	if (p->server_name)
		fprintf(fp, "    server_name %s;\n", p->server_name);
	fprintf(fp, "    location ^~ /.well-known/acme-challenge/ {\n"
	            "        root \"%s\";\n"
	            "        default_type application/octet-stream;\n"
	            "        try_files $uri =404;\n    }\n"
	            "    location / {\n        return 301 https://$host$request_uri;\n    }\n}\n",
	        p->acme_webroot);
}

static int
render_nginx(const struct p11km_bind_params *p, struct p11km_bind_files *out)
{
	struct text t;
	char addr[96];
	char *full = gen_path(p, "fullchain");
	int r;

	if (full == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = text_open(&t)) < 0)
		goto out;
	fprintf(t.fp, "# nginx 1.22 server block written by p11km: include it inside http { }.\n"
	              "# The key stays on the token; nginx loads it through the pkcs11 engine.\n"
	              "# nginx must run with OPENSSL_CONF=%s/openssl.cnf and include\n"
	              "# nginx-main.conf at the top level of nginx.conf.\n"
	              "server {\n", p->dir);
	for (size_t i = 0; i < p->n_listen; i++) {
		listen_fmt(&p->listen[i], addr, sizeof(addr));
		fprintf(t.fp, "    listen %s ssl;\n", addr);
	}
	if (p->server_name)
		fprintf(t.fp, "    server_name %s;\n", p->server_name);
	fprintf(t.fp, "    ssl_certificate \"%s\";\n", full);
	fprintf(t.fp, "    ssl_certificate_key \"engine:pkcs11:%s\";\n", p->key_uri);
	fprintf(t.fp, "    ssl_protocols TLSv1.2 TLSv1.3;\n}\n");
	if (p->acme_webroot != NULL)
		nginx_acme(p, t.fp);
	if ((r = text_add(out, &t, p->fl->snippet_name, 0644)) < 0)
		goto out;
	if ((r = text_open(&t)) < 0)
		goto out;
	fprintf(t.fp, "# Top level (main context) of nginx.conf: nginx clears the environment of\n"
	              "# its workers; the pkcs11 module re-initialises in each worker and needs these.\n"
	              "env OPENSSL_CONF;\n");
	for (size_t i = 0; i < p->n_env; i++)
		fprintf(t.fp, "env %.*s;\n", (int)strcspn(p->env[i], "="), p->env[i]);
	r = text_add(out, &t, "nginx-main.conf", 0644);
out:
	free(full);
	return r;
}

/* --- Apache httpd --------------------------------------------------------------- */

static int
render_apache(const struct p11km_bind_params *p, struct p11km_bind_files *out)
{
	struct text t;
	char addr[96];
	int r;

	if ((r = text_open(&t)) < 0)
		return r;
	fprintf(t.fp, "# Apache httpd 2.4 (mod_ssl) virtual host written by p11km: include it at\n"
	              "# the top level of the configuration.  The key stays on the token; mod_ssl\n"
	              "# loads it through the pkcs11 engine.  httpd must run with\n"
	              "# OPENSSL_CONF=%s/openssl.cnf (see the systemd drop-in).\n"
	              "SSLCryptoDevice pkcs11\n", p->dir);
	for (size_t i = 0; i < p->n_listen; i++) {
		const struct p11km_listen *l = &p->listen[i];
		if (strcmp(l->host, "*") == 0)
			fprintf(t.fp, "Listen %d https\n", l->port);
		else {
			listen_fmt(l, addr, sizeof(addr));
			fprintf(t.fp, "Listen %s https\n", addr);
		}
	}
	fprintf(t.fp, "<VirtualHost");
	for (size_t i = 0; i < p->n_listen; i++) {
		listen_fmt(&p->listen[i], addr, sizeof(addr));
		fprintf(t.fp, " %s", addr);
	}
	fprintf(t.fp, ">\n");
	if (p->server_name)
		fprintf(t.fp, "    ServerName %s\n", p->server_name);
	fprintf(t.fp, "    SSLEngine on\n");
	fprintf(t.fp, "    SSLCertificateFile \"%s/cert-%s.pem\"\n", p->dir, p->gen);
	if (p->chain_pem_len > 0)
		fprintf(t.fp, "    SSLCertificateChainFile \"%s/chain-%s.pem\"\n", p->dir, p->gen);
	fprintf(t.fp, "    SSLCertificateKeyFile \"%s\"\n</VirtualHost>\n", p->key_uri);
	if (p->acme_webroot != NULL) {
		/* http-01 (ACME): what 'req submit --webroot DIR' writes, over plain HTTP */
		const struct p11km_listen *l = &p->acme_listen;
		listen_fmt(l, addr, sizeof(addr));
		fprintf(t.fp, "# http-01 (ACME): 'p11km req submit --webroot %s' writes the challenges\n"
		              "# (drop the Listen line when the configuration listens there already)\n",
		        p->acme_webroot);
		if (strcmp(l->host, "*") == 0)
			fprintf(t.fp, "Listen %d http\n", l->port);
		else
			fprintf(t.fp, "Listen %s http\n", addr);
		fprintf(t.fp, "<VirtualHost %s>\n", addr);
		if (p->server_name)
			fprintf(t.fp, "    ServerName %s\n", p->server_name);
		fprintf(t.fp, "    Alias /.well-known/acme-challenge/ \"%s/.well-known/acme-challenge/\"\n"
		              "    <Directory \"%s/.well-known/acme-challenge/\">\n"
		              "        Require all granted\n        ForceType application/octet-stream\n"
		              "    </Directory>\n"
		              "    # everything else: to https, as the nginx snippet does\n"
		              "    <LocationMatch \"^/(?!\\.well-known/acme-challenge/)\">\n"
		              "        Redirect 301 \"https://%%{SERVER_NAME}%%{REQUEST_URI}\"\n"
		              "    </LocationMatch>\n</VirtualHost>\n", p->acme_webroot, p->acme_webroot);
	}
	return text_add(out, &t, p->fl->snippet_name, 0644);
}

/* --- stunnel -------------------------------------------------------------------- */

static int
render_stunnel(const struct p11km_bind_params *p, struct p11km_bind_files *out)
{
	struct text t;
	char addr[96];
	int r;

	if ((r = text_open(&t)) < 0)
		return r;
	fprintf(t.fp, "; stunnel 5.68 configuration written by p11km.  The key stays on the token;\n"
	              "; stunnel loads it through the pkcs11 engine.  Run stunnel with\n"
	              "; OPENSSL_CONF=%s/openssl.cnf (see the systemd drop-in).\n"
	              "engine = pkcs11\n"
	              "engineCtrl = MODULE_PATH:%s\n", p->dir, p->module_path);
	if (p->service_user != NULL) {
		struct passwd *pw = getpwnam(p->service_user);
		struct group *gr = pw ? getgrgid(pw->pw_gid) : NULL;
		fprintf(t.fp, "; after loading the key, run as %s (it must be able to read the "
		        "token store)\nsetuid = %s\n", p->service_user, p->service_user);
		if (gr != NULL && p11km_config_safe(gr->gr_name))
			fprintf(t.fp, "setgid = %s\n", gr->gr_name);
	}
	for (size_t i = 0; i < p->n_listen; i++) {
		listen_fmt(&p->listen[i], addr, sizeof(addr));
		fprintf(t.fp, "\n[%s-%d]\n", p->server_name ? p->server_name : "p11km",
		        p->listen[i].port);
		if (strcmp(p->listen[i].host, "*") == 0)
			fprintf(t.fp, "accept = %d\n", p->listen[i].port);
		else
			fprintf(t.fp, "accept = %s\n", addr);
		fprintf(t.fp, "connect = %s\n", p->connect);
		if (p->server_name)
			fprintf(t.fp, "; SNI name served: %s\n", p->server_name);
		fprintf(t.fp, "engineId = pkcs11\n");
		fprintf(t.fp, "key = %s\n", p->key_uri);
		fprintf(t.fp, "cert = %s/fullchain-%s.pem\n", p->dir, p->gen);
	}
	return text_add(out, &t, p->fl->snippet_name, 0644);
}

/* --- the table ---------------------------------------------------------------- */

static const struct p11km_bind_flavour flavours[] = {
	{ "nginx", NULL, "nginx-server.conf", 0, "nginx.service",
	  "ssl_certificate_key", "ssl_certificate", "engine:pkcs11:", render_nginx,
	  "OPENSSL_CONF=@DIR@/openssl.cnf nginx -t" },
	{ "apache", NULL, "apache-vhost.conf", 0, "apache2.service",
	  "SSLCertificateKeyFile", "SSLCertificateFile", NULL, render_apache,
	  "OPENSSL_CONF=@DIR@/openssl.cnf apache2ctl configtest" },
	{ "stunnel", NULL, "stunnel.conf", 1, "stunnel4.service",
	  "key", "cert", NULL, render_stunnel,
	  "OPENSSL_CONF=@DIR@/openssl.cnf stunnel4 @DIR@/stunnel.conf" },
	{ "openssl-conf", NULL, NULL, 0, "SERVICE.service", NULL, NULL, NULL, NULL,
	  "OPENSSL_CONF=@DIR@/openssl.cnf openssl engine -t pkcs11" },
	{ "haproxy", "HAProxy 2.6 reads private keys only from PEM files and cannot load "
	  "them from a token (no engine key source); p11km will not write a config that cannot "
	  "work: use nginx, apache or stunnel in front of it", NULL, 0, NULL,
	  NULL, NULL, NULL, NULL, NULL },
	{ "lighttpd", "lighttpd 1.4.69 reads private keys only from PEM files and cannot load "
	  "them from a token; p11km will not write a config that cannot work: use nginx, "
	  "apache or stunnel", NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL },
};

const struct p11km_bind_flavour *
p11km_bind_flavour_find(const char *name)
{
	for (size_t i = 0; i < sizeof(flavours) / sizeof(flavours[0]); i++)
		if (strcmp(flavours[i].name, name) == 0)
			return &flavours[i];
	return NULL;
}

const char *
p11km_bind_flavour_names(void)
{
	return "nginx apache stunnel openssl-conf";
}

/* --- all files ------------------------------------------------------------ */

/* The certificate files: CERT-G.pem, CHAIN-G.pem, FULLCHAIN-G.pem when
 * names is "cert", "chain", "fullchain" (the generation the config names),
 * or cert.pem, chain.pem, fullchain.pem when gen is NULL (copies under
 * fixed names, for people and tools; no config names them). */
static int
render_certs(const struct p11km_bind_params *p, const char *gen, struct p11km_bind_files *out)
{
	static const char *base[] = { "cert", "chain", "fullchain" };
	size_t fl = p->cert_pem_len + p->chain_pem_len;
	int r = 0;

	for (size_t i = 0; i < 3 && r == 0; i++) {
		char *name = gen ? p11km_asprintf("%s-%s.pem", base[i], gen)
		                 : p11km_asprintf("%s.pem", base[i]);
		char *data = NULL;
		size_t len = i == 0 ? p->cert_pem_len : i == 1 ? p->chain_pem_len : fl;
		if (name == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		if (i == 1 && len == 0) {
			free(name);
			continue;
		}
		if ((data = malloc(len + 1)) != NULL) {
			if (i != 1)
				memcpy(data, p->cert_pem, p->cert_pem_len);
			if (i > 0 && p->chain_pem_len)
				memcpy(data + (i == 2 ? p->cert_pem_len : 0), p->chain_pem, p->chain_pem_len);
		}
		r = files_add(out, name, data, len, 0644);
		free(name);
	}
	return r;
}

/* openssl.cnf, environment, systemd drop-in: the same for every generation. */
static int
render_env(const struct p11km_bind_params *p, struct p11km_bind_files *out)
{
	struct text t;
	int r;

	if ((r = files_add(out, "openssl.cnf", p11km_bind_openssl_cnf(p->engine_path,
	                   p->module_path), 0, 0644)) < 0)
		return r;
	out->f[out->n - 1].len = strlen(out->f[out->n - 1].data);

	if ((r = text_open(&t)) < 0)
		return r;
	fprintf(t.fp, "OPENSSL_CONF=%s/openssl.cnf\n", p->dir);
	for (size_t i = 0; i < p->n_env; i++)
		fprintf(t.fp, "%s\n", p->env[i]);
	if ((r = text_add(out, &t, "environment", 0644)) < 0)
		return r;

	if ((r = text_open(&t)) < 0)
		return r;
	fprintf(t.fp, "# systemd drop-in written by p11km: install as\n"
	              "# /etc/systemd/system/%s.d/p11km.conf, then systemctl daemon-reload\n"
	              "# (see contrib/systemd/README.md).\n[Service]\n"
	              "Environment=OPENSSL_CONF=%s/openssl.cnf\n", p->fl->unit, p->dir);
	for (size_t i = 0; i < p->n_env; i++)
		fprintf(t.fp, "Environment=%s\n", p->env[i]);
	return text_add(out, &t, "systemd-dropin.conf", 0644);
}

/* The manifest 'bind check' and 'cert install --bind' read. */
static int
render_manifest(const struct p11km_bind_params *p, struct p11km_bind_files *out)
{
	struct text t;
	char addr[96];
	int r;

	if ((r = text_open(&t)) < 0)
		return r;
	fprintf(t.fp, "# p11km binding manifest: read by 'p11km bind check %s'\n", p->dir);
	fprintf(t.fp, "server = %s\n", p->fl->name);
	if (p->fl->snippet_name)
		fprintf(t.fp, "snippet = %s/%s\n", p->dir, p->fl->snippet_name);
	fprintf(t.fp, "openssl_conf = %s/openssl.cnf\n", p->dir);
	fprintf(t.fp, "key = %s\n", p->key_uri);
	fprintf(t.fp, "cert = %s/cert-%s.pem\n", p->dir, p->gen);
	fprintf(t.fp, "module = %s\n", p->module_path);
	if (p->service_user)
		fprintf(t.fp, "service_user = %s\n", p->service_user);
	for (size_t i = 0; i < p->n_env; i++)
		fprintf(t.fp, "env = %s\n", p->env[i]);
	for (size_t i = 0; i < p->n_listen; i++) {
		listen_fmt(&p->listen[i], addr, sizeof(addr));
		fprintf(t.fp, "listen = %s\n", addr);
	}
	if (p->server_name)
		fprintf(t.fp, "server_name = %s\n", p->server_name);
	if (p->connect)
		fprintf(t.fp, "connect = %s\n", p->connect);
	if (p->acme_webroot) {
		listen_fmt(&p->acme_listen, addr, sizeof(addr));
		fprintf(t.fp, "acme_webroot = %s\nacme_listen = %s\n", p->acme_webroot, addr);
	}
	return text_add(out, &t, "p11km-binding.conf", 0644);
}

/* In the order they are put in place: the new generation's certificate
 * files, the unchanging files, the snippet (the switch), the manifest, the
 * fixed-name copies. */
int
p11km_bind_render(struct p11km_bind_params *p, struct p11km_bind_files *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = gen_set(p)) < 0)
		return r;
	if ((r = render_certs(p, p->gen, out)) < 0 ||
	    (r = render_env(p, out)) < 0 ||
	    (p->fl->render != NULL && (r = p->fl->render(p, out)) < 0) ||
	    (r = render_manifest(p, out)) < 0 ||
	    (r = render_certs(p, NULL, out)) < 0)
		goto fail;
	/* --allow-pin-value: the files that name the key carry the PIN, so only
	 * their owner (root, who starts the server) may read them */
	for (size_t i = 0; i < out->n; i++)
		if (memmem(out->f[i].data, out->f[i].len, "pin-value=", 10) != NULL)
			out->f[i].mode = 0600;
	return 0;
fail:
	p11km_bind_files_release(out);
	return r;
}

int
p11km_bind_engine_path(char **out)
{
	const char *v = OpenSSL_version(OPENSSL_ENGINES_DIR);
	const char *q1 = strchr(v, '"'), *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
	const char *dirs[2] = { NULL, "/usr/lib/x86_64-linux-gnu/engines-3" };
	static const char *names[] = { "pkcs11.so", "libpkcs11.so" };
	char dir[512];

	*out = NULL;
	if (q1 && q2 && (size_t)(q2 - q1 - 1) < sizeof(dir)) {
		memcpy(dir, q1 + 1, (size_t)(q2 - q1 - 1));
		dir[q2 - q1 - 1] = '\0';
		dirs[0] = dir;
	}
	for (size_t d = 0; d < 2; d++) {
		for (size_t i = 0; dirs[d] && i < 2; i++) {
			char *path = p11km_asprintf("%s/%s", dirs[d], names[i]);
			if (path == NULL)
				return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			if (access(path, R_OK) == 0) {
				*out = path;
				return 0;
			}
			free(path);
		}
	}
	return p11km_fail(P11KM_ERR_UNSUPPORTED,
	    "the libp11 pkcs11 engine is not installed (no pkcs11.so in %s); "
	    "install libengine-pkcs11-openssl", dirs[0] ? dirs[0] : dirs[1]);
}

/* --- writing a binding ------------------------------------------------------ */

/* Is name "cert-G.pem", "chain-G.pem" or "fullchain-G.pem"? */
static int
is_gen_file(const char *name)
{
	static const char *base[] = { "cert-", "chain-", "fullchain-" };

	for (size_t i = 0; i < 3; i++) {
		size_t bl = strlen(base[i]);
		if (strncmp(name, base[i], bl) == 0 && strlen(name) == bl + 16 + 4 &&
		    strspn(name + bl, "0123456789abcdef") == 16 && strcmp(name + bl + 16, ".pem") == 0)
			return 1;
	}
	return 0;
}

/* The text of dir/name, or NULL (a binding written before may lack it). */
static char *
text_of(const char *dir, const char *name)
{
	char *path = p11km_asprintf("%s/%s", dir, name);
	unsigned char *data = NULL;
	size_t len = 0;

	if (path != NULL && p11km_read_file(path, 1 << 20, &data, &len) == 0) {
		char *t = realloc(data, len + 1);
		if (t != NULL) {
			t[len] = '\0';
			free(path);
			return t;
		}
	}
	p11km_error_clear();
	free(data);
	free(path);
	return NULL;
}

/* Remove the certificate files of generations no text in keep names: a
 * server that read the replaced snippet a moment ago still finds its files. */
static void
prune_generations(const char *dir, char *const *keep, size_t n_keep)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		int kept = 0;
		if (!is_gen_file(e->d_name))
			continue;
		for (size_t i = 0; i < n_keep && !kept; i++)
			kept = keep[i] != NULL && strstr(keep[i], e->d_name) != NULL;
		if (!kept)
			(void)unlinkat(dirfd(d), e->d_name, 0);
	}
	if (d != NULL)
		closedir(d);
}

struct p11km_bind_txn {
	char *dir;
	struct p11km_ftxn *t;
	char *keep[16];     /* texts that may name generations to keep */
	size_t n_keep;
};

void
p11km_bind_txn_free(struct p11km_bind_txn *bt)
{
	if (bt == NULL)
		return;
	p11km_ftxn_free(bt->t);
	for (size_t i = 0; i < bt->n_keep; i++)
		free(bt->keep[i]);
	free(bt->dir);
	free(bt);
}

int
p11km_bind_stage(const char *dir, const struct p11km_bind_files *fs, struct p11km_bind_txn **out)
{
	struct p11km_bind_txn *bt;
	int r = 0;

	*out = NULL;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return p11km_fail(P11KM_ERR_IO, "cannot create '%s': %s", dir, strerror(errno));
	if ((bt = calloc(1, sizeof(*bt))) == NULL || (bt->dir = strdup(dir)) == NULL ||
	    (bt->t = p11km_ftxn_new()) == NULL) {
		p11km_bind_txn_free(bt);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < fs->n && r == 0; i++) {
		char *path = p11km_asprintf("%s/%s", dir, fs->f[i].name);
		size_t nl = strlen(fs->f[i].name);
		if (path == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			break;
		}
		/* what the replaced snippet and manifest name stays: the previous generation */
		if (nl > 5 && strcmp(fs->f[i].name + nl - 5, ".conf") == 0 &&
		    bt->n_keep + 2 <= sizeof(bt->keep) / sizeof(bt->keep[0])) {
			bt->keep[bt->n_keep++] = text_of(dir, fs->f[i].name);
			bt->keep[bt->n_keep++] = strndup(fs->f[i].data, fs->f[i].len);
		}
		r = p11km_ftxn_write(bt->t, path, fs->f[i].data, fs->f[i].len, fs->f[i].mode);
		free(path);
	}
	if (r == 0)
		r = p11km_ftxn_reserve(bt->t);
	if (r < 0) {
		p11km_bind_txn_free(bt);
		return r;
	}
	*out = bt;
	return 0;
}

int
p11km_bind_commit(struct p11km_bind_txn *bt)
{
	int r = p11km_ftxn_commit(bt->t);

	if (r == 0)
		prune_generations(bt->dir, bt->keep, bt->n_keep);
	return r;
}

int
p11km_bind_write(const char *dir, const struct p11km_bind_files *fs)
{
	struct p11km_bind_txn *bt = NULL;
	int r;

	if ((r = p11km_bind_stage(dir, fs, &bt)) == 0)
		r = p11km_bind_commit(bt);
	p11km_bind_txn_free(bt);
	return r;
}
