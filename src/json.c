/* json.c: a small streaming JSON writer. */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "p11km/json.h"

/* Has a top-level value gone to stdout in this run? */
static int stdout_done;

void
p11km_json_init(struct p11km_json *j, FILE *fp)
{
	memset(j, 0, sizeof(*j));
	j->fp = fp;
	j->first[0] = 1;
}

static void
sep(struct p11km_json *j)
{
	if (j->after_key) {
		j->after_key = 0;
		return;
	}
	if (!j->first[j->depth])
		fputc(',', j->fp);
	j->first[j->depth] = 0;
}

static void
open_(struct p11km_json *j, int c)
{
	sep(j);
	fputc(c, j->fp);
	if (j->depth < 31)
		j->depth++;
	j->first[j->depth] = 1;
}

static void
close_(struct p11km_json *j, int c)
{
	if (j->depth > 0)
		j->depth--;
	fputc(c, j->fp);
}

void p11km_json_object_begin(struct p11km_json *j) { open_(j, '{'); }
void p11km_json_object_end(struct p11km_json *j) { close_(j, '}'); }
void p11km_json_array_begin(struct p11km_json *j) { open_(j, '['); }
void p11km_json_array_end(struct p11km_json *j) { close_(j, ']'); }

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF */
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * A JSON string.  Token labels are meant to be UTF-8 but nothing enforces
 * it: a byte that is not part of valid UTF-8 becomes U+FFFD, so the output
 * is always valid JSON.
 */
static void
put_string(FILE *fp, const char *s, size_t len)
{
	fputc('"', fp);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x80) {
			size_t n = utf8_len((const unsigned char *)s + i, len - i);
			if (n == 0) {
				fputs("\\ufffd", fp);
			} else {
				fwrite(s + i, 1, n, fp);
				i += n - 1;
			}
			continue;
		}
		switch (c) {
		case '"': fputs("\\\"", fp); break;
		case '\\': fputs("\\\\", fp); break;
		case '\n': fputs("\\n", fp); break;
		case '\r': fputs("\\r", fp); break;
		case '\t': fputs("\\t", fp); break;
		default:
			if (c < 0x20 || c == 0x7f)
				fprintf(fp, "\\u%04x", c);
			else
				fputc(c, fp);
		}
	}
	fputc('"', fp);
}

void
p11km_json_key(struct p11km_json *j, const char *key)
{
	sep(j);
	put_string(j->fp, key, strlen(key));
	fputc(':', j->fp);
	j->after_key = 1;
}

void
p11km_json_stringn(struct p11km_json *j, const char *s, size_t len)
{
	sep(j);
	put_string(j->fp, s, len);
}

void
p11km_json_string(struct p11km_json *j, const char *s)
{
	if (s == NULL) {
		p11km_json_null(j);
		return;
	}
	p11km_json_stringn(j, s, strlen(s));
}

void
p11km_json_int(struct p11km_json *j, int64_t v)
{
	sep(j);
	fprintf(j->fp, "%" PRId64, v);
}

void
p11km_json_bool(struct p11km_json *j, int v)
{
	sep(j);
	fputs(v ? "true" : "false", j->fp);
}

void
p11km_json_null(struct p11km_json *j)
{
	sep(j);
	fputs("null", j->fp);
}

void
p11km_json_kv_string(struct p11km_json *j, const char *key, const char *s)
{
	p11km_json_key(j, key);
	p11km_json_string(j, s);
}

void
p11km_json_kv_int(struct p11km_json *j, const char *key, int64_t v)
{
	p11km_json_key(j, key);
	p11km_json_int(j, v);
}

void
p11km_json_kv_bool(struct p11km_json *j, const char *key, int v)
{
	p11km_json_key(j, key);
	p11km_json_bool(j, v);
}

void
p11km_json_end(struct p11km_json *j)
{
	fputc('\n', j->fp);
	fflush(j->fp);
	if (j->fp == stdout)
		stdout_done = 1;
}

int
p11km_json_stdout_done(void)
{
	return stdout_done;
}
