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
from harness import D, uniq  # noqa: E402

TTL_MS = 1000
OPTS = {"evaluator": ["retention.iterations_ms=%d" % TTL_MS,
                      "retention.confirmed_ms=%d" % TTL_MS,
                      "retention.compact_every_ms=150"]}


class Retention(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = harness.shared_stack(opts=OPTS)

    def setUp(self):
        self.p, self.req = self.ten_off_basket()

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

    def confirmed(self):
        txn = uniq("TX")
        self.assertEqual(self.evaluate(txn), 1)
        self.assertOk(self.stack.confirm(txn, 1, [self.applied()]))
        return txn

    def wait_compaction(self):
        """Returns once a compaction cycle that started after the call
        dropped everything expired by then: a job confirmed now is gone only
        after a cycle that started once it expired, and each cycle compacts
        the iterations before the jobs (column-family order)."""
        txn = self.confirmed()
        harness.wait_until(lambda: self.stack.side_effects(txn, 1).status == 404, 20,
                           interval=0.2, what="side-effect job dropped")

    def test_unconfirmed_iteration_expires(self):
        s, txn = self.stack, uniq("TX")
        self.assertEqual(self.evaluate(txn), 1)
        self.assertEqual(self.probe(txn), 409)
        # The first cycle after a later job expired ran after the iteration
        # expired too; the second started after that one finished.
        self.wait_compaction()
        self.wait_compaction()
        self.assertEqual(self.probe(txn), 404)
        e = self.assertError(s.confirm(txn, 1, [self.applied()]), 404, "NOT_FOUND",
                             "header.transactionCounter")
        self.assertIn(txn, e["message"])
        # The counter went with it: the transaction starts again.
        self.assertEqual(self.evaluate(txn), 1)
        self.assertOk(s.confirm(txn, 1, [self.applied()]))

    def test_confirm_marker_and_job_expire(self):
        s = self.stack
        txn = self.confirmed()
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
