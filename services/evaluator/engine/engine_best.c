// engine_best.c -- which of the applicable promotions apply together: the
// combination that gives the customer the largest saving, then the one
// holding the higher-priority promotion (rank = priority, id), so the result
// never depends on the order promotions were created in.
//
// Promotions that cannot hurt each other always apply together. The others
// form the conflict set: members of an exclusion group, LINE-exclusive
// promotions with every promotion that may touch the same lines, bundle
// promotions that may take the same units (a unit is in one bundle), and —
// when line discounts pushed the subtotal below a threshold somebody needed —
// the promotions with thresholds together with every line promotion.
// RECEIPT-exclusive promotions are each one more option: alone. When the
// conflict set has at most OPTIONS_MAX valid subsets (an exclusion group of
// k members is k + 1 options, not 2^k) every one of them is run; beyond, a
// bounded search: the priority-greedy choice, none, each one alone, then
// single toggles (a toggle that breaks a group drops the other member)
// while they improve, at most SEARCH_BUDGET runs. Last, when promotions
// that read what others left in a non-monotone way (MULTIPLICATIVE,
// rounding to whole units or tenths, bundles) meet, each promotion alone is
// an option too: the answer never saves less than one of its promotions.
#include <string.h>

#include "engine_int.h"

#define OPTIONS_MAX   1024
#define SEARCH_BUDGET 256

// The state after the line stage of one option: options that differ only
// in receipt-stage promotions (a ladder of receipt discounts in one
// exclusion group) start from it instead of running the lines again.
typedef struct {
	bool      valid;
	uint8_t  *in; // the option it was taken with
	int64_t  *rem, *bundled;
	int32_t  *owner, *first_app;
	uint16_t *ndisc;
	int64_t   line_net, saving;
	ev_app   *apps;
} line_snap;

typedef struct {
	ev       *v;
	uint32_t *c; // conflict set (app indexes, rank order)
	uint32_t  nc;
	uint8_t  *base; // F: the apps always in
	int32_t **grp; // per app: exclusion group ids, -1 terminated
	uint32_t  ngroups;
	uint8_t  *best;
	int64_t   best_saving;
	bool      have_best;
	uint8_t  *tmp;
	uint32_t  runs;
	uint32_t *count; // scratch per group
	line_snap snap;
	line_snap rsnap; // the recorded line stage of every promotion
} search;

static bool
same_lines_as(const search *s, const line_snap *p, const uint8_t *in)
{
	const ev *v = s->v;
	for (uint32_t ax = 0; ax < v->napps; ax++)
		if (v->apps[ax].e->cp.line_stage && in[ax] != p->in[ax])
			return false;
	return true;
}

static bool
same_lines(const search *s, const uint8_t *in)
{
	return same_lines_as(s, &s->snap, in);
}

static void
snap_into(search *s, line_snap *p, const uint8_t *in)
{
	ev    *v = s->v;
	size_t n = v->n + 1;
	if (p->in == NULL) {
		p->in = ev_get(v, v->napps + 1);
		p->rem = ev_get(v, n * sizeof(int64_t));
		p->bundled = ev_get(v, n * sizeof(int64_t));
		p->owner = ev_get(v, n * sizeof(int32_t));
		p->first_app = ev_get(v, n * sizeof(int32_t));
		p->ndisc = ev_get(v, n * sizeof(uint16_t));
		p->apps = ev_get(v, (v->napps + 1) * sizeof(ev_app));
	}
	memcpy(p->in, in, v->napps);
	memcpy(p->rem, v->run.rem, n * sizeof(int64_t));
	memcpy(p->bundled, v->run.bundled, n * sizeof(int64_t));
	memcpy(p->owner, v->run.owner, n * sizeof(int32_t));
	memcpy(p->first_app, v->run.first_app, n * sizeof(int32_t));
	memcpy(p->ndisc, v->run.ndisc, n * sizeof(uint16_t));
	memcpy(p->apps, v->apps, v->napps * sizeof(ev_app));
	p->line_net = v->run.line_net;
	p->saving = v->run.saving;
	p->valid = true;
}

static void
snap_take(search *s, const uint8_t *in)
{
	snap_into(s, &s->snap, in);
}

static void
snap_from(search *s, const line_snap *p)
{
	ev    *v = s->v;
	size_t n = v->n + 1;
	memcpy(v->run.rem, p->rem, n * sizeof(int64_t));
	memcpy(v->run.bundled, p->bundled, n * sizeof(int64_t));
	memcpy(v->run.owner, p->owner, n * sizeof(int32_t));
	memcpy(v->run.first_app, p->first_app, n * sizeof(int32_t));
	memcpy(v->run.ndisc, p->ndisc, n * sizeof(uint16_t));
	memcpy(v->apps, p->apps, v->napps * sizeof(ev_app));
	v->run.line_net = p->line_net;
	v->run.saving = p->saving;
	v->run.rec = false;
}

static void
snap_restore(search *s)
{
	snap_from(s, &s->snap);
}

// run_set prices one option (without recording).
static int64_t
run_set(search *s, const uint8_t *in)
{
	s->runs++;
	if (s->snap.valid && same_lines(s, in)) {
		snap_restore(s);
		return ev_run_receipt(s->v, in);
	}
	ev_run_reset(s->v, false);
	ev_run_line(s->v, in);
	snap_take(s, in);
	return ev_run_receipt(s->v, in);
}

// better: more saving; on a tie the set holding the first (highest-ranked)
// promotion where they differ.
static bool
better(const search *s, const uint8_t *a, int64_t sa, const uint8_t *b,
    int64_t sb)
{
	if (sa != sb)
		return sa > sb;
	for (uint32_t i = 0; i < s->v->napps; i++)
		if (a[i] != b[i])
			return a[i] > b[i];
	return false;
}

static void
consider(search *s, const uint8_t *in)
{
	int64_t sv = run_set(s, in);
	if (!s->have_best || better(s, in, sv, s->best, s->best_saving)) {
		memcpy(s->best, in, s->v->napps);
		s->best_saving = sv;
		s->have_best = true;
	}
}

static bool
valid(search *s, const uint8_t *in)
{
	memset(s->count, 0, (s->ngroups + 1) * sizeof(uint32_t));
	for (uint32_t k = 0; k < s->nc; k++) {
		uint32_t ax = s->c[k];
		if (!in[ax] || s->grp[ax] == NULL)
			continue;
		for (int32_t *g = s->grp[ax]; *g >= 0; g++)
			if (++s->count[*g] > 1)
				return false;
	}
	return true;
}

static bool
shares_group(const search *s, uint32_t x, uint32_t y)
{
	if (s->grp[x] == NULL || s->grp[y] == NULL)
		return false;
	for (int32_t *g = s->grp[x]; *g >= 0; g++)
		for (int32_t *h = s->grp[y]; *h >= 0; h++)
			if (*g == *h)
				return true;
	return false;
}

// group_ids numbers the exclusion groups of the non-exclusive apps and
// marks every group with two or more members as a conflict.
static void
group_ids(search *s, uint8_t *conf)
{
	ev          *v = s->v;
	const char **names = ev_get(v, 8 * sizeof(char *));
	uint32_t     cap = 8;
	uint32_t    *members = ev_get(v, 8 * sizeof(uint32_t));
	s->grp = ev_get(v, (v->napps + 1) * sizeof(int32_t *));
	for (uint32_t ax = 0; ax < v->napps; ax++) {
		const ev_app *a = &v->apps[ax];
		if (a->receipt_excl || a->p->exclusion_groups.n == 0)
			continue;
		const dre_strlist *gl = &a->p->exclusion_groups;
		s->grp[ax] = ev_get(v, (gl->n + 1) * sizeof(int32_t));
		for (uint32_t i = 0; i < gl->n; i++) {
			uint32_t g = 0;
			while (
			    g < s->ngroups && strcmp(names[g], gl->v[i]) != 0)
				g++;
			if (g == s->ngroups) {
				if (s->ngroups == cap) {
					const char **nn = ev_get(
					    v, 2 * cap * sizeof(char *));
					uint32_t *nm = ev_get(
					    v, 2 * cap * sizeof(uint32_t));
					memcpy(
					    nn, names, cap * sizeof(char *));
					memcpy(nm, members,
					    cap * sizeof(uint32_t));
					names = nn;
					members = nm;
					cap *= 2;
				}
				names[g] = gl->v[i];
				members[g] = 0;
				s->ngroups++;
			}
			s->grp[ax][i] = (int32_t) g;
			members[g]++;
		}
		s->grp[ax][gl->n] = -1;
	}
	for (uint32_t ax = 0; ax < v->napps; ax++)
		if (s->grp[ax] != NULL)
			for (int32_t *g = s->grp[ax]; *g >= 0; g++)
				if (members[*g] > 1)
					conf[ax] = 1;
	s->count = ev_get(v, (s->ngroups + 1) * sizeof(uint32_t));
}

static bool
overlap(const ev *v, const uint64_t *a, const uint64_t *b)
{
	for (uint32_t w = 0; w < v->words; w++)
		if (a[w] & b[w])
			return true;
	return false;
}

static bool
has_bundle(const dre_promo *p)
{
	for (uint32_t ai = 0; ai < p->nactions; ai++)
		if (p->actions[ai].type == DRE_ACT_BUNDLE)
			return true;
	return false;
}

static bool
fits(const search *s, uint32_t ax)
{
	if (s->grp[ax] == NULL)
		return true;
	for (const int32_t *g = s->grp[ax]; *g >= 0; g++)
		if (s->count[*g] > 0)
			return false;
	return true;
}

static void
occupy(search *s, uint32_t ax, int d)
{
	if (s->grp[ax] != NULL)
		for (const int32_t *g = s->grp[ax]; *g >= 0; g++)
			s->count[*g] = (uint32_t) ((int) s->count[*g] + d);
}

// count_options counts the valid subsets of c[k..] given the groups taken
// so far, giving up once past limit.
static uint32_t
count_options(search *s, uint32_t k, uint32_t limit)
{
	if (k == s->nc)
		return 1;
	uint32_t n = count_options(s, k + 1, limit);
	uint32_t ax = s->c[k];
	if (n <= limit && fits(s, ax)) {
		occupy(s, ax, 1);
		n += count_options(s, k + 1, limit - n);
		occupy(s, ax, -1);
	}
	return n;
}

// quick_options counts the valid subsets when every conflicting promotion
// is in at most one exclusion group: the product of (members + 1) over the
// groups and 2 per promotion without one. UINT32_MAX when it does not
// apply or passes OPTIONS_MAX.
static uint32_t
quick_options(search *s)
{
	memset(s->count, 0, (s->ngroups + 1) * sizeof(uint32_t));
	uint64_t n = 1;
	for (uint32_t k = 0; k < s->nc; k++) {
		const int32_t *g = s->grp[s->c[k]];
		if (g == NULL)
			n *= 2;
		else if (g[0] >= 0 && g[1] >= 0)
			n = UINT32_MAX;
		else if (g[0] >= 0)
			s->count[g[0]]++;
		if (n > OPTIONS_MAX)
			break;
	}
	for (uint32_t g = 0; g < s->ngroups && n <= OPTIONS_MAX; g++)
		n *= s->count[g] + 1;
	memset(s->count, 0, (s->ngroups + 1) * sizeof(uint32_t));
	return n > OPTIONS_MAX ? UINT32_MAX : (uint32_t) n;
}

// enumerate runs every valid subset of c[k..] on top of s->tmp.
static void
enumerate(search *s, uint32_t k)
{
	if (k == s->nc) {
		consider(s, s->tmp);
		return;
	}
	enumerate(s, k + 1);
	uint32_t ax = s->c[k];
	if (fits(s, ax)) {
		occupy(s, ax, 1);
		s->tmp[ax] = 1;
		enumerate(s, k + 1);
		s->tmp[ax] = 0;
		occupy(s, ax, -1);
	}
}

static void
bounded(search *s)
{
	ev      *v = s->v;
	uint32_t n = v->napps;
	uint8_t *cur = ev_get(v, n + 1);
	// Priority-greedy: each conflicting promotion in rank order if it
	// still fits.
	memcpy(cur, s->base, n);
	for (uint32_t k = 0; k < s->nc; k++) {
		cur[s->c[k]] = 1;
		if (!valid(s, cur))
			cur[s->c[k]] = 0;
	}
	consider(s, cur);
	consider(s, s->base);
	for (uint32_t k = 0; k < s->nc; k++) {
		memcpy(s->tmp, s->base, n);
		s->tmp[s->c[k]] = 1;
		consider(s, s->tmp);
	}
	bool improved = true;
	while (improved && s->runs < SEARCH_BUDGET) {
		improved = false;
		memcpy(cur, s->best, n);
		int64_t cur_saving = s->best_saving;
		for (uint32_t k = 0; k < s->nc && s->runs < SEARCH_BUDGET;
		     k++) {
			uint32_t ax = s->c[k];
			memcpy(s->tmp, cur, n);
			s->tmp[ax] = !s->tmp[ax];
			if (s->tmp[ax])
				for (uint32_t j = 0; j < s->nc; j++)
					if (s->c[j] != ax && s->tmp[s->c[j]]
					    && shares_group(s, ax, s->c[j]))
						s->tmp[s->c[j]] = 0;
			consider(s, s->tmp);
		}
		if (better(s, s->best, s->best_saving, cur, cur_saving))
			improved = true;
	}
}

// gain_bound is at most what promotion a could ever give: exact for
// receipt-level amounts, the lines' totals for percentages and line
// actions.
static int64_t
gain_bound(const ev *v, const ev_app *a)
{
	const dre_promo *p = a->p;
	int64_t          b = 0;
	if (a->e->cp.line_stage)
		return v->gross + 1; // its line actions: at most everything
	for (uint32_t ai = 0; ai < p->nactions; ai++) {
		const dre_promo_action *ac = &p->actions[ai];
		if (ac->type == DRE_ACT_RECEIPT)
			b += ac->disc_type == DRE_DISC_ABSOLUTE ? ac->value
			                                        : v->gross;
		else if (ac->type == DRE_ACT_SCALED_RECEIPT) {
			int64_t m = 0;
			for (uint32_t t = 0; t < ac->ntiers; t++) {
				int64_t x = ac->tiers[t].disc_type
				        == DRE_DISC_ABSOLUTE
				    ? ac->tiers[t].value
				    : v->gross;
				m = x > m ? x : m;
			}
			b += m;
		}
	}
	return b;
}

// regain_may_pay: dropping line discounts raises the subtotal by at most
// what they gave, so a lost threshold is worth a search only when the
// promotions that lost theirs could give more than the gap.
static bool
regain_may_pay(const ev *v, const uint8_t *all)
{
	int64_t total = 0;
	for (uint32_t ax = 0; ax < v->napps; ax++)
		if (all[ax] && v->apps[ax].lost)
			total += gain_bound(v, &v->apps[ax]);
	for (uint32_t ax = 0; ax < v->napps; ax++) {
		const ev_app *a = &v->apps[ax];
		if (all[ax] && a->lost && a->dyn_need - a->dyn_have < total)
			return true;
	}
	return false;
}

// regain tries, for each promotion that lost a threshold to line
// discounts (gap[ax] >= 0), the best combination with it in (its group
// mates out) and the line promotions that gave the least dropped until
// the gap is closed.
static void
regain(search *s, const int64_t *gap)
{
	ev       *v = s->v;
	uint32_t  n = v->napps, nl = 0;
	uint32_t *order = ev_get(v, (n + 1) * sizeof(uint32_t));
	int64_t  *contrib = ev_get(v, (n + 1) * sizeof(int64_t));
	uint8_t  *best = ev_get(v, n + 1);
	memcpy(best, s->best, n);
	run_set(s, best);
	for (uint32_t ax = 0; ax < n; ax++) {
		contrib[ax] = v->apps[ax].contrib;
		if (!best[ax] || !v->apps[ax].e->cp.line_stage
		    || contrib[ax] <= 0)
			continue;
		uint32_t j = nl++; // ascending contribution, stable
		for (; j > 0 && contrib[order[j - 1]] > contrib[ax]; j--)
			order[j] = order[j - 1];
		order[j] = ax;
	}
	for (uint32_t y = 0; y < n; y++) {
		if (gap[y] < 0)
			continue;
		memcpy(s->tmp, best, n);
		s->tmp[y] = 1;
		for (uint32_t k = 0; k < s->nc; k++)
			if (s->c[k] != y && shares_group(s, y, s->c[k]))
				s->tmp[s->c[k]] = 0;
		int64_t freed = 0;
		for (uint32_t k = 0; k < nl && freed < gap[y]; k++)
			if (order[k] != y) {
				s->tmp[order[k]] = 0;
				freed += contrib[order[k]];
			}
		if (freed >= gap[y])
			consider(s, s->tmp);
	}
}

// singles_risk: some applicable promotion reads what others left in a way
// that is not monotone (MULTIPLICATIVE mode, rounding to whole units or
// tenths, bundles choosing units by value): with two or more of them a
// promotion alone may save more than any combination holding it.
static bool
singles_risk(const ev *v)
{
	if (v->napps < 2)
		return false;
	for (uint32_t ax = 0; ax < v->napps; ax++) {
		const dre_promo *p = v->apps[ax].p;
		if (p->calc_mode == DRE_CALC_MULTIPLICATIVE
		    || (p->precision < 2 && p->rounding != DRE_ROUND_NONE)
		    || has_bundle(p))
			return true;
	}
	return false;
}

// disc_bound is at most what dt/val gives on line l (q units).
static int64_t
disc_bound(const ev_line *l, dre_disc_type dt, int64_t val)
{
	switch (dt) {
	case DRE_DISC_PERCENTAGE:
		return (int64_t) ((__int128) l->total * val / 10000);
	case DRE_DISC_ABSOLUTE:
		return (int64_t) ((__int128) (val < l->price ? val : l->price)
		    * l->qty / 1000);
	default:
		return l->price > val
		    ? (int64_t) ((__int128) (l->price - val) * l->qty / 1000)
		    : 0;
	}
}

// alone_bound is at most what promotion a could give on its own: per action
// from its eligible lines and values, plus a rounding unit per line.
static int64_t
alone_bound(const ev *v, const ev_app *a)
{
	const dre_promo *p = a->p;
	int64_t          unit = 1, b = 0;
	for (int k = p->precision; k < 2; k++)
		unit *= 10;
	for (uint32_t ai = 0; ai < p->nactions; ai++) {
		const dre_promo_action *ac = &p->actions[ai];
		int64_t                 x = 0;
		for (uint32_t k = 0; k < a->nelig[ai]; k++) {
			const ev_line *l = &v->lines[a->elig[ai][k]];
			int64_t        m = 0;
			switch (ac->type) {
			case DRE_ACT_ARTICLE:
			case DRE_ACT_ARTICLE_GROUP:
			case DRE_ACT_ARTICLE_LIST:
				m = disc_bound(l, ac->disc_type, ac->value);
				break;
			case DRE_ACT_QUANTITY_TIER:
				for (uint32_t t = 0; t < ac->ntiers; t++) {
					int64_t y = disc_bound(l,
					    ac->tiers[t].disc_type,
					    ac->tiers[t].value);
					m = y > m ? y : m;
				}
				break;
			case DRE_ACT_RECEIPT:
			case DRE_ACT_SCALED_RECEIPT:
				break; // below, on the basket
			default: // bundle, free item: the whole line
				m = l->total;
				break;
			}
			x += m + unit;
		}
		if (ac->type == DRE_ACT_RECEIPT)
			x = ac->disc_type == DRE_DISC_ABSOLUTE
			    ? ac->value
			    : (int64_t) ((__int128) v->gross * ac->value
			          / 10000)
			        + unit;
		else if (ac->type == DRE_ACT_SCALED_RECEIPT)
			for (uint32_t t = 0; t < ac->ntiers; t++) {
				int64_t y = ac->tiers[t].disc_type
				        == DRE_DISC_ABSOLUTE
				    ? ac->tiers[t].value
				    : (int64_t) ((__int128) v->gross
				          * ac->tiers[t].value / 10000)
				        + unit;
				x = y > x ? y : x;
			}
		else if (ac->type == DRE_ACT_FREE_ITEM) {
			const ix_ent *m = v->t
			    ? ix_article(v->t, ac->article_number)
			    : NULL;
			int64_t       price = ac->reference_price;
			if (m != NULL && m->reference_price > price)
				price = m->reference_price;
			for (uint32_t k = 0; k < a->nelig[ai]; k++)
				if (v->lines[a->elig[ai][k]].price > price)
					price = v->lines[a->elig[ai][k]].price;
			x += price > 0
			    ? (int64_t) ((__int128) price * ac->quantity
			                > 999999999999999LL
			            ? 999999999999999LL
			            : price * ac->quantity)
			    : 0;
		}
		b += x;
	}
	return b;
}

// singles tries promotions alone against the best so far (those that
// could beat it at all); true when one of them became the best.
static bool
singles(search *s)
{
	ev      *v = s->v;
	uint32_t n = v->napps;
	bool     changed = false;
	for (uint32_t ax = 0; ax < n; ax++) {
		if (alone_bound(v, &v->apps[ax]) < s->best_saving)
			continue;
		memset(s->tmp, 0, n);
		s->tmp[ax] = 1;
		int64_t sv = run_set(s, s->tmp);
		if (better(s, s->tmp, sv, s->best, s->best_saving)) {
			memcpy(s->best, s->tmp, n);
			s->best_saving = sv;
			changed = true;
		}
	}
	return changed;
}

void
ev_best_price(ev *v)
{
	uint32_t n = v->napps;
	v->chosen = ev_get(v, n + 1);
	uint8_t *all = ev_get(v, n + 1);
	uint8_t *conf = ev_get(v, n + 1);
	bool     any_r = false;
	search   s = { .v = v };
	for (uint32_t ax = 0; ax < n; ax++) {
		all[ax] = !v->apps[ax].receipt_excl;
		any_r |= v->apps[ax].receipt_excl;
	}
	group_ids(&s, conf);
	for (uint32_t x = 0; x < n; x++) {
		if (!v->apps[x].line_excl)
			continue;
		conf[x] = 1;
		for (uint32_t y = 0; y < n; y++)
			if (y != x && !v->apps[y].receipt_excl
			    && overlap(v, v->apps[x].pot, v->apps[y].pot))
				conf[y] = 1;
	}
	for (uint32_t x = 0; x < n; x++) {
		if (!has_bundle(v->apps[x].p) || v->apps[x].receipt_excl)
			continue;
		for (uint32_t y = x + 1; y < n; y++)
			if (has_bundle(v->apps[y].p)
			    && !v->apps[y].receipt_excl
			    && overlap(v, v->apps[x].pot, v->apps[y].pot))
				conf[x] = conf[y] = 1;
	}
	// Rounding to whole units or tenths of what an earlier promotion
	// left is not monotone: such a promotion may give more alone.
	for (uint32_t y = 0; y < n; y++) {
		const dre_promo *p = v->apps[y].p;
		if (p->calc_mode != DRE_CALC_MULTIPLICATIVE
		    || p->precision >= 2 || p->rounding == DRE_ROUND_NONE
		    || v->apps[y].receipt_excl)
			continue;
		for (uint32_t x = 0; x < n; x++)
			if (x != y && !v->apps[x].receipt_excl
			    && (x < y
			        || (v->apps[x].e->cp.line_stage
			            && v->apps[y].e->cp.receipt_stage))
			    && overlap(v, v->apps[x].pot, v->apps[y].pot))
				conf[x] = conf[y] = 1;
	}
	bool any_conf = false;
	for (uint32_t ax = 0; ax < n; ax++)
		any_conf |= conf[ax];
	bool lost = false;
	if (!any_conf && !any_r) {
		// The common case: one recorded run of everything.
		ev_run_reset(v, true);
		ev_run_apps(v, all);
	} else {
		// Only thresholds matter here: the line stage of everything,
		// recorded. It seeds the search's snapshot and, when the
		// choice runs the same line promotions, the final recorded
		// run.
		ev_run_reset(v, true);
		ev_run_line(v, all);
		snap_into(&s, &s.rsnap, all);
		ev_receipt_lost(v, all);
		snap_take(&s, all);
	}
	for (uint32_t ax = 0; ax < n; ax++)
		lost |= all[ax] && v->apps[ax].lost;
	bool risk = singles_risk(v);
	if (!any_conf && !any_r && !lost) {
		memcpy(v->chosen, all, n);
		if (!risk)
			return;
		s.best = ev_get(v, n + 1);
		s.tmp = ev_get(v, n + 1);
		memcpy(s.best, all, n);
		s.best_saving = v->run.saving;
		s.have_best = true;
		singles(&s);
		// Run the choice again, recording: the single runs
		// overwrote every promotion's results.
		memcpy(v->chosen, s.best, n);
		ev_run_reset(v, true);
		ev_run_apps(v, v->chosen);
		return;
	}
	// Thresholds against line discounts: with few promotions the
	// threshold and line promotions join the conflict set (every
	// combination is run); with more, targeted options after the search
	// drop the smallest line discounts until each lost threshold is met.
	int64_t *gap = NULL;
	bool     targeted = false;
	if (lost && regain_may_pay(v, all)) {
		uint32_t nc = 0;
		for (uint32_t ax = 0; ax < n; ax++)
			nc += all[ax]
			    && (conf[ax] || v->apps[ax].e->cp.dynamic
			        || v->apps[ax].e->cp.line_stage);
		if (nc <= 10) {
			for (uint32_t ax = 0; ax < n; ax++)
				if (all[ax]
				    && (v->apps[ax].e->cp.dynamic
				        || v->apps[ax].e->cp.line_stage))
					conf[ax] = 1;
		} else {
			targeted = true;
			gap = ev_get(v, (n + 1) * sizeof(int64_t));
			for (uint32_t ax = 0; ax < n; ax++)
				gap[ax] = all[ax] && v->apps[ax].lost
				    ? v->apps[ax].dyn_need
				        - v->apps[ax].dyn_have
				    : -1;
		}
	}
	s.c = ev_get(v, (n + 1) * sizeof(uint32_t));
	s.base = ev_get(v, n + 1);
	s.best = ev_get(v, n + 1);
	s.tmp = ev_get(v, n + 1);
	for (uint32_t ax = 0; ax < n; ax++) {
		v->apps[ax].conflict = conf[ax] && all[ax];
		if (v->apps[ax].conflict)
			s.c[s.nc++] = ax;
		else
			s.base[ax] = all[ax];
	}
	memset(s.count, 0, (s.ngroups + 1) * sizeof(uint32_t));
	if (s.nc <= 10 || quick_options(&s) <= OPTIONS_MAX
	    || count_options(&s, 0, OPTIONS_MAX) <= OPTIONS_MAX) {
		memcpy(s.tmp, s.base, n);
		enumerate(&s, 0);
	} else
		bounded(&s);
	if (targeted)
		regain(&s, gap);
	for (uint32_t ax = 0; ax < n; ax++)
		if (v->apps[ax].receipt_excl) { // alone
			memset(s.tmp, 0, n);
			s.tmp[ax] = 1;
			consider(&s, s.tmp);
		}
	if (risk)
		singles(&s);
	memcpy(v->chosen, s.best, n);
	if (s.rsnap.valid && same_lines_as(&s, &s.rsnap, v->chosen)) {
		// The recorded line stage stands (search runs never record):
		// record the receipt stage on top of it.
		snap_from(&s, &s.rsnap);
		v->run.rec = true;
		ev_run_receipt(v, v->chosen);
		return;
	}
	ev_run_reset(v, true);
	ev_run_apps(v, v->chosen);
}
