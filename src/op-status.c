/* op-status.c: 'status': one table over tracked certificates, certificates
 * on tokens, in files and in binding directories; the monitoring level of
 * each; the node_exporter textfile. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p11km/bind.h"
#include "p11km/cert.h"
#include "p11km/op.h"
#include "p11km/req.h"
#include "p11km/track.h"
#include "p11km/uri.h"
#include "p11km/util.h"
#include "p11km/x509.h"

static time_t
asn1_time(const ASN1_TIME *a)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	return a != NULL && ASN1_TIME_to_tm(a, &tm) == 1 ? timegm(&tm) : 0;
}

static struct p11km_status_row *
row_new(struct p11km_status_result *res, const char *source)
{
	struct p11km_status_row *rows = realloc(res->rows, (res->n + 1) * sizeof(*rows)), *w;

	if (rows == NULL)
		return NULL;
	res->rows = rows;
	w = &rows[res->n];
	memset(w, 0, sizeof(*w));
	if ((w->source = strdup(source)) == NULL)
		return NULL;
	res->n++;
	return w;
}

static void
row_error(struct p11km_status_row *w, int code)
{
	free(w->error);
	w->error = strdup(p11km_errmsg(code));
	w->level = P11KM_STATUS_WARN;
	p11km_error_clear();
}

/* The certificate's fields and its level: window_start is when it enters
 * its renewal window, renewing whether a renewal is under way. */
static int
row_cert(struct p11km_status_row *w, X509 *x, time_t now, time_t window_start, int renewing,
         int failed)
{
	struct p11km_cert_summary cs = { 0 };
	int r;

	if ((r = p11km_cert_summary_x509(x, &cs)) < 0)
		return r;
	w->subject = cs.subject;
	w->serial = cs.serial;
	cs.subject = cs.serial = NULL;
	p11km_cert_summary_release(&cs);
	w->not_after = asn1_time(X509_get0_notAfter(x));
	w->days_left = (long)((w->not_after - now) / 86400);
	if (w->not_after <= now)
		w->level = P11KM_STATUS_EXPIRED;
	else if (failed || (now >= window_start && !renewing))
		w->level = P11KM_STATUS_WARN;
	return 0;
}

static time_t
window_of(time_t not_after, int warn_days)
{
	return not_after - (time_t)(warn_days < 0 ? 30 : warn_days) * 86400;
}

/* --- tracked certificates ---------------------------------------------------------- */

static int
read_token_cert(struct p11km_ctx *ctx, const char *uri_s, X509 **x, char **tok_uri)
{
	struct p11km_uri *u = NULL;
	struct p11km_token *tok = NULL;
	struct p11km_session s;
	struct p11km_object co;
	int r;

	*x = NULL;
	if ((r = p11km_uri_parse(uri_s, &u)) < 0)
		return r;
	if ((r = p11km_token_open(ctx, u, P11KM_OPEN_INITIALISED, &tok, &s)) < 0)
		goto out;
	if ((r = p11km_object_find_one(&s, u, CKO_CERTIFICATE, &co)) == 0) {
		r = p11km_cert_from_der(co.value, co.value_len, "the certificate on the token", x);
		p11km_object_release(&co);
	}
	if (r == 0 && tok_uri != NULL && (*tok_uri = strdup(tok->uri)) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	p11km_session_close(&s);
out:
	p11km_token_free(tok);
	p11km_uri_free(u);
	return r;
}

static char *
join(char *const *v, size_t n)
{
	struct p11km_buf b = { 0 };
	char *s;

	for (size_t i = 0; i < n; i++)
		if ((i > 0 && p11km_buf_append(&b, " ", 1) < 0) ||
		    p11km_buf_append(&b, v[i], strlen(v[i])) < 0) {
			p11km_buf_release(&b);
			return NULL;
		}
	s = b.data ? strdup((char *)b.data) : strdup("");
	p11km_buf_release(&b);
	return s;
}

/* --probe: ask addr (a listen address: "*" is asked on 127.0.0.1, "[::]" on
 * [::1]) which certificate it serves; once per address. */
static int
probe_addr(struct p11km_status_row *w, const char *listen, const char *sni)
{
	struct p11km_verify_result vr;
	struct p11km_status_probe *pv;
	char *addr;

	if (strncmp(listen, "*:", 2) == 0)
		addr = p11km_asprintf("127.0.0.1:%s", listen + 2);
	else if (strncmp(listen, "[::]:", 5) == 0)
		addr = p11km_asprintf("[::1]:%s", listen + 5);
	else
		addr = strdup(listen);
	if (addr == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < w->n_probes; i++)
		if (strcmp(w->probes[i].addr, addr) == 0) {
			free(addr);
			return 0;
		}
	if ((pv = realloc(w->probes, (w->n_probes + 1) * sizeof(*pv))) == NULL) {
		free(addr);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	w->probes = pv;
	pv = &pv[w->n_probes++];
	pv->addr = addr;
	pv->serial = NULL;
	memset(&vr, 0, sizeof(vr));
	if (p11km_bind_verify(addr, sni, NULL, NULL, NULL, &vr) == 0 && vr.serial != NULL) {
		pv->serial = strdup(vr.serial);
		if (w->served == NULL)
			w->served = strdup(vr.serial);
		/* installed but not reloaded */
		if (w->serial != NULL && strcmp(vr.serial, w->serial) != 0) {
			w->not_reloaded = 1;
			if (w->level == P11KM_STATUS_OK)
				w->level = P11KM_STATUS_WARN;
		}
	} else {
		p11km_error_clear();
	}
	p11km_verify_result_release(&vr);
	return 0;
}

/* The listen addresses of the binding in dir (its manifest), asked. */
static int
probe_binding(struct p11km_status_row *w, const char *dir)
{
	struct p11km_bind_manifest m;
	int r = 0;

	if (p11km_bind_manifest_read(dir, &m) < 0) {
		p11km_error_clear();  /* status still shows the row; bind check says why */
		return 0;
	}
	for (size_t i = 0; r == 0 && i < m.n_listen; i++)
		r = probe_addr(w, m.listen[i], m.server_name);
	p11km_bind_manifest_release(&m);
	return r;
}

static int
probe(struct p11km_status_row *w, const struct p11km_track *t)
{
	int r = 0;

	if (t->verify != NULL)
		r = probe_addr(w, t->verify, t->server_name);
	for (size_t i = 0; r == 0 && i < t->n_bind; i++)
		r = probe_binding(w, t->bind[i]);
	if (r == 0 && w->n_probes > 0 && w->served == NULL)
		w->served = strdup("(no answer)");
	return r;
}

static int
status_tracked(struct p11km_ctx *ctx, const struct p11km_status_opts *o, const char *dir,
               const char *id, time_t now, struct p11km_status_result *res)
{
	struct p11km_track *t = NULL;
	struct p11km_status_row *w;
	X509 *x = NULL;
	const char *pin = ctx->pin_source_opt;
	int r;

	if ((r = p11km_track_load(dir, id, &t)) < 0)
		return r;
	if ((w = row_new(res, t->cert)) == NULL || (w->id = strdup(id)) == NULL ||
	    (w->state = strdup(p11km_track_step_name(t->step))) == NULL ||
	    (t->ca && (w->ca = strdup(t->ca)) == NULL) ||
	    (w->bindings = join(t->bind, t->n_bind)) == NULL) {
		p11km_track_free(t);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	w->last_result = t->last_result ? strdup(t->last_result) : NULL;
	w->last_error = t->last_error ? strdup(t->last_error) : NULL;
	if (t->last_run > res->last_run)
		res->last_run = t->last_run;
	/* read without logging in (a certificate is a public object) */
	ctx->pin_source_opt = NULL;
	r = read_token_cert(ctx, t->cert, &x, &w->token);
	ctx->pin_source_opt = pin;
	if (r < 0) {
		row_error(w, r);
	} else {
		int failed = t->last_result != NULL && (strcmp(t->last_result, "failed") == 0 ||
		                                        strcmp(t->last_result, "rolled back") == 0);
		time_t ws = p11km_track_due(t, asn1_time(X509_get0_notBefore(x)),
		                            asn1_time(X509_get0_notAfter(x)));
		if (o->warn_days >= 0 && window_of(asn1_time(X509_get0_notAfter(x)), o->warn_days) < ws)
			ws = window_of(asn1_time(X509_get0_notAfter(x)), o->warn_days);
		if ((r = row_cert(w, x, now, ws, t->step != P11KM_STEP_IDLE, failed)) < 0)
			row_error(w, r);
		if (o->probe && (r = probe(w, t)) < 0) {
			X509_free(x);
			p11km_track_free(t);
			return r;
		}
	}
	X509_free(x);
	p11km_track_free(t);
	return 0;
}

/* --- anything else: a token URI, a file, a binding directory ----------------------- */

static int
status_token(struct p11km_ctx *ctx, const struct p11km_status_opts *o, const char *uri_s,
             time_t now, struct p11km_status_result *res)
{
	struct p11km_uri *u = NULL;
	struct p11km_token *tok = NULL;
	struct p11km_session s;
	struct p11km_object *objs = NULL;
	size_t n = 0;
	int r;

	if ((r = p11km_uri_parse(uri_s, &u)) < 0)
		return r;
	if ((r = p11km_token_open(ctx, u, P11KM_OPEN_INITIALISED, &tok, &s)) < 0)
		goto out;
	if ((r = p11km_objects_find(&s, u, CKO_CERTIFICATE, &objs, &n)) == 0 && n == 0)
		r = p11km_fail(P11KM_ERR_NOTFOUND, "no certificate on token '%s' matches '%s'",
		               tok->label, uri_s);
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct p11km_status_row *w;
		X509 *x = NULL;
		char *ou = p11km_object_uri(tok, &objs[i]);
		if (ou == NULL || (w = row_new(res, ou)) == NULL || (w->state = strdup("untracked")) ==
		    NULL || (w->token = strdup(tok->uri)) == NULL) {
			free(ou);
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			break;
		}
		free(ou);
		if ((r = p11km_cert_from_der(objs[i].value, objs[i].value_len, "a certificate on the "
		                             "token", &x)) == 0)
			r = row_cert(w, x, now, window_of(asn1_time(X509_get0_notAfter(x)), o->warn_days),
			             0, 0);
		if (r < 0 && r != P11KM_ERR_NOMEM) {
			row_error(w, r);
			r = 0;
		}
		X509_free(x);
	}
	p11km_objects_free(objs, n);
	p11km_session_close(&s);
out:
	p11km_token_free(tok);
	p11km_uri_free(u);
	return r;
}

static int
status_file(const struct p11km_status_opts *o, const char *arg, time_t now,
            struct p11km_status_result *res)
{
	struct p11km_bind_manifest m;
	struct p11km_status_row *w;
	const char *path = arg, *binding = NULL;
	struct stat st;
	X509 *x = NULL;
	int r, have_m = 0;

	if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
		if ((r = p11km_bind_manifest_read(arg, &m)) < 0)
			return r;
		have_m = 1;
		binding = arg;
		path = m.cert;
		if (path == NULL) {
			p11km_bind_manifest_release(&m);
			return p11km_fail(P11KM_ERR_INPUT, "the binding '%s' names no certificate", arg);
		}
	}
	if ((w = row_new(res, arg)) == NULL || (w->state = strdup("untracked")) == NULL ||
	    (binding && (w->bindings = strdup(binding)) == NULL)) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = p11km_cert_load(path, &x)) == 0)
		r = row_cert(w, x, now, window_of(asn1_time(X509_get0_notAfter(x)), o->warn_days), 0,
		             0);
	if (r == 0 && binding != NULL && o->probe)
		r = probe_binding(w, binding);
	if (r < 0 && r != P11KM_ERR_NOMEM) {
		row_error(w, r);
		r = 0;
	}
out:
	X509_free(x);
	if (have_m)
		p11km_bind_manifest_release(&m);
	return r;
}

int
p11km_status(struct p11km_ctx *ctx, const struct p11km_status_opts *o,
             struct p11km_status_result *res)
{
	const char *dir = o->state_dir ? o->state_dir : p11km_state_dir(NULL);
	char **ids = NULL;
	size_t n = 0;
	time_t now = time(NULL);
	int r = 0;

	memset(res, 0, sizeof(*res));
	if (o->n_args == 0 && (r = p11km_track_ids(dir, &ids, &n)) < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = status_tracked(ctx, o, dir, ids[i], now, res);
	for (size_t i = 0; r == 0 && i < o->n_args; i++) {
		const char *a = o->args[i];
		char *tp = NULL;
		if (strncmp(a, "pkcs11:", 7) == 0)
			r = status_token(ctx, o, a, now, res);
		else if (strchr(a, '/') == NULL && p11km_track_id_check(a) == 0 &&
		         (tp = p11km_track_path(dir, a)) != NULL && access(tp, F_OK) == 0)
			r = status_tracked(ctx, o, dir, a, now, res);
		else if (access(a, F_OK) == 0)
			r = status_file(o, a, now, res);
		else
			r = p11km_fail(P11KM_ERR_NOTFOUND, "'%s' is no tracking id, pkcs11: URI, "
			               "certificate file or binding directory", a);
		if (r == 0)
			p11km_error_clear();
		free(tp);
	}
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	for (size_t i = 0; i < res->n; i++)
		if (res->rows[i].level > res->worst)
			res->worst = res->rows[i].level;
	if (r < 0)
		p11km_status_result_release(res);
	return r;
}

/* --- the textfile ---------------------------------------------------------------- */

static void
label(struct p11km_buf *b, const char *name, const char *v, int *first)
{
	char c[2] = { 0, 0 };

	p11km_buf_append(b, *first ? "" : ",", *first ? 0 : 1);
	*first = 0;
	p11km_buf_append(b, name, strlen(name));
	p11km_buf_append(b, "=\"", 2);
	for (const char *p = v ? v : ""; *p; p++) {
		if (*p == '\\' || *p == '"')
			p11km_buf_append(b, "\\", 1);
		if (*p == '\n') {
			p11km_buf_append(b, "\\n", 2);
			continue;
		}
		c[0] = *p;
		p11km_buf_append(b, c, 1);
	}
	p11km_buf_append(b, "\"", 1);
}

static void
labels(struct p11km_buf *b, const struct p11km_status_row *w)
{
	int first = 1;

	p11km_buf_append(b, "{", 1);
	label(b, "id", w->id ? w->id : "", &first);
	label(b, "source", w->source, &first);
	label(b, "token", w->token ? w->token : "", &first);
	label(b, "subject", w->subject ? w->subject : "", &first);
	label(b, "binding", w->bindings ? w->bindings : "", &first);
	p11km_buf_append(b, "} ", 2);
}

static void
line(struct p11km_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void
line(struct p11km_buf *b, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = p11km_vasprintf(fmt, ap);
	va_end(ap);
	if (s != NULL)
		p11km_buf_append(b, s, strlen(s));
	free(s);
}

int
p11km_status_prom(const struct p11km_status_result *res, const char *path)
{
	struct p11km_buf b = { 0 };
	int r;

	line(&b, "# HELP p11km_cert_not_after_seconds The notAfter time of the certificate.\n"
	         "# TYPE p11km_cert_not_after_seconds gauge\n");
	for (size_t i = 0; i < res->n; i++) {
		if (res->rows[i].error != NULL)
			continue;
		p11km_buf_append(&b, "p11km_cert_not_after_seconds", 28);
		labels(&b, &res->rows[i]);
		line(&b, "%lld\n", (long long)res->rows[i].not_after);
	}
	line(&b, "# HELP p11km_cert_renewal_state 0: fine, 1: in its window and not renewing, or "
	         "failed, or unreadable, 2: expired.\n# TYPE p11km_cert_renewal_state gauge\n");
	for (size_t i = 0; i < res->n; i++) {
		p11km_buf_append(&b, "p11km_cert_renewal_state", 24);
		labels(&b, &res->rows[i]);
		line(&b, "%d\n", (int)res->rows[i].level);
	}
	line(&b, "# HELP p11km_renew_last_run_timestamp_seconds When a renew run last looked at "
	         "the tracked certificates.\n# TYPE p11km_renew_last_run_timestamp_seconds gauge\n"
	         "p11km_renew_last_run_timestamp_seconds %lld\n", (long long)res->last_run);
	if (b.data == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	r = p11km_write_file_atomic(path, b.data, b.len, 0644);
	p11km_buf_release(&b);
	return r;
}

void
p11km_status_result_release(struct p11km_status_result *res)
{
	if (res == NULL)
		return;
	for (size_t i = 0; i < res->n; i++) {
		struct p11km_status_row *w = &res->rows[i];
		free(w->id);
		free(w->source);
		free(w->token);
		free(w->subject);
		free(w->serial);
		free(w->state);
		free(w->last_result);
		free(w->last_error);
		free(w->ca);
		free(w->bindings);
		free(w->served);
		free(w->error);
		for (size_t k = 0; k < w->n_probes; k++) {
			free(w->probes[k].addr);
			free(w->probes[k].serial);
		}
		free(w->probes);
	}
	free(res->rows);
	memset(res, 0, sizeof(*res));
}
