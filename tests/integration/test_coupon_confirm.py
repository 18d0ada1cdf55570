#!/usr/bin/env python3
# test_coupon_confirm.py -- the coupon effects of confirm, through the real
# processes: appliedPromotions[].couponCode redeems a code reserved for the
# transaction, an ACTIVE INDIVIDUAL code and a GENERIC one (its limits
# counted); a code that cannot be redeemed is reported (PARTIAL), never
# refused; a promotion's ISSUE_COUPON action issues post-purchase codes,
# visible in the side-effects poll and /api/v1/CouponCodes; a repeated
# confirm does nothing twice; and under kill -9 of the coupon service during
# a stream of confirms every code is redeemed exactly once and every sale
# gets exactly its post-purchase codes.
#
# Confirm spends only what evaluate granted (issue 10.8): every code is
# presented at evaluate, and a couponCode on a promotion no coupon triggered
# in the iteration is a 409.
# DRE_COUPON_CRASH_CONFIRMS sets the stream length (default 300; 150 under
# sanitizers, which set DRE_SANITIZE).
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import streams  # noqa: E402
from harness import D, basket, item, pct_action, promotion, uniq  # noqa: E402

SANITIZED = bool(os.environ.get("DRE_SANITIZE"))
CONFIRMS = int(os.environ.get("DRE_COUPON_CRASH_CONFIRMS",
                              150 if SANITIZED else 300))
KILLS = 6
STREAM_SECONDS = 8.0
CLIENTS = 8


class CouponConfirm(harness.TestCase):
    # -- helpers ---------------------------------------------------------------
    def new_type(self, kind="INDIVIDUAL", **kw):
        doc = {"name": uniq("Type"), "type": kind, "prefix": "CC"}
        doc.update(kw)
        r = self.stack.post("/api/v1/CouponTypes", doc)
        self.assertStatus(r, 201)
        return r.body

    def new_code(self, ctype, **kw):
        doc = {"couponTypeId": ctype["id"]}
        doc.update(kw)
        r = self.stack.post("/api/v1/CouponCodes", doc)
        self.assertStatus(r, 201)
        return r.body["code"]

    def code_doc(self, code):
        r = self.stack.get("/api/v1/CouponCodes/" + code)
        self.assertStatus(r, 200)
        return r.body

    def codes_of(self, **filters):
        """Every code matching the /api/v1/CouponCodes filters."""
        out, skip = [], 0
        while True:
            q = "&".join("%s=%s" % kv for kv in sorted(filters.items()))
            r = self.stack.get("/api/v1/CouponCodes?%s&$top=1000&$skip=%d" % (q, skip))
            self.assertStatus(r, 200)
            out += r.body["value"]
            skip += len(r.body["value"])
            if not r.body["value"] or skip >= r.body["count"]:
                return out

    def reserve(self, code, txn, customer=None):
        body = {"code": code, "transactionId": txn}
        if customer:
            body["customerId"] = customer
        r = self.stack.post("/pos/coupons/reserve", body, user="pos-reader")
        self.assertIs(self.assertOk(r)["reserved"], True)
        return r.body["reservationId"]

    def setup_promotions(self, linked_type=None, q_type=None):
        """P: 10% on article A (linked to linked_type by couponTypeIds);
        Q: 5% on article B with ISSUE_COUPON of 2 codes of a new type
        (linked to q_type when given)."""
        s = self.stack
        gid = self.pos_group()["id"]
        art_a, art_b = uniq("A"), uniq("B")
        issue_type = self.new_type("INDIVIDUAL", prefix="PP", codeLength=12,
                                   validityDays=30)
        extra = {"couponTypeIds": [linked_type["id"]]} if linked_type else {}
        p = promotion("Coupon promo %s" % art_a, [{"type": "ARTICLE", "values": [art_a]}],
                      [pct_action(10, articles=[art_a])], pos_groups=[gid], **extra)
        qextra = {"couponTypeIds": [q_type["id"]]} if q_type else {}
        q = promotion("Post-purchase %s" % art_b, [{"type": "ARTICLE", "values": [art_b]}],
                      [pct_action(5, articles=[art_b]),
                       {"type": "ISSUE_COUPON", "couponTypeId": issue_type["id"],
                        "quantity": 2}],
                      pos_groups=[gid], **qextra)
        s.create_promotion(p)
        s.create_promotion(q)
        probe = basket(gid, [item("L1", art_a, 1, "10.00")])
        if linked_type:
            # A coupon-linked promotion applies only with a valid code of its
            # type; simulate reserves nothing, so a fresh code can probe.
            probe["coupons"] = [{"code": self.new_code(linked_type)}]
        s.wait_for_promotion(p["id"], probe)
        qprobe = basket(gid, [item("L1", art_b, 1, "10.00")])
        if q_type:
            qprobe["coupons"] = [{"code": self.new_code(q_type)}]
        s.wait_for_promotion(q["id"], qprobe)
        return gid, art_a, art_b, p, q, issue_type

    def sale(self, gid, txn, lines, applied, customer=None, coupons=()):
        """evaluate + confirm; applied: [(promotion, couponCode or None)]."""
        req = basket(gid, lines, txn=txn)
        if customer:
            req["customerId"] = customer
        if coupons:
            req["coupons"] = [{"code": c} for c in coupons]
        r = self.stack.evaluate(req)
        b = self.assertEval(r)
        counter = b["meta"]["header"]["transactionCounter"]
        granted = {d["promotionId"] for li in b["lineItems"] for d in li["discounts"]}
        ap = []
        for p, code in applied:
            self.assertIn(p["id"], granted, b)
            e = {"promotionId": p["id"]}
            if code:
                e["couponCode"] = code
            ap.append(e)
        kw = {"customerId": customer} if customer else {}
        r = self.stack.confirm(txn, counter, ap, **kw)
        self.assertStatus(r, 200)
        return counter, r.body

    def assertJob(self, txn, counter, status, redeemed, ncoupons=0, reason=None):
        j = self.stack.wait_side_effects(txn, counter, statuses=(status,))
        self.assertEqual((j["status"], j["couponsRedeemed"], len(j["postPurchaseCoupons"])),
                         (status, redeemed, ncoupons), j)
        if reason is None:
            self.assertIsNone(j["reason"], j)
        else:
            self.assertIn(reason, j["reason"] or "", j)
        return j

    # -- the three ways a code is redeemed ------------------------------------
    def test_redeem_reserved_active_generic(self):
        ti = self.new_type("INDIVIDUAL")
        tg = self.new_type("GENERIC", maxRedemptions=3, maxRedemptionsPerCustomer=1)
        gid, art_a, _, p, _, _ = self.setup_promotions(linked_type=ti)
        line = [item("L1", art_a, 1, "10.00")]

        # (a) a code reserved for the transaction
        code_a = self.new_code(ti)
        txn = uniq("TXA")
        res_id = self.reserve(code_a, txn)
        self.assertEqual(self.code_doc(code_a)["status"], "RESERVED")
        ca, first = self.sale(gid, txn, line, [(p, code_a)], coupons=[code_a])
        self.assertJob(txn, ca, "COMPLETED", 1)
        d = self.code_doc(code_a)
        self.assertEqual((d["status"], d["redemptionCount"], d["activeReservations"],
                          d["reservationRef"]), ("REDEEMED", 1, 0, None))
        # The reservation is spent: the POS cannot redeem it again.
        r = self.stack.post("/pos/coupons/redeem", {"reservationId": res_id,
                                                    "transactionId": txn},
                            user="pos-reader")
        self.assertJson({"redeemed": False, "reason": "REDEEMED",
                         "message": "reservation '%s' has already been redeemed" % res_id},
                        self.assertOk(r))

        # A repeated confirm answers the same and redeems nothing twice.
        r = self.stack.confirm(txn, ca, [{"promotionId": p["id"], "couponCode": code_a}])
        self.assertStatus(r, 200)
        self.assertEqual(r.body, first)
        self.assertJob(txn, ca, "COMPLETED", 1)
        self.assertEqual(self.code_doc(code_a)["redemptionCount"], 1)

        # (b) an ACTIVE INDIVIDUAL code, not reserved (lower case as typed)
        code_b = self.new_code(ti)
        txn = uniq("TXB")
        cb, _ = self.sale(gid, txn, line, [(p, code_b.lower())], coupons=[code_b])
        self.assertJob(txn, cb, "COMPLETED", 1)
        d = self.code_doc(code_b)
        self.assertEqual((d["status"], d["redemptionCount"]), ("REDEEMED", 1))

        # A personal code in a sale without a customer: holding it is the
        # proof (PRODUCT-DECISIONS §5), redeemed as its owner's. In a sale
        # of another customer it is not redeemed; the job says why.
        owner = uniq("OWNER")
        code_p = self.new_code(ti, customerId=owner)
        txn = uniq("TXP")
        cp, _ = self.sale(gid, txn, line, [(p, code_p)], coupons=[code_p])
        self.assertJob(txn, cp, "COMPLETED", 1)
        d = self.code_doc(code_p)
        self.assertEqual((d["status"], d["redemptionCount"], d["customerId"]),
                         ("REDEEMED", 1, owner))
        code_q = self.new_code(ti, customerId=owner)
        txn = uniq("TXP")
        cp, _ = self.sale(gid, txn, line, [(p, code_q)], customer=uniq("OTHER"),
                          coupons=[code_q])
        self.assertJob(txn, cp, "PARTIAL", 0,
                       reason="coupon: coupon '%s' not redeemed: the coupon belongs to "
                              "another customer (OTHER_CUSTOMER)" % code_q)
        self.assertEqual(self.code_doc(code_q)["status"], "ACTIVE")

        # Confirm spends only what evaluate granted (issue 10.8): a promotion
        # no coupon triggered cannot carry a code at confirm -- not an
        # unknown one, not one already spent, not a good one either.
        art_c = uniq("C")
        po = promotion("Open promo %s" % art_c, [{"type": "ARTICLE", "values": [art_c]}],
                       [pct_action(10, articles=[art_c])], pos_groups=[gid])
        self.stack.create_promotion(po)
        line = [item("L1", art_c, 1, "10.00")]
        for code in ("NO-SUCH-CODE", code_b, self.new_code(ti)):
            txn = uniq("TXX")
            b = self.assertEval(self.stack.evaluate(basket(gid, line, txn=txn)))
            counter = b["meta"]["header"]["transactionCounter"]
            r = self.stack.confirm(txn, counter, [{"promotionId": po["id"],
                                                   "couponCode": code}])
            self.assertError(r, 409, "CONFLICT", "appliedPromotions[0].couponCode")
            self.assertEqual(r.body["error"]["message"],
                             "promotion %s was not triggered by a coupon in this iteration: "
                             "coupon %s cannot be redeemed with it" % (po["id"], code))
            # the same sale without the code stands, and redeems nothing
            r = self.stack.confirm(txn, counter, [{"promotionId": po["id"]}])
            self.assertStatus(r, 200)
            self.assertJob(txn, counter, "COMPLETED", 0)
        self.assertEqual(self.code_doc(code_b)["redemptionCount"], 1)

        # (c) a GENERIC code: maxRedemptions 3, one per customer, presented
        # at evaluate for a promotion linked to its type.
        art_g = uniq("G")
        p = promotion("Generic promo %s" % art_g, [{"type": "ARTICLE", "values": [art_g]}],
                      [pct_action(10, articles=[art_g])], pos_groups=[gid],
                      couponTypeIds=[tg["id"]])
        self.stack.create_promotion(p)
        line = [item("L1", art_g, 1, "10.00")]
        code_g = self.new_code(tg)
        for n, cust in enumerate(("C1", "C2"), 1):
            txn = uniq("TXG")
            cg, _ = self.sale(gid, txn, line, [(p, code_g)], customer=cust, coupons=[code_g])
            self.assertJob(txn, cg, "COMPLETED", 1)
            d = self.code_doc(code_g)
            self.assertEqual((d["status"], d["redemptionCount"]), ("ACTIVE", n))
        # C1 again: over its per-customer limit (the basket named no customer,
        # so evaluate let the code through). The sale stands (confirm is never
        # refused); the code is not redeemed and the job says why.
        txn = uniq("TXG")
        cg, _ = self.sale(gid, txn, line, [(p, code_g)], customer="C1", coupons=[code_g])
        self.assertJob(txn, cg, "PARTIAL", 0,
                       reason="coupon: coupon '%s' not redeemed: the coupon's "
                              "redemption limit is reached (LIMIT_REACHED)" % code_g)
        self.assertEqual(self.code_doc(code_g)["redemptionCount"], 2)
        # A third customer reaches maxRedemptions: REDEEMED.
        txn = uniq("TXG")
        cg, _ = self.sale(gid, txn, line, [(p, code_g)], customer="C3", coupons=[code_g])
        self.assertJob(txn, cg, "COMPLETED", 1)
        d = self.code_doc(code_g)
        self.assertEqual((d["status"], d["redemptionCount"]), ("REDEEMED", 3))

    # -- post-purchase codes -----------------------------------------------------
    def test_post_purchase_codes(self):
        gid, _, art_b, _, q, it = self.setup_promotions()
        cust = uniq("CUST")
        txn = uniq("TXP")
        line = [item("L1", art_b, 1, "20.00")]
        c, first = self.sale(gid, txn, line, [(q, None)], customer=cust)
        j = self.assertJob(txn, c, "COMPLETED", 0, ncoupons=2)
        pc = j["postPurchaseCoupons"]
        for e in pc:
            self.assertEqual(sorted(e), ["code", "couponTypeId", "customerId", "issuedAt"])
            self.assertEqual((e["couponTypeId"], e["customerId"]), (it["id"], cust))
            self.assertRegex(e["code"], r"^PP[ABCDEFGHJKMNPQRSTUVWXYZ23456789]{12}$")
            self.assertRegex(e["issuedAt"], harness.ISO_RE)
        self.assertEqual(len({e["code"] for e in pc}), 2)
        listed = self.codes_of(customerId=cust)
        self.assertEqual(sorted(x["code"] for x in listed), sorted(e["code"] for e in pc))
        for x in listed:
            self.assertEqual((x["status"], x["couponTypeId"], x["origin"],
                              x["issuingPromotionId"], x["issuingTransactionId"],
                              x["redemptionCount"]),
                             ("ACTIVE", it["id"], "POST_PURCHASE", q["id"], txn, 0))
            self.assertIsNotNone(x["validTo"])
        # Usable by that customer at once.
        r = self.stack.post("/pos/coupons/validate",
                            {"code": pc[0]["code"], "customerId": cust}, user="pos-reader")
        self.assertStatus(r, 200)
        self.assertEqual(r.body["valid"], True, r.body)
        # A repeated confirm issues nothing more.
        r = self.stack.confirm(txn, c, [{"promotionId": q["id"]}], customerId=cust)
        self.assertStatus(r, 200)
        self.assertEqual(r.body, first)
        self.assertEqual(len(self.codes_of(customerId=cust)), 2)

        # Without a customer: codes for anyone.
        txn = uniq("TXP")
        c, _ = self.sale(gid, txn, line, [(q, None)])
        j = self.assertJob(txn, c, "COMPLETED", 0, ncoupons=2)
        self.assertEqual([e["customerId"] for e in j["postPurchaseCoupons"]], [None, None])
        for e in j["postPurchaseCoupons"]:
            d = self.code_doc(e["code"])
            self.assertEqual((d["status"], d["customerId"], d["issuingTransactionId"]),
                             ("ACTIVE", None, txn))

    # -- kill -9 of the coupon service during a stream ------------------------
    def test_zz_kill_coupon_during_stream(self):
        s = self.stack
        ti = self.new_type("INDIVIDUAL")
        tg = self.new_type("GENERIC", maxRedemptions=CONFIRMS)
        gid, art_a, art_b, p, q, it = self.setup_promotions(linked_type=ti, q_type=tg)
        tag = uniq("K")
        txns = ["%s-%04d" % (tag, i) for i in range(CONFIRMS)]
        codes = ["%s-%04d" % (tag, i) for i in range(CONFIRMS)]
        r = s.post("/api/v1/CouponCodes/import", {"couponTypeId": ti["id"], "codes": codes})
        self.assertStatus(r, 200)
        self.assertEqual((r.body["imported"], r.body["failed"]), (CONFIRMS, 0), r.body)
        generic = self.new_code(tg)
        # Every third sale's code is reserved for it beforehand.
        for i in range(0, CONFIRMS, 3):
            self.reserve(codes[i], txns[i])

        stream = streams.PacedStream(CONFIRMS, STREAM_SECONDS, CLIENTS)
        done = {}
        lines = [item("L1", art_a, 1, "10.00"), item("L2", art_b, 1, "20.00")]

        def one(i):
            req = basket(gid, lines, txn=txns[i], customerId="KC-%d" % i,
                         coupons=[{"code": codes[i]}, {"code": generic}])
            # Both codes must have triggered their promotions: while the
            # coupon service restarts evaluate answers them UNAVAILABLE and
            # the till evaluates again (a new iteration).
            end = time.monotonic() + harness.deadline(60)
            while True:
                r = stream.call(lambda: s.evaluate(req))
                used = {c["code"] for c in r.body["appliedCoupons"]}
                if used == {codes[i], generic}:
                    break
                if time.monotonic() > end:
                    raise AssertionError("codes never applied: %r" % r)
                stream.count_retry()
                time.sleep(0.02)  # retry back-off, not a synchronisation
            counter = r.body["meta"]["header"]["transactionCounter"]
            stream.call(lambda: s.confirm(txns[i], counter, [
                {"promotionId": p["id"], "couponCode": codes[i]},
                {"promotionId": q["id"], "couponCode": generic}],
                customerId="KC-%d" % i))
            with stream.lock:
                done[txns[i]] = counter
        stream.one = one

        kills = []

        def kill_coupon(stream):
            for at in sorted(random.uniform(0.3, STREAM_SECONDS - 0.3) for _ in range(KILLS)):
                stream.at(at)
                s.kill9("coupon")
                kills.append((stream.since_start(), len(done)))
                s.start_service("coupon")
        stream.run(kill_coupon)
        sys.stderr.write("coupon kills (s, confirmed so far): %s; %d retries\n"
                         % (kills, stream.retries))
        self.assertEqual(stream.errors, [])
        self.assertEqual(len(done), CONFIRMS)
        self.assertGreaterEqual(len(kills), 5)

        # Every job completes with exactly 2 redemptions and 2 new codes.
        issued = {}
        for txn in txns:
            j = s.wait_side_effects(txn, done[txn], timeout=60)
            self.assertEqual((j["couponsRedeemed"], len(j["postPurchaseCoupons"]),
                              j["reason"]), (2, 2, None), j)
            for e in j["postPurchaseCoupons"]:
                self.assertNotIn(e["code"], issued)
                issued[e["code"]] = e
        # Every code redeemed exactly once; the GENERIC one exactly CONFIRMS
        # times (read once the gateway has reconnected to the restarted
        # service: until then it answers 503).
        harness.wait_until(
            lambda: self.stack.get("/api/v1/CouponCodes?$top=1").status == 200, 30,
            what="the gateway to reach the restarted coupon service")
        done = {x["code"]: x for x in self.codes_of(couponTypeId=ti["id"])}
        # the stream's codes, and the one setup_promotions probed with
        self.assertEqual(len(done), CONFIRMS + 1)
        for i, c in enumerate(codes):
            self.assertEqual((done[c]["status"], done[c]["redemptionCount"],
                              done[c]["activeReservations"]), ("REDEEMED", 1, 0), done[c])
        d = self.code_doc(generic)
        self.assertEqual((d["status"], d["redemptionCount"]), ("REDEEMED", CONFIRMS))
        # Exactly 2 post-purchase codes per sale, for its customer.
        made = self.codes_of(couponTypeId=it["id"])
        self.assertEqual(len(made), 2 * CONFIRMS)
        per = {}
        for x in made:
            per.setdefault(x["issuingTransactionId"], []).append(x)
            self.assertIn(x["code"], issued)
            self.assertEqual(x["status"], "ACTIVE")
        self.assertEqual(sorted(per), sorted(txns))
        for i, txn in enumerate(txns):
            self.assertEqual([x["customerId"] for x in per[txn]], ["KC-%d" % i] * 2)


if __name__ == "__main__":
    harness.main()
