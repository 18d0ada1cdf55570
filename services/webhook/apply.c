// webhook/apply.c -- turns events on the backbone into delivery records,
// exactly once: each event x each matching active subscription becomes a
// PENDING delivery in the applier's batch, with its offsets; a confirmed
// sale also queues the service's SideEffectResult there.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "dre/avro.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/money.h"
#include "dre/sidefx.h"
#include "dre/topics.h"
#include "dre/uuid.h"

void
wh_batch_begin(void *arg)
{
	(void) arg;
}

void
wh_batch_end(void *arg, dre_err err)
{
	wh *s = arg;
	if (err == DRE_OK) {
		dre_outbox_kick(s->ob);
		wh_deliverer_kick(s);
	}
}

static void
kmoney(dre_jsonw *w, const char *key, int64_t v)
{
	dre_jsonw_key(w, key);
	dre_jsonw_decimal(w, v, DRE_MONEY_SCALE);
}

static void
kstr_opt(dre_jsonw *w, const char *key, const char *v)
{
	if (v != NULL)
		dre_jsonw_kstr(w, key, v);
}

static void
tx_data(dre_buf *out, const dre_tx_confirmed *t)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "transactionId", t->transaction_id);
	dre_jsonw_kint(&w, "transactionCounter", t->transaction_counter);
	kstr_opt(&w, "receiptId", t->receipt_id);
	kstr_opt(&w, "customerId", t->customer_id);
	kstr_opt(&w, "channel", t->channel);
	kstr_opt(&w, "posGroupId", t->pos_group_id);
	dre_jsonw_key(&w, "transactionTime");
	dre_jsonw_time(&w, t->transaction_time);
	dre_jsonw_kstr(&w, "currency", t->currency);
	kmoney(&w, "subtotal", t->subtotal);
	kmoney(&w, "totalDiscount", t->total_discount);
	kmoney(&w, "grandTotal", t->grand_total);
	dre_jsonw_key(&w, "appliedPromotions");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < t->npromotions; i++) {
		const dre_tx_promotion *p = &t->promotions[i];
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "promotionId", p->promotion_id);
		kstr_opt(&w, "promotionName", p->promotion_name);
		kstr_opt(&w, "promotionType", p->promotion_type);
		kmoney(&w, "discountAmount", p->amount);
		kstr_opt(&w, "couponCode", p->coupon_code);
		dre_jsonw_obj_end(&w);
	}
	dre_jsonw_arr_end(&w);
	dre_jsonw_kint(&w, "lineCount", (int64_t) t->nlines);
	dre_jsonw_obj_end(&w);
}

dre_err
wh_raise(wh *s, dre_apply_ctx *x, const char *event_id, const char *type,
    int64_t at, const char *tenant, const dre_buf *data, size_t *n)
{
	dre_buf body = { 0 };
	if (data->oom)
		return DRE_ENOMEM;
	wh_event_body(
	    &body, event_id, type, at, tenant, data->data, data->len);
	dre_err err = body.oom ? DRE_ENOMEM
	                       : wh_fanout(s, x->b, x->a, tenant, event_id,
	                           type, body.data, body.len, x->now_ms, n);
	dre_buf_free(&body);
	return err;
}

static dre_err
apply_tx(wh *s, dre_apply_ctx *x, const dre_msg *m)
{
	dre_tx_confirmed t;
	dre_err          err
	    = dre_avro_decode_tx_confirmed(&t, x->a, m->payload, m->len);
	if (err != DRE_OK)
		return err;
	size_t n = 0;
	bool   yes;
	if ((err = wh_wanted(s, x->a, t.tenant, "TRANSACTION_CONFIRMED", &yes))
	    != DRE_OK)
		return err;
	if (yes) {
		dre_buf data = { 0 };
		tx_data(&data, &t);
		err = wh_raise(s, x, t.event_id, "TRANSACTION_CONFIRMED",
		    t.occurred_at, t.tenant, &data, &n);
		dre_buf_free(&data);
		if (err != DRE_OK)
			return err;
	}

	// The result says the deliveries are durably queued, not delivered:
	// a receiver down for hours must not hold the sale's job open. No
	// reason: the job's reason lists problems only.
	dre_sfx_result res;
	dre_sidefx_init(&res, "webhook", &t, x);
	res.status = n > 0 ? "SUCCESS" : "SKIPPED";
	return dre_sidefx_put(s->ob, x->b, &res);
}

static dre_err
apply_budget(wh *s, dre_apply_ctx *x, const dre_msg *m)
{
	dre_budget_event e;
	dre_err          err
	    = dre_avro_decode_budget_event(&e, x->a, m->payload, m->len);
	bool yes = false;
	if (err != DRE_OK
	    || (err = wh_wanted(s, x->a, e.tenant, e.type, &yes)) != DRE_OK
	    || !yes)
		return err;
	dre_buf   data = { 0 };
	dre_jsonw w;
	size_t    n = 0;
	dre_jsonw_init(&w, &data);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "budgetId", e.budget_id);
	kstr_opt(&w, "budgetName", e.budget_name);
	if (e.threshold_pct >= 0)
		dre_jsonw_kint(&w, "thresholdPct", e.threshold_pct);
	kmoney(&w, "totalAmount", e.total_amount);
	kmoney(&w, "consumedAmount", e.consumed_amount);
	kstr_opt(&w, "currency", e.currency);
	kstr_opt(&w, "transactionId", e.transaction_id);
	dre_jsonw_obj_end(&w);
	err = wh_raise(
	    s, x, e.event_id, e.type, e.occurred_at, e.tenant, &data, &n);
	dre_buf_free(&data);
	return err;
}

static dre_err
apply_coupon(wh *s, dre_apply_ctx *x, const dre_msg *m)
{
	dre_coupon_event e;
	dre_err err = dre_avro_decode_coupon(&e, x->a, m->payload, m->len);
	if (err != DRE_OK)
		return err;
	// Only the subscribable kinds (PRODUCT-DECISIONS §9).
	static const char *const kinds[]
	    = { "COUPON_ISSUED", "COUPON_REDEEMED", "COUPON_EXPIRED",
		      "COUPON_BATCH_COMPLETED" };
	bool known = false;
	for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
		known = known || strcmp(e.type, kinds[i]) == 0;
	bool yes = false;
	if (!known
	    || (err = wh_wanted(s, x->a, e.tenant, e.type, &yes)) != DRE_OK
	    || !yes)
		return err;
	dre_buf   data = { 0 };
	dre_jsonw w;
	size_t    n = 0;
	dre_jsonw_init(&w, &data);
	dre_jsonw_obj_begin(&w);
	kstr_opt(&w, "code", e.code);
	kstr_opt(&w, "couponTypeId", e.coupon_type_id);
	kstr_opt(&w, "customerId", e.customer_id);
	kstr_opt(&w, "transactionId", e.transaction_id);
	kstr_opt(&w, "batchId", e.batch_id);
	if (e.count >= 0)
		dre_jsonw_kint(&w, "count", e.count);
	kstr_opt(&w, "promotionId", e.promotion_id);
	dre_jsonw_obj_end(&w);
	err = wh_raise(
	    s, x, e.event_id, e.type, e.occurred_at, e.tenant, &data, &n);
	dre_buf_free(&data);
	return err;
}

// The loyalty events (PRODUCT-DECISIONS §8) as webhook event types: §9's
// LOYALTY_POINTS_AWARDED and LOYALTY_VOUCHER_CREATED, and LOYALTY_ + the
// loyalty name for the others.
static const char *const loyalty_types[][2] = {
	{ "POINTS_EARNED", "LOYALTY_POINTS_AWARDED" },
	{ "POINTS_DEDUCTED", "LOYALTY_POINTS_DEDUCTED" },
	{ "LEVEL_CHANGED", "LOYALTY_LEVEL_CHANGED" },
	{ "VOUCHER_CREATED", "LOYALTY_VOUCHER_CREATED" },
	{ "VOUCHER_REDEEMED", "LOYALTY_VOUCHER_REDEEMED" },
	{ "PROMOTION_ASSIGNED", "LOYALTY_PROMOTION_ASSIGNED" },
	{ "PROMOTION_REDEEMED", "LOYALTY_PROMOTION_REDEEMED" },
	{ "CONTACT_CREATED", "LOYALTY_CONTACT_CREATED" },
	{ "CONTACT_UPDATED", "LOYALTY_CONTACT_UPDATED" },
};

static dre_err
apply_loyalty(wh *s, dre_apply_ctx *x, const dre_msg *m)
{
	dre_loyalty_event e;
	dre_err           err
	    = dre_avro_decode_loyalty_event(&e, x->a, m->payload, m->len);
	if (err != DRE_OK)
		return err;
	const char *type = NULL;
	for (size_t i = 0; i < sizeof loyalty_types / sizeof loyalty_types[0];
	     i++)
		if (strcmp(e.type, loyalty_types[i][0]) == 0)
			type = loyalty_types[i][1];
	if (type == NULL)
		return DRE_OK; // a later kind: not subscribable yet
	bool yes;
	if ((err = wh_wanted(s, x->a, e.tenant, type, &yes)) != DRE_OK || !yes)
		return err;
	dre_buf   data = { 0 };
	dre_jsonw w;
	size_t    n = 0;
	dre_jsonw_init(&w, &data);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "contactId", e.contact_id);
	dre_jsonw_kint(&w, "points", e.points);
	dre_jsonw_kint(&w, "pointsBalance", e.points_balance);
	kstr_opt(&w, "level", e.level);
	kstr_opt(&w, "previousLevel", e.previous_level);
	kstr_opt(&w, "transactionId", e.transaction_id);
	kstr_opt(&w, "receiptId", e.receipt_id);
	// reference: a voucher number or a promotion assignment's id.
	if (strncmp(e.type, "VOUCHER_", 8) == 0)
		kstr_opt(&w, "voucherNumber", e.reference);
	else if (strncmp(e.type, "PROMOTION_", 10) == 0)
		kstr_opt(&w, "assignmentId", e.reference);
	dre_jsonw_obj_end(&w);
	err = wh_raise(
	    s, x, e.event_id, type, e.occurred_at, e.tenant, &data, &n);
	dre_buf_free(&data);
	return err;
}

// apply_return raises TRANSACTION_RETURNED (PRODUCT-DECISIONS §7, §10):
// goods of a confirmed sale came back through the POS-platform bridge.
static dre_err
apply_return(wh *s, dre_apply_ctx *x, const dre_msg *m)
{
	dre_return_event e;
	dre_err          err
	    = dre_avro_decode_return_event(&e, x->a, m->payload, m->len);
	bool yes = false;
	if (err != DRE_OK
	    || (err = wh_wanted(
	            s, x->a, e.tenant, "TRANSACTION_RETURNED", &yes))
	        != DRE_OK
	    || !yes)
		return err;
	dre_buf   data = { 0 };
	dre_jsonw w;
	size_t    n = 0;
	dre_jsonw_init(&w, &data);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "orderId", e.order_id);
	dre_jsonw_kstr(&w, "returnId", e.return_id);
	kstr_opt(&w, "customerId", e.customer_id);
	kmoney(&w, "refundAmount", e.refund_amount);
	dre_jsonw_kint(&w, "pointsDeducted", e.points_deducted);
	dre_jsonw_kint(&w, "pointsBalance", e.points_balance);
	dre_jsonw_obj_end(&w);
	err = wh_raise(s, x, e.event_id, "TRANSACTION_RETURNED", e.occurred_at,
	    e.tenant, &data, &n);
	dre_buf_free(&data);
	return err;
}

// apply_sidefx folds the SideEffectResults of a sale, as the evaluator
// does: once every service of sfx_services reported, SIDE_EFFECTS_COMPLETED
// (status COMPLETED, or PARTIAL when one failed) goes to its subscribers.
// Results are kept only while a subscriber of the type exists.
static dre_err
apply_sidefx(wh *s, dre_apply_ctx *x, const dre_msg *m)
{
	dre_sfx_result r;
	dre_err err = dre_avro_decode_sfx_result(&r, x->a, m->payload, m->len);
	if (err != DRE_OK)
		return err;
	bool yes = false;
	if (s->o.nsfx == 0
	    || (err = wh_wanted(
	            s, x->a, r.tenant, "SIDE_EFFECTS_COMPLETED", &yes))
	        != DRE_OK
	    || !yes)
		return err;
	char   key[WH_KEY_MAX + 8];
	size_t kl = wh_key(key, sizeof key - 9, r.tenant, r.transaction_id);
	if (kl == 0)
		return DRE_OK;
	key[kl] = '\0';
	dre_be64_put(key + kl + 1, r.transaction_counter);
	kl += 1 + 8;
	char     *v = NULL;
	size_t    vl = 0;
	dre_json *prev = NULL;
	if (dre_batch_get(x->b, s->st, WH_CF_SIDEFX, key, kl, &v, &vl)
	    == DRE_OK) {
		char *text = dre_arena_strndup(x->a, v, vl);
		free(v);
		if (text == NULL
		    || dre_json_parse(
		           &prev, x->a, text, vl, DRE_JSON_MAX_DEPTH, NULL)
		        != DRE_OK
		    || !dre_json_is(prev, DRE_JSON_ARRAY))
			prev = NULL;
	}
	// The results so far, this one added (once per service).
	dre_buf   list = { 0 };
	dre_jsonw w;
	size_t    have = 0;
	bool      failed = false, seen = false;
	dre_jsonw_init(&w, &list);
	dre_jsonw_arr_begin(&w);
	for (const dre_json *e = prev ? prev->child : NULL; e; e = e->next) {
		const dre_json *sv = dre_json_get(e, "service");
		const dre_json *st = dre_json_get(e, "status");
		if (!dre_json_is(sv, DRE_JSON_STRING))
			continue;
		seen = seen || strcmp(sv->str, r.service) == 0;
		failed = failed
		    || (dre_json_is(st, DRE_JSON_STRING)
		        && strcmp(st->str, "FAILED") == 0);
		dre_jsonw_json(&w, e);
	}
	if (!seen) {
		dre_jsonw_obj_begin(&w);
		dre_jsonw_kstr(&w, "service", r.service);
		dre_jsonw_kstr(&w, "status", r.status);
		dre_jsonw_kstr(&w, "reason", r.reason);
		dre_jsonw_obj_end(&w);
		failed = failed || strcmp(r.status, "FAILED") == 0;
	}
	dre_jsonw_arr_end(&w);
	if (list.oom) {
		dre_buf_free(&list);
		return DRE_ENOMEM;
	}
	dre_json *now = NULL;
	char     *lt = dre_arena_strndup(x->a, list.data, list.len);
	if (lt == NULL
	    || dre_json_parse(
	           &now, x->a, lt, list.len, DRE_JSON_MAX_DEPTH, NULL)
	        != DRE_OK) {
		dre_buf_free(&list);
		return DRE_ENOMEM;
	}
	for (size_t i = 0; i < s->o.nsfx; i++)
		for (const dre_json *e = now->child; e; e = e->next) {
			const dre_json *sv = dre_json_get(e, "service");
			if (dre_json_is(sv, DRE_JSON_STRING)
			    && strcmp(sv->str, s->o.sfx_services[i]) == 0) {
				have++;
				break;
			}
		}
	if (have < s->o.nsfx) {
		dre_batch_put(
		    x->b, s->st, WH_CF_SIDEFX, key, kl, list.data, list.len);
		dre_buf_free(&list);
		return DRE_OK;
	}
	dre_batch_delete(x->b, s->st, WH_CF_SIDEFX, key, kl);
	char eid[DRE_UUID_LEN + 1], seed[400];
	int  sl = snprintf(seed, sizeof seed, "sidefx-completed|%s|%s|%lld",
	     r.tenant, r.transaction_id, (long long) r.transaction_counter);
	dre_uuid_derive(eid, seed, (size_t) sl);
	dre_buf data = { 0 };
	dre_jsonw_init(&w, &data);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "transactionId", r.transaction_id);
	dre_jsonw_kint(&w, "transactionCounter", r.transaction_counter);
	dre_jsonw_kstr(&w, "status", failed ? "PARTIAL" : "COMPLETED");
	dre_jsonw_key(&w, "results");
	dre_jsonw_raw(&w, list.data, list.len);
	dre_jsonw_obj_end(&w);
	dre_buf_free(&list);
	size_t n = 0;
	err = wh_raise(s, x, eid, "SIDE_EFFECTS_COMPLETED", x->now_ms,
	    r.tenant, &data, &n);
	dre_buf_free(&data);
	return err;
}

dre_err
wh_apply(void *arg, dre_apply_ctx *x, const dre_msg *m)
{
	wh *s = arg;
	if (strcmp(m->topic, DRE_TOPIC_TX_CONFIRMED) == 0)
		return apply_tx(s, x, m);
	if (strcmp(m->topic, DRE_TOPIC_BUDGET_EVENTS) == 0)
		return apply_budget(s, x, m);
	if (strcmp(m->topic, DRE_TOPIC_COUPON_EVENTS) == 0)
		return apply_coupon(s, x, m);
	if (strcmp(m->topic, DRE_TOPIC_LOYALTY_EVENTS) == 0)
		return apply_loyalty(s, x, m);
	if (strcmp(m->topic, DRE_TOPIC_TX_RETURNED) == 0)
		return apply_return(s, x, m);
	if (strcmp(m->topic, DRE_TOPIC_SIDEFX) == 0)
		return apply_sidefx(s, x, m);
	return DRE_OK;
}
