// engine.h -- the promotion engine: an immutable per-tenant master-data index
// and the evaluation of one basket against it.
//
// The index is a refcounted immutable snapshot. Writers (snapshot load, one
// change from the feed) build a new version beside the current one and swap
// the pointer; readers take a reference and never wait for a writer's build.
// A writer may also stage several changes (a batch of the feed) and publish
// them in one swap: readers see all of them or none.
// Evaluation allocates everything from the caller's per-basket arena.
#ifndef DRE_ENGINE_H
#define DRE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/arena.h"
#include "dre/err.h"
#include "evaluate.pb-c.h"

typedef enum {
	DRE_MK_PROMOTION = 0,
	DRE_MK_ARTICLE,
	DRE_MK_POS_GROUP,
	DRE_MK_ARTICLE_GROUP,
	DRE_MK_TENANT_SETTINGS, // key "settings": { enableProductionNudges,
	                        // currency }
} dre_master_kind;

// dre_master_kind_parse maps the wire literals PROMOTION | ARTICLE |
// POS_GROUP | ARTICLE_GROUP | TENANT_SETTINGS; DRE_EINVAL otherwise.
dre_err     dre_master_kind_parse(dre_master_kind *out, const char *s);
const char *dre_master_kind_name(dre_master_kind k);

// One master-data change: an upsert (doc != NULL) or a delete (doc NULL) of
// the entity kind/key of tenant at catalog version `version`. Borrowed for
// the call; the engine copies what it keeps.
typedef struct {
	dre_master_kind kind;
	const char     *tenant;
	const char     *key;
	int64_t         version;
	const char     *doc; // JSON document; NULL = delete
	size_t          doc_len;
} dre_master_change;

typedef struct dre_engine dre_engine;
typedef struct dre_index  dre_index;

// dre_engine_alloc creates an engine holding an empty index. Caller frees
// with dre_engine_free().
dre_err dre_engine_alloc(dre_engine **ep);
// dre_engine_free releases the engine; readers must have released every
// index they acquired. NULL is a no-op.
void dre_engine_free(dre_engine *e);

// dre_engine_load replaces the whole index by the n changes (a snapshot:
// only upserts matter; for one key the highest version wins). Documents that
// do not parse are skipped and counted in *nbadp (if not NULL). now_ms
// becomes the data age.
dre_err dre_engine_load(dre_engine *e, const dre_master_change *v, size_t n,
    int64_t now_ms, size_t *nbadp);

// dre_engine_apply applies one change if its version is newer than what the
// index holds for kind/key (deletes leave a tombstone so that an older
// upsert arriving later is ignored). *appliedp (if not NULL) tells whether
// it was. DRE_EINVAL when the document does not parse (nothing changes).
dre_err dre_engine_apply(
    dre_engine *e, const dre_master_change *c, int64_t now_ms, bool *appliedp);

// dre_engine_stage_load and dre_engine_stage are dre_engine_load and
// dre_engine_apply without the swap: they build on the staged version (if
// any, else the current one) and stage the result, which readers do not see
// until dre_engine_publish swaps it in; dre_engine_discard drops it. One
// writer stages at a time (dre_engine_load and dre_engine_apply publish
// whatever is staged).
dre_err dre_engine_stage_load(dre_engine *e, const dre_master_change *v,
    size_t n, int64_t now_ms, size_t *nbadp);
dre_err dre_engine_stage(
    dre_engine *e, const dre_master_change *c, int64_t now_ms, bool *appliedp);
void dre_engine_publish(dre_engine *e);
void dre_engine_discard(dre_engine *e);

// dre_engine_acquire returns the current index with a reference held.
// Caller releases with dre_index_release(); the index never changes.
//
// Ownership rule: everything reached through an index -- promotion
// documents, ids, names, texts, and so every string a dre_evaluate response
// points at -- is borrowed from it and valid only until the reference is
// released. A writer may swap in a new version at any moment and the
// release of the last reference frees the old one, so hold the reference
// until the last use: for an evaluation, until its response is packed onto
// the wire (services/evaluator/handlers.c h_evaluate).
const dre_index *dre_engine_acquire(dre_engine *e);
void             dre_index_release(const dre_index *ix);

// dre_engine_wait waits up to timeout_ms until the current index is no
// longer seen (a reference the caller holds, so it cannot be freed and
// reused meanwhile); true when it changed. For callers waiting for a change
// to be applied (read-your-writes): check, wait, acquire again.
bool dre_engine_wait(dre_engine *e, const dre_index *seen, int timeout_ms);

// dre_index_version is the highest catalog version applied (0 when empty).
int64_t dre_index_version(const dre_index *ix);
// dre_index_data_age is when the last change was applied (epoch millis; 0 =
// never).
int64_t dre_index_data_age(const dre_index *ix);
// dre_index_promotions counts the live promotions of tenant (NULL = all).
size_t dre_index_promotions(const dre_index *ix, const char *tenant);
// dre_index_bytes is the memory the index's tenants and entities take; it
// sets *entities (when not NULL) to their number, tombstones included.
size_t dre_index_bytes(const dre_index *ix, size_t *entities);
// dre_index_version_of returns the version the index holds for kind/key of
// tenant (tombstones included), or -1.
int64_t dre_index_version_of(const dre_index *ix, const char *tenant,
    dre_master_kind kind, const char *key);

struct dre_promo;

// ---- budgets (engine_budget.c)
//
// The evaluator's view of which budgets are exhausted, fed by the budget
// service (snapshot + dre.budgets.status) and by side-effect results. Thread
// safe; each entry keeps the highest version seen.
typedef struct dre_budget_set dre_budget_set;

dre_err dre_budget_set_alloc(dre_budget_set **bp);
void    dre_budget_set_free(dre_budget_set *b); // NULL is a no-op
// dre_budget_set_update records the state of budget_id of tenant at
// version; an older version than the one held is ignored. Returns true when
// the entry changed.
bool dre_budget_set_update(dre_budget_set *b, const char *tenant,
    const char *budget_id, int64_t version, bool exhausted);
// dre_budget_set_clear forgets everything (before a snapshot is loaded).
void dre_budget_set_clear(dre_budget_set *b);
bool dre_budget_set_exhausted(
    const dre_budget_set *b, const char *tenant, const char *budget_id);
// dre_budget_set_version is the version of the state held for budget_id of
// tenant, -1 when none is.
int64_t dre_budget_set_version(
    const dre_budget_set *b, const char *tenant, const char *budget_id);
// dre_budget_set_count is the number of exhausted budgets held.
size_t dre_budget_set_count(const dre_budget_set *b);

// The promotions an evaluation dropped because a budget is exhausted.
typedef struct {
	Dre__BudgetLimitedPromotion **v;
	size_t                        n, cap;
} dre_budget_limited;

// dre_budget_check is the budget stage of PRODUCT-DECISIONS §3: true when
// one of p's budgets is exhausted for tenant; then p is listed in out (its
// entries allocated in a) and *reason says which budget.
bool dre_budget_check(const dre_budget_set *b, const char *tenant,
    const struct dre_promo *p, dre_arena *a, dre_budget_limited *out,
    const char **reason);

// dre_index_promotion returns the live promotion id of tenant, or NULL.
// Borrowed from ix (valid while the caller holds it).
const struct dre_promo *dre_index_promotion(
    const dre_index *ix, const char *tenant, const char *id);

// ---- coupons (engine_coupon.c)
//
// What the coupon service said about one code of the basket (coupon.Check),
// in basket order. Borrowed for the evaluation.
typedef struct {
	const char        *code; // as presented in the basket
	bool               valid;
	const char        *reason; // stable reason code when !valid
	const char        *type_id; // the coupon type; NULL when unknown
	const char        *type_name;
	bool               stackable;
	const char *const *promotion_ids; // linked to the type (any status)
	size_t             npromotion_ids;
} dre_coupon_result;

// The evaluation context the service supplies (the tenant comes from the
// caller's credential, never the body). Borrowed for the call.
typedef struct {
	const char *tenant;
	int64_t     now_ms;
	int64_t     counter; // transaction counter assigned to this iteration
	const char
	    *transaction_id; // the request's or one the service generated
	const char *currency; // default currency, e.g. "EUR"
	const char *instance_id;
	const char *source; // "local-store" | "btp"; NULL = "local-store"
	bool        simulate;
	const dre_budget_set *budgets; // NULL = no budget is exhausted
	// One result per request coupon, in order (ncoupons == the request's
	// n_coupons). NULL = the coupon service was not asked or did not
	// answer: every code is invalid with reason UNAVAILABLE.
	const dre_coupon_result *coupons;
	size_t                   ncoupons;
} dre_eval_ctx;

// A request the engine refuses (PRODUCT-DECISIONS §1).
typedef struct {
	int         status; // 400
	const char *code; // static: VALIDATION_FAILED
	char        message[160];
	char        target[64];
} dre_eval_error;

// dre_evaluate prices req against ix for ctx. On success *respp is the
// complete response, allocated in a (pack it, never free it with
// protobuf-c); its strings may be borrowed from ix, so pack it before
// releasing ix. DRE_EINVAL with *err filled when the request is refused
// (unknown posGroupCode, a line total beyond Decimal(15,2)); DRE_ENOMEM when
// the arena is exhausted. The rules are README-engine.md's.
dre_err dre_evaluate(Dre__EvaluateResponse **respp, dre_arena *a,
    const dre_index *ix, const Dre__EvaluateRequest *req,
    const dre_eval_ctx *ctx, dre_eval_error *err);

#endif
