/* bind-check.c: check a binding the way the server will load it: through the
 * libp11 engine, with the emitted openssl.cnf, in a fresh process (the
 * engine probe), then as the service user after a fork.  The ENGINE API is deprecated in OpenSSL 3 but it is what the
 * servers on Debian 12 use, so this file (and only this one) uses it. */
#define OPENSSL_API_COMPAT 10101
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/conf.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/ui.h>
#include <openssl/x509.h>

#include "p11km/bind.h"
#include "p11km/util.h"

/* Seconds a check may take before it counts as hung (the fork trap can hang). */
#define TRIAL_TIMEOUT 20

/* --- token stores that a module reads, per module ------------------------- */

static char *
softhsm_store(char **config)
{
	const char *conf = getenv("SOFTHSM2_CONF");
	char line[1024], *dir = NULL;
	FILE *fp;

	if (conf == NULL)
		conf = "/etc/softhsm/softhsm2.conf";
	*config = strdup(conf);
	if ((fp = fopen(conf, "r")) == NULL)
		return NULL;
	while (dir == NULL && fgets(line, sizeof(line), fp) != NULL) {
		char *p = line, *e;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, "directories.tokendir", 20) != 0)
			continue;
		if ((p = strchr(p, '=')) == NULL)
			continue;
		for (p++; *p == ' ' || *p == '\t'; p++)
			;
		for (e = p + strlen(p); e > p && strchr(" \t\r\n", e[-1]); e--)
			;
		*e = '\0';
		dir = strdup(p);
	}
	fclose(fp);
	return dir;
}

static char *
tpm2_store(char **config)
{
	const char *s = getenv("TPM2_PKCS11_STORE");

	*config = NULL;
	return s ? strdup(s) : NULL;
}

/* Modules whose token store is a directory the service user must read.
 * Add a module here when its store location is known. */
static const struct {
	const char *module;            /* file name of the module */
	const char *what;
	char *(*store)(char **config);  /* the store, and the file naming it */
} stores[] = {
	{ "libsofthsm2.so", "SoftHSM token directory", softhsm_store },
	{ "libtpm2_pkcs11.so", "tpm2-pkcs11 store", tpm2_store },
};

/* Can this process read dir and everything in it (two levels)?  On failure
 * *bad is the path that failed. */
static int
tree_readable(const char *dir, int depth, char **bad)
{
	DIR *d;
	struct dirent *de;
	int ok = 1;

	if ((d = opendir(dir)) == NULL) {
		*bad = p11km_asprintf("%s: %s", dir, strerror(errno));
		return 0;
	}
	while (ok && (de = readdir(d)) != NULL) {
		char *p;
		struct stat st;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if ((p = p11km_asprintf("%s/%s", dir, de->d_name)) == NULL)
			break;
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			if (depth > 0)
				ok = tree_readable(p, depth - 1, bad);
		} else {
			int fd = open(p, O_RDONLY);
			if (fd < 0) {
				*bad = p11km_asprintf("%s: %s", p, strerror(errno));
				ok = 0;
			} else {
				close(fd);
			}
		}
		free(p);
	}
	closedir(d);
	return ok;
}

/* Where the module keeps its tokens: found by the server's process (as root,
 * before the fork).  *what is borrowed. */
static void
store_find(const char *module_path, const char **what, char **dir, char **config)
{
	const char *base = module_path ? strrchr(module_path, '/') : NULL;

	*what = NULL;
	*dir = *config = NULL;
	base = base ? base + 1 : module_path;
	for (size_t i = 0; base && i < sizeof(stores) / sizeof(stores[0]); i++) {
		if (strcmp(base, stores[i].module) == 0) {
			*what = stores[i].what;
			*dir = stores[i].store(config);
			return;
		}
	}
}

/* The name of this process's group (static), or "GROUP". */
static const char *
group_name(void)
{
	struct group *gr = getgrgid(getgid());

	return gr ? gr->gr_name : "GROUP";
}

/* Run in the process of the service user: one line per problem to out. */
static int
store_check(FILE *out, const char *what, const char *dir, const char *config, const char *user)
{
	char *bad = NULL;
	int fd, n = 0;

	if (config != NULL) {
		if ((fd = open(config, O_RDONLY)) < 0 && ++n)
			fprintf(out, "user '%s' cannot read the module configuration '%s' (%s): the "
			        "module re-initialises in each server worker and needs it; make it and "
			        "its directories readable by that user\n", user, config, strerror(errno));
		else
			close(fd);
	}
	if (dir != NULL && !tree_readable(dir, 1, &bad) && ++n) {
		fprintf(out, "user '%s' cannot read the %s '%s' (%s): server workers "
		        "re-initialise the module after fork and fail at handshake time; give "
		        "the user read access (e.g. chgrp -R %s '%s' && chmod -R g+rX '%s', "
		        "and o+x on its parent directories)\n", user, what, dir, bad ? bad : "?",
		        group_name(), dir, dir);
	}
	free(bad);
	return n;
}

/* The p11-kit client's server socket (P11_KIT_SERVER_ADDRESS=unix:path=...)
 * for a binding of p11-kit-client.so, or NULL.  The workers connect to it
 * themselves after the fork: one they cannot reach makes libp11 hang in
 * them, so it is tried first. */
static const char *
server_socket(const char *module_path)
{
	const char *base = module_path ? strrchr(module_path, '/') : NULL;
	const char *a = getenv("P11_KIT_SERVER_ADDRESS");

	base = base ? base + 1 : module_path;
	if (base == NULL || strcmp(base, "p11-kit-client.so") != 0 || a == NULL ||
	    strncmp(a, "unix:path=", 10) != 0)
		return NULL;
	return a + 10;
}

/* Run in the process of the service user: can it connect to the socket? */
static int
socket_check(FILE *out, const char *path, const char *user)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, e = 0;

	if (path == NULL)
		return 0;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		e = ENAMETOOLONG;
	} else {
		memcpy(sa.sun_path, path, strlen(path) + 1);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
			e = errno;
		if (fd >= 0)
			close(fd);
	}
	if (e == 0)
		return 0;
	fprintf(out, "user '%s' cannot connect to the p11-kit server socket '%s' (%s): server "
	        "workers connect to it themselves after fork, and hang; let the user write to "
	        "the socket (e.g. chgrp %s '%s' && chmod g+w '%s', and o+x on its parent "
	        "directories)\n", user, path, strerror(e), group_name(), path, path);
	return 1;
}

/* --- the engine trial ----------------------------------------------------- */


static X509 *
load_cert(ENGINE *e, const char *cert, FILE *out)
{
	X509 *x = NULL;

	if (strncmp(cert, "pkcs11:", 7) == 0) {
		struct { const char *id; X509 *cert; } parms = { cert, NULL };
		if (!ENGINE_ctrl_cmd(e, "LOAD_CERT_CTRL", 0, &parms, NULL, 1) || parms.cert == NULL)
			fprintf(out, "the engine cannot load the certificate '%s' (%s): check that it is "
			        "on the token with this label\n", cert, p11km_openssl_error());
		return parms.cert;
	}
	{
		FILE *fp = fopen(cert, "r");
		if (fp == NULL) {
			fprintf(out, "cannot read the certificate file '%s': %s\n", cert, strerror(errno));
			return NULL;
		}
		x = PEM_read_X509(fp, NULL, NULL, NULL);
		fclose(fp);
		if (x == NULL)
			fprintf(out, "the certificate file '%s' holds no PEM certificate\n", cert);
	}
	return x;
}

/* Sign a test message with the token key; verify with the certificate. */
static void
sign_verify(EVP_PKEY *key, X509 *cert, const char *who, FILE *out)
{
	static const unsigned char msg[] = "p11km bind check: test message";
	unsigned char sig[1024];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *m = EVP_MD_CTX_new();

	if (m == NULL)
		return;
	ERR_clear_error();
	if (EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(m, sig, &siglen, msg, sizeof(msg)) != 1) {
		fprintf(out, "the token key cannot sign %s (%s): a server would fail every "
		        "handshake; check the PIN file and that the token is readable\n", who, p11km_openssl_error());
		goto out;
	}
	if (ERR_peek_error() != 0) {
		/* nginx takes an error left on the queue for a failed handshake */
		fprintf(out, "the token key signs %s but the engine leaves an OpenSSL error behind "
		        "(%s): nginx fails every handshake that way (seen with libp11 0.4 and a PIV "
		        "card through ykcs11); use a server that ignores it, or another module\n", who,
		        p11km_openssl_error());
		goto out;
	}
	if (siglen > sizeof(sig)) { /* the length the module gave, passed on by the engine */
		fprintf(out, "the token key's signature came back %zu bytes long for a buffer of "
		        "%zu: the PKCS#11 module is faulty\n", siglen, sizeof(sig));
		goto out;
	}
	EVP_MD_CTX_reset(m);
	if (cert != NULL &&
	    (EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, X509_get0_pubkey(cert)) != 1 ||
	     EVP_DigestVerify(m, sig, siglen, msg, sizeof(msg)) != 1)) {
		ERR_clear_error();
		fprintf(out, "the certificate does not belong to the key (a signature by the key "
		        "does not verify with the certificate's public key): install the certificate "
		        "issued for this key, or bind the key this certificate was issued for\n");
	}
out:
	EVP_MD_CTX_free(m);
}

static void
drop_privileges(uid_t uid, gid_t gid, const char *user, FILE *out)
{
	if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0 || getuid() != uid) {
		fprintf(out, "cannot switch to user '%s' to check the binding: %s (run bind check "
		        "as root)\n", user, strerror(errno));
		fflush(out);
		_exit(1);
	}
}

static void
worker(const struct p11km_engine_trial *t, uid_t uid, gid_t gid, EVP_PKEY *key,
       FILE *out)
{
	char who[128];
	const char *what, *sock = server_socket(t->module_path);
	char *dir, *config;

	alarm(TRIAL_TIMEOUT);
	store_find(t->module_path, &what, &dir, &config);
	drop_privileges(uid, gid, t->user, out);
	if (store_check(out, what, dir, config, t->user) + socket_check(out, sock, t->user) > 0) {
		fflush(out);
		_exit(0); /* the signature would fail for the reason just given */
	}
	fflush(out);
	snprintf(who, sizeof(who), "in a worker running as user '%s'", t->user);
	sign_verify(key, NULL, who, out); /* the certificate was compared in the master */
	fflush(out);
	_exit(0);
}

/* The server's process, freshly exec'ed with OPENSSL_CONF set: OpenSSL
 * loads the configuration at initialisation (as nginx, httpd and stunnel
 * do), then the key and certificate are loaded through the engine. */
static void
master(const struct p11km_engine_trial *t, int have_user, uid_t uid, gid_t gid, FILE *out)
{
	ENGINE *e = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	pid_t pid;
	int st;

	alarm(TRIAL_TIMEOUT);
	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1) {
		fprintf(out, "OpenSSL cannot load '%s' (%s): fix the file or emit it again with "
		        "'p11km bind emit'\n", t->openssl_cnf, p11km_openssl_error());
		goto out;
	}
	if ((e = ENGINE_by_id("pkcs11")) == NULL) {
		fprintf(out, "'%s' does not load the pkcs11 engine (%s): it needs an engines "
		        "section with dynamic_path and MODULE_PATH\n", t->openssl_cnf, p11km_openssl_error());
		goto out;
	}
	key = ENGINE_load_private_key(e, t->key, (UI_METHOD *)UI_null(), NULL);
	if (key == NULL) {
		const char *err = p11km_openssl_error();
		if (strstr(err, "not initialised") != NULL)
			fprintf(out, "the pkcs11 engine is not initialised when the key is loaded: add "
			        "'init = 1' to the engine section of '%s' (nginx never calls "
			        "ENGINE_init)\n", t->openssl_cnf);
		else {
			char *shown = p11km_uri_hide_pin(t->key);
			fprintf(out, "the pkcs11 engine cannot load the key '%s' (%s): use the "
			        "engine-safe URI that 'p11km bind emit' writes, and check the PIN file\n",
			        shown ? shown : "(the key URI)", err);
			free(shown);
		}
		goto out;
	}
	if (t->cert != NULL)
		cert = load_cert(e, t->cert, out);
	sign_verify(key, cert, "through the engine", out);
	fflush(out);
	if (have_user) {
		if ((pid = fork()) < 0) {
			fprintf(out, "fork: %s\n", strerror(errno));
		} else if (pid == 0) {
			worker(t, uid, gid, key, out);
		} else {
			while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
				;
			if (WIFSIGNALED(st))
				fprintf(out, "the check in a worker running as user '%s' %s (signal %d): "
				        "make the token store readable by that user\n", t->user,
				        WTERMSIG(st) == SIGALRM ? "hung" : "crashed", WTERMSIG(st));
		}
	}
out:
	fflush(out);
	/* finalize the module (a TPM without resource manager keeps the contexts
	 * of a process that does not), then end without the leak checker */
	EVP_PKEY_free(key);
	X509_free(cert);
	ENGINE_free(e);
	OPENSSL_cleanup();
	_exit(0);
}

/* The probe's work (p11km-engine-probe reads its arguments): problems go to
 * out, one line each.  Ends the process. */
void
p11km_engine_probe(const struct p11km_engine_trial *t, FILE *out)
{
	struct passwd *pw = NULL;

	if (t->user != NULL && (pw = getpwnam(t->user)) == NULL) {
		fprintf(out, "no user '%s' on this system\n", t->user);
		fflush(out);
		_exit(0);
	}
	master(t, t->user != NULL, pw ? pw->pw_uid : 0, pw ? pw->pw_gid : 0, out);
	_exit(0); /* not reached: master() ends the process */
}

/* --- PIN files and URIs --------------------------------------------------- */

void
p11km_pin_file_check(const char *path, const char *user, struct p11km_problems *pr)
{
	struct stat st;
	struct passwd *pw = user ? getpwnam(user) : NULL;
	unsigned char buf[300];
	ssize_t n;
	int fd;

	/* O_NONBLOCK: a FIFO there must not hang the check */
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0 ||
	    fstat(fd, &st) != 0) {
		p11km_problem_add(pr, "cannot read the PIN file '%s' (%s): create it with "
		                  "'p11km bind emit --pin-file'", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		p11km_problem_add(pr, "the PIN file '%s' is not a regular file: the server's engine "
		                  "cannot read a PIN from it; create it with 'p11km bind emit "
		                  "--pin-file'", path);
		close(fd);
		return;
	}
	if (pw != NULL && st.st_uid != pw->pw_uid)
		p11km_problem_add(pr, "the PIN file '%s' is not owned by '%s': chown %s '%s'",
		                  path, user, user, path);
	if ((st.st_mode & 077) != 0)
		p11km_problem_add(pr, "the PIN file '%s' is readable by others (mode %04o): "
		                  "chmod 0400 '%s'", path, (unsigned)(st.st_mode & 07777), path);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0) {
		p11km_problem_add(pr, "the PIN file '%s' is empty", path);
	} else {
		if (buf[n - 1] == '\n' || buf[n - 1] == '\r')
			p11km_problem_add(pr, "the PIN file '%s' ends with a newline: libp11 0.4.12 "
			                  "sends it as part of the PIN and the login fails; write it "
			                  "without one (printf '%%s' PIN, or 'p11km bind emit --pin-file')",
			                  path);
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			n--;
		if (n > 32)
			p11km_problem_add(pr, "the PIN in '%s' is longer than 32 bytes: libp11 0.4.12 "
			                  "cannot use it; change the token's PIN to a shorter one", path);
	}
	OPENSSL_cleanse(buf, sizeof(buf));
}

void
p11km_engine_uri_check(const char *what, const char *uri, struct p11km_problems *pr)
{
	static const char *bad[] = { "slot-", "module-", "library-" };
	struct p11km_uri *u = NULL;

	if (strncmp(uri, "pkcs11:", 7) != 0)
		return;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (strstr(uri, bad[i]) != NULL) {
			p11km_problem_add(pr, "the %s URI carries '%s...' attributes, which make libp11 "
			                  "0.4.12 reject the whole URI: use only token, id, object and type "
			                  "(as 'p11km bind emit' writes)", what, bad[i]);
			return;
		}
	}
	if (p11km_uri_parse(uri, &u) < 0) {
		p11km_problem_add(pr, "the %s URI is not a valid pkcs11: URI (%s)", what,
		                  p11km_errmsg(P11KM_ERR_USAGE));
		p11km_error_clear();
		return;
	}
	if (!u->has_token)
		p11km_problem_add(pr, "the %s URI names no token: the engine refuses to log in when "
		                  "several tokens match; add token=LABEL", what);
	if (p11km_uri_pin_value(u) != NULL)
		p11km_problem_add(pr, "the %s URI carries the PIN (pin-value) in the config: use a "
		                  "PIN file (pin-source) instead", what);
	p11km_uri_free(u);
}

/* --- bind check DIR|FILE ------------------------------------------------------ */

void
p11km_bind_report_release(struct p11km_bind_report *rep)
{
	free(rep->server);
	free(rep->key);
	free(rep->cert);
	free(rep->user);
	free(rep->openssl_cnf);
	memset(rep, 0, sizeof(*rep));
}

/* The value of the first "directive value" line in a server snippet. */
static int
snippet_value(const char *path, const char *directive, const char *prefix, char **out)
{
	FILE *fp = fopen(path, "r");
	char line[4096];
	size_t dl = strlen(directive);

	*out = NULL;
	if (fp == NULL)
		return p11km_fail(P11KM_ERR_IO, "unable to open '%s': %s", path, strerror(errno));
	while (*out == NULL && fgets(line, sizeof(line), fp) != NULL) {
		char *p = line, *v;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, directive, dl) != 0 || strchr(" \t=", p[dl]) == NULL)
			continue;
		v = p11km_bind_value_trim(p + dl);
		if (prefix && strncmp(v, prefix, strlen(prefix)) == 0)
			v += strlen(prefix);
		*out = strdup(v);
	}
	fclose(fp);
	return 0;
}

/* setenv() from "VAR=value" (copies). */
static void
env_set(const char *kv)
{
	char *c = strdup(kv), *eq = c ? strchr(c, '=') : NULL;

	if (eq != NULL) {
		*eq = '\0';
		setenv(c, eq + 1, 1);
	}
	free(c);
}

static int
uri_has_id(const struct p11km_uri *u)
{
	CK_ULONG n = 0;
	CK_ATTRIBUTE *a = p11km_uri_object_template(u, &n);

	for (CK_ULONG i = 0; i < n; i++)
		if (a[i].type == CKA_ID)
			return 1;
	return 0;
}

int
p11km_bind_check(struct p11km_ctx *ctx, const char *path, const char *user_override,
                 struct p11km_bind_report *rep, struct p11km_problems *pr)
{
	struct p11km_bind_manifest m;
	const struct p11km_bind_flavour *fl;
	struct p11km_engine_trial t;
	struct p11km_uri *uri = NULL;
	struct p11km_token *tok = NULL;
	struct p11km_session s;
	char *key = NULL, *cert = NULL, *proved = NULL;
	size_t proved_len = 0;
	const char *user;
	int r, found = 0;

	memset(rep, 0, sizeof(*rep));
	if ((r = p11km_bind_manifest_read(path, &m)) < 0)
		return r;
	user = user_override ? user_override : m.user;
	if ((fl = p11km_bind_flavour_find(m.server)) == NULL || fl->why_not != NULL) {
		r = p11km_fail(P11KM_ERR_INPUT, "unknown server '%s' in the manifest", m.server);
		goto out;
	}
	/* read key and certificate back from the snippet: what the server reads */
	if (fl->snippet_name && m.snippet) {
		if ((r = snippet_value(m.snippet, fl->key_directive, fl->key_prefix, &key)) < 0 ||
		    (r = snippet_value(m.snippet, fl->cert_directive, NULL, &cert)) < 0)
			goto out;
		if (key == NULL) {
			r = p11km_fail(P11KM_ERR_INPUT, "'%s' has no %s line", m.snippet,
			               fl->key_directive);
			goto out;
		}
	}
	if (key == NULL && (key = strdup(m.key)) == NULL)
		goto nomem;
	if (cert == NULL && m.cert && (cert = strdup(m.cert)) == NULL)
		goto nomem;
	rep->server = strdup(m.server);
	rep->key = p11km_uri_hide_pin(key); /* printed: never the PIN */
	rep->cert = cert ? strdup(cert) : NULL;
	rep->user = user ? strdup(user) : NULL;
	rep->openssl_cnf = strdup(m.openssl_conf);

	p11km_engine_uri_check("key", key, pr);
	if (cert)
		p11km_engine_uri_check("certificate", cert, pr);
	if (p11km_uri_parse(key, &uri) < 0) {
		p11km_error_clear();
		uri = NULL;
	}
	if (uri && !uri_has_id(uri))
		p11km_warn("the binding names the key by label: a rekey moves the label, so a "
		           "server started during the switch may find no key, or the new key with "
		           "the old certificate; run 'p11km bind emit' again to name it by id");
	if (uri && p11km_uri_pin_source(uri))
		p11km_pin_file_check(p11km_uri_pin_source(uri), user, pr);
	else if (uri)
		p11km_problem_add(pr, "the key URI has no pin-source: the server cannot log in; "
		                  "emit the binding with --pin-file");

	/* p11km's own login first (one try of the PIN, with the token's flags
	 * checked), and an EdDSA key on the token breaks libp11 for every key */
	if (uri != NULL) {
		const char *pin = NULL;
		size_t pin_len = 0;
		for (size_t i = 0; i < m.n_env; i++)
			env_set(m.env[i]);
		if (ctx->module_opt == NULL)
			ctx->module_opt = m.module;
		int lr;
		if ((lr = p11km_token_open(ctx, uri, 0, &tok, &s)) == 0) {
			if (p11km_token_has_eddsa(&s, &found) == 0 && found)
				p11km_problem_add(pr, "token '%s' holds an EdDSA (Ed25519) key: libp11 0.4.12 "
				                  "then cannot enumerate any key on it; move or delete that key",
				                  tok->label);
			p11km_session_close(&s);
			if (p11km_pin_proved(ctx, tok->uri, &pin, &pin_len) == 0 &&
			    (proved = p11km_memdup(pin, pin_len)) == NULL)
				goto nomem;
			proved_len = pin_len;
		} else {
			p11km_problem_add(pr, "p11km cannot open the key's token to look for EdDSA keys "
			                  "(%s)", p11km_errmsg(lr)); /* the failure's own message */
		}
		p11km_error_clear();
		/* the probe starts as a server does: no module of this process
		 * holds sessions or TPM contexts meanwhile */
		p11km_ctx_release(ctx);
		if (ctx->module_opt == m.module)
			ctx->module_opt = NULL;
	}

	memset(&t, 0, sizeof(t));
	t.openssl_cnf = m.openssl_conf;
	t.key = key;
	t.cert = cert;
	t.user = user;
	t.module_path = m.module;
	t.env = m.env;
	t.n_env = m.n_env;
	t.pin = proved;
	t.pin_len = proved_len;
	if ((r = p11km_engine_try(&t, pr)) < 0)
		goto out;
	r = 0;
	goto out;
nomem:
	r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
out:
	p11km_token_free(tok);
	p11km_uri_free(uri);
	p11km_freezero(proved, proved_len);
	free(key);
	free(cert);
	if (r < 0)
		p11km_bind_report_release(rep);
	p11km_bind_manifest_release(&m);
	return r;
}
