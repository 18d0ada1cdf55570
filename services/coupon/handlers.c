// coupon/handlers.c -- the coupon service's nng API: the six POS coupon
// operations (JSON, seed 002 shapes), /api/v1 CouponTypes, CouponCodes and
// CouponCodeBatches (JSON documents on common/docapi: OData query options,
// ETag and If-Match), and coupon.Check (protobuf, for the evaluator).
#include "handlers.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coupon.h"
#include "dre/audit.h"
#include "coupon.pb-c.h"
#include "dre/arena.h"
#include "dre/changes.h"
#include "dre/clock.h"
#include "dre/docapi.h"
#include "dre/importjob.h"
#include "dre/json.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/odata.h"
#include "dre/uuid.h"
#include "supc.h"
#include "vouchers.h"

#define MINOR_VERSION   13
#define TOP_DEFAULT     100
#define TOP_MAX         1000
#define MAX_ERRS        16
#define ISSUE_MAX       1000
#define IMPORT_MAX      10000
#define REASON_MAX      200
#define CHECK_MAX_CODES 100

// One request in progress; everything is freed in dre_docapi_end.
typedef struct {
	dre_docapi_req   d;
	cp              *s;
	dre_promo_error  ev[MAX_ERRS];
	dre_promo_errors errs;
} req;

static const dre_docapi_svc cp_api = { "the coupon service", MINOR_VERSION };

static bool
req_begin(req *r, void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	r->s = svc;
	r->errs.v = r->ev;
	r->errs.cap = MAX_ERRS;
	r->errs.n = 0;
	return dre_docapi_begin(&r->d, &cp_api, call, rep);
}

// bad answers 400 VALIDATION_FAILED with target (may be NULL) and msg.
static void
bad(req *r, const char *target, const char *msg)
{
	dre_docapi_invalid(&r->d, target, "%s", msg);
}

// reply_invalid answers 400 with the problems collected in r->errs.
static void
reply_invalid(req *r)
{
	dre_docapi_errors(&r->d, &r->errs, "invalid request");
}

// What a code or batch write may name, and what a read of one answers.
static const char *const code_fields[] = { "code", "couponTypeId",
	"couponTypeName", "customerId", "status", "validFrom", "validTo",
	"metadata", "activatedAt", "activeReservations", "batchId",
	"createdAt", "issueReason", "issuedAt", "issuingPromotionId",
	"issuingTransactionId", "lastRedeemedAt", "origin", "redemptionCount",
	"reservationRef", "reservedByTransactionId", "reservedUntil",
	"updatedAt", "minorVersion" };
static const char *const batch_fields[] = { "couponTypeId", "couponTypeName",
	"numberOfCodes", "id", "status", "progress", "generatedCount", "error",
	"createdAt", "startedAt", "completedAt", "minorVersion" };
#define NFIELDS(v) (sizeof(v) / sizeof((v)[0]))

// reply_outcome renders a refusal of the /api/v1 surface (404 NOT_FOUND,
// 409 CONFLICT, with the stable reason as details[0].code) or a failure
// (503). The POS operations answer refusals themselves (pos_end).
static void
reply_outcome(req *r, const cp_outcome *o, const char *target)
{
	const char *code = o->status == 404 ? "NOT_FOUND"
	    : o->status == 409              ? "CONFLICT"
	                                    : "UNAVAILABLE";
	dre_rpc_reply_error(r->d.rep, o->status, code, target, "%s", o->msg);
	if (o->status == 404 || o->status == 409)
		dre_rpc_reply_detail(r->d.rep, cp_reason_name(o->reason),
		    target, "%s", cp_reason_text(o->reason));
}

// body parses the request body as a JSON object (answers 400 otherwise).
static const dre_json *
body(req *r)
{
	return dre_docapi_body(&r->d, DRE_DOCAPI_NOT_OBJECT);
}

// field reads a string member (1..max characters); answers 400 when it is
// wrong or required and missing. *present tells whether it was given.
static bool
field(req *r, const dre_json *o, const char *key, size_t max, bool required,
    char *out, size_t cap, bool *present)
{
	bool p = false;
	out[0] = '\0';
	r->errs.n = 0;
	if (!cp_json_str(out, cap, o, key, max, key, &r->errs, &p)) {
		reply_invalid(r);
		return false;
	}
	if (!p && required) {
		return dre_docapi_invalid(&r->d, key, "%s is required", key);
	}
	if (present != NULL)
		*present = p;
	return true;
}

// reply_buf answers status with the JSON document in b.
static void
reply_buf(req *r, int status, dre_buf *b)
{
	if (b->oom) {
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		return;
	}
	dre_buf_free(&r->d.rep->body);
	r->d.rep->body = *b;
	memset(b, 0, sizeof *b);
	r->d.rep->status = status;
	dre_rpc_reply_json(r->d.rep);
}

// reply_doc answers status with the /api/v1 document doc (minorVersion
// first) and, when etag is not NULL, its ETag.
static void
reply_doc(req *r, int status, const dre_buf *doc, const char *etag)
{
	if (doc->oom) {
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		return;
	}
	dre_docapi_reply_doc(&r->d, status, doc->data, doc->len);
	if (etag != NULL && r->d.rep->status == status)
		dre_docapi_etag(&r->d, etag);
}

static void
ktime_or_null(dre_jsonw *w, const char *key, int64_t ms)
{
	dre_jsonw_key(w, key);
	if (ms == 0)
		dre_jsonw_null(w);
	else
		dre_jsonw_time(w, ms);
}

// ---- POS: validate
// ----------------------------------------------------------

static void
do_validate(req *r)
{
	const dre_json *in = body(r);
	char            given[CP_CODE_MAX * 4 + 1], code[CP_CODE_MAX + 1];
	char            customer[CP_ID_BYTES], tx[CP_ID_BYTES];
	cp_check        ck;
	const char     *promo = NULL;
	dre_err         err;

	if (in == NULL
	    || !field(
	        r, in, "code", CP_CODE_MAX, true, given, sizeof given, NULL)
	    || !field(r, in, "customerId", CP_ID_MAX, false, customer,
	        sizeof customer, NULL)
	    || !field(
	        r, in, "transactionId", CP_ID_MAX, false, tx, sizeof tx, NULL))
		return;
	memset(&ck, 0, sizeof ck);
	ck.reason = CP_R_NOT_FOUND;
	if (cp_code_normalize(code, given, strlen(given))) {
		err = cp_validate(r->s, r->d.a, r->d.call->tenant, code,
		    customer, tx, dre_now_ms(), &ck);
		if (err != DRE_OK) {
			dre_docapi_internal(&r->d, err);
			return;
		}
	}
	if (ck.reason != CP_R_NOT_FOUND) {
		const char **ids;
		cp_links_get(r->s, r->d.a, r->d.call->tenant, ck.code.type_id,
		    &ids, &promo);
	}
	dre_buf   b = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kbool(&w, "valid", ck.reason == CP_R_OK);
	dre_jsonw_kstr(&w, "code", ck.reason != CP_R_NOT_FOUND ? code : given);
	char msg[200];
	if (ck.reason == CP_R_OK)
		snprintf(msg, sizeof msg, "coupon '%s' is valid", code);
	else
		snprintf(msg, sizeof msg, "%s", cp_reason_text(ck.reason));
	dre_jsonw_kstr(&w, "message", msg);
	dre_jsonw_kstr(&w, "promotionId", promo);
	ktime_or_null(&w, "validUntil", ck.valid_until);
	dre_jsonw_kstr(&w, "reason",
	    ck.reason == CP_R_OK ? NULL : cp_reason_name(ck.reason));
	dre_jsonw_kstr(&w, "couponTypeId",
	    ck.reason != CP_R_NOT_FOUND ? ck.code.type_id : NULL);
	dre_jsonw_kstr(&w, "status",
	    ck.reason != CP_R_NOT_FOUND ? cp_state_name(ck.code.state) : NULL);
	dre_jsonw_obj_end(&w);
	reply_buf(r, 200, &b);
}

// ---- POS: how refusals are answered
// ------------------------------------------------------
//
// A business refusal is an answer, not an error (PRODUCT-DECISIONS §5):
// 200 with the operation's flag false, its seed 002 fields, a "reason" and
// a "message". Errors stay for malformed requests (400), auth, payload and
// the issue rate limit, and 503 when the service cannot complete a call.

// refused reports whether o is a business refusal (the statuses /api/v1
// would answer it with).
static bool
refused(const cp_outcome *o)
{
	return o->status == 404 || o->status == 409;
}

// cut is the length of s's longest prefix of at most max bytes that
// does not split a UTF-8 character (names are quoted into messages).
static int
cut(const char *s, size_t max)
{
	size_t n = strnlen(s, max + 1);
	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char) s[n] & 0xC0) == 0x80)
			n--;
	}
	return (int) n;
}

// not_found makes o the refusal of a code nobody holds, named as given.
static void
not_found(cp_outcome *o, const char *given)
{
	o->status = 404;
	o->reason = CP_R_NOT_FOUND;
	snprintf(o->msg, sizeof o->msg, "coupon '%.*s': %s",
	    DRE_UTF8_CUT(given, 200), cp_reason_text(CP_R_NOT_FOUND));
}

// pos_failed answers an outcome that is neither success nor refusal (503).
static bool
pos_failed(req *r, const cp_outcome *o)
{
	if (o->status == 200 || refused(o))
		return false;
	reply_outcome(r, o, NULL);
	return true;
}

// pos_end adds "reason" to a refusal, closes the answer and sends it (200).
static void
pos_end(req *r, dre_jsonw *w, dre_buf *b, const cp_outcome *o)
{
	if (refused(o))
		dre_jsonw_kstr(w, "reason", cp_reason_name(o->reason));
	dre_jsonw_obj_end(w);
	reply_buf(r, 200, b);
}

// code_arg reads the "code" member into given[CP_CODE_MAX * 4 + 1] and its
// stored form into code[CP_CODE_MAX + 1]; code is "" when no such code can
// exist (any string may be typed at a till: NOT_FOUND, not 400).
static bool
code_arg(req *r, const dre_json *in, char *given, char *code)
{
	if (!field(r, in, "code", CP_CODE_MAX, true, given,
	        CP_CODE_MAX * 4 + 1, NULL))
		return false;
	if (!cp_code_normalize(code, given, strlen(given)))
		code[0] = '\0';
	return true;
}

// ---- POS: reserve, redeem, cancel, activate
// ----------------------------------

static void
do_reserve(req *r)
{
	const dre_json *in = body(r);
	char            given[CP_CODE_MAX * 4 + 1], code[CP_CODE_MAX + 1];
	char            tx[CP_ID_BYTES], customer[CP_ID_BYTES];
	cp_resv         rv;
	cp_outcome      o;

	if (in == NULL || !code_arg(r, in, given, code)
	    || !field(
	        r, in, "transactionId", CP_ID_MAX, true, tx, sizeof tx, NULL)
	    || !field(r, in, "customerId", CP_ID_MAX, false, customer,
	        sizeof customer, NULL))
		return;
	if (code[0] == '\0')
		not_found(&o, given);
	else
		cp_reserve(r->s, r->d.a, r->d.call->tenant, code, tx, customer,
		    &rv, &o);
	if (pos_failed(r, &o))
		return;
	bool ok = o.status == 200, unknown = o.reason == CP_R_NOT_FOUND;
	if (unknown)
		not_found(&o, given);
	dre_buf   b = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "reservationId", ok ? rv.id : NULL);
	dre_jsonw_kbool(&w, "reserved", ok);
	ktime_or_null(&w, "expiresAt", ok ? rv.expires_at : 0);
	dre_jsonw_kstr(&w, "message", o.msg);
	dre_jsonw_kstr(&w, "code", unknown ? given : code);
	pos_end(r, &w, &b, &o);
}

// reservation_arg reads "reservationId" (a UUID) into id[DRE_UUID_LEN + 2].
static bool
reservation_arg(req *r, const dre_json *in, char *id)
{
	if (!field(r, in, "reservationId", DRE_UUID_LEN + 1, true, id,
	        DRE_UUID_LEN + 2, NULL))
		return false;
	if (!dre_uuid_valid(id, strlen(id))) {
		bad(r, "reservationId", "reservationId must be a UUID");
		return false;
	}
	return true;
}

static void
do_redeem(req *r)
{
	const dre_json *in = body(r);
	char            id[DRE_UUID_LEN + 2], tx[CP_ID_BYTES];
	cp_outcome      o;

	if (in == NULL || !reservation_arg(r, in, id)
	    || !field(
	        r, in, "transactionId", CP_ID_MAX, true, tx, sizeof tx, NULL))
		return;
	cp_redeem(r->s, r->d.a, r->d.call->tenant, id, tx, &o);
	if (pos_failed(r, &o))
		return;
	dre_buf   b = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kbool(&w, "redeemed", o.status == 200);
	dre_jsonw_kstr(&w, "message", o.msg);
	pos_end(r, &w, &b, &o);
}

static void
do_cancel(req *r)
{
	const dre_json *in = body(r);
	char            id[DRE_UUID_LEN + 2];
	cp_outcome      o;

	if (in == NULL || !reservation_arg(r, in, id))
		return;
	cp_cancel(r->s, r->d.a, r->d.call->tenant, id, &o);
	if (pos_failed(r, &o))
		return;
	dre_buf   b = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kbool(&w, "cancelled", o.status == 200);
	dre_jsonw_kstr(&w, "message", o.msg);
	pos_end(r, &w, &b, &o);
}

// do_release: every live reservation of a transaction ends (the POS
// platform's VOID_CART).
static void
do_release(req *r)
{
	const dre_json *in = body(r);
	char            tx[CP_ID_BYTES];
	cp_outcome      o;

	if (in == NULL
	    || !field(
	        r, in, "transactionId", CP_ID_MAX, true, tx, sizeof tx, NULL))
		return;
	size_t n = cp_release_tx(r->s, r->d.a, r->d.call->tenant, tx, &o);
	if (pos_failed(r, &o))
		return;
	dre_buf   b = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "transactionId", tx);
	dre_jsonw_kint(&w, "released", (int64_t) n);
	dre_jsonw_kstr(&w, "message", o.msg);
	pos_end(r, &w, &b, &o);
}

static void
do_activate(req *r)
{
	const dre_json *in = body(r);
	char            given[CP_CODE_MAX * 4 + 1], code[CP_CODE_MAX + 1];
	char            customer[CP_ID_BYTES];
	cp_code         c;
	cp_type         t;
	cp_code_rules   cv;
	cp_outcome      o;

	if (in == NULL || !code_arg(r, in, given, code)
	    || !field(r, in, "customerId", CP_ID_MAX, true, customer,
	        sizeof customer, NULL))
		return;
	if (code[0] == '\0')
		not_found(&o, given);
	else
		cp_activate(
		    r->s, r->d.a, r->d.call->tenant, code, customer, &c, &o);
	if (pos_failed(r, &o))
		return;
	bool    unknown = o.reason == CP_R_NOT_FOUND;
	int64_t until = 0;
	if (unknown)
		not_found(&o, given);
	else if (cp_type_load(r->s, r->d.a, r->d.call->tenant, c.type_id, &t)
	    == DRE_OK) {
		cp_code_view(&c, &cv);
		until = cp_effective_valid_to(&cv, &t.r);
	}
	dre_buf   b = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kbool(&w, "activated", o.status == 200);
	dre_jsonw_kstr(&w, "code", unknown ? given : code);
	dre_jsonw_kstr(&w, "message", o.msg);
	ktime_or_null(&w, "validUntil", until);
	pos_end(r, &w, &b, &o);
}

// ---- POS: issue
// ---------------------------------------------------------------

// type_arg resolves couponTypeId or couponTypeName; answers when it cannot.
// With missing[cap] given, an unknown type is not answered: its id or name
// goes to missing (else missing is "").
static bool
type_arg(req *r, const dre_json *in, bool by_name, cp_type *t, char *missing,
    size_t cap)
{
	char    id[DRE_UUID_LEN + 2], name[CP_NAME_BYTES];
	bool    has_id = false, has_name = false;
	dre_err err;
	if (missing != NULL)
		missing[0] = '\0';
	if (!field(r, in, "couponTypeId", DRE_UUID_LEN + 1, false, id,
	        sizeof id, &has_id))
		return false;
	if (by_name
	    && !field(r, in, "couponTypeName", CP_NAME_MAX, false, name,
	        sizeof name, &has_name))
		return false;
	if (!has_id && !has_name) {
		bad(r, "couponTypeId",
		    by_name ? "couponTypeId or couponTypeName is required"
		            : "couponTypeId is required");
		return false;
	}
	err = has_id
	    ? cp_type_load(r->s, r->d.a, r->d.call->tenant, id, t)
	    : cp_type_find_name(r->s, r->d.a, r->d.call->tenant, name, t);
	if (err == DRE_ENOTFOUND && missing != NULL) {
		snprintf(missing, cap, "%s", has_id ? id : name);
		return true;
	}
	if (err == DRE_ENOTFOUND) {
		dre_rpc_reply_error(r->d.rep, 404, "NOT_FOUND",
		    has_id ? "couponTypeId" : "couponTypeName",
		    "coupon type '%s' not found", has_id ? id : name);
		return false;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		return false;
	}
	return true;
}

// customers_arg collects customerId or customerIds[] (1..ISSUE_MAX).
static bool
customers_arg(req *r, const dre_json *in, const char ***outp, size_t *np)
{
	const dre_json *one = dre_json_get(in, "customerId");
	const dre_json *many = dre_json_get(in, "customerIds");
	char            buf[CP_ID_BYTES], target[48];
	bool            has_one = !dre_json_is_null(one);
	bool            has_many = !dre_json_is_null(many);
	if (has_one && has_many) {
		bad(r, "customerIds",
		    "give customerId or customerIds, not both");
		return false;
	}
	if (!has_one && !has_many) {
		bad(r, "customerId", "customerId or customerIds is required");
		return false;
	}
	if (has_one) {
		const char **v = dre_arena_get(r->d.a, sizeof *v);
		if (v == NULL
		    || !field(r, in, "customerId", CP_ID_MAX, true, buf,
		        sizeof buf, NULL))
			return v == NULL
			    ? (dre_docapi_internal(&r->d, DRE_ENOMEM), false)
			    : false;
		v[0] = dre_arena_strdup(r->d.a, buf);
		*outp = v;
		*np = 1;
		return v[0] != NULL;
	}
	if (!dre_json_is(many, DRE_JSON_ARRAY) || many->len == 0
	    || many->len > ISSUE_MAX) {
		return dre_docapi_invalid(&r->d, "customerIds",
		    "customerIds must be an array of 1 to %d customer ids",
		    ISSUE_MAX);
	}
	const char **v = dre_arena_get(r->d.a, many->len * sizeof *v);
	size_t       n = 0;
	if (v == NULL) {
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		return false;
	}
	for (const dre_json *x = many->child; x != NULL; x = x->next, n++) {
		size_t chars = 0;
		snprintf(target, sizeof target, "customerIds[%zu]", n);
		if (!dre_json_is(x, DRE_JSON_STRING)
		    || !dre_utf8_valid(x->str, x->len, &chars) || chars == 0
		    || chars > CP_ID_MAX
		    || memchr(x->str, 0, x->len) != NULL) {
			return dre_docapi_invalid(&r->d, target,
			    "%s must be a string of 1 to %d characters",
			    target, CP_ID_MAX);
		}
		v[n] = x->str;
	}
	*outp = v;
	*np = n;
	return true;
}

// issue_refused answers an issue that creates nothing: every customer is
// a failure with the refusal's reason.
static void
issue_refused(req *r, const cp_outcome *o, const char **customers, size_t n)
{
	dre_buf   b = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &b);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kint(&w, "issuedCount", 0);
	dre_jsonw_kint(&w, "failedCount", (int64_t) n);
	dre_jsonw_key(&w, "issuedCoupons");
	dre_jsonw_arr_begin(&w);
	dre_jsonw_arr_end(&w);
	dre_jsonw_key(&w, "failures");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < n; i++) {
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "customerId", customers[i]);
		dre_jsonw_kstr(&w, "reason", cp_reason_name(o->reason));
		dre_jsonw_kstr(&w, "message", o->msg);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_kstr(&w, "message", o->msg);
	pos_end(r, &w, &b, o);
}

static void
do_issue(req *r)
{
	const dre_json *in = body(r);
	const char    **customers = NULL;
	size_t          n = 0, inserted = 0;
	char            reason[REASON_MAX * 4 + 1], missing[CP_NAME_BYTES];
	bool            has_reason = false;
	cp_type         t;
	int64_t         retry = 0, now = dre_now_ms();
	dre_err         err;

	if (in == NULL || !type_arg(r, in, true, &t, missing, sizeof missing)
	    || !customers_arg(r, in, &customers, &n)
	    || !field(r, in, "reason", REASON_MAX, false, reason,
	        sizeof reason, &has_reason))
		return;
	// The type decides whether anything can be issued: a refusal, not an
	// error (the rate limit alone is 429).
	cp_outcome o = { 200, CP_R_OK, "" };
	if (missing[0] != '\0')
		snprintf(o.msg, sizeof o.msg, "coupon type '%.*s' not found",
		    cut(missing, 160), missing);
	else if (!t.r.active)
		snprintf(o.msg, sizeof o.msg,
		    "coupon type '%.*s' is not active", cut(t.name, 160),
		    t.name);
	else if (t.r.valid_to != 0 && now > t.r.valid_to)
		snprintf(o.msg, sizeof o.msg,
		    "coupon type '%.*s' has expired: its validTo has passed",
		    cut(t.name, 160), t.name);
	if (o.msg[0] != '\0') {
		o.status = 409;
		o.reason = missing[0] != '\0' ? CP_R_NOT_FOUND
		    : !t.r.active             ? CP_R_INACTIVE
		                              : CP_R_EXPIRED;
		issue_refused(r, &o, customers, n);
		return;
	}
	const dre_json *meta = dre_json_get(in, "metadata");
	if (dre_json_is_null(meta))
		meta = NULL;

	int64_t got = cp_rate_take_tenant(
	    r->s, r->d.call->tenant, (int64_t) n, now, &retry);
	char ra[24];
	snprintf(ra, sizeof ra, "%lld", (long long) retry);
	if (got == 0) {
		dre_rpc_reply_header(r->d.rep, "Retry-After", ra);
		dre_rpc_reply_error(r->d.rep, 429, "RATE_LIMITED", NULL,
		    "at most %lld coupons may be issued per minute; retry in "
		    "%lld s",
		    (long long) r->s->o.issue_rate_per_min, (long long) retry);
		return;
	}
	cp_code *codes = calloc((size_t) got, sizeof *codes);
	if (codes == NULL) {
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		return;
	}
	for (int64_t i = 0; i < got; i++) {
		cp_code *c = &codes[i];
		cp_code_generate(c->code, t.prefix, (int) t.code_length);
		memcpy(c->type_id, t.id, sizeof c->type_id);
		c->state = CP_CREATED;
		snprintf(c->customer, sizeof c->customer, "%s", customers[i]);
		c->origin = CP_ORIGIN_ISSUE;
		c->issued_at = c->created_at = now;
		c->issue_reason = has_reason ? reason : NULL;
		c->metadata = meta;
		cp_birth_validity(
		    &t.r, t.validity_days, now, &c->valid_from, &c->valid_to);
	}
	dre_batch *b = dre_batch_alloc();
	err = b == NULL ? DRE_ENOMEM
	                : cp_codes_insert(r->s, r->d.call->tenant, codes,
	                    (size_t) got, &t, true, NULL, b, "COUPON_ISSUED",
	                    has_reason ? reason : NULL, NULL, &inserted);
	dre_batch_free(b);
	if (err != DRE_OK) {
		free(codes);
		dre_docapi_internal(&r->d, err);
		return;
	}
	dre_buf   out = { 0 };
	dre_jsonw w;
	dre_jsonw_init(&w, &out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kint(&w, "issuedCount", got);
	dre_jsonw_kint(&w, "failedCount", (int64_t) n - got);
	dre_jsonw_key(&w, "issuedCoupons");
	dre_jsonw_arr_begin(&w);
	for (int64_t i = 0; i < got; i++) {
		const cp_code *c = &codes[i];
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "code", c->code);
		dre_jsonw_kstr(&w, "customerId", c->customer);
		dre_jsonw_kstr(&w, "couponTypeId", c->type_id);
		dre_jsonw_kstr(&w, "status", cp_state_name(c->state));
		ktime_or_null(&w, "issuedAt", c->issued_at);
		ktime_or_null(&w, "validFrom", c->valid_from);
		ktime_or_null(&w, "validUntil", c->valid_to);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_key(&w, "failures");
	dre_jsonw_arr_begin(&w);
	for (size_t i = (size_t) got; i < n; i++) {
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "customerId", customers[i]);
		dre_jsonw_kstr(&w, "reason", "RATE_LIMITED");
		dre_jsonw_kstr(
		    &w, "message", "the per-minute issue limit was reached");
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);
	char msg[160];
	if ((size_t) got == n)
		snprintf(msg, sizeof msg, "%lld coupon%s issued",
		    (long long) got, got == 1 ? "" : "s");
	else
		snprintf(msg, sizeof msg,
		    "%lld of %zu coupons issued; the rest exceeded the limit "
		    "of "
		    "%lld per minute (retry in %lld s)",
		    (long long) got, n, (long long) r->s->o.issue_rate_per_min,
		    (long long) retry);
	dre_jsonw_kstr(&w, "message", msg);
	dre_jsonw_obj_end(&w);
	free(codes);
	if ((size_t) got < n)
		dre_rpc_reply_header(r->d.rep, "Retry-After", ra);
	reply_buf(r, 200, &out);
}

// ---- /api/v1 helpers
// -------------------------------------------------------------

static const char *
id_param(req *r)
{
	const char *id = dre_rpc_param(r->d.call, "id");
	if (id == NULL || id[0] == '\0') {
		bad(r, "id", "the entity id is missing");
		return NULL;
	}
	return id;
}

static const char *
str_param(req *r, const char *name)
{
	const char *s = dre_rpc_param(r->d.call, name);
	return s != NULL && s[0] != '\0' ? s : NULL;
}

// ---- /api/v1 lists: the OData query options (common/include/dre/odata.h)
// -------------------------------------------------------------------------

// A list in progress: common/docapi's, with this service's page bounds.
typedef dre_docapi_list lister;

static bool
list_begin(lister *l, req *r, const dre_odata_fields *fields)
{
	return dre_docapi_list_begin(l, &r->d, fields, TOP_DEFAULT, TOP_MAX);
}

static bool
list_add(lister *l, const char *text, size_t len)
{
	return dre_docapi_list_add(l, text, len);
}

static void
list_free(lister *l)
{
	dre_docapi_list_free(l);
}

static void
list_end(lister *l)
{
	dre_docapi_list_end(l);
}

// ---- /api/v1/CouponTypes
// ---------------------------------------------------------

// What a type list can query: every member of a type but promotionIds (an
// array) filters and sorts; all of them select.
static const char *const type_scalars[] = { "id", "name", "description",
	"type", "prefix", "codeLength", "maxRedemptions",
	"maxRedemptionsPerCustomer", "validFrom", "validTo", "validityDays",
	"isStackable", "status", "createdAt", "updatedAt" };
static const char *const type_members[] = { "id", "name", "description",
	"type", "prefix", "codeLength", "maxRedemptions",
	"maxRedemptionsPerCustomer", "validFrom", "validTo", "validityDays",
	"isStackable", "status", "promotionIds", "createdAt", "updatedAt" };

static void
type_doc(req *r, const cp_type *t, dre_arena *a, dre_buf *out)
{
	const char **ids = NULL;
	size_t n = cp_links_get(r->s, a, r->d.call->tenant, t->id, &ids, NULL);
	cp_type_write(out, t, true, ids, n);
}

// reply_type answers status with t and its ETag.
static void
reply_type(req *r, int status, const cp_type *t)
{
	dre_buf doc = { 0 };
	char    tag[CP_ETAG_BYTES];
	type_doc(r, t, r->d.a, &doc);
	cp_type_etag(tag, t);
	reply_doc(r, status, &doc, tag);
	dre_buf_free(&doc);
}

// type_if_match checks If-Match against the stored type old (412 and
// false when it does not match).
static bool
type_if_match(req *r, const cp_type *old)
{
	char tag[CP_ETAG_BYTES];
	cp_type_etag(tag, old);
	return dre_docapi_if_match(&r->d, tag, "coupon type");
}

static void
do_type_create(req *r)
{
	const dre_json *in = body(r);
	cp_type         t, other;
	char            id[DRE_UUID_LEN + 2];
	bool            has_id = false;
	dre_err         err;

	if (in == NULL)
		return;
	if (!field(
	        r, in, "id", DRE_UUID_LEN + 1, false, id, sizeof id, &has_id))
		return;
	if (has_id && !dre_uuid_valid(id, strlen(id))) {
		bad(r, "id", "id must be a UUID");
		return;
	}
	r->errs.n = 0;
	if (cp_type_parse(&t, r->d.a, in, NULL, false, &r->errs) != DRE_OK) {
		reply_invalid(r);
		return;
	}
	if (has_id)
		memcpy(t.id, id, sizeof t.id);
	else
		dre_uuid_v4(t.id);
	t.created_at = t.updated_at = dre_now_ms();
	pthread_mutex_lock(&r->s->types_mu);
	if (has_id
	    && (err = cp_type_load(
	            r->s, r->d.a, r->d.call->tenant, t.id, &other))
	        != DRE_ENOTFOUND) {
		if (err == DRE_OK)
			dre_rpc_reply_error(r->d.rep, 409, "CONFLICT", "id",
			    "coupon type '%s' already exists", t.id);
		else
			dre_docapi_internal(&r->d, err);
		goto unlock;
	}
	err = cp_type_find_name(
	    r->s, r->d.a, r->d.call->tenant, t.name, &other);
	if (err == DRE_OK) {
		dre_rpc_reply_error(r->d.rep, 409, "CONFLICT", "name",
		    "a coupon type named '%s' already exists", t.name);
		goto unlock;
	}
	if (err != DRE_ENOTFOUND
	    || (err = cp_type_store(
	            r->s, r->d.call->tenant, r->d.call->principal, &t, NULL))
	        != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		goto unlock;
	}
	reply_type(r, 201, &t);
unlock:
	pthread_mutex_unlock(&r->s->types_mu);
}

static void
reply_type_missing(req *r, const char *id)
{
	dre_rpc_reply_error(r->d.rep, 404, "NOT_FOUND", NULL,
	    "coupon type '%s' not found", id);
}

static void
do_type_get(req *r)
{
	const char *id = id_param(r);
	cp_type     t;
	dre_err     err;
	if (id == NULL)
		return;
	err = cp_type_load(r->s, r->d.a, r->d.call->tenant, id, &t);
	if (err == DRE_ENOTFOUND)
		err = cp_type_find_name(
		    r->s, r->d.a, r->d.call->tenant, id, &t);
	if (err == DRE_ENOTFOUND) {
		reply_type_missing(r, id);
		return;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		return;
	}
	reply_type(r, 200, &t);
}

// do_type_update: PUT replaces, PATCH changes what it names. Under the
// types lock, so that If-Match is checked against what is replaced.
static void
do_type_update(req *r)
{
	const char     *id = id_param(r);
	const dre_json *in = id != NULL ? body(r) : NULL;
	const char     *pp = dre_rpc_param(r->d.call, "patch");
	bool            patch = pp != NULL && strcmp(pp, "1") == 0;
	cp_type         old, t, other;
	dre_err         err;
	if (in == NULL)
		return;
	pthread_mutex_lock(&r->s->types_mu);
	if ((err = cp_type_load(r->s, r->d.a, r->d.call->tenant, id, &old))
	    != DRE_OK) {
		if (err == DRE_ENOTFOUND)
			reply_type_missing(r, id);
		else
			dre_docapi_internal(&r->d, err);
		goto unlock;
	}
	if (!type_if_match(r, &old))
		goto unlock;
	r->errs.n = 0;
	if (cp_type_parse(&t, r->d.a, in, &old, patch, &r->errs) != DRE_OK) {
		reply_invalid(r);
		goto unlock;
	}
	const dre_json *bid = dre_json_get(in, "id");
	if (dre_json_is(bid, DRE_JSON_STRING)
	    && strcmp(bid->str, old.id) != 0) {
		bad(r, "id", "id cannot be changed");
		goto unlock;
	}
	if (t.r.generic != old.r.generic) {
		bad(r, "type",
		    "type cannot be changed; create a new coupon type");
		goto unlock;
	}
	if (strcmp(t.name, old.name) != 0
	    && cp_type_find_name(
	           r->s, r->d.a, r->d.call->tenant, t.name, &other)
	        == DRE_OK) {
		dre_rpc_reply_error(r->d.rep, 409, "CONFLICT", "name",
		    "a coupon type named '%s' already exists", t.name);
		goto unlock;
	}
	memcpy(t.id, old.id, sizeof t.id);
	t.created_at = old.created_at;
	t.updated_at = dre_now_ms();
	if ((err = cp_type_store(
	         r->s, r->d.call->tenant, r->d.call->principal, &t, &old))
	    != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		goto unlock;
	}
	reply_type(r, 200, &t);
unlock:
	pthread_mutex_unlock(&r->s->types_mu);
}

static void
do_type_delete(req *r)
{
	const char *id = id_param(r);
	cp_type     old;
	dre_err     err;
	if (id == NULL)
		return;
	pthread_mutex_lock(&r->s->types_mu);
	if ((err = cp_type_load(r->s, r->d.a, r->d.call->tenant, id, &old))
	    != DRE_OK) {
		if (err == DRE_ENOTFOUND)
			reply_type_missing(r, id);
		else
			dre_docapi_internal(&r->d, err);
		goto unlock;
	}
	if (!type_if_match(r, &old))
		goto unlock;
	// Codes refer to their type for its rules: a type with codes is
	// deactivated (status INACTIVE), never deleted. The creation lock
	// keeps a code from appearing between the check and the delete.
	pthread_mutex_lock(&r->s->create_mu);
	if (cp_type_has_codes(r->s, r->d.call->tenant, old.id)) {
		pthread_mutex_unlock(&r->s->create_mu);
		dre_rpc_reply_error(r->d.rep, 409, "CONFLICT", NULL,
		    "coupon type '%s' has codes; set its status to INACTIVE "
		    "instead",
		    old.id);
		goto unlock;
	}
	err = cp_type_store(
	    r->s, r->d.call->tenant, r->d.call->principal, NULL, &old);
	pthread_mutex_unlock(&r->s->create_mu);
	if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		goto unlock;
	}
	r->d.rep->status = 204;
	dre_buf_reset(&r->d.rep->body);
unlock:
	pthread_mutex_unlock(&r->s->types_mu);
}

// do_type_list answers a page of the tenant's types with the query options;
// status=ACTIVE|INACTIVE narrows it too.
static void
do_type_list(req *r)
{
	static const dre_odata_fields fields = { type_scalars,
		NFIELDS(type_scalars), type_members, NFIELDS(type_members) };
	const char                   *status = str_param(r, "status");
	dre_store_iter               *it = NULL;
	dre_arena                    *scratch = NULL;
	char                          prefix[256];
	int                           pl;
	dre_err                       err;
	lister                        l;

	if (!list_begin(&l, r, &fields))
		return;
	if (status != NULL && strcmp(status, "ACTIVE") != 0
	    && strcmp(status, "INACTIVE") != 0) {
		bad(r, "status", "status must be ACTIVE or INACTIVE");
		goto out;
	}
	pl = snprintf(prefix, sizeof prefix, "%s", r->d.call->tenant);
	if (pl < 0 || (size_t) pl + 1 >= sizeof prefix) {
		bad(r, NULL, "tenant too long");
		goto out;
	}
	if ((scratch = dre_arena_alloc(0)) == NULL) {
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		goto out;
	}
	// tenant \0: the NUL keeps tenant "a" apart from tenant "ab".
	if ((err = dre_store_iter_open(
	         &it, r->s->st, CF_TYPES, prefix, (size_t) pl + 1))
	    != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		goto out;
	}
	const char *k, *v;
	size_t      kl, vl;
	dre_buf     doc = { 0 };
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		dre_json *root = NULL;
		cp_type   t;
		dre_arena_reset(scratch);
		if (dre_json_parse(
		        &root, scratch, v, vl, DRE_JSON_MAX_DEPTH, NULL)
		        != DRE_OK
		    || cp_type_parse(&t, scratch, root, NULL, false, NULL)
		        != DRE_OK)
			continue;
		if (status != NULL
		    && t.r.active != (strcmp(status, "ACTIVE") == 0))
			continue;
		// Types are few: each is written as a read answers it (with
		// its promotionIds) before the query sees it.
		dre_buf_reset(&doc);
		type_doc(r, &t, scratch, &doc);
		if (doc.oom || !list_add(&l, doc.data, doc.len)) {
			l.oom = true;
			break;
		}
	}
	dre_buf_free(&doc);
	dre_store_iter_close(it);
	list_end(&l);
	dre_arena_free(scratch);
	return;
out:
	dre_arena_free(scratch);
	list_free(&l); // answered already
}

// ---- /api/v1/CouponCodes
// -----------------------------------------------------------

// cp_code_new fills a code of type t born now.
void
cp_code_new(cp_code *c, const cp_type *t, const char *code,
    const char *customer, cp_state st, const char *origin, int64_t now)
{
	memset(c, 0, sizeof *c);
	if (code != NULL)
		snprintf(c->code, sizeof c->code, "%s", code);
	else
		cp_code_generate(c->code, t->prefix, (int) t->code_length);
	memcpy(c->type_id, t->id, sizeof c->type_id);
	c->state = st;
	snprintf(
	    c->customer, sizeof c->customer, "%s", customer ? customer : "");
	c->origin = origin;
	c->created_at = now;
	cp_birth_validity(
	    &t->r, t->validity_days, now, &c->valid_from, &c->valid_to);
}

// created_event is the event of a code created by an administrator: one
// created for a customer is issued to them (COUPON_ISSUED, as /pos/coupons/
// issue); one for whoever holds it raises none.
static const char *
created_event(const cp_code *c)
{
	return c->customer[0] != '\0' ? "COUPON_ISSUED" : NULL;
}

// reply_code answers status with code c and its ETag.
static void
reply_code(req *r, int status, const cp_code *c)
{
	dre_buf doc = { 0 };
	char    tag[CP_ETAG_BYTES];
	cp_code_write(&doc, c);
	cp_code_etag(tag, c);
	reply_doc(r, status, &doc, tag);
	dre_buf_free(&doc);
}

static void
do_code_create(req *r)
{
	const dre_json *in = body(r);
	char            given[CP_CODE_MAX * 4 + 1], code[CP_CODE_MAX + 1];
	char            customer[CP_ID_BYTES], status[16];
	bool            has_code = false, dup = false;
	cp_type         t;
	cp_code         c;
	size_t          ins = 0;

	if (in == NULL
	    || !dre_docapi_strict(&r->d, in, code_fields, NFIELDS(code_fields))
	    || !type_arg(r, in, false, &t, NULL, 0)
	    || !field(r, in, "code", CP_CODE_MAX, false, given, sizeof given,
	        &has_code)
	    || !field(r, in, "customerId", CP_ID_MAX, false, customer,
	        sizeof customer, NULL)
	    || !field(r, in, "status", 10, false, status, sizeof status, NULL))
		return;
	if (has_code && !cp_code_normalize(code, given, strlen(given))) {
		bad(r, "code",
		    "code must be 1 to 50 letters, digits, '-' or '_'");
		return;
	}
	cp_state st = CP_ACTIVE;
	if (status[0] != '\0' && strcmp(status, "ACTIVE") != 0) {
		if (strcmp(status, "CREATED") != 0) {
			bad(r, "status",
			    "a new code is ACTIVE or CREATED (to be activated "
			    "by its customer)");
			return;
		}
		st = CP_CREATED;
	}
	cp_code_new(&c, &t, has_code ? code : NULL, customer, st,
	    CP_ORIGIN_IMPORT, dre_now_ms());
	dre_batch *b = dre_batch_alloc();
	dre_err    err = b == NULL
	       ? DRE_ENOMEM
	       : cp_codes_insert(r->s, r->d.call->tenant, &c, 1, &t, !has_code,
	           &dup, b, created_event(&c), NULL, r->d.call->principal, &ins);
	dre_batch_free(b);
	if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		return;
	}
	if (dup) {
		dre_rpc_reply_error(r->d.rep, 409, "CONFLICT", "code",
		    "coupon code '%s' already exists", c.code);
		return;
	}
	reply_code(r, 201, &c);
}

static void
do_code_import(req *r)
{
	const dre_json *in = body(r);
	cp_type         t;
	size_t          n = 0, ins = 0, nbad = 0;
	int64_t         now = dre_now_ms();
	dre_buf         errs = { 0 };
	dre_jsonw       ew;

	if (in == NULL || !type_arg(r, in, false, &t, NULL, 0))
		return;
	const dre_json *list = dre_json_get(in, "codes");
	if (!dre_json_is(list, DRE_JSON_ARRAY) || list->len == 0
	    || list->len > IMPORT_MAX) {
		dre_docapi_invalid(&r->d, "codes",
		    "codes must be an array of 1 to %d codes (strings or "
		    "{code, customerId})",
		    IMPORT_MAX);
		return;
	}
	cp_code *codes = calloc(list->len, sizeof *codes);
	size_t  *index = calloc(list->len, sizeof *index);
	bool    *dup = calloc(list->len, sizeof *dup);
	if (codes == NULL || index == NULL || dup == NULL) {
		free(codes);
		free(index);
		free(dup);
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		return;
	}
	dre_jsonw_init(&ew, &errs);
	dre_jsonw_arr_begin(&ew);
	size_t i = 0;
	for (const dre_json *x = list->child; x != NULL; x = x->next, i++) {
		const dre_json *cv = x, *cu = NULL;
		char            code[CP_CODE_MAX + 1], target[48];
		char            customer[CP_ID_BYTES] = "";
		const char     *problem = NULL;
		if (dre_json_is(x, DRE_JSON_OBJECT)) {
			cv = dre_json_get(x, "code");
			cu = dre_json_get(x, "customerId");
		}
		snprintf(target, sizeof target, "codes[%zu]", i);
		if (!dre_json_is(cv, DRE_JSON_STRING)
		    || !cp_code_normalize(code, cv->str, cv->len))
			problem
			    = "code must be 1 to 50 letters, digits, '-' or "
			      "'_'";
		else if (!dre_json_is_null(cu)) {
			size_t chars = 0;
			if (!dre_json_is(cu, DRE_JSON_STRING)
			    || !dre_utf8_valid(cu->str, cu->len, &chars)
			    || chars == 0 || chars > CP_ID_MAX
			    || memchr(cu->str, 0, cu->len) != NULL)
				problem
				    = "customerId must be a string of 1 to "
				      "50 characters";
			else
				snprintf(
				    customer, sizeof customer, "%s", cu->str);
		}
		if (problem != NULL) {
			nbad++;
			dre_jsonw_obj_begin(&ew);
			dre_jsonw_kint(&ew, "index", (int64_t) i);
			dre_jsonw_kstr(&ew, "code",
			    dre_json_is(cv, DRE_JSON_STRING) ? cv->str : NULL);
			dre_jsonw_kstr(&ew, "target", target);
			dre_jsonw_kstr(&ew, "message", problem);
			dre_jsonw_obj_end(&ew);
			continue;
		}
		cp_code_new(&codes[n], &t, code, customer, CP_ACTIVE,
		    CP_ORIGIN_IMPORT, now);
		index[n++] = i;
	}
	dre_batch *b = dre_batch_alloc();
	dre_err    err = b == NULL
	       ? DRE_ENOMEM
	       : cp_codes_insert(r->s, r->d.call->tenant, codes, n, &t, false,
	           dup, b, NULL, NULL, r->d.call->principal, &ins);
	dre_batch_free(b);
	for (size_t j = 0; err == DRE_OK && j < n; j++) {
		if (!dup[j])
			continue;
		char target[48];
		nbad++;
		snprintf(target, sizeof target, "codes[%zu]", index[j]);
		dre_jsonw_obj_begin(&ew);
		dre_jsonw_kint(&ew, "index", (int64_t) index[j]);
		dre_jsonw_kstr(&ew, "code", codes[j].code);
		dre_jsonw_kstr(&ew, "target", target);
		dre_jsonw_kstr(&ew, "message", "the code already exists");
		dre_jsonw_obj_end(&ew);
	}
	dre_jsonw_arr_end(&ew);
	free(codes);
	free(index);
	free(dup);
	if (err != DRE_OK) {
		dre_buf_free(&errs);
		dre_docapi_internal(&r->d, err);
		return;
	}
	dre_buf out = { 0 };
	dre_buf_printf(&out,
	    "{\"minorVersion\":%d,\"imported\":%zu,\"failed\":%zu,\"errors\":",
	    MINOR_VERSION, ins, nbad);
	dre_buf_append(&out, errs.data, errs.len);
	dre_buf_putc(&out, '}');
	if (errs.oom)
		out.oom = 1;
	dre_buf_free(&errs);
	reply_buf(r, 200, &out);
}

// code_param reads the "id" parameter as a code.
static bool
code_param(req *r, char *code)
{
	const char *id = id_param(r);
	if (id == NULL)
		return false;
	if (!cp_code_normalize(code, id, strlen(id))) {
		dre_rpc_reply_error(r->d.rep, 404, "NOT_FOUND", NULL,
		    "coupon code '%s' not found", id);
		return false;
	}
	return true;
}

static void
do_code_get(req *r)
{
	char    code[CP_CODE_MAX + 1];
	cp_code c;
	dre_err err;
	if (!code_param(r, code))
		return;
	err = cp_code_load(r->s, r->d.a, r->d.call->tenant, code, &c);
	if (err == DRE_ENOTFOUND) {
		dre_rpc_reply_error(r->d.rep, 404, "NOT_FOUND", NULL,
		    "coupon code '%s' not found", code);
		return;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		return;
	}
	reply_code(r, 200, &c);
}

// do_code_update: an administrator may cancel a code; every other change of
// state goes through the POS operations. If-Match is checked under the
// code's lock (cp_admin_cancel): a till's reservation in between is a
// change too.
static void
do_code_update(req *r)
{
	char            code[CP_CODE_MAX + 1], status[16];
	const dre_json *in;
	cp_code         c;
	cp_outcome      o;
	if (!code_param(r, code) || (in = body(r)) == NULL
	    || !dre_docapi_strict(&r->d, in, code_fields, NFIELDS(code_fields))
	    || !field(r, in, "status", 10, true, status, sizeof status, NULL))
		return;
	if (strcmp(status, "CANCELLED") != 0) {
		bad(r, "status",
		    "only status CANCELLED can be set here; activate, "
		    "reserve, "
		    "redeem and cancel a reservation through /pos/coupons");
		return;
	}
	cp_admin_cancel(r->s, r->d.a, r->d.call->tenant, code,
	    r->d.call->principal, dre_rpc_param(r->d.call, "if_match"), &c,
	    &o);
	if (o.status == 412) {
		dre_docapi_stale(&r->d, o.msg, "coupon code");
		return;
	}
	if (o.status != 200) {
		reply_outcome(r, &o, "status");
		return;
	}
	reply_code(r, 200, &c);
}

// What a code list can query: every member of a code but metadata (the
// client's JSON value) filters and sorts; all of them select.
static const char *const code_scalars[] = { "code", "couponTypeId", "status",
	"customerId", "validFrom", "validTo", "redemptionCount",
	"activeReservations", "reservationRef", "reservedByTransactionId",
	"reservedUntil", "origin", "batchId", "issuedAt", "issuingPromotionId",
	"issuingTransactionId", "issueReason", "createdAt", "updatedAt",
	"activatedAt", "lastRedeemedAt" };
static const char *const code_members[] = { "code", "couponTypeId", "status",
	"customerId", "validFrom", "validTo", "redemptionCount",
	"activeReservations", "reservationRef", "reservedByTransactionId",
	"reservedUntil", "origin", "batchId", "issuedAt", "issuingPromotionId",
	"issuingTransactionId", "issueReason", "metadata", "createdAt",
	"updatedAt", "activatedAt", "lastRedeemedAt" };

// code_visit hands one code document (stored as a read answers it) to the
// list.
static bool
code_visit(void *arg, const char *doc, size_t len)
{
	return list_add(arg, doc, len);
}

// code_peek counts a code known to match without its document when the
// query neither filters, selects nor sorts and the code is outside the
// page: only the page's documents are read.
static bool
code_peek(void *arg)
{
	lister *l = arg;
	int64_t pos = l->count, skip = dre_odata_skip(l->q);
	if (l->parse || (pos >= skip && pos - skip < dre_odata_top(l->q)))
		return true;
	l->count++;
	return false;
}

// do_code_list answers a page of the tenant's codes with the query options;
// couponTypeId=, customerId= (read through their indexes) and status=
// narrow it too.
static void
do_code_list(req *r)
{
	static const dre_odata_fields fields = { code_scalars,
		NFIELDS(code_scalars), code_members, NFIELDS(code_members) };
	cp_code_filter                f = { NULL, NULL, -1, 0, 0 };
	const char                   *st = str_param(r, "status");
	lister                        l;
	if (!list_begin(&l, r, &fields))
		return;
	f.type_id = str_param(r, "couponTypeId");
	f.customer = str_param(r, "customerId");
	if (st != NULL && (f.state = cp_state_parse(st)) < 0) {
		bad(r, "status",
		    "status must be CREATED, ACTIVE, RESERVED, REDEEMED, "
		    "EXPIRED or CANCELLED");
		list_free(&l);
		return;
	}
	dre_err err = cp_codes_scan(
	    r->s, r->d.call->tenant, &f, code_peek, code_visit, &l);
	if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		list_free(&l);
		return;
	}
	list_end(&l);
}

// ---- /api/v1/CouponCodeBatches
// -------------------------------------------------------

static const char *const batch_scalars[]
    = { "id", "couponTypeId", "numberOfCodes", "generatedCount", "progress",
	      "status", "error", "createdAt", "startedAt", "completedAt" };

// reply_batch answers status with bt and its ETag.
static void
reply_batch(req *r, int status, const cp_batch *bt)
{
	dre_buf doc = { 0 };
	char    tag[CP_ETAG_BYTES];
	cp_batch_write(&doc, bt);
	cp_batch_etag(tag, bt);
	reply_doc(r, status, &doc, tag);
	dre_buf_free(&doc);
}

static void
do_batch_create(req *r)
{
	const dre_json *in = body(r);
	cp_type         t;
	cp_batch        bt;
	int64_t         n = 0;
	if (in == NULL
	    || !dre_docapi_strict(
	        &r->d, in, batch_fields, NFIELDS(batch_fields))
	    || !type_arg(r, in, false, &t, NULL, 0))
		return;
	if (dre_json_int(
	        &n, dre_json_get(in, "numberOfCodes"), 1, CP_BATCH_MAX)
	    != DRE_OK) {
		dre_docapi_invalid(&r->d, "numberOfCodes",
		    "numberOfCodes must be an integer from 1 to %d",
		    CP_BATCH_MAX);
		return;
	}
	memset(&bt, 0, sizeof bt);
	dre_uuid_v4(bt.id);
	memcpy(bt.type_id, t.id, sizeof bt.type_id);
	bt.number = n;
	bt.state = CP_BATCH_PENDING;
	bt.created_at = dre_now_ms();
	dre_batch *b = dre_batch_alloc();
	dre_err    err = DRE_ENOMEM;
	if (b != NULL) {
		dre_buf doc = { 0 };
		cp_batch_stage(r->s, b, r->d.call->tenant, &bt);
		cp_batch_write(&doc, &bt);
		err = dre_audit_change(b, r->s->st, CF_AUDIT,
		    r->d.call->tenant, r->d.call->principal, "CouponCodeBatch",
		    bt.id, NULL, NULL, &doc, NULL);
		dre_buf_free(&doc);
		if (err == DRE_OK)
			err = dre_store_write(r->s->st, b, true);
	}
	dre_batch_free(b);
	if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		return;
	}
	cp_jobs_kick(r->s);
	// Accepted: the codes are generated in the background.
	reply_batch(r, 202, &bt);
}

static void
do_batch_get(req *r)
{
	const char *id = id_param(r);
	cp_batch    bt;
	dre_err     err;
	if (id == NULL)
		return;
	err = cp_batch_load(r->s, r->d.a, r->d.call->tenant, id, &bt);
	if (err == DRE_ENOTFOUND) {
		dre_rpc_reply_error(r->d.rep, 404, "NOT_FOUND", NULL,
		    "coupon code batch '%s' not found", id);
		return;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		return;
	}
	reply_batch(r, 200, &bt);
}

// do_batch_list answers a page of the tenant's batches with the query
// options; couponTypeId= narrows it too.
static void
do_batch_list(req *r)
{
	static const dre_odata_fields fields
	    = { batch_scalars, NFIELDS(batch_scalars), batch_scalars,
		      NFIELDS(batch_scalars) };
	const char     *type = str_param(r, "couponTypeId");
	dre_store_iter *it = NULL;
	dre_arena      *scratch = NULL;
	dre_buf         doc = { 0 };
	dre_err         err;
	lister          l;

	if (!list_begin(&l, r, &fields))
		return;
	if ((scratch = dre_arena_alloc(0)) == NULL) {
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		list_free(&l);
		return;
	}
	size_t tl = strlen(r->d.call->tenant) + 1; // with its NUL
	if ((err = dre_store_iter_open(
	         &it, r->s->st, CF_BATCHES, r->d.call->tenant, tl))
	    != DRE_OK) {
		dre_arena_free(scratch);
		dre_docapi_internal(&r->d, err);
		list_free(&l);
		return;
	}
	const char *k, *v;
	size_t      kl, vl;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		cp_batch bt;
		dre_arena_reset(scratch);
		if (cp_batch_parse(&bt, scratch, v, vl) != DRE_OK
		    || (type != NULL && strcmp(bt.type_id, type) != 0))
			continue;
		dre_buf_reset(&doc);
		cp_batch_write(&doc, &bt);
		if (doc.oom || !list_add(&l, doc.data, doc.len)) {
			l.oom = true;
			break;
		}
	}
	dre_store_iter_close(it);
	dre_arena_free(scratch);
	dre_buf_free(&doc);
	list_end(&l);
}

// ---- coupon.Check (protobuf)
// -------------------------------------------------------

static void
do_check(req *r)
{
	Dre__CouponCheckRequest *in = dre__coupon_check_request__unpack(
	    NULL, r->d.call->body_len, r->d.call->body);
	Dre__CouponCheckResponse out = DRE__COUPON_CHECK_RESPONSE__INIT;
	int64_t                  now = dre_now_ms();
	dre_err                  err = DRE_OK;

	if (in == NULL) {
		bad(r, NULL, "body is not a dre.CouponCheckRequest");
		return;
	}
	if (in->n_codes > CHECK_MAX_CODES) {
		dre__coupon_check_request__free_unpacked(in, NULL);
		bad(r, "coupons", "too many coupons in one basket");
		return;
	}
	const char *customer = in->customer_id ? in->customer_id : "";
	const char *tx = in->transaction_id ? in->transaction_id : "";
	int64_t     at = in->has_at_ms && in->at_ms > 0 ? in->at_ms : now;
	size_t      n = in->n_codes;
	out.results = dre_arena_get(r->d.a, (n ? n : 1) * sizeof *out.results);
	char **norm = dre_arena_get(r->d.a, (n ? n : 1) * sizeof *norm);
	if (out.results == NULL || norm == NULL) {
		dre__coupon_check_request__free_unpacked(in, NULL);
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		return;
	}
	for (size_t i = 0; i < n && err == DRE_OK; i++) {
		Dre__CouponCheckResult *res
		    = dre_arena_get(r->d.a, sizeof *res);
		Dre__CouponTypeRef *ref = dre_arena_get(r->d.a, sizeof *ref);
		char       *code = dre_arena_get(r->d.a, CP_CODE_MAX + 1);
		const char *given = in->codes[i] ? in->codes[i] : "";
		cp_check    ck;
		if (res == NULL || ref == NULL || code == NULL) {
			err = DRE_ENOMEM;
			break;
		}
		dre__coupon_check_result__init(res);
		memset(&ck, 0, sizeof ck);
		ck.reason = CP_R_NOT_FOUND;
		norm[i] = NULL;
		if (cp_code_normalize(code, given, strlen(given))) {
			norm[i] = code;
			for (size_t j = 0; j < i; j++)
				if (norm[j] != NULL
				    && strcmp(norm[j], code) == 0)
					ck.reason = CP_R_DUPLICATE;
			if (ck.reason != CP_R_DUPLICATE)
				err = cp_validate(r->s, r->d.a,
				    r->d.call->tenant, code, customer, tx, at,
				    &ck);
		}
		res->code = dre_arena_strdup(
		    r->d.a, norm[i] != NULL ? norm[i] : given);
		res->valid = ck.reason == CP_R_OK;
		if (ck.reason != CP_R_NOT_FOUND
		    && ck.reason != CP_R_DUPLICATE) {
			dre__coupon_type_ref__init(ref);
			ref->id = dre_arena_strdup(r->d.a, ck.type.id);
			ref->name = dre_arena_strdup(r->d.a, ck.type.name);
			ref->is_stackable = ck.type.r.stackable;
			res->coupon_type = ref;
			const char **ids = NULL;
			res->n_promotion_ids = cp_links_get(r->s, r->d.a,
			    r->d.call->tenant, ck.type.id, &ids, NULL);
			res->promotion_ids = (char **) ids;
			if (ck.valid_until != 0) {
				res->has_valid_until_ms = true;
				res->valid_until_ms = ck.valid_until;
			}
		}
		if (!res->valid) {
			res->reason = (char *) cp_reason_name(ck.reason);
			res->message = (char *) cp_reason_text(ck.reason);
		}
		out.results[out.n_results++] = res;
	}
	dre__coupon_check_request__free_unpacked(in, NULL);
	if (err != DRE_OK) {
		dre_docapi_internal(&r->d, err);
		return;
	}
	size_t len = dre__coupon_check_response__get_packed_size(&out);
	dre_buf_reset(&r->d.rep->body);
	dre_buf_reserve(&r->d.rep->body, len + 1);
	if (r->d.rep->body.oom) {
		dre_docapi_internal(&r->d, DRE_ENOMEM);
		return;
	}
	dre__coupon_check_response__pack(
	    &out, (uint8_t *) r->d.rep->body.data);
	r->d.rep->body.len = len;
	r->d.rep->status = 200;
}

// ---- route table
// ----------------------------------------------------------------

#define OP(name, fn)                                                          \
	static void h_##name(                                                 \
	    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)          \
	{                                                                     \
		req r;                                                        \
		if (req_begin(&r, svc, call, rep))                            \
			fn(&r);                                               \
		dre_docapi_end(&r.d);                                         \
	}

OP(validate, do_validate)
OP(reserve, do_reserve)
OP(redeem, do_redeem)
OP(cancel, do_cancel)
OP(release, do_release)
OP(activate, do_activate)
OP(issue, do_issue)
OP(check, do_check)
OP(type_create, do_type_create)
OP(type_list, do_type_list)
OP(type_get, do_type_get)
OP(type_update, do_type_update)
OP(type_delete, do_type_delete)
OP(code_create, do_code_create)
OP(code_import, do_code_import)
OP(code_list, do_code_list)
OP(code_get, do_code_get)
OP(code_update, do_code_update)

// ---- import jobs: a row of CouponCodes or CouponTypes ----------------------

static void
h_ijob(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	dre_ijob_dispatch(((cp *) svc)->jobs, call, rep);
}

// A code is created; under UPSERT a code that exists already is left as
// it is (a file imported again changes nothing).
static dre_err
import_code(void *svc, const dre_ijob_row *row, dre_ijob_result *res)
{
	dre_ijob_row_key(row, "code", res);
	res->created = true;
	dre_err err = dre_ijob_run(h_code_create, svc, row, NULL, "code", res);
	if (err == DRE_EINVAL && res->status == 409
	    && row->mode == DRE_IJOB_UPSERT
	    && strcmp(res->target, "code") == 0) {
		res->created = false;
		return DRE_OK;
	}
	return err;
}

// A type is created, or under UPSERT updated when its id exists.
static dre_err
import_type(void *svc, const dre_ijob_row *row, dre_ijob_result *res)
{
	dre_ijob_row_key(row, "id", res);
	if (row->mode == DRE_IJOB_UPSERT && res->key[0]) {
		dre_ijob_result probe = { 0 };
		dre_err         err = dre_ijob_run(
		            h_type_update, svc, row, res->key, "id", &probe);
		if (!(err == DRE_EINVAL && probe.status == 404)) {
			*res = probe;
			return err;
		}
	}
	res->created = true;
	return dre_ijob_run(h_type_create, svc, row, NULL, "id", res);
}

static dre_ijob_cell
csv_cell(const char *col)
{
	static const char *const raw[] = { "metadata", "maxRedemptions",
		"maxRedemptionsPerCustomer", "validityDays", "codeLength" };
	for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++)
		if (strcmp(col, raw[i]) == 0)
			return DRE_IJOB_CELL_RAW;
	return DRE_IJOB_CELL_STRING;
}

const dre_ijob_entity cp_imports[] = {
	{ "CouponCodes", import_code, csv_cell },
	{ "CouponTypes", import_type, csv_cell },
	{ NULL, NULL, NULL },
};
OP(batch_create, do_batch_create)
OP(batch_get, do_batch_get)
OP(batch_list, do_batch_list)

// coupon.AuditLogs.list: the audit records of the coupon master data, for
// the gateway's merge of GET /api/v1/AuditLogs.
static void
do_audit_list(req *r)
{
	dre_audit_list(&r->d, r->s->st, CF_AUDIT, 0);
}
OP(audit_list, do_audit_list)

// ---- read-your-writes ---------------------------------------------------

// At most this many writes wait here at once; more are answered at once
// (202 when not yet known): the workers serve the tills first.
#define AWAIT_MAX_WAITERS 2
#define AWAIT_MAX_MS      10000

static atomic_int await_waiters;

// promotions_known tells whether every PROMOTION line of body (KIND \t key
// \t version, as the catalog reports a write) is in the link table.
static bool
promotions_known(cp *s, const char *tenant, const uint8_t *body, size_t len)
{
	char        line[512];
	const char *kind, *key;
	int64_t     version;
	size_t      pos = 0;
	while (dre_changes_next(
	    body, len, &pos, line, sizeof line, &kind, &key, &version))
		if (strcmp(kind, "PROMOTION") == 0
		    && !cp_links_have(s, tenant, key, version))
			return false;
	return true;
}

// h_await answers once the link table knows the promotions of a catalog
// write (200), or after wait_ms (202): the gateway waits for it as for the
// evaluators (PRODUCT-DECISIONS §4b), so that a confirm right after the
// write finds the promotion here too.
static void
h_await(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	cp         *s = svc;
	const char *w = dre_rpc_param(call, "wait_ms");
	long long   wait = w != NULL ? strtoll(w, NULL, 10) : 2000;
	if (wait < 0)
		wait = 0;
	if (wait > AWAIT_MAX_MS)
		wait = AWAIT_MAX_MS;
	if (atomic_fetch_add(&await_waiters, 1) >= AWAIT_MAX_WAITERS)
		wait = 0;
	int64_t until = dre_mono_ms() + wait;
	for (;;) {
		if (promotions_known(
		        s, call->tenant, call->body, call->body_len))
			break;
		if (dre_mono_ms() >= until) {
			rep->status = 202;
			break;
		}
		struct timespec ts = { 0, 2 * 1000000L }; // the feed's pace
		nanosleep(&ts, NULL);
	}
	atomic_fetch_sub(&await_waiters, 1);
}

const dre_rpc_route cp_routes[] = {
	{ "coupon.AwaitChanges", h_await, 0 },
	{ "coupon.Validate", h_validate, DRE_RPC_INLINE },
	{ "coupon.Reserve", h_reserve, 0 },
	{ "coupon.Redeem", h_redeem, 0 },
	{ "coupon.Cancel", h_cancel, 0 },
	{ "coupon.ReleaseTransaction", h_release, 0 },
	{ "coupon.Activate", h_activate, 0 },
	{ "coupon.Issue", h_issue, 0 },
	{ "coupon.Check", h_check, DRE_RPC_INLINE },
	{ "coupon.IssueVoucher", cp_h_issue_voucher, 0 },
	{ "coupon.RedeemVoucher", cp_h_redeem_voucher, 0 },
	{ "coupon.Supc.list", cp_h_supc_list, 0 },
	{ "coupon.Supc.create", cp_h_supc_create, 0 },
	{ "coupon.Supc.redeem", cp_h_supc_redeem, 0 },
	{ "coupon.CouponTypes.create", h_type_create, 0 },
	{ "coupon.CouponTypes.list", h_type_list, 0 },
	{ "coupon.CouponTypes.get", h_type_get, 0 },
	{ "coupon.CouponTypes.update", h_type_update, 0 },
	{ "coupon.CouponTypes.delete", h_type_delete, 0 },
	{ "coupon.CouponCodes.create", h_code_create, 0 },
	{ "coupon.CouponCodes.import", h_code_import, 0 },
	{ "coupon.CouponCodes.list", h_code_list, 0 },
	{ "coupon.CouponCodes.get", h_code_get, 0 },
	{ "coupon.CouponCodes.update", h_code_update, 0 },
	// Import jobs (dre/importjob.h): cp_imports below.
	{ "coupon.ImportJobs.create", h_ijob, 0 },
	{ "coupon.ImportJobs.submit", h_ijob, 0 },
	{ "coupon.ImportJobs.append", h_ijob, 0 },
	{ "coupon.ImportJobs.complete", h_ijob, 0 },
	{ "coupon.ImportJobs.abort", h_ijob, 0 },
	{ "coupon.ImportJobs.get", h_ijob, 0 },
	{ "coupon.ImportJobs.list", h_ijob, 0 },
	{ "coupon.ImportJobs.cancel", h_ijob, 0 },
	{ "coupon.ImportJobErrors.list", h_ijob, 0 },
	{ "coupon.ImportJobItems.list", h_ijob, 0 },
	{ "coupon.CouponCodeBatches.create", h_batch_create, 0 },
	{ "coupon.CouponCodeBatches.get", h_batch_get, 0 },
	{ "coupon.CouponCodeBatches.list", h_batch_list, 0 },
	{ "coupon.AuditLogs.list", h_audit_list, 0 },
	{ NULL, NULL, 0 },
};
