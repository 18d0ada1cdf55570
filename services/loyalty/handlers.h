// loyalty/handlers.h -- the loyalty service's nng API (Engage v3 shapes).
#ifndef LOY_HANDLERS_H
#define LOY_HANDLERS_H

#include "dre/importjob.h"
#include "dre/rpc.h"
#include "loyalty.h"

// loy_routes is the route table for dre_rpc_server_open; svc is a loy *.
// loyalty.Program.{get,put}, loyalty.Contacts.{upsert,lookup,get,update}
// (upsert answers 201, or 200 with the contact that exists),
// loyalty.ContactOverview.get, loyalty.Receipts.create: JSON in and out,
// params as the gateway passes them (path id, query arguments, patch).
extern const dre_rpc_route loy_routes[];

// loy_email_valid / loy_phone_valid: the identifier checks of /api/v3
// (an address with one @, a dotted domain, no spaces; E.164).
bool loy_email_valid(const char *s);
bool loy_phone_valid(const char *s);

// loy_imports: Contacts (with points and level) as an importable entity.
extern const dre_ijob_entity loy_imports[];

#endif
