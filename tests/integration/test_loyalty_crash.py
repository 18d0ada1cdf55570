#!/usr/bin/env python3
# test_loyalty_crash.py -- points credited exactly once under kill -9: a
# stream of confirms by 25 members while dre-loyalty is killed and
# restarted at random, at least 10 times; another while the broker is
# killed and started again, empty, three times. Afterwards every member's balance
# is exactly the sum of the points its sales earned, every side-effects job
# reports its own points, and dre.loyalty.events holds one POINTS_EARNED
# (one eventId) per sale.
#
# DRE_CRASH_CONFIRMS sets the number of confirms (default 2000, 600 under
# sanitizers, which set DRE_SANITIZE).
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import streams  # noqa: E402
from harness import D, basket, item, promotion, uniq  # noqa: E402
from test_broker_restart import own_stack  # noqa: E402
from test_crash import CLIENTS, KILLS, STREAM_SECONDS, killer  # noqa: E402

SANITIZED = bool(os.environ.get("DRE_SANITIZE"))
CONFIRMS = int(os.environ.get("DRE_CRASH_CONFIRMS", 600 if SANITIZED else 2000))
MEMBERS = 25


class PointsStream(streams.PacedStream):
    """Evaluate + confirm of n one-line baskets (price 10.00 + i % 50, so
    10 + i % 50 points) by member i % MEMBERS. confirmed: txn -> (counter,
    member id, points)."""

    def __init__(self, stack, gid, art, members, prefix, n, seconds, clients):
        super().__init__(n, seconds, clients)
        self.s, self.gid, self.art, self.members, self.prefix = stack, gid, art, members, prefix
        self.confirmed = {}

    def one(self, i):
        txn = "%s-%05d" % (self.prefix, i)
        cid = self.members[i % len(self.members)]
        req = basket(self.gid, [item("L1", self.art, 1, D("10.00") + D(i % 50))], txn=txn,
                     customer={"customerId": cid})
        r = self.call(lambda: self.s.evaluate(req))
        points = r.body["totals"]["savingsSummary"]["loyaltyPointsEarned"]
        assert points == 10 + i % 50, r
        counter = r.body["meta"]["header"]["transactionCounter"]
        self.call(lambda: self.s.confirm(txn, counter, []))
        with self.lock:
            self.confirmed[txn] = (counter, cid, points)


def points_setup(test, s):
    """A LOYALTY promotion (1 point per euro) on a fresh article and POS
    group, and MEMBERS contacts; returns (gid, art, member ids)."""
    gid = s.create_pos_group()["id"]
    art = uniq("ART")
    p = promotion("Points %s" % art, [{"type": "CUSTOMER_REQUIRED"}],
                  [{"type": "CURRENCY_TO_POINTS", "pointsPerUnit": 1}],
                  pos_groups=[gid], ptype="LOYALTY")
    s.create_promotion(p)
    probe = basket(gid, [item("L1", art, 1, "10.00")], customer={"customerId": "probe"})
    harness.wait_until(
        lambda: s.simulate(probe).body["totals"]["savingsSummary"]
        ["loyaltyPointsEarned"] == 10, 10, what="points promotion in effect")
    members = []
    for k in range(MEMBERS):
        r = s.post("/api/v3/contacts", {"email": "%s-%d@crash.example.com"
                                        % (art.lower(), k)})
        test.assertStatus(r, 201)
        members.append(r.body["id"])
    return gid, art, members


def check_exact(test, s, st, members):
    """Every balance is the exact sum of its sales' points, every job
    reports its own points, one POINTS_EARNED eventId per sale."""
    test.assertEqual(st.errors, [])
    test.assertEqual(len(st.confirmed), CONFIRMS)
    want = {m: 0 for m in members}
    for _, cid, pts in st.confirmed.values():
        want[cid] += pts

    def balances():
        got = {}
        for m in members:
            r = s.get("/api/v3/contactoverview?contactId=" + m)
            if r.status != 200:
                return False
            got[m] = r.body["loyalty"]["pointsBalance"]
            # never past the sum: more would be a sale credited twice
            test.assertLessEqual(got[m], want[m], m)
        return got == want and got
    harness.wait_until(balances, 90, interval=0.5, what="balances %r" % want)

    bad = []

    def poll(part):
        for txn in part:
            counter, _, pts = st.confirmed[txn]
            try:
                se = s.wait_side_effects(txn, counter, timeout=60)
            except AssertionError as e:
                bad.append((txn, str(e)))
                continue
            if se["loyaltyPointsEarned"] != pts or se["reason"] is not None:
                bad.append((txn, pts, se))
    txns = sorted(st.confirmed)
    threads = [threading.Thread(target=poll, args=(txns[i::4],)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    test.assertEqual(bad[:5], [])

    state = {}

    def all_there():
        ids = {}
        for e in s.events("dre.loyalty.events", wait_s=60):
            v = e["value"]
            tx = (v.get("transactionId") or {}).get("string")
            if v["type"] == "POINTS_EARNED" and tx in st.confirmed:
                ids.setdefault(tx, set()).add(v["eventId"])
        state["ids"] = ids
        return len(ids) == CONFIRMS
    harness.wait_until(all_there, 60, interval=1, what="one POINTS_EARNED per sale")
    test.assertEqual([t for t, x in state["ids"].items() if len(x) != 1], [])


class LoyaltyCrash(harness.TestCase):
    def test_points_exactly_once_while_loyalty_is_killed(self):
        s = self.stack
        gid, art, members = points_setup(self, s)
        plan, log, run = killer(s, ("loyalty",), STREAM_SECONDS)
        st = PointsStream(s, gid, art, members, "LC-" + art, CONFIRMS, STREAM_SECONDS,
                          CLIENTS)
        t = time.monotonic()
        st.run(run)
        sys.stderr.write("loyalty: %d confirms in %.1f s, %d retries, kills: %s\n" % (
            len(st.confirmed), time.monotonic() - t, st.retries, log))
        self.assertGreaterEqual(len(log), KILLS)
        check_exact(self, s, st, members)


class LoyaltyBrokerRestart(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        pass

    def test_points_exactly_once_across_broker_restarts(self):
        """The broker is killed -9 and started again, empty, three times
        during the stream: the evaluator's outbox publishes the lost
        confirms again, loyalty's applier recovers its positions and its
        de-duplication keys drop what it had applied."""
        s = own_stack(self)
        gid, art, members = points_setup(self, s)
        log = []

        def restarts(stream):
            for f in (0.25, 0.5, 0.75):
                stream.at(f * STREAM_SECONDS)
                s.kill9("broker")
                log.append((stream.since_start(), len(stream.confirmed)))
                s.start_service("broker")
        st = PointsStream(s, gid, art, members, "LB-" + art, CONFIRMS, STREAM_SECONDS,
                          CLIENTS)
        st.run(restarts)
        sys.stderr.write("loyalty: broker restarts %s\n" % log)
        self.assertEqual(len(log), 3)
        check_exact(self, s, st, members)


if __name__ == "__main__":
    harness.main()
