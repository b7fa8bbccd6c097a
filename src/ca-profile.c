/* ca-profile.c: CA profiles (one JSON file each) and the table of CA kinds. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "p11km/ca.h"
#include "p11km/txn.h"
#include "p11km/util.h"

/* --- the table of kinds ------------------------------------------------------- */

static const struct p11km_ca_kind kinds[] = {
	{ "acme", NULL, p11km_acme_submit, NULL },
	{ "cmp", NULL, p11km_cmp_submit, p11km_cmp_roots },
	{ "helper", NULL, p11km_helper_submit, p11km_helper_roots },
	{ "adcs", NULL, p11km_adcs_submit, p11km_adcs_roots },
};

int
p11km_ca_kind_find(const char *name, const struct p11km_ca_kind **out)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (strcmp(kinds[i].name, name) != 0)
			continue;
		if (kinds[i].why_not != NULL)
			return p11km_fail(P11KM_ERR_UNSUPPORTED, "CA kind '%s': %s", name, kinds[i].why_not);
		*out = &kinds[i];
		return 0;
	}
	return p11km_fail(P11KM_ERR_USAGE, "unknown CA kind '%s' (acme, cmp, helper, adcs)", name);
}

/* --- names and the directory ---------------------------------------------------- */

const char *
p11km_ca_dir(const char *opt)
{
	const char *env = getenv("P11KM_CONFIG_DIR");

	if (opt != NULL)
		return opt;
	return env != NULL && *env ? env : P11KM_CA_DIR_DEFAULT;
}

int
p11km_ca_name_check(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 64 || name[0] == '.' || name[0] == '-' ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n)
		return p11km_fail(P11KM_ERR_USAGE, "CA name '%s': use 1 to 64 letters, digits, '.', "
		                  "'_' or '-', not starting with '.' or '-'", name);
	return 0;
}

static char *
profile_path(const char *dir, const char *name)
{
	return p11km_asprintf("%s/%s.json", dir, name);
}

/* --- load / save ---------------------------------------------------------------- */

void
p11km_ca_profile_free(struct p11km_ca_profile *p)
{
	if (p == NULL)
		return;
	free(p->name);
	free(p->directory);
	free(p->ca_file);
	free(p->contact);
	free(p->account_key);
	free(p->eab_kid);
	free(p->eab_hmac_source);
	for (size_t i = 0; i < p->n_command; i++)
		free(p->command[i]);
	free(p->command);
	free(p->url);
	free(p->template_name);
	free(p->auth);
	free(p->user);
	free(p->password_source);
	free(p->recipient);
	free(p->ref);
	free(p->secret);
	free(p->cert);
	free(p->key);
	free(p->cmd);
	free(p);
}

static int
opt_string(json_t *o, const char *key, char **out, const char *path)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return p11km_fail(P11KM_ERR_INPUT, "CA profile '%s': \"%s\" is not a string", path, key);
	if ((*out = strdup(json_string_value(v))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return 0;
}

/* "command": an array of 1 to 64 strings, the first an absolute path. */
static int
command_load(json_t *o, struct p11km_ca_profile *p, const char *path)
{
	json_t *a = json_object_get(o, "command"), *v;
	size_t i;

	if (a == NULL || json_is_null(a))
		return 0;
	if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > 64)
		return p11km_fail(P11KM_ERR_INPUT, "CA profile '%s': \"command\" is not an array of "
		                  "1 to 64 strings", path);
	if ((p->command = calloc(json_array_size(a) + 1, sizeof(*p->command))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) || (i == 0 && json_string_value(v)[0] != '/'))
			return p11km_fail(P11KM_ERR_INPUT, "CA profile '%s': \"command\" must be strings, "
			                  "the first an absolute path", path);
		if ((p->command[i] = strdup(json_string_value(v))) == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		p->n_command = i + 1;
	}
	return 0;
}

int
p11km_ca_profile_load(const char *dir, const char *name, struct p11km_ca_profile **out)
{
	struct p11km_ca_profile *p = NULL;
	unsigned char *data = NULL;
	size_t len = 0;
	char *path = NULL, *kind = NULL;
	json_error_t je;
	json_t *o = NULL, *v;
	int r;

	*out = NULL;
	if ((r = p11km_ca_name_check(name)) < 0)
		return r;
	if ((path = profile_path(dir, name)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		r = p11km_fail(P11KM_ERR_NOTFOUND, "no CA profile '%s' in '%s'; see 'p11km ca list'",
		               name, dir);
		goto out;
	}
	if ((r = p11km_read_file(path, 65536, &data, &len)) < 0)
		goto out;
	if ((o = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je)) == NULL ||
	    !json_is_object(o)) {
		r = p11km_fail(P11KM_ERR_INPUT, "CA profile '%s' is not a JSON object (line %d: %s)",
		               path, je.line, je.text);
		goto out;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL || (p->name = strdup(name)) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = opt_string(o, "kind", &kind, path)) < 0 ||
	    (r = opt_string(o, "directory", &p->directory, path)) < 0 ||
	    (r = opt_string(o, "ca_file", &p->ca_file, path)) < 0 ||
	    (r = opt_string(o, "contact", &p->contact, path)) < 0 ||
	    (r = opt_string(o, "account_key", &p->account_key, path)) < 0 ||
	    (r = opt_string(o, "eab_kid", &p->eab_kid, path)) < 0 ||
	    (r = opt_string(o, "eab_hmac_source", &p->eab_hmac_source, path)) < 0)
		goto out;
	if ((r = opt_string(o, "url", &p->url, path)) < 0 ||
	    (r = opt_string(o, "template", &p->template_name, path)) < 0 ||
	    (r = opt_string(o, "auth", &p->auth, path)) < 0 ||
	    (r = opt_string(o, "user", &p->user, path)) < 0 ||
	    (r = opt_string(o, "password_source", &p->password_source, path)) < 0 ||
	    (r = command_load(o, p, path)) < 0)
		goto out;
	if ((r = opt_string(o, "recipient", &p->recipient, path)) < 0 ||
	    (r = opt_string(o, "ref", &p->ref, path)) < 0 ||
	    (r = opt_string(o, "secret", &p->secret, path)) < 0 ||
	    (r = opt_string(o, "cert", &p->cert, path)) < 0 ||
	    (r = opt_string(o, "key", &p->key, path)) < 0 ||
	    (r = opt_string(o, "cmd", &p->cmd, path)) < 0)
		goto out;
	p->insecure_http = json_is_true(json_object_get(o, "insecure_http"));
	if (kind == NULL) {
		r = p11km_fail(P11KM_ERR_INPUT, "CA profile '%s' has no \"kind\"", path);
		goto out;
	}
	if ((r = p11km_ca_kind_find(kind, &p->kind)) < 0)
		goto out;
	p->agree_tos = json_is_true(json_object_get(o, "agree_tos"));
	if ((v = json_object_get(o, "timeout")) != NULL && json_is_integer(v))
		p->timeout = (long)json_integer_value(v);
	*out = p;
	p = NULL;
out:
	json_decref(o);
	p11km_ca_profile_free(p);
	free(kind);
	free(data);
	free(path);
	return r;
}

char *
p11km_ca_profile_json(const struct p11km_ca_profile *p)
{
	json_t *o = json_object();
	char *s;

	if (o == NULL)
		return NULL;
	json_object_set_new(o, "kind", json_string(p->kind->name));
	if (p->directory)
		json_object_set_new(o, "directory", json_string(p->directory));
	if (p->n_command > 0) {
		json_t *a = json_array();
		for (size_t i = 0; i < p->n_command; i++)
			json_array_append_new(a, json_string(p->command[i]));
		json_object_set_new(o, "command", a);
	}
	if (p->url)
		json_object_set_new(o, "url", json_string(p->url));
	if (p->template_name)
		json_object_set_new(o, "template", json_string(p->template_name));
	if (p->auth)
		json_object_set_new(o, "auth", json_string(p->auth));
	if (p->user)
		json_object_set_new(o, "user", json_string(p->user));
	if (p->password_source)
		json_object_set_new(o, "password_source", json_string(p->password_source));
	if (p->insecure_http)
		json_object_set_new(o, "insecure_http", json_true());
	if (p->ca_file)
		json_object_set_new(o, "ca_file", json_string(p->ca_file));
	if (p->contact)
		json_object_set_new(o, "contact", json_string(p->contact));
	if (p->account_key)
		json_object_set_new(o, "account_key", json_string(p->account_key));
	if (p->recipient)
		json_object_set_new(o, "recipient", json_string(p->recipient));
	if (p->ref)
		json_object_set_new(o, "ref", json_string(p->ref));
	if (p->secret)
		json_object_set_new(o, "secret", json_string(p->secret));
	if (p->cert)
		json_object_set_new(o, "cert", json_string(p->cert));
	if (p->key)
		json_object_set_new(o, "key", json_string(p->key));
	if (p->cmd)
		json_object_set_new(o, "cmd", json_string(p->cmd));
	if (p->eab_kid)
		json_object_set_new(o, "eab_kid", json_string(p->eab_kid));
	if (p->eab_hmac_source)
		json_object_set_new(o, "eab_hmac_source", json_string(p->eab_hmac_source));
	json_object_set_new(o, "agree_tos", json_boolean(p->agree_tos));
	if (p->timeout > 0)
		json_object_set_new(o, "timeout", json_integer(p->timeout));
	s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

int
p11km_ca_profile_save(const char *dir, const struct p11km_ca_profile *p, int replace)
{
	char *path = NULL, *text = NULL, *nl = NULL;
	int r;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return p11km_fail(P11KM_ERR_IO, "cannot create '%s': %s", dir, strerror(errno));
	if ((path = profile_path(dir, p->name)) == NULL || (text = p11km_ca_profile_json(p)) == NULL ||
	    (nl = p11km_asprintf("%s\n", text)) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (!replace && access(path, F_OK) == 0) {
		r = p11km_fail(P11KM_ERR_EXISTS, "CA profile '%s' exists already ('%s'); remove it "
		               "first or give --force", p->name, path);
		goto out;
	}
	r = p11km_write_file_atomic(path, nl, strlen(nl), 0600);
out:
	free(nl);
	free(text);
	free(path);
	return r;
}

int
p11km_ca_profile_remove(const char *dir, const char *name)
{
	char *path;
	int r = 0;

	if ((r = p11km_ca_name_check(name)) < 0)
		return r;
	if ((path = profile_path(dir, name)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (access(path, F_OK) != 0) {
		r = errno == ENOENT ? p11km_fail(P11KM_ERR_NOTFOUND, "no CA profile '%s' in '%s'",
		                                 name, dir)
		                    : p11km_fail(P11KM_ERR_IO, "cannot remove '%s': %s", path,
		                                 strerror(errno));
	} else {
		r = p11km_remove_file(path); /* in the audit trail */
	}
	free(path);
	return r;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
p11km_ca_profile_names(const char *dir, char ***names, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **v = NULL;
	size_t k = 0;

	*names = NULL;
	*n = 0;
	if (d == NULL)
		return errno == ENOENT ? 0 : p11km_fail(P11KM_ERR_IO, "cannot read '%s': %s", dir,
		                                        strerror(errno));
	while ((e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		char **nv;
		if (l <= 5 || strcmp(e->d_name + l - 5, ".json") != 0 || e->d_name[0] == '.')
			continue;
		if ((nv = realloc(v, (k + 2) * sizeof(*v))) == NULL ||
		    (nv[k] = strndup(e->d_name, l - 5)) == NULL) {
			if (nv != NULL)
				v = nv;
			for (size_t i = 0; i < k; i++)
				free(v[i]);
			free(v);
			closedir(d);
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		}
		v = nv;
		v[++k] = NULL;
	}
	closedir(d);
	if (k > 0)
		qsort(v, k, sizeof(*v), cmp_str);
	*names = v;
	*n = k;
	return 0;
}
