/* store-file.c: file changes made all at once, store dispatch, and the
 * pem-bundle and openssl-dir stores. */
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

/* --- transactions ----------------------------------------------------------- */

enum fop_kind { FOP_WRITE, FOP_SYMLINK, FOP_UNLINK };

struct fop {
	enum fop_kind kind;
	char *path, *tmp, *backup;
	int done, reserved;   /* reserved: backup taken by p11km_ftxn_reserve */
};

struct p11km_ftxn {
	struct fop *ops;
	size_t n, cap;
	/* directories locked (flock) from the first staged file to the end */
	char **dirs;
	int *dfds;
	size_t n_dirs;
};

struct p11km_ftxn *
p11km_ftxn_new(void)
{
	return calloc(1, sizeof(struct p11km_ftxn));
}

static struct fop *
fop_add(struct p11km_ftxn *t, enum fop_kind kind, const char *path)
{
	struct fop *op;

	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct fop *o = realloc(t->ops, cap * sizeof(*o));
		if (o == NULL)
			return NULL;
		t->ops = o;
		t->cap = cap;
	}
	op = &t->ops[t->n];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	if ((op->path = strdup(path)) == NULL)
		return NULL;
	t->n++;
	return op;
}

/* A fresh unused name next to path ("<path>.p11km-XXXXXX"); the file is
 * created (O_EXCL) and its descriptor returned, or removed when fd is NULL. */
static char *
temp_name(const char *path, int *fd)
{
	char *tmp = p11km_asprintf("%s.p11km-XXXXXX", path);
	int f;

	if (tmp == NULL)
		return NULL;
	if ((f = mkostemp(tmp, O_CLOEXEC)) < 0) {
		free(tmp);
		return NULL;
	}
	if (fd != NULL) {
		*fd = f;
	} else {
		close(f);
		unlink(tmp);
	}
	return tmp;
}

/* "<base>.p11km-XXXXXX" (mkstemp's six characters)? */
static int
is_leftover_of(const char *name, const char *base)
{
	size_t bl = strlen(base);

	if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ".p11km-", 7) != 0)
		return 0;
	name += bl + 7;
	for (int i = 0; i < 6; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= 'A' && name[i] <= 'Z') ||
		      (name[i] >= '0' && name[i] <= '9')))
			return 0;
	return name[6] == '\0';
}

/*
 * Lock path's directory for this transaction (flock, held until
 * p11km_ftxn_free: two p11km runs on one directory take turns), then remove
 * what an interrupted run (crash, SIGKILL, power loss) left next to path:
 * its temporary files and backups ("<path>.p11km-XXXXXX").  Each target
 * itself always holds a complete old or new content (rename is atomic);
 * the leftovers are only copies, and the warning says that a run was
 * interrupted there.  Without the lock (a file system without flock)
 * nothing is removed.
 */
/* Directories locked by this process's live transactions: a second
 * transaction on one of them would wait for the lock its own process holds
 * (flock locks are per open file description), and must not sweep the
 * first one's staged files either. */
static struct { dev_t dev; ino_t ino; } held[32];
static size_t n_held;

static int
held_index(int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return -2;
	for (size_t i = 0; i < n_held; i++)
		if (held[i].dev == st.st_dev && held[i].ino == st.st_ino)
			return (int)i;
	return -1;
}

static void
lock_and_sweep(struct p11km_ftxn *t, const char *path)
{
	char *d = strdup(path), *b = strdup(path), *dir, *base;
	int dfd = -1, locked = 0;
	size_t i;
	DIR *dh;
	struct dirent *de;

	if (d == NULL || b == NULL)
		goto out;
	dir = dirname(d);
	base = basename(b);
	for (i = 0; i < t->n_dirs; i++)
		if (strcmp(t->dirs[i], dir) == 0)
			break;
	if (i < t->n_dirs) {
		locked = t->dfds[i] >= 0;
	} else {
		char **nd = realloc(t->dirs, (t->n_dirs + 1) * sizeof(*nd));
		int *nf;
		if (nd == NULL)
			goto out;
		t->dirs = nd;
		if ((nf = realloc(t->dfds, (t->n_dirs + 1) * sizeof(*nf))) == NULL)
			goto out;
		t->dfds = nf;
		if ((t->dirs[t->n_dirs] = strdup(dir)) == NULL)
			goto out;
		if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0 &&
		    (held_index(dfd) != -1 || n_held == sizeof(held) / sizeof(held[0]))) {
			close(dfd); /* locked by this process already (or cannot tell) */
			dfd = -1;
		}
		if (dfd >= 0) {
			/* wait up to 30 s for another run; never forever */
			int tries = 0;
			while (flock(dfd, LOCK_EX | LOCK_NB) < 0) {
				if (errno != EWOULDBLOCK || ++tries > 300) {
					close(dfd);
					dfd = -1;
					break;
				}
				if (tries == 1)
					p11km_note("waiting for another p11km run writing in '%s'", dir);
				nanosleep(&(struct timespec){ 0, 100000000L }, NULL);
			}
		}
		if (dfd >= 0) {
			struct stat st;
			if (fstat(dfd, &st) == 0) {
				held[n_held].dev = st.st_dev;
				held[n_held++].ino = st.st_ino;
			}
		}
		t->dfds[t->n_dirs++] = dfd;
		locked = dfd >= 0;
	}
	if (!locked || (dh = opendir(dir)) == NULL)
		goto out;
	while ((de = readdir(dh)) != NULL) {
		char *full;
		if (!is_leftover_of(de->d_name, base))
			continue;
		if ((full = p11km_asprintf("%s/%s", dir, de->d_name)) == NULL)
			continue;
		if (unlink(full) == 0)
			p11km_warn("removed '%s', left next to '%s' by an interrupted p11km run", full,
			           path);
		free(full);
	}
	closedir(dh);
out:
	free(d);
	free(b);
}

static int
check_target(const char *path, int symlink_ok)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : p11km_fail(P11KM_ERR_IO, "unable to inspect '%s': %s",
		                                        path, strerror(errno));
	if (S_ISLNK(st.st_mode) && !symlink_ok)
		return p11km_fail(P11KM_ERR_IO,
		    "refusing to write '%s': it is a symbolic link; remove it or choose another path",
		    path);
	if (!S_ISLNK(st.st_mode) && !S_ISREG(st.st_mode))
		return p11km_fail(P11KM_ERR_IO, "refusing to write '%s': not a regular file", path);
	return 0;
}


int
p11km_ftxn_write(struct p11km_ftxn *t, const char *path, const void *data, size_t len,
                 mode_t mode)
{
	struct fop *op;
	int fd = -1, r;

	if ((r = check_target(path, 0)) < 0)
		return r;
	lock_and_sweep(t, path);
	if ((op = fop_add(t, FOP_WRITE, path)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((op->tmp = temp_name(path, &fd)) == NULL) {
		char *d = strdup(path);
		r = p11km_fail(P11KM_ERR_IO, "unable to create a file in '%s': %s",
		               d ? dirname(d) : path, strerror(errno));
		free(d);
		return r;
	}
	if (p11km_write_all(fd, data, len) < 0 || fchmod(fd, mode) < 0 || fsync(fd) < 0) {
		r = p11km_fail(P11KM_ERR_IO, "unable to write '%s': %s", path, strerror(errno));
		close(fd);
		return r;
	}
	if (close(fd) < 0)
		return p11km_fail(P11KM_ERR_IO, "unable to write '%s': %s", path, strerror(errno));
	return 0;
}

int
p11km_ftxn_symlink(struct p11km_ftxn *t, const char *path, const char *target)
{
	struct fop *op;
	int r;

	if ((r = check_target(path, 1)) < 0)
		return r;
	lock_and_sweep(t, path);
	if ((op = fop_add(t, FOP_SYMLINK, path)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (int i = 0; i < 10; i++) {
		free(op->tmp);
		if ((op->tmp = temp_name(path, NULL)) == NULL)
			break;
		if (symlink(target, op->tmp) == 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	r = p11km_fail(P11KM_ERR_IO, "unable to create a link next to '%s': %s", path,
	               strerror(errno));
	free(op->tmp);
	op->tmp = NULL;
	return r;
}

int
p11km_ftxn_unlink(struct p11km_ftxn *t, const char *path)
{
	lock_and_sweep(t, path);
	if (fop_add(t, FOP_UNLINK, path) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return 0;
}

static void
sync_dir_of(const char *path)
{
	char *d = strdup(path);
	int fd;

	if (d == NULL)
		return;
	if ((fd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(d);
}

/* A copy of the current target under op->backup, for file systems without
 * hard links (vfat, some FUSE and network file systems). */
static int
backup_copy(struct fop *op, const struct stat *st)
{
	char buf[65536], lt[4096];
	ssize_t n;
	int in = -1, out = -1, ok = 0, e;

	if (S_ISLNK(st->st_mode)) {
		if ((n = readlink(op->path, lt, sizeof(lt) - 1)) < 0)
			return -1;
		lt[n] = '\0';
		for (int i = 0; i < 10; i++) {
			free(op->backup);
			if ((op->backup = temp_name(op->path, NULL)) == NULL)
				return -1;
			if (symlink(lt, op->backup) == 0)
				return 0;
			if (errno != EEXIST)
				break;
		}
		e = errno;
		free(op->backup);
		op->backup = NULL;
		errno = e;
		return -1;
	}
	if ((in = open(op->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return -1;
	free(op->backup);
	if ((op->backup = temp_name(op->path, &out)) != NULL) {
		ok = 1;
		while (ok && (n = read(in, buf, sizeof(buf))) != 0)
			ok = n > 0 ? p11km_write_all(out, buf, (size_t)n) == 0 : errno == EINTR;
		ok = ok && fchmod(out, st->st_mode & 07777) == 0 && fsync(out) == 0;
	}
	e = errno;
	if (out >= 0 && close(out) < 0)
		ok = 0;
	close(in);
	if (!ok && op->backup != NULL) {
		unlink(op->backup);
		free(op->backup);
		op->backup = NULL;
	}
	errno = e;
	return ok ? 0 : -1;
}

/* Keep the current target under a backup name: a hard link, or a copy
 * where the file system has no hard links. */
static int
backup(struct fop *op)
{
	struct stat st;

	if (lstat(op->path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	for (int i = 0; i < 10; i++) {
		free(op->backup);
		if ((op->backup = temp_name(op->path, NULL)) == NULL)
			return -1;
		if (link(op->path, op->backup) == 0)
			return 0;
		if (errno != EEXIST)
			break;
	}
	free(op->backup);
	op->backup = NULL;
	if (errno == EPERM || errno == EOPNOTSUPP || errno == ENOSYS)
		return backup_copy(op, &st);
	return -1;
}

int
p11km_ftxn_reserve(struct p11km_ftxn *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct fop *op = &t->ops[i];
		if (!op->reserved && backup(op) < 0)
			return p11km_fail(P11KM_ERR_IO, "unable to keep a copy of '%s': %s", op->path,
			                  strerror(errno));
		op->reserved = 1;
	}
	return 0;
}

int
p11km_ftxn_commit(struct p11km_ftxn *t)
{
	size_t i;
	int r = 0;

	for (i = 0; i < t->n; i++) {
		struct fop *op = &t->ops[i];
		if (!op->reserved && backup(op) < 0) {
			r = p11km_fail(P11KM_ERR_IO, "unable to keep a copy of '%s': %s", op->path,
			               strerror(errno));
			break;
		}
		if (op->kind == FOP_UNLINK ? unlink(op->path) < 0 && errno != ENOENT
		                           : rename(op->tmp, op->path) < 0) {
			r = p11km_fail(P11KM_ERR_IO, "unable to %s '%s': %s; the files keep their old content",
			               op->kind == FOP_UNLINK ? "remove" : "replace", op->path,
			               strerror(errno));
			break;
		}
		if (op->kind != FOP_UNLINK) {
			free(op->tmp);
			op->tmp = NULL;
		}
		op->done = 1;
	}
	if (r < 0) {
		/* Put back every target already changed, newest first. */
		for (size_t k = i + 1; k-- > 0;) {
			struct fop *op = &t->ops[k];
			if (!op->done)
				continue;
			if (op->backup != NULL) {
				if (rename(op->backup, op->path) == 0) {
					free(op->backup);
					op->backup = NULL;
				} else {
					p11km_warn("could not restore '%s' (its old content is in '%s')",
					           op->path, op->backup);
				}
			} else if (op->kind != FOP_UNLINK) {
				unlink(op->path);
			}
		}
	}
	for (i = 0; i < t->n; i++) {
		struct fop *op = &t->ops[i];
		if (op->backup != NULL && (r == 0 || !op->done))
			unlink(op->backup);
		free(op->backup);
		op->backup = NULL;
	}
	/* one fsync per directory (ops are usually all in one) */
	for (i = 0; r == 0 && i < t->n; i++) {
		const char *si = strrchr(t->ops[i].path, '/');
		size_t li = si ? (size_t)(si - t->ops[i].path) : 0;
		int seen = 0;
		for (size_t k = 0; k < i && !seen; k++) {
			const char *sk = strrchr(t->ops[k].path, '/');
			size_t lk = sk ? (size_t)(sk - t->ops[k].path) : 0;
			seen = lk == li && strncmp(t->ops[k].path, t->ops[i].path, li) == 0;
		}
		if (!seen)
			sync_dir_of(t->ops[i].path);
	}
	return r;
}

void
p11km_ftxn_free(struct p11km_ftxn *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n; i++) {
		if (t->ops[i].tmp != NULL)
			unlink(t->ops[i].tmp);
		if (t->ops[i].backup != NULL) /* reserved, never committed */
			unlink(t->ops[i].backup);
		free(t->ops[i].tmp);
		free(t->ops[i].backup);
		free(t->ops[i].path);
	}
	free(t->ops);
	for (size_t i = 0; i < t->n_dirs; i++) {
		if (t->dfds[i] >= 0) {
			int k = held_index(t->dfds[i]);
			if (k >= 0)
				held[k] = held[--n_held];
			close(t->dfds[i]); /* releases the lock */
		}
		free(t->dirs[i]);
	}
	free(t->dirs);
	free(t->dfds);
	free(t);
}

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
