/* cmd-token.c: 'token list', 'token init' and 'token pin change|init':
 * parse, call the operation (op-token.c, op-pin.c), print.  'token doctor':
 * cmd-doctor.c. */
#include "config.h"

#include <string.h>

#include "p11km/cmd.h"
#include "p11km/op-token.h"
#include "p11km/util.h"

enum { O_LABEL = 1, O_SO, O_NEW_PIN_SOURCE, O_DRY_RUN };

static int
cmd_token_list(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_token_list_opts o = { 0 };
	struct p11km_token_list_result res;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1)
		if (r < 0)
			return r;
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	o.uri = g.argi < argc ? argv[g.argi] : NULL;
	if ((r = p11km_token_list(ctx, &o, &res)) < 0)
		return r;
	p11km_token_list_print(stdout, p11km_cli()->json, &res);
	p11km_token_list_result_release(&res);
	return 0;
}

static int
cmd_token_init(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_token_init_opts o = { .so_pin_source = ctx->so_pin_source_opt,
	                                   .pin_source = ctx->pin_source_opt, .force = ctx->force };
	struct p11km_token_init_result res;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			return r;
		if (r == O_LABEL)
			o.label = g.optarg;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	o.uri = g.argi < argc ? argv[g.argi] : NULL;
	if ((r = p11km_token_init(ctx, &o, &res)) < 0)
		return r;
	p11km_token_init_print(stdout, p11km_cli()->json, &res);
	p11km_token_init_result_release(&res);
	return 0;
}

static int
cmd_token_pin(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_pin_opts o = { 0 };
	struct p11km_pin_result res;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			return r;
		if (r == O_NEW_PIN_SOURCE)
			o.new_pin_source = g.optarg;
		o.so |= r == O_SO;
		o.dry_run |= r == O_DRY_RUN;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	if (strcmp(argv[g.argi], "init") == 0)
		o.init = 1;
	else if (strcmp(argv[g.argi], "change") != 0)
		return p11km_fail(P11KM_ERR_USAGE, "'token pin %s': the forms are 'token pin change' "
		                  "and 'token pin init'; see 'p11km token pin --help'", argv[g.argi]);
	o.uri = g.argi + 1 < argc ? argv[g.argi + 1] : NULL;
	if ((r = p11km_pin_change(ctx, &o, &res)) < 0)
		return r;
	p11km_pin_print(stdout, p11km_cli()->json, &res);
	p11km_pin_result_release(&res);
	return 0;
}

static const struct p11km_opt init_opts[] = {
	{ "label", 1, O_LABEL, "LABEL", "label of the new token (1 to 32 bytes)" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt pin_opts[] = {
	{ "new-pin-source", 1, O_NEW_PIN_SOURCE, "SPEC",
	  "the new PIN: file:PATH, env:VAR, fd:N or prompt (asked twice)" },
	{ "so", 0, O_SO, NULL, "change: the SO PIN (current one from --so-pin-source)" },
	{ "dry-run", 0, O_DRY_RUN, NULL, "say what would be changed; read no PIN, change nothing" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct p11km_cmd p11km_cmds_token[] = {
	{ "list", "[URI]", "list tokens with their URIs, flags and key types", cmd_token_list,
	  NULL, 0, 1, 0 },
	{ "init", "[URI]", "initialise a token with a label, SO PIN and user PIN", cmd_token_init,
	  init_opts, 0, 1, P11KM_CMD_CHANGES_TOKEN },
	{ "pin", "change|init [URI]", "change the user or SO PIN; init: the SO sets the user PIN",
	  cmd_token_pin, pin_opts, 1, 2, P11KM_CMD_CHANGES_TOKEN },
	{ "doctor", "[URI]", "diagnose a token (and --key): PIN state, mechanisms, signature, engine",
	  p11km_token_doctor_run, p11km_token_doctor_opts, 0, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
