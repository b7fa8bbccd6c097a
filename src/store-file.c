/* store-file.c: store dispatch, and the pem-bundle and openssl-dir stores. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "p11km/cert.h"
#include "p11km/store.h"
#include "p11km/util.h"

/* --- store dispatch ----------------------------------------------------------- */

const char *
p11km_store_kind_name(enum p11km_store_kind k)
{
	switch (k) {
	case P11KM_STORE_TOKEN: return "token";
	case P11KM_STORE_PEM_BUNDLE: return "pem-bundle";
	case P11KM_STORE_OPENSSL_DIR: return "openssl-dir";
	case P11KM_STORE_SYSTEM: return "system";
	case P11KM_STORE_NSS: return "nss";
	}
	return "?";
}

int
p11km_store_parse(const char *spec, const char *system_root, struct p11km_store **out)
{
	static const struct { const char *prefix; enum p11km_store_kind kind; } kinds[] = {
		{ "token:", P11KM_STORE_TOKEN }, { "pem-bundle:", P11KM_STORE_PEM_BUNDLE },
		{ "openssl-dir:", P11KM_STORE_OPENSSL_DIR }, { "nss:", P11KM_STORE_NSS },
	};
	struct p11km_store *st = calloc(1, sizeof(*st));
	const char *arg = NULL;

	*out = NULL;
	if (st == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	st->s.logged_in = (CK_USER_TYPE)-1;
	if (strcmp(spec, "system") == 0) {
		st->kind = P11KM_STORE_SYSTEM;
		arg = "";
	}
	for (size_t i = 0; arg == NULL && i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		size_t l = strlen(kinds[i].prefix);
		if (strncmp(spec, kinds[i].prefix, l) == 0) {
			st->kind = kinds[i].kind;
			arg = spec + l;
		}
	}
	if (arg == NULL || (st->kind != P11KM_STORE_SYSTEM && *arg == '\0')) {
		char *shown = p11km_uri_hide_pin(spec);
		int r = p11km_fail(P11KM_ERR_USAGE,
		    "unknown store '%s': use token:URI, pem-bundle:FILE, openssl-dir:DIR, system or "
		    "nss:DIR", shown ? shown : "");
		free(shown);
		free(st);
		return r;
	}
	if (system_root == NULL || *system_root == '\0')
		system_root = getenv("P11KM_SYSTEM_ROOT");
	if (system_root == NULL || *system_root == '\0')
		system_root = "/";
	st->spec = p11km_uri_hide_pin(spec); /* printed: never a pin-value */
	st->path = strdup(arg);
	st->system_root = strdup(system_root);
	st->certs = sk_X509_new_null();
	if (st->spec == NULL || st->path == NULL || st->system_root == NULL || st->certs == NULL) {
		p11km_store_free(st);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	*out = st;
	return 0;
}

void
p11km_store_free(struct p11km_store *st)
{
	if (st == NULL)
		return;
	p11km_session_close(&st->s);
	p11km_token_free(st->tok);
	p11km_uri_free(st->uri);
	for (int i = 0; st->certs != NULL && i < sk_X509_num(st->certs); i++)
		free(st->names[i]);
	sk_X509_pop_free(st->certs, X509_free);
	free(st->names);
	free(st->handles);
	free(st->spec);
	free(st->path);
	free(st->system_root);
	free(st);
}

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
p11km_store_index(const struct p11km_store *st, X509 *cert)
{
	for (int i = 0; i < sk_X509_num(st->certs); i++)
		if (X509_cmp(sk_X509_value(st->certs, i), cert) == 0)
			return i;
	return -1;
}

/* --- pem-bundle ---------------------------------------------------------------- */

static int
bundle_load(struct p11km_store *st)
{
	STACK_OF(X509) *sk = NULL;
	struct stat sb;
	int r;

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
in_rm(size_t i, const size_t *rm, size_t n_rm)
{
	for (size_t k = 0; k < n_rm; k++)
		if (rm[k] == i)
			return 1;
	return 0;
}

static int
pem_entry(X509 *x, struct p11km_buf *b)
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
	else if ((r = header ? pem_entry(x, &b) : p11km_cert_pem_append(x, &b)) == 0)
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

static int
bundle_commit(struct p11km_store *st, STACK_OF(X509) *add, const size_t *rm, size_t n_rm)
{
	struct p11km_buf b = { 0 };
	struct p11km_ftxn *t = p11km_ftxn_new();
	int r = 0;

	if (t == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (int i = 0; r == 0 && i < sk_X509_num(st->certs); i++)
		if (!in_rm((size_t)i, rm, n_rm))
			r = pem_entry(sk_X509_value(st->certs, i), &b);
	for (int i = 0; r == 0 && i < sk_X509_num(add); i++)
		r = pem_entry(sk_X509_value(add, i), &b);
	if (r == 0)
		r = p11km_ftxn_write(t, st->path, b.data ? (void *)b.data : (void *)"", b.len, 0644);
	if (r == 0)
		r = p11km_ftxn_commit(t);
	p11km_ftxn_free(t);
	p11km_buf_release(&b);
	return r;
}

/* --- openssl-dir ------------------------------------------------------------------ */

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

static int
dir_load(struct p11km_store *st)
{
	DIR *d = opendir(st->path);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;
	int r = 0;

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
dir_commit(struct p11km_store *st, STACK_OF(X509) *add, const size_t *rm, size_t n_rm)
{
	size_t nall = (size_t)sk_X509_num(st->certs) + (size_t)sk_X509_num(add), n = 0;
	struct entry *e = calloc(nall + 1, sizeof(*e));
	char **newnames = calloc((size_t)sk_X509_num(add) + 1, sizeof(char *));
	struct p11km_ftxn *t = p11km_ftxn_new();
	struct link *links = NULL;
	size_t n_links = 0;
	DIR *d = NULL;
	int r = 0;

	if (e == NULL || newnames == NULL || t == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (mkdir(st->path, 0755) < 0 && errno != EEXIST) {
		r = p11km_fail(P11KM_ERR_IO, "unable to create '%s': %s", st->path, strerror(errno));
		goto out;
	}
	for (int i = 0; i < sk_X509_num(st->certs); i++) {
		char *full;
		if (!in_rm((size_t)i, rm, n_rm)) {
			e[n++] = (struct entry){ st->names[i], sk_X509_value(st->certs, i) };
			continue;
		}
		if ((full = p11km_asprintf("%s/%s", st->path, st->names[i])) == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			goto out;
		}
		r = p11km_ftxn_unlink(t, full);
		free(full);
		if (r < 0)
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
		char *full;
		if (!hash_link_name(de->d_name))
			continue;
		for (size_t i = 0; i < n_links && !wanted; i++)
			wanted = strcmp(links[i].name, de->d_name) == 0;
		if (wanted)
			continue;
		if ((full = p11km_asprintf("%s/%s", st->path, de->d_name)) == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			goto out;
		}
		r = p11km_ftxn_unlink(t, full);
		free(full);
		if (r < 0)
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

/* --- dispatch -------------------------------------------------------------------- */

int
p11km_store_load(struct p11km_ctx *ctx, struct p11km_store *st, int for_write)
{
	int r = 0;

	if (st->loaded)
		return 0;
	switch (st->kind) {
	case P11KM_STORE_TOKEN: r = p11km_store_token_load(ctx, st, for_write); break;
	case P11KM_STORE_PEM_BUNDLE: r = bundle_load(st); break;
	case P11KM_STORE_OPENSSL_DIR: r = dir_load(st); break;
	case P11KM_STORE_SYSTEM: r = p11km_store_system_load(st); break;
	case P11KM_STORE_NSS: r = p11km_store_nss_load(st); break;
	}
	if (r == 0)
		st->loaded = 1;
	return r;
}

int
p11km_store_load_for(struct p11km_ctx *ctx, struct p11km_store *st, int for_write,
                     STACK_OF(X509) *wanted)
{
	int r;

	if (st->loaded || st->kind != P11KM_STORE_TOKEN)
		return p11km_store_load(ctx, st, for_write);
	if ((r = p11km_store_token_load_for(ctx, st, for_write, wanted)) == 0)
		st->loaded = 1;
	return r;
}

int
p11km_store_commit(struct p11km_ctx *ctx, struct p11km_store *st, STACK_OF(X509) *add,
                   const size_t *rm, size_t n_rm)
{
	if (sk_X509_num(add) == 0 && n_rm == 0)
		return 0;
	switch (st->kind) {
	case P11KM_STORE_TOKEN: return p11km_store_token_commit(ctx, st, add, rm, n_rm);
	case P11KM_STORE_PEM_BUNDLE: return bundle_commit(st, add, rm, n_rm);
	case P11KM_STORE_OPENSSL_DIR: return dir_commit(st, add, rm, n_rm);
	case P11KM_STORE_SYSTEM: return p11km_store_system_commit(ctx, st, add, rm, n_rm);
	case P11KM_STORE_NSS: return p11km_store_nss_commit(ctx, st, add, rm, n_rm);
	}
	return p11km_fail(P11KM_ERR_FAILED, "unknown store");
}
