/* op-ca-report.c: the renderings of the CA operations' results on stdout
 * (text, or JSON under --json) and of the install's, which 'req submit
 * --install' carries inside its own. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "p11km/json.h"
#include "p11km/op-ca.h"
#include "p11km/util.h"

void
p11km_ca_step_print(struct p11km_ctx *ctx, const char *name, const char *detail)
{
	if (!p11km_log_quiet_on() && (isatty(2) || p11km_log_verbose_on()))
		fprintf(stderr, "p11km: %s: %s\n", name, p11km_esc(detail));
}

static void
print_dumps(json_t *o)
{
	char *t = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;

	printf("%s\n", t ? t : "{}");
	free(t);
	json_decref(o);
}

/* Where the CA is: its directory, URL or helper. */
static const char *
where(const struct p11km_ca_profile *p)
{
	return p->directory ? p->directory : p->url ? p->url : p->n_command ? p->command[0] : "-";
}

static void
profile_json(const struct p11km_ca_profile *p)
{
	char *t = p11km_ca_profile_json(p);

	printf("%s\n", t ? t : "{}");
	free(t);
}

void
p11km_ca_added_print(int json, const struct p11km_ca_profile *p)
{
	if (json)
		profile_json(p);
	else if (!p11km_log_quiet_on())
		printf("added CA profile '%s' (%s, %s)\n", p11km_esc(p->name), p->kind->name,
		       p11km_esc(where(p)));
}

void
p11km_ca_list_print(int json, const struct p11km_ca_list_result *res)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < res->n; i++) {
		const struct p11km_ca_profile *p = res->profiles[i];
		if (json) {
			json_t *o = json_object();
			json_object_set_new(o, "name", json_string(p->name));
			json_object_set_new(o, "kind", json_string(p->kind->name));
			json_object_set_new(o, "directory", json_string(p->directory));
			if (p->url)
				json_object_set_new(o, "url", json_string(p->url));
			if (p->n_command > 0)
				json_object_set_new(o, "command", json_string(p->command[0]));
			json_array_append_new(arr, o);
		} else {
			printf("%-20s %-6s %s\n", p11km_esc(p->name), p->kind->name, p11km_esc(where(p)));
		}
	}
	if (json)
		print_dumps(json_pack("{s:s,s:O}", "config_dir", res->config_dir, "profiles", arr));
	json_decref(arr);
}

#define OR_DASH(x) p11km_esc((x) ? (x) : "-")

void
p11km_ca_profile_print(int json, const struct p11km_ca_profile *p)
{
	if (json) {
		profile_json(p);
	} else if (strcmp(p->kind->name, "cmp") == 0) {
		printf("name: %s\nkind: cmp\nurl: %s\nca-file: %s\nrecipient: %s\nref: %s\n"
		       "secret-source: %s\ncert: %s\nkey: %s\ncmp-cmd: %s\ntimeout: %ld\n",
		       p11km_esc(p->name), OR_DASH(p->url), OR_DASH(p->ca_file), OR_DASH(p->recipient),
		       OR_DASH(p->ref), OR_DASH(p->secret), OR_DASH(p->cert), OR_DASH(p->key),
		       p->cmd ? p->cmd : "p10cr", p->timeout > 0 ? p->timeout : 30L);
	} else if (p->directory == NULL) {
		printf("name: %s\nkind: %s\n", p11km_esc(p->name), p->kind->name);
		for (size_t i = 0; i < p->n_command; i++)
			printf("%s %s\n", i == 0 ? "command:" : "argument:", p11km_esc(p->command[i]));
		printf("url: %s\ntemplate: %s\nauth: %s\nuser: %s\npassword-source: %s\n"
		       "ca-file: %s\ninsecure-http: %s\ntimeout: %ld\n",
		       OR_DASH(p->url), OR_DASH(p->template_name), p->auth ? p->auth : "none",
		       OR_DASH(p->user), OR_DASH(p->password_source), OR_DASH(p->ca_file),
		       p->insecure_http ? "yes" : "no",
		       p->timeout > 0 ? p->timeout : p->n_command ? 300L : 30L);
	} else {
		printf("name: %s\nkind: %s\ndirectory: %s\nca-file: %s\ncontact: %s\naccount-key: %s\n"
		       "agree-tos: %s\ntimeout: %ld\neab-kid: %s\neab-hmac-source: %s\n",
		       p11km_esc(p->name), p->kind->name, p11km_esc(p->directory), OR_DASH(p->ca_file),
		       OR_DASH(p->contact), OR_DASH(p->account_key), p->agree_tos ? "yes" : "no",
		       p->timeout > 0 ? p->timeout : 30L, OR_DASH(p->eab_kid),
		       OR_DASH(p->eab_hmac_source));
	}
}

void
p11km_ca_removed_print(int json, const char *name)
{
	if (json)
		printf("{\"removed\": \"%s\"}\n", name); /* a checked name: no escaping needed */
	else if (!p11km_log_quiet_on())
		printf("removed CA profile '%s' (its account key file, if any, is kept)\n",
		       p11km_esc(name));
}

void
p11km_ca_account_print(int json, const struct p11km_ca_account_result *res)
{
	int deact = res->op == P11KM_ACME_DEACTIVATE;

	if (json) {
		p11km_json_print_free(json_pack("{s:s,s:s,s:s,s:s?,s:s?,s:I}", "ca", res->ca,
		                                "account", res->url, "status",
		                                deact ? "deactivated" : "valid", "account_key",
		                                res->account_key, "old_account_key",
		                                res->old_account_key, "signatures",
		                                (json_int_t)res->signatures));
	} else if (!p11km_log_quiet_on()) {
		printf("%s %s (%s)\n", deact ? "deactivated account"
		       : res->op == P11KM_ACME_ROLLOVER ? "rolled over the key of account" : "account",
		       p11km_esc(res->url), deact ? "deactivated" : "valid");
		if (res->old_account_key != NULL)
			printf("account key: %s (was %s)\n", p11km_esc(res->account_key),
			       p11km_esc(res->old_account_key));
	}
}

static void
print_time(const char *what, time_t t)
{
	char buf[32];
	struct tm tm;

	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	printf("%s: %s\n", what, buf);
}

void
p11km_ca_window_print(int json, const struct p11km_ca_window_result *res)
{
	const struct p11km_renewal_window *w = &res->w;

	if (json) {
		p11km_json_print_free(json_pack("{s:s,s:s,s:I,s:I,s:s?,s:I}", "ca", res->ca, "cert_id",
		                                w->cert_id, "start", (json_int_t)w->start, "end",
		                                (json_int_t)w->end, "explanation", w->explanation,
		                                "retry_after", (json_int_t)w->retry_after));
		return;
	}
	printf("cert-id: %s\n", w->cert_id);
	print_time("start", w->start);
	print_time("end", w->end);
	if (w->explanation != NULL)
		printf("explanation: %s\n", p11km_esc(w->explanation));
	if (w->retry_after > 0)
		printf("retry-after: %ld\n", w->retry_after);
}

void
p11km_ca_roots_print(int json, const struct p11km_ca_roots_result *res)
{
	if (res->installed)
		p11km_roots_print(stdout, json, &res->roots);
	else if (json)
		print_dumps(json_pack("{s:s,s:s,s:s?,s:s?}", "ca", res->ca, "kind", res->kind, "file",
		                      res->file, "certificates", res->file ? NULL : res->pem));
	else if (res->file == NULL)
		fputs(res->pem, stdout);
	else if (!p11km_log_quiet_on())
		printf("wrote the certificates of CA '%s' to '%s'\n", res->ca, p11km_esc(res->file));
}

void
p11km_revoke_print(int json, const struct p11km_revoke_result *res)
{
	if (json)
		p11km_json_print_free(json_pack("{s:s,s:s,s:i,s:s,s:I}", "ca", res->ca, "serial",
		                                res->serial, "reason", res->reason, "signed_by",
		                                res->by_cert_key ? "certificate key" : "account key",
		                                "signatures", (json_int_t)res->signatures));
	else if (!p11km_log_quiet_on())
		printf("revoked certificate %s at CA '%s' (reason %s)\n", res->serial, res->ca,
		       res->reason_name);
}

static const char *const install_cats[] = { "written", "replaced", "kept" };

/* The install's result as a JSON object (jansson). */
static json_t *
install_json(const struct p11km_install_result *res)
{
	json_t *o = json_pack("{s:b,s:s?,s:s?,s:b,s:{s:s?,s:s?}}", "dry_run", res->dry_run, "token",
	                      res->token_uri, "key", res->key_uri, "rekey", res->rekey, "leaf",
	                      "subject", res->subject, "sha256", res->sha256);

	for (int c = 0; o != NULL && c < 3; c++) {
		json_t *a = json_array();
		for (size_t i = 0; i < res->n_acts; i++)
			if (res->acts[i].cat == c)
				json_array_append_new(a, json_pack("{s:s?,s:s?,s:s?}", "what",
				                      res->acts[i].what, "name", res->acts[i].name,
				                      "detail", res->acts[i].detail));
		json_object_set_new(o, install_cats[c], a);
	}
	return o;
}

static void
install_text(const struct p11km_install_result *res)
{
	printf("%sleaf: %s (sha256 %s)\n", res->dry_run ? "dry run: " : "", res->subject,
	       res->sha256);
	printf("key: %s%s\n", res->key_uri, res->rekey ? " (rekey)" : "");
	/* token changes first, then the files (staged earlier, replaced last) */
	for (int files = 0; files < 2; files++)
		for (size_t i = 0; i < res->n_acts; i++)
			if ((strcmp(res->acts[i].what, "file") == 0) == files)
				printf("%s: %s '%s': %s\n", install_cats[res->acts[i].cat],
				       res->acts[i].what, p11km_esc(res->acts[i].name),
				       p11km_esc(res->acts[i].detail));
}

void
p11km_install_print(int json, const struct p11km_install_result *res)
{
	if (json)
		p11km_json_print_line_free(install_json(res));
	else
		install_text(res);
}

void
p11km_submit_print(int json, const struct p11km_submit_result *res)
{
	json_t *o;

	if (!json) {
		if (res->installed)
			install_text(&res->install);
		else if (res->chain_file == NULL)
			fputs(res->chain, stdout);
		else if (!p11km_log_quiet_on())
			printf("wrote the chain from CA '%s' to '%s'\n", res->ca, p11km_esc(res->chain_file));
		return;
	}
	o = json_pack("{s:s,s:s,s:s?,s:s?,s:I,s:I,s:I,s:O}", "ca", res->ca, "kind", res->kind,
	              "order", res->order_url, "certificate", res->cert_url,
	              "signatures", (json_int_t)res->signatures, "requests",
	              (json_int_t)res->requests, "bad_nonces", (json_int_t)res->bad_nonces,
	              "steps", res->steps);
	if (res->chain_file != NULL)
		json_object_set_new(o, "chain_file", json_string(res->chain_file));
	else
		json_object_set_new(o, "chain", json_string(res->chain));
	if (res->installed)
		json_object_set_new(o, "install", install_json(&res->install));
	print_dumps(o);
}
