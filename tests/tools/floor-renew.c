/* floor-renew: the floor for tests/bench/renew.sh: the PKCS#11 work a renewal
 * of N certificates on one token cannot do without, and nothing else.
 *
 *   floor-renew MODULE TOKEN-LABEL PIN-FILE HELPER LABEL...
 *
 * One C_Initialize, one session and one C_Login for all; then for each LABEL
 * (a certificate labelled LABEL next to its key pair, both with one CKA_ID):
 *
 *   find the certificate (C_FindObjectsInit/C_FindObjects/C_FindObjectsFinal
 *   by class and label) and read CKA_VALUE and CKA_ID (one
 *   C_GetAttributeValue into pre-sized buffers);
 *   find its private key by CKA_ID (one targeted search);
 *   build the renewal request (the certificate's subject and public key) and
 *   sign it on the token (C_SignInit/C_Sign: CKM_ECDSA over the SHA-256 of
 *   the request, or CKM_SHA256_RSA_PKCS);
 *   submit it to HELPER, a certmonger CA helper (CERTMONGER_OPERATION=SUBMIT,
 *   CERTMONGER_CSR: the same helper 'renew --all' runs), which prints the
 *   issued certificate;
 *   install it: C_CreateObject of the new certificate (label, id, subject,
 *   issuer, serial, value), then C_SetAttributeValue relabels the old one
 *   "LABEL.retired-YYYYMMDD".
 *
 * 9 + 11 x N calls in all (C_GetFunctionList, C_Initialize, C_GetSlotList,
 * C_GetTokenInfo per slot, C_OpenSession, C_Login, C_CloseSession,
 * C_Finalize).  No read-back of what it wrote, no check that the key
 * matches the certificate, no state: a floor, not a tool.  Exit 0 when
 * every certificate was renewed, 1 (with a message) at the first failure.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

static CK_FUNCTION_LIST_PTR f;
static CK_SESSION_HANDLE sess;

static void
die(const char *what, CK_RV rv)
{
	fprintf(stderr, "floor-renew: %s failed (0x%lx)\n", what, (unsigned long)rv);
	exit(1);
}

/* One search, at most one object. */
static CK_OBJECT_HANDLE
find1(CK_ATTRIBUTE *t, CK_ULONG n, const char *what)
{
	CK_OBJECT_HANDLE h[2];
	CK_ULONG got = 0;
	CK_RV rv;

	if ((rv = f->C_FindObjectsInit(sess, t, n)) != CKR_OK)
		die("C_FindObjectsInit", rv);
	if ((rv = f->C_FindObjects(sess, h, 2, &got)) != CKR_OK)
		die("C_FindObjects", rv);
	if ((rv = f->C_FindObjectsFinal(sess)) != CKR_OK)
		die("C_FindObjectsFinal", rv);
	if (got != 1) {
		fprintf(stderr, "floor-renew: %lu objects for %s\n", (unsigned long)got, what);
		exit(1);
	}
	return h[0];
}

/* Sign the request's TBS part on the token; the signature into req. */
static void
sign_req(X509_REQ *req, EVP_PKEY *pub, CK_OBJECT_HANDLE key)
{
	int ec = EVP_PKEY_is_a(pub, "EC");
	CK_MECHANISM m = { ec ? CKM_ECDSA : CKM_SHA256_RSA_PKCS, NULL, 0 };
	unsigned char *tbs = NULL, md[SHA256_DIGEST_LENGTH], sig[1024], *der = NULL;
	CK_ULONG sl = ec ? (CK_ULONG)(2 * ((EVP_PKEY_get_bits(pub) + 7) / 8))
	                 : (CK_ULONG)EVP_PKEY_get_size(pub);
	X509_ALGOR *alg = X509_ALGOR_new();
	ASN1_BIT_STRING *bits = ASN1_BIT_STRING_new();
	int tl, dl;
	CK_RV rv;

	X509_ALGOR_set0(alg, OBJ_nid2obj(ec ? NID_ecdsa_with_SHA256 : NID_sha256WithRSAEncryption),
	                ec ? V_ASN1_UNDEF : V_ASN1_NULL, NULL);
	X509_REQ_set1_signature_algo(req, alg);
	if ((tl = i2d_re_X509_REQ_tbs(req, &tbs)) <= 0)
		die("encoding the request", 0);
	if ((rv = f->C_SignInit(sess, &m, key)) != CKR_OK)
		die("C_SignInit", rv);
	if (ec) {
		SHA256(tbs, (size_t)tl, md);
		rv = f->C_Sign(sess, md, sizeof(md), sig, &sl);
	} else {
		rv = f->C_Sign(sess, tbs, (CK_ULONG)tl, sig, &sl);
	}
	if (rv != CKR_OK)
		die("C_Sign", rv);
	if (ec) { /* r || s -> ECDSA-Sig-Value */
		ECDSA_SIG *es = ECDSA_SIG_new();
		ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)sl / 2, NULL),
		               BN_bin2bn(sig + sl / 2, (int)sl / 2, NULL));
		dl = i2d_ECDSA_SIG(es, &der);
		ECDSA_SIG_free(es);
		ASN1_BIT_STRING_set(bits, der, dl);
		OPENSSL_free(der);
	} else {
		ASN1_BIT_STRING_set(bits, sig, (int)sl);
	}
	bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	X509_REQ_set0_signature(req, bits);
	X509_ALGOR_free(alg);
	OPENSSL_free(tbs);
}

/* The helper's answer to the request (PEM), as a certificate. */
static X509 *
submit(const char *helper, X509_REQ *req)
{
	BIO *mb = BIO_new(BIO_s_mem());
	char *pem = NULL, out[65536];
	size_t n = 0;
	int fd[2], st;
	pid_t pid;
	long len;

	PEM_write_bio_X509_REQ(mb, req);
	len = BIO_get_mem_data(mb, &pem);
	char *csr = strndup(pem, (size_t)len);
	BIO_free(mb);
	if (pipe(fd) != 0 || (pid = fork()) < 0)
		die("fork", 0);
	if (pid == 0) {
		dup2(fd[1], 1);
		close(fd[0]);
		close(fd[1]);
		setenv("CERTMONGER_OPERATION", "SUBMIT", 1);
		setenv("CERTMONGER_CSR", csr, 1);
		execl(helper, helper, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	for (ssize_t k; n < sizeof(out) - 1 && (k = read(fd[0], out + n, sizeof(out) - 1 - n)) > 0;)
		n += (size_t)k;
	close(fd[0]);
	free(csr);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("the helper", 0);
	mb = BIO_new_mem_buf(out, (int)n);
	X509 *x = PEM_read_bio_X509(mb, NULL, NULL, NULL);
	BIO_free(mb);
	if (x == NULL)
		die("reading the helper's certificate", 0);
	return x;
}

static void
renew_one(const char *label, const char *helper, const char *date)
{
	CK_OBJECT_CLASS cc = CKO_CERTIFICATE, pc = CKO_PRIVATE_KEY;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	unsigned char value[16384], id[256];
	CK_ATTRIBUTE ct_t[2] = { { CKA_CLASS, &cc, sizeof(cc) },
	                         { CKA_LABEL, (void *)label, strlen(label) } };
	CK_ATTRIBUTE va[2] = { { CKA_VALUE, value, sizeof(value) }, { CKA_ID, id, sizeof(id) } };
	CK_OBJECT_HANDLE ch, kh, nh;
	CK_RV rv;

	ch = find1(ct_t, 2, label);
	if ((rv = f->C_GetAttributeValue(sess, ch, va, 2)) != CKR_OK)
		die("C_GetAttributeValue", rv);
	const unsigned char *p = value;
	X509 *old = d2i_X509(NULL, &p, (long)va[0].ulValueLen);
	if (old == NULL)
		die("parsing the certificate", 0);
	CK_ATTRIBUTE kt[2] = { { CKA_CLASS, &pc, sizeof(pc) }, { CKA_ID, id, va[1].ulValueLen } };
	kh = find1(kt, 2, "the key");

	X509_REQ *req = X509_REQ_new();
	X509_REQ_set_version(req, 0);
	X509_REQ_set_subject_name(req, X509_get_subject_name(old));
	X509_REQ_set_pubkey(req, X509_get0_pubkey(old));
	sign_req(req, X509_get0_pubkey(old), kh);
	X509 *nc = submit(helper, req);

	unsigned char *der = NULL, *subj = NULL, *iss = NULL, *ser = NULL;
	int dl = i2d_X509(nc, &der), sl = i2d_X509_NAME(X509_get_subject_name(nc), &subj);
	int il = i2d_X509_NAME(X509_get_issuer_name(nc), &iss);
	int rl = i2d_ASN1_INTEGER(X509_get0_serialNumber(nc), &ser);
	CK_ATTRIBUTE t[10] = {
		{ CKA_CLASS, &cc, sizeof(cc) }, { CKA_CERTIFICATE_TYPE, &ct, sizeof(ct) },
		{ CKA_TOKEN, &yes, sizeof(yes) }, { CKA_PRIVATE, &no, sizeof(no) },
		{ CKA_LABEL, (void *)label, strlen(label) }, { CKA_ID, id, va[1].ulValueLen },
		{ CKA_SUBJECT, subj, (CK_ULONG)sl }, { CKA_ISSUER, iss, (CK_ULONG)il },
		{ CKA_SERIAL_NUMBER, ser, (CK_ULONG)rl }, { CKA_VALUE, der, (CK_ULONG)dl },
	};
	if ((rv = f->C_CreateObject(sess, t, 10, &nh)) != CKR_OK)
		die("C_CreateObject", rv);
	char retired[512];
	snprintf(retired, sizeof(retired), "%s.retired-%s", label, date);
	CK_ATTRIBUTE la = { CKA_LABEL, retired, strlen(retired) };
	if ((rv = f->C_SetAttributeValue(sess, ch, &la, 1)) != CKR_OK)
		die("C_SetAttributeValue", rv);
	OPENSSL_free(der);
	OPENSSL_free(subj);
	OPENSSL_free(iss);
	OPENSSL_free(ser);
	X509_free(nc);
	X509_REQ_free(req);
	X509_free(old);
}

int
main(int argc, char **argv)
{
	CK_RV (*gfl)(CK_FUNCTION_LIST_PTR_PTR);
	CK_SLOT_ID slots[64];
	CK_ULONG ns = 64;
	CK_SLOT_ID slot = 0;
	int found = 0;
	char pin[256], date[16];
	size_t pl;
	FILE *fp;
	void *dl;
	time_t now = time(NULL);
	CK_RV rv;

	if (argc < 6) {
		fprintf(stderr, "usage: floor-renew MODULE TOKEN-LABEL PIN-FILE HELPER LABEL...\n");
		return 2;
	}
	strftime(date, sizeof(date), "%Y%m%d", gmtime(&now));
	if ((fp = fopen(argv[3], "r")) == NULL || (pl = fread(pin, 1, sizeof(pin), fp)) == 0)
		die("reading the PIN file", 0);
	fclose(fp);
	while (pl > 0 && (pin[pl - 1] == '\n' || pin[pl - 1] == '\r'))
		pl--;
	if ((dl = dlopen(argv[1], RTLD_NOW)) == NULL ||
	    (gfl = (CK_RV (*)(CK_FUNCTION_LIST_PTR_PTR))dlsym(dl, "C_GetFunctionList")) == NULL)
		die("loading the module", 0);
	if ((rv = gfl(&f)) != CKR_OK)
		die("C_GetFunctionList", rv);
	if ((rv = f->C_Initialize(NULL)) != CKR_OK)
		die("C_Initialize", rv);
	if ((rv = f->C_GetSlotList(CK_TRUE, slots, &ns)) != CKR_OK)
		die("C_GetSlotList", rv);
	for (CK_ULONG i = 0; i < ns && !found; i++) {
		CK_TOKEN_INFO ti;
		size_t ll = strlen(argv[2]);
		if (f->C_GetTokenInfo(slots[i], &ti) == CKR_OK && ll <= 32 &&
		    memcmp(ti.label, argv[2], ll) == 0 &&
		    (ll == 32 || ti.label[ll] == ' '))
			slot = slots[i], found = 1;
	}
	if (!found)
		die("finding the token", 0);
	if ((rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
	                           &sess)) != CKR_OK)
		die("C_OpenSession", rv);
	if ((rv = f->C_Login(sess, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)pl)) != CKR_OK)
		die("C_Login", rv);
	OPENSSL_cleanse(pin, sizeof(pin));
	for (int i = 5; i < argc; i++)
		renew_one(argv[i], argv[4], date);
	f->C_CloseSession(sess);
	f->C_Finalize(NULL);
	return 0;
}
