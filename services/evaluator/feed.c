// feed.c -- keeps the engine's index current: catalog snapshot, then the
// dre.master.* change feed from the offsets the snapshot named, with a copy
// of everything (and the consumed offsets) in RocksDB for a fast restart.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dre/store.h"
#include "dre/avro.h"
#include "dre/bus.h"
#include "dre/clock.h"
#include "dre/log.h"
#include "dre/rpc.h"
#include "dre/svc.h"
#include "dre/topics.h"
#include "feed.h"
#include "master.pb-c.h"

#define MAX_POS             256
#define PROBE_EVERY_MS      5000
#define POLL_MS             100
#define BACKOFF_MIN_MS      250
#define BACKOFF_MAX_MS      10000
#define SNAPSHOT_TIMEOUT_MS 15000

static const char *const master_topics[] = { DRE_TOPIC_PROMOTIONS,
	DRE_TOPIC_ARTICLES, DRE_TOPIC_POS_GROUPS, DRE_TOPIC_ARTICLE_GROUPS };

// Keys of the "master" column family:
//   'e' kind \0 tenant \0 id  -> version (8, big endian) + document
//                                 (version only: a delete)
//   'o' topic \0 partition(4) -> next offset to consume (8)
//   'c'                       -> Kafka cluster id of those offsets
//   's'                       -> last sync with the source (epoch ms, 8)
typedef struct {
	char    topic[64];
	int32_t partition;
	int64_t offset; // next to consume; DRE_OFFSET_BEGINNING when unknown
} feed_pos;

struct ev_feed {
	ev_svc         *s;
	pthread_t       th;
	atomic_bool     running;
	dre_consumer   *c;
	dre_rpc_client *cat;
	bool            have_kafka; // bootstrap.servers configured
	char            cluster[128]; // of the offsets in pos
	feed_pos        pos[MAX_POS];
	size_t          npos;
	bool            need_snapshot;
	int64_t         next_snapshot; // mono ms
	int             backoff_ms;
	int64_t         last_snapshot; // mono ms of the last loaded snapshot
	int64_t         next_probe;
	dre_arena      *a; // per message
};

static size_t
ent_key(char *buf, size_t cap, dre_master_kind kind, const char *tenant,
    const char *id)
{
	const char *k = dre_master_kind_name(kind);
	size_t      lk = strlen(k), lt = strlen(tenant), li = strlen(id);
	if (lk + lt + li + 3 > cap)
		return 0;
	buf[0] = 'e';
	memcpy(buf + 1, k, lk + 1);
	memcpy(buf + 2 + lk, tenant, lt + 1);
	memcpy(buf + 3 + lk + lt, id, li);
	return 3 + lk + lt + li;
}

static size_t
pos_key(char *buf, size_t cap, const char *topic, int32_t partition)
{
	size_t lt = strlen(topic);
	if (lt + 6 > cap)
		return 0;
	buf[0] = 'o';
	memcpy(buf + 1, topic, lt + 1);
	for (int i = 0; i < 4; i++)
		buf[2 + lt + i]
		    = (char) ((uint32_t) partition >> (24 - 8 * i));
	return lt + 6;
}

static void
batch_ent(ev_feed *f, dre_batch *b, const dre_master_change *c)
{
	char   key[512];
	size_t klen = ent_key(key, sizeof(key), c->kind, c->tenant, c->key);
	if (klen == 0)
		return;
	size_t   vlen = 8 + (c->doc ? c->doc_len : 0);
	uint8_t *val = malloc(vlen);
	if (val == NULL)
		return;
	dre_be64_put(val, c->version);
	if (c->doc)
		memcpy(val + 8, c->doc, c->doc_len);
	dre_batch_put(b, f->s->st, EV_CF_MASTER, key, klen, val, vlen);
	free(val);
}

static void
batch_pos(ev_feed *f, dre_batch *b, const feed_pos *p)
{
	char    key[96];
	uint8_t be[8];
	size_t  klen = pos_key(key, sizeof(key), p->topic, p->partition);
	if (klen == 0)
		return;
	dre_be64_put(be, p->offset);
	dre_batch_put(b, f->s->st, EV_CF_MASTER, key, klen, be, 8);
}

static void
batch_sync(ev_feed *f, dre_batch *b, int64_t now)
{
	uint8_t be[8];
	dre_be64_put(be, now);
	dre_batch_put(b, f->s->st, EV_CF_MASTER, "s", 1, be, 8);
	atomic_store(&f->s->last_sync_ms, now);
}

static feed_pos *
pos_find(ev_feed *f, const char *topic, int32_t partition)
{
	for (size_t i = 0; i < f->npos; i++)
		if (f->pos[i].partition == partition
		    && strcmp(f->pos[i].topic, topic) == 0)
			return &f->pos[i];
	return NULL;
}

// pos_reset lists every partition of the master topics from the beginning.
static void
pos_reset(ev_feed *f)
{
	f->npos = 0;
	for (size_t t = 0; t < 4; t++) {
		const dre_topic *tp = dre_topic_find(master_topics[t]);
		int np = tp && tp->partitions > 0 ? tp->partitions : 1;
		for (int p = 0; p < np && f->npos < MAX_POS; p++) {
			feed_pos *x = &f->pos[f->npos++];
			snprintf(x->topic, sizeof(x->topic), "%s",
			    master_topics[t]);
			x->partition = p;
			x->offset = DRE_OFFSET_BEGINNING;
		}
	}
}

// ---- the local copy
// ------------------------------------------------------------

typedef struct {
	dre_master_change *v;
	size_t             n, cap;
} change_vec;

static bool
change_push(change_vec *cv, const dre_master_change *c)
{
	if (cv->n == cv->cap) {
		size_t             cap = cv->cap ? cv->cap * 2 : 256;
		dre_master_change *v = realloc(cv->v, cap * sizeof(*v));
		if (v == NULL)
			return false;
		cv->v = v;
		cv->cap = cap;
	}
	cv->v[cv->n++] = *c;
	return true;
}

static void
local_load(ev_feed *f)
{
	dre_store_iter *it;
	if (dre_store_iter_open(&it, f->s->st, EV_CF_MASTER, NULL, 0)
	    != DRE_OK)
		return;
	dre_arena  *a = dre_arena_alloc(1 << 20);
	change_vec  cv = { 0 };
	const char *k, *v;
	size_t      kl, vl;
	bool        have_pos = false;
	while (a != NULL && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		if (kl > 0 && k[0] == 'e' && vl >= 8) {
			const char *kind = k + 1;
			const char *t = memchr(kind, 0, kl - 1);
			const char *id = t
			    ? memchr(t + 1, 0, kl - (size_t) (t + 1 - k))
			    : NULL;
			if (id == NULL)
				continue;
			dre_master_change c = { 0 };
			if (dre_master_kind_parse(&c.kind, kind) != DRE_OK)
				continue;
			c.tenant = dre_arena_strdup(a, t + 1);
			c.key = dre_arena_strndup(
			    a, id + 1, kl - (size_t) (id + 1 - k));
			c.version = dre_be64_get((const uint8_t *) v);
			if (vl > 8) {
				c.doc = dre_arena_strndup(a, v + 8, vl - 8);
				c.doc_len = vl - 8;
			}
			if (c.tenant && c.key && (vl == 8 || c.doc))
				change_push(&cv, &c);
		} else if (kl > 6 && k[0] == 'o' && vl == 8) {
			const char *topic = k + 1;
			size_t      lt = strnlen(topic, kl - 1);
			if (lt + 6 != kl)
				continue;
			if (!have_pos) {
				pos_reset(f);
				have_pos = true;
			}
			const uint8_t *pp = (const uint8_t *) k + 2 + lt;
			int32_t   part = (int32_t) (((uint32_t) pp[0] << 24)
                            | ((uint32_t) pp[1] << 16)
                            | ((uint32_t) pp[2] << 8) | pp[3]);
			feed_pos *p = pos_find(f, topic, part);
			if (p != NULL)
				p->offset = dre_be64_get((const uint8_t *) v);
		} else if (kl == 1 && k[0] == 's' && vl == 8) {
			atomic_store(&f->s->last_sync_ms,
			    dre_be64_get((const uint8_t *) v));
		} else if (kl == 1 && k[0] == 'c') {
			snprintf(f->cluster, sizeof(f->cluster), "%.*s",
			    (int) vl, v);
		}
	}
	dre_store_iter_close(it);
	if (cv.n > 0) {
		size_t nbad = 0;
		if (dre_engine_load(
		        f->s->engine, cv.v, cv.n, dre_now_ms(), &nbad)
		    == DRE_OK) {
			atomic_store(&f->s->loaded, true);
			dre_info("local copy: %zu entities (%zu unreadable)",
			    cv.n, nbad);
		}
	}
	free(cv.v);
	dre_arena_free(a);
}

// ---- snapshot
// ------------------------------------------------------------------

// consumer_restart (re)assigns every master partition at its position.
static void
consumer_restart(ev_feed *f)
{
	dre_consumer_close(f->c);
	f->c = NULL;
	if (!f->have_kafka)
		return;
	dre_err err = dre_consumer_open(&f->c, &f->s->cfg.common.kafka, NULL);
	if (err != DRE_OK) {
		dre_warn("feed: consumer: %s", dre_strerror(err));
		return;
	}
	dre_partition_offset po[MAX_POS];
	for (size_t i = 0; i < f->npos; i++)
		po[i] = (dre_partition_offset) { f->pos[i].topic,
			f->pos[i].partition, f->pos[i].offset };
	if (dre_consumer_assign_list(f->c, po, f->npos) != DRE_OK) {
		dre_consumer_close(f->c);
		f->c = NULL;
	}
}

static dre_err
snapshot_take(ev_feed *f)
{
	if (f->cat == NULL
	    && dre_rpc_client_open(&f->cat, f->s->cfg.catalog_url) != DRE_OK)
		return DRE_EUNAVAIL;
	Dre__SnapshotRequest sr = DRE__SNAPSHOT_REQUEST__INIT;
	uint8_t              body[8];
	size_t               blen = dre__snapshot_request__pack(&sr, body);
	Dre__RpcRequest      rq = DRE__RPC_REQUEST__INIT;
	rq.method = "catalog.Snapshot";
	rq.has_body = true;
	rq.body.data = body;
	rq.body.len = blen;
	rq.tenant = "";
	rq.principal = "evaluator";
	Dre__RpcReply *rep = NULL;
	dre_err        err
	    = dre_rpc_call_sync(f->cat, &rq, SNAPSHOT_TIMEOUT_MS, &rep);
	if (err != DRE_OK)
		return err;
	if (rep->status != 200) {
		dre_warn("snapshot: catalog answered %d %s", rep->status,
		    rep->error_message ? rep->error_message : "");
		dre_rpc_reply_msg_free(rep);
		return DRE_EUNAVAIL;
	}
	Dre__SnapshotResponse *snap = dre__snapshot_response__unpack(
	    NULL, rep->has_body ? rep->body.len : 0, rep->body.data);
	dre_rpc_reply_msg_free(rep);
	if (snap == NULL)
		return DRE_ECODEC;

	dre_master_change *v = calloc(snap->n_entities + 1, sizeof(*v));
	size_t             n = 0;
	if (v == NULL) {
		dre__snapshot_response__free_unpacked(snap, NULL);
		return DRE_ENOMEM;
	}
	for (size_t i = 0; i < snap->n_entities; i++) {
		const Dre__MasterEntity *e = snap->entities[i];
		dre_master_change       *c = &v[n];
		if (dre_master_kind_parse(&c->kind, e->kind) != DRE_OK)
			continue;
		c->tenant = e->tenant;
		c->key = e->id;
		c->version = e->version;
		c->doc = (const char *) e->document.data;
		c->doc_len = e->document.len;
		if (c->doc == NULL) {
			c->doc = "";
			c->doc_len = 0;
		}
		n++;
	}
	size_t nbad = 0;
	err = dre_engine_load(f->s->engine, v, n, dre_now_ms(), &nbad);
	if (err != DRE_OK)
		goto out;

	// Positions: the snapshot's, else every partition from the start.
	pos_reset(f);
	for (size_t i = 0; i < snap->n_offsets; i++) {
		feed_pos *p = pos_find(
		    f, snap->offsets[i]->topic, snap->offsets[i]->partition);
		if (p != NULL)
			p->offset = snap->offsets[i]->offset;
	}
	snprintf(f->cluster, sizeof(f->cluster), "%s",
	    snap->cluster_id ? snap->cluster_id : "");

	// The local copy is replaced as a whole, in one batch.
	dre_batch      *b = dre_batch_alloc();
	dre_store_iter *it;
	if (b != NULL
	    && dre_store_iter_open(&it, f->s->st, EV_CF_MASTER, NULL, 0)
	        == DRE_OK) {
		const char *k, *val;
		size_t      kl, vl;
		while (dre_store_iter_next(it, &k, &kl, &val, &vl))
			dre_batch_delete(b, f->s->st, EV_CF_MASTER, k, kl);
		dre_store_iter_close(it);
		for (size_t i = 0; i < n; i++)
			batch_ent(f, b, &v[i]);
		for (size_t i = 0; i < f->npos; i++)
			batch_pos(f, b, &f->pos[i]);
		dre_batch_put(b, f->s->st, EV_CF_MASTER, "c", 1, f->cluster,
		    strlen(f->cluster));
		batch_sync(f, b, dre_now_ms());
		if (dre_store_write(f->s->st, b, false) != DRE_OK)
			dre_warn("snapshot: local copy not written");
	}
	dre_batch_free(b);
	dre_info("snapshot: %zu entities (%zu unreadable), version %lld, "
	         "%zu offsets",
	    n, nbad, (long long) snap->version, snap->n_offsets);
	atomic_store(&f->s->loaded, true);
	consumer_restart(f);
out:
	free(v);
	dre__snapshot_response__free_unpacked(snap, NULL);
	return err;
}

// ---- the change feed
// -------------------------------------------------------------

static void
message_apply(ev_feed *f, const dre_msg *m)
{
	feed_pos *p = pos_find(f, m->topic ? m->topic : "", m->partition);
	if (p == NULL)
		return;
	dre_arena_reset(f->a);
	dre_master_event ev;
	dre_err    err = dre_avro_decode_master(&ev, f->a, m->payload, m->len);
	dre_batch *b = dre_batch_alloc();
	if (b == NULL)
		return;
	if (err != DRE_OK) {
		dre_warn("feed: %s[%d]@%lld undecodable: skipped", m->topic,
		    m->partition, (long long) m->offset);
	} else {
		dre_master_change c = { 0 };
		bool              applied = false;
		c.tenant = ev.tenant;
		c.key = ev.entity_id;
		c.version = ev.version;
		bool del = ev.op != NULL && strcmp(ev.op, "DELETE") == 0;
		c.doc = del ? NULL : ev.document;
		c.doc_len = del ? 0 : ev.document_len;
		if (dre_master_kind_parse(&c.kind, ev.entity_kind) != DRE_OK
		    || c.tenant == NULL || c.key == NULL
		    || (!del && c.doc == NULL)) {
			dre_warn("feed: %s[%d]@%lld: bad event: skipped",
			    m->topic, m->partition, (long long) m->offset);
		} else {
			err = dre_engine_apply(
			    f->s->engine, &c, dre_now_ms(), &applied);
			if (err == DRE_EINVAL)
				dre_warn("feed: %s %s v%lld rejected: skipped",
				    ev.entity_kind, c.key,
				    (long long) c.version);
			else if (err != DRE_OK) {
				// Not consumed: retried after a re-snapshot.
				dre_error(
				    "feed: apply: %s", dre_strerror(err));
				f->need_snapshot = true;
				dre_batch_free(b);
				return;
			}
			if (applied)
				batch_ent(f, b, &c);
		}
	}
	p->offset = m->offset + 1;
	batch_pos(f, b, p);
	batch_sync(f, b, dre_now_ms());
	if (dre_store_write(f->s->st, b, false) != DRE_OK)
		dre_warn("feed: local copy not written");
	dre_batch_free(b);
}

static void
probe(ev_feed *f, int64_t now)
{
	f->next_probe = now + PROBE_EVERY_MS;
	if (!f->have_kafka)
		return;
	char    id[128];
	dre_err err = dre_bus_cluster_id(
	    &f->s->cfg.common.kafka, id, sizeof(id), 1000);
	if (err != DRE_OK) {
		atomic_store(&f->s->kafka_ok, false);
		atomic_fetch_add(&f->s->kafka_failures, 1);
		return;
	}
	atomic_store(&f->s->kafka_ok, true);
	atomic_store(&f->s->kafka_failures, 0);
	if (f->cluster[0] != '\0' && strcmp(id, f->cluster) != 0) {
		// A new cluster (a restarted embedded broker): our offsets
		// mean nothing there.
		dre_warn("feed: Kafka cluster changed (%s -> %s): re-snapshot",
		    f->cluster, id);
		f->need_snapshot = true;
		f->next_snapshot = now;
	}
	if (f->c == NULL && !f->need_snapshot)
		consumer_restart(f);
}

static void *
feed_main(void *arg)
{
	ev_feed *f = arg;
	while (atomic_load(&f->running) && !dre_svc_stopping()) {
		int64_t now = dre_mono_ms();
		if (now >= f->next_probe)
			probe(f, now);
		bool unhealthy = !f->have_kafka || f->c == NULL
		    || !atomic_load(&f->s->kafka_ok);
		if (unhealthy && !f->need_snapshot
		    && now - f->last_snapshot >= f->s->cfg.resnapshot_ms)
			f->need_snapshot = true; // the safety net
		if (f->need_snapshot && now >= f->next_snapshot) {
			dre_err err = snapshot_take(f);
			if (err == DRE_OK) {
				f->need_snapshot = false;
				f->backoff_ms = BACKOFF_MIN_MS;
				f->last_snapshot = dre_mono_ms();
			} else {
				dre_warn(
				    "snapshot from %s: %s (retry in %d ms)",
				    f->s->cfg.catalog_url, dre_strerror(err),
				    f->backoff_ms);
				f->next_snapshot = now + f->backoff_ms;
				f->backoff_ms
				    = f->backoff_ms * 2 > BACKOFF_MAX_MS
				    ? BACKOFF_MAX_MS
				    : f->backoff_ms * 2;
				// Meanwhile serve the local copy and follow
				// the feed from the positions stored with it.
				if (f->c == NULL && atomic_load(&f->s->loaded))
					consumer_restart(f);
			}
			continue;
		}
		if (f->c == NULL) {
			dre_svc_wait(POLL_MS);
			continue;
		}
		dre_msg m;
		dre_err err = dre_consumer_poll(f->c, POLL_MS, &m);
		if (err == DRE_OK)
			message_apply(f, &m);
		else if (err == DRE_ENOTFOUND) {
			f->need_snapshot = true;
			f->next_snapshot = now;
		}
	}
	return NULL;
}

static void
bootstrap_default(ev_svc *s)
{
	dre_kvlist *k = &s->cfg.common.kafka;
	if (dre_kvlist_get(k, "bootstrap.servers") != NULL)
		return;
	// The embedded broker writes its random port here.
	char path[1024];
	snprintf(
	    path, sizeof(path), "%s/broker/bootstrap", s->cfg.common.data_dir);
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return;
	char line[512];
	if (fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] != '\0')
			dre_kvlist_set(k, "bootstrap.servers", line);
	}
	fclose(fp);
}

dre_err
ev_feed_start(ev_svc *s)
{
	ev_feed *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return DRE_ENOMEM;
	f->s = s;
	f->a = dre_arena_alloc(64 * 1024);
	if (f->a == NULL) {
		free(f);
		return DRE_ENOMEM;
	}
	bootstrap_default(s);
	f->have_kafka
	    = dre_kvlist_get(&s->cfg.common.kafka, "bootstrap.servers")
	    != NULL;
	f->need_snapshot = true;
	f->backoff_ms = BACKOFF_MIN_MS;
	pos_reset(f);
	local_load(f);
	if (!f->have_kafka)
		dre_warn("feed: no kafka.bootstrap.servers: snapshots only");
	atomic_init(&f->running, true);
	if (pthread_create(&f->th, NULL, feed_main, f) != 0) {
		dre_arena_free(f->a);
		free(f);
		return DRE_ENOMEM;
	}
	s->feed = f;
	return DRE_OK;
}

void
ev_feed_stop(ev_svc *s)
{
	ev_feed *f = s->feed;
	if (f == NULL)
		return;
	atomic_store(&f->running, false);
	pthread_join(f->th, NULL);
	dre_consumer_close(f->c);
	dre_rpc_client_close(f->cat);
	dre_arena_free(f->a);
	free(f);
	s->feed = NULL;
}
