/* store-nss.c: NSS databases through certutil (libnss3-tools). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p11km/audit.h"
#include "p11km/cert.h"
#include "p11km/run.h"
#include "p11km/store.h"
#include "p11km/util.h"

static char *
nss_db(const struct p11km_store *st)
{
	return p11km_asprintf("sql:%s", st->path);
}

static int
db_exists(const struct p11km_store *st)
{
	char *p = p11km_asprintf("%s/cert9.db", st->path);
	struct stat sb;
	int ok = p != NULL && stat(p, &sb) == 0;

	free(p);
	return ok;
}

/* Certificates of one nickname, as PEM. */
static int
load_nick(struct p11km_store *st, const char *db, const char *nick)
{
	char *argv[] = { "certutil", "-L", "-d", (char *)db, "-n", (char *)nick, "-a", NULL };
	STACK_OF(X509) *sk = NULL;
	char *out = NULL;
	size_t len = 0;
	int r;

	if ((r = p11km_run(argv, &out, &len)) < 0)
		return r;
	if (p11km_certs_parse((unsigned char *)out, len, "certutil output", 64, &sk) == 0)
		for (int i = 0; r == 0 && i < sk_X509_num(sk); i++)
			r = p11km_store_push(st, sk_X509_value(sk, i), nick, 0);
	p11km_error_clear();
	sk_X509_pop_free(sk, X509_free);
	free(out);
	return r;
}

/* The database directory's lock; made first (0700, as certutil -N
 * wants it) for a change. */
static int
nss_lock(struct p11km_ctx *ctx, struct p11km_store *st, int for_write)
{
	(void)ctx;
	return p11km_store_lock_dir(st, st->path, for_write, 0700);
}

static int
nss_load(struct p11km_ctx *ctx, struct p11km_store *st, int for_write, STACK_OF(X509) *wanted)
{
	char *db = nss_db(st), *out = NULL, *line, *save = NULL;
	char *argv[] = { "certutil", "-L", "-d", db, NULL };
	size_t len = 0;
	int r, lineno = 0;

	(void)ctx;
	(void)for_write;
	(void)wanted;
	if (db == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (!db_exists(st)) {
		free(db);
		return 0;
	}
	if ((r = p11km_run(argv, &out, &len)) < 0)
		goto out;
	for (line = strtok_r(out, "\n", &save); line != NULL && r == 0;
	     line = strtok_r(NULL, "\n", &save)) {
		char *end;
		if (lineno++ < 2 || *line == '\0')
			continue; /* the two header lines */
		/* "<nickname padded>   <trust>": drop the trust column. */
		end = line + strlen(line);
		while (end > line && end[-1] == ' ')
			end--;
		while (end > line && end[-1] != ' ')
			end--;
		while (end > line && end[-1] == ' ')
			end--;
		*end = '\0';
		if (*line != '\0')
			r = load_nick(st, db, line);
	}
out:
	free(out);
	free(db);
	return r;
}

/* One audit line for a certificate added to or removed from the database
 * (certutil makes the change, so the file transaction does not see it). */
static void
nss_audit(const struct p11km_store *st, const char *action, const char *nick, X509 *x,
          int r)
{
	struct p11km_audit_event ev = { .action = action, .file = st->path, .object = nick,
	                                .cls = "cert" };
	unsigned char *der = NULL;
	size_t dlen = 0;

	if (x != NULL && p11km_cert_der(x, &der, &dlen) == 0) {
		ev.cert = der;
		ev.cert_len = dlen;
	}
	ev.error = r < 0 ? "certutil failed" : NULL;
	p11km_audit(&ev);
	free(der);
}

static int
nss_commit(struct p11km_ctx *ctx, struct p11km_store *st, STACK_OF(X509) *add,
           const size_t *rm, size_t n_rm)
{
	char *db = nss_db(st), tmpl[] = "/tmp/p11km-nss-XXXXXX";
	size_t total = (size_t)sk_X509_num(add) + n_rm, done = 0, n_added = 0;
	char **added = NULL;
	int r = 0, fd = -1;

	(void)ctx;
	if (db == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = p11km_audit_ready()) < 0)
		goto out;
	if (!db_exists(st)) {
		char *argv[] = { "certutil", "-N", "-d", db, "--empty-password", NULL };
		if (mkdir(st->path, 0700) < 0 && errno != EEXIST) {
			r = p11km_fail(P11KM_ERR_IO, "unable to create '%s': %s", st->path,
			               strerror(errno));
			goto out;
		}
		if ((r = p11km_run(argv, NULL, NULL)) < 0)
			goto out;
	}
	for (size_t i = 0; i < n_rm && r == 0; i++) {
		char *argv[] = { "certutil", "-D", "-d", db, "-n", st->names[rm[i]], NULL };
		r = p11km_run(argv, NULL, NULL);
		nss_audit(st, "destroy", st->names[rm[i]], sk_X509_value(st->certs, (int)rm[i]), r);
		p11km_progress("updating NSS database", ++done, total);
	}
	if (r == 0 && sk_X509_num(add) > 0 && (fd = mkstemp(tmpl)) < 0) {
		r = p11km_fail(P11KM_ERR_IO, "unable to create a temporary file: %s", strerror(errno));
		goto out;
	}
	if (sk_X509_num(add) > 0 && (added = calloc((size_t)sk_X509_num(add), sizeof(*added))) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < sk_X509_num(add) && r == 0; i++) {
		X509 *x = sk_X509_value(add, i);
		char *name = p11km_cert_short_name(x, 48), *fp = p11km_cert_fingerprint(x);
		char *nick = name && fp ? p11km_asprintf("%s [%.8s]", name, fp) : NULL;
		unsigned char *der = NULL;
		size_t dlen = 0;
		free(name);
		free(fp);
		if (nick == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			break;
		}
		if ((r = p11km_cert_der(x, &der, &dlen)) == 0) {
			if (ftruncate(fd, 0) < 0 || pwrite(fd, der, dlen, 0) != (ssize_t)dlen)
				r = p11km_fail(P11KM_ERR_IO, "unable to write '%s': %s", tmpl,
				               strerror(errno));
		}
		if (r == 0) {
			char *argv[] = { "certutil", "-A", "-d", db, "-n", nick, "-t", "C,,",
			                 "-i", tmpl, NULL };
			r = p11km_run(argv, NULL, NULL);
			nss_audit(st, "create", nick, x, r);
		}
		free(der);
		if (r == 0)
			added[n_added++] = nick;
		else
			free(nick);
		p11km_progress("updating NSS database", ++done, total);
	}
	if (r < 0 && n_added > 0) {
		/* Take back what this run added: the database changes in one go or
		 * not at all (as the token and file stores do). */
		char *msg = strdup(p11km_errmsg(r));
		int saved = r, was = p11km_audit_rollback(1);
		for (size_t i = n_added; i-- > 0;) {
			char *argv[] = { "certutil", "-D", "-d", db, "-n", added[i], NULL };
			int rr = p11km_run(argv, NULL, NULL);
			nss_audit(st, "destroy", added[i], NULL, rr);
			if (rr < 0)
				p11km_warn("could not take '%s' back out of '%s'", added[i], st->path);
		}
		p11km_audit_rollback(was);
		r = p11km_fail(saved, "%s; the %zu certificate%s added before were taken back out",
		               msg ? msg : p11km_strerror(saved), n_added, n_added == 1 ? "" : "s");
		free(msg);
	}
out:
	for (size_t i = 0; i < n_added; i++)
		free(added[i]);
	free(added);
	if (fd >= 0) {
		close(fd);
		unlink(tmpl);
	}
	free(db);
	return r;
}

static int
nss_exists(const struct p11km_store *st)
{
	return p11km_store_path_exists(st, 1);
}

const struct p11km_store_ops p11km_store_nss_ops = {
	.lock = nss_lock,
	.load = nss_load,
	.commit = nss_commit,
	.check_exists = nss_exists,
};
