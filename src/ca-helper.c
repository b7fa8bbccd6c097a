/* ca-helper.c: certmonger-compatible CA helpers (certmonger's
 * doc/submit.txt): the helper runs without a shell, through the one
 * subprocess runner (PIN variables never reach it), with
 * CERTMONGER_OPERATION and the request in its environment; its exit
 * status says what happened:
 *   0 issued (certificate, PEM, on stdout)   1 wait: stdout is a cookie
 *   2 rejected (message on stdout)           3 CA unreachable, try later
 *   4 helper underconfigured                 5 wait: delay, then a cookie
 *   6 operation not supported                (others: failed)
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "p11km/ca.h"
#include "p11km/run.h"
#include "p11km/util.h"

#define HELPER_TIMEOUT_DEFAULT 300  /* seconds for one run of a helper */
#define HELPER_COOKIE_MAX 4096

enum {
	H_ISSUED = 0, H_WAIT = 1, H_REJECTED = 2, H_UNREACHABLE = 3, H_UNDERCONFIGURED = 4,
	H_WAIT_WITH_DELAY = 5, H_UNSUPPORTED = 6,
};

/* The request as PEM text (malloc'ed). */
static char *
csr_pem(const unsigned char *csr, size_t csr_len)
{
	const unsigned char *q = csr;
	X509_REQ *req = d2i_X509_REQ(NULL, &q, (long)csr_len);
	BIO *bio = BIO_new(BIO_s_mem());
	char *data = NULL, *s = NULL;
	long n;

	if (req != NULL && bio != NULL && PEM_write_bio_X509_REQ(bio, req) == 1 &&
	    (n = BIO_get_mem_data(bio, &data)) > 0)
		s = p11km_asprintf("%.*s", (int)n, data);
	BIO_free(bio);
	X509_REQ_free(req);
	return s;
}

/* The first line of the helper's output, for a message (static). */
static const char *
first_line(const char *out)
{
	static char line[256];
	size_t n = out ? strcspn(out, "\r\n") : 0;

	if (n == 0)
		return "no message";
	snprintf(line, sizeof(line), "%.*s", (int)(n < sizeof(line) - 1 ? n : sizeof(line) - 1), out);
	return line;
}

/* The variables of the protocol: what p11km's own environment holds of
 * them never reaches a helper (a stale cookie would turn a SUBMIT into
 * someone else's POLL); only those p11km sets. */
static const char *const protocol_vars[] = {
	"CERTMONGER_OPERATION", "CERTMONGER_CSR", "CERTMONGER_CA_PROFILE", "CERTMONGER_CA_COOKIE",
	"CERTMONGER_CERTIFICATE", NULL,
};

/* Run the helper for op with env (n "VAR=value" strings). */
static int
run_helper(const struct p11km_ca_profile *p, char *const *env, size_t n,
           struct p11km_run_result *res, int *status)
{
	struct p11km_run_opts o = { 0 };
	int r;


	if (p->n_command == 0)
		return p11km_fail(P11KM_ERR_INPUT, "CA profile '%s' names no helper command", p->name);
	o.flags = P11KM_RUN_CAPTURE_STDOUT | P11KM_RUN_ANY_EXIT;
	o.env = env;
	o.n_env = n;
	o.unset = protocol_vars;
	o.timeout = p->timeout > 0 ? (unsigned)p->timeout : HELPER_TIMEOUT_DEFAULT;
	r = p11km_run_ex(p->command, &o, res);
	if (r < 0)
		return r;
	if (!WIFEXITED(res->status))
		return p11km_fail(P11KM_ERR_FAILED, "the helper '%s' of CA '%s' was killed by signal %d",
		                  p->command[0], p->name, WTERMSIG(res->status));
	*status = WEXITSTATUS(res->status);
	return 0;
}

/* Exit statuses 2, 3, 4, 6 and unknown ones as errors. */
static int
helper_error(const struct p11km_ca_profile *p, const char *op, int st, const char *out)
{
	const char *m = first_line(out);

	switch (st) {
	case H_REJECTED:
		return p11km_fail(P11KM_ERR_FAILED, "CA '%s' rejected the request: %s", p->name, m);
	case H_UNREACHABLE:
		return p11km_fail(P11KM_ERR_FAILED, "CA '%s' could not be reached (helper exit 3: %s); "
		                  "try again later", p->name, m);
	case H_UNDERCONFIGURED:
		return p11km_fail(P11KM_ERR_FAILED, "the helper of CA '%s' is not configured (exit 4: "
		                  "%s); fix its configuration or its arguments ('p11km ca show %s')",
		                  p->name, m, p->name);
	case H_UNSUPPORTED:
		return p11km_fail(P11KM_ERR_UNSUPPORTED, "the helper of CA '%s' does not support %s "
		                  "(exit 6)", p->name, op);
	default:
		return p11km_fail(P11KM_ERR_FAILED, "the helper of CA '%s' exited %d, which certmonger's "
		                  "helper protocol does not define (%s)", p->name, st, m);
	}
}

/* A cookie: the helper's text without its final newline, bounded. */
static int
take_cookie(const struct p11km_ca_profile *p, const char *s, size_t n, char **cookie)
{
	*cookie = NULL;
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	if (n == 0)
		return 0;
	if (n > HELPER_COOKIE_MAX || memchr(s, '\0', n) != NULL)
		return p11km_fail(P11KM_ERR_INPUT, "the helper of CA '%s' answered 'wait' with a cookie "
		                  "that is not text of at most %d bytes", p->name, HELPER_COOKIE_MAX);
	if ((*cookie = strndup(s, n)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return 0;
}

/* Exit 5: "DELAY\nCOOKIE...": seconds on the first line, then the cookie. */
static int
wait_with_delay(const struct p11km_ca_profile *p, const char *out, size_t len,
                struct p11km_ca_submit *sub)
{
	size_t l = strcspn(out, "\n");
	char *end;
	long d = strtol(out, &end, 10);

	if (l == 0 || end != out + l - (l > 0 && out[l - 1] == '\r') || d < 0 || d > 86400 * 366)
		return p11km_fail(P11KM_ERR_INPUT, "the helper of CA '%s' answered 'wait' (exit 5) "
		                  "without a delay in seconds on its first line", p->name);
	sub->delay = d;
	sub->pending = 1;
	return out[l] == '\n' ? take_cookie(p, out + l + 1, len - l - 1, &sub->cookie) : 0;
}

int
p11km_helper_submit(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                    const unsigned char *csr, size_t csr_len, struct p11km_ca_submit *sub,
                    char **chain, size_t *chain_len)
{
	struct p11km_run_result res = { 0 };
	const char *op = sub->cookie_in ? "POLL" : "SUBMIT";
	char *pem = NULL, *env[5] = { NULL };
	size_t n = 0;
	int r, st = -1;

	(void)ctx;
	*chain = NULL;
	if (p->n_command == 0)
		return p11km_fail(P11KM_ERR_INPUT, "CA profile '%s' names no helper command", p->name);
	if ((pem = csr_pem(csr, csr_len)) == NULL ||
	    (env[n++] = p11km_asprintf("CERTMONGER_OPERATION=%s", op)) == NULL ||
	    (env[n++] = p11km_asprintf("CERTMONGER_CSR=%s", pem)) == NULL ||
	    (p->template_name != NULL &&
	     (env[n++] = p11km_asprintf("CERTMONGER_CA_PROFILE=%s", p->template_name)) == NULL) ||
	    (sub->cookie_in != NULL &&
	     (env[n++] = p11km_asprintf("CERTMONGER_CA_COOKIE=%s", sub->cookie_in)) == NULL) ||
	    (sub->old_cert_pem != NULL &&
	     (env[n++] = p11km_asprintf("CERTMONGER_CERTIFICATE=%s", sub->old_cert_pem)) == NULL)) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (sub->step)
		sub->step(sub->step_arg, sub->cookie_in ? "poll" : "submit", p->command[0]);
	if ((r = run_helper(p, env, n, &res, &st)) < 0)
		goto out;
	switch (st) {
	case H_ISSUED:
		r = p11km_ca_reply_chain((const unsigned char *)res.out, res.out_len,
		                         "the helper's answer", csr, csr_len, chain, chain_len);
		if (r == 0 && sub->step)
			sub->step(sub->step_arg, "issued", p->name);
		break;
	case H_WAIT:
		sub->pending = 1;
		if ((r = take_cookie(p, res.out, res.out_len, &sub->cookie)) == 0 && sub->cookie == NULL)
			r = p11km_fail(P11KM_ERR_INPUT, "the helper of CA '%s' answered 'wait' (exit 1) "
			               "without a cookie", p->name);
		break;
	case H_WAIT_WITH_DELAY:
		r = wait_with_delay(p, res.out, res.out_len, sub);
		break;
	default:
		r = helper_error(p, op, st, res.out);
	}
	if (r == 0 && sub->pending && sub->step)
		sub->step(sub->step_arg, "pending", sub->cookie ? "the CA holds the request" :
		          "the CA asks to submit again later");
out:
	for (size_t i = 0; i < n; i++)
		free(env[i]);
	free(pem);
	p11km_run_result_release(&res);
	return r;
}

int
p11km_helper_roots(struct p11km_ctx *ctx, const struct p11km_ca_profile *p, char **pem,
                   size_t *pem_len)
{
	struct p11km_run_result res = { 0 };
	char *env[2] = { "CERTMONGER_OPERATION=FETCH-ROOTS", NULL };
	const char *b;
	int r, st = -1;

	(void)ctx;
	*pem = NULL;
	if (p->template_name != NULL &&
	    (env[1] = p11km_asprintf("CERTMONGER_CA_PROFILE=%s", p->template_name)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = run_helper(p, env, env[1] ? 2 : 1, &res, &st)) < 0)
		goto out;
	if (st != H_ISSUED) {
		r = helper_error(p, "FETCH-ROOTS", st, res.out);
		goto out;
	}
	/* nicknames, then PEM certificates: the certificates are what counts */
	if ((b = res.out ? strstr(res.out, "-----BEGIN ") : NULL) == NULL) {
		r = p11km_fail(P11KM_ERR_INPUT, "the helper of CA '%s' answered FETCH-ROOTS without a "
		               "certificate", p->name);
		goto out;
	}
	r = p11km_ca_reply_certs((const unsigned char *)b, res.out_len - (size_t)(b - res.out),
	                         "the helper's roots", pem, pem_len);
out:
	free(env[1]);
	p11km_run_result_release(&res);
	return r;
}
