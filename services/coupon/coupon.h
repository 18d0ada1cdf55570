// coupon/coupon.h -- the coupon service's state and operations: RocksDB
// column families, the per-code locks, every state transition (each one
// serialised per code and written in one synced batch with its event), the
// background jobs and the promotion link table.
#ifndef CP_COUPON_H
#define CP_COUPON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/arena.h"
#include "dre/bus.h"
#include "dre/config.h"
#include "dre/consumer.h"
#include "dre/err.h"
#include "dre/outbox.h"
#include "dre/store.h"
#include "model.h"
#include "rules.h"

// Column families (0 is RocksDB's "default", unused).
//   types    tenant \0 typeId               -> type document
//   codes    tenant \0 CODE                 -> code document
//   resv     tenant \0 reservationId        -> reservation document
//   batches  tenant \0 batchId              -> batch document
//   idx      secondary indexes, first byte a tag (codes.c)
//   links    promotion -> coupon type links learnt from the catalog (links.c)
//   outbox   dre.coupon.events and dre.sidefx.results not yet acknowledged
//   applier  positions and eventIds of dre.transactions.confirmed
//            (common/include/dre/consumer.h)
//   audit    the audit records of /api/v1 writes: coupon types, codes
//            created, imported or cancelled, batches (dre/audit.h)
enum {
	CF_TYPES = 1,
	CF_CODES,
	CF_RESV,
	CF_BATCHES,
	CF_IDX,
	CF_LINKS,
	CF_OUTBOX,
	CF_APPLIER,
	CF_AUDIT,
	CF_JOBS, // import jobs (dre/importjob.h)
};

// Every transition of one code runs under the stripe its (tenant, code)
// hashes to: a read-decide-write is never interleaved with another on the
// same code, whichever thread or endpoint it comes from.
#define CP_STRIPES 256

typedef struct {
	int64_t     reservation_ttl_ms;
	int64_t     issue_rate_per_min;
	int64_t     sweep_ms;
	int64_t     retention_ms; // finished reservations are kept this long
	int64_t     batch_chunk; // codes per write of a batch job
	int64_t     resnapshot_ms;
	const char *catalog_url;
	const char *data_dir; // for the embedded broker's bootstrap file
} cp_opts;

typedef struct cp_links cp_links;
typedef struct cp_rates cp_rates;

typedef struct {
	dre_store        *st;
	dre_outbox       *ob;
	const dre_kvlist *kafka; // borrowed from the config
	cp_opts           o;
	pthread_mutex_t   stripes[CP_STRIPES];
	pthread_mutex_t   create_mu; // creation of new codes: uniqueness
	pthread_mutex_t   types_mu; // coupon type writes: unique names
	pthread_mutex_t   rate_mu;
	cp_rates         *rates; // under rate_mu
	// Background jobs (jobs.c).
	atomic_bool     stop;
	pthread_mutex_t job_mu;
	pthread_cond_t  job_cv;
	bool            job_kick; // under job_mu
	pthread_t       sweeper, batcher;
	bool            threads;
	cp_links       *links;
	// The dre.transactions.confirmed applier (apply.c). It keeps the
	// stripes of the codes it changed, and the creation lock once it
	// created one, from the first change until its batch is written:
	// only the applier ever holds more than one stripe, and nobody takes
	// a stripe while holding the creation lock, so there is no cycle.
	struct dre_applier  *ap;
	bool                 ap_stripes[CP_STRIPES]; // applier thread only
	bool                 ap_create;
	struct dre_ijob_reg *jobs; // import jobs (handlers.c cp_imports)
} cp;

// The outcome of an operation: status 200 on success; a refusal carries a
// stable reason, a message and the status /api/v1 answers it with (404,
// 409; the POS operations answer every refusal 200 with "reason"); 503 when
// it could not be completed.
typedef struct {
	int       status;
	cp_reason reason;
	char      msg[240];
} cp_outcome;

// cp_open opens <path> and the outbox relay; cp_close undoes it (stop the
// jobs first).
dre_err cp_open(
    cp *s, const char *path, const dre_kvlist *kafka, const cp_opts *o);
void cp_close(cp *s);

// ---- reads (no lock: a consistent single read) --------------------------

// cp_type_load reads a type by id. DRE_ENOTFOUND when absent.
dre_err cp_type_load(
    cp *s, dre_arena *a, const char *tenant, const char *id, cp_type *t);
// cp_type_find_name reads a type by its name.
dre_err cp_type_find_name(
    cp *s, dre_arena *a, const char *tenant, const char *name, cp_type *t);
dre_err cp_code_load(
    cp *s, dre_arena *a, const char *tenant, const char *code, cp_code *c);
dre_err cp_resv_load(
    cp *s, dre_arena *a, const char *tenant, const char *id, cp_resv *r);
dre_err cp_batch_load(
    cp *s, dre_arena *a, const char *tenant, const char *id, cp_batch *b);

// cp_type_has_codes reports whether any code of the type exists.
bool cp_type_has_codes(cp *s, const char *tenant, const char *type_id);

// ---- coupon types (under types_mu) ----------------------------------------

// cp_type_store writes t (new or replaced; old = the stored version or
// NULL) and its name index in one synced batch; t NULL deletes old. The
// batch carries the change's audit record, actor its principal.
dre_err cp_type_store(cp *s, const char *tenant, const char *actor,
    const cp_type *t, const cp_type *old);

// cp_audit_put adds the audit record of an /api/v1 write to b: entity
// ("CouponType", "CouponCode", "CouponCodeBatch") and id, before (NULL for
// a create) and after (NULL for a delete) the documents as stored.
dre_err cp_audit_put(cp *s, dre_batch *b, const char *tenant,
    const char *actor, const char *entity, const char *id,
    const dre_buf *before, const dre_buf *after);

// ---- the POS operations --------------------------------------------------

typedef struct {
	cp_reason reason;
	cp_code   code; // valid when reason != NOT_FOUND
	cp_type   type;
	int64_t   valid_until; // effective end of validity; 0 = open
} cp_check;

// cp_validate judges whether code may be used by (customer, tx) at `at`
// without changing anything. out->reason CP_R_OK when usable.
dre_err cp_validate(cp *s, dre_arena *a, const char *tenant, const char *code,
    const char *customer, const char *tx, int64_t at, cp_check *out);

// cp_reserve holds code for tx (ACTIVE -> RESERVED for an INDIVIDUAL code;
// a counted hold on a GENERIC one). The same transaction gets its live
// reservation back. *r is the reservation on success.
void cp_reserve(cp *s, dre_arena *a, const char *tenant, const char *code,
    const char *tx, const char *customer, cp_resv *r, cp_outcome *out);
// cp_redeem turns the held reservation res_id of tx into a redemption.
void cp_redeem(cp *s, dre_arena *a, const char *tenant, const char *res_id,
    const char *tx, cp_outcome *out);
// cp_cancel releases a reservation (idempotent: a released or lapsed
// reservation answers success with a message saying so).
void cp_cancel(cp *s, dre_arena *a, const char *tenant, const char *res_id,
    cp_outcome *out);
// cp_release_tx releases every live reservation of transaction tx (a voided
// cart); the count released. Idempotent: nothing held answers success.
size_t cp_release_tx(
    cp *s, dre_arena *a, const char *tenant, const char *tx, cp_outcome *out);
// cp_activate moves a CREATED code of customer to ACTIVE (a code active
// already answers success, nothing written); *c is the code afterwards.
void cp_activate(cp *s, dre_arena *a, const char *tenant, const char *code,
    const char *customer, cp_code *c, cp_outcome *out);
// cp_admin_cancel moves a non-terminal code to CANCELLED, releasing its
// reservations; *c is the code afterwards. With if_match (an If-Match
// header value, else NULL) the code's ETag (cp_code_etag) must match it,
// checked under the code's lock: otherwise status 412 with the code's
// current ETag as msg, nothing changed. The change is audited with actor.
void cp_admin_cancel(cp *s, dre_arena *a, const char *tenant, const char *code,
    const char *actor, const char *if_match, cp_code *c, cp_outcome *out);
// cp_voucher_withdraw ends the reward voucher code of customer that its
// member redeemed through the loyalty service (ACTIVE or CREATED ->
// CANCELLED): it cannot be used at a till afterwards. Idempotent: a code
// CANCELLED already answers success, nothing written. 404 for an unknown
// code; 409 with the reason for another customer's, a REDEEMED or EXPIRED
// one, and one a till holds (RESERVED_BY_OTHER).
void cp_voucher_withdraw(cp *s, dre_arena *a, const char *tenant,
    const char *code, const char *customer, cp_code *c, cp_outcome *out);

// One code an external system redeemed (the POS platform's SUPC API,
// PRODUCT-DECISIONS §10): its order (NULL = none) and time (0 = now); c is
// the code afterwards.
typedef struct {
	const char *code;
	const char *order;
	int64_t     at;
	cp_code     c;
} cp_ext_redeem;

// The 'r' index value (codes.c) of an external redemption, in place of a
// reservation id: the transaction id of its key is the external order.
#define CP_RES_EXTERNAL "external"

// cp_redeem_external marks the n codes of v REDEEMED, all or none, in one
// synced batch under the stripes of every code: each must exist, be of one
// of the ntypes types (else 404 NOT_FOUND) and not be terminal (409 with
// REDEEMED, EXPIRED or CANCELLED, naming the code). A till's hold on one
// ends (released). Each gets COUPON_REDEEMED with the order as transaction.
void cp_redeem_external(cp *s, dre_arena *a, const char *tenant,
    cp_ext_redeem *v, size_t n, const char *const *type_ids, size_t ntypes,
    cp_outcome *out);

// ---- creating codes --------------------------------------------------------

// cp_codes_insert adds n new codes (complete documents) of type t in one
// synced batch together with whatever the caller already put into b, under
// the creation lock. A code that exists already (or twice in codes) is
// drawn again from the type's prefix and length when regen, else skipped
// with dup[i] set. event (e.g. "COUPON_ISSUED") is queued per inserted
// code unless NULL. *inserted counts the codes written. With actor (an
// /api/v1 create or import) each inserted code gets an audit record.
dre_err cp_codes_insert(cp *s, const char *tenant, cp_code *codes, size_t n,
    const cp_type *t, bool regen, bool *dup, dre_batch *b, const char *event,
    const char *reason, const char *actor, size_t *inserted);

// cp_rate_take_tenant takes up to want issue tokens of tenant (see
// cp_rate_take).
int64_t cp_rate_take_tenant(
    cp *s, const char *tenant, int64_t want, int64_t now_ms, int64_t *retry_s);

// ---- events ------------------------------------------------------------

typedef struct {
	const char *type;
	const char *code;
	const char *type_id;
	const char *customer;
	const char *tx;
	const char *res_id;
	const char *batch_id;
	int64_t     count; // < 0 = null
	const char *promotion_id;
	const char *reason;
} cp_event;

// cp_event_put encodes e and queues it to dre.coupon.events in b (key
// <tenant>/<code or batch id>).
dre_err cp_event_put(
    cp *s, dre_batch *b, const char *tenant, const cp_event *e);

// cp_batch_stage puts a batch document into b.
void cp_batch_stage(
    cp *s, dre_batch *b, const char *tenant, const cp_batch *bt);

// ---- listing -------------------------------------------------------------

typedef struct {
	const char *type_id; // NULL = any
	const char *customer; // NULL = any
	int         state; // -1 = any
	int64_t     skip, top;
} cp_code_filter;

// cp_codes_list appends the matching code documents, comma-separated, to
// vals and counts all matches into *count.
dre_err cp_codes_list(cp *s, dre_arena *a, const char *tenant,
    const cp_code_filter *f, dre_buf *vals, int64_t *count);

// A visitor of code documents: doc[0..len) is borrowed for the call; false
// stops the scan.
typedef bool (*cp_code_visit)(void *arg, const char *doc, size_t len);
// A peek at a code that matches by its index alone (nothing else in the
// filter needs its document): true when the visitor wants the document
// (then read and visited), false when it only counts the code.
typedef bool (*cp_code_peek)(void *arg);
// cp_codes_scan calls fn with every code document matching f's type,
// customer and state (its skip and top are not used), in code order: the
// keys come from one snapshot of the narrowest index. peek may be NULL
// (every document is read).
dre_err cp_codes_scan(cp *s, const char *tenant, const cp_code_filter *f,
    cp_code_peek peek, cp_code_visit fn, void *arg);

// ---- background jobs (jobs.c)
// ------------------------------------------------

// cp_jobs_start starts the sweeper (reservation TTL, validTo expiry,
// retention) and the batch generator; cp_jobs_stop joins them.
dre_err cp_jobs_start(cp *s);
void    cp_jobs_stop(cp *s);
// cp_jobs_kick wakes the batch generator (a new batch was stored).
void cp_jobs_kick(cp *s);
// cp_sweep runs one sweeper pass at now (exposed for tests).
void cp_sweep(cp *s, int64_t now);
// cp_batch_run generates the codes of one batch to completion (exposed for
// tests; the generator thread calls it).
void cp_batch_run(cp *s, const char *tenant, const char *batch_id);

// ---- promotion links (links.c)
// ------------------------------------------------

// cp_links_have tells whether the link table holds promotion promo_id of
// tenant at version or a later one (read-your-writes: the gateway holds a
// promotion write's answer until confirm here will know it).
bool cp_links_have(
    cp *s, const char *tenant, const char *promo_id, int64_t version);
// cp_links_start learns promotion -> coupon type links: a catalog
// snapshot, then dre.master.promotions from the offsets it names.
dre_err cp_links_start(cp *s);
void    cp_links_stop(cp *s);
// cp_links_types lists the coupon types a promotion names (arena strings)
// into *idsp, *np (none for a deleted one). DRE_ENOTFOUND when the link
// table has never seen the promotion.
dre_err cp_links_types(cp *s, dre_arena *a, const char *tenant,
    const char *promo_id, const char ***idsp, size_t *np);
// cp_links_get lists the promotions linked to a type (arena strings, key
// order) into *idsp; *first_active is the first ACTIVE one or NULL.
size_t cp_links_get(cp *s, dre_arena *a, const char *tenant,
    const char *type_id, const char ***idsp, const char **first_active);
// An ISSUE_COUPON action of a promotion: quantity codes of a type.
#define CP_MAX_ISSUE     16 // actions kept per promotion
#define CP_MAX_ISSUE_QTY 1000
typedef struct {
	const char *type_id;
	int64_t     quantity;
} cp_issue;

// cp_links_issue lists the ISSUE_COUPON actions of a promotion (arena
// memory) into *vp, *np. DRE_ENOTFOUND when the link table has never seen
// the promotion (its feed is behind); a deleted one has none.
dre_err cp_links_issue(cp *s, dre_arena *a, const char *tenant,
    const char *promo_id, cp_issue **vp, size_t *np);
// cp_links_apply records the promotion document doc (NULL = deleted) of
// version into b (exposed for tests).
void cp_links_apply(cp *s, dre_batch *b, const char *tenant,
    const char *promo_id, int64_t version, const char *doc, size_t len);

#endif
