// index.h -- internal layout of the immutable master-data index (engine.c
// reads it, index.c builds it). Not part of the engine's public API.
#ifndef ENG_INDEX_H
#define ENG_INDEX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dre/arena.h"
#include "dre/promo.h"
#include "engine.h"

// A set of strings: the list as parsed, plus a hash table when the list is
// long enough that a linear scan per basket line would cost (ARTICLE_LIST
// conditions with thousands of article numbers).
typedef struct {
	const char *const *v;
	uint32_t           n;
	uint32_t           mask; // slots - 1; 0 = no table
	const char       **slots;
	const uint32_t    *hv; // ix_hash of each value (scan mode)
} ix_set;

bool ix_set_has(const ix_set *s, const char *k);
// ix_set_has_h is ix_set_has with k's ix_hash precomputed (per basket line),
// so most mismatches cost an integer compare instead of a strcmp.
bool     ix_set_has_h(const ix_set *s, const char *k, uint32_t h);
uint32_t ix_hash(const char *s);
bool     ix_set_has_nocase(const ix_set *s, const char *k);

// A time zone (engine_tz.c): loaded once per name, shared read-only by
// every index version for the life of the process.
typedef struct ix_zone ix_zone;

// ix_zone_get returns the zone called name, NULL for UTC or an unknown name
// (read as UTC). Thread-safe; the zone is never freed.
const ix_zone *ix_zone_get(const char *name);
// ix_zone_offset is the zone's UTC offset in seconds at UTC second t.
int32_t ix_zone_offset(const ix_zone *z, int64_t t);

// A compiled promotion: the parsed document plus a set per condition and
// per action target, so matching a line never walks a long list.
typedef struct {
	ix_set  *cond; // one per condition (values)
	ix_set  *tgt_art; // one per action: target.articles
	ix_set  *tgt_grp; // target.articleGroups
	ix_set  *tgt_manu; // target.manufacturers
	ix_set **comp; // per action: BUNDLE component k -> [2k] articles,
	               // [2k+1] articleGroups
	const ix_zone *zone; // of the time windows; NULL = UTC
	bool has_article_cond; // any ARTICLE/ARTICLE_LIST/GROUP/MANUFACTURER
	bool has_target; // some action has a target
	bool line_stage; // markdown, tier, bundle or free-item actions
	bool receipt_stage; // RECEIPT / SCALED_RECEIPT actions
	bool loyalty_stage; // points actions
	bool issues_coupons; // ISSUE_COUPON: coupons generated at confirm
	bool dynamic; // RECEIPT_AMOUNT condition or SCALED_RECEIPT action:
	              // depends on the discounts of other promotions
} ix_promo;

// One master-data entity, shared by every index version that holds it. A
// promotion lives in an arena of its own (the entity first); every other
// entity, its strings included, is one allocation (a million articles are
// a million allocations, not three million).
typedef struct ix_ent ix_ent;
struct ix_ent {
	atomic_int      ref;
	eng_master_kind kind;
	bool            deleted; // tombstone: keeps the version of a delete
	int64_t         version;
	char           *key;
	dre_arena      *a; // a promotion's arena (holds the entity); else NULL
	union {
		struct { // PROMOTION
			const dre_promo *promo;
			ix_promo         cp;
		};
		struct { // ARTICLE
			const char *article_group_id;
			const char *manufacturer_id;
			const char *ean;
			int64_t     reference_price; // minor units; -1 = none
		};
		struct { // POS_GROUP
			const char *code;
		};
		struct { // TENANT_SETTINGS
			bool nudges; // enableProductionNudges
			bool reject_unknown; // rejectUnknownFields: POS strict
			const char *currency;
		};
	};
};

// Promotions in (priority, id) order are numbered by rank; candidate lists
// hold ranks so that sorting candidates is sorting integers.
typedef struct {
	uint32_t        n;
	const uint32_t *rank;
} ix_plist;

typedef struct {
	const char *k;
	const void *v;
} ix_slot;

// A multimap slot: a key and the ranks of the promotions it reaches. The
// hash, a short key and a single rank live in the slot itself, so a lookup
// in an index far larger than the caches costs one miss, not four (slot,
// key string, list, ranks).
typedef struct {
	const char     *k; // NULL = empty slot
	uint32_t        h; // ix_hash(k)
	uint32_t        n;
	const uint32_t *rank; // n > 1
	uint32_t        one; // n == 1
	char            ik[20]; // k when shorter than 20 bytes, else ""
} ix_mslot;

typedef struct {
	ix_mslot *slots;
	uint32_t  mask;
} ix_mmap;

// ix_mmap_get_h returns how many promotions key k (ix_hash h) reaches and
// points *ranks at their ranks (ascending); 0 when none.
uint32_t ix_mmap_get_h(
    const ix_mmap *m, const char *k, uint32_t h, const uint32_t **ranks);
// ix_mmap_prefetch starts loading the slot a lookup of hash h reads first.
void ix_mmap_prefetch(const ix_mmap *m, uint32_t h);

typedef struct {
	ix_slot *slots;
	uint32_t mask;
} ix_map;

const void *ix_map_get(const ix_map *m, const char *k);
// ix_map_get_h is ix_map_get with k's ix_hash precomputed.
const void *ix_map_get_h(const ix_map *m, const char *k, uint32_t h);
// ix_map_prefetch starts loading the slot a lookup of hash h reads first.
void ix_map_prefetch(const ix_map *m, uint32_t h);

// A threshold index entry: promotions keyed by the amount or quantity a
// basket must reach, sorted ascending, so a basket finds the ones within
// reach (and within the near-miss window) by binary search.
typedef struct {
	int64_t  v;
	uint32_t rank;
} ix_thr;

typedef struct {
	ix_thr  *v;
	uint32_t n;
} ix_thrlist;

// A part of a tenant: some of its entities (tombstones too) sorted by
// (kind, key), and what is built from them. A tenant holds three kinds of
// part -- its promotions, its articles in IX_SHARDS shards by key hash, and
// the rest (POS groups, article groups, settings) -- shared by every tenant
// version until a change replaces one: a change costs its part, not the
// tenant (an article change copies one shard of ~1/1024 of the articles).
// A part is immutable once built; mut marks one the writer is still
// editing (staged, private), built when the staged version is published.
#define IX_SHARD_BITS 10
#define IX_SHARDS     (1u << IX_SHARD_BITS)

typedef struct ix_part ix_part;
struct ix_part {
	atomic_int ref;
	bool       mut;
	ix_ent   **ents;
	uint32_t   nents, cap;
	dre_arena *a; // what is built below (NULL = nothing yet)
	// an article shard
	ix_map articles; // article number -> ix_ent
	// the promotions
	ix_ent   **promos; // live promotions by rank
	uint32_t   npromos;
	ix_mmap    by_article, by_group, by_manu, by_channel, by_udf, by_addf;
	ix_thrlist by_amount, by_units;
	ix_plist   unscoped;
	unsigned   loyalty_needs;
	// the rest
	ix_map        pg_by_id, pg_by_code;
	const ix_ent *settings;
};

// The article shards of a tenant, shared by its versions until an article
// changes (a promotion change does not copy 1,024 pointers).
typedef struct {
	atomic_int ref;
	bool       mut;
	uint32_t   nents; // in all shards
	ix_part   *p[IX_SHARDS]; // NULL = none
} ix_shards;

typedef struct ix_tenant ix_tenant;
struct ix_tenant {
	atomic_int ref;
	bool       mut; // being edited by the writer (see ix_part)
	char      *name;
	ix_part   *promo; // PROMOTION entities
	ix_part   *other; // POS_GROUP, ARTICLE_GROUP, TENANT_SETTINGS
	ix_shards *art; // ARTICLE entities (NULL = none)
	uint32_t   nents; // in all parts
	// Copied from the parts (which own the memory) when built:
	ix_ent      **promos; // live promotions by rank
	uint32_t      npromos;
	ix_mmap       by_article; // article number -> ranks
	ix_mmap       by_group; // article group id -> ranks
	ix_mmap       by_manu; // manufacturer id -> ranks
	ix_mmap       by_channel; // lower-case channel -> ranks
	ix_mmap       by_udf; // userDefinedFields key -> ranks
	ix_mmap       by_addf; // item additionalFields key -> ranks
	ix_thrlist    by_amount; // RECEIPT_AMOUNT min (minor units)
	ix_thrlist    by_units; // ITEM_QUANTITY min (thousandths)
	ix_plist      unscoped; // promotions no key can find
	ix_map        pg_by_id; // POS group id -> ix_ent
	ix_map        pg_by_code; // POS group code -> ix_ent
	const ix_ent *settings; // TENANT_SETTINGS, NULL = defaults
	unsigned      loyalty_needs; // ENG_LOYALTY_* of the live promotions
};

// ix_article returns the live article number k of t, NULL when none.
const ix_ent *ix_article(const ix_tenant *t, const char *k);

struct eng_index {
	atomic_int  ref;
	ix_tenant **tenants; // by name
	uint32_t    ntenants;
	int64_t     version;
	int64_t     data_age;
};

const ix_tenant *ix_tenant_find(const eng_index *ix, const char *name);
// ix_promo_rank returns the rank of live promotion id in t, or -1.
long ix_promo_rank(const ix_tenant *t, const char *id);
// ix_dump writes a canonical text of everything ix holds (entities,
// ranks, every map's contents) to fp: two indexes of the same data dump
// the same, however they were built (the incremental path's unit test);
// without tombstones, as a fresh load (which keeps none) would.
void ix_dump(const eng_index *ix, FILE *fp, bool tombstones);

#endif
