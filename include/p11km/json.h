/* json.h: a small streaming JSON writer for --json output. */
#ifndef P11KM_JSON_H
#define P11KM_JSON_H

#include <stdint.h>
#include <stdio.h>
#include <stddef.h>

struct p11km_json {
	FILE *fp;
	int depth;
	int first[32];   /* no element written yet at this depth */
	int after_key;   /* a key was written, the value follows */
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
/* Finish: newline after the top-level value. */
void p11km_json_end(struct p11km_json *j);
/* 1 when a top-level value was printed on stdout in this run (an error
 * after a command's own JSON is then not printed as a second object). */
int p11km_json_stdout_done(void);

#endif
