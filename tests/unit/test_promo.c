// test_promo.c -- promotion documents: parse, validate (with targets),
// normalise, PATCH.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dre/promo.h"

// The seed's "Electronics 10% Off" promotion (PRODUCT-DECISIONS §3).
static const char SEED[]
    = "{ \"id\": \"10000000-0000-4000-8000-000000000001\","
      "  \"name\": \"Electronics 10% Off\", \"type\": \"ARTICLE\","
      "  \"status\": \"ACTIVE\","
      "  \"validFrom\": \"2026-01-01T00:00:00Z\","
      "  \"validTo\": \"2026-12-31T23:59:59Z\","
      "  \"conditions\": [ { \"type\": \"ARTICLE_GROUP\","
      "                      \"values\": [\"ELECTRONICS\"] } ],"
      "  \"actions\": [ { \"type\": \"ARTICLE_GROUP\","
      "                   \"discountType\": \"PERCENTAGE\", \"value\": 10,"
      "                   \"target\": { \"articleGroups\": [\"ELECTRONICS\"] }"
      "  } ] }";

static dre_arena *arena;

static int
setup(void **state)
{
	arena = dre_arena_alloc(0);
	return arena == NULL;
}

static int
teardown(void **state)
{
	dre_arena_free(arena);
	return 0;
}

static const dre_json *
json(const char *text)
{
	dre_json *root = NULL;
	assert_int_equal(dre_json_parse(&root, arena, text, strlen(text),
	                     DRE_JSON_MAX_DEPTH, NULL),
	    DRE_OK);
	return root;
}

static dre_err
parse(dre_promo **pp, const char *text, const dre_promo *base,
    dre_promo_errors *errs)
{
	return dre_promo_parse(pp, arena, json(text), base, errs);
}

// write returns the normalised document as an arena string.
static const char *
write(const dre_promo *p)
{
	dre_buf b = { 0 };
	dre_promo_write(&b, p);
	assert_false(b.oom);
	char *s = dre_arena_strndup(arena, b.data, b.len);
	dre_buf_free(&b);
	return s;
}

static void
test_seed_round_trip(void **state)
{
	dre_promo_error  ev[8];
	dre_promo_errors errs = { ev, 8, 0 };
	dre_promo       *p = NULL, *q = NULL;
	assert_int_equal(parse(&p, SEED, NULL, &errs), DRE_OK);
	assert_int_equal(errs.n, 0);
	assert_string_equal(p->id, "10000000-0000-4000-8000-000000000001");
	assert_string_equal(p->name, "Electronics 10% Off");
	assert_int_equal(p->type, DRE_PT_ARTICLE);
	assert_int_equal(p->status, DRE_PS_ACTIVE);
	assert_int_equal(p->valid_from, 1767225600000LL);
	assert_int_equal(p->valid_to, 1798761599000LL);
	assert_string_equal(p->timezone, "UTC");
	assert_string_equal(p->currency, "EUR");
	assert_int_equal(p->priority, 100);
	assert_int_equal(p->exclusivity, DRE_EXCL_NONE);
	assert_int_equal(p->calc_mode, DRE_CALC_ADDITIVE);
	assert_int_equal(p->rounding, DRE_ROUND_HALF_UP);
	assert_int_equal(p->precision, 2);
	assert_int_equal(p->nconds, 1);
	assert_int_equal(p->conds[0].type, DRE_COND_ARTICLE_GROUP);
	assert_int_equal(p->conds[0].values.n, 1);
	assert_string_equal(p->conds[0].values.v[0], "ELECTRONICS");
	assert_int_equal(p->nactions, 1);
	const dre_promo_action *a = &p->actions[0];
	assert_int_equal(a->type, DRE_ACT_ARTICLE_GROUP);
	assert_int_equal(a->disc_type, DRE_DISC_PERCENTAGE);
	assert_int_equal(a->value, 1000);
	assert_true(a->target.present);
	assert_int_equal(a->target.article_groups.n, 1);
	assert_string_equal(a->target.article_groups.v[0], "ELECTRONICS");
	assert_int_equal(a->bundle_price, -1);
	assert_int_equal(a->reference_price, -1);

	const char *doc = write(p);
	assert_string_equal(doc,
	    "{\"id\":\"10000000-0000-4000-8000-000000000001\","
	    "\"name\":\"Electronics 10% Off\",\"description\":null,"
	    "\"type\":\"ARTICLE\",\"status\":\"ACTIVE\","
	    "\"validFrom\":\"2026-01-01T00:00:00.000Z\","
	    "\"validTo\":\"2026-12-31T23:59:59.000Z\",\"timeWindows\":[],"
	    "\"timezone\":\"UTC\",\"posGroups\":[],\"currency\":\"EUR\","
	    "\"priority\":100,\"exclusivity\":\"NONE\","
	    "\"exclusionGroups\":[],\"calculationConfig\":{\"mode\":"
	    "\"ADDITIVE\",\"rounding\":\"HALF_UP\",\"precision\":2},"
	    "\"budgetIds\":[],\"couponTypeIds\":[],\"campaignId\":null,"
	    "\"externalId\":null,\"assignment\":\"NONE\","
	    "\"conditions\":[{\"type\":\"ARTICLE_GROUP\",\"values\":"
	    "[\"ELECTRONICS\"],\"minQuantity\":0}],"
	    "\"actions\":[{\"type\":\"ARTICLE_GROUP\",\"discountType\":"
	    "\"PERCENTAGE\",\"value\":10,\"maxQuantity\":null,\"target\":"
	    "{\"articles\":[],\"articleGroups\":[\"ELECTRONICS\"],"
	    "\"manufacturers\":[],\"articleListId\":null}}],"
	    "\"createdAt\":null,\"modifiedAt\":null}");
	assert_int_equal(parse(&q, doc, NULL, &errs), DRE_OK);
	assert_string_equal(write(q), doc);
}

// Every condition and action type, with decimals given as numbers and as
// strings; the normal form is a fixed point of parse+write.
static void
test_full_round_trip(void **state)
{
	static const char doc[]
	    = "{\"name\":\"All kinds\",\"type\":\"BUNDLE\","
	      "\"description\":\"d\",\"status\":\"PILOT\","
	      "\"timeWindows\":[{\"days\":[\"SAT\",\"MON\"],\"from\":\"22:"
	      "00\","
	      "\"to\":\"02:30\"},{\"from\":\"08:00\",\"to\":\"24:00\"}],"
	      "\"timezone\":\"Europe/Berlin\",\"posGroups\":[\"PG1\"],"
	      "\"currency\":\"CHF\",\"priority\":-5,\"exclusivity\":\"LINE\","
	      "\"exclusionGroups\":[\"SUMMER\"],\"calculationConfig\":{"
	      "\"mode\":"
	      "\"MULTIPLICATIVE\",\"rounding\":\"NONE\",\"precision\":0},"
	      "\"budgetIds\":[\"b1\"],\"couponTypeIds\":[\"c1\"],"
	      "\"campaignId\":\"camp\",\"externalId\":\"WELCOME10\","
	      "\"assignment\":\"PERSONAL\","
	      "\"conditions\":["
	      "{\"type\":\"ARTICLE\",\"values\":[\"A1\"],\"minQuantity\":\"1."
	      "5\"},"
	      "{\"type\":\"ARTICLE_LIST\",\"articleListId\":\"L1\"},"
	      "{\"type\":\"MANUFACTURER\",\"values\":[\"M\"]},"
	      "{\"type\":\"RECEIPT_AMOUNT\",\"min\":50.10},"
	      "{\"type\":\"ITEM_QUANTITY\",\"min\":3},"
	      "{\"type\":\"CUSTOMER_REQUIRED\"},"
	      "{\"type\":\"CUSTOMER_GROUP\",\"values\":[\"VIP\"]},"
	      "{\"type\":\"LOYALTY_TIER\",\"values\":[\"GOLD\"]},"
	      "{\"type\":\"CHANNEL\",\"values\":[\"ONLINE\"]},"
	      "{\"type\":\"PAYMENT_MEANS\",\"values\":[\"CARD\"],"
	      "\"cardTypes\":[\"VISA\"]},"
	      "{\"type\":\"USER_DEFINED\",\"key\":\"k\",\"values\":[\"v\"]},"
	      "{\"type\":\"ADDITIONAL_FIELD\",\"key\":\"k2\",\"values\":["
	      "\"w\"]},"
	      "{\"type\":\"MANUAL_DISCOUNT\",\"reasonCodes\":[\"R1\"]}],"
	      "\"actions\":["
	      "{\"type\":\"ARTICLE\",\"discountType\":\"UNIT_PRICE\","
	      "\"value\":\"4.99\",\"maxQuantity\":2,\"target\":{\"articles\":"
	      "[\"A1\"],\"articleListId\":\"L1\"}},"
	      "{\"type\":\"ARTICLE_LIST\",\"discountType\":\"ABSOLUTE\","
	      "\"value\":1},"
	      "{\"type\":\"QUANTITY_TIER\",\"tiers\":[{\"minQuantity\":5,"
	      "\"value\":20},{\"minQuantity\":3,\"value\":12.5}]},"
	      "{\"type\":\"BUNDLE\",\"components\":[{\"articles\":[\"A\"],"
	      "\"quantity\":2},{\"articleGroups\":[\"G\"]}],"
	      "\"bundlePrice\":9.99,\"maxApplications\":3},"
	      "{\"type\":\"BUNDLE\",\"components\":[{\"articles\":[\"A\"]}],"
	      "\"discountType\":\"PERCENTAGE\",\"value\":15},"
	      "{\"type\":\"RECEIPT\",\"discountType\":\"ABSOLUTE\",\"value\":"
	      "5,"
	      "\"target\":{\"manufacturers\":[\"M\"]}},"
	      "{\"type\":\"SCALED_RECEIPT\",\"tiers\":[{\"threshold\":50,"
	      "\"value\":5},{\"threshold\":100,\"discountType\":"
	      "\"PERCENTAGE\","
	      "\"value\":10}]},"
	      "{\"type\":\"FREE_ITEM\",\"articleNumber\":\"GIFT\","
	      "\"quantity\":2,\"referencePrice\":3.5},"
	      "{\"type\":\"ADD_FIXED\",\"points\":100},"
	      "{\"type\":\"CURRENCY_TO_POINTS\",\"pointsPerUnit\":1.5},"
	      "{\"type\":\"MULTIPLY_POINTS\",\"factor\":2},"
	      "{\"type\":\"SUBTRACT_POINTS\",\"points\":10},"
	      "{\"type\":\"ISSUE_COUPON\",\"couponTypeId\":\"CT\","
	      "\"quantity\":1}]}";
	dre_promo_error  ev[8];
	dre_promo_errors errs = { ev, 8, 0 };
	dre_promo       *p = NULL, *q = NULL;
	dre_err          err = parse(&p, doc, NULL, &errs);
	if (err != DRE_OK)
		fail_msg("%s: %s", ev[0].target, ev[0].message);
	assert_int_equal(p->nconds, 13);
	assert_int_equal(p->nactions, 13);
	assert_int_equal(p->conds[0].min_quantity, 1500);
	assert_int_equal(p->conds[3].min_amount, 5010);
	assert_int_equal(p->conds[4].min_quantity, 3000);
	assert_int_equal(p->windows[0].days, (1 << 0) | (1 << 5));
	assert_int_equal(p->windows[0].from_min, 22 * 60);
	assert_int_equal(p->windows[0].to_min, 150);
	assert_int_equal(p->windows[1].days, 0x7f);
	assert_int_equal(p->windows[1].to_min, 1440);
	assert_int_equal(p->actions[0].value, 499);
	assert_int_equal(p->actions[0].max_quantity, 2000);
	// tiers come out sorted ascending
	assert_int_equal(p->actions[2].tiers[0].min_quantity, 3000);
	assert_int_equal(p->actions[2].tiers[0].value, 1250);
	assert_int_equal(
	    p->actions[2].tiers[0].disc_type, DRE_DISC_PERCENTAGE);
	assert_int_equal(p->actions[3].components[0].quantity, 2000);
	assert_int_equal(p->actions[3].components[1].quantity, 1000);
	assert_int_equal(p->actions[3].bundle_price, 999);
	assert_int_equal(p->actions[4].bundle_price, -1);
	assert_int_equal(p->actions[4].value, 1500);
	assert_int_equal(p->actions[6].tiers[0].disc_type, DRE_DISC_ABSOLUTE);
	assert_int_equal(p->actions[6].tiers[0].value, 500);
	assert_int_equal(
	    p->actions[6].tiers[1].disc_type, DRE_DISC_PERCENTAGE);
	assert_int_equal(p->actions[7].reference_price, 350);
	assert_int_equal(p->actions[9].points_per_unit, 150);
	assert_int_equal(p->actions[10].factor, 200);
	assert_int_equal(p->calc_mode, DRE_CALC_MULTIPLICATIVE);
	assert_int_equal(p->rounding, DRE_ROUND_NONE);
	assert_int_equal(p->precision, 0);
	assert_int_equal(p->priority, -5);

	const char *norm = write(p);
	assert_non_null(strstr(norm, "\"value\":12.5"));
	assert_non_null(strstr(norm, "\"min\":50.1"));
	assert_int_equal(parse(&q, norm, NULL, &errs), DRE_OK);
	assert_string_equal(write(q), norm);
}

typedef struct {
	const char *doc;
	const char *target;
} bad_case;

#define OK_ACT                                                                \
	"\"actions\":[{\"type\":\"ARTICLE\",\"discountType\":\"PERCENTAGE\"," \
	"\"value\":10}]"
#define HEAD    "\"name\":\"n\",\"type\":\"ARTICLE\","
#define ACT(x)  "{" HEAD "\"actions\":[" x "]}"
#define COND(x) "{" HEAD "\"conditions\":[" x "]," OK_ACT "}"

static const bad_case bad_cases[] = {
	{ "[1,2]", "" },
	{ "{\"type\":\"ARTICLE\"," OK_ACT "}", "name" },
	{ "{\"name\":\"\",\"type\":\"ARTICLE\"," OK_ACT "}", "name" },
	{ "{\"name\":5,\"type\":\"ARTICLE\"," OK_ACT "}", "name" },
	{ "{\"name\":\"n\"," OK_ACT "}", "type" },
	{ "{\"name\":\"n\",\"type\":\"FOO\"," OK_ACT "}", "type" },
	{ "{" HEAD "\"status\":\"LIVE\"," OK_ACT "}", "status" },
	{ "{" HEAD "\"id\":\"not-a-uuid\"," OK_ACT "}", "id" },
	{ "{" HEAD "\"validFrom\":\"yesterday\"," OK_ACT "}", "validFrom" },
	{ "{" HEAD "\"validFrom\":\"2026-12-31T00:00:00Z\",\"validTo\":"
	  "\"2026-01-01T00:00:00Z\"," OK_ACT "}",
	    "validTo" },
	{ "{" HEAD "\"timeWindows\":[{\"days\":[\"MON\",\"XYZ\"],\"from\":"
	  "\"08:00\",\"to\":\"10:00\"}]," OK_ACT "}",
	    "timeWindows[0].days[1]" },
	{ "{" HEAD
	  "\"timeWindows\":[{\"from\":\"25:00\",\"to\":\"10:00\"}]," OK_ACT
	  "}",
	    "timeWindows[0].from" },
	{ "{" HEAD "\"timezone\":\"Mars/Olympus_Mons\"," OK_ACT "}",
	    "timezone" },
	{ "{" HEAD "\"timezone\":\"../../etc/passwd\"," OK_ACT "}",
	    "timezone" },
	{ "{" HEAD "\"currency\":\"eur\"," OK_ACT "}", "currency" },
	{ "{" HEAD "\"priority\":1.5," OK_ACT "}", "priority" },
	{ "{" HEAD "\"exclusivity\":\"ALL\"," OK_ACT "}", "exclusivity" },
	{ "{" HEAD "\"calculationConfig\":{\"rounding\":\"BANKERS\"}," OK_ACT
	  "}",
	    "calculationConfig.rounding" },
	{ "{" HEAD "\"calculationConfig\":{\"precision\":7}," OK_ACT "}",
	    "calculationConfig.precision" },
	{ "{" HEAD "\"calculationConfig\":{\"mode\":\"SUM\"}," OK_ACT "}",
	    "calculationConfig.mode" },
	{ "{" HEAD "\"posGroups\":[\"a\",1]," OK_ACT "}", "posGroups[1]" },
	{ "{" HEAD "\"budgetIds\":\"b1\"," OK_ACT "}", "budgetIds" },
	{ "{" HEAD "\"actions\":[]}", "actions" },
	{ "{" HEAD "\"description\":\"no actions\"}", "actions" },
	{ ACT("{\"type\":\"MAGIC\"}"), "actions[0].type" },
	{ ACT("{\"type\":\"ARTICLE\",\"value\":10}"),
	    "actions[0].discountType" },
	{ ACT("{\"type\":\"ARTICLE\",\"discountType\":\"PERCENTAGE\"}"),
	    "actions[0].value" },
	{ ACT("{\"type\":\"ARTICLE\",\"discountType\":\"PERCENTAGE\","
	      "\"value\":0}"),
	    "actions[0].value" },
	{ ACT("{\"type\":\"ARTICLE\",\"discountType\":\"PERCENTAGE\","
	      "\"value\":100.01}"),
	    "actions[0].value" },
	{ ACT("{\"type\":\"ARTICLE\",\"discountType\":\"ABSOLUTE\","
	      "\"value\":-1}"),
	    "actions[0].value" },
	{ ACT("{\"type\":\"ARTICLE\",\"discountType\":\"ABSOLUTE\","
	      "\"value\":1.234}"),
	    "actions[0].value" },
	{ ACT("{\"type\":\"ARTICLE\",\"discountType\":\"UNIT_PRICE\","
	      "\"value\":\"abc\"}"),
	    "actions[0].value" },
	{ ACT("{\"type\":\"ARTICLE\",\"discountType\":\"PERCENTAGE\","
	      "\"value\":5,\"maxQuantity\":-2}"),
	    "actions[0].maxQuantity" },
	{ ACT("{\"type\":\"ARTICLE_GROUP\",\"discountType\":\"PERCENTAGE\","
	      "\"value\":5,\"target\":{\"articleGroups\":\"X\"}}"),
	    "actions[0].target.articleGroups" },
	{ ACT("{\"type\":\"RECEIPT\",\"discountType\":\"UNIT_PRICE\","
	      "\"value\":5}"),
	    "actions[0].discountType" },
	{ ACT("{\"type\":\"QUANTITY_TIER\"}"), "actions[0].tiers" },
	{ ACT("{\"type\":\"QUANTITY_TIER\",\"tiers\":[{\"value\":5}]}"),
	    "actions[0].tiers[0].minQuantity" },
	{ ACT("{\"type\":\"SCALED_RECEIPT\",\"tiers\":[{\"value\":5}]}"),
	    "actions[0].tiers[0].threshold" },
	{ ACT("{\"type\":\"BUNDLE\",\"components\":[{\"quantity\":2}],"
	      "\"bundlePrice\":5}"),
	    "actions[0].components[0]" },
	{ ACT("{\"type\":\"BUNDLE\",\"components\":[{\"articles\":[\"A\"],"
	      "\"quantity\":0}],\"bundlePrice\":5}"),
	    "actions[0].components[0].quantity" },
	{ ACT("{\"type\":\"BUNDLE\",\"components\":[{\"articles\":[\"A\"]}]}"),
	    "actions[0].bundlePrice" },
	{ ACT("{\"type\":\"FREE_ITEM\",\"quantity\":1}"),
	    "actions[0].articleNumber" },
	{ ACT("{\"type\":\"FREE_ITEM\",\"articleNumber\":\"A\","
	      "\"referencePrice\":\"x\"}"),
	    "actions[0].referencePrice" },
	{ ACT("{\"type\":\"ADD_FIXED\",\"points\":0}"), "actions[0].points" },
	{ ACT("{\"type\":\"CURRENCY_TO_POINTS\"}"),
	    "actions[0].pointsPerUnit" },
	{ ACT("{\"type\":\"MULTIPLY_POINTS\",\"factor\":0}"),
	    "actions[0].factor" },
	{ ACT("{\"type\":\"ISSUE_COUPON\",\"couponTypeId\":\"C\","
	      "\"quantity\":0}"),
	    "actions[0].quantity" },
	{ ACT("{\"type\":\"ISSUE_COUPON\"}"), "actions[0].couponTypeId" },
	{ ACT("\"ARTICLE\""), "actions[0]" },
	{ COND("{\"type\":\"ARTICLE_GROUP\",\"values\":[\"A\"]},"
	       "{\"type\":\"ARTICLE_GROUP\",\"values\":[]}"),
	    "conditions[1].values" },
	{ COND("{\"type\":\"ARTICLE\",\"values\":[\"A\"],"
	       "\"minQuantity\":-1}"),
	    "conditions[0].minQuantity" },
	{ COND("{\"type\":\"ARTICLE\",\"values\":[\"A\"],"
	       "\"minQuantity\":0.0001}"),
	    "conditions[0].minQuantity" },
	{ COND("{\"type\":\"USER_DEFINED\",\"values\":[\"A\"]}"),
	    "conditions[0].key" },
	{ COND("{\"type\":\"RECEIPT_AMOUNT\",\"min\":\"abc\"}"),
	    "conditions[0].min" },
	{ COND("{\"type\":\"RECEIPT_AMOUNT\"}"), "conditions[0].min" },
	{ COND("{\"type\":\"ARTICLE_LIST\"}"), "conditions[0].values" },
	{ COND("{\"type\":\"CHANNEL\"}"), "conditions[0].values" },
	{ COND("{\"type\":\"PAYMENT_MEANS\",\"values\":[\"CARD\"],"
	       "\"cardTypes\":[true]}"),
	    "conditions[0].cardTypes[0]" },
	{ COND("{\"values\":[\"A\"]}"), "conditions[0].type" },
	{ COND("{\"type\":\"WEATHER\"}"), "conditions[0].type" },
	{ "{" HEAD "\"conditions\":{}," OK_ACT "}", "conditions" },
};

static void
test_invalid_documents(void **state)
{
	assert_true(sizeof bad_cases / sizeof bad_cases[0] >= 25);
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		const bad_case  *bc = &bad_cases[i];
		dre_promo_error  ev[4];
		dre_promo_errors errs = { ev, 4, 0 };
		dre_promo       *p = NULL;
		dre_err          err = parse(&p, bc->doc, NULL, &errs);
		if (err != DRE_EINVAL || errs.n != 1
		    || strcmp(ev[0].target, bc->target) != 0)
			fail_msg("case %zu (%s): err %d, %zu problems, first "
			         "target '%s' (%s), expected '%s'",
			    i, bc->doc, err, errs.n,
			    errs.n ? ev[0].target : "",
			    errs.n ? ev[0].message : "", bc->target);
		assert_string_equal(ev[0].code, "VALIDATION_FAILED");
		assert_true(ev[0].message[0] != 0);
		assert_null(p);
	}
}

// A percentage out of range names both bounds: 150 is not "must be greater
// than 0" (the console shows this message on the field).
static void
test_range_messages(void **state)
{
	static const struct {
		const char *doc, *target, *message;
	} cases[] = {
		{ ACT("{\"type\":\"ARTICLE\",\"discountType\":\"PERCENTAGE\","
		      "\"value\":150}"),
		    "actions[0].value",
		    "actions[0].value must be greater than 0 and at most "
		    "100" },
		{ ACT("{\"type\":\"ARTICLE\",\"discountType\":\"PERCENTAGE\","
		      "\"value\":0}"),
		    "actions[0].value",
		    "actions[0].value must be greater than 0 and at most "
		    "100" },
		{ ACT("{\"type\":\"MULTIPLY_POINTS\",\"factor\":0}"),
		    "actions[0].factor",
		    "actions[0].factor must be greater than 0" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		dre_promo_error  ev[2];
		dre_promo_errors errs = { ev, 2, 0 };
		dre_promo       *p = NULL;
		assert_int_equal(
		    parse(&p, cases[i].doc, NULL, &errs), DRE_EINVAL);
		assert_int_equal(errs.n, 1);
		assert_string_equal(ev[0].target, cases[i].target);
		assert_string_equal(ev[0].message, cases[i].message);
	}
}

// Every problem is recorded, in document order; more than cap are counted.
static void
test_every_problem(void **state)
{
	static const char doc[]
	    = "{\"name\":\"\",\"type\":\"X\",\"currency\":\"euro\","
	      "\"actions\":[{\"type\":\"ARTICLE\",\"discountType\":"
	      "\"PERCENTAGE\",\"value\":101},{\"type\":\"FREE_ITEM\"}]}";
	dre_promo_error  ev[3];
	dre_promo_errors errs = { ev, 3, 0 };
	dre_promo       *p = NULL;
	assert_int_equal(parse(&p, doc, NULL, &errs), DRE_EINVAL);
	assert_int_equal(errs.n, 5);
	assert_string_equal(ev[0].target, "name");
	assert_string_equal(ev[1].target, "type");
	assert_string_equal(ev[2].target, "currency");
	// errs may be NULL: the verdict stays the same
	assert_int_equal(parse(&p, doc, NULL, NULL), DRE_EINVAL);
}

static void
test_patch(void **state)
{
	dre_promo_error  ev[4];
	dre_promo_errors errs = { ev, 4, 0 };
	dre_promo       *base = NULL, *p = NULL;
	assert_int_equal(parse(&base, SEED, NULL, &errs), DRE_OK);
	base->created_at = 1700000000000LL;

	assert_int_equal(parse(&p,
	                     "{\"name\":\"Renamed\",\"status\":\"INACTIVE\","
	                     "\"calculationConfig\":{\"rounding\":\"DOWN\"},"
	                     "\"validTo\":null,\"priority\":7}",
	                     base, &errs),
	    DRE_OK);
	assert_string_equal(p->name, "Renamed");
	assert_int_equal(p->status, DRE_PS_INACTIVE);
	assert_int_equal(p->rounding, DRE_ROUND_DOWN);
	assert_int_equal(p->calc_mode, DRE_CALC_ADDITIVE);
	assert_int_equal(p->precision, 2);
	assert_int_equal(p->valid_to, INT64_MAX);
	assert_int_equal(p->valid_from, base->valid_from);
	assert_int_equal(p->priority, 7);
	assert_int_equal(p->type, DRE_PT_ARTICLE);
	assert_int_equal(p->created_at, 1700000000000LL);
	assert_string_equal(p->id, base->id);
	assert_int_equal(p->nactions, 1);
	assert_int_equal(p->actions[0].value, 1000);
	assert_string_equal(p->conds[0].values.v[0], "ELECTRONICS");
	assert_ptr_not_equal(p->name, base->name);
	assert_string_equal(base->name, "Electronics 10% Off");

	// an empty patch changes nothing
	assert_int_equal(parse(&p, "{}", base, &errs), DRE_OK);
	assert_string_equal(write(p), write(base));

	// a patch is validated against the merged document
	errs.n = 0;
	assert_int_equal(
	    parse(&p, "{\"validFrom\":\"2027-01-01T00:00:00Z\"}", base, &errs),
	    DRE_EINVAL);
	assert_string_equal(ev[0].target, "validTo");
	errs.n = 0;
	assert_int_equal(
	    parse(&p, "{\"actions\":[]}", base, &errs), DRE_EINVAL);
	assert_string_equal(ev[0].target, "actions");
	errs.n = 0;
	assert_int_equal(
	    parse(&p, "{\"name\":null}", base, &errs), DRE_EINVAL);
	assert_string_equal(ev[0].target, "name");
	errs.n = 0;
	assert_int_equal(
	    parse(&p, "{\"id\":\"20000000-0000-4000-8000-000000000001\"}",
	        base, &errs),
	    DRE_EINVAL);
	assert_string_equal(ev[0].target, "id");
}

// Unknown members are refused at every level (PRODUCT-DECISIONS §1,
// revised): the target is the member's path, a near name is suggested.
static void
test_unknown_fields(void **state)
{
	dre_promo_error  ev[8];
	dre_promo_errors errs = { ev, 8, 0 };
	dre_promo       *p = NULL;
	assert_int_equal(
	    parse(&p,
	        "{\"name\":\"N\",\"type\":\"ARTICLE\",\"conditons\":[],"
	        "\"calculationConfig\":{\"mode\":\"ADDITIVE\",\"rouding\":1},"
	        "\"timeWindows\":[{\"from\":\"08:00\",\"to\":\"09:00\","
	        "\"tz\":\"x\"}],"
	        "\"conditions\":[{\"type\":\"ARTICLE\",\"values\":[\"A\"],"
	        "\"minQty\":2}],"
	        "\"actions\":[{\"type\":\"ARTICLE\",\"discountType\":"
	        "\"PERCENTAGE\",\"value\":10,\"target\":{\"article\":[\"A\"]},"
	        "\"colour\":\"red\"}]}",
	        NULL, &errs),
	    DRE_EINVAL);
	assert_null(p);
	assert_int_equal(errs.n, 6);
	const char *want[][2] = {
		{ "timeWindows[0].tz", "unknown field 'tz'" },
		{ "calculationConfig.rouding",
		    "unknown field 'rouding' (did you mean 'rounding'?)" },
		{ "conditions[0].minQty", "unknown field 'minQty'" },
		{ "actions[0].colour", "unknown field 'colour'" },
		{ "actions[0].target.article",
		    "unknown field 'article' (did you mean 'articles'?)" },
		{ "conditons",
		    "unknown field 'conditons' (did you mean 'conditions'?)" },
	};
	for (size_t i = 0; i < 6; i++) {
		assert_string_equal(ev[i].target, want[i][0]);
		assert_string_equal(ev[i].message, want[i][1]);
		assert_string_equal(ev[i].code, "VALIDATION_FAILED");
	}
	// What dre_promo_write emits is accepted back (createdAt and
	// modifiedAt included), so a GET body can be PUT as it is.
	errs.n = 0;
	assert_int_equal(parse(&p,
	                     "{\"name\":\"N\",\"type\":\"ARTICLE\","
	                     "\"createdAt\":\"2026-01-01T00:00:"
	                     "00Z\",\"modifiedAt\":\"2026-01-01T00:00:00Z\","
	                     "\"actions\":[{\"type\":\"ARTICLE\","
	                     "\"discountType\":\"PERCENTAGE\",\"value\":1}]}",
	                     NULL, &errs),
	    DRE_OK);
}

static void
test_names(void **state)
{
	dre_promo_status s;
	assert_int_equal(
	    dre_promo_status_parse(&s, "PENDING_APPROVAL"), DRE_OK);
	assert_int_equal(s, DRE_PS_PENDING_APPROVAL);
	assert_int_equal(dre_promo_status_parse(&s, "active"), DRE_EINVAL);
	assert_string_equal(dre_promo_status_name(DRE_PS_PILOT), "PILOT");
	assert_string_equal(dre_promo_type_name(DRE_PT_COUPON), "COUPON");
	assert_string_equal(
	    dre_cond_type_name(DRE_COND_MANUAL_DISCOUNT), "MANUAL_DISCOUNT");
	assert_string_equal(
	    dre_action_type_name(DRE_ACT_ISSUE_COUPON), "ISSUE_COUPON");
	assert_string_equal(
	    dre_disc_type_name(DRE_DISC_UNIT_PRICE), "UNIT_PRICE");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seed_round_trip),
		cmocka_unit_test(test_full_round_trip),
		cmocka_unit_test(test_invalid_documents),
		cmocka_unit_test(test_every_problem),
		cmocka_unit_test(test_range_messages),
		cmocka_unit_test(test_patch),
		cmocka_unit_test(test_unknown_fields),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
