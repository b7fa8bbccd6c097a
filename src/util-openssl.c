/* util-openssl.c: the one place the util layer touches OpenSSL (its error
 * queue, as one line for p11km's messages), so that util.c is plain C. */
#include "config.h"

#include <openssl/err.h>

#include "p11km/util.h"

const char *
p11km_openssl_error(void)
{
	static char buf[256];
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		return "unknown OpenSSL error";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}
