// consumer.h -- the applier: a Kafka consumer whose every effect is written
// exactly once.
//
// Every consuming service runs its events through one of these. For each
// batch of messages the applier writes, in one synced RocksDB WriteBatch:
// the service's state changes (made by its apply function into the batch),
// one de-duplication key per applied event (its eventId: by convention the
// first field of every DRE event, proto/EVENTS.md) and the next offset of
// every partition it consumed. A process killed at any instant therefore
// restarts from exactly the state its offsets describe, and an event that
// was produced again (an outbox relay re-sending after a crash, a producer
// retry) is recognised by its eventId and applied no more than once. An
// event whose apply wrote nothing into the batch leaves no key: applied
// again it changes what it would have changed had it come only then (a
// webhook service without subscribers keeps no key for the sale's
// results it ignores).
//
// Positions never come from Kafka: the applier assigns (static mode) or,
// in group mode, answers each assignment with the offsets in its store.
// auto.offset.reset is "error": a stored position the log no longer has,
// or a broker whose cluster id changed, is logged as an alarm and recovered
// explicitly (the service's recover function, else the log's beginning,
// which the de-duplication keys make safe), never skipped silently.
//
// A follower -- a service keeping a copy of data another service owns
// (evaluator feed.c and budgets.c, coupon links.c) -- is an applier too:
// cfg.snapshot names the owner's snapshot call, recover = replace the copy
// by the snapshot the applier fetched, apply = one change of the owner's
// feed, batch_end = publish what the batch changed (once it is written).
//
// Keys in the applier's column family (its own, or shared with the
// service's state when that uses no key starting with o, c, d or x):
//   'o' topic \0 partition(be32) -> next offset (be64)
//   'c'                          -> cluster id of those offsets
//   'd' eventId                  -> epoch ms applied (be64); pruned after
//                                   dedup_retention_ms
//   'x' topic \0 partition(be32) offset(be64) -> a message that could not
//                                   be applied (dead letter), kept as is
#ifndef DRE_CONSUMER_H
#define DRE_CONSUMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/arena.h"
#include "dre/bus.h"
#include "dre/config.h"
#include "dre/err.h"
#include "dre/snapshot.h"
#include "dre/store.h"

typedef struct dre_applier dre_applier;

// What an apply function works with, for one message. Everything is
// borrowed for the call.
typedef struct {
	dre_store  *st;
	dre_batch  *b; // indexed: dre_batch_get sees the batch's own writes
	dre_arena  *a; // reset before every message
	const char *event_id; // NULL when the message carries none
	int         attempts; // 1 on the first try of this message
	int64_t     now_ms;
	// recover only: the owner's answer (of cfg.snapshot->reply's type);
	// NULL without cfg.snapshot.
	const ProtobufCMessage *snapshot;
} dre_apply_ctx;

// dre_apply_fn applies one message into x->b (never writes the store
// itself). DRE_OK: applied. DRE_ECODEC / DRE_EINVAL / DRE_EPARSE: the
// message can never be applied; its changes are dropped, it is kept as a
// dead letter and consumption moves on. Anything else is transient: the
// whole batch is dropped, the consumer rewinds to its stored positions and
// tries again after a back-off (x->attempts counts the tries).
typedef dre_err (*dre_apply_fn)(void *arg, dre_apply_ctx *x, const dre_msg *m);

// dre_recover_fn replaces the service's state when its positions are lost
// (first start, a position the log no longer has, a new cluster): it writes
// the new state into x->b and sets po[i].offset for each of the n
// partitions (preset to DRE_OFFSET_BEGINNING), e.g. from x->snapshot
// (dre_snapshot_positions). An error is retried after a back-off. Static
// mode only.
typedef dre_err (*dre_recover_fn)(
    void *arg, dre_apply_ctx *x, dre_partition_offset *po, size_t n);

typedef struct {
	const char        *name; // for logs
	const char *const *topics; // borrowed for the applier's lifetime
	size_t             ntopics; // 1-16
	dre_store         *st; // borrowed
	int                cf; // the applier's own column family
	const dre_kvlist  *kafka; // pass-through properties (copied)
	const char        *group_id; // NULL/"" = static assignment of every
	                      // partition of topics: as many as the cluster
	                      // has (asked at start and every few seconds;
	                      // dre_topics[]'s count until it answers)
	dre_apply_fn   apply;
	dre_recover_fn recover; // NULL = restart from the beginning
	// The owner's snapshot, fetched before each recover call and handed
	// to it in x->snapshot; a failed fetch fails the recovery. Copied
	// (its strings are borrowed for the applier's lifetime). NULL = none.
	const dre_snapshot_cfg *snapshot;
	// Called on the applier's thread around each batch (and each
	// recovery: one that dre_applier_start finds due, a changed cluster,
	// runs on its caller's thread): begin before the first apply, end
	// after the batch was written (err DRE_OK) or dropped. Either may be
	// NULL.
	void (*batch_begin)(void *arg);
	void (*batch_end)(void *arg, dre_err err);
	// Called after each probe of the cluster (every few seconds, on the
	// applier's thread; the first one in dre_applier_start) with whether
	// it answered. May be NULL.
	void (*probed)(void *arg, bool reached);
	void *arg;
	// Refreshes, with a recover function (static mode): a recovery that
	// is not forced by lost positions. The stored state keeps being
	// served and followed while one fails; it is retried after a
	// back-off. recover_at_start: one when the applier starts, even with
	// stored positions (a follower that wants the owner's current copy).
	// resync_ms: one every resync_ms while the cluster does not answer or
	// none is configured (0 = never): the safety net of a follower whose
	// feed is down.
	bool    recover_at_start;
	int64_t resync_ms;
	// idempotent: applying an event twice changes nothing (a versioned
	// or replacing state): no eventId keys are kept.
	bool    idempotent;
	int     max_batch; // messages per batch; 0 = 500
	int     max_batch_ms; // longest a batch stays open; 0 = 5
	int64_t dedup_retention_ms; // 0 = 8 days
} dre_applier_cfg;

typedef struct {
	int64_t applied; // events applied
	int64_t duplicates; // events recognised by eventId and skipped
	int64_t dead_letters; // messages that could not be applied
	int64_t batches; // synced writes
	int64_t retries; // batches dropped by a transient failure
	int64_t recoveries; // positions lost and recovered
	int64_t lag_hint; // messages in the last batch
} dre_applier_stats;

// dre_applier_start opens the consumer and starts the applier's thread.
// Caller stops with dre_applier_stop().
dre_err dre_applier_start(dre_applier **ap, const dre_applier_cfg *cfg);
// dre_applier_stop finishes the batch in progress, closes the consumer
// (leaving the group) and joins the thread. NULL is a no-op.
void dre_applier_stop(dre_applier *ap);
// dre_applier_stats copies the counters.
void dre_applier_stats_get(dre_applier *ap, dre_applier_stats *out);
// dre_applier_healthy is true while the applier reaches the cluster.
bool dre_applier_healthy(dre_applier *ap);
// dre_applier_resync asks the applier (static mode) to run its recover
// function again at the next opportunity, as after a lost position.
void dre_applier_resync(dre_applier *ap);

#endif
