/* tests/unit/check-run.h: the one Check runner every unit test's main() uses. */
#ifndef P11KM_TESTS_CHECK_RUN_H
#define P11KM_TESTS_CHECK_RUN_H
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

/* Run suite s (taking it over) and give main()'s exit status: 0 when all passed. */
static inline int
p11km_check_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? 0 : 1;
}

/* A fixture's scratch directory: made in dir (size n) as /tmp/p11km-test-NAME.XXXXXX, and removed
 * with all it holds. */
static inline void
p11km_check_tmpdir(char *dir, size_t n, const char *name)
{
	snprintf(dir, n, "/tmp/p11km-test-%s.XXXXXX", name);
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static inline void
p11km_check_tmpdir_remove(const char *dir)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
#endif
