// test_store.c -- RocksDB store: column families, batches, prefix iterators,
// reopen, bulk writes.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dre/clock.h"
#include "dre/store.h"
#include "testkit.h"

static const char *const cfs[] = { "one", "two" };

static char dir[256];

static int
setup(void **state)
{
	if (tk_tmpdir(dir, sizeof dir, "store") != 0)
		return -1;
	strcat(dir, "/db/nested"); // parents are created
	return 0;
}

static int
teardown(void **state)
{
	dir[strlen(dir) - strlen("/db/nested")] = '\0';
	return tk_rmtree(dir);
}

static dre_store *
open_store(void)
{
	dre_store_cfg cfg = { .path = dir, .cfs = cfs, .ncfs = 2 };
	dre_store    *s = NULL;
	assert_int_equal(dre_store_open(&s, &cfg), DRE_OK);
	assert_non_null(s);
	return s;
}

static void
test_put_get_delete(void **state)
{
	dre_store *s = open_store();
	char      *v = NULL;
	size_t     n = 0;
	assert_int_equal(dre_store_get(s, 1, "k", 1, &v, &n), DRE_ENOTFOUND);
	assert_int_equal(dre_store_put(s, 1, "k", 1, "v1", 2, false), DRE_OK);
	assert_int_equal(dre_store_put(s, 2, "k", 1, "v2", 2, true), DRE_OK);
	assert_int_equal(dre_store_get(s, 1, "k", 1, &v, &n), DRE_OK);
	assert_int_equal(n, 2);
	assert_memory_equal(v, "v1", 2);
	assert_int_equal(v[2], '\0');
	free(v);
	assert_int_equal(dre_store_get(s, 2, "k", 1, &v, &n), DRE_OK);
	assert_memory_equal(v, "v2", 2);
	free(v);
	assert_int_equal(dre_store_get(s, 0, "k", 1, &v, &n), DRE_ENOTFOUND);
	// binary keys and values with NULs
	assert_int_equal(
	    dre_store_put(s, 0, "a\0b", 3, "x\0y", 3, false), DRE_OK);
	assert_int_equal(dre_store_get(s, 0, "a\0b", 3, &v, &n), DRE_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(v, "x\0y", 3);
	free(v);
	assert_int_equal(dre_store_delete(s, 1, "k", 1, true), DRE_OK);
	assert_int_equal(dre_store_get(s, 1, "k", 1, &v, &n), DRE_ENOTFOUND);
	dre_store_close(s);

	// Reopen: data and column families persist.
	s = open_store();
	assert_int_equal(dre_store_get(s, 2, "k", 1, &v, &n), DRE_OK);
	assert_memory_equal(v, "v2", 2);
	free(v);
	assert_int_equal(dre_store_get(s, 1, "k", 1, &v, &n), DRE_ENOTFOUND);
	dre_store_close(s);
}

static void
test_batch(void **state)
{
	dre_store *s = open_store();
	dre_batch *b = dre_batch_alloc();
	assert_non_null(b);
	dre_batch_put(b, s, 1, "a", 1, "1", 1);
	dre_batch_put(b, s, 2, "b", 1, "2", 1);
	dre_batch_delete(b, s, 1, "zz", 2);
	assert_int_equal(dre_batch_count(b), 3);
	char  *v = NULL;
	size_t n = 0;
	// Nothing visible before the write.
	assert_int_equal(dre_store_get(s, 1, "a", 1, &v, &n), DRE_ENOTFOUND);
	assert_int_equal(dre_store_write(s, b, true), DRE_OK);
	assert_int_equal(dre_store_get(s, 1, "a", 1, &v, &n), DRE_OK);
	free(v);
	assert_int_equal(dre_store_get(s, 2, "b", 1, &v, &n), DRE_OK);
	free(v);
	dre_batch_clear(b);
	assert_int_equal(dre_batch_count(b), 0);
	dre_batch_free(b);
	dre_batch_free(NULL);
	dre_store_close(s);
	dre_store_close(NULL);
}

static void
test_indexed_batch(void **state)
{
	dre_store *s = open_store();
	assert_int_equal(dre_store_put(s, 1, "k", 1, "db", 2, true), DRE_OK);
	assert_int_equal(dre_store_put(s, 1, "gone", 4, "x", 1, true), DRE_OK);
	dre_batch *b = dre_batch_alloc_indexed();
	char      *v = NULL;
	size_t     n = 0;
	// Reads fall through to the store until the batch has the key.
	assert_int_equal(dre_batch_get(b, s, 1, "k", 1, &v, &n), DRE_OK);
	assert_int_equal(n, 2);
	assert_memory_equal(v, "db", 2);
	free(v);
	dre_batch_put(b, s, 1, "k", 1, "b1", 2);
	dre_batch_put(b, s, 1, "k", 1, "b2", 2); // last one wins
	dre_batch_delete(b, s, 1, "gone", 4);
	assert_int_equal(dre_batch_get(b, s, 1, "k", 1, &v, &n), DRE_OK);
	assert_memory_equal(v, "b2", 2);
	free(v);
	assert_int_equal(
	    dre_batch_get(b, s, 1, "gone", 4, &v, &n), DRE_ENOTFOUND);
	// A save point drops only what came after it.
	dre_batch_savepoint(b);
	dre_batch_put(b, s, 1, "k", 1, "b3", 2);
	dre_batch_put(b, s, 2, "new", 3, "n", 1);
	assert_int_equal(dre_batch_rollback(b), DRE_OK);
	assert_int_equal(dre_batch_get(b, s, 1, "k", 1, &v, &n), DRE_OK);
	assert_memory_equal(v, "b2", 2);
	free(v);
	assert_int_equal(
	    dre_batch_get(b, s, 2, "new", 3, &v, &n), DRE_ENOTFOUND);
	// The store is untouched until the write.
	assert_int_equal(dre_store_get(s, 1, "k", 1, &v, &n), DRE_OK);
	assert_memory_equal(v, "db", 2);
	free(v);
	assert_int_equal(dre_store_write(s, b, true), DRE_OK);
	assert_int_equal(dre_store_get(s, 1, "k", 1, &v, &n), DRE_OK);
	assert_memory_equal(v, "b2", 2);
	free(v);
	assert_int_equal(
	    dre_store_get(s, 1, "gone", 4, &v, &n), DRE_ENOTFOUND);
	assert_int_equal(dre_store_get(s, 2, "new", 3, &v, &n), DRE_ENOTFOUND);
	// NULL batch: a plain get.
	assert_int_equal(dre_batch_get(NULL, s, 1, "k", 1, &v, &n), DRE_OK);
	free(v);
	dre_batch_free(b);
	dre_store_close(s);
}

static void
test_iter_prefix_snapshot(void **state)
{
	dre_store  *s = open_store();
	const char *keys[] = { "p/2", "p/1", "q/1", "p/3", "o/9", "p" };
	for (size_t i = 0; i < 6; i++)
		assert_int_equal(dre_store_put(s, 1, keys[i], strlen(keys[i]),
		                     keys[i], strlen(keys[i]), false),
		    DRE_OK);
	dre_store_iter *it = NULL;
	assert_int_equal(dre_store_iter_open(&it, s, 1, "p/", 2), DRE_OK);
	// Written after the iterator opened: not seen (snapshot).
	assert_int_equal(dre_store_put(s, 1, "p/0", 3, "x", 1, false), DRE_OK);
	const char *k, *v;
	size_t      kl, vl;
	const char *want[] = { "p/1", "p/2", "p/3" };
	for (size_t i = 0; i < 3; i++) {
		assert_true(dre_store_iter_next(it, &k, &kl, &v, &vl));
		assert_int_equal(kl, 3);
		assert_memory_equal(k, want[i], 3);
		assert_memory_equal(v, want[i], 3);
	}
	assert_false(dre_store_iter_next(it, &k, &kl, &v, &vl));
	dre_store_iter_close(it);

	// Whole column family, in key order.
	assert_int_equal(dre_store_iter_open(&it, s, 1, NULL, 0), DRE_OK);
	int count = 0;
	assert_true(dre_store_iter_next(it, &k, &kl, NULL, NULL));
	assert_memory_equal(k, "o/9", 3);
	count++;
	while (dre_store_iter_next(it, &k, &kl, NULL, NULL))
		count++;
	assert_int_equal(count, 7);
	dre_store_iter_close(it);

	// Starting key inside the prefix.
	assert_int_equal(
	    dre_store_iter_open_from(&it, s, 1, "p/", 2, "p/2", 3), DRE_OK);
	assert_true(dre_store_iter_next(it, &k, &kl, NULL, NULL));
	assert_memory_equal(k, "p/2", 3);
	assert_true(dre_store_iter_next(it, &k, &kl, NULL, NULL));
	assert_memory_equal(k, "p/3", 3);
	assert_false(dre_store_iter_next(it, &k, &kl, NULL, NULL));
	dre_store_iter_close(it);
	// A start below the prefix is ignored.
	assert_int_equal(
	    dre_store_iter_open_from(&it, s, 1, "p/", 2, "a", 1), DRE_OK);
	assert_true(dre_store_iter_next(it, &k, &kl, NULL, NULL));
	assert_memory_equal(k, "p/0", 3);
	dre_store_iter_close(it);
	// An empty prefix range.
	assert_int_equal(dre_store_iter_open(&it, s, 2, "zz", 2), DRE_OK);
	assert_false(dre_store_iter_next(it, &k, &kl, NULL, NULL));
	dre_store_iter_close(it);
	dre_store_close(s);
}

static void
test_open_errors(void **state)
{
	dre_store    *s = NULL;
	dre_store_cfg bad = { .path = "/proc/dre-cannot-exist/db" };
	assert_int_not_equal(dre_store_open(&s, &bad), DRE_OK);
	assert_null(s);
	assert_int_equal(dre_store_open(&s, NULL), DRE_EINVAL);

	// A second open of the same directory fails on RocksDB's lock.
	dre_store    *a = open_store();
	dre_store_cfg cfg = { .path = dir, .cfs = cfs, .ncfs = 2 };
	assert_int_equal(dre_store_open(&s, &cfg), DRE_ESTORE);
	assert_null(s);
	dre_store_close(a);
}

// A record's time is the first 8 bytes of its value (-1: shorter values).
static int64_t
value_time(const char *key, size_t klen, const char *val, size_t vlen)
{
	(void) key;
	(void) klen;
	return vlen >= 8 ? dre_be64_get(val) : -1;
}

static size_t
count(dre_store *s, int cf)
{
	dre_store_iter *it;
	const char     *k;
	size_t          kl, n = 0;
	assert_int_equal(dre_store_iter_open(&it, s, cf, NULL, 0), DRE_OK);
	while (dre_store_iter_next(it, &k, &kl, NULL, NULL))
		n++;
	dre_store_iter_close(it);
	return n;
}

// Retention: column family "one" keeps records 60 s, "two" for ever. Each
// round writes 2000 records of 1 KB timed in the past and 10 fresh ones, then
// compacts: the expired records are gone, the fresh and untimed ones stay,
// the same expired records in "two" stay, and the disk use of "one" stays
// flat over the rounds.
static void
test_ttl_compaction(void **state)
{
	dre_store_ttl ttl[3] = { { 0 }, { 60000, value_time }, { 0 } };
	dre_store_cfg cfg = { .path = dir, .cfs = cfs, .ncfs = 2, .ttl = ttl };
	dre_store    *s = NULL;
	assert_int_equal(dre_store_open(&s, &cfg), DRE_OK);
	char     val[1024];
	char     key[32];
	uint64_t first = 0;
	memset(val, 'x', sizeof(val));
	for (int round = 0; round < 5; round++) {
		int64_t    now = dre_now_ms();
		dre_batch *b = dre_batch_alloc();
		for (int i = 0; i < 2000; i++) {
			dre_be64_put(val, now - 120000); // expired
			int kl = snprintf(
			    key, sizeof(key), "old-%d-%05d", round, i);
			dre_batch_put(
			    b, s, 1, key, (size_t) kl, val, sizeof(val));
			if (round == 0)
				dre_batch_put(
				    b, s, 2, key, (size_t) kl, val, 16);
		}
		for (int i = 0; i < 10; i++) {
			dre_be64_put(val, now); // fresh
			int kl = snprintf(
			    key, sizeof(key), "new-%d-%05d", round, i);
			dre_batch_put(
			    b, s, 1, key, (size_t) kl, val, sizeof(val));
		}
		dre_batch_put(b, s, 1, "untimed", 7, "v", 1);
		assert_int_equal(dre_store_write(s, b, false), DRE_OK);
		dre_batch_free(b);
		assert_int_equal(dre_store_compact(s, 1), DRE_OK);
		assert_int_equal(dre_store_compact(s, 2), DRE_OK);
		assert_int_equal(count(s, 1), (size_t) (round + 1) * 10 + 1);
		char  *v;
		size_t vl;
		assert_int_equal(
		    dre_store_get(s, 1, "old-0-00001", 11, &v, &vl),
		    DRE_ENOTFOUND);
		assert_int_equal(
		    dre_store_get(s, 1, "new-0-00001", 11, &v, &vl), DRE_OK);
		free(v);
		assert_int_equal(count(s, 2), 2000);
		uint64_t bytes = dre_store_disk_bytes(s);
		if (round == 0)
			first = bytes;
		// 2000 expired records of 1 KB a round would add ~2 MB each
		// (uncompressible they are not, but the 10 fresh ones add
		// ~10 KB): the size stays within 64 KB of the first round's.
		assert_true(bytes < first + 65536);
	}
	dre_store_close(s);

	// A store with a compacting thread closes cleanly.
	cfg.compact_every_ms = 10;
	assert_int_equal(dre_store_open(&s, &cfg), DRE_OK);
	dre_store_close(s);
}

// A bulk write (no write-ahead log, automatic compactions off) into a
// family with its own write buffer is readable at once and, once flushed,
// in table files: it survives a reopen.
static void
test_bulk_write_flush(void **state)
{
	const size_t  wbuf[] = { 0, 8, 0 };
	dre_store_cfg cfg
	    = { .path = dir, .cfs = cfs, .ncfs = 2, .write_buffer_mb = wbuf };
	dre_store *s = NULL;
	assert_int_equal(dre_store_open(&s, &cfg), DRE_OK);
	assert_int_equal(dre_store_disk_bytes(s), 0);
	assert_int_equal(dre_store_auto_compact(s, 1, false), DRE_OK);
	dre_batch *b = dre_batch_alloc();
	char       k[16];
	for (int i = 0; i < 1000; i++) {
		int n = snprintf(k, sizeof k, "k%04d", i);
		dre_batch_put(b, s, 1, k, (size_t) n, "value", 5);
	}
	assert_int_equal(dre_store_write_bulk(s, b), DRE_OK);
	dre_batch_free(b);
	char  *v = NULL;
	size_t n = 0;
	assert_int_equal(dre_store_get(s, 1, "k0999", 5, &v, &n), DRE_OK);
	assert_int_equal(n, 5);
	free(v);
	assert_int_equal(dre_store_flush(s, 1), DRE_OK);
	assert_int_equal(dre_store_auto_compact(s, 1, true), DRE_OK);
	assert_true(dre_store_disk_bytes(s) > 0);
	dre_store_close(s);
	s = open_store();
	assert_int_equal(dre_store_get(s, 1, "k0000", 5, &v, &n), DRE_OK);
	assert_memory_equal(v, "value", 5);
	free(v);
	assert_int_equal(
	    dre_store_get(s, 2, "k0000", 5, &v, &n), DRE_ENOTFOUND);
	dre_store_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_put_get_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_indexed_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_iter_prefix_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_ttl_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_bulk_write_flush, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
