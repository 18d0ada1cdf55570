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

// ev_personal_begin asks loyalty.Assignments.active about the customer
// (waiting at most loyalty.timeout_ms, from now); ev_personal_end reads the
// answer into ctx: ctx->assigned the promotions the customer holds an
// unredeemed assignment of, or ctx->loyalty_unavailable when there was no
// answer in time, an error, or no call (op NULL). An unknown customer has
// none. The same answer carries the contact's level: a basket that states
// no customer.loyalty.tier gets it (for LOYALTY_TIER conditions); one that
// states it keeps its own. Whatever is done between the two (the coupon
// service's check) runs while loyalty answers.
dre_rpc_op *ev_personal_begin(
    ev_svc *s, const dre_rpc_call *call, const char *customer);
void ev_personal_end(dre_rpc_op *op, const dre_rpc_call *call,
    Dre__EvaluateRequest *req, dre_arena *a, eng_eval_ctx *ctx);

#endif
