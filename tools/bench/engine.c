// engine.c -- in-process benchmark of the promotion engine (dre-bench-engine).
//
// Loads N generated active promotions into an engine, then prices
// pre-built 20-line baskets on one thread for a fixed time, an arena reset
// per basket as the service does, and reports baskets/s, ns per line, the
// index build time, the process RSS and the time one promotion change takes
// to publish (its tenant's promotion part rebuilt). Not a test: run it by
// hand,
//
//   dre-bench-engine [-n 1000,10000,100000] [-s seconds] [-l lines] [-L]
//
// The catalog scales with N so that a basket meets about the same number of
// promotions at every size (what an index must achieve): 10 N articles,
// N/5 article groups and manufacturers; 85 % of the promotions are
// article-conditioned (1-3 articles; percentage, amount, unit price, some
// with maxQuantity, some in an exclusion group), 4 % group markdowns, 3 %
// manufacturer markdowns, 3 % quantity tiers, 2 % bundles, 2 % free items,
// 1 % multiplicative markdowns; plus 25 basket-level promotions at every
// size (see basket_level) that every basket may reach. -L turns the three
// spend-X-save-Y thresholds of one exclusion group into a ladder of 15 that
// every basket must choose from (a stress case for the best-price search).
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "engine.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t
rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t) (rng % n);
}

static int64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static long
rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char  line[256];
	long  kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

typedef struct {
	uint32_t narts, ngroups, nmanus;
} catalog;

static void
art(char *out, size_t cap, uint32_t k)
{
	snprintf(out, cap, "A%07u", k);
}

static void
disc(dre_buf *b)
{
	switch (rnd(3)) {
	case 0:
		dre_buf_printf(b,
		    "\"discountType\":\"PERCENTAGE\",\"value\":%u",
		    5 + rnd(26));
		break;
	case 1:
		dre_buf_printf(b,
		    "\"discountType\":\"ABSOLUTE\",\"value\":%u.%02u", rnd(3),
		    rnd(100));
		break;
	default:
		dre_buf_printf(b,
		    "\"discountType\":\"UNIT_PRICE\",\"value\":%u.99",
		    rnd(20));
		break;
	}
}

// promotion appends one generated promotion document (i-th of n).
static void
promotion(dre_buf *b, uint32_t i, uint32_t n, const catalog *c)
{
	char     a1[16], a2[16], a3[16];
	uint32_t kind = rnd(100);
	art(a1, sizeof a1, rnd(c->narts));
	art(a2, sizeof a2, rnd(c->narts));
	art(a3, sizeof a3, rnd(c->narts));
	dre_buf_printf(b,
	    "{\"id\":\"b0000000-0000-4000-8000-%012u\",\"name\":\"Promotion "
	    "%u\",\"type\":\"ARTICLE\",\"status\":\"ACTIVE\","
	    "\"validFrom\":\"2026-01-01T00:00:00Z\","
	    "\"validTo\":\"2026-12-31T23:59:59Z\",\"priority\":%u,",
	    i, i, 10 * (1 + rnd(10)));
	if (kind < 85) {
		if (rnd(50) == 0)
			dre_buf_printf(b, "\"exclusionGroups\":[\"EG%u\"],",
			    rnd(n / 100 + 1));
		uint32_t na = 1 + rnd(3);
		dre_buf_printf(b,
		    "\"conditions\":[{\"type\":\"ARTICLE\",\"values\":[\"%s\"",
		    a1);
		if (na > 1)
			dre_buf_printf(b, ",\"%s\"", a2);
		if (na > 2)
			dre_buf_printf(b, ",\"%s\"", a3);
		dre_buf_puts(b, "]}],\"actions\":[{\"type\":\"ARTICLE\",");
		disc(b);
		if (rnd(5) == 0)
			dre_buf_printf(b, ",\"maxQuantity\":%u", 1 + rnd(2));
		dre_buf_puts(b, "}]}");
	} else if (kind < 89) {
		uint32_t g = rnd(c->ngroups);
		dre_buf_printf(b,
		    "\"conditions\":[{\"type\":\"ARTICLE_GROUP\",\"values\":["
		    "\"G%u\"]}],"
		    "\"actions\":[{\"type\":\"ARTICLE_GROUP\","
		    "\"discountType\":"
		    "\"PERCENTAGE\",\"value\":%u,\"target\":{"
		    "\"articleGroups\":"
		    "[\"G%u\"]}}]}",
		    g, 5 + rnd(20), g);
	} else if (kind < 92) {
		dre_buf_printf(b,
		    "\"conditions\":[{\"type\":\"MANUFACTURER\",\"values\":["
		    "\"M%u\"]}],"
		    "\"actions\":[{\"type\":\"ARTICLE\",",
		    rnd(c->nmanus));
		disc(b);
		dre_buf_puts(b, "}]}");
	} else if (kind < 95) {
		dre_buf_printf(b,
		    "\"conditions\":[],\"actions\":[{\"type\":\"QUANTITY_"
		    "TIER\","
		    "\"tiers\":[{\"minQuantity\":2,\"value\":5},"
		    "{\"minQuantity\":4,\"value\":10}],"
		    "\"target\":{\"articles\":[\"%s\",\"%s\"]}}]}",
		    a1, a2);
	} else if (kind < 97) {
		dre_buf_printf(b,
		    "\"conditions\":[],\"actions\":[{\"type\":\"BUNDLE\","
		    "\"components\":[{\"articles\":[\"%s\"]},{\"articles\":"
		    "[\"%s\"]}],\"bundlePrice\":%u.99}]}",
		    a1, a2, 1 + rnd(20));
	} else if (kind < 99) {
		dre_buf_printf(b,
		    "\"conditions\":[{\"type\":\"ARTICLE\",\"values\":[\"%s\"]"
		    "}],"
		    "\"actions\":[{\"type\":\"FREE_ITEM\",\"articleNumber\":"
		    "\"%s\",\"quantity\":1,\"referencePrice\":1.50}]}",
		    a1, a2);
	} else {
		dre_buf_printf(b,
		    "\"calculationConfig\":{\"mode\":\"MULTIPLICATIVE\"},"
		    "\"conditions\":[{\"type\":\"ARTICLE\",\"values\":[\"%s\"]"
		    "}],"
		    "\"actions\":[{\"type\":\"ARTICLE\",\"discountType\":"
		    "\"PERCENTAGE\",\"value\":%u}]}",
		    a1, 5 + rnd(20));
	}
}

static bool ladder; // -L: 15 receipt thresholds in one exclusion group

// basket_level appends the i-th of the 25 promotions every basket may
// reach: a scaled receipt discount, spend-X-save-Y thresholds in one
// exclusion group (3, or 15 with -L), points for everyone, the identified
// and the VIP customers, customer-group discounts, and store-specific ones
// for other POS groups.
static void
basket_level(dre_buf *b, uint32_t i)
{
	uint32_t nthr = ladder ? 15 : 3;
	dre_buf_printf(b,
	    "{\"id\":\"c0000000-0000-4000-8000-%012u\",\"name\":\"Basket %u\","
	    "\"type\":\"RECEIPT\",\"status\":\"ACTIVE\",\"priority\":200,",
	    i, i);
	if (i == 0)
		dre_buf_puts(b,
		    "\"conditions\":[],\"actions\":[{\"type\":\"SCALED_"
		    "RECEIPT\","
		    "\"tiers\":[{\"threshold\":50,\"value\":2},{\"threshold\":"
		    "100,\"value\":5},{\"threshold\":200,\"value\":12},"
		    "{\"threshold\":400,\"value\":30}]}]}");
	else if (i <= nthr)
		dre_buf_printf(b,
		    "\"conditions\":[{\"type\":\"RECEIPT_AMOUNT\",\"min\":%u}]"
		    ","
		    "\"actions\":[{\"type\":\"RECEIPT\",\"discountType\":"
		    "\"ABSOLUTE\",\"value\":%u}],\"exclusionGroups\":"
		    "[\"SPEND\"]}",
		    ladder       ? 50 * i
		        : i == 1 ? 100
		        : i == 2 ? 250
		                 : 500,
		    ladder       ? 1 + i
		        : i == 1 ? 5
		        : i == 2 ? 15
		                 : 40);
	else if (i == nthr + 1)
		dre_buf_puts(b,
		    "\"conditions\":[],\"actions\":[{\"type\":"
		    "\"CURRENCY_TO_POINTS\",\"pointsPerUnit\":1}]}");
	else if (i == nthr + 2)
		dre_buf_puts(b,
		    "\"conditions\":[{\"type\":\"CUSTOMER_REQUIRED\"}],"
		    "\"actions\":[{\"type\":\"ADD_FIXED\",\"points\":50}]}");
	else if (i == nthr + 3)
		dre_buf_puts(b,
		    "\"conditions\":[{\"type\":\"CUSTOMER_GROUP\",\"values\":"
		    "[\"VIP\"]}],\"actions\":[{\"type\":\"MULTIPLY_POINTS\","
		    "\"factor\":2}]}");
	else if (i == nthr + 4 || i == nthr + 5)
		dre_buf_printf(b,
		    "\"conditions\":[{\"type\":\"CUSTOMER_GROUP\",\"values\":"
		    "[\"%s\"]}],\"actions\":[{\"type\":\"RECEIPT\","
		    "\"discountType\":\"PERCENTAGE\",\"value\":%u}]}",
		    i == nthr + 4 ? "VIP" : "STAFF", i == nthr + 4 ? 5 : 10);
	else
		dre_buf_printf(b,
		    "\"conditions\":[],\"actions\":[{\"type\":\"RECEIPT\","
		    "\"discountType\":\"PERCENTAGE\",\"value\":3}],"
		    "\"posGroups\":[\"STORE-%u\"]}",
		    i);
}

static Dre__EvaluateRequest **
baskets(dre_arena *a, uint32_t n, uint32_t lines, const catalog *c)
{
	Dre__EvaluateRequest **v = dre_arena_get(a, n * sizeof(*v));
	for (uint32_t k = 0; k < n; k++) {
		Dre__EvaluateRequest *r = dre_arena_get(a, sizeof(*r));
		dre__evaluate_request__init(r);
		r->pos_group_id = "60000000-0000-4000-8000-000000000001";
		r->items = dre_arena_get(a, lines * sizeof(*r->items));
		for (uint32_t i = 0; i < lines; i++) {
			Dre__BasketItem *it = dre_arena_get(a, sizeof(*it));
			dre__basket_item__init(it);
			uint32_t x = rnd(c->narts);
			char     buf[16];
			art(buf, sizeof buf, x);
			it->article_number = dre_arena_strdup(a, buf);
			snprintf(buf, sizeof buf, "G%u", x % c->ngroups);
			it->article_group_id = dre_arena_strdup(a, buf);
			snprintf(buf, sizeof buf, "M%u", x % c->nmanus);
			it->manufacturer_id = dre_arena_strdup(a, buf);
			snprintf(buf, sizeof buf, "L%u", i + 1);
			it->line_reference = dre_arena_strdup(a, buf);
			it->quantity = (1 + rnd(3)) * 1000;
			it->unit_price = 50 + rnd(5000);
			r->items[r->n_items++] = it;
		}
		if (rnd(4) == 0) {
			Dre__CustomerInfo *cu = dre_arena_get(a, sizeof(*cu));
			dre__customer_info__init(cu);
			cu->customer_id = "C-1";
			cu->customer_group = rnd(4) == 0 ? "VIP" : "REGULAR";
			r->customer = cu;
		}
		r->has_timestamp_ms = true;
		r->timestamp_ms = 1781000000000;
		v[k] = r;
	}
	return v;
}

static void
run(uint32_t n, double seconds, uint32_t lines)
{
	catalog c
	    = { 10 * n, n / 5 > 10 ? n / 5 : 10, n / 5 > 10 ? n / 5 : 10 };
	uint32_t           total = n + 25;
	dre_buf           *docs = calloc(total, sizeof(dre_buf));
	eng_master_change *v = calloc(total, sizeof(*v));
	char(*ids)[40] = calloc(total, 40);
	for (uint32_t i = 0; i < total; i++) {
		if (i < n) {
			promotion(&docs[i], i, n, &c);
			snprintf(
			    ids[i], 40, "b0000000-0000-4000-8000-%012u", i);
		} else {
			basket_level(&docs[i], i - n);
			snprintf(ids[i], 40, "c0000000-0000-4000-8000-%012u",
			    i - n);
		}
		v[i] = (eng_master_change) { ENG_MK_PROMOTION, "bench", ids[i],
			i + 1, docs[i].data, docs[i].len };
	}
	eng_engine *e;
	if (eng_alloc(&e) != DRE_OK)
		exit(1);
	long    rss0 = rss_kb();
	int64_t t0 = now_ns();
	size_t  nbad = 0;
	if (eng_load(e, v, total, 1, &nbad) != DRE_OK || nbad) {
		fprintf(stderr, "load failed (%zu bad)\n", nbad);
		exit(1);
	}
	int64_t build = now_ns() - t0;
	// One promotion changed (a new version of the first): what its
	// tenant's promotion part costs to rebuild.
	eng_master_change ch = v[0];
	ch.version = total + 1;
	bool    applied = false;
	int64_t t1 = now_ns();
	if (eng_apply(e, &ch, 2, &applied) != DRE_OK || !applied) {
		fprintf(stderr, "change failed\n");
		exit(1);
	}
	int64_t change = now_ns() - t1;
	for (uint32_t i = 0; i < total; i++)
		dre_buf_free(&docs[i]);
	free(docs);
	free(v);
	free(ids);
	long rss = rss_kb();

	dre_arena             *ba = dre_arena_alloc(1 << 20);
	const uint32_t         nb = 1024;
	Dre__EvaluateRequest **bs = baskets(ba, nb, lines, &c);
	dre_arena             *a = dre_arena_alloc(64 * 1024);
	const eng_index       *ix = eng_acquire(e);
	eng_eval_ctx           ctx = { .tenant = "bench",
		          .now_ms = 1781000000000,
		          .counter = 1,
		          .transaction_id = "T",
		          .currency = "EUR" };
	uint64_t               count = 0, discounts = 0, apps = 0;
	int64_t start = now_ns(), deadline = start + (int64_t) (seconds * 1e9);
	int64_t end;
	do {
		for (uint32_t k = 0; k < 256; k++) {
			dre_arena_reset(a);
			Dre__EvaluateResponse *resp;
			eng_eval_error         err;
			if (eng_evaluate(
			        &resp, a, ix, bs[count % nb], &ctx, &err)
			    != DRE_OK) {
				fprintf(stderr, "evaluate failed\n");
				exit(1);
			}
			if (count < nb) {
				apps += resp->totals->n_promotion_breakdown;
				discounts += (uint64_t) resp->totals->discount;
			}
			count++;
		}
		end = now_ns();
	} while (end < deadline);
	eng_index_release(ix);
	double secs = (double) (end - start) / 1e9;
	double bps = (double) count / secs;
	printf("%9u  %12.0f  %10.0f  %10.1f  %9.0f  %8.1f  %9.2f  %9.1f\n", n,
	    bps, 1e9 / bps / lines, (double) build / 1e6,
	    (double) (rss - rss0) / 1024.0, (double) rss / 1024.0,
	    (double) apps / (count < nb ? (double) count : nb),
	    (double) change / 1e6);
	dre_arena_free(a);
	dre_arena_free(ba);
	eng_free(e);
}

int
main(int argc, char **argv)
{
	const char *sizes = "1000,10000,100000";
	double      seconds = 2;
	uint32_t    lines = 20;
	int         o;
	while ((o = getopt(argc, argv, "n:s:l:Lh")) != -1)
		switch (o) {
		case 'L':
			ladder = true;
			break;
		case 'n':
			sizes = optarg;
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'l':
			lines = (uint32_t) atoi(optarg);
			break;
		default:
			fprintf(stderr,
			    "usage: %s [-n 1000,10000,100000] [-s seconds] "
			    "[-l lines] [-L]\n",
			    argv[0]);
			return 2;
		}
	printf(
	    "promotions  baskets/s   ns/line  build ms  index MiB  RSS MiB  "
	    "applied/basket  change ms\n");
	char *list = strdup(sizes);
	for (char *t = strtok(list, ","); t; t = strtok(NULL, ","))
		run((uint32_t) atoi(t), seconds, lines);
	free(list);
	return 0;
}
