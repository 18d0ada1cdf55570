// avro_seeds.c -- writes one single-object encoded event of each schema
// (and a MasterDataChanged v1 body) into a directory: the seed corpus of
// fuzz_avro. Run by hand (tests/fuzz/make_corpus.py calls it); the corpus
// itself is checked in.
#include <stdio.h>
#include <string.h>

#include "dre/avro.h"
#include "dre/buf.h"

static int
put(const char *dir, const char *name, dre_err err, dre_buf *b)
{
	char  path[512];
	FILE *f;

	if (err != DRE_OK) {
		fprintf(stderr, "%s: %s\n", name, dre_strerror(err));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) == NULL
	    || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0) {
		perror(path);
		return 1;
	}
	dre_buf_reset(b);
	return 0;
}

int
main(int argc, char **argv)
{
	dre_buf b = { 0 };
	int     rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];

	dre_master_event m
	    = { .event_id = "0b6f2a4e-6c1d-4f53-9a55-000000000001",
		      .tenant = "default",
		      .occurred_at = 1780000000000,
		      .schema_version = 2,
		      .entity_kind = "PROMOTION",
		      .entity_id = "10000000-0000-4000-8000-000000000001",
		      .op = "UPSERT",
		      .version = 42,
		      .document = "{\"id\":\"x\",\"name\":\"n\"}",
		      .document_len = 22 };
	rc |= put(dir, "master_upsert", dre_avro_encode_master(&b, &m), &b);
	m.op = "DELETE";
	m.entity_kind = "TENANT_SETTINGS";
	m.document = NULL;
	m.document_len = 0;
	rc |= put(dir, "master_delete", dre_avro_encode_master(&b, &m), &b);

	dre_tx_line lines[2]
	    = { { "L1", "ART-1001", 2000, 8999, 17998, 1800, 16198 },
		      { "L2", "CIG-1001", -1000, 2500, -2500, 0, -2500 } };
	const char      *bids[] = { "B1", "B2" };
	dre_tx_promotion promos[1]
	    = { { "10000000-0000-4000-8000-000000000001",
		"Electronics 10% Off", "ARTICLE", 1800, 1800, "CPN-1", bids,
		2 } };
	dre_tx_confirmed t
	    = { .event_id = "0b6f2a4e-6c1d-4f53-9a55-000000000002",
		      .tenant = "default",
		      .occurred_at = 1780000000000,
		      .schema_version = 1,
		      .transaction_id = "TXN-1",
		      .transaction_counter = 3,
		      .evaluated_at = 1780000000000,
		      .transaction_time = 1780000000000,
		      .receipt_id = "R-1",
		      .customer_id = "C-1",
		      .channel = "STORE",
		      .pos_group_id = "60000000-0000-4000-8000-000000000001",
		      .pos_group_code = "STORE-001",
		      .currency = "EUR",
		      .subtotal = 15498,
		      .total_discount = 1800,
		      .grand_total = 13698,
		      .lines = lines,
		      .nlines = 2,
		      .promotions = promos,
		      .npromotions = 1 };
	rc |= put(
	    dir, "tx_confirmed", dre_avro_encode_tx_confirmed(&b, &t), &b);

	dre_sfx_budget bud[1] = { { "B1", 1800, "EUR", "ACTIVE", 7 } };
	dre_sfx_coupon cps[1] = { { "CODE-1", "CT-1", "C-1", 1780000000000 } };
	dre_sfx_result s = { .event_id
		= "0b6f2a4e-6c1d-4f53-9a55-000000000003",
		.tenant = "default",
		.occurred_at = 1780000000000,
		.schema_version = 1,
		.transaction_id = "TXN-1",
		.transaction_counter = 3,
		.source_event_id = "0b6f2a4e-6c1d-4f53-9a55-000000000002",
		.service = "budget",
		.status = "SUCCESS",
		.attempts = 1,
		.reason = NULL,
		.budgets = bud,
		.nbudgets = 1,
		.coupons_redeemed = 1,
		.loyalty_points = 250,
		.coupons = cps,
		.ncoupons = 1 };
	rc |= put(dir, "sfx_result", dre_avro_encode_sfx_result(&b, &s), &b);

	dre_budget_status_event bs
	    = { .event_id = "0b6f2a4e-6c1d-4f53-9a55-000000000004",
		      .tenant = "default",
		      .occurred_at = 1780000000000,
		      .schema_version = 1,
		      .budget_id = "B1",
		      .version = 9,
		      .status = "EXHAUSTED",
		      .budget_name = "Budget 1",
		      .total_amount = 100000,
		      .consumed_amount = 100000,
		      .currency = "EUR" };
	rc |= put(
	    dir, "budget_status", dre_avro_encode_budget_status(&b, &bs), &b);

	dre_budget_event be
	    = { .event_id = "0b6f2a4e-6c1d-4f53-9a55-000000000005",
		      .tenant = "default",
		      .occurred_at = 1780000000000,
		      .schema_version = 1,
		      .type = "BUDGET_THRESHOLD_CROSSED",
		      .budget_id = "B1",
		      .budget_name = "Budget 1",
		      .threshold_pct = 80,
		      .total_amount = 100000,
		      .consumed_amount = 80000,
		      .currency = "EUR",
		      .transaction_id = "TXN-1" };
	rc |= put(
	    dir, "budget_event", dre_avro_encode_budget_event(&b, &be), &b);

	dre_coupon_event ce
	    = { .event_id = "0b6f2a4e-6c1d-4f53-9a55-000000000006",
		      .tenant = "default",
		      .occurred_at = 1780000000000,
		      .schema_version = 1,
		      .type = "COUPON_REDEEMED",
		      .code = "CODE-1",
		      .coupon_type_id = "CT-1",
		      .customer_id = "C-1",
		      .transaction_id = "TXN-1",
		      .reservation_id = NULL,
		      .batch_id = NULL,
		      .count = -1,
		      .promotion_id = "10000000-0000-4000-8000-000000000001",
		      .reason = NULL };
	rc |= put(dir, "coupon_event", dre_avro_encode_coupon(&b, &ce), &b);

	dre_return_event re
	    = { .event_id = "0b6f2a4e-6c1d-4f53-9a55-000000000007",
		      .tenant = "default",
		      .occurred_at = 1780000000000,
		      .schema_version = 1,
		      .order_id = "ORD-1",
		      .return_id = "RET-1",
		      .customer_id = "C-1",
		      .refund_amount = 900,
		      .points_deducted = 9,
		      .points_balance = 9 };
	rc |= put(
	    dir, "return_event", dre_avro_encode_return_event(&b, &re), &b);
	dre_buf_free(&b);
	return rc;
}
