// commit.h -- group commit: the changes of many concurrent callers written
// in one synced RocksDB batch.
//
// A caller hands a fill function to dre_committer_commit and blocks; the
// committer thread runs the fill functions of every caller queued at that
// moment into one batch, writes it with one fsync and wakes them all. While
// one write is in progress the next group gathers, so under load a synced
// write carries many callers and at low load a caller waits for one fsync
// only (no timer: nothing waits for company).
#ifndef DRE_COMMIT_H
#define DRE_COMMIT_H

#include <stdint.h>

#include "dre/err.h"
#include "dre/store.h"

typedef struct dre_committer dre_committer;

// dre_commit_fill adds the caller's changes to b. It runs on the committer
// thread while the caller is blocked in dre_committer_commit, so it may use
// the caller's stack data (not so for dre_committer_commit_async). It must
// not block.
typedef void (*dre_commit_fill)(void *arg, dre_batch *b);

// dre_committer_open starts the committer of st (borrowed; must outlive
// it). Caller closes with dre_committer_close().
dre_err dre_committer_open(dre_committer **cp, dre_store *st);
// dre_committer_commit queues fill and waits until the batch holding its
// changes is durable (DRE_OK) or failed (the write's error; nothing of the
// group was written). DRE_ECLOSED after close.
dre_err dre_committer_commit(
    dre_committer *c, dre_commit_fill fill, void *arg);
// dre_commit_done is an asynchronous caller's completion: err as
// dre_committer_commit returns it. It runs on the committer thread after
// the write, before the next group is gathered: it must be short and must
// not block (hand the answer on, do not wait for anything).
typedef void (*dre_commit_done)(void *arg, dre_err err);
// dre_committer_commit_async queues fill like dre_committer_commit and
// returns at once; done(arg, err) runs exactly once, on the committer
// thread, when the batch holding the changes is durable or failed. fill
// runs on the committer thread before that, so arg must live until done.
// DRE_ECLOSED after close and DRE_ENOMEM: done is not called then.
// dre_committer_close runs the completions of every queued caller.
dre_err dre_committer_commit_async(
    dre_committer *c, dre_commit_fill fill, dre_commit_done done, void *arg);
// dre_committer_close writes what is queued and stops the thread. NULL is a
// no-op.
void dre_committer_close(dre_committer *c);

typedef struct {
	int64_t commits; // callers served
	int64_t writes; // synced writes
	int64_t max_group; // most callers in one write
} dre_committer_stats;

void dre_committer_stats_get(dre_committer *c, dre_committer_stats *out);

#endif
