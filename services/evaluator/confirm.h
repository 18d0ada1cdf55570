// confirm.h -- evaluator.Confirm and evaluator.SideEffects, and the
// dre.sidefx.results consumer that keeps the side-effect jobs.
#ifndef DRE_EVALUATOR_CONFIRM_H
#define DRE_EVALUATOR_CONFIRM_H

#include "dre/rpc.h"
#include "evaluator.h"

// ev_confirm_start prepares the poll cache and starts the side-effect
// results consumer. s->ob, s->cm and s->budgets must be open.
dre_err ev_confirm_start(ev_svc *s);
// ev_confirm_stop stops the consumer (its batch in progress is written).
void ev_confirm_stop(ev_svc *s);

// evaluator.Confirm: body dre.ConfirmRequest -> dre.ConfirmResponse.
void ev_h_confirm(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);
// evaluator.CalculationAuditLogs.get: param id (the transactionId) -> the
// calculation audit record its confirm wrote (dre/audit.h), 404 before.
void ev_h_calc_audit(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);
// evaluator.AuditLogs.list: the shard's calculation records as a page of
// the audit log (dre_audit_list; the gateway merges the shards' pages).
void ev_h_audit_list(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);
// evaluator.SideEffects: params id, counter -> the JSON the client gets.
void ev_h_side_effects(
    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);

#endif
