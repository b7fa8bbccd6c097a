/* cmd-cert.c: the 'cert' commands (to come). */
#include "config.h"

#include "p11km/cmd.h"

const struct p11km_cmd p11km_cmds_cert[] = {
	{ NULL, NULL, NULL, NULL, NULL, 0, 0 },
};
