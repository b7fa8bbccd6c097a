/* cmd-track.c: 'track add/list/show/remove', 'track renew' ('p11km renew')
 * and 'track status' ('p11km status'): parse, call the library (op-track.c,
 * op-renew.c, op-status.c), print (cli-track.c). */
#include "config.h"

#include <string.h>

#include "p11km/cmd.h"
#include "p11km/op-track.h"
#include "p11km/util.h"

#define A(f) P11KM_OPT_STR(struct p11km_track_args, add.f)
#define R(f) P11KM_OPT_STR(struct p11km_track_args, renew.f)
#define RF(f) P11KM_OPT_FLAG(struct p11km_track_args, renew.f)
#define ST(f) P11KM_OPT_STR(struct p11km_track_args, f)
#define STATE_DIR(f) { "state-dir", 1, f, "DIR", "the state directory (default $P11KM_STATE_DIR, /var/lib/p11km)" }
#define END { NULL, 0, 0, NULL, NULL }

static const struct p11km_opt add_opts[] = {
	{ "id", 1, A(id), "ID", "the tracking id (default: the certificate's label)" },
	{ "ca", 1, A(ca), "NAME", "the CA profile to renew with, or file:DIR (request and reply as files)" },
	{ "ca-file", 1, A(ca_file), "FILE", "roots to verify the issued chain against (cert install --ca-file)" },
	{ "renew-before", 1, A(renew_before), "DAYS|PCT%", "renew this many days, or this share of "
	  "the lifetime, before expiry (default: 30 days or a third, whichever first)" },
	{ "prune-after", 1, A(prune_after), "DAYS", "destroy what a renewal retired (the old "
	  "certificate; with --rekey the old key pair) this many days later, or never (default 30)" },
	{ "rekey", 1, A(rekey), "POLICY", "never (default), always (same key type) or a key type (ec:p256 ...)" },
	{ "bind", 1, P11KM_TRACK_OPT_BIND, "DIR", "a binding ('bind emit') switched to the renewed certificate (repeatable)" },
	{ "reload", 1, A(reload), "COMMAND", "the server's reload command, no shell: '--reload -- CMD "
	  "ARG...' at the end of the line takes each word as is; '--reload \"CMD 'A B'\"' is split as systemd does" },
	{ "verify", 1, A(verify), "ADDR:PORT", "after the reload, check that the server there serves the new certificate" },
	{ "server-name", 1, A(server_name), "NAME", "the TLS server name (SNI) for --verify" },
	{ "standalone", 1, A(standalone), "ADDR:PORT", "ACME http-01: the built-in responder's address" },
	{ "webroot", 1, A(webroot), "DIR", "ACME http-01: files under DIR/.well-known/acme-challenge/" },
	STATE_DIR(A(state_dir)), END,
};
static const struct p11km_opt dir_opts[] = { STATE_DIR(ST(state_dir)), END };
static const struct p11km_opt renew_opts[] = {
	{ "all", 0, RF(all), NULL, "every tracked certificate" },
	{ "dry-run", 0, RF(dry_run), NULL, "say what is due; change nothing" },
	{ "wait", 0, RF(wait), NULL, "wait for another renew run to finish (default: fail at once)" },
	{ "pre-hook", 1, R(pre_hook), "COMMAND", "run before the first renewal of this run (no shell)" },
	{ "post-hook", 1, R(post_hook), "COMMAND", "run after the last renewal of this run (no shell)" },
	{ "deploy-hook", 1, R(deploy_hook), "COMMAND", "run after each installed certificate (no shell)" },
	{ "hook-timeout", 1, ST(hook_timeout), "SECONDS", "kill a hook or reload command after this long (default 60)" },
	{ "ca-wait", 1, ST(ca_wait), "SECONDS", "ACME: wait this long for an order still processing, then resume it next run (default 120)" },
	{ "config-dir", 1, R(ca_dir), "DIR", "where CA profiles live (default /etc/p11km/ca.d)" },
	STATE_DIR(R(state_dir)), END,
};
static const struct p11km_opt status_opts[] = {
	{ "warn-days", 1, ST(warn_days), "N", "warn this many days before expiry (untracked: default 30)" },
	{ "prom", 1, ST(prom), "FILE", "write a node_exporter textfile to FILE (atomically)" },
	{ "probe", 0, P11KM_OPT_FLAG(struct p11km_track_args, status.probe), NULL, "ask the servers of each "
	  "certificate (--verify, the bindings' listen addresses) which certificate they serve" },
	STATE_DIR(P11KM_OPT_STR(struct p11km_track_args, status.state_dir)), END,
};

static int
cmd_track_add(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_track_args a = { .add.force = ctx->force };
	struct p11km_track_add_result res;
	int argi, r;

	if ((r = p11km_track_args_parse(cmd, argc, argv, &a, &argi)) < 0)
		return r;
	if ((r = p11km_track_add(ctx, &a.add, &res)) < 0)
		return r;
	p11km_track_add_print(ctx, &res);
	p11km_track_add_result_release(&res);
	return 0;
}

/* list, show ID, remove ID */
static int
cmd_track_entries(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_track_args a = { 0 };
	struct p11km_track **v = NULL, *t = NULL;
	size_t n = 0;
	int argi, r;

	if ((r = p11km_track_args_parse(cmd, argc, argv, &a, &argi)) < 0)
		return r;
	if (strcmp(cmd->verb, "list") == 0 && (r = p11km_track_list(a.state_dir, &v, &n)) == 0)
		p11km_track_list_print(ctx, v, n);
	else if (strcmp(cmd->verb, "show") == 0 &&
	         (r = p11km_track_load(p11km_state_dir(a.state_dir), argv[argi], &t)) == 0)
		p11km_track_show_print(t);
	else if (strcmp(cmd->verb, "remove") == 0 && (r = p11km_track_id_check(argv[argi])) == 0 &&
	         (r = p11km_track_remove(p11km_state_dir(a.state_dir), argv[argi])) == 0 &&
	         !p11km_cli()->quiet && !p11km_cli()->json)
		printf("no longer tracked: %s\n", argv[argi]);
	p11km_track_list_free(v, n);
	p11km_track_free(t);
	return r;
}

static int
cmd_renew(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_track_args a = { .renew.force = ctx->force };
	struct p11km_renew_result res;
	int argi, r;

	if ((r = p11km_track_args_parse(cmd, argc, argv, &a, &argi)) < 0)
		return r;
	if ((r = p11km_renew(ctx, &a.renew, &res)) < 0)
		return r;
	p11km_renew_print(ctx, &res);
	r = p11km_renew_verdict(&res);
	p11km_renew_result_release(&res);
	return r;
}

static int
cmd_status(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_track_args a = { 0 };
	struct p11km_status_result res;
	int argi, r;

	if ((r = p11km_track_args_parse(cmd, argc, argv, &a, &argi)) < 0)
		return r;
	if ((r = p11km_status(ctx, &a.status, &res)) < 0)
		return r;
	if (a.prom == NULL || (r = p11km_status_prom(&res, a.prom)) == 0) {
		p11km_status_print(ctx, &res);
		r = p11km_status_verdict(&res);
	}
	p11km_status_result_release(&res);
	return r;
}

const struct p11km_cmd p11km_cmds_track[] = {
	{ "add", "CERT-URI", "track a certificate on a token for unattended renewal", cmd_track_add,
	  add_opts, 1, 1, 0 },
	{ "list", NULL, "the tracked certificates", cmd_track_entries, dir_opts, 0, 0, 0 },
	{ "show", "ID", "one tracked certificate: settings and state (JSON)", cmd_track_entries,
	  dir_opts, 1, 1, 0 },
	{ "remove", "ID", "stop tracking a certificate (the token is not touched)", cmd_track_entries,
	  dir_opts, 1, 1, 0 },
	{ "renew", "[ID...]", "renew the tracked certificates that are due (also 'p11km renew')",
	  cmd_renew, renew_opts, 0, -1, P11KM_CMD_CHANGES_TOKEN },
	{ "status", "[ID|URI|FILE|DIR...]", "expiry and renewal state, for people and monitoring "
	  "(also 'p11km status')", cmd_status, status_opts, 0, -1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
