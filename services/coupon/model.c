// coupon/model.c -- JSON form and validation of coupon types, codes,
// reservations and batches.
#include "model.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dre/clock.h"
#include "dre/hash.h"
#include "dre/jsonw.h"

#define DESC_MAX          1000
#define VALIDITY_DAYS_MAX 36500
#define REDEMPTIONS_MAX   1000000000000LL

static const char *const hold_names[]
    = { "HELD", "REDEEMED", "RELEASED", "EXPIRED" };
static const char *const batch_names[]
    = { "PENDING", "GENERATING", "COMPLETED", "FAILED" };

const char *
cp_hold_state_name(cp_hold_state s)
{
	return (unsigned) s < 4 ? hold_names[s] : "UNKNOWN";
}

const char *
cp_batch_state_name(cp_batch_state s)
{
	return (unsigned) s < 4 ? batch_names[s] : "UNKNOWN";
}

void
cp_err(dre_promo_errors *errs, const char *target, const char *fmt, ...)
{
	va_list ap;
	if (errs == NULL)
		return;
	if (errs->n < errs->cap) {
		dre_promo_error *e = &errs->v[errs->n];
		e->code = "VALIDATION_FAILED";
		snprintf(e->target, sizeof e->target, "%s", target);
		va_start(ap, fmt);
		vsnprintf(e->message, sizeof e->message, fmt, ap);
		va_end(ap);
	}
	errs->n++;
}

// ---- readers ------------------------------------------------------------

static const char *
jstr(const dre_json *o, const char *key)
{
	const dre_json *v = dre_json_get(o, key);
	return dre_json_is(v, DRE_JSON_STRING) ? v->str : NULL;
}

static void
jcopy(char *out, size_t cap, const dre_json *o, const char *key)
{
	const char *s = jstr(o, key);
	snprintf(out, cap, "%s", s != NULL ? s : "");
}

static int64_t
jtime(const dre_json *o, const char *key)
{
	const char *s = jstr(o, key);
	int64_t     ms = 0;
	if (s == NULL || dre_time_parse(&ms, s, strlen(s)) != DRE_OK)
		return 0;
	return ms;
}

static int64_t
jint(const dre_json *o, const char *key)
{
	int64_t v = 0;
	if (dre_json_int(&v, dre_json_get(o, key), INT64_MIN, INT64_MAX)
	    != DRE_OK)
		return 0;
	return v;
}

static const char *
jdup(dre_arena *a, const dre_json *o, const char *key)
{
	const char *s = jstr(o, key);
	return s != NULL ? dre_arena_strdup(a, s) : NULL;
}

bool
cp_json_str(char *out, size_t cap, const dre_json *obj, const char *key,
    size_t max, const char *target, dre_promo_errors *errs, bool *present)
{
	const dre_json *v = dre_json_get(obj, key);
	size_t          chars = 0;
	if (present != NULL)
		*present = false;
	if (dre_json_is_null(v))
		return true;
	if (!dre_json_is(v, DRE_JSON_STRING)) {
		cp_err(errs, target, "%s must be a string", key);
		return false;
	}
	if (!dre_utf8_valid(v->str, v->len, &chars) || chars == 0
	    || chars > max || v->len >= cap) {
		cp_err(errs, target, "%s must have 1 to %zu characters", key,
		    max);
		return false;
	}
	for (uint32_t i = 0; i < v->len; i++)
		if ((unsigned char) v->str[i] < 0x20) {
			cp_err(errs, target,
			    "%s must not contain control characters", key);
			return false;
		}
	memcpy(out, v->str, v->len + 1);
	if (present != NULL)
		*present = true;
	return true;
}

// opt_time reads an ISO-8601 member: absent keeps *out (present false),
// null sets 0.
static bool
opt_time(int64_t *out, const dre_json *o, const char *key,
    dre_promo_errors *errs, bool *present)
{
	const dre_json *v = dre_json_get(o, key);
	*present = v != NULL;
	if (v == NULL)
		return true;
	if (v->type == DRE_JSON_NULL) {
		*out = 0;
		return true;
	}
	int64_t ms = 0;
	if (!dre_json_is(v, DRE_JSON_STRING)
	    || dre_time_parse(&ms, v->str, v->len) != DRE_OK) {
		cp_err(errs, key, "%s must be an ISO-8601 date-time", key);
		return false;
	}
	*out = ms;
	return true;
}

// opt_int reads an integer member in [min, max]: absent keeps *out,
// null sets 0 (= none).
static bool
opt_int(int64_t *out, const dre_json *o, const char *key, int64_t min,
    int64_t max, dre_promo_errors *errs)
{
	const dre_json *v = dre_json_get(o, key);
	if (v == NULL)
		return true;
	if (v->type == DRE_JSON_NULL) {
		*out = 0;
		return true;
	}
	int64_t x = 0;
	if (dre_json_int(&x, v, min, max) != DRE_OK) {
		cp_err(errs, key, "%s must be an integer from %lld to %lld",
		    key, (long long) min, (long long) max);
		return false;
	}
	*out = x;
	return true;
}

static bool
opt_bool(bool *out, const dre_json *o, const char *key, dre_promo_errors *errs)
{
	const dre_json *v = dre_json_get(o, key);
	if (v == NULL)
		return true;
	if (v->type != DRE_JSON_TRUE && v->type != DRE_JSON_FALSE) {
		cp_err(errs, key, "%s must be true or false", key);
		return false;
	}
	*out = v->type == DRE_JSON_TRUE;
	return true;
}

// ---- coupon types -------------------------------------------------------

dre_err
cp_type_parse(cp_type *t, dre_arena *a, const dre_json *doc,
    const cp_type *base, bool patch, dre_promo_errors *errs)
{
	size_t before = errs != NULL ? errs->n : 0;
	bool   bad = false, present;

	if (!dre_json_is(doc, DRE_JSON_OBJECT)) {
		cp_err(errs, "", "the body must be a JSON object");
		return DRE_EINVAL;
	}
	// Strict master data (PRODUCT-DECISIONS §1): what a write may set and
	// what a read answers; anything else is refused with a hint. Stored
	// documents (errs NULL) are ours and not checked.
	static const char *const known[] = { "id", "name", "description",
		"type", "prefix", "codeLength", "maxRedemptions",
		"maxRedemptionsPerCustomer", "isStackable", "status",
		"validFrom", "validTo", "validityDays", "promotionIds",
		"createdAt", "updatedAt", "minorVersion" };
	size_t                   nknown = sizeof known / sizeof known[0];
	for (const dre_json *m
	     = errs ? dre_json_unknown(doc, known, nknown, NULL) : NULL;
	     m != NULL; m = dre_json_unknown(doc, known, nknown, m)) {
		char name[64], msg[160];
		dre_json_unknown_describe(
		    m, known, nknown, name, sizeof name, msg, sizeof msg);
		cp_err(errs, name, "%s", msg);
		bad = true;
	}
	if (patch && base != NULL) {
		*t = *base;
	} else {
		memset(t, 0, sizeof *t);
		t->code_length = 10;
		t->r.stackable = true;
		t->r.active = true;
		if (base != NULL) // PUT keeps the identity
			memcpy(t->id, base->id, sizeof t->id);
	}
	if (!cp_json_str(t->name, sizeof t->name, doc, "name", CP_NAME_MAX,
	        "name", errs, &present))
		bad = true;
	else if (!present && !patch)
		cp_err(errs, "name", "name is required");

	const dre_json *d = dre_json_get(doc, "description");
	if (d != NULL && d->type == DRE_JSON_NULL) {
		t->description = NULL;
	} else if (d != NULL) {
		size_t chars = 0;
		if (!dre_json_is(d, DRE_JSON_STRING)
		    || !dre_utf8_valid(d->str, d->len, &chars)
		    || chars > DESC_MAX)
			cp_err(errs, "description",
			    "description must be a string of at most %d "
			    "characters",
			    DESC_MAX);
		else
			t->description = dre_arena_strdup(a, d->str);
	}

	const dre_json *ty = dre_json_get(doc, "type");
	if (ty == NULL && !patch) {
		cp_err(
		    errs, "type", "type is required (GENERIC or INDIVIDUAL)");
	} else if (ty != NULL) {
		if (dre_json_is(ty, DRE_JSON_STRING)
		    && strcmp(ty->str, "GENERIC") == 0)
			t->r.generic = true;
		else if (dre_json_is(ty, DRE_JSON_STRING)
		    && strcmp(ty->str, "INDIVIDUAL") == 0)
			t->r.generic = false;
		else
			cp_err(errs, "type",
			    "type must be GENERIC or INDIVIDUAL");
	}

	const dre_json *p = dre_json_get(doc, "prefix");
	if (p != NULL && p->type == DRE_JSON_NULL) {
		t->prefix[0] = '\0';
	} else if (p != NULL) {
		char up[CP_PREFIX_MAX + 1];
		bool ok = dre_json_is(p, DRE_JSON_STRING)
		    && p->len <= CP_PREFIX_MAX;
		for (uint32_t i = 0; ok && i < p->len; i++) {
			char c = p->str[i];
			up[i] = c >= 'a' && c <= 'z' ? (char) (c - 32) : c;
		}
		if (ok) {
			up[p->len] = '\0';
			ok = cp_prefix_valid(up);
		}
		if (!ok)
			cp_err(errs, "prefix",
			    "prefix must be at most %d letters, digits, '-' "
			    "or '_'",
			    CP_PREFIX_MAX);
		else
			memcpy(t->prefix, up, p->len + 1);
	}
	opt_int(&t->code_length, doc, "codeLength", CP_CODELEN_MIN,
	    CP_CODELEN_MAX, errs);
	if (t->code_length == 0) // null: the default
		t->code_length = 10;
	if (strlen(t->prefix) + (size_t) t->code_length > CP_CODE_MAX)
		cp_err(errs, "codeLength",
		    "prefix and codeLength together exceed %d characters",
		    CP_CODE_MAX);

	opt_int(&t->r.max_redemptions, doc, "maxRedemptions", 1,
	    REDEMPTIONS_MAX, errs);
	opt_int(&t->r.max_per_customer, doc, "maxRedemptionsPerCustomer", 1,
	    REDEMPTIONS_MAX, errs);
	if (!t->r.generic && t->r.max_redemptions > 1)
		cp_err(errs, "maxRedemptions",
		    "an INDIVIDUAL code is redeemed once: maxRedemptions "
		    "must be 1 or null");
	if (!t->r.generic)
		t->r.max_redemptions = 1;

	opt_time(&t->r.valid_from, doc, "validFrom", errs, &present);
	opt_time(&t->r.valid_to, doc, "validTo", errs, &present);
	if (t->r.valid_from != 0 && t->r.valid_to != 0
	    && t->r.valid_from > t->r.valid_to)
		cp_err(
		    errs, "validTo", "validTo must not be before validFrom");
	opt_int(&t->validity_days, doc, "validityDays", 1, VALIDITY_DAYS_MAX,
	    errs);
	opt_bool(&t->r.stackable, doc, "isStackable", errs);

	const dre_json *st = dre_json_get(doc, "status");
	if (st != NULL) {
		if (dre_json_is(st, DRE_JSON_STRING)
		    && strcmp(st->str, "ACTIVE") == 0)
			t->r.active = true;
		else if (dre_json_is(st, DRE_JSON_STRING)
		    && strcmp(st->str, "INACTIVE") == 0)
			t->r.active = false;
		else
			cp_err(errs, "status",
			    "status must be ACTIVE or INACTIVE");
	}
	// Stored documents carry their bookkeeping.
	if (errs == NULL) {
		jcopy(t->id, sizeof t->id, doc, "id");
		t->created_at = jtime(doc, "createdAt");
		t->updated_at = jtime(doc, "updatedAt");
	}
	if (bad && errs == NULL)
		return DRE_EINVAL;
	return errs != NULL && errs->n > before ? DRE_EINVAL : DRE_OK;
}

static void
ktime(dre_jsonw *w, const char *key, int64_t ms)
{
	dre_jsonw_key(w, key);
	if (ms == 0)
		dre_jsonw_null(w);
	else
		dre_jsonw_time(w, ms);
}

static void
kintnull(dre_jsonw *w, const char *key, int64_t v)
{
	dre_jsonw_key(w, key);
	if (v == 0)
		dre_jsonw_null(w);
	else
		dre_jsonw_int(w, v);
}

static void
kstrnull(dre_jsonw *w, const char *key, const char *s)
{
	dre_jsonw_kstr(w, key, s != NULL && s[0] != '\0' ? s : NULL);
}

void
cp_type_write(dre_buf *out, const cp_type *t, bool links,
    const char *const *promotion_ids, size_t n)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", t->id);
	dre_jsonw_kstr(&w, "name", t->name);
	dre_jsonw_kstr(&w, "description", t->description);
	dre_jsonw_kstr(&w, "type", t->r.generic ? "GENERIC" : "INDIVIDUAL");
	dre_jsonw_kstr(&w, "prefix", t->prefix);
	dre_jsonw_kint(&w, "codeLength", t->code_length);
	kintnull(&w, "maxRedemptions", t->r.max_redemptions);
	kintnull(&w, "maxRedemptionsPerCustomer", t->r.max_per_customer);
	ktime(&w, "validFrom", t->r.valid_from);
	ktime(&w, "validTo", t->r.valid_to);
	kintnull(&w, "validityDays", t->validity_days);
	dre_jsonw_kbool(&w, "isStackable", t->r.stackable);
	dre_jsonw_kstr(&w, "status", t->r.active ? "ACTIVE" : "INACTIVE");
	if (links) {
		dre_jsonw_key(&w, "promotionIds");
		dre_jsonw_arr_begin(&w);
		for (size_t i = 0; i < n; i++)
			dre_jsonw_str(&w, promotion_ids[i]);
		dre_jsonw_arr_end(&w);
	}
	ktime(&w, "createdAt", t->created_at);
	ktime(&w, "updatedAt", t->updated_at);
	dre_jsonw_obj_end(&w);
}

// ---- codes --------------------------------------------------------------

static const char *
origin_of(const char *s)
{
	static const char *const origins[] = { CP_ORIGIN_BATCH,
		CP_ORIGIN_IMPORT, CP_ORIGIN_ISSUE, CP_ORIGIN_POST_PURCHASE };
	for (size_t i = 0; s != NULL && i < 4; i++)
		if (strcmp(s, origins[i]) == 0)
			return origins[i];
	return CP_ORIGIN_IMPORT;
}

dre_err
cp_code_parse(cp_code *c, dre_arena *a, const char *doc, size_t len)
{
	dre_json *o = NULL;
	if (dre_json_parse(&o, a, doc, len, DRE_JSON_MAX_DEPTH, NULL) != DRE_OK
	    || !dre_json_is(o, DRE_JSON_OBJECT))
		return DRE_ESTORE;
	memset(c, 0, sizeof *c);
	jcopy(c->code, sizeof c->code, o, "code");
	jcopy(c->type_id, sizeof c->type_id, o, "couponTypeId");
	int st = cp_state_parse(jstr(o, "status"));
	if (st < 0 || c->code[0] == '\0')
		return DRE_ESTORE;
	c->state = (cp_state) st;
	jcopy(c->customer, sizeof c->customer, o, "customerId");
	c->valid_from = jtime(o, "validFrom");
	c->valid_to = jtime(o, "validTo");
	c->redemptions = jint(o, "redemptionCount");
	c->held = jint(o, "activeReservations");
	jcopy(c->res_id, sizeof c->res_id, o, "reservationRef");
	jcopy(c->res_tx, sizeof c->res_tx, o, "reservedByTransactionId");
	c->res_until = jtime(o, "reservedUntil");
	c->origin = origin_of(jstr(o, "origin"));
	jcopy(c->batch_id, sizeof c->batch_id, o, "batchId");
	c->issued_at = jtime(o, "issuedAt");
	jcopy(c->issuing_promotion, sizeof c->issuing_promotion, o,
	    "issuingPromotionId");
	jcopy(c->issuing_tx, sizeof c->issuing_tx, o, "issuingTransactionId");
	c->issue_reason = jdup(a, o, "issueReason");
	c->metadata = dre_json_get(o, "metadata");
	if (dre_json_is_null(c->metadata))
		c->metadata = NULL;
	c->created_at = jtime(o, "createdAt");
	c->updated_at = jtime(o, "updatedAt");
	c->activated_at = jtime(o, "activatedAt");
	c->redeemed_at = jtime(o, "lastRedeemedAt");
	return DRE_OK;
}

void
cp_code_write(dre_buf *out, const cp_code *c)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "code", c->code);
	dre_jsonw_kstr(&w, "couponTypeId", c->type_id);
	dre_jsonw_kstr(&w, "status", cp_state_name(c->state));
	kstrnull(&w, "customerId", c->customer);
	ktime(&w, "validFrom", c->valid_from);
	ktime(&w, "validTo", c->valid_to);
	dre_jsonw_kint(&w, "redemptionCount", c->redemptions);
	dre_jsonw_kint(&w, "activeReservations", c->held);
	kstrnull(&w, "reservationRef", c->res_id);
	kstrnull(&w, "reservedByTransactionId", c->res_tx);
	ktime(&w, "reservedUntil", c->res_until);
	dre_jsonw_kstr(&w, "origin", c->origin ? c->origin : CP_ORIGIN_IMPORT);
	kstrnull(&w, "batchId", c->batch_id);
	ktime(&w, "issuedAt", c->issued_at);
	kstrnull(&w, "issuingPromotionId", c->issuing_promotion);
	kstrnull(&w, "issuingTransactionId", c->issuing_tx);
	kstrnull(&w, "issueReason", c->issue_reason);
	dre_jsonw_key(&w, "metadata");
	dre_jsonw_json(&w, c->metadata);
	ktime(&w, "createdAt", c->created_at);
	ktime(&w, "updatedAt", c->updated_at);
	ktime(&w, "activatedAt", c->activated_at);
	ktime(&w, "lastRedeemedAt", c->redeemed_at);
	dre_jsonw_obj_end(&w);
}

void
cp_code_view(const cp_code *c, cp_code_rules *v)
{
	v->state = c->state;
	v->customer = c->customer;
	v->valid_from = c->valid_from;
	v->valid_to = c->valid_to;
	v->redemptions = c->redemptions;
	v->held = c->held;
	v->res_tx = c->res_tx;
	v->res_until = c->res_until;
}

// ---- reservations -------------------------------------------------------

dre_err
cp_resv_parse(cp_resv *r, dre_arena *a, const char *doc, size_t len)
{
	dre_json *o = NULL;
	if (dre_json_parse(&o, a, doc, len, DRE_JSON_MAX_DEPTH, NULL) != DRE_OK
	    || !dre_json_is(o, DRE_JSON_OBJECT))
		return DRE_ESTORE;
	memset(r, 0, sizeof *r);
	jcopy(r->id, sizeof r->id, o, "reservationId");
	jcopy(r->code, sizeof r->code, o, "code");
	jcopy(r->type_id, sizeof r->type_id, o, "couponTypeId");
	jcopy(r->tx, sizeof r->tx, o, "transactionId");
	jcopy(r->customer, sizeof r->customer, o, "customerId");
	const char *s = jstr(o, "status");
	r->state = CP_HOLD_EXPIRED;
	for (int i = 0; s != NULL && i < 4; i++)
		if (strcmp(s, hold_names[i]) == 0)
			r->state = (cp_hold_state) i;
	r->created_at = jtime(o, "createdAt");
	r->expires_at = jtime(o, "expiresAt");
	r->ended_at = jtime(o, "endedAt");
	return r->id[0] != '\0' ? DRE_OK : DRE_ESTORE;
}

void
cp_resv_write(dre_buf *out, const cp_resv *r)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "reservationId", r->id);
	dre_jsonw_kstr(&w, "code", r->code);
	dre_jsonw_kstr(&w, "couponTypeId", r->type_id);
	dre_jsonw_kstr(&w, "transactionId", r->tx);
	kstrnull(&w, "customerId", r->customer);
	dre_jsonw_kstr(&w, "status", cp_hold_state_name(r->state));
	ktime(&w, "createdAt", r->created_at);
	ktime(&w, "expiresAt", r->expires_at);
	ktime(&w, "endedAt", r->ended_at);
	dre_jsonw_obj_end(&w);
}

// ---- batches ------------------------------------------------------------

dre_err
cp_batch_parse(cp_batch *b, dre_arena *a, const char *doc, size_t len)
{
	dre_json *o = NULL;
	if (dre_json_parse(&o, a, doc, len, DRE_JSON_MAX_DEPTH, NULL) != DRE_OK
	    || !dre_json_is(o, DRE_JSON_OBJECT))
		return DRE_ESTORE;
	memset(b, 0, sizeof *b);
	jcopy(b->id, sizeof b->id, o, "id");
	jcopy(b->type_id, sizeof b->type_id, o, "couponTypeId");
	b->number = jint(o, "numberOfCodes");
	b->generated = jint(o, "generatedCount");
	const char *s = jstr(o, "status");
	b->state = CP_BATCH_FAILED;
	for (int i = 0; s != NULL && i < 4; i++)
		if (strcmp(s, batch_names[i]) == 0)
			b->state = (cp_batch_state) i;
	jcopy(b->error, sizeof b->error, o, "error");
	b->created_at = jtime(o, "createdAt");
	b->started_at = jtime(o, "startedAt");
	b->completed_at = jtime(o, "completedAt");
	return b->id[0] != '\0' ? DRE_OK : DRE_ESTORE;
}

void
cp_batch_write(dre_buf *out, const cp_batch *b)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", b->id);
	dre_jsonw_kstr(&w, "couponTypeId", b->type_id);
	dre_jsonw_kint(&w, "numberOfCodes", b->number);
	dre_jsonw_kint(&w, "generatedCount", b->generated);
	// Whole percent, never 100 before the job is COMPLETED.
	int64_t pct = b->number > 0 ? b->generated * 100 / b->number : 0;
	if (b->state == CP_BATCH_COMPLETED)
		pct = 100;
	else if (pct > 99)
		pct = 99;
	dre_jsonw_kint(&w, "progress", pct);
	dre_jsonw_kstr(&w, "status", cp_batch_state_name(b->state));
	kstrnull(&w, "error", b->error);
	ktime(&w, "createdAt", b->created_at);
	ktime(&w, "startedAt", b->started_at);
	ktime(&w, "completedAt", b->completed_at);
	dre_jsonw_obj_end(&w);
}

// ---- ETags ----------------------------------------------------------------

// etag_of writes the tag of doc into out[CP_ETAG_BYTES].
static void
etag_of(char *out, dre_buf *doc)
{
	uint64_t h = dre_fnv1a64(DRE_FNV64_INIT, doc->data, doc->len);
	if (doc->oom) // not the document's tag: an If-Match fails, safely
		h = 0;
	snprintf(out, CP_ETAG_BYTES, "%016llx", (unsigned long long) h);
	dre_buf_free(doc);
}

void
cp_type_etag(char *out, const cp_type *t)
{
	dre_buf doc = { 0 };
	cp_type_write(&doc, t, false, NULL, 0); // the stored form
	etag_of(out, &doc);
}

void
cp_code_etag(char *out, const cp_code *c)
{
	dre_buf doc = { 0 };
	cp_code_write(&doc, c);
	etag_of(out, &doc);
}

void
cp_batch_etag(char *out, const cp_batch *b)
{
	dre_buf doc = { 0 };
	cp_batch_write(&doc, b);
	etag_of(out, &doc);
}
