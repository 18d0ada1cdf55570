#!/usr/bin/env python3
# test_contract.py -- issue 10 (contract and consistency), the parts built so
# far: strict master data (an unknown field is a 400 naming it, with a
# did-you-mean; what a read answers can be written back); an article
# re-import or PATCH changes only the fields it names (null clears);
# read-your-writes: an evaluate sent right after a master-data write's
# answer prices with it, with no sleep and no retry; optimistic concurrency:
# unknown stores and currencies (§4c): an unknown posGroupId or
# posGroupCode is priced with the all-store promotions and warned about, a
# promotion in USD never discounts a EUR basket (missed stage CURRENCY);
# the OData subset on /api/v1 collections ($filter, $select, $orderby,
# $top/$skip, $count; anything else a 400 naming it);
# POS requests stay lenient but name what they ignored (DRE-Ignored-Fields)
# unless the tenant set rejectUnknownFields; every entity read has an ETag, a write with a stale If-Match is 412 and
# changes nothing (two PATCHes racing with one ETag: one wins).
import os
import sys
import threading
import time
import urllib.parse

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

    # -- read-your-writes (PRODUCT-DECISIONS §4b) -----------------------------------
    def test_read_your_writes(self):
        s = self.stack
        gid = self.pos_group()["id"]
        lat = []

        def timed(fn, *a, **kw):
            t0 = time.monotonic()
            r = fn(*a, **kw)
            lat.append(time.monotonic() - t0)
            self.assertNotIn("dre-propagation", r.headers, r)
            return r
        for i in range(20):
            art = uniq("RYW")
            req = harness.basket(gid, [harness.item("L1", art, 1, "10.00")])
            p = harness.promotion("RYW %d" % i, [{"type": "ARTICLE", "values": [art]}],
                                  [harness.pct_action(10, articles=[art])],
                                  pos_groups=[gid])
            self.assertEqual(timed(s.post, "/api/v1/Promotions", p).status, 201)
            self.assertEqual(s.applied(self.assertOk(s.evaluate(req)), p["id"]),
                             [("L1", harness.D("1.00"))], "create %d" % i)
            p["actions"][0]["value"] = 20
            self.assertOk(timed(s.request, "PUT", "/api/v1/Promotions/" + p["id"], p))
            self.assertEqual(s.applied(self.assertOk(s.evaluate(req)), p["id"]),
                             [("L1", harness.D("2.00"))], "PUT %d" % i)
            self.assertOk(timed(s.post, "/api/v1/Promotions/%s/deactivate" % p["id"], {}))
            self.assertEqual(s.applied(self.assertOk(s.evaluate(req)), p["id"]), [],
                             "deactivate %d" % i)
            self.assertOk(timed(s.post, "/api/v1/Promotions/%s/activate" % p["id"], {}))
            self.assertEqual(s.applied(self.assertOk(s.evaluate(req)), p["id"]),
                             [("L1", harness.D("2.00"))], "activate %d" % i)
            self.assertEqual(timed(s.request, "DELETE", "/api/v1/Promotions/" + p["id"]).status,
                             204)
            self.assertEqual(s.applied(self.assertOk(s.evaluate(req)), p["id"]), [],
                             "delete %d" % i)
        # Master data the engine reads: an imported article's group makes a
        # group promotion apply at once.
        grp, art = uniq("G")[:20], uniq("RYWA")
        p = harness.promotion("RYW group", [{"type": "ARTICLE_GROUP", "values": [grp]}],
                              [harness.pct_action(10, articleGroups=[grp])], pos_groups=[gid])
        self.assertEqual(s.post("/api/v1/Promotions", p).status, 201)
        req = harness.basket(gid, [harness.item("L1", art, 1, "10.00")])
        self.assertEqual(s.applied(self.assertOk(s.evaluate(req)), p["id"]), [])
        self.assertOk(timed(s.post, "/pos/articles/import", {"articles": [
            {"articleNumber": art, "name": "A", "articleGroupId": grp}]}))
        self.assertEqual(s.applied(self.assertOk(s.evaluate(req)), p["id"]),
                         [("L1", harness.D("1.00"))], "import")
        lat.sort()
        sys.stderr.write("read-your-writes: %d writes, latency p50 %.1f ms, p99 %.1f ms\n" % (
            len(lat), lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.99)] * 1000))

    def test_read_your_budget_writes(self):
        # A budget write that changes its status (a total lowered below what
        # was consumed: EXHAUSTED; raised again: ACTIVE; deleted) is in
        # effect for the evaluate sent right after its answer, no sleep.
        s = self.stack
        gid = self.pos_group()["id"]
        b = s.create_budget("100.00")
        art = uniq("RYWB")
        p = harness.promotion("RYW budget", [{"type": "ARTICLE", "values": [art]}],
                              [harness.pct_action(10, articles=[art])], pos_groups=[gid],
                              budgetIds=[b["id"]])
        s.create_promotion(p)
        req = harness.basket(gid, [harness.item("L1", art, 1, "10.00")])
        s.wait_for_promotion(p["id"], req)
        txn = uniq("TX")
        self.assertOk(s.evaluate(dict(req, header={"transactionId": txn})))
        self.assertOk(s.confirm(txn, 1, [{"promotionId": p["id"]}]))
        s.wait_side_effects(txn, 1)
        self.assertEqual(s.budget(b["id"])["consumedAmount"], harness.D("1.00"))

        def limited():
            body = self.assertOk(s.evaluate(req))
            return [x["promotionId"] for x in body["budgetLimitedPromotions"]]
        for i in range(10):
            r = s.request("PATCH", "/api/v1/Budgets/" + b["id"], {"totalAmount": 0.5})
            self.assertOk(r)
            self.assertNotIn("dre-propagation", r.headers, r)
            self.assertEqual(limited(), [p["id"]], "lowered %d" % i)
            r = s.request("PATCH", "/api/v1/Budgets/" + b["id"], {"totalAmount": 100})
            self.assertOk(r)
            self.assertNotIn("dre-propagation", r.headers, r)
            self.assertEqual(limited(), [], "raised %d" % i)
        s.request("PATCH", "/api/v1/Budgets/" + b["id"], {"totalAmount": 0.5})
        self.assertEqual(limited(), [p["id"]])
        r = s.request("DELETE", "/api/v1/Budgets/" + b["id"])
        self.assertEqual(r.status, 204, r)
        self.assertEqual(limited(), [], "deleted")

    def test_propagation_pending(self):
        # The broker down: the evaluator cannot learn the change; the write
        # still succeeds, after the bound, and says so.
        st = harness.Stack(opts={"gateway": ["catalog.propagation_wait_ms=300"]})
        try:
            gid = st.create_pos_group()["id"]
            st.broker_down()
            p = harness.promotion("Pending", [], [harness.pct_action(10, articles=["A"])],
                                  pos_groups=[gid])
            t0 = time.monotonic()
            r = st.post("/api/v1/Promotions", p)
            took = time.monotonic() - t0
            self.assertEqual(r.status, 201, r)
            self.assertEqual(r.headers.get("dre-propagation"), "pending")
            self.assertNotIn("dre-changes", r.headers)
            self.assertGreaterEqual(took, 0.3)
            st.broker_up()
            req = harness.basket(gid, [harness.item("L1", "A", 1, "10.00")])
            st.wait_for_promotion(p["id"], req, timeout=20)
            # A bad write waits for nothing and says nothing of propagation.
            r = st.post("/api/v1/Promotions", {"name": "x"})
            self.assertEqual(r.status, 400)
            self.assertNotIn("dre-propagation", r.headers)
        finally:
            st.kill_all()
            st.cleanup()

    # -- optimistic concurrency (ETag / If-Match) ---------------------------------
    def test_etag_if_match(self):
        s = self.stack
        gid = self.pos_group()["id"]
        p = harness.promotion("Etag", [], [harness.pct_action(10, articles=["E"])],
                              pos_groups=[gid])
        r = s.post("/api/v1/Promotions", p)
        self.assertEqual(r.status, 201, r)
        tag0 = r.headers["etag"]
        self.assertRegex(tag0, r'^"[0-9]+"$')
        g = s.get("/api/v1/Promotions/" + p["id"])
        self.assertEqual(g.headers["etag"], tag0)
        path = "/api/v1/Promotions/" + p["id"]
        # a matching tag writes and answers the new tag
        r = s.request("PATCH", path, {"name": "Etag 2"}, headers={"If-Match": tag0})
        self.assertOk(r)
        tag1 = r.headers["etag"]
        self.assertNotEqual(tag1, tag0)
        self.assertEqual(s.get(path).headers["etag"], tag1)
        # a stale tag: 412, nothing changes
        for method, body in (("PATCH", {"name": "lost"}), ("PUT", dict(p, name="lost")),
                             ("DELETE", None)):
            r = s.request(method, path, body, headers={"If-Match": tag0})
            self.assertError(r, 412, "PRECONDITION_FAILED", "If-Match")
        r = s.post(path + "/deactivate", {}, headers={"If-Match": tag0})
        self.assertError(r, 412, "PRECONDITION_FAILED", "If-Match")
        self.assertEqual((s.get(path).body["name"], s.get(path).body["status"],
                          s.get(path).headers["etag"]), ("Etag 2", "ACTIVE", tag1))
        # "*", a list, a weak form of the current tag, and no If-Match at all
        for form in (lambda t: '*', lambda t: '"1", %s' % t, lambda t: 'W/' + t):
            im = form(tag1)
            r = s.request("PATCH", path, {"description": im}, headers={"If-Match": im})
            self.assertOk(r)
            tag1 = r.headers["etag"]
        self.assertOk(s.request("PATCH", path, {"description": "free"}))

        # Two marketers edit with the same tag at the same moment: one edit
        # wins, the other is told (412) -- none is lost silently.
        for round_ in range(10):
            tag = s.get(path).headers["etag"]
            barrier = threading.Barrier(2)
            out = {}

            def edit(name):
                barrier.wait()
                out[name] = s.request("PATCH", path, {"name": name},
                                      headers={"If-Match": tag})
            ts = [threading.Thread(target=edit, args=("A%d" % round_,)),
                  threading.Thread(target=edit, args=("B%d" % round_,))]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            statuses = sorted(r.status for r in out.values())
            self.assertEqual(statuses, [200, 412], out)
            winner = [n for n, r in out.items() if r.status == 200][0]
            self.assertEqual(s.get(path).body["name"], winner)

        # budgets: the tag is the edit revision (a sale's consumption does
        # not change it; two edits with one tag: one wins)
        bud = s.post("/api/v1/Budgets", {"name": uniq("EtagB"), "totalAmount": 100,
                                         "currency": "EUR"})
        self.assertEqual((bud.status, bud.headers["etag"]), (201, '"0"'))
        bpath = "/api/v1/Budgets/" + bud.body["id"]
        self.assertEqual(s.get(bpath).headers["etag"], '"0"')
        r = s.request("PATCH", bpath, {"totalAmount": 120}, headers={"If-Match": '"0"'})
        self.assertEqual((r.status, r.headers["etag"]), (200, '"1"'))
        for method, body in (("PATCH", {"totalAmount": 1}), ("DELETE", None)):
            r = s.request(method, bpath, body, headers={"If-Match": '"0"'})
            self.assertError(r, 412, "PRECONDITION_FAILED", "If-Match")
        self.assertEqual(s.get(bpath).body["totalAmount"], harness.D("120.00"))
        outcome = {}
        barrier = threading.Barrier(2)

        def bedit(total):
            barrier.wait()
            outcome[total] = s.request("PATCH", bpath, {"totalAmount": total},
                                       headers={"If-Match": '"1"'}).status
        ts = [threading.Thread(target=bedit, args=(t,)) for t in (130, 140)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(sorted(outcome.values()), [200, 412], outcome)
        won = [t for t, st in outcome.items() if st == 200][0]
        self.assertEqual(s.get(bpath).body["totalAmount"], harness.D(won))

        # other entities and the tenant settings carry tags too
        a = uniq("ART")
        r = s.post("/api/v1/Articles", {"articleNumber": a, "name": "A"})
        tag = r.headers["etag"]
        r = s.request("PATCH", "/api/v1/Articles/" + a, {"name": "B"},
                      headers={"If-Match": '"0"'})
        self.assertError(r, 412, "PRECONDITION_FAILED", "If-Match")
        self.assertOk(s.request("PATCH", "/api/v1/Articles/" + a, {"name": "B"},
                                headers={"If-Match": tag}))
        st = s.get("/api/v1/TenantSettings")
        r = s.request("PUT", "/api/v1/TenantSettings", st.body,
                      headers={"If-Match": '"999999999"'})
        self.assertError(r, 412, "PRECONDITION_FAILED", "If-Match")
        r = s.request("PUT", "/api/v1/TenantSettings", st.body,
                      headers={"If-Match": st.headers["etag"]})
        self.assertOk(r)

    # -- unknown stores and currencies (PRODUCT-DECISIONS §4c) -------------------
    def test_unknown_store_and_currency(self):
        s = self.stack
        gid = self.pos_group()["id"]
        art = uniq("CUR")
        everywhere = harness.promotion("Everywhere", [{"type": "ARTICLE", "values": [art]}],
                                       [harness.pct_action(10, articles=[art])])
        here = harness.promotion("Here only", [{"type": "ARTICLE", "values": [art]}],
                                 [harness.pct_action(20, articles=[art])], pos_groups=[gid])
        usd = harness.promotion("Dollars", [{"type": "ARTICLE", "values": [art]}],
                                [{"type": "ARTICLE", "discountType": "ABSOLUTE", "value": 5,
                                  "target": {"articles": [art]}}], currency="USD")
        for p in (everywhere, here, usd):
            self.assertEqual(s.post("/api/v1/Promotions", p).status, 201)
        items = [harness.item("L1", art, 1, "10.00")]

        def names(b):
            return sorted(d["promotionName"] for d in b["lineItems"][0]["discounts"])
        b = self.assertOk(s.evaluate(harness.basket(gid, items)))
        self.assertEqual(names(b), ["Everywhere", "Here only"])
        self.assertNotIn("warnings", b["meta"])
        unknown_id, unknown_code = harness.new_id(), uniq("NOWHERE")[:20]
        for field, value in (("posGroupId", unknown_id), ("posGroupCode", unknown_code)):
            req = {field: value, "items": items, "timestamp": harness.TS}
            b = self.assertOk(s.evaluate(req))
            self.assertEqual(names(b), ["Everywhere"], field)
            self.assertEqual(b["meta"]["warnings"], [{
                "code": "UNKNOWN_POS_GROUP", "target": field,
                "message": "unknown %s '%s': priced with the promotions of every "
                           "store" % (field, value)}])
        # EUR basket (the tenant's currency): the USD promotion never applies
        req = dict(harness.basket(gid, items), includeMissedPromotions=True)
        b = self.assertOk(s.simulate(req))
        self.assertEqual(names(b), ["Everywhere", "Here only"])
        missed = {m["promotionId"]: m for m in b["missedPromotions"]}
        self.assertEqual((missed[usd["id"]]["stage"], missed[usd["id"]]["reason"]),
                         ("CURRENCY", "priced in USD, the basket is in EUR"))
        # a USD basket: only the USD promotion, amounts in USD
        b = self.assertOk(s.evaluate(dict(harness.basket(gid, items), currency="USD")))
        self.assertEqual(names(b), ["Dollars"])
        self.assertEqual(b["lineItems"][0]["lineDiscount"],
                         {"value": harness.D("5.00"), "currency": "USD"})
        self.assertError(s.evaluate(dict(harness.basket(gid, items), currency="usd")),
                         400, "VALIDATION_FAILED", "currency")

    # -- POS requests: lenient, but named (PRODUCT-DECISIONS §1) -------------------
    def test_pos_ignored_fields(self):
        s = self.stack
        gid = self.pos_group()["id"]
        req = harness.basket(gid, [harness.item("L1", "A", 1, "10.00")])
        plain = self.assertOk(s.simulate(req))
        self.assertNotIn("dre-ignored-fields", s.simulate(req).headers)
        odd = dict(req, custmer={"customerId": "C"},
                   items=[dict(req["items"][0], colour="red")],
                   customer={"customerId": "C", "loyalty": {"tier": "G", "level": 2}})
        r = s.simulate(odd)
        self.assertEqual(r.headers["dre-ignored-fields"],
                         "custmer, items[0].colour, customer.loyalty.level")
        self.assertEqual(r.body["lineItems"], plain["lineItems"])
        many = dict(req, **{"x%02d" % i: i for i in range(25)})
        r = s.simulate(many)
        self.assertEqual(r.status, 200)
        # (header bytes are UTF-8: "…" as PRODUCT-DECISIONS §1 writes it)
        self.assertEqual(r.headers["dre-ignored-fields"].encode("latin-1").decode("utf-8"),
                         ", ".join("x%02d" % i for i in range(20)) + ", \u2026")
        # a long name is cut at 64 bytes before a character, never inside one
        # (81 bytes of UTF-8: 'a' and 40 two-byte characters)
        long = "a" + "\u00e9" * 40
        r = s.simulate(dict(req, items=[dict(req["items"][0], **{long: 1})]))
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers["dre-ignored-fields"].encode("latin-1").decode("utf-8"),
                         "items[0]." + "a" + "\u00e9" * 31)
        # a tenant that wants them strict (tenant B; the setting is its own)
        b = "tenant-b-admin"
        cur = s.get("/api/v1/TenantSettings", user=b)
        self.assertIs(cur.body["rejectUnknownFields"], False)
        r = s.request("PUT", "/api/v1/TenantSettings",
                      {"rejectUnknownFields": True}, user=b)
        self.assertOk(r)
        gb = s.post("/api/v1/PosGroups", {"code": uniq("B")[:20], "name": "B"}, user=b)
        self.assertEqual(gb.status, 201, gb)
        breq = harness.basket(gb.body["id"], [harness.item("L1", "A", 1, "10.00")])
        self.assertOk(s.evaluate(breq, user=b))
        r = s.evaluate(dict(breq, custmer={}), user=b)
        self.assertError(r, 400, "VALIDATION_FAILED", "custmer")
        r = s.evaluate(dict(breq, **{long: 1}), user=b)
        self.assertError(r, 400, "VALIDATION_FAILED", "a" + "\u00e9" * 31)
        self.assertEqual(r.raw.decode("utf-8"), r.text)
        self.assertEqual(r.body["error"]["message"],
                         "unknown field 'a%s' (the tenant setting rejectUnknownFields is on)"
                         % ("\u00e9" * 29))
        # the default tenant is unaffected
        self.assertEqual(s.simulate(odd).status, 200)
        self.assertOk(s.request("PUT", "/api/v1/TenantSettings",
                                {"rejectUnknownFields": False}, user=b))
        self.assertEqual(s.evaluate(dict(breq, custmer={}), user=b).status, 200)

    # -- OData query options (issue 10.3) ------------------------------------------
    def test_odata_query_options(self):
        s = self.stack
        tag = uniq("OD")

        def q(path, **opts):
            qs = "&".join("%s=%s" % (k, urllib.parse.quote(v)) for k, v in opts.items())
            return s.get(path + "?" + qs)
        made = []
        for i in range(12):
            p = harness.promotion("%s %02d" % (tag, i), [],
                                  [harness.pct_action(5, articles=["X"])],
                                  status="INACTIVE" if i % 3 == 0 else "ACTIVE",
                                  priority=i % 4)
            self.assertEqual(s.post("/api/v1/Promotions", p).status, 201)
            made.append(p)
        mine = "startswith(name,'%s')" % tag

        def names(r):
            return [x["name"] for x in self.assertOk(r)["value"]]
        r = q("/api/v1/Promotions", **{"$filter": mine + " and status eq 'INACTIVE'",
                                       "$orderby": "name"})
        self.assertEqual(names(r), ["%s %02d" % (tag, i) for i in (0, 3, 6, 9)])
        self.assertEqual(r.body["count"], 4)
        r = q("/api/v1/Promotions", **{
            "$filter": "%s and (priority ge 2 or contains(name,' 01')) and not status eq "
                       "'INACTIVE'" % mine,
            "$orderby": "priority desc, name asc", "$count": "true"})
        self.assertEqual(names(r), ["%s %02d" % (tag, i) for i in (7, 11, 2, 10, 1)])
        self.assertEqual(r.body["count"], 5)
        r = q("/api/v1/Promotions", **{"$filter": mine + " and priority lt 1",
                                       "$select": "name,priority", "$orderby": "name desc",
                                       "$top": "2", "$skip": "1"})
        self.assertEqual(self.assertOk(r)["value"], [
            {"name": "%s 04" % tag, "priority": 0}, {"name": "%s 00" % tag, "priority": 0}])
        self.assertEqual(r.body["count"], 3)
        # the option that used to be ignored
        r = q("/api/v1/Promotions", **{"$filter": "status eq 'INACTIVE' and " + mine})
        self.assertTrue(all(x["status"] == "INACTIVE" for x in r.body["value"]))
        # other collections and field kinds
        a = uniq("ODA")
        for i, ean in enumerate(("4000000000017", "4000000000024")):
            self.assertEqual(s.post("/api/v1/Articles", {
                "articleNumber": "%s-%d" % (a, i), "name": "N%d" % i, "ean": ean,
                "referencePrice": "1.5%d" % i}).status, 201)
        r = q("/api/v1/Articles", **{"$filter": "startswith(articleNumber,'%s') and "
                                                 "referencePrice gt 1.505" % a,
                                      "$select": "articleNumber"})
        self.assertEqual(self.assertOk(r)["value"], [{"articleNumber": "%s-1" % a}])
        # budgets (rendered documents) take the same options
        bt = uniq("ODB")
        for amount in ("30.00", "10.00", "20.00"):
            s.create_budget(amount, name="%s %s" % (bt, amount))
        r = q("/api/v1/Budgets", **{"$filter": "startswith(name,'%s') and totalAmount ge "
                                               "15" % bt,
                                     "$orderby": "totalAmount desc", "$select": "totalAmount"})
        self.assertEqual(self.assertOk(r)["value"], [{"totalAmount": harness.D("30.00")},
                                                    {"totalAmount": harness.D("20.00")}])
        self.assertError(q("/api/v1/Budgets", **{"$orderby": "colour"}), 400,
                         "VALIDATION_FAILED", "$orderby")
        # refused: unsupported options, unknown fields, bad syntax -- 400 naming it
        for opts, target, msg in (
                ({"$expand": "x"}, "$expand", "query option $expand is not supported"),
                ({"$filter": "colour eq 'red'"}, "$filter", "'colour' is not a field"),
                ({"$filter": "name eq"}, "$filter", "at character 8"),
                ({"$filter": "name eq 'x' and"}, "$filter", "a field name is expected"),
                ({"$filter": "(name eq 'x'"}, "$filter", "')' is expected"),
                ({"$filter": "name like 'x'"}, "$filter", "an operator"),
                ({"$orderby": "colour"}, "$orderby", "'colour' is not a field"),
                ({"$orderby": "name sideways"}, "$orderby", "expected 'field [asc|desc]'"),
                ({"$select": "colour"}, "$select", "'colour' is not a field"),
                ({"$top": "-1"}, "$top", "non-negative integer"),
                ({"$count": "maybe"}, "$count", "true or false"),
                ({"$filter": "(" * 100 + "name eq 'x'"}, "$filter", "too deeply nested")):
            r = q("/api/v1/Promotions", **opts)
            self.assertError(r, 400, "VALIDATION_FAILED", target)
            self.assertIn(msg, r.body["error"]["message"], opts)

        # pages stay stable while others write: paging through the
        # filtered set meets each promotion exactly once
        stop = threading.Event()

        def writer():
            while not stop.is_set():
                s.post("/api/v1/Promotions", harness.promotion(
                    uniq("OTHER"), [], [harness.pct_action(5, articles=["X"])]))
        t = threading.Thread(target=writer)
        t.start()
        try:
            seen = []
            for skip in range(0, 12, 5):
                seen += names(q("/api/v1/Promotions", **{
                    "$filter": mine, "$orderby": "name", "$top": "5",
                    "$skip": str(skip)}))
        finally:
            stop.set()
            t.join()
        self.assertEqual(seen, sorted(p["name"] for p in made))


if __name__ == "__main__":
    harness.main()
