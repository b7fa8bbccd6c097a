/* cmd-audit.c: 'audit show' (also plain 'p11km audit'): the audit trail,
 * every change p11km made to tokens and files (util-audit.c writes it). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "p11km/audit.h"
#include "p11km/cmd.h"
#include "p11km/util.h"

enum { O_SINCE = 1000 };

static const struct p11km_opt show_opts[] = {
	{ "since", 1, O_SINCE, "TIME",
	  "only changes from TIME on: 2026-12-01, 2026-12-01T10:00:00Z, or 90m, 12h, 7d ago" },
	{ NULL, 0, 0, NULL, NULL },
};

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

/* --since: a time, or "N[smhd]" ago. */
static int
parse_since(const char *s, long long *out)
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

static const char *
str(json_t *rec, const char *key)
{
	const char *v = json_string_value(json_object_get(rec, key));

	return v ? v : "";
}

/* One line of text: time, user, command, action, what, and why it failed. */
static void
print_text(json_t *rec)
{
	const char *what = str(rec, "object");
	json_t *nw = json_object_get(rec, "new");
	char hbuf[32];

	if (!*what)
		what = str(rec, "file");
	if (!*what && json_is_integer(json_object_get(rec, "handle"))) {
		snprintf(hbuf, sizeof(hbuf), "handle %lld",
		         (long long)json_integer_value(json_object_get(rec, "handle")));
		what = hbuf;
	}
	if (!*what)
		what = str(rec, "token");
	printf("%s %s '%s' %s%s %s", str(rec, "time"), str(rec, "user"), str(rec, "command"),
	       json_is_true(json_object_get(rec, "rollback")) ? "rollback:" : "",
	       str(rec, "action"), p11km_esc(what));
	if (json_string_value(json_object_get(nw, "label")) != NULL)
		printf(" label '%s'", p11km_esc(json_string_value(json_object_get(nw, "label"))));
	if (*str(rec, "error"))
		printf(" (failed: %s)", str(rec, "error"));
	printf("\n");
}

static int
cmd_audit_show(struct p11km_ctx *ctx, const struct p11km_cmd *cmd, int argc, char **argv)
{
	struct p11km_getopt g = { 0 };
	long long since = -1;
	const char *path;
	char *line = NULL;
	size_t cap = 0, lineno = 0, shown = 0;
	ssize_t len;
	FILE *fp;
	int c, r;

	while ((c = p11km_getopt(&g, cmd, argc, argv)) != -1) {
		if (c < 0)
			return c;
		if (c == O_SINCE && (r = parse_since(g.optarg, &since)) < 0)
			return r;
	}
	if ((r = p11km_check_args(cmd, argc - g.argi)) < 0)
		return r;
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
		if (ctx->json)
			printf("[]\n");
		return 0;
	}
	if (ctx->json)
		printf("[");
	while ((len = getline(&line, &cap, fp)) >= 0) {
		json_t *rec;
		lineno++;
		if ((rec = json_loadb(line, (size_t)len, JSON_DISABLE_EOF_CHECK, NULL)) == NULL ||
		    !json_is_object(rec)) {
			/* a line cut by a crash or a full disk: said, not hidden */
			p11km_warn("line %zu of '%s' is not an audit record (skipped)", lineno, path);
			json_decref(rec);
			continue;
		}
		if (since < 0 || parse_time(str(rec, "time")) >= since) {
			if (ctx->json) {
				char *t = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
				printf("%s\n%s", shown ? "," : "", t ? t : "{}");
				free(t);
			} else {
				print_text(rec);
			}
			shown++;
		}
		json_decref(rec);
	}
	if (ctx->json)
		printf("%s]\n", shown ? "\n" : "");
	free(line);
	fclose(fp);
	return 0;
}

const struct p11km_cmd p11km_cmds_audit[] = {
	{ "show", NULL, "print the audit trail (also plain 'p11km audit')", cmd_audit_show, show_opts,
	  0, 0, P11KM_CMD_DEFAULT },
	{ NULL, NULL, NULL, NULL, NULL, 0, 0, 0 },
};
