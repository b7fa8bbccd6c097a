/* util.c: errors, logging, memory, hex, files. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p11km/util.h"

static char errbuf[1024];
static int errcode;

/* --- escaping ------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at p that is not a C1 control
 * (U+0080..U+009F, which terminals also obey), or 0. */
static size_t
utf8_ok(const unsigned char *p)
{
	size_t n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;

	if (n == 0 || p[0] > 0xf4)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0)
		return 0; /* C1 control */
	if ((n == 3 && p[0] == 0xe0 && p[1] < 0xa0) || (n == 4 && p[0] == 0xf0 && p[1] < 0x90) ||
	    (n == 4 && p[0] == 0xf4 && p[1] >= 0x90) || (n == 3 && p[0] == 0xed && p[1] >= 0xa0))
		return 0; /* overlong, past U+10FFFF, surrogate */
	return n;
}

/* Escape into out (NULL: only count); returns the length. */
static size_t
escape_to(const unsigned char *s, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0, k;

	while (*s) {
		if (*s >= 0x20 && *s < 0x7f) {
			if (out)
				out[n] = (char)*s;
			n++, s++;
		} else if (*s >= 0x80 && (k = utf8_ok(s)) > 0) {
			if (out)
				memcpy(out + n, s, k);
			n += k, s += k;
		} else {
			const char *e = *s == '\n' ? "\\n" : *s == '\r' ? "\\r" : *s == '\t' ? "\\t" : NULL;
			if (out && e)
				memcpy(out + n, e, 2);
			else if (out) {
				out[n] = '\\', out[n + 1] = 'x';
				out[n + 2] = hex[*s >> 4], out[n + 3] = hex[*s & 15];
			}
			n += e ? 2 : 4;
			s++;
		}
	}
	if (out)
		out[n] = '\0';
	return n;
}

char *
p11km_escape(const char *s)
{
	char *r = malloc(escape_to((const unsigned char *)s, NULL) + 1);

	if (r != NULL)
		escape_to((const unsigned char *)s, r);
	return r;
}

const char *
p11km_esc(const char *s)
{
	static char *ring[16];
	static unsigned next;
	char *e;

	if (s == NULL)
		return NULL;
	if (escape_to((const unsigned char *)s, NULL) == strlen(s))
		return s; /* nothing to escape: the string is its own escape */
	if ((e = p11km_escape(s)) == NULL)
		return "(unprintable)";
	free(ring[next]);
	ring[next] = e;
	next = (next + 1) % (sizeof(ring) / sizeof(ring[0]));
	return e;
}

/* --- errors --------------------------------------------------------------- */

int
p11km_fail(int code, const char *fmt, ...)
{
	char raw[sizeof(errbuf)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	/* one line, no terminal escapes, whatever argv or a module gave */
	char *e = p11km_escape(raw);
	snprintf(errbuf, sizeof(errbuf), "%s", e ? e : raw);
	free(e);
	explicit_bzero(raw, sizeof(raw));
	errcode = code;
	return code;
}

void
p11km_error_clear(void)
{
	errbuf[0] = '\0';
	errcode = 0;
}

static const struct {
	int code;
	const char *name, *text;
	int exit;
} errors[] = {
	{ P11KM_OK, "P11KM_OK", "success", P11KM_EXIT_OK },
	{ P11KM_ERR_FAILED, "P11KM_ERR_FAILED", "operation failed", P11KM_EXIT_FAILED },
	{ P11KM_ERR_USAGE, "P11KM_ERR_USAGE", "invalid usage", P11KM_EXIT_USAGE },
	{ P11KM_ERR_NOMEM, "P11KM_ERR_NOMEM", "out of memory", P11KM_EXIT_FAILED },
	{ P11KM_ERR_IO, "P11KM_ERR_IO", "file or system error", P11KM_EXIT_FAILED },
	{ P11KM_ERR_INPUT, "P11KM_ERR_INPUT", "invalid input", P11KM_EXIT_USAGE },
	{ P11KM_ERR_MODULE, "P11KM_ERR_MODULE", "PKCS#11 module error", P11KM_EXIT_TOKEN },
	{ P11KM_ERR_TOKEN, "P11KM_ERR_TOKEN", "token error", P11KM_EXIT_TOKEN },
	{ P11KM_ERR_LOGIN, "P11KM_ERR_LOGIN", "login failed", P11KM_EXIT_TOKEN },
	{ P11KM_ERR_NOTFOUND, "P11KM_ERR_NOTFOUND", "not found", P11KM_EXIT_NOTFOUND },
	{ P11KM_ERR_AMBIGUOUS, "P11KM_ERR_AMBIGUOUS", "ambiguous selection", P11KM_EXIT_NOTFOUND },
	{ P11KM_ERR_VERIFY, "P11KM_ERR_VERIFY", "verification failed", P11KM_EXIT_VERIFY },
	{ P11KM_ERR_UNSUPPORTED, "P11KM_ERR_UNSUPPORTED", "not supported", P11KM_EXIT_FAILED },
	{ P11KM_ERR_EXISTS, "P11KM_ERR_EXISTS", "already exists", P11KM_EXIT_FAILED },
};

#define N_ERRORS (sizeof(errors) / sizeof(errors[0]))

static int
err_index(int code)
{
	for (size_t i = 0; i < N_ERRORS; i++)
		if (errors[i].code == code)
			return (int)i;
	return 1; /* generic failure */
}

const char *
p11km_strerror(int code)
{
	return errors[err_index(code)].text;
}

const char *
p11km_errname(int code)
{
	return errors[err_index(code)].name;
}

const char *
p11km_errmsg(int code)
{
	if (errbuf[0] != '\0' && errcode == code)
		return errbuf;
	return p11km_strerror(code);
}

int
p11km_exit_code(int code)
{
	return errors[err_index(code)].exit;
}

/* --- logging ------------------------------------------------------------ */

static enum p11km_loglevel loglevel = P11KM_LOG_NORMAL;
static int tracing;

void
p11km_log_set(enum p11km_loglevel level, int trace)
{
	loglevel = level;
	tracing = trace;
}

int p11km_log_verbose_on(void) { return loglevel >= P11KM_LOG_VERBOSE; }
int p11km_log_quiet_on(void) { return loglevel == P11KM_LOG_QUIET; }
int p11km_trace_on(void) { return tracing; }

static void
vlog(const char *prefix, const char *fmt, va_list ap)
{
	char *msg = NULL;

	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	fprintf(stderr, "p11km: %s%s\n", prefix, msg ? p11km_esc(msg) : fmt);
	free(msg);
}

void
p11km_warn(const char *fmt, ...)
{
	va_list ap;

	if (loglevel == P11KM_LOG_QUIET)
		return;
	va_start(ap, fmt);
	vlog("warning: ", fmt, ap);
	va_end(ap);
}

void
p11km_note(const char *fmt, ...)
{
	va_list ap;

	if (loglevel == P11KM_LOG_QUIET)
		return;
	va_start(ap, fmt);
	vlog("note: ", fmt, ap);
	va_end(ap);
}

void
p11km_verbose(const char *fmt, ...)
{
	va_list ap;

	if (loglevel < P11KM_LOG_VERBOSE)
		return;
	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void
p11km_trace(const char *fmt, ...)
{
	va_list ap;

	if (!tracing)
		return;
	va_start(ap, fmt);
	vlog("trace: ", fmt, ap);
	va_end(ap);
}

void
p11km_progress(const char *label, size_t done, size_t total)
{
	if (loglevel == P11KM_LOG_QUIET || !isatty(STDERR_FILENO))
		return;
	fprintf(stderr, "\r%s: %zu/%zu", label, done, total);
	if (done >= total)
		fputc('\n', stderr);
	fflush(stderr);
}

/* --- memory ------------------------------------------------------------- */

void *
p11km_memdup(const void *p, size_t len)
{
	void *r = malloc(len ? len : 1);

	if (r != NULL && len > 0)
		memcpy(r, p, len);
	return r;
}

char *
p11km_strndup_trim(const char *p, size_t len)
{
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\0'))
		len--;
	char *r = malloc(len + 1);
	if (r == NULL)
		return NULL;
	memcpy(r, p, len);
	r[len] = '\0';
	return r;
}

void
p11km_freezero(void *p, size_t len)
{
	if (p == NULL)
		return;
	explicit_bzero(p, len);
	free(p);
}

char *
p11km_vasprintf(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	return s;
}

char *
p11km_asprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = p11km_vasprintf(fmt, ap);
	va_end(ap);
	return s;
}

/* --- hex ---------------------------------------------------------------- */

static char *
hex_sep(const unsigned char *p, size_t len, char sep)
{
	static const char digits[] = "0123456789abcdef";
	size_t step = sep ? 3 : 2;
	char *r = malloc(len * step + 1), *o = r;

	if (r == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (sep && i > 0)
			*o++ = sep;
		*o++ = digits[p[i] >> 4];
		*o++ = digits[p[i] & 15];
	}
	*o = '\0';
	return r;
}

char *p11km_hex(const unsigned char *p, size_t len) { return hex_sep(p, len, 0); }
char *p11km_hex_colon(const unsigned char *p, size_t len) { return hex_sep(p, len, ':'); }

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
p11km_unhex(const char *s, unsigned char **out, size_t *out_len)
{
	size_t n = 0, cap;
	unsigned char *r;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2;
	cap = strlen(s) / 2 + 1;
	if ((r = malloc(cap)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	while (*s != '\0') {
		if (*s == ':') {
			s++;
			continue;
		}
		int hi = hexval(s[0]), lo = hi < 0 ? -1 : hexval(s[1]);
		if (hi < 0 || lo < 0) {
			free(r);
			return p11km_fail(P11KM_ERR_USAGE,
			    "invalid hex string: use pairs of hex digits, for example 01ab or 01:ab");
		}
		r[n++] = (unsigned char)(hi << 4 | lo);
		s += 2;
	}
	if (n == 0) {
		free(r);
		return p11km_fail(P11KM_ERR_USAGE, "empty hex string");
	}
	*out = r;
	*out_len = n;
	return 0;
}

/* --- buffers ------------------------------------------------------------ */

int
p11km_buf_append(struct p11km_buf *b, const void *p, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + len + 1)
			cap *= 2;
		unsigned char *d = malloc(cap);
		if (d == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		if (b->len)
			memcpy(d, b->data, b->len);
		p11km_freezero(b->data, b->cap);
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

void
p11km_buf_release(struct p11km_buf *b)
{
	p11km_freezero(b->data, b->cap);
	b->data = NULL;
	b->len = b->cap = 0;
}

/* --- files -------------------------------------------------------------- */

int
p11km_read_file(const char *path, size_t limit, unsigned char **out, size_t *out_len)
{
	struct p11km_buf b = { 0 };
	unsigned char chunk[8192];
	int fd, r = 0;
	struct stat st;

	if (strcmp(path, "-") == 0)
		fd = STDIN_FILENO;
	else if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return p11km_fail(P11KM_ERR_IO, "unable to open '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
		r = p11km_fail(P11KM_ERR_IO, "'%s' is a directory, not a file", path);
		goto out;
	}
	for (;;) {
		ssize_t got = read(fd, chunk, sizeof(chunk));
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			r = p11km_fail(P11KM_ERR_IO, "unable to read '%s': %s", path, strerror(errno));
			goto out;
		}
		if (got == 0)
			break;
		if (b.len + (size_t)got > limit) {
			r = p11km_fail(P11KM_ERR_INPUT, "'%s' is larger than %zu bytes", path, limit);
			goto out;
		}
		if ((r = p11km_buf_append(&b, chunk, (size_t)got)) < 0)
			goto out;
	}
	if (b.data == NULL && (r = p11km_buf_append(&b, "", 0)) < 0)
		goto out;
	*out = b.data;
	*out_len = b.len;
	b.data = NULL;
out:
	explicit_bzero(chunk, sizeof(chunk));
	p11km_buf_release(&b);
	if (fd != STDIN_FILENO)
		close(fd);
	return r;
}

int
p11km_write_all(int fd, const void *data, size_t len)
{
	const unsigned char *p = data;

	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int
p11km_temp_file(const void *data, size_t len, char **path)
{
	const char *tmp = getenv("TMPDIR");
	char *p = p11km_asprintf("%s/p11km-ca.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	int fd;

	*path = NULL;
	if (p == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((fd = mkstemp(p)) < 0 || p11km_write_all(fd, data, len) < 0) {
		int e = errno;
		if (fd >= 0) {
			close(fd);
			unlink(p);
		}
		free(p);
		return p11km_fail(P11KM_ERR_IO, "cannot write a temporary file: %s", strerror(e));
	}
	close(fd);
	*path = p;
	return 0;
}

int
p11km_config_safe(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || strchr("\"'`;{}\\$#<>|&", *p) != NULL)
			return 0;
	}
	return 1;
}

const char *
p11km_state_root(void)
{
	const char *env = getenv("P11KM_STATE_DIR");

	return env != NULL && *env ? env : "/var/lib/p11km"; /* P11KM_STATE_DIR_DEFAULT (ca.h) */
}

int
p11km_split_words(const char *what, const char *s, char **argv, size_t max, char **buf)
{
	char *o;
	size_t n = 0;

	/* a word is never longer than the input: one buffer holds them all */
	if ((*buf = o = malloc(strlen(s) + 1)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (;;) {
		char q = 0;

		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		if (*s == '\0')
			break;
		if (n == max)
			return p11km_fail(P11KM_ERR_USAGE, "%s: more than %zu words", what, max);
		argv[n++] = o;
		for (; *s != '\0'; s++) {
			if (q == '\'') {
				if (*s == '\'')
					q = 0;
				else
					*o++ = *s;
			} else if (q == '"') {
				if (*s == '"')
					q = 0;
				else if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
					*o++ = *++s;
				else
					*o++ = *s;
			} else if (*s == '\'' || *s == '"') {
				q = *s;
			} else if (*s == '\\') {
				if (s[1] == '\0')
					return p11km_fail(P11KM_ERR_USAGE, "%s: a backslash at the end", what);
				*o++ = *++s;
			} else if (*s == ' ' || *s == '\t' || *s == '\n') {
				break;
			} else {
				*o++ = *s;
			}
		}
		if (q != 0)
			return p11km_fail(P11KM_ERR_USAGE, "%s: a %s quote is not closed", what,
			                  q == '"' ? "double" : "single");
		*o++ = '\0';
	}
	argv[n] = NULL;
	if (n == 0)
		return p11km_fail(P11KM_ERR_USAGE, "%s: no command given", what);
	return (int)n;
}
