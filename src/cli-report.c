/* cli-report.c: what the commands print: the one report of a failure
 * (a line on stderr, and the JSON error object under --json), and the
 * results of the operations on stdout, as text or one JSON document. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "p11km/cli.h"
#include "p11km/json.h"
#include "p11km/util.h"

int
p11km_report(int code)
{
	if (code >= 0)
		return P11KM_EXIT_OK;
	fprintf(stderr, "p11km: %s\n", p11km_errmsg(code));
	if (p11km_cli()->json && !p11km_json_stdout_done()) {
		/* what a script reads: one object on stdout, the line on stderr */
		struct p11km_json j;
		p11km_json_init(&j, stdout);
		p11km_json_object_begin(&j);
		p11km_json_key(&j, "error");
		p11km_json_object_begin(&j);
		p11km_json_kv_int(&j, "exit", p11km_exit_code(code));
		p11km_json_kv_string(&j, "code", p11km_errname(code));
		p11km_json_kv_string(&j, "message", p11km_errmsg(code));
		p11km_json_object_end(&j);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
	}
	return p11km_exit_code(code);
}

/* --- req new, req renew -------------------------------------------------------- */

/* The request on stdout (no -o, or -o -), or the --json summary. */
int
p11km_req_print(int json, const struct p11km_req_opts *o, const struct p11km_req_result *res)
{
	int to_stdout = o->out == NULL || strcmp(o->out, "-") == 0;
	struct p11km_json j;
	char *pem = NULL;

	if (!json)
		return to_stdout ? p11km_write_file_atomic("-", res->request, res->request_len, 0644) : 0;
	if (to_stdout && (pem = p11km_asprintf("%.*s", (int)res->request_len,
	                                       (const char *)res->request)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	p11km_json_init(&j, stdout);
	p11km_json_object_begin(&j);
	p11km_json_kv_string(&j, "subject", res->subject);
	p11km_json_key(&j, "san");
	p11km_json_array_begin(&j);
	for (size_t i = 0; i < res->san.n; i++)
		p11km_json_string(&j, res->san.v[i]);
	p11km_json_array_end(&j);
	p11km_json_kv_string(&j, "key_uri", res->key_uri);
	p11km_json_kv_bool(&j, "rekey", res->rekey);
	p11km_json_kv_string(&j, "signature", res->signature);
	p11km_json_kv_string(&j, "sha256", res->sha256);
	p11km_json_kv_string(&j, "file", to_stdout ? NULL : o->out);
	if (pem != NULL)
		p11km_json_kv_string(&j, "request", pem);
	if (res->renew)
		p11km_json_kv_string(&j, "renews", res->renews);
	if (res->renew)
		p11km_json_kv_string(&j, "format", res->ms_renewal ? "ms-renewal" : "pkcs10");
	for (int d = 0; res->renew && d < 2; d++) {
		const struct p11km_names *l = d == 0 ? &res->dropped : &res->dropped_ku;
		p11km_json_key(&j, d == 0 ? "dropped_extensions" : "dropped_key_usages");
		p11km_json_array_begin(&j);
		for (size_t i = 0; i < l->n; i++)
			p11km_json_string(&j, l->v[i]);
		p11km_json_array_end(&j);
	}
	p11km_json_object_end(&j);
	p11km_json_end(&j);
	free(pem);
	return 0;
}

/* --- audit show ------------------------------------------------------------------ */

static const char *
str(json_t *rec, const char *key)
{
	const char *v = json_string_value(json_object_get(rec, key));

	return v ? v : "";
}

/* One line of text: time, user, command, action, what, and why it failed. */
void
p11km_audit_print_text(json_t *rec)
{
	const char *what = str(rec, "object");
	json_t *nw = json_object_get(rec, "new");
	char hbuf[32];

	if (!*what)
		what = str(rec, "file");
	if (!*what && json_is_integer(json_object_get(rec, "handle"))) {
		snprintf(hbuf, sizeof(hbuf), "handle %lld",
		         (long long)json_integer_value(json_object_get(rec, "handle")));
		what = hbuf;
	}
	if (!*what)
		what = str(rec, "token");
	printf("%s %s '%s' %s%s %s", str(rec, "time"), str(rec, "user"), str(rec, "command"),
	       json_is_true(json_object_get(rec, "rollback")) ? "rollback:" : "",
	       str(rec, "action"), p11km_esc(what));
	if (json_string_value(json_object_get(nw, "label")) != NULL)
		printf(" label '%s'", p11km_esc(json_string_value(json_object_get(nw, "label"))));
	if (*str(rec, "error"))
		printf(" (failed: %s)", str(rec, "error"));
	printf("\n");
}
