/* fuzz.h: what every target of tests/fuzz shares.  A target is a
 * LLVMFuzzerTestOneInput(); fuzz-lib.c has the LLVMFuzzerInitialize() of
 * all (quiet logging).  A target links either
 * with libFuzzer (make fuzz, contrib/fuzz.sh) or with replay.c, which runs
 * the committed corpus once in 'make check'.  A broken invariant calls
 * FUZZ_ASSERT, which aborts: libFuzzer reports it as a crash. */
#ifndef P11KM_FUZZ_H
#define P11KM_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_ASSERT(c) do { \
	if (!(c)) { \
		fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #c); \
		abort(); \
	} \
} while (0)

/* data as a NUL-terminated string (malloc'ed; a NUL in data ends it, as
 * it would end an argument), or NULL on allocation failure. */
char *fuzz_string(const uint8_t *data, size_t size);
/* Split data at the first byte sep: *rest and *rest_size get what follows
 * it (0 bytes when there is no sep).  Returns the length before it. */
size_t fuzz_split(const uint8_t *data, size_t size, int sep, const uint8_t **rest,
                  size_t *rest_size);
/* A path that reads back data: a memfd seen as /proc/self/fd/N (a regular
 * file).  *fd is to be closed by the caller; NULL on failure. */
char *fuzz_memfile(const uint8_t *data, size_t size, int *fd);

#endif
