// test_webhook_apply.c -- the webhook applier on a real store: a confirmed
// sale becomes one PENDING delivery (and schedule entry) per matching active
// subscription, the same event twice is one delivery, and the service's
// SideEffectResult is queued in the same batch (SUCCESS, or SKIPPED without
// a subscriber). The promotion follower: CREATED for an unknown promotion,
// UPDATED after, ACTIVATED / DEACTIVATED when the status enters or leaves
// ACTIVE, DELETED; a replayed or older change raises nothing.
#define _GNU_SOURCE // memmem
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "apply.h"
#include "dre/avro.h"
#include "dre/busmock.h"
#include "dre/uuid.h"
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
	    wh_seal(&sealed, s.seal_key, "whsec_MDEyMzQ1Njc4OWFiY2RlZg=="),
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
	assert_int_equal(dre_store_write(s.st, b, true), DRE_OK);
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

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sale_becomes_deliveries),
		cmocka_unit_test(test_promotion_events),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
