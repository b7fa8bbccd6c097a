/* cmd-object.c: 'object list|export|delete|relabel', 'key list', 'cert list':
 * parse, call the operation (op-object.c, op-object-edit.c), print. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/cmd.h"
#include "p11km/op-token.h"
#include "p11km/util.h"

enum { O_OUT = 'o', O_TYPE = 1, O_DER, O_CHAIN, O_ALL, O_BINDINGS, O_DRY_RUN, O_LABEL, O_ID };

static int
list_objects(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv,
             const char *type)
{
	struct p11km_getopt g = { 0 };
	struct p11km_object_list_opts o = { .type = type };
	struct p11km_object_list_result res;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			return r;
		if (r == O_TYPE)
			o.type = g.optarg;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	o.uri = g.argi < argc ? argv[g.argi] : NULL;
	if ((r = p11km_object_list(ctx, &o, &res)) < 0)
		return r;
	p11km_object_list_print(stdout, p11km_cli()->json, &res);
	p11km_object_list_result_release(&res);
	return 0;
}

static int
cmd_object_list(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	return list_objects(ctx, cmd, argc, argv, "all");
}

/* 'key list' and 'cert list': what p11tool users type first. */
int
p11km_key_list_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	return list_objects(ctx, cmd, argc, argv, "key");
}

int
p11km_cert_list_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	return list_objects(ctx, cmd, argc, argv, "cert");
}

static int
cmd_object_export(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_export_opts o = { 0 };
	struct p11km_export_result res;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			return r;
		if (r == O_OUT)
			o.out = strcmp(g.optarg, "-") == 0 ? NULL : g.optarg;
		o.der |= r == O_DER;
		o.chain |= r == O_CHAIN;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	if (p11km_cli()->json && o.der && !o.chain && o.out == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "--json --der needs -o FILE (DER is not text)");
	o.uri = argv[g.argi];
	if ((r = p11km_object_export(ctx, &o, &res)) < 0)
		return r;
	r = p11km_object_export_print(stdout, p11km_cli()->json, &res);
	p11km_export_result_release(&res);
	return r;
}

static int
cmd_object_delete(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_delete_opts o = { .force = ctx->force };
	struct p11km_delete_result res;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			return r;
		if (r == O_BINDINGS)
			o.bindings = g.optarg;
		o.all |= r == O_ALL;
		o.dry_run |= r == O_DRY_RUN;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	o.uri = argv[g.argi];
	if ((r = p11km_object_delete(ctx, &o, &res)) < 0)
		return r;
	p11km_object_delete_print(stdout, p11km_cli()->json, &res);
	p11km_delete_result_release(&res);
	return 0;
}

static int
cmd_object_relabel(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_relabel_opts o = { 0 };
	struct p11km_relabel_result res;
	unsigned char *id = NULL;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			goto out;
		if (r == O_LABEL)
			o.label = g.optarg;
		o.dry_run |= r == O_DRY_RUN;
		if (r == O_ID) {
			free(id);
			id = NULL;
			if ((r = p11km_unhex(g.optarg, &id, &o.id_len)) < 0)
				goto out;
			o.set_id = 1;
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		goto out;
	o.uri = argv[g.argi];
	o.id = id;
	if ((r = p11km_object_relabel(ctx, &o, &res)) < 0)
		goto out;
	p11km_object_relabel_print(stdout, p11km_cli()->json, &res);
	p11km_relabel_result_release(&res);
out:
	free(id);
	return r;
}

static const struct p11km_opt list_opts[] = {
	{ "type", 1, O_TYPE, "TYPE", "only cert, private, public, key (both kinds) or trusted" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt export_opts[] = {
	{ "out", 1, O_OUT, "FILE", "write to FILE, atomically (default: - for stdout)" },
	{ "der", 0, O_DER, NULL, "DER instead of PEM (one certificate or the public key)" },
	{ "chain", 0, O_CHAIN, NULL, "the certificate and its issuers found on the token (PEM)" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt delete_opts[] = {
	{ "all", 0, O_ALL, NULL, "delete every object the URI selects (listed), not just one" },
	{ "bindings", 1, O_BINDINGS, "DIR", "never delete what a binding under DIR uses" },
	{ "dry-run", 0, O_DRY_RUN, NULL, "list what would be deleted; delete nothing" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt relabel_opts[] = {
	{ "label", 1, O_LABEL, "LABEL", "the new CKA_LABEL of the key pair and its certificate" },
	{ "id", 1, O_ID, "HEX", "also a new CKA_ID (hex)" },
	{ "dry-run", 0, O_DRY_RUN, NULL, "show what would be relabelled; change nothing" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct p11km_cmd p11km_cmds_object[] = {
	{ "list", "[URI]", "list keys and certificates with their URIs and attributes",
	  cmd_object_list, list_opts, 0, 1, 0 },
	{ "export", "URI", "write a certificate (--chain: and its issuers) or public key",
	  cmd_object_export, export_opts, 1, 1, 0 },
	{ "delete", "URI", "destroy one object (--all: every one the URI selects)",
	  cmd_object_delete, delete_opts, 1, 1, P11KM_CMD_CHANGES_TOKEN },
	{ "relabel", "URI", "give a key pair and its certificate a new label (and id)",
	  cmd_object_relabel, relabel_opts, 1, 1, P11KM_CMD_CHANGES_TOKEN },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
