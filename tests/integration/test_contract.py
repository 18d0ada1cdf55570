#!/usr/bin/env python3
# test_contract.py -- issue 10 (contract and consistency), the parts built so
# far: strict master data (an unknown field is a 400 naming it, with a
# did-you-mean; what a read answers can be written back); an article
# re-import or PATCH changes only the fields it names (null clears).
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import uniq  # noqa: E402


class Contract(harness.TestCase):
    def article(self, number):
        return self.assertOk(self.stack.get("/api/v1/Articles/" + number))

    def test_article_reimport_keeps_what_it_was_not_told(self):
        s = self.stack
        a = uniq("ART")
        full = {"articleNumber": a, "name": "Water", "ean": "4001954600106",
                "manufacturer": "Spring Corp", "category": "Beverages",
                "articleGroupId": "DRINKS", "referencePrice": harness.D("1.20")}
        b = self.assertOk(s.post("/pos/articles/import", {"articles": [full]}))
        self.assertEqual(b["results"][0]["status"], "created")
        first = self.article(a)
        # Re-import naming only the name: everything else stays.
        b = self.assertOk(s.post("/pos/articles/import",
                                 {"articles": [{"articleNumber": a, "name": "Still water"}]}))
        self.assertEqual((b["imported"], b["updated"], b["failed"]), (0, 1, 0))
        after = self.article(a)
        self.assertEqual({k: v for k, v in after.items() if k != "modifiedAt"},
                         dict({k: v for k, v in first.items() if k != "modifiedAt"},
                              name="Still water"))
        # null clears a field; the others stay.
        b = self.assertOk(s.post("/pos/articles/import",
                                 {"articles": [{"articleNumber": a, "ean": None,
                                                "category": "Water"}]}))
        self.assertEqual(b["failed"], 0, b)
        after = self.article(a)
        self.assertEqual((after["name"], after["ean"], after["manufacturer"],
                          after["category"], after["referencePrice"]),
                         ("Still water", None, "Spring Corp", "Water", harness.D("1.20")))
        # A required field cannot be cleared: that row fails, nothing changes.
        b = self.assertOk(s.post("/pos/articles/import",
                                 {"articles": [{"articleNumber": a, "name": None}]}))
        self.assertEqual((b["imported"], b["updated"], b["failed"]), (0, 0, 1))
        self.assertEqual(b["errors"][0]["target"], "articles[0].name")
        self.assertEqual(self.article(a)["name"], "Still water")
        # A new article still needs its required fields.
        b = self.assertOk(s.post("/pos/articles/import",
                                 {"articles": [{"articleNumber": uniq("ART")}]}))
        self.assertEqual((b["imported"], b["failed"]), (0, 1))
        self.assertEqual(b["errors"][0]["target"], "articles[0].name")

    def test_patch_changes_only_what_it_names(self):
        s = self.stack
        a = uniq("ART")
        r = s.post("/api/v1/Articles", {"articleNumber": a, "name": "Chips",
                                        "ean": "4001954600107", "manufacturer": "Crisp"})
        self.assertEqual(r.status, 201, r)
        r = s.request("PATCH", "/api/v1/Articles/" + a, {"name": "Salted chips"})
        self.assertEqual(self.assertOk(r)["ean"], "4001954600107")
        self.assertEqual((self.article(a)["name"], self.article(a)["manufacturer"]),
                         ("Salted chips", "Crisp"))
        r = s.request("PATCH", "/api/v1/Articles/" + a, {"manufacturer": None})
        self.assertEqual(self.assertOk(r)["manufacturer"], None)
        self.assertEqual(self.article(a)["ean"], "4001954600107")
        # POS groups and budgets keep what a PATCH does not name.
        pg = s.create_pos_group(name="North")
        r = s.request("PATCH", "/api/v1/PosGroups/" + pg["id"], {"description": "stores"})
        b = self.assertOk(r)
        self.assertEqual((b["code"], b["name"], b["description"]),
                         (pg["code"], "North", "stores"))
        bud = s.create_budget("100.00", name="Keep")
        r = s.request("PATCH", "/api/v1/Budgets/" + bud["id"], {"totalAmount": 150})
        b = self.assertOk(r)
        self.assertEqual((b["name"], b["totalAmount"], b["currency"]),
                         ("Keep", harness.D("150.00"), "EUR"))

    # -- strict master data (PRODUCT-DECISIONS §1, revised) -----------------------
    def test_unknown_fields_are_refused(self):
        s = self.stack
        gid = self.pos_group()["id"]
        art = uniq("ART")
        p = harness.promotion("Typo", [], [harness.pct_action(10, articles=[art])],
                              pos_groups=[gid])
        p["conditons"] = [{"type": "ARTICLE", "values": [art]}]
        r = s.post("/api/v1/Promotions", p)
        self.assertError(r, 400, "VALIDATION_FAILED", "conditons")
        self.assertIn("did you mean 'conditions'?", r.body["error"]["message"])
        self.assertError(s.get("/api/v1/Promotions/" + p["id"]), 404, "NOT_FOUND")
        # nested members are checked too, with their paths
        del p["conditons"]
        p["actions"][0]["target"]["artcles"] = [art]
        r = s.post("/api/v1/Promotions", p)
        self.assertError(r, 400, "VALIDATION_FAILED", "actions[0].target.artcles")
        self.assertIn("did you mean 'articles'?", r.body["error"]["message"])
        del p["actions"][0]["target"]["artcles"]
        r = s.post("/api/v1/Promotions", p)
        self.assertEqual(r.status, 201, r)
        # PATCH is strict as well, and changes nothing when refused
        r = s.request("PATCH", "/api/v1/Promotions/" + p["id"], {"nmae": "X"})
        self.assertError(r, 400, "VALIDATION_FAILED", "nmae")
        self.assertIn("did you mean 'name'?", r.body["error"]["message"])
        self.assertEqual(self.assertOk(s.get("/api/v1/Promotions/" + p["id"]))["name"], "Typo")
        # a GET body goes back as it is (read-only members are known)
        got = self.assertOk(s.get("/api/v1/Promotions/" + p["id"]))
        self.assertEqual(s.request("PUT", "/api/v1/Promotions/" + p["id"], got).status, 200)

        # articles (single and import), POS groups, budgets, tenant settings
        r = s.post("/api/v1/Articles", {"articleNumber": art, "name": "A", "colour": "red"})
        self.assertError(r, 400, "VALIDATION_FAILED", "colour")
        b = self.assertOk(s.post("/pos/articles/import", {"articles": [
            {"articleNumber": art, "name": "A", "manufactuer": "M"}]}))
        self.assertEqual((b["imported"], b["failed"]), (0, 1))
        self.assertEqual(b["errors"][0]["target"], "articles[0].manufactuer")
        self.assertIn("did you mean 'manufacturer'?", b["errors"][0]["message"])
        r = s.post("/api/v1/PosGroups", {"code": uniq("S")[:20], "name": "S", "stors": []})
        self.assertError(r, 400, "VALIDATION_FAILED", "stors")
        r = s.post("/api/v1/Budgets", {"name": "B", "totalAmount": 10, "currency": "EUR",
                                       "totalAmmount": 20})
        self.assertError(r, 400, "VALIDATION_FAILED", "totalAmmount")
        self.assertIn("did you mean 'totalAmount'?", r.body["error"]["message"])
        bud = s.create_budget("10.00")
        got = self.assertOk(s.get("/api/v1/Budgets/" + bud["id"]))
        self.assertEqual(s.request("PUT", "/api/v1/Budgets/" + bud["id"], got).status, 200)
        r = s.request("PUT", "/api/v1/TenantSettings", {"enableProductionNuges": True})
        self.assertError(r, 400, "VALIDATION_FAILED", "enableProductionNuges")
        got = self.assertOk(s.get("/api/v1/TenantSettings"))
        self.assertEqual(s.request("PUT", "/api/v1/TenantSettings", got).status, 200)
        self.assertOk(s.post("/pos/articles/import", {"articles": [
            {"articleNumber": art, "name": "A"}]}))
        got = self.article(art)
        self.assertEqual(s.request("PUT", "/api/v1/Articles/" + art, got).status, 200)
        got = self.assertOk(s.get("/api/v1/PosGroups/" + gid))
        self.assertEqual(s.request("PUT", "/api/v1/PosGroups/" + gid, got).status, 200)


if __name__ == "__main__":
    harness.main()
