/* p11-lock.c: a lock per token between p11km processes that change it.
 *
 * Keyed by the module's file, the token's serial number and its label; a
 * lock file "token-<serial>-<hash>.lock" in the lock directory (lock.h).
 * Held from the first read-write session until the end of the run
 * (p11km_ctx_release), so that a command reads the token's objects only
 * after it has the lock and changes them before another one reads them.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/p11-kit.h>

#include "p11km/lock.h"
#include "p11km/p11.h"
#include "p11km/util.h"

/* FNV-1a, 64 bits: enough to tell tokens apart in a file name. */
static uint64_t
fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h * 0x100000001b3ULL; /* the terminator, so "ab","c" != "a","bc" */
}

/* "token-<serial, alphanumerics only>-<16 hex>.lock" */
static char *
lock_name(const struct p11km_token *tok)
{
	char *file = p11_kit_module_get_filename(tok->f), safe[17];
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t k = 0;

	h = fnv1a(h, file != NULL ? file : tok->mod != NULL ? tok->mod->name : "?");
	h = fnv1a(h, tok->serial);
	h = fnv1a(h, tok->label);
	free(file);
	for (const char *p = tok->serial; *p && k < sizeof(safe) - 1; p++)
		if ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
			safe[k++] = *p;
	safe[k] = '\0';
	return p11km_asprintf("token-%s-%016llx.lock", safe, (unsigned long long)h);
}

int
p11km_token_lock(struct p11km_ctx *ctx, struct p11km_token *tok)
{
	struct p11km_lock *lk = NULL, **nl;
	char *dir = NULL, *name = NULL, *path = NULL, *msg = NULL;
	int r, waited = 0;

	if ((r = p11km_lock_dir(ctx->lock_dir_opt, &dir)) < 0)
		return r;
	name = lock_name(tok);
	path = name ? p11km_asprintf("%s/%s", dir, name) : NULL;
	msg = p11km_asprintf("waiting for another p11km on token '%s'...", tok->label);
	if (path == NULL || msg == NULL ||
	    (nl = realloc(ctx->locks, (ctx->n_locks + 1) * sizeof(*nl))) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	ctx->locks = nl;
	/* a change on a slow token can take minutes: wait up to ten */
	if ((r = p11km_lock_take(path, P11KM_LOCK_CREATE, msg, 600000, P11KM_ERR_TOKEN, &lk,
	                         NULL)) < 0)
		goto out;
	waited = r == 1;
	ctx->locks[ctx->n_locks++] = lk;
	r = 0;
	/* What the token said before may have changed meanwhile (PIN flags),
	 * and what the module read of it while the other run wrote it may be
	 * broken (SoftHSM2 2.6.1: p11km_token_reload()): read it again.  The
	 * objects are read later, under the lock. */
	if (waited)
		r = p11km_token_reload(tok);
out:
	free(dir);
	free(name);
	free(path);
	free(msg);
	return r;
}
