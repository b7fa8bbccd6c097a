/* store-pem.c: the pem-bundle: store, one file of PEM certificates (each
 * after a subject and fingerprint comment), rewritten atomically. */
#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "p11km/cert.h"
#include "p11km/store.h"
#include "p11km/util.h"

/* The lock is the bundle's directory's: the one its rewrite takes. */
static int
bundle_lock(struct p11km_ctx *ctx, struct p11km_store *st, int for_write)
{
	char *d = strdup(st->path);
	int r;

	(void)ctx;
	if (d == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	r = p11km_store_lock_dir(st, dirname(d), for_write, 0);
	free(d);
	return r;
}

static int
bundle_load(struct p11km_ctx *ctx, struct p11km_store *st, int for_write,
            STACK_OF(X509) *wanted)
{
	STACK_OF(X509) *sk = NULL;
	struct stat sb;
	int r;

	(void)ctx;
	(void)for_write;
	(void)wanted;
	if (lstat(st->path, &sb) == 0 && S_ISLNK(sb.st_mode))
		return p11km_fail(P11KM_ERR_IO,
		    "refusing to use '%s': it is a symbolic link; remove it or choose another path",
		    st->path);
	if (stat(st->path, &sb) < 0 && errno == ENOENT)
		return 0;
	if (stat(st->path, &sb) == 0 && sb.st_size == 0)
		return 0;
	if ((r = p11km_certs_read(st->path, P11KM_ROOTS_MAX_CERTS, &sk)) < 0)
		return r;
	for (int i = 0; r == 0 && i < sk_X509_num(sk); i++)
		r = p11km_store_push(st, sk_X509_value(sk, i), NULL, 0);
	sk_X509_pop_free(sk, X509_free);
	return r;
}

static int
bundle_commit(struct p11km_ctx *ctx, struct p11km_store *st, STACK_OF(X509) *add,
              const size_t *rm, size_t n_rm)
{
	struct p11km_buf b = { 0 };
	struct p11km_ftxn *t = p11km_ftxn_new();
	int r = 0;

	(void)ctx;
	if (t == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (int i = 0; r == 0 && i < sk_X509_num(st->certs); i++)
		if (!p11km_store_removing((size_t)i, rm, n_rm))
			r = p11km_store_pem_entry(sk_X509_value(st->certs, i), &b);
	for (int i = 0; r == 0 && i < sk_X509_num(add); i++)
		r = p11km_store_pem_entry(sk_X509_value(add, i), &b);
	if (r == 0)
		r = p11km_ftxn_write(t, st->path, b.data ? (void *)b.data : (void *)"", b.len, 0644);
	if (r == 0)
		r = p11km_ftxn_commit(t);
	p11km_ftxn_free(t);
	p11km_buf_release(&b);
	return r;
}

static int
bundle_exists(const struct p11km_store *st)
{
	return p11km_store_path_exists(st, 0);
}

const struct p11km_store_ops p11km_store_pem_ops = {
	.lock = bundle_lock,
	.load = bundle_load,
	.commit = bundle_commit,
	.check_exists = bundle_exists,
};
