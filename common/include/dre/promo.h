// promo.h -- the promotion document of PRODUCT-DECISIONS §3: parse,
// validate, normalise. Shared by the catalog (validation, storage) and the
// evaluator (compiling its index).
#ifndef DRE_PROMO_H
#define DRE_PROMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/arena.h"
#include "dre/buf.h"
#include "dre/err.h"
#include "dre/json.h"
#include "dre/money.h"

typedef enum {
	DRE_PT_ARTICLE = 0,
	DRE_PT_RECEIPT,
	DRE_PT_LOYALTY,
	DRE_PT_BUNDLE,
	DRE_PT_COUPON,
} dre_promo_type;

typedef enum {
	DRE_PS_DRAFT = 0,
	DRE_PS_PENDING_APPROVAL,
	DRE_PS_APPROVED,
	DRE_PS_REJECTED,
	DRE_PS_ACTIVE,
	DRE_PS_INACTIVE,
	DRE_PS_EXPIRED,
	DRE_PS_ARCHIVED,
	DRE_PS_PILOT,
} dre_promo_status;

typedef enum {
	DRE_COND_ARTICLE = 0,
	DRE_COND_ARTICLE_LIST,
	DRE_COND_ARTICLE_GROUP,
	DRE_COND_MANUFACTURER,
	DRE_COND_RECEIPT_AMOUNT,
	DRE_COND_ITEM_QUANTITY,
	DRE_COND_CUSTOMER_REQUIRED,
	DRE_COND_CUSTOMER_GROUP,
	DRE_COND_LOYALTY_TIER,
	DRE_COND_CHANNEL,
	DRE_COND_PAYMENT_MEANS,
	DRE_COND_USER_DEFINED,
	DRE_COND_ADDITIONAL_FIELD,
	DRE_COND_MANUAL_DISCOUNT,
} dre_cond_type;

typedef enum {
	DRE_ACT_ARTICLE = 0,
	DRE_ACT_ARTICLE_GROUP,
	DRE_ACT_ARTICLE_LIST,
	DRE_ACT_QUANTITY_TIER,
	DRE_ACT_BUNDLE,
	DRE_ACT_RECEIPT,
	DRE_ACT_SCALED_RECEIPT,
	DRE_ACT_FREE_ITEM,
	DRE_ACT_ADD_FIXED,
	DRE_ACT_CURRENCY_TO_POINTS,
	DRE_ACT_MULTIPLY_POINTS,
	DRE_ACT_SUBTRACT_POINTS,
	DRE_ACT_ISSUE_COUPON,
} dre_action_type;

typedef enum {
	DRE_DISC_PERCENTAGE = 0,
	DRE_DISC_ABSOLUTE,
	DRE_DISC_UNIT_PRICE,
} dre_disc_type;

typedef enum {
	DRE_EXCL_NONE = 0,
	DRE_EXCL_LINE,
	DRE_EXCL_RECEIPT,
} dre_exclusivity;

// Who may get a promotion (PRODUCT-DECISIONS §8): everybody, or only a
// customer holding a valid, unredeemed assignment (dre-loyalty).
typedef enum {
	DRE_ASSIGN_NONE = 0,
	DRE_ASSIGN_PERSONAL,
} dre_assignment;

typedef enum {
	DRE_CALC_ADDITIVE = 0,
	DRE_CALC_MULTIPLICATIVE,
} dre_calc_mode;

// A list of strings, borrowed from the arena the promotion was parsed into.
typedef struct {
	const char **v;
	uint32_t     n;
} dre_strlist;

typedef struct {
	dre_cond_type type;
	dre_strlist   values; // alternatives
	int64_t       min_quantity; // thousandths; 0 = none (ARTICLE, GROUP,
	                      // ITEM_QUANTITY `min`)
	int64_t     min_amount; // minor units (RECEIPT_AMOUNT `min`)
	const char *key; // USER_DEFINED / ADDITIONAL_FIELD
	const char *article_list_id;
	dre_strlist card_types; // PAYMENT_MEANS
	dre_strlist reason_codes; // MANUAL_DISCOUNT
} dre_promo_cond;

typedef struct {
	dre_strlist articles;
	dre_strlist article_groups;
	dre_strlist manufacturers;
	const char *article_list_id;
	bool        present; // false = lines selected by the conditions
} dre_promo_target;

typedef struct {
	int64_t       min_quantity; // QUANTITY_TIER, thousandths
	int64_t       threshold; // SCALED_RECEIPT, minor units
	dre_disc_type disc_type;
	int64_t       value; // hundredths
} dre_promo_tier;

typedef struct {
	dre_strlist articles;
	dre_strlist article_groups;
	int64_t     quantity; // thousandths (whole units)
} dre_bundle_component;

typedef struct {
	dre_action_type type;
	dre_disc_type   disc_type;
	int64_t value; // hundredths: percent*100 or amount in minor units
	int64_t max_quantity; // thousandths; 0 = unlimited
	dre_promo_target      target;
	dre_promo_tier       *tiers;
	uint32_t              ntiers;
	dre_bundle_component *components;
	uint32_t              ncomponents;
	int64_t bundle_price; // minor units; -1 = none (use disc_type/value)
	int64_t max_applications; // 0 = unlimited
	const char *article_number; // FREE_ITEM
	int64_t     quantity; // FREE_ITEM / ISSUE_COUPON, whole units
	int64_t     reference_price; // FREE_ITEM minor units; -1 = none
	int64_t     points; // ADD_FIXED / SUBTRACT_POINTS, whole points
	int64_t points_per_unit; // CURRENCY_TO_POINTS, hundredths of a point
	                         // per currency unit
	int64_t     factor; // MULTIPLY_POINTS, hundredths
	const char *coupon_type_id; // ISSUE_COUPON
} dre_promo_action;

typedef struct {
	uint8_t days; // bit 0 = MON .. bit 6 = SUN
	int     from_min; // minutes after midnight, inclusive
	int     to_min; // exclusive; to < from wraps past midnight
} dre_time_window;

typedef struct dre_promo {
	char              id[37];
	const char       *name;
	const char       *description;
	dre_promo_type    type;
	dre_promo_status  status;
	int64_t           valid_from; // epoch millis; INT64_MIN = open
	int64_t           valid_to; // epoch millis; INT64_MAX = open
	dre_time_window  *windows;
	uint32_t          nwindows;
	const char       *timezone; // IANA name, default "UTC"
	dre_strlist       pos_groups; // ids or codes; empty = all stores
	char              currency[4];
	int64_t           priority; // lower applies first
	dre_exclusivity   exclusivity;
	dre_strlist       exclusion_groups;
	dre_calc_mode     calc_mode;
	dre_rounding      rounding;
	int               precision;
	dre_strlist       budget_ids;
	dre_strlist       coupon_type_ids;
	const char       *campaign_id;
	const char       *external_id; // unique per tenant; NULL = none
	dre_assignment    assignment;
	dre_promo_cond   *conds;
	uint32_t          nconds;
	dre_promo_action *actions;
	uint32_t          nactions;
	int64_t           created_at; // epoch millis, kept by the catalog
	int64_t           updated_at;
} dre_promo;

// One validation problem: target is the JSON path ("actions[0].value").
typedef struct {
	const char *code; // static: VALIDATION_FAILED
	char        message[160];
	char        target[96];
} dre_promo_error;

typedef struct {
	dre_promo_error *v; // caller-provided array
	size_t           cap;
	size_t           n; // problems found (may exceed cap; only cap kept)
} dre_promo_errors;

// dre_promo_parse reads and validates a promotion document. Every problem is
// recorded in errs (first one first); returns DRE_EINVAL if there was any.
// With partial (PATCH semantics) the result starts from base and only the
// members present in doc replace it. p and all strings are allocated in a.
dre_err dre_promo_parse(dre_promo **pp, dre_arena *a, const dre_json *doc,
    const dre_promo *base, dre_promo_errors *errs);

// dre_promo_write appends the normalised JSON document of p (every member,
// defaults made explicit, decimals exact) to out.
void dre_promo_write(dre_buf *out, const dre_promo *p);

// Name tables for the enums above (upper-case wire literals).
const char *dre_promo_type_name(dre_promo_type t);
const char *dre_promo_status_name(dre_promo_status s);
const char *dre_cond_type_name(dre_cond_type t);
const char *dre_action_type_name(dre_action_type t);
const char *dre_disc_type_name(dre_disc_type t);
dre_err     dre_promo_status_parse(dre_promo_status *out, const char *s);

#endif
