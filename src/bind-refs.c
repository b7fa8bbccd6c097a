/* bind-refs.c: what the bindings under a directory reference (the key URI
 * and the certificate of each p11km-binding.conf), and whether a binding
 * uses a token object, so that 'object delete' and 'cert prune' never
 * destroy what a server uses. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "p11km/bind.h"
#include "p11km/cert.h"
#include "p11km/keys.h"
#include "p11km/store.h"
#include "p11km/util.h"
#include "p11km/x509.h"

static char *
value_of(char *line, const char *key)
{
	size_t kl = strlen(key), n;
	char *v;

	if (strncmp(line, key, kl) != 0)
		return NULL;
	v = line + kl;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v++ != '=')
		return NULL;
	while (*v == ' ' || *v == '\t')
		v++;
	n = strlen(v);
	while (n > 0 && (v[n - 1] == '\n' || v[n - 1] == '\r' || v[n - 1] == ' '))
		v[--n] = '\0';
	return v;
}

static int
read_manifest(const char *file, struct p11km_bind_refs *refs)
{
	struct p11km_bind_ref *v, ref = { 0 };
	char line[8192], *val;
	FILE *fp = fopen(file, "r");
	int r = 0;

	if (fp == NULL)
		return errno == ENOENT ? 0 : p11km_fail(P11KM_ERR_IO, "unable to read '%s': %s",
		                                        file, strerror(errno));
	while (r == 0 && fgets(line, sizeof(line), fp) != NULL) {
		char **slot = NULL;
		if ((val = value_of(line, "key")) != NULL)
			slot = &ref.key;
		else if ((val = value_of(line, "cert")) != NULL)
			slot = &ref.cert;
		if (slot != NULL) {
			free(*slot);
			if ((*slot = strdup(val)) == NULL)
				r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		}
	}
	fclose(fp);
	if (r == 0 && ref.key == NULL && ref.cert == NULL)
		return 0;
	if (r == 0 && (ref.manifest = strdup(file)) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (r == 0 && (v = realloc(refs->v, (refs->n + 1) * sizeof(*v))) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (r < 0) {
		free(ref.key);
		free(ref.cert);
		free(ref.manifest);
		return r;
	}
	refs->v = v;
	refs->v[refs->n++] = ref;
	return 0;
}

int
p11km_bind_refs_read(const char *dir, struct p11km_bind_refs *refs)
{
	struct stat st;
	char *file;
	DIR *d;
	int r;

	memset(refs, 0, sizeof(*refs));
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return p11km_fail(P11KM_ERR_USAGE, "--bindings '%s' is not a directory; give the "
		                  "directory that holds the bindings (bind emit --out-dir)", dir);
	if ((file = p11km_asprintf("%s/p11km-binding.conf", dir)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	r = read_manifest(file, refs);
	free(file);
	if (r < 0 || (d = opendir(dir)) == NULL)
		return r < 0 ? r : p11km_fail(P11KM_ERR_IO, "unable to read '%s': %s", dir,
		                              strerror(errno));
	for (struct dirent *de; r == 0 && (de = readdir(d)) != NULL;) {
		if (de->d_name[0] == '.')
			continue;
		if ((file = p11km_asprintf("%s/%s/p11km-binding.conf", dir, de->d_name)) == NULL)
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		else
			r = read_manifest(file, refs);
		free(file);
	}
	closedir(d);
	if (r < 0)
		p11km_bind_refs_release(refs);
	return r;
}

void
p11km_bind_refs_release(struct p11km_bind_refs *refs)
{
	for (size_t i = 0; i < refs->n; i++) {
		free(refs->v[i].manifest);
		free(refs->v[i].key);
		free(refs->v[i].cert);
	}
	free(refs->v);
	refs->v = NULL;
	refs->n = 0;
}

/* Does the URI text select object o of token tok? */
static int
uri_selects(const char *text, const struct p11km_token *tok, const struct p11km_object *o)
{
	struct p11km_uri *u = NULL;
	CK_TOKEN_INFO info = tok->info;
	CK_ATTRIBUTE a[3];
	CK_ULONG n = 0;
	int yes;

	if (text == NULL || strncmp(text, "pkcs11:", 7) != 0 || p11km_uri_parse(text, &u) < 0) {
		p11km_error_clear();
		return 0;
	}
	a[n++] = (CK_ATTRIBUTE){ CKA_CLASS, (void *)&o->cls, sizeof(o->cls) };
	if (o->label != NULL)
		a[n++] = (CK_ATTRIBUTE){ CKA_LABEL, o->label, strlen(o->label) };
	a[n++] = (CK_ATTRIBUTE){ CKA_ID, o->id, o->id_len };
	yes = p11km_uri_match_token(u, NULL, NULL, &info) &&
	      p11_kit_uri_match_attributes(u->u, a, n) == 1;
	p11km_uri_free(u);
	return yes;
}

/* Is o what a binding uses: its key, its certificate, or the key of its
 * certificate (same public key, or the id of the token's copy)? */
int
p11km_binding_uses(struct p11km_session *s, const struct p11km_bind_ref *ref,
                   const struct p11km_object *o)
{
	STACK_OF(X509) *sk = NULL;
	struct p11km_object c = { 0 };
	CK_OBJECT_HANDLE h;
	EVP_PKEY *pk = NULL;
	unsigned char *der = NULL;
	size_t dl = 0;
	int yes = 0;

	if (o->cls == CKO_PRIVATE_KEY && uri_selects(ref->key, s->tok, o))
		return 1;
	if (ref->cert == NULL)
		return 0;
	if (strncmp(ref->cert, "pkcs11:", 7) == 0)
		return o->cls == CKO_CERTIFICATE && uri_selects(ref->cert, s->tok, o);
	if (p11km_certs_read(ref->cert, P11KM_REPLY_MAX_CERTS, &sk) < 0) {
		p11km_warn("binding '%s': its certificate '%s' cannot be read", ref->manifest,
		           ref->cert);
		return 0;
	}
	X509 *x = sk_X509_value(sk, 0);
	if (o->cls == CKO_CERTIFICATE) {
		yes = p11km_cert_der(x, &der, &dl) == 0 && dl == o->value_len &&
		      memcmp(der, o->value, dl) == 0;
	} else if (o->cls == CKO_PRIVATE_KEY) {
		if (p11km_object_pubkey(o, &pk) == 0)
			yes = EVP_PKEY_eq(pk, X509_get0_pubkey(x)) == 1;
		if (!yes && o->id_len > 0 && p11km_tok_cert_find(s, x, &h) == 1 &&
		    p11km_object_read_as(s, h, CKO_CERTIFICATE, &c) == 0)
			yes = c.id_len == o->id_len && memcmp(c.id, o->id, o->id_len) == 0;
	}
	p11km_error_clear();
	p11km_object_release(&c);
	EVP_PKEY_free(pk);
	free(der);
	sk_X509_pop_free(sk, X509_free);
	return yes;
}
