// fuzz_promo.c -- libFuzzer target for the promotion document validator
// (promo.c) as the catalog uses it: POST/PUT (no base) and PATCH (over a
// stored promotion).
//
// Oracle: a refused document lists at least one problem, each with a code;
// an accepted one is written (dre_promo_write) as JSON that parses and
// validates again and is written to the same bytes (normalisation is
// idempotent).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/evalwire.h"
#include "dre/json.h"
#include "dre/promo.h"

#include "fuzz.h"

// The PATCH base: a promotion using most members, so a patch can replace
// each of them.
static const char base_doc[]
    = "{\"id\":\"10000000-0000-4000-8000-000000000001\",\"name\":\"Base\","
      "\"type\":\"ARTICLE\",\"status\":\"ACTIVE\","
      "\"validFrom\":\"2026-01-01T00:00:00Z\","
      "\"validTo\":\"2026-12-31T23:59:59Z\","
      "\"timeWindows\":[{\"days\":[\"MON\",\"FRI\"],\"from\":\"22:00\","
      "\"to\":\"02:00\"}],\"timezone\":\"Europe/Berlin\","
      "\"posGroups\":[\"60000000-0000-4000-8000-000000000001\"],"
      "\"currency\":\"EUR\",\"priority\":3,\"exclusivity\":\"LINE\","
      "\"exclusionGroups\":[\"X\"],\"budgetIds\":[\"B1\"],"
      "\"calculationConfig\":{\"mode\":\"MULTIPLICATIVE\","
      "\"rounding\":\"DOWN\",\"precision\":2},"
      "\"conditions\":[{\"type\":\"ARTICLE_GROUP\",\"values\":[\"G\"],"
      "\"minQuantity\":2}],"
      "\"actions\":[{\"type\":\"QUANTITY_TIER\",\"tiers\":["
      "{\"minQuantity\":2,\"discountType\":\"PERCENTAGE\",\"value\":10},"
      "{\"minQuantity\":5,\"discountType\":\"ABSOLUTE\",\"value\":1.5}],"
      "\"target\":{\"articleGroups\":[\"G\"]}}]}";

static dre_arena *base_arena;
static dre_promo *base;

static void
base_init(void)
{
	dre_json *root;

	if (base != NULL)
		return;
	base_arena = dre_arena_alloc(0);
	CHECK(base_arena != NULL);
	CHECK(dre_json_parse(&root, base_arena, base_doc, strlen(base_doc),
	          DRE_JSON_MAX_DEPTH, NULL)
	    == DRE_OK);
	CHECK(dre_promo_parse(&base, base_arena, root, NULL, NULL) == DRE_OK);
}

// written_again parses the written document text and writes it again.
static void
written_again(dre_buf *out, dre_arena *a, const dre_buf *text)
{
	dre_json        *root;
	dre_promo       *p;
	dre_promo_error  ev[4];
	dre_promo_errors errs = { ev, 4, 0 };
	dre_json_error   jerr = { 0, NULL };

	if (dre_json_parse(
	        &root, a, text->data, text->len, DRE_JSON_MAX_DEPTH, &jerr)
	    != DRE_OK) {
		fprintf(stderr,
		    "written document does not parse (%s at "
		    "%zu): %s\n",
		    jerr.msg, jerr.offset, text->data);
		abort();
	}
	if (dre_promo_parse(&p, a, root, NULL, &errs) != DRE_OK) {
		fprintf(stderr, "written document refused: %s: %s\n%s\n",
		    errs.n > 0 ? ev[0].target : "?",
		    errs.n > 0 ? ev[0].message : "?", text->data);
		abort();
	}
	dre_promo_write(out, p);
}

// error_body writes the catalog's 400 body of the problems and reads it
// back: messages quote the document, cut to their buffers.
static void
error_body(const dre_promo_error *ev, size_t n)
{
	dre_error_detail d[8];
	dre_buf          b = { 0 };
	dre_arena       *a = dre_arena_alloc(0);
	dre_json        *root;
	dre_json_error   jerr = { 0, NULL };

	CHECK(a != NULL && n <= 8);
	for (size_t i = 0; i < n; i++)
		d[i] = (dre_error_detail) { ev[i].code, ev[i].message,
			ev[i].target[0] != '\0' ? ev[i].target : NULL };
	dre_error_body_write_details(
	    &b, "VALIDATION_FAILED", ev[0].message, d[0].target, d, n);
	CHECK(!b.oom);
	if (dre_json_parse(&root, a, b.data, b.len, DRE_JSON_MAX_DEPTH, &jerr)
	    != DRE_OK) {
		fprintf(stderr, "error body is not JSON (%s at %zu): %s\n",
		    jerr.msg, jerr.offset, b.data);
		abort();
	}
	dre_arena_free(a);
	dre_buf_free(&b);
}

static void
one(dre_arena *a, const dre_json *doc, const dre_promo *b)
{
	dre_promo       *p = NULL;
	dre_promo_error  ev[8];
	dre_promo_errors errs = { ev, 8, 0 };
	dre_buf          w1 = { 0 }, w2 = { 0 };

	dre_err err = dre_promo_parse(&p, a, doc, b, &errs);
	if (err == DRE_EINVAL) {
		CHECK(errs.n > 0);
		for (size_t i = 0; i < errs.n && i < errs.cap; i++) {
			CHECK(ev[i].code != NULL);
			CHECK(
			    memchr(ev[i].message, '\0', sizeof(ev[i].message))
			    != NULL);
			CHECK(memchr(ev[i].target, '\0', sizeof(ev[i].target))
			    != NULL);
		}
		error_body(ev, errs.n < errs.cap ? errs.n : errs.cap);
		return;
	}
	CHECK(err == DRE_OK && p != NULL);
	CHECK(errs.n == 0);
	CHECK(p->nactions > 0 && p->name != NULL);
	dre_promo_write(&w1, p);
	CHECK(!w1.oom);
	written_again(&w2, a, &w1);
	CHECK(!w2.oom);
	if (w1.len != w2.len || memcmp(w1.data, w2.data, w1.len) != 0) {
		fprintf(stderr, "not idempotent:\n%s\n%s\n", w1.data, w2.data);
		abort();
	}
	dre_buf_free(&w1);
	dre_buf_free(&w2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dre_json *root;

	base_init();
	dre_arena *a = dre_arena_alloc(0);
	CHECK(a != NULL);
	if (dre_json_parse(
	        &root, a, (const char *) data, size, DRE_JSON_MAX_DEPTH, NULL)
	    == DRE_OK) {
		one(a, root, NULL);
		one(a, root, base);
		// The catalog also validates with no error array.
		dre_promo *p;
		(void) dre_promo_parse(&p, a, root, NULL, NULL);
	}
	dre_arena_free(a);
	return 0;
}
