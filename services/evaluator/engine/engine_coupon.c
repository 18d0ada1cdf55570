// engine_coupon.c -- the coupons of one basket (issue 5): which codes apply
// (the coupon service's verdict, duplicates, stackability), the promotions
// they trigger, and appliedCoupons / invalidCoupons.
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dre/json.h"
#include "engine_int.h"

static bool
type_listed(const dre_promo *p, const char *type_id)
{
	if (type_id == NULL)
		return false;
	for (uint32_t i = 0; i < p->coupon_type_ids.n; i++)
		if (strcmp(p->coupon_type_ids.v[i], type_id) == 0)
			return true;
	return false;
}

static int
rank_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *) x, b = *(const uint32_t *) y;
	return a < b ? -1 : a > b;
}

// cand_find returns the position of rank in the sorted candidates, or -1.
static long
cand_find(const ev *v, uint32_t rank)
{
	long lo = 0, hi = (long) v->ncand - 1;
	while (lo <= hi) {
		long mid = (lo + hi) / 2;
		if (v->cand[mid] == rank)
			return mid;
		if (v->cand[mid] < rank)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

// judge decides, in basket order, which codes apply: the check's verdict
// first, then the same code twice (DUPLICATE), then stackability: a
// non-stackable coupon combines with no other coupon, so once one applies
// every later valid code is NOT_STACKABLE, and a non-stackable code after an
// applied one is NOT_STACKABLE too (the first applied wins).
static void
judge(ev *v)
{
	const eng_eval_ctx *c = v->ctx;
	bool                any = false, exclusive = false;
	for (uint32_t i = 0; i < v->ncoup; i++) {
		const eng_coupon_result *r = &v->coup[i];
		const char              *bad = NULL;
		if (c->coupons == NULL)
			bad = "UNAVAILABLE";
		else if (!r->valid)
			bad = nonempty(r->reason) ? r->reason : "NOT_FOUND";
		for (uint32_t j = 0; j < i && bad == NULL; j++)
			if (strcasecmp(v->coup[j].code, r->code) == 0)
				bad = "DUPLICATE";
		if (bad == NULL && any && (exclusive || !r->stackable))
			bad = "NOT_STACKABLE";
		if (bad == NULL) {
			any = true;
			exclusive = !r->stackable;
		}
		v->coup_bad[i] = bad;
	}
}

void
ev_coupons_decide(ev *v)
{
	const eng_eval_ctx         *c = v->ctx;
	const Dre__EvaluateRequest *req = v->req;
	v->ncoup = (uint32_t) req->n_coupons;
	v->coup_bad = ev_get(v, (v->ncoup + 1) * sizeof(char *));
	if (c->coupons != NULL && c->ncoupons == req->n_coupons)
		v->coup = c->coupons;
	else { // not asked, no answer, or an answer of another shape
		eng_coupon_result *u = ev_get(v, (v->ncoup + 1) * sizeof(*u));
		for (uint32_t i = 0; i < v->ncoup; i++) {
			u[i].code = req->coupons[i] ? req->coupons[i] : "";
			u[i].reason = "UNAVAILABLE";
		}
		v->coup = u;
	}
	judge(v);
	if (v->t == NULL || c->coupons == NULL)
		return;
	// The promotions of the applied codes, checked in the engine's own
	// index (its tenant; must list the coupon's type).
	uint32_t ntr = 0, cap = 0;
	for (uint32_t i = 0; i < v->ncoup; i++)
		if (v->coup_bad[i] == NULL)
			cap += (uint32_t) v->coup[i].npromotion_ids;
	if (cap == 0)
		return;
	uint32_t *tr = ev_get(v, cap * sizeof(uint32_t));
	int32_t  *trc = ev_get(v, cap * sizeof(int32_t));
	for (uint32_t i = 0; i < v->ncoup; i++) {
		const eng_coupon_result *r = &v->coup[i];
		if (v->coup_bad[i] != NULL)
			continue;
		for (size_t k = 0; k < r->npromotion_ids; k++) {
			long rank = ix_promo_rank(v->t, r->promotion_ids[k]);
			if (rank < 0
			    || !type_listed(
			        v->t->promos[rank]->promo, r->type_id))
				continue;
			tr[ntr] = (uint32_t) rank;
			trc[ntr++] = (int32_t) i;
		}
	}
	if (ntr == 0)
		return;
	// Merge them into the (sorted, unique) candidates.
	uint32_t *m = ev_get(v, (v->ncand + ntr + 1) * sizeof(uint32_t));
	memcpy(m, v->cand, v->ncand * sizeof(uint32_t));
	memcpy(m + v->ncand, tr, ntr * sizeof(uint32_t));
	uint32_t n = v->ncand + ntr, u = 0;
	qsort(m, n, sizeof(uint32_t), rank_cmp);
	for (uint32_t i = 0; i < n; i++)
		if (u == 0 || m[u - 1] != m[i])
			m[u++] = m[i];
	v->cand = m;
	v->ncand = u;
	v->cand_coupon = ev_get(v, (u + 1) * sizeof(int32_t));
	for (uint32_t i = 0; i < u; i++)
		v->cand_coupon[i] = -1;
	for (uint32_t k = 0; k < ntr; k++) { // the first code (order) wins
		long pos = cand_find(v, tr[k]);
		if (pos >= 0 && v->cand_coupon[pos] < 0)
			v->cand_coupon[pos] = trc[k];
	}
}

const char *
ev_coupon_gate(ev *v, const dre_promo *p)
{
	if (!v->want_missed)
		return NULL;
	for (uint32_t i = 0; i < v->ncoup; i++)
		if (type_listed(p, v->coup[i].type_id))
			return ev_printf(v, "coupon %.*s not applied: %s",
			    DRE_UTF8_CUT(v->coup[i].code, 60),
			    v->coup_bad[i] ? v->coup_bad[i] : "superseded");
	return ev_printf(v, "needs a coupon of type %.*s",
	    DRE_UTF8_CUT(
	        p->coupon_type_ids.n ? p->coupon_type_ids.v[0] : "", 60));
}

void
ev_coupons_respond(ev *v, Dre__EvaluateResponse *r)
{
	r->applied_coupons
	    = ev_get(v, (v->ncoup + 1) * sizeof(Dre__AppliedCoupon *));
	r->invalid_coupons
	    = ev_get(v, (v->ncoup + 1) * sizeof(Dre__InvalidCoupon *));
	for (uint32_t i = 0; i < v->ncoup; i++) {
		const eng_coupon_result *c = &v->coup[i];
		if (v->coup_bad[i] != NULL) {
			Dre__InvalidCoupon *x = ev_get(v, sizeof(*x));
			dre__invalid_coupon__init(x);
			x->code = (char *) c->code;
			x->reason = (char *) v->coup_bad[i];
			r->invalid_coupons[r->n_invalid_coupons++] = x;
			continue;
		}
		// Kept applied even when its promotions gave nothing
		// (promotionIds empty): the code is good, the basket did not
		// meet its promotions' conditions (README "Coupons").
		Dre__AppliedCoupon *x = ev_get(v, sizeof(*x));
		dre__applied_coupon__init(x);
		x->code = (char *) c->code;
		x->coupon_type_name = (char *) c->type_name;
		x->promotion_ids = ev_get(v, (v->napps + 1) * sizeof(char *));
		for (uint32_t ax = 0; ax < v->napps; ax++)
			if (v->apps[ax].coupon == c->code
			    && ev_app_applied(v, ax))
				x->promotion_ids[x->n_promotion_ids++]
				    = (char *) v->apps[ax].p->id;
		r->applied_coupons[r->n_applied_coupons++] = x;
	}
}
