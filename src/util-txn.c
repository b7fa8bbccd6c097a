/* util-txn.c: file changes made all at once (a multi-file commit with
 * rollback), and the one-file atomic write built on it. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p11km/audit.h"
#include "p11km/lock.h"
#include "p11km/txn.h"
#include "p11km/util.h"

enum fop_kind { FOP_WRITE, FOP_SYMLINK, FOP_UNLINK };

struct fop {
	enum fop_kind kind;
	char *path, *tmp, *backup;
	int done, reserved;   /* reserved: backup taken by p11km_ftxn_reserve */
	int existed;          /* path was there before the commit (backup taken) */
	mode_t mode;
	char *target;         /* FOP_SYMLINK */
	char new_sha[65], old_sha[65]; /* for the audit trail ("" unknown) */
};

struct p11km_ftxn {
	struct fop *ops;
	size_t n, cap;
	/* directories locked (flock) from the first staged file to the end */
	char *dirs[16];
	struct p11km_lock *locks[16];
	dev_t dev[16];
	ino_t ino[16];
	size_t n_dirs;
	int scratch; /* p11km_write_scratch(): not in the audit trail */
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
 * Lock path's directory for this transaction (held until p11km_ftxn_free:
 * two p11km runs on one directory take turns; a store that holds the same
 * lock already is joined, see lock.h), then remove what an interrupted run
 * (crash, SIGKILL, power loss) left next to path: its temporary files and
 * backups ("<path>.p11km-XXXXXX").  Each target itself always holds a
 * complete old or new content (rename is atomic); the leftovers are only
 * copies, and the warning says that a run was interrupted there.  Without
 * the lock (a file system without flock) nothing is removed.
 */
/* Directories used by this process's live transactions: a second
 * transaction on one of them must not sweep the first one's staged files. */
static struct { dev_t dev; ino_t ino; } busy[32];
static size_t n_busy;

static int
busy_index(dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < n_busy; i++)
		if (busy[i].dev == dev && busy[i].ino == ino)
			return (int)i;
	return -1;
}

/* Take dir's lock for t, unless another live transaction uses dir. */
static int
txn_lock_dir(struct p11km_ftxn *t, const char *dir)
{
	struct p11km_lock *lk = NULL;
	struct stat st;
	char *msg;

	if (stat(dir, &st) < 0 || busy_index(st.st_dev, st.st_ino) >= 0 ||
	    n_busy == sizeof(busy) / sizeof(busy[0]))
		return 0;
	msg = p11km_asprintf("waiting for another p11km run writing in '%s'", dir);
	/* wait up to 30 s for another run; never forever */
	if (p11km_lock_take(dir, P11KM_LOCK_DIR, msg, 30000, P11KM_ERR_IO, &lk, NULL) < 0) {
		p11km_error_clear();
		free(msg);
		return 0;
	}
	free(msg);
	t->locks[t->n_dirs] = lk;
	busy[n_busy].dev = st.st_dev;
	busy[n_busy++].ino = st.st_ino;
	t->dev[t->n_dirs] = st.st_dev;
	t->ino[t->n_dirs] = st.st_ino;
	return 1;
}

static void
lock_and_sweep(struct p11km_ftxn *t, const char *path)
{
	char *d = strdup(path), *b = strdup(path), *dir, *base;
	int locked = 0;
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
		locked = t->locks[i] != NULL;
	} else {
		if (t->n_dirs == sizeof(t->dirs) / sizeof(t->dirs[0]))
			goto out;
		if ((t->dirs[t->n_dirs] = strdup(dir)) == NULL)
			goto out;
		t->locks[t->n_dirs] = NULL;
		locked = txn_lock_dir(t, dir);
		t->n_dirs++;
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
	op->mode = mode;
	/* no content hash of a file others may not read: it may hold a
	 * secret (a PIN file), and the SHA-256 of a short PIN gives it away */
	if ((mode & 044) == 0 || p11km_audit_sha256(data ? data : "", len, op->new_sha) == NULL)
		op->new_sha[0] = '\0';
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
	if ((op = fop_add(t, FOP_SYMLINK, path)) == NULL || (op->target = strdup(target)) == NULL)
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

/* What path holds before the commit, for the audit trail: whether it
 * exists, and the SHA-256 of its content (a file) or its target (a link). */
static void
old_state(struct fop *op)
{
	struct stat st;
	unsigned char *data = NULL;
	size_t len = 0;
	char lt[4096];
	ssize_t n;

	op->old_sha[0] = '\0';
	if (lstat(op->path, &st) < 0)
		return;
	op->existed = 1;
	if (S_ISLNK(st.st_mode)) {
		if ((n = readlink(op->path, lt, sizeof(lt) - 1)) >= 0 &&
		    p11km_audit_sha256(lt, (size_t)n, op->old_sha) == NULL)
			op->old_sha[0] = '\0';
	} else if (S_ISREG(st.st_mode) && (st.st_mode & 044) != 0 &&
	           p11km_read_file(op->path, 64u << 20, &data, &len) == 0) {
		if (p11km_audit_sha256(data ? (void *)data : "", len, op->old_sha) == NULL)
			op->old_sha[0] = '\0';
	}
	p11km_error_clear();
	free(data);
}

/* One audit line for op: done (rollback 0), or put back (rollback 1). */
static void
audit_op(const struct fop *op, int rollback)
{
	struct p11km_audit_event ev = { .file = op->path };
	char mode[8];

	if (!rollback) {
		ev.action = op->kind == FOP_UNLINK ? "remove" : op->existed ? "replace" : "write";
		ev.old_sha256 = op->existed && op->old_sha[0] ? op->old_sha : NULL;
		ev.new_sha256 = op->kind == FOP_WRITE && op->new_sha[0] ? op->new_sha : NULL;
		ev.new_target = op->target;
		if (op->kind == FOP_WRITE) {
			snprintf(mode, sizeof(mode), "%04o", (unsigned)(op->mode & 07777));
			ev.new_mode = mode;
		}
	} else {
		/* what the file holds again */
		ev.action = op->existed ? "restore" : "remove";
		ev.old_sha256 = op->kind == FOP_WRITE && op->new_sha[0] ? op->new_sha : NULL;
		ev.new_sha256 = op->existed && op->old_sha[0] ? op->old_sha : NULL;
	}
	p11km_audit(&ev);
}

int
p11km_ftxn_commit(struct p11km_ftxn *t)
{
	size_t i;
	int r = 0;

	/* a change the audit trail cannot record is not made */
	if (t->n > 0 && !t->scratch && (r = p11km_audit_ready()) < 0)
		return r;
	for (i = 0; i < t->n; i++) {
		struct fop *op = &t->ops[i];
		if (!t->scratch)
			old_state(op);
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
		if (!t->scratch && (op->kind != FOP_UNLINK || op->existed))
			audit_op(op, 0);
	}
	if (r < 0) {
		/* Put back every target already changed, newest first. */
		int was = p11km_audit_rollback(1);
		for (size_t k = i + 1; k-- > 0;) {
			struct fop *op = &t->ops[k];
			if (!op->done)
				continue;
			if (op->backup != NULL) {
				if (rename(op->backup, op->path) == 0) {
					free(op->backup);
					op->backup = NULL;
					if (!t->scratch)
						audit_op(op, 1);
				} else {
					p11km_warn("could not restore '%s' (its old content is in '%s')",
					           op->path, op->backup);
				}
			} else if (op->kind != FOP_UNLINK) {
				if (unlink(op->path) == 0 && !t->scratch)
					audit_op(op, 1);
			}
		}
		p11km_audit_rollback(was);
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
		free(t->ops[i].target);
	}
	free(t->ops);
	for (size_t i = 0; i < t->n_dirs; i++) {
		if (t->locks[i] != NULL) {
			int k = busy_index(t->dev[i], t->ino[i]);
			if (k >= 0)
				busy[k] = busy[--n_busy];
			p11km_lock_release(t->locks[i]);
		}
		free(t->dirs[i]);
	}
	free(t);
}

int
p11km_write_scratch(const char *path, const void *data, size_t len, mode_t mode)
{
	struct p11km_ftxn *t = p11km_ftxn_new();
	int r;

	if (t == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	t->scratch = 1;
	if ((r = p11km_ftxn_write(t, path, data, len, mode)) == 0)
		r = p11km_ftxn_commit(t);
	p11km_ftxn_free(t);
	return r;
}

int
p11km_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	struct p11km_ftxn *t;
	struct stat st;
	int r;

	if (strcmp(path, "-") == 0) {
		if (p11km_write_all(STDOUT_FILENO, data, len) < 0)
			return p11km_fail(P11KM_ERR_IO, "unable to write to standard output: %s",
			                  strerror(errno));
		return 0;
	}
	if (lstat(path, &st) == 0 && S_ISCHR(st.st_mode)) {
		/* /dev/null, /dev/stdout, a tty: written in place, nothing to replace */
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || p11km_write_all(fd, data, len) < 0) {
			r = p11km_fail(P11KM_ERR_IO, "unable to write '%s': %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return r;
		}
		close(fd);
		return 0;
	}
	if ((t = p11km_ftxn_new()) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = p11km_ftxn_write(t, path, data, len, mode)) == 0)
		r = p11km_ftxn_commit(t);
	p11km_ftxn_free(t);
	return r;
}

int
p11km_remove_file(const char *path)
{
	struct p11km_ftxn *t = p11km_ftxn_new();
	int r;

	if (t == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = p11km_ftxn_unlink(t, path)) == 0)
		r = p11km_ftxn_commit(t);
	p11km_ftxn_free(t);
	return r;
}
