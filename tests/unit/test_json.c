// test_json.c -- the strict parser on valid and hostile input.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dre/json.h"

static dre_arena *arena;

static int
setup(void **state)
{
	arena = dre_arena_alloc(0);
	return arena == NULL;
}

static int
teardown(void **state)
{
	dre_arena_free(arena);
	return 0;
}

static const dre_json *
ok(const char *text)
{
	dre_json      *root = NULL;
	dre_json_error e;
	dre_err rv = dre_json_parse(&root, arena, text, strlen(text), 0, &e);
	if (rv != DRE_OK)
		fail_msg("'%s': %s at %zu", text, e.msg, e.offset);
	return root;
}

// bad checks that text fails with msg at offset.
static void
bad_len(const char *text, size_t len, size_t offset, const char *msg)
{
	dre_json      *root = (dre_json *) 1;
	dre_json_error e = { 99, NULL };
	assert_int_equal(
	    dre_json_parse(&root, arena, text, len, 0, &e), DRE_EPARSE);
	assert_ptr_equal(root, (dre_json *) 1);
	assert_non_null(e.msg);
	if (strcmp(e.msg, msg) != 0 || e.offset != offset)
		fail_msg("'%.*s': got '%s' at %zu, want '%s' at %zu",
		    (int) len, text, e.msg, e.offset, msg, offset);
}

static void
bad(const char *text, size_t offset, const char *msg)
{
	bad_len(text, strlen(text), offset, msg);
}

static void
test_values(void **state)
{
	const dre_json *v = ok(" { \"a\" : [1, -2.50, 3e2, true, false, null,"
	                       " \"x\", {}, []], \"b\": {\"c\": \"d\"} } ");
	assert_int_equal(v->type, DRE_JSON_OBJECT);
	assert_int_equal(v->len, 2);
	const dre_json *a = dre_json_get(v, "a");
	assert_true(dre_json_is(a, DRE_JSON_ARRAY));
	assert_int_equal(a->len, 9);
	assert_string_equal(a->key, "a");
	assert_int_equal(a->key_len, 1);
	assert_string_equal(dre_json_at(a, 1)->str, "-2.50");
	assert_int_equal(dre_json_at(a, 1)->len, 5);
	assert_string_equal(dre_json_at(a, 2)->str, "3e2");
	assert_int_equal(dre_json_at(a, 3)->type, DRE_JSON_TRUE);
	assert_int_equal(dre_json_at(a, 4)->type, DRE_JSON_FALSE);
	assert_true(dre_json_is_null(dre_json_at(a, 5)));
	assert_string_equal(dre_json_at(a, 6)->str, "x");
	assert_int_equal(dre_json_at(a, 7)->type, DRE_JSON_OBJECT);
	assert_int_equal(dre_json_at(a, 7)->len, 0);
	assert_null(dre_json_at(a, 7)->child);
	assert_int_equal(dre_json_at(a, 8)->type, DRE_JSON_ARRAY);
	assert_null(dre_json_at(a, 9));
	assert_string_equal(dre_json_get(dre_json_get(v, "b"), "c")->str, "d");
	assert_null(dre_json_get(v, "A")); // case-sensitive
	assert_null(dre_json_get(v, "missing"));
	assert_true(dre_json_is_null(dre_json_get(v, "missing")));
	assert_null(dre_json_get(a, "a")); // not an object

	assert_int_equal(ok("42")->type, DRE_JSON_NUMBER);
	assert_int_equal(ok("\"\"")->len, 0);
	assert_int_equal(ok("null")->type, DRE_JSON_NULL);
	assert_int_equal(ok("-0")->type, DRE_JSON_NUMBER);
	assert_int_equal(ok("\t\r\n[ ]\n")->type, DRE_JSON_ARRAY);
}

static void
test_strings(void **state)
{
	const dre_json *v = ok("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9"
	                       "\\u20ac\\ud83d\\ude00\"");
	const char      want[] = "a\"b\\c/d\b\f\n\r\tA\xc3\xa9\xe2\x82\xac"
	                         "\xf0\x9f\x98\x80";
	assert_int_equal(v->len, sizeof(want) - 1);
	assert_memory_equal(v->str, want, sizeof(want));
	// \u0000 is a legal escape; len keeps the embedded NUL.
	v = ok("\"a\\u0000b\"");
	assert_int_equal(v->len, 3);
	assert_memory_equal(v->str, "a\0b", 4);
	// Raw UTF-8 passes through (2, 3 and 4 byte forms).
	v = ok("\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"");
	assert_int_equal(v->len, 13);
	// Long strings go through the 8-byte fast path and still stop at "
	v = ok("[\"0123456789abcdefghijklmnopqrstuvwxyz\",\"z\"]");
	assert_int_equal(dre_json_at(v, 0)->len, 36);
	assert_string_equal(dre_json_at(v, 1)->str, "z");
	// Escaped keys are compared unescaped.
	v = ok("{\"\\u0061b\": 1}");
	assert_non_null(dre_json_get(v, "ab"));
}

// same_tree: the two trees hold the same values, keys and order.
static void
same_tree(const dre_json *a, const dre_json *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->len, b->len);
	if (a->type == DRE_JSON_STRING || a->type == DRE_JSON_NUMBER)
		assert_memory_equal(a->str, b->str, a->len + 1);
	assert_int_equal(a->key == NULL, b->key == NULL);
	if (a->key != NULL) {
		assert_int_equal(a->key_len, b->key_len);
		assert_memory_equal(a->key, b->key, a->key_len + 1);
	}
	const dre_json *x = a->child, *y = b->child;
	for (; x != NULL && y != NULL; x = x->next, y = y->next)
		same_tree(x, y);
	assert_null(x);
	assert_null(y);
}

static void
test_inplace(void **state)
{
	// Escapes and special bytes at every offset of the 8-byte words.
	const char *texts[] = {
		"{\"a\\\"b\":\"x\\ny\",\"k\\u00e9\":[\"\\ud83d\\ude00z\",1.50,"
		"-0,true,null,{}],\"0123456789abcdef\\\\\":\"01234567\\t\","
		"\"e\":\"\"}",
		"[\"\\/\",\"1\\/\",\"12\\/\",\"123\\/\",\"1234\\/\",\"12345\\/"
		"\","
		"\"123456\\/\",\"1234567\\/\",\"12345678\\/\",\"123456789\\/"
		"\","
		"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
		"abcdefghij\","
		"\"a\\u0000b\"]",
		"{\"request\":{\"items\":[{\"articleNumber\":\"4711\","
		"\"quantity\":2}]}}",
	};
	for (size_t t = 0; t < sizeof(texts) / sizeof(texts[0]); t++) {
		size_t    n = strlen(texts[t]);
		char     *copy = strdup(texts[t]);
		dre_json *want = NULL, *got = NULL;
		assert_int_equal(
		    dre_json_parse(&want, arena, texts[t], n, 0, NULL),
		    DRE_OK);
		assert_int_equal(
		    dre_json_parse_inplace(&got, arena, copy, n, 0, NULL),
		    DRE_OK);
		same_tree(want, got);
		free(copy);
	}
	// Strings and keys point into the text.
	char      text[] = "{\"ab\":\"cd\"}";
	dre_json *root = NULL;
	assert_int_equal(
	    dre_json_parse_inplace(&root, arena, text, strlen(text), 0, NULL),
	    DRE_OK);
	assert_ptr_equal(root->child->key, text + 2);
	assert_ptr_equal(root->child->str, text + 7);
	assert_string_equal(root->child->str, "cd");
	// Errors as dre_json_parse reports them.
	char           broken[] = "{\"a\":\"b\" \"c\"}";
	dre_json_error e = { 0, NULL }, e2 = { 0, NULL };
	assert_int_equal(dre_json_parse(&root, arena, "{\"a\":\"b\" \"c\"}",
	                     strlen(broken), 0, &e),
	    DRE_EPARSE);
	assert_int_equal(dre_json_parse_inplace(
	                     &root, arena, broken, strlen(broken), 0, &e2),
	    DRE_EPARSE);
	assert_int_equal(e.offset, e2.offset);
	assert_string_equal(e.msg, e2.msg);
}

static void
test_syntax_errors(void **state)
{
	bad("", 0, "empty input");
	bad("   ", 3, "unexpected end of input");
	bad("[1,]", 3, "unexpected character");
	bad("[1 2]", 3, "',' or ']' expected");
	bad("{\"a\" 1}", 5, "':' expected");
	bad("{\"a\":1,}", 7, "object key expected");
	bad("{1:2}", 1, "object key expected");
	bad("{\"a\":1 \"b\":2}", 7, "',' or '}' expected");
	bad("[1]]", 3, "trailing characters after JSON");
	bad("1 2", 2, "trailing characters after JSON");
	bad("[", 1, "unexpected end of input");
	bad("{\"a\":", 5, "unexpected end of input");
	bad("tru", 0, "invalid literal");
	bad("[nul]", 1, "invalid literal");
	bad("[truex]", 5, "',' or ']' expected");
	bad("'a'", 0, "unexpected character");
	bad("01", 0, "leading zero in number");
	bad("[-01]", 1, "leading zero in number");
	bad("1.", 2, "digit expected after '.'");
	bad("1e+", 3, "digit expected in exponent");
	bad("-", 1, "invalid number");
	bad("+1", 0, "unexpected character");
	bad(".5", 0, "unexpected character");
	bad("NaN", 0, "unexpected character");
	bad("\"abc", 0, "unterminated string");
	bad("\"abc\\", 0, "unterminated string");
	bad("[\"a\tb\"]", 3, "control character in string");
	bad("\"a\nb\"", 2, "control character in string");
	bad("\"\\x\"", 1, "invalid escape");
	bad("\"\\u12G4\"", 1, "invalid \\u escape");
	bad("\"\\u12\"", 1, "invalid \\u escape");
	// A NUL byte inside the input is not whitespace.
	bad_len("[1]\0", 4, 3, "trailing characters after JSON");
	// An embedded NUL inside a string is a control character.
	bad_len("\"a\0\"", 4, 2, "control character in string");
	// Parsing stops at len, it never reads a terminator beyond it.
	bad_len("[1]", 2, 2, "unexpected end of input");
}

static void
test_surrogates(void **state)
{
	bad("\"\\ud83d\"", 1, "unpaired surrogate");
	bad("\"\\ud83dx\"", 1, "unpaired surrogate");
	bad("\"\\ude00\"", 1, "unpaired surrogate");
	bad("\"\\ud83d\\ud83d\"", 1, "unpaired surrogate");
	bad("\"\\ud83d\\u0041\"", 1, "unpaired surrogate");
	bad("\"ab\\udbff\\n\"", 3, "unpaired surrogate");
	// Highest code point, by escape.
	assert_memory_equal(
	    ok("\"\\udbff\\udfff\"")->str, "\xf4\x8f\xbf\xbf", 4);
}

static void
test_invalid_utf8(void **state)
{
	static const char *const samples[] = {
		"\x80", // lone continuation
		"\xbf", //
		"\xc0\xaf", // overlong '/'
		"\xc1\xbf", // overlong
		"\xe0\x80\xaf", // overlong 3-byte
		"\xe0\x9f\xbf", // overlong 3-byte
		"\xf0\x80\x80\xaf", // overlong 4-byte
		"\xf0\x8f\xbf\xbf", // overlong 4-byte
		"\xed\xa0\x80", // U+D800 encoded
		"\xed\xbf\xbf", // U+DFFF encoded
		"\xf4\x90\x80\x80", // U+110000
		"\xf5\x80\x80\x80", // > U+10FFFF lead
		"\xff", //
		"\xfe", //
		"\xc3", // truncated
		"\xe2\x82", // truncated
		"\xf0\x9f\x98", // truncated
		"\xc3\x28", // bad continuation
		"\xe2\x28\xa1", // bad continuation
	};
	char text[32];
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		size_t n = strlen(samples[i]);
		assert_false(dre_utf8_valid(samples[i], n, NULL));
		// Inside a JSON string: rejected at the bad sequence.
		text[0] = '[';
		text[1] = '"';
		memcpy(text + 2, "ok", 2);
		memcpy(text + 4, samples[i], n);
		memcpy(text + 4 + n, "\"]", 3);
		bad(text, 4, "invalid UTF-8");
	}
	size_t chars = 0;
	assert_true(dre_utf8_valid(
	    "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10, &chars));
	assert_int_equal(chars, 4);
	assert_true(dre_utf8_valid("", 0, &chars));
	assert_int_equal(chars, 0);
	assert_true(dre_utf8_valid("\xef\xbf\xbf\xee\x80\x80", 6, NULL));
}

static void
test_utf8_cut(void **state)
{
	// "a" é € 😀: characters of 1, 2, 3 and 4 bytes (10 in all).
	const char         *s = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
	static const size_t want[11] = { 0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10 };
	for (size_t max = 0; max <= 10; max++) {
		size_t n = dre_utf8_cut(s, 10, max);
		assert_int_equal(n, want[max]);
		assert_true(dre_utf8_valid(s, n, NULL));
	}
	assert_int_equal(dre_utf8_cut(s, 10, 60), 10);
	assert_int_equal(dre_utf8_cut("", 0, 0), 0);
	// Not UTF-8 (a run of continuation bytes, as fuzz_odata sent in an
	// option's name): cut within 3 bytes of max, not to nothing.
	char junk[41];
	junk[0] = '$';
	memset(junk + 1, 0xbf, 39);
	junk[40] = '\0';
	assert_int_equal(dre_utf8_cut(junk, 40, 31), 28);
	assert_int_equal(dre_utf8_cut(junk, 40, 2), 0);
	// The printf arguments.
	char out[16];
	snprintf(out, sizeof out, "'%.*s'", DRE_UTF8_CUT(s, 5));
	assert_string_equal(out, "'a\xc3\xa9'");
}

static void
test_duplicates(void **state)
{
	bad("{\"a\":1,\"a\":2}", 7, "duplicate key");
	bad("{\"a\":1,\"b\":{\"a\":1,\"a\":2}}", 18, "duplicate key");
	// Duplicates after unescaping.
	bad("{\"a\":1,\"\\u0061\":2}", 7, "duplicate key");
	bad("{\"\\u00e9\":1,\"\xc3\xa9\":2}", 12, "duplicate key");
	// Same key in sibling objects is fine.
	ok("[{\"a\":1},{\"a\":2}]");

	// Large objects (the hashed path): n unique keys, then a duplicate
	// of an early and of a late key.
	enum { N = 5000 };
	char *t = malloc(N * 16 + 64);
	assert_non_null(t);
	size_t n = 0;
	t[n++] = '{';
	for (int i = 0; i < N; i++)
		n += (size_t) sprintf(
		    t + n, "%s\"k%d\":%d", i ? "," : "", i, i);
	size_t end = n;
	strcpy(t + n, "}");
	const dre_json *v = ok(t);
	assert_int_equal(v->len, N);
	assert_string_equal(dre_json_get(v, "k4999")->str, "4999");
	n += (size_t) sprintf(t + n, ",\"k3\":0}");
	bad(t, end + 1, "duplicate key");
	n = end;
	n += (size_t) sprintf(t + n, ",\"k4998\":0}");
	bad(t, end + 1, "duplicate key");
	// The ninth key is the first checked by hash.
	bad("{\"1\":0,\"2\":0,\"3\":0,\"4\":0,\"5\":0,\"6\":0,\"7\":0,\"8\":0,"
	    "\"1\":0}",
	    49, "duplicate key");
	bad("{\"1\":0,\"2\":0,\"3\":0,\"4\":0,\"5\":0,\"6\":0,\"7\":0,\"8\":0,"
	    "\"9\":0,\"8\":0}",
	    55, "duplicate key");
	free(t);
}

static void
test_depth(void **state)
{
	dre_json      *root;
	dre_json_error e;
	// Exactly max_depth levels are fine, one more is not.
	assert_int_equal(
	    dre_json_parse(&root, arena, "[[[1]]]", 7, 3, &e), DRE_OK);
	assert_int_equal(
	    dre_json_parse(&root, arena, "[[[[1]]]]", 9, 3, &e), DRE_EPARSE);
	assert_string_equal(e.msg, "nesting too deep");
	assert_int_equal(e.offset, 3);
	assert_int_equal(
	    dre_json_parse(&root, arena, "{\"a\":{\"b\":[]}}", 14, 2, &e),
	    DRE_EPARSE);
	assert_int_equal(e.offset, 10);

	// 100k '[' with a huge limit: no recursion, so no stack overflow.
	enum { D = 100000 };
	char *t = malloc(2 * D + 1);
	assert_non_null(t);
	memset(t, '[', D);
	memset(t + D, ']', D);
	t[2 * D] = '\0';
	assert_int_equal(
	    dre_json_parse(&root, arena, t, 2 * D, 64, &e), DRE_EPARSE);
	assert_int_equal(e.offset, 64);
	assert_int_equal(
	    dre_json_parse(&root, arena, t, 2 * D, D, &e), DRE_OK);
	assert_int_equal(root->len, 1);
	// Unclosed.
	assert_int_equal(
	    dre_json_parse(&root, arena, t, 2 * D - 1, D, &e), DRE_EPARSE);
	assert_string_equal(e.msg, "unexpected end of input");
	free(t);
	// Default depth is DRE_JSON_MAX_DEPTH.
	char deep[2 * (DRE_JSON_MAX_DEPTH + 1) + 1];
	memset(deep, '[', DRE_JSON_MAX_DEPTH + 1);
	memset(deep + DRE_JSON_MAX_DEPTH + 1, ']', DRE_JSON_MAX_DEPTH + 1);
	assert_int_equal(
	    dre_json_parse(&root, arena, deep, sizeof(deep) - 1, 0, NULL),
	    DRE_EPARSE);
	assert_int_equal(
	    dre_json_parse(&root, arena, deep + 1, sizeof(deep) - 3, 0, NULL),
	    DRE_OK);
}

static void
test_decimal(void **state)
{
	const dre_json *v = ok("{\"p\": 89.99, \"s\": \"1.5\", \"q\": 2, "
	                       "\"e\": 1.5e1, \"f\": 1.001, \"b\": true, "
	                       "\"n\": -3, \"x\": \"abc\", \"big\": 1e30}");
	int64_t         x = -1;
	assert_int_equal(
	    dre_json_decimal(&x, dre_json_get(v, "p"), 2, 15), DRE_OK);
	assert_int_equal(x, 8999);
	assert_int_equal(
	    dre_json_decimal(&x, dre_json_get(v, "s"), 2, 15), DRE_OK);
	assert_int_equal(x, 150);
	assert_int_equal(
	    dre_json_decimal(&x, dre_json_get(v, "q"), 3, 15), DRE_OK);
	assert_int_equal(x, 2000);
	x = -1;
	assert_int_equal(
	    dre_json_decimal(&x, dre_json_get(v, "f"), 2, 15), DRE_EINVAL);
	assert_int_equal(
	    dre_json_decimal(&x, dre_json_get(v, "b"), 2, 15), DRE_EINVAL);
	assert_int_equal(
	    dre_json_decimal(&x, dre_json_get(v, "zz"), 2, 15), DRE_EINVAL);
	assert_int_equal(
	    dre_json_decimal(&x, dre_json_get(v, "x"), 2, 15), DRE_EPARSE);
	assert_int_equal(
	    dre_json_decimal(&x, dre_json_get(v, "big"), 2, 15), DRE_ETOOBIG);
	assert_int_equal(x, -1);

	assert_int_equal(
	    dre_json_int(&x, dre_json_get(v, "e"), 0, 100), DRE_OK);
	assert_int_equal(x, 15);
	assert_int_equal(
	    dre_json_int(&x, dre_json_get(v, "n"), -5, 5), DRE_OK);
	assert_int_equal(x, -3);
	x = 7;
	assert_int_equal(
	    dre_json_int(&x, dre_json_get(v, "n"), 0, 5), DRE_EINVAL);
	assert_int_equal(
	    dre_json_int(&x, dre_json_get(v, "p"), 0, 1000), DRE_EINVAL);
	assert_int_equal(
	    dre_json_int(&x, dre_json_get(v, "s"), 0, 1000), DRE_EINVAL);
	assert_int_equal(x, 7);
}

static void
test_arena_exhaustion(void **state)
{
	// A tiny arena still works: blocks are added as needed.
	dre_arena *small = dre_arena_alloc(64);
	dre_json  *root;
	const char text[] = "{\"a\":[1,2,3,{\"b\":\"cccccccccccccccccccc\"}]}";
	assert_int_equal(
	    dre_json_parse(&root, small, text, sizeof(text) - 1, 0, NULL),
	    DRE_OK);
	assert_string_equal(
	    dre_json_get(dre_json_at(dre_json_get(root, "a"), 3), "b")->str,
	    "cccccccccccccccccccc");
	dre_arena_free(small);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_inplace),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_surrogates),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_utf8_cut),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_decimal),
		cmocka_unit_test(test_arena_exhaustion),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
