// promo.c -- parses, validates and normalises the promotion document
// (PRODUCT-DECISIONS §3).
#include "dre/promo.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dre/clock.h"
#include "dre/jsonw.h"
#include "dre/uuid.h"

#define NAME_MAX_CHARS 255
#define DESC_MAX_CHARS 5000
#define STR_MAX_CHARS  255
#define DEC_DIGITS     DRE_DECIMAL_MAX_DIGITS
#define MONEY_MAX      999999999999999LL // Decimal(15,2) in minor units
#define QTY_MAX        999999999999999LL // Decimal(15,3) in thousandths

static const char *const type_names[]
    = { "ARTICLE", "RECEIPT", "LOYALTY", "BUNDLE", "COUPON" };
static const char *const status_names[]
    = { "DRAFT", "PENDING_APPROVAL", "APPROVED", "REJECTED", "ACTIVE",
	      "INACTIVE", "EXPIRED", "ARCHIVED", "PILOT" };
static const char *const cond_names[]
    = { "ARTICLE", "ARTICLE_LIST", "ARTICLE_GROUP", "MANUFACTURER",
	      "RECEIPT_AMOUNT", "ITEM_QUANTITY", "CUSTOMER_REQUIRED",
	      "CUSTOMER_GROUP", "LOYALTY_TIER", "CHANNEL", "PAYMENT_MEANS",
	      "USER_DEFINED", "ADDITIONAL_FIELD", "MANUAL_DISCOUNT" };
static const char *const action_names[] = { "ARTICLE", "ARTICLE_GROUP",
	"ARTICLE_LIST", "QUANTITY_TIER", "BUNDLE", "RECEIPT", "SCALED_RECEIPT",
	"FREE_ITEM", "ADD_FIXED", "CURRENCY_TO_POINTS", "MULTIPLY_POINTS",
	"SUBTRACT_POINTS", "ISSUE_COUPON" };
static const char *const disc_names[]
    = { "PERCENTAGE", "ABSOLUTE", "UNIT_PRICE" };
static const char *const excl_names[] = { "NONE", "LINE", "RECEIPT" };
static const char *const assign_names[] = { "NONE", "PERSONAL" };
static const char *const mode_names[] = { "ADDITIVE", "MULTIPLICATIVE" };
static const char *const rounding_names[]
    = { "HALF_UP", "DOWN", "UP", "NONE" };
static const char *const day_names[]
    = { "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN" };

#define NELEM(x) (sizeof(x) / sizeof((x)[0]))

static const char *
enum_name(const char *const *names, size_t n, int v)
{
	return v >= 0 && (size_t) v < n ? names[v] : "UNKNOWN";
}

const char *
dre_promo_type_name(dre_promo_type t)
{
	return enum_name(type_names, NELEM(type_names), (int) t);
}

const char *
dre_promo_status_name(dre_promo_status s)
{
	return enum_name(status_names, NELEM(status_names), (int) s);
}

const char *
dre_cond_type_name(dre_cond_type t)
{
	return enum_name(cond_names, NELEM(cond_names), (int) t);
}

const char *
dre_action_type_name(dre_action_type t)
{
	return enum_name(action_names, NELEM(action_names), (int) t);
}

const char *
dre_disc_type_name(dre_disc_type t)
{
	return enum_name(disc_names, NELEM(disc_names), (int) t);
}

static int
enum_find(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int) i;
	return -1;
}

dre_err
dre_promo_status_parse(dre_promo_status *out, const char *s)
{
	int i = s ? enum_find(status_names, NELEM(status_names), s) : -1;
	if (i < 0)
		return DRE_EINVAL;
	*out = (dre_promo_status) i;
	return DRE_OK;
}

// ---- parse context: every problem is recorded, parsing goes on ----------

typedef struct {
	dre_arena        *a;
	dre_promo_errors *errs;
	size_t            nerr;
	bool              nomem;
	bool              name_bad; // name present but invalid
	bool              actions_bad; // actions present but invalid
} pctx;

static void perr(pctx *c, const char *target, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
perr(pctx *c, const char *target, const char *fmt, ...)
{
	dre_promo_errors *e = c->errs;
	c->nerr++;
	if (e == NULL)
		return;
	if (e->n < e->cap && e->v != NULL) {
		dre_promo_error *x = &e->v[e->n];
		va_list          ap;
		x->code = "VALIDATION_FAILED";
		va_start(ap, fmt);
		vsnprintf(x->message, sizeof x->message, fmt, ap);
		va_end(ap);
		snprintf(x->target, sizeof x->target, "%s", target);
	}
	e->n++;
}

// jpath formats a JSON path into out (truncating quietly: paths are short).
static void jpath(char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
jpath(char *out, size_t cap, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out, cap, fmt, ap);
	va_end(ap);
}

// present returns the member k of obj unless it is absent or null.
// The members each object of the document may have (what the parser reads
// and what dre_promo_write emits): anything else is refused (strict
// master data, PRODUCT-DECISIONS §1).
#define KNOWN(...)                                                            \
	(const char *const[]) { __VA_ARGS__ },                                \
	    sizeof((const char *const[]) { __VA_ARGS__ }) / sizeof(char *)
#define K_PROMO                                                               \
	KNOWN("id", "name", "description", "type", "status", "validFrom",     \
	    "validTo", "timeWindows", "timezone", "posGroups", "currency",    \
	    "priority", "exclusivity", "exclusionGroups",                     \
	    "calculationConfig", "budgetIds", "couponTypeIds", "campaignId",  \
	    "externalId", "assignment", "conditions", "actions", "createdAt", \
	    "modifiedAt", "minorVersion")
#define K_WINDOW KNOWN("days", "from", "to")
#define K_CALC   KNOWN("mode", "rounding", "precision")
#define K_COND                                                                \
	KNOWN("type", "values", "minQuantity", "articleListId", "min",        \
	    "cardTypes", "key", "reasonCodes")
#define K_ACTION                                                              \
	KNOWN("type", "target", "maxQuantity", "discountType", "value",       \
	    "bundlePrice", "maxApplications", "articleNumber", "quantity",    \
	    "referencePrice", "points", "pointsPerUnit", "factor",            \
	    "couponTypeId", "tiers", "components")
#define K_TARGET                                                              \
	KNOWN("articles", "articleGroups", "manufacturers", "articleListId")
#define K_TIER      KNOWN("threshold", "minQuantity", "discountType", "value")
#define K_COMPONENT KNOWN("articles", "articleGroups", "quantity")

// strict records every member of obj not in known[0..n) as a problem with
// the target prefix.member and a did-you-mean when a known name is close.
static void
strict(pctx *c, const dre_json *obj, const char *prefix,
    const char *const *known, size_t n)
{
	for (const dre_json *m = dre_json_unknown(obj, known, n, NULL);
	     m != NULL; m = dre_json_unknown(obj, known, n, m)) {
		char name[64], msg[160], t[96];
		dre_json_unknown_describe(
		    m, known, n, name, sizeof name, msg, sizeof msg);
		jpath(
		    t, sizeof t, "%s%s%s", prefix, prefix[0] ? "." : "", name);
		perr(c, t, "%s", msg);
	}
}

static const dre_json *
present(const dre_json *obj, const char *k)
{
	const dre_json *v = dre_json_get(obj, k);
	return dre_json_is_null(v) ? NULL : v;
}

static void *
cget(pctx *c, size_t n)
{
	void *p = dre_arena_get(c->a, n ? n : 1);
	if (p == NULL)
		c->nomem = true;
	return p;
}

// get_str reads a string of minc..maxc code points into *out (arena copy).
static bool
get_str(pctx *c, const char **out, const dre_json *v, const char *target,
    size_t minc, size_t maxc)
{
	size_t chars = 0;
	if (!dre_json_is(v, DRE_JSON_STRING)) {
		perr(c, target, "%s must be a string", target);
		return false;
	}
	dre_utf8_valid(v->str, v->len, &chars);
	if (chars < minc || chars > maxc || memchr(v->str, 0, v->len)) {
		if (minc > 0 && chars < minc)
			perr(c, target, "%s must not be empty", target);
		else
			perr(c, target, "%s must be at most %zu characters",
			    target, maxc);
		return false;
	}
	char *s = dre_arena_strndup(c->a, v->str, v->len);
	if (s == NULL) {
		c->nomem = true;
		return false;
	}
	*out = s;
	return true;
}

// get_strlist reads an array of non-empty strings.
static bool
get_strlist(pctx *c, dre_strlist *out, const dre_json *v, const char *target,
    bool nonempty)
{
	if (!dre_json_is(v, DRE_JSON_ARRAY)) {
		perr(c, target, "%s must be an array of strings", target);
		return false;
	}
	if (nonempty && v->len == 0) {
		perr(c, target, "%s must not be empty", target);
		return false;
	}
	const char **arr = cget(c, sizeof(char *) * v->len);
	if (arr == NULL)
		return false;
	bool     ok = true;
	uint32_t i = 0;
	for (const dre_json *e = v->child; e != NULL; e = e->next, i++) {
		char t[96];
		jpath(t, sizeof t, "%s[%u]", target, i);
		if (!get_str(c, &arr[i], e, t, 1, STR_MAX_CHARS))
			ok = false;
	}
	if (!ok)
		return false;
	out->v = arr;
	out->n = v->len;
	return true;
}

static bool
get_dec(pctx *c, int64_t *out, const dre_json *v, int scale, int64_t min,
    int64_t max, bool min_exclusive, const char *target)
{
	int64_t x;
	dre_err e = dre_json_decimal(&x, v, scale, DEC_DIGITS);
	if (e == DRE_EINVAL) {
		perr(c, target, "%s must have at most %d decimals", target,
		    scale);
		return false;
	}
	if (e == DRE_ETOOBIG) {
		perr(c, target, "%s has more than %d digits", target,
		    DEC_DIGITS);
		return false;
	}
	if (e != DRE_OK) {
		perr(c, target, "%s must be a number", target);
		return false;
	}
	if (x < min || x > max || (min_exclusive && x == min)) {
		char lo[32], hi[32];
		dre_decimal_format_trim(lo, min, scale);
		dre_decimal_format_trim(hi, max, scale);
		if (min_exclusive && max != MONEY_MAX && max != QTY_MAX)
			perr(c, target,
			    "%s must be greater than %s and at most %s",
			    target, lo, hi);
		else if (min_exclusive)
			perr(c, target, "%s must be greater than %s", target,
			    lo);
		else if (max == MONEY_MAX || max == QTY_MAX)
			perr(c, target, "%s must be at least %s", target, lo);
		else
			perr(c, target, "%s must be between %s and %s", target,
			    lo, hi);
		return false;
	}
	*out = x;
	return true;
}

static bool
get_int(pctx *c, int64_t *out, const dre_json *v, int64_t min, int64_t max,
    const char *target)
{
	int64_t x;
	if (!dre_json_is(v, DRE_JSON_NUMBER)
	    || dre_json_int(&x, v, INT64_MIN, INT64_MAX) != DRE_OK) {
		perr(c, target, "%s must be an integer", target);
		return false;
	}
	if (x < min || x > max) {
		perr(c, target, "%s must be between %lld and %lld", target,
		    (long long) min, (long long) max);
		return false;
	}
	*out = x;
	return true;
}

static bool
get_enum(pctx *c, int *out, const dre_json *v, const char *const *names,
    size_t n, const char *target)
{
	int i = dre_json_is(v, DRE_JSON_STRING) ? enum_find(names, n, v->str)
	                                        : -1;
	if (i < 0) {
		char   list[200];
		size_t l = 0;
		list[0] = 0;
		for (size_t k = 0; k < n && l + 1 < sizeof list; k++)
			l += (size_t) snprintf(list + l, sizeof list - l,
			    "%s%s", k ? ", " : "", names[k]);
		perr(c, target, "%s must be one of %s", target, list);
		return false;
	}
	*out = i;
	return true;
}

static bool
get_time(pctx *c, int64_t *out, const dre_json *v, const char *target)
{
	if (!dre_json_is(v, DRE_JSON_STRING)
	    || dre_time_parse(out, v->str, v->len) != DRE_OK) {
		perr(c, target, "%s must be an ISO-8601 date-time", target);
		return false;
	}
	return true;
}

// hhmm parses "HH:MM"; "24:00" only where allow24 (an end of day).
static int
hhmm(const char *s, size_t n, bool allow24)
{
	if (n != 5 || s[2] != ':')
		return -1;
	for (int i = 0; i < 5; i++)
		if (i != 2 && (s[i] < '0' || s[i] > '9'))
			return -1;
	int h = (s[0] - '0') * 10 + (s[1] - '0');
	int m = (s[3] - '0') * 10 + (s[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && (m != 0 || !allow24)))
		return -1;
	return h * 60 + m;
}

// tz_valid accepts UTC or an IANA name present in the system's zoneinfo;
// the name must not escape that directory.
static bool
tz_valid(const char *s)
{
	if (strcmp(s, "UTC") == 0)
		return true;
	size_t n = strlen(s);
	if (n == 0 || n > 64 || s[0] == '/' || s[0] == '.' || strstr(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
		        || (ch >= '0' && ch <= '9') || ch == '/' || ch == '_'
		        || ch == '-' || ch == '+'))
			return false;
	}
	char        path[128];
	struct stat st;
	snprintf(path, sizeof path, "/usr/share/zoneinfo/%s", s);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

// ---- members ------------------------------------------------------------

static void
parse_windows(pctx *c, dre_promo *p, const dre_json *v)
{
	if (!dre_json_is(v, DRE_JSON_ARRAY)) {
		perr(c, "timeWindows", "timeWindows must be an array");
		return;
	}
	dre_time_window *w = cget(c, sizeof *w * v->len);
	if (w == NULL)
		return;
	uint32_t i = 0;
	for (const dre_json *e = v->child; e != NULL; e = e->next, i++) {
		char t[96];
		jpath(t, sizeof t, "timeWindows[%u]", i);
		if (!dre_json_is(e, DRE_JSON_OBJECT)) {
			perr(c, t, "%s must be an object", t);
			continue;
		}
		strict(c, e, t, K_WINDOW);
		const dre_json *d = present(e, "days");
		w[i].days = 0x7f;
		if (d != NULL) {
			jpath(t, sizeof t, "timeWindows[%u].days", i);
			if (!dre_json_is(d, DRE_JSON_ARRAY) || d->len == 0) {
				perr(c, t,
				    "%s must be a non-empty array of "
				    "MON..SUN",
				    t);
			} else {
				w[i].days = 0;
				uint32_t k = 0;
				for (const dre_json *x = d->child; x;
				     x = x->next, k++) {
					int  day;
					char tk[96];
					jpath(tk, sizeof tk,
					    "timeWindows[%u].days[%u]", i, k);
					if (get_enum(c, &day, x, day_names,
					        NELEM(day_names), tk))
						w[i].days
						    |= (uint8_t) (1u << day);
				}
			}
		}
		const dre_json *f = present(e, "from"), *to = present(e, "to");
		jpath(t, sizeof t, "timeWindows[%u].from", i);
		w[i].from_min = f && dre_json_is(f, DRE_JSON_STRING)
		    ? hhmm(f->str, f->len, false)
		    : -1;
		if (w[i].from_min < 0)
			perr(c, t, "%s must be a time HH:MM", t);
		jpath(t, sizeof t, "timeWindows[%u].to", i);
		w[i].to_min = to && dre_json_is(to, DRE_JSON_STRING)
		    ? hhmm(to->str, to->len, true)
		    : -1;
		if (w[i].to_min < 0)
			perr(c, t, "%s must be a time HH:MM", t);
		else if (w[i].to_min == w[i].from_min)
			perr(c, t, "%s must differ from from", t);
	}
	p->windows = w;
	p->nwindows = v->len;
}

static void
parse_calc(pctx *c, dre_promo *p, const dre_json *v)
{
	if (!dre_json_is(v, DRE_JSON_OBJECT)) {
		perr(c, "calculationConfig",
		    "calculationConfig must be an object");
		return;
	}
	strict(c, v, "calculationConfig", K_CALC);
	const dre_json *m;
	int             i;
	int64_t         x;
	if ((m = present(v, "mode")) != NULL
	    && get_enum(c, &i, m, mode_names, NELEM(mode_names),
	        "calculationConfig.mode"))
		p->calc_mode = (dre_calc_mode) i;
	if ((m = present(v, "rounding")) != NULL
	    && get_enum(c, &i, m, rounding_names, NELEM(rounding_names),
	        "calculationConfig.rounding"))
		p->rounding = (dre_rounding) i;
	if ((m = present(v, "precision")) != NULL
	    && get_int(c, &x, m, 0, 6, "calculationConfig.precision"))
		p->precision = (int) x;
}

// needs_values: condition types whose values are the alternatives tested.
static bool
cond_needs_values(dre_cond_type t)
{
	switch (t) {
	case DRE_COND_ARTICLE:
	case DRE_COND_ARTICLE_GROUP:
	case DRE_COND_MANUFACTURER:
	case DRE_COND_CUSTOMER_GROUP:
	case DRE_COND_LOYALTY_TIER:
	case DRE_COND_CHANNEL:
	case DRE_COND_PAYMENT_MEANS:
	case DRE_COND_USER_DEFINED:
	case DRE_COND_ADDITIONAL_FIELD:
		return true;
	default:
		return false;
	}
}

static void
parse_cond(pctx *c, dre_promo_cond *k, const dre_json *e, uint32_t i)
{
	char            t[96];
	const dre_json *v;
	int             ty;
	jpath(t, sizeof t, "conditions[%u]", i);
	if (!dre_json_is(e, DRE_JSON_OBJECT)) {
		perr(c, t, "%s must be an object", t);
		return;
	}
	strict(c, e, t, K_COND);
	jpath(t, sizeof t, "conditions[%u].type", i);
	if ((v = present(e, "type")) == NULL) {
		perr(c, t, "%s is required", t);
		return;
	}
	if (!get_enum(c, &ty, v, cond_names, NELEM(cond_names), t))
		return;
	k->type = (dre_cond_type) ty;

	jpath(t, sizeof t, "conditions[%u].values", i);
	if ((v = present(e, "values")) != NULL)
		get_strlist(c, &k->values, v, t, cond_needs_values(k->type));
	else if (cond_needs_values(k->type))
		perr(c, t, "%s is required for %s", t, cond_names[ty]);

	switch (k->type) {
	case DRE_COND_ARTICLE:
	case DRE_COND_ARTICLE_GROUP:
		jpath(t, sizeof t, "conditions[%u].minQuantity", i);
		if ((v = present(e, "minQuantity")) != NULL)
			get_dec(c, &k->min_quantity, v, DRE_QTY_SCALE, 0,
			    QTY_MAX, false, t);
		break;
	case DRE_COND_ARTICLE_LIST:
		jpath(t, sizeof t, "conditions[%u].articleListId", i);
		if ((v = present(e, "articleListId")) != NULL)
			get_str(
			    c, &k->article_list_id, v, t, 1, STR_MAX_CHARS);
		else if (k->values.n == 0) {
			jpath(t, sizeof t, "conditions[%u].values", i);
			perr(c, t,
			    "ARTICLE_LIST needs articleListId or values");
		}
		break;
	case DRE_COND_RECEIPT_AMOUNT:
		jpath(t, sizeof t, "conditions[%u].min", i);
		if ((v = present(e, "min")) == NULL)
			perr(c, t, "%s is required for RECEIPT_AMOUNT", t);
		else
			get_dec(c, &k->min_amount, v, DRE_MONEY_SCALE, 0,
			    MONEY_MAX, false, t);
		break;
	case DRE_COND_ITEM_QUANTITY:
		jpath(t, sizeof t, "conditions[%u].min", i);
		if ((v = present(e, "min")) == NULL)
			v = present(e, "minQuantity");
		if (v == NULL)
			perr(c, t, "%s is required for ITEM_QUANTITY", t);
		else
			get_dec(c, &k->min_quantity, v, DRE_QTY_SCALE, 0,
			    QTY_MAX, true, t);
		break;
	case DRE_COND_PAYMENT_MEANS:
		jpath(t, sizeof t, "conditions[%u].cardTypes", i);
		if ((v = present(e, "cardTypes")) != NULL)
			get_strlist(c, &k->card_types, v, t, false);
		break;
	case DRE_COND_USER_DEFINED:
	case DRE_COND_ADDITIONAL_FIELD:
		jpath(t, sizeof t, "conditions[%u].key", i);
		if ((v = present(e, "key")) == NULL)
			perr(c, t, "%s is required for %s", t, cond_names[ty]);
		else
			get_str(c, &k->key, v, t, 1, STR_MAX_CHARS);
		break;
	case DRE_COND_MANUAL_DISCOUNT:
		jpath(t, sizeof t, "conditions[%u].reasonCodes", i);
		if ((v = present(e, "reasonCodes")) != NULL)
			get_strlist(c, &k->reason_codes, v, t, false);
		break;
	default:
		break;
	}
}

// get_discount reads a discountType + value pair under prefix; allowed is a
// bit set of dre_disc_type.
static void
get_discount(pctx *c, dre_disc_type *dt, int64_t *value, const dre_json *e,
    const char *prefix, unsigned allowed, bool type_required)
{
	char            t[96];
	const dre_json *v;
	int             d = (int) *dt;
	bool            dt_ok = true;
	jpath(t, sizeof t, "%s.discountType", prefix);
	if ((v = present(e, "discountType")) != NULL) {
		dt_ok = get_enum(c, &d, v, disc_names, NELEM(disc_names), t);
		if (dt_ok && !(allowed & (1u << d))) {
			perr(c, t, "%s %s is not allowed here", t,
			    disc_names[d]);
			dt_ok = false;
		}
	} else if (type_required) {
		perr(c, t, "%s is required", t);
		dt_ok = false;
	}
	if (dt_ok)
		*dt = (dre_disc_type) d;
	jpath(t, sizeof t, "%s.value", prefix);
	if ((v = present(e, "value")) == NULL) {
		perr(c, t, "%s is required", t);
		return;
	}
	if (!dt_ok) {
		// still check that it is a number at all
		int64_t x;
		get_dec(c, &x, v, 2, INT64_MIN, INT64_MAX, false, t);
		return;
	}
	if (d == DRE_DISC_PERCENTAGE)
		get_dec(c, value, v, DRE_PCT_SCALE, 0, 10000, true, t);
	else
		get_dec(c, value, v, DRE_MONEY_SCALE, 0, MONEY_MAX, false, t);
}

static void
parse_target(
    pctx *c, dre_promo_target *tg, const dre_json *v, const char *prefix)
{
	char t[96];
	if (!dre_json_is(v, DRE_JSON_OBJECT)) {
		perr(c, prefix, "%s must be an object", prefix);
		return;
	}
	strict(c, v, prefix, K_TARGET);
	const dre_json *m;
	tg->present = true;
	jpath(t, sizeof t, "%s.articles", prefix);
	if ((m = present(v, "articles")) != NULL)
		get_strlist(c, &tg->articles, m, t, false);
	jpath(t, sizeof t, "%s.articleGroups", prefix);
	if ((m = present(v, "articleGroups")) != NULL)
		get_strlist(c, &tg->article_groups, m, t, false);
	jpath(t, sizeof t, "%s.manufacturers", prefix);
	if ((m = present(v, "manufacturers")) != NULL)
		get_strlist(c, &tg->manufacturers, m, t, false);
	jpath(t, sizeof t, "%s.articleListId", prefix);
	if ((m = present(v, "articleListId")) != NULL)
		get_str(c, &tg->article_list_id, m, t, 1, STR_MAX_CHARS);
}

static int
tier_cmp(const void *x, const void *y)
{
	const dre_promo_tier *a = x, *b = y;
	int64_t               ka = a->min_quantity + a->threshold;
	int64_t               kb = b->min_quantity + b->threshold;
	return ka < kb ? -1 : ka > kb;
}

static void
parse_tiers(pctx *c, dre_promo_action *ac, const dre_json *e, uint32_t i)
{
	char            t[96];
	const dre_json *v = present(e, "tiers");
	bool            scaled = ac->type == DRE_ACT_SCALED_RECEIPT;
	jpath(t, sizeof t, "actions[%u].tiers", i);
	if (!dre_json_is(v, DRE_JSON_ARRAY) || v->len == 0) {
		perr(c, t, "%s must be a non-empty array", t);
		return;
	}
	dre_promo_tier *tiers = cget(c, sizeof *tiers * v->len);
	if (tiers == NULL)
		return;
	uint32_t k = 0;
	bool     ok = true;
	unsigned allowed = scaled
	    ? (1u << DRE_DISC_PERCENTAGE) | (1u << DRE_DISC_ABSOLUTE)
	    : 7u;
	size_t   before = c->nerr;
	for (const dre_json *x = v->child; x != NULL; x = x->next, k++) {
		char pre[96], tk[96];
		jpath(pre, sizeof pre, "actions[%u].tiers[%u]", i, k);
		if (!dre_json_is(x, DRE_JSON_OBJECT)) {
			perr(c, pre, "%s must be an object", pre);
			continue;
		}
		strict(c, x, pre, K_TIER);
		const dre_json *m;
		if (scaled) {
			jpath(tk, sizeof tk, "%s.threshold", pre);
			if ((m = present(x, "threshold")) == NULL)
				perr(c, tk, "%s is required", tk);
			else
				get_dec(c, &tiers[k].threshold, m,
				    DRE_MONEY_SCALE, 0, MONEY_MAX, false, tk);
		} else {
			jpath(tk, sizeof tk, "%s.minQuantity", pre);
			if ((m = present(x, "minQuantity")) == NULL)
				perr(c, tk, "%s is required", tk);
			else
				get_dec(c, &tiers[k].min_quantity, m,
				    DRE_QTY_SCALE, 0, QTY_MAX, true, tk);
		}
		// A tier without its own discountType inherits the action's.
		tiers[k].disc_type = ac->disc_type;
		get_discount(c, &tiers[k].disc_type, &tiers[k].value, x, pre,
		    allowed, false);
	}
	ok = c->nerr == before;
	if (!ok)
		return;
	qsort(tiers, v->len, sizeof *tiers, tier_cmp);
	for (k = 1; k < v->len; k++)
		if (tier_cmp(&tiers[k - 1], &tiers[k]) == 0) {
			perr(c, t, "%s has two tiers with the same %s", t,
			    scaled ? "threshold" : "minQuantity");
			return;
		}
	ac->tiers = tiers;
	ac->ntiers = v->len;
}

static void
parse_components(pctx *c, dre_promo_action *ac, const dre_json *e, uint32_t i)
{
	char            t[96];
	const dre_json *v = present(e, "components");
	jpath(t, sizeof t, "actions[%u].components", i);
	if (!dre_json_is(v, DRE_JSON_ARRAY) || v->len == 0) {
		perr(c, t, "%s must be a non-empty array", t);
		return;
	}
	dre_bundle_component *cs = cget(c, sizeof *cs * v->len);
	if (cs == NULL)
		return;
	uint32_t k = 0;
	for (const dre_json *x = v->child; x != NULL; x = x->next, k++) {
		char            pre[96], tk[96];
		const dre_json *m;
		jpath(pre, sizeof pre, "actions[%u].components[%u]", i, k);
		if (!dre_json_is(x, DRE_JSON_OBJECT)) {
			perr(c, pre, "%s must be an object", pre);
			continue;
		}
		strict(c, x, pre, K_COMPONENT);
		jpath(tk, sizeof tk, "%s.articles", pre);
		if ((m = present(x, "articles")) != NULL)
			get_strlist(c, &cs[k].articles, m, tk, false);
		jpath(tk, sizeof tk, "%s.articleGroups", pre);
		if ((m = present(x, "articleGroups")) != NULL)
			get_strlist(c, &cs[k].article_groups, m, tk, false);
		if (cs[k].articles.n == 0 && cs[k].article_groups.n == 0
		    && present(x, "articles") == NULL
		    && present(x, "articleGroups") == NULL)
			perr(
			    c, pre, "%s needs articles or articleGroups", pre);
		jpath(tk, sizeof tk, "%s.quantity", pre);
		cs[k].quantity = 1000;
		if ((m = present(x, "quantity")) != NULL) {
			int64_t q;
			if (get_int(c, &q, m, 1, 1000000, tk))
				cs[k].quantity = q * 1000;
		}
	}
	ac->components = cs;
	ac->ncomponents = v->len;
}

static bool
action_is_line(dre_action_type t)
{
	return t == DRE_ACT_ARTICLE || t == DRE_ACT_ARTICLE_GROUP
	    || t == DRE_ACT_ARTICLE_LIST;
}

static void
parse_action(pctx *c, dre_promo_action *ac, const dre_json *e, uint32_t i)
{
	char            t[96], pre[96];
	const dre_json *v;
	int             ty;
	ac->bundle_price = -1;
	ac->reference_price = -1;
	jpath(pre, sizeof pre, "actions[%u]", i);
	if (!dre_json_is(e, DRE_JSON_OBJECT)) {
		perr(c, pre, "%s must be an object", pre);
		return;
	}
	strict(c, e, pre, K_ACTION);
	jpath(t, sizeof t, "%s.type", pre);
	if ((v = present(e, "type")) == NULL) {
		perr(c, t, "%s is required", t);
		return;
	}
	if (!get_enum(c, &ty, v, action_names, NELEM(action_names), t))
		return;
	ac->type = (dre_action_type) ty;

	bool has_target = action_is_line(ac->type)
	    || ac->type == DRE_ACT_QUANTITY_TIER || ac->type == DRE_ACT_RECEIPT
	    || ac->type == DRE_ACT_SCALED_RECEIPT;
	if (has_target && (v = present(e, "target")) != NULL) {
		jpath(t, sizeof t, "%s.target", pre);
		parse_target(c, &ac->target, v, t);
	}
	if (action_is_line(ac->type) || ac->type == DRE_ACT_QUANTITY_TIER) {
		jpath(t, sizeof t, "%s.maxQuantity", pre);
		if ((v = present(e, "maxQuantity")) != NULL)
			get_dec(c, &ac->max_quantity, v, DRE_QTY_SCALE, 0,
			    QTY_MAX, false, t);
	}

	switch (ac->type) {
	case DRE_ACT_ARTICLE:
	case DRE_ACT_ARTICLE_GROUP:
	case DRE_ACT_ARTICLE_LIST:
		get_discount(c, &ac->disc_type, &ac->value, e, pre, 7u, true);
		break;
	case DRE_ACT_RECEIPT:
		get_discount(c, &ac->disc_type, &ac->value, e, pre,
		    (1u << DRE_DISC_PERCENTAGE) | (1u << DRE_DISC_ABSOLUTE),
		    true);
		break;
	case DRE_ACT_QUANTITY_TIER:
	case DRE_ACT_SCALED_RECEIPT: {
		// The action's discountType is the default of its tiers.
		int dflt = ac->type == DRE_ACT_SCALED_RECEIPT
		    ? DRE_DISC_ABSOLUTE
		    : DRE_DISC_PERCENTAGE;
		jpath(t, sizeof t, "%s.discountType", pre);
		if ((v = present(e, "discountType")) != NULL)
			get_enum(
			    c, &dflt, v, disc_names, NELEM(disc_names), t);
		if (ac->type == DRE_ACT_SCALED_RECEIPT
		    && dflt == DRE_DISC_UNIT_PRICE) {
			perr(c, t, "%s UNIT_PRICE is not allowed here", t);
			dflt = DRE_DISC_ABSOLUTE;
		}
		ac->disc_type = (dre_disc_type) dflt;
		parse_tiers(c, ac, e, i);
		break;
	}
	case DRE_ACT_BUNDLE:
		parse_components(c, ac, e, i);
		jpath(t, sizeof t, "%s.bundlePrice", pre);
		if ((v = present(e, "bundlePrice")) != NULL)
			get_dec(c, &ac->bundle_price, v, DRE_MONEY_SCALE, 0,
			    MONEY_MAX, false, t);
		else if (present(e, "discountType") != NULL
		    || present(e, "value") != NULL)
			get_discount(c, &ac->disc_type, &ac->value, e, pre,
			    (1u << DRE_DISC_PERCENTAGE)
			        | (1u << DRE_DISC_ABSOLUTE),
			    true);
		else
			perr(c, t, "%s or discountType and value is required",
			    t);
		jpath(t, sizeof t, "%s.maxApplications", pre);
		if ((v = present(e, "maxApplications")) != NULL)
			get_int(c, &ac->max_applications, v, 0, 1000000, t);
		break;
	case DRE_ACT_FREE_ITEM:
		jpath(t, sizeof t, "%s.articleNumber", pre);
		if ((v = present(e, "articleNumber")) == NULL)
			perr(c, t, "%s is required", t);
		else
			get_str(c, &ac->article_number, v, t, 1, 50);
		ac->quantity = 1;
		jpath(t, sizeof t, "%s.quantity", pre);
		if ((v = present(e, "quantity")) != NULL)
			get_int(c, &ac->quantity, v, 1, 1000000, t);
		jpath(t, sizeof t, "%s.referencePrice", pre);
		if ((v = present(e, "referencePrice")) != NULL)
			get_dec(c, &ac->reference_price, v, DRE_MONEY_SCALE, 0,
			    MONEY_MAX, false, t);
		break;
	case DRE_ACT_ADD_FIXED:
	case DRE_ACT_SUBTRACT_POINTS:
		jpath(t, sizeof t, "%s.points", pre);
		if ((v = present(e, "points")) == NULL)
			perr(c, t, "%s is required", t);
		else
			get_int(c, &ac->points, v, 1, 1000000000, t);
		break;
	case DRE_ACT_CURRENCY_TO_POINTS:
		jpath(t, sizeof t, "%s.pointsPerUnit", pre);
		if ((v = present(e, "pointsPerUnit")) == NULL)
			perr(c, t, "%s is required", t);
		else
			get_dec(c, &ac->points_per_unit, v, 2, 0, MONEY_MAX,
			    true, t);
		break;
	case DRE_ACT_MULTIPLY_POINTS:
		jpath(t, sizeof t, "%s.factor", pre);
		if ((v = present(e, "factor")) == NULL)
			perr(c, t, "%s is required", t);
		else
			get_dec(c, &ac->factor, v, 2, 0, MONEY_MAX, true, t);
		break;
	case DRE_ACT_ISSUE_COUPON:
		jpath(t, sizeof t, "%s.couponTypeId", pre);
		if ((v = present(e, "couponTypeId")) == NULL)
			perr(c, t, "%s is required", t);
		else
			get_str(
			    c, &ac->coupon_type_id, v, t, 1, STR_MAX_CHARS);
		ac->quantity = 1;
		jpath(t, sizeof t, "%s.quantity", pre);
		if ((v = present(e, "quantity")) != NULL)
			get_int(c, &ac->quantity, v, 1, 1000, t);
		break;
	}
}

static void
parse_conds(pctx *c, dre_promo *p, const dre_json *v)
{
	if (!dre_json_is(v, DRE_JSON_ARRAY)) {
		perr(c, "conditions", "conditions must be an array");
		return;
	}
	dre_promo_cond *k = cget(c, sizeof *k * v->len);
	if (k == NULL)
		return;
	uint32_t i = 0;
	for (const dre_json *e = v->child; e != NULL; e = e->next, i++)
		parse_cond(c, &k[i], e, i);
	p->conds = k;
	p->nconds = v->len;
}

static void
parse_actions(pctx *c, dre_promo *p, const dre_json *v)
{
	if (!dre_json_is(v, DRE_JSON_ARRAY) || v->len == 0) {
		perr(c, "actions", "actions must be a non-empty array");
		c->actions_bad = true;
		return;
	}
	dre_promo_action *ac = cget(c, sizeof *ac * v->len);
	if (ac == NULL)
		return;
	uint32_t i = 0;
	for (const dre_json *e = v->child; e != NULL; e = e->next, i++)
		parse_action(c, &ac[i], e, i);
	p->actions = ac;
	p->nactions = v->len;
}

static void
promo_defaults(dre_promo *p)
{
	memset(p, 0, sizeof *p);
	p->type = DRE_PT_ARTICLE;
	p->status = DRE_PS_DRAFT;
	p->valid_from = INT64_MIN;
	p->valid_to = INT64_MAX;
	p->timezone = "UTC";
	memcpy(p->currency, "EUR", 4);
	p->priority = 100;
	p->exclusivity = DRE_EXCL_NONE;
	p->calc_mode = DRE_CALC_ADDITIVE;
	p->rounding = DRE_ROUND_HALF_UP;
	p->precision = 2;
}

static const dre_strlist no_strings = { NULL, 0 };

// apply_members parses every member present in doc into p; a null member
// resets it to its default (PATCH semantics fall out of this).
static void
apply_members(pctx *c, dre_promo *p, const dre_json *doc, bool patch)
{
	dre_promo       dflt;
	const dre_json *v;
	int             i;
	int64_t         x;
	promo_defaults(&dflt);

	if ((v = dre_json_get(doc, "id")) != NULL) {
		if (dre_json_is_null(v)) {
			if (!patch)
				p->id[0] = 0;
		} else if (!dre_json_is(v, DRE_JSON_STRING)
		    || !dre_uuid_valid(v->str, v->len)) {
			perr(c, "id", "id must be a UUID");
		} else if (patch && p->id[0] && strcmp(p->id, v->str) != 0) {
			perr(c, "id", "id cannot be changed");
		} else {
			memcpy(p->id, v->str, DRE_UUID_LEN);
			p->id[DRE_UUID_LEN] = 0;
		}
	}
	if ((v = dre_json_get(doc, "name")) != NULL) {
		p->name = NULL;
		if (!dre_json_is_null(v)
		    && !get_str(c, &p->name, v, "name", 1, NAME_MAX_CHARS))
			c->name_bad = true;
	}
	if ((v = dre_json_get(doc, "description")) != NULL) {
		p->description = NULL;
		if (!dre_json_is_null(v))
			get_str(c, &p->description, v, "description", 0,
			    DESC_MAX_CHARS);
	}
	if ((v = dre_json_get(doc, "type")) != NULL) {
		if (dre_json_is_null(v))
			perr(c, "type", "type is required");
		else if (get_enum(
		             c, &i, v, type_names, NELEM(type_names), "type"))
			p->type = (dre_promo_type) i;
	} else if (!patch) {
		perr(c, "type", "type is required");
	}
	if ((v = dre_json_get(doc, "status")) != NULL) {
		p->status = dflt.status;
		if (!dre_json_is_null(v)
		    && get_enum(
		        c, &i, v, status_names, NELEM(status_names), "status"))
			p->status = (dre_promo_status) i;
	}
	if ((v = dre_json_get(doc, "validFrom")) != NULL) {
		p->valid_from = dflt.valid_from;
		if (!dre_json_is_null(v))
			get_time(c, &p->valid_from, v, "validFrom");
	}
	if ((v = dre_json_get(doc, "validTo")) != NULL) {
		p->valid_to = dflt.valid_to;
		if (!dre_json_is_null(v))
			get_time(c, &p->valid_to, v, "validTo");
	}
	if ((v = dre_json_get(doc, "timeWindows")) != NULL) {
		p->windows = NULL;
		p->nwindows = 0;
		if (!dre_json_is_null(v))
			parse_windows(c, p, v);
	}
	if ((v = dre_json_get(doc, "timezone")) != NULL) {
		p->timezone = dflt.timezone;
		if (!dre_json_is_null(v)) {
			const char *tz = NULL;
			if (get_str(c, &tz, v, "timezone", 1, 64)) {
				if (tz_valid(tz))
					p->timezone = tz;
				else
					perr(c, "timezone",
					    "timezone must be UTC or an IANA "
					    "time zone name");
			}
		}
	}
	if ((v = dre_json_get(doc, "posGroups")) != NULL) {
		p->pos_groups = no_strings;
		if (!dre_json_is_null(v))
			get_strlist(c, &p->pos_groups, v, "posGroups", false);
	}
	if ((v = dre_json_get(doc, "currency")) != NULL) {
		memcpy(p->currency, dflt.currency, sizeof p->currency);
		if (!dre_json_is_null(v)) {
			if (!dre_json_is(v, DRE_JSON_STRING) || v->len != 3
			    || v->str[0] < 'A' || v->str[0] > 'Z'
			    || v->str[1] < 'A' || v->str[1] > 'Z'
			    || v->str[2] < 'A' || v->str[2] > 'Z')
				perr(c, "currency",
				    "currency must be a 3-letter ISO 4217 "
				    "code");
			else
				memcpy(p->currency, v->str, 4);
		}
	}
	if ((v = dre_json_get(doc, "priority")) != NULL) {
		p->priority = dflt.priority;
		if (!dre_json_is_null(v)
		    && get_int(c, &x, v, INT32_MIN, INT32_MAX, "priority"))
			p->priority = x;
	}
	if ((v = dre_json_get(doc, "exclusivity")) != NULL) {
		p->exclusivity = dflt.exclusivity;
		if (!dre_json_is_null(v)
		    && get_enum(c, &i, v, excl_names, NELEM(excl_names),
		        "exclusivity"))
			p->exclusivity = (dre_exclusivity) i;
	}
	if ((v = dre_json_get(doc, "exclusionGroups")) != NULL) {
		p->exclusion_groups = no_strings;
		if (!dre_json_is_null(v))
			get_strlist(c, &p->exclusion_groups, v,
			    "exclusionGroups", false);
	}
	if ((v = dre_json_get(doc, "calculationConfig")) != NULL) {
		p->calc_mode = dflt.calc_mode;
		p->rounding = dflt.rounding;
		p->precision = dflt.precision;
		if (!dre_json_is_null(v))
			parse_calc(c, p, v);
	}
	if ((v = dre_json_get(doc, "budgetIds")) != NULL) {
		p->budget_ids = no_strings;
		if (!dre_json_is_null(v))
			get_strlist(c, &p->budget_ids, v, "budgetIds", false);
	}
	if ((v = dre_json_get(doc, "couponTypeIds")) != NULL) {
		p->coupon_type_ids = no_strings;
		if (!dre_json_is_null(v))
			get_strlist(
			    c, &p->coupon_type_ids, v, "couponTypeIds", false);
	}
	if ((v = dre_json_get(doc, "campaignId")) != NULL) {
		p->campaign_id = NULL;
		if (!dre_json_is_null(v))
			get_str(c, &p->campaign_id, v, "campaignId", 1,
			    STR_MAX_CHARS);
	}
	if ((v = dre_json_get(doc, "externalId")) != NULL) {
		p->external_id = NULL;
		if (!dre_json_is_null(v))
			get_str(c, &p->external_id, v, "externalId", 1,
			    STR_MAX_CHARS);
	}
	if ((v = dre_json_get(doc, "assignment")) != NULL) {
		p->assignment = DRE_ASSIGN_NONE;
		if (!dre_json_is_null(v)
		    && get_enum(c, &i, v, assign_names, NELEM(assign_names),
		        "assignment"))
			p->assignment = (dre_assignment) i;
	}
	if ((v = dre_json_get(doc, "conditions")) != NULL) {
		p->conds = NULL;
		p->nconds = 0;
		if (!dre_json_is_null(v))
			parse_conds(c, p, v);
	}
	if ((v = dre_json_get(doc, "actions")) != NULL) {
		p->actions = NULL;
		p->nactions = 0;
		if (!dre_json_is_null(v))
			parse_actions(c, p, v);
	}
	// Kept by the catalog; a client's values are taken only when valid.
	int64_t ms;
	if ((v = present(doc, "createdAt")) != NULL
	    && dre_json_is(v, DRE_JSON_STRING)
	    && dre_time_parse(&ms, v->str, v->len) == DRE_OK)
		p->created_at = ms;
	if ((v = present(doc, "modifiedAt")) != NULL
	    && dre_json_is(v, DRE_JSON_STRING)
	    && dre_time_parse(&ms, v->str, v->len) == DRE_OK)
		p->updated_at = ms;
}

// clone deep-copies base into a by writing and re-reading it: one code path
// for the normal form, and base's arena may be freed afterwards.
static dre_err
clone(dre_promo **out, dre_arena *a, const dre_promo *base)
{
	dre_buf   b = { 0 };
	dre_json *root;
	dre_err   err;
	dre_promo_write(&b, base);
	if (b.oom) {
		dre_buf_free(&b);
		return DRE_ENOMEM;
	}
	err = dre_json_parse(
	    &root, a, b.data, b.len, DRE_JSON_MAX_DEPTH, NULL);
	dre_buf_free(&b);
	if (err != DRE_OK)
		return err == DRE_ENOMEM ? DRE_ENOMEM : DRE_EINVAL;
	return dre_promo_parse(out, a, root, NULL, NULL);
}

dre_err
dre_promo_parse(dre_promo **pp, dre_arena *a, const dre_json *doc,
    const dre_promo *base, dre_promo_errors *errs)
{
	pctx       c = { .a = a, .errs = errs };
	dre_promo *p = NULL;
	if (!dre_json_is(doc, DRE_JSON_OBJECT)) {
		perr(&c, "", "the promotion must be a JSON object");
		return DRE_EINVAL;
	}
	if (base != NULL) {
		dre_err err = clone(&p, a, base);
		if (err != DRE_OK)
			return err;
	} else {
		p = dre_arena_get(a, sizeof *p);
		if (p == NULL)
			return DRE_ENOMEM;
		promo_defaults(p);
	}
	apply_members(&c, p, doc, base != NULL);
	strict(&c, doc, "", K_PROMO);

	if (p->name == NULL && !c.name_bad)
		perr(&c, "name", "name is required");
	if (p->nactions == 0 && !c.actions_bad)
		perr(&c, "actions", "at least one action is required");
	if (p->valid_from != INT64_MIN && p->valid_to != INT64_MAX
	    && p->valid_from > p->valid_to)
		perr(&c, "validTo", "validTo must not be before validFrom");
	if (c.nomem)
		return DRE_ENOMEM;
	if (c.nerr > 0)
		return DRE_EINVAL;
	*pp = p;
	return DRE_OK;
}

// ---- writer -------------------------------------------------------------

static void
w_strlist(dre_jsonw *w, const char *key, const dre_strlist *l)
{
	dre_jsonw_key(w, key);
	dre_jsonw_arr_begin(w);
	for (uint32_t i = 0; i < l->n; i++)
		dre_jsonw_str(w, l->v[i]);
	dre_jsonw_arr_end(w);
}

static void
w_dec(dre_jsonw *w, const char *key, int64_t v, int scale)
{
	dre_jsonw_key(w, key);
	dre_jsonw_decimal_trim(w, v, scale);
}

static void
w_hhmm(dre_jsonw *w, const char *key, int min)
{
	char s[8];
	snprintf(s, sizeof s, "%02d:%02d", (min / 60) % 100, min % 60);
	dre_jsonw_kstr(w, key, s);
}

static void
w_time_or_null(dre_jsonw *w, const char *key, int64_t ms, int64_t open)
{
	dre_jsonw_key(w, key);
	if (ms == open)
		dre_jsonw_null(w);
	else
		dre_jsonw_time(w, ms);
}

static void
w_cond(dre_jsonw *w, const dre_promo_cond *k)
{
	dre_jsonw_obj_begin(w);
	dre_jsonw_kstr(w, "type", dre_cond_type_name(k->type));
	w_strlist(w, "values", &k->values);
	switch (k->type) {
	case DRE_COND_ARTICLE:
	case DRE_COND_ARTICLE_GROUP:
		w_dec(w, "minQuantity", k->min_quantity, DRE_QTY_SCALE);
		break;
	case DRE_COND_ARTICLE_LIST:
		dre_jsonw_kstr(w, "articleListId", k->article_list_id);
		break;
	case DRE_COND_RECEIPT_AMOUNT:
		w_dec(w, "min", k->min_amount, DRE_MONEY_SCALE);
		break;
	case DRE_COND_ITEM_QUANTITY:
		w_dec(w, "min", k->min_quantity, DRE_QTY_SCALE);
		break;
	case DRE_COND_PAYMENT_MEANS:
		w_strlist(w, "cardTypes", &k->card_types);
		break;
	case DRE_COND_USER_DEFINED:
	case DRE_COND_ADDITIONAL_FIELD:
		dre_jsonw_kstr(w, "key", k->key);
		break;
	case DRE_COND_MANUAL_DISCOUNT:
		w_strlist(w, "reasonCodes", &k->reason_codes);
		break;
	default:
		break;
	}
	dre_jsonw_obj_end(w);
}

static void
w_disc(dre_jsonw *w, dre_disc_type dt, int64_t value)
{
	dre_jsonw_kstr(w, "discountType", dre_disc_type_name(dt));
	w_dec(w, "value", value,
	    dt == DRE_DISC_PERCENTAGE ? DRE_PCT_SCALE : DRE_MONEY_SCALE);
}

static void
w_target(dre_jsonw *w, const dre_promo_target *tg)
{
	dre_jsonw_key(w, "target");
	if (!tg->present) {
		dre_jsonw_null(w);
		return;
	}
	dre_jsonw_obj_begin(w);
	w_strlist(w, "articles", &tg->articles);
	w_strlist(w, "articleGroups", &tg->article_groups);
	w_strlist(w, "manufacturers", &tg->manufacturers);
	dre_jsonw_kstr(w, "articleListId", tg->article_list_id);
	dre_jsonw_obj_end(w);
}

static void
w_opt_dec(dre_jsonw *w, const char *key, int64_t v, int64_t none, int scale)
{
	dre_jsonw_key(w, key);
	if (v == none)
		dre_jsonw_null(w);
	else
		dre_jsonw_decimal_trim(w, v, scale);
}

static void
w_action(dre_jsonw *w, const dre_promo_action *ac)
{
	dre_jsonw_obj_begin(w);
	dre_jsonw_kstr(w, "type", dre_action_type_name(ac->type));
	switch (ac->type) {
	case DRE_ACT_ARTICLE:
	case DRE_ACT_ARTICLE_GROUP:
	case DRE_ACT_ARTICLE_LIST:
	case DRE_ACT_RECEIPT:
		w_disc(w, ac->disc_type, ac->value);
		if (ac->type != DRE_ACT_RECEIPT)
			w_opt_dec(w, "maxQuantity", ac->max_quantity, 0,
			    DRE_QTY_SCALE);
		w_target(w, &ac->target);
		break;
	case DRE_ACT_QUANTITY_TIER:
	case DRE_ACT_SCALED_RECEIPT:
		dre_jsonw_kstr(
		    w, "discountType", dre_disc_type_name(ac->disc_type));
		dre_jsonw_key(w, "tiers");
		dre_jsonw_arr_begin(w);
		for (uint32_t i = 0; i < ac->ntiers; i++) {
			const dre_promo_tier *t = &ac->tiers[i];
			dre_jsonw_obj_begin(w);
			if (ac->type == DRE_ACT_SCALED_RECEIPT)
				w_dec(w, "threshold", t->threshold,
				    DRE_MONEY_SCALE);
			else
				w_dec(w, "minQuantity", t->min_quantity,
				    DRE_QTY_SCALE);
			w_disc(w, t->disc_type, t->value);
			dre_jsonw_obj_end(w);
		}
		dre_jsonw_arr_end(w);
		if (ac->type == DRE_ACT_QUANTITY_TIER)
			w_opt_dec(w, "maxQuantity", ac->max_quantity, 0,
			    DRE_QTY_SCALE);
		w_target(w, &ac->target);
		break;
	case DRE_ACT_BUNDLE:
		dre_jsonw_key(w, "components");
		dre_jsonw_arr_begin(w);
		for (uint32_t i = 0; i < ac->ncomponents; i++) {
			const dre_bundle_component *bc = &ac->components[i];
			dre_jsonw_obj_begin(w);
			w_strlist(w, "articles", &bc->articles);
			w_strlist(w, "articleGroups", &bc->article_groups);
			dre_jsonw_kint(w, "quantity", bc->quantity / 1000);
			dre_jsonw_obj_end(w);
		}
		dre_jsonw_arr_end(w);
		w_opt_dec(
		    w, "bundlePrice", ac->bundle_price, -1, DRE_MONEY_SCALE);
		if (ac->bundle_price < 0) {
			w_disc(w, ac->disc_type, ac->value);
		} else {
			dre_jsonw_key(w, "discountType");
			dre_jsonw_null(w);
			dre_jsonw_key(w, "value");
			dre_jsonw_null(w);
		}
		dre_jsonw_key(w, "maxApplications");
		if (ac->max_applications == 0)
			dre_jsonw_null(w);
		else
			dre_jsonw_int(w, ac->max_applications);
		break;
	case DRE_ACT_FREE_ITEM:
		dre_jsonw_kstr(w, "articleNumber", ac->article_number);
		dre_jsonw_kint(w, "quantity", ac->quantity);
		w_opt_dec(w, "referencePrice", ac->reference_price, -1,
		    DRE_MONEY_SCALE);
		break;
	case DRE_ACT_ADD_FIXED:
	case DRE_ACT_SUBTRACT_POINTS:
		dre_jsonw_kint(w, "points", ac->points);
		break;
	case DRE_ACT_CURRENCY_TO_POINTS:
		w_dec(w, "pointsPerUnit", ac->points_per_unit, 2);
		break;
	case DRE_ACT_MULTIPLY_POINTS:
		w_dec(w, "factor", ac->factor, 2);
		break;
	case DRE_ACT_ISSUE_COUPON:
		dre_jsonw_kstr(w, "couponTypeId", ac->coupon_type_id);
		dre_jsonw_kint(w, "quantity", ac->quantity);
		break;
	}
	dre_jsonw_obj_end(w);
}

void
dre_promo_write(dre_buf *out, const dre_promo *p)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", p->id[0] ? p->id : NULL);
	dre_jsonw_kstr(&w, "name", p->name);
	dre_jsonw_kstr(&w, "description", p->description);
	dre_jsonw_kstr(&w, "type", dre_promo_type_name(p->type));
	dre_jsonw_kstr(&w, "status", dre_promo_status_name(p->status));
	w_time_or_null(&w, "validFrom", p->valid_from, INT64_MIN);
	w_time_or_null(&w, "validTo", p->valid_to, INT64_MAX);
	dre_jsonw_key(&w, "timeWindows");
	dre_jsonw_arr_begin(&w);
	for (uint32_t i = 0; i < p->nwindows; i++) {
		const dre_time_window *tw = &p->windows[i];
		dre_jsonw_obj_begin(&w);
		dre_jsonw_key(&w, "days");
		dre_jsonw_arr_begin(&w);
		for (int d = 0; d < 7; d++)
			if (tw->days & (1u << d))
				dre_jsonw_str(&w, day_names[d]);
		dre_jsonw_arr_end(&w);
		w_hhmm(&w, "from", tw->from_min);
		w_hhmm(&w, "to", tw->to_min);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_kstr(&w, "timezone", p->timezone ? p->timezone : "UTC");
	w_strlist(&w, "posGroups", &p->pos_groups);
	dre_jsonw_kstr(&w, "currency", p->currency);
	dre_jsonw_kint(&w, "priority", p->priority);
	dre_jsonw_kstr(&w, "exclusivity",
	    enum_name(excl_names, NELEM(excl_names), (int) p->exclusivity));
	w_strlist(&w, "exclusionGroups", &p->exclusion_groups);
	dre_jsonw_key(&w, "calculationConfig");
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "mode",
	    enum_name(mode_names, NELEM(mode_names), (int) p->calc_mode));
	dre_jsonw_kstr(&w, "rounding",
	    enum_name(
	        rounding_names, NELEM(rounding_names), (int) p->rounding));
	dre_jsonw_kint(&w, "precision", p->precision);
	dre_jsonw_obj_end(&w);
	w_strlist(&w, "budgetIds", &p->budget_ids);
	w_strlist(&w, "couponTypeIds", &p->coupon_type_ids);
	dre_jsonw_kstr(&w, "campaignId", p->campaign_id);
	dre_jsonw_kstr(&w, "externalId", p->external_id);
	dre_jsonw_kstr(&w, "assignment",
	    enum_name(assign_names, NELEM(assign_names), (int) p->assignment));
	dre_jsonw_key(&w, "conditions");
	dre_jsonw_arr_begin(&w);
	for (uint32_t i = 0; i < p->nconds; i++)
		w_cond(&w, &p->conds[i]);
	dre_jsonw_arr_end(&w);
	dre_jsonw_key(&w, "actions");
	dre_jsonw_arr_begin(&w);
	for (uint32_t i = 0; i < p->nactions; i++)
		w_action(&w, &p->actions[i]);
	dre_jsonw_arr_end(&w);
	w_time_or_null(&w, "createdAt", p->created_at, 0);
	w_time_or_null(&w, "modifiedAt", p->updated_at, 0);
	dre_jsonw_obj_end(&w);
}
