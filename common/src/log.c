// log.c -- one-line logging to stderr.
//
// Each line goes out with one write(2), so lines of concurrent threads
// never interleave. Access lines (dre_log_access) may instead be gathered
// and written together (dre_log_access_buffer): a busy gateway then makes
// one write every flush_ms instead of one per request.
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "dre/clock.h"
#include "dre/log.h"
#include "dre/svc.h"

static char          log_service[32] = "dre";
static dre_log_level log_min = DRE_LOG_INFO;
static bool          log_json;
// The request the calling thread works on (rpc server, gateway).
static __thread char log_rid[DRE_REQUEST_ID_MAX + 1];

static const char *const level_names[] = { "DEBUG", "INFO", "WARN", "ERROR" };

void
dre_log_init(const char *service, dre_log_level level)
{
	if (service != NULL)
		snprintf(log_service, sizeof(log_service), "%s", service);
	log_min = level;
}

void
dre_log_format_set(const char *format)
{
	log_json = format != NULL && strcmp(format, "json") == 0;
}

void
dre_log_set_request_id(const char *rid)
{
	size_t n = 0;

	if (rid != NULL) {
		n = strlen(rid);
		if (n > DRE_REQUEST_ID_MAX)
			n = DRE_REQUEST_ID_MAX;
		memcpy(log_rid, rid, n);
	}
	log_rid[n] = '\0';
}

const char *
dre_log_request_id(void)
{
	return log_rid[0] != '\0' ? log_rid : NULL;
}

// json_put appends s to line[*n..cap) as JSON string content.
static void
json_put(char *line, size_t *n, size_t cap, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	for (size_t i = 0; i < len && *n + 7 < cap; i++) {
		unsigned char c = (unsigned char) s[i];
		if (c == '"' || c == '\\') {
			line[(*n)++] = '\\';
			line[(*n)++] = (char) c;
		} else if (c == '\n') {
			line[(*n)++] = '\\';
			line[(*n)++] = 'n';
		} else if (c < 0x20) {
			memcpy(line + *n, "\\u00", 4);
			*n += 4;
			line[(*n)++] = hex[c >> 4];
			line[(*n)++] = hex[c & 15];
		} else {
			line[(*n)++] = (char) c;
		}
	}
}

// log_write_raw writes p with a single write(2) (or more, if it is cut).
static void
log_write_raw(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t) w;
	}
}

// ---- gathered access lines
// The buffer is written when full, every flush_ms by the flusher thread,
// before any other line (the order of lines is kept) and at exit.
#define ACCESS_BUF (64 * 1024)

static pthread_mutex_t acc_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  acc_cv = PTHREAD_COND_INITIALIZER;
static char           *acc_buf;
static atomic_bool     acc_on; // false: every line is written at once
static size_t          acc_len;
static int             acc_flush_ms;
static bool            acc_stop;
static pthread_t       acc_thread;

static void
acc_flush_locked(void)
{
	if (acc_len > 0)
		log_write_raw(acc_buf, acc_len);
	acc_len = 0;
}

static void *
acc_flusher(void *arg)
{
	(void) arg;
	dre_thread_name("log:access", NULL);
	pthread_mutex_lock(&acc_mu);
	while (!acc_stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		long long ns = ts.tv_nsec + (long long) acc_flush_ms * 1000000;
		ts.tv_sec += (time_t) (ns / 1000000000);
		ts.tv_nsec = (long) (ns % 1000000000);
		pthread_cond_timedwait(&acc_cv, &acc_mu, &ts);
		acc_flush_locked();
	}
	pthread_mutex_unlock(&acc_mu);
	return NULL;
}

void
dre_log_flush(void)
{
	pthread_mutex_lock(&acc_mu);
	if (acc_buf != NULL)
		acc_flush_locked();
	pthread_mutex_unlock(&acc_mu);
}

static void
acc_atexit(void)
{
	pthread_mutex_lock(&acc_mu);
	acc_stop = true;
	pthread_cond_signal(&acc_cv);
	pthread_mutex_unlock(&acc_mu);
	pthread_join(acc_thread, NULL);
	// What is held goes out, and lines logged later (other exit
	// handlers) at once.
	pthread_mutex_lock(&acc_mu);
	acc_flush_locked();
	atomic_store(&acc_on, false);
	pthread_mutex_unlock(&acc_mu);
}

bool
dre_log_access_buffer(int flush_ms)
{
	if (flush_ms <= 0 || atomic_load(&acc_on))
		return true;
	char *b = malloc(ACCESS_BUF);
	if (b == NULL)
		return false;
	pthread_mutex_lock(&acc_mu);
	acc_buf = b;
	acc_flush_ms = flush_ms;
	atomic_store(&acc_on, true);
	pthread_mutex_unlock(&acc_mu);
	if (pthread_create(&acc_thread, NULL, acc_flusher, NULL) != 0) {
		pthread_mutex_lock(&acc_mu);
		acc_flush_locked();
		atomic_store(&acc_on, false);
		pthread_mutex_unlock(&acc_mu);
		return false; // acc_buf stays: a racing log_write may hold it
	}
	atexit(acc_atexit);
	return true;
}

// log_write writes one line: gathered (an access line, while gathering) or
// at once, after whatever was gathered.
static void
log_write(const char *p, size_t n, bool access)
{
	if (!atomic_load(&acc_on)) {
		log_write_raw(p, n);
		return;
	}
	pthread_mutex_lock(&acc_mu);
	if (!atomic_load(&acc_on))
		access = false; // gathering ended meanwhile (exit)
	if (!access || acc_len + n > ACCESS_BUF)
		acc_flush_locked();
	if (access && n <= ACCESS_BUF) {
		memcpy(acc_buf + acc_len, p, n);
		acc_len += n;
	} else {
		log_write_raw(p, n);
	}
	pthread_mutex_unlock(&acc_mu);
}

dre_log_level
dre_log_level_parse(const char *s)
{
	if (s == NULL)
		return DRE_LOG_INFO;
	if (strcasecmp(s, "debug") == 0)
		return DRE_LOG_DEBUG;
	if (strcasecmp(s, "warn") == 0 || strcasecmp(s, "warning") == 0)
		return DRE_LOG_WARN;
	if (strcasecmp(s, "error") == 0)
		return DRE_LOG_ERROR;
	return DRE_LOG_INFO;
}

static void
vlog(dre_log_level level, bool access, const char *fmt, va_list ap0)
{
	if ((unsigned) level > DRE_LOG_ERROR)
		level = DRE_LOG_ERROR;

	// A fixed stack buffer: logging must work when memory is exhausted.
	char   line[2048];
	char   msg[1536];
	size_t n;
	int    k;
	if (log_json) {
		char    ts[40];
		va_list ap;
		va_copy(ap, ap0);
		k = vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		size_t ml = k < 0               ? 0
		    : (size_t) k >= sizeof(msg) ? sizeof(msg) - 1
		                                : (size_t) k;
		while (ml > 0 && msg[ml - 1] == '\n')
			ml--;
		ts[dre_time_format(ts, dre_now_ms())] = '\0';
		n = (size_t) snprintf(line, sizeof(line),
		    "{\"ts\":\"%s\",\"level\":\"%s\",\"service\":\"", ts,
		    level_names[level]);
		json_put(line, &n, sizeof(line) - 64, log_service,
		    strlen(log_service));
		memcpy(line + n, "\",\"msg\":\"", 9);
		n += 9;
		json_put(line, &n, sizeof(line) - 80, msg, ml);
		line[n++] = '"';
		if (log_rid[0] != '\0') {
			memcpy(line + n, ",\"request_id\":\"", 15);
			n += 15;
			json_put(line, &n, sizeof(line) - 4, log_rid,
			    strlen(log_rid));
			line[n++] = '"';
		}
		line[n++] = '}';
		line[n++] = '\n';
		log_write(line, n, access);
		return;
	}
	n = dre_time_format(line, dre_now_ms());
	k = snprintf(line + n, sizeof(line) - n,
	    " %s %s: ", level_names[level], log_service);
	if (k > 0)
		n += (size_t) k;

	va_list ap;
	va_copy(ap, ap0);
	k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (k > 0)
		n += (size_t) k;
	if (log_rid[0] != '\0' && n < sizeof(line) - 2) {
		k = snprintf(
		    line + n, sizeof(line) - n, " request_id=%s", log_rid);
		if (k > 0)
			n += (size_t) k;
	}
	if (n > sizeof(line) - 2) {
		// Truncated: mark it so the reader knows.
		n = sizeof(line) - 2;
		memcpy(line + n - 3, "...", 3);
	}
	// One line per call, even if the message carried its own newline.
	while (n > 0 && line[n - 1] == '\n')
		n--;
	line[n++] = '\n';
	log_write(line, n, access);
}

void
dre_log(dre_log_level level, const char *fmt, ...)
{
	if (level < log_min)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(level, false, fmt, ap);
	va_end(ap);
}

void
dre_log_access(const char *fmt, ...)
{
	if (DRE_LOG_INFO < log_min)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog(DRE_LOG_INFO, true, fmt, ap);
	va_end(ap);
}
