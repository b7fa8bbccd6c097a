/* ca-acme-http01.c: answering http-01 challenges (RFC 8555 8.3).
 *
 * --standalone ADDR:PORT: a responder in a child process that serves only
 * GET /.well-known/acme-challenge/TOKEN for the tokens of this order (404
 * for everything else) and is stopped when the order is done.
 * --webroot DIR: the key authorizations are written (atomically) as
 * DIR/.well-known/acme-challenge/TOKEN and removed afterwards.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "p11km/ca.h"
#include "p11km/txn.h"
#include "p11km/util.h"

#define PREFIX "/.well-known/acme-challenge/"

int
p11km_http01_init(struct p11km_http01 *h, const char *standalone, const char *webroot)
{
	struct sockaddr_in sa = { 0 };
	struct stat st;
	char host[64];
	const char *colon;
	long port;
	char *end;
	int one = 1;

	memset(h, 0, sizeof(*h));
	h->fd = -1;
	if (webroot != NULL) {
		if (stat(webroot, &st) != 0 || !S_ISDIR(st.st_mode))
			return p11km_fail(P11KM_ERR_USAGE, "--webroot '%s' is not a directory", webroot);
		h->webroot = webroot;
		return 0;
	}
	if (standalone == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "validation needs --standalone ADDR:PORT "
		                  "(a built-in responder), --webroot DIR (served by a running server) or --dns-hook CMD (dns-01)");
	colon = strrchr(standalone, ':');
	if (colon == NULL || (size_t)(colon - standalone) >= sizeof(host) || colon[1] == '\0')
		return p11km_fail(P11KM_ERR_USAGE, "--standalone '%s': give ADDR:PORT (127.0.0.1:80)",
		                  standalone);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - standalone), standalone);
	port = strtol(colon + 1, &end, 10);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	if (*end != '\0' || port < 1 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return p11km_fail(P11KM_ERR_USAGE, "--standalone '%s': give an IPv4 ADDR:PORT "
		                  "(127.0.0.1:80)", standalone);
	if ((h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return p11km_fail(P11KM_ERR_IO, "socket: %s", strerror(errno));
	setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(h->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(h->fd, 16) != 0) {
		int e = errno;
		close(h->fd);
		h->fd = -1;
		return p11km_fail(P11KM_ERR_IO, "--standalone: cannot listen on %s: %s", standalone,
		                  strerror(e));
	}
	return 0;
}

/* One connection: read the request line, answer, close. */
static void
serve_one(int c, char *const *token, char *const *keyauth, size_t n)
{
	char req[2048], *sp, *path, resp[1024];
	struct timeval tv = { 5, 0 };
	size_t len = 0;
	ssize_t k;
	int found = -1, w;

	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (len < sizeof(req) - 1 && (k = read(c, req + len, sizeof(req) - 1 - len)) > 0) {
		len += (size_t)k;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL)
			break;
	}
	req[len] = '\0';
	if (strncmp(req, "GET ", 4) == 0 && (path = req + 4) && (sp = strchr(path, ' ')) != NULL) {
		*sp = '\0';
		if (strncmp(path, PREFIX, strlen(PREFIX)) == 0)
			for (size_t i = 0; i < n; i++)
				if (strcmp(path + strlen(PREFIX), token[i]) == 0)
					found = (int)i;
	}
	if (found >= 0)
		w = snprintf(resp, sizeof(resp), "HTTP/1.0 200 OK\r\nContent-Type: "
		             "application/octet-stream\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
		             strlen(keyauth[found]), keyauth[found]);
	else
		w = snprintf(resp, sizeof(resp), "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n"
		             "Connection: close\r\n\r\n");
	if (w > 0 && (size_t)w < sizeof(resp))
		(void)p11km_write_all(c, resp, (size_t)w);
	close(c);
}

static int
webroot_write(struct p11km_http01 *h, char *const *token, char *const *keyauth, size_t n)
{
	char *d1 = p11km_asprintf("%s/.well-known", h->webroot);
	char *d2 = p11km_asprintf("%s/.well-known/acme-challenge", h->webroot);
	int r = 0;

	if (d1 == NULL || d2 == NULL || (h->files = calloc(n, sizeof(*h->files))) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((mkdir(d1, 0755) != 0 && errno != EEXIST) || (mkdir(d2, 0755) != 0 && errno != EEXIST)) {
		r = p11km_fail(P11KM_ERR_IO, "cannot create '%s': %s", d2, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		char *f = p11km_asprintf("%s/%s", d2, token[i]);
		if (f == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			break;
		}
		if ((r = p11km_write_file_atomic(f, keyauth[i], strlen(keyauth[i]), 0644)) == 0)
			h->files[h->n_files++] = f;
		else
			free(f);
	}
out:
	free(d1);
	free(d2);
	return r;
}

int
p11km_http01_start(struct p11km_http01 *h, char *const *token, char *const *keyauth, size_t n)
{
	pid_t pid;

	if (h->webroot != NULL)
		return webroot_write(h, token, keyauth, n);
	if (h->fd < 0)
		return p11km_fail(P11KM_ERR_FAILED, "the http-01 responder is not listening");
	fflush(NULL);
	if ((pid = fork()) < 0)
		return p11km_fail(P11KM_ERR_IO, "fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		signal(SIGTERM, SIG_DFL);
		for (;;) {
			int c = accept(h->fd, NULL, NULL);
			if (c >= 0)
				serve_one(c, token, keyauth, n);
			else if (errno != EINTR)
				_exit(1);
		}
	}
	h->pid = pid;
	p11km_verbose("http-01 responder listening (process %ld)", (long)pid);
	return 0;
}

void
p11km_http01_stop(struct p11km_http01 *h)
{
	if (h->pid > 0) {
		kill(h->pid, SIGTERM);
		while (waitpid(h->pid, NULL, 0) < 0 && errno == EINTR)
			;
		h->pid = 0;
	}
	if (h->fd >= 0) {
		close(h->fd);
		h->fd = -1;
	}
	for (size_t i = 0; i < h->n_files; i++) {
		/* written with p11km_write_file_atomic(): removed as audited */
		if (p11km_remove_file(h->files[i]) < 0)
			p11km_warn("%s", p11km_errmsg(P11KM_ERR_IO));
		free(h->files[i]);
	}
	free(h->files);
	h->files = NULL;
	h->n_files = 0;
}
