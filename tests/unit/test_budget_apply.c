// test_budget_apply.c -- budget arithmetic (thresholds, exhaustion,
// overspend, a raised total) and the applier function on a real store:
// consumption, events and the side-effect result of one confirmed sale.
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
#include "testkit.h"

static Dre__BudgetRecord
record(int64_t total, int32_t *th, size_t nth)
{
	Dre__BudgetRecord r = DRE__BUDGET_RECORD__INIT;
	r.id = "b-1";
	r.name = "Summer";
	r.currency = "EUR";
	r.total = total;
	r.thresholds = th;
	r.n_thresholds = nth;
	return r;
}

static void
test_thresholds_and_exhaustion(void **state)
{
	dre_arena        *a = dre_arena_alloc(0);
	int32_t           th[] = { 50, 80, 100 };
	Dre__BudgetRecord r = record(10000, th, 3);
	bud_change        c;

	bud_consume(&r, 4999, a, &c);
	assert_int_equal(c.ncrossed, 0);
	assert_false(c.exhausted_now);
	bud_consume(&r, 1, a, &c); // exactly 50 %
	assert_int_equal(c.ncrossed, 1);
	assert_int_equal(c.crossed[0], 50);
	bud_consume(&r, 4000, a, &c); // 90 %: 80 crossed, 50 not again
	assert_int_equal(c.ncrossed, 1);
	assert_int_equal(c.crossed[0], 80);
	assert_false(bud_exhausted(&r));
	bud_consume(&r, 1500, a, &c); // past the total: recorded in full
	assert_int_equal(r.consumed, 10500);
	assert_int_equal(c.ncrossed, 1);
	assert_int_equal(c.crossed[0], 100);
	assert_true(c.exhausted_now);
	assert_true(bud_exhausted(&r));
	assert_int_equal(r.transactions, 4);
	bud_consume(&r, 0, a, &c); // stays exhausted, nothing new
	assert_false(c.exhausted_now);
	assert_int_equal(c.ncrossed, 0);

	// Raising the total: ACTIVE again, crossings above the new level
	// forgotten (announced again when reached).
	bud_retotal(&r, 20000, a, &c);
	assert_true(c.active_now);
	assert_false(bud_exhausted(&r));
	assert_int_equal(r.n_crossed, 1); // 52.5 %: only 50 reached
	assert_int_equal(r.crossed[0], 50);
	bud_consume(&r, 5500, a, &c); // 80 %
	assert_int_equal(c.ncrossed, 1);
	assert_int_equal(c.crossed[0], 80);
	// Lowering it below the consumption exhausts it.
	bud_retotal(&r, 100, a, &c);
	assert_true(c.exhausted_now);
	assert_int_equal(c.ncrossed, 1);
	assert_int_equal(c.crossed[0], 100);
	dre_arena_free(a);
}

static void
test_zero_total_is_exhausted(void **state)
{
	Dre__BudgetRecord r = record(0, NULL, 0);
	assert_true(bud_exhausted(&r));
	assert_true(bud_reached(&r, 100));
}

// ---- the applier function on a store --------------------------------------

static dre_bus_mock *mock;
static char          dir[256];
static bud           s;
static dre_kvlist    props;

static int
setup(void **state)
{
	if (tk_broker_open(&mock, &props) != 0
	    || tk_tmpdir(dir, sizeof dir, "budget") != 0)
		return -1;
	return bud_open(&s, dir, &props) == DRE_OK ? 0 : -1;
}

static int
teardown(void **state)
{
	bud_close(&s);
	tk_broker_close(mock, &props);
	return tk_rmtree(dir);
}

// outbox_topics lists the topics of the events waiting in the outbox.
static size_t
outbox_topics(char topics[][64], size_t max, dre_buf *last_sidefx)
{
	dre_store_iter *it = NULL;
	size_t          n = 0;
	assert_int_equal(
	    dre_store_iter_open(&it, s.st, BUD_CF_OUTBOX, NULL, 0), DRE_OK);
	const char *k, *v;
	size_t      kl, vl;
	while (dre_store_iter_next(it, &k, &kl, &v, &vl) && n < max) {
		const uint8_t *u = (const uint8_t *) v;
		size_t         tl = (size_t) u[0] << 8 | u[1];
		snprintf(topics[n], 64, "%.*s", (int) tl, v + 2);
		const uint8_t *kp = u + 2 + tl;
		size_t klen = (size_t) kp[0] << 24 | (size_t) kp[1] << 16
		    | (size_t) kp[2] << 8 | kp[3];
		if (strcmp(topics[n], "dre.sidefx.results") == 0) {
			dre_buf_reset(last_sidefx);
			dre_buf_append(last_sidefx, v + 2 + tl + 4 + klen,
			    vl - (2 + tl + 4 + klen));
		}
		n++;
	}
	dre_store_iter_close(it);
	return n;
}

static void
apply_sale(const char *txid, const dre_tx_promotion *p, size_t np)
{
	dre_tx_confirmed t = { 0 };
	dre_uuid_v4(t.event_id);
	t.tenant = "t1";
	t.occurred_at = t.evaluated_at = t.transaction_time = 1;
	t.schema_version = 1;
	t.transaction_id = txid;
	t.transaction_counter = 1;
	t.currency = "EUR";
	t.promotions = p;
	t.npromotions = np;
	dre_buf ev = { 0 };
	assert_int_equal(dre_avro_encode_tx_confirmed(&ev, &t), DRE_OK);
	dre_msg       m = { .topic = "dre.transactions.confirmed",
		      .payload = (const uint8_t *) ev.data,
		      .len = ev.len };
	dre_batch    *b = dre_batch_alloc_indexed();
	dre_arena    *a = dre_arena_alloc(0);
	dre_apply_ctx x = { .st = s.st,
		.b = b,
		.a = a,
		.event_id = t.event_id,
		.attempts = 1,
		.now_ms = 5 };
	bud_batch_begin(&s);
	assert_int_equal(bud_apply_confirmed(&s, &x, &m), DRE_OK);
	assert_int_equal(dre_store_write(s.st, b, true), DRE_OK);
	bud_batch_end(&s, DRE_OK);
	dre_batch_free(b);
	dre_arena_free(a);
	dre_buf_free(&ev);
}

static void
test_apply_sale(void **state)
{
	// Budget b-1: 10.00 with thresholds 50/100; b-2: 100.00.
	dre_arena        *a = dre_arena_alloc(0);
	int32_t           th[] = { 50, 100 };
	Dre__BudgetRecord r1 = record(1000, th, 2);
	Dre__BudgetRecord r2 = record(10000, NULL, 0);
	r2.id = "b-2";
	dre_batch *b = dre_batch_alloc();
	assert_int_equal(bud_put(&s, b, a, "t1", &r1), DRE_OK);
	assert_int_equal(bud_put(&s, b, a, "t1", &r2), DRE_OK);
	assert_int_equal(dre_store_write(s.st, b, true), DRE_OK);
	dre_batch_free(b);

	// Two promotions share b-1; the second also uses b-2; a third uses a
	// budget that does not exist.
	const char *const ids1[] = { "b-1" };
	const char *const ids2[] = { "b-1", "b-2" };
	dre_tx_promotion  p[2] = {
		 { "p-1", "One", "ARTICLE", 300, 300, NULL, ids1, 1 },
		 { "p-2", "Two", "RECEIPT", 250, 400, NULL, ids2, 2 },
	};
	apply_sale("TX-1", p, 2);
	Dre__BudgetRecord *g = NULL;
	assert_int_equal(bud_get(&s, NULL, a, "t1", "b-1", &g), DRE_OK);
	assert_int_equal(g->consumed, 550);
	assert_int_equal(g->transactions, 1);
	assert_int_equal(g->n_crossed, 1); // 55 %
	assert_int_equal(bud_get(&s, NULL, a, "t1", "b-2", &g), DRE_OK);
	assert_int_equal(g->consumed, 250);

	char    topics[16][64];
	dre_buf sfx = { 0 };
	size_t  n = outbox_topics(topics, 16, &sfx);
	// threshold 50 of b-1, then the result
	assert_int_equal(n, 2);
	assert_string_equal(topics[0], "dre.budget.events");
	assert_string_equal(topics[1], "dre.sidefx.results");
	dre_sfx_result res;
	assert_int_equal(
	    dre_avro_decode_sfx_result(&res, a, sfx.data, sfx.len), DRE_OK);
	assert_string_equal(res.service, "budget");
	assert_string_equal(res.status, "SUCCESS");
	assert_int_equal(res.nbudgets, 2);
	assert_string_equal(res.budgets[0].budget_id, "b-1");
	assert_int_equal(res.budgets[0].amount, 550);
	assert_string_equal(res.budgets[0].budget_status, "ACTIVE");

	// The sale that exhausts b-1: EXHAUSTED status, events, result.
	dre_tx_promotion p3[2] = {
		{ "p-1", "One", "ARTICLE", 450, 450, NULL, ids1, 1 },
		{ "p-9", "Ghost", "ARTICLE", 100, 100, NULL,
		    (const char *const[]) { "b-none" }, 1 },
	};
	apply_sale("TX-2", p3, 2);
	assert_int_equal(bud_get(&s, NULL, a, "t1", "b-1", &g), DRE_OK);
	assert_int_equal(g->consumed, 1000);
	assert_true(bud_exhausted(g));
	assert_true(g->version > 0);
	n = outbox_topics(topics, 16, &sfx);
	// + threshold 100, BUDGET_EXHAUSTED, status, result
	assert_int_equal(n, 6);
	assert_string_equal(topics[4], "dre.budgets.status");
	assert_int_equal(
	    dre_avro_decode_sfx_result(&res, a, sfx.data, sfx.len), DRE_OK);
	assert_string_equal(res.status, "FAILED"); // b-none is unknown
	assert_non_null(strstr(res.reason, "b-none"));
	assert_int_equal(res.nbudgets, 1);
	assert_string_equal(res.budgets[0].budget_status, "EXHAUSTED");
	assert_int_equal(res.budgets[0].budget_version, g->version);
	dre_buf_free(&sfx);
	dre_arena_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thresholds_and_exhaustion),
		cmocka_unit_test(test_zero_total_is_exhausted),
		cmocka_unit_test_setup_teardown(
		    test_apply_sale, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
