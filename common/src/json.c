// json.c -- strict RFC 8259 reader into arena nodes.
//
// Iterative (an explicit stack of open containers), so hostile nesting
// cannot overflow the C stack; numbers keep their text so money never
// passes through a double.
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dre/hash.h"
#include "dre/json.h"
#include "dre/money.h"

// Objects up to this many members are checked for duplicate keys by a
// linear scan; larger ones get a hash table so parsing stays O(n).
#define DUP_SCAN_MAX 8

typedef struct {
	dre_json  *node;
	dre_json  *last; // tail of node's children: O(1) append
	dre_json **ht; // key hash table once the object grows large
	uint32_t   ht_cap; // power of two
} frame;

typedef struct {
	const unsigned char *s;
	size_t               len;
	size_t               pos;
	dre_arena           *arena;
	frame               *stack;
	size_t               stack_cap;
	size_t               depth;
	size_t               max_depth;
	uint64_t             seed;
	dre_json_error      *err;
	dre_err              rv;
	char
	    *inplace; // dre_json_parse_inplace: the text, writable (else NULL)
} parser;

static dre_err
fail(parser *p, size_t offset, const char *msg)
{
	if (p->rv == DRE_OK)
		p->rv = DRE_EPARSE;
	if (p->err != NULL && p->err->msg == NULL) {
		p->err->offset = offset;
		p->err->msg = msg;
	}
	return p->rv;
}

static dre_err
oom(parser *p)
{
	p->rv = DRE_ENOMEM;
	return fail(p, p->pos, "out of memory");
}

// utf8_seq returns the length of the valid UTF-8 sequence at s (n bytes
// available), 0 if invalid: overlongs, surrogates and > U+10FFFF rejected.
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	if (c < 0xC2)
		return 0; // continuation byte or overlong 2-byte lead
	if (c < 0xE0) {
		if (n < 2 || (s[1] & 0xC0) != 0x80)
			return 0;
		return 2;
	}
	if (c < 0xF0) {
		if (n < 3 || (s[2] & 0xC0) != 0x80)
			return 0;
		unsigned lo = 0x80, hi = 0xBF;
		if (c == 0xE0)
			lo = 0xA0; // overlong
		else if (c == 0xED)
			hi = 0x9F; // U+D800..U+DFFF
		if (s[1] < lo || s[1] > hi)
			return 0;
		return 3;
	}
	if (c < 0xF5) {
		if (n < 4 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
			return 0;
		unsigned lo = 0x80, hi = 0xBF;
		if (c == 0xF0)
			lo = 0x90; // overlong
		else if (c == 0xF4)
			hi = 0x8F; // > U+10FFFF
		if (s[1] < lo || s[1] > hi)
			return 0;
		return 4;
	}
	return 0;
}

size_t
dre_utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	// A character has at most 3 continuation bytes: backing up further
	// would only cut bytes that are not UTF-8 down to nothing (a name
	// quoted as '', an error's target left empty).
	size_t n = max;
	while (n > 0 && max - n < 3 && ((unsigned char) s[n] & 0xC0) == 0x80)
		n--;
	return n;
}

bool
dre_utf8_valid(const char *s, size_t len, size_t *chars)
{
	const unsigned char *u = (const unsigned char *) s;
	size_t               i = 0, count = 0;
	while (i < len) {
		if (u[i] < 0x80) {
			i++;
		} else {
			size_t k = utf8_seq(u + i, len - i);
			if (k == 0)
				return false;
			i += k;
		}
		count++;
	}
	if (chars != NULL)
		*chars = count;
	return true;
}

static void
skip_ws(parser *p)
{
	while (p->pos < p->len) {
		unsigned char c = p->s[p->pos];
		if (c != ' ' && c != '\n' && c != '\r' && c != '\t')
			return;
		p->pos++;
	}
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

// hex4 reads 4 hex digits at s[i]; -1 if they are not there.
static long
hex4(const parser *p, size_t i)
{
	if (p->len - i < 4)
		return -1;
	long v = 0;
	for (int k = 0; k < 4; k++) {
		int h = hexval(p->s[i + (size_t) k]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
// Nonzero when some byte of v is zero / below n (n <= 128).
#define HAS_ZERO(v)    (((v) -ONES) & ~(v) &HIGHS)
#define HAS_LESS(v, n) (((v) -ONES * (n)) & ~(v) &HIGHS)
// The index of the first byte (in memory order) flagged in a mask those
// build: the lowest flag is exact (a borrow only falsely flags bytes after
// a true one). 0 where the words are not little-endian: the bytes are then
// looked at one by one, as before.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define DRE_FIRST_FLAGGED(m) ((size_t) __builtin_ctzll(m) >> 3)
#else
#define DRE_FIRST_FLAGGED(m) ((size_t) 0 * (m))
#endif

// scan_string validates the string whose opening quote is at p->pos and
// leaves p->pos after the closing quote. *escapes tells whether the text
// needs unescaping; the raw text is s[*b, *e).
static dre_err
scan_string(parser *p, size_t *b, size_t *e, bool *escapes)
{
	const unsigned char *s = p->s;
	size_t               i = p->pos + 1, len = p->len;
	*escapes = false;
	for (;;) {
		// Eight plain ASCII bytes at a time: the common case. A word
		// holding a byte to look at moves i to the first such byte.
		while (len - i >= 8) {
			uint64_t v;
			memcpy(&v, s + i, 8);
			uint64_t m = (v & HIGHS) | HAS_LESS(v, 0x20)
			    | HAS_ZERO(v ^ (ONES * '"'))
			    | HAS_ZERO(v ^ (ONES * '\\'));
			if (m != 0) {
				i += DRE_FIRST_FLAGGED(m);
				break;
			}
			i += 8;
		}
		if (i >= len)
			return fail(p, p->pos, "unterminated string");
		unsigned char c = s[i];
		if (c == '"')
			break;
		if (c < 0x20)
			return fail(p, i, "control character in string");
		if (c >= 0x80) {
			size_t k = utf8_seq(s + i, len - i);
			if (k == 0)
				return fail(p, i, "invalid UTF-8");
			i += k;
			continue;
		}
		if (c != '\\') {
			i++;
			continue;
		}
		*escapes = true;
		if (i + 1 >= len)
			return fail(p, p->pos, "unterminated string");
		switch (s[i + 1]) {
		case '"':
		case '\\':
		case '/':
		case 'b':
		case 'f':
		case 'n':
		case 'r':
		case 't':
			i += 2;
			continue;
		case 'u':
			break;
		default:
			return fail(p, i, "invalid escape");
		}
		long u = hex4(p, i + 2);
		if (u < 0)
			return fail(p, i, "invalid \\u escape");
		if (u >= 0xDC00 && u <= 0xDFFF)
			return fail(p, i, "unpaired surrogate");
		if (u >= 0xD800 && u <= 0xDBFF) {
			long lo = -1;
			if (len - i >= 12 && s[i + 6] == '\\'
			    && s[i + 7] == 'u')
				lo = hex4(p, i + 8);
			if (lo < 0xDC00 || lo > 0xDFFF)
				return fail(p, i, "unpaired surrogate");
			i += 12;
		} else {
			i += 6;
		}
	}
	*b = p->pos + 1;
	*e = i;
	p->pos = i + 1;
	return DRE_OK;
}

static size_t
put_utf8(char *o, unsigned long cp)
{
	if (cp < 0x80) {
		o[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char) (0xC0 | (cp >> 6));
		o[1] = (char) (0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char) (0xE0 | (cp >> 12));
		o[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char) (0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (char) (0xF0 | (cp >> 18));
	o[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
	o[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
	o[3] = (char) (0x80 | (cp & 0x3F));
	return 4;
}

// read_string parses a string at p->pos into an arena copy. The text was
// validated by scan_string, so unescaping needs no checks; it never grows
// (an escape is at least as long as the bytes it stands for).
static dre_err
read_string(parser *p, const char **out, uint32_t *out_len)
{
	size_t b = 0, e = 0;
	bool   esc;
	if (scan_string(p, &b, &e, &esc) != DRE_OK)
		return p->rv;
	if (e - b > UINT32_MAX)
		return fail(p, b, "string too long");
	const char *src = (const char *) p->s;
	if (!esc) {
		if (p->inplace != NULL) { // the closing quote becomes its NUL
			p->inplace[e] = '\0';
			*out = p->inplace + b;
			*out_len = (uint32_t) (e - b);
			return DRE_OK;
		}
		char *s = dre_arena_strndup(p->arena, src + b, e - b);
		if (s == NULL)
			return oom(p);
		*out = s;
		*out_len = (uint32_t) (e - b);
		return DRE_OK;
	}
	// In place, the text is unescaped over itself: o never passes the
	// byte being read.
	char *o = p->inplace != NULL ? p->inplace + b
	                             : dre_arena_get(p->arena, e - b + 1);
	if (o == NULL)
		return oom(p);
	size_t n = 0;
	for (size_t i = b; i < e;) {
		if (src[i] != '\\') {
			o[n++] = src[i++];
			continue;
		}
		char c = src[i + 1];
		i += 2;
		switch (c) {
		case 'b':
			o[n++] = '\b';
			break;
		case 'f':
			o[n++] = '\f';
			break;
		case 'n':
			o[n++] = '\n';
			break;
		case 'r':
			o[n++] = '\r';
			break;
		case 't':
			o[n++] = '\t';
			break;
		case 'u': {
			unsigned long cp = (unsigned long) hex4(p, i);
			i += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				unsigned long lo
				    = (unsigned long) hex4(p, i + 2);
				cp = 0x10000 + ((cp - 0xD800) << 10)
				    + (lo - 0xDC00);
				i += 6;
			}
			n += put_utf8(o + n, cp);
			break;
		}
		default: // '"', '\\', '/'
			o[n++] = c;
			break;
		}
	}
	o[n] = '\0';
	*out = o;
	*out_len = (uint32_t) n;
	return DRE_OK;
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static dre_err
read_number(parser *p, dre_json *v)
{
	const unsigned char *s = p->s;
	size_t               b = p->pos, i = b, len = p->len;
	if (s[i] == '-')
		i++;
	if (i >= len || !is_digit(s[i]))
		return fail(p, i, "invalid number");
	if (s[i] == '0') {
		i++;
		if (i < len && is_digit(s[i]))
			return fail(p, b, "leading zero in number");
	} else {
		while (i < len && is_digit(s[i]))
			i++;
	}
	if (i < len && s[i] == '.') {
		i++;
		if (i >= len || !is_digit(s[i]))
			return fail(p, i, "digit expected after '.'");
		while (i < len && is_digit(s[i]))
			i++;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= len || !is_digit(s[i]))
			return fail(p, i, "digit expected in exponent");
		while (i < len && is_digit(s[i]))
			i++;
	}
	if (i - b > UINT32_MAX)
		return fail(p, b, "number too long");
	char *t = dre_arena_strndup(p->arena, (const char *) s + b, i - b);
	if (t == NULL)
		return oom(p);
	v->type = DRE_JSON_NUMBER;
	v->str = t;
	v->len = (uint32_t) (i - b);
	p->pos = i;
	return DRE_OK;
}

static dre_err
read_literal(parser *p, dre_json *v, const char *word, dre_json_type t)
{
	size_t n = strlen(word);
	if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
		return fail(p, p->pos, "invalid literal");
	v->type = t;
	p->pos += n;
	return DRE_OK;
}

static uint64_t
key_hash(const parser *p, const char *k, size_t n)
{
	// FNV-1a from a per-parse seed, then a final mix.
	uint64_t h = dre_fnv1a64(p->seed, k, n);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static bool
key_eq(const dre_json *m, const char *k, uint32_t n)
{
	return m->key_len == n && memcmp(m->key, k, n) == 0;
}

// ht_insert adds m; returns false when an equal key is already there.
static bool
ht_insert(const parser *p, frame *f, dre_json *m)
{
	uint32_t mask = f->ht_cap - 1;
	uint32_t i = (uint32_t) key_hash(p, m->key, m->key_len) & mask;
	while (f->ht[i] != NULL) {
		if (key_eq(f->ht[i], m->key, m->key_len))
			return false;
		i = (i + 1) & mask;
	}
	f->ht[i] = m;
	return true;
}

static dre_err
ht_grow(parser *p, frame *f)
{
	uint32_t cap = f->ht_cap ? f->ht_cap * 2 : 32;
	if (cap == 0 || cap > (1u << 30))
		return fail(p, p->pos, "object too large");
	dre_json **ht = dre_arena_get(p->arena, cap * sizeof(*ht));
	if (ht == NULL)
		return oom(p);
	f->ht = ht;
	f->ht_cap = cap;
	for (dre_json *m = f->node->child; m != NULL; m = m->next)
		ht_insert(p, f, m);
	return DRE_OK;
}

// check_key registers the key of m, about to join the object of f, and
// rejects a key the object already has; key_at is its offset for errors.
static dre_err
check_key(parser *p, frame *f, dre_json *m, size_t key_at)
{
	uint32_t count = f->node->len;
	if (count < DUP_SCAN_MAX) {
		for (dre_json *c = f->node->child; c != NULL; c = c->next)
			if (key_eq(c, m->key, m->key_len))
				return fail(p, key_at, "duplicate key");
		return DRE_OK;
	}
	// Keep the load factor at most 1/2 so probes stay short.
	if ((count + 1) * 2 > f->ht_cap && ht_grow(p, f) != DRE_OK)
		return p->rv;
	if (!ht_insert(p, f, m))
		return fail(p, key_at, "duplicate key");
	return DRE_OK;
}

static void
attach(frame *f, dre_json *v)
{
	if (f->last == NULL)
		f->node->child = v;
	else
		f->last->next = v;
	f->last = v;
	f->node->len++;
}

static dre_err
push(parser *p, dre_json *v)
{
	if (p->depth >= p->max_depth)
		return fail(p, p->pos, "nesting too deep");
	if (p->depth == p->stack_cap) {
		size_t cap = p->stack_cap ? p->stack_cap * 2 : 16;
		frame *st = dre_arena_get(p->arena, cap * sizeof(*st));
		if (st == NULL)
			return oom(p);
		if (p->depth > 0)
			memcpy(st, p->stack, p->depth * sizeof(*st));
		p->stack = st;
		p->stack_cap = cap;
	}
	frame *f = &p->stack[p->depth++];
	f->node = v;
	f->last = NULL;
	f->ht = NULL;
	f->ht_cap = 0;
	return DRE_OK;
}

// read_key reads `"name" :` inside the top object into the new member m.
static dre_err
read_key(parser *p, dre_json *m)
{
	skip_ws(p);
	if (p->pos >= p->len || p->s[p->pos] != '"')
		return fail(p, p->pos, "object key expected");
	size_t at = p->pos;
	if (read_string(p, &m->key, &m->key_len) != DRE_OK)
		return p->rv;
	if (check_key(p, &p->stack[p->depth - 1], m, at) != DRE_OK)
		return p->rv;
	skip_ws(p);
	if (p->pos >= p->len || p->s[p->pos] != ':')
		return fail(p, p->pos, "':' expected");
	p->pos++;
	return DRE_OK;
}

static dre_json *
node_new(parser *p)
{
	dre_json *v = dre_arena_get(p->arena, sizeof(*v));
	if (v == NULL)
		oom(p);
	return v;
}

static dre_err
parse(parser *p, dre_json **rootp)
{
	dre_json *root = NULL;
	dre_json *v = node_new(p); // the value about to be read
	if (v == NULL)
		return p->rv;
	for (;;) {
		skip_ws(p);
		if (p->pos >= p->len)
			return fail(p, p->pos,
			    p->len == 0 ? "empty input"
			                : "unexpected end of input");
		unsigned char c = p->s[p->pos];
		bool          container = c == '{' || c == '[';
		switch (c) {
		case '{':
		case '[':
			v->type = c == '{' ? DRE_JSON_OBJECT : DRE_JSON_ARRAY;
			break;
		case '"':
			v->type = DRE_JSON_STRING;
			if (read_string(p, &v->str, &v->len) != DRE_OK)
				return p->rv;
			break;
		case 't':
			if (read_literal(p, v, "true", DRE_JSON_TRUE)
			    != DRE_OK)
				return p->rv;
			break;
		case 'f':
			if (read_literal(p, v, "false", DRE_JSON_FALSE)
			    != DRE_OK)
				return p->rv;
			break;
		case 'n':
			if (read_literal(p, v, "null", DRE_JSON_NULL)
			    != DRE_OK)
				return p->rv;
			break;
		default:
			if (c != '-' && !is_digit(c))
				return fail(p, p->pos, "unexpected character");
			if (read_number(p, v) != DRE_OK)
				return p->rv;
			break;
		}
		if (p->depth == 0)
			root = v;
		else
			attach(&p->stack[p->depth - 1], v);

		bool opened = false;
		if (container) {
			if (push(p, v) != DRE_OK)
				return p->rv;
			p->pos++;
			opened = true;
		}

		// After a value (or just inside a new container): find the
		// next value to read, closing containers on the way.
		for (;;) {
			if (p->depth == 0) {
				skip_ws(p);
				if (p->pos != p->len)
					return fail(p, p->pos,
					    "trailing characters after JSON");
				*rootp = root;
				return DRE_OK;
			}
			frame *f = &p->stack[p->depth - 1];
			bool   obj = f->node->type == DRE_JSON_OBJECT;
			char   close = obj ? '}' : ']';
			skip_ws(p);
			if (p->pos >= p->len)
				return fail(
				    p, p->pos, "unexpected end of input");
			c = p->s[p->pos];
			if (c == close && (opened || f->node->len > 0)) {
				p->pos++;
				p->depth--;
				opened = false;
				continue;
			}
			if (!opened) {
				if (c != ',')
					return fail(p, p->pos,
					    obj ? "',' or '}' expected"
					        : "',' or ']' expected");
				p->pos++;
			}
			break;
		}
		v = node_new(p);
		if (v == NULL)
			return p->rv;
		if (p->stack[p->depth - 1].node->type == DRE_JSON_OBJECT
		    && read_key(p, v) != DRE_OK)
			return p->rv;
	}
}

static dre_err
parse_text(dre_json **rootp, dre_arena *arena, const char *text, size_t len,
    int max_depth, dre_json_error *err, char *inplace)
{
	parser p;
	memset(&p, 0, sizeof(p));
	p.inplace = inplace;
	p.s = (const unsigned char *) (text ? text : "");
	p.len = text ? len : 0;
	p.arena = arena;
	p.max_depth = max_depth > 0 ? (size_t) max_depth : DRE_JSON_MAX_DEPTH;
	// Addresses vary per request (ASLR, arena blocks): a cheap seed that
	// makes crafted colliding keys hard to prepare in advance.
	p.seed = DRE_FNV64_INIT ^ (uint64_t) (uintptr_t) arena
	    ^ ((uint64_t) (uintptr_t) text << 17) ^ (uint64_t) len;
	p.err = err;
	if (err != NULL) {
		err->offset = 0;
		err->msg = NULL;
	}
	dre_json *root = NULL;
	if (parse(&p, &root) != DRE_OK)
		return p.rv;
	*rootp = root;
	return DRE_OK;
}

dre_err
dre_json_parse(dre_json **rootp, dre_arena *arena, const char *text,
    size_t len, int max_depth, dre_json_error *err)
{
	return parse_text(rootp, arena, text, len, max_depth, err, NULL);
}

dre_err
dre_json_parse_inplace(dre_json **rootp, dre_arena *arena, char *text,
    size_t len, int max_depth, dre_json_error *err)
{
	return parse_text(rootp, arena, text, len, max_depth, err, text);
}

const dre_json *
dre_json_getn(const dre_json *obj, const char *key, size_t n)
{
	if (obj == NULL || obj->type != DRE_JSON_OBJECT || key == NULL)
		return NULL;
	// The first byte before a memcmp call: most members differ there.
	for (const dre_json *m = obj->child; m != NULL; m = m->next)
		if (m->key_len == n
		    && (n == 0
		        || (m->key[0] == key[0]
		            && memcmp(m->key, key, n) == 0)))
			return m;
	return NULL;
}

const dre_json *
dre_json_unknown(const dre_json *obj, const char *const *known, size_t n,
    const dre_json *after)
{
	if (obj == NULL || obj->type != DRE_JSON_OBJECT)
		return NULL;
	for (const dre_json *m = after ? after->next : obj->child; m != NULL;
	     m = m->next) {
		size_t i = 0;
		// The first byte rules out most names without a strlen.
		while (i < n
		    && !(known[i][0] == m->key[0]
		        && strlen(known[i]) == m->key_len
		        && memcmp(known[i], m->key, m->key_len) == 0))
			i++;
		if (i == n)
			return m;
	}
	return NULL;
}

// edit_distance counts the insertions, deletions, substitutions and swaps
// of neighbours that turn a[0..la) into b (NUL terminated; names of 64 bytes
// or more are never suggested): the optimal string alignment distance.
static size_t
edit_distance(const char *a, size_t la, const char *b)
{
	size_t  lb = strlen(b), r0[64], r1[64], r2[64];
	size_t *pp = r0, *prev = r1, *cur = r2;
	if (la >= 64 || lb >= 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t d = prev[j - 1] + (a[i - 1] != b[j - 1]);
			if (prev[j] + 1 < d)
				d = prev[j] + 1;
			if (cur[j - 1] + 1 < d)
				d = cur[j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2]
			    && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < d)
				d = pp[j - 2] + 1;
			cur[j] = d;
		}
		size_t *t = pp;
		pp = prev;
		prev = cur;
		cur = t;
	}
	return prev[lb];
}

const char *
dre_json_did_you_mean(
    const char *s, size_t len, const char *const *known, size_t n)
{
	const char *best = NULL;
	size_t      bd = 3; // a typo: at most two edits
	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(s, len, known[i]);
		// ... and at most a third of what was typed ("tz" is not "to")
		if (d < bd && 3 * d <= len) {
			bd = d;
			best = known[i];
		}
	}
	return best;
}

const dre_json *
dre_json_at(const dre_json *arr, size_t i)
{
	if (arr == NULL || arr->type != DRE_JSON_ARRAY || i >= arr->len)
		return NULL;
	const dre_json *e = arr->child;
	while (i-- > 0 && e != NULL)
		e = e->next;
	return e;
}

dre_err
dre_json_decimal(int64_t *out, const dre_json *v, int scale, int max_digits)
{
	if (v == NULL
	    || (v->type != DRE_JSON_NUMBER && v->type != DRE_JSON_STRING))
		return DRE_EINVAL;
	return dre_decimal_parse(out, v->str, v->len, scale, max_digits);
}

dre_err
dre_json_int(int64_t *out, const dre_json *v, int64_t min, int64_t max)
{
	if (v == NULL || v->type != DRE_JSON_NUMBER)
		return DRE_EINVAL;
	int64_t n;
	dre_err rv = dre_decimal_parse(&n, v->str, v->len, 0, 0);
	if (rv != DRE_OK)
		return rv;
	if (n < min || n > max)
		return DRE_EINVAL;
	*out = n;
	return DRE_OK;
}

void
dre_json_unknown_describe(const dre_json *m, const char *const *known,
    size_t n, char *name, size_t ncap, char *msg, size_t mcap)
{
	const char *near = dre_json_did_you_mean(m->key, m->key_len, known, n);
	// At most 60 bytes: the message goes into a JSON error body
	// (fuzz_promo found a 3-byte character cut there).
	size_t len = dre_utf8_cut(m->key, m->key_len, 60);
	snprintf(name, ncap, "%.*s", (int) len, m->key);
	if (near != NULL)
		snprintf(msg, mcap, "unknown field '%s' (did you mean '%s'?)",
		    name, near);
	else
		snprintf(msg, mcap, "unknown field '%s'", name);
}
