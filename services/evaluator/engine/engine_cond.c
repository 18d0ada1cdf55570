// engine_cond.c -- the conditions of PRODUCT-DECISIONS §3 and the lines each
// action of an applicable promotion may touch.
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine_int.h"

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

bool
ev_target_line(const ev *v, const ix_ent *e, uint32_t ai, uint32_t li)
{
	const ev_line *l = &v->lines[li];
	return ix_set_has_h(
	           &e->cp.tgt_art[ai], l->it->article_number, l->h_art)
	    || ix_set_has_h(&e->cp.tgt_grp[ai], l->grp, l->h_grp)
	    || ix_set_has_h(&e->cp.tgt_manu[ai], l->manu, l->h_manu);
}

// target_units counts the sale units among the promotion's target lines:
// the lines its actions' targets name, else those its article-type
// conditions selected, else the whole basket.
static int64_t
target_units(const ev *v, const ix_ent *e, const uint64_t *sel)
{
	const dre_promo *p = e->promo;
	int64_t          sum = 0;
	for (uint32_t i = 0; i < v->n; i++) {
		const ev_line *l = &v->lines[i];
		if (!l->sale)
			continue;
		bool in;
		if (e->cp.has_target) {
			in = false;
			for (uint32_t ai = 0; ai < p->nactions && !in; ai++)
				in = p->actions[ai].target.present
				    && ev_target_line(v, e, ai, i);
		} else if (e->cp.has_article_cond)
			in = bit_get(sel, i);
		else
			in = true;
		if (in)
			sum += l->qty;
	}
	return sum;
}

static void
record(ev_cres *cr, uint32_t ci, bool ok, int64_t have, int64_t need,
    bool qty_kind)
{
	if (ok) {
		cr->nmet++;
		return;
	}
	if (cr->nfail++ == 0) {
		cr->fail = (int32_t) ci;
		cr->have = have;
		cr->need = need;
		cr->qty_kind = qty_kind;
	}
}

bool
ev_conditions(ev *v, const ix_ent *e, uint64_t *sel, ev_cres *cr)
{
	const dre_promo            *p = e->promo;
	const Dre__EvaluateRequest *r = v->req;
	const Dre__CustomerInfo    *cu = r->customer;
	memset(cr, 0, sizeof(*cr));
	cr->fail = -1;
	// Article-type conditions first: they select the lines the others
	// (ITEM_QUANTITY) and untargeted actions work on. Every condition is
	// checked, also after a failure: a promotion that misses exactly one
	// is a near miss.
	for (uint32_t ci = 0; ci < p->nconds; ci++) {
		const dre_promo_cond *c = &p->conds[ci];
		if (c->type != DRE_COND_ARTICLE
		    && c->type != DRE_COND_ARTICLE_LIST
		    && c->type != DRE_COND_ARTICLE_GROUP
		    && c->type != DRE_COND_MANUFACTURER)
			continue;
		const ix_set *s = &e->cp.cond[ci];
		int64_t       qty = 0;
		bool          any = false;
		for (uint32_t i = 0; i < v->n; i++) {
			const ev_line *l = &v->lines[i];
			if (l->sale && line_in(s, c->type, l)) {
				any = true;
				qty += l->qty;
				bit_set(sel, i);
			}
		}
		int64_t need = c->min_quantity > 0 ? c->min_quantity : 1000;
		record(cr, ci, any && (c->min_quantity <= 0 || qty >= need),
		    qty, need, true);
	}
	for (uint32_t ci = 0; ci < p->nconds; ci++) {
		const dre_promo_cond *c = &p->conds[ci];
		const ix_set         *s = &e->cp.cond[ci];
		bool                  ok = false;
		int64_t               have = 0, need = 0;
		bool                  qk = false;
		switch (c->type) {
		case DRE_COND_ARTICLE:
		case DRE_COND_ARTICLE_LIST:
		case DRE_COND_ARTICLE_GROUP:
		case DRE_COND_MANUFACTURER:
			continue; // above
		case DRE_COND_ITEM_QUANTITY:
			have = target_units(v, e, sel);
			need = c->min_quantity;
			qk = true;
			ok = have >= need;
			break;
		case DRE_COND_RECEIPT_AMOUNT:
			// On the sale subtotal after line discounts: here the
			// gross subtotal, its upper bound; the run checks the
			// net.
			have = v->gross;
			need = c->min_amount;
			ok = have >= need;
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
		record(cr, ci, ok, have, need, qk);
	}
	return cr->nfail == 0;
}

// ---- eligible lines
// -----------------------------------------------------------

static bool
bundle_line(const ev *v, const ix_ent *e, uint32_t ai, uint32_t li)
{
	const dre_promo_action *ac = &e->promo->actions[ai];
	const ev_line          *l = &v->lines[li];
	for (uint32_t k = 0; k < ac->ncomponents; k++)
		if (ix_set_has_h(&e->cp.comp[ai][2 * k], l->it->article_number,
		        l->h_art)
		    || ix_set_has_h(
		        &e->cp.comp[ai][2 * k + 1], l->grp, l->h_grp))
			return true;
	return false;
}

// sort_by_price orders lines by unit price, dearest first; equal prices
// keep basket order.
static void
sort_by_price(const ev *v, uint32_t *x, uint32_t n)
{
	for (uint32_t i = 1; i < n; i++) {
		uint32_t y = x[i];
		int64_t  pr = v->lines[y].price;
		uint32_t j = i;
		for (; j > 0 && v->lines[x[j - 1]].price < pr; j--)
			x[j] = x[j - 1];
		x[j] = y;
	}
}

void
ev_app_prepare(ev *v, ev_app *a)
{
	const ix_ent    *e = a->e;
	const dre_promo *p = a->p;
	a->elig = ev_get(v, (p->nactions + 1) * sizeof(uint32_t *));
	a->nelig = ev_get(v, (p->nactions + 1) * sizeof(uint32_t));
	a->pot = ev_get(v, (v->words + 1) * sizeof(uint64_t));
	for (uint32_t ai = 0; ai < p->nactions; ai++) {
		const dre_promo_action *ac = &p->actions[ai];
		bool                    sorted = false;
		int                     mode; // 0 none, 1 line, 2 receipt, ...
		switch (ac->type) {
		case DRE_ACT_ARTICLE:
		case DRE_ACT_ARTICLE_GROUP:
		case DRE_ACT_ARTICLE_LIST:
		case DRE_ACT_QUANTITY_TIER:
			mode = 1;
			sorted = ac->max_quantity > 0;
			break;
		case DRE_ACT_RECEIPT:
		case DRE_ACT_SCALED_RECEIPT:
			mode = 2;
			break;
		case DRE_ACT_BUNDLE:
			mode = 3;
			break;
		case DRE_ACT_FREE_ITEM:
			mode = 4;
			sorted = true;
			break;
		default:
			mode = 0;
			break;
		}
		if (mode == 0)
			continue;
		if (mode == 2 && !ac->target.present) {
			// Every sale line: one shared list.
			a->elig[ai] = v->sale_lines;
			a->nelig[ai] = v->nsale;
			for (uint32_t w = 0; w < v->words; w++)
				a->pot[w] |= v->sale_bits[w];
			continue;
		}
		uint32_t *x = ev_get(v, v->n * sizeof(uint32_t));
		uint32_t  nx = 0;
		if (mode == 1 && !ac->target.present
		    && e->cp.has_article_cond) {
			// The lines the conditions selected (sale lines only).
			for (uint32_t w = 0; w < v->words; w++)
				for (uint64_t b = a->sel[w]; b != 0;
				     b &= b - 1)
					x[nx++] = w * 64
					    + (uint32_t) __builtin_ctzll(b);
			for (uint32_t w = 0; w < v->words; w++)
				a->pot[w] |= a->sel[w];
			if (sorted)
				sort_by_price(v, x, nx);
			a->elig[ai] = x;
			a->nelig[ai] = nx;
			continue;
		}
		for (uint32_t i = 0; i < v->n; i++) {
			const ev_line *l = &v->lines[i];
			if (!l->sale)
				continue;
			bool in;
			switch (mode) {
			case 1:
				in = ac->target.present
				    ? ev_target_line(v, e, ai, i)
				    : e->cp.has_article_cond
				    ? bit_get(a->sel, i)
				    : true;
				break;
			case 2:
				in = !ac->target.present
				    || ev_target_line(v, e, ai, i);
				break;
			case 3:
				in = bundle_line(v, e, ai, i);
				break;
			default:
				in = strcmp(l->it->article_number,
				         ac->article_number)
				    == 0;
				break;
			}
			if (in) {
				x[nx++] = i;
				bit_set(a->pot, i);
			}
		}
		if (sorted)
			sort_by_price(v, x, nx);
		a->elig[ai] = x;
		a->nelig[ai] = nx;
	}
}

bool
ev_dyn_ok(ev *v, ev_app *a)
{
	const dre_promo *p = a->p;
	if (v->run.force >= 0 && &v->apps[v->run.force] == a)
		return true;
	for (uint32_t ci = 0; ci < p->nconds; ci++) {
		const dre_promo_cond *c = &p->conds[ci];
		if (c->type == DRE_COND_RECEIPT_AMOUNT
		    && v->run.line_net < c->min_amount) {
			a->failed = true;
			a->lost = true; // it held at the gross subtotal
			a->dyn_have = v->run.line_net;
			a->dyn_need = c->min_amount;
			return false;
		}
	}
	return true;
}
