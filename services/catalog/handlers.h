// catalog/handlers.h -- the catalog's nng API (README conventions).
#ifndef CAT_HANDLERS_H
#define CAT_HANDLERS_H

#include "catalog.h"
#include "dre/importjob.h"
#include "dre/rpc.h"

// cat_routes is the route table for dre_rpc_server_open; svc is a cat *.
extern const dre_rpc_route cat_routes[];

// cat_import_row applies one import row of kind k through the single-write
// path: create, or with UPSERT update when the entity exists (found by its
// key field). The import job's row callback (imports.c).
dre_err cat_import_row(
    cat *c, cat_kind k, const dre_ijob_row *row, dre_ijob_result *res);
// cat_ijob serves catalog.ImportJobs.* and the row lists (imports.c).
void cat_ijob(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);
// cat_import_batch is catalog.Articles.importBatch (seed 002).
void cat_import_batch(void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);

#endif
