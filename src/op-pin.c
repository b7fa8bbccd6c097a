/* op-pin.c: the PIN operation ('token pin change': the user or SO PIN;
 * 'token pin init': the SO sets the user PIN) and its text and JSON form.  PINs only from PIN sources; the current PIN is
 * tried once, by p11km_login(), with its locked and final-try rules. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/change.h"
#include "p11km/json.h"
#include "p11km/op-token.h"
#include "p11km/util.h"

/* The new PIN, read once, never cached (a cached "prompt" answer would be
 * the current PIN); asked twice at a prompt. */
static int
new_pin_read(const struct p11km_pinsrc *src, const char *who, const struct p11km_token *tok,
             char **pin, size_t *len)
{
	char prompt[96], *again = NULL;
	size_t alen = 0;
	int r;

	snprintf(prompt, sizeof(prompt), "New %s PIN for token '%s': ", who, tok->label);
	if ((r = p11km_pin_read(src, prompt, pin, len)) < 0 || src->kind != P11KM_PIN_PROMPT)
		return r;
	snprintf(prompt, sizeof(prompt), "New %s PIN again: ", who);
	if ((r = p11km_pin_read(src, prompt, &again, &alen)) == 0 &&
	    (alen != *len || memcmp(again, *pin, alen) != 0))
		r = p11km_fail(P11KM_ERR_USAGE, "the two new PINs typed differ; nothing was changed");
	p11km_pin_free(again, alen);
	if (r < 0) {
		p11km_pin_free(*pin, *len);
		*pin = NULL;
	}
	return r;
}

void
p11km_pin_print(FILE *fp, int json, const struct p11km_pin_result *res)
{
	if (json) {
		struct p11km_json j;
		p11km_json_init(&j, fp);
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "token", res->token_uri);
		p11km_json_kv_string(&j, "action", res->init ? "init" : "change");
		p11km_json_kv_string(&j, "pin", res->so ? "so" : "user");
		p11km_json_kv_bool(&j, "dry_run", res->dry_run);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
		return;
	}
	fprintf(fp, "%s%s %s PIN of %s\n", res->dry_run ? "would " : "",
	        res->init ? (res->dry_run ? "set" : "set the")
	                  : (res->dry_run ? "change" : "changed the"),
	        res->so ? "SO" : "user", res->token_uri);
}

void
p11km_pin_result_release(struct p11km_pin_result *res)
{
	free(res->token_uri);
	memset(res, 0, sizeof(*res));
}

int
p11km_pin_change(struct p11km_ctx *ctx, const struct p11km_pin_opts *o,
                 struct p11km_pin_result *res)
{
	struct p11km_uri *uri = NULL;
	struct p11km_token *tok = NULL;
	struct p11km_pinsrc cur = { 0 }, nsrc = { 0 };
	struct p11km_session s = { 0 };
	CK_USER_TYPE user;
	const char *old = NULL;
	char *npin = NULL;
	size_t olen = 0, nlen = 0;
	CK_RV rv;
	int r;

	memset(res, 0, sizeof(*res));
	if (o->init && o->so)
		return p11km_fail(P11KM_ERR_USAGE, "'token pin init' sets the user PIN (the SO logs "
		                  "in with --so-pin-source); --so is for 'token pin change'");
	if (o->new_pin_source == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "'token pin %s' needs --new-pin-source SPEC (the "
		                  "new %s PIN: file:PATH, env:VAR, fd:N or prompt)",
		                  o->init ? "init" : "change", o->so ? "SO" : "user");
	if (o->uri != NULL && (r = p11km_uri_parse(o->uri, &uri)) < 0)
		return r;
	user = (o->init || o->so) ? CKU_SO : CKU_USER;
	if ((r = p11km_pinsrc_parse(o->new_pin_source, 0, &nsrc)) < 0 ||
	    (r = p11km_pinsrc_for(ctx, uri, user, &cur)) < 0)
		goto out;
	if (cur.spec == NULL) {
		r = p11km_fail(P11KM_ERR_USAGE, "'token pin %s' needs the current %s PIN: give "
		               "--%spin-source", o->init ? "init" : "change",
		               user == CKU_SO ? "SO" : "user", user == CKU_SO ? "so-" : "");
		goto out;
	}
	if (strcmp(cur.spec, nsrc.spec) == 0 && nsrc.kind != P11KM_PIN_PROMPT) {
		r = p11km_fail(P11KM_ERR_USAGE, "--new-pin-source is the current PIN's source (%s); "
		               "give the new PIN another source", cur.spec);
		goto out;
	}
	if ((r = p11km_token_find_initialised(ctx, uri, &tok)) < 0)
		goto out;
	res->init = o->init;
	res->so = o->so;
	res->dry_run = o->dry_run;
	if (o->dry_run)
		goto done;
	/* Everything read before the token is touched. */
	if ((r = new_pin_read(&nsrc, o->so ? "SO" : "user", tok, &npin, &nlen)) < 0)
		goto out;
	if ((r = p11km_session_open(ctx, tok, 1, &s)) < 0 || (r = p11km_login(&s, user, &cur)) < 0)
		goto out;
	if (o->init) {
		rv = p11km_pin_init_call(&s, npin, nlen);
		if (rv != CKR_OK) {
			r = p11km_fail_ckr(rv, "token pin init", "C_InitPIN");
			goto out;
		}
	} else {
		/* the PIN C_Login accepted (cached for this run) */
		if ((r = p11km_pin_get_for(ctx, &cur, user, tok->uri, "", &old, &olen)) < 0)
			goto out;
		if (olen == nlen && memcmp(old, npin, nlen) == 0) {
			r = p11km_fail(P11KM_ERR_USAGE, "the new PIN is the current one; nothing was "
			               "changed");
			goto out;
		}
		rv = p11km_pin_set_call(&s, old, olen, npin, nlen);
		if (rv != CKR_OK) {
			r = p11km_fail_ckr(rv, "token pin change", "C_SetPIN");
			goto out;
		}
	}
done:
	if ((res->token_uri = strdup(tok->uri)) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
out:
	if (r < 0)
		p11km_pin_result_release(res);
	p11km_session_close(&s);
	p11km_pin_free(npin, nlen);
	p11km_pinsrc_release(&cur);
	p11km_pinsrc_release(&nsrc);
	p11km_token_free(tok);
	p11km_uri_free(uri);
	return r;
}
