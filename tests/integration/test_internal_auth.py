#!/usr/bin/env python3
# test_internal_auth.py -- no way around the gateway (issue 13, point 8).
# Every internal method of every process (as each one lists them in its
# "rpc: listening on ..." log line, so a new method is covered without
# touching this file) is called directly on its nng socket, as the gateway
# would call it for the Admin of the default tenant, without a proof, with a
# proof made with another key, with an expired and a future timestamp and as
# a replay: each answer is 401 and nothing changed (the tenant's documents,
# the broker still up). The same calls with the stack's key work, so the
# refusals are the proofs' doing. The defaults bind every socket to
# loopback.
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, new_id, pct_action, promotion, uniq  # noqa: E402

RPC_SERVICES = [n for n in harness.SERVICES if n != "gateway"]
LISTEN_RE = re.compile(r"rpc: listening on (\S+), (\d+) methods:(.*)")
# What a read-only method answers when called properly (the positive control).
READS = re.compile(r"(\.list|\.get|Heartbeat|broker\.Status|\.lookup)$")
# The state the calls would change if one of them were served.
SNAPSHOT_PATHS = ("/api/v1/Promotions", "/api/v1/PosGroups", "/api/v1/Budgets",
                  "/api/v1/CouponTypes", "/api/v1/CouponCodes",
                  "/api/v1/WebhookSubscriptions", "/api/v1/TenantSettings",
                  "/api/v1/LoyaltyProgram")


class InternalAuth(harness.TestCase):
    def methods(self):
        """{service: [method, ...]} from each process's last start line."""
        out = {}
        for name in RPC_SERVICES:
            found = LISTEN_RE.findall(self.stack.log_text(name, limit=1 << 24))
            self.assertTrue(found, "dre-%s logged no rpc methods" % name)
            url, n, names = found[-1]
            self.assertEqual(url, self.stack.rpc_url(name))
            out[name] = names.split()
            self.assertEqual(len(out[name]), int(n), names)
        return out

    def snapshot(self):
        s = self.stack
        snap = {}
        for p in SNAPSHOT_PATHS + tuple(self.own):
            r = s.get(p)
            snap[p] = (r.status, r.text)
        st, body = s.broker_call("broker.Status")
        snap["broker"] = (st, body)
        return snap

    def fixtures(self):
        s = self.stack
        self.pg = self.pos_group()
        art = uniq("ART")
        self.promo = promotion("Internal %s" % art, [{"type": "ARTICLE", "values": [art]}],
                               [pct_action(10, articles=[art])], pos_groups=[self.pg["id"]])
        s.create_promotion(self.promo)
        self.budget = s.create_budget("100")
        self.own = ["/api/v1/Promotions/" + self.promo["id"],
                    "/api/v1/Budgets/" + self.budget["id"],
                    "/api/v1/PosGroups/" + self.pg["id"]]

    def call_args(self, method):
        """What the gateway would send for method: the default tenant's
        Admin, the fixtures' ids, a body that creates or changes something."""
        svc = method.split(".")[0]
        ident = {"budget": self.budget["id"], "reporting": self.budget["id"]}.get(
            svc, self.promo["id"])
        params = {"id": ident, "entity": "Promotions", "code": uniq("C"),
                  "counter": "1", "transactionId": uniq("TX")}
        if method.endswith(".create") or method.endswith(".upsert"):
            body = {"id": new_id(), "name": uniq("Forged"), "totalAmount": D("5"),
                    "currency": "EUR", "status": "ACTIVE"}
        elif method.endswith(".update") or method.endswith(".put"):
            body = {"name": uniq("Forged"), "status": "INACTIVE"}
        else:
            body = {"request": {"transactionId": uniq("TX")}}
        return dict(params=params, tenant="default", roles=("Admin",),
                    principal="admin", body=harness.dumps(body))

    def test_every_method_refuses_calls_without_a_valid_proof(self):
        s = self.stack
        self.fixtures()
        methods = self.methods()
        before = self.snapshot()
        now = int(time.time() * 1000)
        modes = {
            "no proof": dict(key=None),
            "another key": dict(key=os.urandom(32)),
            "expired": dict(sent_ms=now - 60 * 1000),
            "from the future": dict(sent_ms=now + 60 * 1000),
        }
        count = 0
        for name, names in methods.items():
            for m in names:
                for mode, kw in modes.items():
                    st, body = s.rpc_call(name, m, **dict(self.call_args(m), **kw))
                    self.assertEqual(st, 401, "%s %s (%s): %d %r" % (name, m, mode, st, body))
                    count += 1
        self.assertEqual(self.snapshot(), before, "an unproven call changed state")
        total = sum(len(v) for v in methods.values())
        print("internal methods: %d on %d sockets, %d unproven calls refused"
              % (total, len(methods), count))
        self.assertGreaterEqual(total, 60)

        # Positive control: the same read calls with the stack's key answer.
        reads = 0
        for name, names in methods.items():
            for m in names:
                if READS.search(m) and not m.endswith(".get"):
                    st, body = s.rpc_call(name, m, **self.call_args(m))
                    self.assertNotIn(st, (401, 404), "%s %s: %d %r" % (name, m, st, body))
                    reads += 1
        self.assertGreaterEqual(reads, len(methods))
        # And the arguments were real: with the key, the delete deletes.
        st, body = s.rpc_call("budget", "budget.Budgets.delete",
                              **self.call_args("budget.Budgets.delete"))
        self.assertIn(st, (200, 204), body)
        self.assertEqual(s.get("/api/v1/Budgets/" + self.budget["id"]).status, 404)

    def test_replay_refused(self):
        s = self.stack
        url = s.rpc_url("catalog")
        env = (harness._pb_field(1, "catalog.Promotions.list") + harness._pb_field(2, "default")
               + harness._pb_field(3, "admin") + harness._pb_field(4, "Admin"))
        msg = harness.rpc_proof(s.internal_key, env) + env
        st, body = harness.nng_call(url, "", raw=msg)
        self.assertEqual(st, 200, body)
        st, body = harness.nng_call(url, "", raw=msg)
        self.assertEqual(st, 401, body)

    def test_sockets_bind_loopback_by_default(self):
        """Every binary's default rpc.listen, as docs/configuration.md lists
        them (generated from each --help; test config_doc keeps it so)."""
        with open(os.path.join(harness.SOURCE_DIR, "docs", "configuration.md")) as f:
            doc = f.read()
        found = {}
        for section in re.split(r"^## ", doc, flags=re.M)[1:]:
            name = section.split("\n", 1)[0].strip()
            m = re.search(r"^\| `rpc\.listen` \| string \| (\S+) \|", section, re.M)
            if m and m.group(1) != "(empty)":
                found[name] = m.group(1).strip("`")
        self.assertEqual(sorted(found), sorted("dre-" + n for n in RPC_SERVICES))
        for name, url in found.items():
            self.assertRegex(url, r"^tcp://127\.0\.0\.1:\d+$", name)

    def test_no_key_no_start(self):
        d = self.stack.data_dir + "-nokey"
        os.makedirs(d, exist_ok=True)
        bad = os.path.join(d, "bad.key")
        with open(bad, "w") as f:
            f.write("not-hex\n")
        cases = (([], "rpc: no internal key: set internal.key_file or DRE_INTERNAL_KEY"),
                 (["-o", "internal.key_file=" + bad], "internal key file %s: not 64 hex "
                  "digits" % bad),
                 (["-o", "internal.key_file=" + bad + "-missing"], "internal key file %s: "
                  "No such file or directory" % (bad + "-missing")),
                 (["-o", "internal.key=abcd"], "internal.key: not 64 hex digits"))
        for extra, msg in cases:
            p = subprocess.run([os.path.join(harness.BIN_DIR, "dre-budget"),
                                "-o", "data_dir=" + d,
                                "-o", "rpc.listen=tcp://127.0.0.1:%d" % harness.free_port(),
                                "-o", "kafka.bootstrap.servers=" + self.stack.bootstrap] + extra,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={k: v for k, v in os.environ.items()
                                    if not k.startswith("DRE_")},
                               timeout=harness.deadline(30))
            self.assertNotEqual(p.returncode, 0, extra)
            self.assertIn(msg, p.stdout.decode(), extra)

if __name__ == "__main__":
    harness.main()
