/*
 * p11shim.c - a test-only PKCS#11 module that wraps a real PKCS#11 module.
 *
 * It forwards every function of the v2.40 CK_FUNCTION_LIST to the module
 * named by P11SHIM_MODULE, counts calls per function, and can add latency,
 * inject faults and override token flags.  See tests/shim/README.md for the
 * environment interface.  Arguments are never logged (no PIN bytes leak).
 *
 * Build:
 *   gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter \
 *       -fPIC -shared $(pkg-config --cflags p11-kit-1) \
 *       -o p11shim.so p11shim.c -ldl -lpthread
 */
#include <p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * The v2.40 function list, in CK_FUNCTION_LIST member order.
 * X = generic forwarding wrapper, S = hand-written special wrapper.
 * Columns: name, parameter list, argument list.
 */
#define P11SHIM_FUNCS(X, S)                                                   \
  S(C_Initialize, (CK_VOID_PTR a), (a))                                       \
  S(C_Finalize, (CK_VOID_PTR a), (a))                                         \
  X(C_GetInfo, (CK_INFO_PTR a), (a))                                          \
  S(C_GetFunctionList, (CK_FUNCTION_LIST_PTR_PTR a), (a))                     \
  X(C_GetSlotList, (CK_BBOOL a, CK_SLOT_ID_PTR b, CK_ULONG_PTR c), (a, b, c)) \
  X(C_GetSlotInfo, (CK_SLOT_ID a, CK_SLOT_INFO_PTR b), (a, b))                \
  S(C_GetTokenInfo, (CK_SLOT_ID a, CK_TOKEN_INFO_PTR b), (a, b))              \
  X(C_GetMechanismList, (CK_SLOT_ID a, CK_MECHANISM_TYPE_PTR b,               \
                         CK_ULONG_PTR c), (a, b, c))                          \
  X(C_GetMechanismInfo, (CK_SLOT_ID a, CK_MECHANISM_TYPE b,                   \
                         CK_MECHANISM_INFO_PTR c), (a, b, c))                 \
  X(C_InitToken, (CK_SLOT_ID a, CK_UTF8CHAR_PTR b, CK_ULONG c,                \
                  CK_UTF8CHAR_PTR d), (a, b, c, d))                           \
  X(C_InitPIN, (CK_SESSION_HANDLE a, CK_UTF8CHAR_PTR b, CK_ULONG c),          \
    (a, b, c))                                                                \
  X(C_SetPIN, (CK_SESSION_HANDLE a, CK_UTF8CHAR_PTR b, CK_ULONG c,            \
               CK_UTF8CHAR_PTR d, CK_ULONG e), (a, b, c, d, e))               \
  X(C_OpenSession, (CK_SLOT_ID a, CK_FLAGS b, CK_VOID_PTR c, CK_NOTIFY d,     \
                    CK_SESSION_HANDLE_PTR e), (a, b, c, d, e))                \
  X(C_CloseSession, (CK_SESSION_HANDLE a), (a))                               \
  X(C_CloseAllSessions, (CK_SLOT_ID a), (a))                                  \
  X(C_GetSessionInfo, (CK_SESSION_HANDLE a, CK_SESSION_INFO_PTR b), (a, b))   \
  X(C_GetOperationState, (CK_SESSION_HANDLE a, CK_BYTE_PTR b,                 \
                          CK_ULONG_PTR c), (a, b, c))                         \
  X(C_SetOperationState, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,     \
                          CK_OBJECT_HANDLE d, CK_OBJECT_HANDLE e),            \
    (a, b, c, d, e))                                                          \
  X(C_Login, (CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_UTF8CHAR_PTR c,         \
              CK_ULONG d), (a, b, c, d))                                      \
  X(C_Logout, (CK_SESSION_HANDLE a), (a))                                     \
  X(C_CreateObject, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c,     \
                     CK_OBJECT_HANDLE_PTR d), (a, b, c, d))                   \
  X(C_CopyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b,                   \
                   CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e),   \
    (a, b, c, d, e))                                                          \
  X(C_DestroyObject, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b))       \
  X(C_GetObjectSize, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b,                \
                      CK_ULONG_PTR c), (a, b, c))                             \
  X(C_GetAttributeValue, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b,            \
                          CK_ATTRIBUTE_PTR c, CK_ULONG d), (a, b, c, d))      \
  X(C_SetAttributeValue, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b,            \
                          CK_ATTRIBUTE_PTR c, CK_ULONG d), (a, b, c, d))      \
  X(C_FindObjectsInit, (CK_SESSION_HANDLE a, CK_ATTRIBUTE_PTR b, CK_ULONG c), \
    (a, b, c))                                                                \
  X(C_FindObjects, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE_PTR b, CK_ULONG c,  \
                    CK_ULONG_PTR d), (a, b, c, d))                            \
  X(C_FindObjectsFinal, (CK_SESSION_HANDLE a), (a))                           \
  X(C_EncryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,                  \
                    CK_OBJECT_HANDLE c), (a, b, c))                           \
  X(C_Encrypt, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,               \
                CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))              \
  X(C_EncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,         \
                      CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))        \
  X(C_EncryptFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c),     \
    (a, b, c))                                                                \
  X(C_DecryptInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,                  \
                    CK_OBJECT_HANDLE c), (a, b, c))                           \
  X(C_Decrypt, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,               \
                CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))              \
  X(C_DecryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,         \
                      CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))        \
  X(C_DecryptFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c),     \
    (a, b, c))                                                                \
  X(C_DigestInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b), (a, b))          \
  X(C_Digest, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,                \
               CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))               \
  X(C_DigestUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c),         \
    (a, b, c))                                                                \
  X(C_DigestKey, (CK_SESSION_HANDLE a, CK_OBJECT_HANDLE b), (a, b))           \
  X(C_DigestFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c),      \
    (a, b, c))                                                                \
  X(C_SignInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,                     \
                 CK_OBJECT_HANDLE c), (a, b, c))                              \
  X(C_Sign, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c, CK_BYTE_PTR d,   \
             CK_ULONG_PTR e), (a, b, c, d, e))                                \
  X(C_SignUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c),           \
    (a, b, c))                                                                \
  X(C_SignFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c),        \
    (a, b, c))                                                                \
  X(C_SignRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,              \
                        CK_OBJECT_HANDLE c), (a, b, c))                       \
  X(C_SignRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,           \
                    CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))          \
  X(C_VerifyInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,                   \
                   CK_OBJECT_HANDLE c), (a, b, c))                            \
  X(C_Verify, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,                \
               CK_BYTE_PTR d, CK_ULONG e), (a, b, c, d, e))                   \
  X(C_VerifyUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c),         \
    (a, b, c))                                                                \
  X(C_VerifyFinal, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c),          \
    (a, b, c))                                                                \
  X(C_VerifyRecoverInit, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,            \
                          CK_OBJECT_HANDLE c), (a, b, c))                     \
  X(C_VerifyRecover, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,         \
                      CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))        \
  X(C_DigestEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,   \
                            CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))  \
  X(C_DecryptDigestUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,   \
                            CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))  \
  X(C_SignEncryptUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,     \
                          CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))    \
  X(C_DecryptVerifyUpdate, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,   \
                            CK_BYTE_PTR d, CK_ULONG_PTR e), (a, b, c, d, e))  \
  X(C_GenerateKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,                  \
                    CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_OBJECT_HANDLE_PTR e),  \
    (a, b, c, d, e))                                                          \
  X(C_GenerateKeyPair, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,              \
                        CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_ATTRIBUTE_PTR e,   \
                        CK_ULONG f, CK_OBJECT_HANDLE_PTR g,                   \
                        CK_OBJECT_HANDLE_PTR h), (a, b, c, d, e, f, g, h))    \
  X(C_WrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c,  \
                CK_OBJECT_HANDLE d, CK_BYTE_PTR e, CK_ULONG_PTR f),           \
    (a, b, c, d, e, f))                                                       \
  X(C_UnwrapKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,                    \
                  CK_OBJECT_HANDLE c, CK_BYTE_PTR d, CK_ULONG e,              \
                  CK_ATTRIBUTE_PTR f, CK_ULONG g, CK_OBJECT_HANDLE_PTR h),    \
    (a, b, c, d, e, f, g, h))                                                 \
  X(C_DeriveKey, (CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,                    \
                  CK_OBJECT_HANDLE c, CK_ATTRIBUTE_PTR d, CK_ULONG e,         \
                  CK_OBJECT_HANDLE_PTR f), (a, b, c, d, e, f))                \
  X(C_SeedRandom, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c),           \
    (a, b, c))                                                                \
  X(C_GenerateRandom, (CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c),       \
    (a, b, c))                                                                \
  X(C_GetFunctionStatus, (CK_SESSION_HANDLE a), (a))                          \
  X(C_CancelFunction, (CK_SESSION_HANDLE a), (a))                             \
  X(C_WaitForSlotEvent, (CK_FLAGS a, CK_SLOT_ID_PTR b, CK_VOID_PTR c),        \
    (a, b, c))

#define P11SHIM_IDX(n, p, a) IDX_##n,
enum { P11SHIM_FUNCS(P11SHIM_IDX, P11SHIM_IDX) IDX_COUNT };

#define P11SHIM_NAME(n, p, a) #n,
static const char *const g_names[IDX_COUNT] = {
    P11SHIM_FUNCS(P11SHIM_NAME, P11SHIM_NAME)};

#define P11SHIM_DECL(n, p, a) static CK_RV shim_##n p;
P11SHIM_FUNCS(P11SHIM_DECL, P11SHIM_DECL)

#define P11SHIM_INIT(n, p, a) .n = shim_##n,
static CK_FUNCTION_LIST g_list = {
    .version = {2, 40},
    P11SHIM_FUNCS(P11SHIM_INIT, P11SHIM_INIT)};

/* Every member of CK_FUNCTION_LIST is covered by the X-macro list. */
_Static_assert(sizeof(CK_FUNCTION_LIST) ==
                   offsetof(CK_FUNCTION_LIST, C_Initialize) +
                       IDX_COUNT * sizeof(CK_C_Initialize),
               "P11SHIM_FUNCS does not cover CK_FUNCTION_LIST");

/* ------------------------------------------------------------------ */
/* Configuration (read once from the environment).                    */

static const struct {
  const char *name;
  CK_RV rv;
} g_rvs[] = {
#define R(n) {#n, n}
    R(CKR_OK), R(CKR_CANCEL), R(CKR_HOST_MEMORY), R(CKR_SLOT_ID_INVALID),
    R(CKR_GENERAL_ERROR), R(CKR_FUNCTION_FAILED), R(CKR_ARGUMENTS_BAD),
    R(CKR_ATTRIBUTE_VALUE_INVALID), R(CKR_DATA_INVALID), R(CKR_DEVICE_ERROR),
    R(CKR_DEVICE_MEMORY), R(CKR_DEVICE_REMOVED), R(CKR_FUNCTION_CANCELED),
    R(CKR_FUNCTION_NOT_SUPPORTED), R(CKR_KEY_HANDLE_INVALID),
    R(CKR_MECHANISM_INVALID), R(CKR_OBJECT_HANDLE_INVALID),
    R(CKR_OPERATION_ACTIVE), R(CKR_OPERATION_NOT_INITIALIZED),
    R(CKR_PIN_INCORRECT), R(CKR_PIN_INVALID), R(CKR_PIN_LEN_RANGE),
    R(CKR_PIN_EXPIRED), R(CKR_PIN_LOCKED), R(CKR_SESSION_CLOSED),
    R(CKR_SESSION_COUNT), R(CKR_SESSION_HANDLE_INVALID),
    R(CKR_SESSION_READ_ONLY), R(CKR_SIGNATURE_INVALID),
    R(CKR_TEMPLATE_INCOMPLETE), R(CKR_TOKEN_NOT_PRESENT),
    R(CKR_TOKEN_NOT_RECOGNIZED), R(CKR_TOKEN_WRITE_PROTECTED),
    R(CKR_USER_ALREADY_LOGGED_IN), R(CKR_USER_NOT_LOGGED_IN),
    R(CKR_USER_PIN_NOT_INITIALIZED), R(CKR_USER_TYPE_INVALID),
    R(CKR_BUFFER_TOO_SMALL), R(CKR_CRYPTOKI_NOT_INITIALIZED),
    R(CKR_CRYPTOKI_ALREADY_INITIALIZED),
#undef R
};

static struct {
  unsigned long fail_at;   /* 0 = fault injection off */
  int fail_func;           /* -1 = count all calls (except GetFunctionList) */
  CK_RV fail_rv;
  int fail_after, fail_sticky;
  int count_every; /* write the count file after every call */
  unsigned long latency_us;
  CK_FLAGS flags_set, flags_clear;
} g_cfg;

static int env_ulong(const char *var, unsigned long *out) {
  const char *s = getenv(var);
  char *end;
  if (!s || !*s)
    return 0;
  errno = 0;
  unsigned long v = strtoul(s, &end, 0);
  if (errno || *end) {
    fprintf(stderr, "p11shim: ignoring invalid %s\n", var);
    return 0;
  }
  *out = v;
  return 1;
}

static const struct {
  const char *name;
  CK_FLAGS flag;
} g_flags[] = {
#define F(n) {#n, n}
    F(CKF_RNG), F(CKF_WRITE_PROTECTED), F(CKF_LOGIN_REQUIRED),
    F(CKF_USER_PIN_INITIALIZED), F(CKF_RESTORE_KEY_NOT_NEEDED),
    F(CKF_CLOCK_ON_TOKEN), F(CKF_PROTECTED_AUTHENTICATION_PATH),
    F(CKF_DUAL_CRYPTO_OPERATIONS), F(CKF_TOKEN_INITIALIZED),
    F(CKF_SECONDARY_AUTHENTICATION), F(CKF_USER_PIN_COUNT_LOW),
    F(CKF_USER_PIN_FINAL_TRY), F(CKF_USER_PIN_LOCKED),
    F(CKF_USER_PIN_TO_BE_CHANGED), F(CKF_SO_PIN_COUNT_LOW),
    F(CKF_SO_PIN_FINAL_TRY), F(CKF_SO_PIN_LOCKED), F(CKF_SO_PIN_TO_BE_CHANGED),
#undef F
};

/* Token flags: 0xHEX, or CKF_ names / numbers joined by '|', ',' or ' '. */
static void env_flags(const char *var, CK_FLAGS *out) {
  const char *s = getenv(var);
  char buf[512], *tok, *save = NULL, *end;
  CK_FLAGS v = 0;
  if (!s || !*s)
    return;
  if (strlen(s) >= sizeof buf)
    goto bad;
  strcpy(buf, s);
  for (tok = strtok_r(buf, "|, ", &save); tok;
       tok = strtok_r(NULL, "|, ", &save)) {
    size_t i, n = sizeof g_flags / sizeof g_flags[0];
    for (i = 0; i < n && strcmp(tok, g_flags[i].name) != 0; i++)
      ;
    if (i < n) {
      v |= g_flags[i].flag;
      continue;
    }
    errno = 0;
    unsigned long x = strtoul(tok, &end, 0);
    if (errno || *end || tok[0] < '0' || tok[0] > '9')
      goto bad;
    v |= x;
  }
  *out = v;
  return;
bad:
  fprintf(stderr, "p11shim: ignoring invalid %s\n", var);
}

static void load_config(void) {
  const char *s;
  memset(&g_cfg, 0, sizeof g_cfg);
  g_cfg.fail_func = -1;
  g_cfg.fail_rv = CKR_DEVICE_ERROR;
  env_ulong("P11SHIM_FAIL_AT", &g_cfg.fail_at);
  env_ulong("P11SHIM_LATENCY_US", &g_cfg.latency_us);
  env_flags("P11SHIM_TOKEN_FLAGS_SET", &g_cfg.flags_set);
  env_flags("P11SHIM_TOKEN_FLAGS_CLEAR", &g_cfg.flags_clear);
  s = getenv("P11SHIM_FAIL_AFTER");
  g_cfg.fail_after = s && *s && strcmp(s, "0") != 0;
  s = getenv("P11SHIM_FAIL_STICKY");
  g_cfg.fail_sticky = s && *s && strcmp(s, "0") != 0;
  s = getenv("P11SHIM_COUNT_EVERY");
  g_cfg.count_every = s && *s && strcmp(s, "0") != 0;

  if ((s = getenv("P11SHIM_FAIL_RV")) && *s) {
    size_t i, n = sizeof g_rvs / sizeof g_rvs[0];
    char *end;
    for (i = 0; i < n && strcmp(s, g_rvs[i].name) != 0; i++)
      ;
    if (i < n) {
      g_cfg.fail_rv = g_rvs[i].rv;
    } else {
      errno = 0;
      unsigned long v = strtoul(s, &end, 0); /* 0xHEX (or decimal) */
      if (s[0] >= '0' && s[0] <= '9' && !errno && !*end) {
        g_cfg.fail_rv = v;
      } else {
        fprintf(stderr, "p11shim: unknown P11SHIM_FAIL_RV '%s', using "
                        "CKR_GENERAL_ERROR\n", s);
        g_cfg.fail_rv = CKR_GENERAL_ERROR;
      }
    }
  }
  if ((s = getenv("P11SHIM_FAIL_FUNC")) && *s) {
    for (int i = 0; i < IDX_COUNT; i++)
      if (strcmp(s, g_names[i]) == 0)
        g_cfg.fail_func = i;
    if (g_cfg.fail_func < 0) {
      fprintf(stderr, "p11shim: unknown P11SHIM_FAIL_FUNC '%s', fault "
                      "injection disabled\n", s);
      g_cfg.fail_at = 0;
    }
  }
}

/* ------------------------------------------------------------------ */
/* State.  Everything below is protected by g_mu.                      */

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t g_cfg_once = PTHREAD_ONCE_INIT;
static unsigned long g_counts[IDX_COUNT];
static unsigned long g_seq;   /* calls except C_GetFunctionList */
static int g_dirty, g_tripped, g_atfork_done;
static void *g_dl;
static CK_FUNCTION_LIST_PTR g_real;
static int g_real_initialized;
static char g_load_err[512];

enum { ACT_FORWARD, ACT_FAIL, ACT_FAIL_AFTER };

static void atfork_child(void) {
  /* A forked child only rewrites the count file if it makes calls itself. */
  pthread_mutex_init(&g_mu, NULL);
  g_dirty = 0;
}

/* Load the real module if not loaded yet.  Caller holds g_mu. */
static void load_real_locked(void) {
  const char *path = getenv("P11SHIM_MODULE");
  CK_C_GetFunctionList gfl;
  CK_FUNCTION_LIST_PTR list = NULL;
  CK_RV rv;

  if (g_real)
    return;
  if (!path || !*path) {
    snprintf(g_load_err, sizeof g_load_err, "P11SHIM_MODULE is not set");
    return;
  }
  if (!g_dl && !(g_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL))) {
    const char *e = dlerror();
    snprintf(g_load_err, sizeof g_load_err, "cannot load %s: %s", path,
             e ? e : "unknown error");
    return;
  }
  gfl = (CK_C_GetFunctionList)dlsym(g_dl, "C_GetFunctionList");
  if (!gfl) {
    snprintf(g_load_err, sizeof g_load_err, "%s has no C_GetFunctionList",
             path);
  } else if ((rv = gfl(&list)) != CKR_OK || !list) {
    snprintf(g_load_err, sizeof g_load_err,
             "C_GetFunctionList of %s failed (0x%lx)", path, rv);
  } else {
    g_real = list;
    g_load_err[0] = '\0';
    return;
  }
  dlclose(g_dl);
  g_dl = NULL;
}

static void unload_real_locked(void) {
  g_real = NULL;
  g_real_initialized = 0;
  if (g_dl)
    dlclose(g_dl);
  g_dl = NULL;
}

static void write_counts_locked(void) {
  const char *path = getenv("P11SHIM_COUNT_FILE");
  char tmp[PATH_MAX + 8];
  unsigned long total = 0;
  FILE *fp;
  int ok;

  g_dirty = 0;
  if (!path || !*path)
    return;
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
    fprintf(stderr, "p11shim: P11SHIM_COUNT_FILE path too long\n");
    return;
  }
  if (!(fp = fopen(tmp, "w"))) {
    fprintf(stderr, "p11shim: cannot write %s: %s\n", tmp, strerror(errno));
    return;
  }
  for (int i = 0; i < IDX_COUNT; i++) {
    if (g_counts[i]) {
      fprintf(fp, "%s %lu\n", g_names[i], g_counts[i]);
      total += g_counts[i];
    }
  }
  fprintf(fp, "total %lu\n", total);
  ok = !ferror(fp);
  ok = (fclose(fp) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    fprintf(stderr, "p11shim: cannot write %s: %s\n", path, strerror(errno));
    remove(tmp);
  }
}

__attribute__((destructor)) static void shim_fini(void) {
  pthread_mutex_lock(&g_mu);
  if (g_dirty)
    write_counts_locked();
  /* Loaded (e.g. by C_GetFunctionList) but never initialized: unload. */
  if (g_dl && !g_real_initialized)
    unload_real_locked();
  pthread_mutex_unlock(&g_mu);
}

/*
 * Count the call and decide whether to inject a fault.  Returns the real
 * function list (or NULL if not loaded); *act and *frv receive the decision.
 */
static CK_FUNCTION_LIST_PTR shim_enter(int idx, int *act, CK_RV *frv) {
  CK_FUNCTION_LIST_PTR real;
  int trigger = 0;

  pthread_once(&g_cfg_once, load_config);
  pthread_mutex_lock(&g_mu);
  if (!g_atfork_done) {
    pthread_atfork(NULL, NULL, atfork_child);
    g_atfork_done = 1;
  }
  g_counts[idx]++;
  g_dirty = 1;
  if (idx != IDX_C_GetFunctionList)
    g_seq++;
  if (idx == IDX_C_GetFunctionList || idx == IDX_C_Initialize)
    load_real_locked();

  *act = ACT_FORWARD;
  *frv = g_cfg.fail_rv;
  if (g_cfg.fail_at) {
    if (g_cfg.fail_func >= 0)
      trigger = idx == g_cfg.fail_func && g_counts[idx] == g_cfg.fail_at;
    else
      trigger = idx != IDX_C_GetFunctionList && g_seq == g_cfg.fail_at;
    if (trigger) {
      g_tripped = 1;
      *act = g_cfg.fail_after ? ACT_FAIL_AFTER : ACT_FAIL;
    } else if (g_tripped && g_cfg.fail_sticky &&
               idx != IDX_C_GetFunctionList) {
      *act = g_cfg.fail_after ? ACT_FAIL_AFTER : ACT_FAIL;
    }
    /* Sticky mode: C_Finalize always reaches the real module. */
    if (g_cfg.fail_sticky && idx == IDX_C_Finalize)
      *act = ACT_FORWARD;
  }
  if (g_cfg.count_every)
    write_counts_locked(); /* a process that ends with _exit() is counted too */
  real = g_real;
  pthread_mutex_unlock(&g_mu);
  return real;
}

static void shim_latency(void) {
  unsigned long us = g_cfg.latency_us;
  struct timespec ts, rem;
  if (!us)
    return;
  ts.tv_sec = (time_t)(us / 1000000UL);
  ts.tv_nsec = (long)(us % 1000000UL) * 1000L;
  while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
    ts = rem;
}

/* ------------------------------------------------------------------ */
/* Wrappers.                                                          */

/* Locals end in '_' so they cannot clash with the parameters a..h. */
#define P11SHIM_GEN(n, p, a)                                                  \
  static CK_RV shim_##n p {                                                   \
    int act_;                                                                 \
    CK_RV frv_, rv_;                                                          \
    CK_FUNCTION_LIST_PTR fl_ = shim_enter(IDX_##n, &act_, &frv_);             \
    if (act_ == ACT_FAIL)                                                     \
      return frv_;                                                            \
    if (!fl_)                                                                 \
      return CKR_CRYPTOKI_NOT_INITIALIZED;                                    \
    if (!fl_->n)                                                              \
      return CKR_FUNCTION_NOT_SUPPORTED;                                      \
    shim_latency();                                                           \
    rv_ = fl_->n a;                                                           \
    return act_ == ACT_FAIL_AFTER ? frv_ : rv_;                               \
  }
#define P11SHIM_SKIP(n, p, a)
P11SHIM_FUNCS(P11SHIM_GEN, P11SHIM_SKIP)

static CK_RV shim_C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR a) {
  int act;
  CK_RV frv;
  shim_enter(IDX_C_GetFunctionList, &act, &frv);
  if (act == ACT_FAIL)
    return frv;
  if (!a)
    return CKR_ARGUMENTS_BAD;
  *a = &g_list;
  return act == ACT_FAIL_AFTER ? frv : CKR_OK;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR a) {
  return shim_C_GetFunctionList(a);
}

static CK_RV shim_C_Initialize(CK_VOID_PTR a) {
  int act;
  CK_RV frv, rv;
  CK_FUNCTION_LIST_PTR f = shim_enter(IDX_C_Initialize, &act, &frv);
  if (!f) {
    pthread_mutex_lock(&g_mu);
    fprintf(stderr, "p11shim: %s\n", g_load_err);
    pthread_mutex_unlock(&g_mu);
    return CKR_GENERAL_ERROR;
  }
  if (act == ACT_FAIL)
    return frv;
  shim_latency();
  /* P11SHIM_INIT_RESERVED: the module's init string (as p11-kit's
   * x-init-reserved), e.g. "paths=DIR" for p11-kit-trust.so. */
  const char *reserved = getenv("P11SHIM_INIT_RESERVED");
  CK_C_INITIALIZE_ARGS args = { 0 };
  if (reserved && *reserved) {
    if (a)
      args = *(CK_C_INITIALIZE_ARGS *)a;
    else
      args.flags = CKF_OS_LOCKING_OK;
    args.pReserved = (CK_VOID_PTR)reserved;
    a = &args;
  }
  rv = f->C_Initialize(a);
  if (rv == CKR_OK) {
    pthread_mutex_lock(&g_mu);
    g_real_initialized = 1;
    pthread_mutex_unlock(&g_mu);
  }
  return act == ACT_FAIL_AFTER ? frv : rv;
}

static CK_RV shim_C_Finalize(CK_VOID_PTR a) {
  int act;
  CK_RV frv, rv;
  CK_FUNCTION_LIST_PTR f = shim_enter(IDX_C_Finalize, &act, &frv);
  if (act == ACT_FAIL)
    rv = frv;
  else if (!f)
    rv = CKR_CRYPTOKI_NOT_INITIALIZED;
  else {
    shim_latency();
    rv = f->C_Finalize(a);
  }
  pthread_mutex_lock(&g_mu);
  if (act != ACT_FAIL && f && rv == CKR_OK && f == g_real)
    unload_real_locked();
  write_counts_locked();
  pthread_mutex_unlock(&g_mu);
  return act == ACT_FAIL_AFTER ? frv : rv;
}

static CK_RV shim_C_GetTokenInfo(CK_SLOT_ID a, CK_TOKEN_INFO_PTR b) {
  int act;
  CK_RV frv, rv;
  CK_FUNCTION_LIST_PTR f = shim_enter(IDX_C_GetTokenInfo, &act, &frv);
  if (act == ACT_FAIL)
    return frv;
  if (!f)
    return CKR_CRYPTOKI_NOT_INITIALIZED;
  shim_latency();
  rv = f->C_GetTokenInfo(a, b);
  if (rv == CKR_OK && b)
    b->flags = (b->flags & ~g_cfg.flags_clear) | g_cfg.flags_set;
  return act == ACT_FAIL_AFTER ? frv : rv;
}
