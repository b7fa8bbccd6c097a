/* fuzz-certs.c: certificates as a CA sends them (src/x509-cert.c): one DER
 * certificate, DER or PEM PKCS#7, PEM bundles with TRUSTED CERTIFICATE
 * blocks; then everything 'cert install', 'roots install' and 'req renew'
 * do with what parsed: summaries, short names, key ids, the DER p11km
 * stores, chain ordering and verification against the input's own roots,
 * the checks before installing, the extensions a renewal copies. */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "fuzz.h"
#include "p11km/cert.h"
#include "p11km/req.h"
#include "p11km/util.h"
#include "p11km/x509.h"

/* The key types a renewal may be for (req renew --rekey --type). */
static const int key_types[] = { EVP_PKEY_RSA, EVP_PKEY_EC, EVP_PKEY_ED25519 };

static void
one_cert(X509 *x, STACK_OF(X509) *all)
{
	struct p11km_cert_summary cs;
	struct p11km_buf b = { 0 };
	unsigned char *der = NULL, md[32];
	size_t len = 0;
	char *s;
	STACK_OF(X509) *chain = NULL;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509 *root = NULL, *back = NULL;
	struct p11km_trust tr = { .anchors = all };

	if (p11km_cert_summary_x509(x, &cs) == 0) {
		FUZZ_ASSERT(cs.subject != NULL && cs.issuer != NULL && cs.serial != NULL);
		p11km_cert_summary_release(&cs);
	}
	free(p11km_cert_subject(x));
	free(p11km_cert_fingerprint(x));
	if ((s = p11km_cert_short_name(x, 64)) != NULL) {
		FUZZ_ASSERT(strlen(s) <= 64);
		for (const char *p = s; *p; p++)
			FUZZ_ASSERT((unsigned char)*p >= 0x20 && *p != 0x7f);
		free(s);
	}
	(void)p11km_cert_sha256(x, md);
	if (p11km_cert_keyid(x, &der, &len) == 0)
		free(der);
	if (p11km_cert_serial_der(x, &der, &len) == 0)
		free(der);
	for (int issuer = 0; issuer < 2; issuer++)
		if (p11km_cert_name_der(x, issuer, &der, &len) == 0)
			free(der);
	(void)p11km_cert_self_signed(x);
	(void)p11km_cert_check_anchor(x);
	(void)p11km_cert_check_usage(x);
	(void)p11km_cert_check_validity(x, 0);
	(void)p11km_cert_check_validity(x, 1);
	if (p11km_cert_pem_append(x, &b) == 0)
		p11km_buf_release(&b);
	for (size_t k = 0; k < sizeof(key_types) / sizeof(key_types[0]); k++) {
		struct p11km_names dropped = { 0 }, dropped_ku = { 0 };
		if (p11km_req_exts_from_cert(x, key_types[k], &exts, &dropped, &dropped_ku) == 0)
			sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
		exts = NULL;
		p11km_names_release(&dropped);
		p11km_names_release(&dropped_ku);
	}
	/* what p11km writes to a token reads back as the same certificate */
	if (p11km_cert_der(x, &der, &len) == 0) {
		FUZZ_ASSERT(p11km_cert_from_der(der, len, "the DER", &back) == 0);
		FUZZ_ASSERT(X509_cmp(x, back) == 0);
		X509_free(back);
		back = p11km_cert_x509_der(der, len);
		FUZZ_ASSERT(back != NULL);
		X509_free(back);
		free(der);
	}
	if (p11km_chain_order(x, all, &chain, &root) == 0) {
		FUZZ_ASSERT(sk_X509_num(chain) <= P11KM_CHAIN_MAX_DEPTH);
		sk_X509_free(chain);
	}
	(void)p11km_chain_verify(x, all, &tr);
	ERR_clear_error();
}

/* 'req renew --cert FILE' reads one certificate file (p11km_cert_load). */
static void
load_file(const uint8_t *data, size_t size)
{
	int fd = -1;
	char *path = fuzz_memfile(data, size, &fd);
	X509 *x = NULL;

	if (path == NULL)
		return;
	if (p11km_cert_load(path, &x) == 0)
		X509_free(x);
	close(fd);
	free(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	STACK_OF(X509) *sk = NULL;
	struct p11km_cert_summary cs;
	X509 *x = NULL;

	if (p11km_certs_parse(data, size, "the reply", P11KM_REPLY_MAX_CERTS, &sk) == 0) {
		FUZZ_ASSERT(sk_X509_num(sk) > 0 && sk_X509_num(sk) <= P11KM_REPLY_MAX_CERTS);
		for (int i = 0; i < sk_X509_num(sk); i++)
			one_cert(sk_X509_value(sk, i), sk);
		sk_X509_pop_free(sk, X509_free);
	} else {
		FUZZ_ASSERT(sk == NULL);
	}
	/* a token's CKA_VALUE, as 'req renew' and 'object list' read it */
	if (p11km_cert_from_der(data, size, "the token's certificate", &x) == 0)
		X509_free(x);
	if (p11km_cert_summary(data, size, &cs) == 0)
		p11km_cert_summary_release(&cs);
	load_file(data, size);
	p11km_error_clear();
	ERR_clear_error();
	return 0;
}
