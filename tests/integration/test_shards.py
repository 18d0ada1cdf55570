#!/usr/bin/env python3
# test_shards.py -- two evaluator shards behind one gateway (the harness's
# Stack(shards=2), what `DRE_SHARDS=2 tools/dre run` starts): a transaction
# goes to the shard the gateway picks from tenant and transaction id
# (services/gateway/routes.c gw_client_of) for its whole life -- evaluate,
# simulate, confirm and the side-effects poll -- and transactions spread over
# both; the heartbeat and /readyz name each shard.
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, uniq  # noqa: E402

SHARDS = 2


def shard_of(tenant, txid, n=SHARDS):
    """gw_client_of's choice: FNV-1a 32 over tenant, its NUL, then txid."""
    h = 2166136261
    for c in tenant.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    h = (h * 16777619) & 0xFFFFFFFF  # the separator (a NUL)
    for c in txid.encode():
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h % n


CALLS = re.compile(r'^dre_rpc_server_calls_total\{([^}]*)\} (\d+)', re.M)


class Shards(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = harness.shared_stack(shards=SHARDS)

    def calls(self):
        """{(shard, method): calls} of the evaluator shards, from the
        gateway's /metrics (each shard's series labelled shard="k")."""
        r = self.stack.get("/metrics")
        self.assertStatus(r, 200)
        out = {}
        for labels, v in CALLS.findall(r.text):
            lab = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            if lab.get("method", "").startswith("evaluator.") and "shard" in lab:
                out[(int(lab["shard"]), lab["method"])] = int(v)
        return out

    def test_heartbeat_and_readyz_name_both_shards(self):
        b = self.assertOk(self.stack.get("/pos/heartbeat"))
        self.assertEqual(b["status"], "UP")
        st = b["services"]
        self.assertEqual(st.get("evaluator-0"), "UP", st)
        self.assertEqual(st.get("evaluator-1"), "UP", st)
        self.assertNotIn("evaluator", st)
        b = self.assertOk(self.stack.get("/readyz"))
        self.assertEqual(b["status"], "UP")
        self.assertEqual(b["services"].get("evaluator-0"), "UP", b)
        self.assertEqual(b["services"].get("evaluator-1"), "UP", b)

    def test_transactions_spread_and_complete_on_their_shard(self):
        s = self.stack
        self.ten_percent_off(2, "89.99")
        # Three transactions for each shard, by the gateway's own rule.
        txns = {0: [], 1: []}
        while min(len(v) for v in txns.values()) < 3:
            t = uniq("TX")
            k = shard_of("default", t)
            if len(txns[k]) < 3:
                txns[k].append(t)
        before = self.calls()
        for k, ts in txns.items():
            for t in ts:
                req = dict(self.req, header={"transactionId": t})
                b = self.assertEval(s.simulate(req), simulation=True)
                self.assertEqual(b["totals"]["discount"]["value"], D("18.00"))
                b = self.assertEval(s.evaluate(req))
                self.assertEqual(b["totals"]["discount"]["value"], D("18.00"))
                self.assertEqual(b["meta"]["header"]["transactionCounter"], 1)
                ap = {"promotionId": self.p["id"], "couponCode": None,
                      "discountAmount": {"value": D("18.00"), "currency": "EUR"}}
                r = s.confirm(t, 1, [ap], user="pos-reader")
                self.assertJson({"transactionId": t, "confirmed": True},
                                self.assertOk(r), subset=True)
        for ts in txns.values():
            for t in ts:
                b = s.wait_side_effects(t, 1)
                self.assertJson({"transactionId": t, "transactionCounter": 1,
                                 "status": "COMPLETED", "attempts": 1},
                                b, subset=True)
        after = self.calls()
        for k in (0, 1):
            for m in ("evaluator.Evaluate", "evaluator.Simulate",
                      "evaluator.Confirm"):
                got = after.get((k, m), 0) - before.get((k, m), 0)
                self.assertEqual(got, 3, "shard %d %s: %d calls" % (k, m, got))
            # Each shard answers the polls of its own transactions.
            self.assertGreaterEqual(
                after.get((k, "evaluator.SideEffects"), 0)
                - before.get((k, "evaluator.SideEffects"), 0), 3)
        # Only the shard that confirmed knows the transaction: a second
        # confirm there is the idempotent repeat, not a 404 from the other.
        t = txns[1][0]
        ap = {"promotionId": self.p["id"], "couponCode": None,
              "discountAmount": {"value": D("18.00"), "currency": "EUR"}}
        self.assertJson({"transactionId": t, "confirmed": True},
                        self.assertOk(s.confirm(t, 1, [ap], user="pos-reader")),
                        subset=True)


if __name__ == "__main__":
    harness.main()
