/* fuzz-uri.c: RFC 7512 URIs as p11km takes them from argv (src/uri.c):
 * parsing, the checks before selecting, matching, formatting, the
 * engine-safe form, the PIN source a URI carries (src/pin.c), and a round
 * trip: a URI p11km prints for an object of the token a URI names parses
 * again and selects the same object attributes. */
#include "config.h"

#include <string.h>

#include <openssl/err.h>

#include "fuzz.h"
#include "p11km/pin.h"
#include "p11km/uri.h"
#include "p11km/util.h"

static void
blank(unsigned char *f, size_t len, const char *s)
{
	memset(f, ' ', len);
	memcpy(f, s, strlen(s) < len ? strlen(s) : len);
}

/* The token, slot and module p11km meets on a SoftHSM2 machine. */
static void
sample_infos(CK_INFO *mi, CK_SLOT_INFO *si, CK_TOKEN_INFO *ti)
{
	memset(mi, 0, sizeof(*mi));
	memset(si, 0, sizeof(*si));
	memset(ti, 0, sizeof(*ti));
	blank(mi->manufacturerID, sizeof(mi->manufacturerID), "SoftHSM");
	blank(mi->libraryDescription, sizeof(mi->libraryDescription), "Implementation of PKCS11");
	mi->libraryVersion.major = 2;
	mi->libraryVersion.minor = 6;
	blank(si->slotDescription, sizeof(si->slotDescription), "SoftHSM slot ID 0x1");
	blank(si->manufacturerID, sizeof(si->manufacturerID), "SoftHSM project");
	blank(ti->label, sizeof(ti->label), "my-token");
	blank(ti->manufacturerID, sizeof(ti->manufacturerID), "SoftHSM project");
	blank(ti->model, sizeof(ti->model), "SoftHSM v2");
	blank(ti->serialNumber, sizeof(ti->serialNumber), "4b1a8f0c2e9d7a61");
}

static void
pin_source(struct p11km_uri *u)
{
	struct p11km_pinsrc src;

	/* as p11-session.c: a URI's pin-source may be a bare path */
	if (p11km_uri_pin_source(u) != NULL && p11km_pinsrc_parse(p11km_uri_pin_source(u), 1,
	                                                          &src) == 0)
		p11km_pinsrc_release(&src);
	if (p11km_uri_pin_value(u) != NULL && p11km_pinsrc_value(p11km_uri_pin_value(u), &src) == 0)
		p11km_pinsrc_release(&src);
}

static const CK_ATTRIBUTE *
find_attr(const CK_ATTRIBUTE *a, CK_ULONG n, CK_ATTRIBUTE_TYPE type)
{
	for (CK_ULONG i = 0; i < n; i++)
		if (a[i].type == type)
			return &a[i];
	return NULL;
}

static int
same_attr(const CK_ATTRIBUTE *a, const CK_ATTRIBUTE *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return a->ulValueLen == b->ulValueLen &&
	       (a->ulValueLen == 0 || memcmp(a->pValue, b->pValue, a->ulValueLen) == 0);
}

/* p11km_uri_object() of the URI's own token fields and object attributes
 * parses again (when not longer than p11km accepts) and names the same
 * label, id and class. */
static void
round_trip(struct p11km_uri *u)
{
	CK_ULONG n = 0, n2 = 0;
	CK_ATTRIBUTE *a = p11km_uri_object_template(u, &n), *a2;
	const CK_ATTRIBUTE *label = find_attr(a, n, CKA_LABEL), *id = find_attr(a, n, CKA_ID);
	CK_TOKEN_INFO ti = *p11_kit_uri_get_token_info(u->u);
	struct p11km_uri *back = NULL;
	char *text = NULL, *s;

	if (label != NULL && (text = fuzz_string(label->pValue, label->ulValueLen)) == NULL)
		return;
	FUZZ_ASSERT(label == NULL || strlen(text) == label->ulValueLen); /* no NUL in object= */
	s = p11km_uri_object(&ti, text, id ? id->pValue : NULL, id ? id->ulValueLen : 0,
	                     p11km_uri_class(u));
	free(text);
	if (s == NULL)
		return;
	if (strlen(s) <= P11KM_URI_MAX) {
		FUZZ_ASSERT(p11km_uri_parse(s, &back) == 0);
		FUZZ_ASSERT(p11km_uri_check_select(back) == 0);
		a2 = p11km_uri_object_template(back, &n2);
		FUZZ_ASSERT(same_attr(label, find_attr(a2, n2, CKA_LABEL)));
		if (id != NULL && id->ulValueLen > 0)
			FUZZ_ASSERT(same_attr(id, find_attr(a2, n2, CKA_ID)));
		FUZZ_ASSERT(p11km_uri_class(back) == p11km_uri_class(u) ||
		            find_attr(a, n, CKA_CLASS) == NULL);
		p11km_uri_free(back);
	}
	free(s);
}

static void
exercise(struct p11km_uri *u)
{
	CK_INFO mi;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;
	CK_ULONG n = 0;
	char *s;
	int selectable = p11km_uri_check_select(u) == 0;

	sample_infos(&mi, &si, &ti);
	free(p11km_uri_format(u));
	p11km_uri_object_template(u, &n);
	(void)p11km_uri_class(u);
	if (p11km_uri_module_name(u) != NULL)
		(void)strlen(p11km_uri_module_name(u));
	if (p11km_uri_module_path(u) != NULL)
		(void)strlen(p11km_uri_module_path(u));
	pin_source(u);
	(void)p11km_uri_match_token(u, &mi, &si, &ti);
	(void)p11km_uri_match_token(u, NULL, NULL, p11_kit_uri_get_token_info(u->u));
	for (int allow = 0; allow < 2; allow++) {
		if (p11km_uri_engine_safe(u, NULL, allow, &s) == 0) {
			struct p11km_uri *e = NULL;
			/* what bind emit writes into a server's configuration */
			if (strlen(s) <= P11KM_URI_MAX && selectable)
				FUZZ_ASSERT(p11km_uri_parse(s, &e) == 0);
			p11km_uri_free(e);
			free(s);
		}
	}
	if (p11km_uri_engine_safe(u, "file:/run/p11km/pin", 0, &s) == 0)
		free(s);
	if (selectable)
		round_trip(u);
}

/* Every pin-value= of the query part of a shown URI is "(hidden)". */
static int
pin_hidden(const char *shown)
{
	const char *p = strchr(shown, '?');

	while (p != NULL && (p = strstr(p, "pin-value=")) != NULL) {
		p += 10;
		if (strncmp(p, "(hidden)", 8) != 0 || (p[8] != '\0' && p[8] != '&'))
			return 0;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size), *shown;
	struct p11km_uri *u = NULL;

	if (s == NULL)
		return 0;
	if ((shown = p11km_uri_hide_pin(s)) != NULL) {
		FUZZ_ASSERT(strstr(s, "pin-value=") != NULL || strcmp(shown, s) == 0);
		FUZZ_ASSERT(pin_hidden(shown));
		free(shown);
	}
	if (p11km_uri_parse(s, &u) == 0) {
		exercise(u);
		p11km_uri_free(u);
	} else {
		FUZZ_ASSERT(u == NULL);
	}
	p11km_error_clear();
	ERR_clear_error();
	free(s);
	return 0;
}
