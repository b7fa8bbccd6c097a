/* p11-certs.c: a token's certificates read once, for a batch (the renewal
 * run of many certificates on one token): one search for CKO_CERTIFICATE
 * and one C_GetAttributeValue per certificate.  With it attached to a
 * session (s->certs), searches for certificates (p11km_find with CKA_CLASS
 * CKO_CERTIFICATE) and reads of them are answered from memory; what this
 * process changes (p11-change.c: create, set, destroy) is applied to it,
 * and nothing else changes the token meanwhile: the batch holds the
 * token's lock.  A template it cannot answer exactly goes to the token, and
 * so does every read of a certificate this process created (known only by
 * the template it was written with). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/p11.h"
#include "p11km/util.h"

struct cached {
	struct p11km_object o;  /* as read; created: the fields its template gave */
	int read;               /* o is a full read (else: created by this process) */
};

struct p11km_tokcerts {
	struct cached *c;
	size_t n, cap;
	int valid;              /* 0: something changed that it cannot follow */
};

/* *dst = a copy of attribute a's value (the caller freed the old one). */
static void
set_bytes(unsigned char **dst, size_t *dlen, const CK_ATTRIBUTE *a, int *bad)
{
	*dst = p11km_memdup(a->pValue, a->ulValueLen ? a->ulValueLen : 1);
	*dlen = *dst != NULL ? a->ulValueLen : 0;
	if (*dst == NULL)
		*bad = 1;
}

/* A label exactly as written (no trimming: a search compares the bytes). */
static char *
label_dup(const void *v, size_t len)
{
	char *l = malloc(len + 1);

	if (l != NULL) {
		memcpy(l, v, len);
		l[len] = '\0';
	}
	return l;
}

static struct cached *
cached_find(struct p11km_tokcerts *c, CK_OBJECT_HANDLE h)
{
	for (size_t i = 0; c != NULL && i < c->n; i++)
		if (c->c[i].o.h == h)
			return &c->c[i];
	return NULL;
}

static struct cached *
cached_add(struct p11km_tokcerts *c)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 64;
		struct cached *nc = realloc(c->c, cap * sizeof(*nc));
		if (nc == NULL)
			return NULL;
		c->c = nc;
		c->cap = cap;
	}
	memset(&c->c[c->n], 0, sizeof(c->c[c->n]));
	return &c->c[c->n++];
}

struct p11km_tokcerts *
p11km_tokcerts_new(void)
{
	struct p11km_tokcerts *c = calloc(1, sizeof(*c));

	if (c != NULL)
		c->valid = 1;
	return c;
}

int
p11km_tokcerts_take(struct p11km_tokcerts *c, struct p11km_object *o)
{
	struct cached *e = cached_add(c);

	if (e == NULL) {
		p11km_object_release(o);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	e->o = *o;
	e->read = 1;
	memset(o, 0, sizeof(*o));
	return 0;
}

void
p11km_tokcerts_free(struct p11km_tokcerts *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		p11km_object_release(&c->c[i].o);
	free(c->c);
	free(c);
}

/* --- answering searches and reads ------------------------------------------------- */

static int
bytes_match(const void *have, size_t have_len, const CK_ATTRIBUTE *a)
{
	if (have == NULL)
		return a->ulValueLen == 0 ? -1 : 0; /* absent, or empty: ask the token */
	return have_len == a->ulValueLen && memcmp(have, a->pValue, have_len) == 0;
}

static int
tri_match(enum p11km_tri v, const CK_ATTRIBUTE *a)
{
	if (v == P11KM_ABSENT || a->ulValueLen != sizeof(CK_BBOOL))
		return -1;
	return (v == P11KM_TRUE) == (*(CK_BBOOL *)a->pValue != CK_FALSE);
}

static int
ulong_match(CK_ULONG v, const CK_ATTRIBUTE *a)
{
	if (v == (CK_ULONG)-1 || a->ulValueLen != sizeof(CK_ULONG))
		return -1;
	return v == *(CK_ULONG *)a->pValue;
}

/* Does o match attribute a: 1, 0, or -1 (cannot tell: ask the token). */
static int
attr_match(const struct p11km_object *o, const CK_ATTRIBUTE *a)
{
	if (a->pValue == NULL)
		return -1;
	switch (a->type) {
	case CKA_CLASS: return ulong_match(o->cls, a);
	case CKA_CERTIFICATE_CATEGORY: return ulong_match(o->cert_category, a);
	case CKA_LABEL: return bytes_match(o->label, o->label ? strlen(o->label) : 0, a);
	case CKA_ID: return bytes_match(o->id, o->id_len, a);
	case CKA_SUBJECT: return bytes_match(o->subject, o->subject_len, a);
	case CKA_ISSUER: return bytes_match(o->issuer, o->issuer_len, a);
	case CKA_SERIAL_NUMBER: return bytes_match(o->serial, o->serial_len, a);
	case CKA_VALUE: return bytes_match(o->value, o->value_len, a);
	case CKA_TOKEN: return tri_match(o->token, a);
	case CKA_TRUSTED: return tri_match(o->trusted, a);
	}
	return -1;
}

int
p11km_tokcerts_search(struct p11km_session *s, const CK_ATTRIBUTE *t, CK_ULONG n, size_t max,
                   CK_OBJECT_HANDLE **out, size_t *n_out)
{
	struct p11km_tokcerts *c = s->certs;
	CK_OBJECT_HANDLE *h;
	int is_cert = 0;
	size_t k = 0;

	if (c == NULL || !c->valid)
		return 0;
	for (CK_ULONG i = 0; i < n; i++)
		if (t[i].type == CKA_CLASS && t[i].pValue != NULL &&
		    t[i].ulValueLen == sizeof(CK_OBJECT_CLASS) &&
		    *(CK_OBJECT_CLASS *)t[i].pValue == CKO_CERTIFICATE)
			is_cert = 1;
	if (!is_cert)
		return 0;
	if ((h = calloc(c->n + 1, sizeof(*h))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < c->n && (max == 0 || k < max); i++) {
		int m = 1;
		for (CK_ULONG j = 0; j < n && m != 0; j++) {
			int am = attr_match(&c->c[i].o, &t[j]);
			if (am <= 0)
				m = am;
		}
		if (m < 0) { /* one it cannot tell about: the token answers */
			free(h);
			return 0;
		}
		if (m == 1)
			h[k++] = c->c[i].o.h;
	}
	*out = h;
	*n_out = k;
	return 1;
}

int
p11km_tokcerts_read(struct p11km_session *s, CK_OBJECT_HANDLE h, struct p11km_object *o)
{
	struct cached *e = s->certs && s->certs->valid ? cached_find(s->certs, h) : NULL;
	int r;

	if (e == NULL || !e->read)
		return 0;
	if ((r = p11km_object_copy(&e->o, o)) < 0)
		return r;
	return 1;
}

void
p11km_tokcerts_was_read(struct p11km_session *s, const struct p11km_object *o)
{
	struct cached *e = s->certs ? cached_find(s->certs, o->h) : NULL;
	struct p11km_object copy;

	if (e == NULL || e->read || o->cls != CKO_CERTIFICATE || p11km_object_copy(o, &copy) < 0)
		return;
	p11km_object_release(&e->o);
	e->o = copy;
	e->read = 1;
}

/* --- what this process changes ----------------------------------------------------- */

const CK_ATTRIBUTE *
p11km_template_attr(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
	for (CK_ULONG i = 0; i < n; i++)
		if (t[i].type == type && t[i].pValue != NULL &&
		    t[i].ulValueLen != CK_UNAVAILABLE_INFORMATION)
			return &t[i];
	return NULL;
}

static CK_ULONG
tulong(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
	const CK_ATTRIBUTE *a = p11km_template_attr(t, n, type);

	return a != NULL && a->ulValueLen == sizeof(CK_ULONG) ? *(CK_ULONG *)a->pValue
	                                                      : (CK_ULONG)-1;
}

static enum p11km_tri
ttri(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
	const CK_ATTRIBUTE *a = p11km_template_attr(t, n, type);

	if (a == NULL || a->ulValueLen != sizeof(CK_BBOOL))
		return P11KM_ABSENT;
	return *(CK_BBOOL *)a->pValue ? P11KM_TRUE : P11KM_FALSE;
}

void
p11km_tokcerts_created(struct p11km_session *s, CK_OBJECT_HANDLE h, const CK_ATTRIBUTE *t,
                    CK_ULONG n)
{
	struct p11km_tokcerts *c = s->certs;
	CK_ULONG cls = tulong(t, n, CKA_CLASS);
	const CK_ATTRIBUTE *a;
	struct cached *e;
	int bad = 0;

	if (c == NULL || !c->valid || (cls != CKO_CERTIFICATE && cls != (CK_ULONG)-1))
		return;
	if (cls == (CK_ULONG)-1 || ttri(t, n, CKA_TOKEN) != P11KM_TRUE || (e = cached_add(c)) == NULL) {
		c->valid = 0; /* not one it can describe */
		return;
	}
	e->o.h = h;
	e->o.cls = CKO_CERTIFICATE;
	e->o.key_type = (CK_KEY_TYPE)-1;
	e->o.cert_type = tulong(t, n, CKA_CERTIFICATE_TYPE);
	e->o.cert_category = tulong(t, n, CKA_CERTIFICATE_CATEGORY);
	e->o.token = P11KM_TRUE;
	e->o.trusted = ttri(t, n, CKA_TRUSTED);
	if ((a = p11km_template_attr(t, n, CKA_LABEL)) != NULL &&
	    (e->o.label = label_dup(a->pValue, a->ulValueLen)) == NULL)
		bad = 1;
#define FIELD(type, f, fl) \
	if ((a = p11km_template_attr(t, n, type)) != NULL) \
		set_bytes(&e->o.f, &e->o.fl, a, &bad);
	FIELD(CKA_ID, id, id_len)
	FIELD(CKA_SUBJECT, subject, subject_len)
	FIELD(CKA_ISSUER, issuer, issuer_len)
	FIELD(CKA_SERIAL_NUMBER, serial, serial_len)
	FIELD(CKA_VALUE, value, value_len)
#undef FIELD
	if (bad)
		c->valid = 0;
}

void
p11km_tokcerts_set(struct p11km_session *s, CK_OBJECT_HANDLE h, const CK_ATTRIBUTE *a, CK_ULONG n)
{
	struct cached *e = s->certs ? cached_find(s->certs, h) : NULL;
	int bad = 0;

	if (e == NULL) /* a key: this holds certificates only */
		return;
	for (CK_ULONG i = 0; i < n && !bad; i++) {
		if (a[i].type == CKA_LABEL && a[i].pValue != NULL) {
			free(e->o.label);
			if ((e->o.label = label_dup(a[i].pValue, a[i].ulValueLen)) == NULL)
				bad = 1;
		} else if (a[i].type == CKA_ID && a[i].pValue != NULL) {
			free(e->o.id);
			set_bytes(&e->o.id, &e->o.id_len, &a[i], &bad);
		} else {
			bad = 1; /* an attribute it does not follow */
		}
	}
	if (bad)
		s->certs->valid = 0;
}

void
p11km_tokcerts_destroyed(struct p11km_session *s, CK_OBJECT_HANDLE h)
{
	struct cached *e = s->certs ? cached_find(s->certs, h) : NULL;

	if (e == NULL)
		return;
	p11km_object_release(&e->o);
	*e = s->certs->c[--s->certs->n];
}
