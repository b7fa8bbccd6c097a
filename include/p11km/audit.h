/* audit.h: the audit trail (util-audit.c).  Every change p11km makes to a
 * token or a file is appended as one JSON line to the audit log, by the
 * lowest code that makes it (the object wrappers of p11-change.c, the file
 * transaction commit of util-txn.c), so that no command can forget it. */
#ifndef P11KM_AUDIT_H
#define P11KM_AUDIT_H

#include <stddef.h>

/*
 * Where the trail goes, set once by main() before the command runs:
 * spec is --audit-log (NULL: P11KM_AUDIT_LOG, else the default, see
 * p11km-audit(1)): a file path, or "syslog" (syslog(3), LOG_AUTHPRIV, which
 * journald stores too).  command is "noun verb", copied.  Nothing is opened
 * yet.
 */
void p11km_audit_config(const char *spec, const char *command);
/* The file the trail is in (NULL for syslog), after p11km_audit_config():
 * borrowed. */
const char *p11km_audit_path(void);
int p11km_audit_is_syslog(void);
/*
 * Open the log now (O_APPEND, created 0600; a symbolic link or a file
 * other users may write is refused).  Called before the first change is
 * made: a change the trail cannot record is not made.  0, or
 * P11KM_ERR_IO with the message.  Idempotent.
 */
int p11km_audit_ready(void);

/* What one line says; NULL members are left out. */
struct p11km_audit_event {
	const char *action;   /* "create", "destroy", "set", "init-token", "init-pin",
	                       * "set-pin", "write", "replace", "remove" */
	const char *token;    /* token URI */
	const char *object;   /* object URI */
	const char *cls;      /* "cert", "private", "public", ... */
	unsigned long handle; /* object handle, when no URI is known (0: none) */
	const unsigned char *cert; size_t cert_len; /* certificate DER: its SHA-256 */
	const char *file;     /* a file changed */
	/* "old" and "new": label, id (hex), file content SHA-256, mode, target */
	const char *old_label, *new_label;
	const char *old_id, *new_id;
	const char *old_sha256, *new_sha256;
	const char *new_mode, *new_target;
	const char *error;    /* the change was attempted and failed: why */
};

/*
 * Append one line (with time, user, uid, pid, command, and "rollback":
 * true inside p11km_audit_rollback(1)).  Written with one write(2) to the
 * O_APPEND descriptor and fsynced.  A line that cannot be written is a
 * warning on stderr (the change is made already).
 */
void p11km_audit(const struct p11km_audit_event *ev);
/* Lines from now on are part of a rollback (on 1) or not (0); returns the
 * previous state. */
int p11km_audit_rollback(int on);
/* Lower-case hex SHA-256 of data (65 bytes); NULL when data is NULL. */
const char *p11km_audit_sha256(const void *data, size_t len, char out[65]);
/* Close the log (end of the run). */
void p11km_audit_close(void);

#endif
