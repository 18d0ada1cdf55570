// test_bus.c -- producer, consumer and outbox against an in-process mock
// cluster.
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "dre/bus.h"
#include "dre/busmock.h"
#include "dre/clock.h"
#include "dre/outbox.h"
#include "dre/topics.h"
#include "testkit.h"

static dre_bus_mock *mock;
static dre_kvlist    props;

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long) (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int
group_setup(void **state)
{
	return tk_broker_open(&mock, &props);
}

static int
group_teardown(void **state)
{
	tk_broker_close(mock, &props);
	return 0;
}

static atomic_int delivered_ok, delivered_bad;

static void
on_delivery(void *arg, dre_err err, void *msg_opaque, int32_t partition,
    int64_t offset)
{
	if (err == DRE_OK && offset >= 0)
		atomic_fetch_add(&delivered_ok, 1);
	else
		atomic_fetch_add(&delivered_bad, 1);
}

static void
test_bad_property(void **state)
{
	dre_kvlist bad = { 0 };
	dre_kvlist_set(&bad, "no.such.property", "1");
	dre_producer *p = NULL;
	assert_int_equal(dre_producer_open(&p, &bad, NULL, NULL), DRE_ECONFIG);
	assert_null(p);
	dre_consumer *c = NULL;
	assert_int_equal(dre_consumer_open(&c, &bad, NULL), DRE_ECONFIG);
	assert_null(c);
	dre_kvlist_free(&bad);
}

// fetch_wait_of opens a consumer with props and returns its
// fetch.wait.max.ms.
static int
fetch_wait_of(const dre_kvlist *kv)
{
	dre_consumer *c = NULL;
	char          buf[32];
	assert_int_equal(dre_consumer_open(&c, kv, NULL), DRE_OK);
	const char *v = dre_consumer_setting(c, "fetch.wait.max.ms", buf, 32);
	assert_non_null(v);
	int ms = atoi(v);
	dre_consumer_close(c);
	return ms;
}

// A consumer's fetch wait is the process's default (events.fetch_wait_ms,
// set by dre_svc_init; 5 before) unless its properties name one.
static void
test_fetch_wait(void **state)
{
	(void) state;
	dre_kvlist own = { 0 };
	dre_kvlist_set(
	    &own, "bootstrap.servers", dre_bus_mock_bootstrap(mock));
	assert_int_equal(fetch_wait_of(&own), 5);
	dre_bus_set_fetch_wait_ms(100);
	assert_int_equal(fetch_wait_of(&own), 100);
	dre_kvlist_set(&own, "fetch.wait.max.ms", "7");
	assert_int_equal(fetch_wait_of(&own), 7);
	dre_bus_set_fetch_wait_ms(5);
	dre_kvlist_free(&own);
}

// consume_all reads n messages from every partition of topic.
// topic_total sums the high watermarks of every partition of topic.
static int64_t
topic_total(const char *topic)
{
	int64_t high[512];
	size_t  n = 0;
	assert_int_equal(
	    dre_bus_topic_ends(&props, topic, high, 512, &n, 5000), DRE_OK);
	int64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += high[i];
	return sum;
}

static int
consume_all(const char *topic, int64_t from, int n, char seen[][32])
{
	dre_consumer *c = NULL;
	assert_int_equal(dre_consumer_open(&c, &props, NULL), DRE_OK);
	assert_int_equal(dre_consumer_assign_topic(c, topic, from), DRE_OK);
	int got = 0;
	for (int tries = 0; got < n && tries < 200; tries++) {
		dre_msg m;
		dre_err e = dre_consumer_poll(c, 100, &m);
		if (e == DRE_ETIMEOUT)
			continue;
		assert_int_equal(e, DRE_OK);
		assert_string_equal(m.topic, topic);
		assert_true(m.len < 32);
		memcpy(seen[got], m.payload, m.len);
		seen[got][m.len] = '\0';
		got++;
	}
	dre_consumer_close(c);
	return got;
}

static void
test_produce_consume(void **state)
{
	dre_producer *p = NULL;
	atomic_store(&delivered_ok, 0);
	atomic_store(&delivered_bad, 0);
	assert_int_equal(
	    dre_producer_open(&p, &props, on_delivery, NULL), DRE_OK);
	for (int i = 0; i < 20; i++) {
		char v[32];
		int  n = snprintf(v, sizeof(v), "calc-%02d", i);
		assert_int_equal(dre_producer_send(p, DRE_TOPIC_CALCULATIONS,
		                     "t/1", 3, v, (size_t) n, NULL),
		    DRE_OK);
	}
	assert_int_equal(dre_producer_flush(p, 10000), DRE_OK);
	assert_int_equal(atomic_load(&delivered_ok), 20);
	assert_int_equal(atomic_load(&delivered_bad), 0);
	assert_true(dre_producer_connected(p));
	assert_int_equal(dre_producer_outq_len(p), 0);
	dre_producer_close(p);

	// One key, one partition: order is kept.
	char seen[20][32];
	assert_int_equal(consume_all(DRE_TOPIC_CALCULATIONS,
	                     DRE_OFFSET_BEGINNING, 20, seen),
	    20);
	for (int i = 0; i < 20; i++) {
		char v[32];
		snprintf(v, sizeof(v), "calc-%02d", i);
		assert_string_equal(seen[i], v);
	}

	assert_int_equal(topic_total(DRE_TOPIC_CALCULATIONS), 20);
	char id[128];
	assert_int_equal(
	    dre_bus_cluster_id(&props, id, sizeof(id), 5000), DRE_OK);
	assert_true(strlen(id) > 0);
}

// The cluster's partition counts, not the table's: a topic made wider than
// declared, one that does not exist (and is not created by the asking).
static void
test_partition_counts(void **state)
{
	char wide[64];
	snprintf(wide, sizeof wide, "test.wide.%d", rand());
	assert_int_equal(dre_bus_mock_topic_create(mock, wide, 5), DRE_OK);
	const char *const topics[]
	    = { DRE_TOPIC_TX_CONFIRMED, wide, "test.never.created" };
	int  counts[3] = { -1, -1, -1 };
	char id[128];
	for (int round = 0; round < 2; round++) {
		assert_int_equal(dre_bus_cluster_info(&props, id, sizeof id,
		                     topics, 3, counts, 5000),
		    DRE_OK);
		assert_true(strlen(id) > 0);
		assert_int_equal(counts[0], 6);
		assert_int_equal(counts[1], 5);
		assert_int_equal(counts[2], 0);
	}
	int64_t high[8];
	size_t  n = 99;
	assert_int_equal(
	    dre_bus_topic_ends(&props, wide, high, 8, &n, 5000), DRE_OK);
	assert_int_equal(n, 5);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(high[i], 0);
	assert_int_equal(
	    dre_bus_topic_ends(&props, wide, high, 4, &n, 5000), DRE_ETOOBIG);
	assert_int_equal(dre_bus_topic_ends(
	                     &props, "test.never.created", high, 8, &n, 5000),
	    DRE_ENOTFOUND);
	assert_int_equal(n, 0);
}

static void
test_offset_out_of_range(void **state)
{
	dre_consumer *c = NULL;
	assert_int_equal(dre_consumer_open(&c, &props, NULL), DRE_OK);
	assert_int_equal(
	    dre_consumer_assign(c, DRE_TOPIC_SIDEFX, 0, 1000), DRE_OK);
	dre_err e = DRE_ETIMEOUT;
	dre_msg m;
	for (int i = 0; i < 50 && e == DRE_ETIMEOUT; i++)
		e = dre_consumer_poll(c, 100, &m);
	assert_int_equal(e, DRE_ENOTFOUND);
	assert_string_equal(m.topic, DRE_TOPIC_SIDEFX);
	assert_int_equal(m.partition, 0);
	// Recovery: assign the same partition again from a valid position.
	assert_int_equal(
	    dre_consumer_assign(c, DRE_TOPIC_SIDEFX, 0, DRE_OFFSET_END),
	    DRE_OK);
	for (int i = 0; i < 5; i++)
		assert_int_equal(dre_consumer_poll(c, 50, &m), DRE_ETIMEOUT);
	dre_consumer_close(c);
}

static bool
wait_pending(dre_outbox *o, int64_t want, int ms)
{
	for (int t = 0; t < ms; t += 50) {
		if (dre_outbox_pending(o) == want)
			return true;
		sleep_ms(50);
	}
	return dre_outbox_pending(o) == want;
}

static void
put_events(dre_outbox *o, dre_store *st, int from, int n)
{
	dre_batch *b = dre_batch_alloc();
	for (int i = from; i < from + n; i++) {
		char k[32], v[32];
		int  kl = snprintf(k, sizeof(k), "t/%d", i);
		int  vl = snprintf(v, sizeof(v), "ev-%04d", i);
		dre_outbox_put(
		    o, b, DRE_TOPIC_SIDEFX, k, (size_t) kl, v, (size_t) vl);
		dre_batch_put(b, st, 0, k, (size_t) kl, v, (size_t) vl);
	}
	assert_int_equal(dre_store_write(st, b, true), DRE_OK);
	dre_batch_free(b);
	dre_outbox_kick(o);
}

static int64_t
sidefx_high(void)
{
	return topic_total(DRE_TOPIC_SIDEFX);
}

// count_kept returns the number of acknowledged entries the outbox column
// family keeps, or -1 while one is still pending (the relay moves an entry
// once Kafka acknowledged it: callers poll), and copies the stored cluster
// id into cluster (when not NULL).
static int64_t
count_kept(dre_store *st, char *cluster)
{
	dre_store_iter *it = NULL;
	const char     *k, *v;
	size_t          kl, vl;
	int64_t         n = 0;
	bool            pending = false;
	assert_int_equal(dre_store_iter_open(&it, st, 1, NULL, 0), DRE_OK);
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		if (kl == 8)
			pending = true;
		else if (kl == 17 && (uint8_t) k[0] == 0xff)
			n++;
		else if (cluster != NULL && kl == 11 && vl < 128) {
			memcpy(cluster, v, vl);
			cluster[vl] = '\0';
		}
	}
	dre_store_iter_close(it);
	return pending ? -1 : n;
}

typedef struct {
	atomic_int  calls;
	atomic_bool acked;
} ack_seen;

static void
on_ack(void *arg, bool acked)
{
	ack_seen *a = arg;
	atomic_store(&a->acked, acked);
	atomic_fetch_add(&a->calls, 1);
}

// outbox_store opens a fresh store with one column family for an outbox in
// a new directory (its name into dir) and sets p2 to reach the mock cluster.
static dre_store *
outbox_store(char *dir, size_t cap, const char *name, dre_kvlist *p2)
{
	static const char *const cfs[] = { "outbox" };
	assert_int_equal(tk_tmpdir(dir, cap, name), 0);
	dre_store_cfg cfg = { .path = dir, .cfs = cfs, .ncfs = 1 };
	dre_store    *st = NULL;
	assert_int_equal(dre_store_open(&st, &cfg), DRE_OK);
	dre_kvlist_set(p2, "bootstrap.servers", dre_bus_mock_bootstrap(mock));
	return st;
}

static void
test_outbox(void **state)
{
	static ack_seen late; // told at close
	char            dir[64];
	dre_kvlist      p2 = { 0 };
	dre_store      *st = outbox_store(dir, sizeof(dir), "outbox", &p2);
	dre_kvlist_set(&p2, "message.timeout.ms", "3000");
	dre_outbox *o = NULL;
	assert_int_equal(dre_outbox_open(&o, st, 1, &p2), DRE_OK);
	int64_t hw0 = topic_total(DRE_TOPIC_SIDEFX);

	// Normal operation: everything drains.
	put_events(o, st, 0, 50);
	assert_true(wait_pending(o, 0, 10000));
	assert_true(dre_outbox_connected(o));

	// A writer can wait for the broker's acknowledgement of its event.
	{
		dre_batch *b = dre_batch_alloc();
		uint64_t   seq = dre_outbox_put(
		      o, b, DRE_TOPIC_SIDEFX, "t/w", 3, "ev-w", 4);
		assert_int_equal(dre_store_write(st, b, true), DRE_OK);
		dre_batch_free(b);
		// Or be told, without waiting (dre_outbox_wait_async).
		ack_seen a1 = { 0 }, a2 = { 0 };
		assert_int_equal(
		    dre_outbox_wait_async(o, seq, 10000, on_ack, &a1), DRE_OK);
		dre_outbox_kick(o);
		assert_int_equal(dre_outbox_wait(o, seq, 10000), DRE_OK);
		// Already acknowledged: answered at once.
		assert_int_equal(dre_outbox_wait(o, seq, 0), DRE_OK);
		assert_int_equal(
		    dre_outbox_wait_async(o, seq, 0, on_ack, &a2), DRE_OK);
		assert_int_equal(atomic_load(&a2.calls), 1); // on this thread
		assert_true(atomic_load(&a2.acked));
		for (int t = 0; t < 100 && atomic_load(&a1.calls) == 0; t++)
			sleep_ms(100);
		assert_int_equal(atomic_load(&a1.calls), 1);
		assert_true(atomic_load(&a1.acked));
		assert_true(wait_pending(o, 0, 10000));
	}

	// Broker down: events stay pending, and drain when it returns.
	assert_int_equal(dre_bus_mock_set_up(mock, -1, false), DRE_OK);
	put_events(o, st, 50, 30);
	{
		dre_batch *b = dre_batch_alloc();
		uint64_t   seq = dre_outbox_put(
		      o, b, DRE_TOPIC_SIDEFX, "t/80x", 5, "ev-x", 4);
		assert_int_equal(dre_store_write(st, b, true), DRE_OK);
		dre_batch_free(b);
		// Not acknowledged while the broker is away: the wait ends.
		ack_seen a1 = { 0 };
		assert_int_equal(
		    dre_outbox_wait_async(o, seq, 300, on_ack, &a1), DRE_OK);
		assert_int_equal(
		    dre_outbox_wait_async(o, seq, 600000, on_ack, &late),
		    DRE_OK);
		int64_t t0 = dre_mono_ms();
		assert_int_equal(dre_outbox_wait(o, seq, 300), DRE_ETIMEOUT);
		for (int t = 0; t < 300 && atomic_load(&a1.calls) == 0; t++)
			sleep_ms(10);
		// At its deadline, not after the relay's back-off.
		assert_true(dre_mono_ms() - t0 < 2000);
		assert_int_equal(atomic_load(&a1.calls), 1);
		assert_false(atomic_load(&a1.acked));
		assert_int_equal(atomic_load(&late.calls), 0);
	}
	sleep_ms(1500);
	assert_int_equal(dre_outbox_pending(o), 31);
	for (int t = 0; t < 100 && dre_outbox_connected(o); t++)
		sleep_ms(100);
	assert_false(dre_outbox_connected(o));
	// Closed while pending: the entries stay in the store, and a waiter
	// left is told (not acknowledged).
	dre_outbox_close(o);
	assert_int_equal(atomic_load(&late.calls), 1);
	assert_false(atomic_load(&late.acked));
	assert_int_equal(dre_outbox_open(&o, st, 1, &p2), DRE_OK);
	assert_int_equal(dre_outbox_pending(o), 31);
	sleep_ms(4000); // past message.timeout.ms: failures re-produced
	put_events(o, st, 80, 20);
	assert_int_equal(dre_outbox_pending(o), 51);
	assert_int_equal(dre_bus_mock_set_up(mock, -1, true), DRE_OK);
	assert_true(wait_pending(o, 0, 30000));
	assert_true(dre_outbox_connected(o));
	dre_outbox_close(o);

	// Nothing pending in the outbox column family: the 102 events are
	// kept (acknowledged), and every one reached Kafka (duplicates
	// allowed).
	char cluster[128];
	assert_int_equal(
	    dre_bus_cluster_id(&props, cluster, sizeof(cluster), 5000),
	    DRE_OK);
	assert_int_equal(count_kept(st, NULL), 102);
	int64_t hw1 = sidefx_high(), kept = 0;
	assert_true(hw1 - hw0 >= 102);

	static char seen[400][32];
	int         got = consume_all(DRE_TOPIC_SIDEFX, DRE_OFFSET_BEGINNING,
	            (int) (hw1 - hw0 < 400 ? hw1 - hw0 : 400), seen);
	assert_true(got >= 100);
	for (int i = 0; i < 100; i++) {
		char v[32];
		snprintf(v, sizeof(v), "ev-%04d", i);
		bool found = false;
		for (int j = 0; j < got && !found; j++)
			found = strcmp(seen[j], v) == 0;
		assert_true(found);
	}
	// Restarted, it finds another cluster id than the one it saw last (a
	// broker that came back empty): every kept event is produced again.
	assert_int_equal(dre_store_put(st, 1,
	                     "\xfe"
	                     "cluster id",
	                     11, "another", 7, true),
	    DRE_OK);
	assert_int_equal(dre_outbox_open(&o, st, 1, &p2), DRE_OK);
	int64_t hw2 = hw1;
	for (int t = 0; t < 300 && hw2 - hw1 < 102; t++) {
		sleep_ms(50);
		hw2 = sidefx_high();
	}
	assert_true(hw2 - hw1 >= 102);
	assert_true(wait_pending(o, 0, 10000));
	for (int t = 0; t < 100 && (kept = count_kept(st, NULL)) != 102; t++)
		sleep_ms(50);
	assert_int_equal(kept, 102);
	dre_outbox_close(o);
	char stored[128] = "";
	assert_int_equal(count_kept(st, stored), 102);
	assert_string_equal(stored, cluster);

	dre_kvlist_free(&p2);
	dre_store_close(st);
	assert_int_equal(tk_rmtree(dir), 0);
}

// A cluster probe that hangs (a fresh client's metadata round trip to a
// slow broker) holds up nothing: an event is produced and acknowledged
// while it hangs. When the relay thread probed itself, every event and
// every confirm waiting for one waited for the probe (~50 ms every 2 s
// against the dev broker).
static sem_t      probe_entered, probe_release;
static atomic_int probe_hold;

static void
hanging_probe(void)
{
	if (atomic_exchange(&probe_hold, 0) == 0)
		return;
	sem_post(&probe_entered);
	while (sem_wait(&probe_release) != 0)
		;
}

static void
test_outbox_probe_aside(void **state)
{
	char       dir[64];
	dre_kvlist p2 = { 0 };
	dre_store *st = outbox_store(dir, sizeof(dir), "outbox-probe", &p2);

	sem_init(&probe_entered, 0, 0);
	sem_init(&probe_release, 0, 0);
	atomic_store(&probe_hold, 1);
	dre_outbox_probe_hook_set(hanging_probe);
	dre_outbox *o = NULL;
	assert_int_equal(dre_outbox_open(&o, st, 1, &p2), DRE_OK);
	// The first probe runs as the outbox opens; it hangs now.
	struct timespec ts = dre_timespec_after(CLOCK_REALTIME, 10000);
	assert_int_equal(sem_timedwait(&probe_entered, &ts), 0);
	dre_batch *b = dre_batch_alloc();
	uint64_t   seq = dre_outbox_put(
	      o, b, DRE_TOPIC_SIDEFX, "k-probe", 7, "v-probe", 7);
	assert_int_equal(dre_store_write(st, b, true), DRE_OK);
	dre_batch_free(b);
	dre_outbox_kick(o);
	assert_int_equal(dre_outbox_wait(o, seq, 10000), DRE_OK);
	sem_post(&probe_release);
	dre_outbox_close(o);
	dre_outbox_probe_hook_set(NULL);
	sem_destroy(&probe_entered);
	sem_destroy(&probe_release);
	dre_kvlist_free(&p2);
	dre_store_close(st);
	assert_int_equal(tk_rmtree(dir), 0);
}

// A topic wider than any table of ours: 300 partitions, 1,500 keyed
// messages. The producer's ends (one request per leader, not one per
// partition) and the one-off topic ends are each partition's count.
#define WIDE_PARTS 300
#define WIDE_MSGS  1500
static atomic_int wide_count[WIDE_PARTS];

static void
count_partition(void *arg, dre_err err, void *msg_opaque, int32_t partition,
    int64_t offset)
{
	(void) arg;
	(void) msg_opaque;
	(void) offset;
	if (err == DRE_OK && partition >= 0 && partition < WIDE_PARTS)
		atomic_fetch_add(&wide_count[partition], 1);
}

static void
wide_topic(char *name, size_t cap)
{
	snprintf(name, cap, "test.wide.ends.%d", rand());
	assert_int_equal(
	    dre_bus_mock_topic_create(mock, name, WIDE_PARTS), DRE_OK);
}

static void
test_ends_of_a_wide_topic(void **state)
{
	char topic[64];
	wide_topic(topic, sizeof topic);
	for (int i = 0; i < WIDE_PARTS; i++)
		atomic_store(&wide_count[i], 0);
	dre_producer *p = NULL;
	assert_int_equal(
	    dre_producer_open(&p, &props, count_partition, NULL), DRE_OK);
	for (int i = 0; i < WIDE_MSGS; i++) {
		char k[16];
		int  kl = snprintf(k, sizeof k, "k%d", i);
		assert_int_equal(
		    dre_producer_send(p, topic, k, (size_t) kl, "v", 1, NULL),
		    DRE_OK);
	}
	assert_int_equal(dre_producer_flush(p, 10000), DRE_OK);
	int sum = 0, used = 0;
	for (int i = 0; i < WIDE_PARTS; i++) {
		sum += atomic_load(&wide_count[i]);
		used += atomic_load(&wide_count[i]) > 0;
	}
	assert_int_equal(sum, WIDE_MSGS);
	assert_true(used > 256); // past the old table's bound
	dre_partition_offset po[WIDE_PARTS];
	for (int i = 0; i < WIDE_PARTS; i++) // backwards: any order
		po[i]
		    = (dre_partition_offset) { topic, WIDE_PARTS - 1 - i, -7 };
	assert_int_equal(dre_producer_ends(p, po, WIDE_PARTS, 5000), DRE_OK);
	for (int i = 0; i < WIDE_PARTS; i++)
		assert_int_equal(
		    po[i].offset, atomic_load(&wide_count[po[i].partition]));
	dre_producer_close(p);
	int64_t high[WIDE_PARTS + 1];
	size_t  n = 0;
	assert_int_equal(
	    dre_bus_topic_ends(&props, topic, high, WIDE_PARTS + 1, &n, 5000),
	    DRE_OK);
	assert_int_equal(n, WIDE_PARTS);
	for (int i = 0; i < WIDE_PARTS; i++)
		assert_int_equal(high[i], atomic_load(&wide_count[i]));
}

// The outbox's lost-log check over a topic wider than its old table (256
// partitions): probes that ask for all 300 partitions' ends find nothing
// lost, so nothing acknowledged is produced again (a wrong end would
// requeue every kept event: the topic would hold them twice).
static atomic_int probes;

static void
count_probe(void)
{
	atomic_fetch_add(&probes, 1);
}

static void
test_outbox_wide_topic(void **state)
{
	char       dir[64], topic[64];
	dre_kvlist p2 = { 0 };
	dre_store *st = outbox_store(dir, sizeof(dir), "outbox-wide", &p2);
	wide_topic(topic, sizeof topic);
	dre_outbox *o = NULL;
	assert_int_equal(dre_outbox_open(&o, st, 1, &p2), DRE_OK);
	dre_batch *b = dre_batch_alloc();
	for (int i = 0; i < WIDE_MSGS; i++) {
		char k[16];
		int  kl = snprintf(k, sizeof k, "k%d", i);
		dre_outbox_put(o, b, topic, k, (size_t) kl, "v", 1);
	}
	assert_int_equal(dre_store_write(st, b, true), DRE_OK);
	dre_batch_free(b);
	dre_outbox_kick(o);
	assert_true(wait_pending(o, 0, 20000));
	int64_t kept = -1;
	for (int t = 0; t < 200 && (kept = count_kept(st, NULL)) != WIDE_MSGS;
	     t++)
		sleep_ms(50);
	assert_int_equal(kept, WIDE_MSGS);
	// Two whole probes after every acknowledgement.
	atomic_store(&probes, 0);
	dre_outbox_probe_hook_set(count_probe);
	for (int t = 0; t < 200 && atomic_load(&probes) < 3; t++)
		sleep_ms(50);
	assert_true(atomic_load(&probes) >= 3);
	dre_outbox_probe_hook_set(NULL);
	assert_int_equal(dre_outbox_pending(o), 0);
	assert_int_equal(count_kept(st, NULL), WIDE_MSGS);
	assert_int_equal(topic_total(topic), WIDE_MSGS);
	dre_outbox_close(o);
	dre_kvlist_free(&p2);
	dre_store_close(st);
	assert_int_equal(tk_rmtree(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_property),
		cmocka_unit_test(test_fetch_wait),
		cmocka_unit_test(test_produce_consume),
		cmocka_unit_test(test_partition_counts),
		cmocka_unit_test(test_offset_out_of_range),
		cmocka_unit_test(test_outbox),
		cmocka_unit_test(test_outbox_probe_aside),
		cmocka_unit_test(test_ends_of_a_wide_topic),
		cmocka_unit_test(test_outbox_wide_topic),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
