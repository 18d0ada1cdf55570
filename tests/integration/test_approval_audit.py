#!/usr/bin/env python3
# test_approval_audit.py -- issue 13.5 and 13.6: the approval workflow
# (submit, approve, reject with a reason; four eyes; the tenant setting
# requireApproval, and without it the behaviour from before) and the audit
# log (exact records with before/after for create, update and delete of
# the catalog's, budget, coupon, webhook and loyalty writes, the
# query options, the read roles, tenant scoping, the nng entry point for
# auth events, and confirm's calculation record with the promotion ids and
# versions it priced with).
import json
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, ISO_RE, UUID_RE, basket, item, pct_action, promotion, uniq  # noqa: E402

# Users of two tenants of their own: "appr" (requireApproval on) and "aud"
# (a fresh audit log), "loy" (the loyalty writes' log), plus an auditor of
# the default tenant.
USERS = {
    "appr-editor": ("ed", "PromotionManager", "appr"),
    "appr-admin": ("ad", "Admin", "appr"),
    "appr-approver": ("ap", "PromotionApprover", "appr"),
    "aud-admin": ("ad", "Admin", "aud"),
    "aud-auditor": ("au", "Auditor", "aud"),
    "auditor": ("au", "Auditor", "default"),
    "aud-victim": ("vi", "PromotionManager", "aud"),
    "loy-admin": ("lo", "Admin", "loy"),
}
for _u, (_pw, _role, _t) in USERS.items():
    harness.USERS[_u] = _pw
AUTH_USERS = harness.EXTRA_USERS + "," + ",".join(
    "%s:%s:%s:%s" % (u, pw, role, t) for u, (pw, role, t) in USERS.items())


def stack():
    return harness.shared_stack(opts={"gateway": ["auth.users=" + AUTH_USERS]})


def doc_of(body):
    """A document as stored: the answer without minorVersion."""
    return {k: v for k, v in body.items() if k != "minorVersion"}


class Approval(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = stack()
        s = cls.stack
        r = s.request("PUT", "/api/v1/TenantSettings", {"requireApproval": True},
                      user="appr-admin")
        if r.status != 200:
            raise AssertionError("settings: %r" % r)

    def draft(self, user="appr-editor", **kw):
        art = uniq("ART")
        p = promotion("Ten off", [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(10, articles=[art])], status="DRAFT", **kw)
        b = self.assertStatus201(self.stack.post("/api/v1/Promotions", p, user=user))
        self.assertEqual(b["status"], "DRAFT")
        return p["id"]

    def assertStatus201(self, r):
        self.assertStatus(r, 201)
        return r.body

    def act(self, pid, action, user, body=None):
        return self.stack.post("/api/v1/Promotions/%s/%s" % (pid, action), body, user=user)

    def status_after(self, pid, action, user, body=None):
        return self.assertOk(self.act(pid, action, user, body))["status"]

    def test_settings_show_the_requirement(self):
        b = self.assertOk(self.stack.get("/api/v1/TenantSettings", user="appr-admin"))
        self.assertJson({"minorVersion": 13, "enableProductionNudges": False,
                         "currency": "EUR", "rejectUnknownFields": False,
                         "requireApproval": True}, b, subset=True)
        self.assertError(self.stack.request("PUT", "/api/v1/TenantSettings",
                                            {"requireApproval": "yes"}, user="appr-admin"),
                         400, "VALIDATION_FAILED", "requireApproval")
        # Only an admin switches it: a manager's PUT must keep it.
        self.assertError(self.stack.request("PUT", "/api/v1/TenantSettings",
                                            {"currency": "EUR"}, user="appr-editor"),
                         403, "FORBIDDEN", "requireApproval")
        self.assertOk(self.stack.request("PUT", "/api/v1/TenantSettings",
                                         {"requireApproval": True}, user="appr-editor"))
        self.assertError(self.stack.request("PUT", "/api/v1/TenantSettings",
                                            {"requireApproval": True}, user="promo-manager"),
                         403, "FORBIDDEN", "requireApproval")

    def test_four_eyes(self):
        s = self.stack
        pid = self.draft()
        # Nothing reaches ACTIVE (or a workflow status) by a write or activate.
        art = uniq("ART")
        live = promotion("Live", [{"type": "ARTICLE", "values": [art]}],
                         [pct_action(5, articles=[art])], status="ACTIVE")
        self.assertError(s.post("/api/v1/Promotions", live, user="appr-editor"),
                         409, "APPROVAL_REQUIRED", "status")
        self.assertError(s.request("PATCH", "/api/v1/Promotions/" + pid,
                                   {"status": "APPROVED"}, user="appr-editor"),
                         409, "APPROVAL_REQUIRED", "status")
        self.assertError(self.act(pid, "activate", "appr-editor"), 409,
                         "APPROVAL_REQUIRED", "status")
        # Approving needs the role, and a pending promotion.
        self.assertError(self.act(pid, "approve", "appr-approver"), 409, "CONFLICT", "status")
        self.assertEqual(self.status_after(pid, "submit", "appr-editor"), "PENDING_APPROVAL")
        self.assertError(self.act(pid, "submit", "appr-editor"), 409, "CONFLICT", "status")
        self.assertError(self.act(pid, "approve", "appr-editor"), 403, "FORBIDDEN")
        # An edit takes it back to DRAFT and makes the admin its last editor.
        b = self.assertOk(s.request("PATCH", "/api/v1/Promotions/" + pid,
                                    {"name": "Ten off (admin)"}, user="appr-admin"))
        self.assertEqual((b["status"], b["name"]), ("DRAFT", "Ten off (admin)"))
        self.assertEqual(self.status_after(pid, "submit", "appr-admin"), "PENDING_APPROVAL")
        self.assertError(self.act(pid, "approve", "appr-admin"), 403,
                         "FOUR_EYES_REQUIRED", None)
        self.assertEqual(self.status_after(pid, "approve", "appr-approver"), "APPROVED")
        self.assertError(self.act(pid, "approve", "appr-approver"), 409, "CONFLICT", "status")
        self.assertEqual(self.status_after(pid, "activate", "appr-editor"), "ACTIVE")
        self.assertEqual(self.assertOk(s.get("/api/v1/Promotions/" + pid,
                                             user="appr-editor"))["status"], "ACTIVE")
        # ACTIVE cannot be edited; deactivated and re-activated unchanged it
        # can; once edited it needs approval again.
        self.assertError(s.request("PATCH", "/api/v1/Promotions/" + pid,
                                   {"name": "sneaky"}, user="appr-editor"),
                         409, "APPROVAL_REQUIRED", "status")
        self.assertEqual(self.status_after(pid, "deactivate", "appr-editor"), "INACTIVE")
        self.assertEqual(self.status_after(pid, "activate", "appr-editor"), "ACTIVE")
        self.assertEqual(self.status_after(pid, "deactivate", "appr-editor"), "INACTIVE")
        b = self.assertOk(s.request("PATCH", "/api/v1/Promotions/" + pid,
                                    {"name": "changed"}, user="appr-editor"))
        self.assertEqual(b["status"], "INACTIVE")
        self.assertError(self.act(pid, "activate", "appr-editor"), 409,
                         "APPROVAL_REQUIRED", "status")
        self.assertEqual(self.status_after(pid, "submit", "appr-editor"), "PENDING_APPROVAL")
        self.assertEqual(self.status_after(pid, "approve", "appr-admin"), "APPROVED")
        self.assertEqual(self.status_after(pid, "activate", "appr-admin"), "ACTIVE")
        self.assertError(self.act(uniq("nope"), "submit", "appr-editor"), 404, "NOT_FOUND")

    def test_reject_with_reason(self):
        s = self.stack
        pid = self.draft()
        self.assertEqual(self.status_after(pid, "submit", "appr-editor"), "PENDING_APPROVAL")
        self.assertError(self.act(pid, "reject", "appr-approver", {}), 400,
                         "VALIDATION_FAILED", "reason")
        self.assertError(self.act(pid, "reject", "appr-approver", {"reason": ""}), 400,
                         "VALIDATION_FAILED", "reason")
        self.assertError(self.act(pid, "reject", "appr-approver", {"reason": "x", "why": 1}),
                         400, "VALIDATION_FAILED", "why")
        self.assertError(self.act(pid, "reject", "appr-editor", {"reason": "mine"}),
                         403, "FORBIDDEN")
        reason = "10 % is more than the category's margin allows"
        self.assertEqual(self.status_after(pid, "reject", "appr-approver", {"reason": reason}),
                         "REJECTED")
        self.assertError(self.act(pid, "activate", "appr-editor"), 409,
                         "APPROVAL_REQUIRED", "status")
        self.assertError(self.act(pid, "approve", "appr-admin"), 409, "CONFLICT", "status")
        # The reason is in the audit log, with who rejected what.
        q = "/api/v1/AuditLogs?$filter=entityId eq '%s' and action eq 'reject'" % pid
        b = self.assertOk(s.get(q.replace(" ", "%20"), user="appr-admin"))
        self.assertEqual(b["count"], 1, b)
        rec = b["value"][0]
        self.assertJson({"actor": "appr-approver", "entity": "Promotion", "entityId": pid,
                         "action": "reject", "details": {"reason": reason}}, rec, subset=True)
        self.assertEqual((rec["before"]["status"], rec["after"]["status"]),
                         ("PENDING_APPROVAL", "REJECTED"))
        # Rejected, it can be edited (back to DRAFT) or submitted again.
        self.assertEqual(self.status_after(pid, "submit", "appr-editor"), "PENDING_APPROVAL")

    def test_without_the_setting_nothing_changes(self):
        s = self.stack
        b = self.assertOk(s.get("/api/v1/TenantSettings"))
        self.assertNotIn("requireApproval", b)
        art = uniq("ART")
        p = promotion("Live at once", [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(5, articles=[art])], status="ACTIVE")
        self.assertEqual(self.assertStatus201(s.post("/api/v1/Promotions", p))["status"],
                         "ACTIVE")
        b = self.assertOk(s.request("PATCH", "/api/v1/Promotions/" + p["id"],
                                    {"name": "edited live"}, user="promo-manager"))
        self.assertEqual(b["status"], "ACTIVE")
        self.assertEqual(self.status_after(p["id"], "deactivate", "promo-manager"), "INACTIVE")
        self.assertEqual(self.status_after(p["id"], "activate", "promo-manager"), "ACTIVE")
        # The workflow is there all the same, four eyes included.
        d = promotion("Draft", [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(5, articles=[art])], status="DRAFT")
        self.assertStatus201(s.post("/api/v1/Promotions", d, user="promo-manager"))
        self.assertEqual(self.status_after(d["id"], "submit", "promo-manager"),
                         "PENDING_APPROVAL")
        self.assertEqual(self.status_after(d["id"], "approve", "admin"), "APPROVED")
        self.assertEqual(self.status_after(d["id"], "activate", "promo-manager"), "ACTIVE")
        d2 = promotion("Draft 2", [{"type": "ARTICLE", "values": [art]}],
                       [pct_action(5, articles=[art])], status="DRAFT")
        self.assertStatus201(s.post("/api/v1/Promotions", d2))
        self.assertEqual(self.status_after(d2["id"], "submit", "admin"), "PENDING_APPROVAL")
        self.assertError(self.act(d2["id"], "approve", "admin"), 403,
                         "FOUR_EYES_REQUIRED", None)
        # Activate works from any status, as before.
        self.assertEqual(self.status_after(d2["id"], "reject", "admin", {"reason": "no"}),
                         "REJECTED")
        self.assertEqual(self.status_after(d2["id"], "activate", "admin"), "ACTIVE")


class AuditLog(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = stack()

    def logs(self, query="", user="aud-auditor"):
        path = "/api/v1/AuditLogs" + (("?" + query.replace(" ", "%20")) if query else "")
        return self.assertOk(self.stack.get(path, user=user))

    def test_records_of_create_update_delete(self):
        s = self.stack
        code = uniq("S")[:20]
        r = s.post("/api/v1/PosGroups", {"code": code, "name": "North"}, user="aud-admin")
        self.assertStatus(r, 201)
        created = doc_of(r.body)
        gid = created["id"]
        r = s.request("PATCH", "/api/v1/PosGroups/" + gid, {"name": "North-East"},
                      user="aud-admin")
        updated = doc_of(self.assertOk(r))
        self.assertStatus(s.request("DELETE", "/api/v1/PosGroups/" + gid, user="aud-admin"),
                          204)
        b = self.logs("$filter=entityId eq '%s'" % gid)
        self.assertEqual(b["count"], 3, b)
        recs = b["value"]
        for rec in recs:
            self.assertEqual(set(rec), {"id", "at", "actor", "entity", "entityId", "action",
                                        "before", "after", "details"})
            self.assertRegex(rec["id"], UUID_RE)
            self.assertRegex(rec["at"], ISO_RE)
        self.assertJson([
            {"actor": "aud-admin", "entity": "PosGroup", "entityId": gid,
             "action": "create", "before": None, "after": created, "details": None},
            {"actor": "aud-admin", "entity": "PosGroup", "entityId": gid,
             "action": "update", "before": created, "after": updated, "details": None},
            {"actor": "aud-admin", "entity": "PosGroup", "entityId": gid,
             "action": "delete", "before": updated, "after": None, "details": None},
        ], [{k: v for k, v in rec.items() if k not in ("id", "at")} for rec in recs])
        self.assertLessEqual([x["at"] for x in recs], sorted(x["at"] for x in recs))

        # Query options: filter by entity and action, order, page, select.
        art = uniq("ART")
        p = promotion("Audited", [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(10, articles=[art])], status="DRAFT")
        r = s.post("/api/v1/Promotions", p, user="aud-admin")
        self.assertStatus(r, 201)
        b = self.logs("$filter=entity eq 'Promotion'")
        self.assertEqual(b["count"], 1, b)
        self.assertJson({"entity": "Promotion", "entityId": p["id"], "action": "create",
                         "before": None, "after": doc_of(r.body)}, b["value"][0], subset=True)
        b = self.logs("$filter=entity eq 'PosGroup' and action eq 'update'&$select=action,actor")
        self.assertEqual(b["value"], [{"action": "update", "actor": "aud-admin"}])
        b = self.logs("$filter=entityId eq '%s'&$orderby=at desc,action desc&$top=1&$skip=0"
                      % gid)
        self.assertEqual((b["count"], [x["action"] for x in b["value"]]), (3, ["delete"]))
        b = self.logs("$filter=entityId eq '%s'&$skip=1&$top=1" % gid)
        self.assertEqual([x["action"] for x in b["value"]], ["update"])
        self.assertError(s.get("/api/v1/AuditLogs?$filter=colour%20eq%20'red'",
                               user="aud-auditor"), 400, "VALIDATION_FAILED", "$filter")
        self.assertError(s.get("/api/v1/AuditLogs?$top=1001", user="aud-auditor"),
                         400, "VALIDATION_FAILED", "$top")
        self.assertError(s.get("/api/v1/AuditLogs?$skip=x", user="aud-auditor"),
                         400, "VALIDATION_FAILED", "$skip")
        self.assertError(s.get("/api/v1/AuditLogs?$count=maybe", user="aud-auditor"),
                         400, "VALIDATION_FAILED", "$count")

    def test_budget_writes_are_audited(self):
        # The budget service keeps its own records; the collection has them.
        s = self.stack
        r = s.post("/api/v1/Budgets", {"name": "Spring", "totalAmount": D("100.00"),
                                       "currency": "EUR"}, user="aud-admin")
        self.assertStatus(r, 201)
        created = doc_of(r.body)
        bid = created["id"]
        updated = doc_of(self.assertOk(s.request("PATCH", "/api/v1/Budgets/" + bid,
                                                 {"totalAmount": D("150.00")},
                                                 user="aud-admin")))
        self.assertStatus(s.request("DELETE", "/api/v1/Budgets/" + bid, user="aud-admin"), 204)
        b = self.logs("$filter=entity eq 'Budget' and entityId eq '%s'" % bid)
        self.assertJson([
            {"actor": "aud-admin", "entity": "Budget", "entityId": bid, "action": "create",
             "before": None, "after": created, "details": None},
            {"actor": "aud-admin", "entity": "Budget", "entityId": bid, "action": "update",
             "before": created, "after": updated, "details": None},
            {"actor": "aud-admin", "entity": "Budget", "entityId": bid, "action": "delete",
             "before": updated, "after": None, "details": None},
        ], [{k: v for k, v in rec.items() if k not in ("id", "at")} for rec in b["value"]])

    def test_coupon_writes_are_audited(self):
        # The coupon service keeps its own records: types, codes, batches.
        s = self.stack

        def stored(body):  # a type as stored: without its links
            return {k: v for k, v in doc_of(body).items() if k != "promotionIds"}

        r = s.post("/api/v1/CouponTypes", {"name": uniq("AudT"), "type": "INDIVIDUAL",
                                           "codeLength": 8}, user="aud-admin")
        self.assertStatus(r, 201)
        created = stored(r.body)
        tid = created["id"]
        updated = stored(self.assertOk(s.request("PATCH", "/api/v1/CouponTypes/" + tid,
                                                 {"description": "v2"}, user="aud-admin")))
        self.assertEqual(updated["description"], "v2")
        self.assertStatus(s.request("DELETE", "/api/v1/CouponTypes/" + tid, user="aud-admin"),
                          204)
        b = self.logs("$filter=entity eq 'CouponType' and entityId eq '%s'" % tid)
        self.assertJson([
            {"actor": "aud-admin", "entity": "CouponType", "entityId": tid, "action": "create",
             "before": None, "after": created, "details": None},
            {"actor": "aud-admin", "entity": "CouponType", "entityId": tid, "action": "update",
             "before": created, "after": updated, "details": None},
            {"actor": "aud-admin", "entity": "CouponType", "entityId": tid, "action": "delete",
             "before": updated, "after": None, "details": None},
        ], [{k: v for k, v in rec.items() if k not in ("id", "at")} for rec in b["value"]])
        # A code created by the API and cancelled by an administrator, a batch.
        r = s.post("/api/v1/CouponTypes", {"name": uniq("AudC"), "type": "INDIVIDUAL",
                                           "codeLength": 8}, user="aud-admin")
        self.assertStatus(r, 201)
        tid = r.body["id"]
        code = uniq("AUD")[:16].upper().replace("-", "")
        r = s.post("/api/v1/CouponCodes", {"couponTypeId": tid, "code": code},
                   user="aud-admin")
        self.assertStatus(r, 201)
        made = doc_of(r.body)
        cancelled = doc_of(self.assertOk(s.request(
            "PATCH", "/api/v1/CouponCodes/" + code, {"status": "CANCELLED"},
            user="aud-admin")))
        b = self.logs("$filter=entity eq 'CouponCode' and entityId eq '%s'" % made["code"])
        self.assertEqual(
            [("aud-admin", "CouponCode", made["code"], "create", None, made, None),
             ("aud-admin", "CouponCode", made["code"], "update", made, cancelled, None)],
            [(x["actor"], x["entity"], x["entityId"], x["action"], x["before"], x["after"],
              x["details"]) for x in b["value"]])
        r = s.post("/api/v1/CouponCodeBatches", {"couponTypeId": tid, "numberOfCodes": 2},
                   user="aud-admin")
        self.assertStatus(r, 202)
        b = self.logs("$filter=entity eq 'CouponCodeBatch' and entityId eq '%s'"
                      % r.body["id"])
        self.assertJson([{"actor": "aud-admin", "action": "create", "before": None,
                          "after": {"id": r.body["id"], "couponTypeId": tid,
                                    "numberOfCodes": 2, "status": "PENDING"}}],
                        b["value"], subset=True)

    def test_webhook_subscriptions_are_audited(self):
        s = self.stack
        r = s.post("/api/v1/WebhookSubscriptions", {
            "url": "http://127.0.0.1:9/audit", "eventTypes": ["PROMOTION_UPDATED"]},
            user="aud-admin")
        self.assertStatus(r, 201)
        created = {k: v for k, v in doc_of(r.body).items() if k != "secret"}
        sid = created["id"]
        self.assertStatus(s.request("DELETE", "/api/v1/WebhookSubscriptions/" + sid,
                                    user="aud-admin"), 204)
        b = self.logs("$filter=entity eq 'WebhookSubscription' and entityId eq '%s'" % sid)
        self.assertJson([
            {"actor": "aud-admin", "entity": "WebhookSubscription", "entityId": sid,
             "action": "create", "before": None, "after": created, "details": None},
            {"actor": "aud-admin", "entity": "WebhookSubscription", "entityId": sid,
             "action": "delete", "before": created, "after": None, "details": None},
        ], [{k: v for k, v in rec.items() if k not in ("id", "at")} for rec in b["value"]])
        self.assertNotIn("whsec_", json.dumps(b))

    def test_loyalty_writes_are_audited(self):
        # The loyalty service keeps its own records: the program, contacts
        # (create, PATCH, import, points), vouchers, assignments.
        s = self.stack
        u = "loy-admin"

        def recs(entity, eid):
            b = self.logs("$filter=entity eq '%s' and entityId eq '%s'" % (entity, eid), user=u)
            return [{k: v for k, v in x.items() if k not in ("id", "at")} for x in b["value"]]

        def rec(entity, eid, action, before, after, details=None):
            return {"actor": u, "entity": entity, "entityId": eid, "action": action,
                    "before": before, "after": after, "details": details}

        def state(cid, balance, level="BASE"):  # a contact as its records show it
            c = self.assertOk(s.get("/api/v3/contacts/" + cid, user=u))
            return dict(c, loyalty={"pointsBalance": balance, "level": level})

        r = s.post("/api/v1/CouponTypes", {"name": uniq("AudV"), "type": "INDIVIDUAL",
                                           "prefix": "RV", "codeLength": 10}, user=u)
        self.assertStatus(r, 201)
        rule = {"pointsPerVoucher": 500, "value": D("5.00"), "currency": "EUR",
                "validityDays": 90, "automatic": False, "couponTypeId": r.body["id"]}
        levels = [{"name": "BASE", "minPoints": 0}, {"name": "SILVER", "minPoints": 1000}]
        p1 = self.assertOk(s.request("PUT", "/api/v1/LoyaltyProgram", {
            "pointsPerCurrencyUnit": 2, "levels": levels, "voucherRule": rule}, user=u))
        p2 = self.assertOk(s.request("PUT", "/api/v1/LoyaltyProgram", {
            "pointsPerCurrencyUnit": 1, "levels": levels, "voucherRule": rule}, user=u))
        self.assertEqual(recs("LoyaltyProgram", "program"),
                         [rec("LoyaltyProgram", "program", "create", None, p1),
                          rec("LoyaltyProgram", "program", "update", p1, p2)])
        # A contact: created (the same identifier again writes nothing), patched.
        mail = uniq("aud").lower() + "@example.com"
        r = s.post("/api/v3/contacts", {"email": mail, "firstName": "Ann"}, user=u)
        self.assertStatus(r, 201)
        cid = r.body["id"]
        created = dict(r.body, loyalty={"pointsBalance": 0, "level": "BASE"})
        self.assertEqual(self.assertOk(s.post("/api/v3/contacts", {"email": mail}, user=u))
                         ["id"], cid)
        self.assertOk(s.request("PATCH", "/api/v3/contacts/" + cid, {"firstName": "Anna"},
                                user=u))
        patched = state(cid, 0)
        # 600.00 on a receipt: 600 points; 500 of them exchanged for a voucher.
        rid = uniq("R")
        self.assertStatus(s.post("/api/v3/receipts", {
            "contact": {"matchKey": cid, "matchKeyType": "ContactId"},
            "uniqueReceiptId": rid, "currency": "EUR",
            "items": [{"type": "PURCHASE", "grossPaidPrice": D("600.00")}]}, user=u), 202)
        earned = state(cid, 600)
        r = s.post("/api/v3/reward-vouchers", {"contactId": cid}, user=u)
        self.assertStatus(r, 201)
        v = r.body
        spent = state(cid, 100)
        self.assertEqual(recs("Contact", cid), [
            rec("Contact", cid, "create", None, created),
            rec("Contact", cid, "update", created, patched),
            rec("Contact", cid, "update", patched, earned,
                {"receiptId": rid, "points": 600}),
            rec("Contact", cid, "update", earned, spent,
                {"rewardVoucherId": v["id"], "points": -500})])
        redeemed = self.assertOk(s.post("/api/v3/reward-vouchers/%s/redeem" % v["id"],
                                        {"contactId": cid}, user=u))
        unsecret = [dict(x, voucherNumber=None) for x in (v, redeemed)]
        self.assertEqual(recs("RewardVoucher", v["id"]), [
            rec("RewardVoucher", v["id"], "create", None, unsecret[0]),
            rec("RewardVoucher", v["id"], "redeem", unsecret[0], unsecret[1])])
        # A migration (contacts/import): one record for the request.
        mail2 = uniq("imp").lower() + "@example.com"
        self.assertEqual(self.assertOk(s.post("/api/v3/contacts/import", [
            {"email": mail2, "firstName": "Imp", "pointsBalance": 7}], user=u))["created"], 1)
        cid2 = self.assertOk(s.get("/api/v3/contacts/id?email=" + mail2, user=u))
        self.assertEqual(recs("Contact", cid2), [])  # a migration: one record a request
        b = self.logs("$filter=entity eq 'ContactImport'", user=u)
        self.assertEqual([{k: v for k, v in x.items() if k not in ("id", "at")}
                          for x in b["value"]],
                         [rec("ContactImport", None, "import", None, None,
                              {"firstRow": 0, "rows": 1, "created": 1, "updated": 0,
                               "failed": 0})])
        # A personal promotion assigned, then unassigned.
        art = uniq("ART")
        w = promotion("Welcome", [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(10, articles=[art])], assignment="PERSONAL")
        self.assertStatus(s.post("/api/v1/Promotions", w, user=u), 201)
        r = s.post("/api/v3/promotion-assignments", {"contactId": cid, "promotionId": w["id"]},
                   user=u)
        self.assertStatus(r, 201)
        a = r.body
        self.assertStatus(s.request("DELETE", "/api/v3/promotion-assignments/" + a["id"],
                                    user=u), 204)
        self.assertEqual(recs("PromotionAssignment", a["id"]), [
            rec("PromotionAssignment", a["id"], "create", None, a),
            rec("PromotionAssignment", a["id"], "delete", a, None)])
        # No voucher code anywhere in the log.
        self.assertNotIn(v["voucherNumber"],
                         json.dumps(self.logs("$top=1000", user=u), default=str))

    def test_login_failure_bursts_are_audited(self):
        # auth.fail_limit (5) bad passwords in a row: one record, in the
        # user's tenant for a configured user, else the operator's
        # (metrics.tenant, "default").
        s = self.stack
        stranger = uniq("mallory")
        for user in ("aud-victim", stranger):
            for _ in range(5):
                self.assertError(s.get("/api/v1/Promotions", user=user, password="wrong"),
                                 401, "UNAUTHORIZED")
        for user, reader in (("aud-victim", "aud-auditor"), (stranger, "admin")):
            q = "$filter=entity eq 'Login' and entityId eq '%s'" % user
            b = harness.wait_until(lambda: self.logs(q, user=reader)["value"], 10,
                                   what="the burst of %s recorded" % user)
            self.assertJson([{"actor": user, "entity": "Login", "entityId": user,
                              "action": "failure_burst", "before": None, "after": None,
                              "details": {"event": "login.failure_burst",
                                          "source": "127.0.0.1", "credential": "user",
                                          "failures": 5}}], b, subset=True)
        # Not in the other tenant.
        q = "$filter=entity eq 'Login' and entityId eq '%s'" % stranger
        self.assertEqual(self.logs(q)["value"], [])

    def test_read_roles_and_tenants(self):
        s = self.stack
        self.assertError(s.get("/api/v1/AuditLogs", user="promo-manager"), 403, "FORBIDDEN")
        self.assertError(s.get("/api/v1/AuditLogs", user="api-writer"), 403, "FORBIDDEN")
        self.assertError(s.get("/api/v1/AuditLogs", user=None), 401, "UNAUTHORIZED")
        # An auditor reads, and writes nothing.
        self.assertError(s.post("/api/v1/PosGroups", {"code": uniq("S")[:20], "name": "x"},
                                user="aud-auditor"), 403, "FORBIDDEN")
        r = s.post("/api/v1/PosGroups", {"code": uniq("S")[:20], "name": "x"},
                   user="aud-admin")
        self.assertStatus(r, 201)
        q = "$filter=entityId eq '%s'" % r.body["id"]
        self.assertEqual(self.logs(q)["count"], 1)
        self.assertEqual(self.logs(q, user="auditor")["count"], 0)
        self.assertEqual(self.logs(q, user="tenant-b-admin")["count"], 0)

    def test_settings_and_import_are_audited(self):
        s = self.stack
        self.assertOk(s.request("PUT", "/api/v1/TenantSettings", {"currency": "CHF"},
                                user="aud-admin"))
        b = self.logs("$filter=entity eq 'TenantSettings'")
        self.assertGreaterEqual(b["count"], 1)
        self.assertEqual(b["value"][-1]["after"]["currency"], "CHF")
        self.assertOk(s.request("PUT", "/api/v1/TenantSettings", {}, user="aud-admin"))
        num = uniq("A")
        self.assertOk(s.post("/pos/articles/import",
                             {"articles": [{"articleNumber": num, "name": "Tea"}]},
                             user="aud-admin"))
        b = self.logs("$filter=entity eq 'Article' and entityId eq '%s'" % num)
        self.assertEqual([(x["action"], x["after"]["name"]) for x in b["value"]],
                         [("create", "Tea")])

    def test_auth_events_entry_point(self):
        # The gateway (issue 13.1-13.3) records auth events with one nng call.
        s = self.stack
        ev = {"entity": "ApiKey", "entityId": "key-42", "action": "keyRevoked",
              "details": {"prefix": "dre_ab12", "reason": "leaked"}}
        st, body = s.rpc_call("catalog", "catalog.AuditLogs.record",
                                    tenant="aud", principal="aud-admin",
                                    body=json.dumps(ev))
        self.assertEqual(st, 201, body)
        rec = json.loads(body)
        self.assertJson({"minorVersion": 13, "actor": "aud-admin", "entity": "ApiKey",
                         "entityId": "key-42", "action": "keyRevoked", "before": None,
                         "after": None, "details": ev["details"]}, rec, subset=True)
        b = self.logs("$filter=entity eq 'ApiKey'")
        self.assertEqual(b["value"], [doc_of(rec)])
        st, body = s.rpc_call("catalog", "catalog.AuditLogs.record",
                                    tenant="aud", body=json.dumps({"entity": "ApiKey"}))
        self.assertEqual(st, 400, body)
        st, body = s.rpc_call("catalog", "catalog.AuditLogs.record",
                                    tenant="aud", body=json.dumps(
                                        {"entity": "Login", "action": "loginFailures",
                                         "actor": "mallory", "details": {"failures": 20}}))
        self.assertEqual(st, 201, body)
        self.assertEqual(json.loads(body)["actor"], "mallory")

    def test_api_keys_and_tokens_are_audited(self):
        # The identity part's auth events (dre_auth_event) reach the log.
        s = self.stack
        r = s.post("/api/v1/ApiKeys", {"name": "till 7", "roles": ["POSReader"]},
                   user="appr-admin")
        self.assertStatus(r, 201)
        kid = r.body["id"]
        self.assertStatus(s.request("DELETE", "/api/v1/ApiKeys/" + kid, user="appr-admin"), 204)
        b = self.logs("$filter=entity eq 'ApiKey' and entityId eq '%s'" % kid, user="appr-admin")
        self.assertJson([
            {"actor": "appr-admin", "entity": "ApiKey", "entityId": kid, "action": "created",
             "before": None, "after": None,
             "details": {"event": "apikey.created", "source": None}},
            {"actor": "appr-admin", "entity": "ApiKey", "entityId": kid, "action": "revoked",
             "before": None, "after": None,
             "details": {"event": "apikey.revoked", "source": None}},
        ], [{k: v for k, v in rec.items() if k not in ("id", "at")} for rec in b["value"]])
        self.assertNotIn(r.body["key"], json.dumps(b))
        # A client and a token issued to it: the client is the token's actor.
        r = s.post("/api/v1/ApiClients", {"name": "erp", "roles": ["PublicApiReader"]},
                   user="appr-admin")
        self.assertStatus(r, 201)
        c = r.body
        body = urllib.parse.urlencode({"grant_type": "client_credentials",
                                       "client_id": c["clientId"],
                                       "client_secret": c["clientSecret"]}).encode()
        r = s.request("POST", "/oauth/token", raw=body, user=None,
                      content_type="application/x-www-form-urlencoded")
        self.assertStatus(r, 200)
        b = self.logs("$filter=actor eq '%s' or entityId eq '%s'" % (c["clientId"], c["id"]),
                      user="appr-admin")
        self.assertEqual([(x["entity"], x["action"], x["actor"]) for x in b["value"]],
                         [("ApiClient", "created", "appr-admin"),
                          ("Token", "issued", c["clientId"])])
        self.assertRegex(b["value"][1]["entityId"], UUID_RE)  # the token's jti
        self.assertNotIn(c["clientSecret"], json.dumps(b))
        self.assertNotIn(r.body["access_token"], json.dumps(b))


class CalculationAudit(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = stack()

    def test_confirm_records_the_promotion_versions(self):
        s = self.stack
        gid = self.pos_group()["id"]
        art = uniq("ART")
        p = promotion("Ten off", [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(10, articles=[art])], pos_groups=[gid])
        r = s.post("/api/v1/Promotions", p)
        self.assertStatus(r, 201)
        v1 = int(r.headers["etag"].strip('"'))
        req = basket(gid, [item("L1", art, 2, "5.00")])
        s.wait_for_promotion(p["id"], req)

        def confirm(txn):
            b = self.assertEval(s.evaluate(dict(req, header={"transactionId": txn})))
            self.assertOk(s.confirm(txn, 1, [{"promotionId": p["id"]}], user="pos-reader"))
            return b

        txn = uniq("TX")
        self.assertError(s.get("/api/v1/CalculationAuditLogs/" + txn, user="auditor"),
                         404, "NOT_FOUND")
        confirm(txn)
        rec = self.assertOk(s.get("/api/v1/CalculationAuditLogs/" + txn, user="auditor"))
        eur = lambda v: {"value": D(v), "currency": "EUR"}  # noqa: E731
        self.assertJson({
            "minorVersion": 13, "actor": "pos-reader", "entity": "Transaction",
            "entityId": txn, "action": "confirm", "before": None, "after": None,
            "details": {
                "transactionCounter": 1, "posGroupId": gid, "posGroupCode": None,
                "channel": None, "customerId": None, "receiptId": None,
                "subtotal": eur("10.00"), "totalDiscount": eur("1.00"),
                "grandTotal": eur("9.00"),
                "lines": [{"lineReference": "L1", "articleNumber": art, "quantity": D("2"),
                           "unitPrice": eur("5.00"), "lineTotal": eur("10.00"),
                           "lineDiscount": eur("1.00")}],
                "promotions": [{"promotionId": p["id"], "promotionVersion": v1,
                                "promotionName": "Ten off", "promotionType": "ARTICLE",
                                "discount": eur("1.00"), "grantedDiscount": eur("1.00"),
                                "couponCode": None}]}}, rec, subset=True)
        self.assertRegex(rec["details"]["evaluatedAt"], ISO_RE)
        # The same record is in the audit log, beside the promotion's own.
        q = ("/api/v1/AuditLogs?$filter=entityId eq '%s' or entityId eq '%s'"
             % (txn, p["id"])).replace(" ", "%20")
        b = self.assertOk(s.get(q, user="auditor"))
        self.assertEqual([(x["entity"], x["action"]) for x in b["value"]],
                         [("Promotion", "create"), ("Transaction", "confirm")])
        self.assertEqual(b["value"][1], {k: v for k, v in rec.items() if k != "minorVersion"})
        b = self.assertOk(s.get(q + "&$orderby=at%20desc&$top=1&$select=entity,entityId",
                                user="auditor"))
        self.assertEqual(b, {"minorVersion": 13, "count": 2,
                             "value": [{"entity": "Transaction", "entityId": txn}]})

        # A new version of the promotion: the next confirm names it.
        r = s.request("PATCH", "/api/v1/Promotions/" + p["id"],
                      {"actions": [pct_action(20, articles=[art])]})
        self.assertOk(r)
        v2 = int(r.headers["etag"].strip('"'))
        self.assertGreater(v2, v1)
        s.wait_for_promotion(p["id"], req, check=lambda b: b["totals"]["discount"]["value"]
                             == D("2.00"))
        txn2 = uniq("TX")
        confirm(txn2)
        rec = self.assertOk(s.get("/api/v1/CalculationAuditLogs/" + txn2, user="admin"))
        self.assertEqual([(x["promotionId"], x["promotionVersion"], x["discount"]["value"])
                          for x in rec["details"]["promotions"]], [(p["id"], v2, D("2.00"))])
        # Read roles and tenants.
        self.assertError(s.get("/api/v1/CalculationAuditLogs/" + txn2, user="pos-reader"),
                         403, "FORBIDDEN")
        self.assertError(s.get("/api/v1/CalculationAuditLogs/" + txn2,
                               user="tenant-b-admin"), 404, "NOT_FOUND")


if __name__ == "__main__":
    harness.main()
