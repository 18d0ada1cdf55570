// webhook/promos.c -- the promotion events: a follower of the catalog's
// promotion feed (dre.master.promotions) that keeps, per promotion, the
// catalog version and status it last saw, and turns each change into
// PROMOTION_CREATED (unknown before) or PROMOTION_UPDATED, PROMOTION_DELETED,
// and PROMOTION_ACTIVATED / PROMOTION_DEACTIVATED when the status enters or
// leaves ACTIVE. The state, the deliveries and the feed's offsets are one
// synced batch (the applier), so a change raises its events exactly once.
//
// Without positions (first start, a position the log no longer has) the
// copy is replaced by the catalog's snapshot, silently: what changed while
// nobody followed is not reported (there is no previous state to compare).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "dre/avro.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/snapshot.h"
#include "dre/topics.h"
#include "dre/uuid.h"
#include "master.pb-c.h"

// Keys of WH_CF_PROMOS besides the applier's ('o', 'c', 'd', 'x'):
//   'p' tenant \0 promotionId -> catalog version (be64) status
#define PROMO_TAG  'p'
#define STATUS_MAX 64

// known reads what the copy holds of a promotion: false when nothing.
static bool
known(wh *s, dre_batch *b, const char *k, size_t kl, int64_t *version,
    char *status, size_t cap)
{
	char  *v = NULL;
	size_t vl = 0;
	if (dre_batch_get(b, s->st, WH_CF_PROMOS, k, kl, &v, &vl) != DRE_OK)
		return false;
	bool ok = vl >= 8;
	if (ok) {
		*version = dre_be64_get((const unsigned char *) v);
		snprintf(status, cap, "%.*s", (int) (vl - 8), v + 8);
	}
	free(v);
	return ok;
}

// remember writes the copy of a promotion (status NULL: deleted).
static void
remember(wh *s, dre_batch *b, const char *k, size_t kl, int64_t version,
    const char *status)
{
	char   v[8 + STATUS_MAX];
	size_t sl = strnlen(status, STATUS_MAX);
	dre_be64_put(v, version);
	memcpy(v + 8, status, sl);
	dre_batch_put(b, s->st, WH_CF_PROMOS, k, kl, v, 8 + sl);
}

// doc_status is the status member of a promotion document ("" if none).
static const char *
doc_status(const dre_json *doc)
{
	const dre_json *st = dre_json_get(doc, "status");
	return dre_json_is(st, DRE_JSON_STRING) ? st->str : "";
}

// emit writes the event's data and hands it to the subscribers:
// {promotionId, status, previousStatus, promotion}.
static dre_err
emit(wh *s, dre_apply_ctx *x, const dre_master_event *e, const char *type,
    const char *event_id, const char *status, const char *prev,
    const dre_json *doc)
{
	bool    yes;
	dre_err err = wh_wanted(s, x->a, e->tenant, type, &yes);
	if (err != DRE_OK || !yes)
		return err;
	dre_buf   data = { 0 };
	dre_jsonw w;
	size_t    n = 0;
	dre_jsonw_init(&w, &data);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "promotionId", e->entity_id);
	// "" (none, deleted) is null; so is a missing document.
	dre_jsonw_kstr(&w, "status", status && status[0] ? status : NULL);
	dre_jsonw_kstr(&w, "previousStatus", prev && prev[0] ? prev : NULL);
	dre_jsonw_key(&w, "promotion");
	dre_jsonw_json(&w, doc);
	dre_jsonw_obj_end(&w);
	err = wh_raise(
	    s, x, event_id, type, e->occurred_at, e->tenant, &data, &n);
	dre_buf_free(&data);
	return err;
}

dre_err
wh_promo_apply(void *arg, dre_apply_ctx *x, const dre_msg *m)
{
	wh              *s = arg;
	dre_master_event e;
	dre_err err = dre_avro_decode_master(&e, x->a, m->payload, m->len);
	if (err != DRE_OK)
		return err;
	if (e.entity_kind == NULL || strcmp(e.entity_kind, "PROMOTION") != 0
	    || e.tenant == NULL || e.entity_id == NULL)
		return DRE_OK;
	char   k[WH_KEY_MAX + 1];
	size_t kl = dre_key(k, sizeof k, PROMO_TAG, 2, e.tenant, e.entity_id);
	if (kl == 0)
		return DRE_OK;
	int64_t have_version = 0;
	char    prev[STATUS_MAX + 1] = "";
	bool    had = known(s, x->b, k, kl, &have_version, prev, sizeof prev);
	if (had && have_version >= e.version)
		return DRE_OK; // a replay, or older than the copy
	bool del = e.op != NULL && strcmp(e.op, "DELETE") == 0;
	if (del) {
		// The copy keeps the version of the deletion (an older upsert
		// replayed after it is recognised) with an empty status.
		remember(s, x->b, k, kl, e.version, "");
		return !had || prev[0] != '\0' ? emit(s, x, &e,
		           "PROMOTION_DELETED", e.event_id, NULL, prev, NULL)
		                               : DRE_OK;
	}
	dre_json *doc = NULL;
	if (e.document == NULL
	    || dre_json_parse(&doc, x->a, e.document, e.document_len,
	           DRE_JSON_MAX_DEPTH, NULL)
	        != DRE_OK
	    || !dre_json_is(doc, DRE_JSON_OBJECT))
		return DRE_EINVAL; // never the catalog's: a dead letter
	const char *status = doc_status(doc);
	remember(s, x->b, k, kl, e.version, status);
	// A deleted promotion (empty status in the copy) upserted again is
	// created again.
	bool        created = !had || prev[0] == '\0';
	const char *before = created ? NULL : prev;
	err = emit(s, x, &e,
	    created ? "PROMOTION_CREATED" : "PROMOTION_UPDATED", e.event_id,
	    status, before, doc);
	bool was_active = before != NULL && strcmp(before, "ACTIVE") == 0;
	bool is_active = strcmp(status, "ACTIVE") == 0;
	if (err != DRE_OK || was_active == is_active)
		return err;
	// The status event's id is derived from the change's: the same on
	// every replay.
	char eid[DRE_UUID_LEN + 1], seed[128];
	int  sl
	    = snprintf(seed, sizeof seed, "promotion-status|%s", e.event_id);
	dre_uuid_derive(eid, seed, (size_t) sl);
	return emit(s, x, &e,
	    is_active ? "PROMOTION_ACTIVATED" : "PROMOTION_DEACTIVATED", eid,
	    status, before, doc);
}

// recover replaces the copy by the catalog's snapshot (no events).
static dre_err
recover(void *arg, dre_apply_ctx *x, dre_partition_offset *po, size_t n)
{
	wh                          *s = arg;
	const Dre__SnapshotResponse *snap
	    = (const Dre__SnapshotResponse *) x->snapshot;
	size_t  npromo = 0;
	char    tag[2] = { PROMO_TAG, '\0' };
	dre_err err = dre_snapshot_wipe(x->b, s->st, WH_CF_PROMOS, tag);
	for (size_t i = 0; err == DRE_OK && i < snap->n_entities; i++) {
		const Dre__MasterEntity *me = snap->entities[i];
		dre_json                *doc = NULL;
		char                     k[WH_KEY_MAX + 1];
		size_t                   kl;
		if (strcmp(me->kind, "PROMOTION") != 0
		    || (kl = dre_key(
		            k, sizeof k, PROMO_TAG, 2, me->tenant, me->id))
		        == 0)
			continue;
		dre_arena_reset(x->a);
		const char *status = "";
		if (dre_json_parse(&doc, x->a,
		        (const char *) me->document.data, me->document.len,
		        DRE_JSON_MAX_DEPTH, NULL)
		    == DRE_OK)
			status = doc_status(doc);
		// A promotion without a status still exists: "?" (never
		// ACTIVE, never empty, which means deleted).
		remember(s, x->b, k, kl, me->version,
		    status[0] != '\0' ? status : "?");
		npromo++;
	}
	if (err == DRE_OK) {
		dre_snapshot_positions(po, n, snap->offsets, snap->n_offsets);
		dre_info(
		    "promotion events: snapshot with %zu promotions", npromo);
	}
	return err;
}

static const char *const promo_topics[] = { DRE_TOPIC_PROMOTIONS };

dre_err
wh_promos_start(wh *s, const char *catalog_url, const dre_kvlist *kafka)
{
	dre_snapshot_cfg sc = dre_snapshot_catalog(catalog_url, "webhook");
	// No snapshot at start nor on a timer: the copy is what the events
	// are computed from, and a refresh would skip the changes between.
	dre_applier_cfg cfg = { .name = "promotion events",
		.topics = promo_topics,
		.ntopics = 1,
		.st = s->st,
		.cf = WH_CF_PROMOS,
		.kafka = kafka,
		.apply = wh_promo_apply,
		.recover = recover,
		.snapshot = &sc,
		.batch_end = wh_batch_end,
		.arg = s,
		.idempotent = true }; // versioned promotions
	return dre_applier_start(&s->promo_ap, &cfg);
}

void
wh_promos_stop(wh *s)
{
	dre_applier_stop(s->promo_ap);
	s->promo_ap = NULL;
}
