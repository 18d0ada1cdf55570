// coupon/handlers.h -- the coupon service's nng API (see handlers.c).
#ifndef CP_HANDLERS_H
#define CP_HANDLERS_H

#include "dre/rpc.h"

// cp_routes is the route table for dre_rpc_server_open; svc is a cp *.
extern const dre_rpc_route cp_routes[];

#endif
