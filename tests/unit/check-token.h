/* tests/unit/check-token.h: the fixture of the unit tests that call the
 * operations on a SoftHSM2 token (test-op-req.c, test-op-track.c): a
 * scratch directory with its own SoftHSM2 configuration, token U and key
 * k made by the p11km binary ($P11KM), and a software CA for certificates.
 * Include it once, after check.h, with CHECK_TOKEN_NAME defined. */
#ifndef P11KM_TESTS_CHECK_TOKEN_H
#define P11KM_TESTS_CHECK_TOKEN_H
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "check-run.h"
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

/* The fixture: token U (user PIN 1234 in DIR/pin) with the EC key k, made by
 * the p11km binary; ctx set to its module and PIN source. */
static void
setup(void)
{
	char conf[256];

	ck_assert_ptr_nonnull(getenv("P11KM"));
	ck_assert_ptr_nonnull(getenv("SOFTHSM2_MODULE"));
	p11km_check_tmpdir(dir, sizeof(dir), CHECK_TOKEN_NAME);
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
#endif
