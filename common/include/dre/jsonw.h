// jsonw.h -- fast JSON writer on a dre_buf; commas are managed for you.
#ifndef DRE_JSONW_H
#define DRE_JSONW_H

#include <stdbool.h>
#include <stdint.h>

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
void dre_jsonw_key(dre_jsonw *w, const char *key);
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

// Shorthands for "key": value.
void dre_jsonw_kstr(dre_jsonw *w, const char *key, const char *s);
void dre_jsonw_kint(dre_jsonw *w, const char *key, int64_t v);
void dre_jsonw_kbool(dre_jsonw *w, const char *key, bool v);
// dre_jsonw_kmoney writes "key": { "value": v, "currency": cur }.
void dre_jsonw_kmoney(
    dre_jsonw *w, const char *key, int64_t minor, const char *currency);

// dre_json_escape appends s[0..n) as a quoted JSON string to b.
void dre_json_escape(dre_buf *b, const char *s, size_t n);

#endif
