#!/usr/bin/env python3
# test_pos_bridge.py -- the POS-platform bridge (PRODUCT-DECISIONS §10, seed
# 004) through the real processes, in the platform's shapes only: a till's
# cart validation with a promo code and a member (priced by the same engine
# as /pos/v2/evaluate), the ORDER webhook confirming the cart's last priced
# iteration (budget consumed, code redeemed, points credited, side effects
# COMPLETED), a repost getting the first answer; the platform's conventions (?api_key=,
# empty 401, {errorCode, errorMessage}, DRE-Ignored-Fields) and its bad
# inputs (no lines, negative quantity, unknown store, ORDER of a cart never
# priced, a promotion not granted, RETURN of an unknown order, a SUPC
# redeemed twice), never a 5xx and nothing half-applied; RETURN's
# TRANSACTION_RETURNED event on its topic and as a webhook; the SUPC merchant
# API (create, list, mark redeemed once, used in a cart; the promotion's
# INDIVIDUAL coupon type created on first use).
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, basket, item, pct_action, promotion, uniq  # noqa: E402
from test_webhook import Receiver  # noqa: E402

CART = "/rc/spi/1.0/sa/cartValidation"
ORDER = "/rc/webhooks/ORDER"
VOID = "/rc/webhooks/VOID_CART"
CODE = "/rc/spi/1.0/promotion-code/validate"
POINTS = "/rc/spi/1.0/sa/getLoyaltyPoints"
RETURN = "/rc/webhooks/RETURN"
REWARDS = "/rc/spi/1.0/reward/lookup"
SUPC = "/merchant/v1/promotions/%s/supc"


class Bridge(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        r = s.post("/api/v1/ApiKeys", {"name": uniq("till"), "roles": ["POSReader"]})
        assert r.status == 201, r
        cls.key = r.body["key"]
        r = s.post("/api/v1/ApiKeys", {"name": uniq("merchant"), "roles": ["PublicApiWriter"]})
        assert r.status == 201, r
        cls.merchant_key = r.body["key"]
        cls.rx = Receiver()

    @classmethod
    def tearDownClass(cls):
        cls.rx.close()
        super().tearDownClass()

    def call(self, path, body, key=Ellipsis, raw=None, method="POST"):
        k = self.key if key is Ellipsis else key
        q = "" if k is None else "?api_key=" + k
        return self.stack.request(method, path + q, body=body, raw=raw, user=None)

    def supc(self, method, promo_id, body=None, key=Ellipsis):
        return self.call(SUPC % promo_id, body, method=method,
                         key=self.merchant_key if key is Ellipsis else key)

    def assertPlatformError(self, r, status, code):
        self.assertStatus(r, status)
        self.assertEqual(set(r.body), {"errorCode", "errorMessage"}, r)
        self.assertEqual(r.body["errorCode"], code, r)
        self.assertTrue(r.body["errorMessage"], r)
        return r.body["errorMessage"]

    def setup_store(self):
        """A store (POS group) with P: 10% on article A with a code of an
        INDIVIDUAL type, and L: 1 point per currency unit for members."""
        s = self.stack
        g = self.pos_group()
        art = uniq("A")
        r = s.post("/api/v1/CouponTypes", {"name": uniq("Type"), "type": "INDIVIDUAL",
                                           "prefix": "RC"})
        self.assertStatus(r, 201)
        ctype = r.body
        self.budget = s.create_budget("100.00")
        p = promotion("Bridge 10%% %s" % art, [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(10, articles=[art])], pos_groups=[g["id"]],
                      couponTypeIds=[ctype["id"]], budgetIds=[self.budget["id"]])
        pts = promotion("Points %s" % art, [{"type": "CUSTOMER_REQUIRED"}],
                        [{"type": "CURRENCY_TO_POINTS", "pointsPerUnit": 1}],
                        pos_groups=[g["id"]], ptype="LOYALTY")
        s.create_promotion(p)
        s.create_promotion(pts)
        self.points_promo = pts
        probe = basket(g["id"], [item("L1", art, 1, "10.00")], customer={"customerId": "x"})
        probe["coupons"] = [{"code": self.new_code(ctype)}]
        s.wait_for_promotion(p["id"], probe)
        harness.wait_until(
            lambda: self.assertEval(s.simulate(probe), simulation=True)
            ["totals"]["savingsSummary"]["loyaltyPointsEarned"] == 9,
            10, what="points promotion %s in effect" % pts["id"])
        return g, art, ctype, p

    def new_code(self, ctype):
        r = self.stack.post("/api/v1/CouponCodes", {"couponTypeId": ctype["id"]})
        self.assertStatus(r, 201)
        return r.body["code"]

    def member(self):
        mn = uniq("MN")
        r = self.stack.post("/api/v3/contacts?source=POS&storeExternalId=S1",
                            {"email": uniq("m").lower() + "@example.com", "memberNumber": mn})
        self.assertStatus(r, 201)
        return r.body, mn

    def cart(self, cart_id, store, lines, codes=(), loyalty=None, **extra):
        body = {"cartId": cart_id, "storeId": store, "lineItems": lines}
        if codes:
            body["promoCodes"] = list(codes)
        if loyalty:
            body["customer"] = {"customerId": "EXT-" + loyalty, "loyaltyId": loyalty}
        body.update(extra)
        return self.call(CART, body)

    # -- the till's flow -------------------------------------------------------
    def test_till_flow(self):
        s = self.stack
        hook = "/returned-" + uniq("h")
        self.assertStatus(s.post("/api/v1/WebhookSubscriptions", {
            "url": self.rx.url(hook), "eventTypes": ["TRANSACTION_RETURNED"]}), 201)
        g, art, ctype, p = self.setup_store()
        contact, mn = self.member()
        code = self.new_code(ctype)
        cart_id = uniq("CART")
        line = {"lineId": "1", "sku": art, "upc": "4006381333931", "category": "FOOD",
                "quantity": 2, "unitPrice": D("10.00"), "color": "red"}
        r = self.cart(cart_id, g["code"], [line], codes=[code, "NO-SUCH-CODE"], loyalty=mn,
                      channel="STORE")
        b = self.assertOk(r)
        self.assertEqual(r.headers.get("dre-ignored-fields"), "channel, lineItems[0].color")
        msgs = b.pop("messages")
        self.assertJson({
            "valid": True, "cartId": cart_id, "transactionCounter": 1, "currency": "EUR",
            "lineItems": [{"lineId": "1", "sku": art, "quantity": 2, "unitPrice": D("10.00"),
                           "lineTotal": D("20.00"), "discount": D("2.00"),
                           "netTotal": D("18.00"),
                           "promotions": [{"promotionId": p["id"], "name": p["name"],
                                           "amount": D("2.00"), "code": code}]}],
            "grantedItems": [],
            "totals": {"subtotal": D("20.00"), "discount": D("2.00"), "total": D("18.00")},
            "loyaltyPointsEarned": 18}, b)
        self.assertEqual([m["code"] for m in msgs], ["INVALID_PROMO_CODE"])
        self.assertTrue(msgs[0]["text"].startswith("promo code NO-SUCH-CODE: "), msgs)
        # The same engine: /pos/v2/simulate of the same basket agrees.
        ev = self.assertEval(s.simulate(basket(
            g["id"], [item("1", art, 2, "10.00")], txn=cart_id, customer={"customerId": mn},
            coupons=[{"code": code}])), simulation=True)
        self.assertEqual(ev["totals"]["grandTotal"]["value"], D("18.00"))
        # Code validation: valid for the cart holding it, not for another.
        r = self.call(CODE, {"code": code.lower(), "cartId": cart_id, "customerId": mn})
        self.assertJson({"valid": True, "code": code, "promotionId": p["id"],
                         "message": "coupon '%s' is valid" % code, "expiresAt": None},
                        self.assertOk(r))
        v = self.assertOk(self.call(CODE, {"code": code, "cartId": uniq("CART")}))
        self.assertEqual((v["valid"], v["code"], v["promotionId"]), (False, code, p["id"]))
        v = self.assertOk(self.call(CODE, {"code": "NO-SUCH-CODE", "till": 3}))
        self.assertEqual((v["valid"], v["code"], v["promotionId"], v["expiresAt"]),
                         (False, "NO-SUCH-CODE", None, None))
        self.assertPlatformError(self.call(CODE, {"cartId": cart_id}), 400, "MISSING_FIELD")
        # The cart holds its code: another cart cannot use it meanwhile.
        self.assertEqual(self.assertOk(s.get("/api/v1/CouponCodes/" + code))["status"],
                         "RESERVED")
        other = self.assertOk(self.cart(uniq("CART"), g["code"], [line], codes=[code]))
        self.assertEqual([m["code"] for m in other["messages"]], ["INVALID_PROMO_CODE"])
        self.assertEqual(other["totals"]["discount"], D("0.00"))

        # ORDER confirms that iteration; a repost gets the first answer.
        order_id = uniq("ORD")
        order = {"orderId": order_id, "cartId": cart_id, "customerId": mn,
                 "createdAt": int(time.time() * 1000),
                 "lineItems": [{"sku": art, "quantity": 2}],
                 "promotions": [{"promotionId": p["id"], "amount": D("2.00"), "code": code}],
                 "registerId": "R1"}
        r = self.call(ORDER, order)
        first = self.assertOk(r)
        self.assertJson({"orderId": order_id, "cartId": cart_id, "confirmed": True,
                         "message": first["message"]}, first)
        self.assertEqual(r.headers.get("dre-ignored-fields"), "registerId")
        self.assertEqual(self.assertOk(self.call(ORDER, order)), first)
        # Side effects: the code redeemed, the points credited.
        j = s.wait_side_effects(cart_id, 1)
        self.assertEqual((j["status"], j["couponsRedeemed"], j["loyaltyPointsEarned"]),
                         ("COMPLETED", 1, 18), j)
        self.assertEqual(j["budgetsConsumed"], [{"budgetId": self.budget["id"],
                                                 "amount": harness.money("2.00")}])
        bb = s.budget(self.budget["id"])
        self.assertEqual((bb["consumedAmount"], bb["transactionsCount"]), (D("2.00"), 1))
        c = self.assertOk(s.get("/api/v1/CouponCodes/" + code))
        self.assertEqual((c["status"], c["redemptionCount"]), ("REDEEMED", 1))
        o = self.assertOk(s.get("/api/v3/contactoverview?contactId=" + contact["id"]))
        self.assertEqual(o["loyalty"]["pointsBalance"], 18)
        # getLoyaltyPoints: what that order earned the member, for the receipt.
        self.assertEqual(self.assertOk(self.call(POINTS, {"orderId": order_id,
                                                          "customerId": mn})),
                         {"orderId": order_id, "customerId": mn, "pointsEarned": 18,
                          "pointsBalance": 18, "tier": "BASE"})
        self.assertPlatformError(self.call(POINTS, {"orderId": uniq("ORD"), "customerId": mn}),
                                 404, "ORDER_NOT_FOUND")
        self.assertPlatformError(self.call(POINTS, {"orderId": order_id,
                                                    "customerId": uniq("NOBODY")}),
                                 404, "CUSTOMER_NOT_FOUND")
        self.assertPlatformError(self.call(POINTS, {"orderId": order_id}), 400, "MISSING_FIELD")
        # Reward lookup shows the points (no voucher yet: 500 points make one).
        self.assertEqual(self.assertOk(self.call(REWARDS, {"loyaltyId": mn})),
                         {"accountNumber": mn, "totalPoints": 18, "currentRewardPoints": 18,
                          "pointsToNextReward": 482, "currentTier": {"name": "BASE"},
                          "rewards": []})

        # RETURN of half the sale deducts half its points; a repost gets the
        # first answer; the rest of the sale deducts at most what is left.
        ret = {"orderId": order_id, "returnId": uniq("RET"),
               "lineItems": [{"sku": art, "quantity": 1, "refundAmount": D("9.00")}]}
        first = self.assertOk(self.call(RETURN, ret))
        self.assertEqual(first, {"orderId": order_id, "returnId": ret["returnId"],
                                 "customerId": contact["id"], "pointsDeducted": 9,
                                 "pointsBalance": 9})
        self.assertEqual(self.assertOk(self.call(RETURN, ret)), first)
        ret2 = dict(ret, returnId=uniq("RET"),
                    lineItems=[{"sku": art, "quantity": 2, "refundAmount": D("18.00")}])
        self.assertEqual(self.assertOk(self.call(RETURN, ret2))["pointsDeducted"], 9)
        o = self.assertOk(s.get("/api/v3/contactoverview?contactId=" + contact["id"]))
        self.assertEqual(o["loyalty"]["pointsBalance"], 0)
        unknown = dict(ret, orderId=uniq("NOORDER"), returnId=uniq("RET"))
        self.assertPlatformError(self.call(RETURN, unknown), 404, "ORDER_NOT_FOUND")
        # TRANSACTION_RETURNED: once per return (not for the repost, nor for
        # the unknown order), key <tenant>/<orderId>, amounts in minor units.
        ours = (ret["returnId"], ret2["returnId"], unknown["returnId"])
        evs = harness.wait_until(lambda: [
            e for e in s.events("dre.transactions.returned", wait_s=5)
            if e["value"]["returnId"] in ours] or None, 20, what="TRANSACTION_RETURNED")
        self.assertEqual([e["value"]["returnId"] for e in evs],
                         [ret["returnId"], ret2["returnId"]])
        self.assertEqual({e["key"] for e in evs}, {"default/" + order_id})
        v = dict(evs[0]["value"])
        eid, at = v.pop("eventId"), v.pop("occurredAt")
        self.assertEqual(v, {"tenant": "default", "schemaVersion": 1, "orderId": order_id,
                             "returnId": ret["returnId"], "customerId": {"string": contact["id"]},
                             "refundAmount": 900, "pointsDeducted": 9, "pointsBalance": 9})
        self.assertLessEqual(abs(at - time.time() * 1000), 60000)
        self.assertEqual((evs[1]["value"]["refundAmount"], evs[1]["value"]["pointsDeducted"],
                          evs[1]["value"]["pointsBalance"]), (1800, 9, 0))
        # ... and as the webhook TRANSACTION_RETURNED, with the same id.
        def delivered():
            got = [json.loads(g[2], parse_float=D) for g in self.rx.at(hook)]
            return [x for x in got if x["data"]["returnId"] == ret["returnId"]] or None
        first, = harness.wait_until(delivered, 20, what="TRANSACTION_RETURNED webhook")
        self.assertEqual((first["id"], first["type"]), (eid, "TRANSACTION_RETURNED"))
        self.assertEqual(first["data"], {"orderId": order_id, "returnId": ret["returnId"],
                                         "customerId": contact["id"],
                                         "refundAmount": D("9.00"), "pointsDeducted": 9,
                                         "pointsBalance": 9})
        # A sale without a member: its RETURN deducts nothing and is still
        # recorded (a repost gets the first answer) and published.
        anon_cart, anon_order = uniq("CART"), uniq("ORD")
        self.assertOk(self.cart(anon_cart, g["code"], [dict(line, quantity=1)]))
        self.assertOk(self.call(ORDER, {"orderId": anon_order, "cartId": anon_cart,
                                        "lineItems": [{"sku": art, "quantity": 1}]}))
        self.assertEqual(s.wait_side_effects(anon_cart, 1)["status"], "COMPLETED")
        anon = {"orderId": anon_order, "returnId": uniq("RET"),
                "lineItems": [{"sku": art, "quantity": 1, "refundAmount": D("9.00")}]}
        want = {"orderId": anon_order, "returnId": anon["returnId"], "pointsDeducted": 0,
                "pointsBalance": 0}
        self.assertEqual(self.assertOk(self.call(RETURN, anon)), want)
        self.assertEqual(self.assertOk(self.call(RETURN, anon)), want)
        ev, = harness.wait_until(lambda: [
            e for e in s.events("dre.transactions.returned", wait_s=5)
            if e["value"]["returnId"] == anon["returnId"]] or None, 20,
            what="TRANSACTION_RETURNED without a member")
        v = dict(ev["value"])
        v.pop("eventId"), v.pop("occurredAt")
        self.assertEqual(v, {"tenant": "default", "schemaVersion": 1, "orderId": anon_order,
                             "returnId": anon["returnId"], "customerId": None,
                             "refundAmount": 900, "pointsDeducted": 0, "pointsBalance": 0})
        self.assertPlatformError(self.call(RETURN, dict(ret, lineItems=[])), 400, "EMPTY_RETURN")
        self.assertPlatformError(self.call(RETURN, {"orderId": order_id}), 400, "MISSING_FIELD")

        # VOID_CART of another cart frees its reservation; a repost gets the
        # same answer.
        code2 = self.new_code(ctype)
        cart3 = uniq("CART")
        b3 = self.assertOk(self.cart(cart3, g["code"], [line], codes=[code2]))
        self.assertEqual(b3["totals"]["discount"], D("2.00"))
        self.assertEqual(self.assertOk(s.get("/api/v1/CouponCodes/" + code2))["status"],
                         "RESERVED")
        for _ in range(2):
            self.assertEqual(self.assertOk(self.call(VOID, {"cartId": cart3})),
                             {"cartId": cart3, "voided": True})
            c2 = self.assertOk(s.get("/api/v1/CouponCodes/" + code2))
            self.assertEqual((c2["status"], c2["activeReservations"]), ("ACTIVE", 0))
        self.assertEqual(self.assertOk(self.call(VOID, {"cartId": uniq("NOCART")}))["voided"],
                         True)
        self.assertPlatformError(self.call(VOID, {}), 400, "MISSING_FIELD")

        # A promotion the cart was not granted: the confirm rules, 409.
        cart2 = uniq("CART")
        self.assertOk(self.cart(cart2, g["code"], [dict(line, lineId="9")]))
        r = self.call(ORDER, {"orderId": uniq("ORD"), "cartId": cart2,
                              "promotions": [{"promotionId": p["id"], "amount": D("2.00")}]})
        self.assertPlatformError(r, 409, "PROMOTION_NOT_GRANTED")

    # -- the worked example of docs/pos-bridge.md, as a retailer replays it --------
    def test_docs_curl_sequence(self):
        doc = open(os.path.join(harness.SOURCE_DIR, "docs", "pos-bridge.md"),
                   encoding="utf-8").read()
        part = doc[doc.index("## A till's sale, replayable with curl"):]
        script = re.search(r"```sh\n(.*?)```", part, re.S).group(1)
        p = subprocess.run(["bash", "-c", script], env=dict(os.environ, GW=self.stack.base_url),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=harness.deadline(60))
        self.assertEqual(p.returncode, 0, p.stderr.decode() + p.stdout.decode())
        out = {}
        for line in p.stdout.decode().splitlines():
            label, _, rest = line.partition(" ")
            out[label] = rest
        again, _, status = out.pop("again").rpartition(" ")
        got = {k: json.loads(v, parse_float=D) for k, v in out.items()}
        promo = got["cart"]["lineItems"][0]["promotions"][0]["promotionId"]
        self.assertEqual(got["cart"], {
            "valid": True, "cartId": "CART-1", "transactionCounter": 1, "currency": "EUR",
            "lineItems": [{"lineId": "1", "sku": "A1", "quantity": 2, "unitPrice": D("10.00"),
                           "lineTotal": D("20.00"), "discount": D("2.00"), "netTotal": D("18.00"),
                           "promotions": [{"promotionId": promo, "name": "10% on A1 with a code",
                                           "amount": D("2.00"), "code": "RC1234"}]}],
            "grantedItems": [],
            "totals": {"subtotal": D("20.00"), "discount": D("2.00"), "total": D("18.00")},
            "loyaltyPointsEarned": 18, "messages": []})
        self.assertEqual(got["code"], {"valid": True, "code": "RC1234", "promotionId": promo,
                                       "message": "coupon 'RC1234' is valid", "expiresAt": None})
        self.assertEqual((got["order"]["orderId"], got["order"]["confirmed"]), ("ORD-1", True))
        self.assertEqual((got["sidefx"]["status"], got["sidefx"]["couponsRedeemed"],
                          got["sidefx"]["loyaltyPointsEarned"]), ("COMPLETED", 1, 18))
        self.assertEqual(got["points"], {"orderId": "ORD-1", "customerId": "M1",
                                         "pointsEarned": 18, "pointsBalance": 18,
                                         "tier": "BASE"})
        self.assertEqual(got["rewards"], {"accountNumber": "M1", "totalPoints": 18,
                                          "currentRewardPoints": 18, "pointsToNextReward": 482,
                                          "currentTier": {"name": "BASE"}, "rewards": []})
        ret = dict(got["return"])
        self.assertTrue(ret.pop("customerId"))
        self.assertEqual(ret, {"orderId": "ORD-1", "returnId": "RET-1", "pointsDeducted": 9,
                               "pointsBalance": 9})
        self.assertEqual(got["cart2"]["totals"]["discount"], D("1.00"))
        self.assertEqual(got["void"], {"cartId": "CART-2", "voided": True})
        self.assertEqual((got["freed"]["status"], got["freed"]["activeReservations"]),
                         ("ACTIVE", 0))
        self.assertEqual(got["supc"]["codes"], [{"code": "RC-WEB-1", "status": "ACTIVE"},
                                                {"code": "RC-WEB-2", "status": "ACTIVE"}])
        listed = {c["code"]: c for c in got["supclist"]["codes"]}
        self.assertEqual((listed["RC1234"]["status"], listed["RC1234"]["cartId"]),
                         ("REDEEMED", "CART-1"))
        self.assertEqual(listed["RC5678"], {"code": "RC5678", "status": "ACTIVE"})
        self.assertEqual(got["redeemed"], {"promotionId": promo, "codes": [
            {"code": "RC-WEB-1", "status": "REDEEMED", "redeemedAt": 1780833600000,
             "orderId": "WEB-9"}]})
        self.assertEqual((json.loads(again), status), ({
            "errorCode": "ALREADY_REDEEMED",
            "errorMessage": "code 'RC-WEB-1' is REDEEMED already"}, "409"))

    # -- SUPC: single-use promotion codes of an external system ----------------
    def test_supc(self):
        s = self.stack
        g, art, ctype, p = self.setup_store()
        a, b = uniq("SUPC-A"), uniq("supc-b")
        r = self.supc("POST", p["id"], {"codes": [a, b], "batchName": "web"})
        self.assertStatus(r, 201)
        self.assertEqual(r.headers.get("dre-ignored-fields"), "batchName")
        self.assertEqual(r.body, {"promotionId": p["id"], "couponTypeId": ctype["id"],
                                  "codes": [{"code": a, "status": "ACTIVE"},
                                            {"code": b.upper(), "status": "ACTIVE"}]})
        b = b.upper()
        r = self.supc("POST", p["id"], {"count": 3})
        self.assertStatus(r, 201)
        gen = [c["code"] for c in r.body["codes"]]
        self.assertEqual(len(set(gen)), 3)
        self.assertTrue(all(c.startswith("RC") for c in gen), gen)
        # All or none: one code that exists, nothing created.
        fresh = uniq("SUPC-N")
        self.assertPlatformError(self.supc("POST", p["id"], {"codes": [fresh, a]}), 409,
                                 "CODE_EXISTS")
        self.assertStatus(s.get("/api/v1/CouponCodes/" + fresh), 404)
        for body, code in (({}, "MISSING_FIELD"), ({"count": 0}, "INVALID_FIELD"),
                           ({"codes": []}, "INVALID_FIELD"), ({"codes": [""]}, "INVALID_FIELD"),
                           ({"codes": [fresh, fresh]}, "INVALID_FIELD"),
                           ({"codes": [fresh], "count": 1}, "MISSING_FIELD")):
            self.assertPlatformError(self.supc("POST", p["id"], body), 400, code)
        self.assertStatus(s.get("/api/v1/CouponCodes/" + fresh), 404)
        # The list: every code of the promotion's INDIVIDUAL type.
        lst = self.assertOk(self.supc("GET", p["id"]))
        self.assertEqual(lst["promotionId"], p["id"])
        mine = {c["code"]: c for c in lst["codes"] if c["code"] in [a, b] + gen}
        self.assertEqual(mine, {c: {"code": c, "status": "ACTIVE"} for c in [a, b] + gen})
        # Marked redeemed by the external system: exactly once.
        at = 1780833600000
        mark = {"codes": [{"code": a.lower(), "redeemed": True, "orderId": "EXT-1",
                           "redeemedAt": at, "channel": "WEB"}]}
        r = self.supc("PUT", p["id"], mark)
        self.assertEqual(r.headers.get("dre-ignored-fields"), "codes[0].channel")
        self.assertEqual(self.assertOk(r),
                         {"promotionId": p["id"], "codes": [
                             {"code": a, "status": "REDEEMED", "redeemedAt": at,
                              "orderId": "EXT-1"}]})
        msg = self.assertPlatformError(self.supc("PUT", p["id"], mark), 409, "ALREADY_REDEEMED")
        self.assertIn(a, msg)
        # A second mark among fresh codes: 409, and the fresh code unchanged.
        both = {"codes": [{"code": gen[0], "redeemed": True, "orderId": "EXT-2"},
                          {"code": a, "redeemed": True, "orderId": "EXT-2"}]}
        self.assertPlatformError(self.supc("PUT", p["id"], both), 409, "ALREADY_REDEEMED")
        c = self.assertOk(s.get("/api/v1/CouponCodes/" + gen[0]))
        self.assertEqual((c["status"], c["redemptionCount"]), ("ACTIVE", 0))
        c = self.assertOk(s.get("/api/v1/CouponCodes/" + a))
        self.assertEqual((c["status"], c["redemptionCount"]), ("REDEEMED", 1))
        for body, status, code in (
                ({"codes": [{"code": uniq("NOPE"), "redeemed": True}]}, 404, "CODE_NOT_FOUND"),
                ({"codes": [{"code": gen[0], "redeemed": False}]}, 400, "INVALID_FIELD"),
                ({"codes": [{"code": gen[0], "redeemed": True, "redeemedAt": "now"}]}, 400,
                 "INVALID_FIELD"),
                ({"codes": []}, 400, "INVALID_FIELD"), ({}, 400, "MISSING_FIELD")):
            self.assertPlatformError(self.supc("PUT", p["id"], body), status, code)
        # A SUPC is a promo code of a cart: priced, reserved, redeemed by ORDER.
        line = {"lineId": "1", "sku": art, "quantity": 1, "unitPrice": D("10.00")}
        cart_id = uniq("CART")
        cb = self.assertOk(self.cart(cart_id, g["code"], [line], codes=[b]))
        self.assertEqual((cb["totals"]["discount"], cb["messages"]), (D("1.00"), []))
        self.assertEqual(cb["lineItems"][0]["promotions"][0]["code"], b)
        self.assertOk(self.call(ORDER, {"orderId": uniq("ORD"), "cartId": cart_id,
                                        "promotions": [{"promotionId": p["id"],
                                                        "amount": D("1.00"), "code": b}]}))
        self.assertEqual(s.wait_side_effects(cart_id, 1)["couponsRedeemed"], 1)
        # The one the external system redeemed is refused at the till.
        ca = self.assertOk(self.cart(uniq("CART"), g["code"], [line], codes=[a]))
        self.assertEqual([m["code"] for m in ca["messages"]], ["INVALID_PROMO_CODE"])
        self.assertEqual(ca["totals"]["discount"], D("0.00"))
        lst = {c["code"]: c for c in self.assertOk(self.supc("GET", p["id"]))["codes"]}
        self.assertEqual(lst[a], {"code": a, "status": "REDEEMED", "redeemedAt": at,
                                  "orderId": "EXT-1"})
        self.assertEqual((lst[b]["status"], lst[b]["cartId"]), ("REDEEMED", cart_id))
        self.assertIsInstance(lst[b]["redeemedAt"], int)
        self.assertPlatformError(self.supc("GET", harness.new_id()), 404, "PROMOTION_NOT_FOUND")
        self.supc_type_on_first_use(g, art, gen[0])
        # A till's key reads nothing here; no key: the empty 401.
        self.assertPlatformError(self.supc("POST", p["id"], {"count": 1}, key=self.key), 403,
                                 "FORBIDDEN")
        r = self.supc("GET", p["id"], key=None)
        self.assertEqual((r.status, r.raw), (401, b""))

    def supc_type_on_first_use(self, g, art, other_code):
        """A promotion without an INDIVIDUAL coupon type: its list is empty,
        none of its codes is known; the first POST creates the type "SUPC
        <name>", names it in couponTypeIds (the promotion is code-gated from
        then on) and its codes are valid in the very next cart; a second POST
        reuses the type, so do two first POSTs at once."""
        s = self.stack
        line = {"lineId": "1", "sku": art, "quantity": 1, "unitPrice": D("10.00")}
        name = uniq("Open")
        op = promotion(name, [{"type": "ARTICLE", "values": [art]}],
                       [pct_action(5, articles=[art])], pos_groups=[g["id"]])
        s.create_promotion(op)
        self.assertEqual(self.assertOk(self.supc("GET", op["id"])),
                         {"promotionId": op["id"], "codes": []})
        self.assertPlatformError(self.supc("PUT", op["id"], {"codes": [
            {"code": other_code, "redeemed": True}]}), 404, "CODE_NOT_FOUND")
        # Open to every cart until now.
        c0 = self.assertOk(self.cart(uniq("CART"), g["code"], [line]))
        self.assertEqual(c0["totals"]["discount"], D("0.50"))
        r = self.supc("POST", op["id"], {"count": 2})
        self.assertStatus(r, 201)
        tid = r.body["couponTypeId"]
        first = [c["code"] for c in r.body["codes"]]
        self.assertEqual((r.body["promotionId"], len(first)), (op["id"], 2))
        self.assertEqual(self.assertOk(s.get("/api/v1/Promotions/" + op["id"]))
                         ["couponTypeIds"], [tid])
        q = "$filter=" + ("startswith(name,'SUPC %s')" % name).replace(" ", "%20")
        types = self.assertOk(s.get("/api/v1/CouponTypes?" + q))["value"]
        self.assertEqual([(t["id"], t["name"], t["type"], t["status"]) for t in types],
                         [(tid, "SUPC " + name, "INDIVIDUAL", "ACTIVE")])
        # In effect at once: the next cart with a code gets it, one without does not.
        c1 = self.assertOk(self.cart(uniq("CART"), g["code"], [line], codes=[first[0]]))
        self.assertEqual((c1["totals"]["discount"], c1["messages"]), (D("0.50"), []))
        self.assertEqual(c1["lineItems"][0]["promotions"][0]["code"], first[0])
        c2 = self.assertOk(self.cart(uniq("CART"), g["code"], [line]))
        self.assertEqual(c2["totals"]["discount"], D("0.00"))
        # A second POST reuses the type; the list has every code.
        mine = uniq("SUPC-R")
        r = self.supc("POST", op["id"], {"codes": [mine]})
        self.assertStatus(r, 201)
        self.assertEqual(r.body, {"promotionId": op["id"], "couponTypeId": tid,
                                  "codes": [{"code": mine, "status": "ACTIVE"}]})
        self.assertEqual(sorted(c["code"] for c in self.assertOk(
            self.supc("GET", op["id"]))["codes"]), sorted(first + [mine]))
        self.assertEqual(len(self.assertOk(s.get("/api/v1/CouponTypes?" + q))["value"]), 1)
        # Written as the caller through the normal paths: audited.
        for entity, eid, action in (("CouponType", tid, "create"),
                                    ("Promotion", op["id"], "update")):
            recs = self.assertOk(s.get(("/api/v1/AuditLogs?$filter=entity eq '%s' and "
                                        "entityId eq '%s'" % (entity, eid)).replace(" ", "%20")))
            self.assertIn(action, [x["action"] for x in recs["value"]], recs)
        # Two first POSTs at once: one type, named once.
        op2 = promotion(uniq("Twice"), [{"type": "ARTICLE", "values": [art]}],
                        [pct_action(5, articles=[art])], pos_groups=[g["id"]])
        s.create_promotion(op2)
        out = [None, None]

        def post(i):
            out[i] = self.supc("POST", op2["id"], {"count": 1})
        ts = [threading.Thread(target=post, args=(i,)) for i in (0, 1)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for r in out:
            self.assertStatus(r, 201)
        self.assertEqual(out[0].body["couponTypeId"], out[1].body["couponTypeId"])
        self.assertEqual(self.assertOk(s.get("/api/v1/Promotions/" + op2["id"]))
                         ["couponTypeIds"], [out[0].body["couponTypeId"]])

    # -- reward lookup (runs after the till flow: it sets the program) ---------
    def test_vouchers_in_reward_lookup(self):
        s = self.stack
        r = s.post("/api/v1/CouponTypes", {"name": uniq("Vouchers"), "type": "INDIVIDUAL",
                                           "prefix": "RV", "codeLength": 10})
        self.assertStatus(r, 201)
        doc = {"pointsPerCurrencyUnit": 1,
               "voucherRule": {"pointsPerVoucher": 500, "value": D("5.00"), "currency": "EUR",
                               "validityDays": 90, "automatic": False,
                               "couponTypeId": r.body["id"]}}
        self.assertOk(s.request("PUT", "/api/v1/LoyaltyProgram", doc))
        contact, mn = self.member()
        rid = uniq("R")
        self.assertStatus(s.post("/api/v3/receipts", {
            "contact": {"matchKey": contact["id"], "matchKeyType": "ContactId"},
            "uniqueReceiptId": rid, "receiptNumber": rid, "currency": "EUR",
            "items": [{"type": "PURCHASE", "sku": "A", "quantity": 1,
                       "grossPaidPrice": D("600.00")}]}), 202)
        harness.wait_until(lambda: self.assertOk(s.get(
            "/api/v3/contactoverview?contactId=" + contact["id"]))["loyalty"]["pointsBalance"]
            == 600, 10, what="receipt points credited")
        v = s.post("/api/v3/reward-vouchers", {"contactId": contact["id"]})
        self.assertStatus(v, 201)
        b = self.assertOk(self.call(REWARDS, {"loyaltyId": mn}))
        rewards = b.pop("rewards")
        self.assertEqual(b, {"accountNumber": mn, "totalPoints": 100, "currentRewardPoints": 100,
                             "pointsToNextReward": 400, "currentTier": {"name": "BASE"}})
        self.assertEqual(len(rewards), 1, rewards)
        self.assertEqual(rewards[0]["rewardId"], v.body["voucherNumber"])
        self.assertEqual((rewards[0]["name"], rewards[0]["amount"], rewards[0]["currency"]),
                         ("Reward voucher 5.00 EUR", D("5.00"), "EUR"))
        self.assertGreater(rewards[0]["expiresAt"], int(time.time() * 1000) + 89 * 86400000)
        # by customerId (the contact id) the same
        self.assertEqual(self.assertOk(self.call(REWARDS, {"customerId": contact["id"]}))
                         ["rewards"], rewards)
        self.assertPlatformError(self.call(REWARDS, {"loyaltyId": uniq("NOBODY")}), 404,
                                 "CUSTOMER_NOT_FOUND")
        self.assertPlatformError(self.call(REWARDS, {}), 400, "MISSING_FIELD")

    # -- conventions and bad input --------------------------------------------
    def test_auth_is_the_query_key_and_a_401_is_empty(self):
        body = {"cartId": uniq("C"), "storeId": "S", "lineItems": [
            {"sku": "X", "quantity": 1, "unitPrice": 1}]}
        for key in (None, "dre_000000000000_wrong", ""):
            r = self.call(CART, body, key=key)
            self.assertStatus(r, 401)
            self.assertEqual(r.raw, b"")
        r = self.call(ORDER, {"orderId": "o", "cartId": "c"}, key=None)
        self.assertStatus(r, 401)
        self.assertEqual(r.text, "")

    def test_bad_input_answers_the_platform_error_shape(self):
        g = self.pos_group()
        ok_line = {"lineId": "1", "sku": "X", "quantity": 1, "unitPrice": D("1.00")}
        cases = [
            ({"cartId": uniq("C"), "storeId": g["code"], "lineItems": []}, 400, "EMPTY_CART"),
            ({"cartId": uniq("C"), "storeId": g["code"]}, 400, "EMPTY_CART"),
            ({"cartId": uniq("C"), "storeId": g["code"],
              "lineItems": [dict(ok_line, quantity=-1)]}, 400, "INVALID_QUANTITY"),
            ({"cartId": uniq("C"), "storeId": g["code"],
              "lineItems": [dict(ok_line, unitPrice="x")]}, 400, "INVALID_PRICE"),
            ({"storeId": g["code"], "lineItems": [ok_line]}, 400, "MISSING_FIELD"),
            ({"cartId": uniq("C"), "lineItems": [ok_line]}, 400, "MISSING_FIELD"),
            ({"cartId": uniq("C"), "storeId": g["code"], "lineItems": [ok_line],
              "promoCodes": "ABC"}, 400, "INVALID_FIELD"),
            ({"cartId": uniq("C"), "storeId": g["code"],
              "lineItems": [dict(ok_line, category="C" * 21)]}, 400, "INVALID_FIELD"),
            ([1, 2], 400, "INVALID_REQUEST"),
        ]
        for body, status, code in cases:
            self.assertPlatformError(self.call(CART, body), status, code)
        self.assertPlatformError(self.call(CART, None, raw=b"{\"cartId\":"), 400,
                                 "MALFORMED_JSON")
        # An unknown store never blocks the sale: priced, and said so.
        cart_id = uniq("C")
        b = self.assertOk(self.call(CART, {"cartId": cart_id, "storeId": uniq("NOSTORE")[:20],
                                           "lineItems": [ok_line]}))
        self.assertEqual([m["code"] for m in b["messages"]], ["UNKNOWN_STORE"])
        self.assertEqual(b["totals"], {"subtotal": D("1.00"), "discount": D("0.00"),
                                       "total": D("1.00")})
        # ORDER of a cart never priced: 404, nothing confirmed.
        never = uniq("NEVER")
        msg = self.assertPlatformError(self.call(ORDER, {"orderId": uniq("O"), "cartId": never}),
                                       404, "CART_NOT_FOUND")
        self.assertIn(never, msg)
        self.assertStatus(self.stack.side_effects(never, 1), 404)
        self.assertPlatformError(self.call(ORDER, {"cartId": never}), 400, "MISSING_FIELD")
        self.assertPlatformError(self.call(ORDER, {"orderId": "o", "cartId": cart_id,
                                                   "createdAt": "yesterday"}),
                                 400, "INVALID_FIELD")


if __name__ == "__main__":
    harness.main()
