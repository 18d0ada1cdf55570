// avro.h -- Avro events (avro-c) in single-object encoding.
//
// Every Kafka value is C3 01 + the 8-byte little-endian CRC-64-AVRO
// fingerprint of the writer schema's Parsing Canonical Form + the Avro binary
// body. The schemas are proto/*.avsc, embedded at build time.
#ifndef DRE_AVRO_H
#define DRE_AVRO_H

#include <stddef.h>
#include <stdint.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/err.h"

// dre.MasterDataChanged (proto/MasterDataChanged.avsc).
typedef struct {
	char        event_id[37];
	const char *tenant;
	int64_t     occurred_at;    // epoch millis
	int32_t     schema_version;
	const char *entity_kind;    // PROMOTION | ARTICLE | POS_GROUP | ARTICLE_GROUP
	const char *entity_id;
	const char *op;             // UPSERT | DELETE
	int64_t     version;        // catalog sequence number
	const char *document;       // JSON document, NULL on DELETE
	size_t      document_len;
} dre_master_event;

// dre_avro_encode_master appends the single-object encoding of e to out.
dre_err dre_avro_encode_master(dre_buf *out, const dre_master_event *e);
// dre_avro_decode_master decodes data; strings are copied into a.
// DRE_ECODEC on a wrong header, unknown fingerprint or bad body.
dre_err dre_avro_decode_master(dre_master_event *e, dre_arena *a,
    const void *data, size_t len);

// dre.CouponEvent (proto/CouponEvent.avsc). NULL strings and a negative
// count are written as null.
typedef struct {
	char        event_id[37];
	const char *tenant;
	int64_t     occurred_at;    // epoch millis
	int32_t     schema_version;
	const char *type;           // COUPON_REDEEMED | COUPON_EXPIRED | ...
	const char *code;
	const char *coupon_type_id;
	const char *customer_id;
	const char *transaction_id;
	const char *reservation_id;
	const char *batch_id;
	int64_t     count;          // < 0 = null
	const char *promotion_id;
	const char *reason;
} dre_coupon_event;

dre_err dre_avro_encode_coupon(dre_buf *out, const dre_coupon_event *e);
dre_err dre_avro_decode_coupon(dre_coupon_event *e, dre_arena *a,
    const void *data, size_t len);

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
