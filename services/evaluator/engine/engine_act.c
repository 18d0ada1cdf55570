// engine_act.c -- one run of a combination of promotions over the basket:
// line actions in priority order, then receipt actions, then loyalty. The
// best-price search runs many combinations; the chosen one runs once more
// recording every discount.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine_int.h"

int64_t
ev_round(const dre_promo *p, __int128 num, __int128 den)
{
	if (num <= 0 || den <= 0)
		return 0;
	if (p->rounding == DRE_ROUND_NONE)
		return dre_div_round(num, den, DRE_ROUND_HALF_UP);
	return dre_round_to_precision(num, den, p->rounding, p->precision);
}

static void
run_alloc(ev *v)
{
	ev_run *r = &v->run;
	size_t  n = v->n + 1;
	r->rem = ev_get(v, n * sizeof(int64_t));
	r->owner = ev_get(v, n * sizeof(int32_t));
	r->ndisc = ev_get(v, n * sizeof(uint16_t));
	r->first_app = ev_get(v, n * sizeof(int32_t));
	r->bundled = ev_get(v, n * sizeof(int64_t));
	r->amt = ev_get(v, n * sizeof(int64_t));
	r->fdt = ev_get(v, n * sizeof(dre_disc_type));
	r->fval = ev_get(v, n * sizeof(int64_t));
	r->gift = ev_get(v, n * sizeof(bool));
	r->touched = ev_get(v, n * sizeof(uint32_t));
	r->head = ev_get(v, n * sizeof(ev_ldisc *));
	r->tail = ev_get(v, n * sizeof(ev_ldisc *));
	r->nld = ev_get(v, n * sizeof(uint16_t));
	r->free_app = ev_get(v, n * sizeof(int32_t));
	r->rx = ev_get(v, n * sizeof(uint32_t));
	r->rw = ev_get(v, n * sizeof(int64_t));
	r->rshare = ev_get(v, n * sizeof(int64_t));
	r->dfrac = ev_get(v, n * sizeof(int64_t));
	r->dbase = ev_get(v, n * sizeof(int64_t));
	r->dord = ev_get(v, n * sizeof(uint32_t));
	r->dout = ev_get(v, n * sizeof(bool));
}

void
ev_run_reset(ev *v, bool rec)
{
	ev_run *r = &v->run;
	if (r->rem == NULL)
		run_alloc(v);
	for (uint32_t i = 0; i < v->n; i++) {
		r->rem[i] = v->lines[i].sale ? v->lines[i].total : 0;
		r->owner[i] = -1;
		r->ndisc[i] = 0;
		r->first_app[i] = -1;
		r->bundled[i] = 0;
	}
	r->line_net = v->gross;
	r->saving = 0;
	r->ntouched = 0;
	r->rec = rec;
	if (rec) {
		for (uint32_t i = 0; i < v->n; i++) {
			r->head[i] = r->tail[i] = NULL;
			r->nld[i] = 0;
			r->free_app[i] = -1;
		}
		r->grants = r->grants_tail = NULL;
		r->ngrants = 0;
	}
	for (uint32_t k = 0; k < v->napps; k++) {
		ev_app *a = &v->apps[k];
		a->contrib = 0;
		a->failed = a->lost = a->blocked = a->empty = false;
		a->granted = false;
		a->points = 0;
	}
}

// ---- per promotion scratch
// ---------------------------------------------------

// usable: app ax may discount line li (LINE exclusivity of others, and of
// ax itself: a LINE promotion takes only lines nobody else discounted).
static bool
usable(ev *v, uint32_t ax, uint32_t li)
{
	ev_run *r = &v->run;
	if (r->owner[li] >= 0 && r->owner[li] != (int32_t) ax) {
		v->apps[ax].blocked = true;
		return false;
	}
	if (v->apps[ax].line_excl && r->ndisc[li] > 0
	    && !(r->ndisc[li] == 1 && r->first_app[li] == (int32_t) ax)) {
		v->apps[ax].blocked = true;
		return false;
	}
	return true;
}

static inline int64_t
avail(const ev_run *r, uint32_t li)
{
	return r->rem[li] - r->amt[li];
}

static void
touch(ev *v, uint32_t li, dre_disc_type dt, int64_t val, int64_t d, bool gift)
{
	ev_run *r = &v->run;
	if (d <= 0)
		return;
	if (r->amt[li] == 0) {
		r->touched[r->ntouched++] = li;
		r->fdt[li] = dt;
		r->fval[li] = val;
		r->gift[li] = false;
	}
	r->amt[li] += d;
	if (gift)
		r->gift[li] = true;
}

static void
record(ev *v, uint32_t ax, uint32_t li, int64_t d)
{
	ev_run *r = &v->run;
	for (ev_ldisc *x = r->head[li]; x != NULL; x = x->next)
		if (x->app == ax) {
			x->amount += d;
			return;
		}
	ev_ldisc *x = ev_get(v, sizeof(*x));
	x->app = ax;
	x->dt = r->fdt[li];
	x->value = r->fval[li];
	x->amount = d;
	if (r->tail[li] != NULL)
		r->tail[li]->next = x;
	else
		r->head[li] = x;
	r->tail[li] = x;
	r->nld[li]++;
}

// commit books the scratch amounts of app ax on the lines.
static void
commit(ev *v, uint32_t ax, bool line_stage)
{
	ev_run *r = &v->run;
	ev_app *a = &v->apps[ax];
	for (uint32_t k = 0; k < r->ntouched; k++) {
		uint32_t li = r->touched[k];
		int64_t  d = r->amt[li];
		r->amt[li] = 0;
		if (d > r->rem[li]) // never: every action caps at what is left
			d = r->rem[li];
		if (d <= 0)
			continue;
		r->rem[li] -= d;
		if (line_stage)
			r->line_net -= d;
		r->saving += d;
		a->contrib += d;
		if (r->ndisc[li]++ == 0)
			r->first_app[li] = (int32_t) ax;
		if (a->line_excl)
			r->owner[li] = (int32_t) ax;
		if (r->rec) {
			record(v, ax, li, d);
			if (r->gift[li] && r->free_app[li] < 0)
				r->free_app[li] = (int32_t) ax;
		}
	}
	r->ntouched = 0;
}

// ---- line actions
// -----------------------------------------------------------------

// markdown discounts the eligible units of action ai (dearest first when
// maxQuantity limits them) by dt/val: PERCENTAGE of the line total (or of
// what is left, multiplicative), ABSOLUTE off each unit, UNIT_PRICE each
// unit sold at val.
static void
markdown(ev *v, uint32_t ax, uint32_t ai, dre_disc_type dt, int64_t val)
{
	ev_run                 *r = &v->run;
	ev_app                 *a = &v->apps[ax];
	const dre_promo        *p = a->p;
	const dre_promo_action *ac = &p->actions[ai];
	bool                    mult = p->calc_mode == DRE_CALC_MULTIPLICATIVE;
	int64_t left = ac->max_quantity > 0 ? ac->max_quantity : INT64_MAX;
	for (uint32_t k = 0; k < a->nelig[ai] && left > 0; k++) {
		uint32_t       li = a->elig[ai][k];
		const ev_line *l = &v->lines[li];
		if (!usable(v, ax, li))
			continue;
		int64_t av = avail(r, li);
		if (av <= 0)
			continue;
		int64_t units = l->qty < left ? l->qty : left;
		int64_t d = 0;
		switch (dt) {
		case DRE_DISC_PERCENTAGE:
			d = ev_round(p,
			    (__int128) (mult ? av : l->total) * units * val,
			    (__int128) l->qty * 10000);
			break;
		case DRE_DISC_ABSOLUTE: {
			int64_t off = val < l->price ? val : l->price;
			d = ev_round(p, (__int128) off * units, 1000);
			break;
		}
		case DRE_DISC_UNIT_PRICE:
			if (mult) {
				// What is left above val x qty; only a
				// positive gap is multiplied: a negative one
				// (val above the price, up to 1e30) times
				// units would leave 128 bits.
				__int128 gap = (__int128) av * 1000
				    - (__int128) val * l->qty;
				if (gap > 0)
					d = ev_round(p, gap * units,
					    (__int128) l->qty * 1000);
			} else if (l->price > val)
				d = ev_round(p,
				    (__int128) (l->price - val) * units, 1000);
			break;
		}
		if (d > av)
			d = av;
		if (d <= 0)
			continue;
		left -= units;
		touch(v, li, dt, val, d, false);
	}
}

static void
quantity_tier(ev *v, uint32_t ax, uint32_t ai)
{
	ev_app                 *a = &v->apps[ax];
	const dre_promo_action *ac = &a->p->actions[ai];
	int64_t                 q = 0;
	for (uint32_t k = 0; k < a->nelig[ai]; k++)
		q += v->lines[a->elig[ai][k]].qty;
	const dre_promo_tier *tier = NULL;
	for (uint32_t t = 0; t < ac->ntiers; t++) // ascending
		if (ac->tiers[t].min_quantity <= q)
			tier = &ac->tiers[t];
	if (tier == NULL && v->run.force == (int32_t) ax && ac->ntiers > 0)
		tier = &ac->tiers[0];
	if (tier == NULL) {
		a->empty = true;
		return;
	}
	markdown(v, ax, ai, tier->disc_type, tier->value);
}

// distribute splits d over the lines x[0..n) pro rata to w, never more than
// cap on a line: shares in minor units, the remainder cents to the largest
// fractional parts (ties to the earlier line); a line over its cap is held
// at it and the rest shared again. Returns what was placed.
static int64_t
distribute(ev *v, uint32_t n, const int64_t *w, const int64_t *cap, int64_t d,
    int64_t *share)
{
	// n <= lines: the per-run scratch is large enough.
	bool     *out = v->run.dout;
	int64_t  *frac = v->run.dfrac;
	int64_t  *base = v->run.dbase;
	uint32_t *ord = v->run.dord;
	int64_t   placed = 0;
	for (uint32_t i = 0; i < n; i++) {
		share[i] = 0;
		out[i] = w[i] <= 0 || cap[i] <= 0;
	}
	while (d > 0) {
		__int128 wsum = 0;
		int64_t  csum = 0;
		uint32_t no = 0;
		for (uint32_t i = 0; i < n; i++)
			if (!out[i]) {
				wsum += w[i];
				csum += cap[i];
				ord[no++] = i;
			}
		if (no == 0 || wsum == 0)
			break;
		if (d >= csum) {
			for (uint32_t k = 0; k < no; k++) {
				share[ord[k]] = cap[ord[k]];
				placed += cap[ord[k]];
			}
			break;
		}
		int64_t given = 0;
		if (d < INT32_MAX && wsum < INT32_MAX) {
			// Cents and weights below 21 million units: the
			// products fit 64 bits (the common case).
			int64_t ws = (int64_t) wsum;
			for (uint32_t k = 0; k < no; k++) {
				uint32_t i = ord[k];
				int64_t  num = d * w[i];
				base[i] = num / ws;
				frac[i] = num % ws;
				given += base[i];
			}
		} else
			for (uint32_t k = 0; k < no; k++) {
				uint32_t i = ord[k];
				__int128 num = (__int128) d * w[i];
				base[i] = (int64_t) (num / wsum);
				frac[i] = (int64_t) (num % wsum);
				given += base[i];
			}
		// Largest fractional part first; equal parts keep line order
		// (ord is ascending, the sort is stable).
		for (uint32_t k = 1; k < no; k++) {
			uint32_t y = ord[k], j = k;
			for (; j > 0 && frac[ord[j - 1]] < frac[y]; j--)
				ord[j] = ord[j - 1];
			ord[j] = y;
		}
		for (int64_t k = 0; k < d - given; k++)
			base[ord[k]]++;
		bool over = false;
		for (uint32_t k = 0; k < no; k++) {
			uint32_t i = ord[k];
			if (base[i] > cap[i]) {
				over = true;
				share[i] = cap[i];
				placed += cap[i];
				d -= cap[i];
				out[i] = true;
			}
		}
		if (!over) {
			for (uint32_t k = 0; k < no; k++) {
				share[ord[k]] = base[ord[k]];
				placed += base[ord[k]];
			}
			break;
		}
	}
	return placed;
}

// bundle_match assigns units of the eligible lines (in order of value, the
// dearest first) to k bundles: a greedy on the transversal matroid of units
// and component slots with augmenting paths (lines may move between
// components they fit), so overlapping components still get the most
// valuable feasible set. Paths carry as many units as they can at once: the
// cost follows lines and components, never the quantities. True when all
// k * (units per bundle) slots are filled; use[j] = units of line j used.
static bool
bundle_match(ev *v, const dre_promo_action *ac, const bool *adj,
    const int64_t *units, const uint32_t *order, uint32_t ne, int64_t k,
    int64_t *flow, int64_t *use)
{
	uint32_t nc = ac->ncomponents;
	int64_t *capc = ev_get(v, (nc + 1) * sizeof(int64_t));
	int64_t *used = ev_get(v, (nc + 1) * sizeof(int64_t));
	int32_t *prev = ev_get(v, (nc + 1) * sizeof(int32_t));
	int32_t *via = ev_get(v, (nc + 1) * sizeof(int32_t));
	int32_t *queue = ev_get(v, (nc + 1) * sizeof(int32_t));
	bool    *seen = ev_get(v, (nc + 1) * sizeof(bool));
	int64_t  need = 0, got = 0;
	for (uint32_t c = 0; c < nc; c++) {
		capc[c] = k * (ac->components[c].quantity / 1000);
		used[c] = 0;
		need += capc[c];
	}
	memset(flow, 0, (size_t) ne * nc * sizeof(int64_t));
	for (uint32_t o = 0; o < ne && got < need; o++) {
		uint32_t j = order[o];
		int64_t  left = units[j];
		while (left > 0 && got < need) {
			// BFS over components from line j.
			uint32_t qh = 0, qt = 0;
			int32_t  end = -1;
			memset(seen, 0, nc * sizeof(bool));
			for (uint32_t c = 0; c < nc; c++)
				if (adj[j * nc + c]) {
					seen[c] = true;
					prev[c] = -1;
					queue[qt++] = (int32_t) c;
				}
			while (qh < qt && end < 0) {
				int32_t c = queue[qh++];
				if (used[c] < capc[c]) {
					end = c;
					break;
				}
				for (uint32_t l2 = 0; l2 < ne; l2++) {
					if (flow[l2 * nc + (uint32_t) c] == 0)
						continue;
					for (uint32_t c2 = 0; c2 < nc; c2++)
						if (!seen[c2]
						    && adj[l2 * nc + c2]) {
							seen[c2] = true;
							prev[c2] = c;
							via[c2] = (int32_t) l2;
							queue[qt++]
							    = (int32_t) c2;
						}
				}
			}
			if (end < 0)
				break; // no more units of this line fit
			int64_t b = left < capc[end] - used[end]
			    ? left
			    : capc[end] - used[end];
			for (int32_t c = end; prev[c] >= 0; c = prev[c]) {
				int64_t f = flow[(uint32_t) via[c] * nc
				    + (uint32_t) prev[c]];
				if (f < b)
					b = f;
			}
			used[end] += b;
			int32_t c = end;
			while (prev[c] >= 0) {
				uint32_t l2 = (uint32_t) via[c];
				flow[l2 * nc + (uint32_t) c] += b;
				flow[l2 * nc + (uint32_t) prev[c]] -= b;
				c = prev[c];
			}
			flow[j * nc + (uint32_t) c] += b;
			got += b;
			left -= b;
		}
	}
	for (uint32_t j = 0; j < ne; j++) {
		use[j] = 0;
		for (uint32_t c = 0; c < nc; c++)
			use[j] += flow[j * nc + c];
	}
	return got == need;
}

// bundle forms as many complete bundles as the unbundled units allow (at
// most maxApplications), with the units that give the customer the most,
// and spreads the bundles' discount over their lines pro rata.
static void
bundle(ev *v, uint32_t ax, uint32_t ai)
{
	ev_run                 *r = &v->run;
	ev_app                 *a = &v->apps[ax];
	const dre_promo        *p = a->p;
	const dre_promo_action *ac = &p->actions[ai];
	const ix_ent           *e = a->e;
	uint32_t                ne = a->nelig[ai], nc = ac->ncomponents;
	const uint32_t         *el = a->elig[ai];
	bool                    mult = p->calc_mode == DRE_CALC_MULTIPLICATIVE;
	int64_t                 per = 0; // units per bundle
	for (uint32_t c = 0; c < nc; c++)
		per += ac->components[c].quantity / 1000;
	if (ne == 0 || nc == 0 || per <= 0) {
		a->empty = true;
		return;
	}
	bool     *adj = ev_get(v, ne * nc * sizeof(bool));
	int64_t  *units = ev_get(v, ne * sizeof(int64_t));
	int64_t  *weight = ev_get(v, ne * sizeof(int64_t));
	uint32_t *order = ev_get(v, ne * sizeof(uint32_t));
	int64_t   total = 0;
	for (uint32_t j = 0; j < ne; j++) {
		uint32_t       li = el[j];
		const ev_line *l = &v->lines[li];
		units[j] = 0;
		// A unit already discounted to nothing still completes a
		// bundle (its share is capped, the rest goes to the others).
		if (usable(v, ax, li))
			units[j] = (l->qty - r->bundled[li]) / 1000;
		if (units[j] < 0)
			units[j] = 0;
		total += units[j];
		weight[j] = mult
		    ? dre_div_round((__int128) avail(r, li) * 1000, l->qty,
		        DRE_ROUND_HALF_UP)
		    : l->price;
		for (uint32_t c = 0; c < nc; c++)
			adj[j * nc + c] = ix_set_has_h(&e->cp.comp[ai][2 * c],
			                      l->it->article_number, l->h_art)
			    || ix_set_has_h(
			        &e->cp.comp[ai][2 * c + 1], l->grp, l->h_grp);
		order[j] = j;
	}
	for (uint32_t i = 1; i < ne; i++) { // dearest first, stable
		uint32_t y = order[i], j = i;
		for (; j > 0 && weight[order[j - 1]] < weight[y]; j--)
			order[j] = order[j - 1];
		order[j] = y;
	}
	int64_t kmax = total / per;
	if (ac->max_applications > 0 && kmax > ac->max_applications)
		kmax = ac->max_applications;
	int64_t *flow = ev_get(v, ne * nc * sizeof(int64_t));
	int64_t *use = ev_get(v, ne * sizeof(int64_t));
	// Feasibility falls with k: the largest feasible k by bisection.
	int64_t k = kmax;
	if (k > 0
	    && !bundle_match(v, ac, adj, units, order, ne, k, flow, use)) {
		int64_t lo = 0, hi = kmax; // lo feasible (or 0), hi not
		while (hi - lo > 1) {
			int64_t mid = lo + (hi - lo) / 2;
			if (bundle_match(
			        v, ac, adj, units, order, ne, mid, flow, use))
				lo = mid;
			else
				hi = mid;
		}
		k = lo;
		if (k > 0)
			bundle_match(
			    v, ac, adj, units, order, ne, k, flow, use);
	}
	if (k == 0) {
		a->empty = true;
		return;
	}
	int64_t *val = ev_get(v, ne * sizeof(int64_t));
	int64_t *cap = ev_get(v, ne * sizeof(int64_t));
	int64_t *share = ev_get(v, ne * sizeof(int64_t));
	int64_t  regular = 0;
	for (uint32_t j = 0; j < ne; j++) {
		uint32_t       li = el[j];
		const ev_line *l = &v->lines[li];
		val[j] = 0;
		cap[j] = 0;
		if (use[j] == 0)
			continue;
		val[j] = mult
		    ? dre_div_round((__int128) avail(r, li) * use[j] * 1000,
		        l->qty, DRE_ROUND_HALF_UP)
		    : l->price * use[j];
		cap[j] = avail(r, li);
		regular += val[j];
		r->bundled[li] += use[j] * 1000;
	}
	int64_t       d;
	dre_disc_type dt = ac->disc_type;
	int64_t       dv = ac->value;
	if (ac->bundle_price >= 0) {
		__int128 x
		    = (__int128) regular - (__int128) k * ac->bundle_price;
		d = x > 0 ? (int64_t) x : 0;
		dt = DRE_DISC_UNIT_PRICE; // the bundle sold at bundlePrice
		dv = ac->bundle_price;
	} else if (ac->disc_type == DRE_DISC_PERCENTAGE)
		d = ev_round(p, (__int128) regular * ac->value, 10000);
	else
		d = (__int128) k * ac->value < regular ? k * ac->value
		                                       : regular;
	if (d <= 0) {
		a->empty = true;
		return;
	}
	distribute(v, ne, val, cap, d, share);
	for (uint32_t j = 0; j < ne; j++)
		touch(v, el[j], dt, dv, share[j], false);
}

static const ix_ent *
master_article(const ev *v, const char *art)
{
	return v->t ? ix_article(v->t, art) : NULL;
}

// free_item: the article in the basket gets the units free (gift branch);
// what the basket does not hold is granted (inject branch).
static void
free_item(ev *v, uint32_t ax, uint32_t ai)
{
	ev_run                 *r = &v->run;
	ev_app                 *a = &v->apps[ax];
	const dre_promo        *p = a->p;
	const dre_promo_action *ac = &p->actions[ai];
	int64_t                 left = ac->quantity * 1000;
	for (uint32_t k = 0; k < a->nelig[ai] && left > 0; k++) {
		uint32_t       li = a->elig[ai][k];
		const ev_line *l = &v->lines[li];
		if (!usable(v, ax, li) || avail(r, li) <= 0)
			continue;
		int64_t units = l->qty < left ? l->qty : left;
		int64_t d = ev_round(p, (__int128) l->price * units, 1000);
		if (d > avail(r, li))
			d = avail(r, li);
		if (d <= 0)
			continue;
		left -= units;
		touch(v, li, DRE_DISC_UNIT_PRICE, 0, d, true);
	}
	int64_t q = left / 1000;
	if (q <= 0)
		return;
	const char   *src;
	int64_t       price;
	const ix_ent *m = master_article(v, ac->article_number);
	if (a->nelig[ai] > 0) {
		src = "BASKET_PRICE";
		price = v->lines[a->elig[ai][0]].price;
	} else if (ac->reference_price >= 0) {
		src = "REFERENCE_PRICE";
		price = ac->reference_price;
	} else if (m != NULL && m->reference_price >= 0) {
		src = "MASTER_DATA";
		price = m->reference_price;
	} else {
		src = "UNKNOWN_ZERO";
		price = 0;
	}
	// Quantities and prices are bounded (Decimal(15,2), 10^6 units): the
	// value is kept within a Decimal(15,2) all the same.
	int64_t value = (__int128) price * q > 999999999999999LL
	    ? 999999999999999LL
	    : price * q;
	r->saving += value;
	a->contrib += value;
	a->granted = true;
	if (!r->rec)
		return;
	uint32_t nth = 1;
	for (ev_grant *x = r->grants; x != NULL; x = x->next)
		if (strcmp(x->g->promotion_id, p->id) == 0)
			nth++;
	Dre__GrantedItem *g = ev_get(v, sizeof(*g));
	dre__granted_item__init(g);
	g->grant_reference
	    = ev_printf(v, "GRANT-%.8s-%s-%u", p->id, ac->article_number, nth);
	g->article_number = (char *) ac->article_number;
	g->ean = m != NULL ? (char *) m->ean : NULL;
	g->quantity = q;
	g->reference_price = price;
	g->price_source = (char *) src;
	g->give_away_value = value;
	g->promotion_id = (char *) p->id;
	g->promotion_name = (char *) (p->name ? p->name : "");
	g->has_triggered_by_coupon = true;
	g->triggered_by_coupon = a->coupon != NULL;
	ev_grant *node = ev_get(v, sizeof(*node));
	node->g = g;
	if (r->grants_tail)
		r->grants_tail->next = node;
	else
		r->grants = node;
	r->grants_tail = node;
	r->ngrants++;
}

// ---- receipt actions
// ----------------------------------------------------------------

int64_t
ev_receipt_tier_value(
    const dre_promo_action *ac, int64_t amount, const dre_promo_tier **tp)
{
	const dre_promo_tier *tier = NULL;
	int64_t               idx = -1;
	for (uint32_t t = 0; t < ac->ntiers; t++)
		if (ac->tiers[t].threshold <= amount) {
			tier = &ac->tiers[t];
			idx = t;
		}
	*tp = tier;
	return idx;
}

// receipt: a basket discount (RECEIPT, or the SCALED_RECEIPT tier the sale
// subtotal after line discounts reached) spread over the eligible sale lines
// pro rata to their net.
static void
receipt(ev *v, uint32_t ax, uint32_t ai)
{
	ev_run                 *r = &v->run;
	ev_app                 *a = &v->apps[ax];
	const dre_promo        *p = a->p;
	const dre_promo_action *ac = &p->actions[ai];
	bool                    forced = r->force == (int32_t) ax;
	dre_disc_type           dt = ac->disc_type;
	int64_t                 val = ac->value;
	if (ac->type == DRE_ACT_SCALED_RECEIPT) {
		int64_t amount = r->line_net;
		if (forced && r->force_amount > amount)
			amount = r->force_amount;
		const dre_promo_tier *tier, *at_gross;
		int64_t i = ev_receipt_tier_value(ac, amount, &tier);
		if (ev_receipt_tier_value(ac, v->gross, &at_gross) > i) {
			a->lost = true;
			a->dyn_have = amount;
			a->dyn_need = ac->tiers[i + 1].threshold;
		}
		a->tier_amount = amount;
		if (tier == NULL) {
			a->empty = true;
			return;
		}
		dt = tier->disc_type;
		val = tier->value;
	}
	uint32_t  ne = a->nelig[ai];
	uint32_t *x = r->rx;
	int64_t  *w = r->rw;
	int64_t  *share = r->rshare;
	uint32_t  nx = 0;
	int64_t   base = 0, room = 0;
	// ADDITIVE reads the eligible lines' totals (a line another
	// promotion made free still counts), MULTIPLICATIVE what is left.
	// In a search run, receipt discounts that no later one reads line by
	// line add only their total (r->unsplit): the sums later untargeted
	// receipt actions read do not depend on how it was split.
	bool split = r->rec || (int32_t) ax < r->split_until
	    || ((int32_t) ax == r->split_until && ai + 1 < a->p->nactions);
	for (uint32_t k = 0; k < ne; k++) {
		uint32_t li = a->elig[ai][k];
		if (!usable(v, ax, li))
			continue;
		int64_t av = avail(r, li);
		base += p->calc_mode == DRE_CALC_MULTIPLICATIVE
		    ? av
		    : v->lines[li].total;
		if (av <= 0)
			continue;
		room += av;
		if (split) {
			x[nx] = li;
			w[nx] = av;
		}
		nx++;
	}
	if (!split) {
		room -= r->unsplit;
		if (p->calc_mode == DRE_CALC_MULTIPLICATIVE)
			base -= r->unsplit;
	}
	if (forced && !ac->target.present && r->force_amount > base)
		base = r->force_amount;
	int64_t d = dt == DRE_DISC_PERCENTAGE
	    ? ev_round(p, (__int128) base * val, 10000)
	    : val;
	if (d > room)
		d = room;
	if (d <= 0) {
		if (nx == 0)
			a->empty = true;
		return;
	}
	if (!split) {
		r->saving += d;
		r->unsplit += d;
		a->contrib += d;
		return;
	}
	distribute(v, nx, w, w, d, share);
	for (uint32_t k = 0; k < nx; k++)
		touch(v, x[k], dt, val, share[k], false);
}

// ---- loyalty
// ------------------------------------------------------------------------

// points_clamp keeps absurd points (a huge basket times a huge rate)
// inside 10^15, so sums of them stay far from 64-bit overflow.
static int64_t
points_clamp(int64_t x)
{
	const int64_t lim = 1000000000000000LL;
	return x > lim ? lim : x < -lim ? -lim : x;
}

// loyalty sums the points of the chosen promotions: fixed points, points
// per currency unit of the final sale net (whole points, rounded down),
// MULTIPLY_POINTS as a bonus of (factor - 1) times every
// CURRENCY_TO_POINTS point of the basket, SUBTRACT_POINTS negative.
static void
loyalty(ev *v, const uint8_t *in)
{
	ev_run *r = &v->run;
	int64_t net = 0, base = 0;
	for (uint32_t i = 0; i < v->n; i++)
		if (v->lines[i].sale)
			net += r->rem[i];
	// Promotions that only issue coupons run no stage: their amount
	// conditions are checked here, on the subtotal after line discounts.
	for (uint32_t ax = 0; ax < v->napps; ax++)
		if (in[ax] && v->apps[ax].stage == ST_NONE
		    && v->apps[ax].e->cp.dynamic)
			ev_dyn_ok(v, &v->apps[ax]);
	for (int pass = 0; pass < 2; pass++)
		for (uint32_t ax = 0; ax < v->napps; ax++) {
			ev_app *a = &v->apps[ax];
			if (!in[ax] || !a->e->cp.loyalty_stage || a->failed)
				continue;
			if (pass == 0 && a->stage == ST_LOYALTY
			    && a->e->cp.dynamic && !ev_dyn_ok(v, a))
				continue;
			for (uint32_t ai = 0; ai < a->p->nactions; ai++) {
				const dre_promo_action *ac
				    = &a->p->actions[ai];
				if (pass == 0 && ac->type == DRE_ACT_ADD_FIXED)
					a->points += ac->points;
				else if (pass == 0
				    && ac->type == DRE_ACT_SUBTRACT_POINTS)
					a->points -= ac->points;
				else if (pass == 0
				    && ac->type
				        == DRE_ACT_CURRENCY_TO_POINTS) {
					int64_t pts = points_clamp(
					    dre_div_round((__int128) net
					            * ac->points_per_unit,
					        10000, DRE_ROUND_DOWN));
					a->points += pts;
					base += pts;
				} else if (pass == 1
				    && ac->type == DRE_ACT_MULTIPLY_POINTS)
					a->points += points_clamp(
					    dre_div_round((__int128) base
					            * (ac->factor - 100),
					        100, DRE_ROUND_DOWN));
			}
		}
}

// ---- a run
// --------------------------------------------------------------------------

void
ev_run_line(ev *v, const uint8_t *in)
{
	for (uint32_t ax = 0; ax < v->napps; ax++) {
		ev_app *a = &v->apps[ax];
		if (!in[ax] || !a->e->cp.line_stage)
			continue;
		if (a->e->cp.dynamic && !ev_dyn_ok(v, a))
			continue;
		for (uint32_t ai = 0; ai < a->p->nactions; ai++)
			switch (a->p->actions[ai].type) {
			case DRE_ACT_ARTICLE:
			case DRE_ACT_ARTICLE_GROUP:
			case DRE_ACT_ARTICLE_LIST:
				markdown(v, ax, ai,
				    a->p->actions[ai].disc_type,
				    a->p->actions[ai].value);
				break;
			case DRE_ACT_QUANTITY_TIER:
				quantity_tier(v, ax, ai);
				break;
			case DRE_ACT_BUNDLE:
				bundle(v, ax, ai);
				break;
			case DRE_ACT_FREE_ITEM:
				free_item(v, ax, ai);
				break;
			default:
				break;
			}
		commit(v, ax, true);
	}
}

int64_t
ev_run_receipt(ev *v, const uint8_t *in)
{
	ev_run *r = &v->run;
	// Split receipt discounts up to the last promotion that reads lines
	// one by one: one with a targeted receipt action or several receipt
	// actions. A LINE-exclusive one holds the lines it takes: with it in
	// the run, everything is split.
	r->split_until = -1;
	r->unsplit = 0;
	for (uint32_t ax = 0; ax < v->napps; ax++) {
		const ev_app *a = &v->apps[ax];
		if (!in[ax] || !a->e->cp.receipt_stage)
			continue;
		if (a->line_excl) {
			r->split_until = INT32_MAX;
			break;
		}
		uint32_t nr = 0;
		bool     reads = false;
		for (uint32_t ai = 0; ai < a->p->nactions; ai++) {
			const dre_promo_action *ac = &a->p->actions[ai];
			if (ac->type == DRE_ACT_RECEIPT
			    || ac->type == DRE_ACT_SCALED_RECEIPT) {
				nr++;
				reads |= ac->target.present;
			}
		}
		if (reads || nr > 1)
			r->split_until = (int32_t) ax;
	}
	for (uint32_t ax = 0; ax < v->napps; ax++) {
		ev_app *a = &v->apps[ax];
		if (!in[ax] || !a->e->cp.receipt_stage || a->failed)
			continue;
		if (a->stage == ST_RECEIPT && a->e->cp.dynamic
		    && !ev_dyn_ok(v, a))
			continue;
		for (uint32_t ai = 0; ai < a->p->nactions; ai++) {
			dre_action_type t = a->p->actions[ai].type;
			if (t == DRE_ACT_RECEIPT
			    || t == DRE_ACT_SCALED_RECEIPT)
				receipt(v, ax, ai);
		}
		commit(v, ax, false);
	}
	if (r->rec)
		loyalty(v, in);
	return r->saving;
}

bool
ev_receipt_lost(ev *v, const uint8_t *in)
{
	bool lost = false;
	for (uint32_t ax = 0; ax < v->napps; ax++) {
		ev_app          *a = &v->apps[ax];
		const dre_promo *p = a->p;
		if (!in[ax] || !a->e->cp.receipt_stage || !a->e->cp.dynamic
		    || a->failed)
			continue;
		a->dyn_have = v->run.line_net;
		a->dyn_need = 0;
		for (uint32_t ci = 0; ci < p->nconds; ci++)
			if (p->conds[ci].type == DRE_COND_RECEIPT_AMOUNT
			    && v->run.line_net < p->conds[ci].min_amount) {
				a->lost = true;
				if (p->conds[ci].min_amount > a->dyn_need)
					a->dyn_need = p->conds[ci].min_amount;
			}
		for (uint32_t ai = 0; ai < p->nactions; ai++) {
			const dre_promo_action *ac = &p->actions[ai];
			const dre_promo_tier   *t;
			if (ac->type != DRE_ACT_SCALED_RECEIPT)
				continue;
			int64_t i
			    = ev_receipt_tier_value(ac, v->run.line_net, &t);
			if (i < ev_receipt_tier_value(ac, v->gross, &t)) {
				a->lost = true;
				if (a->dyn_need == 0
				    || ac->tiers[i + 1].threshold
				        < a->dyn_need)
					a->dyn_need
					    = ac->tiers[i + 1].threshold;
			}
		}
		lost |= a->lost;
	}
	return lost;
}

int64_t
ev_run_apps(ev *v, const uint8_t *in)
{
	ev_run_line(v, in);
	return ev_run_receipt(v, in);
}
