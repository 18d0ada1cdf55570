// loyalty/apply.c -- credits confirmed sales' points to members, exactly
// once: the contact, the transaction's marker, the events and the
// side-effect result go into the applier's batch with its offsets.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "rewards.h"
#include "dre/avro.h"
#include "dre/log.h"
#include "dre/outbox.h"
#include "dre/sidefx.h"

int32_t
loy_day(int64_t ms)
{
	return (int32_t) (ms / 86400000);
}

void
loy_batch_begin(void *arg)
{
	loy *s = arg;
	pthread_mutex_lock(&s->mu);
}

void
loy_batch_end(void *arg, dre_err err)
{
	loy *s = arg;
	pthread_mutex_unlock(&s->mu);
	if (err == DRE_OK) {
		dre_outbox_kick(s->ob);
		loy_vouchers_kick(s);
	}
}

// result queues the transaction's SideEffectResult.
static dre_err
result(loy *s, dre_apply_ctx *x, const dre_tx_confirmed *t, const char *status,
    const char *reason, int64_t points)
{
	dre_sfx_result res;
	dre_sidefx_init(&res, "loyalty", t, x);
	res.status = status;
	res.reason = reason != NULL ? dre_arena_strdup(x->a, reason) : NULL;
	res.loyalty_points = points;
	return dre_sidefx_put(s->ob, x->b, &res);
}

// order_put records the sale by its receipt id (the POS-platform bridge's
// orderId) for a RETURN naming the order alone: the member's contact id
// ("" for a sale without one) \0, the points earned and the sale's total
// (be64 each). A return of a sale without a member deducts nothing but is
// still a TRANSACTION_RETURNED.
static void
order_put(loy *s, dre_apply_ctx *x, const dre_tx_confirmed *t, const char *id)
{
	char   key[600], ov[300];
	size_t idl = strlen(id), kl;
	if (t->receipt_id == NULL || t->receipt_id[0] == '\0'
	    || idl + 17 > sizeof(ov)
	    || (kl = dre_key(
	            key, sizeof(key), 0, 3, t->tenant, "O", t->receipt_id))
	        == 0)
		return;
	memcpy(ov, id, idl + 1);
	dre_be64_put((uint8_t *) ov + idl + 1, id[0] ? t->loyalty_points : 0);
	dre_be64_put((uint8_t *) ov + idl + 9, t->grand_total);
	dre_batch_put(x->b, s->st, LOY_CF_LEDGER, key, kl, ov, idl + 17);
}

// receipt_earned: DRE_OK when a receipt with uniqueReceiptId txid earned
// (or deducted) points for contact id, DRE_ENOTFOUND when none did.
static dre_err
receipt_earned(loy *s, dre_apply_ctx *x, const char *tenant, const char *id,
    const char *txid)
{
	char    key[600], *v = NULL;
	size_t  vl = 0;
	size_t  kl = dre_key(key, sizeof(key), 0, 3, tenant, "r", txid);
	dre_err err = kl == 0
	    ? DRE_ENOTFOUND
	    : dre_batch_get(x->b, s->st, LOY_CF_LEDGER, key, kl, &v, &vl);
	if (err != DRE_OK)
		return err;
	dre_json   *d = NULL;
	char       *copy = dre_arena_strndup(x->a, v, vl);
	int64_t     pts = 0;
	const char *who = NULL;
	free(v);
	if (copy == NULL)
		return DRE_ENOMEM;
	if (dre_json_parse(&d, x->a, copy, vl, 4, NULL) == DRE_OK) {
		const dre_json *c = dre_json_get(d, "contactId");
		who = dre_json_is(c, DRE_JSON_STRING) ? c->str : NULL;
		if (dre_json_int(
		        &pts, dre_json_get(d, "points"), INT64_MIN, INT64_MAX)
		    != DRE_OK)
			pts = 0;
	}
	return who != NULL && strcmp(who, id) == 0 && pts != 0 ? DRE_OK
	                                                       : DRE_ENOTFOUND;
}

dre_err
loy_apply_confirmed(void *arg, dre_apply_ctx *x, const dre_msg *m)
{
	loy             *s = arg;
	dre_tx_confirmed t;
	dre_err          err
	    = dre_avro_decode_tx_confirmed(&t, x->a, m->payload, m->len);
	if (err != DRE_OK)
		return err;
	// No customer: nothing to credit, as for a sale without coupons; a
	// reward voucher it used (whoever holds the code) is redeemed.
	if (t.customer_id == NULL || t.customer_id[0] == '\0') {
		if ((err = loy_rewards_confirmed(s, x, &t, NULL)) != DRE_OK)
			return err == DRE_ECODEC ? DRE_ESTORE : err;
		order_put(s, x, &t, "");
		return result(s, x, &t, "SKIPPED", NULL, 0);
	}
	loy_contact c;
	err = loy_resolve(s, x->b, x->a, t.tenant, t.customer_id, &c);
	if (err == DRE_OK || err == DRE_ENOTFOUND) {
		dre_err rerr = loy_rewards_confirmed(
		    s, x, &t, err == DRE_OK ? &c : NULL);
		if (rerr != DRE_OK)
			return rerr == DRE_ECODEC ? DRE_ESTORE : rerr;
		// The contact as the batch now holds it (an event of the
		// rewards changed nothing of it, but read it back anyway).
		if (err == DRE_OK
		    && (err = loy_contact_get(
		            s, x->b, x->a, t.tenant, c.id, &c))
		        != DRE_OK)
			return err == DRE_ECODEC ? DRE_ESTORE : err;
	}
	if (err == DRE_ENOTFOUND) {
		char reason[300];
		snprintf(reason, sizeof(reason),
		    "customer %s is not a loyalty contact", t.customer_id);
		order_put(s, x, &t, "");
		return result(s, x, &t, "SKIPPED", reason, 0);
	}
	if (err != DRE_OK)
		return err == DRE_ECODEC ? DRE_ESTORE : err;

	// The transaction is marked as earned through DRE, also with no
	// points: a receipt sent for it later earns nothing.
	char   key[800];
	size_t kl = dre_key(
	    key, sizeof(key), 0, 4, t.tenant, "t", c.id, t.transaction_id);
	if (kl > 0) {
		uint8_t be[8];
		dre_be64_put(be, t.loyalty_points);
		dre_batch_put(x->b, s->st, LOY_CF_LEDGER, key, kl, be, 8);
		// By the sale's receipt id too (the POS-platform bridge's
		// orderId: getLoyaltyPoints).
		if (t.receipt_id != NULL && t.receipt_id[0] != '\0'
		    && (kl = dre_key(key, sizeof(key), 0, 4, t.tenant, "o",
		            c.id, t.receipt_id))
		        > 0)
			dre_batch_put(
			    x->b, s->st, LOY_CF_LEDGER, key, kl, be, 8);
		order_put(s, x, &t, c.id);
	}
	// A receipt sent for this transaction before the confirm came in
	// earned its points already: never twice.
	if (t.loyalty_points != 0
	    && (err = receipt_earned(s, x, t.tenant, c.id, t.transaction_id))
	        != DRE_ENOTFOUND) {
		if (err != DRE_OK)
			return err;
		char reason[300];
		snprintf(reason, sizeof(reason),
		    "transaction %s earned through its receipt",
		    t.transaction_id);
		return result(s, x, &t, "SKIPPED", reason, 0);
	}
	if (t.loyalty_points != 0) {
		loy_program p;
		const char *prev = NULL;
		if ((err = loy_program_get(s, x->a, t.tenant, &p)) != DRE_OK)
			return err == DRE_ECODEC ? DRE_ESTORE : err;
		loy_credit(
		    &c, x->a, &p, t.loyalty_points, loy_day(x->now_ms), &prev);
		c.modified = x->now_ms;
		loy_vouchers_due(s, x->b, t.tenant, &c, &p);
		if ((err = loy_contact_put(s, x->b, t.tenant, &c, &c))
		        != DRE_OK
		    || (err = loy_event(s, x->b, t.tenant, &c,
		            t.loyalty_points > 0 ? "POINTS_EARNED"
		                                 : "POINTS_DEDUCTED",
		            t.loyalty_points > 0 ? t.loyalty_points
		                                 : -t.loyalty_points,
		            NULL, t.transaction_id, NULL, NULL, t.event_id,
		            x->now_ms))
		        != DRE_OK)
			return err;
		if (prev == NULL || strcmp(prev, c.level) != 0)
			if ((err = loy_event(s, x->b, t.tenant, &c,
			         "LEVEL_CHANGED", 0, prev, t.transaction_id,
			         NULL, NULL, t.event_id, x->now_ms))
			    != DRE_OK)
				return err;
	}
	return result(s, x, &t, "SUCCESS", NULL, t.loyalty_points);
}
