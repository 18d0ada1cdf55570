// coupon/links.c -- which promotions a coupon type unlocks. The catalog owns
// promotions and their couponTypeIds; this service keeps a derived link table
// in RocksDB: a follower of the catalog (dre/consumer.h, the evaluator's
// pattern for one topic): a catalog snapshot first, then the
// dre.master.promotions change feed from the offsets the snapshot names.
// Versions make replays harmless; a lost position or a new Kafka cluster
// triggers a fresh snapshot. Keys of CF_LINKS, beside the applier's own
// ('o' positions, 'c' cluster id, 'x' dead letters):
//   'L' tenant \0 typeId \0 promotionId -> promotion status
//   'P' tenant \0 promotionId           -> version (8) + typeIds,
//                                          NUL-separated
//   'I' tenant \0 promotionId           -> its ISSUE_COUPON actions:
//                                          typeId \0 quantity(8) ...
// ('O' and 'C', the positions of an older layout, go at the next snapshot.)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coupon.h"
#include "dre/avro.h"
#include "dre/json.h"
#include "dre/log.h"
#include "dre/snapshot.h"
#include "dre/store.h"
#include "dre/topics.h"
#include "keys.h"
#include "master.pb-c.h"

#define MAX_TYPES_PER_PROMO 64

struct cp_links {
	dre_applier *ap;
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
	// Through the batch: an earlier change of the same batch counts.
	if (!fresh
	    && dre_batch_get(b, s->st, CF_LINKS, k, kl, &old, &ol) == DRE_OK
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

dre_err
cp_links_types(cp *s, dre_arena *a, const char *tenant, const char *promo_id,
    const char ***idsp, size_t *np)
{
	char         k[1024];
	size_t       kl = dre_key(k, sizeof k, 'P', 2, tenant, promo_id);
	char        *v = NULL;
	size_t       vl = 0, n = 0;
	const char **ids;
	dre_err      err;
	*idsp = NULL;
	*np = 0;
	if (kl == 0)
		return DRE_ENOTFOUND;
	if ((err = dre_store_get(s->st, CF_LINKS, k, kl, &v, &vl)) != DRE_OK)
		return err;
	// A deleted promotion keeps its version and names no type: unknown.
	ids = dre_arena_get(a, MAX_TYPES_PER_PROMO * sizeof *ids);
	for (size_t i = 8; ids != NULL && i < vl && n < MAX_TYPES_PER_PROMO;) {
		size_t l = strnlen(v + i, vl - i);
		if ((ids[n] = dre_arena_strndup(a, v + i, l)) == NULL)
			break;
		n++;
		i += l + 1;
	}
	free(v);
	if (ids == NULL)
		return DRE_ENOMEM;
	*idsp = ids;
	*np = n;
	return DRE_OK;
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

// ---- the follower ---------------------------------------------------------

// snapshot replaces the link table by the catalog's promotions and sets the
// positions the snapshot names.
static dre_err
snapshot(void *arg, dre_apply_ctx *x, dre_partition_offset *po, size_t n)
{
	cp                          *s = arg;
	const Dre__SnapshotResponse *snap
	    = (const Dre__SnapshotResponse *) x->snapshot;
	size_t  npromo = 0;
	dre_err err = dre_snapshot_wipe(x->b, s->st, CF_LINKS, "LPIOC");
	for (size_t i = 0; err == DRE_OK && i < snap->n_entities; i++) {
		const Dre__MasterEntity *e = snap->entities[i];
		if (strcmp(e->kind, "PROMOTION") != 0)
			continue;
		apply(s, x->b, e->tenant, e->id, e->version,
		    (const char *) e->document.data, e->document.len, true);
		npromo++;
	}
	if (err == DRE_OK) {
		dre_snapshot_positions(po, n, snap->offsets, snap->n_offsets);
		dre_info("links: snapshot with %zu promotions", npromo);
	}
	return err;
}

// change records one promotion change of the feed.
static dre_err
change(void *arg, dre_apply_ctx *x, const dre_msg *m)
{
	dre_master_event ev;
	dre_err err = dre_avro_decode_master(&ev, x->a, m->payload, m->len);
	if (err != DRE_OK)
		return err;
	if (ev.entity_kind != NULL && strcmp(ev.entity_kind, "PROMOTION") == 0
	    && ev.tenant != NULL && ev.entity_id != NULL) {
		bool del = ev.op != NULL && strcmp(ev.op, "DELETE") == 0;
		apply(arg, x->b, ev.tenant, ev.entity_id, ev.version,
		    del ? NULL : ev.document, del ? 0 : ev.document_len,
		    false);
	}
	return DRE_OK;
}

static const char *const links_topics[] = { DRE_TOPIC_PROMOTIONS };

dre_err
cp_links_start(cp *s)
{
	cp_links *l = calloc(1, sizeof *l);
	if (l == NULL)
		return DRE_ENOMEM;
	s->links = l;
	dre_snapshot_cfg sc = dre_snapshot_catalog(s->o.catalog_url, "coupon");
	// Always a fresh snapshot at start; the stored table serves until
	// then (and while the catalog is down).
	dre_applier_cfg cfg = { .name = "links",
		.topics = links_topics,
		.ntopics = 1,
		.st = s->st,
		.cf = CF_LINKS,
		.kafka = s->kafka,
		.apply = change,
		.recover = snapshot,
		.snapshot = &sc,
		.arg = s,
		.idempotent = true, // versioned promotions
		.recover_at_start = true,
		.resync_ms = s->o.resnapshot_ms };
	dre_err         err = dre_applier_start(&l->ap, &cfg);
	if (err != DRE_OK)
		cp_links_stop(s);
	return err;
}

void
cp_links_stop(cp *s)
{
	cp_links *l = s->links;
	if (l == NULL)
		return;
	dre_applier_stop(l->ap);
	free(l);
	s->links = NULL;
}
