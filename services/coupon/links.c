// coupon/links.c -- which promotions a coupon type unlocks. The catalog owns
// promotions and their couponTypeIds; this service keeps a derived link table
// in RocksDB: a catalog snapshot first, then the dre.master.promotions change
// feed from the offsets the snapshot names (the evaluator's pattern, for one
// topic). Versions make replays harmless; a lost position or a new Kafka
// cluster triggers a fresh snapshot. Keys of CF_LINKS:
//   'L' tenant \0 typeId \0 promotionId -> promotion status
//   'P' tenant \0 promotionId           -> version (8) + typeIds,
//                                          NUL-separated
//   'I' tenant \0 promotionId           -> its ISSUE_COUPON actions:
//                                          typeId \0 quantity(8) ...
//   'O' partition (4, big endian)        -> next offset (8)
//   'C'                                  -> Kafka cluster id of the offsets
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coupon.h"
#include "dre/store.h"
#include "dre/avro.h"
#include "dre/clock.h"
#include "dre/json.h"
#include "dre/log.h"
#include "dre/rpc.h"
#include "dre/topics.h"
#include "keys.h"
#include "master.pb-c.h"

#define MAX_PARTS           64
#define MAX_TYPES_PER_PROMO 64
#define POLL_MS             100
#define PROBE_EVERY_MS      5000
#define BACKOFF_MIN_MS      250
#define BACKOFF_MAX_MS      10000
#define SNAPSHOT_TIMEOUT_MS 15000

struct cp_links {
	cp             *s;
	pthread_t       th;
	atomic_bool     running;
	dre_consumer   *c;
	dre_rpc_client *cat;
	bool            have_kafka;
	int             nparts;
	int64_t         offset[MAX_PARTS]; // next to consume
	char            cluster[128];
	bool            need_snapshot;
	int64_t         next_snapshot, last_snapshot, next_probe; // mono ms
	int             backoff_ms;
	dre_arena      *a;
};

// ---- the link table -------------------------------------------------------

// issue_actions packs the ISSUE_COUPON actions of a promotion document's
// actions array into out (typeId \0 quantity(8) each). The catalog has
// validated them (quantity 1..1000, default 1); anything else is skipped.
static void
issue_actions(dre_buf *out, const dre_json *acts)
{
	size_t n = 0;
	for (const dre_json *x
	     = dre_json_is(acts, DRE_JSON_ARRAY) ? acts->child : NULL;
	     x != NULL && n < CP_MAX_ISSUE; x = x->next) {
		const dre_json *ty = dre_json_get(x, "type");
		const dre_json *ct = dre_json_get(x, "couponTypeId");
		const dre_json *q = dre_json_get(x, "quantity");
		int64_t         qty = 1;
		unsigned char   be[8];
		if (!dre_json_is(ty, DRE_JSON_STRING)
		    || strcmp(ty->str, "ISSUE_COUPON") != 0
		    || !dre_json_is(ct, DRE_JSON_STRING) || ct->len == 0
		    || ct->len > DRE_UUID_LEN + 63
		    || memchr(ct->str, 0, ct->len) != NULL)
			continue;
		if (q != NULL && !dre_json_is(q, DRE_JSON_NULL)
		    && dre_json_int(&qty, q, 1, CP_MAX_ISSUE_QTY) != DRE_OK)
			continue;
		dre_buf_append(out, ct->str, ct->len + 1);
		dre_be64_put(be, qty);
		dre_buf_append(out, be, 8);
		n++;
	}
}

static void
apply(cp *s, dre_batch *b, const char *tenant, const char *promo,
    int64_t version, const char *doc, size_t len, bool fresh)
{
	char       k[1024];
	size_t     kl = dre_key(k, sizeof k, 'P', 2, tenant, promo);
	char      *old = NULL;
	size_t     ol = 0;
	dre_arena *a = NULL;
	if (kl == 0)
		return;
	if (!fresh
	    && dre_store_get(s->st, CF_LINKS, k, kl, &old, &ol) == DRE_OK
	    && ol >= 8) {
		if (dre_be64_get((const unsigned char *) old) >= version) {
			free(old);
			return; // a replay or an older event
		}
		// Unlink the types the previous version named.
		for (size_t i = 8; i < ol;) {
			size_t n = strnlen(old + i, ol - i);
			char   t[DRE_UUID_LEN + 64], lk[1024];
			snprintf(t, sizeof t, "%.*s", (int) n, old + i);
			size_t ll
			    = dre_key(lk, sizeof lk, 'L', 3, tenant, t, promo);
			if (ll > 0)
				dre_batch_delete(b, s->st, CF_LINKS, lk, ll);
			i += n + 1;
		}
	}
	free(old);

	dre_buf         pv = { 0 }, iv = { 0 };
	unsigned char   be[8];
	const char     *status = "UNKNOWN";
	const dre_json *ids = NULL, *acts = NULL;
	dre_be64_put(be, version);
	dre_buf_append(&pv, be, 8);
	if (doc != NULL && (a = dre_arena_alloc(0)) != NULL) {
		dre_json *root = NULL;
		if (dre_json_parse(
		        &root, a, doc, len, DRE_JSON_MAX_DEPTH, NULL)
		        == DRE_OK
		    && dre_json_is(root, DRE_JSON_OBJECT)) {
			const dre_json *st = dre_json_get(root, "status");
			if (dre_json_is(st, DRE_JSON_STRING))
				status = st->str;
			ids = dre_json_get(root, "couponTypeIds");
			acts = dre_json_get(root, "actions");
		}
	}
	issue_actions(&iv, acts);
	char   ik[1024];
	size_t ikl = dre_key(ik, sizeof ik, 'I', 2, tenant, promo);
	if (ikl > 0 && iv.len > 0 && !iv.oom)
		dre_batch_put(b, s->st, CF_LINKS, ik, ikl, iv.data, iv.len);
	else if (ikl > 0 && !fresh)
		dre_batch_delete(b, s->st, CF_LINKS, ik, ikl);
	dre_buf_free(&iv);
	size_t n = 0;
	for (const dre_json *x
	     = dre_json_is(ids, DRE_JSON_ARRAY) ? ids->child : NULL;
	     x != NULL && n < MAX_TYPES_PER_PROMO; x = x->next) {
		char   lk[1024];
		size_t ll;
		if (!dre_json_is(x, DRE_JSON_STRING) || x->len == 0
		    || memchr(x->str, 0, x->len) != NULL)
			continue;
		ll = dre_key(lk, sizeof lk, 'L', 3, tenant, x->str, promo);
		if (ll == 0)
			continue;
		dre_batch_put(
		    b, s->st, CF_LINKS, lk, ll, status, strlen(status));
		if (n++ > 0)
			dre_buf_putc(&pv, '\0');
		dre_buf_puts(&pv, x->str);
	}
	if (!pv.oom)
		dre_batch_put(b, s->st, CF_LINKS, k, kl, pv.data, pv.len);
	dre_buf_free(&pv);
	dre_arena_free(a);
}

void
cp_links_apply(cp *s, dre_batch *b, const char *tenant, const char *promo_id,
    int64_t version, const char *doc, size_t len)
{
	apply(s, b, tenant, promo_id, version, doc, len, false);
}

size_t
cp_links_get(cp *s, dre_arena *a, const char *tenant, const char *type_id,
    const char ***idsp, const char **first_active)
{
	char            p[1024];
	size_t          pl = dre_key(p, sizeof p, 'L', 3, tenant, type_id, "");
	dre_store_iter *it = NULL;
	const char     *k, *v;
	size_t          kl, vl, n = 0, cap = 0;
	const char    **ids = NULL;
	*idsp = NULL;
	if (first_active != NULL)
		*first_active = NULL;
	if (pl == 0
	    || dre_store_iter_open(&it, s->st, CF_LINKS, p, pl) != DRE_OK)
		return 0;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		if (n == cap) {
			size_t       ncap = cap ? cap * 2 : 8;
			const char **nv = dre_arena_get(a, ncap * sizeof *nv);
			if (nv == NULL)
				break;
			if (n > 0)
				memcpy(nv, ids, n * sizeof *nv);
			ids = nv;
			cap = ncap;
		}
		const char *id = dre_arena_strndup(a, k + pl, kl - pl);
		if (id == NULL)
			break;
		ids[n++] = id;
		if (first_active != NULL && *first_active == NULL && vl == 6
		    && memcmp(v, "ACTIVE", 6) == 0)
			*first_active = id;
	}
	dre_store_iter_close(it);
	*idsp = ids;
	return n;
}

bool
cp_links_have(cp *s, const char *tenant, const char *promo_id, int64_t version)
{
	char   k[1024];
	size_t kl = dre_key(k, sizeof k, 'P', 2, tenant, promo_id);
	char  *v = NULL;
	size_t vl = 0;
	if (kl == 0
	    || dre_store_get(s->st, CF_LINKS, k, kl, &v, &vl) != DRE_OK)
		return false;
	bool have
	    = vl >= 8 && dre_be64_get((const unsigned char *) v) >= version;
	free(v);
	return have;
}

dre_err
cp_links_issue(cp *s, dre_arena *a, const char *tenant, const char *promo_id,
    cp_issue **vp, size_t *np)
{
	char    k[1024];
	size_t  kl = dre_key(k, sizeof k, 'P', 2, tenant, promo_id);
	char   *v = NULL;
	size_t  vl = 0, n = 0;
	dre_err err;
	*vp = NULL;
	*np = 0;
	if (kl == 0)
		return DRE_ENOTFOUND;
	if ((err = dre_store_get(s->st, CF_LINKS, k, kl, &v, &vl)) != DRE_OK)
		return err;
	free(v);
	k[0] = 'I';
	err = dre_store_get(s->st, CF_LINKS, k, kl, &v, &vl);
	if (err == DRE_ENOTFOUND)
		return DRE_OK; // known, no ISSUE_COUPON action
	if (err != DRE_OK)
		return err;
	cp_issue *out = dre_arena_get(a, CP_MAX_ISSUE * sizeof *out);
	for (size_t i = 0; out != NULL && i < vl && n < CP_MAX_ISSUE;) {
		size_t tl = strnlen(v + i, vl - i);
		if (i + tl + 1 + 8 > vl)
			break;
		out[n].type_id = dre_arena_strndup(a, v + i, tl);
		out[n].quantity
		    = dre_be64_get((const unsigned char *) v + i + tl + 1);
		if (out[n].type_id == NULL)
			break;
		n++;
		i += tl + 1 + 8;
	}
	free(v);
	if (out == NULL)
		return DRE_ENOMEM;
	*vp = out;
	*np = n;
	return DRE_OK;
}

// ---- positions ------------------------------------------------------------

static void
pos_save(cp_links *l, dre_batch *b, int part)
{
	unsigned char k[5], v[8];
	k[0] = 'O';
	for (int i = 0; i < 4; i++)
		k[1 + i] = (unsigned char) ((uint32_t) part >> (24 - 8 * i));
	dre_be64_put(v, l->offset[part]);
	dre_batch_put(b, l->s->st, CF_LINKS, k, 5, v, 8);
}

// pos_load reads the stored positions; false when there are none.
static bool
pos_load(cp_links *l)
{
	bool any = false;
	for (int p = 0; p < l->nparts; p++) {
		unsigned char k[5];
		char         *v = NULL;
		size_t        vl = 0;
		k[0] = 'O';
		for (int i = 0; i < 4; i++)
			k[1 + i]
			    = (unsigned char) ((uint32_t) p >> (24 - 8 * i));
		l->offset[p] = DRE_OFFSET_BEGINNING;
		if (dre_store_get(l->s->st, CF_LINKS, k, 5, &v, &vl) == DRE_OK
		    && vl == 8) {
			l->offset[p] = dre_be64_get((const unsigned char *) v);
			any = true;
		}
		free(v);
	}
	char  *v = NULL;
	size_t vl = 0;
	if (dre_store_get(l->s->st, CF_LINKS, "C", 1, &v, &vl) == DRE_OK)
		snprintf(l->cluster, sizeof l->cluster, "%.*s", (int) vl, v);
	free(v);
	return any;
}

static void
consumer_restart(cp_links *l)
{
	dre_partition_offset po[MAX_PARTS];
	dre_consumer_close(l->c);
	l->c = NULL;
	if (!l->have_kafka)
		return;
	if (dre_consumer_open(&l->c, l->s->kafka, NULL) != DRE_OK)
		return;
	for (int p = 0; p < l->nparts; p++)
		po[p] = (dre_partition_offset) { DRE_TOPIC_PROMOTIONS, p,
			l->offset[p] };
	if (dre_consumer_assign_list(l->c, po, (size_t) l->nparts) != DRE_OK) {
		dre_consumer_close(l->c);
		l->c = NULL;
	}
}

// ---- snapshot -------------------------------------------------------------

static dre_err
snapshot_take(cp_links *l)
{
	cp *s = l->s;
	if (l->cat == NULL
	    && dre_rpc_client_open(&l->cat, s->o.catalog_url) != DRE_OK)
		return DRE_EUNAVAIL;
	Dre__SnapshotRequest sr = DRE__SNAPSHOT_REQUEST__INIT;
	uint8_t              body[8];
	Dre__RpcRequest      rq = DRE__RPC_REQUEST__INIT;
	Dre__RpcReply       *rep = NULL;
	rq.method = "catalog.Snapshot";
	rq.has_body = true;
	rq.body.data = body;
	rq.body.len = dre__snapshot_request__pack(&sr, body);
	rq.tenant = "";
	rq.principal = "coupon";
	dre_err err
	    = dre_rpc_call_sync(l->cat, &rq, SNAPSHOT_TIMEOUT_MS, &rep);
	if (err != DRE_OK)
		return err;
	if (rep->status != 200) {
		dre_warn("links: catalog snapshot answered %d", rep->status);
		dre_rpc_reply_msg_free(rep);
		return DRE_EUNAVAIL;
	}
	Dre__SnapshotResponse *snap = dre__snapshot_response__unpack(
	    NULL, rep->has_body ? rep->body.len : 0, rep->body.data);
	dre_rpc_reply_msg_free(rep);
	if (snap == NULL)
		return DRE_ECODEC;

	// The link table is replaced as a whole, in one batch.
	dre_batch      *b = dre_batch_alloc();
	dre_store_iter *it = NULL;
	size_t          npromo = 0;
	if (b == NULL) {
		dre__snapshot_response__free_unpacked(snap, NULL);
		return DRE_ENOMEM;
	}
	if ((err = dre_store_iter_open(&it, s->st, CF_LINKS, NULL, 0))
	    == DRE_OK) {
		const char *k, *v;
		size_t      kl, vl;
		while (dre_store_iter_next(it, &k, &kl, &v, &vl))
			dre_batch_delete(b, s->st, CF_LINKS, k, kl);
		dre_store_iter_close(it);
	}
	for (size_t i = 0; err == DRE_OK && i < snap->n_entities; i++) {
		const Dre__MasterEntity *e = snap->entities[i];
		if (strcmp(e->kind, "PROMOTION") != 0)
			continue;
		apply(s, b, e->tenant, e->id, e->version,
		    (const char *) e->document.data, e->document.len, true);
		npromo++;
	}
	for (int p = 0; p < l->nparts; p++)
		l->offset[p] = DRE_OFFSET_BEGINNING;
	for (size_t i = 0; i < snap->n_offsets; i++) {
		const Dre__TopicOffset *o = snap->offsets[i];
		if (strcmp(o->topic, DRE_TOPIC_PROMOTIONS) == 0
		    && o->partition >= 0 && o->partition < l->nparts)
			l->offset[o->partition] = o->offset;
	}
	snprintf(l->cluster, sizeof l->cluster, "%s",
	    snap->cluster_id ? snap->cluster_id : "");
	for (int p = 0; p < l->nparts; p++)
		pos_save(l, b, p);
	dre_batch_put(
	    b, s->st, CF_LINKS, "C", 1, l->cluster, strlen(l->cluster));
	if (err == DRE_OK)
		err = dre_store_write(s->st, b, false);
	dre_batch_free(b);
	dre__snapshot_response__free_unpacked(snap, NULL);
	if (err == DRE_OK) {
		dre_info("links: snapshot with %zu promotions", npromo);
		consumer_restart(l);
	}
	return err;
}

// ---- the feed -------------------------------------------------------------

static void
message_apply(cp_links *l, const dre_msg *m)
{
	if (m->topic == NULL || strcmp(m->topic, DRE_TOPIC_PROMOTIONS) != 0
	    || m->partition < 0 || m->partition >= l->nparts)
		return;
	dre_batch *b = dre_batch_alloc();
	if (b == NULL)
		return;
	dre_master_event ev;
	dre_arena_reset(l->a);
	if (dre_avro_decode_master(&ev, l->a, m->payload, m->len) != DRE_OK)
		dre_warn("links: %s[%d]@%lld undecodable: skipped", m->topic,
		    m->partition, (long long) m->offset);
	else if (ev.entity_kind != NULL
	    && strcmp(ev.entity_kind, "PROMOTION") == 0 && ev.tenant != NULL
	    && ev.entity_id != NULL) {
		bool del = ev.op != NULL && strcmp(ev.op, "DELETE") == 0;
		apply(l->s, b, ev.tenant, ev.entity_id, ev.version,
		    del ? NULL : ev.document, del ? 0 : ev.document_len,
		    false);
	}
	l->offset[m->partition] = m->offset + 1;
	pos_save(l, b, m->partition);
	if (dre_store_write(l->s->st, b, false) != DRE_OK)
		dre_warn("links: not written");
	dre_batch_free(b);
}

static void
probe(cp_links *l, int64_t now)
{
	char id[128];
	l->next_probe = now + PROBE_EVERY_MS;
	if (!l->have_kafka
	    || dre_bus_cluster_id(l->s->kafka, id, sizeof id, 1000) != DRE_OK)
		return;
	if (l->cluster[0] != '\0' && strcmp(id, l->cluster) != 0) {
		dre_warn(
		    "links: Kafka cluster changed (%s -> %s): re-snapshot",
		    l->cluster, id);
		l->need_snapshot = true;
		l->next_snapshot = now;
	}
}

static void *
links_main(void *arg)
{
	cp_links *l = arg;
	while (atomic_load(&l->running)) {
		int64_t now = dre_mono_ms();
		if (now >= l->next_probe)
			probe(l, now);
		if (!l->have_kafka && !l->need_snapshot
		    && now - l->last_snapshot >= l->s->o.resnapshot_ms)
			l->need_snapshot = true; // no feed: poll the catalog
		if (l->need_snapshot && now >= l->next_snapshot) {
			dre_err err = snapshot_take(l);
			if (err == DRE_OK) {
				l->need_snapshot = false;
				l->backoff_ms = BACKOFF_MIN_MS;
				l->last_snapshot = dre_mono_ms();
			} else {
				dre_warn(
				    "links: snapshot from %s: %s (retry in "
				    "%d ms)",
				    l->s->o.catalog_url, dre_strerror(err),
				    l->backoff_ms);
				l->next_snapshot = now + l->backoff_ms;
				l->backoff_ms
				    = l->backoff_ms * 2 > BACKOFF_MAX_MS
				    ? BACKOFF_MAX_MS
				    : l->backoff_ms * 2;
				// Meanwhile follow the feed from the stored
				// positions.
				if (l->c == NULL && pos_load(l))
					consumer_restart(l);
			}
			continue;
		}
		if (l->c == NULL) {
			struct timespec ts = { 0, POLL_MS * 1000000L };
			nanosleep(&ts, NULL);
			continue;
		}
		dre_msg m;
		dre_err err = dre_consumer_poll(l->c, POLL_MS, &m);
		if (err == DRE_OK)
			message_apply(l, &m);
		else if (err == DRE_ENOTFOUND) {
			l->need_snapshot = true;
			l->next_snapshot = now;
		}
	}
	return NULL;
}

dre_err
cp_links_start(cp *s)
{
	cp_links        *l = calloc(1, sizeof *l);
	const dre_topic *t = dre_topic_find(DRE_TOPIC_PROMOTIONS);
	if (l == NULL)
		return DRE_ENOMEM;
	if ((l->a = dre_arena_alloc(64 * 1024)) == NULL) {
		free(l);
		return DRE_ENOMEM;
	}
	l->s = s;
	l->nparts = t != NULL && t->partitions > 0 ? t->partitions : 1;
	if (l->nparts > MAX_PARTS)
		l->nparts = MAX_PARTS;
	l->have_kafka = dre_kvlist_get(s->kafka, "bootstrap.servers") != NULL;
	// Always a fresh snapshot at start; the stored table serves until
	// then (and while the catalog is down).
	l->need_snapshot = true;
	l->backoff_ms = BACKOFF_MIN_MS;
	pos_load(l);
	if (!l->have_kafka)
		dre_warn(
		    "links: no kafka.bootstrap.servers: catalog snapshots "
		    "every %lld ms only",
		    (long long) s->o.resnapshot_ms);
	atomic_init(&l->running, true);
	if (pthread_create(&l->th, NULL, links_main, l) != 0) {
		dre_arena_free(l->a);
		free(l);
		return DRE_ENOMEM;
	}
	s->links = l;
	return DRE_OK;
}

void
cp_links_stop(cp *s)
{
	cp_links *l = s->links;
	if (l == NULL)
		return;
	atomic_store(&l->running, false);
	pthread_join(l->th, NULL);
	dre_consumer_close(l->c);
	dre_rpc_client_close(l->cat);
	dre_arena_free(l->a);
	free(l);
	s->links = NULL;
}
