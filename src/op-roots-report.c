/* op-roots-report.c: what 'roots install|remove|list' print of a roots
 * result (op-roots.c), as text lines or one JSON object, and its release. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "p11km/json.h"
#include "p11km/op.h"
#include "p11km/util.h"

static void
roots_release(struct p11km_root *v, size_t n)
{
	for (size_t i = 0; v != NULL && i < n; i++) {
		free(v[i].sha256);
		free(v[i].subject);
		free(v[i].name);
	}
	free(v);
}

void
p11km_roots_result_release(struct p11km_roots_result *res)
{
	roots_release(res->certs, res->n);
	for (size_t s = 0; res->stores != NULL && s < res->n_stores; s++) {
		free(res->stores[s].spec);
		free(res->stores[s].added);
		roots_release(res->stores[s].certs, res->stores[s].n);
	}
	free(res->stores);
	memset(res, 0, sizeof(*res));
}

static void
cert_line(FILE *fp, const char *prefix, const struct p11km_root *c)
{
	fprintf(fp, "%s%s %s\n", p11km_esc(prefix), c->sha256, p11km_esc(c->subject));
}

static void
json_certs(struct p11km_json *j, const struct p11km_root *v, size_t n, int names)
{
	p11km_json_key(j, "certificates");
	p11km_json_array_begin(j);
	for (size_t i = 0; i < n; i++) {
		p11km_json_object_begin(j);
		p11km_json_kv_string(j, "sha256", v[i].sha256);
		p11km_json_kv_string(j, "subject", v[i].subject);
		if (names)
			p11km_json_kv_string(j, "name", v[i].name);
		p11km_json_object_end(j);
	}
	p11km_json_array_end(j);
}

static void
json_install(struct p11km_json *j, const struct p11km_roots_result *res)
{
	p11km_json_kv_bool(j, "dry_run", res->dry_run);
	json_certs(j, res->certs, res->n, 0);
	p11km_json_key(j, "stores");
	p11km_json_array_begin(j);
	for (size_t s = 0; s < res->n_stores; s++) {
		p11km_json_object_begin(j);
		p11km_json_kv_string(j, "store", res->stores[s].spec);
		for (int pass = 0; pass < 2; pass++) {
			p11km_json_key(j, pass == 0 ? "added" : "present");
			p11km_json_array_begin(j);
			for (size_t i = 0; i < res->n; i++)
				if ((res->stores[s].added[i] != 0) == (pass == 0))
					p11km_json_string(j, res->certs[i].sha256);
			p11km_json_array_end(j);
		}
		p11km_json_object_end(j);
	}
	p11km_json_array_end(j);
}

static void
json_remove(struct p11km_json *j, const struct p11km_roots_result *res)
{
	p11km_json_kv_bool(j, "dry_run", res->dry_run);
	p11km_json_key(j, "stores");
	p11km_json_array_begin(j);
	for (size_t s = 0; s < res->n_stores; s++) {
		p11km_json_object_begin(j);
		p11km_json_kv_string(j, "store", res->stores[s].spec);
		p11km_json_key(j, "removed");
		p11km_json_array_begin(j);
		for (size_t k = 0; k < res->stores[s].n; k++)
			p11km_json_string(j, res->stores[s].certs[k].sha256);
		p11km_json_array_end(j);
		p11km_json_object_end(j);
	}
	p11km_json_array_end(j);
}

static void
text_install(FILE *fp, const struct p11km_roots_result *res)
{
	for (size_t s = 0; s < res->n_stores; s++) {
		const struct p11km_roots_store *rs = &res->stores[s];
		for (size_t i = 0; i < res->n; i++) {
			char *pfx = p11km_asprintf("%s: %s: ", rs->spec, rs->added[i] ?
			    (res->dry_run ? "would add" : "added") : "already present, unchanged");
			if (pfx != NULL)
				cert_line(fp, pfx, &res->certs[i]);
			free(pfx);
		}
		fprintf(fp, "%s: %zu %s, %zu already present\n", p11km_esc(rs->spec), rs->n_added,
		        res->dry_run ? "would be added" : "added", res->n - rs->n_added);
	}
}

void
p11km_roots_print(FILE *fp, int json, const struct p11km_roots_result *res)
{
	struct p11km_json j;

	if (json) {
		p11km_json_init(&j, fp);
		p11km_json_object_begin(&j);
		if (res->verb == P11KM_ROOTS_INSTALL) {
			json_install(&j, res);
		} else if (res->verb == P11KM_ROOTS_REMOVE) {
			json_remove(&j, res);
		} else {
			p11km_json_kv_string(&j, "store", res->stores[0].spec);
			json_certs(&j, res->stores[0].certs, res->stores[0].n, 1);
		}
		p11km_json_object_end(&j);
		p11km_json_end(&j);
		return;
	}
	if (res->verb == P11KM_ROOTS_INSTALL) {
		text_install(fp, res);
	} else if (res->verb == P11KM_ROOTS_REMOVE) {
		for (size_t s = 0; s < res->n_stores; s++)
			for (size_t k = 0; k < res->stores[s].n; k++)
				fprintf(fp, "%s: %s: %s %s\n", p11km_esc(res->stores[s].spec),
				        res->dry_run ? "would remove" : "removed",
				        res->stores[s].certs[k].sha256, res->stores[s].certs[k].subject);
	} else {
		for (size_t i = 0; i < res->stores[0].n; i++)
			cert_line(fp, "", &res->stores[0].certs[i]);
	}
}
