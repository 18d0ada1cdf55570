#!/usr/bin/env python3
# test_canonical.py -- the canonical example of seed 002 (POS Service wire
# contract) through the real processes: POS group + promotion created over
# /api/v1, the seed's request evaluated, every field of the seed's response
# compared (except the per-instance meta fields), then the iteration counter.
import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ISO_RE, load_data  # noqa: E402

# meta fields that depend on the instance or the clock (compared loosely).
VOLATILE_META = ("evaluatedAt", "tenantId", "source", "instanceId", "dataAge")


def strip_meta(body):
    b = copy.deepcopy(body)
    for k in VOLATILE_META:
        b.get("meta", {}).pop(k, None)
    return b


class Canonical(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.req = load_data("seed002_request.json")["request"]
        cls.expected = load_data("seed002_response.json")
        r = s.post("/api/v1/PosGroups", load_data("seed002_posgroup.json"))
        assert r.status == 201, "create POS group: %r" % r
        r = s.post("/api/v1/Promotions", load_data("seed002_promotion.json"))
        assert r.status == 201, "create promotion: %r" % r
        s.wait_for_promotion("10000000-0000-4000-8000-000000000001", cls.req)

    def check_volatile_meta(self, meta):
        self.assertIsInstance(meta.get("evaluatedAt"), str)
        self.assertRegex(meta["evaluatedAt"], ISO_RE)
        self.assertEqual(meta.get("tenantId"), "default")
        self.assertIn(meta.get("source"), ("btp", "local-store"))
        self.assertIsInstance(meta.get("instanceId"), str)
        if "dataAge" in meta:
            self.assertRegex(meta["dataAge"], ISO_RE)

    def expect(self, counter, simulation=False):
        e = strip_meta(self.expected)
        e["meta"]["header"]["transactionCounter"] = counter
        e["meta"]["isSimulation"] = simulation
        return e

    def test_1_canonical_example(self):
        s = self.stack
        # the raw seed bytes, exactly as a POS would send them
        with open(os.path.join(harness.DATA, "seed002_request.json"), "rb") as f:
            raw = f.read()
        r = s.post("/pos/v2/evaluate", raw=raw)
        b = self.assertEval(r)
        self.check_volatile_meta(b["meta"])
        self.assertJson(self.expect(1), strip_meta(b), "seed 002 response")
        # the exact text of the money and quantity values
        nums = harness.number_texts(r.text)
        l1, l2 = nums["lineItems"]
        self.assertEqual(l1["quantity"]["value"], ("F", "2.000"))
        self.assertEqual(l2["quantity"]["value"], ("F", "4.000"))
        self.assertEqual(l1["unitPrice"]["value"], ("F", "89.99"))
        self.assertEqual(l1["lineTotal"]["value"], ("F", "179.98"))
        self.assertEqual(l1["lineDiscount"]["value"], ("F", "18.00"))
        self.assertEqual(l1["lineNet"]["value"], ("F", "161.98"))
        self.assertEqual(l1["discounts"][0]["discountAmount"]["value"], ("F", "18.00"))
        self.assertEqual(l1["discounts"][0]["totalDiscount"]["value"], ("F", "18.00"))
        self.assertEqual(l2["unitPrice"]["value"], ("F", "25.00"))
        self.assertEqual(l2["lineTotal"]["value"], ("F", "100.00"))
        self.assertEqual(l2["lineDiscount"]["value"], ("F", "0.00"))
        t = nums["totals"]
        self.assertEqual(t["subtotal"]["value"], ("F", "279.98"))
        self.assertEqual(t["discount"]["value"], ("F", "18.00"))
        self.assertEqual(t["grandTotal"]["value"], ("F", "261.98"))
        self.assertEqual(t["savingsSummary"]["savingsPercent"], ("F", "6.43"))
        self.assertEqual(t["savingsSummary"]["loyaltyPointsEarned"], ("I", "0"))
        self.assertEqual(nums["minorVersion"], ("I", "8"))
        self.assertEqual(nums["meta"]["header"]["transactionCounter"], ("I", "1"))

    def test_2_counter_and_simulate(self):
        s = self.stack
        req = copy.deepcopy(self.req)
        req["header"] = {"transactionId": "TXN-2026-002"}

        def expect(counter, simulation=False):
            e = self.expect(counter, simulation)
            e["meta"]["header"]["transactionId"] = "TXN-2026-002"
            return e
        b = self.assertEval(s.evaluate(req))
        self.assertJson(expect(1), strip_meta(b))
        b = self.assertEval(s.evaluate(req))
        self.assertJson(expect(2), strip_meta(b), "second evaluate")
        b = self.assertEval(s.simulate(req), simulation=True)
        self.check_volatile_meta(b["meta"])
        self.assertJson(expect(3, True), strip_meta(b), "simulate")
        b = self.assertEval(s.simulate(req), simulation=True)
        self.assertJson(expect(3, True), strip_meta(b), "simulate again")
        b = self.assertEval(s.evaluate(req))
        self.assertJson(expect(3), strip_meta(b), "evaluate after simulate")

    def test_3_heartbeat(self):
        r = self.stack.get("/pos/heartbeat")
        b = self.assertOk(r)
        # PRODUCT-DECISIONS §6, and every service's state (issue 14).
        self.assertEqual(set(b), {"status", "version", "mode", "btpConnectivity",
                                  "lastSync", "pendingTransactions",
                                  "promotionsLoaded", "uptime", "services"}, r)
        self.assertEqual(b["services"], {k: "UP" for k in (
            "evaluator", "catalog", "budget", "reporting", "coupon", "loyalty", "webhook")})
        self.assertEqual(b["status"], "UP")
        self.assertEqual(b["mode"], "central")
        self.assertEqual(b["btpConnectivity"], "CONNECTED")
        self.assertEqual(b["pendingTransactions"], 0)
        self.assertGreaterEqual(b["promotionsLoaded"], 1)
        self.assertIsInstance(b["version"], str)
        self.assertNotIsInstance(b["uptime"], bool)


if __name__ == "__main__":
    harness.main()
