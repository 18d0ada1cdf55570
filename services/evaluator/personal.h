// evaluator/personal.h -- the personal promotions of a basket's customer,
// asked of the loyalty service with a bounded wait (PRODUCT-DECISIONS §8).
#ifndef EV_PERSONAL_H
#define EV_PERSONAL_H

#include "dre/rpc.h"
#include "evaluate.pb-c.h"
#include "evaluator.h"

// ev_personal_customer is the loyalty key of the basket's customer:
// customer.customerId, else customer.loyaltyCardNo (a memberNumber); NULL
// when the basket names none.
const char *ev_personal_customer(const Dre__EvaluateRequest *req);

// ev_personal_start asks loyalty.Assignments.active about the customer
// (waiting at most loyalty.timeout_ms from now, and at most half of what is
// left before deadline_ms, 0 = none): without done as dre_rpc_call_begin
// (the answer is then dre_rpc_call_end(*opp)), with done as
// dre_rpc_call_async. DRE_OK when the call was sent; otherwise (no loyalty
// service, no time left, an error, logged) there is nothing to end or wait
// for.
dre_err ev_personal_start(ev_svc *s, const char *tenant, int64_t deadline_ms,
    const char *customer, dre_rpc_op **opp, dre_rpc_done done, void *arg);
// ev_personal_read reads the answer rr (freed here; NULL: none came, err
// says why: logged unless DRE_OK) into ctx: ctx->assigned the promotions the
// customer holds an unredeemed assignment of, or ctx->loyalty_unavailable
// when there was no answer, an error, or no call. An unknown customer has
// none. The same answer carries the contact's level: a basket that states
// no customer.loyalty.tier gets it (for LOYALTY_TIER conditions); one that
// states it keeps its own.
void ev_personal_read(Dre__RpcReply *rr, dre_err err, const char *tenant,
    Dre__EvaluateRequest *req, dre_arena *a, eng_eval_ctx *ctx);

#endif
