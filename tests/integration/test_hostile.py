#!/usr/bin/env python3
# test_hostile.py -- malformed and hostile bodies against the gateway: every
# one gets the exact 4xx status and PRODUCT-DECISIONS §1 error code (never a
# 5xx, never a dropped connection), and afterwards every process is alive and
# a valid evaluate still works.
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import basic_auth, raw_http  # noqa: E402

PG = "60000000-0000-4000-8000-0000000000bb"
ITEM = '"articleNumber":"A","quantity":1,"unitPrice":1.00'


def ev(item=ITEM, extra="", items=None):
    """Evaluate body text with one item's members replaced."""
    its = items if items is not None else "[{%s}]" % item
    return ('{"request":{"posGroupId":"%s","items":%s%s}}' % (PG, its, extra)).encode("latin-1")


def item_with(field, value_text):
    base = {"articleNumber": '"A"', "quantity": "1", "unitPrice": "1.00"}
    base[field] = value_text
    return ",".join('"%s":%s' % (k, v) for k, v in base.items())


VALID = ev()
MF, VF = "MALFORMED_JSON", "VALIDATION_FAILED"
TEN_MB = 10 * 1024 * 1024

# (name, body bytes, status, code, target or None (unchecked), content type)
EVALUATE_CASES = [
    ("empty body", b"", 400, MF, None),
    ("whitespace only", b"  \n\t\r  ", 400, MF, None),
    ("truncated object", VALID[:-3], 400, MF, None),
    ("truncated in string", b'{"request":{"posGroupId":"6000', 400, MF, None),
    ("lone brace", b"{", 400, MF, None),
    ("trailing garbage", VALID + b"x", 400, MF, None),
    ("two documents", VALID + VALID, 400, MF, None),
    ("not json at all", b"hello world", 400, MF, None),
    ("single quotes", b"{'request':{}}", 400, MF, None),
    ("trailing comma", ev(ITEM + ","), 400, MF, None),
    ("10k nested arrays", b"[" * 10000 + b"]" * 10000, 400, MF, None),
    ("10k nested objects", b'{"a":' * 10000 + b"1" + b"}" * 10000, 400, MF, None),
    ("100 nested arrays in unknown field",
     ev(extra=',"x":' + "[" * 100 + "]" * 100), 400, MF, None),
    ("top-level array", b"[]", 400, VF, "request"),
    ("top-level null", b"null", 400, VF, "request"),
    ("top-level string", b'"request"', 400, VF, "request"),
    ("top-level number", b"42", 400, VF, "request"),
    ("request is a string", b'{"request":"x"}', 400, VF, "request"),
    ("items null", ev(items="null"), 400, VF, "items"),
    ("items a string", ev(items='"A"'), 400, VF, "items"),
    ("item a number", ev(items="[1]"), 400, VF, "items[0]"),
    ("item null", ev(items="[null]"), 400, VF, "items[0]"),
    ("quantity a word", ev(item_with("quantity", '"abc"')), 400, VF, "items[0].quantity"),
    ("quantity true", ev(item_with("quantity", "true")), 400, VF, "items[0].quantity"),
    ("quantity array", ev(item_with("quantity", "[]")), 400, VF, "items[0].quantity"),
    ("quantity object", ev(item_with("quantity", "{}")), 400, VF, "items[0].quantity"),
    ("quantity null", ev(item_with("quantity", "null")), 400, VF, "items[0].quantity"),
    ("unitPrice 1e400", ev(item_with("unitPrice", "1e400")), 400, VF, "items[0].unitPrice"),
    ("unitPrice 20 digits", ev(item_with("unitPrice", "99999999999999999999")), 400, VF,
     "items[0].unitPrice"),
    ("quantity 20 digits", ev(item_with("quantity", "99999999999999999999")), 400, VF,
     "items[0].quantity"),
    ("unitPrice 16 digits", ev(item_with("unitPrice", "12345678901234.56")), 400, VF,
     "items[0].unitPrice"),
    ("unitPrice 3 decimals", ev(item_with("unitPrice", "1.001")), 400, VF, "items[0].unitPrice"),
    ("quantity 4 decimals", ev(item_with("quantity", "1.0001")), 400, VF, "items[0].quantity"),
    ("quantity -0", ev(item_with("quantity", "-0")), 400, VF, "items[0].quantity"),
    ("quantity -0.0e5", ev(item_with("quantity", "-0.0e5")), 400, VF, "items[0].quantity"),
    ("quantity 1e-400", ev(item_with("quantity", "1e-400")), 400, VF, "items[0].quantity"),
    ("quantity 1e999999999999", ev(item_with("quantity", "1e999999999999")), 400, VF,
     "items[0].quantity"),
    ("unitPrice 10k digits", ev(item_with("unitPrice", "9" * 10000)), 400, VF,
     "items[0].unitPrice"),
    ("unitPrice NaN", ev(item_with("unitPrice", "NaN")), 400, MF, None),
    ("unitPrice Infinity", ev(item_with("unitPrice", "Infinity")), 400, MF, None),
    ("unitPrice -Infinity", ev(item_with("unitPrice", "-Infinity")), 400, MF, None),
    ("quantity leading zero", ev(item_with("quantity", "01")), 400, MF, None),
    ("unitPrice .5", ev(item_with("unitPrice", ".5")), 400, MF, None),
    ("unitPrice +1", ev(item_with("unitPrice", "+1")), 400, MF, None),
    ("unitPrice hex", ev(item_with("unitPrice", "0x10")), 400, MF, None),
    ("unitPrice 1.", ev(item_with("unitPrice", "1.")), 400, MF, None),
    ("articleNumber 10k chars", ev(item_with("articleNumber", '"%s"' % ("A" * 10000))), 400,
     VF, "items[0].articleNumber"),
    ("articleNumber a number", ev(item_with("articleNumber", "123")), 400, VF,
     "items[0].articleNumber"),
    ("articleNumber NUL escape", ev(item_with("articleNumber", '"A\\u0000B"')), 400, VF,
     "items[0].articleNumber"),
    ("invalid UTF-8", ev(item_with("articleNumber", '"A\xff\xfe"')), 400, MF, None),
    ("overlong UTF-8 slash", ev(item_with("articleNumber", '"A\xc0\xaf"')), 400, MF, None),
    ("UTF-8 encoded surrogate", ev(item_with("articleNumber", '"A\xed\xa0\x80"')), 400, MF,
     None),
    ("truncated UTF-8 sequence", ev(item_with("articleNumber", '"A\xe2\x82"')), 400, MF, None),
    ("code point above U+10FFFF", ev(item_with("articleNumber", '"\xf4\x90\x80\x80"')), 400,
     MF, None),
    ("lone high surrogate escape", ev(item_with("articleNumber", '"\\ud800"')), 400, MF, None),
    ("lone low surrogate escape", ev(item_with("articleNumber", '"\\udc00x"')), 400, MF, None),
    ("reversed surrogate pair", ev(item_with("articleNumber", '"\\udc00\\ud800"')), 400, MF,
     None),
    ("raw NUL byte in string", ev(item_with("articleNumber", '"A\x00B"')), 400, MF, None),
    ("raw newline in string", ev(item_with("articleNumber", '"A\nB"')), 400, MF, None),
    ("bad escape", ev(item_with("articleNumber", '"\\x41"')), 400, MF, None),
    ("short unicode escape", ev(item_with("articleNumber", '"\\u12"')), 400, MF, None),
    ("duplicate top-level key", b'{"request":{},' + VALID[1:], 400, MF, None),
    ("duplicate item key", ev(ITEM + ',"quantity":2'), 400, MF, None),
    ("coupon code null", ev(extra=',"coupons":[{"code":null}]'), 400, VF, "coupons[0].code"),
    ("coupons as strings", ev(extra=',"coupons":["A"]'), 400, VF, "coupons"),
    ("customer a string", ev(extra=',"customer":"x"'), 400, VF, "customer"),
    ("loyalty points a word",
     ev(extra=',"customer":{"customerId":"C","loyalty":{"tier":"GOLD","points":"lots"}}'),
     400, VF, "customer.loyalty.points"),
    ("timestamp Feb 30", ev(extra=',"timestamp":"2026-02-30T00:00:00Z"'), 400, VF, "timestamp"),
    ("timestamp garbage", ev(extra=',"timestamp":"soon"'), 400, VF, "timestamp"),
    ("channel 51 chars", ev(extra=',"channel":"%s"' % ("C" * 51)), 400, VF, "channel"),
    ("header an array", ev(extra=',"header":[]'), 400, VF, "header"),
    ("transactionId a number", ev(extra=',"header":{"transactionId":7}'), 400, VF,
     "header.transactionId"),
    ("includeInactive a string", ev(extra=',"includeInactive":"true"'), 400, VF,
     "includeInactive"),
    ("posGroupId 10k chars", ('{"request":{"posGroupId":"%s","items":[{%s}]}}' % (
        "6" * 10000, ITEM)).encode(), 400, VF, "posGroupId"),
    ("articleNumber 51 chars", ev(item_with("articleNumber", '"%s"' % ("A" * 51))), 400, VF,
     "items[0].articleNumber"),
    ("items empty", ev(items="[]"), 400, VF, "items"),
    ("1001 items", ev(items="[" + ",".join(["{%s}" % ITEM] * 1001) + "]"), 413,
     "PAYLOAD_TOO_LARGE", None),
    ("2 MiB of whitespace", ev(extra=" " * (2 * 1024 * 1024)), 413, "PAYLOAD_TOO_LARGE", None),
    ("10 MB string", ev(extra=',"pad":"%s"' % ("x" * TEN_MB)), 413, "PAYLOAD_TOO_LARGE", None),
]


class Hostile(harness.TestCase):
    def send(self, path, body, ctype="application/json", user="admin", clen=None,
             extra_headers=(), timeout=60):
        head = ["POST %s HTTP/1.1" % path, "Host: 127.0.0.1",
                "Authorization: " + basic_auth(user), "Connection: close",
                "Content-Length: %d" % (len(body) if clen is None else clen)]
        if ctype is not None:
            head.append("Content-Type: " + ctype)
        head.extend(extra_headers)
        return raw_http(self.stack.http_port, "\r\n".join(head), body, timeout=timeout)

    def run_table(self, path, cases):
        for name, body, status, code, target in cases:
            with self.subTest(case=name, path=path):
                r = self.send(path, body)
                self.assertLess(r.status, 500, "%s: %r" % (name, r))
                self.assertError(r, status, code, target if target is not None else Ellipsis)

    def test_0_table_has_enough_cases(self):
        self.assertGreaterEqual(len(EVALUATE_CASES), 45)

    def test_1_evaluate_table(self):
        self.run_table("/pos/v2/evaluate", EVALUATE_CASES)
        self.stack.assert_all_alive()

    def test_2_simulate_sample(self):
        self.run_table("/pos/v2/simulate", [c for c in EVALUATE_CASES
                                            if c[0] in ("truncated object", "10k nested arrays",
                                                        "invalid UTF-8", "quantity -0",
                                                        "1001 items", "unitPrice NaN")])

    def test_3_promotions_and_import(self):
        promo = ('{"id":"%s","name":"%%s","type":"ARTICLE","status":"DRAFT",'
                 '"conditions":[],"actions":[{"type":"ARTICLE","discountType":"PERCENTAGE",'
                 '"value":5}]}' % harness.new_id())
        self.run_table("/api/v1/Promotions", [
            ("truncated", promo.encode()[:-2], 400, MF, None),
            ("empty", b"", 400, MF, None),
            ("10k nested", b"[" * 10000 + b"]" * 10000, 400, MF, None),
            ("invalid UTF-8 name", (promo % "\xff").encode("latin-1"), 400, MF, None),
            ("lone surrogate name", (promo % "\\ud800").encode(), 400, MF, None),
            ("name 10k chars", (promo % ("N" * 10000)).encode(), 400, VF, "name"),
            ("value 1e400", promo.replace('"value":5', '"value":1e400').encode() % b"x", 400,
             VF, "actions[0].value"),
            ("10 MB", (promo % ("x" * TEN_MB)).encode(), 413, "PAYLOAD_TOO_LARGE", None),
        ])
        self.run_table("/pos/articles/import", [
            ("truncated", b'{"articles":[{"articleNumber":"A"', 400, MF, None),
            ("articles a number", b'{"articles":5}', 400, VF, "articles"),
            ("top-level array", b'[{"articleNumber":"A"}]', 400, VF, None),
            ("invalid UTF-8", b'{"articles":[{"articleNumber":"\xff"}]}', 400, MF, None),
            ("duplicate key", b'{"articles":[],"articles":[]}', 400, MF, None),
            ("10 MB", b'{"articles":[],"x":"' + b"x" * TEN_MB + b'"}', 413,
             "PAYLOAD_TOO_LARGE", None),
        ])

    def test_4_headers(self):
        # not JSON by content type
        for ctype in ("text/plain", "application/jsonx", "multipart/form-data; boundary=x",
                      None):
            with self.subTest(ctype=ctype):
                r = self.send("/pos/v2/evaluate", VALID, ctype=ctype)
                self.assertError(r, 415, "UNSUPPORTED_MEDIA_TYPE")
        # Content-Length shorter than the body: the first bytes are a truncated document
        r = self.send("/pos/v2/evaluate", VALID, clen=20)
        self.assertError(r, 400, MF)
        # Content-Length announcing more than the limit
        r = self.send("/pos/v2/evaluate", b"{}", clen=50 * 1024 * 1024, timeout=10)
        self.assertError(r, 413, "PAYLOAD_TOO_LARGE")
        # chunked upload of a valid document works
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(VALID), VALID)
        head = ["POST /pos/v2/evaluate HTTP/1.1", "Host: 127.0.0.1",
                "Authorization: " + basic_auth("admin"), "Connection: close",
                "Content-Type: application/json", "Transfer-Encoding: chunked"]
        r = raw_http(self.stack.http_port, "\r\n".join(head), chunked)
        self.assertEval(r)
        # a huge header value
        r = self.send("/pos/v2/evaluate", VALID, extra_headers=("X-Junk: " + "j" * 4000,))
        self.assertLess(r.status, 500)

    def test_5_paths_and_query_strings(self):
        # A path or query argument that is not UTF-8 once percent-decoded is
        # refused before any service sees it; every error body is UTF-8, also
        # where it quotes a long name cut to fit.
        s = self.stack
        for path, target, msg in (
                ("/api/v1/Promotions/%FF", None,
                 "the path is not valid UTF-8 (after percent-decoding)"),
                ("/nowhere/%C3", None, "the path is not valid UTF-8 (after percent-decoding)"),
                ("/api/v1/Promotions?$select=%FF", "$select",
                 "query argument $select is not valid UTF-8 (after percent-decoding)"),
                ("/api/v1/Promotions?$orderby=a%E2%82", "$orderby",
                 "query argument $orderby is not valid UTF-8 (after percent-decoding)"),
                ("/api/v1/Promotions?$top=1&%24%FF=1", None,
                 "a query argument's name is not valid UTF-8 (after percent-decoding)"),
                ("/api/v1/Promotions?$filter=name%20eq%20'%FF'", "$filter",
                 "query argument $filter is not valid UTF-8 (after percent-decoding)")):
            with self.subTest(path=path):
                r = s.get(path)
                self.assertError(r, 400, VF, target)
                self.assertEqual(r.body["error"]["message"], msg)
        # a 404 quoting a path of 400 two-byte characters: cut, still UTF-8
        r = s.get("/" + "%C3%A9" * 400)
        self.assertError(r, 404, "NOT_FOUND")
        self.assertEqual(r.raw.decode("utf-8"), r.text)
        self.assertTrue(r.body["error"]["message"].startswith("no resource at /\u00e9\u00e9"))
        s.assert_all_alive()

    def test_9_still_serving(self):
        s = self.stack
        s.assert_all_alive()
        r = s.post("/pos/v2/evaluate", raw=VALID)
        b = self.assertEval(r)
        self.assertEqual(b["lineItems"][0]["lineTotal"], harness.money("1.00"))
        hb = self.assertOk(s.get("/pos/heartbeat"))
        self.assertEqual(hb["status"], "UP")
        s.assert_all_alive()


if __name__ == "__main__":
    harness.main()
