/* cmd-key.c: 'key generate'. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "p11km/cert.h"
#include "p11km/cmd.h"
#include "p11km/keygen.h"
#include "p11km/keys.h"
#include "p11km/util.h"

enum { O_OUT = 'o', O_TYPE = 1000, O_LABEL, O_ID, O_SLOT, O_ALLOW_ENGINE_BREAKING, O_CA_FILE };

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

static void
print_key(struct p11km_ctx *ctx, struct p11km_token *tok, const struct p11km_object *o,
          enum p11km_keytype type, const char *uri)
{
	char *id = p11km_hex(o->id, o->id_len);

	if (ctx->json) {
		struct p11km_json j;
		p11km_json_init(&j, stdout);
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "uri", uri);
		p11km_json_kv_string(&j, "token", tok->label);
		p11km_json_kv_string(&j, "label", o->label);
		p11km_json_kv_string(&j, "id", id ? id : "");
		p11km_json_kv_string(&j, "type", p11km_keytype_name(type));
		p11km_json_kv_bool(&j, "sensitive", o->sensitive == P11KM_TRUE);
		p11km_json_kv_bool(&j, "extractable", o->extractable == P11KM_TRUE);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
	} else {
		printf("%s\n", uri);
	}
	free(id);
}

static int
cmd_key_generate(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_keygen kg = { .type = P11KM_KEY_EC_P256 };
	struct p11km_uri *uri = NULL;
	struct p11km_token *tok = NULL;
	struct p11km_session s = { 0 };
	struct p11km_object priv = { 0 };
	unsigned char *id = NULL, slot_id = 0;
	size_t id_len = 0;
	const char *slot_name = NULL;
	char *kuri = NULL;
	int r, t;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_TYPE:
			if ((t = p11km_keytype_parse(g.optarg)) < 0) {
				r = p11km_fail(P11KM_ERR_USAGE,
				    "unknown key type '%s': use rsa:2048, rsa:3072, rsa:4096, ec:p256, "
				    "ec:p384, ec:p521 or ed25519", g.optarg);
				goto out;
			}
			kg.type = t;
			break;
		case O_LABEL: kg.label = g.optarg; break;
		case O_ID:
			free(id);
			id = NULL;
			if (p11km_unhex(g.optarg, &id, &id_len) < 0 || id_len == 0 || id_len > 64) {
				r = p11km_fail(P11KM_ERR_USAGE, "--id takes 1 to 64 bytes in hex, like 0a1b2c");
				goto out;
			}
			break;
		case O_SLOT:
			if ((r = piv_slot(g.optarg, &slot_id, &slot_name)) < 0)
				goto out;
			break;
		case O_ALLOW_ENGINE_BREAKING: kg.allow_engine_breaking = 1; break;
		default:
			if (r < 0)
				goto out;
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		goto out;
	if (slot_id != 0) {
		if (id != NULL) {
			r = p11km_fail(P11KM_ERR_USAGE, "give --slot or --id, not both");
			goto out;
		}
		if ((id = malloc(1)) == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			goto out;
		}
		id[0] = slot_id;
		id_len = 1;
		if (kg.label == NULL)
			kg.label = slot_name; /* PIV modules name keys by slot anyway */
	}
	if (kg.label == NULL) {
		r = p11km_fail(P11KM_ERR_USAGE, "key generate needs --label LABEL (or --slot)");
		goto out;
	}
	if ((r = p11km_label_check(kg.label, 128)) < 0 || (r = p11km_uri_parse(argv[g.argi], &uri)) < 0)
		goto out;
	if (uri->has_object) {
		r = p11km_fail(P11KM_ERR_USAGE,
		    "give the token's URI (without object=, id= or type=); name the key with --label");
		goto out;
	}
	kg.id = id;
	kg.id_len = id_len;
	kg.force = ctx->force;
	if ((r = p11km_token_find_one(ctx, uri, &tok)) < 0 || (r = id_fits_token(tok, id_len)) < 0 ||
	    (r = p11km_session_open_so_or_user(ctx, tok, uri, &s)) < 0 ||
	    (r = p11km_keygen_check(&s, &kg)) < 0 || (r = p11km_keygen_run(&s, &kg, &priv, NULL)) < 0)
		goto out;
	if ((kuri = p11km_object_uri(tok, &priv)) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	print_key(ctx, tok, &priv, kg.type, kuri);
	r = 0;
out:
	free(kuri);
	free(id);
	p11km_object_release(&priv);
	p11km_session_close(&s);
	p11km_token_free(tok);
	p11km_uri_free(uri);
	return r;
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

static int
cmd_key_attest(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_uri *uri = NULL;
	struct p11km_token *tok = NULL;
	struct p11km_session s = { 0 };
	struct p11km_object priv = { 0 };
	struct p11km_buf pem = { 0 };
	STACK_OF(X509) *mine = NULL, *dev = NULL, *chain = NULL;
	EVP_PKEY *pub = NULL;
	X509 *att = NULL, *device = NULL;
	const char *out = "-", *ca_file = NULL, *why = NULL;
	char *kuri = NULL;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_OUT: out = g.optarg; break;
		case O_CA_FILE: ca_file = g.optarg; break;
		default:
			if (r < 0)
				goto out;
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		goto out;
	if (ctx->json && strcmp(out, "-") == 0) {
		r = p11km_fail(P11KM_ERR_USAGE, "with --json, give -o FILE for the certificates");
		goto out;
	}
	if ((r = p11km_uri_parse(argv[g.argi], &uri)) < 0 ||
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
	if (ca_file != NULL) {
		struct p11km_trust trust = { .ca_file = ca_file };
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
			               "the attestation unverified", msg ? msg : "?", ca_file);
			free(msg);
			goto out;
		}
	}
	if ((r = p11km_cert_pem_append(att, &pem)) < 0 || (r = p11km_cert_pem_append(device, &pem)) < 0)
		goto out;
	if ((r = p11km_write_file_atomic(out, pem.data, pem.len, 0644)) < 0)
		goto out;
	kuri = p11km_object_uri(tok, &priv);
	if (ctx->json) {
		struct p11km_json j;
		char *as = p11km_cert_subject(att), *ds = p11km_cert_subject(device);
		p11km_json_init(&j, stdout);
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "key", kuri ? kuri : "");
		p11km_json_kv_string(&j, "attestation", as ? as : "");
		p11km_json_kv_string(&j, "device", ds ? ds : "");
		p11km_json_kv_bool(&j, "root_verified", ca_file != NULL);
		p11km_json_kv_string(&j, "out", out);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
		free(as);
		free(ds);
	} else if (!ctx->quiet) {
		fprintf(stderr, "ok: the card attests that it generated %s%s\n", kuri ? kuri : "the key",
		        ca_file ? ", verified to the vendor root" :
		        " (not verified to a vendor root: give --ca-file)");
	}
	r = 0;
out:
	free(kuri);
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

static const struct p11km_opt attest_opts[] = {
	{ "out", 1, O_OUT, "FILE", "write the two certificates (PEM) to FILE (default: - for stdout)" },
	{ "ca-file", 1, O_CA_FILE, "FILE", "the vendor's attestation root(s) (PEM) to verify against" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt generate_opts[] = {
	{ "type", 1, O_TYPE, "TYPE",
	  "rsa:2048, rsa:3072, rsa:4096, ec:p256 (default), ec:p384, ec:p521 or ed25519" },
	{ "label", 1, O_LABEL, "LABEL", "label (CKA_LABEL) of the new key pair (required)" },
	{ "id", 1, O_ID, "HEX", "CKA_ID (default: SHA-1 key identifier of the public key)" },
	{ "slot", 1, O_SLOT, "SLOT", "PIV key slot 9a, 9c, 9d or 9e (one-byte id 01..04)" },
	{ "allow-engine-breaking", 0, O_ALLOW_ENGINE_BREAKING, NULL,
	  "allow Ed25519 on a token with other keys (breaks libp11 0.4.12 there)" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct p11km_cmd p11km_cmds_key[] = {
	{ "generate", "TOKEN-URI", "generate a sign-only, non-extractable key pair on a token",
	  cmd_key_generate, generate_opts, 1, 1, P11KM_CMD_CHANGES_TOKEN },
	{ "attest", "KEY-URI", "export and verify the card's attestation that it generated a key",
	  cmd_key_attest, attest_opts, 1, 1, 0 },
	{ "list", "[URI]", "list the keys (object list --type key)", p11km_key_list_run, NULL, 0, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
