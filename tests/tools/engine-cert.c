/* engine-cert: load a certificate by pkcs11: URI through the libp11 OpenSSL
 * engine (LOAD_CERT_CTRL, as Apache mod_ssl and stunnel do) and print it as
 * PEM.  Test judge for p11km: usage: engine-cert MODULE URI */
#define OPENSSL_API_COMPAT 0x10100000L
#include <stdio.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/pem.h>

int
main(int argc, char **argv)
{
	struct { const char *id; X509 *cert; } params = { NULL, NULL };
	ENGINE *e;
	int rc = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: engine-cert MODULE URI\n");
		return 2;
	}
	ENGINE_load_builtin_engines();
	if ((e = ENGINE_by_id("pkcs11")) == NULL ||
	    !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", argv[1], 0) || !ENGINE_init(e)) {
		ERR_print_errors_fp(stderr);
		fprintf(stderr, "engine-cert: cannot load the pkcs11 engine\n");
		return 1;
	}
	params.id = argv[2];
	if (ENGINE_ctrl_cmd(e, "LOAD_CERT_CTRL", 0, &params, NULL, 1) && params.cert != NULL) {
		PEM_write_X509(stdout, params.cert);
		X509_free(params.cert);
		rc = 0;
	} else {
		ERR_print_errors_fp(stderr);
		fprintf(stderr, "engine-cert: no certificate for '%s'\n", argv[2]);
	}
	ENGINE_finish(e);
	ENGINE_free(e);
	return rc;
}
