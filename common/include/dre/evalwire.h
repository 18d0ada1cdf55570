// evalwire.h -- the POS wire contract (seed 002) <-> protobuf: validation and
// conversion of EvaluateRequest JSON, rendering of EvaluateResponseV2 JSON.
// Used by the gateway and by in-process tests, so both produce the same bytes.
#ifndef DRE_EVALWIRE_H
#define DRE_EVALWIRE_H

#include <stdbool.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/err.h"
#include "dre/json.h"
#include "confirm.pb-c.h"
#include "evaluate.pb-c.h"

#define DRE_EVAL_MINOR_VERSION 8
#define DRE_EVAL_MAX_ITEMS     1000

// A request rejected before it reaches the engine (PRODUCT-DECISIONS §1).
typedef struct {
	int         status; // 400 or 413
	const char *code; // VALIDATION_FAILED | PAYLOAD_TOO_LARGE | ...
	char        message[200];
	char        target[128]; // JSON path of the first offending field
} dre_wire_error;

// At most this many unknown members are named (ignored_fields holds one
// more when there were more).
#define DRE_EVAL_MAX_IGNORED 20

// dre_evalreq_parse validates the parsed body (the top-level object holding
// "request") against the seed's field tables and builds the protobuf
// request, every part allocated in a (pack it with
// dre__evaluate_request__pack; never free it with protobuf-c). simulate marks
// /v2/simulate (includeInactive and includeMissedPromotions are honoured only
// there). q->ignored_fields names the members the seed's tables do not
// have (JSON paths, DRE_EVAL_MAX_IGNORED and one more at most): POS requests
// are lenient. DRE_EINVAL with *err filled on the first violation.
dre_err dre_evalreq_parse(Dre__EvaluateRequest **reqp, dre_arena *a,
    const dre_json *root, bool simulate, dre_wire_error *err);

// dre_confirmreq_parse validates a /v2/confirm body (seed 002
// ConfirmRequest: header.transactionId and header.transactionCounter
// required, transactionId equal to the header's, appliedPromotions[] of
// {promotionId, couponCode, totalDiscount, discountAmount} each promotion at
// most once, optional posGroupId/posGroupCode, customerId, timestamp,
// items[]) and builds the protobuf request in a, like dre_evalreq_parse.
dre_err dre_confirmreq_parse(Dre__ConfirmRequest **reqp, dre_arena *a,
    const dre_json *root, dre_wire_error *err);

// dre_confirmresp_write appends the ConfirmResponse JSON
// { transactionId, confirmed, message }.
void dre_confirmresp_write(dre_buf *out, const Dre__ConfirmResponse *r);

// dre_evalresp_write appends the EvaluateResponseV2 JSON of r to out, field
// for field as seed 002 shows it.
void dre_evalresp_write(dre_buf *out, const Dre__EvaluateResponse *r);

// dre_heartbeat_write appends the heartbeat JSON (PRODUCT-DECISIONS §6).
void dre_heartbeat_write(dre_buf *out, const Dre__HeartbeatResponse *h);

// dre_error_body_write appends the error body of PRODUCT-DECISIONS §1.
// target may be NULL (then omitted).
void dre_error_body_write(
    dre_buf *out, const char *code, const char *message, const char *target);

// One entry of the error body's details[] (all borrowed; target may be NULL).
typedef struct {
	const char *code;
	const char *message;
	const char *target;
} dre_error_detail;

// dre_error_body_write_details is dre_error_body_write with a details[]
// array (omitted when ndetails is 0).
void dre_error_body_write_details(dre_buf *out, const char *code,
    const char *message, const char *target, const dre_error_detail *details,
    size_t ndetails);

#endif
