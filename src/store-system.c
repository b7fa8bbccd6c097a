/* store-system.c: the operating system's trust store, the distribution's way.
 *
 * Debian: one "<name>.crt" per root in /usr/local/share/ca-certificates/p11km/,
 * then update-ca-certificates.  RHEL/Fedora: the same in
 * /etc/pki/ca-trust/source/anchors/, then update-ca-trust extract.  The
 * file system root is --system-root or P11KM_SYSTEM_ROOT (tests), else "/".
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "p11km/cert.h"
#include "p11km/store.h"
#include "p11km/util.h"

#define DEBIAN_DIR "usr/local/share/ca-certificates"
#define RHEL_DIR "etc/pki/ca-trust/source/anchors"
#define DEBIAN_BUNDLE "etc/ssl/certs/ca-certificates.crt"
#define RHEL_BUNDLE "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"

static int
is_dir(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static char *
root_join(const struct p11km_store *st, const char *rel)
{
	const char *root = st->system_root;
	size_t l = strlen(root);

	return p11km_asprintf("%s%s%s", root, l > 0 && root[l - 1] == '/' ? "" : "/", rel);
}

/* Which family, and the directory p11km's anchors go to. */
static int
system_dir(const struct p11km_store *st, int *rhel, char **dir)
{
	char *deb = root_join(st, DEBIAN_DIR), *rh = root_join(st, RHEL_DIR);
	char *etc_deb = root_join(st, "etc/ssl/certs");
	int r = 0;

	*dir = NULL;
	if (deb == NULL || rh == NULL || etc_deb == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	} else if (is_dir(rh)) {
		/* first: RHEL also has /etc/ssl/certs (a link into /etc/pki) */
		*rhel = 1;
		*dir = strdup(rh);
	} else if (is_dir(etc_deb) || is_dir(deb)) {
		*rhel = 0;
		*dir = p11km_asprintf("%s/p11km", deb);
	} else {
		r = p11km_fail(P11KM_ERR_UNSUPPORTED,
		    "no system trust store under '%s' (neither Debian's %s nor RHEL's %s)",
		    st->system_root, "/" DEBIAN_DIR, "/" RHEL_DIR);
	}
	if (r == 0 && *dir == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	free(deb);
	free(rh);
	free(etc_deb);
	return r;
}

/* The anchors directory's lock (the one its changes take); made first for
 * a change. */
static int
system_lock(struct p11km_ctx *ctx, struct p11km_store *st, int for_write)
{
	char *dir = NULL;
	int rhel = 0, r;

	(void)ctx;
	if ((r = system_dir(st, &rhel, &dir)) < 0)
		return r;
	r = p11km_store_lock_dir(st, dir, for_write, 0755);
	free(dir);
	return r;
}

static int
system_load(struct p11km_ctx *ctx, struct p11km_store *st, int for_write, STACK_OF(X509) *wanted)
{
	char *dir = NULL;
	DIR *d;
	int rhel = 0, r;

	(void)ctx;
	(void)for_write;
	(void)wanted;
	if ((r = system_dir(st, &rhel, &dir)) < 0)
		return r;
	free(st->path);
	st->path = dir;
	if ((d = opendir(dir)) == NULL)
		return errno == ENOENT ? 0 : p11km_fail(P11KM_ERR_IO, "unable to open '%s': %s", dir,
		                                        strerror(errno));
	for (struct dirent *de; r == 0 && (de = readdir(d)) != NULL;) {
		size_t l = strlen(de->d_name);
		STACK_OF(X509) *sk = NULL;
		char *full;
		if (l < 5 || (strcmp(de->d_name + l - 4, ".crt") != 0 &&
		              strcmp(de->d_name + l - 4, ".pem") != 0))
			continue;
		if ((full = p11km_asprintf("%s/%s", dir, de->d_name)) == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			break;
		}
		if (p11km_certs_read(full, 2, &sk) == 0 && sk_X509_num(sk) == 1)
			r = p11km_store_push(st, sk_X509_value(sk, 0), de->d_name, 0);
		p11km_error_clear();
		sk_X509_pop_free(sk, X509_free);
		free(full);
	}
	closedir(d);
	return r;
}

/* Run the distribution's tool.  After a removal Debian's needs --fresh:
 * without it the links to a removed file stay (nothing "changed").  *ran is
 * set when the tool ran (update-ca-trust does not run off "/"). */
static int
update_tool(const struct p11km_store *st, int rhel, int removed, int *ran)
{
	int scratch = strcmp(st->system_root, "/") != 0;

	*ran = !(rhel && scratch);
	if (rhel) {
		char *argv[] = { "update-ca-trust", "extract", NULL };
		if (scratch) {
			p11km_note("system store under '%s': not running update-ca-trust (it only "
			           "works on /)", st->system_root);
			return 0;
		}
		return p11km_run(argv, NULL, NULL);
	}
	char *argv[] = { "update-ca-certificates", "--sysroot", st->system_root,
	                 removed ? "--fresh" : NULL, NULL };
	char *plain[] = { "update-ca-certificates", removed ? "--fresh" : NULL, NULL };
	return p11km_run(scratch ? argv : plain, NULL, NULL);
}

/* "update-ca-certificates (ca-certificates VERSION)" for messages. */
static char *
tool_name(int rhel)
{
	char *dq[] = { "dpkg-query", "-W", "-f=${Version}", "ca-certificates", NULL };
	char *rpm[] = { "rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}", "ca-certificates", NULL };
	char *out = NULL, *s;
	size_t len = 0;

	if (p11km_run(rhel ? rpm : dq, &out, &len) < 0 || len == 0 || strchr(out, '\n') != NULL) {
		free(out);
		out = NULL;
	}
	p11km_error_clear();
	s = p11km_asprintf("%s (ca-certificates %s)", rhel ? "update-ca-trust" :
	                   "update-ca-certificates", out ? out : "of unknown version");
	free(out);
	return s;
}

/*
 * Debian's tool has --sysroot since ca-certificates 20250419; an older one
 * prints its usage for the option, exits 0 and changes nothing.  Ask it to
 * work in an empty scratch root: one that knows the option says it works
 * there ("Updating certificates in <root>/etc/ssl/certs...").
 */
static int
sysroot_check(const struct p11km_store *st)
{
	const char *tmp = getenv("TMPDIR");
	char *d = p11km_asprintf("%s/p11km-sysroot-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	char *sub[3] = { NULL, NULL, NULL }, *conf = NULL, *out = NULL, *name;
	size_t len = 0;
	int r = P11KM_ERR_NOMEM, ok = 0;

	if (d == NULL || mkdtemp(d) == NULL) {
		r = d ? p11km_fail(P11KM_ERR_IO, "unable to create a directory in '%s': %s",
		                   tmp && *tmp ? tmp : "/tmp", strerror(errno)) :
		        p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		free(d);
		return r;
	}
	sub[0] = p11km_asprintf("%s/etc", d);
	sub[1] = p11km_asprintf("%s/etc/ssl", d);
	sub[2] = p11km_asprintf("%s/etc/ssl/certs", d);
	conf = p11km_asprintf("%s/etc/ca-certificates.conf", d);
	if (sub[0] && sub[1] && sub[2] && conf) {
		char *argv[] = { "update-ca-certificates", "--sysroot", d, NULL };
		FILE *f;
		for (int i = 0; i < 3; i++)
			(void)mkdir(sub[i], 0700);
		if ((f = fopen(conf, "w")) != NULL)
			fclose(f);
		if ((r = p11km_run(argv, &out, &len)) == 0)
			ok = strstr(out, d) != NULL;
		free(out);
		unlink(conf);
		for (int i = 2; i >= 0; i--)
			(void)rmdir(sub[i]);
	}
	(void)rmdir(d);
	if (r == 0 && !ok) {
		name = tool_name(0);
		r = p11km_fail(P11KM_ERR_UNSUPPORTED, "%s has no --sysroot: it would not update the "
		               "system store under '%s'; nothing was changed (ca-certificates "
		               "20250419 or later has it)", name ? name : "update-ca-certificates",
		               st->system_root);
		free(name);
	}
	for (int i = 0; i < 3; i++)
		free(sub[i]);
	free(conf);
	free(d);
	return r;
}

/* What the bundle held of the roots a commit adds and removes, before the
 * tool ran: the tool's exit code alone proves nothing (see sysroot_check). */
struct bundle_seen {
	char *path;
	X509 **certs; /* the added ones first, then the removed ones */
	size_t n_add, n;
	size_t *before;
	struct stat sb; /* st_ino 0: there was no bundle */
};

/* How often each of want[0..n) is in the PEM bundle at path, and the
 * bundle's inode (zeroed: there is no bundle, and it holds none). */
static int
bundle_count(const char *path, X509 *const *want, size_t n, size_t *count, struct stat *sb)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	memset(count, 0, n * sizeof(*count));
	memset(sb, 0, sizeof(*sb));
	if (f == NULL)
		return errno == ENOENT ? 0 : p11km_fail(P11KM_ERR_IO, "unable to open '%s': %s", path,
		                                        strerror(errno));
	if (fstat(fileno(f), sb) < 0)
		memset(sb, 0, sizeof(*sb));
	while ((x = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
		for (size_t i = 0; i < n; i++)
			count[i] += X509_cmp(x, want[i]) == 0;
		X509_free(x);
	}
	ERR_clear_error();
	fclose(f);
	return 0;
}

static int
bundle_seen_init(struct bundle_seen *b, const struct p11km_store *st, int rhel,
                 STACK_OF(X509) *add, const size_t *rm, size_t n_rm)
{
	memset(b, 0, sizeof(*b));
	b->n_add = add != NULL ? (size_t)sk_X509_num(add) : 0;
	b->n = b->n_add + n_rm;
	b->path = root_join(st, rhel ? RHEL_BUNDLE : DEBIAN_BUNDLE);
	b->certs = calloc(b->n + 1, sizeof(*b->certs));
	b->before = calloc(b->n + 1, sizeof(*b->before));
	if (b->path == NULL || b->certs == NULL || b->before == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < b->n; i++)
		b->certs[i] = i < b->n_add ? sk_X509_value(add, (int)i) :
		                             sk_X509_value(st->certs, (int)rm[i - b->n_add]);
	return bundle_count(b->path, b->certs, b->n, b->before, &b->sb);
}

/* After the tool: each added root is in the bundle, and each removed one is
 * not, unless the bundle was rebuilt (a new file) and holds it no more
 * often than before: another source (the distribution's set) has it too. */
static int
bundle_check(const struct bundle_seen *b, int rhel)
{
	size_t *after = calloc(b->n + 1, sizeof(*after));
	struct stat sb;
	int r, rebuilt;

	if (after == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = bundle_count(b->path, b->certs, b->n, after, &sb)) < 0)
		goto out;
	rebuilt = sb.st_ino != 0 && (sb.st_ino != b->sb.st_ino || sb.st_dev != b->sb.st_dev ||
	                             sb.st_ctim.tv_sec != b->sb.st_ctim.tv_sec ||
	                             sb.st_ctim.tv_nsec != b->sb.st_ctim.tv_nsec);
	for (size_t i = 0; i < b->n; i++) {
		int added = i < b->n_add;
		if (added ? after[i] > 0 : after[i] == 0 || (rebuilt && after[i] <= b->before[i]))
			continue;
		char *name = tool_name(rhel), *fp = p11km_cert_fingerprint(b->certs[i]);
		r = p11km_fail(P11KM_ERR_FAILED, "%s exited 0 but '%s' %s %s",
		               name ? name : "the update tool", b->path,
		               added ? "does not hold the added root" : "still holds the removed root",
		               fp ? fp : "");
		free(name);
		free(fp);
		break;
	}
out:
	free(after);
	return r;
}

static void
bundle_seen_release(struct bundle_seen *b)
{
	free(b->path);
	free(b->certs);
	free(b->before);
}

static int
system_commit(struct p11km_ctx *ctx, struct p11km_store *st, STACK_OF(X509) *add,
              const size_t *rm, size_t n_rm)
{
	struct p11km_ftxn *t = p11km_ftxn_new();
	struct p11km_buf b = { 0 };
	struct bundle_seen seen = { 0 };
	char *dir = NULL;
	int rhel = 0, ran = 0, r;

	(void)ctx;
	if (t == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = system_dir(st, &rhel, &dir)) < 0)
		goto out;
	/* before anything changes */
	if (!rhel && strcmp(st->system_root, "/") != 0 && (r = sysroot_check(st)) < 0)
		goto out;
	if ((r = bundle_seen_init(&seen, st, rhel, add, rm, n_rm)) < 0)
		goto out;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		r = p11km_fail(P11KM_ERR_IO, "unable to create '%s': %s", dir, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < n_rm; i++)
		if ((r = p11km_ftxn_unlink_in(t, dir, st->names[rm[i]])) < 0)
			goto out;
	for (int i = 0; i < sk_X509_num(add); i++)
		if ((r = p11km_ftxn_write_cert(t, dir, sk_X509_value(add, i), "crt", 0, NULL)) < 0)
			goto out;
	if ((r = p11km_ftxn_commit(t)) < 0)
		goto out;
	if ((r = update_tool(st, rhel, n_rm > 0, &ran)) < 0 ||
	    (ran && (r = bundle_check(&seen, rhel)) < 0)) {
		/* The anchors are in place but the system's bundle was not rebuilt,
		 * and a second run would find them present and not rebuild it
		 * either: take the anchors back to the state the bundle matches. */
		char *msg = strdup(p11km_errmsg(r));
		int saved = r, ur = 0;
		struct p11km_ftxn *u;
		/* t holds the directory's lock: release it before u takes it */
		p11km_ftxn_free(t);
		t = NULL;
		u = p11km_ftxn_new();
		if (u == NULL)
			ur = P11KM_ERR_NOMEM;
		for (int i = 0; ur == 0 && i < sk_X509_num(add); i++) {
			char *fp = p11km_cert_fingerprint(sk_X509_value(add, i));
			char *full = fp ? p11km_asprintf("%s/p11km-%.16s.crt", dir, fp) : NULL;
			free(fp);
			ur = full ? p11km_ftxn_unlink(u, full) : P11KM_ERR_NOMEM;
			free(full);
		}
		for (size_t i = 0; ur == 0 && i < n_rm; i++) {
			char *full = p11km_asprintf("%s/%s", dir, st->names[rm[i]]);
			b.len = 0;
			if (full == NULL || (ur = p11km_cert_pem_append(sk_X509_value(st->certs,
			                                                 (int)rm[i]), &b)) < 0)
				ur = ur < 0 ? ur : P11KM_ERR_NOMEM;
			else
				ur = p11km_ftxn_write(u, full, b.data, b.len, 0644);
			free(full);
		}
		if (ur == 0)
			ur = p11km_ftxn_commit(u);
		p11km_ftxn_free(u);
		if (ur == 0)
			r = p11km_fail(saved, "%s; the anchor files were put back as they were", msg ? msg : "");
		else
			r = p11km_fail(saved, "%s; the anchor files are changed: run '%s' to finish",
			               msg ? msg : "", rhel ? "update-ca-trust" : "update-ca-certificates");
		free(msg);
	}
out:
	p11km_ftxn_free(t);
	p11km_buf_release(&b);
	bundle_seen_release(&seen);
	free(dir);
	return r;
}

const struct p11km_store_ops p11km_store_system_ops = {
	.lock = system_lock,
	.load = system_load,
	.commit = system_commit,
};
