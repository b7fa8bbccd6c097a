/* p11-learn.c: what probing taught p11km about a token family (a template
 * attribute its module refuses, ...).  The profile explains, probing
 * decides, and what probing found is recorded: a note in the run that
 * learned it and one line in STATE/learned/<family> (P11KM_STATE_DIR,
 * default /var/lib/p11km), which 'token doctor' shows.  Recording is best
 * effort: a state directory that cannot be written costs a verbose line,
 * never the command. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <p11-kit/p11-kit.h>

#include "p11km/p11.h"
#include "p11km/util.h"

#define LEARNED_MAX 16384 /* a learned file is a few lines; more is not ours */

/* STATE/learned/MODULE_MANUFACTURER_MODEL, every byte outside [A-Za-z0-9.-]
 * as '_'; with mk the directories are made (0700). */
static char *
learned_path(const struct p11km_token *tok, int mk)
{
	char *modfile = p11_kit_module_get_filename(tok->f);
	const char *base = modfile ? strrchr(modfile, '/') : NULL;
	char *dir = p11km_asprintf("%s/learned", p11km_state_root());
	char *name = p11km_asprintf("%s_%s_%s", base ? base + 1 : modfile ? modfile : "module",
	                            tok->manufacturer, tok->model);
	char *path = NULL;

	free(modfile);
	if (dir == NULL || name == NULL)
		goto out;
	for (char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
			*p = '_';
	if (mk && ((mkdir(p11km_state_root(), 0700) < 0 && errno != EEXIST) ||
	           (mkdir(dir, 0700) < 0 && errno != EEXIST)))
		goto out;
	path = p11km_asprintf("%s/%s", dir, name);
out:
	free(dir);
	free(name);
	return path;
}

void
p11km_learned(const struct p11km_token *tok, const char *what, const char *fmt, ...)
{
	char text[512];
	char *line = NULL, *path = NULL;
	unsigned char *old = NULL;
	size_t old_len = 0;
	va_list ap;
	int fd = -1;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if ((line = p11km_asprintf("%s: %s\n", what, text)) == NULL)
		return;
	if ((path = learned_path(tok, 1)) == NULL) {
		p11km_note("token '%s': %s (not recorded: no state directory %s)", tok->label, text,
		           p11km_state_root());
		goto out;
	}
	if (p11km_read_file(path, LEARNED_MAX, &old, &old_len) == 0) {
		/* known already: quiet (a --verbose line) */
		size_t ll = strlen(line);
		for (size_t i = 0; i + ll <= old_len; i++) {
			if ((i == 0 || old[i - 1] == '\n') && memcmp(old + i, line, ll) == 0) {
				p11km_verbose("token '%s': %s (known: %s)", tok->label, text, path);
				goto out;
			}
		}
	}
	p11km_error_clear();
	p11km_note("token '%s': %s (recorded in %s; 'p11km token doctor' shows it)", tok->label,
	           text, path);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || p11km_write_all(fd, line, strlen(line)) < 0) {
		p11km_verbose("cannot record it in %s: %s", path, strerror(errno));
		p11km_error_clear();
	}
out:
	if (fd >= 0)
		close(fd);
	free(old);
	free(path);
	free(line);
}

int
p11km_learned_read(const struct p11km_token *tok, char **text)
{
	char *path = learned_path(tok, 0);
	unsigned char *buf = NULL;
	size_t len = 0;
	int r;

	*text = NULL;
	if (path == NULL)
		return p11km_fail(P11KM_ERR_NOMEM, "out of memory");
	r = p11km_read_file(path, LEARNED_MAX, &buf, &len);
	free(path);
	if (r < 0) {
		/* nothing learned yet (or unreadable): nothing to show */
		p11km_error_clear();
		return 0;
	}
	*text = buf ? p11km_strndup_trim((const char *)buf, len) : NULL;
	free(buf);
	return 0;
}
