#!/usr/bin/env python3
# bench_rewards.py -- the reward figures (not a ctest; run by hand), on one
# keep-alive connection, p50 / p99 / max over CALLS calls each:
#  1. evaluate of a basket naming no customer (loyalty is not asked);
#  2. evaluate of a basket naming a member, of a tenant with a PERSONAL
#     promotion the member holds (the evaluator asks dre-loyalty);
#  3. evaluate of a basket with a coupon code (the evaluator asks
#     dre-coupon), and of one with the code and the member (both asked,
#     side by side);
#  4. voucher exchanges (coupon.IssueVoucher + the synced debit).
# usage: DRE_BIN_DIR=build/test/bin python3 tests/integration/bench_rewards.py [CALLS]
import base64
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, basket, item, promotion, uniq  # noqa: E402

CALLS = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode(),
        "Content-Type": "application/json"}


def timed(conn, method, path, bodies, status):
    lat = []
    for b in bodies:
        t0 = time.perf_counter()
        conn.request(method, path, body=harness.dumps(b), headers=AUTH)
        r = conn.getresponse()
        raw = r.read()
        lat.append((time.perf_counter() - t0) * 1000)
        if r.status != status:
            raise AssertionError("%s %s: %d %s" % (method, path, r.status, raw[:300]))
    lat.sort()
    return "p50 %.2f ms, p99 %.2f ms, max %.2f ms (%d calls)" % (
        lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1], lat[-1], len(lat))


def main():
    s = harness.Stack()
    try:
        gid = s.create_pos_group()["id"]
        art = uniq("ART")
        w = promotion("Personal", [{"type": "ARTICLE", "values": [art]}],
                      [harness.pct_action(10, articles=[art])], pos_groups=[gid],
                      assignment="PERSONAL")
        s.create_promotion(w)
        c = s.post("/api/v3/contacts", {"email": uniq("b").lower() + "@bench.example.com"}).body
        assert s.post("/api/v3/promotion-assignments",
                      {"contactId": c["id"], "promotionId": w["id"]}).status == 201
        member = basket(gid, [item("L1", art, 1, "10.00")], customer={"customerId": c["id"]})
        s.wait_for_promotion(w["id"], member)
        anon = basket(gid, [item("L1", art, 1, "10.00")])
        conn = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=30)
        print("evaluate, no customer:       ",
              timed(conn, "POST", "/pos/v2/simulate", [{"request": anon}] * CALLS, 200))
        print("evaluate, member (personal): ",
              timed(conn, "POST", "/pos/v2/simulate", [{"request": member}] * CALLS, 200))
        ct = s.post("/api/v1/CouponTypes", {"name": uniq("C"), "type": "INDIVIDUAL",
                                            "prefix": "BC", "codeLength": 10}).body
        cp = promotion("Coupon 1.00", [], [{"type": "RECEIPT", "discountType": "ABSOLUTE",
                                            "value": D("1.00")}],
                       pos_groups=[gid], ptype="COUPON", couponTypeIds=[ct["id"]])
        s.create_promotion(cp)
        code = s.post("/api/v1/CouponCodes", {"couponTypeId": ct["id"]}).body["code"]
        coupon = basket(gid, [item("L1", art, 1, "10.00")], coupons=[{"code": code}])
        both = basket(gid, [item("L1", art, 1, "10.00")], customer={"customerId": c["id"]},
                      coupons=[{"code": code}])
        s.wait_for_promotion(cp["id"], coupon)
        print("evaluate, coupon:            ",
              timed(conn, "POST", "/pos/v2/simulate", [{"request": coupon}] * CALLS, 200))
        print("evaluate, member and coupon: ",
              timed(conn, "POST", "/pos/v2/simulate", [{"request": both}] * CALLS, 200))
        vt = s.post("/api/v1/CouponTypes", {"name": uniq("V"), "type": "INDIVIDUAL",
                                            "prefix": "RV", "codeLength": 10}).body
        s.request("PUT", "/api/v1/LoyaltyProgram", {"voucherRule": {
            "pointsPerVoucher": 1, "automatic": False, "couponTypeId": vt["id"]}})
        n = min(CALLS, 1000)
        rid = uniq("R")
        assert s.post("/api/v3/receipts", {
            "contact": {"matchKey": c["id"], "matchKeyType": "ContactId"},
            "uniqueReceiptId": rid, "items": [{"type": "PURCHASE",
                                               "grossPaidPrice": D(str(n))}]}).status == 202
        print("voucher exchange:            ",
              timed(conn, "POST", "/api/v3/reward-vouchers", [{"contactId": c["id"]}] * n, 201))
    finally:
        s.stop()
        s.cleanup()


if __name__ == "__main__":
    main()
