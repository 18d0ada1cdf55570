#!/usr/bin/env python3
# test_supervise.py -- a crash is a clean restart, not an outage (issue 9):
# tools/stack (what `tools/dre run` execs) restarts a process killed with
# kill -9 after a back-off while the others keep serving; a killed broker
# comes back as a new empty cluster and its clients follow it; SIGTERM stops
# every process. The stack runs on its own HTTP port and nng port base.
import base64
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

NAMES = ("broker", "catalog", "budget", "reporting", "coupon", "evaluator", "gateway")
AUTH = "Basic " + base64.b64encode(b"admin:admin").decode()


def pids_of(data_dir):
    """{service: pid} of the dre processes started for data_dir."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if ("data_dir=" + data_dir).encode() not in argv:
            continue
        name = os.path.basename(argv[0].decode())
        if name.startswith("dre-"):
            with open("/proc/%s/stat" % d) as f:
                if f.read().split(")")[-1].split()[0] == "Z":
                    continue  # exited, not yet reaped
            out[name[4:]] = int(d)
    return out


class Supervise(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        pass  # no harness stack: tools/stack is the system under test

    def call(self, method, path, body=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = None if body is None else json.dumps(body).encode()
            hdrs = {"Authorization": AUTH}
            if data is not None:
                hdrs["Content-Type"] = "application/json"
            c.request(method, path, body=data, headers=hdrs)
            r = c.getresponse()
            raw = r.read()
            harness.record_answer(method, path, r.status,
                                  {k.lower(): v for k, v in r.getheaders()}, raw)
            return r.status, raw
        finally:
            c.close()

    def ok(self, method, path, body=None):
        try:
            return self.call(method, path, body)[0] == 200
        except OSError:
            return False

    def test_killed_processes_come_back(self):
        self.port = harness.free_port()
        data = tempfile.mkdtemp(prefix="dre-it-stack-")
        env = dict(os.environ, DRE_DATA_DIR=data, DRE_HTTP_PORT=str(self.port),
                   DRE_DEMO="0", DRE_RPC_PORT_BASE=str(random.randrange(21000, 29000, 1000)))
        log = open(os.path.join(data, "stack.out"), "wb")
        p = subprocess.Popen([os.path.join(harness.SOURCE_DIR, "tools", "stack"),
                              harness.BIN_DIR], env=env, stdout=log,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        try:
            self.run_checks(p, data)
        except BaseException:
            with open(os.path.join(data, "stack.out"), "rb") as f:
                sys.stderr.write(f.read().decode(errors="replace")[-5000:])
            raise
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            for pid in pids_of(data).values():
                os.kill(pid, signal.SIGKILL)

    def run_checks(self, p, data):
        harness.wait_until(lambda: self.ok("GET", "/pos/heartbeat"), 60,
                           what="the stack to serve")
        before = pids_of(data)
        self.assertEqual(sorted(before), sorted(NAMES))
        body = {"name": "Supervised", "totalAmount": 10, "currency": "EUR"}
        st, raw = self.call("POST", "/api/v1/Budgets", body)
        self.assertEqual(st, 201, raw)
        bid = json.loads(raw)["id"]

        # kill -9 the budget service: it comes back with its data, the
        # others are untouched.
        os.kill(before["budget"], signal.SIGKILL)
        harness.wait_until(lambda: pids_of(data).get("budget") not in (None, before["budget"]),
                           20, what="dre-budget to be restarted")
        harness.wait_until(lambda: self.ok("GET", "/api/v1/Budgets/" + bid), 20,
                           what="the restarted budget service to answer")
        now = pids_of(data)
        self.assertEqual({k: v for k, v in now.items() if k != "budget"},
                         {k: v for k, v in before.items() if k != "budget"})

        # The evaluator too, twice in a row (the second restart waits longer).
        for _ in range(2):
            old = pids_of(data)["evaluator"]
            os.kill(old, signal.SIGKILL)
            harness.wait_until(lambda: pids_of(data).get("evaluator") not in (None, old),
                               20, what="dre-evaluator to be restarted")
        with open(os.path.join(data, "stack.out"), "rb") as f:
            out = f.read().decode(errors="replace")
        self.assertIn("dre-evaluator exited (status 137); restarting in 1s", out)
        self.assertIn("dre-evaluator exited (status 137); restarting in 2s", out)
        req = {"request": {"posGroupId": harness.new_id(), "items": [
            {"lineReference": "L1", "articleNumber": "A", "quantity": 1, "unitPrice": 1}]}}
        harness.wait_until(lambda: self.ok("POST", "/pos/v2/simulate", req), 20,
                           what="evaluate to answer after the evaluator restarts")

        # The dev broker: a new empty cluster, maybe on another port; its
        # clients follow and master data written afterwards reaches the
        # evaluator through the new cluster.
        os.kill(pids_of(data)["broker"], signal.SIGKILL)
        harness.wait_until(lambda: "broker" in pids_of(data), 20,
                           what="dre-broker to be restarted")
        harness.wait_until(lambda: self.ok("GET", "/pos/heartbeat"), 60,
                           what="the stack to serve after the broker restart")
        pg = {"id": harness.new_id(), "code": harness.uniq("S")[:20], "name": "S"}
        harness.wait_until(lambda: self.call("POST", "/api/v1/PosGroups", pg)[0] in (201, 409),
                           30, what="a master-data write after the broker restart")
        art = harness.uniq("ART")
        promo = harness.promotion("After broker restart",
                                  [{"type": "ARTICLE", "values": [art]}],
                                  [harness.pct_action(10, articles=[art])],
                                  pos_groups=[pg["id"]])
        # The stack may still be restarting the broker's clients (a new
        # port): a write meanwhile is a 503 with Retry-After, and a client
        # retries it; a retry of a write that did land is a 409.
        promo = json.loads(harness.dumps(promo))
        harness.wait_until(lambda: self.call("POST", "/api/v1/Promotions", promo)[0] in (201, 409),
                           30, what="a promotion write after the broker restart")
        sim = {"request": harness.basket(pg["id"], [harness.item("L1", art, 1, "10.00")])}
        sim = json.loads(harness.dumps(sim))

        def applied():
            st, raw = self.call("POST", "/pos/v2/simulate", sim)
            return st == 200 and json.loads(raw)["totals"]["discount"]["value"] == 1
        harness.wait_until(applied, 30, what="a promotion written after the broker "
                           "restart to reach the evaluator")

        # SIGTERM stops everything.
        p.send_signal(signal.SIGTERM)  # the stack alone: it stops its children
        self.assertEqual(p.wait(timeout=harness.deadline(60)), 143)
        harness.wait_until(lambda: pids_of(data) == {}, 10, what="every process to exit")


if __name__ == "__main__":
    harness.main()
