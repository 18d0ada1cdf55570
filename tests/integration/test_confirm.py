#!/usr/bin/env python3
# test_confirm.py -- POST /pos/v2/confirm (seed 002, PRODUCT-DECISIONS §4):
# iteration identity, 404 / 409, idempotent repeat, discountAmount over
# totalDiscount, the side-effects poll, and the TransactionConfirmed event
# as an outside consumer reads it with proto/*.avsc alone.
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, ISO_RE, instant, uniq  # noqa: E402

CONFIRMED = "Transaction confirmed"


class Confirm(harness.TestCase):
    def setUp(self):
        self.ten_percent_off(2, "89.99")

    def evaluate(self, txn, **kw):
        req = dict(self.req, header={"transactionId": txn}, **kw)
        b = self.assertEval(self.stack.evaluate(req))
        self.assertEqual(b["totals"]["discount"]["value"], D("18.00"))
        return b["meta"]["header"]["transactionCounter"]

    def applied(self, value=None, total=None, pid=None):
        ap = {"promotionId": pid or self.p["id"], "couponCode": None}
        if value is not None:
            ap["discountAmount"] = {"value": D(value), "currency": "EUR"}
        if total is not None:
            ap["totalDiscount"] = D(total)
        return ap

    def tx_events(self, txn):
        return [e for e in self.stack.events("dre.transactions.confirmed")
                if e["value"] and e["value"]["transactionId"] == txn]

    def test_confirm_then_side_effects_completed(self):
        s, txn = self.stack, uniq("TX")
        self.assertEqual(self.evaluate(txn), 1)
        r = s.confirm(txn, 1, [self.applied("18.00")], customerId="CUST-4711",
                      timestamp="2026-06-07T14:30:45Z", user="pos-reader")
        self.assertJson({"transactionId": txn, "confirmed": True, "message": CONFIRMED},
                        self.assertOk(r))
        b = s.wait_side_effects(txn, 1)
        self.assertJson({"minorVersion": 8, "transactionId": txn, "transactionCounter": 1,
                         "status": "COMPLETED", "attempts": 1, "couponsRedeemed": 0,
                         "budgetsConsumed": [], "loyaltyPointsEarned": 0,
                         "postPurchaseCoupons": [], "reason": None},
                        b, subset=True)
        self.assertEqual(set(b), {"minorVersion", "transactionId", "transactionCounter",
                                  "status", "enqueuedAt", "startedAt", "completedAt",
                                  "attempts", "couponsRedeemed", "budgetsConsumed",
                                  "loyaltyPointsEarned", "postPurchaseCoupons", "reason"})
        for k in ("enqueuedAt", "startedAt", "completedAt"):
            self.assertRegex(b[k], ISO_RE)
        self.assertLessEqual(instant(b["enqueuedAt"]), instant(b["startedAt"]))
        self.assertLessEqual(instant(b["startedAt"]), instant(b["completedAt"]))

        # The event, read from Kafka with the schema files alone.
        evs = self.tx_events(txn)
        self.assertEqual(len(evs), 1, evs)
        e = evs[0]
        self.assertEqual(e["schema"], "dre.TransactionConfirmed")
        self.assertEqual(e["key"], "default/" + txn)
        v = e["value"]
        self.assertRegex(v["eventId"], harness.UUID_RE)
        self.assertJson({"tenant": "default", "schemaVersion": 3, "transactionId": txn,
                         "loyaltyPointsEarned": 0,
                         "transactionCounter": 1, "customerId": {"string": "CUST-4711"},
                         "posGroupId": {"string": self.gid}, "currency": "EUR",
                         "subtotal": 17998, "totalDiscount": 1800, "grandTotal": 16198,
                         "lines": [{"lineReference": "L1", "articleNumber": self.art,
                                    "quantity": 2000, "unitPrice": 8999, "lineTotal": 17998,
                                    "lineDiscount": 1800, "lineNet": 16198}],
                         "promotions": [{"promotionId": self.p["id"], "promotionName": "Ten off",
                                         "promotionType": "ARTICLE", "amount": 1800,
                                         "grantedAmount": 1800, "couponCode": None,
                                         "budgetIds": []}]},
                        v, subset=True)
        # transactionTime is the confirm's timestamp
        self.assertEqual(v["transactionTime"], 1780842645000)

    def test_repeat_returns_the_first_answer_and_applies_nothing_twice(self):
        s, txn = self.stack, uniq("TX")
        self.evaluate(txn)
        first = s.confirm(txn, 1, [self.applied("18.00")])
        self.assertOk(first)
        s.wait_side_effects(txn, 1)
        for _ in range(3):
            again = s.confirm(txn, 1, [self.applied("18.00")])
            self.assertEqual(again.status, 200)
            self.assertEqual(again.raw, first.raw)
        # one event, one application in the report
        self.assertEqual(len(self.tx_events(txn)), 1)
        r = self.assertOk(s.get("/reporting/PromotionPerformance(%s)" % self.p["id"]))
        self.assertEqual(r["applicationsCount"], 1)
        self.assertEqual(r["totalDiscountGiven"], D("18.00"))

    def test_concurrent_confirms_of_one_transaction(self):
        # Sent at once: the first one written wins; the others wait for its
        # batch (none is answered before it is durable) and answer as
        # repeats do -- the same body for its iteration, 409 for the other.
        s, txn = self.stack, uniq("TX")
        self.assertEqual(self.evaluate(txn), 1)
        self.assertEqual(self.evaluate(txn), 2)
        counters = [2, 1, 2, 2, 1, 2, 2, 2]
        out = [None] * len(counters)

        def go(i):
            out[i] = s.confirm(txn, counters[i], [self.applied("18.00")])
        threads = [threading.Thread(target=go, args=(i,)) for i in range(len(out))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [counters[i] for i, r in enumerate(out) if r.status == 200]
        self.assertTrue(won)
        winner = won[0]
        first = next(r for r in out if r.status == 200)
        self.assertJson({"transactionId": txn, "confirmed": True, "message": CONFIRMED},
                        self.assertOk(first))
        for c, r in zip(counters, out):
            if c == winner:
                self.assertEqual((r.status, r.raw), (200, first.raw))
            else:
                e = self.assertError(r, 409, "CONFLICT", "header.transactionCounter")
                self.assertIn("counter %d" % winner, e["message"])
        s.wait_side_effects(txn, winner)
        self.assertEqual([e["value"]["transactionCounter"] for e in self.tx_events(txn)],
                         [winner])

    def test_unknown_iteration_is_404(self):
        s, txn = self.stack, uniq("TX")
        e = self.assertError(s.confirm(txn, 1, [self.applied()]), 404, "NOT_FOUND",
                             "header.transactionCounter")
        self.assertIn(txn, e["message"])
        self.evaluate(txn)
        self.assertError(s.confirm(txn, 2, [self.applied()]), 404, "NOT_FOUND",
                         "header.transactionCounter")
        # another tenant's credential never sees the iteration: no such user
        # here, but the 404 above already shows nothing leaks across ids.
        self.assertOk(s.confirm(txn, 1, [self.applied()]))

    def test_second_iteration_is_409(self):
        s, txn = self.stack, uniq("TX")
        self.assertEqual(self.evaluate(txn), 1)
        self.assertEqual(self.evaluate(txn), 2)
        self.assertOk(s.confirm(txn, 2, [self.applied("18.00")]))
        e = self.assertError(s.confirm(txn, 1, [self.applied("18.00")]), 409, "CONFLICT",
                             "header.transactionCounter")
        self.assertIn("counter 2", e["message"])
        # the confirmed iteration still answers as the first time
        r = s.confirm(txn, 2, [self.applied("18.00")])
        self.assertJson({"transactionId": txn, "confirmed": True, "message": CONFIRMED},
                        self.assertOk(r))
        s.wait_side_effects(txn, 2)
        self.assertError(s.side_effects(txn, 1), 404, "NOT_FOUND")

    def test_promotion_not_granted_or_too_large_is_409(self):
        s, txn = self.stack, uniq("TX")
        self.evaluate(txn)
        other = harness.new_id()
        self.assertError(s.confirm(txn, 1, [self.applied(pid=other)]), 409, "CONFLICT",
                         "appliedPromotions[0].promotionId")
        self.assertError(s.confirm(txn, 1, [self.applied("18.01")]), 409, "CONFLICT",
                         "appliedPromotions[0].discountAmount.value")
        self.assertError(s.confirm(txn, 1, [self.applied(total="18.01")]), 409, "CONFLICT",
                         "appliedPromotions[0].totalDiscount")
        # discountAmount wins over totalDiscount: a valid discountAmount with
        # a too large totalDiscount is fine ...
        self.assertOk(s.confirm(txn, 1, [self.applied("12.34", total="99.00")]))
        s.wait_side_effects(txn, 1)
        v = self.tx_events(txn)[0]["value"]
        self.assertEqual(v["promotions"][0]["amount"], 1234)
        self.assertEqual(v["promotions"][0]["grantedAmount"], 1800)
        self.assertEqual(v["totalDiscount"], 1234)

    def test_discount_amount_precedence_and_partial_confirm(self):
        s = self.stack
        t1, t2, t3 = uniq("TX"), uniq("TX"), uniq("TX")
        for t in (t1, t2, t3):
            self.evaluate(t)
        self.assertOk(s.confirm(t1, 1, [self.applied("5.00", total="7.00")]))
        self.assertOk(s.confirm(t2, 1, [self.applied(total="7.00")]))
        self.assertOk(s.confirm(t3, 1, [self.applied()]))  # neither: as granted
        amounts = {}
        for t in (t1, t2, t3):
            s.wait_side_effects(t, 1)
            amounts[t] = self.tx_events(t)[0]["value"]["promotions"][0]["amount"]
        self.assertEqual(amounts, {t1: 500, t2: 700, t3: 1800})
        # a confirm may leave out a granted promotion: nothing is consumed
        t4 = uniq("TX")
        self.evaluate(t4)
        self.assertOk(s.confirm(t4, 1, []))
        s.wait_side_effects(t4, 1)
        v = self.tx_events(t4)[0]["value"]
        self.assertEqual((v["promotions"], v["totalDiscount"], v["grandTotal"]),
                         ([], 0, 17998))

    def test_validation(self):
        s, txn = self.stack, uniq("TX")
        pid = self.p["id"]
        good = {"header": {"transactionId": txn, "transactionCounter": 1},
                "transactionId": txn, "appliedPromotions": [{"promotionId": pid}]}

        def with_(**kw):
            r = dict(good)
            r.update(kw)
            return {"request": r}
        cases = [
            ({"request": {"transactionId": txn, "appliedPromotions": []}}, "header"),
            (with_(header={"transactionId": txn}), "header.transactionCounter"),
            (with_(header={"transactionId": txn, "transactionCounter": 0}),
             "header.transactionCounter"),
            (with_(header={"transactionId": txn, "transactionCounter": "x"}),
             "header.transactionCounter"),
            (with_(header={"transactionCounter": 1}), "header.transactionId"),
            (with_(transactionId="OTHER"), "transactionId"),
            (with_(transactionId=None), "transactionId"),
            (with_(appliedPromotions=None), "appliedPromotions"),
            (with_(appliedPromotions={"promotionId": pid}), "appliedPromotions"),
            (with_(appliedPromotions=[pid]), "appliedPromotions[0]"),
            (with_(appliedPromotions=[{"couponCode": "X"}]), "appliedPromotions[0].promotionId"),
            (with_(appliedPromotions=[{"promotionId": "not-a-uuid"}]),
             "appliedPromotions[0].promotionId"),
            (with_(appliedPromotions=[{"promotionId": pid}, {"promotionId": pid}]),
             "appliedPromotions[1].promotionId"),
            (with_(appliedPromotions=[{"promotionId": pid, "totalDiscount": D("-1")}]),
             "appliedPromotions[0].totalDiscount"),
            (with_(appliedPromotions=[{"promotionId": pid, "totalDiscount": D("1.001")}]),
             "appliedPromotions[0].totalDiscount"),
            (with_(appliedPromotions=[{"promotionId": pid, "discountAmount": {"currency": "EUR"}}]),
             "appliedPromotions[0].discountAmount.value"),
            (with_(appliedPromotions=[{"promotionId": pid,
                                       "discountAmount": {"value": D("-0.01"), "currency": "EUR"}}]),
             "appliedPromotions[0].discountAmount.value"),
            (with_(timestamp="yesterday"), "timestamp"),
            (with_(posGroupId="nope"), "posGroupId"),
            (with_(items=[{"quantity": 1}]), "items[0].articleNumber"),
        ]
        for body, target in cases:
            r = s.post("/pos/v2/confirm", body)
            self.assertError(r, 400, "VALIDATION_FAILED", target)
        self.assertError(s.post("/pos/v2/confirm", raw=b"{nope"), 400, "MALFORMED_JSON")
        self.assertError(s.post("/pos/v2/confirm", good), 400, "VALIDATION_FAILED", "request")
        # none of it created anything: the iteration is still unknown
        self.assertError(s.post("/pos/v2/confirm", with_()), 404, "NOT_FOUND")
        # a currency other than the transaction's
        self.evaluate(txn)
        self.assertError(s.post("/pos/v2/confirm", with_(appliedPromotions=[
            {"promotionId": pid, "discountAmount": {"value": D("1.00"), "currency": "USD"}}])),
            400, "VALIDATION_FAILED", "appliedPromotions[0].discountAmount.currency")
        # items[] are accepted (for audit), unknown fields ignored
        r = s.post("/pos/v2/confirm", with_(items=[{"articleNumber": self.art, "quantity": 2,
                                                     "unitPrice": D("89.99"), "finalPrice": 1}],
                                             somethingNew=True))
        self.assertOk(r)

    def test_roles_and_poll_errors(self):
        s, txn = self.stack, uniq("TX")
        self.evaluate(txn)
        self.assertError(s.confirm(txn, 1, [], user="promo-manager"), 403, "FORBIDDEN")
        self.assertError(s.confirm(txn, 1, [], user=None), 401, "UNAUTHORIZED")
        self.assertError(s.side_effects(txn, 1), 404, "NOT_FOUND")
        self.assertError(s.side_effects(txn, 0), 400, "VALIDATION_FAILED")
        self.assertError(s.side_effects(txn, "x"), 400, "VALIDATION_FAILED")
        self.assertError(s.side_effects(txn, 1, user="budget-manager"), 403, "FORBIDDEN")
        self.assertOk(s.confirm(txn, 1, [], user="pos-reader"))
        b = s.wait_side_effects(txn, 1)
        self.assertEqual(b["status"], "COMPLETED")
        self.assertError(s.request("DELETE", "/pos/v2/confirm"), 405, "METHOD_NOT_ALLOWED")

    def test_heartbeat_shows_the_outbox(self):
        s = self.stack
        b = self.assertOk(s.get("/pos/heartbeat"))
        self.assertEqual(b["btpConnectivity"], "CONNECTED")
        harness.wait_until(lambda: s.get("/pos/heartbeat").body["pendingTransactions"] == 0,
                           10, what="empty outbox")


if __name__ == "__main__":
    harness.main()
