// fuzz_odata.c -- libFuzzer target for the OData query options of the
// /api/v1 collections (odata.c): the input is up to 8 lines "key=value",
// the query parameters of one call, parsed against a small entity and
// applied to a handful of documents as a list handler does (streamed
// without $orderby, kept, sorted and paged with one).
//
// Oracle: a refused query has a target and a message, valid UTF-8 when
// every key and value is (they quote the query, cut to their buffers), in
// an error body our reader accepts; an accepted one answers a page that is
// a JSON array our reader accepts, of the documents that match, as many as
// $skip and $top leave, with $select's members only, and counts every
// match.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/evalwire.h"
#include "dre/json.h"
#include "dre/odata.h"

#include "fuzz.h"

#define MAX_PARAMS 8
#define TOP_MAX    3

static const char *const scalars[]
    = { "id", "name", "price", "qty", "active", "validFrom", "note" };
static const char *const members[] = { "id", "name", "price", "qty", "active",
	"validFrom", "note", "tags", "target" };
static const dre_odata_fields F = { scalars, sizeof scalars / sizeof *scalars,
	members, sizeof members / sizeof *members };

// The collection, in store order: every kind of value, absent members,
// equal keys (the sort is stable), numbers that compare only as decimals.
static const char *const docs[] = {
	"{\"id\":\"a\",\"name\":\"Caf\xc3\xa9 cr\xc3\xa8me\",\"price\":1.50,"
	"\"qty\":3,\"active\":true,\"validFrom\":\"2026-01-01T00:00:00Z\","
	"\"tags\":[\"x\"],\"target\":{\"articleGroups\":[\"G\"]}}",
	"{\"id\":\"b\",\"name\":\"O'Brien\",\"price\":-0.0,\"qty\":"
	"12345678901234567890,\"active\":false,\"note\":null,\"tags\":[]}",
	"{\"id\":\"c\",\"name\":\"\xe6\x97\xa5\xe6\x9c\xac\xf0\x9f\x8d\xa3\","
	"\"price\":1.5,\"qty\":1e3,\"active\":\"true\",\"note\":\"\"}",
	"{\"id\":\"d\",\"name\":\"caf\",\"price\":\"1.50\",\"qty\":-7,"
	"\"validFrom\":\"2025-12-31T23:59:59Z\",\"note\":[1,{\"a\":null}]}",
	"{\"id\":\"e\",\"price\":0.001,\"qty\":3,\"active\":true}",
	"{}",
};
#define NDOCS (sizeof docs / sizeof *docs)

static dre_arena *docs_arena;
static dre_json  *trees[NDOCS];

static void
docs_init(void)
{
	if (docs_arena != NULL)
		return;
	docs_arena = dre_arena_alloc(0);
	CHECK(docs_arena != NULL);
	for (size_t i = 0; i < NDOCS; i++)
		CHECK(dre_json_parse(&trees[i], docs_arena, docs[i],
		          strlen(docs[i]), DRE_JSON_MAX_DEPTH, NULL)
		    == DRE_OK);
}

// check_refusal: the refusal is complete and, as the catalog answers it,
// an error body our reader accepts.
static void
check_refusal(dre_arena *a, const dre_odata_error *err, bool query_utf8)
{
	CHECK(memchr(err->target, '\0', sizeof err->target) != NULL);
	CHECK(memchr(err->message, '\0', sizeof err->message) != NULL);
	CHECK(err->target[0] != '\0' && err->message[0] != '\0');
	if (query_utf8
	    && (!fuzz_utf8(err->target) || !fuzz_utf8(err->message))) {
		fprintf(stderr, "error not UTF-8: target '%s' message '%s'\n",
		    err->target, err->message);
		abort();
	}
	dre_buf b = { 0 };
	dre_error_body_write(
	    &b, "VALIDATION_FAILED", err->message, err->target);
	CHECK(!b.oom);
	if (query_utf8)
		(void) fuzz_parse_json(a, "error body", b.data, b.len);
	dre_buf_free(&b);
}

// check_page: out is the page of a query that matched `matches` of the
// documents.
static void
check_page(dre_arena *a, const dre_odata *q, const dre_buf *out,
    int64_t matches, const char *const *select, size_t nselect)
{
	dre_buf arr = { 0 };
	dre_buf_putc(&arr, '[');
	if (out->len > 0)
		dre_buf_append(&arr, out->data, out->len);
	dre_buf_putc(&arr, ']');
	CHECK(!arr.oom);
	CHECK(fuzz_utf8(arr.data));
	const dre_json *root = fuzz_parse_json(a, "page", arr.data, arr.len);
	CHECK(dre_json_is(root, DRE_JSON_ARRAY));
	int64_t skip = dre_odata_skip(q), top = dre_odata_top(q);
	int64_t want = matches > skip ? matches - skip : 0;
	if (want > top)
		want = top;
	CHECK((int64_t) root->len == want);
	for (const dre_json *d = root->child; d != NULL; d = d->next) {
		CHECK(dre_json_is(d, DRE_JSON_OBJECT));
		if (nselect == 0)
			continue;
		CHECK(d->len == nselect); // each once, null when absent
		for (const dre_json *m = d->child; m != NULL; m = m->next) {
			size_t i = 0;
			while (i < nselect && strcmp(select[i], m->key) != 0)
				i++;
			CHECK(i < nselect);
		}
	}
	dre_buf_free(&arr);
}

// answer runs the query over the collection as a list handler does.
static void
answer(dre_arena *a, const dre_odata *q, const char *const *select,
    size_t nselect)
{
	int64_t matches = 0, count = 0;
	dre_buf out = { 0 };
	for (size_t i = 0; i < NDOCS; i++)
		matches += dre_odata_match(q, trees[i]);
	if (dre_odata_sorted(q)) {
		dre_odata_list l = { 0 };
		for (size_t i = 0; i < NDOCS; i++)
			CHECK(dre_odata_keep(
			    q, &l, trees[i], docs[i], strlen(docs[i])));
		CHECK((int64_t) l.n == matches);
		count = dre_odata_page(q, &l, &out);
		CHECK(l.v == NULL && l.n == 0);
	} else {
		for (size_t i = 0; i < NDOCS; i++)
			dre_odata_emit(q, &count, &out, trees[i], docs[i],
			    strlen(docs[i]));
	}
	CHECK(!out.oom);
	CHECK(count == matches);
	check_page(a, q, &out, matches, select, nselect);
	dre_buf_free(&out);
	if (dre_odata_trivial(q)) { // streamed without parsing
		dre_buf raw = { 0 };
		count = 0;
		for (size_t i = 0; i < NDOCS; i++)
			dre_odata_emit(
			    q, &count, &raw, NULL, docs[i], strlen(docs[i]));
		CHECK(count == (int64_t) NDOCS && matches == count);
		check_page(a, q, &raw, matches, NULL, 0);
		dre_buf_free(&raw);
	}
}

// split_select adds the names of a $select value, as odata.c reads them
// (comma-separated, trimmed), to out[0..*n) unless listed already: the
// members a page may hold. A name may be repeated any number of times.
static void
split_select(
    dre_arena *a, const char *v, const char **out, size_t *n, size_t cap)
{
	for (const char *p = v; *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *b = p;
		while (*p && *p != ',')
			p++;
		size_t len = (size_t) (p - b);
		while (len > 0 && b[len - 1] == ' ')
			len--;
		if (len == 0)
			continue;
		const char *name = dre_arena_strndup(a, b, len);
		size_t      i = 0;
		while (i < *n && strcmp(out[i], name) != 0)
			i++;
		CHECK(i < cap); // unknown names are refused: few distinct
		if (i == *n)
			out[(*n)++] = name;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	docs_init();
	dre_arena *a = dre_arena_alloc(0);
	CHECK(a != NULL);

	// Lines "key=value" (a value may hold '='; a NUL ends a string, as
	// in a C parameter).
	Dre__RpcRequest req = DRE__RPC_REQUEST__INIT;
	Dre__Param      pv[MAX_PARAMS], *pp[MAX_PARAMS];
	size_t          n = 0;
	bool            query_utf8 = true;
	const char     *p = (const char *) data, *end = p + size;
	while (p < end && n < MAX_PARAMS) {
		const char *nl = memchr(p, '\n', (size_t) (end - p));
		const char *e = nl ? nl : end;
		const char *eq = memchr(p, '=', (size_t) (e - p));
		dre__param__init(&pv[n]);
		pv[n].key
		    = dre_arena_strndup(a, p, (size_t) ((eq ? eq : e) - p));
		pv[n].value = eq
		    ? dre_arena_strndup(a, eq + 1, (size_t) (e - eq - 1))
		    : NULL;
		CHECK(pv[n].key != NULL);
		query_utf8 = query_utf8 && fuzz_utf8(pv[n].key)
		    && (pv[n].value == NULL || fuzz_utf8(pv[n].value));
		pp[n] = &pv[n];
		n++;
		p = e + 1;
	}
	req.params = pp;
	req.n_params = n;
	dre_rpc_call call = {
		.method = "list", .tenant = "t", .principal = "u", .req = &req
	};

	dre_odata      *q = NULL;
	dre_odata_error err;
	memset(&err, 0, sizeof err);
	dre_err e = dre_odata_parse(&q, a, &call, &F, 2, TOP_MAX, &err);
	if (e == DRE_EINVAL) {
		check_refusal(a, &err, query_utf8);
	} else {
		CHECK(e == DRE_OK && q != NULL);
		CHECK(dre_odata_top(q) >= 0 && dre_odata_top(q) <= TOP_MAX);
		CHECK(dre_odata_skip(q) >= 0);
		// Every $select adds its names (so does every $orderby).
		const char *names[64];
		size_t      nsel = 0;
		for (size_t i = 0; i < n; i++)
			if (strcmp(pv[i].key, "$select") == 0) {
				split_select(a, pv[i].value ? pv[i].value : "",
				    names, &nsel, 64);
			}
		answer(a, q, names, nsel);
	}
	dre_arena_free(a);
	return 0;
}
