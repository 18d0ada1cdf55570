// catalog/handlers.h -- the catalog's nng API (README conventions).
#ifndef CAT_HANDLERS_H
#define CAT_HANDLERS_H

#include "dre/rpc.h"

// cat_routes is the route table for dre_rpc_server_open; svc is a cat *.
extern const dre_rpc_route cat_routes[];

#endif
