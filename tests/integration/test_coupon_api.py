#!/usr/bin/env python3
# test_coupon_api.py -- the coupon collections of /api/v1 on common/docapi
# (issue 8.3) with what the catalog and the budgets already have (issue 10):
# the OData subset on CouponTypes, CouponCodes and CouponCodeBatches
# ($filter, $select, $orderby, $top/$skip, $count; an unsupported option or
# field is a 400 naming it; pages stay stable while others write), and
# optimistic concurrency on coupon types and codes: every read has an ETag,
# a write with a stale If-Match is 412 and changes nothing, two PATCHes
# racing with one ETag: exactly one wins. A code's ETag also moves when a
# till reserves it.
import os
import re
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import uniq, wait_until  # noqa: E402

ETAG_RE = re.compile(r'^"[0-9a-f]{16}"$')
UNSUPPORTED = ("query option $expand is not supported ($filter, $select, "
               "$orderby, $top, $skip, $count are)")


def stale(what, tag):
    return {"error": {"code": "PRECONDITION_FAILED", "target": "If-Match",
                      "message": "the %s changed since it was read (its ETag is "
                                 "now %s): read it again and reapply the change"
                                 % (what, tag)}}


class CouponApi(harness.TestCase):
    # -- helpers ---------------------------------------------------------------
    def q(self, path, **opts):
        qs = "&".join("%s=%s" % (k, urllib.parse.quote(v, safe=""))
                      for k, v in opts.items())
        return self.stack.get(path + "?" + qs)

    def new_type(self, **kw):
        doc = {"name": uniq("Type"), "type": "INDIVIDUAL"}
        doc.update(kw)
        r = self.stack.post("/api/v1/CouponTypes", doc)
        self.assertStatus(r, 201)
        return r.body

    def new_code(self, type_id, code, **kw):
        doc = {"couponTypeId": type_id, "code": code}
        doc.update(kw)
        r = self.stack.post("/api/v1/CouponCodes", doc)
        self.assertStatus(r, 201)
        return r

    def values(self, r, key=None):
        b = self.assertOk(r)
        return [x[key] for x in b["value"]] if key else b["value"]

    def assertBad(self, r, target, message):
        self.assertError(r, 400, "VALIDATION_FAILED", target)
        self.assertJson({"error": {"code": "VALIDATION_FAILED", "target": target,
                                   "message": message}}, r.body)

    def patch(self, path, body, tag=None):
        return self.stack.request("PATCH", path, body,
                                  headers={"If-Match": tag} if tag else None)

    def race(self, path, bodies, tag):
        """Sends the PATCHes of bodies at once, all with If-Match tag."""
        barrier = threading.Barrier(len(bodies))
        out = [None] * len(bodies)

        def edit(i):
            barrier.wait()
            out[i] = self.patch(path, bodies[i], tag)
        ts = [threading.Thread(target=edit, args=(i,)) for i in range(len(bodies))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return out

    # -- OData: CouponTypes ------------------------------------------------------
    def test_types_query(self):
        tag = uniq("QT")
        made = {}
        for i, (kind, length, status) in enumerate((
                ("GENERIC", 6, "ACTIVE"), ("INDIVIDUAL", 8, "ACTIVE"),
                ("GENERIC", 8, "INACTIVE"), ("INDIVIDUAL", 6, "INACTIVE"),
                ("GENERIC", 10, "ACTIVE"))):
            name = "%s %d" % (tag, i)
            made[name] = self.new_type(name=name, type=kind, codeLength=length,
                                       status=status, description="d%d" % (i % 2))
        mine = "startswith(name,'%s ')" % tag
        T = "/api/v1/CouponTypes"
        r = self.q(T, **{"$filter": mine + " and type eq 'GENERIC'",
                         "$orderby": "codeLength desc,name", "$count": "true"})
        self.assertEqual(self.values(r, "name"), ["%s %d" % (tag, i) for i in (4, 2, 0)])
        self.assertEqual(r.body["count"], 3)
        # several keys, asc/desc, $select, $top/$skip; count is the filtered set
        r = self.q(T, **{"$filter": mine, "$orderby": "codeLength asc, name desc",
                         "$select": "name,codeLength,status", "$top": "3", "$skip": "1"})
        self.assertJson({"minorVersion": 13, "count": 5, "value": [
            {"name": "%s 0" % tag, "codeLength": 6, "status": "ACTIVE"},
            {"name": "%s 2" % tag, "codeLength": 8, "status": "INACTIVE"},
            {"name": "%s 1" % tag, "codeLength": 8, "status": "ACTIVE"}]}, r.body)
        # not, or, parentheses, contains, integers, booleans
        r = self.q(T, **{"$filter": "%s and (codeLength gt 8 or contains(description,'1'))"
                                    " and not status eq 'INACTIVE'" % mine,
                         "$orderby": "name"})
        self.assertEqual(self.values(r, "name"), ["%s %d" % (tag, i) for i in (1, 4)])
        r = self.q(T, **{"$filter": mine + " and isStackable eq true and codeLength le 6",
                         "$select": "id", "$orderby": "name"})
        self.assertEqual(self.values(r), [{"id": made["%s %d" % (tag, i)]["id"]}
                                          for i in (0, 3)])
        # with the status= parameter the collection always had
        r = self.q(T, **{"status": "INACTIVE", "$filter": mine, "$orderby": "name desc"})
        self.assertEqual(self.values(r, "name"), ["%s %d" % (tag, i) for i in (3, 2)])
        self.assertEqual(r.body["count"], 2)
        # an array selects but neither filters nor sorts
        r = self.q(T, **{"$filter": "name eq '%s 1'" % tag, "$select": "promotionIds"})
        self.assertJson({"minorVersion": 13, "count": 1,
                         "value": [{"promotionIds": []}]}, r.body)
        self.assertBad(self.q(T, **{"$filter": "promotionIds eq null"}), "$filter",
                       "$filter: 'promotionIds' is not a field that can be filtered on")
        self.assertBad(self.q(T, **{"$orderby": "promotionIds"}), "$orderby",
                       "$orderby: 'promotionIds' is not a field that can be sorted on")
        # a page past the end: empty, with the count
        r = self.q(T, **{"$filter": mine, "$skip": "5"})
        self.assertJson({"minorVersion": 13, "count": 5, "value": []}, r.body)
        # unsorted pages are store order, disjoint and complete
        pages = [self.values(self.q(T, **{"$filter": mine, "$top": "2",
                                          "$skip": str(k)}), "name")
                 for k in (0, 2, 4)]
        self.assertEqual([len(p) for p in pages], [2, 2, 1])
        self.assertEqual(sorted(sum(pages, [])), sorted(made))

    # -- OData: CouponCodes --------------------------------------------------------
    def test_codes_query(self):
        t = self.new_type(prefix="QC")
        tid = t["id"]
        tag = uniq("QC")
        cust = uniq("CUST")
        codes = ["%s-%d" % (tag, i) for i in range(6)]
        for i, c in enumerate(codes):
            self.new_code(tid, c, customerId=cust if i % 2 else None,
                          status="CREATED" if i == 5 else "ACTIVE")
        res = self.stack.post("/pos/coupons/reserve",
                              {"code": codes[2], "transactionId": "T-QC"},
                              user="pos-reader")
        self.assertIs(self.assertOk(res)["reserved"], True)
        C = "/api/v1/CouponCodes"
        r = self.q(C, **{"couponTypeId": tid, "$filter": "status eq 'ACTIVE'",
                         "$orderby": "code desc", "$select": "code,customerId"})
        self.assertJson({"minorVersion": 13, "count": 4, "value": [
            {"code": codes[4], "customerId": None},
            {"code": codes[3], "customerId": cust},
            {"code": codes[1], "customerId": cust},
            {"code": codes[0], "customerId": None}]}, r.body)
        # the type as a $filter field instead of the parameter (no index)
        r = self.q(C, **{"$filter": "couponTypeId eq '%s' and (status eq 'RESERVED' or "
                                    "status eq 'CREATED')" % tid, "$orderby": "status"})
        self.assertEqual(self.values(r, "code"), [codes[5], codes[2]])
        self.assertEqual(r.body["value"][1]["reservedByTransactionId"], "T-QC")
        # customerId= reads the customer's index; the query narrows it further
        r = self.q(C, **{"customerId": cust, "$filter": "not code eq '%s'" % codes[3],
                         "$count": "true"})
        self.assertEqual(self.values(r, "code"), [codes[1], codes[5]])
        self.assertEqual(r.body["count"], 2)
        r = self.q(C, **{"$filter": "customerId eq null and startswith(code,'%s-')" % tag,
                         "$select": "code"})
        self.assertEqual(self.values(r), [{"code": codes[i]} for i in (0, 2, 4)])
        # numbers, and a page of a filter without $orderby (written while read)
        r = self.q(C, **{"couponTypeId": tid, "$filter": "redemptionCount eq 0 and "
                                                         "activeReservations ge 0",
                         "$top": "2", "$skip": "3", "$select": "code"})
        self.assertJson({"minorVersion": 13, "count": 6,
                         "value": [{"code": codes[3]}, {"code": codes[4]}]}, r.body)
        r = self.q(C, **{"couponTypeId": tid, "$filter": "activeReservations gt 0",
                         "$select": "code,activeReservations"})
        self.assertEqual(self.values(r), [{"code": codes[2], "activeReservations": 1}])
        # metadata (any JSON value, given at issue) selects only
        alice = uniq("ALICE")
        b = self.assertOk(self.stack.post("/pos/coupons/issue", {
            "couponTypeId": tid, "customerId": alice,
            "metadata": {"campaign": "spring", "n": [1, 2]}}, user="pos-reader"))
        issued = b["issuedCoupons"][0]["code"]
        r = self.q(C, **{"customerId": alice, "$select": "code,metadata,origin"})
        self.assertJson({"minorVersion": 13, "count": 1, "value": [
            {"code": issued, "metadata": {"campaign": "spring", "n": [1, 2]},
             "origin": "ISSUE"}]}, r.body)
        self.assertBad(self.q(C, **{"$filter": "metadata eq null"}), "$filter",
                       "$filter: 'metadata' is not a field that can be filtered on")
        # the status= parameter is still checked
        self.assertError(self.q(C, **{"status": "SOLD", "$top": "1"}), 400,
                         "VALIDATION_FAILED", "status")

    def test_code_pages_stable_under_writes(self):
        """Paging through a filtered, sorted set of codes while codes of
        another type are created meets each code exactly once."""
        t = self.new_type(prefix="PS")
        other = self.new_type(prefix="PO")
        tag = uniq("PS")
        mine = ["%s-%02d" % (tag, i) for i in range(12)]
        for c in reversed(mine):
            self.new_code(t["id"], c)
        stop, first = threading.Event(), threading.Event()
        written = []

        def writer():
            while not stop.is_set():
                r = self.stack.post("/api/v1/CouponCodes", {"couponTypeId": other["id"]})
                written.append(r.status)
                first.set()
        w = threading.Thread(target=writer)
        w.start()
        try:
            self.assertTrue(first.wait(harness.deadline(30)), "no code written")
            seen = []
            for skip in range(0, 12, 5):
                seen += self.values(self.q("/api/v1/CouponCodes", **{
                    "$filter": "couponTypeId eq '%s'" % t["id"], "$orderby": "code",
                    "$top": "5", "$skip": str(skip)}), "code")
        finally:
            stop.set()
            w.join()
        self.assertEqual(seen, mine)
        self.assertTrue(written and set(written) == {201}, written[:5])

    # -- OData: CouponCodeBatches ------------------------------------------------
    def test_batches_query(self):
        t = self.new_type(prefix="QB", codeLength=8)
        ids = {}
        for n in (5, 3, 7):
            r = self.stack.post("/api/v1/CouponCodeBatches",
                                {"couponTypeId": t["id"], "numberOfCodes": n})
            self.assertStatus(r, 202)
            self.assertRegex(r.headers["etag"], ETAG_RE)
            ids[n] = r.body["id"]
        B = "/api/v1/CouponCodeBatches"
        mine = "couponTypeId eq '%s'" % t["id"]

        def done():
            r = self.q(B, **{"$filter": mine + " and status eq 'COMPLETED'"})
            return r.status == 200 and r.body["count"] == 3
        wait_until(done, 30, what="three batches COMPLETED")
        r = self.q(B, **{"$filter": mine + " and numberOfCodes ge 5",
                         "$orderby": "numberOfCodes desc",
                         "$select": "numberOfCodes,generatedCount,progress,status"})
        self.assertJson({"minorVersion": 13, "count": 2, "value": [
            {"numberOfCodes": 7, "generatedCount": 7, "progress": 100,
             "status": "COMPLETED"},
            {"numberOfCodes": 5, "generatedCount": 5, "progress": 100,
             "status": "COMPLETED"}]}, r.body)
        r = self.q(B, **{"couponTypeId": t["id"], "$orderby": "numberOfCodes",
                         "$select": "id", "$skip": "1"})
        self.assertJson({"minorVersion": 13, "count": 3,
                         "value": [{"id": ids[5]}, {"id": ids[7]}]}, r.body)
        r = self.q(B, **{"$filter": "%s and error eq null and not numberOfCodes lt 4"
                                    % mine, "$orderby": "generatedCount desc,id", "$top": "1",
                         "$select": "numberOfCodes"})
        self.assertJson({"minorVersion": 13, "count": 2,
                         "value": [{"numberOfCodes": 7}]}, r.body)
        # every batch read has an ETag, the same while the batch is unchanged
        g = self.stack.get(B + "/" + ids[3])
        self.assertRegex(g.headers["etag"], ETAG_RE)
        self.assertEqual(self.stack.get(B + "/" + ids[3]).headers["etag"],
                         g.headers["etag"])
        self.assertNotEqual(self.stack.get(B + "/" + ids[5]).headers["etag"],
                            g.headers["etag"])

    # -- OData: refused options, on every coupon collection -----------------------
    def test_bad_options(self):
        for path in ("/api/v1/CouponTypes", "/api/v1/CouponCodes",
                     "/api/v1/CouponCodeBatches"):
            for opts, target, msg in (
                    ({"$expand": "x"}, "$expand", UNSUPPORTED),
                    ({"$search": "x"}, "$search", UNSUPPORTED.replace(
                        "$expand", "$search")),
                    ({"$filter": "colour eq 'red'"}, "$filter",
                     "$filter: 'colour' is not a field that can be filtered on"),
                    ({"$filter": "status eq"}, "$filter",
                     "a value ('text', a number, true, false or null) is expected "
                     "at character 10 of $filter"),
                    ({"$filter": "status eq 'x' and"}, "$filter",
                     "a field name is expected at character 18 of $filter"),
                    ({"$filter": "(status eq 'x'"}, "$filter",
                     "')' is expected at character 15 of $filter"),
                    ({"$filter": "status like 'x'"}, "$filter",
                     "an operator (eq, ne, gt, ge, lt, le) is expected at "
                     "character 8 of $filter"),
                    ({"$filter": "contains(status,1)"}, "$filter",
                     "a 'text' is expected at character 18 of $filter"),
                    ({"$orderby": "colour"}, "$orderby",
                     "$orderby: 'colour' is not a field that can be sorted on"),
                    ({"$orderby": "status sideways"}, "$orderby",
                     "$orderby: expected 'field [asc|desc]' separated by commas"),
                    ({"$orderby": " , "}, "$orderby", "$orderby names no field"),
                    ({"$select": "colour"}, "$select",
                     "$select: 'colour' is not a field of this entity"),
                    ({"$select": "status,minorVersion"}, "$select",
                     "$select: 'minorVersion' is not a field of this entity"),
                    ({"$top": "-1"}, "$top", "$top must be a non-negative integer"),
                    ({"$skip": "1x"}, "$skip", "$skip must be a non-negative integer"),
                    ({"$count": "maybe"}, "$count", "$count must be true or false")):
                r = self.q(path, **opts)
                self.assertBad(r, target, msg)
        # a name cut for the message ends before a character, never inside one
        # (81 bytes of UTF-8: 'a' and 40 two-byte characters)
        long = "a" + "\u00e9" * 40
        for opt, msg in (("$select", "$select: '%s' is not a field of this entity"),
                         ("$orderby", "$orderby: '%s' is not a field that can be sorted on")):
            self.assertBad(self.q(path, **{opt: long}), opt, msg % ("a" + "\u00e9" * 29))
        r = self.stack.get(path + "?" + urllib.parse.quote("$" + long[1:], safe="") + "=1")
        self.assertBad(r, "$" + "\u00e9" * 15,
                       "query option %s is not supported ($filter, $select, $orderby, "
                       "$top, $skip, $count are)" % ("$" + "\u00e9" * 19))
        self.assertEqual(r.raw.decode("utf-8"), r.text)

    # -- ETag / If-Match: coupon types --------------------------------------------
    def test_type_etag_if_match(self):
        s = self.stack
        name = uniq("Etag")
        r = s.post("/api/v1/CouponTypes", {"name": name, "type": "GENERIC",
                                           "maxRedemptions": 5})
        self.assertStatus(r, 201)
        tag0 = r.headers["etag"]
        self.assertRegex(tag0, ETAG_RE)
        path = "/api/v1/CouponTypes/" + r.body["id"]
        self.assertEqual(s.get(path).headers["etag"], tag0)
        self.assertEqual(s.get("/api/v1/CouponTypes/" + urllib.parse.quote(name))
                         .headers["etag"], tag0)
        # a matching tag writes and answers the new tag
        r = self.patch(path, {"description": "v1"}, tag0)
        self.assertEqual(self.assertOk(r)["description"], "v1")
        tag1 = r.headers["etag"]
        self.assertRegex(tag1, ETAG_RE)
        self.assertNotEqual(tag1, tag0)
        before = s.get(path)
        self.assertEqual(before.headers["etag"], tag1)
        # a stale tag: 412, nothing changes
        for method, body in (("PATCH", {"description": "lost"}),
                             ("PUT", {"name": name, "type": "GENERIC"}),
                             ("DELETE", None)):
            r = s.request(method, path, body, headers={"If-Match": tag0})
            self.assertError(r, 412, "PRECONDITION_FAILED", "If-Match")
            self.assertJson(stale("coupon type", tag1), r.body)
            self.assertNotIn("etag", r.headers)
        after = s.get(path)
        self.assertJson(before.body, after.body)
        self.assertEqual(after.headers["etag"], tag1)
        # 404 before 412: an unknown type is not found whatever the tag
        self.assertError(s.request("PATCH", "/api/v1/CouponTypes/" + harness.new_id(),
                                   {"description": "x"}, headers={"If-Match": tag0}),
                         404, "NOT_FOUND")
        # "*", a list, the weak form of the current tag, no If-Match at all
        tag = tag1
        for form in (lambda t: "*", lambda t: '"0000000000000000", ' + t,
                     lambda t: "W/" + t):
            r = self.patch(path, {"description": form(tag)}, form(tag))
            self.assertOk(r)
            self.assertNotEqual(r.headers["etag"], tag)
            tag = r.headers["etag"]
        r = self.patch(path, {"description": "free"})
        self.assertOk(r)
        tag = r.headers["etag"]
        self.assertEqual(s.get(path).headers["etag"], tag)
        # PUT and DELETE with the current tag
        r = s.request("PUT", path, {"name": name, "type": "GENERIC"},
                      headers={"If-Match": tag})
        self.assertEqual((self.assertOk(r)["maxRedemptions"], r.body["description"]),
                         (None, None))
        r = s.request("DELETE", path, headers={"If-Match": r.headers["etag"]})
        self.assertStatus(r, 204)
        self.assertError(s.get(path), 404, "NOT_FOUND")

    def test_type_patch_race(self):
        """Two marketers edit one coupon type with the same ETag at the same
        moment: one edit wins, the other is told (412); none is lost."""
        t = self.new_type()
        path = "/api/v1/CouponTypes/" + t["id"]
        for round_ in range(10):
            g = self.stack.get(path)
            tag = g.headers["etag"]
            names = ["A%d %s" % (round_, t["id"]), "B%d %s" % (round_, t["id"])]
            out = self.race(path, [{"name": n} for n in names], tag)
            self.assertEqual(sorted(r.status for r in out), [200, 412], out)
            won = [i for i, r in enumerate(out) if r.status == 200][0]
            lost = out[1 - won]
            self.assertJson(stale("coupon type", out[won].headers["etag"]), lost.body)
            now = self.stack.get(path)
            self.assertEqual((now.body["name"], now.headers["etag"]),
                             (names[won], out[won].headers["etag"]))

    # -- ETag / If-Match: coupon codes --------------------------------------------
    def test_code_etag_if_match(self):
        s = self.stack
        t = self.new_type(prefix="EC")
        code = uniq("EC")
        r = self.new_code(t["id"], code)
        tag0 = r.headers["etag"]
        self.assertRegex(tag0, ETAG_RE)
        path = "/api/v1/CouponCodes/" + code
        self.assertEqual(s.get(path).headers["etag"], tag0)
        # a till's reservation is a change: the tag moves
        res = s.post("/pos/coupons/reserve", {"code": code, "transactionId": "T-EC"},
                     user="pos-reader")
        self.assertIs(self.assertOk(res)["reserved"], True)
        before = s.get(path)
        tag1 = before.headers["etag"]
        self.assertNotEqual(tag1, tag0)
        self.assertEqual(before.body["status"], "RESERVED")
        # the administrator's cancel with the tag read before: 412, unchanged
        r = self.patch(path, {"status": "CANCELLED"}, tag0)
        self.assertError(r, 412, "PRECONDITION_FAILED", "If-Match")
        self.assertJson(stale("coupon code", tag1), r.body)
        after = s.get(path)
        self.assertJson(before.body, after.body)
        self.assertEqual(after.headers["etag"], tag1)
        # with the current tag: cancelled, the new tag answered and read back
        r = self.patch(path, {"status": "CANCELLED"}, tag1)
        self.assertEqual(self.assertOk(r)["status"], "CANCELLED")
        tag2 = r.headers["etag"]
        self.assertNotEqual(tag2, tag1)
        self.assertEqual(s.get(path).headers["etag"], tag2)
        self.assertJson(r.body, s.get(path).body)
        # a stale tag on the cancelled code is 412 (not 409): the precondition
        # comes first
        r = self.patch(path, {"status": "CANCELLED"}, tag1)
        self.assertJson(stale("coupon code", tag2), r.body)
        r = self.patch(path, {"status": "CANCELLED"}, tag2)
        self.assertError(r, 409, "CONFLICT", "status")
        # an unknown code is 404 whatever the tag
        self.assertError(self.patch("/api/v1/CouponCodes/NOPE-" + code,
                                    {"status": "CANCELLED"}, tag2), 404, "NOT_FOUND")

    def test_code_patch_race(self):
        """Two administrators cancel one code with the same ETag at once:
        exactly one 200, the other 412."""
        t = self.new_type(prefix="RC")
        tag = uniq("RC")
        for round_ in range(10):
            code = "%s-%d" % (tag, round_)
            r = self.new_code(t["id"], code)
            path = "/api/v1/CouponCodes/" + code
            out = self.race(path, [{"status": "CANCELLED"}] * 2, r.headers["etag"])
            self.assertEqual(sorted(x.status for x in out), [200, 412], out)
            won = [x for x in out if x.status == 200][0]
            lost = [x for x in out if x.status == 412][0]
            self.assertJson(stale("coupon code", won.headers["etag"]), lost.body)
            now = self.stack.get(path)
            self.assertEqual((now.body["status"], now.headers["etag"]),
                             ("CANCELLED", won.headers["etag"]))


if __name__ == "__main__":
    harness.main()
