/* test-uri.c: RFC 7512 URIs: parsing (every example of RFC 7512 section 7),
 * malformed input, token matching, formatting and the engine-safe form. */
#include "config.h"

#include <check.h>
#include "check-run.h"
#include <stdlib.h>
#include <string.h>

#include "p11km/p11.h"
#include "p11km/uri.h"
#include "p11km/util.h"

/* RFC 7512, section 7, every example, joined onto one line each. */
static const char *const rfc7512_examples[] = {
	"pkcs11:",
	"pkcs11:object=my-pubkey;type=public",
	"pkcs11:object=my-key;type=private?pin-source=file:/etc/token",
	"pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;"
	"model=1.0;object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial="
	"?pin-source=file:/etc/token_pin",
	"pkcs11:object=my-sign-key;type=private?module-name=mypkcs11",
	"pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1",
	"pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc."
	"?pin-value=the-pin",
	"pkcs11:slot-description=Sun%20Metaslot",
	"pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;"
	"library-version=1.23",
	"pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;"
	"id=%01%02%03%Ba%dd%Ca%fe%04%05%06",
	"pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
	"pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;"
	"type=cert",
	"pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a"
	"?pin-source=file:/etc/token_pin&vendor-bbb=value-b",
};
#define N_EXAMPLES (sizeof(rfc7512_examples) / sizeof(rfc7512_examples[0]))

static struct p11km_uri *
parse_ok(const char *s)
{
	struct p11km_uri *u = NULL;
	int r = p11km_uri_parse(s, &u);

	ck_assert_msg(r == 0, "'%s' refused: %s", s, p11km_errmsg(r));
	ck_assert_ptr_nonnull(u);
	return u;
}

static void
parse_bad(const char *s, const char *msg_part)
{
	struct p11km_uri *u = (struct p11km_uri *)&u; /* must stay untouched */
	int r = p11km_uri_parse(s, &u);

	ck_assert_msg(r == P11KM_ERR_USAGE, "'%s' accepted (r=%d)", s, r);
	ck_assert_ptr_eq(u, (struct p11km_uri *)&u);
	if (msg_part != NULL)
		ck_assert_msg(strstr(p11km_errmsg(r), msg_part) != NULL, "'%s': message '%s' lacks '%s'",
		              s, p11km_errmsg(r), msg_part);
	ck_assert_msg(strchr(p11km_errmsg(r), '\n') == NULL, "message is not one line");
}

/* Text of a blank-padded token field. */
static char *
field(const unsigned char *f, size_t len)
{
	return p11km_strndup_trim((const char *)f, len);
}

static void
assert_field(const unsigned char *f, size_t len, const char *want)
{
	char *s = field(f, len);
	ck_assert_str_eq(s, want);
	free(s);
}

START_TEST(rfc_examples_parse)
{
	struct p11km_uri *u = parse_ok(rfc7512_examples[_i]);
	p11km_uri_free(u);
}
END_TEST

START_TEST(rfc_example_values)
{
	struct p11km_uri *u;
	CK_TOKEN_INFO *t;
	CK_ATTRIBUTE *a;
	static const unsigned char id4[] = { 0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91 };
	static const unsigned char id10[] = { 1, 2, 3, 0xba, 0xdd, 0xca, 0xfe, 4, 5, 6 };

	u = parse_ok(rfc7512_examples[1]);
	ck_assert_int_eq(p11km_uri_class(u), CKO_PUBLIC_KEY);
	a = p11_kit_uri_get_attribute(u->u, CKA_LABEL);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(a->ulValueLen, 9);
	ck_assert(memcmp(a->pValue, "my-pubkey", 9) == 0);
	ck_assert(u->has_object && !u->has_token && !u->has_slot && !u->has_library);
	p11km_uri_free(u);

	u = parse_ok(rfc7512_examples[2]);
	ck_assert_int_eq(p11km_uri_class(u), CKO_PRIVATE_KEY);
	ck_assert_str_eq(p11km_uri_pin_source(u), "file:/etc/token");
	ck_assert_ptr_null(p11km_uri_pin_value(u));
	p11km_uri_free(u);

	u = parse_ok(rfc7512_examples[3]);
	t = p11_kit_uri_get_token_info(u->u);
	assert_field(t->label, sizeof(t->label), "The Software PKCS#11 Softtoken");
	assert_field(t->manufacturerID, sizeof(t->manufacturerID), "Snake Oil, Inc.");
	assert_field(t->model, sizeof(t->model), "1.0");
	ck_assert_int_eq(p11km_uri_class(u), CKO_CERTIFICATE);
	a = p11_kit_uri_get_attribute(u->u, CKA_ID);
	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(a->ulValueLen, sizeof(id4));
	ck_assert(memcmp(a->pValue, id4, sizeof(id4)) == 0);
	ck_assert_str_eq(p11km_uri_pin_source(u), "file:/etc/token_pin");
	ck_assert(u->has_token && u->has_object);
	p11km_uri_free(u);

	u = parse_ok(rfc7512_examples[4]);
	ck_assert_str_eq(p11km_uri_module_name(u), "mypkcs11");
	p11km_uri_free(u);
	u = parse_ok(rfc7512_examples[5]);
	ck_assert_str_eq(p11km_uri_module_path(u), "/mnt/libmypkcs11.so.1");
	p11km_uri_free(u);

	u = parse_ok(rfc7512_examples[6]);
	ck_assert_str_eq(p11km_uri_pin_value(u), "the-pin");
	p11km_uri_free(u);

	u = parse_ok(rfc7512_examples[7]);
	ck_assert(u->has_slot && !u->has_token && !u->has_object);
	p11km_uri_free(u);

	u = parse_ok(rfc7512_examples[8]);
	ck_assert(u->has_library && !u->has_token);
	ck_assert_int_eq(p11_kit_uri_get_module_info(u->u)->libraryVersion.major, 1);
	ck_assert_int_eq(p11_kit_uri_get_module_info(u->u)->libraryVersion.minor, 23);
	p11km_uri_free(u);

	u = parse_ok(rfc7512_examples[9]);
	t = p11_kit_uri_get_token_info(u->u);
	assert_field(t->label, sizeof(t->label), "My token% created by Joe");
	a = p11_kit_uri_get_attribute(u->u, CKA_ID);
	ck_assert_int_eq(a->ulValueLen, sizeof(id10));
	ck_assert(memcmp(a->pValue, id10, sizeof(id10)) == 0);
	p11km_uri_free(u);

	u = parse_ok(rfc7512_examples[10]);
	t = p11_kit_uri_get_token_info(u->u);
	assert_field(t->label, sizeof(t->label), "A name with a substring %;");
	p11km_uri_free(u);

	/* 34 bytes: see overlong_token_fields */
	u = parse_ok(rfc7512_examples[11]);
	ck_assert_int_eq(p11km_uri_check_select(u), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_uri_class(u), CKO_CERTIFICATE);
	p11km_uri_free(u);
	/* the same with a label that fits */
	u = parse_ok("pkcs11:token=Small%20a%20with%20acute:%20%C3%A1;object=c;type=cert");
	t = p11_kit_uri_get_token_info(u->u);
	assert_field(t->label, sizeof(t->label), "Small a with acute: \xc3\xa1");
	ck_assert_int_eq(p11km_uri_check_select(u), 0);
	p11km_uri_free(u);
}
END_TEST

/* RFC 7512 example with vendor attributes: parsed, but p11km will not
 * select with a URI whose meaning it does not fully know. */
START_TEST(vendor_attributes)
{
	struct p11km_uri *u = parse_ok(rfc7512_examples[12]);

	ck_assert(p11_kit_uri_any_unrecognized(u->u));
	ck_assert_str_eq(p11km_uri_pin_source(u), "file:/etc/token_pin");
	ck_assert_int_eq(p11km_uri_class(u), CKO_CERTIFICATE);
	{
		/* refused before any module is loaded */
		struct p11km_ctx ctx;
		struct p11km_token *toks = (struct p11km_token *)&ctx;
		size_t n = 99;
		int r;

		p11km_ctx_init(&ctx);
		r = p11km_tokens_find(&ctx, u, &toks, &n);
		ck_assert_int_eq(r, P11KM_ERR_USAGE);
		ck_assert_ptr_nonnull(strstr(p11km_errmsg(r), "vendor"));
		ck_assert_int_eq(ctx.n_modules, 0);
		ck_assert_int_eq(n, 0);
		p11km_ctx_release(&ctx);
	}
	p11km_uri_free(u);
	/* the other examples carry no vendor attribute */
	u = parse_ok(rfc7512_examples[3]);
	ck_assert(!p11_kit_uri_any_unrecognized(u->u));
	p11km_uri_free(u);
}
END_TEST

START_TEST(malformed)
{
	char long_label[200], long_uri[P11KM_URI_MAX + 64];

	parse_bad("", "pkcs11:");
	parse_bad("http://example.com/", "must start with 'pkcs11:'");
	parse_bad("pkcs12:token=a", "must start with 'pkcs11:'");
	parse_bad("token=a", "must start with 'pkcs11:'");
	/* bad percent-encoding */
	parse_bad("pkcs11:token=a%2", "percent-encoding");
	parse_bad("pkcs11:token=a%", "percent-encoding");
	parse_bad("pkcs11:object=%zz", "percent-encoding");
	parse_bad("pkcs11:id=%0g", "percent-encoding");
	parse_bad("pkcs11:token=a?pin-source=%4", "percent-encoding");
	/* no '=' */
	parse_bad("pkcs11:token", "no '='");
	/* p11-kit stops at an empty path attribute (tests/fuzz/corpus/uri/regress-empty-attr) */
	parse_bad("pkcs11:token=a;;object=b", "empty attribute");
	parse_bad("pkcs11:;token=a;object=b", "empty attribute");
	parse_bad("pkcs11:token=a;;pin-value=1234;object=b", "empty attribute");
	p11km_uri_free(parse_ok("pkcs11:token=a;object=b;"));
	/* duplicate attributes, in the path and in the query */
	parse_bad("pkcs11:token=a;token=b", "appears twice");
	parse_bad("pkcs11:object=a;type=cert;object=a", "appears twice");
	parse_bad("pkcs11:token=a?pin-source=/x&pin-source=/y", "appears twice");
	/* over-long values: a token field far beyond PKCS#11's size, an object
	 * label over 1 KiB (token fields just over their size: see
	 * overlong_token_fields) */
	strcpy(long_label, "pkcs11:token=");
	memset(long_label + 13, 'x', 180);
	long_label[13 + 180] = '\0';
	ck_assert_int_eq(strlen(long_label), 193);
	{
		char big[4000];
		snprintf(big, sizeof(big), "%s%s%s", long_label, long_label + 13, "");
		parse_bad(big, "at most 256");
		strcpy(big, "pkcs11:object=");
		memset(big + 14, 'o', 1025);
		big[14 + 1025] = '\0';
		parse_bad(big, "at most 1024");
		strcpy(big, "pkcs11:id=");
		for (int i = 0; i < 1025; i++)
			memcpy(big + 10 + 3 * i, "%01", 3);
		big[10 + 3 * 1025] = '\0';
		ck_assert_int_lt(strlen(big), P11KM_URI_MAX);
		parse_bad(big, "at most 1024");
	}
	/* a whole URI longer than P11KM_URI_MAX */
	strcpy(long_uri, "pkcs11:object=");
	memset(long_uri + 14, 'a', P11KM_URI_MAX);
	long_uri[14 + P11KM_URI_MAX] = '\0';
	parse_bad(long_uri, "longer than");
	/* NUL in text attributes */
	parse_bad("pkcs11:object=a%00b", "NUL");
	parse_bad("pkcs11:token=a%00", "NUL");
	parse_bad("pkcs11:object=%00", "NUL");
	parse_bad("pkcs11:model=a%00b", "NUL");
	parse_bad("pkcs11:token=a?pin-source=/x%00y", "NUL");
	/* an unknown type */
	parse_bad("pkcs11:type=banana", "unknown type");
	parse_bad("pkcs11:type=", "unknown type");
	/* p11-kit drops white space before it parses: each of these passed the
	 * checks above and reached p11-kit as what they refuse (found by
	 * tests/fuzz/fuzz-uri) */
	parse_bad("pkcs11:tok en=a;token=b", "space or control character at position 11");
	parse_bad("pkcs11:obj\tect=a%00b", "space or control");
	parse_bad("pkcs11:ty pe=banana", "space or control");
	parse_bad("pkcs11:token=My Token", "%20");
	parse_bad("pkcs11:token=a?pin-va\vlue=x&pin-value=y", "space or control");
	parse_bad("pkcs11:token=a\n", "space or control");
	/* p11-kit takes pin-value and pin-source in the path too: checked there
	 * as in the query; a path attribute after '?' is ignored by p11-kit
	 * (found by tests/fuzz/fuzz-uri) */
	parse_bad("pkcs11:token=a;pin-value=a%00b", "NUL");
	parse_bad("pkcs11:pin-value=a?pin-value=b", "appears twice");
	parse_bad("pkcs11:pin-source=/a;pin-source=/b", "appears twice");
	{
		char big[400];
		snprintf(big, sizeof(big), "pkcs11:token=a;pin-value=%0300d", 7);
		parse_bad(big, "too long");
	}
	parse_bad("pkcs11:token=a?object=x", "put it before the '?'");
	parse_bad("pkcs11:?type=cert", "'type' after '?'");
	{
		struct p11km_uri *u = parse_ok("pkcs11:token=a;pin-source=/etc/pin");
		ck_assert_str_eq(p11km_uri_pin_source(u), "/etc/pin");
		p11km_uri_free(u);
	}
	parse_bad("pkcs11:token=a\x7f", "space or control");
	parse_bad("pkcs11:token=a?pin-value=secret pin", "position 32");
	ck_assert_ptr_null(strstr(p11km_errmsg(P11KM_ERR_USAGE), "secret"));
}
END_TEST

/*
 * id is binary: %00 is a legitimate one-byte id.  model and manufacturer
 * may end in %00 padding (p11tool prints tpm2-pkcs11's model so).
 */
/*
 * RFC 7512's own example "token=Name with a small A with acute: \xc3\xa1" is
 * 34 bytes, longer than the 32 of a PKCS#11 label: valid RFC 7512 text, so
 * it parses, but it can match no token, so selecting with it is refused
 * (p11-kit would silently drop the attribute and select more).
 */
START_TEST(overlong_token_fields)
{
	static const char *const uris[] = {
		"pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;"
		"type=cert",
		"pkcs11:token=%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41"
		"%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41%41",
		"pkcs11:model=0123456789abcdefg",
		"pkcs11:serial=0123456789abcdefg",
	};
	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
		struct p11km_uri *u = parse_ok(uris[i]);
		int r = p11km_uri_check_select(u);
		ck_assert_int_eq(r, P11KM_ERR_USAGE);
		ck_assert_msg(strstr(p11km_errmsg(r), "no token can match") != NULL, "%s",
		              p11km_errmsg(r));
		p11km_uri_free(u);
	}
	/* exactly 32 bytes is fine */
	{
		struct p11km_uri *u = parse_ok("pkcs11:token=0123456789abcdef0123456789abcdef");
		ck_assert_int_eq(p11km_uri_check_select(u), 0);
		p11km_uri_free(u);
	}
	ck_assert_int_eq(p11km_uri_check_select(NULL), 0);
}
END_TEST

START_TEST(binary_id_and_padding)
{
	struct p11km_uri *u = parse_ok("pkcs11:token=t;id=%00;type=private");
	CK_ATTRIBUTE *a = p11_kit_uri_get_attribute(u->u, CKA_ID);

	ck_assert_ptr_nonnull(a);
	ck_assert_int_eq(a->ulValueLen, 1);
	ck_assert_int_eq(((unsigned char *)a->pValue)[0], 0);
	p11km_uri_free(u);
	u = parse_ok("pkcs11:id=%00%01%00");
	a = p11_kit_uri_get_attribute(u->u, CKA_ID);
	ck_assert_int_eq(a->ulValueLen, 3);
	p11km_uri_free(u);
	u = parse_ok("pkcs11:model=SW%20%20%20TPM%00%00%00%00%00%00%00%00;token=tpmtok");
	p11km_uri_free(u);
}
END_TEST

START_TEST(scheme_case)
{
	/* RFC 3986: the scheme is case-insensitive */
	struct p11km_uri *u = NULL;
	int r = p11km_uri_parse("PKCS11:token=a", &u);

	/* p11-kit 0.24 insists on lower case; either way the answer is clean */
	if (r == 0)
		p11km_uri_free(u);
	else
		ck_assert_int_eq(r, P11KM_ERR_USAGE);
}
END_TEST

static void
token_info(CK_TOKEN_INFO *t, const char *label, const char *manuf, const char *model,
           const char *serial, int nul_pad)
{
	char pad = nul_pad ? '\0' : ' ';

	memset(t, 0, sizeof(*t));
	memset(t->label, ' ', sizeof(t->label));
	memset(t->manufacturerID, ' ', sizeof(t->manufacturerID));
	memset(t->model, pad, sizeof(t->model));
	memset(t->serialNumber, ' ', sizeof(t->serialNumber));
	memcpy(t->label, label, strlen(label));
	memcpy(t->manufacturerID, manuf, strlen(manuf));
	memcpy(t->model, model, strlen(model));
	memcpy(t->serialNumber, serial, strlen(serial));
}

START_TEST(token_matching)
{
	CK_TOKEN_INFO sh, tpm;
	struct p11km_uri *u;
	char *s;

	token_info(&sh, "T1", "SoftHSM project", "SoftHSM v2", "3120dc809a28d4f4", 0);
	token_info(&tpm, "tpmtok", "IBM", "SW   TPM", "0000000000000000", 1);

	u = parse_ok("pkcs11:token=T1");
	ck_assert(p11km_uri_match_token(u, NULL, NULL, &sh));
	ck_assert(!p11km_uri_match_token(u, NULL, NULL, &tpm));
	p11km_uri_free(u);
	u = parse_ok("pkcs11:");
	ck_assert(p11km_uri_match_token(u, NULL, NULL, &sh));
	ck_assert(p11km_uri_match_token(u, NULL, NULL, &tpm));
	p11km_uri_free(u);
	ck_assert(p11km_uri_match_token(NULL, NULL, NULL, &sh));
	/* a NUL-padded model matches its blank-padded and its %00-padded form */
	u = parse_ok("pkcs11:model=SW%20%20%20TPM");
	ck_assert(p11km_uri_match_token(u, NULL, NULL, &tpm));
	ck_assert(!p11km_uri_match_token(u, NULL, NULL, &sh));
	p11km_uri_free(u);
	u = parse_ok("pkcs11:model=SW%20%20%20TPM%00%00%00%00%00%00%00%00;token=tpmtok");
	ck_assert(p11km_uri_match_token(u, NULL, NULL, &tpm));
	p11km_uri_free(u);
	/* a prefix is not a match */
	u = parse_ok("pkcs11:token=T");
	ck_assert(!p11km_uri_match_token(u, NULL, NULL, &sh));
	p11km_uri_free(u);
	/* a URI p11km cannot honour matches nothing (as with p11-kit) */
	u = parse_ok("pkcs11:token=T1;vendor-aaa=x");
	ck_assert(!p11km_uri_match_token(u, NULL, NULL, &sh));
	p11km_uri_free(u);
	u = parse_ok("pkcs11:token=T1;serial=0123456789abcdefg");
	ck_assert(!p11km_uri_match_token(u, NULL, NULL, &sh));
	p11km_uri_free(u);
	/* token= (empty) selects only tokens with an empty label */
	u = parse_ok("pkcs11:token=");
	ck_assert(!p11km_uri_match_token(u, NULL, NULL, &sh));
	p11km_uri_free(u);

	/* The URI p11km prints for a token selects it. */
	s = p11km_uri_token(&sh);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;"
	                    "serial=3120dc809a28d4f4;token=T1");
	u = parse_ok(s);
	ck_assert(p11km_uri_match_token(u, NULL, NULL, &sh));
	p11km_uri_free(u);
	free(s);
	/* The NUL-padded model is left out (GnuTLS compares padded bytes). */
	s = p11km_uri_token(&tpm);
	ck_assert_ptr_nonnull(s);
	ck_assert_ptr_null(strstr(s, "model="));
	ck_assert_ptr_null(strstr(s, "%00"));
	ck_assert_ptr_nonnull(strstr(s, "token=tpmtok"));
	u = parse_ok(s);
	ck_assert(p11km_uri_match_token(u, NULL, NULL, &tpm));
	ck_assert(!p11km_uri_match_token(u, NULL, NULL, &sh));
	p11km_uri_free(u);
	free(s);
	/* OpenSC's PIV token is labelled by its 9a certificate's CN: its URI
	 * leaves the label out, so it still selects the card after a new one */
	token_info(&tpm, "alice", "piv_II", "PKCS#15 emulated", "c1707574e15aa256", 0);
	s = p11km_uri_token(&tpm);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, "pkcs11:model=PKCS%2315%20emulated;manufacturer=piv_II;"
	                    "serial=c1707574e15aa256");
	token_info(&tpm, "bob", "piv_II", "PKCS#15 emulated", "c1707574e15aa256", 0);
	u = parse_ok(s);
	ck_assert(p11km_uri_match_token(u, NULL, NULL, &tpm));
	p11km_uri_free(u);
	free(s);
}
END_TEST

START_TEST(object_uris)
{
	CK_TOKEN_INFO sh;
	static const unsigned char id[] = { 0x01, 0x00, 0xff };
	struct p11km_uri *u;
	CK_ATTRIBUTE *tmpl, *a;
	CK_ULONG n;
	char *s;

	token_info(&sh, "T;1 %", "SoftHSM project", "SoftHSM v2", "0a", 0);
	s = p11km_uri_object(&sh, "my key;x", id, sizeof(id), CKO_PRIVATE_KEY);
	ck_assert_ptr_nonnull(s);
	u = parse_ok(s);
	ck_assert(p11km_uri_match_token(u, NULL, NULL, &sh));
	ck_assert_int_eq(p11km_uri_class(u), CKO_PRIVATE_KEY);
	a = p11_kit_uri_get_attribute(u->u, CKA_LABEL);
	ck_assert_int_eq(a->ulValueLen, 8);
	ck_assert(memcmp(a->pValue, "my key;x", 8) == 0);
	a = p11_kit_uri_get_attribute(u->u, CKA_ID);
	ck_assert_int_eq(a->ulValueLen, 3);
	ck_assert(memcmp(a->pValue, id, 3) == 0);
	tmpl = p11km_uri_object_template(u, &n);
	ck_assert_int_eq(n, 3);
	ck_assert_ptr_nonnull(tmpl);
	p11km_uri_free(u);
	free(s);
	/* label, id and type may each be left out */
	s = p11km_uri_object(&sh, NULL, NULL, 0, (CK_OBJECT_CLASS)-1);
	ck_assert_ptr_null(strstr(s, "object="));
	ck_assert_ptr_null(strstr(s, "id="));
	ck_assert_ptr_null(strstr(s, "type="));
	free(s);
	s = p11km_uri_object(&sh, "c", NULL, 0, CKO_CERTIFICATE);
	ck_assert_ptr_nonnull(strstr(s, "type=cert"));
	free(s);
	/* no URI: no template, no class */
	ck_assert_ptr_null(p11km_uri_object_template(NULL, &n));
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(p11km_uri_class(NULL), (CK_OBJECT_CLASS)-1);
}
END_TEST

static char *
engine(const char *in, const char *pin_source, int allow_pin_value, int want_r)
{
	struct p11km_uri *u = parse_ok(in);
	char *out = NULL;
	int r = p11km_uri_engine_safe(u, pin_source, allow_pin_value, &out);

	ck_assert_msg(r == want_r, "engine_safe('%s') = %d, want %d (%s)", in, r, want_r,
	              p11km_errmsg(r));
	if (r < 0)
		ck_assert_ptr_null(out);
	p11km_uri_free(u);
	return out;
}

/* Only token, manufacturer, model, serial, object, id, type, pin-source
 * survive; attributes libp11 0.4.12 rejects are dropped. */
static void
assert_engine_attrs(const char *s)
{
	static const char *const allowed[] = { "token", "manufacturer", "model", "serial",
	                                       "object", "id", "type", "pin-source", NULL };
	char *copy = strdup(s), *p, *save = NULL;

	ck_assert(strncmp(s, "pkcs11:", 7) == 0);
	for (p = strtok_r(copy + 7, ";?&", &save); p != NULL; p = strtok_r(NULL, ";?&", &save)) {
		size_t nl = strcspn(p, "=");
		int ok = 0;
		for (size_t i = 0; allowed[i] != NULL; i++)
			if (strlen(allowed[i]) == nl && strncmp(allowed[i], p, nl) == 0)
				ok = 1;
		ck_assert_msg(ok, "attribute '%.*s' in engine-safe URI '%s'", (int)nl, p, s);
	}
	free(copy);
}

START_TEST(engine_safe)
{
	char *s;

	s = engine("pkcs11:token=T1;serial=abc;model=M;manufacturer=X;object=k;id=%01;type=private;"
	           "slot-id=5;slot-description=S;slot-manufacturer=SM;library-manufacturer=L;"
	           "library-description=D;library-version=1.2"
	           "?module-path=/usr/lib/x.so&module-name=x&pin-source=/etc/pin", NULL, 0, 0);
	assert_engine_attrs(s);
	ck_assert_ptr_nonnull(strstr(s, "token=T1"));
	ck_assert_ptr_nonnull(strstr(s, "serial=abc"));
	ck_assert_ptr_nonnull(strstr(s, "model=M"));
	ck_assert_ptr_nonnull(strstr(s, "manufacturer=X"));
	ck_assert_ptr_nonnull(strstr(s, "object=k"));
	ck_assert_ptr_nonnull(strstr(s, "id=%01"));
	ck_assert_ptr_nonnull(strstr(s, "type=private"));
	{
		/* p11-kit writes pin-source=%2Fetc%2Fpin, which libp11 decodes */
		struct p11km_uri *u = parse_ok(s);
		ck_assert_str_eq(p11km_uri_pin_source(u), "/etc/pin");
		p11km_uri_free(u);
	}
	ck_assert_ptr_null(strstr(s, "slot"));
	ck_assert_ptr_null(strstr(s, "library"));
	ck_assert_ptr_null(strstr(s, "module"));
	free(s);

	/* serial alone names the token; a given pin source replaces the URI's */
	s = engine("pkcs11:serial=abc;object=k?pin-source=/a", "/run/pin", 0, 0);
	assert_engine_attrs(s);
	ck_assert_ptr_null(strstr(s, "token="));   /* no label given, none added */
	ck_assert_ptr_null(strstr(s, "model="));
	{
		struct p11km_uri *u = parse_ok(s);
		ck_assert_str_eq(p11km_uri_pin_source(u), "/run/pin");
		p11km_uri_free(u);
	}
	free(s);

	/* the result parses and keeps its meaning */
	s = engine("pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my%20cert;type=cert",
	           NULL, 0, 0);
	{
		struct p11km_uri *u = parse_ok(s);
		CK_TOKEN_INFO *t = p11_kit_uri_get_token_info(u->u);
		assert_field(t->label, sizeof(t->label), "A name with a substring %;");
		ck_assert_int_eq(p11km_uri_class(u), CKO_CERTIFICATE);
		p11km_uri_free(u);
	}
	free(s);

	/* p11tool's NUL-padded model (tpm2-pkcs11) is left out, never %00 */
	s = engine("pkcs11:model=SW%20%20%20TPM%00%00%00%00%00%00%00%00;token=tpmtok;object=k", NULL, 0, 0);
	ck_assert_ptr_null(strstr(s, "%00"));
	ck_assert_ptr_null(strstr(s, "model="));
	ck_assert_ptr_nonnull(strstr(s, "token=tpmtok"));
	free(s);

	/* no token: refused (the engine refuses to log in on several tokens) */
	ck_assert_ptr_null(engine("pkcs11:object=k;type=private", NULL, 0, P11KM_ERR_USAGE));
	ck_assert_ptr_null(engine("pkcs11:model=SoftHSM%20v2;object=k", NULL, 0, P11KM_ERR_USAGE));
	ck_assert_ptr_null(engine("pkcs11:slot-id=3;object=k", NULL, 0, P11KM_ERR_USAGE));
	/* pin-value: refused unless allowed, never kept silently */
	ck_assert_ptr_null(engine("pkcs11:token=t?pin-value=1234", NULL, 0, P11KM_ERR_USAGE));
	s = engine("pkcs11:token=t?pin-value=1234", NULL, 1, 0);
	ck_assert_ptr_nonnull(strstr(s, "pin-value=1234"));
	free(s);
	s = engine("pkcs11:token=t?pin-value=1234", "/run/pin", 0, 0);
	ck_assert_ptr_null(strstr(s, "pin-value"));
	ck_assert_ptr_nonnull(strstr(s, "pin-source="));
	free(s);
}
END_TEST

START_TEST(format_roundtrip)
{
	/* every RFC example but the vendor one formats to a URI that parses again */
	for (size_t i = 0; i + 1 < N_EXAMPLES; i++) {
		struct p11km_uri *u = parse_ok(rfc7512_examples[i]), *v;
		char *s;
		if (p11km_uri_check_select(u) < 0) {
			p11km_uri_free(u);
			continue;
		}
		s = p11km_uri_format(u);
		ck_assert_ptr_nonnull(s);
		v = parse_ok(s);
		ck_assert_int_eq(p11km_uri_class(u), p11km_uri_class(v));
		p11km_uri_free(v);
		p11km_uri_free(u);
		free(s);
	}
	ck_assert_ptr_nonnull(p11km_uri_message(P11_KIT_URI_BAD_ENCODING));
}
END_TEST

START_TEST(hide_pin)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "pkcs11:token=A?pin-value=1234", "pkcs11:token=A?pin-value=(hidden)" },
		{ "pkcs11:token=A?pin-value=12&module-name=x", "pkcs11:token=A?pin-value=(hidden)&module-name=x" },
		{ "pkcs11:token=A?module-name=x&pin-value=12", "pkcs11:token=A?module-name=x&pin-value=(hidden)" },
		{ "token:pkcs11:token=A?pin-value=1&pin-value=22", "token:pkcs11:token=A?pin-value=(hidden)&pin-value=(hidden)" },
		{ "pkcs11:token=A?pin-value=", "pkcs11:token=A?pin-value=(hidden)" },
		{ "pkcs11:object=pin-value=x;token=A", "pkcs11:object=pin-value=x;token=A" }, /* a path, not the query */
		{ "pkcs11:token=A?pin-source=/p", "pkcs11:token=A?pin-source=/p" },
		{ "/tmp/file.pem", "/tmp/file.pem" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = p11km_uri_hide_pin(cases[i].in);
		ck_assert_ptr_nonnull(s);
		ck_assert_str_eq(s, cases[i].out);
		free(s);
	}
}
END_TEST

static Suite *
uri_suite(void)
{
	Suite *s = suite_create("uri");
	TCase *tc = tcase_create("uri");

	tcase_add_loop_test(tc, rfc_examples_parse, 0, (int)N_EXAMPLES);
	tcase_add_test(tc, rfc_example_values);
	tcase_add_test(tc, vendor_attributes);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, overlong_token_fields);
	tcase_add_test(tc, binary_id_and_padding);
	tcase_add_test(tc, scheme_case);
	tcase_add_test(tc, token_matching);
	tcase_add_test(tc, object_uris);
	tcase_add_test(tc, engine_safe);
	tcase_add_test(tc, format_roundtrip);
	tcase_add_test(tc, hide_pin);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
		return p11km_check_run(uri_suite());
}
