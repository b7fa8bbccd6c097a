/* test-profile.c: token profiles.  The schema test (every profile under
 * tokens/ parses, carries the required keys and no unknown key), the
 * parser's refusals, and which profile a token matches. */
#include "config.h"

#include <check.h>
#include "check-run.h"
#include <stdlib.h>
#include <string.h>

#include "p11km/profile.h"
#include "p11km/util.h"

static const char *
tokens_dir(void)
{
	static char buf[4096];
	const char *d = getenv("P11KM_TOKENS_DIR"), *top = getenv("top_srcdir");

	if (d != NULL)
		return d;
	snprintf(buf, sizeof(buf), "%s/tokens", top ? top : ".");
	return buf;
}

/* the families the issue names: each has a profile */
static const char *const families[] = {
	"aws-cloudhsm", "entrust-nshield", "nss-softoken", "opencryptoki", "opensc", "opensc-piv",
	"p11-kit-client", "smartcard-hsm", "softhsm2", "thales-luna", "tpm2-pkcs11", "utimaco",
	"ykcs11", "yubihsm2", NULL,
};

START_TEST(every_profile_parses)
{
	struct p11km_profile *v = NULL;
	size_t n = 0, k = 0;
	int r = p11km_profiles_load(tokens_dir(), &v, &n);

	ck_assert_msg(r == 0, "%s", p11km_errmsg(r));
	for (; families[k]; k++) {
		size_t i;
		for (i = 0; i < n; i++)
			if (strcmp(p11km_profile_get(&v[i], "name"), families[k]) == 0)
				break;
		ck_assert_msg(i < n, "no profile for %s", families[k]);
	}
	ck_assert_uint_eq(n, k);
	for (size_t i = 0; i < n; i++) {
		const char *src = p11km_profile_get(&v[i], "source");
		for (const struct p11km_profile_key *s = p11km_profile_keys; s->key; s++)
			if (s->required)
				ck_assert_ptr_nonnull(p11km_profile_get(&v[i], s->key));
		ck_assert(strncmp(src, "tested", 6) == 0 || strncmp(src, "vendor-docs", 11) == 0);
		/* the installed softhsm2 profile also feeds configure: module paths */
		if (strcmp(p11km_profile_get(&v[i], "name"), "softhsm2") == 0)
			ck_assert_ptr_nonnull(p11km_profile_get(&v[i], "module-path"));
	}
	p11km_profiles_free(v, n);
}
END_TEST

#define BASE "name=x\ndescription=d\nsource=tested\nmatch-module=x.so\nkey-types=rsa:2048\n" \
	"ids=free\nlabels=free\ncertificates=yes\ntrusted-objects=no\nengine=yes\n"

static int
parse(const char *text)
{
	struct p11km_profile p;
	int r = p11km_profile_parse("t/profile", text, strlen(text), &p);

	if (r == 0) {
		ck_assert_ptr_nonnull(p11km_profile_get(&p, "name"));
		p11km_profile_release(&p);
	}
	return r;
}

START_TEST(parser_refuses)
{
	ck_assert_int_eq(parse(BASE), 0);
	ck_assert_int_eq(parse(BASE "# comment\n\nquirk=a  # trailing comment\nquirk=b\n"), 0);
	ck_assert_int_eq(parse(BASE "colour=blue\n"), P11KM_ERR_INPUT);
	ck_assert(strstr(p11km_errmsg(P11KM_ERR_INPUT), "t/profile:11: unknown key 'colour'"));
	ck_assert_int_eq(parse(BASE "engine=no\n"), P11KM_ERR_INPUT); /* twice */
	ck_assert(strstr(p11km_errmsg(P11KM_ERR_INPUT), "given twice"));
	ck_assert_int_eq(parse(BASE "certificates2=x\n"), P11KM_ERR_INPUT);
	ck_assert_int_eq(parse("name=x\n"), P11KM_ERR_INPUT); /* required keys missing */
	ck_assert(strstr(p11km_errmsg(P11KM_ERR_INPUT), "required key"));
	ck_assert_int_eq(parse(BASE "trap=\n"), P11KM_ERR_INPUT);
	ck_assert_int_eq(parse(BASE "no equals sign\n"), P11KM_ERR_INPUT);
	ck_assert_int_eq(parse(BASE "quirk=a\x1b[31m\n"), P11KM_ERR_INPUT);
	/* values outside the allowed words */
	ck_assert_int_eq(parse("name=x\ndescription=d\nsource=rumour\nmatch-module=x.so\n"
	                       "key-types=rsa:2048\nids=free\nlabels=free\ncertificates=yes\n"
	                       "trusted-objects=no\nengine=yes\n"), P11KM_ERR_INPUT);
	ck_assert(strstr(p11km_errmsg(P11KM_ERR_INPUT), "tested vendor-docs"));
	/* nothing to recognise the token by */
	ck_assert_int_eq(parse("name=x\ndescription=d\nsource=tested\nkey-types=rsa:2048\n"
	                       "ids=free\nlabels=free\ncertificates=yes\ntrusted-objects=no\n"
	                       "engine=yes\n"), P11KM_ERR_INPUT);
	ck_assert(strstr(p11km_errmsg(P11KM_ERR_INPUT), "cannot recognise"));
	p11km_error_clear();
}
END_TEST

static const char *
best(const struct p11km_profile *v, size_t n, const char *mod, const char *manuf)
{
	const struct p11km_profile *p = p11km_profile_best(v, n, mod, manuf, "model");
	return p ? p11km_profile_get(p, "name") : "(none)";
}

START_TEST(matching)
{
	struct p11km_profile *v = NULL;
	size_t n = 0;

	ck_assert_int_eq(p11km_profiles_load(tokens_dir(), &v, &n), 0);
	ck_assert_str_eq(best(v, n, "/usr/lib/softhsm/libsofthsm2.so", "SoftHSM project"), "softhsm2");
	/* the same SoftHSM token behind p11-kit's remoting: the client's profile */
	ck_assert_str_eq(best(v, n, "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so",
	                      "SoftHSM project"), "p11-kit-client");
	/* OpenSC: a PIV card is more specific than OpenSC in general */
	ck_assert_str_eq(best(v, n, "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so", "piv_II"),
	                 "opensc-piv");
	ck_assert_str_eq(best(v, n, "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
	                      "www.CardContact.de"), "smartcard-hsm");
	ck_assert_str_eq(best(v, n, "/usr/lib/x86_64-linux-gnu/pkcs11/opensc-pkcs11.so",
	                      "Some Card"), "opensc");
	ck_assert_str_eq(best(v, n, "/usr/lib/x86_64-linux-gnu/libykcs11.so.2",
	                      "Yubico (www.yubico.com)"), "ykcs11");
	ck_assert_str_eq(best(v, n, "/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so", "IBM"),
	                 "tpm2-pkcs11");
	ck_assert_str_eq(best(v, n, "/opt/nfast/toolkits/pkcs11/libcknfast.so", "nCipher"),
	                 "entrust-nshield");
	ck_assert_str_eq(best(v, n, "/usr/lib/libunknown.so", "Nobody"), "(none)");
	ck_assert_str_eq(best(v, n, NULL, NULL), "(none)");
	p11km_profiles_free(v, n);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("profile");
	TCase *tc = tcase_create("profile");

	tcase_add_test(tc, every_profile_parses);
	tcase_add_test(tc, parser_refuses);
	tcase_add_test(tc, matching);
	suite_add_tcase(s, tc);
	return p11km_check_run(s);
}
