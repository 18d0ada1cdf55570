// test_err.c -- every error has a distinct message; OK is 0.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "dre/err.h"

static void
test_strerror(void **state)
{
	assert_int_equal(DRE_OK, 0);
	assert_string_equal(dre_strerror(DRE_OK), "ok");
	assert_string_equal(dre_strerror(DRE_ESTORE), "storage failure");
	assert_string_equal(dre_strerror((dre_err) 9999), "unknown error");
	for (int a = DRE_ENOMEM; a <= DRE_ECLOSED; a++)
		for (int b = a + 1; b <= DRE_ECLOSED; b++)
			assert_string_not_equal(dre_strerror((dre_err) a),
			    dre_strerror((dre_err) b));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strerror),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
