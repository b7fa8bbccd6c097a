/* test-json.c: the --json writer (src/util-json.c, on jansson): structure,
 * separators, escaping, and nothing printed of a document never ended. */
#include "config.h"

#include <check.h>
#include "check-run.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11km/json.h"

struct out {
	char *buf;
	size_t len;
	FILE *fp;
	struct p11km_json j;
};

static void
out_open(struct out *o)
{
	memset(o, 0, sizeof(*o));
	o->fp = open_memstream(&o->buf, &o->len);
	ck_assert_ptr_nonnull(o->fp);
	p11km_json_init(&o->j, o->fp);
}

static void
out_expect(struct out *o, const char *want)
{
	fclose(o->fp);
	ck_assert_str_eq(o->buf, want);
	free(o->buf);
}

START_TEST(structure)
{
	struct out o;

	out_open(&o);
	p11km_json_object_begin(&o.j);
	p11km_json_key(&o.j, "tokens");
	p11km_json_array_begin(&o.j);
	p11km_json_object_begin(&o.j);
	p11km_json_kv_string(&o.j, "uri", "pkcs11:token=a");
	p11km_json_kv_int(&o.j, "slot", 3);
	p11km_json_kv_bool(&o.j, "rng", 1);
	p11km_json_kv_bool(&o.j, "locked", 0);
	p11km_json_kv_string(&o.j, "curve", NULL);
	p11km_json_key(&o.j, "empty");
	p11km_json_array_begin(&o.j);
	p11km_json_array_end(&o.j);
	p11km_json_key(&o.j, "nested");
	p11km_json_object_begin(&o.j);
	p11km_json_object_end(&o.j);
	p11km_json_object_end(&o.j);
	p11km_json_object_begin(&o.j);
	p11km_json_kv_int(&o.j, "n", -9223372036854775807LL - 1);
	p11km_json_object_end(&o.j);
	p11km_json_array_end(&o.j);
	p11km_json_key(&o.j, "list");
	p11km_json_array_begin(&o.j);
	p11km_json_string(&o.j, "a");
	p11km_json_int(&o.j, 1);
	p11km_json_null(&o.j);
	p11km_json_bool(&o.j, 0);
	p11km_json_array_end(&o.j);
	p11km_json_object_end(&o.j);
	p11km_json_end(&o.j);
	out_expect(&o, "{\"tokens\":[{\"uri\":\"pkcs11:token=a\",\"slot\":3,\"rng\":true,"
	               "\"locked\":false,\"curve\":null,\"empty\":[],\"nested\":{}},"
	               "{\"n\":-9223372036854775808}],\"list\":[\"a\",1,null,false]}\n");
}
END_TEST

START_TEST(escaping)
{
	struct out o;

	out_open(&o);
	p11km_json_array_begin(&o.j);
	p11km_json_string(&o.j, "quote\" backslash\\ slash/");
	p11km_json_string(&o.j, "nl\n cr\r tab\t");
	p11km_json_string(&o.j, "\x01\x1f\x7f");
	p11km_json_string(&o.j, "utf-8 \xc3\xa1");
	p11km_json_stringn(&o.j, "a\0b", 3);
	p11km_json_string(&o.j, "");
	p11km_json_array_end(&o.j);
	p11km_json_end(&o.j);
	/* jansson's escapes; DEL too, which jansson would print raw */
	out_expect(&o, "[\"quote\\\" backslash\\\\ slash/\",\"nl\\n cr\\r tab\\t\","
	               "\"\\u0001\\u001F\\u007f\",\"utf-8 \xc3\xa1\",\"a\\u0000b\",\"\"]\n");
}
END_TEST

/* Bytes that are not UTF-8 (a token label may hold anything) become U+FFFD. */
START_TEST(invalid_utf8)
{
	struct out o;

	out_open(&o);
	p11km_json_array_begin(&o.j);
	p11km_json_string(&o.j, "a\xff" "b");            /* not UTF-8 at all */
	p11km_json_string(&o.j, "\xc3");                  /* truncated sequence */
	p11km_json_string(&o.j, "\xc0\xaf");              /* overlong '/' */
	p11km_json_string(&o.j, "\xed\xa0\x80");          /* a surrogate */
	p11km_json_string(&o.j, "\xf0\x9f\x94\x91 ok");   /* U+1F511, valid */
	p11km_json_string(&o.j, "\xe2\x82\xac");          /* U+20AC, valid */
	p11km_json_array_end(&o.j);
	p11km_json_end(&o.j);
#define FFFD "\xef\xbf\xbd"
	out_expect(&o, "[\"a" FFFD "b\",\"" FFFD "\",\"" FFFD FFFD "\",\"" FFFD FFFD FFFD "\","
	               "\"\xf0\x9f\x94\x91 ok\",\"\xe2\x82\xac\"]\n");
}
END_TEST

START_TEST(keys_are_escaped)
{
	struct out o;

	out_open(&o);
	p11km_json_object_begin(&o.j);
	p11km_json_kv_string(&o.j, "a\"b", "v");
	p11km_json_object_end(&o.j);
	p11km_json_end(&o.j);
	out_expect(&o, "{\"a\\\"b\":\"v\"}\n");
}
END_TEST

/* Deep nesting does not overflow the writer's state. */
START_TEST(deep)
{
	struct out o;
	char want[200];
	size_t k = 0;

	out_open(&o);
	for (int i = 0; i < 40; i++)
		p11km_json_array_begin(&o.j);
	for (int i = 0; i < 40; i++)
		p11km_json_array_end(&o.j);
	p11km_json_end(&o.j);
	for (int i = 0; i < 40; i++)
		want[k++] = '[';
	for (int i = 0; i < 40; i++)
		want[k++] = ']';
	want[k++] = '\n';
	want[k] = '\0';
	out_expect(&o, want);
}
END_TEST

/* A command that fails half way prints no half of its document (and the
 * document is not leaked: the sanitizers' leak check runs on this test). */
START_TEST(unended_prints_nothing)
{
	struct out o;

	out_open(&o);
	p11km_json_object_begin(&o.j);
	p11km_json_key(&o.j, "objects");
	p11km_json_array_begin(&o.j);
	p11km_json_kv_string(&o.j, "label", "half");
	out_expect(&o, "");
}
END_TEST

static Suite *
json_suite(void)
{
	Suite *s = suite_create("json");
	TCase *tc = tcase_create("json");

	tcase_add_test(tc, structure);
	tcase_add_test(tc, escaping);
	tcase_add_test(tc, invalid_utf8);
	tcase_add_test(tc, keys_are_escaped);
	tcase_add_test(tc, deep);
	tcase_add_test(tc, unended_prints_nothing);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
		return p11km_check_run(json_suite());
}
