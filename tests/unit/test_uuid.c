// test_uuid.c -- v4 format and uniqueness, derived ids, validator edge cases.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

static int
cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, DRE_UUID_LEN + 1);
}

// Many ids: each a version 4 with the RFC 9562 variant, no two alike.
static void
test_v4_many(void **state)
{
	enum { N = 20000 };
	char(*ids)[DRE_UUID_LEN + 1] = calloc(N, sizeof(*ids));
	assert_non_null(ids);
	for (size_t i = 0; i < N; i++) {
		dre_uuid_v4(ids[i]);
		assert_int_equal(ids[i][14], '4');
		assert_non_null(strchr("89ab", ids[i][19]));
	}
	qsort(ids, N, sizeof(*ids), cmp_id);
	for (size_t i = 1; i < N; i++)
		assert_string_not_equal(ids[i - 1], ids[i]);
	free(ids);
}

// A forked child (a service's worker, a test's helper) does not repeat
// its parent's ids: the generator's state is not simply copied.
static void
test_v4_fork(void **state)
{
	char parent[DRE_UUID_LEN + 1], child[DRE_UUID_LEN + 1] = { 0 };
	int  fds[2];

	dre_uuid_v4(parent); // the generator is initialised before the fork
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char id[DRE_UUID_LEN + 1];
		dre_uuid_v4(id);
		_exit(write(fds[1], id, DRE_UUID_LEN) == DRE_UUID_LEN ? 0 : 1);
	}
	dre_uuid_v4(parent);
	assert_int_equal(read(fds[0], child, DRE_UUID_LEN), DRE_UUID_LEN);
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(fds[0]);
	close(fds[1]);
	assert_true(dre_uuid_valid(child, DRE_UUID_LEN));
	assert_string_not_equal(parent, child);
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
		cmocka_unit_test(test_v4_many),
		cmocka_unit_test(test_v4_fork),
		cmocka_unit_test(test_derive),
		cmocka_unit_test(test_valid),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
