/* cmd-ca.c: the verbs on online CAs, 'ca add/list/show/remove/account/
 * renewal-info/roots', 'req submit' and 'cert revoke': parse, call the CA
 * operations (op-ca.c, op-ca-add.c, op-submit.c), print (op-ca-report.c). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/cmd.h"
#include "p11km/op-ca.h"
#include "p11km/util.h"

#define A(f) P11KM_OPT_STR(struct p11km_ca_add_opts, f)
#define C(f) P11KM_OPT_STR(struct p11km_ca_opts, f)
#define CONFIG_DIR(k) { "config-dir", 1, k, "DIR", \
	"where CA profiles live (default /etc/p11km/ca.d, or P11KM_CONFIG_DIR)" }

static const struct p11km_opt add_opts[] = {
	{ "kind", 1, A(kind), "KIND", "acme, cmp, helper (certmonger CA helper) or adcs (AD CS web "
	  "enrollment)" },
	{ "directory", 1, A(directory), "URL", "the ACME directory URL (https)" },
	{ "ca-file", 1, A(ca_file), "FILE", "trusted roots (PEM) for the CA's TLS certificate" },
	{ "contact", 1, A(contact), "URI", "account contact, mailto:ADDRESS" },
	{ "account-key", 1, A(account_key), "URI|FILE",
	  "account key: pkcs11: URI of a token key, or a PEM file (made if absent; default DIR/NAME.key)" },
	{ "agree-tos", 0, P11KM_OPT_FLAG(struct p11km_ca_add_opts, agree_tos), NULL,
	  "agree to the CA's terms of service (creates the account)" },
	{ "timeout", 1, A(timeout), "SECONDS", "timeout of one HTTP request (default 30; a helper "
	  "run: 300)" },
	{ "command", 1, A(command), "PATH", "helper: the certmonger CA helper to run (its arguments "
	  "follow NAME, after --)" },
	{ "template", 1, A(template_name), "NAME", "adcs: the certificate template; helper: "
	  "CERTMONGER_CA_PROFILE" },
	{ "url", 1, A(url), "URL", "adcs: the web enrollment, https://HOST/certsrv; cmp: the CMP "
	  "endpoint, http(s)://HOST:PORT/PATH" },
	{ "recipient", 1, A(recipient), "NAME", "cmp: the CA's name, /CN=.../O=..." },
	{ "ref", 1, A(ref), "TEXT", "cmp: the reference (sender KID) that goes with the shared secret" },
	{ "secret-source", 1, A(secret), "SPEC", "cmp: where the shared secret for MAC (PBM) "
	  "protection is read: file:PATH, env:VAR, fd:N or prompt (stored as that reference)" },
	{ "cert", 1, A(cert), "FILE", "cmp: signature protection with this certificate (PEM) ..." },
	{ "key", 1, A(key), "URI", "cmp: ... and its key (pkcs11: URI; also the token for ir/cr/kur)" },
	{ "cmp-cmd", 1, A(cmp_cmd), "TYPE", "cmp: p10cr (default), ir, cr or kur" },
	{ "auth", 1, A(auth), "METHOD", "adcs: basic, negotiate or ntlm (default: none)" },
	{ "user", 1, A(user), "NAME", "adcs: the user name for basic or ntlm" },
	{ "password-source", 1, A(password_source), "SPEC", "adcs: where the password is read, "
	  "file:PATH or env:VAR (stored as that reference)" },
	{ "insecure-http", 0, P11KM_OPT_FLAG(struct p11km_ca_add_opts, insecure_http), NULL,
	  "adcs: allow an http:// URL (credentials and requests in the clear; warned about)" },
	{ "eab-kid", 1, A(eab_kid), "KID", "External Account Binding: the key id the CA gave out" },
	{ "eab-hmac-source", 1, A(eab_hmac_source), "SPEC",
	  "... and where its HMAC key (base64url) is: file:PATH, env:VAR or fd:N (stored as a reference)" },
	CONFIG_DIR(A(config_dir)),
	{ NULL, 0, 0, NULL, NULL },
};
static const struct p11km_opt dir_opts[] = { CONFIG_DIR(C(config_dir)), { NULL, 0, 0, NULL, NULL } };
static const struct p11km_opt account_opts[] = {
	{ "new-key", 1, C(new_key), "URI|FILE", "rollover: the new account key (pkcs11: URI, or a "
	  "PEM file, made if absent)" },
	CONFIG_DIR(C(config_dir)),
	{ NULL, 0, 0, NULL, NULL },
};

#define S(f) P11KM_OPT_STR(struct p11km_submit_opts, f)
const struct p11km_opt p11km_req_submit_opts[] = {
	{ "ca", 1, S(ca), "NAME", "the CA profile to submit to (see 'p11km ca list')" },
	{ "out", 1, 'o', "FILE", "write the issued chain (PEM, leaf first) to FILE" },
	{ "install", 0, P11KM_OPT_FLAG(struct p11km_submit_opts, install), NULL, "install the chain "
	  "next to its key ('cert install'; KEY-URI as second argument)" },
	{ "verify-ca-file", 1, S(verify_ca_file), "FILE", "with --install: roots to verify the "
	  "issued chain against (cert install --ca-file)" },
	{ "standalone", 1, S(standalone), "ADDR:PORT", "answer http-01 with a built-in responder there" },
	{ "webroot", 1, S(webroot), "DIR", "answer http-01 with files under DIR/.well-known/acme-challenge/" },
	{ "cmp", 1, S(cmp_cmd), "TYPE", "CMP: send the request as p10cr, ir, cr or kur (default: the "
	  "profile's --cmp-cmd)" },
	{ "old-cert", 1, S(old_cert), "FILE", "CMP kur: the certificate being updated (its token key "
	  "protects the message); a helper gets it as CERTMONGER_CERTIFICATE" },
	{ "key", 1, S(key), "URI", "CMP ir/cr/kur: the token (pkcs11: URI) holding the request's key "
	  "(default: the profile's --key)" },
	{ "dns-hook", 1, S(dns_hook), "CMD", "answer dns-01: run \"PROG [ARG...]\" (no shell) with "
	  "P11KM_ACME_ACTION=present|cleanup, _RECORD, _VALUE" },
	{ "preferred-chain", 1, S(preferred_chain), "CN", "take the CA's (alternate) chain whose top "
	  "certificate is issued by CN" },
	{ "config-dir", 1, S(config_dir), "DIR", "where CA profiles live (default /etc/p11km/ca.d)" },
	{ "poll", 0, P11KM_OPT_FLAG(struct p11km_submit_opts, poll), NULL, "ask again for a request "
	  "the CA holds as pending (helper, adcs)" },
	{ "state-dir", 1, S(state_dir), "DIR", "where pending requests are kept (default "
	  "/var/lib/p11km, or P11KM_STATE_DIR)" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct p11km_opt p11km_ca_roots_opts[] = {
	{ "to", 1, 1, "STORE", "install them as trusted roots into STORE ('roots install --to'; "
	  "repeat for several)" },
	{ "out", 1, 'o', "FILE", "write them (PEM) to FILE" },
	{ "dry-run", 0, P11KM_OPT_FLAG(struct p11km_ca_opts, dry_run), NULL, "with --to: show what "
	  "would change; change nothing" },
	CONFIG_DIR(C(config_dir)),
	{ NULL, 0, 0, NULL, NULL },
};

const struct p11km_opt p11km_cert_revoke_opts[] = {
	{ "ca", 1, C(name), "NAME", "the CA profile of the CA that issued it (see 'p11km ca list')" },
	{ "reason", 1, C(reason), "R", "RFC 5280 reason: unspecified (default), keyCompromise, "
	  "affiliationChanged, superseded, cessationOfOperation, or its number" },
	{ "cert-key", 1, C(cert_key), "URI|FILE", "sign with the certificate's own key (pkcs11: URI "
	  "or PEM file) instead of the account key" },
	CONFIG_DIR(C(config_dir)),
	{ NULL, 0, 0, NULL, NULL },
};

static int
cmd_ca_add(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_ca_add_opts o = { 0 };
	struct p11km_ca_profile *p = NULL;
	int r, i;

	if ((r = p11km_opts_parse(cmd, argc, argv, &o, &i)) < 0)
		return r;
	o.name = argv[i];
	o.args = (const char *const *)argv + i + 1;
	o.n_args = (size_t)(argc - i - 1);
	if ((r = p11km_ca_add(ctx, &o, &p)) == 0)
		p11km_ca_added_print(p11km_cli()->json, p);
	p11km_ca_profile_free(p);
	return r;
}

/* ca list, show, remove, account, renewal-info: NAME, then an argument. */
static int
cmd_ca_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_ca_opts o = { 0 };
	union {
		struct p11km_ca_list_result list;
		struct p11km_ca_account_result acct;
		struct p11km_ca_window_result win;
	} u;
	struct p11km_ca_profile *p = NULL;
	int r, i;

	if ((r = p11km_opts_parse(cmd, argc, argv, &o, &i)) < 0)
		return r;
	o.name = i < argc ? argv[i] : NULL;
	switch (cmd->verb[0]) {
	case 'l':
		if ((r = p11km_ca_list(ctx, &o, &u.list)) == 0)
			p11km_ca_list_print(p11km_cli()->json, &u.list), p11km_ca_list_result_release(&u.list);
		return r;
	case 's':
		if ((r = p11km_ca_show(ctx, &o, &p)) == 0)
			p11km_ca_profile_print(p11km_cli()->json, p), p11km_ca_profile_free(p);
		return r;
	case 'r':
		if (strcmp(cmd->verb, "remove") == 0) {
			if ((r = p11km_ca_remove(ctx, &o)) == 0)
				p11km_ca_removed_print(p11km_cli()->json, o.name);
			return r;
		}
		o.cert = argv[i + 1];
		if ((r = p11km_ca_renewal_info(ctx, &o, &u.win)) == 0)
			p11km_ca_window_print(p11km_cli()->json, &u.win), p11km_ca_window_result_release(&u.win);
		return r;
	default: /* account ACTION NAME */
		o.action = argv[i];
		o.name = argv[i + 1];
		if ((r = p11km_ca_account(ctx, &o, &u.acct)) == 0)
			p11km_ca_account_print(p11km_cli()->json, &u.acct), p11km_ca_account_result_release(&u.acct);
		return r;
	}
}

int
p11km_req_submit_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_submit_opts o = { 0 };
	struct p11km_submit_result res;
	struct p11km_getopt g = { 0 };
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1)
		if (r == 'o')
			o.out = g.optarg;
		else if ((r = p11km_opt_set(&o, r, g.optarg)) < 0)
			return r;
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	o.request = argv[g.argi];
	o.key_uri = g.argi + 1 < argc ? argv[g.argi + 1] : NULL;
	if ((r = p11km_req_submit(ctx, &o, &res)) == 0)
		p11km_submit_print(p11km_cli()->json, &res), p11km_submit_result_release(&res);
	return r;
}

int
p11km_cert_revoke_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_ca_opts o = { 0 };
	struct p11km_revoke_result res;
	int r, i;

	if ((r = p11km_opts_parse(cmd, argc, argv, &o, &i)) < 0)
		return r;
	o.cert = argv[i];
	if ((r = p11km_cert_revoke(ctx, &o, &res)) == 0)
		p11km_revoke_print(p11km_cli()->json, &res), p11km_revoke_result_release(&res);
	return r;
}

/* 'ca roots NAME': printed, written with -o, installed with --to (repeatable). */
int
p11km_ca_roots_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_ca_opts o = { 0 };
	struct p11km_ca_roots_result res;
	struct p11km_getopt g = { 0 };
	const char **to = calloc((size_t)argc + 1, sizeof(*to));
	int r;

	if ((o.to = to) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1 && r >= 0)
		if (r == 1)
			to[o.n_to++] = g.optarg;
		else if (r == 'o')
			o.out = g.optarg;
		else if ((r = p11km_opt_set(&o, r, g.optarg)) < 0)
			break;
	if (r == -1 && (r = p11km_check_args(cmd, argc - g.argi)) == 0) {
		o.name = argv[g.argi];
		if ((r = p11km_ca_roots(ctx, &o, &res)) == 0)
			p11km_ca_roots_print(p11km_cli()->json, &res), p11km_ca_roots_result_release(&res);
	}
	free(to);
	return r;
}

const struct p11km_cmd p11km_cmds_ca[] = {
	{ "add", "NAME [-- HELPER-ARG...]", "add a CA profile (ACME, CMP, a certmonger helper, AD CS)",
	  cmd_ca_add, add_opts, 1, -1, 0 },
	{ "list", NULL, "list the CA profiles", cmd_ca_run, dir_opts, 0, 0, 0 },
	{ "show", "NAME", "show one CA profile", cmd_ca_run, dir_opts, 1, 1, 0 },
	{ "remove", "NAME", "remove a CA profile", cmd_ca_run, dir_opts, 1, 1, 0 },
	{ "account", "show|rollover|deactivate NAME", "find the CA's account of the profile's key "
	  "(onlyReturnExisting), roll its key over (--new-key), or deactivate it", cmd_ca_run,
	  account_opts, 2, 2, 0 },
	{ "renewal-info", "NAME CERT", "the renewal window the CA suggests for CERT (ACME ARI, "
	  "RFC 9773)", cmd_ca_run, dir_opts, 2, 2, 0 },
	{ "roots", "NAME", "fetch the CA's own certificates; install them as trusted roots with --to",
	  p11km_ca_roots_run, p11km_ca_roots_opts, 1, 1, P11KM_CMD_CHANGES_TOKEN },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
