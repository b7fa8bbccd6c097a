/* fuzz-pin.c: PIN sources (src/pin.c): the --pin-source text, and the PIN
 * read from a file, a file descriptor, the environment and a URI's
 * pin-value, compared with what p11km(1) promises: one trailing newline
 * ("\n" or "\r\n") stripped, an empty PIN, one longer than P11KM_PIN_MAX
 * bytes or one holding a NUL refused, nothing else changed.  The input is
 * a flags byte (bit 0: a bare path is a file, as in a URI's pin-source),
 * the source text up to a newline, then the content the PIN is read from. */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "p11km/pin.h"
#include "p11km/util.h"

#define ENV_NAME "P11KM_FUZZ_PIN"

static void
check_spec(const char *spec, int bare)
{
	struct p11km_pinsrc src;
	int r = p11km_pinsrc_parse(spec, bare, &src);

	if (r != 0) {
		FUZZ_ASSERT(src.arg == NULL && src.spec == NULL);
		return;
	}
	FUZZ_ASSERT(src.arg != NULL && src.spec != NULL && strcmp(src.spec, spec) == 0);
	switch (src.kind) {
	case P11KM_PIN_FILE:
		FUZZ_ASSERT(src.arg[0] != '\0');
		break;
	case P11KM_PIN_ENV:
		FUZZ_ASSERT(src.arg[0] != '\0');
		break;
	case P11KM_PIN_FD:
		FUZZ_ASSERT(src.arg[0] != '\0' && strspn(src.arg, "0123456789") == strlen(src.arg));
		break;
	case P11KM_PIN_PROMPT:
		FUZZ_ASSERT(strcmp(spec, "prompt") == 0);
		break;
	case P11KM_PIN_VALUE:
		FUZZ_ASSERT(!"a --pin-source is never a literal PIN");
	}
	p11km_pinsrc_release(&src);
}

/* What the PIN read from content must be: *want, *want_len; 0 when p11km
 * must refuse it. */
static int
expected(const uint8_t *content, size_t len, const uint8_t **want, size_t *want_len)
{
	if (len > 0 && content[len - 1] == '\n')
		len--;
	if (len > 0 && content[len - 1] == '\r')
		len--;
	*want = content;
	*want_len = len;
	return len > 0 && len <= P11KM_PIN_MAX && memchr(content, '\0', len) == NULL;
}

static void
read_and_check(struct p11km_pinsrc *src, const uint8_t *content, size_t len)
{
	const uint8_t *want;
	size_t want_len, n = 0;
	int valid = expected(content, len, &want, &want_len);
	char *pin = NULL;
	int r = p11km_pin_read(src, "PIN: ", &pin, &n);

	if (r == 0) {
		FUZZ_ASSERT(valid);
		FUZZ_ASSERT(n == want_len && memcmp(pin, want, n) == 0 && pin[n] == '\0');
		p11km_pin_free(pin, n);
	} else {
		FUZZ_ASSERT(!valid);
	}
	p11km_pinsrc_release(src);
}

static void
from_spec(const char *spec, const uint8_t *content, size_t len)
{
	struct p11km_pinsrc src;

	if (spec == NULL)
		return;
	FUZZ_ASSERT(p11km_pinsrc_parse(spec, 0, &src) == 0);
	read_and_check(&src, content, len);
}

static void
sources(const uint8_t *content, size_t len)
{
	struct p11km_pinsrc src;
	char *spec, *path, *str;
	int fd = -1, pfd[2];

	/* file:PATH */
	if ((path = fuzz_memfile(content, len, &fd)) != NULL) {
		spec = p11km_asprintf("file:%s", path);
		from_spec(spec, content, len);
		free(spec);
		free(path);
		close(fd);
	}
	/* fd:N, a pipe holding the content (the input is at most 4 kB) */
	if (pipe(pfd) == 0) {
		if (p11km_write_all(pfd[1], content, len) == 0) {
			close(pfd[1]);
			pfd[1] = -1;
			spec = p11km_asprintf("fd:%d", pfd[0]);
			from_spec(spec, content, len);
			free(spec);
		}
		close(pfd[0]);
		if (pfd[1] >= 0)
			close(pfd[1]);
	}
	/* env:VAR and pin-value: strings, so up to a NUL */
	if ((str = fuzz_string(content, len)) == NULL)
		return;
	if (setenv(ENV_NAME, str, 1) == 0) {
		from_spec("env:" ENV_NAME, (const uint8_t *)str, strlen(str));
		unsetenv(ENV_NAME);
	}
	if (p11km_pinsrc_value(str, &src) == 0)
		read_and_check(&src, (const uint8_t *)str, strlen(str));
	free(str);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *content;
	size_t content_len, n;
	char *spec;

	if (size < 1 || size > 4096)
		return 0;
	n = fuzz_split(data + 1, size - 1, '\n', &content, &content_len);
	if ((spec = fuzz_string(data + 1, n)) != NULL) {
		check_spec(spec, data[0] & 1);
		free(spec);
	}
	sources(content, content_len);
	p11km_error_clear();
	return 0;
}
