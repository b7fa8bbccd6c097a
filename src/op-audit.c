/* op-audit.c: the audit trail read back ('audit show'): the records of
 * the log util-audit.c writes, from a time on, one by one to the caller
 * (the log is streamed, never held whole). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "p11km/audit.h"
#include "p11km/op.h"
#include "p11km/util.h"

/* "2026-12-01[THH:MM[:SS[.mmm]]][Z]" (UTC) as seconds since the epoch; -1
 * when it is not one. */
static long long
parse_time(const char *s)
{
	struct tm tm = { 0 };
	int y, mo, d, h = 0, mi = 0, sec = 0, n = 0, k;

	if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
		return -1;
	s += n;
	if (*s == 'T' || *s == ' ') {
		if (sscanf(s + 1, "%2d:%2d%n", &h, &mi, &k) != 2 || k != 5)
			return -1;
		s += 1 + k;
		if (*s == ':') {
			if (sscanf(s + 1, "%2d%n", &sec, &k) != 1 || k != 2)
				return -1;
			s += 1 + k;
			if (*s == '.')
				for (s++; isdigit((unsigned char)*s); s++)
					;
		}
	}
	if (*s == 'Z')
		s++;
	if (*s != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	return (long long)timegm(&tm);
}

int
p11km_audit_since(const char *s, long long *out)
{
	char *end;
	long long n;

	if (isdigit((unsigned char)s[0]) && (n = strtoll(s, &end, 10)) >= 0 && end[0] != '\0' &&
	    end[1] == '\0' && strchr("smhd", end[0]) != NULL && n < 100000000) {
		long long unit = end[0] == 's' ? 1 : end[0] == 'm' ? 60 : end[0] == 'h' ? 3600 : 86400;
		*out = (long long)time(NULL) - n * unit;
		return 0;
	}
	if ((*out = parse_time(s)) >= 0)
		return 0;
	return p11km_fail(P11KM_ERR_USAGE, "--since '%s': not a time (2026-12-01, "
	                  "2026-12-01T10:00:00Z) nor a span ago (90m, 12h, 7d)", p11km_esc(s));
}

int
p11km_audit_show(const struct p11km_audit_show_opts *o, struct p11km_audit_show_result *res)
{
	const char *path;
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t len;
	FILE *fp;
	int r = 0;

	memset(res, 0, sizeof(*res));
	if (p11km_audit_is_syslog())
		return p11km_fail(P11KM_ERR_USAGE, "the audit trail goes to syslog: read it with "
		                  "'journalctl -t p11km' (or in /var/log/auth.log)");
	if ((path = p11km_audit_path()) == NULL)
		return p11km_fail(P11KM_ERR_USAGE, "no audit log (neither HOME nor --audit-log is set)");
	if ((fp = fopen(path, "re")) == NULL) {
		if (errno != ENOENT)
			return p11km_fail(P11KM_ERR_IO, "unable to read the audit log '%s': %s", path,
			                  strerror(errno));
		p11km_note("no change is recorded in '%s' yet", path);
		return 0;
	}
	while (r >= 0 && (len = getline(&line, &cap, fp)) >= 0) {
		json_t *rec;
		const char *t;
		lineno++;
		if ((rec = json_loadb(line, (size_t)len, JSON_DISABLE_EOF_CHECK, NULL)) == NULL ||
		    !json_is_object(rec)) {
			/* a line cut by a crash or a full disk: said, not hidden */
			p11km_warn("line %zu of '%s' is not an audit record (skipped)", lineno, path);
			res->skipped++;
			json_decref(rec);
			continue;
		}
		t = json_string_value(json_object_get(rec, "time"));
		if (o->since < 0 || parse_time(t ? t : "") >= o->since) {
			r = o->each(o->arg, rec);
			res->shown++;
		}
		json_decref(rec);
	}
	free(line);
	fclose(fp);
	return r < 0 ? r : 0;
}
