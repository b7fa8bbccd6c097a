/* cmd-roots.c: 'roots install|remove|list': parse, call the roots
 * operations (op-roots.c), print the result (op-roots-report.c). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "p11km/cmd.h"
#include "p11km/op.h"
#include "p11km/store.h"
#include "p11km/util.h"

enum { O_TO = 1000, O_FROM, O_ALLOW_NON_CA, O_DRY_RUN, O_SYSTEM_ROOT };

#define SYSTEM_ROOT_OPT { "system-root", 1, O_SYSTEM_ROOT, "DIR", "file system root for the " \
	                  "system store (tests; also P11KM_SYSTEM_ROOT)" }
#define DRY_RUN_OPT { "dry-run", 0, O_DRY_RUN, NULL, "show what would change in each store; " \
	              "change nothing" }

static const struct p11km_opt install_opts[] = {
	{ "to", 1, O_TO, "STORE", p11km_store_to_help },
	{ "allow-non-ca", 0, O_ALLOW_NON_CA, NULL, "also trust certificates that are not CA certificates" },
	DRY_RUN_OPT, SYSTEM_ROOT_OPT,
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt remove_opts[] = {
	{ "from", 1, O_FROM, "STORE", p11km_store_from_help },
	DRY_RUN_OPT, SYSTEM_ROOT_OPT,
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt list_opts[] = { SYSTEM_ROOT_OPT, { NULL, 0, 0, NULL, NULL } };

typedef int (*roots_op)(struct p11km_ctx *, const struct p11km_roots_opts *,
                        struct p11km_roots_result *);

/* install and remove: --to or --from (repeatable), --dry-run, --allow-non-ca,
 * --system-root, then the certificates. */
static int
roots_change(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv,
             roots_op op)
{
	struct p11km_getopt g = { 0 };
	struct p11km_roots_opts o = { .force = ctx->force };
	struct p11km_roots_result res;
	const char **specs = calloc((size_t)argc + 1, sizeof(*specs));
	int r;

	if (specs == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	o.stores = specs;
	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			goto out;
		if (r == O_TO || r == O_FROM)
			specs[o.n_stores++] = g.optarg;
		else if (r == O_ALLOW_NON_CA)
			o.allow_non_ca = 1;
		else if (r == O_DRY_RUN)
			o.dry_run = 1;
		else if (r == O_SYSTEM_ROOT)
			o.system_root = g.optarg;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		goto out;
	o.certs = (const char *const *)argv + g.argi;
	o.n_certs = (size_t)(argc - g.argi);
	if ((r = op(ctx, &o, &res)) < 0)
		goto out;
	p11km_roots_print(stdout, p11km_cli()->json, &res);
	p11km_roots_result_release(&res);
out:
	free(specs);
	return r;
}

static int
cmd_roots_install(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	return roots_change(ctx, cmd, argc, argv, p11km_roots_install);
}

static int
cmd_roots_remove(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	return roots_change(ctx, cmd, argc, argv, p11km_roots_remove);
}

static int
cmd_roots_list(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_roots_result res;
	const char *sysroot = NULL;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r != O_SYSTEM_ROOT)
			return r;
		sysroot = g.optarg;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0 ||
	    (r = p11km_roots_list(ctx, argv[g.argi], sysroot, &res)) < 0)
		return r;
	p11km_roots_print(stdout, p11km_cli()->json, &res);
	p11km_roots_result_release(&res);
	return 0;
}

const struct p11km_cmd p11km_cmds_roots[] = {
	{ "install", "CERT...", "install trusted root certificates into one or more stores",
	  cmd_roots_install, install_opts, 1, -1, P11KM_CMD_CHANGES_TOKEN },
	{ "remove", "FINGERPRINT|CERT...", "remove trusted root certificates from stores",
	  cmd_roots_remove, remove_opts, 1, -1, P11KM_CMD_CHANGES_TOKEN },
	{ "list", "STORE", "list the trusted certificates of a store", cmd_roots_list, list_opts,
	  1, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
