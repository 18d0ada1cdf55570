# streams.py -- paced streams of sales from several client threads, as the
# fault tests (crash, broker_restart, coupon_confirm) run them while they
# kill processes: each request is retried through 503s and dropped
# connections until it answers 200 (a repeated confirm is idempotent).
import threading
import time

import harness
from harness import D, basket, item, pct_action, promotion, uniq


class PacedStream:
    """Calls one(i) for i in 0..n-1, the i-th not before t0 + i / rate, from
    `clients` threads. Failures are collected in errors, retries counted."""

    def __init__(self, n, seconds, clients=8):
        self.n, self.rate, self.clients = n, n / seconds, clients
        self.next = 0
        self.lock = threading.Lock()
        self.errors = []
        self.retries = 0
        self.t0 = None

    def one(self, i):
        raise NotImplementedError

    def count_retry(self):
        with self.lock:
            self.retries += 1

    def call(self, fn):
        """fn() until it answers 200; 503 and dropped connections (a service
        being restarted) are retried for up to 60 s, anything else fails."""
        end = time.monotonic() + harness.deadline(60)
        while True:
            try:
                r = fn()
                if r.status == 200:
                    return r
                if r.status != 503:
                    raise AssertionError("unexpected answer %r" % r)
            except OSError:
                pass
            if time.monotonic() > end:
                raise AssertionError("no answer for 60 s")
            self.count_retry()
            time.sleep(0.02)  # retry back-off, not a synchronisation

    def at(self, offset):
        """Sleeps until t0 + offset seconds (a fault schedule)."""
        wait = self.t0 + offset - time.monotonic()
        if wait > 0:
            time.sleep(wait)  # the schedule, not a synchronisation

    def since_start(self):
        return round(time.monotonic() - self.t0, 2)

    def _worker(self):
        while True:
            with self.lock:
                i = self.next
                if i >= self.n:
                    return
                self.next += 1
            self.at(i / self.rate)  # pacing the stream
            try:
                self.one(i)
            except Exception as e:  # noqa: BLE001 -- reported in errors
                with self.lock:
                    self.errors.append("%d: %r" % (i, e))

    def run(self, during):
        """Runs the stream; during(self) runs on this thread meanwhile."""
        self.t0 = time.monotonic()
        threads = [threading.Thread(target=self._worker, daemon=True)
                   for _ in range(self.clients)]
        for t in threads:
            t.start()
        during(self)
        for t in threads:
            t.join()


def markdown_with_budget(stack, name, pos_group_id):
    """A 10 % markdown on a new article in pos_group_id, linked to a new
    budget of 1,000,000.00 (threshold 1 %), known to the evaluator; returns
    (budget, promotion, request, article)."""
    art = uniq("ART")
    budget = stack.create_budget("1000000.00", thresholds=[1])
    p = promotion("%s %s" % (name, art), [{"type": "ARTICLE", "values": [art]}],
                  [pct_action(10, articles=[art])], pos_groups=[pos_group_id],
                  budgetIds=[budget["id"]])
    stack.create_promotion(p)
    req = basket(pos_group_id, [item("L1", art, 1, "10.00")])
    stack.wait_for_promotion(p["id"], req)
    return budget, p, req, art


class ConfirmStream(PacedStream):
    """Evaluate + confirm of n one-line baskets of article `art` (price
    10.00 + i % 50) against promotion p, a 10 % markdown; each confirms the
    granted discount less 0.01 × (i % 4). confirmed: txn -> (counter, amount)."""

    def __init__(self, stack, p, req, art, txn_prefix, n, seconds, clients=8):
        super().__init__(n, seconds, clients)
        self.s, self.p, self.req, self.art, self.prefix = stack, p, req, art, txn_prefix
        self.confirmed = {}

    def one(self, i):
        txn = "%s-%05d" % (self.prefix, i)
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
