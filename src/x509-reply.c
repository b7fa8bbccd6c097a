/* x509-reply.c: reading CA replies and root files as CAs hand them out: PEM
 * (also PKCS#7 under CERTIFICATE armor), DER, bare base64, UTF-16 with a BOM. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>

#include "p11km/cert.h"
#include "p11km/util.h"

/* --- certificates and PKCS#7 ----------------------------------------------- */

static int
push_unique(STACK_OF(X509) *sk, X509 *x, size_t max, const char *what)
{
	for (int i = 0; i < sk_X509_num(sk); i++) {
		if (X509_cmp(sk_X509_value(sk, i), x) == 0) {
			X509_free(x);
			return 0;
		}
	}
	if ((size_t)sk_X509_num(sk) >= max) {
		X509_free(x);
		return p11km_fail(P11KM_ERR_INPUT,
		    "%s holds more than %zu certificates; split it or check that it is the right file",
		    what, max);
	}
	if (!sk_X509_push(sk, x)) {
		X509_free(x);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	return 0;
}

static int
add_pkcs7(STACK_OF(X509) *sk, const unsigned char *der, long len, size_t max, const char *what)
{
	const unsigned char *p = der;
	PKCS7 *p7 = d2i_PKCS7(NULL, &p, len);
	STACK_OF(X509) *certs = NULL;
	int r = 0, n;

	if (p7 == NULL || p != der + len) {
		PKCS7_free(p7);
		ERR_clear_error();
		return p11km_fail(P11KM_ERR_INPUT, "%s: the PKCS#7 structure does not parse", what);
	}
	if (PKCS7_type_is_signed(p7) && p7->d.sign != NULL)
		certs = p7->d.sign->cert;
	else if (PKCS7_type_is_signedAndEnveloped(p7) && p7->d.signed_and_enveloped != NULL)
		certs = p7->d.signed_and_enveloped->cert;
	n = certs ? sk_X509_num(certs) : 0;
	if (n == 0)
		r = p11km_fail(P11KM_ERR_INPUT,
		    "%s: the PKCS#7 file holds no certificates; ask the CA for the issued certificate",
		    what);
	for (int i = 0; r == 0 && i < n; i++) {
		X509 *x = sk_X509_value(certs, i);
		if (!X509_up_ref(x)) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			break;
		}
		r = push_unique(sk, x, max, what);
	}
	PKCS7_free(p7);
	return r;
}

/* One DER object: a certificate, else PKCS#7 (certsrv's base64 .p7b comes
 * under CERTIFICATE armor); either must use every byte. */
static int
add_der(STACK_OF(X509) *sk, const unsigned char *der, long len, int aux, size_t max,
        const char *what)
{
	const unsigned char *p = der;
	X509 *x = aux ? d2i_X509_AUX(NULL, &p, len) : d2i_X509(NULL, &p, len);
	PKCS7 *p7;
	int is_p7;

	if (x != NULL && p == der + len)
		return push_unique(sk, x, max, what);
	X509_free(x);
	ERR_clear_error();
	p = der;
	p7 = d2i_PKCS7(NULL, &p, len);
	is_p7 = p7 != NULL && p == der + len;
	PKCS7_free(p7);
	ERR_clear_error();
	if (is_p7)
		return add_pkcs7(sk, der, len, max, what);
	return p11km_fail(P11KM_ERR_INPUT,
	    "%s: DER data does not parse as a certificate or PKCS#7 (truncated, damaged, or "
	    "with trailing bytes)", what);
}

static int
has_pem(const unsigned char *data, size_t len)
{
	static const char tag[] = "-----BEGIN ";
	for (size_t i = 0; i + sizeof(tag) - 1 <= len; i++)
		if (memcmp(data + i, tag, sizeof(tag) - 1) == 0)
			return 1;
	return 0;
}

/* How many lines open with "-----BEGIN": each must be a whole block, so a reply
 * cut inside a BEGIN line (which OpenSSL skips as text) is not taken for a
 * shorter chain. */
static size_t
count_begin_lines(const unsigned char *data, size_t len)
{
	static const char tag[] = "-----BEGIN";
	size_t n = 0;
	for (size_t i = 0; i + sizeof(tag) - 1 <= len; i++)
		if ((i == 0 || data[i - 1] == '\n') && memcmp(data + i, tag, sizeof(tag) - 1) == 0)
			n++;
	return n;
}

static int
parse_pem(STACK_OF(X509) *sk, const unsigned char *data, size_t len, size_t max, const char *what)
{
	BIO *b = BIO_new_mem_buf(data, (int)len);
	size_t blocks = 0, begins = count_begin_lines(data, len);
	int r = 0;

	if (b == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (;;) {
		char *name = NULL, *header = NULL;
		unsigned char *der = NULL;
		long dlen = 0;
		if (PEM_read_bio(b, &name, &header, &der, &dlen) != 1) {
			unsigned long e = ERR_peek_last_error();
			ERR_clear_error();
			if (ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
				r = p11km_fail(P11KM_ERR_INPUT,
				    "%s: a PEM block is damaged (bad base64 or missing END line)", what);
			break;
		}
		blocks++;
		if (strcmp(name, PEM_STRING_X509) == 0 || strcmp(name, PEM_STRING_X509_OLD) == 0)
			r = add_der(sk, der, dlen, 0, max, what);
		else if (strcmp(name, PEM_STRING_X509_TRUSTED) == 0)
			r = add_der(sk, der, dlen, 1, max, what);
		else if (strcmp(name, PEM_STRING_PKCS7) == 0 || strcmp(name, "CERTIFICATE CHAIN") == 0)
			r = add_pkcs7(sk, der, dlen, max, what);
		else
			r = p11km_fail(P11KM_ERR_INPUT,
			    "%s holds a '%s' block; only certificates and PKCS#7 are accepted%s", what,
			    name, strstr(name, "PRIVATE") ? " (never send a private key around)" : "");
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
		if (r < 0)
			break;
	}
	BIO_free(b);
	if (r >= 0 && blocks < begins)
		r = p11km_fail(P11KM_ERR_INPUT,
		    "%s: a PEM block is cut off inside its BEGIN line (truncated file?); get the "
		    "whole reply again", what);
	return r;
}

/* --- text encodings: UTF-16 with a BOM, base64 with no armor --------------- */

static int
utf8_put(struct p11km_buf *b, unsigned long c)
{
	unsigned char u[4];
	size_t n;

	if (c < 0x80) {
		u[0] = (unsigned char)c;
		n = 1;
	} else if (c < 0x800) {
		u[0] = (unsigned char)(0xc0 | (c >> 6));
		u[1] = (unsigned char)(0x80 | (c & 0x3f));
		n = 2;
	} else if (c < 0x10000) {
		u[0] = (unsigned char)(0xe0 | (c >> 12));
		u[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
		u[2] = (unsigned char)(0x80 | (c & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | (c >> 18));
		u[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3f));
		u[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3f));
		u[3] = (unsigned char)(0x80 | (c & 0x3f));
		n = 4;
	}
	return p11km_buf_append(b, u, n);
}

/* UTF-16 text after its BOM (Windows "Unicode" saves) to UTF-8. */
static int
utf16_to_utf8(const unsigned char *p, size_t len, int be, const char *what, struct p11km_buf *out)
{
	const char *order = be ? "UTF-16BE" : "UTF-16LE";
	int r = 0;

	if (len % 2 != 0)
		return p11km_fail(P11KM_ERR_INPUT, "%s is %s text with an odd number of bytes "
		                  "(truncated); save it again as UTF-8 or ASCII", what, order);
	for (size_t i = 0; i < len && r == 0; i += 2) {
		unsigned long c = be ? (p[i] << 8 | p[i + 1]) : (p[i + 1] << 8 | p[i]), lo;
		if (c >= 0xd800 && c < 0xdc00 && i + 3 < len) {
			lo = be ? (p[i + 2] << 8 | p[i + 3]) : (p[i + 3] << 8 | p[i + 2]);
			if (lo >= 0xdc00 && lo < 0xe000) {
				c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
				i += 2;
			}
		}
		if (c == 0 || (c >= 0xd800 && c < 0xe000))
			return p11km_fail(P11KM_ERR_INPUT, "%s is %s text that does not decode (a NUL "
			                  "or a lone surrogate); save it again as UTF-8 or ASCII", what,
			                  order);
		r = utf8_put(out, c);
	}
	return r;
}

/* Looks like UTF-16 text that lost its BOM: ASCII characters with NUL bytes between. */
static int
utf16_without_bom(const unsigned char *p, size_t len)
{
	if (len < 4)
		return 0;
	return (p[1] == 0 && p[3] == 0 && p[0] >= 0x20 && p[0] < 0x7f && p[2] >= 0x20 &&
	        p[2] < 0x7f) ||
	       (p[0] == 0 && p[2] == 0 && p[1] >= 0x20 && p[1] < 0x7f && p[3] >= 0x20 &&
	        p[3] < 0x7f);
}

static int
b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/* Base64 with no PEM armor (certsrv's "Base 64 encoded" download): any line
 * length, CRLF or one line.  0 decoded into *out, 1 not base64 text, < 0 an
 * error (base64 that is cut short). */
static int
base64_bare(const unsigned char *p, size_t len, const char *what, struct p11km_buf *out)
{
	struct p11km_buf clean = { 0 };
	size_t pad = 0;
	int n, r = 0;

	for (size_t i = 0; i < len && r == 0; i++) {
		if (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')
			continue;
		if (p[i] == '=' ? pad >= 2 : (!b64_char(p[i]) || pad > 0))
			r = 1;
		else if ((r = p11km_buf_append(&clean, p + i, 1)) == 0 && p[i] == '=')
			pad++;
	}
	if (r == 0 && (clean.len < 4 || clean.len % 4 != 0))
		r = clean.len < 64 ? 1 : p11km_fail(P11KM_ERR_INPUT,
		    "%s: the base64 text is cut short (%zu characters, not a multiple of 4)", what,
		    clean.len);
	if (r == 0) {
		unsigned char *d = malloc(clean.len / 4 * 3 + 1);
		if (d == NULL)
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		else if ((n = EVP_DecodeBlock(d, clean.data, (int)clean.len)) < (int)pad)
			r = p11km_fail(P11KM_ERR_INPUT, "%s: the base64 text does not decode", what);
		else
			r = p11km_buf_append(out, d, (size_t)n - pad);
		free(d);
	}
	ERR_clear_error();
	p11km_buf_release(&clean);
	return r;
}

/* PEM text, DER, or bare base64 of DER. */
static int
parse_any(STACK_OF(X509) *sk, const unsigned char *data, size_t len, size_t max, const char *what)
{
	struct p11km_buf raw = { 0 };
	int r;

	if (has_pem(data, len))
		return parse_pem(sk, data, len, max, what);
	if (data[0] == 0x30)
		return add_der(sk, data, (long)len, 0, max, what);
	if ((r = base64_bare(data, len, what, &raw)) == 0)
		r = add_der(sk, raw.data, (long)raw.len, 0, max, what);
	else if (r == 1 && utf16_without_bom(data, len))
		r = p11km_fail(P11KM_ERR_INPUT, "%s looks like UTF-16 text without a byte order "
		               "mark; save it again as UTF-8 or ASCII", what);
	else if (r == 1)
		r = p11km_fail(P11KM_ERR_INPUT,
		    "%s is neither PEM nor DER nor base64; expected a certificate, a PEM bundle or "
		    "PKCS#7", what);
	p11km_buf_release(&raw);
	return r;
}

/* --- the entry points ----------------------------------------------------- */

int
p11km_certs_parse(const unsigned char *data, size_t len, const char *what, size_t max,
                  STACK_OF(X509) **out)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	struct p11km_buf text = { 0 };
	int r;

	*out = NULL;
	if (sk == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (len == 0) {
		r = p11km_fail(P11KM_ERR_INPUT, "%s is empty; expected a certificate (PEM, DER or "
		               "PKCS#7)", what);
	} else if (len > P11KM_CERT_FILE_MAX) {
		r = p11km_fail(P11KM_ERR_INPUT, "%s is larger than %u bytes", what,
		               P11KM_CERT_FILE_MAX);
	} else if (len >= 2 && (data[0] == 0xff || data[0] == 0xfe) && data[1] == (data[0] ^ 1)) {
		/* FF FE: UTF-16LE, FE FF: UTF-16BE */
		if ((r = utf16_to_utf8(data + 2, len - 2, data[0] == 0xfe, what, &text)) == 0)
			r = text.len == 0 ? p11km_fail(P11KM_ERR_INPUT, "%s is empty", what)
			                  : parse_any(sk, text.data, text.len, max, what);
	} else if (len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0) {
		r = len == 3 ? p11km_fail(P11KM_ERR_INPUT, "%s is empty", what)
		             : parse_any(sk, data + 3, len - 3, max, what);
	} else {
		r = parse_any(sk, data, len, max, what);
	}
	p11km_buf_release(&text);
	if (r == 0 && sk_X509_num(sk) == 0)
		r = p11km_fail(P11KM_ERR_INPUT, "%s holds no certificate", what);
	for (int i = 0; r == 0 && i < sk_X509_num(sk); i++)
		r = p11km_cert_check_serial(sk_X509_value(sk, i));
	if (r < 0) {
		sk_X509_pop_free(sk, X509_free);
		return r;
	}
	*out = sk;
	return 0;
}

int
p11km_certs_read(const char *path, size_t max, STACK_OF(X509) **out)
{
	unsigned char *data = NULL;
	size_t len = 0;
	char *what;
	int r;

	*out = NULL;
	if ((r = p11km_read_file(path, P11KM_CERT_FILE_MAX, &data, &len)) < 0)
		return r;
	what = strcmp(path, "-") == 0 ? strdup("standard input") : p11km_asprintf("'%s'", path);
	if (what == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	else
		r = p11km_certs_parse(data, len, what, max, out);
	free(what);
	free(data);
	return r;
}

