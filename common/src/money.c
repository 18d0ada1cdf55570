// money.c -- exact decimal arithmetic on scaled integers.
//
// No double is ever involved, so 89.99 stays 8999 from the JSON text to
// the receipt.
#include <stdbool.h>
#include <string.h>

#include "dre/money.h"

#define PARSE_MAX_DIGITS 18 // 10^18 < INT64_MAX: every result fits

static const char *const rounding_names[]
    = { "HALF_UP", "DOWN", "UP", "NONE" };

dre_err
dre_rounding_parse(dre_rounding *out, const char *s)
{
	if (s == NULL)
		return DRE_EINVAL;
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, rounding_names[i]) == 0) {
			*out = (dre_rounding) i;
			return DRE_OK;
		}
	}
	return DRE_EINVAL;
}

const char *
dre_rounding_name(dre_rounding r)
{
	if ((unsigned) r > DRE_ROUND_NONE)
		return "HALF_UP";
	return rounding_names[r];
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

dre_err
dre_decimal_parse(
    int64_t *out, const char *s, size_t len, int scale, int max_digits)
{
	if (s == NULL || scale < 0 || scale > PARSE_MAX_DIGITS)
		return s == NULL ? DRE_EPARSE : DRE_EINVAL;
	if (max_digits <= 0 || max_digits > PARSE_MAX_DIGITS)
		max_digits = PARSE_MAX_DIGITS;

	// Syntax first (JSON number grammar), remembering where the digits
	// of the mantissa are: [int_b, int_e) and [frac_b, frac_e).
	size_t i = 0;
	bool   neg = false;
	if (i < len && s[i] == '-') {
		neg = true;
		i++;
	}
	size_t int_b = i;
	if (i >= len || !is_digit(s[i]))
		return DRE_EPARSE;
	if (s[i] == '0') {
		i++;
		if (i < len && is_digit(s[i]))
			return DRE_EPARSE; // leading zero
	} else {
		while (i < len && is_digit(s[i]))
			i++;
	}
	size_t int_e = i, frac_b = i, frac_e = i;
	if (i < len && s[i] == '.') {
		frac_b = ++i;
		while (i < len && is_digit(s[i]))
			i++;
		frac_e = i;
		if (frac_e == frac_b)
			return DRE_EPARSE;
	}
	int64_t exp = 0;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		bool eneg = false;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			eneg = s[i++] == '-';
		if (i >= len || !is_digit(s[i]))
			return DRE_EPARSE;
		while (i < len && is_digit(s[i])) {
			// Saturate: any exponent this large already decides
			// the outcome, and the count cannot overflow.
			if (exp < 1000000000)
				exp = exp * 10 + (s[i] - '0');
			i++;
		}
		if (eneg)
			exp = -exp;
	}
	if (i != len)
		return DRE_EPARSE;

	// The mantissa's digits d[0..n) with leading zeros skipped; value =
	// d * 10^(exp - fraction digits). Trailing zeros move into exp.
	size_t nint = int_e - int_b, nfrac = frac_e - frac_b;
	size_t n = nint + nfrac;
#define DIGIT(k) (k < nint ? s[int_b + k] : s[frac_b + (k - nint)])
	size_t lead = 0;
	while (lead < n && DIGIT(lead) == '0')
		lead++;
	if (lead == n) {
		*out = 0; // any zero, "-0.000e7" included
		return DRE_OK;
	}
	size_t end = n;
	while (DIGIT(end - 1) == '0')
		end--;
	int64_t e = exp - (int64_t) nfrac + (int64_t) (n - end);
	// Scaled value = digits * 10^(e + scale).
	int64_t shift = e + scale;
	if (shift < 0)
		return DRE_EINVAL; // more fractional digits than scale
	int64_t ndig = (int64_t) (end - lead) + shift;
	if (ndig > max_digits)
		return DRE_ETOOBIG;
	int64_t v = 0;
	for (size_t k = lead; k < end; k++)
		v = v * 10 + (DIGIT(k) - '0');
#undef DIGIT
	for (int64_t k = 0; k < shift; k++)
		v *= 10;
	*out = neg ? -v : v;
	return DRE_OK;
}

// "00" to "99": two digits per division (an answer writes hundreds of
// amounts).
static const char digits2[] = "00010203040506070809"
                              "10111213141516171819"
                              "20212223242526272829"
                              "30313233343536373839"
                              "40414243444546474849"
                              "50515253545556575859"
                              "60616263646566676869"
                              "70717273747576777879"
                              "80818283848586878889"
                              "90919293949596979899";

// format_u writes the digits of u into the end of tmp; returns the start.
static char *
format_u(char *end, uint64_t u)
{
	while (u >= 100) {
		end -= 2;
		memcpy(end, digits2 + 2 * (u % 100), 2);
		u /= 100;
	}
	if (u >= 10) {
		end -= 2;
		memcpy(end, digits2 + 2 * u, 2);
	} else
		*--end = (char) ('0' + u);
	return end;
}

static size_t
format(char *buf, int64_t v, int scale, bool trim)
{
	if (scale < 0)
		scale = 0;
	if (scale > PARSE_MAX_DIGITS)
		scale = PARSE_MAX_DIGITS;
	// Unsigned magnitude: INT64_MIN has no positive int64.
	uint64_t u = v < 0 ? 0 - (uint64_t) v : (uint64_t) v;
	uint64_t ip, fp;
	// The scales DRE writes (money 2, quantities 3) divide by a constant,
	// which the compiler turns into a multiplication; an answer holds
	// hundreds of amounts.
	switch (scale) {
	case 0:
		ip = u;
		fp = 0;
		break;
	case 2:
		ip = u / 100;
		fp = u % 100;
		break;
	case 3:
		ip = u / 1000;
		fp = u % 1000;
		break;
	default: {
		uint64_t p = 1;
		for (int k = 0; k < scale; k++)
			p *= 10;
		ip = u / p;
		fp = u % p;
		break;
	}
	}
	char   tmp[24];
	char  *d = format_u(tmp + sizeof(tmp), ip);
	size_t n = 0;
	if (v < 0)
		buf[n++] = '-';
	size_t il = (size_t) (tmp + sizeof(tmp) - d);
	memcpy(buf + n, d, il);
	n += il;
	int fl = scale;
	if (trim)
		while (fl > 0 && fp % 10 == 0) {
			fp /= 10;
			fl--;
		}
	if (fl == 2 && !trim) { // money
		buf[n++] = '.';
		memcpy(buf + n, digits2 + 2 * fp, 2);
		n += 2;
	} else if (fl > 0) {
		buf[n++] = '.';
		for (int k = fl - 1; k >= 0; k--) {
			buf[n + (size_t) k] = (char) ('0' + fp % 10);
			fp /= 10;
		}
		n += (size_t) fl;
	}
	buf[n] = '\0';
	return n;
}

size_t
dre_decimal_format(char *buf, int64_t v, int scale)
{
	return format(buf, v, scale, false);
}

size_t
dre_decimal_format_trim(char *buf, int64_t v, int scale)
{
	return format(buf, v, scale, true);
}

int64_t
dre_div_round(__int128 num, __int128 den, dre_rounding mode)
{
	if (den <= 0)
		return 0; // contract violation; never trap on a request
	__int128 q = num / den, r = num % den;
	if (r == 0)
		return (int64_t) q;
	__int128 away = num < 0 ? -1 : 1;
	__int128 ar = r < 0 ? -r : r;
	switch (mode) {
	case DRE_ROUND_DOWN:
		break;
	case DRE_ROUND_UP:
		q += away;
		break;
	case DRE_ROUND_HALF_UP:
	case DRE_ROUND_NONE:
	default:
		// ar >= den/2 without computing 2*ar, which could overflow.
		if (ar >= den - ar)
			q += away;
		break;
	}
	return (int64_t) q;
}

int64_t
dre_round_to_precision(
    __int128 num, __int128 den, dre_rounding mode, int precision)
{
	if (precision < 0)
		precision = 0;
	if (precision <= DRE_MONEY_SCALE) {
		// 0 -> steps of 100 minor units, 1 -> 10, 2 -> 1.
		int64_t unit = 1;
		for (int k = precision; k < DRE_MONEY_SCALE; k++)
			unit *= 10;
		return dre_div_round(num, den * unit, mode) * unit;
	}
	// Finer than the minor unit: round at that precision with mode, then
	// commercially to whole minor units (the amount that is paid).
	int extra = precision - DRE_MONEY_SCALE;
	if (extra > 12)
		extra = 12; // keeps num * 10^extra inside __int128
	__int128 f = 1;
	for (int k = 0; k < extra; k++)
		f *= 10;
	int64_t fine = dre_div_round(num * f, den, mode);
	return dre_div_round(fine, f, DRE_ROUND_HALF_UP);
}

int64_t
dre_pct_of(int64_t amount, int64_t pct, dre_rounding mode, int precision)
{
	return dre_round_to_precision(
	    (__int128) amount * pct, 10000, mode, precision);
}

int64_t
dre_mul_qty(int64_t price, int64_t qty)
{
	return dre_div_round((__int128) price * qty, 1000, DRE_ROUND_HALF_UP);
}
