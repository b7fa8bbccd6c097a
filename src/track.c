/* track.c: tracked certificates: the entries in the state directory, when
 * a certificate is due, the PIN files an entry may name. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "p11km/track.h"
#include "p11km/util.h"

static const char *const step_names[] = { "idle", "requested", "waiting", "issued", "installed",
                                          "reloaded" };

const char *
p11km_track_step_name(enum p11km_track_step s)
{
	return (size_t)s < sizeof(step_names) / sizeof(step_names[0]) ? step_names[s] : "?";
}

int
p11km_track_id_check(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n > 64 || id[0] == '.' || id[0] == '-' ||
	    strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n ||
	    (n > 2 && strcmp(id + n - 2, ".d") == 0))
		return p11km_fail(P11KM_ERR_USAGE, "tracking id '%s': use 1 to 64 letters, digits, "
		                  "'.', '_' or '-', not starting with '.' or '-' nor ending in '.d'",
		                  id);
	return 0;
}

char *
p11km_track_path(const char *dir, const char *id)
{
	return p11km_asprintf("%s/track/%s.json", dir, id);
}

char *
p11km_track_work(const char *dir, const char *id, const char *name)
{
	return name ? p11km_asprintf("%s/track/%s.d/%s", dir, id, name)
	            : p11km_asprintf("%s/track/%s.d", dir, id);
}

void
p11km_track_free(struct p11km_track *t)
{
	if (t == NULL)
		return;
	free(t->id);
	free(t->cert);
	free(t->module);
	free(t->pin_source);
	free(t->ca);
	free(t->ca_file);
	free(t->standalone);
	free(t->webroot);
	free(t->old_key_id);
	free(t->rekey);
	for (size_t i = 0; i < t->n_bind; i++)
		free(t->bind[i]);
	for (size_t i = 0; i < t->n_reload; i++)
		free(t->reload[i]);
	free(t->verify);
	free(t->server_name);
	free(t->old_serial);
	free(t->old_sha256);
	free(t->new_serial);
	free(t->old_chain);
	free(t->last_result);
	free(t->last_error);
	free(t->ari_serial);
	free(t->ari_ca);
	free(t);
}

/* --- JSON ------------------------------------------------------------------------ */

static void
set_str(json_t *o, const char *key, const char *v)
{
	if (v != NULL)
		json_object_set_new(o, key, json_string(v));
}

static json_t *
str_array(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

char *
p11km_track_json(const struct p11km_track *t)
{
	json_t *o = json_object(), *st = json_object();
	char *s;

	if (o == NULL || st == NULL) {
		json_decref(o);
		json_decref(st);
		return NULL;
	}
	set_str(o, "id", t->id);
	set_str(o, "cert", t->cert);
	set_str(o, "module", t->module);
	set_str(o, "pin_source", t->pin_source);
	set_str(o, "ca", t->ca);
	set_str(o, "ca_file", t->ca_file);
	set_str(o, "standalone", t->standalone);
	set_str(o, "webroot", t->webroot);
	if (t->before_days >= 0)
		json_object_set_new(o, "renew_before_days", json_integer(t->before_days));
	if (t->before_pct >= 0)
		json_object_set_new(o, "renew_before_percent", json_integer(t->before_pct));
	set_str(o, "rekey", t->rekey ? t->rekey : "never");
	json_object_set_new(o, "bind", str_array(t->bind, t->n_bind));
	json_object_set_new(o, "reload", str_array(t->reload, t->n_reload));
	set_str(o, "verify", t->verify);
	set_str(o, "server_name", t->server_name);
	if (t->prune_days != P11KM_TRACK_PRUNE_DEFAULT)
		json_object_set_new(o, "prune_after_days", json_integer(t->prune_days));
	set_str(st, "step", p11km_track_step_name(t->step));
	set_str(st, "old_serial", t->old_serial);
	set_str(st, "old_sha256", t->old_sha256);
	set_str(st, "old_key_id", t->old_key_id);
	set_str(st, "new_serial", t->new_serial);
	set_str(st, "old_chain", t->old_chain);
	set_str(st, "last_result", t->last_result);
	set_str(st, "last_error", t->last_error);
	json_object_set_new(st, "attempts", json_integer(t->attempts));
	json_object_set_new(st, "next_attempt", json_integer((json_int_t)t->next_attempt));
	json_object_set_new(st, "last_run", json_integer((json_int_t)t->last_run));
	json_object_set_new(st, "last_renewed", json_integer((json_int_t)t->last_renewed));
	if (t->prune_at != 0)
		json_object_set_new(st, "prune_at", json_integer((json_int_t)t->prune_at));
	if (t->ari_serial != NULL) {
		set_str(st, "ari_serial", t->ari_serial);
		set_str(st, "ari_ca", t->ari_ca);
		json_object_set_new(st, "ari_start", json_integer((json_int_t)t->ari_start));
		json_object_set_new(st, "ari_end", json_integer((json_int_t)t->ari_end));
		json_object_set_new(st, "ari_renew_at", json_integer((json_int_t)t->ari_renew_at));
		json_object_set_new(st, "ari_next_check", json_integer((json_int_t)t->ari_next_check));
	}
	json_object_set_new(o, "state", st);
	s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return s;
}

static int
get_str(json_t *o, const char *key, char **out, const char *path)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return p11km_fail(P11KM_ERR_INPUT, "tracking file '%s': \"%s\" is not a string", path,
		                  key);
	if ((*out = strdup(json_string_value(v))) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	return 0;
}

static int
get_strs(json_t *o, const char *key, char **v, size_t *n, size_t max, const char *path)
{
	json_t *a = json_object_get(o, key), *e;
	size_t i;

	*n = 0;
	if (a == NULL)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > max)
		return p11km_fail(P11KM_ERR_INPUT, "tracking file '%s': \"%s\" is not an array of at "
		                  "most %zu strings", path, key, max);
	json_array_foreach(a, i, e) {
		if (!json_is_string(e))
			return p11km_fail(P11KM_ERR_INPUT, "tracking file '%s': \"%s\" holds a "
			                  "non-string", path, key);
		if ((v[*n] = strdup(json_string_value(e))) == NULL)
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		(*n)++;
	}
	return 0;
}

static long long
get_int(json_t *o, const char *key, long long dflt)
{
	json_t *v = json_object_get(o, key);

	return v != NULL && json_is_integer(v) ? json_integer_value(v) : dflt;
}

static int
from_json(json_t *o, const char *path, struct p11km_track *t)
{
	json_t *st = json_object_get(o, "state");
	char *step = NULL;
	int r;

	if ((r = get_str(o, "id", &t->id, path)) < 0 || (r = get_str(o, "cert", &t->cert, path)) < 0 ||
	    (r = get_str(o, "module", &t->module, path)) < 0 ||
	    (r = get_str(o, "pin_source", &t->pin_source, path)) < 0 ||
	    (r = get_str(o, "ca", &t->ca, path)) < 0 || (r = get_str(o, "rekey", &t->rekey, path)) < 0 ||
	    (r = get_str(o, "ca_file", &t->ca_file, path)) < 0 ||
	    (r = get_str(o, "standalone", &t->standalone, path)) < 0 ||
	    (r = get_str(o, "webroot", &t->webroot, path)) < 0 ||
	    (r = get_strs(o, "bind", t->bind, &t->n_bind, P11KM_TRACK_MAX_BIND, path)) < 0 ||
	    (r = get_strs(o, "reload", t->reload, &t->n_reload, P11KM_TRACK_MAX_ARGV, path)) < 0 ||
	    (r = get_str(o, "verify", &t->verify, path)) < 0 ||
	    (r = get_str(o, "server_name", &t->server_name, path)) < 0)
		return r;
	if (t->id == NULL || t->cert == NULL)
		return p11km_fail(P11KM_ERR_INPUT, "tracking file '%s' has no \"id\" or \"cert\"", path);
	t->before_days = (int)get_int(o, "renew_before_days", -1);
	t->before_pct = (int)get_int(o, "renew_before_percent", -1);
	t->prune_days = (int)get_int(o, "prune_after_days", P11KM_TRACK_PRUNE_DEFAULT);
	if ((t->prune_days < P11KM_TRACK_PRUNE_NEVER && t->prune_days != P11KM_TRACK_PRUNE_DEFAULT) ||
	    t->prune_days > 3650)
		return p11km_fail(P11KM_ERR_INPUT, "tracking file '%s': \"prune_after_days\" is "
		                  "not -1 (never) or 0 to 3650", path);
	if (st == NULL || !json_is_object(st))
		return 0;
	if ((r = get_str(st, "step", &step, path)) < 0)
		return r;
	for (size_t i = 0; step != NULL && i < sizeof(step_names) / sizeof(step_names[0]); i++)
		if (strcmp(step, step_names[i]) == 0)
			t->step = (enum p11km_track_step)i;
	free(step);
	if ((r = get_str(st, "old_serial", &t->old_serial, path)) < 0 ||
	    (r = get_str(st, "old_sha256", &t->old_sha256, path)) < 0 ||
	    (r = get_str(st, "old_key_id", &t->old_key_id, path)) < 0 ||
	    (r = get_str(st, "new_serial", &t->new_serial, path)) < 0 ||
	    (r = get_str(st, "old_chain", &t->old_chain, path)) < 0 ||
	    (r = get_str(st, "last_result", &t->last_result, path)) < 0 ||
	    (r = get_str(st, "last_error", &t->last_error, path)) < 0)
		return r;
	t->attempts = (long)get_int(st, "attempts", 0);
	t->next_attempt = (time_t)get_int(st, "next_attempt", 0);
	t->last_run = (time_t)get_int(st, "last_run", 0);
	t->last_renewed = (time_t)get_int(st, "last_renewed", 0);
	t->prune_at = (time_t)get_int(st, "prune_at", 0);
	if ((r = get_str(st, "ari_serial", &t->ari_serial, path)) < 0 ||
	    (r = get_str(st, "ari_ca", &t->ari_ca, path)) < 0)
		return r;
	t->ari_start = (time_t)get_int(st, "ari_start", 0);
	t->ari_end = (time_t)get_int(st, "ari_end", 0);
	t->ari_renew_at = (time_t)get_int(st, "ari_renew_at", 0);
	t->ari_next_check = (time_t)get_int(st, "ari_next_check", 0);
	return 0;
}

int
p11km_track_load(const char *dir, const char *id, struct p11km_track **out)
{
	struct p11km_track *t = NULL;
	unsigned char *data = NULL;
	size_t len = 0;
	char *path = NULL;
	json_error_t je;
	json_t *o = NULL;
	int r;

	*out = NULL;
	if ((r = p11km_track_id_check(id)) < 0)
		return r;
	if ((path = p11km_track_path(dir, id)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		r = p11km_fail(P11KM_ERR_NOTFOUND, "no tracked certificate '%s' in '%s/track'; see "
		               "'p11km track list'", id, dir);
		goto out;
	}
	if ((r = p11km_read_file(path, 1u << 16, &data, &len)) < 0)
		goto out;
	if ((o = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je)) == NULL ||
	    !json_is_object(o)) {
		r = p11km_fail(P11KM_ERR_INPUT, "tracking file '%s' is not a JSON object (line %d: %s)",
		               path, je.line, je.text);
		goto out;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if ((r = from_json(o, path, t)) < 0)
		goto out;
	if (strcmp(t->id, id) != 0) {
		r = p11km_fail(P11KM_ERR_INPUT, "tracking file '%s' is for id '%s'", path, t->id);
		goto out;
	}
	*out = t;
	t = NULL;
out:
	p11km_track_free(t);
	json_decref(o);
	free(data);
	free(path);
	return r;
}

static int
mkdir_0700(const char *path)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return p11km_fail(P11KM_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
	return 0;
}

int
p11km_track_save(const char *dir, const struct p11km_track *t)
{
	char *tdir = p11km_asprintf("%s/track", dir), *path = p11km_track_path(dir, t->id);
	char *text = p11km_track_json(t), *nl = text ? p11km_asprintf("%s\n", text) : NULL;
	int r;

	if (tdir == NULL || path == NULL || nl == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	else if ((r = mkdir_0700(dir)) == 0 && (r = mkdir_0700(tdir)) == 0)
		r = p11km_write_file_atomic(path, nl, strlen(nl), 0600);
	free(tdir);
	free(path);
	free(text);
	free(nl);
	return r;
}

int
p11km_track_remove(const char *dir, const char *id)
{
	char *path = p11km_track_path(dir, id), *wd = p11km_track_work(dir, id, NULL);
	DIR *d;
	struct dirent *e;
	int r = 0;

	if (path == NULL || wd == NULL) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	if (unlink(path) != 0) {
		r = errno == ENOENT ? p11km_fail(P11KM_ERR_NOTFOUND, "no tracked certificate '%s'", id)
		                    : p11km_fail(P11KM_ERR_IO, "cannot remove '%s': %s", path,
		                                 strerror(errno));
		goto out;
	}
	if ((d = opendir(wd)) != NULL) {
		while ((e = readdir(d)) != NULL)
			if (e->d_name[0] != '.')
				(void)unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
		(void)rmdir(wd);
	}
out:
	free(path);
	free(wd);
	return r;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
p11km_track_ids(const char *dir, char ***ids, size_t *n)
{
	char *tdir = p11km_asprintf("%s/track", dir);
	char **v = NULL;
	size_t k = 0;
	DIR *d;
	struct dirent *e;
	int r = 0;

	*ids = NULL;
	*n = 0;
	if (tdir == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if ((d = opendir(tdir)) == NULL) {
		r = errno == ENOENT ? 0 : p11km_fail(P11KM_ERR_IO, "cannot read '%s': %s", tdir,
		                                     strerror(errno));
		free(tdir);
		return r;
	}
	while (r == 0 && (e = readdir(d)) != NULL) {
		size_t l = strlen(e->d_name);
		char **nv;
		if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0 || e->d_name[0] == '.')
			continue;
		if ((nv = realloc(v, (k + 2) * sizeof(*v))) == NULL ||
		    (nv[k] = strndup(e->d_name, l - 5)) == NULL) {
			if (nv != NULL)
				v = nv;
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			break;
		}
		v = nv;
		v[++k] = NULL;
	}
	closedir(d);
	free(tdir);
	if (r < 0) {
		for (size_t i = 0; i < k; i++)
			free(v[i]);
		free(v);
		return r;
	}
	if (k > 0)
		qsort(v, k, sizeof(*v), cmp_str);
	*ids = v;
	*n = k;
	return 0;
}

/* --- policy ---------------------------------------------------------------------- */

int
p11km_track_before_parse(const char *s, int *days, int *pct)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	*days = *pct = -1;
	if (errno != 0 || end == s || v < 0 || (*end != '\0' && strcmp(end, "%") != 0) ||
	    (*end == '%' && (v < 1 || v > 99)) || (*end == '\0' && v > 3650))
		return p11km_fail(P11KM_ERR_USAGE, "--renew-before '%s': give DAYS (0-3650) or "
		                  "PERCENT%% of the lifetime (1-99%%)", s);
	if (*end == '%')
		*pct = (int)v;
	else
		*days = (int)v;
	return 0;
}

int
p11km_track_prune_days(const struct p11km_track *t)
{
	return t->prune_days == P11KM_TRACK_PRUNE_DEFAULT ? 30 : t->prune_days;
}

int
p11km_track_prune_parse(const char *s, int *days)
{
	char *end;
	long v;

	if (strcmp(s, "never") == 0) {
		*days = P11KM_TRACK_PRUNE_NEVER;
		return 0;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > 3650)
		return p11km_fail(P11KM_ERR_USAGE, "--prune-after '%s': give DAYS (0-3650) or never",
		                  s);
	*days = (int)v;
	return 0;
}

time_t
p11km_track_due(const struct p11km_track *t, time_t not_before, time_t not_after)
{
	double life = difftime(not_after, not_before);
	int days = t->before_days, pct = t->before_pct;
	time_t by_days, by_pct;

	if (days < 0 && pct < 0) {
		days = 30;
		pct = 33;
	}
	if (life < 0)
		life = 0;
	by_days = days >= 0 ? not_after - (time_t)days * 86400 : not_after;
	by_pct = pct >= 0 ? not_after - (time_t)(life * pct / 100.0) : not_after;
	/* ARI (RFC 9773): op-renew.c moves this earlier to the time it chose in
	 * the CA's window */
	return by_days < by_pct ? by_days : by_pct;
}

int
p11km_track_pin_check(const char *spec)
{
	const char *path;
	struct stat st;
	int fd;

	if (spec == NULL || strncmp(spec, "file:", 5) != 0) {
		if (spec != NULL && strcmp(spec, "prompt") == 0)
			return p11km_fail(P11KM_ERR_USAGE, "a tracked certificate is renewed unattended: "
			                  "--pin-source prompt cannot be kept; give file:PATH");
		if (spec != NULL && strncmp(spec, "fd:", 3) == 0)
			return p11km_fail(P11KM_ERR_USAGE, "--pin-source fd:N cannot be kept for later "
			                  "runs; give file:PATH or env:VAR");
		return 0;
	}
	path = spec + 5;
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return p11km_fail(P11KM_ERR_INPUT, "PIN file '%s': %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		close(fd);
		return p11km_fail(P11KM_ERR_IO, "PIN file '%s': %s", path, strerror(errno));
	}
	close(fd);
	if (!S_ISREG(st.st_mode))
		return p11km_fail(P11KM_ERR_INPUT, "PIN file '%s' is not a regular file", path);
	if (st.st_uid != geteuid())
		return p11km_fail(P11KM_ERR_INPUT, "PIN file '%s' belongs to another user (uid %u); "
		                  "a tracked PIN file must be this user's", path, (unsigned)st.st_uid);
	if ((st.st_mode & 07777) != 0600 && (st.st_mode & 07777) != 0400)
		return p11km_fail(P11KM_ERR_INPUT, "PIN file '%s' has mode %04o; a tracked PIN file "
		                  "must be 0600 or 0400 (chmod 600 '%s')", path,
		                  (unsigned)(st.st_mode & 07777), path);
	return 0;
}

long
p11km_track_backoff(long n)
{
	long s = 300;

	for (long i = 1; i < n && s < 86400; i++)
		s *= 2;
	return s < 86400 ? s : 86400;
}
