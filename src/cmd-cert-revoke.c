/* cmd-cert-revoke.c: 'cert revoke URI|FILE --ca NAME [--reason R]': ask the
 * CA that issued a certificate to revoke it (ACME revokeCert), signed by
 * the profile's account key or, with --cert-key, by the certificate's own
 * key (on the token: it never leaves it). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "p11km/bind.h"
#include "p11km/ca.h"
#include "p11km/cmd.h"
#include "p11km/util.h"

enum { O_CA = 1000, O_REASON, O_CERT_KEY, O_CONFIG_DIR };

const struct p11km_opt p11km_cert_revoke_opts[] = {
	{ "ca", 1, O_CA, "NAME", "the CA profile of the CA that issued it (see 'p11km ca list')" },
	{ "reason", 1, O_REASON, "R", "RFC 5280 reason: unspecified (default), keyCompromise, "
	  "affiliationChanged, superseded, cessationOfOperation, or its number" },
	{ "cert-key", 1, O_CERT_KEY, "URI|FILE", "sign with the certificate's own key (pkcs11: URI "
	  "or PEM file) instead of the account key" },
	{ "config-dir", 1, O_CONFIG_DIR, "DIR", "where CA profiles live (default /etc/p11km/ca.d)" },
	{ NULL, 0, 0, NULL, NULL },
};

int
p11km_cert_revoke_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_ca_submit sub = { 0 };
	struct p11km_ca_profile *p = NULL;
	const char *ca = NULL, *dir_opt = NULL, *cert_key = NULL, *reason_s = "unspecified";
	unsigned char *der = NULL;
	X509 *cert = NULL;
	char serial[128] = "";
	int r, reason, n;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_CA: ca = g.optarg; break;
		case O_REASON: reason_s = g.optarg; break;
		case O_CERT_KEY: cert_key = g.optarg; break;
		case O_CONFIG_DIR: dir_opt = g.optarg; break;
		default: return r < 0 ? r : p11km_fail(P11KM_ERR_USAGE, "unexpected option");
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	if (ca == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "'cert revoke' needs --ca NAME (the CA that issued it)");
	if ((reason = p11km_revoke_reason(reason_s)) < 0)
		return p11km_fail(P11KM_ERR_USAGE, "--reason '%s': give unspecified, keyCompromise, "
		                  "affiliationChanged, superseded, cessationOfOperation or an RFC 5280 "
		                  "number", p11km_esc(reason_s));
	if ((r = p11km_ca_profile_load(p11km_ca_dir(dir_opt), ca, &p)) < 0)
		goto out;
	if (strcmp(p->kind->name, "acme") != 0) {
		r = p11km_fail(P11KM_ERR_USAGE, "CA profile '%s' is not an ACME CA", p->name);
		goto out;
	}
	if ((r = p11km_bind_load_cert(ctx, argv[g.argi], &cert)) < 0)
		goto out;
	if ((n = i2d_X509(cert, &der)) <= 0) {
		r = p11km_fail(P11KM_ERR_NOMEM, "cannot encode the certificate");
		goto out;
	}
	{
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;
		snprintf(serial, sizeof(serial), "%s", hex ? hex : "?");
		OPENSSL_free(hex);
		BN_free(bn);
	}
	if ((r = p11km_acme_revoke(ctx, p, der, (size_t)n, reason, cert_key, &sub)) < 0)
		goto out;
	p11km_verbose("%lu JWS signatures, %lu HTTP requests", sub.signatures, sub.requests);
	if (ctx->json) {
		json_t *o = json_pack("{s:s,s:s,s:i,s:s,s:I}", "ca", p->name, "serial", serial,
		                      "reason", reason, "signed_by", cert_key ? "certificate key" : "account key",
		                      "signatures", (json_int_t)sub.signatures);
		p11km_json_print_free(o);
	} else if (!ctx->quiet) {
		printf("revoked certificate %s at CA '%s' (reason %s)\n", serial, p->name, reason_s);
	}
out:
	p11km_ca_submit_release(&sub);
	p11km_ca_profile_free(p);
	X509_free(cert);
	OPENSSL_free(der);
	return r;
}
