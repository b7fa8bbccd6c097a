/* cmd-cert-prune.c: 'cert prune': parse, call the prune operation
 * (op-prune.c), print what it destroyed. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "p11km/cmd.h"
#include "p11km/op.h"
#include "p11km/util.h"

enum { O_OLDER = 1, O_DRY_RUN, O_KEYS, O_BINDINGS };

const struct p11km_opt p11km_cert_prune_opts[] = {
	{ "older-than", 1, O_OLDER, "DAYS", "only objects retired more than DAYS days ago" },
	{ "dry-run", 0, O_DRY_RUN, NULL, "list what would be destroyed; destroy nothing" },
	{ "keys", 0, O_KEYS, NULL, "also destroy retired key pairs (private and public keys)" },
	{ "bindings", 1, O_BINDINGS, "DIR", "keep what a binding under DIR uses" },
	{ NULL, 0, 0, NULL, NULL },
};

int
p11km_cert_prune_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_prune_opts o = { .older_than = -1 };
	struct p11km_prune_result res;
	char *end;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			return r;
		if (r == O_OLDER) {
			o.older_than = strtol(g.optarg, &end, 10);
			if (*g.optarg == '\0' || *end != '\0' || o.older_than < 0 ||
			    o.older_than > 100000)
				return p11km_fail(P11KM_ERR_USAGE, "--older-than wants a number of days, "
				                  "not '%s'", p11km_esc(g.optarg));
		} else if (r == O_DRY_RUN) {
			o.dry_run = 1;
		} else if (r == O_KEYS) {
			o.keys = 1;
		} else if (r == O_BINDINGS) {
			o.bindings = g.optarg;
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	o.uri = argc > g.argi ? argv[g.argi] : NULL;
	if ((r = p11km_cert_prune(ctx, &o, &res)) < 0)
		return r;
	p11km_prune_print(stdout, p11km_cli()->json, &res);
	p11km_prune_result_release(&res);
	return 0;
}
