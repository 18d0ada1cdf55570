// test_evalwire.c -- seed 002 round trip: the canonical response renders to
// the seed's bytes, valid requests convert exactly, invalid ones are refused
// with the right status, code and target.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dre/clock.h"
#include "dre/evalwire.h"

// The seed's example response, verbatim (whitespace is dropped before
// comparing: the renderer writes compact JSON).
static const char SEED_RESPONSE[]
    = "{\n"
      "\"minorVersion\": 8,\n"
      "\"meta\": { \"header\": { \"transactionId\": \"TXN-2026-001\", "
      "\"transactionCounter\": 1 }, \"evaluatedAt\": "
      "\"2026-06-07T14:30:01.234Z\", \"source\": \"btp\", \"instanceId\": "
      "\"BTP\", \"isSimulation\": false, \"tenantId\": \"tenant-abc\" },\n"
      "\"lineItems\": [\n"
      "{ \"lineReference\": \"L1\", \"articleNumber\": \"ART-1001\", \"ean\": "
      "\"4007817327098\", \"articleGroupId\": \"ELECTRONICS\", "
      "\"manufacturerId\": null,\n"
      "\"quantity\": { \"value\": 2.000, \"unit\": \"PCE\" },\n"
      "\"unitPrice\": { \"value\": 89.99, \"currency\": \"EUR\" }, "
      "\"lineTotal\": { \"value\": 179.98, \"currency\": \"EUR\" },\n"
      "\"lineDiscount\": { \"value\": 18.00, \"currency\": \"EUR\" }, "
      "\"lineNet\": { \"value\": 161.98, \"currency\": \"EUR\" },\n"
      "\"discounts\": [ { \"promotionId\": "
      "\"10000000-0000-4000-8000-000000000001\", \"promotionName\": "
      "\"Electronics 10% Off\", \"promotionType\": \"ARTICLE\", "
      "\"discountType\": \"PERCENTAGE\", \"discountValue\": 10, "
      "\"discountAmount\": { \"value\": 18.00, \"currency\": \"EUR\" }, "
      "\"totalDiscount\": { \"value\": 18.00, \"currency\": \"EUR\" }, "
      "\"couponCode\": null, \"triggeredByCoupon\": false } ],\n"
      "\"isFreeItem\": false, \"freeItemPromotionId\": null },\n"
      "{ \"lineReference\": \"L2\", \"articleNumber\": \"CIG-1001\", \"ean\": "
      "null, \"articleGroupId\": null, \"manufacturerId\": null,\n"
      "\"quantity\": { \"value\": 4.000, \"unit\": \"PCE\" },\n"
      "\"unitPrice\": { \"value\": 25.00, \"currency\": \"EUR\" }, "
      "\"lineTotal\": { \"value\": 100.00, \"currency\": \"EUR\" },\n"
      "\"lineDiscount\": { \"value\": 0.00, \"currency\": \"EUR\" }, "
      "\"lineNet\": { \"value\": 100.00, \"currency\": \"EUR\" },\n"
      "\"discounts\": [], \"isFreeItem\": false, \"freeItemPromotionId\": "
      "null }\n"
      "],\n"
      "\"grantedItems\": [],\n"
      "\"totals\": {\n"
      "\"subtotal\": { \"value\": 279.98, \"currency\": \"EUR\" }, "
      "\"discount\": { \"value\": 18.00, \"currency\": \"EUR\" }, "
      "\"grandTotal\": { \"value\": 261.98, \"currency\": \"EUR\" },\n"
      "\"savingsSummary\": { \"totalSavings\": { \"value\": 18.00, "
      "\"currency\": \"EUR\" }, \"savingsPercent\": 6.43, \"originalTotal\": "
      "{ \"value\": 279.98, \"currency\": \"EUR\" }, \"finalTotal\": { "
      "\"value\": 261.98, \"currency\": \"EUR\" },\n"
      "\"promotionBreakdown\": [ { \"promotionId\": "
      "\"10000000-0000-4000-8000-000000000001\", \"promotionName\": "
      "\"Electronics 10% Off\", \"totalDiscount\": { \"value\": 18.00, "
      "\"currency\": \"EUR\" }, \"affectedItems\": [\"L1\"] } ],\n"
      "\"itemSavings\": [ { \"articleNumber\": \"ART-1001\", "
      "\"originalPrice\": { \"value\": 179.98, \"currency\": \"EUR\" }, "
      "\"finalPrice\": { \"value\": 161.98, \"currency\": \"EUR\" }, "
      "\"savings\": { \"value\": 18.00, \"currency\": \"EUR\" } } ],\n"
      "\"loyaltyPointsEarned\": 0 }\n"
      "},\n"
      "\"recommendations\": [], \"appliedCoupons\": [], \"invalidCoupons\": "
      "[], \"budgetLimitedPromotions\": [], \"nudges\": [], "
      "\"thresholdGaps\": []\n"
      "}\n";

static const char SEED_REQUEST[]
    = "{ \"request\": {"
      "\"header\": { \"transactionId\": \"TXN-2026-001\" },"
      "\"posGroupId\": \"60000000-0000-4000-8000-000000000001\","
      "\"items\": ["
      "{ \"lineReference\": \"L1\", \"articleNumber\": \"ART-1001\", \"ean\": "
      "\"4007817327098\", \"articleGroupId\": \"ELECTRONICS\", \"quantity\": "
      "2, \"unitPrice\": 89.99 },"
      "{ \"lineReference\": \"L2\", \"articleNumber\": \"CIG-1001\", "
      "\"quantity\": 4, \"unitPrice\": 25.00 }"
      "],"
      "\"customer\": { \"customerId\": \"CUST-4711\", \"loyaltyCardNo\": "
      "\"LC-98765\", \"loyalty\": { \"tier\": \"GOLD\", \"points\": 1250.00 } "
      "},"
      "\"timestamp\": \"2026-06-07T14:30:00Z\""
      "} }";

// minify drops whitespace outside strings.
static char *
minify(const char *s)
{
	char *out = malloc(strlen(s) + 1), *o = out;
	bool  in = false;

	for (; *s != '\0'; s++) {
		if (in) {
			*o++ = *s;
			if (*s == '\\' && s[1] != '\0')
				*o++ = *++s;
			else if (*s == '"')
				in = false;
		} else if (*s == '"') {
			in = true;
			*o++ = *s;
		} else if (*s != ' ' && *s != '\n' && *s != '\t'
		    && *s != '\r') {
			*o++ = *s;
		}
	}
	*o = '\0';
	return out;
}

static Dre__LineDiscount *
discount(void)
{
	static Dre__LineDiscount d = DRE__LINE_DISCOUNT__INIT;
	d.promotion_id = "10000000-0000-4000-8000-000000000001";
	d.promotion_name = "Electronics 10% Off";
	d.promotion_type = "ARTICLE";
	d.discount_type = "PERCENTAGE";
	d.discount_value = 1000;
	d.discount_amount = 1800;
	d.has_triggered_by_coupon = 1;
	return &d;
}

static void
test_seed_response(void **state)
{
	Dre__EvaluateResponse    r = DRE__EVALUATE_RESPONSE__INIT;
	Dre__RequestHeader       h = DRE__REQUEST_HEADER__INIT;
	Dre__LineItem            l1 = DRE__LINE_ITEM__INIT;
	Dre__LineItem            l2 = DRE__LINE_ITEM__INIT;
	Dre__LineItem           *lines[2] = { &l1, &l2 };
	Dre__LineDiscount       *d1[1] = { discount() };
	Dre__Totals              t = DRE__TOTALS__INIT;
	Dre__PromotionBreakdown  pb = DRE__PROMOTION_BREAKDOWN__INIT;
	Dre__PromotionBreakdown *pbs[1] = { &pb };
	char                    *affected[1] = { "L1" };
	Dre__ItemSavings         is = DRE__ITEM_SAVINGS__INIT;
	Dre__ItemSavings        *iss[1] = { &is };
	dre_buf                  out;
	char                    *want;

	(void) state;
	h.transaction_id = "TXN-2026-001";
	h.has_transaction_counter = 1;
	h.transaction_counter = 1;
	r.currency = "EUR";
	r.header = &h;
	assert_int_equal(
	    dre_time_parse(&r.evaluated_at_ms, "2026-06-07T14:30:01.234Z", 24),
	    DRE_OK);
	r.source = "btp";
	r.instance_id = "BTP";
	r.tenant_id = "tenant-abc";

	l1.line_reference = "L1";
	l1.article_number = "ART-1001";
	l1.ean = "4007817327098";
	l1.article_group_id = "ELECTRONICS";
	l1.quantity = 2000;
	l1.unit_price = 8999;
	l1.line_total = 17998;
	l1.line_discount = 1800;
	l1.line_net = 16198;
	l1.n_discounts = 1;
	l1.discounts = d1;
	l2.line_reference = "L2";
	l2.article_number = "CIG-1001";
	l2.quantity = 4000;
	l2.unit = "PCE";
	l2.unit_price = 2500;
	l2.line_total = 10000;
	l2.line_discount = 0;
	l2.line_net = 10000;
	l2.has_is_free_item = 1;
	r.n_line_items = 2;
	r.line_items = lines;

	t.subtotal = 27998;
	t.discount = 1800;
	t.grand_total = 26198;
	t.total_savings = 1800;
	t.savings_percent = 643;
	t.original_total = 27998;
	t.final_total = 26198;
	pb.promotion_id = "10000000-0000-4000-8000-000000000001";
	pb.promotion_name = "Electronics 10% Off";
	pb.total_discount = 1800;
	pb.n_affected_items = 1;
	pb.affected_items = affected;
	t.n_promotion_breakdown = 1;
	t.promotion_breakdown = pbs;
	is.article_number = "ART-1001";
	is.original_price = 17998;
	is.final_price = 16198;
	is.savings = 1800;
	t.n_item_savings = 1;
	t.item_savings = iss;
	r.totals = &t;

	dre_buf_init(&out);
	dre_evalresp_write(&out, &r);
	assert_false(out.oom);
	want = minify(SEED_RESPONSE);
	assert_string_equal(out.data, want);
	free(want);

	// missedPromotions appears only when asked for; dataAge when known.
	dre_buf_reset(&out);
	r.has_include_missed = 1;
	r.include_missed = 1;
	r.has_data_age_ms = 1;
	r.data_age_ms = r.evaluated_at_ms - 1000;
	dre_evalresp_write(&out, &r);
	assert_non_null(strstr(out.data,
	    "\"budgetLimitedPromotions\":[],\"missedPromotions\":[],"
	    "\"nudges\":[]"));
	assert_non_null(strstr(out.data,
	    "\"tenantId\":\"tenant-abc\",\"dataAge\":"
	    "\"2026-06-07T14:30:00.234Z\"}"));
	dre_buf_free(&out);
}

static void
test_recommendation_and_grants(void **state)
{
	Dre__EvaluateResponse r = DRE__EVALUATE_RESPONSE__INIT;
	Dre__RequestHeader    h = DRE__REQUEST_HEADER__INIT;
	Dre__Recommendation   nm = DRE__RECOMMENDATION__INIT;
	Dre__Recommendation   hi = DRE__RECOMMENDATION__INIT;
	Dre__Recommendation  *recs[2] = { &nm, &hi };
	Dre__KeyValue         kv = DRE__KEY_VALUE__INIT;
	Dre__KeyValue        *kvs[1] = { &kv };
	Dre__GrantedItem      g = DRE__GRANTED_ITEM__INIT;
	Dre__GrantedItem     *gs[1] = { &g };
	Dre__Totals           t = DRE__TOTALS__INIT;
	dre_buf               out;

	(void) state;
	r.currency = "EUR";
	r.header = &h;
	r.source = "local-store";
	r.instance_id = "STORE-001";
	r.tenant_id = "default";
	r.totals = &t;
	t.has_sale_subtotal = 1;
	t.sale_subtotal = 1000;
	t.has_return_subtotal = 1;
	t.return_subtotal = -500;
	kv.key = "gap";
	kv.value = "5.00";
	nm.kind = "NEAR_MISS";
	nm.code = "RECEIPT_AMOUNT_BELOW_MIN";
	nm.n_params = 1;
	nm.params = kvs;
	nm.default_message = "Spend 5.00 more";
	nm.promotion_id = "p1";
	nm.promotion_name = "P1";
	nm.has_match_percent = 1;
	nm.match_percent = 80;
	hi.kind = "HINT";
	hi.code = "X";
	hi.default_message = "m";
	r.n_recommendations = 2;
	r.recommendations = recs;
	g.grant_reference = "GRANT-p1-A-1";
	g.article_number = "A";
	g.quantity = 1;
	g.reference_price = 199;
	g.price_source = "MASTER_DATA";
	g.give_away_value = 199;
	g.promotion_id = "p1";
	g.promotion_name = "P1";
	r.n_granted_items = 1;
	r.granted_items = gs;

	dre_buf_init(&out);
	dre_evalresp_write(&out, &r);
	assert_non_null(strstr(out.data,
	    "{\"kind\":\"NEAR_MISS\",\"code\":\"RECEIPT_AMOUNT_BELOW_MIN\","
	    "\"params\":[{\"key\":\"gap\",\"value\":\"5.00\"}],"
	    "\"defaultMessage\":\"Spend 5.00 more\",\"promotionId\":\"p1\","
	    "\"promotionName\":\"P1\",\"matchPercent\":80}"));
	assert_non_null(strstr(out.data,
	    "{\"kind\":\"HINT\",\"code\":\"X\",\"params\":[],"
	    "\"defaultMessage\":\"m\",\"promotionId\":null,"
	    "\"promotionName\":null}"));
	assert_non_null(strstr(out.data,
	    "\"grantedItems\":[{\"grantReference\":\"GRANT-p1-A-1\","
	    "\"articleNumber\":\"A\",\"ean\":null,\"quantity\":1,"
	    "\"referencePrice\":{\"value\":1.99,\"currency\":\"EUR\"},"
	    "\"priceSource\":\"MASTER_DATA\",\"giveAwayValue\":{\"value\":1."
	    "99,"
	    "\"currency\":\"EUR\"},\"promotionId\":\"p1\",\"promotionName\":"
	    "\"P1\",\"triggeredByCoupon\":false}]"));
	assert_non_null(strstr(out.data,
	    "\"saleSubtotal\":{\"value\":10.00,\"currency\":\"EUR\"},"
	    "\"returnSubtotal\":{\"value\":-5.00,\"currency\":\"EUR\"},"
	    "\"savingsSummary\""));
	assert_non_null(strstr(out.data, "\"meta\":{\"header\":{},"));
	dre_buf_free(&out);
}

static dre_err
parse(Dre__EvaluateRequest **q, dre_arena *a, const char *text, bool sim,
    dre_wire_error *err)
{
	dre_json      *root;
	dre_json_error jerr;

	assert_int_equal(dre_json_parse(&root, a, text, strlen(text),
	                     DRE_JSON_MAX_DEPTH, &jerr),
	    DRE_OK);
	return dre_evalreq_parse(q, a, root, sim, err);
}

static void
test_seed_request(void **state)
{
	dre_arena            *a = dre_arena_alloc(0);
	Dre__EvaluateRequest *q;
	dre_wire_error        err;
	int64_t               ts;

	(void) state;
	assert_int_equal(parse(&q, a, SEED_REQUEST, false, &err), DRE_OK);
	assert_string_equal(q->header->transaction_id, "TXN-2026-001");
	assert_false(q->header->has_transaction_counter);
	assert_string_equal(
	    q->pos_group_id, "60000000-0000-4000-8000-000000000001");
	assert_null(q->pos_group_code);
	assert_int_equal(q->n_items, 2);
	assert_string_equal(q->items[0]->line_reference, "L1");
	assert_string_equal(q->items[0]->ean, "4007817327098");
	assert_string_equal(q->items[0]->article_group_id, "ELECTRONICS");
	assert_int_equal(q->items[0]->quantity, 2000);
	assert_int_equal(q->items[0]->unit_price, 8999);
	assert_int_equal(q->items[1]->unit_price, 2500);
	assert_null(q->items[1]->ean);
	assert_string_equal(q->customer->customer_id, "CUST-4711");
	assert_string_equal(q->customer->loyalty_card_no, "LC-98765");
	assert_string_equal(q->customer->loyalty_tier, "GOLD");
	assert_int_equal(q->customer->loyalty_points, 125000);
	assert_true(q->has_timestamp_ms);
	dre_time_parse(&ts, "2026-06-07T14:30:00Z", 20);
	assert_int_equal(q->timestamp_ms, ts);
	assert_false(q->simulate);

	// Packs and unpacks: the evaluator sees the same request.
	size_t   n = dre__evaluate_request__get_packed_size(q);
	uint8_t *buf = malloc(n);
	dre__evaluate_request__pack(q, buf);
	Dre__EvaluateRequest *u = dre__evaluate_request__unpack(NULL, n, buf);
	assert_non_null(u);
	assert_int_equal(u->n_items, 2);
	assert_string_equal(u->items[1]->article_number, "CIG-1001");
	dre__evaluate_request__free_unpacked(u, NULL);
	free(buf);
	dre_arena_free(a);
}

static void
test_full_request(void **state)
{
	dre_arena            *a = dre_arena_alloc(0);
	Dre__EvaluateRequest *q;
	dre_wire_error        err;
	const char           *body
	    = "{\"request\":{\"header\":{\"receiptId\":\"R1\","
	      "\"headerReference\":\"H\"},\"posGroupCode\":\"STORE-1\","
	      "\"items\":[{\"articleNumber\":\"A\",\"quantity\":\"-1.5\","
	      "\"unitPrice\":\"3.10\",\"manufacturerId\":\"M\","
	      "\"articleGroup\":\"G\",\"additionalFields\":[{\"key\":\"k\","
	      "\"value\":\"v\"},{\"key\":\"n\",\"value\":7}],"
	      "\"unknownField\":{\"x\":[1,2]}}],"
	      "\"coupons\":[{\"code\":\"WELCOME15\"},{\"code\":\"SUMMER25\"}],"
	      "\"channel\":\"ONLINE\",\"paymentInfo\":{\"paymentMeans\":"
	      "\"CARD\","
	      "\"cardType\":\"VISA\",\"cardNumber\":\"4111\"},"
	      "\"userDefinedFields\":[{\"key\":\"u\",\"value\":\"w\"}],"
	      "\"manualDiscount\":{\"enabled\":true,\"reasonCode\":\"DMG\"},"
	      "\"includeInactive\":true,\"includeMissedPromotions\":true}}";

	(void) state;
	assert_int_equal(parse(&q, a, body, true, &err), DRE_OK);
	assert_null(q->header->transaction_id);
	assert_string_equal(q->header->receipt_id, "R1");
	assert_string_equal(q->header->header_reference, "H");
	assert_string_equal(q->pos_group_code, "STORE-1");
	assert_int_equal(q->items[0]->quantity, -1500);
	assert_int_equal(q->items[0]->unit_price, 310);
	assert_int_equal(q->items[0]->n_additional_fields, 2);
	assert_string_equal(q->items[0]->additional_fields[1]->value, "7");
	assert_int_equal(q->n_coupons, 2);
	assert_string_equal(q->coupons[1], "SUMMER25");
	assert_string_equal(q->channel, "ONLINE");
	assert_string_equal(q->payment->card_type, "VISA");
	assert_int_equal(q->n_user_defined_fields, 1);
	assert_true(q->manual_discount->enabled);
	assert_string_equal(q->manual_discount->reason_code, "DMG");
	assert_true(q->include_inactive && q->include_missed_promotions);
	assert_true(q->simulate);

	// The simulator flags are ignored on evaluate.
	dre_arena_reset(a);
	assert_int_equal(parse(&q, a, body, false, &err), DRE_OK);
	assert_false(q->has_include_inactive);
	assert_false(q->has_include_missed_promotions);
	dre_arena_free(a);
}

typedef struct {
	const char *request; // inside {"request": ...}; NULL = body as is
	const char *body;
	int         status;
	const char *code;
	const char *target;
} bad_case;

#define ITEM   "{\"articleNumber\":\"A\",\"quantity\":1,\"unitPrice\":1}"
#define PG     "\"posGroupId\":\"60000000-0000-4000-8000-000000000001\""
#define REQ(x) "{" PG ",\"items\":[" ITEM "]," x "}"

static const bad_case bad_cases[] = {
	{ NULL, "[]", 400, "VALIDATION_FAILED", "request" },
	{ NULL, "{}", 400, "VALIDATION_FAILED", "request" },
	{ NULL, "{\"request\":[]}", 400, "VALIDATION_FAILED", "request" },
	{ "{\"items\":[" ITEM "]}", NULL, 400, "VALIDATION_FAILED",
	    "posGroupId" },
	{ "{\"posGroupId\":\"nope\",\"items\":[" ITEM "]}", NULL, 400,
	    "VALIDATION_FAILED", "posGroupId" },
	{ "{\"posGroupCode\":\"123456789012345678901\",\"items\":[" ITEM "]}",
	    NULL, 400, "VALIDATION_FAILED", "posGroupCode" },
	{ "{" PG "}", NULL, 400, "VALIDATION_FAILED", "items" },
	{ "{" PG ",\"items\":[]}", NULL, 400, "VALIDATION_FAILED", "items" },
	{ "{" PG ",\"items\":{}}", NULL, 400, "VALIDATION_FAILED", "items" },
	{ "{" PG ",\"items\":[1]}", NULL, 400, "VALIDATION_FAILED",
	    "items[0]" },
	{ "{" PG ",\"items\":[" ITEM "," ITEM
	  ",{\"articleNumber\":\"A\",\"quantity\":0,\"unitPrice\":1}]}",
	    NULL, 400, "VALIDATION_FAILED", "items[2].quantity" },
	{ "{" PG ",\"items\":[{\"quantity\":1,\"unitPrice\":1}]}", NULL, 400,
	    "VALIDATION_FAILED", "items[0].articleNumber" },
	{ "{" PG ",\"items\":[{\"articleNumber\":7,\"quantity\":1,"
	  "\"unitPrice\":1}]}",
	    NULL, 400, "VALIDATION_FAILED", "items[0].articleNumber" },
	{ "{" PG ",\"items\":[{\"articleNumber\":\"A\",\"quantity\":1.0001,"
	  "\"unitPrice\":1}]}",
	    NULL, 400, "VALIDATION_FAILED", "items[0].quantity" },
	{ "{" PG ",\"items\":[{\"articleNumber\":\"A\",\"quantity\":true,"
	  "\"unitPrice\":1}]}",
	    NULL, 400, "VALIDATION_FAILED", "items[0].quantity" },
	{ "{" PG ",\"items\":[{\"articleNumber\":\"A\",\"quantity\":\"x\","
	  "\"unitPrice\":1}]}",
	    NULL, 400, "VALIDATION_FAILED", "items[0].quantity" },
	{ "{" PG ",\"items\":[{\"articleNumber\":\"A\",\"quantity\":1,"
	  "\"unitPrice\":1.001}]}",
	    NULL, 400, "VALIDATION_FAILED", "items[0].unitPrice" },
	{ "{" PG ",\"items\":[{\"articleNumber\":\"A\",\"quantity\":1,"
	  "\"unitPrice\":-1}]}",
	    NULL, 400, "VALIDATION_FAILED", "items[0].unitPrice" },
	{ "{" PG ",\"items\":[{\"articleNumber\":\"A\",\"quantity\":1}]}",
	    NULL, 400, "VALIDATION_FAILED", "items[0].unitPrice" },
	{ "{" PG ",\"items\":[{\"articleNumber\":\"A\",\"quantity\":1,"
	  "\"unitPrice\":12345678901234567}]}",
	    NULL, 400, "VALIDATION_FAILED", "items[0].unitPrice" },
	{ "{" PG ",\"items\":[{\"articleNumber\":\"A\",\"quantity\":1,"
	  "\"unitPrice\":1,\"ean\":\"1234567890123456789\"}]}",
	    NULL, 400, "VALIDATION_FAILED", "items[0].ean" },
	{ "{" PG ",\"items\":[{\"articleNumber\":\"A\",\"quantity\":1,"
	  "\"unitPrice\":1,\"lineReference\":\"L\"},{\"articleNumber\":\"B\","
	  "\"quantity\":1,\"unitPrice\":1,\"lineReference\":\"L\"}]}",
	    NULL, 400, "VALIDATION_FAILED", "items[1].lineReference" },
	{ "{" PG ",\"items\":[{\"articleNumber\":\"A\",\"quantity\":1,"
	  "\"unitPrice\":1,\"additionalFields\":[{\"value\":\"v\"}]}]}",
	    NULL, 400, "VALIDATION_FAILED",
	    "items[0].additionalFields[0].key" },
	{ REQ("\"coupons\":[\"WELCOME15\",\"SUMMER25\"]"), NULL, 400,
	    "VALIDATION_FAILED", "coupons" },
	{ REQ("\"coupons\":\"WELCOME15\""), NULL, 400, "VALIDATION_FAILED",
	    "coupons" },
	{ REQ("\"coupons\":[{\"code\":\"A\"},{\"code\":5}]"), NULL, 400,
	    "VALIDATION_FAILED", "coupons[1].code" },
	{ REQ("\"coupons\":[{}]"), NULL, 400, "VALIDATION_FAILED",
	    "coupons[0].code" },
	{ REQ("\"header\":{\"transactionCounter\":1}"), NULL, 400,
	    "VALIDATION_FAILED", "header.transactionCounter" },
	{ REQ("\"header\":\"x\""), NULL, 400, "VALIDATION_FAILED", "header" },
	{ REQ("\"header\":{\"transactionId\":"
	      "\"123456789012345678901234567890123456789012345678901\"}"),
	    NULL, 400, "VALIDATION_FAILED", "header.transactionId" },
	{ REQ("\"timestamp\":\"yesterday\""), NULL, 400, "VALIDATION_FAILED",
	    "timestamp" },
	{ REQ("\"timestamp\":1717770000"), NULL, 400, "VALIDATION_FAILED",
	    "timestamp" },
	{ REQ("\"customer\":{\"loyalty\":{\"points\":\"lots\"}}"), NULL, 400,
	    "VALIDATION_FAILED", "customer.loyalty.points" },
	{ REQ("\"customer\":[]"), NULL, 400, "VALIDATION_FAILED", "customer" },
	{ REQ("\"manualDiscount\":{\"enabled\":\"yes\"}"), NULL, 400,
	    "VALIDATION_FAILED", "manualDiscount.enabled" },
	{ REQ("\"includeMissedPromotions\":1"), NULL, 400, "VALIDATION_FAILED",
	    "includeMissedPromotions" },
	{ REQ("\"userDefinedFields\":{}"), NULL, 400, "VALIDATION_FAILED",
	    "userDefinedFields" },
	{ REQ("\"paymentInfo\":{\"cardType\":false}"), NULL, 400,
	    "VALIDATION_FAILED", "paymentInfo.cardType" },
	{ REQ("\"channel\":\"\\u0000\""), NULL, 400, "VALIDATION_FAILED",
	    "channel" },
	{ REQ("\"userDefinedFields\":[{\"key\":\"a\",\"value\":\"b\"},7]"),
	    NULL, 400, "VALIDATION_FAILED", "userDefinedFields[1]" },
	{ REQ("\"userDefinedFields\":[{\"key\":\"a\",\"value\":[]}]"), NULL,
	    400, "VALIDATION_FAILED", "userDefinedFields[0].value" },
	{ "{" PG ",\"items\":[" ITEM
	  ",{\"articleNumber\":\"A\",\"quantity\":1,"
	  "\"unitPrice\":1,\"additionalFields\":[{\"key\":\"k\"},[]]}]}",
	    NULL, 400, "VALIDATION_FAILED", "items[1].additionalFields[1]" },
	{ "{" PG ",\"items\":[" ITEM
	  "],\"customer\":{\"loyalty\":{\"tier\":1}}}",
	    NULL, 400, "VALIDATION_FAILED", "customer.loyalty.tier" },
};

// Unknown members are named with their path, in the order of the request's
// parts (PRODUCT-DECISIONS §1).
static void
test_ignored_fields(void **state)
{
	dre_arena            *a = dre_arena_alloc(0);
	Dre__EvaluateRequest *q;
	dre_wire_error        err;
	static const char    *want[] = { "x", "header.y", "items[1].colour",
		   "items[1].additionalFields[0].z", "customer.loyalty.level",
		   "coupons[0].q", "userDefinedFields[1].w" };
	const char           *body = "{\"request\":{" PG ",\"x\":1,"
	                             "\"header\":{\"y\":1},\"items\":[" ITEM
	                   ",{\"articleNumber\":\"B\",\"quantity\":1,"
	                   "\"unitPrice\":1,\"colour\":\"red\","
	                   "\"additionalFields\":[{\"key\":\"k\","
	                   "\"value\":\"v\",\"z\":1}]}],"
	                   "\"customer\":{\"loyalty\":{\"level\":2}},"
	                   "\"coupons\":[{\"code\":\"C\",\"q\":1}],"
	                   "\"userDefinedFields\":[{\"key\":\"a\","
	                   "\"value\":\"b\"},{\"key\":\"c\","
	                   "\"value\":\"d\",\"w\":0}]}}";

	(void) state;
	assert_int_equal(parse(&q, a, body, false, &err), DRE_OK);
	assert_int_equal(q->n_ignored_fields, sizeof want / sizeof want[0]);
	for (size_t i = 0; i < q->n_ignored_fields; i++)
		assert_string_equal(q->ignored_fields[i], want[i]);
	dre_arena_free(a);
}

static void
test_bad_requests(void **state)
{
	dre_arena *a = dre_arena_alloc(0);
	char       text[4096];

	(void) state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const bad_case       *c = &bad_cases[i];
		Dre__EvaluateRequest *q = NULL;
		dre_wire_error        err;

		if (c->request != NULL)
			snprintf(text, sizeof(text), "{\"request\":%s}",
			    c->request);
		else
			snprintf(text, sizeof(text), "%s", c->body);
		dre_arena_reset(a);
		if (parse(&q, a, text, false, &err) != DRE_EINVAL)
			fail_msg("case %zu accepted: %s", i, text);
		if (err.status != c->status || strcmp(err.code, c->code) != 0
		    || strcmp(err.target, c->target) != 0)
			fail_msg("case %zu: got %d %s %s (%s), want %d %s %s",
			    i, err.status, err.code, err.target, err.message,
			    c->status, c->code, c->target);
		assert_true(err.message[0] != '\0');
	}
	dre_arena_free(a);
}

static void
test_too_many_items(void **state)
{
	dre_arena            *a = dre_arena_alloc(0);
	Dre__EvaluateRequest *q;
	dre_wire_error        err;
	dre_buf               b;

	(void) state;
	for (int n = 1000; n <= 1001; n++) {
		dre_buf_init(&b);
		dre_buf_puts(&b, "{\"request\":{" PG ",\"items\":[");
		for (int i = 0; i < n; i++)
			dre_buf_printf(&b,
			    "%s{\"articleNumber\":\"A%d\",\"quantity\":1,"
			    "\"unitPrice\":1.5,\"lineReference\":\"L%d\"}",
			    i ? "," : "", i, i);
		dre_buf_puts(&b, "]}}");
		dre_arena_reset(a);
		dre_err e = parse(&q, a, b.data, false, &err);
		if (n == 1000) {
			assert_int_equal(e, DRE_OK);
			assert_int_equal(q->n_items, 1000);
			assert_string_equal(
			    q->items[999]->line_reference, "L999");
		} else {
			assert_int_equal(e, DRE_EINVAL);
			assert_int_equal(err.status, 413);
			assert_string_equal(err.code, "PAYLOAD_TOO_LARGE");
			assert_string_equal(err.target, "items");
		}
		dre_buf_free(&b);
	}
	dre_arena_free(a);
}

static void
test_error_body(void **state)
{
	dre_buf          b;
	dre_error_detail d[1]
	    = { { "VALIDATION_FAILED", "q \"0\"", "items[2].quantity" } };

	(void) state;
	dre_buf_init(&b);
	dre_error_body_write(&b, "VALIDATION_FAILED",
	    "coupons must be an array of objects {code}", "coupons");
	assert_string_equal(b.data,
	    "{\"error\":{\"code\":\"VALIDATION_FAILED\",\"message\":\"coupons "
	    "must be an array of objects {code}\",\"target\":\"coupons\"}}");
	dre_buf_reset(&b);
	dre_error_body_write(&b, "NOT_FOUND", "no such path", NULL);
	assert_string_equal(b.data,
	    "{\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"no such "
	    "path\"}}");
	dre_buf_reset(&b);
	dre_error_body_write_details(&b, "VALIDATION_FAILED", "m", "t", d, 1);
	assert_string_equal(b.data,
	    "{\"error\":{\"code\":\"VALIDATION_FAILED\",\"message\":\"m\","
	    "\"target\":\"t\",\"details\":[{\"code\":\"VALIDATION_FAILED\","
	    "\"message\":\"q "
	    "\\\"0\\\"\",\"target\":\"items[2].quantity\"}]}}");
	dre_buf_free(&b);
}

static void
test_heartbeat(void **state)
{
	Dre__HeartbeatResponse h = DRE__HEARTBEAT_RESPONSE__INIT;
	dre_buf                b;

	(void) state;
	h.status = "UP";
	h.version = "0.1.0";
	h.mode = "central";
	h.btp_connectivity = "CONNECTED";
	h.pending_transactions = 3;
	h.promotions_loaded = 12;
	h.uptime_s = 60;
	dre_buf_init(&b);
	dre_heartbeat_write(&b, &h);
	assert_string_equal(b.data,
	    "{\"status\":\"UP\",\"version\":\"0.1.0\",\"mode\":\"central\","
	    "\"btpConnectivity\":\"CONNECTED\",\"lastSync\":null,"
	    "\"pendingTransactions\":3,\"promotionsLoaded\":12,\"uptime\":"
	    "60}");
	dre_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_response),
		cmocka_unit_test(test_recommendation_and_grants),
		cmocka_unit_test(test_seed_request),
		cmocka_unit_test(test_full_request),
		cmocka_unit_test(test_bad_requests),
		cmocka_unit_test(test_ignored_fields),
		cmocka_unit_test(test_too_many_items),
		cmocka_unit_test(test_error_body),
		cmocka_unit_test(test_heartbeat),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
