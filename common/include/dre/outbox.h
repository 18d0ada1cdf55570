// outbox.h -- events written with the state change that caused them,
// produced to Kafka by a relay thread (implemented in outbox.c).
#ifndef DRE_OUTBOX_H
#define DRE_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/config.h"
#include "dre/err.h"
#include "dre/store.h"

typedef struct dre_outbox dre_outbox;

// The outbox: events written in the same RocksDB batch as the state change
// that caused them, produced by a relay thread. Nothing written to the
// outbox is lost, even when the broker loses what it acknowledged.
//
// The rule: an event is kept until it is safe, not merely acknowledged.
// - Pending until a broker acknowledges it (acks=all); produced in order,
//   retried after failures.
// - Then kept, with the time of the acknowledgement, and dropped only once
//   the relay has seen the same Kafka cluster id 5 minutes after that
//   acknowledgement (at most 200000 kept, oldest dropped first).
// - A broker that lost what it acknowledged is recognised by any of: a
//   different cluster id (rd_kafka_clusterid, asked every 2 s) than the one
//   the relay saw last (stored, so also across a restart of the service);
//   an acknowledgement at an offset below one acknowledged before in the
//   same partition (the log started again); a partition's high watermark
//   at or below the highest offset acknowledged in it (asked every 2 s).
//   The embedded broker restarted is a new, empty cluster (its id is made
//   of heap addresses: under ASan it can come back with the same id, the
//   offsets still tell). Then, once every report of what is in flight is
//   in, every kept event goes back to pending and is produced again, to the
//   new cluster, and the offsets seen start from nothing.
// Re-publishing is safe because every event carries its eventId and every
// consumer drops an eventId it applied (or applies versioned state); a
// re-published event can only be late, never applied twice.
//
// dre_outbox_open uses column family cf of st and producer p (both borrowed,
// must outlive the outbox) and starts the relay.
dre_err dre_outbox_open(
    dre_outbox **op, dre_store *st, int cf, const dre_kvlist *props);
// dre_outbox_put appends one event to batch b; the caller writes b.
// Returns the event's sequence number (for dre_outbox_wait).
uint64_t dre_outbox_put(dre_outbox *o, dre_batch *b, const char *topic,
    const void *key, size_t klen, const void *val, size_t vlen);
// dre_outbox_wait waits up to timeout_ms until the broker acknowledged the
// event seq (written and kicked before). DRE_OK once it did, DRE_ETIMEOUT
// otherwise (it stays in the outbox and is delivered later).
dre_err dre_outbox_wait(dre_outbox *o, uint64_t seq, int timeout_ms);
// dre_outbox_ack is the completion of dre_outbox_wait_async: acked is true
// once the broker acknowledged the event, false at the deadline (or when
// the outbox closes first).
typedef void (*dre_outbox_ack)(void *arg, bool acked);
// dre_outbox_wait_async is dre_outbox_wait without the wait: done(arg,
// acked) runs exactly once -- at once on the caller's thread when the event
// is acknowledged already, else on the producer's delivery-report thread
// (acknowledged) or on the relay thread (deadline; within a few ms after
// timeout_ms). done must be short and must not block. DRE_ENOMEM: done is
// not called. dre_outbox_close completes the waiters left with false.
dre_err dre_outbox_wait_async(dre_outbox *o, uint64_t seq, int timeout_ms,
    dre_outbox_ack done, void *arg);
// dre_outbox_kick wakes the relay after the caller's batch was written.
void dre_outbox_kick(dre_outbox *o);
// dre_outbox_pending is the number of events not yet acknowledged (by the
// current cluster: events published again count again).
int64_t dre_outbox_pending(dre_outbox *o);
// dre_outbox_connected reports whether the relay currently reaches Kafka.
bool dre_outbox_connected(dre_outbox *o);
// dre_outbox_close stops the relay (pending events stay in the store).
void dre_outbox_close(dre_outbox *o);
// dre_outbox_probe_hook_set (tests) makes fn run at the start of every
// cluster probe of every outbox, on the thread that probes; NULL: none.
void dre_outbox_probe_hook_set(void (*fn)(void));

#endif
