/* op-token.c: the token list and token init operations ('token list',
 * 'token init') and their text and JSON form.  PINs: op-pin.c. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/change.h"
#include "p11km/json.h"
#include "p11km/op-token.h"
#include "p11km/util.h"

static const struct {
	CK_FLAGS flag;
	const char *name;
} token_flags[] = {
	{ CKF_TOKEN_INITIALIZED, "initialized" },
	{ CKF_LOGIN_REQUIRED, "login_required" },
	{ CKF_USER_PIN_INITIALIZED, "user_pin_initialized" },
	{ CKF_RNG, "rng" },
	{ CKF_WRITE_PROTECTED, "write_protected" },
	{ CKF_PROTECTED_AUTHENTICATION_PATH, "protected_auth_path" },
	{ CKF_USER_PIN_COUNT_LOW, "user_pin_count_low" },
	{ CKF_USER_PIN_FINAL_TRY, "user_pin_final_try" },
	{ CKF_USER_PIN_LOCKED, "user_pin_locked" },
	{ CKF_USER_PIN_TO_BE_CHANGED, "user_pin_to_be_changed" },
	{ CKF_SO_PIN_COUNT_LOW, "so_pin_count_low" },
	{ CKF_SO_PIN_FINAL_TRY, "so_pin_final_try" },
	{ CKF_SO_PIN_LOCKED, "so_pin_locked" },
};

static const char *
sign_names(unsigned sign, char *buf, size_t len)
{
	buf[0] = '\0';
	if (sign & P11KM_SIGN_RSA_PKCS1) strncat(buf, "rsa-pkcs1 ", len - strlen(buf) - 1);
	if (sign & P11KM_SIGN_RSA_PSS) strncat(buf, "rsa-pss ", len - strlen(buf) - 1);
	if (sign & P11KM_SIGN_ECDSA) strncat(buf, "ecdsa ", len - strlen(buf) - 1);
	if (sign & P11KM_SIGN_EDDSA) strncat(buf, "eddsa ", len - strlen(buf) - 1);
	if (buf[0] == '\0')
		snprintf(buf, len, "none");
	else
		buf[strlen(buf) - 1] = '\0';
	return buf;
}

static void
print_token_text(FILE *fp, const struct p11km_token *t, const struct p11km_caps *caps, int have_caps)
{
	char sign[64];
	char *gen = have_caps ? p11km_caps_usable_list(caps) : NULL;

	fprintf(fp, "%s\n", t->uri);
	if (!(t->info.flags & CKF_TOKEN_INITIALIZED))
		fprintf(fp, "    state:         not initialised ('p11km token init' sets it up)\n");
	/* what the module reports may hold control characters: escaped */
	fprintf(fp, "    label:         %s\n", p11km_esc(t->label));
	fprintf(fp, "    manufacturer:  %s\n", p11km_esc(t->manufacturer));
	fprintf(fp, "    model:         %s\n", p11km_esc(t->model));
	fprintf(fp, "    serial:        %s\n", p11km_esc(t->serial));
	fprintf(fp, "    module:        %s (slot %lu)\n", p11km_esc(t->mod->name), (unsigned long)t->slot);
	fprintf(fp, "    flags:        ");
	for (size_t i = 0; i < sizeof(token_flags) / sizeof(token_flags[0]); i++)
		if (t->info.flags & token_flags[i].flag)
			fprintf(fp, " %s", token_flags[i].name);
	fprintf(fp, "\n");
	if (have_caps) {
		fprintf(fp, "    key types:     %s\n", gen ? gen : "?");
		fprintf(fp, "    signing:       %s\n", sign_names(caps->sign, sign, sizeof(sign)));
	}
	free(gen);
}

static void
print_token_json(struct p11km_json *j, const struct p11km_token *t, const struct p11km_caps *caps,
                 int have_caps)
{
	p11km_json_object_begin(j);
	p11km_json_kv_string(j, "uri", t->uri);
	p11km_json_kv_string(j, "label", t->label);
	p11km_json_kv_string(j, "manufacturer", t->manufacturer);
	p11km_json_kv_string(j, "model", t->model);
	p11km_json_kv_string(j, "serial", t->serial);
	p11km_json_kv_string(j, "module", t->mod->name);
	p11km_json_kv_int(j, "slot", (int64_t)t->slot);
	p11km_json_key(j, "flags");
	p11km_json_object_begin(j);
	for (size_t i = 0; i < sizeof(token_flags) / sizeof(token_flags[0]); i++)
		p11km_json_kv_bool(j, token_flags[i].name, (t->info.flags & token_flags[i].flag) != 0);
	p11km_json_object_end(j);
	p11km_json_key(j, "key_types");
	p11km_json_array_begin(j);
	for (int k = 0; have_caps && k < P11KM_KEY_N; k++)
		if (p11km_caps_usable(caps, k))
			p11km_json_string(j, p11km_keytype_name(k));
	p11km_json_array_end(j);
	p11km_json_key(j, "signing");
	p11km_json_array_begin(j);
	if (have_caps) {
		if (caps->sign & P11KM_SIGN_RSA_PKCS1) p11km_json_string(j, "rsa-pkcs1");
		if (caps->sign & P11KM_SIGN_RSA_PSS) p11km_json_string(j, "rsa-pss");
		if (caps->sign & P11KM_SIGN_ECDSA) p11km_json_string(j, "ecdsa");
		if (caps->sign & P11KM_SIGN_EDDSA) p11km_json_string(j, "eddsa");
	}
	p11km_json_array_end(j);
	p11km_json_object_end(j);
}

int
p11km_token_list(struct p11km_ctx *ctx, const struct p11km_token_list_opts *o,
                 struct p11km_token_list_result *res)
{
	struct p11km_uri *uri = NULL;
	int r;

	memset(res, 0, sizeof(*res));
	res->all = o->uri == NULL;
	if (o->uri != NULL && (r = p11km_uri_parse(o->uri, &uri)) < 0)
		return r;
	if ((r = p11km_tokens_find(ctx, uri, &res->toks, &res->n)) < 0)
		goto out;
	if (res->n > 0 && ((res->caps = calloc(res->n, sizeof(*res->caps))) == NULL ||
	                   (res->have_caps = calloc(res->n, sizeof(*res->have_caps))) == NULL)) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	/* Gather everything first: no partial output on failure. */
	for (size_t i = 0; i < res->n; i++) {
		if (!(res->toks[i].info.flags & CKF_TOKEN_INITIALIZED))
			continue;
		if ((r = p11km_token_caps(&res->toks[i], &res->caps[i])) < 0)
			goto out;
		res->have_caps[i] = 1;
	}
	if (uri != NULL && res->n == 0)
		r = p11km_fail(P11KM_ERR_NOTFOUND,
		    "no token matches the URI; run 'p11km token list' to see the tokens");
out:
	if (r < 0)
		p11km_token_list_result_release(res);
	p11km_uri_free(uri);
	return r;
}

void
p11km_token_list_print(FILE *fp, int json, const struct p11km_token_list_result *res)
{
	struct p11km_json j;

	if (json) {
		p11km_json_init(&j, fp);
		p11km_json_object_begin(&j);
		p11km_json_key(&j, "tokens");
		p11km_json_array_begin(&j);
		for (size_t i = 0; i < res->n; i++)
			print_token_json(&j, &res->toks[i], &res->caps[i], res->have_caps[i]);
		p11km_json_array_end(&j);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
		return;
	}
	for (size_t i = 0; i < res->n; i++)
		print_token_text(fp, &res->toks[i], &res->caps[i], res->have_caps[i]);
	if (res->n == 0 && res->all)
		p11km_note("no token found; check the module (--module) and its configuration");
}

void
p11km_token_list_result_release(struct p11km_token_list_result *res)
{
	free(res->caps);
	free(res->have_caps);
	p11km_tokens_free(res->toks, res->n);
	memset(res, 0, sizeof(*res));
}

/* --- token init ----------------------------------------------------------- */

/* The token to initialise: the URI's, or the one uninitialised token. */
static int
init_target(struct p11km_ctx *ctx, struct p11km_uri *uri, int force, struct p11km_token **out)
{
	struct p11km_token *toks = NULL, *t;
	size_t n = 0, k = 0, pick = 0;
	int r;

	if (uri != NULL) {
		if ((r = p11km_token_find_one(ctx, uri, &t)) < 0)
			return r;
		if ((t->info.flags & CKF_TOKEN_INITIALIZED) && !force) {
			r = p11km_fail(P11KM_ERR_EXISTS,
			    "token '%s' is already initialised: initialising it again destroys every "
			    "key and certificate on it; add --force if that is what you want",
			    t->label);
			p11km_token_free(t);
			return r;
		}
		*out = t;
		return 0;
	}
	if ((r = p11km_tokens_find(ctx, NULL, &toks, &n)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (!(toks[i].info.flags & CKF_TOKEN_INITIALIZED))
			k++, pick = i;
	if (k != 1) {
		p11km_tokens_free(toks, n);
		return p11km_fail(k == 0 ? P11KM_ERR_NOTFOUND : P11KM_ERR_AMBIGUOUS,
		    k == 0 ? "no uninitialised token found; name a token URI to re-initialise it"
		           : "several uninitialised tokens found; choose the module with --module");
	}
	if ((t = malloc(sizeof(*t))) == NULL) {
		p11km_tokens_free(toks, n);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	*t = toks[pick];
	toks[pick].uri = NULL;
	p11km_tokens_free(toks, n);
	*out = t;
	return 0;
}

/*
 * The token after C_InitToken.  SoftHSM moves a token it initialises from
 * its free slot to a new slot (with a new serial), and keeps slot and
 * serial when it re-initialises one.  So: the re-initialised token by its
 * serial, or the initialised token with the label whose serial was not an
 * initialised token's before.
 */
static int
find_initialised(struct p11km_ctx *ctx, const struct p11km_token *target, const char *label,
                 struct p11km_token *before, size_t nbefore, struct p11km_token **out)
{
	struct p11km_token *toks = NULL;
	size_t n = 0;
	int r, reinit = (target->info.flags & CKF_TOKEN_INITIALIZED) != 0;

	if ((r = p11km_tokens_find(ctx, NULL, &toks, &n)) < 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		int old = 0;
		if (toks[i].mod != target->mod || strcmp(toks[i].label, label) != 0 ||
		    !(toks[i].info.flags & CKF_TOKEN_INITIALIZED))
			continue;
		if (reinit) {
			if (strcmp(toks[i].serial, target->serial) != 0)
				continue;
		} else {
			for (size_t b = 0; b < nbefore; b++)
				if (before[b].mod == toks[i].mod &&
				    (before[b].info.flags & CKF_TOKEN_INITIALIZED) &&
				    strcmp(before[b].serial, toks[i].serial) == 0)
					old = 1;
			if (old)
				continue;
		}
		struct p11km_token *t = malloc(sizeof(*t));
		if (t == NULL)
			break;
		*t = toks[i];
		toks[i].uri = NULL;
		p11km_tokens_free(toks, n);
		*out = t;
		return 0;
	}
	p11km_tokens_free(toks, n);
	return p11km_fail(P11KM_ERR_TOKEN, "the token was initialised but cannot be found again");
}

/* Labels select tokens: refuse a second token with the same label. */
static int
label_unique(int force, const struct p11km_token *target, const char *label,
             const struct p11km_token *toks, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!(toks[i].info.flags & CKF_TOKEN_INITIALIZED) || strcmp(toks[i].label, label) != 0)
			continue;
		if (toks[i].mod == target->mod && strcmp(toks[i].serial, target->serial) == 0)
			continue; /* the target itself, re-initialised */
		if (force)
			return 0;
		return p11km_fail(P11KM_ERR_EXISTS,
		    "a token labelled '%s' exists already (%s): URIs select tokens by label, so "
		    "choose another label (or add --force)", label, toks[i].uri);
	}
	return 0;
}

/* The new user PIN against the token's PIN length range, before
 * C_InitToken: C_InitPIN refusing it after would leave an initialised
 * token without a user PIN (opencryptoki: at most 8).  A range a module
 * reports that makes no sense (empty, max 0) is not used. */
static int
pin_length_ok(const struct p11km_token *t, size_t len)
{
	CK_ULONG lo = t->info.ulMinPinLen, hi = t->info.ulMaxPinLen;

	if (hi == 0 || lo > hi || hi == CK_UNAVAILABLE_INFORMATION ||
	    (len >= lo && len <= hi))
		return 0;
	return p11km_fail(P11KM_ERR_USAGE, "token '%s' takes user PINs of %lu to %lu characters, "
	                  "the new one has %zu; nothing was changed", t->label, lo, hi, len);
}

/* A failure after C_InitToken: the token exists, without a user PIN. */
static int
half_done(int code, const char *label)
{
	char *msg = strdup(p11km_errmsg(code));

	code = p11km_fail(code, "%s; token '%s' is initialised but its user PIN is not set: "
	                  "run 'p11km token init' on it again with --force",
	                  msg ? msg : p11km_strerror(code), label);
	free(msg);
	return code;
}

int
p11km_token_init(struct p11km_ctx *ctx, const struct p11km_token_init_opts *o,
                 struct p11km_token_init_result *res)
{
	struct p11km_uri *uri = NULL;
	struct p11km_token *t = NULL, *nt = NULL, *before = NULL;
	struct p11km_pinsrc so = { 0 }, user = { 0 };
	struct p11km_session s = { 0 };
	const char *label = o->label, *so_pin, *user_pin;
	size_t so_len, user_len, nbefore = 0;
	CK_UTF8CHAR padded[33];
	CK_RV rv;
	int r;

	memset(res, 0, sizeof(*res));
	if (label == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "token init needs --label LABEL");
	if ((r = p11km_label_check(label, 32)) < 0) /* CK_TOKEN_INFO holds 32 bytes */
		return r;
	if (o->so_pin_source == NULL || o->pin_source == NULL)
		return p11km_fail(P11KM_ERR_USAGE,
		    "token init needs --so-pin-source and --pin-source (the SO PIN and the new user PIN)");
	if (o->uri != NULL && (r = p11km_uri_parse(o->uri, &uri)) < 0)
		return r;
	if ((r = p11km_pinsrc_parse(o->so_pin_source, 0, &so)) < 0 ||
	    (r = p11km_pinsrc_parse(o->pin_source, 0, &user)) < 0)
		goto out;
	if ((r = init_target(ctx, uri, o->force, &t)) < 0)
		goto out;
	/* C_InitToken of an initialised token tries its SO PIN: a locked or
	 * final-try SO PIN is never tried, --force or not (it means "destroy
	 * the token", not "risk it").  A token not initialised has no SO PIN
	 * yet (SoftHSM reports it "locked"). */
	if ((t->info.flags & CKF_TOKEN_INITIALIZED) &&
	    (r = p11km_pin_flags_check(ctx, t, CKU_SO, &so, 0)) < 0)
		goto out;
	/* Read both PINs before touching the token. */
	if ((r = p11km_pin_get_for(ctx, &so, CKU_SO, NULL, "New SO PIN: ", &so_pin, &so_len)) < 0 ||
	    (r = p11km_pin_get(ctx, &user, "New user PIN: ", &user_pin, &user_len)) < 0)
		goto out;
	if ((r = pin_length_ok(t, user_len)) < 0 ||
	    (r = p11km_token_lock(ctx, t)) < 0 ||
	    (r = p11km_tokens_find(ctx, NULL, &before, &nbefore)) < 0 ||
	    (r = label_unique(o->force, t, label, before, nbefore)) < 0)
		goto out;
	/* 32 bytes, blank-padded, as PKCS#11 says; and a NUL after them: p11-kit's
	 * RPC client (p11-kit-client.so 0.24.1) takes the label for a C string */
	memset(padded, ' ', 32);
	padded[32] = '\0';
	memcpy(padded, label, strlen(label));
	rv = p11km_token_init_call(t, so_pin, so_len, padded);
	if (rv != CKR_OK) {
		r = p11km_fail_ckr(rv, "token init", "C_InitToken");
		goto out;
	}
	if ((r = find_initialised(ctx, t, label, before, nbefore, &nt)) < 0 ||
	    (r = p11km_session_open(ctx, nt, 1, &s)) < 0 ||
	    (r = p11km_login(&s, CKU_SO, &so)) < 0) {
		r = half_done(r, label);
		goto out;
	}
	rv = p11km_pin_init_call(&s, user_pin, user_len);
	if (rv != CKR_OK) {
		r = half_done(p11km_fail_ckr(rv, "token init", "C_InitPIN"), label);
		goto out;
	}
	if ((res->uri = strdup(nt->uri)) == NULL || (res->label = strdup(nt->label)) == NULL ||
	    (res->serial = strdup(nt->serial)) == NULL) {
		p11km_token_init_result_release(res);
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
out:
	p11km_session_close(&s);
	p11km_tokens_free(before, nbefore);
	p11km_token_free(nt);
	p11km_token_free(t);
	p11km_pinsrc_release(&so);
	p11km_pinsrc_release(&user);
	p11km_uri_free(uri);
	return r;
}

void
p11km_token_init_print(FILE *fp, int json, const struct p11km_token_init_result *res)
{
	struct p11km_json j;

	if (!json) {
		fprintf(fp, "%s\n", res->uri);
		return;
	}
	p11km_json_init(&j, fp);
	p11km_json_object_begin(&j);
	p11km_json_kv_string(&j, "uri", res->uri);
	p11km_json_kv_string(&j, "label", res->label);
	p11km_json_kv_string(&j, "serial", res->serial);
	p11km_json_object_end(&j);
	p11km_json_end(&j);
}

void
p11km_token_init_result_release(struct p11km_token_init_result *res)
{
	free(res->uri);
	free(res->label);
	free(res->serial);
	memset(res, 0, sizeof(*res));
}
