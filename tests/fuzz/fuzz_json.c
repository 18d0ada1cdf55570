// fuzz_json.c -- libFuzzer target for the strict JSON reader (json.c).
//
// Oracle: whatever parses re-serialises (dre_json_escape for strings, the
// number text as it is) to text that parses again into the same tree; every
// string and key is valid UTF-8; child counts match; an object's members are
// found by dre_json_get; number readers never crash; dre_json_parse_inplace
// on a copy gives the same result, error or tree.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/json.h"
#include "dre/jsonw.h"

#include "fuzz.h"

static void
write_tree(dre_buf *b, const dre_json *v)
{
	const dre_json *c;

	switch (v->type) {
	case DRE_JSON_NULL:
		dre_buf_puts(b, "null");
		break;
	case DRE_JSON_FALSE:
		dre_buf_puts(b, "false");
		break;
	case DRE_JSON_TRUE:
		dre_buf_puts(b, "true");
		break;
	case DRE_JSON_NUMBER:
		dre_buf_append(b, v->str, v->len);
		break;
	case DRE_JSON_STRING:
		dre_json_escape(b, v->str, v->len);
		break;
	case DRE_JSON_ARRAY:
	case DRE_JSON_OBJECT:
		dre_buf_putc(b, v->type == DRE_JSON_ARRAY ? '[' : '{');
		for (c = v->child; c != NULL; c = c->next) {
			if (c != v->child)
				dre_buf_putc(b, ',');
			if (v->type == DRE_JSON_OBJECT) {
				dre_json_escape(b, c->key, c->key_len);
				dre_buf_putc(b, ':');
			}
			write_tree(b, c);
		}
		dre_buf_putc(b, v->type == DRE_JSON_ARRAY ? ']' : '}');
		break;
	}
}

// check_tree verifies the node's own invariants and exercises the readers.
static void
check_tree(const dre_json *v, int depth)
{
	int64_t         n;
	uint32_t        count = 0;
	const dre_json *c;

	CHECK(depth <= DRE_JSON_MAX_DEPTH);
	switch (v->type) {
	case DRE_JSON_STRING:
		CHECK(v->str != NULL && v->str[v->len] == '\0');
		CHECK(dre_utf8_valid(v->str, v->len, NULL));
		break;
	case DRE_JSON_NUMBER:
		CHECK(v->str != NULL && v->len > 0 && v->str[v->len] == '\0');
		for (int scale = 0; scale <= 3; scale++)
			(void) dre_json_decimal(&n, v, scale, 18);
		(void) dre_json_int(&n, v, INT64_MIN, INT64_MAX);
		(void) dre_json_int(&n, v, 0, 1000);
		break;
	case DRE_JSON_ARRAY:
	case DRE_JSON_OBJECT:
		for (c = v->child; c != NULL; c = c->next) {
			if (v->type == DRE_JSON_ARRAY) {
				CHECK(dre_json_at(v, count) == c);
			} else {
				CHECK(c->key != NULL);
				CHECK(
				    dre_utf8_valid(c->key, c->key_len, NULL));
				// Keys holding \u0000 cannot be looked up.
				if (strlen(c->key) == c->key_len)
					CHECK(dre_json_get(v, c->key) == c);
			}
			check_tree(c, depth + 1);
			count++;
		}
		CHECK(count == v->len);
		CHECK(v->type != DRE_JSON_ARRAY
		    || dre_json_at(v, count) == NULL);
		break;
	default:
		break;
	}
}

static void
same_tree(const dre_json *a, const dre_json *b)
{
	CHECK(a->type == b->type);
	CHECK(a->len == b->len);
	if (a->type == DRE_JSON_STRING || a->type == DRE_JSON_NUMBER)
		CHECK(memcmp(a->str, b->str, a->len) == 0);
	CHECK((a->key == NULL) == (b->key == NULL));
	if (a->key != NULL) {
		CHECK(a->key_len == b->key_len);
		CHECK(memcmp(a->key, b->key, a->key_len) == 0);
	}
	const dre_json *x = a->child, *y = b->child;
	for (; x != NULL && y != NULL; x = x->next, y = y->next)
		same_tree(x, y);
	CHECK(x == NULL && y == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dre_arena     *a = dre_arena_alloc(0);
	dre_json      *root = NULL, *again = NULL;
	dre_json_error jerr;
	dre_buf        b = { 0 };

	CHECK(a != NULL);
	dre_err err = dre_json_parse(
	    &root, a, (const char *) data, size, DRE_JSON_MAX_DEPTH, &jerr);
	// In place (the gateway's evaluate): the same outcome, error and tree.
	char *copy = malloc(size + 1);
	CHECK(copy != NULL);
	memcpy(copy, data, size);
	dre_json      *inpl = NULL;
	dre_json_error ierr;
	CHECK(dre_json_parse_inplace(
	          &inpl, a, copy, size, DRE_JSON_MAX_DEPTH, &ierr)
	    == err);
	if (err == DRE_OK) {
		check_tree(inpl, 1);
		same_tree(root, inpl);
	} else
		CHECK(ierr.offset == jerr.offset && ierr.msg == jerr.msg);
	if (err == DRE_OK) {
		check_tree(root, 1);
		write_tree(&b, root);
		CHECK(!b.oom);
		err = dre_json_parse(
		    &again, a, b.data, b.len, DRE_JSON_MAX_DEPTH, &jerr);
		if (err != DRE_OK)
			fprintf(stderr, "re-parse of '%.*s': %s at %zu\n",
			    (int) b.len, b.data, jerr.msg, jerr.offset);
		CHECK(err == DRE_OK);
		same_tree(root, again);
	} else {
		CHECK(err == DRE_EPARSE);
		CHECK(jerr.msg != NULL);
		CHECK(jerr.offset <= size);
	}
	// A shallow limit must refuse, never crash, on the same input.
	dre_arena_reset(a);
	(void) dre_json_parse(&root, a, (const char *) data, size, 2, NULL);
	// The UTF-8 validator on the raw bytes.
	size_t chars = 0;
	if (dre_utf8_valid((const char *) data, size, &chars))
		CHECK(chars <= size);
	dre_buf_free(&b);
	dre_arena_free(a);
	free(copy);
	return 0;
}
