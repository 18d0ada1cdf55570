// test_fs.c -- dre_mkdirs and dre_rmtree on a real temporary tree.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dre/fs.h"

static int
is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void
test_mkdirs_rmtree(void **state)
{
	(void) state;
	char root[] = "/tmp/dre-test-fs-XXXXXX", p[256], f[256];
	assert_non_null(mkdtemp(root));
	snprintf(p, sizeof(p), "%s/a/b/c/", root);
	assert_int_equal(dre_mkdirs(p), 0);
	assert_true(is_dir(p));
	assert_int_equal(dre_mkdirs(p), 0); // existing is fine
	snprintf(f, sizeof(f), "%s/a/b/file", root);
	FILE *fp = fopen(f, "w");
	assert_non_null(fp);
	fputs("x", fp);
	fclose(fp);
	// a file in the way is an error
	snprintf(p, sizeof(p), "%s/a/b/file/d", root);
	assert_int_equal(dre_mkdirs(p), -1);
	assert_int_equal(dre_mkdirs(f), -1);
	// a symbolic link to the outside is removed, not followed
	char outside[] = "/tmp/dre-test-fs-out-XXXXXX", keep[256];
	assert_non_null(mkdtemp(outside));
	snprintf(keep, sizeof(keep), "%s/keep", outside);
	assert_int_equal(dre_mkdirs(keep), 0);
	snprintf(p, sizeof(p), "%s/a/link", root);
	assert_int_equal(symlink(outside, p), 0);
	assert_int_equal(dre_rmtree(root), 0);
	assert_false(is_dir(root));
	assert_true(is_dir(keep));
	assert_int_equal(dre_rmtree(root), 0); // missing is fine
	assert_int_equal(dre_rmtree(outside), 0);
	assert_false(is_dir(outside));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mkdirs_rmtree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
