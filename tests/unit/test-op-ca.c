/* test-op-ca.c: the CA profile operations called directly, without argv
 * (include/p11km/op-ca.h): ca add (acme, helper), show, list, remove in a
 * scratch configuration directory, and the refusals that write nothing. */
#include "config.h"

#include <check.h>
#include "check-run.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "p11km/op-ca.h"
#include "p11km/util.h"

static char tmpdir[64], cfg[96], root[96];
static struct p11km_ctx ctx;

/* A self-signed certificate as the CA file a profile trusts. */
static void
write_root(const char *path)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *c = X509_new();
	FILE *fp;

	ck_assert_ptr_nonnull(k);
	ck_assert_ptr_nonnull(c);
	ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
	X509_gmtime_adj(X509_getm_notBefore(c), 0);
	X509_gmtime_adj(X509_getm_notAfter(c), 3600);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"test root", -1, -1, 0);
	X509_set_issuer_name(c, X509_get_subject_name(c));
	X509_set_pubkey(c, k);
	ck_assert_int_gt(X509_sign(c, k, EVP_sha256()), 0);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	ck_assert_int_eq(PEM_write_X509(fp, c), 1);
	fclose(fp);
	X509_free(c);
	EVP_PKEY_free(k);
}

/* The files in the configuration directory. */
static int
n_files(void)
{
	DIR *d = opendir(cfg);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void
setup(void)
{
	p11km_check_tmpdir(tmpdir, sizeof(tmpdir), "op-ca");
	snprintf(cfg, sizeof(cfg), "%s/ca.d", tmpdir);
	snprintf(root, sizeof(root), "%s/root.pem", tmpdir);
	write_root(root);
	p11km_ctx_init(&ctx);
}

static void
teardown(void)
{
	p11km_ctx_release(&ctx);
	p11km_check_tmpdir_remove(tmpdir);
}

START_TEST(add_show_list_remove)
{
	static const char *const args[] = { "-c", "exit 0" };
	struct p11km_ca_add_opts a = { .name = "pebble", .config_dir = cfg, .kind = "acme",
	                               .directory = "https://127.0.0.1:14000/dir", .ca_file = root,
	                               .contact = "mailto:ops@example.test", .timeout = "20" };
	struct p11km_ca_add_opts h = { .name = "local", .config_dir = cfg, .kind = "helper",
	                               .command = "/bin/sh", .args = args, .n_args = 2 };
	struct p11km_ca_opts o = { .config_dir = cfg, .name = "pebble" };
	struct p11km_ca_list_result l;
	struct p11km_ca_profile *p = NULL;
	char want[160], path[160];
	struct stat st;

	ck_assert_int_eq(p11km_ca_add(&ctx, &a, &p), 0);
	ck_assert_str_eq(p->kind->name, "acme");
	ck_assert_str_eq(p->ca_file, root);
	snprintf(want, sizeof(want), "%s/pebble.key", cfg); /* the default account key */
	ck_assert_str_eq(p->account_key, want);
	ck_assert_int_eq(p->timeout, 20);
	p11km_ca_profile_free(p);
	snprintf(path, sizeof(path), "%s/pebble.json", cfg);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	/* a second add of the name: refused, unless forced */
	ck_assert_int_eq(p11km_ca_add(&ctx, &a, &p), P11KM_ERR_EXISTS);
	ck_assert_ptr_null(p);
	ctx.force = 1;
	ck_assert_int_eq(p11km_ca_add(&ctx, &a, &p), 0);
	p11km_ca_profile_free(p);
	ctx.force = 0;

	ck_assert_int_eq(p11km_ca_add(&ctx, &h, &p), 0);
	ck_assert_uint_eq(p->n_command, 3);
	ck_assert_str_eq(p->command[0] + strlen(p->command[0]) - 2, "sh");
	ck_assert_str_eq(p->command[2], "exit 0");
	p11km_ca_profile_free(p);

	ck_assert_int_eq(p11km_ca_show(&ctx, &o, &p), 0);
	ck_assert_str_eq(p->directory, "https://127.0.0.1:14000/dir");
	ck_assert_str_eq(p->contact, "mailto:ops@example.test");
	p11km_ca_profile_free(p);

	ck_assert_int_eq(p11km_ca_list(&ctx, &o, &l), 0);
	ck_assert_uint_eq(l.n, 2);
	ck_assert_str_eq(l.profiles[0]->name, "local");
	ck_assert_str_eq(l.profiles[1]->name, "pebble");
	ck_assert_str_eq(l.config_dir, cfg);
	p11km_ca_list_result_release(&l);

	o.name = "local";
	ck_assert_int_eq(p11km_ca_remove(&ctx, &o), 0);
	ck_assert_int_eq(p11km_ca_show(&ctx, &o, &p), P11KM_ERR_NOTFOUND);
	ck_assert_int_eq(p11km_ca_list(&ctx, &o, &l), 0);
	ck_assert_uint_eq(l.n, 1);
	p11km_ca_list_result_release(&l);
	ck_assert_int_eq(n_files(), 1);
}
END_TEST

START_TEST(bad_profiles_write_nothing)
{
	struct p11km_ca_add_opts a = { .name = "bad", .config_dir = cfg, .kind = "acme",
	                               .directory = "https://127.0.0.1:14000/dir", .ca_file = root };
	struct p11km_ca_profile *p = NULL;

	/* each refusal: a usage error, and no file */
	a.directory = "http://127.0.0.1:14000/dir";
	ck_assert_int_eq(p11km_ca_add(&ctx, &a, &p), P11KM_ERR_USAGE);
	a.directory = "https://127.0.0.1:14000/dir";
	a.kind = "scep";
	ck_assert_int_eq(p11km_ca_add(&ctx, &a, &p), P11KM_ERR_USAGE);
	a.kind = "acme";
	a.name = "../escape";
	ck_assert_int_eq(p11km_ca_add(&ctx, &a, &p), P11KM_ERR_USAGE);
	a.name = "bad";
	a.timeout = "0";
	ck_assert_int_eq(p11km_ca_add(&ctx, &a, &p), P11KM_ERR_USAGE);
	a.timeout = NULL;
	a.contact = "ops@example.test";
	ck_assert_int_eq(p11km_ca_add(&ctx, &a, &p), P11KM_ERR_USAGE);
	a.contact = NULL;
	a.kind = "cmp";
	a.url = "http://127.0.0.1:1/pkix/";     /* neither a secret nor a certificate */
	ck_assert_int_eq(p11km_ca_add(&ctx, &a, &p), P11KM_ERR_USAGE);
	a.kind = "helper";                       /* no --command */
	ck_assert_int_eq(p11km_ca_add(&ctx, &a, &p), P11KM_ERR_USAGE);
	ck_assert_ptr_null(p);
	ck_assert_int_eq(n_files(), 0);
}
END_TEST

static Suite *
op_ca_suite(void)
{
	Suite *s = suite_create("op-ca");
	TCase *tc = tcase_create("op-ca");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, add_show_list_remove);
	tcase_add_test(tc, bad_profiles_write_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	p11km_log_set(P11KM_LOG_QUIET, 0);
	return p11km_check_run(op_ca_suite());
}
