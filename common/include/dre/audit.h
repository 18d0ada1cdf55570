// audit.h -- the audit log (issue 13.6): who changed what, when, from what
// to what. Each service that owns data writes its audit record into the
// same RocksDB WriteBatch as the change itself (dre_audit_put), so a change
// is never stored without its record nor a record without its change; the
// records are answered by dre_audit_list with the /api/v1 query options.
//
// A record (JSON, as answered by GET /api/v1/AuditLogs):
//   {"id": uuid, "at": time, "actor": principal, "entity": "Promotion",
//    "entityId": "...", "action": "update", "before": {...}|null,
//    "after": {...}|null, "details": {...}|null}
// Key: tag, tenant \0, at (8 bytes big-endian), id: a tenant's records in
// time order.
#ifndef DRE_AUDIT_H
#define DRE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "dre/docapi.h"
#include "dre/err.h"
#include "dre/odata.h"
#include "dre/store.h"

typedef struct {
	const char *tenant;
	const char *actor; // the principal (user, API client, service)
	int64_t     at_ms; // 0 = now
	const char *entity; // "Promotion", "Article", "ApiKey", ...
	const char *entity_id;
	const char *action; // create, update, delete, submit, approve, ...
	// JSON texts written as they are (NULL = null): the entity before
	// and after the change, and what else the action carries (a
	// rejection's reason, a confirm's promotions and versions).
	const char *before;
	size_t      before_len;
	const char *after;
	size_t      after_len;
	const char *details;
	size_t      details_len;
} dre_audit_rec;

// dre_audit_put adds rec to b, in column family cf of st under the key tag
// (0 = none) + tenant. The caller writes b with its change. id (37 bytes)
// receives the record's id when not NULL.
dre_err dre_audit_put(dre_batch *b, dre_store *st, int cf, char tag,
    const dre_audit_rec *rec, char *id);

// dre_audit_change adds the record of a write of entity entity_id by actor
// in tenant to b (column family cf of st, no tag), the form every service
// uses for its writes: before and after are the entity as a read answers
// it, secrets left out (NULL: none, a create has no before, a delete no
// after); action NULL names the write by them (delete, create, update);
// details is a JSON object or NULL. DRE_ENOMEM when before or after ran out
// of memory while rendered.
dre_err dre_audit_change(dre_batch *b, dre_store *st, int cf,
    const char *tenant, const char *actor, const char *entity,
    const char *entity_id, const char *action, const dre_buf *before,
    const dre_buf *after, const char *details);

// dre_audit_render appends the record (a new id) to out, for a caller
// that stores it under a key of its own in the batch of its change (one
// record per entity, read back by that key: the evaluator's calculation
// record of a transaction, written by the confirm's group commit).
void dre_audit_render(dre_buf *out, const dre_audit_rec *rec);

// dre_audit_record is the nng method "<svc>.AuditLogs.record" for events
// no stored entity carries (the gateway's auth events: token issued, key
// created or revoked, login failures): body {"entity", "entityId",
// "action", "actor"?, "before"?, "after"?, "details"?}; the tenant is the
// call's, the actor the body's or else the call's principal. Answers 201
// with the record, 400 VALIDATION_FAILED on a bad body.
void dre_audit_record(dre_docapi_req *r, dre_store *st, int cf, char tag);

// What a query of the records can use: $filter and $orderby over id, at,
// actor, entity, entityId, action; $select over every member.
extern const dre_odata_fields dre_audit_fields;

// DRE_AUDIT_TOP_MAX is the most a service answers in one page: the gateway
// merges the services' pages, asking each for $skip + $top records of the
// caller's page ($top at most 1000, $skip + $top at most this).
#define DRE_AUDIT_TOP_MAX 10000

// dre_audit_list answers a page of the call's tenant's records with the
// query options ($filter, $select, $orderby, $top, $skip, $count; default
// order: oldest first; records under tag in key order).
void dre_audit_list(dre_docapi_req *r, dre_store *st, int cf, char tag);

// dre_audit_list_call is a service's "<svc>.AuditLogs.list" handler body:
// dre_audit_list of the records in cf of st under tag, with the service's
// document API (api: its name and minor version in the answers).
void dre_audit_list_call(const dre_docapi_svc *api, dre_store *st, int cf,
    char tag, const dre_rpc_call *call, dre_rpc_reply *rep);

#endif
