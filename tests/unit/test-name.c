/* test-name.c: subjects, subjectAltNames and usages parsed into OpenSSL
 * structures, checked through OpenSSL's accessors; requests signed with a
 * software key through the signer interface and verified by OpenSSL. */
#include "config.h"

#include <check.h>
#include "check-run.h"
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "p11km/req.h"
#include "p11km/sign.h"
#include "p11km/util.h"
#include "p11km/x509.h"

/* Value of entry i as a C string (static buffer), and its NID. */
static const char *
entry(X509_NAME *n, int i, int *nid)
{
	static char buf[1024];
	X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
	ASN1_STRING *s = X509_NAME_ENTRY_get_data(e);

	ck_assert_ptr_nonnull(e);
	*nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
	ck_assert_int_lt(ASN1_STRING_length(s), (int)sizeof(buf));
	memcpy(buf, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
	buf[ASN1_STRING_length(s)] = '\0';
	return buf;
}

static void
expect_entry(X509_NAME *n, int i, int want_nid, const char *want)
{
	int nid;
	const char *v = entry(n, i, &nid);

	ck_assert_int_eq(nid, want_nid);
	ck_assert_str_eq(v, want);
}

/* An empty subject or issuer (a certificate may have one) prints as "":
 * the printer's buffer is then empty and its data pointer NULL. */
START_TEST(name_text_empty)
{
	X509_NAME *n = X509_NAME_new();
	char *s;

	ck_assert_ptr_nonnull(n);
	s = p11km_name_text(n);
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, "");
	free(s);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	                                            (const unsigned char *)"web", -1, -1, 0), 1);
	s = p11km_name_text(n);
	ck_assert_str_eq(s, "CN=web");
	free(s);
	X509_NAME_free(n);
}
END_TEST

START_TEST(rfc4514)
{
	X509_NAME *n = NULL;

	ck_assert_int_eq(p11km_name_parse("CN=www.example.com,O=Example\\, Inc.,C=US", &n), 0);
	ck_assert_int_eq(X509_NAME_entry_count(n), 3);
	/* written most specific first: the DER order is C, O, CN */
	expect_entry(n, 0, NID_countryName, "US");
	expect_entry(n, 1, NID_organizationName, "Example, Inc.");
	expect_entry(n, 2, NID_commonName, "www.example.com");
	/* each in its own RDN */
	ck_assert_int_ne(X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 0)),
	                 X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 1)));
	X509_NAME_free(n);
}
END_TEST

START_TEST(slash_form_same_name)
{
	X509_NAME *a = NULL, *b = NULL;

	ck_assert_int_eq(p11km_name_parse("CN=www.example.com,O=Example\\, Inc.,C=US", &a), 0);
	ck_assert_int_eq(p11km_name_parse("/C=US/O=Example, Inc./CN=www.example.com", &b), 0);
	ck_assert_int_eq(X509_NAME_cmp(a, b), 0);
	X509_NAME_free(a);
	X509_NAME_free(b);
	/* an escaped slash stays in the value */
	ck_assert_int_eq(p11km_name_parse("/CN=a\\/O=b", &a), 0);
	ck_assert_int_eq(X509_NAME_entry_count(a), 1);
	expect_entry(a, 0, NID_commonName, "a/O=b");
	X509_NAME_free(a);
}
END_TEST

START_TEST(multi_valued)
{
	X509_NAME *n = NULL;

	ck_assert_int_eq(p11km_name_parse("CN=a.example+OU=ops,O=Corp", &n), 0);
	ck_assert_int_eq(X509_NAME_entry_count(n), 3);
	expect_entry(n, 0, NID_organizationName, "Corp");
	expect_entry(n, 1, NID_commonName, "a.example");
	expect_entry(n, 2, NID_organizationalUnitName, "ops");
	ck_assert_int_eq(X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 1)),
	                 X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 2)));
	ck_assert_int_ne(X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 0)),
	                 X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 1)));
	X509_NAME_free(n);
}
END_TEST

START_TEST(escapes_and_spaces)
{
	X509_NAME *n = NULL;

	ck_assert_int_eq(p11km_name_parse("CN=a\\2Bb\\+c\\\"d\\\\e\\#\\;\\<\\>", &n), 0);
	ck_assert_int_eq(X509_NAME_entry_count(n), 1);
	expect_entry(n, 0, NID_commonName, "a+b+c\"d\\e#;<>");
	X509_NAME_free(n);
	ck_assert_int_eq(p11km_name_parse(" CN = www.example.com , O=x\\ ", &n), 0);
	expect_entry(n, 1, NID_commonName, "www.example.com");
	expect_entry(n, 0, NID_organizationName, "x ");
	X509_NAME_free(n);
	/* UTF-8 and \XX escapes of UTF-8 bytes */
	ck_assert_int_eq(p11km_name_parse("O=Gr\\C3\\BC\xc3\x9f" "e,CN=x", &n), 0);
	expect_entry(n, 1, NID_organizationName, "Gr\xc3\xbc\xc3\x9f" "e");
	X509_NAME_free(n);
}
END_TEST

static const char *const bad_subjects[] = {
	"", "CN", "=a", "CN=", "CN=a,", "XYZ=a", "CN=a,evil",
	"CN=a\\00b",            /* NUL */
	"CN=a\nO=b",            /* control character */
	"CN=a\x7f",             /* DEL */
	"CN=a\xc2\x85",         /* C1 control (NEL) */
	"CN=\xff\xfe",          /* invalid UTF-8 */
	"CN=\xc0\xaf",          /* overlong */
	"CN=\xed\xa0\x80",      /* surrogate */
	"CN=\xe2\x82",          /* truncated */
	"CN=a;O=b", "CN=a\"b", "CN=a<b", "CN=#0403616263",
	"CN=a\\q",              /* unknown escape */
	"CN=a\\4",              /* half a hex escape followed by nothing */
	"C=USA", "C=us",
	"/CN=a/XX=b",
};

START_TEST(rejected)
{
	for (size_t i = 0; i < sizeof(bad_subjects) / sizeof(bad_subjects[0]); i++) {
		X509_NAME *n = NULL;
		int r = p11km_name_parse(bad_subjects[i], &n);
		ck_assert_msg(r == P11KM_ERR_USAGE, "subject %zu accepted: '%s'", i, bad_subjects[i]);
		ck_assert_ptr_null(n);
	}
	p11km_error_clear();
}
END_TEST

START_TEST(upper_bounds)
{
	char s[512];
	X509_NAME *n = NULL;

	strcpy(s, "CN=");
	memset(s + 3, 'a', 64);
	s[67] = '\0';
	ck_assert_int_eq(p11km_name_parse(s, &n), 0);
	X509_NAME_free(n);
	n = NULL;
	strcat(s, "a");
	ck_assert_int_eq(p11km_name_parse(s, &n), P11KM_ERR_USAGE);
	ck_assert_ptr_null(n);
	/* the bound counts characters: 64 two-byte characters are fine */
	strcpy(s, "CN=");
	for (int i = 0; i < 64; i++)
		strcat(s, "\xc3\xbc");
	ck_assert_int_eq(p11km_name_parse(s, &n), 0);
	X509_NAME_free(n);
	n = NULL;
	strcat(s, "\xc3\xbc");
	ck_assert_int_eq(p11km_name_parse(s, &n), P11KM_ERR_USAGE);
	p11km_error_clear();
}
END_TEST

/* --- subjectAltName ------------------------------------------------------------ */

START_TEST(san_all_types)
{
	GENERAL_NAMES *g = NULL;
	static const unsigned char v4[4] = { 192, 0, 2, 1 };
	static const unsigned char v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	const struct { int type; const void *v; int len; } want[] = {
		{ GEN_DNS, "a.example", 9 }, { GEN_DNS, "*.b.example", 11 }, { GEN_IPADD, v4, 4 },
		{ GEN_IPADD, v6, 16 }, { GEN_EMAIL, "x@example.com", 13 },
		{ GEN_URI, "https://e.example/a,b", 21 }, { GEN_IPADD, v6, 16 },
	};

	ck_assert_int_eq(p11km_san_parse("DNS:a.example,dns:*.b.example,IP:192.0.2.1", &g), 0);
	ck_assert_int_eq(p11km_san_parse("IP:2001:db8::1,email:x@example.com,URI:https://e.example/a,b", &g), 0);
	ck_assert_int_eq(p11km_san_parse("IP:[2001:db8::1]", &g), 0);
	ck_assert_int_eq(sk_GENERAL_NAME_num(g), 7);
	ck_assert_int_eq(p11km_san_parse("DNS:c.example, DNS:d.example", &g), 0);
	ck_assert_int_eq(sk_GENERAL_NAME_num(g), 9);
	for (int i = 0; i < 7; i++) {
		int type;
		ASN1_STRING *s = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(g, i), &type);
		ck_assert_int_eq(type, want[i].type);
		ck_assert_int_eq(ASN1_STRING_length(s), want[i].len);
		ck_assert(memcmp(ASN1_STRING_get0_data(s), want[i].v, (size_t)want[i].len) == 0);
	}
	GENERAL_NAMES_free(g);
}
END_TEST

static const char *const bad_sans[] = {
	"IP:999.1.1.1", "IP:1.2.3", "IP:1.2.3.4.5", "IP:::g", "IP:", "DNS:", "DNS:a..b",
	"DNS:-a.example", "DNS:a-.example", "DNS:*.*.example", "DNS:a*.example", "DNS:*",
	"DNS:a_b.example", "DNS:192.0.2.1", "DNS:a b", "DNS:a\x01" "b",
	"DNS:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example",
	"email:nobody", "email:@example.com", "email:a@b_c", "email:a b@example.com",
	"URI:noscheme", "URI:http://a b", "URI:1http://x", "foo:bar", "a.example",
	"DNS:ok.example,IP:999.1.1.1",
};

START_TEST(san_rejected)
{
	for (size_t i = 0; i < sizeof(bad_sans) / sizeof(bad_sans[0]); i++) {
		GENERAL_NAMES *g = NULL;
		int r = p11km_san_parse(bad_sans[i], &g);
		ck_assert_msg(r == P11KM_ERR_USAGE, "SAN %zu accepted: '%s'", i, bad_sans[i]);
		ck_assert_ptr_null(g);
	}
	p11km_error_clear();
}
END_TEST

START_TEST(hostnames)
{
	ck_assert(p11km_is_hostname("www.example.com"));
	ck_assert(p11km_is_hostname("localhost"));
	ck_assert(p11km_is_hostname("*.example.com"));
	ck_assert(p11km_is_hostname("xn--bcher-kva.example"));
	ck_assert(!p11km_is_hostname("Example Inc"));
	ck_assert(!p11km_is_hostname("1.2.3.4"));
	ck_assert(!p11km_is_hostname("a.example."));
	ck_assert(p11km_is_ip("::1"));
	ck_assert(!p11km_is_ip("999.1.1.1"));
}
END_TEST

/* --- usages --------------------------------------------------------------------- */

START_TEST(key_usage)
{
	X509_EXTENSION *e = NULL;
	ASN1_BIT_STRING *bs;

	ck_assert_int_eq(p11km_ku_parse("digitalSignature, keyEncipherment", &e), 0);
	ck_assert_int_eq(OBJ_obj2nid(X509_EXTENSION_get_object(e)), NID_key_usage);
	ck_assert_int_eq(X509_EXTENSION_get_critical(e), 1);
	bs = X509V3_EXT_d2i(e);
	ck_assert_ptr_nonnull(bs);
	ck_assert_int_eq(ASN1_BIT_STRING_get_bit(bs, 0), 1);
	ck_assert_int_eq(ASN1_BIT_STRING_get_bit(bs, 1), 0);
	ck_assert_int_eq(ASN1_BIT_STRING_get_bit(bs, 2), 1);
	ASN1_BIT_STRING_free(bs);
	X509_EXTENSION_free(e);
	e = NULL;
	ck_assert_int_eq(p11km_ku_parse("digitalSignature,everything", &e), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_ku_parse("digitalSignature,,keyAgreement", &e), P11KM_ERR_USAGE);
	ck_assert_ptr_null(e);
	p11km_error_clear();
}
END_TEST

START_TEST(ext_key_usage)
{
	X509_EXTENSION *e = NULL;
	EXTENDED_KEY_USAGE *eku;

	ck_assert_int_eq(p11km_eku_parse("serverAuth,clientAuth,1.3.6.1.5.5.7.3.17", &e), 0);
	eku = X509V3_EXT_d2i(e);
	ck_assert_int_eq(sk_ASN1_OBJECT_num(eku), 3);
	ck_assert_int_eq(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_server_auth);
	ck_assert_int_eq(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 1)), NID_client_auth);
	ck_assert_int_eq(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 2)), NID_ipsec_IKE);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	X509_EXTENSION_free(e);
	e = NULL;
	ck_assert_int_eq(p11km_eku_parse("serverAuth,webAuth", &e), P11KM_ERR_USAGE);
	ck_assert_ptr_null(e);
	p11km_error_clear();
}
END_TEST

/* --- requests signed through the signer interface ---------------------------------- */

static EVP_PKEY *
keygen(const char *type, const char *param)
{
	EVP_PKEY *k = NULL;

	if (strcmp(type, "EC") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
	else if (strcmp(type, "RSA") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, type);
	ck_assert_ptr_nonnull(k);
	return k;
}

static void
sign_and_check(const char *type, const char *param, const char *digest, int pss, int want_nid)
{
	EVP_PKEY *k = keygen(type, param);
	struct p11km_signer *sg = NULL;
	X509_NAME *n = NULL;
	GENERAL_NAMES *g = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *e = NULL;
	X509_REQ *req = NULL;

	ck_assert_int_eq(p11km_name_parse("CN=www.example.com,O=Test", &n), 0);
	ck_assert_int_eq(p11km_san_parse("DNS:www.example.com,IP:192.0.2.1", &g), 0);
	e = X509V3_EXT_i2d(NID_subject_alt_name, 0, g);
	ck_assert_int_eq(p11km_exts_set(&exts, e), 0);
	ck_assert_int_eq(p11km_soft_signer_new(k, digest, pss, &sg), 0);
	ck_assert_int_eq(p11km_req_build(n, exts, sg, &req), 0);
	ck_assert_int_eq(X509_REQ_verify(req, k), 1);
	ck_assert_int_eq(X509_REQ_get_signature_nid(req), want_nid);
	ck_assert_int_eq(X509_NAME_cmp(X509_REQ_get_subject_name(req), n), 0);
	X509_REQ_free(req);
	p11km_signer_free(sg);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(g);
	X509_NAME_free(n);
	EVP_PKEY_free(k);
}

START_TEST(soft_signed_requests)
{
	sign_and_check("EC", "P-256", NULL, 0, NID_ecdsa_with_SHA256);
	sign_and_check("EC", "P-384", NULL, 0, NID_ecdsa_with_SHA384);
	sign_and_check("EC", "P-256", "sha512", 0, NID_ecdsa_with_SHA512);
	sign_and_check("RSA", NULL, NULL, 0, NID_sha256WithRSAEncryption);
	sign_and_check("RSA", NULL, "sha384", 1, NID_rsassaPss);
	sign_and_check("ED25519", NULL, NULL, 0, NID_ED25519);
}
END_TEST

START_TEST(signer_rejects)
{
	EVP_PKEY *ec = keygen("EC", "P-256"), *ed = keygen("ED25519", NULL);
	struct p11km_signer *sg = NULL;

	ck_assert_int_eq(p11km_soft_signer_new(ec, NULL, 1, &sg), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_soft_signer_new(ec, "md5", 0, &sg), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_soft_signer_new(ed, "sha256", 0, &sg), P11KM_ERR_USAGE);
	ck_assert_ptr_null(sg);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
	p11km_error_clear();
}
END_TEST

/* A signer that returns a wrong signature: the request is not returned. */
static int
bad_sign(struct p11km_signer *sg, const unsigned char *tbs, size_t len, unsigned char **sig,
         size_t *sig_len)
{
	*sig = calloc(1, 72);
	*sig_len = 72;
	(*sig)[0] = 0x30;
	(void)sg, (void)tbs, (void)len;
	return 0;
}

START_TEST(bad_signature_refused)
{
	EVP_PKEY *k = keygen("EC", "P-256");
	struct p11km_signer *sg = NULL;
	X509_NAME *n = NULL;
	X509_REQ *req = NULL;

	ck_assert_int_eq(p11km_soft_signer_new(k, NULL, 0, &sg), 0);
	sg->sign = bad_sign;
	ck_assert_int_eq(p11km_name_parse("CN=x", &n), 0);
	ck_assert_int_eq(p11km_req_build(n, NULL, sg, &req), P11KM_ERR_VERIFY);
	ck_assert_ptr_null(req);
	X509_NAME_free(n);
	p11km_signer_free(sg);
	EVP_PKEY_free(k);
	p11km_error_clear();
}
END_TEST

/* --- renewal extensions --------------------------------------------------------------- */

static X509 *
cert_with(const char *const *ext, size_t n, EVP_PKEY *k)
{
	X509 *c = X509_new();
	X509V3_CTX v3;

	ck_assert_ptr_nonnull(c);
	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 7);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_UTF8,
	                           (const unsigned char *)"renew.example", -1, -1, 0);
	X509_set_issuer_name(c, X509_get_subject_name(c));
	X509_gmtime_adj(X509_getm_notBefore(c), 0);
	X509_gmtime_adj(X509_getm_notAfter(c), 86400);
	X509_set_pubkey(c, k);
	X509V3_set_ctx(&v3, c, c, NULL, NULL, 0);
	for (size_t i = 0; i < n; i += 2) {
		X509_EXTENSION *e = X509V3_EXT_nconf(NULL, &v3, ext[i], ext[i + 1]);
		ck_assert_msg(e != NULL, "extension %s", ext[i]);
		X509_add_ext(c, e, -1);
		X509_EXTENSION_free(e);
	}
	ck_assert_int_gt(X509_sign(c, k, EVP_sha256()), 0);
	return c;
}

static int
has_nid(STACK_OF(X509_EXTENSION) *exts, int nid)
{
	return X509v3_get_ext_by_NID(exts, nid, -1) >= 0;
}

START_TEST(renewal_extensions)
{
	static const char *const leaf[] = {
		"subjectAltName", "DNS:renew.example,IP:192.0.2.7",
		"keyUsage", "critical,digitalSignature",
		"extendedKeyUsage", "serverAuth,clientAuth",
		"basicConstraints", "critical,CA:FALSE",
		"subjectKeyIdentifier", "hash",
		"authorityKeyIdentifier", "keyid",
		"crlDistributionPoints", "URI:http://crl.example/c.crl",
		"authorityInfoAccess", "OCSP;URI:http://ocsp.example/",
		"tlsfeature", "status_request",
	};
	static const char *const ca[] = {
		"basicConstraints", "critical,CA:TRUE",
		"keyUsage", "critical,keyCertSign,cRLSign",
		"subjectKeyIdentifier", "hash",
	};
	static const char *const odd[] = {
		"keyUsage", "critical,digitalSignature,keyEncipherment,keyAgreement",
		"nsComment", "OpenSSL Generated Certificate",
		"1.3.6.1.4.1.311.21.7", "DER:30:0a:06:08:2b:06:01:04:01:82:37:15",
		"1.3.6.1.4.1.311.21.10", "DER:30:0c:30:0a:06:08:2b:06:01:05:05:07:03:01",
	};
	EVP_PKEY *k = keygen("EC", "P-256");
	X509 *c = cert_with(leaf, sizeof(leaf) / sizeof(leaf[0]), k);
	STACK_OF(X509_EXTENSION) *exts = NULL;
	struct p11km_names dr = { 0 }, dku = { 0 };
	ASN1_BIT_STRING *ku;

	ck_assert_int_eq(p11km_req_exts_from_cert(c, EVP_PKEY_EC, &exts, &dr, &dku), 0);
	ck_assert_int_eq(sk_X509_EXTENSION_num(exts), 4);
	ck_assert(has_nid(exts, NID_subject_alt_name));
	ck_assert(has_nid(exts, NID_key_usage));
	ck_assert(has_nid(exts, NID_ext_key_usage));
	ck_assert(has_nid(exts, NID_tlsfeature));
	ck_assert_int_eq(dr.n, 5); /* basicConstraints CA:FALSE, SKI, AKI, CRLDP, AIA */
	ck_assert_int_eq(dku.n, 0);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	p11km_names_release(&dr);
	X509_free(c);

	c = cert_with(ca, sizeof(ca) / sizeof(ca[0]), k);
	ck_assert_int_eq(p11km_req_exts_from_cert(c, EVP_PKEY_EC, &exts, &dr, &dku), 0);
	ck_assert_int_eq(sk_X509_EXTENSION_num(exts), 2);
	ck_assert(has_nid(exts, NID_basic_constraints));
	ck_assert(!has_nid(exts, NID_subject_key_identifier));
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	p11km_names_release(&dr);
	X509_free(c);

	/* what the CA added and OpenSSL may not know is named; an EC key loses
	 * keyEncipherment, an RSA key keyAgreement */
	c = cert_with(odd, sizeof(odd) / sizeof(odd[0]), k);
	ck_assert_int_eq(p11km_req_exts_from_cert(c, EVP_PKEY_EC, &exts, &dr, &dku), 0);
	ck_assert_int_eq(sk_X509_EXTENSION_num(exts), 1);
	ck_assert_int_eq(dr.n, 3);
	ck_assert_str_eq(dr.v[0], "Netscape Comment");
	ck_assert_str_eq(dr.v[1], "Microsoft certificate template (1.3.6.1.4.1.311.21.7)");
	ck_assert_str_eq(dr.v[2], "Microsoft application policies (1.3.6.1.4.1.311.21.10)");
	ck_assert_int_eq(dku.n, 1);
	ck_assert_str_eq(dku.v[0], "keyEncipherment");
	ku = X509V3_EXT_d2i(sk_X509_EXTENSION_value(exts, 0));
	ck_assert(ku != NULL);
	ck_assert(ASN1_BIT_STRING_get_bit(ku, 0) && ASN1_BIT_STRING_get_bit(ku, 4));
	ck_assert(!ASN1_BIT_STRING_get_bit(ku, 2));
	ck_assert(X509_EXTENSION_get_critical(sk_X509_EXTENSION_value(exts, 0)));
	ASN1_BIT_STRING_free(ku);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	p11km_names_release(&dr);
	p11km_names_release(&dku);
	ck_assert_int_eq(p11km_req_exts_from_cert(c, EVP_PKEY_RSA, &exts, &dr, &dku), 0);
	ck_assert_int_eq(dku.n, 1);
	ck_assert_str_eq(dku.v[0], "keyAgreement");
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	p11km_names_release(&dr);
	p11km_names_release(&dku);
	ck_assert_int_eq(p11km_req_exts_from_cert(c, EVP_PKEY_ED25519, &exts, &dr, &dku), 0);
	ck_assert_int_eq(dku.n, 2);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	p11km_names_release(&dr);
	p11km_names_release(&dku);
	X509_free(c);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(certificate_input)
{
	static const unsigned char garbage[] = { 0x30, 0x82, 0x01, 0x00, 0x01, 0x02 };
	EVP_PKEY *k = keygen("EC", "P-256");
	struct p11km_signer *sg = NULL;
	X509_NAME *n = NULL;
	X509_REQ *req = NULL;
	unsigned char *der = NULL;
	int len;
	X509 *c = NULL;

	ck_assert_int_eq(p11km_cert_from_der(garbage, sizeof(garbage), "x", &c), P11KM_ERR_INPUT);
	ck_assert_int_eq(p11km_soft_signer_new(k, NULL, 0, &sg), 0);
	ck_assert_int_eq(p11km_name_parse("CN=x", &n), 0);
	ck_assert_int_eq(p11km_req_build(n, NULL, sg, &req), 0);
	len = i2d_X509_REQ(req, &der);
	ck_assert_int_gt(len, 0);
	ck_assert_int_eq(p11km_cert_from_der(der, (size_t)len, "x", &c), P11KM_ERR_INPUT);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_INPUT), "certificate request"));
	ck_assert_ptr_null(c);
	OPENSSL_free(der);
	X509_REQ_free(req);
	X509_NAME_free(n);
	p11km_signer_free(sg);
	EVP_PKEY_free(k);
	p11km_error_clear();
}
END_TEST

static Suite *
name_suite(void)
{
	Suite *s = suite_create("name");
	TCase *tn = tcase_create("subject");
	TCase *ts = tcase_create("san");
	TCase *tr = tcase_create("request");

	tcase_add_test(tn, name_text_empty);
	tcase_add_test(tn, rfc4514);
	tcase_add_test(tn, slash_form_same_name);
	tcase_add_test(tn, multi_valued);
	tcase_add_test(tn, escapes_and_spaces);
	tcase_add_test(tn, rejected);
	tcase_add_test(tn, upper_bounds);
	tcase_add_test(ts, san_all_types);
	tcase_add_test(ts, san_rejected);
	tcase_add_test(ts, hostnames);
	tcase_add_test(ts, key_usage);
	tcase_add_test(ts, ext_key_usage);
	tcase_add_test(tr, soft_signed_requests);
	tcase_add_test(tr, signer_rejects);
	tcase_add_test(tr, bad_signature_refused);
	tcase_add_test(tr, renewal_extensions);
	tcase_add_test(tr, certificate_input);
	tcase_set_timeout(tr, 60);
	suite_add_tcase(s, tn);
	suite_add_tcase(s, ts);
	suite_add_tcase(s, tr);
	return s;
}

int
main(void)
{
		return p11km_check_run(name_suite());
}
