/* uri.h: RFC 7512 pkcs11: URIs, parsed and formatted by p11-kit. */
#ifndef P11KM_URI_H
#define P11KM_URI_H

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>
#include <stddef.h>

/* Longest URI p11km accepts as input. */
#define P11KM_URI_MAX 4096

struct p11km_uri {
	P11KitUri *u;
	int has_token;   /* names a token attribute (token/manufacturer/model/serial) */
	int has_slot;    /* slot-* attributes */
	int has_library; /* library-* attributes */
	int has_object;  /* object/id/type */
	/* Why the URI, valid as RFC 7512 text, cannot select anything with
	 * PKCS#11 (a token field longer than CK_TOKEN_INFO holds), or "". */
	char unusable[160];
};

/*
 * Parse a pkcs11: URI strictly: p11-kit's parser, plus the checks it does
 * not make (duplicate attributes, NUL in a text attribute, over-long
 * values, unknown path attributes).  *out is set only on success.
 */
int p11km_uri_parse(const char *s, struct p11km_uri **out);
void p11km_uri_free(struct p11km_uri *uri);
/*
 * May the URI be used to select tokens and objects?  P11KM_ERR_USAGE when
 * it carries attributes p11km does not know (vendor extensions, which it
 * cannot honour) or a token field longer than PKCS#11 allows (such a URI
 * parses, as RFC 7512 permits, but matches nothing).  NULL is fine.
 */
int p11km_uri_check_select(const struct p11km_uri *uri);

/* Does the URI select this module/slot/token?  NULL info = not checked. */
int p11km_uri_match_token(const struct p11km_uri *uri, CK_INFO *minfo,
                          CK_SLOT_INFO *sinfo, CK_TOKEN_INFO *tinfo);
/*
 * The object attributes of the URI (CKA_CLASS, CKA_LABEL, CKA_ID) as a
 * borrowed template; *n is 0 when the URI names no object attribute.
 */
CK_ATTRIBUTE *p11km_uri_object_template(const struct p11km_uri *uri, CK_ULONG *n);
/* CKA_CLASS named by type=, or (CK_OBJECT_CLASS)-1. */
CK_OBJECT_CLASS p11km_uri_class(const struct p11km_uri *uri);
const char *p11km_uri_pin_source(const struct p11km_uri *uri); /* borrowed */
const char *p11km_uri_pin_value(const struct p11km_uri *uri);  /* borrowed */
const char *p11km_uri_module_name(const struct p11km_uri *uri);
const char *p11km_uri_module_path(const struct p11km_uri *uri);

/* Formatting.  All return malloc'ed strings or NULL on allocation failure. */
char *p11km_uri_format(struct p11km_uri *uri);
/* The URI of a token (token, manufacturer, model, serial). */
char *p11km_uri_token(const CK_TOKEN_INFO *tinfo);
/*
 * The URI of an object: the token's attributes plus object=, id=, type=
 * (label NULL or id_len 0 leave them out; cls (CK_OBJECT_CLASS)-1 leaves
 * out type).
 */
char *p11km_uri_object(const CK_TOKEN_INFO *tinfo, const char *label,
                       const unsigned char *id, size_t id_len, CK_OBJECT_CLASS cls);

/*
 * The engine-safe form of a URI: only the attributes libp11 0.4.12 accepts
 * (token, manufacturer, model, serial, object, id, type, pin-source,
 * and pin-value when allow_pin_value).  A URI that names no token is
 * refused (P11KM_ERR_USAGE): the engine refuses to log in when several
 * tokens match.  pin_source, when not NULL, replaces the URI's own.
 */
int p11km_uri_engine_safe(const struct p11km_uri *uri, const char *pin_source,
                          int allow_pin_value, char **out);

/* Text of a p11-kit URI result code. */
const char *p11km_uri_message(int code);

/* text (a URI, or a string holding one, parsed or not) with the value of
 * every query pin-value replaced by "(hidden)": what messages and output
 * print.  Malloc'ed; NULL on allocation failure. */
char *p11km_uri_hide_pin(const char *text);

#endif
