/* p11-objmem.c: the memory of object records (struct p11km_object):
 * release, free, copy. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/p11.h"
#include "p11km/util.h"

void
p11km_object_release(struct p11km_object *o)
{
	if (o == NULL)
		return;
	free(o->label);
	free(o->id);
	free(o->modulus);
	free(o->pub_exp);
	free(o->ec_params);
	free(o->ec_point);
	free(o->pubkey_info);
	free(o->value);
	free(o->subject);
	free(o->issuer);
	free(o->serial);
	memset(o, 0, sizeof(*o));
}

void
p11km_objects_free(struct p11km_object *objs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p11km_object_release(&objs[i]);
	free(objs);
}

static void
dup_field(unsigned char **dst, size_t *dlen, const void *src, size_t len, int *bad)
{
	*dst = NULL;
	*dlen = 0;
	if (src == NULL)
		return;
	if ((*dst = p11km_memdup(src, len ? len : 1)) == NULL)
		*bad = 1;
	else
		*dlen = len;
}

int
p11km_object_copy(const struct p11km_object *o, struct p11km_object *out)
{
	int bad = 0;

	*out = *o;
	out->label = NULL;
	if (o->label != NULL && (out->label = strdup(o->label)) == NULL)
		bad = 1;
	dup_field(&out->id, &out->id_len, o->id, o->id_len, &bad);
	dup_field(&out->modulus, &out->modulus_len, o->modulus, o->modulus_len, &bad);
	dup_field(&out->pub_exp, &out->pub_exp_len, o->pub_exp, o->pub_exp_len, &bad);
	dup_field(&out->ec_params, &out->ec_params_len, o->ec_params, o->ec_params_len, &bad);
	dup_field(&out->ec_point, &out->ec_point_len, o->ec_point, o->ec_point_len, &bad);
	dup_field(&out->pubkey_info, &out->pubkey_info_len, o->pubkey_info, o->pubkey_info_len,
	          &bad);
	dup_field(&out->value, &out->value_len, o->value, o->value_len, &bad);
	dup_field(&out->subject, &out->subject_len, o->subject, o->subject_len, &bad);
	dup_field(&out->issuer, &out->issuer_len, o->issuer, o->issuer_len, &bad);
	dup_field(&out->serial, &out->serial_len, o->serial, o->serial_len, &bad);
	if (bad) {
		p11km_object_release(out);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	return 0;
}
