// test_metrics.c -- the registry's text format, merging several processes'
// texts, pending counts, readiness checks.
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dre/health.h"
#include "dre/metrics.h"

// The registry is process-wide: each test uses its own family names.

static void
test_render_counter_gauge_histogram(void **state)
{
	(void) state;
	dre_metrics_init("unit");
	dre_metric *c = dre_metric_counter(
	    "t1_calls_total", "calls\nmade \\ here", "method=\"a\"");
	dre_metric *c2
	    = dre_metric_counter("t1_calls_total", "ignored", "method=\"b\"");
	assert_ptr_equal(
	    c, dre_metric_counter("t1_calls_total", "x", "method=\"a\""));
	dre_metric_inc(c);
	dre_metric_add(c, 4);
	dre_metric_inc(c2);
	dre_metric *g = dre_metric_gauge("t1_depth_events", "depth", NULL);
	dre_metric_set(g, -3);
	dre_metric *h = dre_metric_histogram(
	    "t1_duration_seconds", "latency", "route=\"/x\"");
	dre_metric_observe_us(h, 400); // le 0.0005
	dre_metric_observe_us(h, 1000); // le 0.001 (bounds are inclusive)
	dre_metric_observe_us(h, 20000000); // +Inf only
	assert_int_equal(dre_metric_value(c), 5);

	dre_buf b;
	dre_buf_init(&b);
	dre_metrics_render(&b);
	assert_non_null(strstr(b.data,
	    "# HELP t1_calls_total calls\\nmade \\\\ here\n"
	    "# TYPE t1_calls_total counter\n"
	    "t1_calls_total{service=\"unit\",method=\"a\"} 5\n"
	    "t1_calls_total{service=\"unit\",method=\"b\"} 1\n"));
	assert_non_null(strstr(b.data,
	    "# TYPE t1_depth_events gauge\n"
	    "t1_depth_events{service=\"unit\"} -3\n"));
	assert_non_null(strstr(b.data,
	    "# TYPE t1_duration_seconds histogram\n"
	    "t1_duration_seconds_bucket{service=\"unit\",route=\"/x\","
	    "le=\"0.000500\"} 1\n"
	    "t1_duration_seconds_bucket{service=\"unit\",route=\"/x\","
	    "le=\"0.001000\"} 2\n"));
	assert_non_null(strstr(b.data,
	    "t1_duration_seconds_bucket{service=\"unit\",route=\"/x\","
	    "le=\"10.000000\"} 2\n"
	    "t1_duration_seconds_bucket{service=\"unit\",route=\"/x\","
	    "le=\"+Inf\"} 3\n"
	    "t1_duration_seconds_sum{service=\"unit\",route=\"/x\"} "
	    "20.001400\n"
	    "t1_duration_seconds_count{service=\"unit\",route=\"/x\"} 3\n"));
	dre_buf_free(&b);
}

static void
test_label_escape(void **state)
{
	(void) state;
	char out[16];
	dre_metric_label_escape(out, sizeof(out), "a\"b\\c\nd");
	assert_string_equal(out, "a\\\"b\\\\c\\nd");
	dre_metric_label_escape(out, 4, "abcdef");
	assert_string_equal(out, "abc");
	dre_metric_label_escape(out, sizeof(out), "\"\"\"\"\"\"\"\"");
	assert_string_equal(out, "\\\"\\\"\\\"\\\"\\\"\\\"\\\"");
}

static void
test_merge_groups_families_and_adds_labels(void **state)
{
	(void) state;
	const char *a = "# HELP x_total things\n# TYPE x_total counter\n"
	                "x_total{service=\"gateway\"} 1\n"
	                "# HELP y_bytes size\n# TYPE y_bytes gauge\n"
	                "y_bytes 7\n";
	const char *b = "# HELP x_total things\n# TYPE x_total counter\n"
	                "x_total{service=\"evaluator\",method=\"m\"} 2\n"
	                "x_total{service=\"evaluator\",method=\"n\"} 3\n";
	const char *texts[] = { a, b };
	size_t      lens[] = { strlen(a), strlen(b) };
	const char *extra[] = { NULL, "shard=\"1\"" };
	dre_buf     out;
	dre_buf_init(&out);
	assert_int_equal(
	    dre_metrics_merge(&out, texts, lens, extra, 2), DRE_OK);
	assert_string_equal(out.data,
	    "# HELP x_total things\n# TYPE x_total counter\n"
	    "x_total{service=\"gateway\"} 1\n"
	    "x_total{shard=\"1\",service=\"evaluator\",method=\"m\"} 2\n"
	    "x_total{shard=\"1\",service=\"evaluator\",method=\"n\"} 3\n"
	    "# HELP y_bytes size\n# TYPE y_bytes gauge\n"
	    "y_bytes 7\n");

	// A sample before any family, or HELP without TYPE, is refused.
	const char *bad[] = { "x 1\n", "# HELP x y\nx 1\n" };
	for (int i = 0; i < 2; i++) {
		size_t l = strlen(bad[i]);
		dre_buf_reset(&out);
		assert_int_equal(
		    dre_metrics_merge(&out, &bad[i], &l, NULL, 1), DRE_ECODEC);
	}
	// Labels on a sample without labels.
	const char *c = "# HELP z z\n# TYPE z gauge\nz 1\n";
	size_t      cl = strlen(c);
	const char *ex = "shard=\"0\"";
	dre_buf_reset(&out);
	assert_int_equal(dre_metrics_merge(&out, &c, &cl, &ex, 1), DRE_OK);
	assert_string_equal(
	    out.data, "# HELP z z\n# TYPE z gauge\nz{shard=\"0\"} 1\n");
	dre_buf_free(&out);
}

static void
test_pending_counts(void **state)
{
	(void) state;
	dre_metric *m
	    = dre_metric_counter("t2_applied_total", "applied", NULL);
	dre_metric_add_pending(m, 2);
	dre_metric_add_pending(m, 3);
	assert_int_equal(dre_metric_value(m), 0);
	dre_metrics_pending_discard(); // the batch was not written
	assert_int_equal(dre_metric_value(m), 0);
	dre_metric_add_pending(m, 4);
	dre_metrics_pending_commit();
	assert_int_equal(dre_metric_value(m), 4);
	dre_metrics_pending_commit(); // nothing twice
	assert_int_equal(dre_metric_value(m), 4);
}

static int collected;

static void
collect(void *arg)
{
	collected++;
	dre_metric_set(dre_metric_gauge("t3_value", "v", NULL), *(int *) arg);
}

static void
test_collector(void **state)
{
	(void) state;
	int     v = 42;
	dre_buf b;
	dre_buf_init(&b);
	dre_metrics_collector_add(collect, &v);
	dre_metrics_render(&b);
	assert_int_equal(collected, 1);
	assert_non_null(strstr(b.data, "t3_value{service=\"unit\"} 42\n"));
	dre_metrics_collector_remove(collect, &v);
	dre_buf_reset(&b);
	dre_metrics_render(&b);
	assert_int_equal(collected, 1);
	dre_buf_free(&b);
}

static bool
check(void *arg)
{
	return *(bool *) arg;
}

static void
test_health(void **state)
{
	(void) state;
	bool    a = true, k = true;
	dre_buf b;
	dre_buf_init(&b);
	assert_true(dre_health_render(&b));
	assert_string_equal(b.data, "{\"status\":\"UP\",\"checks\":{}}");
	dre_health_add("store", check, &a);
	dre_health_add("kafka:x", check, &k);
	k = false;
	dre_buf_reset(&b);
	assert_false(dre_health_render(&b));
	assert_string_equal(b.data,
	    "{\"status\":\"DOWN\",\"checks\":{\"store\":\"UP\","
	    "\"kafka:x\":\"DOWN\"}}");
	dre_health_remove(check, &k);
	dre_buf_reset(&b);
	assert_true(dre_health_render(&b));
	assert_string_equal(
	    b.data, "{\"status\":\"UP\",\"checks\":{\"store\":\"UP\"}}");
	dre_health_remove(check, &a);
	dre_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_counter_gauge_histogram),
		cmocka_unit_test(test_label_escape),
		cmocka_unit_test(test_merge_groups_families_and_adds_labels),
		cmocka_unit_test(test_pending_counts),
		cmocka_unit_test(test_collector),
		cmocka_unit_test(test_health),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
