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
from harness import D, basket, item, pct_action, promotion, uniq  # noqa: E402

SANITIZED = bool(os.environ.get("DRE_SANITIZE"))
CONFIRMS = int(os.environ.get("DRE_CRASH_CONFIRMS", 600 if SANITIZED else 2000))
KILLS = 10              # per victim
STREAM_SECONDS = 20.0   # the confirms are paced over this long
CLIENTS = 8


class Stream:
    """Paced evaluate + confirm of CONFIRMS transactions from CLIENTS threads,
    retrying through outages (a repeated confirm is idempotent)."""

    def __init__(self, stack, p, req, n, seconds):
        self.s, self.p, self.req, self.n = stack, p, req, n
        self.rate = n / seconds
        self.next = 0
        self.lock = threading.Lock()
        self.confirmed = {}     # txn -> (counter, amount)
        self.errors = []
        self.retries = 0
        self.t0 = None

    def call(self, fn):
        """fn() until it answers 200 (503 and dropped connections are an
        evaluator being restarted)."""
        deadline = time.monotonic() + harness.deadline(60)
        while True:
            try:
                r = fn()
                if r.status == 200:
                    return r
                if r.status != 503:
                    raise AssertionError("unexpected answer %r" % r)
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("no answer for 60 s")
            with self.lock:
                self.retries += 1
            time.sleep(0.02)  # retry back-off, not a synchronisation

    def one(self, i):
        txn = "CR-%s-%05d" % (self.tag, i)
        price = D("10.00") + D(i % 50)
        req = dict(self.req, items=[item("L1", self.art, 1, price)],
                   header={"transactionId": txn})
        r = self.call(lambda: self.s.evaluate(req))
        granted = r.body["totals"]["discount"]["value"]
        assert granted == price / 10, r
        counter = r.body["meta"]["header"]["transactionCounter"]
        amount = granted - D("0.01") * (i % 4)
        self.call(lambda: self.s.confirm(txn, counter, [{
            "promotionId": self.p["id"],
            "discountAmount": {"value": amount, "currency": "EUR"}}]))
        with self.lock:
            self.confirmed[txn] = (counter, amount)

    def worker(self):
        while True:
            with self.lock:
                i = self.next
                if i >= self.n:
                    return
                self.next += 1
            due = self.t0 + i / self.rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # pacing the stream
            try:
                self.one(i)
            except Exception as e:  # noqa: BLE001 -- reported below
                with self.lock:
                    self.errors.append("%d: %r" % (i, e))

    def run(self, art, tag, during):
        self.art, self.tag = art, tag
        self.t0 = time.monotonic()
        threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        during(self)
        for t in threads:
            t.join()


def killer(stack, victims, seconds):
    """kill -9 each victim KILLS times at random instants over the stream,
    restarting it at once; returns the kill log."""
    plan = sorted((random.uniform(0.3, seconds - 0.5), v)
                  for v in victims for _ in range(KILLS))
    log = []

    def run(stream):
        for at, v in plan:
            wait = stream.t0 + at - time.monotonic()
            if wait > 0:
                time.sleep(wait)  # the kill schedule
            stack.kill9(v)
            log.append((round(time.monotonic() - stream.t0, 2), v, len(stream.confirmed)))
            stack.start_service(v)
    return plan, log, run


class Crash(harness.TestCase):
    def prepare(self, total="1000000.00"):
        s = self.stack
        gid = self.pos_group()["id"]
        art = uniq("ART")
        budget = s.create_budget(total, thresholds=[1])
        p = promotion("Crash %s" % art, [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(10, articles=[art])], pos_groups=[gid],
                      budgetIds=[budget["id"]])
        s.create_promotion(p)
        req = basket(gid, [item("L1", art, 1, "10.00")])
        s.wait_for_promotion(p["id"], req)
        return budget, p, req, art

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
        st = Stream(self.stack, p, req, CONFIRMS, STREAM_SECONDS)
        t = time.monotonic()
        st.run(art, tag, run)
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
