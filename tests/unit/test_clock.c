// test_clock.c -- RFC 3339 parsing and formatting, both clocks.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "dre/clock.h"

static dre_err
parse(int64_t *ms, const char *s)
{
	*ms = -1;
	return dre_time_parse(ms, s, strlen(s));
}

static void
test_parse(void **state)
{
	int64_t ms;
	assert_int_equal(parse(&ms, "1970-01-01T00:00:00Z"), DRE_OK);
	assert_int_equal(ms, 0);
	assert_int_equal(parse(&ms, "2026-06-07T14:30:00Z"), DRE_OK);
	assert_int_equal(ms, 1780842600000LL);
	assert_int_equal(parse(&ms, "2026-06-07T14:30:01.234Z"), DRE_OK);
	assert_int_equal(ms, 1780842601234LL);
	assert_int_equal(parse(&ms, "2026-06-07T16:30:01.234+02:00"), DRE_OK);
	assert_int_equal(ms, 1780842601234LL);
	assert_int_equal(parse(&ms, "2026-06-07T09:00:01.234-0530"), DRE_OK);
	assert_int_equal(ms, 1780842601234LL);
	assert_int_equal(parse(&ms, "2026-06-07T14:30:01.2Z"), DRE_OK);
	assert_int_equal(ms, 1780842601200LL);
	assert_int_equal(parse(&ms, "2026-06-07T14:30:01.23456789Z"), DRE_OK);
	assert_int_equal(ms, 1780842601234LL);
	assert_int_equal(parse(&ms, "2026-06-07"), DRE_OK);
	assert_int_equal(ms, 1780790400000LL);
	assert_int_equal(parse(&ms, "2026-06-07T14:30:00"), DRE_OK); // UTC
	assert_int_equal(ms, 1780842600000LL);
	assert_int_equal(parse(&ms, "2024-02-29T00:00:00Z"), DRE_OK);
	assert_int_equal(ms, 1709164800000LL);
	assert_int_equal(parse(&ms, "1969-12-31T23:59:59.999Z"), DRE_OK);
	assert_int_equal(ms, -1);
	assert_int_equal(parse(&ms, "2026-12-31T23:59:59Z"), DRE_OK);
	assert_int_equal(ms, 1798761599000LL);
}

static void
test_parse_errors(void **state)
{
	const char *bad[] = { "", "2026", "2026-6-07", "2026-13-01",
		"2026-00-10", "2026-02-29", "2025-04-31", "2026-06-07T",
		"2026-06-07T24:00:00Z", "2026-06-07T14:60:00Z",
		"2026-06-07T14:30Z", "2026-06-07T14:30:00.Z",
		"2026-06-07T14:30:00+2", "2026-06-07T14:30:00X",
		"2026-06-07T14:30:00Zjunk", "2026-06-07x", "abcd-ef-ghT" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t ms;
		if (parse(&ms, bad[i]) != DRE_EPARSE)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(ms, -1);
	}
	// len is honoured.
	int64_t ms;
	assert_int_equal(
	    dre_time_parse(&ms, "2026-06-07T14:30:00Z", 10), DRE_OK);
	assert_int_equal(ms, 1780790400000LL);
}

static void
test_format(void **state)
{
	char buf[32];
	assert_int_equal(dre_time_format(buf, 1780842601234LL), 24);
	assert_string_equal(buf, "2026-06-07T14:30:01.234Z");
	dre_time_format(buf, 0);
	assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
	dre_time_format(buf, -1);
	assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
	dre_time_format(buf, 951782400000LL);
	assert_string_equal(buf, "2000-02-29T00:00:00.000Z");
	// Round trip over a range of dates, leap years included.
	for (int64_t t = -86400000LL * 800; t < 86400000LL * 40000;
	     t += 86400000LL * 7 + 3723004) {
		int64_t back;
		size_t  n = dre_time_format(buf, t);
		assert_int_equal(dre_time_parse(&back, buf, n), DRE_OK);
		assert_int_equal(back, t);
	}
}

static void
test_clocks(void **state)
{
	int64_t now = dre_now_ms();
	assert_true(now > 1700000000000LL); // after 2023
	int64_t m1 = dre_mono_ms(), m2 = dre_mono_ms();
	assert_true(m2 >= m1);
}

// dre_timespec_after: a valid timespec (nanoseconds below a second) that
// many milliseconds ahead on the clock asked for; a negative wait is now.
static void
test_timespec_after(void **state)
{
	(void) state;
	clockid_t clocks[] = { CLOCK_REALTIME, CLOCK_MONOTONIC };
	int64_t   waits[] = { 0, 1, 999, 1000, 1500, 86400001, -5 };
	for (size_t c = 0; c < 2; c++)
		for (size_t i = 0; i < sizeof(waits) / sizeof(waits[0]); i++) {
			struct timespec before, after;
			clock_gettime(clocks[c], &before);
			struct timespec t
			    = dre_timespec_after(clocks[c], waits[i]);
			clock_gettime(clocks[c], &after);
			assert_true(t.tv_nsec >= 0 && t.tv_nsec < 1000000000L);
			int64_t w = waits[i] > 0 ? waits[i] : 0;
			int64_t tn
			    = (int64_t) t.tv_sec * 1000000000 + t.tv_nsec;
			int64_t lo = (int64_t) before.tv_sec * 1000000000
			    + before.tv_nsec + w * 1000000;
			int64_t hi = (int64_t) after.tv_sec * 1000000000
			    + after.tv_nsec + w * 1000000;
			assert_true(tn >= lo && tn <= hi);
		}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_clocks),
		cmocka_unit_test(test_timespec_after),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
