// engine_best.c -- which of the applicable promotions apply together: the
// combination that gives the customer the largest saving, then the one
// holding the higher-priority promotion (rank = priority, id), so the result
// never depends on the order promotions were created in.
//
// Promotions that cannot hurt each other always apply together. The others
// form the conflict set: members of an exclusion group, LINE-exclusive
// promotions with every promotion that may touch the same lines, bundle
// promotions that may take the same units (a unit is in one bundle), and — when
// line discounts pushed the subtotal below a threshold somebody needed — the
// promotions with thresholds together with every line promotion.
// RECEIPT-exclusive promotions are each one more option: alone. Up to
// EXHAUSTIVE_MAX conflicting promotions every valid subset is run; beyond,
// a bounded search: the priority-greedy choice, none, each one alone, then
// single toggles (a toggle that breaks a group drops the other member)
// while they improve, at most SEARCH_BUDGET runs. Last, when promotions
// that read what others left in a non-monotone way (MULTIPLICATIVE,
// rounding to whole units or tenths, bundles) meet, each promotion alone is
// an option too: the answer never saves less than one of its promotions.
#include <string.h>

#include "engine_int.h"

#define EXHAUSTIVE_MAX 10
#define SEARCH_BUDGET  256

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
} search;

static int64_t
run_set(search *s, const uint8_t *in)
{
	ev_run_reset(s->v, false);
	s->runs++;
	return ev_run_apps(s->v, in);
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
			while (g < s->ngroups && strcmp(names[g], gl->v[i]) != 0)
				g++;
			if (g == s->ngroups) {
				if (s->ngroups == cap) {
					const char **nn = ev_get(
					    v, 2 * cap * sizeof(char *));
					uint32_t *nm = ev_get(
					    v, 2 * cap * sizeof(uint32_t));
					memcpy(nn, names, cap * sizeof(char *));
					memcpy(nm, members, cap * sizeof(uint32_t));
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

static void
exhaustive(search *s)
{
	uint32_t n = s->v->napps;
	for (uint32_t mask = 0; mask < (1u << s->nc); mask++) {
		memcpy(s->tmp, s->base, n);
		for (uint32_t k = 0; k < s->nc; k++)
			if (mask & (1u << k))
				s->tmp[s->c[k]] = 1;
		if (valid(s, s->tmp))
			consider(s, s->tmp);
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
		for (uint32_t k = 0; k < s->nc && s->runs < SEARCH_BUDGET; k++) {
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

// singles tries every promotion alone against the best so far; true when
// one of them became the best.
static bool
singles(search *s)
{
	ev      *v = s->v;
	uint32_t n = v->napps;
	bool     changed = false;
	for (uint32_t ax = 0; ax < n; ax++) {
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
			if (has_bundle(v->apps[y].p) && !v->apps[y].receipt_excl
			    && overlap(v, v->apps[x].pot, v->apps[y].pot))
				conf[x] = conf[y] = 1;
	}
	// Rounding to whole units or tenths of what an earlier promotion
	// left is not monotone: such a promotion may give more alone.
	for (uint32_t y = 0; y < n; y++) {
		const dre_promo *p = v->apps[y].p;
		if (p->calc_mode != DRE_CALC_MULTIPLICATIVE || p->precision >= 2
		    || p->rounding == DRE_ROUND_NONE || v->apps[y].receipt_excl)
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
	// The common case: one recorded run of everything.
	ev_run_reset(v, !any_conf && !any_r);
	ev_run_apps(v, all);
	bool lost = false;
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
	if (lost) // thresholds against line discounts
		for (uint32_t ax = 0; ax < n; ax++)
			if (all[ax]
			    && (v->apps[ax].e->cp.dynamic
			        || v->apps[ax].e->cp.line_stage))
				conf[ax] = 1;
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
	if (s.nc <= EXHAUSTIVE_MAX)
		exhaustive(&s);
	else
		bounded(&s);
	for (uint32_t ax = 0; ax < n; ax++)
		if (v->apps[ax].receipt_excl) { // alone
			memset(s.tmp, 0, n);
			s.tmp[ax] = 1;
			consider(&s, s.tmp);
		}
	if (risk)
		singles(&s);
	memcpy(v->chosen, s.best, n);
	ev_run_reset(v, true);
	ev_run_apps(v, v->chosen);
}
