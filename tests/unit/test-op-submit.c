/* test-op-submit.c: p11km_req_submit() called directly, no argv, on a
 * SoftHSM2 token the fixture makes (the p11km binary initialises it and
 * generates the key), to a certmonger CA helper that signs with openssl:
 * with install, the chain goes onto the token in the same login
 * (pkcs11-tool reads it back), and a wrong PIN is refused before the CA is
 * asked (the helper never runs); p11km_ca_roots() into a pem-bundle: store. */
#include "config.h"

#include <check.h>
#include "check-run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "p11km/cert.h"
#include "p11km/op-ca.h"
#include "p11km/util.h"

#define KEY_URI "pkcs11:token=U;object=k"

static char dir[64], path[160], pin_spec[96];
static struct p11km_ctx ctx;

static const char *
at(const char *name)
{
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static void
put(const char *name, const char *text, mode_t mode)
{
	FILE *fp;

	ck_assert_ptr_nonnull(fp = fopen(at(name), "w"));
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
}

static void
sh(const char *cmd)
{
	ck_assert_msg(system(cmd) == 0, "failed: %s", cmd);
}

static void
setup(void)
{
	char text[1024];

	ck_assert_ptr_nonnull(getenv("P11KM"));
	ck_assert_ptr_nonnull(getenv("SOFTHSM2_MODULE"));
	p11km_check_tmpdir(dir, sizeof(dir), "op-submit");
	snprintf(text, sizeof(text), "directories.tokendir = %s/tokens\n"
	         "objectstore.backend = file\nlog.level = ERROR\n", dir);
	put("softhsm2.conf", text, 0600);
	setenv("SOFTHSM2_CONF", path, 1);
	ck_assert_int_eq(mkdir(at("tokens"), 0700), 0);
	setenv("P11KM_MODULE", getenv("SOFTHSM2_MODULE"), 1);
	setenv("P11KM_AUDIT_LOG", at("audit.log"), 1);
	setenv("P11KM_LOCK_DIR", dir, 1);
	put("pin", "1234", 0600);
	put("badpin", "9999", 0600);
	put("sopin", "12345678", 0600);
	snprintf(text, sizeof(text), "'%s' token init --label U --so-pin-source file:%s/sopin "
	         "--pin-source file:%s/pin >/dev/null && '%s' key generate pkcs11:token=U "
	         "--type ec:p256 --label k --pin-source file:%s/pin >/dev/null", getenv("P11KM"),
	         dir, dir, getenv("P11KM"), dir);
	ck_assert_msg(system(text) == 0, "failed: %s", text);
	/* the CA, and a certmonger helper that signs what it gets with it */
	snprintf(text, sizeof(text), "cd '%s' && openssl req -x509 -newkey ec -pkeyopt "
	         "ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -subj /CN=op-submit-ca "
	         "-days 30 2>/dev/null", dir);
	sh(text);
	snprintf(text, sizeof(text), "#!/bin/sh\n[ \"$CERTMONGER_OPERATION\" = FETCH-ROOTS ] && "
	         "exec cat %s/ca.pem\ntouch %s/helper-ran\n"
	         "printf '%%s\\n' \"$CERTMONGER_CSR\" > %s/h.csr\n"
	         "exec openssl x509 -req -in %s/h.csr -CA %s/ca.pem -CAkey %s/ca.key "
	         "-set_serial 7 -days 30 2>/dev/null\n", dir, dir, dir, dir, dir, dir);
	put("helper", text, 0755);
	snprintf(pin_spec, sizeof(pin_spec), "file:%s/pin", dir);
	p11km_ctx_init(&ctx);
	ctx.module_opt = getenv("SOFTHSM2_MODULE");
	ctx.pin_source_opt = pin_spec;
	ctx.lock_tokens = 1;
}

static void
teardown(void)
{
	p11km_ctx_release(&ctx);
	p11km_check_tmpdir_remove(dir);
}

/* A request for the token's key (req new, the operation) and the CA profile. */
static void
request_and_profile(void)
{
	struct p11km_req_opts ro = { .key = KEY_URI, .subject = "CN=web.example.test",
	                             .type = -1 };
	struct p11km_req_result rr;
	char helper[160], cfg[160];
	struct p11km_ca_add_opts a = { .name = "lcl", .kind = "helper" };
	struct p11km_ca_profile *p = NULL;

	snprintf(cfg, sizeof(cfg), "%s", at("ca.d"));
	snprintf(helper, sizeof(helper), "%s", at("helper"));
	ro.out = at("web.csr");
	ck_assert_int_eq(p11km_req_new(&ctx, &ro, &rr), 0);
	p11km_req_result_release(&rr);
	a.config_dir = cfg;
	a.command = helper;
	ck_assert_int_eq(p11km_ca_add(&ctx, &a, &p), 0);
	p11km_ca_profile_free(p);
}

START_TEST(submit_and_install)
{
	struct p11km_submit_opts o = { .ca = "lcl", .install = 1, .key_uri = KEY_URI };
	struct p11km_submit_result res;
	char csr[160], cfg[160], state[160], ca[160], cmd[256], *fp;
	unsigned char *der = NULL, *tok = NULL;
	size_t tok_len = 0;
	BIO *b;
	X509 *leaf;
	int n;

	request_and_profile();
	snprintf(csr, sizeof(csr), "%s", at("web.csr"));
	snprintf(cfg, sizeof(cfg), "%s", at("ca.d"));
	snprintf(state, sizeof(state), "%s", at("state"));
	snprintf(ca, sizeof(ca), "%s", at("ca.pem"));
	o.request = csr;
	o.config_dir = cfg;
	o.state_dir = state;
	o.verify_ca_file = ca;
	ck_assert_int_eq(p11km_req_submit(&ctx, &o, &res), 0);
	ck_assert_str_eq(res.ca, "lcl");
	ck_assert_str_eq(res.kind, "helper");
	ck_assert_int_eq(res.installed, 1);
	ck_assert_uint_ge(res.install.n_acts, 1);
	ck_assert_str_eq(res.install.subject, "CN=web.example.test");
	/* the install's leaf is the chain's first certificate */
	ck_assert_ptr_nonnull(b = BIO_new_mem_buf(res.chain, (int)res.chain_len));
	ck_assert_ptr_nonnull(leaf = PEM_read_bio_X509(b, NULL, NULL, NULL));
	BIO_free(b);
	ck_assert_ptr_nonnull(fp = p11km_cert_fingerprint(leaf));
	ck_assert_str_eq(res.install.sha256, fp);
	free(fp);
	/* pkcs11-tool finds it on the token, next to the key */
	snprintf(cmd, sizeof(cmd), "pkcs11-tool --module \"$SOFTHSM2_MODULE\" --token-label U "
	         "--read-object --type cert --label k -o '%s/token.der' >/dev/null 2>&1", dir);
	sh(cmd);
	ck_assert_int_eq(p11km_read_file(at("token.der"), 65536, &tok, &tok_len), 0);
	ck_assert_int_gt(n = i2d_X509(leaf, &der), 0);
	ck_assert_uint_eq(tok_len, (size_t)n);
	ck_assert_int_eq(memcmp(tok, der, tok_len), 0);
	X509_free(leaf);
	OPENSSL_free(der);
	free(tok);
	p11km_submit_result_release(&res);
}
END_TEST

START_TEST(wrong_pin_asks_no_ca)
{
	struct p11km_submit_opts o = { .ca = "lcl", .install = 1, .key_uri = KEY_URI };
	struct p11km_submit_result res;
	char csr[160], cfg[160], state[160], bad[96];
	struct stat st;

	request_and_profile();
	snprintf(csr, sizeof(csr), "%s", at("web.csr"));
	snprintf(cfg, sizeof(cfg), "%s", at("ca.d"));
	snprintf(state, sizeof(state), "%s", at("state"));
	snprintf(bad, sizeof(bad), "file:%s/badpin", dir);
	o.request = csr;
	o.config_dir = cfg;
	o.state_dir = state;
	ctx.pin_source_opt = bad;
	ck_assert_int_eq(p11km_req_submit(&ctx, &o, &res), P11KM_ERR_LOGIN);
	ck_assert_ptr_null(res.chain);
	ck_assert_int_eq(res.installed, 0);
	ck_assert_int_ne(stat(at("helper-ran"), &st), 0); /* the CA was never asked */
	/* without install: the same request goes to the CA, no token needed */
	o.install = 0;
	o.key_uri = NULL;
	ck_assert_int_eq(p11km_req_submit(&ctx, &o, &res), 0);
	ck_assert_int_eq(stat(at("helper-ran"), &st), 0);
	ck_assert_ptr_nonnull(strstr(res.chain, "BEGIN CERTIFICATE"));
	p11km_submit_result_release(&res);
}
END_TEST

/* ca roots --to: the helper's FETCH-ROOTS answer into a pem-bundle: store. */
START_TEST(ca_roots_to_a_store)
{
	char cfg[160], store[192], cmd[512], *to[1] = { store };
	struct p11km_ca_opts o = { .name = "lcl", .to = (const char *const *)to, .n_to = 1 };
	struct p11km_ca_roots_result res;

	request_and_profile();
	snprintf(cfg, sizeof(cfg), "%s", at("ca.d"));
	snprintf(store, sizeof(store), "pem-bundle:%s", at("bundle.pem"));
	o.config_dir = cfg;
	o.dry_run = 1;
	ck_assert_int_eq(p11km_ca_roots(&ctx, &o, &res), 0);
	ck_assert_int_eq(res.installed, 1);
	p11km_ca_roots_result_release(&res);
	ck_assert_int_ne(access(at("bundle.pem"), F_OK), 0); /* a dry run writes nothing */
	o.dry_run = 0;
	ck_assert_int_eq(p11km_ca_roots(&ctx, &o, &res), 0);
	ck_assert_ptr_nonnull(strstr(res.pem, "BEGIN CERTIFICATE"));
	p11km_ca_roots_result_release(&res);
	/* openssl: the bundle holds the CA's certificate */
	snprintf(cmd, sizeof(cmd), "cd '%s' && test \"$(openssl x509 -in bundle.pem -noout "
	         "-fingerprint -sha256)\" = \"$(openssl x509 -in ca.pem -noout -fingerprint "
	         "-sha256)\"", dir);
	sh(cmd);
	o.n_to = 0;
	o.dry_run = 1;                                       /* --dry-run without --to */
	ck_assert_int_eq(p11km_ca_roots(&ctx, &o, &res), P11KM_ERR_USAGE);
}
END_TEST

static Suite *
op_submit_suite(void)
{
	Suite *s = suite_create("op-submit");
	TCase *tc = tcase_create("op-submit");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, submit_and_install);
	tcase_add_test(tc, wrong_pin_asks_no_ca);
	tcase_add_test(tc, ca_roots_to_a_store);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	p11km_log_set(P11KM_LOG_QUIET, 0);
	return p11km_check_run(op_submit_suite());
}
