/* util.h: errors, logging, memory, hex, files.  The bottom layer of p11km. */
#ifndef P11KM_UTIL_H
#define P11KM_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/*
 * One negative error space.  Library functions return 0 or one of these,
 * after recording a one-line message with p11km_fail(); only cmd-*.c print
 * it (p11km_errmsg()) and map the code to an exit status (p11km_exit_code()).
 */
enum p11km_err {
	P11KM_OK = 0,
	P11KM_ERR_FAILED = -1,     /* generic failure (exit 1) */
	P11KM_ERR_USAGE = -2,      /* bad arguments or input syntax (exit 2) */
	P11KM_ERR_NOMEM = -3,      /* out of memory (exit 1) */
	P11KM_ERR_IO = -4,         /* file or system error (exit 1) */
	P11KM_ERR_INPUT = -5,      /* input file content is invalid (exit 2) */
	P11KM_ERR_MODULE = -6,     /* module could not be loaded/initialised (exit 3) */
	P11KM_ERR_TOKEN = -7,      /* PKCS#11 call failed, token missing (exit 3) */
	P11KM_ERR_LOGIN = -8,      /* PIN incorrect, locked, refused (exit 3) */
	P11KM_ERR_NOTFOUND = -9,   /* nothing matched (exit 4) */
	P11KM_ERR_AMBIGUOUS = -10, /* several matched where one is needed (exit 4) */
	P11KM_ERR_VERIFY = -11,    /* a verification failed (exit 5) */
	P11KM_ERR_UNSUPPORTED = -12, /* token/server cannot do it (exit 1) */
	P11KM_ERR_EXISTS = -13,    /* object or file already exists (exit 1) */
};

/* Exit statuses: stable, documented in p11km(1) and README.md. */
enum p11km_exit {
	P11KM_EXIT_OK = 0,
	P11KM_EXIT_FAILED = 1,
	P11KM_EXIT_USAGE = 2,
	P11KM_EXIT_TOKEN = 3,
	P11KM_EXIT_NOTFOUND = 4,
	P11KM_EXIT_VERIFY = 5,
};

/*
 * Escaping for every message and text output: control characters (also
 * C1 controls and bytes that are not UTF-8) become \n, \r, \t or \xHH, so
 * what argv or a module gave never breaks a line or reaches the terminal
 * as an escape sequence.  Printable ASCII and valid UTF-8 are kept.
 * p11km_escape() returns a copy (caller frees, NULL: no memory);
 * p11km_esc() is for printf arguments: s itself when nothing needs
 * escaping, else an escaped copy that stays valid for the next 15 calls.
 */
char *p11km_escape(const char *s);
const char *p11km_esc(const char *s);

/* Record the message for the current error and return code (escaped). */
int p11km_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The message of the last p11km_fail(), or the generic text of the code. */
const char *p11km_errmsg(int code);
/* Generic text for an error code ("out of memory"). */
const char *p11km_strerror(int code);
/* Name of an error code ("P11KM_ERR_LOGIN"), for --json. */
const char *p11km_errname(int code);
int p11km_exit_code(int code);
void p11km_error_clear(void);

/* Logging.  Everything goes to stderr; warnings and notes are one line. */
enum p11km_loglevel { P11KM_LOG_QUIET = 0, P11KM_LOG_NORMAL, P11KM_LOG_VERBOSE };
void p11km_log_set(enum p11km_loglevel level, int trace);
int p11km_log_verbose_on(void);
/* --quiet: no notes or warnings (the level p11km_log_set() was given). */
int p11km_log_quiet_on(void);
int p11km_trace_on(void);
void p11km_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void p11km_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void p11km_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void p11km_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Progress on long work: "label: done/total" on a tty, nothing otherwise. */
void p11km_progress(const char *label, size_t done, size_t total);

/* Memory: abort on exhaustion is not used; these return NULL. */
void *p11km_memdup(const void *p, size_t len);
char *p11km_strndup_trim(const char *p, size_t len); /* strip trailing spaces/NULs */
/* Wipe and free (NULL-safe). */
void p11km_freezero(void *p, size_t len);
char *p11km_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same with a va_list (NULL when out of memory). */
char *p11km_vasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/*
 * Split a command line into words the way systemd's ExecStart= does, with
 * no shell: blanks separate words; '...' is taken as is; "..." keeps blanks
 * and takes \" and \\ as escapes; outside quotes a backslash takes the next
 * character as is.  At most max words go to argv (which needs max + 1 slots:
 * it is NULL-terminated); they point into *buf (malloc'ed: free it, also on
 * failure).  Returns the number of words, or P11KM_ERR_USAGE (message
 * recorded, naming what) for an unterminated quote, a trailing backslash, no
 * word at all, or more than max words.
 */
int p11km_split_words(const char *what, const char *s, char **argv, size_t max, char **buf);

/* Lower-case hex of len bytes; caller frees. */
char *p11km_hex(const unsigned char *p, size_t len);
/* Same with ':' between bytes (fingerprints). */
char *p11km_hex_colon(const unsigned char *p, size_t len);
/* Parse hex (optional ':' separators, optional 0x); returns 0 or P11KM_ERR_USAGE. */
int p11km_unhex(const char *s, unsigned char **out, size_t *out_len);

/* A growable byte buffer. */
struct p11km_buf {
	unsigned char *data;
	size_t len, cap;
};
int p11km_buf_append(struct p11km_buf *b, const void *p, size_t len);
void p11km_buf_release(struct p11km_buf *b); /* wipes */

/* write(2) all of data, retrying on EINTR and short writes; -1 with errno set. */
int p11km_write_all(int fd, const void *data, size_t len);

/* A private temporary file (mkstemp, 0600, under $TMPDIR or /tmp) holding
 * data; *path malloc'ed; the caller unlinks it. */
int p11km_temp_file(const void *data, size_t len, char **path);

/* Read a whole file ("-" = stdin) into memory; limit in bytes. */
int p11km_read_file(const char *path, size_t limit, unsigned char **out, size_t *out_len);

/*
 * Write a file atomically (util-txn.c: a one-file p11km_ftxn, txn.h): temp
 * file in the same directory (O_EXCL), write, fsync, chmod mode, rename
 * over path, fsync the directory, with the directory locked.  A symlink at
 * path is refused.  On failure path keeps its old content and no temp file
 * is left.  path "-" writes to stdout.
 */
int p11km_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* The same for a scratch file: one in a private directory of this run
 * (mkdtemp) that the run removes again (an engine trial's configuration).
 * It changes no store, so it is not in the audit trail (audit.h). */
int p11km_write_scratch(const char *path, const void *data, size_t len, mode_t mode);
/* p11km's state directory: P11KM_STATE_DIR, default /var/lib/p11km. */
const char *p11km_state_root(void);

/* The last OpenSSL error as text, for messages (static buffer); clears the
 * error queue. */
const char *p11km_openssl_error(void);

/* Is the string safe to place in a config file (no quotes, ;, {}, newlines...)? */
int p11km_config_safe(const char *s);

#endif
