/* test-util.c: error names and exit codes, hex, strings, atomic writes. */
#include "config.h"

#include <check.h>
#include "check-run.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "p11km/lock.h"
#include "p11km/p11.h"
#include "p11km/util.h"

static char tmpdir[64];

static void
setup(void)
{
	strcpy(tmpdir, "/tmp/p11km-unit.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void
teardown(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		char p[512];
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
		if (unlink(p) < 0)
			rmdir(p);
	}
	if (d != NULL)
		closedir(d);
	rmdir(tmpdir);
}

static char *
path(const char *name)
{
	static char buf[4][512];
	static int k;

	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", tmpdir, name);
	return buf[k];
}

/* Number of entries in tmpdir. */
static int
count_files(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static int
has_temp_file(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	int found = 0;

	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".p11km-") != NULL)
			found = 1;
	closedir(d);
	return found;
}

static char *
slurp(const char *p, size_t *len)
{
	unsigned char *data = NULL;

	ck_assert_int_eq(p11km_read_file(p, 1 << 20, &data, len), 0);
	return (char *)data;
}

START_TEST(error_codes)
{
	static const struct { int code; const char *name; int exit; } want[] = {
		{ P11KM_OK, "P11KM_OK", 0 },
		{ P11KM_ERR_FAILED, "P11KM_ERR_FAILED", 1 },
		{ P11KM_ERR_USAGE, "P11KM_ERR_USAGE", 2 },
		{ P11KM_ERR_NOMEM, "P11KM_ERR_NOMEM", 1 },
		{ P11KM_ERR_IO, "P11KM_ERR_IO", 1 },
		{ P11KM_ERR_INPUT, "P11KM_ERR_INPUT", 2 },
		{ P11KM_ERR_MODULE, "P11KM_ERR_MODULE", 3 },
		{ P11KM_ERR_TOKEN, "P11KM_ERR_TOKEN", 3 },
		{ P11KM_ERR_LOGIN, "P11KM_ERR_LOGIN", 3 },
		{ P11KM_ERR_NOTFOUND, "P11KM_ERR_NOTFOUND", 4 },
		{ P11KM_ERR_AMBIGUOUS, "P11KM_ERR_AMBIGUOUS", 4 },
		{ P11KM_ERR_VERIFY, "P11KM_ERR_VERIFY", 5 },
		{ P11KM_ERR_UNSUPPORTED, "P11KM_ERR_UNSUPPORTED", 1 },
		{ P11KM_ERR_EXISTS, "P11KM_ERR_EXISTS", 1 },
	};

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		ck_assert_str_eq(p11km_errname(want[i].code), want[i].name);
		ck_assert_int_eq(p11km_exit_code(want[i].code), want[i].exit);
		ck_assert_ptr_nonnull(p11km_strerror(want[i].code));
		ck_assert(strlen(p11km_strerror(want[i].code)) > 0);
	}
	/* an unknown code is a generic failure, never exit 0 */
	ck_assert_str_eq(p11km_errname(-999), "P11KM_ERR_FAILED");
	ck_assert_int_eq(p11km_exit_code(-999), 1);
	/* the exit statuses are the documented stable values */
	ck_assert_int_eq(P11KM_EXIT_OK, 0);
	ck_assert_int_eq(P11KM_EXIT_FAILED, 1);
	ck_assert_int_eq(P11KM_EXIT_USAGE, 2);
	ck_assert_int_eq(P11KM_EXIT_TOKEN, 3);
	ck_assert_int_eq(P11KM_EXIT_NOTFOUND, 4);
	ck_assert_int_eq(P11KM_EXIT_VERIFY, 5);
}
END_TEST

START_TEST(error_messages)
{
	int r = p11km_fail(P11KM_ERR_LOGIN, "login to '%s' failed: %s", "tok", "CKR_PIN_INCORRECT");

	ck_assert_int_eq(r, P11KM_ERR_LOGIN);
	ck_assert_str_eq(p11km_errmsg(r), "login to 'tok' failed: CKR_PIN_INCORRECT");
	/* the message belongs to its code: another code gets its generic text */
	ck_assert_str_eq(p11km_errmsg(P11KM_ERR_NOMEM), "out of memory");
	p11km_error_clear();
	ck_assert_str_eq(p11km_errmsg(P11KM_ERR_LOGIN), p11km_strerror(P11KM_ERR_LOGIN));
	/* long messages are cut, not overflowed */
	{
		char big[3000];
		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		p11km_fail(P11KM_ERR_IO, "%s", big);
		ck_assert_int_lt(strlen(p11km_errmsg(P11KM_ERR_IO)), sizeof(big) - 1);
	}
}
END_TEST

/* CK_RV by name, and their mapping onto p11km's errors and exit codes. */
START_TEST(ckr_names)
{
	static const struct { CK_RV rv; const char *name; int code; } want[] = {
		{ CKR_OK, "CKR_OK", P11KM_ERR_TOKEN },
		{ CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT", P11KM_ERR_LOGIN },
		{ CKR_PIN_LOCKED, "CKR_PIN_LOCKED", P11KM_ERR_LOGIN },
		{ CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN", P11KM_ERR_LOGIN },
		{ CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED", P11KM_ERR_TOKEN },
		{ CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT", P11KM_ERR_TOKEN },
		{ CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR", P11KM_ERR_TOKEN },
		{ CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR", P11KM_ERR_TOKEN },
	};
	char want_msg[128];

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int r;
		ck_assert_str_eq(p11km_ckr_name(want[i].rv), want[i].name);
		r = p11km_fail_ckr(want[i].rv, "tok", "C_Login");
		ck_assert_int_eq(r, want[i].code);
		ck_assert_int_eq(p11km_exit_code(r), 3);
		snprintf(want_msg, sizeof(want_msg), "tok: C_Login failed: %s", want[i].name);
		ck_assert_msg(strncmp(p11km_errmsg(r), want_msg, strlen(want_msg)) == 0, "%s",
		              p11km_errmsg(r));
		ck_assert(strchr(p11km_errmsg(r), '\n') == NULL);
	}
	/* what a token cannot do is said so (exit 1), never "try again" */
	static const CK_RV cannot[] = { CKR_FUNCTION_NOT_SUPPORTED, CKR_TOKEN_WRITE_PROTECTED,
	                                CKR_ATTRIBUTE_TYPE_INVALID };
	for (size_t i = 0; i < sizeof(cannot) / sizeof(cannot[0]); i++) {
		int r = p11km_fail_ckr(cannot[i], "tok", "C_CreateObject");
		ck_assert_int_eq(r, P11KM_ERR_UNSUPPORTED);
		ck_assert_int_eq(p11km_exit_code(r), 1);
		ck_assert_msg(strstr(p11km_errmsg(r), "does not support") != NULL ||
		              strstr(p11km_errmsg(r), "read-only") != NULL, "%s", p11km_errmsg(r));
		ck_assert_msg(strstr(p11km_errmsg(r), "try again") == NULL, "%s", p11km_errmsg(r));
	}
	/* an unknown value is still printed as a CKR_ name, never a bare number */
	ck_assert(strncmp(p11km_ckr_name(0x7ffffff1UL), "CKR_", 4) == 0);
	ck_assert_ptr_nonnull(strstr(p11km_ckr_name(0x7ffffff1UL), "7ffffff1"));
	/* classes and key types by name */
	ck_assert_str_eq(p11km_class_name(CKO_PRIVATE_KEY), "private");
	ck_assert_str_eq(p11km_class_name(CKO_CERTIFICATE), "cert");
	ck_assert_str_eq(p11km_key_type_name(CKK_EC), "ec");
	ck_assert_int_eq(p11km_keytype_parse("EC:P256"), P11KM_KEY_EC_P256);
	ck_assert_int_eq(p11km_keytype_parse("rsa:1024"), -1);
	ck_assert_str_eq(p11km_keytype_name(P11KM_KEY_RSA3072), "rsa:3072");
}
END_TEST

START_TEST(join_uris)
{
	char *u[] = { "pkcs11:token=a", "pkcs11:token=b" };
	char *s = p11km_join_uris(u, 2);

	ck_assert_str_eq(s, "pkcs11:token=a pkcs11:token=b");
	free(s);
	s = p11km_join_uris(u, 0);
	ck_assert_str_eq(s, "");
	free(s);
}
END_TEST

START_TEST(hex)
{
	static const unsigned char bytes[] = { 0x00, 0x01, 0xab, 0xff };
	unsigned char *out = NULL;
	size_t len = 0;
	char *s;

	s = p11km_hex(bytes, sizeof(bytes));
	ck_assert_str_eq(s, "0001abff");
	free(s);
	s = p11km_hex_colon(bytes, sizeof(bytes));
	ck_assert_str_eq(s, "00:01:ab:ff");
	free(s);
	s = p11km_hex(bytes, 0);
	ck_assert_str_eq(s, "");
	free(s);

	ck_assert_int_eq(p11km_unhex("0001abff", &out, &len), 0);
	ck_assert_int_eq(len, 4);
	ck_assert(memcmp(out, bytes, 4) == 0);
	free(out);
	ck_assert_int_eq(p11km_unhex("00:01:AB:Ff", &out, &len), 0);
	ck_assert(len == 4 && memcmp(out, bytes, 4) == 0);
	free(out);
	ck_assert_int_eq(p11km_unhex("0x0001abff", &out, &len), 0);
	ck_assert(len == 4 && memcmp(out, bytes, 4) == 0);
	free(out);

	out = (unsigned char *)"untouched";
	ck_assert_int_eq(p11km_unhex("abc", &out, &len), P11KM_ERR_USAGE);  /* odd length */
	ck_assert_int_eq(p11km_unhex("zz", &out, &len), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_unhex("0g", &out, &len), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_unhex("", &out, &len), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_unhex("0x", &out, &len), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_unhex(":", &out, &len), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_unhex("01 02", &out, &len), P11KM_ERR_USAGE);
	ck_assert_str_eq((char *)out, "untouched");
}
END_TEST

START_TEST(strings)
{
	char *s;

	s = p11km_strndup_trim("label   ", 8);
	ck_assert_str_eq(s, "label");
	free(s);
	/* NUL padding (tpm2-pkcs11) and mixed padding */
	s = p11km_strndup_trim("SW   TPM\0\0\0\0\0\0\0\0", 16);
	ck_assert_str_eq(s, "SW   TPM");
	free(s);
	s = p11km_strndup_trim("        ", 8);
	ck_assert_str_eq(s, "");
	free(s);
	s = p11km_asprintf("%s-%d", "a", 7);
	ck_assert_str_eq(s, "a-7");
	free(s);
	s = p11km_memdup("abc", 3);
	ck_assert(memcmp(s, "abc", 3) == 0);
	free(s);
	p11km_freezero(NULL, 10); /* NULL-safe */

	ck_assert(p11km_config_safe("pkcs11:token=T1"));
	ck_assert(!p11km_config_safe("pkcs11:token=T1;object=k")); /* ; ends a directive */
	ck_assert(p11km_config_safe("/etc/p11km/pin"));
	ck_assert(!p11km_config_safe(""));
	ck_assert(!p11km_config_safe(NULL));
	ck_assert(!p11km_config_safe("a\nb"));
	ck_assert(!p11km_config_safe("a\"b"));
	ck_assert(!p11km_config_safe("a{b"));
	ck_assert(!p11km_config_safe("$(x)"));
}
END_TEST

START_TEST(buffers)
{
	struct p11km_buf b = { 0 };

	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(p11km_buf_append(&b, "0123456789", 10), 0);
	ck_assert_int_eq(b.len, 10000);
	ck_assert_int_eq(b.data[b.len], '\0');
	ck_assert(memcmp(b.data + 9990, "0123456789", 10) == 0);
	p11km_buf_release(&b);
	ck_assert_ptr_null(b.data);
	ck_assert_int_eq(b.len, 0);
}
END_TEST

START_TEST(read_file)
{
	unsigned char *data = (unsigned char *)"x";
	size_t len = 0;
	int fd;
	char *s;

	ck_assert_int_eq(p11km_read_file(path("missing"), 100, &data, &len), P11KM_ERR_IO);
	ck_assert_int_eq(p11km_read_file(tmpdir, 100, &data, &len), P11KM_ERR_IO);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_IO), "directory"));
	fd = open(path("f"), O_CREAT | O_WRONLY, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "hello", 5), 5);
	close(fd);
	ck_assert_int_eq(p11km_read_file(path("f"), 4, &data, &len), P11KM_ERR_INPUT);
	s = slurp(path("f"), &len);
	ck_assert_int_eq(len, 5);
	ck_assert_str_eq(s, "hello"); /* NUL-terminated */
	free(s);
	/* an empty file gives an empty, non-NULL buffer */
	fd = open(path("empty"), O_CREAT | O_WRONLY, 0600);
	close(fd);
	s = slurp(path("empty"), &len);
	ck_assert_int_eq(len, 0);
	ck_assert_ptr_nonnull(s);
	free(s);
}
END_TEST

START_TEST(atomic_write)
{
	struct stat st;
	size_t len;
	char *s;

	/* new file, with its mode */
	ck_assert_int_eq(p11km_write_file_atomic(path("out"), "one", 3, 0600), 0);
	s = slurp(path("out"), &len);
	ck_assert(len == 3 && memcmp(s, "one", 3) == 0);
	free(s);
	ck_assert_int_eq(stat(path("out"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	/* replace, mode changes too */
	ck_assert_int_eq(p11km_write_file_atomic(path("out"), "second", 6, 0644), 0);
	s = slurp(path("out"), &len);
	ck_assert(len == 6 && memcmp(s, "second", 6) == 0);
	free(s);
	ck_assert_int_eq(stat(path("out"), &st), 0);
	ck_assert_int_eq(st.st_mode & 07777, 0644);
	ck_assert_int_eq(count_files(), 1);
	ck_assert(!has_temp_file());
}
END_TEST

START_TEST(atomic_write_symlink)
{
	size_t len;
	char *s;
	int r;

	ck_assert_int_eq(p11km_write_file_atomic(path("target"), "keep", 4, 0600), 0);
	ck_assert_int_eq(symlink(path("target"), path("link")), 0);
	r = p11km_write_file_atomic(path("link"), "evil", 4, 0600);
	ck_assert_int_eq(r, P11KM_ERR_IO);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(r), "symbolic link"));
	s = slurp(path("target"), &len);
	ck_assert(len == 4 && memcmp(s, "keep", 4) == 0);
	free(s);
	/* a dangling symlink is refused as well (it would create its target) */
	ck_assert_int_eq(symlink(path("nowhere"), path("dangling")), 0);
	ck_assert_int_eq(p11km_write_file_atomic(path("dangling"), "x", 1, 0600), P11KM_ERR_IO);
	ck_assert_int_eq(access(path("nowhere"), F_OK), -1);
	ck_assert(!has_temp_file());
	ck_assert_int_eq(count_files(), 3);
}
END_TEST

START_TEST(atomic_write_failures)
{
	size_t len;
	char *s;

	/* a directory in the way */
	ck_assert_int_eq(mkdir(path("dir"), 0700), 0);
	ck_assert_int_eq(p11km_write_file_atomic(path("dir"), "x", 1, 0600), P11KM_ERR_IO);
	/* a missing parent directory */
	ck_assert_int_eq(p11km_write_file_atomic(path("nodir/file"), "x", 1, 0600), P11KM_ERR_IO);
	ck_assert(!has_temp_file());
	/* a read-only directory, where the temp file cannot be made (not for
	 * root, who may write anyway): the old content stays */
	ck_assert_int_eq(mkdir(path("ro"), 0700), 0);
	{
		char f[600];
		snprintf(f, sizeof(f), "%s/file", path("ro"));
		ck_assert_int_eq(p11km_write_file_atomic(f, "old", 3, 0600), 0);
		ck_assert_int_eq(chmod(path("ro"), 0500), 0);
		if (geteuid() != 0) {
			ck_assert_int_eq(p11km_write_file_atomic(f, "new", 3, 0600), P11KM_ERR_IO);
			s = slurp(f, &len);
			ck_assert(len == 3 && memcmp(s, "old", 3) == 0);
			free(s);
		}
		chmod(path("ro"), 0700);
		unlink(f);
	}
	ck_assert(!has_temp_file());
	ck_assert_int_eq(count_files(), 2);
}
END_TEST

/* A write that fails half way (file size limit) leaves no temp file and
 * the old content. */
START_TEST(atomic_write_enospc)
{
	size_t len;
	char *s;
	char *big = calloc(1, 1 << 20);
	pid_t pid;
	int status;

	ck_assert_int_eq(p11km_write_file_atomic(path("f"), "old", 3, 0600), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* RLIMIT_FSIZE: writes beyond 4 KiB fail with EFBIG */
		signal(SIGXFSZ, SIG_IGN);
		struct rlimit rl = { 4096, 4096 };
		setrlimit(RLIMIT_FSIZE, &rl);
		_exit(p11km_write_file_atomic(path("f"), big, 1 << 20, 0600) == P11KM_ERR_IO ? 0 : 1);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	free(big);
	s = slurp(path("f"), &len);
	ck_assert(len == 3 && memcmp(s, "old", 3) == 0);
	free(s);
	ck_assert(!has_temp_file());
	ck_assert_int_eq(count_files(), 1);
}
END_TEST

/* A lock this process holds is joined, not waited for; another process
 * waits until it is released, and is told it waited. */
START_TEST(locks)
{
	struct p11km_lock *a = NULL, *b = NULL;
	int nested = -1, fds[2], status;
	char c;
	pid_t pid;

	ck_assert_int_eq(p11km_lock_take(path(""), P11KM_LOCK_DIR, NULL, 0, P11KM_ERR_IO, &a,
	                                 &nested), 0);
	ck_assert_int_eq(nested, 0);
	ck_assert_int_eq(p11km_lock_take(path(""), P11KM_LOCK_DIR, NULL, 0, P11KM_ERR_IO, &b,
	                                 &nested), 0);
	ck_assert_int_eq(nested, 1);
	ck_assert(p11km_lock_is(a, path("")));
	p11km_lock_release(b);
	/* still held after one release: flock(1) cannot take it at once */
	{
		char cmd[700];
		snprintf(cmd, sizeof(cmd), "flock -n '%s' true", path(""));
		ck_assert_int_ne(system(cmd), 0);
		p11km_lock_release(a);
		ck_assert_int_eq(system(cmd), 0);
	}
	/* held by another process: taken once it lets go, and said so (1) */
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], STDOUT_FILENO);
		execlp("flock", "flock", path(""), "sh", "-c", "echo x; sleep 0.3", (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	ck_assert_int_eq(read(fds[0], &c, 1), 1);
	close(fds[0]);
	ck_assert_int_eq(p11km_lock_take(path(""), P11KM_LOCK_DIR, NULL, 0, P11KM_ERR_TOKEN, &a,
	                                 NULL), P11KM_ERR_TOKEN);
	ck_assert_int_eq(p11km_lock_take(path(""), P11KM_LOCK_DIR, NULL, 10000, P11KM_ERR_IO, &a,
	                                 NULL), 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	p11km_lock_release(a);
	/* a lock file is created 0600, never through a symbolic link */
	ck_assert_int_eq(p11km_lock_take(path("f.lock"), P11KM_LOCK_CREATE, NULL, 0, P11KM_ERR_IO,
	                                 &a, NULL), 0);
	{
		struct stat st;
		ck_assert_int_eq(stat(path("f.lock"), &st), 0);
		ck_assert_int_eq(st.st_mode & 07777, 0600);
	}
	p11km_lock_release(a);
	ck_assert_int_eq(symlink(path("f.lock"), path("l.lock")), 0);
	ck_assert_int_eq(p11km_lock_take(path("l.lock"), P11KM_LOCK_CREATE, NULL, 0, P11KM_ERR_IO,
	                                 &a, NULL), P11KM_ERR_IO);
	p11km_lock_release(NULL);
}
END_TEST

/* The lock directory: made 0700; one anybody may write to is refused. */
START_TEST(lock_dir)
{
	struct stat st;
	char *d = NULL;

	ck_assert_int_eq(p11km_lock_dir(path("locks"), &d), 0);
	ck_assert_str_eq(d, path("locks"));
	ck_assert_int_eq(stat(d, &st), 0);
	ck_assert(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700);
	free(d);
	d = NULL;
	ck_assert_int_eq(mkdir(path("open"), 0700), 0);
	ck_assert_int_eq(chmod(path("open"), 0777), 0);
	ck_assert_int_eq(p11km_lock_dir(path("open"), &d), P11KM_ERR_IO);
	ck_assert_ptr_null(d);
	ck_assert_int_eq(p11km_write_file_atomic(path("file"), "x", 1, 0600), 0);
	ck_assert_int_eq(p11km_lock_dir(path("file"), &d), P11KM_ERR_IO);
	setenv("P11KM_LOCK_DIR", path("env"), 1);
	ck_assert_int_eq(p11km_lock_dir(NULL, &d), 0);
	ck_assert_str_eq(d, path("env"));
	unsetenv("P11KM_LOCK_DIR");
	free(d);
}
END_TEST

START_TEST(split_words)
{
	char *w[5], *buf = NULL;

	/* systemd's ExecStart= rules, no shell: the words as a program gets them */
	ck_assert_int_eq(p11km_split_words("t", "  nginx -s\treload ", w, 4, &buf), 3);
	ck_assert_str_eq(w[0], "nginx");
	ck_assert_str_eq(w[2], "reload");
	ck_assert_ptr_null(w[3]);
	free(buf);
	ck_assert_int_eq(p11km_split_words("t", "/bin/x 'a b' \"x;y \\\"q\\\"\" c\\ d", w, 4,
	                                   &buf), 4);
	ck_assert_str_eq(w[1], "a b");
	ck_assert_str_eq(w[2], "x;y \"q\"");
	ck_assert_str_eq(w[3], "c d");
	free(buf);
	ck_assert_int_eq(p11km_split_words("t", "a'b'\"c\" ''", w, 4, &buf), 2);
	ck_assert_str_eq(w[0], "abc");
	ck_assert_str_eq(w[1], "");
	free(buf);
	/* refused, naming what: never a half-split command */
	static const char *bad[] = { "x 'a", "x \"a", "x a\\", "   ", "a b c d e" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(p11km_split_words("--reload", bad[i], w, 4, &buf), P11KM_ERR_USAGE);
		ck_assert(strncmp(p11km_errmsg(P11KM_ERR_USAGE), "--reload: ", 10) == 0);
		free(buf);
	}
}
END_TEST

static Suite *
util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("util");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, error_codes);
	tcase_add_test(tc, error_messages);
	tcase_add_test(tc, ckr_names);
	tcase_add_test(tc, join_uris);
	tcase_add_test(tc, hex);
	tcase_add_test(tc, strings);
	tcase_add_test(tc, buffers);
	tcase_add_test(tc, read_file);
	tcase_add_test(tc, split_words);
	tcase_add_test(tc, atomic_write);
	tcase_add_test(tc, atomic_write_symlink);
	tcase_add_test(tc, atomic_write_failures);
	tcase_add_test(tc, atomic_write_enospc);
	tcase_add_test(tc, locks);
	tcase_add_test(tc, lock_dir);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
		return p11km_check_run(util_suite());
}
