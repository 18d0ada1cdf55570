// coupon/vouchers.c -- coupon.IssueVoucher: the loyalty service turns points
// into a reward voucher, which is one single-use code of an INDIVIDUAL
// coupon type bound to the member (PRODUCT-DECISIONS §8). Idempotent by the
// voucher id the loyalty service derives: the same id answers the same code
// however often it is asked (a retry after a lost answer, a crash of the
// caller between the issue and its own write).
//
// coupon.RedeemVoucher: the member redeemed the voucher through the
// loyalty service (POST /api/v3/reward-vouchers/{id}/redeem); its code is
// withdrawn (CANCELLED) so that no till can use it afterwards. Idempotent
// too: the loyalty service asks first and records its own redemption after,
// so a retry after a crash in between converges.
#include "vouchers.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coupon.h"
#include "dre/clock.h"
#include "dre/docapi.h"
#include "dre/json.h"
#include "dre/jsonw.h"

// Index key (CF_IDX): 'w' tenant \0 voucherId -> CODE.
#define VOUCHER_TAG 'w'

static const dre_docapi_svc cp_voucher_api = { "the coupon service", 1 };

// One voucher is issued at a time: the look-up of the voucher id and the
// insert of its code are not interleaved with another issue of the same id.
static pthread_mutex_t voucher_mu = PTHREAD_MUTEX_INITIALIZER;

static const char *
str_member(const dre_json *in, const char *key, size_t max)
{
	const dre_json *v = dre_json_get(in, key);
	if (!dre_json_is(v, DRE_JSON_STRING) || v->len == 0 || v->len > max
	    || memchr(v->str, 0, v->len) != NULL)
		return NULL;
	return v->str;
}

static void
reply_code(dre_docapi_req *d, int status, const cp_code *c, bool created)
{
	dre_jsonw w;
	dre_jsonw_init(&w, &d->rep->body);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "code", c->code);
	dre_jsonw_kstr(&w, "couponTypeId", c->type_id);
	dre_jsonw_kstr(&w, "customerId", c->customer);
	dre_jsonw_kstr(&w, "status", cp_state_name(c->state));
	dre_jsonw_kint(&w, "validTo", c->valid_to);
	dre_jsonw_kbool(&w, "created", created);
	dre_jsonw_obj_end(&w);
	d->rep->status = status;
	dre_rpc_reply_json(d->rep);
}

// issue answers the voucher's code, creating it when the id is new.
static void
issue(cp *s, dre_docapi_req *d)
{
	const dre_json *in = dre_docapi_body(d, DRE_DOCAPI_NOT_OBJECT);
	if (in == NULL)
		return;
	const char *tenant = d->call->tenant;
	const char *vid = str_member(in, "voucherId", CP_ID_MAX);
	const char *type_id = str_member(in, "couponTypeId", DRE_UUID_LEN);
	const char *customer = str_member(in, "customerId", CP_ID_MAX);
	int64_t     valid_to = 0;
	if (vid == NULL || type_id == NULL || customer == NULL) {
		dre_docapi_invalid(d,
		    vid == NULL           ? "voucherId"
		        : type_id == NULL ? "couponTypeId"
		                          : "customerId",
		    "voucherId, couponTypeId and customerId are required "
		    "strings");
		return;
	}
	const dre_json *vt = dre_json_get(in, "validTo");
	if (vt != NULL
	    && dre_json_int(&valid_to, vt, 0, INT64_MAX) != DRE_OK) {
		dre_docapi_invalid(
		    d, "validTo", "validTo must be epoch milliseconds");
		return;
	}
	char   k[512];
	size_t kl = dre_key(k, sizeof k, VOUCHER_TAG, 2, tenant, vid);
	if (kl == 0) {
		dre_docapi_invalid(d, "voucherId", "voucherId too long");
		return;
	}
	pthread_mutex_lock(&voucher_mu);
	char   *v = NULL;
	size_t  vl = 0;
	cp_code c;
	dre_err err = dre_store_get(s->st, CF_IDX, k, kl, &v, &vl);
	if (err == DRE_OK) { // issued before: the same code
		char code[CP_CODE_MAX + 1];
		snprintf(code, sizeof code, "%.*s", (int) vl, v);
		free(v);
		err = cp_code_load(s, d->a, tenant, code, &c);
		pthread_mutex_unlock(&voucher_mu);
		if (err != DRE_OK)
			dre_docapi_internal(d, err);
		else
			reply_code(d, 200, &c, false);
		return;
	}
	if (err != DRE_ENOTFOUND) {
		pthread_mutex_unlock(&voucher_mu);
		dre_docapi_internal(d, err);
		return;
	}
	cp_type t;
	err = cp_type_load(s, d->a, tenant, type_id, &t);
	if (err == DRE_ENOTFOUND || (err == DRE_OK && t.r.generic)) {
		pthread_mutex_unlock(&voucher_mu);
		dre_rpc_reply_error(d->rep, 409, "CONFLICT", "couponTypeId",
		    err == DRE_OK ? "coupon type '%s' is GENERIC: a voucher "
		                    "needs an INDIVIDUAL type"
		                  : "coupon type '%s' not found",
		    type_id);
		return;
	}
	if (err == DRE_OK && !t.r.active) {
		pthread_mutex_unlock(&voucher_mu);
		dre_rpc_reply_error(d->rep, 409, "CONFLICT", "couponTypeId",
		    "coupon type '%s' is not active", type_id);
		return;
	}
	if (err != DRE_OK) {
		pthread_mutex_unlock(&voucher_mu);
		dre_docapi_internal(d, err);
		return;
	}
	int64_t now = dre_now_ms();
	memset(&c, 0, sizeof c);
	// A code nobody holds (drawn again while one does).
	cp_code other;
	for (int tries = 0; err == DRE_OK && tries < 16; tries++) {
		cp_code_generate(c.code, t.prefix, (int) t.code_length);
		err = cp_code_load(s, d->a, tenant, c.code, &other);
	}
	if (err != DRE_ENOTFOUND) {
		pthread_mutex_unlock(&voucher_mu);
		dre_docapi_internal(d, err == DRE_OK ? DRE_EEXISTS : err);
		return;
	}
	memcpy(c.type_id, t.id, sizeof c.type_id);
	c.state = CP_ACTIVE; // usable at once, by its member
	snprintf(c.customer, sizeof c.customer, "%s", customer);
	c.origin = CP_ORIGIN_ISSUE;
	c.issued_at = c.created_at = c.activated_at = now;
	c.issue_reason = "loyalty reward voucher";
	cp_birth_validity(
	    &t.r, t.validity_days, now, &c.valid_from, &c.valid_to);
	if (valid_to != 0 && (c.valid_to == 0 || valid_to < c.valid_to))
		c.valid_to = valid_to;
	dre_batch *b = dre_batch_alloc();
	size_t     inserted = 0;
	if (b == NULL)
		err = DRE_ENOMEM;
	else {
		// The code and the voucher's index in one synced batch.
		dre_batch_put(b, s->st, CF_IDX, k, kl, c.code, strlen(c.code));
		err = cp_codes_insert(s, tenant, &c, 1, &t, false, NULL, b,
		    "COUPON_ISSUED", c.issue_reason, NULL, &inserted);
		if (err == DRE_OK && inserted != 1) {
			// Another writer took the code meanwhile: the index
			// written with the batch is taken back; the caller
			// retries.
			dre_store_delete(s->st, CF_IDX, k, kl, true);
			err = DRE_EEXISTS;
		}
	}
	dre_batch_free(b);
	pthread_mutex_unlock(&voucher_mu);
	if (err != DRE_OK)
		dre_docapi_internal(d, err);
	else
		reply_code(d, 201, &c, true);
}

// redeem withdraws the code of voucher id voucherId of customerId.
static void
redeem(cp *s, dre_docapi_req *d)
{
	static const char *const known[] = { "voucherId", "customerId" };
	const dre_json *in = dre_docapi_body(d, DRE_DOCAPI_NOT_OBJECT);
	if (in == NULL || !dre_docapi_strict(d, in, known, 2))
		return;
	const char *tenant = d->call->tenant;
	const char *vid = str_member(in, "voucherId", CP_ID_MAX);
	const char *customer = str_member(in, "customerId", CP_ID_MAX);
	if (vid == NULL || customer == NULL) {
		dre_docapi_invalid(d, vid == NULL ? "voucherId" : "customerId",
		    "voucherId and customerId are required strings");
		return;
	}
	char   k[512], code[CP_CODE_MAX + 1];
	size_t kl = dre_key(k, sizeof k, VOUCHER_TAG, 2, tenant, vid);
	if (kl == 0) {
		dre_docapi_invalid(d, "voucherId", "voucherId too long");
		return;
	}
	char   *v = NULL;
	size_t  vl = 0;
	dre_err err = dre_store_get(s->st, CF_IDX, k, kl, &v, &vl);
	if (err == DRE_ENOTFOUND) {
		dre_rpc_reply_error(d->rep, 404, "NOT_FOUND", "voucherId",
		    "no voucher %s was issued", vid);
		return;
	}
	if (err != DRE_OK) {
		dre_docapi_internal(d, err);
		return;
	}
	snprintf(code, sizeof code, "%.*s", (int) vl, v);
	free(v);
	cp_code    c;
	cp_outcome o;
	cp_voucher_withdraw(s, d->a, tenant, code, customer, &c, &o);
	if (o.status != 200) {
		dre_rpc_reply_error(d->rep, o.status,
		    o.status == 503 ? "UNAVAILABLE" : cp_reason_name(o.reason),
		    "voucherId", "%s", o.msg);
		return;
	}
	reply_code(d, 200, &c, false);
}

void
cp_h_redeem_voucher(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	dre_docapi_req d;
	if (dre_docapi_begin(&d, &cp_voucher_api, call, rep))
		redeem(svc, &d);
	dre_docapi_end(&d);
}

void
cp_h_issue_voucher(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep)
{
	dre_docapi_req d;
	if (dre_docapi_begin(&d, &cp_voucher_api, call, rep))
		issue(svc, &d);
	dre_docapi_end(&d);
}
