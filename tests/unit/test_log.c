// test_log.c -- gathered access lines: held until another line, a full
// buffer, dre_log_flush or exit; every other line written at once, after
// the access lines before it (the order of lines is kept).
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "dre/log.h"
#include "testkit.h"

static char path[256];

// captured returns what stderr (a file) holds so far (static buffer).
static const char *
captured(void)
{
	static char buf[1 << 18];
	FILE       *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static size_t
count(const char *s, const char *what)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, what)) != NULL; p++)
		n++;
	return n;
}

// in_child runs body in a child process whose stderr is the file at path
// (in a fresh directory dir): gathering is switched on once per process
// and lasts until exit. Asserts that the child exited 0.
static void
in_child(char *dir, size_t cap, const char *tag, void (*body)(void))
{
	assert_int_equal(tk_tmpdir(dir, cap, tag), 0);
	snprintf(path, sizeof path, "%s/stderr", dir);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(10);
		dre_log_init("t", DRE_LOG_INFO);
		body();
		_exit(20); // body exits itself
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void
gathered_body(void)
{
	// A flush period no test waits for: only the events below
	// write.
	if (!dre_log_access_buffer(600000))
		_exit(11);
	dre_log_access("access one");
	dre_log_access("access two");
	if (strlen(captured()) != 0)
		_exit(12); // held
	dre_info("plain line");
	const char *c = captured();
	const char *one = strstr(c, "access one");
	const char *two = strstr(c, "access two");
	const char *plain = strstr(c, "plain line");
	if (one == NULL || two == NULL || plain == NULL || one > two
	    || two > plain)
		_exit(13); // written first, in order
	dre_log_access("access three");
	if (strstr(captured(), "access three") != NULL)
		_exit(14);
	dre_log_flush();
	if (strstr(captured(), "access three") == NULL)
		_exit(15);
	// 64 KiB of lines: the buffer goes out when full, whole lines.
	for (int i = 0; i < 1000; i++)
		dre_log_access("access filler %04d %0100d", i, 0);
	c = captured();
	size_t k = count(c, "access filler ");
	if (k == 0 || k == 1000 || c[strlen(c) - 1] != '\n')
		_exit(16);
	dre_log_access("access last");
	exit(0); // exit writes what is held
}

static void
test_gathered_lines(void **state)
{
	char dir[200];
	in_child(dir, sizeof dir, "log", gathered_body);
	const char *c = captured();
	assert_int_equal(count(c, "access filler "), 1000);
	assert_int_equal(count(c, "access last"), 1);
	assert_int_equal(count(c, "\n"), 1000 + 5);
	assert_non_null(strstr(c, " INFO t: access last\n"));
	assert_int_equal(tk_rmtree(dir), 0);
}

// Without gathering an access line is written at once.
static void
at_once_body(void)
{
	dre_log_access_buffer(0);
	dre_log_access("access now");
	_exit(strstr(captured(), "access now") != NULL ? 0 : 12);
}

static void
test_at_once(void **state)
{
	char dir[200];
	in_child(dir, sizeof dir, "log-once", at_once_body);
	assert_int_equal(tk_rmtree(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_gathered_lines),
		cmocka_unit_test(test_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
