/* store-token.c: certificate objects on a token, and the token trust store. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "p11km/audit.h"
#include "p11km/cert.h"
#include "p11km/change.h"
#include "p11km/store.h"
#include "p11km/util.h"

/* After a failed C_CreateObject: the object the token made all the same
 * (found by class, label, id and value: nothing else carries all four, since
 * callers create only what is not on the token) is destroyed like the rest,
 * and the error r says so. */
static void
made_anyway(struct p11km_session *s, const CK_ATTRIBUTE *t, CK_ULONG n, int r)
{
	CK_ATTRIBUTE q[4];
	CK_ULONG nq = 0;
	CK_OBJECT_HANDLE *h = NULL;
	size_t nh = 0;
	char *msg;

	for (CK_ULONG i = 0; i < n; i++)
		if (t[i].type == CKA_CLASS || t[i].type == CKA_LABEL || t[i].type == CKA_ID ||
		    t[i].type == CKA_VALUE)
			q[nq++] = t[i];
	if ((msg = strdup(p11km_errmsg(r))) == NULL)
		return;
	if (p11km_find(s, q, nq, 2, &h, &nh) == 0 && nh == 1) {
		p11km_obj_describe(s, h[0], q, nq);
		int was = p11km_audit_rollback(1);
		CK_RV drv = p11km_obj_destroy(s, h[0]);
		p11km_audit_rollback(was);
		if (drv == CKR_OK)
			p11km_fail(r, "%s (the token made the object all the same: destroyed again)", msg);
		else
			p11km_fail(r, "%s (the token made the object all the same, and C_DestroyObject "
			           "failed: %s; a run of the same command again finds it)", msg,
			           p11km_ckr_name(drv));
	} else {
		p11km_fail(r, "%s", msg); /* the failed search's message is not this run's error */
	}
	free(h);
	free(msg);
}

/* Take back an object this run just created and could not verify. */
static void
undo_create(struct p11km_session *s, CK_OBJECT_HANDLE h)
{
	int was = p11km_audit_rollback(1);

	p11km_obj_destroy(s, h);
	p11km_audit_rollback(was);
}

/* Is label cand (t[0], the rest of template t) free?  1: yes, and *out is
 * cand; 0: taken (cand freed); < 0: error (cand freed).  A search, no
 * attribute read. */
static int
label_free(struct p11km_session *s, CK_ATTRIBUTE *t, CK_ULONG nt, char *cand, char **out)
{
	CK_OBJECT_HANDLE *h = NULL;
	size_t n = 0;
	int r;

	if (cand == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	t[0].pValue = cand;
	t[0].ulValueLen = strlen(cand);
	if ((r = p11km_find(s, t, nt, 1, &h, &n)) < 0) {
		free(cand);
		return r;
	}
	free(h);
	if (n > 0) {
		free(cand);
		return 0;
	}
	*out = cand;
	return 1;
}

/* A label no other certificate with this id carries: label, else
 * "<label> (2)", "(3)" ... (two of Mozilla's roots share a label, as do a
 * cross-signed root and its self-signed twin; one URI must select one
 * object).  *out is malloc'ed. */
static int
distinct_label(struct p11km_session *s, const char *label, const unsigned char *id,
               size_t id_len, char **out)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;

	for (int i = 1; i < 100; i++) {
		CK_ATTRIBUTE t[3] = { { CKA_LABEL, NULL, 0 }, { CKA_CLASS, &cls, sizeof(cls) },
		                      { CKA_ID, (void *)id, id_len } };
		int r = label_free(s, t, 3, i == 1 ? strdup(label) : p11km_asprintf("%s (%d)", label, i),
		                   out);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	return p11km_fail(P11KM_ERR_EXISTS, "too many certificates labelled '%s (N)' with that id "
	                  "on token '%s'", label, s->tok->label);
}

/* CKA_START_DATE / CKA_END_DATE of a certificate: its validity, as CK_DATE. */
static int
cert_date(const ASN1_TIME *t, CK_DATE *d)
{
	struct tm tm;
	char buf[40]; /* room for any three ints: gcc -O2 checks the format, not the ranges */

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 || tm.tm_year + 1900 > 9999 ||
	    tm.tm_year + 1900 < 0) {
		ERR_clear_error();
		return 0;
	}
	snprintf(buf, sizeof(buf), "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	memcpy(d->year, buf, 4);
	memcpy(d->month, buf + 4, 2);
	memcpy(d->day, buf + 6, 2);
	return 1;
}

int
p11km_tok_cert_create(struct p11km_session *s, X509 *cert, const char *label,
                      const unsigned char *id, size_t id_len, CK_ULONG category, int trusted,
                      CK_OBJECT_HANDLE *out)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	unsigned char *der = NULL, *subj = NULL, *iss = NULL, *ser = NULL, *back = NULL;
	size_t dlen = 0, slen = 0, ilen = 0, serlen = 0;
	CK_ATTRIBUTE t[15];
	CK_ULONG n = 0, n_opt;
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_DATE start, end;
	char *own = NULL;
	CK_RV rv;
	int r;

	/* roots and intermediates: a leaf shares its key's label and id by
	 * design (cert install moves the old leaf out of the way itself) */
	if ((trusted || category == P11KM_CAT_AUTHORITY) &&
	    (r = distinct_label(s, label, id, id_len, &own)) < 0)
		return r;
	if (own != NULL)
		label = own;
	if ((r = p11km_cert_der(cert, &der, &dlen)) < 0 ||
	    (r = p11km_cert_name_der(cert, 0, &subj, &slen)) < 0 ||
	    (r = p11km_cert_name_der(cert, 1, &iss, &ilen)) < 0 ||
	    (r = p11km_cert_serial_der(cert, &ser, &serlen)) < 0)
		goto out;
	t[n++] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	t[n++] = (CK_ATTRIBUTE){ CKA_CERTIFICATE_TYPE, &ct, sizeof(ct) };
	t[n++] = (CK_ATTRIBUTE){ CKA_TOKEN, &yes, sizeof(yes) };
	t[n++] = (CK_ATTRIBUTE){ CKA_PRIVATE, &no, sizeof(no) };
	t[n++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) };
	if (id_len > 0)
		t[n++] = (CK_ATTRIBUTE){ CKA_ID, (void *)id, id_len };
	t[n++] = (CK_ATTRIBUTE){ CKA_SUBJECT, subj, slen };
	t[n++] = (CK_ATTRIBUTE){ CKA_ISSUER, iss, ilen };
	t[n++] = (CK_ATTRIBUTE){ CKA_SERIAL_NUMBER, ser, serlen };
	t[n++] = (CK_ATTRIBUTE){ CKA_VALUE, der, dlen };
	if (trusted)
		t[n++] = (CK_ATTRIBUTE){ CKA_TRUSTED, &yes, sizeof(yes) };
	/* The optional attributes last, so that a token which does not know
	 * one gets the template without them, once (ykcs11 takes only class,
	 * id, value, token, private, label, subject, issuer, serial and
	 * certificate type; opencryptoki 3.8 no CKA_CERTIFICATE_CATEGORY; others
	 * no dates): the category, and the validity for consumers and admin
	 * tools that show it. */
	n_opt = n;
	t[n++] = (CK_ATTRIBUTE){ CKA_CERTIFICATE_CATEGORY, &category, sizeof(category) };
	if (cert_date(X509_get0_notBefore(cert), &start) && cert_date(X509_get0_notAfter(cert), &end)) {
		t[n++] = (CK_ATTRIBUTE){ CKA_START_DATE, &start, sizeof(start) };
		t[n++] = (CK_ATTRIBUTE){ CKA_END_DATE, &end, sizeof(end) };
	}
	rv = p11km_obj_create(s, t, n, &h);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID || (n > n_opt + 1 && rv == CKR_ATTRIBUTE_VALUE_INVALID)) {
		/* once, without the optional attributes; what was learned is kept */
		CK_RV first = rv;
		p11km_verbose("token '%s' refused an optional certificate attribute (%s): again "
		              "without CKA_CERTIFICATE_CATEGORY and the dates", s->tok->label,
		              p11km_ckr_name(rv));
		rv = p11km_obj_create(s, t, n_opt, &h);
		if (rv == CKR_OK)
			p11km_learned(s->tok, "certificate-template",
			              "C_CreateObject refuses CKA_CERTIFICATE_CATEGORY/CKA_START_DATE/"
			              "CKA_END_DATE (%s): certificates are written without them",
			              p11km_ckr_name(first));
		n = n_opt;
	}
	if (rv == CKR_USER_TYPE_INVALID || (rv == CKR_USER_NOT_LOGGED_IN && !trusted &&
	                                    p11km_token_is_piv(s->tok))) {
		r = p11km_fail(P11KM_ERR_LOGIN,
		    "token '%s' writes certificates only under the security officer's login (%s): "
		    "give --so-pin-source%s", s->tok->label, p11km_ckr_name(rv),
		    p11km_token_is_piv(s->tok) ? " (a PIV card: the 48-hex-digit management key)" : "");
		goto out;
	}
	if (rv == CKR_FUNCTION_NOT_SUPPORTED || rv == CKR_TOKEN_WRITE_PROTECTED) {
		r = p11km_fail(P11KM_ERR_UNSUPPORTED,
		    "token '%s' cannot store certificates through this module (C_CreateObject: %s)%s",
		    s->tok->label, p11km_ckr_name(rv), p11km_token_is_piv(s->tok)
		    ? ": OpenSC's view of a PIV card is read-only; write the certificate with ykcs11 "
		      "(--module libykcs11.so and --so-pin-source), 'yubico-piv-tool -a "
		      "import-certificate' or 'piv-tool'; nothing was changed" : "");
		goto out;
	}
	if (rv == CKR_ATTRIBUTE_READ_ONLY && trusted) {
		r = p11km_fail(P11KM_ERR_LOGIN,
		    "token '%s' refused a trusted certificate (CKR_ATTRIBUTE_READ_ONLY): it needs "
		    "the security officer's login; give --so-pin-source", s->tok->label);
		goto out;
	}
	if (rv == CKR_USER_NOT_LOGGED_IN && trusted) {
		r = p11km_fail(P11KM_ERR_LOGIN,
		    "token '%s' refused a trusted certificate (CKR_USER_NOT_LOGGED_IN): this token "
		    "wants the user's login for it; give --pin-source instead of --so-pin-source",
		    s->tok->label);
		goto out;
	}
	if (trusted && (rv == CKR_TEMPLATE_INCONSISTENT || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
	                rv == CKR_ATTRIBUTE_VALUE_INVALID)) {
		r = p11km_fail(P11KM_ERR_UNSUPPORTED,
		    "token '%s' does not store trusted certificates (C_CreateObject with CKA_TRUSTED: "
		    "%s): put the root into a file store instead (pem-bundle:, openssl-dir:, system)",
		    s->tok->label, p11km_ckr_name(rv));
		made_anyway(s, t, n, r);
		goto out;
	}
	if (rv != CKR_OK) {
		r = p11km_fail_ckr_tok(s->tok, rv, s->tok->label, "C_CreateObject");
		made_anyway(s, t, n, r);
		goto out;
	}
	/* Read it back: the token must hold exactly these bytes.  One call into
	 * a buffer of the written size (no length query first): a token that
	 * holds more bytes answers CKR_BUFFER_TOO_SMALL, which differs too. */
	{
		CK_ATTRIBUTE a = { CKA_VALUE, NULL, dlen };
		if ((back = malloc(dlen ? dlen : 1)) == NULL) {
			undo_create(s, h);
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			goto out;
		}
		a.pValue = back;
		rv = P11KM_CALL(s->f, C_GetAttributeValue, s->h, h, &a, 1);
		if (rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && (a.ulValueLen != dlen ||
		                                                   memcmp(back, der, dlen) != 0))) {
			r = p11km_fail(P11KM_ERR_TOKEN,
			    "token '%s' does not hold the certificate as written (read-back differs)",
			    s->tok->label);
			/* Best effort: do not leave a damaged object behind. */
			undo_create(s, h);
			goto out;
		}
		if (rv != CKR_OK) {
			r = p11km_fail_ckr_tok(s->tok, rv, s->tok->label, "C_GetAttributeValue");
			/* unverified: take it back too (best effort, the token may be gone) */
			undo_create(s, h);
			goto out;
		}
	}
	*out = h;
	r = 0;
out:
	free(der);
	free(subj);
	free(iss);
	free(ser);
	free(back);
	free(own);
	return r;
}

static int
read_handles(struct p11km_session *s, CK_OBJECT_HANDLE *h, size_t nh, CK_OBJECT_CLASS cls,
             struct p11km_object **objs, size_t *n)
{
	struct p11km_object *o = NULL;
	int r;

	*objs = NULL;
	*n = 0;
	if (nh == 0)
		return 0;
	if ((o = calloc(nh, sizeof(*o))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < nh; i++) {
		if ((r = p11km_object_read_as(s, h[i], cls, &o[i])) < 0) {
			p11km_objects_free(o, i);
			return r;
		}
	}
	*objs = o;
	*n = nh;
	return 0;
}

static int
find_read(struct p11km_session *s, CK_ATTRIBUTE *t, CK_ULONG nt, size_t max,
          struct p11km_object **objs, size_t *n)
{
	CK_OBJECT_CLASS cls = (CK_OBJECT_CLASS)-1;
	CK_OBJECT_HANDLE *h = NULL;
	size_t nh = 0;
	int r;

	for (CK_ULONG i = 0; i < nt; i++)
		if (t[i].type == CKA_CLASS && t[i].ulValueLen == sizeof(cls))
			memcpy(&cls, t[i].pValue, sizeof(cls));
	if ((r = p11km_find(s, t, nt, max, &h, &nh)) < 0)
		return r;
	r = read_handles(s, h, nh, cls, objs, n);
	free(h);
	return r;
}

int
p11km_tok_certs_by_id(struct p11km_session *s, const unsigned char *id, size_t id_len,
                      const char *label, struct p11km_object **objs, size_t *n)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE t[3];
	CK_ULONG nt = 0;
	int r;

	t[nt++] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	if (id_len > 0) {
		t[nt++] = (CK_ATTRIBUTE){ CKA_ID, (void *)id, id_len };
	} else if (label != NULL) {
		t[nt++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) };
	}
	if ((r = find_read(s, t, nt, 256, objs, n)) < 0)
		return r;
	if (id_len == 0) {
		/* Keep only certificates whose id is empty or absent. */
		size_t k = 0;
		for (size_t i = 0; i < *n; i++) {
			if ((*objs)[i].id_len == 0)
				(*objs)[k++] = (*objs)[i];
			else
				p11km_object_release(&(*objs)[i]);
		}
		*n = k;
	}
	return 0;
}

int
p11km_tok_cert_find(struct p11km_session *s, X509 *cert, CK_OBJECT_HANDLE *h)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	unsigned char *der = NULL, *subj = NULL, *iss = NULL, *ser = NULL;
	size_t dlen = 0, slen = 0, ilen = 0, serlen = 0, n = 0;
	CK_OBJECT_HANDLE *hs = NULL;
	CK_ATTRIBUTE t[4];
	int r, found = 0;

	if ((r = p11km_cert_der(cert, &der, &dlen)) < 0 ||
	    (r = p11km_cert_name_der(cert, 0, &subj, &slen)) < 0 ||
	    (r = p11km_cert_name_der(cert, 1, &iss, &ilen)) < 0 ||
	    (r = p11km_cert_serial_der(cert, &ser, &serlen)) < 0)
		goto out;
	t[0] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	t[1] = (CK_ATTRIBUTE){ CKA_SUBJECT, subj, slen };
	t[2] = (CK_ATTRIBUTE){ CKA_ISSUER, iss, ilen };
	t[3] = (CK_ATTRIBUTE){ CKA_SERIAL_NUMBER, ser, serlen };
	if ((r = p11km_find(s, t, 4, 16, &hs, &n)) < 0)
		goto out;
	for (size_t i = 0; i < n && !found && r == 0; i++) {
		unsigned char *v = NULL;
		size_t vl = 0;
		if ((r = p11km_cert_value_read(s, hs[i], &v, &vl)) == 0 && v != NULL && vl == dlen &&
		    memcmp(v, der, dlen) == 0) {
			*h = hs[i];
			found = 1;
		}
		free(v);
	}
	if (r == 0)
		r = found;
out:
	free(hs);
	free(der);
	free(subj);
	free(iss);
	free(ser);
	return r;
}

int
p11km_tok_by_label(struct p11km_session *s, const char *label, CK_OBJECT_CLASS cls,
                   struct p11km_object **objs, size_t *n)
{
	CK_ATTRIBUTE t[2];
	CK_ULONG nt = 0;

	t[nt++] = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) };
	if (cls != (CK_OBJECT_CLASS)-1)
		t[nt++] = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
	return find_read(s, t, nt, 64, objs, n);
}

int
p11km_tok_relabel(struct p11km_session *s, CK_OBJECT_HANDLE h, const char *label)
{
	CK_ATTRIBUTE a = { CKA_LABEL, (void *)label, strlen(label) };
	CK_RV rv = p11km_obj_set(s, h, &a, 1);

	if (rv != CKR_OK)
		return p11km_fail_ckr_tok(s->tok, rv, s->tok->label, "C_SetAttributeValue");
	return 0;
}

int
p11km_tok_destroy(struct p11km_session *s, CK_OBJECT_HANDLE h)
{
	CK_RV rv = p11km_obj_destroy(s, h);

	if (rv != CKR_OK)
		return p11km_fail_ckr_tok(s->tok, rv, s->tok->label, "C_DestroyObject");
	return 0;
}

int
p11km_tok_retired_label(struct p11km_session *s, const char *base, CK_OBJECT_CLASS cls,
                        char **out)
{
	char date[16];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y%m%d", &tm);
	for (int i = 1; i < 100; i++) {
		CK_ATTRIBUTE t[2] = { { CKA_LABEL, NULL, 0 }, { CKA_CLASS, &cls, sizeof(cls) } };
		int r = label_free(s, t, cls != (CK_OBJECT_CLASS)-1 ? 2 : 1,
		                   i == 1 ? p11km_asprintf("%s.retired-%s", base, date)
		                          : p11km_asprintf("%s.retired-%s-%d", base, date, i), out);
		if (r != 0)
			return r < 0 ? r : 0;
	}
	return p11km_fail(P11KM_ERR_EXISTS, "too many retired objects labelled '%s.retired-%s-*'",
	                  base, date);
}

int
p11km_label_is_retired(const char *label)
{
	const char *p = label ? strstr(label, ".retired-") : NULL;

	if (p == NULL)
		return 0;
	p += strlen(".retired-");
	for (int i = 0; i < 8; i++)
		if (!isdigit((unsigned char)p[i]))
			return 0;
	return 1;
}

int
p11km_label_is_pending(const char *label)
{
	size_t n = label ? strlen(label) : 0;

	return n > 8 && strcmp(label + n - 8, ".pending") == 0;
}

int
p11km_tok_trusted_certs(struct p11km_session *s, STACK_OF(X509) **out)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE t[2] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_TRUSTED, &yes, sizeof(yes) } };
	CK_OBJECT_HANDLE *h = NULL;
	size_t n = 0;
	int r;

	if ((*out = sk_X509_new_null()) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = p11km_find(s, t, 2, 512, &h, &n)) < 0)
		return r;
	for (size_t i = 0; i < n && r == 0; i++) {
		struct p11km_object o;
		X509 *x;
		if ((r = p11km_object_read_as(s, h[i], CKO_CERTIFICATE, &o)) < 0)
			break;
		if ((x = p11km_cert_x509_der(o.value, o.value_len)) != NULL && !sk_X509_push(*out, x))
			X509_free(x);
		p11km_object_release(&o);
	}
	free(h);
	return r;
}

/* --- the token as a trust store -------------------------------------------- */

/* Is the trusted certificate x on the token?  One targeted search by its
 * DER value (3 calls), no attribute read. */
static int
trusted_find(struct p11km_session *s, X509 *x, CK_OBJECT_HANDLE *h)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_BBOOL yes = CK_TRUE;
	unsigned char *der = NULL;
	size_t dlen = 0, nh = 0;
	CK_OBJECT_HANDLE *hs = NULL;
	int r;

	*h = CK_INVALID_HANDLE;
	if ((r = p11km_cert_der(x, &der, &dlen)) < 0)
		return r;
	CK_ATTRIBUTE t[3] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_TRUSTED, &yes, sizeof(yes) },
	                      { CKA_VALUE, der, dlen } };
	if ((r = p11km_find(s, t, 3, 1, &hs, &nh)) == 0) {
		r = nh > 0;
		if (nh > 0)
			*h = hs[0];
	}
	free(hs);
	free(der);
	return r;
}

/* The token store's own state (st->priv). */
struct tok_store {
	struct p11km_uri *uri;
	struct p11km_token *tok;
	struct p11km_session s;
};

static void
token_release(struct p11km_store *st)
{
	struct tok_store *ts = st->priv;

	if (ts == NULL)
		return;
	p11km_session_close(&ts->s);
	p11km_token_free(ts->tok);
	p11km_uri_free(ts->uri);
	free(ts);
	st->priv = NULL;
}

/* The token's lock (p11km_token_lock: the one every command that changes
 * the token takes), before any object is read. */
static int
token_lock(struct p11km_ctx *ctx, struct p11km_store *st, int for_write)
{
	struct tok_store *ts = calloc(1, sizeof(*ts));
	int r;

	if (ts == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	ts->s.logged_in = (CK_USER_TYPE)-1;
	st->priv = ts;
	if ((r = p11km_uri_parse(st->path, &ts->uri)) < 0 ||
	    (r = p11km_token_find_one(ctx, ts->uri, &ts->tok)) < 0)
		return r;
	if (for_write && p11km_token_is_piv(ts->tok))
		return p11km_fail(P11KM_ERR_UNSUPPORTED,
		    "token '%s' is a PIV card: it holds certificates only in its key slots, one per "
		    "key, and no trusted roots; put the roots into a pem-bundle:, openssl-dir:, nss: "
		    "or the system store instead; nothing was changed", ts->tok->label);
	return for_write ? p11km_token_lock(ctx, ts->tok) : 0;
}

/*
 * Load the token's trusted certificates.  With wanted (roots install: only
 * which of these certificates are there matters), and when the token holds
 * more trusted certificates than a search per wanted one costs (2 calls to
 * read each held one against 3 to search for each wanted one), only the
 * wanted certificates found on the token are loaded: installing one root
 * into a token holding hundreds costs a few calls, not hundreds.  Loaded
 * this way the store answers p11km_store_index() for wanted only.
 */
static int
token_load(struct p11km_ctx *ctx, struct p11km_store *st, int for_write, STACK_OF(X509) *wanted)
{
	struct tok_store *ts = st->priv;
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE t[2] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_TRUSTED, &yes, sizeof(yes) },
	};
	CK_OBJECT_HANDLE *h = NULL;
	size_t nh = 0, max;
	int r;

	if (for_write && ctx->so_pin_source_opt != NULL) {
		struct p11km_pinsrc src;
		if ((r = p11km_session_open(ctx, ts->tok, 1, &ts->s)) < 0)
			return r;
		if ((r = p11km_pinsrc_for(ctx, ts->uri, CKU_SO, &src)) < 0)
			return r;
		r = p11km_login(&ts->s, CKU_SO, &src);
		p11km_pinsrc_release(&src);
		if (r < 0)
			return r;
	} else if ((r = p11km_session_open_login(ctx, ts->tok, ts->uri, for_write, for_write,
	                                         &ts->s)) < 0) {
		return r;
	}
	/* With wanted: count the held ones only up to the break-even point, so
	 * that the count of calls does not grow with the token either. */
	max = wanted != NULL ? (3 * (size_t)sk_X509_num(wanted)) / 2 + 1 : 0;
	if ((r = p11km_find(&ts->s, t, 2, max, &h, &nh)) < 0)
		return r;
	if (wanted != NULL && nh >= max) {
		free(h);
		for (int i = 0; r == 0 && i < sk_X509_num(wanted); i++) {
			X509 *x = sk_X509_value(wanted, i);
			CK_OBJECT_HANDLE hx = CK_INVALID_HANDLE;
			if ((r = trusted_find(&ts->s, x, &hx)) == 1)
				r = p11km_store_push(st, x, NULL, hx);
		}
		return r < 0 ? r : 0;
	}
	for (size_t i = 0; i < nh; i++) {
		struct p11km_object o;
		X509 *x;
		if ((r = p11km_object_read_as(&ts->s, h[i], CKO_CERTIFICATE, &o)) < 0)
			break;
		x = o.value_len ? p11km_cert_x509_der(o.value, o.value_len) : NULL;
		if (x == NULL) {
			p11km_warn("token '%s': trusted certificate '%s' does not parse; ignored",
			           ts->tok->label, o.label ? o.label : "");
		} else {
			r = p11km_store_push(st, x, o.label, o.h);
			X509_free(x);
		}
		p11km_object_release(&o);
		if (r < 0)
			break;
		p11km_progress("reading trusted certificates", i + 1, nh);
	}
	free(h);
	return r;
}

static int
token_commit(struct p11km_ctx *ctx, struct p11km_store *st, STACK_OF(X509) *add,
             const size_t *rm, size_t n_rm)
{
	struct tok_store *ts = st->priv;
	size_t total = (size_t)sk_X509_num(add) + n_rm, done = 0, n_made = 0;
	CK_OBJECT_HANDLE *made = calloc((size_t)sk_X509_num(add) + 1, sizeof(*made));
	int r = 0;

	(void)ctx;
	if (made == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (int i = 0; i < sk_X509_num(add) && r == 0; i++) {
		X509 *x = sk_X509_value(add, i);
		unsigned char *id = NULL;
		size_t id_len = 0;
		char *label = p11km_cert_short_name(x, 64);
		if (label == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			break;
		}
		if ((r = p11km_cert_keyid(x, &id, &id_len)) == 0 &&
		    (r = p11km_tok_cert_create(&ts->s, x, label, id, id_len, P11KM_CAT_AUTHORITY, 1,
		                               &made[n_made])) == 0)
			n_made++;
		free(id);
		free(label);
		p11km_progress("updating token", ++done, total);
	}
	if (r < 0 && n_made > 0) {
		/* Take back what this run added: the store is changed in one go or
		 * not at all (best effort: the token may be gone). */
		int saved = r;
		char *msg = strdup(p11km_errmsg(r));
		int was = p11km_audit_rollback(1);
		for (size_t i = n_made; i-- > 0;)
			if (p11km_obj_destroy(&ts->s, made[i]) != CKR_OK)
				break;
		p11km_audit_rollback(was);
		r = p11km_fail(saved, "%s", msg ? msg : p11km_strerror(saved));
		free(msg);
	}
	/* Removals last: nothing is removed when an addition failed. */
	size_t n_gone = 0;
	for (size_t i = 0; i < n_rm && r == 0; i++) {
		if ((r = p11km_tok_destroy(&ts->s, st->handles[rm[i]])) == 0)
			n_gone++;
		p11km_progress("updating token", ++done, total);
	}
	if (r < 0 && n_gone > 0) {
		/* Put back the ones this run destroyed (same certificate, label and
		 * id): the store changes in one go or not at all. */
		int saved = r, back = 0, was = p11km_audit_rollback(1);
		char *msg = strdup(p11km_errmsg(r));
		for (size_t i = 0; i < n_gone; i++) {
			X509 *x = sk_X509_value(st->certs, (int)rm[i]);
			unsigned char *id = NULL;
			size_t id_len = 0;
			CK_OBJECT_HANDLE h;
			const char *label = st->names[rm[i]] ? st->names[rm[i]] : "";
			if (p11km_cert_keyid(x, &id, &id_len) == 0 &&
			    p11km_tok_cert_create(&ts->s, x, label, id, id_len, P11KM_CAT_AUTHORITY, 1,
			                          &h) == 0) {
				st->handles[rm[i]] = h;
				back++;
			}
			free(id);
		}
		p11km_audit_rollback(was);
		if ((size_t)back == n_gone)
			r = p11km_fail(saved, "%s; the %zu certificate%s removed before were put back",
			               msg ? msg : p11km_strerror(saved), n_gone, n_gone == 1 ? "" : "s");
		else
			r = p11km_fail(saved, "%s; %zu of the %zu certificates removed before could not "
			               "be put back: run the same command again", msg ? msg :
			               p11km_strerror(saved), n_gone - (size_t)back, n_gone);
		free(msg);
	}
	free(made);
	return r;
}

const struct p11km_store_ops p11km_store_token_ops = {
	.lock = token_lock,
	.load = token_load,
	.commit = token_commit,
	.release = token_release,
};
