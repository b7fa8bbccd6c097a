/* p11km-engine-probe: loads a binding through the pkcs11 engine in a fresh
 * process, as a server does; run by 'p11km bind emit' and 'bind check'. */
#include "config.h"

#include "p11km/bind.h"

int
main(int argc, char **argv)
{
	return p11km_engine_probe_main(argc, argv);
}
