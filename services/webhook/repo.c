// webhook/repo.c -- subscriptions and delivery records in RocksDB (JSON
// documents), the schedule of due attempts, enqueueing an event.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/hash.h"
#include "dre/jsonw.h"
#include "dre/log.h"
#include "dre/uuid.h"
#include "webhook.h"

static const char *const wh_cfs[] = { "subscriptions", "deliveries", "due",
	"outbox", "applier", "sidefx", "promotions", "audit" };

size_t
wh_key(char *out, size_t cap, const char *tenant, const char *id)
{
	size_t lt = strlen(tenant), li = strlen(id);
	if (lt + li + 1 > cap)
		return 0;
	memcpy(out, tenant, lt + 1);
	memcpy(out + lt + 1, id, li);
	return lt + li + 1;
}

size_t
wh_due_key(char *out, size_t cap, int64_t due, const char *tenant,
    const char *sub_id, const char *id)
{
	size_t ls = strlen(sub_id);
	if (cap < 8 + ls + 1)
		return 0;
	dre_be64_put(out, due < 0 ? 0 : due);
	size_t n = wh_key(out + 8, cap - 9, tenant, sub_id);
	if (n == 0)
		return 0;
	out[8 + n] = '\0';
	size_t li = strlen(id);
	if (8 + n + 1 + li > cap)
		return 0;
	memcpy(out + 8 + n + 1, id, li);
	return 8 + n + 1 + li;
}

static const char *
jstr(const dre_json *o, const char *k)
{
	const dre_json *v = dre_json_get(o, k);
	return dre_json_is(v, DRE_JSON_STRING) ? v->str : NULL;
}

static int64_t
jint(const dre_json *o, const char *k, int64_t dflt)
{
	int64_t         n = 0;
	const dre_json *v = dre_json_get(o, k);
	if (dre_json_is(v, DRE_JSON_NUMBER)
	    && dre_json_int(&n, v, INT64_MIN, INT64_MAX) == DRE_OK)
		return n;
	return dflt;
}

// ---- subscriptions
// ----------------------------------------------------------

dre_err
wh_sub_parse(wh_sub *u, dre_arena *a, const char *v, size_t vl)
{
	dre_json *doc = NULL;
	char     *text = dre_arena_strndup(a, v, vl);
	memset(u, 0, sizeof(*u));
	if (text == NULL)
		return DRE_ENOMEM;
	if (dre_json_parse(&doc, a, text, vl, DRE_JSON_MAX_DEPTH, NULL)
	        != DRE_OK
	    || !dre_json_is(doc, DRE_JSON_OBJECT))
		return DRE_ECODEC;
	u->id = jstr(doc, "id");
	u->url = jstr(doc, "url");
	u->description = jstr(doc, "description");
	u->sealed = jstr(doc, "sealedSecret");
	u->active = dre_json_is(dre_json_get(doc, "active"), DRE_JSON_TRUE);
	const dre_json *rp = dre_json_get(doc, "retryPolicy");
	u->max_attempts = jint(rp, "maxAttempts", 8);
	u->initial_s = jint(rp, "initialDelaySeconds", 5);
	u->max_s = jint(rp, "maxDelaySeconds", 36000);
	u->created_at = jint(doc, "createdAt", 0);
	u->modified_at = jint(doc, "modifiedAt", 0);
	const dre_json *ts = dre_json_get(doc, "eventTypes");
	size_t          n = dre_json_is(ts, DRE_JSON_ARRAY) ? ts->len : 0;
	const char    **t = dre_arena_get(a, (n + 1) * sizeof(*t));
	if (t == NULL)
		return DRE_ENOMEM;
	size_t k = 0;
	for (const dre_json *e = n ? ts->child : NULL; e != NULL; e = e->next)
		if (e->type == DRE_JSON_STRING)
			t[k++] = e->str;
	u->types = t;
	u->ntypes = k;
	return u->id != NULL && u->url != NULL ? DRE_OK : DRE_ECODEC;
}

dre_err
wh_sub_get(
    wh *s, dre_arena *a, const char *tenant, const char *id, wh_sub *out)
{
	char   key[WH_KEY_MAX], *v = NULL;
	size_t vl = 0, kl = wh_key(key, sizeof key, tenant, id);
	if (kl == 0)
		return DRE_ENOTFOUND;
	dre_err err = dre_store_get(s->st, WH_CF_SUBS, key, kl, &v, &vl);
	if (err != DRE_OK)
		return err;
	err = wh_sub_parse(out, a, v, vl);
	free(v);
	return err;
}

dre_err
wh_sub_put(wh *s, dre_batch *b, const char *tenant, const wh_sub *u)
{
	char      key[WH_KEY_MAX];
	size_t    kl = wh_key(key, sizeof key, tenant, u->id);
	dre_buf   doc = { 0 };
	dre_jsonw w;
	if (kl == 0)
		return DRE_EINVAL;
	dre_jsonw_init(&w, &doc);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", u->id);
	dre_jsonw_kstr(&w, "url", u->url);
	dre_jsonw_key(&w, "eventTypes");
	dre_jsonw_arr_begin(&w);
	for (size_t i = 0; i < u->ntypes; i++)
		dre_jsonw_str(&w, u->types[i]);
	dre_jsonw_arr_end(&w);
	dre_jsonw_kstr(&w, "description", u->description);
	dre_jsonw_kbool(&w, "active", u->active);
	dre_jsonw_kstr(&w, "sealedSecret", u->sealed);
	dre_jsonw_key(&w, "retryPolicy");
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kint(&w, "maxAttempts", u->max_attempts);
	dre_jsonw_kint(&w, "initialDelaySeconds", u->initial_s);
	dre_jsonw_kint(&w, "maxDelaySeconds", u->max_s);
	dre_jsonw_obj_end(&w);
	dre_jsonw_kint(&w, "createdAt", u->created_at);
	dre_jsonw_kint(&w, "modifiedAt", u->modified_at);
	dre_jsonw_obj_end(&w);
	dre_err err = doc.oom ? DRE_ENOMEM : DRE_OK;
	if (err == DRE_OK)
		dre_batch_put(
		    b, s->st, WH_CF_SUBS, key, kl, doc.data, doc.len);
	dre_buf_free(&doc);
	return err;
}

bool
wh_sub_wants(const wh_sub *u, const char *type)
{
	if (!u->active)
		return false;
	for (size_t i = 0; i < u->ntypes; i++)
		if (strcmp(u->types[i], type) == 0
		    || (strcmp(u->types[i], "*") == 0
		        && strcmp(type, "WEBHOOK_TEST") != 0))
			return true;
	return false;
}

// ---- deliveries
// -------------------------------------------------------------

dre_err
wh_delivery_parse(wh_delivery *d, dre_arena *a, const char *v, size_t vl)
{
	dre_json *doc = NULL;
	char     *text = dre_arena_strndup(a, v, vl);
	memset(d, 0, sizeof(*d));
	if (text == NULL)
		return DRE_ENOMEM;
	if (dre_json_parse(&doc, a, text, vl, DRE_JSON_MAX_DEPTH, NULL)
	        != DRE_OK
	    || !dre_json_is(doc, DRE_JSON_OBJECT))
		return DRE_ECODEC;
	d->id = jstr(doc, "id");
	d->sub_id = jstr(doc, "subscriptionId");
	d->event_id = jstr(doc, "eventId");
	d->event_type = jstr(doc, "eventType");
	d->status = jstr(doc, "status");
	d->attempts = jint(doc, "attempts", 0);
	d->total_attempts = jint(doc, "totalAttempts", d->attempts);
	d->series = jint(doc, "series", 1);
	d->created_at = jint(doc, "createdAtMs", 0);
	d->last_attempt_at = jint(doc, "lastAttemptAtMs", 0);
	d->next_attempt_at = jint(doc, "nextAttemptAtMs", 0);
	d->last_status = jint(doc, "lastStatusCode", 0);
	d->last_error = jstr(doc, "lastError");
	d->payload = dre_json_get(doc, "payload");
	d->log = dre_json_get(doc, "attemptLog");
	return d->id && d->sub_id && d->event_id && d->event_type && d->status
	        && d->payload
	    ? DRE_OK
	    : DRE_ECODEC;
}

dre_err
wh_delivery_get(
    wh *s, dre_arena *a, const char *tenant, const char *id, wh_delivery *out)
{
	char   key[WH_KEY_MAX], *v = NULL;
	size_t vl = 0, kl = wh_key(key, sizeof key, tenant, id);
	if (kl == 0)
		return DRE_ENOTFOUND;
	dre_err err = dre_store_get(s->st, WH_CF_DELIVERIES, key, kl, &v, &vl);
	if (err != DRE_OK)
		return err;
	err = wh_delivery_parse(out, a, v, vl);
	free(v);
	return err;
}

static void
ktime(dre_jsonw *w, const char *key, int64_t ms)
{
	dre_jsonw_key(w, key);
	if (ms > 0)
		dre_jsonw_time(w, ms);
	else
		dre_jsonw_null(w);
}

// write_record writes d as stored (internal: the times in ms as well).
static void
write_record(dre_jsonw *w, const wh_delivery *d, bool stored, bool detail)
{
	dre_jsonw_obj_begin(w);
	dre_jsonw_kstr(w, "id", d->id);
	dre_jsonw_kstr(w, "subscriptionId", d->sub_id);
	dre_jsonw_kstr(w, "eventId", d->event_id);
	dre_jsonw_kstr(w, "eventType", d->event_type);
	dre_jsonw_kstr(w, "status", d->status);
	dre_jsonw_kint(w, "attempts", d->attempts);
	dre_jsonw_kint(w, "totalAttempts", d->total_attempts);
	ktime(w, "createdAt", d->created_at);
	ktime(w, "lastAttemptAt", d->last_attempt_at);
	ktime(w, "nextAttemptAt",
	    strcmp(d->status, "PENDING") == 0 ? d->next_attempt_at : 0);
	dre_jsonw_key(w, "lastStatusCode");
	if (d->last_status > 0)
		dre_jsonw_int(w, d->last_status);
	else
		dre_jsonw_null(w);
	dre_jsonw_kstr(w, "lastError", d->last_error);
	if (stored) {
		dre_jsonw_kint(w, "series", d->series);
		dre_jsonw_kint(w, "createdAtMs", d->created_at);
		dre_jsonw_kint(w, "lastAttemptAtMs", d->last_attempt_at);
		dre_jsonw_kint(w, "nextAttemptAtMs", d->next_attempt_at);
	}
	if (stored || detail) {
		dre_jsonw_key(w, "payload");
		dre_jsonw_json(w, d->payload);
		dre_jsonw_key(w, "attemptLog");
		dre_jsonw_arr_begin(w);
		for (const dre_json *e = d->log ? d->log->child : NULL;
		     e != NULL; e = e->next)
			dre_jsonw_json(w, e);
		if (d->extra_log != NULL)
			dre_jsonw_raw(w, d->extra_log, strlen(d->extra_log));
		dre_jsonw_arr_end(w);
	}
	dre_jsonw_obj_end(w);
}

void
wh_delivery_render(dre_buf *out, const wh_delivery *d, bool detail)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	write_record(&w, d, false, detail);
}

dre_err
wh_delivery_put(wh *s, dre_batch *b, const char *tenant, const wh_delivery *d,
    int64_t old_due)
{
	char      key[WH_KEY_MAX], due[WH_KEY_MAX + 8];
	size_t    kl = wh_key(key, sizeof key, tenant, d->id), dl;
	dre_buf   doc = { 0 };
	dre_jsonw w;
	if (kl == 0)
		return DRE_EINVAL;
	dre_jsonw_init(&w, &doc);
	write_record(&w, d, true, true);
	dre_err err = doc.oom ? DRE_ENOMEM : DRE_OK;
	if (err == DRE_OK)
		dre_batch_put(
		    b, s->st, WH_CF_DELIVERIES, key, kl, doc.data, doc.len);
	dre_buf_free(&doc);
	if (err != DRE_OK || old_due < -1)
		return err;
	if (old_due >= 0
	    && (dl = wh_due_key(
	            due, sizeof due, old_due, tenant, d->sub_id, d->id))
	        > 0)
		dre_batch_delete(b, s->st, WH_CF_DUE, due, dl);
	if (strcmp(d->status, "PENDING") == 0
	    && (dl = wh_due_key(due, sizeof due, d->next_attempt_at, tenant,
	            d->sub_id, d->id))
	        > 0)
		dre_batch_put(b, s->st, WH_CF_DUE, due, dl, "", 0);
	return DRE_OK;
}

void
wh_event_body(dre_buf *out, const char *event_id, const char *type, int64_t at,
    const char *tenant, const char *data, size_t dlen)
{
	dre_jsonw w;
	dre_jsonw_init(&w, out);
	dre_jsonw_obj_begin(&w);
	dre_jsonw_kstr(&w, "id", event_id);
	dre_jsonw_kstr(&w, "type", type);
	dre_jsonw_key(&w, "timestamp");
	dre_jsonw_time(&w, at);
	dre_jsonw_kstr(&w, "tenant", tenant);
	dre_jsonw_key(&w, "data");
	dre_jsonw_raw(&w, data, dlen);
	dre_jsonw_obj_end(&w);
}

dre_err
wh_enqueue(wh *s, dre_batch *b, dre_arena *a, const char *tenant,
    const char *sub_id, const char *event_id, const char *type,
    const char *body, size_t blen, int64_t now)
{
	wh_delivery d = { 0 };
	char        id[DRE_UUID_LEN + 1], seed[200];
	dre_json   *payload = NULL;
	int         sl = snprintf(
	            seed, sizeof seed, "webhook-delivery|%s|%s", sub_id, event_id);
	dre_uuid_derive(id, seed, (size_t) sl);
	char *text = dre_arena_strndup(a, body, blen);
	if (text == NULL)
		return DRE_ENOMEM;
	if (dre_json_parse(&payload, a, text, blen, DRE_JSON_MAX_DEPTH, NULL)
	    != DRE_OK)
		return DRE_EINVAL;
	d.id = id;
	d.sub_id = sub_id;
	d.event_id = event_id;
	d.event_type = type;
	d.status = "PENDING";
	d.series = 1;
	d.created_at = now;
	d.next_attempt_at = now;
	d.payload = payload;
	return wh_delivery_put(s, b, tenant, &d, -1);
}

// ---- matching events against the subscriptions ----------------------------

// One tenant's active subscriptions as the store had them at cache_gen.
struct wh_tenant_subs {
	wh_tenant_subs *next;
	const char     *tenant;
	wh_sub         *subs;
	size_t          n;
};

// The copy is dropped whole past this size (many tenants): it is a cache.
#define WH_CACHE_MAX ((size_t) 8 << 20)

dre_err
wh_subs_write(wh *s, dre_batch *b, bool sync)
{
	dre_err err = dre_store_write(s->st, b, sync);
	// After the write: a copy read before this point is stale from now
	// on, and one read after it has the write.
	atomic_fetch_add(&s->subs_gen, 1);
	return err;
}

// tenant_load reads tenant's active subscriptions into the copy (under
// cache_mu).
static dre_err
tenant_load(wh *s, const char *tenant, wh_tenant_subs **out)
{
	char            prefix[WH_KEY_MAX];
	size_t          pl = wh_key(prefix, sizeof prefix, tenant, "");
	dre_store_iter *it = NULL;
	size_t          cap = 0;
	wh_tenant_subs *t = dre_arena_get(s->cache_a, sizeof *t);
	if (t == NULL
	    || (t->tenant = dre_arena_strdup(s->cache_a, tenant)) == NULL)
		return DRE_ENOMEM;
	if (pl == 0) {
		*out = t;
		return DRE_OK;
	}
	if (dre_store_iter_open(&it, s->st, WH_CF_SUBS, prefix, pl) != DRE_OK)
		return DRE_ESTORE;
	const char *k, *v;
	size_t      kl, vl;
	dre_err     err = DRE_OK;
	while (err == DRE_OK && dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		wh_sub u;
		if (wh_sub_parse(&u, s->cache_a, v, vl) != DRE_OK || !u.active)
			continue;
		if (t->n == cap) {
			cap = cap ? 2 * cap : 8;
			wh_sub *grown
			    = dre_arena_get(s->cache_a, cap * sizeof *grown);
			if (grown == NULL) {
				err = DRE_ENOMEM;
				break;
			}
			if (t->n > 0)
				memcpy(grown, t->subs, t->n * sizeof *grown);
			t->subs = grown;
		}
		t->subs[t->n++] = u;
	}
	dre_store_iter_close(it);
	if (err == DRE_OK)
		*out = t;
	return err;
}

dre_err
wh_subs_wanting(wh *s, dre_arena *a, const char *tenant, const char *type,
    const char ***idsp, size_t *np)
{
	dre_err err = DRE_OK;
	*idsp = NULL;
	*np = 0;
	pthread_mutex_lock(&s->cache_mu);
	// Read the generation before the store: a write that lands after
	// this read moves it, and the next match reads again.
	uint64_t gen = atomic_load(&s->subs_gen);
	if (gen != s->cache_gen || dre_arena_used(s->cache_a) > WH_CACHE_MAX) {
		dre_arena_reset(s->cache_a);
		memset(s->cache, 0, sizeof s->cache);
		s->cache_gen = gen;
	}
	uint32_t         h = dre_fnv1a32_str(DRE_FNV32_INIT, tenant, 0);
	wh_tenant_subs **slot = &s->cache[h % WH_CACHE_SLOTS], *t;
	for (t = *slot; t != NULL && strcmp(t->tenant, tenant) != 0;
	     t = t->next)
		;
	if (t == NULL && (err = tenant_load(s, tenant, &t)) == DRE_OK) {
		t->next = *slot;
		*slot = t;
	}
	if (err == DRE_OK && t->n > 0) {
		const char **ids = dre_arena_get(a, t->n * sizeof *ids);
		for (size_t i = 0; ids != NULL && i < t->n; i++)
			if (wh_sub_wants(&t->subs[i], type)
			    && (ids[*np] = dre_arena_strdup(a, t->subs[i].id))
			        != NULL)
				(*np)++;
		if (ids == NULL)
			err = DRE_ENOMEM;
		*idsp = ids;
	}
	pthread_mutex_unlock(&s->cache_mu);
	return err;
}

dre_err
wh_wanted(wh *s, dre_arena *a, const char *tenant, const char *type, bool *yes)
{
	const char **ids;
	size_t       n = 0;
	dre_err      err = wh_subs_wanting(s, a, tenant, type, &ids, &n);
	*yes = err == DRE_OK && n > 0;
	return err;
}

dre_err
wh_fanout(wh *s, dre_batch *b, dre_arena *a, const char *tenant,
    const char *event_id, const char *type, const char *body, size_t blen,
    int64_t now, size_t *n)
{
	const char **ids;
	size_t       nids;
	dre_err      err = wh_subs_wanting(s, a, tenant, type, &ids, &nids);
	*n = 0;
	for (size_t i = 0; err == DRE_OK && i < nids; i++) {
		err = wh_enqueue(
		    s, b, a, tenant, ids[i], event_id, type, body, blen, now);
		if (err == DRE_OK)
			(*n)++;
	}
	return err;
}

dre_err
wh_open(wh *s, const char *path, const char *key_file, const dre_kvlist *kafka)
{
	memset(s, 0, sizeof(*s));
	s->o.timeout_ms = 10000;
	s->o.max_in_flight = 64;
	s->o.max_in_flight_per_sub = 8;
	s->o.retention_ms = 7LL * 86400 * 1000;
	dre_err err = dre_seal_key_load(s->seal_key, key_file);
	if (err != DRE_OK)
		return err;
	dre_store_cfg cfg = { .path = path, .cfs = wh_cfs, .ncfs = WH_NCFS };
	if ((err = dre_store_open(&s->st, &cfg)) != DRE_OK)
		return err;
	if ((s->cache_a = dre_arena_alloc(0)) == NULL) {
		dre_store_close(s->st);
		return DRE_ENOMEM;
	}
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->sub_mu, NULL);
	pthread_mutex_init(&s->cache_mu, NULL);
	if ((err = dre_outbox_open(&s->ob, s->st, WH_CF_OUTBOX, kafka))
	    != DRE_OK) {
		wh_close(s);
		return err;
	}
	return DRE_OK;
}

void
wh_close(wh *s)
{
	dre_outbox_close(s->ob);
	dre_store_close(s->st);
	dre_arena_free(s->cache_a);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->sub_mu);
	pthread_mutex_destroy(&s->cache_mu);
	s->ob = NULL;
	s->st = NULL;
	s->cache_a = NULL;
}
