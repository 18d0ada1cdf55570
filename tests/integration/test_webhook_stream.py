#!/usr/bin/env python3
"""dre-webhook under a stream (issue 12): kill -9 of dre-webhook during a
stream of 2,000 confirms without a lost delivery, and the figures
(confirm -> delivery latency of a paced stream, deliveries per second
draining a backlog). LABELS fault: the plain build runs it at full size."""
import json
import os
import time

import harness
from harness import basket, item, uniq, wait_until
from streams import PacedStream
from test_webhook import WebhookBase

SANITIZED = bool(os.environ.get("DRE_SANITIZE"))
STREAM_N = int(os.environ.get("DRE_WEBHOOK_STREAM", 600 if SANITIZED else 2000))


class WebhookStreamTest(WebhookBase):
    # -- kill -9 during a stream ---------------------------------------------------
    def test_zz_kill9_during_a_stream_loses_nothing(self):
        sub = self.subscribe("/stream", ["TRANSACTION_CONFIRMED"])
        prefix = uniq("WH-K9")
        case = self
        confirmed_at = {}

        class Stream(PacedStream):
            def one(self, i):
                txn = "%s-%05d" % (prefix, i)
                req = basket(case.pg, [item("L1", "ART-K9", 1, "10.00")],
                             header={"transactionId": txn})
                r = self.call(lambda: case.s.evaluate(req))
                c = r.body["meta"]["header"]["transactionCounter"]
                self.call(lambda: case.s.confirm(txn, c))
                with self.lock:
                    confirmed_at[txn] = time.monotonic()

        seconds = STREAM_N / (20 if SANITIZED else 60)
        st = Stream(STREAM_N, seconds)

        def during(stream):
            stream.at(seconds / 3)
            self.s.kill9("webhook")
            stream.at(seconds / 3 + 1.5)
            self.s.start_service("webhook")
        st.run(during)
        self.assertEqual([], st.errors)

        def firsts():
            f = {}
            n = 0
            for _, _, b, at in self.rx.at("/stream"):
                x = json.loads(b)["data"].get("transactionId", "")
                if x.startswith(prefix):
                    n += 1
                    f.setdefault(x, at)
            return (f, n) if len(f) == STREAM_N else None
        f, n = wait_until(firsts, harness.deadline(120), interval=0.5,
                          what="every transaction delivered")
        lat = sorted(f[t] - confirmed_at[t] for t in f)
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
        print("kill -9 stream: %d confirms, %d deliveries, %d duplicates, "
              "latency p50 %.3f s p99 %.3f s (includes the kill)"
              % (STREAM_N, n, n - STREAM_N, p(0.5), p(0.99)))
        self.s.request("DELETE", "/api/v1/WebhookSubscriptions/" + sub["id"])

    def _stream(self, prefix, n, seconds):
        """n paced evaluate + confirm; returns {txn: time of the confirm's answer}."""
        case, confirmed_at = self, {}

        class Stream(PacedStream):
            def one(self, i):
                txn = "%s-%05d" % (prefix, i)
                req = basket(case.pg, [item("L1", "ART-TP", 1, "10.00")],
                             header={"transactionId": txn})
                r = self.call(lambda: case.s.evaluate(req))
                c = r.body["meta"]["header"]["transactionCounter"]
                self.call(lambda: case.s.confirm(txn, c))
                with self.lock:
                    confirmed_at[txn] = time.monotonic()

        st = Stream(n, seconds, clients=8)
        st.run(lambda s: None)
        self.assertEqual([], st.errors)
        return confirmed_at

    def _firsts(self, path, prefix, n, timeout):
        def firsts():
            f = {}
            for _, _, b, at in self.rx.at(path):
                x = json.loads(b)["data"].get("transactionId", "")
                if x.startswith(prefix):
                    f.setdefault(x, at)
            return f if len(f) == n else None
        return wait_until(firsts, harness.deadline(timeout), interval=0.2,
                          what="every delivery")

    def test_zz_throughput(self):
        """Figures: confirm -> delivery latency of a paced stream to a fast
        local receiver, and deliveries per second draining a backlog (the
        service stopped during 1,000 confirms, then started)."""
        sub = self.subscribe("/fast", ["TRANSACTION_CONFIRMED"])
        n = 100 if SANITIZED else 500
        prefix = uniq("WH-LAT")
        confirmed_at = self._stream(prefix, n, n / 50)
        f = self._firsts("/fast", prefix, n, 60)
        lat = sorted(f[t] - confirmed_at[t] for t in f)
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
        print("latency: %d confirms at 50/s, confirm->delivery p50 %.3f s "
              "p99 %.3f s" % (n, p(0.5), p(0.99)))

        n = 200 if SANITIZED else 1000
        prefix = uniq("WH-TP")
        self.s.stop_service("webhook")
        self._stream(prefix, n, 1)
        t0 = time.monotonic()
        self.s.start_service("webhook")
        f = self._firsts("/fast", prefix, n, 120)
        t1 = max(f.values())
        print("throughput: a backlog of %d confirms delivered %.2f s after "
              "dre-webhook started: %.0f deliveries/s (start-up included)"
              % (n, t1 - t0, n / (t1 - t0)))
        self.s.request("DELETE", "/api/v1/WebhookSubscriptions/" + sub["id"])


if __name__ == "__main__":
    harness.main()
