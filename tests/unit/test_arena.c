// test_arena.c -- alignment, zeroing, big requests, reset and strdup.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dre/arena.h"

static void
test_alloc(void **state)
{
	dre_arena *a = dre_arena_alloc(256);
	assert_non_null(a);
	assert_int_equal(dre_arena_used(a), 0);
	unsigned char *prev = NULL;
	for (size_t n = 1; n < 600; n += 37) {
		unsigned char *p = dre_arena_get(a, n);
		assert_non_null(p);
		assert_int_equal((uintptr_t) p % 16, 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(p[i], 0);
		memset(p, 0xee, n); // ASan: the whole range is ours
		assert_true(p != prev);
		prev = p;
	}
	// A request far larger than the block size.
	char *big = dre_arena_get(a, 1 << 20);
	assert_non_null(big);
	memset(big, 1, 1 << 20);
	assert_true(dre_arena_used(a) >= (1 << 20));
	// Out-of-range sizes fail instead of wrapping.
	assert_null(dre_arena_get(a, SIZE_MAX));
	assert_null(dre_arena_get(a, SIZE_MAX - 8));

	char *s = dre_arena_strdup(a, "hello");
	assert_string_equal(s, "hello");
	s = dre_arena_strndup(a, "hello world", 5);
	assert_string_equal(s, "hello");
	s = dre_arena_strndup(a, "", 0);
	assert_string_equal(s, "");

	dre_arena_reset(a);
	assert_int_equal(dre_arena_used(a), 0);
	unsigned char *p = dre_arena_get(a, 100);
	for (size_t i = 0; i < 100; i++)
		assert_int_equal(p[i], 0); // zeroed again after reuse
	assert_int_equal(dre_arena_used(a), 112);
	dre_arena_free(a);
	dre_arena_free(NULL);

	a = dre_arena_alloc(0); // default block size
	assert_non_null(dre_arena_get(a, 16 * 1024));
	assert_non_null(dre_arena_get(a, 1));
	dre_arena_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alloc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
