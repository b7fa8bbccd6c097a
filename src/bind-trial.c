/* bind-trial.c: start the engine probe (p11km-engine-probe) the way a
 * server starts: a fresh process, OPENSSL_CONF set, the key URI on stdin,
 * its problems on stdout; and only with a PIN p11km has proved (one try of
 * a PIN per run). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "p11km/bind.h"
#include "p11km/run.h"
#include "p11km/util.h"

/* Seconds the probe may take before it counts as hung: its own alarm
 * (bind-check.c) comes first, this is the backstop. */
#define PROBE_TIMEOUT 60

/* The probe: P11KM_ENGINE_PROBE, next to this program, or in
 * ../libexec/p11km/ from it (malloc'ed). */
static char *
probe_path(void)
{
	char self[4096], *slash, *p;
	const char *env = getenv("P11KM_ENGINE_PROBE");
	ssize_t n;

	if (env != NULL && *env != '\0')
		return strdup(env);
	if ((n = readlink("/proc/self/exe", self, sizeof(self) - 1)) <= 0)
		return NULL;
	self[n] = '\0';
	if ((slash = strrchr(self, '/')) == NULL)
		return NULL;
	*slash = '\0';
	if ((p = p11km_asprintf("%s/p11km-engine-probe", self)) != NULL && access(p, X_OK) == 0)
		return p;
	free(p);
	if ((p = p11km_asprintf("%s/../libexec/p11km/p11km-engine-probe", self)) != NULL &&
	    access(p, X_OK) == 0)
		return p;
	free(p);
	return NULL;
}

/* The PIN libp11 0.4.12 sends for a key URI: its pin-value, or what
 * BIO_gets() reads from its pin-source file (the first line with its line
 * end, at most 32 bytes).  Returns 0 when the engine has no PIN to send. */
static int
engine_pin(const char *key, char buf[33], size_t *len, int *from_file)
{
	struct p11km_uri *u = NULL;
	const char *v;
	struct stat st;
	ssize_t n = 0;
	int fd, have = 0;

	*len = 0;
	*from_file = 0;
	if (strncmp(key, "pkcs11:", 7) != 0 || p11km_uri_parse(key, &u) < 0) {
		p11km_error_clear();
		return 0;
	}
	if ((v = p11km_uri_pin_value(u)) != NULL) {
		*len = strlen(v) > 32 ? 32 : strlen(v);
		memcpy(buf, v, *len);
		have = 1;
	} else if ((v = p11km_uri_pin_source(u)) != NULL) {
		v += strncmp(v, "file:", 5) == 0 ? 5 : 0;
		if ((fd = open(v, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) >= 0) {
			if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (n = read(fd, buf, 32)) > 0) {
				char *nl = memchr(buf, '\n', (size_t)n);
				*len = nl ? (size_t)(nl - buf) + 1 : (size_t)n;
				have = 1;
			} else if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
				have = 1; /* libp11 would block on a FIFO: never the proved PIN */
			}
			close(fd);
		}
		*from_file = 1;
	}
	p11km_uri_free(u);
	return have;
}

/* One login per PIN per run: the probe logs in through the engine, a
 * second C_Login.  It may do so only with the PIN p11km's own login proved
 * right, byte for byte; else it is not started (1, a problem says why). */
static int
engine_pin_gate(const struct p11km_engine_trial *t, struct p11km_problems *pr)
{
	char buf[33];
	size_t len;
	int same, newline, file;

	if (!engine_pin(t->key, buf, &len, &file))
		return 0; /* the engine will not log in */
	same = t->pin != NULL && len == t->pin_len && memcmp(buf, t->pin, len) == 0;
	newline = file && t->pin != NULL && len == t->pin_len + 1 && buf[len - 1] == '\n' &&
	          memcmp(buf, t->pin, t->pin_len) == 0;
	OPENSSL_cleanse(buf, sizeof(buf));
	if (same)
		return 0;
	if (t->pin == NULL)
		p11km_problem_add(pr, "the engine check was not run: p11km's own login with this "
		                  "PIN did not succeed, and the engine's would be a second try of a "
		                  "PIN not known to be right; fix the PIN first");
	else
		p11km_problem_add(pr, "the engine check was not run: the server's engine would log in "
		                  "with another PIN than the one p11km logged in with%s, and spend one "
		                  "of the token's PIN tries", newline ? " (the PIN file ends with a "
		                  "newline, which libp11 0.4.12 sends as part of the PIN)" : "");
	return 1;
}

int
p11km_engine_try(const struct p11km_engine_trial *t, struct p11km_problems *pr)
{
	struct p11km_run_opts o = { 0 };
	struct p11km_run_result res;
	char *env[10], *probe, *line, *save = NULL;
	size_t n0 = pr->n, ne = 0;
	int r;

	if (t->user != NULL && getpwnam(t->user) == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "no user '%s' on this system; give the user "
		                  "the server's workers run as", t->user);
	if ((probe = probe_path()) == NULL)
		return p11km_fail(P11KM_ERR_FAILED, "p11km-engine-probe is not installed next to "
		                  "p11km (or in ../libexec/p11km); set P11KM_ENGINE_PROBE to its path");
	if (strlen(t->key) >= P11KM_PROBE_KEY_MAX) {
		free(probe);
		return p11km_fail(P11KM_ERR_USAGE, "the key URI is longer than %d bytes; shorten it",
		                  P11KM_PROBE_KEY_MAX - 1);
	}
	if (engine_pin_gate(t, pr)) {
		free(probe);
		return 0;
	}
	/* a fresh process, as a server starts: OpenSSL reads OPENSSL_CONF at init */
	char *args[] = { probe, (char *)t->openssl_cnf, "-",
	                 (char *)(t->cert ? t->cert : ""), (char *)(t->user ? t->user : ""),
	                 (char *)(t->module_path ? t->module_path : ""), NULL };
	for (size_t i = 0; i < t->n_env && ne < 8; i++)
		env[ne++] = t->env[i];
	if ((env[ne++] = p11km_asprintf("OPENSSL_CONF=%s", t->openssl_cnf)) == NULL) {
		free(probe);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	/* The key URI goes through stdin, not argv: it may carry pin-value, and
	 * any user can read a process's arguments.  libp11 prints its own lines
	 * to stderr (with the key URI): the problems come on stdout. */
	o.flags = P11KM_RUN_CAPTURE_STDOUT | P11KM_RUN_STDERR_DISCARD | P11KM_RUN_ANY_EXIT;
	o.input = t->key;
	o.input_len = strlen(t->key);
	o.env = env;
	o.n_env = ne;
	o.timeout = PROBE_TIMEOUT; /* the probe's own alarm comes first */
	r = p11km_run_ex(args, &o, &res);
	free(env[ne - 1]);
	free(probe);
	if (r < 0 && r != P11KM_ERR_FAILED) {
		p11km_run_result_release(&res);
		return r; /* it could not be started */
	}
	p11km_error_clear();
	for (line = res.out ? strtok_r(res.out, "\n", &save) : NULL; line != NULL;
	     line = strtok_r(NULL, "\n", &save))
		p11km_problem_add(pr, "%s", line);
	if (res.timed_out)
		p11km_problem_add(pr, "loading the key through the pkcs11 engine hung (stopped after "
		                  "%d s): check the module and the token", PROBE_TIMEOUT);
	else if (WIFSIGNALED(res.status))
		p11km_problem_add(pr, "loading the key through the pkcs11 engine %s (signal %d): "
		                  "check the module and the token", WTERMSIG(res.status) == SIGALRM ?
		                  "hung" : "crashed", WTERMSIG(res.status));
	else if (WEXITSTATUS(res.status) != 0 && pr->n == n0)
		p11km_problem_add(pr, "loading the key through the pkcs11 engine failed (the check "
		                  "exited with status %d): this module cannot be driven by the "
		                  "engine", WEXITSTATUS(res.status));
	p11km_run_result_release(&res);
	return 0;
}

