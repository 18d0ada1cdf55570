// clock.h -- wall and monotonic time, ISO-8601 text.
#ifndef DRE_CLOCK_H
#define DRE_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "dre/err.h"

// dre_now_ms is wall-clock epoch milliseconds.
int64_t dre_now_ms(void);
// dre_mono_ms is a monotonic clock in milliseconds (for deadlines).
int64_t dre_mono_ms(void);
// dre_mono_us is the same clock in microseconds (for durations).
int64_t dre_mono_us(void);
// dre_timespec_after is the time ms (>= 0) from now on clock (CLOCK_REALTIME
// or CLOCK_MONOTONIC, as the condition variable waits): the absolute
// deadline of a pthread_cond_timedwait.
struct timespec dre_timespec_after(clockid_t clock, int64_t ms);
// dre_sleep_ms sleeps ms (>= 0) milliseconds, a signal notwithstanding.
void dre_sleep_ms(int64_t ms);
// dre_time_parse parses ISO-8601 / RFC 3339 ("2026-06-07T14:30:00Z",
// "...T14:30:00.123+02:00", "2026-06-07") into epoch millis.
dre_err dre_time_parse(int64_t *ms, const char *s, size_t len);
// dre_days_from_civil counts the days since 1970-01-01 of the proleptic
// Gregorian date y-m-d (m 1-12, d 1-31); dre_civil_from_days is its inverse.
int64_t dre_days_from_civil(int64_t y, int m, int d);
void    dre_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
// dre_time_format writes "YYYY-MM-DDTHH:MM:SS.mmmZ"; buf holds 32 bytes.
size_t dre_time_format(char *buf, int64_t ms);

#endif
