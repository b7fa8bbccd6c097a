/* txn.h: file changes made all at once (util layer). */
#ifndef P11KM_TXN_H
#define P11KM_TXN_H

#include <stddef.h>
#include <sys/types.h>

/*
 * A set of file changes made all at once: every new content is written to
 * a temporary file in the target's directory and synced first; then the
 * targets are replaced in order, and a failure at any step puts back every
 * target already replaced (from hard-linked backups) and removes every
 * temporary file.  Targets that are symbolic links (or not regular files)
 * are refused before anything is written.  Each directory written to is
 * locked (lock.h) from its first staged change until p11km_ftxn_free();
 * what an interrupted run left there is removed with a warning.
 * p11km_write_file_atomic() (util.h) is the one-file case.
 */
struct p11km_ftxn;
struct p11km_ftxn *p11km_ftxn_new(void);
int p11km_ftxn_write(struct p11km_ftxn *t, const char *path, const void *data, size_t len,
                     mode_t mode);
int p11km_ftxn_symlink(struct p11km_ftxn *t, const char *path, const char *target);
int p11km_ftxn_unlink(struct p11km_ftxn *t, const char *path);
/* Take the backups (hard links, or copies where there are none) now, so
 * that a full disk fails here, before anything else changes; commit then
 * needs no more space.  Optional. */
int p11km_ftxn_reserve(struct p11km_ftxn *t);
int p11km_ftxn_commit(struct p11km_ftxn *t);
/* Removes what is left of an uncommitted transaction and releases the
 * directory locks (NULL-safe). */
void p11km_ftxn_free(struct p11km_ftxn *t);
/* Remove one file as a transaction does (its directory locked, the
 * removal in the audit trail); a file that is not there is no error. */
int p11km_remove_file(const char *path);

#endif
