/* change.h: every PKCS#11 call that changes a token goes through these
 * wrappers (p11-change.c), which append the change to the audit trail
 * (audit.h) before they return: a command cannot make a change the trail
 * misses.  Each makes exactly the one PKCS#11 call it wraps (traced with
 * --trace) and returns its CK_RV; the audit log is opened before the call,
 * and a change it cannot record is not made (CKR_FUNCTION_REJECTED, with a
 * warning that says why).  A failed call is recorded too, with its error:
 * a module may have made the change all the same. */
#ifndef P11KM_CHANGE_H
#define P11KM_CHANGE_H

#include "p11km/p11.h"

/* C_CreateObject; the line says the template's class, label, id and (a
 * certificate) the SHA-256 of its value. */
CK_RV p11km_obj_create(struct p11km_session *s, CK_ATTRIBUTE *t, CK_ULONG n,
                       CK_OBJECT_HANDLE *h);
/* C_DestroyObject; the line names the object as it was last read
 * (p11km_object_read()) or created in this run, else by its handle. */
CK_RV p11km_obj_destroy(struct p11km_session *s, CK_OBJECT_HANDLE h);
/* C_SetAttributeValue; the old and new label and id. */
CK_RV p11km_obj_set(struct p11km_session *s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE *a, CK_ULONG n);
/* C_GenerateKeyPair: two lines, the public and the private key. */
CK_RV p11km_obj_keypair(struct p11km_session *s, CK_MECHANISM *m, CK_ATTRIBUTE *pubt,
                        CK_ULONG npub, CK_ATTRIBUTE *privt, CK_ULONG npriv,
                        CK_OBJECT_HANDLE *hpub, CK_OBJECT_HANDLE *hpriv);
/* C_InitToken (label: 32 bytes, space padded), C_InitPIN, C_SetPIN: the
 * line names the token, never a PIN. */
CK_RV p11km_token_init_call(struct p11km_token *t, const char *so_pin, size_t so_len,
                            const unsigned char *label);
CK_RV p11km_pin_init_call(struct p11km_session *s, const char *pin, size_t len);
CK_RV p11km_pin_set_call(struct p11km_session *s, const char *old, size_t olen,
                         const char *pin, size_t len);
/* What the wrappers name an object by: p11km_object_read() tells them;
 * an object found by a search (made although its creation failed) is
 * described by the template it was found with (class, label, id, value). */
void p11km_obj_seen(struct p11km_session *s, const struct p11km_object *o);
void p11km_obj_describe(struct p11km_session *s, CK_OBJECT_HANDLE h, const CK_ATTRIBUTE *t,
                        CK_ULONG n);

#endif
