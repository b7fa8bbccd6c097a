/* replay.c: a main() for a fuzz target without libFuzzer: runs every file
 * given (or every file of every directory given) through the target once,
 * so that 'make check' replays the committed corpus, regression inputs
 * included, in every build (tests/fuzz/replay.sh). */
#include "config.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "p11km/util.h"

/* Largest input replayed: what contrib/fuzz.sh gives libFuzzer (-max_len). */
#define REPLAY_MAX (64u << 10)

static int
run_file(const char *path)
{
	unsigned char *data = NULL;
	size_t len = 0;

	if (p11km_read_file(path, REPLAY_MAX, &data, &len) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, p11km_errmsg(P11KM_ERR_IO));
		return -1;
	}
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	return 0;
}

static int
run_dir(const char *dir, long *count)
{
	struct dirent **ents = NULL;
	int n = scandir(dir, &ents, NULL, alphasort), r = 0;

	if (n < 0) {
		perror(dir);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char *p = p11km_asprintf("%s/%s", dir, ents[i]->d_name);
		struct stat st;
		if (p != NULL && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
			if (run_file(p) < 0)
				r = -1;
			else
				(*count)++;
		}
		free(p);
		free(ents[i]);
	}
	free(ents);
	return r;
}

int
main(int argc, char **argv)
{
	long count = 0;
	int r = 0;
	struct stat st;

	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode))
			r |= run_dir(argv[i], &count);
		else if (run_file(argv[i]) == 0)
			count++;
		else
			r = -1;
	}
	printf("%s: %ld inputs replayed\n", argv[0], count);
	return r < 0 || count == 0;
}
