// fuzz_evalwire.c -- libFuzzer target for the POS wire contract: the bodies
// of POST /pos/v2/evaluate, /pos/v2/simulate and /pos/v2/confirm parsed as
// the gateway does (dre_json_parse_inplace, then dre_evalreq_parse;
// dre_json_parse, then dre_confirmreq_parse).
//
// Oracle: a refused body names a 400 or 413 with a code; an accepted one
// respects the item limit and packs to protobuf that unpacks again to the
// same bytes (every required field set).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dre/arena.h"
#include "dre/evalwire.h"
#include "dre/json.h"

#include "fuzz.h"

// check_refusal: the refusal is complete and its error body, as the gateway
// writes it, is JSON our own strict reader accepts (messages and targets may
// quote the request, cut to their buffers).
static void
check_refusal(const dre_wire_error *werr)
{
	CHECK(werr->status == 400 || werr->status == 413);
	CHECK(werr->code != NULL && werr->code[0] != '\0');
	CHECK(memchr(werr->message, '\0', sizeof(werr->message)) != NULL);
	CHECK(memchr(werr->target, '\0', sizeof(werr->target)) != NULL);

	dre_buf        b = { 0 };
	dre_arena     *a = dre_arena_alloc(0);
	dre_json      *root;
	dre_json_error jerr = { 0, NULL };
	CHECK(a != NULL);
	dre_error_body_write(&b, werr->code, werr->message,
	    werr->target[0] != '\0' ? werr->target : NULL);
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

// round_trip packs m, unpacks it and packs the copy: same bytes.
static void
round_trip(const ProtobufCMessage *m)
{
	size_t   n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = malloc(n > 0 ? n : 1);
	CHECK(b != NULL);
	CHECK(protobuf_c_message_pack(m, b) == n);
	ProtobufCMessage *u
	    = protobuf_c_message_unpack(m->descriptor, NULL, n, b);
	CHECK(u != NULL);
	size_t   n2 = protobuf_c_message_get_packed_size(u);
	uint8_t *b2 = malloc(n2 > 0 ? n2 : 1);
	CHECK(b2 != NULL);
	CHECK(protobuf_c_message_pack(u, b2) == n2);
	CHECK(n2 == n && memcmp(b, b2, n) == 0);
	protobuf_c_message_free_unpacked(u, NULL);
	free(b2);
	free(b);
}

static void
evaluate(dre_arena *a, const dre_json *root, bool simulate)
{
	Dre__EvaluateRequest *q = NULL;
	dre_wire_error        werr;

	memset(&werr, 0, sizeof(werr));
	dre_err err = dre_evalreq_parse(&q, a, root, simulate, &werr);
	if (err == DRE_EINVAL) {
		check_refusal(&werr);
		return;
	}
	CHECK(err == DRE_OK && q != NULL);
	CHECK(q->n_items <= DRE_EVAL_MAX_ITEMS);
	for (size_t i = 0; i < q->n_items; i++)
		CHECK(q->items[i] != NULL
		    && q->items[i]->article_number != NULL);
	if (!simulate)
		CHECK(!q->include_inactive);
	round_trip(&q->base);
}

static void
confirm(dre_arena *a, const dre_json *root)
{
	Dre__ConfirmRequest *q = NULL;
	dre_wire_error       werr;

	memset(&werr, 0, sizeof(werr));
	dre_err err = dre_confirmreq_parse(&q, a, root, &werr);
	if (err == DRE_EINVAL) {
		check_refusal(&werr);
		return;
	}
	CHECK(err == DRE_OK && q != NULL);
	// The gateway routes on it without checking.
	CHECK(q->header != NULL && q->header->transaction_id != NULL);
	round_trip(&q->base);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	dre_arena *a = dre_arena_alloc(32u << 10); // as the gateway's jobs
	dre_json  *root = NULL;

	CHECK(a != NULL);
	if (dre_json_parse(
	        &root, a, (const char *) data, size, DRE_JSON_MAX_DEPTH, NULL)
	    == DRE_OK)
		confirm(a, root);
	// Evaluate and simulate parse the body in place, as the gateway does.
	char *copy = malloc(size + 1);
	CHECK(copy != NULL);
	memcpy(copy, data, size);
	if (dre_json_parse_inplace(
	        &root, a, copy, size, DRE_JSON_MAX_DEPTH, NULL)
	    == DRE_OK) {
		evaluate(a, root, false);
		evaluate(a, root, true);
	}
	dre_arena_free(a);
	free(copy);
	return 0;
}
