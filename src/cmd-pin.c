/* cmd-pin.c: 'token pin change' (user or SO PIN) and 'token pin init' (the
 * SO sets the user PIN).  PINs only from PIN sources; the current PIN is
 * tried once, by p11km_login(), with its locked and final-try rules. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/change.h"
#include "p11km/cmd.h"
#include "p11km/util.h"

enum { O_SO = 1, O_NEW_PIN_SOURCE, O_DRY_RUN };

struct pin_opts {
	int init, so, dry_run;
	const char *new_spec;
	struct p11km_uri *uri;
};

static int
pin_opts_parse(const struct p11km_cmd *cmd, int argc, char **argv, struct pin_opts *o)
{
	struct p11km_getopt g = { 0 };
	int r;

	memset(o, 0, sizeof(*o));
	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			return r;
		if (r == O_SO)
			o->so = 1;
		else if (r == O_NEW_PIN_SOURCE)
			o->new_spec = g.optarg;
		else if (r == O_DRY_RUN)
			o->dry_run = 1;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	if (strcmp(argv[g.argi], "init") == 0)
		o->init = 1;
	else if (strcmp(argv[g.argi], "change") != 0)
		return p11km_fail(P11KM_ERR_USAGE, "'token pin %s': the forms are 'token pin change' "
		                  "and 'token pin init'; see 'p11km token pin --help'", argv[g.argi]);
	if (o->init && o->so)
		return p11km_fail(P11KM_ERR_USAGE, "'token pin init' sets the user PIN (the SO logs "
		                  "in with --so-pin-source); --so is for 'token pin change'");
	if (o->new_spec == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "'token pin %s' needs --new-pin-source SPEC (the "
		                  "new %s PIN: file:PATH, env:VAR, fd:N or prompt)",
		                  o->init ? "init" : "change", o->so ? "SO" : "user");
	if (g.argi + 1 < argc)
		return p11km_uri_parse(argv[g.argi + 1], &o->uri);
	return 0;
}

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

static void
print_result(struct p11km_ctx *ctx, const struct p11km_token *tok, const struct pin_opts *o)
{
	const char *who = o->so ? "so" : "user";

	if (ctx->json) {
		struct p11km_json j;
		p11km_json_init(&j, stdout);
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "token", tok->uri);
		p11km_json_kv_string(&j, "action", o->init ? "init" : "change");
		p11km_json_kv_string(&j, "pin", who);
		p11km_json_kv_bool(&j, "dry_run", o->dry_run);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
		return;
	}
	printf("%s%s %s PIN of %s\n", o->dry_run ? "would " : "",
	       o->init ? (o->dry_run ? "set" : "set the") : (o->dry_run ? "change" : "changed the"),
	       o->so ? "SO" : "user", tok->uri);
}

int
p11km_token_pin_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct pin_opts o;
	struct p11km_token *tok = NULL;
	struct p11km_pinsrc cur = { 0 }, nsrc = { 0 };
	struct p11km_session s = { 0 };
	CK_USER_TYPE user;
	const char *old = NULL;
	char *npin = NULL;
	size_t olen = 0, nlen = 0;
	CK_RV rv;
	int r;

	if ((r = pin_opts_parse(cmd, argc, argv, &o)) < 0)
		goto out;
	user = (o.init || o.so) ? CKU_SO : CKU_USER;
	if ((r = p11km_pinsrc_parse(o.new_spec, 0, &nsrc)) < 0 ||
	    (r = p11km_pinsrc_for(ctx, o.uri, user, &cur)) < 0)
		goto out;
	if (cur.spec == NULL) {
		r = p11km_fail(P11KM_ERR_USAGE, "'token pin %s' needs the current %s PIN: give "
		               "--%spin-source", o.init ? "init" : "change",
		               user == CKU_SO ? "SO" : "user", user == CKU_SO ? "so-" : "");
		goto out;
	}
	if (strcmp(cur.spec, nsrc.spec) == 0 && nsrc.kind != P11KM_PIN_PROMPT) {
		r = p11km_fail(P11KM_ERR_USAGE, "--new-pin-source is the current PIN's source (%s); "
		               "give the new PIN another source", cur.spec);
		goto out;
	}
	if ((r = p11km_token_find_initialised(ctx, o.uri, &tok)) < 0)
		goto out;
	if (o.dry_run) {
		print_result(ctx, tok, &o);
		goto out;
	}
	/* Everything read before the token is touched. */
	if ((r = new_pin_read(&nsrc, o.so ? "SO" : "user", tok, &npin, &nlen)) < 0)
		goto out;
	if ((r = p11km_session_open(ctx, tok, 1, &s)) < 0 || (r = p11km_login(&s, user, &cur)) < 0)
		goto out;
	if (o.init) {
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
	print_result(ctx, tok, &o);
	r = 0;
out:
	p11km_session_close(&s);
	p11km_pin_free(npin, nlen);
	p11km_pinsrc_release(&cur);
	p11km_pinsrc_release(&nsrc);
	p11km_token_free(tok);
	p11km_uri_free(o.uri);
	return r;
}

const struct p11km_opt p11km_token_pin_opts[] = {
	{ "new-pin-source", 1, O_NEW_PIN_SOURCE, "SPEC",
	  "the new PIN: file:PATH, env:VAR, fd:N or prompt (asked twice)" },
	{ "so", 0, O_SO, NULL, "change: the SO PIN (current one from --so-pin-source)" },
	{ "dry-run", 0, O_DRY_RUN, NULL, "say what would be changed; read no PIN, change nothing" },
	{ NULL, 0, 0, NULL, NULL },
};
