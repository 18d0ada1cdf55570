// coupon/apply.h -- the confirmed-sale applier: what a sale on
// dre.transactions.confirmed does to coupons (apply.c).
#ifndef CP_APPLY_H
#define CP_APPLY_H

#include "coupon.h"
#include "dre/consumer.h"

// A promotion the link table has never seen means its feed is behind the
// sale's: the batch is retried (the applier backs off 0.1, 0.2, ... 5 s)
// this many times, ~11 s, before the sale is applied without it.
#define CP_UNKNOWN_TRIES 8

// cp_apply_confirmed is the dre.transactions.confirmed applier's apply
// function (arg = cp *): redeems the codes of appliedPromotions[].couponCode,
// issues the post-purchase codes of the promotions' ISSUE_COUPON actions
// and queues COUPON_REDEEMED / COUPON_ISSUED and one SideEffectResult.
dre_err cp_apply_confirmed(void *arg, dre_apply_ctx *x, const dre_msg *m);
// cp_apply_batch_end releases the locks the batch took (arg = cp *).
void cp_apply_batch_end(void *arg, dre_err err);
// cp_applier_start starts the applier (no Kafka: nothing to consume);
// cp_applier_stop stops it.
dre_err cp_applier_start(cp *s, int max_batch);
void    cp_applier_stop(cp *s);

#endif
