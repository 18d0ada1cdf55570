// engine_hint.c -- recommendations (the hint catalog of DRE-SPEC §5), nudges
// and threshold gaps.
//
// A promotion that passed every stage before its conditions and failed
// exactly one of them is a near miss when that condition is a quantity, an
// amount or a missing article, and a hint when it is the customer, the
// tier, the payment means, the manufacturer or the manual discount. A near
// miss counts only when the basket is at least half way there (matchPercent
// >= 50): further away it is noise at the till, and it keeps the amount and
// quantity indexes bounded (they look up to twice the basket). Applied
// promotions that gave nothing because a tier, a bundle or a threshold after
// line discounts was not reached are near misses too.
#include <stdio.h>
#include <string.h>

#include "engine_int.h"

#define NEAR_MISS_MIN 50

static ev_miss *
miss_new(ev *v, const ix_ent *e, uint32_t rank)
{
	if (v->nmiss == v->capmiss) {
		uint32_t cap = v->capmiss ? v->capmiss * 2 : 8;
		ev_miss *m = ev_get(v, cap * sizeof(*m));
		if (v->nmiss)
			memcpy(m, v->miss, v->nmiss * sizeof(*m));
		v->miss = m;
		v->capmiss = cap;
	}
	ev_miss *m = &v->miss[v->nmiss++];
	memset(m, 0, sizeof(*m));
	m->e = e;
	m->app = -1;
	m->cond = -1;
	m->action = -1;
	m->rank = rank;
	return m;
}

// first_target names the first article (or group) the promotion's actions
// target, for quantity hints without an article condition.
static void
first_target(const dre_promo *p, const char **art, const char **grp)
{
	*art = *grp = NULL;
	for (uint32_t ai = 0; ai < p->nactions; ai++) {
		const dre_promo_target *t = &p->actions[ai].target;
		if (!t->present)
			continue;
		if (t->articles.n > 0 && *art == NULL)
			*art = t->articles.v[0];
		if (t->article_groups.n > 0 && *grp == NULL)
			*grp = t->article_groups.v[0];
	}
}

void
ev_miss_static(
    ev *v, const ix_ent *e, uint32_t rank, const ev_cres *cr, uint64_t *sel)
{
	if (cr->nfail != 1 || v->t == NULL)
		return;
	const dre_promo      *p = e->promo;
	const dre_promo_cond *c = &p->conds[cr->fail];
	const char           *kind = "NEAR_MISS", *code = NULL, *gap = NULL;
	const char           *art, *grp;
	switch (c->type) {
	case DRE_COND_ARTICLE:
	case DRE_COND_ARTICLE_LIST:
		if (cr->have == 0) {
			code = "MISSING_ARTICLE";
			gap = "MISSING_ARTICLE";
		} else {
			code = "BELOW_MIN_QUANTITY";
			gap = "ITEM_QUANTITY";
		}
		break;
	case DRE_COND_ARTICLE_GROUP:
		code = "MISSING_QUANTITY_IN_GROUP";
		gap = "ITEM_QUANTITY";
		break;
	case DRE_COND_ITEM_QUANTITY:
		first_target(p, &art, &grp);
		code = art ? "BELOW_MIN_QUANTITY"
		    : grp  ? "MISSING_QUANTITY_IN_GROUP"
		           : NULL; // no catalog code: a gap only
		gap = "ITEM_QUANTITY";
		break;
	case DRE_COND_RECEIPT_AMOUNT:
		code = "BELOW_RECEIPT_THRESHOLD";
		gap = "RECEIPT_AMOUNT";
		break;
	case DRE_COND_MANUFACTURER:
		kind = "HINT";
		code = "MANUFACTURER_REQUIRED";
		break;
	case DRE_COND_CUSTOMER_REQUIRED:
		kind = "HINT";
		code = "CUSTOMER_REQUIRED";
		break;
	case DRE_COND_CUSTOMER_GROUP:
		kind = "HINT";
		code = "CUSTOMER_GROUP_REQUIRED";
		break;
	case DRE_COND_LOYALTY_TIER:
		kind = "HINT";
		code = "LOYALTY_TIER_REQUIRED";
		break;
	case DRE_COND_PAYMENT_MEANS:
		kind = "HINT";
		code = "PAYMENT_MEANS_REQUIRED";
		break;
	case DRE_COND_MANUAL_DISCOUNT:
		kind = "HINT";
		code = "MANUAL_DISCOUNT_REQUIRED";
		break;
	default: // CHANNEL, USER_DEFINED, ADDITIONAL_FIELD: nothing to say
		return;
	}
	ev_miss *m = miss_new(v, e, rank);
	m->kind = kind;
	m->code = code;
	m->cond = cr->fail;
	m->have = cr->have;
	m->need = cr->need;
	m->gap_type = gap;
	m->sel = sel;
	if (code != NULL && strcmp(code, "MISSING_ARTICLE") == 0)
		m->match = (int) (100 * cr->nmet / (cr->nmet + 1));
}

// bundle_short finds the first component of action ai the basket cannot
// fill once, and how many of a bundle's units it holds.
static uint32_t
bundle_short(ev *v, const ev_app *a, uint32_t ai, int64_t *have, int64_t *per)
{
	const dre_promo_action *ac = &a->p->actions[ai];
	uint32_t                first = 0;
	bool                    found = false;
	*have = *per = 0;
	for (uint32_t c = 0; c < ac->ncomponents; c++) {
		int64_t need = ac->components[c].quantity / 1000, got = 0;
		for (uint32_t k = 0; k < a->nelig[ai]; k++) {
			const ev_line *l = &v->lines[a->elig[ai][k]];
			if (ix_set_has_h(&a->e->cp.comp[ai][2 * c],
			        l->it->article_number, l->h_art)
			    || ix_set_has_h(&a->e->cp.comp[ai][2 * c + 1],
			        l->grp, l->h_grp))
				got += l->qty / 1000;
		}
		*per += need;
		*have += got < need ? got : need;
		if (got < need && !found) {
			first = c;
			found = true;
		}
	}
	return first;
}

void
ev_miss_dynamic(ev *v)
{
	for (uint32_t ax = 0; ax < v->napps; ax++) {
		ev_app *a = &v->apps[ax];
		if (!v->chosen[ax])
			continue;
		bool gave = a->contrib > 0 || a->points != 0 || a->granted;
		if (a->failed) {
			ev_miss *m = miss_new(v, a->e, v->cand[a->cand]);
			m->app = (int32_t) ax;
			m->kind = "NEAR_MISS";
			m->code = "BELOW_RECEIPT_THRESHOLD";
			m->gap_type = "RECEIPT_AMOUNT";
			m->have = a->dyn_have;
			m->need = a->dyn_need;
			m->sel = a->sel;
			continue;
		}
		for (uint32_t ai = 0; ai < a->p->nactions; ai++) {
			const dre_promo_action *ac = &a->p->actions[ai];
			if (ac->type == DRE_ACT_SCALED_RECEIPT) {
				const dre_promo_tier *t;
				int64_t i = ev_receipt_tier_value(
				    ac, a->tier_amount, &t);
				if (i + 1 >= (int64_t) ac->ntiers)
					continue;
				ev_miss *m
				    = miss_new(v, a->e, v->cand[a->cand]);
				m->app = (int32_t) ax;
				m->action = (int32_t) ai;
				m->have = a->tier_amount;
				m->need = ac->tiers[i + 1].threshold;
				m->gap_type = "SCALED_RECEIPT";
				m->sel = a->sel;
				// Below the first tier it is a near miss; the
				// next tier of a reached one is only a gap.
				if (!gave && i < 0) {
					m->kind = "NEAR_MISS";
					m->code = "BELOW_RECEIPT_THRESHOLD";
				}
			} else if (!gave && ac->type == DRE_ACT_QUANTITY_TIER
			    && ac->ntiers > 0) {
				int64_t q = 0;
				for (uint32_t k = 0; k < a->nelig[ai]; k++)
					q += v->lines[a->elig[ai][k]].qty;
				if (q >= ac->tiers[0].min_quantity)
					continue;
				const char *art, *grp;
				first_target(a->p, &art, &grp);
				ev_miss *m
				    = miss_new(v, a->e, v->cand[a->cand]);
				m->app = (int32_t) ax;
				m->action = (int32_t) ai;
				m->kind = "NEAR_MISS";
				m->code = art ? "BELOW_MIN_QUANTITY"
				    : grp     ? "MISSING_QUANTITY_IN_GROUP"
				              : NULL;
				m->gap_type = "ITEM_QUANTITY";
				m->have = q;
				m->need = ac->tiers[0].min_quantity;
				m->sel = a->sel;
			} else if (!gave && ac->type == DRE_ACT_BUNDLE
			    && a->empty) {
				int64_t  have, per;
				uint32_t c
				    = bundle_short(v, a, ai, &have, &per);
				if (per == 0 || have >= per)
					continue; // complete, but gives
					          // nothing
				const dre_bundle_component *bc
				    = &ac->components[c];
				ev_miss *m
				    = miss_new(v, a->e, v->cand[a->cand]);
				m->app = (int32_t) ax;
				m->action = (int32_t) ai;
				m->kind = "NEAR_MISS";
				m->code = bc->articles.n > 0
				    ? "MISSING_ARTICLE"
				    : "MISSING_QUANTITY_IN_GROUP";
				m->gap_type = "MISSING_ARTICLE";
				m->have = have * 1000;
				m->need = per * 1000;
				m->match = (int) (100 * have / per);
				m->sel = a->sel;
			}
		}
	}
}

// ---- rendering
// -------------------------------------------------------------------

static Dre__KeyValue *
kv(ev *v, const char *k, const char *val)
{
	Dre__KeyValue *x = ev_get(v, sizeof(*x));
	dre__key_value__init(x);
	x->key = (char *) k;
	x->value = (char *) val;
	return x;
}

static char *
fmt_amount(ev *v, int64_t x)
{
	char b[32];
	dre_decimal_format(b, x, DRE_MONEY_SCALE);
	return ev_printf(v, "%s", b);
}

static char *
fmt_qty(ev *v, int64_t x)
{
	char b[32];
	dre_decimal_format_trim(b, x, DRE_QTY_SCALE);
	return ev_printf(v, "%s", b);
}

// potential is what the promotion would give on this basket with its
// missing condition taken as met and (for amounts) the subtotal raised to
// amount: one run of it alone.
static int64_t
potential(ev *v, const ix_ent *e, uint64_t *sel, int64_t amount)
{
	ev_app tmp;
	memset(&tmp, 0, sizeof(tmp));
	tmp.e = e;
	tmp.p = e->promo;
	tmp.sel = sel ? sel : ev_get(v, (v->words + 1) * sizeof(uint64_t));
	tmp.stage = e->cp.line_stage ? ST_LINE
	    : e->cp.receipt_stage    ? ST_RECEIPT
	                             : ST_LOYALTY;
	ev_app_prepare(v, &tmp);
	ev_app  *save = v->apps;
	uint32_t nsave = v->napps;
	uint8_t  in = 1;
	v->apps = &tmp;
	v->napps = 1;
	v->run.force = 0;
	v->run.force_amount = amount;
	ev_run_reset(v, false);
	int64_t s = ev_run_apps(v, &in);
	v->apps = save;
	v->napps = nsave;
	v->run.force = -1;
	v->run.force_amount = 0;
	return s;
}

static const char *
first_value(const dre_strlist *l)
{
	return l->n > 0 ? l->v[0] : "";
}

// recommendation fills code, params and the English default message.
static Dre__Recommendation *
recommendation(ev *v, const ev_miss *m)
{
	const dre_promo     *p = m->e->promo;
	const char          *name = p->name ? p->name : "";
	Dre__Recommendation *r = ev_get(v, sizeof(*r));
	dre__recommendation__init(r);
	r->kind = (char *) m->kind;
	r->code = (char *) m->code;
	r->promotion_id = (char *) p->id;
	r->promotion_name = (char *) name;
	r->params = ev_get(v, 4 * sizeof(Dre__KeyValue *));
	const dre_promo_cond    *c = m->cond >= 0 ? &p->conds[m->cond] : NULL;
	const Dre__CustomerInfo *cu = v->req->customer;
	const char              *art = NULL, *grp = NULL;
	const dre_bundle_component *bc = NULL;
	if (c != NULL) {
		if (c->type == DRE_COND_ARTICLE_GROUP)
			grp = first_value(&c->values);
		else
			art = first_value(&c->values);
		if (c->type == DRE_COND_ITEM_QUANTITY)
			first_target(p, &art, &grp);
	} else if (m->action >= 0
	    && p->actions[m->action].type == DRE_ACT_BUNDLE) {
		const dre_promo_action *ac = &p->actions[m->action];
		int64_t                 h, per;
		ev_app                 *a = &v->apps[m->app];
		bc = &ac->components[bundle_short(
		    v, a, (uint32_t) m->action, &h, &per)];
		art = bc->articles.n ? bc->articles.v[0] : NULL;
		grp = bc->article_groups.n ? bc->article_groups.v[0] : NULL;
	} else
		first_target(p, &art, &grp);
	const char *code = m->code;
	if (strcmp(code, "MISSING_ARTICLE") == 0) {
		if (c != NULL && c->type == DRE_COND_ARTICLE_LIST
		    && c->article_list_id != NULL) {
			r->params[r->n_params++]
			    = kv(v, "articleListId", c->article_list_id);
			r->default_message = ev_printf(v,
			    "Add an article from list %s to qualify for %s.",
			    c->article_list_id, name);
		} else {
			r->params[r->n_params++]
			    = kv(v, "articleNumber", art ? art : "");
			r->default_message
			    = ev_printf(v, "Add article %s to qualify for %s.",
			        art ? art : "", name);
		}
	} else if (strcmp(code, "BELOW_MIN_QUANTITY") == 0) {
		char *have = fmt_qty(v, m->have), *need = fmt_qty(v, m->need);
		r->params[r->n_params++]
		    = kv(v, "articleNumber", art ? art : "");
		r->params[r->n_params++] = kv(v, "currentQuantity", have);
		r->params[r->n_params++] = kv(v, "requiredQuantity", need);
		r->default_message = ev_printf(v,
		    "Buy %s %s of article %s (you have %s) to qualify for %s.",
		    need, m->need == 1000 ? "unit" : "units", art ? art : "",
		    have, name);
	} else if (strcmp(code, "MISSING_QUANTITY_IN_GROUP") == 0) {
		char *missing = fmt_qty(v, m->need - m->have);
		char *need = fmt_qty(v, m->need);
		r->params[r->n_params++]
		    = kv(v, "articleGroupId", grp ? grp : "");
		r->params[r->n_params++] = kv(v, "missingQuantity", missing);
		r->params[r->n_params++] = kv(v, "thresholdQuantity", need);
		r->default_message = ev_printf(v,
		    "Add %s more %s from group %s to reach %s and qualify for "
		    "%s.",
		    missing, m->need - m->have == 1000 ? "item" : "items",
		    grp ? grp : "", need, name);
	} else if (strcmp(code, "BELOW_RECEIPT_THRESHOLD") == 0) {
		char *have = fmt_amount(v, m->have);
		char *need = fmt_amount(v, m->need);
		r->params[r->n_params++] = kv(v, "currentAmount", have);
		r->params[r->n_params++] = kv(v, "requiredAmount", need);
		r->params[r->n_params++] = kv(v, "currency", v->currency);
		r->default_message = ev_printf(v,
		    "Spend %s %s more (%s of %s %s) to qualify for %s.",
		    fmt_amount(v, m->need - m->have), v->currency, have, need,
		    v->currency, name);
	} else if (strcmp(code, "CUSTOMER_GROUP_REQUIRED") == 0) {
		const char *g = first_value(&c->values);
		r->params[r->n_params++] = kv(v, "customerGroup", g);
		r->default_message = ev_printf(
		    v, "%s is for customer group %s only.", name, g);
	} else if (strcmp(code, "CUSTOMER_REQUIRED") == 0) {
		r->params[r->n_params++] = kv(v, "customerId",
		    cu != NULL && nonempty(cu->customer_id) ? cu->customer_id
		                                            : NULL);
		r->default_message = ev_printf(
		    v, "Identify the customer to qualify for %s.", name);
	} else if (strcmp(code, "LOYALTY_TIER_REQUIRED") == 0) {
		const char *t = first_value(&c->values);
		const char *cur = cu != NULL && nonempty(cu->loyalty_tier)
		    ? cu->loyalty_tier
		    : NULL;
		r->params[r->n_params++] = kv(v, "requiredTier", t);
		r->params[r->n_params++] = kv(v, "currentTier", cur);
		r->default_message = ev_printf(v,
		    "%s requires loyalty tier %s (current tier: %s).", name, t,
		    cur ? cur : "none");
	} else if (strcmp(code, "PAYMENT_MEANS_REQUIRED") == 0) {
		const char *pm = first_value(&c->values);
		r->params[r->n_params++] = kv(v, "requiredMeans", pm);
		r->default_message
		    = ev_printf(v, "Pay with %s to qualify for %s.", pm, name);
	} else if (strcmp(code, "MANUFACTURER_REQUIRED") == 0) {
		const char *mf = first_value(&c->values);
		r->params[r->n_params++] = kv(v, "manufacturerId", mf);
		r->default_message = ev_printf(v,
		    "Add an item from manufacturer %s to qualify for %s.", mf,
		    name);
	} else { // MANUAL_DISCOUNT_REQUIRED
		r->default_message = ev_printf(v,
		    "A manual discount must be applied to qualify for %s.",
		    name);
	}
	if (strcmp(m->kind, "NEAR_MISS") == 0) {
		r->has_match_percent = true;
		r->match_percent = m->match;
	}
	return r;
}

static void
nudge_and_gap(ev *v, const ev_miss *m, Dre__EvaluateResponse *r)
{
	const dre_promo *p = m->e->promo;
	const char      *name = p->name ? p->name : "";
	bool             amount = strcmp(m->gap_type, "RECEIPT_AMOUNT") == 0
	    || strcmp(m->gap_type, "SCALED_RECEIPT") == 0;
	int64_t pot = potential(v, m->e, m->sel, amount ? m->need : 0);
	if (m->app >= 0 && m->kind == NULL) // next tier: the extra saving
		pot -= v->apps[m->app].contrib;
	if (pot < 0)
		pot = 0;
	char *save = fmt_amount(v, pot);
	if (strcmp(m->gap_type, "MISSING_ARTICLE") != 0) {
		Dre__ThresholdGap *g = ev_get(v, sizeof(*g));
		dre__threshold_gap__init(g);
		g->promotion_id = (char *) p->id;
		g->promotion_name = (char *) name;
		g->type = (char *) m->gap_type;
		// Decimal(15,2): amounts are minor units, quantities are
		// thousandths.
		int div = amount ? 1 : 10;
		g->current_value
		    = dre_div_round(m->have, div, DRE_ROUND_HALF_UP);
		g->threshold = dre_div_round(m->need, div, DRE_ROUND_HALF_UP);
		g->gap = g->threshold - g->current_value;
		g->potential_saving = pot;
		r->threshold_gaps[r->n_threshold_gaps++] = g;
	}
	Dre__Nudge *n = ev_get(v, sizeof(*n));
	dre__nudge__init(n);
	n->promotion_id = (char *) p->id;
	n->promotion_name = (char *) name;
	n->potential_saving = pot;
	n->gap_type = (char *) m->gap_type;
	if (amount) {
		n->suggested_action = "ADD_AMOUNT";
		n->message
		    = ev_printf(v, "Spend %s %s more to save %s %s with %s.",
		        fmt_amount(v, m->need - m->have), v->currency, save,
		        v->currency, name);
	} else if (strcmp(m->gap_type, "ITEM_QUANTITY") == 0) {
		char *more = fmt_qty(v, m->need - m->have);
		n->suggested_action = "ADD_QUANTITY";
		n->message
		    = ev_printf(v, "Add %s more %s to save %s %s with %s.",
		        more, m->need - m->have == 1000 ? "item" : "items",
		        save, v->currency, name);
	} else {
		n->suggested_action = "ADD_ARTICLE";
		n->message = ev_printf(v,
		    "Add the missing article to save %s %s with %s.", save,
		    v->currency, name);
	}
	r->nudges[r->n_nudges++] = n;
}

void
ev_hints(ev *v, Dre__EvaluateResponse *r)
{
	ev_miss_dynamic(v);
	// Rank order, whichever way they were found.
	for (uint32_t i = 1; i < v->nmiss; i++) {
		ev_miss  x = v->miss[i];
		uint32_t j = i;
		for (; j > 0 && v->miss[j - 1].rank > x.rank; j--)
			v->miss[j] = v->miss[j - 1];
		v->miss[j] = x;
	}
	r->recommendations
	    = ev_get(v, (v->nmiss + 1) * sizeof(Dre__Recommendation *));
	r->nudges = ev_get(v, (v->nmiss + 1) * sizeof(Dre__Nudge *));
	r->threshold_gaps
	    = ev_get(v, (v->nmiss + 1) * sizeof(Dre__ThresholdGap *));
	for (uint32_t i = 0; i < v->nmiss; i++) {
		ev_miss *m = &v->miss[i];
		// A static amount miss reads the subtotal after the line
		// discounts of the chosen combination.
		if (m->app < 0 && m->cond >= 0
		    && m->e->promo->conds[m->cond].type
		        == DRE_COND_RECEIPT_AMOUNT)
			m->have = v->net_after_lines;
		bool near
		    = m->kind != NULL && strcmp(m->kind, "NEAR_MISS") == 0;
		if (near && strcmp(m->gap_type, "MISSING_ARTICLE") != 0)
			m->match = m->need > 0
			    ? (int) dre_div_round((__int128) m->have * 100,
			        m->need, DRE_ROUND_DOWN)
			    : 0;
		if (m->kind == NULL) { // the next tier of an applied promotion
			if (m->need > 0
			    && (__int128) m->have * 100
			        >= (__int128) m->need * NEAR_MISS_MIN
			    && v->nudges)
				nudge_and_gap(v, m, r);
			continue;
		}
		if (near && m->match < NEAR_MISS_MIN)
			continue;
		if (m->code != NULL)
			r->recommendations[r->n_recommendations++]
			    = recommendation(v, m);
		if (near && v->nudges && m->gap_type != NULL)
			nudge_and_gap(v, m, r);
	}
}
