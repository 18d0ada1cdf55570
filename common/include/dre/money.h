// money.h -- exact decimal arithmetic: money in minor units, quantities in
// thousandths, percentages in hundredths. Never a double.
#ifndef DRE_MONEY_H
#define DRE_MONEY_H

#include <stddef.h>
#include <stdint.h>

#include "dre/err.h"

#define DRE_MONEY_SCALE                                                       \
	2 // Decimal(15,2): minor units of a 2-exponent currency
#define DRE_QTY_SCALE 3 // Decimal(15,3): thousandths
#define DRE_PCT_SCALE 2 // percent in hundredths: 10% = 1000

// Decimal(15,s): at most 15 digits in all.
#define DRE_DECIMAL_MAX_DIGITS 15

typedef enum {
	DRE_ROUND_HALF_UP = 0, // commercial rounding, away from zero at .5
	DRE_ROUND_DOWN, // towards zero
	DRE_ROUND_UP, // away from zero
	DRE_ROUND_NONE, // no rounding at the promotion step (see README)
} dre_rounding;

// dre_rounding_parse maps "HALF_UP|DOWN|UP|NONE"; DRE_EINVAL otherwise.
dre_err     dre_rounding_parse(dre_rounding *out, const char *s);
const char *dre_rounding_name(dre_rounding r);

// dre_decimal_parse reads the exact decimal text s[0..len) (JSON number
// syntax, optional leading '-', optional exponent) into an integer scaled by
// 10^scale. Fails with DRE_EPARSE on bad syntax, DRE_EINVAL when the value has
// more fractional digits than scale (after removing trailing zeros) and
// DRE_ETOOBIG when it has more than max_digits digits in all (0 = 18).
dre_err dre_decimal_parse(
    int64_t *out, const char *s, size_t len, int scale, int max_digits);

// dre_decimal_format writes v / 10^scale with exactly scale decimals
// ("179.98", "2.000", "-0.50"). Returns the length; buf must hold 32 bytes.
size_t dre_decimal_format(char *buf, int64_t v, int scale);
// dre_decimal_format_trim is the same without trailing fractional zeros
// ("10", "12.5").
size_t dre_decimal_format_trim(char *buf, int64_t v, int scale);

// dre_div_round returns num/den rounded to an integer with mode (NONE acts
// as HALF_UP: an integer result must be chosen). den must be > 0.
int64_t dre_div_round(__int128 num, __int128 den, dre_rounding mode);

// dre_round_to_precision rounds an amount given in minor units (scale
// DRE_MONEY_SCALE) expressed as the rational num/den to `precision` decimals
// with mode, then to whole minor units (HALF_UP) when precision is finer than
// the minor unit. precision 0 rounds to whole currency units.
int64_t dre_round_to_precision(
    __int128 num, __int128 den, dre_rounding mode, int precision);

// dre_pct_of returns pct (hundredths of a percent) of amount (minor units),
// i.e. amount*pct/10000, rounded with mode at precision.
int64_t dre_pct_of(
    int64_t amount, int64_t pct, dre_rounding mode, int precision);

// dre_mul_qty returns price (minor units) * qty (thousandths), rounded
// HALF_UP to minor units: the line total.
int64_t dre_mul_qty(int64_t price, int64_t qty);

#endif
