#!/usr/bin/env python3
"""dre-webhook (issue 12, PRODUCT-DECISIONS §9) against real local receivers
(python http.server over http on 127.0.0.1, allowed by the test stack's
webhook.allow_insecure_urls): subscriptions and their secrets, signatures
checked with the test's own HMAC, retries with the same webhook-id and
growing gaps, the dead letter, repost, a hanging receiver beside a healthy
one, and the SSRF guard. The kill -9 stream and the throughput figures are
in test_webhook_stream.py."""
import base64
import hashlib
import hmac
import http.server
import ipaddress
import json
import os
import socket
import threading
import time

import harness
from harness import basket, item, uniq, wait_until

SANITIZED = bool(os.environ.get("DRE_SANITIZE"))
SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef01234567").decode()


class Receiver:
    """A local HTTP server recording every POST: (path, headers, body, t).
    mode[path] says how it answers: ok (204), fail (500), gone (410),
    refuse (200 with errorCode), hang (sleeps hang_s, then 200)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.got = []
        self.mode = {}
        self.hang_s = 8
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                t = time.monotonic()
                with rec.lock:
                    rec.got.append((self.path, dict(self.headers), body, t))
                    mode = rec.mode.get(self.path, "ok")
                code, text = 204, b""
                if mode == "fail":
                    code = 500
                elif mode == "gone":
                    code = 410
                elif mode == "refuse":
                    code, text = 200, b'{"errorCode":"X","errorMessage":"no"}'
                elif mode == "hang":
                    time.sleep(rec.hang_s)  # the hanging receiver itself
                    code = 200
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up (timeout, shutdown)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def at(self, path):
        with self.lock:
            return [g for g in self.got if g[0] == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def key_of(secret):
    return base64.b64decode(secret[len("whsec_"):])


def verify(secret, headers, body):
    """Both signatures of §9, computed here with hmac."""
    h = {k.lower(): v for k, v in headers.items()}
    key = key_of(secret)
    signed = ("%s.%s." % (h["webhook-id"], h["webhook-timestamp"])).encode() + body
    std = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    dre = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    return h["webhook-signature"] == std and h["x-dre-signature"] == dre


class WebhookBase(harness.TestCase):
    """One stack and one receiver per class, and the calls the tests share
    (test_webhook_stream.py builds on it)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s = harness.Stack()
        cls.rx = Receiver()
        cls.pg = cls.s.create_pos_group()["id"]

    @classmethod
    def tearDownClass(cls):
        cls.rx.close()
        cls.s.stop()

    def subscribe(self, path, types, **kw):
        doc = {"url": self.rx.url(path), "eventTypes": types,
               "description": "test " + path}
        doc.update(kw)
        r = self.s.post("/api/v1/WebhookSubscriptions", doc)
        self.assertStatus(r, 201)
        return r.body

    def sale(self, txn):
        req = basket(self.pg, [item("L1", "ART-" + txn, 1, "10.00")],
                     header={"transactionId": txn})
        r = self.s.evaluate(req)
        self.assertOk(r)
        counter = r.body["meta"]["header"]["transactionCounter"]
        self.assertOk(self.s.confirm(txn, counter))
        return counter

    def deliveries(self, **q):
        qs = "&".join("%s=%s" % kv for kv in q.items())
        r = self.s.get("/api/v1/WebhookDeliveries?$top=1000&" + qs)
        self.assertOk(r)
        return r.body["value"]



class WebhookTest(WebhookBase):
    # -- subscriptions ---------------------------------------------------------
    def test_subscriptions_and_secrets(self):
        sub = self.subscribe("/crud", ["TRANSACTION_CONFIRMED"])
        self.assertTrue(sub["secret"].startswith("whsec_"))
        self.assertEqual(24, len(key_of(sub["secret"])))
        self.assertEqual({"maxAttempts": 8, "initialDelaySeconds": 5,
                          "maxDelaySeconds": 36000}, sub["retryPolicy"])
        one = self.s.get("/api/v1/WebhookSubscriptions/" + sub["id"])
        self.assertOk(one)
        self.assertNotIn("secret", one.body)
        lst = self.s.get("/api/v1/WebhookSubscriptions")
        self.assertOk(lst)
        self.assertNotIn(sub["secret"], lst.text)
        rot = self.s.post("/api/v1/WebhookSubscriptions/%s/rotate-secret" % sub["id"])
        self.assertOk(rot)
        self.assertNotEqual(sub["secret"], rot.body["secret"])
        r = self.s.request("PATCH", "/api/v1/WebhookSubscriptions/" + sub["id"],
                           {"active": False, "description": "off"})
        self.assertOk(r)
        self.assertFalse(r.body["active"])
        # The secret is not in the store in clear.
        raw = b""
        for root, _, files in os.walk(os.path.join(self.s.data_dir, "webhook")):
            for f in files:
                with open(os.path.join(root, f), "rb") as fh:
                    raw += fh.read()
        self.assertNotIn(rot.body["secret"].encode(), raw)
        self.assertNotIn(rot.body["secret"][6:].encode(), raw)
        # Refusals name the field.
        bad = [({"url": "ftp://x.example/h", "eventTypes": ["*"]}, "url"),
               ({"url": "not a url", "eventTypes": ["*"]}, "url"),
               ({"url": self.rx.url("/x"), "eventTypes": ["NOPE"]}, "eventTypes[0]"),
               ({"url": self.rx.url("/x"), "eventTypes": []}, "eventTypes"),
               ({"url": self.rx.url("/x"), "eventTypes": ["*"],
                 "retryPolicy": {"maxAttempts": 21}}, "retryPolicy.maxAttempts"),
               ({"url": self.rx.url("/x"), "eventTypes": ["*"],
                 "retryPolicy": {"initialDelaySeconds": 0}},
                "retryPolicy.initialDelaySeconds"),
               ({"url": self.rx.url("/x"), "eventTypes": ["*"],
                 "secret": "sekrit"}, "secret"),
               ({"url": self.rx.url("/x"), "eventTypes": ["*"],
                 "evntTypes": []}, "evntTypes")]
        for doc, target in bad:
            r = self.s.post("/api/v1/WebhookSubscriptions", doc)
            self.assertStatus(r, 400)
            self.assertEqual("VALIDATION_FAILED", r.body["error"]["code"], r)
            self.assertEqual(target, r.body["error"]["target"], r)
        r = self.s.get("/api/v1/WebhookSubscriptions", user="pos-reader")
        self.assertStatus(r, 403)
        self.assertStatus(self.s.request(
            "DELETE", "/api/v1/WebhookSubscriptions/" + sub["id"]), 204)
        self.assertStatus(self.s.get(
            "/api/v1/WebhookSubscriptions/" + sub["id"]), 404)

    # -- a signed delivery -------------------------------------------------------
    def test_signed_delivery_of_a_confirm(self):
        sub = self.subscribe("/signed", ["TRANSACTION_CONFIRMED"], secret=SECRET)
        sfx = self.subscribe("/sfx", ["SIDE_EFFECTS_COMPLETED"])
        txn = uniq("WH-SIG")
        counter = self.sale(txn)

        def got():
            for _, h, b, _ in self.rx.at("/signed"):
                if json.loads(b)["data"]["transactionId"] == txn:
                    return h, b
            return None
        h, b = wait_until(got, harness.deadline(20), what="the delivery")
        self.assertTrue(verify(SECRET, h, b), h)
        body = json.loads(b)
        self.assertEqual("TRANSACTION_CONFIRMED", body["type"])
        self.assertEqual(body["id"], h["webhook-id"])
        self.assertEqual("default", body["tenant"])
        self.assertEqual(counter, body["data"]["transactionCounter"])
        self.assertLess(abs(int(h["webhook-timestamp"]) - time.time()), 60)

        def delivered():
            v = [d for d in self.deliveries(subscriptionId=sub["id"])
                 if d["eventId"] == body["id"]]
            return v if v and v[0]["status"] == "DELIVERED" else None
        d = wait_until(delivered, harness.deadline(10), what="DELIVERED")[0]
        det = self.s.get("/api/v1/WebhookDeliveries/" + d["id"])
        self.assertOk(det)
        self.assertEqual(body, det.body["payload"])
        self.assertEqual(204, det.body["attemptLog"][0]["statusCode"])
        self.assertNotIn(SECRET, det.text)
        # The sale's side-effects job completes: the evaluator waits for the
        # webhook service's SideEffectResult too (sidefx.services).
        self.s.wait_side_effects(txn, counter, timeout=harness.deadline(20))
        # ... and the webhook service folds the same results itself.
        def completed():
            for _, h, b, _ in self.rx.at("/sfx"):
                x = json.loads(b)
                if x["data"]["transactionId"] == txn:
                    return x
            return None
        done = wait_until(completed, harness.deadline(20),
                          what="SIDE_EFFECTS_COMPLETED")
        self.assertEqual("SIDE_EFFECTS_COMPLETED", done["type"])
        self.assertEqual("COMPLETED", done["data"]["status"])
        self.assertEqual({"budget", "reporting", "coupon", "loyalty", "webhook"},
                         {r["service"] for r in done["data"]["results"]})
        self.s.request("DELETE", "/api/v1/WebhookSubscriptions/" + sfx["id"])

    # -- retries, dead letter, repost --------------------------------------------
    def test_retries_dead_letter_and_repost(self):
        self.rx.mode["/flaky"] = "fail"
        sub = self.subscribe("/flaky", ["WEBHOOK_TEST"],
                             retryPolicy={"maxAttempts": 3, "initialDelaySeconds": 1,
                                          "maxDelaySeconds": 60})
        dl = self.subscribe("/dead", ["WEBHOOK_DELIVERY_DEAD_LETTER"])
        r = self.s.post("/api/v1/WebhookSubscriptions/%s/test" % sub["id"])
        self.assertStatus(r, 202)
        did = r.body["id"]
        wait_until(lambda: len(self.rx.at("/flaky")) >= 3, harness.deadline(30),
                   what="three attempts")
        tries = self.rx.at("/flaky")
        ids = {t[1]["webhook-id"] for t in tries}
        self.assertEqual(1, len(ids), ids)
        gaps = [tries[1][3] - tries[0][3], tries[2][3] - tries[1][3]]
        print("retry gaps: %.2f s, %.2f s" % tuple(gaps))
        self.assertGreater(gaps[0], 0.8)
        self.assertGreater(gaps[1], gaps[0] * 1.4)

        def failed():
            d = self.s.get("/api/v1/WebhookDeliveries/" + did).body
            return d if d["status"] == "FAILED" else None
        d = wait_until(failed, harness.deadline(10), what="FAILED")
        self.assertEqual(3, d["attempts"])
        self.assertEqual(500, d["lastStatusCode"])
        self.assertEqual(3, len(d["attemptLog"]))
        dead = wait_until(lambda: self.rx.at("/dead"), harness.deadline(10),
                          what="the dead letter")
        dbody = json.loads(dead[0][2])
        self.assertEqual("WEBHOOK_DELIVERY_DEAD_LETTER", dbody["type"])
        self.assertEqual(did, dbody["data"]["deliveryId"])
        self.assertEqual(list(ids)[0], dbody["data"]["eventId"])
        self.assertEqual([did], [x["id"] for x in self.deliveries(
            subscriptionId=sub["id"], status="FAILED")])
        # Repost of the one delivery: a new series, the same webhook-id.
        self.rx.mode["/flaky"] = "ok"
        r = self.s.post("/api/v1/WebhookDeliveries/%s/repost" % did)
        self.assertStatus(r, 202)
        wait_until(lambda: len(self.rx.at("/flaky")) >= 4, harness.deadline(10),
                   what="the repost")
        self.assertEqual(list(ids)[0], self.rx.at("/flaky")[3][1]["webhook-id"])
        wait_until(lambda: self.s.get("/api/v1/WebhookDeliveries/" + did)
                   .body["status"] == "DELIVERED", harness.deadline(10),
                   what="DELIVERED after repost")
        # Bulk repost of the failed: a refusing receiver (2xx + errorCode).
        self.rx.mode["/flaky"] = "refuse"
        self.s.request("PATCH", "/api/v1/WebhookSubscriptions/" + sub["id"],
                       {"retryPolicy": {"maxAttempts": 1, "initialDelaySeconds": 1,
                                        "maxDelaySeconds": 60}})
        ev = [self.s.post("/api/v1/WebhookSubscriptions/%s/test" % sub["id"]).body["id"]
              for _ in range(2)]
        wait_until(lambda: len(self.deliveries(subscriptionId=sub["id"],
                                               status="FAILED")) == 2,
                   harness.deadline(10), what="two refused")
        self.rx.mode["/flaky"] = "ok"
        r = self.s.post("/api/v1/WebhookSubscriptions/%s/repost" % sub["id"],
                        {"status": "FAILED"})
        self.assertStatus(r, 202)
        self.assertEqual(2, r.body["reposted"])
        wait_until(lambda: all(self.s.get("/api/v1/WebhookDeliveries/" + i)
                               .body["status"] == "DELIVERED" for i in ev),
                   harness.deadline(10), what="reposted delivered")
        r = self.s.post("/api/v1/WebhookSubscriptions/%s/repost" % sub["id"],
                        {"status": "PENDING"})
        self.assertStatus(r, 400)
        self.assertEqual("status", r.body["error"]["target"])
        # 410 Gone deactivates the subscription: the next sale is not
        # delivered to it (the witness's delivery of that sale is enqueued
        # with the one it would have had).
        self.rx.mode["/gone"] = "gone"
        g = self.subscribe("/gone", ["TRANSACTION_CONFIRMED"])
        witness = self.subscribe("/witness", ["TRANSACTION_CONFIRMED"])
        first = uniq("WH-GONE")
        self.sale(first)
        wait_until(lambda: not self.s.get("/api/v1/WebhookSubscriptions/" + g["id"])
                   .body["active"], harness.deadline(10), what="deactivated")
        self.assertEqual(1, len(self.deliveries(subscriptionId=g["id"])))
        second = uniq("WH-GONE")
        self.sale(second)
        wait_until(lambda: any(json.loads(b)["data"]["transactionId"] == second
                               for _, _, b, _ in self.rx.at("/witness")),
                   harness.deadline(20), what="the witness's delivery")
        self.assertEqual(1, len(self.deliveries(subscriptionId=g["id"])))
        self.s.request("DELETE", "/api/v1/WebhookSubscriptions/" + witness["id"])
        self.s.request("DELETE", "/api/v1/WebhookSubscriptions/" + dl["id"])

    # -- a hanging receiver ------------------------------------------------------
    def test_hanging_receiver_does_not_delay_a_healthy_one(self):
        # The hanging receiver is another server (another host in life).
        slow = Receiver()
        # WH_SLOW_MODE=ok runs the same sales with both receivers healthy:
        # the baseline the latencies printed here compare with.
        slow.mode["/hang"] = os.environ.get("WH_SLOW_MODE", "hang")
        r = self.s.post("/api/v1/WebhookSubscriptions", {
            "url": slow.url("/hang"), "eventTypes": ["TRANSACTION_CONFIRMED"]})
        self.assertStatus(r, 201)
        hang = r.body
        ok = self.subscribe("/healthy", ["TRANSACTION_CONFIRMED"])
        t0 = time.monotonic()
        txns = [uniq("WH-HANG") for _ in range(20)]
        sent = {}
        for t in txns:
            self.sale(t)
            sent[t] = time.monotonic()

        def arrived():
            seen = {}
            for _, _, b, at in self.rx.at("/healthy"):
                x = json.loads(b)["data"].get("transactionId")
                if x in sent and x not in seen:
                    seen[x] = at
            return seen if len(seen) == len(txns) else None
        seen = wait_until(arrived, harness.deadline(20), what="healthy deliveries")
        lats = [round(seen[t] - sent[t], 3) for t in txns]
        print("healthy latencies:", lats)
        worst = max(lats)
        print("healthy receiver beside a hanging one: worst confirm->delivery "
              "%.3f s (the hanging one takes %d s an attempt)" % (worst, slow.hang_s))
        self.assertLess(worst, harness.deadline(3))
        self.assertLess(time.monotonic() - t0, harness.deadline(15))
        # The slow one holds its 8 slots meanwhile (per-subscription bound).
        wait_until(lambda: len(slow.at("/hang")) >= 8, harness.deadline(10),
                   what="the hanging receiver's slots")
        for sid in (hang["id"], ok["id"]):
            self.s.request("DELETE", "/api/v1/WebhookSubscriptions/" + sid)
        slow.close()


class SecureGuard(harness.TestCase):
    """The SSRF guard of a stack without webhook.allow_insecure_urls: http
    and internal address literals refused at subscription, and a name that
    resolves to loopback refused at connection (the open-socket check)."""

    def test_guard_refuses_internal_targets(self):
        # A name (not a literal, so the subscription accepts it) that
        # resolves to an internal address: the guard refuses it at connection.
        host = None
        for name in (socket.gethostname(), "ip6-localhost", "ip6-loopback"):
            try:
                addr = socket.getaddrinfo(name, 443, proto=socket.IPPROTO_TCP)[0][4][0]
            except OSError:
                continue
            ip = ipaddress.ip_address(addr)
            if ip.is_private or ip.is_loopback:
                host = name
                break
        self.assertIsNotNone(host, "no host name resolving to an internal address "
                             "(the machine's name, ip6-localhost) to test the guard with")
        s = harness.Stack(opts={"webhook": ["webhook.allow_insecure_urls=false"]})
        try:
            for url in ("http://hooks.example.com/x", "https://127.0.0.1/x",
                        "https://[::1]/x", "https://169.254.169.254/x",
                        "https://10.0.0.1/x", "https://localhost/x"):
                r = s.post("/api/v1/WebhookSubscriptions",
                           {"url": url, "eventTypes": ["*"]})
                self.assertStatus(r, 400)
                self.assertEqual("url", r.body["error"]["target"], r)
            r = s.post("/api/v1/WebhookSubscriptions", {
                "url": "https://%s:9/x" % host, "eventTypes": ["WEBHOOK_TEST"],
                "retryPolicy": {"maxAttempts": 1}})
            self.assertStatus(r, 201)
            d = s.post("/api/v1/WebhookSubscriptions/%s/test" % r.body["id"]).body

            def failed():
                x = s.get("/api/v1/WebhookDeliveries/" + d["id"]).body
                return x if x["status"] == "FAILED" else None
            x = wait_until(failed, harness.deadline(20), what="refused")
            self.assertIn("private, loopback", x["lastError"], x)
            self.assertIsNone(x["lastStatusCode"], x)
        finally:
            s.stop()


if __name__ == "__main__":
    harness.main()
