/* ca-acme-account.c: the ACME account (RFC 8555 7.3): found again with
 * onlyReturnExisting, or created (terms agreed, contact, External Account
 * Binding); key rollover (7.3.5) and deactivation (7.3.6).
 *
 * The account URL is asked for in every run: a URL kept from an earlier
 * run would be a cache, and the CA is the truth (an account may have been
 * deactivated or its key rolled over since).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "ca-acme.h"
#include "p11km/ca.h"
#include "p11km/pin.h"
#include "p11km/util.h"

/* The externalAccountBinding member (RFC 8555 7.3.4): a JWS by the HMAC key
 * the CA gave out (base64url, read from the profile's secret source) over
 * the account key's JWK. */
static int
eab_member(struct acme *a, json_t *pl)
{
	struct p11km_pinsrc src = { 0 };
	char *text = NULL, *ph = NULL, *hb = NULL, *pb = NULL, *input = NULL, *sb = NULL;
	unsigned char *key = NULL, mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	size_t text_len = 0, key_len = 0;
	json_t *hdr = NULL;
	int r;

	if ((r = p11km_pinsrc_parse(a->p->eab_hmac_source, 0, &src)) < 0)
		return r;
	if ((r = p11km_pin_read(&src, "EAB HMAC key: ", &text, &text_len)) < 0)
		goto out;
	if ((key = p11km_b64url_decode(text, &key_len)) == NULL || key_len < 16) {
		r = p11km_fail(P11KM_ERR_INPUT, "the EAB HMAC key from '%s' is not base64url of at "
		               "least 16 bytes", src.spec);
		goto out;
	}
	hdr = json_pack("{s:s,s:s,s:s}", "alg", "HS256", "kid", a->p->eab_kid, "url", a->new_account);
	if (hdr == NULL || (ph = json_dumps(hdr, JSON_COMPACT)) == NULL ||
	    (hb = p11km_b64url((const unsigned char *)ph, strlen(ph))) == NULL ||
	    (pb = p11km_b64url((const unsigned char *)a->key.jwk, strlen(a->key.jwk))) == NULL ||
	    (input = p11km_asprintf("%s.%s", hb, pb)) == NULL ||
	    HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)input, strlen(input), mac,
	         &mac_len) == NULL ||
	    (sb = p11km_b64url(mac, mac_len)) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "cannot make the external account binding");
		goto out;
	}
	json_object_set_new(pl, "externalAccountBinding",
	                    json_pack("{s:s,s:s,s:s}", "protected", hb, "payload", pb, "signature", sb));
	acme_step(a, "eab", a->p->eab_kid);
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	if (text != NULL)
		p11km_pin_free(text, text_len);
	if (key != NULL)
		p11km_freezero(key, key_len);
	p11km_pinsrc_release(&src);
	json_decref(hdr);
	free(ph);
	free(hb);
	free(pb);
	free(input);
	free(sb);
	return r;
}

static int
account_request(struct acme *a, int lookup, json_t **acct, struct p11km_http_resp *r)
{
	json_t *pl = json_object();
	char *text = NULL;
	int rv = 0;

	if (!lookup) {
		json_object_set_new(pl, "termsOfServiceAgreed", json_true());
		if (a->p->contact != NULL)
			json_object_set_new(pl, "contact", json_pack("[s]", a->p->contact));
		if (a->p->eab_kid != NULL)
			rv = eab_member(a, pl);
	} else {
		json_object_set_new(pl, "onlyReturnExisting", json_true());
	}
	if (rv == 0 && (text = json_dumps(pl, JSON_COMPACT)) == NULL)
		rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	json_decref(pl);
	if (rv < 0)
		return rv;
	rv = acme_post(a, a->new_account, text, 1, r);
	free(text);
	if (rv < 0)
		return rv;
	rv = acme_answer_json(a, "the account", a->new_account, r, acct);
	if (rv < 0 && lookup && strstr(p11km_errmsg(rv), "accountDoesNotExist") != NULL)
		rv = p11km_fail(P11KM_ERR_NOTFOUND, "the CA has no account for this account key; "
		                "read its terms of service and add the profile again with --agree-tos");
	return rv;
}

/* Find the account of the open key (lookup: never create one). */
static int
account_find(struct acme *a, int lookup)
{
	struct p11km_http_resp r;
	json_t *acct = NULL;
	const char *st;
	int rv;

	memset(&r, 0, sizeof(r));
	if ((rv = account_request(a, lookup || !a->p->agree_tos, &acct, &r)) == 0 &&
	    (rv = acme_check_origin(a, r.location, "the account request")) == 0) {
		a->kid = r.location;
		r.location = NULL;
		st = json_string_value(json_object_get(acct, "status"));
		if (st == NULL || strcmp(st, "valid") != 0)
			rv = p11km_fail(P11KM_ERR_FAILED, "the ACME account '%s' is %s, not valid", a->kid,
			                st ? st : "of unknown status");
	}
	if (rv == 0)
		acme_step(a, "account", a->kid);
	json_decref(acct);
	p11km_http_resp_release(&r);
	return rv;
}

int
acme_account(struct acme *a)
{
	int rv;

	if (a->p->account_key == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "CA profile '%s' has no account key", a->p->name);
	if ((rv = p11km_account_key_open_held(a->ctx, a->p->account_key, a->sub ? a->sub->held : NULL,
	                                      &a->key)) < 0)
		return rv;
	return account_find(a, 0);
}

/* keyChange (7.3.5): an inner JWS by the new key (its jwk, no nonce) over
 * {account, oldKey}, inside an outer JWS by the old key. */
static int
rollover(struct acme *a, const char *new_key)
{
	struct p11km_account_key nk;
	struct p11km_http_resp r;
	json_t *inner_pl = NULL, *o = NULL;
	char *ipl = NULL, *inner = NULL;
	int rv;

	memset(&r, 0, sizeof(r));
	if (a->key_change == NULL)
		return p11km_fail(P11KM_ERR_UNSUPPORTED, "the CA's directory has no keyChange: it "
		                  "cannot roll over account keys");
	if ((rv = p11km_account_key_open(a->ctx, new_key, &nk)) < 0)
		return rv;
	if (strcmp(nk.jwk, a->key.jwk) == 0) {
		rv = p11km_fail(P11KM_ERR_USAGE, "--new-key is the account's key already");
		goto out;
	}
	inner_pl = json_pack("{s:s,s:o}", "account", a->kid, "oldKey", json_loads(a->key.jwk, 0, NULL));
	if (inner_pl == NULL || (ipl = json_dumps(inner_pl, JSON_COMPACT)) == NULL) {
		rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rv = p11km_jws_sign(&nk, a->key_change, NULL, NULL, ipl, &inner)) < 0 ||
	    (rv = acme_post(a, a->key_change, inner, 0, &r)) < 0)
		goto out;
	if (r.status != 200) {
		if ((rv = acme_answer_json(a, "the key rollover", a->key_change, &r, &o)) == 0)
			rv = p11km_fail(P11KM_ERR_INPUT, "the key rollover answered HTTP %ld", r.status);
		goto out;
	}
	acme_step(a, "rollover", new_key);
out:
	a->extra_signatures += nk.signatures;
	p11km_account_key_release(&nk);
	p11km_http_resp_release(&r);
	json_decref(inner_pl);
	json_decref(o);
	free(ipl);
	free(inner);
	return rv;
}

static int
deactivate(struct acme *a)
{
	json_t *o = NULL;
	const char *st;
	int rv;

	if ((rv = acme_post_json(a, a->kid, "{\"status\":\"deactivated\"}", "the deactivation", &o,
	                         NULL)) < 0)
		return rv;
	st = json_string_value(json_object_get(o, "status"));
	if (st == NULL || strcmp(st, "deactivated") != 0)
		rv = p11km_fail(P11KM_ERR_FAILED, "the CA answered the deactivation with status %s",
		                st ? st : "(none)");
	else
		acme_step(a, "deactivated", a->kid);
	json_decref(o);
	return rv;
}

int
p11km_acme_account(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                   enum p11km_acme_account_op op, const char *new_key,
                   struct p11km_ca_submit *sub, char **account_url)
{
	struct acme a;
	int rv;

	*account_url = NULL;
	acme_init(&a, ctx, p, sub);
	if (p->account_key == NULL) {
		rv = p11km_fail(P11KM_ERR_USAGE, "CA profile '%s' has no account key", p->name);
		goto out;
	}
	/* a lookup makes no key: a key never used has no account */
	if (strncmp(p->account_key, "pkcs11:", 7) != 0 && access(p->account_key, F_OK) != 0) {
		rv = p11km_fail(P11KM_ERR_NOTFOUND, "the account key '%s' does not exist yet: no "
		                "account to find ('req submit' makes both)", p->account_key);
		goto out;
	}
	if ((rv = acme_directory(&a, 0)) < 0 ||
	    (rv = p11km_account_key_open(ctx, p->account_key, &a.key)) < 0 ||
	    (rv = account_find(&a, 1)) < 0)
		goto out;
	if (op == P11KM_ACME_ROLLOVER)
		rv = rollover(&a, new_key);
	else if (op == P11KM_ACME_DEACTIVATE)
		rv = deactivate(&a);
	if (rv == 0 && (*account_url = strdup(a.kid)) == NULL)
		rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
out:
	acme_done(&a);
	return rv;
}
