/* cmd-bind.c: 'bind emit', 'bind check', 'bind verify': parse, call the
 * operations (op-bind.c, bind-check.c, bind-verify.c), print the reports
 * (op-bind-report.c). */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "p11km/bind.h"
#include "p11km/cmd.h"
#include "p11km/op.h"
#include "p11km/util.h"

enum {
	O_KEY = 256, O_LISTEN, O_SERVER_NAME, O_CERT, O_OUT_DIR, O_PIN_FILE, O_SERVICE_USER,
	O_CONNECT, O_ALLOW_PIN_VALUE, O_CA_FILE, O_CA_PATH, O_ACME_WEBROOT, O_ACME_LISTEN,
};

static int
cmd_bind_emit(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_bind_emit_opts a;
	struct p11km_bind_emit_result res;
	int r;

	memset(&a, 0, sizeof(a));
	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_KEY: a.key = g.optarg; break;
		case O_SERVER_NAME: a.server_name = g.optarg; break;
		case O_CERT: a.cert = g.optarg; break;
		case O_OUT_DIR: a.out_dir = g.optarg; break;
		case O_PIN_FILE: a.pin_file = g.optarg; break;
		case O_SERVICE_USER: a.user = g.optarg; break;
		case O_CONNECT: a.connect = g.optarg; break;
		case O_ALLOW_PIN_VALUE: a.allow_pin_value = 1; break;
		case O_ACME_WEBROOT: a.acme_webroot = g.optarg; break;
		case O_ACME_LISTEN: a.acme_listen = g.optarg; break;
		case O_LISTEN:
			if (a.n_listen == P11KM_BIND_MAX_LISTEN)
				return p11km_fail(P11KM_ERR_USAGE, "at most %d --listen",
				                  P11KM_BIND_MAX_LISTEN);
			a.listen[a.n_listen++] = g.optarg;
			break;
		default:
			if (r < 0)
				return r;
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	a.server = argv[g.argi];
	if ((r = p11km_bind_emit(ctx, &a, &res)) < 0)
		return r;
	p11km_bind_emit_print(stdout, p11km_cli()->json, &res);
	p11km_bind_emit_result_release(&res);
	return 0;
}

static int
cmd_bind_check(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_bind_report rep;
	struct p11km_problems pr = { 0 };
	const char *user = NULL;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			return r;
		if (r == O_SERVICE_USER)
			user = g.optarg;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0 ||
	    (r = p11km_bind_check(ctx, argv[g.argi], user, &rep, &pr)) < 0)
		return r;
	p11km_bind_check_print(stdout, p11km_cli()->json, &rep, &pr);
	r = p11km_bind_check_verdict(&pr);
	p11km_problems_release(&pr);
	p11km_bind_report_release(&rep);
	return r;
}

static int
cmd_bind_verify(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_verify_result res;
	const char *name = NULL, *cert = NULL, *ca_file = NULL, *ca_path = NULL;
	X509 *expected = NULL;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		switch (r) {
		case O_SERVER_NAME: name = g.optarg; break;
		case O_CERT: cert = g.optarg; break;
		case O_CA_FILE: ca_file = g.optarg; break;
		case O_CA_PATH: ca_path = g.optarg; break;
		default:
			if (r < 0)
				return r;
		}
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	if (cert != NULL && (r = p11km_bind_load_cert(ctx, cert, &expected)) < 0)
		return r;
	if ((r = p11km_bind_verify(argv[g.argi], name, expected, ca_file, ca_path, &res)) == 0) {
		p11km_bind_verify_print(stdout, p11km_cli()->json, argv[g.argi], name, &res);
		r = p11km_bind_verify_verdict(argv[g.argi], &res);
		p11km_verify_result_release(&res);
	}
	X509_free(expected);
	return r;
}

static const struct p11km_opt emit_opts[] = {
	{ "key", 1, O_KEY, "KEY-URI", "the token key the server uses (pkcs11: URI)" },
	{ "listen", 1, O_LISTEN, "ADDR:PORT", "IP:PORT, [IPv6]:PORT or *:PORT (repeatable)" },
	{ "server-name", 1, O_SERVER_NAME, "NAME", "DNS name for SNI / the virtual host" },
	{ "cert", 1, O_CERT, "URI|FILE", "the certificate (default: the token's, with the key's id)" },
	{ "out-dir", 1, O_OUT_DIR, "DIR", "write the files here (default: print them)" },
	{ "pin-file", 1, O_PIN_FILE, "FILE", "PIN file the server reads (created from --pin-source)" },
	{ "service-user", 1, O_SERVICE_USER, "USER", "user the server's workers run as" },
	{ "connect", 1, O_CONNECT, "ADDR:PORT", "backend address (stunnel)" },
	{ "allow-pin-value", 0, O_ALLOW_PIN_VALUE, NULL,
	  "allow the PIN itself (pin-value) in the config (warned about)" },
	{ "acme-webroot", 1, O_ACME_WEBROOT, "DIR", "nginx, apache: serve /.well-known/acme-challenge/ "
	  "from DIR over HTTP (req submit --webroot DIR)" },
	{ "acme-listen", 1, O_ACME_LISTEN, "ADDR:PORT", "where that HTTP server listens (default *:80)" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt check_opts[] = {
	{ "service-user", 1, O_SERVICE_USER, "USER", "check as this user (default: the manifest's)" },
	{ NULL, 0, 0, NULL, NULL },
};

static const struct p11km_opt verify_opts[] = {
	{ "server-name", 1, O_SERVER_NAME, "NAME", "SNI name to send (and check with a CA)" },
	{ "cert", 1, O_CERT, "URI|FILE", "the certificate the server should serve" },
	{ "ca-file", 1, O_CA_FILE, "FILE", "verify the served chain with these CA certificates" },
	{ "ca-path", 1, O_CA_PATH, "DIR", "verify the served chain with this hashed CA directory" },
	{ NULL, 0, 0, NULL, NULL },
};

const struct p11km_cmd p11km_cmds_bind[] = {
	{ "emit", "SERVER", "write the config that makes a server use a token key by URI",
	  cmd_bind_emit, emit_opts, 1, 1, 0 },
	{ "check", "DIR|FILE", "load an emitted binding through the engine as the server will",
	  cmd_bind_check, check_opts, 1, 1, 0 },
	{ "verify", "ADDR:PORT", "connect to a server and check the certificate it serves",
	  cmd_bind_verify, verify_opts, 1, 1, 0 },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
