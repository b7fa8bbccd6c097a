/* p11-caps.c: what a token can generate and sign with, from its mechanisms. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "p11km/p11.h"
#include "p11km/util.h"

static const struct {
	const char *name;
	CK_MECHANISM_TYPE gen;
	CK_ULONG bits;     /* size as reported by C_GetMechanismInfo */
	unsigned sign;     /* signing capability needed */
} keytypes[P11KM_KEY_N] = {
	[P11KM_KEY_RSA2048] = { "rsa:2048", CKM_RSA_PKCS_KEY_PAIR_GEN, 2048, P11KM_SIGN_RSA_PKCS1 },
	[P11KM_KEY_RSA3072] = { "rsa:3072", CKM_RSA_PKCS_KEY_PAIR_GEN, 3072, P11KM_SIGN_RSA_PKCS1 },
	[P11KM_KEY_RSA4096] = { "rsa:4096", CKM_RSA_PKCS_KEY_PAIR_GEN, 4096, P11KM_SIGN_RSA_PKCS1 },
	[P11KM_KEY_EC_P256] = { "ec:p256", CKM_EC_KEY_PAIR_GEN, 256, P11KM_SIGN_ECDSA },
	[P11KM_KEY_EC_P384] = { "ec:p384", CKM_EC_KEY_PAIR_GEN, 384, P11KM_SIGN_ECDSA },
	[P11KM_KEY_EC_P521] = { "ec:p521", CKM_EC_KEY_PAIR_GEN, 521, P11KM_SIGN_ECDSA },
	[P11KM_KEY_ED25519] = { "ed25519", CKM_EC_EDWARDS_KEY_PAIR_GEN, 255, P11KM_SIGN_EDDSA },
};

int
p11km_token_is_piv(const struct p11km_token *tok)
{
	if (strncmp(tok->manufacturer, "Yubico", 6) == 0)
		return P11KM_PIV_WRITABLE;
	if (strcmp(tok->manufacturer, "piv_II") == 0)
		return P11KM_PIV_READ_ONLY;
	return 0;
}

const char *
p11km_keytype_name(enum p11km_keytype t)
{
	return (unsigned)t < P11KM_KEY_N ? keytypes[t].name : "?";
}

int
p11km_keytype_parse(const char *s)
{
	for (int i = 0; i < P11KM_KEY_N; i++)
		if (strcasecmp(s, keytypes[i].name) == 0)
			return i;
	return -1;
}

static int
has(const CK_MECHANISM_TYPE *m, size_t n, CK_MECHANISM_TYPE want)
{
	for (size_t i = 0; i < n; i++)
		if (m[i] == want)
			return 1;
	return 0;
}

/* Key sizes: RSA in bits; EC in bits of the field, though some modules
 * report bytes or leave 0: treat 0 and byte-sized ranges generously. */
static int
size_ok(const CK_MECHANISM_INFO *info, CK_MECHANISM_TYPE gen, CK_ULONG bits)
{
	CK_ULONG min = info->ulMinKeySize, max = info->ulMaxKeySize;

	if (max == 0 || gen == CKM_EC_EDWARDS_KEY_PAIR_GEN)
		return 1; /* sizes of Edwards curves are reported inconsistently */
	if (gen != CKM_RSA_PKCS_KEY_PAIR_GEN && max < 128) /* bytes */
		bits = (bits + 7) / 8;
	return bits >= min && bits <= max;
}

/* caps from the mechanism list m; C_GetMechanismInfo only for the
 * generator of key type only (all three when only < 0). */
static int
caps_of(struct p11km_token *tok, const CK_MECHANISM_TYPE *m, size_t n, int only,
        struct p11km_caps *caps)
{
	CK_MECHANISM_INFO info[3];
	static const CK_MECHANISM_TYPE gens[3] = { CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_EC_KEY_PAIR_GEN,
	                                           CKM_EC_EDWARDS_KEY_PAIR_GEN };
	int have[3] = { 0 };
	int r;

	memset(caps, 0, sizeof(*caps));
	if (has(m, n, CKM_RSA_PKCS))
		caps->sign |= P11KM_SIGN_RSA_PKCS1;
	if (has(m, n, CKM_RSA_PKCS_PSS))
		caps->sign |= P11KM_SIGN_RSA_PSS;
	if (has(m, n, CKM_ECDSA))
		caps->sign |= P11KM_SIGN_ECDSA;
	if (has(m, n, CKM_EDDSA))
		caps->sign |= P11KM_SIGN_EDDSA;
	for (int g = 0; g < 3; g++) {
		if (!has(m, n, gens[g]) || (only >= 0 && keytypes[only].gen != gens[g]))
			continue;
		r = p11km_mechanism_info(tok, gens[g], &info[g]);
		if (r == P11KM_ERR_UNSUPPORTED)
			continue;
		if (r < 0)
			return r;
		have[g] = (info[g].flags & CKF_GENERATE_KEY_PAIR) != 0;
	}
	for (int t = 0; t < P11KM_KEY_N; t++) {
		if (only >= 0 && t != only)
			continue;
		int g = keytypes[t].gen == CKM_RSA_PKCS_KEY_PAIR_GEN ? 0 :
		        keytypes[t].gen == CKM_EC_KEY_PAIR_GEN ? 1 : 2;
		if (have[g] && size_ok(&info[g], keytypes[t].gen, keytypes[t].bits))
			caps->keygen |= 1u << t;
	}
	return 0;
}

int
p11km_token_caps(struct p11km_token *tok, struct p11km_caps *caps)
{
	CK_MECHANISM_TYPE *m = NULL;
	size_t n = 0;
	int r;

	memset(caps, 0, sizeof(*caps));
	if ((r = p11km_mechanisms(tok, &m, &n)) < 0)
		return r;
	r = caps_of(tok, m, n, -1, caps);
	free(m);
	return r;
}

/* The same, asking C_GetMechanismInfo only about the generator of key type
 * t (one call, not three); when t is not usable, about all of them (same
 * mechanism list), so that caps can name what the token can make. */
int
p11km_token_caps_for(struct p11km_token *tok, enum p11km_keytype t, struct p11km_caps *caps)
{
	CK_MECHANISM_TYPE *m = NULL;
	size_t n = 0;
	int r;

	memset(caps, 0, sizeof(*caps));
	if ((unsigned)t >= P11KM_KEY_N)
		return p11km_fail(P11KM_ERR_USAGE, "unknown key type");
	if ((r = p11km_mechanisms(tok, &m, &n)) < 0)
		return r;
	if ((r = caps_of(tok, m, n, (int)t, caps)) == 0 && !p11km_caps_usable(caps, t))
		r = caps_of(tok, m, n, -1, caps);
	free(m);
	return r;
}

int
p11km_caps_usable(const struct p11km_caps *caps, enum p11km_keytype t)
{
	return (unsigned)t < P11KM_KEY_N && (caps->keygen & (1u << t)) &&
	       (caps->sign & keytypes[t].sign);
}

char *
p11km_caps_usable_list(const struct p11km_caps *caps)
{
	struct p11km_buf b = { 0 };

	for (int t = 0; t < P11KM_KEY_N; t++) {
		if (!p11km_caps_usable(caps, t))
			continue;
		if (b.len > 0)
			p11km_buf_append(&b, " ", 1);
		p11km_buf_append(&b, keytypes[t].name, strlen(keytypes[t].name));
	}
	if (b.data == NULL)
		return strdup("none");
	return (char *)b.data;
}
