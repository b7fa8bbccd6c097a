/* bind-verify.c: connect to a running server and check what it serves. */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "p11km/bind.h"
#include "p11km/util.h"
#include "p11km/x509.h"

/* Seconds to wait for the server at each step. */
#define VERIFY_TIMEOUT 10

void
p11km_verify_result_release(struct p11km_verify_result *res)
{
	free(res->subject);
	free(res->issuer);
	free(res->serial);
	free(res->not_after);
	free(res->sha256);
	free(res->protocol);
	free(res->cipher);
	free(res->expected_serial);
	free(res->chain_error);
	memset(res, 0, sizeof(*res));
}

static int
split_addr(const char *addr, char *host, size_t hlen, char *port, size_t plen)
{
	const char *colon;

	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');
		if (rb == NULL || rb[1] != ':' || (size_t)(rb - addr) > hlen)
			goto bad;
		snprintf(host, hlen, "%.*s", (int)(rb - addr - 1), addr + 1);
		colon = rb + 1;
	} else {
		if ((colon = strrchr(addr, ':')) == NULL || colon == addr ||
		    (size_t)(colon - addr) >= hlen)
			goto bad;
		snprintf(host, hlen, "%.*s", (int)(colon - addr), addr);
	}
	if (colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
	    strlen(colon + 1) >= plen)
		goto bad;
	snprintf(port, plen, "%s", colon + 1);
	return 0;
bad:
	return p11km_fail(P11KM_ERR_USAGE, "invalid address '%s': use HOST:PORT or [IPv6]:PORT",
	                  addr);
}

static int
connect_to(const char *addr, int *out)
{
	char host[256], port[16];
	struct addrinfo hints, *ai = NULL, *a;
	struct timeval tv = { VERIFY_TIMEOUT, 0 };
	int fd = -1, r, err = 0;

	if ((r = split_addr(addr, host, sizeof(host), port, sizeof(port))) < 0)
		return r;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((r = getaddrinfo(host, port, &hints, &ai)) != 0)
		return p11km_fail(P11KM_ERR_USAGE, "cannot resolve '%s': %s", host, gai_strerror(r));
	for (a = ai; a != NULL; a = a->ai_next) {
		if ((fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol)) < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd < 0)
		return p11km_fail(P11KM_ERR_IO, "cannot connect to %s: %s; is the server running?",
		                  addr, strerror(err));
	*out = fd;
	return 0;
}

static int
same_der(X509 *a, X509 *b)
{
	unsigned char *da = NULL, *db = NULL;
	int la = i2d_X509(a, &da), lb = i2d_X509(b, &db);
	int same = la > 0 && la == lb && memcmp(da, db, (size_t)la) == 0;

	OPENSSL_free(da);
	OPENSSL_free(db);
	return same;
}

int
p11km_bind_verify(const char *addr, const char *server_name, X509 *expected,
                  const char *ca_file, const char *ca_path, struct p11km_verify_result *res)
{
	SSL_CTX *sctx = NULL;
	SSL *ssl = NULL;
	X509 *peer = NULL;
	struct p11km_cert_summary sum;
	int fd = -1, r;
	long vr;

	memset(res, 0, sizeof(*res));
	memset(&sum, 0, sizeof(sum));
	if ((r = connect_to(addr, &fd)) < 0)
		return r;
	if ((sctx = SSL_CTX_new(TLS_client_method())) == NULL || (ssl = SSL_new(sctx)) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "unable to set up TLS: %s", p11km_openssl_error());
		goto out;
	}
	if ((ca_file || ca_path) && SSL_CTX_load_verify_locations(sctx, ca_file, ca_path) != 1) {
		r = p11km_fail(P11KM_ERR_INPUT, "cannot load the CA certificates from '%s': %s",
		               ca_file ? ca_file : ca_path, p11km_openssl_error());
		goto out;
	}
	SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	SSL_set_fd(ssl, fd);
	if (server_name != NULL) {
		SSL_set_tlsext_host_name(ssl, server_name);
		if (ca_file || ca_path)
			SSL_set1_host(ssl, server_name);
	}
	if (SSL_connect(ssl) != 1) {
		r = p11km_fail(P11KM_ERR_VERIFY, "TLS handshake with %s failed: %s; is it a TLS port, "
		               "and does the server load its key ('p11km bind check' on its binding)?",
		               addr, p11km_openssl_error());
		goto out;
	}
	if ((peer = SSL_get1_peer_certificate(ssl)) == NULL) {
		r = p11km_fail(P11KM_ERR_VERIFY, "%s sent no certificate; configure the server with "
		               "one ('p11km bind emit')", addr);
		goto out;
	}
	if ((r = p11km_cert_summary_x509(peer, &sum)) < 0)
		goto out;
	res->subject = sum.subject; sum.subject = NULL;
	res->issuer = sum.issuer; sum.issuer = NULL;
	res->serial = sum.serial; sum.serial = NULL;
	res->not_after = sum.not_after; sum.not_after = NULL;
	res->sha256 = sum.sha256; sum.sha256 = NULL;
	res->days_left = sum.days_left;
	res->protocol = strdup(SSL_get_version(ssl));
	res->cipher = strdup(SSL_get_cipher_name(ssl));
	if (expected != NULL) {
		struct p11km_cert_summary es;
		res->compared = 1;
		res->matches = same_der(peer, expected);
		if (p11km_cert_summary_x509(expected, &es) == 0) {
			res->expected_serial = es.serial;
			es.serial = NULL;
			p11km_cert_summary_release(&es);
		}
	}
	if (ca_file || ca_path) {
		res->chain_checked = 1;
		vr = SSL_get_verify_result(ssl);
		res->chain_ok = vr == X509_V_OK;
		if (!res->chain_ok)
			res->chain_error = strdup(X509_verify_cert_error_string(vr));
	}
	r = 0;
out:
	p11km_cert_summary_release(&sum);
	X509_free(peer);
	if (ssl != NULL)
		SSL_shutdown(ssl);
	SSL_free(ssl);
	SSL_CTX_free(sctx);
	if (fd >= 0)
		close(fd);
	if (r < 0)
		p11km_verify_result_release(res);
	return r;
}

int
p11km_bind_load_cert(struct p11km_ctx *ctx, const char *spec, X509 **out)
{
	struct p11km_uri *uri = NULL;
	struct p11km_token *tok = NULL;
	struct p11km_session s;
	struct p11km_object o;
	unsigned char *data = NULL;
	size_t len = 0;
	const unsigned char *p;
	int r, sopen = 0;

	*out = NULL;
	memset(&o, 0, sizeof(o));
	if (strncmp(spec, "pkcs11:", 7) == 0) {
		if ((r = p11km_uri_parse(spec, &uri)) < 0 ||
		    (r = p11km_token_open(ctx, uri, 0, &tok, &s)) < 0)
			goto out;
		sopen = 1;
		if ((r = p11km_object_find_one(&s, uri, CKO_CERTIFICATE, &o)) < 0)
			goto out;
		p = o.value;
		if ((*out = d2i_X509(NULL, &p, (long)o.value_len)) == NULL)
			r = p11km_fail(P11KM_ERR_INPUT, "the certificate on the token does not parse");
		goto out;
	}
	if ((r = p11km_read_file(spec, 1 << 20, &data, &len)) < 0)
		goto out;
	{
		BIO *b = BIO_new_mem_buf(data, (int)len);
		*out = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
	}
	p = data;
	if (*out == NULL && (*out = d2i_X509(NULL, &p, (long)len)) == NULL)
		r = p11km_fail(P11KM_ERR_INPUT, "'%s' holds no certificate (PEM or DER)", spec);
	ERR_clear_error();
out:
	free(data);
	p11km_object_release(&o);
	if (sopen)
		p11km_session_close(&s);
	p11km_token_free(tok);
	p11km_uri_free(uri);
	return r;
}
