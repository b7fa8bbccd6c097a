/* store.c: the table of store kinds and the dispatcher over them: parsing a
 * store argument, open (lock, then read), commit, release.  What the kinds
 * themselves share is in store-common.c, below them. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p11km/lock.h"
#include "p11km/store.h"
#include "p11km/util.h"

/*
 * The store kinds, one row each: X(ops, prefix, argument).  A prefix that
 * does not end in ':' is a bare word ("system").  Adding a kind: a file
 * store-<kind>.c defining the ops (store.h), and a row here.
 */
#define STORE_KINDS(X) \
	X(p11km_store_token_ops, "token:", "URI") \
	X(p11km_store_pem_ops, "pem-bundle:", "FILE") \
	X(p11km_store_dir_ops, "openssl-dir:", "DIR") \
	X(p11km_store_system_ops, "system", "") \
	X(p11km_store_nss_ops, "nss:", "DIR")

#define KIND_DECL(ops, prefix, arg) extern const struct p11km_store_ops ops;
#define KIND_ROW(ops, prefix, arg) { prefix, arg, &ops },
#define KIND_HELP(ops, prefix, arg) " " prefix arg

STORE_KINDS(KIND_DECL)

static const struct kind {
	const char *prefix, *arg;
	const struct p11km_store_ops *ops;
} kinds[] = { STORE_KINDS(KIND_ROW) };

#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

const char p11km_store_to_help[] = "store to install into (repeatable):" STORE_KINDS(KIND_HELP);
const char p11km_store_from_help[] = "store to remove from (repeatable):" STORE_KINDS(KIND_HELP);

/* "use token:URI, pem-bundle:FILE, ... or nss:DIR" */
static int
unknown_store(const char *spec)
{
	char *shown = p11km_uri_hide_pin(spec), list[256] = "";
	size_t l = 0;
	int r;

	for (size_t i = 0; i < N_KINDS && l < sizeof(list); i++)
		l += (size_t)snprintf(list + l, sizeof(list) - l, "%s%s%s",
		                      i == 0 ? "" : i + 1 == N_KINDS ? " or " : ", ", kinds[i].prefix,
		                      kinds[i].arg);
	r = p11km_fail(P11KM_ERR_USAGE, "unknown store '%s': use %s", shown ? shown : "", list);
	free(shown);
	return r;
}

int
p11km_store_parse(const char *spec, const char *system_root, struct p11km_store **out)
{
	struct p11km_store *st;
	const struct kind *k = NULL;
	const char *arg = NULL;

	*out = NULL;
	for (size_t i = 0; k == NULL && i < N_KINDS; i++) {
		size_t l = strlen(kinds[i].prefix);
		int word = kinds[i].prefix[l - 1] != ':';
		if (word ? strcmp(spec, kinds[i].prefix) == 0
		         : strncmp(spec, kinds[i].prefix, l) == 0 && spec[l] != '\0') {
			k = &kinds[i];
			arg = word ? "" : spec + l;
		}
	}
	if (k == NULL)
		return unknown_store(spec);
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	st->ops = k->ops;
	if (system_root == NULL || *system_root == '\0')
		system_root = getenv("P11KM_SYSTEM_ROOT");
	if (system_root == NULL || *system_root == '\0')
		system_root = "/";
	st->spec = p11km_uri_hide_pin(spec); /* printed: never a pin-value */
	st->path = strdup(arg);
	st->system_root = strdup(system_root);
	st->certs = sk_X509_new_null();
	if (st->spec == NULL || st->path == NULL || st->system_root == NULL || st->certs == NULL) {
		p11km_store_free(st);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	*out = st;
	return 0;
}

void
p11km_store_free(struct p11km_store *st)
{
	if (st == NULL)
		return;
	if (st->ops->release != NULL)
		st->ops->release(st);
	if (st->made_dir != NULL)
		(void)rmdir(st->made_dir); /* only when still empty */
	p11km_lock_release(st->lock);
	for (int i = 0; st->certs != NULL && i < sk_X509_num(st->certs); i++)
		free(st->names[i]);
	sk_X509_pop_free(st->certs, X509_free);
	free(st->names);
	free(st->handles);
	free(st->made_dir);
	free(st->spec);
	free(st->path);
	free(st->system_root);
	free(st);
}

int
p11km_store_open_for(struct p11km_ctx *ctx, struct p11km_store *st, int for_write,
                     STACK_OF(X509) *wanted)
{
	int r;

	if (st->loaded)
		return 0;
	if ((r = st->ops->lock(ctx, st, for_write)) < 0)
		return r;
	if ((r = st->ops->load(ctx, st, for_write, wanted)) < 0)
		return r;
	st->loaded = 1;
	st->for_write = for_write;
	return 0;
}

int
p11km_store_open(struct p11km_ctx *ctx, struct p11km_store *st, int for_write)
{
	return p11km_store_open_for(ctx, st, for_write, NULL);
}

int
p11km_store_commit(struct p11km_ctx *ctx, struct p11km_store *st, STACK_OF(X509) *add,
                   const size_t *rm, size_t n_rm)
{
	if (sk_X509_num(add) <= 0 && n_rm == 0)
		return 0;
	if (!st->loaded || !st->for_write)
		return p11km_fail(P11KM_ERR_FAILED, "%s: a change to a store that was not opened for "
		                  "writing (a bug)", st->spec);
	return st->ops->commit(ctx, st, add, rm, n_rm);
}

int
p11km_store_check_exists(const struct p11km_store *st)
{
	return st->ops->check_exists != NULL ? st->ops->check_exists(st) : 0;
}

int
p11km_store_index(const struct p11km_store *st, X509 *cert)
{
	for (int i = 0; i < sk_X509_num(st->certs); i++)
		if (X509_cmp(sk_X509_value(st->certs, i), cert) == 0)
			return i;
	return -1;
}
