/* http.h: the HTTPS client p11km talks to online CAs with (libcurl).
 *
 * Never relies on libcurl's or the environment's defaults for trust: the CA
 * file is always set (CURLOPT_CAINFO) and CURL_CA_BUNDLE / SSL_CERT_FILE
 * are ignored.  HTTPS only, no redirects, a timeout per request, bounded
 * retries when the connection could not be made, and a cap on the size of
 * a response.
 */
#ifndef P11KM_HTTP_H
#define P11KM_HTTP_H

#include <stddef.h>

#define P11KM_HTTP_BODY_MAX (1u << 20)  /* bytes in one response */
#define P11KM_HTTP_RETRIES 3            /* connection attempts per request */
#define P11KM_HTTP_MAX_ALT 8            /* rel="alternate" links kept from one response */

enum p11km_http_auth {
	P11KM_HTTP_AUTH_NONE = 0,
	P11KM_HTTP_AUTH_BASIC,
	P11KM_HTTP_AUTH_NEGOTIATE, /* SPNEGO/Kerberos: the caller's credentials cache */
	P11KM_HTTP_AUTH_NTLM,
};

struct p11km_http {
	const char *ca_file;   /* trusted roots for the server (PEM); required for https */
	int allow_http;        /* http:// URLs too (AD CS --insecure-http; CMP) */
	int conn_close;        /* send Connection: close (CMP: one message per connection) */
	enum p11km_http_auth auth;
	const char *user, *password; /* basic, ntlm (borrowed; the password is wiped by its owner) */
	long timeout;          /* seconds for the whole request; 0: 30 */
	unsigned long requests; /* requests made (for --verbose) */
};

struct p11km_http_resp {
	long status;
	char *content_type;    /* without parameters, lower case; NULL if none */
	char *location, *replay_nonce, *retry_after; /* NULL if absent */
	char *link_up;         /* the Link: <...>;rel="up" target, if any */
	char *link_alt[P11KM_HTTP_MAX_ALT]; /* Link: rel="alternate" targets (RFC 8555 7.4.2) */
	size_t n_link_alt;
	char *auth_error;      /* negotiate: why GSS-API made no token ("gss_init_sec_context()
	                        * failed: ..."), as libcurl said it; NULL if it did not */
	char *www_auth;        /* a 401's WWW-Authenticate schemes ("Negotiate, NTLM"), or NULL */
	unsigned char *body;   /* NUL-terminated; body_len excludes the NUL */
	size_t body_len;
};

/*
 * One request: method "GET", "HEAD" or "POST" (body of body_len bytes with
 * content type ctype).  Any HTTP status is a success of this function (the
 * caller judges it); a transport failure, a TLS failure, a redirect, a body
 * over P11KM_HTTP_BODY_MAX or the timeout are errors with one-line messages
 * naming the URL.  *out is filled on success (release with
 * p11km_http_resp_release()).
 */
int p11km_http_request(struct p11km_http *h, const char *method, const char *url,
                       const char *ctype, const void *body, size_t body_len,
                       struct p11km_http_resp *out);
void p11km_http_resp_release(struct p11km_http_resp *r);

/* Do a and b have the same scheme, host and port?  1 yes, 0 no. */
int p11km_http_same_origin(const char *a, const char *b);

#endif
