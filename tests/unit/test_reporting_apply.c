// test_reporting_apply.c -- report buckets: day of a sale, keys, folding,
// and the applier function on a real store.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "apply.h"
#include "dre/busmock.h"
#include "dre/uuid.h"
#include "testkit.h"

static void
test_day_key_fold(void **state)
{
	char day[11];
	rep_day(day, 1780842645000); // 2026-06-07T14:30:45Z
	assert_string_equal(day, "2026-06-07");
	rep_day(day, 1780876799999); // the day's last millisecond
	assert_string_equal(day, "2026-06-07");
	rep_day(day, 1780876800000);
	assert_string_equal(day, "2026-06-08");

	const char *parts[3] = { "t", "p", NULL };
	char        key[16];
	assert_int_equal(rep_key(key, sizeof(key), 'p', parts, 3), 5);
	assert_memory_equal(key, "pt\0p\0", 5);
	assert_int_equal(rep_key(key, 4, 'p', parts, 3), 0);

	dre_arena      *a = dre_arena_alloc(0);
	Dre__Aggregate *g = rep_add(NULL, a, 150, 20, "EUR", "N", "ARTICLE");
	g = rep_add(g, a, 50, 10, "EUR", NULL, NULL);
	g = rep_add(g, a, 0, 30, "EUR", "N2", NULL);
	assert_int_equal(g->count, 3);
	assert_int_equal(g->amount, 200);
	assert_int_equal(g->first_at, 10);
	assert_int_equal(g->last_at, 30);
	assert_string_equal(g->name, "N2");
	assert_string_equal(g->type, "ARTICLE");
	dre_arena_free(a);
}

static void
test_apply(void **state)
{
	dre_bus_mock *mock = NULL;
	dre_kvlist    props = { 0 };
	char          dir[128];
	rep_svc       s;
	memset(&s, 0, sizeof(s));
	assert_int_equal(tk_broker_open(&mock, &props), 0);
	assert_int_equal(tk_tmpdir(dir, sizeof dir, "reporting"), 0);
	assert_int_equal(rep_open(&s, dir, &props), DRE_OK);

	const char *const bids[] = { "b-1" };
	dre_tx_promotion  p
	    = { "p-1", "One", "ARTICLE", 125, 200, NULL, bids, 1 };
	for (int i = 0; i < 3; i++) {
		dre_tx_confirmed t = { 0 };
		dre_uuid_v4(t.event_id);
		t.tenant = "t1";
		t.transaction_id = "TX";
		t.transaction_counter = 1;
		t.transaction_time = 1780842645000 + i * 86400000LL / 2;
		t.channel = i == 2 ? NULL : "ONLINE";
		t.pos_group_code = "S1";
		t.currency = "EUR";
		t.promotions = &p;
		t.npromotions = 1;
		dre_buf ev = { 0 };
		assert_int_equal(
		    dre_avro_encode_tx_confirmed(&ev, &t), DRE_OK);
		dre_msg m
		    = { .payload = (const uint8_t *) ev.data, .len = ev.len };
		dre_batch    *b = dre_batch_alloc_indexed();
		dre_arena    *a = dre_arena_alloc(0);
		dre_apply_ctx x
		    = { .st = s.st, .b = b, .a = a, .attempts = 1 };
		assert_int_equal(rep_apply_confirmed(&s, &x, &m), DRE_OK);
		assert_int_equal(dre_store_write(s.st, b, true), DRE_OK);
		dre_batch_free(b);
		dre_arena_free(a);
		dre_buf_free(&ev);
	}
	// 14:30 on the 7th, then 02:30 and 14:30 on the 8th (the last one
	// without a channel): three buckets, and the budget's day sums.
	const char *k1[5] = { "t1", "p-1", "2026-06-07", "ONLINE", "S1" };
	const char *k2[5] = { "t1", "p-1", "2026-06-08", "ONLINE", "S1" };
	const char *k3[5] = { "t1", "p-1", "2026-06-08", "", "S1" };
	const char *const *keys[3] = { k1, k2, k3 };
	for (int i = 0; i < 3; i++) {
		char   key[256], *v = NULL;
		size_t vl = 0, kl = rep_key(key, sizeof(key), 'p', keys[i], 5);
		assert_int_equal(
		    dre_store_get(s.st, REP_CF_AGG, key, kl, &v, &vl), DRE_OK);
		Dre__Aggregate *g
		    = dre__aggregate__unpack(NULL, vl, (const uint8_t *) v);
		assert_non_null(g);
		assert_int_equal(g->count, 1);
		assert_int_equal(g->amount, 125);
		dre__aggregate__free_unpacked(g, NULL);
		free(v);
	}
	const char *bk[3] = { "t1", "b-1", "2026-06-08" };
	char        key[256], *v = NULL;
	size_t      vl = 0, kl = rep_key(key, sizeof(key), 'b', bk, 3);
	assert_int_equal(
	    dre_store_get(s.st, REP_CF_AGG, key, kl, &v, &vl), DRE_OK);
	Dre__Aggregate *g
	    = dre__aggregate__unpack(NULL, vl, (const uint8_t *) v);
	assert_int_equal(g->count, 2);
	assert_int_equal(g->amount, 250);
	dre__aggregate__free_unpacked(g, NULL);
	free(v);

	rep_close(&s);
	tk_broker_close(mock, &props);
	assert_int_equal(tk_rmtree(dir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_day_key_fold),
		cmocka_unit_test(test_apply),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
