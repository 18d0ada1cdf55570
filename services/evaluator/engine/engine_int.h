// engine_int.h -- the state of one evaluation, shared by the engine*.c files
// (pipeline, conditions, actions, best price, hints). Not part of the API.
#ifndef ENG_ENGINE_INT_H
#define ENG_ENGINE_INT_H

#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>

#include "dre/money.h"
#include "engine.h"
#include "index.h"

// Stages a promotion reaches first (its conditions that depend on other
// promotions' discounts are checked there).
enum { ST_LINE = 0, ST_RECEIPT, ST_LOYALTY, ST_NONE };

// One basket line as the engine sees it.
typedef struct {
	const Dre__BasketItem *it;
	char                  *ref;
	const char            *grp; // line's articleGroupId, else the master's
	const char            *manu; // likewise for manufacturerId
	int64_t                total; // lineTotal
	int64_t                qty; // thousandths
	int64_t                price; // unitPrice
	bool                   sale;
	uint32_t               h_art, h_grp, h_manu; // ix_hash, 0 if none
} ev_line;

// Outcome of the static condition check of one promotion.
typedef struct {
	uint32_t nfail; // conditions that do not hold
	uint32_t nmet;
	int32_t  fail; // index of the first failing condition, -1 = none
	int64_t  have, need; // of that condition when quantitative
	bool     qty_kind; // have/need are quantities (else amounts)
} ev_cres;

// One promotion that passed every stage before the combination (an
// "application"), with what the actions may touch in this basket.
typedef struct {
	const ix_ent    *e;
	const dre_promo *p;
	uint32_t         cand; // index in the candidate list
	uint64_t        *sel; // lines the article-type conditions selected
	uint32_t       **elig; // per action: eligible sale lines
	uint32_t        *nelig;
	uint64_t        *pot; // every line an action may touch
	uint8_t          stage; // ST_*: where its dynamic conditions run
	bool             conflict; // member of the conflict set
	bool             receipt_excl, line_excl;
	// results of the last run
	int64_t contrib; // discounts + give-away value
	bool    failed; // a dynamic condition did not hold
	bool    lost; // did worse than at the gross subtotal (threshold)
	bool    blocked; // lines it wanted were held by a LINE promotion
	bool    empty; // applied, nothing to give (no tier, no bundle, ...)
	bool    granted; // injected a free item
	int64_t dyn_have, dyn_need; // the failing dynamic threshold
	int64_t points; // loyalty points (recording run)
	int64_t tier_amount; // SCALED_RECEIPT: subtotal its tier was read at
	const char *coupon; // code that triggered it (couponCode), NULL
} ev_app;

// One discount of one promotion on one line (the recording run only).
typedef struct ev_ldisc ev_ldisc;
struct ev_ldisc {
	uint32_t      app;
	dre_disc_type dt;
	int64_t       value;
	int64_t       amount;
	ev_ldisc     *next;
};

typedef struct ev_grant ev_grant;
struct ev_grant {
	Dre__GrantedItem *g;
	ev_grant         *next;
};

// Per-run state over the lines.
typedef struct {
	int64_t  *rem; // remaining net of each line
	int32_t  *owner; // app holding the line (LINE exclusivity), -1
	uint16_t *ndisc; // promotions with a discount on the line
	int32_t  *first_app; // first app that discounted the line
	int64_t  *bundled; // units (thousandths) already in a bundle
	int64_t   line_net; // sale subtotal after the line stage so far
	int64_t   saving; // the objective: discounts + give-away value
	// scratch of the promotion being applied
	int64_t       *amt;
	dre_disc_type *fdt;
	int64_t       *fval;
	bool          *gift;
	uint32_t      *touched;
	uint32_t       ntouched;
	// receipt scratch (lines, weights, shares) and distribute's
	uint32_t *rx;
	int64_t  *rw, *rshare;
	int64_t  *dfrac, *dbase;
	uint32_t *dord;
	bool     *dout;
	int32_t   split_until; // receipt apps before it split over lines
	int64_t   unsplit; // receipt discounts of the run not split
	// recording (final run)
	bool       rec;
	ev_ldisc **head, **tail;
	uint16_t  *nld;
	int32_t   *free_app; // gift branch: app that made the line free
	ev_grant  *grants, *grants_tail;
	uint32_t   ngrants;
	int32_t    force; // app whose conditions are taken as met, -1
	int64_t    force_amount; // subtotal assumed for a forced app
} ev_run;

// A near miss or hint found for a candidate (static) or an applied
// promotion (dynamic).
typedef struct {
	const ix_ent *e;
	int32_t       app; // app index when it comes from a run, else -1
	const char   *kind; // NEAR_MISS | HINT
	const char   *code;
	int32_t       cond; // failing condition, -1 = an action's own need
	int32_t       action;
	int64_t       have, need;
	int           match; // percent, NEAR_MISS only
	const char   *gap_type; // RECEIPT_AMOUNT | ITEM_QUANTITY |
	                      // SCALED_RECEIPT | MISSING_ARTICLE
	uint32_t  rank;
	uint64_t *sel; // lines its article-type conditions selected
} ev_miss;

typedef struct ev ev;
struct ev {
	jmp_buf                     oom;
	dre_arena                  *a;
	char                       *bump, *bump_end; // see ev_get
	const Dre__EvaluateRequest *req;
	const eng_eval_ctx         *ctx;
	const ix_tenant            *t;
	const char                 *currency;
	ev_line                    *lines;
	uint32_t                    n;
	uint32_t                    words; // bitmap words per line set
	int64_t                     ts;
	int64_t                     gross; // sale subtotal
	uint32_t                   *sale_lines; // indexes of the sale lines
	uint32_t                    nsale;
	uint64_t                   *sale_bits;
	int64_t                     units; // sale quantity, thousandths
	const char                 *pg[4]; // request id, code; resolved
	Dre__Warning *warnings[2]; // UNKNOWN_POS_GROUP, LOYALTY_UNAVAILABLE
	uint32_t      nwarnings;
	const char   *channel_lc;
	// candidates and what became of them
	uint32_t    *cand; // ranks
	uint32_t     ncand;
	const char **stage; // per candidate: stage it fell out at, NULL
	const char **reason;
	bool         want_missed;
	bool         nudges;
	// applications
	ev_app  *apps;
	uint32_t napps;
	uint8_t *chosen; // per app: in the final combination
	ev_run   run;
	int64_t  net_after_lines; // of the chosen combination
	// hints
	ev_miss           *miss;
	uint32_t           nmiss, capmiss;
	eng_budget_limited limited; // engine_budget.c
	// coupons (engine_coupon.c); all NULL/0 when the basket has none
	uint32_t     ncoup; // request coupons
	const char **coup_bad; // per coupon: invalid reason, NULL = applied
	const eng_coupon_result *coup; // per coupon: the check's result
	int32_t *cand_coupon; // per candidate: coupon that triggers it, -1
};

// ev_get returns n zeroed bytes and never NULL: an exhausted arena unwinds
// to eng_evaluate. It bumps a pointer through zeroed chunks taken from the
// arena (one library call per 16 KiB instead of one per object).
void *ev_get_slow(ev *v, size_t n);

static inline void *
ev_get(ev *v, size_t n)
{
	n = (n + 15) & ~(size_t) 15;
	if (n == 0)
		n = 16;
	if ((size_t) (v->bump_end - v->bump) < n)
		return ev_get_slow(v, n);
	void *p = v->bump;
	v->bump += n;
	return p;
}
char *ev_printf(ev *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline bool
nonempty(const char *s)
{
	return s != NULL && *s != '\0';
}

static inline void
bit_set(uint64_t *b, uint32_t i)
{
	b[i >> 6] |= UINT64_C(1) << (i & 63);
}

static inline bool
bit_get(const uint64_t *b, uint32_t i)
{
	return (b[i >> 6] >> (i & 63)) & 1;
}

// ev_round rounds num/den minor units with the promotion's rounding at its
// precision; NONE skips the precision and only makes whole minor units.
int64_t ev_round(const dre_promo *p, __int128 num, __int128 den);

// engine_cond.c
// ev_conditions checks every condition of e against the basket (amounts at
// the gross subtotal); sel receives the lines the article-type conditions
// selected. True when all hold.
bool ev_conditions(ev *v, const ix_ent *e, uint64_t *sel, ev_cres *cr);
// ev_target_line: line li is in the target of action ai of e.
bool ev_target_line(const ev *v, const ix_ent *e, uint32_t ai, uint32_t li);
// ev_app_prepare fills the eligible lines of each action of a.
void ev_app_prepare(ev *v, ev_app *a);
// ev_dyn_ok checks the conditions of a that depend on other promotions
// against the run's current subtotal.
bool ev_dyn_ok(ev *v, ev_app *a);

// engine_act.c
void ev_run_reset(ev *v, bool rec);
// ev_run_apps runs the apps flagged in `in` (line stage, receipt stage,
// then loyalty when recording); returns the objective. ev_run_line and
// ev_run_receipt are its two halves.
int64_t ev_run_apps(ev *v, const uint8_t *in);
void    ev_run_line(ev *v, const uint8_t *in);
int64_t ev_run_receipt(ev *v, const uint8_t *in);
// ev_receipt_lost, after the line stage: does a receipt-stage promotion of
// `in` miss a threshold (or reach a lower tier) that the gross subtotal
// meets? Marks those apps lost.
bool    ev_receipt_lost(ev *v, const uint8_t *in);
int64_t ev_receipt_tier_value(
    const dre_promo_action *ac, int64_t amount, const dre_promo_tier **tp);

// engine_coupon.c
// ev_coupons_decide judges the basket's coupons in order (invalid,
// DUPLICATE, NOT_STACKABLE) and adds the promotions of the applied ones to
// the candidates, tagged (v->cand_coupon). After candidates().
void ev_coupons_decide(ev *v);
// ev_coupon_gate: a promotion that lists couponTypeIds and no applied
// coupon triggered: its COUPON-stage reason (NULL unless want_missed).
const char *ev_coupon_gate(ev *v, const dre_promo *p);
// ev_coupons_respond fills appliedCoupons and invalidCoupons.
void ev_coupons_respond(ev *v, Dre__EvaluateResponse *r);
bool ev_app_applied(const ev *v, uint32_t ax);

// engine_best.c
// ev_best_price picks the combination and leaves the recording of its run
// in v->run; v->chosen marks it.
void ev_best_price(ev *v);

// engine_hint.c
void ev_miss_static(
    ev *v, const ix_ent *e, uint32_t rank, const ev_cres *cr, uint64_t *sel);
void ev_miss_dynamic(ev *v);
void ev_hints(ev *v, Dre__EvaluateResponse *r);

#endif
