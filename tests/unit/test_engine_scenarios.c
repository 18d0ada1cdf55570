// test_engine_scenarios.c -- the golden scenarios of tests/scenarios/*.json
// run in-process: master data into a fresh engine, the request through
// dre_evalreq_parse, eng_evaluate, dre_evalresp_write, and the answer
// compared with the scenario's expected response (every field but the
// per-instance meta fields). tests/integration/test_scenarios.py runs the
// same files over HTTP.
//
// DRE_SCENARIO_OUT=dir writes each actual response to dir/<file> (see
// tests/scenarios/record.py); DRE_SCENARIO=name runs one scenario.
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dre/clock.h"
#include "dre/evalwire.h"
#include "dre/json.h"
#include "dre/jsonw.h"
#include "engine.h"

#define TENANT "default"

static const char *const volatile_meta[]
    = { "evaluatedAt", "dataAge", "tenantId", "source", "instanceId" };

// ---- JSON helpers
// -------------------------------------------------------------

static void
dump(dre_buf *b, const dre_json *v)
{
	switch (v->type) {
	case DRE_JSON_NULL:
		dre_buf_puts(b, "null");
		break;
	case DRE_JSON_TRUE:
		dre_buf_puts(b, "true");
		break;
	case DRE_JSON_FALSE:
		dre_buf_puts(b, "false");
		break;
	case DRE_JSON_NUMBER:
		dre_buf_append(b, v->str, v->len);
		break;
	case DRE_JSON_STRING:
		dre_json_escape(b, v->str, v->len);
		break;
	case DRE_JSON_ARRAY:
		dre_buf_putc(b, '[');
		for (const dre_json *c = v->child; c; c = c->next) {
			if (c != v->child)
				dre_buf_putc(b, ',');
			dump(b, c);
		}
		dre_buf_putc(b, ']');
		break;
	case DRE_JSON_OBJECT:
		dre_buf_putc(b, '{');
		for (const dre_json *c = v->child; c; c = c->next) {
			if (c != v->child)
				dre_buf_putc(b, ',');
			dre_json_escape(b, c->key, c->key_len);
			dre_buf_putc(b, ':');
			dump(b, c);
		}
		dre_buf_putc(b, '}');
		break;
	}
}

static bool
is_volatile(const char *path, const char *key)
{
	if (strcmp(path, "$.meta") != 0)
		return false;
	for (size_t i = 0; i < sizeof(volatile_meta) / sizeof(*volatile_meta);
	     i++)
		if (strcmp(key, volatile_meta[i]) == 0)
			return true;
	return false;
}

// diff reports the first differences between expected and actual: objects
// by key set (volatile meta skipped), arrays in order, numbers by their
// exact text, everything else by value.
static int
diff(const dre_json *e, const dre_json *a, const char *path, int budget)
{
	char p[512];
	if (budget <= 0)
		return 0;
	if (e->type != a->type
	    && !((e->type == DRE_JSON_TRUE || e->type == DRE_JSON_FALSE)
	        && (a->type == DRE_JSON_TRUE || a->type == DRE_JSON_FALSE))) {
		print_error("%s: type differs (expected %d, got %d)\n", path,
		    e->type, a->type);
		return budget - 1;
	}
	switch (e->type) {
	case DRE_JSON_TRUE:
	case DRE_JSON_FALSE:
		if (e->type != a->type) {
			print_error("%s: expected %s\n", path,
			    e->type == DRE_JSON_TRUE ? "true" : "false");
			budget--;
		}
		break;
	case DRE_JSON_NUMBER:
	case DRE_JSON_STRING:
		if (e->len != a->len || memcmp(e->str, a->str, e->len) != 0) {
			print_error(
			    "%s: expected %s, got %s\n", path, e->str, a->str);
			budget--;
		}
		break;
	case DRE_JSON_ARRAY:
		if (e->len != a->len) {
			dre_buf b = { 0 };
			dump(&b, a);
			dre_buf_putc(&b, 0);
			print_error(
			    "%s: expected %u elements, got %u: %.3000s\n",
			    path, e->len, a->len, b.data);
			dre_buf_free(&b);
			return budget - 1;
		}
		{
			const dre_json *x = e->child, *y = a->child;
			for (uint32_t i = 0; x && y;
			     x = x->next, y = y->next, i++) {
				snprintf(p, sizeof(p), "%s[%u]", path, i);
				budget = diff(x, y, p, budget);
			}
		}
		break;
	case DRE_JSON_OBJECT:
		for (const dre_json *x = e->child; x; x = x->next) {
			if (is_volatile(path, x->key))
				continue;
			snprintf(p, sizeof(p), "%s.%s", path, x->key);
			const dre_json *y = dre_json_get(a, x->key);
			if (y == NULL) {
				print_error("%s: missing\n", p);
				budget--;
				continue;
			}
			budget = diff(x, y, p, budget);
		}
		for (const dre_json *y = a->child; y; y = y->next) {
			if (is_volatile(path, y->key)
			    || dre_json_get(e, y->key) != NULL)
				continue;
			print_error(
			    "%s.%s: unexpected member\n", path, y->key);
			budget--;
		}
		break;
	case DRE_JSON_NULL:
		break;
	}
	return budget;
}

static char *
slurp(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *d = malloc((size_t) n + 1);
	if (d != NULL && fread(d, 1, (size_t) n, f) != (size_t) n) {
		free(d);
		d = NULL;
	}
	fclose(f);
	if (d != NULL) {
		d[n] = 0;
		*lenp = (size_t) n;
	}
	return d;
}

// ---- loading a scenario
// ---------------------------------------------------------

typedef struct {
	eng_master_change *v;
	size_t             n, cap;
	dre_buf           *docs; // keep the texts alive
} changes;

static void
add(changes *c, eng_master_kind kind, const char *key, const dre_json *doc)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 32;
		c->v = realloc(c->v, c->cap * sizeof(*c->v));
		c->docs = realloc(c->docs, c->cap * sizeof(*c->docs));
		assert_non_null(c->v);
		assert_non_null(c->docs);
	}
	dre_buf *b = &c->docs[c->n];
	memset(b, 0, sizeof(*b));
	dump(b, doc);
	c->v[c->n] = (eng_master_change) { kind, TENANT, key,
		(int64_t) c->n + 1, b->data, b->len };
	c->n++;
}

static void
add_all(changes *c, const dre_json *root, const char *member,
    eng_master_kind kind, const char *key)
{
	const dre_json *arr = dre_json_get(root, member);
	if (!dre_json_is(arr, DRE_JSON_ARRAY))
		return;
	for (const dre_json *x = arr->child; x; x = x->next) {
		const dre_json *k = dre_json_get(x, key);
		assert_true(dre_json_is(k, DRE_JSON_STRING));
		add(c, kind, k->str, x);
	}
}

static int
run_one(const char *dir, const char *file, const char *outdir)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	size_t len = 0;
	char  *text = slurp(path, &len);
	assert_non_null(text);
	dre_arena     *a = dre_arena_alloc(1 << 20);
	dre_json      *root;
	dre_json_error jerr = { 0 };
	if (dre_json_parse(&root, a, text, len, DRE_JSON_MAX_DEPTH, &jerr)
	    != DRE_OK) {
		print_error(
		    "%s: bad JSON at %zu: %s\n", file, jerr.offset, jerr.msg);
		fail();
	}
	eng_engine *e;
	assert_int_equal(eng_alloc(&e), DRE_OK);
	changes c = { 0 };
	add_all(&c, root, "posGroups", ENG_MK_POS_GROUP, "id");
	add_all(
	    &c, root, "articleGroups", ENG_MK_ARTICLE_GROUP, "articleGroupId");
	add_all(&c, root, "articles", ENG_MK_ARTICLE, "articleNumber");
	add_all(&c, root, "promotions", ENG_MK_PROMOTION, "id");
	const dre_json *ts = dre_json_get(root, "tenantSettings");
	if (dre_json_is(ts, DRE_JSON_OBJECT))
		add(&c, ENG_MK_TENANT_SETTINGS, "settings", ts);
	size_t nbad = 0;
	assert_int_equal(eng_load(e, c.v, c.n, 1000, &nbad), DRE_OK);
	if (nbad != 0) {
		print_error("%s: %zu master documents rejected\n", file, nbad);
		fail();
	}

	bool simulate
	    = dre_json_is(dre_json_get(root, "simulate"), DRE_JSON_TRUE);
	Dre__EvaluateRequest *req;
	dre_wire_error        werr;
	if (dre_evalreq_parse(&req, a, root, simulate, &werr) != DRE_OK) {
		print_error("%s: request refused: %s (%s)\n", file,
		    werr.message, werr.target);
		fail();
	}
	assert_non_null(req->header);
	assert_non_null(req->header->transaction_id);
	eng_eval_ctx           ctx = { .tenant = TENANT,
		          .now_ms = 1780000000000,
		          .counter = 1,
		          .transaction_id = req->header->transaction_id,
		          .currency = "EUR",
		          .instance_id = "SCENARIO",
		          .source = "local-store",
		          .simulate = simulate };
	const eng_index       *ix = eng_acquire(e);
	Dre__EvaluateResponse *resp = NULL;
	eng_eval_error         verr = { 0 };
	dre_err rc = eng_evaluate(&resp, a, ix, req, &ctx, &verr);
	eng_index_release(ix);
	if (rc != DRE_OK) {
		print_error("%s: evaluate failed: %s %s\n", file,
		    dre_strerror(rc), verr.message);
		fail();
	}
	dre_buf out = { 0 };
	dre_evalresp_write(&out, resp);
	int bad = 0;
	// The evaluator writes the answer's JSON from its result
	// (answer_json); an EvaluateResponse packed and unpacked must render
	// the same bytes (the bridge and older gateways take that path).
	size_t   plen = dre__evaluate_response__get_packed_size(resp);
	uint8_t *packed = malloc(plen + 1);
	assert_non_null(packed);
	dre__evaluate_response__pack(resp, packed);
	Dre__EvaluateResponse *back
	    = dre__evaluate_response__unpack(NULL, plen, packed);
	assert_non_null(back);
	dre_buf rt = { 0 };
	dre_evalresp_write(&rt, back);
	if (rt.len != out.len || memcmp(rt.data, out.data, out.len) != 0) {
		print_error("%s: JSON from the result differs from JSON from "
		            "the unpacked answer\n%s\n%s\n",
		    file, out.data, rt.data);
		bad = 1;
	}
	dre_buf_free(&rt);
	dre__evaluate_response__free_unpacked(back, NULL);
	free(packed);
	if (outdir != NULL) {
		snprintf(path, sizeof(path), "%s/%s", outdir, file);
		FILE *f = fopen(path, "wb");
		assert_non_null(f);
		fwrite(out.data, 1, out.len, f);
		fclose(f);
	}
	const dre_json *expected = dre_json_get(root, "expected");
	dre_json       *actual;
	assert_int_equal(dre_json_parse(&actual, a, out.data, out.len,
	                     DRE_JSON_MAX_DEPTH, NULL),
	    DRE_OK);
	if (!dre_json_is(expected, DRE_JSON_OBJECT)) {
		print_error("%s: no expected response\n", file);
		bad = 1;
	} else if (diff(expected, actual, "$", 20) != 20) {
		print_error("%s: response differs (above)\n", file);
		bad = 1;
	}
	dre_buf_free(&out);
	for (size_t i = 0; i < c.n; i++)
		dre_buf_free(&c.docs[i]);
	free(c.docs);
	free(c.v);
	eng_free(e);
	dre_arena_free(a);
	free(text);
	return bad;
}

static int
name_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *) x, *(char *const *) y);
}

static void
test_scenarios(void **state)
{
	const char *src = getenv("DRE_SOURCE_DIR");
	char        dir[900];
	snprintf(dir, sizeof(dir), "%s/tests/scenarios", src ? src : ".");
	DIR *d = opendir(dir);
	assert_non_null(d);
	char         **names = NULL;
	size_t         n = 0, cap = 0;
	struct dirent *de;
	const char    *only = getenv("DRE_SCENARIO");
	while ((de = readdir(d)) != NULL) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
			continue;
		if (only != NULL && strstr(de->d_name, only) == NULL)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 128;
			names = realloc(names, cap * sizeof(char *));
		}
		names[n++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(char *), name_cmp);
	int bad = 0;
	for (size_t i = 0; i < n; i++) {
		bad += run_one(dir, names[i], getenv("DRE_SCENARIO_OUT"));
		free(names[i]);
	}
	free(names);
	print_message("%zu scenarios, %d differ\n", n, bad);
	if (only == NULL)
		assert_true(n >= 80);
	assert_int_equal(bad, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scenarios),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
