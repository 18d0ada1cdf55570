// engine.c -- prices one basket against an index version (PRODUCT-DECISIONS
// §3 resolution order), everything allocated in the basket's arena:
// candidates through the index -> status, validity, time window, POS group
// -> budget (engine_budget.c) -> conditions -> best-price combination
// (engine_best.c) of line actions, receipt actions and loyalty (engine_act.c)
// -> hints (engine_hint.c) -> the response.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dre/json.h"
#include "engine_int.h"

#define EV_CHUNK (16 * 1024)

void *
ev_get_slow(ev *v, size_t n)
{
	if (n >= EV_CHUNK / 4) { // big: its own allocation
		void *p = dre_arena_get(v->a, n);
		if (p == NULL)
			longjmp(v->oom, 1);
		return p;
	}
	char *c = dre_arena_get(v->a, EV_CHUNK); // zeroed
	if (c == NULL)
		longjmp(v->oom, 1);
	v->bump = c + n;
	v->bump_end = c + EV_CHUNK;
	return c;
}

char *
ev_printf(ev *v, const char *fmt, ...)
{
	char    tmp[512];
	va_list ap;
	va_start(ap, fmt);
	int len = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (len < 0)
		len = 0;
	if ((size_t) len >= sizeof(tmp))
		len = sizeof(tmp) - 1;
	char *s = ev_get(v, (size_t) len + 1);
	memcpy(s, tmp, (size_t) len);
	return s;
}

// ---- stages before the conditions ------------------------------------------

// in_time_windows reads the windows in the promotion's time zone at the
// transaction time: a window from <= t < to on one of its days; a window
// whose end is before its start runs past midnight into the next day.
static bool
in_time_windows(const ix_ent *e, int64_t ts)
{
	const dre_promo *p = e->promo;
	if (p->nwindows == 0)
		return true;
	int64_t s = ts / 1000 - (ts % 1000 < 0);
	s += ix_zone_offset(e->cp.zone, s);
	int64_t day = s / 86400, sec = s % 86400;
	if (sec < 0) {
		sec += 86400;
		day--;
	}
	int wd = (int) (((day + 3) % 7 + 7) % 7); // 1970-01-01 was a Thursday
	int min = (int) (sec / 60);
	for (uint32_t i = 0; i < p->nwindows; i++) {
		const dre_time_window *w = &p->windows[i];
		if (w->from_min < w->to_min) {
			if ((w->days & (1u << wd)) && min >= w->from_min
			    && min < w->to_min)
				return true;
		} else { // wraps past midnight: started today or yesterday
			int yd = (wd + 6) % 7;
			if (((w->days & (1u << wd)) && min >= w->from_min)
			    || ((w->days & (1u << yd)) && min < w->to_min))
				return true;
		}
	}
	return false;
}

static bool
pos_group_ok(const ev *v, const dre_promo *p)
{
	if (p->pos_groups.n == 0)
		return true;
	for (uint32_t i = 0; i < p->pos_groups.n; i++)
		for (int k = 0; k < 4; k++)
			if (v->pg[k] != NULL
			    && strcmp(p->pos_groups.v[i], v->pg[k]) == 0)
				return true;
	return false;
}

// assigned tells whether the basket's customer holds an assignment of the
// PERSONAL promotion p (by its id or its externalId).
static bool
assigned(const ev *v, const dre_promo *p)
{
	for (size_t i = 0; i < v->ctx->nassigned; i++) {
		const char *a = v->ctx->assigned[i];
		if (a != NULL
		    && (strcmp(a, p->id) == 0
		        || (p->external_id != NULL
		            && strcmp(a, p->external_id) == 0)))
			return true;
	}
	return false;
}

// prefilter returns the stage a promotion falls out at, or NULL. One a
// coupon triggered (coupon >= 0) skips validity and POS group; one that
// needs a coupon and was not triggered falls out at COUPON.
static const char *
prefilter(ev *v, const ix_ent *e, int32_t coupon, const char **reason)
{
	const dre_promo *p = e->promo;
	bool inactive_ok = v->ctx->simulate && v->req->has_include_inactive
	    && v->req->include_inactive;
	if (!(p->status == DRE_PS_ACTIVE
	        || (inactive_ok && p->status == DRE_PS_INACTIVE))) {
		*reason = v->want_missed ? ev_printf(v, "status is %s",
		              dre_promo_status_name(p->status))
		                         : NULL;
		return "STATUS";
	}
	if (coupon < 0 && p->coupon_type_ids.n > 0) {
		*reason = ev_coupon_gate(v, p);
		return "COUPON";
	}
	if (coupon >= 0) {
		if (!in_time_windows(e, v->ts)) {
			*reason = "outside its time windows";
			return "TIME_WINDOW";
		}
		if (strcmp(p->currency, v->currency) != 0) {
			*reason = "priced in another currency than the basket";
			return "CURRENCY";
		}
		return NULL;
	}
	if (v->ts < p->valid_from) {
		*reason = "not yet valid at the transaction time";
		return "VALIDITY";
	}
	if (v->ts > p->valid_to) {
		*reason = "expired at the transaction time";
		return "VALIDITY";
	}
	if (!in_time_windows(e, v->ts)) {
		*reason = v->want_missed
		    ? ev_printf(v, "outside its time windows (%s)",
		        p->timezone ? p->timezone : "UTC")
		    : NULL;
		return "TIME_WINDOW";
	}
	if (!pos_group_ok(v, p)) {
		*reason = "not offered in this POS group";
		return "POS_GROUP";
	}
	if (strcmp(p->currency, v->currency) != 0) {
		*reason = v->want_missed
		    ? ev_printf(v, "priced in %s, the basket is in %s",
		        p->currency, v->currency)
		    : NULL;
		return "CURRENCY";
	}
	if (p->assignment == DRE_ASSIGN_PERSONAL && !assigned(v, p)) {
		*reason = v->ctx->loyalty_unavailable
		    ? "personal: the loyalty service did not answer"
		    : "personal: not assigned to the basket's customer";
		return "ASSIGNMENT";
	}
	return NULL;
}

// ---- candidates
// ---------------------------------------------------------------------

static int
u32_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *) x, b = *(const uint32_t *) y;
	return a < b ? -1 : a > b;
}

// thr_upto counts the entries of l with a threshold of at most v.
static uint32_t
thr_upto(const ix_thrlist *l, int64_t v)
{
	uint32_t lo = 0, hi = l->n;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (l->v[mid].v <= v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

// candidates lists the ranks of the promotions the basket can reach
// through the index (sorted, unique): by its lines' articles, groups,
// manufacturers and additional-field keys, by its channel and user-defined
// keys, and by the amount and quantity thresholds within reach (up to twice
// the basket: what is nearer than that is a near miss). Cost follows the
// basket, not the number of promotions.
static void
candidates(ev *v)
{
	const ix_tenant *t = v->t;
	if (v->want_missed) { // the diagnostic explains every promotion
		v->cand = ev_get(v, (t->npromos + 1) * sizeof(uint32_t));
		for (uint32_t r = 0; r < t->npromos; r++)
			v->cand[r] = r;
		v->ncand = t->npromos;
		return;
	}
	// Rank lists the basket's keys reach: (count, ranks) pairs.
	uint32_t cap = 4 * v->n + (uint32_t) v->req->n_user_defined_fields + 2;
	const uint32_t **lr = ev_get(v, cap * sizeof(*lr));
	uint32_t        *ln = ev_get(v, cap * sizeof(*ln));
	uint32_t         nl = 0, total = t->unscoped.n;
	// The maps are large and cold: start loading every slot the basket
	// will probe before probing the first.
	for (uint32_t i = 0; i < v->n; i++) {
		const ev_line *l = &v->lines[i];
		ix_mmap_prefetch(&t->by_article, l->h_art);
		if (l->grp)
			ix_mmap_prefetch(&t->by_group, l->h_grp);
		if (l->manu)
			ix_mmap_prefetch(&t->by_manu, l->h_manu);
	}
	for (uint32_t i = 0; i < v->n; i++) {
		const ev_line *l = &v->lines[i];
		if (!l->sale)
			continue;
		const ix_mmap *maps[3]
		    = { &t->by_article, &t->by_group, &t->by_manu };
		const char *keys[3]
		    = { l->it->article_number, l->grp, l->manu };
		uint32_t hs[3] = { l->h_art, l->h_grp, l->h_manu };
		for (int k = 0; k < 3; k++)
			if ((ln[nl] = ix_mmap_get_h(
			         maps[k], keys[k], hs[k], &lr[nl]))
			    > 0)
				total += ln[nl++];
		for (size_t f = 0;
		     f < l->it->n_additional_fields && nl + 1 < cap; f++) {
			const char *key = l->it->additional_fields[f]->key;
			if ((ln[nl] = ix_mmap_get_h(
			         &t->by_addf, key, ix_hash(key), &lr[nl]))
			    > 0)
				total += ln[nl++];
		}
	}
	if (v->channel_lc != NULL && nl < cap
	    && (ln[nl] = ix_mmap_get_h(&t->by_channel, v->channel_lc,
	            ix_hash(v->channel_lc), &lr[nl]))
	        > 0)
		total += ln[nl++];
	for (size_t f = 0; f < v->req->n_user_defined_fields && nl < cap;
	     f++) {
		const char *key = v->req->user_defined_fields[f]->key;
		if ((ln[nl] = ix_mmap_get_h(
		         &t->by_udf, key, ix_hash(key), &lr[nl]))
		    > 0)
			total += ln[nl++];
	}
	uint32_t na = thr_upto(&t->by_amount, 2 * v->gross);
	uint32_t nu = thr_upto(&t->by_units, 2 * v->units);
	total += na + nu;
	uint32_t *c = ev_get(v, (total + 1) * sizeof(uint32_t));
	uint32_t  m = t->unscoped.n;
	memcpy(c, t->unscoped.rank, t->unscoped.n * sizeof(uint32_t));
	for (uint32_t k = 0; k < nl; k++) {
		memcpy(c + m, lr[k], ln[k] * sizeof(uint32_t));
		m += ln[k];
	}
	for (uint32_t k = 0; k < na; k++)
		c[m++] = t->by_amount.v[k].rank;
	for (uint32_t k = 0; k < nu; k++)
		c[m++] = t->by_units.v[k].rank;
	uint32_t u = 0;
	if ((size_t) m * 8 >= t->npromos / 64) {
		// Many candidates: marking ranks in a bitmap sorts and dedupes
		// in O(m + promotions/64) with no comparisons.
		uint32_t  nw = (t->npromos + 63) / 64;
		uint64_t *mark = ev_get(v, (nw + 1) * sizeof(uint64_t));
		for (uint32_t i = 0; i < m; i++)
			bit_set(mark, c[i]);
		for (uint32_t w = 0; w < nw; w++)
			for (uint64_t b = mark[w]; b != 0; b &= b - 1)
				c[u++]
				    = w * 64 + (uint32_t) __builtin_ctzll(b);
	} else {
		qsort(c, m, sizeof(uint32_t), u32_cmp);
		for (uint32_t i = 0; i < m; i++)
			if (u == 0 || c[u - 1] != c[i])
				c[u++] = c[i];
	}
	v->cand = c;
	v->ncand = u;
}

// ---- response
// -------------------------------------------------------------------

static Dre__RequestHeader *
header_echo(ev *v)
{
	const Dre__RequestHeader *in = v->req->header;
	Dre__RequestHeader       *h = ev_get(v, sizeof(*h));
	dre__request_header__init(h);
	h->transaction_id = (char *) (nonempty(v->ctx->transaction_id)
	        ? v->ctx->transaction_id
	        : (in ? in->transaction_id : NULL));
	h->has_transaction_counter = true;
	h->transaction_counter = v->ctx->counter;
	if (in != NULL) {
		h->receipt_id = in->receipt_id;
		h->header_reference = in->header_reference;
	}
	return h;
}

bool
ev_app_applied(const ev *v, uint32_t ax)
{
	const ev_app *a = &v->apps[ax];
	return v->chosen[ax] && !a->failed
	    && (a->contrib > 0 || a->points != 0 || a->granted
	        || a->e->cp.issues_coupons);
}

static void
line_items(ev *v, Dre__EvaluateResponse *r, int64_t *sale, int64_t *ret,
    int64_t *disc, bool *returns)
{
	ev_run      *run = &v->run;
	Dre__Totals *tot = r->totals;
	r->line_items = ev_get(v, v->n * sizeof(Dre__LineItem *));
	tot->item_savings = ev_get(v, v->n * sizeof(Dre__ItemSavings *));
	for (uint32_t i = 0; i < v->n; i++) {
		ev_line       *l = &v->lines[i];
		Dre__LineItem *li = ev_get(v, sizeof(*li));
		dre__line_item__init(li);
		li->line_reference = l->ref;
		li->article_number = l->it->article_number;
		li->ean = l->it->ean;
		li->article_group_id = l->it->article_group_id;
		li->manufacturer_id = l->it->manufacturer_id;
		li->quantity = l->it->quantity;
		li->unit_price = l->it->unit_price;
		li->line_total = l->total;
		li->discounts = ev_get(
		    v, (run->nld[i] + 1) * sizeof(Dre__LineDiscount *));
		int64_t ld = 0;
		for (ev_ldisc *x = run->head[i]; x != NULL; x = x->next) {
			const dre_promo   *p = v->apps[x->app].p;
			Dre__LineDiscount *d = ev_get(v, sizeof(*d));
			dre__line_discount__init(d);
			d->promotion_id = (char *) p->id;
			d->promotion_name = (char *) (p->name ? p->name : "");
			d->promotion_type
			    = (char *) dre_promo_type_name(p->type);
			d->discount_type = (char *) dre_disc_type_name(x->dt);
			d->discount_value = x->value;
			d->discount_amount = x->amount;
			d->coupon_code = (char *) v->apps[x->app].coupon;
			d->has_triggered_by_coupon = true;
			d->triggered_by_coupon = d->coupon_code != NULL;
			li->discounts[li->n_discounts++] = d;
			ld += x->amount;
		}
		li->line_discount = ld;
		li->line_net = l->total - ld;
		li->has_is_free_item = true;
		li->is_free_item = run->free_app[i] >= 0;
		if (li->is_free_item)
			li->free_item_promotion_id
			    = (char *) v->apps[run->free_app[i]].p->id;
		r->line_items[r->n_line_items++] = li;
		if (l->sale)
			*sale += l->total;
		else {
			*ret += l->total;
			*returns = true;
		}
		*disc += ld;
		if (ld > 0) {
			Dre__ItemSavings *s = ev_get(v, sizeof(*s));
			dre__item_savings__init(s);
			s->article_number = l->it->article_number;
			s->original_price = l->total;
			s->final_price = l->total - ld;
			s->savings = ld;
			tot->item_savings[tot->n_item_savings++] = s;
		}
	}
}

// breakdown lists every promotion that gave anything (a discount, a free
// item or points), in application (rank) order: one pass over the lines'
// discounts to count, one to fill the affected lines in basket order.
static void
breakdown(ev *v, Dre__Totals *tot)
{
	ev_run                   *run = &v->run;
	uint32_t                  n = v->napps;
	Dre__PromotionBreakdown **of = ev_get(v, (n + 1) * sizeof(*of));
	tot->promotion_breakdown = ev_get(v, (n + 1) * sizeof(*of));
	int64_t points = 0;
	for (uint32_t ax = 0; ax < n; ax++) {
		if (!ev_app_applied(v, ax))
			continue;
		const dre_promo         *p = v->apps[ax].p;
		Dre__PromotionBreakdown *b = ev_get(v, sizeof(*b));
		dre__promotion_breakdown__init(b);
		b->promotion_id = (char *) p->id;
		b->promotion_name = (char *) (p->name ? p->name : "");
		of[ax] = b;
		tot->promotion_breakdown[tot->n_promotion_breakdown++] = b;
		points += v->apps[ax].points;
	}
	for (uint32_t i = 0; i < v->n; i++)
		for (ev_ldisc *x = run->head[i]; x; x = x->next)
			if (of[x->app] != NULL && x->amount > 0)
				of[x->app]->n_affected_items++;
	for (size_t k = 0; k < tot->n_promotion_breakdown; k++) {
		Dre__PromotionBreakdown *b = tot->promotion_breakdown[k];
		b->affected_items
		    = ev_get(v, (b->n_affected_items + 1) * sizeof(char *));
		b->n_affected_items = 0;
	}
	for (uint32_t i = 0; i < v->n; i++)
		for (ev_ldisc *x = run->head[i]; x; x = x->next)
			if (of[x->app] != NULL && x->amount > 0) {
				Dre__PromotionBreakdown *b = of[x->app];
				b->total_discount += x->amount;
				b->affected_items[b->n_affected_items++]
				    = v->lines[i].ref;
			}
	tot->loyalty_points_earned = points;
}

static void
missed_add(ev *v, uint32_t cand, const char *stage, const char *reason)
{
	v->stage[cand] = stage;
	v->reason[cand] = reason ? reason : "";
}

// missed_apps explains the applicable promotions that gave nothing.
static void
missed_apps(ev *v)
{
	int32_t alone = -1;
	for (uint32_t ax = 0; ax < v->napps; ax++)
		if (v->chosen[ax] && v->apps[ax].receipt_excl)
			alone = (int32_t) ax;
	for (uint32_t ax = 0; ax < v->napps; ax++) {
		ev_app          *a = &v->apps[ax];
		const dre_promo *p = a->p;
		if (ev_app_applied(v, ax))
			continue;
		const char *reason;
		const char *stage = "EXCLUSIVITY";
		if (!v->chosen[ax]) {
			if (alone >= 0)
				reason = ev_printf(v,
				    "receipt-exclusive promotion '%s' applies "
				    "alone",
				    v->apps[alone].p->name);
			else if (a->receipt_excl)
				reason = "receipt-exclusive: the combination "
				         "without it saves the customer more";
			else {
				reason = "a combination without it saves the "
				         "customer more";
				for (uint32_t bx = 0; bx < v->napps; bx++) {
					const dre_promo *q = v->apps[bx].p;
					if (!ev_app_applied(v, bx))
						continue;
					for (uint32_t g = 0;
					     g < p->exclusion_groups.n; g++)
						for (uint32_t h = 0;
						     h < q->exclusion_groups.n;
						     h++)
							if (strcmp(
							        p->exclusion_groups
							            .v[g],
							        q->exclusion_groups
							            .v[h])
							    == 0)
								reason = ev_printf(
								    v,
								    "exclusion"
								    " "
								    "group "
								    "%s: "
								    "'%s' "
								    "saves "
								    "the "
								    "customer "
								    "more",
								    p->exclusion_groups
								        .v[g],
								    q->name);
				}
			}
		} else if (a->failed) {
			stage = "CONDITION";
			char h[32], n[32];
			dre_decimal_format(h, a->dyn_have, DRE_MONEY_SCALE);
			dre_decimal_format(n, a->dyn_need, DRE_MONEY_SCALE);
			reason = ev_printf(v,
			    "condition RECEIPT_AMOUNT not met: %s after line "
			    "discounts, %s required",
			    h, n);
		} else if (a->blocked) {
			reason = "its lines are held by a LINE-exclusive "
			         "promotion";
		} else {
			stage = "CONDITION";
			reason = a->empty
			    ? "conditions met, but no tier, bundle "
			      "or unit to discount"
			    : "conditions met, but nothing left to "
			      "discount";
		}
		missed_add(v, a->cand, stage, reason);
	}
}

static void
missed_list(ev *v, Dre__EvaluateResponse *r)
{
	r->has_include_missed = true;
	r->include_missed = v->want_missed;
	if (!v->want_missed)
		return;
	r->missed_promotions
	    = ev_get(v, (v->ncand + 1) * sizeof(Dre__MissedPromotion *));
	for (uint32_t k = 0; k < v->ncand; k++) {
		if (v->stage[k] == NULL)
			continue;
		const dre_promo      *p = v->t->promos[v->cand[k]]->promo;
		Dre__MissedPromotion *m = ev_get(v, sizeof(*m));
		dre__missed_promotion__init(m);
		m->promotion_id = (char *) p->id;
		m->promotion_name = (char *) (p->name ? p->name : "");
		m->stage = (char *) v->stage[k];
		m->reason = (char *) v->reason[k];
		r->missed_promotions[r->n_missed_promotions++] = m;
	}
}

static Dre__EvaluateResponse *
respond(ev *v, const eng_index *ix)
{
	Dre__EvaluateResponse *r = ev_get(v, sizeof(*r));
	dre__evaluate_response__init(r);
	r->currency = (char *) v->currency;
	r->header = header_echo(v);
	r->evaluated_at_ms = v->ctx->now_ms;
	r->source = (char *) (v->ctx->source ? v->ctx->source : "local-store");
	r->instance_id
	    = (char *) (v->ctx->instance_id ? v->ctx->instance_id : "");
	r->is_simulation = v->ctx->simulate;
	r->tenant_id = (char *) v->ctx->tenant;
	if (ix->data_age > 0) {
		r->has_data_age_ms = true;
		r->data_age_ms = ix->data_age;
	}
	Dre__Totals *tot = ev_get(v, sizeof(*tot));
	dre__totals__init(tot);
	r->totals = tot;
	int64_t sale = 0, ret = 0, disc = 0;
	bool    returns = false;
	line_items(v, r, &sale, &ret, &disc, &returns);
	r->granted_items
	    = ev_get(v, (v->run.ngrants + 1) * sizeof(Dre__GrantedItem *));
	for (ev_grant *g = v->run.grants; g != NULL; g = g->next)
		r->granted_items[r->n_granted_items++] = g->g;
	tot->subtotal = sale + ret;
	tot->discount = disc;
	tot->grand_total = tot->subtotal - disc;
	if (returns) {
		tot->has_sale_subtotal = true;
		tot->sale_subtotal = sale;
		tot->has_return_subtotal = true;
		tot->return_subtotal = ret;
	}
	tot->total_savings = disc;
	// The share of what was bought: returns would distort it (and could
	// push it past 100 %).
	if (sale > 0 && disc > 0) {
		int64_t pct = dre_div_round(
		    (__int128) disc * 10000, sale, DRE_ROUND_HALF_UP);
		tot->savings_percent = pct > 10000 ? 10000 : pct;
	}
	tot->original_total = tot->subtotal;
	tot->final_total = tot->grand_total;
	breakdown(v, tot);
	if (v->t != NULL)
		ev_hints(v, r);
	missed_list(v, r);
	if (v->ncoup > 0)
		ev_coupons_respond(v, r);
	r->budget_limited_promotions = v->limited.v;
	r->n_budget_limited_promotions = v->limited.n;
	if (v->nwarnings > 0) { // v lives on eng_evaluate's stack: copied
		r->warnings = ev_get(v, v->nwarnings * sizeof(*r->warnings));
		memcpy(r->warnings, v->warnings,
		    v->nwarnings * sizeof(*r->warnings));
		r->n_warnings = v->nwarnings;
	}
	return r;
}

// ---- the pipeline
// ---------------------------------------------------------------

// The largest Decimal(15,2) in minor units: a line total beyond it cannot
// be answered (and sums of such lines would leave 64 bits).
#define LINE_TOTAL_MAX 999999999999999LL

static dre_err
lines_prepare(ev *v, eng_eval_error *err)
{
	const Dre__EvaluateRequest *r = v->req;
	v->n = (uint32_t) r->n_items;
	v->words = (v->n + 63) / 64;
	v->lines = ev_get(v, (v->n + 1) * sizeof(ev_line));
	v->sale_lines = ev_get(v, (v->n + 1) * sizeof(uint32_t));
	v->sale_bits = ev_get(v, (v->words + 1) * sizeof(uint64_t));
	for (uint32_t i = 0; i < v->n; i++) {
		ev_line               *l = &v->lines[i];
		const Dre__BasketItem *it = r->items[i];
		l->it = it;
		l->qty = it->quantity;
		l->price = it->unit_price;
		l->sale = it->quantity > 0;
		__int128 tot = (__int128) it->unit_price * it->quantity;
		if (tot > (__int128) LINE_TOTAL_MAX * 1000
		    || tot < -(__int128) LINE_TOTAL_MAX * 1000) {
			if (err != NULL) {
				err->status = 400;
				err->code = "VALIDATION_FAILED";
				snprintf(err->message, sizeof(err->message),
				    "unitPrice x quantity of items[%u] "
				    "exceeds "
				    "Decimal(15,2)",
				    i);
				snprintf(err->target, sizeof(err->target),
				    "items[%u].quantity", i);
			}
			return DRE_EINVAL;
		}
		l->total = dre_mul_qty(it->unit_price, it->quantity);
		l->ref = nonempty(it->line_reference)
		    ? it->line_reference
		    : ev_printf(v, "L%u", i + 1);
		l->grp = nonempty(it->article_group_id) ? it->article_group_id
		                                        : NULL;
		l->manu = nonempty(it->manufacturer_id) ? it->manufacturer_id
		                                        : NULL;
		if ((l->grp == NULL || l->manu == NULL) && v->t != NULL) {
			const ix_ent *art
			    = ix_article(v->t, it->article_number);
			if (art != NULL) {
				if (l->grp == NULL)
					l->grp = art->article_group_id;
				if (l->manu == NULL)
					l->manu = art->manufacturer_id;
			}
		}
		l->h_art = ix_hash(it->article_number);
		l->h_grp = l->grp ? ix_hash(l->grp) : 0;
		l->h_manu = l->manu ? ix_hash(l->manu) : 0;
		if (l->sale) {
			v->gross += l->total;
			v->units += l->qty;
			v->sale_lines[v->nsale++] = i;
			bit_set(v->sale_bits, i);
		}
	}
	if (nonempty(r->channel)) {
		char *c = ev_printf(v, "%s", r->channel);
		for (char *x = c; *x; x++)
			if (*x >= 'A' && *x <= 'Z')
				*x = (char) (*x + 'a' - 'A');
		v->channel_lc = c;
	}
	return DRE_OK;
}

// pos_group_resolve finds the basket's POS group by id or code. An unknown
// one never blocks the sale (PRODUCT-DECISIONS §4c): the basket is priced
// with the all-store promotions only and the answer carries the warning
// UNKNOWN_POS_GROUP naming the field.
static void
pos_group_resolve(ev *v)
{
	const Dre__EvaluateRequest *r = v->req;
	const char                 *target = NULL, *given = NULL;
	if (nonempty(r->pos_group_id)) {
		const ix_ent *pg = v->t
		    ? ix_map_get(&v->t->pg_by_id, r->pos_group_id)
		    : NULL;
		if (pg != NULL) {
			v->pg[0] = r->pos_group_id;
			v->pg[3] = pg->code;
		} else {
			target = "posGroupId";
			given = r->pos_group_id;
		}
	}
	if (nonempty(r->pos_group_code)) {
		const ix_ent *pg = v->t
		    ? ix_map_get(&v->t->pg_by_code, r->pos_group_code)
		    : NULL;
		if (pg != NULL) {
			v->pg[1] = r->pos_group_code;
			v->pg[2] = pg->key;
		} else if (target == NULL) {
			target = "posGroupCode";
			given = r->pos_group_code;
		}
	}
	if (target == NULL)
		return;
	Dre__Warning *w = ev_get(v, sizeof(*w));
	dre__warning__init(w);
	w->code = "UNKNOWN_POS_GROUP";
	w->target = (char *) target;
	w->message = ev_printf(v,
	    "unknown %s '%.*s': priced with the promotions of every store",
	    target, DRE_UTF8_CUT(given, 100));
	v->warnings[v->nwarnings++] = w;
}

// loyalty_warn adds LOYALTY_UNAVAILABLE when the loyalty service was asked
// about the customer's assignments and did not answer in time.
static void
loyalty_warn(ev *v)
{
	if (!v->ctx->loyalty_unavailable)
		return;
	Dre__Warning *w = ev_get(v, sizeof(*w));
	dre__warning__init(w);
	w->code = "LOYALTY_UNAVAILABLE";
	w->target = "customer";
	w->message = "the loyalty service did not answer in time: priced "
	             "without the customer's personal promotions";
	v->warnings[v->nwarnings++] = w;
}

// applicable runs the stages up to the conditions over the candidates;
// the survivors become applications (in rank order).
static void
applicable(ev *v)
{
	v->stage = ev_get(v, (v->ncand + 1) * sizeof(char *));
	v->reason = ev_get(v, (v->ncand + 1) * sizeof(char *));
	v->apps = ev_get(v, (v->ncand + 1) * sizeof(ev_app));
	for (uint32_t k = 0; k < v->ncand; k++) {
		// Candidates are scattered over a large index: ask for the
		// ones a few steps ahead while this one is checked.
		// Three steps, each on what the previous one brought in.
		if (k + 6 < v->ncand)
			__builtin_prefetch(&v->t->promos[v->cand[k + 6]]);
		if (k + 3 < v->ncand)
			__builtin_prefetch(v->t->promos[v->cand[k + 3]]);
		if (k + 1 < v->ncand) {
			const ix_ent *next = v->t->promos[v->cand[k + 1]];
			__builtin_prefetch(next->promo);
			__builtin_prefetch(next->cp.cond);
		}
		const ix_ent *e = v->t->promos[v->cand[k]];
		const char   *reason = NULL;
		int32_t       coupon = v->cand_coupon ? v->cand_coupon[k] : -1;
		const char   *stage = prefilter(v, e, coupon, &reason);
		if (stage != NULL) {
			if (v->want_missed)
				missed_add(v, k, stage, reason);
			continue;
		}
		if (eng_budget_check(v->ctx->budgets, v->ctx->tenant, e->promo,
		        v->a, &v->limited, &reason)) {
			if (v->want_missed)
				missed_add(v, k, "BUDGET", reason);
			continue;
		}
		uint64_t *sel = ev_get(v, (v->words + 1) * sizeof(uint64_t));
		ev_cres   cr;
		if (!ev_conditions(v, e, sel, &cr)) {
			if (v->want_missed)
				missed_add(v, k, "CONDITION",
				    ev_printf(v, "condition %s not met",
				        dre_cond_type_name(
				            e->promo->conds[cr.fail].type)));
			ev_miss_static(v, e, v->cand[k], &cr, sel);
			continue;
		}
		ev_app *a = &v->apps[v->napps++];
		a->e = e;
		a->p = e->promo;
		a->cand = k;
		a->sel = sel;
		a->coupon = coupon >= 0 ? v->coup[coupon].code : NULL;
		a->stage = e->cp.line_stage ? ST_LINE
		    : e->cp.receipt_stage   ? ST_RECEIPT
		    : e->cp.loyalty_stage   ? ST_LOYALTY
		                            : ST_NONE;
		a->receipt_excl = a->p->exclusivity == DRE_EXCL_RECEIPT;
		a->line_excl = a->p->exclusivity == DRE_EXCL_LINE;
		ev_app_prepare(v, a);
	}
}

static dre_err
evaluate_run(ev *v, const eng_index *ix, eng_eval_error *err)
{
	v->t = ix_tenant_find(ix, v->ctx->tenant ? v->ctx->tenant : "");
	v->ts
	    = v->req->has_timestamp_ms ? v->req->timestamp_ms : v->ctx->now_ms;
	v->want_missed = v->req->has_include_missed_promotions
	    && v->req->include_missed_promotions;
	const ix_ent *st = v->t ? v->t->settings : NULL;
	v->nudges = st != NULL && st->nudges;
	v->currency = nonempty(v->req->currency) ? v->req->currency
	    : st != NULL && st->currency         ? st->currency
	    : nonempty(v->ctx->currency)         ? v->ctx->currency
	                                         : "EUR";
	v->run.force = -1;
	if (st != NULL && st->reject_unknown && v->req->n_ignored_fields > 0) {
		// The tenant wants POS requests strict (PRODUCT-DECISIONS §1).
		if (err != NULL) {
			err->status = 400;
			err->code = "VALIDATION_FAILED";
			// Names cut before a character, never inside one:
			// both go into the JSON error body.
			const char *f = v->req->ignored_fields[0];
			size_t      fl = strlen(f);
			snprintf(err->message, sizeof(err->message),
			    "unknown field '%.*s' (the tenant setting "
			    "rejectUnknownFields is on)",
			    (int) dre_utf8_cut(f, fl, 60), f);
			snprintf(err->target, sizeof(err->target), "%.*s",
			    (int) dre_utf8_cut(f, fl, sizeof(err->target) - 1),
			    f);
		}
		return DRE_EINVAL;
	}
	dre_err rc = lines_prepare(v, err);
	if (rc != DRE_OK)
		return rc;
	pos_group_resolve(v);
	loyalty_warn(v);
	if (v->t != NULL)
		candidates(v);
	if (v->req->n_coupons > 0)
		ev_coupons_decide(v);
	if (v->t != NULL)
		applicable(v);
	ev_best_price(v);
	v->net_after_lines = v->run.line_net;
	if (v->t != NULL && v->want_missed)
		missed_apps(v);
	return DRE_OK;
}

dre_err
eng_evaluate(Dre__EvaluateResponse **respp, dre_arena *a, const eng_index *ix,
    const Dre__EvaluateRequest *req, const eng_eval_ctx *ctx,
    eng_eval_error *err)
{
	// v is only changed through pointers after setjmp (its address is
	// taken), so its contents are well defined after a longjmp.
	ev v;
	memset(&v, 0, sizeof(v));
	v.a = a;
	v.req = req;
	v.ctx = ctx;
	if (setjmp(v.oom))
		return DRE_ENOMEM;
	dre_err rc = evaluate_run(&v, ix, err);
	if (rc != DRE_OK)
		return rc;
	*respp = respond(&v, ix);
	return DRE_OK;
}
