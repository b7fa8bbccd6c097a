/* tests/unit/check-run.h: the one Check runner every unit test's main() uses. */
#ifndef P11KM_TESTS_CHECK_RUN_H
#define P11KM_TESTS_CHECK_RUN_H
#include <check.h>

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
#endif
