/* cmd-req.c: the 'req' commands (to come). */
#include "config.h"

#include "p11km/cmd.h"

const struct p11km_cmd p11km_cmds_req[] = {
	{ NULL, NULL, NULL, NULL, NULL, 0, 0 },
};
