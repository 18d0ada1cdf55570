#!/usr/bin/env python3
# test_openapi.py -- GET /openapi.json serves proto/openapi.yaml (as JSON,
# without authentication); the document names every route of the gateway's
# route table and nothing else, with an operationId, a summary and typed
# answers; the operations no other test calls are called here (their
# answers are checked by openapi_conformance.py with everything else); and
# a bad value of every documented typed parameter is a 400 (a path key
# naming nothing a 404), never a 5xx.
import json
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import openapi_conformance as oc  # noqa: E402
from harness import item, basket, new_id, uniq  # noqa: E402

ROUTES_C = os.path.join(harness.SOURCE_DIR, "services", "gateway", "routes.c")
METHODS = ("get", "put", "post", "delete", "patch")
JSON_CT = "application/json; charset=utf-8"


def route_table():
    """(METHOD, pattern) of every row of the gateway's route table, in
    order, with :entity expanded to the entities it matches."""
    with open(ROUTES_C, encoding="utf-8") as f:
        src = f.read()
    m = re.search(r"entities\[\]\s*=\s*\{([^}]*)\}", src)
    entities = re.findall(r'"(\w+)"', m.group(1))
    rows = re.findall(r'\{\s*"(GET|POST|PUT|PATCH|DELETE)",\s*"(/[^"]*)"', src)
    out = []  # a list: a row twice is a mistake test_every_route_documented names
    for method, pattern in rows:
        for e in (entities if ":entity" in pattern else [None]):
            p = pattern.replace(":entity", e) if e else pattern
            out.append((method, p))
    return out


def shape(path):
    """A path with its variables (":id", "{key}") as "*"."""
    return "/".join("*" if s.startswith((":", "{")) else s
                    for s in path.split("/"))


def walk_schemas(node, where, out):
    """Yields (where, schema) for every schema object below node."""
    if isinstance(node, dict):
        if "schema" in node and isinstance(node["schema"], dict):
            out.append((where + ".schema", node["schema"]))
        for k, v in node.items():
            walk_schemas(v, "%s.%s" % (where, k), out)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk_schemas(v, "%s[%d]" % (where, i), out)


def sub_schemas(s, where):
    yield where, s
    for k in ("properties",):
        for n, x in s.get(k, {}).items():
            yield from sub_schemas(x, "%s.%s" % (where, n))
    if isinstance(s.get("items"), dict):
        yield from sub_schemas(s["items"], where + "[]")
    if isinstance(s.get("additionalProperties"), dict):
        yield from sub_schemas(s["additionalProperties"], where + "{}")
    for k in ("allOf", "oneOf", "anyOf"):
        for i, x in enumerate(s.get(k, [])):
            yield from sub_schemas(x, "%s.%s[%d]" % (where, k, i))


class OpenApi(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.doc = oc.load_doc()
        cls.ops = {}
        for p, it in cls.doc["paths"].items():
            for m in METHODS:
                if m in it:
                    cls.ops[(m.upper(), p)] = it[m]

    # -- served ---------------------------------------------------------------
    def test_served_without_auth(self):
        for user, pw in ((None, None), ("admin", "wrong")):
            r = self.stack.request("GET", "/openapi.json", user=user,
                                   password=pw)
            self.assertStatus(r, 200)
            self.assertEqual(r.headers.get("content-type"), JSON_CT)
            self.assertNotIn("www-authenticate", r.headers)
            self.assertEqual(json.loads(r.text), self.doc,
                             "the served document is not proto/openapi.yaml")

    def test_other_methods_refused(self):
        r = self.stack.request("POST", "/openapi.json", body={}, user=None)
        self.assertError(r, 405, "METHOD_NOT_ALLOWED")
        r = self.stack.request("DELETE", "/openapi.json", user="admin")
        self.assertError(r, 405, "METHOD_NOT_ALLOWED")

    # -- complete -------------------------------------------------------------
    def test_every_route_documented(self):
        table = [(m, p) for m, p in route_table()]
        # A second row for a method and path is dead (the first wins):
        # one row each.
        self.assertEqual(sorted(r for r in set(table) if table.count(r) > 1), [],
                         "routes with more than one row")
        routes = {(m, shape(p)) for m, p in table}
        self.assertGreater(len(routes), 50)
        documented = {(m, shape(p)) for m, p in self.ops}
        self.assertEqual(sorted(routes - documented), [],
                         "routes without an operation")
        self.assertEqual(sorted(documented - routes), [],
                         "operations without a route")

    def test_every_operation_typed(self):
        ids = [o.get("operationId") for o in self.ops.values()]
        self.assertNotIn(None, ids, "operations without operationId")
        self.assertEqual(len(ids), len(set(ids)), "operationIds repeat")
        problems = []
        for (m, p), o in sorted(self.ops.items()):
            name = "%s %s" % (m, p)
            if not o.get("summary", "").strip():
                problems.append("%s: no summary" % name)
            rs = o.get("responses", {})
            if "default" in rs or not rs:
                problems.append("%s: default or no responses" % name)
            for st, r in rs.items():
                r = self.resolve(r)
                if st == "204":
                    if "content" in r:
                        problems.append("%s %s: content on 204" % (name, st))
                    continue
                c = r.get("content", {})
                if not c or any("schema" not in x for x in c.values()):
                    problems.append("%s %s: no response schema" % (name, st))
            # Public: the document, the token endpoint (the client
            # authenticates in the request), the token keys, the probes
            # and the console's static files.
            if ("security" in o) != (p in ("/openapi.json", "/oauth/token",
                                           "/.well-known/jwks.json", "/healthz",
                                           "/readyz", "/console",
                                           "/console/{file}")):
                problems.append("%s: security overridden" % name)
        # No untyped object: an object states its properties or that it
        # is a free-form map (additionalProperties).
        found = []
        walk_schemas(self.doc["paths"], "paths", found)
        for n, s in self.doc["components"]["schemas"].items():
            found.append(("components.schemas." + n, s))
        for where, s in found:
            for w, x in sub_schemas(s, where):
                if "$ref" in x:
                    try:
                        self.resolve(x)
                    except KeyError:
                        problems.append("%s: dangling %s" % (w, x["$ref"]))
                    continue
                if not any(k in x for k in ("type", "allOf", "oneOf", "anyOf")):
                    problems.append("%s: no type" % w)
                if x.get("type") == "object" and "properties" not in x \
                        and "additionalProperties" not in x:
                    problems.append("%s: untyped object" % w)
        self.assertEqual(problems, [])

    def resolve(self, x):
        while "$ref" in x:
            node = self.doc
            for part in x["$ref"][2:].split("/"):
                node = node[part]
            x = node
        return x

    # -- the operations no other test calls ----------------------------------
    def test_odata_action_aliases(self):
        s = self.stack
        pg = self.pos_group()
        txn = uniq("OA")
        req = basket(pg["id"], [item("L1", "ART-1", 1, "2.50")], txn=txn)
        r = s.post("/pos/simulate", {"request": req})
        b = self.assertEval(r, simulation=True)
        self.assertEqual(b["meta"]["header"]["transactionCounter"], 1)
        r = s.post("/pos/evaluate", {"request": req})
        b = self.assertEval(r)
        self.assertEqual(b["meta"]["header"],
                         {"transactionId": txn, "transactionCounter": 1})
        conf = {"header": {"transactionId": txn, "transactionCounter": 1},
                "transactionId": txn, "appliedPromotions": []}
        r = s.post("/pos/confirm", {"request": conf})
        self.assertStatus(r, 200)
        self.assertEqual((r.body["transactionId"], r.body["confirmed"]),
                         (txn, True))
        r = s.post("/pos/confirm", {"request": dict(conf, header={
            "transactionId": txn, "transactionCounter": 2})})
        self.assertError(r, 409, "CONFLICT", "header.transactionCounter")
        other = uniq("OA")
        r = s.post("/pos/confirm", {"request": dict(conf, transactionId=other, header={
            "transactionId": other, "transactionCounter": 1})})
        self.assertError(r, 404, "NOT_FOUND")

    def test_article_group_lifecycle(self):
        s = self.stack
        code = uniq("AG")[:20]
        r = s.post("/api/v1/ArticleGroups", {"articleGroupId": code, "name": "Drinks"})
        self.assertStatus(r, 201)
        r = s.get("/api/v1/ArticleGroups?$filter=" + urllib.parse.quote(
            "articleGroupId eq '%s'" % code))
        self.assertStatus(r, 200)
        self.assertEqual([g["articleGroupId"] for g in r.body["value"]], [code])
        r = s.request("PATCH", "/api/v1/ArticleGroups/" + code, {"name": "Soft drinks"})
        self.assertStatus(r, 200)
        self.assertEqual(r.body["name"], "Soft drinks")
        etag = r.headers["etag"]
        r = s.request("PUT", "/api/v1/ArticleGroups/" + code,
                      {"articleGroupId": code, "name": "Water"},
                      headers={"If-Match": etag})
        self.assertStatus(r, 200)
        self.assertEqual((r.body["name"], r.body["description"]), ("Water", None))
        r = s.request("DELETE", "/api/v1/ArticleGroups/" + code,
                      headers={"If-Match": etag})
        self.assertError(r, 412, "PRECONDITION_FAILED", "If-Match")
        r = s.request("DELETE", "/api/v1/ArticleGroups/" + code)
        self.assertStatus(r, 204)
        self.assertEqual(r.raw, b"")
        self.assertError(s.get("/api/v1/ArticleGroups/" + code), 404, "NOT_FOUND")

    def test_coupon_code_put_cancels(self):
        s = self.stack
        r = s.post("/api/v1/CouponTypes", {"name": uniq("OAType"), "type": "INDIVIDUAL"})
        self.assertStatus(r, 201)
        code = uniq("OAC")
        r = s.post("/api/v1/CouponCodes", {"couponTypeId": r.body["id"], "code": code})
        self.assertStatus(r, 201)
        r = s.request("PUT", "/api/v1/CouponCodes/" + code, {"status": "ACTIVE"})
        self.assertError(r, 400, "VALIDATION_FAILED", "status")
        r = s.request("PUT", "/api/v1/CouponCodes/" + code, {"status": "CANCELLED"})
        self.assertStatus(r, 200)
        self.assertEqual((r.body["code"], r.body["status"]), (code, "CANCELLED"))

    # -- bad input on every parameter ------------------------------------------
    BAD_STRINGS = {"$filter": "name eq", "$orderby": "colour",
                   "$select": "colour", "groupBy": "colour"}

    def bad_values(self, p):
        """Values of parameter p that must be refused with 400."""
        sch = self.resolve(p.get("schema", {}))
        if p["name"] in self.BAD_STRINGS:
            return [self.BAD_STRINGS[p["name"]]]
        if sch.get("type") == "integer":
            return ["abc", "-1", "1.5", "99999999999999999999999"]
        if sch.get("type") == "boolean":
            return ["maybe"]
        if "enum" in sch:
            return ["BOGUS"]
        if sch.get("format") == "date":
            return ["2026-13-45", "yesterday"]
        return []

    def test_bad_parameters(self):
        s = self.stack
        checked = 0
        for (m, p), o in sorted(self.ops.items()):
            if p == "/openapi.json":
                continue
            params = [self.resolve(x) for x in
                      self.doc["paths"][p].get("parameters", []) + o.get("parameters", [])]
            path = p
            for x in params:
                if x["in"] == "path":
                    v = "1" if x["name"] == "transactionCounter" else "no-such-" + new_id()
                    path = path.replace("{%s}" % x["name"], v)
            body = {} if "requestBody" in o else None
            # A key naming nothing: 404, or 400 when it cannot be a key.
            if "{" in p:
                r = s.request(m, path, body=body)
                self.assertIn(r.status, (400, 404), "%s %s: %r" % (m, path, r))
                if p.startswith("/merchant/"):
                    # The POS-platform bridge's shape (PRODUCT-DECISIONS §10):
                    # an unknown promotion, or the empty body refused first.
                    self.assertEqual(r.body, {
                        "errorCode": "PROMOTION_NOT_FOUND" if r.status == 404
                        else "MISSING_FIELD", "errorMessage": r.body["errorMessage"]})
                    checked += 1
                    continue
                # Engage's names are the codes of /api/v3 (PRODUCT-DECISIONS §8)
                nf = ("ContactNotFound" if p.startswith("/api/v3/contacts")
                      else "PromotionNotFound"
                      if p.startswith("/api/v3/promotion-assignments") else "NOT_FOUND")
                self.assertError(r, r.status, nf if r.status == 404
                                 else "VALIDATION_FAILED")
                checked += 1
                for x in params:
                    if x["in"] == "path":
                        for v in self.bad_values(x):
                            bad = p.replace("{%s}" % x["name"], urllib.parse.quote(v))
                            for y in params:
                                if y["in"] == "path" and y is not x:
                                    bad = bad.replace("{%s}" % y["name"], "T1")
                            r = s.request(m, bad, body=body)
                            self.assertError(r, 400, "VALIDATION_FAILED", x["name"])
                            checked += 1
            if m != "GET":
                continue
            for x in params:
                if x["in"] != "query":
                    continue
                for v in self.bad_values(x):
                    url = "%s?%s=%s" % (path, urllib.parse.quote(x["name"]),
                                        urllib.parse.quote(v))
                    r = s.request(m, url)
                    if "{" in p and r.status == 404:
                        continue  # the key is looked up first
                    self.assertError(r, 400, "VALIDATION_FAILED", x["name"])
                    checked += 1
        self.assertGreater(checked, 60)


if __name__ == "__main__":
    harness.main()
