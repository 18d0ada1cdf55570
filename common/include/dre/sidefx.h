// sidefx.h -- the SideEffectResult every consumer of confirmed sales
// publishes, one per transaction, in the same batch as its state change
// (proto/EVENTS.md; the evaluator folds them into the side-effects job).
#ifndef DRE_SIDEFX_H
#define DRE_SIDEFX_H

#include "dre/avro.h"
#include "dre/consumer.h"
#include "dre/outbox.h"

// dre_sidefx_init fills res for service's handling of sale t: an eventId
// derived from the service and the sale's eventId (the same each time the
// result is made again), the sale's tenant, transaction and eventId, the
// applier's time and attempt count, status SUCCESS. The caller sets status,
// reason and what the service did; t must outlive res.
void dre_sidefx_init(dre_sfx_result *res, const char *service,
    const dre_tx_confirmed *t, const dre_apply_ctx *x);

// dre_sidefx_put encodes res and appends it to outbox ob in batch b, keyed
// tenant/transactionId (the caller writes b).
dre_err dre_sidefx_put(
    dre_outbox *ob, dre_batch *b, const dre_sfx_result *res);

#endif
