// store.c -- RocksDB behind dre_store: column families, batches, iterators.
//
// The only file that includes rocksdb/c.h. Every RocksDB error string is
// logged here once, freed, and becomes DRE_ESTORE for the caller.
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rocksdb/c.h>

#include "dre/clock.h"
#include "dre/fs.h"
#include "dre/log.h"
#include "dre/metrics.h"
#include "dre/store.h"
#include "dre/svc.h"

struct dre_store {
	rocksdb_t                           *db;
	rocksdb_options_t                   *opts;
	rocksdb_block_based_table_options_t *table;
	rocksdb_cache_t                     *cache;
	rocksdb_writeoptions_t              *wo_sync;
	rocksdb_writeoptions_t              *wo_async;
	rocksdb_writeoptions_t              *wo_nowal;
	rocksdb_readoptions_t               *ro;
	rocksdb_column_family_handle_t     **cfh;
	size_t                               ncf;
	char                                *path;
	// Retention (dre_store_ttl): per column family, its own options with
	// the compaction filter, and the compacting thread.
	rocksdb_options_t          **cfopts;
	rocksdb_compactionfilter_t **filters;
	dre_store_ttl               *ttl;
	int64_t                      compact_every_ms;
	pthread_t                    compactor;
	bool                         compactor_on, stopping;
	pthread_mutex_t              mu;
	pthread_cond_t               cv;
};

// A batch is plain, or indexed (rocksdb_writebatch_wi_t) when its owner
// must read its own uncommitted writes (dre_batch_get).
struct dre_batch {
	rocksdb_writebatch_t    *wb;
	rocksdb_writebatch_wi_t *wi;
};

struct dre_store_iter {
	rocksdb_iterator_t       *it;
	rocksdb_readoptions_t    *ro;
	const rocksdb_snapshot_t *snap;
	dre_store                *s;
	char                     *prefix;
	size_t                    plen;
	bool                      started;
};

// store_fail logs a RocksDB error string once and frees it.
static dre_err
store_fail(const char *what, const char *path, char *err)
{
	dre_error("store %s %s: %s", what, path ? path : "",
	    err ? err : "unknown error");
	rocksdb_free(err);
	return DRE_ESTORE;
}

static rocksdb_column_family_handle_t *
cf_handle(dre_store *s, int cf)
{
	if (cf < 0 || (size_t) cf >= s->ncf) {
		// A wrong column family index is a programming error: fail
		// loud rather than write into the wrong keyspace.
		dre_error("store: column family %d out of range", cf);
		abort();
	}
	return s->cfh[cf];
}

// A RocksDB property summed over the column families, as a gauge.
typedef struct {
	const char *prop, *name, *help;
} store_prop;

static const store_prop store_props[] = {
	{ "rocksdb.total-sst-files-size", "dre_rocksdb_sst_files_bytes",
	    "size of the store's SST files" },
	{ "rocksdb.estimate-live-data-size", "dre_rocksdb_live_data_bytes",
	    "estimated size of the live data" },
	{ "rocksdb.cur-size-all-mem-tables", "dre_rocksdb_memtable_bytes",
	    "size of the memtables" },
	{ "rocksdb.estimate-num-keys", "dre_rocksdb_keys",
	    "estimated number of keys" },
	{ "rocksdb.estimate-pending-compaction-bytes",
	    "dre_rocksdb_pending_compaction_bytes",
	    "bytes compaction still has to rewrite" },
	{ "rocksdb.num-running-compactions", "dre_rocksdb_running_compactions",
	    "compactions running" },
	{ "rocksdb.is-write-stopped", "dre_rocksdb_write_stopped",
	    "1 while writes are stopped (a write stall)" },
	{ "rocksdb.actual-delayed-write-rate",
	    "dre_rocksdb_delayed_write_rate_bytes_per_second",
	    "rate writes are slowed to while delayed (0 = not delayed)" },
};

// store_collect reads the properties into gauges labelled by the store's
// directory name.
static void
store_collect(void *arg)
{
	dre_store  *s = arg;
	const char *base = strrchr(s->path, '/');
	char        esc[128], lab[160];

	dre_metric_label_escape(
	    esc, sizeof(esc), base != NULL ? base + 1 : s->path);
	snprintf(lab, sizeof(lab), "store=\"%s\"", esc);
	for (size_t p = 0; p < sizeof(store_props) / sizeof(store_props[0]);
	     p++) {
		uint64_t sum = 0, v;
		bool     db_wide
		    = strcmp(store_props[p].prop, "rocksdb.is-write-stopped")
		        == 0
		    || strcmp(store_props[p].prop,
		           "rocksdb.actual-delayed-write-rate")
		        == 0;
		if (db_wide) {
			if (rocksdb_property_int(
			        s->db, store_props[p].prop, &v)
			    == 0)
				sum = v;
		} else {
			for (size_t i = 0; i < s->ncf; i++)
				if (rocksdb_property_int_cf(s->db, s->cfh[i],
				        store_props[p].prop, &v)
				    == 0)
					sum += v;
		}
		dre_metric_set(dre_metric_gauge(store_props[p].name,
		                   store_props[p].help, lab),
		    (int64_t) sum);
	}
}

// ttl_filter is the compaction filter of a column family with a TTL: true
// (drop) when the record's time is known and older than the TTL.
static unsigned char
ttl_filter(void *state, int level, const char *key, size_t klen,
    const char *val, size_t vlen, char **nv, size_t *nvl,
    unsigned char *changed)
{
	(void) level;
	(void) nv;
	(void) nvl;
	*changed = 0;
	const dre_store_ttl *t = state;
	int64_t              at = t->record_time(key, klen, val, vlen);
	return at >= 0 && at < dre_now_ms() - t->ttl_ms;
}

// RocksDB calls a filter's destructor unconditionally; the state is the
// store's.
static void
ttl_filter_destroy(void *state)
{
	(void) state;
}

static const char *
ttl_filter_name(void *state)
{
	(void) state;
	return "dre.ttl";
}

// compactor_main flushes every column family and compacts those with a TTL
// every compact_every_ms, until dre_store_close.
static void *
compactor_main(void *arg)
{
	dre_store *s = arg;
	dre_thread_name("store:compact", NULL);
	pthread_mutex_lock(&s->mu);
	while (!s->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		int64_t ns
		    = ts.tv_nsec + (s->compact_every_ms % 1000) * 1000000;
		ts.tv_sec += s->compact_every_ms / 1000 + ns / 1000000000;
		ts.tv_nsec = ns % 1000000000;
		pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		if (s->stopping)
			break;
		pthread_mutex_unlock(&s->mu);
		// Every family first: a rarely written one would otherwise
		// keep old WAL files (and the disk they use) alive.
		rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
		rocksdb_flushoptions_set_wait(fo, 1);
		for (size_t i = 0; i < s->ncf; i++) {
			char *err = NULL;
			rocksdb_flush_cf(s->db, fo, s->cfh[i], &err);
			if (err != NULL)
				store_fail("flush", s->path, err);
		}
		rocksdb_flushoptions_destroy(fo);
		for (size_t i = 0; i < s->ncf; i++)
			if (s->filters[i] != NULL)
				dre_store_compact(s, (int) i);
		pthread_mutex_lock(&s->mu);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

void
dre_store_close(dre_store *s)
{
	if (s == NULL)
		return;
	dre_metrics_collector_remove(store_collect, s);
	if (s->compactor_on) {
		pthread_mutex_lock(&s->mu);
		s->stopping = true;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->compactor, NULL);
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	if (s->cfh != NULL)
		for (size_t i = 0; i < s->ncf; i++)
			if (s->cfh[i] != NULL)
				rocksdb_column_family_handle_destroy(
				    s->cfh[i]);
	if (s->db != NULL)
		rocksdb_close(s->db);
	for (size_t i = 0; i < s->ncf; i++) {
		if (s->cfopts != NULL && s->cfopts[i] != NULL)
			rocksdb_options_destroy(s->cfopts[i]);
		if (s->filters != NULL && s->filters[i] != NULL)
			rocksdb_compactionfilter_destroy(s->filters[i]);
	}
	free(s->cfopts);
	free(s->filters);
	free(s->ttl);
	if (s->opts != NULL)
		rocksdb_options_destroy(s->opts);
	if (s->table != NULL)
		rocksdb_block_based_options_destroy(s->table);
	if (s->cache != NULL)
		rocksdb_cache_destroy(s->cache);
	if (s->wo_sync != NULL)
		rocksdb_writeoptions_destroy(s->wo_sync);
	if (s->wo_nowal != NULL)
		rocksdb_writeoptions_destroy(s->wo_nowal);
	if (s->wo_async != NULL)
		rocksdb_writeoptions_destroy(s->wo_async);
	if (s->ro != NULL)
		rocksdb_readoptions_destroy(s->ro);
	free(s->cfh);
	free(s->path);
	free(s);
}

dre_err
dre_store_open(dre_store **sp, const dre_store_cfg *cfg)
{
	if (cfg == NULL || cfg->path == NULL || (cfg->ncfs > 0 && !cfg->cfs))
		return DRE_EINVAL;
	if (dre_mkdirs(cfg->path) != 0) {
		dre_error("store mkdir %s: %s", cfg->path, strerror(errno));
		return DRE_EIO;
	}
	dre_store *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return DRE_ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->ncf = cfg->ncfs + 1;
	s->cfh = calloc(s->ncf, sizeof(*s->cfh));
	s->cfopts = calloc(s->ncf, sizeof(*s->cfopts));
	s->filters = calloc(s->ncf, sizeof(*s->filters));
	s->ttl = calloc(s->ncf, sizeof(*s->ttl));
	s->path = strdup(cfg->path);
	const char              **names = calloc(s->ncf, sizeof(*names));
	const rocksdb_options_t **cfopts = calloc(s->ncf, sizeof(*cfopts));
	if (s->cfh == NULL || s->path == NULL || names == NULL
	    || cfopts == NULL || s->cfopts == NULL || s->filters == NULL
	    || s->ttl == NULL) {
		free(names);
		free(cfopts);
		dre_store_close(s);
		return DRE_ENOMEM;
	}

	// Small by default: many services share one machine in the embedded
	// setup (8 MiB cache + 2 x 4 MiB write buffers ~ 29 MB with 2M keys).
	size_t cache_mb = cfg->cache_mb ? cfg->cache_mb : 8;
	s->cache = rocksdb_cache_create_lru(cache_mb << 20);
	s->table = rocksdb_block_based_options_create();
	rocksdb_block_based_options_set_block_cache(s->table, s->cache);
	// Most point reads of the hot paths miss (a confirm marker, an
	// eventId seen for the first time): bloom filters answer those
	// without searching the memtable skip list or the table files.
	rocksdb_block_based_options_set_filter_policy(
	    s->table, rocksdb_filterpolicy_create_bloom_full(10));
	s->opts = rocksdb_options_create();
	rocksdb_options_set_create_if_missing(s->opts, 1);
	rocksdb_options_set_create_missing_column_families(s->opts, 1);
	rocksdb_options_set_block_based_table_factory(s->opts, s->table);
	rocksdb_options_set_write_buffer_size(s->opts, 4 << 20);
	rocksdb_options_set_max_write_buffer_number(s->opts, 2);
	// A column family written rarely keeps the WAL files holding its
	// unflushed writes alive, and with them every other family's: past
	// this total the oldest such family is flushed, so the WAL stays
	// bounded (disk use flat under a steady load).
	rocksdb_options_set_max_total_wal_size(s->opts, 16 << 20);
	rocksdb_options_set_max_open_files(s->opts, 256);
	rocksdb_options_set_keep_log_file_num(s->opts, 2);
	rocksdb_options_set_max_log_file_size(s->opts, 1 << 20);
	rocksdb_options_set_compression(s->opts, rocksdb_lz4_compression);
	rocksdb_options_set_memtable_prefix_bloom_size_ratio(s->opts, 0.05);
	rocksdb_options_set_memtable_whole_key_filtering(s->opts, 1);

	bool any_ttl = false;
	for (size_t i = 0; i < s->ncf; i++) {
		names[i] = i == 0 ? "default" : cfg->cfs[i - 1];
		cfopts[i] = s->opts;
		if (cfg->write_buffer_mb != NULL
		    && cfg->write_buffer_mb[i] > 0) {
			s->cfopts[i] = rocksdb_options_create_copy(s->opts);
			rocksdb_options_set_write_buffer_size(
			    s->cfopts[i], cfg->write_buffer_mb[i] << 20);
			// A large memtable's arena in 1 MiB blocks (by
			// default an eighth of it: 8 MiB at 64 MiB), below
			// the mmap threshold that dre_svc_init sets: a
			// flushed memtable's memory goes back to the heap
			// and is reused, not fresh pages faulted in again.
			rocksdb_options_set_arena_block_size(
			    s->cfopts[i], 1 << 20);
			cfopts[i] = s->cfopts[i];
		}
		if (cfg->ttl == NULL || cfg->ttl[i].ttl_ms <= 0
		    || cfg->ttl[i].record_time == NULL)
			continue;
		s->ttl[i] = cfg->ttl[i];
		s->filters[i] = rocksdb_compactionfilter_create(&s->ttl[i],
		    ttl_filter_destroy, ttl_filter, ttl_filter_name);
		if (s->cfopts[i] == NULL)
			s->cfopts[i] = rocksdb_options_create_copy(s->opts);
		rocksdb_options_set_compaction_filter(
		    s->cfopts[i], s->filters[i]);
		cfopts[i] = s->cfopts[i];
		any_ttl = true;
	}
	char *err = NULL;
	s->db = rocksdb_open_column_families(
	    s->opts, cfg->path, (int) s->ncf, names, cfopts, s->cfh, &err);
	free(names);
	free(cfopts);
	if (err != NULL) {
		dre_err e = store_fail("open", cfg->path, err);
		s->db = NULL;
		for (size_t i = 0; i < s->ncf; i++)
			s->cfh[i] = NULL;
		dre_store_close(s);
		return e;
	}
	s->wo_sync = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(s->wo_sync, 1);
	s->wo_async = rocksdb_writeoptions_create();
	s->wo_nowal = rocksdb_writeoptions_create();
	rocksdb_writeoptions_disable_WAL(s->wo_nowal, 1);
	s->ro = rocksdb_readoptions_create();
	dre_metrics_collector_add(store_collect, s);
	s->compact_every_ms = cfg->compact_every_ms;
	if (any_ttl && s->compact_every_ms > 0) {
		if (pthread_create(&s->compactor, NULL, compactor_main, s)
		    != 0) {
			dre_store_close(s);
			return DRE_ENOMEM;
		}
		s->compactor_on = true;
	}
	*sp = s;
	return DRE_OK;
}

dre_err
dre_store_compact(dre_store *s, int cf)
{
	rocksdb_compact_range_cf(s->db, cf_handle(s, cf), NULL, 0, NULL, 0);
	return DRE_OK;
}

uint64_t
dre_store_disk_bytes(dre_store *s)
{
	uint64_t total = 0;
	for (size_t i = 0; i < s->ncf; i++) {
		char *v = rocksdb_property_value_cf(
		    s->db, s->cfh[i], "rocksdb.total-sst-files-size");
		if (v != NULL)
			total += strtoull(v, NULL, 10);
		rocksdb_free(v);
	}
	return total;
}

dre_err
dre_store_get(dre_store *s, int cf, const void *key, size_t klen, char **valp,
    size_t *vlenp)
{
	char  *err = NULL;
	size_t vlen = 0;
	char  *v = rocksdb_get_cf(
	     s->db, s->ro, cf_handle(s, cf), key, klen, &vlen, &err);
	if (err != NULL)
		return store_fail("get", s->path, err);
	if (v == NULL)
		return DRE_ENOTFOUND;
	// Hand out memory the caller can free() (RocksDB's comes from its own
	// allocator boundary) and NUL-terminate for convenience.
	char *out = malloc(vlen + 1);
	if (out == NULL) {
		rocksdb_free(v);
		return DRE_ENOMEM;
	}
	memcpy(out, v, vlen);
	out[vlen] = '\0';
	rocksdb_free(v);
	*valp = out;
	if (vlenp != NULL)
		*vlenp = vlen;
	return DRE_OK;
}

dre_err
dre_store_put(dre_store *s, int cf, const void *key, size_t klen,
    const void *val, size_t vlen, bool sync)
{
	char *err = NULL;
	rocksdb_put_cf(s->db, sync ? s->wo_sync : s->wo_async,
	    cf_handle(s, cf), key, klen, val, vlen, &err);
	return err != NULL ? store_fail("put", s->path, err) : DRE_OK;
}

dre_err
dre_store_delete(dre_store *s, int cf, const void *key, size_t klen, bool sync)
{
	char *err = NULL;
	rocksdb_delete_cf(s->db, sync ? s->wo_sync : s->wo_async,
	    cf_handle(s, cf), key, klen, &err);
	return err != NULL ? store_fail("delete", s->path, err) : DRE_OK;
}

dre_batch *
dre_batch_alloc(void)
{
	dre_batch *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->wb = rocksdb_writebatch_create();
	return b;
}

dre_batch *
dre_batch_alloc_indexed(void)
{
	dre_batch *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	// overwrite_key: a key written twice is one entry, the last value.
	b->wi = rocksdb_writebatch_wi_create(0, 1);
	return b;
}

void
dre_batch_free(dre_batch *b)
{
	if (b == NULL)
		return;
	if (b->wi != NULL)
		rocksdb_writebatch_wi_destroy(b->wi);
	else
		rocksdb_writebatch_destroy(b->wb);
	free(b);
}

void
dre_batch_clear(dre_batch *b)
{
	if (b->wi != NULL)
		rocksdb_writebatch_wi_clear(b->wi);
	else
		rocksdb_writebatch_clear(b->wb);
}

void
dre_batch_put(dre_batch *b, dre_store *s, int cf, const void *key, size_t klen,
    const void *val, size_t vlen)
{
	if (b->wi != NULL)
		rocksdb_writebatch_wi_put_cf(
		    b->wi, cf_handle(s, cf), key, klen, val, vlen);
	else
		rocksdb_writebatch_put_cf(
		    b->wb, cf_handle(s, cf), key, klen, val, vlen);
}

void
dre_batch_delete(
    dre_batch *b, dre_store *s, int cf, const void *key, size_t klen)
{
	if (b->wi != NULL)
		rocksdb_writebatch_wi_delete_cf(
		    b->wi, cf_handle(s, cf), key, klen);
	else
		rocksdb_writebatch_delete_cf(
		    b->wb, cf_handle(s, cf), key, klen);
}

size_t
dre_batch_count(const dre_batch *b)
{
	return b->wi != NULL ? (size_t) rocksdb_writebatch_wi_count(b->wi)
	                     : (size_t) rocksdb_writebatch_count(b->wb);
}

void
dre_batch_savepoint(dre_batch *b)
{
	if (b->wi != NULL)
		rocksdb_writebatch_wi_set_save_point(b->wi);
	else
		rocksdb_writebatch_set_save_point(b->wb);
}

dre_err
dre_batch_rollback(dre_batch *b)
{
	char *err = NULL;
	if (b->wi != NULL)
		rocksdb_writebatch_wi_rollback_to_save_point(b->wi, &err);
	else
		rocksdb_writebatch_rollback_to_save_point(b->wb, &err);
	return err != NULL ? store_fail("rollback", "batch", err) : DRE_OK;
}

dre_err
dre_batch_get(dre_batch *b, dre_store *s, int cf, const void *key, size_t klen,
    char **valp, size_t *vlenp)
{
	if (b == NULL || b->wi == NULL)
		return dre_store_get(s, cf, key, klen, valp, vlenp);
	char  *err = NULL;
	size_t vlen = 0;
	char  *v = rocksdb_writebatch_wi_get_from_batch_and_db_cf(
	     b->wi, s->db, s->ro, cf_handle(s, cf), key, klen, &vlen, &err);
	if (err != NULL)
		return store_fail("get", s->path, err);
	if (v == NULL)
		return DRE_ENOTFOUND;
	char *out = malloc(vlen + 1);
	if (out == NULL) {
		rocksdb_free(v);
		return DRE_ENOMEM;
	}
	memcpy(out, v, vlen);
	out[vlen] = '\0';
	rocksdb_free(v);
	*valp = out;
	if (vlenp != NULL)
		*vlenp = vlen;
	return DRE_OK;
}

dre_err
dre_store_write(dre_store *s, dre_batch *b, bool sync)
{
	char *err = NULL;
	if (b->wi != NULL)
		rocksdb_write_writebatch_wi(
		    s->db, sync ? s->wo_sync : s->wo_async, b->wi, &err);
	else
		rocksdb_write(
		    s->db, sync ? s->wo_sync : s->wo_async, b->wb, &err);
	return err != NULL ? store_fail("write", s->path, err) : DRE_OK;
}

dre_err
dre_store_write_bulk(dre_store *s, dre_batch *b)
{
	char *err = NULL;
	if (b->wi != NULL)
		rocksdb_write_writebatch_wi(s->db, s->wo_nowal, b->wi, &err);
	else
		rocksdb_write(s->db, s->wo_nowal, b->wb, &err);
	return err != NULL ? store_fail("write", s->path, err) : DRE_OK;
}

dre_err
dre_store_flush(dre_store *s, int cf)
{
	char                   *err = NULL;
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	if (fo == NULL)
		return DRE_ENOMEM;
	rocksdb_flushoptions_set_wait(fo, 1);
	rocksdb_flush_cf(s->db, fo, cf_handle(s, cf), &err);
	rocksdb_flushoptions_destroy(fo);
	return err != NULL ? store_fail("flush", s->path, err) : DRE_OK;
}

dre_err
dre_store_auto_compact(dre_store *s, int cf, bool on)
{
	const char *const k[] = { "disable_auto_compactions" };
	const char *const v[] = { on ? "false" : "true" };
	char             *err = NULL;
	rocksdb_set_options_cf(s->db, cf_handle(s, cf), 1, k, v, &err);
	return err != NULL ? store_fail("set options", s->path, err) : DRE_OK;
}

// key_cmp orders keys as RocksDB's default bytewise comparator does.
static int
key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
	if (alen == 0 || blen == 0)
		return alen == blen ? 0 : alen > blen ? 1 : -1;
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

dre_err
dre_store_iter_open_from(dre_store_iter **ip, dre_store *s, int cf,
    const void *prefix, size_t plen, const void *start, size_t slen)
{
	dre_store_iter *it = calloc(1, sizeof(*it));
	if (it == NULL)
		return DRE_ENOMEM;
	if (plen > 0) {
		it->prefix = malloc(plen);
		if (it->prefix == NULL) {
			free(it);
			return DRE_ENOMEM;
		}
		memcpy(it->prefix, prefix, plen);
		it->plen = plen;
	}
	it->s = s;
	it->snap = rocksdb_create_snapshot(s->db);
	it->ro = rocksdb_readoptions_create();
	rocksdb_readoptions_set_snapshot(it->ro, it->snap);
	// Scans are one-off (snapshots, recovery): keep them from evicting
	// the hot working set.
	rocksdb_readoptions_set_fill_cache(it->ro, 0);
	it->it = rocksdb_create_iterator_cf(s->db, it->ro, cf_handle(s, cf));
	// Seek to the larger of prefix and start: both bound the range below.
	if (start != NULL && slen > 0
	    && key_cmp(start, slen, prefix, plen) > 0)
		rocksdb_iter_seek(it->it, start, slen);
	else if (plen > 0)
		rocksdb_iter_seek(it->it, prefix, plen);
	else
		rocksdb_iter_seek_to_first(it->it);
	*ip = it;
	return DRE_OK;
}

dre_err
dre_store_iter_open(
    dre_store_iter **ip, dre_store *s, int cf, const void *prefix, size_t plen)
{
	return dre_store_iter_open_from(ip, s, cf, prefix, plen, NULL, 0);
}

bool
dre_store_iter_next(dre_store_iter *it, const char **key, size_t *klen,
    const char **val, size_t *vlen)
{
	// The first call returns the entry the open seeked to.
	if (it->started)
		rocksdb_iter_next(it->it);
	it->started = true;
	if (!rocksdb_iter_valid(it->it)) {
		char *err = NULL;
		rocksdb_iter_get_error(it->it, &err);
		if (err != NULL)
			(void) store_fail("iterate", it->s->path, err);
		return false;
	}
	size_t      kl = 0, vl = 0;
	const char *k = rocksdb_iter_key(it->it, &kl);
	if (it->plen > 0
	    && (kl < it->plen || memcmp(k, it->prefix, it->plen) != 0))
		return false;
	const char *v = rocksdb_iter_value(it->it, &vl);
	if (key != NULL)
		*key = k;
	if (klen != NULL)
		*klen = kl;
	if (val != NULL)
		*val = v;
	if (vlen != NULL)
		*vlen = vl;
	return true;
}

void
dre_store_iter_close(dre_store_iter *it)
{
	if (it == NULL)
		return;
	rocksdb_iter_destroy(it->it);
	rocksdb_readoptions_destroy(it->ro);
	rocksdb_release_snapshot(it->s->db, it->snap);
	free(it->prefix);
	free(it);
}

size_t
dre_key(char *out, size_t cap, char tag, int n, ...)
{
	size_t  len = 0;
	va_list ap;
	if (tag != 0) {
		if (cap < 1)
			return 0;
		out[len++] = tag;
	}
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		const char *p = va_arg(ap, const char *);
		size_t      l = strlen(p);
		if (len + l + 1 > cap) {
			va_end(ap);
			return 0;
		}
		memcpy(out + len, p, l);
		len += l;
		if (i + 1 < n)
			out[len++] = '\0';
	}
	va_end(ap);
	return len;
}
