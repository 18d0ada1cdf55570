#!/usr/bin/env python3
# test_fuzz_http.py -- an HTTP-level mutation fuzzer: valid requests to every
# POS route (evaluate, simulate, confirm, the coupon operations, the article
# import), the POS-platform bridge's SPI calls and webhooks (seed 004, with
# its {errorCode, errorMessage} errors), the loyalty facade's /api/v3 writes
# (seed 003), the import jobs' JSON entry points and every /api/v1 write
# route are mutated (byte flips, truncation, type swaps, deep nesting, huge
# numbers, unicode, duplicated and removed keys, unknown and oversized
# members, splices of two requests) and sent
# from two threads for a bounded time and count, promotion writes mixed with
# evaluates. Fails on any 5xx, any dropped connection, any answer slower
# than 2 s (x harness.SCALE), a 4xx without the error body, or a process
# that died. The seed is printed on failure; DRE_FUZZ_HTTP_SEED replays it,
# DRE_FUZZ_HTTP_SECONDS (default 20) and DRE_FUZZ_HTTP_COUNT (default 4000
# per thread) bound the run.
import copy
import http.client
import json
import os
import random
import re
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, new_id, uniq  # noqa: E402

SECONDS = float(os.environ.get("DRE_FUZZ_HTTP_SECONDS", "20"))
COUNT = int(os.environ.get("DRE_FUZZ_HTTP_COUNT", "4000"))
SEED = int(os.environ.get("DRE_FUZZ_HTTP_SEED", str(int(time.time()) % 1000000)))
THREADS = 2
# The gateway's http.body_limit (its default): larger bodies get 413.
BODY_LIMIT = 1 << 20
SLOW_S = 2.0

UNICODE = ["é", "😀", "\u202e", "e\u0301", "\ufeff", "\u4e2d\u6587", "\U0010ffff"]
ESCAPES = ['"\\u0000"', '"\\ud800"', '"\\udc00\\ud800"', '"\\ud83d\\ude00"', '"\\/"']
RAW_BYTES = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\x00", b"\x7f",
             b"\xf4\x90\x80\x80"]
NUMBERS = ["1e400", "-1e400", "1e-400", "99999999999999999999999", "-0",
           "0.000000000000000000001", "9223372036854775808", "-9223372036854775809",
           "1.005", "12345678901234.56", "1E+2", "0"]
KEY_RE = re.compile(rb'[{,] ?("(?:[^"\\]|\\.)*": ?)')
SCALARS = [None, True, False, 0, -1, 1.5, "", "x", [], {}, [1], {"a": 1}]


class Fuzz(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s = cls.stack
        cls.pg = s.create_pos_group()
        cls.promo = s.create_promotion(harness.promotion(
            uniq("Fuzz"), [{"type": "ARTICLE_GROUP", "values": ["G1"]}],
            [harness.pct_action(10, articleGroups=["G1"])], pos_groups=[cls.pg["id"]]))
        r = s.post("/api/v1/CouponTypes", {"name": uniq("FuzzType"), "type": "GENERIC",
                                           "prefix": "FZ", "codeLength": 8})
        if r.status != 201:
            raise AssertionError("coupon type: %r" % r)
        cls.ctype = r.body
        r = s.post("/api/v1/CouponCodes", {"couponTypeId": cls.ctype["id"]})
        if r.status != 201:
            raise AssertionError("coupon code: %r" % r)
        cls.code = r.body["code"]
        cls.budget = s.create_budget("1000.00")
        # The POS platform calls the bridge with an API key (?api_key=).
        r = s.post("/api/v1/ApiKeys", {"name": uniq("fuzz-till"), "roles": ["POSReader"]})
        if r.status != 201:
            raise AssertionError("api key: %r" % r)
        cls.key = r.body["key"]
        # A loyalty contact for the /api/v3 calls (seed 003's shapes).
        r = s.post("/api/v3/contacts", {"email": uniq("fz").lower() + "@example.com",
                                        "firstName": "Fuzz"})
        if r.status != 201:
            raise AssertionError("contact: %r" % r)
        cls.contact = r.body["id"]
        # Entities the fuzzer itself created, for PATCH/PUT/DELETE/activate.
        cls.created = {"Promotions": [cls.promo["id"]], "PosGroups": [],
                       "ArticleGroups": [], "Articles": [], "Budgets": [cls.budget["id"]],
                       "CouponTypes": [], "CouponCodes": [cls.code]}
        cls.lock = threading.Lock()

    # -- the valid requests ----------------------------------------------------
    def basket(self, rnd):
        items = [harness.item("L%d" % i, rnd.choice(["A", "B", "ART-1"]),
                              rnd.choice(["1", "2", "0.5", "-1"]),
                              rnd.choice(["9.99", "0.00", "100.00"]),
                              articleGroupId=rnd.choice(["G1", "G2"]))
                 for i in range(rnd.randint(1, 4))]
        req = harness.basket(self.pg["id"], items, txn=uniq("FZ"))
        if rnd.random() < 0.3:
            req["coupons"] = [{"code": self.code}]
        if rnd.random() < 0.3:
            req["customer"] = {"customerId": "C1", "loyalty": {"tier": "GOLD",
                                                               "points": D("10")}}
        return {"request": req}

    def seeds(self, rnd):
        """(method, path, body) of a valid request, promotions and evaluates
        weighted up."""
        def pick(kind):
            with self.lock:
                ids = self.created[kind]
                key = rnd.choice(ids) if ids and rnd.random() < 0.8 else new_id()
            return urllib.parse.quote(key, safe="")
        txn = uniq("FZ")
        promo = harness.promotion(
            uniq("P"), [{"type": "ARTICLE", "values": ["A"], "minQuantity": 1}],
            [rnd.choice([harness.pct_action(5),
                         {"type": "RECEIPT", "discountType": "ABSOLUTE", "value": D("1.00")},
                         {"type": "QUANTITY_TIER", "tiers": [
                             {"minQuantity": 2, "discountType": "PERCENTAGE", "value": 10}]},
                         {"type": "FREE_ITEM", "articleNumber": "B", "quantity": 1}])],
            pos_groups=[self.pg["id"]], priority=rnd.randint(1, 100))
        k = "?api_key=" + self.key
        cart = uniq("CART")
        member = rnd.choice(["M1", "M2", uniq("M")])
        bridge = [
            (2, "POST", "/rc/spi/1.0/sa/cartValidation" + k, {
                "cartId": cart, "storeId": self.pg["code"],
                "lineItems": [{"lineId": "1", "sku": "A", "quantity": 2,
                               "unitPrice": D("10.00"), "category": "G1"},
                              {"lineId": "2", "sku": "B", "quantity": 1,
                               "unitPrice": D("3.50")}],
                "promoCodes": [self.code],
                "customer": {"customerId": "EXT-" + member, "loyaltyId": member}}),
            (1, "POST", "/rc/spi/1.0/promotion-code/validate" + k,
             {"code": self.code, "cartId": cart, "customerId": member}),
            (1, "POST", "/rc/spi/1.0/sa/getLoyaltyPoints" + k,
             {"orderId": uniq("ORD"), "customerId": member}),
            (1, "POST", "/rc/spi/1.0/reward/lookup" + k, {"loyaltyId": member}),
            (1, "POST", "/rc/webhooks/ORDER" + k, {
                "orderId": uniq("ORD"), "cartId": cart, "customerId": member,
                "createdAt": int(time.time() * 1000),
                "lineItems": [{"sku": "A", "quantity": 2}],
                "promotions": [{"promotionId": self.promo["id"], "amount": D("2.00")}]}),
            (1, "POST", "/rc/webhooks/RETURN" + k, {
                "orderId": uniq("ORD"),
                "lineItems": [{"sku": "A", "quantity": 1, "refundAmount": D("9.00")}]}),
            (1, "POST", "/rc/webhooks/VOID_CART" + k, {"cartId": cart}),
        ]
        loyalty = [
            (1, "POST", "/api/v3/contacts", {"email": uniq("c").lower() + "@example.com",
                                             "firstName": "Ann", "lastName": "Lee",
                                             "city": "Oslo", "optIns": {"email": True}}),
            (1, "PATCH", "/api/v3/contacts/" + self.contact, {"city": "Bergen"}),
            (1, "POST", "/api/v3/contacts/import", [
                {"email": uniq("i").lower() + "@example.com", "firstName": "Imp",
                 "pointsBalance": 7}]),
            (1, "POST", "/api/v3/receipts", {
                "contact": {"matchKey": self.contact, "matchKeyType": "ContactId"},
                "uniqueReceiptId": uniq("R"), "currency": "EUR",
                "items": [{"type": "PURCHASE", "grossPaidPrice": D("12.50")}]}),
            (1, "POST", "/api/v3/reward-vouchers", {"contactId": self.contact}),
            (1, "POST", "/api/v3/promotion-assignments",
             {"contactId": self.contact, "promotionId": self.promo["id"]}),
        ]
        imports = [
            (1, "POST", "/api/v1/ImportJobs", {"entity": "Articles", "format": "NDJSON",
                                               "mode": "UPSERT", "name": "fuzz \u00e9"}),
            (1, "POST", "/api/v1/Articles:bulk-import", [
                {"articleNumber": uniq("FA"), "name": "n", "referencePrice": D("1.00")},
                {"articleNumber": uniq("FA"), "name": "m", "articleGroupId": "G1"}]),
            (1, "POST", "/pos/articles/import-batch", {"name": "till", "articles": [
                {"articleNumber": uniq("FB"), "name": "o"}]}),
        ]
        table = bridge + loyalty + imports + [
            (6, "POST", "/pos/v2/evaluate", self.basket(rnd)),
            (3, "POST", "/pos/v2/simulate", self.basket(rnd)),
            (1, "POST", "/pos/evaluate", self.basket(rnd)),
            (1, "POST", "/pos/simulate", self.basket(rnd)),
            (2, "POST", "/pos/v2/confirm", {"request": {
                "header": {"transactionId": txn, "transactionCounter": 1},
                "transactionId": txn, "appliedPromotions": [
                    {"promotionId": self.promo["id"], "couponCode": None,
                     "discountAmount": {"value": D("1.00"), "currency": "EUR"}}]}}),
            (1, "POST", "/pos/coupons/validate", {"code": self.code, "customerId": "C1"}),
            (1, "POST", "/pos/coupons/reserve", {"code": self.code, "transactionId": txn}),
            (1, "POST", "/pos/coupons/redeem", {"reservationId": new_id(),
                                                 "transactionId": txn}),
            (1, "POST", "/pos/coupons/cancel", {"reservationId": new_id()}),
            (1, "POST", "/pos/coupons/activate", {"code": self.code, "customerId": "C1"}),
            (1, "POST", "/pos/coupons/issue", {"couponTypeId": self.ctype["id"],
                                               "customerId": "C1", "transactionId": txn}),
            (1, "POST", "/pos/articles/import", {"articles": [
                {"articleNumber": uniq("ART")[:20], "name": "n", "ean": "4001954600106",
                 "articleGroupId": "G1", "referencePrice": D("1.50")}]}),
            (4, "POST", "/api/v1/Promotions", promo),
            (2, "PATCH", "/api/v1/Promotions/" + pick("Promotions"),
             {"name": uniq("N"), "priority": rnd.randint(1, 100)}),
            (1, "PUT", "/api/v1/Promotions/" + pick("Promotions"), promo),
            (1, "POST", "/api/v1/Promotions/%s/activate" % pick("Promotions"), None),
            (1, "POST", "/api/v1/Promotions/%s/deactivate" % pick("Promotions"), None),
            (1, "DELETE", "/api/v1/Promotions/" + pick("Promotions"), None),
            (1, "PUT", "/api/v1/TenantSettings", {"enableProductionNudges":
                                                  rnd.random() < 0.5}),
            (1, "POST", "/api/v1/CouponCodes/import", {"couponTypeId": self.ctype["id"],
                                                       "codes": [uniq("FZ")[:16]]}),
            (1, "POST", "/api/v1/CouponCodeBatches", {"couponTypeId": self.ctype["id"],
                                                      "numberOfCodes": 3}),
        ]
        # The other /api/v1 collections: POST, PATCH, PUT and DELETE each.
        docs = {
            "PosGroups": {"id": new_id(), "code": uniq("S")[:20], "name": "g"},
            "ArticleGroups": {"articleGroupId": uniq("AG")[:20], "name": "ag"},
            "Articles": {"articleNumber": uniq("ART")[:20], "name": "a",
                         "articleGroupId": "G1", "referencePrice": D("1.29")},
            "Budgets": {"name": uniq("B"), "totalAmount": D("50.00"), "currency": "EUR"},
            "CouponTypes": {"name": uniq("T"), "type": "INDIVIDUAL", "prefix": "FZ"},
            "CouponCodes": {"couponTypeId": self.ctype["id"]},
        }
        for kind, doc in docs.items():
            table.append((1, "POST", "/api/v1/" + kind, doc))
            patch = {k: v for k, v in doc.items() if k in ("name", "couponTypeId")}
            table.append((1, "PATCH", "/api/v1/%s/%s" % (kind, pick(kind)), patch))
            table.append((0.5, "PUT", "/api/v1/%s/%s" % (kind, pick(kind)), doc))
            if kind != "CouponCodes":  # codes are never deleted
                table.append((0.3, "DELETE", "/api/v1/%s/%s" % (kind, pick(kind)), None))
        total = sum(w for w, *_ in table)
        x = rnd.uniform(0, total)
        for w, method, path, body in table:
            x -= w
            if x <= 0:
                return method, path, body
        return table[0][1:]

    # -- mutations ------------------------------------------------------------
    @staticmethod
    def paths(v, prefix=()):
        """Every (container, key) in v."""
        out = []
        if isinstance(v, dict):
            for k, x in v.items():
                out.append((v, k))
                out.extend(Fuzz.paths(x))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                out.append((v, i))
                out.extend(Fuzz.paths(x))
        return out

    def mutate(self, rnd, body):
        """Returns (name, bytes) of one or more mutations of body."""
        names = []
        obj = json.loads(harness.dumps(body)) if body is not None else {}
        text = None
        for _ in range(rnd.choice([1, 1, 1, 2, 3])):
            m = rnd.choice(["flip", "truncate", "swap", "nest", "number", "unicode",
                            "dupkey", "remove", "unknown", "long", "splice", "raw"])
            names.append(m)
            spots = self.paths(obj)
            if m in ("swap", "nest", "number", "unicode", "remove", "long") and not spots:
                m = "unknown"
            if m == "swap":
                c, k = rnd.choice(spots)
                c[k] = copy.deepcopy(rnd.choice(SCALARS + [rnd.choice(UNICODE)]))
            elif m == "nest":
                c, k = rnd.choice(spots)
                v = c[k]
                for _ in range(rnd.choice([10, 63, 65, 200])):
                    v = [v] if rnd.random() < 0.5 else {"n": v}
                c[k] = v
            elif m == "number":
                c, k = rnd.choice(spots)
                c[k] = harness.Decimal(rnd.choice(NUMBERS)) if rnd.random() < 0.5 \
                    else D(rnd.choice(NUMBERS))
            elif m == "unicode":
                c, k = rnd.choice(spots)
                c[k] = "".join(rnd.choice(UNICODE) for _ in range(rnd.randint(1, 60)))
            elif m == "remove":
                c, k = rnd.choice(spots)
                del c[k]
            elif m == "unknown":
                if isinstance(obj, dict):
                    obj[uniq("x")] = copy.deepcopy(rnd.choice(SCALARS))
            elif m == "long":
                c, k = rnd.choice(spots)
                c[k] = rnd.choice("Aé😀") * rnd.choice([51, 256, 1001, 70000])
            elif m == "splice":
                _, _, other = self.seeds(rnd)
                if isinstance(obj, dict) and isinstance(other, dict):
                    for k, v in other.items():
                        if rnd.random() < 0.5:
                            obj[k] = v
            # the text-level ones end the structural stage
            elif m in ("flip", "truncate", "dupkey", "raw"):
                text = bytearray(self.dumps(rnd, obj))
                if m == "flip" and text:
                    for _ in range(rnd.randint(1, 4)):
                        i = rnd.randrange(len(text))
                        text[i] ^= 1 << rnd.randrange(8)
                elif m == "truncate":
                    del text[rnd.randrange(len(text) + 1):]
                elif m == "dupkey":
                    keys = list(KEY_RE.finditer(bytes(text)))
                    if keys:
                        k = rnd.choice(keys)
                        text[k.start(1):k.start(1)] = k.group(1) + b"1, "
                elif m == "raw":
                    i = rnd.randrange(len(text) + 1)
                    ins = rnd.choice(RAW_BYTES + [e.encode() for e in ESCAPES])
                    text[i:i] = ins
                break
        if text is None:
            text = self.dumps(rnd, obj)
        return "+".join(names), bytes(text)

    @staticmethod
    def dumps(rnd, obj):
        """JSON text of obj; non-ASCII as raw UTF-8 or as \\u escapes."""
        if rnd.random() < 0.5:
            return harness.dumps(obj).encode("utf-8")
        return harness._DEC_RE.sub(lambda m: m.group(1), json.dumps(
            obj, default=harness._json_default, ensure_ascii=False)).encode("utf-8")

    # -- one request -----------------------------------------------------------
    def send(self, method, path, body):
        """Returns (status, body bytes, seconds); raises on a dropped
        connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.http_port,
                                          timeout=harness.deadline(30))
        # The bridge's calls carry their API key in the query instead.
        hdrs = {} if "api_key=" in path else {"Authorization": harness.basic_auth("admin")}
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        t0 = time.monotonic()
        if body is not None and len(body) > BODY_LIMIT:
            # The gateway answers 413 as soon as it has the headers and
            # closes: a client must read that answer while it still sends
            # (http.client would stop at a broken pipe and never read it).
            conn.close()
            head = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\nContent-Length: %d" % (
                method, path, "\r\n".join("%s: %s" % kv for kv in hdrs.items()),
                len(body))
            r = harness.raw_http(self.stack.http_port, head, body, timeout=30)
            return r.status, r.raw, time.monotonic() - t0
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, data, time.monotonic() - t0
        finally:
            conn.close()

    def worker(self, idx, seed, stop_at, failures, stats):
        try:
            self.fuzz(idx, seed, stop_at, failures, stats)
        except Exception as e:  # a bug of the fuzzer itself fails the test too
            failures.append("thread %d: %r" % (idx, e))
            raise

    def fuzz(self, idx, seed, stop_at, failures, stats):
        rnd = random.Random(seed * 1000 + idx)
        slow = harness.deadline(SLOW_S)
        for n in range(COUNT):
            if time.monotonic() >= stop_at or failures:
                return
            method, path, body = self.seeds(rnd)
            if body is None or rnd.random() < 0.05:
                name, raw = "valid", (harness.dumps(body).encode() if body else None)
            else:
                name, raw = self.mutate(rnd, body)
            what = "thread %d request %d %s %s [%s] %r" % (
                idx, n, method, path, name, (raw or b"")[:300])
            try:
                status, data, secs = self.send(method, path, raw)
            except (OSError, http.client.HTTPException) as e:
                failures.append("%s: connection dropped: %r" % (what, e))
                return
            stats[status // 100] = stats.get(status // 100, 0) + 1
            if status >= 500:
                failures.append("%s: HTTP %d %r" % (what, status, data[:300]))
            elif secs > slow:
                failures.append("%s: took %.2f s" % (what, secs))
            elif status >= 400 and not (self.platform_error(data) if path.startswith("/rc/")
                                        and status != 413 else self.error_body(data)):
                failures.append("%s: HTTP %d without an error body: %r"
                                % (what, status, data[:300]))
            elif status in (200, 201) and path.startswith("/api/v1/"):
                self.remember(path, data)
            if n % 100 == 99:
                try:
                    self.stack.assert_all_alive()
                except AssertionError as e:
                    failures.append("%s: after it: %s" % (what, str(e)[:3000]))

    @staticmethod
    def error_body(data):
        try:
            b = json.loads(data)
        except ValueError:
            return False
        return (isinstance(b, dict) and isinstance(b.get("error"), dict)
                and isinstance(b["error"].get("code"), str))

    @staticmethod
    def platform_error(data):
        """The POS platform's error: {errorCode, errorMessage}, both text."""
        try:
            b = json.loads(data)
        except ValueError:
            return False
        return (isinstance(b, dict) and set(b) == {"errorCode", "errorMessage"}
                and isinstance(b["errorCode"], str) and isinstance(b["errorMessage"], str))

    def remember(self, path, data):
        kind = path.split("/")[3]
        try:
            b = json.loads(data)
        except ValueError:
            return
        field = {"CouponCodes": "code", "ArticleGroups": "articleGroupId",
                 "Articles": "articleNumber"}.get(kind, "id")
        key = b.get(field) if isinstance(b, dict) else None
        if kind in self.created and isinstance(key, str):
            with self.lock:
                if len(self.created[kind]) < 200:
                    self.created[kind].append(key)

    def test_mutated_requests(self):
        s = self.stack
        print("fuzz_http: seed %d (DRE_FUZZ_HTTP_SEED=%d replays it), %.0f s, %d threads"
              % (SEED, SEED, SECONDS, THREADS), file=sys.stderr)
        failures, stats = [], {}
        stop_at = time.monotonic() + SECONDS
        threads = [threading.Thread(target=self.worker,
                                    args=(i, SEED, stop_at, failures, stats))
                   for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SECONDS + harness.deadline(60))
        self.assertFalse(any(t.is_alive() for t in threads), "a fuzz thread hangs")
        print("fuzz_http: responses by class %s" % sorted(stats.items()), file=sys.stderr)
        if failures:
            self.fail("seed %d (DRE_FUZZ_HTTP_SEED=%d):\n%s"
                      % (SEED, SEED, "\n".join(failures[:5])))
        self.assertGreater(sum(stats.values()), 100, "too few requests: %r" % stats)
        s.assert_all_alive()
        # still serving: a valid evaluate of the promotion created first
        r = s.evaluate(harness.basket(self.pg["id"], [
            harness.item("L1", "A", "1", "10.00", articleGroupId="G1")]))
        self.assertEval(r)


if __name__ == "__main__":
    harness.main()
