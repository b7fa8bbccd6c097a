/* ca-cmp.c: CMP (RFC 4210, RFC 9483 lightweight profile) through
 * libcrypto's CMP client (OSSL_CMP_CTX).
 *
 * The messages travel through p11km's own HTTP client (http.c, libcurl) as
 * the context's transfer callback: one timeout, no proxy, no redirects, a
 * cap on the answer, and the CA file set explicitly for https.  Plain http
 * is allowed for CMP: every message carries its own protection (PBM with
 * the shared secret, or a signature).
 *
 *   p10cr  the token-signed CSR as it is; MAC (PBM) or signature protection
 *   ir/cr  a CRMF request built from the CSR; proof of possession signed by
 *          the request's key on the token (key-evp.c)
 *   kur    the same, protected by the old certificate's key on the token
 *   genm   id-it-caCerts: the CA's certificates ('ca roots')
 *
 * certConf is sent by libcrypto after it has checked that the certificate
 * is for the request's key; p11km checks that again before answering.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/cmp.h>
#include <openssl/crmf.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "p11km/ca.h"
#include "p11km/cert.h"
#include "p11km/http.h"
#include "p11km/keys.h"
#include "p11km/pin.h"
#include "p11km/sign.h"
#include "p11km/util.h"

/* id-it-caCerts (RFC 9483 4.3.1); OpenSSL 3.0 has no NID for it */
#define OID_CA_CERTS "1.3.6.1.5.5.7.4.17"
#define CA_CERTS_MAX 64

/* A private key on the token, open for signing. */
struct tkey {
	struct p11km_object priv;
	int have;
	EVP_PKEY *pub;
	struct p11km_signer *sg;
	EVP_PKEY *evp;      /* the bridge (key-evp.c) */
};

struct cmp_run {
	struct p11km_ctx *ctx;
	const struct p11km_ca_profile *p;
	struct p11km_ca_submit *sub;
	struct p11km_http http;
	int err;             /* p11km error from the transfer, or 0 */
	int sign_err;        /* p11km error of a signature on the token, or 0 */
	unsigned long signatures;
	/* the token session (ir/cr/kur, or signature protection) */
	struct p11km_uri *uri;
	struct p11km_token *tok;
	struct p11km_session s;
	struct tkey prot, pop;
};

static void
step(struct cmp_run *run, const char *name, const char *detail)
{
	if (run->sub != NULL && run->sub->step != NULL)
		run->sub->step(run->sub->step_arg, name, detail);
}

static const char *
body_name(int t)
{
	static const char *const names[] = { "ir", "ip", "cr", "cp", "p10cr", "popdecc", "popdecr",
		"kur", "kup", "krr", "krp", "rr", "rp", "ccr", "ccp", "ckuann", "cann", "rann", "crlann",
		"pkiconf", "nested", "genm", "genp", "error", "certConf", "pollReq", "pollRep" };
	return t >= 0 && t < (int)(sizeof(names) / sizeof(names[0])) ? names[t] : "?";
}

/* --- transfer: one message over http.c ------------------------------------------ */

static OSSL_CMP_MSG *
transfer(OSSL_CMP_CTX *c, const OSSL_CMP_MSG *req)
{
	struct cmp_run *run = OSSL_CMP_CTX_get_transfer_cb_arg(c);
	struct p11km_http_resp resp = { 0 };
	unsigned char *der = NULL;
	const unsigned char *q;
	OSSL_CMP_MSG *rsp = NULL;
	int n, r;

	if ((n = i2d_OSSL_CMP_MSG(req, &der)) <= 0) {
		run->err = p11km_fail(P11KM_ERR_FAILED, "cannot encode the CMP message: %s",
		                      p11km_openssl_error());
		return NULL;
	}
	step(run, body_name(OSSL_CMP_MSG_get_bodytype(req)), run->p->url);
	r = p11km_http_request(&run->http, "POST", run->p->url, "application/pkixcmp", der,
	                       (size_t)n, &resp);
	OPENSSL_free(der);
	if (r < 0) {
		run->err = r;
		return NULL;
	}
	if (resp.status != 200) {
		run->err = p11km_fail(P11KM_ERR_FAILED, "CA '%s' answered HTTP %ld%s%.120s; check the "
		                      "profile's --url", run->p->name, resp.status,
		                      resp.body_len ? ": " : "", p11km_esc((char *)resp.body));
	} else if (resp.content_type == NULL || strcmp(resp.content_type, "application/pkixcmp") != 0) {
		run->err = p11km_fail(P11KM_ERR_INPUT, "CA '%s' answered with content type '%s', not "
		                      "application/pkixcmp", run->p->name,
		                      resp.content_type ? p11km_esc(resp.content_type) : "(none)");
	} else {
		q = resp.body;
		rsp = d2i_OSSL_CMP_MSG(NULL, &q, (long)resp.body_len);
		if (rsp == NULL || q != resp.body + resp.body_len) {
			OSSL_CMP_MSG_free(rsp);
			rsp = NULL;
			run->err = p11km_fail(P11KM_ERR_INPUT, "the answer of CA '%s' (%zu bytes) is not "
			                      "one whole CMP message (truncated?)", run->p->name,
			                      resp.body_len);
		}
	}
	p11km_http_resp_release(&resp);
	return rsp;
}

static int
log_cb(const char *func, const char *file, int line, OSSL_CMP_severity level, const char *msg)
{
	(void)file; (void)line; (void)level;
	/* what matters reaches the user as the one-line error (cmp_error) */
	p11km_trace("cmp: %s: %s", func, msg);
	return 1;
}

/* --- the token keys ------------------------------------------------------------ */

static void
tkey_release(struct tkey *k)
{
	EVP_PKEY_free(k->evp);
	p11km_signer_free(k->sg);
	EVP_PKEY_free(k->pub);
	if (k->have)
		p11km_object_release(&k->priv);
	memset(k, 0, sizeof(*k));
}

/* Open the session on the token of uri (once per run). */
static int
session(struct cmp_run *run, const char *uri)
{
	int r;

	if (run->tok != NULL)
		return 0;
	if (uri == NULL || strncmp(uri, "pkcs11:", 7) != 0)
		return p11km_fail(P11KM_ERR_USAGE, "CA '%s': this CMP request signs on the token: give "
		                  "'req submit --key pkcs11:...' (or the profile --key)", run->p->name);
	if ((r = p11km_uri_parse(uri, &run->uri)) < 0 ||
	    (r = p11km_token_find_one(run->ctx, run->uri, &run->tok)) < 0 ||
	    (r = p11km_session_open_held(run->ctx, run->tok, run->uri, 0,
	                                 run->sub ? run->sub->held : NULL, &run->s)) < 0)
		return r;
	return 0;
}

/* The signer and the bridge for k->priv. */
static int
tkey_bridge(struct cmp_run *run, struct tkey *k)
{
	struct p11km_pinsrc pin = { 0 };
	int r;

	if (k->pub == NULL && (r = p11km_key_pubkey(&run->s, &k->priv, &k->pub)) < 0)
		return r;
	if ((r = p11km_pinsrc_for(run->ctx, run->uri, CKU_USER, &pin)) == 0)
		r = p11km_token_signer_new(&run->s, &k->priv, k->pub, NULL, 0, pin.spec ? &pin : NULL,
		                           &k->sg);
	p11km_pinsrc_release(&pin);
	if (r == 0)
		r = p11km_key_evp_new(k->sg, &run->signatures, &run->sign_err, &k->evp);
	return r;
}

/* The token key whose public key is pub. */
static int
tkey_by_pub(struct cmp_run *run, EVP_PKEY *pub, X509 *cert, struct tkey *k)
{
	int r = cert != NULL ? p11km_key_for_cert(&run->s, cert, &k->priv, NULL)
	                     : p11km_key_for_pubkey(&run->s, pub, NULL, 0, &k->priv, NULL);

	if (r == P11KM_ERR_NOTFOUND)
		return p11km_fail(r, "the %s's key is not on token '%s'", cert ? "old certificate" :
		                  "request", run->tok->label);
	if (r < 0)
		return r;
	k->have = 1;
	if (EVP_PKEY_up_ref(pub) != 1)
		return p11km_fail(P11KM_ERR_FAILED, "unable to reference the public key");
	k->pub = pub;
	return tkey_bridge(run, k);
}

/* --- the context ---------------------------------------------------------------- */

/* "/CN=a/O=b" (the openssl cmp form) as a name. */
static int
parse_name(const char *text, X509_NAME **out)
{
	X509_NAME *n = X509_NAME_new();
	char *dup = strdup(text), *save = NULL, *tok;
	int r = 0;

	if (n == NULL || dup == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (text[0] != '/') {
		r = p11km_fail(P11KM_ERR_INPUT, "recipient '%s': give /TYPE=VALUE/..., for example "
		               "/CN=My CA", text);
		goto out;
	}
	for (tok = strtok_r(dup, "/", &save); tok != NULL; tok = strtok_r(NULL, "/", &save)) {
		char *eq = strchr(tok, '=');
		if (eq == NULL || eq == tok || (*eq = '\0', X509_NAME_add_entry_by_txt(n, tok,
		    MBSTRING_UTF8, (unsigned char *)eq + 1, -1, -1, 0) != 1)) {
			r = p11km_fail(P11KM_ERR_INPUT, "recipient '%s': '%s' is not TYPE=VALUE", text, tok);
			goto out;
		}
	}
	*out = n;
	n = NULL;
out:
	X509_NAME_free(n);
	free(dup);
	(void)p11km_openssl_error();
	return r;
}

/* The trust for signature-protected answers: the profile's CA file. */
static int
trust(struct cmp_run *run, OSSL_CMP_CTX *c)
{
	STACK_OF(X509) *certs = NULL;
	X509_STORE *st;
	int r;

	if (run->p->ca_file == NULL)
		return 0;
	if ((r = p11km_certs_read(run->p->ca_file, P11KM_ROOTS_MAX_CERTS, &certs)) < 0)
		return r;
	if ((st = X509_STORE_new()) == NULL) {
		sk_X509_pop_free(certs, X509_free);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	for (int i = 0; i < sk_X509_num(certs); i++)
		X509_STORE_add_cert(st, sk_X509_value(certs, i));
	sk_X509_pop_free(certs, X509_free);
	if (OSSL_CMP_CTX_set0_trustedStore(c, st) != 1) {
		X509_STORE_free(st);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	return 0;
}

/* The shared secret from its source, into the context (and wiped). */
static int
secret(struct cmp_run *run, OSSL_CMP_CTX *c)
{
	struct p11km_pinsrc src = { 0 };
	char *sec = NULL;
	size_t len = 0;
	int r;

	if (run->p->secret == NULL)
		return 0;
	if ((r = p11km_pinsrc_parse(run->p->secret, 0, &src)) < 0)
		return r;
	if ((r = p11km_pin_read(&src, "CMP shared secret: ", &sec, &len)) == 0 &&
	    (OSSL_CMP_CTX_set1_secretValue(c, (unsigned char *)sec, (int)len) != 1 ||
	     OSSL_CMP_CTX_set1_referenceValue(c, (const unsigned char *)(run->p->ref ? run->p->ref : ""),
	                                      (int)strlen(run->p->ref ? run->p->ref : "")) != 1))
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	p11km_pin_free(sec, len);
	p11km_pinsrc_release(&src);
	return r;
}

static int
read_cert(const char *path, X509 **out)
{
	STACK_OF(X509) *sk = NULL;
	int r;

	if ((r = p11km_certs_read(path, 16, &sk)) < 0)
		return r;
	*out = sk_X509_shift(sk);
	sk_X509_pop_free(sk, X509_free);
	return 0;
}

static void
run_release(struct cmp_run *run)
{
	tkey_release(&run->prot);
	tkey_release(&run->pop);
	p11km_session_close(&run->s);
	p11km_token_free(run->tok);
	p11km_uri_free(run->uri);
}

/* A context with transfer, timeouts, recipient, trust and (mac) MAC protection. */
static int
ctx_new(struct cmp_run *run, int mac, OSSL_CMP_CTX **out)
{
	OSSL_CMP_CTX *c = OSSL_CMP_CTX_new(NULL, NULL);
	X509_NAME *rcpt = NULL;
	int r;

	*out = NULL;
	if (c == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	run->http.ca_file = run->p->ca_file;
	run->http.timeout = run->p->timeout;
	run->http.allow_http = 1;
	run->http.conn_close = 1;
	OSSL_CMP_CTX_set_log_cb(c, log_cb);
	OSSL_CMP_CTX_set_transfer_cb(c, transfer);
	OSSL_CMP_CTX_set_transfer_cb_arg(c, run);
	/* the whole transaction (polling included) */
	OSSL_CMP_CTX_set_option(c, OSSL_CMP_OPT_TOTAL_TIMEOUT,
	                        (int)(4 * (run->p->timeout > 0 ? run->p->timeout : 30)));
	if (run->p->recipient != NULL) {
		if ((r = parse_name(run->p->recipient, &rcpt)) < 0)
			goto fail;
		OSSL_CMP_CTX_set1_recipient(c, rcpt);
		X509_NAME_free(rcpt);
	}
	if ((r = trust(run, c)) < 0 || (mac && (r = secret(run, c)) < 0))
		goto fail;
	*out = c;
	return 0;
fail:
	OSSL_CMP_CTX_free(c);
	return r;
}

/* --- errors: one line ------------------------------------------------------------ */

static const char *const fail_names[] = { "badAlg", "badMessageCheck", "badRequest", "badTime",
	"badCertId", "badDataFormat", "wrongAuthority", "incorrectData", "missingTimeStamp",
	"badPOP", "certRevoked", "certConfirmed", "wrongIntegrity", "badRecipientNonce",
	"timeNotAvailable", "unacceptedPolicy", "unacceptedExtension", "addInfoNotAvailable",
	"badSenderNonce", "badCertTemplate", "signerNotTrusted", "transactionIdInUse",
	"unsupportedVersion", "notAuthorized", "systemUnavail", "systemFailure",
	"duplicateCertReq" };

/* A kur to a new key signs with two token keys in one run (the old one
 * protects, the new one proves possession); tpm2-pkcs11 over a TPM keeps
 * the first loaded and has no room for the second.  Say what works. */
static int
kur_two_keys(int code)
{
	char m[700];

	snprintf(m, sizeof(m), "%s", p11km_errmsg(code));
	return p11km_fail(code, "%s; a kur to a new key signs with the old and the new key in one "
	                  "run, which some tokens cannot (a TPM has room for one loaded key): send the "
	                  "new key's request as --cmp ir or p10cr instead", m);
}

static int
cmp_error(struct cmp_run *run, OSSL_CMP_CTX *c, const char *what)
{
	int status = OSSL_CMP_CTX_get_status(c), fi = OSSL_CMP_CTX_get_failInfoCode(c);
	OSSL_CMP_PKIFREETEXT *ft = OSSL_CMP_CTX_get0_statusString(c);
	unsigned long e = ERR_peek_last_error();
	char bits[400] = "", text[200] = "";
	int reason = ERR_GET_REASON(e);

	if (run->err < 0 || run->sign_err < 0) {
		/* the message is still the one of the transfer or the signer */
		ERR_clear_error();
		if (run->err == 0 && strcmp(what, "kur") == 0 && run->prot.have && run->pop.have)
			return kur_two_keys(run->sign_err);
		return run->err < 0 ? run->err : run->sign_err;
	}
	if (ERR_GET_LIB(e) == ERR_LIB_CMP && reason == CMP_R_CERTIFICATE_NOT_ACCEPTED) {
		/* refused here (and told the CA in certConf): not the CA's rejection */
		ERR_clear_error();
		return p11km_fail(P11KM_ERR_VERIFY, "CA '%s' issued a certificate p11km does not accept "
		                  "(not for the request's key, or it does not verify); it was refused "
		                  "(certConf) and nothing was changed", run->p->name);
	}
	if (status == OSSL_CMP_PKISTATUS_rejection || status == OSSL_CMP_PKISTATUS_waiting ||
	    (status > OSSL_CMP_PKISTATUS_grantedWithMods && status != OSSL_CMP_PKISTATUS_request)) {
		for (size_t i = 0; fi > 0 && i < sizeof(fail_names) / sizeof(fail_names[0]); i++)
			if (fi & (1 << i))
				snprintf(bits + strlen(bits), sizeof(bits) - strlen(bits), "%s%s",
				         bits[0] ? "," : "", fail_names[i]);
		for (int i = 0; ft != NULL && i < sk_ASN1_UTF8STRING_num(ft); i++) {
			ASN1_UTF8STRING *s = sk_ASN1_UTF8STRING_value(ft, i);
			snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%.*s",
			         text[0] ? "; " : "", ASN1_STRING_length(s),
			         (const char *)ASN1_STRING_get0_data(s));
		}
		ERR_clear_error();
		return p11km_fail(P11KM_ERR_FAILED, "CA '%s' %s the %s: PKIStatus %s%s%s%s%s; nothing "
		                  "was changed", run->p->name,
		                  status == OSSL_CMP_PKISTATUS_waiting ? "has not answered" : "rejected",
		                  what, status == OSSL_CMP_PKISTATUS_waiting ? "waiting" :
		                  status == OSSL_CMP_PKISTATUS_revocationWarning ? "revocationWarning" :
		                  status == OSSL_CMP_PKISTATUS_revocationNotification ?
		                  "revocationNotification" : status == OSSL_CMP_PKISTATUS_keyUpdateWarning ?
		                  "keyUpdateWarning" : "rejection", bits[0] ? ", failInfo " : "", bits,
		                  text[0] ? ": " : "", p11km_esc(text));
	}
	if (ERR_GET_LIB(e) == ERR_LIB_CMP && (reason == CMP_R_WRONG_PBM_VALUE ||
	    reason == CMP_R_MISSING_PROTECTION || reason == CMP_R_MISSING_TRUST_STORE ||
	    reason == CMP_R_NO_SUITABLE_SENDER_CERT || reason == CMP_R_ERROR_VALIDATING_PROTECTION ||
	    reason == CMP_R_ERROR_VALIDATING_SIGNATURE)) {
		ERR_clear_error();
		return p11km_fail(P11KM_ERR_VERIFY, "the answer of CA '%s' to the %s is not protected "
		                  "as expected (%s): check the profile's --secret-source and --ref, or --ca-file "
		                  "for a CA that signs; nothing was changed", run->p->name, what,
		                  ERR_reason_error_string(e));
	}
	return p11km_fail(P11KM_ERR_FAILED, "CMP %s to CA '%s' failed: %s", what, run->p->name,
	                  p11km_openssl_error());
}

/* --- submit ------------------------------------------------------------------------ */

/* The leaf, then the issuers found in the answer (self-signed roots left out). */
static int
chain_pem(X509 *leaf, STACK_OF(X509) *extra, char **out, size_t *out_len)
{
	BIO *b = BIO_new(BIO_s_mem());
	X509 *cur = leaf;
	char *data;
	long n;
	int r = 0;

	if (b == NULL || !PEM_write_bio_X509(b, leaf))
		goto nomem;
	for (int depth = 0; depth < 8 && X509_check_issued(cur, cur) != X509_V_OK; depth++) {
		X509 *next = NULL;
		for (int i = 0; i < sk_X509_num(extra) && next == NULL; i++)
			if (X509_check_issued(sk_X509_value(extra, i), cur) == X509_V_OK)
				next = sk_X509_value(extra, i);
		if (next == NULL || X509_check_issued(next, next) == X509_V_OK)
			break;
		if (!PEM_write_bio_X509(b, next))
			goto nomem;
		cur = next;
	}
	if ((n = BIO_get_mem_data(b, &data)) <= 0 || (*out = malloc((size_t)n + 1)) == NULL)
		goto nomem;
	memcpy(*out, data, (size_t)n);
	(*out)[n] = '\0';
	*out_len = (size_t)n;
	BIO_free(b);
	return r;
nomem:
	BIO_free(b);
	return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
}

static int
cmd_type(const char *cmd, int *type)
{
	static const struct { const char *name; int type; } t[] = {
		{ "p10cr", OSSL_CMP_P10CR }, { "ir", OSSL_CMP_IR }, { "cr", OSSL_CMP_CR },
		{ "kur", OSSL_CMP_KUR },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(cmd, t[i].name) == 0) {
			*type = t[i].type;
			return 0;
		}
	return p11km_fail(P11KM_ERR_USAGE, "CMP request type '%s': give p10cr, ir, cr or kur", cmd);
}

/* What signs on the token for type: the protection key, the POP key. */
static int
setup_keys(struct cmp_run *run, OSSL_CMP_CTX *c, int type, X509_REQ *req, X509 *old)
{
	EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
	X509 *pcert = NULL;
	int r = 0;

	if (type == OSSL_CMP_KUR) {
		/* protected by the old certificate's key; POP by the new key */
		if ((r = session(run, run->sub->key_uri ? run->sub->key_uri : run->p->key)) < 0 ||
		    (r = tkey_by_pub(run, X509_get0_pubkey(old), old, &run->prot)) < 0)
			return r;
		if (OSSL_CMP_CTX_set1_oldCert(c, old) != 1 || OSSL_CMP_CTX_set1_cert(c, old) != 1 ||
		    OSSL_CMP_CTX_set1_pkey(c, run->prot.evp) != 1)
			return p11km_fail(P11KM_ERR_FAILED, "cannot use the old certificate: %s",
			                  p11km_openssl_error());
	} else if (run->p->cert != NULL) {
		if ((r = read_cert(run->p->cert, &pcert)) < 0)
			return r;
		if ((r = session(run, run->p->key)) == 0 &&
		    (r = tkey_by_pub(run, X509_get0_pubkey(pcert), pcert, &run->prot)) == 0 &&
		    (OSSL_CMP_CTX_set1_cert(c, pcert) != 1 || OSSL_CMP_CTX_set1_pkey(c, run->prot.evp) != 1))
			r = p11km_fail(P11KM_ERR_FAILED, "cannot use '%s' for protection: %s", run->p->cert,
			               p11km_openssl_error());
		X509_free(pcert);
		if (r < 0)
			return r;
	} else if (run->p->secret == NULL) {
		return p11km_fail(P11KM_ERR_USAGE, "CA profile '%s' has neither --secret (MAC) nor "
		                  "--cert/--key (signature) to protect CMP messages with", run->p->name);
	}
	if (type == OSSL_CMP_P10CR)
		return 0;
	if ((r = session(run, run->sub->key_uri ? run->sub->key_uri : run->p->key)) < 0)
		return r;
	if (run->prot.have && EVP_PKEY_eq(run->prot.pub, pub) == 1) {
		/* one key for both */
		if (EVP_PKEY_up_ref(run->prot.evp) != 1)
			return p11km_fail(P11KM_ERR_FAILED, "unable to reference the key");
		OSSL_CMP_CTX_set0_newPkey(c, 1, run->prot.evp);
		return 0;
	}
	if ((r = tkey_by_pub(run, pub, NULL, &run->pop)) < 0)
		return r;
	if (EVP_PKEY_up_ref(run->pop.evp) != 1 || OSSL_CMP_CTX_set0_newPkey(c, 1, run->pop.evp) != 1)
		return p11km_fail(P11KM_ERR_FAILED, "unable to use the request's key");
	return 0;
}

int
p11km_cmp_submit(struct p11km_ctx *ctx, const struct p11km_ca_profile *p,
                 const unsigned char *csr, size_t csr_len, struct p11km_ca_submit *sub,
                 char **chain, size_t *chain_len)
{
	struct cmp_run run = { .ctx = ctx, .p = p, .sub = sub };
	const char *cmd = sub->cmp_cmd ? sub->cmp_cmd : p->cmd ? p->cmd : "p10cr";
	const unsigned char *q = csr;
	X509_REQ *req = d2i_X509_REQ(NULL, &q, (long)csr_len);
	OSSL_CMP_CTX *c = NULL;
	STACK_OF(X509) *extra = NULL;
	X509 *old = NULL, *cert;
	int r, type = 0;

	run.s.logged_in = (CK_USER_TYPE)-1;
	*chain = NULL;
	if (req == NULL)
		return p11km_fail(P11KM_ERR_INPUT, "the request is not DER PKCS#10");
	if ((r = cmd_type(cmd, &type)) < 0)
		goto out;
	if ((type == OSSL_CMP_KUR) != (sub->old_cert != NULL)) {
		r = p11km_fail(P11KM_ERR_USAGE, type == OSSL_CMP_KUR ? "a CMP kur needs --old-cert FILE "
		               "(the certificate to update)" : "--old-cert goes with --cmp kur");
		goto out;
	}
	if (sub->old_cert != NULL && (r = read_cert(sub->old_cert, &old)) < 0)
		goto out;
	/* kur and a profile with a certificate: signature protection (a secret
	 * in the context would make libcrypto protect with the MAC instead) */
	if ((r = ctx_new(&run, type != OSSL_CMP_KUR && p->cert == NULL, &c)) < 0 ||
	    (r = setup_keys(&run, c, type, req, old)) < 0)
		goto out;
	/* the names are the request's: none copied from the old certificate
	 * (OpenSSL 3.0 would add its subjectAltName a second time for a kur) */
	OSSL_CMP_CTX_set_option(c, OSSL_CMP_OPT_SUBJECTALTNAME_NODEFAULT, 1);
	if (OSSL_CMP_CTX_set1_p10CSR(c, req) != 1) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	ERR_clear_error();
	cert = OSSL_CMP_exec_certreq(c, type, NULL);
	sub->requests = run.http.requests;
	sub->signatures = run.signatures;
	if (cert == NULL) {
		r = cmp_error(&run, c, cmd);
		goto out;
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(cert), X509_REQ_get0_pubkey(req)) != 1) {
		/* libcrypto checks this before certConf; never rely on one check */
		r = p11km_fail(P11KM_ERR_VERIFY, "CA '%s' issued a certificate for another key; "
		               "refused, nothing was changed", p->name);
		goto out;
	}
	extra = OSSL_CMP_CTX_get1_extraCertsIn(c);
	r = chain_pem(cert, extra, chain, chain_len);
	p11km_verbose("CMP %s: %lu messages, %lu signatures on the token", cmd, run.http.requests,
	              run.signatures);
out:
	sk_X509_pop_free(extra, X509_free);
	OSSL_CMP_CTX_free(c);
	run_release(&run);
	X509_free(old);
	X509_REQ_free(req);
	return r;
}

/* --- genm: the CA's certificates ------------------------------------------------------ */

/* SEQUENCE OF Certificate from an ITAV value. */
static int
ca_certs_of(const OSSL_CMP_ITAV *itav, STACK_OF(X509) **out)
{
	ASN1_TYPE *v = OSSL_CMP_ITAV_get0_value(itav);
	STACK_OF(X509) *sk = NULL;
	const unsigned char *q, *end;
	long len;
	int tag, cls;

	if (v == NULL || v->type != V_ASN1_SEQUENCE)
		return P11KM_ERR_INPUT;
	q = v->value.sequence->data;
	end = q + v->value.sequence->length;
	if ((ASN1_get_object(&q, &len, &tag, &cls, end - q) & 0x80) || tag != V_ASN1_SEQUENCE ||
	    q + len != end || (sk = sk_X509_new_null()) == NULL)
		return P11KM_ERR_INPUT;
	while (q < end) {
		X509 *x = d2i_X509(NULL, &q, end - q);
		if (x == NULL || sk_X509_num(sk) >= CA_CERTS_MAX || !sk_X509_push(sk, x)) {
			X509_free(x);
			sk_X509_pop_free(sk, X509_free);
			return P11KM_ERR_INPUT;
		}
	}
	*out = sk;
	return 0;
}

static int
ca_certs(struct p11km_ctx *ctx, const struct p11km_ca_profile *p, STACK_OF(X509) **out)
{
	struct p11km_ca_submit sub = { 0 };
	struct cmp_run run = { .ctx = ctx, .p = p, .sub = &sub };
	OSSL_CMP_CTX *c = NULL;
	STACK_OF(OSSL_CMP_ITAV) *itavs = NULL;
	ASN1_OBJECT *oid = OBJ_txt2obj(OID_CA_CERTS, 1); /* owned by req */
	OSSL_CMP_ITAV *req = NULL;
	char name[64];
	int r;

	*out = NULL;
	run.s.logged_in = (CK_USER_TYPE)-1;
	if (oid == NULL || (req = OSSL_CMP_ITAV_create(oid, NULL)) == NULL) {
		ASN1_OBJECT_free(oid);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	if ((r = ctx_new(&run, p->cert == NULL, &c)) < 0 ||
	    (r = setup_keys(&run, c, OSSL_CMP_P10CR, NULL, NULL)) < 0)
		goto out;
	OSSL_CMP_CTX_push0_genm_ITAV(c, req);
	req = NULL;
	ERR_clear_error();
	if ((itavs = OSSL_CMP_exec_GENM_ses(c)) == NULL) {
		r = cmp_error(&run, c, "genm");
		goto out;
	}
	r = p11km_fail(P11KM_ERR_NOTFOUND, "CA '%s' sent no CA certificates (id-it-caCerts) in "
	               "its genp", p->name);
	for (int i = 0; i < sk_OSSL_CMP_ITAV_num(itavs); i++) {
		OSSL_CMP_ITAV *it = sk_OSSL_CMP_ITAV_value(itavs, i);
		if (OBJ_obj2txt(name, sizeof(name), OSSL_CMP_ITAV_get0_type(it), 1) <= 0 ||
		    strcmp(name, OID_CA_CERTS) != 0)
			continue;
		p11km_error_clear();
		if (ca_certs_of(it, out) < 0 || sk_X509_num(*out) == 0) {
			sk_X509_pop_free(*out, X509_free);
			*out = NULL;
			r = p11km_fail(P11KM_ERR_INPUT, "the CA certificates from CA '%s' are not a "
			               "SEQUENCE OF Certificate", p->name);
		} else {
			r = 0;
		}
		break;
	}
out:
	sk_OSSL_CMP_ITAV_pop_free(itavs, OSSL_CMP_ITAV_free);
	OSSL_CMP_ITAV_free(req);
	OSSL_CMP_CTX_free(c);
	run_release(&run);
	return r;
}

int
p11km_cmp_roots(struct p11km_ctx *ctx, const struct p11km_ca_profile *p, char **pem,
                size_t *pem_len)
{
	STACK_OF(X509) *sk = NULL;
	BIO *b = NULL;
	char *data;
	long n;
	int r;

	*pem = NULL;
	if ((r = ca_certs(ctx, p, &sk)) < 0)
		return r;
	if ((b = BIO_new(BIO_s_mem())) == NULL)
		goto nomem;
	for (int i = 0; i < sk_X509_num(sk); i++)
		if (!PEM_write_bio_X509(b, sk_X509_value(sk, i)))
			goto nomem;
	if ((n = BIO_get_mem_data(b, &data)) <= 0 || (*pem = malloc((size_t)n + 1)) == NULL)
		goto nomem;
	memcpy(*pem, data, (size_t)n);
	(*pem)[n] = '\0';
	*pem_len = (size_t)n;
	BIO_free(b);
	sk_X509_pop_free(sk, X509_free);
	return 0;
nomem:
	BIO_free(b);
	sk_X509_pop_free(sk, X509_free);
	return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
}
