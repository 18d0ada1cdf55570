#!/usr/bin/env python3
# test_stress.py -- evaluations while the data they read changes (issue 9).
# Several clients evaluate and simulate baskets while others create, PATCH,
# PUT, deactivate/activate and DELETE the promotions those baskets hit, a
# budget runs out under a stream of confirms and coupon types are edited.
# Asserted: no process dies, no answer is a 5xx or a dropped connection, and
# every discount in every answer names a promotion that existed at some
# point with exactly that name -- and the discount value of that same
# version (a name is "Stress <n> v<k>", its value k % 30 + 1 percent).
#
# The evaluator used to release its reference to the promotion index before
# packing the answer, whose strings live in the index: a change swapping the
# index in between freed them (heap-use-after-free under ASan; a wrong name
# or a crash in a release build). This test found it within seconds.
#
# DRE_STRESS_SECONDS sets the length of the run (default 20).
import http.client
import json
import os
import random
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, basket, item, pct_action, promotion, uniq  # noqa: E402

SECONDS = float(os.environ.get("DRE_STRESS_SECONDS", 20))
EVALUATORS = 4
WRITERS = 2
ARTICLES = 12
POOL = 8           # promotions alive at a time (about)
NAME_RE = re.compile(r"^Stress (\d+) v(\d+)$")


def pct_of(version):
    return version % 30 + 1


class Client:
    """One keep-alive HTTP connection (reconnects when the server closes
    it); counts what it saw."""

    def __init__(self, stack, user="admin"):
        self.port = stack.http_port
        self.auth = harness.basic_auth(user)
        self.conn = None

    def call(self, method, path, body=None):
        data = None if body is None else harness.dumps(body).encode()
        hdrs = {"Authorization": self.auth}
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=harness.deadline(30))
            try:
                self.conn.request(method, path, body=data, headers=hdrs)
                r = self.conn.getresponse()
                raw = r.read()
                harness.record_answer(method, path, r.status,
                                      {k.lower(): v for k, v in r.getheaders()}, raw)
                if r.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status, raw
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError) as e:
                # A keep-alive connection the server closed between two
                # requests is retried once on a new one; a second failure
                # is a dropped request.
                self.conn.close()
                self.conn = None
                if attempt == 1:
                    raise AssertionError("%s %s: connection dropped (%r)" % (
                        method, path, e))
        raise AssertionError("unreachable")


class Stress(harness.TestCase):
    def setUp(self):
        self.lock = threading.Lock()
        self.names = {}         # promotion id -> {name: pct}
        self.problems = []
        self.counts = {"evaluate": 0, "simulate": 0, "write": 0, "confirm": 0,
                       "coupon_type": 0, "discounts": 0}
        self.versions_seen = {}  # promotion id -> set of versions answered
        self.stop = threading.Event()
        self.seq = 0

    def problem(self, msg):
        with self.lock:
            if len(self.problems) < 50:
                self.problems.append(msg)
        self.stop.set()

    # -- promotions -------------------------------------------------------------
    def doc(self, pid, n, version, active=True):
        arts = self.arts_of[n]
        return promotion("Stress %d v%d" % (n, version),
                         [{"type": "ARTICLE", "values": arts}],
                         [pct_action(pct_of(version), articles=arts)],
                         pos_groups=[self.gid], pid=pid,
                         status="ACTIVE" if active else "INACTIVE")

    def record(self, pid, n, version):
        """Every name is recorded before the write that creates it is sent,
        so an answer can only name a recorded one."""
        with self.lock:
            self.names.setdefault(pid, {})["Stress %d v%d" % (n, version)] = \
                pct_of(version)

    def writer(self, wid, slots):
        c = Client(self.stack)
        rnd = random.Random(1000 + wid)
        while not self.stop.is_set():
            slot = rnd.choice(slots)
            pid, n, version, alive = slot["id"], slot["n"], slot["v"], slot["alive"]
            op = rnd.choice(("patch", "put", "toggle", "delete") if alive
                            else ("create",))
            if op == "create":
                pid = harness.new_id()
                version = 1
                self.record(pid, n, version)
                st, raw = c.call("POST", "/api/v1/Promotions", self.doc(pid, n, 1))
                want = (201,)
                slot.update(id=pid, v=1, alive=True, active=True)
            elif op in ("patch", "put"):
                version += 1
                self.record(pid, n, version)
                st, raw = c.call(op.upper(), "/api/v1/Promotions/" + pid,
                                 self.doc(pid, n, version, slot["active"]))
                want = (200,)
                slot["v"] = version
            elif op == "toggle":
                act = "deactivate" if slot["active"] else "activate"
                st, raw = c.call("POST", "/api/v1/Promotions/%s/%s" % (pid, act), {})
                want = (200,)
                slot["active"] = not slot["active"]
            else:
                st, raw = c.call("DELETE", "/api/v1/Promotions/" + pid)
                want = (200, 204)
                slot.update(alive=False)
            if st not in want:
                self.problem("%s %s: %d %s" % (op, pid, st, raw[:300]))
                return
            with self.lock:
                self.counts["write"] += 1

    # -- evaluations --------------------------------------------------------------
    def check_answer(self, body, what):
        for li in body["lineItems"]:
            total = D(li["lineTotal"]["value"])
            disc = D(li["lineDiscount"]["value"])
            net = D(li["lineNet"]["value"])
            if total - disc != net or disc < 0 or net < 0:
                return "%s line %s: %s - %s != %s" % (what, li["lineReference"],
                                                      total, disc, net)
            ssum = D(0)
            for d in li["discounts"]:
                ssum += D(d["totalDiscount"]["value"])
                pid, name = d["promotionId"], d["promotionName"]
                if pid in self.budget_ids:
                    continue
                with self.lock:
                    known = self.names.get(pid, {})
                    self.counts["discounts"] += 1
                if name not in known:
                    return "%s: promotion %s answered as %r, never its name (%s)" % (
                        what, pid, name, sorted(known))
                if D(d["discountValue"]) != known[name]:
                    return "%s: %s %r with value %s, its version has %s" % (
                        what, pid, name, d["discountValue"], known[name])
                m = NAME_RE.match(name)
                with self.lock:
                    self.versions_seen.setdefault(pid, set()).add(int(m.group(2)))
            if ssum != disc:
                return "%s line %s: discounts %s != lineDiscount %s" % (
                    what, li["lineReference"], ssum, disc)
        for pb in body["totals"]["savingsSummary"]["promotionBreakdown"]:
            pid = pb["promotionId"]
            if pid in self.budget_ids:
                continue
            with self.lock:
                known = self.names.get(pid, {})
            if pb["promotionName"] not in known:
                return "%s: breakdown names %s %r" % (what, pid, pb["promotionName"])
        return None

    def evaluator(self, eid):
        c = Client(self.stack, user="pos-reader")
        rnd = random.Random(eid)
        while not self.stop.is_set():
            arts = rnd.sample(self.arts, 5)
            items = [item("L%d" % i, a, rnd.randint(1, 3),
                          "%d.%02d" % (rnd.randint(1, 99), rnd.randint(0, 99)))
                     for i, a in enumerate(arts)]
            req = basket(self.gid, items)
            if rnd.random() < 0.3:
                req["coupons"] = [{"code": self.coupon}]
            sim = rnd.random() < 0.5
            path = "/pos/v2/simulate" if sim else "/pos/v2/evaluate"
            st, raw = c.call("POST", path, {"request": req})
            if st != 200:
                self.problem("%s: %d %s" % (path, st, raw[:300]))
                return
            err = self.check_answer(json.loads(raw, parse_float=D), path)
            if err:
                self.problem(err)
                return
            with self.lock:
                self.counts["simulate" if sim else "evaluate"] += 1

    # -- budget and coupon churn ----------------------------------------------------
    def confirmer(self):
        c = Client(self.stack)
        while not self.stop.is_set():
            txn = uniq("STX")
            req = basket(self.gid, [item("L1", self.budget_art, 1, "10.00")],
                         txn=txn)
            st, raw = c.call("POST", "/pos/v2/evaluate", {"request": req})
            if st != 200:
                self.problem("budget evaluate: %d %s" % (st, raw[:300]))
                return
            body = json.loads(raw, parse_float=D)
            applied = [{"promotionId": p} for p in self.budget_ids
                       if self.stack.applied(body, p)]
            st, raw = c.call("POST", "/pos/v2/confirm", {"request": {
                "header": {"transactionId": txn, "transactionCounter": 1},
                "transactionId": txn, "appliedPromotions": applied}})
            if st != 200:
                self.problem("confirm: %d %s" % (st, raw[:300]))
                return
            with self.lock:
                self.counts["confirm"] += 1

    def coupon_editor(self):
        c = Client(self.stack)
        k = 0
        while not self.stop.is_set():
            k += 1
            st, raw = c.call("PATCH", "/api/v1/CouponTypes/" + self.ctype,
                             {"name": "Stress type %d" % k,
                              "isStackable": k % 2 == 0})
            if st != 200:
                self.problem("coupon type PATCH: %d %s" % (st, raw[:300]))
                return
            with self.lock:
                self.counts["coupon_type"] += 1

    def test_evaluate_while_promotions_change(self):
        s = self.stack
        self.gid = s.create_pos_group()["id"]
        self.arts = [uniq("SA") for _ in range(ARTICLES)]
        # Promotion n discounts three of the articles; slots overlap so that
        # baskets meet several promotions (and best-price search) at once.
        self.arts_of = {n: [self.arts[(n + j) % ARTICLES] for j in range(3)]
                        for n in range(POOL)}
        # A budget that runs out during the run (10 % of 10.00 per confirm).
        self.budget_art = uniq("SB")
        budget = s.create_budget("5.00")
        bp = promotion("Stress budget", [{"type": "ARTICLE", "values": [self.budget_art]}],
                       [pct_action(10, articles=[self.budget_art])],
                       pos_groups=[self.gid], budgetIds=[budget["id"]])
        s.create_promotion(bp)
        self.budget_ids = {bp["id"]}
        # A coupon type whose code the baskets carry; a COUPON promotion on
        # one article so that the code takes part in pricing.
        r = s.post("/api/v1/CouponTypes", {"name": uniq("Type"), "type": "GENERIC",
                                           "maxRedemptions": 1000000})
        self.assertEqual(r.status, 201, r)
        self.ctype = r.body["id"]
        self.coupon = uniq("SCPN").upper().replace("_", "-")
        r = s.post("/api/v1/CouponCodes", {"couponTypeId": self.ctype,
                                           "code": self.coupon})
        self.assertEqual(r.status, 201, r)
        cp = promotion("Stress coupon", [], [pct_action(3, articles=[self.arts[0]])],
                       pos_groups=[self.gid], ptype="COUPON", couponTypeIds=[self.ctype])
        s.create_promotion(cp)
        self.budget_ids.add(cp["id"])  # not versioned by the writers

        slots = []
        for n in range(POOL):
            pid = harness.new_id()
            self.record(pid, n, 1)
            s.create_promotion(self.doc(pid, n, 1))
            slots.append({"id": pid, "n": n, "v": 1, "alive": True, "active": True})
        s.wait_for_promotion(slots[0]["id"], basket(self.gid, [
            item("L1", self.arts_of[0][0], 1, "10.00")]), timeout=10)

        threads = [threading.Thread(target=self.evaluator, args=(i,))
                   for i in range(EVALUATORS)]
        # Each writer owns its own slots: one writer's create can never race
        # another's delete of the same slot.
        threads += [threading.Thread(target=self.writer,
                                     args=(w, slots[w::WRITERS]))
                    for w in range(WRITERS)]
        threads += [threading.Thread(target=self.confirmer),
                    threading.Thread(target=self.coupon_editor)]

        def guard(fn):
            def run(*a):
                try:
                    fn(*a)
                except Exception as e:  # noqa: BLE001 -- reported below
                    self.problem("%s: %r" % (fn.__name__, e))
            return run
        for t in threads:
            t._target = guard(t._target)
            t.start()
        end = time.monotonic() + SECONDS
        while time.monotonic() < end and not self.stop.is_set():
            self.stop.wait(0.2)
        self.stop.set()
        for t in threads:
            t.join(harness.deadline(60))
            self.assertFalse(t.is_alive(), "a client hung")

        sys.stderr.write("stress: %s, %d promotions with several versions "
                         "answered\n" % (self.counts, sum(
                             1 for v in self.versions_seen.values() if len(v) > 1)))
        self.assertEqual(self.problems, [])
        s.assert_all_alive()
        # The run did what it claims: evaluations, writes and answers with
        # discounts from more than one version of a promotion.
        self.assertGreater(self.counts["evaluate"] + self.counts["simulate"], 100)
        self.assertGreater(self.counts["write"], 50)
        self.assertGreater(self.counts["confirm"], 10)
        self.assertGreater(self.counts["coupon_type"], 10)
        self.assertGreater(sum(1 for v in self.versions_seen.values() if len(v) > 1), 0)
        # The budget ran out under the confirms (5.00 at 1.00 a sale): its
        # state says so, and the evaluator learnt it (budget-limited).
        harness.wait_until(lambda: s.budget(budget["id"])["status"] == "EXHAUSTED",
                           20, what="the stress budget to be exhausted")
        req = basket(self.gid, [item("L1", self.budget_art, 1, "10.00")])
        harness.wait_until(
            lambda: [x["promotionId"] for x in
                     s.simulate(req).body["budgetLimitedPromotions"]] == [bp["id"]],
            20, what="evaluate to list the budget-limited promotion")


if __name__ == "__main__":
    harness.main()
