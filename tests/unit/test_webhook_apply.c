// test_webhook_apply.c -- the webhook applier on a real store: a confirmed
// sale becomes one PENDING delivery (and schedule entry) per matching active
// subscription, the same event twice is one delivery, and the service's
// SideEffectResult is queued in the same batch (SUCCESS, or SKIPPED without
// a subscriber). The promotion follower: CREATED for an unknown promotion,
// UPDATED after, ACTIVATED / DEACTIVATED when the status enters or leaves
// ACTIVE, DELETED; a replayed or older change raises nothing. A change of a
// subscription holds for the next event applied (the matching's copy).
// Concurrency (run under ASan and TSan): subscriptions created, patched
// and deleted through the API while both appliers match a stream of sales
// and promotion changes against them -- a subscription there all along gets
// every event once, no delivery names a subscription that never existed,
// and a deleted subscription stays deleted (an update racing the delete
// answers 404, never writes it back).
#define _GNU_SOURCE // memmem
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "apply.h"
#include "dre/avro.h"
#include "dre/busmock.h"
#include "dre/clock.h"
#include "dre/uuid.h"
#include "handlers.h"
#include "webhook.h"
#include "testkit.h"

static dre_bus_mock *mock;
static char          dir[256], keyf[300];
static wh            s;
static dre_kvlist    props;

static int
setup(void **state)
{
	(void) state;
	if (tk_broker_open(&mock, &props) != 0
	    || tk_tmpdir(dir, sizeof dir, "webhook") != 0)
		return -1;
	snprintf(keyf, sizeof keyf, "%s.key", dir);
	return wh_open(&s, dir, keyf, &props) == DRE_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	(void) state;
	wh_close(&s);
	tk_broker_close(mock, &props);
	return tk_rmtree(dir) == 0 && tk_rmtree(keyf) == 0 ? 0 : -1;
}

static void
subscribe(const char *id, const char *type, bool active)
{
	const char *types[] = { type };
	dre_buf     sealed = { 0 };
	assert_int_equal(
	    dre_seal(&sealed, s.seal_key, "whsec_MDEyMzQ1Njc4OWFiY2RlZg=="),
	    DRE_OK);
	wh_sub     u = { .id = id,
		    .url = "https://hooks.example.com/x",
		    .types = types,
		    .ntypes = 1,
		    .active = active,
		    .sealed = sealed.data,
		    .max_attempts = 3,
		    .initial_s = 1,
		    .max_s = 10 };
	dre_batch *b = dre_batch_alloc();
	assert_int_equal(wh_sub_put(&s, b, "t1", &u), DRE_OK);
	assert_int_equal(wh_subs_write(&s, b, true), DRE_OK);
	dre_batch_free(b);
	dre_buf_free(&sealed);
}

static size_t
count(int cf, const char *needle)
{
	dre_store_iter *it = NULL;
	size_t          n = 0;
	assert_int_equal(dre_store_iter_open(&it, s.st, cf, NULL, 0), DRE_OK);
	const char *k, *v;
	size_t      kl, vl;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl))
		if (needle == NULL || memmem(v, vl, needle, strlen(needle)))
			n++;
	dre_store_iter_close(it);
	return n;
}

// result finds the SideEffectResult queued for txid: its status, or NULL.
static const char *
result(dre_arena *a, const char *txid)
{
	dre_store_iter *it = NULL;
	const char     *status = NULL;
	assert_int_equal(
	    dre_store_iter_open(&it, s.st, WH_CF_OUTBOX, NULL, 0), DRE_OK);
	const char *k, *v;
	size_t      kl, vl;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		const uint8_t *u = (const uint8_t *) v;
		size_t         tl = (size_t) u[0] << 8 | u[1];
		const uint8_t *kp = u + 2 + tl;
		size_t klen = (size_t) kp[0] << 24 | (size_t) kp[1] << 16
		    | (size_t) kp[2] << 8 | kp[3];
		dre_sfx_result r;
		if (tl == strlen("dre.sidefx.results")
		    && memcmp(v + 2, "dre.sidefx.results", tl) == 0
		    && dre_avro_decode_sfx_result(&r, a, v + 2 + tl + 4 + klen,
		           vl - (2 + tl + 4 + klen))
		        == DRE_OK
		    && strcmp(r.transaction_id, txid) == 0) {
			assert_string_equal(r.service, "webhook");
			status = r.status;
		}
	}
	dre_store_iter_close(it);
	return status;
}

// run applies the encoded event ev of topic with fn in one written batch,
// between the applier's batch hooks.
static void
run(dre_apply_fn fn, const char *topic, const dre_buf *ev, const char *eid)
{
	dre_msg       m = { .topic = topic,
		      .payload = (const uint8_t *) ev->data,
		      .len = ev->len };
	dre_batch    *b = dre_batch_alloc_indexed();
	dre_arena    *a = dre_arena_alloc(0);
	dre_apply_ctx x = { .st = s.st,
		.b = b,
		.a = a,
		.event_id = eid,
		.attempts = 1,
		.now_ms = 5 };
	wh_batch_begin(&s);
	assert_int_equal(fn(&s, &x, &m), DRE_OK);
	assert_int_equal(dre_store_write(s.st, b, true), DRE_OK);
	wh_batch_end(&s, DRE_OK);
	dre_batch_free(b);
	dre_arena_free(a);
}

static void
apply_sale(const char *tenant, const char *event_id, const char *txid)
{
	dre_tx_confirmed t = { 0 };
	snprintf(t.event_id, sizeof t.event_id, "%s", event_id);
	t.tenant = tenant;
	t.occurred_at = t.evaluated_at = t.transaction_time = 1;
	t.schema_version = 1;
	t.transaction_id = txid;
	t.transaction_counter = 1;
	t.currency = "EUR";
	t.subtotal = 1999;
	t.grand_total = 1999;
	dre_buf ev = { 0 };
	assert_int_equal(dre_avro_encode_tx_confirmed(&ev, &t), DRE_OK);
	run(wh_apply, "dre.transactions.confirmed", &ev, t.event_id);
	dre_buf_free(&ev);
}

static void
test_sale_becomes_deliveries(void **state)
{
	(void) state;
	subscribe("s-tx", "TRANSACTION_CONFIRMED", true);
	subscribe("s-all", "*", true);
	subscribe("s-off", "TRANSACTION_CONFIRMED", false);
	subscribe("s-budget", "BUDGET_EXHAUSTED", true);
	char eid[DRE_UUID_LEN + 1];
	dre_uuid_v4(eid);
	apply_sale("t1", eid, "TX-1");
	assert_int_equal(count(WH_CF_DELIVERIES, NULL), 2);
	assert_int_equal(count(WH_CF_DELIVERIES, "\"PENDING\""), 2);
	assert_int_equal(
	    count(WH_CF_DELIVERIES, "\"transactionId\":\"TX-1\""), 2);
	assert_int_equal(count(WH_CF_DELIVERIES, "\"grandTotal\":19.99"), 2);
	assert_int_equal(count(WH_CF_DUE, NULL), 2);
	dre_arena *a = dre_arena_alloc(0);
	assert_string_equal(result(a, "TX-1"), "SUCCESS");

	// The same event again (a producer retry the applier did not catch)
	// is the same two deliveries.
	apply_sale("t1", eid, "TX-1");
	assert_int_equal(count(WH_CF_DELIVERIES, NULL), 2);
	assert_int_equal(count(WH_CF_DUE, NULL), 2);

	// A tenant without subscribers: no delivery, a SKIPPED result.
	dre_uuid_v4(eid);
	apply_sale("t2", eid, "TX-2");
	assert_int_equal(count(WH_CF_DELIVERIES, NULL), 2);
	assert_string_equal(result(a, "TX-2"), "SKIPPED");
	dre_arena_free(a);
}

// api calls the subscriptions' API of tenant (id: the subscription's, p:
// one more parameter) and returns the status.
static int
api(const char *tenant, const char *method, const char *body, const char *id,
    const char *p)
{
	char        idp[64];
	const char *params[3] = { NULL, NULL, NULL };
	if (id != NULL) {
		snprintf(idp, sizeof idp, "id=%s", id);
		params[0] = idp;
		params[1] = p;
	}
	return tk_call(wh_routes, &s, method, tenant, body, params, NULL);
}

// sale_to counts the deliveries to subscription id after one more sale of
// tenant t3.
static size_t
sale_to(const char *id)
{
	static int n;
	char       eid[DRE_UUID_LEN + 1], txid[32], needle[80];
	dre_uuid_v4(eid);
	snprintf(txid, sizeof txid, "TX-T3-%d", ++n);
	apply_sale("t3", eid, txid);
	snprintf(needle, sizeof needle, "\"subscriptionId\":\"%s\"", id);
	return count(WH_CF_DELIVERIES, needle);
}

// The events are matched against a copy of the subscriptions: every change
// made through the API holds for the very next event applied after its
// answer (the copy is read again), a tenant seen without subscribers too.
static void
test_subscription_changes_hold_for_the_next_event(void **state)
{
	(void) state;
	const char *id = "00000000-0000-4000-8000-0000000000e3";
	dre_arena  *a = dre_arena_alloc(0);
	assert_int_equal(sale_to(id), 0);
	assert_string_equal(result(a, "TX-T3-1"), "SKIPPED");
	assert_int_equal(
	    api("t3", "webhook.WebhookSubscriptions.create",
	        "{\"id\":\"00000000-0000-4000-8000-0000000000e3\","
	        "\"url\":\"https://hooks.example.com/t3\","
	        "\"eventTypes\":[\"TRANSACTION_CONFIRMED\"]}",
	        NULL, NULL),
	    201);
	assert_int_equal(sale_to(id), 1);
	assert_string_equal(result(a, "TX-T3-2"), "SUCCESS");
	assert_int_equal(api("t3", "webhook.WebhookSubscriptions.update",
	                     "{\"active\":false}", id, "patch=1"),
	    200);
	assert_int_equal(sale_to(id), 1);
	assert_int_equal(api("t3", "webhook.WebhookSubscriptions.update",
	                     "{\"active\":true,\"eventTypes\":"
	                     "[\"COUPON_REDEEMED\"]}",
	                     id, "patch=1"),
	    200);
	assert_int_equal(sale_to(id), 1);
	assert_int_equal(api("t3", "webhook.WebhookSubscriptions.update",
	                     "{\"eventTypes\":[\"*\"]}", id, "patch=1"),
	    200);
	assert_int_equal(sale_to(id), 2);
	assert_int_equal(sale_to(id), 3);
	assert_int_equal(
	    api("t3", "webhook.WebhookSubscriptions.delete", NULL, id, NULL),
	    204);
	assert_int_equal(sale_to(id), 3);
	assert_string_equal(result(a, "TX-T3-7"), "SKIPPED");
	dre_arena_free(a);
}

// promo applies one change of promotion P1 (tenant t1) through the
// follower; status NULL = a DELETE.
static void
promo(int64_t version, const char *status)
{
	char             doc[128], eid[DRE_UUID_LEN + 1];
	dre_master_event e = { .tenant = "t1",
		.occurred_at = 1,
		.schema_version = 2,
		.entity_kind = "PROMOTION",
		.entity_id = "P1",
		.op = status ? "UPSERT" : "DELETE",
		.version = version };
	snprintf(doc, sizeof doc, "{\"id\":\"P1\",\"status\":\"%s\"}",
	    status ? status : "");
	if (status != NULL) {
		e.document = doc;
		e.document_len = strlen(doc);
	}
	dre_uuid_v4(eid);
	memcpy(e.event_id, eid, sizeof e.event_id);
	dre_buf ev = { 0 };
	assert_int_equal(dre_avro_encode_master(&ev, &e), DRE_OK);
	run(wh_promo_apply, "dre.master.promotions", &ev, e.event_id);
	dre_buf_free(&ev);
}

// promo_events counts the deliveries of type to subscription s-promo.
static size_t
promo_events(const char *type)
{
	char            needle[64];
	const char     *sub = "\"subscriptionId\":\"s-promo\"";
	dre_store_iter *it = NULL;
	size_t          n = 0;
	snprintf(needle, sizeof needle, "\"eventType\":\"%s\"", type);
	assert_int_equal(
	    dre_store_iter_open(&it, s.st, WH_CF_DELIVERIES, NULL, 0), DRE_OK);
	const char *k, *v;
	size_t      kl, vl;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl))
		if (memmem(v, vl, needle, strlen(needle))
		    && memmem(v, vl, sub, strlen(sub)))
			n++;
	dre_store_iter_close(it);
	return n;
}

static void
test_promotion_events(void **state)
{
	(void) state;
	subscribe("s-promo", "*", true);
	promo(10, "INACTIVE");
	assert_int_equal(promo_events("PROMOTION_CREATED"), 1);
	assert_int_equal(promo_events("PROMOTION_ACTIVATED"), 0);
	promo(10, "ACTIVE"); // a replay of version 10: nothing
	promo(12, "ACTIVE");
	assert_int_equal(promo_events("PROMOTION_CREATED"), 1);
	assert_int_equal(promo_events("PROMOTION_UPDATED"), 1);
	assert_int_equal(promo_events("PROMOTION_ACTIVATED"), 1);
	promo(11, "INACTIVE"); // older than the copy: nothing
	promo(13, "ACTIVE"); // still active: UPDATED only
	assert_int_equal(promo_events("PROMOTION_UPDATED"), 2);
	assert_int_equal(promo_events("PROMOTION_ACTIVATED"), 1);
	assert_int_equal(promo_events("PROMOTION_DEACTIVATED"), 0);
	promo(14, "EXPIRED");
	assert_int_equal(promo_events("PROMOTION_DEACTIVATED"), 1);
	promo(15, NULL);
	assert_int_equal(promo_events("PROMOTION_DELETED"), 1);
	promo(14, "ACTIVE"); // older than the deletion: nothing
	promo(16, "ACTIVE"); // written again: created again
	assert_int_equal(promo_events("PROMOTION_CREATED"), 2);
	assert_int_equal(promo_events("PROMOTION_ACTIVATED"), 2);
	assert_int_equal(promo_events("PROMOTION_UPDATED"), 3);
}

// ---- concurrency
// ------------------------------------------------------------

#define C_TENANT  "tc"
#define C_STABLE  "00000000-0000-4000-8000-00000000aaaa"
#define C_WRITERS 2
#define C_SUBS    40 // per writer: created, patched, deleted
#define C_SALES   240
#define C_PROMOS  64 // a multiple of C_BATCH, as C_SALES
#define C_BATCH   8 // events per applied batch

typedef struct {
	atomic_int  bad;
	atomic_int  writers_left;
	char        ids[C_WRITERS][C_SUBS][DRE_UUID_LEN + 1];
	atomic_int  made[C_WRITERS]; // ids[w][0..made) were created
	atomic_long patched, refused; // the racing patcher's 200s and 404s
} c_shared;

static c_shared cs;

static int
c_call(const char *method, const char *body, const char *id, const char *p)
{
	return api(C_TENANT, method, body, id, p);
}

static void *
c_writer(void *arg)
{
	int  w = (int) (intptr_t) arg;
	char body[256];
	for (int i = 0; i < C_SUBS; i++) {
		char *id = cs.ids[w][i];
		dre_uuid_v4(id);
		snprintf(body, sizeof body,
		    "{\"id\":\"%s\",\"url\":\"https://hooks.example.com/"
		    "%d\",\"eventTypes\":[\"%s\"]}",
		    id, w, i % 2 ? "TRANSACTION_CONFIRMED" : "*");
		if (c_call("webhook.WebhookSubscriptions.create", body, NULL,
		        NULL)
		    != 201)
			atomic_fetch_add(&cs.bad, 1);
		atomic_store(&cs.made[w], i + 1);
		if (c_call("webhook.WebhookSubscriptions.update",
		        "{\"active\":false}", id, "patch=1")
		        != 200
		    || c_call("webhook.WebhookSubscriptions.update",
		           "{\"active\":true}", id, "patch=1")
		        != 200
		    || c_call("webhook.WebhookSubscriptions.delete", NULL, id,
		           NULL)
		        != 204
		    || c_call(
		           "webhook.WebhookSubscriptions.get", NULL, id, NULL)
		        != 404)
			atomic_fetch_add(&cs.bad, 1);
	}
	atomic_fetch_sub(&cs.writers_left, 1);
	return NULL;
}

// c_patcher patches the subscription each writer made last, racing the
// writer's own patches and delete: 200 or 404, nothing else.
static void *
c_patcher(void *arg)
{
	(void) arg;
	while (atomic_load(&cs.writers_left) > 0) {
		for (int w = 0; w < C_WRITERS; w++) {
			int n = atomic_load(&cs.made[w]);
			if (n == 0)
				continue;
			int st = c_call("webhook.WebhookSubscriptions.update",
			    "{\"description\":\"raced\"}", cs.ids[w][n - 1],
			    "patch=1");
			if (st == 200)
				atomic_fetch_add(&cs.patched, 1);
			else if (st == 404)
				atomic_fetch_add(&cs.refused, 1);
			else
				atomic_fetch_add(&cs.bad, 1);
		}
	}
	return NULL;
}

// c_apply applies the encoded events evs[0..n) of topic with fn in one
// batch, as the applier does.
static void
c_apply(dre_apply_fn fn, const char *topic, dre_buf *evs, char (*eids)[40],
    size_t n)
{
	dre_batch *b = dre_batch_alloc_indexed();
	dre_arena *a = dre_arena_alloc(0);
	dre_err    err = DRE_OK;
	wh_batch_begin(&s);
	for (size_t i = 0; i < n && err == DRE_OK; i++) {
		dre_msg       m = { .topic = topic,
			      .payload = (const uint8_t *) evs[i].data,
			      .len = evs[i].len };
		dre_apply_ctx x = { .st = s.st,
			.b = b,
			.a = a,
			.event_id = eids[i],
			.attempts = 1,
			.now_ms = dre_now_ms() };
		err = fn(&s, &x, &m);
	}
	if (err == DRE_OK)
		err = dre_store_write(s.st, b, true);
	wh_batch_end(&s, err);
	if (err != DRE_OK)
		atomic_fetch_add(&cs.bad, 1);
	dre_batch_free(b);
	dre_arena_free(a);
}

// c_event encodes event n of a stream into ev and its id into eid: a sale,
// or (promo) the creation of an active promotion, CREATED and ACTIVATED.
static void
c_event(bool promo, int n, dre_buf *ev, char *eid)
{
	char    name[32];
	dre_err err;
	memset(ev, 0, sizeof *ev);
	snprintf(name, sizeof name, "%s-%d", promo ? "CP" : "CTX", n);
	if (promo) {
		dre_master_event e = { .tenant = C_TENANT,
			.occurred_at = 1,
			.schema_version = 2,
			.entity_kind = "PROMOTION",
			.entity_id = name,
			.op = "UPSERT",
			.version = 1,
			.document = "{\"status\":\"ACTIVE\"}",
			.document_len = 19 };
		dre_uuid_v4(e.event_id);
		snprintf(eid, 40, "%s", e.event_id);
		err = dre_avro_encode_master(ev, &e);
	} else {
		dre_tx_confirmed t = { .tenant = C_TENANT,
			.occurred_at = 1,
			.evaluated_at = 1,
			.transaction_time = 1,
			.schema_version = 1,
			.transaction_id = name,
			.transaction_counter = 1,
			.currency = "EUR" };
		dre_uuid_v4(t.event_id);
		snprintf(eid, 40, "%s", t.event_id);
		err = dre_avro_encode_tx_confirmed(ev, &t);
	}
	if (err != DRE_OK)
		atomic_fetch_add(&cs.bad, 1);
}

// c_stream applies C_SALES sales (arg NULL) or C_PROMOS promotions, as the
// appliers do: C_BATCH events a batch.
static void *
c_stream(void *arg)
{
	bool    promo = arg != NULL;
	dre_buf evs[C_BATCH];
	char    eids[C_BATCH][40];
	for (int i = 0; i < (promo ? C_PROMOS : C_SALES); i += C_BATCH) {
		for (int k = 0; k < C_BATCH; k++)
			c_event(promo, i + k, &evs[k], eids[k]);
		c_apply(promo ? wh_promo_apply : wh_apply,
		    promo ? "dre.master.promotions"
		          : "dre.transactions.confirmed",
		    evs, eids, C_BATCH);
		for (int k = 0; k < C_BATCH; k++)
			dre_buf_free(&evs[k]);
	}
	return NULL;
}

// c_known: id is the stable subscription or one a writer created.
static bool
c_known(const char *id, size_t len)
{
	if (len == strlen(C_STABLE) && memcmp(id, C_STABLE, len) == 0)
		return true;
	for (int w = 0; w < C_WRITERS; w++)
		for (int i = 0; i < C_SUBS; i++)
			if (len == strlen(cs.ids[w][i])
			    && memcmp(id, cs.ids[w][i], len) == 0)
				return true;
	return false;
}

static void
test_subscriptions_change_while_matching(void **state)
{
	(void) state;
	memset(&cs, 0, sizeof cs);
	atomic_store(&cs.writers_left, C_WRITERS);
	assert_int_equal(c_call("webhook.WebhookSubscriptions.create",
	                     "{\"id\":\"" C_STABLE "\",\"url\":"
	                     "\"https://hooks.example.com/s\","
	                     "\"eventTypes\":[\"*\"]}",
	                     NULL, NULL),
	    201);
	pthread_t th[C_WRITERS + 3];
	for (int w = 0; w < C_WRITERS; w++)
		assert_int_equal(pthread_create(&th[w], NULL, c_writer,
		                     (void *) (intptr_t) w),
		    0);
	assert_int_equal(
	    pthread_create(&th[C_WRITERS], NULL, c_patcher, NULL), 0);
	assert_int_equal(
	    pthread_create(&th[C_WRITERS + 1], NULL, c_stream, NULL), 0);
	assert_int_equal(
	    pthread_create(&th[C_WRITERS + 2], NULL, c_stream, &cs), 0);
	for (int i = 0; i < C_WRITERS + 3; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&cs.bad), 0);
	print_message("racing patches: %ld applied, %ld refused (404)\n",
	    atomic_load(&cs.patched), atomic_load(&cs.refused));

	// Only the stable subscription is left: no delete was undone.
	char            prefix[WH_KEY_MAX];
	size_t          pl = wh_key(prefix, sizeof prefix, C_TENANT, "");
	dre_store_iter *it = NULL;
	const char     *k, *v;
	size_t          kl, vl, subs = 0, stable = 0, deliveries = 0;
	assert_int_equal(
	    dre_store_iter_open(&it, s.st, WH_CF_SUBS, prefix, pl), DRE_OK);
	while (dre_store_iter_next(it, &k, &kl, &v, &vl))
		subs++;
	dre_store_iter_close(it);
	assert_int_equal(subs, 1);
	// The stable one got every sale and both events of every promotion,
	// once; every delivery names a subscription that existed.
	assert_int_equal(
	    dre_store_iter_open(&it, s.st, WH_CF_DELIVERIES, prefix, pl),
	    DRE_OK);
	static const char tag[] = "\"subscriptionId\":\"";
	while (dre_store_iter_next(it, &k, &kl, &v, &vl)) {
		const char *p = memmem(v, vl, tag, sizeof tag - 1);
		assert_non_null(p);
		p += sizeof tag - 1;
		const char *q = memchr(p, '"', vl - (size_t) (p - v));
		assert_non_null(q);
		assert_true(c_known(p, (size_t) (q - p)));
		stable += (size_t) (q - p) == strlen(C_STABLE)
		    && memcmp(p, C_STABLE, strlen(C_STABLE)) == 0;

		deliveries++;
	}
	dre_store_iter_close(it);
	assert_int_equal(stable, C_SALES + 2 * C_PROMOS);
	assert_true(deliveries >= stable);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sale_becomes_deliveries),
		cmocka_unit_test(test_promotion_events),
		cmocka_unit_test(
		    test_subscription_changes_hold_for_the_next_event),
		cmocka_unit_test(test_subscriptions_change_while_matching),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
