/* cmd-key.c: 'key generate', 'key attest' and 'key list': parse, call the
 * operation (op-key.c, op-object.c), print. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/cmd.h"
#include "p11km/op-token.h"
#include "p11km/util.h"

enum { O_OUT = 'o', O_TYPE = 1000, O_LABEL, O_ID, O_SLOT, O_ALLOW_ENGINE_BREAKING, O_CA_FILE };

static int
cmd_key_generate(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_keygen_opts o = { .type = P11KM_KEY_EC_P256, .force = ctx->force };
	struct p11km_keygen_result res;
	unsigned char *id = NULL;
	int r, t;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			goto out;
		if (r == O_TYPE && (t = p11km_keytype_parse(g.optarg)) < 0) {
			r = p11km_fail(P11KM_ERR_USAGE, "unknown key type '%s': use rsa:2048, rsa:3072, "
			               "rsa:4096, ec:p256, ec:p384, ec:p521 or ed25519", g.optarg);
			goto out;
		}
		if (r == O_TYPE)
			o.type = t;
		if (r == O_ID) {
			free(id);
			id = NULL;
			if (p11km_unhex(g.optarg, &id, &o.id_len) < 0 || o.id_len == 0 || o.id_len > 64) {
				r = p11km_fail(P11KM_ERR_USAGE, "--id takes 1 to 64 bytes in hex, like 0a1b2c");
				goto out;
			}
		}
		o.label = r == O_LABEL ? g.optarg : o.label;
		o.slot = r == O_SLOT ? g.optarg : o.slot;
		o.allow_engine_breaking |= r == O_ALLOW_ENGINE_BREAKING;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		goto out;
	o.uri = argv[g.argi];
	o.id = id;
	if ((r = p11km_key_generate(ctx, &o, &res)) < 0)
		goto out;
	p11km_key_generate_print(stdout, p11km_cli()->json, &res);
	p11km_keygen_result_release(&res);
out:
	free(id);
	return r;
}

static int
cmd_key_attest(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_attest_opts o = { .out = "-" };
	struct p11km_attest_result res;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			return r;
		o.out = r == O_OUT ? g.optarg : o.out;
		o.ca_file = r == O_CA_FILE ? g.optarg : o.ca_file;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	if (p11km_cli()->json && strcmp(o.out, "-") == 0)
		return p11km_fail(P11KM_ERR_USAGE, "with --json, give -o FILE for the certificates");
	o.uri = argv[g.argi];
	if ((r = p11km_key_attest(ctx, &o, &res)) < 0)
		return r;
	r = p11km_key_attest_print(stdout, p11km_cli()->json, p11km_cli()->quiet, &res);
	p11km_attest_result_release(&res);
	return r;
}

static const struct p11km_opt attest_opts[] = {
	{ "out", 1, O_OUT, "FILE", "write the two certificates (PEM) to FILE (default: - for stdout)" },
	{ "ca-file", 1, O_CA_FILE, "FILE", "the vendor's attestation root(s) (PEM) to verify against" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt generate_opts[] = {
	{ "type", 1, O_TYPE, "TYPE",
	  "rsa:2048, rsa:3072, rsa:4096, ec:p256 (default), ec:p384, ec:p521 or ed25519" },
	{ "label", 1, O_LABEL, "LABEL", "label (CKA_LABEL) of the new key pair (required)" },
	{ "id", 1, O_ID, "HEX", "CKA_ID (default: SHA-1 key identifier of the public key)" },
	{ "slot", 1, O_SLOT, "SLOT", "PIV key slot 9a, 9c, 9d or 9e (one-byte id 01..04)" },
	{ "allow-engine-breaking", 0, O_ALLOW_ENGINE_BREAKING, NULL,
	  "allow Ed25519 on a token with other keys (breaks libp11 0.4.12 there)" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct p11km_cmd p11km_cmds_key[] = {
	{ "generate", "TOKEN-URI", "generate a sign-only, non-extractable key pair on a token",
	  cmd_key_generate, generate_opts, 1, 1, P11KM_CMD_CHANGES_TOKEN },
	{ "attest", "KEY-URI", "export and verify the card's attestation that it generated a key",
	  cmd_key_attest, attest_opts, 1, 1, 0 },
	{ "list", "[URI]", "list the keys (object list --type key)", p11km_key_list_run, NULL, 0, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
