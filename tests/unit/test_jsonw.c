// test_jsonw.c -- writer output, escaping and round trips via the parser.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dre/json.h"
#include "dre/jsonw.h"

static void
test_structure(void **state)
{
	dre_buf   b = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", "x");
	dre_jsonw_kint(&w, "n", -42);
	dre_jsonw_kbool(&w, "ok", true);
	dre_jsonw_key(&w, "list");
	dre_jsonw_arr_begin(&w);
	dre_jsonw_int(&w, 1);
	dre_jsonw_null(&w);
	dre_jsonw_bool(&w, false);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_obj_end(&w);
	dre_jsonw_arr_begin(&w);
	dre_jsonw_arr_end(&w);
	dre_jsonw_str(&w, NULL);
	dre_jsonw_raw(&w, "{\"r\":1}", 7);
	dre_jsonw_arr_end(&w);
	dre_jsonw_key(&w, "price");
	dre_jsonw_decimal(&w, 17998, 2);
	dre_jsonw_key(&w, "qty");
	dre_jsonw_decimal(&w, 2000, 3);
	dre_jsonw_key(&w, "pct");
	dre_jsonw_decimal_trim(&w, 1000, 2);
	dre_jsonw_key(&w, "neg");
	dre_jsonw_decimal(&w, -5, 2);
	dre_jsonw_kmoney(&w, "total", 8999, "EUR");
	dre_jsonw_key(&w, "at");
	dre_jsonw_time(&w, 1780842601234LL);
	dre_jsonw_kint(&w, "min", INT64_MIN);
	dre_jsonw_obj_end(&w);
	assert_false(b.oom);
	assert_string_equal(b.data,
	    "{\"id\":\"x\",\"n\":-42,\"ok\":true,\"list\":[1,null,false,{},[],"
	    "null,{\"r\":1}],\"price\":179.98,\"qty\":2.000,\"pct\":10,"
	    "\"neg\":-0.05,\"total\":{\"value\":89.99,\"currency\":\"EUR\"},"
	    "\"at\":\"2026-06-07T14:30:01.234Z\","
	    "\"min\":-9223372036854775808}");
	assert_int_equal(b.len, strlen(b.data));
	dre_buf_free(&b);

	// Top-level sequence and appending to existing content.
	dre_buf_puts(&b, "x=");
	dre_jsonw_init(&w, &b);
	dre_jsonw_arr_begin(&w);
	dre_jsonw_arr_end(&w);
	assert_string_equal(b.data, "x=[]");
	dre_buf_free(&b);
}

static void
test_escape(void **state)
{
	dre_buf    b = { 0 };
	const char in[]
	    = "q\"b\\n\nr\rt\tb\bf\f\x01\x1f\x7f/\xc3\xa9\xf0\x9f\x98\x80";
	dre_json_escape(&b, in, sizeof(in) - 1);
	assert_string_equal(b.data,
	    "\"q\\\"b\\\\n\\nr\\rt\\tb\\bf\\f\\u0001\\u001f\x7f/\xc3\xa9"
	    "\xf0\x9f\x98\x80\"");
	dre_buf_reset(&b);
	dre_json_escape(&b, "a\0b", 3);
	assert_string_equal(b.data, "\"a\\u0000b\"");
	dre_buf_reset(&b);
	dre_json_escape(&b, "", 0);
	assert_string_equal(b.data, "\"\"");
	// A key from a client is escaped like a value, between its commas.
	dre_buf_reset(&b);
	dre_jsonw w;
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_key_escn(&w, "a\"b\x01", 4);
	dre_jsonw_int(&w, 1);
	dre_jsonw_key_escn(&w, "c", 1);
	dre_jsonw_str(&w, "d");
	dre_jsonw_obj_end(&w);
	assert_string_equal(b.data, "{\"a\\\"b\\u0001\":1,\"c\":\"d\"}");
	dre_buf_free(&b);
}

// A byte to escape at every offset of a longer string (the 8-byte path
// stops at the first one): the same text as escaping byte by byte.
static void
test_escape_offsets(void **state)
{
	const char  specials[] = { '"', '\\', '\n', '\x01' };
	const char *want_esc[] = { "\\\"", "\\\\", "\\n", "\\u0001" };
	for (size_t k = 0; k < sizeof(specials); k++)
		for (size_t at = 0; at < 20; at++) {
			char in[21];
			memset(in, 'a', 20);
			in[20] = '\0';
			in[at] = specials[k];
			char want[64];
			snprintf(want, sizeof want, "\"%.*s%s%s\"", (int) at,
			    in, want_esc[k], in + at + 1);
			dre_buf b = { 0 };
			dre_json_escape(&b, in, 20);
			assert_string_equal(b.data, want);
			dre_buf_free(&b);
		}
}

// kmoney writes what obj_begin, key, decimal, kstr and obj_end would.
static void
test_kmoney(void **state)
{
	dre_buf   b = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kmoney(&w, "a", -5, "EUR");
	dre_jsonw_kmoney(&w, "b", 0, NULL);
	dre_jsonw_kmoney(&w, "c", INT64_MIN, "E\"R");
	dre_jsonw_kint(&w, "d", 1);
	dre_jsonw_obj_end(&w);
	assert_false(b.oom);
	assert_string_equal(b.data,
	    "{\"a\":{\"value\":-0.05,\"currency\":\"EUR\"},"
	    "\"b\":{\"value\":0.00,\"currency\":null},"
	    "\"c\":{\"value\":-92233720368547758.08,\"currency\":\"E\\\"R\"},"
	    "\"d\":1}");
	dre_buf_free(&b);
}

static void
test_round_trip(void **state)
{
	// Every ASCII byte, UTF-8 and a NUL, written then parsed back.
	char   in[200];
	size_t n = 0;
	for (int c = 1; c < 128; c++)
		in[n++] = (char) c;
	memcpy(in + n, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
	n += 9;
	in[n++] = '\0'; // an embedded NUL is content too

	dre_buf   b = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_key(&w, "s");
	dre_jsonw_strn(&w, in, n);
	dre_jsonw_key(&w, "m");
	dre_jsonw_decimal(&w, -123456789012345LL, 2);
	dre_jsonw_obj_end(&w);
	assert_false(b.oom);

	dre_arena *a = dre_arena_alloc(0);
	dre_json  *root;
	assert_int_equal(
	    dre_json_parse(&root, a, b.data, b.len, 0, NULL), DRE_OK);
	const dre_json *s = dre_json_get(root, "s");
	assert_int_equal(s->len, n);
	assert_memory_equal(s->str, in, n);
	int64_t m;
	assert_int_equal(
	    dre_json_decimal(&m, dre_json_get(root, "m"), 2, 18), DRE_OK);
	assert_int_equal(m, -123456789012345LL);
	dre_arena_free(a);
	dre_buf_free(&b);
}

static void
test_too_deep(void **state)
{
	dre_buf   b = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &b);
	for (int i = 0; i < DRE_JSONW_MAX_DEPTH + 1; i++)
		dre_jsonw_arr_begin(&w);
	// Output that cannot be tracked is reported like an allocation
	// failure rather than written wrongly.
	assert_true(b.oom);
	assert_null(dre_buf_take(&b, NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_escape_offsets),
		cmocka_unit_test(test_kmoney),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_too_deep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
