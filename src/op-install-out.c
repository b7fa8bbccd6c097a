/* op-install-out.c: the install operation for servers: the --out-dir files and the
 * --bind bindings, staged (written and synced beside their targets) before
 * the token changes and put in place after it. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "p11km/bind.h"
#include "p11km/cert.h"
#include "p11km/store.h"
#include "p11km/util.h"
#include "p11km/x509.h"

#include "op-install.h"

/* One line of the install's report (the result's acts; cmd-cert.c prints
 * them): here, below op-install.c, so that the staging code records its
 * lines without a call back up. */
int
cert_act(struct install *in, int cat, const char *what, const char *name, const char *fmt, ...)
{
	struct p11km_install_act *a = realloc(in->acts, (in->n_acts + 1) * sizeof(*a));
	va_list ap;
	char *d = NULL;

	if (a == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	in->acts = a;
	va_start(ap, fmt);
	if (vasprintf(&d, fmt, ap) < 0)
		d = NULL;
	va_end(ap);
	a = &in->acts[in->n_acts];
	a->cat = cat;
	a->what = strdup(what);
	a->name = strdup(name ? name : "");
	a->detail = d;
	if (a->what == NULL || a->name == NULL || a->detail == NULL) {
		free(a->what);
		free(a->name);
		free(a->detail);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	in->n_acts++;
	return 0;
}

/* --- files ------------------------------------------------------------------------- */

/* Stage the --out-dir files (temporary files, synced) before the token
 * changes, so that an unwritable directory or a planted symbolic link stops
 * the run with nothing changed; commit_files() puts them in place. */
int
cert_stage_files(struct install *in)
{
	struct p11km_buf cert = { 0 }, chain = { 0 }, full = { 0 };
	struct p11km_ftxn *t = NULL;
	unsigned char *der = NULL;
	size_t dlen = 0;
	static const char *names[] = { "cert.pem", "chain.pem", "fullchain.pem", "cert.der" };
	struct p11km_buf *bufs[] = { &cert, &chain, &full, NULL };
	int r = 0, nfiles = in->o.der ? 4 : 3;

	if (in->o.out_dir == NULL)
		return 0;
	if (!in->o.dry_run && mkdir(in->o.out_dir, 0755) < 0 && errno != EEXIST)
		return p11km_fail(P11KM_ERR_IO, "unable to create '%s': %s", in->o.out_dir,
		                  strerror(errno));
	if ((r = p11km_cert_pem_append(in->leaf, &cert)) < 0 ||
	    (r = p11km_cert_pem_append(in->leaf, &full)) < 0)
		goto out;
	for (int i = 0; i < sk_X509_num(in->inter) && r == 0; i++)
		if ((r = p11km_cert_pem_append(sk_X509_value(in->inter, i), &chain)) == 0)
			r = p11km_cert_pem_append(sk_X509_value(in->inter, i), &full);
	if (r < 0 || (in->o.der && (r = p11km_cert_der(in->leaf, &der, &dlen)) < 0))
		goto out;
	if (!in->o.dry_run && (t = p11km_ftxn_new()) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < nfiles && r == 0; i++) {
		char *path = p11km_asprintf("%s/%s", in->o.out_dir, names[i]);
		if (path == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			break;
		}
		if (!in->o.dry_run)
			r = bufs[i] ? p11km_ftxn_write(t, path, bufs[i]->data ? (void *)bufs[i]->data
			                                                       : (void *)"",
			                               bufs[i]->len, 0644)
			            : p11km_ftxn_write(t, path, der, dlen, 0644);
		if (r == 0)
			r = cert_act(in, ACT_WRITTEN, "file", path, "%s", in->o.dry_run ? "would be written"
			                                                             : "written (mode 0644)");
		free(path);
	}
	/* the backups too: a full disk stops the run here, before the token changes */
	if (r == 0 && t != NULL)
		r = p11km_ftxn_reserve(t);
	if (r == 0) {
		in->files = t;
		t = NULL;
	}
out:
	p11km_ftxn_free(t);
	p11km_buf_release(&cert);
	p11km_buf_release(&chain);
	p11km_buf_release(&full);
	free(der);
	return r;
}

/* --- bindings ---------------------------------------------------------------------- */

/* Does the binding's key URI name this key, or the key it replaces: one
 * labelled "<L>", "<L>.pending" or "<L>.retired-DATE" (a rerun after an
 * interrupted rekey), or by label "<L>" (a binding emitted before ids)? */
static int
binding_is_ours(struct install *in, const char *dir, const char *key_uri)
{
	struct p11km_uri *u = NULL;
	struct p11km_object *objs = NULL;
	size_t n = 0, ll = strlen(in->key_label);
	int ours = 0, r;

	CK_ULONG na = 0;
	CK_ATTRIBUTE *a;

	if ((r = p11km_uri_parse(key_uri, &u)) < 0)
		return r;
	if (!p11km_uri_match_token(u, NULL, NULL, &in->tok->info))
		goto out;
	/* the key's own id: no need to ask the token */
	a = p11km_uri_object_template(u, &na);
	for (CK_ULONG i = 0; i < na && !ours; i++)
		ours = a[i].type == CKA_ID && a[i].ulValueLen == in->key.id_len && in->key.id_len > 0 &&
		       memcmp(a[i].pValue, in->key.id, in->key.id_len) == 0;
	if (!ours && (r = p11km_objects_find(&in->s, u, CKO_PRIVATE_KEY, &objs, &n)) == 0) {
		for (size_t i = 0; i < n && !ours; i++) {
			const char *l = objs[i].label ? objs[i].label : "";
			ours = objs[i].h == in->key.h ||
			       (strncmp(l, in->key_label, ll) == 0 &&
			        (l[ll] == '\0' || strcmp(l + ll, ".pending") == 0 ||
			         (strncmp(l + ll, ".retired-", 9) == 0 && p11km_label_is_retired(l))));
		}
	}
out:
	p11km_objects_free(objs, n);
	p11km_uri_free(u);
	if (r < 0)
		return r;
	if (!ours)
		return p11km_fail(P11KM_ERR_INPUT, "the binding '%s' serves another key, not '%s' "
		                  "or the key it replaces; give the binding of this key", dir,
		                  in->key_label);
	return 0;
}

/* Stage every --bind rewrite before the token changes. */
int
cert_stage_bindings(struct install *in)
{
	char *checked = NULL;   /* a key URI found to be ours: no second search */
	int r = 0;

	for (size_t i = 0; i < in->o.n_bind && r == 0; i++) {
		struct p11km_bind_manifest m;
		if ((r = p11km_bind_manifest_read(in->o.bind[i], &m)) < 0)
			break;
		if (checked == NULL || strcmp(checked, m.key) != 0) {
			free(checked);
			checked = NULL;
			if ((r = binding_is_ours(in, in->o.bind[i], m.key)) == 0)
				checked = strdup(m.key);
		}
		p11km_bind_manifest_release(&m);
		if (r == 0 && in->o.dry_run)
			r = cert_act(in, ACT_WRITTEN, "binding", in->o.bind[i], "would be switched to the "
			        "new certificate");
		else if (r == 0)
			r = p11km_bind_rebind_prepare(in->o.bind[i], in->tok, &in->key, in->leaf,
			                              in->inter, &in->rebind[i]);
	}
	p11km_freezero(checked, checked ? strlen(checked) : 0); /* may hold a pin-value */
	return r;
}

int
cert_commit_bindings(struct install *in)
{
	int r = 0;

	for (size_t i = 0; i < in->o.n_bind && r == 0; i++) {
		if (in->rebind[i] == NULL)
			continue;
		if ((r = p11km_bind_rebind_commit(in->rebind[i])) == 0)
			r = cert_act(in, ACT_WRITTEN, "binding", in->o.bind[i], "switched to the new "
			        "certificate: reload the server");
	}
	return r;
}

