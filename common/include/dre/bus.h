// bus.h -- Kafka (librdkafka): idempotent producer and consumer. The
// outbox relay is outbox.h, the in-process mock cluster of tests busmock.h.
#ifndef DRE_BUS_H
#define DRE_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/config.h"
#include "dre/err.h"

typedef struct dre_producer dre_producer;
typedef struct dre_consumer dre_consumer;

// Delivery report: err DRE_OK when the broker persisted the message
// (acks=all).
typedef void (*dre_delivery_fn)(void *arg, dre_err err, void *msg_opaque,
    int32_t partition, int64_t offset);

// dre_producer_open creates an idempotent producer (enable.idempotence,
// acks=all) from the pass-through properties. Delivery reports are served
// by an internal poll thread. Caller closes with dre_producer_close().
dre_err dre_producer_open(
    dre_producer **pp, const dre_kvlist *props, dre_delivery_fn fn, void *arg);
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
// dre_producer_fatal reports whether the producer hit a fatal error and must
// be closed and reopened.
bool dre_producer_fatal(dre_producer *p);

// dre_bus_cluster_id asks the cluster for its id into buf (cap bytes).
dre_err dre_bus_cluster_id(
    const dre_kvlist *props, char *buf, size_t cap, int timeout_ms);
// dre_bus_cluster_info asks, over one connection, for the cluster's id (into
// id, cap bytes; id NULL: not asked) and each of the n topics' partition
// counts as the cluster has them (into counts; 0: no such topic). A
// topic's count is the cluster's, not dre_topics[]'s: an operator may have
// created or grown it with more. Asking never creates a topic. With id
// asked, the result is the id's and counts the cluster did not give are 0;
// without, the counts' error.
dre_err dre_bus_cluster_info(const dre_kvlist *props, char *id, size_t cap,
    const char *const *topics, size_t n, int *counts, int timeout_ms);
// dre_bus_topic_ends reads every partition's high watermark (next offset) of
// topic, as many partitions as the cluster has (*n, at most cap; more:
// DRE_ETOOBIG; no such topic: DRE_ENOTFOUND), over one connection.
dre_err dre_bus_topic_ends(const dre_kvlist *props, const char *topic,
    int64_t *high, size_t cap, size_t *n, int timeout_ms);

typedef struct {
	const char    *topic;
	int32_t        partition;
	int64_t        offset;
	const uint8_t *key;
	size_t         key_len;
	const uint8_t *payload;
	size_t         len;
	int64_t        timestamp_ms;
} dre_msg;

// dre_bus_set_fetch_wait_ms sets the process's default fetch.wait.max.ms
// for the consumers opened after it (5 until set; services set it from
// events.fetch_wait_ms). A kafka.fetch.wait.max.ms in props wins.
void dre_bus_set_fetch_wait_ms(int ms);

// dre_consumer_open creates a consumer with auto.offset.reset=error and no
// auto commit (positions live in the consumer's own store). group_id NULL =
// static assignment through dre_consumer_assign.
dre_err dre_consumer_open(
    dre_consumer **cp, const dre_kvlist *props, const char *group_id);
// dre_consumer_assign adds topic/partition starting at offset (>= 0, or
// DRE_OFFSET_BEGINNING / DRE_OFFSET_END) to the static assignment and applies
// it.
#define DRE_OFFSET_BEGINNING (-2)
#define DRE_OFFSET_END       (-1)
dre_err dre_consumer_assign(
    dre_consumer *c, const char *topic, int32_t partition, int64_t offset);

typedef struct {
	const char *topic;
	int32_t     partition;
	int64_t     offset; // >= 0, DRE_OFFSET_BEGINNING or DRE_OFFSET_END
} dre_partition_offset;

// dre_producer_ends asks, through p's connections, for the high watermark
// (next offset) of each of the n partitions in po, into its offset: one
// request per leader broker. An error for any partition is the answer.
dre_err dre_producer_ends(
    dre_producer *p, dre_partition_offset *po, size_t n, int timeout_ms);

// dre_consumer_assign_list replaces the whole static assignment with the n
// partitions of po, each starting at its offset, in one call. Prefer it over
// n calls of dre_consumer_assign: librdkafka 2.0.2 asserts when a partition
// is re-assigned while its previous stop is still in progress.
dre_err dre_consumer_assign_list(
    dre_consumer *c, const dre_partition_offset *po, size_t n);
// dre_consumer_assign_topic assigns every partition of the declared topic
// (dre_topics[]) from offset, in one dre_consumer_assign_list call.
// DRE_EINVAL for a topic that is not declared.
dre_err dre_consumer_assign_topic(
    dre_consumer *c, const char *topic, int64_t offset);
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
// dre_consumer_high_watermark reads the partition's end offset as last
// seen in a fetch (never blocks); false while unknown.
bool dre_consumer_high_watermark(
    dre_consumer *c, const char *topic, int32_t partition, int64_t *high);
dre_err dre_consumer_poll(dre_consumer *c, int timeout_ms, dre_msg *m);
void    dre_consumer_close(dre_consumer *c);
// dre_consumer_setting is the value of librdkafka property name in c's
// configuration (into buf), or NULL when it has none.
const char *dre_consumer_setting(
    dre_consumer *c, const char *name, char *buf, size_t cap);

#endif
