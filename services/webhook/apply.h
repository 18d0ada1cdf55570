// webhook/apply.h -- the applier of the webhook service: events on the
// backbone become delivery records.
#ifndef WH_APPLY_H
#define WH_APPLY_H

#include "dre/consumer.h"
#include "webhook.h"

// wh_apply is the applier's apply function (arg = wh *): each event of a
// subscribable type becomes one PENDING delivery per matching active
// subscription; a confirmed sale also queues a SideEffectResult (service
// "webhook") once its deliveries are in the batch.
dre_err wh_apply(void *arg, dre_apply_ctx *x, const dre_msg *m);
// wh_raise writes the event's body {id, type, timestamp, tenant, data}
// and enqueues it for every subscriber of the tenant into x's batch; *n
// counts them.
dre_err wh_raise(wh *s, dre_apply_ctx *x, const char *event_id,
    const char *type, int64_t at, const char *tenant, const dre_buf *data,
    size_t *n);
// The applier's batch hooks: the end wakes the outbox and the deliverer.
void wh_batch_begin(void *arg);
void wh_batch_end(void *arg, dre_err err);

#endif
