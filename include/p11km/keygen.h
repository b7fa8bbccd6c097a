/* keygen.h: key pairs generated on a token, sign-only and never extractable. */
#ifndef P11KM_KEYGEN_H
#define P11KM_KEYGEN_H

#include <stddef.h>

#include <openssl/evp.h>

#include "p11km/p11.h"

struct p11km_keygen {
	enum p11km_keytype type;
	const char *label;             /* CKA_LABEL of both halves */
	const unsigned char *id;       /* CKA_ID; NULL: the RFC 5280 key id of the new key */
	size_t id_len;
	int force;                     /* an existing label or id is not refused */
	int allow_engine_breaking;     /* Ed25519 on a token with other keys */
};

/*
 * Checks made before generating, so a refusal changes nothing: the token
 * can generate and sign with the type (from its mechanism list; the error
 * names the types it can do), no object has the label or id (unless
 * force), and Ed25519 is refused on a token that holds keys of other types
 * unless allow_engine_breaking (libp11 0.4.12 then fails on every key).
 */
int p11km_keygen_check(struct p11km_session *s, const struct p11km_keygen *kg);

/*
 * Generate the key pair (run p11km_keygen_check() first): private key
 * CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, !CKA_EXTRACTABLE, CKA_SIGN and no
 * decrypt/unwrap/derive; public key with CKA_VERIFY; same label and id.
 * Without an id, the key is made with a temporary random id that is then
 * replaced by the key identifier of its public key.  The private key's
 * attributes are read back; if the token did not honour them the pair is
 * destroyed and P11KM_ERR_UNSUPPORTED returned.  On success *priv is the
 * private key as read back, *pub (optional) its public key.
 */
int p11km_keygen_run(struct p11km_session *s, const struct p11km_keygen *kg,
                     struct p11km_object *priv, EVP_PKEY **pub);

/* The key type of an existing private key object ("rsa:2048" ...), or -1. */
int p11km_keytype_of(const struct p11km_object *o);

#endif
