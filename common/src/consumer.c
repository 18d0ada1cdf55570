// consumer.c -- the applier: state change + de-duplication key + consumed
// offsets in one synced RocksDB WriteBatch per batch of messages.
//
// One thread per applier polls, applies each message into an indexed
// batch, and writes the batch when it is full, old (max_batch_ms) or the
// consumer has nothing more right now. A transient failure drops the whole
// batch and seeks back to the stored positions; nothing is ever consumed
// without its effect, and no effect is written without its offset.
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dre/avro.h"
#include "dre/clock.h"
#include "dre/consumer.h"
#include "dre/hash.h"
#include "dre/log.h"
#include "dre/svc.h"
#include "dre/topics.h"
#include "dre/health.h"
#include "dre/metrics.h"

#define MAX_PARTS        65536 // partitions of all topics, a sanity bound
#define MAX_TOPICS       16
#define PROBE_EVERY_MS   5000
#define PRUNE_EVERY_MS   (3600 * 1000)
#define PRUNE_FIRST_MS   10000
#define PRUNE_CHUNK      10000
#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   5000
#define POLL_IDLE_MS     100
#define DEFAULT_BATCH    500
#define DEFAULT_BATCH_MS 5
#define DEFAULT_DEDUP_MS (8LL * 24 * 3600 * 1000)
#define NO_OFFSET        (-1) // position unknown: the log's beginning

typedef struct {
	char        topic[128];
	int32_t     partition;
	int64_t     committed; // next offset as stored; NO_OFFSET = beginning
	int64_t     next; // next offset including the open batch
	bool        assigned;
	dre_metric *m_lag; // dre_consumer_lag_messages of this partition
} ap_pos;

struct dre_applier {
	dre_applier_cfg cfg;
	dre_kvlist      kafka; // own copy
	char           *name;
	char           *group; // NULL = static
	dre_consumer   *c;
	pthread_t       th;
	atomic_bool     stop;
	atomic_bool     healthy;
	atomic_bool     resync;
	dre_batch      *b;
	dre_arena      *a;
	ap_pos         *pos; // npos of cap_pos (grown as partitions are found)
	size_t          npos, cap_pos;
	// pos by (topic, partition): open addressing, index + 1 (0: empty),
	// at most half full; a message's position is found without a scan.
	uint32_t             *pix;
	size_t                cap_pix;
	dre_partition_offset *po; // cap_pos, for the calls that list them
	int                   nmsgs; // in the open batch
	int64_t               opened_ms; // mono
	char                  cluster[128]; // of the stored positions
	bool                  have_kafka;
	bool                  recovered; // recover() ran at least once
	bool                  refresh; // a recovery at start is due
	int64_t               last_recover; // mono ms of the last recovery
	int64_t               next_refresh; // mono ms: no refresh before
	int                   refresh_backoff_ms;
	int64_t               next_probe;
	int64_t               next_prune;
	int                   backoff_ms;
	// The message that failed transiently last, to count its attempts.
	char    retry_topic[128];
	int32_t retry_part;
	int64_t retry_off;
	int     retry_count;

	pthread_mutex_t   stats_mu;
	dre_applier_stats stats;

	dre_snapshot_client *snap; // cfg.snapshot's; NULL = none
	bool                 registered; // its collector and health check
};

// ---- keys -------------------------------------------------------------

// tp_key writes prefix topic \0 partition(be32) into buf; 0 when too long.
static size_t
tp_key(char *buf, size_t cap, char prefix, const char *topic, int32_t part)
{
	size_t lt = strlen(topic);
	if (lt + 6 > cap)
		return 0;
	buf[0] = prefix;
	memcpy(buf + 1, topic, lt + 1);
	for (int i = 0; i < 4; i++)
		buf[2 + lt + i] = (char) ((uint32_t) part >> (24 - 8 * i));
	return lt + 6;
}

static void
stat_add(dre_applier *ap, int64_t *field, int64_t n)
{
	pthread_mutex_lock(&ap->stats_mu);
	*field += n;
	pthread_mutex_unlock(&ap->stats_mu);
}

// ---- positions ----------------------------------------------------------

static uint32_t
pos_hash(const char *topic, int32_t part)
{
	uint32_t h = dre_fnv1a32_str(DRE_FNV32_INIT, topic, 1);
	return dre_fnv1a32(h, &part, sizeof part);
}

static ap_pos *
pos_find(dre_applier *ap, const char *topic, int32_t part)
{
	if (ap->cap_pix == 0)
		return NULL;
	size_t mask = ap->cap_pix - 1;
	for (size_t i = pos_hash(topic, part) & mask; ap->pix[i] != 0;
	     i = (i + 1) & mask) {
		ap_pos *p = &ap->pos[ap->pix[i] - 1];
		if (p->partition == part && strcmp(p->topic, topic) == 0)
			return p;
	}
	return NULL;
}

// pix_put indexes pos[k] (the table has room).
static void
pix_put(dre_applier *ap, size_t k)
{
	size_t mask = ap->cap_pix - 1;
	size_t i = pos_hash(ap->pos[k].topic, ap->pos[k].partition) & mask;
	while (ap->pix[i] != 0)
		i = (i + 1) & mask;
	ap->pix[i] = (uint32_t) k + 1;
}

// pix_room makes the index hold n positions at most half full.
static bool
pix_room(dre_applier *ap, size_t n)
{
	if (2 * n <= ap->cap_pix)
		return true;
	size_t cap = ap->cap_pix ? ap->cap_pix : 128;
	while (2 * n > cap)
		cap *= 2;
	uint32_t *v = calloc(cap, sizeof(*v));
	if (v == NULL)
		return false;
	free(ap->pix);
	ap->pix = v;
	ap->cap_pix = cap;
	for (size_t k = 0; k < ap->npos; k++)
		pix_put(ap, k);
	return true;
}

static ap_pos *
pos_add(dre_applier *ap, const char *topic, int32_t part)
{
	ap_pos *p = pos_find(ap, topic, part);
	if (p != NULL)
		return p;
	if (ap->npos >= MAX_PARTS || strlen(topic) >= sizeof(p->topic)) {
		dre_error("%s: too many partitions", ap->name);
		return NULL;
	}
	if (ap->npos == ap->cap_pos) {
		size_t  cap = ap->cap_pos ? 2 * ap->cap_pos : 64;
		ap_pos *np = realloc(ap->pos, cap * sizeof(*np));
		if (np != NULL)
			ap->pos = np;
		dre_partition_offset *npo
		    = np ? realloc(ap->po, cap * sizeof(*npo)) : NULL;
		if (npo == NULL) {
			dre_error("%s: out of memory", ap->name);
			return NULL;
		}
		ap->po = npo;
		ap->cap_pos = cap;
	}
	if (!pix_room(ap, ap->npos + 1)) {
		dre_error("%s: out of memory", ap->name);
		return NULL;
	}
	p = &ap->pos[ap->npos++];
	memset(p, 0, sizeof(*p));
	snprintf(p->topic, sizeof(p->topic), "%s", topic);
	p->partition = part;
	pix_put(ap, ap->npos - 1);
	p->committed = p->next = NO_OFFSET;
	return p;
}

static bool
our_topic(const dre_applier *ap, const char *topic)
{
	for (size_t i = 0; i < ap->cfg.ntopics; i++)
		if (strcmp(ap->cfg.topics[i], topic) == 0)
			return true;
	return false;
}

// load_state reads the stored positions and cluster id.
static void
load_state(dre_applier *ap)
{
	char  *c = NULL;
	size_t cl = 0;
	if (dre_store_get(ap->cfg.st, ap->cfg.cf, "c", 1, &c, &cl) == DRE_OK)
		snprintf(
		    ap->cluster, sizeof(ap->cluster), "%.*s", (int) cl, c);
	free(c);
	dre_store_iter *it = NULL;
	if (dre_store_iter_open(&it, ap->cfg.st, ap->cfg.cf, "o", 1))
		return;
	const char *k, *v;
	size_t      kl, vl;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		if (kl > 6 && vl == 8) {
			const char *topic = k + 1;
			size_t      lt = strnlen(topic, kl - 1);
			if (lt + 6 != kl || !our_topic(ap, topic))
				continue;
			const uint8_t *pp = (const uint8_t *) k + 2 + lt;
			int32_t part = (int32_t) (((uint32_t) pp[0] << 24)
			    | ((uint32_t) pp[1] << 16)
			    | ((uint32_t) pp[2] << 8) | pp[3]);
			ap_pos *p = pos_add(ap, topic, part);
			if (p != NULL)
				p->committed = p->next = dre_be64_get(v);
		}
	}
	dre_store_iter_close(it);
}

// static_positions lists every partition of every topic (static mode).
static void
static_positions(dre_applier *ap)
{
	for (size_t t = 0; t < ap->cfg.ntopics; t++) {
		const dre_topic *tp = dre_topic_find(ap->cfg.topics[t]);
		int np = tp != NULL && tp->partitions > 0 ? tp->partitions : 1;
		for (int i = 0; i < np; i++)
			pos_add(ap, ap->cfg.topics[t], i);
	}
}

static bool
have_positions(const dre_applier *ap)
{
	for (size_t i = 0; i < ap->npos; i++)
		if (ap->pos[i].committed != NO_OFFSET)
			return true;
	return false;
}

static int64_t
start_offset(const ap_pos *p)
{
	return p->committed >= 0 ? p->committed : DRE_OFFSET_BEGINNING;
}

// batch_positions writes every changed position into the batch.
static void
batch_positions(dre_applier *ap, dre_batch *b, bool all)
{
	for (size_t i = 0; i < ap->npos; i++) {
		ap_pos *p = &ap->pos[i];
		char    key[160];
		size_t  kl
		    = tp_key(key, sizeof(key), 'o', p->topic, p->partition);
		if (kl == 0 || (!all && p->next == p->committed))
			continue;
		if (p->next == NO_OFFSET) {
			dre_batch_delete(b, ap->cfg.st, ap->cfg.cf, key, kl);
		} else {
			uint8_t be[8];
			dre_be64_put(be, p->next);
			dre_batch_put(
			    b, ap->cfg.st, ap->cfg.cf, key, kl, be, 8);
		}
	}
}

// ---- batches ------------------------------------------------------------

static void
batch_open(dre_applier *ap)
{
	if (ap->nmsgs > 0)
		return;
	if (ap->cfg.batch_begin != NULL)
		ap->cfg.batch_begin(ap->cfg.arg);
	ap->opened_ms = dre_mono_ms();
}

// rewind seeks every assigned partition back to its stored position.
static void
rewind_consumer(dre_applier *ap)
{
	dre_partition_offset *po = ap->po;
	size_t                n = 0;
	for (size_t i = 0; i < ap->npos; i++) {
		ap_pos *p = &ap->pos[i];
		p->next = p->committed;
		if (p->assigned)
			po[n++] = (dre_partition_offset) { p->topic,
				p->partition, start_offset(p) };
	}
	if (ap->c != NULL && n > 0
	    && dre_consumer_seek(ap->c, po, n) != DRE_OK) {
		// The consumer is reopened from the stored positions.
		dre_consumer_close(ap->c);
		ap->c = NULL;
	}
}

// batch_abort drops the open batch and everything it consumed.
static void
batch_abort(dre_applier *ap, dre_err err)
{
	dre_batch_clear(ap->b);
	dre_metrics_pending_discard();
	ap->nmsgs = 0;
	if (ap->cfg.batch_end != NULL)
		ap->cfg.batch_end(ap->cfg.arg, err);
	rewind_consumer(ap);
	stat_add(ap, &ap->stats.retries, 1);
}

// batch_commit writes the open batch with its positions, synced.
static void lag_update(dre_applier *ap);

static dre_err
batch_commit(dre_applier *ap)
{
	if (ap->nmsgs == 0)
		return DRE_OK;
	int n = ap->nmsgs;
	batch_positions(ap, ap->b, false);
	dre_err err = dre_store_write(ap->cfg.st, ap->b, true);
	if (err != DRE_OK) {
		dre_error("%s: writing a batch of %d: %s", ap->name, n,
		    dre_strerror(err));
		batch_abort(ap, err);
		return err;
	}
	for (size_t i = 0; i < ap->npos; i++)
		ap->pos[i].committed = ap->pos[i].next;
	dre_metrics_pending_commit();
	dre_batch_clear(ap->b);
	ap->nmsgs = 0;
	if (ap->cfg.batch_end != NULL)
		ap->cfg.batch_end(ap->cfg.arg, DRE_OK);
	pthread_mutex_lock(&ap->stats_mu);
	ap->stats.batches++;
	ap->stats.lag_hint = n;
	pthread_mutex_unlock(&ap->stats_mu);
	lag_update(ap);
	return DRE_OK;
}

// lag_update sets each partition's lag: its end offset as last fetched
// minus the next offset to apply (nothing while the end is unknown).
static void
lag_update(dre_applier *ap)
{
	for (size_t i = 0; i < ap->npos; i++) {
		ap_pos *p = &ap->pos[i];
		int64_t hi;
		if (!dre_consumer_high_watermark(
		        ap->c, p->topic, p->partition, &hi))
			continue;
		if (p->m_lag == NULL) {
			char lab[256], esc[160];
			dre_metric_label_escape(esc, sizeof(esc), p->topic);
			snprintf(lab, sizeof(lab),
			    "consumer=\"%s\",topic=\"%s\",partition=\"%d\"",
			    ap->name, esc, (int) p->partition);
			p->m_lag = dre_metric_gauge(
			    "dre_consumer_lag_messages",
			    "messages in the partition not yet applied", lab);
		}
		int64_t at = p->committed >= 0 ? p->committed : 0;
		dre_metric_set(p->m_lag, hi > at ? hi - at : 0);
	}
}

// applier_collect copies the applier's counters into its series.
static void
applier_collect(void *arg)
{
	dre_applier      *ap = arg;
	dre_applier_stats st;
	char              lab[96];

	dre_applier_stats_get(ap, &st);
	snprintf(lab, sizeof(lab), "consumer=\"%s\"", ap->name);
	dre_metric_set(dre_metric_counter("dre_consumer_applied_events_total",
	                   "events applied", lab),
	    st.applied);
	dre_metric_set(
	    dre_metric_counter("dre_consumer_duplicate_events_total",
	        "events recognised by eventId and skipped", lab),
	    st.duplicates);
	dre_metric_set(dre_metric_counter("dre_consumer_dead_letters_total",
	                   "messages that could not be applied", lab),
	    st.dead_letters);
	dre_metric_set(dre_metric_counter("dre_consumer_batches_total",
	                   "synced batches written", lab),
	    st.batches);
	dre_metric_set(dre_metric_gauge("dre_consumer_connected",
	                   "1 while the consumer reaches Kafka", lab),
	    atomic_load(&ap->healthy) ? 1 : 0);
}

static bool
applier_ready(void *arg)
{
	return dre_applier_healthy(arg);
}

static bool
is_poison(dre_err e)
{
	return e == DRE_ECODEC || e == DRE_EINVAL || e == DRE_EPARSE;
}

// handle applies one message into the open batch. An error return is
// transient: the caller drops the batch.
static dre_err
handle(dre_applier *ap, const dre_msg *m)
{
	if (m->topic == NULL)
		return DRE_OK;
	ap_pos *p = pos_find(ap, m->topic, m->partition);
	if (p == NULL && (p = pos_add(ap, m->topic, m->partition)) == NULL)
		return DRE_ENOMEM;
	if (p->next >= 0 && m->offset < p->next)
		return DRE_OK; // before our position: already applied
	batch_open(ap);
	ap->nmsgs++;
	p->next = m->offset + 1;

	char    id[37];
	char    dkey[40];
	size_t  dkl = 0;
	dre_err e = ap->cfg.idempotent
	    ? DRE_ENOTFOUND
	    : dre_avro_event_id(id, m->payload, m->len);
	if (e == DRE_OK) {
		char  *v = NULL;
		size_t vl = 0;
		dkey[0] = 'd';
		dkl = 1 + strlen(id);
		memcpy(dkey + 1, id, dkl - 1);
		e = dre_batch_get(
		    ap->b, ap->cfg.st, ap->cfg.cf, dkey, dkl, &v, &vl);
		free(v);
		if (e == DRE_OK) {
			stat_add(ap, &ap->stats.duplicates, 1);
			dre_debug("%s: event %s again (%s[%d]@%lld): skipped",
			    ap->name, id, m->topic, m->partition,
			    (long long) m->offset);
			return DRE_OK;
		}
		if (e != DRE_ENOTFOUND)
			return e;
	}

	int attempts = 1;
	if (ap->retry_count > 0 && ap->retry_part == m->partition
	    && ap->retry_off == m->offset
	    && strcmp(ap->retry_topic, m->topic) == 0)
		attempts = ap->retry_count + 1;
	dre_arena_reset(ap->a);
	dre_apply_ctx x = { .st = ap->cfg.st,
		.b = ap->b,
		.a = ap->a,
		.event_id = dkl ? id : NULL,
		.attempts = attempts,
		.now_ms = dre_now_ms() };
	size_t        before = dre_batch_count(ap->b);
	dre_batch_savepoint(ap->b);
	e = ap->cfg.apply(ap->cfg.arg, &x, m);
	if (e == DRE_OK) {
		// An event that changed nothing leaves no trace, not even its
		// id: applied again, it is applied as if it came only then.
		if (dkl > 0 && dre_batch_count(ap->b) > before) {
			uint8_t be[8];
			dre_be64_put(be, x.now_ms);
			dre_batch_put(
			    ap->b, ap->cfg.st, ap->cfg.cf, dkey, dkl, be, 8);
		}
		stat_add(ap, &ap->stats.applied, 1);
		return DRE_OK;
	}
	if (dre_batch_rollback(ap->b) != DRE_OK)
		return DRE_ESTORE;
	if (is_poison(e)) {
		char   key[192];
		size_t kl = tp_key(
		    key, sizeof(key) - 8, 'x', m->topic, m->partition);
		if (kl > 0) {
			dre_be64_put(key + kl, m->offset);
			dre_batch_put(ap->b, ap->cfg.st, ap->cfg.cf, key,
			    kl + 8, m->payload, m->len);
		}
		dre_error("%s: %s[%d]@%lld cannot be applied (%s): kept as a "
		          "dead letter, moving on",
		    ap->name, m->topic, m->partition, (long long) m->offset,
		    dre_strerror(e));
		stat_add(ap, &ap->stats.dead_letters, 1);
		return DRE_OK;
	}
	// Transient: remember the message to count its attempts.
	if (attempts == 1) {
		snprintf(
		    ap->retry_topic, sizeof(ap->retry_topic), "%s", m->topic);
		ap->retry_part = m->partition;
		ap->retry_off = m->offset;
		ap->retry_count = 0;
	}
	ap->retry_count++;
	dre_warn("%s: %s[%d]@%lld: %s (attempt %d): retrying the batch",
	    ap->name, m->topic, m->partition, (long long) m->offset,
	    dre_strerror(e), attempts);
	return e;
}

// ---- assignment and recovery -------------------------------------------

static void
backoff_sleep(dre_applier *ap)
{
	int ms = ap->backoff_ms;
	for (int waited = 0; waited < ms && !atomic_load(&ap->stop);
	     waited += 50) {
		struct timespec ts = { 0, 50 * 1000000L };
		nanosleep(&ts, NULL);
	}
	ap->backoff_ms = ap->backoff_ms * 2 > BACKOFF_MAX_MS
	    ? BACKOFF_MAX_MS
	    : ap->backoff_ms * 2;
}

// assign_static hands every partition to the consumer at its position.
static dre_err
assign_static(dre_applier *ap)
{
	dre_partition_offset *po = ap->po;
	for (size_t i = 0; i < ap->npos; i++) {
		ap->pos[i].assigned = true;
		ap->pos[i].next = ap->pos[i].committed;
		po[i] = (dre_partition_offset) { ap->pos[i].topic,
			ap->pos[i].partition, start_offset(&ap->pos[i]) };
	}
	return dre_consumer_assign_list(ap->c, po, ap->npos);
}

// recover replaces the positions (all of them, or only p) and, with a
// recover function, the service's state, in one synced batch. alarm: the
// positions were lost (else a first start or a refresh).
static dre_err
recover(dre_applier *ap, ap_pos *only, const char *why, bool alarm)
{
	dre_err e = batch_commit(ap);
	if (e != DRE_OK)
		return e;
	dre_log(alarm ? DRE_LOG_WARN : DRE_LOG_INFO, "%s: %s%s: recovering %s",
	    ap->name, alarm ? "ALARM: " : "", why,
	    ap->cfg.recover != NULL && ap->group == NULL
	        ? "from the owner's snapshot"
	        : "from the log's beginning (events already applied are "
	          "recognised by eventId)");
	// (its own list: rewind_consumer below fills ap->po)
	dre_partition_offset *po = malloc((ap->npos + 1) * sizeof(*po));
	if (po == NULL)
		return DRE_ENOMEM;
	for (size_t i = 0; i < ap->npos; i++)
		po[i] = (dre_partition_offset) { ap->pos[i].topic,
			ap->pos[i].partition, DRE_OFFSET_BEGINNING };
	if (ap->cfg.batch_begin != NULL)
		ap->cfg.batch_begin(ap->cfg.arg);
	dre_batch_clear(ap->b);
	if (ap->cfg.recover != NULL && ap->group == NULL) {
		ProtobufCMessage *snap = NULL;
		if (ap->snap != NULL)
			e = dre_snapshot_fetch(&snap, ap->snap);
		dre_arena_reset(ap->a);
		dre_apply_ctx x = { .st = ap->cfg.st,
			.b = ap->b,
			.a = ap->a,
			.attempts = 1,
			.now_ms = dre_now_ms(),
			.snapshot = snap };
		if (e == DRE_OK)
			e = ap->cfg.recover(ap->cfg.arg, &x, po, ap->npos);
		dre_snapshot_free(snap);
	}
	if (e == DRE_OK) {
		for (size_t i = 0; i < ap->npos; i++) {
			ap_pos *p = &ap->pos[i];
			if (only != NULL && p != only
			    && ap->cfg.recover == NULL)
				continue;
			p->next = po[i].offset >= 0 ? po[i].offset : NO_OFFSET;
		}
		batch_positions(ap, ap->b, true);
		if (ap->cluster[0] != '\0')
			dre_batch_put(ap->b, ap->cfg.st, ap->cfg.cf, "c", 1,
			    ap->cluster, strlen(ap->cluster));
		e = dre_store_write(ap->cfg.st, ap->b, true);
	}
	dre_batch_clear(ap->b);
	free(po);
	if (ap->cfg.batch_end != NULL)
		ap->cfg.batch_end(ap->cfg.arg, e);
	if (e != DRE_OK) {
		for (size_t i = 0; i < ap->npos; i++)
			ap->pos[i].next = ap->pos[i].committed;
		dre_warn("%s: recovery failed: %s (retrying)", ap->name,
		    dre_strerror(e));
		return e;
	}
	for (size_t i = 0; i < ap->npos; i++)
		ap->pos[i].committed = ap->pos[i].next;
	ap->recovered = true;
	ap->refresh = false;
	ap->last_recover = dre_mono_ms();
	ap->next_refresh = 0;
	ap->refresh_backoff_ms = BACKOFF_MIN_MS;
	stat_add(ap, &ap->stats.recoveries, 1);
	// Start over from the new positions: a seek of the partitions the
	// consumer holds (a consumer that cannot seek is reopened and assigned
	// afresh). Not a re-assignment: a log lost by a broker reports each
	// partition out of range, one recovery each, and librdkafka 2.0.2
	// asserts (rktp_started) when a partition is re-assigned while its
	// previous stop is still in progress.
	rewind_consumer(ap);
	return DRE_OK;
}

// grow_positions adds the partitions the cluster has beyond the known ones
// (static mode: a topic an operator created or grew with more partitions
// than dre_topics[] declares); they are read from their beginning. The
// consumer is opened again to be assigned them.
static void
grow_positions(dre_applier *ap, const int *counts)
{
	bool grown = false;
	for (size_t t = 0; ap->group == NULL && t < ap->cfg.ntopics; t++) {
		const char *topic = ap->cfg.topics[t];
		int         added = 0;
		for (int i = 0; i < counts[t]; i++)
			if (pos_find(ap, topic, i) == NULL) {
				if (pos_add(ap, topic, i) == NULL)
					break;
				added++;
			}
		if (added == 0)
			continue;
		dre_info("%s: %s has %d partitions: %d more read from their "
		         "beginning",
		    ap->name, topic, counts[t], added);
		grown = true;
	}
	if (!grown || ap->c == NULL)
		return;
	// (probe runs between batches: nothing is open)
	dre_consumer_close(ap->c);
	ap->c = NULL;
}

// probe compares the cluster id with the one the positions belong to and
// (static mode) finds partitions added to the applier's topics.
static void
probe(dre_applier *ap)
{
	ap->next_probe = dre_mono_ms() + PROBE_EVERY_MS;
	if (!ap->have_kafka)
		return;
	char id[128];
	int  counts[MAX_TOPICS] = { 0 };
	// A static applier also asks how many partitions its topics have.
	size_t nt = ap->group == NULL ? ap->cfg.ntopics : 0;
	bool   reached = dre_bus_cluster_info(&ap->kafka, id, sizeof(id),
	                     ap->cfg.topics, nt, counts, 1000)
	    == DRE_OK;
	atomic_store(&ap->healthy, reached);
	lag_update(ap);
	if (ap->cfg.probed != NULL)
		ap->cfg.probed(ap->cfg.arg, reached);
	if (!reached)
		return;
	grow_positions(ap, counts);
	if (ap->cluster[0] == '\0') {
		snprintf(ap->cluster, sizeof(ap->cluster), "%s", id);
		dre_store_put(
		    ap->cfg.st, ap->cfg.cf, "c", 1, id, strlen(id), true);
		return;
	}
	if (strcmp(id, ap->cluster) == 0)
		return;
	char why[320];
	snprintf(why, sizeof(why), "Kafka cluster changed (%s -> %s)",
	    ap->cluster, id);
	char old[128];
	snprintf(old, sizeof(old), "%s", ap->cluster);
	snprintf(ap->cluster, sizeof(ap->cluster), "%s", id);
	if (recover(ap, NULL, why, true) != DRE_OK) {
		snprintf(ap->cluster, sizeof(ap->cluster), "%s", old);
		ap->next_probe = dre_mono_ms() + ap->backoff_ms;
	}
}

static void
on_rebalance(void *arg, bool assign, dre_partition_offset *po, size_t n)
{
	dre_applier *ap = arg;
	if (!assign) {
		// Everything consumed from these partitions is written
		// before they go.
		if (batch_commit(ap) != DRE_OK)
			dre_warn("%s: batch lost at revoke; re-read by the "
			         "next owner",
			    ap->name);
		for (size_t i = 0; i < n; i++) {
			ap_pos *p = pos_find(ap, po[i].topic, po[i].partition);
			if (p != NULL)
				p->assigned = false;
		}
		return;
	}
	for (size_t i = 0; i < n; i++) {
		ap_pos *p = pos_add(ap, po[i].topic, po[i].partition);
		if (p == NULL)
			continue;
		// Re-read: another instance sharing nothing with us may have
		// run in between, but our store is the truth for our state.
		char   key[160];
		size_t kl
		    = tp_key(key, sizeof(key), 'o', p->topic, p->partition);
		char  *v = NULL;
		size_t vl = 0;
		p->committed = NO_OFFSET;
		if (kl > 0
		    && dre_store_get(ap->cfg.st, ap->cfg.cf, key, kl, &v, &vl)
		        == DRE_OK
		    && vl == 8)
			p->committed = dre_be64_get(v);
		free(v);
		p->next = p->committed;
		p->assigned = true;
		po[i].offset = start_offset(p);
	}
}

static dre_err
connect_consumer(dre_applier *ap)
{
	dre_err e;
	if (ap->group != NULL) {
		e = dre_consumer_open_group(
		    &ap->c, &ap->kafka, ap->group, on_rebalance, ap);
		if (e == DRE_OK)
			e = dre_consumer_subscribe(
			    ap->c, ap->cfg.topics, ap->cfg.ntopics);
	} else {
		e = dre_consumer_open(&ap->c, &ap->kafka, NULL);
		if (e == DRE_OK)
			e = assign_static(ap);
	}
	if (e != DRE_OK) {
		dre_consumer_close(ap->c);
		ap->c = NULL;
	}
	return e;
}

// prune deletes de-duplication keys older than the retention.
static void
prune(dre_applier *ap)
{
	ap->next_prune = dre_mono_ms() + PRUNE_EVERY_MS;
	int64_t         cutoff = dre_now_ms() - ap->cfg.dedup_retention_ms;
	dre_store_iter *it = NULL;
	if (dre_store_iter_open(&it, ap->cfg.st, ap->cfg.cf, "d", 1))
		return;
	dre_batch  *b = dre_batch_alloc();
	const char *k, *v;
	size_t      kl, vl;
	int64_t     n = 0;
	while (b != NULL && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		if (vl != 8 || dre_be64_get(v) >= cutoff)
			continue;
		dre_batch_delete(b, ap->cfg.st, ap->cfg.cf, k, kl);
		if (++n % PRUNE_CHUNK == 0) {
			dre_store_write(ap->cfg.st, b, false);
			dre_batch_clear(b);
		}
	}
	if (b != NULL && dre_batch_count(b) > 0)
		dre_store_write(ap->cfg.st, b, false);
	dre_batch_free(b);
	dre_store_iter_close(it);
	if (n > 0)
		dre_info("%s: pruned %lld de-duplication keys", ap->name,
		    (long long) n);
}

// refresh runs a recovery that is due without lost positions (at start,
// or while the cluster is away); a failure leaves the stored state in
// service and is retried after a back-off of its own.
static void
refresh(dre_applier *ap, int64_t now)
{
	const char *why = NULL;
	if (ap->cfg.recover == NULL || ap->group != NULL
	    || now < ap->next_refresh)
		return;
	if (ap->refresh)
		why = "start";
	else if (ap->cfg.resync_ms > 0 && !atomic_load(&ap->healthy)
	    && now - ap->last_recover >= ap->cfg.resync_ms)
		why = ap->have_kafka ? "Kafka cluster unreachable"
		                     : "no Kafka cluster";
	if (why == NULL || recover(ap, NULL, why, false) == DRE_OK)
		return;
	ap->next_refresh = now + ap->refresh_backoff_ms;
	ap->refresh_backoff_ms = ap->refresh_backoff_ms * 2 > BACKOFF_MAX_MS
	    ? BACKOFF_MAX_MS
	    : ap->refresh_backoff_ms * 2;
}

// ---- the thread ---------------------------------------------------------

static void *
applier_main(void *arg)
{
	dre_applier *ap = arg;
	dre_thread_name("ap", ap->cfg.name);
	while (!atomic_load(&ap->stop)) {
		int64_t now = dre_mono_ms();
		if (ap->nmsgs == 0 && now >= ap->next_probe)
			probe(ap);
		bool alarm = have_positions(ap) || ap->recovered;
		if (ap->nmsgs == 0 && atomic_exchange(&ap->resync, false)
		    && recover(ap, NULL,
		           alarm ? "resync requested" : "no stored positions",
		           alarm)
		        != DRE_OK) {
			atomic_store(&ap->resync, true);
			backoff_sleep(ap);
			continue;
		}
		if (ap->nmsgs == 0)
			refresh(ap, now);
		if (ap->c == NULL && connect_consumer(ap) != DRE_OK) {
			backoff_sleep(ap);
			continue;
		}
		if (ap->nmsgs == 0 && now >= ap->next_prune)
			prune(ap);
		dre_msg m;
		dre_err e = dre_consumer_poll(
		    ap->c, ap->nmsgs > 0 ? 0 : POLL_IDLE_MS, &m);
		if (e == DRE_OK) {
			if (handle(ap, &m) != DRE_OK) {
				batch_abort(ap, DRE_EUNAVAIL);
				backoff_sleep(ap);
				continue;
			}
			if (ap->nmsgs >= ap->cfg.max_batch
			    || dre_mono_ms() - ap->opened_ms
			        >= ap->cfg.max_batch_ms) {
				if (batch_commit(ap) == DRE_OK)
					ap->backoff_ms = BACKOFF_MIN_MS;
				else
					backoff_sleep(ap);
			}
			continue;
		}
		if (batch_commit(ap) != DRE_OK) {
			backoff_sleep(ap);
			continue;
		}
		if (e == DRE_ENOTFOUND) {
			ap_pos *p = m.topic
			    ? pos_find(ap, m.topic, m.partition)
			    : NULL;
			char    why[256];
			snprintf(why, sizeof(why),
			    "stored position of %s[%d] is gone from the log",
			    m.topic ? m.topic : "?", m.partition);
			if (recover(ap, p, why, true) != DRE_OK)
				backoff_sleep(ap);
		}
	}
	batch_commit(ap);
	return NULL;
}

dre_err
dre_applier_start(dre_applier **app, const dre_applier_cfg *cfg)
{
	if (cfg == NULL || cfg->apply == NULL || cfg->st == NULL
	    || cfg->ntopics == 0 || cfg->ntopics > MAX_TOPICS)
		return DRE_EINVAL;
	dre_applier *ap = calloc(1, sizeof(*ap));
	if (ap == NULL)
		return DRE_ENOMEM;
	ap->cfg = *cfg;
	if (ap->cfg.max_batch <= 0)
		ap->cfg.max_batch = DEFAULT_BATCH;
	if (ap->cfg.max_batch_ms <= 0)
		ap->cfg.max_batch_ms = DEFAULT_BATCH_MS;
	if (ap->cfg.dedup_retention_ms <= 0)
		ap->cfg.dedup_retention_ms = DEFAULT_DEDUP_MS;
	ap->name = strdup(cfg->name != NULL ? cfg->name : "applier");
	if (cfg->group_id != NULL && cfg->group_id[0] != '\0')
		ap->group = strdup(cfg->group_id);
	for (size_t i = 0; cfg->kafka != NULL && i < cfg->kafka->n; i++)
		dre_kvlist_set(
		    &ap->kafka, cfg->kafka->keys[i], cfg->kafka->vals[i]);
	ap->have_kafka
	    = dre_kvlist_get(&ap->kafka, "bootstrap.servers") != NULL;
	ap->b = dre_batch_alloc_indexed();
	ap->a = dre_arena_alloc(64 * 1024);
	pthread_mutex_init(&ap->stats_mu, NULL);
	ap->backoff_ms = ap->refresh_backoff_ms = BACKOFF_MIN_MS;
	ap->next_prune = dre_mono_ms() + PRUNE_FIRST_MS;
	if (ap->name == NULL || ap->b == NULL || ap->a == NULL
	    || (cfg->group_id && cfg->group_id[0] && ap->group == NULL)) {
		dre_applier_stop(ap);
		return DRE_ENOMEM;
	}
	dre_err err = cfg->snapshot != NULL
	    ? dre_snapshot_client_open(&ap->snap, cfg->snapshot)
	    : DRE_OK;
	if (err != DRE_OK) {
		dre_applier_stop(ap);
		return err;
	}
	load_state(ap);
	if (ap->group == NULL)
		static_positions(ap);
	// First probe now: a changed cluster is handled before anything is
	// consumed.
	probe(ap);
	if (ap->group == NULL && !have_positions(ap) && cfg->recover != NULL
	    && !ap->recovered)
		atomic_store(&ap->resync, true);
	ap->refresh = cfg->recover_at_start && !ap->recovered;
	if (!ap->have_kafka)
		dre_warn("%s: no kafka.bootstrap.servers: nothing to consume",
		    ap->name);
	if (pthread_create(&ap->th, NULL, applier_main, ap) != 0) {
		dre_applier_stop(ap);
		return DRE_ENOMEM;
	}
	dre_metrics_collector_add(applier_collect, ap);
	if (ap->have_kafka) {
		char check[160];
		snprintf(check, sizeof(check), "kafka:%s", ap->name);
		dre_health_add(check, applier_ready, ap);
	}
	ap->registered = true;
	*app = ap;
	return DRE_OK;
}

void
dre_applier_stop(dre_applier *ap)
{
	if (ap == NULL)
		return;
	if (ap->registered) {
		dre_metrics_collector_remove(applier_collect, ap);
		dre_health_remove(applier_ready, ap);
	}
	if (ap->th != 0) {
		atomic_store(&ap->stop, true);
		pthread_join(ap->th, NULL);
	}
	// Closing leaves the group; its revoke writes what is still open.
	dre_consumer_close(ap->c);
	ap->c = NULL;
	batch_commit(ap);
	dre_batch_free(ap->b);
	dre_arena_free(ap->a);
	dre_snapshot_client_close(ap->snap);
	dre_kvlist_free(&ap->kafka);
	pthread_mutex_destroy(&ap->stats_mu);
	free(ap->name);
	free(ap->group);
	free(ap->pos);
	free(ap->pix);
	free(ap->po);
	free(ap);
}

void
dre_applier_stats_get(dre_applier *ap, dre_applier_stats *out)
{
	pthread_mutex_lock(&ap->stats_mu);
	*out = ap->stats;
	pthread_mutex_unlock(&ap->stats_mu);
}

bool
dre_applier_healthy(dre_applier *ap)
{
	return atomic_load(&ap->healthy);
}

void
dre_applier_resync(dre_applier *ap)
{
	atomic_store(&ap->resync, true);
}
