/*
 * p11hostile.c - a test-only PKCS#11 module that forwards to a real module
 * (P11HOSTILE_MODULE) and misbehaves the way P11HOSTILE_MODE says: lengths,
 * counts and handles no caller should trust.  See tests/hostile/README.md.
 *
 * The function list is the real module's, copied, with a few entries
 * replaced; every call not hooked goes straight to the real module.
 * Arguments are never logged (no PIN bytes leak).
 */
#include <p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mode {
	M_NONE,
	M_GROW,            /* size query answers half; the fill: BUFFER_TOO_SMALL + real (2.20) */
	M_GROW_V240,       /* the same, the fill answers CK_UNAVAILABLE_INFORMATION (2.40) */
	M_OK_OVERLONG,     /* fills answer CKR_OK with a length 16 past the buffer */
	M_TOOSMALL_LOOP,   /* fills answer CKR_BUFFER_TOO_SMALL, buffer + 1, forever */
	M_HUGE,            /* lengths of 2 GiB and CK_UNAVAILABLE_INFORMATION - 1 */
	M_UNAVAILABLE,     /* fills answer CKR_OK with CK_UNAVAILABLE_INFORMATION */
	M_GARBAGE,         /* CKA_CLASS / CKA_KEY_TYPE / CKA_CERTIFICATE_TYPE / CKA_ID junk */
	M_GARBAGE_SIZES,   /* CK_ULONG answered in 4 bytes, CK_BBOOL in 8 (past the buffer) */
	M_FIND_DUP,        /* C_FindObjects returns every handle twice */
	M_FIND_EXTRA,      /* C_FindObjects reports 3 more handles than asked for */
	M_FIND_FOREVER,    /* C_FindObjects never ends (invented handles) */
	M_SLOTS_CHANGE,    /* the first C_GetSlotList with a buffer: BUFFER_TOO_SMALL, + 40 */
	M_SLOTS_GROW,      /* every C_GetSlotList with a buffer: BUFFER_TOO_SMALL, + 1 */
	M_SLOTS_OVERCOUNT, /* C_GetSlotList: CKR_OK with a count 4 past the buffer */
	M_SLOTS_DUP,       /* every slot listed twice */
	M_TOKINFO,         /* control characters, no padding, in token/slot/module info */
	M_MECHS_OVERCOUNT, /* C_GetMechanismList: CKR_OK with a count 8 past the buffer */
	M_MECHS_GROW,      /* C_GetMechanismList: BUFFER_TOO_SMALL, count doubled, forever */
	M_SIGN_OVERLONG,   /* C_Sign: CKR_OK with a length 64 past the buffer */
	M_SIGN_LOOP,       /* C_Sign: BUFFER_TOO_SMALL, buffer + 1, forever */
	M_KEYGEN_SAME,     /* C_GenerateKeyPair: the private key's handle for both keys */
	M_MECHS_REFUSED,   /* lists the hash-and-sign mechanisms, refuses them at C_SignInit */
	M_HIDE_FIRST_INIT, /* no slot until the second C_Initialize (SoftHSM2 leaves out a token
	                      whose files another process rewrites while it initialises) */
	M_STALE_FIRST_INIT, /* C_Login: CKR_GENERAL_ERROR until the second C_Initialize
	                       (SoftHSM2 2.6.1 after reading a token another process wrote) */
	M_COUNT
};

static const char *const mode_names[M_COUNT] = {
	"none", "grow", "grow-v240", "ok-overlong", "toosmall-loop", "huge", "unavailable",
	"garbage", "garbage-sizes", "find-dup", "find-extra", "find-forever", "slots-change",
	"slots-grow", "slots-overcount", "slots-dup", "tokinfo", "mechs-overcount",
	"mechs-grow", "sign-overlong", "sign-loop", "keygen-same", "mechs-refused",
	"hide-first-init", "stale-first-init",
};

/* mechs-refused: what a network HSM or an RPC layer may list and refuse
 * (p11-kit's RPC, opencryptoki), each with the mechanism whose info it
 * borrows. */
static const CK_MECHANISM_TYPE refused_mechs[][2] = {
	{ CKM_ECDSA_SHA256, CKM_ECDSA },
	{ CKM_SHA256_RSA_PKCS, CKM_RSA_PKCS },
	{ CKM_SHA256_RSA_PKCS_PSS, CKM_RSA_PKCS_PSS },
};
#define N_REFUSED (sizeof(refused_mechs) / sizeof(refused_mechs[0]))

static CK_FUNCTION_LIST g_list;  /* ours: the real one with hooks */
static CK_FUNCTION_LIST *g_real;
static void *g_dl;
static enum mode g_mode;
static int g_loaded;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

/* --- attribute kinds ----------------------------------------------------- */

static int
is_ulong_attr(CK_ATTRIBUTE_TYPE t)
{
	return t == CKA_CLASS || t == CKA_KEY_TYPE || t == CKA_CERTIFICATE_TYPE ||
	       t == CKA_CERTIFICATE_CATEGORY || t == CKA_MODULUS_BITS || t == CKA_VALUE_LEN ||
	       t == CKA_KEY_GEN_MECHANISM || t == CKA_NAME_HASH_ALGORITHM ||
	       t == CKA_JAVA_MIDP_SECURITY_DOMAIN;
}

static int
is_bool_attr(CK_ATTRIBUTE_TYPE t)
{
	switch (t) {
	case CKA_TOKEN: case CKA_PRIVATE: case CKA_MODIFIABLE: case CKA_TRUSTED:
	case CKA_SENSITIVE: case CKA_ENCRYPT: case CKA_DECRYPT: case CKA_WRAP: case CKA_UNWRAP:
	case CKA_SIGN: case CKA_SIGN_RECOVER: case CKA_VERIFY: case CKA_VERIFY_RECOVER:
	case CKA_DERIVE: case CKA_EXTRACTABLE: case CKA_LOCAL: case CKA_NEVER_EXTRACTABLE:
	case CKA_ALWAYS_SENSITIVE: case CKA_ALWAYS_AUTHENTICATE: case CKA_WRAP_WITH_TRUSTED:
	case CKA_COPYABLE: case CKA_DESTROYABLE:
		return 1;
	default:
		return 0;
	}
}

/* A byte string of any length (label, id, DER values...). */
static int
is_var_attr(CK_ATTRIBUTE_TYPE t)
{
	return !is_ulong_attr(t) && !is_bool_attr(t);
}

/* (object, attribute) pairs whose size was already asked (grow modes). */
static struct { CK_OBJECT_HANDLE h; CK_ATTRIBUTE_TYPE t; } g_seen[4096];
static size_t g_nseen;

static int
first_size_query(CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t)
{
	for (size_t i = 0; i < g_nseen; i++)
		if (g_seen[i].h == h && g_seen[i].t == t)
			return 0;
	if (g_nseen == sizeof(g_seen) / sizeof(g_seen[0]))
		return 0;
	g_seen[g_nseen].h = h;
	g_seen[g_nseen++].t = t;
	return 1;
}

/* --- C_GetAttributeValue ------------------------------------------------------- */

/* The first failure of a partial read wins, as modules do. */
static CK_RV
merge_rv(CK_RV acc, CK_RV rv)
{
	return acc == CKR_OK ? rv : acc;
}

static const unsigned char junk_id[] = { 0x00, 0xff, '\n', 0x1b, '[', '2', 'J' };

/* What one attribute answers instead of the real module (1), or pass (0). */
static int
override(CK_OBJECT_HANDLE h, CK_ATTRIBUTE *a, CK_ULONG real_len, CK_RV *rv)
{
	int var = is_var_attr(a->type), query = a->pValue == NULL;

	if (!var || real_len == CK_UNAVAILABLE_INFORMATION)
		return 0;
	switch (g_mode) {
	case M_GROW: case M_GROW_V240:
		if (query && real_len > 1 && first_size_query(h, a->type)) {
			a->ulValueLen = real_len / 2;
			*rv = CKR_OK;
			return 1;
		}
		if (!query && a->ulValueLen < real_len) {
			a->ulValueLen = g_mode == M_GROW ? real_len : CK_UNAVAILABLE_INFORMATION;
			*rv = CKR_BUFFER_TOO_SMALL;
			return 1;
		}
		return 0;
	case M_TOOSMALL_LOOP:
		if (query)
			return 0;
		a->ulValueLen += 1;
		*rv = CKR_BUFFER_TOO_SMALL;
		return 1;
	case M_HUGE:
		a->ulValueLen = (a->type & 1) ? 0x80000000UL : CK_UNAVAILABLE_INFORMATION - 1;
		*rv = query ? CKR_OK : CKR_BUFFER_TOO_SMALL;
		return 1;
	case M_UNAVAILABLE:
		if (query)
			return 0;
		a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
		*rv = CKR_OK;
		return 1;
	case M_GARBAGE:
		if (a->type != CKA_ID)
			return 0;
		if (!query && a->ulValueLen >= sizeof(junk_id))
			memcpy(a->pValue, junk_id, sizeof(junk_id));
		*rv = query || a->ulValueLen >= sizeof(junk_id) ? CKR_OK : CKR_BUFFER_TOO_SMALL;
		a->ulValueLen = *rv == CKR_OK ? sizeof(junk_id) : CK_UNAVAILABLE_INFORMATION;
		return 1;
	default:
		return 0;
	}
}

/* After the real fill: what the hostile modes do to the values it gave. */
static void
post_fill(CK_ATTRIBUTE *a, CK_ULONG cap)
{
	if (a->ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return;
	switch (g_mode) {
	case M_OK_OVERLONG:
		if (a->pValue != NULL && is_var_attr(a->type))
			a->ulValueLen = cap + 16;
		break;
	case M_GARBAGE:
		if (a->type == CKA_CLASS || a->type == CKA_KEY_TYPE || a->type == CKA_CERTIFICATE_TYPE) {
			if (a->pValue != NULL && cap >= sizeof(CK_ULONG))
				*(CK_ULONG *)a->pValue = CKO_VENDOR_DEFINED | 0xbadUL;
		}
		break;
	case M_GARBAGE_SIZES:
		if (is_ulong_attr(a->type))
			a->ulValueLen = 4;
		else if (is_bool_attr(a->type))
			a->ulValueLen = 8;
		break;
	default:
		break;
	}
}

static CK_RV
h_GetAttributeValue(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_PTR t, CK_ULONG n)
{
	CK_ATTRIBUTE *q = NULL, *pass = NULL;
	CK_ULONG *idx = NULL, *cap = NULL, np = 0;
	CK_RV rv, acc = CKR_OK;

	if (g_mode == M_NONE || t == NULL || n == 0 || n > 1024)
		return g_real->C_GetAttributeValue(s, h, t, n);
	q = calloc(n, sizeof(*q));
	pass = calloc(n, sizeof(*pass));
	idx = calloc(n, sizeof(*idx));
	cap = calloc(n, sizeof(*cap));
	if (q == NULL || pass == NULL || idx == NULL || cap == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	/* the real lengths first */
	for (CK_ULONG i = 0; i < n; i++)
		q[i] = (CK_ATTRIBUTE){ t[i].type, NULL, 0 };
	rv = g_real->C_GetAttributeValue(s, h, q, n);
	if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE && rv != CKR_ATTRIBUTE_TYPE_INVALID)
		goto out;
	acc = rv;
	pthread_mutex_lock(&g_lock);
	for (CK_ULONG i = 0; i < n; i++) {
		CK_RV orv = CKR_OK;
		if (override(h, &t[i], q[i].ulValueLen, &orv)) {
			acc = merge_rv(acc, orv);
			continue;
		}
		if (t[i].pValue == NULL || q[i].ulValueLen == CK_UNAVAILABLE_INFORMATION) {
			t[i].ulValueLen = q[i].ulValueLen;
			continue;
		}
		cap[np] = t[i].ulValueLen;
		idx[np] = i;
		pass[np++] = t[i];
	}
	pthread_mutex_unlock(&g_lock);
	if (np > 0) {
		rv = g_real->C_GetAttributeValue(s, h, pass, np);
		if (rv != CKR_OK && rv != CKR_ATTRIBUTE_SENSITIVE &&
		    rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_BUFFER_TOO_SMALL)
			goto out;
		acc = merge_rv(acc, rv);
		for (CK_ULONG k = 0; k < np; k++)
			t[idx[k]].ulValueLen = pass[k].ulValueLen;
	}
	for (CK_ULONG k = 0; k < np; k++)
		post_fill(&t[idx[k]], cap[k]);
	if (g_mode == M_GARBAGE_SIZES)
		for (CK_ULONG i = 0; i < n; i++)
			if (t[i].pValue == NULL)
				post_fill(&t[i], 0);
	rv = acc;
out:
	free(q);
	free(pass);
	free(idx);
	free(cap);
	return rv;
}

/* --- C_FindObjects ---------------------------------------------------------------- */

/* find-dup: the second copy of a handle that did not fit the caller's array. */
static struct { CK_SESSION_HANDLE s; CK_OBJECT_HANDLE h; int has; } g_pending[64];
static CK_OBJECT_HANDLE g_invented = 0x70000000;

static CK_RV
h_FindObjects(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR ph, CK_ULONG max, CK_ULONG_PTR count)
{
	CK_ULONG out = 0, got = 0;
	CK_RV rv;

	if (ph == NULL || count == NULL || max == 0)
		return g_real->C_FindObjects(s, ph, max, count);
	switch (g_mode) {
	case M_FIND_DUP: {
		size_t slot = (size_t)(s % 64);
		if (g_pending[slot].has && g_pending[slot].s == s) {
			ph[out++] = g_pending[slot].h;
			g_pending[slot].has = 0;
		}
		while (out < max) {
			CK_OBJECT_HANDLE h;
			if ((rv = g_real->C_FindObjects(s, &h, 1, &got)) != CKR_OK)
				return rv;
			if (got == 0)
				break;
			ph[out++] = h;
			if (out < max)
				ph[out++] = h;
			else
				g_pending[slot].s = s, g_pending[slot].h = h, g_pending[slot].has = 1;
		}
		*count = out;
		return CKR_OK;
	}
	case M_FIND_EXTRA:
		rv = g_real->C_FindObjects(s, ph, max, count);
		if (rv == CKR_OK && *count > 0)
			*count = max + 3;
		return rv;
	case M_FIND_FOREVER:
		rv = g_real->C_FindObjects(s, ph, max, count);
		if (rv != CKR_OK)
			return rv;
		for (out = *count; out < max; out++)
			ph[out] = g_invented++;
		*count = max;
		return CKR_OK;
	default:
		return g_real->C_FindObjects(s, ph, max, count);
	}
}

static CK_RV
h_FindObjectsFinal(CK_SESSION_HANDLE s)
{
	g_pending[s % 64].has = 0;
	return g_real->C_FindObjectsFinal(s);
}

/* --- slots, tokens, mechanisms ----------------------------------------------------- */

static int g_slot_calls;
static int g_inits;

static CK_RV
h_Initialize(CK_VOID_PTR args)
{
	CK_RV rv = g_real->C_Initialize(args);
	if (rv == CKR_OK)
		g_inits++;
	return rv;
}

static CK_RV
h_Login(CK_SESSION_HANDLE h, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	/* the PIN never reaches the module: it is not tested (SoftHSM2 fails
	 * before it checks it) */
	if (g_mode == M_STALE_FIRST_INIT && g_inits < 2)
		return CKR_GENERAL_ERROR;
	return g_real->C_Login(h, user, pin, len);
}

static CK_RV
h_GetSlotList(CK_BBOOL present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	CK_SLOT_ID tmp[256];
	CK_ULONG n = 256;
	CK_RV rv;

	if (count == NULL)
		return g_real->C_GetSlotList(present, list, count);
	if (g_mode == M_HIDE_FIRST_INIT && g_inits < 2) {
		*count = 0;
		return CKR_OK;
	}
	switch (g_mode) {
	case M_SLOTS_CHANGE:
		if (list != NULL && g_slot_calls++ == 0) {
			*count += 40;
			return CKR_BUFFER_TOO_SMALL;
		}
		break;
	case M_SLOTS_GROW:
		if (list != NULL) {
			*count += 1;
			return CKR_BUFFER_TOO_SMALL;
		}
		break;
	case M_SLOTS_OVERCOUNT: {
		CK_ULONG given = *count;
		rv = g_real->C_GetSlotList(present, list, count);
		if (rv == CKR_OK && list != NULL)
			*count = given + 4;
		return rv;
	}
	case M_SLOTS_DUP:
		if ((rv = g_real->C_GetSlotList(present, tmp, &n)) != CKR_OK)
			return rv;
		if (list == NULL) {
			*count = 2 * n;
			return CKR_OK;
		}
		if (*count < 2 * n) {
			*count = 2 * n;
			return CKR_BUFFER_TOO_SMALL;
		}
		for (CK_ULONG i = 0; i < n; i++)
			list[2 * i] = list[2 * i + 1] = tmp[i];
		*count = 2 * n;
		return CKR_OK;
	default:
		break;
	}
	return g_real->C_GetSlotList(present, list, count);
}

/* Control characters and no space padding, the full width of the field. */
static void
evil_text(CK_UTF8CHAR *dst, size_t len, const char *pattern)
{
	size_t pl = strlen(pattern);

	for (size_t i = 0; i < len; i++)
		dst[i] = (CK_UTF8CHAR)pattern[i % pl];
}

static CK_RV
h_GetTokenInfo(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info)
{
	CK_RV rv = g_real->C_GetTokenInfo(slot, info);

	if (rv != CKR_OK || info == NULL || g_mode != M_TOKINFO)
		return rv;
	/* the label is left alone: tests select the token by it */
	evil_text(info->manufacturerID, sizeof(info->manufacturerID), "\033[31mEVIL\n\r\t\x7f");
	evil_text(info->model, sizeof(info->model), "m\nodel\x01\x02");
	evil_text(info->serialNumber, sizeof(info->serialNumber), "S\033]0;x\007");
	evil_text(info->utcTime, sizeof(info->utcTime), "\n\n");
	info->ulMaxPinLen = 4;
	info->ulMinPinLen = 255;
	info->ulMaxSessionCount = CK_UNAVAILABLE_INFORMATION - 1;
	return rv;
}

static CK_RV
h_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	CK_RV rv = g_real->C_GetSlotInfo(slot, info);

	if (rv == CKR_OK && info != NULL && g_mode == M_TOKINFO) {
		evil_text(info->slotDescription, sizeof(info->slotDescription), "slot\n\033[2J");
		evil_text(info->manufacturerID, sizeof(info->manufacturerID), "\r\b");
	}
	return rv;
}

static CK_RV
h_GetInfo(CK_INFO_PTR info)
{
	CK_RV rv = g_real->C_GetInfo(info);

	if (rv == CKR_OK && info != NULL && g_mode == M_TOKINFO) {
		evil_text(info->manufacturerID, sizeof(info->manufacturerID), "lib\n");
		evil_text(info->libraryDescription, sizeof(info->libraryDescription), "\033[1m");
	}
	return rv;
}

static CK_RV
h_GetMechanismList(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count)
{
	CK_ULONG given = count ? *count : 0;
	CK_RV rv;

	if (count != NULL && list != NULL && g_mode == M_MECHS_GROW) {
		*count = 2 * given + 1;
		return CKR_BUFFER_TOO_SMALL;
	}
	if (g_mode == M_MECHS_REFUSED && count != NULL) {
		/* the real list, then those of refused_mechs it lacks */
		CK_MECHANISM_TYPE buf[512];
		CK_ULONG n = 512, k;
		if ((rv = g_real->C_GetMechanismList(slot, buf, &n)) != CKR_OK)
			return rv;
		k = n;
		for (size_t i = 0; i < N_REFUSED && k < 512; i++) {
			CK_ULONG j = 0;
			while (j < n && buf[j] != refused_mechs[i][0])
				j++;
			if (j == n)
				buf[k++] = refused_mechs[i][0];
		}
		*count = k;
		if (list == NULL)
			return CKR_OK;
		if (given < k)
			return CKR_BUFFER_TOO_SMALL;
		memcpy(list, buf, k * sizeof(*buf));
		return CKR_OK;
	}
	rv = g_real->C_GetMechanismList(slot, list, count);
	if (rv == CKR_OK && list != NULL && g_mode == M_MECHS_OVERCOUNT)
		*count = given + 8;
	return rv;
}

static CK_RV
h_GetMechanismInfo(CK_SLOT_ID slot, CK_MECHANISM_TYPE m, CK_MECHANISM_INFO_PTR info)
{
	CK_RV rv = g_real->C_GetMechanismInfo(slot, m, info);

	for (size_t i = 0; rv == CKR_MECHANISM_INVALID && g_mode == M_MECHS_REFUSED &&
	     i < N_REFUSED; i++)
		if (m == refused_mechs[i][0])
			rv = g_real->C_GetMechanismInfo(slot, refused_mechs[i][1], info);
	return rv;
}

static CK_RV
h_SignInit(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key)
{
	for (size_t i = 0; m != NULL && g_mode == M_MECHS_REFUSED && i < N_REFUSED; i++)
		if (m->mechanism == refused_mechs[i][0])
			return CKR_MECHANISM_INVALID;
	return g_real->C_SignInit(s, m, key);
}

static CK_RV
h_Sign(CK_SESSION_HANDLE s, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig, CK_ULONG_PTR siglen)
{
	CK_ULONG given = siglen ? *siglen : 0;
	CK_RV rv;

	if (siglen != NULL && sig != NULL && g_mode == M_SIGN_LOOP) {
		*siglen = given + 1;
		return CKR_BUFFER_TOO_SMALL;
	}
	rv = g_real->C_Sign(s, data, len, sig, siglen);
	if (rv == CKR_OK && sig != NULL && g_mode == M_SIGN_OVERLONG)
		*siglen = given + 64;
	return rv;
}

static CK_RV
h_GenerateKeyPair(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_ATTRIBUTE_PTR pubt, CK_ULONG npub,
                  CK_ATTRIBUTE_PTR privt, CK_ULONG npriv, CK_OBJECT_HANDLE_PTR pub,
                  CK_OBJECT_HANDLE_PTR priv)
{
	CK_RV rv = g_real->C_GenerateKeyPair(s, m, pubt, npub, privt, npriv, pub, priv);

	if (rv == CKR_OK && pub != NULL && priv != NULL && g_mode == M_KEYGEN_SAME)
		*pub = *priv;
	return rv;
}

/* --- loading ------------------------------------------------------------------------ */

static CK_RV
load(void)
{
	const char *path = getenv("P11HOSTILE_MODULE"), *mode = getenv("P11HOSTILE_MODE");
	CK_C_GetFunctionList gfl;
	CK_RV rv;

	if (g_loaded)
		return CKR_OK;
	g_mode = M_COUNT;
	for (int i = 0; i < M_COUNT; i++)
		if (strcmp(mode ? mode : "none", mode_names[i]) == 0)
			g_mode = (enum mode)i;
	if (g_mode == M_COUNT) {
		fprintf(stderr, "p11hostile: unknown P11HOSTILE_MODE '%s'\n", mode);
		return CKR_GENERAL_ERROR;
	}
	if (path == NULL || (g_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "p11hostile: cannot load P11HOSTILE_MODULE '%s'\n", path ? path : "");
		return CKR_GENERAL_ERROR;
	}
	if ((gfl = (CK_C_GetFunctionList)dlsym(g_dl, "C_GetFunctionList")) == NULL ||
	    (rv = gfl(&g_real)) != CKR_OK || g_real == NULL) {
		fprintf(stderr, "p11hostile: '%s' gives no function list\n", path);
		return CKR_GENERAL_ERROR;
	}
	g_list = *g_real;
	g_list.C_Initialize = h_Initialize;
	g_list.C_GetAttributeValue = h_GetAttributeValue;
	g_list.C_FindObjects = h_FindObjects;
	g_list.C_FindObjectsFinal = h_FindObjectsFinal;
	g_list.C_GetSlotList = h_GetSlotList;
	g_list.C_Login = h_Login;
	g_list.C_GetTokenInfo = h_GetTokenInfo;
	g_list.C_GetSlotInfo = h_GetSlotInfo;
	g_list.C_GetInfo = h_GetInfo;
	g_list.C_GetMechanismList = h_GetMechanismList;
	g_list.C_GetMechanismInfo = h_GetMechanismInfo;
	g_list.C_SignInit = h_SignInit;
	g_list.C_Sign = h_Sign;
	g_list.C_GenerateKeyPair = h_GenerateKeyPair;
	g_list.C_GetFunctionList = C_GetFunctionList;
	g_loaded = 1;
	return CKR_OK;
}

CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
	CK_RV rv;

	if (out == NULL)
		return CKR_ARGUMENTS_BAD;
	pthread_mutex_lock(&g_lock);
	rv = load();
	pthread_mutex_unlock(&g_lock);
	if (rv == CKR_OK)
		*out = &g_list;
	return rv;
}
