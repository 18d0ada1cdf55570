// fuzz_engine.c -- libFuzzer target for the promotion engine: the input
// bytes choose (FuzzedDataProvider style) a few promotion documents, master
// data and a basket; the engine loads them (eng_load) and prices the
// basket (eng_evaluate), then again after one promotion is deleted
// (eng_apply).
//
// Oracle, integers in minor units: every line's discounts are positive and
// add up to its lineDiscount; lineNet = lineTotal - lineDiscount; a sale
// line's total is quantity x unitPrice, never negative, and its discount
// never exceeds it; a return line gets no discount; subtotal = sum of the
// line totals, discount = sum of the line discounts = sum of the promotion
// breakdown, grandTotal = subtotal - discount; given-away values are not
// negative; the answer packs to protobuf and renders as JSON that parses.
// Any violation aborts.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/evalwire.h"
#include "dre/json.h"
#include "dre/log.h"
#include "dre/money.h"
#include "dre/promo.h"
#include "engine.h"

#include "fuzz.h"

#define MAXP   8
#define MAXL   12
#define TENANT "fz"
#define PG_ID  "60000000-0000-4000-8000-000000000001"
#define NOW_MS 1780000000000LL // 2026-05-28T20:26:40Z, a Thursday
#define ID_FMT "70000000-0000-4000-8000-%012d"

// ---- byte consumption (FuzzedDataProvider in C) -------------------------

typedef struct {
	const uint8_t *p;
	size_t         n;
} fdp;

static uint8_t
u8(fdp *f)
{
	if (f->n == 0)
		return 0;
	f->n--;
	return *f->p++;
}

// range returns a value in [lo, hi], reading only the bytes it needs.
static int64_t
range(fdp *f, int64_t lo, int64_t hi)
{
	uint64_t span = (uint64_t) (hi - lo), v = 0;
	for (uint64_t s = span; s != 0 && f->n > 0; s >>= 8)
		v = (v << 8) | u8(f);
	return lo + (int64_t) (span == UINT64_MAX ? v : v % (span + 1));
}

static bool
flag(fdp *f)
{
	return u8(f) & 1;
}

// ---- documents -----------------------------------------------------------

static const char *const arts[] = { "A", "B", "C", "D", "E", "GIFT" };
static const char *const grps[] = { "G1", "G1", "G2", "G2", NULL, NULL };
static const char *const manus[] = { "M1", NULL, "M2", NULL, "M1", NULL };

static const char *
pick_art(fdp *f)
{
	return arts[range(f, 0, 5)];
}

static void
money(dre_buf *b, int64_t cents)
{
	dre_buf_printf(b, "%s%lld.%02lld", cents < 0 ? "-" : "",
	    (long long) (llabs(cents) / 100),
	    (long long) (llabs(cents) % 100));
}

// amount returns a money amount: mostly small, sometimes at the limits.
static int64_t
amount(fdp *f)
{
	switch (range(f, 0, 15)) {
	case 0:
		return 0;
	case 1:
		return range(f, 0, 999999999999999LL);
	case 2:
		return range(f, 0, 10000000);
	default:
		return range(f, 1, 5000);
	}
}

static void
disc(fdp *f, dre_buf *b, bool unit_price)
{
	switch (range(f, 0, unit_price ? 2 : 1)) {
	case 0: {
		int64_t half = range(f, 2, 200); // 1.00 .. 100.00 in halves
		dre_buf_printf(b,
		    "\"discountType\":\"PERCENTAGE\",\"value\":%lld.%s",
		    (long long) (half / 2), half % 2 ? "50" : "00");
		break;
	}
	case 1:
		dre_buf_puts(b, "\"discountType\":\"ABSOLUTE\",\"value\":");
		money(b, 1 + amount(f) % 999999999999998LL);
		break;
	default:
		dre_buf_puts(b, "\"discountType\":\"UNIT_PRICE\",\"value\":");
		money(b, amount(f));
		break;
	}
}

static void
target(fdp *f, dre_buf *b)
{
	switch (range(f, 0, 3)) {
	case 0:
		dre_buf_printf(b, ",\"target\":{\"articles\":[\"%s\",\"%s\"]}",
		    pick_art(f), pick_art(f));
		break;
	case 1:
		dre_buf_printf(b, ",\"target\":{\"articleGroups\":[\"G%d\"]}",
		    (int) range(f, 1, 2));
		break;
	case 2:
		dre_buf_printf(b, ",\"target\":{\"manufacturers\":[\"M%d\"]}",
		    (int) range(f, 1, 2));
		break;
	default:
		break;
	}
}

static void
action(fdp *f, dre_buf *b)
{
	switch (range(f, 0, 13)) {
	case 0:
	case 1:
		dre_buf_puts(b, "{\"type\":\"ARTICLE\",");
		disc(f, b, true);
		if (flag(f))
			dre_buf_printf(
			    b, ",\"maxQuantity\":%d", (int) range(f, 1, 3));
		target(f, b);
		break;
	case 2:
		dre_buf_printf(b, "{\"type\":\"ARTICLE_GROUP\",");
		disc(f, b, true);
		dre_buf_printf(b, ",\"target\":{\"articleGroups\":[\"G%d\"]}",
		    (int) range(f, 1, 2));
		break;
	case 3:
		dre_buf_printf(b,
		    "{\"type\":\"QUANTITY_TIER\",\"tiers\":[{\"minQuantity\":"
		    "%d,",
		    (int) range(f, 1, 2));
		disc(f, b, true);
		dre_buf_printf(
		    b, "},{\"minQuantity\":%d,", (int) range(f, 3, 5));
		disc(f, b, true);
		dre_buf_puts(b, "}]");
		target(f, b);
		break;
	case 4:
		dre_buf_printf(b,
		    "{\"type\":\"BUNDLE\",\"components\":[{\"articles\":[\"%"
		    "s\"],\"quantity\":%d},{\"articleGroups\":[\"G%d\"]}],",
		    pick_art(f), (int) range(f, 1, 2), (int) range(f, 1, 2));
		if (flag(f)) {
			dre_buf_puts(b, "\"bundlePrice\":");
			money(b, amount(f));
		} else {
			disc(f, b, false);
		}
		if (flag(f))
			dre_buf_printf(b, ",\"maxApplications\":%d",
			    (int) range(f, 1, 2));
		break;
	case 5:
		dre_buf_puts(b, "{\"type\":\"RECEIPT\",");
		disc(f, b, false);
		if (flag(f))
			target(f, b);
		break;
	case 6:
		dre_buf_puts(b, "{\"type\":\"SCALED_RECEIPT\",\"tiers\":[");
		dre_buf_puts(b, "{\"threshold\":");
		money(b, range(f, 0, 5000));
		dre_buf_printf(b,
		    ",\"value\":%d},{\"threshold\":", (int) range(f, 1, 20));
		money(b, range(f, 5001, 20000));
		dre_buf_puts(b, ",");
		disc(f, b, false);
		dre_buf_puts(b, "}]");
		break;
	case 7:
		dre_buf_printf(b,
		    "{\"type\":\"FREE_ITEM\",\"articleNumber\":\"%s\","
		    "\"quantity\":%d",
		    flag(f) ? pick_art(f) : "NOPRICE", (int) range(f, 1, 3));
		if (flag(f)) {
			dre_buf_puts(b, ",\"referencePrice\":");
			money(b, amount(f));
		}
		break;
	case 8:
		dre_buf_printf(b,
		    "{\"type\":\"CURRENCY_TO_POINTS\",\"pointsPerUnit\":%d",
		    (int) range(f, 1, 10));
		break;
	case 9:
		dre_buf_printf(b, "{\"type\":\"ADD_FIXED\",\"points\":%d",
		    (int) range(f, 1, 500));
		break;
	case 10:
		dre_buf_printf(b,
		    "{\"type\":\"MULTIPLY_POINTS\",\"factor\":%d",
		    (int) range(f, 1, 5));
		break;
	case 11:
		dre_buf_printf(b,
		    "{\"type\":\"SUBTRACT_POINTS\",\"points\":%d",
		    (int) range(f, 1, 500));
		break;
	case 12:
		dre_buf_puts(
		    b, "{\"type\":\"ISSUE_COUPON\",\"couponTypeId\":\"CT-2\"");
		break;
	default:
		dre_buf_puts(b, "{\"type\":\"ARTICLE\",");
		disc(f, b, false);
		break;
	}
	dre_buf_putc(b, '}');
}

static void
condition(fdp *f, dre_buf *b)
{
	switch (range(f, 0, 11)) {
	case 0:
		dre_buf_printf(b,
		    "{\"type\":\"ARTICLE\",\"values\":[\"%s\",\"%s\"],"
		    "\"minQuantity\":%d}",
		    pick_art(f), pick_art(f), (int) range(f, 1, 3));
		break;
	case 1:
		dre_buf_printf(b,
		    "{\"type\":\"ARTICLE_GROUP\",\"values\":[\"G%d\"]}",
		    (int) range(f, 1, 2));
		break;
	case 2:
		dre_buf_puts(b, "{\"type\":\"RECEIPT_AMOUNT\",\"min\":");
		money(b, range(f, 0, 20000));
		dre_buf_putc(b, '}');
		break;
	case 3:
		dre_buf_printf(b, "{\"type\":\"ITEM_QUANTITY\",\"min\":%d}",
		    (int) range(f, 1, 8));
		break;
	case 4:
		dre_buf_printf(b,
		    "{\"type\":\"MANUFACTURER\",\"values\":[\"M%d\"]}",
		    (int) range(f, 1, 2));
		break;
	case 5:
		dre_buf_puts(b, "{\"type\":\"CUSTOMER_REQUIRED\"}");
		break;
	case 6:
		dre_buf_puts(
		    b, "{\"type\":\"CUSTOMER_GROUP\",\"values\":[\"VIP\"]}");
		break;
	case 7:
		dre_buf_puts(b,
		    "{\"type\":\"LOYALTY_TIER\",\"values\":[\"GOLD\","
		    "\"PLATINUM\"]}");
		break;
	case 8:
		dre_buf_puts(
		    b, "{\"type\":\"CHANNEL\",\"values\":[\"ONLINE\"]}");
		break;
	case 9:
		dre_buf_puts(b,
		    "{\"type\":\"PAYMENT_MEANS\",\"values\":[\"CARD\"],"
		    "\"cardTypes\":[\"VISA\"]}");
		break;
	default:
		dre_buf_puts(b,
		    "{\"type\":\"MANUAL_DISCOUNT\",\"reasonCodes\":["
		    "\"DAMAGED\"]}");
		break;
	}
}

// self_check aborts when the generator wrote a document the validator
// refuses (a generator bug, not an engine one), naming the problem.
static void
self_check(const char *doc)
{
	dre_arena       *a = dre_arena_alloc(0);
	dre_json        *root;
	dre_promo       *p;
	dre_promo_error  ev[1];
	dre_promo_errors errs = { ev, 1, 0 };

	CHECK(a != NULL);
	CHECK(dre_json_parse(
	          &root, a, doc, strlen(doc), DRE_JSON_MAX_DEPTH, NULL)
	    == DRE_OK);
	if (dre_promo_parse(&p, a, root, NULL, &errs) != DRE_OK) {
		fprintf(stderr, "generated promotion refused: %s: %s\n%s\n",
		    ev[0].target, ev[0].message, doc);
		abort();
	}
	dre_arena_free(a);
}

static const char *const types[]
    = { "ARTICLE", "RECEIPT", "LOYALTY", "BUNDLE", "COUPON" };
static const char *const statuses[]
    = { "ACTIVE", "ACTIVE", "ACTIVE", "INACTIVE", "DRAFT", "PILOT" };
static const char *const modes[] = { "ADDITIVE", "MULTIPLICATIVE" };
static const char *const roundings[] = { "HALF_UP", "DOWN", "UP", "NONE" };
static const char *const excls[] = { "NONE", "NONE", "LINE", "RECEIPT" };
static const char *const days[]
    = { "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN" };

static char *
promotion(fdp *f, int k)
{
	dre_buf b = { 0 };
	dre_buf_printf(&b,
	    "{\"id\":\"" ID_FMT "\",\"name\":\"p%d\",\"type\":\"%s\","
	    "\"status\":\"%s\",\"priority\":%d,\"exclusivity\":\"%s\",",
	    k, k, types[range(f, 0, 4)], statuses[range(f, 0, 5)],
	    (int) range(f, 0, 3), excls[range(f, 0, 3)]);
	if (flag(f))
		dre_buf_printf(&b, "\"exclusionGroups\":[\"X%d\"],",
		    (int) range(f, 0, 1));
	if (flag(f))
		dre_buf_printf(&b, "\"validFrom\":\"2026-%02d-01T00:00:00Z\",",
		    (int) range(f, 1, 6));
	if (flag(f))
		dre_buf_printf(&b, "\"validTo\":\"2026-%02d-28T00:00:00Z\",",
		    (int) range(f, 6, 12));
	if (flag(f))
		dre_buf_printf(&b,
		    "\"timeWindows\":[{\"days\":[\"%s\",\"%s\"],\"from\":"
		    "\"%02d:00\",\"to\":\"%02d:30\"}],\"timezone\":\"%s\",",
		    days[range(f, 0, 6)], days[range(f, 0, 6)],
		    (int) range(f, 0, 23), (int) range(f, 0, 23),
		    flag(f) ? "Europe/Berlin" : "America/New_York");
	if (flag(f))
		dre_buf_puts(&b, "\"posGroups\":[\"" PG_ID "\"],");
	if (flag(f))
		dre_buf_printf(
		    &b, "\"budgetIds\":[\"B%d\"],", (int) range(f, 1, 2));
	if (flag(f))
		dre_buf_puts(&b, "\"couponTypeIds\":[\"CT-1\"],");
	dre_buf_printf(&b,
	    "\"calculationConfig\":{\"mode\":\"%s\",\"rounding\":\"%s\","
	    "\"precision\":%d},",
	    modes[range(f, 0, 1)], roundings[range(f, 0, 3)],
	    (int) range(f, 0, 3));
	dre_buf_puts(&b, "\"conditions\":[");
	int nc = (int) range(f, 0, 2);
	for (int i = 0; i < nc; i++) {
		if (i)
			dre_buf_putc(&b, ',');
		condition(f, &b);
	}
	dre_buf_puts(&b, "],\"actions\":[");
	int na = (int) range(f, 1, 3);
	for (int i = 0; i < na; i++) {
		if (i)
			dre_buf_putc(&b, ',');
		action(f, &b);
	}
	dre_buf_puts(&b, "]}");
	char *s = dre_buf_take(&b, NULL);
	CHECK(s != NULL);
	self_check(s);
	return s;
}

// ---- the basket ------------------------------------------------------------

static Dre__EvaluateRequest *
basket(fdp *f, dre_arena *a)
{
	Dre__EvaluateRequest *r = dre_arena_get(a, sizeof(*r));
	dre__evaluate_request__init(r);
	if (flag(f))
		r->pos_group_id = PG_ID;
	int n = (int) range(f, 0, MAXL);
	r->items = dre_arena_get(a, (size_t) (n + 1) * sizeof(*r->items));
	for (int i = 0; i < n; i++) {
		Dre__BasketItem *it = dre_arena_get(a, sizeof(*it));
		dre__basket_item__init(it);
		int k = (int) range(f, 0, 5);
		it->article_number = (char *) arts[k];
		if (flag(f)) {
			it->article_group_id = (char *) grps[k];
			it->manufacturer_id = (char *) manus[k];
		}
		// Mostly ordinary lines: a basket with one line beyond
		// Decimal(15,2) is refused whole, so the extremes are rare.
		int64_t kind = range(f, 0, 31);
		if (kind < 16)
			it->quantity = range(f, 1, 5) * 1000;
		else if (kind < 22)
			it->quantity = range(f, 1, 3000); // weighed
		else if (kind < 26)
			it->quantity = -1000 * range(f, 1, 2); // return
		else if (kind < 30)
			it->quantity = 1000;
		else if (kind == 30)
			it->quantity = range(f, 1, 999999999LL);
		else
			it->quantity = range(f, 1, 999999999999999LL);
		it->unit_price = amount(f);
		r->items[r->n_items++] = it;
	}
	if (flag(f)) {
		Dre__CustomerInfo *c = dre_arena_get(a, sizeof(*c));
		dre__customer_info__init(c);
		c->customer_id = "C1";
		c->customer_group = flag(f) ? "VIP" : "STAFF";
		c->loyalty_tier = flag(f) ? "GOLD" : "SILVER";
		c->has_loyalty_points = true;
		c->loyalty_points = range(f, 0, 100000);
		r->customer = c;
	}
	if (flag(f))
		r->channel = flag(f) ? "online" : "STORE";
	if (flag(f)) {
		Dre__PaymentInfo *p = dre_arena_get(a, sizeof(*p));
		dre__payment_info__init(p);
		p->payment_means = "card";
		p->card_type = flag(f) ? "Visa" : "AMEX";
		r->payment = p;
	}
	if (flag(f)) {
		Dre__ManualDiscountInfo *m = dre_arena_get(a, sizeof(*m));
		dre__manual_discount_info__init(m);
		m->has_enabled = true;
		m->enabled = flag(f);
		m->reason_code = "DAMAGED";
		r->manual_discount = m;
	}
	r->has_timestamp_ms = true;
	r->timestamp_ms = NOW_MS + range(f, -3, 3) * 86400000LL
	    + range(f, 0, 47) * 1800000LL;
	return r;
}

// ---- the oracle ------------------------------------------------------------

static void
check_response(const Dre__EvaluateRequest *q, const Dre__EvaluateResponse *r)
{
	int64_t sum_total = 0, sum_disc = 0, bd = 0;

	CHECK(r->totals != NULL);
	CHECK(r->n_line_items >= q->n_items);
	for (size_t i = 0; i < r->n_line_items; i++) {
		const Dre__LineItem *li = r->line_items[i];
		int64_t              s = 0;
		for (size_t k = 0; k < li->n_discounts; k++) {
			CHECK(li->discounts[k]->discount_amount > 0);
			s += li->discounts[k]->discount_amount;
		}
		if (i < q->n_items) {
			CHECK(li->quantity == q->items[i]->quantity);
			CHECK(li->line_total
			    == dre_mul_qty(q->items[i]->unit_price,
			        q->items[i]->quantity));
		}
		if (s != li->line_discount
		    || li->line_net != li->line_total - li->line_discount
		    || (li->quantity > 0
		        && (li->line_total < 0 || li->line_net < 0
		            || li->line_discount > li->line_total))
		    || (li->quantity < 0 && s != 0)) {
			fprintf(stderr,
			    "line %zu: quantity %lld total %lld discount %lld "
			    "sum %lld net %lld\n",
			    i, (long long) li->quantity,
			    (long long) li->line_total,
			    (long long) li->line_discount, (long long) s,
			    (long long) li->line_net);
			abort();
		}
		sum_total += li->line_total;
		sum_disc += s;
	}
	for (size_t i = 0; i < r->totals->n_promotion_breakdown; i++)
		bd += r->totals->promotion_breakdown[i]->total_discount;
	for (size_t i = 0; i < r->n_granted_items; i++)
		CHECK(r->granted_items[i]->give_away_value >= 0);
	if (sum_total != r->totals->subtotal || sum_disc != r->totals->discount
	    || bd != r->totals->discount
	    || r->totals->grand_total
	        != r->totals->subtotal - r->totals->discount) {
		fprintf(stderr,
		    "totals: lines %lld subtotal %lld; line discounts %lld "
		    "breakdown %lld discount %lld; grand total %lld\n",
		    (long long) sum_total, (long long) r->totals->subtotal,
		    (long long) sum_disc, (long long) bd,
		    (long long) r->totals->discount,
		    (long long) r->totals->grand_total);
		abort();
	}
	CHECK(r->totals->savings_percent >= 0
	    && r->totals->savings_percent <= 10000);

	// The wire: protobuf for the gateway, then its JSON.
	size_t   n = dre__evaluate_response__get_packed_size(r);
	uint8_t *b = malloc(n > 0 ? n : 1);
	CHECK(b != NULL);
	CHECK(dre__evaluate_response__pack(r, b) == n);
	Dre__EvaluateResponse *u = dre__evaluate_response__unpack(NULL, n, b);
	CHECK(u != NULL);
	dre_buf j = { 0 };
	dre_evalresp_write(&j, u);
	CHECK(!j.oom);
	dre_arena     *ja = dre_arena_alloc(0);
	dre_json      *root;
	dre_json_error jerr = { 0, NULL };
	CHECK(ja != NULL);
	if (dre_json_parse(&root, ja, j.data, j.len, DRE_JSON_MAX_DEPTH, &jerr)
	    != DRE_OK) {
		fprintf(stderr,
		    "response JSON does not parse (%s at %zu): %s\n", jerr.msg,
		    jerr.offset, j.data);
		abort();
	}
	dre_arena_free(ja);
	dre_buf_free(&j);
	dre__evaluate_response__free_unpacked(u, NULL);
	free(b);
}

static void
evaluate(eng_engine *e, dre_arena *a, const Dre__EvaluateRequest *q,
    const eng_eval_ctx *ctx)
{
	const eng_index       *ix = eng_acquire(e);
	Dre__EvaluateResponse *r = NULL;
	eng_eval_error         err;

	memset(&err, 0, sizeof(err));
	dre_err rc = eng_evaluate(&r, a, ix, q, ctx, &err);
	if (rc == DRE_OK)
		check_response(q, r);
	else
		CHECK(rc == DRE_EINVAL && err.status == 400);
	eng_index_release(ix);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int        once;
	fdp               f = { data, size };
	char             *docs[MAXP];
	char              ids[MAXP][40];
	eng_master_change v[MAXP + 3];
	size_t            nv = 0, nbad = 0;

	if (!once) {
		dre_log_init("fuzz_engine", DRE_LOG_ERROR);
		once = 1;
	}
	int np = (int) range(&f, 1, MAXP);
	for (int k = 0; k < np; k++) {
		docs[k] = promotion(&f, k);
		snprintf(ids[k], sizeof(ids[k]), ID_FMT, k);
		v[nv++] = (eng_master_change) { ENG_MK_PROMOTION, TENANT,
			ids[k], k + 1, docs[k], strlen(docs[k]) };
	}
	static const char pg[]
	    = "{\"id\":\"" PG_ID "\",\"code\":\"STORE-001\",\"name\":\"S\"}";
	static const char gift[]
	    = "{\"articleNumber\":\"GIFT\",\"name\":\"G\","
	      "\"referencePrice\":3.25,"
	      "\"articleGroupId\":\"G2\"}";
	static const char settings[] = "{\"enableProductionNudges\":true}";
	v[nv++] = (eng_master_change) { ENG_MK_POS_GROUP, TENANT, PG_ID, 100,
		pg, strlen(pg) };
	v[nv++] = (eng_master_change) { ENG_MK_ARTICLE, TENANT, "GIFT", 101,
		gift, strlen(gift) };
	if (flag(&f))
		v[nv++] = (eng_master_change) { ENG_MK_TENANT_SETTINGS, TENANT,
			"settings", 102, settings, strlen(settings) };

	eng_engine *e;
	CHECK(eng_alloc(&e) == DRE_OK);
	CHECK(eng_load(e, v, nv, NOW_MS, &nbad) == DRE_OK);
	if (nbad != 0) { // the generator writes valid documents only
		for (int k = 0; k < np; k++)
			fprintf(stderr, "%s\n", docs[k]);
		CHECK(nbad == 0);
	}

	eng_budget_set *budgets;
	CHECK(eng_budget_set_alloc(&budgets) == DRE_OK);
	eng_budget_set_update(budgets, TENANT, "B1", 1, true);

	// The basket in one arena, each evaluation in the other.
	dre_arena *qa = dre_arena_alloc(0), *a = dre_arena_alloc(1 << 16);
	CHECK(qa != NULL && a != NULL);
	Dre__EvaluateRequest *q = basket(&f, qa);
	// One coupon, linked to a promotion, when the basket carries it.
	eng_coupon_result cr = { 0 };
	const char       *linked[1] = { ids[range(&f, 0, np - 1)] };
	eng_eval_ctx      ctx = { .tenant = TENANT,
		     .now_ms = NOW_MS,
		     .counter = 1,
		     .transaction_id = "T",
		     .currency = "EUR",
		     .budgets = flag(&f) ? budgets : NULL };
	if (flag(&f)) {
		static char *codes[] = { "CPN-1" };
		q->coupons = codes;
		q->n_coupons = 1;
		cr.code = "CPN-1";
		cr.valid = flag(&f);
		cr.reason = cr.valid ? NULL : "EXPIRED";
		cr.type_id = "CT-1";
		cr.type_name = "CT";
		cr.stackable = flag(&f);
		cr.promotion_ids = linked;
		cr.npromotion_ids = 1;
		if (flag(&f)) {
			ctx.coupons = &cr;
			ctx.ncoupons = 1;
		}
	}
	if (flag(&f)) {
		ctx.simulate = true;
		q->has_include_inactive = q->has_include_missed_promotions
		    = true;
		q->include_inactive = flag(&f);
		q->include_missed_promotions = true;
	}
	evaluate(e, a, q, &ctx);

	// The same basket after one promotion is deleted.
	eng_master_change del = { ENG_MK_PROMOTION, TENANT,
		ids[range(&f, 0, np - 1)], 1000, NULL, 0 };
	bool              applied = false;
	CHECK(eng_apply(e, &del, NOW_MS, &applied) == DRE_OK);
	CHECK(applied);
	dre_arena_reset(a);
	evaluate(e, a, q, &ctx);

	dre_arena_free(a);
	dre_arena_free(qa);
	eng_budget_set_free(budgets);
	eng_free(e);
	for (int k = 0; k < np; k++)
		free(docs[k]);
	return 0;
}
