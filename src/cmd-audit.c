/* cmd-audit.c: 'audit show' (also plain 'p11km audit'): the audit trail,
 * every change p11km made to tokens and files (read by op-audit.c). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "p11km/cli.h"
#include "p11km/util.h"

enum { O_SINCE = 1000 };

static const struct p11km_opt show_opts[] = {
	{ "since", 1, O_SINCE, "TIME",
	  "only changes from TIME on: 2026-12-01, 2026-12-01T10:00:00Z, or 90m, 12h, 7d ago" },
	{ NULL, 0, 0, NULL, NULL },
};

/* One record: a line of text, or the next element of the JSON array. */
static int
show(void *arg, json_t *rec)
{
	size_t *shown = arg;
	char *t;

	if (shown == NULL) {
		p11km_audit_print_text(rec);
		return 0;
	}
	t = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	printf("%s\n%s", (*shown)++ ? "," : "[", t ? t : "{}");
	free(t);
	return 0;
}

static int
cmd_audit_show(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_audit_show_opts o = { -1, show, NULL };
	struct p11km_audit_show_result res;
	size_t shown = 0;
	int c, r;

	while ((c = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (c < 0)
			return c;
		if (c == O_SINCE && (r = p11km_audit_since(g.optarg, &o.since)) < 0)
			return r;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	o.arg = p11km_cli()->json ? &shown : NULL;
	if ((r = p11km_audit_show(&o, &res)) < 0)
		return r;
	if (p11km_cli()->json)
		printf("%s]\n", shown ? "\n" : "[");
	return 0;
}

const struct p11km_cmd p11km_cmds_audit[] = {
	{ "show", NULL, "print the audit trail (also plain 'p11km audit')", cmd_audit_show, show_opts,
	  0, 0, P11KM_CMD_DEFAULT },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
