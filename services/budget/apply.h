// budget/apply.h -- how a confirmed sale changes budgets: the arithmetic
// (pure, unit-tested) and the dre.transactions.confirmed applier.
#ifndef BUD_APPLY_H
#define BUD_APPLY_H

#include <stdbool.h>
#include <stdint.h>

#include "budget.h"
#include "dre/consumer.h"

#define BUD_MAX_THRESHOLDS 16

// What one change did to a budget.
typedef struct {
	int32_t crossed[BUD_MAX_THRESHOLDS]; // thresholds newly reached
	size_t  ncrossed;
	bool    exhausted_now; // became EXHAUSTED
	bool    active_now; // EXHAUSTED -> ACTIVE (total raised)
} bud_change;

// bud_exhausted: a budget is EXHAUSTED once consumed >= total.
bool bud_exhausted(const Dre__BudgetRecord *r);
// bud_reached: consumed has reached pct (whole percent) of total.
bool bud_reached(const Dre__BudgetRecord *r, int32_t pct);
// bud_consume records amount (>= 0, minor units) in full, even past the
// total (PRODUCT-DECISIONS §4: a granted discount is never refused), and
// reports the thresholds it crossed and whether it exhausted the budget.
// crossed[] of r is extended in a.
void bud_consume(
    Dre__BudgetRecord *r, int64_t amount, dre_arena *a, bud_change *out);
// bud_retotal applies a new total (or threshold list already set in r):
// crossings no longer reached are forgotten (announced again later), a
// status flip is reported.
void bud_retotal(
    Dre__BudgetRecord *r, int64_t total, dre_arena *a, bud_change *out);

// bud_apply_confirmed is the applier's apply function (arg = bud *):
// consumes each linked budget by the confirmed amount of its promotion,
// queues BudgetStatus / BudgetEvent events and one SideEffectResult.
dre_err bud_apply_confirmed(void *arg, dre_apply_ctx *x, const dre_msg *m);
// The applier's batch hooks: the batch holds s->mu.
void bud_batch_begin(void *arg);
void bud_batch_end(void *arg, dre_err err);

#endif
