/* util-json.c: the --json writer, on jansson.  The calls build a jansson
 * document in order; p11km_json_end() prints it (compact, in insertion
 * order) at once, so a command that fails half way prints no half of one. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "p11km/json.h"

/* Has a top-level value gone to stdout in this run? */
static int stdout_done;

/* Documents begun and not ended (a command that failed half way): the
 * reference of their abandoned struct p11km_json, released at exit, so
 * that none is lost to the leak checker. */
#define OPEN_MAX 8
static json_t *open_docs[OPEN_MAX];

static void
open_docs_free(void)
{
	for (int i = 0; i < OPEN_MAX; i++) {
		json_decref(open_docs[i]);
		open_docs[i] = NULL;
	}
}

static void
open_docs_add(json_t *root)
{
	static int registered;
	int i;

	if (!registered && atexit(open_docs_free) == 0)
		registered = 1;
	for (i = 0; i < OPEN_MAX && open_docs[i] != NULL; i++)
		;
	if (i == OPEN_MAX) { /* no room: the oldest goes */
		json_decref(open_docs[0]);
		memmove(open_docs, open_docs + 1, (OPEN_MAX - 1) * sizeof(*open_docs));
		i = OPEN_MAX - 1;
	}
	open_docs[i] = root;
}

static void
open_docs_remove(json_t *root)
{
	for (int i = 0; root != NULL && i < OPEN_MAX; i++)
		if (open_docs[i] == root)
			open_docs[i] = NULL;
}

void
p11km_json_init(struct p11km_json *j, FILE *fp)
{
	memset(j, 0, sizeof(*j));
	j->fp = fp;
}

/* Put v (owned) where the document is: the root, the pending key of the
 * innermost object, or the end of the innermost array. */
static void
put(struct p11km_json *j, json_t *v)
{
	json_t *top = j->depth > 0 ? j->stack[j->depth - 1] : NULL;

	if (v == NULL)
		v = json_null(); /* out of memory: a null keeps the shape */
	if (top == NULL) {
		if (j->root != NULL) {
			json_decref(v); /* a second top-level value: not JSON */
			return;
		}
		j->root = v;
		open_docs_add(v);
	} else if (json_is_object(top)) {
		json_object_set_new_nocheck(top, j->key ? j->key : "", v);
	} else {
		json_array_append_new(top, v);
	}
	free(j->key);
	j->key = NULL;
}

static void
open_(struct p11km_json *j, json_t *c)
{
	if (c == NULL)
		return;
	json_incref(c);
	put(j, c);
	if (j->depth < P11KM_JSON_DEPTH)
		j->stack[j->depth++] = c;
	json_decref(c); /* the container holding it keeps it */
}

static void
close_(struct p11km_json *j)
{
	if (j->depth > 0)
		j->depth--;
}

void p11km_json_object_begin(struct p11km_json *j) { open_(j, json_object()); }
void p11km_json_object_end(struct p11km_json *j) { close_(j); }
void p11km_json_array_begin(struct p11km_json *j) { open_(j, json_array()); }
void p11km_json_array_end(struct p11km_json *j) { close_(j); }

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
 * s (len bytes) as UTF-8, NUL-ended, *n bytes.  Token labels are meant to
 * be UTF-8 but nothing enforces it, and jansson takes only UTF-8: a byte
 * that is not part of valid UTF-8 becomes U+FFFD (jansson's own check
 * would refuse the string: the reason p11km keeps this loop).
 */
static char *
utf8_clean(const char *s, size_t len, size_t *n_out)
{
	char *u = malloc(3 * len + 1);
	size_t k = 0;

	if (u == NULL)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		size_t n = utf8_len((const unsigned char *)s + i, len - i);
		if (n == 0) {
			memcpy(u + k, "\xef\xbf\xbd", 3);
			k += 3;
		} else {
			memcpy(u + k, s + i, n);
			k += n;
			i += n - 1;
		}
	}
	u[k] = '\0';
	*n_out = k;
	return u;
}

static json_t *
string_of(const char *s, size_t len)
{
	size_t n = 0;
	char *u = utf8_clean(s, len, &n);
	json_t *v = u != NULL ? json_stringn_nocheck(u, n) : NULL;

	free(u);
	return v;
}

void
p11km_json_key(struct p11km_json *j, const char *key)
{
	size_t n;

	free(j->key);
	j->key = utf8_clean(key, strlen(key), &n);
}

void
p11km_json_stringn(struct p11km_json *j, const char *s, size_t len)
{
	put(j, string_of(s, len));
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

void p11km_json_int(struct p11km_json *j, int64_t v) { put(j, json_integer((json_int_t)v)); }
void p11km_json_bool(struct p11km_json *j, int v) { put(j, json_boolean(v)); }
void p11km_json_null(struct p11km_json *j) { put(j, json_null()); }

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

/* Print v as one line; DEL, which jansson writes as it is, as \u007f (it
 * can only be inside a string): no raw control character reaches a
 * terminal. */
static void
print(FILE *fp, const json_t *v, size_t flags)
{
	char *t = json_dumps(v, flags | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

	for (const char *p = t ? t : "null"; *p; p++) {
		if (*p == 0x7f)
			fputs("\\u007f", fp);
		else
			fputc(*p, fp);
	}
	fputc('\n', fp);
	fflush(fp);
	free(t);
	if (fp == stdout)
		stdout_done = 1;
}

/* (With nothing written: the newline alone, and stdout marked as done, as
 * the streaming writer did; cmd-track.c ends its own jansson dump so.) */
void
p11km_json_end(struct p11km_json *j)
{
	if (j->root != NULL) {
		print(j->fp, j->root, JSON_COMPACT);
	} else {
		fputc('\n', j->fp);
		fflush(j->fp);
		if (j->fp == stdout)
			stdout_done = 1;
	}
	open_docs_remove(j->root);
	json_decref(j->root);
	free(j->key);
	memset(j, 0, sizeof(*j));
}

void
p11km_json_print_free(json_t *o)
{
	if (o == NULL)
		fputs("{}\n", stdout), stdout_done = 1;
	else
		print(stdout, o, JSON_INDENT(2));
	json_decref(o);
}

void
p11km_json_print_line_free(json_t *o)
{
	if (o == NULL)
		fputs("{}\n", stdout), stdout_done = 1;
	else
		print(stdout, o, JSON_COMPACT);
	json_decref(o);
}

int
p11km_json_stdout_done(void)
{
	return stdout_done;
}
