// coupon/handlers.h -- the coupon service's nng API (see handlers.c).
#ifndef CP_HANDLERS_H
#define CP_HANDLERS_H

#include "dre/importjob.h"
#include "dre/rpc.h"
#include "model.h"

// cp_routes is the route table for dre_rpc_server_open; svc is a cp *.
extern const dre_rpc_route cp_routes[];

// cp_imports are the coupon service's importable entities (import jobs,
// dre/importjob.h): CouponCodes and CouponTypes.
extern const dre_ijob_entity cp_imports[];

// cp_code_new fills *c as a new code of type t born at now: code (NULL =
// drawn from the type's prefix and length), customer ("" or NULL = anyone),
// state, origin (CP_ORIGIN_*) and the validity the type gives it.
void cp_code_new(cp_code *c, const cp_type *t, const char *code,
    const char *customer, cp_state st, const char *origin, int64_t now);

#endif
