/* p11-attest.c: the certificates a token shows for a key id, session
 * objects included (ykcs11 makes a YubiKey's slot attestation certificates
 * as session objects, CKA_TOKEN false, that p11km_find() never sees). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/p11.h"
#include "p11km/util.h"

#define MAX_CERTS 16

int
p11km_cert_objects_by_id(struct p11km_session *s, const unsigned char *id, size_t id_len,
                         struct p11km_object **objs, size_t *n)
{
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE t[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_ID, (void *)id, id_len } };
	CK_OBJECT_HANDLE h[MAX_CERTS];
	CK_ULONG got = 0;
	struct p11km_object *o;
	CK_RV rv, frv;
	int r = 0;

	*objs = NULL;
	*n = 0;
	if ((rv = P11KM_CALL(s->f, C_FindObjectsInit, s->h, t, 2)) != CKR_OK)
		return p11km_fail_ckr_tok(s->tok, rv, s->tok->label, "C_FindObjectsInit");
	rv = P11KM_CALL(s->f, C_FindObjects, s->h, h, MAX_CERTS, &got);
	frv = P11KM_CALL(s->f, C_FindObjectsFinal, s->h);
	if (rv != CKR_OK || frv != CKR_OK)
		return p11km_fail_ckr(rv != CKR_OK ? rv : frv, s->tok->label,
		                      rv != CKR_OK ? "C_FindObjects" : "C_FindObjectsFinal");
	if (got > MAX_CERTS)
		return p11km_fail(P11KM_ERR_TOKEN, "token '%s' returned %lu objects for %d asked",
		                  s->tok->label, (unsigned long)got, MAX_CERTS);
	if (got == 0)
		return 0;
	if ((o = calloc(got, sizeof(*o))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (CK_ULONG i = 0; i < got && r == 0; i++)
		r = p11km_object_read_as(s, h[i], CKO_CERTIFICATE, &o[i]);
	if (r < 0) {
		p11km_objects_free(o, got);
		return r;
	}
	*objs = o;
	*n = got;
	return 0;
}
