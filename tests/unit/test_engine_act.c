// test_engine_act.c -- the action arithmetic of engine_act.c at the limits
// of the wire (quantities Decimal(15,3), prices and values Decimal(15,2)):
// cases fuzz_engine found, each priced without overflow and with the
// line invariants intact.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dre/money.h"
#include "engine.h"

#define TENANT "t"
#define PROMO  "70000000-0000-4000-8000-000000000001"

// price_one loads one promotion with the action act in mode, prices one
// line of article A (qty thousandths at price minor units) and returns the
// line's discount after checking the line invariants.
static int64_t
price_one(const char *mode, const char *act, int64_t qty, int64_t price)
{
	char doc[1024];
	snprintf(doc, sizeof(doc),
	    "{\"id\":\"" PROMO "\",\"name\":\"p\",\"type\":\"ARTICLE\","
	    "\"status\":\"ACTIVE\",\"calculationConfig\":{\"mode\":\"%s\"},"
	    "\"conditions\":[],\"actions\":[%s]}",
	    mode, act);
	eng_engine *e;
	assert_int_equal(eng_alloc(&e), DRE_OK);
	eng_master_change c
	    = { ENG_MK_PROMOTION, TENANT, PROMO, 1, doc, strlen(doc) };
	bool applied = false;
	assert_int_equal(eng_apply(e, &c, 1, &applied), DRE_OK);
	assert_true(applied);

	dre_arena *a = dre_arena_alloc(0);
	assert_non_null(a);
	Dre__BasketItem it = DRE__BASKET_ITEM__INIT;
	it.article_number = "A";
	it.quantity = qty;
	it.unit_price = price;
	Dre__BasketItem     *items[] = { &it };
	Dre__EvaluateRequest req = DRE__EVALUATE_REQUEST__INIT;
	req.items = items;
	req.n_items = 1;
	req.has_timestamp_ms = true;
	req.timestamp_ms = 1780000000000;
	eng_eval_ctx           ctx = { .tenant = TENANT,
		          .now_ms = 1780000000000,
		          .counter = 1,
		          .transaction_id = "T",
		          .currency = "EUR" };
	const eng_index       *ix = eng_acquire(e);
	Dre__EvaluateResponse *r = NULL;
	eng_eval_error         err;
	assert_int_equal(eng_evaluate(&r, a, ix, &req, &ctx, &err), DRE_OK);
	assert_int_equal(r->n_line_items, 1);
	const Dre__LineItem *li = r->line_items[0];
	assert_int_equal(li->line_total, dre_mul_qty(price, qty));
	assert_true(li->line_discount >= 0);
	assert_true(li->line_discount <= li->line_total);
	assert_int_equal(li->line_net, li->line_total - li->line_discount);
	assert_int_equal(r->totals->discount, li->line_discount);
	int64_t d = li->line_discount;
	eng_index_release(ix);
	dre_arena_free(a);
	eng_free(e);
	return d;
}

// A multiplicative UNIT_PRICE above the unit price gives nothing, however
// many units: (left x 1000 - value x qty) x units once overflowed 128 bits
// (UBSan: signed integer overflow in markdown).
static void
test_unit_price_above_price_huge_quantity(void **state)
{
	const char *act = "{\"type\":\"ARTICLE\",\"discountType\":"
	                  "\"UNIT_PRICE\",\"value\":5138978063441.84}";
	assert_int_equal(
	    price_one("MULTIPLICATIVE", act, 57594021195511, 4719), 0);
	assert_int_equal(price_one("ADDITIVE", act, 57594021195511, 4719), 0);
	const char *max = "{\"type\":\"ARTICLE\",\"discountType\":"
	                  "\"UNIT_PRICE\",\"value\":9999999999999.99}";
	assert_int_equal(
	    price_one("MULTIPLICATIVE", max, 999999999999999, 1), 0);
}

// Below the price it still sells each unit at the value: 47.19 down to
// 10.00 on 57,594,021,195.511 units.
static void
test_unit_price_below_price_huge_quantity(void **state)
{
	const char *act = "{\"type\":\"ARTICLE\",\"discountType\":"
	                  "\"UNIT_PRICE\",\"value\":10.00}";
	int64_t     qty = 57594021195511, total = dre_mul_qty(4719, qty);
	int64_t     want = total - dre_mul_qty(1000, qty);
	int64_t     mult = price_one("MULTIPLICATIVE", act, qty, 4719);
	int64_t     add = price_one("ADDITIVE", act, qty, 4719);
	// Both within a cent of the exact 37.19 x qty.
	assert_true(llabs(mult - want) <= 1);
	assert_true(llabs(add - want) <= 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unit_price_above_price_huge_quantity),
		cmocka_unit_test(test_unit_price_below_price_huge_quantity),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
