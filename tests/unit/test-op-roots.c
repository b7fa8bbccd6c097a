/* test-op-roots.c: the roots and prune operations called directly (no argv):
 * roots install/list/remove into pem-bundle: and openssl-dir: stores in a
 * scratch directory, a non-CA certificate refused with nothing written, and
 * cert prune on a SoftHSM2 token the test makes.  openssl and pkcs11-tool
 * judge what the stores and the token hold. */
#include "config.h"

#include <check.h>
#include "check-run.h"
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "p11km/op.h"
#include "p11km/util.h"

static char dir[64];

/* Run a shell command in dir; its status (0: success). */
static int
sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int
sh(const char *fmt, ...)
{
	char cmd[2048], full[2200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "cd '%s' && { %s; } >/dev/null 2>&1", dir, cmd);
	return system(full);
}

/* The first line a shell command prints (in dir), malloc'ed. */
static char *
sh_out(const char *cmd)
{
	char full[2200], line[4096] = "";
	FILE *p;

	snprintf(full, sizeof(full), "cd '%s' && %s 2>/dev/null", dir, cmd);
	ck_assert_ptr_nonnull(p = popen(full, "r"));
	if (fgets(line, sizeof(line), p) == NULL)
		line[0] = '\0';
	pclose(p);
	line[strcspn(line, "\n")] = '\0';
	return strdup(line);
}

/* openssl's SHA-256 fingerprint of a PEM file, as p11km writes it
 * (lowercase hex, no colons). */
static char *
openssl_fp(const char *file)
{
	char cmd[256], *l, *o, *w;

	snprintf(cmd, sizeof(cmd), "openssl x509 -noout -fingerprint -sha256 -in %s", file);
	l = sh_out(cmd);
	o = w = strdup(strchr(l, '=') ? strchr(l, '=') + 1 : "");
	for (const char *p = o; *p; p++)
		if (*p != ':')
			*w++ = (char)tolower((unsigned char)*p);
	*w = '\0';
	free(l);
	return o;
}

static void
setup(void)
{
	p11km_check_tmpdir(dir, sizeof(dir), "op-roots");
	ck_assert_int_eq(sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	                    "-keyout ca.key -out ca.pem -days 30 -subj '/CN=Unit Root' "
	                    "-addext basicConstraints=critical,CA:TRUE "
	                    "-addext keyUsage=critical,keyCertSign,cRLSign"), 0);
	ck_assert_int_eq(sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	                    "-keyout leaf.key -out leaf.pem -days 30 -subj '/CN=Unit Leaf' "
	                    "-addext basicConstraints=critical,CA:FALSE"), 0);
}

static void
teardown(void)
{
	p11km_check_tmpdir_remove(dir);
}

START_TEST(roots_install_list_remove)
{
	struct p11km_ctx ctx;
	struct p11km_roots_result res;
	char bundle[128], cadir[128], *fp = openssl_fp("ca.pem"), ca[128];
	const char *stores[2] = { bundle, cadir }, *certs[1] = { ca }, *fps[1] = { fp };
	struct p11km_roots_opts o = { .stores = stores, .n_stores = 2, .certs = certs,
	                              .n_certs = 1 };

	snprintf(bundle, sizeof(bundle), "pem-bundle:%s/bundle.pem", dir);
	snprintf(cadir, sizeof(cadir), "openssl-dir:%s/cadir", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	p11km_ctx_init(&ctx);
	/* a dry run changes nothing */
	o.dry_run = 1;
	ck_assert_int_eq(p11km_roots_install(&ctx, &o, &res), 0);
	ck_assert_uint_eq(res.stores[0].n_added, 1);
	p11km_roots_result_release(&res);
	ck_assert_int_ne(sh("test -e bundle.pem"), 0);
	o.dry_run = 0;
	ck_assert_int_eq(p11km_roots_install(&ctx, &o, &res), 0);
	ck_assert_uint_eq(res.n, 1);
	ck_assert_str_eq(res.certs[0].sha256, fp);
	ck_assert_uint_eq(res.n_stores, 2);
	ck_assert_uint_eq(res.stores[0].n_added, 1);
	ck_assert_uint_eq(res.stores[1].n_added, 1);
	p11km_roots_result_release(&res);
	/* openssl trusts the root through both stores */
	ck_assert_int_eq(sh("openssl verify -CAfile bundle.pem ca.pem"), 0);
	ck_assert_int_eq(sh("openssl verify -no-CAfile -no-CAstore -CApath cadir ca.pem"), 0);
	/* again: present, nothing added */
	ck_assert_int_eq(p11km_roots_install(&ctx, &o, &res), 0);
	ck_assert_uint_eq(res.stores[0].n_added + res.stores[1].n_added, 0);
	p11km_roots_result_release(&res);
	for (int s = 0; s < 2; s++) {
		ck_assert_int_eq(p11km_roots_list(&ctx, stores[s], NULL, &res), 0);
		ck_assert_uint_eq(res.stores[0].n, 1);
		ck_assert_str_eq(res.stores[0].certs[0].sha256, fp);
		p11km_roots_result_release(&res);
	}
	/* remove by openssl's fingerprint */
	o.certs = fps;
	ck_assert_int_eq(p11km_roots_remove(&ctx, &o, &res), 0);
	ck_assert_uint_eq(res.stores[0].n, 1);
	ck_assert_uint_eq(res.stores[1].n, 1);
	ck_assert_str_eq(res.stores[1].certs[0].sha256, fp);
	p11km_roots_result_release(&res);
	ck_assert_int_ne(sh("openssl verify -no-CAfile -no-CAstore -CApath cadir ca.pem"), 0);
	ck_assert_int_ne(sh("test -s bundle.pem && openssl verify -CAfile bundle.pem ca.pem"), 0);
	/* absent now: refused, unless force */
	ck_assert_int_eq(p11km_roots_remove(&ctx, &o, &res), P11KM_ERR_NOTFOUND);
	ck_assert_ptr_null(res.stores);
	o.force = 1;
	ck_assert_int_eq(p11km_roots_remove(&ctx, &o, &res), 0);
	ck_assert_uint_eq(res.stores[0].n + res.stores[1].n, 0);
	p11km_roots_result_release(&res);
	p11km_ctx_release(&ctx);
	p11km_error_clear();
	free(fp);
}
END_TEST

START_TEST(roots_non_ca_refused)
{
	struct p11km_ctx ctx;
	struct p11km_roots_result res;
	char bundle[128], cadir[128], ca[128], leaf[128];
	const char *stores[2] = { bundle, cadir }, *certs[2] = { ca, leaf };
	struct p11km_roots_opts o = { .stores = stores, .n_stores = 2, .certs = certs,
	                              .n_certs = 2 };

	snprintf(bundle, sizeof(bundle), "pem-bundle:%s/bundle.pem", dir);
	snprintf(cadir, sizeof(cadir), "openssl-dir:%s/cadir", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(leaf, sizeof(leaf), "%s/leaf.pem", dir);
	p11km_ctx_init(&ctx);
	ck_assert_int_eq(p11km_roots_install(&ctx, &o, &res), P11KM_ERR_INPUT);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_INPUT), "not a CA certificate"));
	ck_assert_ptr_null(res.stores);
	ck_assert_uint_eq(res.n, 0);
	/* nothing written, not even the root that was fine */
	ck_assert_int_ne(sh("test -e bundle.pem"), 0);
	ck_assert_int_ne(sh("test -e cadir"), 0);
	p11km_error_clear();
	/* a store kind nobody knows: a usage error */
	stores[0] = "nosuch:x";
	ck_assert_int_eq(p11km_roots_install(&ctx, &o, &res), P11KM_ERR_USAGE);
	p11km_ctx_release(&ctx);
	p11km_error_clear();
}
END_TEST

/* --- cert prune on a SoftHSM2 token ------------------------------------------- */

static const char *
module(void)
{
	const char *m = getenv("SOFTHSM2_MODULE");

	ck_assert_msg(m != NULL && access(m, R_OK) == 0, "SOFTHSM2_MODULE is not set (make check)");
	return m;
}

/* The labels of the token's certificates, as pkcs11-tool lists them. */
static char *
token_cert_labels(void)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "pkcs11-tool --module '%s' --token-label unit -O --type cert "
	         "| sed -n 's/^ *label: *//p' | sort | tr '\\n' ' '", module());
	return sh_out(cmd);
}

START_TEST(prune_label_and_time)
{
	struct p11km_ctx ctx;
	struct p11km_prune_result res;
	struct p11km_prune_opts o = { .uri = "pkcs11:token=unit", .older_than = -1,
	                              .label = "web" };
	char conf[128], today[32], *labels;
	time_t now = time(NULL);

	strftime(today, sizeof(today), "%Y%m%d", gmtime(&now));
	snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir);
	ck_assert_int_eq(sh("mkdir tokens && echo \"directories.tokendir = %s/tokens\" > softhsm2.conf",
	                    dir), 0);
	setenv("SOFTHSM2_CONF", conf, 1);
	ck_assert_int_eq(sh("softhsm2-util --init-token --free --label unit --pin 1234 "
	                    "--so-pin 12345678 && openssl x509 -in ca.pem -outform DER -out ca.der"),
	                 0);
	ck_assert_int_eq(sh("for l in web.retired-20200101 web.retired-%s mail.retired-20200101 "
	                    "web; do pkcs11-tool --module '%s' --token-label unit --login --pin 1234 "
	                    "--write-object ca.der --type cert --id 01 --label $l || exit 1; done",
	                    today, module()), 0);
	p11km_ctx_init(&ctx);
	ctx.module_opt = module();
	/* a dry run names the one object and destroys nothing */
	o.retired_before = now;
	o.dry_run = 1;
	ck_assert_int_eq(p11km_cert_prune(&ctx, &o, &res), 0);
	ck_assert_uint_eq(res.n, 1);
	ck_assert_ptr_nonnull(strstr(res.destroyed[0], "web.retired-20200101"));
	p11km_prune_result_release(&res);
	labels = token_cert_labels();
	ck_assert_ptr_nonnull(strstr(labels, "web.retired-20200101"));
	free(labels);
	/* only web's, only retired before now: today's and mail's stay */
	o.dry_run = 0;
	ck_assert_int_eq(p11km_cert_prune(&ctx, &o, &res), 0);
	ck_assert_uint_eq(res.n, 1);
	p11km_prune_result_release(&res);
	p11km_ctx_release(&ctx);
	labels = token_cert_labels();
	ck_assert_msg(strstr(labels, "web.retired-20200101") == NULL, "left: %s", labels);
	ck_assert_ptr_nonnull(strstr(labels, "mail.retired-20200101"));
	ck_assert_ptr_nonnull(strstr(labels, today));
	ck_assert_ptr_nonnull(strstr(labels, "web "));
	free(labels);
	/* no label, no time: every retired certificate goes, the live one stays */
	p11km_ctx_init(&ctx);
	ctx.module_opt = module();
	o.label = NULL;
	o.retired_before = 0;
	ck_assert_int_eq(p11km_cert_prune(&ctx, &o, &res), 0);
	ck_assert_uint_eq(res.n, 2);
	p11km_prune_result_release(&res);
	p11km_ctx_release(&ctx);
	labels = token_cert_labels();
	ck_assert_str_eq(labels, "web ");
	free(labels);
	unsetenv("SOFTHSM2_CONF");
	p11km_error_clear();
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("op-roots");
	TCase *tc = tcase_create("op");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, roots_install_list_remove);
	tcase_add_test(tc, roots_non_ca_refused);
	tcase_add_test(tc, prune_label_and_time);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return p11km_check_run(suite());
}
