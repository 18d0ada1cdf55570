// log.c -- one-line logging to stderr.
//
// Each line goes out with one write(2), so lines of concurrent threads
// never interleave.
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dre/clock.h"
#include "dre/log.h"

static char          log_service[32] = "dre";
static dre_log_level log_min = DRE_LOG_INFO;

static const char *const level_names[] = { "DEBUG", "INFO", "WARN", "ERROR" };

void
dre_log_init(const char *service, dre_log_level level)
{
	if (service != NULL)
		snprintf(log_service, sizeof(log_service), "%s", service);
	log_min = level;
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

void
dre_log(dre_log_level level, const char *fmt, ...)
{
	if (level < log_min)
		return;
	if ((unsigned) level > DRE_LOG_ERROR)
		level = DRE_LOG_ERROR;

	// A fixed stack buffer: logging must work when memory is exhausted.
	char   line[2048];
	size_t n = dre_time_format(line, dre_now_ms());
	int    k = snprintf(line + n, sizeof(line) - n,
	       " %s %s: ", level_names[level], log_service);
	if (k > 0)
		n += (size_t) k;

	va_list ap;
	va_start(ap, fmt);
	k = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	if (k > 0)
		n += (size_t) k;
	if (n > sizeof(line) - 2) {
		// Truncated: mark it so the reader knows.
		n = sizeof(line) - 2;
		memcpy(line + n - 3, "...", 3);
	}
	// One line per call, even if the message carried its own newline.
	while (n > 0 && line[n - 1] == '\n')
		n--;
	line[n++] = '\n';

	const char *p = line;
	while (n > 0) {
		ssize_t w = write(STDERR_FILENO, p, n);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t) w;
	}
}
