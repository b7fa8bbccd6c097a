/* json.c: a small streaming JSON writer. */
#include "config.h"

#include <inttypes.h>
#include <string.h>

#include "p11km/json.h"

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

static void
put_string(FILE *fp, const char *s, size_t len)
{
	fputc('"', fp);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
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
}
