/* op-bind-report.c: what 'bind emit', 'bind check' and 'bind verify' print
 * (text lines or one JSON object), and the verdicts of check and verify. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11km/json.h"
#include "p11km/op.h"
#include "p11km/util.h"

static void
emit_json(FILE *fp, const struct p11km_bind_emit_result *res)
{
	struct p11km_json j;

	p11km_json_init(&j, fp);
	p11km_json_object_begin(&j);
	p11km_json_kv_string(&j, "server", res->server);
	p11km_json_kv_string(&j, "key_uri", res->key_uri);
	p11km_json_kv_string(&j, "snippet", res->snippet);
	p11km_json_kv_string(&j, "pin_file", res->pin_file);
	p11km_json_key(&j, "files");
	p11km_json_array_begin(&j);
	for (size_t i = 0; i < res->files.n; i++) {
		char *path = p11km_asprintf("%s/%s", res->dir, res->files.f[i].name);
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "path", path);
		if (res->to_stdout) {
			p11km_json_key(&j, "content");
			p11km_json_stringn(&j, res->files.f[i].data, res->files.f[i].len);
		}
		p11km_json_object_end(&j);
		free(path);
	}
	if (res->pin_written) {
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "path", res->pin_written);
		p11km_json_object_end(&j);
	}
	p11km_json_array_end(&j);
	p11km_json_key(&j, "next");
	p11km_json_array_begin(&j);
	p11km_json_string(&j, res->next[0]);
	p11km_json_string(&j, res->next[1]);
	p11km_json_array_end(&j);
	p11km_json_object_end(&j);
	p11km_json_end(&j);
}

void
p11km_bind_emit_print(FILE *fp, int json, const struct p11km_bind_emit_result *res)
{
	const struct p11km_bind_files *fs = &res->files;

	if (json) {
		emit_json(fp, res);
	} else if (res->to_stdout) {
		for (size_t i = 0; i < fs->n; i++) {
			fprintf(fp, "%s==> %s/%s <==\n", i ? "\n" : "", res->dir, fs->f[i].name);
			fwrite(fs->f[i].data, 1, fs->f[i].len, fp);
		}
	} else {
		for (size_t i = 0; i < fs->n; i++)
			fprintf(fp, "wrote %s/%s\n", res->dir, fs->f[i].name);
		if (res->pin_written)
			fprintf(fp, "wrote %s (PIN file, mode 0400)\n", res->pin_written);
		fprintf(fp, "next: %s\nnext: %s\n", res->next[0], res->next[1]);
	}
}

void
p11km_bind_check_print(FILE *fp, int json, const struct p11km_bind_report *rep,
                       const struct p11km_problems *pr)
{
	if (json) {
		struct p11km_json j;
		p11km_json_init(&j, fp);
		p11km_json_object_begin(&j);
		p11km_json_kv_string(&j, "server", rep->server);
		p11km_json_kv_string(&j, "key", rep->key);
		p11km_json_kv_string(&j, "cert", rep->cert);
		p11km_json_kv_string(&j, "service_user", rep->user);
		p11km_json_kv_string(&j, "openssl_conf", rep->openssl_cnf);
		p11km_json_kv_bool(&j, "ok", pr->n == 0);
		p11km_json_key(&j, "problems");
		p11km_json_array_begin(&j);
		for (size_t i = 0; i < pr->n; i++)
			p11km_json_string(&j, pr->lines[i]);
		p11km_json_array_end(&j);
		p11km_json_object_end(&j);
		p11km_json_end(&j);
		return;
	}
	fprintf(fp, "server:       %s\n", rep->server);
	fprintf(fp, "key:          %s\n", rep->key);
	fprintf(fp, "certificate:  %s\n", rep->cert ? rep->cert : "(none)");
	fprintf(fp, "service user: %s\n", rep->user ? rep->user : "(the caller)");
	for (size_t i = 0; i < pr->n; i++)
		fprintf(fp, "problem: %s\n", p11km_esc(pr->lines[i]));
	if (pr->n == 0)
		fprintf(fp, "ok: the key signs through the engine%s and the certificate matches it\n",
		        rep->user ? " as the service user after fork" : "");
}

int
p11km_bind_check_verdict(const struct p11km_problems *pr)
{
	if (pr->n == 0)
		return 0;
	return p11km_fail(P11KM_ERR_VERIFY, "%zu problem%s with the binding; fix %s and run "
	                  "'p11km bind check' again", pr->n, pr->n == 1 ? "" : "s",
	                  pr->n == 1 ? "it" : "them");
}

static void
verify_json(FILE *fp, const char *address, const char *name, const struct p11km_verify_result *res)
{
	struct p11km_json j;

	p11km_json_init(&j, fp);
	p11km_json_object_begin(&j);
	p11km_json_kv_string(&j, "address", address);
	p11km_json_kv_string(&j, "server_name", name);
	p11km_json_kv_string(&j, "protocol", res->protocol);
	p11km_json_kv_string(&j, "subject", res->subject);
	p11km_json_kv_string(&j, "issuer", res->issuer);
	p11km_json_kv_string(&j, "serial", res->serial);
	p11km_json_kv_string(&j, "not_after", res->not_after);
	p11km_json_kv_int(&j, "days_left", res->days_left);
	p11km_json_kv_string(&j, "sha256", res->sha256);
	p11km_json_key(&j, "matches");
	if (res->compared)
		p11km_json_bool(&j, res->matches);
	else
		p11km_json_null(&j);
	p11km_json_kv_string(&j, "expected_serial", res->expected_serial);
	p11km_json_key(&j, "chain_ok");
	if (res->chain_checked)
		p11km_json_bool(&j, res->chain_ok);
	else
		p11km_json_null(&j);
	p11km_json_kv_string(&j, "chain_error", res->chain_error);
	p11km_json_object_end(&j);
	p11km_json_end(&j);
}

void
p11km_bind_verify_print(FILE *fp, int json, const char *address, const char *server_name,
                        const struct p11km_verify_result *res)
{
	if (json) {
		verify_json(fp, address, server_name, res);
		return;
	}
	fprintf(fp, "served by %s (%s, %s)\n", address, res->protocol, res->cipher);
	fprintf(fp, "  subject:   %s\n  issuer:    %s\n  serial:    %s\n", res->subject,
	        res->issuer, res->serial);
	fprintf(fp, "  not after: %s (%ld days left)\n", res->not_after, res->days_left);
	if (res->compared)
		fprintf(fp, "  expected:  %s (serial %s)\n", res->matches ? "same certificate" :
		        "MISMATCH", res->expected_serial ? res->expected_serial : "?");
	if (res->chain_checked)
		fprintf(fp, "  chain:     %s%s\n", res->chain_ok ? "verifies" : "does not verify: ",
		        res->chain_ok ? "" : res->chain_error);
}

int
p11km_bind_verify_verdict(const char *address, const struct p11km_verify_result *res)
{
	if (res->compared && !res->matches)
		return p11km_fail(P11KM_ERR_VERIFY, "%s serves serial %s, not the expected "
		                  "certificate (serial %s): if it was just installed, a server that "
		                  "reads certificate files (nginx) needs 'p11km bind emit' again to "
		                  "rewrite them; then reload the server (with the binding's "
		                  "environment: see doc/bindings.md)", address, res->serial,
		                  res->expected_serial ? res->expected_serial : "?");
	if (res->chain_checked && !res->chain_ok)
		return p11km_fail(P11KM_ERR_VERIFY, "the certificate chain served by %s does not "
		                  "verify: %s", address, res->chain_error ? res->chain_error : "?");
	if (res->days_left < 0)
		return p11km_fail(P11KM_ERR_VERIFY, "the certificate served by %s has expired; renew "
		                  "it ('p11km req renew', then 'p11km cert install') and reload the "
		                  "server", address);
	return 0;
}
