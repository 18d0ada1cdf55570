#!/usr/bin/env python3
# test_retention.py -- the evaluator's retention (retention.iterations_ms,
# retention.confirmed_ms, enforced by compaction every
# retention.compact_every_ms): an evaluated iteration that was not confirmed
# in time cannot be confirmed any more (404) and its transaction starts at
# counter 1 again; a confirm's marker and side-effect job go the same way
# (the poll answers 404); records within their TTL are untouched. A
# configuration where an iteration would outlive its confirm marker is a
# start-up error.
import os
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, basket, item, pct_action, promotion, uniq  # noqa: E402

TTL_MS = 1500
OPTS = {"evaluator": ["retention.iterations_ms=%d" % TTL_MS,
                      "retention.confirmed_ms=%d" % TTL_MS,
                      "retention.compact_every_ms=200"]}


class Retention(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = harness.shared_stack(opts=OPTS)

    def setUp(self):
        s = self.stack
        self.gid = self.pos_group()["id"]
        self.art = uniq("ART")
        self.p = promotion("Ten off", [{"type": "ARTICLE", "values": [self.art]}],
                           [pct_action(10, articles=[self.art])], pos_groups=[self.gid])
        s.create_promotion(self.p)
        self.req = basket(self.gid, [item("L1", self.art, 2, "89.99")])
        s.wait_for_promotion(self.p["id"], self.req)

    def evaluate(self, txn):
        b = self.assertEval(self.stack.evaluate(dict(self.req, header={"transactionId": txn})))
        self.assertEqual(b["totals"]["discount"]["value"], D("18.00"))
        return b["meta"]["header"]["transactionCounter"]

    def applied(self, pid=None):
        return {"promotionId": pid or self.p["id"], "couponCode": None,
                "discountAmount": {"value": D("18.00"), "currency": "EUR"}}

    def probe(self, txn):
        """Confirm with a promotion the iteration did not grant: 409 while
        the iteration exists, 404 once it is gone; never confirms."""
        return self.stack.confirm(txn, 1, [self.applied(pid=str(uuid.uuid4()))]).status

    def test_unconfirmed_iteration_expires(self):
        s, txn = self.stack, uniq("TX")
        self.assertEqual(self.evaluate(txn), 1)
        self.assertEqual(self.probe(txn), 409)
        harness.wait_until(lambda: self.probe(txn) == 404, 20, interval=0.2,
                           what="iteration 1 dropped")
        e = self.assertError(s.confirm(txn, 1, [self.applied()]), 404, "NOT_FOUND",
                             "header.transactionCounter")
        self.assertIn(txn, e["message"])
        # The counter went with it: the transaction starts again.
        self.assertEqual(self.evaluate(txn), 1)
        self.assertOk(s.confirm(txn, 1, [self.applied()]))

    def test_confirm_marker_and_job_expire(self):
        s, txn = self.stack, uniq("TX")
        self.assertEqual(self.evaluate(txn), 1)
        self.assertOk(s.confirm(txn, 1, [self.applied()]))
        harness.wait_until(lambda: s.side_effects(txn, 1).status == 404, 20, interval=0.2,
                           what="side-effect job dropped")
        # Marker and iteration are both gone: a repeat is 404, never a
        # second confirm.
        self.assertError(s.confirm(txn, 1, [self.applied()]), 404, "NOT_FOUND",
                         "header.transactionCounter")
        events = [e for e in s.events("dre.transactions.confirmed")
                  if e["value"] and e["value"]["transactionId"] == txn]
        self.assertEqual(len(events), 1)

    def test_iterations_may_not_outlive_confirms(self):
        r = subprocess.run(
            [os.path.join(harness.BIN_DIR, "dre-evaluator"), "-o", "data_dir=/nonexistent/x",
             "-o", "retention.iterations_ms=5000", "-o", "retention.confirmed_ms=1000"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("retention.iterations_ms (5000) must be at most", r.stderr.decode())


if __name__ == "__main__":
    harness.main()
