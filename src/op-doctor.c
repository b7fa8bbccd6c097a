/* op-doctor.c: the doctor operation ('token doctor'): what is wrong with a token, and for a key,
 * whether a server could use it.  Module and token identity, the matched
 * profile (tokens/), PIN state, the mechanisms p11km needs, a test
 * signature verified against the key's public key and certificate, the
 * engine load test of 'bind check' (as the service user, with the token
 * store readability check), the token's clock and certificate expiry.
 * One advice line per problem; the report is at the end of this file. */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <p11-kit/p11-kit.h>

#include "p11km/bind.h"
#include "p11km/cert.h"
#include "p11km/json.h"
#include "p11km/keys.h"
#include "p11km/op.h"
#include "p11km/profile.h"
#include "p11km/sign.h"
#include "p11km/util.h"

/* What the doctor saw: name/value facts, in order, and the problems. */
struct exam {
	char *k[P11KM_DOCTOR_MAX_FACTS], *v[P11KM_DOCTOR_MAX_FACTS];
	size_t n;
	struct p11km_problems pr;
	char *refused[8];         /* the matched profile's refused mechanisms (names) */
	size_t n_refused;
};

static void
fact(struct exam *x, const char *k, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void
fact(struct exam *x, const char *k, const char *fmt, ...)
{
	va_list ap;
	char buf[1024];

	if (x->n >= P11KM_DOCTOR_MAX_FACTS)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	x->k[x->n] = strdup(k);
	x->v[x->n++] = strdup(buf);
}

static void
exam_release(struct exam *x)
{
	for (size_t i = 0; i < x->n; i++) {
		free(x->k[i]);
		free(x->v[i]);
	}
	for (size_t i = 0; i < x->n_refused; i++)
		free(x->refused[i]);
	p11km_problems_release(&x->pr);
}

/* What earlier runs learned by probing (p11km_learned): one fact a line. */
static void
check_learned(struct exam *x, const struct p11km_token *t)
{
	char *text = NULL, *save = NULL;

	if (p11km_learned_read(t, &text) < 0 || text == NULL) {
		p11km_error_clear();
		free(text);
		return;
	}
	for (char *l = strtok_r(text, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save))
		fact(x, "learned", "%s", l);
	free(text);
}

static void
check_profile(struct exam *x, const struct p11km_token *t, const char *module_file)
{
	struct p11km_profile *v = NULL;
	const struct p11km_profile *p;
	size_t n = 0;

	if (p11km_profiles_load(p11km_profiles_dir(), &v, &n) < 0) {
		p11km_problem_add(&x->pr, "the token profiles cannot be read "
		                  "(%s): reinstall p11km or set P11KM_TOKENS_DIR", p11km_errmsg(-1));
		p11km_error_clear();
		return;
	}
	p = p11km_profile_best(v, n, module_file, t->manufacturer, t->model);
	if (p == NULL) {
		fact(x, "profile", "none (an unknown token family: everything below is probed)");
	} else {
		const char *s;
		fact(x, "profile", "%s (%s%s)", p11km_profile_get(p, "name"),
		     p11km_profile_get(p, "description"),
		     strcmp(p11km_profile_get(p, "source"), "tested") == 0 ? "" :
		     "; from vendor documentation, not tested here");
		for (size_t i = 0; (s = p11km_profile_nth(p, "trap", i)) != NULL; i++)
			fact(x, "trap", "%s", s);
		for (size_t i = 0; (s = p11km_profile_nth(p, "refused-mechanism", i)) != NULL; i++) {
			fact(x, "refused", "%s", s);
			if (x->n_refused < 8)
				x->refused[x->n_refused++] = strndup(s, strcspn(s, " \t"));
		}
	}
	p11km_profiles_free(v, n);
	check_learned(x, t);
}

static void
check_pin(struct exam *x, const struct p11km_token *t)
{
	CK_FLAGS f = t->info.flags;

	if (!(f & CKF_TOKEN_INITIALIZED))
		p11km_problem_add(&x->pr, "token is not initialised: 'p11km token init' sets it up");
	else if ((f & CKF_LOGIN_REQUIRED) && !(f & CKF_USER_PIN_INITIALIZED))
		p11km_problem_add(&x->pr, "the user PIN is not set: 'p11km token pin init' (as the SO)");
	if (f & CKF_USER_PIN_LOCKED)
		p11km_problem_add(&x->pr, "the user PIN is locked: unblock it with the SO PIN or PUK "
		                  "('p11km token pin init'); p11km will not log in");
	else if (f & CKF_USER_PIN_FINAL_TRY)
		p11km_problem_add(&x->pr, "the user PIN has one try left: one more wrong PIN locks "
		                  "it; p11km refuses non-interactive logins (check the PIN file, then "
		                  "log in once with --pin-source prompt or --force)");
	else if (f & CKF_USER_PIN_COUNT_LOW)
		p11km_problem_add(&x->pr, "a wrong user PIN was given since the last good login: "
		                  "check the PIN files of the services that use this token");
	if (f & CKF_USER_PIN_TO_BE_CHANGED)
		p11km_problem_add(&x->pr, "the user PIN must be changed before use: 'p11km token pin change'");
	if (f & CKF_SO_PIN_LOCKED)
		p11km_problem_add(&x->pr, "the SO PIN is locked: the token cannot be re-initialised "
		                  "or have its user PIN reset");
	fact(x, "user PIN", "%s", (f & CKF_USER_PIN_LOCKED) ? "locked" :
	     (f & CKF_USER_PIN_FINAL_TRY) ? "one try left" :
	     (f & CKF_USER_PIN_COUNT_LOW) ? "a wrong PIN since the last good login" :
	     (f & CKF_PROTECTED_AUTHENTICATION_PATH) ? "PIN pad" : "no failed try reported");
}

static void
check_mechs(struct exam *x, struct p11km_token *t)
{
	struct p11km_caps caps;
	char *list;

	if (p11km_token_caps(t, &caps) < 0) {
		p11km_problem_add(&x->pr, "the mechanism list cannot be read (%s): check the module",
		                  p11km_errmsg(-1));
		p11km_error_clear();
		return;
	}
	list = p11km_caps_usable_list(&caps);
	fact(x, "key types", "%s", list && *list ? list : "none");
	if (list == NULL || *list == '\0')
		p11km_problem_add(&x->pr, "the token offers no key type p11km can generate and sign "
		                  "with (RSA PKCS#1, ECDSA or EdDSA): keys for requests must come from "
		                  "another tool");
	free(list);
}

/* The token's clock (CKF_CLOCK_ON_TOKEN) against this machine's. */
static void
check_clock(struct exam *x, const struct p11km_token *t)
{
	struct tm tm = { 0 };
	char buf[17];
	time_t now = time(NULL), tt;

	if (!(t->info.flags & CKF_CLOCK_ON_TOKEN)) {
		char ts[32];
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
		fact(x, "clock", "no clock on the token; this machine: %s", ts);
		return;
	}
	memcpy(buf, t->info.utcTime, 16);
	buf[16] = '\0';
	if (strptime(buf, "%Y%m%d%H%M%S", &tm) == NULL) {
		/* opencryptoki 3.8 sends "hh:mm:ss": nothing to set, nothing to compare */
		fact(x, "clock", "the token's clock reads '%s', not a time in the PKCS#11 form "
		     "(YYYYMMDDhhmmss): not compared with this machine's", p11km_esc(buf));
		return;
	}
	tt = timegm(&tm);
	fact(x, "clock", "token %s, %+ld s from this machine", buf, (long)(tt - now));
	if (tt - now > 300 || now - tt > 300)
		p11km_problem_add(&x->pr, "the token's clock is %ld s off this machine's: set the "
		                  "clock that is wrong (certificates are checked against it)",
		                  (long)(tt - now));
}

/* Every certificate on the token: expired, not yet valid, or due soon. */
static void
check_certs(struct exam *x, struct p11km_session *s)
{
	CK_OBJECT_CLASS cc = CKO_CERTIFICATE;
	CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cc, sizeof(cc) } };
	CK_OBJECT_HANDLE *h = NULL;
	size_t n = 0, bad = 0;

	if (p11km_find(s, tmpl, 1, 256, &h, &n) < 0) {
		p11km_error_clear();
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct p11km_object o;
		const unsigned char *p;
		X509 *c;
		if (p11km_object_read_as(s, h[i], CKO_CERTIFICATE, &o) < 0) {
			p11km_error_clear();
			continue;
		}
		p = o.value;
		c = o.value ? d2i_X509(NULL, &p, (long)o.value_len) : NULL;
		/* ykcs11's placeholder is not an issued certificate */
		if (c != NULL && !p11km_cert_is_placeholder(c)) {
			int days = 0, secs = 0;
			ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(c));
			const char *lbl = o.label ? o.label : "";
			if (days < 0 || secs < 0)
				p11km_problem_add(&x->pr, "certificate '%s' on the token expired %d days ago: "
				                  "renew it ('p11km req renew', then 'p11km cert install')",
				                  p11km_esc(lbl), -days), bad++;
			else if (X509_cmp_current_time(X509_get0_notBefore(c)) > 0)
				p11km_problem_add(&x->pr, "certificate '%s' on the token is not valid yet: "
				                  "check this machine's clock", p11km_esc(lbl)), bad++;
			else if (days < 30)
				p11km_problem_add(&x->pr, "certificate '%s' on the token expires in %d days: "
				                  "renew it now ('p11km req renew')", p11km_esc(lbl), days), bad++;
		}
		X509_free(c);
		p11km_object_release(&o);
	}
	fact(x, "certificates", "%zu on the token, %zu with a date problem", n, bad);
	free(h);
}

/* A mechanism the signer fell back from: a fact, and whether the profile
 * records it (its refused-mechanism lines begin with the mechanism). */
static void
note_fallback(struct exam *x, const struct p11km_signer *sg)
{
	const char *f = p11km_token_signer_fallback(sg);
	int recorded = 0;

	if (f == NULL)
		return;
	for (size_t i = 0; i < x->n_refused; i++)
		recorded |= x->refused[i] && strlen(x->refused[i]) == strcspn(f, " ") &&
		            strncmp(x->refused[i], f, strcspn(f, " ")) == 0;
	fact(x, "fallback", "%s; %s", f, recorded ? "the profile records it" :
	     "not in the token's profile (probed here)");
}

/* One test signature of msg with the key (pss: RSA-PSS), verified with its
 * public key.  0, or a problem added. */
static int
test_sign(struct exam *x, struct p11km_session *s, const struct p11km_object *key, EVP_PKEY *pub,
          const struct p11km_pinsrc *pin, int pss)
{
	static const unsigned char msg[] = "p11km token doctor: test message";
	struct p11km_signer *sg = NULL;
	EVP_MD_CTX *m = NULL;
	EVP_PKEY_CTX *pc = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0;
	int r;

	if ((r = p11km_token_signer_new(s, key, pub, NULL, pss, pin, &sg)) < 0 ||
	    (r = sg->sign(sg, msg, sizeof(msg), &sig, &siglen)) < 0) {
		p11km_problem_add(&x->pr, "the key cannot sign%s: %s", pss ? " RSA-PSS" : "",
		                  p11km_errmsg(r));
		p11km_error_clear();
		r = -1;
		goto out;
	}
	note_fallback(x, sg);
	if ((m = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit(m, &pc, sg->md, NULL, pub) != 1 ||
	    (pss && (EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PSS_PADDING) != 1 ||
	             EVP_PKEY_CTX_set_rsa_pss_saltlen(pc, RSA_PSS_SALTLEN_DIGEST) != 1)) ||
	    EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg)) != 1) {
		(void)p11km_openssl_error();
		p11km_problem_add(&x->pr, "a signature by the key does not verify with its public key "
		                  "(the public key object with its id belongs to another key): delete "
		                  "that public key object and import the right one");
		r = -1;
	} else {
		r = 0;
	}
out:
	EVP_MD_CTX_free(m);
	free(sig);
	p11km_signer_free(sg);
	return r;
}

/* Sign a test message with the key (and for an RSA key on a token that
 * lists RSA-PSS, an RSA-PSS one too: the mechanisms requests use), verify
 * it with its public key and with the certificate of the same id. */
static int
check_key(struct exam *x, struct p11km_session *s, const struct p11km_uri *kuri,
          const struct p11km_pinsrc *pin)
{
	struct p11km_object key, *certs = NULL;
	struct p11km_caps caps;
	EVP_PKEY *pub = NULL;
	size_t nc = 0;
	int r;

	memset(&key, 0, sizeof(key));
	if ((r = p11km_object_find_one(s, kuri, CKO_PRIVATE_KEY, &key)) < 0)
		return r;
	if ((r = p11km_key_pubkey(s, &key, &pub)) < 0) {
		p11km_problem_add(&x->pr, "the key cannot sign: %s", p11km_errmsg(r));
		p11km_error_clear();
		r = 0;
		goto out;
	}
	if (test_sign(x, s, &key, pub, pin, 0) == 0)
		fact(x, "test signature", "made by the key, verified with its public key");
	if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA && p11km_token_caps(s->tok, &caps) == 0 &&
	    (caps.sign & P11KM_SIGN_RSA_PSS) && test_sign(x, s, &key, pub, pin, 1) == 0)
		fact(x, "test signature", "RSA-PSS: made by the key, verified with its public key");
	p11km_error_clear();
	if (key.id_len > 0 && p11km_cert_objects_by_id(s, key.id, key.id_len, &certs, &nc) == 0) {
		for (size_t i = 0; i < nc; i++) {
			const unsigned char *p = certs[i].value;
			X509 *c = p ? d2i_X509(NULL, &p, (long)certs[i].value_len) : NULL;
			if (c != NULL && EVP_PKEY_eq(X509_get0_pubkey(c), pub) != 1)
				p11km_problem_add(&x->pr, "certificate '%s' has the key's id but not its "
				                  "public key: install the certificate issued for this key",
				                  p11km_esc(certs[i].label ? certs[i].label : ""));
			X509_free(c);
		}
	}
	p11km_error_clear();
	r = 0;
out:
	p11km_objects_free(certs, nc);
	EVP_PKEY_free(pub);
	p11km_object_release(&key);
	return r;
}

/* What 'bind check' does for a binding, for this key: resolve it as 'bind
 * emit' would (the reasons a server cannot use it), then the engine probe
 * with a throwaway openssl.cnf and certificate file, as user (the token store check too).  The
 * PIN is the one p11km's own login proved, in a 0600 file of a 0700
 * directory, removed at once. */
struct engine_job {
	char dir[64];
	char *cnf, *cert, *pin_path;
	char *pin;
	size_t pin_len;
	struct p11km_bind_params bp;
	int ready;
};

static void
engine_prepare(struct p11km_ctx *ctx, struct exam *x, const char *key_spec, const char *tok_uri,
               struct engine_job *j)
{
	const char *pin;
	size_t len;
	char *text;
	int r;

	memset(j, 0, sizeof(*j));
	snprintf(j->dir, sizeof(j->dir), "/tmp/p11km-doctor.XXXXXX");
	if (mkdtemp(j->dir) == NULL) {
		p11km_problem_add(&x->pr, "the engine test was not run: no temporary directory");
		j->dir[0] = '\0';
		return;
	}
	j->pin_path = p11km_asprintf("%s/pin", j->dir);
	j->cnf = p11km_asprintf("%s/openssl.cnf", j->dir);
	j->cert = p11km_asprintf("%s/cert.pem", j->dir);
	if (j->pin_path == NULL || j->cnf == NULL || j->cert == NULL)
		return;
	if ((r = p11km_bind_resolve(ctx, key_spec, NULL, j->pin_path, 0, &j->bp)) < 0) {
		p11km_problem_add(&x->pr, "no server can use this key yet (the engine test was not "
		                  "run): %s", p11km_errmsg(r));
		p11km_error_clear();
		return;
	}
	if (p11km_bind_engine_path(&j->bp.engine_path) < 0) {
		p11km_problem_add(&x->pr, "the engine test was not run: %s", p11km_errmsg(-1));
		p11km_error_clear();
		return;
	}
	if (p11km_pin_proved(ctx, tok_uri, &pin, &len) == 0) {
		j->pin = p11km_memdup(pin, len);
		j->pin_len = len;
	}
	p11km_error_clear();
	text = p11km_bind_openssl_cnf(j->bp.engine_path, j->bp.module_path);
	if (text == NULL || p11km_write_scratch(j->cnf, text, strlen(text), 0600) < 0 ||
	    p11km_write_scratch(j->cert, j->bp.cert_pem, j->bp.cert_pem_len, 0600) < 0 ||
	    (j->pin && p11km_write_scratch(j->pin_path, j->pin, j->pin_len, 0600) < 0)) {
		p11km_problem_add(&x->pr, "the engine test was not run: %s", p11km_errmsg(-1));
		p11km_error_clear();
		free(text);
		return;
	}
	free(text);
	j->ready = 1;
}

static int
engine_run(struct exam *x, const char *user, struct engine_job *j)
{
	struct p11km_engine_trial t;
	size_t n0 = x->pr.n;
	int r = 0;

	if (j->ready) {
		memset(&t, 0, sizeof(t));
		t.openssl_cnf = j->cnf;
		t.key = j->bp.key_uri;
		t.cert = j->cert;
		t.user = user;
		t.module_path = j->bp.module_path;
		t.pin = j->pin;
		t.pin_len = j->pin_len;
		if ((r = p11km_engine_try(&t, &x->pr)) == 0 && x->pr.n == n0)
			fact(x, "engine", "the libp11 engine loads the key and signs%s%s%s",
			     user ? " (and as user '" : "", user ? user : "", user ? "')" : "");
	}
	if (j->pin_path)
		unlink(j->pin_path);
	if (j->cnf)
		unlink(j->cnf);
	if (j->cert)
		unlink(j->cert);
	if (j->dir[0])
		rmdir(j->dir);
	free(j->pin_path);
	free(j->cnf);
	free(j->cert);
	p11km_freezero(j->pin, j->pin_len);
	p11km_bind_params_release(&j->bp);
	return r;
}

/* The facts and problems go to the result; x keeps nothing of them. */
static void
exam_hand_over(struct exam *x, struct p11km_doctor_result *res)
{
	for (size_t i = 0; i < x->n; i++) {
		res->name[i] = x->k[i];
		res->value[i] = x->v[i];
	}
	res->n = x->n;
	x->n = 0;
	res->pr = x->pr;
	memset(&x->pr, 0, sizeof(x->pr));
}

int
p11km_token_doctor(struct p11km_ctx *ctx, const struct p11km_doctor_opts *o,
                   struct p11km_doctor_result *res)
{
	struct p11km_uri *uri = NULL, *kuri = NULL;
	struct p11km_token *tok = NULL;
	struct p11km_session s;
	struct p11km_pinsrc pin;
	struct engine_job job;
	struct exam x;
	const char *key = o->key, *user = o->user, *tspec;
	char *modfile = NULL;
	int r, sopen = 0, engine = 0;

	memset(res, 0, sizeof(*res));
	memset(&x, 0, sizeof(x));
	memset(&pin, 0, sizeof(pin));
	memset(&job, 0, sizeof(job));
	if (user != NULL && key == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "--service-user needs --key: the engine test "
		                  "loads that key as the user would");
	tspec = o->uri ? o->uri : key;
	if ((tspec && (r = p11km_uri_parse(tspec, &uri)) < 0) ||
	    (key && (r = p11km_uri_parse(key, &kuri)) < 0))
		goto out;
	if ((r = p11km_modules_load(ctx, uri)) < 0 ||
	    (r = uri ? p11km_token_find_one(ctx, uri, &tok)
	             : p11km_token_find_initialised(ctx, NULL, &tok)) < 0)
		goto out;
	if (kuri && !p11km_uri_match_token(kuri, NULL, NULL, &tok->info)) {
		r = p11km_fail(P11KM_ERR_USAGE, "--key names another token than '%s'", tok->label);
		goto out;
	}
	modfile = p11_kit_module_get_filename(tok->f);
	snprintf(res->token_label, sizeof(res->token_label), "%s", tok->label);
	fact(&x, "token", "%s", tok->uri);
	fact(&x, "module", "%s (%s)", tok->mod->name, modfile ? modfile : "?");
	fact(&x, "identity", "manufacturer '%s', model '%s', serial '%s', firmware %u.%u",
	     tok->manufacturer, tok->model, tok->serial, tok->info.firmwareVersion.major,
	     tok->info.firmwareVersion.minor);
	check_profile(&x, tok, modfile);
	check_pin(&x, tok);
	check_mechs(&x, tok);
	check_clock(&x, tok);
	if (!(tok->info.flags & CKF_TOKEN_INITIALIZED))
		goto done;
	if ((r = p11km_pinsrc_for(ctx, kuri ? kuri : uri, CKU_USER, &pin)) < 0)
		goto out;
	if (kuri && pin.spec == NULL && !(tok->info.flags & CKF_PROTECTED_AUTHENTICATION_PATH)) {
		r = p11km_fail(P11KM_ERR_USAGE, "--key needs the token's PIN: give --pin-source");
		goto out;
	}
	if ((r = p11km_session_open_login(ctx, tok, kuri ? kuri : uri, 0, kuri != NULL, &s)) < 0) {
		if (r == P11KM_ERR_NOMEM || r == P11KM_ERR_USAGE)
			goto out;
		p11km_problem_add(&x.pr, "p11km cannot log in: %s", p11km_errmsg(r));
		p11km_error_clear();
		goto done;
	}
	sopen = 1;
	fact(&x, "login", "%s", s.logged_in == CKU_USER ? "the PIN was accepted" : "not logged in "
	     "(no PIN source: public objects only)");
	check_certs(&x, &s);
	if (kuri != NULL) {
		if ((r = check_key(&x, &s, kuri, &pin)) < 0)
			goto out;
		engine_prepare(ctx, &x, key, tok->uri, &job);
		engine = 1;
	}
	p11km_session_close(&s);
	sopen = 0;
	/* the probe starts as a server does: this process holds no session */
	p11km_token_free(tok);
	tok = NULL;
	p11km_ctx_release(ctx);
	if (engine && (r = engine_run(&x, user, &job)) < 0) {
		engine = 0;
		goto out;
	}
	engine = 0;
done:
	exam_hand_over(&x, res);
	r = 0;
out:
	if (sopen)
		p11km_session_close(&s);
	if (engine) {
		job.ready = 0; /* only clean up */
		engine_run(&x, NULL, &job);
	}
	free(modfile);
	p11km_pinsrc_release(&pin);
	p11km_token_free(tok);
	p11km_uri_free(uri);
	p11km_uri_free(kuri);
	exam_release(&x);
	if (r < 0)
		memset(res, 0, sizeof(*res));
	return r;
}

void
p11km_doctor_print(FILE *fp, int json, const struct p11km_doctor_result *x)
{
	if (json) {
		struct p11km_json j;
		p11km_json_init(&j, fp);
		p11km_json_object_begin(&j);
		p11km_json_key(&j, "facts");
		p11km_json_array_begin(&j);
		for (size_t i = 0; i < x->n; i++) {
			p11km_json_object_begin(&j);
			p11km_json_kv_string(&j, "name", x->name[i]);
			p11km_json_kv_string(&j, "value", x->value[i]);
			p11km_json_object_end(&j);
		}
		p11km_json_array_end(&j);
		p11km_json_key(&j, "problems");
		p11km_json_array_begin(&j);
		for (size_t i = 0; i < x->pr.n; i++)
			p11km_json_string(&j, x->pr.lines[i]);
		p11km_json_array_end(&j);
		p11km_json_kv_bool(&j, "ok", x->pr.n == 0);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
		return;
	}
	for (size_t i = 0; i < x->n; i++)
		fprintf(fp, "%-15s %s\n", x->name[i], p11km_esc(x->value[i]));
	for (size_t i = 0; i < x->pr.n; i++)
		fprintf(fp, "problem:        %s\n", p11km_esc(x->pr.lines[i]));
	if (x->pr.n == 0)
		fprintf(fp, "no problem found\n");
}


void
p11km_doctor_result_release(struct p11km_doctor_result *res)
{
	for (size_t i = 0; i < res->n; i++) {
		free(res->name[i]);
		free(res->value[i]);
	}
	p11km_problems_release(&res->pr);
	memset(res, 0, sizeof(*res));
}

int
p11km_doctor_verdict(const struct p11km_doctor_result *res)
{
	size_t n = res->pr.n;

	return n == 0 ? 0 : p11km_fail(P11KM_ERR_VERIFY, "%zu problem%s found on token '%s': fix "
	                               "%s and run 'p11km token doctor' again", n,
	                               n == 1 ? "" : "s", res->token_label, n == 1 ? "it" : "them");
}
