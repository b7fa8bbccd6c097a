/* p11-object.c: targeted object searches and attribute reads. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/change.h"
#include "p11km/p11.h"
#include "p11km/util.h"

/* More objects than this from one search is a module that never ends. */
#define FIND_MAX 65536

/* The handles seen by a search: an open-addressing set (handles are never 0). */
struct handle_set {
	CK_OBJECT_HANDLE *slot;
	size_t cap, n;
};

/* Add h: 1 if new, 0 if seen before, <0 on error. */
static int
handle_set_add(struct handle_set *hs, CK_OBJECT_HANDLE h)
{
	size_t i;

	if (2 * (hs->n + 1) > hs->cap) {
		struct handle_set bigger = { calloc(hs->cap ? 2 * hs->cap : 128, sizeof(h)), 0, 0 };
		if (bigger.slot == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		bigger.cap = hs->cap ? 2 * hs->cap : 128;
		for (size_t k = 0; k < hs->cap; k++)
			if (hs->slot[k] != CK_INVALID_HANDLE)
				handle_set_add(&bigger, hs->slot[k]);
		free(hs->slot);
		*hs = bigger;
	}
	for (i = (size_t)(h * 2654435761u) & (hs->cap - 1); hs->slot[i] != CK_INVALID_HANDLE;
	     i = (i + 1) & (hs->cap - 1))
		if (hs->slot[i] == h)
			return 0;
	hs->slot[i] = h;
	hs->n++;
	return 1;
}

/* C_FindObjects into h[*nh..]: at most want handles, each checked: never more
 * than asked for; CK_INVALID_HANDLE and one seen before are dropped, never
 * used.  (ykcs11 2.2.0 gives handle 0 to a real object, the data object
 * holding the 9a certificate: failing the search would make p11km useless
 * on every YubiKey.) */
static int
find_batch(struct p11km_session *s, struct handle_set *seen, CK_OBJECT_HANDLE *h, size_t *nh,
           CK_ULONG want, CK_ULONG *got)
{
	CK_RV rv = P11KM_CALL(s->f, C_FindObjects, s->h, h + *nh, want, got);
	size_t k = *nh;
	int r;

	if (rv != CKR_OK)
		return p11km_fail_ckr_tok(s->tok, rv, s->tok->label, "C_FindObjects");
	if (*got > want)
		return p11km_fail_module(s->tok->label, "C_FindObjects", "it returned %lu handles "
		                         "where at most %lu were asked for", *got, want);
	for (CK_ULONG i = 0; i < *got; i++) {
		if (h[*nh + i] == CK_INVALID_HANDLE) {
			p11km_verbose("token '%s': C_FindObjects returned the invalid handle 0; "
			              "that object is left out", s->tok->label);
			continue;
		}
		if ((r = handle_set_add(seen, h[*nh + i])) < 0)
			return r;
		if (r == 1)
			h[k++] = h[*nh + i];
	}
	*nh = k;
	return 0;
}

int
p11km_find(struct p11km_session *s, const CK_ATTRIBUTE *tmpl, CK_ULONG n, size_t max,
           CK_OBJECT_HANDLE **out, size_t *n_out)
{
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE *t = calloc(n + 1, sizeof(*t));
	CK_OBJECT_HANDLE *h = NULL;
	struct handle_set seen = { 0 };
	size_t nh = 0;
	CK_RV rv;
	int r = 0;

	if (t == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (n > 0)
		memcpy(t, tmpl, n * sizeof(*t));
	t[n] = (CK_ATTRIBUTE){ CKA_TOKEN, &yes, sizeof(yes) };
	/* a batch's certificates, read once (p11-certs.c) */
	if (s->certs != NULL && (r = p11km_tokcerts_search(s, t, n + 1, max, out, n_out)) != 0) {
		free(t);
		return r < 0 ? r : 0;
	}
	rv = P11KM_CALL(s->f, C_FindObjectsInit, s->h, t, n + 1);
	free(t);
	if (rv != CKR_OK)
		return p11km_fail_ckr_tok(s->tok, rv, s->tok->label, "C_FindObjectsInit");
	for (;;) {
		CK_ULONG got = 0, want = 64;
		if (max > 0 && max - nh < want)
			want = max - nh;
		if (nh >= FIND_MAX) {
			r = p11km_fail_module(s->tok->label, "C_FindObjects", "it returned more than "
			                      "%d objects for one search and did not end", FIND_MAX);
			break;
		}
		CK_OBJECT_HANDLE *nhp = realloc(h, (nh + want) * sizeof(*h));
		if (nhp == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			break;
		}
		h = nhp;
		if ((r = find_batch(s, &seen, h, &nh, want, &got)) < 0)
			break;
		if (got < want || (max > 0 && nh >= max))
			break;
	}
	free(seen.slot);
	rv = P11KM_CALL(s->f, C_FindObjectsFinal, s->h);
	if (r == 0 && rv != CKR_OK)
		r = p11km_fail_ckr_tok(s->tok, rv, s->tok->label, "C_FindObjectsFinal");
	if (r < 0) {
		free(h);
		return r;
	}
	*out = h;
	*n_out = nh;
	return 0;
}

/* Attributes read by p11km_object_read(). */
enum { A_CLASS, A_KEY_TYPE, A_CERT_TYPE, A_CERT_CATEGORY, A_MODULUS_BITS,
       A_TOKEN, A_PRIVATE, A_SENSITIVE, A_EXTRACTABLE, A_ALWAYS_SENSITIVE,
       A_NEVER_EXTRACTABLE, A_SIGN, A_VERIFY, A_DECRYPT, A_ENCRYPT, A_UNWRAP, A_WRAP,
       A_DERIVE, A_TRUSTED, A_MODIFIABLE,
       A_FIXED_END,
       A_LABEL = A_FIXED_END, A_ID, A_MODULUS, A_PUB_EXP, A_EC_PARAMS, A_EC_POINT,
       A_PUBKEY_INFO, A_SUBJECT, A_ISSUER, A_SERIAL,
       A_VALUE, /* last: not in the first call, which does not know the class yet */
       A_END };

/* CKA_VALUE of a certificate is read into a buffer of this size
 * (certificates are smaller); a larger one costs two more calls.  Not even
 * its length is asked of a key: a private key's CKA_VALUE is its secret. */
#define CERT_VALUE_GUESS 16384

static const CK_ATTRIBUTE_TYPE attr_types[A_END] = {
	CKA_CLASS, CKA_KEY_TYPE, CKA_CERTIFICATE_TYPE, CKA_CERTIFICATE_CATEGORY, CKA_MODULUS_BITS,
	CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_ALWAYS_SENSITIVE,
	CKA_NEVER_EXTRACTABLE, CKA_SIGN, CKA_VERIFY, CKA_DECRYPT, CKA_ENCRYPT, CKA_UNWRAP, CKA_WRAP,
	CKA_DERIVE, CKA_TRUSTED, CKA_MODIFIABLE,
	CKA_LABEL, CKA_ID, CKA_MODULUS, CKA_PUBLIC_EXPONENT, CKA_EC_PARAMS, CKA_EC_POINT,
	CKA_PUBLIC_KEY_INFO, CKA_SUBJECT, CKA_ISSUER, CKA_SERIAL_NUMBER, CKA_VALUE,
};

static const char *const attr_names[A_END] = {
	"CKA_CLASS", "CKA_KEY_TYPE", "CKA_CERTIFICATE_TYPE", "CKA_CERTIFICATE_CATEGORY",
	"CKA_MODULUS_BITS", "CKA_TOKEN", "CKA_PRIVATE", "CKA_SENSITIVE", "CKA_EXTRACTABLE",
	"CKA_ALWAYS_SENSITIVE", "CKA_NEVER_EXTRACTABLE", "CKA_SIGN", "CKA_VERIFY", "CKA_DECRYPT",
	"CKA_ENCRYPT", "CKA_UNWRAP", "CKA_WRAP", "CKA_DERIVE", "CKA_TRUSTED", "CKA_MODIFIABLE",
	"CKA_LABEL", "CKA_ID", "CKA_MODULUS", "CKA_PUBLIC_EXPONENT", "CKA_EC_PARAMS",
	"CKA_EC_POINT", "CKA_PUBLIC_KEY_INFO", "CKA_SUBJECT", "CKA_ISSUER", "CKA_SERIAL_NUMBER",
	"CKA_VALUE",
};

/* The pre-sized buffer of each variable attribute in the one-call read.
 * A "bounded" one cannot be longer for any key p11km can use (RSA moduli
 * up to 16384 bits, OpenSSL's limit; EC up to 571 bits): when the module
 * answers CK_UNAVAILABLE_INFORMATION for it, it is absent, even when the
 * call's CKR_ATTRIBUTE_TYPE_INVALID might stand for a CKR_BUFFER_TOO_SMALL
 * as well (PKCS#11 lets a module return either).  An unbounded one (label,
 * id, names, serial, value) is then asked again, alone. */
static const struct { CK_ULONG cap; int bounded; } var_buf[A_END - A_FIXED_END] = {
	[A_LABEL - A_FIXED_END] = { 256, 0 },
	[A_ID - A_FIXED_END] = { 256, 0 },
	[A_MODULUS - A_FIXED_END] = { 2048, 1 },
	[A_PUB_EXP - A_FIXED_END] = { 2048, 1 },
	[A_EC_PARAMS - A_FIXED_END] = { 1024, 1 },
	[A_EC_POINT - A_FIXED_END] = { 512, 1 },
	[A_PUBKEY_INFO - A_FIXED_END] = { 4224, 1 },
	[A_SUBJECT - A_FIXED_END] = { 2048, 0 },
	[A_ISSUER - A_FIXED_END] = { 2048, 0 },
	[A_SERIAL - A_FIXED_END] = { 128, 0 },
	[A_VALUE - A_FIXED_END] = { CERT_VALUE_GUESS, 0 },
};

/* The longest attribute accepted from a module (certificates are far
 * smaller): a longer length is the module's error, not a value. */
#define ATTR_MAX (1UL << 20)
/* How often a length that changed between the size and the value calls is
 * asked again before the module is called faulty. */
#define ATTR_TRIES 3

static int
rv_partial_ok(CK_RV rv)
{
	return rv == CKR_OK || rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
	       rv == CKR_BUFFER_TOO_SMALL;
}

static enum p11km_tri
tri(const CK_ATTRIBUTE *a)
{
	if (a->ulValueLen != sizeof(CK_BBOOL))
		return P11KM_ABSENT;
	return *(CK_BBOOL *)a->pValue ? P11KM_TRUE : P11KM_FALSE;
}

static CK_ULONG
ulong_or(const CK_ATTRIBUTE *a, CK_ULONG dflt)
{
	return a->ulValueLen == sizeof(CK_ULONG) ? *(CK_ULONG *)a->pValue : dflt;
}

static CK_ULONG
fixed_size(int i)
{
	return i < A_TOKEN ? sizeof(CK_ULONG) : sizeof(CK_BBOOL);
}

/* Is variable attribute i wanted for an object of class cls? */
static int
wanted(int i, CK_OBJECT_CLASS cls)
{
	switch (i) {
	case A_LABEL: case A_ID:
		return 1;
	case A_VALUE: case A_ISSUER: case A_SERIAL:
		return cls == CKO_CERTIFICATE; /* never a key's CKA_VALUE */
	case A_SUBJECT:
		return cls == CKO_CERTIFICATE;
	default:
		return cls == CKO_PUBLIC_KEY || cls == CKO_PRIVATE_KEY;
	}
}

/* Slow path for modules that stop at the first bad attribute: the fixed
 * attributes one at a time (the variable ones are asked again alone). */
static void
read_one_by_one(struct p11km_session *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		a[i].ulValueLen = fixed_size((int)i);
		CK_RV rv = P11KM_CALL(s->f, C_GetAttributeValue, s->h, h, &a[i], 1);
		if (rv != CKR_OK)
			a[i].ulValueLen = CK_UNAVAILABLE_INFORMATION;
	}
}

/* Check a length a module answered for attribute i into a buffer of cap
 * bytes (0: a size query) with call result rv: 1 when it must be asked
 * again (too small a buffer), 0 when usable, <0 (recorded) when the module
 * answered what no module may. */
static int
check_len(struct p11km_session *s, int i, CK_ULONG len, CK_ULONG cap, CK_RV rv)
{
	const char *who = s->tok->label;

	if (len == CK_UNAVAILABLE_INFORMATION)
		return cap > 0 && rv == CKR_BUFFER_TOO_SMALL; /* 2.40: too small, or absent */
	if (cap == 0 && len > ATTR_MAX)
		return p11km_fail_module(who, "C_GetAttributeValue", "it reported a length of %lu "
		                         "bytes for %s", len, attr_names[i]);
	if (cap > 0 && len > cap && rv != CKR_OK)
		return 1; /* 2.20 style: the length it needs now (the call's code may be
		           * another of the three a partial read can return) */
	if (cap > 0 && len > cap)
		return p11km_fail_module(who, "C_GetAttributeValue", "it answered %s with %lu bytes "
		                         "for a buffer of %lu", attr_names[i], len, cap);
	return 0;
}

/* check_len() of variable attribute i answered len into its pre-sized
 * buffer, and 1 too when the length is unavailable behind a code other
 * than CKR_OK for an unbounded attribute: absent, or too small (any of the
 * three codes of a partial read may be returned). */
static int
fill_check(struct p11km_session *s, int i, CK_ULONG len, CK_RV rv)
{
	int r = check_len(s, i, len, var_buf[i - A_FIXED_END].cap, rv);

	if (r == 0 && len == CK_UNAVAILABLE_INFORMATION && rv != CKR_OK &&
	    !var_buf[i - A_FIXED_END].bounded)
		r = 1;
	return r;
}

/* Attribute i again, alone: its length, then its value, while the length
 * keeps changing (ATTR_TRIES times).  *buf is reallocated (NULL when the
 * attribute turns out absent); *len is its length. */
static int
read_again(struct p11km_session *s, CK_OBJECT_HANDLE h, int i, unsigned char **buf,
           CK_ULONG *len)
{
	for (int tries = 0; tries < ATTR_TRIES; tries++) {
		CK_ATTRIBUTE q = { attr_types[i], NULL, 0 };
		CK_RV rv = P11KM_CALL(s->f, C_GetAttributeValue, s->h, h, &q, 1);
		unsigned char *nb;
		CK_ULONG cap;
		int r;

		if (!rv_partial_ok(rv))
			return p11km_fail_ckr_tok(s->tok, rv, s->tok->label, "C_GetAttributeValue");
		if (rv == CKR_OK && (r = check_len(s, i, q.ulValueLen, 0, rv)) < 0)
			return r;
		if (rv != CKR_OK || q.ulValueLen == CK_UNAVAILABLE_INFORMATION || q.ulValueLen == 0)
			goto absent; /* as the first call would have said */
		if ((nb = realloc(*buf, q.ulValueLen + 1)) == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		*buf = nb;
		q.pValue = nb;
		cap = q.ulValueLen;
		rv = P11KM_CALL(s->f, C_GetAttributeValue, s->h, h, &q, 1);
		if (!rv_partial_ok(rv))
			return p11km_fail_ckr_tok(s->tok, rv, s->tok->label, "C_GetAttributeValue");
		if ((r = check_len(s, i, q.ulValueLen, cap, rv)) < 0)
			return r;
		if (r == 1)
			continue; /* it changed again */
		if (rv != CKR_OK || q.ulValueLen == CK_UNAVAILABLE_INFORMATION || q.ulValueLen == 0)
			goto absent;
		*len = q.ulValueLen;
		return 0;
	}
	return p11km_fail_module(s->tok->label, "C_GetAttributeValue", "the length of %s "
	                         "changed at each of %d reads", attr_names[i], ATTR_TRIES);
absent:
	free(*buf);
	*buf = NULL;
	*len = 0;
	return 0;
}

/* Variable attribute i after the first call (answered rv; stopped: by a
 * module that stops at the first bad attribute): into bufs[i] (NUL-ended,
 * NULL when absent) and a[i].ulValueLen, asked again alone only when its
 * buffer may have been too small. */
static int
take_value(struct p11km_session *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE *a, int i, CK_RV rv,
           int stopped, unsigned char **bufs)
{
	CK_ULONG len = a[i].ulValueLen;
	int r = stopped ? 1 : fill_check(s, i, len, rv);

	if (r < 0)
		return r;
	if (r == 1) {
		if ((r = read_again(s, h, i, &bufs[i], &len)) < 0)
			return r;
	} else if (len != CK_UNAVAILABLE_INFORMATION && len > 0) {
		if ((bufs[i] = malloc(len + 1)) == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		memcpy(bufs[i], a[i].pValue, len);
	} else {
		len = 0;
	}
	a[i].ulValueLen = len;
	if (bufs[i] != NULL)
		bufs[i][len] = '\0';
	return 0;
}

/* The one call: every fixed attribute and every variable one into a
 * pre-sized slice of scratch (CKA_VALUE only when the hint is
 * CKO_CERTIFICATE); then the variable ones the class wants, each asked
 * again only when it may not have fit.  A certificate's value otherwise
 * costs a second call, unless the hint is a key class (the caller wants
 * keys: none).  Modules that stop at the first bad attribute are read one
 * attribute at a time. */
static int
read_attrs(struct p11km_session *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE *a, CK_OBJECT_CLASS hint,
           unsigned char *scratch, unsigned char **bufs, CK_OBJECT_CLASS *cls)
{
	int with_value = hint == CKO_CERTIFICATE;
	CK_ULONG n = with_value ? A_END : A_VALUE;
	size_t off = 0;
	int stopped, r;
	CK_RV rv;

	for (int i = A_FIXED_END; i < A_END; i++) {
		a[i].pValue = scratch + off;
		a[i].ulValueLen = var_buf[i - A_FIXED_END].cap;
		off += var_buf[i - A_FIXED_END].cap;
	}
	rv = P11KM_CALL(s->f, C_GetAttributeValue, s->h, h, a, n);
	if (!rv_partial_ok(rv))
		return p11km_fail_ckr_tok(s->tok, rv, s->tok->label, "C_GetAttributeValue");
	stopped = a[A_CLASS].ulValueLen != sizeof(CK_ULONG) && rv != CKR_OK;
	if (stopped)
		read_one_by_one(s, h, a, A_FIXED_END);
	for (int i = 0; i < A_FIXED_END; i++)
		if ((r = check_len(s, i, a[i].ulValueLen, fixed_size(i), rv)) != 0) {
			if (r < 0)
				return r;
			a[i].ulValueLen = CK_UNAVAILABLE_INFORMATION; /* not a CK_ULONG/CK_BBOOL */
		}
	*cls = ulong_or(&a[A_CLASS], (CK_ULONG)-1);
	for (int i = A_FIXED_END; i < A_VALUE; i++)
		if (wanted(i, *cls) && (r = take_value(s, h, a, i, rv, stopped, bufs)) < 0)
			return r;
	if (*cls != CKO_CERTIFICATE)
		return 0; /* a key's CKA_VALUE, if it was asked, is wiped with scratch */
	if (with_value)
		return take_value(s, h, a, A_VALUE, rv, stopped, bufs);
	if (hint == CKO_PRIVATE_KEY || hint == CKO_PUBLIC_KEY)
		return 0;
	{
		unsigned char *v = NULL;
		size_t vl = 0;
		if ((r = p11km_cert_value_read(s, h, &v, &vl)) < 0)
			return r;
		bufs[A_VALUE] = v;
		a[A_VALUE].ulValueLen = vl;
	}
	return 0;
}

int
p11km_object_read(struct p11km_session *s, CK_OBJECT_HANDLE h, struct p11km_object *o)
{
	return p11km_object_read_as(s, h, (CK_OBJECT_CLASS)-1, o);
}

int
p11km_object_read_as(struct p11km_session *s, CK_OBJECT_HANDLE h, CK_OBJECT_CLASS hint,
                     struct p11km_object *o)
{
	union { CK_ULONG ul; CK_BBOOL b; } fixed[A_FIXED_END];
	CK_ATTRIBUTE a[A_END];
	unsigned char *bufs[A_END] = { 0 };
	unsigned char *scratch;
	CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
	size_t total = 0;
	int r;

	memset(o, 0, sizeof(*o));
	if (s->certs != NULL && (hint == CKO_CERTIFICATE || hint == (CK_OBJECT_CLASS)-1) &&
	    (r = p11km_tokcerts_read(s, h, o)) != 0) {
		if (r == 1)
			p11km_obj_seen(s, o);
		return r < 0 ? r : 0;
	}
	memset(fixed, 0, sizeof(fixed));
	o->h = h;
	for (int i = 0; i < A_END; i++) {
		a[i].type = attr_types[i];
		if (i < A_FIXED_END) {
			a[i].pValue = &fixed[i];
			a[i].ulValueLen = fixed_size(i);
		}
	}
	for (int i = A_FIXED_END; i < A_END; i++)
		total += var_buf[i - A_FIXED_END].cap;
	if ((scratch = malloc(total)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	r = read_attrs(s, h, a, hint, scratch, bufs, &cls);
	p11km_freezero(scratch, total);
	if (r < 0) {
		for (int k = 0; k < A_END; k++)
			free(bufs[k]);
		return r;
	}
	o->cls = cls;
	o->key_type = ulong_or(&a[A_KEY_TYPE], (CK_ULONG)-1);
	o->cert_type = ulong_or(&a[A_CERT_TYPE], (CK_ULONG)-1);
	o->cert_category = ulong_or(&a[A_CERT_CATEGORY], (CK_ULONG)-1);
	o->modulus_bits = ulong_or(&a[A_MODULUS_BITS], 0);
	o->token = tri(&a[A_TOKEN]);
	o->private_ = tri(&a[A_PRIVATE]);
	o->sensitive = tri(&a[A_SENSITIVE]);
	o->extractable = tri(&a[A_EXTRACTABLE]);
	o->always_sensitive = tri(&a[A_ALWAYS_SENSITIVE]);
	o->never_extractable = tri(&a[A_NEVER_EXTRACTABLE]);
	o->sign = tri(&a[A_SIGN]);
	o->verify = tri(&a[A_VERIFY]);
	o->decrypt = tri(&a[A_DECRYPT]);
	o->encrypt = tri(&a[A_ENCRYPT]);
	o->unwrap = tri(&a[A_UNWRAP]);
	o->wrap = tri(&a[A_WRAP]);
	o->derive = tri(&a[A_DERIVE]);
	o->trusted = tri(&a[A_TRUSTED]);
	o->modifiable = tri(&a[A_MODIFIABLE]);
#define TAKE(field, lenfield, i) \
	if (bufs[i] != NULL) { o->field = bufs[i]; o->lenfield = a[i].ulValueLen; bufs[i] = NULL; }
	if (bufs[A_LABEL] != NULL) {
		o->label = (char *)bufs[A_LABEL];
		bufs[A_LABEL] = NULL;
	}
	TAKE(id, id_len, A_ID);
	TAKE(modulus, modulus_len, A_MODULUS);
	TAKE(pub_exp, pub_exp_len, A_PUB_EXP);
	TAKE(ec_params, ec_params_len, A_EC_PARAMS);
	TAKE(ec_point, ec_point_len, A_EC_POINT);
	TAKE(pubkey_info, pubkey_info_len, A_PUBKEY_INFO);
	TAKE(value, value_len, A_VALUE);
	TAKE(subject, subject_len, A_SUBJECT);
	TAKE(issuer, issuer_len, A_ISSUER);
	TAKE(serial, serial_len, A_SERIAL);
#undef TAKE
	if (o->modulus_bits == 0 && o->modulus_len > 0) {
		size_t i = 0;
		while (i < o->modulus_len && o->modulus[i] == 0)
			i++;
		o->modulus_bits = (o->modulus_len - i) * 8;
	}
	p11km_obj_seen(s, o); /* what the audit trail names it by (p11-change.c) */
	if (s->certs != NULL)
		p11km_tokcerts_was_read(s, o);
	return 0;
}

int
p11km_cert_value_read(struct p11km_session *s, CK_OBJECT_HANDLE h, unsigned char **out,
                      size_t *len)
{
	CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
	unsigned char *buf = malloc(CERT_VALUE_GUESS + 1);
	CK_ATTRIBUTE q[2] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_VALUE, buf, CERT_VALUE_GUESS } };
	CK_ULONG l;
	CK_RV rv;
	int r;

	*out = NULL;
	*len = 0;
	if (buf == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (s->certs != NULL) {
		struct p11km_object o;
		if ((r = p11km_tokcerts_read(s, h, &o)) != 0) {
			free(buf);
			if (r == 1) {
				*out = o.value;
				*len = o.value_len;
				o.value = NULL;
				p11km_object_release(&o);
			}
			return r < 0 ? r : 0;
		}
	}
	rv = P11KM_CALL(s->f, C_GetAttributeValue, s->h, h, q, 2);
	if (!rv_partial_ok(rv)) {
		free(buf);
		return p11km_fail_ckr_tok(s->tok, rv, s->tok->label, "C_GetAttributeValue");
	}
	if (q[0].ulValueLen != sizeof(cls) || cls != CKO_CERTIFICATE) {
		/* not a certificate after all: whatever it said is not kept */
		p11km_freezero(buf, CERT_VALUE_GUESS + 1);
		return 0;
	}
	l = q[1].ulValueLen;
	if ((r = fill_check(s, A_VALUE, l, rv)) < 0) {
		free(buf);
		return r;
	}
	if (r == 1) { /* too small: read alone (what the first call said does not count) */
		if ((r = read_again(s, h, A_VALUE, &buf, &l)) < 0) {
			free(buf);
			return r;
		}
		rv = CKR_OK;
	}
	if (buf == NULL || l == CK_UNAVAILABLE_INFORMATION || l == 0 || rv != CKR_OK) {
		free(buf);
		return 0;
	}
	*out = buf;
	*len = l;
	return 0;
}

int
p11km_tokcerts_load(struct p11km_session *s, size_t max, struct p11km_tokcerts **out)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE t[1] = { { CKA_CLASS, &cls, sizeof(cls) } };
	CK_OBJECT_HANDLE *h = NULL;
	struct p11km_tokcerts *c = NULL;
	size_t nh = 0;
	int r;

	*out = NULL;
	if ((r = p11km_find(s, t, 1, max + 1, &h, &nh)) < 0)
		return r;
	if (nh > max) {
		p11km_verbose("token '%s' holds more than %zu certificates: each is searched for",
		              s->tok->label, max);
		free(h);
		return 0;
	}
	if ((c = p11km_tokcerts_new()) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; r == 0 && i < nh; i++) {
		struct p11km_object o;
		if ((r = p11km_object_read_as(s, h[i], CKO_CERTIFICATE, &o)) == 0)
			r = p11km_tokcerts_take(c, &o);
	}
	free(h);
	if (r < 0) {
		p11km_tokcerts_free(c);
		return r;
	}
	*out = c;
	return 0;
}

int
p11km_objects_find(struct p11km_session *s, const struct p11km_uri *uri, CK_OBJECT_CLASS cls,
                   struct p11km_object **objs, size_t *n)
{
	CK_ULONG nt = 0;
	CK_ATTRIBUTE *ut = p11km_uri_object_template(uri, &nt);
	CK_ATTRIBUTE t[8];
	CK_ULONG k = 0;
	CK_OBJECT_HANDLE *h = NULL;
	struct p11km_object *o = NULL;
	size_t nh = 0;
	int r;

	*objs = NULL;
	*n = 0;
	for (CK_ULONG i = 0; i < nt && k < 7; i++)
		t[k++] = ut[i];
	if (cls != (CK_OBJECT_CLASS)-1) {
		CK_OBJECT_CLASS ucls = p11km_uri_class(uri);
		if (ucls != (CK_OBJECT_CLASS)-1 && ucls != cls)
			return 0; /* the URI names another class */
		if (ucls == (CK_OBJECT_CLASS)-1)
			t[k++] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	}
	if ((r = p11km_find(s, t, k, 0, &h, &nh)) < 0)
		return r;
	if (nh > 0 && (o = calloc(nh, sizeof(*o))) == NULL) {
		free(h);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	if (cls == (CK_OBJECT_CLASS)-1)
		cls = p11km_uri_class(uri);
	for (size_t i = 0; i < nh; i++) {
		if ((r = p11km_object_read_as(s, h[i], cls, &o[i])) < 0) {
			p11km_objects_free(o, i);
			free(h);
			return r;
		}
	}
	free(h);
	*objs = o;
	*n = nh;
	return 0;
}

int
p11km_label_check(const char *label, size_t max)
{
	size_t n = strlen(label);

	if (n == 0 || n > max)
		return p11km_fail(P11KM_ERR_USAGE, "--label must be 1 to %zu bytes long", max);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)label[i] < 0x20 || label[i] == 0x7f)
			return p11km_fail(P11KM_ERR_USAGE, "--label contains a control character");
	return 0;
}

char *
p11km_object_uri(const struct p11km_token *tok, const struct p11km_object *o)
{
	return p11km_uri_object(&tok->info, o->label, o->id, o->id_len, o->cls);
}

int
p11km_object_find_one(struct p11km_session *s, const struct p11km_uri *uri,
                      CK_OBJECT_CLASS cls, struct p11km_object *out)
{
	struct p11km_object *objs = NULL;
	size_t n = 0;
	int r;

	if ((r = p11km_objects_find(s, uri, cls, &objs, &n)) < 0)
		return r;
	if (n == 1) {
		*out = objs[0];
		free(objs);
		return 0;
	}
	if (n == 0) {
		r = p11km_fail(P11KM_ERR_NOTFOUND,
		    "no %s%sobject on token '%s' matches the URI; run 'p11km object list' to see them",
		    cls == (CK_OBJECT_CLASS)-1 ? "" : p11km_class_name(cls),
		    cls == (CK_OBJECT_CLASS)-1 ? "" : " ", s->tok->label);
	} else {
		char **uris = calloc(n, sizeof(*uris));
		char *list = NULL;
		if (uris != NULL) {
			for (size_t i = 0; i < n; i++)
				uris[i] = p11km_object_uri(s->tok, &objs[i]);
			for (size_t i = 0; i < n; i++)
				if (uris[i] == NULL)
					uris[i] = strdup("?");
			list = p11km_join_uris(uris, n);
			for (size_t i = 0; i < n; i++)
				free(uris[i]);
			free(uris);
		}
		r = p11km_fail(P11KM_ERR_AMBIGUOUS,
		    "%zu objects match; add object=, id= or type= to select one: %s", n,
		    list ? list : "");
		free(list);
	}
	p11km_objects_free(objs, n);
	return r;
}
