// jsonw.h -- fast JSON writer on a dre_buf; commas are managed for you.
#ifndef DRE_JSONW_H
#define DRE_JSONW_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "dre/buf.h"

#define DRE_JSONW_MAX_DEPTH 64

typedef struct {
	dre_buf *buf; // borrowed
	int      depth;
	bool     first[DRE_JSONW_MAX_DEPTH]; // no element yet at this depth
	bool     after_key;
} dre_jsonw;

// dre_jsonw_init starts writing into buf (appends; does not reset it).
void dre_jsonw_init(dre_jsonw *w, dre_buf *buf);

void dre_jsonw_obj_begin(dre_jsonw *w);
void dre_jsonw_obj_end(dre_jsonw *w);
void dre_jsonw_arr_begin(dre_jsonw *w);
void dre_jsonw_arr_end(dre_jsonw *w);
// dre_jsonw_key writes "key": (key is trusted: no escaping beyond quotes).
// The key functions take its length: the macros count a literal key's at
// compile time, and being inline, a literal key is copied with a few moves
// instead of a call (an evaluate answer writes some 1,500 keys).
static inline void dre_jsonw_keyn(dre_jsonw *w, const char *key, size_t kl);
#define dre_jsonw_key(w, key) dre_jsonw_keyn((w), (key), strlen(key))
// dre_jsonw_key_escn writes "key": escaped like a string value: for a key
// that comes from a client (a CSV header's column names).
void dre_jsonw_key_escn(dre_jsonw *w, const char *key, size_t kl);
// dre_jsonw_str writes s escaped, or null when s is NULL.
void dre_jsonw_str(dre_jsonw *w, const char *s);
void dre_jsonw_strn(dre_jsonw *w, const char *s, size_t n);
void dre_jsonw_null(dre_jsonw *w);
void dre_jsonw_bool(dre_jsonw *w, bool v);
void dre_jsonw_int(dre_jsonw *w, int64_t v);
// dre_jsonw_decimal writes v / 10^scale as a JSON number with exactly scale
// decimals (179.98, 2.000).
void dre_jsonw_decimal(dre_jsonw *w, int64_t v, int scale);
// dre_jsonw_decimal_trim: same without trailing fractional zeros (10, 12.5).
void dre_jsonw_decimal_trim(dre_jsonw *w, int64_t v, int scale);
// dre_jsonw_json writes the parsed JSON value v back as JSON (NULL = null).
struct dre_json;
void dre_jsonw_json(dre_jsonw *w, const struct dre_json *v);
// dre_jsonw_raw inserts already-valid JSON text as one value.
void dre_jsonw_raw(dre_jsonw *w, const char *json, size_t n);
// dre_jsonw_time writes an ISO-8601 UTC string with milliseconds
// ("2026-06-07T14:30:01.234Z") from epoch millis.
void dre_jsonw_time(dre_jsonw *w, int64_t epoch_ms);

// dre_jsonw_money writes { "value": minor / 100, "currency": currency }.
void dre_jsonw_money(dre_jsonw *w, int64_t minor, const char *currency);

// Shorthands for "key": value.
#define dre_jsonw_kstr(w, key, s) dre_jsonw_kstrn((w), (key), strlen(key), (s))
#define dre_jsonw_kint(w, key, v) dre_jsonw_kintn((w), (key), strlen(key), (v))
#define dre_jsonw_kbool(w, key, v)                                            \
	dre_jsonw_kbooln((w), (key), strlen(key), (v))
// dre_jsonw_kmoney writes "key": { "value": v, "currency": cur }.
#define dre_jsonw_kmoney(w, key, minor, currency)                             \
	dre_jsonw_kmoneyn((w), (key), strlen(key), (minor), (currency))

// dre_json_escape appends s[0..n) as a quoted JSON string to b.
void dre_json_escape(dre_buf *b, const char *s, size_t n);

// ---- inline: the keys (the part an answer repeats most)

// dre_jsonw_room_ makes space in b for n more bytes (and the NUL) and
// returns where they go, or NULL once b is out of memory; the caller adds
// what it wrote to len. (Internal to the writer.)
static inline char *
dre_jsonw_room_(dre_buf *b, size_t n)
{
	if (b->oom || b->len + n >= b->cap) {
		dre_buf_reserve(b, n);
		if (b->oom)
			return NULL;
	}
	return b->data + b->len;
}

static inline void
dre_jsonw_keyn(dre_jsonw *w, const char *key, size_t kl)
{
	bool  comma = !w->after_key && !w->first[w->depth];
	char *p = dre_jsonw_room_(w->buf, kl + 4);

	w->first[w->depth] = false;
	w->after_key = true;
	if (p == NULL)
		return;
	char *o = p;
	*o = ',';
	o += comma;
	*o++ = '"';
	memcpy(o, key, kl);
	o += kl;
	*o++ = '"';
	*o++ = ':';
	w->buf->len += (size_t) (o - p);
	w->buf->data[w->buf->len] = '\0';
}

static inline void
dre_jsonw_kstrn(dre_jsonw *w, const char *key, size_t kl, const char *s)
{
	dre_jsonw_keyn(w, key, kl);
	dre_jsonw_str(w, s);
}

static inline void
dre_jsonw_kintn(dre_jsonw *w, const char *key, size_t kl, int64_t v)
{
	dre_jsonw_keyn(w, key, kl);
	dre_jsonw_int(w, v);
}

static inline void
dre_jsonw_kbooln(dre_jsonw *w, const char *key, size_t kl, bool v)
{
	dre_jsonw_keyn(w, key, kl);
	dre_jsonw_bool(w, v);
}

static inline void
dre_jsonw_kmoneyn(dre_jsonw *w, const char *key, size_t kl, int64_t minor,
    const char *currency)
{
	dre_jsonw_keyn(w, key, kl);
	dre_jsonw_money(w, minor, currency);
}

#endif
