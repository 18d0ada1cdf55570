#!/usr/bin/env python3
# test_broker_restart.py -- nothing stuck, nothing lost when the broker
# restarts empty (issue 9 point 5).
#
# 1. A stream of confirms while dre-broker is killed (kill -9) and started
#    again on the same address three times: each start is a new, empty
#    cluster with a new cluster id. Afterwards the consumed budget and the
#    report equal the exact sums of the confirmed discounts, every
#    transaction was applied exactly once, every side-effects job is
#    COMPLETED and the last cluster holds one event (one eventId) of every
#    transaction: the outboxes re-published what the lost clusters had
#    acknowledged.
# 2. With the reporting service stopped, a confirm's side-effects job ends
#    PARTIAL after sidefx.timeout_ms, naming reporting in its reason; the
#    result reporting sends once it is back completes the job.
#
# DRE_BROKER_RESTART_CONFIRMS sets the number of confirms (default 2000,
# 600 under sanitizers, which set DRE_SANITIZE).
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import streams  # noqa: E402
from harness import D, uniq  # noqa: E402

SANITIZED = bool(os.environ.get("DRE_SANITIZE"))
CONFIRMS = int(os.environ.get("DRE_BROKER_RESTART_CONFIRMS",
                              600 if SANITIZED else 2000))
STREAM_SECONDS = 20.0   # the confirms are paced over this long
CLIENTS = 8
RESTARTS_AT = (0.25, 0.5, 0.75)  # fractions of the stream
TIMEOUT_MS = 3000       # sidefx.timeout_ms of the second test's stack


def own_stack(test, **kw):
    """A stack of the test's own (a broker on a fixed port: restarted on
    the same address), stopped cleanly at the end."""
    opts = dict(kw.pop("opts", {}))
    opts["broker"] = ["broker.port=%d" % harness.free_port()] + opts.get("broker", [])
    s = harness.Stack(opts=opts, **kw)

    def stop():
        try:
            s.stop()
        finally:
            s.kill_all()
    test.addCleanup(stop)
    return s


def prepare(s):
    return streams.markdown_with_budget(s, "Broker restart", s.create_pos_group()["id"])


class BrokerRestart(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        pass

    def test_1_broker_restarts_empty_during_confirms(self):
        s = own_stack(self)
        budget, p, req, art = prepare(s)
        bootstrap = s.bootstrap
        log = []

        def restarts(stream):
            for f in RESTARTS_AT:
                stream.at(f * STREAM_SECONDS)
                s.kill9("broker")
                log.append((stream.since_start(), len(stream.confirmed)))
                s.start_service("broker")
                self.assertEqual(s.bootstrap, bootstrap)

        st = streams.ConfirmStream(s, p, req, art, "BR-" + art[-6:], CONFIRMS,
                                   STREAM_SECONDS, CLIENTS)
        t = time.monotonic()
        st.run(restarts)
        sys.stderr.write("%d confirms in %.1f s, %d retries, broker restarts "
                         "(s, confirmed so far): %s\n" % (
                             len(st.confirmed), time.monotonic() - t, st.retries, log))
        self.assertEqual(len(log), len(RESTARTS_AT))
        self.assertEqual(st.errors, [])
        self.assertEqual(len(st.confirmed), CONFIRMS)
        want = sum((a for _, a in st.confirmed.values()), D("0"))
        t = time.monotonic()

        # The budget: exactly the sum, one consumption per sale; a figure
        # past it would be a sale applied twice.
        def budget_done():
            b = s.budget(budget["id"])
            self.assertLessEqual(b["consumedAmount"], want, b)
            self.assertLessEqual(b["transactionsCount"], CONFIRMS, b)
            return b["consumedAmount"] == want and b
        b = harness.wait_until(budget_done, 60, what="budget consumption %s" % want)
        self.assertEqual(b["transactionsCount"], CONFIRMS)

        def report_done():
            r = s.get("/reporting/PromotionPerformance(%s)" % p["id"])
            if r.status != 200:
                return False
            self.assertLessEqual(r.body["totalDiscountGiven"], want, r)
            return r.body["totalDiscountGiven"] == want and r.body
        r = harness.wait_until(report_done, 60, what="report total %s" % want)
        self.assertEqual(r["applicationsCount"], CONFIRMS)
        sys.stderr.write("budget and report exact %.1f s after the stream\n"
                         % (time.monotonic() - t))

        # Every job COMPLETED with its own consumption: none left PENDING
        # or RUNNING (nor timed out).
        txns = sorted(st.confirmed)
        bad = []

        def poll(part):
            for txn in part:
                counter, amount = st.confirmed[txn]
                try:
                    se = s.wait_side_effects(txn, counter, timeout=60)
                except AssertionError as e:
                    bad.append((txn, str(e)))
                    continue
                if se["budgetsConsumed"] != [{"budgetId": budget["id"],
                                              "amount": harness.money(amount)}] \
                        or se["reason"] is not None:
                    bad.append((txn, se))
        threads = [threading.Thread(target=poll, args=(txns[i::4],)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(bad[:5], [])
        sys.stderr.write("every job COMPLETED %.1f s after the stream\n"
                         % (time.monotonic() - t))

        # The last cluster holds every transaction, once: what the lost
        # clusters had acknowledged was published again, with its eventId
        # (each outbox notices the new cluster within seconds).
        state = {}

        def all_on_last_cluster():
            ids = {}
            for e in s.events("dre.transactions.confirmed", wait_s=60):
                v = e["value"]
                if v["transactionId"] in st.confirmed:
                    ids.setdefault(v["transactionId"], set()).add(v["eventId"])
            state["missing"] = sorted(set(st.confirmed) - set(ids))
            state["ids"] = ids
            return not state["missing"]
        try:
            harness.wait_until(all_on_last_cluster, 60, interval=1,
                               what="every transaction on the last cluster")
        except AssertionError:
            self.fail("%d transactions missing on the last cluster, e.g. %s" % (
                len(state["missing"]), state["missing"][:10]))
        self.assertEqual([x for x, v in state["ids"].items() if len(v) != 1], [])
        sys.stderr.write("every transaction on the last cluster %.1f s after the stream\n"
                         % (time.monotonic() - t))

        def up():
            hb = s.get("/pos/heartbeat").body
            return hb["status"] == "UP" and hb["pendingTransactions"] == 0 and hb
        harness.wait_until(up, 30, what="heartbeat UP with an empty outbox")
        s.assert_all_alive()

    def test_2_side_effects_time_out(self):
        s = own_stack(self, opts={"evaluator": ["sidefx.timeout_ms=%d" % TIMEOUT_MS]})
        budget, p, req, art = prepare(s)
        s.stop_service("reporting")
        txn = uniq("TO")
        r = s.evaluate(dict(req, header={"transactionId": txn}))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body["totals"]["discount"]["value"], D("1.00"))
        t = time.monotonic()
        r = s.confirm(txn, 1, [{"promotionId": p["id"]}])
        self.assertEqual(r.status, 200, r)
        # budget, coupon and loyalty answer, reporting cannot: RUNNING until the
        # bound, then PARTIAL naming reporting.
        se = s.wait_side_effects(txn, 1, statuses=("PARTIAL", "FAILED", "COMPLETED"),
                                 timeout=TIMEOUT_MS / 1000 + 15)
        elapsed = time.monotonic() - t
        sys.stderr.write("job %s after %.1f s: %s\n" % (se["status"], elapsed, se))
        self.assertEqual(se["status"], "PARTIAL", se)
        self.assertGreaterEqual(elapsed, TIMEOUT_MS / 1000 - 0.5)
        self.assertIn("reporting: no result within %d ms" % TIMEOUT_MS, se["reason"])
        self.assertNotIn("budget", se["reason"])
        self.assertNotIn("coupon", se["reason"])
        self.assertIsNotNone(se["completedAt"])
        self.assertEqual(se["budgetsConsumed"], [{"budgetId": budget["id"],
                                                  "amount": harness.money("1.00")}])
        self.assertEqual(s.budget(budget["id"])["consumedAmount"], D("1.00"))

        # A job nobody answers ends FAILED, naming every service.
        for name in ("budget", "coupon", "loyalty", "webhook"):
            s.stop_service(name)
        txn2 = uniq("TO")
        r = s.evaluate(dict(req, header={"transactionId": txn2}))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(s.confirm(txn2, 1, [{"promotionId": p["id"]}]).status, 200)
        se2 = s.wait_side_effects(txn2, 1, statuses=("PARTIAL", "FAILED", "COMPLETED"),
                                  timeout=TIMEOUT_MS / 1000 + 15)
        self.assertEqual(se2["status"], "FAILED", se2)
        for name in ("budget", "reporting", "coupon", "loyalty", "webhook"):
            self.assertIn("%s: no result within %d ms" % (name, TIMEOUT_MS), se2["reason"])

        # Late results still count: once the services are back both jobs
        # show every result and end COMPLETED.
        for name in ("budget", "coupon", "reporting", "loyalty", "webhook"):
            s.start_service(name)
        for x in (txn, txn2):
            se = s.wait_side_effects(x, 1, timeout=60)
            self.assertIsNone(se["reason"], se)
        self.assertEqual(s.budget(budget["id"])["consumedAmount"], D("2.00"))


if __name__ == "__main__":
    harness.main()
