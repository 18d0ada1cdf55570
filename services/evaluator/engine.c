// engine.c -- prices one basket against an index version (PRODUCT-DECISIONS
// §3 resolution order), everything allocated in the basket's arena.
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dre/money.h"
#include "engine.h"
#include "index.h"

typedef struct ev_disc ev_disc;
struct ev_disc {
	Dre__LineDiscount *d;
	ev_disc           *next;
};

typedef struct {
	const Dre__BasketItem *it;
	char                  *ref;
	const char            *grp; // line's articleGroupId, else the master's
	const char            *manu; // likewise for manufacturerId
	int64_t                total;
	int64_t                disc;
	bool                   sale;
	uint32_t               h_art, h_grp, h_manu; // ix_hash, 0 if none
	uint32_t               ndisc;
	ev_disc               *head, *tail;
} ev_line;

typedef struct {
	jmp_buf                     oom;
	dre_arena                  *a;
	const Dre__EvaluateRequest *req;
	const dre_eval_ctx         *ctx;
	const ix_tenant            *t;
	ev_line                    *lines;
	uint32_t                    n;
	uint32_t                    words; // bitmap words per line set
	int64_t                     ts;
	const char               *pg[4]; // request id, code; resolved id, code
	int64_t                  *amt; // per line, one promotion's discount
	int32_t                  *first; // per line, first action touching it
	uint32_t                 *order; // scratch line list
	uint32_t                 *touched; // lines the promotion touched
	uint32_t                  ntouched;
	Dre__PromotionBreakdown **bd;
	size_t                    nbd;
	Dre__MissedPromotion    **missed;
	size_t                    nmissed, capmissed;
	bool                      want_missed;
	dre_budget_limited        limited; // engine_budget.c
} ev;

// ev_get never returns NULL: an exhausted arena (malloc failing) unwinds
// to dre_evaluate, which is the only place that can answer it.
static void *
ev_get(ev *v, size_t n)
{
	void *p = dre_arena_get(v->a, n ? n : 1);
	if (p == NULL)
		longjmp(v->oom, 1);
	return p;
}

static char *ev_printf(ev *v, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static char *
ev_printf(ev *v, const char *fmt, ...)
{
	char    tmp[256];
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

// ---- stages before the conditions ------------------------------------------

static bool
in_time_windows(const dre_promo *p, int64_t ts)
{
	if (p->nwindows == 0)
		return true;
	// Windows are read in UTC for now; the promotion's timezone needs a
	// thread-safe zone table (next slice).
	int64_t day = ts / 86400000, ms = ts % 86400000;
	if (ms < 0) {
		ms += 86400000;
		day--;
	}
	int wd = (int) (((day + 3) % 7 + 7) % 7); // 1970-01-01 was a Thursday
	int min = (int) (ms / 60000);
	for (uint32_t i = 0; i < p->nwindows; i++) {
		const dre_time_window *w = &p->windows[i];
		if (w->from_min == w->to_min) {
			if (w->days & (1u << wd))
				return true;
		} else if (w->from_min < w->to_min) {
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

// prefilter returns the stage a promotion falls out at, or NULL.
static const char *
prefilter(ev *v, const dre_promo *p, const char **reason)
{
	bool inactive_ok = v->ctx->simulate && v->req->has_include_inactive
	    && v->req->include_inactive;
	if (!(p->status == DRE_PS_ACTIVE
	        || (inactive_ok && p->status == DRE_PS_INACTIVE))) {
		*reason = v->want_missed ? ev_printf(v, "status is %s",
		              dre_promo_status_name(p->status))
		                         : NULL;
		return "STATUS";
	}
	if (v->ts < p->valid_from) {
		*reason = "not yet valid at the transaction time";
		return "VALIDITY";
	}
	if (v->ts > p->valid_to) {
		*reason = "expired at the transaction time";
		return "VALIDITY";
	}
	if (!in_time_windows(p, v->ts)) {
		*reason = "outside its time windows";
		return "TIME_WINDOW";
	}
	if (!pos_group_ok(v, p)) {
		*reason = "not offered in this POS group";
		return "POS_GROUP";
	}
	return NULL;
}

// ---- conditions
// ----------------------------------------------------------------

static bool
line_in(const ix_set *s, dre_cond_type t, const ev_line *l)
{
	switch (t) {
	case DRE_COND_ARTICLE:
	case DRE_COND_ARTICLE_LIST:
		return ix_set_has_h(s, l->it->article_number, l->h_art);
	case DRE_COND_ARTICLE_GROUP:
		return ix_set_has_h(s, l->grp, l->h_grp);
	case DRE_COND_MANUFACTURER:
		return ix_set_has_h(s, l->manu, l->h_manu);
	default:
		return false;
	}
}

static bool
kv_match(Dre__KeyValue *const *kv, size_t n, const char *key, const ix_set *s)
{
	for (size_t i = 0; i < n; i++)
		if (key != NULL && strcmp(kv[i]->key, key) == 0
		    && (s->n == 0 || ix_set_has(s, kv[i]->value)))
			return true;
	return false;
}

static bool
strlist_has(const dre_strlist *l, const char *s, bool nocase)
{
	if (s == NULL)
		return false;
	for (uint32_t i = 0; i < l->n; i++)
		if ((nocase ? strcasecmp(l->v[i], s) : strcmp(l->v[i], s))
		    == 0)
			return true;
	return false;
}

// basket_sum is the sale quantity, or the sale net after the line
// discounts so far: computed only for the conditions that need it.
static int64_t
basket_sum(const ev *v, bool net)
{
	int64_t sum = 0;
	for (uint32_t i = 0; i < v->n; i++) {
		const ev_line *l = &v->lines[i];
		if (l->sale)
			sum += net ? l->total - l->disc : l->it->quantity;
	}
	return sum;
}

// conditions_hold checks every condition of e; sel receives the sale lines
// the article-type conditions selected.
static bool
conditions_hold(ev *v, const ix_ent *e, uint64_t *sel, const char **reason)
{
	const dre_promo            *p = e->promo;
	const Dre__EvaluateRequest *r = v->req;
	const Dre__CustomerInfo    *cu = r->customer;
	for (uint32_t ci = 0; ci < p->nconds; ci++) {
		const dre_promo_cond *c = &p->conds[ci];
		const ix_set         *s = &e->cp.cond[ci];
		bool                  ok = false;
		switch (c->type) {
		case DRE_COND_ARTICLE:
		case DRE_COND_ARTICLE_LIST:
		case DRE_COND_ARTICLE_GROUP:
		case DRE_COND_MANUFACTURER: {
			int64_t qty = 0;
			bool    any = false;
			for (uint32_t i = 0; i < v->n; i++) {
				const ev_line *l = &v->lines[i];
				if (l->sale && line_in(s, c->type, l)) {
					any = true;
					qty += l->it->quantity;
					bit_set(sel, i);
				}
			}
			ok = any
			    && (c->min_quantity <= 0
			        || qty >= c->min_quantity);
			break;
		}
		case DRE_COND_ITEM_QUANTITY:
			ok = basket_sum(v, false) >= c->min_quantity;
			break;
		case DRE_COND_RECEIPT_AMOUNT:
			ok = basket_sum(v, true) >= c->min_amount;
			break;
		case DRE_COND_CUSTOMER_REQUIRED:
			ok = cu != NULL && nonempty(cu->customer_id);
			break;
		case DRE_COND_CUSTOMER_GROUP:
			ok = cu != NULL && ix_set_has(s, cu->customer_group);
			break;
		case DRE_COND_LOYALTY_TIER:
			ok = cu != NULL && ix_set_has(s, cu->loyalty_tier);
			break;
		case DRE_COND_CHANNEL:
			ok = ix_set_has_nocase(s, r->channel);
			break;
		case DRE_COND_PAYMENT_MEANS:
			ok = r->payment != NULL
			    && ix_set_has_nocase(s, r->payment->payment_means)
			    && (c->card_types.n == 0
			        || strlist_has(&c->card_types,
			            r->payment->card_type, true));
			break;
		case DRE_COND_USER_DEFINED:
			ok = kv_match(r->user_defined_fields,
			    r->n_user_defined_fields, c->key, s);
			break;
		case DRE_COND_ADDITIONAL_FIELD:
			for (uint32_t i = 0; i < v->n && !ok; i++)
				ok = v->lines[i].sale
				    && kv_match(
				        v->lines[i].it->additional_fields,
				        v->lines[i].it->n_additional_fields,
				        c->key, s);
			break;
		case DRE_COND_MANUAL_DISCOUNT:
			ok = r->manual_discount != NULL
			    && r->manual_discount->has_enabled
			    && r->manual_discount->enabled
			    && (c->reason_codes.n == 0
			        || strlist_has(&c->reason_codes,
			            r->manual_discount->reason_code, false));
			break;
		}
		if (!ok) {
			*reason = v->want_missed
			    ? ev_printf(v, "condition %s not met",
			        dre_cond_type_name(c->type))
			    : NULL;
			return false;
		}
	}
	return true;
}

// ---- actions
// ---------------------------------------------------------------------

static void
touch(ev *v, uint32_t li, int32_t act)
{
	if (v->first[li] < 0) {
		v->first[li] = act;
		v->touched[v->ntouched++] = li;
	}
}

// act_markdown applies an ARTICLE / ARTICLE_GROUP / ARTICLE_LIST action:
// each target unit is discounted, the most expensive first when the action
// limits the units per basket.
static void
act_markdown(ev *v, const ix_ent *e, uint32_t ai, const uint64_t *sel)
{
	const dre_promo        *p = e->promo;
	const dre_promo_action *ac = &p->actions[ai];
	uint32_t                no = 0;
	for (uint32_t i = 0; i < v->n; i++) {
		const ev_line *l = &v->lines[i];
		if (!l->sale)
			continue;
		bool in;
		if (ac->target.present)
			in = ix_set_has_h(&e->cp.tgt_art[ai],
			         l->it->article_number, l->h_art)
			    || ix_set_has_h(
			        &e->cp.tgt_grp[ai], l->grp, l->h_grp)
			    || ix_set_has_h(
			        &e->cp.tgt_manu[ai], l->manu, l->h_manu);
		else if (e->cp.has_article_cond)
			in = bit_get(sel, i);
		else
			in = true;
		if (in)
			v->order[no++] = i;
	}
	if (ac->max_quantity > 0) // by unit price, descending; stable
		for (uint32_t i = 1; i < no; i++) {
			uint32_t x = v->order[i];
			int64_t  price = v->lines[x].it->unit_price;
			uint32_t j = i;
			for (; j > 0
			     && v->lines[v->order[j - 1]].it->unit_price
			         < price;
			     j--)
				v->order[j] = v->order[j - 1];
			v->order[j] = x;
		}
	int64_t left = ac->max_quantity > 0 ? ac->max_quantity : INT64_MAX;
	for (uint32_t k = 0; k < no && left > 0; k++) {
		uint32_t       li = v->order[k];
		const ev_line *l = &v->lines[li];
		int64_t        qty = l->it->quantity;
		int64_t        units = qty < left ? qty : left;
		int64_t        price = l->it->unit_price;
		int64_t        d = 0;
		left -= units;
		switch (ac->disc_type) {
		case DRE_DISC_PERCENTAGE: {
			int64_t base = l->total;
			if (p->calc_mode == DRE_CALC_MULTIPLICATIVE)
				base = l->total - l->disc - v->amt[li];
			if (units != qty)
				base = dre_div_round((__int128) base * units,
				    qty, DRE_ROUND_HALF_UP);
			d = dre_pct_of(
			    base, ac->value, p->rounding, p->precision);
			break;
		}
		case DRE_DISC_ABSOLUTE: {
			int64_t off = ac->value < price ? ac->value : price;
			d = dre_round_to_precision((__int128) off * units,
			    1000, p->rounding, p->precision);
			break;
		}
		case DRE_DISC_UNIT_PRICE:
			if (price > ac->value)
				d = dre_round_to_precision(
				    (__int128) (price - ac->value) * units,
				    1000, p->rounding, p->precision);
			break;
		}
		if (d <= 0)
			continue;
		touch(v, li, (int32_t) ai);
		v->amt[li] += d;
	}
}

static void
breakdown_add(ev *v, const ix_ent *e, int64_t total)
{
	const dre_promo         *p = e->promo;
	Dre__PromotionBreakdown *b = ev_get(v, sizeof(*b));
	dre__promotion_breakdown__init(b);
	b->promotion_id = (char *) p->id;
	b->promotion_name = (char *) (p->name ? p->name : "");
	b->total_discount = total;
	b->affected_items = ev_get(v, v->ntouched * sizeof(char *));
	for (uint32_t i = 0; i < v->n; i++)
		if (v->first[i] >= 0 && v->amt[i] > 0)
			b->affected_items[b->n_affected_items++]
			    = v->lines[i].ref;
	v->bd[v->nbd++] = b;
}

// promo_apply runs the line actions of e, caps each line at its total and
// records one discount per touched line.
static void
promo_apply(ev *v, const ix_ent *e, const uint64_t *sel)
{
	const dre_promo *p = e->promo;
	v->ntouched = 0;
	for (uint32_t ai = 0; ai < p->nactions; ai++) {
		switch (p->actions[ai].type) {
		case DRE_ACT_ARTICLE:
		case DRE_ACT_ARTICLE_GROUP:
		case DRE_ACT_ARTICLE_LIST:
			act_markdown(v, e, ai, sel);
			break;
		default: // tiers, bundles, receipt, free items, loyalty: later
			break;
		}
	}
	int64_t total = 0;
	for (uint32_t k = 0; k < v->ntouched; k++) {
		uint32_t li = v->touched[k];
		ev_line *l = &v->lines[li];
		int64_t  cap = l->total - l->disc;
		if (v->amt[li] > cap)
			v->amt[li] = cap;
		if (v->amt[li] <= 0)
			continue;
		const dre_promo_action *ac = &p->actions[v->first[li]];
		Dre__LineDiscount      *d = ev_get(v, sizeof(*d));
		dre__line_discount__init(d);
		d->promotion_id = (char *) p->id;
		d->promotion_name = (char *) (p->name ? p->name : "");
		d->promotion_type = (char *) dre_promo_type_name(p->type);
		d->discount_type = (char *) dre_disc_type_name(ac->disc_type);
		d->discount_value = ac->value;
		d->discount_amount = v->amt[li];
		d->has_triggered_by_coupon = true;
		d->triggered_by_coupon = false;
		ev_disc *node = ev_get(v, sizeof(*node));
		node->d = d;
		if (l->tail)
			l->tail->next = node;
		else
			l->head = node;
		l->tail = node;
		l->ndisc++;
		l->disc += v->amt[li];
		total += v->amt[li];
	}
	if (total > 0)
		breakdown_add(v, e, total);
	for (uint32_t k = 0; k < v->ntouched; k++) {
		v->amt[v->touched[k]] = 0;
		v->first[v->touched[k]] = -1;
	}
}

static void
missed_add(ev *v, const dre_promo *p, const char *stage, const char *reason)
{
	if (!v->want_missed)
		return;
	if (v->nmissed == v->capmissed) {
		size_t cap = v->capmissed ? v->capmissed * 2 : 16;
		Dre__MissedPromotion **m = ev_get(v, cap * sizeof(*m));
		if (v->nmissed)
			memcpy(m, v->missed, v->nmissed * sizeof(*m));
		v->missed = m;
		v->capmissed = cap;
	}
	Dre__MissedPromotion *m = ev_get(v, sizeof(*m));
	dre__missed_promotion__init(m);
	m->promotion_id = (char *) p->id;
	m->promotion_name = (char *) (p->name ? p->name : "");
	m->stage = (char *) stage;
	m->reason = (char *) (reason ? reason : "");
	v->missed[v->nmissed++] = m;
}

static int
u32_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *) x, b = *(const uint32_t *) y;
	return a < b ? -1 : a > b;
}

// candidates lists the ranks of the promotions the basket's lines can
// reach through the index (sorted, unique): cost follows the basket, not the
// number of promotions.
static uint32_t
candidates(ev *v, uint32_t **outp)
{
	const ix_tenant *t = v->t;
	if (v->want_missed) { // the diagnostic explains every promotion
		uint32_t *all = ev_get(v, t->npromos * sizeof(uint32_t));
		for (uint32_t r = 0; r < t->npromos; r++)
			all[r] = r;
		*outp = all;
		return t->npromos;
	}
	const ix_plist **lists = ev_get(v, (3 * v->n + 1) * sizeof(*lists));
	uint32_t         nl = 0, total = t->unscoped.n;
	for (uint32_t i = 0; i < v->n; i++) {
		const ev_line *l = &v->lines[i];
		if (!l->sale)
			continue;
		const ix_plist *pl[3] = {
			ix_map_get(&t->by_article, l->it->article_number),
			ix_map_get(&t->by_group, l->grp),
			ix_map_get(&t->by_manu, l->manu),
		};
		for (int k = 0; k < 3; k++)
			if (pl[k] != NULL) {
				lists[nl++] = pl[k];
				total += pl[k]->n;
			}
	}
	uint32_t *c = ev_get(v, (total + 1) * sizeof(uint32_t));
	uint32_t  m = 0;
	memcpy(c, t->unscoped.rank, t->unscoped.n * sizeof(uint32_t));
	m = t->unscoped.n;
	for (uint32_t k = 0; k < nl; k++) {
		memcpy(c + m, lists[k]->rank, lists[k]->n * sizeof(uint32_t));
		m += lists[k]->n;
	}
	uint32_t u = 0;
	if ((size_t) m * 8 >= t->npromos / 64) {
		// Many candidates: marking ranks in a bitmap sorts and dedupes
		// in O(m + promotions/64) with no comparisons.
		uint32_t  nw = (t->npromos + 63) / 64;
		uint64_t *mark = ev_get(v, nw * sizeof(uint64_t));
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
	*outp = c;
	return u;
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

static Dre__EvaluateResponse *
respond(ev *v, const dre_index *ix)
{
	Dre__EvaluateResponse *r = ev_get(v, sizeof(*r));
	dre__evaluate_response__init(r);
	r->currency
	    = (char *) (nonempty(v->ctx->currency) ? v->ctx->currency : "EUR");
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
	r->line_items = ev_get(v, v->n * sizeof(Dre__LineItem *));
	tot->item_savings = ev_get(v, v->n * sizeof(Dre__ItemSavings *));
	int64_t sale = 0, ret = 0, disc = 0;
	bool    returns = false;
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
		li->line_discount = l->disc;
		li->line_net = l->total - l->disc;
		li->has_is_free_item = true;
		li->is_free_item = false;
		li->discounts
		    = ev_get(v, l->ndisc * sizeof(Dre__LineDiscount *));
		for (ev_disc *d = l->head; d; d = d->next)
			li->discounts[li->n_discounts++] = d->d;
		r->line_items[r->n_line_items++] = li;
		if (l->sale)
			sale += l->total;
		else {
			ret += l->total;
			returns = true;
		}
		disc += l->disc;
		if (l->disc > 0) {
			Dre__ItemSavings *s = ev_get(v, sizeof(*s));
			dre__item_savings__init(s);
			s->article_number = l->it->article_number;
			s->original_price = l->total;
			s->final_price = l->total - l->disc;
			s->savings = l->disc;
			tot->item_savings[tot->n_item_savings++] = s;
		}
	}
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
	tot->promotion_breakdown = v->bd;
	tot->n_promotion_breakdown = v->nbd;
	tot->loyalty_points_earned = 0;
	r->has_include_missed = true;
	r->include_missed = v->want_missed;
	r->missed_promotions = v->missed;
	r->n_missed_promotions = v->nmissed;
	r->budget_limited_promotions = v->limited.v;
	r->n_budget_limited_promotions = v->limited.n;
	return r;
}

// ---- the pipeline
// ---------------------------------------------------------------

static void
lines_prepare(ev *v)
{
	const Dre__EvaluateRequest *r = v->req;
	v->n = (uint32_t) r->n_items;
	v->words = (v->n + 63) / 64;
	v->lines = ev_get(v, v->n * sizeof(ev_line));
	v->amt = ev_get(v, v->n * sizeof(int64_t));
	v->first = ev_get(v, v->n * sizeof(int32_t));
	v->order = ev_get(v, v->n * sizeof(uint32_t));
	v->touched = ev_get(v, v->n * sizeof(uint32_t));
	for (uint32_t i = 0; i < v->n; i++) {
		ev_line               *l = &v->lines[i];
		const Dre__BasketItem *it = r->items[i];
		l->it = it;
		l->sale = it->quantity > 0;
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
			    = ix_map_get(&v->t->articles, it->article_number);
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
		v->first[i] = -1;
	}
}

static dre_err
pos_group_resolve(ev *v, dre_eval_error *err)
{
	const Dre__EvaluateRequest *r = v->req;
	if (nonempty(r->pos_group_id)) {
		v->pg[0] = r->pos_group_id;
		const ix_ent *pg = v->t
		    ? ix_map_get(&v->t->pg_by_id, r->pos_group_id)
		    : NULL;
		if (pg != NULL)
			v->pg[3] = pg->code;
	}
	if (nonempty(r->pos_group_code)) {
		v->pg[1] = r->pos_group_code;
		const ix_ent *pg = v->t
		    ? ix_map_get(&v->t->pg_by_code, r->pos_group_code)
		    : NULL;
		if (pg == NULL) {
			if (err != NULL) {
				err->status = 400;
				err->code = "VALIDATION_FAILED";
				snprintf(err->message, sizeof(err->message),
				    "unknown posGroupCode '%.100s'",
				    r->pos_group_code);
				snprintf(err->target, sizeof(err->target),
				    "posGroupCode");
			}
			return DRE_EINVAL;
		}
		v->pg[2] = pg->key;
	}
	return DRE_OK;
}

static dre_err
evaluate_run(ev *v, const dre_index *ix, dre_eval_error *err)
{
	v->t = ix_tenant_find(ix, v->ctx->tenant ? v->ctx->tenant : "");
	v->ts
	    = v->req->has_timestamp_ms ? v->req->timestamp_ms : v->ctx->now_ms;
	v->want_missed = v->req->has_include_missed_promotions
	    && v->req->include_missed_promotions;
	lines_prepare(v);
	dre_err rc = pos_group_resolve(v, err);
	if (rc != DRE_OK)
		return rc;
	if (v->t != NULL) {
		uint32_t *cand;
		uint32_t  nc = candidates(v, &cand);
		v->bd = ev_get(v, nc * sizeof(*v->bd));
		uint64_t *sel = ev_get(v, (v->words + 1) * sizeof(uint64_t));
		for (uint32_t k = 0; k < nc; k++) {
			const ix_ent *e = v->t->promos[cand[k]];
			const char   *reason = NULL;
			const char   *stage = prefilter(v, e->promo, &reason);
			if (stage != NULL) {
				missed_add(v, e->promo, stage, reason);
				continue;
			}
			if (dre_budget_check(v->ctx->budgets, v->ctx->tenant,
			        e->promo, v->a, &v->limited, &reason)) {
				missed_add(v, e->promo, "BUDGET", reason);
				continue;
			}
			memset(sel, 0, (v->words + 1) * sizeof(uint64_t));
			if (!conditions_hold(v, e, sel, &reason)) {
				missed_add(v, e->promo, "CONDITION", reason);
				continue;
			}
			promo_apply(v, e, sel);
		}
	}
	return DRE_OK;
}

dre_err
dre_evaluate(Dre__EvaluateResponse **respp, dre_arena *a, const dre_index *ix,
    const Dre__EvaluateRequest *req, const dre_eval_ctx *ctx,
    dre_eval_error *err)
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
