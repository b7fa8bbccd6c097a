/* p11-session.c: sessions and logins.  One C_Login per PIN per run. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/p11.h"
#include "p11km/util.h"

int
p11km_session_open(struct p11km_ctx *ctx, struct p11km_token *tok, int rw,
                   struct p11km_session *out)
{
	CK_FLAGS flags = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);
	CK_RV rv;

	memset(out, 0, sizeof(*out));
	/* a change: wait for other runs on this token, then read it */
	if (rw && ctx->lock_tokens) {
		int r = p11km_token_lock(ctx, tok);
		if (r < 0)
			return r;
	}
	out->ctx = ctx;
	out->tok = tok;
	out->f = tok->f;
	out->logged_in = (CK_USER_TYPE)-1;
	rv = P11KM_CALL(tok->f, C_OpenSession, tok->slot, flags, NULL, NULL, &out->h);
	if (rv != CKR_OK)
		return p11km_fail_ckr_tok(tok, rv, tok->label, "C_OpenSession");
	out->open = 1;
	tok->mod->used = 1;
	return 0;
}

void
p11km_session_close(struct p11km_session *s)
{
	if (s == NULL || !s->open)
		return;
	/* Closing the last session logs out: no C_Logout round trip needed. */
	P11KM_CALL(s->f, C_CloseSession, s->h);
	s->open = 0;
}

int
p11km_pin_flags_check(struct p11km_ctx *ctx, const struct p11km_token *tok, CK_USER_TYPE user,
                      const struct p11km_pinsrc *src, int force_ok)
{
	CK_FLAGS flags = tok->info.flags;
	CK_FLAGS locked = user == CKU_SO ? CKF_SO_PIN_LOCKED : CKF_USER_PIN_LOCKED;
	CK_FLAGS final = user == CKU_SO ? CKF_SO_PIN_FINAL_TRY : CKF_USER_PIN_FINAL_TRY;
	const char *who = user == CKU_SO ? "SO" : "user";

	if (flags & locked)
		return p11km_fail(P11KM_ERR_LOGIN,
		    "the %s PIN of token '%s' is locked; unblock it (for a user PIN: with the SO PIN) "
		    "before using this token%s", who, tok->label,
		    force_ok ? "" : " (--force does not override this)");
	if ((flags & final) && !(force_ok && ctx->force) && src != NULL &&
	    src->kind != P11KM_PIN_PROMPT)
		return p11km_fail(P11KM_ERR_LOGIN,
		    "token '%s' reports that one more wrong %s PIN locks it; p11km will not try a "
		    "PIN non-interactively: check it, then use --%spin-source prompt%s",
		    tok->label, who, user == CKU_SO ? "so-" : "",
		    force_ok ? " or --force" : " (--force does not override this)");
	return 0;
}

static int
check_pin_flags(struct p11km_session *s, CK_USER_TYPE user, const struct p11km_pinsrc *src)
{
	return p11km_pin_flags_check(s->ctx, s->tok, user, src, 1);
}

int
p11km_login(struct p11km_session *s, CK_USER_TYPE user, const struct p11km_pinsrc *src)
{
	const char *pin = NULL;
	size_t len = 0;
	char *key, prompt[80];
	CK_RV rv;
	int r;

	if (s->logged_in == user)
		return 0;
	/* On a token with a PIN pad, "prompt" means: type it on the pad. */
	if (src != NULL && src->kind == P11KM_PIN_PROMPT &&
	    (s->tok->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH))
		src = NULL;
	if ((r = check_pin_flags(s, user, src)) < 0)
		return r;
	if (src == NULL && !(s->tok->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH))
		return p11km_fail(P11KM_ERR_LOGIN,
		    "token '%s' needs a%s PIN: give --%spin-source file:PATH, env:VAR, fd:N or prompt",
		    s->tok->label, user == CKU_SO ? "n SO" : "", user == CKU_SO ? "so-" : "");
	if ((key = p11km_login_failure_key(s->tok, user, src)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (p11km_login_failed_before(s->ctx, key)) {
		free(key);
		return p11km_fail(P11KM_ERR_LOGIN,
		    "not logging in to token '%s' again: this PIN was refused earlier in this run",
		    s->tok->label);
	}
	if (src != NULL) {
		snprintf(prompt, sizeof(prompt), "%s PIN for token '%s': ",
		         user == CKU_SO ? "SO" : "User", s->tok->label);
		if ((r = p11km_pin_get_for(s->ctx, src, user, s->tok->uri, prompt, &pin, &len)) < 0) {
			free(key);
			return r;
		}
	} else {
		p11km_note("log in on the PIN pad of token '%s'", s->tok->label);
	}
	rv = P11KM_CALL(s->f, C_Login, s->h, user, (CK_UTF8CHAR_PTR)pin, len);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
		free(key);
		s->logged_in = user;
		if (user == CKU_USER)
			p11km_pin_mark_proved(s->ctx, pin, s->tok->uri);
		p11km_verbose("logged in to token '%s' as %s", s->tok->label,
		              user == CKU_SO ? "security officer" : "user");
		return 0;
	}
	p11km_login_failure_remember(s->ctx, key);
	if (rv == CKR_PIN_INCORRECT)
		return p11km_fail(P11KM_ERR_LOGIN,
		    "login to token '%s' failed: CKR_PIN_INCORRECT: the PIN from %s is wrong "
		    "(one attempt made; p11km does not retry)", s->tok->label,
		    src ? src->spec : "the PIN pad");
	return p11km_fail_ckr_tok(s->tok, rv, s->tok->label, "C_Login");
}

int
p11km_pinsrc_for(struct p11km_ctx *ctx, const struct p11km_uri *uri, CK_USER_TYPE user,
                 struct p11km_pinsrc *src)
{
	const char *spec = user == CKU_SO ? ctx->so_pin_source_opt : ctx->pin_source_opt;

	memset(src, 0, sizeof(*src));
	if (spec != NULL)
		return p11km_pinsrc_parse(spec, 0, src);
	if (user != CKU_USER)
		return 0;
	if (p11km_uri_pin_source(uri) != NULL)
		return p11km_pinsrc_parse(p11km_uri_pin_source(uri), 1, src);
	if (p11km_uri_pin_value(uri) != NULL) {
		p11km_warn("the URI carries pin-value: the PIN is visible to other users of this "
		           "machine (ps, shell history); use --pin-source instead");
		return p11km_pinsrc_value(p11km_uri_pin_value(uri), src);
	}
	return 0;
}

int
p11km_session_open_login(struct p11km_ctx *ctx, struct p11km_token *tok,
                         const struct p11km_uri *uri, int rw, int require_login,
                         struct p11km_session *out)
{
	struct p11km_pinsrc src;
	int r;

	if ((r = p11km_pinsrc_for(ctx, uri, CKU_USER, &src)) < 0)
		return r;
	if (src.spec == NULL && require_login &&
	    !(tok->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH)) {
		r = p11km_fail(P11KM_ERR_LOGIN,
		    "token '%s' needs a PIN for this: give --pin-source file:PATH, env:VAR, fd:N "
		    "or prompt", tok->label);
		goto out;
	}
	if ((r = p11km_session_open(ctx, tok, rw, out)) < 0)
		goto out;
	if (src.spec != NULL || require_login)
		r = p11km_login(out, CKU_USER, src.spec ? &src : NULL);
	if (r < 0)
		p11km_session_close(out);
out:
	p11km_pinsrc_release(&src);
	return r;
}

int
p11km_session_open_held(struct p11km_ctx *ctx, struct p11km_token *tok,
                        const struct p11km_uri *uri, int rw,
                        const struct p11km_session *held, struct p11km_session *out)
{
	int r;

	if (held == NULL || !held->open || held->logged_in != CKU_USER || held->f != tok->f ||
	    held->tok->slot != tok->slot)
		return p11km_session_open_login(ctx, tok, uri, rw, 1, out);
	if ((r = p11km_session_open(ctx, tok, rw, out)) == 0)
		out->logged_in = CKU_USER;
	return r;
}

int
p11km_session_open_so_or_user(struct p11km_ctx *ctx, struct p11km_token *tok,
                              const struct p11km_uri *uri, struct p11km_session *out)
{
	struct p11km_pinsrc so;
	int r;

	if ((r = p11km_pinsrc_for(ctx, uri, CKU_SO, &so)) < 0)
		return r;
	if (so.spec == NULL) {
		p11km_pinsrc_release(&so);
		return p11km_session_open_login(ctx, tok, uri, 1, 1, out);
	}
	if ((r = p11km_session_open(ctx, tok, 1, out)) == 0 && (r = p11km_login(out, CKU_SO, &so)) < 0)
		p11km_session_close(out);
	p11km_pinsrc_release(&so);
	return r;
}

int
p11km_token_open(struct p11km_ctx *ctx, const struct p11km_uri *uri, unsigned flags,
                 struct p11km_token **tok, struct p11km_session *s)
{
	int r;

	memset(s, 0, sizeof(*s));
	*tok = NULL;
	r = flags & P11KM_OPEN_INITIALISED ? p11km_token_find_initialised(ctx, uri, tok)
	                                   : p11km_token_find_one(ctx, uri, tok);
	if (r < 0)
		return r;
	r = flags & P11KM_OPEN_SO_OR_USER
	        ? p11km_session_open_so_or_user(ctx, *tok, uri, s)
	        : p11km_session_open_login(ctx, *tok, uri, !!(flags & P11KM_OPEN_RW),
	                                   !!(flags & P11KM_OPEN_LOGIN), s);
	if (r < 0) {
		p11km_token_free(*tok);
		*tok = NULL;
	}
	return r;
}
