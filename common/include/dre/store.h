// store.h -- RocksDB with column families; the only place that sees
// rocksdb/c.h.
#ifndef DRE_STORE_H
#define DRE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/err.h"

typedef struct dre_store      dre_store;
typedef struct dre_batch      dre_batch;
typedef struct dre_store_iter dre_store_iter;

// Retention of a column family: a record whose time (record_time: epoch
// milliseconds, -1 = keep for ever) is more than ttl_ms in the past is
// dropped when RocksDB compacts the file holding it (a compaction filter;
// no extra write, point reads unchanged). An expired record stays readable
// until then: ttl_ms is a lower bound of how long a record is kept.
typedef int64_t (*dre_store_time_fn)(
    const char *key, size_t klen, const char *val, size_t vlen);
typedef struct {
	int64_t           ttl_ms; // 0 = kept for ever
	dre_store_time_fn record_time;
} dre_store_ttl;

typedef struct {
	const char        *path; // directory, created if missing
	const char *const *cfs; // column family names besides "default"
	size_t             ncfs;
	size_t             cache_mb; // block cache; 0 = 8
	// NULL, or one entry per column family (ttl[0] is "default", ttl[i]
	// cfs[i-1]).
	const dre_store_ttl *ttl;
	// > 0: a thread compacts every column family with a TTL this often,
	// in column-family order, so records expire in files that no longer
	// receive writes too.
	int64_t compact_every_ms;
	// NULL, or one entry per column family (as ttl): its write buffer
	// (memtable) in MiB, 0 = the default (4). A family that takes bulk
	// writes (a follower's copy of a snapshot) flushes fewer, larger files
	// with a larger one: less compaction.
	const size_t *write_buffer_mb;
} dre_store_cfg;

// dre_store_open opens (creating) the database and its column families.
// Caller closes with dre_store_close(). Column family 0 is "default", i is
// cfs[i-1].
dre_err dre_store_open(dre_store **sp, const dre_store_cfg *cfg);
void    dre_store_close(dre_store *s);

// dre_store_get copies the value into *valp (caller frees with free()).
// DRE_ENOTFOUND when absent.
dre_err dre_store_get(dre_store *s, int cf, const void *key, size_t klen,
    char **valp, size_t *vlenp);
dre_err dre_store_put(dre_store *s, int cf, const void *key, size_t klen,
    const void *val, size_t vlen, bool sync);
dre_err dre_store_delete(
    dre_store *s, int cf, const void *key, size_t klen, bool sync);

// dre_store_compact compacts the whole of cf now (and so applies its TTL).
dre_err dre_store_compact(dre_store *s, int cf);
// dre_store_disk_bytes is the size of the store's table files (every
// column family; RocksDB's rocksdb.total-sst-files-size).
uint64_t dre_store_disk_bytes(dre_store *s);

// Batches: every change in one batch is applied atomically.
dre_batch *dre_batch_alloc(void);
// dre_batch_alloc_indexed makes a batch that dre_batch_get can read back
// (a RocksDB WriteBatchWithIndex): for appliers whose later changes depend
// on earlier, not yet written ones. Freed with dre_batch_free().
dre_batch *dre_batch_alloc_indexed(void);
void       dre_batch_free(dre_batch *b);
void       dre_batch_clear(dre_batch *b);
void       dre_batch_put(dre_batch *b, dre_store *s, int cf, const void *key,
          size_t klen, const void *val, size_t vlen);
void       dre_batch_delete(
          dre_batch *b, dre_store *s, int cf, const void *key, size_t klen);
size_t dre_batch_count(const dre_batch *b);
// dre_batch_savepoint marks the batch's current end; dre_batch_rollback
// drops every change made since the last mark (and the mark).
void    dre_batch_savepoint(dre_batch *b);
dre_err dre_batch_rollback(dre_batch *b);
// dre_batch_get reads key as it will be once b is written: b's own change
// if it has one (indexed batches only), else the store's value. Same
// contract as dre_store_get. b may be NULL (then it is dre_store_get).
dre_err dre_batch_get(dre_batch *b, dre_store *s, int cf, const void *key,
    size_t klen, char **valp, size_t *vlenp);
// dre_store_write applies b; with sync the WAL is fsynced before returning.
dre_err dre_store_write(dre_store *s, dre_batch *b, bool sync);
// dre_store_write_bulk writes b without the write-ahead log: it is in the
// memtables only, lost by a crash until dre_store_flush of its column
// families returns. For a bulk load that is marked incomplete (with a
// logged write) until it is flushed.
dre_err dre_store_write_bulk(dre_store *s, dre_batch *b);
// dre_store_flush writes column family cf's memtables to table files and
// waits for it.
dre_err dre_store_flush(dre_store *s, int cf);
// dre_store_auto_compact turns RocksDB's automatic compactions of column
// family cf off (during a bulk load: its files are compacted once, after
// it, not again and again while it lasts) or back on.
dre_err dre_store_auto_compact(dre_store *s, int cf, bool on);

// dre_store_iter_open iterates cf over keys starting with prefix (plen 0 =
// all) in key order, on a consistent snapshot. Caller closes with
// dre_store_iter_close().
dre_err dre_store_iter_open(dre_store_iter **ip, dre_store *s, int cf,
    const void *prefix, size_t plen);
// dre_store_iter_open_from is dre_store_iter_open starting at the first key
// >= start (and within prefix).
dre_err dre_store_iter_open_from(dre_store_iter **ip, dre_store *s, int cf,
    const void *prefix, size_t plen, const void *start, size_t slen);
// dre_store_iter_next returns false at the end; the pointers are borrowed
// until the next call.
bool dre_store_iter_next(dre_store_iter *it, const char **key, size_t *klen,
    const char **val, size_t *vlen);
void dre_store_iter_close(dre_store_iter *it);

// dre_be64_put writes v as 8 big-endian bytes at p; dre_be64_get reads them
// back. Stored integers use this form so that keys sort numerically and
// values read the same on every host.
static inline void
dre_be64_put(void *p, int64_t v)
{
	unsigned char *b = p;
	uint64_t       u = (uint64_t) v;
	for (int i = 7; i >= 0; i--, u >>= 8)
		b[i] = (unsigned char) u;
}

static inline int64_t
dre_be64_get(const void *p)
{
	const unsigned char *b = p;
	uint64_t             u = 0;
	for (int i = 0; i < 8; i++)
		u = u << 8 | b[i];
	return (int64_t) u;
}

// dre_key writes tag (0 = none) and then n string parts joined by NUL bytes
// into out[cap] (no NUL after the last part: pass "" as a last part for
// one); returns the length, or 0 when it does not fit. The one way DRE
// builds a store key: tenant \0 id, kind \0 tenant \0 id, ...
size_t dre_key(char *out, size_t cap, char tag, int n, ...);

#endif
