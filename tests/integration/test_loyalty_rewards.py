#!/usr/bin/env python3
# test_loyalty_rewards.py -- reward vouchers and personal promotions of
# dre-loyalty over HTTP (PRODUCT-DECISIONS §8): confirm -> points -> voucher
# exchanged (a single-use coupon code bound to the member) -> evaluate with
# the code -> confirm -> the code REDEEMED in the coupon service and the
# voucher redeemed in loyalty; nothing debited while the coupon service is
# down; coupon.IssueVoucher idempotent by voucher id; automatic conversion;
# personal promotions (member A gets it, member B does not, by id or
# externalId, redeemed once by confirm) and LOYALTY_UNAVAILABLE when loyalty
# is down or stalled (still 200); a coupon and a personal promotion in one
# basket (both asked side by side; a stalled loyalty loses only its own);
# migrated balances publish no events and
# convert nothing until the member's next credit; POST
# /api/v3/reward-vouchers/{id}/redeem (the code withdrawn in the coupon
# service first, idempotently; another member's voucher refused, nothing
# changed); the member's level from loyalty for LOYALTY_TIER conditions.
import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, basket, item, promotion, uniq  # noqa: E402

LEVELS = [{"name": "BASE", "minPoints": 0}, {"name": "SILVER", "minPoints": 1000},
          {"name": "GOLD", "minPoints": 5000}]


def email():
    return uniq("r").lower() + "@example.com"


class Rewards(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        # a stalled coupon service is given up on after 0.5 s (default 2 s)
        cls.stack = harness.shared_stack(opts={"loyalty": ["rewards.call_timeout_ms=500"]})

    # -- helpers ---------------------------------------------------------------
    def contact(self, **attrs):
        r = self.stack.post("/api/v3/contacts?source=POS&storeExternalId=S1", attrs)
        self.assertStatus(r, 201)
        return r.body

    def balance(self, cid):
        o = self.assertOk(self.stack.get("/api/v3/contactoverview?contactId=" + cid))
        return o["loyalty"]["pointsBalance"]

    def program(self, automatic, type_id):
        doc = {"pointsPerCurrencyUnit": 1, "levels": LEVELS,
               "voucherRule": {"pointsPerVoucher": 500, "value": D("5.00"),
                               "currency": "EUR", "validityDays": 90,
                               "automatic": automatic, "couponTypeId": type_id}}
        self.assertJson(doc, self.assertOk(
            self.stack.request("PUT", "/api/v1/LoyaltyProgram", doc)))

    def voucher_setup(self):
        """An INDIVIDUAL coupon type for the vouchers and the promotion
        linked to it (5.00 off the receipt), in effect."""
        s = self.stack
        gid = self.pos_group()["id"]
        r = s.post("/api/v1/CouponTypes", {"name": uniq("Vouchers"), "type": "INDIVIDUAL",
                                            "prefix": "RV", "codeLength": 10})
        self.assertStatus(r, 201)
        vt = r.body
        vp = promotion("Reward voucher 5", [],
                       [{"type": "RECEIPT", "discountType": "ABSOLUTE", "value": D("5.00")}],
                       pos_groups=[gid], ptype="COUPON", couponTypeIds=[vt["id"]])
        s.create_promotion(vp)
        probe = self.assertStatusBody(s.post("/api/v1/CouponCodes",
                                             {"couponTypeId": vt["id"]}), 201)["code"]
        art = uniq("ART")
        s.wait_for_promotion(vp["id"], basket(gid, [item("L1", art, 1, "20.00")],
                                              coupons=[{"code": probe}]))
        return gid, art, vt, vp

    def personal(self, gid, art, pct):
        """A PERSONAL promotion of pct % on art in POS group gid, assigned
        to a new contact: (the promotion, the contact's id)."""
        s = self.stack
        w = promotion("Personal %d%%" % pct, [{"type": "ARTICLE", "values": [art]}],
                      [harness.pct_action(pct, articles=[art])], pos_groups=[gid],
                      assignment="PERSONAL")
        s.create_promotion(w)
        r = s.post("/api/v3/contacts?source=POS&storeExternalId=S1", {"email": email()})
        self.assertStatus(r, 201)
        self.assertStatus(s.post("/api/v3/promotion-assignments",
                                 {"contactId": r.body["id"], "promotionId": w["id"]}), 201)
        return w, r.body["id"]

    def assertStatusBody(self, r, status):
        self.assertStatus(r, status)
        return r.body

    def receipt(self, cid, amount):
        rid = uniq("R")
        r = self.stack.post("/api/v3/receipts", {
            "contact": {"matchKey": cid, "matchKeyType": "ContactId"},
            "uniqueReceiptId": rid, "receiptNumber": rid, "currency": "EUR",
            "items": [{"type": "PURCHASE", "sku": "A", "quantity": 1,
                       "grossPaidPrice": D(amount)}]})
        self.assertStatus(r, 202)

    def vouchers(self, cid, which=""):
        return self.assertOk(self.stack.get(
            "/api/v3/reward-vouchers%s?contactId=%s" % (which, cid)))

    def code_doc(self, code):
        return self.assertOk(self.stack.get("/api/v1/CouponCodes/" + code))

    def loyalty_events(self, cid):
        return [e["value"] for e in self.stack.events("dre.loyalty.events")
                if e["value"]["contactId"] == cid]

    # -- vouchers --------------------------------------------------------------
    def test_a_points_voucher_evaluate_confirm_redeemed(self):
        s = self.stack
        gid, art, vt, vp = self.voucher_setup()
        self.program(False, vt["id"])
        pts = promotion("Points %s" % art, [{"type": "CUSTOMER_REQUIRED"}],
                        [{"type": "CURRENCY_TO_POINTS", "pointsPerUnit": 1}],
                        pos_groups=[gid], ptype="LOYALTY")
        s.create_promotion(pts)
        harness.wait_until(
            lambda: self.assertEval(s.simulate(basket(
                gid, [item("L1", art, 2, "300.00")], customer={"customerId": "probe"})),
                simulation=True)["totals"]["savingsSummary"]["loyaltyPointsEarned"] == 600,
            10, what="points promotion in effect")
        c = self.contact(email=email())
        cid = c["id"]
        # nothing to exchange yet
        self.assertError(s.post("/api/v3/reward-vouchers", {"contactId": cid}),
                         409, "InsufficientPoints", "contactId")
        # confirm -> 600 points credited
        txn = uniq("TX")
        b = self.assertEval(s.evaluate(basket(gid, [item("L1", art, 2, "300.00")], txn=txn,
                                              customer={"customerId": cid})))
        self.assertEqual(b["totals"]["savingsSummary"]["loyaltyPointsEarned"], 600)
        self.assertOk(s.confirm(txn, 1, [], customerId=cid))
        self.assertEqual(s.wait_side_effects(txn, 1)["loyaltyPointsEarned"], 600)
        self.assertEqual(self.balance(cid), 600)
        # the exchange: 500 points become a voucher, a code of the type
        v = self.assertStatusBody(s.post("/api/v3/reward-vouchers", {"contactId": cid}), 201)
        code = v["voucherNumber"]
        self.assertRegex(code, r"^RV[A-HJ-NP-Z2-9]{10}$")
        self.assertRegex(v["id"], harness.UUID_RE)
        self.assertRegex(v["expiresOn"], harness.ISO_RE)
        self.assertJson({"name": "Reward voucher 5.00 EUR", "redeemed": False,
                         "redeemedOn": None, "value": {"currency": "EUR", "amount": D("5.00")},
                         "points": 500}, v, subset=True)
        self.assertEqual(self.balance(cid), 100)
        self.assertError(s.post("/api/v3/reward-vouchers", {"contactId": cid}),
                         409, "InsufficientPoints", "contactId")
        self.assertEqual(self.balance(cid), 100)
        cd = self.code_doc(code)
        self.assertJson({"code": code, "couponTypeId": vt["id"], "customerId": cid,
                         "status": "ACTIVE", "origin": "ISSUE"}, cd, subset=True)
        self.assertJson({"count": 1, "offset": 0, "totalCount": 1, "items": [v]},
                        self.vouchers(cid, "/available"))
        o = self.assertOk(s.get("/api/v3/contactoverview?contactId=" + cid))
        self.assertEqual(o["vouchers"], [v])
        # evaluate with the voucher: 5.00 off
        txn2 = uniq("TX")
        b = self.assertEval(s.evaluate(basket(gid, [item("L1", art, 1, "20.00")], txn=txn2,
                                              coupons=[{"code": code}])))
        self.assertEqual(b["totals"]["discount"]["value"], D("5.00"), b)
        self.assertEqual([(a["code"], a["promotionIds"]) for a in b["appliedCoupons"]],
                         [(code, [vp["id"]])])
        # confirm redeems it: the code REDEEMED, the voucher redeemed
        self.assertOk(s.confirm(txn2, 1, [{"promotionId": vp["id"], "couponCode": code}]))
        j = s.wait_side_effects(txn2, 1)
        self.assertEqual(j["couponsRedeemed"], 1, j)
        self.assertEqual(self.code_doc(code)["status"], "REDEEMED")
        harness.wait_until(lambda: self.vouchers(cid, "/redeemed")["totalCount"] == 1, 10,
                           what="voucher redeemed in loyalty")
        red = self.vouchers(cid, "/redeemed")["items"][0]
        self.assertEqual((red["id"], red["redeemed"]), (v["id"], True))
        self.assertRegex(red["redeemedOn"], harness.ISO_RE)
        self.assertEqual(self.vouchers(cid, "/available")["items"], [])
        self.assertEqual(self.vouchers(cid)["totalCount"], 1)
        # the code is spent
        b = self.assertEval(s.evaluate(basket(gid, [item("L1", art, 1, "20.00")],
                                              coupons=[{"code": code}])))
        self.assertEqual([(x["code"], x["reason"]) for x in b["invalidCoupons"]],
                         [(code, "REDEEMED")])
        # redeemed by the confirm: the API's redeem refuses it
        self.assertError(s.post("/api/v3/reward-vouchers/%s/redeem" % v["id"],
                                {"contactId": cid}), 409, "RewardVoucherAlreadyRedeemed", "id")
        self.assertEqual(self.code_doc(code)["status"], "REDEEMED")
        # the events
        evs = self.loyalty_events(cid)
        self.assertEqual([(e["type"], e["points"], e["pointsBalance"]) for e in evs
                          if e["type"].startswith("VOUCHER")],
                         [("VOUCHER_CREATED", 500, 100), ("VOUCHER_REDEEMED", 0, 100)])
        for e in evs:
            if e["type"].startswith("VOUCHER"):
                self.assertEqual(e["reference"], {"string": code})
        # refusals
        self.assertError(s.post("/api/v3/reward-vouchers", {"contactId": harness.new_id()}),
                         404, "ContactNotFound", "contactId")
        self.assertError(s.post("/api/v3/reward-vouchers", {}), 400, "VALIDATION_FAILED",
                         "contactId")
        self.assertError(s.post("/api/v3/reward-vouchers", {"contactId": cid, "x": 1}), 400,
                         "VALIDATION_FAILED", "x")
        self.assertError(s.get("/api/v3/reward-vouchers"), 400, "VALIDATION_FAILED",
                         "contactId")
        self.assertError(s.get("/api/v3/reward-vouchers?contactId=" + harness.new_id()),
                         404, "ContactNotFound")

    def test_b_coupon_down_debits_nothing_and_issue_is_idempotent(self):
        s = self.stack
        gid, art, vt, vp = self.voucher_setup()
        self.program(False, vt["id"])
        cid = self.contact(email=email())["id"]
        self.receipt(cid, "600.00")
        self.assertEqual(self.balance(cid), 600)
        # stalled (SIGSTOP): no answer within the bound, nothing debited
        pid = s.procs["coupon"].pid
        harness.stall(pid)
        try:
            self.assertError(s.post("/api/v3/reward-vouchers", {"contactId": cid}),
                             503, "UNAVAILABLE")
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertEqual(self.balance(cid), 600)
        self.assertEqual(self.vouchers(cid)["totalCount"], 0)
        # down: the same
        s.stop_service("coupon")
        try:
            self.assertError(s.post("/api/v3/reward-vouchers", {"contactId": cid}),
                             503, "UNAVAILABLE")
            self.assertEqual(self.balance(cid), 600)
            self.assertEqual(self.vouchers(cid)["totalCount"], 0)
        finally:
            s.start_service("coupon")
        # once loyalty has reconnected (a 503 meanwhile debits nothing)
        got = {}

        def exchanged():
            r = s.post("/api/v3/reward-vouchers", {"contactId": cid})
            if r.status == 503:
                self.assertEqual(self.balance(cid), 600)
                return False
            got["r"] = r
            return True
        harness.wait_until(exchanged, 10, interval=0.1, what="coupon service back")
        v = self.assertStatusBody(got["r"], 201)
        harness.wait_until(lambda: s.get("/api/v1/CouponTypes").status == 200, 10,
                           what="gateway reconnected to coupon")
        self.assertEqual(self.balance(cid), 100)
        self.assertEqual(self.code_doc(v["voucherNumber"])["customerId"], cid)
        # coupon.IssueVoucher: the same voucher id, the same code
        body = {"voucherId": uniq("V"), "couponTypeId": vt["id"], "customerId": cid}
        answers = []
        for _ in range(2):
            st, raw = s.rpc_call("coupon", "coupon.IssueVoucher",
                                       tenant="default", body=json.dumps(body).encode())
            answers.append((st, json.loads(raw)))
        (st1, a1), (st2, a2) = answers
        self.assertEqual((st1, a1["created"], st2, a2["created"]), (201, True, 200, False))
        self.assertEqual(a1["code"], a2["code"])
        self.assertEqual(a1["status"], "ACTIVE")
        # no type, a GENERIC one: refused, nothing issued
        st, raw = s.rpc_call("coupon", "coupon.IssueVoucher", tenant="default",
                                   body=json.dumps({"voucherId": uniq("V")}).encode())
        self.assertEqual(st, 400)
        gen = self.assertStatusBody(s.post("/api/v1/CouponTypes", {
            "name": uniq("Gen"), "type": "GENERIC", "prefix": "GG"}), 201)
        st, raw = s.rpc_call("coupon", "coupon.IssueVoucher", tenant="default",
                                   body=json.dumps(dict(body, voucherId=uniq("V"),
                                                        couponTypeId=gen["id"])).encode())
        self.assertEqual(st, 409)

    def test_c_automatic_conversion(self):
        s = self.stack
        gid, art, vt, vp = self.voucher_setup()
        self.program(True, vt["id"])
        cid = self.contact(email=email())["id"]
        self.receipt(cid, "1100.00")
        harness.wait_until(lambda: self.vouchers(cid, "/available")["totalCount"] == 2, 10,
                           what="two automatic vouchers")
        self.assertEqual(self.balance(cid), 100)
        codes = [v["voucherNumber"] for v in self.vouchers(cid)["items"]]
        self.assertEqual(len(set(codes)), 2)
        for code in codes:
            self.assertEqual(self.code_doc(code)["customerId"], cid)

    # -- migration -------------------------------------------------------------
    def test_d_migration_publishes_no_events_and_converts_nothing(self):
        s = self.stack
        gid, art, vt, vp = self.voucher_setup()
        self.program(True, vt["id"])
        mn = uniq("MIG")
        r = s.post("/api/v3/contacts/import?firstRow=1",
                   [{"memberNumber": mn, "email": email(), "pointsBalance": 1200,
                     "level": "SILVER"}])
        self.assertOk(r)
        cid = self.assertOk(s.get("/api/v3/contacts/id?customKey=" + mn))
        self.assertEqual(self.balance(cid), 1200)
        # a later event of another contact is on the topic: anything the
        # import had published would be there before it
        marker = self.contact(email=email())["id"]
        harness.wait_until(lambda: self.loyalty_events(marker), 15, what="marker event")
        self.assertEqual(self.loyalty_events(cid), [])
        self.assertEqual(self.vouchers(cid)["totalCount"], 0)
        # the member's next credit converts (events from then on)
        self.receipt(cid, "10.00")
        harness.wait_until(lambda: self.vouchers(cid)["totalCount"] == 2, 10,
                           what="vouchers after the first credit")
        self.assertEqual(self.balance(cid), 210)
        harness.wait_until(
            lambda: [e["type"] for e in self.loyalty_events(cid)] ==
            ["POINTS_EARNED", "VOUCHER_CREATED", "VOUCHER_CREATED"], 15,
            what="the events of the credit")

    # -- personal promotions ---------------------------------------------------
    def test_e_personal_promotions(self):
        s = self.stack
        gid = self.pos_group()["id"]
        art = uniq("ART")
        ext = uniq("WELCOME")
        w = promotion("Welcome 10%", [{"type": "ARTICLE", "values": [art]}],
                      [harness.pct_action(10, articles=[art])], pos_groups=[gid],
                      assignment="PERSONAL", externalId=ext)
        s.create_promotion(w)
        stored = self.assertOk(s.get("/api/v1/Promotions/" + w["id"]))
        self.assertEqual((stored["assignment"], stored["externalId"]), ("PERSONAL", ext))
        everyone = promotion("Everyone", [{"type": "ARTICLE", "values": [art]}],
                             [harness.pct_action(1, articles=[art])], pos_groups=[gid])
        s.create_promotion(everyone)
        a = self.contact(email=email(), memberNumber=uniq("A"))
        bb = self.contact(email=email())

        def sale(who, txn=None, **kw):
            req = basket(gid, [item("L1", art, 1, "50.00")], txn=txn, **kw)
            if who is not None:
                req["customer"] = {"customerId": who}
            return req
        s.wait_for_promotion(everyone["id"], sale(a["id"]))
        # nobody holds it yet
        self.assertEqual(s.applied(self.assertEval(s.simulate(sale(a["id"])), True), w["id"]), [])
        # assigned to A by its externalId (the welcome at sign-up)
        r = s.post("/api/v3/promotion-assignments", {"contactId": a["id"], "promotionId": ext})
        asg = self.assertStatusBody(r, 201)
        self.assertJson({"promotionId": w["id"], "contactId": a["id"], "externalId": ext,
                         "name": "Welcome 10%", "redeemed": False, "redeemedOn": None,
                         "redemptionChannels": [{"type": "POS", "valueType": "EXTERNALID",
                                                 "value": ext}]}, asg, subset=True)
        self.assertRegex(asg["expiresOn"], harness.ISO_RE)
        again = s.post("/api/v3/promotion-assignments",
                       {"contactId": a["id"], "promotionId": w["id"]})
        self.assertEqual(self.assertOk(again)["id"], asg["id"])
        # A gets it at once (also by memberNumber); B and an anonymous basket do not
        txn = uniq("TX")
        ba = self.assertEval(s.evaluate(sale(a["id"], txn=txn)))
        self.assertEqual(s.applied(ba, w["id"]), [("L1", D("5.00"))])
        self.assertNotIn("warnings", ba["meta"])
        bm = self.assertEval(s.simulate(sale(a["attributes"]["memberNumber"])), True)
        self.assertEqual(s.applied(bm, w["id"]), [("L1", D("5.00"))])
        req_b = sale(bb["id"])
        req_b["includeMissedPromotions"] = True
        b_b = self.assertEval(s.simulate(req_b), True)
        self.assertEqual(s.applied(b_b, w["id"]), [])
        self.assertEqual(s.applied(b_b, everyone["id"]), [("L1", D("0.50"))])
        missed = [m for m in b_b["missedPromotions"] if m["promotionId"] == w["id"]]
        self.assertEqual([(m["stage"], m["reason"]) for m in missed],
                         [("ASSIGNMENT", "personal: not assigned to the basket's customer")])
        self.assertEqual(s.applied(self.assertEval(s.simulate(sale(None)), True), w["id"]), [])
        items = self.assertOk(s.get("/api/v3/promotion-assignments?contactId=%s"
                                    "&redemptionChannelType=POS" % a["id"]))["items"]
        self.assertEqual([x["id"] for x in items], [asg["id"]])
        o = self.assertOk(s.get("/api/v3/contactoverview?contactId=" + a["id"]))
        self.assertEqual([x["id"] for x in o["promotions"]], [asg["id"]])
        # confirm redeems it, once: the next evaluate of A no longer gets it
        self.assertOk(s.confirm(txn, 1, [{"promotionId": w["id"]}], customerId=a["id"]))
        s.wait_side_effects(txn, 1)
        harness.wait_until(lambda: self.assertOk(s.get(
            "/api/v3/promotion-assignments?contactId=" + a["id"]))["items"][0]["redeemed"],
            10, what="assignment redeemed by confirm")
        self.assertEqual(s.applied(self.assertEval(s.simulate(sale(a["id"])), True), w["id"]), [])
        self.assertEqual(self.assertOk(s.get("/api/v3/contactoverview?contactId=" + a["id"]))
                         ["promotions"], [])
        self.assertError(s.post("/api/v3/promotion-assignments/%s/redeem" % asg["id"]),
                         409, "PromotionAlreadyRedeemed")
        evs = [(e["type"], e["reference"]) for e in self.loyalty_events(a["id"])
               if e["type"].startswith("PROMOTION")]
        self.assertEqual(evs, [("PROMOTION_ASSIGNED", {"string": asg["id"]}),
                               ("PROMOTION_REDEEMED", {"string": asg["id"]})])
        # B: assigned, redeemed by hand, then again; unassigned
        x = self.assertStatusBody(s.post("/api/v3/promotion-assignments",
                                         {"contactId": bb["id"], "promotionId": w["id"]}), 201)
        r = self.assertOk(s.post("/api/v3/promotion-assignments/%s/redeem" % x["id"],
                                 {"redemptionChannel": "POS"}))
        self.assertEqual(r["redeemed"], True)
        self.assertError(s.post("/api/v3/promotion-assignments/%s/redeem" % x["id"]),
                         409, "PromotionAlreadyRedeemed")
        y = self.assertStatusBody(s.post("/api/v3/promotion-assignments",
                                         {"contactId": bb["id"], "promotionId": w["id"]}), 201)
        self.assertNotEqual(y["id"], x["id"])
        s.wait_for_promotion(w["id"], sale(bb["id"]))
        self.assertStatus(s.request("DELETE", "/api/v3/promotion-assignments/" + y["id"]), 204)
        self.assertEqual(s.applied(self.assertEval(s.simulate(sale(bb["id"])), True), w["id"]), [])
        # refusals
        self.assertError(s.request("DELETE", "/api/v3/promotion-assignments/" + y["id"]),
                         404, "PromotionNotFound")
        self.assertError(s.post("/api/v3/promotion-assignments",
                                {"contactId": a["id"], "promotionId": uniq("NOPE")}),
                         404, "PromotionNotFound", "promotionId")
        self.assertError(s.post("/api/v3/promotion-assignments",
                                {"contactId": a["id"], "promotionId": everyone["id"]}),
                         400, "VALIDATION_FAILED", "promotionId")
        self.assertError(s.post("/api/v3/promotion-assignments",
                                {"contactId": harness.new_id(), "promotionId": w["id"]}),
                         404, "ContactNotFound", "contactId")
        self.assertError(s.post("/api/v3/promotion-assignments", {"contactId": a["id"]}),
                         400, "VALIDATION_FAILED", "promotionId")
        self.assertError(s.get("/api/v3/promotion-assignments"), 400, "VALIDATION_FAILED",
                         "contactId")

    def test_f_loyalty_down_or_stalled_still_prices(self):
        s = self.stack
        gid = self.pos_group()["id"]
        art = uniq("ART")
        w, cid = self.personal(gid, art, 20)
        req = basket(gid, [item("L1", art, 1, "50.00")], customer={"customerId": cid})
        s.wait_for_promotion(w["id"], req)
        warning = {"code": "LOYALTY_UNAVAILABLE", "target": "customer",
                   "message": "the loyalty service did not answer in time: priced without "
                              "the customer's personal promotions"}
        # stalled (SIGSTOP): answered within the bound, without it
        pid = s.procs["loyalty"].pid
        harness.stall(pid)
        try:
            t0 = time.monotonic()
            b = self.assertEval(s.evaluate(req))
            took = time.monotonic() - t0
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertLess(took, 1.0)
        self.assertEqual(s.applied(b, w["id"]), [])
        self.assertEqual(b["meta"]["warnings"], [warning])
        self.assertEqual(b["totals"]["discount"]["value"], D("0"))
        # down: the same
        s.stop_service("loyalty")
        try:
            b = self.assertEval(s.evaluate(req))
            self.assertEqual(s.applied(b, w["id"]), [])
            self.assertEqual(b["meta"]["warnings"], [warning])
            # a basket without a customer asks nothing: no warning
            anon = basket(gid, [item("L1", art, 1, "50.00")])
            self.assertNotIn("warnings", self.assertEval(s.evaluate(anon))["meta"])
        finally:
            s.start_service("loyalty")
        s.wait_for_promotion(w["id"], req)
        # the gateway has reconnected too (the tests after this one use it)
        harness.wait_until(lambda: s.get("/api/v1/LoyaltyProgram").status == 200, 10,
                           what="gateway reconnected to loyalty")

    def test_f2_coupon_and_personal_promotion_in_one_basket(self):
        # The evaluator asks coupon.Check and loyalty.Assignments.active side
        # by side: both answers count, and a stalled loyalty service loses
        # only its own (the coupon's answer, come meanwhile, still counts).
        s = self.stack
        gid, art, vt, vp = self.voucher_setup()
        w, cid = self.personal(gid, art, 10)
        code = self.assertStatusBody(s.post("/api/v1/CouponCodes",
                                            {"couponTypeId": vt["id"]}), 201)["code"]
        req = basket(gid, [item("L1", art, 1, "20.00")], customer={"customerId": cid},
                     coupons=[{"code": code}])
        s.wait_for_promotion(w["id"], req)
        b = self.assertEval(s.evaluate(req))
        self.assertEqual(s.applied(b, w["id"]), [("L1", D("2.00"))])
        self.assertEqual(s.applied(b, vp["id"]), [("L1", D("5.00"))])
        self.assertEqual(b["totals"]["grandTotal"]["value"], D("13.00"))
        self.assertNotIn("warnings", b["meta"])
        pid = s.procs["loyalty"].pid
        harness.stall(pid)
        try:
            b = self.assertEval(s.evaluate(req))
        finally:
            os.kill(pid, signal.SIGCONT)
        self.assertEqual(s.applied(b, w["id"]), [])
        self.assertEqual(s.applied(b, vp["id"]), [("L1", D("5.00"))])
        self.assertEqual(b["totals"]["grandTotal"]["value"], D("15.00"))
        self.assertEqual([x["code"] for x in b["meta"]["warnings"]], ["LOYALTY_UNAVAILABLE"])

    # -- redeem through the API ------------------------------------------------
    def test_g_redeem_through_the_api(self):
        s = self.stack
        gid, art, vt, vp = self.voucher_setup()
        self.program(False, vt["id"])
        cid = self.contact(email=email())["id"]
        other = self.contact(email=email())["id"]
        self.receipt(cid, "1000.00")
        v1 = self.assertStatusBody(s.post("/api/v3/reward-vouchers", {"contactId": cid}), 201)
        v2 = self.assertStatusBody(s.post("/api/v3/reward-vouchers", {"contactId": cid}), 201)
        self.assertEqual(self.balance(cid), 0)
        code = v1["voucherNumber"]
        path = "/api/v3/reward-vouchers/%s/redeem" % v1["id"]
        # refusals: nothing changes
        self.assertError(s.post(path), 400, "VALIDATION_FAILED", "contactId")
        self.assertError(s.post(path, {"contactId": cid, "x": 1}), 400, "VALIDATION_FAILED",
                         "x")
        self.assertError(s.post(path + "?contactId=" + cid, {"contactId": other}), 400,
                         "VALIDATION_FAILED", "contactId")
        self.assertError(s.post(path + "?contactId=" + other), 404, "RewardVoucherNotFound",
                         "id")
        self.assertError(s.post(path, {"contactId": other}), 404, "RewardVoucherNotFound", "id")
        self.assertError(s.post("/api/v3/reward-vouchers/%s/redeem" % harness.new_id(),
                                {"contactId": cid}), 404, "RewardVoucherNotFound", "id")
        self.assertError(s.post(path, {"contactId": harness.new_id()}), 404, "ContactNotFound",
                         "contactId")
        self.assertEqual(self.vouchers(cid, "/available")["totalCount"], 2)
        self.assertEqual(self.vouchers(other)["totalCount"], 0)
        self.assertEqual(self.code_doc(code)["status"], "ACTIVE")
        # redeem (contactId in the query, no body): the list shape, redeemed
        red = self.assertOk(s.post(path + "?contactId=" + cid))
        self.assertRegex(red["redeemedOn"], harness.ISO_RE)
        self.assertJson(dict(v1, redeemed=True, redeemedOn=red["redeemedOn"]), red)
        self.assertError(s.post(path, {"contactId": cid}), 409,
                         "RewardVoucherAlreadyRedeemed", "id")
        self.assertEqual(self.vouchers(cid, "/redeemed")["items"], [red])
        self.assertEqual(self.vouchers(cid, "/available")["items"], [v2])
        self.assertEqual(self.balance(cid), 0)
        # the code is withdrawn: no till can use it
        self.assertJson({"code": code, "customerId": cid, "status": "CANCELLED"},
                        self.code_doc(code), subset=True)
        b = self.assertEval(s.evaluate(basket(gid, [item("L1", art, 1, "20.00")],
                                              coupons=[{"code": code}],
                                              customer={"customerId": cid})))
        self.assertEqual([(x["code"], x["reason"]) for x in b["invalidCoupons"]],
                         [(code, "CANCELLED")])
        self.assertEqual(b.get("appliedCoupons", []), [])
        # coupon.RedeemVoucher is idempotent; another customer is refused

        def rpc(vid, customer):
            st, raw = s.rpc_call("coupon", "coupon.RedeemVoucher", tenant="default",
                                 body=json.dumps({"voucherId": vid,
                                                  "customerId": customer}).encode())
            return st, json.loads(raw) if raw else None
        st, doc = rpc(v1["id"], cid)
        self.assertEqual((st, doc["code"], doc["status"]), (200, code, "CANCELLED"))
        st, _ = rpc(v2["id"], other)
        self.assertEqual(st, 409)
        self.assertEqual(self.code_doc(v2["voucherNumber"])["status"], "ACTIVE")
        st, _ = rpc(harness.new_id(), cid)
        self.assertEqual(st, 404)
        # a redeem cut short after the coupon service withdrew the code (the
        # loyalty write lost): the retry completes it
        st, doc = rpc(v2["id"], cid)
        self.assertEqual((st, doc["status"]), (200, "CANCELLED"))
        self.assertEqual(self.vouchers(cid, "/available")["totalCount"], 1)
        red2 = self.assertOk(s.post("/api/v3/reward-vouchers/%s/redeem" % v2["id"],
                                    {"contactId": cid, "redemptionChannel": "POS"}))
        self.assertEqual((red2["id"], red2["redeemed"]), (v2["id"], True))
        self.assertEqual(self.vouchers(cid, "/available")["totalCount"], 0)
        harness.wait_until(
            lambda: [(e["type"], e["reference"]) for e in self.loyalty_events(cid)
                     if e["type"].startswith("VOUCHER")] ==
            [("VOUCHER_CREATED", {"string": code}),
             ("VOUCHER_CREATED", {"string": v2["voucherNumber"]}),
             ("VOUCHER_REDEEMED", {"string": code}),
             ("VOUCHER_REDEEMED", {"string": v2["voucherNumber"]})],
            15, what="the voucher events")

    def test_g2_redeem_while_the_coupon_service_is_down_changes_nothing(self):
        s = self.stack
        gid, art, vt, vp = self.voucher_setup()
        self.program(False, vt["id"])
        cid = self.contact(email=email())["id"]
        self.receipt(cid, "500.00")
        v = self.assertStatusBody(s.post("/api/v3/reward-vouchers", {"contactId": cid}), 201)
        path = "/api/v3/reward-vouchers/%s/redeem" % v["id"]
        s.stop_service("coupon")
        try:
            self.assertError(s.post(path, {"contactId": cid}), 503, "UNAVAILABLE")
            self.assertEqual(self.vouchers(cid, "/available")["items"], [v])
        finally:
            s.start_service("coupon")
        got = {}

        def redeemed():
            r = s.post(path, {"contactId": cid})
            if r.status == 503:
                return False
            got["r"] = r
            return True
        harness.wait_until(redeemed, 10, interval=0.1, what="coupon service back")
        self.assertTrue(self.assertOk(got["r"])["redeemed"])
        harness.wait_until(lambda: s.get("/api/v1/CouponTypes").status == 200, 10,
                           what="gateway reconnected to coupon")
        self.assertEqual(self.code_doc(v["voucherNumber"])["status"], "CANCELLED")

    # -- the level for LOYALTY_TIER --------------------------------------------
    def test_h_level_from_loyalty_for_loyalty_tier(self):
        s = self.stack
        gid = self.pos_group()["id"]
        art = uniq("ART")
        gold = promotion("Gold 10%", [{"type": "ARTICLE", "values": [art]},
                                      {"type": "LOYALTY_TIER", "values": ["GOLD"]}],
                         [harness.pct_action(10, articles=[art])], pos_groups=[gid])
        s.create_promotion(gold)
        mn = uniq("GOLD")
        r = s.post("/api/v3/contacts/import?firstRow=1",
                   [{"memberNumber": mn, "email": email(), "pointsBalance": 0,
                     "level": "GOLD"}])
        self.assertOk(r)
        gid_c = self.assertOk(s.get("/api/v3/contacts/id?customKey=" + mn))
        o = self.assertOk(s.get("/api/v3/contactoverview?contactId=" + gid_c))
        self.assertEqual(o["loyalty"]["level"], "GOLD")
        base = self.contact(email=email())["id"]

        def sale(customer):
            req = basket(gid, [item("L1", art, 1, "50.00")])
            if customer is not None:
                req["customer"] = customer
            return req
        s.wait_for_promotion(gold["id"], sale({"customerId": "probe",
                                               "loyalty": {"tier": "GOLD"}}))
        ten = [("L1", D("5.00"))]
        # the GOLD member, no tier in the basket: loyalty's level (by id and
        # by memberNumber), on evaluate and simulate
        b = self.assertEval(s.evaluate(sale({"customerId": gid_c})))
        self.assertEqual(s.applied(b, gold["id"]), ten)
        self.assertNotIn("warnings", b["meta"])
        b = self.assertEval(s.simulate(sale({"loyaltyCardNo": mn})), True)
        self.assertEqual(s.applied(b, gold["id"]), ten)
        # a basket stating the tier keeps its own
        b = self.assertEval(s.simulate(sale({"customerId": gid_c,
                                             "loyalty": {"tier": "SILVER"}})), True)
        self.assertEqual(s.applied(b, gold["id"]), [])
        b = self.assertEval(s.simulate(sale({"customerId": base,
                                             "loyalty": {"tier": "GOLD"}})), True)
        self.assertEqual(s.applied(b, gold["id"]), ten)
        # a BASE member, an unknown customer, no customer: no GOLD
        for who in ({"customerId": base}, {"customerId": harness.new_id()}, None):
            b = self.assertEval(s.simulate(sale(who)), True)
            self.assertEqual(s.applied(b, gold["id"]), [], who)
            self.assertNotIn("warnings", b["meta"])


class WaitingForLoyalty(harness.TestCase):
    """A member's evaluate waits for loyalty (and a coupon code's for the
    coupon service) without a thread: the evaluator takes the call over and
    the answers finish it (dre_rpc_reply_later), so baskets waiting for a
    slow loyalty service hold no worker."""

    @classmethod
    def setUpClass(cls):
        # loyalty is waited for up to 10 s (default 50 ms): long enough to
        # see the evaluates waiting, then let loyalty answer them
        cls.stack = harness.Stack(opts={"evaluator": ["loyalty.timeout_ms=10000"],
                                        "gateway": ["rpc.timeout_ms=60000"]})

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def gauge(self, name):
        st, body = self.stack.rpc_call("evaluator", "evaluator.Metrics")
        self.assertEqual(st, 200, body)
        for line in body.decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        self.fail("%s not in the evaluator's metrics" % name)

    def test_member_baskets_wait_for_loyalty_without_workers(self):
        s = self.stack
        gid, art, vt, vp = Rewards.voucher_setup(self)
        w, cid = Rewards.personal(self, gid, art, 10)
        # half of the baskets also carry a coupon code: its check is answered
        # at once, loyalty's not until the service runs again
        codes = [self.assertStatusBody(s.post("/api/v1/CouponCodes", {"couponTypeId": vt["id"]}),
                                       201)["code"] for _ in range(3)]
        reqs = [basket(gid, [item("L1", art, 1, "20.00")], customer={"customerId": cid},
                       **({"coupons": [{"code": codes[i // 2]}]} if i % 2 == 0 else {}))
                for i in range(6)]
        s.wait_for_promotion(w["id"], reqs[1])
        self.assertEqual(self.gauge("dre_rpc_server_pending_calls"), 0)
        pid = s.procs["loyalty"].pid
        harness.stall(pid)
        answers = [None] * len(reqs)
        threads = []
        try:
            for i, req in enumerate(reqs):
                def send(i=i, req=req):
                    answers[i] = s.evaluate(req)
                t = threading.Thread(target=send)
                t.start()
                threads.append(t)
            # every evaluate is waiting, taken over, none on a worker (the
            # metrics call itself is one, a health probe may be another)
            harness.wait_until(lambda: self.gauge("dre_rpc_server_pending_calls") == len(reqs),
                               10, what="six evaluates waiting for loyalty")
            self.assertLess(self.gauge("dre_rpc_server_held_calls"), len(reqs))
            self.assertTrue(all(a is None for a in answers))
            # Baskets without a customer are not held back by them: the
            # gateway sends an evaluate that waits for loyalty on its own,
            # never among the ones it coalesces (rpc.coalesce).
            plain = [None] * 4

            def send_plain(i):
                plain[i] = s.evaluate(basket(gid, [item("L1", art, 1, "20.00")]), timeout=3)
            ts = [threading.Thread(target=send_plain, args=(i,)) for i in range(len(plain))]
            for t in ts:
                t.start()
            for t in ts:
                t.join(10)
            for r in plain:
                self.assertEqual(s.applied(self.assertEval(r), w["id"]), [])
            self.assertTrue(all(a is None for a in answers))
        finally:
            os.kill(pid, signal.SIGCONT)
            for t in threads:
                t.join(30)
        for i, r in enumerate(answers):
            b = self.assertEval(r)
            self.assertEqual(s.applied(b, w["id"]), [("L1", D("2.00"))], i)
            self.assertEqual(s.applied(b, vp["id"]), [("L1", D("5.00"))] if i % 2 == 0 else [],
                             i)
            self.assertNotIn("warnings", b["meta"], i)
        harness.wait_until(lambda: self.gauge("dre_rpc_server_pending_calls") == 0, 10,
                           what="no evaluate left waiting")

    assertStatusBody = Rewards.assertStatusBody


if __name__ == "__main__":
    harness.main()
