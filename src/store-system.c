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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p11km/cert.h"
#include "p11km/store.h"
#include "p11km/util.h"

#define DEBIAN_DIR "usr/local/share/ca-certificates"
#define RHEL_DIR "etc/pki/ca-trust/source/anchors"

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
 * without it the links to a removed file stay (nothing "changed"). */
static int
update_tool(const struct p11km_store *st, int rhel, int removed)
{
	int scratch = strcmp(st->system_root, "/") != 0;

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

static int
system_commit(struct p11km_ctx *ctx, struct p11km_store *st, STACK_OF(X509) *add,
              const size_t *rm, size_t n_rm)
{
	struct p11km_ftxn *t = p11km_ftxn_new();
	struct p11km_buf b = { 0 };
	char *dir = NULL;
	int rhel = 0, r;

	(void)ctx;
	if (t == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = system_dir(st, &rhel, &dir)) < 0)
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
	if ((r = update_tool(st, rhel, n_rm > 0)) < 0) {
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
	free(dir);
	return r;
}

const struct p11km_store_ops p11km_store_system_ops = {
	.lock = system_lock,
	.load = system_load,
	.commit = system_commit,
};
