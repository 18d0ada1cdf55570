#!/usr/bin/env python3
# test_restart.py -- state survives a full restart on the same data dir: the
# catalog keeps its entities (RocksDB), the evaluator its counters, and a new
# broker (an empty Kafka: new cluster, no topics' history) does not lose or
# confuse anything.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import basket, exp_line, item, new_id, promotion, uniq  # noqa: E402


class Restart(harness.TestCase):
    # each test has its own stack: a restart must start from a known state
    @classmethod
    def setUpClass(cls):
        pass

    def setUp(self):
        self.stack = harness.Stack()

    def tearDown(self):
        try:
            self.stack.stop()
        finally:
            self.stack.kill_all()
    def test_restart_keeps_state(self):
        s = self.stack
        gid, code = new_id(), uniq("R")[:20]
        r = s.post("/api/v1/PosGroups", {"id": gid, "code": code, "name": "Restart store"})
        self.assertStatus(r, 201)
        art = uniq("ART")
        b = s.import_articles([{"articleNumber": art, "name": "Kettle",
                                "articleGroupId": "KITCHEN", "manufacturer": "Hot Co",
                                "referencePrice": 39.90}])
        self.assertEqual(b["imported"], 1)
        p = promotion("Kitchen 15%", [{"type": "ARTICLE", "values": [art]}],
                      [{"type": "ARTICLE", "discountType": "PERCENTAGE", "value": 15,
                        "target": {"articles": [art]}}], pos_groups=[gid])
        r = s.post("/api/v1/Promotions", p)
        self.assertStatus(r, 201)
        txn = uniq("TX")
        req = basket(gid, [item("L1", art, 2, "39.90")], txn=txn)
        s.wait_for_promotion(p["id"], req)
        expected = [exp_line("L1", art, 2, "39.90",
                             [(p["id"], p["name"], "ARTICLE", "PERCENTAGE", 15, "11.97")])]
        for n in (1, 2):
            body = self.assertEval(s.evaluate(req))
            self.assertEqual(body["meta"]["header"], {"transactionId": txn,
                                                      "transactionCounter": n})
            self.assertLines(body, expected)
        before = {
            "promo": self.assertOk(s.get("/api/v1/Promotions/" + p["id"])),
            "group": self.assertOk(s.get("/api/v1/PosGroups/" + gid)),
            "article": self.assertOk(s.get("/api/v1/Articles/" + art)),
        }
        old_bootstrap = s.bootstrap

        s.stop()  # SIGTERM everything; each must exit 0 in time
        for name in harness.SERVICES:
            self.assertFalse(s.alive(name))
        s.start()  # same data dir and ports, a new (empty) broker
        self.assertTrue(s.bootstrap)
        if s.bootstrap == old_bootstrap:
            print("note: the new broker reused the bootstrap address", old_bootstrap)

        self.assertJson(before["promo"], self.assertOk(s.get("/api/v1/Promotions/" + p["id"])))
        self.assertJson(before["group"], self.assertOk(s.get("/api/v1/PosGroups/" + gid)))
        self.assertJson(before["article"], self.assertOk(s.get("/api/v1/Articles/" + art)))
        # the promotion applies again (from the evaluator's own copy or a fresh
        # snapshot) and the counter continues where it stopped
        s.wait_for_promotion(p["id"], req)
        body = self.assertEval(s.evaluate(req))
        self.assertEqual(body["meta"]["header"], {"transactionId": txn, "transactionCounter": 3})
        self.assertLines(body, expected)
        # a change after the restart still reaches the evaluator (the feed works
        # on the new broker)
        r = s.request("PATCH", "/api/v1/Promotions/" + p["id"],
                      {"actions": [{"type": "ARTICLE", "discountType": "PERCENTAGE",
                                    "value": 50, "target": {"articles": [art]}}]})
        self.assertStatus(r, 200)
        s.wait_for_promotion(p["id"], req, check=lambda b: s.applied(b, p["id"]) ==
                             [("L1", harness.D("39.90"))])
        p2 = promotion("After restart", [{"type": "ARTICLE", "values": [art]}],
                       [{"type": "ARTICLE", "discountType": "ABSOLUTE", "value": 1,
                         "target": {"articles": [art]}}], pos_groups=[code])
        s.create_promotion(p2)
        s.wait_for_promotion(p2["id"], req)
        body = self.assertEval(s.evaluate(req))
        self.assertEqual(body["meta"]["header"]["transactionCounter"], 4)

    def test_restart_evaluator_only(self):
        # kill -9 the evaluator: it comes back from its RocksDB and the catalog
        s = self.stack
        g = s.create_pos_group()
        art = uniq("ART")
        p = promotion("Kill test", [{"type": "ARTICLE", "values": [art]}],
                      [{"type": "ARTICLE", "discountType": "UNIT_PRICE", "value": 1,
                        "target": {"articles": [art]}}], pos_groups=[g["id"]])
        s.create_promotion(p)
        txn = uniq("TX")
        req = basket(g["id"], [item("L1", art, 1, "3.00")], txn=txn)
        s.wait_for_promotion(p["id"], req)
        self.assertEqual(self.assertEval(s.evaluate(req))["meta"]["header"]["transactionCounter"], 1)
        s.kill9("evaluator")
        s.start_service("evaluator")
        s.wait_healthy()
        s.wait_for_promotion(p["id"], req)
        body = self.assertEval(s.evaluate(req))
        self.assertEqual(body["meta"]["header"]["transactionCounter"], 2)
        self.assertLines(body, [exp_line("L1", art, 1, "3.00",
                                         [(p["id"], p["name"], "ARTICLE", "UNIT_PRICE", 1,
                                           "2.00")])])


if __name__ == "__main__":
    harness.main()
