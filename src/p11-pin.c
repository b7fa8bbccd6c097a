/* p11-pin.c: the PINs of one run.  Each PIN source is read at most once
 * (cached, wiped at p11km_ctx_release()), the PIN a login accepted is
 * remembered for the engine probe, and a login that failed is never tried
 * again.  Used by p11-session.c (logins) and p11-module.c (release). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/p11.h"
#include "p11km/util.h"

struct p11km_pin_cache {
	char *spec;
	char *pin;
	size_t len;
	/* prompt sources only: whose PIN was typed (CKU_SO or CKU_USER) and for
	 * which token (NULL: not known yet, e.g. a new SO PIN for token init) */
	CK_USER_TYPE user;
	char *tok;
	char *proved;  /* the token a C_Login with this PIN succeeded on, or NULL */
	struct p11km_pin_cache *next;
};

struct p11km_login_failure {
	char *key;
	struct p11km_login_failure *next;
};

void
p11km_pin_cache_clear(struct p11km_ctx *ctx)
{
	while (ctx->pins != NULL) {
		struct p11km_pin_cache *c = ctx->pins;
		ctx->pins = c->next;
		p11km_pin_free(c->pin, c->len);
		free(c->spec);
		free(c->tok);
		free(c->proved);
		free(c);
	}
	while (ctx->failures != NULL) {
		struct p11km_login_failure *f = ctx->failures;
		ctx->failures = f->next;
		free(f->key);
		free(f);
	}
}

/* A PIN typed at a prompt answers that prompt only: the SO PIN is not the
 * user PIN, and one token's PIN is not another's. */
static int
cache_match(const struct p11km_pin_cache *c, const struct p11km_pinsrc *src, CK_USER_TYPE user,
            const char *tok)
{
	if (strcmp(c->spec, src->spec) != 0 || src->kind == P11KM_PIN_VALUE)
		return 0;
	if (src->kind != P11KM_PIN_PROMPT)
		return 1;
	return c->user == user && (tok == NULL || c->tok == NULL || strcmp(c->tok, tok) == 0);
}

int
p11km_pin_get_for(struct p11km_ctx *ctx, const struct p11km_pinsrc *src, CK_USER_TYPE user,
                  const char *tok, const char *prompt, const char **pin, size_t *len)
{
	struct p11km_pin_cache *c;
	int r;

	if (user != CKU_SO)
		user = CKU_USER; /* a context-specific login uses the user PIN */
	for (c = ctx->pins; c != NULL; c = c->next) {
		if (cache_match(c, src, user, tok)) {
			*pin = c->pin;
			*len = c->len;
			return 0;
		}
	}
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->spec = strdup(src->spec)) == NULL ||
	    (tok != NULL && (c->tok = strdup(tok)) == NULL)) {
		if (c != NULL)
			free(c->spec);
		free(c);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	c->user = user;
	if ((r = p11km_pin_read(src, prompt, &c->pin, &c->len)) < 0) {
		free(c->spec);
		free(c->tok);
		free(c);
		return r;
	}
	c->next = ctx->pins;
	ctx->pins = c;
	*pin = c->pin;
	*len = c->len;
	return 0;
}

int
p11km_pin_get(struct p11km_ctx *ctx, const struct p11km_pinsrc *src, const char *prompt,
              const char **pin, size_t *len)
{
	return p11km_pin_get_for(ctx, src, CKU_USER, NULL, prompt, pin, len);
}

char *
p11km_login_failure_key(const struct p11km_token *tok, CK_USER_TYPE user, const struct p11km_pinsrc *src)
{
	return p11km_asprintf("%s|%lu|%s", tok->uri, (unsigned long)user,
	                      src ? src->spec : "(pin pad)");
}

int
p11km_login_failed_before(struct p11km_ctx *ctx, const char *key)
{
	for (struct p11km_login_failure *f = ctx->failures; f != NULL; f = f->next)
		if (strcmp(f->key, key) == 0)
			return 1;
	return 0;
}

void
p11km_login_failure_remember(struct p11km_ctx *ctx, char *key)
{
	struct p11km_login_failure *f = calloc(1, sizeof(*f));

	if (f == NULL) {
		free(key);
		return;
	}
	f->key = key;
	f->next = ctx->failures;
	ctx->failures = f;
}

/* Remember that the cached PIN pin logged in to token tok_uri. */
void
p11km_pin_mark_proved(struct p11km_ctx *ctx, const char *pin, const char *tok_uri)
{
	for (struct p11km_pin_cache *c = ctx->pins; pin != NULL && c != NULL; c = c->next)
		if (c->pin == pin && c->proved == NULL)
			c->proved = strdup(tok_uri);
}

int
p11km_pin_proved(struct p11km_ctx *ctx, const char *tok_uri, const char **pin, size_t *len)
{
	for (struct p11km_pin_cache *c = ctx->pins; c != NULL; c = c->next) {
		if (c->proved != NULL && (tok_uri == NULL || strcmp(c->proved, tok_uri) == 0)) {
			*pin = c->pin;
			*len = c->len;
			return 0;
		}
	}
	*pin = NULL;
	*len = 0;
	return P11KM_ERR_NOTFOUND;
}
