// index.c -- builds immutable master-data index versions and swaps them in.
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dre/clock.h"
#include "dre/hash.h"
#include "dre/json.h"
#include "dre/log.h"
#include "index.h"

struct eng_engine {
	pthread_mutex_t wlock; // serialises writers while they build
	pthread_mutex_t plock; // guards only the pointer load + reference
	pthread_cond_t  swapped; // broadcast (under plock) when cur changes
	eng_index      *cur;
	eng_index      *next; // staged, not yet published (under wlock)
};

static const char *const kind_names[] = { "PROMOTION", "ARTICLE", "POS_GROUP",
	"ARTICLE_GROUP", "TENANT_SETTINGS" };
#define NKINDS 5

dre_err
eng_master_kind_parse(eng_master_kind *out, const char *s)
{
	for (int i = 0; i < NKINDS; i++)
		if (s != NULL && strcmp(s, kind_names[i]) == 0) {
			*out = (eng_master_kind) i;
			return DRE_OK;
		}
	return DRE_EINVAL;
}

const char *
eng_master_kind_name(eng_master_kind k)
{
	return (unsigned) k < NKINDS ? kind_names[k] : "UNKNOWN";
}

// ---- hashing, sets and maps ----------------------------------------------

static uint32_t
hash_str(const char *s)
{
	return dre_fnv1a32_str(DRE_FNV32_INIT, s, 0);
}

static uint32_t
hash_nocase(const char *s)
{
	uint32_t h = DRE_FNV32_INIT;
	for (; *s; s++) {
		unsigned char c = (unsigned char) *s;
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		h = dre_fnv1a32(h, &c, 1);
	}
	return h;
}

static uint32_t
table_size(uint32_t n)
{
	uint32_t cap = 8;
	while (cap < 2 * n)
		cap <<= 1;
	return cap;
}

// Lists this short are scanned; a table pays off only beyond.
#define SET_SCAN_MAX 8

static bool
set_build(ix_set *s, dre_arena *a, const dre_strlist *l, bool nocase)
{
	s->v = l->v;
	s->n = l->n;
	s->mask = 0;
	s->slots = NULL;
	s->hv = NULL;
	if (l->n <= SET_SCAN_MAX) {
		uint32_t *hv = dre_arena_get(a, (l->n + 1) * sizeof(uint32_t));
		if (hv == NULL)
			return false;
		for (uint32_t i = 0; i < l->n; i++)
			hv[i] = nocase ? hash_nocase(l->v[i])
			               : hash_str(l->v[i]);
		s->hv = hv;
		return true;
	}
	uint32_t cap = table_size(l->n);
	s->slots = dre_arena_get(a, cap * sizeof(*s->slots));
	if (s->slots == NULL)
		return false;
	s->mask = cap - 1;
	for (uint32_t i = 0; i < l->n; i++) {
		uint32_t h
		    = (nocase ? hash_nocase(l->v[i]) : hash_str(l->v[i]))
		    & s->mask;
		while (s->slots[h] != NULL)
			h = (h + 1) & s->mask;
		s->slots[h] = l->v[i];
	}
	return true;
}

bool
ix_set_has(const ix_set *s, const char *k)
{
	if (k == NULL)
		return false;
	if (s->mask == 0) {
		for (uint32_t i = 0; i < s->n; i++)
			if (strcmp(s->v[i], k) == 0)
				return true;
		return false;
	}
	for (uint32_t h = hash_str(k) & s->mask; s->slots[h] != NULL;
	     h = (h + 1) & s->mask)
		if (strcmp(s->slots[h], k) == 0)
			return true;
	return false;
}

uint32_t
ix_hash(const char *s)
{
	return hash_str(s);
}

bool
ix_set_has_h(const ix_set *s, const char *k, uint32_t h)
{
	if (k == NULL)
		return false;
	if (s->mask == 0) {
		for (uint32_t i = 0; i < s->n; i++)
			if (s->hv[i] == h && strcmp(s->v[i], k) == 0)
				return true;
		return false;
	}
	for (uint32_t x = h & s->mask; s->slots[x] != NULL;
	     x = (x + 1) & s->mask)
		if (strcmp(s->slots[x], k) == 0)
			return true;
	return false;
}

bool
ix_set_has_nocase(const ix_set *s, const char *k)
{
	if (k == NULL)
		return false;
	if (s->mask == 0) {
		for (uint32_t i = 0; i < s->n; i++)
			if (strcasecmp(s->v[i], k) == 0)
				return true;
		return false;
	}
	for (uint32_t h = hash_nocase(k) & s->mask; s->slots[h] != NULL;
	     h = (h + 1) & s->mask)
		if (strcasecmp(s->slots[h], k) == 0)
			return true;
	return false;
}

const void *
ix_map_get(const ix_map *m, const char *k)
{
	if (m->slots == NULL || k == NULL)
		return NULL;
	for (uint32_t h = hash_str(k) & m->mask; m->slots[h].k != NULL;
	     h = (h + 1) & m->mask)
		if (strcmp(m->slots[h].k, k) == 0)
			return m->slots[h].v;
	return NULL;
}

void
ix_map_prefetch(const ix_map *m, uint32_t h)
{
	if (m->slots != NULL)
		__builtin_prefetch(&m->slots[h & m->mask]);
}

const void *
ix_map_get_h(const ix_map *m, const char *k, uint32_t h)
{
	if (m->slots == NULL || k == NULL)
		return NULL;
	for (h &= m->mask; m->slots[h].k != NULL; h = (h + 1) & m->mask)
		if (strcmp(m->slots[h].k, k) == 0)
			return m->slots[h].v;
	return NULL;
}

static bool
map_init(ix_map *m, dre_arena *a, uint32_t n)
{
	uint32_t cap = table_size(n);
	m->slots = dre_arena_get(a, cap * sizeof(ix_slot));
	m->mask = cap - 1;
	return m->slots != NULL;
}

// map_put inserts k (first insert wins: keys are unique by construction).
static void
map_put(ix_map *m, const char *k, const void *v)
{
	uint32_t h = hash_str(k) & m->mask;
	for (; m->slots[h].k != NULL; h = (h + 1) & m->mask)
		if (strcmp(m->slots[h].k, k) == 0)
			return;
	m->slots[h].k = k;
	m->slots[h].v = v;
}

// ---- entities --------------------------------------------------------------

static void
ent_ref(ix_ent *e)
{
	atomic_fetch_add_explicit(&e->ref, 1, memory_order_relaxed);
}

static void
ent_unref(ix_ent *e)
{
	if (e == NULL
	    || atomic_fetch_sub_explicit(&e->ref, 1, memory_order_acq_rel)
	        != 1)
		return;
	if (e->a != NULL)
		dre_arena_free(e->a); // the entity lives in it
	else
		free(e);
}

static bool
is_article_cond(dre_cond_type t)
{
	return t == DRE_COND_ARTICLE || t == DRE_COND_ARTICLE_LIST
	    || t == DRE_COND_ARTICLE_GROUP || t == DRE_COND_MANUFACTURER;
}

static bool
promo_compile(ix_promo *cp, dre_arena *a, const dre_promo *p)
{
	size_t na = p->nactions + 1;
	cp->cond = dre_arena_get(a, (p->nconds + 1) * sizeof(ix_set));
	cp->tgt_art = dre_arena_get(a, na * sizeof(ix_set));
	cp->tgt_grp = dre_arena_get(a, na * sizeof(ix_set));
	cp->tgt_manu = dre_arena_get(a, na * sizeof(ix_set));
	cp->comp = dre_arena_get(a, na * sizeof(ix_set *));
	if (!cp->cond || !cp->tgt_art || !cp->tgt_grp || !cp->tgt_manu
	    || !cp->comp)
		return false;
	for (uint32_t i = 0; i < p->nconds; i++) {
		const dre_promo_cond *c = &p->conds[i];
		if (!set_build(&cp->cond[i], a, &c->values,
		        c->type == DRE_COND_CHANNEL
		            || c->type == DRE_COND_PAYMENT_MEANS))
			return false;
		if (is_article_cond(c->type))
			cp->has_article_cond = true;
		if (c->type == DRE_COND_RECEIPT_AMOUNT)
			cp->dynamic = true;
	}
	for (uint32_t i = 0; i < p->nactions; i++) {
		const dre_promo_action *ac = &p->actions[i];
		const dre_promo_target *t = &ac->target;
		if (!set_build(&cp->tgt_art[i], a, &t->articles, false)
		    || !set_build(
		        &cp->tgt_grp[i], a, &t->article_groups, false)
		    || !set_build(
		        &cp->tgt_manu[i], a, &t->manufacturers, false))
			return false;
		if (t->present)
			cp->has_target = true;
		switch (ac->type) {
		case DRE_ACT_ARTICLE:
		case DRE_ACT_ARTICLE_GROUP:
		case DRE_ACT_ARTICLE_LIST:
		case DRE_ACT_QUANTITY_TIER:
		case DRE_ACT_FREE_ITEM:
			cp->line_stage = true;
			break;
		case DRE_ACT_BUNDLE:
			cp->line_stage = true;
			cp->comp[i] = dre_arena_get(
			    a, (2 * ac->ncomponents + 1) * sizeof(ix_set));
			if (cp->comp[i] == NULL)
				return false;
			for (uint32_t k = 0; k < ac->ncomponents; k++)
				if (!set_build(&cp->comp[i][2 * k], a,
				        &ac->components[k].articles, false)
				    || !set_build(&cp->comp[i][2 * k + 1], a,
				        &ac->components[k].article_groups,
				        false))
					return false;
			break;
		case DRE_ACT_RECEIPT:
			cp->receipt_stage = true;
			break;
		case DRE_ACT_SCALED_RECEIPT:
			cp->receipt_stage = true;
			cp->dynamic = true;
			break;
		case DRE_ACT_ADD_FIXED:
		case DRE_ACT_CURRENCY_TO_POINTS:
		case DRE_ACT_MULTIPLY_POINTS:
		case DRE_ACT_SUBTRACT_POINTS:
			cp->loyalty_stage = true;
			break;
		case DRE_ACT_ISSUE_COUPON: // issued at confirm
			cp->issues_coupons = true;
			break;
		}
	}
	if (p->nwindows > 0)
		cp->zone = ix_zone_get(p->timezone);
	return true;
}

static const char *
json_str(const dre_json *obj, const char *k)
{
	const dre_json *v = dre_json_get(obj, k);
	return dre_json_is(v, DRE_JSON_STRING) && v->len > 0 ? v->str : NULL;
}

// ent_flat makes an entity and copies of the n strings in[] in one
// allocation (out[i] = the copy of in[i], NULL for NULL).
static ix_ent *
ent_flat(const eng_master_change *c, const char *const *in, const char **out,
    size_t n)
{
	size_t kl = strlen(c->key) + 1, len = sizeof(ix_ent) + kl;
	size_t sl[4];
	for (size_t i = 0; i < n; i++) {
		sl[i] = in[i] ? strlen(in[i]) + 1 : 0;
		len += sl[i];
	}
	ix_ent *e = malloc(len);
	if (e == NULL)
		return NULL;
	memset(e, 0, sizeof(*e));
	char *p = (char *) (e + 1);
	atomic_init(&e->ref, 1);
	e->kind = c->kind;
	e->version = c->version;
	e->key = memcpy(p, c->key, kl);
	p += kl;
	for (size_t i = 0; i < n; i++) {
		out[i] = in[i] ? memcpy(p, in[i], sl[i]) : NULL;
		p += sl[i];
	}
	return e;
}

// ent_new compiles one change into an entity with one reference; the
// JSON tree lives in scratch (reset here; NULL: an arena of its own).
static dre_err
ent_new(ix_ent **ep, const eng_master_change *c, dre_arena *scratch)
{
	if (c->doc == NULL) {
		ix_ent *e = ent_flat(c, NULL, NULL, 0);
		if (e == NULL)
			return DRE_ENOMEM;
		e->deleted = true;
		*ep = e;
		return DRE_OK;
	}
	// The JSON tree is needed only while compiling: it lives in a
	// temporary arena so the entity keeps just what evaluation reads.
	dre_arena *tmp = scratch;
	dre_arena *a = NULL;
	if (tmp != NULL)
		dre_arena_reset(tmp);
	else
		tmp = dre_arena_alloc(c->doc_len * 8 + 4096);
	ix_ent *e = NULL;
	dre_err err = DRE_ENOMEM;
	if (tmp == NULL)
		goto fail;
	dre_json      *root;
	dre_json_error jerr = { 0 };
	err = dre_json_parse(
	    &root, tmp, c->doc, c->doc_len, DRE_JSON_MAX_DEPTH, &jerr);
	if (err != DRE_OK) {
		dre_warn("master %s %s v%lld: bad JSON at %zu: %s",
		    eng_master_kind_name(c->kind), c->key,
		    (long long) c->version, jerr.offset,
		    jerr.msg ? jerr.msg : "?");
		err = DRE_EINVAL;
		goto fail;
	}
	err = DRE_ENOMEM;
	switch (c->kind) {
	case ENG_MK_PROMOTION: {
		// A compiled promotion takes about its document's size plus
		// 700 bytes: one block holds it and the entity (a larger one
		// chains a second).
		a = dre_arena_alloc(sizeof(ix_ent) + c->doc_len * 2 + 512);
		e = a ? dre_arena_get(a, sizeof(*e)) : NULL;
		if (e == NULL)
			goto fail;
		atomic_init(&e->ref, 1);
		e->a = a;
		e->kind = c->kind;
		e->version = c->version;
		e->key = dre_arena_strdup(a, c->key);
		dre_promo_error  ev[1];
		dre_promo_errors errs = { ev, 1, 0 };
		dre_promo       *p;
		if (e->key == NULL)
			goto fail;
		if (dre_promo_parse(&p, a, root, NULL, &errs) != DRE_OK) {
			dre_warn("promotion %s v%lld rejected: %s (%s)",
			    c->key, (long long) c->version,
			    errs.n ? ev[0].message : "?",
			    errs.n ? ev[0].target : "");
			err = DRE_EINVAL;
			goto fail;
		}
		e->promo = p;
		if (!promo_compile(&e->cp, a, p))
			goto fail;
		break;
	}
	case ENG_MK_ARTICLE: {
		const char *in[3] = { json_str(root, "articleGroupId"),
			json_str(root, "manufacturerId"),
			json_str(root, "ean") };
		const char *out[3];
		e = ent_flat(c, in, out, 3);
		if (e == NULL)
			goto fail;
		e->article_group_id = out[0];
		e->manufacturer_id = out[1];
		e->ean = out[2];
		const dre_json *rp = dre_json_get(root, "referencePrice");
		int64_t         price;
		e->reference_price = !dre_json_is_null(rp)
		        && dre_json_decimal(&price, rp, DRE_MONEY_SCALE,
		               DRE_DECIMAL_MAX_DIGITS)
		            == DRE_OK
		        && price >= 0
		    ? price
		    : -1;
		break;
	}
	case ENG_MK_POS_GROUP: {
		const char *in = json_str(root, "code");
		e = ent_flat(c, &in, &in, 1);
		if (e == NULL)
			goto fail;
		e->code = in;
		break;
	}
	case ENG_MK_ARTICLE_GROUP:
	default:
		e = ent_flat(c, NULL, NULL, 0);
		if (e == NULL)
			goto fail;
		break;
	case ENG_MK_TENANT_SETTINGS: {
		if (!dre_json_is(root, DRE_JSON_OBJECT)) {
			err = DRE_EINVAL;
			goto fail;
		}
		const char *cur = json_str(root, "currency");
		if (cur != NULL && strlen(cur) != 3)
			cur = NULL;
		e = ent_flat(c, &cur, &cur, 1);
		if (e == NULL)
			goto fail;
		e->currency = cur;
		e->nudges
		    = dre_json_is(dre_json_get(root, "enableProductionNudges"),
		        DRE_JSON_TRUE);
		e->reject_unknown = dre_json_is(
		    dre_json_get(root, "rejectUnknownFields"), DRE_JSON_TRUE);
		break;
	}
	}
	if (tmp != scratch)
		dre_arena_free(tmp);
	*ep = e;
	return DRE_OK;
fail:
	if (tmp != scratch)
		dre_arena_free(tmp);
	if (a != NULL)
		dre_arena_free(a);
	else
		free(e);
	return err;
}

static int
ent_cmp_key(eng_master_kind k, const char *key, const ix_ent *e)
{
	if (k != e->kind)
		return k < e->kind ? -1 : 1;
	return strcmp(key, e->key);
}

static int
ent_cmp(const void *x, const void *y)
{
	const ix_ent *a = *(ix_ent *const *) x, *b = *(ix_ent *const *) y;
	return ent_cmp_key(a->kind, a->key, b);
}

// ent_find returns the position of kind/key in the sorted array, or the
// insertion point negated minus one.
static long
ent_find(ix_ent *const *v, uint32_t n, eng_master_kind k, const char *key)
{
	long lo = 0, hi = (long) n - 1;
	while (lo <= hi) {
		long mid = (lo + hi) / 2;
		int  c = ent_cmp_key(k, key, v[mid]);
		if (c == 0)
			return mid;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return -lo - 1;
}

// ---- parts -----------------------------------------------------------------

static void
part_unref(ix_part *p)
{
	if (p == NULL
	    || atomic_fetch_sub_explicit(&p->ref, 1, memory_order_acq_rel)
	        != 1)
		return;
	for (uint32_t i = 0; i < p->nents; i++)
		ent_unref(p->ents[i]);
	free(p->ents);
	dre_arena_free(p->a);
	free(p);
}

static ix_part *
part_new(void)
{
	ix_part *p = calloc(1, sizeof(*p));
	if (p != NULL) {
		atomic_init(&p->ref, 1);
		p->mut = true;
	}
	return p;
}

static bool
part_grow(ix_part *p, uint32_t need)
{
	if (need <= p->cap)
		return true;
	uint32_t cap = p->cap ? p->cap : 8;
	while (cap < need)
		cap *= 2;
	ix_ent **v = realloc(p->ents, cap * sizeof(*v));
	if (v == NULL)
		return false;
	p->ents = v;
	p->cap = cap;
	return true;
}

// part_copy is a mutable copy of p: the same entities, nothing built.
static ix_part *
part_copy(const ix_part *p)
{
	ix_part *c = part_new();
	if (c == NULL || !part_grow(c, p->nents + 1)) {
		part_unref(c);
		return NULL;
	}
	for (uint32_t i = 0; i < p->nents; i++) {
		ent_ref(p->ents[i]);
		c->ents[i] = p->ents[i];
	}
	c->nents = p->nents;
	return c;
}

// part_put puts e (its reference) into mutable p: over position pos >= 0,
// else at the insertion point -pos - 1.
static bool
part_put(ix_part *p, ix_ent *e, long pos)
{
	if (pos >= 0) {
		ent_unref(p->ents[pos]);
		p->ents[pos] = e;
		return true;
	}
	if (!part_grow(p, p->nents + 1))
		return false;
	uint32_t at = (uint32_t) (-pos - 1);
	memmove(&p->ents[at + 1], &p->ents[at],
	    (p->nents - at) * sizeof(ix_ent *));
	p->ents[at] = e;
	p->nents++;
	return true;
}

static uint32_t
shard_of(const char *key)
{
	return hash_str(key) >> (32 - IX_SHARD_BITS);
}

static void
shards_unref(ix_shards *s)
{
	if (s == NULL
	    || atomic_fetch_sub_explicit(&s->ref, 1, memory_order_acq_rel)
	        != 1)
		return;
	for (uint32_t i = 0; i < IX_SHARDS; i++)
		part_unref(s->p[i]);
	free(s);
}

// part_slot is where mutable t keeps the part of kind/key (the article
// shards made mutable first: a copy of the shared ones); NULL: no memory.
static ix_part **
part_slot(ix_tenant *t, eng_master_kind kind, const char *key)
{
	if (kind == ENG_MK_PROMOTION)
		return &t->promo;
	if (kind != ENG_MK_ARTICLE)
		return &t->other;
	if (t->art == NULL || !t->art->mut) {
		ix_shards *s = calloc(1, sizeof(*s));
		if (s == NULL)
			return NULL;
		atomic_init(&s->ref, 1);
		s->mut = true;
		for (uint32_t i = 0; t->art != NULL && i < IX_SHARDS; i++)
			if ((s->p[i] = t->art->p[i]) != NULL)
				atomic_fetch_add(&s->p[i]->ref, 1);
		shards_unref(t->art);
		t->art = s;
	}
	return &t->art->p[shard_of(key)];
}

static const ix_part *
part_of(const ix_tenant *t, eng_master_kind kind, const char *key)
{
	if (kind == ENG_MK_PROMOTION)
		return t->promo;
	if (kind != ENG_MK_ARTICLE)
		return t->other;
	return t->art != NULL ? t->art->p[shard_of(key)] : NULL;
}

// ent_lookup returns kind/key's entity in t (tombstones too), NULL if none.
static const ix_ent *
ent_lookup(const ix_tenant *t, eng_master_kind kind, const char *key)
{
	const ix_part *p = t ? part_of(t, kind, key) : NULL;
	long           pos = p ? ent_find(p->ents, p->nents, kind, key) : -1;
	return pos >= 0 ? p->ents[pos] : NULL;
}

const ix_ent *
ix_article(const ix_tenant *t, const char *k)
{
	if (k == NULL)
		return NULL;
	uint32_t       h = hash_str(k);
	const ix_part *p
	    = t->art != NULL ? t->art->p[h >> (32 - IX_SHARD_BITS)] : NULL;
	return p != NULL ? ix_map_get_h(&p->articles, k, h) : NULL;
}

// ---- tenants ---------------------------------------------------------------

static void
tenant_ref(ix_tenant *t)
{
	atomic_fetch_add_explicit(&t->ref, 1, memory_order_relaxed);
}

static void
tenant_unref(ix_tenant *t)
{
	if (t == NULL
	    || atomic_fetch_sub_explicit(&t->ref, 1, memory_order_acq_rel)
	        != 1)
		return;
	part_unref(t->promo);
	part_unref(t->other);
	shards_unref(t->art);
	free(t->name);
	free(t);
}

// tenant_new is an empty mutable tenant; src: a mutable copy of src (the
// same parts).
static ix_tenant *
tenant_new(const char *name, const ix_tenant *src)
{
	ix_tenant *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	atomic_init(&t->ref, 1);
	t->mut = true;
	t->name = strdup(name);
	if (t->name == NULL) {
		tenant_unref(t);
		return NULL;
	}
	if (src != NULL) {
		if ((t->promo = src->promo) != NULL)
			atomic_fetch_add(&t->promo->ref, 1);
		if ((t->other = src->other) != NULL)
			atomic_fetch_add(&t->other->ref, 1);
		if ((t->art = src->art) != NULL)
			atomic_fetch_add(&t->art->ref, 1);
	}
	return t;
}

static int
promo_rank_cmp(const void *x, const void *y)
{
	const dre_promo *a = (*(ix_ent *const *) x)->promo;
	const dre_promo *b = (*(ix_ent *const *) y)->promo;
	if (a->priority != b->priority)
		return a->priority < b->priority ? -1 : 1;
	return strcmp(a->id, b->id);
}

typedef struct {
	const char *k;
	uint32_t    rank;
} kr_pair;

uint32_t
ix_mmap_get_h(
    const ix_mmap *m, const char *k, uint32_t h, const uint32_t **ranks)
{
	if (m->slots == NULL || k == NULL)
		return 0;
	for (uint32_t x = h & m->mask; m->slots[x].k != NULL;
	     x = (x + 1) & m->mask) {
		const ix_mslot *s = &m->slots[x];
		if (s->h != h
		    || strcmp(s->ik[0] != '\0' ? s->ik : s->k, k) != 0)
			continue;
		*ranks = s->n == 1 ? &s->one : s->rank;
		return s->n;
	}
	return 0;
}

void
ix_mmap_prefetch(const ix_mmap *m, uint32_t h)
{
	if (m->slots != NULL)
		__builtin_prefetch(&m->slots[h & m->mask]);
}

// multimap_build groups (key, rank) pairs into key -> ranks. The pairs come
// rank by rank (promos_build files each promotion in rank order), so each
// key's ranks come ascending: they are grouped by hashing, not sorted (a
// sort of the pairs by key was most of a promotion part's build).
static bool
multimap_build(ix_mmap *m, dre_arena *a, const kr_pair *pairs, uint32_t n)
{
	// Pass 1: each pair's key number (first appearance order), each
	// key's count of distinct ranks, in a temporary table.
	uint32_t  tcap = table_size(n);
	uint32_t *tab = calloc(tcap, sizeof(uint32_t)); // key number + 1
	uint32_t *kid = malloc((n + 1) * sizeof(uint32_t));
	uint32_t *first = malloc((n + 1) * sizeof(uint32_t)); // a pair
	uint32_t *cnt = malloc((n + 1) * sizeof(uint32_t));
	uint32_t *last = malloc((n + 1) * sizeof(uint32_t));
	uint32_t *hv = malloc((n + 1) * sizeof(uint32_t));
	uint32_t  nkeys = 0;
	bool      ok = false;
	if (tab == NULL || kid == NULL || first == NULL || cnt == NULL
	    || last == NULL || hv == NULL)
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		uint32_t h = hash_str(pairs[i].k), x = h & (tcap - 1), id;
		for (;; x = (x + 1) & (tcap - 1)) {
			id = tab[x];
			if (id == 0
			    || (hv[id - 1] == h
			        && strcmp(pairs[first[id - 1]].k, pairs[i].k)
			            == 0))
				break;
		}
		if (id == 0) {
			id = tab[x] = ++nkeys;
			first[id - 1] = i;
			hv[id - 1] = h;
			cnt[id - 1] = 1;
		} else if (last[id - 1] != pairs[i].rank)
			cnt[id - 1]++;
		last[id - 1] = pairs[i].rank;
		kid[i] = id - 1;
	}
	uint32_t cap = table_size(nkeys);
	m->slots = dre_arena_get(a, cap * sizeof(ix_mslot));
	m->mask = cap - 1;
	if (m->slots == NULL)
		goto out;
	// Pass 2: a slot and a rank array per key (cnt counts down as the
	// ranks are filed).
	ix_mslot **slot = (ix_mslot **) calloc(nkeys + 1, sizeof(ix_mslot *));
	if (slot == NULL)
		goto out;
	for (uint32_t id = 0; id < nkeys; id++) {
		uint32_t *rank = dre_arena_get(a, cnt[id] * sizeof(uint32_t));
		if (rank == NULL) {
			free(slot);
			goto out;
		}
		const char *k = pairs[first[id]].k;
		uint32_t    x = hv[id] & m->mask;
		while (m->slots[x].k != NULL) // keys are unique here
			x = (x + 1) & m->mask;
		ix_mslot *sl = &m->slots[x];
		sl->k = k;
		sl->h = hv[id];
		sl->n = 0;
		sl->rank = rank;
		size_t len = strlen(k);
		if (len < sizeof(sl->ik))
			memcpy(sl->ik, k, len + 1);
		slot[id] = sl;
	}
	for (uint32_t i = 0; i < n; i++) {
		ix_mslot *sl = slot[kid[i]];
		uint32_t *rank = (uint32_t *) sl->rank;
		if (sl->n == 0 || rank[sl->n - 1] != pairs[i].rank)
			rank[sl->n++] = pairs[i].rank;
	}
	for (uint32_t id = 0; id < nkeys; id++)
		slot[id]->one = slot[id]->rank[0];
	free(slot);
	ok = true;
out:
	free(tab);
	free(kid);
	free(first);
	free(cnt);
	free(last);
	free(hv);
	return ok;
}

// vec_room makes room for one more element of size elem in the array *vp
// of *capp (doubling it; first elements at first).
static bool
vec_room(void *vp, uint32_t n, uint32_t *capp, size_t elem, uint32_t first)
{
	if (n < *capp)
		return true;
	if (*capp > UINT32_MAX / 2)
		return false;
	uint32_t cap = *capp ? *capp * 2 : first;
	void    *v = realloc(*(void **) vp, (size_t) cap * elem);
	if (v == NULL)
		return false;
	*(void **) vp = v;
	*capp = cap;
	return true;
}

typedef struct {
	kr_pair *v;
	uint32_t n, cap;
} kr_vec;

static bool
kr_push(kr_vec *kv, const char *k, uint32_t rank)
{
	if (!vec_room(&kv->v, kv->n, &kv->cap, sizeof(*kv->v), 64))
		return false;
	kv->v[kv->n].k = k;
	kv->v[kv->n].rank = rank;
	kv->n++;
	return true;
}

static bool
push_list(kr_vec *kv, const dre_strlist *l, uint32_t rank)
{
	for (uint32_t i = 0; i < l->n; i++)
		if (!kr_push(kv, l->v[i], rank))
			return false;
	return true;
}

typedef struct {
	ix_thr  *v;
	uint32_t n, cap;
} thr_vec;

static bool
thr_push(thr_vec *tv, int64_t v, uint32_t rank)
{
	if (!vec_room(&tv->v, tv->n, &tv->cap, sizeof(*tv->v), 32))
		return false;
	tv->v[tv->n].v = v;
	tv->v[tv->n].rank = rank;
	tv->n++;
	return true;
}

static int
thr_cmp(const void *x, const void *y)
{
	const ix_thr *a = x, *b = y;
	if (a->v != b->v)
		return a->v < b->v ? -1 : 1;
	return a->rank < b->rank ? -1 : a->rank > b->rank;
}

// The keys of one tenant version under construction.
typedef struct {
	dre_arena *a; // the tenant's arena (lower-cased channel names)
	kr_vec     art, grp, manu, chan, udf, addf;
	thr_vec    amount, units;
} ix_keys;

static void
keys_free(ix_keys *k)
{
	free(k->art.v);
	free(k->grp.v);
	free(k->manu.v);
	free(k->chan.v);
	free(k->udf.v);
	free(k->addf.v);
	free(k->amount.v);
	free(k->units.v);
}

static char *
lower_dup(dre_arena *a, const char *s)
{
	char *d = dre_arena_strdup(a, s);
	for (char *c = d; c && *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char) (*c + 'a' - 'A');
	return d;
}

// action_scoped: the action can only ever touch lines its target or its
// components name (so those lines' keys find the promotion).
static bool
action_scoped(const dre_promo_action *ac)
{
	const dre_promo_target *t = &ac->target;
	switch (ac->type) {
	case DRE_ACT_ARTICLE:
	case DRE_ACT_ARTICLE_GROUP:
	case DRE_ACT_ARTICLE_LIST:
	case DRE_ACT_QUANTITY_TIER:
	case DRE_ACT_RECEIPT:
	case DRE_ACT_SCALED_RECEIPT:
		return t->present;
	case DRE_ACT_BUNDLE:
		return true;
	default:
		return false;
	}
}

typedef enum { KEYED, UNSCOPED, NEVER } key_kind;

// promo_keys files a promotion under the keys through which a basket can
// reach it. With article-type conditions: every value of every one of them
// (one is enough for the conditions to hold, the others make near-miss
// hints possible). Without: the targets and bundle components when every
// action is scoped by them; else the first basket-level trigger (channel,
// user-defined key, additional-field key, receipt amount, item quantity);
// the rest must be looked at for every basket.
static bool
promo_keys(const ix_ent *e, uint32_t rank, ix_keys *k, key_kind *kind)
{
	const dre_promo *p = e->promo;
	*kind = KEYED;
	if (e->cp.has_article_cond) {
		uint32_t n = 0;
		for (uint32_t i = 0; i < p->nconds; i++) {
			const dre_promo_cond *c = &p->conds[i];
			kr_vec               *kv = NULL;
			if (c->type == DRE_COND_ARTICLE
			    || c->type == DRE_COND_ARTICLE_LIST)
				kv = &k->art;
			else if (c->type == DRE_COND_ARTICLE_GROUP)
				kv = &k->grp;
			else if (c->type == DRE_COND_MANUFACTURER)
				kv = &k->manu;
			if (kv == NULL)
				continue;
			if (!push_list(kv, &c->values, rank))
				return false;
			n += c->values.n;
		}
		// Only an article list without its items: never applies.
		if (n == 0)
			*kind = NEVER;
		return true;
	}
	bool scoped = p->nactions > 0;
	for (uint32_t i = 0; i < p->nactions && scoped; i++)
		scoped = action_scoped(&p->actions[i]);
	if (scoped) {
		for (uint32_t i = 0; i < p->nactions; i++) {
			const dre_promo_action *ac = &p->actions[i];
			const dre_promo_target *t = &ac->target;
			if (!push_list(&k->art, &t->articles, rank)
			    || !push_list(&k->grp, &t->article_groups, rank)
			    || !push_list(&k->manu, &t->manufacturers, rank))
				return false;
			for (uint32_t c = 0; c < ac->ncomponents; c++)
				if (!push_list(&k->art,
				        &ac->components[c].articles, rank)
				    || !push_list(&k->grp,
				        &ac->components[c].article_groups,
				        rank))
					return false;
		}
		return true;
	}
	static const dre_cond_type order[] = { DRE_COND_CHANNEL,
		DRE_COND_USER_DEFINED, DRE_COND_ADDITIONAL_FIELD,
		DRE_COND_RECEIPT_AMOUNT, DRE_COND_ITEM_QUANTITY };
	for (size_t o = 0; o < sizeof(order) / sizeof(order[0]); o++)
		for (uint32_t i = 0; i < p->nconds; i++) {
			const dre_promo_cond *c = &p->conds[i];
			if (c->type != order[o])
				continue;
			switch (c->type) {
			case DRE_COND_CHANNEL:
				for (uint32_t x = 0; x < c->values.n; x++) {
					char *l
					    = lower_dup(k->a, c->values.v[x]);
					if (l == NULL
					    || !kr_push(&k->chan, l, rank))
						return false;
				}
				return true;
			case DRE_COND_USER_DEFINED:
				return kr_push(&k->udf, c->key, rank);
			case DRE_COND_ADDITIONAL_FIELD:
				return kr_push(&k->addf, c->key, rank);
			case DRE_COND_RECEIPT_AMOUNT:
				return thr_push(
				    &k->amount, c->min_amount, rank);
			default:
				return thr_push(
				    &k->units, c->min_quantity, rank);
			}
		}
	*kind = UNSCOPED;
	return true;
}

static bool
thrlist_build(ix_thrlist *l, dre_arena *a, thr_vec *tv)
{
	l->n = tv->n;
	l->v = dre_arena_get(a, (tv->n + 1) * sizeof(ix_thr));
	if (l->v == NULL)
		return false;
	if (tv->n > 0) {
		qsort(tv->v, tv->n, sizeof(ix_thr), thr_cmp);
		memcpy(l->v, tv->v, tv->n * sizeof(ix_thr));
	}
	return true;
}

// promo_loyalty_needs is what of the loyalty service p needs (ENG_LOYALTY_*).
static unsigned
promo_loyalty_needs(const dre_promo *p)
{
	unsigned need = 0;
	if (p == NULL)
		return 0;
	if (p->assignment == DRE_ASSIGN_PERSONAL)
		need |= ENG_LOYALTY_PERSONAL;
	for (uint32_t i = 0; i < p->nconds; i++)
		if (p->conds[i].type == DRE_COND_LOYALTY_TIER)
			need |= ENG_LOYALTY_TIER;
	return need;
}

// promos_build builds a promotion part's ranks and key maps.
static bool
promos_build(ix_part *p)
{
	dre_arena *a = p->a;
	ix_keys    k = { .a = a };
	uint32_t   np = 0;
	for (uint32_t i = 0; i < p->nents; i++)
		np += !p->ents[i]->deleted;
	p->promos = dre_arena_get(a, (np + 1) * sizeof(ix_ent *));
	uint32_t *unscoped = dre_arena_get(a, (np + 1) * sizeof(uint32_t));
	if (p->promos == NULL || unscoped == NULL)
		return false;
	for (uint32_t i = 0; i < p->nents; i++) {
		ix_ent *e = p->ents[i];
		if (e->deleted)
			continue;
		p->promos[p->npromos++] = e;
		p->loyalty_needs |= promo_loyalty_needs(e->promo);
	}
	qsort(p->promos, p->npromos, sizeof(ix_ent *), promo_rank_cmp);
	uint32_t nun = 0;
	for (uint32_t r = 0; r < p->npromos; r++) {
		key_kind kind;
		if (!promo_keys(p->promos[r], r, &k, &kind))
			goto fail;
		if (kind == UNSCOPED)
			unscoped[nun++] = r;
	}
	p->unscoped.n = nun;
	p->unscoped.rank = unscoped;
	if (!multimap_build(&p->by_article, a, k.art.v, k.art.n)
	    || !multimap_build(&p->by_group, a, k.grp.v, k.grp.n)
	    || !multimap_build(&p->by_manu, a, k.manu.v, k.manu.n)
	    || !multimap_build(&p->by_channel, a, k.chan.v, k.chan.n)
	    || !multimap_build(&p->by_udf, a, k.udf.v, k.udf.n)
	    || !multimap_build(&p->by_addf, a, k.addf.v, k.addf.n)
	    || !thrlist_build(&p->by_amount, a, &k.amount)
	    || !thrlist_build(&p->by_units, a, &k.units))
		goto fail;
	keys_free(&k);
	return true;
fail:
	keys_free(&k);
	return false;
}

// part_build builds what is looked up in mutable part p of kind (its
// entities are final) and makes it immutable.
static bool
part_build(ix_part *p, eng_master_kind kind)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < p->nents; i++)
		n += !p->ents[i]->deleted;
	dre_arena *a = dre_arena_alloc(kind == ENG_MK_PROMOTION ? 64 * 1024
	        : kind == ENG_MK_ARTICLE ? table_size(n) * sizeof(ix_slot) + 64
	                                 : 4096);
	if (a == NULL)
		return false;
	dre_arena_free(p->a);
	p->a = a;
	bool ok = true;
	if (kind == ENG_MK_PROMOTION) {
		ok = promos_build(p);
	} else if (kind == ENG_MK_ARTICLE) {
		ok = map_init(&p->articles, a, n);
		for (uint32_t i = 0; ok && i < p->nents; i++)
			if (!p->ents[i]->deleted)
				map_put(
				    &p->articles, p->ents[i]->key, p->ents[i]);
	} else {
		uint32_t npgs = 0;
		for (uint32_t i = 0; i < p->nents; i++)
			npgs += !p->ents[i]->deleted
			    && p->ents[i]->kind == ENG_MK_POS_GROUP;
		ok = map_init(&p->pg_by_id, a, npgs)
		    && map_init(&p->pg_by_code, a, npgs);
		for (uint32_t i = 0; ok && i < p->nents; i++) {
			ix_ent *e = p->ents[i];
			if (e->deleted)
				continue;
			if (e->kind == ENG_MK_POS_GROUP) {
				map_put(&p->pg_by_id, e->key, e);
				if (e->code != NULL)
					map_put(&p->pg_by_code, e->code, e);
			} else if (e->kind == ENG_MK_TENANT_SETTINGS)
				p->settings = e;
		}
	}
	p->mut = false;
	return ok;
}

// tenant_finish builds the mutable parts of mutable t and copies what
// evaluation reads from the parts.
static bool
tenant_finish(ix_tenant *t)
{
	if (!t->mut)
		return true;
	if (t->promo == NULL && (t->promo = part_new()) == NULL)
		return false;
	if (t->other == NULL && (t->other = part_new()) == NULL)
		return false;
	if (t->promo->mut && !part_build(t->promo, ENG_MK_PROMOTION))
		return false;
	if (t->other->mut && !part_build(t->other, ENG_MK_POS_GROUP))
		return false;
	if (t->art != NULL && t->art->mut) {
		t->art->nents = 0;
		for (uint32_t i = 0; i < IX_SHARDS; i++) {
			ix_part *p = t->art->p[i];
			if (p == NULL)
				continue;
			if (p->mut && !part_build(p, ENG_MK_ARTICLE))
				return false;
			t->art->nents += p->nents;
		}
		t->art->mut = false;
	}
	t->nents = t->promo->nents + t->other->nents
	    + (t->art != NULL ? t->art->nents : 0);
	const ix_part *p = t->promo, *o = t->other;
	t->promos = p->promos;
	t->npromos = p->npromos;
	t->by_article = p->by_article;
	t->by_group = p->by_group;
	t->by_manu = p->by_manu;
	t->by_channel = p->by_channel;
	t->by_udf = p->by_udf;
	t->by_addf = p->by_addf;
	t->by_amount = p->by_amount;
	t->by_units = p->by_units;
	t->unscoped = p->unscoped;
	t->loyalty_needs = p->loyalty_needs;
	t->pg_by_id = o->pg_by_id;
	t->pg_by_code = o->pg_by_code;
	t->settings = o->settings;
	t->mut = false;
	return true;
}

// tenant_build makes a tenant version of the n entities (sorted by kind and
// key; their references pass to the tenant, also on failure; ents is
// freed).
static ix_tenant *
tenant_build(const char *name, ix_ent **ents, uint32_t n)
{
	ix_tenant *t = tenant_new(name, NULL);
	uint32_t   i = 0;
	if (t == NULL)
		goto fail;
	for (; i < n; i++) {
		ix_part **slot = part_slot(t, ents[i]->kind, ents[i]->key);
		if (slot == NULL)
			goto fail;
		if (*slot == NULL && (*slot = part_new()) == NULL)
			goto fail;
		// In (kind, key) order: each part's entities come sorted.
		if (!part_put(*slot, ents[i], -(long) (*slot)->nents - 1))
			goto fail;
	}
	free(ents);
	if (!tenant_finish(t)) {
		tenant_unref(t);
		return NULL;
	}
	return t;
fail:
	for (; i < n; i++)
		ent_unref(ents[i]);
	free(ents);
	tenant_unref(t);
	return NULL;
}

// ---- index versions
// ----------------------------------------------------------

static void
index_unref(eng_index *ix)
{
	if (ix == NULL
	    || atomic_fetch_sub_explicit(&ix->ref, 1, memory_order_acq_rel)
	        != 1)
		return;
	for (uint32_t i = 0; i < ix->ntenants; i++)
		tenant_unref(ix->tenants[i]);
	free(ix->tenants);
	free(ix);
}

const ix_tenant *
ix_tenant_find(const eng_index *ix, const char *name)
{
	long lo = 0, hi = (long) ix->ntenants - 1;
	while (lo <= hi) {
		long mid = (lo + hi) / 2;
		int  c = strcmp(name, ix->tenants[mid]->name);
		if (c == 0)
			return ix->tenants[mid];
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return NULL;
}

dre_err
eng_alloc(eng_engine **ep)
{
	eng_engine *e = calloc(1, sizeof(*e));
	eng_index  *ix = calloc(1, sizeof(*ix));
	if (e == NULL || ix == NULL) {
		free(e);
		free(ix);
		return DRE_ENOMEM;
	}
	atomic_init(&ix->ref, 1);
	pthread_mutex_init(&e->wlock, NULL);
	pthread_mutex_init(&e->plock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->swapped, &ca);
	pthread_condattr_destroy(&ca);
	e->cur = ix;
	*ep = e;
	return DRE_OK;
}

void
eng_free(eng_engine *e)
{
	if (e == NULL)
		return;
	index_unref(e->cur);
	index_unref(e->next);
	pthread_mutex_destroy(&e->wlock);
	pthread_mutex_destroy(&e->plock);
	pthread_cond_destroy(&e->swapped);
	free(e);
}

const eng_index *
eng_acquire(eng_engine *e)
{
	// The lock covers two instructions; a writer holds it only to swap,
	// never while building, so readers do not wait for a build.
	pthread_mutex_lock(&e->plock);
	eng_index *ix = e->cur;
	atomic_fetch_add_explicit(&ix->ref, 1, memory_order_relaxed);
	pthread_mutex_unlock(&e->plock);
	return ix;
}

void
eng_index_release(const eng_index *ix)
{
	index_unref((eng_index *) ix);
}

static void
engine_swap(eng_engine *e, eng_index *ix)
{
	pthread_mutex_lock(&e->plock);
	eng_index *old = e->cur;
	e->cur = ix;
	pthread_cond_broadcast(&e->swapped);
	pthread_mutex_unlock(&e->plock);
	index_unref(old);
}

bool
eng_wait(eng_engine *e, const eng_index *seen, int timeout_ms)
{
	struct timespec until
	    = dre_timespec_after(CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&e->plock);
	int rc = 0;
	while (e->cur == seen && rc == 0)
		rc = pthread_cond_timedwait(&e->swapped, &e->plock, &until);
	bool changed = e->cur != seen;
	pthread_mutex_unlock(&e->plock);
	return changed;
}

int64_t
eng_index_version(const eng_index *ix)
{
	return ix->version;
}

int64_t
eng_index_data_age(const eng_index *ix)
{
	return ix->data_age;
}

size_t
eng_index_promotions(const eng_index *ix, const char *tenant)
{
	size_t n = 0;
	for (uint32_t i = 0; i < ix->ntenants; i++)
		if (tenant == NULL
		    || strcmp(ix->tenants[i]->name, tenant) == 0)
			n += ix->tenants[i]->npromos;
	return n;
}

unsigned
eng_index_loyalty_needs(const eng_index *ix, const char *tenant)
{
	const ix_tenant *t = ix_tenant_find(ix, tenant);
	return t != NULL ? t->loyalty_needs : 0;
}

// part_bytes is what p and its entities take (about: the allocator's own
// overhead is not counted).
static size_t
part_bytes(const ix_part *p)
{
	if (p == NULL)
		return 0;
	size_t n = sizeof(*p) + p->cap * sizeof(ix_ent *)
	    + (p->a ? dre_arena_used(p->a) : 0);
	for (uint32_t k = 0; k < p->nents; k++) {
		const ix_ent *e = p->ents[k];
		if (e->a != NULL)
			n += dre_arena_used(e->a);
		else
			n += malloc_usable_size((void *) e);
	}
	return n;
}

size_t
eng_index_bytes(const eng_index *ix, size_t *entities)
{
	size_t n = 0, ne = 0;
	for (uint32_t i = 0; i < ix->ntenants; i++) {
		const ix_tenant *t = ix->tenants[i];
		n += part_bytes(t->promo) + part_bytes(t->other);
		for (uint32_t k = 0; k < IX_SHARDS; k++)
			n += t->art != NULL ? part_bytes(t->art->p[k]) : 0;
		ne += t->nents;
	}
	if (entities != NULL)
		*entities = ne;
	return n;
}

int64_t
eng_index_version_of(const eng_index *ix, const char *tenant,
    eng_master_kind kind, const char *key)
{
	const ix_ent *e = ent_lookup(ix_tenant_find(ix, tenant), kind, key);
	return e != NULL ? e->version : -1;
}

typedef struct {
	const char *tenant;
	ix_ent     *e;
} load_item;

static int
load_cmp(const void *x, const void *y)
{
	const load_item *a = x, *b = y;
	int              c = strcmp(a->tenant, b->tenant);
	if (c != 0)
		return c;
	c = ent_cmp(&a->e, &b->e);
	if (c != 0)
		return c;
	// Highest version first: it is the one kept.
	return a->e->version > b->e->version ? -1
	                                     : a->e->version < b->e->version;
}

// stage_locked makes ix the staged version (wlock held).
static void
stage_locked(eng_engine *e, eng_index *ix)
{
	index_unref(e->next);
	e->next = ix;
}

// index_finish builds what the changes staged in ix left to build: each
// changed part once, however many changes it took.
static bool
index_finish(eng_index *ix)
{
	for (uint32_t i = 0; i < ix->ntenants; i++)
		if (!tenant_finish(ix->tenants[i]))
			return false;
	return true;
}

// publish_locked swaps the staged version in (wlock held).
static void
publish_locked(eng_engine *e)
{
	if (e->next != NULL && !index_finish(e->next)) {
		dre_error("engine: out of memory building the index: the "
		          "staged changes are dropped");
		stage_locked(e, NULL);
	}
	if (e->next != NULL)
		engine_swap(e, e->next);
	e->next = NULL;
}

void
eng_publish(eng_engine *e)
{
	pthread_mutex_lock(&e->wlock);
	publish_locked(e);
	pthread_mutex_unlock(&e->wlock);
}

void
eng_discard(eng_engine *e)
{
	pthread_mutex_lock(&e->wlock);
	stage_locked(e, NULL);
	pthread_mutex_unlock(&e->wlock);
}

// A load in progress: the entities compiled so far (their tenant an index
// into the names), the JSON scratch arena shared by every document.
// A snapshot comes ordered by (tenant, kind, key) with the kinds in the
// catalog's order, not the index's, a local copy by (kind, tenant, key):
// runs of one tenant and kind, each in key order. The loader notes them
// (up to LOAD_RUNS) so that finishing puts whole runs in order instead of
// sorting a million entities one by one; anything else is sorted.
#define LOAD_RUNS 64

struct eng_loader {
	load_item *items;
	uint32_t   n, cap;
	char     **tenants; // distinct tenant names, owned
	uint32_t   ntenants, tcap, last; // last: the one named last
	int64_t    version;
	size_t     nbad;
	dre_arena *scratch;
	uint32_t   runs[LOAD_RUNS]; // where each run starts
	uint32_t   nruns;
	bool       unordered; // not in such runs: sort
};

dre_err
eng_loader_open(eng_loader **lp)
{
	eng_loader *l = calloc(1, sizeof(*l));
	// One scratch arena for every document's JSON tree (an article's
	// takes a few KB): not a malloc and free per entity.
	if (l == NULL || (l->scratch = dre_arena_alloc(64 * 1024)) == NULL) {
		free(l);
		return DRE_ENOMEM;
	}
	*lp = l;
	return DRE_OK;
}

void
eng_loader_free(eng_loader *l)
{
	if (l == NULL)
		return;
	for (size_t i = 0; i < l->n; i++)
		ent_unref(l->items[i].e);
	free(l->items);
	for (uint32_t i = 0; i < l->ntenants; i++)
		free(l->tenants[i]);
	free(l->tenants);
	dre_arena_free(l->scratch);
	free(l);
}

// loader_tenant is the loader's copy of name (a snapshot has few tenants,
// mostly in runs: the last one is tried first); NULL: no memory.
static const char *
loader_tenant(eng_loader *l, const char *name)
{
	if (l->ntenants > 0 && strcmp(l->tenants[l->last], name) == 0)
		return l->tenants[l->last];
	for (uint32_t i = 0; i < l->ntenants; i++)
		if (strcmp(l->tenants[i], name) == 0)
			return l->tenants[l->last = i];
	if (!vec_room(&l->tenants, l->ntenants, &l->tcap, sizeof(char *), 8))
		return NULL;
	char *t = strdup(name);
	if (t == NULL)
		return NULL;
	l->last = l->ntenants;
	l->tenants[l->ntenants++] = t;
	return t;
}

// loader_run notes where the item just added (l->items[l->n]) stands in
// the runs.
static void
loader_run(eng_loader *l)
{
	const load_item *x = &l->items[l->n];
	if (l->unordered)
		return;
	if (l->n > 0) {
		const load_item *p = x - 1;
		if (p->tenant == x->tenant && p->e->kind == x->e->kind) {
			// The same run: in order (load_cmp) or not.
			if (load_cmp(p, x) > 0)
				l->unordered = true;
			return;
		}
	}
	if (l->nruns == LOAD_RUNS)
		l->unordered = true;
	else
		l->runs[l->nruns++] = l->n;
}

// run_cmp orders runs (their first items) by tenant and kind.
static int
run_cmp(const load_item *v, uint32_t x, uint32_t y)
{
	const load_item *a = &v[x], *b = &v[y];
	int              c = strcmp(a->tenant, b->tenant);
	if (c != 0)
		return c;
	return a->e->kind < b->e->kind ? -1 : a->e->kind > b->e->kind;
}

// loader_order puts l's items in load_cmp order: whole runs when they are
// in order within, else a sort of them all.
static dre_err
loader_order(eng_loader *l)
{
	uint32_t m = l->n, nr = l->nruns;
	if (m < 2)
		return DRE_OK;
	uint32_t order[LOAD_RUNS];
	if (!l->unordered) {
		// (Insertion: a few runs.)
		for (uint32_t i = 0; i < nr; i++) {
			uint32_t j = i;
			for (; j > 0
			     && run_cmp(l->items, order[j - 1], l->runs[i])
			         > 0;
			     j--)
				order[j] = order[j - 1];
			order[j] = l->runs[i];
		}
		for (uint32_t i = 1; i < nr && !l->unordered; i++)
			if (run_cmp(l->items, order[i - 1], order[i]) == 0)
				l->unordered = true; // a tenant and kind twice
	}
	if (l->unordered) {
		qsort(l->items, m, sizeof(*l->items), load_cmp);
		return DRE_OK;
	}
	bool moved = false;
	for (uint32_t i = 0; i < nr; i++)
		moved |= order[i] != l->runs[i];
	if (!moved)
		return DRE_OK;
	load_item *v = malloc((size_t) m * sizeof *v);
	if (v == NULL)
		return DRE_ENOMEM;
	uint32_t k = 0;
	for (uint32_t i = 0; i < nr; i++) {
		uint32_t r = 0; // the run's position in l->runs
		while (l->runs[r] != order[i])
			r++;
		uint32_t end = r + 1 < nr ? l->runs[r + 1] : m;
		memcpy(v + k, l->items + order[i],
		    (size_t) (end - order[i]) * sizeof *v);
		k += end - order[i];
	}
	free(l->items);
	l->items = v;
	l->cap = m;
	return DRE_OK;
}

dre_err
eng_loader_add(eng_loader *l, const eng_master_change *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		// A document that does not parse was still seen at its
		// version: the feed must not re-apply older changes over it.
		if (v[i].version > l->version)
			l->version = v[i].version;
		if (v[i].doc == NULL)
			continue;
		if (v[i].tenant == NULL || v[i].key == NULL) {
			l->nbad++;
			continue;
		}
		if (!vec_room(
		        &l->items, l->n, &l->cap, sizeof(*l->items), 1024))
			return DRE_ENOMEM;
		const char *tenant = loader_tenant(l, v[i].tenant);
		if (tenant == NULL)
			return DRE_ENOMEM;
		ix_ent *ent;
		dre_err r = ent_new(&ent, &v[i], l->scratch);
		if (r == DRE_EINVAL) {
			l->nbad++;
			continue;
		}
		if (r != DRE_OK)
			return r;
		l->items[l->n].tenant = tenant;
		l->items[l->n].e = ent;
		loader_run(l);
		l->n++;
	}
	return DRE_OK;
}

size_t
eng_loader_bad(const eng_loader *l)
{
	return l->nbad;
}

dre_err
eng_loader_finish(eng_engine *e, eng_loader *l, int64_t now_ms, bool publish)
{
	eng_index *ix = calloc(1, sizeof(*ix));
	dre_err    err = DRE_ENOMEM;
	// The scratch arena is not needed any more: its memory goes first.
	dre_arena_free(l->scratch);
	l->scratch = NULL;
	if (ix == NULL || loader_order(l) != DRE_OK)
		goto out;
	load_item *items = l->items;
	size_t     m = l->n;
	atomic_init(&ix->ref, 1);
	ix->version = l->version;
	uint32_t ntenants = 0;
	for (size_t i = 0; i < m; i++)
		if (i == 0 || items[i].tenant != items[i - 1].tenant)
			ntenants++;
	ix->tenants = calloc(ntenants + 1, sizeof(ix_tenant *));
	if (ix->tenants == NULL)
		goto out;
	for (size_t i = 0; i < m;) {
		size_t j = i;
		while (j < m && items[j].tenant == items[i].tenant)
			j++;
		ix_ent **ents = malloc((j - i + 1) * sizeof(ix_ent *));
		if (ents == NULL)
			goto out;
		uint32_t k = 0;
		for (size_t x = i; x < j; x++) {
			if (k > 0 && ent_cmp(&ents[k - 1], &items[x].e) == 0) {
				ent_unref(items[x].e); // older duplicate
			} else
				ents[k++] = items[x].e;
			items[x].e = NULL;
		}
		ix_tenant *t = tenant_build(items[i].tenant, ents, k);
		if (t == NULL)
			goto out;
		ix->tenants[ix->ntenants++] = t;
		i = j;
	}
	ix->data_age = now_ms;
	pthread_mutex_lock(&e->wlock);
	stage_locked(e, ix);
	if (publish)
		publish_locked(e);
	pthread_mutex_unlock(&e->wlock);
	ix = NULL;
	err = DRE_OK;
out:
	index_unref(ix);
	eng_loader_free(l);
	return err;
}

// load builds the index of a snapshot; publish: swap it in at once, else
// stage it.
static dre_err
load(eng_engine *e, const eng_master_change *v, size_t n, int64_t now_ms,
    size_t *nbadp, bool publish)
{
	eng_loader *l;
	dre_err     err = eng_loader_open(&l);
	if (err != DRE_OK)
		return err;
	if ((err = eng_loader_add(l, v, n)) != DRE_OK) {
		eng_loader_free(l);
		return err;
	}
	size_t nbad = l->nbad;
	err = eng_loader_finish(e, l, now_ms, publish);
	if (err == DRE_OK && nbadp != NULL)
		*nbadp = nbad;
	return err;
}

dre_err
eng_load(eng_engine *e, const eng_master_change *v, size_t n, int64_t now_ms,
    size_t *nbadp)
{
	return load(e, v, n, now_ms, nbadp, true);
}

dre_err
eng_stage_load(eng_engine *e, const eng_master_change *v, size_t n,
    int64_t now_ms, size_t *nbadp)
{
	return load(e, v, n, now_ms, nbadp, false);
}

// staged_tenant returns the mutable tenant name of the staged version,
// making the staged version (a copy of the current one) and the tenant (a
// copy sharing its parts, or an empty one) as needed (wlock held).
static ix_tenant *
staged_tenant(eng_engine *e, const char *name, int64_t now_ms)
{
	eng_index *ix = e->next;
	if (ix == NULL) {
		eng_index *cur = e->cur;
		ix = calloc(1, sizeof(*ix));
		if (ix == NULL)
			return NULL;
		atomic_init(&ix->ref, 1);
		ix->tenants = calloc(cur->ntenants + 1, sizeof(ix_tenant *));
		if (ix->tenants == NULL) {
			free(ix);
			return NULL;
		}
		for (uint32_t i = 0; i < cur->ntenants; i++) {
			tenant_ref(cur->tenants[i]);
			ix->tenants[ix->ntenants++] = cur->tenants[i];
		}
		ix->version = cur->version;
		ix->data_age = cur->data_age;
		e->next = ix;
	}
	uint32_t lo = 0, hi = ix->ntenants;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		if (strcmp(ix->tenants[mid]->name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	ix_tenant *t
	    = lo < ix->ntenants && strcmp(ix->tenants[lo]->name, name) == 0
	    ? ix->tenants[lo]
	    : NULL;
	if (t != NULL && t->mut)
		return t;
	ix_tenant *nt = tenant_new(name, t);
	if (nt == NULL)
		return NULL;
	if (t != NULL) {
		ix->tenants[lo] = nt;
		tenant_unref(t);
		return nt;
	}
	ix_tenant **tv
	    = realloc(ix->tenants, (ix->ntenants + 2) * sizeof(ix_tenant *));
	if (tv == NULL) {
		tenant_unref(nt);
		return NULL;
	}
	ix->tenants = tv;
	memmove(&tv[lo + 1], &tv[lo], (ix->ntenants - lo) * sizeof(*tv));
	tv[lo] = nt;
	ix->ntenants++;
	(void) now_ms;
	return nt;
}

// stage_change puts c into the staged version (a copy of the current one
// when none is staged): the part of the tenant c belongs to is copied, once
// per staged version, and edited in place; what is built from it is built
// once, at publish (wlock held).
static dre_err
stage_change(
    eng_engine *e, const eng_master_change *c, int64_t now_ms, bool *appliedp)
{
	// Only writers replace e->cur and e->next and they hold wlock:
	// reading them here without plock is safe.
	eng_index    *cur = e->next != NULL ? e->next : e->cur;
	const ix_ent *old
	    = ent_lookup(ix_tenant_find(cur, c->tenant), c->kind, c->key);
	if (old != NULL && old->version >= c->version)
		return DRE_OK; // stale or duplicate change
	ix_ent *ent;
	dre_err err = ent_new(&ent, c, NULL);
	if (err != DRE_OK)
		return err;
	ix_tenant *t = staged_tenant(e, c->tenant, now_ms);
	if (t == NULL) {
		ent_unref(ent);
		return DRE_ENOMEM;
	}
	ix_part **slot = part_slot(t, c->kind, c->key);
	if (slot == NULL) {
		ent_unref(ent);
		return DRE_ENOMEM;
	}
	ix_part *p = *slot;
	if (p == NULL || !p->mut) {
		ix_part *np = p != NULL ? part_copy(p) : part_new();
		if (np == NULL) {
			ent_unref(ent);
			return DRE_ENOMEM;
		}
		part_unref(p);
		*slot = p = np;
	}
	if (!part_put(p, ent, ent_find(p->ents, p->nents, c->kind, c->key))) {
		ent_unref(ent);
		return DRE_ENOMEM;
	}
	eng_index *ix = e->next;
	if (c->version > ix->version)
		ix->version = c->version;
	ix->data_age = now_ms;
	if (appliedp != NULL)
		*appliedp = true;
	return DRE_OK;
}

// change stages c and, with publish, swaps it in at once.
static dre_err
change(eng_engine *e, const eng_master_change *c, int64_t now_ms,
    bool *appliedp, bool publish)
{
	if (appliedp != NULL)
		*appliedp = false;
	if (c->tenant == NULL || c->key == NULL)
		return DRE_EINVAL;
	pthread_mutex_lock(&e->wlock);
	dre_err err = stage_change(e, c, now_ms, appliedp);
	if (err == DRE_OK && publish)
		publish_locked(e);
	pthread_mutex_unlock(&e->wlock);
	return err;
}

dre_err
eng_apply(
    eng_engine *e, const eng_master_change *c, int64_t now_ms, bool *appliedp)
{
	return change(e, c, now_ms, appliedp, true);
}

dre_err
eng_stage(
    eng_engine *e, const eng_master_change *c, int64_t now_ms, bool *appliedp)
{
	return change(e, c, now_ms, appliedp, false);
}

long
ix_promo_rank(const ix_tenant *t, const char *id)
{
	const ix_ent *e = ent_lookup(t, ENG_MK_PROMOTION, id);
	if (e == NULL || e->deleted)
		return -1;
	const dre_promo *p = e->promo;
	long             lo = 0, hi = (long) t->npromos - 1;
	while (lo <= hi) { // promos are in (priority, id) order
		long             mid = (lo + hi) / 2;
		const dre_promo *q = t->promos[mid]->promo;
		int              c = p->priority != q->priority
		                 ? (p->priority < q->priority ? -1 : 1)
		                 : strcmp(p->id, q->id);
		if (c == 0)
			return mid;
		if (c < 0)
			hi = mid - 1;
		else
			lo = mid + 1;
	}
	return -1;
}

const dre_promo *
eng_index_promotion(const eng_index *ix, const char *tenant, const char *id)
{
	const ix_ent *e
	    = ent_lookup(ix_tenant_find(ix, tenant), ENG_MK_PROMOTION, id);
	return e != NULL && !e->deleted ? e->promo : NULL;
}

// ---- the canonical dump (tests) ------------------------------------------

static void
dump_str(FILE *fp, const char *s)
{
	fputs(s != NULL ? s : "-", fp);
}

static void
dump_ranks(FILE *fp, const ix_tenant *t, uint32_t n, const uint32_t *r)
{
	for (uint32_t i = 0; i < n; i++)
		fprintf(fp, " %s", t->promos[r[i]]->key);
}

static int
str_cmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *) x, *(const char *const *) y);
}

static void
dump_mmap(FILE *fp, const ix_tenant *t, const char *name, const ix_mmap *m)
{
	uint32_t     n = 0;
	const char **k = malloc((m->mask + 1) * sizeof(*k));
	for (uint32_t i = 0; k && m->slots && i <= m->mask; i++)
		if (m->slots[i].k != NULL)
			k[n++] = m->slots[i].k;
	qsort(k, n, sizeof(*k), str_cmp);
	for (uint32_t i = 0; i < n; i++) {
		const uint32_t *r;
		uint32_t nr = ix_mmap_get_h(m, k[i], hash_str(k[i]), &r);
		fprintf(fp, "  %s %s:", name, k[i]);
		dump_ranks(fp, t, nr, r);
		fputc('\n', fp);
	}
	free(k);
}

static void
dump_thr(FILE *fp, const ix_tenant *t, const char *name, const ix_thrlist *l)
{
	for (uint32_t i = 0; i < l->n; i++)
		fprintf(fp, "  %s %lld %s\n", name, (long long) l->v[i].v,
		    t->promos[l->v[i].rank]->key);
}

static void
dump_ent(FILE *fp, const ix_ent *e)
{
	fprintf(fp, "  %s %s v%lld%s", eng_master_kind_name(e->kind), e->key,
	    (long long) e->version, e->deleted ? " deleted" : "");
	if (!e->deleted && e->kind == ENG_MK_ARTICLE) {
		fputc(' ', fp);
		dump_str(fp, e->article_group_id);
		fputc(' ', fp);
		dump_str(fp, e->manufacturer_id);
		fputc(' ', fp);
		dump_str(fp, e->ean);
		fprintf(fp, " %lld", (long long) e->reference_price);
	} else if (!e->deleted && e->kind == ENG_MK_POS_GROUP) {
		fputc(' ', fp);
		dump_str(fp, e->code);
	} else if (!e->deleted && e->kind == ENG_MK_TENANT_SETTINGS) {
		fprintf(fp, " %d %d ", e->nudges, e->reject_unknown);
		dump_str(fp, e->currency);
	} else if (!e->deleted && e->kind == ENG_MK_PROMOTION)
		fprintf(
		    fp, " %s prio %d", e->promo->id, (int) e->promo->priority);
	fputc('\n', fp);
}

static uint32_t
dump_part(FILE *fp, const ix_part *p, bool tombstones)
{
	uint32_t live = 0;
	for (uint32_t i = 0; p != NULL && i < p->nents; i++) {
		live += !p->ents[i]->deleted;
		if (tombstones || !p->ents[i]->deleted)
			dump_ent(fp, p->ents[i]);
	}
	return live;
}

void
ix_dump(const eng_index *ix, FILE *out, bool tombstones)
{
	if (tombstones)
		fprintf(out, "index v%lld\n", (long long) ix->version);
	for (uint32_t i = 0; i < ix->ntenants; i++) {
		const ix_tenant *t = ix->tenants[i];
		char            *body = NULL;
		size_t           blen = 0;
		FILE            *fp = open_memstream(&body, &blen);
		if (fp == NULL)
			return;
		uint32_t live = dump_part(fp, t->promo, tombstones)
		    + dump_part(fp, t->other, tombstones);
		for (uint32_t k = 0; k < IX_SHARDS; k++) {
			const ix_part *p
			    = t->art != NULL ? t->art->p[k] : NULL;
			uint32_t n = dump_part(fp, p, tombstones);
			live += n;
			for (uint32_t x = 0; p != NULL && x < p->nents; x++) {
				const ix_ent *e = p->ents[x];
				if (!e->deleted && ix_article(t, e->key) != e)
					fprintf(fp,
					    "  ! article %s not found\n",
					    e->key);
			}
			if (n > 0)
				fprintf(fp, "  shard %u: %u articles\n", k, n);
		}
		for (uint32_t r = 0; r < t->npromos; r++)
			fprintf(fp, "  rank %u %s\n", r, t->promos[r]->key);
		fputs("  unscoped:", fp);
		dump_ranks(fp, t, t->unscoped.n, t->unscoped.rank);
		fputc('\n', fp);
		dump_mmap(fp, t, "article", &t->by_article);
		dump_mmap(fp, t, "group", &t->by_group);
		dump_mmap(fp, t, "manufacturer", &t->by_manu);
		dump_mmap(fp, t, "channel", &t->by_channel);
		dump_mmap(fp, t, "udf", &t->by_udf);
		dump_mmap(fp, t, "addf", &t->by_addf);
		dump_thr(fp, t, "amount", &t->by_amount);
		dump_thr(fp, t, "units", &t->by_units);
		for (uint32_t k = 0;
		     t->pg_by_id.slots && k <= t->pg_by_id.mask; k++)
			if (t->pg_by_id.slots[k].k != NULL) {
				const ix_ent *e = t->pg_by_id.slots[k].v;
				fprintf(fp, "  posgroup %s by code %s\n",
				    e->key,
				    e->code
				            && ix_map_get(
				                   &t->pg_by_code, e->code)
				                == e
				        ? "ok"
				        : "-");
			}
		fclose(fp);
		// A tenant of tombstones only is no tenant to a fresh load.
		if (tombstones || live > 0)
			fprintf(out,
			    "tenant %s: %u live, %u promotions, loyalty %u, "
			    "settings %s\n%s",
			    t->name, live, t->npromos, t->loyalty_needs,
			    t->settings ? t->settings->key : "-", body);
		free(body);
	}
}
