// engine_tz.c -- local time in a promotion's time zone without touching the
// process's TZ: TZif files from the system zoneinfo, read once and shared
// read-only by every evaluation thread.
//
// A zone is its transition table (the 64-bit v2+ block of the file) plus the
// POSIX TZ rule of the file's footer for instants after the last transition
// (slim zoneinfo files end early and rely on it).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/clock.h"
#include "index.h"

typedef struct {
	int     kind; // 'M' month.week.day, 'J' Julian 1..365, 'D' day 0..365
	int     mon, week, day; // M; day is the weekday (0 = Sunday)
	int     yday; // J, D
	int32_t secs; // local time of day of the change
} tz_when;

struct ix_zone {
	char    *name;
	int64_t *at; // transitions, UTC seconds, ascending
	int32_t *off; // UTC offset (seconds) from each transition on
	uint32_t n;
	int32_t  off0; // before the first transition
	// footer rule
	bool    has_rule;
	int32_t std_off, dst_off; // seconds east of UTC
	bool    has_dst;
	tz_when start, end;
};

// ---- TZif
// -------------------------------------------------------------------

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16
	    | (uint32_t) p[2] << 8 | p[3];
}

static int64_t
be64(const unsigned char *p)
{
	return (int64_t) ((uint64_t) be32(p) << 32 | be32(p + 4));
}

// rule_name skips a zone abbreviation ("CET" or "<+03>").
static const char *
rule_name(const char *s)
{
	if (*s == '<') {
		const char *e = strchr(s, '>');
		return e ? e + 1 : NULL;
	}
	const char *b = s;
	while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
		s++;
	return s - b >= 3 ? s : NULL;
}

// rule_hms reads [+-]hh[:mm[:ss]] into seconds.
static const char *
rule_hms(const char *s, int32_t *out)
{
	int sign = 1;
	if (*s == '+' || *s == '-')
		sign = *s++ == '-' ? -1 : 1;
	int32_t v = 0, part = 0, k = 0;
	for (; k < 3; k++) {
		if (*s < '0' || *s > '9')
			return NULL;
		part = 0;
		while (*s >= '0' && *s <= '9')
			part = part * 10 + (*s++ - '0');
		v += part * (k == 0 ? 3600 : k == 1 ? 60 : 1);
		if (*s != ':')
			break;
		s++;
	}
	*out = sign * v;
	return s;
}

static const char *
rule_num(const char *s, int *out)
{
	if (*s < '0' || *s > '9')
		return NULL;
	int v = 0;
	while (*s >= '0' && *s <= '9')
		v = v * 10 + (*s++ - '0');
	*out = v;
	return s;
}

static const char *
rule_when(const char *s, tz_when *w)
{
	if (*s == 'M') {
		w->kind = 'M';
		if (!(s = rule_num(s + 1, &w->mon)) || *s++ != '.'
		    || !(s = rule_num(s, &w->week)) || *s++ != '.'
		    || !(s = rule_num(s, &w->day)))
			return NULL;
		if (w->mon < 1 || w->mon > 12 || w->week < 1 || w->week > 5
		    || w->day > 6)
			return NULL;
	} else if (*s == 'J') {
		w->kind = 'J';
		if (!(s = rule_num(s + 1, &w->yday)) || w->yday < 1
		    || w->yday > 365)
			return NULL;
	} else {
		w->kind = 'D';
		if (!(s = rule_num(s, &w->yday)) || w->yday > 365)
			return NULL;
	}
	w->secs = 7200;
	if (*s == '/')
		s = rule_hms(s + 1, &w->secs);
	return s;
}

// rule_parse reads a POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3").
static bool
rule_parse(ix_zone *z, const char *s)
{
	int32_t o;
	if (!(s = rule_name(s)) || !(s = rule_hms(s, &o)))
		return false;
	z->std_off = -o; // POSIX offsets count west of Greenwich
	z->has_rule = true;
	if (*s == '\0')
		return true;
	if (!(s = rule_name(s)))
		return false;
	z->dst_off = z->std_off + 3600;
	if (*s != ',' && *s != '\0') {
		if (!(s = rule_hms(s, &o)))
			return false;
		z->dst_off = -o;
	}
	if (*s == '\0') { // DST without rules: US rules, as glibc assumes
		z->start = (tz_when) { 'M', 3, 2, 0, 0, 7200 };
		z->end = (tz_when) { 'M', 11, 1, 0, 0, 7200 };
	} else if (*s != ',' || !(s = rule_when(s + 1, &z->start)) || *s != ','
	    || !(s = rule_when(s + 1, &z->end)) || *s != '\0')
		return false;
	z->has_dst = true;
	return true;
}

static bool
zone_parse(ix_zone *z, const unsigned char *d, size_t len)
{
	if (len < 44 || memcmp(d, "TZif", 4) != 0)
		return false;
	int      ver = d[4];
	uint32_t cnt[6];
	for (int i = 0; i < 6; i++)
		cnt[i] = be32(d + 20 + 4 * i);
	// counts: isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
	size_t tsz = 4, lsz = 8;
	size_t body = (size_t) cnt[3] * 5 + cnt[4] * 6 + cnt[5]
	    + (size_t) cnt[2] * lsz + cnt[1] + cnt[0];
	const unsigned char *p = d + 44;
	if (ver >= '2') { // skip the 32-bit block, read the 64-bit one
		if ((size_t) (p - d) + body + 44 > len)
			return false;
		p += body;
		if (memcmp(p, "TZif", 4) != 0)
			return false;
		for (int i = 0; i < 6; i++)
			cnt[i] = be32(p + 20 + 4 * i);
		p += 44;
		tsz = 8;
		lsz = 12;
	}
	body = (size_t) cnt[3] * (tsz + 1) + cnt[4] * 6 + cnt[5]
	    + (size_t) cnt[2] * lsz + cnt[1] + cnt[0];
	if (cnt[4] == 0 || (size_t) (p - d) + body > len)
		return false;
	const unsigned char *times = p, *idx = p + (size_t) cnt[3] * tsz;
	const unsigned char *types = idx + cnt[3];
	z->n = cnt[3];
	z->at = calloc(z->n + 1, sizeof(int64_t));
	z->off = calloc(z->n + 1, sizeof(int32_t));
	if (z->at == NULL || z->off == NULL)
		return false;
	for (uint32_t i = 0; i < z->n; i++) {
		z->at[i] = tsz == 8 ? be64(times + 8 * i)
		                    : (int32_t) be32(times + 4 * i);
		uint8_t t = idx[i];
		if (t >= cnt[4])
			return false;
		z->off[i] = (int32_t) be32(types + 6 * t);
	}
	// Before the first transition: the first standard-time type.
	z->off0 = (int32_t) be32(types);
	for (uint32_t t = 0; t < cnt[4]; t++)
		if (types[6 * t + 4] == 0) {
			z->off0 = (int32_t) be32(types + 6 * t);
			break;
		}
	p += body;
	if (ver >= '2' && (size_t) (p - d) < len && *p == '\n') {
		const char *f = (const char *) p + 1;
		const char *e = memchr(f, '\n', len - (size_t) (p - d) - 1);
		if (e != NULL && e > f && e - f < 128) {
			char rule[128];
			memcpy(rule, f, (size_t) (e - f));
			rule[e - f] = '\0';
			if (!rule_parse(z, rule))
				z->has_rule = false;
		}
	}
	return true;
}

// ---- civil calendar -----------------------------------------------------

static int64_t
year_of(int64_t days)
{
	int64_t y;
	int     m, d;
	dre_civil_from_days(days, &y, &m, &d);
	return y;
}

static bool
leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

// when_local: local seconds since the epoch of rule w in year y.
static int64_t
when_local(const tz_when *w, int64_t y)
{
	int64_t day;
	if (w->kind == 'J') {
		day = dre_days_from_civil(y, 1, 1) + w->yday - 1;
		if (leap(y) && w->yday >= 60)
			day++;
	} else if (w->kind == 'D') {
		day = dre_days_from_civil(y, 1, 1) + w->yday;
	} else {
		int64_t first = dre_days_from_civil(y, w->mon, 1);
		int     wd = (int) (((first + 4) % 7 + 7) % 7); // 0 = Sunday
		int     delta = (w->day - wd + 7) % 7;
		day = first + delta + 7 * (w->week - 1);
		int mdays[] = { 31, leap(y) ? 29 : 28, 31, 30, 31, 30, 31, 31,
			30, 31, 30, 31 };
		while (day >= first + mdays[w->mon - 1])
			day -= 7; // week 5 = the last one
	}
	return day * 86400 + w->secs;
}

static int32_t
rule_offset(const ix_zone *z, int64_t t)
{
	if (!z->has_dst)
		return z->std_off;
	int64_t y = year_of(
	    (t + z->std_off) / 86400 - ((t + z->std_off) % 86400 < 0));
	int64_t s = when_local(&z->start, y) - z->std_off;
	int64_t e = when_local(&z->end, y) - z->dst_off;
	bool    dst = s < e ? (t >= s && t < e) : !(t >= e && t < s);
	return dst ? z->dst_off : z->std_off;
}

int32_t
ix_zone_offset(const ix_zone *z, int64_t t)
{
	if (z == NULL)
		return 0;
	if (z->n == 0 || t < z->at[0])
		return z->n == 0 && z->has_rule ? rule_offset(z, t) : z->off0;
	if (t >= z->at[z->n - 1] && z->has_rule)
		return rule_offset(z, t);
	uint32_t lo = 0, hi = z->n - 1; // last transition <= t
	while (lo < hi) {
		uint32_t mid = (lo + hi + 1) / 2;
		if (z->at[mid] <= t)
			lo = mid;
		else
			hi = mid - 1;
	}
	return z->off[lo];
}

// ---- the shared table
// -------------------------------------------------------

// Zones are loaded on first use by an index build (a writer) and kept for the
// life of the process: there are a few hundred names at most, and an index
// version never has to count references to them.
static pthread_mutex_t zlock = PTHREAD_MUTEX_INITIALIZER;
static ix_zone       **zones;
static size_t          nzones, capzones;

static ix_zone *
zone_load(const char *name)
{
	char path[160];
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", name);
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	unsigned char *d = malloc(1 << 16);
	size_t         len = d ? fread(d, 1, 1 << 16, f) : 0;
	fclose(f);
	ix_zone *z = calloc(1, sizeof(*z));
	if (d == NULL || z == NULL || !zone_parse(z, d, len)
	    || (z->name = strdup(name)) == NULL) {
		if (z != NULL) {
			free(z->at);
			free(z->off);
		}
		free(z);
		free(d);
		return NULL;
	}
	free(d);
	return z;
}

const ix_zone *
ix_zone_get(const char *name)
{
	if (name == NULL || strcmp(name, "UTC") == 0 || name[0] == '\0')
		return NULL;
	pthread_mutex_lock(&zlock);
	ix_zone *z = NULL;
	for (size_t i = 0; i < nzones; i++)
		if (strcmp(zones[i]->name, name) == 0) {
			z = zones[i];
			break;
		}
	if (z == NULL && (z = zone_load(name)) != NULL) {
		if (nzones == capzones) {
			size_t    cap = capzones ? capzones * 2 : 16;
			ix_zone **v = realloc(zones, cap * sizeof(*v));
			if (v == NULL) {
				free(z->at);
				free(z->off);
				free(z->name);
				free(z);
				pthread_mutex_unlock(&zlock);
				return NULL;
			}
			zones = v;
			capzones = cap;
		}
		zones[nzones++] = z;
	}
	pthread_mutex_unlock(&zlock);
	return z;
}
