#!/usr/bin/env python3
# test_coupons.py -- the coupon service through the real processes: every
# transition of the six-state machine and every refused one over
# /pos/coupons/*, reservation expiry, the races (50 concurrent reserves, 50
# concurrent redemptions of a limited GENERIC code), per-customer limits,
# personalised issue and its rate limit, batch generation, the code alphabet,
# tenant isolation and roles. The stack runs with a short reservation TTL.
# Seed 002 is the contract of the six POS operations (PRODUCT-DECISIONS §5):
# a business refusal is a 200 answer with the operation's flag false, a
# reason and a message; a personal code is usable by whoever holds it unless
# another customer is named.
import concurrent.futures
import datetime
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import ISO_RE, UUID_RE, instant, new_id, uniq, wait_until  # noqa: E402

TTL_MS = 2500
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
OPTS = {"coupon": ["coupon.reservation_ttl_ms=%d" % TTL_MS,
                   "coupon.sweep_ms=200", "coupon.batch_chunk=200"]}


# The messages of the reason codes (services/coupon/rules.h CP_REASON_MAP).
TEXT = {"NOT_FOUND": "no such coupon code",
        "NOT_ACTIVE_YET": "the coupon is not active yet",
        "EXPIRED": "the coupon has expired",
        "REDEEMED": "the coupon has already been redeemed",
        "RESERVED_BY_OTHER": "the coupon is reserved by another transaction",
        "OTHER_CUSTOMER": "the coupon belongs to another customer",
        "LIMIT_REACHED": "the coupon's redemption limit is reached",
        "CANCELLED": "the coupon has been cancelled",
        "INACTIVE": "the coupon type is not active"}

# What redeem and cancel say about a reservation, per reason.
RES_TEXT = {"NOT_FOUND": "reservation '%s' not found",
            "RESERVED_BY_OTHER": "reservation '%s' belongs to another transaction",
            "REDEEMED": "reservation '%s' has already been redeemed",
            "CANCELLED": "reservation '%s' has been cancelled",
            "EXPIRED": "reservation '%s' has expired"}

# A refused operation's seed 002 fields, besides message and reason.
REFUSED = {"reserve": {"reservationId": None, "reserved": False, "expiresAt": None},
           "redeem": {"redeemed": False},
           "cancel": {"cancelled": False},
           "activate": {"activated": False}}


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (dt.microsecond // 1000)


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


class Coupons(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = harness.shared_stack(opts=OPTS)

    # -- helpers ---------------------------------------------------------------
    def post(self, path, body, user="admin", **kw):
        return self.stack.post(path, body, user=user, **kw)

    def new_type(self, kind="INDIVIDUAL", user="admin", **kw):
        doc = {"name": uniq("Type"), "type": kind}
        doc.update(kw)
        r = self.post("/api/v1/CouponTypes", doc, user=user)
        self.assertStatus(r, 201)
        return r.body

    def new_code(self, ctype, code=None, user="admin", **kw):
        doc = {"couponTypeId": ctype["id"]}
        if code is not None:
            doc["code"] = code
        doc.update(kw)
        r = self.post("/api/v1/CouponCodes", doc, user=user)
        self.assertStatus(r, 201)
        return r.body["code"]

    def code_doc(self, code, user="admin"):
        r = self.stack.get("/api/v1/CouponCodes/" + code, user=user)
        self.assertStatus(r, 200)
        return r.body

    def status_of(self, code):
        return self.code_doc(code)["status"]

    def reserve(self, code, tx, **kw):
        body = {"code": code, "transactionId": tx}
        body.update(kw)
        return self.post("/pos/coupons/reserve", body, user="pos-reader")

    def redeem(self, res_id, tx):
        return self.post("/pos/coupons/redeem",
                         {"reservationId": res_id, "transactionId": tx},
                         user="pos-reader")

    def cancel(self, res_id):
        return self.post("/pos/coupons/cancel", {"reservationId": res_id},
                         user="pos-reader")

    def activate(self, code, customer):
        return self.post("/pos/coupons/activate",
                         {"code": code, "customerId": customer},
                         user="pos-reader")

    def validate(self, code, **kw):
        body = {"code": code}
        body.update(kw)
        r = self.post("/pos/coupons/validate", body, user="pos-reader")
        return self.assertOk(r)

    def assertReserved(self, r, code, tx):
        b = self.assertOk(r)
        self.assertEqual(set(b), {"reservationId", "reserved", "expiresAt",
                                  "message", "code"})
        self.assertRegex(b["reservationId"], UUID_RE)
        self.assertRegex(b["expiresAt"], ISO_RE)
        self.assertJson({"reservationId": b["reservationId"], "reserved": True,
                         "expiresAt": b["expiresAt"], "code": code,
                         "message": "coupon '%s' reserved for transaction '%s'"
                         % (code, tx)}, b)
        left = (instant(b["expiresAt"]) - utcnow()).total_seconds()
        self.assertTrue(0 < left <= TTL_MS / 1000 + 1, b)
        return b["reservationId"]

    def assertRedeemed(self, r, code):
        self.assertJson({"redeemed": True, "message": "coupon '%s' redeemed" % code},
                        self.assertOk(r))

    def assertRefusal(self, r, op, reason, message, **fields):
        """A business refusal (PRODUCT-DECISIONS §5): 200, never 404/409,
        and exactly the operation's fields with its flag false, the reason
        and the message."""
        b = self.assertOk(r)
        want = dict(REFUSED[op], message=message, reason=reason, **fields)
        self.assertJson(want, b)
        return b

    def assertNotReserved(self, r, code, reason):
        return self.assertRefusal(r, "reserve", reason,
                                  "coupon '%s': %s" % (code, TEXT[reason]), code=code)

    def assertNotRedeemed(self, r, res_id, reason):
        return self.assertRefusal(r, "redeem", reason, RES_TEXT[reason] % res_id)

    def assertNotCancelled(self, r, res_id, reason):
        msg = ("reservation '%s' has been redeemed and cannot be cancelled"
               if reason == "REDEEMED" else RES_TEXT[reason]) % res_id
        return self.assertRefusal(r, "cancel", reason, msg)

    def assertNotActivated(self, r, code, reason, valid_until=None):
        return self.assertRefusal(r, "activate", reason,
                                  "coupon '%s': %s" % (code, TEXT[reason]),
                                  code=code, validUntil=valid_until)

    def assertValid(self, code, reason=None, **kw):
        b = self.validate(code, **kw)
        self.assertEqual(set(b), {"valid", "code", "message", "promotionId",
                                  "validUntil", "reason", "couponTypeId",
                                  "status"})
        self.assertIs(b["valid"], reason is None, b)
        self.assertEqual(b["reason"], reason, b)
        return b

    # -- coupon types ----------------------------------------------------------
    def test_coupon_type_crud(self):
        name = uniq("Welcome")
        tid = new_id()
        r = self.post("/api/v1/CouponTypes", {
            "id": tid, "name": name, "type": "GENERIC", "prefix": "wel",
            "codeLength": 8, "maxRedemptions": 100,
            "maxRedemptionsPerCustomer": 2,
            "validFrom": "2026-01-01T00:00:00Z", "validTo": "2030-12-31T23:59:59Z",
            "isStackable": False, "description": "welcome gift",
            "maxRedemtions": 1}, user="promo-manager")
        # strict master data (PRODUCT-DECISIONS §1): named, with a hint
        self.assertError(r, 400, "VALIDATION_FAILED", "maxRedemtions")
        self.assertIn("did you mean 'maxRedemptions'?", r.body["error"]["message"])
        r = self.post("/api/v1/CouponTypes", {
            "id": tid, "name": name, "type": "GENERIC", "prefix": "wel",
            "codeLength": 8, "maxRedemptions": 100,
            "maxRedemptionsPerCustomer": 2,
            "validFrom": "2026-01-01T00:00:00Z", "validTo": "2030-12-31T23:59:59Z",
            "isStackable": False, "description": "welcome gift"}, user="promo-manager")
        self.assertStatus(r, 201)
        b = r.body
        self.assertRegex(b["createdAt"], ISO_RE)
        expected = {"minorVersion": 13, "id": tid, "name": name,
                    "description": "welcome gift", "type": "GENERIC",
                    "prefix": "WEL", "codeLength": 8, "maxRedemptions": 100,
                    "maxRedemptionsPerCustomer": 2,
                    "validFrom": "2026-01-01T00:00:00.000Z",
                    "validTo": "2030-12-31T23:59:59.000Z", "validityDays": None,
                    "isStackable": False, "status": "ACTIVE", "promotionIds": [],
                    "createdAt": b["createdAt"], "updatedAt": b["createdAt"]}
        self.assertJson(expected, b)
        self.assertJson(expected, self.stack.get("/api/v1/CouponTypes/" + tid).body)
        self.assertJson(expected, self.stack.get("/api/v1/CouponTypes(%s)" % tid).body)
        # the same name again: 409; an id again: 409
        self.assertError(self.post("/api/v1/CouponTypes",
                                   {"name": name, "type": "INDIVIDUAL"}),
                         409, "CONFLICT", "name")
        self.assertError(self.post("/api/v1/CouponTypes",
                                   {"id": tid, "name": uniq("X"), "type": "GENERIC"}),
                         409, "CONFLICT", "id")
        # PATCH changes what it names; PUT replaces (defaults for the rest)
        r = self.stack.request("PATCH", "/api/v1/CouponTypes/" + tid,
                               {"status": "INACTIVE", "maxRedemptions": None})
        self.assertStatus(r, 200)
        self.assertEqual((r.body["status"], r.body["maxRedemptions"],
                          r.body["prefix"]), ("INACTIVE", None, "WEL"))
        r = self.stack.request("PUT", "/api/v1/CouponTypes/" + tid,
                               {"name": name, "type": "GENERIC"})
        self.assertStatus(r, 200)
        self.assertEqual((r.body["status"], r.body["prefix"], r.body["codeLength"],
                          r.body["isStackable"], r.body["createdAt"]),
                         ("ACTIVE", "", 10, True, b["createdAt"]))
        self.assertError(self.stack.request("PATCH", "/api/v1/CouponTypes/" + tid,
                                            {"type": "INDIVIDUAL"}),
                         400, "VALIDATION_FAILED", "type")
        # list and filter
        r = self.stack.get("/api/v1/CouponTypes?$top=1000")
        self.assertOk(r)
        self.assertIn(tid, [t["id"] for t in r.body["value"]])
        self.assertEqual(r.body["count"], len(r.body["value"]))
        r = self.stack.get("/api/v1/CouponTypes?status=INACTIVE&$top=1000")
        self.assertNotIn(tid, [t["id"] for t in r.body["value"]])
        # a type with codes is not deleted; one without is
        self.new_code({"id": tid}, uniq("DEL"))
        self.assertError(self.stack.request("DELETE", "/api/v1/CouponTypes/" + tid),
                         409, "CONFLICT")
        t2 = self.new_type()
        r = self.stack.request("DELETE", "/api/v1/CouponTypes/" + t2["id"])
        self.assertStatus(r, 204)
        self.assertError(self.stack.get("/api/v1/CouponTypes/" + t2["id"]),
                         404, "NOT_FOUND")

    def test_coupon_type_validation(self):
        r = self.post("/api/v1/CouponTypes", {
            "type": "SOMETIMES", "prefix": "no spaces", "codeLength": 2,
            "maxRedemptions": 0, "validFrom": "2027-01-01T00:00:00Z",
            "validTo": "2026-01-01T00:00:00Z", "isStackable": "yes",
            "status": "ON"})
        e = self.assertError(r, 400, "VALIDATION_FAILED", "name")
        targets = {d["target"] for d in e["details"]}
        self.assertEqual(targets, {"name", "type", "prefix", "codeLength",
                                   "maxRedemptions", "validTo", "isStackable",
                                   "status"}, e)
        r = self.post("/api/v1/CouponTypes", {"name": uniq("I"), "type": "INDIVIDUAL",
                                              "maxRedemptions": 5})
        self.assertError(r, 400, "VALIDATION_FAILED", "maxRedemptions")
        self.assertError(self.post("/api/v1/CouponTypes", [1]), 400,
                         "VALIDATION_FAILED")

    # -- codes -----------------------------------------------------------------
    def test_codes_create_import_list(self):
        t = self.new_type(prefix="IMP", codeLength=6)
        c1 = self.new_code(t, "imp-aa")
        self.assertEqual(c1, "IMP-AA")  # codes are case-insensitive: stored upper
        self.assertError(self.post("/api/v1/CouponCodes",
                                   {"couponTypeId": t["id"], "code": "Imp-Aa"}),
                         409, "CONFLICT", "code")
        self.assertError(self.post("/api/v1/CouponCodes",
                                   {"couponTypeId": t["id"], "code": "no spaces"}),
                         400, "VALIDATION_FAILED", "code")
        self.assertError(self.post("/api/v1/CouponCodes", {"couponTypeId": new_id()}),
                         404, "NOT_FOUND", "couponTypeId")
        gen = self.new_code(t)  # drawn from the alphabet
        self.assertRegex(gen, "^IMP[%s]{6}$" % ALPHABET)
        cust = uniq("CUST")
        r = self.post("/api/v1/CouponCodes/import", {
            "couponTypeId": t["id"],
            "codes": ["IMP-B1", {"code": "imp-b2", "customerId": cust}, "IMP-AA",
                      "bad code", "IMP-B1", 7]})
        b = self.assertOk(r)
        self.assertEqual((b["imported"], b["failed"]), (2, 4), b)
        self.assertEqual(sorted((e["index"], e["target"]) for e in b["errors"]),
                         [(2, "codes[2]"), (3, "codes[3]"), (4, "codes[4]"),
                          (5, "codes[5]")])
        d = self.code_doc("IMP-B2")
        self.assertJson({"code": "IMP-B2", "couponTypeId": t["id"],
                         "status": "ACTIVE", "customerId": cust,
                         "origin": "IMPORT", "redemptionCount": 0}, d, subset=True)
        # list: by type, status, customer, paging
        r = self.stack.get("/api/v1/CouponCodes?couponTypeId=%s&$top=2" % t["id"])
        self.assertEqual((r.body["count"], len(r.body["value"])), (4, 2))
        r2 = self.stack.get("/api/v1/CouponCodes?couponTypeId=%s&$skip=2" % t["id"])
        self.assertEqual(len(r2.body["value"]), 2)
        self.assertEqual(len({c["code"] for c in r.body["value"] + r2.body["value"]}), 4)
        r = self.stack.get("/api/v1/CouponCodes?customerId=" + cust)
        self.assertEqual([c["code"] for c in r.body["value"]], ["IMP-B2"])
        res = self.assertReserved(self.reserve("IMP-B1", "T-L", customerId=None), "IMP-B1", "T-L")
        r = self.stack.get("/api/v1/CouponCodes?couponTypeId=%s&status=RESERVED" % t["id"])
        self.assertEqual([c["code"] for c in r.body["value"]], ["IMP-B1"])
        self.assertEqual(r.body["value"][0]["reservationRef"], res)
        self.assertError(self.stack.get("/api/v1/CouponCodes?status=SOLD"), 400,
                         "VALIDATION_FAILED", "status")
        self.assertError(self.stack.get("/api/v1/CouponCodes/NOPE-" + uniq("X")),
                         404, "NOT_FOUND")

    # -- the state machine -----------------------------------------------------
    def test_reserve_cancel_redeem_individual(self):
        t = self.new_type(validTo="2030-01-01T00:00:00Z")
        code = self.new_code(t, uniq("IND"))
        b = self.assertValid(code)
        self.assertJson({"valid": True, "code": code,
                         "message": "coupon '%s' is valid" % code,
                         "promotionId": None,
                         "validUntil": "2030-01-01T00:00:00.000Z", "reason": None,
                         "couponTypeId": t["id"], "status": "ACTIVE"}, b)
        # ACTIVE -> RESERVED
        t1, t2 = uniq("TX"), uniq("TX")
        res = self.assertReserved(self.reserve(code, t1), code, t1)
        d = self.code_doc(code)
        self.assertEqual((d["status"], d["reservationRef"], d["reservedByTransactionId"]),
                         ("RESERVED", res, t1))
        # the same transaction again: its reservation; another: refused
        self.assertEqual(self.assertOk(self.reserve(code, t1))["reservationId"], res)
        self.assertNotReserved(self.reserve(code, t2), code, "RESERVED_BY_OTHER")
        self.assertValid(code, "RESERVED_BY_OTHER", transactionId=t2)
        self.assertValid(code, transactionId=t1)
        # RESERVED -> ACTIVE by cancel; cancel is idempotent
        r = self.cancel(res)
        self.assertJson({"cancelled": True, "message":
                         "reservation '%s' released; coupon '%s' is available again"
                         % (res, code)}, self.assertOk(r))
        self.assertEqual(self.status_of(code), "ACTIVE")
        r = self.cancel(res)
        self.assertJson({"cancelled": True, "message":
                         "reservation '%s' was already released; coupon '%s' is not held"
                         % (res, code)}, self.assertOk(r))
        self.assertNotRedeemed(self.redeem(res, t1), res, "CANCELLED")
        # ACTIVE -> RESERVED -> REDEEMED
        res2 = self.assertReserved(self.reserve(code, t2), code, t2)
        self.assertNotEqual(res, res2)
        self.assertNotRedeemed(self.redeem(res2, t1), res2, "RESERVED_BY_OTHER")
        r = self.redeem(res2, t2)
        self.assertJson({"redeemed": True, "message": "coupon '%s' redeemed" % code},
                        self.assertOk(r))
        d = self.code_doc(code)
        self.assertEqual((d["status"], d["redemptionCount"], d["reservationRef"]),
                         ("REDEEMED", 1, None))
        # redeem is not idempotent; a redeemed code is final
        self.assertNotRedeemed(self.redeem(res2, t2), res2, "REDEEMED")
        self.assertNotCancelled(self.cancel(res2), res2, "REDEEMED")
        self.assertNotReserved(self.reserve(code, uniq("TX")), code, "REDEEMED")
        self.assertNotActivated(self.activate(code, "C1"), code, "REDEEMED",
                                "2030-01-01T00:00:00.000Z")
        self.assertValid(code, "REDEEMED")
        self.assertError(self.stack.request("PATCH", "/api/v1/CouponCodes/" + code,
                                            {"status": "CANCELLED"}),
                         409, "CONFLICT", "status")

    def test_unknown_and_malformed(self):
        """Unknown codes, reservations and types are refusals (200,
        NOT_FOUND); malformed requests stay 400 with the field as target."""
        nope = "NOPE-" + uniq("X")
        self.assertNotReserved(self.reserve(nope, "T"), nope, "NOT_FOUND")
        self.assertNotReserved(self.reserve(nope.lower(), "T"), nope.lower(), "NOT_FOUND")
        self.assertNotReserved(self.reserve("not a code!", "T"), "not a code!", "NOT_FOUND")
        rid = new_id()
        self.assertNotRedeemed(self.redeem(rid, "T"), rid, "NOT_FOUND")
        self.assertNotCancelled(self.cancel(rid), rid, "NOT_FOUND")
        self.assertNotActivated(self.activate(nope, "C"), nope, "NOT_FOUND")
        self.assertNotActivated(self.activate("not a code!", "C"), "not a code!",
                                "NOT_FOUND")
        b = self.validate("nope-" + uniq("x").lower())
        self.assertEqual((b["valid"], b["reason"], b["message"], b["status"]),
                         (False, "NOT_FOUND", "no such coupon code", None))
        for path, body, target in (
                ("reserve", {"transactionId": "T"}, "code"),
                ("reserve", {"code": "X"}, "transactionId"),
                ("reserve", {"code": 5, "transactionId": "T"}, "code"),
                ("redeem", {"reservationId": "x", "transactionId": "T"}, "reservationId"),
                ("redeem", {"reservationId": new_id()}, "transactionId"),
                ("cancel", {}, "reservationId"),
                ("activate", {"code": "X"}, "customerId"),
                ("activate", {"customerId": "C"}, "code"),
                ("activate", {"code": "X", "customerId": 7}, "customerId"),
                ("validate", {"code": "X" * 51}, "code"),
                ("validate", {"code": "X", "customerId": ["C"]}, "customerId"),
                ("reserve", {"code": "X", "transactionId": "T", "customerId": 5},
                 "customerId"),
                ("cancel", {"reservationId": "not-a-uuid"}, "reservationId"),
                ("issue", {"customerId": "C"}, "couponTypeId"),
                # an unknown type is a refusal, a request without customers
                # is malformed: malformed wins
                ("issue", {"couponTypeId": new_id()}, "customerId"),
                ("issue", {"couponTypeId": new_id(), "customerIds": "C"},
                 "customerIds")):
            r = self.post("/pos/coupons/" + path, body, user="pos-reader")
            self.assertError(r, 400, "VALIDATION_FAILED", target)
        self.assertError(self.post("/pos/coupons/validate", ["x"], user="pos-reader"),
                         400, "VALIDATION_FAILED")
        r = self.stack.post("/pos/coupons/validate", raw=b"{", user="pos-reader")
        self.assertError(r, 400, "MALFORMED_JSON")

    def test_issue_activate_personal(self):
        t = self.new_type(prefix="P", codeLength=12, validityDays=30)
        alice, bob = uniq("ALICE"), uniq("BOB")
        r = self.post("/pos/coupons/issue", {
            "couponTypeName": t["name"], "customerIds": [alice, bob],
            "reason": "birthday", "metadata": {"campaign": "B-DAY", "n": [1, 2]}},
            user="pos-reader")
        b = self.assertOk(r)
        self.assertEqual(set(b), {"issuedCount", "failedCount", "issuedCoupons",
                                  "failures", "message"})
        self.assertEqual((b["issuedCount"], b["failedCount"], b["failures"],
                          b["message"]), (2, 0, [], "2 coupons issued"))
        got = {c["customerId"]: c for c in b["issuedCoupons"]}
        self.assertEqual(set(got), {alice, bob})
        for c in got.values():
            self.assertRegex(c["code"], "^P[%s]{12}$" % ALPHABET)
            self.assertEqual((c["status"], c["couponTypeId"], c["validFrom"]),
                             ("CREATED", t["id"], None))
            days = (instant(c["validUntil"]) - instant(c["issuedAt"])).days
            self.assertEqual(days, 30)
        code = got[alice]["code"]
        d = self.code_doc(code)
        self.assertJson({"status": "CREATED", "customerId": alice, "origin": "ISSUE",
                         "issueReason": "birthday",
                         "metadata": {"campaign": "B-DAY", "n": [1, 2]}}, d, subset=True)
        # CREATED cannot be used, by its customer, anyone holding it, or
        # another customer named
        self.assertNotReserved(self.reserve(code, uniq("TX"), customerId=alice), code,
                               "NOT_ACTIVE_YET")
        self.assertNotReserved(self.reserve(code, uniq("TX")), code, "NOT_ACTIVE_YET")
        self.assertNotReserved(self.reserve(code, uniq("TX"), customerId=bob), code,
                               "OTHER_CUSTOMER")
        self.assertValid(code, "NOT_ACTIVE_YET", customerId=alice)
        self.assertValid(code, "NOT_ACTIVE_YET")
        # not by another customer: CREATED -> ACTIVE by its own
        self.assertNotActivated(self.activate(code, bob), code, "OTHER_CUSTOMER",
                                got[alice]["validUntil"])
        self.assertEqual(self.status_of(code), "CREATED")
        r = self.activate(code.lower(), alice)
        b = self.assertOk(r)
        self.assertJson({"activated": True, "code": code,
                         "message": "coupon '%s' activated" % code,
                         "validUntil": got[alice]["validUntil"]}, b)
        self.assertEqual(self.status_of(code), "ACTIVE")
        # again (the app retries): idempotent, nothing changes
        activated_at = self.code_doc(code)["activatedAt"]
        self.assertJson({"activated": True, "code": code,
                         "message": "coupon '%s' is already active" % code,
                         "validUntil": got[alice]["validUntil"]},
                        self.assertOk(self.activate(code, alice)))
        self.assertEqual(self.code_doc(code)["activatedAt"], activated_at)
        self.assertNotActivated(self.activate(code, bob), code, "OTHER_CUSTOMER",
                                got[alice]["validUntil"])
        # its customer uses it
        self.assertValid(code, customerId=alice)
        tx = uniq("TX")
        res = self.assertReserved(self.reserve(code, tx, customerId=alice), code, tx)
        self.assertRedeemed(self.redeem(res, tx), code)
        self.assertEqual(self.status_of(code), "REDEEMED")
        self.assertNotActivated(self.activate(code, alice), code, "REDEEMED",
                                got[alice]["validUntil"])
        self.assertError(self.post("/pos/coupons/issue",
                                   {"couponTypeId": t["id"], "customerIds": []},
                                   user="pos-reader"), 400, "VALIDATION_FAILED",
                         "customerIds")

    # -- personal codes: holding the code is the proof (PRODUCT-DECISIONS §5) --------
    def test_personal_code_without_customer(self):
        """Seed 002's validate {code} and reserve {code, transactionId}: a
        personal code works without a customerId; a different customerId is
        OTHER_CUSTOMER; its owner's customerId works."""
        t = self.new_type()
        owner, other = uniq("OWNER"), uniq("OTHER")
        anon, named = (self.new_code(t, uniq("PERS"), customerId=owner)
                       for _ in range(2))
        # nobody named: valid, reserved, redeemed
        self.assertJson({"valid": True, "code": anon,
                         "message": "coupon '%s' is valid" % anon,
                         "promotionId": None, "validUntil": None, "reason": None,
                         "couponTypeId": t["id"], "status": "ACTIVE"},
                        self.validate(anon))
        # another customer named: refused on validate and reserve
        self.assertJson({"valid": False, "code": anon,
                         "message": TEXT["OTHER_CUSTOMER"], "promotionId": None,
                         "validUntil": None, "reason": "OTHER_CUSTOMER",
                         "couponTypeId": t["id"], "status": "ACTIVE"},
                        self.validate(anon, customerId=other))
        self.assertNotReserved(self.reserve(anon, uniq("TX"), customerId=other), anon,
                               "OTHER_CUSTOMER")
        self.assertEqual(self.status_of(anon), "ACTIVE")
        tx = uniq("TX")
        res = self.assertReserved(self.reserve(anon, tx), anon, tx)
        self.assertNotReserved(self.reserve(anon, uniq("TX"), customerId=other), anon,
                               "OTHER_CUSTOMER")
        self.assertJson({"redeemed": True, "message": "coupon '%s' redeemed" % anon},
                        self.assertOk(self.redeem(res, tx)))
        d = self.code_doc(anon)
        self.assertEqual((d["status"], d["customerId"], d["redemptionCount"]),
                         ("REDEEMED", owner, 1))
        # its owner named: valid, reserved, redeemed
        self.assertValid(named, customerId=owner)
        tx = uniq("TX")
        res = self.assertReserved(self.reserve(named, tx, customerId=owner), named, tx)
        self.assertRedeemed(self.redeem(res, tx), named)
        self.assertEqual(self.status_of(named), "REDEEMED")

    def test_personal_generic_counts_for_owner(self):
        """A use without a customer is its owner's use: the per-customer
        limit of a personal GENERIC code counts it."""
        t = self.new_type("GENERIC", maxRedemptionsPerCustomer=1)
        owner = uniq("OWNER")
        code = self.new_code(t, uniq("PGEN"), customerId=owner)
        tx = uniq("TX")
        res = self.assertReserved(self.reserve(code, tx), code, tx)
        self.assertRedeemed(self.redeem(res, tx), code)
        self.assertNotReserved(self.reserve(code, uniq("TX")), code, "LIMIT_REACHED")
        self.assertNotReserved(self.reserve(code, uniq("TX"), customerId=owner), code,
                               "LIMIT_REACHED")
        self.assertNotReserved(self.reserve(code, uniq("TX"), customerId=uniq("O")),
                               code, "OTHER_CUSTOMER")
        self.assertValid(code, "LIMIT_REACHED")
        self.assertValid(code, "LIMIT_REACHED", customerId=owner)
        d = self.code_doc(code)
        self.assertEqual((d["status"], d["redemptionCount"]), ("ACTIVE", 1))

    # -- refusals are answers (PRODUCT-DECISIONS §5) -----------------------------------
    def test_refusals_are_answers(self):
        """One refusal of each of the six operations, exact bodies."""
        t = self.new_type(validTo="2031-06-30T12:00:00Z")
        code = self.new_code(t, uniq("REF"))
        t1, t2 = uniq("TX"), uniq("TX")
        res = self.assertReserved(self.reserve(code, t1), code, t1)
        # validate
        self.assertJson({"valid": False, "code": code,
                         "message": TEXT["RESERVED_BY_OTHER"], "promotionId": None,
                         "validUntil": "2031-06-30T12:00:00.000Z",
                         "reason": "RESERVED_BY_OTHER", "couponTypeId": t["id"],
                         "status": "RESERVED"},
                        self.validate(code, transactionId=t2))
        # reserve
        self.assertJson({"reservationId": None, "reserved": False, "expiresAt": None,
                         "message": "coupon '%s': the coupon is reserved by another "
                                    "transaction" % code,
                         "code": code, "reason": "RESERVED_BY_OTHER"},
                        self.assertOk(self.reserve(code.lower(), t2)))
        # redeem
        self.assertJson({"redeemed": False,
                         "message": "reservation '%s' belongs to another transaction"
                                    % res,
                         "reason": "RESERVED_BY_OTHER"},
                        self.assertOk(self.redeem(res, t2)))
        self.assertRedeemed(self.redeem(res, t1), code)
        # cancel
        self.assertJson({"cancelled": False,
                         "message": "reservation '%s' has been redeemed and cannot "
                                    "be cancelled" % res,
                         "reason": "REDEEMED"},
                        self.assertOk(self.cancel(res)))
        # activate
        self.assertJson({"activated": False, "code": code,
                         "message": "coupon '%s': the coupon has already been "
                                    "redeemed" % code,
                         "validUntil": "2031-06-30T12:00:00.000Z",
                         "reason": "REDEEMED"},
                        self.assertOk(self.activate(code, "C")))
        # issue: an unknown, an inactive, an expired type
        def issue(body):
            return self.assertOk(self.post("/pos/coupons/issue", body,
                                           user="pos-reader"))

        def refused(customers, reason, message):
            return {"issuedCount": 0, "failedCount": len(customers),
                    "issuedCoupons": [],
                    "failures": [{"customerId": c, "reason": reason,
                                  "message": message} for c in customers],
                    "message": message, "reason": reason}
        unknown = new_id()
        self.assertJson(refused(["A", "B"], "NOT_FOUND",
                                "coupon type '%s' not found" % unknown),
                        issue({"couponTypeId": unknown, "customerIds": ["A", "B"]}))
        name = uniq("No such type")
        self.assertJson(refused(["A"], "NOT_FOUND", "coupon type '%s' not found" % name),
                        issue({"couponTypeName": name, "customerId": "A"}))
        off = self.new_type(status="INACTIVE")
        self.assertJson(refused(["A"], "INACTIVE",
                                "coupon type '%s' is not active" % off["name"]),
                        issue({"couponTypeId": off["id"], "customerId": "A"}))
        old = self.new_type(validTo="2020-01-01T00:00:00Z")
        self.assertJson(refused(["A", "B", "C"], "EXPIRED",
                                "coupon type '%s' has expired: its validTo has passed"
                                % old["name"]),
                        issue({"couponTypeName": old["name"],
                               "customerIds": ["A", "B", "C"]}))
        self.assertEqual(self.stack.get("/api/v1/CouponCodes?couponTypeId=%s"
                                        % old["id"]).body["count"], 0)

    def test_admin_cancel(self):
        t = self.new_type()
        a, b, c = (self.new_code(t, uniq("CAN")) for _ in range(3))
        # ACTIVE -> CANCELLED
        r = self.stack.request("PATCH", "/api/v1/CouponCodes/" + a,
                               {"status": "CANCELLED"}, user="promo-manager")
        self.assertStatus(r, 200)
        self.assertEqual(r.body["status"], "CANCELLED")
        self.assertNotReserved(self.reserve(a, uniq("TX")), a, "CANCELLED")
        self.assertNotActivated(self.activate(a, "C"), a, "CANCELLED")
        self.assertValid(a, "CANCELLED")
        self.assertError(self.stack.request("PATCH", "/api/v1/CouponCodes/" + a,
                                            {"status": "CANCELLED"}), 409, "CONFLICT")
        # RESERVED -> CANCELLED releases the reservation
        tx = uniq("TX")
        res = self.assertReserved(self.reserve(b, tx), b, tx)
        r = self.stack.request("PATCH", "/api/v1/CouponCodes/" + b,
                               {"status": "CANCELLED"})
        self.assertEqual((r.body["status"], r.body["reservationRef"],
                          r.body["activeReservations"]), ("CANCELLED", None, 0))
        self.assertNotRedeemed(self.redeem(res, tx), res, "CANCELLED")
        # CREATED -> CANCELLED; nothing else may be set by PATCH
        r = self.post("/pos/coupons/issue", {"couponTypeId": t["id"], "customerId": "K"},
                      user="pos-reader")
        created = r.body["issuedCoupons"][0]["code"]
        r = self.stack.request("PATCH", "/api/v1/CouponCodes/" + created,
                               {"status": "CANCELLED"})
        self.assertEqual(r.body["status"], "CANCELLED")
        self.assertError(self.stack.request("PATCH", "/api/v1/CouponCodes/" + c,
                                            {"status": "REDEEMED"}),
                         400, "VALIDATION_FAILED", "status")

    def test_validity_expiry(self):
        """validTo passing: ACTIVE, RESERVED and CREATED codes become EXPIRED
        (the sweeper); before validFrom a code is not active yet."""
        soon = iso(utcnow() + datetime.timedelta(seconds=2))
        t = self.new_type(validTo=soon)
        active, reserved = self.new_code(t, uniq("EXP")), self.new_code(t, uniq("EXP"))
        created = self.post("/pos/coupons/issue", {"couponTypeId": t["id"],
                                                   "customerId": "E"},
                            user="pos-reader").body["issuedCoupons"][0]["code"]
        tx = uniq("TX")
        res = self.assertReserved(self.reserve(reserved, tx), reserved, tx)
        later = self.new_type(validFrom=iso(utcnow() + datetime.timedelta(days=1)))
        future = self.new_code(later, uniq("FUT"))
        self.assertValid(future, "NOT_ACTIVE_YET")
        self.assertNotReserved(self.reserve(future, uniq("TX")), future, "NOT_ACTIVE_YET")

        wait_until(lambda: all(self.status_of(c) == "EXPIRED"
                               for c in (active, reserved, created)),
                   10, what="codes past validTo to be EXPIRED")
        self.assertNotReserved(self.reserve(active, uniq("TX")), active, "EXPIRED")
        self.assertNotRedeemed(self.redeem(res, tx), res, "EXPIRED")
        self.assertNotActivated(self.activate(created, "E"), created, "EXPIRED",
                                soon)
        self.assertValid(active, "EXPIRED")

    def test_reservation_ttl(self):
        """A reservation not redeemed within the TTL lapses: the code is
        ACTIVE again and the old reservation cannot be redeemed."""
        t = self.new_type()
        code = self.new_code(t, uniq("TTL"))
        t1, t2 = uniq("TX"), uniq("TX")
        res = self.assertReserved(self.reserve(code, t1), code, t1)
        g = self.new_type("GENERIC", maxRedemptions=1)
        gcode = self.new_code(g, uniq("GTTL"))
        gres = self.assertReserved(self.reserve(gcode, t1), gcode, t1)
        self.assertNotReserved(self.reserve(gcode, t2), gcode, "LIMIT_REACHED")

        wait_until(lambda: self.status_of(code) == "ACTIVE", 10,
                   what="the reservation to lapse")
        d = self.code_doc(code)
        self.assertEqual((d["reservationRef"], d["activeReservations"]), (None, 0))
        self.assertNotRedeemed(self.redeem(res, t1), res, "EXPIRED")
        self.assertJson({"cancelled": True, "message":
                         "reservation '%s' was already expired; coupon '%s' is not held"
                         % (res, code)}, self.assertOk(self.cancel(res)))  # idempotent
        res2 = self.assertReserved(self.reserve(code, t2), code, t2)
        self.assertRedeemed(self.redeem(res2, t2), code)
        # the GENERIC slot held by t1 is free again
        wait_until(lambda: self.code_doc(gcode)["activeReservations"] == 0, 10,
                   what="the GENERIC hold to lapse")
        self.assertNotRedeemed(self.redeem(gres, t1), gres, "EXPIRED")
        gres2 = self.assertReserved(self.reserve(gcode, t2), gcode, t2)
        self.assertRedeemed(self.redeem(gres2, t2), gcode)
        self.assertEqual(self.status_of(gcode), "REDEEMED")

    # -- races -----------------------------------------------------------------
    def concurrently(self, fns):
        """Runs every fn at once (released together) and returns the results
        in order."""
        gate = threading.Barrier(len(fns))

        def run(fn):
            gate.wait()
            return fn()
        with concurrent.futures.ThreadPoolExecutor(len(fns)) as ex:
            return list(ex.map(run, fns))

    def test_race_50_reserves_one_code(self):
        t = self.new_type()
        code = self.new_code(t, uniq("RACE"))
        txs = [uniq("TX") for _ in range(50)]
        rs = self.concurrently([lambda tx=tx: self.reserve(code, tx) for tx in txs])
        ok = [(tx, r) for tx, r in zip(txs, rs) if self.assertOk(r)["reserved"]]
        self.assertEqual(len(ok), 1, [r.body for r in rs])
        for tx, r in zip(txs, rs):
            if tx != ok[0][0]:
                self.assertNotReserved(r, code, "RESERVED_BY_OTHER")
        d = self.code_doc(code)
        self.assertEqual((d["status"], d["reservedByTransactionId"],
                          d["reservationRef"], d["activeReservations"]),
                         ("RESERVED", ok[0][0], ok[0][1].body["reservationId"], 1))

    def test_race_generic_limit_10_of_50(self):
        t = self.new_type("GENERIC", maxRedemptions=10)
        code = self.new_code(t, uniq("GEN"))

        def attempt(tx):
            r = self.reserve(code, tx)
            if not self.assertOk(r)["reserved"]:
                return r
            return self.redeem(r.body["reservationId"], tx)
        rs = self.concurrently([lambda tx=uniq("TX"): attempt(tx) for _ in range(50)])
        redeemed = [r for r in rs if self.assertOk(r).get("redeemed")]
        self.assertEqual(len(redeemed), 10, [r.body for r in rs])
        for r in redeemed:
            self.assertJson({"redeemed": True, "message": "coupon '%s' redeemed" % code},
                            r.body)
        for r in rs:
            if r.body.get("redeemed") is not True:  # a reserve refused
                self.assertNotReserved(r, code, "LIMIT_REACHED")
        d = self.code_doc(code)
        self.assertEqual((d["status"], d["redemptionCount"], d["activeReservations"]),
                         ("REDEEMED", 10, 0))
        self.assertValid(code, "LIMIT_REACHED")

    def test_race_double_redeem(self):
        """10 reservations of a GENERIC code, each redeemed twice at once:
        exactly one redemption per reservation."""
        t = self.new_type("GENERIC", maxRedemptions=10)
        code = self.new_code(t, uniq("DBL"))
        held = []
        for _ in range(10):
            tx = uniq("TX")
            held.append((self.assertReserved(self.reserve(code, tx), code, tx), tx))
        rs = self.concurrently([lambda h=h: self.redeem(*h) for h in held + held])
        flags = [self.assertOk(r)["redeemed"] for r in rs]
        self.assertEqual(flags.count(True), 10, [r.body for r in rs])
        for i, (res, _) in enumerate(held):
            # exactly one of its two redeems won, the other was refused
            first, second = rs[i], rs[i + len(held)]
            self.assertEqual(sorted([first.body["redeemed"], second.body["redeemed"]]),
                             [False, True], (first.body, second.body))
            lost = first if not first.body["redeemed"] else second
            self.assertNotRedeemed(lost, res, "REDEEMED")
        self.assertEqual(self.code_doc(code)["redemptionCount"], 10)

    # -- GENERIC limits ----------------------------------------------------------
    def test_generic_per_customer_and_transaction(self):
        t = self.new_type("GENERIC", maxRedemptionsPerCustomer=2)
        code = self.new_code(t, uniq("PERC"))
        carol, dave = uniq("CAROL"), uniq("DAVE")

        def use(customer, tx=None):
            tx = tx or uniq("TX")
            res = self.assertReserved(self.reserve(code, tx, customerId=customer), code, tx)
            self.assertRedeemed(self.redeem(res, tx), code)
            return tx
        tx1 = use(carol)
        use(carol)
        self.assertNotReserved(self.reserve(code, uniq("TX"), customerId=carol), code,
                               "LIMIT_REACHED")
        self.assertValid(code, "LIMIT_REACHED", customerId=carol)
        self.assertValid(code, customerId=dave)
        use(dave)
        # a hold counts for the customer too
        tx = uniq("TX")
        self.assertReserved(self.reserve(code, tx, customerId=dave), code, tx)
        self.assertNotReserved(self.reserve(code, uniq("TX"), customerId=dave), code,
                               "LIMIT_REACHED")
        # one transaction redeems a code once; the code stays ACTIVE (no total)
        self.assertNotReserved(self.reserve(code, tx1, customerId=dave), code, "REDEEMED")
        d = self.code_doc(code)
        self.assertEqual((d["status"], d["redemptionCount"], d["activeReservations"]),
                         ("ACTIVE", 3, 1))

    # -- issue rate limit ------------------------------------------------------------
    def test_issue_rate_limit(self):
        """1000 codes per minute per tenant: the 1001st gets 429 with
        Retry-After (tenant-c does nothing else)."""
        u = "tenant-c-admin"
        r = self.post("/api/v1/CouponTypes", {"name": "Rate", "type": "INDIVIDUAL"},
                      user=u)
        self.assertStatus(r, 201)
        tid = r.body["id"]
        r = self.post("/pos/coupons/issue", {
            "couponTypeId": tid, "customerIds": ["C%04d" % i for i in range(990)]},
            user=u)
        b = self.assertOk(r)
        self.assertEqual((b["issuedCount"], b["failedCount"]), (990, 0))
        codes = [c["code"] for c in b["issuedCoupons"]]
        self.assertEqual(len(set(codes)), 990)
        for c in codes:
            self.assertRegex(c, "^[%s]{10}$" % ALPHABET)
        r = self.post("/pos/coupons/issue", {"couponTypeId": tid, "customerIds":
                                             ["D%d" % i for i in range(10)]}, user=u)
        self.assertEqual(self.assertOk(r)["issuedCount"], 10)
        r = self.post("/pos/coupons/issue", {"couponTypeId": tid, "customerId": "E"},
                      user=u)
        self.assertError(r, 429, "RATE_LIMITED")
        retry = int(r.headers["retry-after"])
        self.assertTrue(1 <= retry <= 60, r.headers)
        # another tenant is not limited by it
        t = self.new_type()
        r = self.post("/pos/coupons/issue", {"couponTypeId": t["id"], "customerId": "E"})
        self.assertEqual(self.assertOk(r)["issuedCount"], 1)

    # -- batches ---------------------------------------------------------------------
    def test_batch_generation(self):
        t = self.new_type(prefix="B", codeLength=7)
        n = 20000
        r = self.post("/api/v1/CouponCodeBatches", {"couponTypeId": t["id"],
                                                    "numberOfCodes": n})
        self.assertStatus(r, 202)
        b = r.body
        self.assertJson({"minorVersion": 13, "id": b["id"], "couponTypeId": t["id"],
                         "numberOfCodes": n, "generatedCount": 0, "progress": 0,
                         "status": "PENDING", "error": None,
                         "createdAt": b["createdAt"], "startedAt": None,
                         "completedAt": None}, b)
        # Polled at a fixed short interval (wait_until backs off) so that
        # the job is seen in progress; bounded by a deadline.
        seen = []
        end = time.monotonic() + harness.deadline(60)
        while time.monotonic() < end:
            s = self.stack.get("/api/v1/CouponCodeBatches/" + b["id"]).body
            seen.append((s["status"], s["progress"], s["generatedCount"]))
            if s["status"] in ("COMPLETED", "FAILED"):
                break
            time.sleep(0.003)
        states = [s for s, _, _ in seen]
        self.assertEqual(states[-1], "COMPLETED", seen[-5:])
        order = {"PENDING": 0, "GENERATING": 1, "COMPLETED": 2}
        self.assertEqual(states, sorted(states, key=order.get), seen)
        progress = [p for _, p, _ in seen]
        self.assertEqual(progress, sorted(progress))
        self.assertEqual(seen[-1][1:], (100, n))
        mid = [x for x in seen if x[0] == "GENERATING"]
        # progress stays below 100 until the job is COMPLETED (the last
        # chunk is written just before the job's end)
        self.assertTrue(mid, "no progress observed: %r" % seen[:5])
        self.assertEqual([x for x in mid if not (0 <= x[1] < 100 and 0 <= x[2] <= n)],
                         [])
        final = self.stack.get("/api/v1/CouponCodeBatches/" + b["id"]).body
        self.assertRegex(final["startedAt"], ISO_RE)
        self.assertRegex(final["completedAt"], ISO_RE)
        r = self.stack.get("/api/v1/CouponCodeBatches?couponTypeId=" + t["id"])
        self.assertEqual([x["id"] for x in r.body["value"]], [b["id"]])
        # every code: ACTIVE, from the alphabet, unique
        codes = set()
        for skip in range(0, n, 1000):
            r = self.stack.get("/api/v1/CouponCodes?couponTypeId=%s&$top=1000&$skip=%d"
                               % (t["id"], skip))
            self.assertEqual(r.body["count"], n)
            for c in r.body["value"]:
                self.assertEqual((c["status"], c["origin"], c["batchId"]),
                                 ("ACTIVE", "BATCH", b["id"]))
                codes.add(c["code"])
        self.assertEqual(len(codes), n)
        pat = re.compile("^B[%s]{7}$" % ALPHABET)
        self.assertEqual([c for c in codes if not pat.match(c)], [])
        self.assertFalse(set("0O1IL") & set("".join(codes)[1:]))
        self.assertError(self.post("/api/v1/CouponCodeBatches",
                                   {"couponTypeId": t["id"], "numberOfCodes": 0}),
                         400, "VALIDATION_FAILED", "numberOfCodes")

    # -- promotions linked to a coupon type ---------------------------------------------
    def test_promotion_link(self):
        t = self.new_type()
        code = self.new_code(t, uniq("LNK"))
        g = self.pos_group()
        p = harness.promotion(uniq("Coupon promo"), [],
                              [harness.pct_action(10, articles=["A-1"])],
                              pos_groups=[g["id"]], ptype="COUPON",
                              couponTypeIds=[t["id"]])
        self.stack.create_promotion(p)
        wait_until(lambda: self.stack.get("/api/v1/CouponTypes/" + t["id"])
                   .body["promotionIds"] == [p["id"]], 10,
                   what="the coupon service to learn the promotion link")
        self.assertEqual(self.validate(code)["promotionId"], p["id"])
        self.stack.request("POST", "/api/v1/Promotions/%s/deactivate" % p["id"])
        wait_until(lambda: self.validate(code)["promotionId"] is None, 10,
                   what="an inactive promotion not to be offered")

    # -- tenants and roles ----------------------------------------------------------------
    def test_tenant_isolation(self):
        t = self.new_type()
        code = self.new_code(t, uniq("TEN"))
        other = "tenant-b-admin"
        self.assertError(self.stack.get("/api/v1/CouponTypes/" + t["id"], user=other),
                         404, "NOT_FOUND")
        self.assertError(self.stack.get("/api/v1/CouponCodes/" + code, user=other),
                         404, "NOT_FOUND")
        r = self.stack.get("/api/v1/CouponTypes?$top=1000", user=other)
        self.assertNotIn(t["id"], [x["id"] for x in r.body["value"]])
        r = self.post("/pos/coupons/reserve", {"code": code, "transactionId": "T"},
                      user=other)
        self.assertNotReserved(r, code, "NOT_FOUND")
        # the same code string in the other tenant is another coupon
        t2 = self.new_type(user=other, name=t["name"])
        self.assertEqual(self.new_code(t2, code, user=other), code)
        r = self.post("/pos/coupons/reserve", {"code": code, "transactionId": "T"},
                      user=other)
        self.assertIs(self.assertOk(r)["reserved"], True)
        self.assertEqual(self.status_of(code), "ACTIVE")
        self.assertEqual(self.code_doc(code, user=other)["status"], "RESERVED")

    def test_roles(self):
        t = self.new_type()
        self.assertError(self.post("/api/v1/CouponTypes", {"name": uniq("R"),
                                                           "type": "GENERIC"},
                                   user="pos-reader"), 403, "FORBIDDEN")
        self.assertError(self.post("/pos/coupons/validate", {"code": "X"},
                                   user="promo-manager"), 403, "FORBIDDEN")
        self.assertError(self.post("/pos/coupons/validate", {"code": "X"}, user=None),
                         401, "UNAUTHORIZED")
        self.assertStatus(self.stack.get("/api/v1/CouponTypes/" + t["id"],
                                         user="api-writer"), 200)
        self.assertError(self.stack.get("/pos/coupons/validate"), 405,
                         "METHOD_NOT_ALLOWED")
        self.assertError(self.stack.request("DELETE", "/api/v1/CouponCodes/X"), 405,
                         "METHOD_NOT_ALLOWED")


if __name__ == "__main__":
    harness.main()
