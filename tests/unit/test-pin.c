/* test-pin.c: PIN sources: parsing, and reading from files, variables,
 * descriptors and URI values. */
#include "config.h"

#include <check.h>
#include "check-run.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "p11km/pin.h"
#include "p11km/util.h"

static char tmpdir[64];

static void
setup(void)
{
	strcpy(tmpdir, "/tmp/p11km-pin.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	static const char *const names[] = { "pin", "dir", "stderr", NULL };

	for (size_t i = 0; names[i] != NULL; i++) {
		char p[128];
		snprintf(p, sizeof(p), "%s/%s", tmpdir, names[i]);
		if (unlink(p) < 0)
			rmdir(p);
	}
	rmdir(tmpdir);
}

static const char *
pin_path(void)
{
	static char p[128];

	snprintf(p, sizeof(p), "%s/pin", tmpdir);
	return p;
}

static void
write_pin(const void *data, size_t len, mode_t mode)
{
	int fd;

	unlink(pin_path());
	fd = open(pin_path(), O_CREAT | O_EXCL | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
	ck_assert_int_eq(chmod(pin_path(), mode), 0);
}

static void
parse_ok(const char *spec, int bare, enum p11km_pin_kind kind, const char *arg)
{
	struct p11km_pinsrc src;

	ck_assert_msg(p11km_pinsrc_parse(spec, bare, &src) == 0, "'%s' refused", spec);
	ck_assert_int_eq(src.kind, kind);
	ck_assert_str_eq(src.arg, arg);
	ck_assert_str_eq(src.spec, spec);
	p11km_pinsrc_release(&src);
	ck_assert_ptr_null(src.arg);
	ck_assert_ptr_null(src.spec);
}

static void
parse_bad(const char *spec, int bare)
{
	struct p11km_pinsrc src;
	int r = p11km_pinsrc_parse(spec, bare, &src);

	ck_assert_msg(r == P11KM_ERR_USAGE, "'%s' accepted", spec ? spec : "(null)");
	ck_assert_ptr_null(src.arg);
	ck_assert(strchr(p11km_errmsg(r), '\n') == NULL);
}

START_TEST(parsing)
{
	parse_ok("file:/etc/pin", 0, P11KM_PIN_FILE, "/etc/pin");
	parse_ok("file:relative/pin", 0, P11KM_PIN_FILE, "relative/pin");
	parse_ok("env:TOKEN_PIN", 0, P11KM_PIN_ENV, "TOKEN_PIN");
	parse_ok("fd:0", 0, P11KM_PIN_FD, "0");
	parse_ok("fd:17", 0, P11KM_PIN_FD, "17");
	parse_ok("prompt", 0, P11KM_PIN_PROMPT, "");
	/* a bare path is a file only where RFC 7512 allows it (a URI's pin-source) */
	parse_ok("/etc/pin", 1, P11KM_PIN_FILE, "/etc/pin");
	parse_bad("/etc/pin", 0);

	parse_bad(NULL, 0);
	parse_bad("", 0);
	parse_bad("file:", 0);
	parse_bad("env:", 0);
	parse_bad("fd:", 0);
	parse_bad("fd:x", 0);
	parse_bad("fd:-1", 0);
	parse_bad("fd:3x", 0);
	parse_bad("fd:99999999999999999999", 0);
	/* digits only (found by tests/fuzz/fuzz-pin: strtol skips blanks, takes a sign) */
	parse_bad("fd: 3", 0);
	parse_bad("fd:\f11", 0);
	parse_bad("fd:\n3", 0);
	parse_bad("fd:+3", 0);
	parse_bad("fd:-0", 0);
	parse_bad("1234", 0);     /* a PIN given as a source: refused */
	parse_bad("1234", 1);
	parse_bad("pass:1234", 0);
	parse_bad("prompt:x", 0);
	parse_bad("relative", 1);
}
END_TEST

START_TEST(message_never_shows_pin)
{
	struct p11km_pinsrc src;
	int r = p11km_pinsrc_parse("secret-1234", 0, &src);

	ck_assert_int_eq(r, P11KM_ERR_USAGE);
	/* what was typed may be the PIN itself: it is not echoed, and the
	 * message says PINs never come from the command line */
	ck_assert_ptr_null(strstr(p11km_errmsg(r), "secret-1234"));
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(r), "never"));
}
END_TEST

static int
read_pin(const char *spec, int bare, char **pin, size_t *len)
{
	struct p11km_pinsrc src;
	int r = p11km_pinsrc_parse(spec, bare, &src);

	ck_assert_int_eq(r, 0);
	*pin = NULL;
	r = p11km_pin_read(&src, "PIN: ", pin, len);
	p11km_pinsrc_release(&src);
	if (r < 0)
		ck_assert_ptr_null(*pin);
	return r;
}

static void
read_expect(const char *spec, const char *want)
{
	char *pin;
	size_t len;

	ck_assert_msg(read_pin(spec, 0, &pin, &len) == 0, "%s: %s", spec, p11km_errmsg(-1));
	ck_assert_int_eq(len, strlen(want));
	ck_assert_str_eq(pin, want);
	p11km_pin_free(pin, len);
}

static void
read_fails(const char *spec, int code, const char *msg_part)
{
	char *pin;
	size_t len;
	int r = read_pin(spec, 0, &pin, &len);

	ck_assert_msg(r == code, "%s: got %d, want %d", spec, r, code);
	if (msg_part != NULL)
		ck_assert_msg(strstr(p11km_errmsg(r), msg_part) != NULL, "%s: '%s' lacks '%s'", spec,
		              p11km_errmsg(r), msg_part);
}

START_TEST(files)
{
	char spec[160];

	snprintf(spec, sizeof(spec), "file:%s", pin_path());
	write_pin("1234", 4, 0600);
	read_expect(spec, "1234");
	write_pin("1234\n", 5, 0600);
	read_expect(spec, "1234");
	write_pin("1234\r\n", 6, 0600);
	read_expect(spec, "1234");
	/* only one line ending is stripped; inner spaces are kept */
	write_pin("12 34\n\n", 7, 0400);
	read_expect(spec, "12 34\n");
	write_pin(" 1234 ", 6, 0600);
	read_expect(spec, " 1234 ");

	write_pin("", 0, 0600);
	read_fails(spec, P11KM_ERR_USAGE, "empty");
	write_pin("\n", 1, 0600);
	read_fails(spec, P11KM_ERR_USAGE, "empty");
	write_pin("\r\n", 2, 0600);
	read_fails(spec, P11KM_ERR_USAGE, "empty");
	write_pin("12\0" "34", 5, 0600);
	read_fails(spec, P11KM_ERR_USAGE, "NUL");
	{
		char big[P11KM_PIN_MAX + 10];
		memset(big, '7', sizeof(big));
		char want[P11KM_PIN_MAX + 1];
		memset(want, '7', P11KM_PIN_MAX);
		want[P11KM_PIN_MAX] = '\0';
		write_pin(big, P11KM_PIN_MAX, 0600);
		read_expect(spec, want); /* exactly the maximum is fine */
		write_pin(big, P11KM_PIN_MAX + 1, 0600);
		read_fails(spec, P11KM_ERR_USAGE, "longer than");
		write_pin(big, sizeof(big), 0600);
		read_fails(spec, P11KM_ERR_USAGE, "longer than");
		/* the maximum, "\r\n", then more: refused, not cut to the first
		 * line (found by tests/fuzz/fuzz-pin; the login would have used a
		 * PIN the file does not hold) */
		memcpy(big + P11KM_PIN_MAX, "\r\n", 2);
		write_pin(big, P11KM_PIN_MAX + 2, 0600);
		read_expect(spec, want);
		write_pin(big, P11KM_PIN_MAX + 3, 0600);
		read_fails(spec, P11KM_ERR_USAGE, "longer than");
		big[P11KM_PIN_MAX + 3] = '\0';
		setenv("P11KM_TEST_PIN", big, 1);
		read_fails("env:P11KM_TEST_PIN", P11KM_ERR_USAGE, "longer than");
		unsetenv("P11KM_TEST_PIN");
	}
	unlink(pin_path());
	read_fails(spec, P11KM_ERR_IO, "unable to open PIN file");

	snprintf(spec, sizeof(spec), "file:%s/dir", tmpdir);
	ck_assert_int_eq(mkdir(spec + 5, 0700), 0);
	read_fails(spec, P11KM_ERR_IO, "not a regular file");
	/* a bare path from a URI's pin-source reads the same */
	{
		char *pin;
		size_t len;
		write_pin("4321\n", 5, 0600);
		ck_assert_int_eq(read_pin(pin_path(), 1, &pin, &len), 0);
		ck_assert_str_eq(pin, "4321");
		p11km_pin_free(pin, len);
	}
}
END_TEST

/* A world-readable PIN file is read, with a warning on stderr. */
START_TEST(world_readable_warns)
{
	char spec[160], errpath[160], buf[512] = "";
	int saved = dup(2), fd;
	ssize_t n;

	snprintf(spec, sizeof(spec), "file:%s", pin_path());
	snprintf(errpath, sizeof(errpath), "%s/stderr", tmpdir);
	fd = open(errpath, O_CREAT | O_TRUNC | O_RDWR, 0600);
	ck_assert_int_ge(fd, 0);
	p11km_log_set(P11KM_LOG_NORMAL, 0);

	write_pin("1234", 4, 0644);
	fflush(stderr);
	dup2(fd, 2);
	read_expect(spec, "1234");
	fflush(stderr);
	dup2(saved, 2);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	ck_assert_int_gt(n, 0);
	buf[n] = '\0';
	ck_assert_msg(strstr(buf, "warning") && strstr(buf, "readable by other users") &&
	              strstr(buf, "chmod 600"), "stderr: %s", buf);
	ck_assert_ptr_null(strstr(buf, "1234"));       /* never the PIN */
	ck_assert_ptr_eq(strchr(buf, '\n'), buf + n - 1); /* one line */

	/* 0600: no warning */
	ck_assert_int_eq(ftruncate(fd, 0), 0);
	write_pin("1234", 4, 0600);
	dup2(fd, 2);
	read_expect(spec, "1234");
	fflush(stderr);
	dup2(saved, 2);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf) - 1, 0), 0);
	close(fd);
	close(saved);
}
END_TEST

START_TEST(env)
{
	unsetenv("P11KM_TEST_PIN");
	read_fails("env:P11KM_TEST_PIN", P11KM_ERR_USAGE, "not set");
	setenv("P11KM_TEST_PIN", "5678", 1);
	read_expect("env:P11KM_TEST_PIN", "5678");
	setenv("P11KM_TEST_PIN", "5678\n", 1);
	read_expect("env:P11KM_TEST_PIN", "5678");
	setenv("P11KM_TEST_PIN", "", 1);
	read_fails("env:P11KM_TEST_PIN", P11KM_ERR_USAGE, "empty");
	unsetenv("P11KM_TEST_PIN");
}
END_TEST

START_TEST(fd)
{
	int p[2];
	char spec[32];

	ck_assert_int_eq(pipe(p), 0);
	ck_assert_int_eq(write(p[1], "9999\n", 5), 5);
	close(p[1]);
	snprintf(spec, sizeof(spec), "fd:%d", p[0]);
	read_expect(spec, "9999");
	close(p[0]);
	/* a closed descriptor */
	read_fails(spec, P11KM_ERR_IO, "unable to read the PIN");
	/* an empty pipe */
	ck_assert_int_eq(pipe(p), 0);
	close(p[1]);
	snprintf(spec, sizeof(spec), "fd:%d", p[0]);
	read_fails(spec, P11KM_ERR_USAGE, "empty");
	close(p[0]);
}
END_TEST

START_TEST(value)
{
	struct p11km_pinsrc src;
	char *pin;
	size_t len;

	ck_assert_int_eq(p11km_pinsrc_value("the-pin", &src), 0);
	ck_assert_int_eq(src.kind, P11KM_PIN_VALUE);
	/* the spec used in messages never holds the value */
	ck_assert_ptr_null(strstr(src.spec, "the-pin"));
	ck_assert_int_eq(p11km_pin_read(&src, NULL, &pin, &len), 0);
	ck_assert_str_eq(pin, "the-pin");
	p11km_pin_free(pin, len);
	p11km_pinsrc_release(&src);
}
END_TEST

/* With no terminal, prompt is a clean error naming the alternatives. */
START_TEST(prompt_without_tty)
{
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct p11km_pinsrc src;
		char *pin = NULL;
		size_t len;
		int r;
		setsid(); /* no controlling terminal */
		if (p11km_pinsrc_parse("prompt", 0, &src) < 0)
			_exit(2);
		r = p11km_pin_read(&src, "PIN: ", &pin, &len);
		p11km_pinsrc_release(&src);
		_exit(r == P11KM_ERR_IO && pin == NULL &&
		      strstr(p11km_errmsg(r), "no terminal") != NULL ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

static Suite *
pin_suite(void)
{
	Suite *s = suite_create("pin");
	TCase *tc = tcase_create("pin");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, parsing);
	tcase_add_test(tc, message_never_shows_pin);
	tcase_add_test(tc, files);
	tcase_add_test(tc, world_readable_warns);
	tcase_add_test(tc, env);
	tcase_add_test(tc, fd);
	tcase_add_test(tc, value);
	tcase_add_test(tc, prompt_without_tty);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
		return p11km_check_run(pin_suite());
}
