// test_engine_property.c -- random baskets against random promotion sets
// (seeded, DRE_PROP_SEED / DRE_PROP_RUNS to vary): line discounts add up to
// the totals, no sale line goes below zero or gets more than its total, the
// answer does not depend on the order promotions were loaded in, and the
// combination chosen saves the customer at least as much as any one of its
// promotions alone.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dre/buf.h"
#include "engine.h"

#define MAXP 8
#define MAXL 8

static uint64_t rng;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t) (rng % n);
}

static const char *const arts[] = { "A", "B", "C", "D", "E", "F" };
static const char *const grps[] = { "G1", "G1", "G2", "G2", NULL, NULL };

static const char *
pick_art(void)
{
	return arts[rnd(6)];
}

static void
money(dre_buf *b, int64_t cents)
{
	dre_buf_printf(b, "%lld.%02lld", (long long) (cents / 100),
	    (long long) (cents % 100));
}

static void
disc(dre_buf *b, bool unit_price)
{
	switch (rnd(unit_price ? 3 : 2)) {
	case 0:
		dre_buf_printf(b,
		    "\"discountType\":\"PERCENTAGE\",\"value\":%u",
		    1 + rnd(100));
		break;
	case 1:
		dre_buf_puts(b, "\"discountType\":\"ABSOLUTE\",\"value\":");
		money(b, 1 + rnd(1500));
		break;
	default:
		dre_buf_puts(b, "\"discountType\":\"UNIT_PRICE\",\"value\":");
		money(b, rnd(2000));
		break;
	}
}

static void
target(dre_buf *b)
{
	if (rnd(2))
		dre_buf_printf(b, ",\"target\":{\"articles\":[\"%s\",\"%s\"]}",
		    pick_art(), pick_art());
	else if (rnd(2))
		dre_buf_printf(b, ",\"target\":{\"articleGroups\":[\"G%u\"]}",
		    1 + rnd(2));
}

static void
action(dre_buf *b)
{
	switch (rnd(9)) {
	case 0:
	case 1:
		dre_buf_puts(b, "{\"type\":\"ARTICLE\",");
		disc(b, true);
		if (rnd(3) == 0)
			dre_buf_printf(b, ",\"maxQuantity\":%u", 1 + rnd(3));
		target(b);
		break;
	case 2:
		dre_buf_printf(b,
		    "{\"type\":\"QUANTITY_TIER\",\"tiers\":[{\"minQuantity\":"
		    "%u,",
		    1 + rnd(2));
		disc(b, true);
		dre_buf_printf(b, "},{\"minQuantity\":%u,", 3 + rnd(3));
		disc(b, true);
		dre_buf_puts(b, "}]");
		target(b);
		break;
	case 3:
		dre_buf_printf(b,
		    "{\"type\":\"BUNDLE\",\"components\":[{\"articles\":[\"%"
		    "s\"]"
		    ",\"quantity\":%u},{\"articleGroups\":[\"G%u\"]}],",
		    pick_art(), 1 + rnd(2), 1 + rnd(2));
		if (rnd(2)) {
			dre_buf_puts(b, "\"bundlePrice\":");
			money(b, rnd(3000));
		} else
			disc(b, false);
		if (rnd(2))
			dre_buf_printf(
			    b, ",\"maxApplications\":%u", 1 + rnd(2));
		break;
	case 4:
		dre_buf_puts(b, "{\"type\":\"RECEIPT\",");
		disc(b, false);
		if (rnd(3) == 0)
			target(b);
		break;
	case 5:
		dre_buf_printf(b,
		    "{\"type\":\"SCALED_RECEIPT\",\"tiers\":[{\"threshold\":%"
		    "u,"
		    "\"value\":%u},{\"threshold\":%u,\"value\":%u}]",
		    10 + rnd(40), 1 + rnd(5), 60 + rnd(60), 5 + rnd(10));
		break;
	case 6:
		dre_buf_printf(b,
		    "{\"type\":\"FREE_ITEM\",\"articleNumber\":\"%s\","
		    "\"quantity\":%u",
		    rnd(2) ? pick_art() : "GIFT", 1 + rnd(2));
		if (rnd(2)) {
			dre_buf_puts(b, ",\"referencePrice\":");
			money(b, rnd(500));
		}
		break;
	case 7:
		dre_buf_printf(b,
		    "{\"type\":\"CURRENCY_TO_POINTS\",\"pointsPerUnit\":%u",
		    1 + rnd(3));
		break;
	default:
		dre_buf_puts(b, "{\"type\":\"ARTICLE\",");
		disc(b, false);
		break;
	}
	dre_buf_putc(b, '}');
}

static void
condition(dre_buf *b)
{
	switch (rnd(6)) {
	case 0:
		dre_buf_printf(b,
		    "{\"type\":\"ARTICLE\",\"values\":[\"%s\",\"%s\"],"
		    "\"minQuantity\":%u}",
		    pick_art(), pick_art(), 1 + rnd(3));
		break;
	case 1:
		dre_buf_printf(b,
		    "{\"type\":\"ARTICLE_GROUP\",\"values\":[\"G%u\"]}",
		    1 + rnd(2));
		break;
	case 2:
		dre_buf_printf(
		    b, "{\"type\":\"RECEIPT_AMOUNT\",\"min\":%u}", rnd(80));
		break;
	case 3:
		dre_buf_printf(
		    b, "{\"type\":\"ITEM_QUANTITY\",\"min\":%u}", 1 + rnd(6));
		break;
	default:
		dre_buf_puts(b, "");
		break;
	}
}

static const char *const modes[] = { "ADDITIVE", "MULTIPLICATIVE" };
static const char *const roundings[] = { "HALF_UP", "DOWN", "UP", "NONE" };

static char *
promotion(int k)
{
	dre_buf b = { 0 };
	dre_buf_printf(&b,
	    "{\"id\":\"70000000-0000-4000-8000-%012d\",\"name\":\"p%d\","
	    "\"type\":\"ARTICLE\",\"status\":\"ACTIVE\",\"priority\":%u,",
	    k, k, 1 + rnd(3));
	uint32_t x = rnd(10);
	dre_buf_printf(&b, "\"exclusivity\":\"%s\",",
	    x == 0       ? "LINE"
	        : x == 1 ? "RECEIPT"
	                 : "NONE");
	if (rnd(3) == 0)
		dre_buf_printf(&b, "\"exclusionGroups\":[\"X%u\"],", rnd(2));
	dre_buf_printf(&b,
	    "\"calculationConfig\":{\"mode\":\"%s\",\"rounding\":\"%s\","
	    "\"precision\":%u},",
	    modes[rnd(2)], roundings[rnd(4)], rnd(4));
	dre_buf_puts(&b, "\"conditions\":[");
	dre_buf  c = { 0 };
	uint32_t nc = rnd(3);
	for (uint32_t i = 0; i < nc; i++) {
		dre_buf_reset(&c);
		condition(&c);
		if (c.len == 0)
			continue;
		if (b.data[b.len - 1] != '[')
			dre_buf_putc(&b, ',');
		dre_buf_append(&b, c.data, c.len);
	}
	dre_buf_free(&c);
	dre_buf_puts(&b, "],\"actions\":[");
	uint32_t na = 1 + rnd(2);
	for (uint32_t i = 0; i < na; i++) {
		if (i)
			dre_buf_putc(&b, ',');
		action(&b);
	}
	dre_buf_puts(&b, "]}");
	dre_buf_putc(&b, 0);
	return dre_buf_take(&b, NULL);
}

static Dre__EvaluateRequest *
basket(dre_arena *a)
{
	Dre__EvaluateRequest *r = dre_arena_get(a, sizeof(*r));
	dre__evaluate_request__init(r);
	r->pos_group_id = "60000000-0000-4000-8000-000000000001";
	uint32_t n = 1 + rnd(MAXL);
	r->items = dre_arena_get(a, n * sizeof(*r->items));
	for (uint32_t i = 0; i < n; i++) {
		Dre__BasketItem *it = dre_arena_get(a, sizeof(*it));
		dre__basket_item__init(it);
		uint32_t k = rnd(6);
		it->article_number = (char *) arts[k];
		it->article_group_id = (char *) grps[k];
		uint32_t q = rnd(10);
		it->quantity = q < 6 ? (1 + rnd(5)) * 1000
		    : q < 8          ? 250 + rnd(3000)
		    : q == 8         ? -1000 * (int64_t) (1 + rnd(2))
		                     : 1000;
		it->unit_price = rnd(8) == 0 ? 0 : rnd(5000);
		r->items[r->n_items++] = it;
	}
	r->has_timestamp_ms = true;
	r->timestamp_ms = 1780000000000;
	return r;
}

static Dre__EvaluateResponse *
eval(eng_engine *e, dre_arena *a, const Dre__EvaluateRequest *r,
    const char *tenant)
{
	eng_eval_ctx           ctx = { .tenant = tenant,
		          .now_ms = 1780000000000,
		          .counter = 1,
		          .transaction_id = "T",
		          .currency = "EUR" };
	const eng_index       *ix = eng_acquire(e);
	Dre__EvaluateResponse *resp = NULL;
	eng_eval_error         err;
	assert_int_equal(eng_evaluate(&resp, a, ix, r, &ctx, &err), DRE_OK);
	eng_index_release(ix);
	return resp;
}

static int64_t
saving(const Dre__EvaluateResponse *r)
{
	int64_t s = r->totals->discount;
	for (size_t i = 0; i < r->n_granted_items; i++)
		s += r->granted_items[i]->give_away_value;
	return s;
}

static void
invariants(const Dre__EvaluateResponse *r, const char *what)
{
	int64_t sum = 0, bd = 0;
	for (size_t i = 0; i < r->n_line_items; i++) {
		const Dre__LineItem *li = r->line_items[i];
		int64_t              s = 0;
		for (size_t k = 0; k < li->n_discounts; k++) {
			assert_true(li->discounts[k]->discount_amount > 0);
			s += li->discounts[k]->discount_amount;
		}
		if (s != li->line_discount
		    || li->line_net != li->line_total - s
		    || (li->line_total >= 0 && li->line_net < 0)
		    || (li->quantity < 0 && s != 0)
		    || (li->line_total >= 0 && s > li->line_total)) {
			print_error(
			    "%s: line %zu: total %lld discount %lld sum "
			    "%lld net %lld\n",
			    what, i, (long long) li->line_total,
			    (long long) li->line_discount, (long long) s,
			    (long long) li->line_net);
			fail();
		}
		sum += s;
	}
	for (size_t i = 0; i < r->totals->n_promotion_breakdown; i++)
		bd += r->totals->promotion_breakdown[i]->total_discount;
	assert_int_equal(sum, r->totals->discount);
	assert_int_equal(bd, r->totals->discount);
	assert_int_equal(
	    r->totals->grand_total, r->totals->subtotal - r->totals->discount);
}

static uint8_t *
packed(const Dre__EvaluateResponse *r, size_t *len)
{
	*len = dre__evaluate_response__get_packed_size(r);
	uint8_t *b = malloc(*len + 1);
	dre__evaluate_response__pack(r, b);
	return b;
}

static void
test_properties(void **state)
{
	const char *s = getenv("DRE_PROP_SEED");
	const char *n = getenv("DRE_PROP_RUNS");
	rng = s ? strtoull(s, NULL, 10) : 0x9e3779b97f4a7c15ull;
	if (rng == 0)
		rng = 1;
	int        runs = n ? atoi(n) : 5000;
	dre_arena *a = dre_arena_alloc(1 << 16);
	for (int run = 0; run < runs; run++) {
		int   np = 1 + (int) rnd(MAXP);
		char *docs[MAXP];
		char  ids[MAXP][40], single[MAXP][16];
		// Tenant "fwd" loads them in order, "rev" in reverse with
		// other versions, "s<i>" holds promotion i alone.
		eng_master_change v[3 * MAXP];
		size_t            nv = 0;
		for (int k = 0; k < np; k++) {
			docs[k] = promotion(k);
			snprintf(ids[k], sizeof(ids[k]),
			    "70000000-0000-4000-8000-%012d", k);
			snprintf(single[k], sizeof(single[k]), "s%d", k);
		}
		for (int k = 0; k < np; k++)
			v[nv++] = (eng_master_change) { ENG_MK_PROMOTION,
				"fwd", ids[k], k + 1, docs[k],
				strlen(docs[k]) };
		for (int k = np - 1; k >= 0; k--)
			v[nv++] = (eng_master_change) { ENG_MK_PROMOTION,
				"rev", ids[k], 100 - k, docs[k],
				strlen(docs[k]) };
		for (int k = 0; k < np; k++)
			v[nv++] = (eng_master_change) { ENG_MK_PROMOTION,
				single[k], ids[k], 1, docs[k],
				strlen(docs[k]) };
		eng_engine *e;
		assert_int_equal(eng_alloc(&e), DRE_OK);
		size_t nbad = 0;
		assert_int_equal(eng_load(e, v, nv, 1, &nbad), DRE_OK);
		if (nbad != 0) {
			for (int k = 0; k < np; k++)
				print_error("%s\n", docs[k]);
			fail();
		}
		dre_arena_reset(a);
		Dre__EvaluateRequest  *r = basket(a);
		Dre__EvaluateResponse *fwd = eval(e, a, r, "fwd");
		Dre__EvaluateResponse *rev = eval(e, a, r, "rev");
		char                   what[64];
		snprintf(what, sizeof(what), "run %d", run);
		invariants(fwd, what);
		size_t l1, l2;
		fwd->tenant_id = rev->tenant_id = "t";
		uint8_t *p1 = packed(fwd, &l1), *p2 = packed(rev, &l2);
		if (l1 != l2 || memcmp(p1, p2, l1) != 0) {
			print_error(
			    "%s: load order changes the answer\n", what);
			fail();
		}
		free(p1);
		free(p2);
		int64_t best = saving(fwd);
		for (int k = 0; k < np; k++) {
			Dre__EvaluateResponse *one = eval(e, a, r, single[k]);
			invariants(one, what);
			if (saving(one) > best) {
				print_error(
				    "%s: promotion %d alone saves %lld, "
				    "the combination %lld\n",
				    what, k, (long long) saving(one),
				    (long long) best);
				for (int j = 0; j < np; j++)
					print_error("  p%d %s\n", j, docs[j]);
				for (size_t i = 0; i < r->n_items; i++)
					print_error(
					    "  line %s %lld x %lld: %lld "
					    "together, %lld alone\n",
					    r->items[i]->article_number,
					    (long long) r->items[i]->quantity,
					    (long long) r->items[i]
					        ->unit_price,
					    (long long) fwd->line_items[i]
					        ->line_discount,
					    (long long) one->line_items[i]
					        ->line_discount);
				for (size_t i = 0; i < fwd->n_granted_items;
				     i++)
					print_error("  granted %s %lld\n",
					    fwd->granted_items[i]
					        ->article_number,
					    (long long) fwd->granted_items[i]
					        ->give_away_value);
				fail();
			}
		}
		eng_free(e);
		for (int k = 0; k < np; k++)
			free(docs[k]);
	}
	dre_arena_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_properties),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
