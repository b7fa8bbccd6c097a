/* pin.c: PIN sources: file:, env:, fd:, prompt, and a URI's pin-value. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "p11km/pin.h"
#include "p11km/run.h"
#include "p11km/util.h"

static int
set(struct p11km_pinsrc *out, enum p11km_pin_kind kind, const char *arg, const char *spec)
{
	out->kind = kind;
	out->arg = strdup(arg);
	out->spec = strdup(spec);
	if (out->arg == NULL || out->spec == NULL) {
		p11km_pinsrc_release(out);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	return 0;
}

/* A shell variable name: [A-Za-z_][A-Za-z0-9_]*. */
static int
env_name_ok(const char *s)
{
	if (!isalpha((unsigned char)*s) && *s != '_')
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return 0;
	return 1;
}

int
p11km_pinsrc_parse(const char *spec, int bare_path_ok, struct p11km_pinsrc *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (spec == NULL || *spec == '\0')
		return p11km_fail(P11KM_ERR_USAGE,
		    "empty PIN source: use file:PATH, env:VAR, fd:N or prompt");
	if (strncmp(spec, "file:", 5) == 0) {
		if (spec[5] == '\0')
			return p11km_fail(P11KM_ERR_USAGE, "PIN source 'file:' names no file");
		return set(out, P11KM_PIN_FILE, spec + 5, spec);
	}
	if (strncmp(spec, "env:", 4) == 0) {
		if (spec[4] == '\0')
			return p11km_fail(P11KM_ERR_USAGE, "PIN source 'env:' names no variable");
		/* Not echoed: what follows env: may be the PIN itself. */
		if (!env_name_ok(spec + 4))
			return p11km_fail(P11KM_ERR_USAGE,
			    "PIN source env: takes a variable name (letters, digits, '_'), for example "
			    "env:P11KM_PIN");
		/* the variable holds a PIN: no child of this process gets it */
		if ((r = p11km_run_env_hide(spec + 4)) < 0)
			return r;
		return set(out, P11KM_PIN_ENV, spec + 4, spec);
	}
	if (strncmp(spec, "fd:", 3) == 0) {
		char *end;
		errno = 0;
		long fd = strtol(spec + 3, &end, 10);
		/* Not echoed: what follows fd: may be the PIN itself.  Digits only:
		 * strtol alone also takes " 3", "\f3" and "+3". */
		if (spec[3] < '0' || spec[3] > '9' || *end != '\0' || errno != 0 || fd > INT_MAX)
			return p11km_fail(P11KM_ERR_USAGE,
			    "PIN source fd: takes a file descriptor number, for example fd:3");
		return set(out, P11KM_PIN_FD, spec + 3, spec);
	}
	if (strcmp(spec, "prompt") == 0)
		return set(out, P11KM_PIN_PROMPT, "", spec);
	if (bare_path_ok && spec[0] == '/')
		return set(out, P11KM_PIN_FILE, spec, spec);
	/* Not echoed: what was typed may be the PIN itself. */
	return p11km_fail(P11KM_ERR_USAGE,
	    "unknown PIN source: use file:PATH, env:VAR, fd:N or prompt "
	    "(a PIN is never taken from the command line)");
}

int
p11km_pinsrc_value(const char *value, struct p11km_pinsrc *out)
{
	memset(out, 0, sizeof(*out));
	return set(out, P11KM_PIN_VALUE, value, "pin-value in the URI");
}

void
p11km_pinsrc_release(struct p11km_pinsrc *src)
{
	if (src->arg != NULL)
		p11km_freezero(src->arg, strlen(src->arg));
	free(src->spec);
	memset(src, 0, sizeof(*src));
}

void
p11km_pin_env_hide(const char *spec)
{
	if (spec != NULL && strncmp(spec, "env:", 4) == 0 && env_name_ok(spec + 4))
		(void)p11km_run_env_hide(spec + 4);
}

void
p11km_pin_free(char *pin, size_t len)
{
	p11km_freezero(pin, len + 1);
}

/* Bytes read from a source: the longest PIN, its "\r\n" and one more, so
 * that a longer content is refused, never cut to a PIN that looks whole. */
#define READ_MAX (P11KM_PIN_MAX + 3)

/* Read up to READ_MAX bytes from fd. */
static int
read_fd(int fd, const char *what, char *buf, size_t *len)
{
	size_t n = 0;

	while (n < READ_MAX) {
		ssize_t r = read(fd, buf + n, READ_MAX - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return p11km_fail(P11KM_ERR_IO, "unable to read the PIN from %s: %s", what,
			                  strerror(errno));
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*len = n;
	return 0;
}

/* What a file that is not a regular file is, for messages. */
static const char *
file_kind(mode_t m)
{
	return S_ISFIFO(m) ? "a FIFO (named pipe)" : S_ISDIR(m) ? "a directory" :
	       S_ISCHR(m) ? "a character device" : S_ISBLK(m) ? "a block device" :
	       S_ISSOCK(m) ? "a socket" : "of an unknown type";
}

/* The file type is checked before the file is opened (a FIFO would block
 * open() until a writer comes) and again on the open file (O_NONBLOCK: a
 * FIFO swapped in between cannot block either). */
static int
read_file(const char *path, char *buf, size_t *len)
{
	struct stat st;
	int fd, r;

	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return p11km_fail(P11KM_ERR_IO, "PIN file '%s' is not a regular file (it is %s): "
		                  "give a file that holds the PIN", path, file_kind(st.st_mode));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0) {
		/* a name without '/' that does not exist may be the PIN typed by mistake */
		if (errno == ENOENT && strchr(path, '/') == NULL)
			return p11km_fail(P11KM_ERR_IO, "unable to open the PIN file named by the "
			                  "file: PIN source: %s (give its path)", strerror(errno));
		return p11km_fail(P11KM_ERR_IO, "unable to open PIN file '%s': %s", path,
		                  strerror(errno));
	}
	if (fstat(fd, &st) < 0)
		st.st_mode = 0;
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return p11km_fail(P11KM_ERR_IO, "PIN file '%s' is not a regular file (it is %s): "
		                  "give a file that holds the PIN", path, file_kind(st.st_mode));
	}
	if (fcntl(fd, F_SETFL, 0) < 0) {
		r = p11km_fail(P11KM_ERR_IO, "unable to read PIN file '%s': %s", path, strerror(errno));
		close(fd);
		return r;
	}
	if (st.st_mode & (S_IROTH | S_IWOTH))
		p11km_warn("PIN file '%s' is readable by other users: chmod 600 '%s'", path, path);
	r = read_fd(fd, path, buf, len);
	close(fd);
	return r;
}

static int
read_prompt(const char *prompt, char *buf, size_t *len)
{
	struct termios old, noecho;
	int fd, r, restore = 0;

	if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC)) < 0)
		return p11km_fail(P11KM_ERR_IO,
		    "cannot prompt for the PIN: no terminal; use --pin-source file:PATH or env:VAR");
	if (tcgetattr(fd, &old) == 0) {
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)ECHO;
		noecho.c_lflag |= ECHONL;
		restore = tcsetattr(fd, TCSAFLUSH, &noecho) == 0;
	}
	if (write(fd, prompt, strlen(prompt)) < 0) { /* best effort */ }
	size_t n = 0;
	r = 0;
	while (n < READ_MAX) {
		ssize_t got = read(fd, buf + n, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = p11km_fail(P11KM_ERR_IO, "unable to read the PIN: %s", strerror(errno));
			break;
		}
		if (got == 0 || buf[n] == '\n') {
			if (got == 1)
				n++;
			break;
		}
		n++;
	}
	*len = n;
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &old);
	close(fd);
	return r;
}

int
p11km_pin_read(const struct p11km_pinsrc *src, const char *prompt, char **pin, size_t *len)
{
	char *buf = calloc(1, READ_MAX + 1);
	size_t n = 0;
	int r = 0;

	if (buf == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	switch (src->kind) {
	case P11KM_PIN_FILE:
		r = read_file(src->arg, buf, &n);
		break;
	case P11KM_PIN_ENV: {
		const char *v = getenv(src->arg);
		if (v == NULL) {
			r = p11km_fail(P11KM_ERR_USAGE,
			    "PIN source env:%s: the variable is not set; export it or use another source",
			    src->arg);
			break;
		}
		n = strlen(v);
		if (n > READ_MAX)
			n = READ_MAX;
		memcpy(buf, v, n);
		break;
	}
	case P11KM_PIN_FD:
		/* the number is not named: a PIN typed as fd:1234 is not a file descriptor */
		r = read_fd(atoi(src->arg), "the file descriptor of the fd: PIN source", buf, &n);
		break;
	case P11KM_PIN_PROMPT:
		r = read_prompt(prompt ? prompt : "PIN: ", buf, &n);
		break;
	case P11KM_PIN_VALUE:
		n = strlen(src->arg);
		if (n > READ_MAX)
			n = READ_MAX;
		memcpy(buf, src->arg, n);
		break;
	}
	if (r < 0)
		goto fail;
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	if (n > P11KM_PIN_MAX) {
		r = p11km_fail(P11KM_ERR_USAGE, "the PIN from %s is longer than %d bytes", src->spec,
		               P11KM_PIN_MAX);
		goto fail;
	}
	if (n == 0) {
		r = p11km_fail(P11KM_ERR_USAGE, "the PIN from %s is empty", src->spec);
		goto fail;
	}
	if (memchr(buf, '\0', n) != NULL) {
		r = p11km_fail(P11KM_ERR_USAGE, "the PIN from %s contains a NUL byte", src->spec);
		goto fail;
	}
	*pin = buf;
	*len = n;
	return 0;
fail:
	p11km_freezero(buf, READ_MAX + 1);
	return r;
}
