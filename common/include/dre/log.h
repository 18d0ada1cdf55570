// log.h -- one-line structured logging to stderr.
#ifndef DRE_LOG_H
#define DRE_LOG_H

#include <stdbool.h>

typedef enum {
	DRE_LOG_DEBUG = 0,
	DRE_LOG_INFO,
	DRE_LOG_WARN,
	DRE_LOG_ERROR,
} dre_log_level;

// dre_log_init names the process in every line and sets the lowest level
// printed.
void dre_log_init(const char *service, dre_log_level level);
// dre_log_format_set chooses the line format: "json" (one JSON object per
// line: ts, level, service, msg, request_id when set) or anything else for
// the text lines below.
void dre_log_format_set(const char *format);

// Longest request id kept (X-Request-Id, traceparent's trace id).
#define DRE_REQUEST_ID_MAX 64
// dre_log_set_request_id sets the request the calling thread works on
// (copied; NULL clears): every line it logs carries it, and the rpc calls
// it makes pass it on. dre_log_request_id returns it (NULL when none).
void        dre_log_set_request_id(const char *rid);
const char *dre_log_request_id(void);

// dre_log_level_parse maps "debug|info|warn|error" to a level (default info).
dre_log_level dre_log_level_parse(const char *s);
// dre_log writes "<iso time> <LEVEL> <service>: <message>[ request_id=<id>]\n"
// (or the JSON line) atomically.
void dre_log(dre_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

// dre_log_access writes an INFO line that may be gathered with others
// (dre_log_access_buffer): the access log of a busy server.
void dre_log_access(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
// dre_log_access_buffer makes access lines gathered in memory and written
// together every flush_ms (or when 64 KiB are waiting, before any other
// line, and at exit): one write(2) for many requests. Lines still waiting
// are lost if the process is killed. flush_ms <= 0: every line at once.
// Call once, early. False when out of memory (lines go out at once).
bool dre_log_access_buffer(int flush_ms);
// dre_log_flush writes the gathered access lines now.
void dre_log_flush(void);

#define dre_debug(...) dre_log(DRE_LOG_DEBUG, __VA_ARGS__)
#define dre_info(...)  dre_log(DRE_LOG_INFO, __VA_ARGS__)
#define dre_warn(...)  dre_log(DRE_LOG_WARN, __VA_ARGS__)
#define dre_error(...) dre_log(DRE_LOG_ERROR, __VA_ARGS__)

#endif
