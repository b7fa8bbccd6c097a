/* http.c: the HTTPS client for online CAs (libcurl), see http.h. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "p11km/http.h"
#include "p11km/util.h"

struct sink {
	struct p11km_buf b;
	int over;
};

static size_t
on_body(char *p, size_t size, size_t n, void *arg)
{
	struct sink *s = arg;
	size_t len = size * n;

	if (s->b.len + len > P11KM_HTTP_BODY_MAX) {
		s->over = 1;
		return 0; /* aborts the transfer */
	}
	if (p11km_buf_append(&s->b, p, len) < 0)
		return 0;
	return len;
}

/* Negotiate: libcurl says why GSS-API gave it no token (no ticket, no way
 * to the service's realm) only as an informational text; the last such
 * line is kept for the error message.  Nothing else of the debug stream
 * (headers, data: the Authorization header) is looked at. */
static int
on_debug(CURL *c, curl_infotype type, char *data, size_t size, void *arg)
{
	char **gss = arg;
	size_t n = size;

	(void)c;
	if (type != CURLINFO_TEXT || size < 4 || strncmp(data, "gss_", 4) != 0)
		return 0;
	while (n > 0 && (isspace((unsigned char)data[n - 1]) || data[n - 1] == '.'))
		n--;
	free(*gss);
	*gss = strndup(data, n);
	return 0;
}

static char *
header_dup(CURL *c, const char *name)
{
	struct curl_header *hd = NULL;

	if (curl_easy_header(c, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK || hd == NULL)
		return NULL;
	return strdup(hd->value);
}

/* The targets of the Link headers with rel="up" (the issuer chain) and
 * rel="alternate" (other chains, RFC 8555 7.4.2). */
static void
links(CURL *c, struct p11km_http_resp *r)
{
	struct curl_header *hd = NULL;
	size_t n = 0;

	for (size_t i = 0; curl_easy_header(c, "Link", i, CURLH_HEADER, -1, &hd) == CURLHE_OK; i++) {
		const char *v = hd->value, *lt = strchr(v, '<'), *gt = lt ? strchr(lt, '>') : NULL;
		n = hd->amount;
		if (gt != NULL && r->link_up == NULL && strstr(gt, "rel=\"up\"") != NULL)
			r->link_up = strndup(lt + 1, (size_t)(gt - lt - 1));
		else if (gt != NULL && r->n_link_alt < P11KM_HTTP_MAX_ALT &&
		         strstr(gt, "rel=\"alternate\"") != NULL &&
		         (r->link_alt[r->n_link_alt] = strndup(lt + 1, (size_t)(gt - lt - 1))) != NULL)
			r->n_link_alt++;
		if (i + 1 >= n)
			break;
	}
}

/* The schemes of the last response's WWW-Authenticate headers ("Negotiate,
 * NTLM"), without their parameters; NULL if none. */
static char *
auth_schemes(CURL *c)
{
	struct curl_header *hd = NULL;
	struct p11km_buf b = { 0 };
	char *out = NULL;

	for (size_t i = 0; i < 8 && curl_easy_header(c, "WWW-Authenticate", i, CURLH_HEADER, -1,
	                                              &hd) == CURLHE_OK; i++) {
		size_t n = strcspn(hd->value, " \t,");
		if (n == 0 || n > 32 ||
		    (b.len > 0 && p11km_buf_append(&b, ", ", 2) < 0) ||
		    p11km_buf_append(&b, hd->value, n) < 0)
			break;
		if (i + 1 >= hd->amount)
			break;
	}
	if (b.len > 0 && p11km_buf_append(&b, "", 1) == 0) {
		out = (char *)b.data;
		b.data = NULL;
	}
	p11km_buf_release(&b);
	return out;
}

static char *
content_type(CURL *c)
{
	char *ct = NULL, *dup;

	if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) != CURLE_OK || ct == NULL)
		return NULL;
	if ((dup = strndup(ct, strcspn(ct, "; \t"))) == NULL)
		return NULL;
	for (char *p = dup; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return dup;
}

static int
setup(CURL *c, struct p11km_http *h, const char *method, const char *url, const char *ctype,
      const void *body, size_t body_len, struct curl_slist **hdrs, struct sink *sink,
      char **gss)
{
	struct curl_slist *more;
	char *cth;

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, h->allow_http ? "http,https" : "https");
	if (h->auth != P11KM_HTTP_AUTH_NONE) {
		curl_easy_setopt(c, CURLOPT_HTTPAUTH, h->auth == P11KM_HTTP_AUTH_BASIC ? CURLAUTH_BASIC :
		                 h->auth == P11KM_HTTP_AUTH_NTLM ? CURLAUTH_NTLM : CURLAUTH_NEGOTIATE);
		curl_easy_setopt(c, CURLOPT_USERNAME, h->user ? h->user : "");
		curl_easy_setopt(c, CURLOPT_PASSWORD, h->password ? h->password : "");
	}
	if (h->auth == P11KM_HTTP_AUTH_NEGOTIATE) {
		/* the CA gets a service ticket, never the caller's delegated TGT */
		curl_easy_setopt(c, CURLOPT_GSSAPI_DELEGATION, CURLGSSAPI_DELEGATION_NONE);
		curl_easy_setopt(c, CURLOPT_DEBUGFUNCTION, on_debug);
		curl_easy_setopt(c, CURLOPT_DEBUGDATA, gss);
		curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
	}
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	/* the profile's CA file and nothing else (the environment's bundles are not read) */
	curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_TIMEOUT, h->timeout > 0 ? h->timeout : 30L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, h->timeout > 0 && h->timeout < 10 ? h->timeout : 10L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "p11km/" PACKAGE_VERSION);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)P11KM_HTTP_BODY_MAX);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
	/* one connection per request (a new handle each time): say so where a
	 * server keeping it open would wait on it for the next message (openssl
	 * cmp's mock then drops the CMP transaction); not for NTLM, whose
	 * handshake needs the connection */
	if (h->conn_close) {
		if ((*hdrs = curl_slist_append(*hdrs, "Connection: close")) == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
	}
	if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
		if ((cth = p11km_asprintf("Content-Type: %s", ctype)) == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		more = curl_slist_append(*hdrs, cth);
		free(cth);
		if (more == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		*hdrs = more;
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
	}
	return 0;
}

static int
transport_error(CURLcode cr, const char *url, const char *errbuf, const struct sink *sink,
                long timeout)
{
	if (sink->over || cr == CURLE_FILESIZE_EXCEEDED)
		return p11km_fail(P11KM_ERR_INPUT, "the answer from '%s' is larger than %u bytes; "
		                  "refused", url, P11KM_HTTP_BODY_MAX);
	if (cr == CURLE_OPERATION_TIMEDOUT)
		return p11km_fail(P11KM_ERR_FAILED, "'%s' did not answer within %ld s; try again "
		                  "later or raise the profile's --timeout", url, timeout > 0 ? timeout : 30L);
	if (cr == CURLE_PEER_FAILED_VERIFICATION || cr == CURLE_SSL_CACERT_BADFILE)
		return p11km_fail(P11KM_ERR_VERIFY, "the TLS certificate of '%s' does not verify "
		                  "against the profile's CA file: %s", url, errbuf[0] ? errbuf :
		                  curl_easy_strerror(cr));
	if (cr == CURLE_UNSUPPORTED_PROTOCOL)
		return p11km_fail(P11KM_ERR_USAGE, "'%s' is not an https URL; online CAs are reached "
		                  "over HTTPS only", url);
	return p11km_fail(P11KM_ERR_FAILED, "request to '%s' failed: %s", url,
	                  errbuf[0] ? errbuf : curl_easy_strerror(cr));
}

int
p11km_http_request(struct p11km_http *h, const char *method, const char *url,
                   const char *ctype, const void *body, size_t body_len,
                   struct p11km_http_resp *out)
{
	struct p11km_http_resp r = { 0 };
	struct curl_slist *hdrs = NULL;
	struct sink sink = { { 0 }, 0 };
	char errbuf[CURL_ERROR_SIZE];
	CURLcode cr = CURLE_OK;
	CURL *c = NULL;
	char *gss = NULL;
	int rv;

	memset(out, 0, sizeof(*out));
	if (h->ca_file == NULL && !(h->allow_http && strncmp(url, "http://", 7) == 0))
		return p11km_fail(P11KM_ERR_USAGE, "no CA file for '%s': give the profile --ca-file",
		                  url);
	for (int attempt = 1; attempt <= P11KM_HTTP_RETRIES; attempt++) {
		curl_easy_cleanup(c);
		curl_slist_free_all(hdrs);
		hdrs = NULL;
		p11km_buf_release(&sink.b);
		sink.over = 0;
		free(gss);
		gss = NULL;
		if ((c = curl_easy_init()) == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		errbuf[0] = '\0';
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
		if ((rv = setup(c, h, method, url, ctype, body, body_len, &hdrs, &sink, &gss)) < 0)
			goto out;
		h->requests++;
		p11km_trace("http: %s %s", method, url);
		cr = curl_easy_perform(c);
		/* only a connection never made is retried: nothing reached the CA */
		if (cr != CURLE_COULDNT_CONNECT || attempt == P11KM_HTTP_RETRIES)
			break;
		p11km_verbose("could not connect to '%s' (attempt %d of %d); retrying", url, attempt,
		              P11KM_HTTP_RETRIES);
		sleep((unsigned)attempt);
	}
	if (cr != CURLE_OK) {
		rv = transport_error(cr, url, errbuf, &sink, h->timeout);
		goto out;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	if (r.status >= 300 && r.status < 400) {
		char *loc = header_dup(c, "Location");
		rv = p11km_fail(P11KM_ERR_INPUT, "'%s' answered with a redirect (HTTP %ld) to '%s'; "
		                "redirects are not followed", url, r.status, loc ? loc : "?");
		free(loc);
		goto out;
	}
	r.content_type = content_type(c);
	r.location = header_dup(c, "Location");
	r.replay_nonce = header_dup(c, "Replay-Nonce");
	r.retry_after = header_dup(c, "Retry-After");
	links(c, &r);
	if (r.status == 401)
		r.www_auth = auth_schemes(c);
	r.auth_error = gss;
	gss = NULL;
	if (p11km_buf_append(&sink.b, "", 1) < 0) {
		rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	r.body_len = sink.b.len - 1;
	r.body = sink.b.data;
	sink.b.data = NULL;
	*out = r;
	memset(&r, 0, sizeof(r));
	rv = 0;
out:
	p11km_http_resp_release(&r);
	p11km_buf_release(&sink.b);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(gss);
	return rv;
}

void
p11km_http_resp_release(struct p11km_http_resp *r)
{
	if (r == NULL)
		return;
	free(r->content_type);
	free(r->location);
	free(r->replay_nonce);
	free(r->retry_after);
	free(r->link_up);
	free(r->auth_error);
	free(r->www_auth);
	for (size_t i = 0; i < r->n_link_alt; i++)
		free(r->link_alt[i]);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

int
p11km_http_same_origin(const char *a, const char *b)
{
	CURLU *ua = curl_url(), *ub = curl_url();
	char *sa = NULL, *sb = NULL, *ha = NULL, *hb = NULL, *pa = NULL, *pb = NULL;
	int same = 0;

	if (ua && ub && curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
	    curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK &&
	    curl_url_get(ua, CURLUPART_SCHEME, &sa, 0) == CURLUE_OK &&
	    curl_url_get(ub, CURLUPART_SCHEME, &sb, 0) == CURLUE_OK &&
	    curl_url_get(ua, CURLUPART_HOST, &ha, 0) == CURLUE_OK &&
	    curl_url_get(ub, CURLUPART_HOST, &hb, 0) == CURLUE_OK &&
	    curl_url_get(ua, CURLUPART_PORT, &pa, CURLU_DEFAULT_PORT) == CURLUE_OK &&
	    curl_url_get(ub, CURLUPART_PORT, &pb, CURLU_DEFAULT_PORT) == CURLUE_OK)
		same = strcasecmp(sa, sb) == 0 && strcasecmp(ha, hb) == 0 && strcmp(pa, pb) == 0;
	curl_free(sa); curl_free(sb); curl_free(ha); curl_free(hb); curl_free(pa); curl_free(pb);
	curl_url_cleanup(ua);
	curl_url_cleanup(ub);
	return same;
}
