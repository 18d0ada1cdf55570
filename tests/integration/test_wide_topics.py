#!/usr/bin/env python3
# test_wide_topics.py -- a cluster whose topics have more partitions than
# DRE declares (common/src/topics.c): an operator created them wider, or grew
# them. The dev broker makes every topic 8 partitions wide
# (broker.partitions=8). Producers spread keys over all of them, so every
# consumer must read every partition the cluster has: promotions whose key
# lands beyond the declared 3 partitions are applied (also from the catalog's
# snapshot after the evaluator lost its copy), sales whose key lands beyond
# the declared 6 complete their side effects, and a budget's status on a
# wide partition is followed.
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, basket, item, new_id, pct_action, promotion, uniq  # noqa: E402

WIDTH = 8
TENANT = "default"


def murmur2(data):
    """Kafka's murmur2 (the Java client's, librdkafka's murmur2_random)."""
    m, length = 0x5BD1E995, len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    rest = length % 4
    tail = data[length - rest:]
    if rest == 3:
        h ^= tail[2] << 16
    if rest >= 2:
        h ^= tail[1] << 8
    if rest >= 1:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def partition_of(key, n=WIDTH):
    return (murmur2(key.encode()) & 0x7FFFFFFF) % n


def landing_beyond(declared, make, count):
    """count values from make() whose key tenant/value lands on a partition
    at or past declared (one each on distinct partitions while possible)."""
    out, used = [], set()
    while len(out) < count:
        v = make()
        p = partition_of("%s/%s" % (TENANT, v))
        if p >= declared and (p not in used or len(used) == WIDTH - declared):
            out.append(v)
            used.add(p)
    return out


class WideTopics(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = harness.shared_stack(
            opts={"broker": ["broker.partitions=%d" % WIDTH]})

    def partitions(self, topic, keys):
        """{key: partition} of topic's events with those keys (dre-events)."""
        want = set("%s/%s" % (TENANT, k) for k in keys)
        out = {}

        def seen():
            for e in self.stack.events(topic, wait_s=5):
                if e["key"] in want:
                    out[e["key"]] = e["partition"]
            return len(out) == len(want)
        harness.wait_until(seen, 30, what="events of %s" % topic)
        return out

    def test_promotions_sales_and_budgets_beyond_the_declared_partitions(self):
        s = self.stack
        gid = self.pos_group()["id"]
        # Four promotions keyed onto partitions 3-7 of dre.master.promotions
        # (declared: 3), each 10 % off its own article.
        ids = landing_beyond(3, new_id, 4)
        arts = [uniq("ART") for _ in ids]
        promos = [promotion("Wide %d" % i, [{"type": "ARTICLE", "values": [a]}],
                            [pct_action(10, articles=[a])], pos_groups=[gid], pid=pid)
                  for i, (pid, a) in enumerate(zip(ids, arts))]
        for p in promos:
            s.create_promotion(p)
        req = basket(gid, [item("L%d" % i, a, 1, "10.00") for i, a in enumerate(arts)])
        # Read-your-writes: the next evaluate sees every one of them.
        b = self.assertEval(s.simulate(req), simulation=True)
        for p in promos:
            self.assertEqual(s.applied(b, p["id"]), [("L%d" % promos.index(p), D("1.00"))])
        got = self.partitions("dre.master.promotions", ids)
        self.assertTrue(all(v >= 3 for v in got.values()), got)

        # Sales keyed onto partitions 6-7 of dre.transactions.confirmed
        # (declared: 6) complete every side effect.
        txns = landing_beyond(6, lambda: uniq("TX"), 3)
        for t in txns:
            b = self.assertEval(s.evaluate(dict(req, header={"transactionId": t})))
            self.assertEqual(b["totals"]["discount"]["value"], D("4.00"))
            aps = [{"promotionId": p["id"], "couponCode": None,
                    "discountAmount": {"value": D("1.00"), "currency": "EUR"}}
                   for p in promos]
            self.assertOk(s.confirm(t, 1, aps, user="pos-reader"))
        for t in txns:
            self.assertJson({"transactionId": t, "status": "COMPLETED"},
                            s.wait_side_effects(t, 1, timeout=20), subset=True)
        got = self.partitions("dre.transactions.confirmed", txns)
        self.assertTrue(all(v >= 6 for v in got.values()), got)

        # A budget whose status is keyed onto partitions 3-7 of
        # dre.budgets.status (declared: 3): the evaluator follows its
        # exhaustion.
        while True:
            bud = s.create_budget("5.00")
            if partition_of("%s/%s" % (TENANT, bud["id"])) >= 3:
                break
        bart = uniq("ART")
        bp = promotion("Wide budgeted", [{"type": "ARTICLE", "values": [bart]}],
                       [pct_action(10, articles=[bart])], pos_groups=[gid],
                       budgetIds=[bud["id"]])
        s.create_promotion(bp)
        breq = basket(gid, [item("L1", bart, 2, "50.00")])
        t = uniq("TX")
        b = self.assertEval(s.evaluate(dict(breq, header={"transactionId": t})))
        self.assertEqual(s.applied(b, bp["id"]), [("L1", D("10.00"))])
        self.assertOk(s.confirm(t, 1, [{"promotionId": bp["id"]}], user="pos-reader"))
        s.wait_side_effects(t, 1, timeout=20)

        def limited():
            r = s.simulate(breq)
            return r.status == 200 and r.body["budgetLimitedPromotions"] != [] and r.body
        b = harness.wait_until(limited, 10, what="the budget's exhaustion in the evaluator")
        self.assertEqual(b["budgetLimitedPromotions"],
                         [{"promotionId": bp["id"], "promotionName": bp["name"],
                           "reason": "budget %s is exhausted" % bud["id"]}])
        got = self.partitions("dre.budgets.status", [bud["id"]])
        self.assertTrue(all(v >= 3 for v in got.values()), got)

        # The evaluator's copy lost: the catalog's snapshot (with the
        # offsets of all 8 partitions) brings every promotion back, and one
        # created afterwards on a wide partition is followed from the feed.
        s.stop_service("evaluator")
        shutil.rmtree(os.path.join(s.data_dir, "evaluator-0"))
        s.start_service("evaluator")
        s.wait_healthy()
        b = s.wait_for_promotion(promos[-1]["id"], req, timeout=15)
        for p in promos:
            self.assertTrue(s.applied(b, p["id"]), p["id"])
        late_id = landing_beyond(3, new_id, 1)[0]
        late_art = uniq("ART")
        late = promotion("Wide late", [{"type": "ARTICLE", "values": [late_art]}],
                         [pct_action(20, articles=[late_art])], pos_groups=[gid],
                         pid=late_id)
        s.create_promotion(late)
        b = self.assertEval(s.simulate(basket(gid, [item("L1", late_art, 1, "10.00")])),
                            simulation=True)
        self.assertEqual(s.applied(b, late_id), [("L1", D("2.00"))])


if __name__ == "__main__":
    harness.main()
