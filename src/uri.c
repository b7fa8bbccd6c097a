/* uri.c: RFC 7512 URIs through p11-kit, with the strictness p11km needs. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "p11km/uri.h"
#include "p11km/util.h"

/* Path attributes of RFC 7512 and the longest decoded value of each. */
static const struct {
	const char *name;
	size_t max;
	int binary;   /* 1: may contain NUL bytes (id); 2: trailing NUL padding only */
	int kind;     /* 't' token, 's' slot, 'l' library, 'o' object */
} path_attrs[] = {
	{ "token", 32, 0, 't' },
	{ "manufacturer", 32, 2, 't' },
	{ "model", 16, 2, 't' },
	{ "serial", 16, 0, 't' },
	{ "library-manufacturer", 32, 0, 'l' },
	{ "library-description", 32, 0, 'l' },
	{ "library-version", 16, 0, 'l' },
	{ "slot-manufacturer", 32, 0, 's' },
	{ "slot-description", 64, 0, 's' },
	{ "slot-id", 20, 0, 's' },
	{ "object", 1024, 0, 'o' },
	{ "id", 1024, 1, 'o' },
	{ "type", 16, 0, 'o' },
};

/* path_too: p11-kit takes it in the path as well (older URIs did so). */
static const struct {
	const char *name;
	size_t max;
	int path_too;
} query_attrs[] = {
	{ "pin-source", 4096, 1 },
	{ "pin-value", 256, 1 },
	{ "module-name", 1024, 0 },
	{ "module-path", 4096, 0 },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Token, slot and library fields longer than PKCS#11 allows still parse up
 * to this many bytes (and then select nothing); longer ones are invalid. */
#define TEXT_MAX 256

static int
type_known(const char *v, size_t len)
{
	static const char *const types[] = { "public", "private", "cert", "secret-key", "data" };

	for (size_t i = 0; i < N(types); i++)
		if (strlen(types[i]) == len && strncmp(types[i], v, len) == 0)
			return 1;
	return 0;
}

/*
 * Decoded length of a percent-encoded value; -1 on bad encoding.  *nul is
 * 1 when it holds a NUL byte (%00), 2 when NULs only pad its end (what
 * p11tool prints for tokens that NUL-pad their model, like tpm2-pkcs11).
 */
static long
decoded_len(const char *v, size_t len, int *nul)
{
	long n = 0;
	int pad = 0;

	*nul = 0;
	for (size_t i = 0; i < len; i++, n++) {
		if (v[i] != '%') {
			pad = 0;
			continue;
		}
		if (i + 2 >= len || !isxdigit((unsigned char)v[i + 1]) ||
		    !isxdigit((unsigned char)v[i + 2]))
			return -1;
		if (v[i + 1] == '0' && v[i + 2] == '0')
			*nul = pad = 1;
		else
			pad = 0;
		i += 2;
	}
	if (*nul && pad && n > 0) {
		/* NUL at the end: padding only if no NUL comes before a non-NUL */
		int seen_other_after_nul = 0, in_nul = 0;
		for (size_t i = 0; i < len; i++) {
			int is_nul = v[i] == '%' && v[i + 1] == '0' && v[i + 2] == '0';
			if (is_nul)
				in_nul = 1;
			else if (in_nul)
				seen_other_after_nul = 1;
			if (v[i] == '%')
				i += 2;
		}
		if (!seen_other_after_nul)
			*nul = 2;
	}
	return n;
}

static int
check_part(const char *part, size_t len, int query, unsigned *seen, struct p11km_uri *uri)
{
	const char *eq = memchr(part, '=', len);
	size_t nlen, vlen;
	long dl;
	int nul;

	if (len == 0)
		return 0; /* "pkcs11:" alone, or a trailing ';' */
	if (eq == NULL && query) /* not echoed: it may be a mistyped pin-value */
		return p11km_fail(P11KM_ERR_USAGE,
		    "invalid pkcs11: URI: a query attribute (after '?') has no '=': write name=value");
	if (eq == NULL)
		return p11km_fail(P11KM_ERR_USAGE,
		    "invalid pkcs11: URI: attribute '%.*s' has no '=': write name=value",
		    (int)len, part);
	nlen = (size_t)(eq - part);
	vlen = len - nlen - 1;
	if ((dl = decoded_len(eq + 1, vlen, &nul)) < 0)
		return p11km_fail(P11KM_ERR_USAGE,
		    "invalid pkcs11: URI: bad percent-encoding in '%.*s': use %%XX with two hex digits",
		    (int)nlen, part);
	if (!query) {
		for (size_t i = 0; i < N(path_attrs); i++) {
			if (strlen(path_attrs[i].name) != nlen ||
			    strncmp(path_attrs[i].name, part, nlen) != 0)
				continue;
			if (*seen & (1u << i))
				return p11km_fail(P11KM_ERR_USAGE,
				    "invalid pkcs11: URI: attribute '%s' appears twice", path_attrs[i].name);
			*seen |= 1u << i;
			if ((size_t)dl > path_attrs[i].max && path_attrs[i].kind != 'o' &&
			    (size_t)dl <= TEXT_MAX) {
				/* Valid RFC 7512 (its own example token= is 34 bytes), but
				 * no PKCS#11 token can match it: refused when selecting. */
				if (uri->unusable[0] == '\0')
					snprintf(uri->unusable, sizeof(uri->unusable),
					    "'%s' is %ld bytes long, but PKCS#11 gives it at most %zu, so no "
					    "token can match", path_attrs[i].name, dl, path_attrs[i].max);
			} else if ((size_t)dl > path_attrs[i].max) {
				return p11km_fail(P11KM_ERR_USAGE,
				    "invalid pkcs11: URI: '%s' is %ld bytes long, at most %zu are allowed",
				    path_attrs[i].name, dl, path_attrs[i].kind == 'o' ? path_attrs[i].max
				                                                      : (size_t)TEXT_MAX);
			}
			if (nul && path_attrs[i].binary != 1 && !(nul == 2 && path_attrs[i].binary == 2))
				return p11km_fail(P11KM_ERR_USAGE,
				    "invalid pkcs11: URI: '%s' contains a NUL byte (%%00)", path_attrs[i].name);
			if (strcmp(path_attrs[i].name, "type") == 0 && memchr(eq + 1, '%', vlen) == NULL &&
			    !type_known(eq + 1, vlen))
				return p11km_fail(P11KM_ERR_USAGE,
				    "invalid pkcs11: URI: unknown type '%.*s': use public, private, cert, "
				    "secret-key or data", (int)(vlen > 40 ? 40 : vlen), eq + 1);
			switch (path_attrs[i].kind) {
			case 't': uri->has_token = 1; break;
			case 's': uri->has_slot = 1; break;
			case 'l': uri->has_library = 1; break;
			case 'o': uri->has_object = 1; break;
			}
			return 0;
		}
		/* else a vendor attribute (p11-kit marks it unrecognized), or a
		 * pin-source or pin-value, checked below as in the query */
	} else {
		/* p11-kit ignores it there, so it would select nothing (found by
		 * tests/fuzz/fuzz-uri, as the path's pin-value below) */
		for (size_t i = 0; i < N(path_attrs); i++)
			if (strlen(path_attrs[i].name) == nlen &&
			    strncmp(path_attrs[i].name, part, nlen) == 0)
				return p11km_fail(P11KM_ERR_USAGE,
				    "invalid pkcs11: URI: '%s' after '?' is ignored; put it before the '?'",
				    path_attrs[i].name);
	}
	for (size_t i = 0; i < N(query_attrs); i++) {
		if (strlen(query_attrs[i].name) != nlen || strncmp(query_attrs[i].name, part, nlen) != 0 ||
		    (!query && !query_attrs[i].path_too))
			continue;
		if (*seen & (1u << (16 + i)))
			return p11km_fail(P11KM_ERR_USAGE,
			    "invalid pkcs11: URI: attribute '%s' appears twice", query_attrs[i].name);
		*seen |= 1u << (16 + i);
		if ((size_t)dl > query_attrs[i].max)
			return p11km_fail(P11KM_ERR_USAGE, "invalid pkcs11: URI: '%s' is too long",
			                  query_attrs[i].name);
		if (nul)
			return p11km_fail(P11KM_ERR_USAGE,
			    "invalid pkcs11: URI: '%s' contains a NUL byte (%%00)", query_attrs[i].name);
	}
	return 0;
}

static int
check_syntax(const char *s, struct p11km_uri *uri)
{
	const char *p, *q;
	unsigned seen = 0;
	size_t len = strlen(s);
	int r;

	if (len > P11KM_URI_MAX)
		return p11km_fail(P11KM_ERR_USAGE, "invalid pkcs11: URI: longer than %d characters",
		                  P11KM_URI_MAX);
	if (strncasecmp(s, "pkcs11:", 7) != 0) {
		char *shown = p11km_uri_hide_pin(s); /* what was typed may carry the PIN */
		r = p11km_fail(P11KM_ERR_USAGE,
		    "invalid URI '%.40s': it must start with 'pkcs11:' (RFC 7512)", shown ? shown : "");
		free(shown);
		return r;
	}
	/* p11-kit drops white space anywhere in the text before it parses (RFC
	 * 3986 appendix C), so "obj ect=a%00b" would pass the checks below
	 * and still reach it as object=a%00b: refused, and so is any other
	 * control character (found by tests/fuzz/fuzz-uri).  Not echoed. */
	for (size_t i = 7; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
			return p11km_fail(P11KM_ERR_USAGE,
			    "invalid pkcs11: URI: a space or control character at position %zu; "
			    "percent-encode it (a space is %%20)", i + 1);
	p = s + 7;
	q = strchr(p, '?');
	for (int query = 0; query < 2; query++) {
		const char *end = query ? s + len : (q ? q : s + len);
		char sepc = query ? '&' : ';';
		while (p < end) {
			const char *e = memchr(p, sepc, (size_t)(end - p));
			if (e == NULL)
				e = end;
			/* p11-kit 0.24 stops reading the path at an empty attribute: what
			 * follows is lost (";;object=web" selects every object) or runs
			 * into a pin-value before it (found by tests/fuzz/fuzz-uri) */
			if (!query && e == p && e + 1 < end)
				return p11km_fail(P11KM_ERR_USAGE,
				    "invalid pkcs11: URI: an empty attribute (';;' or ';' first) at "
				    "position %zu; p11-kit would ignore what follows it", (size_t)(p - s) + 1);
			if ((r = check_part(p, (size_t)(e - p), query, &seen, uri)) < 0)
				return r;
			p = e + 1;
		}
		if (q == NULL)
			break;
		p = q + 1;
	}
	return 0;
}

int
p11km_uri_parse(const char *s, struct p11km_uri **out)
{
	struct p11km_uri *uri;
	int r;

	if ((uri = calloc(1, sizeof(*uri))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((r = check_syntax(s, uri)) < 0)
		goto fail;
	if ((uri->u = p11_kit_uri_new()) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto fail;
	}
	r = p11_kit_uri_parse(s, P11_KIT_URI_FOR_ANY, uri->u);
	if (r != P11_KIT_URI_OK) {
		r = p11km_fail(P11KM_ERR_USAGE, "invalid pkcs11: URI: %s", p11_kit_uri_message(r));
		goto fail;
	}
	*out = uri;
	return 0;
fail:
	p11km_uri_free(uri);
	return r;
}

int
p11km_uri_check_select(const struct p11km_uri *uri)
{
	if (uri == NULL)
		return 0;
	if (uri->unusable[0] != '\0')
		return p11km_fail(P11KM_ERR_USAGE, "the URI cannot select anything: %s",
		                  uri->unusable);
	if (p11_kit_uri_any_unrecognized(uri->u))
		return p11km_fail(P11KM_ERR_USAGE,
		    "the URI has attributes p11km does not know (vendor extensions?); remove them");
	return 0;
}

void
p11km_uri_free(struct p11km_uri *uri)
{
	if (uri == NULL)
		return;
	if (uri->u != NULL)
		p11_kit_uri_free(uri->u);
	free(uri);
}

/*
 * One blank-padded token field of the URI against the token's.  p11-kit
 * leaves a field the URI does not name all zero.  NUL and space count as
 * the same padding on both sides: tpm2-pkcs11 pads its model with NULs,
 * which p11-kit's own matcher would compare byte for byte.
 */
static int
field_match(const unsigned char *want, const unsigned char *have, size_t len)
{
	if (want[0] == '\0')
		return 1;
	for (size_t i = 0; i < len; i++) {
		unsigned char a = want[i] ? want[i] : ' ', b = have[i] ? have[i] : ' ';
		if (a != b)
			return 0;
	}
	return 1;
}

int
p11km_uri_match_token(const struct p11km_uri *uri, CK_INFO *minfo, CK_SLOT_INFO *sinfo,
                      CK_TOKEN_INFO *tinfo)
{
	CK_TOKEN_INFO *want;

	if (uri == NULL)
		return 1;
	/* As p11-kit: a URI with attributes it cannot honour matches nothing. */
	if (p11_kit_uri_any_unrecognized(uri->u) || uri->unusable[0] != '\0')
		return 0;
	if (minfo != NULL && !p11_kit_uri_match_module_info(uri->u, minfo))
		return 0;
	if (sinfo != NULL && !p11_kit_uri_match_slot_info(uri->u, sinfo))
		return 0;
	if (tinfo == NULL)
		return 1;
	want = p11_kit_uri_get_token_info(uri->u);
	return field_match(want->label, tinfo->label, sizeof(tinfo->label)) &&
	       field_match(want->manufacturerID, tinfo->manufacturerID,
	                   sizeof(tinfo->manufacturerID)) &&
	       field_match(want->model, tinfo->model, sizeof(tinfo->model)) &&
	       field_match(want->serialNumber, tinfo->serialNumber, sizeof(tinfo->serialNumber));
}

CK_ATTRIBUTE *
p11km_uri_object_template(const struct p11km_uri *uri, CK_ULONG *n)
{
	*n = 0;
	if (uri == NULL)
		return NULL;
	return p11_kit_uri_get_attributes(uri->u, n);
}

CK_OBJECT_CLASS
p11km_uri_class(const struct p11km_uri *uri)
{
	CK_ATTRIBUTE *a;

	if (uri == NULL || (a = p11_kit_uri_get_attribute(uri->u, CKA_CLASS)) == NULL ||
	    a->ulValueLen != sizeof(CK_OBJECT_CLASS))
		return (CK_OBJECT_CLASS)-1;
	return *(CK_OBJECT_CLASS *)a->pValue;
}

const char *p11km_uri_pin_source(const struct p11km_uri *uri)
{ return uri ? p11_kit_uri_get_pin_source(uri->u) : NULL; }
const char *p11km_uri_pin_value(const struct p11km_uri *uri)
{ return uri ? p11_kit_uri_get_pin_value(uri->u) : NULL; }
const char *p11km_uri_module_name(const struct p11km_uri *uri)
{ return uri ? p11_kit_uri_get_module_name(uri->u) : NULL; }
const char *p11km_uri_module_path(const struct p11km_uri *uri)
{ return uri ? p11_kit_uri_get_module_path(uri->u) : NULL; }

const char *
p11km_uri_message(int code)
{
	return p11_kit_uri_message(code);
}

char *
p11km_uri_hide_pin(const char *text)
{
	const char *q = strchr(text, '?'), *p, *end;
	char *out = strdup(text), *n;
	size_t from;

	if (q == NULL || out == NULL)
		return out;
	/* every "pin-value=" of the query (a text that did not parse may hold several) */
	from = (size_t)(q - text);
	while ((p = strstr(out + from, "pin-value=")) != NULL) {
		p += 10;
		end = p + strcspn(p, "&");
		n = p11km_asprintf("%.*s(hidden)%s", (int)(p - out), out, end);
		from = (size_t)(p - out) + 8;
		free(out);
		if ((out = n) == NULL)
			return NULL;
	}
	return out;
}

static char *
format(P11KitUri *u, P11KitUriType type)
{
	char *s = NULL;

	if (p11_kit_uri_format(u, type, &s) != P11_KIT_URI_OK)
		return NULL;
	return s;
}

char *
p11km_uri_format(struct p11km_uri *uri)
{
	return format(uri->u, P11_KIT_URI_FOR_ANY);
}

static void
copy_token_fields(CK_TOKEN_INFO *dst, const CK_TOKEN_INFO *src)
{
	memcpy(dst->label, src->label, sizeof(dst->label));
	memcpy(dst->manufacturerID, src->manufacturerID, sizeof(dst->manufacturerID));
	memcpy(dst->model, src->model, sizeof(dst->model));
	memcpy(dst->serialNumber, src->serialNumber, sizeof(dst->serialNumber));
}

/*
 * The token fields to print in a URI.  A field the token pads with NULs
 * (tpm2-pkcs11 does so with its model) is left out: written with spaces it
 * no longer selects the token in GnuTLS/p11-kit, which compare the padded
 * bytes, and written with %00 it is not text.  The label is never NUL
 * padded in practice; an uninitialised token's all-blank label stays
 * ("token=").  The remaining fields still name the token.
 */
/* Tokens whose label is not theirs to keep: OpenSC's PIV emulation
 * (manufacturer "piv_II") labels the card with the CN of the certificate
 * in slot 9a, so the label changes when that certificate does.  Their URIs
 * leave the label out: manufacturer, model and serial still name them. */
static int
label_follows_certificate(const CK_TOKEN_INFO *t)
{
	static const char piv[] = "piv_II";

	return memcmp(t->manufacturerID, piv, sizeof(piv) - 1) == 0 &&
	       (sizeof(t->manufacturerID) == sizeof(piv) - 1 ||
	        t->manufacturerID[sizeof(piv) - 1] == ' ' || t->manufacturerID[sizeof(piv) - 1] == '\0');
}

static void
normalise_token_fields(CK_TOKEN_INFO *t)
{
	unsigned char *fields[] = { t->label, t->manufacturerID, t->model, t->serialNumber };
	size_t lens[] = { sizeof(t->label), sizeof(t->manufacturerID), sizeof(t->model),
	                  sizeof(t->serialNumber) };

	if (label_follows_certificate(t))
		memset(t->label, 0, sizeof(t->label)); /* all zero: left out */

	for (size_t f = 0; f < 4; f++) {
		if (memchr(fields[f], '\0', lens[f]) == NULL)
			continue;
		if (f == 0) {
			if (fields[f][0] == '\0')
				continue; /* all zero: p11-kit's "not given" */
			for (size_t i = 0; i < lens[f]; i++)
				if (fields[f][i] == '\0')
					fields[f][i] = ' ';
		} else {
			memset(fields[f], 0, lens[f]);
		}
	}
}

char *
p11km_uri_token(const CK_TOKEN_INFO *tinfo)
{
	P11KitUri *u = p11_kit_uri_new();
	char *s;

	if (u == NULL)
		return NULL;
	copy_token_fields(p11_kit_uri_get_token_info(u), tinfo);
	normalise_token_fields(p11_kit_uri_get_token_info(u));
	s = format(u, P11_KIT_URI_FOR_TOKEN);
	p11_kit_uri_free(u);
	return s;
}

static const char *
class_type(CK_OBJECT_CLASS cls)
{
	switch (cls) {
	case CKO_PRIVATE_KEY: return "private";
	case CKO_PUBLIC_KEY: return "public";
	case CKO_CERTIFICATE: return "cert";
	case CKO_SECRET_KEY: return "secret-key";
	case CKO_DATA: return "data";
	default: return NULL;
	}
}

char *
p11km_uri_object(const CK_TOKEN_INFO *tinfo, const char *label, const unsigned char *id,
                 size_t id_len, CK_OBJECT_CLASS cls)
{
	P11KitUri *u = p11_kit_uri_new();
	CK_ATTRIBUTE a;
	char *s;

	if (u == NULL)
		return NULL;
	copy_token_fields(p11_kit_uri_get_token_info(u), tinfo);
	normalise_token_fields(p11_kit_uri_get_token_info(u));
	if (label != NULL) {
		a = (CK_ATTRIBUTE){ CKA_LABEL, (void *)label, strlen(label) };
		p11_kit_uri_set_attribute(u, &a);
	}
	if (id != NULL && id_len > 0) {
		a = (CK_ATTRIBUTE){ CKA_ID, (void *)id, id_len };
		p11_kit_uri_set_attribute(u, &a);
	}
	if (class_type(cls) != NULL) {
		a = (CK_ATTRIBUTE){ CKA_CLASS, &cls, sizeof(cls) };
		p11_kit_uri_set_attribute(u, &a);
	}
	s = format(u, P11_KIT_URI_FOR_OBJECT_ON_TOKEN);
	p11_kit_uri_free(u);
	return s;
}

static int
field_set(const unsigned char *f, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (f[i] != ' ' && f[i] != '\0')
			return 1;
	return 0;
}

int
p11km_uri_engine_safe(const struct p11km_uri *uri, const char *pin_source,
                      int allow_pin_value, char **out)
{
	CK_TOKEN_INFO *t = p11_kit_uri_get_token_info(uri->u);
	CK_ULONG n = 0;
	CK_ATTRIBUTE *attrs = p11_kit_uri_get_attributes(uri->u, &n);
	P11KitUri *u;
	const char *ps = pin_source ? pin_source : p11_kit_uri_get_pin_source(uri->u);
	char *s;

	if (!field_set(t->label, sizeof(t->label)) &&
	    !field_set(t->serialNumber, sizeof(t->serialNumber)))
		return p11km_fail(P11KM_ERR_USAGE,
		    "the URI names no token (token= or serial=): the pkcs11 engine refuses to log in "
		    "when several tokens match; add token=LABEL");
	if (p11_kit_uri_get_pin_value(uri->u) != NULL && !allow_pin_value && pin_source == NULL)
		return p11km_fail(P11KM_ERR_USAGE,
		    "the URI carries pin-value, which would put the PIN in a config file; "
		    "use a PIN file (pin-source) instead");
	if ((u = p11_kit_uri_new()) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	copy_token_fields(p11_kit_uri_get_token_info(u), t);
	normalise_token_fields(p11_kit_uri_get_token_info(u)); /* no %00 padding */
	if (n > 0)
		p11_kit_uri_set_attributes(u, attrs, n);
	if (ps != NULL)
		p11_kit_uri_set_pin_source(u, ps);
	else if (allow_pin_value && p11_kit_uri_get_pin_value(uri->u) != NULL)
		p11_kit_uri_set_pin_value(u, p11_kit_uri_get_pin_value(uri->u));
	s = format(u, P11_KIT_URI_FOR_OBJECT_ON_TOKEN);
	p11_kit_uri_free(u);
	if (s == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "unable to format the URI");
	*out = s;
	return 0;
}
