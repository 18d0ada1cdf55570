#!/usr/bin/env python3
# test_pos_bridge.py -- the POS-platform bridge (PRODUCT-DECISIONS §10, seed
# 004) through the real processes, in the platform's shapes only: a till's
# cart validation with a promo code and a member (priced by the same engine
# as /pos/v2/evaluate), the ORDER webhook confirming the cart's last priced
# iteration (code redeemed, points credited, side effects COMPLETED), a
# repost getting the first answer; the platform's conventions (?api_key=,
# empty 401, {errorCode, errorMessage}, DRE-Ignored-Fields) and its bad
# inputs (no lines, negative quantity, unknown store, ORDER of a cart never
# priced, a promotion not granted), never a 5xx.
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, basket, item, pct_action, promotion, uniq  # noqa: E402

CART = "/rc/spi/1.0/sa/cartValidation"
ORDER = "/rc/webhooks/ORDER"
VOID = "/rc/webhooks/VOID_CART"
CODE = "/rc/spi/1.0/promotion-code/validate"
POINTS = "/rc/spi/1.0/sa/getLoyaltyPoints"
RETURN = "/rc/webhooks/RETURN"
REWARDS = "/rc/spi/1.0/reward/lookup"


class Bridge(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        r = s.post("/api/v1/ApiKeys", {"name": uniq("till"), "roles": ["POSReader"]})
        assert r.status == 201, r
        cls.key = r.body["key"]

    def call(self, path, body, key=Ellipsis, raw=None):
        k = self.key if key is Ellipsis else key
        q = "" if k is None else "?api_key=" + k
        return self.stack.request("POST", path + q, body=body, raw=raw, user=None)

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
        p = promotion("Bridge 10%% %s" % art, [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(10, articles=[art])], pos_groups=[g["id"]],
                      couponTypeIds=[ctype["id"]])
        pts = promotion("Points %s" % art, [{"type": "CUSTOMER_REQUIRED"}],
                        [{"type": "CURRENCY_TO_POINTS", "pointsPerUnit": 1}],
                        pos_groups=[g["id"]], ptype="LOYALTY")
        s.create_promotion(p)
        s.create_promotion(pts)
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
        self.assertPlatformError(self.call(RETURN, dict(ret, orderId=uniq("NOORDER"),
                                                        returnId=uniq("RET"))),
                                 404, "ORDER_NOT_FOUND")
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
        self.assertPlatformError(self.call(ORDER, {"cartId": never}), 400, "MISSING_FIELD")
        self.assertPlatformError(self.call(ORDER, {"orderId": "o", "cartId": cart_id,
                                                   "createdAt": "yesterday"}),
                                 400, "INVALID_FIELD")


if __name__ == "__main__":
    harness.main()
