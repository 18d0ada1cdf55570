// feed.c -- keeps the engine's index current: a follower of the catalog
// (dre/consumer.h). A catalog snapshot, then the dre.master.* change feed
// from the offsets the snapshot named, with a copy of everything (and the
// consumed offsets) in RocksDB for a fast restart. The changes of a batch
// are staged in the engine and published in one swap once the batch is
// written, so what an evaluation (or AwaitChanges) sees is always stored.
#define _GNU_SOURCE // pthread_setname_np
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/avro.h"
#include "dre/clock.h"
#include "dre/consumer.h"
#include "dre/log.h"
#include "dre/snapshot.h"
#include "dre/store.h"
#include "dre/topics.h"
#include "feed.h"
#include "master.pb-c.h"

static const char *const master_topics[] = { DRE_TOPIC_PROMOTIONS,
	DRE_TOPIC_ARTICLES, DRE_TOPIC_POS_GROUPS, DRE_TOPIC_ARTICLE_GROUPS };

// Keys of the "master" column family, beside the applier's own ('o'
// positions, 'c' cluster id, 'x' dead letters: dre/consumer.h):
//   'e' kind \0 tenant \0 id  -> version (8, big endian) + document
//                                 (version only: a delete)
//   's'                       -> last sync with the source (epoch ms, 8)
struct ev_feed {
	ev_svc              *s;
	dre_applier         *ap;
	dre_snapshot_client *snap; // the catalog's (the feed fetches it)
	// The open batch (applier thread only).
	int64_t  sync_ms; // when it synced with the source; 0 = not
	bool     snapshot; // it loads a snapshot
	bool     compact_off; // the copy's automatic compactions are off
	uint8_t *val; // batch_ent's value, reused (applier thread only)
	size_t   val_cap;
};

static size_t
ent_key(char *buf, size_t cap, eng_master_kind kind, const char *tenant,
    const char *id)
{
	const char *k = eng_master_kind_name(kind);
	size_t      lk = strlen(k), lt = strlen(tenant), li = strlen(id);
	if (lk + lt + li + 3 > cap)
		return 0;
	buf[0] = 'e';
	memcpy(buf + 1, k, lk + 1);
	memcpy(buf + 2 + lk, tenant, lt + 1);
	memcpy(buf + 3 + lk + lt, id, li);
	return 3 + lk + lt + li;
}

static void
batch_ent(ev_feed *f, dre_batch *b, const eng_master_change *c)
{
	char   key[512];
	size_t klen = ent_key(key, sizeof(key), c->kind, c->tenant, c->key);
	if (klen == 0)
		return;
	size_t vlen = 8 + (c->doc ? c->doc_len : 0);
	if (vlen > f->val_cap) {
		size_t   cap = vlen < 4096 ? 4096 : vlen * 2;
		uint8_t *v = realloc(f->val, cap);
		if (v == NULL)
			return;
		f->val = v;
		f->val_cap = cap;
	}
	dre_be64_put(f->val, c->version);
	if (c->doc)
		memcpy(f->val + 8, c->doc, c->doc_len);
	dre_batch_put(b, f->s->st, EV_CF_MASTER, key, klen, f->val, vlen);
}

static void
batch_sync(ev_feed *f, dre_batch *b, int64_t now)
{
	uint8_t be[8];
	dre_be64_put(be, now);
	dre_batch_put(b, f->s->st, EV_CF_MASTER, "s", 1, be, 8);
	f->sync_ms = now;
}

// ---- the local copy
// ------------------------------------------------------------

// local_load loads the local copy into the engine, entity by entity as it
// is read (the documents are not kept: only what the index holds); true
// when there was a complete one.
static bool
local_load(ev_feed *f)
{
	char  *s = NULL;
	size_t sl = 0;
	if (dre_store_get(f->s->st, EV_CF_MASTER, "i", 1, &s, &sl) == DRE_OK) {
		free(s);
		dre_warn("local copy incomplete (a snapshot was interrupted "
		         "while it was written): not loaded");
		return false;
	}
	if (dre_store_get(f->s->st, EV_CF_MASTER, "s", 1, &s, &sl) == DRE_OK
	    && sl == 8)
		atomic_store(
		    &f->s->last_sync_ms, dre_be64_get((const uint8_t *) s));
	free(s);
	dre_store_iter *it;
	if (dre_store_iter_open(&it, f->s->st, EV_CF_MASTER, "e", 1) != DRE_OK)
		return false;
	eng_loader *l = NULL;
	size_t      n = 0;
	dre_err     err = eng_loader_open(&l);
	const char *k, *v;
	size_t      kl, vl;
	while (err == DRE_OK && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		const char *kind = k + 1;
		const char *t = memchr(kind, 0, kl - 1);
		const char *id
		    = t ? memchr(t + 1, 0, kl - (size_t) (t + 1 - k)) : NULL;
		char   key[512];
		size_t idl = id ? kl - (size_t) (id + 1 - k) : 0;
		if (id == NULL || vl < 8 || idl >= sizeof(key))
			continue;
		eng_master_change c = { 0 };
		if (eng_master_kind_parse(&c.kind, kind) != DRE_OK)
			continue;
		memcpy(key, id + 1, idl);
		key[idl] = '\0';
		c.tenant = t + 1;
		c.key = key;
		c.version = dre_be64_get((const uint8_t *) v);
		if (vl > 8) {
			c.doc = v + 8;
			c.doc_len = vl - 8;
		}
		err = eng_loader_add(l, &c, 1);
		n++;
	}
	dre_store_iter_close(it);
	bool loaded = false;
	if (err == DRE_OK && n > 0) {
		size_t nbad = eng_loader_bad(l);
		err = eng_loader_finish(f->s->engine, l, dre_now_ms(), true);
		l = NULL;
		if (err == DRE_OK) {
			atomic_store(&f->s->loaded, true);
			loaded = true;
			dre_info("local copy: %zu entities (%zu unreadable)",
			    n, nbad);
		}
	}
	eng_loader_free(l);
	// What the load freed (the JSON scratch, RocksDB's blocks): give the
	// pages back.
	malloc_trim(0);
	return loaded;
}

// ---- the follower ------------------------------------------------------

// The local copy's writer: a thread that writes a page's batch into
// RocksDB (its memtable) while the applier compiles the next page, one
// page behind at most.
typedef struct {
	dre_store      *st;
	pthread_t       th;
	pthread_mutex_t mu;
	pthread_cond_t  cv;
	dre_batch      *pending; // being written; NULL: idle
	bool            stop;
	dre_err         err; // the first write's error
} copy_writer;

static void *
copy_writer_main(void *arg)
{
	copy_writer *w = arg;
	pthread_setname_np(pthread_self(), "feed:copy");
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (w->pending == NULL && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->pending == NULL)
			break;
		dre_batch *b = w->pending;
		pthread_mutex_unlock(&w->mu);
		dre_err err = dre_store_write_bulk(w->st, b);
		dre_batch_clear(b);
		pthread_mutex_lock(&w->mu);
		if (err != DRE_OK && w->err == DRE_OK)
			w->err = err;
		w->pending = NULL;
		pthread_cond_broadcast(&w->cv);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

// copy_writer_wait waits until w is idle; the first error of its writes.
static dre_err
copy_writer_wait(copy_writer *w)
{
	pthread_mutex_lock(&w->mu);
	while (w->pending != NULL)
		pthread_cond_wait(&w->cv, &w->mu);
	dre_err err = w->err;
	pthread_mutex_unlock(&w->mu);
	return err;
}

// A snapshot being loaded, page by page.
typedef struct {
	ev_feed              *f;
	eng_loader           *l;
	dre_batch            *b; // the local copy's page being made
	dre_batch            *b2; // the other: the writer's
	copy_writer           w;
	bool                  writer; // w's thread runs
	size_t                n; // entities seen
	size_t                npages;
	dre_partition_offset *po;
	size_t                npo;
	int64_t               version;
	size_t                noffsets;
} snap_load;

// copy_write writes the local copy's batch: the first (the incomplete
// mark, the old copy's deletion) logged, here; the pages without the
// write-ahead log (a bulk load: half the bytes written), by the writer
// while the next page is compiled; all flushed before the positions are
// written.
static dre_err
copy_write(snap_load *sl, bool logged)
{
	if (logged || !sl->writer) {
		dre_err err = logged
		    ? dre_store_write(sl->f->s->st, sl->b, false)
		    : dre_store_write_bulk(sl->f->s->st, sl->b);
		dre_batch_clear(sl->b);
		return err;
	}
	dre_err err = copy_writer_wait(&sl->w); // (then b2 is cleared)
	if (err != DRE_OK)
		return err;
	pthread_mutex_lock(&sl->w.mu);
	sl->w.pending = sl->b;
	pthread_cond_broadcast(&sl->w.cv);
	pthread_mutex_unlock(&sl->w.mu);
	dre_batch *b = sl->b;
	sl->b = sl->b2;
	sl->b2 = b;
	return DRE_OK;
}

// copy_writer_start starts sl's writer (without one the pages are written
// by the applier).
static void
copy_writer_start(snap_load *sl)
{
	copy_writer *w = &sl->w;
	w->st = sl->f->s->st;
	if ((sl->b2 = dre_batch_alloc()) == NULL)
		return;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->th, NULL, copy_writer_main, w) != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		return;
	}
	sl->writer = true;
}

// copy_writer_stop waits for the last page's write and ends the writer;
// the first error of its writes.
static dre_err
copy_writer_stop(snap_load *sl)
{
	dre_err err = DRE_OK;
	if (sl->writer) {
		copy_writer *w = &sl->w;
		err = copy_writer_wait(w);
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->th, NULL);
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		sl->writer = false;
	}
	dre_batch_free(sl->b2);
	sl->b2 = NULL;
	return err;
}

// snap_page consumes one page of the catalog's snapshot: its entities into
// the loader and into the local copy (one write a page: bounded by the
// page's size, snapshot.page_bytes); the next page reuses its memory.
static dre_err
snap_page(void *arg, const Dre__SnapshotResponse *pg, bool first, bool last)
{
	snap_load *sl = arg;
	dre_err    err = DRE_OK;
	(void) last;
	if (first) {
		// The local copy is replaced as a whole: marked incomplete
		// until the positions are written with the last of it, so a
		// crash in between restarts from a snapshot, not from part of
		// one.
		dre_batch_put(
		    sl->b, sl->f->s->st, EV_CF_MASTER, "i", 1, "", 0);
		err = dre_snapshot_wipe(
		    sl->b, sl->f->s->st, EV_CF_MASTER, "e");
		if (err == DRE_OK)
			err = copy_write(sl, true);
		dre_snapshot_positions(
		    sl->po, sl->npo, pg->offsets, pg->n_offsets);
		sl->version = pg->version;
		sl->noffsets = pg->n_offsets;
	}
	for (size_t i = 0; err == DRE_OK && i < pg->n_entities; i++) {
		const Dre__MasterEntity *e = pg->entities[i];
		eng_master_change        c = { 0 };
		if (eng_master_kind_parse(&c.kind, e->kind) != DRE_OK)
			continue;
		c.tenant = e->tenant;
		c.key = e->id;
		c.version = e->version;
		c.doc
		    = e->document.data ? (const char *) e->document.data : "";
		c.doc_len = e->document.len;
		sl->n++;
		if ((err = eng_loader_add(sl->l, &c, 1)) != DRE_OK)
			break;
		batch_ent(sl->f, sl->b, &c);
	}
	if (err == DRE_OK)
		err = copy_write(sl, false);
	if (err == DRE_OK)
		dre_info("snapshot: page %zu (%zu entities) indexed and "
		         "written (its writer one page behind), %zu so far",
		    ++sl->npages, pg->n_entities, sl->n);
	return err;
}

// snapshot replaces the index (staged) and the local copy by the catalog's
// snapshot and sets the positions it names. The pages are consumed as they
// arrive: the index keeps what it compiled of them, the local copy is
// written a page at a time (without the WAL) and flushed; the sync time,
// the positions and the end of the incomplete mark are x->b, written synced
// by the applier after that.
static dre_err
snapshot(void *arg, dre_apply_ctx *x, dre_partition_offset *po, size_t n)
{
	ev_feed  *f = arg;
	snap_load sl = { .f = f, .po = po, .npo = n };
	if (f->snap == NULL)
		return DRE_EUNAVAIL;
	sl.b = dre_batch_alloc();
	if (sl.b == NULL)
		return DRE_ENOMEM;
	// The copy's files are compacted once it is written, not while it
	// is (hundreds of MB at scale: again and again), and once the index
	// is published (batch_end), not while it is built.
	(void) dre_store_auto_compact(f->s->st, EV_CF_MASTER, false);
	f->compact_off = true;
	copy_writer_start(&sl);
	dre_err err = eng_loader_open(&sl.l);
	if (err == DRE_OK)
		err = dre_snapshot_fetch_pages(f->snap, snap_page, &sl);
	dre_err werr = copy_writer_stop(&sl);
	if (err == DRE_OK)
		err = werr;
	// The pages' writes are on disk before the positions are written.
	if (err == DRE_OK)
		err = dre_store_flush(f->s->st, EV_CF_MASTER);
	size_t nbad = sl.l != NULL ? eng_loader_bad(sl.l) : 0;
	if (err == DRE_OK) {
		err = eng_loader_finish(f->s->engine, sl.l, x->now_ms, false);
		sl.l = NULL;
	}
	eng_loader_free(sl.l);
	dre_batch_free(sl.b);
	if (err != DRE_OK)
		return err;
	dre_batch_delete(x->b, f->s->st, EV_CF_MASTER, "i", 1);
	batch_sync(f, x->b, x->now_ms);
	f->snapshot = true;
	dre_info("snapshot: %zu entities (%zu unreadable), version %lld, "
	         "%zu offsets",
	    sl.n, nbad, (long long) sl.version, sl.noffsets);
	return DRE_OK;
}

// change stages one change of the feed and records it in the local copy.
static dre_err
change(void *arg, dre_apply_ctx *x, const dre_msg *m)
{
	ev_feed         *f = arg;
	dre_master_event ev;
	dre_err err = dre_avro_decode_master(&ev, x->a, m->payload, m->len);
	if (err != DRE_OK)
		return err;
	bool              del = ev.op != NULL && strcmp(ev.op, "DELETE") == 0;
	eng_master_change c = { .tenant = ev.tenant,
		.key = ev.entity_id,
		.version = ev.version,
		.doc = del ? NULL : ev.document,
		.doc_len = del ? 0 : ev.document_len };
	if (eng_master_kind_parse(&c.kind, ev.entity_kind) != DRE_OK
	    || c.tenant == NULL || c.key == NULL || (!del && c.doc == NULL))
		return DRE_EINVAL;
	bool applied = false;
	err = eng_stage(f->s->engine, &c, x->now_ms, &applied);
	if (err == DRE_EINVAL)
		dre_warn("feed: %s %s v%lld rejected", ev.entity_kind, c.key,
		    (long long) c.version);
	if (err != DRE_OK)
		return err;
	if (applied)
		batch_ent(f, x->b, &c);
	batch_sync(f, x->b, x->now_ms);
	return DRE_OK;
}

// batch_end publishes what the batch staged once it is written.
static void
batch_end(void *arg, dre_err err)
{
	ev_feed *f = arg;
	if (err != DRE_OK) {
		eng_discard(f->s->engine);
	} else {
		eng_publish(f->s->engine);
		if (f->sync_ms > 0)
			atomic_store(&f->s->last_sync_ms, f->sync_ms);
		if (f->snapshot) {
			atomic_store(&f->s->loaded, true);
			// The snapshot's pages (hundreds of MB at scale) are
			// freed by now: give their memory back.
			malloc_trim(0);
		}
	}
	if (f->compact_off)
		(void) dre_store_auto_compact(f->s->st, EV_CF_MASTER, true);
	f->sync_ms = 0;
	f->snapshot = false;
	f->compact_off = false;
}

static void
probed(void *arg, bool reached)
{
	ev_feed *f = arg;
	atomic_store(&f->s->kafka_ok, reached);
	if (reached)
		atomic_store(&f->s->kafka_failures, 0);
	else
		atomic_fetch_add(&f->s->kafka_failures, 1);
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
	s->feed = f;
	bootstrap_default(s);
	bool             local = local_load(f);
	dre_snapshot_cfg sc
	    = dre_snapshot_catalog(s->cfg.catalog_url, "evaluator");
	sc.page_bytes = (size_t) s->cfg.snapshot_page_bytes;
	// The snapshot is fetched here, not by the applier: page by page,
	// each consumed as it arrives (the applier's fetch assembles them).
	dre_err err = dre_snapshot_client_open(&f->snap, &sc);
	if (err != DRE_OK) {
		ev_feed_stop(s);
		return err;
	}
	// A local copy is current to its positions in the feed: it is
	// followed from there, no fresh snapshot (at a million articles a
	// snapshot costs a minute). The applier still takes one when it has
	// no positions, when they are no longer in the log (out of range) or
	// belong to another Kafka cluster.
	dre_applier_cfg cfg = { .name = "feed",
		.topics = master_topics,
		.ntopics = sizeof(master_topics) / sizeof(master_topics[0]),
		.st = s->st,
		.cf = EV_CF_MASTER,
		.kafka = &s->cfg.common.kafka,
		.apply = change,
		.recover = snapshot,
		.batch_end = batch_end,
		.probed = probed,
		.arg = f,
		.idempotent = true, // versioned entities
		.recover_at_start = !local,
		.resync_ms = s->cfg.resnapshot_ms };
	err = dre_applier_start(&f->ap, &cfg);
	if (err != DRE_OK)
		ev_feed_stop(s);
	return err;
}

void
ev_feed_stop(ev_svc *s)
{
	ev_feed *f = s->feed;
	if (f == NULL)
		return;
	dre_applier_stop(f->ap);
	dre_snapshot_client_close(f->snap);
	free(f->val);
	free(f);
	s->feed = NULL;
}
