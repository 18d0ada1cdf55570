// handlers.h -- the evaluator's nng methods (evaluate, simulate, heartbeat).
#ifndef DRE_EVALUATOR_HANDLERS_H
#define DRE_EVALUATOR_HANDLERS_H

#include "dre/rpc.h"
#include "evaluator.h"

// ev_routes is the route table for dre_rpc_server_open (svc = ev_svc *).
extern const dre_rpc_route ev_routes[];

// ev_handlers_init prepares the per-thread arenas and counter stripes.
dre_err ev_handlers_init(ev_svc *s);
void    ev_handlers_fini(ev_svc *s);

#endif
