// outbox.c -- transactional outbox: events in RocksDB, relayed to Kafka.
//
// A pending entry is key = 8-byte big-endian sequence number, value = u16
// topic length, topic, u32 key length, key, payload (lengths big-endian).
// The relay thread produces entries in sequence order with at most
// MAX_INFLIGHT unanswered and after a failed report waits until nothing is
// in flight, backs off and produces again from the lowest failed entry.
//
// An entry the broker acknowledged (acks=all) is not deleted but kept:
// moved to key = 0xff, acknowledgement time (wall ms, 8), sequence (8), same
// value. A broker can lose what it acknowledged -- the embedded broker
// restarted is a new, empty cluster -- so a probe thread asks for the
// cluster id every PROBE_EVERY_MS (beside the relay: the question takes a
// fresh client and a metadata round trip, tens of milliseconds during which
// the relay, when it asked itself, produced nothing and every confirm
// waiting for its acknowledgement waited too); when it differs from the one it
// saw before (key 0xfe "cluster id"), every kept entry goes back to pending
// and is produced again (consumers drop what they already applied by eventId).
// A kept entry is dropped once the cluster that has it was seen unchanged
// KEEP_MS after it was acknowledged, or, oldest first, when more than KEEP_MAX
// are kept. Nothing is deleted before a successful delivery, so nothing is
// lost; a crash between delivery and move produces it again.
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dre/bus.h"
#include "dre/clock.h"
#include "dre/log.h"
#include "dre/metrics.h"
#include "dre/outbox.h"
#include "dre/svc.h"

#define MAX_INFLIGHT   1000
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
// A sequence number allocated by dre_outbox_put whose batch is not written
// yet leaves a hole; the relay waits this long for it before moving on (a
// later full rescan still produces it if it turns up).
#define HOLE_WAIT_MS 2000
#define IDLE_WAIT_MS 100
#define NO_SEQ       UINT64_MAX
// The sequence numbers acknowledged lately, by seq % ACK_RING: a writer
// waiting for its event looks here instead of in the store.
#define ACK_RING 65536
// Writers waiting in dre_outbox_wait, by seq % WAIT_BUCKETS; each waits on
// its own semaphore, posted alone by its acknowledgement, and returns
// without taking mu again (a broadcast per acknowledgement woke every
// waiting writer, up to one per RPC worker, thousands of times a second).
#define WAIT_BUCKETS 256
// Acknowledged entries wait in o->dels until the relay moves them in one
// batch: once this many gathered (a delivery report wakes the relay for
// that) or FLUSH_EVERY_MS after the last move, not on every round of the
// relay (one store write per round cost as much as the moves).
#define DELS_WAKE      256
#define FLUSH_EVERY_MS 50
// Acknowledged entries are kept until the cluster that acknowledged them
// was seen, unchanged, this long after (consumers have read them by then
// unless they are down), and never more than KEEP_MAX of them.
#define KEEP_MS        (5 * 60 * 1000)
#define KEEP_MAX       200000
#define PROBE_EVERY_MS 2000
#define PRUNE_EVERY_MS 1000
#define KEPT_PREFIX    0xff // kept entries: 0xff ack_ms(8) seq(8)
#define STATE_PREFIX   0xfe // 0xfe "cluster id" -> the last one seen
#define KEPT_KEY_LEN   17
// Offsets acknowledged per topic and partition, to recognise a log that
// started again: every partition acknowledged from, up to MAX_TPS (a
// growing table; a topic is as wide as its cluster made it).
#define MAX_TOPICS 32
#define MAX_TPS    65536
#define NO_TOPIC   0xff

typedef struct {
	uint8_t topic; // index into topics
	int32_t partition;
	int64_t max; // highest offset acknowledged
} ack_tp;

// A caller of dre_outbox_wait, on its own stack, or of
// dre_outbox_wait_async, allocated (done set): its completion runs, outside
// mu, on the producer's poll thread for the acknowledgement or on the relay
// thread at its deadline.
typedef struct ack_waiter ack_waiter;
struct ack_waiter {
	uint64_t       seq;
	bool           acked;
	ack_waiter    *next;
	sem_t          posted; // once acked is set (and w unlinked)
	dre_outbox_ack done; // NULL: a blocked caller, posted
	void          *arg;
	int64_t        deadline; // monotonic ms (async)
};

struct dre_outbox {
	dre_store      *st;
	int             cf;
	dre_kvlist      props; // own copy, to reopen the producer
	dre_producer   *p; // replaced under mu, once probe_users is 0
	pthread_t       thread;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	pthread_t       probe_th;
	pthread_cond_t  probe_cv; // the probe thread's nap; stop ends it
	pthread_cond_t  probe_idle; // probe_users went back to 0
	int             probe_users; // under mu: the probe thread holds p
	bool            probe_started;
	// Under mu: the last cluster id seen ("" = none yet); the probe
	// thread sets it, requeue stores it.
	char cluster[128];
	// Wall ms the probe last saw the cluster unchanged (prune's clock).
	_Atomic int64_t stable_ms;

	atomic_uint_fast64_t next_seq; // next sequence number to hand out
	atomic_int_fast64_t  pending; // written and not acknowledged
	atomic_int           inflight; // produced, report outstanding
	// Set by dre_outbox_kick, cleared by the relay before it scans; only
	// the kick that sets it takes mu to wake the relay.
	atomic_bool kicked;

	// Under mu: shared between the relay and delivery reports.
	bool                  stop;
	ack_waiter           *waiters[WAIT_BUCKETS];
	int64_t               nasync; // asynchronous waiters linked
	int64_t               next_deadline; // earliest of theirs (mono ms)
	uint64_t             *dels; // acknowledged, to delete from the store
	size_t                ndels, capdels;
	atomic_uint_fast64_t *acked; // ACK_RING slots
	ack_tp               *tps;
	size_t                ntps, captps;
	bool     log_lost; // an acknowledgement went back in a partition
	uint64_t retry_from; // lowest failed sequence, NO_SEQ = none
	int64_t  retry_at; // monotonic ms
	int      backoff_ms;

	// Written by the relay before it produces seq, read by its report.
	uint8_t *topic_of; // ACK_RING slots: topic index of seq
	// Relay thread only.
	char    *topics[MAX_TOPICS]; // names, index = topic index
	size_t   ntopics;
	int64_t  next_prune, next_flush; // monotonic ms
	int64_t  nkept; // acknowledged entries kept
	int64_t  warned_ms; // monotonic ms of the last early-drop warning
	bool     republish; // the cluster changed: kept entries go again
	uint64_t cursor; // scan from here
	uint64_t produced_hw; // highest sequence produced + 1
	uint64_t hole_seq; // first missing sequence being waited for
	int64_t  hole_since;
	bool     hole_skipped; // a full rescan is due
};

static int64_t
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

// Not 8 bytes long: never taken for a pending entry.
static const char cluster_key[] = "\xfe"
                                  "cluster id";

// track notes an acknowledged offset; one below an earlier one of the same
// partition means the log started again. Called with o->mu held.
static void
track(dre_outbox *o, uint8_t topic, int32_t partition, int64_t offset)
{
	if (topic == NO_TOPIC || offset < 0)
		return;
	for (size_t i = 0; i < o->ntps; i++) {
		ack_tp *t = &o->tps[i];
		if (t->topic != topic || t->partition != partition)
			continue;
		if (offset < t->max && !o->log_lost) {
			dre_warn("outbox: %s[%d] acknowledged at offset %lld "
			         "after %lld: the broker lost its log",
			    o->topics[topic], partition, (long long) offset,
			    (long long) t->max);
			o->log_lost = true;
		}
		if (offset > t->max)
			t->max = offset;
		return;
	}
	if (o->ntps == o->captps) {
		size_t  cap = o->captps ? o->captps * 2 : 64;
		ack_tp *v = cap <= MAX_TPS ? realloc(o->tps, cap * sizeof(*v))
		                           : NULL;
		if (v == NULL)
			return; // not tracked: only the safety net is thinner
		o->tps = v;
		o->captps = cap;
	}
	o->tps[o->ntps++] = (ack_tp) { topic, partition, offset };
}

// topic_index returns the index of topic in o->topics, adding it; NO_TOPIC
// when the table is full. Relay thread.
static uint8_t
topic_index(dre_outbox *o, const char *topic)
{
	for (size_t i = 0; i < o->ntopics; i++)
		if (strcmp(o->topics[i], topic) == 0)
			return (uint8_t) i;
	if (o->ntopics == MAX_TOPICS
	    || (o->topics[o->ntopics] = strdup(topic)) == NULL)
		return NO_TOPIC;
	return (uint8_t) o->ntopics++;
}

// fire_waiters completes a list of unlinked asynchronous waiters; mu not
// held.
static void
fire_waiters(ack_waiter *w, bool acked)
{
	while (w != NULL) {
		ack_waiter *next = w->next;
		w->done(w->arg, acked);
		free(w);
		w = next;
	}
}

// expire unlinks the asynchronous waiters whose deadline is at or before
// now (all of them with now = INT64_MAX) and returns them; recomputes
// next_deadline. Called with o->mu held.
static ack_waiter *
expire(dre_outbox *o, int64_t now)
{
	ack_waiter *out = NULL;
	int64_t     next = INT64_MAX;
	if (o->nasync == 0 || now < o->next_deadline)
		return NULL;
	for (size_t i = 0; i < WAIT_BUCKETS; i++)
		for (ack_waiter **pp = &o->waiters[i]; *pp != NULL;) {
			ack_waiter *w = *pp;
			if (w->done == NULL || w->deadline > now) {
				if (w->done != NULL && w->deadline < next)
					next = w->deadline;
				pp = &w->next;
				continue;
			}
			*pp = w->next;
			o->nasync--;
			w->next = out;
			out = w;
		}
	o->next_deadline = next;
	return out;
}

// delivered runs on the producer's poll thread for every produced entry.
static void
delivered(void *arg, dre_err err, void *msg_opaque, int32_t partition,
    int64_t offset)
{
	dre_outbox *o = arg;
	uint64_t    seq = (uint64_t) (uintptr_t) msg_opaque;
	ack_waiter *fire = NULL; // asynchronous waiters, completed below
	if (err == DRE_OK) {
		atomic_store(&o->acked[seq % ACK_RING], seq);
		atomic_fetch_sub(&o->pending, 1);
	}
	pthread_mutex_lock(&o->mu);
	if (err == DRE_OK) {
		// The relay deletes acknowledged entries in batches.
		if (o->ndels == o->capdels) {
			size_t    cap = o->capdels ? o->capdels * 2 : 1024;
			uint64_t *v = realloc(o->dels, cap * sizeof(*v));
			if (v != NULL) {
				o->dels = v;
				o->capdels = cap;
			}
		}
		if (o->ndels < o->capdels)
			o->dels[o->ndels++] = seq;
		track(o, o->topic_of[seq % ACK_RING], partition, offset);
		o->backoff_ms = BACKOFF_MIN_MS;
		for (ack_waiter **pp = &o->waiters[seq % WAIT_BUCKETS];
		     *pp != NULL;) {
			ack_waiter *w = *pp;
			if (w->seq != seq) {
				pp = &w->next;
				continue;
			}
			// Unlinked and posted under mu: a waiter that timed
			// out meanwhile finds acked set once it has mu.
			*pp = w->next;
			w->acked = true;
			if (w->done != NULL) {
				o->nasync--;
				w->next = fire;
				fire = w;
			} else
				sem_post(&w->posted);
		}
	} else {
		if (o->retry_from == NO_SEQ || seq < o->retry_from)
			o->retry_from = seq;
		o->retry_at = now_ms() + o->backoff_ms;
	}
	// The relay is woken when it may wait for this report: a failure to
	// handle, room below the in-flight bound, nothing in flight (a retry
	// or a republish waits for that), or a batch of entries to move.
	int before = atomic_fetch_sub(&o->inflight, 1);
	if (err != DRE_OK || before >= MAX_INFLIGHT || before == 1
	    || o->ndels >= DELS_WAKE)
		pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
	fire_waiters(fire, true);
}

// fail_send schedules a retry from seq after a send that did not enqueue.
static void
fail_send(dre_outbox *o, uint64_t seq)
{
	pthread_mutex_lock(&o->mu);
	if (o->retry_from == NO_SEQ || seq < o->retry_from)
		o->retry_from = seq;
	o->retry_at = now_ms() + o->backoff_ms;
	o->backoff_ms = o->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
	                                                   : o->backoff_ms * 2;
	pthread_mutex_unlock(&o->mu);
}

// parse splits an entry's value into topic, key and payload.
static bool
parse(const char *v, size_t vlen, char *topic, size_t tcap, const char **key,
    size_t *klen, const char **payload, size_t *plen)
{
	const uint8_t *u = (const uint8_t *) v;
	if (vlen < 2)
		return false;
	size_t tl = (size_t) u[0] << 8 | u[1];
	if (tl == 0 || tl >= tcap || vlen < 2 + tl + 4)
		return false;
	memcpy(topic, v + 2, tl);
	topic[tl] = '\0';
	const uint8_t *kp = u + 2 + tl;
	size_t         kl = (size_t) kp[0] << 24 | (size_t) kp[1] << 16
	    | (size_t) kp[2] << 8 | kp[3];
	if (vlen - (2 + tl + 4) < kl)
		return false;
	*key = v + 2 + tl + 4;
	*klen = kl;
	*payload = *key + kl;
	*plen = vlen - (2 + tl + 4 + kl);
	return true;
}

// relay_scan produces entries from o->cursor on, up to the in-flight bound.
// Returns the number produced.
static int
relay_scan(dre_outbox *o)
{
	uint8_t start[8];
	dre_be64_put(start, (int64_t) o->cursor);
	dre_store_iter *it = NULL;
	if (dre_store_iter_open_from(&it, o->st, o->cf, NULL, 0, start, 8))
		return 0;
	int         n = 0;
	const char *k, *v;
	size_t      kl, vl;
	while (atomic_load(&o->inflight) < MAX_INFLIGHT
	    && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		if (kl != 8) {
			if (kl > 0 && (uint8_t) k[0] >= STATE_PREFIX)
				break; // past the pending entries
			continue;
		}
		uint64_t seq = (uint64_t) dre_be64_get(k);
		if (seq > o->produced_hw) {
			int64_t now = now_ms();
			if (o->hole_seq != o->produced_hw) {
				o->hole_seq = o->produced_hw;
				o->hole_since = now;
			}
			if (now - o->hole_since < HOLE_WAIT_MS)
				break;
			dre_warn("outbox: sequence %llu..%llu never written, "
			         "moving on",
			    (unsigned long long) o->produced_hw,
			    (unsigned long long) seq - 1);
			o->hole_skipped = true;
		}
		o->hole_seq = NO_SEQ;
		char        topic[256];
		const char *key, *payload;
		size_t      klen, plen;
		if (!parse(v, vl, topic, sizeof(topic), &key, &klen, &payload,
		        &plen)) {
			// Kept for inspection; never produced, never deleted.
			dre_error("outbox: entry %llu is malformed, skipped",
			    (unsigned long long) seq);
		} else {
			o->topic_of[seq % ACK_RING] = topic_index(o, topic);
			atomic_fetch_add(&o->inflight, 1);
			dre_err e = dre_producer_send(o->p, topic, key, klen,
			    payload, plen, (void *) (uintptr_t) seq);
			if (e != DRE_OK) {
				atomic_fetch_sub(&o->inflight, 1);
				fail_send(o, seq);
				break;
			}
			n++;
		}
		o->cursor = seq + 1;
		if (seq + 1 > o->produced_hw)
			o->produced_hw = seq + 1;
	}
	dre_store_iter_close(it);
	return n;
}

static void
kept_key(uint8_t *k, int64_t ack_ms, uint64_t seq)
{
	k[0] = KEPT_PREFIX;
	dre_be64_put(k + 1, ack_ms);
	dre_be64_put(k + 9, (int64_t) seq);
}

// flush_deletes moves acknowledged entries from pending to kept in one
// batch; called with o->mu held, drops it meanwhile. Not synced: an entry
// whose move is lost in a crash is produced once more, which consumers
// tolerate (eventId).
static void
flush_deletes(dre_outbox *o)
{
	if (o->ndels == 0)
		return;
	uint64_t *v = o->dels;
	size_t    n = o->ndels;
	o->dels = NULL;
	o->ndels = o->capdels = 0;
	pthread_mutex_unlock(&o->mu);
	dre_batch *b = dre_batch_alloc();
	int64_t    now = wall_ms(), moved = 0;
	for (size_t i = 0; b != NULL && i < n; i++) {
		uint8_t k[8], kk[KEPT_KEY_LEN];
		char   *val = NULL;
		size_t  vl = 0;
		dre_be64_put(k, (int64_t) v[i]);
		if (dre_store_get(o->st, o->cf, k, sizeof(k), &val, &vl)
		    != DRE_OK)
			continue; // gone already (acknowledged twice)
		kept_key(kk, now, v[i]);
		dre_batch_put(b, o->st, o->cf, kk, sizeof(kk), val, vl);
		dre_batch_delete(b, o->st, o->cf, k, sizeof(k));
		free(val);
		moved++;
	}
	if (b == NULL || dre_store_write(o->st, b, false) != DRE_OK)
		dre_warn("outbox: %zu acknowledged entries not moved (they "
		         "are produced again after a restart)",
		    n);
	else
		o->nkept += moved;
	dre_batch_free(b);
	free(v);
	pthread_mutex_lock(&o->mu);
}

// prune drops kept entries the cluster has held, unchanged, for KEEP_MS,
// and the oldest beyond KEEP_MAX. Relay thread, o->mu not held.
static void
prune(dre_outbox *o)
{
	o->next_prune = now_ms() + PRUNE_EVERY_MS;
	int64_t cutoff = atomic_load(&o->stable_ms) - KEEP_MS;
	if (o->nkept == 0 || (o->nkept <= KEEP_MAX && cutoff <= 0))
		return;
	uint8_t         pfx = KEPT_PREFIX;
	dre_store_iter *it = NULL;
	if (dre_store_iter_open(&it, o->st, o->cf, &pfx, 1) != DRE_OK)
		return;
	dre_batch  *b = dre_batch_alloc();
	const char *k;
	size_t      kl;
	int64_t     n = 0, early = 0;
	while (b != NULL && dre_store_iter_next(it, &k, &kl, NULL, NULL)) {
		if (kl != KEPT_KEY_LEN)
			continue;
		bool over = o->nkept - n > KEEP_MAX;
		if (dre_be64_get(k + 1) >= cutoff && !over)
			break;
		early += dre_be64_get(k + 1) >= cutoff;
		dre_batch_delete(b, o->st, o->cf, k, kl);
		n++;
	}
	dre_store_iter_close(it);
	if (b != NULL && n > 0 && dre_store_write(o->st, b, false) == DRE_OK) {
		o->nkept -= n;
		if (early > 0 && now_ms() - o->warned_ms >= 60000) {
			o->warned_ms = now_ms();
			dre_warn("outbox: more than %d acknowledged events "
			         "kept: %lld dropped before their time",
			    KEEP_MAX, (long long) early);
		}
	}
	dre_batch_free(b);
}

// log_behind asks for the high watermark of every partition the relay had
// acknowledgements from; one at or below the highest acknowledged offset
// is a log that lost them. Relay thread, o->mu not held.
static bool
log_behind(dre_outbox *o, dre_producer *p)
{
	pthread_mutex_lock(&o->mu);
	size_t                n = o->ntps;
	ack_tp               *tps = n ? malloc(n * sizeof(*tps)) : NULL;
	dre_partition_offset *po = n ? malloc(n * sizeof(*po)) : NULL;
	if (tps != NULL && po != NULL)
		memcpy(tps, o->tps, n * sizeof(*tps));
	pthread_mutex_unlock(&o->mu);
	bool lost = false;
	if (tps != NULL && po != NULL) {
		for (size_t i = 0; i < n; i++) {
			po[i].topic = o->topics[tps[i].topic];
			po[i].partition = tps[i].partition;
			po[i].offset = 0;
		}
		// unreachable: not asked again now
		if (dre_producer_ends(p, po, n, 1000) != DRE_OK)
			n = 0;
		for (size_t i = 0; i < n && !lost; i++) {
			if (po[i].offset > tps[i].max)
				continue;
			dre_warn("outbox: %s[%d] ends at offset %lld, %lld "
			         "was acknowledged: the broker lost its log",
			    po[i].topic, po[i].partition,
			    (long long) po[i].offset, (long long) tps[i].max);
			lost = true;
		}
	}
	free(tps);
	free(po);
	if (lost) {
		pthread_mutex_lock(&o->mu);
		o->log_lost = true;
		pthread_mutex_unlock(&o->mu);
	}
	return lost;
}

static void (*_Atomic probe_hook)(void);

void
dre_outbox_probe_hook_set(void (*fn)(void))
{
	atomic_store(&probe_hook, fn);
}

// probe compares the cluster id with the last one seen and the partitions'
// ends with the offsets acknowledged. Probe thread, o->mu not held, p held
// (probe_users).
static void
probe(dre_outbox *o, dre_producer *p)
{
	char id[128], old[128];
	bool first, same;
	void (*hook)(void) = atomic_load(&probe_hook);
	if (hook != NULL)
		hook();
	if (!dre_producer_connected(p)
	    || dre_bus_cluster_id(&o->props, id, sizeof(id), 1000) != DRE_OK)
		return;
	pthread_mutex_lock(&o->mu);
	snprintf(old, sizeof(old), "%s", o->cluster);
	first = old[0] == '\0';
	same = strcmp(id, old) == 0;
	if (!same) {
		snprintf(o->cluster, sizeof(o->cluster), "%s", id);
		// The first cluster: what is kept (from before a restart of
		// ours, with no id stored) stays as it is.
		if (!first)
			o->republish = true;
	}
	pthread_mutex_unlock(&o->mu);
	if (same) {
		if (!log_behind(o, p))
			atomic_store(&o->stable_ms, wall_ms());
		return;
	}
	if (first) {
		dre_store_put(o->st, o->cf, cluster_key,
		    sizeof(cluster_key) - 1, id, strlen(id), false);
		atomic_store(&o->stable_ms, wall_ms());
		return;
	}
	dre_warn("outbox: Kafka cluster changed (%s -> %s): the acknowledged "
	         "events kept are published again",
	    old, id);
	dre_outbox_kick(o);
}

// probe_thread probes at once, then every PROBE_EVERY_MS until the outbox
// closes.
static void *
probe_thread(void *arg)
{
	dre_outbox *o = arg;
	dre_thread_name("outbox:probe", NULL);
	pthread_mutex_lock(&o->mu);
	while (!o->stop) {
		dre_producer *p = o->p;
		if (p != NULL) {
			o->probe_users++;
			pthread_mutex_unlock(&o->mu);
			probe(o, p);
			pthread_mutex_lock(&o->mu);
			if (--o->probe_users == 0)
				pthread_cond_broadcast(&o->probe_idle);
		}
		if (o->stop)
			break;
		struct timespec ts
		    = dre_timespec_after(CLOCK_REALTIME, PROBE_EVERY_MS);
		pthread_cond_timedwait(&o->probe_cv, &o->mu, &ts);
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

// requeue moves every kept entry back to pending and stores the new
// cluster id, in one batch: a crash before it is written finds the old id
// and does it again. Relay thread, nothing in flight, o->mu not held.
static dre_err
requeue(dre_outbox *o)
{
	uint8_t         pfx = KEPT_PREFIX;
	dre_store_iter *it = NULL;
	dre_err         e = dre_store_iter_open(&it, o->st, o->cf, &pfx, 1);
	if (e != DRE_OK)
		return e;
	dre_batch  *b = dre_batch_alloc();
	const char *k, *v;
	size_t      kl, vl;
	int64_t     n = 0;
	while (b != NULL && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		if (kl != KEPT_KEY_LEN)
			continue;
		dre_batch_put(b, o->st, o->cf, k + 9, 8, v, vl);
		dre_batch_delete(b, o->st, o->cf, k, kl);
		n++;
	}
	dre_store_iter_close(it);
	if (b == NULL)
		return DRE_ENOMEM;
	char cluster[128];
	pthread_mutex_lock(&o->mu);
	snprintf(cluster, sizeof(cluster), "%s", o->cluster);
	pthread_mutex_unlock(&o->mu);
	dre_batch_put(b, o->st, o->cf, cluster_key, sizeof(cluster_key) - 1,
	    cluster, strlen(cluster));
	e = dre_store_write(o->st, b, false);
	dre_batch_free(b);
	if (e == DRE_OK) {
		atomic_fetch_add(&o->pending, n);
		o->nkept -= n;
		if (o->nkept < 0)
			o->nkept = 0;
		atomic_store(&o->stable_ms, wall_ms());
		dre_info("outbox: %lld event(s) queued again", (long long) n);
	}
	return e;
}

static void
timed_wait(dre_outbox *o, int ms)
{
	if (o->nasync > 0) {
		// An asynchronous waiter's deadline comes first.
		int64_t left = o->next_deadline - now_ms();
		if (left < ms)
			ms = left < 1 ? 1 : (int) left;
	}
	struct timespec ts = dre_timespec_after(CLOCK_REALTIME, ms);
	pthread_cond_timedwait(&o->cv, &o->mu, &ts);
}

static void *
relay_thread(void *arg)
{
	dre_outbox *o = arg;
	dre_thread_name("outbox", NULL);
	pthread_mutex_lock(&o->mu);
	while (!o->stop) {
		if (o->nasync > 0 && now_ms() >= o->next_deadline) {
			ack_waiter *late = expire(o, now_ms());
			pthread_mutex_unlock(&o->mu);
			fire_waiters(late, false);
			pthread_mutex_lock(&o->mu);
		}
		if (o->ndels >= DELS_WAKE || now_ms() >= o->next_flush) {
			o->next_flush = now_ms() + FLUSH_EVERY_MS;
			flush_deletes(o);
		}
		if (now_ms() >= o->next_prune) {
			pthread_mutex_unlock(&o->mu);
			prune(o);
			pthread_mutex_lock(&o->mu);
		}
		bool idle = atomic_load(&o->inflight) == 0;
		if (o->log_lost && !o->republish) {
			dre_warn("outbox: the %lld acknowledged event(s) kept "
			         "are published again",
			    (long long) o->nkept);
			o->republish = true;
		}
		if (o->republish) {
			// Every report first: an entry the old cluster
			// acknowledged is kept before it is queued again, and
			// none is in flight twice.
			if (!idle) {
				timed_wait(o, IDLE_WAIT_MS);
				continue;
			}
			flush_deletes(o);
			pthread_mutex_unlock(&o->mu);
			dre_err e = requeue(o);
			pthread_mutex_lock(&o->mu);
			if (e != DRE_OK) {
				dre_warn(
				    "outbox: queueing kept events again: %s",
				    dre_strerror(e));
				timed_wait(o, BACKOFF_MAX_MS);
				continue;
			}
			o->republish = false;
			o->log_lost = false;
			o->ntps = 0; // offsets of the new log from here
			o->hole_skipped = true; // rescan from the start
			o->retry_at = now_ms();
		}
		if (o->retry_from != NO_SEQ || o->hole_skipped) {
			// Wait for every report before producing again, so no
			// entry is ever in flight twice.
			int64_t left = o->retry_at - now_ms();
			if (!idle || (o->retry_from != NO_SEQ && left > 0)) {
				timed_wait(
				    o, !idle ? IDLE_WAIT_MS : (int) left);
				continue;
			}
			if (o->p == NULL || dre_producer_fatal(o->p)) {
				dre_warn("outbox: reopening the producer");
				while (o->probe_users > 0)
					pthread_cond_wait(
					    &o->probe_idle, &o->mu);
				dre_producer *old = o->p, *np = NULL;
				o->p = NULL;
				pthread_mutex_unlock(&o->mu);
				dre_producer_close(old);
				dre_err e = dre_producer_open(
				    &np, &o->props, delivered, o);
				pthread_mutex_lock(&o->mu);
				o->p = np;
				if (e != DRE_OK) {
					o->retry_at
					    = now_ms() + BACKOFF_MAX_MS;
					if (o->retry_from == NO_SEQ)
						o->retry_from = 0;
					continue;
				}
			}
			// Acknowledged entries leave the store before it is
			// scanned again, so they are not produced twice.
			flush_deletes(o);
			o->cursor = o->hole_skipped ? 0 : o->retry_from;
			if (o->retry_from != NO_SEQ
			    && o->retry_from < o->cursor)
				o->cursor = o->retry_from;
			o->retry_from = NO_SEQ;
			o->hole_skipped = false;
		}
		if (atomic_load(&o->inflight) >= MAX_INFLIGHT) {
			timed_wait(o, IDLE_WAIT_MS);
			continue;
		}
		atomic_store(&o->kicked, false);
		pthread_mutex_unlock(&o->mu);
		int n = relay_scan(o);
		pthread_mutex_lock(&o->mu);
		if (n == 0 && !atomic_load(&o->kicked) && !o->stop
		    && o->ndels < DELS_WAKE)
			timed_wait(o, IDLE_WAIT_MS);
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

// outbox_collect sets the outbox's gauges before a metrics rendering.
static void
outbox_collect(void *arg)
{
	dre_outbox *o = arg;

	dre_metric_set(dre_metric_gauge("dre_outbox_pending_events",
	                   "events written to the outbox and not yet "
	                   "acknowledged by Kafka",
	                   NULL),
	    dre_outbox_pending(o));
	dre_metric_set(
	    dre_metric_gauge("dre_outbox_connected",
	        "1 while the outbox's producer reaches Kafka", NULL),
	    dre_outbox_connected(o) ? 1 : 0);
}

dre_err
dre_outbox_open(
    dre_outbox **op, dre_store *st, int cf, const dre_kvlist *props)
{
	dre_outbox *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return DRE_ENOMEM;
	if ((o->acked = malloc(ACK_RING * sizeof(*o->acked))) == NULL
	    || (o->topic_of = malloc(ACK_RING)) == NULL) {
		free(o->acked);
		free(o->topic_of);
		free(o);
		return DRE_ENOMEM;
	}
	memset(o->topic_of, NO_TOPIC, ACK_RING);
	for (size_t i = 0; i < ACK_RING; i++)
		atomic_init(&o->acked[i], NO_SEQ);
	o->st = st;
	o->cf = cf;
	o->retry_from = NO_SEQ;
	o->hole_seq = NO_SEQ;
	o->backoff_ms = BACKOFF_MIN_MS;
	o->next_deadline = INT64_MAX;
	for (size_t i = 0; props != NULL && i < props->n; i++)
		dre_kvlist_set(&o->props, props->keys[i], props->vals[i]);

	// Restart: count what is left and continue after the highest number.
	dre_store_iter *it = NULL;
	dre_err         e = dre_store_iter_open(&it, st, cf, NULL, 0);
	if (e != DRE_OK) {
		dre_kvlist_free(&o->props);
		free(o->acked);
		free(o->topic_of);
		free(o);
		return e;
	}
	const char *k, *v;
	size_t      kl, vl;
	uint64_t    lo = NO_SEQ, hi = 0;
	int64_t     count = 0;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		if (kl == 8) {
			uint64_t seq = (uint64_t) dre_be64_get(k);
			if (lo == NO_SEQ)
				lo = seq;
			if (seq + 1 > hi)
				hi = seq + 1;
			count++;
		} else if (kl == KEPT_KEY_LEN
		    && (uint8_t) k[0] == KEPT_PREFIX) {
			// Numbers go on after the kept entries too: they
			// return to pending under their own.
			uint64_t seq = (uint64_t) dre_be64_get(k + 9);
			if (seq + 1 > hi)
				hi = seq + 1;
			o->nkept++;
		} else if (kl == sizeof(cluster_key) - 1
		    && memcmp(k, cluster_key, kl) == 0
		    && vl < sizeof(o->cluster)) {
			memcpy(o->cluster, v, vl);
			o->cluster[vl] = '\0';
		}
	}
	dre_store_iter_close(it);
	atomic_init(&o->next_seq, hi);
	atomic_init(&o->pending, count);
	atomic_init(&o->inflight, 0);
	atomic_init(&o->kicked, false);
	o->cursor = lo == NO_SEQ ? hi : lo;
	// Every number below hi was written: no hole to wait for.
	o->produced_hw = hi;
	if (count > 0 || o->nkept > 0)
		dre_info("outbox: %lld pending and %lld acknowledged event(s) "
		         "from before",
		    (long long) count, (long long) o->nkept);

	if ((e = dre_producer_open(&o->p, &o->props, delivered, o))) {
		dre_kvlist_free(&o->props);
		free(o->acked);
		free(o->topic_of);
		free(o);
		return e;
	}
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	pthread_cond_init(&o->probe_cv, NULL);
	pthread_cond_init(&o->probe_idle, NULL);
	if (pthread_create(&o->thread, NULL, relay_thread, o) != 0) {
		dre_producer_close(o->p);
		pthread_cond_destroy(&o->probe_idle);
		pthread_cond_destroy(&o->probe_cv);
		pthread_cond_destroy(&o->cv);
		pthread_mutex_destroy(&o->mu);
		dre_kvlist_free(&o->props);
		free(o->acked);
		free(o->topic_of);
		free(o);
		return DRE_ENOMEM;
	}
	if (pthread_create(&o->probe_th, NULL, probe_thread, o) != 0) {
		// Nothing to probe with: the outbox works, but a dev broker
		// restarted empty is not noticed (a real Kafka keeps its log).
		dre_warn("outbox: cannot start the cluster probe");
	} else {
		o->probe_started = true;
	}
	dre_metrics_collector_add(outbox_collect, o);
	*op = o;
	return DRE_OK;
}

uint64_t
dre_outbox_put(dre_outbox *o, dre_batch *b, const char *topic, const void *key,
    size_t klen, const void *val, size_t vlen)
{
	size_t tl = strlen(topic);
	if (tl == 0 || tl > 255 || klen > UINT32_MAX) {
		// Programming error: the topic table has no such names.
		dre_error("outbox: bad topic \"%s\"", topic);
		abort();
	}
	size_t   n = 2 + tl + 4 + klen + vlen;
	uint8_t *v = malloc(n);
	if (v == NULL) {
		// Losing an event silently is worse than stopping.
		dre_error("outbox: out of memory");
		abort();
	}
	v[0] = (uint8_t) (tl >> 8);
	v[1] = (uint8_t) tl;
	memcpy(v + 2, topic, tl);
	uint8_t *kp = v + 2 + tl;
	kp[0] = (uint8_t) (klen >> 24);
	kp[1] = (uint8_t) (klen >> 16);
	kp[2] = (uint8_t) (klen >> 8);
	kp[3] = (uint8_t) klen;
	if (klen > 0)
		memcpy(kp + 4, key, klen);
	if (vlen > 0)
		memcpy(kp + 4 + klen, val, vlen);
	uint8_t  k[8];
	uint64_t seq = atomic_fetch_add(&o->next_seq, 1);
	dre_be64_put(k, (int64_t) seq);
	dre_batch_put(b, o->st, o->cf, k, sizeof(k), v, n);
	free(v);
	atomic_fetch_add(&o->pending, 1);
	return seq;
}

dre_err
dre_outbox_wait(dre_outbox *o, uint64_t seq, int timeout_ms)
{
	if (atomic_load(&o->acked[seq % ACK_RING]) == seq)
		return DRE_OK;
	struct timespec ts = dre_timespec_after(CLOCK_REALTIME, timeout_ms);
	ack_waiter      w = { seq, false, NULL };
	sem_init(&w.posted, 0, 0);
	// Registered first, then checked: a report that came before we looked
	// is in the ring, one that comes later (it marks waiters after the
	// ring, under the lock) finds w.
	ack_waiter **head = &o->waiters[seq % WAIT_BUCKETS];
	pthread_mutex_lock(&o->mu);
	bool acked = atomic_load(&o->acked[seq % ACK_RING]) == seq;
	if (!acked) {
		w.next = *head;
		*head = &w;
	}
	pthread_mutex_unlock(&o->mu);
	int r = 0;
	while (!acked && (r = sem_timedwait(&w.posted, &ts)) != 0
	    && errno == EINTR)
		;
	if (!acked && r != 0) {
		// Timed out: still linked unless the report came meanwhile.
		pthread_mutex_lock(&o->mu);
		acked = w.acked;
		for (ack_waiter **pp = head; !acked && *pp != NULL;
		     pp = &(*pp)->next)
			if (*pp == &w) {
				*pp = w.next;
				break;
			}
		pthread_mutex_unlock(&o->mu);
	} else {
		acked = true;
	}
	sem_destroy(&w.posted);
	return acked ? DRE_OK : DRE_ETIMEOUT;
}

dre_err
dre_outbox_wait_async(dre_outbox *o, uint64_t seq, int timeout_ms,
    dre_outbox_ack done, void *arg)
{
	if (atomic_load(&o->acked[seq % ACK_RING]) == seq) {
		done(arg, true);
		return DRE_OK;
	}
	ack_waiter *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return DRE_ENOMEM;
	w->seq = seq;
	w->done = done;
	w->arg = arg;
	w->deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	// Linked first, then checked, as in dre_outbox_wait.
	ack_waiter **head = &o->waiters[seq % WAIT_BUCKETS];
	pthread_mutex_lock(&o->mu);
	bool acked = atomic_load(&o->acked[seq % ACK_RING]) == seq;
	if (!acked) {
		w->next = *head;
		*head = w;
		o->nasync++;
		if (w->deadline < o->next_deadline) {
			// The relay may sleep longer (a back-off): it
			// recomputes its wait.
			o->next_deadline = w->deadline;
			pthread_cond_signal(&o->cv);
		}
	}
	pthread_mutex_unlock(&o->mu);
	if (acked) {
		free(w);
		done(arg, true);
	}
	return DRE_OK;
}

void
dre_outbox_kick(dre_outbox *o)
{
	// Kicked already and not yet seen by the relay: that kick wakes it.
	if (atomic_exchange(&o->kicked, true))
		return;
	pthread_mutex_lock(&o->mu);
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
}

int64_t
dre_outbox_pending(dre_outbox *o)
{
	return atomic_load(&o->pending);
}

bool
dre_outbox_connected(dre_outbox *o)
{
	pthread_mutex_lock(&o->mu);
	bool c = o->p != NULL && dre_producer_connected(o->p);
	pthread_mutex_unlock(&o->mu);
	return c;
}

void
dre_outbox_close(dre_outbox *o)
{
	if (o == NULL)
		return;
	dre_metrics_collector_remove(outbox_collect, o);
	pthread_mutex_lock(&o->mu);
	o->stop = true;
	pthread_cond_signal(&o->cv);
	pthread_cond_signal(&o->probe_cv);
	pthread_mutex_unlock(&o->mu);
	pthread_join(o->thread, NULL);
	if (o->probe_started)
		pthread_join(o->probe_th, NULL);
	// Reports still arriving while the producer closes touch o.
	dre_producer_close(o->p);
	pthread_mutex_lock(&o->mu);
	flush_deletes(o);
	ack_waiter *left = expire(o, INT64_MAX);
	pthread_mutex_unlock(&o->mu);
	fire_waiters(left, false);
	free(o->dels);
	free(o->tps);
	free(o->acked);
	free(o->topic_of);
	for (size_t i = 0; i < o->ntopics; i++)
		free(o->topics[i]);
	pthread_cond_destroy(&o->probe_idle);
	pthread_cond_destroy(&o->probe_cv);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	dre_kvlist_free(&o->props);
	free(o);
}
