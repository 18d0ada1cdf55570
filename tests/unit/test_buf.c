// test_buf.c -- appends, printf growth, integers and handing data off.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dre/buf.h"

static void
test_append(void **state)
{
	dre_buf b;
	dre_buf_init(&b);
	dre_buf_puts(&b, "ab");
	dre_buf_putc(&b, 'c');
	dre_buf_append(&b, "defgh", 2);
	assert_string_equal(b.data, "abcde");
	assert_int_equal(b.len, 5);
	for (int i = 0; i < 1000; i++)
		dre_buf_putc(&b, 'x');
	assert_int_equal(b.len, 1005);
	assert_int_equal(b.data[1005], '\0');
	dre_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	dre_buf_free(&b);
	assert_null(b.data);
	dre_buf_free(&b);
}

static void
test_printf(void **state)
{
	dre_buf b = { 0 };
	dre_buf_printf(&b, "%s=%d", "n", 42);
	assert_string_equal(b.data, "n=42");
	// Longer than the first allocation: grows and rewrites.
	char big[3000];
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	dre_buf_printf(&b, "[%s]", big);
	assert_int_equal(b.len, 4 + 2 + sizeof(big) - 1);
	assert_int_equal(b.data[4], '[');
	assert_int_equal(b.data[b.len - 1], ']');
	assert_int_equal(strlen(b.data), b.len);
	dre_buf_free(&b);
}

static void
test_i64(void **state)
{
	dre_buf b = { 0 };
	dre_buf_i64(&b, 0);
	dre_buf_putc(&b, ' ');
	dre_buf_i64(&b, -17);
	dre_buf_putc(&b, ' ');
	dre_buf_i64(&b, INT64_MAX);
	dre_buf_putc(&b, ' ');
	dre_buf_i64(&b, INT64_MIN);
	assert_string_equal(
	    b.data, "0 -17 9223372036854775807 -9223372036854775808");
	dre_buf_free(&b);
}

static void
test_take(void **state)
{
	dre_buf b = { 0 };
	size_t  n = 99;
	char   *p = dre_buf_take(&b, &n); // empty buf: "" not NULL
	assert_non_null(p);
	assert_int_equal(n, 0);
	assert_string_equal(p, "");
	free(p);
	dre_buf_puts(&b, "hello");
	p = dre_buf_take(&b, &n);
	assert_string_equal(p, "hello");
	assert_int_equal(n, 5);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	free(p);
	// oom is sticky and makes take fail.
	dre_buf_puts(&b, "x");
	b.oom = 1;
	dre_buf_puts(&b, "y");
	assert_int_equal(b.len, 1);
	assert_null(dre_buf_take(&b, &n));
	assert_null(b.data);
	// A request that cannot be satisfied sets oom instead of wrapping.
	dre_buf_reserve(&b, SIZE_MAX - 4);
	assert_true(b.oom);
	dre_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_append),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_i64),
		cmocka_unit_test(test_take),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
