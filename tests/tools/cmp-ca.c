/* cmp-ca: a CMP CA for tests/cli/cmp.sh that really issues, built on
 * libcrypto's OSSL_CMP_SRV_CTX, serving HTTP on 127.0.0.1 only.
 *
 *   cmp-ca PORT CA-CERT CA-KEY SECRET-FILE MODE-FILE
 *
 * Requests protected with the shared secret (PBM) are answered with MAC
 * protection; signature-protected ones (kur, cr) with the CA's signature,
 * the client's certificate checked against CA-CERT.  It issues for the
 * public key of the request (p10cr, or the CRMF template of ir/cr/kur),
 * with the request's subject and extensions, signed by CA-KEY; genm
 * id-it-caCerts answers with CA-CERT.
 *
 * MODE-FILE, read for every connection, makes it misbehave: "reject"
 * (rejection, failInfo badPOP and badCertTemplate), "otherkey" (a
 * certificate for a key of its own), "truncate" (half the answer), "hang"
 * (reads the request, never answers), "html" (200 with text/html),
 * "maconly" (every request taken for a MAC-protected one).  Absent
 * or "normal": behaves.  A test tool: one connection at a time.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/cmp.h>
#include <openssl/crmf.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

static X509 *ca_cert;
static EVP_PKEY *ca_key;
static char mode[32] = "normal";
static const char *mode_file;

static void
die(const char *what)
{
	fprintf(stderr, "cmp-ca: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(2);
}

/* The public key of a CRMF template (OpenSSL 3.0 has no getter): the
 * [6] IMPLICIT SubjectPublicKeyInfo member of its DER. */
static EVP_PKEY *
tmpl_pubkey(const OSSL_CRMF_MSG *crm)
{
	unsigned char *der = NULL;
	const unsigned char *q, *end;
	EVP_PKEY *pk = NULL;
	long len;
	int tag, cls, n = i2d_OSSL_CRMF_CERTTEMPLATE(OSSL_CRMF_MSG_get0_tmpl(crm), &der);

	if (n <= 0)
		return NULL;
	q = der;
	end = der + n;
	if (ASN1_get_object(&q, &len, &tag, &cls, n) & 0x80)
		goto out;
	while (q < end) {
		const unsigned char *start = q;
		if (ASN1_get_object(&q, &len, &tag, &cls, end - q) & 0x80)
			break;
		if (cls == V_ASN1_CONTEXT_SPECIFIC && tag == 6) {
			unsigned char *copy = OPENSSL_memdup(start, (size_t)(q - start + len));
			const unsigned char *c = copy;
			if (copy != NULL) {
				copy[0] = 0x30; /* SEQUENCE */
				pk = d2i_PUBKEY(NULL, &c, q - start + len);
			}
			OPENSSL_free(copy);
			break;
		}
		q += len;
	}
out:
	OPENSSL_free(der);
	return pk;
}

static X509 *
issue(EVP_PKEY *pub, const X509_NAME *subject, const STACK_OF(X509_EXTENSION) *exts)
{
	X509 *x = X509_new();
	X509V3_CTX v3;
	X509_EXTENSION *e;
	unsigned char serial[12];
	BIGNUM *bn;

	if (x == NULL || RAND_bytes(serial, sizeof(serial)) != 1)
		return NULL;
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_set_version(x, X509_VERSION_3);
	X509_set_issuer_name(x, X509_get_subject_name(ca_cert));
	X509_set_subject_name(x, subject);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400);
	X509_set_pubkey(x, pub);
	for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++)
		X509_add_ext(x, sk_X509_EXTENSION_value(exts, i), -1);
	X509V3_set_ctx(&v3, ca_cert, x, NULL, NULL, 0);
	if ((e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:FALSE")) != NULL) {
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	if ((e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_key_identifier, "hash")) != NULL) {
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	if ((e = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier, "keyid")) != NULL) {
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	if (X509_sign(x, ca_key, EVP_sha256()) <= 0) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static OSSL_CMP_PKISI *
cert_request(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *req, int certReqId,
             const OSSL_CRMF_MSG *crm, const X509_REQ *p10cr, X509 **certOut,
             STACK_OF(X509) **chainOut, STACK_OF(X509) **caPubs)
{
	EVP_PKEY *pub = NULL;
	const X509_NAME *subject;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	const STACK_OF(X509_EXTENSION) *texts = NULL;

	(void)srv; (void)req; (void)certReqId; (void)caPubs;
	*certOut = NULL;
	*chainOut = NULL;
	if (strcmp(mode, "reject") == 0)
		return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_rejection,
		                               1 << OSSL_CMP_PKIFAILUREINFO_badPOP |
		                               1 << OSSL_CMP_PKIFAILUREINFO_badCertTemplate,
		                               "policy says no");
	if (p10cr != NULL) {
		pub = X509_REQ_get_pubkey((X509_REQ *)p10cr);
		subject = X509_REQ_get_subject_name(p10cr);
		exts = X509_REQ_get_extensions((X509_REQ *)p10cr);
		texts = exts;
	} else {
		OSSL_CRMF_CERTTEMPLATE *t = OSSL_CRMF_MSG_get0_tmpl(crm);
		pub = tmpl_pubkey(crm);
		subject = OSSL_CRMF_CERTTEMPLATE_get0_subject(t);
		texts = OSSL_CRMF_CERTTEMPLATE_get0_extensions(t);
	}
	if (strcmp(mode, "otherkey") == 0) {
		EVP_PKEY_free(pub);
		pub = EVP_EC_gen("P-256");
	}
	if (pub != NULL && subject != NULL)
		*certOut = issue(pub, subject, texts);
	EVP_PKEY_free(pub);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	if (*certOut == NULL)
		return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_rejection,
		                               1 << OSSL_CMP_PKIFAILUREINFO_badCertTemplate,
		                               "cannot issue for this template");
	fprintf(stderr, "cmp-ca: issued for a %s\n", p10cr ? "p10cr" : "CRMF request");
	return OSSL_CMP_STATUSINFO_new(OSSL_CMP_PKISTATUS_accepted, 0, NULL);
}

static int
genm(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *req, const STACK_OF(OSSL_CMP_ITAV) *in,
     STACK_OF(OSSL_CMP_ITAV) **out)
{
	unsigned char *der = NULL, *seq = NULL, *p;
	int n = i2d_X509(ca_cert, &der), total;
	ASN1_STRING *s = ASN1_STRING_new();
	ASN1_TYPE *v = ASN1_TYPE_new();

	(void)srv; (void)req; (void)in;
	*out = NULL;
	if (n <= 0 || s == NULL || v == NULL)
		return 0;
	total = ASN1_object_size(1, n, V_ASN1_SEQUENCE);
	p = seq = OPENSSL_malloc((size_t)total);
	ASN1_put_object(&p, 1, n, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL);
	memcpy(p, der, (size_t)n);
	ASN1_STRING_set(s, seq, total);
	ASN1_TYPE_set(v, V_ASN1_SEQUENCE, s);
	OSSL_CMP_ITAV_push0_stack_item(out, OSSL_CMP_ITAV_create(OBJ_txt2obj("1.3.6.1.5.5.7.4.17", 1), v));
	OPENSSL_free(der);
	OPENSSL_free(seq);
	return 1;
}

static void
error_cb(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *req, const OSSL_CMP_PKISI *si,
         const ASN1_INTEGER *code, const OSSL_CMP_PKIFREETEXT *details)
{
	(void)srv; (void)req; (void)si; (void)code; (void)details;
}

static int
cert_conf(OSSL_CMP_SRV_CTX *srv, const OSSL_CMP_MSG *req, int id, const ASN1_OCTET_STRING *hash,
          const OSSL_CMP_PKISI *si)
{
	char buf[256];
	(void)srv; (void)req; (void)id; (void)hash;
	fprintf(stderr, "cmp-ca: certConf: %s\n",
	        si ? OSSL_CMP_snprint_PKIStatusInfo(si, buf, sizeof(buf)) : "accepted");
	return 1;
}

static OSSL_CMP_SRV_CTX *
srv_new(const unsigned char *secret, int secret_len)
{
	OSSL_CMP_SRV_CTX *srv = OSSL_CMP_SRV_CTX_new(NULL, NULL);
	OSSL_CMP_CTX *c;
	X509_STORE *st = X509_STORE_new();

	if (srv == NULL || st == NULL ||
	    !OSSL_CMP_SRV_CTX_init(srv, NULL, cert_request, NULL, genm, error_cb, cert_conf, NULL))
		die("cannot make the server context");
	c = OSSL_CMP_SRV_CTX_get0_cmp_ctx(srv);
	X509_STORE_add_cert(st, ca_cert);
	OSSL_CMP_CTX_set0_trustedStore(c, st);
	if (secret != NULL) {
		OSSL_CMP_CTX_set1_secretValue(c, secret, secret_len);
		OSSL_CMP_CTX_set1_referenceValue(c, (const unsigned char *)"cmp-ca", 6);
	} else {
		OSSL_CMP_CTX_set1_cert(c, ca_cert);
		OSSL_CMP_CTX_set1_pkey(c, ca_key);
	}
	OSSL_CMP_SRV_CTX_set_accept_unprotected(srv, 0);
	OSSL_CMP_SRV_CTX_set_grant_implicit_confirm(srv, 0);
	OSSL_CMP_CTX_set_log_verbosity(c, OSSL_CMP_LOG_ERR);
	return srv;
}

/* One HTTP request: the body (malloc'ed), or NULL. */
static unsigned char *
read_request(int fd, size_t *len)
{
	char head[8192];
	size_t got = 0, want;
	char *end, *cl;
	unsigned char *body;

	for (;;) {
		ssize_t n = read(fd, head + got, sizeof(head) - 1 - got);
		if (n <= 0)
			return NULL;
		got += (size_t)n;
		head[got] = '\0';
		if ((end = strstr(head, "\r\n\r\n")) != NULL)
			break;
		if (got == sizeof(head) - 1)
			return NULL;
	}
	if ((cl = strcasestr(head, "\r\nContent-Length:")) == NULL)
		return NULL;
	want = strtoul(cl + 17, NULL, 10);
	if (want == 0 || want > (1u << 20) || (body = malloc(want)) == NULL)
		return NULL;
	got -= (size_t)(end + 4 - head);
	memcpy(body, end + 4, got < want ? got : want);
	while (got < want) {
		ssize_t n = read(fd, body + got, want - got);
		if (n <= 0) {
			free(body);
			return NULL;
		}
		got += (size_t)n;
	}
	*len = want;
	return body;
}

static void
respond(int fd, const char *ctype, const unsigned char *body, size_t len, size_t send)
{
	char head[256];
	int n = snprintf(head, sizeof(head), "HTTP/1.0 200 OK\r\nContent-Type: %s\r\n"
	                 "Content-Length: %zu\r\nConnection: close\r\n\r\n", ctype, send);

	(void)len; /* a truncated answer says so in Content-Length too: the CMP decoder must see it */
	if (write(fd, head, (size_t)n) != n || write(fd, body, send) != (ssize_t)send)
		fprintf(stderr, "cmp-ca: short write\n");
}

static void
read_mode(void)
{
	FILE *f = fopen(mode_file, "r");

	strcpy(mode, "normal");
	if (f != NULL) {
		if (fgets(mode, sizeof(mode), f) == NULL)
			strcpy(mode, "normal");
		mode[strcspn(mode, "\r\n")] = '\0';
		fclose(f);
	}
}

int
main(int argc, char **argv)
{
	OSSL_CMP_SRV_CTX *mac_srv, *sig_srv;
	OSSL_CMP_CTX *mac_check = OSSL_CMP_CTX_new(NULL, NULL);
	unsigned char secret[256];
	struct sockaddr_in sa = { 0 };
	size_t secret_len;
	FILE *f;
	int lfd, one = 1;

	if (argc != 6)
		die("usage: cmp-ca PORT CA-CERT CA-KEY SECRET-FILE MODE-FILE");
	signal(SIGPIPE, SIG_IGN);
	mode_file = argv[5];
	if ((f = fopen(argv[2], "r")) == NULL || (ca_cert = PEM_read_X509(f, NULL, NULL, NULL)) == NULL)
		die("cannot read the CA certificate");
	fclose(f);
	if ((f = fopen(argv[3], "r")) == NULL ||
	    (ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL)) == NULL)
		die("cannot read the CA key");
	fclose(f);
	if ((f = fopen(argv[4], "r")) == NULL)
		die("cannot read the secret");
	secret_len = fread(secret, 1, sizeof(secret), f);
	fclose(f);
	while (secret_len > 0 && (secret[secret_len - 1] == '\n' || secret[secret_len - 1] == '\r'))
		secret_len--;
	mac_srv = srv_new(secret, (int)secret_len);
	sig_srv = srv_new(NULL, 0);
	OSSL_CMP_CTX_set1_secretValue(mac_check, secret, (int)secret_len);
	OSSL_CMP_CTX_set_log_verbosity(mac_check, OSSL_CMP_LOG_EMERG);

	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 8) != 0)
		die("cannot listen on 127.0.0.1");
	fprintf(stderr, "cmp-ca: listening on 127.0.0.1:%s\n", argv[1]);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		unsigned char *body, *der = NULL;
		const unsigned char *q;
		OSSL_CMP_MSG *req, *rsp = NULL;
		size_t len = 0;
		int n;

		if (fd < 0)
			continue;
		read_mode();
		if ((body = read_request(fd, &len)) == NULL) {
			close(fd);
			continue;
		}
		if (strcmp(mode, "hang") == 0) {
			pause(); /* until the test kills it */
		}
		q = body;
		req = d2i_OSSL_CMP_MSG(NULL, &q, (long)len);
		if (req != NULL) {
			/* "maconly": every request is taken for a MAC-protected one (a
			 * wrong MAC then gets the error protected with the right secret) */
			int mac = strcmp(mode, "maconly") == 0 || OSSL_CMP_validate_msg(mac_check, req) == 1;
			ERR_clear_error();
			rsp = OSSL_CMP_SRV_process_request(mac ? mac_srv : sig_srv, req);
			ERR_print_errors_fp(stderr);
		}
		if (strcmp(mode, "html") == 0) {
			static const unsigned char page[] = "<html>maintenance</html>";
			respond(fd, "text/html", page, sizeof(page) - 1, sizeof(page) - 1);
		} else if (rsp != NULL && (n = i2d_OSSL_CMP_MSG(rsp, &der)) > 0) {
			respond(fd, "application/pkixcmp", der, (size_t)n,
			        strcmp(mode, "truncate") == 0 ? (size_t)n / 2 : (size_t)n);
		}
		OPENSSL_free(der);
		OSSL_CMP_MSG_free(rsp);
		OSSL_CMP_MSG_free(req);
		free(body);
		close(fd);
	}
}
