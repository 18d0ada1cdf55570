// jsonw.c -- JSON writer on a dre_buf that manages the commas.
//
// A plain string builder: answers are written straight from C structs.
#include <stdint.h>
#include <string.h>

#include "dre/clock.h"
#include "dre/jsonw.h"

#include "dre/json.h"
#include "dre/money.h"

void
dre_jsonw_init(dre_jsonw *w, dre_buf *buf)
{
	w->buf = buf;
	w->depth = 0;
	w->first[0] = true;
	w->after_key = false;
}

// The writers below fill the buffer directly (dre_jsonw_room_) rather than
// one dre_buf call per byte: the answer of an evaluate is ~20 KB of them.
#define room dre_jsonw_room_

// put1 appends one byte; the common case inline.
static inline void
put1(dre_buf *b, char c)
{
	if (b->len + 1 < b->cap && !b->oom) {
		b->data[b->len++] = c;
		b->data[b->len] = '\0';
		return;
	}
	dre_buf_putc(b, c);
}

// sep writes the comma a value or key needs in its container.
static void
sep(dre_jsonw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		put1(w->buf, ',');
	w->first[w->depth] = false;
}

static void
container_open(dre_jsonw *w, char c)
{
	sep(w);
	put1(w->buf, c);
	if (w->depth + 1 >= DRE_JSONW_MAX_DEPTH) {
		// Deeper than we can track: the output would be wrong, so
		// fail it the way an allocation failure does.
		w->buf->oom = 1;
		return;
	}
	w->depth++;
	w->first[w->depth] = true;
}

static void
container_close(dre_jsonw *w, char c)
{
	put1(w->buf, c);
	if (w->depth > 0)
		w->depth--;
	w->after_key = false;
}

void
dre_jsonw_obj_begin(dre_jsonw *w)
{
	container_open(w, '{');
}

void
dre_jsonw_obj_end(dre_jsonw *w)
{
	container_close(w, '}');
}

void
dre_jsonw_arr_begin(dre_jsonw *w)
{
	container_open(w, '[');
}

void
dre_jsonw_arr_end(dre_jsonw *w)
{
	container_close(w, ']');
}

void
dre_jsonw_key_escn(dre_jsonw *w, const char *key, size_t kl)
{
	sep(w);
	dre_json_escape(w->buf, key, kl);
	put1(w->buf, ':');
	w->after_key = true;
}

static const char hex[] = "0123456789abcdef";

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
// Nonzero when some byte of v is zero / below n (n <= 128); bytes of 0x80
// and above never count (UTF-8 passes through).
#define HAS_ZERO(v)    (((v) -ONES) & ~(v) &HIGHS)
#define HAS_LESS(v, n) (((v) -ONES * (n)) & ~(v) &HIGHS)
// The first byte flagged in such a mask (see json.c).
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define DRE_FIRST_FLAGGED(m) ((size_t) __builtin_ctzll(m) >> 3)
#else
#define DRE_FIRST_FLAGGED(m) ((size_t) 0 * (m))
#endif

// plain_prefix returns how many bytes of s[0..n) need no escape.
static size_t
plain_prefix(const char *s, size_t n)
{
	size_t i = 0;
	while (n - i >= 8) {
		uint64_t v;
		memcpy(&v, s + i, 8);
		uint64_t m = HAS_LESS(v, 0x20) | HAS_ZERO(v ^ (ONES * '"'))
		    | HAS_ZERO(v ^ (ONES * '\\'));
		if (m != 0)
			return i + DRE_FIRST_FLAGGED(m);
		i += 8;
	}
	for (; i < n; i++) {
		unsigned char c = (unsigned char) s[i];
		if (c < 0x20 || c == '"' || c == '\\')
			break;
	}
	return i;
}

void
dre_json_escape(dre_buf *b, const char *s, size_t n)
{
	char *o = room(b, n + 2);
	if (o == NULL)
		return;
	size_t run = plain_prefix(s, n); // start of the bytes not yet copied
	if (run == n) { // the common case: nothing to escape, one copy
		o[0] = '"';
		memcpy(o + 1, s, n);
		o[n + 1] = '"';
		b->len += n + 2;
		b->data[b->len] = '\0';
		return;
	}
	put1(b, '"');
	dre_buf_append(b, s, run);
	for (size_t i = run; i < n; i++) {
		// Eight bytes at a time while none needs an escape.
		// A word holding a byte to escape moves i to the first one.
		while (n - i >= 8) {
			uint64_t v;
			memcpy(&v, s + i, 8);
			uint64_t m = HAS_LESS(v, 0x20)
			    | HAS_ZERO(v ^ (ONES * '"'))
			    | HAS_ZERO(v ^ (ONES * '\\'));
			if (m != 0) {
				i += DRE_FIRST_FLAGGED(m);
				break;
			}
			i += 8;
		}
		if (i >= n)
			break;
		unsigned char c = (unsigned char) s[i];
		// UTF-8 and printable ASCII pass through unchanged.
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		dre_buf_append(b, s + run, i - run);
		run = i + 1;
		char esc[6];
		switch (c) {
		case '"':
			dre_buf_append(b, "\\\"", 2);
			break;
		case '\\':
			dre_buf_append(b, "\\\\", 2);
			break;
		case '\n':
			dre_buf_append(b, "\\n", 2);
			break;
		case '\r':
			dre_buf_append(b, "\\r", 2);
			break;
		case '\t':
			dre_buf_append(b, "\\t", 2);
			break;
		case '\b':
			dre_buf_append(b, "\\b", 2);
			break;
		case '\f':
			dre_buf_append(b, "\\f", 2);
			break;
		default:
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			dre_buf_append(b, esc, 6);
			break;
		}
	}
	dre_buf_append(b, s + run, n - run);
	put1(b, '"');
}

void
dre_jsonw_str(dre_jsonw *w, const char *s)
{
	if (s == NULL) {
		dre_jsonw_null(w);
		return;
	}
	dre_jsonw_strn(w, s, strlen(s));
}

void
dre_jsonw_strn(dre_jsonw *w, const char *s, size_t n)
{
	if (s == NULL) {
		dre_jsonw_null(w);
		return;
	}
	sep(w);
	dre_json_escape(w->buf, s, n);
}

void
dre_jsonw_null(dre_jsonw *w)
{
	sep(w);
	dre_buf_append(w->buf, "null", 4);
}

void
dre_jsonw_bool(dre_jsonw *w, bool v)
{
	sep(w);
	if (v)
		dre_buf_append(w->buf, "true", 4);
	else
		dre_buf_append(w->buf, "false", 5);
}

void
dre_jsonw_int(dre_jsonw *w, int64_t v)
{
	sep(w);
	dre_buf_i64(w->buf, v);
}

void
dre_jsonw_decimal(dre_jsonw *w, int64_t v, int scale)
{
	char   tmp[32];
	size_t n = dre_decimal_format(tmp, v, scale);
	sep(w);
	dre_buf_append(w->buf, tmp, n);
}

void
dre_jsonw_decimal_trim(dre_jsonw *w, int64_t v, int scale)
{
	char   tmp[32];
	size_t n = dre_decimal_format_trim(tmp, v, scale);
	sep(w);
	dre_buf_append(w->buf, tmp, n);
}

void
dre_jsonw_raw(dre_jsonw *w, const char *json, size_t n)
{
	sep(w);
	dre_buf_append(w->buf, json, n);
}

void
dre_jsonw_time(dre_jsonw *w, int64_t epoch_ms)
{
	char tmp[34];
	tmp[0] = '"';
	size_t n = dre_time_format(tmp + 1, epoch_ms);
	tmp[++n] = '"';
	sep(w);
	dre_buf_append(w->buf, tmp, n + 1);
}

void
dre_jsonw_money(dre_jsonw *w, int64_t minor, const char *currency)
{
	// The bytes obj_begin, key "value", decimal, kstr "currency" and
	// obj_end would write, straight into the buffer (an answer holds some
	// 150 amounts).
	if (w->depth + 1 >= DRE_JSONW_MAX_DEPTH) {
		w->buf->oom = 1; // as container_open
		return;
	}
	sep(w);
	char *p = room(w->buf, 9 + 32 + 12 + 6);
	if (p == NULL)
		return;
	memcpy(p, "{\"value\":", 9);
	size_t n = 9 + dre_decimal_format(p + 9, minor, DRE_MONEY_SCALE);
	memcpy(p + n, ",\"currency\":", 12);
	n += 12;
	// An ISO 4217 code (three letters) needs no escape.
	if (currency != NULL && currency[0] >= 'A' && currency[0] <= 'Z'
	    && currency[1] >= 'A' && currency[1] <= 'Z' && currency[2] >= 'A'
	    && currency[2] <= 'Z' && currency[3] == '\0') {
		p[n] = '"';
		memcpy(p + n + 1, currency, 3);
		memcpy(p + n + 4, "\"}", 2);
		w->buf->len += n + 6;
		w->buf->data[w->buf->len] = '\0';
		return;
	}
	w->buf->len += n;
	w->buf->data[w->buf->len] = '\0';
	if (currency == NULL)
		dre_buf_append(w->buf, "null", 4);
	else
		dre_json_escape(w->buf, currency, strlen(currency));
	put1(w->buf, '}');
}

void
dre_jsonw_json(dre_jsonw *w, const dre_json *v)
{
	if (v == NULL) {
		dre_jsonw_null(w);
		return;
	}
	switch (v->type) {
	case DRE_JSON_NULL:
		dre_jsonw_null(w);
		break;
	case DRE_JSON_FALSE:
	case DRE_JSON_TRUE:
		dre_jsonw_bool(w, v->type == DRE_JSON_TRUE);
		break;
	case DRE_JSON_NUMBER:
		dre_jsonw_raw(w, v->str, v->len);
		break;
	case DRE_JSON_STRING:
		dre_jsonw_strn(w, v->str, v->len);
		break;
	case DRE_JSON_ARRAY:
		dre_jsonw_arr_begin(w);
		for (const dre_json *c = v->child; c != NULL; c = c->next)
			dre_jsonw_json(w, c);
		dre_jsonw_arr_end(w);
		break;
	case DRE_JSON_OBJECT:
		dre_jsonw_obj_begin(w);
		for (const dre_json *c = v->child; c != NULL; c = c->next) {
			// Member names are escaped like any string.
			dre_jsonw_strn(w, c->key, c->key_len);
			put1(w->buf, ':');
			w->after_key = true;
			dre_jsonw_json(w, c);
		}
		dre_jsonw_obj_end(w);
		break;
	}
}
