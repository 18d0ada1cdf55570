// reporting/apply.h -- how a confirmed sale becomes report figures.
//
// Keys of REP_CF_AGG (strings separated by \0):
//   'p' tenant promotionId day channel posGroup -> dre.Aggregate
//   'b' tenant budgetId day                     -> dre.Aggregate
// day is YYYY-MM-DD (UTC) of the sale's transactionTime; an absent channel
// or POS group is the empty string.
#ifndef REP_APPLY_H
#define REP_APPLY_H

#include "dre/avro.h"
#include "dre/consumer.h"
#include "reporting.h"
#include "reporting.pb-c.h"

// rep_day writes the UTC day of epoch ms as YYYY-MM-DD into out[11].
void rep_day(char *out, int64_t ms);

// rep_key joins prefix and n strings (each followed by \0 but the last)
// into out; 0 when it does not fit.
size_t rep_key(
    char *out, size_t cap, char prefix, const char *const *parts, size_t n);

// rep_add folds one application (amount at time at) into a (NULL = new,
// made in arena x). Pure.
Dre__Aggregate *rep_add(Dre__Aggregate *a, dre_arena *x, int64_t amount,
    int64_t at, const char *currency, const char *name, const char *type);

// rep_apply_confirmed is the applier's apply function (arg = rep_svc *).
dre_err rep_apply_confirmed(void *arg, dre_apply_ctx *x, const dre_msg *m);
void    rep_batch_end(void *arg, dre_err err);

#endif
