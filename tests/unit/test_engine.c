// test_engine.c -- the engine: seed 002 example field by field, every
// condition and discount type of this slice, stacking, rounding, returns, POS
// groups, status/validity, and index updates.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dre/clock.h"
#include "engine.h"

#define TENANT     "tenant-abc"
#define PG_ID      "60000000-0000-4000-8000-000000000001"
#define SEED_PROMO "10000000-0000-4000-8000-000000000001"

// ---- fixtures
// ------------------------------------------------------------------

typedef struct {
	eng_engine *e;
	dre_arena  *a;
	int64_t     version;
} fx;

static int
setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(eng_alloc(&f->e), DRE_OK);
	f->a = dre_arena_alloc(0);
	assert_non_null(f->a);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	fx *f = *state;
	eng_free(f->e);
	dre_arena_free(f->a);
	free(f);
	return 0;
}

static void
put(fx *f, eng_master_kind kind, const char *key, const char *doc)
{
	eng_master_change c
	    = { kind, TENANT, key, ++f->version, doc, doc ? strlen(doc) : 0 };
	bool applied;
	assert_int_equal(eng_apply(f->e, &c, 1000, &applied), DRE_OK);
	assert_true(applied);
}

// promo adds a promotion; conds and acts are JSON array bodies, extra is
// further members (with a trailing comma) or "".
static void
promo(fx *f, const char *id, const char *name, const char *extra,
    const char *conds, const char *acts)
{
	char doc[4096];
	snprintf(doc, sizeof(doc),
	    "{\"id\":\"%s\",\"name\":\"%s\",\"type\":\"ARTICLE\","
	    "%s%s\"conditions\":[%s],\"actions\":[%s]}",
	    id, name,
	    strstr(extra, "\"status\"") ? "" : "\"status\":\"ACTIVE\",", extra,
	    conds, acts);
	put(f, ENG_MK_PROMOTION, id, doc);
}

static Dre__BasketItem *
item(fx *f, const char *ref, const char *art, int64_t qty, int64_t price)
{
	Dre__BasketItem *it = dre_arena_get(f->a, sizeof(*it));
	dre__basket_item__init(it);
	it->line_reference = (char *) ref;
	it->article_number = (char *) art;
	it->quantity = qty;
	it->unit_price = price;
	return it;
}

static Dre__EvaluateRequest *
request(fx *f, size_t n, ...)
{
	Dre__EvaluateRequest *r = dre_arena_get(f->a, sizeof(*r));
	dre__evaluate_request__init(r);
	r->pos_group_id = PG_ID;
	r->items = dre_arena_get(f->a, (n + 1) * sizeof(*r->items));
	va_list ap;
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		r->items[r->n_items++] = va_arg(ap, Dre__BasketItem *);
	va_end(ap);
	int64_t ts;
	assert_int_equal(
	    dre_time_parse(&ts, "2026-06-07T14:30:00Z", 20), DRE_OK);
	r->has_timestamp_ms = true;
	r->timestamp_ms = ts;
	return r;
}

static Dre__EvaluateResponse *
eval_ctx(fx *f, const Dre__EvaluateRequest *r, bool simulate)
{
	eng_eval_ctx           ctx = { .tenant = TENANT,
		          .now_ms = 1780842601234,
		          .counter = 1,
		          .transaction_id = "TXN-2026-001",
		          .currency = "EUR",
		          .instance_id = "STORE-001",
		          .simulate = simulate };
	const eng_index       *ix = eng_acquire(f->e);
	Dre__EvaluateResponse *resp = NULL;
	eng_eval_error         err;
	assert_int_equal(eng_evaluate(&resp, f->a, ix, r, &ctx, &err), DRE_OK);
	eng_index_release(ix);
	// Every response must pack: required fields are all set.
	size_t   len = dre__evaluate_response__get_packed_size(resp);
	uint8_t *buf = malloc(len + 1);
	dre__evaluate_response__pack(resp, buf);
	Dre__EvaluateResponse *back
	    = dre__evaluate_response__unpack(NULL, len, buf);
	assert_non_null(back);
	dre__evaluate_response__free_unpacked(back, NULL);
	free(buf);
	return resp;
}

static Dre__EvaluateResponse *
eval(fx *f, const Dre__EvaluateRequest *r)
{
	return eval_ctx(f, r, false);
}

// disc returns the discount of line i (0 when none).
static int64_t
disc(const Dre__EvaluateResponse *r, size_t i)
{
	assert_true(i < r->n_line_items);
	return r->line_items[i]->line_discount;
}

// ---- the seed example
// ------------------------------------------------------------

static void
seed_setup(fx *f)
{
	put(f, ENG_MK_POS_GROUP, PG_ID,
	    "{\"id\":\"" PG_ID "\",\"code\":\"STORE-001\",\"name\":\"S1\"}");
	promo(f, SEED_PROMO, "Electronics 10% Off",
	    "\"validFrom\":\"2026-01-01T00:00:00Z\","
	    "\"validTo\":\"2026-12-31T23:59:59Z\",\"priority\":100,",
	    "{\"type\":\"ARTICLE_GROUP\",\"values\":[\"ELECTRONICS\"]}",
	    "{\"type\":\"ARTICLE_GROUP\",\"discountType\":\"PERCENTAGE\","
	    "\"value\":10,\"target\":{\"articleGroups\":[\"ELECTRONICS\"]}}");
}

static void
test_seed_example(void **state)
{
	fx *f = *state;
	seed_setup(f);
	Dre__BasketItem *l1 = item(f, "L1", "ART-1001", 2000, 8999);
	l1->ean = "4007817327098";
	l1->article_group_id = "ELECTRONICS";
	Dre__BasketItem      *l2 = item(f, "L2", "CIG-1001", 4000, 2500);
	Dre__EvaluateRequest *r = request(f, 2, l1, l2);
	Dre__RequestHeader    h = DRE__REQUEST_HEADER__INIT;
	h.transaction_id = "TXN-2026-001";
	r->header = &h;
	Dre__CustomerInfo cu = DRE__CUSTOMER_INFO__INIT;
	cu.customer_id = "CUST-4711";
	cu.loyalty_card_no = "LC-98765";
	cu.loyalty_tier = "GOLD";
	r->customer = &cu;

	Dre__EvaluateResponse *p = eval(f, r);
	assert_string_equal(p->currency, "EUR");
	assert_string_equal(p->header->transaction_id, "TXN-2026-001");
	assert_true(p->header->has_transaction_counter);
	assert_int_equal(p->header->transaction_counter, 1);
	assert_null(p->header->receipt_id);
	assert_int_equal(p->evaluated_at_ms, 1780842601234);
	assert_string_equal(p->source, "local-store");
	assert_string_equal(p->instance_id, "STORE-001");
	assert_false(p->is_simulation);
	assert_string_equal(p->tenant_id, TENANT);
	assert_true(p->has_data_age_ms);
	assert_int_equal(p->data_age_ms, 1000);
	assert_int_equal(p->n_line_items, 2);

	Dre__LineItem *a = p->line_items[0];
	assert_string_equal(a->line_reference, "L1");
	assert_string_equal(a->article_number, "ART-1001");
	assert_string_equal(a->ean, "4007817327098");
	assert_string_equal(a->article_group_id, "ELECTRONICS");
	assert_null(a->manufacturer_id);
	assert_int_equal(a->quantity, 2000);
	assert_int_equal(a->unit_price, 8999);
	assert_int_equal(a->line_total, 17998);
	assert_int_equal(a->line_discount, 1800);
	assert_int_equal(a->line_net, 16198);
	assert_int_equal(a->n_discounts, 1);
	Dre__LineDiscount *d = a->discounts[0];
	assert_string_equal(d->promotion_id, SEED_PROMO);
	assert_string_equal(d->promotion_name, "Electronics 10% Off");
	assert_string_equal(d->promotion_type, "ARTICLE");
	assert_string_equal(d->discount_type, "PERCENTAGE");
	assert_int_equal(d->discount_value, 1000);
	assert_int_equal(d->discount_amount, 1800);
	assert_null(d->coupon_code);
	assert_false(d->triggered_by_coupon);
	assert_false(a->is_free_item);
	assert_null(a->free_item_promotion_id);

	Dre__LineItem *b = p->line_items[1];
	assert_string_equal(b->line_reference, "L2");
	assert_string_equal(b->article_number, "CIG-1001");
	assert_null(b->ean);
	assert_null(b->article_group_id);
	assert_null(b->manufacturer_id);
	assert_int_equal(b->quantity, 4000);
	assert_int_equal(b->line_total, 10000);
	assert_int_equal(b->line_discount, 0);
	assert_int_equal(b->line_net, 10000);
	assert_int_equal(b->n_discounts, 0);

	Dre__Totals *t = p->totals;
	assert_int_equal(t->subtotal, 27998);
	assert_int_equal(t->discount, 1800);
	assert_int_equal(t->grand_total, 26198);
	assert_false(t->has_sale_subtotal);
	assert_false(t->has_return_subtotal);
	assert_int_equal(t->total_savings, 1800);
	assert_int_equal(t->savings_percent, 643);
	assert_int_equal(t->original_total, 27998);
	assert_int_equal(t->final_total, 26198);
	assert_int_equal(t->n_promotion_breakdown, 1);
	Dre__PromotionBreakdown *pb = t->promotion_breakdown[0];
	assert_string_equal(pb->promotion_id, SEED_PROMO);
	assert_string_equal(pb->promotion_name, "Electronics 10% Off");
	assert_int_equal(pb->total_discount, 1800);
	assert_int_equal(pb->n_affected_items, 1);
	assert_string_equal(pb->affected_items[0], "L1");
	assert_int_equal(t->n_item_savings, 1);
	assert_string_equal(t->item_savings[0]->article_number, "ART-1001");
	assert_int_equal(t->item_savings[0]->original_price, 17998);
	assert_int_equal(t->item_savings[0]->final_price, 16198);
	assert_int_equal(t->item_savings[0]->savings, 1800);
	assert_int_equal(t->loyalty_points_earned, 0);
	assert_int_equal(p->n_granted_items, 0);
	assert_int_equal(p->n_recommendations, 0);
	assert_true(p->has_include_missed);
	assert_false(p->include_missed);
	assert_int_equal(p->n_missed_promotions, 0);
}

// ---- conditions
// --------------------------------------------------------------------

#define PCT10                                                                 \
	"{\"type\":\"ARTICLE\",\"discountType\":\"PERCENTAGE\",\"value\":10}"

static void
test_cond_article_min_quantity(void **state)
{
	fx *f = *state;
	promo(f, "20000000-0000-4000-8000-000000000001", "A2", "",
	    "{\"type\":\"ARTICLE\",\"values\":[\"A\",\"B\"],"
	    "\"minQuantity\":3}",
	    PCT10);
	// 2 + 1 units over two matching lines reach 3.
	Dre__EvaluateResponse *p = eval(f,
	    request(f, 3, item(f, NULL, "A", 2000, 1000),
	        item(f, NULL, "B", 1000, 1000),
	        item(f, NULL, "C", 5000, 1000)));
	assert_int_equal(disc(p, 0), 200);
	assert_int_equal(disc(p, 1), 100);
	assert_int_equal(disc(p, 2), 0);
	// Auto-assigned line references.
	assert_string_equal(p->line_items[0]->line_reference, "L1");
	assert_string_equal(p->line_items[2]->line_reference, "L3");
	assert_string_equal(
	    p->totals->promotion_breakdown[0]->affected_items[1], "L2");
	p = eval(f, request(f, 1, item(f, NULL, "A", 2000, 1000)));
	assert_int_equal(disc(p, 0), 0);
}

static void
test_cond_article_list_group_manufacturer(void **state)
{
	fx *f = *state;
	put(f, ENG_MK_ARTICLE, "M1",
	    "{\"articleNumber\":\"M1\",\"articleGroupId\":\"DRINKS\","
	    "\"manufacturerId\":\"ACME\"}");
	promo(f, "20000000-0000-4000-8000-000000000002", "list", "",
	    "{\"type\":\"ARTICLE_LIST\",\"values\":[\"X1\",\"X2\",\"X3\","
	    "\"X4\",\"X5\",\"X6\",\"X7\",\"X8\",\"X9\",\"X10\"]}",
	    PCT10);
	promo(f, "20000000-0000-4000-8000-000000000003", "group", "",
	    "{\"type\":\"ARTICLE_GROUP\",\"values\":[\"DRINKS\"]}",
	    "{\"type\":\"ARTICLE_GROUP\",\"discountType\":\"ABSOLUTE\","
	    "\"value\":1}");
	promo(f, "20000000-0000-4000-8000-000000000004", "manu", "",
	    "{\"type\":\"MANUFACTURER\",\"values\":[\"ACME\"]}",
	    "{\"type\":\"ARTICLE\",\"discountType\":\"ABSOLUTE\","
	    "\"value\":0.5}");
	Dre__BasketItem *own = item(f, NULL, "Z", 1000, 1000);
	own->manufacturer_id = "ACME"; // from the line, no master
	Dre__EvaluateResponse *p = eval(f,
	    request(f, 4, item(f, NULL, "X9", 1000, 1000),
	        item(f, NULL, "M1", 1000, 1000), own,
	        item(f, NULL, "Q", 1000, 1000)));
	assert_int_equal(disc(p, 0), 100); // list
	assert_int_equal(disc(p, 1), 100 + 50); // group via master + manu
	assert_int_equal(p->line_items[1]->n_discounts, 2);
	assert_null(p->line_items[1]->article_group_id); // echo as sent
	assert_int_equal(disc(p, 2), 50);
	assert_int_equal(disc(p, 3), 0);
	// A line's own group wins over the master's.
	Dre__BasketItem *m1 = item(f, NULL, "M1", 1000, 1000);
	m1->article_group_id = "FOOD";
	p = eval(f, request(f, 1, m1));
	assert_int_equal(disc(p, 0), 50);
}

static void
test_cond_customer_channel(void **state)
{
	fx *f = *state;
	promo(f, "20000000-0000-4000-8000-000000000005", "chan", "",
	    "{\"type\":\"CHANNEL\",\"values\":[\"online\"]}", PCT10);
	promo(f, "20000000-0000-4000-8000-000000000006", "cust", "",
	    "{\"type\":\"CUSTOMER_REQUIRED\"}", PCT10);
	promo(f, "20000000-0000-4000-8000-000000000007", "grp", "",
	    "{\"type\":\"CUSTOMER_GROUP\",\"values\":[\"VIP\"]}", PCT10);
	promo(f, "20000000-0000-4000-8000-000000000008", "tier", "",
	    "{\"type\":\"LOYALTY_TIER\",\"values\":[\"GOLD\",\"PLATINUM\"]}",
	    PCT10);
	Dre__EvaluateRequest *r
	    = request(f, 1, item(f, NULL, "A", 1000, 10000));
	assert_int_equal(disc(eval(f, r), 0), 0);
	r->channel = "ONLINE";
	assert_int_equal(disc(eval(f, r), 0), 1000);
	Dre__CustomerInfo cu = DRE__CUSTOMER_INFO__INIT;
	r->customer = &cu;
	assert_int_equal(disc(eval(f, r), 0), 1000);
	cu.customer_id = "C1";
	assert_int_equal(disc(eval(f, r), 0), 2000);
	cu.customer_group = "VIP";
	assert_int_equal(disc(eval(f, r), 0), 3000);
	cu.loyalty_tier = "SILVER";
	assert_int_equal(disc(eval(f, r), 0), 3000);
	cu.loyalty_tier = "GOLD";
	Dre__EvaluateResponse *p = eval(f, r);
	assert_int_equal(disc(p, 0), 4000);
	// Priority ties resolve by id: the application order.
	assert_int_equal(p->totals->n_promotion_breakdown, 4);
	assert_string_equal(p->totals->promotion_breakdown[0]->promotion_id,
	    "20000000-0000-4000-8000-000000000005");
	assert_string_equal(p->totals->promotion_breakdown[3]->promotion_id,
	    "20000000-0000-4000-8000-000000000008");
}

// ---- discount types
// ----------------------------------------------------------------

static void
test_discount_types(void **state)
{
	fx *f = *state;
	promo(f, "30000000-0000-4000-8000-000000000001", "abs", "",
	    "{\"type\":\"ARTICLE\",\"values\":[\"ABS\"]}",
	    "{\"type\":\"ARTICLE\",\"discountType\":\"ABSOLUTE\","
	    "\"value\":3}");
	promo(f, "30000000-0000-4000-8000-000000000002", "unit", "",
	    "{\"type\":\"ARTICLE\",\"values\":[\"UP\",\"UP2\"]}",
	    "{\"type\":\"ARTICLE\",\"discountType\":\"UNIT_PRICE\","
	    "\"value\":1.99}");
	promo(f, "30000000-0000-4000-8000-000000000003", "weight", "",
	    "{\"type\":\"ARTICLE\",\"values\":[\"KG\"]}",
	    "{\"type\":\"ARTICLE\",\"discountType\":\"PERCENTAGE\","
	    "\"value\":15}");
	Dre__EvaluateResponse *p = eval(f,
	    request(f, 5,
	        item(f, NULL, "ABS", 2000, 500), // 3.00 off each of 2
	        item(f, NULL, "ABS", 1000, 250), // capped at the unit price
	        item(f, NULL, "UP", 3000, 299), // 1.00 off each of 3
	        item(f, NULL, "UP2", 1000, 150), // already cheaper
	        item(f, NULL, "KG", 1234, 999))); // 12.33 * 15 % = 1.8495
	assert_int_equal(disc(p, 0), 600);
	assert_int_equal(disc(p, 1), 250);
	assert_int_equal(p->line_items[1]->line_net, 0);
	assert_int_equal(disc(p, 2), 300);
	assert_int_equal(disc(p, 3), 0);
	assert_int_equal(p->line_items[3]->n_discounts, 0);
	assert_int_equal(p->line_items[4]->line_total, 1233);
	assert_int_equal(disc(p, 4), 185);
	assert_string_equal(
	    p->line_items[2]->discounts[0]->discount_type, "UNIT_PRICE");
	assert_int_equal(p->line_items[2]->discounts[0]->discount_value, 199);
	// ABSOLUTE on a partial unit: 0.5 kg at 3.00 off per kg.
	p = eval(f, request(f, 1, item(f, NULL, "ABS", 500, 800)));
	assert_int_equal(disc(p, 0), 150);
}

static void
test_max_quantity(void **state)
{
	fx *f = *state;
	promo(f, "30000000-0000-4000-8000-000000000004", "max", "",
	    "{\"type\":\"ARTICLE_GROUP\",\"values\":[\"G\"]}",
	    "{\"type\":\"ARTICLE_GROUP\",\"discountType\":\"PERCENTAGE\","
	    "\"value\":50,\"maxQuantity\":3}");
	Dre__BasketItem *cheap = item(f, NULL, "C", 2000, 100);
	Dre__BasketItem *dear = item(f, NULL, "D", 2000, 1000);
	Dre__BasketItem *mid = item(f, NULL, "M", 1000, 500);
	cheap->article_group_id = dear->article_group_id
	    = mid->article_group_id = "G";
	Dre__EvaluateResponse *p = eval(f, request(f, 3, cheap, dear, mid));
	// Two units of D, one of M; C gets nothing.
	assert_int_equal(disc(p, 0), 0);
	assert_int_equal(disc(p, 1), 1000);
	assert_int_equal(disc(p, 2), 250);
	assert_int_equal(
	    p->totals->promotion_breakdown[0]->n_affected_items, 2);
}

static void
test_stacking_floor(void **state)
{
	fx *f = *state;
	promo(f, "40000000-0000-4000-8000-000000000002", "second",
	    "\"priority\":20,", "{\"type\":\"ARTICLE\",\"values\":[\"A\"]}",
	    "{\"type\":\"ARTICLE\",\"discountType\":\"PERCENTAGE\","
	    "\"value\":50}");
	promo(f, "40000000-0000-4000-8000-000000000001", "first",
	    "\"priority\":10,", "{\"type\":\"ARTICLE\",\"values\":[\"A\"]}",
	    "{\"type\":\"ARTICLE\",\"discountType\":\"PERCENTAGE\","
	    "\"value\":60}");
	promo(f, "40000000-0000-4000-8000-000000000003", "third",
	    "\"priority\":30,", "{\"type\":\"ARTICLE\",\"values\":[\"A\"]}",
	    "{\"type\":\"ARTICLE\",\"discountType\":\"ABSOLUTE\","
	    "\"value\":1}");
	Dre__EvaluateResponse *p
	    = eval(f, request(f, 1, item(f, NULL, "A", 1000, 1000)));
	Dre__LineItem *l = p->line_items[0];
	assert_int_equal(l->line_discount, 1000);
	assert_int_equal(l->line_net, 0);
	assert_int_equal(l->n_discounts, 2); // the third found nothing left
	assert_string_equal(l->discounts[0]->promotion_name, "first");
	assert_int_equal(l->discounts[0]->discount_amount, 600);
	assert_int_equal(l->discounts[1]->discount_amount, 400);
	assert_int_equal(p->totals->n_promotion_breakdown, 2);
	assert_int_equal(p->totals->savings_percent, 10000);
}

static void
test_rounding(void **state)
{
	fx         *f = *state;
	const char *act = "{\"type\":\"ARTICLE\",\"discountType\":"
	                  "\"PERCENTAGE\",\"value\":12.5}";
	promo(f, "50000000-0000-4000-8000-000000000001", "half", "",
	    "{\"type\":\"ARTICLE\",\"values\":[\"H\"]}", act);
	promo(f, "50000000-0000-4000-8000-000000000002", "down",
	    "\"calculationConfig\":{\"rounding\":\"DOWN\",\"precision\":2},",
	    "{\"type\":\"ARTICLE\",\"values\":[\"D\"]}", act);
	promo(f, "50000000-0000-4000-8000-000000000003", "up",
	    "\"calculationConfig\":{\"rounding\":\"UP\",\"precision\":2},",
	    "{\"type\":\"ARTICLE\",\"values\":[\"U\"]}", act);
	promo(f, "50000000-0000-4000-8000-000000000004", "whole",
	    "\"calculationConfig\":{\"rounding\":\"HALF_UP\","
	    "\"precision\":0},",
	    "{\"type\":\"ARTICLE\",\"values\":[\"W\"]}", act);
	// 12.5 % of 0.99 = 0.12375
	Dre__EvaluateResponse *p = eval(f,
	    request(f, 4, item(f, NULL, "H", 1000, 99),
	        item(f, NULL, "D", 1000, 99), item(f, NULL, "U", 1000, 99),
	        item(f, NULL, "W", 1000, 2000)));
	assert_int_equal(disc(p, 0), 12);
	assert_int_equal(disc(p, 1), 12);
	assert_int_equal(disc(p, 2), 13);
	assert_int_equal(disc(p, 3), 300); // 2.50 -> 3
	assert_int_equal(p->line_items[0]->discounts[0]->discount_value, 1250);
}

static void
test_return_lines(void **state)
{
	fx *f = *state;
	promo(f, "60000000-0000-4000-8000-000000000001", "ret", "",
	    "{\"type\":\"ARTICLE\",\"values\":[\"A\"]}", PCT10);
	Dre__EvaluateResponse *p = eval(f,
	    request(f, 2, item(f, "S", "A", 1000, 1000),
	        item(f, "R", "A", -2000, 500)));
	assert_int_equal(disc(p, 0), 100);
	Dre__LineItem *r = p->line_items[1];
	assert_string_equal(r->line_reference, "R");
	assert_int_equal(r->quantity, -2000);
	assert_int_equal(r->line_total, -1000);
	assert_int_equal(r->line_net, -1000);
	assert_int_equal(r->line_discount, 0);
	assert_int_equal(r->n_discounts, 0);
	Dre__Totals *t = p->totals;
	assert_int_equal(t->subtotal, 0);
	assert_int_equal(t->discount, 100);
	assert_int_equal(t->grand_total, -100);
	assert_true(t->has_sale_subtotal);
	assert_int_equal(t->sale_subtotal, 1000);
	assert_true(t->has_return_subtotal);
	assert_int_equal(t->return_subtotal, -1000);
	assert_int_equal(t->savings_percent, 1000);
	// A basket of returns only matches nothing.
	p = eval(f, request(f, 1, item(f, NULL, "A", -1000, 1000)));
	assert_int_equal(disc(p, 0), 0);
	assert_int_equal(p->totals->n_promotion_breakdown, 0);
}

// ---- POS groups, status, validity
// ------------------------------------------------------

static void
test_pos_groups(void **state)
{
	fx *f = *state;
	put(f, ENG_MK_POS_GROUP, PG_ID,
	    "{\"id\":\"" PG_ID "\",\"code\":\"NORTH\"}");
	promo(f, "70000000-0000-4000-8000-000000000001", "by id",
	    "\"posGroups\":[\"" PG_ID "\"],",
	    "{\"type\":\"ARTICLE\",\"values\":[\"A\"]}", PCT10);
	promo(f, "70000000-0000-4000-8000-000000000002", "by code",
	    "\"posGroups\":[\"NORTH\"],",
	    "{\"type\":\"ARTICLE\",\"values\":[\"A\"]}", PCT10);
	promo(f, "70000000-0000-4000-8000-000000000003", "elsewhere",
	    "\"posGroups\":[\"SOUTH\"],",
	    "{\"type\":\"ARTICLE\",\"values\":[\"A\"]}", PCT10);
	Dre__EvaluateRequest *r
	    = request(f, 1, item(f, NULL, "A", 1000, 1000));
	assert_int_equal(disc(eval(f, r), 0), 200); // id resolves to code
	r->pos_group_id = NULL;
	r->pos_group_code = "NORTH";
	assert_int_equal(disc(eval(f, r), 0), 200); // code resolves to id
	assert_int_equal(eval(f, r)->n_warnings, 0);
	// Unknown id or code (PRODUCT-DECISIONS §4c): priced with the
	// all-store promotions, warned, never refused.
	promo(f, "70000000-0000-4000-8000-000000000004", "everywhere", "",
	    "{\"type\":\"ARTICLE\",\"values\":[\"A\"]}", PCT10);
	const char *unknown[][2] = {
		{ "60000000-0000-4000-8000-00000000ffff", NULL },
		{ NULL, "NOWHERE" },
	};
	for (size_t i = 0; i < 2; i++) {
		r->pos_group_id = (char *) unknown[i][0];
		r->pos_group_code = (char *) unknown[i][1];
		Dre__EvaluateResponse *p = eval(f, r);
		assert_int_equal(disc(p, 0), 100); // "everywhere" only
		assert_int_equal(p->n_warnings, 1);
		assert_string_equal(p->warnings[0]->code, "UNKNOWN_POS_GROUP");
		assert_string_equal(p->warnings[0]->target,
		    i == 0 ? "posGroupId" : "posGroupCode");
	}
	// A promotion listing a group nobody created applies to nobody.
	promo(f, "70000000-0000-4000-8000-000000000005", "ghost",
	    "\"posGroups\":[\"60000000-0000-4000-8000-00000000ffff\"],",
	    "{\"type\":\"ARTICLE\",\"values\":[\"A\"]}", PCT10);
	r->pos_group_id = "60000000-0000-4000-8000-00000000ffff";
	r->pos_group_code = NULL;
	assert_int_equal(disc(eval(f, r), 0), 100);
}

// A promotion applies only to a basket in its currency (§4c); the basket's
// currency is the request's, else the tenant's.
static void
test_currency(void **state)
{
	fx *f = *state;
	promo(f, "71000000-0000-4000-8000-000000000001", "euro", "",
	    "{\"type\":\"ARTICLE\",\"values\":[\"A\"]}", PCT10);
	promo(f, "71000000-0000-4000-8000-000000000002", "dollar",
	    "\"currency\":\"USD\",",
	    "{\"type\":\"ARTICLE\",\"values\":[\"A\"]}",
	    "{\"type\":\"ARTICLE\",\"discountType\":\"ABSOLUTE\","
	    "\"value\":5,\"target\":{\"articles\":[\"A\"]}}");
	Dre__EvaluateRequest *r
	    = request(f, 1, item(f, NULL, "A", 1000, 1000));
	r->pos_group_id = NULL;
	Dre__EvaluateResponse *p = eval(f, r); // the tenant's: EUR
	assert_int_equal(disc(p, 0), 100);
	assert_string_equal(p->currency, "EUR");
	r->currency = "USD";
	p = eval(f, r);
	assert_int_equal(disc(p, 0), 500);
	assert_string_equal(p->currency, "USD");
	r->currency = "GBP";
	r->has_include_missed_promotions = true;
	r->include_missed_promotions = true;
	p = eval_ctx(f, r, true);
	assert_int_equal(disc(p, 0), 0);
	assert_int_equal(p->n_missed_promotions, 2);
	for (size_t i = 0; i < 2; i++)
		assert_string_equal(
		    p->missed_promotions[i]->stage, "CURRENCY");
}

static void
test_status_validity(void **state)
{
	fx         *f = *state;
	const char *cond = "{\"type\":\"ARTICLE\",\"values\":[\"A\"]}";
	promo(f, "80000000-0000-4000-8000-000000000001", "inactive",
	    "\"status\":\"INACTIVE\",", cond, PCT10);
	promo(f, "80000000-0000-4000-8000-000000000002", "future",
	    "\"validFrom\":\"2026-07-01T00:00:00Z\",", cond, PCT10);
	promo(f, "80000000-0000-4000-8000-000000000003", "expired",
	    "\"validTo\":\"2026-06-07T14:29:59Z\",", cond, PCT10);
	promo(f, "80000000-0000-4000-8000-000000000004", "draft",
	    "\"status\":\"DRAFT\",", cond, PCT10);
	promo(f, "80000000-0000-4000-8000-000000000005", "other article", "",
	    "{\"type\":\"ARTICLE\",\"values\":[\"B\"]}", PCT10);
	promo(f, "80000000-0000-4000-8000-000000000006", "edge",
	    "\"validFrom\":\"2026-06-07T14:30:00Z\","
	    "\"validTo\":\"2026-06-07T14:30:00Z\",",
	    cond, PCT10);
	Dre__EvaluateRequest *r
	    = request(f, 1, item(f, NULL, "A", 1000, 1000));
	Dre__EvaluateResponse *p = eval(f, r);
	assert_int_equal(disc(p, 0), 100); // only "edge"
	assert_false(p->include_missed);
	assert_int_equal(p->n_missed_promotions, 0);

	// includeInactive counts on simulate only.
	r->has_include_inactive = r->include_inactive = true;
	assert_int_equal(disc(eval(f, r), 0), 100);
	p = eval_ctx(f, r, true);
	assert_true(p->is_simulation);
	assert_int_equal(disc(p, 0), 200);

	r->has_include_inactive = r->include_inactive = false;
	r->has_include_missed_promotions = r->include_missed_promotions = true;
	p = eval_ctx(f, r, true);
	assert_true(p->include_missed);
	assert_int_equal(p->n_missed_promotions, 5);
	const char *stages[]
	    = { "STATUS", "VALIDITY", "VALIDITY", "STATUS", "CONDITION" };
	for (int i = 0; i < 5; i++) {
		assert_string_equal(p->missed_promotions[i]->stage, stages[i]);
		assert_true(strlen(p->missed_promotions[i]->reason) > 0);
	}
	assert_string_equal(
	    p->missed_promotions[4]->promotion_name, "other article");
}

// ---- index updates
// -------------------------------------------------------------------

static void
test_index_updates(void **state)
{
	fx         *f = *state;
	const char *id = "90000000-0000-4000-8000-000000000001";
	char        doc[512];
	snprintf(doc, sizeof(doc),
	    "{\"id\":\"%s\",\"name\":\"v\",\"type\":\"ARTICLE\","
	    "\"status\":\"ACTIVE\",\"conditions\":[{\"type\":\"ARTICLE\","
	    "\"values\":[\"A\"]}],\"actions\":[" PCT10 "]}",
	    id);
	char doc2[512];
	snprintf(doc2, sizeof(doc2),
	    "{\"id\":\"%s\",\"name\":\"v\",\"type\":\"ARTICLE\","
	    "\"status\":\"ACTIVE\",\"conditions\":[{\"type\":\"ARTICLE\","
	    "\"values\":[\"B\"]}],\"actions\":[" PCT10 "]}",
	    id);
	Dre__EvaluateRequest *ra
	    = request(f, 1, item(f, NULL, "A", 1000, 1000));
	Dre__EvaluateRequest *rb
	    = request(f, 1, item(f, NULL, "B", 1000, 1000));
	bool              applied;
	eng_master_change c
	    = { ENG_MK_PROMOTION, TENANT, id, 10, doc, strlen(doc) };
	assert_int_equal(eng_apply(f->e, &c, 5, &applied), DRE_OK);
	assert_true(applied);
	const eng_index *old = eng_acquire(f->e); // a reader holds v10
	assert_int_equal(disc(eval(f, ra), 0), 100);

	// Older or equal versions are ignored.
	c.doc = doc2;
	c.doc_len = strlen(doc2);
	c.version = 9;
	assert_int_equal(eng_apply(f->e, &c, 6, &applied), DRE_OK);
	assert_false(applied);
	c.version = 10;
	assert_int_equal(eng_apply(f->e, &c, 6, &applied), DRE_OK);
	assert_false(applied);
	c.version = 11;
	assert_int_equal(eng_apply(f->e, &c, 7, &applied), DRE_OK);
	assert_true(applied);
	assert_int_equal(disc(eval(f, ra), 0), 0);
	assert_int_equal(disc(eval(f, rb), 0), 100);
	// The reader's version did not change under it.
	assert_int_equal(
	    eng_index_version_of(old, TENANT, ENG_MK_PROMOTION, id), 10);
	eng_index_release(old);

	// Delete, then a stale upsert: the tombstone keeps it deleted.
	eng_master_change del = { ENG_MK_PROMOTION, TENANT, id, 12, NULL, 0 };
	assert_int_equal(eng_apply(f->e, &del, 8, &applied), DRE_OK);
	assert_true(applied);
	assert_int_equal(disc(eval(f, rb), 0), 0);
	c.version = 11;
	assert_int_equal(eng_apply(f->e, &c, 9, &applied), DRE_OK);
	assert_false(applied);
	const eng_index *ix = eng_acquire(f->e);
	assert_int_equal(eng_index_promotions(ix, TENANT), 0);
	assert_int_equal(eng_index_version(ix), 12);
	assert_int_equal(eng_index_data_age(ix), 8);
	eng_index_release(ix);
	c.version = 13;
	assert_int_equal(eng_apply(f->e, &c, 9, &applied), DRE_OK);
	assert_true(applied);
	assert_int_equal(disc(eval(f, rb), 0), 100);

	// A broken document changes nothing.
	eng_master_change bad
	    = { ENG_MK_PROMOTION, TENANT, id, 14, "{\"id\":", 7 };
	assert_int_equal(eng_apply(f->e, &bad, 10, &applied), DRE_EINVAL);
	assert_int_equal(disc(eval(f, rb), 0), 100);

	// Tenants are isolated.
	eng_eval_ctx ctx = { .tenant = "other",
		.now_ms = 1,
		.counter = 1,
		.transaction_id = "T",
		.currency = "EUR" };
	ix = eng_acquire(f->e);
	Dre__EvaluateResponse *p = NULL;
	assert_int_equal(eng_evaluate(&p, f->a, ix, rb, &ctx, NULL), DRE_OK);
	eng_index_release(ix);
	assert_int_equal(disc(p, 0), 0);
	assert_true(p->has_data_age_ms);
}

static void
test_load_snapshot(void **state)
{
	fx         *f = *state;
	const char *d1
	    = "{\"id\":\"a0000000-0000-4000-8000-000000000001\",\"name\":"
	      "\"old\","
	      "\"type\":\"ARTICLE\",\"status\":\"ACTIVE\",\"conditions\":[{"
	      "\"type\":\"ARTICLE\",\"values\":[\"A\"]}],\"actions\":[" PCT10
	      "]}";
	const char *d2
	    = "{\"id\":\"a0000000-0000-4000-8000-000000000001\",\"name\":"
	      "\"new\","
	      "\"type\":\"ARTICLE\",\"status\":\"ACTIVE\",\"conditions\":[{"
	      "\"type\":\"ARTICLE\",\"values\":[\"A\"]}],\"actions\":[{"
	      "\"type\":\"ARTICLE\",\"discountType\":\"PERCENTAGE\","
	      "\"value\":20}]}";
	eng_master_change v[] = {
		{ ENG_MK_PROMOTION, TENANT,
		    "a0000000-0000-4000-8000-000000000001", 5, d2,
		    strlen(d2) },
		{ ENG_MK_PROMOTION, TENANT,
		    "a0000000-0000-4000-8000-000000000001", 3, d1,
		    strlen(d1) },
		{ ENG_MK_PROMOTION, "t2",
		    "a0000000-0000-4000-8000-000000000001", 4, d1,
		    strlen(d1) },
		{ ENG_MK_PROMOTION, TENANT, "broken", 6, "[]", 2 },
	};
	size_t nbad = 0;
	assert_int_equal(eng_load(f->e, v, 4, 77, &nbad), DRE_OK);
	assert_int_equal(nbad, 1);
	const eng_index *ix = eng_acquire(f->e);
	assert_int_equal(eng_index_promotions(ix, NULL), 2);
	assert_int_equal(eng_index_promotions(ix, TENANT), 1);
	assert_int_equal(eng_index_version(ix), 6);
	eng_index_release(ix);
	Dre__EvaluateResponse *p
	    = eval(f, request(f, 1, item(f, NULL, "A", 1000, 1000)));
	assert_int_equal(disc(p, 0), 200);
	assert_string_equal(
	    p->line_items[0]->discounts[0]->promotion_name, "new");
}

// Many promotions, few reachable: the candidate lists come from the maps.
static void
test_many_promotions(void **state)
{
	fx *f = *state;
	enum { N = 2000 };
	eng_master_change *v = calloc(N, sizeof(*v));
	char(*docs)[512] = calloc(N, 512);
	char(*ids)[40] = calloc(N, 40);
	for (int i = 0; i < N; i++) {
		snprintf(ids[i], 40, "b0000000-0000-4000-8000-%012d", i);
		snprintf(docs[i], 512,
		    "{\"id\":\"%s\",\"name\":\"p%d\",\"type\":\"ARTICLE\","
		    "\"status\":\"ACTIVE\",\"priority\":%d,\"conditions\":[{"
		    "\"type\":\"ARTICLE\",\"values\":[\"ART-%d\"]}],"
		    "\"actions\":[{\"type\":\"ARTICLE\",\"discountType\":"
		    "\"ABSOLUTE\",\"value\":0.01}]}",
		    ids[i], i, N - i, i % 500);
		v[i] = (eng_master_change) { ENG_MK_PROMOTION, TENANT, ids[i],
			i + 1, docs[i], strlen(docs[i]) };
	}
	assert_int_equal(eng_load(f->e, v, N, 1, NULL), DRE_OK);
	Dre__EvaluateResponse *p = eval(f,
	    request(f, 2, item(f, NULL, "ART-7", 1000, 1000),
	        item(f, NULL, "ART-499", 1000, 1000)));
	assert_int_equal(disc(p, 0), 4); // promotions 7, 507, 1007, 1507
	assert_int_equal(disc(p, 1), 4);
	// Higher i = lower priority value = applied first.
	assert_string_equal(
	    p->line_items[0]->discounts[0]->promotion_name, "p1507");
	assert_int_equal(p->totals->n_promotion_breakdown, 8);
	free(v);
	free(docs);
	free(ids);
}

// ---- time windows in time zones
// ------------------------------------------------------

static int64_t
at(const char *iso)
{
	int64_t ms;
	assert_int_equal(dre_time_parse(&ms, iso, strlen(iso)), DRE_OK);
	return ms;
}

// One promotion per zone, every day 10:00-11:00 local; the transaction
// times are chosen on both sides of the window, in summer and winter, and
// beyond the last transition of the zone files (the POSIX rule).
static void
test_time_zones(void **state)
{
	fx *f = *state;
	static const struct {
		const char *zone;
		const char *inside[3];
		const char *outside[2];
	} cases[] = {
		{ "Europe/Berlin",
		    { "2026-07-01T08:30:00Z", "2026-01-15T09:30:00Z",
		        "2045-07-01T08:30:00Z" },
		    { "2026-07-01T09:30:00Z", "2045-01-15T08:30:00Z" } },
		{ "Australia/Sydney",
		    { "2026-01-15T23:30:00Z", "2026-07-15T00:30:00Z",
		        "2045-01-15T23:30:00Z" },
		    { "2026-07-14T23:30:00Z", "2045-07-15T01:30:00Z" } },
		{ "America/New_York",
		    { "2026-06-10T14:30:00Z", "2026-12-10T15:30:00Z",
		        "2050-12-10T15:30:00Z" },
		    { "2026-06-10T15:30:00Z", "2050-06-10T15:30:00Z" } },
		{ "Asia/Kolkata",
		    { "2026-03-01T05:00:00Z", "2026-09-01T04:45:00Z",
		        "2060-03-01T05:29:00Z" },
		    { "2026-03-01T05:30:00Z", "2026-03-01T04:29:00Z" } },
	};
	for (size_t z = 0; z < sizeof(cases) / sizeof(*cases); z++) {
		char id[40], extra[160], art[16];
		snprintf(id, sizeof id, "c0000000-0000-4000-8000-%012zu", z);
		snprintf(art, sizeof art, "TZ%zu", z);
		snprintf(extra, sizeof extra,
		    "\"timeWindows\":[{\"from\":\"10:00\",\"to\":"
		    "\"11:00\"}],\"timezone\":\"%s\",",
		    cases[z].zone);
		char cond[64];
		snprintf(cond, sizeof cond,
		    "{\"type\":\"ARTICLE\",\"values\":[\"%s\"]}", art);
		promo(f, id, cases[z].zone, extra, cond, PCT10);
		Dre__EvaluateRequest *r
		    = request(f, 1, item(f, NULL, art, 1000, 1000));
		for (int k = 0; k < 3; k++) {
			r->timestamp_ms = at(cases[z].inside[k]);
			if (disc(eval(f, r), 0) != 100)
				fail_msg("%s at %s: not inside", cases[z].zone,
				    cases[z].inside[k]);
		}
		for (int k = 0; k < 2; k++) {
			r->timestamp_ms = at(cases[z].outside[k]);
			if (disc(eval(f, r), 0) != 0)
				fail_msg("%s at %s: not outside",
				    cases[z].zone, cases[z].outside[k]);
		}
	}
}

// The largest quantities and prices the wire allows: a line total beyond
// Decimal(15,2) is refused; just below it every action type answers
// without overflowing (UBSan would abort).
static void
test_hostile_amounts(void **state)
{
	fx *f = *state;
	promo(f, "d0000000-0000-4000-8000-000000000001", "bundle", "", "",
	    "{\"type\":\"BUNDLE\",\"components\":[{\"articles\":[\"H\"]},"
	    "{\"articles\":[\"H2\"]}],\"discountType\":\"ABSOLUTE\","
	    "\"value\":9999999999999.99}");
	promo(f, "d0000000-0000-4000-8000-000000000002", "free", "",
	    "{\"type\":\"ARTICLE\",\"values\":[\"H\"]}",
	    "{\"type\":\"FREE_ITEM\",\"articleNumber\":\"G\","
	    "\"quantity\":1000000,\"referencePrice\":9999999999999.99}");
	promo(f, "d0000000-0000-4000-8000-000000000003", "points", "",
	    "{\"type\":\"ARTICLE\",\"values\":[\"H\"]}",
	    "{\"type\":\"CURRENCY_TO_POINTS\",\"pointsPerUnit\":"
	    "9999999999999.99},{\"type\":\"MULTIPLY_POINTS\",\"factor\":"
	    "9999999999999.99}");
	promo(f, "d0000000-0000-4000-8000-000000000004", "tier", "", "",
	    "{\"type\":\"QUANTITY_TIER\",\"tiers\":[{\"minQuantity\":1,"
	    "\"discountType\":\"ABSOLUTE\",\"value\":9999999999999.99}],"
	    "\"target\":{\"articles\":[\"H\"]}}");
	promo(f, "d0000000-0000-4000-8000-000000000005", "receipt", "",
	    "{\"type\":\"RECEIPT_AMOUNT\",\"min\":9999999999999.99}",
	    "{\"type\":\"RECEIPT\",\"discountType\":\"PERCENTAGE\","
	    "\"value\":99.99}");
	// 999999999.999 units at 999999.99: 10^17 cents.
	Dre__EvaluateRequest *r
	    = request(f, 1, item(f, NULL, "H", 999999999999, 99999999));
	eng_eval_ctx           ctx = { .tenant = TENANT,
		          .now_ms = 1,
		          .counter = 1,
		          .transaction_id = "T",
		          .currency = "EUR" };
	const eng_index       *ix = eng_acquire(f->e);
	Dre__EvaluateResponse *p = NULL;
	eng_eval_error         err = { 0 };
	assert_int_equal(
	    eng_evaluate(&p, f->a, ix, r, &ctx, &err), DRE_EINVAL);
	eng_index_release(ix);
	assert_int_equal(err.status, 400);
	assert_string_equal(err.target, "items[0].quantity");
	// 1000 lines of 999999.999 units at up to 999999.99: 10^14 cents
	// each.
	r = request(f, 0);
	r->items = dre_arena_get(f->a, 1000 * sizeof(*r->items));
	for (int i = 0; i < 1000; i++)
		r->items[r->n_items++] = item(f, NULL, i % 2 ? "H2" : "H",
		    999999999, i % 3 ? 99999999 : 1);
	p = eval(f, r);
	assert_true(p->totals->discount > 0);
	assert_true(p->totals->n_promotion_breakdown >= 3);
	assert_true(p->n_granted_items == 1);
	for (size_t i = 0; i < p->n_line_items; i++)
		assert_true(p->line_items[i]->line_net >= 0);
}

// The budget stage sits between POS_GROUP and CONDITION: an exhausted
// budget drops its promotion into budgetLimitedPromotions (and BUDGET in
// missedPromotions).
static void
test_budget_stage(void **state)
{
	fx *f = *state;
	promo(f, "e0000000-0000-4000-8000-000000000001", "budgeted",
	    "\"budgetIds\":[\"B-1\"],",
	    "{\"type\":\"ARTICLE\",\"values\":[\"A\"]}", PCT10);
	promo(f, "e0000000-0000-4000-8000-000000000002", "free", "",
	    "{\"type\":\"ARTICLE\",\"values\":[\"A\"]}", PCT10);
	eng_budget_set *b;
	assert_int_equal(eng_budget_set_alloc(&b), DRE_OK);
	assert_true(eng_budget_set_update(b, TENANT, "B-1", 1, true));
	Dre__EvaluateRequest *r
	    = request(f, 1, item(f, NULL, "A", 1000, 1000));
	r->has_include_missed_promotions = r->include_missed_promotions = true;
	eng_eval_ctx           ctx = { .tenant = TENANT,
		          .now_ms = 1,
		          .counter = 1,
		          .transaction_id = "T",
		          .currency = "EUR",
		          .simulate = true,
		          .budgets = b };
	const eng_index       *ix = eng_acquire(f->e);
	Dre__EvaluateResponse *p = NULL;
	eng_eval_error         err;
	assert_int_equal(eng_evaluate(&p, f->a, ix, r, &ctx, &err), DRE_OK);
	eng_index_release(ix);
	assert_int_equal(disc(p, 0), 100); // only "free"
	assert_int_equal(p->n_budget_limited_promotions, 1);
	assert_string_equal(
	    p->budget_limited_promotions[0]->promotion_name, "budgeted");
	assert_int_equal(p->n_missed_promotions, 1);
	assert_string_equal(p->missed_promotions[0]->stage, "BUDGET");
	eng_budget_set_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_seed_example, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_time_zones, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_hostile_amounts, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_budget_stage, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_cond_article_min_quantity, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_cond_article_list_group_manufacturer, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_cond_customer_channel, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_discount_types, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_max_quantity, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stacking_floor, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_rounding, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_return_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pos_groups, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_currency, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_status_validity, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_index_updates, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_load_snapshot, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_many_promotions, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
