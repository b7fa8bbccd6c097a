/* test-op-req.c: the request operations called directly, no argv:
 * p11km_req_new() and p11km_req_renew() on a SoftHSM2 token the fixture
 * makes (the p11km binary initialises it and generates the key), the
 * requests judged by OpenSSL (the signature verifies with the token's
 * public key, the subject), and a bad subject refused before anything is
 * written. */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "p11km/op.h"
#include "p11km/p11.h"
#include "p11km/util.h"

#define CHECK_TOKEN_NAME "op-req"
#include "check-token.h"

static void
subject_is(const X509_NAME *n, const char *want)
{
	char *s = X509_NAME_oneline(n, NULL, 0);

	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, want);
	OPENSSL_free(s);
}

START_TEST(new_then_renew)
{
	struct p11km_req_opts o = { 0 };
	struct p11km_req_result res;
	const char *sans[] = { "DNS:www.example.org" };
	char cert_path[128], hex[2 * EVP_MAX_MD_SIZE + 1];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	X509_REQ *req, *renewal;
	X509 *cert;

	o.key = KEY_URI;
	o.subject = "CN=www.example.org,O=p11km unit";
	o.sans = sans;
	o.n_sans = 1;
	o.type = -1;
	ck_assert_int_eq(p11km_req_new(&ctx, &o, &res), 0);
	ck_assert_int_eq(res.renew, 0);
	ck_assert_ptr_nonnull(strstr(res.key_uri, "object=k"));
	req = request_of(&res);
	subject_is(X509_REQ_get_subject_name(req), "/O=p11km unit/CN=www.example.org");
	ck_assert_uint_eq(res.san.n, 1);
	ck_assert_str_eq(res.san.v[0], "DNS:www.example.org");
	p11km_req_result_release(&res);

	/* the renewal of the certificate issued for it: same key, same subject */
	cert = issue(req);
	snprintf(cert_path, sizeof(cert_path), "%s/cert.pem", dir);
	memset(&o, 0, sizeof(o));
	o.cert = cert_path;
	o.key = KEY_URI;
	o.type = -1;
	ck_assert_int_eq(p11km_req_renew(&ctx, &o, &res), 0);
	ck_assert_int_eq(res.renew, 1);
	ck_assert_int_eq(res.rekey, 0);
	renewal = request_of(&res);
	subject_is(X509_REQ_get_subject_name(renewal), "/O=p11km unit/CN=www.example.org");
	ck_assert_int_eq(EVP_PKEY_eq(X509_REQ_get0_pubkey(renewal), X509_get0_pubkey(cert)), 1);
	ck_assert_int_eq(X509_digest(cert, EVP_sha256(), md, &mdlen), 1);
	for (unsigned int i = 0; i < mdlen; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	ck_assert_ptr_nonnull(res.renews);
	ck_assert_int_eq(strcasecmp(res.renews, hex), 0);
	p11km_req_result_release(&res);
	X509_REQ_free(renewal);
	X509_REQ_free(req);
	X509_free(cert);
}
END_TEST

START_TEST(bad_subject)
{
	struct p11km_req_opts o = { 0 };
	struct p11km_req_result res;
	char out[128];

	snprintf(out, sizeof(out), "%s/bad.csr", dir);
	o.key = KEY_URI;
	o.subject = "CN";
	o.out = out;
	o.type = -1;
	ck_assert_int_eq(p11km_req_new(&ctx, &o, &res), P11KM_ERR_USAGE);
	ck_assert_ptr_null(res.request);
	ck_assert_int_ne(access(out, F_OK), 0);
	/* a good subject writes it there: the path was not the reason */
	o.subject = "CN=ok";
	ck_assert_int_eq(p11km_req_new(&ctx, &o, &res), 0);
	ck_assert_int_eq(access(out, F_OK), 0);
	p11km_req_result_release(&res);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("op-req");
	TCase *tc = tcase_create("softhsm2");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, new_then_renew);
	tcase_add_test(tc, bad_subject);
	suite_add_tcase(s, tc);
	return p11km_check_run(s);
}
