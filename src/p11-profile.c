/* p11-profile.c: token profiles, one file per token family
 * (tokens/<family>/profile, format in doc/token-profiles.md). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p11km/profile.h"
#include "p11km/util.h"

#ifndef P11KM_PKGDATADIR
#define P11KM_PKGDATADIR "/usr/local/share/p11km"
#endif

/* The schema: every key a profile may carry.  Add a key here and in
 * doc/token-profiles.md together. */
const struct p11km_profile_key p11km_profile_keys[] = {
	{ "name", 1, 0, NULL },
	{ "description", 1, 0, NULL },
	{ "source", 1, 0, "tested vendor-docs" },
	{ "match-module", 0, 1, NULL },
	{ "match-manufacturer", 0, 1, NULL },
	{ "match-model", 0, 1, NULL },
	{ "module-path", 0, 1, NULL },
	{ "p11kit-name", 0, 0, NULL },
	{ "key-types", 1, 0, NULL },
	{ "ids", 1, 0, NULL },
	{ "labels", 1, 0, NULL },
	{ "certificates", 1, 0, "yes no read-only" },
	{ "trusted-objects", 1, 0, "yes no" },
	{ "login", 0, 1, NULL },
	{ "pin-length", 0, 0, NULL },
	{ "refused-mechanism", 0, 1, NULL },
	{ "engine", 1, 0, "yes no partial" },
	{ "trap", 0, 1, NULL },
	{ "quirk", 0, 1, NULL },
	{ NULL, 0, 0, NULL },
};

static const struct p11km_profile_key *
key_find(const char *k)
{
	for (const struct p11km_profile_key *s = p11km_profile_keys; s->key; s++)
		if (strcmp(s->key, k) == 0)
			return s;
	return NULL;
}

/* Is the first word of v one of the space-separated words of allowed? */
static int
value_allowed(const char *allowed, const char *v)
{
	size_t wl = strcspn(v, " \t");

	for (const char *a = allowed; *a; ) {
		size_t al = strcspn(a, " ");
		if (al == wl && strncmp(a, v, wl) == 0)
			return 1;
		a += al;
		a += *a == ' ';
	}
	return 0;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	for (e = s + strlen(s); e > s && strchr(" \t\r", e[-1]); e--)
		;
	*e = '\0';
	return s;
}

/* One line: "" or "# comment", or "key=value" with an optional trailing
 * " # comment".  Returns 1 for an entry, 0 for nothing, <0 on error. */
static int
parse_line(const char *path, unsigned ln, char *line, struct p11km_profile_entry *out)
{
	char *eq, *k, *v, *hash;
	const struct p11km_profile_key *s;

	for (char *c = line; *c; c++)
		if ((unsigned char)*c < 0x20 && *c != '\t')
			return p11km_fail(P11KM_ERR_INPUT, "%s:%u: a control character", path, ln);
	k = trim(line);
	if (*k == '\0' || *k == '#')
		return 0;
	if ((eq = strchr(k, '=')) == NULL)
		return p11km_fail(P11KM_ERR_INPUT, "%s:%u: not 'key=value'", path, ln);
	*eq = '\0';
	v = eq + 1;
	for (hash = v; (hash = strchr(hash, '#')) != NULL; hash++)
		if (hash > v && (hash[-1] == ' ' || hash[-1] == '\t')) {
			*hash = '\0';
			break;
		}
	k = trim(k);
	v = trim(v);
	if ((s = key_find(k)) == NULL)
		return p11km_fail(P11KM_ERR_INPUT, "%s:%u: unknown key '%s'", path, ln, k);
	if (*v == '\0')
		return p11km_fail(P11KM_ERR_INPUT, "%s:%u: '%s' has no value", path, ln, k);
	if (s->values && !value_allowed(s->values, v))
		return p11km_fail(P11KM_ERR_INPUT, "%s:%u: '%s' must begin with one of: %s", path,
		                  ln, k, s->values);
	out->key = strdup(k);
	out->value = strdup(v);
	out->line = ln;
	if (out->key == NULL || out->value == NULL) {
		free(out->key);
		free(out->value);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	return 1;
}

static int
schema_check(const struct p11km_profile *p)
{
	int matchers = 0;

	for (const struct p11km_profile_key *s = p11km_profile_keys; s->key; s++) {
		size_t n = 0;
		unsigned second = 0;
		for (size_t i = 0; i < p->n; i++)
			if (strcmp(p->e[i].key, s->key) == 0 && ++n == 2)
				second = p->e[i].line;
		if (s->required && n == 0)
			return p11km_fail(P11KM_ERR_INPUT, "%s: the required key '%s' is missing",
			                  p->path, s->key);
		if (!s->repeat && n > 1)
			return p11km_fail(P11KM_ERR_INPUT, "%s:%u: '%s' given twice", p->path, second,
			                  s->key);
		if (strncmp(s->key, "match-", 6) == 0)
			matchers += n > 0;
	}
	if (matchers == 0)
		return p11km_fail(P11KM_ERR_INPUT, "%s: no match-module, match-manufacturer or "
		                  "match-model: p11km cannot recognise the token", p->path);
	return 0;
}

void
p11km_profile_release(struct p11km_profile *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->e[i].key);
		free(p->e[i].value);
	}
	free(p->e);
	free(p->path);
	memset(p, 0, sizeof(*p));
}

int
p11km_profile_parse(const char *path, const char *text, size_t len, struct p11km_profile *out)
{
	struct p11km_profile p = { 0 };
	char *buf, *line;
	unsigned ln = 0;
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (memchr(text, '\0', len) != NULL)
		return p11km_fail(P11KM_ERR_INPUT, "%s: a NUL byte: not a profile", path);
	if ((buf = p11km_memdup(text, len + 1)) == NULL || (p.path = strdup(path)) == NULL) {
		free(buf);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	buf[len] = '\0';
	for (char *s = buf; r >= 0 && (line = strsep(&s, "\n")) != NULL; ) {
		struct p11km_profile_entry e;
		ln++;
		if (line[0] == '\0' && s == NULL)
			break;
		if ((r = parse_line(path, ln, line, &e)) <= 0)
			continue;
		struct p11km_profile_entry *ne = realloc(p.e, (p.n + 1) * sizeof(*ne));
		if (ne == NULL) {
			free(e.key);
			free(e.value);
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
			break;
		}
		p.e = ne;
		p.e[p.n++] = e;
		r = 0;
	}
	free(buf);
	if (r >= 0)
		r = schema_check(&p);
	if (r < 0) {
		p11km_profile_release(&p);
		return r;
	}
	*out = p;
	return 0;
}

int
p11km_profile_read(const char *path, struct p11km_profile *out)
{
	unsigned char *data = NULL;
	size_t len = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = p11km_read_file(path, 65536, &data, &len)) < 0)
		return r;
	r = p11km_profile_parse(path, (const char *)data, len, out);
	free(data);
	return r;
}

const char *
p11km_profile_nth(const struct p11km_profile *p, const char *key, size_t i)
{
	for (size_t k = 0; p && k < p->n; k++)
		if (strcmp(p->e[k].key, key) == 0 && i-- == 0)
			return p->e[k].value;
	return NULL;
}

const char *
p11km_profile_get(const struct p11km_profile *p, const char *key)
{
	return p11km_profile_nth(p, key, 0);
}

const char *
p11km_profiles_dir(void)
{
	const char *d = getenv("P11KM_TOKENS_DIR");

	return d && *d ? d : P11KM_PKGDATADIR "/tokens";
}

void
p11km_profiles_free(struct p11km_profile *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		p11km_profile_release(&v[i]);
	free(v);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The family directories under dir (sorted, malloc'ed). */
static int
families(const char *dir, char ***out, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	if (d == NULL)
		return p11km_fail(P11KM_ERR_IO, "cannot read the token profiles in '%s': %s "
		                  "(set P11KM_TOKENS_DIR)", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		char **nv;
		if (de->d_name[0] == '.')
			continue;
		if ((nv = realloc(v, (k + 1) * sizeof(*v))) == NULL ||
		    (nv[k] = strdup(de->d_name)) == NULL) {
			v = nv ? nv : v;
			closedir(d);
			while (k > 0)
				free(v[--k]);
			free(v);
			return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		}
		v = nv;
		k++;
	}
	closedir(d);
	if (k > 0)
		qsort(v, k, sizeof(*v), name_cmp);
	*out = v;
	*n = k;
	return 0;
}

int
p11km_profiles_load(const char *dir, struct p11km_profile **out, size_t *n)
{
	struct p11km_profile *v = NULL;
	char **names = NULL;
	size_t nn = 0, k = 0;
	int r;

	*out = NULL;
	*n = 0;
	if ((r = families(dir, &names, &nn)) < 0)
		return r;
	if (nn > 0 && (v = calloc(nn, sizeof(*v))) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	for (size_t i = 0; r >= 0 && i < nn; i++) {
		char *path = p11km_asprintf("%s/%s/profile", dir, names[i]);
		if (path == NULL) {
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		} else if (access(path, F_OK) == 0) {
			if ((r = p11km_profile_read(path, &v[k])) == 0) {
				const char *nm = p11km_profile_get(&v[k], "name");
				k++;
				if (strcmp(nm, names[i]) != 0)
					r = p11km_fail(P11KM_ERR_INPUT, "%s: name=%s, but the directory is "
					               "'%s'", path, nm, names[i]);
			}
		}
		free(path);
	}
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	if (r < 0) {
		p11km_profiles_free(v, k);
		return r;
	}
	*out = v;
	*n = k;
	return 0;
}

/* Does any value of key match s (fnmatch)?  -1 when the profile has no key. */
static int
any_match(const struct p11km_profile *p, const char *key, const char *s)
{
	const char *v;
	int have = 0;

	for (size_t i = 0; (v = p11km_profile_nth(p, key, i)) != NULL; i++) {
		have = 1;
		if (s != NULL && fnmatch(v, s, 0) == 0)
			return 1;
	}
	return have ? 0 : -1;
}

int
p11km_profile_match(const struct p11km_profile *p, const char *module_file,
                    const char *manufacturer, const char *model)
{
	const char *base = module_file ? strrchr(module_file, '/') : NULL;
	const char *keys[] = { "match-module", "match-manufacturer", "match-model" };
	const char *vals[] = { base ? base + 1 : module_file, manufacturer, model };
	int score = 0;

	for (size_t i = 0; i < 3; i++) {
		int m = any_match(p, keys[i], vals[i]);
		if (m == 0)
			return 0;
		score += m == 1;
	}
	return score;
}

const struct p11km_profile *
p11km_profile_best(const struct p11km_profile *v, size_t n, const char *module_file,
                   const char *manufacturer, const char *model)
{
	const struct p11km_profile *best = NULL;
	int bs = 0;

	for (size_t i = 0; i < n; i++) {
		int s = p11km_profile_match(&v[i], module_file, manufacturer, model);
		if (s > bs) {
			bs = s;
			best = &v[i];
		}
	}
	return best;
}
