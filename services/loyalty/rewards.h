// loyalty/rewards.h -- reward vouchers (points exchanged for a personal
// coupon code of the coupon service) and personal promotion assignments
// (PRODUCT-DECISIONS §8): their keys in LOY_CF_REWARDS, the calls to the
// coupon service and the catalog, what a confirmed sale redeems.
#ifndef LOY_REWARDS_H
#define LOY_REWARDS_H

#include "dre/avro.h"
#include "dre/consumer.h"
#include "dre/jsonw.h"
#include "loyalty.h"

// Keys of LOY_CF_REWARDS, first byte a tag:
//   'P' tenant \0 contact                 -> ""  (automatic conversion due)
//   'V' tenant \0 contact \0 voucherId    -> voucher (JSON)
//   'N' tenant \0 CODE                    -> contact \n voucherId
//   'A' tenant \0 contact \0 assignmentId -> assignment (JSON)
//   'B' tenant \0 assignmentId            -> contact
//   'Q' tenant \0 contact \0 promotionId  -> assignmentId (unredeemed)

// The outcome of an operation the API answers: status 200/201, else the
// error's status, Engage's name as code, target and message.
typedef struct {
	int         status;
	const char *code;
	const char *target;
	char        msg[240];
} loy_outcome;

// loy_jstr / loy_jint: member k of object o as a string (NULL when it is
// not one) or an integer (0 when it is not one).
const char *loy_jstr(const dre_json *o, const char *k);
int64_t     loy_jint(const dre_json *o, const char *k);

// loy_json_doc parses a stored JSON document (copied into a) into *doc.
dre_err loy_json_doc(
    dre_arena *a, const char *text, size_t len, const dre_json **doc);

// loy_call makes one JSON call (body may be NULL) to cli with params
// (key, value pairs, n of them), waiting at most s->call_ms: *status and
// the parsed answer *doc (NULL when none). DRE_ETIMEOUT / DRE_EUNAVAIL when
// the service did not answer.
dre_err loy_call(loy *s, dre_rpc_client *cli, const char *method,
    const char *tenant, const char *const *params, size_t n,
    const dre_buf *body, dre_arena *a, int *status, const dre_json **doc);

// ---- reward vouchers (rewards.c) ------------------------------------------

// loy_voucher_exchange turns pointsPerVoucher of the contact's points into
// one reward voucher: the coupon service issues its code first
// (idempotent by a voucher id derived from the contact and its voucher
// count), then the debit, the voucher and VOUCHER_CREATED are written in
// one synced batch. When the coupon service does not issue it, nothing is
// debited (503). Takes s->mu. On success the voucher is rendered into out.
// actor: the API caller, whose exchange is audited; NULL for the automatic
// conversion.
void loy_voucher_exchange(loy *s, dre_arena *a, const char *tenant,
    const char *actor, const char *contact, loy_outcome *o, dre_buf *out);

// loy_voucher_redeem redeems reward voucher id of contact (an id) through
// the API: 404 ContactNotFound / RewardVoucherNotFound (also for another
// contact's voucher), 409 RewardVoucherAlreadyRedeemed / ...Expired /
// ...InUse; otherwise the coupon service withdraws its code first
// (coupon.RedeemVoucher, idempotent), then the voucher is marked redeemed
// with VOUCHER_REDEEMED in one synced batch. Takes s->mu. On success (200)
// the voucher is rendered into out; the audit record names actor.
void loy_voucher_redeem(loy *s, dre_arena *a, const char *tenant,
    const char *actor, const char *contact, const char *id, loy_outcome *o,
    dre_buf *out);

// loy_vouchers_render writes the contact's vouchers (which: 'p' available
// ones in the POS platform's reward shape, 'a' all, 'v'
// available, 'r' redeemed), from offset skip, at most top, as Engage's
// items into w; *total counts every match.
dre_err loy_vouchers_render(loy *s, dre_arena *a, const char *tenant,
    const char *contact, char which, int64_t skip, int64_t top, dre_jsonw *w,
    int64_t *total);

// loy_vouchers_due stages the automatic conversion mark of c into b when
// the program converts and c's balance reaches a voucher.
void loy_vouchers_due(loy *s, dre_batch *b, const char *tenant,
    const loy_contact *c, const loy_program *p);

// loy_vouchers_start / stop: the converter thread (automatic vouchers);
// loy_vouchers_kick wakes it.
dre_err loy_vouchers_start(loy *s);
void    loy_vouchers_stop(loy *s);
void    loy_vouchers_kick(loy *s);

// ---- promotion assignments (assign.c) -----------------------------------

// loy_assignments_render writes the contact's assignments (live only:
// unredeemed and not expired, when live) as Engage's items into w.
dre_err loy_assignments_render(loy *s, dre_arena *a, const char *tenant,
    const char *contact, bool live, dre_jsonw *w);

// ---- at confirm -----------------------------------------------------------

// loy_assignment_confirmed redeems c's live assignment of promotion_id (if
// any) for the confirmed sale t, with PROMOTION_REDEEMED, in x's batch.
dre_err loy_assignment_confirmed(loy *s, dre_apply_ctx *x,
    const dre_tx_confirmed *t, loy_contact *c, const char *promotion_id);

// loy_rewards_confirmed marks the reward vouchers a confirmed sale used as
// redeemed and redeems the assignments of its promotions held by contact
// (may be NULL: vouchers only), with their events, in x's batch.
dre_err loy_rewards_confirmed(
    loy *s, dre_apply_ctx *x, const dre_tx_confirmed *t, loy_contact *contact);

// Route handlers (handlers.c lists them).
void loy_h_voucher_exchange(
    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);
void loy_h_voucher_list(
    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);
void loy_h_voucher_redeem(
    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);
void loy_h_assign_create(
    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);
void loy_h_assign_list(
    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);
void loy_h_assign_delete(
    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);
void loy_h_assign_redeem(
    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);
void loy_h_assign_active(
    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);

#endif
