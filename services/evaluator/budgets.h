// budgets.h -- the evaluator's copy of the budget states: a snapshot from
// the budget service, then the dre.budgets.status feed, kept in RocksDB and
// in the engine's budget set.
#ifndef DRE_EVALUATOR_BUDGETS_H
#define DRE_EVALUATOR_BUDGETS_H

#include "evaluator.h"

// ev_budgets_start loads the stored states into s->budgets and starts the
// feed (which takes a snapshot first when it has no position).
dre_err ev_budgets_start(ev_svc *s);
void    ev_budgets_stop(ev_svc *s);

#endif
