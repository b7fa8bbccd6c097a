/* op-object-edit.c: the export, delete and relabel operations ('object
 * export', 'object delete', 'object relabel', the object commands p11tool
 * and pkcs11-tool users expect) and their text and JSON form.  A private key
 * is never exported; one is destroyed only with --force, and never while a
 * binding uses it; a relabel moves key, public key and certificate of a
 * pair together, and puts back what it changed when a step fails. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "p11km/audit.h"
#include "p11km/bind.h"
#include "p11km/change.h"
#include "p11km/cert.h"
#include "p11km/json.h"
#include "p11km/keys.h"
#include "p11km/op-token.h"
#include "p11km/store.h"
#include "p11km/util.h"
#include "p11km/x509.h"

/* --- the objects a URI selects ---------------------------------------------- */

struct target {
	struct p11km_uri *uri;
	struct p11km_token *tok;
	struct p11km_session s;
	struct p11km_object *objs;
	size_t n;
};

static int
nameable(CK_OBJECT_CLASS c)
{
	return c == CKO_PRIVATE_KEY || c == CKO_PUBLIC_KEY || c == CKO_CERTIFICATE ||
	       c == CKO_SECRET_KEY || c == CKO_DATA;
}

/* Parse the URI (it must name an object attribute), open its one token
 * (logged in when a PIN source is given) and read what it selects. */
static int
target_open(struct p11km_ctx *ctx, const char *verb, const char *text, int rw, struct target *t)
{
	size_t k = 0;
	int r;

	memset(t, 0, sizeof(*t));
	if ((r = p11km_uri_parse(text, &t->uri)) < 0)
		return r;
	if (!t->uri->has_object)
		return p11km_fail(P11KM_ERR_USAGE, "'object %s' needs a URI that names objects "
		                  "(object=, id= or type=); run 'p11km object list' to see them", verb);
	if ((r = p11km_token_open(ctx, t->uri, P11KM_OPEN_INITIALISED | (rw ? P11KM_OPEN_RW : 0),
	                          &t->tok, &t->s)) < 0 ||
	    (r = p11km_objects_find(&t->s, t->uri, (CK_OBJECT_CLASS)-1, &t->objs, &t->n)) < 0)
		return r;
	for (size_t i = 0; i < t->n; i++) {
		if (nameable(t->objs[i].cls))
			t->objs[k++] = t->objs[i];
		else
			p11km_object_release(&t->objs[i]);
	}
	t->n = k;
	return 0;
}

static void
target_release(struct target *t)
{
	p11km_objects_free(t->objs, t->n);
	p11km_session_close(&t->s);
	p11km_token_free(t->tok);
	p11km_uri_free(t->uri);
}

static char *
uri_list(const struct p11km_token *tok, const struct p11km_object *objs, size_t n)
{
	char **uris = calloc(n + 1, sizeof(*uris)), *list;

	if (uris == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if ((uris[i] = p11km_object_uri(tok, &objs[i])) == NULL)
			uris[i] = strdup("?");
	list = p11km_join_uris(uris, n);
	for (size_t i = 0; i < n; i++)
		free(uris[i]);
	free(uris);
	return list;
}

static int
none_match(const struct target *t)
{
	return p11km_fail(P11KM_ERR_NOTFOUND, "no object on token '%s' matches the URI%s",
	                  t->tok->label, t->s.logged_in == (CK_USER_TYPE)-1 &&
	                  (t->tok->info.flags & CKF_LOGIN_REQUIRED)
	                      ? " among the public objects (private keys need --pin-source)"
	                      : "; run 'p11km object list' to see them");
}

static int
several_match(const struct target *t, const char *hint)
{
	char *list = uri_list(t->tok, t->objs, t->n);
	int r = p11km_fail(P11KM_ERR_AMBIGUOUS, "%zu objects match; %s: %s", t->n, hint,
	                   list ? list : "");

	free(list);
	return r;
}

/* --- object export ---------------------------------------------------------- */

/* The certificate, and with chain its issuers found on the token, up to
 * and including a self-signed root. */
static int
append_certs(struct p11km_session *s, const struct p11km_object *o, int der, int chain,
             struct p11km_buf *b, int *count)
{
	X509 *cur = p11km_cert_x509_der(o->value, o->value_len), *next = NULL;
	unsigned char *d = NULL;
	size_t dl = 0;
	int r = 0;

	if (cur == NULL)
		return p11km_fail(P11KM_ERR_INPUT, "the certificate object does not hold an X.509 "
		                  "certificate (CKA_VALUE does not parse)");
	for (*count = 0; r == 0 && cur != NULL; (*count)++) {
		if (der) {
			if ((r = p11km_cert_der(cur, &d, &dl)) == 0)
				r = p11km_buf_append(b, d, dl);
			free(d);
		} else {
			r = p11km_cert_pem_append(cur, b);
		}
		next = NULL;
		if (r == 0 && chain && !p11km_cert_self_signed(cur) &&
		    *count < P11KM_CHAIN_MAX_DEPTH)
			r = p11km_tok_cert_issuer(s, cur, &next);
		X509_free(cur);
		cur = next;
	}
	X509_free(cur);
	return r;
}

/* Of several objects (a key pair and its certificate share label and id),
 * the one to export: the only certificate, else the only public key. */
static const struct p11km_object *
export_pick(const struct target *t, size_t *exportable)
{
	const struct p11km_object *cert = NULL, *pub = NULL;
	size_t nc = 0, np = 0;

	for (size_t i = 0; i < t->n; i++) {
		if (t->objs[i].cls == CKO_CERTIFICATE)
			cert = &t->objs[i], nc++;
		else if (t->objs[i].cls == CKO_PUBLIC_KEY)
			pub = &t->objs[i], np++;
	}
	*exportable = nc + np;
	return nc == 1 ? cert : nc == 0 && np == 1 ? pub : NULL;
}

/* type=private or type=secret-key: refused before the token is touched. */
static int
refuse_key_export(const char *text)
{
	struct p11km_uri *u = NULL;
	CK_OBJECT_CLASS c;
	int r;

	if ((r = p11km_uri_parse(text, &u)) < 0)
		return r;
	c = p11km_uri_class(u);
	p11km_uri_free(u);
	if (c == CKO_PRIVATE_KEY || c == CKO_SECRET_KEY)
		return p11km_fail(P11KM_ERR_USAGE, "p11km never exports a private or secret key: it "
		                  "stays on its token; export its certificate (type=cert) or public "
		                  "key (type=public)");
	return 0;
}

int
p11km_object_export(struct p11km_ctx *ctx, const struct p11km_export_opts *eo,
                    struct p11km_export_result *res)
{
	struct target t = { 0 };
	struct p11km_buf b = { 0 };
	const struct p11km_object *o;
	EVP_PKEY *pk = NULL;
	int count = 0, r;
	size_t exportable = 0;

	memset(res, 0, sizeof(*res));
	if (eo->der && eo->chain)
		return p11km_fail(P11KM_ERR_USAGE, "--der holds one certificate: export the chain "
		                  "as PEM (leave out --der)");
	if ((r = refuse_key_export(eo->uri)) < 0 ||
	    (r = target_open(ctx, "export", eo->uri, 0, &t)) < 0)
		goto out;
	o = export_pick(&t, &exportable);
	if (o == NULL && exportable == 0) {
		r = t.n == 0 ? none_match(&t)
		             : p11km_fail(P11KM_ERR_USAGE, "the URI selects no certificate or public "
		                          "key; p11km exports only those (never a private key)");
		goto out;
	}
	if (o == NULL) {
		r = several_match(&t, "add type=cert or type=public, or id=, to select one");
		goto out;
	}
	if (o->cls == CKO_CERTIFICATE) {
		r = append_certs(&t.s, o, eo->der, eo->chain, &b, &count);
	} else if (eo->chain) {
		r = p11km_fail(P11KM_ERR_USAGE, "--chain is for certificates; the URI selects a "
		               "public key");
	} else if ((r = p11km_object_pubkey(o, &pk)) == 0) {
		r = p11km_pubkey_append(pk, eo->der, &b);
	}
	if (r < 0)
		goto out;
	/* (a p11km_buf is NUL-terminated: PEM is a string for the JSON document) */
	res->len = b.len;
	if (eo->out != NULL && (r = p11km_write_file_atomic(eo->out, b.data, b.len, 0644)) < 0)
		goto out;
	if ((res->uri = p11km_object_uri(t.tok, o)) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	res->cls = o->cls;
	res->der = eo->der;
	res->certificates = count;
	res->out = eo->out;
	res->data = b.data;
	b.data = NULL;
out:
	if (r < 0)
		p11km_export_result_release(res);
	EVP_PKEY_free(pk);
	p11km_buf_release(&b);
	target_release(&t);
	return r;
}

int
p11km_object_export_print(FILE *fp, int json, const struct p11km_export_result *res)
{
	struct p11km_json j;

	if (!json)
		return res->out != NULL ? 0 : p11km_write_file_atomic("-", res->data, res->len, 0644);
	p11km_json_init(&j, fp);
	p11km_json_object_begin(&j);
	p11km_json_kv_string(&j, "uri", res->uri);
	p11km_json_kv_string(&j, "class", p11km_class_name(res->cls));
	p11km_json_kv_string(&j, "format", res->der ? "der" : "pem");
	p11km_json_kv_int(&j, "certificates", res->certificates);
	p11km_json_kv_string(&j, "file", res->out);
	if (res->out == NULL)
		p11km_json_kv_string(&j, "pem", (const char *)res->data);
	p11km_json_object_end(&j);
	p11km_json_end(&j);
	return 0;
}

void
p11km_export_result_release(struct p11km_export_result *res)
{
	free(res->uri);
	free(res->data);
	memset(res, 0, sizeof(*res));
}

/* --- object delete ---------------------------------------------------------- */

static int
delete_rank(CK_OBJECT_CLASS c)
{
	return c == CKO_CERTIFICATE ? 0 : c == CKO_DATA ? 1 : c == CKO_PUBLIC_KEY ? 2 : 3;
}

static int
cmp_rank(const void *a, const void *b)
{
	return delete_rank(((const struct p11km_object *)a)->cls) -
	       delete_rank(((const struct p11km_object *)b)->cls);
}

/* The refusals, all before anything is destroyed. */
static int
delete_check(struct target *t, int force, const char *bindings)
{
	struct p11km_bind_refs refs = { 0 };
	int r = 0;

	for (size_t i = 0; i < t->n && r == 0; i++) {
		CK_OBJECT_CLASS c = t->objs[i].cls;
		if ((c == CKO_PRIVATE_KEY || c == CKO_SECRET_KEY) && !force) {
			char *u = p11km_object_uri(t->tok, &t->objs[i]);
			r = p11km_fail(P11KM_ERR_USAGE, "%s is a %s key: destroying it is for good "
			               "(no certificate for it can be used again); add --force", u ? u : "?",
			               c == CKO_PRIVATE_KEY ? "private" : "secret");
			free(u);
		}
	}
	if (r < 0 || bindings == NULL || (r = p11km_bind_refs_read(bindings, &refs)) < 0)
		return r;
	for (size_t i = 0; i < t->n && r == 0; i++)
		for (size_t b = 0; b < refs.n && r == 0; b++)
			if (p11km_binding_uses(&t->s, &refs.v[b], &t->objs[i])) {
				char *u = p11km_object_uri(t->tok, &t->objs[i]);
				r = p11km_fail(P11KM_ERR_FAILED, "the binding '%s' uses %s; not deleting "
				               "anything (re-emit or remove the binding first)",
				               refs.v[b].manifest, u ? u : "?");
				free(u);
			}
	p11km_bind_refs_release(&refs);
	return r;
}

int
p11km_object_delete(struct p11km_ctx *ctx, const struct p11km_delete_opts *o,
                    struct p11km_delete_result *res)
{
	struct target t = { 0 };
	size_t done = 0;
	int r;

	memset(res, 0, sizeof(*res));
	if ((r = target_open(ctx, "delete", o->uri, !o->dry_run, &t)) < 0)
		goto out;
	if (t.n == 0) {
		r = none_match(&t);
		goto out;
	}
	if (t.n > 1 && !o->all) {
		r = several_match(&t, "narrow the URI, or give --all to delete them all");
		goto out;
	}
	qsort(t.objs, t.n, sizeof(*t.objs), cmp_rank);
	if ((r = delete_check(&t, o->force, o->bindings)) < 0)
		goto out;
	for (; !o->dry_run && done < t.n; done++)
		if ((r = p11km_tok_destroy(&t.s, t.objs[done].h)) < 0)
			break;
	if (r < 0 && done > 0) {
		char *msg = strdup(p11km_errmsg(r)), *list = uri_list(t.tok, t.objs, done);
		r = p11km_fail(r, "%s; deleted before the failure: %s", msg ? msg : "?",
		               list ? list : "?");
		free(msg);
		free(list);
	}
	if (r < 0)
		goto out;
	res->dry_run = o->dry_run;
	if ((res->token_uri = strdup(t.tok->uri)) == NULL ||
	    (res->uris = calloc(t.n, sizeof(*res->uris))) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; r == 0 && i < t.n; i++)
		if ((res->uris[res->n++] = p11km_object_uri(t.tok, &t.objs[i])) == NULL)
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
out:
	if (r < 0)
		p11km_delete_result_release(res);
	target_release(&t);
	return r;
}

void
p11km_object_delete_print(FILE *fp, int json, const struct p11km_delete_result *res)
{
	struct p11km_json j;

	if (!json) {
		for (size_t i = 0; i < res->n; i++)
			fprintf(fp, "%s %s\n", res->dry_run ? "would delete" : "deleted", res->uris[i]);
		return;
	}
	p11km_json_init(&j, fp);
	p11km_json_object_begin(&j);
	p11km_json_kv_string(&j, "token", res->token_uri);
	p11km_json_kv_bool(&j, "dry_run", res->dry_run);
	p11km_json_key(&j, "deleted");
	p11km_json_array_begin(&j);
	for (size_t i = 0; i < res->n; i++)
		p11km_json_string(&j, res->uris[i]);
	p11km_json_array_end(&j);
	p11km_json_object_end(&j);
	p11km_json_end(&j);
}

void
p11km_delete_result_release(struct p11km_delete_result *res)
{
	for (size_t i = 0; i < res->n; i++)
		free(res->uris[i]);
	free(res->uris);
	free(res->token_uri);
	memset(res, 0, sizeof(*res));
}

/* --- object relabel --------------------------------------------------------- */

/* The pair the selected objects belong to: key, public key and
 * certificate with the same label and id. */
#define PAIR_MAX 16
static int
pair_of(struct target *t, struct p11km_object **objs, size_t *n)
{
	const struct p11km_object *o = &t->objs[0];
	CK_ATTRIBUTE tm[2];
	CK_ULONG k = 0;
	CK_OBJECT_HANDLE *h = NULL;
	size_t nh = 0, m = 0;
	int r;

	for (size_t i = 1; i < t->n; i++) {
		const struct p11km_object *x = &t->objs[i];
		if ((o->label == NULL) != (x->label == NULL) ||
		    (o->label != NULL && strcmp(o->label, x->label) != 0) || o->id_len != x->id_len ||
		    (o->id_len > 0 && memcmp(o->id, x->id, o->id_len) != 0))
			return several_match(t, "they are not one key pair (label and id differ); "
			                        "select one pair or object");
	}
	if (o->label == NULL && o->id_len == 0)
		return p11km_fail(P11KM_ERR_USAGE, "the object has neither label nor id: no other "
		                  "object can be told to belong to it");
	if (o->label != NULL)
		tm[k++] = (CK_ATTRIBUTE){ CKA_LABEL, o->label, strlen(o->label) };
	tm[k++] = (CK_ATTRIBUTE){ CKA_ID, o->id, o->id_len };
	if ((r = p11km_find(&t->s, tm, k, PAIR_MAX + 1, &h, &nh)) < 0)
		return r;
	if (nh > PAIR_MAX) {
		free(h);
		return p11km_fail(P11KM_ERR_AMBIGUOUS, "more than %d objects on token '%s' share the "
		                  "label and id: that is no key pair; relabel them one by one "
		                  "(type=)", PAIR_MAX, t->tok->label);
	}
	if ((*objs = calloc(nh ? nh : 1, sizeof(**objs))) == NULL) {
		free(h);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < nh && r == 0; i++) {
		if ((r = p11km_object_read(&t->s, h[i], &(*objs)[m])) < 0)
			break;
		CK_OBJECT_CLASS c = (*objs)[m].cls;
		if (c == CKO_PRIVATE_KEY || c == CKO_PUBLIC_KEY || c == CKO_CERTIFICATE)
			m++;
		else
			p11km_object_release(&(*objs)[m]);
	}
	free(h);
	if (r < 0) {
		p11km_objects_free(*objs, m);
		*objs = NULL;
		return r;
	}
	*n = m;
	return 0;
}

/* No object outside the pair may get the same class, label and id: one
 * URI would then select two objects. */
static int
relabel_conflicts(struct target *t, const struct p11km_relabel_opts *rl, struct p11km_object *pair,
                  size_t n)
{
	const unsigned char *id = rl->set_id ? rl->id : pair[0].id;
	size_t id_len = rl->set_id ? rl->id_len : pair[0].id_len;
	int r = 0;

	for (size_t i = 0; i < n && r == 0; i++) {
		CK_ATTRIBUTE tm[3] = { { CKA_CLASS, &pair[i].cls, sizeof(pair[i].cls) },
		                       { CKA_LABEL, (void *)rl->label, strlen(rl->label) },
		                       { CKA_ID, (void *)id, id_len } };
		CK_OBJECT_HANDLE *h = NULL;
		size_t nh = 0;
		/* n of ours at most, so n + 1 handles hold another one if there is one */
		if ((r = p11km_find(&t->s, tm, 3, n + 1, &h, &nh)) < 0)
			break;
		for (size_t k = 0; k < nh && r == 0; k++) {
			int ours = 0;
			for (size_t p = 0; p < n; p++)
				ours |= pair[p].h == h[k];
			if (!ours)
				r = p11km_fail(P11KM_ERR_EXISTS, "a %s object labelled '%s' with that id "
				               "exists already on token '%s': one URI would select both; "
				               "choose another label or id", p11km_class_name(pair[i].cls),
				               rl->label, t->tok->label);
		}
		free(h);
	}
	return r;
}

static int
set_label_id(struct p11km_session *s, CK_OBJECT_HANDLE h, const char *label,
             const unsigned char *id, size_t id_len, int set_id)
{
	CK_ATTRIBUTE a[2] = { { CKA_LABEL, (void *)label, label ? strlen(label) : 0 },
	                      { CKA_ID, (void *)id, id_len } };
	CK_RV rv = p11km_obj_set(s, h, a, set_id ? 2 : 1);

	return rv == CKR_OK ? 0 : p11km_fail_ckr(rv, "object relabel", "C_SetAttributeValue");
}

static int
relabel_apply(struct target *t, const struct p11km_relabel_opts *rl, struct p11km_object *pair, size_t n)
{
	size_t done;
	int r = 0, back = 0;

	for (done = 0; done < n && r == 0; done++)
		if ((r = set_label_id(&t->s, pair[done].h, rl->label, rl->id, rl->id_len,
		                      rl->set_id)) < 0)
			break;
	if (r == 0)
		return 0;
	int was = p11km_audit_rollback(1);
	for (size_t i = 0; i < done; i++)
		back |= set_label_id(&t->s, pair[i].h, pair[i].label, pair[i].id, pair[i].id_len,
		                     rl->set_id) < 0;
	p11km_audit_rollback(was);
	char *msg = strdup(p11km_errmsg(r));
	r = p11km_fail(r, "%s; %s", msg ? msg : "?",
	               done == 0 ? "nothing was changed"
	               : back ? "and putting back the old label failed: run 'p11km object list' "
	                        "and relabel the pair's objects by hand"
	                      : "the objects already changed were put back");
	free(msg);
	return r;
}

/* What the relabel changes (changed), from and to, for the caller. */
static int
relabel_result(const struct target *t, const struct p11km_relabel_opts *rl,
               const struct p11km_object *pair, size_t n, struct p11km_relabel_result *res)
{
	res->dry_run = rl->dry_run;
	if ((res->items = calloc(n ? n : 1, sizeof(*res->items))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		struct p11km_relabel_item *it = &res->items[res->n++];
		it->cls = pair[i].cls;
		it->from = p11km_object_uri(t->tok, &pair[i]);
		it->to = p11km_uri_object(&t->tok->info, rl->label, rl->set_id ? rl->id : pair[i].id,
		                          rl->set_id ? rl->id_len : pair[i].id_len, pair[i].cls);
		if (it->from == NULL || it->to == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	return 0;
}

int
p11km_object_relabel(struct p11km_ctx *ctx, const struct p11km_relabel_opts *rl,
                     struct p11km_relabel_result *res)
{
	struct target t = { 0 };
	struct p11km_object *pair = NULL;
	size_t np = 0;
	int r;

	memset(res, 0, sizeof(*res));
	if (rl->label == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "'object relabel' needs --label LABEL");
	if ((r = p11km_label_check(rl->label, 128)) < 0 ||
	    (r = target_open(ctx, "relabel", rl->uri, !rl->dry_run, &t)) < 0)
		goto out;
	if (t.n == 0) {
		r = none_match(&t);
		goto out;
	}
	if ((r = pair_of(&t, &pair, &np)) < 0 || (r = relabel_conflicts(&t, rl, pair, np)) < 0)
		goto out;
	if (!rl->dry_run && (r = relabel_apply(&t, rl, pair, np)) < 0)
		goto out;
	r = relabel_result(&t, rl, pair, np, res);
out:
	if (r < 0)
		p11km_relabel_result_release(res);
	p11km_objects_free(pair, np);
	target_release(&t);
	return r;
}

void
p11km_object_relabel_print(FILE *fp, int json, const struct p11km_relabel_result *res)
{
	struct p11km_json j;

	if (!json) {
		for (size_t i = 0; i < res->n; i++)
			fprintf(fp, "%s %s -> %s\n", res->dry_run ? "would relabel" : "relabelled",
			        res->items[i].from, res->items[i].to);
		return;
	}
	p11km_json_init(&j, fp);
	p11km_json_object_begin(&j);
	p11km_json_kv_bool(&j, "dry_run", res->dry_run);
	p11km_json_key(&j, "objects");
	p11km_json_array_begin(&j);
	for (size_t i = 0; i < res->n; i++) {
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "class", p11km_class_name(res->items[i].cls));
		p11km_json_kv_string(&j, "from", res->items[i].from);
		p11km_json_kv_string(&j, "to", res->items[i].to);
		p11km_json_object_end(&j);
	}
	p11km_json_array_end(&j);
	p11km_json_object_end(&j);
	p11km_json_end(&j);
}

void
p11km_relabel_result_release(struct p11km_relabel_result *res)
{
	for (size_t i = 0; i < res->n; i++) {
		free(res->items[i].from);
		free(res->items[i].to);
	}
	free(res->items);
	memset(res, 0, sizeof(*res));
}
