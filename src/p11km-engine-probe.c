/* p11km-engine-probe: loads a binding through the pkcs11 engine in a fresh
 * process, as a server does; started by 'p11km bind emit' and 'bind check'
 * with OPENSSL_CONF set.  Arguments:
 *   OPENSSL_CNF KEY-URI CERT USER MODULE_PATH   ("" for none)
 * KEY-URI "-" means: read it from standard input (p11km always does so: the
 * URI may carry pin-value, and argv is readable by every user).
 * Problems go to stdout, one line each. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "p11km/bind.h"

int
main(int argc, char **argv)
{
	static char key[P11KM_PROBE_KEY_MAX];
	struct p11km_engine_trial t;

	if (argc != 6) {
		fprintf(stderr, "p11km-engine-probe: started by 'p11km bind check', not by hand\n");
		return 2;
	}
	memset(&t, 0, sizeof(t));
	t.openssl_cnf = argv[1];
	t.key = argv[2];
	if (strcmp(argv[2], "-") == 0) {
		size_t n = 0;
		while (n < sizeof(key) - 1) {
			ssize_t got = read(0, key + n, sizeof(key) - 1 - n);
			if (got < 0 && errno == EINTR)
				continue;
			if (got <= 0)
				break;
			n += (size_t)got;
		}
		key[n] = '\0';
		key[strcspn(key, "\n")] = '\0';
		t.key = key;
	}
	t.cert = argv[3][0] ? argv[3] : NULL;
	t.user = argv[4][0] ? argv[4] : NULL;
	t.module_path = argv[5][0] ? argv[5] : NULL;
	p11km_engine_probe(&t, stdout);
}
