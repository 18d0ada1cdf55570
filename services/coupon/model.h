// coupon/model.h -- the coupon service's documents: coupon types, codes,
// reservations and code batches, their JSON form (the same on the wire and
// in RocksDB) and the validation of what clients send. Pure.
#ifndef CP_MODEL_H
#define CP_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/json.h"
#include "dre/jsonw.h"
#include "dre/promo.h" // dre_promo_errors: the shared validation list
#include "rules.h"

// A coupon type (/api/v1/CouponTypes).
typedef struct {
	char          id[DRE_UUID_LEN + 1];
	char          name[CP_NAME_BYTES];
	const char   *description; // NULL or arena
	char          prefix[CP_PREFIX_MAX + 1];
	int64_t       code_length; // random symbols after the prefix
	int64_t       validity_days; // issued codes: valid this long; 0 = none
	int64_t       created_at, updated_at;
	cp_type_rules r;
} cp_type;

// cp_type_parse reads a type document. With base (PATCH, or the stored
// document for PUT) members absent from doc keep base's value when patch is
// set; PUT and POST take defaults. Problems go to errs (may be NULL for a
// stored document); DRE_EINVAL when there was any. Strings in a.
dre_err cp_type_parse(cp_type *t, dre_arena *a, const dre_json *doc,
    const cp_type *base, bool patch, dre_promo_errors *errs);
// cp_type_write appends the type's JSON document (minorVersion not
// included); with links, the n promotion_ids are added as "promotionIds".
void cp_type_write(dre_buf *out, const cp_type *t, bool links,
    const char *const *promotion_ids, size_t n);

// How a code came to be.
#define CP_ORIGIN_BATCH         "BATCH"
#define CP_ORIGIN_IMPORT        "IMPORT"
#define CP_ORIGIN_ISSUE         "ISSUE"
#define CP_ORIGIN_POST_PURCHASE "POST_PURCHASE"

// A coupon code (/api/v1/CouponCodes).
typedef struct {
	char            code[CP_CODE_MAX + 1];
	char            type_id[DRE_UUID_LEN + 1];
	cp_state        state;
	char            customer[CP_ID_BYTES]; // "" = anyone
	int64_t         valid_from, valid_to; // 0 = open
	int64_t         redemptions;
	int64_t         held; // reservations holding it
	char            res_id[DRE_UUID_LEN + 1]; // INDIVIDUAL: current hold
	char            res_tx[CP_ID_BYTES];
	int64_t         res_until;
	const char     *origin; // CP_ORIGIN_*, static
	char            batch_id[DRE_UUID_LEN + 1];
	int64_t         issued_at;
	char            issuing_promotion[CP_ID_BYTES];
	char            issuing_tx[CP_ID_BYTES];
	const char     *issue_reason; // NULL or arena
	const dre_json *metadata; // the client's JSON value, NULL or arena
	int64_t         created_at, updated_at, activated_at, redeemed_at;
} cp_code;

// cp_code_parse reads a stored code document.
dre_err cp_code_parse(cp_code *c, dre_arena *a, const char *doc, size_t len);
void    cp_code_write(dre_buf *out, const cp_code *c);
// cp_code_view fills the decision view of c.
void cp_code_view(const cp_code *c, cp_code_rules *v);

typedef enum {
	CP_HOLD_HELD = 0,
	CP_HOLD_REDEEMED,
	CP_HOLD_RELEASED,
	CP_HOLD_EXPIRED,
} cp_hold_state;

const char *cp_hold_state_name(cp_hold_state s);

// A reservation of a code by a transaction.
typedef struct {
	char          id[DRE_UUID_LEN + 1];
	char          code[CP_CODE_MAX + 1];
	char          type_id[DRE_UUID_LEN + 1];
	char          tx[CP_ID_BYTES];
	char          customer[CP_ID_BYTES];
	cp_hold_state state;
	int64_t       created_at, expires_at, ended_at;
} cp_resv;

dre_err cp_resv_parse(cp_resv *r, dre_arena *a, const char *doc, size_t len);
void    cp_resv_write(dre_buf *out, const cp_resv *r);

typedef enum {
	CP_BATCH_PENDING = 0,
	CP_BATCH_GENERATING,
	CP_BATCH_COMPLETED,
	CP_BATCH_FAILED,
} cp_batch_state;

const char *cp_batch_state_name(cp_batch_state s);

#define CP_BATCH_MAX 1000000

// A background code generation job (/api/v1/CouponCodeBatches).
typedef struct {
	char           id[DRE_UUID_LEN + 1];
	char           type_id[DRE_UUID_LEN + 1];
	int64_t        number; // numberOfCodes
	int64_t        generated; // committed so far
	cp_batch_state state;
	char           error[160];
	int64_t        created_at, started_at, completed_at;
} cp_batch;

dre_err cp_batch_parse(cp_batch *b, dre_arena *a, const char *doc, size_t len);
void    cp_batch_write(dre_buf *out, const cp_batch *b);

// ETags (issue 10.7): a hash (FNV-1a, 64 bits, 16 hex digits) of the
// entity's stored form as written from its parsed fields. Codes change
// through the tills, the sweeper and the confirm applier as much as through
// /api/v1, and their stored form is what a read answers: a tag of the
// content moves with every change, whichever path made it (updatedAt at
// least changes), without a revision member in the documents. A type's
// promotionIds, learnt from the catalog, are not part of it: the tag covers
// what an edit can change.
#define CP_ETAG_BYTES 17
void cp_type_etag(char *out, const cp_type *t);
void cp_code_etag(char *out, const cp_code *c);
void cp_batch_etag(char *out, const cp_batch *b);

// Field readers shared with the handlers. Each records a problem in errs
// under target and returns false when the member is present but wrong.
//
// cp_json_str copies a string member of 1..max characters into out[cap];
// absent or null leaves out untouched and sets *present false.
bool cp_json_str(char *out, size_t cap, const dre_json *obj, const char *key,
    size_t max, const char *target, dre_promo_errors *errs, bool *present);
// cp_err adds one problem to errs (NULL is fine).
void cp_err(dre_promo_errors *errs, const char *target, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
