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

// ev_personal_ask fills ctx->assigned with the promotions the customer
// holds an unredeemed assignment of (loyalty.Assignments.active), waiting
// at most loyalty.timeout_ms; past it, or when loyalty answers an error,
// ctx->loyalty_unavailable is set. An unknown customer has none. The same
// answer carries the contact's level: a basket that states no
// customer.loyalty.tier gets it (for LOYALTY_TIER conditions); one that
// states it keeps its own.
void ev_personal_ask(ev_svc *s, const dre_rpc_call *call, const char *customer,
    Dre__EvaluateRequest *req, dre_arena *a, eng_eval_ctx *ctx);

#endif
