// engine.h -- the promotion engine: an immutable per-tenant master-data index
// and the evaluation of one basket against it.
//
// The index is a refcounted immutable snapshot. Writers (snapshot load, one
// change from the feed) build a new version beside the current one and swap
// the pointer; readers take a reference and never wait for a writer's build.
// A writer may also stage several changes (a batch of the feed) and publish
// them in one swap: readers see all of them or none.
// Evaluation allocates everything from the caller's per-basket arena.
#ifndef ENG_ENGINE_H
#define ENG_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/arena.h"
#include "dre/err.h"
#include "evaluate.pb-c.h"

typedef enum {
	ENG_MK_PROMOTION = 0,
	ENG_MK_ARTICLE,
	ENG_MK_POS_GROUP,
	ENG_MK_ARTICLE_GROUP,
	ENG_MK_TENANT_SETTINGS, // key "settings": { enableProductionNudges,
	                        // currency }
} eng_master_kind;

// eng_master_kind_parse maps the wire literals PROMOTION | ARTICLE |
// POS_GROUP | ARTICLE_GROUP | TENANT_SETTINGS; DRE_EINVAL otherwise.
dre_err     eng_master_kind_parse(eng_master_kind *out, const char *s);
const char *eng_master_kind_name(eng_master_kind k);

// One master-data change: an upsert (doc != NULL) or a delete (doc NULL) of
// the entity kind/key of tenant at catalog version `version`. Borrowed for
// the call; the engine copies what it keeps.
typedef struct {
	eng_master_kind kind;
	const char     *tenant;
	const char     *key;
	int64_t         version;
	const char     *doc; // JSON document; NULL = delete
	size_t          doc_len;
} eng_master_change;

typedef struct eng_engine eng_engine;
typedef struct eng_index  eng_index;

// eng_alloc creates an engine holding an empty index. Caller frees
// with eng_free().
dre_err eng_alloc(eng_engine **ep);
// eng_free releases the engine; readers must have released every
// index they acquired. NULL is a no-op.
void eng_free(eng_engine *e);

// eng_load replaces the whole index by the n changes (a snapshot:
// only upserts matter; for one key the highest version wins). Documents that
// do not parse are skipped and counted in *nbadp (if not NULL). now_ms
// becomes the data age.
dre_err eng_load(eng_engine *e, const eng_master_change *v, size_t n,
    int64_t now_ms, size_t *nbadp);

// eng_apply applies one change if its version is newer than what the
// index holds for kind/key (deletes leave a tombstone so that an older
// upsert arriving later is ignored). *appliedp (if not NULL) tells whether
// it was. DRE_EINVAL when the document does not parse (nothing changes).
dre_err eng_apply(
    eng_engine *e, const eng_master_change *c, int64_t now_ms, bool *appliedp);

// eng_stage_load and eng_stage are eng_load and
// eng_apply without the swap: they build on the staged version (if
// any, else the current one) and stage the result, which readers do not see
// until eng_publish swaps it in; eng_discard drops it. One
// writer stages at a time (eng_load and eng_apply publish
// whatever is staged).
dre_err eng_stage_load(eng_engine *e, const eng_master_change *v, size_t n,
    int64_t now_ms, size_t *nbadp);
dre_err eng_stage(
    eng_engine *e, const eng_master_change *c, int64_t now_ms, bool *appliedp);
void eng_publish(eng_engine *e);
void eng_discard(eng_engine *e);

// A load in parts (a snapshot as its pages arrive, a local copy as it is
// read): eng_loader_add compiles changes (what they point to may be freed
// once it returns; a document that does not parse is counted, see
// eng_loader_bad), eng_loader_finish builds the index of everything added
// -- what eng_load of them all at once builds -- and stages it (publish:
// swaps it in) and frees the loader, also on failure. Only the compiled
// entities are kept between calls, not the documents.
typedef struct eng_loader eng_loader;
dre_err                   eng_loader_open(eng_loader **lp);
dre_err eng_loader_add(eng_loader *l, const eng_master_change *v, size_t n);
size_t  eng_loader_bad(const eng_loader *l);
dre_err eng_loader_finish(
    eng_engine *e, eng_loader *l, int64_t now_ms, bool publish);
// eng_loader_free drops a load (NULL is a no-op).
void eng_loader_free(eng_loader *l);

// eng_acquire returns the current index with a reference held.
// Caller releases with eng_index_release(); the index never changes.
//
// Ownership rule: everything reached through an index -- promotion
// documents, ids, names, texts, and so every string a eng_evaluate response
// points at -- is borrowed from it and valid only until the reference is
// released. A writer may swap in a new version at any moment and the
// release of the last reference frees the old one, so hold the reference
// until the last use: for an evaluation, until its response is packed onto
// the wire (services/evaluator/handlers.c h_evaluate).
const eng_index *eng_acquire(eng_engine *e);
void             eng_index_release(const eng_index *ix);

// eng_wait waits up to timeout_ms until the current index is no
// longer seen (a reference the caller holds, so it cannot be freed and
// reused meanwhile); true when it changed. For callers waiting for a change
// to be applied (read-your-writes): check, wait, acquire again.
bool eng_wait(eng_engine *e, const eng_index *seen, int timeout_ms);

// eng_index_version is the highest catalog version applied (0 when empty).
int64_t eng_index_version(const eng_index *ix);
// eng_index_data_age is when the last change was applied (epoch millis; 0 =
// never).
int64_t eng_index_data_age(const eng_index *ix);
// eng_index_promotions counts the live promotions of tenant (NULL = all).
size_t eng_index_promotions(const eng_index *ix, const char *tenant);
// What of the loyalty service the live promotions of a tenant need, for a
// basket of a known customer: its assignments (a PERSONAL promotion) and
// its level (a LOYALTY_TIER condition, when the basket states no tier).
enum { ENG_LOYALTY_PERSONAL = 1, ENG_LOYALTY_TIER = 2 };
// eng_index_loyalty_needs is the ENG_LOYALTY_* set of tenant (kept with
// the index, no scan per call).
unsigned eng_index_loyalty_needs(const eng_index *ix, const char *tenant);
// eng_index_bytes is the memory the index's tenants and entities take; it
// sets *entities (when not NULL) to their number, tombstones included.
size_t eng_index_bytes(const eng_index *ix, size_t *entities);
// eng_index_version_of returns the version the index holds for kind/key of
// tenant (tombstones included), or -1.
int64_t eng_index_version_of(const eng_index *ix, const char *tenant,
    eng_master_kind kind, const char *key);

struct dre_promo;

// ---- budgets (engine_budget.c)
//
// The evaluator's view of which budgets are exhausted, fed by the budget
// service (snapshot + dre.budgets.status) and by side-effect results. Thread
// safe; each entry keeps the highest version seen.
typedef struct eng_budget_set eng_budget_set;

dre_err eng_budget_set_alloc(eng_budget_set **bp);
void    eng_budget_set_free(eng_budget_set *b); // NULL is a no-op
// eng_budget_set_update records the state of budget_id of tenant at
// version; an older version than the one held is ignored. Returns true when
// the entry changed.
bool eng_budget_set_update(eng_budget_set *b, const char *tenant,
    const char *budget_id, int64_t version, bool exhausted);
// eng_budget_set_clear forgets everything (before a snapshot is loaded).
void eng_budget_set_clear(eng_budget_set *b);
bool eng_budget_set_exhausted(
    const eng_budget_set *b, const char *tenant, const char *budget_id);
// eng_budget_set_version is the version of the state held for budget_id of
// tenant, -1 when none is.
int64_t eng_budget_set_version(
    const eng_budget_set *b, const char *tenant, const char *budget_id);
// eng_budget_set_count is the number of exhausted budgets held.
size_t eng_budget_set_count(const eng_budget_set *b);

// The promotions an evaluation dropped because a budget is exhausted.
typedef struct {
	Dre__BudgetLimitedPromotion **v;
	size_t                        n, cap;
} eng_budget_limited;

// eng_budget_check is the budget stage of PRODUCT-DECISIONS §3: true when
// one of p's budgets is exhausted for tenant; then p is listed in out (its
// entries allocated in a) and *reason says which budget.
bool eng_budget_check(const eng_budget_set *b, const char *tenant,
    const struct dre_promo *p, dre_arena *a, eng_budget_limited *out,
    const char **reason);

// eng_index_promotion returns the live promotion id of tenant, or NULL.
// Borrowed from ix (valid while the caller holds it).
const struct dre_promo *eng_index_promotion(
    const eng_index *ix, const char *tenant, const char *id);

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
} eng_coupon_result;

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
	const eng_budget_set *budgets; // NULL = no budget is exhausted
	// One result per request coupon, in order (ncoupons == the request's
	// n_coupons). NULL = the coupon service was not asked or did not
	// answer: every code is invalid with reason UNAVAILABLE.
	const eng_coupon_result *coupons;
	size_t                   ncoupons;
	// The promotions the basket's customer holds a valid, unredeemed
	// assignment of (PRODUCT-DECISIONS §8): a PERSONAL promotion applies
	// only when listed (its id or externalId). loyalty_unavailable: the
	// loyalty service was asked and did not answer in time; no personal
	// promotion applies and the answer warns LOYALTY_UNAVAILABLE.
	const char *const *assigned;
	size_t             nassigned;
	bool               loyalty_unavailable;
} eng_eval_ctx;

// A request the engine refuses (PRODUCT-DECISIONS §1).
typedef struct {
	int         status; // 400
	const char *code; // static: VALIDATION_FAILED
	char        message[160];
	char        target[64];
} eng_eval_error;

// eng_evaluate prices req against ix for ctx. On success *respp is the
// complete response, allocated in a (pack it, never free it with
// protobuf-c); its strings may be borrowed from ix, so pack it before
// releasing ix. DRE_EINVAL with *err filled when the request is refused
// (unknown posGroupCode, a line total beyond Decimal(15,2)); DRE_ENOMEM when
// the arena is exhausted. The rules are README-engine.md's.
dre_err eng_evaluate(Dre__EvaluateResponse **respp, dre_arena *a,
    const eng_index *ix, const Dre__EvaluateRequest *req,
    const eng_eval_ctx *ctx, eng_eval_error *err);

#endif
