// catalog/catalog.h -- the catalog's state: RocksDB entities, indexes, the
// catalog-wide version sequence and the dre.master.* outbox.
#ifndef CAT_CATALOG_H
#define CAT_CATALOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/bus.h"
#include "dre/config.h"
#include "dre/err.h"
#include "dre/importjob.h"
#include "dre/outbox.h"
#include "dre/store.h"

typedef enum {
	CAT_PROMOTION = 0,
	CAT_POS_GROUP,
	CAT_ARTICLE_GROUP,
	CAT_ARTICLE,
	CAT_TENANT_SETTINGS, // one per tenant, key "settings"
	CAT_CAMPAIGN, // issue 17.4: groups promotions; no evaluator reads it
	CAT_NKINDS,
} cat_kind;

// Column families (0 is RocksDB's "default", unused).
enum { CF_ENTITIES = 1, CF_INDEX, CF_META, CF_OUTBOX, CF_AUDIT, CF_JOBS };

// Keys of CF_META besides the version: 'a' tenant \0 promotion id -> the
// promotion's approval state (JSON, handlers.c).
#define CAT_META_APPROVAL 'a'
// S/4HANA DRFOUT messages (handlers.c, issue 17.3), each 'x' tenant \0
// message id: 'm' the message's record (JSON), 'r' the message as it came.
#define CAT_META_MD_MESSAGE 'm'
#define CAT_META_MD_RAW     'r'

typedef struct {
	dre_store        *st;
	dre_outbox       *ob;
	const dre_kvlist *kafka; // borrowed from the config
	pthread_mutex_t   mu; // serialises every read-check-write
	int64_t           version; // last version handed out; under mu
	int               kafka_timeout_ms;
	// Limits of an XML master-data message (masterdata.h).
	int64_t       md_max_bytes;
	int64_t       md_max_depth;
	dre_ijob_reg *jobs; // import jobs (imports.c); NULL until open
} cat;

// cat_snapshots_close closes the paged snapshots in progress on c's store
// (handlers.c; before the store closes).
void cat_snapshots_close(cat *c);

// cat_imports are the catalog's importable entities (imports.c).
extern const dre_ijob_entity cat_imports[];

// cat_kind_name is the entity kind on the wire (PROMOTION, ...).
const char *cat_kind_name(cat_kind k);
// cat_kind_topic is the dre.master.* topic of a kind.
const char *cat_kind_topic(cat_kind k);
// cat_kind_parse maps a wire kind name back; -1 when unknown.
int cat_kind_parse(const char *s, size_t n);

// cat_open opens <path> and the outbox relay; cat_close undoes it.
dre_err cat_open(cat *c, const char *path, const dre_kvlist *kafka);
void    cat_close(cat *c);

// cat_get copies the stored document of (tenant, kind, key) into *docp
// (caller frees with free()). DRE_ENOTFOUND when absent.
dre_err cat_get(cat *c, const char *tenant, cat_kind k, const char *key,
    char **docp, size_t *lenp, int64_t *versionp);

// cat_index_get reads the secondary index (tenant, kind, field, value) into
// *keyp (caller frees with free()). DRE_ENOTFOUND when absent.
dre_err cat_index_get(cat *c, const char *tenant, cat_kind k,
    const char *field, const char *value, char **keyp);

typedef struct {
	const char *field;
	const char *value;
} cat_index;

// What a write tells the audit log (dre/audit.h) besides the entity before
// and after, and what else it stores in the same batch.
typedef struct {
	const char *actor; // the call's principal
	const char *action; // NULL: create, update or delete, from the change
	const char *details; // JSON object or NULL
	// The promotion's approval state (CAT_META_APPROVAL), NULL: unchanged.
	const char *approval;
	size_t      approval_len;
} cat_audit;

// cat_audit_auth_event records an auth event (dre_auth_event_hook's
// function; arg is the cat) in the audit log, synced.
void cat_audit_auth_event(void *arg, const char *event, const char *tenant,
    const char *principal, const char *subject, const char *source);

// cat_audit_entity is the entity name of a kind in the audit log
// ("Promotion", "Article", ...).
const char *cat_audit_entity(cat_kind k);

// cat_put_locked stores doc under (tenant, kind, key) with a new version,
// updates the secondary indexes (del first, then add) and queues the UPSERT
// event, in one synced batch. doc NULL deletes the entity (DELETE event).
// The same batch holds the audit record (the stored document before, doc
// after, and what au says; none when au is NULL) and au's approval state.
// The caller holds c->mu.
dre_err cat_put_locked(cat *c, const char *tenant, cat_kind k, const char *key,
    const char *doc, size_t len, const cat_index *add, size_t nadd,
    const cat_index *del, size_t ndel, const cat_audit *au, int64_t *versionp);

// The entity key layout: tenant \0 kind \0 key; the value: 8-byte
// big-endian version + JSON document.
size_t cat_key(
    char *out, size_t cap, const char *tenant, cat_kind k, const char *key);

#endif
