/* p11-fail.c: how the p11 layer reports a failed or traced PKCS#11 call.
 * Every p11 file may use it; it uses nothing of the p11 layer but the CKR
 * names (p11-names.c). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "p11km/p11.h"
#include "p11km/util.h"

CK_RV
p11km_traced(const char *fn, CK_RV rv)
{
	if (p11km_trace_on())
		p11km_trace("%s -> %s", fn, p11km_ckr_name(rv));
	return rv;
}

int
p11km_fail_ckr(CK_RV rv, const char *what, const char *fn)
{
	int code = P11KM_ERR_TOKEN;
	const char *hint = "";

	switch (rv) {
	case CKR_PIN_INCORRECT:
		code = P11KM_ERR_LOGIN;
		hint = ": the PIN is wrong (p11km tried once and will not retry)";
		break;
	case CKR_PIN_LOCKED:
		code = P11KM_ERR_LOGIN;
		hint = ": the PIN is locked; unblock it with the SO PIN";
		break;
	case CKR_PIN_INVALID: case CKR_PIN_LEN_RANGE:
		code = P11KM_ERR_LOGIN;
		hint = ": this token does not accept a PIN of that length or those characters; "
		       "check the PIN source";
		break;
	case CKR_PIN_EXPIRED:
		code = P11KM_ERR_LOGIN;
		hint = ": the PIN has expired, or is still the token's default (opencryptoki's "
		       "SO PIN); change it first ('p11km token pin change', with --so for the "
		       "SO PIN)";
		break;
	case CKR_USER_PIN_NOT_INITIALIZED:
		code = P11KM_ERR_LOGIN;
		hint = ": the token has no user PIN yet; set one ('p11km token init')";
		break;
	case CKR_USER_NOT_LOGGED_IN:
		code = P11KM_ERR_LOGIN;
		hint = ": log in first (give --pin-source)";
		break;
	case CKR_DEVICE_REMOVED: case CKR_TOKEN_NOT_PRESENT:
		hint = ": is the token still connected?";
		break;
	case CKR_TOKEN_WRITE_PROTECTED: case CKR_FUNCTION_NOT_SUPPORTED:
		/* not a failure that goes away: what this token (through this
		 * module) cannot do, e.g. OpenSC's read-only view of a PIV card */
		code = P11KM_ERR_UNSUPPORTED;
		hint = rv == CKR_TOKEN_WRITE_PROTECTED ?
		    ": this token is read-only through this module; write to it with its "
		    "vendor's module or tool (for a PIV card: ykcs11, yubico-piv-tool or piv-tool)" :
		    ": this token's module does not support that; use its vendor's module or "
		    "tool (for a PIV card read through OpenSC: ykcs11, yubico-piv-tool or piv-tool)";
		break;
	case CKR_ATTRIBUTE_TYPE_INVALID:
		code = P11KM_ERR_UNSUPPORTED;
		hint = ": this token does not support an attribute p11km needs for that";
		break;
	case CKR_HOST_MEMORY: case CKR_DEVICE_MEMORY:
		hint = ": out of memory (on the host or the token)";
		break;
	default:
		/* CKR_DEVICE_ERROR, CKR_GENERAL_ERROR, CKR_FUNCTION_FAILED, ...:
		 * nothing p11km can name, but the user can look and try again */
		hint = ": the token or its module failed; check the token ('p11km token list') "
		       "and try again";
		break;
	}
	return p11km_fail(code, "%s: %s failed: %s%s", what, fn, p11km_ckr_name(rv), hint);
}

int
p11km_fail_module(const char *what, const char *fn, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return p11km_fail(P11KM_ERR_TOKEN, "%s: %s misbehaved: %s; the PKCS#11 module is faulty "
	                  "(p11km does not use what it answered): report it to its vendor",
	                  what, fn, detail);
}

int
p11km_fail_ckr_tok(const struct p11km_token *tok, CK_RV rv, const char *what, const char *fn)
{
	CK_SLOT_INFO si;
	CK_RV srv;

	switch (rv) {
	case CKR_DEVICE_ERROR: case CKR_DEVICE_REMOVED: case CKR_TOKEN_NOT_PRESENT:
	case CKR_SESSION_HANDLE_INVALID: case CKR_SESSION_CLOSED: case CKR_FUNCTION_FAILED:
	case CKR_GENERAL_ERROR:
		break;
	default:
		return p11km_fail_ckr(rv, what, fn);
	}
	/* one call: is the token still there?  (ykcs11 does not notice a pulled
	 * card this way: it says CKR_DEVICE_ERROR and the slot looks full) */
	memset(&si, 0, sizeof(si));
	srv = tok != NULL && tok->f != NULL ? P11KM_CALL(tok->f, C_GetSlotInfo, tok->slot, &si)
	                                    : CKR_OK;
	if (tok != NULL && (srv != CKR_OK || !(si.flags & CKF_TOKEN_PRESENT) ||
	                    rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT))
		return p11km_fail(P11KM_ERR_TOKEN, "%s: %s failed: %s: the token was removed (its "
		                  "slot holds none now); put it back and run the same command again",
		                  what, fn, p11km_ckr_name(rv));
	if (tok != NULL && (si.flags & CKF_REMOVABLE_DEVICE) && rv == CKR_DEVICE_ERROR)
		return p11km_fail(P11KM_ERR_TOKEN, "%s: %s failed: %s: was the card or key pulled "
		                  "out? put it back (check with 'p11km token list') and run the same "
		                  "command again", what, fn, p11km_ckr_name(rv));
	return p11km_fail_ckr(rv, what, fn);
}
