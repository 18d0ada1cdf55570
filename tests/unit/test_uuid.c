// test_uuid.c -- v4 format and uniqueness, derived ids, validator edge cases.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "dre/uuid.h"

static void
test_v4(void **state)
{
	char a[DRE_UUID_LEN + 1], b[DRE_UUID_LEN + 1];
	dre_uuid_v4(a);
	dre_uuid_v4(b);
	assert_int_equal(strlen(a), DRE_UUID_LEN);
	assert_true(dre_uuid_valid(a, strlen(a)));
	assert_string_not_equal(a, b);
	assert_int_equal(a[14], '4'); // version
	assert_non_null(strchr("89ab", a[19])); // variant
	for (size_t i = 0; i < DRE_UUID_LEN; i++)
		assert_true(a[i] == '-' || (a[i] >= '0' && a[i] <= '9')
		    || (a[i] >= 'a' && a[i] <= 'f'));
}

// The expected ids come from an independent implementation: Python's
// uuid.uuid5(UUID('4d52451e-7a0b-4c5e-9b1f-3c6d8e205147'), name).
static void
test_derive(void **state)
{
	char        a[DRE_UUID_LEN + 1], b[DRE_UUID_LEN + 1];
	const char *name = "default/tx-1/budget";
	dre_uuid_derive(a, name, strlen(name));
	assert_string_equal(a, "27308734-d74b-5aa9-83c0-4ffe9a73e2de");
	dre_uuid_derive(b, name, strlen(name));
	assert_string_equal(a, b);
	dre_uuid_derive(b, "", 0);
	assert_string_equal(b, "20762a76-a62b-5ada-8fbf-397d0ff89bf3");
	dre_uuid_derive(b, name, strlen(name) - 1);
	assert_string_not_equal(a, b);
	assert_true(dre_uuid_valid(a, strlen(a)));
}

static void
test_valid(void **state)
{
	const char *u = "123e4567-e89b-12d3-a456-426614174000";
	assert_true(dre_uuid_valid(u, 36));
	assert_true(
	    dre_uuid_valid("123E4567-E89B-12D3-A456-426614174000", 36));
	assert_false(dre_uuid_valid(u, 35));
	assert_false(
	    dre_uuid_valid("123e4567-e89b-12d3-a456-42661417400", 35));
	assert_false(
	    dre_uuid_valid("123e4567-e89b-12d3-a456-4266141740000", 37));
	assert_false(
	    dre_uuid_valid("123e4567xe89b-12d3-a456-426614174000", 36));
	assert_false(
	    dre_uuid_valid("123e4567-e89b-12d3-a456-42661417400g", 36));
	assert_false(
	    dre_uuid_valid("{23e4567-e89b-12d3-a456-426614174000", 36));
	assert_false(
	    dre_uuid_valid("123e4567e89b12d3a456426614174000----", 36));
	assert_false(dre_uuid_valid(NULL, 36));
	assert_false(dre_uuid_valid("", 0));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v4),
		cmocka_unit_test(test_derive),
		cmocka_unit_test(test_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
