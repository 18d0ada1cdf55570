// loyalty/apply.h -- how a confirmed sale credits a member's points: the
// dre.transactions.confirmed applier.
#ifndef LOY_APPLY_H
#define LOY_APPLY_H

#include "dre/consumer.h"
#include "loyalty.h"

// loy_apply_confirmed is the applier's apply function (arg = loy *):
// credits the iteration's loyaltyPointsEarned to the customer exactly once,
// marks the transaction as earned through DRE (a receipt for it earns
// nothing), queues POINTS_EARNED / LEVEL_CHANGED and one SideEffectResult
// (SKIPPED with the reason when the customer is unknown to loyalty).
dre_err loy_apply_confirmed(void *arg, dre_apply_ctx *x, const dre_msg *m);
// The applier's batch hooks: the batch holds s->mu.
void loy_batch_begin(void *arg);
void loy_batch_end(void *arg, dre_err err);

// loy_day is the day number (since the epoch, UTC) of epoch millis ms.
int32_t loy_day(int64_t ms);

#endif
