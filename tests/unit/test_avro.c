// test_avro.c -- canonical form, CRC-64-AVRO fingerprints, single-object
// encoding.
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dre/avro.h"

static const char master_canonical[]
    = "{\"name\":\"dre.MasterDataChanged\",\"type\":\"record\",\"fields\":["
      "{\"name\":\"eventId\",\"type\":\"string\"},"
      "{\"name\":\"tenant\",\"type\":\"string\"},"
      "{\"name\":\"occurredAt\",\"type\":\"long\"},"
      "{\"name\":\"schemaVersion\",\"type\":\"int\"},"
      "{\"name\":\"entityKind\",\"type\":{\"name\":\"dre.EntityKind\","
      "\"type\":\"enum\",\"symbols\":[\"PROMOTION\",\"ARTICLE\","
      "\"POS_GROUP\",\"ARTICLE_GROUP\",\"TENANT_SETTINGS\",\"CAMPAIGN\"]}},"
      "{\"name\":\"entityId\",\"type\":\"string\"},"
      "{\"name\":\"op\",\"type\":{\"name\":\"dre.ChangeOp\",\"type\":"
      "\"enum\",\"symbols\":[\"UPSERT\",\"DELETE\"]}},"
      "{\"name\":\"version\",\"type\":\"long\"},"
      "{\"name\":\"document\",\"type\":[\"null\",\"string\"]}]}";

static void
canonical_is(const char *schema, const char *want)
{
	dre_buf b = { 0 };
	assert_int_equal(
	    dre_avro_canonical(&b, schema, strlen(schema)), DRE_OK);
	assert_string_equal(b.data, want);
	dre_buf_free(&b);
}

static void
test_crc64_known_values(void **state)
{
	// Values published with the Avro implementations' own tests.
	assert_true(dre_avro_crc64("\"int\"", 5) == 0x7275d51a3f395c8fULL);
	assert_true(dre_avro_crc64("\"string\"", 8) == 0x8f014872634503c7ULL);
	assert_true(dre_avro_crc64("", 0) == 0xc15d213aa4d7a795ULL);
}

static void
test_canonical_form(void **state)
{
	canonical_is("{ \"type\" : \"int\" }", "\"int\"");
	canonical_is("\"long\"", "\"long\"");
	canonical_is(
	    "{\"type\":\"string\",\"logicalType\":\"uuid\"}", "\"string\"");
	canonical_is(
	    "[\"null\", {\"type\":\"string\"}]", "[\"null\",\"string\"]");
	canonical_is(
	    "{\"type\":\"record\",\"name\":\"R\",\"namespace\":"
	    "\"a.b\",\"doc\":\"d\",\"aliases\":[\"Q\"],\"fields\":["
	    "{\"type\":{\"size\":16,\"type\":\"fixed\",\"name\":"
	    "\"x.F\"},\"name\":\"f\",\"default\":\"\"},"
	    "{\"name\":\"g\",\"type\":{\"type\":\"array\",\"items\":"
	    "\"R\"}},"
	    "{\"name\":\"h\",\"type\":{\"type\":\"map\",\"values\":"
	    "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}}},"
	    "{\"name\":\"i\",\"type\":\"x.F\"}]}",
	    "{\"name\":\"a.b.R\",\"type\":\"record\",\"fields\":["
	    "{\"name\":\"f\",\"type\":{\"name\":\"x.F\",\"type\":\"fixed\","
	    "\"size\":16}},"
	    "{\"name\":\"g\",\"type\":{\"type\":\"array\",\"items\":"
	    "\"a.b.R\"}},"
	    "{\"name\":\"h\",\"type\":{\"type\":\"map\",\"values\":{\"name\":"
	    "\"a.b.E\",\"type\":\"enum\",\"symbols\":[\"A\"]}}},"
	    "{\"name\":\"i\",\"type\":\"x.F\"}]}");

	dre_buf b = { 0 };
	assert_int_equal(dre_avro_canonical(&b, "{\"type\":", 8), DRE_ECODEC);
	dre_buf_free(&b);
	assert_int_equal(
	    dre_avro_canonical(&b, "{\"name\":\"x\"}", 12), DRE_ECODEC);
	dre_buf_free(&b);
}

static void
test_master_schema(void **state)
{
	const char *json = dre_avro_schema_json("MasterDataChanged");
	assert_non_null(json);
	assert_null(dre_avro_schema_json("Nope"));
	canonical_is(json, master_canonical);
	uint64_t fp = 0;
	assert_int_equal(
	    dre_avro_fingerprint("MasterDataChanged", &fp), DRE_OK);
	assert_true(
	    fp == dre_avro_crc64(master_canonical, strlen(master_canonical)));
	assert_int_equal(dre_avro_fingerprint("Nope", &fp), DRE_ENOTFOUND);
}

static dre_master_event
sample(void)
{
	dre_master_event e;
	memset(&e, 0, sizeof(e));
	strcpy(e.event_id, "0b9f4c1e-6a55-4a53-9a43-3f2b9a7d1c20");
	e.tenant = "acme";
	e.occurred_at = 1717171717171LL;
	e.schema_version = 1;
	e.entity_kind = "ARTICLE_GROUP";
	e.entity_id = "AG-42";
	e.op = "UPSERT";
	e.version = 9007199254740993LL; // beyond a double's precision
	e.document = "{\"articleGroupId\":\"AG-42\"}XXX";
	e.document_len = strlen("{\"articleGroupId\":\"AG-42\"}");
	return e;
}

static void
test_round_trip(void **state)
{
	dre_master_event in = sample();
	dre_buf          b = { 0 };
	assert_int_equal(dre_avro_encode_master(&b, &in), DRE_OK);
	assert_true(b.len > 10);
	uint64_t fp = 0;
	assert_int_equal(
	    dre_avro_fingerprint("MasterDataChanged", &fp), DRE_OK);
	const uint8_t *u = (const uint8_t *) b.data;
	assert_int_equal(u[0], 0xC3);
	assert_int_equal(u[1], 0x01);
	for (int i = 0; i < 8; i++)
		assert_int_equal(u[2 + i], (uint8_t) (fp >> (8 * i)));

	dre_arena       *a = dre_arena_alloc(0);
	dre_master_event out;
	assert_int_equal(
	    dre_avro_decode_master(&out, a, b.data, b.len), DRE_OK);
	assert_string_equal(out.event_id, in.event_id);
	assert_string_equal(out.tenant, "acme");
	assert_true(out.occurred_at == in.occurred_at);
	assert_int_equal(out.schema_version, 1);
	assert_string_equal(out.entity_kind, "ARTICLE_GROUP");
	assert_string_equal(out.entity_id, "AG-42");
	assert_string_equal(out.op, "UPSERT");
	assert_true(out.version == in.version);
	assert_int_equal(out.document_len, in.document_len);
	assert_memory_equal(out.document, in.document, in.document_len);

	// DELETE without a document.
	in.op = "DELETE";
	in.document = NULL;
	dre_buf_reset(&b);
	assert_int_equal(dre_avro_encode_master(&b, &in), DRE_OK);
	assert_int_equal(
	    dre_avro_decode_master(&out, a, b.data, b.len), DRE_OK);
	assert_string_equal(out.op, "DELETE");
	assert_null(out.document);
	assert_int_equal(out.document_len, 0);
	dre_arena_free(a);
	dre_buf_free(&b);
}

// Version 2 added TENANT_SETTINGS; a body written with version 1 (same
// binary layout for the kinds it knows) is read through resolution.
static void
test_schema_versions(void **state)
{
	dre_master_event in = sample();
	in.schema_version = 2;
	in.entity_kind = "TENANT_SETTINGS";
	in.entity_id = "settings";
	dre_buf b = { 0 };
	assert_int_equal(dre_avro_encode_master(&b, &in), DRE_OK);
	dre_arena       *a = dre_arena_alloc(0);
	dre_master_event out;
	assert_int_equal(
	    dre_avro_decode_master(&out, a, b.data, b.len), DRE_OK);
	assert_string_equal(out.entity_kind, "TENANT_SETTINGS");
	assert_int_equal(out.schema_version, 2);

	uint64_t v1 = 0, v2 = 0;
	assert_int_equal(
	    dre_avro_fingerprint("MasterDataChanged_v1", &v1), DRE_OK);
	assert_int_equal(
	    dre_avro_fingerprint("MasterDataChanged", &v2), DRE_OK);
	assert_true(v1 != v2);
	in = sample();
	dre_buf_reset(&b);
	assert_int_equal(dre_avro_encode_master(&b, &in), DRE_OK);
	for (int i = 0; i < 8; i++) // now it claims the version 1 writer
		((uint8_t *) b.data)[2 + i] = (uint8_t) (v1 >> (8 * i));
	assert_int_equal(
	    dre_avro_decode_master(&out, a, b.data, b.len), DRE_OK);
	assert_string_equal(out.entity_kind, "ARTICLE_GROUP");
	assert_string_equal(out.entity_id, "AG-42");
	assert_int_equal(out.schema_version, 1);

	// Version 3 added CAMPAIGN (issue 17.4); a version 2 writer's
	// TENANT_SETTINGS still reads.
	uint64_t v2old = 0;
	assert_int_equal(
	    dre_avro_fingerprint("MasterDataChanged_v2", &v2old), DRE_OK);
	assert_true(v2old != v2 && v2old != v1);
	in = sample();
	in.schema_version = 3;
	in.entity_kind = "CAMPAIGN";
	dre_buf_reset(&b);
	assert_int_equal(dre_avro_encode_master(&b, &in), DRE_OK);
	assert_int_equal(
	    dre_avro_decode_master(&out, a, b.data, b.len), DRE_OK);
	assert_string_equal(out.entity_kind, "CAMPAIGN");
	assert_int_equal(out.schema_version, 3);
	in.schema_version = 2;
	in.entity_kind = "TENANT_SETTINGS";
	dre_buf_reset(&b);
	assert_int_equal(dre_avro_encode_master(&b, &in), DRE_OK);
	for (int i = 0; i < 8; i++) // the version 2 writer
		((uint8_t *) b.data)[2 + i] = (uint8_t) (v2old >> (8 * i));
	assert_int_equal(
	    dre_avro_decode_master(&out, a, b.data, b.len), DRE_OK);
	assert_string_equal(out.entity_kind, "TENANT_SETTINGS");
	assert_int_equal(out.schema_version, 2);
	dre_arena_free(a);
	dre_buf_free(&b);
}

static void
test_bad_input(void **state)
{
	dre_master_event in = sample();
	dre_buf          b = { 0 };
	assert_int_equal(dre_avro_encode_master(&b, &in), DRE_OK);
	dre_arena       *a = dre_arena_alloc(0);
	dre_master_event out;
	memset(&out, 0x5a, sizeof(out));
	char *copy = malloc(b.len + 1);

	memcpy(copy, b.data, b.len);
	copy[0] = 0x00; // wrong magic
	assert_int_equal(
	    dre_avro_decode_master(&out, a, copy, b.len), DRE_ECODEC);
	memcpy(copy, b.data, b.len);
	copy[1] = 0x02; // wrong format version
	assert_int_equal(
	    dre_avro_decode_master(&out, a, copy, b.len), DRE_ECODEC);
	memcpy(copy, b.data, b.len);
	copy[5] ^= 0x40; // unknown fingerprint
	assert_int_equal(
	    dre_avro_decode_master(&out, a, copy, b.len), DRE_ECODEC);
	memcpy(copy, b.data, b.len);
	assert_int_equal(dre_avro_decode_master(&out, a, copy, 9), DRE_ECODEC);
	for (size_t cut = 10; cut < b.len; cut += 7) // truncated body
		assert_int_equal(
		    dre_avro_decode_master(&out, a, copy, cut), DRE_ECODEC);
	copy[b.len] = 0; // trailing garbage
	assert_int_equal(
	    dre_avro_decode_master(&out, a, copy, b.len + 1), DRE_ECODEC);
	// out is written only on success
	assert_int_equal(out.schema_version, 0x5a5a5a5a);

	// An unknown enum symbol cannot be encoded.
	in.entity_kind = "COUPON";
	dre_buf_reset(&b);
	assert_int_not_equal(dre_avro_encode_master(&b, &in), DRE_OK);
	free(copy);
	dre_arena_free(a);
	dre_buf_free(&b);
}

static void
test_tx_confirmed_round_trip(void **state)
{
	const char *const b1[] = { "bud-1", "bud-2" };
	dre_tx_line       lines[2] = {
		      { "L1", "ART-1", 2000, 8999, 17998, 1800, 16198 },
		      { "L2", "CIG-1", -1000, 2500, -2500, 0, -2500 },
	};
	dre_tx_promotion promos[2] = {
		{ "p-1", "Ten off", "ARTICLE", 1700, 1800, NULL, b1, 2 },
		{ "p-2", "Coupon", "COUPON", 0, 0, "WELCOME", NULL, 0 },
	};
	dre_tx_confirmed in = { .tenant = "t",
		.occurred_at = 1780000000123,
		.schema_version = 1,
		.transaction_id = "TX-1",
		.transaction_counter = 3,
		.evaluated_at = 1780000000000,
		.transaction_time = 1780000000001,
		.customer_id = "C-1",
		.channel = "ONLINE",
		.pos_group_id = "60000000-0000-4000-8000-000000000001",
		.currency = "EUR",
		.subtotal = 15498,
		.total_discount = 1700,
		.grand_total = 13798,
		.lines = lines,
		.nlines = 2,
		.promotions = promos,
		.npromotions = 2 };
	strcpy(in.event_id, "0b5c2a54-6b7e-4f43-9b6c-5f3f4d0e2a11");
	dre_buf b = { 0 };
	assert_int_equal(dre_avro_encode_tx_confirmed(&b, &in), DRE_OK);
	dre_arena       *a = dre_arena_alloc(0);
	dre_tx_confirmed out;
	assert_int_equal(
	    dre_avro_decode_tx_confirmed(&out, a, b.data, b.len), DRE_OK);
	assert_string_equal(out.event_id, in.event_id);
	assert_string_equal(out.tenant, "t");
	assert_int_equal(out.transaction_counter, 3);
	assert_int_equal(out.transaction_time, 1780000000001);
	assert_null(out.receipt_id);
	assert_string_equal(out.customer_id, "C-1");
	assert_string_equal(out.channel, "ONLINE");
	assert_null(out.pos_group_code);
	assert_int_equal(out.nlines, 2);
	assert_string_equal(out.lines[1].article_number, "CIG-1");
	assert_int_equal(out.lines[1].quantity, -1000);
	assert_int_equal(out.lines[0].line_net, 16198);
	assert_int_equal(out.npromotions, 2);
	assert_int_equal(out.promotions[0].amount, 1700);
	assert_int_equal(out.promotions[0].granted_amount, 1800);
	assert_int_equal(out.promotions[0].nbudget_ids, 2);
	assert_string_equal(out.promotions[0].budget_ids[1], "bud-2");
	assert_null(out.promotions[0].coupon_code);
	assert_string_equal(out.promotions[1].coupon_code, "WELCOME");
	assert_int_equal(out.promotions[1].nbudget_ids, 0);

	// The eventId convention: readable without the schema.
	char id[37];
	assert_int_equal(dre_avro_event_id(id, b.data, b.len), DRE_OK);
	assert_string_equal(id, in.event_id);
	assert_int_equal(dre_avro_event_id(id, b.data, 10), DRE_ECODEC);
	// A master-data event in place of a transaction is refused.
	dre_master_event m = sample();
	dre_buf_reset(&b);
	assert_int_equal(dre_avro_encode_master(&b, &m), DRE_OK);
	assert_int_equal(dre_avro_event_id(id, b.data, b.len), DRE_OK);
	assert_string_equal(id, m.event_id);
	assert_int_equal(
	    dre_avro_decode_tx_confirmed(&out, a, b.data, b.len), DRE_ECODEC);

	// Version 3 carries requestId, version 2 loyaltyPointsEarned: a
	// version 2 body is the same without the last field (no request id),
	// a version 1 body without the last two (0 points).
	in.schema_version = 3;
	in.loyalty_points = 92;
	in.request_id = "req-4711";
	dre_buf_reset(&b);
	assert_int_equal(dre_avro_encode_tx_confirmed(&b, &in), DRE_OK);
	assert_int_equal(
	    dre_avro_decode_tx_confirmed(&out, a, b.data, b.len), DRE_OK);
	assert_int_equal(out.loyalty_points, 92);
	assert_string_equal(out.request_id, "req-4711");
	in.loyalty_points = 0;
	in.request_id = NULL;
	dre_buf_reset(&b);
	assert_int_equal(dre_avro_encode_tx_confirmed(&b, &in), DRE_OK);
	assert_int_equal(b.data[b.len - 1], 0); // requestId null, one byte
	assert_int_equal(b.data[b.len - 2], 0); // the long 0, one byte
	uint64_t v2 = 0;
	assert_int_equal(
	    dre_avro_fingerprint("TransactionConfirmed_v2", &v2), DRE_OK);
	for (int i = 0; i < 8; i++)
		((uint8_t *) b.data)[2 + i] = (uint8_t) (v2 >> (8 * i));
	out.request_id = "stale";
	assert_int_equal(
	    dre_avro_decode_tx_confirmed(&out, a, b.data, b.len - 1), DRE_OK);
	assert_null(out.request_id);
	assert_int_equal(out.npromotions, 2);
	uint64_t v1 = 0;
	assert_int_equal(
	    dre_avro_fingerprint("TransactionConfirmed_v1", &v1), DRE_OK);
	for (int i = 0; i < 8; i++)
		((uint8_t *) b.data)[2 + i] = (uint8_t) (v1 >> (8 * i));
	out.loyalty_points = -1;
	assert_int_equal(
	    dre_avro_decode_tx_confirmed(&out, a, b.data, b.len - 2), DRE_OK);
	assert_int_equal(out.loyalty_points, 0);
	assert_null(out.request_id);
	assert_int_equal(out.npromotions, 2);
	assert_string_equal(out.promotions[1].coupon_code, "WELCOME");
	assert_string_equal(out.customer_id, "C-1");
	// ... and a version 1 header on a version 3 body is refused.
	assert_int_equal(
	    dre_avro_decode_tx_confirmed(&out, a, b.data, b.len), DRE_ECODEC);
	dre_arena_free(a);
	dre_buf_free(&b);
}

static void
test_import_finished_round_trip(void **state)
{
	(void) state;
	dre_arena                *a = dre_arena_alloc(0);
	dre_buf                   b = { 0 };
	dre_import_finished_event e = { .tenant = "t",
		.occurred_at = 1780000000000,
		.schema_version = 1,
		.job_id = "catalog-1",
		.entity = "Articles",
		.status = "FAILED",
		.total = 7,
		.succeeded = 5,
		.failed = 2,
		.error_message = "malformed JSON at line 3, column 20" };
	strcpy(e.event_id, "0b6f2a4e-6c1d-4f53-9a55-000000000009");
	assert_int_equal(dre_avro_encode_import_finished(&b, &e), DRE_OK);
	dre_import_finished_event o;
	assert_int_equal(
	    dre_avro_decode_import_finished(&o, a, b.data, b.len), DRE_OK);
	assert_string_equal(o.event_id, e.event_id);
	assert_string_equal(o.job_id, "catalog-1");
	assert_string_equal(o.entity, "Articles");
	assert_string_equal(o.status, "FAILED");
	assert_int_equal(o.total, 7);
	assert_int_equal(o.succeeded, 5);
	assert_int_equal(o.failed, 2);
	assert_string_equal(o.error_message, e.error_message);
	e.error_message = NULL; // optional
	e.status = "COMPLETED";
	dre_buf_reset(&b);
	assert_int_equal(dre_avro_encode_import_finished(&b, &e), DRE_OK);
	assert_int_equal(
	    dre_avro_decode_import_finished(&o, a, b.data, b.len), DRE_OK);
	assert_null(o.error_message);
	e.status = "SOMEHOW"; // not a symbol
	dre_buf_reset(&b);
	assert_int_not_equal(dre_avro_encode_import_finished(&b, &e), DRE_OK);
	dre_buf_free(&b);
	dre_arena_free(a);
}

static void
test_loyalty_event_round_trip(void **state)
{
	dre_loyalty_event in = { .tenant = "t",
		.occurred_at = 1780000000123,
		.schema_version = 1,
		.type = "LEVEL_CHANGED",
		.contact_id = "c-1",
		.points = 0,
		.points_balance = 1092,
		.level = "SILVER",
		.previous_level = "BASE",
		.transaction_id = "TX-1" };
	strcpy(in.event_id, "0b5c2a54-6b7e-4f43-9b6c-5f3f4d0e2a12");
	dre_buf b = { 0 };
	assert_int_equal(dre_avro_encode_loyalty_event(&b, &in), DRE_OK);
	dre_arena        *a = dre_arena_alloc(0);
	dre_loyalty_event out;
	assert_int_equal(
	    dre_avro_decode_loyalty_event(&out, a, b.data, b.len), DRE_OK);
	assert_string_equal(out.event_id, in.event_id);
	assert_string_equal(out.type, "LEVEL_CHANGED");
	assert_string_equal(out.contact_id, "c-1");
	assert_int_equal(out.points_balance, 1092);
	assert_string_equal(out.level, "SILVER");
	assert_string_equal(out.previous_level, "BASE");
	assert_string_equal(out.transaction_id, "TX-1");
	assert_null(out.receipt_id);
	assert_null(out.reference);
	in.type = "NO_SUCH_TYPE";
	dre_buf_reset(&b);
	assert_int_not_equal(dre_avro_encode_loyalty_event(&b, &in), DRE_OK);
	dre_arena_free(a);
	dre_buf_free(&b);
}

static void
test_return_event_round_trip(void **state)
{
	dre_return_event in = { .tenant = "t",
		.occurred_at = 1780000000123,
		.schema_version = 1,
		.order_id = "ORD-1",
		.return_id = "RET-1",
		.customer_id = "c-1",
		.refund_amount = 900,
		.points_deducted = 9,
		.points_balance = 41 };
	(void) state;
	strcpy(in.event_id, "0b5c2a54-6b7e-4f43-9b6c-5f3f4d0e2a13");
	dre_buf b = { 0 };
	assert_int_equal(dre_avro_encode_return_event(&b, &in), DRE_OK);
	dre_arena       *a = dre_arena_alloc(0);
	dre_return_event out;
	assert_int_equal(
	    dre_avro_decode_return_event(&out, a, b.data, b.len), DRE_OK);
	assert_string_equal(out.event_id, in.event_id);
	assert_string_equal(out.tenant, "t");
	assert_int_equal(out.occurred_at, 1780000000123);
	assert_int_equal(out.schema_version, 1);
	assert_string_equal(out.order_id, "ORD-1");
	assert_string_equal(out.return_id, "RET-1");
	assert_string_equal(out.customer_id, "c-1");
	assert_int_equal(out.refund_amount, 900);
	assert_int_equal(out.points_deducted, 9);
	assert_int_equal(out.points_balance, 41);
	// No member: customerId null.
	in.customer_id = NULL;
	dre_buf_reset(&b);
	assert_int_equal(dre_avro_encode_return_event(&b, &in), DRE_OK);
	assert_int_equal(
	    dre_avro_decode_return_event(&out, a, b.data, b.len), DRE_OK);
	assert_null(out.customer_id);
	// Another event's bytes are not a return.
	dre_loyalty_event le;
	assert_int_not_equal(
	    dre_avro_decode_loyalty_event(&le, a, b.data, b.len), DRE_OK);
	dre_arena_free(a);
	dre_buf_free(&b);
}

static dre_budget_status_event
sample_status(void)
{
	dre_budget_status_event s = { .tenant = "t",
		.occurred_at = 1,
		.schema_version = 1,
		.budget_id = "bud-1",
		.version = 12,
		.status = "EXHAUSTED",
		.budget_name = "Summer",
		.total_amount = 100000,
		.consumed_amount = 100001,
		.currency = "EUR" };
	strcpy(s.event_id, "e-1");
	return s;
}

static void
test_sidefx_and_budget_round_trip(void **state)
{
	dre_sfx_budget sb[1] = { { "bud-1", 500, "EUR", "EXHAUSTED", 7 } };
	dre_sfx_coupon sc[1] = { { "ABC", "ct-1", NULL, 5 } };
	dre_sfx_result r = { .tenant = "t",
		.occurred_at = 9,
		.schema_version = 1,
		.transaction_id = "TX",
		.transaction_counter = 1,
		.source_event_id = "src",
		.service = "budget",
		.status = "SUCCESS",
		.attempts = 2,
		.budgets = sb,
		.nbudgets = 1,
		.coupons_redeemed = 1,
		.loyalty_points = 42,
		.coupons = sc,
		.ncoupons = 1 };
	strcpy(r.event_id, "11111111-2222-8333-8444-555555555555");
	dre_buf b = { 0 };
	assert_int_equal(dre_avro_encode_sfx_result(&b, &r), DRE_OK);
	dre_arena     *a = dre_arena_alloc(0);
	dre_sfx_result o;
	assert_int_equal(
	    dre_avro_decode_sfx_result(&o, a, b.data, b.len), DRE_OK);
	assert_string_equal(o.status, "SUCCESS");
	assert_int_equal(o.attempts, 2);
	assert_null(o.reason);
	assert_int_equal(o.nbudgets, 1);
	assert_string_equal(o.budgets[0].budget_status, "EXHAUSTED");
	assert_int_equal(o.budgets[0].budget_version, 7);
	assert_int_equal(o.ncoupons, 1);
	assert_null(o.coupons[0].customer_id);
	assert_int_equal(o.loyalty_points, 42);
	r.status = "MAYBE"; // not a symbol
	dre_buf_reset(&b);
	assert_int_not_equal(dre_avro_encode_sfx_result(&b, &r), DRE_OK);

	dre_budget_status_event s = sample_status();
	dre_buf_reset(&b);
	assert_int_equal(dre_avro_encode_budget_status(&b, &s), DRE_OK);
	dre_budget_status_event so;
	assert_int_equal(
	    dre_avro_decode_budget_status(&so, a, b.data, b.len), DRE_OK);
	assert_string_equal(so.status, "EXHAUSTED");
	assert_int_equal(so.version, 12);
	assert_int_equal(so.consumed_amount, 100001);

	dre_budget_event e = { .tenant = "t",
		.occurred_at = 1,
		.schema_version = 1,
		.type = "BUDGET_THRESHOLD_CROSSED",
		.budget_id = "bud-1",
		.budget_name = "Summer",
		.threshold_pct = 80,
		.total_amount = 100000,
		.consumed_amount = 80000,
		.currency = "EUR",
		.transaction_id = "TX-9" };
	strcpy(e.event_id, "e-2");
	dre_buf_reset(&b);
	assert_int_equal(dre_avro_encode_budget_event(&b, &e), DRE_OK);
	dre_budget_event eo;
	assert_int_equal(
	    dre_avro_decode_budget_event(&eo, a, b.data, b.len), DRE_OK);
	assert_int_equal(eo.threshold_pct, 80);
	assert_string_equal(eo.transaction_id, "TX-9");
	e.threshold_pct = -1;
	e.type = "BUDGET_EXHAUSTED";
	e.transaction_id = NULL;
	dre_buf_reset(&b);
	assert_int_equal(dre_avro_encode_budget_event(&b, &e), DRE_OK);
	assert_int_equal(
	    dre_avro_decode_budget_event(&eo, a, b.data, b.len), DRE_OK);
	assert_int_equal(eo.threshold_pct, -1);
	assert_null(eo.transaction_id);
	assert_string_equal(eo.type, "BUDGET_EXHAUSTED");
	dre_arena_free(a);
	dre_buf_free(&b);
}

// Confluent framing: 00 + the registry id (big-endian) + the same body;
// both framings decode, the event id reads from both, an unregistered
// schema cannot be written and an unknown id does not decode.
static void
test_confluent_framing(void **state)
{
	(void) state;
	dre_arena              *a = dre_arena_alloc(0);
	dre_buf                 so = { 0 }, cf = { 0 };
	dre_budget_status_event s = sample_status();
	assert_int_equal(dre_avro_encode_budget_status(&so, &s), DRE_OK);
	dre_avro_write_confluent(true);
	assert_int_not_equal(dre_avro_encode_budget_status(&cf, &s), DRE_OK);
	assert_int_equal(
	    dre_avro_set_registry_id("BudgetStatus", 0x01020304), DRE_OK);
	assert_int_equal(
	    dre_avro_set_registry_id("NoSuchSchema", 1), DRE_EINVAL);
	dre_buf_reset(&cf);
	assert_int_equal(dre_avro_encode_budget_status(&cf, &s), DRE_OK);
	dre_avro_write_confluent(false);
	const uint8_t hdr[] = { 0x00, 0x01, 0x02, 0x03, 0x04 };
	assert_int_equal(cf.len, so.len - 10 + 5);
	assert_memory_equal(cf.data, hdr, sizeof(hdr));
	assert_memory_equal(cf.data + 5, so.data + 10, so.len - 10);
	dre_budget_status_event o;
	assert_int_equal(
	    dre_avro_decode_budget_status(&o, a, cf.data, cf.len), DRE_OK);
	assert_string_equal(o.budget_name, "Summer");
	assert_int_equal(o.consumed_amount, 100001);
	char id[37];
	assert_int_equal(dre_avro_event_id(id, cf.data, cf.len), DRE_OK);
	assert_string_equal(id, "e-1");
	// An id no schema has, and a body for another record: not decoded.
	cf.data[4] = 0x05;
	assert_int_not_equal(
	    dre_avro_decode_budget_status(&o, a, cf.data, cf.len), DRE_OK);
	cf.data[4] = 0x04;
	dre_budget_event be;
	assert_int_not_equal(
	    dre_avro_decode_budget_event(&be, a, cf.data, cf.len), DRE_OK);
	dre_buf_free(&so);
	dre_buf_free(&cf);
	dre_arena_free(a);
}

static void
test_every_schema_loads(void **state)
{
	static const char *const names[] = { "MasterDataChanged",
		"TransactionConfirmed", "SideEffectResult", "BudgetStatus",
		"BudgetEvent", "LoyaltyEvent", "TransactionConfirmed_v1",
		"TransactionConfirmed_v2", "TransactionReturned", NULL };
	uint64_t                 fps[10];
	for (int i = 0; names[i] != NULL; i++) {
		assert_non_null(dre_avro_schema_json(names[i]));
		assert_int_equal(
		    dre_avro_fingerprint(names[i], &fps[i]), DRE_OK);
		for (int k = 0; k < i; k++)
			assert_true(fps[k] != fps[i]);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc64_known_values),
		cmocka_unit_test(test_canonical_form),
		cmocka_unit_test(test_master_schema),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_schema_versions),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_tx_confirmed_round_trip),
		cmocka_unit_test(test_sidefx_and_budget_round_trip),
		cmocka_unit_test(test_loyalty_event_round_trip),
		cmocka_unit_test(test_return_event_round_trip),
		cmocka_unit_test(test_import_finished_round_trip),
		cmocka_unit_test(test_every_schema_loads),
		cmocka_unit_test(test_confluent_framing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
