/* p11-change.c: the PKCS#11 calls that change a token, each recorded in
 * the audit trail (change.h, audit.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/audit.h"
#include "p11km/change.h"
#include "p11km/util.h"

/* What this run knows of an object: from a read or from its creation.
 * Keyed by module, slot and handle (handles are per token and
 * application); no PKCS#11 call is spent on the audit trail. */
struct known {
	CK_FUNCTION_LIST *f;
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE h;
	CK_OBJECT_CLASS cls;
	char *label;
	unsigned char *id;
	size_t id_len;
	unsigned char *value; /* certificates */
	size_t value_len;
};

static struct known *known;
static size_t n_known, cap_known;

static struct known *
known_find(const struct p11km_session *s, CK_OBJECT_HANDLE h)
{
	for (size_t i = n_known; i-- > 0;)
		if (known[i].f == s->f && known[i].slot == s->tok->slot && known[i].h == h)
			return &known[i];
	return NULL;
}

static void
known_clear(struct known *k)
{
	free(k->label);
	free(k->id);
	free(k->value);
	k->label = NULL;
	k->id = NULL;
	k->value = NULL;
	k->id_len = k->value_len = 0;
}

static void
known_forget(const struct p11km_session *s, CK_OBJECT_HANDLE h)
{
	struct known *k = known_find(s, h);

	if (k == NULL)
		return;
	known_clear(k);
	*k = known[--n_known];
}

/* The entry of h, emptied (a new one when needed); NULL: no memory. */
static struct known *
known_slot(const struct p11km_session *s, CK_OBJECT_HANDLE h)
{
	struct known *k = known_find(s, h);

	if (k == NULL) {
		if (n_known == cap_known) {
			size_t cap = cap_known ? cap_known * 2 : 32;
			struct known *nk = realloc(known, cap * sizeof(*nk));
			if (nk == NULL)
				return NULL;
			known = nk;
			cap_known = cap;
		}
		k = &known[n_known++];
		memset(k, 0, sizeof(*k));
	} else {
		known_clear(k);
	}
	k->f = s->f;
	k->slot = s->tok->slot;
	k->h = h;
	k->cls = (CK_OBJECT_CLASS)-1;
	return k;
}

static void
known_set(struct known *k, const char *label, size_t label_len, const void *id, size_t id_len,
          const void *value, size_t value_len)
{
	if (label != NULL)
		k->label = p11km_strndup_trim(label, label_len);
	if (id != NULL && id_len > 0 && (k->id = p11km_memdup(id, id_len)) != NULL)
		k->id_len = id_len;
	if (value != NULL && value_len > 0 && k->cls == CKO_CERTIFICATE &&
	    (k->value = p11km_memdup(value, value_len)) != NULL)
		k->value_len = value_len;
}

void
p11km_obj_seen(struct p11km_session *s, const struct p11km_object *o)
{
	struct known *k = known_slot(s, o->h);

	if (k == NULL)
		return;
	k->cls = o->cls;
	known_set(k, o->label, o->label ? strlen(o->label) : 0, o->id, o->id_len, o->value,
	          o->value_len);
}

/* Remember h as template t describes it (cls when t has no CKA_CLASS). */
static struct known *
known_from(struct p11km_session *s, CK_OBJECT_HANDLE h, const CK_ATTRIBUTE *t, CK_ULONG n,
           CK_OBJECT_CLASS cls)
{
	const CK_ATTRIBUTE *c = p11km_template_attr(t, n, CKA_CLASS);
	const CK_ATTRIBUTE *l = p11km_template_attr(t, n, CKA_LABEL);
	const CK_ATTRIBUTE *id = p11km_template_attr(t, n, CKA_ID);
	const CK_ATTRIBUTE *v = p11km_template_attr(t, n, CKA_VALUE);
	struct known *k = known_slot(s, h);

	if (k == NULL)
		return NULL;
	k->cls = c != NULL && c->ulValueLen == sizeof(CK_OBJECT_CLASS) ? *(CK_OBJECT_CLASS *)c->pValue
	                                                               : cls;
	known_set(k, l ? l->pValue : NULL, l ? l->ulValueLen : 0, id ? id->pValue : NULL,
	          id ? id->ulValueLen : 0, v ? v->pValue : NULL, v ? v->ulValueLen : 0);
	return k;
}

void
p11km_obj_describe(struct p11km_session *s, CK_OBJECT_HANDLE h, const CK_ATTRIBUTE *t,
                   CK_ULONG n)
{
	(void)known_from(s, h, t, n, (CK_OBJECT_CLASS)-1);
}

/* One line about object k (or handle h) of s's token. */
static void
record(struct p11km_session *s, const char *action, const struct known *k, CK_OBJECT_HANDLE h,
       const char *new_label, const char *new_id, CK_RV rv)
{
	struct p11km_audit_event ev = { .action = action, .token = s->tok->uri };
	char *uri = NULL, *old_id = NULL;

	if (k != NULL) {
		uri = p11km_uri_object(&s->tok->info, k->label, k->id, k->id_len, k->cls);
		ev.object = uri;
		ev.cls = k->cls != (CK_OBJECT_CLASS)-1 ? p11km_class_name(k->cls) : NULL;
		ev.cert = k->value;
		ev.cert_len = k->value_len;
		if (new_label != NULL || new_id != NULL) {
			ev.old_label = k->label;
			ev.old_id = old_id = k->id_len ? p11km_hex(k->id, k->id_len) : NULL;
		}
	}
	if (ev.object == NULL)
		ev.handle = h;
	ev.new_label = new_label;
	ev.new_id = new_id;
	ev.error = rv == CKR_OK ? NULL : p11km_ckr_name(rv);
	p11km_audit(&ev);
	free(uri);
	free(old_id);
}

/* Open the trail before a change; CKR_OK, or CKR_FUNCTION_REJECTED with
 * a warning (the caller's message names the call). */
static CK_RV
ready(void)
{
	if (p11km_audit_ready() == 0)
		return CKR_OK;
	p11km_warn("%s", p11km_errmsg(P11KM_ERR_IO));
	return CKR_FUNCTION_REJECTED;
}

CK_RV
p11km_obj_create(struct p11km_session *s, CK_ATTRIBUTE *t, CK_ULONG n, CK_OBJECT_HANDLE *h)
{
	CK_OBJECT_HANDLE made = CK_INVALID_HANDLE;
	struct known *k;
	CK_RV rv;

	if ((rv = ready()) != CKR_OK)
		return rv;
	rv = P11KM_CALL(s->f, C_CreateObject, s->h, t, n, &made);
	k = known_from(s, made, t, n, (CK_OBJECT_CLASS)-1);
	record(s, "create", k, made, NULL, NULL, rv);
	if (rv != CKR_OK && k != NULL)
		known_forget(s, made);
	if (rv == CKR_OK)
		*h = made;
	if (rv == CKR_OK && s->certs != NULL)
		p11km_tokcerts_created(s, made, t, n);
	return rv;
}

CK_RV
p11km_obj_destroy(struct p11km_session *s, CK_OBJECT_HANDLE h)
{
	CK_RV rv;

	if ((rv = ready()) != CKR_OK)
		return rv;
	rv = P11KM_CALL(s->f, C_DestroyObject, s->h, h);
	record(s, "destroy", known_find(s, h), h, NULL, NULL, rv);
	if (rv == CKR_OK)
		known_forget(s, h);
	if (rv == CKR_OK && s->certs != NULL)
		p11km_tokcerts_destroyed(s, h);
	return rv;
}

CK_RV
p11km_obj_set(struct p11km_session *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE *a, CK_ULONG n)
{
	const CK_ATTRIBUTE *l = p11km_template_attr(a, n, CKA_LABEL);
	const CK_ATTRIBUTE *id = p11km_template_attr(a, n, CKA_ID);
	char *nl = l ? p11km_strndup_trim(l->pValue, l->ulValueLen) : NULL;
	char *nid = id ? p11km_hex(id->pValue, id->ulValueLen) : NULL;
	struct known *k;
	CK_RV rv;

	if ((rv = ready()) != CKR_OK)
		goto out;
	rv = P11KM_CALL(s->f, C_SetAttributeValue, s->h, h, a, n);
	if (rv == CKR_OK && s->certs != NULL)
		p11km_tokcerts_set(s, h, a, n);
	k = known_find(s, h);
	record(s, "set", k, h, nl ? nl : l ? "" : NULL, nid, rv);
	if (rv == CKR_OK && k != NULL) {
		if (l != NULL) {
			free(k->label);
			k->label = nl;
			nl = NULL;
		}
		if (id != NULL) {
			free(k->id);
			k->id = NULL;
			k->id_len = 0;
			if (id->ulValueLen > 0 && (k->id = p11km_memdup(id->pValue, id->ulValueLen)))
				k->id_len = id->ulValueLen;
		}
	}
out:
	free(nl);
	free(nid);
	return rv;
}

CK_RV
p11km_obj_keypair(struct p11km_session *s, CK_MECHANISM *m, CK_ATTRIBUTE *pubt, CK_ULONG npub,
                  CK_ATTRIBUTE *privt, CK_ULONG npriv, CK_OBJECT_HANDLE *hpub,
                  CK_OBJECT_HANDLE *hpriv)
{
	CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
	struct known *k;
	CK_RV rv;

	if ((rv = ready()) != CKR_OK)
		return rv;
	rv = P11KM_CALL(s->f, C_GenerateKeyPair, s->h, m, pubt, npub, privt, npriv, &pub, &priv);
	k = known_from(s, pub, pubt, npub, CKO_PUBLIC_KEY);
	record(s, "create", k, pub, NULL, NULL, rv);
	if (rv != CKR_OK && k != NULL)
		known_forget(s, pub);
	k = known_from(s, priv, privt, npriv, CKO_PRIVATE_KEY);
	record(s, "create", k, priv, NULL, NULL, rv);
	if (rv != CKR_OK && k != NULL)
		known_forget(s, priv);
	if (rv == CKR_OK) {
		*hpub = pub;
		*hpriv = priv;
	}
	return rv;
}

/* A line about a token itself. */
static void
record_token(const char *action, const char *uri, const char *old_label, const char *new_label,
             CK_RV rv)
{
	struct p11km_audit_event ev = { .action = action, .token = uri };

	ev.old_label = old_label;
	ev.new_label = new_label;
	ev.error = rv == CKR_OK ? NULL : p11km_ckr_name(rv);
	p11km_audit(&ev);
}

CK_RV
p11km_token_init_call(struct p11km_token *t, const char *so_pin, size_t so_len,
                      const unsigned char *label)
{
	char *nl;
	CK_RV rv;

	if ((rv = ready()) != CKR_OK)
		return rv;
	rv = P11KM_CALL(t->f, C_InitToken, t->slot, (CK_UTF8CHAR_PTR)so_pin, so_len,
	                (CK_UTF8CHAR_PTR)label);
	nl = p11km_strndup_trim((const char *)label, 32);
	record_token("init-token", t->uri, (t->info.flags & CKF_TOKEN_INITIALIZED) ? t->label : NULL,
	             nl, rv);
	free(nl);
	/* every object of the token is gone, and its handles with them */
	for (size_t i = n_known; i-- > 0;)
		if (known[i].f == t->f && known[i].slot == t->slot) {
			known_clear(&known[i]);
			known[i] = known[--n_known];
		}
	return rv;
}

CK_RV
p11km_pin_init_call(struct p11km_session *s, const char *pin, size_t len)
{
	CK_RV rv;

	if ((rv = ready()) != CKR_OK)
		return rv;
	rv = P11KM_CALL(s->f, C_InitPIN, s->h, (CK_UTF8CHAR_PTR)pin, len);
	record_token("init-pin", s->tok->uri, NULL, NULL, rv);
	return rv;
}

CK_RV
p11km_pin_set_call(struct p11km_session *s, const char *old, size_t olen, const char *pin,
                   size_t len)
{
	CK_RV rv;

	if ((rv = ready()) != CKR_OK)
		return rv;
	rv = P11KM_CALL(s->f, C_SetPIN, s->h, (CK_UTF8CHAR_PTR)old, olen, (CK_UTF8CHAR_PTR)pin, len);
	record_token(s->logged_in == CKU_SO ? "set-so-pin" : "set-pin", s->tok->uri, NULL, NULL, rv);
	return rv;
}
