// coupon/vouchers.h -- coupon.IssueVoucher, the loyalty service's call
// (services/coupon/vouchers.c).
#ifndef CP_VOUCHERS_H
#define CP_VOUCHERS_H

#include "dre/rpc.h"

// cp_h_issue_voucher: body {voucherId, couponTypeId, customerId, validTo?
// (epoch ms)} -> 201 {code, couponTypeId, customerId, status, validTo,
// created: true} for a new voucher id, 200 with created false and the same
// code for one issued before; 409 CONFLICT for an unknown, GENERIC or
// inactive type.
void cp_h_issue_voucher(
    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);

// cp_h_redeem_voucher: body {voucherId, customerId} -> 200 {code, ...,
// status: "CANCELLED"} once the voucher's code is withdrawn (also when it
// was before: idempotent); 404 NOT_FOUND for a voucher id never issued;
// 409 with the reason as error code (OTHER_CUSTOMER, REDEEMED, EXPIRED,
// RESERVED_BY_OTHER) when it cannot be.
void cp_h_redeem_voucher(
    void *svc, const dre_rpc_call *call, dre_rpc_reply *rep);

#endif
