/* test-op-object.c: the token and object operations called directly, without
 * argv, on a SoftHSM2 token the test makes in a scratch directory: token
 * init, key generate, object list, relabel, export and delete, and the
 * refusals (an ambiguous URI, a private key without force) that change
 * nothing. */
#include "config.h"

#include <check.h>
#include "check-run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p11km/op-token.h"
#include "p11km/util.h"

static char tmpdir[64], conf[128], pin[128], sopin[128], lockdir[128];
static struct p11km_ctx ctx;

static void
write_file(const char *path, const char *text)
{
	FILE *f;

	umask(077);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

static void
keygen(const char *label)
{
	struct p11km_keygen_opts o = { .uri = "pkcs11:token=unit", .type = P11KM_KEY_EC_P256,
	                               .label = label };
	struct p11km_keygen_result res;

	ck_assert_int_eq(p11km_key_generate(&ctx, &o, &res), 0);
	ck_assert_str_eq(res.label, label);
	ck_assert_str_eq(res.token, "unit");
	ck_assert_ptr_nonnull(strstr(res.uri, "type=private"));
	ck_assert_int_eq(res.sensitive, 1);
	ck_assert_int_eq(res.extractable, 0);
	p11km_keygen_result_release(&res);
}

/* A fresh SoftHSM2 token "unit" (token init through the operation) with
 * two EC key pairs, k1 and k2. */
static void
setup(void)
{
	const char *module = getenv("SOFTHSM2_MODULE");
	struct p11km_token_init_opts io = { .label = "unit" };
	struct p11km_token_init_result ir;
	char text[256];

	ck_assert_msg(module != NULL && access(module, R_OK) == 0,
	              "SOFTHSM2_MODULE (the SoftHSM2 module) is needed");
	p11km_check_tmpdir(tmpdir, sizeof(tmpdir), "op-object");
	snprintf(text, sizeof(text), "%s/tokens", tmpdir);
	ck_assert_int_eq(mkdir(text, 0700), 0);
	snprintf(lockdir, sizeof(lockdir), "%s/locks", tmpdir);
	ck_assert_int_eq(mkdir(lockdir, 0700), 0);
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", tmpdir);
	snprintf(text, sizeof(text), "directories.tokendir = %s/tokens\nobjectstore.backend = file\n"
	         "log.level = ERROR\n", tmpdir);
	write_file(conf, text);
	ck_assert_int_eq(setenv("SOFTHSM2_CONF", conf, 1), 0);
	snprintf(pin, sizeof(pin), "file:%s/pin", tmpdir);
	write_file(pin + 5, "1234");
	snprintf(sopin, sizeof(sopin), "file:%s/sopin", tmpdir);
	write_file(sopin + 5, "12345678");

	p11km_ctx_init(&ctx);
	ctx.module_opt = module;
	ctx.pin_source_opt = pin;
	ctx.lock_dir_opt = lockdir;
	ctx.lock_tokens = 1;
	io.so_pin_source = sopin;
	io.pin_source = pin;
	ck_assert_int_eq(p11km_token_init(&ctx, &io, &ir), 0);
	ck_assert_str_eq(ir.label, "unit");
	ck_assert_ptr_nonnull(strstr(ir.uri, "token=unit"));
	p11km_token_init_result_release(&ir);
	keygen("k1");
	keygen("k2");
}

static void
teardown(void)
{
	p11km_ctx_release(&ctx);
	p11km_check_tmpdir_remove(tmpdir);
}

/* How many objects of type (object list --type) labelled label the token holds. */
static size_t
count(const char *type, const char *label)
{
	struct p11km_object_list_opts o = { .uri = "pkcs11:token=unit", .type = type };
	struct p11km_object_list_result res;
	size_t n = 0;

	ck_assert_int_eq(p11km_object_list(&ctx, &o, &res), 0);
	ck_assert_uint_eq(res.n, 1);
	ck_assert_int_eq(res.l[0].logged_in, 1);
	for (size_t i = 0; i < res.l[0].n; i++)
		n += label == NULL || (res.l[0].objs[i].label != NULL &&
		                       strcmp(res.l[0].objs[i].label, label) == 0);
	p11km_object_list_result_release(&res);
	return n;
}

START_TEST(token_and_list)
{
	struct p11km_token_list_opts o = { .uri = "pkcs11:token=unit" };
	struct p11km_token_list_result res;

	ck_assert_int_eq(p11km_token_list(&ctx, &o, &res), 0);
	ck_assert_uint_eq(res.n, 1);
	ck_assert_str_eq(res.toks[0].label, "unit");
	ck_assert_int_eq(res.have_caps[0], 1);
	ck_assert(p11km_caps_usable(&res.caps[0], P11KM_KEY_EC_P256));
	p11km_token_list_result_release(&res);
	ck_assert_uint_eq(count("key", NULL), 4);
	ck_assert_uint_eq(count("private", "k1"), 1);
	ck_assert_uint_eq(count("public", "k2"), 1);
	ck_assert_uint_eq(count("cert", NULL), 0);
	/* a type no one has heard of is a usage error, not an empty list */
	{
		struct p11km_object_list_opts lo = { .type = "secret" };
		struct p11km_object_list_result lr;
		ck_assert_int_eq(p11km_object_list(&ctx, &lo, &lr), P11KM_ERR_USAGE);
		ck_assert_ptr_null(lr.l);
	}
}
END_TEST

START_TEST(relabel_export_delete)
{
	struct p11km_relabel_opts ro = { .uri = "pkcs11:token=unit;object=k1;type=private",
	                                 .label = "web" };
	struct p11km_relabel_result rr;
	struct p11km_export_opts eo = { .uri = "pkcs11:token=unit;object=web" };
	struct p11km_export_result er;
	struct p11km_delete_opts d = { .uri = "pkcs11:token=unit;object=web", .all = 1 };
	struct p11km_delete_result dr;

	/* the pair moves together: private and public key */
	ck_assert_int_eq(p11km_object_relabel(&ctx, &ro, &rr), 0);
	ck_assert_uint_eq(rr.n, 2);
	for (size_t i = 0; i < rr.n; i++) {
		ck_assert_ptr_nonnull(strstr(rr.items[i].from, "object=k1"));
		ck_assert_ptr_nonnull(strstr(rr.items[i].to, "object=web"));
	}
	p11km_relabel_result_release(&rr);
	ck_assert_uint_eq(count("key", "k1"), 0);
	ck_assert_uint_eq(count("key", "web"), 2);

	/* the public key exports (PEM), the private key never */
	ck_assert_int_eq(p11km_object_export(&ctx, &eo, &er), 0);
	ck_assert_int_eq(er.cls, CKO_PUBLIC_KEY);
	ck_assert_ptr_nonnull(strstr((const char *)er.data, "-----BEGIN PUBLIC KEY-----"));
	p11km_export_result_release(&er);
	eo.uri = "pkcs11:token=unit;object=web;type=private";
	ck_assert_int_eq(p11km_object_export(&ctx, &eo, &er), P11KM_ERR_USAGE);

	/* a private key goes only with force: refused first, nothing destroyed */
	ck_assert_int_eq(p11km_object_delete(&ctx, &d, &dr), P11KM_ERR_USAGE);
	ck_assert_uint_eq(dr.n, 0);
	ck_assert_uint_eq(count("key", "web"), 2);
	d.force = 1;
	ck_assert_int_eq(p11km_object_delete(&ctx, &d, &dr), 0);
	ck_assert_uint_eq(dr.n, 2);
	/* the public key first, the private key last */
	ck_assert_ptr_nonnull(strstr(dr.uris[0], "type=public"));
	ck_assert_ptr_nonnull(strstr(dr.uris[1], "type=private"));
	p11km_delete_result_release(&dr);
	ck_assert_uint_eq(count("key", "web"), 0);
	ck_assert_uint_eq(count("key", "k2"), 2);
}
END_TEST

START_TEST(ambiguous_changes_nothing)
{
	struct p11km_relabel_opts ro = { .uri = "pkcs11:token=unit;type=private", .label = "x" };
	struct p11km_relabel_result rr;
	struct p11km_delete_opts d = { .uri = "pkcs11:token=unit;type=private", .force = 1 };
	struct p11km_delete_result dr;
	struct p11km_keygen_opts ko = { .uri = "pkcs11:token=unit", .type = P11KM_KEY_EC_P256,
	                                .label = "k1" };
	struct p11km_keygen_result kr;

	/* two private keys match: neither relabelled nor (without all) deleted */
	ck_assert_int_eq(p11km_object_relabel(&ctx, &ro, &rr), P11KM_ERR_AMBIGUOUS);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_AMBIGUOUS), "2 objects match"));
	ck_assert_uint_eq(rr.n, 0);
	ck_assert_int_eq(p11km_object_delete(&ctx, &d, &dr), P11KM_ERR_AMBIGUOUS);
	ck_assert_uint_eq(dr.n, 0);
	/* a label in use: no third key */
	ck_assert_int_eq(p11km_key_generate(&ctx, &ko, &kr), P11KM_ERR_EXISTS);
	ck_assert_ptr_null(kr.uri);
	ck_assert_uint_eq(count("key", NULL), 4);
	ck_assert_uint_eq(count("key", "k1"), 2);
	ck_assert_uint_eq(count("key", "k2"), 2);
	ck_assert_uint_eq(count("key", "x"), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("op-object");
	TCase *tc = tcase_create("op-object");

	tcase_set_timeout(tc, 60);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, token_and_list);
	tcase_add_test(tc, relabel_export_delete);
	tcase_add_test(tc, ambiguous_changes_nothing);
	suite_add_tcase(s, tc);
	return p11km_check_run(s);
}
