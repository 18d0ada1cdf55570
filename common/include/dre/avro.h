// avro.h -- Avro events (avro-c) in single-object encoding.
//
// Every Kafka value is C3 01 + the 8-byte little-endian CRC-64-AVRO
// fingerprint of the writer schema's Parsing Canonical Form + the Avro binary
// body. The schemas are proto/*.avsc, embedded at build time.
#ifndef DRE_AVRO_H
#define DRE_AVRO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/err.h"

// dre.MasterDataChanged (proto/MasterDataChanged.avsc).
typedef struct {
	char        event_id[37];
	const char *tenant;
	int64_t     occurred_at; // epoch millis
	int32_t     schema_version;
	const char *entity_kind; // PROMOTION | ARTICLE | POS_GROUP |
	                         // ARTICLE_GROUP | TENANT_SETTINGS
	const char *entity_id;
	const char *op; // UPSERT | DELETE
	int64_t     version; // catalog sequence number
	const char *document; // JSON document, NULL on DELETE
	size_t      document_len;
} dre_master_event;

// dre_avro_encode_master appends the single-object encoding of e to out.
dre_err dre_avro_encode_master(dre_buf *out, const dre_master_event *e);
// dre_avro_decode_master decodes data; strings are copied into a.
// DRE_ECODEC on a wrong header, unknown fingerprint or bad body.
dre_err dre_avro_decode_master(
    dre_master_event *e, dre_arena *a, const void *data, size_t len);

// dre.TransactionConfirmed (proto/TransactionConfirmed.avsc). Amounts are
// minor units of currency, quantities thousandths.
typedef struct {
	const char *line_reference;
	const char *article_number;
	int64_t     quantity;
	int64_t     unit_price;
	int64_t     line_total;
	int64_t     line_discount;
	int64_t     line_net;
} dre_tx_line;

typedef struct {
	const char        *promotion_id;
	const char        *promotion_name;
	const char        *promotion_type;
	int64_t            amount; // confirmed
	int64_t            granted_amount;
	const char        *coupon_code; // NULL = none
	const char *const *budget_ids;
	size_t             nbudget_ids;
} dre_tx_promotion;

typedef struct {
	char                    event_id[37];
	const char             *tenant;
	int64_t                 occurred_at;
	int32_t                 schema_version;
	const char             *transaction_id;
	int64_t                 transaction_counter;
	int64_t                 evaluated_at;
	int64_t                 transaction_time;
	const char             *receipt_id; // NULL = absent (also below)
	const char             *customer_id;
	const char             *channel;
	const char             *pos_group_id;
	const char             *pos_group_code;
	const char             *currency;
	int64_t                 subtotal;
	int64_t                 total_discount;
	int64_t                 grand_total;
	int64_t                 loyalty_points; // loyaltyPointsEarned (v2)
	const char             *request_id; // requestId (v3); NULL = absent
	const dre_tx_line      *lines;
	size_t                  nlines;
	const dre_tx_promotion *promotions;
	size_t                  npromotions;
} dre_tx_confirmed;

dre_err dre_avro_encode_tx_confirmed(dre_buf *out, const dre_tx_confirmed *e);
dre_err dre_avro_decode_tx_confirmed(
    dre_tx_confirmed *e, dre_arena *a, const void *data, size_t len);

// dre.SideEffectResult (proto/SideEffectResult.avsc).
typedef struct {
	const char *budget_id;
	int64_t     amount;
	const char *currency;
	const char *budget_status; // ACTIVE | EXHAUSTED
	int64_t     budget_version;
} dre_sfx_budget;

typedef struct {
	const char *code;
	const char *coupon_type_id;
	const char *customer_id; // NULL = none
	int64_t     issued_at;
} dre_sfx_coupon;

typedef struct {
	char                  event_id[37];
	const char           *tenant;
	int64_t               occurred_at;
	int32_t               schema_version;
	const char           *transaction_id;
	int64_t               transaction_counter;
	const char           *source_event_id;
	const char           *service;
	const char           *status; // SUCCESS | FAILED | SKIPPED
	int32_t               attempts;
	const char           *reason; // NULL = none
	const dre_sfx_budget *budgets;
	size_t                nbudgets;
	int32_t               coupons_redeemed;
	int64_t               loyalty_points;
	const dre_sfx_coupon *coupons;
	size_t                ncoupons;
} dre_sfx_result;

dre_err dre_avro_encode_sfx_result(dre_buf *out, const dre_sfx_result *e);
dre_err dre_avro_decode_sfx_result(
    dre_sfx_result *e, dre_arena *a, const void *data, size_t len);

// dre.BudgetStatus (proto/BudgetStatus.avsc).
typedef struct {
	char        event_id[37];
	const char *tenant;
	int64_t     occurred_at;
	int32_t     schema_version;
	const char *budget_id;
	int64_t     version;
	const char *status; // ACTIVE | EXHAUSTED | DELETED
	const char *budget_name;
	int64_t     total_amount;
	int64_t     consumed_amount;
	const char *currency;
} dre_budget_status_event;

dre_err dre_avro_encode_budget_status(
    dre_buf *out, const dre_budget_status_event *e);
dre_err dre_avro_decode_budget_status(
    dre_budget_status_event *e, dre_arena *a, const void *data, size_t len);

// dre.ImportJobFinished (proto/ImportJobFinished.avsc).
typedef struct {
	char        event_id[37];
	const char *tenant;
	int64_t     occurred_at;
	int32_t     schema_version;
	const char *job_id;
	const char *entity;
	const char *status; // COMPLETED | COMPLETED_WITH_ERRORS | FAILED | ...
	int64_t     total;
	int64_t     succeeded;
	int64_t     failed;
	const char *error_message; // may be NULL
} dre_import_finished_event;

dre_err dre_avro_encode_import_finished(
    dre_buf *out, const dre_import_finished_event *e);
dre_err dre_avro_decode_import_finished(
    dre_import_finished_event *e, dre_arena *a, const void *data, size_t len);

// dre.BudgetEvent (proto/BudgetEvent.avsc).
typedef struct {
	char        event_id[37];
	const char *tenant;
	int64_t     occurred_at;
	int32_t     schema_version;
	const char *type; // BUDGET_THRESHOLD_CROSSED | BUDGET_EXHAUSTED
	const char *budget_id;
	const char *budget_name;
	int32_t     threshold_pct; // < 0 = absent
	int64_t     total_amount;
	int64_t     consumed_amount;
	const char *currency;
	const char *transaction_id; // NULL = absent
} dre_budget_event;

dre_err dre_avro_encode_budget_event(dre_buf *out, const dre_budget_event *e);
dre_err dre_avro_decode_budget_event(
    dre_budget_event *e, dre_arena *a, const void *data, size_t len);

// dre.LoyaltyEvent (proto/LoyaltyEvent.avsc). NULL strings are null.
typedef struct {
	char        event_id[37];
	const char *tenant;
	int64_t     occurred_at;
	int32_t     schema_version;
	const char *type; // POINTS_EARNED | LEVEL_CHANGED | ...
	const char *contact_id;
	int64_t     points;
	int64_t     points_balance;
	const char *level;
	const char *previous_level;
	const char *transaction_id;
	const char *receipt_id;
	const char *reference;
} dre_loyalty_event;

dre_err dre_avro_encode_loyalty_event(
    dre_buf *out, const dre_loyalty_event *e);
dre_err dre_avro_decode_loyalty_event(
    dre_loyalty_event *e, dre_arena *a, const void *data, size_t len);

// dre.TransactionReturned (proto/TransactionReturned.avsc). NULL customer
// is null.
typedef struct {
	char        event_id[37];
	const char *tenant;
	int64_t     occurred_at;
	int32_t     schema_version;
	const char *order_id;
	const char *return_id;
	const char *customer_id;
	int64_t     refund_amount; // minor units
	int64_t     points_deducted;
	int64_t     points_balance;
} dre_return_event;

dre_err dre_avro_encode_return_event(dre_buf *out, const dre_return_event *e);
dre_err dre_avro_decode_return_event(
    dre_return_event *e, dre_arena *a, const void *data, size_t len);

// dre_avro_event_id reads the eventId of any DRE event without knowing its
// schema: by convention (proto/EVENTS.md) eventId is the first field of
// every event record, so it is the first string of the body. out holds 37
// bytes. DRE_ECODEC when data is not a single-object encoded DRE event.
dre_err dre_avro_event_id(char *out, const void *data, size_t len);

// dre.CouponEvent (proto/CouponEvent.avsc). NULL strings and a negative
// count are written as null.
typedef struct {
	char        event_id[37];
	const char *tenant;
	int64_t     occurred_at; // epoch millis
	int32_t     schema_version;
	const char *type; // COUPON_REDEEMED | COUPON_EXPIRED | ...
	const char *code;
	const char *coupon_type_id;
	const char *customer_id;
	const char *transaction_id;
	const char *reservation_id;
	const char *batch_id;
	int64_t     count; // < 0 = null
	const char *promotion_id;
	const char *reason;
} dre_coupon_event;

dre_err dre_avro_encode_coupon(dre_buf *out, const dre_coupon_event *e);
dre_err dre_avro_decode_coupon(
    dre_coupon_event *e, dre_arena *a, const void *data, size_t len);

// Confluent schema-registry wire format (events.format=confluent): 0x00,
// the schema's registry id (4 bytes, big-endian), the Avro body. Decoding
// reads both formats; dre_avro_set_registry_id tells it (and the encoder)
// the id the registry gave schema name ("TransactionConfirmed");
// dre_avro_write_confluent(true) makes every encoder write the Confluent
// form (an unregistered schema then fails to encode).
dre_err dre_avro_set_registry_id(const char *name, int32_t id);
void    dre_avro_write_confluent(bool on);

// dre_avro_schema_json returns the embedded .avsc text of a schema by file
// name without extension ("MasterDataChanged"), or NULL.
const char *dre_avro_schema_json(const char *name);
// dre_avro_fingerprint returns the CRC-64-AVRO fingerprint of the schema's
// Parsing Canonical Form.
dre_err dre_avro_fingerprint(const char *name, uint64_t *fp);

// dre_avro_canonical appends the Parsing Canonical Form of the schema
// json[0..len) to out. DRE_ECODEC when it is not a valid schema.
dre_err dre_avro_canonical(dre_buf *out, const char *json, size_t len);
// dre_avro_crc64 returns the CRC-64-AVRO (Rabin) fingerprint of data.
uint64_t dre_avro_crc64(const void *data, size_t len);

#endif
