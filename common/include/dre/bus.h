// bus.h -- Kafka (librdkafka): idempotent producer, consumer, outbox relay.
#ifndef DRE_BUS_H
#define DRE_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/config.h"
#include "dre/err.h"
#include "dre/store.h"

typedef struct dre_producer dre_producer;
typedef struct dre_consumer dre_consumer;
typedef struct dre_outbox dre_outbox;

// Delivery report: err DRE_OK when the broker persisted the message (acks=all).
typedef void (*dre_delivery_fn)(void *arg, dre_err err, void *msg_opaque,
    int32_t partition, int64_t offset);

// dre_producer_open creates an idempotent producer (enable.idempotence,
// acks=all) from the pass-through properties. Delivery reports are served
// by an internal poll thread. Caller closes with dre_producer_close().
dre_err dre_producer_open(dre_producer **pp, const dre_kvlist *props,
    dre_delivery_fn fn, void *arg);
// dre_producer_send copies key and value and enqueues; partition by key.
// Retries while the local queue is full (bounded). msg_opaque is handed to
// the delivery report.
dre_err dre_producer_send(dre_producer *p, const char *topic, const void *key,
    size_t klen, const void *val, size_t vlen, void *msg_opaque);
// dre_producer_flush waits up to timeout_ms for outstanding messages.
dre_err dre_producer_flush(dre_producer *p, int timeout_ms);
// dre_producer_connected reports whether a broker is currently reachable.
bool dre_producer_connected(const dre_producer *p);
// dre_producer_close waits up to 2 s for outstanding messages; the rest are
// purged and get a failed delivery report before it returns.
void dre_producer_close(dre_producer *p);
// dre_producer_outq_len is the number of messages not yet answered by a
// delivery report.
int dre_producer_outq_len(dre_producer *p);
// dre_producer_high_watermark asks, through p's connections, for the high
// watermark (next offset) of a partition.
dre_err dre_producer_high_watermark(dre_producer *p, const char *topic,
    int32_t partition, int64_t *high, int timeout_ms);
// dre_producer_fatal reports whether the producer hit a fatal error and must
// be closed and reopened.
bool dre_producer_fatal(dre_producer *p);

// dre_bus_cluster_id asks the cluster for its id into buf (cap bytes).
dre_err dre_bus_cluster_id(const dre_kvlist *props, char *buf, size_t cap,
    int timeout_ms);
// dre_bus_watermarks returns the high watermark (next offset) of a
// partition.
dre_err dre_bus_high_watermark(const dre_kvlist *props, const char *topic,
    int32_t partition, int64_t *high, int timeout_ms);

typedef struct {
	const char *   topic;
	int32_t        partition;
	int64_t        offset;
	const uint8_t *key;
	size_t         key_len;
	const uint8_t *payload;
	size_t         len;
	int64_t        timestamp_ms;
} dre_msg;

// dre_consumer_open creates a consumer with auto.offset.reset=error and no
// auto commit (positions live in the consumer's own store). group_id NULL =
// static assignment through dre_consumer_assign.
dre_err dre_consumer_open(dre_consumer **cp, const dre_kvlist *props,
    const char *group_id);
// dre_consumer_assign adds topic/partition starting at offset (>= 0, or
// DRE_OFFSET_BEGINNING / DRE_OFFSET_END) to the static assignment and applies
// it.
#define DRE_OFFSET_BEGINNING (-2)
#define DRE_OFFSET_END (-1)
dre_err dre_consumer_assign(dre_consumer *c, const char *topic,
    int32_t partition, int64_t offset);

typedef struct {
	const char *topic;
	int32_t     partition;
	int64_t     offset; // >= 0, DRE_OFFSET_BEGINNING or DRE_OFFSET_END
} dre_partition_offset;

// dre_consumer_assign_list replaces the whole static assignment with the n
// partitions of po, each starting at its offset, in one call. Prefer it over
// n calls of dre_consumer_assign: librdkafka 2.0.2 asserts when a partition
// is re-assigned while its previous stop is still in progress.
dre_err dre_consumer_assign_list(dre_consumer *c,
    const dre_partition_offset *po, size_t n);
// Group mode: a consumer that joins group_id and subscribes to topics. On
// every assignment change the handler runs on the polling thread: on assign
// it sets po[i].offset (preset to DRE_OFFSET_BEGINNING) from its own store;
// on revoke it finishes (writes) everything it did with those partitions
// before it returns. po and its topic names are borrowed for the call.
typedef void (*dre_rebalance_fn)(
    void *arg, bool assign, dre_partition_offset *po, size_t n);
dre_err dre_consumer_open_group(dre_consumer **cp, const dre_kvlist *props,
    const char *group_id, dre_rebalance_fn fn, void *arg);
dre_err dre_consumer_subscribe(
    dre_consumer *c, const char *const *topics, size_t n);
// dre_consumer_seek moves the consumer's position of n assigned partitions
// (a rewind after a failed batch).
dre_err dre_consumer_seek(
    dre_consumer *c, const dre_partition_offset *po, size_t n);

// dre_consumer_poll waits up to timeout_ms. DRE_OK: *m is filled, borrowed
// until the next poll. DRE_ETIMEOUT: nothing arrived. DRE_ENOTFOUND: a stored
// offset is out of range (the caller must recover explicitly: re-snapshot).
// DRE_EBUS: another consumer error (logged).
dre_err dre_consumer_poll(dre_consumer *c, int timeout_ms, dre_msg *m);
void dre_consumer_close(dre_consumer *c);

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
dre_err dre_outbox_open(dre_outbox **op, dre_store *st, int cf,
    const dre_kvlist *props);
// dre_outbox_put appends one event to batch b; the caller writes b.
// Returns the event's sequence number (for dre_outbox_wait).
uint64_t dre_outbox_put(dre_outbox *o, dre_batch *b, const char *topic,
    const void *key, size_t klen, const void *val, size_t vlen);
// dre_outbox_wait waits up to timeout_ms until the broker acknowledged the
// event seq (written and kicked before). DRE_OK once it did, DRE_ETIMEOUT
// otherwise (it stays in the outbox and is delivered later).
dre_err dre_outbox_wait(dre_outbox *o, uint64_t seq, int timeout_ms);
// dre_outbox_kick wakes the relay after the caller's batch was written.
void dre_outbox_kick(dre_outbox *o);
// dre_outbox_pending is the number of events not yet acknowledged (by the
// current cluster: events published again count again).
int64_t dre_outbox_pending(dre_outbox *o);
// dre_outbox_connected reports whether the relay currently reaches Kafka.
bool dre_outbox_connected(dre_outbox *o);
// dre_outbox_close stops the relay (pending events stay in the store).
void dre_outbox_close(dre_outbox *o);

// An in-process librdkafka mock cluster on loopback with every topic of
// dre_topics[] created: for tests that need a broker without a process.
typedef struct dre_bus_mock dre_bus_mock;
// dre_bus_mock_open starts `brokers` mock brokers (ids 1..brokers). Caller
// closes with dre_bus_mock_close().
dre_err dre_bus_mock_open(dre_bus_mock **mp, int brokers);
// dre_bus_mock_bootstrap returns the bootstrap.servers string; borrowed
// until close.
const char *dre_bus_mock_bootstrap(const dre_bus_mock *m);
// dre_bus_mock_set_up takes broker id (-1 = all) up or down.
dre_err dre_bus_mock_set_up(dre_bus_mock *m, int32_t broker, bool up);
void dre_bus_mock_close(dre_bus_mock *m);

#endif
