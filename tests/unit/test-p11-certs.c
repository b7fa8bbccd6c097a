/* test-p11-certs.c: a token's certificates read once for a batch
 * (p11km_tokcerts_load, p11-certs.c) on a SoftHSM2 token the fixture makes:
 * every search it answers from memory gives the handles SoftHSM2 gives for
 * the same template, before and after this process relabels, creates and
 * destroys certificates; a template it cannot answer goes to the token; a
 * token with more certificates than the limit is not read. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "p11km/op.h"
#include "p11km/p11.h"
#include "p11km/store.h"
#include "p11km/uri.h"
#include "p11km/util.h"

#define CHECK_TOKEN_NAME "p11-certs"
#include "check-token.h"

/* the fixture's request helpers are not needed here */
static void *const fixture_unused[] __attribute__((unused)) = { (void *)request_of, (void *)issue };

static struct p11km_token *tok;
static struct p11km_session s;
static struct p11km_uri *uri;

/* A self-signed certificate CN=cn (a software key: the cache holds only
 * certificate objects). */
static X509 *
cert(const char *cn, long serial)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	ck_assert_ptr_nonnull(k);
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn,
	                 -1, -1, 0), 1);
	ck_assert_int_eq(X509_set_version(x, 2), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
	ck_assert_int_eq(X509_set_issuer_name(x, n), 1);
	ck_assert_int_eq(X509_set_subject_name(x, n), 1);
	ck_assert_int_eq(X509_set_pubkey(x, k), 1);
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	ck_assert_int_gt(X509_sign(x, k, EVP_sha256()), 0);
	X509_NAME_free(n);
	EVP_PKEY_free(k);
	return x;
}

static CK_OBJECT_HANDLE
create(const char *label, unsigned char id)
{
	X509 *x = cert(label, id);
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;

	ck_assert_int_eq(p11km_tok_cert_create(&s, x, label, &id, 1, P11KM_CAT_USER, 0, &h), 0);
	X509_free(x);
	return h;
}

/* The certificates labelled label: how many, and the same handles from the
 * batch's copy as from the token itself. */
static size_t
labelled(const char *label)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE t[3] = { { CKA_CLASS, &cls, sizeof(cls) },
	                      { CKA_LABEL, (void *)label, strlen(label) },
	                      { CKA_TOKEN, &yes, sizeof(yes) } };
	struct p11km_tokcerts *keep = s.certs;
	CK_OBJECT_HANDLE *mem = NULL, *tokh = NULL;
	size_t nm = 0, nt = 0;

	ck_assert_int_eq(p11km_tokcerts_search(&s, t, 3, 0, &mem, &nm), 1); /* from memory */
	s.certs = NULL;
	ck_assert_int_eq(p11km_find(&s, t, 2, 0, &tokh, &nt), 0); /* from the token */
	s.certs = keep;
	ck_assert_uint_eq(nm, nt);
	for (size_t i = 0; i < nm; i++) {
		int seen = 0;
		for (size_t j = 0; j < nt; j++)
			seen |= mem[i] == tokh[j];
		ck_assert_msg(seen, "handle %lu of '%s' is not the token's", (unsigned long)mem[i], label);
	}
	free(mem);
	free(tokh);
	return nm;
}

static void
open_token(void)
{
	ck_assert_int_eq(p11km_uri_parse("pkcs11:token=U", &uri), 0);
	ck_assert_int_eq(p11km_token_open(&ctx, uri, P11KM_OPEN_RW | P11KM_OPEN_LOGIN |
	                                  P11KM_OPEN_INITIALISED, &tok, &s), 0);
}

static void
close_token(void)
{
	p11km_tokcerts_free(s.certs);
	s.certs = NULL;
	p11km_session_close(&s);
	p11km_token_free(tok);
	p11km_uri_free(uri);
}

START_TEST(follows_the_changes)
{
	struct p11km_tokcerts *c = NULL;
	struct p11km_object o, *objs = NULL;
	CK_OBJECT_HANDLE ha, hb, hc;
	unsigned char id2 = 2;
	size_t n = 0;

	open_token();
	ha = create("a", 1);
	hb = create("b", 2);
	ck_assert_int_eq(p11km_tokcerts_load(&s, 16, &c), 0);
	ck_assert_ptr_nonnull(c);
	s.certs = c;
	ck_assert_uint_eq(labelled("a"), 1);
	ck_assert_uint_eq(labelled("b"), 1);
	ck_assert_uint_eq(labelled("none"), 0);
	/* a read from memory is the token's object */
	ck_assert_int_eq(p11km_object_read(&s, ha, &o), 0);
	ck_assert_str_eq(o.label, "a");
	ck_assert_int_eq(o.cls, CKO_CERTIFICATE);
	ck_assert_uint_gt(o.value_len, 0);
	p11km_object_release(&o);
	/* relabelled by this process */
	ck_assert_int_eq(p11km_tok_relabel(&s, hb, "b.retired-20260101"), 0);
	ck_assert_uint_eq(labelled("b"), 0);
	ck_assert_uint_eq(labelled("b.retired-20260101"), 1);
	ck_assert_int_eq(p11km_tok_certs_by_id(&s, &id2, 1, NULL, &objs, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(objs[0].label, "b.retired-20260101");
	p11km_objects_free(objs, n);
	/* created by this process: found by its template, read from the token */
	hc = create("c", 3);
	ck_assert_uint_eq(labelled("c"), 1);
	ck_assert_int_eq(p11km_object_read(&s, hc, &o), 0);
	ck_assert_str_eq(o.label, "c");
	p11km_object_release(&o);
	/* destroyed */
	ck_assert_int_eq(p11km_tok_destroy(&s, ha), 0);
	ck_assert_uint_eq(labelled("a"), 0);
	close_token();
}
END_TEST

START_TEST(asks_the_token)
{
	struct p11km_tokcerts *c = NULL;
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE, pc = CKO_PRIVATE_KEY;
	CK_DATE d;
	CK_ATTRIBUTE dated[2] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_START_DATE, &d, sizeof(d) } };
	CK_ATTRIBUTE keys[1] = { { CKA_CLASS, &pc, sizeof(pc) } };
	CK_OBJECT_HANDLE *h = NULL;
	size_t n = 0;

	open_token();
	(void)create("a", 1);
	(void)create("b", 2);
	ck_assert_int_eq(p11km_tokcerts_load(&s, 16, &c), 0);
	s.certs = c;
	memset(&d, '0', sizeof(d));
	/* an attribute it does not keep, and another class: the token answers */
	ck_assert_int_eq(p11km_tokcerts_search(&s, dated, 2, 0, &h, &n), 0);
	ck_assert_int_eq(p11km_tokcerts_search(&s, keys, 1, 0, &h, &n), 0);
	ck_assert_int_eq(p11km_find(&s, keys, 1, 0, &h, &n), 0);
	ck_assert_uint_eq(n, 1); /* the fixture's key k */
	free(h);
	/* more certificates than the limit: not read */
	s.certs = NULL;
	p11km_tokcerts_free(c);
	ck_assert_int_eq(p11km_tokcerts_load(&s, 1, &c), 0);
	ck_assert_ptr_null(c);
	close_token();
}
END_TEST

int
main(void)
{
	Suite *su = suite_create("p11-certs");
	TCase *tc = tcase_create("token");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, follows_the_changes);
	tcase_add_test(tc, asks_the_token);
	suite_add_tcase(su, tc);
	return p11km_check_run(su);
}
