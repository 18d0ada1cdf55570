#!/usr/bin/env python3
"""dre-webhook's event types beyond sales (issue 12, PRODUCT-DECISIONS §9),
each delivered to a real local receiver with its exact body: PROMOTION_*
(the webhook service follows the catalog's promotion feed), LOYALTY_* (from
dre.loyalty.events), COUPON_ISSUED and COUPON_EXPIRED (the coupon service's
issue and validity sweep); and the OData query options of
/api/v1/WebhookDeliveries."""
import datetime
import json

import harness
from harness import D, ISO_RE, UUID_RE, promotion, uniq, wait_until
from test_webhook import Receiver, verify

SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"  # base64 of 24 bytes
PROMO_TYPES = ["PROMOTION_CREATED", "PROMOTION_UPDATED", "PROMOTION_ACTIVATED",
               "PROMOTION_DEACTIVATED", "PROMOTION_DELETED"]
LOYALTY_TYPES = ["LOYALTY_POINTS_AWARDED", "LOYALTY_POINTS_DEDUCTED",
                 "LOYALTY_LEVEL_CHANGED", "LOYALTY_VOUCHER_CREATED",
                 "LOYALTY_VOUCHER_REDEEMED", "LOYALTY_PROMOTION_ASSIGNED",
                 "LOYALTY_PROMOTION_REDEEMED", "LOYALTY_CONTACT_CREATED",
                 "LOYALTY_CONTACT_UPDATED"]


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


class WebhookEvents(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.s = cls.stack
        cls.rx = Receiver()

    @classmethod
    def tearDownClass(cls):
        cls.rx.close()

    def subscribe(self, path, types):
        r = self.s.post("/api/v1/WebhookSubscriptions", {
            "url": self.rx.url(path), "eventTypes": types, "secret": SECRET})
        self.assertStatus(r, 201)
        return r.body

    def bodies(self, path, n, what):
        """The first n requests at path: each signed, its body's id the
        webhook-id, its timestamp ISO-8601; returned as parsed bodies."""
        try:
            got = wait_until(lambda: self.rx.at(path) if len(self.rx.at(path)) >= n
                             else None, harness.deadline(20), what=what)
        except AssertionError:
            print("received at %s:" % path, [g[2] for g in self.rx.at(path)])
            raise
        out = []
        for _, h, b, _ in got:
            self.assertTrue(verify(SECRET, h, b), h)
            x = json.loads(b, parse_float=D)
            self.assertEqual(x["id"], h["webhook-id"])
            self.assertRegex(x["id"], UUID_RE)
            self.assertRegex(x["timestamp"], ISO_RE)
            self.assertEqual("default", x["tenant"])
            out.append(x)
        return out

    def strip(self, x):
        """A body without what the test cannot know in advance (id and
        timestamp, checked in bodies())."""
        return {k: v for k, v in x.items() if k not in ("id", "timestamp")}

    def by_type(self, bodies):
        out = {}
        for x in bodies:
            out.setdefault(x["type"], []).append(x)
        return out

    # -- promotions ----------------------------------------------------------
    def test_promotion_events(self):
        self.subscribe("/promo", PROMO_TYPES)
        pg = self.s.create_pos_group()["id"]
        doc = promotion(uniq("WH promo"), [], [harness.pct_action(10)],
                        pos_groups=[pg], status="INACTIVE")
        pid = self.s.create_promotion(doc)["id"]

        def current():
            d = self.assertOk(self.s.get("/api/v1/Promotions/" + pid))
            d.pop("minorVersion", None)
            return d
        created = self.bodies("/promo", 1, "PROMOTION_CREATED")[0]
        self.assertEqual({"type": "PROMOTION_CREATED", "tenant": "default",
                          "data": {"promotionId": pid, "status": "INACTIVE",
                                   "previousStatus": None, "promotion": current()}},
                         self.strip(created))

        self.assertOk(self.s.post("/api/v1/Promotions/%s/activate" % pid))
        got = self.by_type(self.bodies("/promo", 3, "activation events")[1:])
        active = current()
        self.assertEqual({"PROMOTION_UPDATED", "PROMOTION_ACTIVATED"}, set(got))
        for t in ("PROMOTION_UPDATED", "PROMOTION_ACTIVATED"):
            self.assertEqual({"type": t, "tenant": "default",
                              "data": {"promotionId": pid, "status": "ACTIVE",
                                       "previousStatus": "INACTIVE",
                                       "promotion": active}},
                             self.strip(got[t][0]))
        # Two events of one change: two ids, neither the other's.
        self.assertNotEqual(got["PROMOTION_UPDATED"][0]["id"],
                            got["PROMOTION_ACTIVATED"][0]["id"])

        self.assertOk(self.s.post("/api/v1/Promotions/%s/deactivate" % pid))
        got = self.by_type(self.bodies("/promo", 5, "deactivation events")[3:])
        inactive = current()
        self.assertEqual({"PROMOTION_UPDATED", "PROMOTION_DEACTIVATED"}, set(got))
        for t in ("PROMOTION_UPDATED", "PROMOTION_DEACTIVATED"):
            self.assertEqual({"type": t, "tenant": "default",
                              "data": {"promotionId": pid, "status": "INACTIVE",
                                       "previousStatus": "ACTIVE",
                                       "promotion": inactive}},
                             self.strip(got[t][0]))

        self.assertStatus(self.s.request("DELETE", "/api/v1/Promotions/" + pid), 204)
        deleted = self.bodies("/promo", 6, "PROMOTION_DELETED")[5]
        self.assertEqual({"type": "PROMOTION_DELETED", "tenant": "default",
                          "data": {"promotionId": pid, "status": None,
                                   "previousStatus": "INACTIVE", "promotion": None}},
                         self.strip(deleted))

        # Created ACTIVE: CREATED and ACTIVATED. A restart of dre-webhook
        # raises nothing again (the copy and the offsets are one batch).
        doc = promotion(uniq("WH live"), [], [harness.pct_action(5)], pos_groups=[pg])
        pid2 = self.s.create_promotion(doc)["id"]
        got = self.by_type(self.bodies("/promo", 8, "created active")[6:])
        self.assertEqual({"PROMOTION_CREATED", "PROMOTION_ACTIVATED"}, set(got))
        for t in got:
            self.assertEqual({"promotionId": pid2, "status": "ACTIVE",
                              "previousStatus": None, "promotion": current_of(self.s, pid2)},
                             got[t][0]["data"])
        self.s.stop_service("webhook")
        self.s.start_service("webhook")
        self.assertOk(self.s.post("/api/v1/Promotions/%s/deactivate" % pid2))
        got = self.by_type(self.bodies("/promo", 10, "after a restart")[8:])
        self.assertEqual({"PROMOTION_UPDATED", "PROMOTION_DEACTIVATED"}, set(got))
        self.assertEqual(10, len(self.rx.at("/promo")))

    # -- loyalty ---------------------------------------------------------------
    def test_loyalty_events(self):
        self.subscribe("/loyalty", LOYALTY_TYPES)
        mail = uniq("wh").lower() + "@example.com"
        r = self.s.post("/api/v3/contacts?source=POS&storeExternalId=S1",
                        {"email": mail, "firstName": "Ada"})
        self.assertStatus(r, 201)
        cid = r.body["id"]
        got = self.bodies("/loyalty", 1, "LOYALTY_CONTACT_CREATED")
        self.assertEqual({"type": "LOYALTY_CONTACT_CREATED", "tenant": "default",
                          "data": {"contactId": cid, "points": 0, "pointsBalance": 0,
                                   "level": "BASE"}},
                         self.strip(got[0]))
        # A receipt of 1,200.00: 1,200 points, BASE -> SILVER.
        def receipt(kind, amount):
            rid = uniq("R")
            r = self.s.post("/api/v3/receipts", {
                "contact": {"matchKey": mail, "matchKeyType": "Email"},
                "uniqueReceiptId": rid, "receiptNumber": rid,
                "createdDate": "2026-06-07T12:00:00Z", "storeExternalId": "S1",
                "currency": "EUR",
                "items": [{"type": kind, "sku": "A", "quantity": 1,
                           "grossPaidPrice": D(amount)}]})
            self.assertStatus(r, 202)
            return rid
        rid = receipt("PURCHASE", "1200.00")
        got = self.by_type(self.bodies("/loyalty", 3, "the receipt's events")[1:])
        self.assertEqual(
            {"LOYALTY_POINTS_AWARDED": [
                {"type": "LOYALTY_POINTS_AWARDED", "tenant": "default",
                 "data": {"contactId": cid, "points": 1200, "pointsBalance": 1200,
                          "level": "SILVER", "receiptId": rid}}],
             "LOYALTY_LEVEL_CHANGED": [
                {"type": "LOYALTY_LEVEL_CHANGED", "tenant": "default",
                 "data": {"contactId": cid, "points": 0, "pointsBalance": 1200,
                          "level": "SILVER", "previousLevel": "BASE",
                          "receiptId": rid}}]},
            {t: [self.strip(x) for x in v] for t, v in got.items()})
        # A return of 300.00: 300 points deducted, SILVER -> BASE.
        rid = receipt("RETURN", "300.00")
        got = self.by_type(self.bodies("/loyalty", 5, "the return's events")[3:])
        self.assertEqual(
            {"LOYALTY_POINTS_DEDUCTED": [
                {"type": "LOYALTY_POINTS_DEDUCTED", "tenant": "default",
                 "data": {"contactId": cid, "points": 300, "pointsBalance": 900,
                          "level": "BASE", "receiptId": rid}}],
             "LOYALTY_LEVEL_CHANGED": [
                {"type": "LOYALTY_LEVEL_CHANGED", "tenant": "default",
                 "data": {"contactId": cid, "points": 0, "pointsBalance": 900,
                          "level": "BASE", "previousLevel": "SILVER",
                          "receiptId": rid}}]},
            {t: [self.strip(x) for x in v] for t, v in got.items()})
        # A changed contact.
        self.assertOk(self.s.request("PATCH", "/api/v3/contacts/" + cid,
                                     {"firstName": "Ada L."}))
        got = self.bodies("/loyalty", 6, "LOYALTY_CONTACT_UPDATED")[5:]
        self.assertEqual(
            [{"type": "LOYALTY_CONTACT_UPDATED", "tenant": "default",
              "data": {"contactId": cid, "points": 0, "pointsBalance": 900,
                       "level": "BASE"}}],
            [self.strip(x) for x in got])

    # -- coupons ---------------------------------------------------------------
    def test_coupon_issued_and_expired(self):
        """COUPON_ISSUED: a code issued to a customer (/pos/coupons/issue) or
        created for one by an administrator; a code for whoever holds it is
        not issued. COUPON_EXPIRED: every code of a type whose validTo
        passes (the coupon service's sweep, coupon.sweep_ms)."""
        self.subscribe("/coupon", ["COUPON_ISSUED", "COUPON_EXPIRED"])
        soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)
        r = self.s.post("/api/v1/CouponTypes", {"name": uniq("WH type"),
                                                "type": "INDIVIDUAL", "validTo": iso(soon)})
        self.assertStatus(r, 201)
        tid = r.body["id"]
        cust, cust2 = uniq("CUST"), uniq("CUST")
        r = self.s.post("/pos/coupons/issue", {"couponTypeId": tid, "customerIds": [cust],
                                               "reason": "birthday"}, user="pos-reader")
        issued = self.assertOk(r)["issuedCoupons"][0]["code"]
        r = self.s.post("/api/v1/CouponCodes", {"couponTypeId": tid, "customerId": cust2})
        self.assertStatus(r, 201)
        personal = r.body["code"]
        r = self.s.post("/api/v1/CouponCodes", {"couponTypeId": tid})
        self.assertStatus(r, 201)
        anyone = r.body["code"]
        got = self.by_type(self.bodies("/coupon", 5, "COUPON_ISSUED and COUPON_EXPIRED"))
        key = lambda x: x["data"]["code"]
        self.assertEqual(
            sorted([{"type": "COUPON_ISSUED", "tenant": "default",
                     "data": {"code": issued, "couponTypeId": tid, "customerId": cust}},
                    {"type": "COUPON_ISSUED", "tenant": "default",
                     "data": {"code": personal, "couponTypeId": tid,
                              "customerId": cust2}}], key=key),
            sorted([self.strip(x) for x in got["COUPON_ISSUED"]], key=key))
        expired = [{"type": "COUPON_EXPIRED", "tenant": "default",
                    "data": {"code": c, "couponTypeId": tid, "customerId": u,
                             "count": 0}}
                   for c, u in ((issued, cust), (personal, cust2), (anyone, None))]
        del expired[2]["data"]["customerId"]  # a code of whoever holds it
        self.assertEqual(
            sorted(expired, key=key),
            sorted([self.strip(x) for x in got["COUPON_EXPIRED"]], key=key))

    # -- OData on deliveries -----------------------------------------------------
    def test_deliveries_odata(self):
        sub = self.subscribe("/odata", ["WEBHOOK_TEST"])
        ids = [self.s.post("/api/v1/WebhookSubscriptions/%s/test" % sub["id"]).body["id"]
               for _ in range(3)]
        wait_until(lambda: len(self.rx.at("/odata")) >= 3, harness.deadline(10),
                   what="three tests delivered")
        mine = "subscriptionId eq '%s'" % sub["id"]

        def q(**opts):
            qs = "&".join("%s=%s" % (k, v.replace(" ", "%20").replace("'", "%27"))
                          for k, v in opts.items())
            return self.s.get("/api/v1/WebhookDeliveries?" + qs)
        wait_until(lambda: q(**{"$filter": mine + " and status eq 'DELIVERED'"})
                   .body["count"] == 3, harness.deadline(10), what="DELIVERED")
        r = self.assertOk(q(**{"$filter": mine, "$orderby": "createdAt desc,id",
                               "$count": "true"}))
        self.assertEqual(3, r["count"])
        order = [x["id"] for x in r["value"]]
        self.assertEqual(set(ids), set(order))
        created = [x["createdAt"] for x in r["value"]]
        self.assertEqual(sorted(created, reverse=True), created)
        r = self.assertOk(q(**{"$filter": mine, "$orderby": "createdAt desc,id",
                               "$top": "1", "$skip": "1", "$select": "id,status"}))
        self.assertEqual({"minorVersion": r["minorVersion"], "count": 3,
                          "value": [{"id": order[1], "status": "DELIVERED"}]}, r)
        r = self.assertOk(q(**{"$filter": mine + " and lastStatusCode eq 204 and "
                               "eventType eq 'WEBHOOK_TEST'", "$select": "eventType"}))
        self.assertEqual([{"eventType": "WEBHOOK_TEST"}] * 3, r["value"])
        # The §9 filters still apply beside $filter.
        r = self.assertOk(q(subscriptionId=sub["id"], status="FAILED"))
        self.assertEqual((0, []), (r["count"], r["value"]))
        self.assertEqual(0, self.assertOk(q(**{"$filter": mine + " and status ne "
                                               "'DELIVERED'"}))["count"])
        for opts, target in (({"$filter": "attempts eq"}, "$filter"),
                             ({"$filter": "secret eq 'x'"}, "$filter"),
                             ({"$orderby": "payload"}, "$orderby"),
                             ({"$expand": "attemptLog"}, "$expand"),
                             ({"$top": "-1"}, "$top")):
            r = q(**opts)
            self.assertStatus(r, 400)
            self.assertEqual(("VALIDATION_FAILED", target),
                             (r.body["error"]["code"], r.body["error"]["target"]), r)


def current_of(s, pid):
    d = s.get("/api/v1/Promotions/" + pid).body
    d.pop("minorVersion", None)
    return d


if __name__ == "__main__":
    harness.main()
