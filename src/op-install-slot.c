/* op-install-slot.c: 'cert install' on a token that holds one certificate per
 * key slot (a PIV card through ykcs11).  Its C_CreateObject writes the new
 * certificate over the slot's old one (the same object handle comes back),
 * so the old certificate cannot stay on the token next to the new one, not
 * even with --keep-old.  It is kept as a file instead, written before the
 * token changes: --out-dir DIR/replaced-DATE-SERIAL.pem, or without
 * --out-dir STATE/replaced/TOKENSERIAL-ID-DATE-SERIAL.pem (P11KM_STATE_DIR,
 * default /var/lib/p11km).  ykcs11's placeholder (written at key generation)
 * is not an issued certificate and is not kept. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bn.h>
#include <openssl/err.h>

#include "p11km/cert.h"
#include "p11km/util.h"
#include "p11km/x509.h"

#include "op-install.h"

int
cert_slot_keep(struct install *in, const struct p11km_object *o, char **path)
{
	const unsigned char *p = o->value;
	X509 *x = p != NULL ? d2i_X509(NULL, &p, (long)o->value_len) : NULL;
	struct p11km_buf pem = { 0 };
	char *serial = NULL, *id = NULL, *dir = NULL;
	int r = 0;

	*path = NULL;
	if (x == NULL || p11km_cert_is_placeholder(x)) {
		ERR_clear_error();
		X509_free(x);
		return 0;
	}
	{
		BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
		char *hex = bn ? BN_bn2hex(bn) : NULL;
		serial = hex ? strdup(hex) : NULL;
		OPENSSL_free(hex);
		BN_free(bn);
	}
	if (serial == NULL || (id = p11km_hex(o->id, o->id_len)) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (in->o.out_dir != NULL) {
		*path = p11km_asprintf("%s/replaced-%s-%s.pem", in->o.out_dir, in->date, serial);
	} else {
		dir = p11km_asprintf("%s/replaced", p11km_state_root());
		*path = p11km_asprintf("%s/%s-%s-%s-%s.pem", dir ? dir : "", in->tok->serial, id,
		                       in->date, serial);
	}
	if (*path == NULL || (in->o.out_dir == NULL && dir == NULL)) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (in->o.dry_run)
		goto out;
	if (dir != NULL && ((mkdir(p11km_state_root(), 0700) < 0 && errno != EEXIST) ||
	                    (mkdir(dir, 0700) < 0 && errno != EEXIST))) {
		r = p11km_fail(P11KM_ERR_IO, "cannot make %s for the certificate the token replaces "
		               "(%s): give --out-dir DIR or set P11KM_STATE_DIR; nothing was changed",
		               dir, strerror(errno));
		goto out;
	}
	if ((r = p11km_cert_pem_append(x, &pem)) == 0 &&
	    (r = p11km_write_file_atomic(*path, pem.data, pem.len, 0644)) < 0) {
		char *msg = strdup(p11km_errmsg(r));
		r = p11km_fail(r, "%s: the token keeps one certificate per key slot and the old one "
		               "must be kept first; nothing was changed", msg ? msg : "?");
		free(msg);
	}
out:
	if (r < 0) {
		free(*path);
		*path = NULL;
	}
	p11km_buf_release(&pem);
	free(dir);
	free(id);
	free(serial);
	X509_free(x);
	return r;
}
