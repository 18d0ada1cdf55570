#!/usr/bin/env python3
# test_crash.py -- exactly-once effect under kill -9: a stream of confirms
# while (1) the budget and reporting services, (2) the evaluator with its
# outbox relay are killed and restarted at random, at least 10 times each.
# Afterwards the consumed budget and the report equal the exact sums of the
# confirmed discounts, every transaction was applied exactly once and every
# side-effects job is COMPLETED.
#
# DRE_CRASH_CONFIRMS sets the number of confirms per stream (default 2000,
# 600 under sanitizers, which set DRE_SANITIZE: ASan is ~3x slower).
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import streams  # noqa: E402
from harness import D  # noqa: E402

SANITIZED = bool(os.environ.get("DRE_SANITIZE"))
CONFIRMS = int(os.environ.get("DRE_CRASH_CONFIRMS", 600 if SANITIZED else 2000))
KILLS = 10              # per victim
STREAM_SECONDS = 20.0   # the confirms are paced over this long
CLIENTS = 8


def killer(stack, victims, seconds):
    """kill -9 each victim KILLS times at random instants over the stream,
    restarting it at once; returns the kill log."""
    plan = sorted((random.uniform(0.3, seconds - 0.5), v)
                  for v in victims for _ in range(KILLS))
    log = []

    def run(stream):
        for at, v in plan:
            stream.at(at)
            stack.kill9(v)
            log.append((stream.since_start(), v, len(stream.confirmed)))
            stack.start_service(v)
    return plan, log, run


class Crash(harness.TestCase):
    def prepare(self):
        return streams.markdown_with_budget(self.stack, "Crash", self.pos_group()["id"])

    def check(self, stream, budget, p):
        s = self.stack
        self.assertEqual(stream.errors, [])
        self.assertEqual(len(stream.confirmed), CONFIRMS)
        want = sum((a for _, a in stream.confirmed.values()), D("0"))

        # The budget: exactly the sum, exactly one consumption per sale. A
        # figure past it would be something applied twice.
        def budget_done():
            r = s.get("/api/v1/Budgets/" + budget["id"])
            if r.status == 503:  # the budget service is back only just now
                return False
            b = self.assertOk(r)
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

        # Every job COMPLETED, with its own consumption.
        txns = sorted(stream.confirmed)
        bad = []

        def poll(part):
            for t in part:
                counter, amount = stream.confirmed[t]
                se = s.wait_side_effects(t, counter, timeout=60)
                if se["budgetsConsumed"] != [{"budgetId": budget["id"],
                                              "amount": harness.money(amount)}]:
                    bad.append((t, se))
        parts = [txns[i::4] for i in range(4)]
        threads = [threading.Thread(target=poll, args=(x,)) for x in parts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(bad, [])

        # On Kafka: one event (one eventId) per transaction; a re-published
        # copy carries the same id.
        ids = {}
        for e in s.events("dre.transactions.confirmed", wait_s=60):
            v = e["value"]
            if v["transactionId"] in stream.confirmed:
                ids.setdefault(v["transactionId"], set()).add(v["eventId"])
        self.assertEqual(len(ids), CONFIRMS)
        self.assertEqual([t for t, x in ids.items() if len(x) != 1], [])
        self.assertEqual(s.get("/pos/heartbeat").body["status"], "UP")

    def stream_with_kills(self, victims, tag):
        budget, p, req, art = self.prepare()
        plan, log, run = killer(self.stack, victims, STREAM_SECONDS)
        st = streams.ConfirmStream(self.stack, p, req, art, "CR-" + tag, CONFIRMS,
                                   STREAM_SECONDS, CLIENTS)
        t = time.monotonic()
        st.run(run)
        sys.stderr.write("%s: %d confirms in %.1f s, %d retries, kills (s, victim, "
                         "confirmed so far): %s\n" % (tag, len(st.confirmed),
                                                      time.monotonic() - t, st.retries, log))
        for v in victims:
            self.assertGreaterEqual(sum(1 for _, x, _ in log if x == v), KILLS)
        self.check(st, budget, p)

    def test_1_consumers_killed(self):
        self.stream_with_kills(("budget", "reporting"), "consumers")

    def test_2_evaluator_relay_killed(self):
        self.stream_with_kills(("evaluator",), "evaluator")


if __name__ == "__main__":
    harness.main()
