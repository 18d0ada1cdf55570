#!/usr/bin/env python3
# test_outage.py -- local-store mode: with the broker down (dre-broker's
# broker.Down) for 10 s, every confirm still answers 200 (queued), the
# outbox grows and /pos/heartbeat shows it; after broker.Up everything
# drains and every confirmed sale reaches every consumer exactly once.
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, basket, item, pct_action, promotion, uniq  # noqa: E402

OUTAGE_SECONDS = 10.0
RATE = 15  # confirms per second during the outage
QUEUED = ("Transaction confirmed and stored; the event backbone is not reachable, "
          "so the transaction is queued and will be delivered when it returns")


class Outage(harness.TestCase):
    def test_confirms_survive_a_broker_outage(self):
        s = self.stack
        gid = self.pos_group()["id"]
        art = uniq("ART")
        budget = s.create_budget("100000.00")
        p = promotion("Outage", [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(10, articles=[art])], pos_groups=[gid],
                      budgetIds=[budget["id"]])
        s.create_promotion(p)
        req = basket(gid, [item("L1", art, 1, "10.00")])
        s.wait_for_promotion(p["id"], req)

        def sale(i):
            txn = uniq("OUT")
            price = D("10.00") + D(i % 7)
            r = s.evaluate(dict(req, items=[item("L1", art, 1, price)],
                                header={"transactionId": txn}))
            self.assertEqual(r.status, 200, r)
            r = s.confirm(txn, 1, [{"promotionId": p["id"]}])
            self.assertEqual(r.status, 200, r)
            return txn, price / 10, r.body["message"]

        before = sale(0)
        s.wait_side_effects(before[0], 1)
        self.assertEqual(before[2], "Transaction confirmed")

        s.broker_down()
        down_at = time.monotonic()
        sales, seen_down = [], None
        i = 1
        while time.monotonic() - down_at < OUTAGE_SECONDS:
            due = down_at + (i - 1) / RATE
            if due > time.monotonic():
                time.sleep(due - time.monotonic())  # pacing
            sales.append(sale(i))
            i += 1
            if seen_down is None:
                hb = s.get("/pos/heartbeat").body
                if hb["btpConnectivity"] in ("CIRCUIT_OPEN", "DISCONNECTED") \
                        and hb["pendingTransactions"] > 0:
                    seen_down = hb
        hb = s.get("/pos/heartbeat").body
        s.broker_up()
        up_at = time.monotonic()
        sys.stderr.write("%d confirms during %.1f s outage; heartbeat then: %s\n"
                         % (len(sales), up_at - down_at, hb))
        self.assertIsNotNone(seen_down, "the heartbeat never showed the outage")
        self.assertEqual(hb["btpConnectivity"], "CIRCUIT_OPEN")
        self.assertEqual(hb["status"], "DEGRADED")
        self.assertGreaterEqual(hb["pendingTransactions"], len(sales))
        # every confirm answered 200; once the circuit is open they say so
        self.assertTrue(all(m in ("Transaction confirmed", QUEUED) for _, _, m in sales))
        self.assertEqual(sales[-1][2], QUEUED)
        self.assertGreaterEqual(len(sales), int(OUTAGE_SECONDS * RATE) - 5)
        # nothing reached the consumers while the broker was away
        pending = self.assertOk(s.side_effects(sales[-1][0], 1))
        self.assertEqual(pending["status"], "PENDING")
        # a repeat during the outage gets the first answer
        self.assertEqual(s.confirm(sales[-1][0], 1, [{"promotionId": p["id"]}]).body["message"],
                         QUEUED)

        # The outbox drains.
        def drained():
            b = s.get("/pos/heartbeat").body
            return b["pendingTransactions"] == 0 and b["btpConnectivity"] == "CONNECTED" and b
        harness.wait_until(drained, 60, what="the outbox to drain")
        sys.stderr.write("outbox drained %.1f s after broker.Up\n" % (time.monotonic() - up_at))

        # Every sale reached every consumer exactly once.
        for txn, amount, _ in sales:
            se = s.wait_side_effects(txn, 1, timeout=60)
            self.assertEqual(se["budgetsConsumed"], [{"budgetId": budget["id"],
                                                      "amount": harness.money(amount)}])
        want = sum((a for _, a, _ in sales), D("0")) + before[1]
        b = s.budget(budget["id"])
        self.assertEqual((b["consumedAmount"], b["transactionsCount"]), (want, len(sales) + 1))
        r = self.assertOk(s.get("/reporting/PromotionPerformance(%s)" % p["id"]))
        self.assertEqual((r["applicationsCount"], r["totalDiscountGiven"]),
                         (len(sales) + 1, want))
        ids = {}
        for e in s.events("dre.transactions.confirmed"):
            ids.setdefault(e["value"]["transactionId"], set()).add(e["value"]["eventId"])
        for txn, _, _ in sales:
            self.assertEqual(len(ids.get(txn, ())), 1, txn)
        harness.wait_until(lambda: s.get("/pos/heartbeat").body["status"] == "UP", 30,
                           what="heartbeat UP")


if __name__ == "__main__":
    harness.main()
