#!/usr/bin/env python3
# test_budget.py -- /api/v1/Budgets, consumption of confirmed discounts per
# linked budget (exactly the confirmed amounts), threshold and exhaustion
# events, and the exhausting confirm limiting the promotion in the next
# evaluate (budgetLimitedPromotions) within a second.
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, basket, item, new_id, pct_action, promotion, uniq  # noqa: E402


class Budgets(harness.TestCase):
    def promo(self, budget_ids, pct=10):
        """A promotion on a fresh article, linked to budget_ids; returns
        (promotion, basket request of 2 x 50.00 = pct% of 100.00 off)."""
        s = self.stack
        gid = self.pos_group()["id"]
        art = uniq("ART")
        p = promotion("Budgeted %s" % art, [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(pct, articles=[art])], pos_groups=[gid],
                      budgetIds=list(budget_ids))
        s.create_promotion(p)
        req = basket(gid, [item("L1", art, 2, "50.00")])
        s.wait_for_promotion(p["id"], req)
        return p, req

    def sale(self, p, req, value=None):
        """evaluate + confirm one transaction; returns its id."""
        s, txn = self.stack, uniq("TX")
        b = self.assertEval(s.evaluate(dict(req, header={"transactionId": txn})))
        self.assertEqual(s.applied(b, p["id"]) != [], True, b)
        ap = {"promotionId": p["id"]}
        if value is not None:
            ap["discountAmount"] = {"value": D(value), "currency": "EUR"}
        self.assertOk(s.confirm(txn, 1, [ap]))
        return txn

    def test_crud(self):
        s = self.stack
        bid = new_id()
        r = s.post("/api/v1/Budgets", {"id": bid, "name": "Summer 2026", "totalAmount": D("1000"),
                                       "currency": "EUR", "validFrom": "2026-06-01T00:00:00Z",
                                       "validTo": "2026-08-31T23:59:59Z",
                                       "thresholds": [90, 50], "description": "summer"},
                   user="budget-manager")
        self.assertStatus(r, 201)
        exp = {"minorVersion": 13, "id": bid, "name": "Summer 2026", "description": "summer",
               "totalAmount": D("1000.00"), "consumedAmount": D("0.00"),
               "remainingAmount": D("1000.00"), "currency": "EUR",
               "utilizationPct": D("0.00"), "status": "ACTIVE",
               "validFrom": "2026-06-01T00:00:00.000Z", "validTo": "2026-08-31T23:59:59.000Z",
               "thresholds": [50, 90], "thresholdsCrossed": [], "transactionsCount": 0,
               "exhaustedAt": None}
        self.assertJson(exp, r.body, subset=True)
        self.assertRegex(r.body["createdAt"], harness.ISO_RE)
        self.assertJson(exp, self.assertOk(s.get("/api/v1/Budgets/" + bid)), subset=True)
        self.assertJson(exp, self.assertOk(s.get("/api/v1/Budgets(%s)" % bid)), subset=True)
        lst = self.assertOk(s.get("/api/v1/Budgets?$top=1000"))
        self.assertIn(bid, [b["id"] for b in lst["value"]])
        self.assertEqual(lst["count"], len(lst["value"]))
        r = s.request("PATCH", "/api/v1/Budgets/" + bid, {"name": "Summer", "totalAmount": 1500})
        self.assertJson(dict(exp, name="Summer", totalAmount=D("1500.00"),
                             remainingAmount=D("1500.00")), self.assertOk(r), subset=True)
        # errors
        self.assertError(s.post("/api/v1/Budgets", {"id": bid, "name": "x", "totalAmount": 1}),
                         409, "CONFLICT", "id")
        for doc, target in [({"totalAmount": 1}, "name"), ({"name": "x"}, "totalAmount"),
                            ({"name": "x", "totalAmount": -1}, "totalAmount"),
                            ({"name": "x", "totalAmount": D("1.001")}, "totalAmount"),
                            ({"name": "x", "totalAmount": 1, "currency": "euro"}, "currency"),
                            ({"name": "x", "totalAmount": 1, "thresholds": [0]}, "thresholds[0]"),
                            ({"name": "x", "totalAmount": 1, "thresholds": [50, 50]},
                             "thresholds[1]"),
                            ({"name": "x", "totalAmount": 1, "id": "nope"}, "id"),
                            ({"name": "x", "totalAmount": 1, "validFrom": "2026-02-01T00:00:00Z",
                              "validTo": "2026-01-01T00:00:00Z"}, "validTo")]:
            self.assertError(s.post("/api/v1/Budgets", doc), 400, "VALIDATION_FAILED", target)
        self.assertError(s.get("/api/v1/Budgets/" + new_id()), 404, "NOT_FOUND")
        # roles: BudgetManager and Admin write, PromotionManager reads, POS none
        self.assertError(s.post("/api/v1/Budgets", {"name": "x", "totalAmount": 1},
                                user="promo-manager"), 403, "FORBIDDEN")
        self.assertOk(s.get("/api/v1/Budgets/" + bid, user="promo-manager"))
        self.assertError(s.get("/api/v1/Budgets/" + bid, user="pos-reader"), 403, "FORBIDDEN")
        r = s.request("DELETE", "/api/v1/Budgets/" + bid, user="budget-manager")
        self.assertStatus(r, 204)
        self.assertError(s.get("/api/v1/Budgets/" + bid), 404, "NOT_FOUND")

    def test_consumption_per_linked_budget(self):
        s = self.stack
        b1 = s.create_budget("100.00", thresholds=[50, 80])
        b2 = s.create_budget("1000.00")
        p, req = self.promo([b1["id"], b2["id"]])
        t1 = self.sale(p, req, "7.50")   # granted 10.00, confirmed 7.50
        t2 = self.sale(p, req)           # as granted: 10.00
        for t, amount in ((t1, "7.50"), (t2, "10.00")):
            se = s.wait_side_effects(t, 1)
            self.assertEqual(se["status"], "COMPLETED")
            self.assertJson([{"budgetId": b1["id"], "amount": harness.money(amount)},
                             {"budgetId": b2["id"], "amount": harness.money(amount)}],
                            se["budgetsConsumed"])
        for bid, total in ((b1["id"], "100.00"), (b2["id"], "1000.00")):
            b = s.budget(bid)
            self.assertEqual((b["consumedAmount"], b["transactionsCount"], b["status"]),
                             (D("17.50"), 2, "ACTIVE"))
            self.assertEqual(b["remainingAmount"], D(total) - D("17.50"))
        # simulate and evaluate consume nothing
        s.simulate(dict(req, header={"transactionId": uniq("TX")}))
        s.evaluate(dict(req, header={"transactionId": uniq("TX")}))
        # a third sale, then every figure is exact
        t3 = self.sale(p, req, "0.01")
        s.wait_side_effects(t3, 1)
        self.assertEqual(s.budget(b1["id"])["consumedAmount"], D("17.51"))
        self.assertEqual(s.budget(b1["id"])["utilizationPct"], D("17.51"))

    def test_exhausting_confirm_limits_the_promotion(self):
        s = self.stack
        b = s.create_budget("25.00", thresholds=[50, 100])
        p, req = self.promo([b["id"]])
        t1 = self.sale(p, req)          # 10.00: 40 %
        t2 = self.sale(p, req)          # 20.00: 80 %, threshold 50 crossed
        for t in (t1, t2):
            s.wait_side_effects(t, 1)
        self.assertEqual(s.budget(b["id"])["thresholdsCrossed"], [50])
        # the exhausting sale: 10.00 granted before the budget ran out is
        # recorded in full (30.00 > 25.00)
        txn = uniq("TX")
        body = self.assertEval(s.evaluate(dict(req, header={"transactionId": txn})))
        self.assertEqual(body["budgetLimitedPromotions"], [])
        self.assertOk(s.confirm(txn, 1, [{"promotionId": p["id"]}]))
        confirmed_at = time.monotonic()
        # the next evaluate lists the promotion within a second
        state = {}

        def limited():
            r = s.evaluate(dict(req, header={"transactionId": uniq("TX")}))
            state["body"] = r.body
            return r.status == 200 and r.body["budgetLimitedPromotions"] != []
        harness.wait_until(limited, 1.0, interval=0.01, what="budgetLimitedPromotions")
        elapsed = time.monotonic() - confirmed_at
        sys.stderr.write("exhausting confirm -> budget-limited evaluate: %.0f ms\n"
                         % (elapsed * 1000))
        self.assertLess(elapsed, harness.deadline(1.0))
        lim = state["body"]
        self.assertEqual(lim["budgetLimitedPromotions"],
                         [{"promotionId": p["id"], "promotionName": p["name"],
                           "reason": "budget %s is exhausted" % b["id"]}])
        self.assertEqual(s.applied(lim, p["id"]), [])
        self.assertEqual(lim["totals"]["discount"]["value"], D("0.00"))
        se = s.wait_side_effects(txn, 1)
        self.assertEqual(se["budgetsConsumed"], [{"budgetId": b["id"],
                                                  "amount": harness.money("10.00")}])
        bb = s.budget(b["id"])
        self.assertJson({"status": "EXHAUSTED", "consumedAmount": D("30.00"),
                         "remainingAmount": D("-5.00"), "utilizationPct": D("120.00"),
                         "thresholdsCrossed": [50, 100], "transactionsCount": 3}, bb, subset=True)
        # the simulator explains it
        sim = self.assertOk(s.simulate(dict(req, includeMissedPromotions=True)))
        self.assertIn({"promotionId": p["id"], "promotionName": p["name"], "stage": "BUDGET",
                       "reason": "budget %s is exhausted" % b["id"]},
                      sim["missedPromotions"])
        # the events: two thresholds and one exhaustion, each once
        evs = [e["value"] for e in s.events("dre.budget.events")
               if e["value"]["budgetId"] == b["id"]]
        kinds = sorted((e["type"], e["thresholdPct"] and e["thresholdPct"]["int"]) for e in evs)
        self.assertEqual(kinds, [("BUDGET_EXHAUSTED", None), ("BUDGET_THRESHOLD_CROSSED", 50),
                                 ("BUDGET_THRESHOLD_CROSSED", 100)])
        ex = [e for e in evs if e["type"] == "BUDGET_EXHAUSTED"][0]
        self.assertEqual((ex["consumedAmount"], ex["totalAmount"], ex["transactionId"]),
                         (3000, 2500, {"string": txn}))
        st = [e["value"] for e in s.events("dre.budgets.status")
              if e["value"]["budgetId"] == b["id"]]
        self.assertEqual([e["status"] for e in st], ["ACTIVE", "EXHAUSTED"])

        # raising the total makes the budget ACTIVE again: the promotion
        # applies again (through dre.budgets.status)
        r = s.request("PATCH", "/api/v1/Budgets/" + b["id"], {"totalAmount": 100})
        self.assertEqual(self.assertOk(r)["status"], "ACTIVE")
        s.wait_for_promotion(p["id"], req)

    def test_unknown_budget_is_a_partial_side_effect(self):
        s = self.stack
        ghost = new_id()
        p, req = self.promo([ghost])
        txn = self.sale(p, req)
        se = s.wait_side_effects(txn, 1, statuses=("PARTIAL", "FAILED", "COMPLETED"))
        self.assertEqual(se["status"], "PARTIAL")
        self.assertEqual(se["budgetsConsumed"], [])
        self.assertEqual(se["reason"], "budget: budget %s does not exist" % ghost)


if __name__ == "__main__":
    harness.main()
