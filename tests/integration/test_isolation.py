#!/usr/bin/env python3
# test_isolation.py -- tenant isolation proven (issue 13, point 7).
#
# The matrix is generated from the gateway's own description of its routes
# (GET /openapi.json; test_openapi keeps it equal to the route table), so a
# new route is covered, or fails here until it gets a fixture. Tenant A (the
# default tenant) gets data in every route family: catalog entities, a
# budget, coupon type, code and batch, a webhook subscription and one of its
# deliveries, a loyalty contact, a confirmed transaction with its side
# effects and reports. Then tenant B's Admin calls every operation with A's
# ids and data (path parameters, query identifiers, request bodies) and,
# as a control, with fresh ids in their place. It fails when
#   - an answer to B holds any of A's identifiers or names that B did not
#     send itself (a read or a list leaking A's data),
#   - B's answer with A's ids differs from its answer with unknown ids (A's
#     ids mean something to tenant B: found, conflicting, counted),
#   - anything of A's changed afterwards (writes, deletes, confirms, coupon
#     operations, reposts by B reaching A's data).
# It prints the number of routes and calls.
import os
import re
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, basket, item, new_id, pct_action, promotion, uniq, wait_until  # noqa: E402

B = "tenant-b-admin"
C = "tenant-c-admin"  # the control pass: a tenant as new as B was
PARAM_RE = re.compile(r"\{([^}]+)\}")
UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
# Collections whose {id}/{key}/{code} names one of A's fixtures.
COLLECTION_FIXTURE = {
    "Budgets": "budget", "Promotions": "promo", "PosGroups": "pg",
    "ArticleGroups": "ag", "Articles": "article", "CouponTypes": "ctype",
    "CouponCodes": "code", "CouponCodeBatches": "batch",
    "WebhookSubscriptions": "sub", "WebhookDeliveries": "delivery",
    "contacts": "contact", "PromotionPerformance": "promo",
    "BudgetUtilization": "budget", "transactions": "txn",
    "ApiClients": "apiclient", "ApiKeys": "apikey", "CalculationAuditLogs": "txn",
    "promotion-assignments": "assignment", "reward-vouchers": "voucher",
    "Campaigns": "campaign", "messages": "mdmsg",
    "ImportJobs": "importjob", "ArticleImportJobs": "posjob",
    "promotions": "promo",
}
# Query strings that name A's data on routes that take them.
QUERIES = {
    "/api/v3/contacts/id": "email={email}",
    "/api/v3/contactoverview": "contactId={contact}",
    "/api/v3/reward-vouchers": "contactId={contact}",
    "/api/v3/reward-vouchers/available": "contactId={contact}",
    "/api/v3/reward-vouchers/redeemed": "contactId={contact}",
    "/api/v3/promotion-assignments": "contactId={contact}",
    "/api/v3/reward-vouchers/{id}/redeem": "contactId={contact}",
}


def bodies(a):
    """A request body per operation that takes one, made of A's data."""
    sale = basket(a["pg"], [item("L1", a["article"], 1, "20.00")],
                  header={"transactionId": a["txn"]}, customerId=a["contact"])
    conf = {"request": {"header": {"transactionId": a["txn"], "transactionCounter": 1},
                        "transactionId": a["txn"], "customerId": a["contact"],
                        "appliedPromotions": [{"promotionId": a["promo"]}]}}
    coupon = {"code": a["code"], "transactionId": a["txn"], "customerId": a["contact"],
              "reservationId": a["reservation"]}
    return {
        "evaluate": {"request": sale}, "simulate": {"request": sale},
        "evaluateAction": {"request": sale}, "simulateAction": {"request": sale},
        "confirm": conf, "confirmAction": conf,
        "importArticles": {"articles": [{"articleNumber": a["article"], "name": a["mark"],
                                         "referencePrice": D("1.00")}]},
        "create": a["docs"], "update": {"name": a["mark"] + " by B"},
        "replace": a["docs"],
        "repostFailedWebhookDeliveries": {},
        "activatePromotion": {}, "deactivatePromotion": {},
        "submitPromotion": {}, "approvePromotion": {}, "rejectPromotion": {"reason": a["mark"]},
        "replaceTenantSettings": {"rejectUnknownFields": False},
        "replaceLoyaltyProgram": a["program"],
        "createContact": {"email": a["email"], "firstName": a["mark"]},
        "importContacts": [{"email": a["email"], "firstName": a["mark"]}],
        "updateContact": {"firstName": a["mark"] + " by B"},
        "createReceipt": {"contact": {"matchKey": a["contact"], "matchKeyType": "ContactId"},
                          "uniqueReceiptId": a["receipt"], "receiptNumber": a["receipt"],
                          "createdDate": harness.TS, "currency": "EUR",
                          "items": [{"type": "PURCHASE", "grossPaidPrice": D("20.00")}]},
        "updateCouponCode": {"status": "CANCELLED"},
        "validateCoupon": coupon, "reserveCoupon": coupon, "redeemCoupon": coupon,
        "cancelCouponReservation": coupon, "activateCoupon": coupon,
        "importCouponCodes": {"couponTypeId": a["ctype"], "codes": [a["code"]]},
        "createApiClient": {"name": a["mark"], "roles": ["Admin"]},
        "createApiKey": {"name": a["mark"], "roles": ["POSReader"]},
        # A's client id with a wrong secret: the same 401 as an unknown one.
        "oauthToken": {"grant_type": "client_credentials", "client_id": a["clientid"],
                       "client_secret": "wrong-" + a["mark"]},
        "issueCoupons": {"couponTypeId": a["ctype"], "customerId": a["contact"]},
        "rcCartValidation": {"cartId": a["txn"], "storeId": a["pg"],
                             "customer": {"loyaltyId": a["contact"]}, "promoCodes": [a["code"]],
                             "lineItems": [{"lineId": "1", "sku": a["article"], "quantity": 1,
                                            "unitPrice": D("20.00")}]},
        "rcPromotionCodeValidate": {"code": a["code"], "cartId": a["txn"],
                                    "customerId": a["contact"]},
        "rcWebhookOrder": {"orderId": a["txn"], "cartId": a["txn"], "customerId": a["contact"],
                           "promotions": [{"promotionId": a["promo"], "amount": D("0.00")}]},
        "rcWebhookVoidCart": {"cartId": a["txn"]},
        "rcWebhookReturn": {"orderId": a["txn"], "returnId": a["txn"],
                            "lineItems": [{"sku": a["article"], "quantity": 1,
                                           "refundAmount": D("1.00")}]},
        "rcGetLoyaltyPoints": {"orderId": a["txn"], "customerId": a["contact"]},
        "rcRewardLookup": {"customerId": a["contact"]},
        "rcSupcCreate": {"count": 1},
        "rcSupcRedeem": {"codes": [{"code": a["code"], "redeemed": True, "orderId": a["txn"]}]},
        "exchangeRewardVoucher": {"contactId": a["contact"]},
        "assignPromotion": {"contactId": a["contact"], "promotionId": a["personal"]},
        "redeemPromotionAssignment": {"redemptionChannel": "POS"},
        "redeemRewardVoucher": {"contactId": a["contact"]},
        "addCampaignPromotions": {"promotionIds": [a["promo"]]},
        "removeCampaignPromotion": {"promotionId": a["promo"]},
        "replicateProductMerchandiseViews": a["drfout"],
        # S/4's SOAP form of the same message (sent as is).
        "replicateProductMerchandiseViewsSoap": (
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
            '<n0:ProductMerchandiseViewReplicationBulkRequest xmlns:n0="urn:x">'
            '<MessageHeader><ID>%s</ID></MessageHeader><ProductMerchandiseView><Product>'
            '<ProductID>%s</ProductID><Description>%s</Description></Product>'
            '</ProductMerchandiseView></n0:ProductMerchandiseViewReplicationBulkRequest>'
            '</s:Body></s:Envelope>' % (a["mdmsg"], a["article"], a["mark"])),
        "createImportJob": {"entity": "Articles", "format": "JSON", "name": a["mark"]},
        "uploadImportJob": {"articleNumber": a["article"]},
        "importArticlesBatch": {"name": a["mark"], "articles": [
            {"articleNumber": a["article"], "name": a["mark"]}]},
        "bulkImportArticles": [{"articleNumber": a["article"], "name": a["mark"]}],
        "bulkImportArticleGroups": [{"articleGroupId": a["ag"], "name": a["mark"]}],
        "bulkImportPosGroups": [{"code": a["pgcode"], "name": a["mark"]}],
        # B's own copies, without A's ids (an id is the tenant's own).
        "bulkImportPromotions": [{k: v for k, v in a["docs"]["Promotion"].items()
                                  if k != "id"}],
        "bulkImportCouponTypes": [{"name": a["mark"], "type": "INDIVIDUAL"}],
        "bulkImportContacts": [{"memberNumber": a["mark"], "email": "b-" + a["email"],
                                "pointsBalance": 5, "level": "BASE"}],
        "bulkImportBudgets": [{"name": a["mark"], "totalAmount": D("10"), "currency": "EUR"}],
        "bulkImportCouponCodes": [{"couponTypeId": a["ctype"], "code": a["code"]}],
    }


def body_for(op_id, a, table):
    if op_id in table:
        return table[op_id]
    if op_id == "replaceCouponCode":
        return {"status": "CANCELLED"}
    for verb in ("create", "update", "replace"):
        if op_id.startswith(verb):
            entity = op_id[len(verb):]
            doc = table[verb]
            if verb in ("create", "replace"):
                return doc.get(entity)
            return doc
    return None


class Isolation(harness.TestCase):
    def fixtures(self):
        """Tenant A's data in every route family; returns the dict of its
        ids (keys of COLLECTION_FIXTURE) and names."""
        s = self.stack
        mark = uniq("ISO-A")
        a = {"mark": mark}

        def make(path, doc, status=201):
            r = s.post(path, doc)
            self.assertEqual(r.status, status, "%s: %r" % (path, r))
            return r.body
        a["pgcode"] = uniq("ISO")[:20]
        a["pg"] = make("/api/v1/PosGroups", {"code": a["pgcode"], "name": mark})["id"]
        a["ag"] = uniq("AG")[:20]
        make("/api/v1/ArticleGroups", {"articleGroupId": a["ag"], "name": mark})
        a["article"] = uniq("ISOART")
        art_doc = {"articleNumber": a["article"], "name": mark, "referencePrice": D("20.00")}
        make("/api/v1/Articles", art_doc)
        a["budget"] = make("/api/v1/Budgets", {"name": mark, "totalAmount": D("1000"),
                                               "currency": "EUR"})["id"]
        p = promotion(mark, [{"type": "ARTICLE", "values": [a["article"]]}],
                      [pct_action(10, articles=[a["article"]])], pos_groups=[a["pg"]],
                      budgetIds=[a["budget"]])
        make("/api/v1/Promotions", p)
        a["promo"] = p["id"]
        ct = make("/api/v1/CouponTypes", {"name": mark, "type": "INDIVIDUAL"})
        a["ctype"] = ct["id"]
        a["code"] = make("/api/v1/CouponCodes", {"couponTypeId": a["ctype"],
                                                 "code": uniq("ISOCODE")})["code"]
        code2 = make("/api/v1/CouponCodes", {"couponTypeId": a["ctype"], "status": "ACTIVE",
                                              "code": uniq("ISOCODE")})["code"]
        r = s.post("/pos/coupons/reserve", {"code": code2, "transactionId": uniq("ISOTX")})
        a["reservation"] = self.assertOk(r)["reservationId"]
        a["batch"] = make("/api/v1/CouponCodeBatches", {"couponTypeId": a["ctype"],
                                                        "numberOfCodes": 2}, 202)["id"]
        sub_doc = {"url": "http://127.0.0.1:9/" + mark, "eventTypes": ["TRANSACTION_CONFIRMED"],
                   "description": mark}
        a["sub"] = make("/api/v1/WebhookSubscriptions", sub_doc)["id"]
        a["email"] = "%s@example.com" % mark.lower()
        a["contact"] = make("/api/v3/contacts", {"email": a["email"], "firstName": mark})["id"]
        cl = make("/api/v1/ApiClients", {"name": mark, "roles": ["Admin"]})
        a["apiclient"], a["clientid"], a["clientsecret"] = cl["id"], cl["clientId"], \
            cl["clientSecret"]
        k = make("/api/v1/ApiKeys", {"name": mark, "roles": ["POSReader"]})
        a["apikey"], a["apikeysecret"] = k["id"], k["key"]
        # A reward voucher of A's contact (its code is one of A's type).
        prog = self.assertOk(s.get("/api/v1/LoyaltyProgram"))
        prog["voucherRule"] = dict(prog["voucherRule"], automatic=False,
                                   couponTypeId=a["ctype"])
        self.assertOk(s.request("PUT", "/api/v1/LoyaltyProgram", prog))
        a["program"] = self.assertOk(s.get("/api/v1/LoyaltyProgram"))
        vr = uniq("ISOVR")
        make("/api/v3/receipts", {"contact": {"matchKey": a["contact"], "matchKeyType": "ContactId"},
                                  "uniqueReceiptId": vr, "receiptNumber": vr,
                                  "createdDate": harness.TS, "currency": "EUR",
                                  "items": [{"type": "PURCHASE",
                                             "grossPaidPrice": D("%d.00" % prog["voucherRule"]
                                                                 ["pointsPerVoucher"])}]},
             202)
        a["voucher"] = make("/api/v3/reward-vouchers", {"contactId": a["contact"]})["id"]
        # A personal promotion of A's, assigned to A's contact.
        pp = promotion(mark + " personal", [{"type": "ARTICLE", "values": [a["article"]]}],
                       [pct_action(5, articles=[a["article"]])], pos_groups=[a["pg"]],
                       assignment="PERSONAL", externalId=uniq("ISOEXT"))
        make("/api/v1/Promotions", pp)
        a["personal"] = pp["id"]
        a["assignment"] = make("/api/v3/promotion-assignments",
                               {"contactId": a["contact"], "promotionId": pp["id"]})["id"]
        # A campaign of A's promotion, and an S/4 DRFOUT message of A's.
        a["campaign"] = make("/api/v1/Campaigns", {"name": mark, "promotionIds": [p["id"]]})["id"]
        a["mdmsg"] = uniq("ISOMSG")
        a["drfout"] = {"MessageHeader": {"ID": a["mdmsg"]}, "ProductMerchandiseView": [
            {"Product": {"ProductID": a["article"], "Description": mark}}]}
        make("/api/v1/master-data/ProductMerchandiseViewReplicationBulkRequest", a["drfout"], 202)
        a["receipt"] = uniq("ISORC")
        make("/api/v3/receipts", {"contact": {"matchKey": a["contact"], "matchKeyType": "ContactId"},
                                  "uniqueReceiptId": a["receipt"], "receiptNumber": a["receipt"],
                                  "createdDate": harness.TS, "currency": "EUR",
                                  "items": [{"type": "PURCHASE", "grossPaidPrice": D("20.00")}]},
             202)
        # A confirmed sale: side effects, reports and a webhook delivery.
        a["txn"] = uniq("ISOTX")
        req = basket(a["pg"], [item("L1", a["article"], 1, "20.00")],
                     header={"transactionId": a["txn"]})
        s.wait_for_promotion(a["promo"], req)
        self.assertEval(s.evaluate(dict(req, customerId=a["contact"])))
        self.assertOk(s.confirm(a["txn"], 1, [{"promotionId": a["promo"]}],
                                customerId=a["contact"]))
        s.wait_side_effects(a["txn"], 1)

        def delivery():
            r = s.get("/api/v1/WebhookDeliveries?$filter=" + urllib.parse.quote(
                "subscriptionId eq '%s'" % a["sub"]))
            return r.status == 200 and r.body["value"] and r.body["value"][0]["id"]
        a["delivery"] = wait_until(delivery, 10, what="a webhook delivery of A's sale")
        wait_until(lambda: s.get("/reporting/PromotionPerformance/" + a["promo"]).status == 200,
                   10, what="A's promotion in the report")
        wait_until(lambda: s.get("/reporting/BudgetUtilization/" + a["budget"]).status == 200,
                   10, what="A's budget in the report")
        # Import jobs (issue 17): one of /api/v1, one of seed 002's import-batch.
        r = s.request("POST", "/api/v1/Articles:bulk-import",
                      raw=harness.dumps([{"articleNumber": a["article"] + "-J", "name": mark}]).encode())
        self.assertStatus(r, 202)
        a["importjob"] = r.body["jobId"]
        r = s.post("/pos/articles/import-batch", {"name": mark, "articles": [
            {"articleNumber": a["article"] + "-P", "name": mark}]})
        self.assertStatus(r, 202)
        a["posjob"] = r.body["jobId"]
        for jid in (a["importjob"], a["posjob"]):
            wait_until(lambda: s.get("/api/v1/ImportJobs/" + jid).body["status"] == "COMPLETED",
                       10, what="A's import job")
        a["docs"] = {"Promotion": p, "PosGroup": {"id": a["pg"], "code": a["pgcode"], "name": mark},
                     "ArticleGroup": {"articleGroupId": a["ag"], "name": mark},
                     "Article": art_doc,
                     "Budget": {"id": a["budget"], "name": mark, "totalAmount": D("1"),
                                "currency": "EUR"},
                     "CouponType": {"id": a["ctype"], "name": mark, "type": "INDIVIDUAL"},
                     "Campaign": {"id": a["campaign"], "name": mark,
                                  "promotionIds": [a["promo"]]},
                     "CouponCode": {"couponTypeId": a["ctype"], "code": a["code"]},
                     "CouponCodeBatch": {"couponTypeId": a["ctype"], "numberOfCodes": 1},
                     "WebhookSubscription": dict(sub_doc, id=a["sub"])}
        return a

    def a_state(self, a):
        """Everything of A's that B's calls could change, as A reads it."""
        s = self.stack
        paths = ["/api/v1/Promotions/" + a["promo"], "/api/v1/PosGroups/" + a["pg"],
                 "/api/v1/ArticleGroups/" + a["ag"], "/api/v1/Articles/" + a["article"],
                 "/api/v1/Budgets/" + a["budget"], "/api/v1/CouponTypes/" + a["ctype"],
                 "/api/v1/CouponCodes/" + a["code"], "/api/v3/contactoverview?contactId="
                 + a["contact"],
                 "/api/v1/CouponCodeBatches/" + a["batch"],
                 "/api/v1/WebhookSubscriptions/" + a["sub"],
                 "/api/v3/contacts/" + a["contact"], "/api/v1/LoyaltyProgram",
                 "/api/v1/TenantSettings", "/api/v1/ApiClients/" + a["apiclient"],
                 "/api/v1/ApiKeys/" + a["apikey"],
                 "/api/v1/Campaigns/" + a["campaign"],
                 "/api/v1/Campaigns/%s/exportICS" % a["campaign"],
                 "/api/v1/master-data/messages/" + a["mdmsg"],
                 "/pos/v2/transactions/%s/1/side-effects" % a["txn"],
                 "/reporting/PromotionPerformance/" + a["promo"],
                 "/reporting/BudgetUtilization/" + a["budget"],
                 "/api/v1/Promotions?$top=1000", "/api/v1/Budgets?$top=1000",
                 "/api/v1/CouponCodes?$top=1000",
                 "/api/v3/promotion-assignments?contactId=" + a["contact"],
                 "/api/v3/reward-vouchers?contactId=" + a["contact"],
                 "/api/v1/ImportJobs/" + a["importjob"],
                 "/api/v1/ArticleImportJobs/" + a["posjob"],
                 "/api/v1/ImportJobErrors?$filter=" + urllib.parse.quote(
                     "jobId eq '%s'" % a["importjob"])]
        out = {}
        for p in paths:
            r = s.get(p)
            out[p] = (r.status, normalise(r.text))
        return out

    def test_tenant_b_reaches_nothing_of_tenant_a(self):
        s = self.stack
        doc = self.assertOk(s.get("/openapi.json"))
        a = self.fixtures()
        # Every token of A's that B must never see unless it sent it.
        secrets = {k: str(v) for k, v in a.items()
                   if k in COLLECTION_FIXTURE.values()
                   or k in ("mark", "email", "txn", "pgcode", "reservation", "receipt",
                           "personal", "clientid", "clientsecret", "apikeysecret")}
        before = self.a_state(a)
        table = bodies(a)
        ops = []
        for path, item_ in doc["paths"].items():
            for method, op in item_.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    ops.append((method.upper(), path, op))
        # Reads first (nothing of B's own copies exists yet), then changes by
        # id, actions, POS operations, and creates and imports last.
        def rank(o):
            method, path, op = o
            if method == "GET":
                return 0
            if method != "POST":
                return 1
            if PARAM_RE.search(path):
                return 2
            return 4 if re.match(r"(create|import)", op.get("operationId", "")) else 3
        ops.sort(key=lambda o: (rank(o), o[1], o[0]))
        problems, calls = [], []
        for method, path, op in ops:
            op_id = op.get("operationId", "")
            fill, missing = {}, []
            for name in PARAM_RE.findall(path):
                before_param = path.split("{" + name + "}")[0].rstrip("/").split("/")
                coll = before_param[-1] if before_param[-1] in COLLECTION_FIXTURE \
                    else before_param[-2]
                key = COLLECTION_FIXTURE.get(coll)
                if name == "transactionCounter":
                    fill[name] = "1"
                elif name == "file":  # the console's files: no tenant's
                    fill[name] = "index.html"
                elif key is None:
                    missing.append(name)
                else:
                    fill[name] = a[key]
            body = None
            if "requestBody" in op:
                body = body_for(op_id, a, table)
                if body is None:
                    missing.append("request body")
            if missing:
                problems.append("%s %s (%s): no fixture for %s; add one to "
                                "test_isolation.py" % (method, path, op_id, ", ".join(missing)))
                continue
            url = PARAM_RE.sub(lambda m: urllib.parse.quote(str(fill[m.group(1)])), path)
            if path in QUERIES:
                url += "?" + QUERIES[path].format(**a)
            ctype = "application/json"
            if body is not None and "application/json" not in op["requestBody"]["content"]:
                ctype = next(iter(op["requestBody"]["content"]))
                raw = body if isinstance(body, str) else urllib.parse.urlencode(body)
            else:
                raw = harness.dumps(body) if body is not None else None
            calls.append((method, path, url, raw, ctype))
        # Pass 1: tenant B with A's tokens. Pass 2, the control: tenant C,
        # as new as B was, the same calls in the same order with fresh tokens
        # in place of A's. The two tenants' own states evolve alike, so the
        # answers must match call by call.
        fresh = {v: fresh_like(v) for v in secrets.values()}
        first = [self.call_as(B, m, url, raw, ct) for m, _, url, raw, ct in calls]
        second = [self.call_as(C, m, replace_all(url, fresh), replace_all(raw, fresh), ct)
                  for m, _, url, raw, ct in calls]
        to_a = {v: "<A:%s>" % k for k, v in secrets.items()}
        to_a2 = {fresh[v]: "<A:%s>" % k for k, v in secrets.items()}
        for (method, path, url, raw, _), r1, r2 in zip(calls, first, second):
            sent = url + (raw or "")
            leaked = [k for k, v in secrets.items() if v in r1.text and v not in sent]
            if leaked:
                problems.append("%s %s: B's answer %d holds A's %s: %s" % (
                    method, url, r1.status, ", ".join(leaked), r1.text[:300]))
            n1 = normalise(replace_all(r1.text, to_a))
            n2 = normalise(replace_all(r2.text, to_a2))
            if (r1.status, n1) != (r2.status, n2):
                problems.append("%s %s: B's answer with A's ids differs from unknown ids:"
                                "\n    %d %s\n    %d %s" % (method, path, r1.status, n1[:400],
                                                            r2.status, n2[:400]))
        after = self.a_state(a)
        for p in before:
            if before[p] != after[p]:
                problems.append("A's %s changed:\n    before %r\n    after  %r" % (
                    p, before[p], after[p]))
        print("tenant isolation: %d routes, %d calls by tenant B with A's ids (and as many "
              "by tenant C with fresh ids)" % (len(ops), len(calls)))
        if problems:
            self.fail("%d problem(s):\n  %s" % (len(problems), "\n  ".join(problems)))

    def call_as(self, user, method, url, raw, ctype):
        return self.stack.request(method, url, raw=raw.encode() if raw else None, user=user,
                                  content_type=ctype)


def fresh_like(v):
    """An unknown token of the same shape as A's v."""
    if UUID_RE.fullmatch(v):
        return new_id()
    if re.fullmatch(r"[0-9a-f]+", v):
        return os.urandom(len(v)).hex()[:len(v)]
    if "@" in v:
        return uniq("fresh").lower() + "@example.com"
    return uniq(re.sub(r"-[0-9A-F]{10}$", "", v) or "X")[:max(len(v), 12)]


def replace_all(text, mapping):
    if text is None:
        return None
    for k in sorted(mapping, key=len, reverse=True):
        text = text.replace(k, mapping[k])
    return text


def normalise(text):
    """Generated ids, times and secrets are not part of the comparison."""
    text = UUID_RE.sub("<uuid>", text)
    text = re.sub(r"whsec_[A-Za-z0-9+/=]+", "<secret>", text)
    text = re.sub(r'"tenant-[bc]"', '"<tenant>"', text)
    text = re.sub(r"tenant-[bc]-admin", "<admin>", text)
    # generated API client ids and secrets, API keys and their ids
    text = re.sub(r"dre-[0-9a-f]{16}", "<client>", text)
    text = re.sub(r'"clientSecret":"[^"]*"', '"clientSecret":"<secret>"', text)
    text = re.sub(r"dre_[0-9a-f]{12}_[A-Za-z0-9_-]*", "<apikey>", text)
    text = re.sub(r'"id":"[0-9a-f]{12}"', '"id":"<apikey-id>"', text)
    text = re.sub(r'"uptime":\d+', '"uptime":0', text)
    return TS_RE.sub("<time>", text)


if __name__ == "__main__":
    harness.main()
