#!/usr/bin/env python3
# test_loyalty.py -- dre-loyalty over HTTP (PRODUCT-DECISIONS §8): the
# program, contacts in Engage's v3 shapes (create-or-return, lookups,
# PATCH semantics, identifier validation), points credited at confirm
# exactly as the iteration earned them (side effects, overview, events),
# receipts (idempotent, returns, exchange rate, no double earning).
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, basket, item, promotion, uniq  # noqa: E402

DEFAULT_PROGRAM = {
    "pointsPerCurrencyUnit": 1,
    "levels": [{"name": "BASE", "minPoints": 0},
               {"name": "SILVER", "minPoints": 1000},
               {"name": "GOLD", "minPoints": 5000}],
    "voucherRule": {"pointsPerVoucher": 500, "value": D("5.00"), "currency": "EUR",
                    "validityDays": 90, "automatic": True, "couponTypeId": None},
}
ATTRS = ("email", "mobilePhone", "memberNumber", "firstName", "lastName", "countryCode",
         "language", "birthDay", "gender", "street", "zipCode", "city")


def email():
    return uniq("m").lower() + "@example.com"


class Loyalty(harness.TestCase):
    def contact(self, **attrs):
        r = self.stack.post("/api/v3/contacts?source=POS&storeExternalId=S1", attrs)
        self.assertStatus(r, 201)
        return r.body

    def overview(self, cid):
        return self.assertOk(self.stack.get("/api/v3/contactoverview?contactId=" + cid))

    # -- the program ---------------------------------------------------------
    def test_program_defaults_put_and_refusals(self):
        s = self.stack
        u = "tenant-c-admin"
        self.assertJson(DEFAULT_PROGRAM, self.assertOk(s.get("/api/v1/LoyaltyProgram", user=u)))
        doc = {"pointsPerCurrencyUnit": D("2.5"),
               "levels": [{"name": "BASE", "minPoints": 0}, {"name": "VIP", "minPoints": 300}],
               "voucherRule": {"pointsPerVoucher": 100, "value": D("2.00"), "currency": "SEK",
                               "validityDays": 30, "automatic": False,
                               "couponTypeId": None}}
        self.assertJson(doc, self.assertOk(s.request("PUT", "/api/v1/LoyaltyProgram", doc, user=u)))
        self.assertJson(doc, self.assertOk(s.get("/api/v1/LoyaltyProgram", user=u)))
        bad = [({"levels": []}, "levels"),
               ({"levels": [{"name": "A", "minPoints": 10}]}, "levels"),
               ({"levels": [{"name": "A", "minPoints": 0}, {"name": "B", "minPoints": 0}]}, "levels"),
               ({"pointsPerCurrencyUnit": "x"}, "pointsPerCurrencyUnit"),
               ({"voucherRule": {"pointsPerVoucher": 0}}, "voucherRule.pointsPerVoucher"),
               ({"voucherRule": {"value": -1}}, "voucherRule.value"),
               ({"bogus": 1}, "body")]
        for body, target in bad:
            self.assertError(s.request("PUT", "/api/v1/LoyaltyProgram", body, user=u),
                             400, "VALIDATION_FAILED", target)
        # nothing half-written: the last good program stays
        self.assertJson(doc, self.assertOk(s.get("/api/v1/LoyaltyProgram", user=u)))
        # the default tenant still has the defaults
        self.assertJson(DEFAULT_PROGRAM, self.assertOk(s.get("/api/v1/LoyaltyProgram")))

    # -- contacts --------------------------------------------------------------
    def test_create_returns_existing_never_a_duplicate(self):
        s = self.stack
        e, mn = email(), uniq("MN")
        c = self.contact(email=e, firstName="Ada", memberNumber=mn,
                         preferences={"acceptsEmail": True}, consents=[{"id": "c1", "value": True}])
        self.assertRegex(c["id"], harness.UUID_RE)
        want = {a: None for a in ATTRS}
        want.update(email=e, firstName="Ada", memberNumber=mn)
        self.assertJson(want, c["attributes"])
        self.assertJson({"source": "POS", "storeExternalId": "S1"}, c["meta"], subset=True)
        self.assertRegex(c["meta"]["createdOn"], harness.ISO_RE)
        self.assertEqual(c["preferences"], {"acceptsEmail": True})
        self.assertEqual(c["consents"], [{"id": "c1", "value": True}])
        # by email (any case), by member number: 200 with that contact
        for again in ({"email": e.upper()}, {"memberNumber": mn, "firstName": "Other"}):
            r = s.post("/api/v3/contacts", again)
            self.assertStatus(r, 200)
            self.assertEqual(r.body["id"], c["id"])
            self.assertEqual(r.body["attributes"]["firstName"], "Ada")
        self.assertJson(c, self.assertOk(s.get("/api/v3/contacts/" + c["id"])))

    def test_lookups(self):
        s = self.stack
        e, phone, mn = email(), "+4670%07d" % (hash(uniq("p")) % 10000000), uniq("MN")
        c = self.contact(email=e, mobilePhone=phone, memberNumber=mn)
        for q in ("email=" + e, "mobilePhone=%2B" + phone[1:], "customKey=" + mn,
                  "any=" + e, "any=" + mn, "any=%2B" + phone[1:], "any=" + c["id"]):
            r = s.get("/api/v3/contacts/id?" + q)
            self.assertEqual(self.assertOk(r), c["id"], q)
        self.assertError(s.get("/api/v3/contacts/id?email=nobody%40example.com"),
                         404, "ContactNotFound")
        self.assertError(s.get("/api/v3/contacts/id?customKey=" + uniq("none")),
                         404, "ContactNotFound")
        self.assertError(s.get("/api/v3/contacts/" + harness.new_id()), 404, "ContactNotFound")
        # one contact's member number is another's email: two matches
        shared = email()
        a = self.contact(memberNumber=shared)
        b = self.contact(email=shared)
        self.assertNotEqual(a["id"], b["id"])
        self.assertError(s.get("/api/v3/contacts/id?any=" + shared), 409, "MultipleMatches")
        self.assertEqual(self.assertOk(s.get("/api/v3/contacts/id?email=" + shared)), b["id"])
        self.assertError(s.get("/api/v3/contacts/id"), 400, "VALIDATION_FAILED")
        self.assertError(s.get("/api/v3/contacts/id?email=not-an-email"), 400,
                         "InvalidEmailAddress", "email")

    def test_overview_by_identifier_tenants_apart_and_events(self):
        s = self.stack
        e, mn = email(), uniq("MN")
        c = self.contact(email=e, memberNumber=mn)
        for q in ("contactType=member&email=" + e, "customKey=" + mn, "contactId=" + c["id"]):
            o = self.assertOk(s.get("/api/v3/contactoverview?" + q))
            self.assertEqual(o["id"], c["id"], q)
            self.assertJson({"level": "BASE", "pointsBalance": 0, "pointsEarnedLast365": 0,
                             "nextLevel": "SILVER", "pointsToNextLevel": 1000}, o["loyalty"])
            self.assertEqual((o["vouchers"], o["promotions"]), ([], []))
        self.assertError(s.get("/api/v3/contactoverview?contactId=" + harness.new_id()),
                         404, "ContactNotFound")
        # another tenant sees nothing of it, and may hold the same email
        u = "tenant-b-admin"
        self.assertError(s.get("/api/v3/contacts/" + c["id"], user=u), 404, "ContactNotFound")
        self.assertError(s.get("/api/v3/contacts/id?email=" + e, user=u), 404, "ContactNotFound")
        r = s.post("/api/v3/contacts", {"email": e}, user=u)
        self.assertStatus(r, 201)
        self.assertNotEqual(r.body["id"], c["id"])
        # a POS credential may read and write members; a budget manager not
        self.assertStatus(s.get("/api/v3/contacts/" + c["id"], user="pos-reader"), 200)
        self.assertError(s.get("/api/v3/contacts/" + c["id"], user="budget-manager"),
                         403, "FORBIDDEN")
        self.assertOk(s.request("PATCH", "/api/v3/contacts/" + c["id"], {"city": "Oslo"}))
        evs = [(x["key"], x["value"]["type"]) for x in s.events("dre.loyalty.events")
               if x["value"]["contactId"] == c["id"]]
        self.assertEqual(evs, [("default/" + c["id"], "CONTACT_CREATED"),
                               ("default/" + c["id"], "CONTACT_UPDATED")])

    def test_identifiers_validated(self):
        s = self.stack
        cases = [({"email": "no-at-sign"}, "InvalidEmailAddress", "email"),
                 ({"email": "a@b"}, "InvalidEmailAddress", "email"),
                 ({"email": "a b@c.se"}, "InvalidEmailAddress", "email"),
                 ({"mobilePhone": "0701234567"}, "InvalidPhoneNumber", "mobilePhone"),
                 ({"mobilePhone": "+46-70-123"}, "InvalidPhoneNumber", "mobilePhone"),
                 ({"firstName": "Only"}, "VALIDATION_FAILED", "email"),
                 ({"email": email(), "shoeSize": 44}, "VALIDATION_FAILED", "shoeSize"),
                 ({"email": 7}, "VALIDATION_FAILED", "email")]
        for body, code, target in cases:
            self.assertError(s.post("/api/v3/contacts", body), 400, code, target)
        # nothing was written by the refused ones
        self.assertError(s.get("/api/v3/contacts/id?any=Only"), 404, "ContactNotFound")

    def test_patch_present_overwrites_absent_kept(self):
        s = self.stack
        e, mn = email(), uniq("MN")
        c = self.contact(email=e, memberNumber=mn, firstName="Ada", lastName="L", city="Paris")
        r = s.request("PATCH", "/api/v3/contacts/" + c["id"],
                      {"firstName": "", "lastName": None, "zipCode": "75001"})
        b = self.assertOk(r)
        self.assertJson({"email": e, "memberNumber": mn, "firstName": "", "lastName": None,
                         "city": "Paris", "zipCode": "75001"}, b["attributes"], subset=True)
        self.assertJson(b, self.assertOk(s.get("/api/v3/contacts/" + c["id"])))
        # a new email is the contact's key; the old one no longer finds it
        e2 = email()
        self.assertOk(s.request("PATCH", "/api/v3/contacts/" + c["id"], {"email": e2}))
        self.assertEqual(self.assertOk(s.get("/api/v3/contacts/id?email=" + e2)), c["id"])
        self.assertError(s.get("/api/v3/contacts/id?email=" + e), 404, "ContactNotFound")
        # refused: another contact's email, a malformed phone, an unknown id
        other = self.contact(email=email())
        self.assertError(s.request("PATCH", "/api/v3/contacts/" + c["id"],
                                   {"email": other["attributes"]["email"]}),
                         409, "ContactAlreadyExists", "email")
        self.assertError(s.request("PATCH", "/api/v3/contacts/" + c["id"],
                                   {"mobilePhone": "12", "city": "Lyon"}),
                         400, "InvalidPhoneNumber", "mobilePhone")
        self.assertEqual(self.assertOk(s.get("/api/v3/contacts/" + c["id"]))["attributes"]["city"],
                         "Paris")
        self.assertError(s.request("PATCH", "/api/v3/contacts/" + harness.new_id(),
                                   {"city": "X"}), 404, "ContactNotFound")

    # -- points at confirm -------------------------------------------------------
    def points_promo(self):
        s = self.stack
        gid = self.pos_group()["id"]
        art = uniq("ART")
        p = promotion("Points %s" % art, [{"type": "CUSTOMER_REQUIRED"}],
                      [{"type": "CURRENCY_TO_POINTS", "pointsPerUnit": 1}],
                      pos_groups=[gid], ptype="LOYALTY")
        s.create_promotion(p)
        req = basket(gid, [item("L1", art, 2, "46.25")],
                     customer={"customerId": "probe"})
        harness.wait_until(
            lambda: self.assertEval(s.simulate(req), simulation=True)
            ["totals"]["savingsSummary"]["loyaltyPointsEarned"] == 92,
            10, what="points promotion %s in effect" % p["id"])
        return p, gid, art

    def sale(self, gid, art, customer, price="46.25", qty=2):
        s, txn = self.stack, uniq("TX")
        req = basket(gid, [item("L1", art, qty, price)], txn=txn, customer=customer)
        b = self.assertEval(s.evaluate(req))
        earned = b["totals"]["savingsSummary"]["loyaltyPointsEarned"]
        self.assertOk(s.confirm(txn, 1, []))
        return txn, earned

    def test_confirm_credits_points_exactly_once(self):
        s = self.stack
        p, gid, art = self.points_promo()
        mn = uniq("MN")
        c = self.contact(email=email(), memberNumber=mn)
        txn, earned = self.sale(gid, art, {"customerId": c["id"]})
        self.assertEqual(earned, 92)
        se = s.wait_side_effects(txn, 1)
        self.assertEqual(se["loyaltyPointsEarned"], 92)
        o = self.overview(c["id"])
        self.assertJson({"level": "BASE", "pointsBalance": 92, "pointsEarnedLast365": 92,
                         "nextLevel": "SILVER", "pointsToNextLevel": 908}, o["loyalty"])
        self.assertEqual(o["id"], c["id"])
        # a repeated confirm credits nothing more
        self.assertOk(s.confirm(txn, 1, []))
        # by member number, as customerId and as loyaltyCardNo's customerId
        txn2, earned2 = self.sale(gid, art, {"customerId": mn, "loyaltyCardNo": mn},
                                  price="500.00", qty=2)
        self.assertEqual(earned2, 1000)
        self.assertEqual(s.wait_side_effects(txn2, 1)["loyaltyPointsEarned"], 1000)
        o = self.overview(c["id"])
        self.assertJson({"level": "SILVER", "pointsBalance": 1092, "pointsEarnedLast365": 1092,
                         "nextLevel": "GOLD", "pointsToNextLevel": 3908}, o["loyalty"])
        # the events, decoded with the schema files alone
        evs = [e["value"] for e in s.events("dre.loyalty.events")
               if e["value"]["contactId"] == c["id"]]
        kinds = [(e["type"], e["points"], e["pointsBalance"]) for e in evs]
        self.assertEqual(kinds, [("CONTACT_CREATED", 0, 0), ("POINTS_EARNED", 92, 92),
                                 ("POINTS_EARNED", 1000, 1092), ("LEVEL_CHANGED", 0, 1092)])
        self.assertEqual(evs[3]["previousLevel"], {"string": "BASE"})
        self.assertEqual(evs[3]["level"], {"string": "SILVER"})
        self.assertEqual(evs[1]["transactionId"], {"string": txn})

    def test_unknown_customer_is_skipped_with_reason(self):
        s = self.stack
        p, gid, art = self.points_promo()
        who = uniq("NOBODY")
        txn, earned = self.sale(gid, art, {"customerId": who})
        self.assertEqual(earned, 92)
        se = s.wait_side_effects(txn, 1)
        self.assertEqual(se["status"], "COMPLETED")
        self.assertEqual(se["loyaltyPointsEarned"], 0)
        self.assertIsNone(se["reason"])  # SKIPPED is no problem of the sale
        res = [e["value"] for e in s.events("dre.sidefx.results")
               if e["value"]["transactionId"] == txn and e["value"]["service"] == "loyalty"]
        self.assertEqual(len(res), 1, res)
        self.assertEqual(res[0]["status"], "SKIPPED")
        self.assertEqual(res[0]["reason"],
                         {"string": "customer %s is not a loyalty contact" % who})

    # -- receipts ----------------------------------------------------------------
    def receipt(self, match, rid, items, **kw):
        doc = {"contact": match, "uniqueReceiptId": rid, "receiptNumber": rid,
               "createdDate": "2026-06-07T12:00:00Z", "storeExternalId": "S1",
               "currency": "EUR", "items": items}
        doc.update(kw)
        return self.stack.post("/api/v3/receipts", doc)

    def test_receipts(self):
        s = self.stack
        e = email()
        c = self.contact(email=e)
        m = {"matchKey": e, "matchKeyType": "Email"}
        rid = uniq("R")
        items = [{"type": "PURCHASE", "sku": "A", "quantity": 1, "grossPaidPrice": D("120.70")},
                 {"type": "PURCHASE", "sku": "B", "quantity": 1, "grossPaidPrice": D("30.00"),
                  "awardsBonus": False},
                 {"type": "RETURN", "sku": "C", "quantity": 1, "grossPaidPrice": D("20.50")}]
        r = self.receipt(m, rid, items)
        self.assertStatus(r, 202)
        first = r.body["id"]
        self.assertRegex(first, harness.UUID_RE)
        self.assertEqual(self.overview(c["id"])["loyalty"]["pointsBalance"], 100)
        # idempotent on uniqueReceiptId
        r = self.receipt(m, rid, items)
        self.assertStatus(r, 202)
        self.assertEqual(r.body, {"id": first})
        self.assertEqual(self.overview(c["id"])["loyalty"]["pointsBalance"], 100)
        # exchange rate; member-number and contact-id keys
        r = self.receipt({"matchKey": c["id"], "matchKeyType": "ContactId"}, uniq("R"),
                         [{"type": "PURCHASE", "grossPaidPrice": D("100.00")}],
                         exchangeRateToGroupCurrency=D("0.095"))
        self.assertStatus(r, 202)
        self.assertEqual(self.overview(c["id"])["loyalty"]["pointsBalance"], 109)
        # a return alone deducts, the balance may go negative
        r = self.receipt(m, uniq("R"), [{"type": "RETURN", "grossPaidPrice": D("200")}])
        self.assertStatus(r, 202)
        self.assertEqual(self.overview(c["id"])["loyalty"]["pointsBalance"], -91)

    def test_receipt_of_a_confirmed_transaction_earns_nothing(self):
        s = self.stack
        p, gid, art = self.points_promo()
        c = self.contact(email=email())
        txn, earned = self.sale(gid, art, {"customerId": c["id"]})
        s.wait_side_effects(txn, 1)
        r = self.receipt({"matchKey": c["id"], "matchKeyType": "ContactId"}, txn,
                         [{"type": "PURCHASE", "grossPaidPrice": D("92.50")}])
        self.assertStatus(r, 202)
        self.assertEqual(self.overview(c["id"])["loyalty"]["pointsBalance"], 92)

    def test_receipt_before_the_confirm_earns_once(self):
        s = self.stack
        p, gid, art = self.points_promo()
        c = self.contact(email=email())
        txn = uniq("TX")
        r = self.receipt({"matchKey": c["id"], "matchKeyType": "ContactId"}, txn,
                         [{"type": "PURCHASE", "grossPaidPrice": D("92.50")}])
        self.assertStatus(r, 202)
        self.assertEqual(self.overview(c["id"])["loyalty"]["pointsBalance"], 92)
        req = basket(gid, [item("L1", art, 2, "46.25")], txn=txn,
                     customer={"customerId": c["id"]})
        self.assertEval(s.evaluate(req))
        self.assertOk(s.confirm(txn, 1, []))
        se = s.wait_side_effects(txn, 1)
        self.assertEqual(se["loyaltyPointsEarned"], 0)
        self.assertIsNone(se["reason"])
        res = [e["value"] for e in s.events("dre.sidefx.results")
               if e["value"]["transactionId"] == txn and e["value"]["service"] == "loyalty"]
        self.assertEqual([(x["status"], x["reason"]) for x in res],
                         [("SKIPPED", {"string": "transaction %s earned through its receipt" % txn})])
        self.assertEqual(self.overview(c["id"])["loyalty"]["pointsBalance"], 92)

    def test_receipt_refusals_write_nothing(self):
        s = self.stack
        e = email()
        c = self.contact(email=e)
        m = {"matchKey": e, "matchKeyType": "Email"}
        ok = [{"type": "PURCHASE", "grossPaidPrice": D("10")}]
        cases = [(m, [], 400, "VALIDATION_FAILED", "items"),
                 (m, [{"type": "PURCHASE", "grossPaidPrice": D("-1")}], 400,
                  "VALIDATION_FAILED", "items[0].grossPaidPrice"),
                 (m, [{"type": "PURCHASE", "grossPaidPrice": "ten"}], 400,
                  "VALIDATION_FAILED", "items[0].grossPaidPrice"),
                 (m, [{"type": "GIFT", "grossPaidPrice": D("1")}], 400,
                  "VALIDATION_FAILED", "items[0].type"),
                 ({"matchKey": "nobody@example.com", "matchKeyType": "Email"}, ok, 404,
                  "ContactNotFound", Ellipsis),
                 ({"matchKeyType": "Email"}, ok, 400, "VALIDATION_FAILED", "contact.matchKey")]
        for match, items, status, code, target in cases:
            rid = uniq("R")
            self.assertError(self.receipt(match, rid, items), status, code, target)
        self.assertEqual(self.overview(c["id"])["loyalty"]["pointsBalance"], 0)


if __name__ == "__main__":
    harness.main()
