/* fuzz-req.c: what 'req new' and 'req renew' parse from argv
 * (src/x509-name.c): --subject (RFC 4514 and /A=B/ forms), --san,
 * --key-usage, --ext-key-usage; then what the command does with them: the
 * CN-to-SAN default, the extensions, a request signed with a software key
 * and verified, its PEM and DER.  The input holds the four options one a
 * line: SUBJECT \n SAN \n KU \n EKU (an empty line leaves one out). */
#include "config.h"

#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "fuzz.h"
#include "p11km/req.h"
#include "p11km/sign.h"
#include "p11km/util.h"
#include "p11km/x509.h"

static struct p11km_signer *signer;

/* The software key requests are signed with, made once. */
static struct p11km_signer *
get_signer(void)
{
	EVP_PKEY *k;

	if (signer != NULL)
		return signer;
	if ((k = EVP_EC_gen("P-256")) == NULL || p11km_soft_signer_new(k, NULL, 0, &signer) != 0) {
		fprintf(stderr, "fuzz-req: unable to make a software key\n");
		abort();
	}
	EVP_PKEY_free(k);
	return signer;
}

/* The next line of the input as a string (NULL when empty or absent). */
static char *
next_line(const uint8_t **data, size_t *size)
{
	const uint8_t *rest;
	size_t rest_size, n = fuzz_split(*data, *size, '\n', &rest, &rest_size);
	char *s = n > 0 ? fuzz_string(*data, n) : NULL;

	*data = rest;
	*size = rest_size;
	return s;
}

static void
names_text(const GENERAL_NAMES *gens)
{
	for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		char *t = p11km_general_name_text(sk_GENERAL_NAME_value(gens, i));
		FUZZ_ASSERT(t != NULL);
		free(t);
	}
}

/* op-req.c's tls_defaults(): a CN that is a host name or an address
 * becomes the subjectAltName when --san is not given. */
static void
cn_default(X509_NAME *subject, GENERAL_NAMES **gens)
{
	int loc = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	const ASN1_STRING *cn = loc >= 0 ?
	    X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, loc)) : NULL;
	char *cns = cn ? p11km_asprintf("%.*s", ASN1_STRING_length(cn),
	                                ASN1_STRING_get0_data(cn)) : NULL, *spec;

	if (cns != NULL && (p11km_is_hostname(cns) || p11km_is_ip(cns))) {
		spec = p11km_asprintf("%s:%s", p11km_is_ip(cns) ? "IP" : "DNS", cns);
		/* a CN p11km calls a host name or address is one --san accepts */
		FUZZ_ASSERT(spec == NULL || p11km_san_parse(spec, gens) == 0);
		free(spec);
	}
	free(cns);
}

static void
build(X509_NAME *subject, GENERAL_NAMES *gens, X509_EXTENSION *ku, X509_EXTENSION *eku)
{
	STACK_OF(X509_EXTENSION) *exts = NULL;
	X509_EXTENSION *e;
	X509_REQ *req = NULL;
	unsigned char *out;
	size_t len;

	if (gens != NULL && sk_GENERAL_NAME_num(gens) > 0 &&
	    (e = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens)) != NULL)
		FUZZ_ASSERT(p11km_exts_set(&exts, e) == 0);
	if (ku != NULL)
		FUZZ_ASSERT(p11km_exts_set(&exts, X509_EXTENSION_dup(ku)) == 0);
	if (eku != NULL)
		FUZZ_ASSERT(p11km_exts_set(&exts, X509_EXTENSION_dup(eku)) == 0);
	/* p11km checks every request it signs; with a good key it must verify */
	FUZZ_ASSERT(p11km_req_build(subject, exts, get_signer(), &req) == 0);
	for (int der = 0; der < 2; der++)
		if (p11km_req_encode(req, der, &out, &len) == 0)
			free(out);
	X509_REQ_free(req);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *subj = next_line(&data, &size), *san = next_line(&data, &size);
	char *ku_s = next_line(&data, &size), *eku_s = next_line(&data, &size);
	X509_NAME *subject = NULL;
	GENERAL_NAMES *gens = NULL;
	X509_EXTENSION *ku = NULL, *eku = NULL;
	int ok = 1;

	if (subj != NULL) {
		if (p11km_name_parse(subj, &subject) == 0) {
			char *t = p11km_name_text(subject);
			FUZZ_ASSERT(t != NULL);
			free(t);
		} else {
			FUZZ_ASSERT(subject == NULL);
			ok = 0;
		}
	}
	if (san != NULL) {
		(void)p11km_is_hostname(san);
		(void)p11km_is_ip(san);
		if (p11km_san_parse(san, &gens) == 0) {
			names_text(gens);
		} else {
			FUZZ_ASSERT(gens == NULL);
			ok = 0;
		}
	}
	if (ku_s != NULL && p11km_ku_parse(ku_s, &ku) != 0)
		ok = 0;
	if (eku_s != NULL && p11km_eku_parse(eku_s, &eku) != 0)
		ok = 0;
	if (ok && subject != NULL) {
		if (san == NULL)
			cn_default(subject, &gens);
		build(subject, gens, ku, eku);
	}
	X509_NAME_free(subject);
	GENERAL_NAMES_free(gens);
	X509_EXTENSION_free(ku);
	X509_EXTENSION_free(eku);
	free(subj);
	free(san);
	free(ku_s);
	free(eku_s);
	p11km_error_clear();
	ERR_clear_error();
	return 0;
}
