// test_index_incremental.c -- the index's incremental path: random
// upserts, deletes and stale changes of every kind, staged in batches of
// random size and published, give the same index (ix_dump) as one built
// from scratch from the resulting data; a change replaces only the part of
// the tenant it belongs to (the other parts are the same objects); a stale
// change in the same batch is ignored; a discarded batch leaves nothing; a
// load in parts (eng_loader, as the feed loads a paged snapshot) whose
// inputs are freed after each part builds the index eng_load builds.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "index.h"

#define NTENANTS 2
#define NART     300
#define NPROMO   40
#define NPG      5
#define NAG      3
#define NKEYS    (NART + NPROMO + NPG + NAG + 1)

typedef struct {
	long  version; // 0 = never seen
	char *doc; // NULL = deleted
} slot;

static slot     model[NTENANTS][NKEYS];
static unsigned seed = 12345;

static unsigned
rnd(unsigned n)
{
	seed = seed * 1103515245u + 12345u;
	return (seed >> 16) % n;
}

static const char *const tenants[NTENANTS] = { "tenant-a", "tenant-b" };

static eng_master_kind
kind_of(int k)
{
	if (k < NART)
		return ENG_MK_ARTICLE;
	if (k < NART + NPROMO)
		return ENG_MK_PROMOTION;
	if (k < NART + NPROMO + NPG)
		return ENG_MK_POS_GROUP;
	if (k < NART + NPROMO + NPG + NAG)
		return ENG_MK_ARTICLE_GROUP;
	return ENG_MK_TENANT_SETTINGS;
}

static void
key_of(char *buf, size_t cap, int k)
{
	switch (kind_of(k)) {
	case ENG_MK_ARTICLE:
		snprintf(buf, cap, "art-%d", k);
		break;
	case ENG_MK_PROMOTION:
		snprintf(buf, cap, "90000000-0000-4000-8000-%012d", k);
		break;
	case ENG_MK_POS_GROUP:
		snprintf(buf, cap, "pg-%d", k);
		break;
	case ENG_MK_ARTICLE_GROUP:
		snprintf(buf, cap, "ag-%d", k);
		break;
	default:
		snprintf(buf, cap, "settings");
	}
}

#define NCONDS 7

static void
cond_of(char *buf, size_t cap, unsigned c)
{
	unsigned x = rnd(NART), y = rnd(NART);
	switch (c) {
	case 0:
		snprintf(buf, cap,
		    "{\"type\":\"ARTICLE\",\"values\":[\"art-%u\",\"art-%u\"]"
		    "}",
		    x, y);
		break;
	case 1:
		snprintf(buf, cap,
		    "{\"type\":\"ARTICLE_GROUP\",\"values\":[\"ag-%u\"]}",
		    x % 4);
		break;
	case 2:
		snprintf(buf, cap,
		    "{\"type\":\"MANUFACTURER\",\"values\":[\"M%u\"]}", x % 3);
		break;
	case 3:
		snprintf(buf, cap,
		    "{\"type\":\"CHANNEL\",\"values\":[\"ONLINE%u\"]}", x % 3);
		break;
	case 4:
		snprintf(buf, cap,
		    "{\"type\":\"RECEIPT_AMOUNT\",\"min\":%u.50}", x % 50);
		break;
	case 5:
		snprintf(buf, cap, "{\"type\":\"ITEM_QUANTITY\",\"min\":%u}",
		    1 + x % 5);
		break;
	default:
		snprintf(buf, cap,
		    "{\"type\":\"USER_DEFINED\",\"key\":\"k%u\",\"values\":"
		    "[\"v\"]}",
		    x % 3);
	}
}

static char *
doc_of(int k, const char *key)
{
	char buf[1024];
	switch (kind_of(k)) {
	case ENG_MK_ARTICLE:
		snprintf(buf, sizeof(buf),
		    "{\"articleNumber\":\"%s\",\"articleGroupId\":\"ag-%u\","
		    "\"manufacturerId\":\"M%u\",\"ean\":\"%u\","
		    "\"referencePrice\":%u.%02u}",
		    key, rnd(4), rnd(3), rnd(1000), rnd(50), rnd(100));
		break;
	case ENG_MK_PROMOTION: {
		char cond[256];
		cond_of(cond, sizeof(cond), rnd(NCONDS));
		snprintf(buf, sizeof(buf),
		    "{\"id\":\"%s\",\"name\":\"p\",\"type\":\"ARTICLE\","
		    "\"status\":\"ACTIVE\",\"priority\":%u,"
		    "\"conditions\":[%s],\"actions\":[{\"type\":\"%s\","
		    "\"discountType\":\"PERCENTAGE\",\"value\":%u%s}]}",
		    key, rnd(5), cond, rnd(2) ? "ARTICLE" : "RECEIPT",
		    1 + rnd(30),
		    rnd(2) ? ",\"target\":{\"articles\":[\"art-1\"]}" : "");
		break;
	}
	case ENG_MK_POS_GROUP:
		snprintf(buf, sizeof(buf), "{\"id\":\"%s\",\"code\":\"C%u\"}",
		    key, rnd(100));
		break;
	case ENG_MK_ARTICLE_GROUP:
		snprintf(buf, sizeof(buf), "{\"id\":\"%s\",\"name\":\"g%u\"}",
		    key, rnd(9));
		break;
	default:
		snprintf(buf, sizeof(buf),
		    "{\"currency\":\"%s\",\"enableProductionNudges\":%s}",
		    rnd(2) ? "EUR" : "CHF", rnd(2) ? "true" : "false");
	}
	return strdup(buf);
}

// dump returns ix_dump's text of e's current index.
static char *
dump(eng_engine *e, bool tombstones)
{
	char            *s = NULL;
	size_t           n = 0;
	FILE            *fp = open_memstream(&s, &n);
	const eng_index *ix = eng_acquire(e);
	ix_dump(ix, fp, tombstones);
	eng_index_release(ix);
	fclose(fp);
	return s;
}

// scratch is the dump of an index loaded from the model's live data.
static char *
scratch(void)
{
	eng_engine        *e;
	eng_master_change *v = calloc(NTENANTS * NKEYS, sizeof(*v));
	char               keys[NTENANTS * NKEYS][64];
	size_t             n = 0;
	assert_int_equal(eng_alloc(&e), DRE_OK);
	for (int t = 0; t < NTENANTS; t++)
		for (int k = 0; k < NKEYS; k++) {
			const slot *s = &model[t][k];
			if (s->version == 0 || s->doc == NULL)
				continue;
			key_of(keys[n], sizeof(keys[n]), k);
			v[n] = (eng_master_change) { .tenant = tenants[t],
				.kind = kind_of(k),
				.key = keys[n],
				.version = s->version,
				.doc = s->doc,
				.doc_len = strlen(s->doc) };
			n++;
		}
	size_t nbad = 0;
	assert_int_equal(eng_load(e, v, n, 1, &nbad), DRE_OK);
	assert_int_equal(nbad, 0);
	char *d = dump(e, false);
	eng_free(e);
	free(v);
	return d;
}

static void
test_incremental_equals_scratch(void **state)
{
	eng_engine *e;
	long        version = 0;
	assert_int_equal(eng_alloc(&e), DRE_OK);
	for (int round = 0; round < 12; round++) {
		unsigned batch = 1 + rnd(round % 3 == 0 ? 400 : 30);
		for (unsigned i = 0; i < batch; i++) {
			int   t = (int) rnd(NTENANTS);
			int   k = (int) rnd(NKEYS);
			slot *s = &model[t][k];
			char  key[64];
			key_of(key, sizeof(key), k);
			bool stale = s->version > 1 && rnd(8) == 0;
			bool del = !stale && rnd(5) == 0;
			long ver = stale ? s->version - 1 - rnd(2) : ++version;
			char             *doc = del ? NULL : doc_of(k, key);
			eng_master_change c = { .tenant = tenants[t],
				.kind = kind_of(k),
				.key = key,
				.version = ver,
				.doc = doc,
				.doc_len = doc ? strlen(doc) : 0 };
			bool              applied = true;
			assert_int_equal(round % 4 == 3
			        ? eng_apply(e, &c, 1, &applied)
			        : eng_stage(e, &c, 1, &applied),
			    DRE_OK);
			assert_int_equal(applied, !stale);
			if (stale) {
				free(doc);
				continue;
			}
			free(s->doc);
			s->doc = doc;
			s->version = ver;
		}
		eng_publish(e);
		char *a = dump(e, false), *b = scratch();
		assert_string_equal(a, b);
		free(a);
		free(b);
	}
	// Every tombstone keeps its version: a replay of everything is
	// ignored.
	char *before = dump(e, true);
	for (int t = 0; t < NTENANTS; t++)
		for (int k = 0; k < NKEYS; k++) {
			char key[64];
			if (model[t][k].version == 0)
				continue;
			key_of(key, sizeof(key), k);
			eng_master_change c = { .tenant = tenants[t],
				.kind = kind_of(k),
				.key = key,
				.version = model[t][k].version,
				.doc = "{}",
				.doc_len = 2 };
			bool              applied = true;
			assert_int_equal(
			    eng_stage(e, &c, 1, &applied), DRE_OK);
			assert_false(applied);
		}
	eng_discard(e);
	char *after = dump(e, true);
	assert_string_equal(before, after);
	free(before);
	free(after);
	eng_free(e);
	for (int t = 0; t < NTENANTS; t++)
		for (int k = 0; k < NKEYS; k++) {
			free(model[t][k].doc);
			model[t][k] = (slot) { 0 };
		}
}

static void
put(eng_engine *e, eng_master_kind kind, const char *key, long version,
    const char *doc, bool stage)
{
	eng_master_change c = { .tenant = "t",
		.kind = kind,
		.key = key,
		.version = version,
		.doc = doc,
		.doc_len = doc ? strlen(doc) : 0 };
	bool              applied = false;
	assert_int_equal(stage ? eng_stage(e, &c, 1, &applied)
	                       : eng_apply(e, &c, 1, &applied),
	    DRE_OK);
}

// An article change replaces its shard and nothing else; a promotion change
// its tenant's promotion part; a batch of changes to one shard copies it
// once.
static void
test_change_touches_its_part(void **state)
{
	eng_engine *e;
	char        key[32], doc[128];
	assert_int_equal(eng_alloc(&e), DRE_OK);
	for (int i = 0; i < 5000; i++) {
		snprintf(key, sizeof(key), "a%d", i);
		snprintf(doc, sizeof(doc), "{\"articleGroupId\":\"g%d\"}", i);
		put(e, ENG_MK_ARTICLE, key, i + 1, doc, true);
	}
	put(e, ENG_MK_PROMOTION, "90000000-0000-4000-8000-000000000001", 1,
	    "{\"id\":\"90000000-0000-4000-8000-000000000001\",\"name\":\"p\","
	    "\"type\":\"ARTICLE\",\"status\":\"ACTIVE\",\"conditions\":[{"
	    "\"type\":\"ARTICLE\",\"values\":[\"a1\"]}],\"actions\":[{"
	    "\"type\":\"ARTICLE\",\"discountType\":\"PERCENTAGE\",\"value\":"
	    "5}]}",
	    false);
	const eng_index *i0 = eng_acquire(e);
	const ix_tenant *t0 = ix_tenant_find(i0, "t");
	assert_non_null(t0);
	assert_int_equal(t0->nents, 5001);
	put(e, ENG_MK_ARTICLE, "a7", 9000, "{\"articleGroupId\":\"x\"}", true);
	put(e, ENG_MK_ARTICLE, "a7", 9001, "{\"articleGroupId\":\"y\"}", true);
	put(e, ENG_MK_ARTICLE, "a7", 8999, "{\"articleGroupId\":\"z\"}", true);
	eng_publish(e);
	const eng_index *i1 = eng_acquire(e);
	const ix_tenant *t1 = ix_tenant_find(i1, "t");
	uint32_t         sh = ix_hash("a7") >> (32 - IX_SHARD_BITS), same = 0;
	for (uint32_t k = 0; k < IX_SHARDS; k++)
		same += t1->art->p[k] == t0->art->p[k];
	assert_int_equal(same, IX_SHARDS - 1);
	assert_ptr_not_equal(t1->art->p[sh], t0->art->p[sh]);
	assert_ptr_equal(t1->promo, t0->promo);
	assert_ptr_equal(t1->other, t0->other);
	assert_string_equal(ix_article(t1, "a7")->article_group_id, "y");
	assert_string_equal(ix_article(t0, "a7")->article_group_id, "g7");
	assert_int_equal(
	    eng_index_version_of(i1, "t", ENG_MK_ARTICLE, "a7"), 9001);
	put(e, ENG_MK_PROMOTION, "90000000-0000-4000-8000-000000000002", 2,
	    "{\"id\":\"90000000-0000-4000-8000-000000000002\",\"name\":\"q\","
	    "\"type\":\"ARTICLE\",\"status\":\"ACTIVE\",\"conditions\":[{"
	    "\"type\":\"ARTICLE\",\"values\":[\"a2\"]}],\"actions\":[{"
	    "\"type\":\"ARTICLE\",\"discountType\":\"PERCENTAGE\",\"value\":"
	    "5}]}",
	    false);
	const eng_index *i2 = eng_acquire(e);
	const ix_tenant *t2 = ix_tenant_find(i2, "t");
	assert_ptr_equal(t2->art, t1->art); // not even the shard table copied
	assert_ptr_not_equal(t2->promo, t1->promo);
	assert_int_equal(t2->npromos, 2);
	assert_int_equal(t1->npromos, 1);
	eng_index_release(i0);
	eng_index_release(i1);
	eng_index_release(i2);
	eng_free(e);
}

// dupchange is a heap copy of c (every string its own allocation).
static eng_master_change
dupchange(const eng_master_change *c)
{
	eng_master_change d = *c;
	d.tenant = strdup(c->tenant);
	d.key = strdup(c->key);
	d.doc = c->doc ? strndup(c->doc, c->doc_len) : NULL;
	return d;
}

static void
freechange(eng_master_change *c)
{
	free((char *) c->tenant);
	free((char *) c->key);
	free((char *) c->doc);
}

// load_parts loads v[0..n) into e in parts of random size (eng_loader),
// each part's strings freed once it is added, staged; the unreadable ones.
static size_t
load_parts(eng_engine *e, const eng_master_change *v, size_t n)
{
	eng_loader *l;
	assert_int_equal(eng_loader_open(&l), DRE_OK);
	for (size_t i = 0; i < n;) {
		size_t m = 1 + rnd(60);
		if (m > n - i)
			m = n - i;
		eng_master_change *page = calloc(m, sizeof(*page));
		for (size_t k = 0; k < m; k++)
			page[k] = dupchange(&v[i + k]);
		assert_int_equal(eng_loader_add(l, page, m), DRE_OK);
		for (size_t k = 0; k < m; k++)
			freechange(&page[k]);
		free(page);
		i += m;
	}
	size_t nbad = eng_loader_bad(l);
	assert_int_equal(eng_loader_finish(e, l, 7, false), DRE_OK);
	return nbad;
}

// The orders of a snapshot (tenant, kind name, key) and of a local copy
// (kind name, tenant, key); a key's versions newest first.
static int
snapshot_order(const void *x, const void *y)
{
	const eng_master_change *a = x, *b = y;
	int                      c = strcmp(a->tenant, b->tenant);
	if (c == 0)
		c = strcmp(eng_master_kind_name(a->kind),
		    eng_master_kind_name(b->kind));
	if (c == 0)
		c = strcmp(a->key, b->key);
	return c != 0 ? c
	              : (a->version < b->version) - (a->version > b->version);
}

static int
copy_order(const void *x, const void *y)
{
	const eng_master_change *a = x, *b = y;
	int                      c = strcmp(
	                         eng_master_kind_name(a->kind), eng_master_kind_name(b->kind));
	return c != 0 ? c : snapshot_order(x, y);
}

// A load in parts of random size, each part's strings freed once it is
// added (pages freed as they are consumed), builds what eng_load of the
// whole builds: the same dump, tombstones and version included, the same
// count of unreadable documents; older duplicates and deletes are
// versions only. So does a load in the order of a snapshot or of a local
// copy (runs of one tenant and kind put in order whole, not sorted).
static void
test_loader_in_parts_equals_load(void **state)
{
	enum { N = NTENANTS * NKEYS * 2 };
	eng_master_change *v = calloc(N, sizeof(*v));
	size_t             n = 0;
	long               version = 0;
	for (int t = 0; t < NTENANTS; t++)
		for (int k = 0; k < NKEYS; k++) {
			char key[64];
			key_of(key, sizeof(key), k);
			char *doc = rnd(9) == 0 ? NULL : doc_of(k, key);
			if (doc != NULL && rnd(40) == 0) { // does not parse
				free(doc);
				doc = strdup("{\"broken\":");
			}
			eng_master_change c = { .tenant = tenants[t],
				.kind = kind_of(k),
				.key = key,
				.version = ++version,
				.doc = doc,
				.doc_len = doc ? strlen(doc) : 0 };
			v[n++] = dupchange(&c);
			if (rnd(6) == 0) { // an older version of the same
				c.version = version - 1 - rnd(3);
				c.doc = "{\"articleGroupId\":\"older\"}";
				c.doc_len = strlen(c.doc);
				v[n++] = dupchange(&c);
			}
			free(doc);
		}
	// in a random order, as pages of another store's key order
	for (size_t i = n - 1; i > 0; i--) {
		size_t            j = rnd((unsigned) i + 1);
		eng_master_change x = v[i];
		v[i] = v[j];
		v[j] = x;
	}
	eng_engine *whole, *parts;
	size_t      nbad_whole = 0;
	assert_int_equal(eng_alloc(&whole), DRE_OK);
	assert_int_equal(eng_alloc(&parts), DRE_OK);
	assert_int_equal(eng_load(whole, v, n, 7, &nbad_whole), DRE_OK);
	assert_true(nbad_whole > 0);
	assert_int_equal(load_parts(parts, v, n), nbad_whole);
	// staged, not published: readers still see the empty index
	const eng_index *ix = eng_acquire(parts);
	assert_int_equal(eng_index_promotions(ix, NULL), 0);
	eng_index_release(ix);
	eng_publish(parts);
	char *a = dump(whole, true), *b = dump(parts, true);
	assert_string_equal(a, b);
	const eng_index *iw = eng_acquire(whole), *ip = eng_acquire(parts);
	assert_int_equal(eng_index_version(iw), version);
	assert_int_equal(eng_index_version(ip), version);
	eng_index_release(iw);
	eng_index_release(ip);
	free(b);
	int (*orders[])(const void *, const void *)
	    = { snapshot_order, copy_order };
	for (size_t o = 0; o < 2; o++) {
		eng_engine *e;
		assert_int_equal(eng_alloc(&e), DRE_OK);
		qsort(v, n, sizeof(*v), orders[o]);
		assert_int_equal(load_parts(e, v, n), nbad_whole);
		eng_publish(e);
		b = dump(e, true);
		assert_string_equal(a, b);
		free(b);
		eng_free(e);
	}
	free(a);
	// a load dropped half-way leaves nothing behind (ASan: no leak)
	eng_loader *l;
	assert_int_equal(eng_loader_open(&l), DRE_OK);
	assert_int_equal(eng_loader_add(l, v, n / 2), DRE_OK);
	eng_loader_free(l);
	for (size_t i = 0; i < n; i++)
		freechange(&v[i]);
	free(v);
	eng_free(whole);
	eng_free(parts);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_incremental_equals_scratch),
		cmocka_unit_test(test_loader_in_parts_equals_load),
		cmocka_unit_test(test_change_touches_its_part),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
