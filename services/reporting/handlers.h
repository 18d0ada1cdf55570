// reporting/handlers.h -- the reporting service's nng API.
#ifndef REP_HANDLERS_H
#define REP_HANDLERS_H

#include "dre/rpc.h"
#include "reporting.h"

// rep_routes is the route table for dre_rpc_server_open; svc is a
// rep_svc *. reporting.PromotionPerformance.{list,get} and
// reporting.BudgetUtilization.{list,get}: params id, format (json | csv),
// from, to (YYYY-MM-DD), channel, posGroupId, groupBy (day, channel,
// posGroup). The reply is the client's document (JSON or CSV).
extern const dre_rpc_route rep_routes[];

#endif
