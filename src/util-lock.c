/* util-lock.c: flock-based locks between p11km processes, re-entrant within
 * one process. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "p11km/lock.h"
#include "p11km/util.h"

struct p11km_lock {
	int fd;
	dev_t dev;
	ino_t ino;
	unsigned refs;
	struct p11km_lock *next;
};

/* The locks this process holds. */
static struct p11km_lock *held;

static struct p11km_lock *
held_find(dev_t dev, ino_t ino)
{
	for (struct p11km_lock *l = held; l != NULL; l = l->next)
		if (l->dev == dev && l->ino == ino)
			return l;
	return NULL;
}

static int
open_target(const char *path, int flags)
{
	if (flags & P11KM_LOCK_DIR)
		return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | ((flags & P11KM_LOCK_CREATE) ? O_CREAT : 0),
	            0600);
}

int
p11km_lock_take(const char *path, int flags, const char *waiting, int timeout_ms, int code,
                struct p11km_lock **out, int *nested)
{
	int op = (flags & P11KM_LOCK_SHARED) ? LOCK_SH : LOCK_EX;
	struct p11km_lock *l;
	struct stat st;
	long waited = 0, step = 10;
	int fd;

	*out = NULL;
	if ((fd = open_target(path, flags)) < 0)
		return p11km_fail(P11KM_ERR_IO, "unable to open '%s' to lock it: %s", path,
		                  strerror(errno));
	if (fstat(fd, &st) < 0) {
		close(fd);
		return p11km_fail(P11KM_ERR_IO, "unable to lock '%s': %s", path, strerror(errno));
	}
	if ((l = held_find(st.st_dev, st.st_ino)) != NULL) {
		close(fd);
		l->refs++;
		if (nested != NULL)
			*nested = 1;
		*out = l;
		return 0;
	}
	while (flock(fd, op | LOCK_NB) < 0) {
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK) {
			int e = errno;
			close(fd);
			return p11km_fail(P11KM_ERR_IO, "unable to lock '%s': %s", path, strerror(e));
		}
		if (timeout_ms >= 0 && waited >= timeout_ms) {
			close(fd);
			return p11km_fail(code, "gave up after %d s: another p11km run still holds '%s'",
			                  timeout_ms / 1000, path);
		}
		if (waited == 0 && waiting != NULL)
			p11km_note("%s", waiting);
		nanosleep(&(struct timespec){ 0, step * 1000000L }, NULL);
		waited += step;
		if (step < 100)
			step *= 2;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		close(fd);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	l->fd = fd;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->refs = 1;
	l->next = held;
	held = l;
	if (nested != NULL)
		*nested = 0;
	*out = l;
	return waited > 0;
}

void
p11km_lock_release(struct p11km_lock *lk)
{
	if (lk == NULL || --lk->refs > 0)
		return;
	for (struct p11km_lock **p = &held; *p != NULL; p = &(*p)->next) {
		if (*p == lk) {
			*p = lk->next;
			break;
		}
	}
	close(lk->fd); /* releases the flock */
	free(lk);
}

int
p11km_lock_is(const struct p11km_lock *lk, const char *path)
{
	struct stat st;

	return lk != NULL && stat(path, &st) == 0 && st.st_dev == lk->dev && st.st_ino == lk->ino;
}

int
p11km_lock_dir(const char *opt, char **out)
{
	const char *env = getenv("P11KM_LOCK_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	char *dir;

	*out = NULL;
	if (opt != NULL && *opt != '\0')
		dir = strdup(opt);
	else if (env != NULL && *env != '\0')
		dir = strdup(env);
	else if (geteuid() == 0)
		dir = strdup("/run/p11km");
	else if (xdg != NULL && *xdg == '/')
		dir = p11km_asprintf("%s/p11km", xdg);
	else
		dir = p11km_asprintf("/tmp/p11km-%lu", (unsigned long)geteuid());
	if (dir == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		int e = errno;
		int r = p11km_fail(P11KM_ERR_IO, "unable to create the lock directory '%s': %s; "
		                   "choose one with --lock-dir DIR", dir, strerror(e));
		free(dir);
		return r;
	}
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode) ||
	    (st.st_uid != geteuid() && st.st_uid != 0) || (st.st_mode & 002) != 0) {
		int r = p11km_fail(P11KM_ERR_IO, "refusing the lock directory '%s': it must be a "
		                   "directory of this user that nobody else can write to", dir);
		free(dir);
		return r;
	}
	*out = dir;
	return 0;
}
