/* store-common.c: what the store kinds share (below them: the dispatcher in
 * store.c calls the kinds, the kinds call this): keeping what a store holds,
 * the directory lock of a store kept in files, PEM entries. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p11km/cert.h"
#include "p11km/lock.h"
#include "p11km/store.h"
#include "p11km/util.h"

int
p11km_store_push(struct p11km_store *st, X509 *cert, const char *name, CK_OBJECT_HANDLE h)
{
	size_t n = (size_t)sk_X509_num(st->certs);
	char *nm = NULL;

	if (n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 32;
		char **nn = realloc(st->names, cap * sizeof(*nn));
		if (nn == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		st->names = nn;
		CK_OBJECT_HANDLE *hh = realloc(st->handles, cap * sizeof(*hh));
		if (hh == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		st->handles = hh;
		st->cap = cap;
	}
	if (name != NULL && (nm = strdup(name)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (!X509_up_ref(cert) || !sk_X509_push(st->certs, cert)) {
		free(nm);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	st->names[n] = nm;
	st->handles[n] = h;
	return 0;
}

int
p11km_store_removing(size_t i, const size_t *rm, size_t n_rm)
{
	for (size_t k = 0; k < n_rm; k++)
		if (rm[k] == i)
			return 1;
	return 0;
}

int
p11km_store_lock_dir(struct p11km_store *st, const char *dir, int for_write, mode_t mode)
{
	int make = for_write && mode != 0, r = 0;
	char *msg;

	if ((msg = p11km_asprintf("%s: waiting for another p11km run writing in '%s'", st->spec,
	                          dir)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	/* A run that made dir and found nothing to put there removes it again
	 * when it is done: a run that waited for it then locks again. */
	for (int tries = 0; tries < 10; tries++) {
		if (make && mkdir(dir, mode) == 0) {
			free(st->made_dir);
			if ((st->made_dir = strdup(dir)) == NULL) {
				r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
				break;
			}
		} else if (make && errno != EEXIST) {
			r = p11km_fail(P11KM_ERR_IO, "unable to create '%s': %s", dir, strerror(errno));
			break;
		}
		if (!make && access(dir, F_OK) < 0 && errno == ENOENT)
			break; /* nothing there to read, nothing to lock */
		if ((r = p11km_lock_take(dir, P11KM_LOCK_DIR | (for_write ? 0 : P11KM_LOCK_SHARED),
		                         msg, 120000, P11KM_ERR_IO, &st->lock, NULL)) < 0)
			break;
		r = 0;
		if (p11km_lock_is(st->lock, dir))
			break;
		p11km_lock_release(st->lock);
		st->lock = NULL;
	}
	free(msg);
	return r;
}

int
p11km_store_path_exists(const struct p11km_store *st, int want_dir)
{
	struct stat sb;

	if (stat(st->path, &sb) != 0)
		return p11km_fail(P11KM_ERR_NOTFOUND, "store '%s': '%s': %s; check the path "
		                  "('roots install' creates a store)", st->spec, st->path,
		                  strerror(errno));
	if (want_dir && !S_ISDIR(sb.st_mode))
		return p11km_fail(P11KM_ERR_USAGE, "store '%s': '%s' is not a directory; %.*s "
		                  "names a directory", st->spec, st->path,
		                  (int)(strchr(st->spec, ':') ? strchr(st->spec, ':') - st->spec + 1 : 0),
		                  st->spec);
	if (!want_dir && S_ISDIR(sb.st_mode))
		return p11km_fail(P11KM_ERR_USAGE, "store '%s': '%s' is a directory; pem-bundle: "
		                  "names a file (openssl-dir: is for directories)", st->spec, st->path);
	return 0;
}

int
p11km_store_pem_entry(X509 *x, struct p11km_buf *b)
{
	char *subj = p11km_cert_subject(x), *fp = p11km_cert_fingerprint(x), *hdr;
	int r;

	hdr = p11km_asprintf("# %s\n# SHA256 %s\n", subj ? subj : "?", fp ? fp : "?");
	free(subj);
	free(fp);
	if (hdr == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	r = p11km_buf_append(b, hdr, strlen(hdr));
	free(hdr);
	return r < 0 ? r : p11km_cert_pem_append(x, b);
}

int
p11km_ftxn_write_cert(struct p11km_ftxn *t, const char *dir, X509 *x, const char *ext,
                      int header, char **name)
{
	struct p11km_buf b = { 0 };
	char *fp = p11km_cert_fingerprint(x);
	char *base = fp ? p11km_asprintf("p11km-%.16s.%s", fp, ext) : NULL;
	char *full = base ? p11km_asprintf("%s/%s", dir, base) : NULL;
	int r;

	free(fp);
	if (full == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	else if ((r = header ? p11km_store_pem_entry(x, &b) : p11km_cert_pem_append(x, &b)) == 0)
		r = p11km_ftxn_write(t, full, b.data, b.len, 0644);
	p11km_buf_release(&b);
	free(full);
	if (r == 0 && name != NULL) {
		*name = base;
		base = NULL;
	}
	free(base);
	return r;
}

int
p11km_ftxn_unlink_in(struct p11km_ftxn *t, const char *dir, const char *name)
{
	char *full = name != NULL ? p11km_asprintf("%s/%s", dir, name) : NULL;
	int r;

	if (full == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	r = p11km_ftxn_unlink(t, full);
	free(full);
	return r;
}
