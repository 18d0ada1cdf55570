// json.h -- strict JSON reader that keeps numbers as their text.
//
// RFC 8259 with hostile input in mind: invalid UTF-8, lone surrogates,
// duplicate object keys, nesting deeper than max_depth and trailing garbage
// are errors. Every node lives in the caller's arena.
#ifndef DRE_JSON_H
#define DRE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/arena.h"
#include "dre/err.h"

typedef enum {
	DRE_JSON_NULL = 0,
	DRE_JSON_FALSE,
	DRE_JSON_TRUE,
	DRE_JSON_NUMBER,
	DRE_JSON_STRING,
	DRE_JSON_ARRAY,
	DRE_JSON_OBJECT,
} dre_json_type;

typedef struct dre_json dre_json;
struct dre_json {
	dre_json_type type;
	uint32_t      len; // string bytes, number text bytes, or child count
	const char   *str; // unescaped string or number text, NUL-terminated
	const char   *key; // member name inside an object, else NULL
	uint32_t      key_len;
	dre_json     *child; // first element / member
	dre_json     *next; // next sibling
};

typedef struct {
	size_t      offset; // byte offset of the error in the input
	const char *msg; // static text, e.g. "duplicate key"
} dre_json_error;

#define DRE_JSON_MAX_DEPTH 64

// dre_json_parse parses text[0..len). On success *rootp is the root value
// (borrowed from arena). On failure returns DRE_EPARSE (DRE_ENOMEM when the
// arena is exhausted) and fills err if not NULL.
dre_err dre_json_parse(dre_json **rootp, dre_arena *arena, const char *text,
    size_t len, int max_depth, dre_json_error *err);
// dre_json_parse_inplace is dre_json_parse without copying strings: keys
// and string values point into text, which it overwrites (each closing quote
// becomes the string's NUL, escapes are undone in place) and which must
// outlive the tree; numbers are still copied into arena. After a failure
// text is partly overwritten. The same tree as dre_json_parse otherwise.
dre_err dre_json_parse_inplace(dre_json **rootp, dre_arena *arena, char *text,
    size_t len, int max_depth, dre_json_error *err);

// dre_json_getn returns the member named key[0..n) (case-sensitive) or
// NULL; dre_json_get takes a NUL-terminated key (its length is counted at
// compile time for a literal).
const dre_json *dre_json_getn(const dre_json *obj, const char *key, size_t n);
static inline const dre_json *
dre_json_get(const dre_json *obj, const char *key)
{
	return key != NULL ? dre_json_getn(obj, key, __builtin_strlen(key))
	                   : NULL;
}
// dre_json_unknown returns the first member of object obj after member
// `after` (NULL = from the start) whose name is not one of known[0..n), or
// NULL when there is none: the strict check of master-data writes
// (PRODUCT-DECISIONS §1, unknown fields).
const dre_json *dre_json_unknown(const dre_json *obj, const char *const *known,
    size_t n, const dre_json *after);
// dre_json_did_you_mean returns the name of known[0..n) nearest to
// s[0..len) when it is at most two edits away and the edits are at most a
// third of s (a typo), else NULL.
const char *dre_json_did_you_mean(
    const char *s, size_t len, const char *const *known, size_t n);
// dre_json_unknown_describe writes the unknown member m's name (at most 60
// bytes) into name and the message of its refusal into msg: "unknown field
// 'x'", with "(did you mean 'y'?)" when a name of known[0..n) is close.
void dre_json_unknown_describe(const dre_json *m, const char *const *known,
    size_t n, char *name, size_t ncap, char *msg, size_t mcap);
// dre_json_at returns element i of an array or NULL.
const dre_json *dre_json_at(const dre_json *arr, size_t i);

static inline bool
dre_json_is(const dre_json *v, dre_json_type t)
{
	return v != NULL && v->type == t;
}
// dre_json_is_null is true for an absent member or JSON null.
static inline bool
dre_json_is_null(const dre_json *v)
{
	return v == NULL || v->type == DRE_JSON_NULL;
}

// dre_json_decimal reads a number (or a string holding one) exactly, scaled
// by 10^scale; see dre_decimal_parse for the errors.
dre_err dre_json_decimal(
    int64_t *out, const dre_json *v, int scale, int max_digits);
// dre_json_int reads an integral number in [min, max].
dre_err dre_json_int(
    int64_t *out, const dre_json *v, int64_t min, int64_t max);

// dre_utf8_valid reports whether s[0..len) is valid UTF-8 (no surrogates,
// no overlongs) and counts its code points into *chars if not NULL.
bool dre_utf8_valid(const char *s, size_t len, size_t *chars);
// dre_utf8_cut returns how many bytes of valid UTF-8 s[0..len) to keep for
// at most max bytes: len when it fits, else max or less, so that the cut
// falls before a character, never inside one (a name cut for an error
// message must stay valid UTF-8 in a JSON body or a header). Of bytes that
// are not UTF-8 it keeps at least max - 3 (never cut to nothing).
size_t dre_utf8_cut(const char *s, size_t len, size_t max);
// DRE_UTF8_CUT(s, max) are the two arguments of a "%.*s" that prints at
// most max bytes of the NUL-terminated UTF-8 string s, cut before a
// character (s is evaluated twice).
#define DRE_UTF8_CUT(s, max) (int) dre_utf8_cut((s), strlen(s), (max)), (s)

#endif
