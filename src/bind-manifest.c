/* bind-manifest.c: the manifest of an emitted binding (p11km-binding.conf),
 * and rewriting a binding for a newly installed certificate
 * ('cert install --bind DIR'): staged before the token changes, put in
 * place after, the snippet last. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "p11km/bind.h"
#include "p11km/cert.h"
#include "p11km/util.h"
#include "p11km/x509.h"

char *
p11km_bind_value_trim(char *v)
{
	char *e;

	while (*v == ' ' || *v == '\t' || *v == '=')
		v++;
	for (e = v + strlen(v); e > v && strchr(" \t\r\n;", e[-1]); e--)
		;
	*e = '\0';
	if (e - v >= 2 && (*v == '"' || *v == '\'') && e[-1] == *v) {
		e[-1] = '\0';
		v++;
	}
	return v;
}

void
p11km_bind_manifest_release(struct p11km_bind_manifest *m)
{
	free(m->server);
	free(m->snippet);
	free(m->openssl_conf);
	free(m->key);
	free(m->cert);
	free(m->module);
	free(m->user);
	free(m->server_name);
	free(m->connect);
	free(m->acme_webroot);
	free(m->acme_listen);
	for (size_t i = 0; i < m->n_env; i++)
		free(m->env[i]);
	for (size_t i = 0; i < m->n_listen; i++)
		free(m->listen[i]);
	memset(m, 0, sizeof(*m));
}

int
p11km_bind_manifest_read(const char *path, struct p11km_bind_manifest *m)
{
	struct stat st;
	char *file = NULL, line[4096];
	FILE *fp;
	int r = 0;

	memset(m, 0, sizeof(*m));
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		file = p11km_asprintf("%s/p11km-binding.conf", path);
	else
		file = strdup(path);
	if (file == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((fp = fopen(file, "r")) == NULL) {
		r = p11km_fail(P11KM_ERR_IO, "unable to open '%s': %s; give the directory that "
		               "'p11km bind emit --out-dir' wrote", file, strerror(errno));
		free(file);
		return r;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		char *eq = strchr(line, '='), *k = line, *v, **slot = NULL;
		if (line[0] == '#' || eq == NULL)
			continue;
		*eq = '\0';
		k = p11km_bind_value_trim(k);
		v = p11km_bind_value_trim(eq + 1);
		if (strcmp(k, "server") == 0) slot = &m->server;
		else if (strcmp(k, "snippet") == 0) slot = &m->snippet;
		else if (strcmp(k, "openssl_conf") == 0) slot = &m->openssl_conf;
		else if (strcmp(k, "key") == 0) slot = &m->key;
		else if (strcmp(k, "cert") == 0) slot = &m->cert;
		else if (strcmp(k, "module") == 0) slot = &m->module;
		else if (strcmp(k, "service_user") == 0) slot = &m->user;
		else if (strcmp(k, "server_name") == 0) slot = &m->server_name;
		else if (strcmp(k, "connect") == 0) slot = &m->connect;
		else if (strcmp(k, "acme_webroot") == 0) slot = &m->acme_webroot;
		else if (strcmp(k, "acme_listen") == 0) slot = &m->acme_listen;
		else if (strcmp(k, "env") == 0 && m->n_env < P11KM_MANIFEST_MAX) slot = &m->env[m->n_env++];
		else if (strcmp(k, "listen") == 0 && m->n_listen < P11KM_MANIFEST_MAX)
			slot = &m->listen[m->n_listen++];
		if (slot != NULL) {
			free(*slot);
			*slot = strdup(v);
		}
	}
	fclose(fp);
	if (m->server == NULL || m->openssl_conf == NULL || m->key == NULL) {
		r = p11km_fail(P11KM_ERR_INPUT, "'%s' is not a p11km binding manifest (no server, "
		               "openssl_conf or key); emit the binding with 'p11km bind emit'", file);
		p11km_bind_manifest_release(m);
	}
	free(file);
	return r;
}

/* --- cert install --bind --------------------------------------------------------- */

struct p11km_rebind {
	char *dir;
	struct p11km_bind_txn *txn;
};

static int
pem_chain(X509 *leaf, STACK_OF(X509) *chain, struct p11km_bind_params *p)
{
	struct p11km_buf c = { 0 }, ch = { 0 };
	int r;

	if ((r = p11km_cert_pem_append(leaf, &c)) < 0)
		goto out;
	for (int i = 0; i < sk_X509_num(chain) && r == 0; i++)
		r = p11km_cert_pem_append(sk_X509_value(chain, i), &ch);
	if (r < 0)
		goto out;
	p->cert_pem = c.data;
	p->cert_pem_len = c.len;
	p->chain_pem = ch.data;
	p->chain_pem_len = ch.len;
	return 0;
out:
	p11km_buf_release(&c);
	p11km_buf_release(&ch);
	return r;
}

int
p11km_bind_rebind_prepare(const char *dir, const struct p11km_token *tok,
                          const struct p11km_object *key, X509 *leaf, STACK_OF(X509) *chain,
                          struct p11km_rebind **out)
{
	struct p11km_bind_manifest m;
	struct p11km_bind_params p;
	struct p11km_bind_files fs = { 0 };
	struct p11km_listen ls[P11KM_MANIFEST_MAX];
	struct p11km_uri *ku = NULL;
	struct p11km_rebind *rb = NULL;
	char *bdir = NULL;
	const char *pin_value = NULL, *pin_source = NULL;
	size_t dl;
	int r;

	*out = NULL;
	memset(&p, 0, sizeof(p));
	if ((r = p11km_bind_manifest_read(dir, &m)) < 0)
		return r;
	if ((p.fl = p11km_bind_flavour_find(m.server)) == NULL || p.fl->why_not != NULL) {
		r = p11km_fail(P11KM_ERR_INPUT, "unknown server '%s' in the manifest of '%s'",
		               m.server, dir);
		goto out;
	}
	/* the directory the files name: where openssl.cnf is */
	dl = strlen(m.openssl_conf);
	if (dl < 12 || strcmp(m.openssl_conf + dl - 12, "/openssl.cnf") != 0 ||
	    m.module == NULL || (p.fl->needs_connect && m.connect == NULL) ||
	    (p.fl->render != NULL && m.n_listen == 0)) {
		r = p11km_fail(P11KM_ERR_INPUT, "the manifest of '%s' lacks what a rewrite needs "
		               "(written by an older p11km?); run 'p11km bind emit' for it once",
		               dir);
		goto out;
	}
	if ((bdir = strndup(m.openssl_conf, dl - 12)) == NULL)
		goto nomem;
	for (size_t i = 0; i < m.n_listen; i++)
		if ((r = p11km_listen_parse(m.listen[i], &ls[i])) < 0)
			goto out;
	/* the http-01 server of --acme-webroot stays (a renewal through ACME needs it) */
	if (m.acme_webroot != NULL && m.acme_listen != NULL &&
	    (r = p11km_listen_parse(m.acme_listen, &p.acme_listen)) < 0)
		goto out;
	p.acme_webroot = m.acme_listen != NULL ? m.acme_webroot : NULL;
	if ((r = p11km_uri_parse(m.key, &ku)) < 0)
		goto out;
	pin_source = p11km_uri_pin_source(ku);
	pin_value = pin_source ? NULL : p11km_uri_pin_value(ku);
	p.listen = ls;
	p.n_listen = m.n_listen;
	p.server_name = m.server_name;
	p.service_user = m.user;
	p.connect = m.connect;
	p.dir = bdir;
	p.pin_file = pin_source;
	for (size_t i = 0; i < m.n_env && p.n_env < P11KM_BIND_ENV_MAX; i++)
		if (p11km_bind_env_known(m.env[i]) && (p.env[p.n_env++] = strdup(m.env[i])) == NULL)
			goto nomem;
	if ((p.module_path = strdup(m.module)) == NULL)
		goto nomem;
	if ((r = p11km_bind_engine_path(&p.engine_path)) < 0 ||
	    (r = p11km_bind_key_uri(tok, key, pin_source, pin_value, &p.key_uri)) < 0 ||
	    (r = pem_chain(leaf, chain, &p)) < 0 ||
	    (r = p11km_bind_render(&p, &fs)) < 0)
		goto out;
	if ((rb = calloc(1, sizeof(*rb))) == NULL || (rb->dir = strdup(dir)) == NULL)
		goto nomem;
	if ((r = p11km_bind_stage(dir, &fs, &rb->txn)) < 0)
		goto out;
	*out = rb;
	rb = NULL;
	r = 0;
	goto out;
nomem:
	r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
out:
	p11km_rebind_free(rb);
	p11km_bind_files_release(&fs);
	p11km_bind_params_release(&p);
	p11km_uri_free(ku);
	free(bdir);
	p11km_bind_manifest_release(&m);
	return r;
}

int
p11km_bind_rebind_commit(struct p11km_rebind *rb)
{
	return p11km_bind_commit(rb->txn);
}

const char *
p11km_rebind_dir(const struct p11km_rebind *rb)
{
	return rb->dir;
}

void
p11km_rebind_free(struct p11km_rebind *rb)
{
	if (rb == NULL)
		return;
	p11km_bind_txn_free(rb->txn);
	free(rb->dir);
	free(rb);
}
