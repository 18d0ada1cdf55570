#!/usr/bin/env python3
# bench_loyalty.py -- the loyalty figures (not a ctest; run by hand):
#  1. points credited per second at confirm: N confirms by 50 members are
#     made while dre-loyalty is stopped, then it is started and the time
#     until every balance is exact is the drain of the backlog;
#  2. contact lookup latency: GET /api/v3/contacts/id?email= on one
#     keep-alive connection, p50 / p99 / max over LOOKUPS calls.
# usage: DRE_BIN_DIR=build/test/bin python3 tests/integration/bench_loyalty.py [N] [LOOKUPS]
import base64
import http.client
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import streams  # noqa: E402
from harness import D, basket, item, promotion, uniq  # noqa: E402
from test_loyalty_crash import PointsStream  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
LOOKUPS = int(sys.argv[2]) if len(sys.argv) > 2 else 10000


def main():
    s = harness.Stack()
    try:
        gid = s.create_pos_group()["id"]
        art = uniq("ART")
        s.create_promotion(promotion("Points", [{"type": "CUSTOMER_REQUIRED"}],
                                     [{"type": "CURRENCY_TO_POINTS", "pointsPerUnit": 1}],
                                     pos_groups=[gid], ptype="LOYALTY"))
        probe = basket(gid, [item("L1", art, 1, "10.00")], customer={"customerId": "x"})
        harness.wait_until(lambda: s.simulate(probe).body["totals"]["savingsSummary"]
                           ["loyaltyPointsEarned"] == 10, 10, what="promotion")
        members, emails = [], []
        for k in range(50):
            e = "%s-%d@bench.example.com" % (art.lower(), k)
            members.append(s.post("/api/v3/contacts", {"email": e}).body["id"])
            emails.append(e)
        s.stop_service("loyalty")
        st = PointsStream(s, gid, art, members, "B-" + art, N, N / 400.0, 8)
        st.run(lambda _: None)
        assert not st.errors, st.errors[:3]
        want = {m: 0 for m in members}
        for _, cid, pts in st.confirmed.values():
            want[cid] += pts
        t0 = time.monotonic()
        s.start_service("loyalty")

        def done():
            for m in members:
                r = s.get("/api/v3/contactoverview?contactId=" + m)
                if r.status != 200 or r.body["loyalty"]["pointsBalance"] != want[m]:
                    return False
            return True
        harness.wait_until(done, 300, interval=0.2, what="balances")
        secs = time.monotonic() - t0
        print("confirm -> points: %d confirms credited in %.2f s after the start "
              "(incl. start-up) = %.0f credits/s, %d points" % (
                  N, secs, N / secs, sum(want.values())))

        conn = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=30)
        auth = {"Authorization": "Basic " + base64.b64encode(b"admin:admin").decode()}
        lat = []
        for i in range(LOOKUPS):
            t = time.perf_counter()
            conn.request("GET", "/api/v3/contacts/id?email=" + emails[i % 50], headers=auth)
            r = conn.getresponse()
            r.read()
            lat.append(time.perf_counter() - t)
            assert r.status == 200
        lat.sort()
        pct = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
        print("contact lookup (GET /api/v3/contacts/id?email=, keep-alive, 1 client): "
              "%d calls, p50 %.2f ms, p99 %.2f ms, max %.2f ms" % (
                  LOOKUPS, pct(0.5), pct(0.99), lat[-1] * 1000))
    finally:
        s.stop()
        s.cleanup()


if __name__ == "__main__":
    main()
