// clock.c -- wall and monotonic clocks and RFC 3339 text.
//
// Dates are computed by hand: timegm/gmtime_r depend on TZ data and lock.
#include <errno.h>
#include <time.h>

#include "dre/clock.h"

int64_t
dre_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
dre_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
dre_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct timespec
dre_timespec_after(clockid_t clock, int64_t ms)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	if (ms < 0)
		ms = 0;
	ts.tv_sec += (time_t) (ms / 1000);
	ts.tv_nsec += (long) (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

void
dre_sleep_ms(int64_t ms)
{
	struct timespec ts
	    = { (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

// Howard Hinnant's algorithms; eras of 400 years keep them branch-light.
int64_t
dre_days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void
dre_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int
days_in_month(int64_t y, int m)
{
	static const int dm[]
	    = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

// digits reads exactly n decimal digits at s[*i]; -1 if any is missing.
static int
digits(const char *s, size_t len, size_t *i, int n)
{
	int v = 0;
	for (int k = 0; k < n; k++) {
		if (*i >= len || s[*i] < '0' || s[*i] > '9')
			return -1;
		v = v * 10 + (s[(*i)++] - '0');
	}
	return v;
}

static int
expect(const char *s, size_t len, size_t *i, char c)
{
	if (*i >= len || s[*i] != c)
		return 0;
	(*i)++;
	return 1;
}

dre_err
dre_time_parse(int64_t *ms, const char *s, size_t len)
{
	size_t i = 0;
	int    y = digits(s, len, &i, 4);
	if (y < 0 || !expect(s, len, &i, '-'))
		return DRE_EPARSE;
	int mo = digits(s, len, &i, 2);
	if (mo < 1 || mo > 12 || !expect(s, len, &i, '-'))
		return DRE_EPARSE;
	int d = digits(s, len, &i, 2);
	if (d < 1 || d > days_in_month(y, mo))
		return DRE_EPARSE;
	int64_t t = dre_days_from_civil(y, mo, d) * 86400000;
	if (i == len) {
		*ms = t;
		return DRE_OK;
	}
	if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
		return DRE_EPARSE;
	i++;
	int hh = digits(s, len, &i, 2);
	if (hh < 0 || hh > 23 || !expect(s, len, &i, ':'))
		return DRE_EPARSE;
	int mi = digits(s, len, &i, 2);
	if (mi < 0 || mi > 59 || !expect(s, len, &i, ':'))
		return DRE_EPARSE;
	// 60 is a leap second; it is folded onto the next second.
	int ss = digits(s, len, &i, 2);
	if (ss < 0 || ss > 60)
		return DRE_EPARSE;
	int frac = 0;
	if (i < len && s[i] == '.') {
		i++;
		int n = 0;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			// Beyond milliseconds the digits are read but dropped.
			if (n < 3)
				frac = frac * 10 + (s[i] - '0');
			n++;
			i++;
		}
		if (n == 0)
			return DRE_EPARSE;
		for (; n < 3; n++)
			frac *= 10;
	}
	t += ((int64_t) hh * 3600 + mi * 60 + ss) * 1000 + frac;
	if (i == len) {
		// ISO 8601 local time without offset: DRE clocks run in UTC.
		*ms = t;
		return DRE_OK;
	}
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		int sign = s[i++] == '-' ? -1 : 1;
		int oh = digits(s, len, &i, 2);
		if (oh < 0 || oh > 23)
			return DRE_EPARSE;
		expect(s, len, &i, ':');
		int om = digits(s, len, &i, 2);
		if (om < 0 || om > 59)
			return DRE_EPARSE;
		// Local time minus its offset is UTC.
		t -= sign * ((int64_t) oh * 3600 + om * 60) * 1000;
	} else {
		return DRE_EPARSE;
	}
	if (i != len)
		return DRE_EPARSE;
	*ms = t;
	return DRE_OK;
}

static char *
put2(char *p, int v)
{
	p[0] = (char) ('0' + v / 10);
	p[1] = (char) ('0' + v % 10);
	return p + 2;
}

size_t
dre_time_format(char *buf, int64_t ms)
{
	// Floor division so times before 1970 still format correctly.
	int64_t days = ms / 86400000;
	int64_t rem = ms % 86400000;
	if (rem < 0) {
		rem += 86400000;
		days--;
	}
	int64_t y;
	int     m, d;
	dre_civil_from_days(days, &y, &m, &d);
	if (y < 0 || y > 9999) {
		// Out of the 4-digit range: clamp rather than print garbage.
		y = y < 0 ? 0 : 9999;
	}
	int   msec = (int) (rem % 1000);
	int   sec = (int) (rem / 1000);
	char *p = buf;
	p = put2(p, (int) (y / 100));
	p = put2(p, (int) (y % 100));
	*p++ = '-';
	p = put2(p, m);
	*p++ = '-';
	p = put2(p, d);
	*p++ = 'T';
	p = put2(p, sec / 3600);
	*p++ = ':';
	p = put2(p, sec / 60 % 60);
	*p++ = ':';
	p = put2(p, sec % 60);
	*p++ = '.';
	*p++ = (char) ('0' + msec / 100);
	p = put2(p, msec % 100);
	*p++ = 'Z';
	*p = '\0';
	return (size_t) (p - buf);
}
