// evalwire.c -- POS wire contract (seed 002): evaluate request JSON ->
// protobuf, evaluate response protobuf -> JSON, error and heartbeat bodies.
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dre/clock.h"
#include "dre/evalwire.h"
#include "dre/hash.h"
#include "dre/jsonw.h"
#include "dre/money.h"
#include "dre/uuid.h"

// Lengths the seed leaves open; generous so no real till is refused.
#define LEN_KEY   255
#define LEN_VALUE 1000
#define LEN_SHORT 50
#define LEN_NAME  100

// ---------------------------------------------------------------- errors

static dre_err fail(dre_wire_error *err, int status, const char *code,
    const char *target, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static dre_err
fail(dre_wire_error *err, int status, const char *code, const char *target,
    const char *fmt, ...)
{
	va_list ap;

	err->status = status;
	err->code = code;
	snprintf(err->target, sizeof(err->target), "%s", target);
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return DRE_EINVAL;
}

#define INVALID(err, target, ...)                                             \
	fail(err, 400, "VALIDATION_FAILED", target, __VA_ARGS__)

// Paths name a field in an error message. They are built for every line
// of a basket, so without printf: a path too long is cut at 127 bytes.
#define PATH_MAX_LEN 128

// path_put appends s to out[*o..cap-1) and keeps out NUL terminated.
static void
path_put(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
	if (*o + n >= cap)
		n = cap - 1 - *o;
	memcpy(out + *o, s, n);
	*o += n;
	out[*o] = '\0';
}

// A field's place in the request: up.name[index] (no "[index]" when
// index is SIZE_MAX; up NULL at the request's top). Written out only when
// an error or an ignored field names it.
typedef struct wpath wpath;
struct wpath {
	const wpath *up;
	const char  *name;
	size_t       index;
};
#define AT(name) (&(const wpath) { NULL, (name), SIZE_MAX })

// path_write appends at's text to out[*o..cap-1).
static void
path_write(char *out, size_t cap, size_t *o, const wpath *at)
{
	if (at == NULL)
		return;
	path_write(out, cap, o, at->up);
	if (*o > 0)
		path_put(out, cap, o, ".", 1);
	path_put(out, cap, o, at->name, strlen(at->name));
	if (at->index != SIZE_MAX) {
		char   tmp[24];
		char  *d = tmp + sizeof(tmp);
		size_t i = at->index;
		*--d = ']';
		do {
			*--d = (char) ('0' + i % 10);
			i /= 10;
		} while (i != 0);
		*--d = '[';
		path_put(out, cap, o, d, (size_t) (tmp + sizeof(tmp) - d));
	}
}

// join writes "<at>.<name>" (at alone without a name, name alone at the
// top) into out[PATH_MAX_LEN].
static const char *
join(char *out, const wpath *at, const char *name)
{
	size_t o = 0;
	out[0] = '\0';
	path_write(out, PATH_MAX_LEN, &o, at);
	if (name != NULL) {
		if (o > 0)
			path_put(out, PATH_MAX_LEN, &o, ".", 1);
		path_put(out, PATH_MAX_LEN, &o, name, strlen(name));
	}
	return out;
}

// ---------------------------------------------------------------- readers

typedef struct {
	dre_arena      *a;
	dre_wire_error *err;
} rd;

// rd_str reads obj.name as a string of at most max characters into *out
// (borrowed from the parsed document: it lives in the same arena). Absent
// and null leave *out NULL unless required.
static dre_err
rd_str(rd *r, char **out, const dre_json *obj, const wpath *at,
    const char *name, size_t max, bool required)
{
	const dre_json *v = dre_json_get(obj, name);
	char            t[128];
	size_t          chars;

	*out = NULL;
	if (dre_json_is_null(v)) {
		if (required)
			return INVALID(
			    r->err, join(t, at, name), "%s is required", name);
		return DRE_OK;
	}
	if (v->type != DRE_JSON_STRING)
		return INVALID(
		    r->err, join(t, at, name), "%s must be a string", name);
	// protobuf-c strings end at the first NUL: refuse to cut them.
	if (strlen(v->str) != v->len)
		return INVALID(r->err, join(t, at, name),
		    "%s must not contain NUL characters", name);
	// Characters are counted only when the bytes could be too many (a
	// character is at least one byte; dre_json_parse left only UTF-8).
	if (v->len > max) {
		if (!dre_utf8_valid(v->str, v->len, &chars))
			return fail(r->err, 400, "MALFORMED_JSON",
			    join(t, at, name), "%s is not valid UTF-8", name);
		if (chars > max)
			return INVALID(r->err, join(t, at, name),
			    "%s must be at most %zu characters", name, max);
	}
	if (required && v->len == 0)
		return INVALID(
		    r->err, join(t, at, name), "%s must not be empty", name);
	*out = (char *) v->str;
	return DRE_OK;
}

// rd_decimal reads obj.name (number or numeric string) scaled by 10^scale.
static dre_err
rd_decimal(rd *r, int64_t *out, bool *present, const dre_json *obj,
    const wpath *at, const char *name, int scale, bool required)
{
	const dre_json *v = dre_json_get(obj, name);
	char            t[128];
	dre_err         e;

	*present = false;
	if (dre_json_is_null(v)) {
		if (required)
			return INVALID(
			    r->err, join(t, at, name), "%s is required", name);
		return DRE_OK;
	}
	if (v->type != DRE_JSON_NUMBER && v->type != DRE_JSON_STRING)
		return INVALID(
		    r->err, join(t, at, name), "%s must be a number", name);
	e = dre_json_decimal(out, v, scale, DRE_DECIMAL_MAX_DIGITS);
	if (e == DRE_EINVAL)
		return INVALID(r->err, join(t, at, name),
		    "%s must have at most %d decimals", name, scale);
	if (e == DRE_ETOOBIG)
		return INVALID(r->err, join(t, at, name),
		    "%s must have at most %d digits", name,
		    DRE_DECIMAL_MAX_DIGITS);
	if (e != DRE_OK)
		return INVALID(r->err, join(t, at, name),
		    "%s must be a decimal number", name);
	*present = true;
	return DRE_OK;
}

static dre_err
rd_bool(rd *r, protobuf_c_boolean *out, protobuf_c_boolean *has,
    const dre_json *obj, const wpath *at, const char *name)
{
	const dre_json *v = dre_json_get(obj, name);
	char            t[128];

	if (dre_json_is_null(v))
		return DRE_OK;
	if (v->type != DRE_JSON_TRUE && v->type != DRE_JSON_FALSE)
		return INVALID(
		    r->err, join(t, at, name), "%s must be a boolean", name);
	*out = v->type == DRE_JSON_TRUE;
	*has = 1;
	return DRE_OK;
}

// rd_obj returns obj.name if it is an object, NULL when absent/null; a
// value of another type fails.
static dre_err
rd_obj(rd *r, const dre_json **out, const dre_json *obj, const wpath *at,
    const char *name)
{
	const dre_json *v = dre_json_get(obj, name);
	char            t[128];

	*out = NULL;
	if (dre_json_is_null(v))
		return DRE_OK;
	if (v->type != DRE_JSON_OBJECT)
		return INVALID(
		    r->err, join(t, at, name), "%s must be an object", name);
	*out = v;
	return DRE_OK;
}

static dre_err
rd_arr(rd *r, const dre_json **out, const dre_json *obj, const wpath *at,
    const char *name)
{
	const dre_json *v = dre_json_get(obj, name);
	char            t[128];

	*out = NULL;
	if (dre_json_is_null(v))
		return DRE_OK;
	if (v->type != DRE_JSON_ARRAY)
		return INVALID(
		    r->err, join(t, at, name), "%s must be an array", name);
	*out = v;
	return DRE_OK;
}

#define NEW(r, T, init)                                                       \
	({                                                                    \
		T *p_ = dre_arena_get((r)->a, sizeof(T));                     \
		if (p_ != NULL)                                               \
			init(p_);                                             \
		p_;                                                           \
	})

#define TRY(expr)                                                             \
	do {                                                                  \
		dre_err e_ = (expr);                                          \
		if (e_ != DRE_OK)                                             \
			return e_;                                            \
	} while (0)

// rd_kvs reads an array of {key, value} pairs.
static dre_err
rd_kvs(rd *r, Dre__KeyValue ***outp, size_t *np, const dre_json *obj,
    const wpath *at, const char *name)
{
	const dre_json *arr, *el;
	size_t          i = 0;

	TRY(rd_arr(r, &arr, obj, at, name));
	if (arr == NULL || arr->len == 0)
		return DRE_OK;
	Dre__KeyValue **kv = dre_arena_get(r->a, arr->len * sizeof(*kv));
	if (kv == NULL)
		return DRE_ENOMEM;
	for (el = arr->child; el != NULL; el = el->next, i++) {
		const wpath base = { at, name, i };
		char        t[PATH_MAX_LEN];
		if (el->type != DRE_JSON_OBJECT)
			return INVALID(r->err, join(t, &base, NULL),
			    "%s must be an array of objects {key, value}",
			    name);
		if ((kv[i] = NEW(r, Dre__KeyValue, dre__key_value__init))
		    == NULL)
			return DRE_ENOMEM;
		TRY(rd_str(r, &kv[i]->key, el, &base, "key", LEN_KEY, true));
		// A value may be any scalar in some tills; keep its text.
		const dre_json *v = dre_json_get(el, "value");
		if (dre_json_is(v, DRE_JSON_NUMBER)) {
			kv[i]->value = (char *) v->str;
		} else if (dre_json_is(v, DRE_JSON_TRUE)
		    || dre_json_is(v, DRE_JSON_FALSE)) {
			kv[i]->value
			    = (char *) (v->type == DRE_JSON_TRUE ? "true"
			                                         : "false");
		} else {
			TRY(rd_str(r, &kv[i]->value, el, &base, "value",
			    LEN_VALUE, false));
		}
	}
	*outp = kv;
	*np = arr->len;
	return DRE_OK;
}

// ---------------------------------------------------------------- request

// A small open-addressing set of line references, to refuse duplicates
// in O(n) (a basket may hold 1000 lines).
typedef struct {
	const char **slot;
	size_t       mask;
} refset;

// refset_add returns false when s was already present.
static bool
refset_add(refset *set, const char *s)
{
	size_t i = dre_fnv1a32_str(DRE_FNV32_INIT, s, 0) & set->mask;
	while (set->slot[i] != NULL) {
		if (strcmp(set->slot[i], s) == 0)
			return false;
		i = (i + 1) & set->mask;
	}
	set->slot[i] = s;
	return true;
}

static dre_err
rd_item(
    rd *r, Dre__BasketItem **outp, const dre_json *el, size_t i, refset *refs)
{
	const wpath      base = { NULL, "items", i };
	char             t[PATH_MAX_LEN];
	Dre__BasketItem *it;
	bool             present;

	if (el->type != DRE_JSON_OBJECT)
		return INVALID(
		    r->err, join(t, &base, NULL), "items must be objects");
	if ((it = NEW(r, Dre__BasketItem, dre__basket_item__init)) == NULL)
		return DRE_ENOMEM;
	TRY(rd_str(r, &it->article_number, el, &base, "articleNumber",
	    LEN_SHORT, true));
	TRY(rd_decimal(r, &it->quantity, &present, el, &base, "quantity",
	    DRE_QTY_SCALE, true));
	if (it->quantity == 0)
		return INVALID(r->err, join(t, &base, "quantity"),
		    "quantity must not be 0");
	TRY(rd_decimal(r, &it->unit_price, &present, el, &base, "unitPrice",
	    DRE_MONEY_SCALE, true));
	if (it->unit_price < 0)
		return INVALID(r->err, join(t, &base, "unitPrice"),
		    "unitPrice must not be negative");
	TRY(rd_str(r, &it->ean, el, &base, "ean", 18, false));
	TRY(rd_str(r, &it->article_group, el, &base, "articleGroup", LEN_NAME,
	    false));
	TRY(rd_str(
	    r, &it->article_group_id, el, &base, "articleGroupId", 20, false));
	TRY(rd_str(
	    r, &it->manufacturer_id, el, &base, "manufacturerId", 255, false));
	TRY(rd_str(r, &it->line_reference, el, &base, "lineReference",
	    LEN_SHORT, false));
	if (it->line_reference != NULL
	    && !refset_add(refs, it->line_reference))
		return INVALID(r->err, join(t, &base, "lineReference"),
		    "duplicate lineReference %s", it->line_reference);
	TRY(rd_kvs(r, &it->additional_fields, &it->n_additional_fields, el,
	    &base, "additionalFields"));
	*outp = it;
	return DRE_OK;
}

static dre_err
rd_items(rd *r, Dre__EvaluateRequest *q, const dre_json *req)
{
	const dre_json *arr = dre_json_get(req, "items");
	const dre_json *el;
	refset          refs;
	size_t          i = 0, cap = 16;

	if (dre_json_is_null(arr))
		return INVALID(r->err, "items", "items is required");
	if (arr->type != DRE_JSON_ARRAY)
		return INVALID(r->err, "items", "items must be an array");
	if (arr->len == 0)
		return INVALID(r->err, "items", "items must not be empty");
	while (cap < (size_t) arr->len * 2)
		cap <<= 1;
	refs.mask = cap - 1;
	refs.slot = dre_arena_get(r->a, cap * sizeof(*refs.slot));
	q->items = dre_arena_get(r->a, arr->len * sizeof(*q->items));
	if (refs.slot == NULL || q->items == NULL)
		return DRE_ENOMEM;
	for (el = arr->child; el != NULL; el = el->next, i++)
		TRY(rd_item(r, &q->items[i], el, i, &refs));
	q->n_items = i;
	return DRE_OK;
}

static dre_err
rd_header(rd *r, Dre__EvaluateRequest *q, const dre_json *req)
{
	const dre_json *h, *tc;

	TRY(rd_obj(r, &h, req, NULL, "header"));
	if (h == NULL)
		return DRE_OK;
	if ((q->header = NEW(r, Dre__RequestHeader, dre__request_header__init))
	    == NULL)
		return DRE_ENOMEM;
	TRY(rd_str(r, &q->header->transaction_id, h, AT("header"),
	    "transactionId", LEN_SHORT, false));
	tc = dre_json_get(h, "transactionCounter");
	if (!dre_json_is_null(tc))
		return INVALID(r->err, "header.transactionCounter",
		    "transactionCounter is assigned by the server and must "
		    "not be sent on evaluate/simulate");
	TRY(rd_str(r, &q->header->receipt_id, h, AT("header"), "receiptId",
	    LEN_SHORT, false));
	TRY(rd_str(r, &q->header->header_reference, h, AT("header"),
	    "headerReference", LEN_NAME, false));
	return DRE_OK;
}

static dre_err
rd_customer(rd *r, Dre__EvaluateRequest *q, const dre_json *req)
{
	const dre_json *c, *l;
	bool            present;

	TRY(rd_obj(r, &c, req, NULL, "customer"));
	if (c == NULL)
		return DRE_OK;
	Dre__CustomerInfo *ci
	    = NEW(r, Dre__CustomerInfo, dre__customer_info__init);
	if ((q->customer = ci) == NULL)
		return DRE_ENOMEM;
	TRY(rd_str(r, &ci->customer_id, c, AT("customer"), "customerId",
	    LEN_SHORT, false));
	TRY(rd_str(r, &ci->customer_group, c, AT("customer"), "customerGroup",
	    LEN_NAME, false));
	TRY(rd_str(r, &ci->loyalty_card_no, c, AT("customer"), "loyaltyCardNo",
	    LEN_SHORT, false));
	TRY(rd_obj(r, &l, c, AT("customer"), "loyalty"));
	if (l != NULL) {
		TRY(rd_str(r, &ci->loyalty_tier, l, AT("customer.loyalty"),
		    "tier", LEN_SHORT, false));
		TRY(rd_decimal(r, &ci->loyalty_points, &present, l,
		    AT("customer.loyalty"), "points", 2, false));
		ci->has_loyalty_points = present;
	}
	return DRE_OK;
}

static dre_err
rd_coupons(rd *r, Dre__EvaluateRequest *q, const dre_json *req)
{
	const dre_json *arr = dre_json_get(req, "coupons");
	const dre_json *el;
	size_t          i = 0;

	if (dre_json_is_null(arr))
		return DRE_OK;
	if (arr->type != DRE_JSON_ARRAY)
		return INVALID(r->err, "coupons",
		    "coupons must be an array of objects {code}");
	if (arr->len == 0)
		return DRE_OK;
	for (el = arr->child; el != NULL; el = el->next)
		if (el->type != DRE_JSON_OBJECT)
			return INVALID(r->err, "coupons",
			    "coupons must be an array of objects {code}");
	if ((q->coupons = dre_arena_get(r->a, arr->len * sizeof(char *)))
	    == NULL)
		return DRE_ENOMEM;
	for (el = arr->child; el != NULL; el = el->next, i++) {
		const wpath base = { NULL, "coupons", i };
		TRY(rd_str(
		    r, &q->coupons[i], el, &base, "code", LEN_SHORT, true));
	}
	q->n_coupons = i;
	return DRE_OK;
}

static dre_err
rd_rest(rd *r, Dre__EvaluateRequest *q, const dre_json *req, bool simulate)
{
	const dre_json *v;
	char           *ts;

	TRY(rd_str(r, &ts, req, NULL, "timestamp", LEN_SHORT, false));
	if (ts != NULL) {
		if (dre_time_parse(&q->timestamp_ms, ts, strlen(ts)) != DRE_OK)
			return INVALID(r->err, "timestamp",
			    "timestamp must be an ISO-8601 date-time");
		q->has_timestamp_ms = 1;
	}
	TRY(rd_str(r, &q->channel, req, NULL, "channel", LEN_SHORT, false));
	TRY(rd_str(r, &q->currency, req, NULL, "currency", 3, false));
	if (q->currency != NULL
	    && (strlen(q->currency) != 3 || q->currency[0] < 'A'
	        || q->currency[0] > 'Z' || q->currency[1] < 'A'
	        || q->currency[1] > 'Z' || q->currency[2] < 'A'
	        || q->currency[2] > 'Z'))
		return INVALID(r->err, "currency",
		    "currency must be a 3-letter ISO 4217 code");
	TRY(rd_obj(r, &v, req, NULL, "paymentInfo"));
	if (v != NULL) {
		Dre__PaymentInfo *p
		    = NEW(r, Dre__PaymentInfo, dre__payment_info__init);
		if ((q->payment = p) == NULL)
			return DRE_ENOMEM;
		TRY(rd_str(r, &p->payment_means, v, AT("paymentInfo"),
		    "paymentMeans", LEN_SHORT, false));
		TRY(rd_str(r, &p->card_type, v, AT("paymentInfo"), "cardType",
		    LEN_SHORT, false));
		TRY(rd_str(r, &p->card_number, v, AT("paymentInfo"),
		    "cardNumber", LEN_SHORT, false));
	}
	TRY(rd_kvs(r, &q->user_defined_fields, &q->n_user_defined_fields, req,
	    NULL, "userDefinedFields"));
	TRY(rd_obj(r, &v, req, NULL, "manualDiscount"));
	if (v != NULL) {
		Dre__ManualDiscountInfo *m = NEW(r, Dre__ManualDiscountInfo,
		    dre__manual_discount_info__init);
		if ((q->manual_discount = m) == NULL)
			return DRE_ENOMEM;
		TRY(rd_bool(r, &m->enabled, &m->has_enabled, v,
		    AT("manualDiscount"), "enabled"));
		TRY(rd_str(r, &m->reason_code, v, AT("manualDiscount"),
		    "reasonCode", LEN_SHORT, false));
	}
	// Type-checked on both paths; honoured only by the simulator.
	protobuf_c_boolean inact = 0, has_inact = 0, missed = 0,
	                   has_missed = 0;
	TRY(rd_bool(r, &inact, &has_inact, req, NULL, "includeInactive"));
	TRY(rd_bool(
	    r, &missed, &has_missed, req, NULL, "includeMissedPromotions"));
	if (simulate) {
		q->has_include_inactive = has_inact;
		q->include_inactive = inact;
		q->has_include_missed_promotions = has_missed;
		q->include_missed_promotions = missed;
	}
	q->has_simulate = 1;
	q->simulate = simulate;
	return DRE_OK;
}

// ---------------------------------------------------------------- ignored

// The members each object of an evaluate request may have. POS requests
// stay lenient (PRODUCT-DECISIONS §1): others are ignored, but named.
#define KN(...)                                                               \
	(const char *const[]) { __VA_ARGS__ },                                \
	    sizeof((const char *const[]) { __VA_ARGS__ }) / sizeof(char *)
#define K_REQUEST                                                             \
	KN("header", "posGroupId", "posGroupCode", "items", "customer",       \
	    "coupons", "timestamp", "channel", "currency", "paymentInfo",     \
	    "userDefinedFields", "manualDiscount", "includeInactive",         \
	    "includeMissedPromotions")
#define K_HEADER                                                              \
	KN("transactionId", "transactionCounter", "receiptId",                \
	    "headerReference")
#define K_ITEM                                                                \
	KN("lineReference", "articleNumber", "quantity", "unitPrice", "ean",  \
	    "articleGroup", "articleGroupId", "manufacturerId",               \
	    "additionalFields")
#define K_CUSTOMER                                                            \
	KN("customerId", "customerGroup", "loyaltyCardNo", "loyalty")
#define K_LOYALTY KN("tier", "points")
#define K_COUPON  KN("code")
#define K_PAYMENT KN("paymentMeans", "cardType", "cardNumber")
#define K_MANUAL  KN("enabled", "reasonCode")
#define K_KV      KN("key", "value")

typedef struct {
	dre_arena *a;
	char     **v;
	size_t     n;
} ignored;

// ign_obj names every member of obj (at path at) not in known[0..n).
static void
ign_obj(ignored *g, const dre_json *obj, const wpath *at,
    const char *const *known, size_t n)
{
	char   pre[PATH_MAX_LEN];
	size_t pl = SIZE_MAX; // the path's text, written at the first name
	for (const dre_json *m = dre_json_unknown(obj, known, n, NULL);
	     m != NULL && g->n <= DRE_EVAL_MAX_IGNORED;
	     m = dre_json_unknown(obj, known, n, m)) {
		if (pl == SIZE_MAX)
			pl = strlen(join(pre, at, NULL));
		size_t kl = dre_utf8_cut(m->key, m->key_len, 64);
		char  *p = dre_arena_get(g->a, pl + kl + 2);
		size_t o = 0;
		if (p == NULL)
			return;
		if (pl > 0) {
			memcpy(p, pre, pl);
			p[pl] = '.';
			o = pl + 1;
		}
		memcpy(p + o, m->key, kl);
		p[o + kl] = '\0';
		g->v[g->n++] = p;
	}
}

// ign_each applies ign_obj to every object element of array up.name.
static void
ign_each(ignored *g, const dre_json *arr, const wpath *up, const char *name,
    const char *const *known, size_t n)
{
	if (!dre_json_is(arr, DRE_JSON_ARRAY))
		return;
	size_t i = 0;
	for (const dre_json *e = arr->child; e != NULL; e = e->next, i++) {
		const wpath at = { up, name, i };
		ign_obj(g, e, &at, known, n);
	}
}

// ign_request collects the unknown members of a parsed request into q.
static void
ign_request(dre_arena *a, Dre__EvaluateRequest *q, const dre_json *req)
{
	ignored g = { a,
		dre_arena_get(a, (DRE_EVAL_MAX_IGNORED + 1) * sizeof(char *)),
		0 };
	if (g.v == NULL)
		return;
	ign_obj(&g, req, NULL, K_REQUEST);
	ign_obj(&g, dre_json_get(req, "header"), AT("header"), K_HEADER);
	const dre_json *items = dre_json_get(req, "items");
	ign_each(&g, items, NULL, "items", K_ITEM);
	if (dre_json_is(items, DRE_JSON_ARRAY)) {
		size_t i = 0;
		for (const dre_json *e = items->child; e != NULL;
		     e = e->next, i++) {
			const wpath it = { NULL, "items", i };
			ign_each(&g, dre_json_get(e, "additionalFields"), &it,
			    "additionalFields", K_KV);
		}
	}
	const dre_json *c = dre_json_get(req, "customer");
	ign_obj(&g, c, AT("customer"), K_CUSTOMER);
	ign_obj(
	    &g, dre_json_get(c, "loyalty"), AT("customer.loyalty"), K_LOYALTY);
	ign_each(&g, dre_json_get(req, "coupons"), NULL, "coupons", K_COUPON);
	ign_obj(&g, dre_json_get(req, "paymentInfo"), AT("paymentInfo"),
	    K_PAYMENT);
	ign_obj(&g, dre_json_get(req, "manualDiscount"), AT("manualDiscount"),
	    K_MANUAL);
	ign_each(&g, dre_json_get(req, "userDefinedFields"), NULL,
	    "userDefinedFields", K_KV);
	q->ignored_fields = g.v;
	q->n_ignored_fields = g.n;
}

dre_err
dre_evalreq_parse(Dre__EvaluateRequest **reqp, dre_arena *a,
    const dre_json *root, bool simulate, dre_wire_error *err)
{
	rd                    r = { a, err };
	const dre_json       *req, *items;
	Dre__EvaluateRequest *q;

	memset(err, 0, sizeof(*err));
	if (!dre_json_is(root, DRE_JSON_OBJECT))
		return INVALID(err, "request",
		    "the body must be an object holding \"request\"");
	req = dre_json_get(root, "request");
	if (dre_json_is_null(req))
		return INVALID(err, "request", "request is required");
	if (req->type != DRE_JSON_OBJECT)
		return INVALID(err, "request", "request must be an object");
	// Size first: a basket over the limit is refused as a whole.
	items = dre_json_get(req, "items");
	if (dre_json_is(items, DRE_JSON_ARRAY)
	    && items->len > DRE_EVAL_MAX_ITEMS)
		return fail(err, 413, "PAYLOAD_TOO_LARGE", "items",
		    "items must hold at most %d lines", DRE_EVAL_MAX_ITEMS);

	if ((q = NEW(&r, Dre__EvaluateRequest, dre__evaluate_request__init))
	    == NULL)
		return DRE_ENOMEM;
	TRY(rd_header(&r, q, req));
	TRY(rd_str(&r, &q->pos_group_id, req, NULL, "posGroupId", 36, false));
	if (q->pos_group_id != NULL
	    && !dre_uuid_valid(q->pos_group_id, strlen(q->pos_group_id)))
		return INVALID(err, "posGroupId", "posGroupId must be a UUID");
	TRY(rd_str(
	    &r, &q->pos_group_code, req, NULL, "posGroupCode", 20, false));
	if (q->pos_group_id == NULL && q->pos_group_code == NULL)
		return INVALID(err, "posGroupId",
		    "posGroupId or posGroupCode is required");
	TRY(rd_items(&r, q, req));
	TRY(rd_customer(&r, q, req));
	TRY(rd_coupons(&r, q, req));
	TRY(rd_rest(&r, q, req, simulate));
	ign_request(a, q, req);
	*reqp = q;
	return DRE_OK;
}

// ---------------------------------------------------------------- confirm

static dre_err
rd_confirm_header(rd *r, Dre__ConfirmRequest *q, const dre_json *req)
{
	const dre_json *h, *tc;
	int64_t         n = 0;

	TRY(rd_obj(r, &h, req, NULL, "header"));
	if (h == NULL)
		return INVALID(r->err, "header", "header is required");
	if ((q->header = NEW(r, Dre__RequestHeader, dre__request_header__init))
	    == NULL)
		return DRE_ENOMEM;
	TRY(rd_str(r, &q->header->transaction_id, h, AT("header"),
	    "transactionId", LEN_SHORT, true));
	tc = dre_json_get(h, "transactionCounter");
	if (dre_json_is_null(tc))
		return INVALID(r->err, "header.transactionCounter",
		    "transactionCounter is required on confirm");
	if (dre_json_int(&n, tc, 1, INT32_MAX) != DRE_OK)
		return INVALID(r->err, "header.transactionCounter",
		    "transactionCounter must be an integer >= 1");
	q->header->has_transaction_counter = 1;
	q->header->transaction_counter = n;
	TRY(rd_str(r, &q->header->receipt_id, h, AT("header"), "receiptId",
	    LEN_SHORT, false));
	TRY(rd_str(r, &q->header->header_reference, h, AT("header"),
	    "headerReference", LEN_NAME, false));
	return DRE_OK;
}

static dre_err
rd_confirm_promotion(rd *r, Dre__ConfirmPromotion **outp, const dre_json *el,
    size_t i, refset *ids)
{
	const wpath            base = { NULL, "appliedPromotions", i };
	char                   t[PATH_MAX_LEN];
	Dre__ConfirmPromotion *p;
	const dre_json        *m;
	bool                   present;

	if (el->type != DRE_JSON_OBJECT)
		return INVALID(r->err, join(t, &base, NULL),
		    "appliedPromotions must be an array of objects");
	if ((p = NEW(r, Dre__ConfirmPromotion, dre__confirm_promotion__init))
	    == NULL)
		return DRE_ENOMEM;
	TRY(rd_str(r, &p->promotion_id, el, &base, "promotionId", 36, true));
	if (!dre_uuid_valid(p->promotion_id, strlen(p->promotion_id)))
		return INVALID(r->err, join(t, &base, "promotionId"),
		    "promotionId must be a UUID");
	if (!refset_add(ids, p->promotion_id))
		return INVALID(r->err, join(t, &base, "promotionId"),
		    "promotion %s is listed twice", p->promotion_id);
	TRY(rd_str(
	    r, &p->coupon_code, el, &base, "couponCode", LEN_SHORT, false));
	TRY(rd_decimal(r, &p->total_discount, &present, el, &base,
	    "totalDiscount", DRE_MONEY_SCALE, false));
	p->has_total_discount = present;
	if (present && p->total_discount < 0)
		return INVALID(r->err, join(t, &base, "totalDiscount"),
		    "totalDiscount must not be negative");
	TRY(rd_obj(r, &m, el, &base, "discountAmount"));
	if (m != NULL) {
		const wpath mb = { &base, "discountAmount", SIZE_MAX };
		TRY(rd_decimal(r, &p->discount_amount, &present, m, &mb,
		    "value", DRE_MONEY_SCALE, true));
		p->has_discount_amount = 1;
		if (p->discount_amount < 0)
			return INVALID(r->err, join(t, &mb, "value"),
			    "discountAmount.value must not be negative");
		TRY(rd_str(
		    r, &p->discount_currency, m, &mb, "currency", 3, false));
	}
	*outp = p;
	return DRE_OK;
}

static dre_err
rd_confirm_items(rd *r, Dre__ConfirmRequest *q, const dre_json *req)
{
	const dre_json *arr, *el;
	size_t          i = 0;
	bool            present;

	TRY(rd_arr(r, &arr, req, NULL, "items"));
	if (arr == NULL || arr->len == 0)
		return DRE_OK;
	if (arr->len > DRE_EVAL_MAX_ITEMS)
		return fail(r->err, 413, "PAYLOAD_TOO_LARGE", "items",
		    "items must hold at most %d lines", DRE_EVAL_MAX_ITEMS);
	if ((q->items = dre_arena_get(r->a, arr->len * sizeof(*q->items)))
	    == NULL)
		return DRE_ENOMEM;
	for (el = arr->child; el != NULL; el = el->next, i++) {
		const wpath       base = { NULL, "items", i };
		char              t[PATH_MAX_LEN];
		Dre__ConfirmItem *it;
		if (el->type != DRE_JSON_OBJECT)
			return INVALID(r->err, join(t, &base, NULL),
			    "items must be objects");
		if ((it = NEW(r, Dre__ConfirmItem, dre__confirm_item__init))
		    == NULL)
			return DRE_ENOMEM;
		TRY(rd_str(r, &it->article_number, el, &base, "articleNumber",
		    LEN_SHORT, true));
		TRY(rd_decimal(r, &it->quantity, &present, el, &base,
		    "quantity", DRE_QTY_SCALE, false));
		it->has_quantity = present;
		TRY(rd_decimal(r, &it->unit_price, &present, el, &base,
		    "unitPrice", DRE_MONEY_SCALE, false));
		it->has_unit_price = present;
		TRY(rd_str(r, &it->line_reference, el, &base, "lineReference",
		    LEN_SHORT, false));
		q->items[i] = it;
	}
	q->n_items = i;
	return DRE_OK;
}

dre_err
dre_confirmreq_parse(Dre__ConfirmRequest **reqp, dre_arena *a,
    const dre_json *root, dre_wire_error *err)
{
	rd                   r = { a, err };
	const dre_json      *req, *arr, *el;
	Dre__ConfirmRequest *q;
	char                *ts;
	refset               ids;
	size_t               i = 0, cap = 16;

	memset(err, 0, sizeof(*err));
	if (!dre_json_is(root, DRE_JSON_OBJECT))
		return INVALID(err, "request",
		    "the body must be an object holding \"request\"");
	req = dre_json_get(root, "request");
	if (dre_json_is_null(req))
		return INVALID(err, "request", "request is required");
	if (req->type != DRE_JSON_OBJECT)
		return INVALID(err, "request", "request must be an object");
	if ((q = NEW(&r, Dre__ConfirmRequest, dre__confirm_request__init))
	    == NULL)
		return DRE_ENOMEM;
	TRY(rd_confirm_header(&r, q, req));
	TRY(rd_str(&r, &q->transaction_id, req, NULL, "transactionId",
	    LEN_SHORT, true));
	if (strcmp(q->transaction_id, q->header->transaction_id) != 0)
		return INVALID(err, "transactionId",
		    "transactionId must equal header.transactionId");
	TRY(rd_str(&r, &q->pos_group_id, req, NULL, "posGroupId", 36, false));
	if (q->pos_group_id != NULL
	    && !dre_uuid_valid(q->pos_group_id, strlen(q->pos_group_id)))
		return INVALID(err, "posGroupId", "posGroupId must be a UUID");
	TRY(rd_str(
	    &r, &q->pos_group_code, req, NULL, "posGroupCode", 20, false));
	TRY(rd_str(
	    &r, &q->customer_id, req, NULL, "customerId", LEN_SHORT, false));
	TRY(rd_str(&r, &ts, req, NULL, "timestamp", LEN_SHORT, false));
	if (ts != NULL) {
		if (dre_time_parse(&q->timestamp_ms, ts, strlen(ts)) != DRE_OK)
			return INVALID(err, "timestamp",
			    "timestamp must be an ISO-8601 date-time");
		q->has_timestamp_ms = 1;
	}
	arr = dre_json_get(req, "appliedPromotions");
	if (dre_json_is_null(arr))
		return INVALID(
		    err, "appliedPromotions", "appliedPromotions is required");
	if (arr->type != DRE_JSON_ARRAY)
		return INVALID(err, "appliedPromotions",
		    "appliedPromotions must be an array");
	if (arr->len > DRE_EVAL_MAX_ITEMS)
		return fail(err, 413, "PAYLOAD_TOO_LARGE", "appliedPromotions",
		    "appliedPromotions must hold at most %d entries",
		    DRE_EVAL_MAX_ITEMS);
	while (cap < (size_t) arr->len * 2)
		cap <<= 1;
	ids.mask = cap - 1;
	ids.slot = dre_arena_get(a, cap * sizeof(*ids.slot));
	q->applied_promotions = dre_arena_get(
	    a, (arr->len ? arr->len : 1) * sizeof(*q->applied_promotions));
	if (ids.slot == NULL || q->applied_promotions == NULL)
		return DRE_ENOMEM;
	for (el = arr->child; el != NULL; el = el->next, i++)
		TRY(rd_confirm_promotion(
		    &r, &q->applied_promotions[i], el, i, &ids));
	q->n_applied_promotions = i;
	TRY(rd_confirm_items(&r, q, req));
	*reqp = q;
	return DRE_OK;
}

void
dre_confirmresp_write(dre_buf *out, const Dre__ConfirmResponse *r)
{
	dre_jsonw w;

	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "transactionId", r->transaction_id);
	dre_jsonw_kbool(&w, "confirmed", r->confirmed);
	dre_jsonw_kstr(&w, "message", r->message);
	dre_jsonw_obj_end(&w);
}

// ---------------------------------------------------------------- response

static void
kmoney(dre_jsonw *w, const char *key, int64_t v, const char *cur)
{
	dre_jsonw_kmoney(w, key, v, cur);
}

static void
write_line(dre_jsonw *w, const Dre__LineItem *li, const char *cur)
{
	dre_jsonw_obj_begin(w);
	dre_jsonw_kstr(w, "lineReference", li->line_reference);
	dre_jsonw_kstr(w, "articleNumber", li->article_number);
	dre_jsonw_kstr(w, "ean", li->ean);
	dre_jsonw_kstr(w, "articleGroupId", li->article_group_id);
	dre_jsonw_kstr(w, "manufacturerId", li->manufacturer_id);
	dre_jsonw_key(w, "quantity");
	dre_jsonw_obj_begin(w);
	dre_jsonw_key(w, "value");
	dre_jsonw_decimal(w, li->quantity, DRE_QTY_SCALE);
	dre_jsonw_kstr(w, "unit", li->unit != NULL ? li->unit : "PCE");
	dre_jsonw_obj_end(w);
	kmoney(w, "unitPrice", li->unit_price, cur);
	kmoney(w, "lineTotal", li->line_total, cur);
	kmoney(w, "lineDiscount", li->line_discount, cur);
	kmoney(w, "lineNet", li->line_net, cur);
	dre_jsonw_key(w, "discounts");
	dre_jsonw_arr_begin(w);
	for (size_t i = 0; i < li->n_discounts; i++) {
		const Dre__LineDiscount *d = li->discounts[i];
		dre_jsonw_obj_begin(w);
		dre_jsonw_kstr(w, "promotionId", d->promotion_id);
		dre_jsonw_kstr(w, "promotionName", d->promotion_name);
		dre_jsonw_kstr(w, "promotionType", d->promotion_type);
		dre_jsonw_kstr(w, "discountType", d->discount_type);
		dre_jsonw_key(w, "discountValue");
		dre_jsonw_decimal_trim(w, d->discount_value, 2);
		kmoney(w, "discountAmount", d->discount_amount, cur);
		kmoney(w, "totalDiscount", d->discount_amount, cur);
		dre_jsonw_kstr(w, "couponCode", d->coupon_code);
		dre_jsonw_kbool(w, "triggeredByCoupon",
		    d->has_triggered_by_coupon && d->triggered_by_coupon);
		dre_jsonw_obj_end(w);
	}
	dre_jsonw_arr_end(w);
	bool is_free = li->has_is_free_item && li->is_free_item;
	dre_jsonw_kbool(w, "isFreeItem", is_free);
	dre_jsonw_kstr(w, "freeItemPromotionId",
	    is_free ? li->free_item_promotion_id : NULL);
	dre_jsonw_obj_end(w);
}

static void
write_granted(dre_jsonw *w, const Dre__GrantedItem *g, const char *cur)
{
	dre_jsonw_obj_begin(w);
	dre_jsonw_kstr(w, "grantReference", g->grant_reference);
	dre_jsonw_kstr(w, "articleNumber", g->article_number);
	dre_jsonw_kstr(w, "ean", g->ean);
	dre_jsonw_kint(w, "quantity", g->quantity);
	kmoney(w, "referencePrice", g->reference_price, cur);
	dre_jsonw_kstr(w, "priceSource", g->price_source);
	kmoney(w, "giveAwayValue", g->give_away_value, cur);
	dre_jsonw_kstr(w, "promotionId", g->promotion_id);
	dre_jsonw_kstr(w, "promotionName", g->promotion_name);
	dre_jsonw_kbool(w, "triggeredByCoupon",
	    g->has_triggered_by_coupon && g->triggered_by_coupon);
	dre_jsonw_obj_end(w);
}

static void
write_totals(dre_jsonw *w, const Dre__Totals *t, const char *cur)
{
	dre_jsonw_key(w, "totals");
	dre_jsonw_obj_begin(w);
	kmoney(w, "subtotal", t->subtotal, cur);
	kmoney(w, "discount", t->discount, cur);
	kmoney(w, "grandTotal", t->grand_total, cur);
	if (t->has_sale_subtotal)
		kmoney(w, "saleSubtotal", t->sale_subtotal, cur);
	if (t->has_return_subtotal)
		kmoney(w, "returnSubtotal", t->return_subtotal, cur);
	dre_jsonw_key(w, "savingsSummary");
	dre_jsonw_obj_begin(w);
	kmoney(w, "totalSavings", t->total_savings, cur);
	dre_jsonw_key(w, "savingsPercent");
	dre_jsonw_decimal(w, t->savings_percent, DRE_PCT_SCALE);
	kmoney(w, "originalTotal", t->original_total, cur);
	kmoney(w, "finalTotal", t->final_total, cur);
	dre_jsonw_key(w, "promotionBreakdown");
	dre_jsonw_arr_begin(w);
	for (size_t i = 0; i < t->n_promotion_breakdown; i++) {
		const Dre__PromotionBreakdown *b = t->promotion_breakdown[i];
		dre_jsonw_obj_begin(w);
		dre_jsonw_kstr(w, "promotionId", b->promotion_id);
		dre_jsonw_kstr(w, "promotionName", b->promotion_name);
		kmoney(w, "totalDiscount", b->total_discount, cur);
		dre_jsonw_key(w, "affectedItems");
		dre_jsonw_arr_begin(w);
		for (size_t k = 0; k < b->n_affected_items; k++)
			dre_jsonw_str(w, b->affected_items[k]);
		dre_jsonw_arr_end(w);
		dre_jsonw_obj_end(w);
	}
	dre_jsonw_arr_end(w);
	dre_jsonw_key(w, "itemSavings");
	dre_jsonw_arr_begin(w);
	for (size_t i = 0; i < t->n_item_savings; i++) {
		const Dre__ItemSavings *s = t->item_savings[i];
		dre_jsonw_obj_begin(w);
		dre_jsonw_kstr(w, "articleNumber", s->article_number);
		kmoney(w, "originalPrice", s->original_price, cur);
		kmoney(w, "finalPrice", s->final_price, cur);
		kmoney(w, "savings", s->savings, cur);
		dre_jsonw_obj_end(w);
	}
	dre_jsonw_arr_end(w);
	dre_jsonw_kint(w, "loyaltyPointsEarned", t->loyalty_points_earned);
	dre_jsonw_obj_end(w);
	dre_jsonw_obj_end(w);
}

static void
write_recommendation(dre_jsonw *w, const Dre__Recommendation *r)
{
	dre_jsonw_obj_begin(w);
	dre_jsonw_kstr(w, "kind", r->kind);
	dre_jsonw_kstr(w, "code", r->code);
	dre_jsonw_key(w, "params");
	dre_jsonw_arr_begin(w);
	for (size_t i = 0; i < r->n_params; i++) {
		dre_jsonw_obj_begin(w);
		dre_jsonw_kstr(w, "key", r->params[i]->key);
		dre_jsonw_kstr(w, "value", r->params[i]->value);
		dre_jsonw_obj_end(w);
	}
	dre_jsonw_arr_end(w);
	dre_jsonw_kstr(w, "defaultMessage", r->default_message);
	dre_jsonw_kstr(w, "promotionId", r->promotion_id);
	dre_jsonw_kstr(w, "promotionName", r->promotion_name);
	// The seed: matchPercent exists on NEAR_MISS entries only.
	if (r->kind != NULL && strcmp(r->kind, "NEAR_MISS") == 0)
		dre_jsonw_kint(w, "matchPercent",
		    r->has_match_percent ? r->match_percent : 0);
	dre_jsonw_obj_end(w);
}

static void
write_meta(dre_jsonw *w, const Dre__EvaluateResponse *r)
{
	const Dre__RequestHeader *h = r->header;

	dre_jsonw_key(w, "meta");
	dre_jsonw_obj_begin(w);
	dre_jsonw_key(w, "header");
	dre_jsonw_obj_begin(w);
	if (h != NULL) {
		if (h->transaction_id != NULL)
			dre_jsonw_kstr(w, "transactionId", h->transaction_id);
		if (h->has_transaction_counter)
			dre_jsonw_kint(
			    w, "transactionCounter", h->transaction_counter);
		if (h->receipt_id != NULL)
			dre_jsonw_kstr(w, "receiptId", h->receipt_id);
		if (h->header_reference != NULL)
			dre_jsonw_kstr(
			    w, "headerReference", h->header_reference);
	}
	dre_jsonw_obj_end(w);
	dre_jsonw_key(w, "evaluatedAt");
	dre_jsonw_time(w, r->evaluated_at_ms);
	dre_jsonw_kstr(w, "source", r->source);
	dre_jsonw_kstr(w, "instanceId", r->instance_id);
	dre_jsonw_kbool(w, "isSimulation", r->is_simulation);
	dre_jsonw_kstr(w, "tenantId", r->tenant_id);
	if (r->has_data_age_ms) {
		dre_jsonw_key(w, "dataAge");
		dre_jsonw_time(w, r->data_age_ms);
	}
	if (r->n_warnings > 0) { // absent when empty: the seed's shape
		dre_jsonw_key(w, "warnings");
		dre_jsonw_arr_begin(w);
		for (size_t i = 0; i < r->n_warnings; i++) {
			const Dre__Warning *x = r->warnings[i];
			dre_jsonw_obj_begin(w);
			dre_jsonw_kstr(w, "code", x->code);
			dre_jsonw_kstr(w, "message", x->message);
			dre_jsonw_kstr(w, "target", x->target);
			dre_jsonw_obj_end(w);
		}
		dre_jsonw_arr_end(w);
	}
	dre_jsonw_obj_end(w);
}

void
dre_evalresp_write(dre_buf *out, const Dre__EvaluateResponse *r)
{
	dre_jsonw   w;
	const char *cur = r->currency != NULL ? r->currency : "EUR";

	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kint(&w, "minorVersion", DRE_EVAL_MINOR_VERSION);
	write_meta(&w, r);

	dre_jsonw_key(&w, "lineItems");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < r->n_line_items; i++)
		write_line(&w, r->line_items[i], cur);
	dre_jsonw_arr_end(&w);

	dre_jsonw_key(&w, "grantedItems");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < r->n_granted_items; i++)
		write_granted(&w, r->granted_items[i], cur);
	dre_jsonw_arr_end(&w);

	if (r->totals != NULL) {
		write_totals(&w, r->totals, cur);
	} else {
		Dre__Totals zero = DRE__TOTALS__INIT;
		write_totals(&w, &zero, cur);
	}

	dre_jsonw_key(&w, "recommendations");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < r->n_recommendations; i++)
		write_recommendation(&w, r->recommendations[i]);
	dre_jsonw_arr_end(&w);

	dre_jsonw_key(&w, "appliedCoupons");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < r->n_applied_coupons; i++) {
		const Dre__AppliedCoupon *c = r->applied_coupons[i];
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "code", c->code);
		dre_jsonw_kstr(&w, "couponTypeName", c->coupon_type_name);
		dre_jsonw_key(&w, "promotionIds");
		dre_jsonw_arr_begin(&w);
		for (size_t k = 0; k < c->n_promotion_ids; k++)
			dre_jsonw_str(&w, c->promotion_ids[k]);
		dre_jsonw_arr_end(&w);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);

	dre_jsonw_key(&w, "invalidCoupons");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < r->n_invalid_coupons; i++) {
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "code", r->invalid_coupons[i]->code);
		dre_jsonw_kstr(&w, "reason", r->invalid_coupons[i]->reason);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);

	dre_jsonw_key(&w, "budgetLimitedPromotions");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < r->n_budget_limited_promotions; i++) {
		const Dre__BudgetLimitedPromotion *b
		    = r->budget_limited_promotions[i];
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "promotionId", b->promotion_id);
		dre_jsonw_kstr(&w, "promotionName", b->promotion_name);
		dre_jsonw_kstr(&w, "reason", b->reason);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);

	if (r->has_include_missed && r->include_missed) {
		dre_jsonw_key(&w, "missedPromotions");
		dre_jsonw_arr_begin(&w);
		for (size_t i = 0; i < r->n_missed_promotions; i++) {
			const Dre__MissedPromotion *m
			    = r->missed_promotions[i];
			dre_jsonw_obj_begin(&w);
			dre_jsonw_kstr(&w, "promotionId", m->promotion_id);
			dre_jsonw_kstr(&w, "promotionName", m->promotion_name);
			dre_jsonw_kstr(&w, "stage", m->stage);
			dre_jsonw_kstr(&w, "reason", m->reason);
			dre_jsonw_obj_end(&w);
		}
		dre_jsonw_arr_end(&w);
	}

	dre_jsonw_key(&w, "nudges");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < r->n_nudges; i++) {
		const Dre__Nudge *n = r->nudges[i];
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "message", n->message);
		dre_jsonw_kstr(&w, "suggestedAction", n->suggested_action);
		kmoney(&w, "potentialSaving", n->potential_saving, cur);
		dre_jsonw_kstr(&w, "promotionId", n->promotion_id);
		dre_jsonw_kstr(&w, "promotionName", n->promotion_name);
		dre_jsonw_kstr(&w, "gapType", n->gap_type);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);

	dre_jsonw_key(&w, "thresholdGaps");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < r->n_threshold_gaps; i++) {
		const Dre__ThresholdGap *g = r->threshold_gaps[i];
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "promotionId", g->promotion_id);
		dre_jsonw_kstr(&w, "promotionName", g->promotion_name);
		dre_jsonw_kstr(&w, "type", g->type);
		dre_jsonw_key(&w, "currentValue");
		dre_jsonw_decimal(&w, g->current_value, 2);
		dre_jsonw_key(&w, "threshold");
		dre_jsonw_decimal(&w, g->threshold, 2);
		dre_jsonw_key(&w, "gap");
		dre_jsonw_decimal(&w, g->gap, 2);
		kmoney(&w, "potentialSaving", g->potential_saving, cur);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_obj_end(&w);
}

void
dre_heartbeat_write(dre_buf *out, const Dre__HeartbeatResponse *h)
{
	dre_jsonw w;

	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "status", h->status);
	dre_jsonw_kstr(&w, "version", h->version);
	dre_jsonw_kstr(&w, "mode", h->mode);
	dre_jsonw_kstr(&w, "btpConnectivity", h->btp_connectivity);
	dre_jsonw_key(&w, "lastSync");
	if (h->has_last_sync_ms)
		dre_jsonw_time(&w, h->last_sync_ms);
	else
		dre_jsonw_null(&w);
	dre_jsonw_kint(&w, "pendingTransactions", h->pending_transactions);
	dre_jsonw_kint(&w, "promotionsLoaded", h->promotions_loaded);
	dre_jsonw_kint(&w, "uptime", h->uptime_s);
	if (h->n_services > 0) {
		dre_jsonw_key(&w, "services");
		dre_jsonw_obj_begin(&w);
		for (size_t i = 0; i < h->n_services; i++)
			dre_jsonw_kstr(
			    &w, h->services[i]->name, h->services[i]->status);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_obj_end(&w);
}

void
dre_error_body_write_details(dre_buf *out, const char *code,
    const char *message, const char *target, const dre_error_detail *details,
    size_t ndetails)
{
	dre_jsonw w;

	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_key(&w, "error");
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "code", code != NULL ? code : "UNAVAILABLE");
	dre_jsonw_kstr(&w, "message", message != NULL ? message : "");
	if (target != NULL && target[0] != '\0')
		dre_jsonw_kstr(&w, "target", target);
	if (ndetails > 0) {
		dre_jsonw_key(&w, "details");
		dre_jsonw_arr_begin(&w);
		for (size_t i = 0; i < ndetails; i++) {
			dre_jsonw_obj_begin(&w);
			dre_jsonw_kstr(&w, "code", details[i].code);
			dre_jsonw_kstr(&w, "message", details[i].message);
			if (details[i].target != NULL)
				dre_jsonw_kstr(
				    &w, "target", details[i].target);
			dre_jsonw_obj_end(&w);
		}
		dre_jsonw_arr_end(&w);
	}
	dre_jsonw_obj_end(&w);
	dre_jsonw_obj_end(&w);
}

void
dre_error_body_write(
    dre_buf *out, const char *code, const char *message, const char *target)
{
	dre_error_body_write_details(out, code, message, target, NULL, 0);
}
