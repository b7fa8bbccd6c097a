/* cmd-doctor.c: 'token doctor': parse, call the doctor operation
 * (op-doctor.c), print its report; exit 5 when it found a problem. */
#include "config.h"

#include <stdio.h>

#include "p11km/cmd.h"
#include "p11km/op.h"
#include "p11km/util.h"

enum { O_KEY = 1, O_USER };

const struct p11km_opt p11km_token_doctor_opts[] = {
	{ "key", 1, O_KEY, "URI", "also check this private key: test signature, engine load" },
	{ "service-user", 1, O_USER, "USER", "run the engine test as this user (a server's workers)" },
	{ NULL, 0, 0, NULL, NULL },
};

int
p11km_token_doctor_run(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	struct p11km_doctor_opts o = { NULL, NULL, NULL };
	struct p11km_doctor_result res;
	int r;

	while ((r = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (r < 0)
			return r;
		if (r == O_KEY)
			o.key = g.optarg;
		else if (r == O_USER)
			o.user = g.optarg;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
	o.uri = g.argi < argc ? argv[g.argi] : NULL;
	if ((r = p11km_token_doctor(ctx, &o, &res)) < 0)
		return r;
	p11km_doctor_print(stdout, p11km_cli()->json, &res);
	r = p11km_doctor_verdict(&res);
	p11km_doctor_result_release(&res);
	return r;
}
