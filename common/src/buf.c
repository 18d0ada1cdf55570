// buf.c -- growable byte buffer (string builder).
//
// Out-of-memory is sticky so callers check once at the end instead of after
// every append.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/buf.h"

void
dre_buf_init(dre_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->oom = 0;
}

void
dre_buf_free(dre_buf *b)
{
	free(b->data);
	dre_buf_init(b);
}

void
dre_buf_reset(dre_buf *b)
{
	b->len = 0;
	b->oom = 0;
	if (b->data != NULL)
		b->data[0] = '\0';
}

// grow makes room for extra bytes plus the NUL; false once oom.
static int
grow(dre_buf *b, size_t extra)
{
	if (b->oom)
		return 0;
	if (extra >= SIZE_MAX / 2 - b->len) {
		b->oom = 1;
		return 0;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 1;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (p == NULL) {
		b->oom = 1;
		return 0;
	}
	b->data = p;
	b->cap = cap;
	return 1;
}

void
dre_buf_reserve(dre_buf *b, size_t extra)
{
	if (grow(b, extra))
		b->data[b->len] = '\0';
}

void
dre_buf_append(dre_buf *b, const void *p, size_t n)
{
	if (!grow(b, n))
		return;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
dre_buf_puts(dre_buf *b, const char *s)
{
	dre_buf_append(b, s, strlen(s));
}

void
dre_buf_putc(dre_buf *b, char c)
{
	if (b->len + 1 < b->cap && !b->oom) {
		b->data[b->len++] = c;
		b->data[b->len] = '\0';
		return;
	}
	dre_buf_append(b, &c, 1);
}

void
dre_buf_vprintf(dre_buf *b, const char *fmt, va_list ap)
{
	if (b->oom)
		return;
	va_list ap2;
	va_copy(ap2, ap);
	size_t avail = b->cap > b->len ? b->cap - b->len : 0;
	int    n = vsnprintf(avail ? b->data + b->len : NULL, avail, fmt, ap2);
	va_end(ap2);
	if (n < 0) {
		if (b->data != NULL)
			b->data[b->len] = '\0';
		return;
	}
	if ((size_t) n < avail) {
		b->len += (size_t) n;
		return;
	}
	if (!grow(b, (size_t) n))
		return;
	vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
	b->len += (size_t) n;
}

void
dre_buf_printf(dre_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	dre_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void
dre_buf_i64(dre_buf *b, int64_t v)
{
	char  tmp[24];
	char *p = tmp + sizeof(tmp);
	// Work on the magnitude as unsigned so INT64_MIN needs no special
	// case.
	uint64_t u = v < 0 ? 0 - (uint64_t) v : (uint64_t) v;
	do {
		*--p = (char) ('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	dre_buf_append(b, p, (size_t) (tmp + sizeof(tmp) - p));
}

char *
dre_buf_take(dre_buf *b, size_t *lenp)
{
	if (b->oom) {
		dre_buf_free(b);
		return NULL;
	}
	if (b->data == NULL && !grow(b, 0))
		return NULL;
	if (b->len == 0)
		b->data[0] = '\0';
	char *p = b->data;
	if (lenp != NULL)
		*lenp = b->len;
	dre_buf_init(b);
	return p;
}
