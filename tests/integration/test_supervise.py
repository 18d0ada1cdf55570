#!/usr/bin/env python3
# test_supervise.py -- a crash is a clean restart, not an outage (issue 9):
# tools/stack (what `tools/dre run` execs) restarts a process killed with
# kill -9 after a back-off while the others keep serving; a killed broker
# comes back as a new empty cluster and its clients follow it; SIGTERM stops
# every process. The stack runs on its own HTTP port and nng port base.
import json
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import toolstack  # noqa: E402

NAMES = ("broker", "catalog", "budget", "reporting", "coupon", "loyalty", "evaluator",
         "gateway", "webhook")


class Supervise(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        pass  # no harness stack: tools/stack is the system under test

    def test_killed_processes_come_back(self):
        st = toolstack.ToolStack(demo=False, rpc_bases=range(21000, 29000, 1000))
        self.call, self.ok = st.call, st.ok
        try:
            self.run_checks(st.proc, st.data)
        except BaseException:
            st.dump()
            raise
        finally:
            st.kill()

    @staticmethod
    def stack_out(data):
        with open(os.path.join(data, "stack.out"), "rb") as f:
            return f.read().decode(errors="replace")

    def run_checks(self, p, data):
        harness.wait_until(lambda: self.ok("GET", "/pos/heartbeat"), 60,
                           what="the stack to serve")
        # Supervision begins once tools/stack has started everything (a
        # process that dies before is a failed start, not a crash).
        harness.wait_until(lambda: "Ctrl-C stops everything" in self.stack_out(data), 60,
                           what="tools/stack to supervise")
        before = toolstack.pids_of(data)
        self.assertEqual(sorted(before), sorted(NAMES))
        body = {"name": "Supervised", "totalAmount": 10, "currency": "EUR"}
        st, raw = self.call("POST", "/api/v1/Budgets", body)
        self.assertEqual(st, 201, raw)
        bid = json.loads(raw)["id"]

        # kill -9 the budget service: it comes back with its data, the
        # others are untouched.
        os.kill(before["budget"], signal.SIGKILL)
        harness.wait_until(lambda: toolstack.pids_of(data).get("budget") not in (None, before["budget"]),
                           20, what="dre-budget to be restarted")
        harness.wait_until(lambda: self.ok("GET", "/api/v1/Budgets/" + bid), 20,
                           what="the restarted budget service to answer")
        now = toolstack.pids_of(data)
        self.assertEqual({k: v for k, v in now.items() if k != "budget"},
                         {k: v for k, v in before.items() if k != "budget"})

        # The evaluator too, twice in a row (the second restart waits longer).
        for _ in range(2):
            old = toolstack.pids_of(data)["evaluator"]
            os.kill(old, signal.SIGKILL)
            harness.wait_until(lambda: toolstack.pids_of(data).get("evaluator") not in (None, old),
                               20, what="dre-evaluator to be restarted")
        out = self.stack_out(data)
        self.assertIn("dre-evaluator exited (status 137); restarting in 1s", out)
        self.assertIn("dre-evaluator exited (status 137); restarting in 2s", out)
        req = {"request": {"posGroupId": harness.new_id(), "items": [
            {"lineReference": "L1", "articleNumber": "A", "quantity": 1, "unitPrice": 1}]}}
        harness.wait_until(lambda: self.ok("POST", "/pos/v2/simulate", req), 20,
                           what="evaluate to answer after the evaluator restarts")

        # The dev broker: a new empty cluster, maybe on another port; its
        # clients follow and master data written afterwards reaches the
        # evaluator through the new cluster.
        os.kill(toolstack.pids_of(data)["broker"], signal.SIGKILL)
        harness.wait_until(lambda: "broker" in toolstack.pids_of(data), 20,
                           what="dre-broker to be restarted")
        harness.wait_until(lambda: self.ok("GET", "/pos/heartbeat"), 60,
                           what="the stack to serve after the broker restart")
        pg = {"id": harness.new_id(), "code": harness.uniq("S")[:20], "name": "S"}
        harness.wait_until(lambda: self.call("POST", "/api/v1/PosGroups", pg)[0] in (201, 409),
                           30, what="a master-data write after the broker restart")
        art = harness.uniq("ART")
        promo = harness.promotion("After broker restart",
                                  [{"type": "ARTICLE", "values": [art]}],
                                  [harness.pct_action(10, articles=[art])],
                                  pos_groups=[pg["id"]])
        # The stack may still be restarting the broker's clients (a new
        # port): a write meanwhile is a 503 with Retry-After, and a client
        # retries it; a retry of a write that did land is a 409.
        promo = json.loads(harness.dumps(promo))
        harness.wait_until(lambda: self.call("POST", "/api/v1/Promotions", promo)[0] in (201, 409),
                           30, what="a promotion write after the broker restart")
        sim = {"request": harness.basket(pg["id"], [harness.item("L1", art, 1, "10.00")])}
        sim = json.loads(harness.dumps(sim))

        def applied():
            st, raw = self.call("POST", "/pos/v2/simulate", sim)
            return st == 200 and json.loads(raw)["totals"]["discount"]["value"] == 1
        harness.wait_until(applied, 30, what="a promotion written after the broker "
                           "restart to reach the evaluator")

        # SIGTERM stops everything.
        p.send_signal(signal.SIGTERM)  # the stack alone: it stops its children
        self.assertEqual(p.wait(timeout=harness.deadline(60)), 143)
        harness.wait_until(lambda: toolstack.pids_of(data) == {}, 10, what="every process to exit")


if __name__ == "__main__":
    harness.main()
