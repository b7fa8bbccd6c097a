/* json.h: the --json writer (src/util-json.c, on jansson): calls in output
 * order, the document printed at once by p11km_json_end(). */
#ifndef P11KM_JSON_H
#define P11KM_JSON_H

#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

struct json_t;

/* A document being built (jansson), printed whole by p11km_json_end(). */
#define P11KM_JSON_DEPTH 64
struct p11km_json {
	FILE *fp;
	struct json_t *root;
	struct json_t *stack[P11KM_JSON_DEPTH]; /* the open objects and arrays */
	int depth;
	char *key;       /* a key was written, the value follows */
};

void p11km_json_init(struct p11km_json *j, FILE *fp);
void p11km_json_object_begin(struct p11km_json *j);
void p11km_json_object_end(struct p11km_json *j);
void p11km_json_array_begin(struct p11km_json *j);
void p11km_json_array_end(struct p11km_json *j);
void p11km_json_key(struct p11km_json *j, const char *key);
void p11km_json_string(struct p11km_json *j, const char *s);   /* NULL -> null */
void p11km_json_stringn(struct p11km_json *j, const char *s, size_t len);
void p11km_json_int(struct p11km_json *j, int64_t v);
void p11km_json_bool(struct p11km_json *j, int v);
void p11km_json_null(struct p11km_json *j);
/* key + value shorthands */
void p11km_json_kv_string(struct p11km_json *j, const char *key, const char *s);
void p11km_json_kv_int(struct p11km_json *j, const char *key, int64_t v);
void p11km_json_kv_bool(struct p11km_json *j, const char *key, int v);
/* Finish: print the document (one line) and release it. */
void p11km_json_end(struct p11km_json *j);
/* Print o (indented, in order) on stdout and release it (NULL: {}). */
void p11km_json_print_free(struct json_t *o);
/* The same on one line, as p11km_json_end() prints. */
void p11km_json_print_line_free(struct json_t *o);
/* 1 when a top-level value was printed on stdout in this run (an error
 * after a command's own JSON is then not printed as a second object). */
int p11km_json_stdout_done(void);

#endif
