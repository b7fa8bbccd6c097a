/* test-cert.c: reply parsing, limits, chains, anchors, multi-file commits.
 * Certificates are made in-process with OpenSSL; no token is used. */
#include "config.h"

#include <check.h>
#include "check-run.h"
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "p11km/cert.h"
#include "p11km/store.h"
#include "p11km/util.h"

static EVP_PKEY *
new_key(void)
{
	return EVP_EC_gen("P-256");
}

/* A certificate for subject (with key) signed by issuer_key as issuer. */
static X509 *
make_cert(const char *subject, EVP_PKEY *key, const char *issuer, EVP_PKEY *issuer_key, long serial,
          int ca)
{
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)subject, -1, -1, 0);
	X509_NAME_add_entry_by_txt(X509_get_issuer_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)issuer, -1, -1, 0);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, NULL, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
	                          ca ? "critical,CA:TRUE" : "CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ck_assert_int_gt(X509_sign(x, issuer_key, EVP_sha256()), 0);
	return x;
}

static unsigned char *
der_of(X509 *x, size_t *len)
{
	unsigned char *d = NULL;
	ck_assert_int_eq(p11km_cert_der(x, &d, len), 0);
	return d;
}

static struct p11km_buf
pem_of(X509 **xs, int n)
{
	struct p11km_buf b = { 0 };
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(p11km_cert_pem_append(xs[i], &b), 0);
	return b;
}

START_TEST(parse_formats)
{
	EVP_PKEY *rk = new_key(), *lk = new_key();
	X509 *root = make_cert("Root", rk, "Root", rk, 1, 1);
	X509 *leaf = make_cert("Leaf", lk, "Root", rk, 2, 0);
	X509 *both[2] = { leaf, root };
	STACK_OF(X509) *sk = NULL;
	size_t dlen;
	unsigned char *der = der_of(leaf, &dlen), *p7der = NULL;
	struct p11km_buf pem = pem_of(both, 2);
	PKCS7 *p7 = PKCS7_new();
	int p7len;

	ck_assert_int_eq(p11km_certs_parse(der, dlen, "t", 32, &sk), 0);
	ck_assert_int_eq(sk_X509_num(sk), 1);
	sk_X509_pop_free(sk, X509_free);
	ck_assert_int_eq(p11km_certs_parse(pem.data, pem.len, "t", 32, &sk), 0);
	ck_assert_int_eq(sk_X509_num(sk), 2);
	ck_assert_int_eq(X509_cmp(sk_X509_value(sk, 0), leaf), 0);
	sk_X509_pop_free(sk, X509_free);
	/* duplicates are dropped */
	{
		unsigned char *copy = p11km_memdup(pem.data, pem.len);
		size_t n = pem.len;
		p11km_buf_append(&pem, copy, n);
		free(copy);
	}
	ck_assert_int_eq(p11km_certs_parse(pem.data, pem.len, "t", 2, &sk), 0);
	ck_assert_int_eq(sk_X509_num(sk), 2);
	sk_X509_pop_free(sk, X509_free);
	/* limits */
	ck_assert_int_eq(p11km_certs_parse(pem.data, pem.len, "t", 1, &sk), P11KM_ERR_INPUT);
	ck_assert_ptr_null(sk);
	/* PKCS#7 certs-only, DER */
	PKCS7_set_type(p7, NID_pkcs7_signed);
	PKCS7_content_new(p7, NID_pkcs7_data);
	PKCS7_add_certificate(p7, leaf);
	PKCS7_add_certificate(p7, root);
	p7len = i2d_PKCS7(p7, &p7der);
	ck_assert_int_gt(p7len, 0);
	ck_assert_int_eq(p11km_certs_parse(p7der, (size_t)p7len, "t", 32, &sk), 0);
	ck_assert_int_eq(sk_X509_num(sk), 2);
	sk_X509_pop_free(sk, X509_free);
	/* trailing bytes and truncation */
	unsigned char *longer = malloc(dlen + 1);
	memcpy(longer, der, dlen);
	longer[dlen] = 0;
	ck_assert_int_eq(p11km_certs_parse(longer, dlen + 1, "t", 32, &sk), P11KM_ERR_INPUT);
	for (size_t cut = 1; cut < dlen; cut += 37)
		ck_assert_int_eq(p11km_certs_parse(der, cut, "t", 32, &sk), P11KM_ERR_INPUT);
	ck_assert_int_eq(p11km_certs_parse(der, 0, "t", 32, &sk), P11KM_ERR_INPUT);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_INPUT), "empty"));
	ck_assert_int_eq(p11km_certs_parse((const unsigned char *)"hello", 5, "t", 32, &sk),
	                 P11KM_ERR_INPUT);
	free(longer);
	OPENSSL_free(p7der);
	PKCS7_free(p7);
	free(der);
	p11km_buf_release(&pem);
	X509_free(root);
	X509_free(leaf);
	EVP_PKEY_free(rk);
	EVP_PKEY_free(lk);
}
END_TEST

START_TEST(parse_refusals)
{
	EVP_PKEY *k = new_key();
	X509 *neg = make_cert("Neg", k, "Neg", k, -5, 0);
	X509 *ok = make_cert("Ok", k, "Ok", k, 7, 0);
	struct p11km_buf b = pem_of(&neg, 1);
	STACK_OF(X509) *sk = NULL;
	static const char keyblock[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";

	ck_assert_int_eq(p11km_certs_parse(b.data, b.len, "t", 32, &sk), P11KM_ERR_INPUT);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_INPUT), "negative serial"));
	p11km_buf_release(&b);
	b = pem_of(&ok, 1);
	p11km_buf_append(&b, keyblock, strlen(keyblock));
	ck_assert_int_eq(p11km_certs_parse(b.data, b.len, "t", 32, &sk), P11KM_ERR_INPUT);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_INPUT), "PRIVATE KEY"));
	p11km_buf_release(&b);
	X509_free(neg);
	X509_free(ok);
	EVP_PKEY_free(k);
}
END_TEST

/* text as Windows saves it: UTF-16 with a BOM, little or big endian */
static struct p11km_buf
utf16_of(const char *prefix, size_t plen, const unsigned char *ascii, size_t len, int be)
{
	struct p11km_buf b = { 0 };
	unsigned char bom[2] = { be ? 0xfe : 0xff, be ? 0xff : 0xfe };

	p11km_buf_append(&b, bom, 2);
	if (plen > 0) /* raw code units */
		p11km_buf_append(&b, prefix, plen);
	for (size_t i = 0; i < len; i++) {
		unsigned char u[2] = { be ? 0 : ascii[i], be ? ascii[i] : 0 };
		p11km_buf_append(&b, u, 2);
	}
	return b;
}

START_TEST(parse_text_encodings)
{
	EVP_PKEY *k = new_key();
	X509 *x = make_cert("Text", k, "Text", k, 9, 0);
	struct p11km_buf pem = pem_of(&x, 1), t = { 0 };
	STACK_OF(X509) *sk = NULL;
	/* U+1F600 as a UTF-16LE surrogate pair, then a newline: a friendly name */
	static const char emoji_le[] = "\x3d\xd8\x00\xde\x0a\x00";
	static const char lone_le[] = "\x3d\xd8\x41\x00";
	size_t dlen;
	unsigned char *der = der_of(x, &dlen);
	char *b64 = malloc(dlen * 2 + 8);

	for (int be = 0; be < 2; be++) {
		t = utf16_of(NULL, 0, pem.data, pem.len, be);
		ck_assert_int_eq(p11km_certs_parse(t.data, t.len, "t", 32, &sk), 0);
		ck_assert_int_eq(X509_cmp(sk_X509_value(sk, 0), x), 0);
		sk_X509_pop_free(sk, X509_free);
		p11km_buf_release(&t);
	}
	t = utf16_of(emoji_le, sizeof(emoji_le) - 1, pem.data, pem.len, 0);
	ck_assert_int_eq(p11km_certs_parse(t.data, t.len, "t", 32, &sk), 0);
	sk_X509_pop_free(sk, X509_free);
	p11km_buf_release(&t);
	t = utf16_of(lone_le, sizeof(lone_le) - 1, pem.data, pem.len, 0);
	ck_assert_int_eq(p11km_certs_parse(t.data, t.len, "t", 32, &sk), P11KM_ERR_INPUT);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_INPUT), "lone surrogate"));
	ck_assert_int_eq(p11km_certs_parse(t.data, t.len - 1, "t", 32, &sk), P11KM_ERR_INPUT);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_INPUT), "odd number of bytes"));
	ck_assert_int_eq(p11km_certs_parse(t.data, 2, "t", 32, &sk), P11KM_ERR_INPUT);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_INPUT), "is empty"));
	p11km_buf_release(&t);
	/* a UTF-8 BOM before PEM */
	p11km_buf_append(&t, "\xef\xbb\xbf", 3);
	p11km_buf_append(&t, pem.data, pem.len);
	ck_assert_int_eq(p11km_certs_parse(t.data, t.len, "t", 32, &sk), 0);
	sk_X509_pop_free(sk, X509_free);
	p11km_buf_release(&t);
	/* bare base64: one line, and with CRLF every 76 characters */
	ck_assert_int_gt(EVP_EncodeBlock((unsigned char *)b64, der, (int)dlen), 0);
	ck_assert_int_eq(p11km_certs_parse((unsigned char *)b64, strlen(b64), "t", 32, &sk), 0);
	sk_X509_pop_free(sk, X509_free);
	for (size_t i = 0; i < strlen(b64); i += 76) {
		size_t n = strlen(b64) - i < 76 ? strlen(b64) - i : 76;
		p11km_buf_append(&t, b64 + i, n);
		p11km_buf_append(&t, "\r\n", 2);
	}
	ck_assert_int_eq(p11km_certs_parse(t.data, t.len, "t", 32, &sk), 0);
	sk_X509_pop_free(sk, X509_free);
	p11km_buf_release(&t);
	/* padding inside, a stray character, cut short: refused */
	ck_assert_int_eq(p11km_certs_parse((const unsigned char *)"MIIB==MIIB", 10, "t", 32, &sk),
	                 P11KM_ERR_INPUT);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_INPUT), "neither PEM nor DER nor base64"));
	b64[100] = '!';
	ck_assert_int_eq(p11km_certs_parse((unsigned char *)b64, strlen(b64), "t", 32, &sk),
	                 P11KM_ERR_INPUT);
	ck_assert_int_eq(p11km_certs_parse((unsigned char *)b64, 99, "t", 32, &sk), P11KM_ERR_INPUT);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_INPUT), "cut short"));
	ck_assert_ptr_null(sk);
	free(b64);
	free(der);
	p11km_buf_release(&pem);
	X509_free(x);
	EVP_PKEY_free(k);
}
END_TEST

START_TEST(chains_and_anchors)
{
	EVP_PKEY *rk = new_key(), *ik = new_key(), *lk = new_key(), *ak = new_key(), *bk = new_key();
	X509 *root = make_cert("Root", rk, "Root", rk, 1, 1);
	X509 *inter = make_cert("Inter", ik, "Root", rk, 2, 1);
	X509 *leaf = make_cert("Leaf", lk, "Inter", ik, 3, 0);
	X509 *a = make_cert("A", ak, "B", bk, 4, 1), *b = make_cert("B", bk, "A", ak, 5, 1);
	X509 *cl = make_cert("CL", lk, "A", ak, 6, 0);
	X509 *forged = make_cert("Root", rk, "Root", ik, 7, 1); /* self-issued, wrong key */
	STACK_OF(X509) *all = sk_X509_new_null(), *chain = NULL;
	X509 *top = NULL;

	sk_X509_push(all, root);
	sk_X509_push(all, leaf);
	sk_X509_push(all, inter);
	ck_assert_int_eq(p11km_chain_order(leaf, all, &chain, &top), 0);
	ck_assert_int_eq(sk_X509_num(chain), 1);
	ck_assert_ptr_eq(sk_X509_value(chain, 0), inter);
	ck_assert_ptr_eq(top, root);
	sk_X509_free(chain);
	sk_X509_zero(all);
	sk_X509_push(all, cl);
	sk_X509_push(all, a);
	sk_X509_push(all, b);
	ck_assert_int_eq(p11km_chain_order(cl, all, &chain, &top), P11KM_ERR_INPUT);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_INPUT), "cycle"));

	ck_assert_int_eq(p11km_cert_check_anchor(root), 0);
	ck_assert_int_eq(p11km_cert_check_anchor(inter), 0);
	ck_assert_int_eq(p11km_cert_check_anchor(leaf), P11KM_ERR_INPUT);
	ck_assert_int_eq(p11km_cert_check_anchor(forged), P11KM_ERR_INPUT);
	ck_assert_ptr_nonnull(strstr(p11km_errmsg(P11KM_ERR_INPUT), "self-signature"));
	ck_assert_int_eq(p11km_cert_self_signed(root), 1);
	ck_assert_int_eq(p11km_cert_self_signed(forged), 0);

	sk_X509_free(all);
	X509 *xs[] = { root, inter, leaf, a, b, cl, forged };
	for (size_t i = 0; i < sizeof(xs) / sizeof(xs[0]); i++)
		X509_free(xs[i]);
	EVP_PKEY *ks[] = { rk, ik, lk, ak, bk };
	for (size_t i = 0; i < sizeof(ks) / sizeof(ks[0]); i++)
		EVP_PKEY_free(ks[i]);
}
END_TEST

static char *
slurp(const char *path)
{
	unsigned char *d = NULL;
	size_t n = 0;
	if (p11km_read_file(path, 1 << 20, &d, &n) < 0)
		return NULL;
	return (char *)d;
}

static int
count_temps(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	while (d != NULL && (e = readdir(d)) != NULL)
		n += strstr(e->d_name, ".p11km-") != NULL;
	if (d != NULL)
		closedir(d);
	return n;
}

START_TEST(file_transactions)
{
	char dir[] = "/tmp/p11km-unit-ftxn.XXXXXX", a[128], b[128], c[128], *s;
	struct p11km_ftxn *t;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	snprintf(c, sizeof(c), "%s/c", dir);
	ck_assert_int_eq(p11km_write_file_atomic(a, "old a", 5, 0644), 0);
	ck_assert_int_eq(p11km_write_file_atomic(b, "old b", 5, 0644), 0);
	/* all or nothing: b becomes a directory after staging, so replacing it fails */
	t = p11km_ftxn_new();
	ck_assert_int_eq(p11km_ftxn_write(t, a, "new a", 5, 0644), 0);
	ck_assert_int_eq(p11km_ftxn_write(t, c, "new c", 5, 0644), 0);
	ck_assert_int_eq(p11km_ftxn_write(t, b, "new b", 5, 0644), 0);
	ck_assert_int_eq(unlink(b), 0);
	ck_assert_int_eq(mkdir(b, 0755), 0);
	char inside[160];
	snprintf(inside, sizeof(inside), "%s/x", b);
	ck_assert_int_eq(p11km_write_file_atomic(inside, "x", 1, 0644), 0);
	ck_assert_int_eq(p11km_ftxn_commit(t), P11KM_ERR_IO);
	p11km_ftxn_free(t);
	s = slurp(a);
	ck_assert_str_eq(s, "old a");
	free(s);
	ck_assert_int_eq(access(c, F_OK), -1);
	ck_assert_int_eq(count_temps(dir), 0);
	unlink(inside);
	rmdir(b);
	/* a symlink target is refused at staging */
	ck_assert_int_eq(symlink(a, b), 0);
	t = p11km_ftxn_new();
	ck_assert_int_eq(p11km_ftxn_write(t, b, "x", 1, 0644), P11KM_ERR_IO);
	p11km_ftxn_free(t);
	s = slurp(a);
	ck_assert_str_eq(s, "old a");
	free(s);
	unlink(b);
	/* success */
	t = p11km_ftxn_new();
	ck_assert_int_eq(p11km_ftxn_write(t, a, "new a", 5, 0600), 0);
	ck_assert_int_eq(p11km_ftxn_symlink(t, b, "a"), 0);
	ck_assert_int_eq(p11km_ftxn_commit(t), 0);
	p11km_ftxn_free(t);
	s = slurp(b);
	ck_assert_str_eq(s, "new a");
	free(s);
	ck_assert_int_eq(count_temps(dir), 0);
	unlink(a);
	unlink(b);
	rmdir(dir);
}
END_TEST

/* Leftovers of an interrupted run next to a target are removed when the
 * target is staged (others are not); two live transactions of one process
 * on one directory neither wait for each other's lock nor sweep each
 * other's staged files. */
START_TEST(file_transactions_leftovers)
{
	char dir[] = "/tmp/p11km-unit-ftxn2.XXXXXX", a[128], left[160], other[160], *s;
	struct p11km_ftxn *t1, *t2;
	time_t t0;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(left, sizeof(left), "%s/a.p11km-AbC123", dir);
	snprintf(other, sizeof(other), "%s/c.p11km-AbC123", dir);
	ck_assert_int_eq(p11km_write_file_atomic(a, "old a", 5, 0644), 0);
	ck_assert_int_eq(p11km_write_file_atomic(left, "stale", 5, 0644), 0);
	ck_assert_int_eq(p11km_write_file_atomic(other, "keep", 4, 0644), 0);
	t0 = time(NULL);
	t1 = p11km_ftxn_new();
	ck_assert_int_eq(p11km_ftxn_write(t1, a, "t1", 2, 0644), 0);
	ck_assert_int_eq(access(left, F_OK), -1);   /* swept */
	ck_assert_int_eq(access(other, F_OK), 0);   /* not next to a target */
	t2 = p11km_ftxn_new();
	ck_assert_int_eq(p11km_ftxn_write(t2, a, "t2", 2, 0644), 0);
	ck_assert_int_eq(p11km_ftxn_commit(t1), 0); /* its staged file is still there */
	s = slurp(a);
	ck_assert_str_eq(s, "t1");
	free(s);
	ck_assert_int_eq(p11km_ftxn_commit(t2), 0);
	s = slurp(a);
	ck_assert_str_eq(s, "t2");
	free(s);
	p11km_ftxn_free(t2);
	p11km_ftxn_free(t1);
	ck_assert_int_lt(time(NULL) - t0, 3);       /* no wait for its own lock */
	unlink(other);
	ck_assert_int_eq(count_temps(dir), 0);
	unlink(a);
	rmdir(dir);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("cert");
	TCase *tc = tcase_create("cert");

	tcase_add_test(tc, parse_formats);
	tcase_add_test(tc, parse_refusals);
	tcase_add_test(tc, parse_text_encodings);
	tcase_add_test(tc, chains_and_anchors);
	tcase_add_test(tc, file_transactions);
	tcase_add_test(tc, file_transactions_leftovers);
	suite_add_tcase(s, tc);
	return p11km_check_run(s);
}
