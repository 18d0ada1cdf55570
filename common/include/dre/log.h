// log.h -- one-line structured logging to stderr.
#ifndef DRE_LOG_H
#define DRE_LOG_H

typedef enum {
	DRE_LOG_DEBUG = 0,
	DRE_LOG_INFO,
	DRE_LOG_WARN,
	DRE_LOG_ERROR,
} dre_log_level;

// dre_log_init names the process in every line and sets the lowest level
// printed.
void dre_log_init(const char *service, dre_log_level level);
// dre_log_level_parse maps "debug|info|warn|error" to a level (default info).
dre_log_level dre_log_level_parse(const char *s);
// dre_log writes "<iso time> <LEVEL> <service>: <message>\n" atomically.
void dre_log(dre_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define dre_debug(...) dre_log(DRE_LOG_DEBUG, __VA_ARGS__)
#define dre_info(...)  dre_log(DRE_LOG_INFO, __VA_ARGS__)
#define dre_warn(...)  dre_log(DRE_LOG_WARN, __VA_ARGS__)
#define dre_error(...) dre_log(DRE_LOG_ERROR, __VA_ARGS__)

#endif
