/* util-audit.c: the audit trail: one JSON line per change to a token or a
 * file, appended to the audit log (or sent to syslog).  See audit.h. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "p11km/audit.h"
#include "p11km/util.h"

#define AUDIT_SYSTEM_DIR "/var/log/p11km"

static struct {
	char *path;       /* the log file; NULL: syslog or none */
	int syslog;
	char *command;
	int fd;           /* -1: not open */
	int opened;       /* syslog opened */
	int rollback;
	int configured;
} au = { .fd = -1 };

/* The default: /var/log/p11km/audit.log for root or when that directory is
 * writable; else the user's own state directory ($XDG_STATE_HOME, or
 * ~/.local/state: p11km/audit.log there), so that a change by a user who
 * may not write /var/log is recorded all the same, where that user finds
 * it. */
static char *
default_path(void)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (geteuid() == 0 || access(AUDIT_SYSTEM_DIR, W_OK | X_OK) == 0)
		return strdup(AUDIT_SYSTEM_DIR "/audit.log");
	if (xdg != NULL && xdg[0] == '/')
		return p11km_asprintf("%s/p11km/audit.log", xdg);
	if (home != NULL && home[0] == '/')
		return p11km_asprintf("%s/.local/state/p11km/audit.log", home);
	return NULL;
}

void
p11km_audit_config(const char *spec, const char *command)
{
	p11km_audit_close();
	free(au.path);
	free(au.command);
	au.path = NULL;
	au.syslog = 0;
	if (spec == NULL || spec[0] == '\0')
		spec = getenv("P11KM_AUDIT_LOG");
	if (spec != NULL && strcmp(spec, "syslog") == 0)
		au.syslog = 1;
	else if (spec != NULL && spec[0] != '\0')
		au.path = strdup(spec);
	else
		au.path = default_path();
	au.command = command ? strdup(command) : NULL;
	au.configured = 1;
}

const char *
p11km_audit_path(void)
{
	if (!au.configured)
		p11km_audit_config(NULL, NULL);
	return au.path;
}

int
p11km_audit_is_syslog(void)
{
	if (!au.configured)
		p11km_audit_config(NULL, NULL);
	return au.syslog;
}

/* mkdir -p of path's directory (new directories 0700; /var/log/p11km 0750). */
static void
make_parents(const char *path)
{
	char *d = strdup(path), *p;

	if (d == NULL)
		return;
	for (p = d + 1; (p = strchr(p, '/')) != NULL; p++) {
		*p = '\0';
		(void)mkdir(d, strcmp(d, AUDIT_SYSTEM_DIR) == 0 ? 0750 : 0700);
		*p = '/';
	}
	free(d);
}

int
p11km_audit_ready(void)
{
	struct stat st;
	int fd;

	if (!au.configured)
		p11km_audit_config(NULL, NULL);
	if (au.syslog) {
		if (!au.opened)
			openlog("p11km", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
		au.opened = 1;
		return 0;
	}
	if (au.fd >= 0)
		return 0;
	if (au.path == NULL)
		return p11km_fail(P11KM_ERR_IO, "no audit log (neither HOME nor --audit-log is set): "
		                  "give --audit-log FILE; nothing was changed");
	make_parents(au.path);
	fd = open(au.path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return p11km_fail(P11KM_ERR_IO, "unable to open the audit log '%s': %s; nothing was "
		                  "changed (give --audit-log FILE)", au.path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 022) != 0) {
		close(fd);
		return p11km_fail(P11KM_ERR_IO, "refusing the audit log '%s': %s; nothing was changed",
		                  au.path, S_ISREG(st.st_mode) ? "other users may write it (chmod 600 it)"
		                                               : "not a regular file");
	}
	au.fd = fd;
	return 0;
}

int
p11km_audit_rollback(int on)
{
	int was = au.rollback;

	au.rollback = on;
	return was;
}

const char *
p11km_audit_sha256(const void *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int ml = 0;
	static const char hx[] = "0123456789abcdef";

	if (data == NULL || !EVP_Digest(data, len, md, &ml, EVP_sha256(), NULL) ||
	    ml != 32)
		return NULL;
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hx[md[i] >> 4];
		out[2 * i + 1] = hx[md[i] & 15];
	}
	out[64] = '\0';
	return out;
}

/* Set key to s (escaped: a label from a module may be any bytes). */
static void
put(json_t *o, const char *key, const char *s)
{
	char *e;

	if (s == NULL || (e = p11km_escape(s)) == NULL)
		return;
	json_object_set_new(o, key, json_string(e));
	free(e);
}

/* "old"/"new": the members given, or nothing. */
static void
put_side(json_t *line, const char *key, const char *label, const char *id, const char *sha,
         const char *mode, const char *target)
{
	json_t *o = json_object();

	put(o, "label", label);
	put(o, "id", id);
	put(o, "sha256", sha);
	put(o, "mode", mode);
	put(o, "target", target);
	if (json_object_size(o) > 0)
		json_object_set_new(line, key, o);
	else
		json_decref(o);
}

static void
put_who(json_t *line)
{
	struct passwd *pw = getpwuid(getuid());
	const char *sudo = getenv("SUDO_USER");
	char ts[40];
	struct timespec now;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03ldZ", now.tv_nsec / 1000000);
	put(line, "time", ts);
	put(line, "user", pw ? pw->pw_name : NULL);
	json_object_set_new(line, "uid", json_integer((json_int_t)getuid()));
	if (geteuid() != getuid())
		json_object_set_new(line, "euid", json_integer((json_int_t)geteuid()));
	put(line, "sudo_user", sudo && *sudo ? sudo : NULL);
	json_object_set_new(line, "pid", json_integer((json_int_t)getpid()));
	put(line, "command", au.command);
}

void
p11km_audit(const struct p11km_audit_event *ev)
{
	json_t *line = json_object();
	char *text = NULL, sha[65];
	int r;

	if (line == NULL)
		goto fail;
	if ((r = p11km_audit_ready()) < 0)
		goto fail;
	put_who(line);
	put(line, "action", ev->action);
	if (au.rollback)
		json_object_set_new(line, "rollback", json_true());
	put(line, "token", ev->token);
	put(line, "object", ev->object);
	if (ev->object == NULL && ev->handle != 0)
		json_object_set_new(line, "handle", json_integer((json_int_t)ev->handle));
	put(line, "class", ev->cls);
	put(line, "sha256", p11km_audit_sha256(ev->cert, ev->cert_len, sha));
	put(line, "file", ev->file);
	put_side(line, "old", ev->old_label, ev->old_id, ev->old_sha256, NULL, NULL);
	put_side(line, "new", ev->new_label, ev->new_id, ev->new_sha256, ev->new_mode,
	         ev->new_target);
	put(line, "error", ev->error);
	if ((text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
		goto fail;
	if (au.syslog) {
		syslog(LOG_NOTICE, "%s", text);
	} else {
		size_t n = strlen(text);
		text[n] = '\n'; /* json_dumps' terminator becomes the line's end */
		if (p11km_write_all(au.fd, text, n + 1) < 0 || fsync(au.fd) < 0) {
			p11km_warn("the audit log '%s' did not take the line of this %s: %s", au.path,
			           ev->action, strerror(errno));
		}
	}
	free(text);
	json_decref(line);
	return;
fail:
	p11km_warn("this %s%s%s is not in the audit log: %s", ev->action, ev->file ? " of " : "",
	           ev->file ? ev->file : "", p11km_errmsg(P11KM_ERR_IO));
	free(text);
	json_decref(line);
}

void
p11km_audit_close(void)
{
	if (au.fd >= 0)
		close(au.fd);
	au.fd = -1;
	if (au.opened)
		closelog();
	au.opened = 0;
}
