/* fuzz-lib.c: helpers of the fuzz targets (fuzz.h). */
#include "config.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "p11km/util.h"

char *
fuzz_string(const uint8_t *data, size_t size)
{
	size_t n = size;
	const uint8_t *nul = memchr(data, '\0', size);
	char *s;

	if (nul != NULL)
		n = (size_t)(nul - data);
	if ((s = malloc(n + 1)) == NULL)
		return NULL;
	if (n > 0)
		memcpy(s, data, n);
	s[n] = '\0';
	return s;
}

size_t
fuzz_split(const uint8_t *data, size_t size, int sep, const uint8_t **rest, size_t *rest_size)
{
	const uint8_t *p = size > 0 ? memchr(data, sep, size) : NULL;

	if (p == NULL) {
		*rest = data + size;
		*rest_size = 0;
		return size;
	}
	*rest = p + 1;
	*rest_size = size - (size_t)(p - data) - 1;
	return (size_t)(p - data);
}

char *
fuzz_memfile(const uint8_t *data, size_t size, int *fd)
{
	int f = memfd_create("p11km-fuzz", MFD_CLOEXEC);
	char *path;

	if (f < 0)
		return NULL;
	if ((size > 0 && p11km_write_all(f, data, size) < 0) ||
	    (path = p11km_asprintf("/proc/self/fd/%d", f)) == NULL) {
		close(f);
		return NULL;
	}
	*fd = f;
	return path;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	p11km_log_set(P11KM_LOG_QUIET, 0); /* warnings would flood the run */
	return 0;
}
