/* op-object.c: the object list operation ('object list', 'key list', 'cert
 * list'): the objects a URI can name on every token it selects, with their
 * URIs, attributes and certificates, and its text and JSON form.  Export,
 * delete and relabel: op-object-edit.c. */
#include "config.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "p11km/json.h"
#include "p11km/op-token.h"
#include "p11km/store.h"
#include "p11km/util.h"
#include "p11km/x509.h"

/* Key type, size and curve of an object, for display. */
static void
key_desc(const struct p11km_object *o, const char **curve, int *bits)
{
	*curve = NULL;
	*bits = 0;
	if (o->key_type == CKK_RSA)
		*bits = (int)o->modulus_bits;
	else if (o->key_type == CKK_EC || o->key_type == CKK_EC_EDWARDS)
		*curve = p11km_ec_params_curve(o->ec_params, o->ec_params_len, bits);
}

static const struct {
	const char *name;
	size_t off;
} key_attrs[] = {
#define A(n, f) { n, offsetof(struct p11km_object, f) }
	A("private", private_), A("sensitive", sensitive), A("extractable", extractable),
	A("always_sensitive", always_sensitive), A("never_extractable", never_extractable),
	A("sign", sign), A("verify", verify), A("decrypt", decrypt), A("encrypt", encrypt),
	A("unwrap", unwrap), A("wrap", wrap), A("derive", derive), A("modifiable", modifiable),
#undef A
};

static enum p11km_tri
attr_of(const struct p11km_object *o, size_t i)
{
	return *(const enum p11km_tri *)((const char *)o + key_attrs[i].off);
}

/*
 * The engine-safe URI of a key or certificate (what servers using the libp11
 * engine accept), or NULL for other objects and when the token has no
 * name the engine can select it by.  Malloc'ed.
 */
static char *
engine_uri(const char *uri_text, const struct p11km_object *o)
{
	struct p11km_uri *uri = NULL;
	char *out = NULL;

	if (uri_text == NULL || (o->cls != CKO_PRIVATE_KEY && o->cls != CKO_PUBLIC_KEY &&
	                         o->cls != CKO_CERTIFICATE))
		return NULL;
	if (p11km_uri_parse(uri_text, &uri) == 0 && p11km_uri_engine_safe(uri, NULL, 0, &out) < 0)
		out = NULL;
	p11km_uri_free(uri);
	p11km_error_clear();
	return out;
}

static void
print_text(FILE *fp, const struct p11km_listed *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct p11km_object *o = &l->objs[i];
		char *uri = p11km_object_uri(l->tok, o);
		char *id = o->id_len ? p11km_hex(o->id, o->id_len) : NULL;
		char *euri = engine_uri(uri, o);
		const char *curve;
		int bits;

		fprintf(fp, "%s\n", uri ? uri : "?");
		fprintf(fp, "    class:       %s\n", p11km_class_name(o->cls));
		fprintf(fp, "    label:       %s\n", o->label ? p11km_esc(o->label) : "(none)");
		fprintf(fp, "    id:          %s\n", id ? id : "(none)");
		if (p11km_label_is_retired(o->label)) /* the '<L>.retired-DATE' of --keep-old */
			fprintf(fp, "    retired:     yes ('cert prune' destroys it)\n");
		if (euri != NULL && o->cls != CKO_CERTIFICATE) /* keys only: the rest is noise */
			fprintf(fp, "    engine uri:  %s\n", euri);
		if (o->cls == CKO_PRIVATE_KEY || o->cls == CKO_PUBLIC_KEY || o->cls == CKO_SECRET_KEY) {
			key_desc(o, &curve, &bits);
			fprintf(fp, "    key:         %s", p11km_key_type_name(o->key_type));
			if (curve)
				fprintf(fp, " %s", curve);
			else if (bits)
				fprintf(fp, " %d", bits);
			fprintf(fp, "\n    attributes: ");
			for (size_t a = 0; a < sizeof(key_attrs) / sizeof(key_attrs[0]); a++) {
				enum p11km_tri v = attr_of(o, a);
				if (v != P11KM_ABSENT)
					fprintf(fp, " %s%s", v ? "" : "!", key_attrs[a].name);
			}
			fprintf(fp, "\n");
		}
		if (o->cls == CKO_CERTIFICATE && l->certs[i].subject != NULL) {
			const struct p11km_cert_summary *c = &l->certs[i];
			fprintf(fp, "    subject:     %s\n", c->subject);
			fprintf(fp, "    issuer:      %s\n", c->issuer);
			fprintf(fp, "    serial:      %s\n", c->serial);
			fprintf(fp, "    not after:   %s (%ld days left)\n", c->not_after, c->days_left);
			if (o->trusted == P11KM_TRUE)
				fprintf(fp, "    trusted:     yes\n");
		}
		free(euri);
		free(uri);
		free(id);
	}
}

static void
print_json(struct p11km_json *j, const struct p11km_listed *l)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct p11km_object *o = &l->objs[i];
		char *uri = p11km_object_uri(l->tok, o);
		char *id = o->id_len ? p11km_hex(o->id, o->id_len) : NULL;
		char *euri = engine_uri(uri, o);
		const char *curve;
		int bits;

		p11km_json_object_begin(j);
		p11km_json_kv_string(j, "uri", uri);
		if (o->cls == CKO_PRIVATE_KEY || o->cls == CKO_PUBLIC_KEY || o->cls == CKO_CERTIFICATE)
			p11km_json_kv_string(j, "engine_uri", euri);
		p11km_json_kv_string(j, "token", l->tok->label);
		p11km_json_kv_string(j, "class", p11km_class_name(o->cls));
		p11km_json_kv_string(j, "label", o->label);
		p11km_json_kv_string(j, "id", id ? id : "");
		p11km_json_kv_bool(j, "retired", p11km_label_is_retired(o->label));
		if (o->cls == CKO_PRIVATE_KEY || o->cls == CKO_PUBLIC_KEY || o->cls == CKO_SECRET_KEY) {
			key_desc(o, &curve, &bits);
			p11km_json_kv_string(j, "key_type", p11km_key_type_name(o->key_type));
			p11km_json_kv_string(j, "curve", curve);
			p11km_json_kv_int(j, "bits", bits);
			p11km_json_key(j, "attributes");
			p11km_json_object_begin(j);
			for (size_t a = 0; a < sizeof(key_attrs) / sizeof(key_attrs[0]); a++) {
				enum p11km_tri v = attr_of(o, a);
				p11km_json_key(j, key_attrs[a].name);
				if (v == P11KM_ABSENT)
					p11km_json_null(j);
				else
					p11km_json_bool(j, v);
			}
			p11km_json_object_end(j);
		}
		if (o->cls == CKO_CERTIFICATE) {
			const struct p11km_cert_summary *c = &l->certs[i];
			p11km_json_key(j, "certificate");
			if (c->subject == NULL) {
				p11km_json_null(j);
			} else {
				p11km_json_object_begin(j);
				p11km_json_kv_string(j, "subject", c->subject);
				p11km_json_kv_string(j, "issuer", c->issuer);
				p11km_json_kv_string(j, "serial", c->serial);
				p11km_json_kv_string(j, "not_before", c->not_before);
				p11km_json_kv_string(j, "not_after", c->not_after);
				p11km_json_kv_int(j, "days_left", c->days_left);
				p11km_json_kv_string(j, "sha256", c->sha256);
				p11km_json_kv_bool(j, "trusted", o->trusted == P11KM_TRUE);
				p11km_json_object_end(j);
			}
		}
		p11km_json_object_end(j);
		free(euri);
		free(uri);
		free(id);
	}
}

static void
listed_release(struct p11km_listed *l)
{
	for (size_t i = 0; l->certs != NULL && i < l->n; i++)
		p11km_cert_summary_release(&l->certs[i]);
	free(l->certs);
	p11km_objects_free(l->objs, l->n);
}

/* --type: a class to search for, and what to keep of it. */
struct type_filter {
	const char *name;
	CK_OBJECT_CLASS cls;   /* searched for; (CK_OBJECT_CLASS)-1: any */
	int keys_only, trusted_only;
};

static const struct type_filter type_filters[] = {
	{ "cert", CKO_CERTIFICATE, 0, 0 },
	{ "private", CKO_PRIVATE_KEY, 0, 0 },
	{ "public", CKO_PUBLIC_KEY, 0, 0 },
	{ "key", (CK_OBJECT_CLASS)-1, 1, 0 },
	{ "trusted", CKO_CERTIFICATE, 0, 1 },
	{ "all", (CK_OBJECT_CLASS)-1, 0, 0 },
};

static int
type_keep(const struct type_filter *tf, const struct p11km_object *o)
{
	if (tf->keys_only)
		return o->cls == CKO_PRIVATE_KEY || o->cls == CKO_PUBLIC_KEY;
	return !tf->trusted_only || o->trusted == P11KM_TRUE;
}

/*
 * Keep the objects a URI can name by type (keys, certificates, data):
 * vendor classes such as p11-kit's trust assertions share the label and
 * id of their certificate and no URI can tell them apart.
 */
static void
keep_nameable(struct p11km_listed *l, const struct type_filter *tf)
{
	size_t k = 0;

	for (size_t i = 0; i < l->n; i++) {
		CK_OBJECT_CLASS c = l->objs[i].cls;
		if ((c == CKO_PRIVATE_KEY || c == CKO_PUBLIC_KEY || c == CKO_CERTIFICATE ||
		     c == CKO_SECRET_KEY || c == CKO_DATA) && type_keep(tf, &l->objs[i]))
			l->objs[k++] = l->objs[i];
		else
			p11km_object_release(&l->objs[i]);
	}
	l->n = k;
}

static int
list_token(struct p11km_ctx *ctx, struct p11km_token *tok, const struct p11km_uri *uri,
           const struct type_filter *tf, struct p11km_listed *l)
{
	struct p11km_session s;
	int r;

	memset(l, 0, sizeof(*l));
	l->tok = tok;
	/* A token that needs no login never gets the PIN (it is not its PIN). */
	if (tok->info.flags & CKF_LOGIN_REQUIRED)
		r = p11km_session_open_login(ctx, tok, uri, 0, 0, &s);
	else
		r = p11km_session_open(ctx, tok, 0, &s);
	if (r < 0)
		return r;
	l->logged_in = s.logged_in != (CK_USER_TYPE)-1;
	r = p11km_objects_find(&s, uri, tf->cls, &l->objs, &l->n);
	p11km_session_close(&s);
	if (r < 0)
		return r;
	keep_nameable(l, tf);
	if (l->n > 0 && (l->certs = calloc(l->n, sizeof(*l->certs))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < l->n; i++)
		if (l->objs[i].cls == CKO_CERTIFICATE && l->objs[i].value_len > 0 &&
		    p11km_cert_summary(l->objs[i].value, l->objs[i].value_len, &l->certs[i]) < 0)
			p11km_warn("certificate '%s' on token '%s' does not parse",
			           l->objs[i].label ? l->objs[i].label : "", tok->label);
	p11km_error_clear();
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Objects that share a URI (same label, id and class, or none of them)
 * cannot be told apart by any URI: say so, once per URI.  Sorted, so a
 * token with thousands of objects costs n log n, not n squared.
 */
static void
warn_shared_uris(const struct p11km_listed *l)
{
	char **uris = l->n > 0 ? calloc(l->n, sizeof(*uris)) : NULL;
	size_t nu = 0;

	if (uris == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		if ((uris[nu] = p11km_object_uri(l->tok, &l->objs[i])) != NULL)
			nu++;
	qsort(uris, nu, sizeof(*uris), cmp_str);
	for (size_t i = 0; i < nu;) {
		size_t k = i + 1;
		while (k < nu && strcmp(uris[i], uris[k]) == 0)
			k++;
		if (k - i > 1)
			p11km_warn("%zu objects share the URI %s: no URI can select one of them; give "
			           "them distinct labels or ids", k - i, uris[i]);
		i = k;
	}
	for (size_t i = 0; i < nu; i++)
		free(uris[i]);
	free(uris);
}

/*
 * A PIN belongs to one token: with a PIN source, the URI must select one
 * token that needs a login, or the PIN of one token would be tried on
 * the others (each wrong try brings a PIN closer to being locked).
 */
static int
one_token_for_pin(struct p11km_ctx *ctx, const struct p11km_uri *uri,
                  const struct p11km_token *toks, size_t n)
{
	char **uris;
	char *list;
	size_t k = 0;
	int r;

	if (ctx->pin_source_opt == NULL && p11km_uri_pin_source(uri) == NULL &&
	    p11km_uri_pin_value(uri) == NULL)
		return 0;
	if ((uris = calloc(n + 1, sizeof(*uris))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		if ((toks[i].info.flags & CKF_TOKEN_INITIALIZED) &&
		    (toks[i].info.flags & CKF_LOGIN_REQUIRED))
			uris[k++] = toks[i].uri;
	if (k <= 1) {
		free(uris);
		return 0;
	}
	list = p11km_join_uris(uris, k);
	r = p11km_fail(P11KM_ERR_AMBIGUOUS,
	    "a PIN is for one token, and %zu tokens that need a login match; name one in the "
	    "URI (token= or serial=): %s", k, list ? list : "");
	free(list);
	free(uris);
	return r;
}

int
p11km_object_list(struct p11km_ctx *ctx, const struct p11km_object_list_opts *o,
                  struct p11km_object_list_result *res)
{
	const char *type = o->type != NULL ? o->type : "all";
	struct p11km_uri *uri = NULL;
	struct p11km_token *toks = NULL;
	struct p11km_listed *l = NULL;
	const struct type_filter *tf = NULL;
	size_t n = 0, total = 0, public_only = 0;
	int r;

	memset(res, 0, sizeof(*res));
	for (size_t i = 0; i < sizeof(type_filters) / sizeof(type_filters[0]); i++)
		if (strcmp(type, type_filters[i].name) == 0)
			tf = &type_filters[i];
	if (tf == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "--type '%s': give cert, private, public, key, "
		                  "trusted or all", type);
	if (o->uri != NULL && (r = p11km_uri_parse(o->uri, &uri)) < 0)
		return r;
	if ((r = p11km_tokens_find(ctx, uri, &toks, &n)) < 0)
		goto out;
	if (n == 0) {
		r = p11km_fail(P11KM_ERR_NOTFOUND,
		    "no token matches%s; run 'p11km token list' to see the tokens",
		    uri ? " the URI" : "");
		goto out;
	}
	if ((l = calloc(n, sizeof(*l))) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = one_token_for_pin(ctx, uri, toks, n)) < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (!(toks[i].info.flags & CKF_TOKEN_INITIALIZED))
			continue;
		if ((r = list_token(ctx, &toks[i], uri, tf, &l[i])) < 0)
			goto out;
		total += l[i].n;
		if (!l[i].logged_in && (toks[i].info.flags & CKF_LOGIN_REQUIRED))
			public_only++;
	}
	if (total == 0 && uri != NULL && uri->has_object) {
		r = p11km_fail(P11KM_ERR_NOTFOUND, "no object matches the URI%s",
		    public_only ? " among the public objects (private keys need a login: give "
		                  "--pin-source)"
		                : "; run 'p11km object list' to see them");
		goto out;
	}
	/* Notes only once the listing is certain: an error is one line. */
	for (size_t i = 0; i < n; i++) {
		if (!(toks[i].info.flags & CKF_TOKEN_INITIALIZED))
			continue;
		warn_shared_uris(&l[i]);
		if (!l[i].logged_in && (toks[i].info.flags & CKF_LOGIN_REQUIRED))
			p11km_note("token '%s': public objects only; give --pin-source to see private keys%s",
			           toks[i].label,
			           (toks[i].info.flags & CKF_PROTECTED_AUTHENTICATION_PATH)
			               ? " (--pin-source prompt: on its PIN pad)" : "");
	}
	res->toks = toks;
	res->n = n;
	res->l = l;
	toks = NULL;
	l = NULL;
	r = 0;
out:
	for (size_t i = 0; l != NULL && i < n; i++)
		listed_release(&l[i]);
	free(l);
	p11km_tokens_free(toks, toks != NULL ? n : 0);
	p11km_uri_free(uri);
	return r;
}

void
p11km_object_list_print(FILE *fp, int json, const struct p11km_object_list_result *res)
{
	if (json) {
		struct p11km_json j;
		p11km_json_init(&j, fp);
		p11km_json_object_begin(&j);
		p11km_json_key(&j, "objects");
		p11km_json_array_begin(&j);
		for (size_t i = 0; i < res->n; i++)
			print_json(&j, &res->l[i]);
		p11km_json_array_end(&j);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
	} else {
		for (size_t i = 0; i < res->n; i++)
			print_text(fp, &res->l[i]);
	}
}

void
p11km_object_list_result_release(struct p11km_object_list_result *res)
{
	for (size_t i = 0; res->l != NULL && i < res->n; i++)
		listed_release(&res->l[i]);
	free(res->l);
	p11km_tokens_free(res->toks, res->n);
	memset(res, 0, sizeof(*res));
}
