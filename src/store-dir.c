/* store-dir.c: the openssl-dir: store, a directory of one-certificate PEM
 * files with the hash links 'openssl rehash' makes (CApath). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p11km/cert.h"
#include "p11km/store.h"
#include "p11km/util.h"

unsigned long
p11km_cert_subject_hash(X509 *cert)
{
	return X509_NAME_hash_ex(X509_get_subject_name(cert), NULL, NULL, NULL);
}

static int
cert_file_name(const char *name)
{
	size_t l = strlen(name);
	return l > 4 && (strcmp(name + l - 4, ".pem") == 0 || strcmp(name + l - 4, ".crt") == 0 ||
	                 strcmp(name + l - 4, ".cer") == 0);
}

/* "<8 hex>.<digits>": a hash link. */
static int
hash_link_name(const char *name)
{
	int i;
	for (i = 0; i < 8; i++)
		if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
			return 0;
	if (name[8] != '.' || name[9] == '\0')
		return 0;
	for (i = 9; name[i]; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	return 1;
}

static int
strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The directory's own lock, the one its changes take: a directory that
 * does not exist yet is made first. */
static int
dir_lock(struct p11km_ctx *ctx, struct p11km_store *st, int for_write)
{
	(void)ctx;
	return p11km_store_lock_dir(st, st->path, for_write, 0755);
}

static int
dir_load(struct p11km_ctx *ctx, struct p11km_store *st, int for_write, STACK_OF(X509) *wanted)
{
	DIR *d = opendir(st->path);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

	(void)ctx;
	(void)for_write;
	(void)wanted;
	if (d == NULL)
		return errno == ENOENT ? 0 : p11km_fail(P11KM_ERR_IO, "unable to open '%s': %s",
		                                        st->path, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (!cert_file_name(de->d_name))
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof(*nn));
			if (nn == NULL) {
				r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
				break;
			}
			names = nn;
		}
		if ((names[n] = strdup(de->d_name)) == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			break;
		}
		n++;
	}
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof(*names), strp_cmp);
	for (size_t i = 0; r == 0 && i < n; i++) {
		char *full = p11km_asprintf("%s/%s", st->path, names[i]);
		STACK_OF(X509) *sk = NULL;
		struct stat sb;
		if (full == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			break;
		}
		/* Like openssl rehash: files holding exactly one certificate. */
		if (lstat(full, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    p11km_certs_read(full, 2, &sk) == 0 && sk_X509_num(sk) == 1)
			r = p11km_store_push(st, sk_X509_value(sk, 0), names[i], 0);
		else
			p11km_verbose("%s: skipping '%s' (not one certificate)", st->spec, names[i]);
		p11km_error_clear();
		sk_X509_pop_free(sk, X509_free);
		free(full);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return r;
}

struct entry {
	const char *name;
	X509 *cert;
};

static int
entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

struct link {
	char name[32]; /* "%08lx.%d" */
	const char *target;
};

/* The links 'openssl rehash' makes for these files, taken in name order:
 * "<hash>.<n>" -> file, a certificate already linked (same DER) skipped. */
static int
plan_links(struct entry *e, size_t n, struct link **out, size_t *n_out)
{
	struct link *l = calloc(n + 1, sizeof(*l));
	size_t k = 0;

	if (l == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	qsort(e, n, sizeof(*e), entry_cmp);
	for (size_t i = 0; i < n; i++) {
		unsigned long h = p11km_cert_subject_hash(e[i].cert);
		int idx = 0, dup = 0;
		for (size_t j = 0; j < i && !dup; j++) {
			if (p11km_cert_subject_hash(e[j].cert) != h)
				continue;
			if (X509_cmp(e[j].cert, e[i].cert) == 0)
				dup = 1;
			else
				idx++;
		}
		if (dup)
			continue;
		snprintf(l[k].name, sizeof(l[k].name), "%08lx.%d", h & 0xffffffffUL, idx);
		l[k++].target = e[i].name;
	}
	*out = l;
	*n_out = k;
	return 0;
}

static int
dir_commit(struct p11km_ctx *ctx, struct p11km_store *st, STACK_OF(X509) *add,
           const size_t *rm, size_t n_rm)
{
	size_t nall = (size_t)sk_X509_num(st->certs) + (size_t)sk_X509_num(add), n = 0;
	struct entry *e = calloc(nall + 1, sizeof(*e));
	char **newnames = calloc((size_t)sk_X509_num(add) + 1, sizeof(char *));
	struct p11km_ftxn *t = p11km_ftxn_new();
	struct link *links = NULL;
	size_t n_links = 0;
	DIR *d = NULL;
	int r = 0;

	(void)ctx;
	if (e == NULL || newnames == NULL || t == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (mkdir(st->path, 0755) < 0 && errno != EEXIST) {
		r = p11km_fail(P11KM_ERR_IO, "unable to create '%s': %s", st->path, strerror(errno));
		goto out;
	}
	for (int i = 0; i < sk_X509_num(st->certs); i++) {
		if (!p11km_store_removing((size_t)i, rm, n_rm)) {
			e[n++] = (struct entry){ st->names[i], sk_X509_value(st->certs, i) };
			continue;
		}
		if ((r = p11km_ftxn_unlink_in(t, st->path, st->names[i])) < 0)
			goto out;
	}
	for (int i = 0; i < sk_X509_num(add); i++) {
		X509 *x = sk_X509_value(add, i);
		if ((r = p11km_ftxn_write_cert(t, st->path, x, "pem", 1, &newnames[i])) < 0)
			goto out;
		e[n++] = (struct entry){ newnames[i], x };
	}
	/* Hash links: remove those the new set does not have, (re)make the others. */
	if ((r = plan_links(e, n, &links, &n_links)) < 0)
		goto out;
	if ((d = opendir(st->path)) == NULL) {
		r = p11km_fail(P11KM_ERR_IO, "unable to open '%s': %s", st->path, strerror(errno));
		goto out;
	}
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		int wanted = 0;
		if (!hash_link_name(de->d_name))
			continue;
		for (size_t i = 0; i < n_links && !wanted; i++)
			wanted = strcmp(links[i].name, de->d_name) == 0;
		if (wanted)
			continue;
		if ((r = p11km_ftxn_unlink_in(t, st->path, de->d_name)) < 0)
			goto out;
	}
	for (size_t i = 0; i < n_links; i++) {
		char *full = p11km_asprintf("%s/%s", st->path, links[i].name);
		char cur[4096];
		ssize_t cl;
		if (full == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			goto out;
		}
		cl = readlink(full, cur, sizeof(cur) - 1);
		if (cl < 0 || (size_t)cl != strlen(links[i].target) ||
		    memcmp(cur, links[i].target, (size_t)cl) != 0)
			r = p11km_ftxn_symlink(t, full, links[i].target);
		free(full);
		if (r < 0)
			goto out;
	}
	r = p11km_ftxn_commit(t);
out:
	if (d != NULL)
		closedir(d);
	p11km_ftxn_free(t);
	for (int i = 0; newnames != NULL && i < sk_X509_num(add); i++)
		free(newnames[i]);
	free(newnames);
	free(e);
	free(links);
	return r;
}

static int
dir_exists(const struct p11km_store *st)
{
	return p11km_store_path_exists(st, 1);
}

const struct p11km_store_ops p11km_store_dir_ops = {
	.lock = dir_lock,
	.load = dir_load,
	.commit = dir_commit,
	.check_exists = dir_exists,
};
