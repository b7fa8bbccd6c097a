/* lock.h: file locks between p11km processes (util layer).
 *
 * A lock is an flock(2) on a directory or on a lock file.  Stores lock the
 * directory their files live in (the same lock the file transactions of
 * txn.h take); token changes lock a file under the lock directory.  Locks
 * are re-entrant within a process: taking one this process already holds
 * is counted, never waited for (flock locks belong to open files, so a
 * second open would wait for the first one forever).
 */
#ifndef P11KM_LOCK_H
#define P11KM_LOCK_H

struct p11km_lock;

enum {
	P11KM_LOCK_DIR = 1 << 0,    /* path is a directory: lock it */
	P11KM_LOCK_CREATE = 1 << 1, /* path is a lock file: create it (0600) when absent */
	P11KM_LOCK_SHARED = 1 << 2, /* a shared lock (readers), else exclusive */
};

/*
 * Lock path.  When another process holds it, say `waiting` once (a note,
 * NULL: nothing) and wait up to timeout_ms (a negative value: no limit);
 * then fail with code.  Returns 0, or 1 when it had to wait (what the
 * caller read before may have changed).  *out is set on success; release
 * it with p11km_lock_release() (NULL-safe).  *nested (when not NULL) says
 * whether this process already held the lock.
 */
int p11km_lock_take(const char *path, int flags, const char *waiting, int timeout_ms, int code,
                    struct p11km_lock **out, int *nested);
void p11km_lock_release(struct p11km_lock *lk);
/* Does path still name the file lk locks (not removed or replaced since)? */
int p11km_lock_is(const struct p11km_lock *lk, const char *path);

/*
 * The directory for lock files: opt (--lock-dir), else P11KM_LOCK_DIR, else
 * /run/p11km for root and $XDG_RUNTIME_DIR/p11km (else /tmp/p11km-UID)
 * for other users.  It is created 0700 when absent, and refused when it is
 * not a directory, belongs to neither this user nor root, or is
 * world-writable.
 * *out is malloc'ed.
 */
int p11km_lock_dir(const char *opt, char **out);

#endif
