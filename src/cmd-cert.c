/* cmd-cert.c: 'cert install': parse, call the install operation
 * (op-install.c), print what it did (op-ca-report.c). */
#include "config.h"

#include <string.h>

#include "p11km/cmd.h"
#include "p11km/op.h"
#include "p11km/op-ca.h"
#include "p11km/util.h"

enum { O_CA_FILE = 1000, O_CA_PATH, O_NO_VERIFY, O_NO_CHAIN, O_KEEP_OLD, O_DESTROY_OLD,
       O_OUT_DIR, O_DER, O_DRY_RUN, O_BIND };

static const struct p11km_opt install_opts[] = {
	{ "ca-file", 1, O_CA_FILE, "FILE", "trusted roots (PEM) to verify the chain against" },
	{ "ca-path", 1, O_CA_PATH, "DIR", "directory of hashed roots (openssl rehash) to verify against" },
	{ "no-verify", 0, O_NO_VERIFY, NULL, "do not verify the chain (warns)" },
	{ "no-chain", 0, O_NO_CHAIN, NULL, "do not put the intermediate certificates on the token" },
	{ "keep-old", 0, O_KEEP_OLD, NULL, "keep replaced certificates, relabelled '<label>.retired-DATE'" },
	{ "destroy-old", 0, O_DESTROY_OLD, NULL, "rekey: destroy the old key and certificate instead of retiring them" },
	{ "out-dir", 1, O_OUT_DIR, "DIR", "also write cert.pem, chain.pem and fullchain.pem into DIR" },
	{ "der", 0, O_DER, NULL, "with --out-dir: also write cert.der" },
	{ "dry-run", 0, O_DRY_RUN, NULL, "show what would be done; change nothing" },
	{ "bind", 1, O_BIND, "DIR", "rewrite the binding 'bind emit' wrote in DIR for the new "
	  "certificate, in one atomic switch (repeatable)" },
	{ NULL, 0, 0, NULL, NULL },
};

static int
cmd_cert_install(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_install_opts o;
	struct p11km_install_result res;
	int r;

	memset(&o, 0, sizeof(o));
	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_CA_FILE: o.ca_file = g.optarg; break;
		case O_CA_PATH: o.ca_path = g.optarg; break;
		case O_NO_VERIFY: o.no_verify = 1; break;
		case O_NO_CHAIN: o.no_chain = 1; break;
		case O_KEEP_OLD: o.keep_old = 1; break;
		case O_DESTROY_OLD: o.destroy_old = 1; break;
		case O_OUT_DIR: o.out_dir = g.optarg; break;
		case O_DER: o.der = 1; break;
		case O_DRY_RUN: o.dry_run = 1; break;
		case O_BIND:
			if (o.n_bind == P11KM_INSTALL_MAX_BIND)
				return p11km_fail(P11KM_ERR_USAGE, "at most %d --bind",
				                  P11KM_INSTALL_MAX_BIND);
			o.bind[o.n_bind++] = g.optarg;
			break;
		default: return r < 0 ? r : p11km_fail(P11KM_ERR_USAGE, "unexpected option");
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	o.reply = argv[g.argi];
	o.uri = g.argi + 1 < argc ? argv[g.argi + 1] : NULL;
	if ((r = p11km_cert_install(ctx, &o, &res)) < 0)
		return r;
	p11km_install_print(p11km_cli()->json, &res);
	p11km_install_result_release(&res);
	return 0;
}

const struct p11km_cmd p11km_cmds_cert[] = {
	{ "install", "REPLY [TOKEN-or-KEY-URI]",
	  "install an issued certificate (PEM, DER, bundle or PKCS#7) next to its key",
	  cmd_cert_install, install_opts, 1, 2, P11KM_CMD_CHANGES_TOKEN },
	{ "prune", "[URI]", "destroy retired certificates (--keys: and key pairs) no binding uses",
	  p11km_cert_prune_run, p11km_cert_prune_opts, 0, 1, P11KM_CMD_CHANGES_TOKEN },
	{ "list", "[URI]", "list the certificates (object list --type cert)", p11km_cert_list_run,
	  NULL, 0, 1, 0 },
	{ "revoke", "URI|FILE", "ask the issuing ACME CA (--ca NAME) to revoke a certificate",
	  p11km_cert_revoke_run, p11km_cert_revoke_opts, 1, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
