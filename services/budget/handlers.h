// budget/handlers.h -- the budget service's nng API.
#ifndef BUD_HANDLERS_H
#define BUD_HANDLERS_H

#include "budget.h"
#include "dre/importjob.h"
#include "dre/rpc.h"

// bud_routes is the route table for dre_rpc_server_open; svc is a bud *.
// budget.Budgets.{create,list,get,update,delete}: JSON in and out, params
// id, patch, $top, $skip. budget.Snapshot: dre.BudgetSnapshotRequest ->
// dre.BudgetSnapshotResponse.
extern const dre_rpc_route bud_routes[];

// bud_imports: Budgets as an importable entity (import jobs).
extern const dre_ijob_entity bud_imports[];

#endif
