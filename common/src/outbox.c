// outbox.c -- transactional outbox: events in RocksDB, relayed to Kafka.
//
// An entry is key = 8-byte big-endian sequence number, value = u16 topic
// length, topic, u32 key length, key, payload (lengths big-endian). The relay
// thread produces entries in sequence order with at most MAX_INFLIGHT
// unanswered, deletes an entry when its delivery report says the broker has
// it (acks=all), and after a failed report waits until nothing is in flight,
// backs off and produces again from the lowest failed entry. An entry is
// only ever deleted after a successful delivery, so nothing is lost; a crash
// between delivery and delete produces it again (events carry an eventId).
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dre/bus.h"
#include "dre/log.h"

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

// A caller of dre_outbox_wait, on its own stack.
typedef struct ack_waiter ack_waiter;
struct ack_waiter {
	uint64_t    seq;
	bool        acked;
	ack_waiter *next;
};

struct dre_outbox {
	dre_store      *st;
	int             cf;
	dre_kvlist      props; // own copy, to reopen the producer
	dre_producer   *p;
	pthread_t       thread;
	pthread_mutex_t mu;
	pthread_cond_t  cv;

	atomic_uint_fast64_t next_seq; // next sequence number to hand out
	atomic_int_fast64_t  pending; // written and not acknowledged
	atomic_int           inflight; // produced, report outstanding

	// Under mu: shared between the relay and delivery reports.
	bool                  stop;
	bool                  kicked;
	ack_waiter           *waiters;
	pthread_cond_t        ack_cv;
	uint64_t             *dels; // acknowledged, to delete from the store
	size_t                ndels, capdels;
	atomic_uint_fast64_t *acked; // ACK_RING slots
	uint64_t retry_from; // lowest failed sequence, NO_SEQ = none
	int64_t  retry_at; // monotonic ms
	int      backoff_ms;

	// Relay thread only.
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

// delivered runs on the producer's poll thread for every produced entry.
static void
delivered(void *arg, dre_err err, void *msg_opaque, int32_t partition,
    int64_t offset)
{
	dre_outbox *o = arg;
	uint64_t    seq = (uint64_t) (uintptr_t) msg_opaque;
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
		o->backoff_ms = BACKOFF_MIN_MS;
		bool woke = false;
		for (ack_waiter *w = o->waiters; w != NULL; w = w->next)
			if (w->seq == seq) {
				w->acked = true;
				woke = true;
			}
		if (woke)
			pthread_cond_broadcast(&o->ack_cv);
	} else {
		if (o->retry_from == NO_SEQ || seq < o->retry_from)
			o->retry_from = seq;
		o->retry_at = now_ms() + o->backoff_ms;
	}
	atomic_fetch_sub(&o->inflight, 1);
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
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
		if (kl != 8)
			continue;
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

// flush_deletes removes acknowledged entries from the store in one batch;
// called with o->mu held, drops it meanwhile. Not synced: an entry whose
// delete is lost in a crash is produced once more, which consumers
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
	for (size_t i = 0; b != NULL && i < n; i++) {
		uint8_t k[8];
		dre_be64_put(k, (int64_t) v[i]);
		dre_batch_delete(b, o->st, o->cf, k, sizeof(k));
	}
	if (b == NULL || dre_store_write(o->st, b, false) != DRE_OK)
		dre_warn("outbox: %zu acknowledged entries not deleted (they "
		         "are produced again after a restart)",
		    n);
	dre_batch_free(b);
	free(v);
	pthread_mutex_lock(&o->mu);
}

static void
timed_wait(dre_outbox *o, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long) (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&o->cv, &o->mu, &ts);
}

static void *
relay_thread(void *arg)
{
	dre_outbox *o = arg;
	pthread_mutex_lock(&o->mu);
	while (!o->stop) {
		flush_deletes(o);
		bool idle = atomic_load(&o->inflight) == 0;
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
		o->kicked = false;
		pthread_mutex_unlock(&o->mu);
		int n = relay_scan(o);
		pthread_mutex_lock(&o->mu);
		if (n == 0 && !o->kicked && !o->stop && o->ndels == 0)
			timed_wait(o, IDLE_WAIT_MS);
	}
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

dre_err
dre_outbox_open(
    dre_outbox **op, dre_store *st, int cf, const dre_kvlist *props)
{
	dre_outbox *o = calloc(1, sizeof(*o));
	if (o == NULL)
		return DRE_ENOMEM;
	if ((o->acked = malloc(ACK_RING * sizeof(*o->acked))) == NULL) {
		free(o);
		return DRE_ENOMEM;
	}
	for (size_t i = 0; i < ACK_RING; i++)
		atomic_init(&o->acked[i], NO_SEQ);
	o->st = st;
	o->cf = cf;
	o->retry_from = NO_SEQ;
	o->hole_seq = NO_SEQ;
	o->backoff_ms = BACKOFF_MIN_MS;
	for (size_t i = 0; props != NULL && i < props->n; i++)
		dre_kvlist_set(&o->props, props->keys[i], props->vals[i]);

	// Restart: count what is left and continue after the highest number.
	dre_store_iter *it = NULL;
	dre_err         e = dre_store_iter_open(&it, st, cf, NULL, 0);
	if (e != DRE_OK) {
		dre_kvlist_free(&o->props);
		free(o->acked);
		free(o);
		return e;
	}
	const char *k;
	size_t      kl;
	uint64_t    lo = NO_SEQ, hi = 0;
	int64_t     count = 0;
	while (dre_store_iter_next(it, &k, &kl, NULL, NULL)) {
		if (kl != 8)
			continue;
		uint64_t seq = (uint64_t) dre_be64_get(k);
		if (lo == NO_SEQ)
			lo = seq;
		hi = seq + 1;
		count++;
	}
	dre_store_iter_close(it);
	atomic_init(&o->next_seq, hi);
	atomic_init(&o->pending, count);
	atomic_init(&o->inflight, 0);
	o->cursor = lo == NO_SEQ ? hi : lo;
	o->produced_hw = o->cursor;
	if (count > 0)
		dre_info("outbox: %lld pending event(s) from before",
		    (long long) count);

	if ((e = dre_producer_open(&o->p, &o->props, delivered, o))) {
		dre_kvlist_free(&o->props);
		free(o->acked);
		free(o);
		return e;
	}
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->cv, NULL);
	pthread_cond_init(&o->ack_cv, NULL);
	if (pthread_create(&o->thread, NULL, relay_thread, o) != 0) {
		dre_producer_close(o->p);
		pthread_cond_destroy(&o->ack_cv);
		pthread_cond_destroy(&o->cv);
		pthread_mutex_destroy(&o->mu);
		dre_kvlist_free(&o->props);
		free(o->acked);
		free(o);
		return DRE_ENOMEM;
	}
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
	ack_waiter w = { seq, false, NULL };
	// Registered first, then checked: a report that came before we looked
	// is in the ring, one that comes later (it marks waiters after the
	// ring, under the lock) finds w.
	pthread_mutex_lock(&o->mu);
	w.next = o->waiters;
	o->waiters = &w;
	w.acked = atomic_load(&o->acked[seq % ACK_RING]) == seq;
	pthread_mutex_unlock(&o->mu);

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&o->mu);
	while (!w.acked && !o->stop
	    && pthread_cond_timedwait(&o->ack_cv, &o->mu, &ts) == 0)
		;
	for (ack_waiter **pp = &o->waiters; *pp != NULL; pp = &(*pp)->next)
		if (*pp == &w) {
			*pp = w.next;
			break;
		}
	bool acked = w.acked;
	pthread_mutex_unlock(&o->mu);
	return acked ? DRE_OK : DRE_ETIMEOUT;
}

void
dre_outbox_kick(dre_outbox *o)
{
	pthread_mutex_lock(&o->mu);
	o->kicked = true;
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
	pthread_mutex_lock(&o->mu);
	o->stop = true;
	pthread_cond_signal(&o->cv);
	pthread_mutex_unlock(&o->mu);
	pthread_join(o->thread, NULL);
	// Reports still arriving while the producer closes touch o.
	dre_producer_close(o->p);
	pthread_mutex_lock(&o->mu);
	flush_deletes(o);
	pthread_mutex_unlock(&o->mu);
	free(o->dels);
	free(o->acked);
	pthread_cond_destroy(&o->ack_cv);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->mu);
	dre_kvlist_free(&o->props);
	free(o);
}
