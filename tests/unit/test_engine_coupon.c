// test_engine_coupon.c -- the engine's coupon input (engine_coupon.c):
// promotions a coupon triggers (tagged, validity and POS group skipped,
// status kept), the COUPON stage without a code, stacking, duplicates and
// the coupon service's absence (UNAVAILABLE).
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dre/clock.h"
#include "engine.h"

#define TENANT  "tenant-abc"
#define PG_ID   "60000000-0000-4000-8000-000000000001"
#define P_S     "c0000000-0000-4000-8000-000000000001" // CT-S, 10 %
#define P_N     "c0000000-0000-4000-8000-000000000002" // CT-N, 20 %
#define P_OFF   "c0000000-0000-4000-8000-000000000003" // CT-S, INACTIVE
#define P_PLAIN "c0000000-0000-4000-8000-000000000004" // no coupon type

typedef struct {
	eng_engine *e;
	dre_arena  *a;
	int64_t     version;
} fx;

static void
put(fx *f, const char *key, const char *doc)
{
	eng_master_change c = { ENG_MK_PROMOTION, TENANT, key, ++f->version,
		doc, strlen(doc) };
	bool              applied;
	assert_int_equal(eng_apply(f->e, &c, 1000, &applied), DRE_OK);
	assert_true(applied);
}

static void
promo(fx *f, const char *id, const char *extra, int pct)
{
	char doc[1024];
	snprintf(doc, sizeof(doc),
	    "{\"id\":\"%s\",\"name\":\"%s\",\"type\":\"COUPON\",%s"
	    "\"conditions\":[{\"type\":\"ARTICLE\",\"values\":[\"A\"]}],"
	    "\"actions\":[{\"type\":\"ARTICLE\",\"discountType\":"
	    "\"PERCENTAGE\",\"value\":%d}]}",
	    id, id, extra, pct);
	put(f, id, doc);
}

static int
setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(eng_alloc(&f->e), DRE_OK);
	f->a = dre_arena_alloc(0);
	assert_non_null(f->a);
	// Out of date and for another POS group: a coupon skips both.
	promo(f, P_S,
	    "\"status\":\"ACTIVE\",\"couponTypeIds\":[\"CT-S\"],"
	    "\"validTo\":\"2020-01-01T00:00:00Z\",\"posGroups\":[\"other\"],",
	    10);
	promo(
	    f, P_N, "\"status\":\"ACTIVE\",\"couponTypeIds\":[\"CT-N\"],", 20);
	promo(f, P_OFF,
	    "\"status\":\"INACTIVE\",\"couponTypeIds\":[\"CT-S\"],", 5);
	promo(f, P_PLAIN, "\"status\":\"ACTIVE\",", 1);
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

static const char *const ids_s[] = { P_S, P_OFF, P_PLAIN, "unknown-id" };
static const char *const ids_n[] = { P_N };

static eng_coupon_result
ok(const char *code, bool stackable)
{
	eng_coupon_result r = { .code = code,
		.valid = true,
		.type_id = stackable ? "CT-S" : "CT-N",
		.type_name = stackable ? "Stackable" : "Solo",
		.stackable = stackable,
		.promotion_ids = stackable ? ids_s : ids_n,
		.npromotion_ids = stackable ? 4 : 1 };
	return r;
}

static Dre__EvaluateResponse *
run(fx *f, const eng_coupon_result *cs, size_t n, bool unavailable,
    bool simulate, bool inactive)
{
	Dre__EvaluateRequest *r = dre_arena_get(f->a, sizeof(*r));
	dre__evaluate_request__init(r);
	r->pos_group_id = PG_ID;
	Dre__BasketItem *it = dre_arena_get(f->a, sizeof(*it));
	dre__basket_item__init(it);
	it->line_reference = "L1";
	it->article_number = "A";
	it->quantity = 1000;
	it->unit_price = 10000;
	r->items = dre_arena_get(f->a, sizeof(*r->items));
	r->items[0] = it;
	r->n_items = 1;
	assert_int_equal(
	    dre_time_parse(&r->timestamp_ms, "2026-06-07T14:30:00Z", 20),
	    DRE_OK);
	r->has_timestamp_ms = true;
	r->has_include_missed_promotions = r->include_missed_promotions = true;
	r->has_include_inactive = r->include_inactive = inactive;
	r->coupons = dre_arena_get(f->a, (n + 1) * sizeof(char *));
	for (size_t i = 0; i < n; i++)
		r->coupons[i] = (char *) cs[i].code;
	r->n_coupons = n;
	eng_eval_ctx           ctx = { .tenant = TENANT,
		          .now_ms = 1,
		          .counter = 1,
		          .transaction_id = "T",
		          .currency = "EUR",
		          .simulate = simulate,
		          .coupons = unavailable ? NULL : cs,
		          .ncoupons = unavailable ? 0 : n };
	const eng_index       *ix = eng_acquire(f->e);
	Dre__EvaluateResponse *p = NULL;
	eng_eval_error         err;
	assert_int_equal(eng_evaluate(&p, f->a, ix, r, &ctx, &err), DRE_OK);
	eng_index_release(ix);
	size_t   len = dre__evaluate_response__get_packed_size(p);
	uint8_t *buf = malloc(len + 1);
	dre__evaluate_response__pack(p, buf); // every required field set
	Dre__EvaluateResponse *back
	    = dre__evaluate_response__unpack(NULL, len, buf);
	assert_non_null(back);
	dre__evaluate_response__free_unpacked(back, NULL);
	free(buf);
	return p;
}

static const Dre__LineDiscount *
find(const Dre__EvaluateResponse *p, const char *id)
{
	const Dre__LineItem *li = p->line_items[0];
	for (size_t k = 0; k < li->n_discounts; k++)
		if (strcmp(li->discounts[k]->promotion_id, id) == 0)
			return li->discounts[k];
	return NULL;
}

static const char *
stage_of(const Dre__EvaluateResponse *p, const char *id)
{
	for (size_t k = 0; k < p->n_missed_promotions; k++)
		if (strcmp(p->missed_promotions[k]->promotion_id, id) == 0)
			return p->missed_promotions[k]->stage;
	return NULL;
}

static void
test_triggered(void **state)
{
	fx                      *f = *state;
	eng_coupon_result        c = ok("SAVE10", true);
	Dre__EvaluateResponse   *p = run(f, &c, 1, false, false, false);
	const Dre__LineDiscount *d = find(p, P_S);
	assert_non_null(d);
	assert_int_equal(d->discount_amount, 1000);
	assert_string_equal(d->coupon_code, "SAVE10");
	assert_true(d->has_triggered_by_coupon && d->triggered_by_coupon);
	d = find(p, P_PLAIN); // a promotion without coupon types: untagged
	assert_non_null(d);
	assert_null(d->coupon_code);
	assert_false(d->triggered_by_coupon);
	assert_null(find(p, P_OFF)); // status still counts
	assert_string_equal(stage_of(p, P_OFF), "STATUS");
	assert_null(find(p, P_N));
	assert_string_equal(stage_of(p, P_N), "COUPON");
	assert_int_equal(p->n_applied_coupons, 1);
	assert_string_equal(p->applied_coupons[0]->code, "SAVE10");
	assert_string_equal(
	    p->applied_coupons[0]->coupon_type_name, "Stackable");
	assert_int_equal(p->applied_coupons[0]->n_promotion_ids, 1);
	assert_string_equal(p->applied_coupons[0]->promotion_ids[0], P_S);
	assert_int_equal(p->n_invalid_coupons, 0);

	// simulate with includeInactive reaches the INACTIVE one too
	p = run(f, &c, 1, false, true, true);
	assert_non_null(find(p, P_OFF));
	assert_string_equal(find(p, P_OFF)->coupon_code, "SAVE10");
	assert_int_equal(p->applied_coupons[0]->n_promotion_ids, 2);

	// without a code: COUPON stage, nothing tagged
	p = run(f, NULL, 0, false, false, false);
	assert_null(find(p, P_S));
	assert_string_equal(stage_of(p, P_S), "COUPON");
	assert_int_equal(p->n_applied_coupons + p->n_invalid_coupons, 0);
}

static void
test_stacking(void **state)
{
	fx               *f = *state;
	eng_coupon_result v[4] = { ok("SOLO", false), ok("MULTI", true),
		ok("BAD", true), ok("solo", false) };
	v[2].valid = false;
	v[2].reason = "EXPIRED";
	Dre__EvaluateResponse *p = run(f, v, 4, false, false, false);
	assert_non_null(find(p, P_N));
	assert_string_equal(find(p, P_N)->coupon_code, "SOLO");
	assert_null(find(p, P_S));
	assert_int_equal(p->n_applied_coupons, 1);
	assert_string_equal(p->applied_coupons[0]->code, "SOLO");
	assert_int_equal(p->n_invalid_coupons, 3);
	const char *want[3][2] = { { "MULTI", "NOT_STACKABLE" },
		{ "BAD", "EXPIRED" }, { "solo", "DUPLICATE" } };
	for (int i = 0; i < 3; i++) {
		assert_string_equal(p->invalid_coupons[i]->code, want[i][0]);
		assert_string_equal(p->invalid_coupons[i]->reason, want[i][1]);
	}
	assert_string_equal(stage_of(p, P_S), "COUPON");

	// the first applied wins: a stackable code keeps a later solo out
	eng_coupon_result w[2] = { ok("MULTI", true), ok("SOLO", false) };
	p = run(f, w, 2, false, false, false);
	assert_non_null(find(p, P_S));
	assert_null(find(p, P_N));
	assert_int_equal(p->n_invalid_coupons, 1);
	assert_string_equal(p->invalid_coupons[0]->reason, "NOT_STACKABLE");
}

static void
test_unavailable(void **state)
{
	fx                    *f = *state;
	eng_coupon_result      v[2] = { ok("SOLO", false), ok("MULTI", true) };
	Dre__EvaluateResponse *p = run(f, v, 2, true, false, false);
	assert_null(find(p, P_S));
	assert_null(find(p, P_N));
	assert_non_null(find(p, P_PLAIN)); // the rest is priced as usual
	assert_int_equal(p->n_applied_coupons, 0);
	assert_int_equal(p->n_invalid_coupons, 2);
	assert_string_equal(p->invalid_coupons[0]->code, "SOLO");
	assert_string_equal(p->invalid_coupons[0]->reason, "UNAVAILABLE");
	assert_string_equal(p->invalid_coupons[1]->reason, "UNAVAILABLE");
}

// A valid code whose promotions give nothing stays applied with no
// promotion ids; a linked promotion that no longer lists the type is not
// triggered.
static void
test_applied_empty(void **state)
{
	fx *f = *state;
	promo(
	    f, P_N, "\"status\":\"ACTIVE\",\"couponTypeIds\":[\"CT-X\"],", 20);
	eng_coupon_result      c = ok("SOLO", false);
	Dre__EvaluateResponse *p = run(f, &c, 1, false, false, false);
	assert_null(find(p, P_N));
	assert_int_equal(p->n_applied_coupons, 1);
	assert_int_equal(p->applied_coupons[0]->n_promotion_ids, 0);
	assert_int_equal(p->n_invalid_coupons, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    test_triggered, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_stacking, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_unavailable, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_applied_empty, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
