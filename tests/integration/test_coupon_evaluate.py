#!/usr/bin/env python3
# test_coupon_evaluate.py -- coupons on /pos/v2/evaluate and /pos/v2/simulate
# through the real processes (issue 5): a coupon-triggered promotion applies
# only with a valid code of its type (couponCode, triggeredByCoupon,
# appliedCoupons), every invalidCoupons reason that HTTP can provoke, a
# personal code without a customer (holding it is the proof) and with another,
# non-stackable coupons, confirm carrying the couponCode, simulate leaving
# the code alone, and the coupon service down (UNAVAILABLE, answered at once).
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, basket, item, uniq, wait_until  # noqa: E402


def code_of(r):
    return {c["code"]: c["reason"] for c in r["invalidCoupons"]}


class CouponEvaluate(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        # rpc.coalesce's default follows the CPU count: 2 makes the
        # coalescing test below the same on any machine.
        s = cls.stack = harness.shared_stack(opts={"gateway": ["rpc.coalesce=2"]})
        cls.gid = s.create_pos_group()["id"]
        cls.art = uniq("ART")

        def new_type(**kw):
            doc = {"name": uniq("Type"), "type": "INDIVIDUAL"}
            doc.update(kw)
            r = s.post("/api/v1/CouponTypes", doc)
            assert r.status == 201, r
            return r.body

        def coupon_promo(name, pct, ctype):
            p = harness.promotion(uniq(name), [],
                                  [harness.pct_action(pct, articles=[cls.art])],
                                  pos_groups=[cls.gid], ptype="COUPON",
                                  couponTypeIds=[ctype["id"]])
            s.create_promotion(p)
            wait_until(lambda: s.get("/api/v1/CouponTypes/" + ctype["id"])
                       .body["promotionIds"] == [p["id"]], 10,
                       what="the coupon service to learn the promotion link")
            return p

        cls.new_type = staticmethod(new_type)
        cls.t = new_type()                          # stackable
        cls.n = new_type(isStackable=False)         # not stackable
        cls.p = coupon_promo("Coupon ten", 10, cls.t)
        cls.pn = coupon_promo("Coupon five", 5, cls.n)
        cls.req = basket(cls.gid, [item("L1", cls.art, 2, "50.00")])
        # The evaluator learns the promotion from the catalog feed.
        probe = cls.code(cls.t)
        s.wait_for_promotion(cls.p["id"], dict(cls.req, coupons=[{"code": probe}]))

    @classmethod
    def code(cls, ctype, **kw):
        doc = {"couponTypeId": ctype["id"], "code": uniq("CPN").upper().replace("_", "-")}
        doc.update(kw)
        r = cls.stack.post("/api/v1/CouponCodes", doc)
        assert r.status == 201, r
        return r.body["code"]

    def sim(self, coupons, **kw):
        req = dict(self.req, coupons=[{"code": c} for c in coupons], **kw)
        return self.assertEval(self.stack.simulate(req), simulation=True)

    def status_of(self, code):
        return self.assertOk(self.stack.get("/api/v1/CouponCodes/" + code))["status"]

    # -- calls that meet in the gateway -------------------------------------------------
    def batched_calls(self):
        """The gateway's count of calls it sent coalesced with others."""
        r = self.stack.get("/metrics")
        self.assertEqual(r.status, 200)
        return sum(int(n) for n in re.findall(
            r'^dre_rpc_client_batched_calls_total\{service="gateway",[^}]*\} (\d+)$',
            r.text, re.M))

    def test_coalesced_evaluates_answer_as_alone(self):
        """Evaluates that meet in the gateway leave for the evaluator in one
        message (rpc.coalesce); one with a coupon goes alone at once (its
        coupon check waits for the coupon service, and would hold back the
        calls queued behind it). Rounds of 16 at once -- evaluates and
        simulates, a quarter with a coupon -- until the gateway has
        coalesced some: each answer is the one the same request got alone,
        but for the transaction's counter."""
        s = self.stack
        c = self.code(self.t)
        reqs = []
        for i in range(16):
            coupons = [{"code": c}] if i % 4 == 0 else []
            reqs.append((i % 2 == 1, dict(self.req, header={"transactionId": uniq("TXC")},
                                          coupons=coupons)))

        def call(sim, req):
            return (s.simulate if sim else s.evaluate)(req)

        def body(r, sim, counter):
            b = self.assertEval(r, simulation=sim)
            self.assertEqual(b["meta"]["header"]["transactionCounter"], counter)
            b["meta"]["header"].pop("transactionCounter")
            b["meta"].pop("evaluatedAt")
            b["meta"].pop("dataAge", None)
            return b
        alone = [body(call(sim, req), sim, 1) for sim, req in reqs]
        self.assertIn(self.p["id"], str(alone[0]))      # the coupon's promotion
        self.assertNotIn(self.p["id"], str(alone[2]))
        before = self.batched_calls()
        for rnd in range(1, 31):
            got = [None] * len(reqs)

            def run(i):
                got[i] = call(*reqs[i])
            threads = [threading.Thread(target=run, args=(i,)) for i in range(len(reqs))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            for i, (sim, _) in enumerate(reqs):
                # An evaluate counts its transaction's iterations; a simulate
                # writes none (its transaction has no evaluate: always 1).
                self.assertEqual(body(got[i], sim, 1 if sim else rnd + 1), alone[i], i)
            if self.batched_calls() > before:
                return
        self.fail("30 rounds of 16 evaluates at once and none coalesced")

    # -- the promotion a coupon unlocks ---------------------------------------------
    def test_coupon_triggers_promotion(self):
        c = self.code(self.t)
        txn = uniq("TX")
        b = self.assertEval(self.stack.evaluate(dict(
            self.req, header={"transactionId": txn}, coupons=[{"code": c}])))
        d = b["lineItems"][0]["discounts"]
        self.assertEqual(len(d), 1, d)
        self.assertJson({"promotionId": self.p["id"], "couponCode": c,
                         "triggeredByCoupon": True, "promotionType": "COUPON",
                         "discountAmount": {"value": D("10.00"), "currency": "EUR"}},
                        d[0], subset=True)
        self.assertEqual(b["appliedCoupons"], [{"code": c,
                                                "couponTypeName": self.t["name"],
                                                "promotionIds": [self.p["id"]]}])
        self.assertEqual(b["invalidCoupons"], [])
        self.assertEqual(b["totals"]["discount"]["value"], D("10.00"))
        # evaluate does not reserve either (coupon.Check is read-only)
        self.assertEqual(self.status_of(c), "ACTIVE")

        # confirm echoing the answer's couponCode is accepted, and the
        # TransactionConfirmed event carries it
        ctr = b["meta"]["header"]["transactionCounter"]
        r = self.stack.confirm(txn, ctr, [{
            "promotionId": self.p["id"], "couponCode": c,
            "discountAmount": {"value": D("10.00"), "currency": "EUR"}}])
        self.assertOk(r)
        evs = [e for e in self.stack.events("dre.transactions.confirmed")
               if e["value"] and e["value"]["transactionId"] == txn]
        self.assertEqual(len(evs), 1, evs)
        cc = evs[0]["value"]["promotions"][0]["couponCode"]
        self.assertIn(cc, (c, {"string": c}))

    def test_confirm_other_coupon_code_refused(self):
        c = self.code(self.t)
        txn = uniq("TX")
        b = self.assertEval(self.stack.evaluate(dict(
            self.req, header={"transactionId": txn}, coupons=[{"code": c}])))
        r = self.stack.confirm(txn, b["meta"]["header"]["transactionCounter"], [{
            "promotionId": self.p["id"], "couponCode": "SOMETHING-ELSE",
            "discountAmount": {"value": D("10.00"), "currency": "EUR"}}])
        self.assertError(r, 409, "CONFLICT", "appliedPromotions[0].couponCode")

    def test_not_applied_without_code(self):
        b = self.sim([])
        self.assertEqual(self.stack.applied(b, self.p["id"]), [])
        self.assertEqual((b["appliedCoupons"], b["invalidCoupons"]), ([], []))
        b = self.sim([], includeMissedPromotions=True)
        m = [x for x in b["missedPromotions"] if x["promotionId"] == self.p["id"]]
        self.assertEqual(len(m), 1, b["missedPromotions"])
        self.assertEqual(m[0]["stage"], "COUPON")
        # a code of another type does not unlock it
        b = self.sim([self.code(self.n)])
        self.assertEqual(self.stack.applied(b, self.p["id"]), [])
        self.assertEqual(len(self.stack.applied(b, self.pn["id"])), 1)

    def test_simulate_does_not_reserve(self):
        c = self.code(self.t)
        b = self.sim([c])
        self.assertEqual(b["appliedCoupons"][0]["code"], c)
        self.assertEqual(b["lineItems"][0]["discounts"][0]["couponCode"], c)
        self.assertEqual(self.status_of(c), "ACTIVE")
        # and another transaction may still reserve it
        r = self.stack.post("/pos/coupons/reserve", {"code": c, "transactionId": uniq("TX")},
                            user="pos-reader")
        self.assertOk(r)

    # -- invalidCoupons -------------------------------------------------------------
    def test_invalid_reasons(self):
        s = self.stack
        unknown = "NOPE-" + uniq("X").upper().replace("_", "-")
        redeemed = self.code(self.t)
        tx = uniq("TX")
        res = self.assertOk(s.post("/pos/coupons/reserve", {"code": redeemed, "transactionId": tx},
                                   user="pos-reader"))
        self.assertIs(res["reserved"], True)
        r = self.assertOk(s.post("/pos/coupons/redeem",
                                 {"reservationId": res["reservationId"], "transactionId": tx},
                                 user="pos-reader"))
        self.assertIs(r["redeemed"], True)
        held = self.code(self.t)
        r = self.assertOk(s.post("/pos/coupons/reserve",
                                 {"code": held, "transactionId": uniq("TX")},
                                 user="pos-reader"))
        self.assertIs(r["reserved"], True)
        personal = self.code(self.t, customerId="CUST-OTHER")
        g = self.new_type(type="GENERIC", maxRedemptions=1)
        generic = self.code(g)
        r = self.assertOk(s.post("/pos/coupons/reserve",
                                 {"code": generic, "transactionId": uniq("TX")},
                                 user="pos-reader"))
        self.assertIs(r["reserved"], True)
        later = self.code(self.new_type(validFrom="2027-01-01T00:00:00Z",
                                        validTo="2027-12-31T23:59:59Z"))
        cancelled = self.code(self.t)
        self.assertOk(s.request("PATCH", "/api/v1/CouponCodes/" + cancelled,
                                {"status": "CANCELLED"}))
        good = self.code(self.t)
        codes = [unknown, redeemed, held, personal, generic, later, cancelled, good, good]
        b = self.sim(codes, customer={"customerId": "CUST-ME"})
        self.assertEqual(b["invalidCoupons"], [
            {"code": unknown, "reason": "NOT_FOUND"},
            {"code": redeemed, "reason": "REDEEMED"},
            {"code": held, "reason": "RESERVED_BY_OTHER"},
            {"code": personal, "reason": "OTHER_CUSTOMER"},
            {"code": generic, "reason": "LIMIT_REACHED"},
            {"code": later, "reason": "NOT_ACTIVE_YET"},
            {"code": cancelled, "reason": "CANCELLED"},
            {"code": good, "reason": "DUPLICATE"},
        ])
        self.assertEqual([c["code"] for c in b["appliedCoupons"]], [good])
        self.assertEqual(len(self.stack.applied(b, self.p["id"])), 1)

    def test_personal_code(self):
        """coupon.Check judges a personal code as reserve does (PRODUCT-
        DECISIONS §5): a basket without a customer uses it (holding the code
        is the proof), its owner's basket too, another customer's basket
        gets OTHER_CUSTOMER."""
        owner = uniq("OWNER")
        c = self.code(self.t, customerId=owner)
        applied = [{"code": c, "couponTypeName": self.t["name"],
                    "promotionIds": [self.p["id"]]}]
        # evaluate, no customer
        b = self.assertEval(self.stack.evaluate(dict(
            self.req, header={"transactionId": uniq("TX")}, coupons=[{"code": c}])))
        self.assertEqual((b["appliedCoupons"], b["invalidCoupons"]), (applied, []))
        self.assertEqual(self.stack.applied(b, self.p["id"]), [("L1", D("10.00"))])
        self.assertEqual(self.status_of(c), "ACTIVE")
        # its owner
        b = self.sim([c], customer={"customerId": owner})
        self.assertEqual((b["appliedCoupons"], b["invalidCoupons"]), (applied, []))
        # another customer
        for call, sim in ((self.stack.evaluate, False), (self.stack.simulate, True)):
            b = self.assertEval(call(dict(
                self.req, header={"transactionId": uniq("TX")}, coupons=[{"code": c}],
                customer={"customerId": uniq("OTHER")})), simulation=sim)
            self.assertEqual((b["appliedCoupons"], b["invalidCoupons"]),
                             ([], [{"code": c, "reason": "OTHER_CUSTOMER"}]))
            self.assertEqual(self.stack.applied(b, self.p["id"]), [])

    def test_expired_at_basket_time(self):
        c = self.code(self.t)  # its type has no window
        # a basket timed after its type's window closed: EXPIRED
        e = self.code(self.new_type(validFrom="2026-01-01T00:00:00Z",
                                    validTo="2026-12-31T23:59:59Z"))
        b = self.sim([e, c], timestamp="2027-02-01T10:00:00Z")
        self.assertEqual(code_of(b), {e: "EXPIRED"})
        # the coupon-triggered promotion skips validity: still applied
        self.assertEqual(b["appliedCoupons"][0]["promotionIds"], [self.p["id"]])

    def test_not_stackable(self):
        n1, s1 = self.code(self.n), self.code(self.t)
        b = self.sim([n1, s1])
        self.assertEqual(b["invalidCoupons"], [{"code": s1, "reason": "NOT_STACKABLE"}])
        self.assertEqual(b["appliedCoupons"], [{"code": n1, "couponTypeName": self.n["name"],
                                                "promotionIds": [self.pn["id"]]}])
        self.assertEqual(self.stack.applied(b, self.p["id"]), [])
        # the first applied wins: a stackable code first keeps the later
        # non-stackable one out
        b = self.sim([s1, n1])
        self.assertEqual(b["invalidCoupons"], [{"code": n1, "reason": "NOT_STACKABLE"}])
        self.assertEqual([c["code"] for c in b["appliedCoupons"]], [s1])
        # two stackable codes of different types combine
        t2 = self.new_type()
        s2 = self.code(t2)
        b = self.sim([s1, s2])
        self.assertEqual(b["invalidCoupons"], [])
        self.assertEqual(b["appliedCoupons"][1], {"code": s2, "couponTypeName": t2["name"],
                                                  "promotionIds": []})

    def test_string_array_refused(self):
        r = self.stack.simulate(dict(self.req, coupons=["A", "B"]))
        self.assertError(r, 400, "VALIDATION_FAILED", "coupons")
        r = self.stack.evaluate(dict(self.req, coupons=["A"]))
        self.assertError(r, 400, "VALIDATION_FAILED", "coupons")

    # -- the coupon service down (last: it restarts the service) --------------------
    def test_zz_coupon_service_down(self):
        c = self.code(self.t)
        self.stack.stop_service("coupon")
        try:
            for call in (self.stack.evaluate, self.stack.simulate):
                t0 = time.monotonic()
                r = call(dict(self.req, coupons=[{"code": c}, {"code": "OTHER"}]))
                took = time.monotonic() - t0
                b = self.assertEval(r, simulation=call == self.stack.simulate)
                self.assertEqual(b["invalidCoupons"],
                                 [{"code": c, "reason": "UNAVAILABLE"},
                                  {"code": "OTHER", "reason": "UNAVAILABLE"}])
                self.assertEqual(b["appliedCoupons"], [])
                self.assertEqual(self.stack.applied(b, self.p["id"]), [])
                self.assertLess(took, harness.deadline(1.5))
        finally:
            self.stack.start_service("coupon")
        wait_until(lambda: self.sim([c])["appliedCoupons"], harness.deadline(10),
                   what="coupons to work again")


if __name__ == "__main__":
    harness.main()
