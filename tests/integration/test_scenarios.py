#!/usr/bin/env python3
# test_scenarios.py -- the golden scenarios of tests/scenarios/*.json through
# the real processes, on ONE stack: every scenario's master data and
# promotions are created over /api/v1 (each scenario owns its POS group,
# promotion ids and master keys, so they cannot see each other), then each
# request goes to /pos/v2/evaluate (or /simulate) and the answer is compared
# with the recorded one: every field but the per-instance meta, with
# missedPromotions restricted to the scenario's own promotions (the tenant
# holds every scenario's). Scenarios that need production nudges run after
# PUT /api/v1/TenantSettings turned them on.
import copy
import glob
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Decimal  # noqa: E402

SCN_DIR = os.path.join(harness.SOURCE_DIR, "tests", "scenarios")
VOLATILE_META = ("evaluatedAt", "tenantId", "source", "instanceId", "dataAge")


def load_scenarios():
    out = []
    for path in sorted(glob.glob(os.path.join(SCN_DIR, "*.json"))):
        with open(path, encoding="utf-8") as f:
            out.append((os.path.basename(path), json.load(f, parse_float=Decimal)))
    return out


def normalize(body, own_ids, header=True):
    b = copy.deepcopy(body)
    for k in VOLATILE_META:
        b.get("meta", {}).pop(k, None)
    if not header:
        b.get("meta", {}).pop("header", None)
    if "missedPromotions" in b:
        b["missedPromotions"] = [m for m in b["missedPromotions"]
                                 if m.get("promotionId") in own_ids]
    return b


def nudges_on(scn):
    return bool((scn.get("tenantSettings") or {}).get("enableProductionNudges"))


class Scenarios(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.scenarios = load_scenarios()
        s = cls.stack
        seen = set()
        total = 0
        for name, scn in cls.scenarios:
            keys = [("pg", g["id"]) for g in scn.get("posGroups", [])] + \
                [("pgc", g["code"]) for g in scn.get("posGroups", [])] + \
                [("ag", g["articleGroupId"]) for g in scn.get("articleGroups", [])] + \
                [("art", a["articleNumber"]) for a in scn.get("articles", [])] + \
                [("promo", p["id"]) for p in scn["promotions"]]
            for k in keys:
                assert k not in seen, "%s: %s is used by another scenario" % (name, k)
                seen.add(k)
            for g in scn.get("posGroups", []):
                s.create_pos_group(code=g["code"], gid=g["id"], name=g["name"])
            for g in scn.get("articleGroups", []):
                r = s.post("/api/v1/ArticleGroups", g)
                assert r.status == 201, "%s: article group: %r" % (name, r)
            if scn.get("articles"):
                s.import_articles(scn["articles"])
            for p in scn["promotions"]:
                s.create_promotion(p)
                total += 1
        # Every promotion of every scenario in the evaluator's index.
        harness.wait_until(
            lambda: s.get("/pos/heartbeat").body.get("promotionsLoaded", 0) >= total,
            30, what="%d promotions loaded" % total)

    def run_scenario(self, name, scn):
        s = self.stack
        own = {p["id"] for p in scn["promotions"]}
        expected = normalize(scn["expected"], own)
        path = "/pos/v2/simulate" if scn.get("simulate") else "/pos/v2/evaluate"
        # Probe under another transaction id until the master data of the
        # scenario has arrived (its articles, the settings), so the
        # scenario's own iteration is still counter 1.
        probe = copy.deepcopy(scn["request"])
        probe["header"]["transactionId"] = "PROBE-" + probe["header"]["transactionId"]
        want = normalize(scn["expected"], own, header=False)
        state = {}

        def ready():
            r = s.post(path, {"request": probe})
            state["last"] = r
            return r.status == 200 and not harness.diff(
                want, normalize(r.body, own, header=False))
        try:
            harness.wait_until(ready, 20, what="%s to answer as recorded" % name)
        except AssertionError:
            r = state.get("last")
            d = harness.diff(want, normalize(r.body, own, header=False)) \
                if r is not None and r.status == 200 else [repr(r)]
            self.fail("%s: never answered as recorded:\n  %s" % (name, "\n  ".join(d[:30])))
        r = s.post(path, {"request": scn["request"]})
        b = self.assertEval(r, simulation=bool(scn.get("simulate")))
        self.assertJson(expected, normalize(b, own), name)

    def test_scenarios(self):
        s = self.stack
        self.assertGreaterEqual(len(self.scenarios), 80)
        r = s.get("/api/v1/TenantSettings")
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.body["enableProductionNudges"], False)
        for name, scn in self.scenarios:
            if not nudges_on(scn):
                with self.subTest(scenario=name):
                    self.run_scenario(name, scn)
        r = s.request("PUT", "/api/v1/TenantSettings",
                      {"enableProductionNudges": True, "currency": "EUR"})
        self.assertEqual(r.status, 200, r)
        self.assertIs(r.body["enableProductionNudges"], True)
        for name, scn in self.scenarios:
            if nudges_on(scn):
                with self.subTest(scenario=name):
                    self.run_scenario(name, scn)

    def test_settings_validation(self):
        r = self.stack.request("PUT", "/api/v1/TenantSettings", {"currency": "euro"})
        self.assertError(r, 400, "VALIDATION_FAILED", "currency")
        r = self.stack.request("PUT", "/api/v1/TenantSettings", {"enableProductionNudges": True},
                               user="pos-reader")
        self.assertError(r, 403, "FORBIDDEN")


if __name__ == "__main__":
    harness.main()
