// test_config.c -- option table, precedence, kafka pass-through, errors.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dre/config.h"

typedef struct {
	dre_common_cfg common;
	char          *bind;
	int64_t        port;
	int64_t        workers;
	bool           dev;
	bool           tls;
	char          *name;
	char          *mode;
} test_cfg;

static const dre_cfg_opt table[] = {
	DRE_CFG_COMMON(test_cfg, common, "tcp://127.0.0.1:7999"),
	{ "http.bind", DRE_CFG_STR, offsetof(test_cfg, bind), "127.0.0.1",
	    "address" },
	{ "http.port", DRE_CFG_INT, offsetof(test_cfg, port), "8080", "port",
	    DRE_CFG_RANGE(1, 65535) },
	{ "workers", DRE_CFG_INT, offsetof(test_cfg, workers), NULL, "n" },
	{ "auth.dev_users", DRE_CFG_BOOL, offsetof(test_cfg, dev), "true",
	    "dev users" },
	{ "tls", DRE_CFG_BOOL, offsetof(test_cfg, tls), NULL, "tls" },
	{ "name", DRE_CFG_STR, offsetof(test_cfg, name), NULL, "name" },
	{ "mode", DRE_CFG_STR, offsetof(test_cfg, mode), "central", "mode",
	    DRE_CFG_CHOICES("central|local-store") },
	DRE_CFG_END,
};

static char path[64];

static void
clear_env(void)
{
	unsetenv("DRE_CONFIG");
	unsetenv("DRE_HTTP_PORT");
	unsetenv("DRE_HTTP_BIND");
	unsetenv("DRE_DATA_DIR");
	unsetenv("DRE_AUTH_DEV_USERS");
	unsetenv("DRE_KAFKA_BOOTSTRAP_SERVERS");
	unsetenv("DRE_KAFKA_LINGER_MS");
}

static int
setup(void **state)
{
	clear_env();
	strcpy(path, "/tmp/dre-test-config-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int
teardown(void **state)
{
	clear_env();
	unlink(path);
	return 0;
}

static void
write_file(const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static dre_err
load(test_cfg *c, int argc, char **argv)
{
	memset(c, 0, sizeof(*c));
	return dre_config_load(c, table, &c->common.kafka, argc, argv);
}

static void
release(test_cfg *c)
{
	dre_config_free(c, table, &c->common.kafka);
}

static void
test_defaults(void **state)
{
	test_cfg c;
	char    *argv[] = { "prog", NULL };
	assert_int_equal(load(&c, 1, argv), DRE_OK);
	assert_string_equal(c.common.data_dir, "./var");
	assert_string_equal(c.common.log_level, "info");
	assert_string_equal(c.common.rpc_listen, "tcp://127.0.0.1:7999");
	assert_string_equal(c.common.instance_id, "STORE-001");
	assert_string_equal(c.bind, "127.0.0.1");
	assert_int_equal(c.port, 8080);
	assert_int_equal(c.workers, 0);
	assert_true(c.dev);
	assert_false(c.tls);
	assert_string_equal(c.name, ""); // NULL default = empty string
	assert_int_equal(c.common.kafka.n, 0);
	release(&c);
	assert_null(c.bind);
	assert_null(c.common.data_dir);
}

static void
test_precedence(void **state)
{
	write_file("# a comment\n"
	           "\n"
	           "http.port = 9000\n"
	           "  http.bind=0.0.0.0  \n"
	           "data_dir = /tmp/from-file\n"
	           "name = \"quoted value\"\n"
	           "instance_id = STORE#7\n"
	           "kafka.bootstrap.servers = file:9092\n"
	           "kafka.acks = all\n");
	test_cfg c;
	char     cfgarg[80];
	snprintf(cfgarg, sizeof(cfgarg), "--config=%s", path);

	// File over defaults.
	char *a1[] = { "prog", cfgarg, NULL };
	assert_int_equal(load(&c, 2, a1), DRE_OK);
	assert_int_equal(c.port, 9000);
	assert_string_equal(c.bind, "0.0.0.0");
	assert_string_equal(c.name, "quoted value");
	assert_string_equal(c.common.instance_id, "STORE#7");
	assert_string_equal(
	    dre_kvlist_get(&c.common.kafka, "bootstrap.servers"), "file:9092");
	assert_string_equal(dre_kvlist_get(&c.common.kafka, "acks"), "all");
	assert_null(dre_kvlist_get(&c.common.kafka, "kafka.acks"));
	release(&c);

	// Environment over file; DRE_CONFIG names the file.
	setenv("DRE_CONFIG", path, 1);
	setenv("DRE_HTTP_PORT", "9100", 1);
	setenv("DRE_AUTH_DEV_USERS", "off", 1);
	setenv("DRE_KAFKA_BOOTSTRAP_SERVERS", "env:9092", 1);
	setenv("DRE_KAFKA_LINGER_MS", "5", 1);
	char *a2[] = { "prog", NULL };
	assert_int_equal(load(&c, 1, a2), DRE_OK);
	assert_int_equal(c.port, 9100);
	assert_string_equal(c.bind, "0.0.0.0"); // still from the file
	assert_false(c.dev);
	assert_string_equal(
	    dre_kvlist_get(&c.common.kafka, "bootstrap.servers"), "env:9092");
	assert_string_equal(dre_kvlist_get(&c.common.kafka, "linger.ms"), "5");
	release(&c);

	// Command line over environment, in all three spellings.
	char *a3[] = { "prog", "-o", "http.port=9200", "--data_dir=/tmp/cli",
		"--http.bind", "10.0.0.1", "-o",
		"kafka.bootstrap.servers=cli:9092", "--tls",
		"--auth.dev_users", "yes", NULL };
	assert_int_equal(load(&c, 11, a3), DRE_OK);
	assert_int_equal(c.port, 9200);
	assert_string_equal(c.common.data_dir, "/tmp/cli");
	assert_string_equal(c.bind, "10.0.0.1");
	assert_true(c.tls);
	assert_true(c.dev);
	assert_string_equal(
	    dre_kvlist_get(&c.common.kafka, "bootstrap.servers"), "cli:9092");
	release(&c);

	// Last one wins on the command line; --config FILE over DRE_CONFIG.
	unsetenv("DRE_HTTP_PORT");
	setenv("DRE_CONFIG", "/nonexistent/file", 1);
	char *a4[] = { "prog", "--config", path, "--http.port=1",
		"--http.port=2", NULL };
	assert_int_equal(load(&c, 5, a4), DRE_OK);
	assert_int_equal(c.port, 2);
	assert_string_equal(c.common.data_dir, "/tmp/from-file");
	release(&c);
}

static void
test_errors(void **state)
{
	test_cfg c;
	char    *a1[] = { "prog", "-o", "no.such.key=1", NULL };
	assert_int_equal(load(&c, 3, a1), DRE_ECONFIG);
	release(&c);
	char *a2[] = { "prog", "--http.port=80x", NULL };
	assert_int_equal(load(&c, 2, a2), DRE_ECONFIG);
	release(&c);
	char *a3[] = { "prog", "--tls=maybe", NULL };
	assert_int_equal(load(&c, 2, a3), DRE_ECONFIG);
	release(&c);
	char *a4[] = { "prog", "--config", "/nonexistent/dre.conf", NULL };
	assert_int_equal(load(&c, 3, a4), DRE_ECONFIG);
	release(&c);
	char *a5[] = { "prog", "stray", NULL };
	assert_int_equal(load(&c, 2, a5), DRE_ECONFIG);
	release(&c);
	char *a6[] = { "prog", "-o", NULL };
	assert_int_equal(load(&c, 2, a6), DRE_ECONFIG);
	release(&c);
	char *a7[] = { "prog", "--http.port", NULL };
	assert_int_equal(load(&c, 2, a7), DRE_ECONFIG);
	release(&c);
	char *a8[] = { "prog", "--config", NULL };
	assert_int_equal(load(&c, 2, a8), DRE_ECONFIG);
	release(&c);

	write_file("http.port = 1\nbogus = 2\n");
	setenv("DRE_CONFIG", path, 1);
	char *a9[] = { "prog", NULL };
	assert_int_equal(load(&c, 1, a9), DRE_ECONFIG);
	release(&c);
	write_file("just a line without equals\n");
	assert_int_equal(load(&c, 1, a9), DRE_ECONFIG);
	release(&c);
	unsetenv("DRE_CONFIG");

	setenv("DRE_HTTP_PORT", "lots", 1);
	assert_int_equal(load(&c, 1, a9), DRE_ECONFIG);
	release(&c);
	unsetenv("DRE_HTTP_PORT");
}

// Bounds and choices of a row are checked wherever the value comes from.
static void
test_bounds_and_choices(void **state)
{
	test_cfg c;
	char    *ok[] = { "prog", "--http.port=65535", "--mode=local-store",
		   "--log_level=warn", NULL };
	assert_int_equal(load(&c, 4, ok), DRE_OK);
	assert_int_equal(c.port, 65535);
	assert_string_equal(c.mode, "local-store");
	release(&c);
	char *a1[] = { "prog", "--http.port=0", NULL };
	assert_int_equal(load(&c, 2, a1), DRE_ECONFIG);
	release(&c);
	char *a2[] = { "prog", "--http.port=65536", NULL };
	assert_int_equal(load(&c, 2, a2), DRE_ECONFIG);
	release(&c);
	char *a3[] = { "prog", "--mode=locals", NULL };
	assert_int_equal(load(&c, 2, a3), DRE_ECONFIG);
	release(&c);
	char *a4[] = { "prog", "--mode=central|local-store", NULL };
	assert_int_equal(load(&c, 2, a4), DRE_ECONFIG);
	release(&c);
	char *a5[] = { "prog", "--mode=", NULL };
	assert_int_equal(load(&c, 2, a5), DRE_ECONFIG);
	release(&c);
	char *a6[] = { "prog", "--log_level=verbose", NULL };
	assert_int_equal(load(&c, 2, a6), DRE_ECONFIG);
	release(&c);
	write_file("http.port = -1\n");
	setenv("DRE_CONFIG", path, 1);
	char *a7[] = { "prog", NULL };
	assert_int_equal(load(&c, 1, a7), DRE_ECONFIG);
	release(&c);
	unsetenv("DRE_CONFIG");
	setenv("DRE_MODE", "local", 1);
	assert_int_equal(load(&c, 1, a7), DRE_ECONFIG);
	release(&c);
	unsetenv("DRE_MODE");
}

static void
test_kvlist(void **state)
{
	dre_kvlist l = { 0 };
	dre_kvlist_set(&l, "a", "1");
	dre_kvlist_set(&l, "b", "2");
	dre_kvlist_set(&l, "a", "3");
	assert_int_equal(l.n, 2);
	assert_string_equal(dre_kvlist_get(&l, "a"), "3");
	assert_string_equal(dre_kvlist_get(&l, "b"), "2");
	assert_null(dre_kvlist_get(&l, "c"));
	dre_kvlist_free(&l);
	assert_int_equal(l.n, 0);
	dre_kvlist_free(&l);
	dre_kvlist_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_bounds_and_choices, setup, teardown),
		cmocka_unit_test(test_kvlist),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
