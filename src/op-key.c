/* op-key.c: the key generate and key attest operations ('key generate',
 * 'key attest') and their text and JSON form.  'key list': op-object.c. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "p11km/cert.h"
#include "p11km/json.h"
#include "p11km/keygen.h"
#include "p11km/keys.h"
#include "p11km/op-token.h"
#include "p11km/util.h"

/* PIV key slots and the one-byte CKA_ID ykcs11 and OpenSC give them. */
static const struct { const char *slot; unsigned char id; const char *name; } piv_slots[] = {
	{ "9a", 0x01, "PIV Authentication" }, { "9c", 0x02, "Digital Signature" },
	{ "9d", 0x03, "Key Management" }, { "9e", 0x04, "Card Authentication" },
};

static int
piv_slot(const char *arg, unsigned char *id, const char **name)
{
	for (size_t i = 0; i < sizeof(piv_slots) / sizeof(piv_slots[0]); i++)
		if (strcasecmp(arg, piv_slots[i].slot) == 0) {
			*id = piv_slots[i].id;
			*name = piv_slots[i].name;
			return 0;
		}
	return p11km_fail(P11KM_ERR_USAGE, "unknown PIV slot '%s': use 9a, 9c, 9d or 9e", arg);
}

/* ykcs11 (a YubiKey's PIV applet) takes one-byte ids, the slot number: a
 * longer one is cut to its first byte and overwrites that slot's key. */
static int
id_fits_token(const struct p11km_token *tok, size_t id_len)
{
	if (id_len > 1 && p11km_token_is_piv(tok) == P11KM_PIV_WRITABLE)
		return p11km_fail(P11KM_ERR_UNSUPPORTED,
		    "token '%s' is a PIV card: its key ids are one byte (the slot); use --slot "
		    "9a|9c|9d|9e or --id 01..04", tok->label);
	return 0;
}

int
p11km_key_generate(struct p11km_ctx *ctx, const struct p11km_keygen_opts *o,
                   struct p11km_keygen_result *res)
{
	struct p11km_keygen kg = { .type = o->type, .label = o->label, .id = o->id,
	                           .id_len = o->id_len, .force = o->force,
	                           .allow_engine_breaking = o->allow_engine_breaking };
	struct p11km_uri *uri = NULL;
	struct p11km_token *tok = NULL;
	struct p11km_session s = { 0 };
	struct p11km_object priv = { 0 };
	unsigned char slot_id = 0;
	const char *slot_name = NULL;
	int r;

	memset(res, 0, sizeof(*res));
	if (o->slot != NULL) {
		if ((r = piv_slot(o->slot, &slot_id, &slot_name)) < 0)
			return r;
		if (o->id != NULL)
			return p11km_fail(P11KM_ERR_USAGE, "give --slot or --id, not both");
		kg.id = &slot_id;
		kg.id_len = 1;
		if (kg.label == NULL)
			kg.label = slot_name; /* PIV modules name keys by slot anyway */
	}
	if (kg.label == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "key generate needs --label LABEL (or --slot)");
	if ((r = p11km_label_check(kg.label, 128)) < 0 || (r = p11km_uri_parse(o->uri, &uri)) < 0)
		goto out;
	if (uri->has_object) {
		r = p11km_fail(P11KM_ERR_USAGE,
		    "give the token's URI (without object=, id= or type=); name the key with --label");
		goto out;
	}
	if ((r = p11km_token_open(ctx, uri, P11KM_OPEN_SO_OR_USER, &tok, &s)) < 0 ||
	    (r = id_fits_token(tok, kg.id_len)) < 0 ||
	    (r = p11km_keygen_check(&s, &kg)) < 0 || (r = p11km_keygen_run(&s, &kg, &priv, NULL)) < 0)
		goto out;
	res->type = kg.type;
	res->sensitive = priv.sensitive == P11KM_TRUE;
	res->extractable = priv.extractable == P11KM_TRUE;
	if ((res->uri = p11km_object_uri(tok, &priv)) == NULL ||
	    (res->token = strdup(tok->label)) == NULL ||
	    (priv.label != NULL && (res->label = strdup(priv.label)) == NULL) ||
	    (res->id = priv.id_len ? p11km_hex(priv.id, priv.id_len) : strdup("")) == NULL) {
		p11km_keygen_result_release(res);
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
out:
	p11km_object_release(&priv);
	p11km_session_close(&s);
	p11km_token_free(tok);
	p11km_uri_free(uri);
	return r;
}

void
p11km_key_generate_print(FILE *fp, int json, const struct p11km_keygen_result *res)
{
	struct p11km_json j;

	if (!json) {
		fprintf(fp, "%s\n", res->uri);
		return;
	}
	p11km_json_init(&j, fp);
	p11km_json_object_begin(&j);
	p11km_json_kv_string(&j, "uri", res->uri);
	p11km_json_kv_string(&j, "token", res->token);
	p11km_json_kv_string(&j, "label", res->label);
	p11km_json_kv_string(&j, "id", res->id);
	p11km_json_kv_string(&j, "type", p11km_keytype_name(res->type));
	p11km_json_kv_bool(&j, "sensitive", res->sensitive);
	p11km_json_kv_bool(&j, "extractable", res->extractable);
	p11km_json_object_end(&j);
	p11km_json_end(&j);
}

void
p11km_keygen_result_release(struct p11km_keygen_result *res)
{
	free(res->uri);
	free(res->token);
	free(res->label);
	free(res->id);
	memset(res, 0, sizeof(*res));
}

/* --- key attest ------------------------------------------------------------- */

/* ykcs11 shows the device attestation certificate (slot f9) with this id. */
static const unsigned char attest_device_id = 0x19;

/* The certificates with CKA_ID id, parsed (those that do not parse left out). */
static int
certs_with_id(struct p11km_session *s, const unsigned char *id, size_t id_len,
              STACK_OF(X509) **out)
{
	struct p11km_object *o = NULL;
	size_t n = 0;
	STACK_OF(X509) *sk;
	int r;

	if ((r = p11km_cert_objects_by_id(s, id, id_len, &o, &n)) < 0)
		return r;
	if ((sk = sk_X509_new_null()) == NULL) {
		p11km_objects_free(o, n);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < n && r == 0; i++) {
		X509 *x = o[i].value ? p11km_cert_x509_der(o[i].value, o[i].value_len) : NULL;
		if (x != NULL && !sk_X509_push(sk, x)) {
			X509_free(x);
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		}
	}
	p11km_objects_free(o, n);
	if (r < 0) {
		sk_X509_pop_free(sk, X509_free);
		return r;
	}
	*out = sk;
	return 0;
}

/* The slot's attestation among certs: signed by the device attestation
 * key, for the key pub.  *why says what was wrong otherwise. */
static X509 *
pick_attestation(STACK_OF(X509) *certs, X509 *device, EVP_PKEY *pub, const char **why)
{
	*why = "no certificate with the key's id is signed by the device attestation key";
	for (int i = 0; i < sk_X509_num(certs); i++) {
		X509 *x = sk_X509_value(certs, i);
		if (X509_verify(x, X509_get0_pubkey(device)) != 1)
			continue;
		if (EVP_PKEY_eq(X509_get0_pubkey(x), pub) == 1)
			return x;
		*why = "the attestation certificate with the key's id is for another key";
	}
	return NULL;
}

int
p11km_key_attest(struct p11km_ctx *ctx, const struct p11km_attest_opts *o,
                 struct p11km_attest_result *res)
{
	struct p11km_uri *uri = NULL;
	struct p11km_token *tok = NULL;
	struct p11km_session s = { 0 };
	struct p11km_object priv = { 0 };
	struct p11km_buf pem = { 0 };
	STACK_OF(X509) *mine = NULL, *dev = NULL, *chain = NULL;
	EVP_PKEY *pub = NULL;
	X509 *att = NULL, *device = NULL;
	const char *out = o->out != NULL && strcmp(o->out, "-") != 0 ? o->out : NULL;
	const char *why = NULL;
	int r;

	memset(res, 0, sizeof(*res));
	if ((r = p11km_uri_parse(o->uri, &uri)) < 0 ||
	    (r = p11km_token_open(ctx, uri, P11KM_OPEN_LOGIN, &tok, &s)) < 0 ||
	    (r = p11km_object_find_one(&s, uri, CKO_PRIVATE_KEY, &priv)) < 0 ||
	    (r = p11km_key_pubkey(&s, &priv, &pub)) < 0)
		goto out;
	if (priv.id_len == 0) {
		r = p11km_fail(P11KM_ERR_UNSUPPORTED, "the key has no id: no attestation can name it");
		goto out;
	}
	if ((r = certs_with_id(&s, &attest_device_id, 1, &dev)) < 0 ||
	    (r = certs_with_id(&s, priv.id, priv.id_len, &mine)) < 0)
		goto out;
	if (sk_X509_num(dev) != 1) {
		r = p11km_fail(P11KM_ERR_UNSUPPORTED,
		    "token '%s' shows no device attestation certificate (ykcs11 shows a YubiKey's "
		    "as the certificate with id 19): this token or its module does not support "
		    "attestation", tok->label);
		goto out;
	}
	device = sk_X509_value(dev, 0);
	if ((att = pick_attestation(mine, device, pub, &why)) == NULL) {
		r = p11km_fail(P11KM_ERR_VERIFY, "token '%s': %s; was the key generated on the card?",
		               tok->label, why);
		goto out;
	}
	if (o->ca_file != NULL) {
		struct p11km_trust trust = { .ca_file = o->ca_file };
		if ((chain = sk_X509_new_null()) == NULL || !sk_X509_push(chain, device)) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			goto out;
		}
		if ((r = p11km_chain_verify(att, chain, &trust)) < 0) {
			/* the why, without the advice meant for cert install (key
			 * attest has no --no-verify: without --ca-file it does not
			 * verify at all) */
			char *msg = strdup(p11km_errmsg(r)), *cut = msg ? strstr(msg, "; ") : NULL;
			if (cut != NULL)
				*cut = '\0';
			r = p11km_fail(r, "%s: the card's attestation does not verify to the root in '%s'; "
			               "give the card vendor's attestation root with --ca-file (Yubico "
			               "publishes its PIV attestation CA), or leave --ca-file out to export "
			               "the attestation unverified", msg ? msg : "?", o->ca_file);
			free(msg);
			goto out;
		}
	}
	if ((r = p11km_cert_pem_append(att, &pem)) < 0 || (r = p11km_cert_pem_append(device, &pem)) < 0)
		goto out;
	if (out != NULL && (r = p11km_write_file_atomic(out, pem.data, pem.len, 0644)) < 0)
		goto out;
	res->root_verified = o->ca_file != NULL;
	res->out = out;
	res->len = pem.len;
	res->pem = pem.data;
	pem.data = NULL;
	res->key = p11km_object_uri(tok, &priv);
	res->attestation = p11km_cert_subject(att);
	res->device = p11km_cert_subject(device);
out:
	p11km_buf_release(&pem);
	sk_X509_free(chain);
	sk_X509_pop_free(mine, X509_free);
	sk_X509_pop_free(dev, X509_free);
	EVP_PKEY_free(pub);
	p11km_object_release(&priv);
	p11km_session_close(&s);
	p11km_token_free(tok);
	p11km_uri_free(uri);
	return r;
}

int
p11km_key_attest_print(FILE *fp, int json, int quiet, const struct p11km_attest_result *res)
{
	struct p11km_json j;
	int r;

	if (res->out == NULL && (r = p11km_write_file_atomic("-", res->pem, res->len, 0644)) < 0)
		return r;
	if (json) {
		p11km_json_init(&j, fp);
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "key", res->key ? res->key : "");
		p11km_json_kv_string(&j, "attestation", res->attestation ? res->attestation : "");
		p11km_json_kv_string(&j, "device", res->device ? res->device : "");
		p11km_json_kv_bool(&j, "root_verified", res->root_verified);
		p11km_json_kv_string(&j, "out", res->out ? res->out : "-");
		p11km_json_object_end(&j);
		p11km_json_end(&j);
	} else if (!quiet) {
		fprintf(stderr, "ok: the card attests that it generated %s%s\n",
		        res->key ? res->key : "the key",
		        res->root_verified ? ", verified to the vendor root" :
		        " (not verified to a vendor root: give --ca-file)");
	}
	return 0;
}

void
p11km_attest_result_release(struct p11km_attest_result *res)
{
	free(res->key);
	free(res->attestation);
	free(res->device);
	free(res->pem);
	memset(res, 0, sizeof(*res));
}
