/* main.c: the command table; the run (global options, dispatch, setup,
 * report) is p11km_cli_main() in the library (cli-main.c). */
#include "config.h"

#include "p11km/cli.h"

const struct p11km_noun p11km_nouns[] = {
	{ "token", "list and initialise tokens, change PINs", p11km_cmds_token },
	{ "object", "list, export, delete and relabel keys and certificates", p11km_cmds_object },
	{ "key", "generate keys on a token", p11km_cmds_key },
	{ "req", "certificate requests signed on the token (new, renewal)", p11km_cmds_req },
	{ "cert", "install issued certificates onto tokens and files", p11km_cmds_cert },
	{ "roots", "trusted root certificates in token and file stores", p11km_cmds_roots },
	{ "bind", "server configurations that use token keys, and their checks", p11km_cmds_bind },
	{ "ca", "online certificate authorities (ACME): profiles for 'req submit'", p11km_cmds_ca },
	{ "audit", "the audit trail: every change p11km made to tokens and files", p11km_cmds_audit },
	{ "track", "tracked certificates: unattended renewal and status", p11km_cmds_track },
	{ NULL, NULL, NULL },
};

/* 'p11km renew' and 'p11km status' are 'p11km track renew' and 'p11km track status'. */
static const struct p11km_alias aliases[] = {
	{ "renew", "track" },
	{ "status", "track" },
	{ NULL, NULL },
};

int
main(int argc, char **argv)
{
	return p11km_cli_main(p11km_nouns, aliases, argc, argv);
}
