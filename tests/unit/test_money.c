// test_money.c -- exact parsing, formatting and rounding of money values.
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dre/money.h"

static dre_err
parse(int64_t *v, const char *s, int scale, int max)
{
	*v = -777;
	return dre_decimal_parse(v, s, strlen(s), scale, max);
}

static void
test_parse_ok(void **state)
{
	int64_t v;
	assert_int_equal(parse(&v, "89.99", 2, 15), DRE_OK);
	assert_int_equal(v, 8999);
	assert_int_equal(parse(&v, "89.990", 2, 15), DRE_OK);
	assert_int_equal(v, 8999);
	assert_int_equal(parse(&v, "-0.5", 2, 15), DRE_OK);
	assert_int_equal(v, -50);
	assert_int_equal(parse(&v, "0", 2, 15), DRE_OK);
	assert_int_equal(v, 0);
	assert_int_equal(parse(&v, "-0", 2, 15), DRE_OK);
	assert_int_equal(v, 0);
	assert_int_equal(parse(&v, "1e2", 2, 15), DRE_OK);
	assert_int_equal(v, 10000);
	assert_int_equal(parse(&v, "1.50E-1", 2, 15), DRE_OK);
	assert_int_equal(v, 15);
	assert_int_equal(parse(&v, "2.5e+1", 3, 15), DRE_OK);
	assert_int_equal(v, 25000);
	assert_int_equal(parse(&v, "12345e-4", 4, 15), DRE_OK);
	assert_int_equal(v, 12345);
	assert_int_equal(parse(&v, "0.000e99999999999999", 2, 15), DRE_OK);
	assert_int_equal(v, 0);
	assert_int_equal(parse(&v, "1234567890123.45", 2, 15), DRE_OK);
	assert_int_equal(v, 123456789012345);
	assert_int_equal(parse(&v, "999999999999999999", 0, 0), DRE_OK);
	assert_int_equal(v, 999999999999999999LL);
	assert_int_equal(parse(&v, "-999999999999999999", 0, 0), DRE_OK);
	assert_int_equal(v, -999999999999999999LL);
	// Leading zeros of the fraction are not significant digits.
	assert_int_equal(parse(&v, "0.001", 3, 1), DRE_OK);
	assert_int_equal(v, 1);
}

static void
test_parse_errors(void **state)
{
	int64_t     v;
	const char *bad[] = { "", "-", "+1", "01", "-01", "1.", ".5", "1e",
		"1e+", "1.5x", " 1", "1 ", "0x10", "NaN", "Infinity", "1,5",
		"--1", "1..2", "1e5.0" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(&v, bad[i], 2, 15), DRE_EPARSE);
		assert_int_equal(v, -777); // untouched on failure
	}
	assert_int_equal(parse(&v, "89.991", 2, 15), DRE_EINVAL);
	assert_int_equal(parse(&v, "0.001", 2, 15), DRE_EINVAL);
	assert_int_equal(parse(&v, "1e-3", 2, 15), DRE_EINVAL);
	assert_int_equal(parse(&v, "1.5", 0, 15), DRE_EINVAL);
	assert_int_equal(v, -777);
	// Decimal(15,2): 14 integer digits are one too many.
	assert_int_equal(parse(&v, "12345678901234", 2, 15), DRE_ETOOBIG);
	assert_int_equal(parse(&v, "1e13", 2, 15), DRE_ETOOBIG);
	assert_int_equal(parse(&v, "1e12", 2, 15), DRE_OK);
	assert_int_equal(parse(&v, "9999999999999999999", 0, 0), DRE_ETOOBIG);
	assert_int_equal(
	    parse(&v, "1e999999999999999999999", 2, 0), DRE_ETOOBIG);
	assert_int_equal(
	    parse(&v, "1e-999999999999999999999", 2, 0), DRE_EINVAL);
	// Length is honoured: no reading past len.
	assert_int_equal(dre_decimal_parse(&v, "12.345", 4, 2, 15), DRE_OK);
	assert_int_equal(v, 1230);
}

static void
test_format(void **state)
{
	char buf[32];
	assert_int_equal(dre_decimal_format(buf, 17998, 2), 6);
	assert_string_equal(buf, "179.98");
	dre_decimal_format(buf, 2000, 3);
	assert_string_equal(buf, "2.000");
	dre_decimal_format(buf, -50, 2);
	assert_string_equal(buf, "-0.50");
	dre_decimal_format(buf, 5, 2);
	assert_string_equal(buf, "0.05");
	dre_decimal_format(buf, 0, 2);
	assert_string_equal(buf, "0.00");
	dre_decimal_format(buf, 42, 0);
	assert_string_equal(buf, "42");
	dre_decimal_format(buf, INT64_MIN, 2);
	assert_string_equal(buf, "-92233720368547758.08");
	dre_decimal_format(buf, INT64_MAX, 0);
	assert_string_equal(buf, "9223372036854775807");
	dre_decimal_format_trim(buf, 1000, 2);
	assert_string_equal(buf, "10");
	dre_decimal_format_trim(buf, 1250, 2);
	assert_string_equal(buf, "12.5");
	dre_decimal_format_trim(buf, -1005, 3);
	assert_string_equal(buf, "-1.005");
	assert_int_equal(dre_decimal_format_trim(buf, 0, 2), 1);
	assert_string_equal(buf, "0");
}

// The reference: printf on the integer and fractional parts.
static size_t
ref_format(char *buf, int64_t v, int scale, bool trim)
{
	uint64_t u = v < 0 ? 0 - (uint64_t) v : (uint64_t) v, p = 1;
	for (int k = 0; k < scale; k++)
		p *= 10;
	int n = snprintf(
	    buf, 32, "%s%llu", v < 0 ? "-" : "", (unsigned long long) (u / p));
	if (scale > 0) {
		n += snprintf(buf + n, (size_t) (32 - n), ".%0*llu", scale,
		    (unsigned long long) (u % p));
		if (trim) {
			while (buf[n - 1] == '0')
				buf[--n] = '\0';
			if (buf[n - 1] == '.')
				buf[--n] = '\0';
		}
	}
	return (size_t) n;
}

// Every digit count, both signs, the scales DRE writes and others, against
// the reference: the fast paths (two digits at a time, money's fraction)
// must write what printf writes.
static void
test_format_matches_printf(void **state)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	char     got[32], want[32];
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		int64_t v = (int64_t) (x >> (x % 64)); // every magnitude
		if (i % 7 == 0)
			v = -v;
		if (i < 2000)
			v = i - 1000; // around zero
		int    scale = (int) (x % 7);
		bool   trim = (x >> 8) % 2;
		size_t n = trim ? dre_decimal_format_trim(got, v, scale)
		                : dre_decimal_format(got, v, scale);
		size_t m = ref_format(want, v, scale, trim);
		assert_string_equal(got, want);
		assert_int_equal(n, m);
	}
}

static void
test_div_round(void **state)
{
	// 2.5, -2.5, 2.4, -2.4, 2.6 and -2.6 under every mode.
	struct {
		int64_t num, den;
		int64_t half_up, down, up;
	} c[] = {
		{ 25, 10, 3, 2, 3 },
		{ -25, 10, -3, -2, -3 },
		{ 24, 10, 2, 2, 3 },
		{ -24, 10, -2, -2, -3 },
		{ 26, 10, 3, 2, 3 },
		{ -26, 10, -3, -2, -3 },
		{ 20, 10, 2, 2, 2 },
		{ -20, 10, -2, -2, -2 },
		{ 1, 3, 0, 0, 1 },
		{ -1, 3, 0, 0, -1 },
		{ 2, 3, 1, 0, 1 },
		{ 0, 7, 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		assert_int_equal(
		    dre_div_round(c[i].num, c[i].den, DRE_ROUND_HALF_UP),
		    c[i].half_up);
		assert_int_equal(
		    dre_div_round(c[i].num, c[i].den, DRE_ROUND_NONE),
		    c[i].half_up);
		assert_int_equal(
		    dre_div_round(c[i].num, c[i].den, DRE_ROUND_DOWN),
		    c[i].down);
		assert_int_equal(
		    dre_div_round(c[i].num, c[i].den, DRE_ROUND_UP), c[i].up);
	}
	// Large values stay exact in __int128.
	__int128 big = (__int128) INT64_MAX * 10000 + 5000;
	assert_int_equal(dre_div_round(big, 10000, DRE_ROUND_DOWN), INT64_MAX);
}

static void
test_pct_and_precision(void **state)
{
	// The example of the brief: 10% of 179.98.
	assert_int_equal(dre_pct_of(17998, 1000, DRE_ROUND_HALF_UP, 2), 1800);
	assert_int_equal(dre_pct_of(17998, 1000, DRE_ROUND_DOWN, 2), 1799);
	assert_int_equal(dre_pct_of(17998, 1000, DRE_ROUND_UP, 2), 1800);
	assert_int_equal(dre_pct_of(17998, 1000, DRE_ROUND_NONE, 2), 1800);
	// 15% of 9.99 = 1.4985
	assert_int_equal(dre_pct_of(999, 1500, DRE_ROUND_HALF_UP, 2), 150);
	assert_int_equal(dre_pct_of(999, 1500, DRE_ROUND_DOWN, 2), 149);
	// Negative amounts round symmetrically (away from / towards zero).
	assert_int_equal(dre_pct_of(-999, 1500, DRE_ROUND_HALF_UP, 2), -150);
	assert_int_equal(dre_pct_of(-999, 1500, DRE_ROUND_DOWN, 2), -149);
	assert_int_equal(dre_pct_of(-999, 1500, DRE_ROUND_UP, 2), -150);
	// precision 0 and 1: whole units and tenths.
	assert_int_equal(dre_pct_of(17998, 1000, DRE_ROUND_HALF_UP, 0), 1800);
	assert_int_equal(dre_pct_of(17998, 1000, DRE_ROUND_DOWN, 0), 1700);
	assert_int_equal(dre_pct_of(17998, 1000, DRE_ROUND_UP, 1), 1800);
	assert_int_equal(dre_pct_of(17948, 1000, DRE_ROUND_DOWN, 1), 1790);
	assert_int_equal(dre_pct_of(-17948, 1000, DRE_ROUND_UP, 1), -1800);
	assert_int_equal(
	    dre_round_to_precision(250, 1, DRE_ROUND_HALF_UP, 0), 300);
	assert_int_equal(
	    dre_round_to_precision(-250, 1, DRE_ROUND_HALF_UP, 0), -300);
	assert_int_equal(
	    dre_round_to_precision(249, 1, DRE_ROUND_HALF_UP, 0), 200);
	// precision 3 rounds at thousandths of a unit with the mode first,
	// then HALF_UP to minor units; 24691/20 = 1234.55 minor units.
	assert_int_equal(dre_round_to_precision(
	                     24691, 20, DRE_ROUND_UP, 3), // 1234.55 minor
	    1235); // 12.346 -> 1234.6 -> 1235
	assert_int_equal(dre_round_to_precision(24689, 20, DRE_ROUND_DOWN, 3),
	    1234); // 1234.45 -> 12.344 (1234.4) -> 1234
	assert_int_equal(
	    dre_round_to_precision(24689, 20, DRE_ROUND_HALF_UP, 3),
	    1235); // 1234.45 -> 12.345 (1234.5) -> 1235
	assert_int_equal(
	    dre_round_to_precision(-24689, 20, DRE_ROUND_HALF_UP, 3), -1235);
}

static void
test_mul_qty(void **state)
{
	assert_int_equal(dre_mul_qty(8999, 2000), 17998);
	assert_int_equal(dre_mul_qty(199, 1500), 299); // 298.5 -> 299
	assert_int_equal(dre_mul_qty(-199, 1500), -299);
	assert_int_equal(dre_mul_qty(333, 333), 111); // 110.889
	assert_int_equal(dre_mul_qty(100, 0), 0);
}

static void
test_rounding_names(void **state)
{
	dre_rounding r = DRE_ROUND_UP;
	assert_int_equal(dre_rounding_parse(&r, "DOWN"), DRE_OK);
	assert_int_equal(r, DRE_ROUND_DOWN);
	assert_int_equal(dre_rounding_parse(&r, "HALF_UP"), DRE_OK);
	assert_int_equal(r, DRE_ROUND_HALF_UP);
	assert_int_equal(dre_rounding_parse(&r, "NONE"), DRE_OK);
	assert_int_equal(r, DRE_ROUND_NONE);
	assert_int_equal(dre_rounding_parse(&r, "half_up"), DRE_EINVAL);
	assert_int_equal(dre_rounding_parse(&r, NULL), DRE_EINVAL);
	assert_int_equal(r, DRE_ROUND_NONE);
	assert_string_equal(dre_rounding_name(DRE_ROUND_UP), "UP");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_format_matches_printf),
		cmocka_unit_test(test_div_round),
		cmocka_unit_test(test_pct_and_precision),
		cmocka_unit_test(test_mul_qty),
		cmocka_unit_test(test_rounding_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
