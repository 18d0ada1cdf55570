// engine_budget.c -- the budget stage of evaluation: which budgets are
// exhausted (a versioned, thread-safe set) and the check that drops a
// promotion into budgetLimitedPromotions[].
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/hash.h"
#include "dre/store.h"
#include "dre/promo.h"
#include "engine.h"

typedef struct {
	char   *key; // tenant \0 budget id \0; NULL = free slot
	size_t  klen;
	int64_t version;
	bool    exhausted;
} bs_ent;

struct eng_budget_set {
	pthread_rwlock_t lk;
	bs_ent          *slots;
	size_t           cap; // power of two
	size_t           n;
	size_t           nexhausted;
};

static uint64_t
bs_hash(const char *k, size_t n)
{
	return dre_fnv1a64(DRE_FNV64_INIT, k, n);
}

// bs_key writes tenant \0 id into buf; 0 when it does not fit.
static size_t
bs_key(char *buf, size_t cap, const char *tenant, const char *id)
{
	return dre_key(buf, cap, 0, 3, tenant, id, "");
}

static bs_ent *
bs_find(bs_ent *slots, size_t cap, const char *k, size_t kl)
{
	size_t i = bs_hash(k, kl) & (cap - 1);
	while (slots[i].key != NULL) {
		if (slots[i].klen == kl && memcmp(slots[i].key, k, kl) == 0)
			return &slots[i];
		i = (i + 1) & (cap - 1);
	}
	return &slots[i]; // the free slot where k belongs
}

static bool
bs_grow(eng_budget_set *b)
{
	size_t  cap = b->cap ? b->cap * 2 : 64;
	bs_ent *slots = calloc(cap, sizeof(*slots));
	if (slots == NULL)
		return false;
	for (size_t i = 0; i < b->cap; i++)
		if (b->slots[i].key != NULL)
			*bs_find(slots, cap, b->slots[i].key, b->slots[i].klen)
			    = b->slots[i];
	free(b->slots);
	b->slots = slots;
	b->cap = cap;
	return true;
}

dre_err
eng_budget_set_alloc(eng_budget_set **bp)
{
	eng_budget_set *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return DRE_ENOMEM;
	if (!bs_grow(b)) {
		free(b);
		return DRE_ENOMEM;
	}
	pthread_rwlock_init(&b->lk, NULL);
	*bp = b;
	return DRE_OK;
}

static void
bs_free_keys(eng_budget_set *b)
{
	for (size_t i = 0; i < b->cap; i++) {
		free(b->slots[i].key);
		b->slots[i].key = NULL;
	}
	b->n = b->nexhausted = 0;
}

void
eng_budget_set_free(eng_budget_set *b)
{
	if (b == NULL)
		return;
	bs_free_keys(b);
	free(b->slots);
	pthread_rwlock_destroy(&b->lk);
	free(b);
}

void
eng_budget_set_clear(eng_budget_set *b)
{
	pthread_rwlock_wrlock(&b->lk);
	bs_free_keys(b);
	pthread_rwlock_unlock(&b->lk);
}

bool
eng_budget_set_update(eng_budget_set *b, const char *tenant,
    const char *budget_id, int64_t version, bool exhausted)
{
	char   k[512];
	size_t kl = bs_key(k, sizeof(k), tenant, budget_id);
	bool   changed = false;
	if (kl == 0)
		return false;
	pthread_rwlock_wrlock(&b->lk);
	if ((b->n + 1) * 2 > b->cap && !bs_grow(b)) {
		pthread_rwlock_unlock(&b->lk);
		return false;
	}
	bs_ent *e = bs_find(b->slots, b->cap, k, kl);
	if (e->key == NULL) {
		if ((e->key = malloc(kl)) != NULL) {
			memcpy(e->key, k, kl);
			e->klen = kl;
			e->version = version;
			e->exhausted = exhausted;
			b->n++;
			b->nexhausted += exhausted;
			changed = true;
		}
	} else if (version > e->version) {
		changed = e->exhausted != exhausted;
		b->nexhausted += (size_t) exhausted - (size_t) e->exhausted;
		e->version = version;
		e->exhausted = exhausted;
	}
	pthread_rwlock_unlock(&b->lk);
	return changed;
}

// lookup reads the state held for budget_id of tenant: its version (-1
// when none is held) and whether it is exhausted.
static int64_t
lookup(const eng_budget_set *cb, const char *tenant, const char *budget_id,
    bool *exhausted)
{
	eng_budget_set *b = (eng_budget_set *) cb; // the lock is not state
	char            k[512];
	size_t          kl = bs_key(k, sizeof(k), tenant, budget_id);
	int64_t         v = -1;
	*exhausted = false;
	if (kl == 0)
		return v;
	pthread_rwlock_rdlock(&b->lk);
	bs_ent *e = bs_find(b->slots, b->cap, k, kl);
	if (e->key != NULL) {
		v = e->version;
		*exhausted = e->exhausted;
	}
	pthread_rwlock_unlock(&b->lk);
	return v;
}

int64_t
eng_budget_set_version(
    const eng_budget_set *b, const char *tenant, const char *budget_id)
{
	bool exhausted;
	return lookup(b, tenant, budget_id, &exhausted);
}

bool
eng_budget_set_exhausted(
    const eng_budget_set *b, const char *tenant, const char *budget_id)
{
	bool exhausted;
	lookup(b, tenant, budget_id, &exhausted);
	return exhausted;
}

size_t
eng_budget_set_count(const eng_budget_set *cb)
{
	eng_budget_set *b = (eng_budget_set *) cb;
	pthread_rwlock_rdlock(&b->lk);
	size_t n = b->nexhausted;
	pthread_rwlock_unlock(&b->lk);
	return n;
}

bool
eng_budget_check(const eng_budget_set *b, const char *tenant,
    const dre_promo *p, dre_arena *a, eng_budget_limited *out,
    const char **reason)
{
	if (b == NULL || p->budget_ids.n == 0 || tenant == NULL)
		return false;
	const char *hit = NULL;
	for (uint32_t i = 0; i < p->budget_ids.n && hit == NULL; i++)
		if (eng_budget_set_exhausted(b, tenant, p->budget_ids.v[i]))
			hit = p->budget_ids.v[i];
	if (hit == NULL)
		return false;
	size_t need = strlen(hit) + 32;
	char  *why = dre_arena_get(a, need);
	if (why != NULL)
		snprintf(why, need, "budget %s is exhausted", hit);
	*reason = why != NULL ? why : "budget exhausted";
	if (out->n == out->cap) {
		size_t cap = out->cap ? out->cap * 2 : 8;
		Dre__BudgetLimitedPromotion **v
		    = dre_arena_get(a, cap * sizeof(*v));
		if (v == NULL)
			return true;
		if (out->n > 0)
			memcpy(v, out->v, out->n * sizeof(*v));
		out->v = v;
		out->cap = cap;
	}
	Dre__BudgetLimitedPromotion *l = dre_arena_get(a, sizeof(*l));
	if (l == NULL)
		return true;
	dre__budget_limited_promotion__init(l);
	l->promotion_id = (char *) p->id;
	l->promotion_name = (char *) (p->name ? p->name : "");
	l->reason = (char *) *reason;
	out->v[out->n++] = l;
	return true;
}
