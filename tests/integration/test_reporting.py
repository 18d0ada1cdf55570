#!/usr/bin/env python3
# test_reporting.py -- /reporting/PromotionPerformance and
# /reporting/BudgetUtilization (DRE-SPEC §10): figures of confirmed sales only
# (never evaluate/simulate), per tenant, promotion, day, channel and POS
# group; JSON and CSV; roles Admin, PromotionManager, BudgetManager.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, basket, item, new_id, pct_action, promotion, uniq  # noqa: E402


class Reporting(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.g1 = s.create_pos_group()["id"]
        cls.g2 = s.create_pos_group()["id"]
        cls.art = uniq("ART")
        cls.budget = s.create_budget("500.00")
        cls.p = promotion("Report me", [{"type": "ARTICLE", "values": [cls.art]}],
                          [pct_action(10, articles=[cls.art])], pos_groups=[],
                          budgetIds=[cls.budget["id"]])
        s.create_promotion(cls.p)
        s.wait_for_promotion(cls.p["id"], basket(cls.g1, [item("L1", cls.art, 1, "10.00")]))
        # sales: (POS group, channel, day, unit price, confirmed discount)
        cls.sales = [
            (cls.g1, "ONLINE", "2026-06-07", "100.00", "10.00"),
            (cls.g1, "ONLINE", "2026-06-07", "50.00", "4.00"),
            (cls.g1, "IN_STORE", "2026-06-07", "30.00", "3.00"),
            (cls.g2, "ONLINE", "2026-06-08", "20.00", "2.00"),
            (cls.g2, None, "2026-06-08", "80.00", "8.00"),
        ]
        cls.txns = []
        for gid, chan, day, price, disc in cls.sales:
            txn = uniq("TX")
            req = basket(gid, [item("L1", cls.art, 1, price)], txn=txn,
                         timestamp=day + "T10:00:00Z")
            if chan:
                req["channel"] = chan
            b = s.evaluate(req).body
            assert b["totals"]["discount"]["value"] == D(price) / 10, b
            r = s.confirm(txn, 1, [{"promotionId": cls.p["id"],
                                    "discountAmount": {"value": D(disc), "currency": "EUR"}}])
            assert r.status == 200, r
            cls.txns.append(txn)
        # evaluations and simulations never count
        s.evaluate(basket(cls.g1, [item("L1", cls.art, 1, "99.00")], txn=uniq("TX")))
        s.simulate(basket(cls.g1, [item("L1", cls.art, 1, "99.00")]))
        for txn in cls.txns:
            s.wait_side_effects(txn, 1)

    def perf(self, query="", user="admin"):
        return self.stack.get("/reporting/PromotionPerformance(%s)%s" % (self.p["id"], query),
                              user=user)

    def test_promotion_performance(self):
        r = self.assertOk(self.perf())
        self.assertJson({"promotionId": self.p["id"], "promotionName": "Report me",
                         "promotionStatus": "ACTIVE", "promotionType": "ARTICLE",
                         "applicationsCount": 5, "totalDiscountGiven": D("27.00"),
                         "avgDiscountPerTx": D("5.40"), "currency": "EUR",
                         "firstAppliedAt": "2026-06-07T10:00:00.000Z",
                         "lastAppliedAt": "2026-06-08T10:00:00.000Z"}, r)
        lst = self.assertOk(self.stack.get("/reporting/PromotionPerformance"))
        mine = [x for x in lst["value"] if x["promotionId"] == self.p["id"]]
        self.assertEqual(mine, [r])
        self.assertEqual(lst["count"], len(lst["value"]))

    def test_grouped_and_filtered(self):
        lst = self.assertOk(self.stack.get(
            "/reporting/PromotionPerformance?groupBy=day,channel,posGroup"))
        rows = sorted(((x["day"], x["channel"] or "", x["posGroupId"], x["applicationsCount"],
                        x["totalDiscountGiven"])
                       for x in lst["value"] if x["promotionId"] == self.p["id"]))
        self.assertEqual(rows, sorted([
            ("2026-06-07", "IN_STORE", self.g1, 1, D("3.00")),
            ("2026-06-07", "ONLINE", self.g1, 2, D("14.00")),
            ("2026-06-08", "", self.g2, 1, D("8.00")),
            ("2026-06-08", "ONLINE", self.g2, 1, D("2.00"))]))
        by_day = self.assertOk(self.stack.get(
            "/reporting/PromotionPerformance?groupBy=day"))
        days = sorted((x["day"], x["applicationsCount"], x["totalDiscountGiven"],
                       x["avgDiscountPerTx"])
                      for x in by_day["value"] if x["promotionId"] == self.p["id"])
        self.assertEqual(days, [("2026-06-07", 3, D("17.00"), D("5.67")),
                                ("2026-06-08", 2, D("10.00"), D("5.00"))])
        one = self.assertOk(self.perf("?from=2026-06-08&to=2026-06-08"))
        self.assertEqual((one["applicationsCount"], one["totalDiscountGiven"]), (2, D("10.00")))
        one = self.assertOk(self.perf("?channel=online"))
        self.assertEqual((one["applicationsCount"], one["totalDiscountGiven"]), (3, D("16.00")))
        one = self.assertOk(self.perf("?posGroupId=" + self.g2))
        self.assertEqual((one["applicationsCount"], one["totalDiscountGiven"]), (2, D("10.00")))
        self.assertError(self.perf("?from=2026-06-09"), 404, "NOT_FOUND")
        self.assertError(self.perf("?from=yesterday"), 400, "VALIDATION_FAILED", "from")
        self.assertError(self.perf("?groupBy=week"), 400, "VALIDATION_FAILED", "groupBy")
        self.assertError(self.perf("?format=xml"), 400, "VALIDATION_FAILED", "format")
        self.assertError(self.stack.get("/reporting/PromotionPerformance(%s)" % new_id()),
                         404, "NOT_FOUND")

    def test_csv(self):
        r = self.perf("?format=csv")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("text/csv"), r.headers)
        self.assertEqual(r.text,
                         "promotionId,promotionName,promotionStatus,promotionType,"
                         "applicationsCount,totalDiscountGiven,avgDiscountPerTx,currency,"
                         "firstAppliedAt,lastAppliedAt\r\n"
                         "%s,Report me,ACTIVE,ARTICLE,5,27.00,5.40,EUR,"
                         "2026-06-07T10:00:00.000Z,2026-06-08T10:00:00.000Z\r\n" % self.p["id"])
        r = self.stack.get("/reporting/PromotionPerformance?format=csv&groupBy=channel")
        lines = [ln for ln in r.text.split("\r\n") if self.p["id"] in ln]
        self.assertEqual(sorted(ln.split(",")[4:6] + ln.split(",")[11:12] for ln in lines),
                         [["1", "3.00", "IN_STORE"], ["1", "8.00", ""], ["3", "16.00", "ONLINE"]])

    def test_budget_utilization(self):
        s = self.stack
        r = self.assertOk(s.get("/reporting/BudgetUtilization(%s)" % self.budget["id"],
                                user="budget-manager"))
        self.assertJson({"budgetId": self.budget["id"], "budgetName": self.budget["name"],
                         "status": "ACTIVE", "totalAmount": D("500.00"),
                         "consumedAmount": D("27.00"), "remainingAmount": D("473.00"),
                         "currency": "EUR", "utilizationPct": D("5.40"),
                         "transactionsCount": 5}, r, subset=True)
        self.assertIn("dailyBurnRate", r)
        self.assertIn("projectedExhaustionDate", r)
        lst = self.assertOk(s.get("/reporting/BudgetUtilization"))
        self.assertIn(self.budget["id"], [x["budgetId"] for x in lst["value"]])
        csv = s.get("/reporting/BudgetUtilization(%s)?format=csv" % self.budget["id"])
        head, row, _ = csv.text.split("\r\n")
        self.assertEqual(head, "budgetId,budgetName,status,totalAmount,consumedAmount,"
                               "remainingAmount,currency,utilizationPct,transactionsCount,"
                               "dailyBurnRate,projectedExhaustionDate")
        self.assertTrue(row.startswith("%s,%s,ACTIVE,500.00,27.00,473.00,EUR,5.40,5,"
                                       % (self.budget["id"], self.budget["name"])), row)
        self.assertError(s.get("/reporting/BudgetUtilization(%s)" % new_id()), 404, "NOT_FOUND")

    def test_roles(self):
        for user in ("admin", "promo-manager", "budget-manager"):
            self.assertOk(self.perf(user=user))
        for user in ("pos-reader", "api-writer"):
            self.assertError(self.perf(user=user), 403, "FORBIDDEN")
        self.assertError(self.perf(user=None), 401, "UNAUTHORIZED")
        self.assertError(self.stack.request("POST", "/reporting/PromotionPerformance", {}),
                         405, "METHOD_NOT_ALLOWED")


if __name__ == "__main__":
    harness.main()
