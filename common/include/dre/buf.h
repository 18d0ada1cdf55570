// buf.h -- growable byte buffer (string builder).
#ifndef DRE_BUF_H
#define DRE_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

// A dre_buf is a plain struct: zero-initialise it or use dre_buf_init.
// data is always NUL-terminated after the first append. oom is set once an
// allocation failed; later appends are ignored so callers check once at the
// end.
typedef struct {
	char  *data;
	size_t len;
	size_t cap;
	int    oom;
} dre_buf;

void dre_buf_init(dre_buf *b);
// dre_buf_free releases the memory; the buf is empty and reusable afterwards.
void dre_buf_free(dre_buf *b);
void dre_buf_reset(dre_buf *b);
void dre_buf_reserve(dre_buf *b, size_t extra);
void dre_buf_append(dre_buf *b, const void *p, size_t n);
void dre_buf_puts(dre_buf *b, const char *s);
void dre_buf_putc(dre_buf *b, char c);
void dre_buf_printf(dre_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void dre_buf_vprintf(dre_buf *b, const char *fmt, va_list ap);
// dre_buf_i64 appends a decimal integer.
void dre_buf_i64(dre_buf *b, int64_t v);
// dre_buf_take hands the data to the caller (caller frees with free()) and
// empties the buf. Returns NULL if oom.
char *dre_buf_take(dre_buf *b, size_t *lenp);

#endif
