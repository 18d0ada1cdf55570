#!/usr/bin/env python3
# test_validation.py -- authentication, authorisation, routing errors, request
# validation (PRODUCT-DECISIONS §1: exact status, code and target), the
# /api/v1 master-data CRUD and the POS article import (seed 002).
import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import (ISO_RE, UUID_RE, basket, item, load_data,  # noqa: E402
                     new_id, pct_action, promotion, uniq)

MINOR = 13


def valid_req(pos_group="60000000-0000-4000-8000-0000000000aa"):
    return {"posGroupId": pos_group,
            "items": [{"lineReference": "L1", "articleNumber": "ART-1",
                       "quantity": 1, "unitPrice": 1.00},
                      {"lineReference": "L2", "articleNumber": "ART-2",
                       "quantity": 2, "unitPrice": 2.50}]}


class Auth(harness.TestCase):
    def test_401_without_credentials(self):
        s = self.stack
        for method, path, body in (("POST", "/pos/v2/evaluate", {"request": valid_req()}),
                                   ("GET", "/pos/heartbeat", None),
                                   ("GET", "/api/v1/Promotions", None),
                                   ("POST", "/api/v1/Promotions", {})):
            r = s.request(method, path, body, user=None)
            self.assertError(r, 401, "UNAUTHORIZED")
            self.assertRegex(r.headers.get("www-authenticate", ""), r"^Basic realm=")

    def test_401_wrong_password_and_unknown_user(self):
        s = self.stack
        for user, pw in (("admin", "wrong"), ("admin", ""), ("nobody", "admin"),
                         ("pos-reader", "admin")):
            r = s.request("POST", "/pos/v2/evaluate", {"request": valid_req()},
                          user=user, password=pw)
            self.assertError(r, 401, "UNAUTHORIZED")
            self.assertIn("www-authenticate", r.headers)
        for hdr in ("Basic", "Basic !!!notbase64", "Bearer abc.def.ghi", "Digest x",
                    "Basic " + "QQ==" * 2000):
            r = s.request("POST", "/pos/v2/evaluate", {"request": valid_req()}, user=None,
                          headers={"Authorization": hdr})
            self.assertError(r, 401, "UNAUTHORIZED")

    def test_roles(self):
        s = self.stack
        r = s.evaluate(valid_req(), user="promo-manager")
        self.assertError(r, 403, "FORBIDDEN")
        r = s.simulate(valid_req(), user="budget-manager")
        self.assertError(r, 403, "FORBIDDEN")
        r = s.post("/pos/articles/import", {"articles": []}, user="api-writer")
        self.assertError(r, 403, "FORBIDDEN")
        r = s.post("/api/v1/Promotions", promotion("x", [], [pct_action(1)]), user="pos-reader")
        self.assertError(r, 403, "FORBIDDEN")
        # allowed: POS reader and admin on /pos, writers on /api/v1
        self.assertEval(s.evaluate(valid_req(), user="pos-reader"))
        self.assertEval(s.simulate(valid_req(), user="admin"), simulation=True)
        for u in ("admin", "api-writer"):
            doc = promotion(uniq("by " + u), [], [pct_action(1)], status="DRAFT")
            r = s.post("/api/v1/Promotions", doc, user=u)
            self.assertStatus(r, 201)

    def test_404_405_415(self):
        s = self.stack
        for path in ("/nope", "/pos/v2/evaluatex", "/pos/v3/evaluate", "/api/v1/Nothing",
                     "/odata/v4/admin/Promotions", "/"):
            r = s.get(path)
            self.assertError(r, 404, "NOT_FOUND")
        r = s.post("/pos/v9/evaluate", {"request": valid_req()})
        self.assertError(r, 404, "NOT_FOUND")
        for method, path in (("GET", "/pos/v2/evaluate"), ("PUT", "/pos/v2/evaluate"),
                             ("DELETE", "/pos/v2/simulate"), ("POST", "/pos/heartbeat"),
                             ("GET", "/pos/articles/import")):
            r = s.request(method, path)
            self.assertError(r, 405, "METHOD_NOT_ALLOWED")
        body = harness.dumps({"request": valid_req()}).encode()
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/xml",
                      None):
            r = s.post("/pos/v2/evaluate", raw=body, content_type=ctype)
            self.assertError(r, 415, "UNSUPPORTED_MEDIA_TYPE")
        r = s.post("/pos/v2/evaluate", raw=body, content_type="application/json; charset=utf-8")
        self.assertEval(r)
        r = s.post("/api/v1/PosGroups", raw=b'{"code":"X"}', content_type="text/plain")
        self.assertError(r, 415, "UNSUPPORTED_MEDIA_TYPE")


class RequestValidation(harness.TestCase):
    def bad(self, req_or_body, target, code="VALIDATION_FAILED", status=400,
            wrap=True, path="/pos/v2/evaluate"):
        body = {"request": req_or_body} if wrap else req_or_body
        r = self.stack.post(path, body)
        return self.assertError(r, status, code, target)

    def test_missing_request(self):
        self.bad({}, "request", wrap=False)
        self.bad({"items": valid_req()["items"], "posGroupId": new_id()}, "request", wrap=False)
        self.bad({"request": None}, "request", wrap=False)
        self.bad({"request": []}, "request", wrap=False)

    def test_items(self):
        r = valid_req()
        r["items"] = []
        self.bad(r, "items")
        del r["items"]
        self.bad(r, "items")
        r["items"] = {"articleNumber": "A"}
        self.bad(r, "items")

    def test_quantity_zero(self):
        for zero in (0, 0.0, "0", 0.000, -0):
            r = valid_req()
            r["items"][1]["quantity"] = zero
            self.bad(r, "items[1].quantity")
        r = valid_req()
        raw = harness.dumps({"request": r}).replace('"quantity": 2', '"quantity": -0.000')
        resp = self.stack.post("/pos/v2/evaluate", raw=raw.encode())
        self.assertError(resp, 400, "VALIDATION_FAILED", "items[1].quantity")

    def test_item_fields(self):
        r = valid_req()
        del r["items"][0]["articleNumber"]
        self.bad(r, "items[0].articleNumber")
        r = valid_req()
        r["items"][1]["articleNumber"] = ""
        self.bad(r, "items[1].articleNumber")
        r = valid_req()
        r["items"][0]["unitPrice"] = "1.00x"
        self.bad(r, "items[0].unitPrice")
        r = valid_req()
        r["items"][0]["unitPrice"] = True
        self.bad(r, "items[0].unitPrice")
        r = valid_req()
        del r["items"][1]["unitPrice"]
        self.bad(r, "items[1].unitPrice")
        r = valid_req()
        del r["items"][0]["quantity"]
        self.bad(r, "items[0].quantity")
        r = valid_req()
        r["items"][0]["articleNumber"] = "A" * 51
        self.bad(r, "items[0].articleNumber")
        r = valid_req()
        r["items"][0]["articleNumber"] = "Ä" * 50  # 50 characters, 100 bytes: fine
        self.assertEval(self.stack.evaluate(r))
        r = valid_req()
        r["items"][1]["lineReference"] = "R" * 51
        self.bad(r, "items[1].lineReference")
        r = valid_req()
        r["items"][0]["ean"] = "1" * 19
        self.bad(r, "items[0].ean")
        r = valid_req()
        r["items"][0]["articleGroupId"] = "G" * 21
        self.bad(r, "items[0].articleGroupId")

    def test_coupons_as_strings(self):
        r = valid_req()
        r["coupons"] = ["WELCOME15", "SUMMER25"]
        self.bad(r, "coupons")
        r["coupons"] = {"code": "X"}
        self.bad(r, "coupons")

    def test_pos_group_missing(self):
        r = valid_req()
        del r["posGroupId"]
        self.bad(r, "posGroupId")
        r["posGroupId"] = None
        self.bad(r, "posGroupId")
        r["posGroupId"] = "not-a-uuid"
        self.bad(r, "posGroupId")
        del r["posGroupId"]
        r["posGroupCode"] = "C" * 21
        self.bad(r, "posGroupCode")

    def test_transaction_counter_on_evaluate(self):
        r = valid_req()
        r["header"] = {"transactionId": "T-1", "transactionCounter": 1}
        self.bad(r, "header.transactionCounter")
        r = valid_req()
        r["header"] = {"transactionId": "T" * 51}
        self.bad(r, "header.transactionId")
        r["header"] = {"transactionId": "T", "receiptId": "R" * 51}
        self.bad(r, "header.receiptId")
        r["header"] = {"transactionId": "T", "headerReference": "H" * 101}
        self.bad(r, "header.headerReference")
        r["header"] = {"transactionId": "T", "transactionCounter": 1}
        resp = self.stack.simulate(r)
        self.assertError(resp, 400, "VALIDATION_FAILED", "header.transactionCounter")

    def test_unknown_fields_ignored(self):
        r = valid_req()
        r["futureField"] = {"x": [1, 2]}
        r["items"][0]["somethingNew"] = True
        b = self.assertEval(self.stack.evaluate(r))
        self.assertEqual(len(b["lineItems"]), 2)
        b = self.assertEval(self.stack.post("/pos/v2/evaluate",
                                            {"request": valid_req(), "extra": 1}))
        self.assertEqual(b["lineItems"][1]["lineTotal"], harness.money("5.00"))


class Catalog(harness.TestCase):
    def check_doc(self, body, sent):
        self.assertEqual(body.get("minorVersion"), MINOR)
        for k, v in sent.items():
            if k in ("validFrom", "validTo"):  # normalised to milliseconds
                self.assertEqual(harness.instant(v), harness.instant(body.get(k)), k)
                continue
            # the stored normal form may add defaults (e.g. minQuantity 0)
            self.assertJson(v, body.get(k), "field %s" % k, subset=True)
        self.assertRegex(body.get("createdAt", ""), ISO_RE)
        self.assertRegex(body.get("modifiedAt", ""), ISO_RE)

    def test_promotion_crud(self):
        s = self.stack
        doc = load_data("seed002_promotion.json")
        doc["id"] = new_id()
        doc["description"] = "first"
        r = s.post("/api/v1/Promotions", doc)
        self.assertStatus(r, 201)
        self.check_doc(r.body, doc)
        created = r.body
        r = s.get("/api/v1/Promotions/" + doc["id"])
        b = self.assertOk(r)
        self.check_doc(b, doc)
        self.assertEqual(b["createdAt"], created["createdAt"])
        # duplicate id
        r = s.post("/api/v1/Promotions", doc)
        self.assertError(r, 409, "CONFLICT")
        # PATCH merges
        r = s.request("PATCH", "/api/v1/Promotions/" + doc["id"], {"name": "Renamed"})
        b = self.assertOk(r)
        self.check_doc(b, dict(doc, name="Renamed"))
        self.assertEqual(b["createdAt"], created["createdAt"])
        self.assertGreaterEqual(b["modifiedAt"], created["modifiedAt"])
        # PUT replaces (description gone)
        put = copy.deepcopy(doc)
        del put["description"]
        put["name"] = "Replaced"
        r = s.request("PUT", "/api/v1/Promotions/" + doc["id"], put)
        b = self.assertOk(r)
        self.check_doc(b, put)
        self.assertNotIn("description", {k for k, v in b.items() if v is not None})
        # activate / deactivate
        r = s.post("/api/v1/Promotions/%s/deactivate" % doc["id"])
        self.assertEqual(self.assertOk(r)["status"], "INACTIVE")
        self.assertEqual(self.assertOk(s.get("/api/v1/Promotions/" + doc["id"]))["status"],
                         "INACTIVE")
        r = s.post("/api/v1/Promotions/%s/activate" % doc["id"])
        self.assertEqual(self.assertOk(r)["status"], "ACTIVE")
        # delete
        r = s.request("DELETE", "/api/v1/Promotions/" + doc["id"])
        self.assertStatus(r, 204)
        self.assertError(s.get("/api/v1/Promotions/" + doc["id"]), 404, "NOT_FOUND")
        self.assertError(s.request("DELETE", "/api/v1/Promotions/" + doc["id"]), 404, "NOT_FOUND")
        self.assertError(s.request("PATCH", "/api/v1/Promotions/" + doc["id"], {"name": "x"}),
                         404, "NOT_FOUND")
        self.assertError(s.post("/api/v1/Promotions/%s/activate" % doc["id"]), 404, "NOT_FOUND")
        self.assertError(s.get("/api/v1/Promotions/" + new_id()), 404, "NOT_FOUND")

    def test_promotion_generated_id(self):
        doc = promotion("no id", [], [pct_action(5)], status="DRAFT")
        del doc["id"]
        r = self.stack.post("/api/v1/Promotions", doc)
        self.assertStatus(r, 201)
        self.assertRegex(r.body["id"], UUID_RE)
        self.assertOk(self.stack.get("/api/v1/Promotions/" + r.body["id"]))

    def test_promotion_list(self):
        s = self.stack
        mine = []
        for i, st in enumerate(("DRAFT", "ACTIVE", "DRAFT")):
            d = promotion("list-%d" % i, [], [pct_action(5)], status=st)
            s.create_promotion(d)
            mine.append(d)
        b = self.assertOk(s.get("/api/v1/Promotions?$top=1000"))
        self.assertEqual(set(b), {"minorVersion", "count", "value"})
        self.assertEqual(b["minorVersion"], MINOR)
        all_ids = [p["id"] for p in b["value"]]
        self.assertEqual(b["count"], len(all_ids))
        self.assertEqual(len(all_ids), len(set(all_ids)))
        for d in mine:
            self.assertIn(d["id"], all_ids)
        n = len(all_ids)
        b = self.assertOk(s.get("/api/v1/Promotions?$top=1"))
        self.assertEqual([p["id"] for p in b["value"]], all_ids[:1])
        self.assertEqual(b["count"], n)
        b = self.assertOk(s.get("/api/v1/Promotions?$top=2&$skip=1"))
        self.assertEqual([p["id"] for p in b["value"]], all_ids[1:3])
        b = self.assertOk(s.get("/api/v1/Promotions?$skip=%d" % n))
        self.assertEqual(b["value"], [])
        b = self.assertOk(s.get("/api/v1/Promotions?status=DRAFT"))
        ids = [p["id"] for p in b["value"]]
        self.assertTrue(all(p["status"] == "DRAFT" for p in b["value"]))
        self.assertIn(mine[0]["id"], ids)
        self.assertIn(mine[2]["id"], ids)
        self.assertNotIn(mine[1]["id"], ids)
        for q in ("$top=-1", "$top=abc", "$skip=-3", "$skip=1x"):
            self.assertError(s.get("/api/v1/Promotions?" + q), 400, "VALIDATION_FAILED",
                             q.split("=")[0])
        self.assertError(s.get("/api/v1/Promotions?status=NOPE"), 400, "VALIDATION_FAILED",
                         "status")

    def test_promotion_document_errors(self):
        s = self.stack
        base = promotion("bad", [{"type": "ARTICLE", "values": ["A"]}],
                         [pct_action(10, articles=["A"])], status="DRAFT")
        cases = [
            ("actions[0].value", lambda d: d["actions"][0].pop("value")),
            ("actions[0].value", lambda d: d["actions"][0].update(value=-1)),
            ("actions[0].value", lambda d: d["actions"][0].update(value=100.01)),
            ("actions[0].value", lambda d: d["actions"][0].update(value="ten")),
            ("actions[0].value", lambda d: d["actions"][0].update(value=1.001)),
            ("actions[0].discountType", lambda d: d["actions"][0].update(discountType="HALF")),
            ("actions[0].type", lambda d: d["actions"][0].update(type="MAGIC")),
            ("actions", lambda d: d.update(actions="x")),
            ("conditions[0].type", lambda d: d["conditions"][0].update(type="WEATHER")),
            ("conditions", lambda d: d.update(conditions={})),
            ("type", lambda d: d.update(type="SOMETHING")),
            ("status", lambda d: d.update(status="LIVE")),
            ("name", lambda d: d.pop("name")),
            ("name", lambda d: d.update(name="N" * 256)),
            ("validFrom", lambda d: d.update(validFrom="yesterday")),
            ("validTo", lambda d: d.update(validTo="2026-13-45T00:00:00Z")),
            ("id", lambda d: d.update(id="not-a-uuid")),
            ("posGroups", lambda d: d.update(posGroups="STORE-001")),
            ("priority", lambda d: d.update(priority="high")),
            ("calculationConfig.rounding",
             lambda d: d.update(calculationConfig={"mode": "ADDITIVE", "rounding": "BANKERS"})),
        ]
        for target, mutate in cases:
            d = copy.deepcopy(base)
            d["id"] = new_id()
            mutate(d)
            r = s.post("/api/v1/Promotions", d)
            with self.subTest(target=target, doc=harness.dumps(d)):
                self.assertError(r, 400, "VALIDATION_FAILED", target)
        # the same checks on update
        good = copy.deepcopy(base)
        s.create_promotion(good)
        r = s.request("PATCH", "/api/v1/Promotions/" + good["id"],
                      {"actions": [{"type": "ARTICLE", "discountType": "PERCENTAGE",
                                    "value": 101}]})
        self.assertError(r, 400, "VALIDATION_FAILED", "actions[0].value")
        self.assertError(s.post("/api/v1/Promotions", [base]), 400, "VALIDATION_FAILED")
        self.assertError(s.post("/api/v1/Promotions", raw=b'{"name":'), 400, "MALFORMED_JSON")

    def test_pos_group_crud(self):
        s = self.stack
        g = {"id": new_id(), "code": uniq("PG")[:20], "name": "Group", "stores": ["S1", "S2"]}
        r = s.post("/api/v1/PosGroups", g)
        self.assertStatus(r, 201)
        self.check_doc(r.body, g)
        self.check_doc(self.assertOk(s.get("/api/v1/PosGroups/" + g["id"])), g)
        # duplicate id, duplicate code
        self.assertError(s.post("/api/v1/PosGroups", g), 409, "CONFLICT")
        self.assertError(s.post("/api/v1/PosGroups", dict(g, id=new_id())), 409, "CONFLICT")
        self.assertError(s.post("/api/v1/PosGroups", dict(g, id=new_id(), code="C" * 21)),
                         400, "VALIDATION_FAILED", "code")
        b = self.assertOk(s.get("/api/v1/PosGroups"))
        self.assertIn(g["id"], [x["id"] for x in b["value"]])
        b = self.assertOk(s.request("PATCH", "/api/v1/PosGroups/" + g["id"], {"name": "New"}))
        self.check_doc(b, dict(g, name="New"))
        self.assertStatus(s.request("DELETE", "/api/v1/PosGroups/" + g["id"]), 204)
        self.assertError(s.get("/api/v1/PosGroups/" + g["id"]), 404, "NOT_FOUND")

    def test_article_group_and_article_crud(self):
        s = self.stack
        ag = {"articleGroupId": uniq("AG")[:20], "name": "Drinks"}
        r = s.post("/api/v1/ArticleGroups", ag)
        self.assertStatus(r, 201)
        self.check_doc(r.body, ag)
        self.check_doc(self.assertOk(s.get("/api/v1/ArticleGroups/" + ag["articleGroupId"])), ag)
        self.assertError(s.post("/api/v1/ArticleGroups", ag), 409, "CONFLICT")
        art = {"articleNumber": uniq("ART"), "name": "Cola", "ean": "4000000000001",
               "manufacturer": "Fizz", "articleGroupId": ag["articleGroupId"],
               "referencePrice": 1.29}
        r = s.post("/api/v1/Articles", art)
        self.assertStatus(r, 201)
        self.check_doc(r.body, art)
        self.check_doc(self.assertOk(s.get("/api/v1/Articles/" + art["articleNumber"])), art)
        self.assertError(s.post("/api/v1/Articles", art), 409, "CONFLICT")
        self.assertError(s.post("/api/v1/Articles", dict(art, articleNumber="A" * 51)),
                         400, "VALIDATION_FAILED", "articleNumber")
        self.assertStatus(s.request("DELETE", "/api/v1/Articles/" + art["articleNumber"]), 204)
        self.assertError(s.get("/api/v1/Articles/" + art["articleNumber"]), 404, "NOT_FOUND")

    def test_article_import(self):
        s = self.stack
        a1 = uniq("ART")
        a2 = uniq("ART")
        body = load_data("seed002_import.json")
        body["articles"][0]["articleNumber"] = a1
        body["articles"].append({"name": "no number"})
        body["articles"].append({"articleNumber": a2, "name": "Chips", "ean": "4001954600107"})
        r = s.post("/pos/articles/import", body)
        b = self.assertOk(r)
        self.assertEqual(set(b) - {"minorVersion"},
                         {"imported", "updated", "failed", "results", "errors"})
        self.assertEqual((b["imported"], b["updated"], b["failed"]), (2, 0, 1))
        res = b["results"]
        self.assertEqual(len(res), 3)
        self.assertEqual(res[0]["articleNumber"], a1)
        self.assertEqual(res[0]["status"], "created")
        self.assertRegex(res[0]["id"], UUID_RE)
        self.assertIsNone(res[0]["error"])
        self.assertEqual(res[1]["status"], "failed")
        self.assertIsInstance(res[1]["error"], str)
        self.assertTrue(res[1]["error"])
        self.assertEqual(res[2]["articleNumber"], a2)
        self.assertEqual(res[2]["status"], "created")
        self.assertEqual(len(b["errors"]), 1)
        first_id = res[0]["id"]
        art = self.assertOk(s.get("/api/v1/Articles/" + a1))
        self.assertEqual(art["name"], "Mineral Water 0.5L")
        self.assertEqual(art["manufacturer"], "Spring Corp")
        self.assertEqual(art["id"], first_id)
        # second import: update by articleNumber
        body2 = {"articles": [dict(load_data("seed002_import.json")["articles"][0],
                                   articleNumber=a1, name="Mineral Water 1L")]}
        b = self.assertOk(s.post("/pos/articles/import", body2))
        self.assertEqual((b["imported"], b["updated"], b["failed"]), (0, 1, 0))
        self.assertEqual(b["results"], [{"articleNumber": a1, "status": "updated",
                                         "id": first_id, "error": None}])
        self.assertEqual(b["errors"], [])
        self.assertEqual(self.assertOk(s.get("/api/v1/Articles/" + a1))["name"],
                         "Mineral Water 1L")
        # shape errors
        self.assertError(s.post("/pos/articles/import", {"articles": "x"}), 400,
                         "VALIDATION_FAILED", "articles")
        self.assertError(s.post("/pos/articles/import", {}), 400, "VALIDATION_FAILED",
                         "articles")
        b = self.assertOk(s.post("/pos/articles/import", {"articles": []}))
        self.assertEqual((b["imported"], b["updated"], b["failed"], b["results"], b["errors"]),
                         (0, 0, 0, [], []))

    def test_seed_import_example(self):
        # the seed's example verbatim: a fresh article -> exactly the seed's shape
        s = self.stack
        r = s.post("/pos/articles/import", load_data("seed002_import.json"))
        b = self.assertOk(r)
        self.assertEqual(set(b) - {"minorVersion"},
                         {"imported", "updated", "failed", "results", "errors"})
        self.assertEqual(b["imported"], 1)
        self.assertEqual(b["updated"], 0)
        self.assertEqual(b["failed"], 0)
        self.assertEqual(len(b["results"]), 1)
        # seed: "Each results[] entry is { articleNumber, status, id, error }"
        self.assertEqual(set(b["results"][0]), {"articleNumber", "status", "id", "error"})
        self.assertIsNone(b["results"][0]["error"])
        self.assertEqual(b["results"][0]["articleNumber"], "ART-10006")
        self.assertEqual(b["results"][0]["status"], "created")
        self.assertRegex(b["results"][0]["id"], UUID_RE)
        self.assertEqual(b["errors"], [])


if __name__ == "__main__":
    harness.main()
