/* bind-refs.c: what the bindings under a directory reference (the key URI
 * and the certificate of each p11km-binding.conf), so that 'object delete'
 * never destroys what a server uses. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "p11km/bind.h"
#include "p11km/util.h"

static char *
value_of(char *line, const char *key)
{
	size_t kl = strlen(key), n;
	char *v;

	if (strncmp(line, key, kl) != 0)
		return NULL;
	v = line + kl;
	while (*v == ' ' || *v == '\t')
		v++;
	if (*v++ != '=')
		return NULL;
	while (*v == ' ' || *v == '\t')
		v++;
	n = strlen(v);
	while (n > 0 && (v[n - 1] == '\n' || v[n - 1] == '\r' || v[n - 1] == ' '))
		v[--n] = '\0';
	return v;
}

static int
read_manifest(const char *file, struct p11km_bind_refs *refs)
{
	struct p11km_bind_ref *v, ref = { 0 };
	char line[8192], *val;
	FILE *fp = fopen(file, "r");
	int r = 0;

	if (fp == NULL)
		return errno == ENOENT ? 0 : p11km_fail(P11KM_ERR_IO, "unable to read '%s': %s",
		                                        file, strerror(errno));
	while (r == 0 && fgets(line, sizeof(line), fp) != NULL) {
		char **slot = NULL;
		if ((val = value_of(line, "key")) != NULL)
			slot = &ref.key;
		else if ((val = value_of(line, "cert")) != NULL)
			slot = &ref.cert;
		if (slot != NULL) {
			free(*slot);
			if ((*slot = strdup(val)) == NULL)
				r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		}
	}
	fclose(fp);
	if (r == 0 && ref.key == NULL && ref.cert == NULL)
		return 0;
	if (r == 0 && (ref.manifest = strdup(file)) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (r == 0 && (v = realloc(refs->v, (refs->n + 1) * sizeof(*v))) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	if (r < 0) {
		free(ref.key);
		free(ref.cert);
		free(ref.manifest);
		return r;
	}
	refs->v = v;
	refs->v[refs->n++] = ref;
	return 0;
}

int
p11km_bind_refs_read(const char *dir, struct p11km_bind_refs *refs)
{
	struct stat st;
	char *file;
	DIR *d;
	int r;

	memset(refs, 0, sizeof(*refs));
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return p11km_fail(P11KM_ERR_USAGE, "--bindings '%s' is not a directory; give the "
		                  "directory that holds the bindings (bind emit --out-dir)", dir);
	if ((file = p11km_asprintf("%s/p11km-binding.conf", dir)) == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	r = read_manifest(file, refs);
	free(file);
	if (r < 0 || (d = opendir(dir)) == NULL)
		return r < 0 ? r : p11km_fail(P11KM_ERR_IO, "unable to read '%s': %s", dir,
		                              strerror(errno));
	for (struct dirent *de; r == 0 && (de = readdir(d)) != NULL;) {
		if (de->d_name[0] == '.')
			continue;
		if ((file = p11km_asprintf("%s/%s/p11km-binding.conf", dir, de->d_name)) == NULL)
			r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		else
			r = read_manifest(file, refs);
		free(file);
	}
	closedir(d);
	if (r < 0)
		p11km_bind_refs_release(refs);
	return r;
}

void
p11km_bind_refs_release(struct p11km_bind_refs *refs)
{
	for (size_t i = 0; i < refs->n; i++) {
		free(refs->v[i].manifest);
		free(refs->v[i].key);
		free(refs->v[i].cert);
	}
	free(refs->v);
	refs->v = NULL;
	refs->n = 0;
}
