/* p11-module.c: loading modules and finding tokens. */
#include "config.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/p11-kit.h>

#include "p11km/lock.h"
#include "p11km/p11.h"
#include "p11km/util.h"

void
p11km_ctx_init(struct p11km_ctx *ctx)
{
	memset(ctx, 0, sizeof(*ctx));
}

static char *
module_display_name(CK_FUNCTION_LIST *f)
{
	char *name = p11_kit_module_get_name(f);

	if (name == NULL) {
		char *file = p11_kit_module_get_filename(f);
		if (file != NULL) {
			name = strdup(basename(file));
			free(file);
		}
	}
	return name ? name : strdup("?");
}

static int
add_module(struct p11km_ctx *ctx, CK_FUNCTION_LIST *f, const char *name, int from_p11kit)
{
	struct p11km_module *m = realloc(ctx->modules, (ctx->n_modules + 1) * sizeof(*m));

	if (m == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	ctx->modules = m;
	m = &ctx->modules[ctx->n_modules++];
	memset(m, 0, sizeof(*m));
	m->f = f;
	m->name = name ? strdup(name) : module_display_name(f);
	m->from_p11kit = from_p11kit;
	return 0;
}

/*
 * What registered modules print on stderr while p11km walks the registry
 * (tpm2-pkcs11 prints a dozen ERROR:tcti lines when no TPM runs) goes to a
 * temporary file and is shown only with --verbose: p11km's own one-line
 * note says what matters.
 */
struct muffle {
	int saved;
	FILE *tmp;
};

static void
muffle_begin(struct muffle *mf)
{
	mf->saved = -1;
	fflush(stderr);
	if ((mf->tmp = tmpfile()) == NULL)
		return;
	if ((mf->saved = dup(STDERR_FILENO)) < 0 || dup2(fileno(mf->tmp), STDERR_FILENO) < 0) {
		if (mf->saved >= 0)
			close(mf->saved);
		mf->saved = -1;
		fclose(mf->tmp);
		mf->tmp = NULL;
	}
}

static void
muffle_end(struct muffle *mf, const char *who)
{
	char line[512];

	if (mf->tmp == NULL)
		return;
	fflush(stderr);
	dup2(mf->saved, STDERR_FILENO);
	close(mf->saved);
	rewind(mf->tmp);
	while (fgets(line, sizeof(line), mf->tmp) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] != '\0')
			p11km_verbose("module '%s' printed: %s", who, line);
	}
	fclose(mf->tmp);
	mf->tmp = NULL;
}

static int
init_module(struct p11km_module *m, int skip_on_failure)
{
	struct muffle mf = { -1, NULL };
	CK_RV rv;

	if (skip_on_failure)
		muffle_begin(&mf);
	rv = p11km_traced("C_Initialize", p11_kit_module_initialize(m->f));
	if (skip_on_failure)
		muffle_end(&mf, m->name);

	if (rv == CKR_OK) {
		m->initialized = 1;
		p11km_verbose("module '%s' initialised", m->name);
		return 0;
	}
	if (skip_on_failure) {
		p11km_note("skipping module '%s': C_Initialize failed: %s", m->name,
		           p11km_ckr_name(rv));
		return 1;
	}
	return p11km_fail(P11KM_ERR_MODULE, "module '%s' failed to initialise: C_Initialize: %s; "
	                  "check the module's configuration (and its tokens' directory or device)",
	                  m->name, p11km_ckr_name(rv));
}

static int
load_path(struct p11km_ctx *ctx, const char *path)
{
	CK_FUNCTION_LIST *f;
	const char *msg;
	char cwd[4096], *abs = NULL;

	/* p11-kit looks a relative path up in its module directory; a path
	 * with a slash is the user's, relative to the working directory */
	if (path[0] != '/' && getcwd(cwd, sizeof(cwd)) != NULL &&
	    (abs = p11km_asprintf("%s/%s", cwd, path)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	f = p11_kit_module_load(abs ? abs : path, 0);
	free(abs);

	if (f == NULL) {
		msg = p11_kit_message();
		return p11km_fail(P11KM_ERR_MODULE,
		    "unable to load PKCS#11 module '%s': %s; give the path of a PKCS#11 module "
		    "or the name of one registered with p11-kit", path,
		    msg ? msg : "not a PKCS#11 module");
	}
	if (add_module(ctx, f, path, 0) < 0) {
		p11_kit_module_release(f);
		return P11KM_ERR_NOMEM;
	}
	return init_module(&ctx->modules[ctx->n_modules - 1], 0);
}

static int
load_registry(struct p11km_ctx *ctx)
{
	struct muffle mf = { -1, NULL };

	if (ctx->registry != NULL)
		return 0;
	muffle_begin(&mf);
	ctx->registry = p11_kit_modules_load(NULL, 0);
	muffle_end(&mf, "p11-kit");
	if (ctx->registry == NULL) {
		const char *msg = p11_kit_message();
		return p11km_fail(P11KM_ERR_MODULE, "unable to load the p11-kit module registry: %s",
		                  msg ? msg : "unknown error");
	}
	return 0;
}

static int
load_named(struct p11km_ctx *ctx, const char *name)
{
	char names[512] = "";
	int r;

	if ((r = load_registry(ctx)) < 0)
		return r;
	for (size_t i = 0; ctx->registry[i] != NULL; i++) {
		char *n = module_display_name(ctx->registry[i]);
		char *file = p11_kit_module_get_filename(ctx->registry[i]);
		int match = (n && strcmp(n, name) == 0) ||
		            (file && strcmp(basename(file), name) == 0);
		if (n && strlen(names) + strlen(n) + 3 < sizeof(names)) {
			if (names[0])
				strcat(names, ", ");
			strcat(names, n);
		}
		free(file);
		free(n);
		if (!match)
			continue;
		if ((r = add_module(ctx, ctx->registry[i], NULL, 1)) < 0)
			return r;
		return init_module(&ctx->modules[ctx->n_modules - 1], 0);
	}
	return p11km_fail(P11KM_ERR_MODULE,
	    "no PKCS#11 module named '%s' is registered with p11-kit (registered: %s); "
	    "give a module path instead", name, names[0] ? names : "none");
}

int
p11km_modules_load(struct p11km_ctx *ctx, const struct p11km_uri *uri)
{
	const char *spec = ctx->module_opt;
	int r;

	if (ctx->modules_loaded)
		return 0;
	if (spec == NULL && p11km_uri_module_path(uri) != NULL)
		spec = p11km_uri_module_path(uri);
	if (spec == NULL && p11km_uri_module_name(uri) != NULL)
		spec = p11km_uri_module_name(uri);
	if (spec != NULL) {
		r = strchr(spec, '/') != NULL ? load_path(ctx, spec) : load_named(ctx, spec);
		if (r < 0)
			return r;
	} else {
		if ((r = load_registry(ctx)) < 0)
			return r;
		for (size_t i = 0; ctx->registry[i] != NULL; i++) {
			if ((r = add_module(ctx, ctx->registry[i], NULL, 1)) < 0)
				return r;
			if ((r = init_module(&ctx->modules[ctx->n_modules - 1], 1)) < 0)
				return r;
		}
		if (ctx->n_modules == 0)
			return p11km_fail(P11KM_ERR_MODULE,
			    "no PKCS#11 modules are registered with p11-kit; give --module PATH");
	}
	ctx->modules_loaded = 1;
	return 0;
}

void
p11km_ctx_release(struct p11km_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_modules; i++) {
		struct p11km_module *m = &ctx->modules[i];
		if (m->initialized)
			p11km_traced("C_Finalize", p11_kit_module_finalize(m->f));
		if (!m->from_p11kit)
			p11_kit_module_release(m->f);
		free(m->name);
	}
	free(ctx->modules);
	if (ctx->registry != NULL)
		p11_kit_modules_release(ctx->registry);
	p11km_pin_cache_clear(ctx);
	/* the token locks (p11-lock.c): util locks, released here */
	for (size_t i = ctx->n_locks; i-- > 0;)
		p11km_lock_release(ctx->locks[i]);
	free(ctx->locks);
	ctx->locks = NULL;
	ctx->n_locks = 0;
	ctx->modules = NULL;
	ctx->n_modules = 0;
	ctx->registry = NULL;
	ctx->modules_loaded = 0;
}

/* --- tokens ------------------------------------------------------------- */

static void
token_strings(struct p11km_token *t)
{
	char *s;

#define TRIM(dst, src) \
	if ((s = p11km_strndup_trim((const char *)(src), sizeof(src))) != NULL) { \
		snprintf(dst, sizeof(dst), "%s", s); free(s); }
	TRIM(t->label, t->info.label);
	TRIM(t->manufacturer, t->info.manufacturerID);
	TRIM(t->model, t->info.model);
	TRIM(t->serial, t->info.serialNumber);
#undef TRIM
}

static int
push_token(struct p11km_token **toks, size_t *n, struct p11km_module *m, CK_SLOT_ID slot,
           const CK_TOKEN_INFO *info)
{
	struct p11km_token *t = realloc(*toks, (*n + 1) * sizeof(*t));

	if (t == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	*toks = t;
	t = &t[(*n)++];
	memset(t, 0, sizeof(*t));
	t->mod = m;
	t->f = m->f;
	t->slot = slot;
	t->info = *info;
	token_strings(t);
	if ((t->uri = p11km_uri_token(info)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return 0;
}

/* More slots or mechanisms than this is a module's error, not a list. */
#define LIST_MAX 4096

/* Slots with a token, in one C_GetSlotList call when there are <= 32.  A
 * count that keeps growing, or one past the buffer, is the module's error;
 * a slot listed twice is listed once. */
static int
slot_list(struct p11km_module *m, CK_SLOT_ID **out, CK_ULONG *n)
{
	CK_ULONG cap = 32;
	CK_SLOT_ID *slots = NULL;
	CK_RV rv;

	for (int tries = 0; tries < 4; tries++) {
		CK_SLOT_ID *s = realloc(slots, (cap ? cap : 1) * sizeof(*s));
		if (s == NULL) {
			free(slots);
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		}
		slots = s;
		*n = cap;
		rv = P11KM_CALL(m->f, C_GetSlotList, CK_TRUE, slots, n);
		if (rv == CKR_OK && *n > cap) {
			free(slots);
			return p11km_fail_module(m->name, "C_GetSlotList", "it answered CKR_OK with "
			                         "%lu slots for a list of %lu", *n, cap);
		}
		if (rv == CKR_OK) {
			CK_ULONG k = 0;
			for (CK_ULONG i = 0; i < *n; i++) {
				CK_ULONG j = 0;
				while (j < k && slots[j] != slots[i])
					j++;
				if (j == k)
					slots[k++] = slots[i];
			}
			*n = k;
			*out = slots;
			return 0;
		}
		if (rv != CKR_BUFFER_TOO_SMALL)
			break;
		if (*n <= cap || *n > LIST_MAX) {
			free(slots);
			return p11km_fail_module(m->name, "C_GetSlotList", "it answered "
			                         "CKR_BUFFER_TOO_SMALL asking for %lu slots, with room "
			                         "for %lu", *n, cap);
		}
		cap = *n + 8;
	}
	free(slots);
	if (rv == CKR_BUFFER_TOO_SMALL)
		return p11km_fail_module(m->name, "C_GetSlotList", "its slot count changed at "
		                         "each of 4 calls");
	return p11km_fail_ckr(rv, m->name, "C_GetSlotList");
}

static int
module_tokens(struct p11km_module *m, const struct p11km_uri *uri,
              struct p11km_token **toks, size_t *n)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG ns = 0;
	CK_INFO minfo;
	CK_RV rv;
	int r;

	if (uri != NULL && uri->has_library) {
		if ((rv = P11KM_CALL(m->f, C_GetInfo, &minfo)) != CKR_OK)
			return p11km_fail_ckr(rv, m->name, "C_GetInfo");
		if (!p11km_uri_match_token(uri, &minfo, NULL, NULL))
			return 0;
	}
	if ((r = slot_list(m, &slots, &ns)) < 0)
		return r;
	for (CK_ULONG i = 0; i < ns; i++) {
		CK_TOKEN_INFO tinfo;
		CK_SLOT_INFO sinfo;

		if (uri != NULL && uri->has_slot) {
			CK_SLOT_ID want = p11_kit_uri_get_slot_id(uri->u);
			if (want != (CK_SLOT_ID)-1 && want != slots[i])
				continue;
			if ((rv = P11KM_CALL(m->f, C_GetSlotInfo, slots[i], &sinfo)) != CKR_OK) {
				r = p11km_fail_ckr(rv, m->name, "C_GetSlotInfo");
				goto out;
			}
			if (!p11km_uri_match_token(uri, NULL, &sinfo, NULL))
				continue;
		}
		rv = P11KM_CALL(m->f, C_GetTokenInfo, slots[i], &tinfo);
		/* SoftHSM answers CKR_GENERAL_ERROR while another process rewrites
		 * the token's files (a p11km run that holds the token's lock):
		 * ask again, a few times */
		for (int k = 0; rv == CKR_GENERAL_ERROR && k < 5; k++) {
			nanosleep(&(struct timespec){ 0, 20000000L }, NULL);
			rv = P11KM_CALL(m->f, C_GetTokenInfo, slots[i], &tinfo);
		}
		if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_TOKEN_NOT_RECOGNIZED)
			continue;
		if (rv != CKR_OK) {
			r = p11km_fail_ckr(rv, m->name, "C_GetTokenInfo");
			goto out;
		}
		if (!p11km_uri_match_token(uri, NULL, NULL, &tinfo))
			continue;
		if ((r = push_token(toks, n, m, slots[i], &tinfo)) < 0)
			goto out;
	}
	r = 0;
out:
	free(slots);
	return r;
}

int
p11km_tokens_find(struct p11km_ctx *ctx, const struct p11km_uri *uri,
                  struct p11km_token **toks, size_t *n)
{
	struct p11km_token *t = NULL;
	size_t nt = 0;
	int r;

	*toks = NULL;
	*n = 0;
	if ((r = p11km_uri_check_select(uri)) < 0)
		return r;
	if ((r = p11km_modules_load(ctx, uri)) < 0)
		return r;
	for (size_t i = 0; i < ctx->n_modules; i++) {
		if (!ctx->modules[i].initialized)
			continue;
		if ((r = module_tokens(&ctx->modules[i], uri, &t, &nt)) < 0) {
			p11km_tokens_free(t, nt);
			return r;
		}
	}
	/* SoftHSM2 reads its token directory at C_Initialize, and a token whose
	 * files another process is rewriting at that moment is left out (seen
	 * with pkcs11-tool -L as well: about 1 listing in 100 while another run
	 * adds objects).  When a URI names a token and none matched, initialise
	 * each module once more and look again; never a module with a session
	 * of this run open, and at most once per module per run. */
	if (nt == 0 && uri != NULL) {
		for (size_t i = 0; i < ctx->n_modules; i++) {
			struct p11km_module *m = &ctx->modules[i];
			if (!m->initialized || m->used || m->rescanned)
				continue;
			m->rescanned = 1;
			p11km_traced("C_Finalize", p11_kit_module_finalize(m->f));
			m->initialized = 0;
			nanosleep(&(struct timespec){ 0, 50000000L }, NULL);
			if (init_module(m, 1) != 0)
				continue;
			if ((r = module_tokens(m, uri, &t, &nt)) < 0) {
				p11km_tokens_free(t, nt);
				return r;
			}
		}
		if (nt > 0)
			p11km_verbose("the token appeared when its module was initialised again");
	}
	*toks = t;
	*n = nt;
	return 0;
}

void
p11km_tokens_free(struct p11km_token *toks, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(toks[i].uri);
	free(toks);
}

void
p11km_token_free(struct p11km_token *tok)
{
	p11km_tokens_free(tok, tok ? 1 : 0);
}

/* "a, b, c" of the candidates' URIs, for ambiguity errors. */
char *
p11km_join_uris(char **uris, size_t n)
{
	struct p11km_buf b = { 0 };

	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			p11km_buf_append(&b, " ", 1);
		p11km_buf_append(&b, uris[i], strlen(uris[i]));
	}
	if (b.data == NULL)
		return strdup("");
	return (char *)b.data;
}

int
p11km_token_find_one(struct p11km_ctx *ctx, const struct p11km_uri *uri,
                     struct p11km_token **tok)
{
	struct p11km_token *toks = NULL;
	size_t n = 0;
	int r;

	if ((r = p11km_tokens_find(ctx, uri, &toks, &n)) < 0)
		return r;
	if (n == 0) {
		r = p11km_fail(P11KM_ERR_NOTFOUND,
		    "no token matches the URI; run 'p11km token list' to see the tokens%s",
		    ctx->module_opt ? "" : " (or give --module)");
	} else if (n > 1) {
		char **uris = calloc(n, sizeof(*uris));
		char *list = NULL;
		if (uris != NULL) {
			for (size_t i = 0; i < n; i++)
				uris[i] = toks[i].uri;
			list = p11km_join_uris(uris, n);
		}
		r = p11km_fail(P11KM_ERR_AMBIGUOUS,
		    "%zu tokens match; name one with token= or serial=: %s", n, list ? list : "");
		free(list);
		free(uris);
	} else {
		*tok = toks;
		return 0;
	}
	p11km_tokens_free(toks, n);
	return r;
}

int
p11km_token_find_initialised(struct p11km_ctx *ctx, const struct p11km_uri *uri,
                             struct p11km_token **tok)
{
	struct p11km_token *toks = NULL, *t;
	char **uris = NULL, *list = NULL;
	size_t n = 0, k = 0, pick = 0;
	int r;

	if ((r = p11km_tokens_find(ctx, uri, &toks, &n)) < 0)
		return r;
	if (n > 0 && (uris = calloc(n, sizeof(*uris))) == NULL) {
		p11km_tokens_free(toks, n);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		if ((toks[i].info.flags & CKF_TOKEN_INITIALIZED) &&
		    !(toks[i].info.flags & CKF_WRITE_PROTECTED))
			uris[k++] = toks[i].uri, pick = i;
	if (k == 1 && (t = malloc(sizeof(*t))) != NULL) {
		*t = toks[pick];
		toks[pick].uri = NULL;
		*tok = t;
		r = 0;
	} else if (k == 1) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	} else if (k == 0) {
		r = p11km_fail(P11KM_ERR_NOTFOUND,
		    "no initialised token%s; run 'p11km token list' to see the tokens",
		    uri ? " matches the URI" : " found");
	} else {
		list = p11km_join_uris(uris, k);
		r = p11km_fail(P11KM_ERR_AMBIGUOUS,
		    "%zu initialised tokens%s; name one with a pkcs11: URI (token= or serial=): %s", k,
		    uri ? " match" : "", list ? list : "");
		free(list);
	}
	free(uris);
	p11km_tokens_free(toks, n);
	return r;
}

int
p11km_token_refresh(struct p11km_token *tok)
{
	CK_RV rv = P11KM_CALL(tok->f, C_GetTokenInfo, tok->slot, &tok->info);

	if (rv != CKR_OK)
		return p11km_fail_ckr(rv, tok->label, "C_GetTokenInfo");
	token_strings(tok);
	return 0;
}

/* After waiting for another run's changes to a token (p11-lock.c).
 * SoftHSM2 2.6.1 writes a file out only after it has unlocked it (fixed
 * upstream after 2.6.1: "Flush files before unlocking"): a run that read
 * the token while another one wrote it can have seen an empty token.object,
 * and then marks the whole token invalid for the rest of its life (every
 * later C_GetTokenInfo and C_Login: CKR_GENERAL_ERROR, the PIN untested).
 * A module without a session of this run is initialised again (the other
 * run is done: the files are whole) and the token found again by its serial
 * and label; otherwise its information is read again. */
int
p11km_token_reload(struct p11km_token *tok)
{
	struct p11km_module *m = tok->mod;
	CK_SLOT_ID *slots = NULL;
	CK_ULONG ns = 0;
	int r;

	if (m == NULL || m->used || !m->initialized) {
		/* when that fails, what was read before stands (the session
		 * that follows finds a token that is really gone) */
		if (p11km_token_refresh(tok) < 0) {
			p11km_verbose("token '%s': %s", tok->label, p11km_errmsg(P11KM_ERR_TOKEN));
			p11km_error_clear();
		}
		return 0;
	}
	p11km_verbose("token '%s': changed by another run: initialising module '%s' again",
	              tok->label, m->name);
	p11km_traced("C_Finalize", p11_kit_module_finalize(m->f));
	m->initialized = 0;
	if ((r = init_module(m, 0)) < 0 || (r = slot_list(m, &slots, &ns)) < 0)
		return r;
	for (CK_ULONG i = 0; i < ns; i++) {
		struct p11km_token t = *tok;
		t.slot = slots[i];
		if (P11KM_CALL(m->f, C_GetTokenInfo, slots[i], &t.info) != CKR_OK)
			continue;
		token_strings(&t);
		if (strcmp(t.serial, tok->serial) == 0 && strcmp(t.label, tok->label) == 0) {
			*tok = t;
			free(slots);
			return 0;
		}
	}
	free(slots);
	return p11km_fail(P11KM_ERR_TOKEN, "token '%s' is gone after another p11km run changed it: "
	                  "see 'p11km token list' and run again",
	                  tok->label);
}

int
p11km_mechanisms(struct p11km_token *tok, CK_MECHANISM_TYPE **out, size_t *n)
{
	CK_ULONG cap = 256, got;
	CK_MECHANISM_TYPE *m = NULL;
	CK_RV rv;

	for (int tries = 0; tries < 3; tries++) {
		CK_MECHANISM_TYPE *t = realloc(m, cap * sizeof(*m));
		if (t == NULL) {
			free(m);
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		}
		m = t;
		got = cap;
		rv = P11KM_CALL(tok->f, C_GetMechanismList, tok->slot, m, &got);
		if (rv == CKR_OK && got > cap) {
			free(m);
			return p11km_fail_module(tok->label, "C_GetMechanismList", "it answered CKR_OK "
			                         "with %lu mechanisms for a list of %lu", got, cap);
		}
		if (rv == CKR_OK) {
			*out = m;
			*n = got;
			return 0;
		}
		if (rv != CKR_BUFFER_TOO_SMALL)
			break;
		if (got <= cap || got > LIST_MAX) {
			free(m);
			return p11km_fail_module(tok->label, "C_GetMechanismList", "it answered "
			                         "CKR_BUFFER_TOO_SMALL asking for %lu mechanisms, with "
			                         "room for %lu", got, cap);
		}
		cap = got + 16;
	}
	free(m);
	if (rv == CKR_BUFFER_TOO_SMALL)
		return p11km_fail_module(tok->label, "C_GetMechanismList", "its mechanism count "
		                         "changed at each of 3 calls");
	return p11km_fail_ckr(rv, tok->label, "C_GetMechanismList");
}

int
p11km_mechanism_info(struct p11km_token *tok, CK_MECHANISM_TYPE mech, CK_MECHANISM_INFO *info)
{
	CK_RV rv = P11KM_CALL(tok->f, C_GetMechanismInfo, tok->slot, mech, info);

	if (rv == CKR_MECHANISM_INVALID)
		return P11KM_ERR_UNSUPPORTED;
	if (rv != CKR_OK)
		return p11km_fail_ckr(rv, tok->label, "C_GetMechanismInfo");
	return 0;
}
