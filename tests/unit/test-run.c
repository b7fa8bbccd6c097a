/* test-run.c: the subprocess runner (environment scrubbing, stdin, stdout,
 * stderr, exit codes, timeout, user switch) and the output escaping. */
#include "config.h"

#include <check.h>
#include "check-run.h"
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "p11km/pin.h"
#include "p11km/run.h"
#include "p11km/util.h"

/* The environment a child really gets: its own /proc/self/environ. */
static char *
child_environ(char *const *add, size_t n_add)
{
	char *argv[] = { "sh", "-c", "tr '\\0' '\\n' < /proc/self/environ", NULL };
	struct p11km_run_opts o = { .flags = P11KM_RUN_PATH | P11KM_RUN_CAPTURE_STDOUT,
	                            .env = add, .n_env = n_add };
	struct p11km_run_result res;
	char *out;

	ck_assert_int_eq(p11km_run_ex(argv, &o, &res), 0);
	out = res.out;
	res.out = NULL;
	p11km_run_result_release(&res);
	return out;
}

START_TEST(env_hidden)
{
	struct p11km_pinsrc src;
	char *add[] = { "P11KM_T_ADDED=yes", "P11KM_T_SECRET=via-add" };
	char *env;

	setenv("P11KM_T_SECRET", "s3cr3t-canary", 1);
	setenv("P11KM_T_OTHER", "kept", 1);
	env = child_environ(NULL, 0);
	ck_assert_ptr_nonnull(strstr(env, "P11KM_T_SECRET=s3cr3t-canary\n")); /* not hidden yet */
	free(env);
	/* parsing the source hides the variable from every child */
	ck_assert_int_eq(p11km_pinsrc_parse("env:P11KM_T_SECRET", 0, &src), 0);
	p11km_pinsrc_release(&src);
	env = child_environ(add, 2);
	ck_assert_ptr_null(strstr(env, "s3cr3t-canary"));
	ck_assert_ptr_null(strstr(env, "P11KM_T_SECRET"));   /* not even re-added */
	ck_assert_ptr_nonnull(strstr(env, "P11KM_T_OTHER=kept\n"));
	ck_assert_ptr_nonnull(strstr(env, "P11KM_T_ADDED=yes\n"));
	free(env);
	/* an env: spec that is not parsed (a command that needs no PIN) */
	setenv("P11KM_T_SO", "so-canary", 1);
	p11km_pin_env_hide("env:P11KM_T_SO");
	env = child_environ(NULL, 0);
	ck_assert_ptr_null(strstr(env, "so-canary"));
	free(env);
	/* the PIN is still readable by p11km itself */
	ck_assert_str_eq(getenv("P11KM_T_SECRET"), "s3cr3t-canary");
}
END_TEST

START_TEST(env_unset)
{
	char *argv[] = { "sh", "-c", "tr '\\0' '\\n' < /proc/self/environ", NULL };
	char *add[] = { "P11KM_T_SET=from-p11km" };
	const char *const unset[] = { "P11KM_T_SET", "P11KM_T_STALE", NULL };
	struct p11km_run_opts o = { .flags = P11KM_RUN_PATH | P11KM_RUN_CAPTURE_STDOUT,
	                            .env = add, .n_env = 1, .unset = unset };
	struct p11km_run_result res;

	setenv("P11KM_T_STALE", "stale-canary", 1);
	setenv("P11KM_T_SET", "callers", 1);
	setenv("P11KM_T_KEPT", "kept", 1);
	ck_assert_int_eq(p11km_run_ex(argv, &o, &res), 0);
	ck_assert_ptr_null(strstr(res.out, "stale-canary"));       /* inherited: left out */
	ck_assert_ptr_null(strstr(res.out, "callers"));
	ck_assert_ptr_nonnull(strstr(res.out, "P11KM_T_SET=from-p11km\n")); /* added: kept */
	ck_assert_ptr_nonnull(strstr(res.out, "P11KM_T_KEPT=kept\n"));
	p11km_run_result_release(&res);
}
END_TEST

START_TEST(streams)
{
	char *cat[] = { "cat", NULL };
	char *err[] = { "sh", "-c", "echo out; printf 'first\\nlast line\\033[31m\\n' >&2; exit 3", NULL };
	char *missing[] = { "/nonexistent/p11km-nope", NULL };
	struct p11km_run_opts o = { .flags = P11KM_RUN_PATH | P11KM_RUN_CAPTURE_STDOUT,
	                            .input = "key uri\n", .input_len = 8 };
	struct p11km_run_result res;
	char *out = NULL;
	size_t len = 0;

	ck_assert_int_eq(p11km_run_ex(cat, &o, &res), 0);
	ck_assert_str_eq(res.out, "key uri\n");
	p11km_run_result_release(&res);
	/* a failure names the program, its exit code and its last stderr line, escaped */
	ck_assert_int_eq(p11km_run(err, &out, &len), P11KM_ERR_FAILED);
	ck_assert_ptr_null(out);
	ck_assert_str_eq(p11km_errmsg(P11KM_ERR_FAILED), "'sh' failed (exit 3): last line\\x1b[31m");
	o.flags |= P11KM_RUN_ANY_EXIT | P11KM_RUN_STDERR_DISCARD;
	o.input = NULL;
	ck_assert_int_eq(p11km_run_ex(err, &o, &res), 0);
	ck_assert_str_eq(res.out, "out\n");
	ck_assert_ptr_null(res.err);
	ck_assert_int_eq(WEXITSTATUS(res.status), 3);
	p11km_run_result_release(&res);
	o.flags = 0;
	ck_assert_int_eq(p11km_run_ex(missing, &o, &res), P11KM_ERR_UNSUPPORTED);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_UNSUPPORTED), "No such file"));
	p11km_run_result_release(&res);
}
END_TEST

START_TEST(timeout)
{
	/* the grandchild holds the pipe too: the whole group is stopped */
	char *argv[] = { "sh", "-c", "sleep 30 & sleep 30", NULL };
	struct p11km_run_opts o = { .flags = P11KM_RUN_PATH | P11KM_RUN_CAPTURE_STDOUT,
	                            .timeout = 1 };
	struct p11km_run_result res;
	time_t t0 = time(NULL);

	ck_assert_int_eq(p11km_run_ex(argv, &o, &res), P11KM_ERR_FAILED);
	ck_assert_int_eq(res.timed_out, 1);
	ck_assert_int_lt(time(NULL) - t0, 10);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_FAILED), "did not finish in time"));
	p11km_run_result_release(&res);
}
END_TEST

START_TEST(drop_privileges)
{
	char *argv[] = { "sh", "-c", "id -u; id -G", NULL };
	struct p11km_run_opts o = { .flags = P11KM_RUN_PATH | P11KM_RUN_CAPTURE_STDOUT |
	                                     P11KM_RUN_DROP_PRIV, .uid = 65534, .gid = 65534 };
	struct p11km_run_result res;

	if (geteuid() != 0)
		return; /* only root can switch users: checked where tests run as root (CI) */
	ck_assert_int_eq(p11km_run_ex(argv, &o, &res), 0);
	ck_assert_str_eq(res.out, "65534\n65534\n");
	p11km_run_result_release(&res);
}
END_TEST

START_TEST(escaping)
{
	static const struct { const char *in, *out; } t[] = {
		{ "plain text, 'quoted' \\ back", "plain text, 'quoted' \\ back" },
		{ "two\nlines\r\tand", "two\\nlines\\r\\tand" },
		{ "esc\x1b[2J\x07\x7f", "esc\\x1b[2J\\x07\\x7f" },
		{ "caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac" },  /* UTF-8 kept */
		{ "c1 \xc2\x9b" "31m", "c1 \\xc2\\x9b31m" },                 /* C1 CSI escaped */
		{ "bad \xff\xc3", "bad \\xff\\xc3" },                        /* not UTF-8 */
		{ "over \xc0\xaf", "over \\xc0\\xaf" },                      /* overlong */
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *e = p11km_escape(t[i].in);
		ck_assert_str_eq(e, t[i].out);
		ck_assert_str_eq(p11km_esc(t[i].in), t[i].out);
		ck_assert_str_eq(p11km_esc(e), e); /* idempotent */
		free(e);
	}
	ck_assert_ptr_eq(p11km_esc(t[0].in), t[0].in);
	/* messages are escaped when recorded: one line whatever the input */
	p11km_fail(P11KM_ERR_USAGE, "unknown command '%s'", "a\nb\x1b]0;x\x07");
	ck_assert_str_eq(p11km_errmsg(P11KM_ERR_USAGE), "unknown command 'a\\nb\\x1b]0;x\\x07'");
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("run");
	TCase *tc = tcase_create("run");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, env_hidden);
	tcase_add_test(tc, env_unset);
	tcase_add_test(tc, streams);
	tcase_add_test(tc, timeout);
	tcase_add_test(tc, drop_privileges);
	tcase_add_test(tc, escaping);
	suite_add_tcase(s, tc);
	return p11km_check_run(s);
}
