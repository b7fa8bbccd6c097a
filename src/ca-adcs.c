/* ca-adcs.c: Microsoft AD CS web enrollment (certsrv): the request goes
 * to certfnsh.asp as its form does; the answer page names the request id
 * (ReqID); the chain comes from certnew.p7b?ReqID=N, the CA's certificate
 * from certnew.cer?ReqID=CACert.  A request the CA holds for a manager's
 * approval ("Your Request Id is N", no certnew link) is pending with the
 * request id as its cookie, and polled at certnew.p7b?ReqID=N.
 * Basic, Negotiate (the caller's Kerberos ticket, SPNEGO through libcurl's
 * GSS-API) or NTLM through libcurl; https unless the profile says
 * --insecure-http. */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "p11km/ca.h"
#include "p11km/http.h"
#include "p11km/pin.h"
#include "p11km/util.h"

#define REQID_MAX 20  /* digits */

struct adcs {
	const struct p11km_ca_profile *p;
	struct p11km_ca_submit *sub;
	struct p11km_http http;
	char *password;
	size_t password_len;
};

static void
step(struct adcs *a, const char *name, const char *detail)
{
	if (a->sub != NULL && a->sub->step != NULL)
		a->sub->step(a->sub->step_arg, name, detail);
}

static int
adcs_open(const struct p11km_ca_profile *p, struct p11km_ca_submit *sub, struct adcs *a)
{
	struct p11km_pinsrc ps = { 0 };
	int r = 0;

	memset(a, 0, sizeof(*a));
	a->p = p;
	a->sub = sub;
	if (p->url == NULL || p->template_name == NULL)
		return p11km_fail(P11KM_ERR_INPUT, "CA profile '%s' has no \"url\" or \"template\"",
		                  p->name);
	if (strncmp(p->url, "https://", 8) != 0 && !p->insecure_http)
		return p11km_fail(P11KM_ERR_USAGE, "CA '%s': '%s' is not an https URL, and the profile "
		                  "does not allow plain HTTP (ca add --insecure-http)", p->name, p->url);
	a->http.ca_file = p->ca_file;
	a->http.timeout = p->timeout;
	a->http.allow_http = p->insecure_http;
	if (p->insecure_http && strncmp(p->url, "http://", 7) == 0)
		p11km_warn("CA '%s' is reached over plain HTTP: the request%s cross the network "
		           "unprotected", p->name, p->auth ? " and the credentials" : "");
	if (p->auth == NULL)
		return 0;
	a->http.auth = strcmp(p->auth, "basic") == 0 ? P11KM_HTTP_AUTH_BASIC :
	               strcmp(p->auth, "ntlm") == 0 ? P11KM_HTTP_AUTH_NTLM : P11KM_HTTP_AUTH_NEGOTIATE;
	a->http.user = p->user;
	/* Negotiate takes the caller's Kerberos ticket, never a password */
	if (p->password_source != NULL && a->http.auth != P11KM_HTTP_AUTH_NEGOTIATE) {
		p11km_pin_env_hide(p->password_source);
		if ((r = p11km_pinsrc_parse(p->password_source, 0, &ps)) == 0)
			r = p11km_pin_read(&ps, "AD CS password: ", &a->password, &a->password_len);
		p11km_pinsrc_release(&ps);
		a->http.password = a->password;
	}
	return r;
}

static void
adcs_close(struct adcs *a)
{
	if (a->password != NULL)
		p11km_pin_free(a->password, a->password_len);
	a->password = NULL;
	if (a->sub != NULL)
		a->sub->requests += a->http.requests;
}

/* application/x-www-form-urlencoded */
static int
form_append(struct p11km_buf *b, const char *key, const char *val)
{
	static const char hex[] = "0123456789ABCDEF";
	int r = (b->len > 0 ? p11km_buf_append(b, "&", 1) : 0) |
	        p11km_buf_append(b, key, strlen(key)) | p11km_buf_append(b, "=", 1);

	for (const unsigned char *s = (const unsigned char *)val; r == 0 && *s; s++) {
		char e[3] = { '%', hex[*s >> 4], hex[*s & 15] };
		if (isalnum(*s) || *s == '-' || *s == '.' || *s == '_' || *s == '~')
			r = p11km_buf_append(b, s, 1);
		else if (*s == ' ')
			r = p11km_buf_append(b, "+", 1);
		else
			r = p11km_buf_append(b, e, 3);
	}
	return r < 0 ? p11km_fail(P11KM_ERR_NOMEM, "out of memory") : 0;
}

/* The page's text: tags dropped, white space folded, at most 200 bytes (static). */
static const char *
page_text(const unsigned char *body, size_t len)
{
	static char t[201];
	size_t k = 0;
	int tag = 0, sp = 1;

	for (size_t i = 0; i < len && k < sizeof(t) - 1; i++) {
		char c = (char)body[i];
		if (c == '<')
			tag = 1;
		else if (c == '>')
			tag = 0, c = ' ';
		if (tag)
			continue;
		if (isspace((unsigned char)c)) {
			if (!sp)
				t[k++] = ' ';
			sp = 1;
		} else {
			t[k++] = c;
			sp = 0;
		}
	}
	while (k > 0 && t[k - 1] == ' ')
		k--;
	t[k] = '\0';
	return k ? t : "an empty page";
}

/* The digits after the first occurrence of key ("ReqID=", "Request Id is "). */
static int
find_reqid(const char *body, const char *key, char out[REQID_MAX + 1])
{
	const char *s = strcasestr(body, key);
	size_t n;

	if (s == NULL)
		return 0;
	s += strlen(key);
	n = strspn(s, "0123456789");
	if (n == 0 || n > REQID_MAX)
		return 0;
	memcpy(out, s, n);
	out[n] = '\0';
	return 1;
}

/* A 401 to Negotiate: libcurl made no token (no ticket; no ticket for the
 * CA's service from the ticket's realm), or the CA refused the one sent. */
static int
negotiate_error(const struct adcs *a, const char *what, const struct p11km_http_resp *r)
{
	const char *g = r->auth_error, *cc = getenv("KRB5CCNAME"), *m;

	if (g != NULL && strstr(g, "No credentials") != NULL)
		return p11km_fail(P11KM_ERR_LOGIN, "CA '%s' asks for Kerberos (Negotiate) and there is "
		                  "no Kerberos ticket (credentials cache %s): run kinit as a user of the "
		                  "CA's realm, then try again", a->p->name, cc ? cc : "the default");
	if (g != NULL) {
		m = strstr(g, "failed: ");
		return p11km_fail(P11KM_ERR_LOGIN, "CA '%s' asks for Kerberos (Negotiate) and no "
		                  "ticket for its web server could be had: %s; run kinit as a user of "
		                  "the CA's realm (klist shows whose ticket it is)", a->p->name,
		                  m ? m + 8 : g);
	}
	return p11km_fail(P11KM_ERR_LOGIN, "CA '%s' refused the Kerberos (Negotiate) ticket (HTTP "
	                  "401) at %s: %s; klist shows whose ticket it is", a->p->name, what,
	                  page_text(r->body, r->body_len));
}

/* Does the 401 ask for scheme (in its WWW-Authenticate)? */
static int
offers(const struct p11km_http_resp *r, const char *scheme)
{
	return r->www_auth != NULL && strcasestr(r->www_auth, scheme) != NULL;
}

/* An HTTP status other than 200 as one line. */
static int
status_error(const struct adcs *a, const char *what, const struct p11km_http_resp *r)
{
	const char *auth = a->p->auth;
	const char *want = offers(r, "Negotiate") ? "negotiate (Kerberos: then kinit)" :
	                   offers(r, "NTLM") ? "ntlm" : offers(r, "Basic") ? "basic" :
	                   "negotiate, ntlm or basic";

	if (r->status == 401 && auth == NULL)
		return p11km_fail(P11KM_ERR_LOGIN, "CA '%s' asks for %s authentication (HTTP 401 at %s) "
		                  "and the profile has none: add the profile again with --force and "
		                  "--auth %s", a->p->name, r->www_auth ? r->www_auth : "some", what, want);
	if (r->status == 401 && r->www_auth != NULL && !offers(r, auth))
		return p11km_fail(P11KM_ERR_LOGIN, "CA '%s' asks for %s authentication, not the "
		                  "profile's %s (HTTP 401 at %s): add the profile again with --force and "
		                  "--auth %s", a->p->name, r->www_auth, auth, what, want);
	if (r->status == 401 && a->http.auth == P11KM_HTTP_AUTH_NEGOTIATE)
		return negotiate_error(a, what, r);
	if (r->status == 401 || r->status == 403)
		return p11km_fail(P11KM_ERR_LOGIN, "CA '%s' refused the %s credentials (HTTP %ld) at %s: "
		                  "%s", a->p->name, auth ? auth : "missing", r->status, what,
		                  page_text(r->body, r->body_len));
	return p11km_fail(P11KM_ERR_FAILED, "CA '%s' answered HTTP %ld at %s: %s", a->p->name,
	                  r->status, what, page_text(r->body, r->body_len));
}

/* A page that is neither a certificate nor a request id: denied, or an error. */
static int
page_error(const struct adcs *a, const char *what, const struct p11km_http_resp *r)
{
	const char *b = (const char *)r->body, *m = strcasestr(b, "disposition message is");

	if (m != NULL)
		return p11km_fail(P11KM_ERR_FAILED, "CA '%s' denied the request: %s", a->p->name,
		                  page_text((const unsigned char *)m, strlen(m)));
	if (strcasestr(b, "denied") != NULL)
		return p11km_fail(P11KM_ERR_FAILED, "CA '%s' denied the request: %s", a->p->name,
		                  page_text(r->body, r->body_len));
	return p11km_fail(P11KM_ERR_INPUT, "CA '%s' answered %s with a page that holds neither a "
	                  "certificate nor a request id: %s", a->p->name, what,
	                  page_text(r->body, r->body_len));
}

/* certnew.p7b?ReqID=N: the chain, still pending, or an error. */
static int
fetch(struct adcs *a, const char *reqid, const unsigned char *csr, size_t csr_len,
      char **chain, size_t *chain_len)
{
	struct p11km_http_resp r;
	char *u = p11km_asprintf("%s/certnew.p7b?ReqID=%s&Enc=b64", a->p->url, reqid);
	int rv;

	if (u == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	rv = p11km_http_request(&a->http, "GET", u, NULL, NULL, 0, &r);
	if (rv == 0 && r.status != 200) {
		rv = status_error(a, "certnew.p7b", &r);
	} else if (rv == 0 && r.content_type != NULL && strcmp(r.content_type, "text/html") == 0) {
		if (strcasestr((const char *)r.body, "pending") != NULL) {
			a->sub->pending = 1;
			if ((a->sub->cookie = strdup(reqid)) == NULL)
				rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		} else {
			rv = page_error(a, "certnew.p7b", &r);
		}
	} else if (rv == 0 && (r.content_type == NULL ||
	                       (strcmp(r.content_type, "application/x-pkcs7-certificates") != 0 &&
	                        strcmp(r.content_type, "application/pkcs7-mime") != 0))) {
		rv = p11km_fail(P11KM_ERR_INPUT, "CA '%s' sent the chain as '%s', not "
		                "application/x-pkcs7-certificates; refused", a->p->name,
		                r.content_type ? r.content_type : "no content type");
	} else if (rv == 0) {
		rv = p11km_ca_reply_chain(r.body, r.body_len, "the CA's certnew.p7b", csr, csr_len,
		                          chain, chain_len);
		if (rv == 0)
			step(a, "certificate", u);
	}
	if (rv == 0 && a->sub->pending)
		step(a, "pending", reqid);
	if (rv == 0 && (a->sub->cert_url = strdup(u)) == NULL)
		rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	p11km_http_resp_release(&r);
	free(u);
	return rv;
}

/* certfnsh.asp: Mode=newreq; the request id of the answer in reqid. */
static int
post_request(struct adcs *a, const unsigned char *csr, size_t csr_len, char reqid[REQID_MAX + 1],
             int *pending)
{
	const unsigned char *q = a->sub->wrapped ? a->sub->wrapped : csr;
	long ql = (long)(a->sub->wrapped ? a->sub->wrapped_len : csr_len);
	X509_REQ *req = a->sub->wrapped ? NULL : d2i_X509_REQ(NULL, &q, ql);
	PKCS7 *p7 = a->sub->wrapped ? d2i_PKCS7(NULL, &q, ql) : NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	struct p11km_buf form = { 0 };
	struct p11km_http_resp r = { 0 };
	char *pem = NULL, *u = NULL, *attr = NULL;
	long n;
	int rv;

	if ((req == NULL && p7 == NULL) || bio == NULL ||
	    (req ? PEM_write_bio_X509_REQ(bio, req) : PEM_write_bio_PKCS7(bio, p7)) != 1 ||
	    (n = BIO_get_mem_data(bio, &pem)) <= 0 ||
	    (pem = p11km_asprintf("%.*s", (int)n, pem)) == NULL ||
	    (attr = p11km_asprintf("CertificateTemplate:%s", a->p->template_name)) == NULL ||
	    (u = p11km_asprintf("%s/certfnsh.asp", a->p->url)) == NULL) {
		rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rv = form_append(&form, "Mode", "newreq")) < 0 ||
	    (rv = form_append(&form, "CertRequest", pem)) < 0 ||
	    (rv = form_append(&form, "CertAttrib", attr)) < 0 ||
	    (rv = form_append(&form, "TargetStoreFlags", "0")) < 0 ||
	    (rv = form_append(&form, "SaveCert", "yes")) < 0 ||
	    (rv = form_append(&form, "ThumbPrint", "")) < 0)
		goto out;
	step(a, "submit", u);
	if ((rv = p11km_http_request(&a->http, "POST", u, "application/x-www-form-urlencoded",
	                             form.data, form.len, &r)) < 0)
		goto out;
	if (r.status != 200) {
		rv = status_error(a, "certfnsh.asp", &r);
	} else if (r.content_type == NULL || strcmp(r.content_type, "text/html") != 0) {
		rv = p11km_fail(P11KM_ERR_INPUT, "CA '%s' answered certfnsh.asp with '%s', not the "
		                "text/html page of web enrollment; refused", a->p->name,
		                r.content_type ? r.content_type : "no content type");
	} else if (find_reqid((const char *)r.body, "certnew.cer?ReqID=", reqid) ||
	           find_reqid((const char *)r.body, "certnew.p7b?ReqID=", reqid)) {
		*pending = 0;
	} else if (find_reqid((const char *)r.body, "Request Id is ", reqid)) {
		*pending = 1;
	} else {
		rv = page_error(a, "certfnsh.asp", &r);
	}
out:
	p11km_http_resp_release(&r);
	p11km_buf_release(&form);
	BIO_free(bio);
	X509_REQ_free(req);
	PKCS7_free(p7);
	free(pem);
	free(attr);
	free(u);
	return rv;
}

int
p11km_adcs_submit(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                  const unsigned char *csr, size_t csr_len, struct p11km_ca_submit *sub,
                  char **chain, size_t *chain_len)
{
	struct adcs a;
	char reqid[REQID_MAX + 1];
	int rv, pending = 0;

	(void)ctx;
	*chain = NULL;
	if ((rv = adcs_open(p, sub, &a)) < 0)
		goto out;
	if (sub->cookie_in != NULL) {
		size_t n = strlen(sub->cookie_in);
		if (n == 0 || n > REQID_MAX || strspn(sub->cookie_in, "0123456789") != n) {
			rv = p11km_fail(P11KM_ERR_INPUT, "the pending request id '%s' of CA '%s' is not a "
			                "number", sub->cookie_in, p->name);
			goto out;
		}
		memcpy(reqid, sub->cookie_in, n + 1);
		step(&a, "poll", reqid);
	} else if ((rv = post_request(&a, csr, csr_len, reqid, &pending)) < 0) {
		goto out;
	}
	if ((sub->order_url = p11km_asprintf("%s ReqID=%s", p->url, reqid)) == NULL) {
		rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (pending) {
		sub->pending = 1;
		if ((sub->cookie = strdup(reqid)) == NULL)
			rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		step(&a, "pending", reqid);
		goto out;
	}
	rv = fetch(&a, reqid, csr, csr_len, chain, chain_len);
out:
	adcs_close(&a);
	return rv;
}

int
p11km_adcs_roots(struct p11km_ctx *ctx, const struct p11km_ca_profile *p, char **pem,
                 size_t *pem_len)
{
	struct adcs a;
	struct p11km_http_resp r = { 0 };
	char *u = NULL;
	int rv;

	(void)ctx;
	*pem = NULL;
	if ((rv = adcs_open(p, NULL, &a)) < 0)
		goto out;
	if ((u = p11km_asprintf("%s/certnew.cer?ReqID=CACert&Renewal=0&Enc=b64", p->url)) == NULL) {
		rv = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((rv = p11km_http_request(&a.http, "GET", u, NULL, NULL, 0, &r)) < 0)
		goto out;
	if (r.status != 200)
		rv = status_error(&a, "certnew.cer", &r);
	else if (r.content_type == NULL || (strcmp(r.content_type, "application/pkix-cert") != 0 &&
	                                    strcmp(r.content_type, "application/x-x509-ca-cert") != 0))
		rv = p11km_fail(P11KM_ERR_INPUT, "CA '%s' sent its certificate as '%s', not "
		                "application/pkix-cert; refused", p->name,
		                r.content_type ? r.content_type : "no content type");
	else
		rv = p11km_ca_reply_certs(r.body, r.body_len, "the CA's certnew.cer", pem, pem_len);
out:
	p11km_http_resp_release(&r);
	adcs_close(&a);
	free(u);
	return rv;
}
