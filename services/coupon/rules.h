// coupon/rules.h -- the coupon rules as pure functions: the six states, the
// stable reason codes, the code alphabet and what each operation may do.
// Nothing here touches storage; tests/unit/test_coupon_rules.c covers it.
#ifndef CP_RULES_H
#define CP_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dre/uuid.h"

// Limits of the wire fields (characters; customer and transaction ids may
// be any UTF-8, so their buffers hold 4 bytes per character).
#define CP_CODE_MAX    50
#define CP_PREFIX_MAX  20
#define CP_CODELEN_MIN 4
#define CP_CODELEN_MAX 30
#define CP_ID_MAX      50
#define CP_ID_BYTES    (4 * CP_ID_MAX + 1)
#define CP_NAME_MAX    100
#define CP_NAME_BYTES  (4 * CP_NAME_MAX + 1)

// The code alphabet: upper-case letters and digits without the look-alikes
// 0/O, 1/I/L (31 symbols, so a 10-symbol code has 31^10 ~ 8e14 values).
#define CP_ALPHABET "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

#define CP_STATE_MAP(XX)                                                      \
	XX(CREATED)                                                           \
	XX(ACTIVE)                                                            \
	XX(RESERVED)                                                          \
	XX(REDEEMED)                                                          \
	XX(EXPIRED)                                                           \
	XX(CANCELLED)

typedef enum {
#define CP_STATE_ENUM(n) CP_##n,
	CP_STATE_MAP(CP_STATE_ENUM)
#undef CP_STATE_ENUM
	    CP_NSTATES
} cp_state;

// Why a code cannot be used or an operation is refused: stable codes that
// clients may switch on (evaluate's invalidCoupons[].reason, the "reason"
// of the POS coupon operations' refusals, PRODUCT-DECISIONS §5). A code is
// never repurposed. DUPLICATE, NOT_STACKABLE and UNAVAILABLE are
// evaluate's only; the POS operations answer the other nine.
#define CP_REASON_MAP(XX)                                                     \
	XX(OK, "the coupon can be used")                                      \
	XX(NOT_FOUND, "no such coupon code")                                  \
	XX(NOT_ACTIVE_YET, "the coupon is not active yet")                    \
	XX(EXPIRED, "the coupon has expired")                                 \
	XX(REDEEMED, "the coupon has already been redeemed")                  \
	XX(RESERVED_BY_OTHER,                                                 \
	    "the coupon is reserved by another transaction")                  \
	XX(OTHER_CUSTOMER, "the coupon belongs to another customer")          \
	XX(NOT_STACKABLE,                                                     \
	    "the coupon cannot be combined with another coupon")              \
	XX(LIMIT_REACHED, "the coupon's redemption limit is reached")         \
	XX(CANCELLED, "the coupon has been cancelled")                        \
	XX(INACTIVE, "the coupon type is not active")                         \
	XX(DUPLICATE, "the coupon was presented twice")                       \
	XX(UNAVAILABLE, "the coupon service did not answer")

typedef enum {
#define CP_REASON_ENUM(n, text) CP_R_##n,
	CP_REASON_MAP(CP_REASON_ENUM)
#undef CP_REASON_ENUM
	    CP_NREASONS
} cp_reason;

const char *cp_state_name(cp_state s);
// cp_state_parse returns the state named s or -1.
int  cp_state_parse(const char *s);
bool cp_state_terminal(cp_state s);

const char *cp_reason_name(cp_reason r);
const char *cp_reason_text(cp_reason r);

// cp_code_normalize writes in as a stored code (ASCII letters upper-cased)
// into out[CP_CODE_MAX + 1]. False when in is empty, too long or holds a
// character other than letters, digits, '-' and '_': no such code exists.
bool cp_code_normalize(char *out, const char *in, size_t len);
// cp_prefix_valid reports whether a type's prefix (already upper case) is
// 0..CP_PREFIX_MAX characters of [A-Z0-9_-].
bool cp_prefix_valid(const char *p);
// cp_code_generate writes prefix + len random symbols of CP_ALPHABET into
// out[CP_CODE_MAX + 1] (getrandom, unbiased). False when it does not fit.
bool cp_code_generate(char *out, const char *prefix, int len);

// The views of a coupon type and a code that the decisions read.
typedef struct {
	bool    generic; // GENERIC (one code, many uses) / INDIVIDUAL
	bool    active; // type status ACTIVE
	bool    stackable;
	int64_t max_redemptions; // GENERIC: per code; 0 = unlimited
	int64_t max_per_customer; // GENERIC: per code and customer; 0 = none
	int64_t valid_from; // epoch ms; 0 = open
	int64_t valid_to; // epoch ms, inclusive; 0 = open
} cp_type_rules;

typedef struct {
	cp_state    state;
	const char *customer; // owner; "" = anyone
	int64_t     valid_from; // 0 = open
	int64_t     valid_to; // inclusive; 0 = open
	int64_t     redemptions;
	int64_t     held; // reservations holding the code
	const char *res_tx; // INDIVIDUAL: transaction of the hold ("")
	int64_t     res_until; // INDIVIDUAL: hold expiry (epoch ms)
} cp_code_rules;

// What the caller knows about the requester's own use of a GENERIC code.
typedef struct {
	bool    own_hold; // this transaction holds a reservation
	bool    own_redeemed; // this transaction already redeemed it
	int64_t customer_uses; // redeemed + held by this customer
} cp_usage;

// cp_customer_of_use is the customer a use of a code is counted for: the
// customer named (given, may be NULL or "") or else the code's own (owner,
// "" = anyone). Holding a personal code is the proof (PRODUCT-DECISIONS
// §5): whoever presents it without naming a customer uses it as its owner.
const char *cp_customer_of_use(const char *owner, const char *given);

// cp_check_use decides whether a code may be used (validate, check,
// reserve) at `at` (validity) and `now` (reservation expiry) by transaction
// tx (may be "") and customer (may be ""). A personal code is refused with
// OTHER_CUSTOMER only when another customer is named. A hold of another
// transaction whose time has passed does not count.
cp_reason cp_check_use(const cp_code_rules *c, const cp_type_rules *t,
    int64_t at, int64_t now, const char *tx, const char *customer,
    const cp_usage *u);

// cp_check_activate decides whether customer may activate the code:
// CP_R_OK for a CREATED code (CREATED -> ACTIVE) and for one that is
// active already (ACTIVE or RESERVED: nothing to do, activation is
// idempotent).
cp_reason cp_check_activate(const cp_code_rules *c, const cp_type_rules *t,
    int64_t now, const char *customer);

// cp_effective_valid_to is the end of a code's validity: the earlier of the
// code's and the type's validTo (0 = open).
int64_t cp_effective_valid_to(const cp_code_rules *c, const cp_type_rules *t);

// cp_birth_validity computes a new code's own validity from its type at
// issued_at: the type's window, cut to issued_at + validity_days when set.
void cp_birth_validity(const cp_type_rules *t, int64_t validity_days,
    int64_t issued_at, int64_t *from, int64_t *to);

// cp_hold_until is when a reservation made at now expires: now + ttl_ms,
// but never after the code's validity ends.
int64_t cp_hold_until(int64_t now, int64_t ttl_ms, int64_t valid_to);

// The issue rate limit: a sliding window of 60 one-second buckets.
#define CP_RATE_BUCKETS 60
typedef struct {
	int64_t sec[CP_RATE_BUCKETS]; // which second a bucket counts
	int64_t count[CP_RATE_BUCKETS];
} cp_rate;

// cp_rate_take grants up to want codes at now_ms under limit per minute and
// returns how many; when it grants fewer than want, *retry_s is the number
// of seconds after which at least one more is allowed.
int64_t cp_rate_take(
    cp_rate *r, int64_t limit, int64_t want, int64_t now_ms, int64_t *retry_s);

#endif
