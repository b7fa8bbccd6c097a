/* cmd-req.c: 'req new' and 'req renew': parse, call the request operations
 * (op-req.c), print. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/cli.h"
#include "p11km/keygen.h"
#include "p11km/util.h"

enum { O_OUT = 'o', O_SUBJECT = 1000, O_SAN, O_KU, O_EKU, O_DIGEST, O_PSS, O_DER, O_KEY,
       O_REKEY, O_TYPE, O_FORMAT };

static int
parse(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv,
      struct p11km_req_opts *o, const char ***sans)
{
	struct p11km_getopt g = { 0 };
	size_t n_sans = 0;
	int r;

	memset(o, 0, sizeof(*o));
	o->type = -1;
	if ((*sans = calloc((size_t)argc + 1, sizeof(**sans))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_SUBJECT: o->subject = g.optarg; break;
		case O_SAN: (*sans)[n_sans++] = g.optarg; break;
		case O_KU: o->ku = g.optarg; break;
		case O_EKU: o->eku = g.optarg; break;
		case O_DIGEST: o->digest = g.optarg; break;
		case O_PSS: o->pss = 1; break;
		case O_DER: o->der = 1; break;
		case O_OUT: o->out = g.optarg; break;
		case O_KEY: o->key = g.optarg; break;
		case O_REKEY: o->rekey = 1; break;
		case O_FORMAT:
			if (strcmp(g.optarg, "ms-renewal") != 0 && strcmp(g.optarg, "pkcs10") != 0)
				return p11km_fail(P11KM_ERR_USAGE, "unknown request format '%s': use pkcs10 "
				                  "or ms-renewal", g.optarg);
			o->ms_renewal = strcmp(g.optarg, "ms-renewal") == 0;
			break;
		case O_TYPE:
			if ((o->type = p11km_keytype_parse(g.optarg)) < 0)
				return p11km_fail(P11KM_ERR_USAGE,
				    "unknown key type '%s': use rsa:2048, rsa:3072, rsa:4096, ec:p256, "
				    "ec:p384, ec:p521 or ed25519", g.optarg);
			break;
		default:
			if (r < 0)
				return r;
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	o->sans = *sans;
	o->n_sans = n_sans;
	if (strcmp(cmd->verb, "new") == 0)
		o->key = argv[g.argi];
	else
		o->cert = argv[g.argi];
	if (o->type >= 0 && !o->rekey)
		return p11km_fail(P11KM_ERR_USAGE, "--type applies only with --rekey");
	if (p11km_cli()->json && o->der && (o->out == NULL || strcmp(o->out, "-") == 0))
		return p11km_fail(P11KM_ERR_USAGE, "--json with --der needs -o FILE for the request");
	return 0;
}

static int
cmd_req(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_req_opts o;
	struct p11km_req_result res = { 0 };
	const char **sans = NULL;
	int renew = strcmp(cmd->verb, "renew") == 0, r;

	if ((r = parse(ctx, cmd, argc, argv, &o, &sans)) < 0)
		goto out;
	if ((r = renew ? p11km_req_renew(ctx, &o, &res) : p11km_req_new(ctx, &o, &res)) < 0)
		goto out;
	if ((r = p11km_req_print(p11km_cli()->json, &o, &res)) < 0)
		goto out;
	if (res.new_key_uri != NULL && !p11km_cli()->json)
		p11km_note("new key (pending until its certificate is installed): %s", res.new_key_uri);
out:
	p11km_req_result_release(&res);
	free(sans);
	return r;
}

#define COMMON_OPTS \
	{ "san", 1, O_SAN, "SPEC", "subjectAltName: DNS:, IP:, email:, URI: (repeat or comma-separate)" }, \
	{ "key-usage", 1, O_KU, "LIST", "keyUsage, like digitalSignature,keyEncipherment (or none)" }, \
	{ "ext-key-usage", 1, O_EKU, "LIST", "extendedKeyUsage, like serverAuth,clientAuth (or none)" }, \
	{ "digest", 1, O_DIGEST, "ALG", "sha256, sha384 or sha512 (default from the key)" }, \
	{ "rsa-pss", 0, O_PSS, NULL, "sign with RSA-PSS (RSA keys; salt = hash length)" }, \
	{ "der", 0, O_DER, NULL, "write DER instead of PEM" }, \
	{ "out", 1, O_OUT, "FILE", "write the request to FILE, atomically (default: - for stdout)" }

static const struct p11km_opt new_opts[] = {
	{ "subject", 1, O_SUBJECT, "DN", "subject, RFC 4514 (CN=a,O=b,C=US) or /C=US/O=b/CN=a (required)" },
	COMMON_OPTS,
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt renew_opts[] = {
	{ "key", 1, O_KEY, "URI", "key, or token holding it (needed when CERT is a file)" },
	{ "rekey", 0, O_REKEY, NULL, "sign with a new key pair '<old label>.pending' on the token" },
	{ "type", 1, O_TYPE, "TYPE", "key type of the new key with --rekey (default: the old one's)" },
	{ "subject", 1, O_SUBJECT, "DN", "replace the certificate's subject" },
	{ "format", 1, O_FORMAT, "FORMAT", "pkcs10 (default) or ms-renewal: the PKCS#10 in a CMS "
	  "SignedData by the old key, for AD CS" },
	COMMON_OPTS,
	{ NULL, 0, 0, NULL, NULL },
};

const struct p11km_cmd p11km_cmds_req[] = {
	{ "new", "KEY-URI", "a certificate request signed by a token key", cmd_req, new_opts, 1, 1, 0 },
	{ "renew", "CERT", "a renewal request from a certificate (token URI or file)", cmd_req,
	  renew_opts, 1, 1, P11KM_CMD_CHANGES_TOKEN },
	{ "submit", "REQUEST [KEY-URI]",
	  "send a request to an online CA (ACME, CMP, helper, AD CS); collect the chain",
	  p11km_req_submit_run, p11km_req_submit_opts, 1, 2, P11KM_CMD_CHANGES_TOKEN },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
