/* test-ca.c: CA profiles, the kind table, request identifiers, base64url
 * and JWS signing with a file account key (verified with OpenSSL), the ARI
 * certificate id (RFC 9773's own example). */
#include "config.h"

#include <check.h>
#include "check-run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "p11km/ca.h"
#include "p11km/util.h"

static char tmpdir[64];

static void
setup(void)
{
	p11km_check_tmpdir(tmpdir, sizeof(tmpdir), "ca");
}

static void
teardown(void)
{
	p11km_check_tmpdir_remove(tmpdir);
}

/* base64url decoding for the checks (padding added back). */
static unsigned char *
unb64url(const char *s, size_t *len)
{
	size_t n = strlen(s), m = (n + 3) / 4 * 4;
	char *t = calloc(1, m + 1);
	unsigned char *out = calloc(1, m);
	int k;

	for (size_t i = 0; i < m; i++)
		t[i] = i < n ? (s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i]) : '=';
	k = EVP_DecodeBlock(out, (unsigned char *)t, (int)m);
	ck_assert_int_ge(k, 0);
	*len = (size_t)k - (m - n); /* the padding decodes to zero bytes */
	free(t);
	return out;
}

START_TEST(b64url_vectors)
{
	static const struct { const char *in; const char *out; } v[] = {
		{ "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg" },
		{ "\xfb\xff", "-_8" },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *o = p11km_b64url((const unsigned char *)v[i].in, strlen(v[i].in));
		ck_assert_str_eq(o, v[i].out);
		free(o);
	}
}
END_TEST

START_TEST(b64url_decode_vectors)
{
	static const char *ok[] = { "", "Zg", "Zm8", "Zm9v", "Zm9vYg", "-_8", "Zm8=\n", "Zm9vYg==" };
	static const char *bad[] = { "Z", "Zm9vY", "Zm+v", "Zm/v", "Zm 9v", "Z=m8" };
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		size_t n = 99;
		unsigned char *d = p11km_b64url_decode(ok[i], &n);
		char *back = p11km_b64url(d, n);
		char want[16];
		ck_assert_ptr_nonnull(d);
		snprintf(want, sizeof(want), "%.*s", (int)strcspn(ok[i], "=\n"), ok[i]);
		ck_assert_str_eq(back, want);
		free(back);
		free(d);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = 0;
		unsigned char *d = p11km_b64url_decode(bad[i], &n);
		ck_assert_msg(d == NULL, "'%s' decoded", bad[i]);
	}
}
END_TEST

/* RFC 9773 4.1's example: its keyIdentifier and serial give its certID. */
START_TEST(ari_cert_id_rfc9773)
{
	static const unsigned char kid[] = { 0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
	                                     0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4 };
	X509 *x = X509_new();
	AUTHORITY_KEYID *ak = AUTHORITY_KEYID_new();
	BIGNUM *bn = NULL;
	char *id;

	ck_assert_int_gt(BN_hex2bn(&bn, "87654321"), 0);
	ck_assert_ptr_nonnull(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
	ak->keyid = ASN1_OCTET_STRING_new();
	ck_assert_int_eq(ASN1_OCTET_STRING_set(ak->keyid, kid, sizeof(kid)), 1);
	ck_assert_int_eq(X509_add1_ext_i2d(x, NID_authority_key_identifier, ak, 0, 0), 1);
	id = p11km_ari_cert_id(x);
	ck_assert_str_eq(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
	free(id);
	/* a serial whose high bit is clear gets no leading zero */
	ck_assert_int_gt(BN_hex2bn(&bn, "7F01"), 0);
	ck_assert_ptr_nonnull(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
	id = p11km_ari_cert_id(x);
	ck_assert_str_eq(id, "aYhba4dGQEHhs3uEe6CuLN4ByNQ.fwE");
	free(id);
	AUTHORITY_KEYID_free(ak);
	BN_free(bn);
	X509_free(x);
	/* no AKI: no id */
	x = X509_new();
	ck_assert_ptr_null(p11km_ari_cert_id(x));
	X509_free(x);
}
END_TEST

START_TEST(kinds)
{
	const struct p11km_ca_kind *k = NULL;

	ck_assert_int_eq(p11km_ca_kind_find("acme", &k), 0);
	ck_assert_str_eq(k->name, "acme");
	ck_assert_ptr_nonnull(k->submit);
	ck_assert_int_eq(p11km_ca_kind_find("cmp", &k), 0);
	ck_assert_str_eq(k->name, "cmp");
	ck_assert_ptr_nonnull(k->submit);
	ck_assert_ptr_nonnull(k->roots);
	ck_assert_int_eq(p11km_ca_kind_find("adcs", &k), 0);
	ck_assert_ptr_nonnull(k->submit);
	ck_assert_ptr_nonnull(k->roots);
	ck_assert_int_eq(p11km_ca_kind_find("helper", &k), 0);
	ck_assert_ptr_nonnull(k->submit);
	ck_assert_ptr_nonnull(k->roots);
	ck_assert_int_eq(p11km_ca_kind_find("acme", &k), 0);
	ck_assert_ptr_null(k->roots);
	ck_assert_int_eq(p11km_ca_kind_find("scep", &k), P11KM_ERR_USAGE);
}
END_TEST

START_TEST(profile_round_trip)
{
	struct p11km_ca_profile p = { 0 }, *q = NULL;
	char path[128], **names = NULL;
	struct stat st;
	size_t n = 0;

	ck_assert_int_eq(p11km_ca_kind_find("acme", &p.kind), 0);
	p.name = "le";
	p.directory = "https://acme.example/dir";
	p.ca_file = "/etc/roots.pem";
	p.account_key = "pkcs11:token=t;object=acct;type=private";
	p.agree_tos = 1;
	p.timeout = 7;
	ck_assert_int_eq(p11km_ca_profile_save(tmpdir, &p, 0), 0);
	ck_assert_int_eq(p11km_ca_profile_save(tmpdir, &p, 0), P11KM_ERR_EXISTS);
	snprintf(path, sizeof(path), "%s/le.json", tmpdir);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(p11km_ca_profile_load(tmpdir, "le", &q), 0);
	ck_assert_str_eq(q->directory, p.directory);
	ck_assert_str_eq(q->account_key, p.account_key);
	ck_assert_ptr_null(q->contact);
	ck_assert_int_eq(q->agree_tos, 1);
	ck_assert_int_eq(q->timeout, 7);
	p11km_ca_profile_free(q);
	ck_assert_int_eq(p11km_ca_profile_names(tmpdir, &names, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(names[0], "le");
	free(names[0]);
	free(names);
	ck_assert_int_eq(p11km_ca_profile_load(tmpdir, "../le", &q), P11KM_ERR_USAGE);
	ck_assert_int_eq(p11km_ca_profile_load(tmpdir, "none", &q), P11KM_ERR_NOTFOUND);
	ck_assert_int_eq(p11km_ca_profile_remove(tmpdir, "le"), 0);
	ck_assert_int_eq(p11km_ca_profile_remove(tmpdir, "le"), P11KM_ERR_NOTFOUND);
}
END_TEST

START_TEST(profile_cmp_round_trip)
{
	struct p11km_ca_profile p = { 0 }, *q = NULL;
	char *text;

	ck_assert_int_eq(p11km_ca_kind_find("cmp", &p.kind), 0);
	p.name = "pki";
	p.url = "http://127.0.0.1:8080/pkix/";
	p.secret = "file:/etc/p11km/pki.secret";
	p.ref = "client7";
	p.recipient = "/CN=Issuing CA";
	p.cmd = "ir";
	ck_assert_int_eq(p11km_ca_profile_save(tmpdir, &p, 0), 0);
	ck_assert_int_eq(p11km_ca_profile_load(tmpdir, "pki", &q), 0);
	ck_assert_str_eq(q->kind->name, "cmp");
	ck_assert_str_eq(q->url, p.url);
	ck_assert_str_eq(q->secret, p.secret);
	ck_assert_str_eq(q->ref, p.ref);
	ck_assert_str_eq(q->recipient, p.recipient);
	ck_assert_str_eq(q->cmd, "ir");
	ck_assert_ptr_null(q->directory);
	ck_assert_ptr_null(q->cert);
	ck_assert_ptr_null(q->key);
	text = p11km_ca_profile_json(q);
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_null(strstr(text, "directory"));
	free(text);
	p11km_ca_profile_free(q);
	ck_assert_int_eq(p11km_ca_profile_remove(tmpdir, "pki"), 0);
}
END_TEST

START_TEST(profile_helper_and_pending)
{
	struct p11km_ca_profile p = { 0 }, *q = NULL;
	struct p11km_ca_pending *pd = NULL;
	char *cmd[] = { "/usr/lib/certmonger/local-submit", "-v", NULL }, path[256], state[128];
	const unsigned char csr[] = "not really DER", csr2[] = "another";
	FILE *fp;

	ck_assert_int_eq(p11km_ca_kind_find("helper", &p.kind), 0);
	p.name = "lcl";
	p.command = cmd;
	p.n_command = 2;
	p.template_name = "Prof";
	ck_assert_int_eq(p11km_ca_profile_save(tmpdir, &p, 0), 0);
	ck_assert_int_eq(p11km_ca_profile_load(tmpdir, "lcl", &q), 0);
	ck_assert_uint_eq(q->n_command, 2);
	ck_assert_str_eq(q->command[0], cmd[0]);
	ck_assert_str_eq(q->command[1], "-v");
	ck_assert_ptr_null(q->command[2]);
	ck_assert_str_eq(q->template_name, "Prof");
	ck_assert_ptr_null(q->directory);
	p11km_ca_profile_free(q);
	ck_assert_int_eq(p11km_ca_profile_remove(tmpdir, "lcl"), 0);
	/* a relative helper path in a profile is refused */
	snprintf(path, sizeof(path), "%s/rel.json", tmpdir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs("{\"kind\": \"helper\", \"command\": [\"local-submit\"]}", fp);
	fclose(fp);
	ck_assert_int_eq(p11km_ca_profile_load(tmpdir, "rel", &q), P11KM_ERR_INPUT);
	unlink(path);

	/* pending state: one file per request and CA, kept until removed */
	snprintf(state, sizeof(state), "%s/state", tmpdir);
	ck_assert_int_eq(p11km_ca_pending_load(state, "lcl", csr, sizeof(csr), &pd), P11KM_ERR_NOTFOUND);
	ck_assert_int_eq(p11km_ca_pending_save(state, "lcl", csr, sizeof(csr), "c-1", 30, 0), 0);
	ck_assert_int_eq(p11km_ca_pending_load(state, "lcl", csr2, sizeof(csr2), &pd), P11KM_ERR_NOTFOUND);
	ck_assert_int_eq(p11km_ca_pending_load(state, "other", csr, sizeof(csr), &pd), P11KM_ERR_NOTFOUND);
	ck_assert_int_eq(p11km_ca_pending_load(state, "lcl", csr, sizeof(csr), &pd), 0);
	ck_assert_str_eq(pd->cookie, "c-1");
	ck_assert_int_eq(pd->delay, 30);
	ck_assert_int_gt(pd->since, 0);
	p11km_ca_pending_free(pd);
	ck_assert_int_eq(p11km_ca_pending_save(state, "lcl", csr, sizeof(csr), NULL, 0, 5), 0);
	ck_assert_int_eq(p11km_ca_pending_load(state, "lcl", csr, sizeof(csr), &pd), 0);
	ck_assert_ptr_null(pd->cookie);
	ck_assert_int_eq(pd->since, 5);
	p11km_ca_pending_free(pd);
	ck_assert_int_eq(p11km_ca_pending_remove(state, "lcl", csr, sizeof(csr)), 0);
	ck_assert_int_eq(p11km_ca_pending_load(state, "lcl", csr, sizeof(csr), &pd), P11KM_ERR_NOTFOUND);
	ck_assert_int_eq(p11km_ca_pending_save(state, "../x", csr, sizeof(csr), "c", 0, 0), P11KM_ERR_USAGE);
	snprintf(path, sizeof(path), "%s/pending", state);
	rmdir(path);
	rmdir(state);
}
END_TEST

START_TEST(profile_bad_json)
{
	struct p11km_ca_profile *q = NULL;
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/x.json", tmpdir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs("{\"kind\": \"acme\", \"directory\": 5}", fp);
	fclose(fp);
	ck_assert_int_eq(p11km_ca_profile_load(tmpdir, "x", &q), P11KM_ERR_INPUT);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fputs("{\"kind\": \"acme\", \"kind\": \"cmp\"}", fp);
	fclose(fp);
	ck_assert_int_eq(p11km_ca_profile_load(tmpdir, "x", &q), P11KM_ERR_INPUT);
	ck_assert_ptr_null(q);
}
END_TEST

static X509_REQ *
req_with_san(const char *san)
{
	X509_REQ *req = X509_REQ_new();
	EVP_PKEY *k = EVP_EC_gen("P-256");
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();

	ck_assert_ptr_nonnull(req);
	X509_REQ_set_pubkey(req, k);
	if (san != NULL) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
		ck_assert_ptr_nonnull(e);
		sk_X509_EXTENSION_push(exts, e);
		X509_REQ_add_extensions(req, exts);
	}
	ck_assert_int_gt(X509_REQ_sign(req, k, EVP_sha256()), 0);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	EVP_PKEY_free(k);
	return req;
}

START_TEST(identifiers)
{
	X509_REQ *req = req_with_san("DNS:a.example, IP:127.0.0.1, email:x@example, IP:::1");
	const char **types = NULL;
	char **values = NULL;
	size_t n = 0;

	ck_assert_int_eq(p11km_req_identifiers(req, &types, &values, &n), 0);
	ck_assert_uint_eq(n, 3);
	ck_assert_str_eq(types[0], "dns");
	ck_assert_str_eq(values[0], "a.example");
	ck_assert_str_eq(types[1], "ip");
	ck_assert_str_eq(values[1], "127.0.0.1");
	ck_assert_str_eq(types[2], "ip");
	ck_assert_str_eq(values[2], "::1");
	for (size_t i = 0; i < n; i++)
		free(values[i]);
	free(values);
	free(types);
	X509_REQ_free(req);
	req = req_with_san("email:x@example");
	ck_assert_int_eq(p11km_req_identifiers(req, &types, &values, &n), P11KM_ERR_INPUT);
	X509_REQ_free(req);
	req = req_with_san(NULL);
	ck_assert_int_eq(p11km_req_identifiers(req, &types, &values, &n), P11KM_ERR_INPUT);
	X509_REQ_free(req);
}
END_TEST

START_TEST(jws_es256_file_key)
{
	struct p11km_account_key k;
	char path[128], *jws = NULL, *input;
	json_t *o, *hdr;
	const char *prot, *pl, *sig;
	unsigned char *raw, *h, der[80], *dp = der;
	size_t raw_len, h_len;
	struct stat st;
	ECDSA_SIG *es;
	EVP_MD_CTX *md;
	int der_len;

	snprintf(path, sizeof(path), "%s/acct.key", tmpdir);
	ck_assert_int_eq(p11km_account_key_open(NULL, path, &k), 0);  /* made now */
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_str_eq(k.alg, "ES256");
	ck_assert_int_eq(strncmp(k.jwk, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"", 31), 0);
	ck_assert_int_eq(p11km_jws_sign(&k, "https://ca.example/new-acct", "bm9uY2U", NULL,
	                                "{\"a\":1}", &jws), 0);
	ck_assert_uint_eq(k.signatures, 1);
	ck_assert_ptr_nonnull(o = json_loads(jws, 0, NULL));
	prot = json_string_value(json_object_get(o, "protected"));
	pl = json_string_value(json_object_get(o, "payload"));
	sig = json_string_value(json_object_get(o, "signature"));
	ck_assert_str_eq(pl, "eyJhIjoxfQ");
	h = unb64url(prot, &h_len);
	ck_assert_ptr_nonnull(hdr = json_loadb((char *)h, h_len, 0, NULL));
	ck_assert_str_eq(json_string_value(json_object_get(hdr, "alg")), "ES256");
	ck_assert_str_eq(json_string_value(json_object_get(hdr, "nonce")), "bm9uY2U");
	ck_assert_str_eq(json_string_value(json_object_get(hdr, "url")), "https://ca.example/new-acct");
	ck_assert_ptr_nonnull(json_object_get(hdr, "jwk"));
	ck_assert_ptr_null(json_object_get(hdr, "kid"));
	/* r||s, 64 bytes, verifies over "protected.payload" */
	raw = unb64url(sig, &raw_len);
	ck_assert_uint_eq(raw_len, 64);
	es = ECDSA_SIG_new();
	ECDSA_SIG_set0(es, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
	der_len = i2d_ECDSA_SIG(es, &dp);
	input = p11km_asprintf("%s.%s", prot, pl);
	md = EVP_MD_CTX_new();
	ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k.pub), 1);
	ck_assert_int_eq(EVP_DigestVerify(md, der, (size_t)der_len, (unsigned char *)input,
	                                  strlen(input)), 1);
	EVP_MD_CTX_free(md);
	ECDSA_SIG_free(es);
	free(input);
	free(raw);
	free(h);
	json_decref(hdr);
	json_decref(o);
	free(jws);
	/* with a kid, no jwk; the key file is read again */
	p11km_account_key_release(&k);
	ck_assert_int_eq(p11km_account_key_open(NULL, path, &k), 0);
	ck_assert_int_eq(p11km_jws_sign(&k, "https://ca.example/x", "bm9uY2U", "https://ca.example/acct/1",
	                                NULL, &jws), 0);
	ck_assert_ptr_nonnull(o = json_loads(jws, 0, NULL));
	ck_assert_str_eq(json_string_value(json_object_get(o, "payload")), "");
	json_decref(o);
	free(jws);
	p11km_account_key_release(&k);
	/* a key file others can read is refused */
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(p11km_account_key_open(NULL, path, &k), P11KM_ERR_USAGE);
}
END_TEST

static Suite *
ca_suite(void)
{
	Suite *s = suite_create("ca");
	TCase *tc = tcase_create("ca");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, b64url_vectors);
	tcase_add_test(tc, b64url_decode_vectors);
	tcase_add_test(tc, ari_cert_id_rfc9773);
	tcase_add_test(tc, kinds);
	tcase_add_test(tc, profile_round_trip);
	tcase_add_test(tc, profile_cmp_round_trip);
	tcase_add_test(tc, profile_helper_and_pending);
	tcase_add_test(tc, profile_bad_json);
	tcase_add_test(tc, identifiers);
	tcase_add_test(tc, jws_es256_file_key);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	p11km_log_set(P11KM_LOG_QUIET, 0);
	return p11km_check_run(ca_suite());
}
