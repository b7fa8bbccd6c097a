/* test-op-req.c: the request operations called directly, no argv:
 * p11km_req_new() and p11km_req_renew() on a SoftHSM2 token the fixture
 * makes (the p11km binary initialises it and generates the key), the
 * requests judged by OpenSSL (the signature verifies with the token's
 * public key, the subject), and a bad subject refused before anything is
 * written. */
#include "config.h"

#include <check.h>
#include "check-run.h"
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

#define KEY_URI "pkcs11:token=U;object=k"

static char dir[64], pin_spec[96];
static struct p11km_ctx ctx;

static void
put(const char *name, const char *text)
{
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(chmod(path, 0600), 0);
}

/* Run the p11km binary with ARGS (a shell word list). */
static void
p11km(const char *args)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "'%s' %s >/dev/null", getenv("P11KM"), args);
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static void
setup(void)
{
	char conf[256];

	ck_assert_ptr_nonnull(getenv("P11KM"));
	ck_assert_ptr_nonnull(getenv("SOFTHSM2_MODULE"));
	p11km_check_tmpdir(dir, sizeof(dir), "op-req");
	snprintf(conf, sizeof(conf), "directories.tokendir = %s/tokens\n"
	         "objectstore.backend = file\nlog.level = ERROR\n", dir);
	put("softhsm2.conf", conf);
	snprintf(conf, sizeof(conf), "%s/tokens", dir);
	ck_assert_int_eq(mkdir(conf, 0700), 0);
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
	setenv("SOFTHSM2_CONF", conf, 1);
	setenv("P11KM_MODULE", getenv("SOFTHSM2_MODULE"), 1);
	put("pin", "1234");
	put("sopin", "12345678");
	snprintf(conf, sizeof(conf), "%s/audit.log", dir);
	setenv("P11KM_AUDIT_LOG", conf, 1);
	snprintf(conf, sizeof(conf), "token init --label U --so-pin-source file:%s/sopin "
	         "--pin-source file:%s/pin", dir, dir);
	p11km(conf);
	snprintf(conf, sizeof(conf), "key generate pkcs11:token=U --type ec:p256 --label k "
	         "--pin-source file:%s/pin", dir);
	p11km(conf);
	snprintf(pin_spec, sizeof(pin_spec), "file:%s/pin", dir);
	p11km_ctx_init(&ctx);
	ctx.module_opt = getenv("SOFTHSM2_MODULE");
	ctx.pin_source_opt = pin_spec;
}

static void
teardown(void)
{
	p11km_ctx_release(&ctx);
	p11km_check_tmpdir_remove(dir);
}

/* The PEM request of res, parsed by OpenSSL; its signature must verify. */
static X509_REQ *
request_of(const struct p11km_req_result *res)
{
	BIO *b = BIO_new_mem_buf(res->request, (int)res->request_len);
	X509_REQ *req;

	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL));
	BIO_free(b);
	ck_assert_int_eq(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
	return req;
}

static void
subject_is(const X509_NAME *n, const char *want)
{
	char *s = X509_NAME_oneline(n, NULL, 0);

	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s, want);
	OPENSSL_free(s);
}

/* A certificate for req's key and subject, issued by a software CA, in DIR/cert.pem. */
static X509 *
issue(X509_REQ *req)
{
	EVP_PKEY *ca = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *in = X509_NAME_new();
	char path[128];
	FILE *fp;

	ck_assert_ptr_nonnull(ca);
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(X509_NAME_add_entry_by_txt(in, "CN", MBSTRING_ASC,
	                 (const unsigned char *)"unit CA", -1, -1, 0), 1);
	ck_assert_int_eq(X509_set_version(x, 2), 1);
	ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
	ck_assert_int_eq(X509_set_issuer_name(x, in), 1);
	ck_assert_int_eq(X509_set_subject_name(x, X509_REQ_get_subject_name(req)), 1);
	ck_assert_int_eq(X509_set_pubkey(x, X509_REQ_get0_pubkey(req)), 1);
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	ck_assert_int_gt(X509_sign(x, ca, EVP_sha256()), 0);
	snprintf(path, sizeof(path), "%s/cert.pem", dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	ck_assert_int_eq(PEM_write_X509(fp, x), 1);
	ck_assert_int_eq(fclose(fp), 0);
	X509_NAME_free(in);
	EVP_PKEY_free(ca);
	return x;
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
