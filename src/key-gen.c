/* key-gen.c (the key layer): key pairs generated on the token, sign-only, never extractable. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "p11km/audit.h"
#include "p11km/change.h"
#include "p11km/keygen.h"
#include "p11km/keys.h"
#include "p11km/util.h"
#include "p11km/x509.h"

static const unsigned char oid_p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const unsigned char oid_p384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const unsigned char oid_p521[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23 };
static const unsigned char oid_ed25519[] = { 0x06, 0x03, 0x2b, 0x65, 0x70 };

int
p11km_keytype_of(const struct p11km_object *o)
{
	const char *curve;

	if (o->key_type == CKK_RSA) {
		if (o->modulus_bits == 0)
			return -1;
		return o->modulus_bits <= 2048 ? P11KM_KEY_RSA2048 :
		       o->modulus_bits <= 3072 ? P11KM_KEY_RSA3072 : P11KM_KEY_RSA4096;
	}
	if (o->key_type != CKK_EC && o->key_type != CKK_EC_EDWARDS)
		return -1;
	if ((curve = p11km_ec_params_curve(o->ec_params, o->ec_params_len, NULL)) == NULL)
		return o->key_type == CKK_EC_EDWARDS ? P11KM_KEY_ED25519 : -1;
	if (strcmp(curve, "P-256") == 0) return P11KM_KEY_EC_P256;
	if (strcmp(curve, "P-384") == 0) return P11KM_KEY_EC_P384;
	if (strcmp(curve, "P-521") == 0) return P11KM_KEY_EC_P521;
	if (strcmp(curve, "Ed25519") == 0) return P11KM_KEY_ED25519;
	return -1;
}

/* Is there at least one object matching the template? */
static int
exists(struct p11km_session *s, CK_ATTRIBUTE *t, CK_ULONG n)
{
	CK_OBJECT_HANDLE *h = NULL;
	size_t nh = 0;
	int r;

	if ((r = p11km_find(s, t, n, 1, &h, &nh)) < 0)
		return r;
	free(h);
	return nh > 0;
}

int
p11km_keygen_check(struct p11km_session *s, const struct p11km_keygen *kg)
{
	struct p11km_caps caps;
	CK_OBJECT_CLASS privc = CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt;
	CK_ATTRIBUTE t[2];
	char *list;
	int r;

	if ((r = p11km_token_caps_for(s->tok, kg->type, &caps)) < 0)
		return r;
	if (!p11km_caps_usable(&caps, kg->type)) {
		list = p11km_caps_usable_list(&caps);
		r = p11km_fail(P11KM_ERR_UNSUPPORTED,
		    "token '%s' cannot generate and sign with %s keys (from its mechanism list); "
		    "it can: %s", s->tok->label, p11km_keytype_name(kg->type), list ? list : "?");
		free(list);
		return r;
	}
	t[0] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)kg->label, strlen(kg->label) };
	if ((r = exists(s, t, 1)) < 0)
		return r;
	if (r > 0 && !kg->force)
		return p11km_fail(P11KM_ERR_EXISTS,
		    "an object labelled '%s' already exists on token '%s'; choose another --label "
		    "(or add --force to make a second key with the same label)", kg->label,
		    s->tok->label);
	if (kg->id != NULL && kg->id_len > 0) {
		t[0] = (CK_ATTRIBUTE){ CKA_ID, (void *)kg->id, kg->id_len };
		if ((r = exists(s, t, 1)) < 0)
			return r;
		if (r > 0 && !kg->force)
			return p11km_fail(P11KM_ERR_EXISTS,
			    "an object with this id already exists on token '%s'; choose another --id, "
			    "leave it out to derive one from the key, or add --force", s->tok->label);
	}
	if (kg->type != P11KM_KEY_ED25519)
		return 0;
	p11km_warn("an Ed25519 key makes libp11 0.4.12 (the OpenSSL pkcs11 engine that nginx, "
	           "Apache and stunnel use on Debian 12) fail for every key on token '%s'",
	           s->tok->label);
	t[0] = (CK_ATTRIBUTE){ CKA_CLASS, &privc, sizeof(privc) };
	t[1] = (CK_ATTRIBUTE){ CKA_KEY_TYPE, &kt, sizeof(kt) };
	kt = CKK_RSA;
	if ((r = exists(s, t, 2)) == 0) {
		kt = CKK_EC;
		r = exists(s, t, 2);
	}
	if (r < 0)
		return r;
	if (r > 0 && !kg->allow_engine_breaking)
		return p11km_fail(P11KM_ERR_USAGE,
		    "token '%s' holds RSA or EC keys that servers may use through libp11, which an "
		    "Ed25519 key would break; put Ed25519 keys on a token of their own, or add "
		    "--allow-engine-breaking", s->tok->label);
	return 0;
}

/* Take back a half-made key pair; CKR_OK or the first failure. */
static CK_RV
destroy_pair(struct p11km_session *s, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub)
{
	CK_RV rv = CKR_OK, rv2 = CKR_OK;
	int was = p11km_audit_rollback(1);

	if (priv != CK_INVALID_HANDLE)
		rv = p11km_obj_destroy(s, priv);
	if (pub != CK_INVALID_HANDLE)
		rv2 = p11km_obj_destroy(s, pub);
	p11km_audit_rollback(was);
	return rv != CKR_OK ? rv : rv2;
}

/* What the token did not honour, or NULL.  Fatal: the key could leave the
 * token, or is not a signing token key. */
static const char *
not_honoured(const struct p11km_object *o)
{
	if (o->token != P11KM_TRUE) return "CKA_TOKEN";
	if (o->private_ != P11KM_TRUE) return "CKA_PRIVATE";
	if (o->sensitive != P11KM_TRUE) return "CKA_SENSITIVE";
	if (o->extractable != P11KM_FALSE) return "CKA_EXTRACTABLE=false";
	if (o->never_extractable == P11KM_FALSE) return "CKA_NEVER_EXTRACTABLE";
	if (o->sign != P11KM_TRUE) return "CKA_SIGN";
	return NULL;
}

/* Errors a token gives for a template it does not accept. */
static int
template_refused(CK_RV rv)
{
	return rv == CKR_TEMPLATE_INCONSISTENT || rv == CKR_ATTRIBUTE_VALUE_INVALID ||
	       rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_GENERAL_ERROR ||
	       rv == CKR_FUNCTION_FAILED;
}

/* Remove the usage restrictions (false decrypt, unwrap, derive, encrypt,
 * wrap) from a template; returns the new count. */
static CK_ULONG
drop_usage(CK_ATTRIBUTE *t, CK_ULONG n)
{
	CK_ULONG k = 0;

	for (CK_ULONG i = 0; i < n; i++)
		if (t[i].type != CKA_DECRYPT && t[i].type != CKA_UNWRAP && t[i].type != CKA_DERIVE &&
		    t[i].type != CKA_ENCRYPT && t[i].type != CKA_WRAP)
			t[k++] = t[i];
	return k;
}

/* Remove CKA_EXTRACTABLE: ykcs11 fails a private key template that names
 * it at all (CKR_ATTRIBUTE_TYPE_INVALID).  The key read back must still be
 * non-extractable (not_honoured()). */
static CK_ULONG
drop_extractable(CK_ATTRIBUTE *t, CK_ULONG n)
{
	CK_ULONG k = 0;

	for (CK_ULONG i = 0; i < n; i++)
		if (t[i].type != CKA_EXTRACTABLE)
			t[k++] = t[i];
	return k;
}

/* Set CKA_ID on both halves. */
static int
set_id(struct p11km_session *s, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub,
       const unsigned char *id, size_t len)
{
	CK_ATTRIBUTE a = { CKA_ID, (void *)id, len };
	CK_RV rv;

	if ((rv = p11km_obj_set(s, priv, &a, 1)) != CKR_OK ||
	    (rv = p11km_obj_set(s, pub, &a, 1)) != CKR_OK)
		return p11km_fail(P11KM_ERR_TOKEN,
		    "token '%s' did not let p11km set the key id (C_SetAttributeValue(CKA_ID): %s): "
		    "give --id HEX to set the id at generation",
		    s->tok->label, p11km_ckr_name(rv));
	return 0;
}

/* After a failed C_GenerateKeyPair: the pair the token made all the same
 * (found by the template's label and id), 1 with its handles; 0 if none. */
static int
made_anyway(struct p11km_session *s, const char *label, const unsigned char *id, size_t id_len,
            CK_OBJECT_HANDLE *hpriv, CK_OBJECT_HANDLE *hpub)
{
	CK_OBJECT_CLASS cls[2] = { CKO_PRIVATE_KEY, CKO_PUBLIC_KEY };
	CK_OBJECT_HANDLE *out[2] = { hpriv, hpub };
	int any = 0;

	for (int i = 0; i < 2; i++) {
		CK_ATTRIBUTE t[3] = { { CKA_CLASS, &cls[i], sizeof(cls[i]) },
		                      { CKA_LABEL, (void *)label, strlen(label) },
		                      { CKA_ID, (void *)id, id_len } };
		CK_OBJECT_HANDLE *h = NULL;
		size_t n = 0;
		if (p11km_find(s, t, 3, 2, &h, &n) == 0 && n == 1) {
			p11km_obj_describe(s, h[0], t, 3);
			*out[i] = h[0];
			any = 1;
		}
		free(h);
	}
	p11km_error_clear();
	return any;
}

int
p11km_keygen_run(struct p11km_session *s, const struct p11km_keygen *kg,
                 struct p11km_object *priv, EVP_PKEY **pub)
{
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG bits = 0;
	CK_BYTE exp[] = { 0x01, 0x00, 0x01 };
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_OBJECT_CLASS pubc = CKO_PUBLIC_KEY, privc = CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt = CKK_EC;
	unsigned char tmp_id[20], keyid[20];
	const unsigned char *id = kg->id, *params = NULL;
	size_t id_len = kg->id_len, params_len = 0;
	CK_OBJECT_HANDLE hpriv = CK_INVALID_HANDLE, hpub = CK_INVALID_HANDLE;
	struct p11km_object po;
	EVP_PKEY *pk = NULL;
	const char *bad;
	CK_RV rv;
	int r, id_half = 0, made = 0;

	memset(priv, 0, sizeof(*priv));
	switch (kg->type) {
	case P11KM_KEY_RSA2048: bits = 2048; break;
	case P11KM_KEY_RSA3072: bits = 3072; break;
	case P11KM_KEY_RSA4096: bits = 4096; break;
	case P11KM_KEY_EC_P256: params = oid_p256; params_len = sizeof(oid_p256); break;
	case P11KM_KEY_EC_P384: params = oid_p384; params_len = sizeof(oid_p384); break;
	case P11KM_KEY_EC_P521: params = oid_p521; params_len = sizeof(oid_p521); break;
	case P11KM_KEY_ED25519: params = oid_ed25519; params_len = sizeof(oid_ed25519); break;
	default: return p11km_fail(P11KM_ERR_USAGE, "unknown key type");
	}
	if (bits)
		mech.mechanism = CKM_RSA_PKCS_KEY_PAIR_GEN, kt = CKK_RSA;
	else if (kg->type == P11KM_KEY_ED25519)
		mech.mechanism = CKM_EC_EDWARDS_KEY_PAIR_GEN, kt = CKK_EC_EDWARDS;
	if (id == NULL || id_len == 0) {
		if (RAND_bytes(tmp_id, sizeof(tmp_id)) != 1)
			return p11km_fail(P11KM_ERR_FAILED, "no random bytes for a temporary key id");
		id = tmp_id;
		id_len = sizeof(tmp_id);
	}
	CK_ATTRIBUTE pubt[12] = {
		{ CKA_CLASS, &pubc, sizeof(pubc) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &no, sizeof(no) },
		{ CKA_WRAP, &no, sizeof(no) },
		{ CKA_LABEL, (void *)kg->label, strlen(kg->label) },
		{ CKA_ID, (void *)id, id_len },
	};
	/* No CKA_VERIFY/CKA_ENCRYPT: tokens derive them from the private key's
	 * usage, and tpm2-pkcs11 fails a template that states them. */
	CK_ULONG npub = 7;
	if (bits) {
		pubt[npub++] = (CK_ATTRIBUTE){ CKA_MODULUS_BITS, &bits, sizeof(bits) };
		pubt[npub++] = (CK_ATTRIBUTE){ CKA_PUBLIC_EXPONENT, exp, sizeof(exp) };
	} else {
		pubt[npub++] = (CK_ATTRIBUTE){ CKA_EC_PARAMS, (void *)params, params_len };
	}
	CK_ATTRIBUTE privt[] = {
		{ CKA_CLASS, &privc, sizeof(privc) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_SIGN, &yes, sizeof(yes) },
		{ CKA_DECRYPT, &no, sizeof(no) },
		{ CKA_UNWRAP, &no, sizeof(no) },
		{ CKA_DERIVE, &no, sizeof(no) },
		{ CKA_LABEL, (void *)kg->label, strlen(kg->label) },
		{ CKA_ID, (void *)id, id_len },
	};
	CK_ULONG nprivt = sizeof(privt) / sizeof(privt[0]);
	rv = p11km_obj_keypair(s, &mech, pubt, npub, privt, nprivt, &hpub,
	                &hpriv);
	if (template_refused(rv)) {
		/* Some tokens (tpm2-pkcs11) cannot make sign-only keys and fail the
		 * template: try again without the usage restrictions, and say so. */
		CK_RV first = rv;
		npub = drop_usage(pubt, npub);
		nprivt = drop_usage(privt, nprivt);
		rv = p11km_obj_keypair(s, &mech, pubt, npub, privt, nprivt,
		                &hpub, &hpriv);
		if (rv == CKR_ATTRIBUTE_TYPE_INVALID) {
			nprivt = drop_extractable(privt, nprivt);
			rv = p11km_obj_keypair(s, &mech, pubt, npub, privt,
			                nprivt, &hpub, &hpriv);
		}
		if (rv == CKR_OK) {
			p11km_warn("token '%s' refused a sign-only template; the key was made without "
			           "the decrypt/unwrap/derive restrictions", s->tok->label);
			p11km_learned(s->tok, "key-template", "C_GenerateKeyPair refuses a sign-only "
			              "template (%s): keys are made without the decrypt/unwrap/derive "
			              "restrictions", p11km_ckr_name(first));
		}
	}
	if ((rv == CKR_USER_TYPE_INVALID || rv == CKR_USER_NOT_LOGGED_IN) && s->logged_in == CKU_USER)
		return p11km_fail(P11KM_ERR_LOGIN,
		    "token '%s' generates keys only after a security officer login "
		    "(C_GenerateKeyPair: %s): give --so-pin-source (on a PIV card its PIN is the "
		    "management key, 48 hex digits)", s->tok->label, p11km_ckr_name(rv));
	if (rv != CKR_OK) {
		/* a token may make the pair and still report a failure: look (by the
		 * template's label and id) and destroy what it made */
		made = made_anyway(s, kg->label, id, id_len, &hpriv, &hpub);
		char *what = p11km_asprintf("token '%s' did not generate the %s key pair",
		                            s->tok->label, p11km_keytype_name(kg->type));
		r = rv == CKR_USER_NOT_LOGGED_IN
		        ? p11km_fail(P11KM_ERR_LOGIN, "%s: C_GenerateKeyPair: %s", what ? what : "?",
		                     p11km_ckr_name(rv))
		        : p11km_fail_ckr_tok(s->tok, rv, what ? what : "?", "C_GenerateKeyPair");
		free(what);
		if (!made)
			return r;
		goto fail;
	}
	if (hpub == hpriv || hpub == CK_INVALID_HANDLE || hpriv == CK_INVALID_HANDLE) {
		/* handles that cannot be the pair's: nothing to read or destroy by */
		char *hid = p11km_hex(id, id_len);
		r = p11km_fail_module(s->tok->label, "C_GenerateKeyPair", "it answered the handles "
		    "%lu and %lu for the two keys (a pair may be on the token as label '%s', id %s: "
		    "delete it with pkcs11-tool --delete-object --type privkey --id %s, and --type "
		    "pubkey)", hpub, hpriv, kg->label, hid ? hid : "?", hid ? hid : "?");
		free(hid);
		return r;
	}
	memset(&po, 0, sizeof(po));
	if ((r = p11km_object_read(s, hpub, &po)) < 0 || (r = p11km_object_pubkey(&po, &pk)) < 0) {
		p11km_object_release(&po);
		goto fail;
	}
	p11km_object_release(&po);
	if (id == tmp_id) {
		if ((r = p11km_pubkey_keyid(pk, keyid)) < 0)
			goto fail;
		id_half = 1;
		if ((r = set_id(s, hpriv, hpub, keyid, sizeof(keyid))) < 0)
			goto fail;
		id_half = 0;
		id = keyid;
		id_len = sizeof(keyid);
	}
	if ((r = p11km_object_read(s, hpriv, &po)) < 0)
		goto fail;
	if ((bad = not_honoured(&po)) != NULL) {
		p11km_object_release(&po);
		r = p11km_fail(P11KM_ERR_UNSUPPORTED,
		    "token '%s' did not honour %s on the new private key: this token cannot hold keys "
		    "the way p11km requires", s->tok->label, bad);
		goto fail;
	}
	if (po.decrypt == P11KM_TRUE || po.unwrap == P11KM_TRUE || po.derive == P11KM_TRUE)
		p11km_warn("token '%s' made the key able to %s as well as sign; p11km uses it only "
		           "to sign", s->tok->label, po.decrypt == P11KM_TRUE ? "decrypt" :
		           po.unwrap == P11KM_TRUE ? "unwrap" : "derive");
	*priv = po;
	if (pub != NULL)
		*pub = pk;
	else
		EVP_PKEY_free(pk);
	OPENSSL_cleanse(tmp_id, sizeof(tmp_id));
	return 0;
fail:
	EVP_PKEY_free(pk);
	/* Say what became of the half-made pair: destroyed, or still there
	 * (token gone) with the label and id to find and delete it by. */
	{
		char *msg = strdup(p11km_errmsg(r)), *hid = p11km_hex(id, id_len);
		CK_RV drv = destroy_pair(s, hpriv, hpub);
		char *hk = id_half ? p11km_hex(keyid, sizeof(keyid)) : NULL;
		if (drv == CKR_OK)
			p11km_fail(r, "%s; the new key pair %swas destroyed", msg ? msg : "",
			           made ? "(made all the same) " : "");
		else if (id_half)
			/* its halves may carry different ids: name them by label */
			p11km_fail(r, "%s; the new key pair could not be destroyed (C_DestroyObject: %s): "
			           "it is still on token '%s' as label '%s', its halves with id %s or %s: "
			           "delete both with pkcs11-tool --login --delete-object --type privkey "
			           "--label '%s', and --type pubkey --label '%s'",
			           msg ? msg : "", p11km_ckr_name(drv), s->tok->label, kg->label,
			           hk ? hk : "?", hid ? hid : "?", kg->label, kg->label);
		else
			p11km_fail(r, "%s; the new key pair could not be destroyed (C_DestroyObject: %s): "
			           "it is still on token '%s' as label '%s', id %s: delete it with "
			           "pkcs11-tool --delete-object --type privkey --id %s (and --type pubkey)",
			           msg ? msg : "", p11km_ckr_name(drv), s->tok->label, kg->label,
			           hid ? hid : "?", hid ? hid : "?");
		free(msg);
		free(hid);
		free(hk);
	}
	return r;
}
