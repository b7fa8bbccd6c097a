/* ca-pending.c: requests a CA holds ("come back later"): one small JSON
 * file per request under the state directory, written atomically, so that
 * 'req submit --poll' resumes after any crash. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/sha.h>

#include "p11km/ca.h"
#include "p11km/txn.h"
#include "p11km/util.h"

const char *
p11km_state_dir(const char *opt)
{
	return opt != NULL ? opt : p11km_state_root();
}

/* STATE/pending/CA-HASH.json; with mk, STATE and STATE/pending are made (0700). */
static int
pending_path(const char *state, const char *ca, const unsigned char *csr, size_t csr_len,
             int mk, char **out)
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	char *hex, *dir;
	int r;

	*out = NULL;
	if ((r = p11km_ca_name_check(ca)) < 0)
		return r;
	SHA256(csr, csr_len, md);
	if ((hex = p11km_hex(md, sizeof(md))) == NULL ||
	    (dir = p11km_asprintf("%s/pending", state)) == NULL) {
		free(hex);
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	}
	if (mk && ((mkdir(state, 0700) != 0 && errno != EEXIST) ||
	           (mkdir(dir, 0700) != 0 && errno != EEXIST)))
		r = p11km_fail(P11KM_ERR_IO, "cannot create the state directory '%s': %s", dir,
		               strerror(errno));
	else if ((*out = p11km_asprintf("%s/%s-%s.json", dir, ca, hex)) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	free(dir);
	free(hex);
	return r;
}

void
p11km_ca_pending_free(struct p11km_ca_pending *pd)
{
	if (pd == NULL)
		return;
	free(pd->ca);
	free(pd->cookie);
	free(pd->path);
	free(pd);
}

int
p11km_ca_pending_load(const char *state, const char *ca, const unsigned char *csr,
                      size_t csr_len, struct p11km_ca_pending **out)
{
	struct p11km_ca_pending *pd = NULL;
	unsigned char *data = NULL;
	size_t len = 0;
	char *path = NULL;
	json_t *o = NULL, *v;
	json_error_t je;
	int r;

	*out = NULL;
	if ((r = pending_path(state, ca, csr, csr_len, 0, &path)) < 0)
		return r;
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		r = p11km_fail(P11KM_ERR_NOTFOUND, "CA '%s' holds no pending request for this request "
		               "(no '%s'); submit it without --poll", ca, path);
		goto out;
	}
	if ((r = p11km_read_file(path, 65536, &data, &len)) < 0)
		goto out;
	o = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &je);
	v = o ? json_object_get(o, "cookie") : NULL;
	if (o == NULL || !json_is_object(o) || (v != NULL && !json_is_string(v) && !json_is_null(v))) {
		r = p11km_fail(P11KM_ERR_INPUT, "the pending state '%s' is not valid JSON with a string "
		               "\"cookie\"; remove it and submit again", path);
		goto out;
	}
	if ((pd = calloc(1, sizeof(*pd))) == NULL || (pd->ca = strdup(ca)) == NULL ||
	    (json_is_string(v) && (pd->cookie = strdup(json_string_value(v))) == NULL)) {
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
		goto out;
	}
	pd->delay = (long)json_integer_value(json_object_get(o, "delay"));
	pd->since = (long long)json_integer_value(json_object_get(o, "since"));
	pd->updated = (long long)json_integer_value(json_object_get(o, "updated"));
	pd->path = path;
	path = NULL;
	*out = pd;
	pd = NULL;
out:
	p11km_ca_pending_free(pd);
	json_decref(o);
	free(data);
	free(path);
	return r;
}

int
p11km_ca_pending_save(const char *state, const char *ca, const unsigned char *csr,
                      size_t csr_len, const char *cookie, long delay, long long since)
{
	char *path = NULL, *text = NULL;
	json_t *o;
	int r;

	if ((r = pending_path(state, ca, csr, csr_len, 1, &path)) < 0)
		return r;
	o = json_pack("{s:s,s:s?,s:I,s:I,s:I}", "ca", ca, "cookie", cookie, "delay",
	              (json_int_t)delay, "since", (json_int_t)(since ? since : (long long)time(NULL)),
	              "updated", (json_int_t)time(NULL));
	if (o == NULL || (text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL)
		r = p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	else
		r = p11km_write_file_atomic(path, text, strlen(text), 0600);
	json_decref(o);
	free(text);
	free(path);
	return r;
}

int
p11km_ca_pending_remove(const char *state, const char *ca, const unsigned char *csr,
                        size_t csr_len)
{
	char *path = NULL;
	int r;

	if ((r = pending_path(state, ca, csr, csr_len, 0, &path)) < 0)
		return r;
	r = p11km_remove_file(path); /* written atomically: removed as audited */
	free(path);
	return r;
}
