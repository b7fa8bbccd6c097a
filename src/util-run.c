/* util-run.c: the one subprocess runner (OpenSSH misc.c subprocess() as the
 * model): no shell, a scrubbed environment, stdin/stdout/stderr by flags,
 * an optional user switch and a timeout. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "p11km/run.h"
#include "p11km/util.h"

extern char **environ;

/* --- the environment ------------------------------------------------------ */

static char **hidden;
static size_t n_hidden;

int
p11km_run_env_hide(const char *name)
{
	char **h;

	for (size_t i = 0; i < n_hidden; i++)
		if (strcmp(hidden[i], name) == 0)
			return 0;
	if ((h = realloc(hidden, (n_hidden + 1) * sizeof(*h))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	hidden = h;
	if ((hidden[n_hidden] = strdup(name)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	n_hidden++;
	return 0;
}

/* Does "VAR=value" (or "VAR") name the variable name? */
static int
names(const char *kv, const char *name)
{
	size_t l = strlen(name);

	return strncmp(kv, name, l) == 0 && (kv[l] == '=' || kv[l] == '\0');
}

static int
dropped(const char *kv, char *const *add, size_t n_add)
{
	size_t l = strcspn(kv, "=");

	for (size_t i = 0; i < n_hidden; i++)
		if (names(kv, hidden[i]))
			return 1;
	for (size_t i = 0; i < n_add; i++)
		if (strncmp(add[i], kv, l) == 0 && add[i][l] == '=')
			return 1;
	return 0;
}

char **
p11km_run_child_env(char *const *add, size_t n_add)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ != NULL && environ[n] != NULL)
		n++;
	if ((env = calloc(n + n_add + 1, sizeof(*env))) == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!dropped(environ[i], add, n_add))
			env[k++] = environ[i];
	for (size_t i = 0; i < n_add; i++) {
		int hide = 0;
		for (size_t j = 0; j < n_hidden; j++)
			hide |= names(add[i], hidden[j]);
		if (!hide)
			env[k++] = add[i];
	}
	env[k] = NULL;
	return env;
}

/* Leave o->unset out of what the child inherits (what o->env adds stays). */
static void
drop_inherited(char **env, const struct p11km_run_opts *o)
{
	size_t k = 0;

	for (size_t i = 0; o->unset != NULL && env[i] != NULL; i++) {
		int drop = 0, added = 0;
		for (size_t j = 0; j < o->n_env; j++)
			added |= env[i] == o->env[j];
		for (const char *const *u = o->unset; !added && *u != NULL; u++)
			drop |= names(env[i], *u);
		if (!drop)
			env[k++] = env[i];
	}
	if (o->unset != NULL)
		env[k] = NULL;
}

/* --- running ------------------------------------------------------------- */

void
p11km_run_result_release(struct p11km_run_result *res)
{
	free(res->out);
	free(res->err);
	memset(res, 0, sizeof(*res));
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* In the child, after fork: only async-signal-safe calls.  Exec failures
 * go to the parent as an errno through report (close-on-exec). */
static void __attribute__((noreturn))
child(char *const argv[], const struct p11km_run_opts *o, char **env, int in, int out, int err,
      int report)
{
	int null = open("/dev/null", O_RDWR);
	int e;

	signal(SIGPIPE, SIG_DFL);
	if (o->timeout > 0)
		setpgid(0, 0); /* so that a timeout kills what the child started too */
	if (null < 0 || dup2(in >= 0 ? in : null, 0) < 0 || dup2(out >= 0 ? out : null, 1) < 0 ||
	    dup2(err >= 0 ? err : null, 2) < 0)
		goto fail;
	if ((o->flags & P11KM_RUN_DROP_PRIV) &&
	    (setgroups(0, NULL) != 0 || setgid(o->gid) != 0 || setuid(o->uid) != 0 ||
	     getuid() != o->uid))
		goto fail;
	if (o->flags & P11KM_RUN_PATH)
		execvpe(argv[0], argv, env);
	else
		execve(argv[0], argv, env);
fail:
	e = errno;
	if (write(report, &e, sizeof(e)) < 0) { /* nothing more to do */ }
	_exit(127);
}

/* Read what the child writes until both pipes close or time runs out. */
static int
collect(pid_t pid, int *out, int *err, const struct p11km_run_opts *o,
        struct p11km_buf *ob, struct p11km_buf *eb, int *timed_out)
{
	struct timespec start;
	int r = 0;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (*out >= 0 || *err >= 0) {
		struct pollfd pf[2] = { { *out, POLLIN, 0 }, { *err, POLLIN, 0 } };
		int wait_ms = -1, n;
		if (o->timeout > 0) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			long ms = (long)o->timeout * 1000 - ((now.tv_sec - start.tv_sec) * 1000 +
			          (now.tv_nsec - start.tv_nsec) / 1000000);
			if (ms <= 0) {
				*timed_out = 1;
				kill(-pid, SIGKILL);
				kill(pid, SIGKILL);
				break;
			}
			wait_ms = (int)ms;
		}
		if ((n = poll(pf, 2, wait_ms)) < 0) {
			if (errno == EINTR)
				continue;
			return p11km_fail(P11KM_ERR_IO, "poll: %s", strerror(errno));
		}
		for (int i = 0; i < 2; i++) {
			char chunk[4096];
			int *fd = i == 0 ? out : err;
			if (*fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t got = read(*fd, chunk, sizeof(chunk));
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0) {
				close_fd(fd);
				continue;
			}
			if (r == 0)
				r = p11km_buf_append(i == 0 ? ob : eb, chunk, (size_t)got);
		}
	}
	return r;
}

/* "'prog' failed (exit 3): its last line on stderr" */
static int
failed(const char *prog, const struct p11km_run_result *res)
{
	const char *last = NULL;
	char *copy = NULL;
	int st = res->status;

	if (res->err != NULL && res->err_len > 0 && (copy = strdup(res->err)) != NULL) {
		size_t l = strlen(copy);
		while (l > 0 && (copy[l - 1] == '\n' || copy[l - 1] == '\r'))
			copy[--l] = '\0';
		last = strrchr(copy, '\n');
		last = last ? last + 1 : copy;
	}
	if (res->timed_out)
		p11km_fail(P11KM_ERR_FAILED, "'%s' did not finish in time and was stopped", prog);
	else
		p11km_fail(P11KM_ERR_FAILED, "'%s' failed (%s %d)%s%s", prog,
		           WIFEXITED(st) ? "exit" : "signal",
		           WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st),
		           last && *last ? ": " : "", last ? last : "");
	free(copy);
	return P11KM_ERR_FAILED;
}

/* The child's stdin: the whole input in a pipe before the child starts (it
 * must fit: no SIGPIPE can then reach this process, and no deadlock). */
static int
input_pipe(const struct p11km_run_opts *o, int fds[2])
{
	if (o->input == NULL)
		return 0;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return p11km_fail(P11KM_ERR_IO, "pipe: %s", strerror(errno));
	int cap = fcntl(fds[1], F_GETPIPE_SZ);
	if (cap > 0 && o->input_len > (size_t)cap)
		return p11km_fail(P11KM_ERR_USAGE, "input for a helper program is longer than %d "
		                  "bytes", cap);
	if (p11km_write_all(fds[1], o->input, o->input_len) < 0)
		return p11km_fail(P11KM_ERR_IO, "pipe: %s", strerror(errno));
	close_fd(&fds[1]);
	return 0;
}

int
p11km_run_ex(char *const argv[], const struct p11km_run_opts *o, struct p11km_run_result *res)
{
	static const struct p11km_run_opts none = { 0 };
	struct p11km_buf ob = { 0 }, eb = { 0 };
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, rep[2] = { -1, -1 };
	int r, e = 0;
	char **env = NULL;
	pid_t pid;

	memset(res, 0, sizeof(*res));
	if (o == NULL)
		o = &none;
	if ((env = p11km_run_child_env(o->env, o->n_env)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	drop_inherited(env, o);
	if ((r = input_pipe(o, in)) < 0)
		goto out;
	if (((o->flags & P11KM_RUN_CAPTURE_STDOUT) && pipe2(out, O_CLOEXEC) < 0) ||
	    (!(o->flags & P11KM_RUN_STDERR_DISCARD) && pipe2(err, O_CLOEXEC) < 0) ||
	    pipe2(rep, O_CLOEXEC) < 0) {
		r = p11km_fail(P11KM_ERR_IO, "unable to run '%s': %s", argv[0], strerror(errno));
		goto out;
	}
	fflush(stdout);
	fflush(stderr);
	if ((pid = fork()) < 0) {
		r = p11km_fail(P11KM_ERR_IO, "unable to run '%s': fork: %s", argv[0], strerror(errno));
		goto out;
	}
	if (pid == 0)
		child(argv, o, env, in[0], out[1], err[1], rep[1]);
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&err[1]);
	close_fd(&rep[1]);
	r = collect(pid, &out[0], &err[0], o, &ob, &eb, &res->timed_out);
	while (waitpid(pid, &res->status, 0) < 0 && errno == EINTR)
		;
	if (read(rep[0], &e, sizeof(e)) == (ssize_t)sizeof(e)) {
		r = p11km_fail(P11KM_ERR_UNSUPPORTED, "unable to run '%s': %s%s", argv[0],
		               strerror(e), e == ENOENT ? " (is it installed?)" : "");
		goto out;
	}
	if (r < 0)
		goto out;
	if (((o->flags & P11KM_RUN_CAPTURE_STDOUT) && ob.data == NULL &&
	     (r = p11km_buf_append(&ob, "", 0)) < 0) ||
	    (!(o->flags & P11KM_RUN_STDERR_DISCARD) && eb.data == NULL &&
	     (r = p11km_buf_append(&eb, "", 0)) < 0))
		goto out;
	res->out = (char *)ob.data;
	res->out_len = ob.len;
	res->err = (char *)eb.data;
	res->err_len = eb.len;
	ob.data = eb.data = NULL;
	if (res->timed_out || !WIFEXITED(res->status) ||
	    (WEXITSTATUS(res->status) != 0 && !(o->flags & P11KM_RUN_ANY_EXIT)))
		r = failed(argv[0], res);
out:
	for (int i = 0; i < 2; i++) {
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&err[i]);
		close_fd(&rep[i]);
	}
	p11km_buf_release(&ob);
	p11km_buf_release(&eb);
	free(env);
	return r;
}

int
p11km_run(char *const argv[], char **out, size_t *out_len)
{
	struct p11km_run_opts o = { .flags = P11KM_RUN_PATH |
	                                     (out != NULL ? P11KM_RUN_CAPTURE_STDOUT : 0) };
	struct p11km_run_result res;
	int r = p11km_run_ex(argv, &o, &res);

	if (r == 0 && out != NULL) {
		*out = res.out;
		*out_len = res.out_len;
		res.out = NULL;
	}
	p11km_run_result_release(&res);
	return r;
}
