#!/usr/bin/env python3
# test_restart.py -- state survives a full restart on the same data dir: the
# catalog keeps its entities (RocksDB), the evaluator its counters, and a new
# broker (an empty Kafka: new cluster, no topics' history) does not lose or
# confuse anything.
import os
import re
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import basket, exp_line, item, new_id, promotion, uniq  # noqa: E402


class Restart(harness.TestCase):
    # each test has its own stack: a restart must start from a known state
    @classmethod
    def setUpClass(cls):
        pass

    def setUp(self):
        # test_paged_snapshot, test_killed_writing_local_copy: the catalog's
        # snapshot in pages of ~one entity
        opts = ({"evaluator": ["snapshot.page_bytes=300"]}
                if self._testMethodName in ("test_paged_snapshot",
                                            "test_killed_writing_local_copy")
                else None)
        self.stack = harness.Stack(opts=opts)

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

    def test_paged_snapshot(self):
        # An evaluator without a local copy takes the catalog's snapshot in
        # pages (snapshot.page_bytes=300: about one entity a page); restarted
        # with its copy it takes none and follows the feed from its positions
        # (a promotion created while it was down arrives).
        s = self.stack
        g = s.create_pos_group()
        arts = [uniq("PG") for _ in range(6)]
        s.import_articles([{"articleNumber": a, "name": "Paged %d" % i,
                            "articleGroupId": "GRP-PAGED"}
                           for i, a in enumerate(arts)])
        promos = []
        for i, art in enumerate(arts):
            p = promotion("Paged %d" % i, [{"type": "ARTICLE", "values": [art]}],
                          [{"type": "ARTICLE", "discountType": "UNIT_PRICE",
                            "value": 1 + i, "target": {"articles": [art]}}],
                          pos_groups=[g["id"]])
            s.create_promotion(p)
            promos.append(p)
        group = promotion("Paged group", [{"type": "ARTICLE_GROUP", "values": ["GRP-PAGED"]}],
                          [{"type": "ARTICLE_GROUP", "discountType": "PERCENTAGE",
                            "value": 10, "target": {"articleGroups": ["GRP-PAGED"]}}],
                          pos_groups=[g["id"]], priority=1)
        s.create_promotion(group)
        req = basket(g["id"], [item("L%d" % i, a, 1, "20.00") for i, a in enumerate(arts)])
        s.wait_for_promotion(promos[-1]["id"], req)
        s.stop_service("evaluator")
        shutil.rmtree(os.path.join(s.data_dir, "evaluator-0"))
        s.start_service("evaluator")
        s.wait_healthy()
        # every promotion and article (the group promotion finds the lines by
        # the articles' group, known only from the article entities)
        body = s.wait_for_promotion(group["id"], req, timeout=15)
        for p in promos:
            self.assertTrue(s.applied(body, p["id"]), p["id"])
        first = s.log_text("evaluator", 200000).split("==== start evaluator")[-1]
        pages = re.search(r"catalog\.Snapshot from \S+: (\d+) entities in (\d+) pages", first)
        self.assertIsNotNone(pages, first[-3000:])
        self.assertGreaterEqual(int(pages.group(2)), 10)
        self.assertGreaterEqual(int(pages.group(1)), 14)  # 1 + 6 + 7 and settings
        # a restart with its local copy: no snapshot; a change made meanwhile
        # comes from the feed
        s.stop_service("evaluator")
        lart = uniq("LATE")
        late = promotion("Paged late", [{"type": "ARTICLE", "values": [lart]}],
                         [{"type": "ARTICLE", "discountType": "ABSOLUTE", "value": 0.5,
                           "target": {"articles": [lart]}}], pos_groups=[g["id"]])
        s.create_promotion(late)
        s.start_service("evaluator")
        s.wait_healthy()
        s.wait_for_promotion(late["id"], basket(g["id"], [item("L1", lart, 1, "2.00")]),
                             timeout=15)
        again = s.log_text("evaluator", 200000).split("==== start evaluator")[-1]
        self.assertIn("local copy:", again)
        self.assertNotIn("catalog.Snapshot from", again)
        self.assertNotIn("snapshot:", again)

    def test_killed_writing_local_copy(self):
        # kill -9 the evaluator in the middle of writing its local copy from
        # a paged snapshot (pages of ~one entity, each indexed and written as
        # it arrives; the catalog frozen after 10 or so so it cannot finish):
        # the copy is marked incomplete, so the restart does not load part of
        # it but takes the snapshot again and serves the full index.
        s = self.stack
        g = s.create_pos_group()
        n = 300
        arts = ["KC%05d" % i for i in range(n)]
        s.import_articles([{"articleNumber": a, "name": "Kill copy %d" % i,
                            "articleGroupId": "GRP-KC"}
                           for i, a in enumerate(arts)])
        p = promotion("Kill copy group", [{"type": "ARTICLE_GROUP", "values": ["GRP-KC"]}],
                      [{"type": "ARTICLE_GROUP", "discountType": "PERCENTAGE",
                        "value": 10, "target": {"articleGroups": ["GRP-KC"]}}],
                      pos_groups=[g["id"]])
        s.create_promotion(p)
        # the group promotion reaches the last article only through its
        # article entity (its group)
        req = basket(g["id"], [item("L1", arts[-1], 1, "20.00")])
        s.wait_for_promotion(p["id"], req, timeout=15)
        s.stop_service("evaluator")
        shutil.rmtree(os.path.join(s.data_dir, "evaluator-0"))

        def this_start():
            return s.log_text("evaluator", 10 ** 7).split("==== start evaluator")[-1]
        # The catalog runs a millisecond at a time (SIGCONT, SIGSTOP) until
        # 10 pages are written: it is frozen half-way, whatever the speed.
        catalog = s.procs["catalog"].pid
        os.kill(catalog, signal.SIGSTOP)
        try:
            s.start_service("evaluator")
            end = time.monotonic() + harness.deadline(30)
            while not re.search(r"snapshot: page \d\d ", this_start()):
                self.assertLess(time.monotonic(), end, "10 pages of the snapshot written")
                os.kill(catalog, signal.SIGCONT)
                time.sleep(0.001)
                os.kill(catalog, signal.SIGSTOP)
        except BaseException:
            os.kill(catalog, signal.SIGCONT)
            raise
        try:
            first = this_start()
            self.assertNotIn("local copy", first)
            self.assertIsNone(re.search(r"snapshot: \d+ entities", first), first[-2000:])
            s.kill9("evaluator")
        finally:
            os.kill(catalog, signal.SIGCONT)
        s.start_service("evaluator")
        s.wait_healthy()
        body = s.wait_for_promotion(p["id"], req, timeout=30)
        self.assertTrue(s.applied(body, p["id"]))
        again = this_start()
        self.assertIn("local copy incomplete", again)
        self.assertNotIn("local copy:", again)
        done = re.search(r"snapshot: (\d+) entities \(0 unreadable\)", again)
        self.assertIsNotNone(done, again[-2000:])
        self.assertGreaterEqual(int(done.group(1)), n + 2)  # + POS group, promotion
        r = s.get("/metrics")
        ents = re.search(r'^dre_engine_index_entities(?:\{[^}]*\})? (\d+)', r.text, re.M)
        self.assertIsNotNone(ents)
        self.assertEqual(int(ents.group(1)), int(done.group(1)))
        # and that copy is complete: a restart loads it, no snapshot
        s.stop_service("evaluator")
        s.start_service("evaluator")
        s.wait_healthy()
        s.wait_for_promotion(p["id"], req, timeout=15)
        last = this_start()
        self.assertIn("local copy: %s entities" % done.group(1), last)
        self.assertNotIn("catalog.Snapshot from", last)


if __name__ == "__main__":
    harness.main()
