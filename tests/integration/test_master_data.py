#!/usr/bin/env python3
# test_master_data.py -- issue 17 points 3 and 4: campaigns (CRUD, add and
# remove promotions, the iCalendar export
# parsed back per RFC 5545 with the standard library) and S/4HANA DRFOUT
# replication (JSON, SOAP 1.1 and 1.2 from the
# ProductMerchandiseViewReplicationBulkRequest shape, idempotent by the
# message id, hostile XML refused with nothing applied).
import os
import re
import sys
import urllib.parse
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import new_id, pct_action, promotion, uniq  # noqa: E402

B = "tenant-b-admin"
ING = "md-ingester"  # role MasterDataIngester: what S/4's logical port uses
# The catalog's XML limits for this stack (defaults 1 MiB and 32).
MAX_XML = 16384
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
ACK_NS = "urn:dre:master-data:drfout"


def q(s):
    return urllib.parse.quote(s, safe="?=$&/'(),")


def soap(msg_id, products, version=SOAP11, sender="S4HCLNT100"):
    """A DRFOUT push as S/4HANA's SOAP runtime sends it (the request in the
    namespace of its WSDL, the elements below unqualified)."""
    views = "".join("""
      <ProductMerchandiseView>
        <Product actionCode="04">
          <ProductID>{number}</ProductID>
          <ProductTypeCode>HAWA</ProductTypeCode>
          <Description>
            <Description languageCode="DE">{name} (de)</Description>
            <Description languageCode="EN">{name}</Description>
          </Description>
          <GlobalTradeItemNumber>{ean}</GlobalTradeItemNumber>
          <MerchandiseCategoryID>{group}</MerchandiseCategoryID>
          <ManufacturerID>{mid}</ManufacturerID>
          <ManufacturerName>{manufacturer}</ManufacturerName>
          <BaseUnitOfMeasureCode>EA</BaseUnitOfMeasureCode>
        </Product>
      </ProductMerchandiseView>""".format(**{k: escape(v) for k, v in p.items()})
        for p in products)
    return ("""<?xml version="1.0" encoding="UTF-8"?>
<soap-env:Envelope xmlns:soap-env="{env}">
  <soap-env:Header/>
  <soap-env:Body>
    <n0:ProductMerchandiseViewReplicationBulkRequest xmlns:n0="http://sap.com/xi/RTLDMF/Global2"
        xmlns:prx="urn:sap.com:proxy:S4H:/1SAI/TAS1F2F4B6F6A0C5A9D5C3E:755">
      <MessageHeader>
        <ID>{id}</ID>
        <UUID>{uuid}</UUID>
        <CreationDateTime>2026-12-06T07:30:00Z</CreationDateTime>
        <SenderBusinessSystemID>{sender}</SenderBusinessSystemID>
      </MessageHeader>{views}
    </n0:ProductMerchandiseViewReplicationBulkRequest>
  </soap-env:Body>
</soap-env:Envelope>
""".format(env=version, id=msg_id, uuid=new_id(), sender=sender, views=views)).encode()


def ical_parse(raw):
    """RFC 5545 §3.1 read back: lines unfolded (as octets: a fold may cut a
    UTF-8 sequence), each "NAME;PARAMS:VALUE", BEGIN/END nesting. Returns
    the root component {"type", "props": {name: [(params, value)]},
    "children": [...]}."""
    text = re.sub(rb"\r\n[ \t]", b"", raw).decode("utf-8")
    root = {"type": None, "props": {}, "children": []}
    stack = [root]
    for line in text.split("\r\n")[:-1]:
        head, value = line.split(":", 1)  # no quoted parameters here
        name, *params = head.split(";")
        if name == "BEGIN":
            c = {"type": value, "props": {}, "children": []}
            stack[-1]["children"].append(c)
            stack.append(c)
        elif name == "END":
            assert stack.pop()["type"] == value, line
        else:
            stack[-1]["props"].setdefault(name, []).append((params, value))
    assert len(stack) == 1
    return root["children"]


def ical_text(v):
    """A TEXT value unescaped (RFC 5545 §3.3.11)."""
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m.group(1) in "nN" else m.group(1), v)


def product(prefix, i, **kw):
    p = {"number": "%s-%d" % (prefix, i), "name": "Cola & Lemon %d" % i,
         "ean": "40063813339%02d" % i, "group": "FOOD01", "mid": "M-%d" % i,
         "manufacturer": "ACME <Drinks>"}
    p.update(kw)
    return p


def article_of(p):
    return {"articleNumber": p["number"], "name": p["name"], "ean": p["ean"],
            "articleGroupId": p["group"], "manufacturerId": p["mid"],
            "manufacturer": p["manufacturer"]}


class Campaigns(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = harness.shared_stack(opts={"catalog": [
            "masterdata.max_xml_bytes=%d" % MAX_XML]})

    def promo(self, name, valid_from=harness.VALID_FROM, valid_to=harness.VALID_TO, **kw):
        art = uniq("CPA")
        p = promotion(name, [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(10, articles=[art])], status="DRAFT",
                      valid_from=valid_from, valid_to=valid_to, **kw)
        self.assertStatus(self.stack.post("/api/v1/Promotions", p), 201)
        return p

    def campaign(self, **kw):
        doc = {"name": uniq("Spring"), "description": "Easter weeks",
               "startDate": "2027-03-01", "endDate": "2027-04-30", "promotionIds": []}
        doc.update(kw)
        r = self.stack.post("/api/v1/Campaigns", doc)
        self.assertStatus(r, 201)
        return r.body

    def test_crud_add_remove(self):
        s = self.stack
        p1, p2 = self.promo(uniq("P1")), self.promo(uniq("P2"))
        doc = {"name": uniq("Spring"), "description": "Easter weeks",
               "startDate": "2027-03-01", "endDate": "2027-04-30",
               "promotionIds": [p1["id"]]}
        r = s.post("/api/v1/Campaigns", doc)
        self.assertStatus(r, 201)
        c = r.body
        self.assertTrue(harness.UUID_RE.match(c["id"]))
        self.assertEqual(set(c), {"minorVersion", "id", "name", "description", "startDate",
                                  "endDate", "promotionIds", "createdAt", "modifiedAt"})
        self.assertJson(doc, c, subset=True)
        tag = r.headers["etag"]
        r = s.get("/api/v1/Campaigns/" + c["id"])
        self.assertEqual((r.status, r.body, r.headers["etag"]), (200, c, tag))
        self.assertEqual(s.get("/api/v1/Campaigns('%s')" % c["id"]).body, c)
        # If-Match: a stale tag changes nothing.
        r = s.request("PATCH", "/api/v1/Campaigns/" + c["id"], {"description": "Ostern"},
                      headers={"If-Match": tag})
        self.assertStatus(r, 200)
        self.assertEqual(r.body["description"], "Ostern")
        self.assertError(s.request("PATCH", "/api/v1/Campaigns/" + c["id"], {"name": "x"},
                                   headers={"If-Match": tag}), 412, "PRECONDITION_FAILED")
        # add: new ids appended once, known ones kept in place.
        r = s.post("/api/v1/Campaigns/%s/addPromotions" % c["id"],
                   {"promotionIds": [p2["id"], p1["id"], p2["id"]]})
        self.assertStatus(r, 200)
        self.assertEqual(r.body["promotionIds"], [p1["id"], p2["id"]])
        self.assertIn("etag", r.headers)
        r = s.post("/api/v1/Campaigns/%s/removePromotion" % c["id"], {"promotionId": p1["id"]})
        self.assertStatus(r, 200)
        self.assertEqual(r.body["promotionIds"], [p2["id"]])
        self.assertError(s.post("/api/v1/Campaigns/%s/removePromotion" % c["id"],
                                {"promotionId": p1["id"]}), 404, "NOT_FOUND", "promotionId")
        # OData list and filter.
        r = s.get(q("/api/v1/Campaigns?$filter=name eq '%s'&$count=true" % doc["name"]))
        self.assertStatus(r, 200)
        self.assertEqual((r.body["count"], [x["promotionIds"] for x in r.body["value"]]),
                         (1, [[p2["id"]]]))
        # Audited like every catalog write.
        r = s.get(q("/api/v1/AuditLogs?$filter=entityId eq '%s'&$orderby=at" % c["id"]))
        self.assertStatus(r, 200)
        self.assertEqual([(x["entity"], x["action"]) for x in r.body["value"]],
                         [("Campaign", "create"), ("Campaign", "update"),
                          ("Campaign", "addPromotions"), ("Campaign", "removePromotion")])
        # An event per change on dre.master.campaigns, none for the evaluators.
        def events():
            evs = [e["value"] for e in s.events("dre.master.campaigns", wait_s=5)
                   if e["value"]["entityId"] == c["id"]]
            return len(evs) >= 4 and evs
        evs = harness.wait_until(events, 10, what="the campaign's 4 events")
        self.assertEqual([(e["entityKind"], e["op"], e["schemaVersion"]) for e in evs],
                         [("CAMPAIGN", "UPSERT", 3)] * 4)
        self.assertStatus(s.request("DELETE", "/api/v1/Campaigns/" + c["id"]), 204)
        self.assertError(s.get("/api/v1/Campaigns/" + c["id"]), 404, "NOT_FOUND")

    def test_bad_input(self):
        s = self.stack
        p1 = self.promo(uniq("P1"))
        ghost = new_id()
        base = {"name": "Bad", "promotionIds": [p1["id"], ghost]}
        e = self.assertError(s.post("/api/v1/Campaigns", base), 400, "VALIDATION_FAILED",
                             "promotionIds[1]")
        self.assertEqual([(d["target"], d["code"]) for d in e["details"]],
                         [("promotionIds[1]", "VALIDATION_FAILED")])
        self.assertIn(ghost, e["message"])
        e = self.assertError(s.post("/api/v1/Campaigns", {"name": "Bad", "promotionIds":
                                                          [p1["id"], p1["id"]]}),
                             400, "VALIDATION_FAILED", "promotionIds[1]")
        for bad in ("2027-02-29", "2027-13-01", "01.03.2027", "2027-03-01T00:00:00Z", 20270301):
            self.assertError(s.post("/api/v1/Campaigns", {"name": "Bad", "startDate": bad}),
                             400, "VALIDATION_FAILED", "startDate")
        self.assertStatus(s.post("/api/v1/Campaigns", {"name": uniq("Leap"),
                                                       "startDate": "2028-02-29"}), 201)
        self.assertError(s.post("/api/v1/Campaigns", {"name": "Bad", "startDate": "2027-05-01",
                                                      "endDate": "2027-04-30"}),
                         400, "VALIDATION_FAILED", "endDate")
        self.assertError(s.post("/api/v1/Campaigns", {"description": "no name"}),
                         400, "VALIDATION_FAILED", "name")
        self.assertError(s.post("/api/v1/Campaigns", {"name": "x", "promotions": []}),
                         400, "VALIDATION_FAILED", "promotions")
        c = self.campaign(promotionIds=[p1["id"]])
        self.assertError(s.post("/api/v1/Campaigns/%s/addPromotions" % c["id"],
                                {"promotionIds": [ghost]}), 400, "VALIDATION_FAILED",
                         "promotionIds[1]")
        for body in ({}, {"promotionIds": []}, {"promotionIds": [""]}, {"promotionIds": "x"},
                     {"promotionIds": [p1["id"]], "x": 1}):
            self.assertError(s.post("/api/v1/Campaigns/%s/addPromotions" % c["id"], body),
                             400, "VALIDATION_FAILED")
        self.assertError(s.post("/api/v1/Campaigns/%s/removePromotion" % c["id"], {}),
                         400, "VALIDATION_FAILED", "promotionId")
        self.assertError(s.request("PATCH", "/api/v1/Campaigns/" + c["id"],
                                   {"endDate": "2027-02-01"}), 400, "VALIDATION_FAILED",
                         "endDate")
        # Unknown ids: 404.
        for m, path, body in (("GET", "/api/v1/Campaigns/" + ghost, None),
                              ("GET", "/api/v1/Campaigns/%s/exportICS" % ghost, None),
                              ("POST", "/api/v1/Campaigns/%s/addPromotions" % ghost,
                               {"promotionIds": [p1["id"]]}),
                              ("DELETE", "/api/v1/Campaigns/" + ghost, None)):
            self.assertError(s.request(m, path, body), 404, "NOT_FOUND")
        # Tenant B sees none of it, and A's promotions are no promotions of B's.
        for m, path, body in (("GET", "/api/v1/Campaigns/" + c["id"], None),
                              ("GET", "/api/v1/Campaigns/%s/exportICS" % c["id"], None),
                              ("POST", "/api/v1/Campaigns/%s/removePromotion" % c["id"],
                               {"promotionId": p1["id"]}),
                              ("PATCH", "/api/v1/Campaigns/" + c["id"], {"name": "B's"}),
                              ("DELETE", "/api/v1/Campaigns/" + c["id"], None)):
            self.assertError(s.request(m, path, body, user=B), 404, "NOT_FOUND")
        r = s.get("/api/v1/Campaigns?$count=true", user=B)
        self.assertEqual((r.status, r.body["count"]), (200, 0))
        self.assertError(s.post("/api/v1/Campaigns", {"name": "B", "promotionIds": [p1["id"]]},
                                user=B), 400, "VALIDATION_FAILED", "promotionIds[0]")
        self.assertEqual(s.get("/api/v1/Campaigns/" + c["id"]).body, c)
        # Roles: a POS till reads no campaign.
        self.assertError(s.get("/api/v1/Campaigns/%s/exportICS" % c["id"], user="pos-reader"),
                         403, "FORBIDDEN")

    def test_export_ics(self):
        s = self.stack
        long_name = "Frühlings-Rabatt; 20 %, auf alle Getränke\nund Snacks " + "x" * 60
        p1 = self.promo(long_name, valid_from="2027-03-01T06:00:00Z",
                        valid_to="2027-03-15T22:00:00Z", description="Zwei, drei; vier")
        p2 = self.promo(uniq("Open end"), valid_from="2027-04-01T00:00:00Z", valid_to=None)
        p3 = self.promo(uniq("Deleted later"))
        p4 = self.promo(uniq("Always"), valid_from=None, valid_to=None)
        c = self.campaign(name="Spring, 2027\nEaster",
                          promotionIds=[p1["id"], p2["id"], p3["id"], p4["id"]])
        self.assertStatus(s.request("DELETE", "/api/v1/Promotions/" + p3["id"]), 204)
        r = s.get("/api/v1/Campaigns/%s/exportICS" % c["id"])
        self.assertStatus(r, 200)
        self.assertEqual(r.headers["content-type"], "text/calendar; charset=utf-8")
        raw = r.raw
        # RFC 5545 §3.1: CRLF line ends, lines of at most 75 octets.
        self.assertTrue(raw.endswith(b"\r\n"))
        lines = raw.split(b"\r\n")[:-1]
        self.assertNotIn(b"\n", b"".join(lines))
        self.assertEqual([x for x in lines if len(x) > 75], [])
        self.assertTrue(any(x.startswith(b" ") for x in lines), "the long name is folded")
        cals = ical_parse(raw)
        self.assertEqual([c_["type"] for c_ in cals], ["VCALENDAR"])
        props = cals[0]["props"]
        self.assertEqual({k: [v for _, v in x] for k, x in props.items()},
                         {"PRODID": ["-//DRE//Campaigns//EN"], "VERSION": ["2.0"],
                          "CALSCALE": ["GREGORIAN"], "METHOD": ["PUBLISH"],
                          "X-WR-CALNAME": ["Spring, 2027\\nEaster"]})
        events = cals[0]["children"]
        self.assertEqual([e["type"] for e in events], ["VEVENT"] * 3)

        def one(e, k):
            vals = e["props"].get(k)
            return None if vals is None else (tuple(vals[0][0]), vals[0][1])
        got = [{k: one(e, k) for k in e["props"]} for e in events]
        stamp = got[0]["DTSTAMP"]
        self.assertRegex(stamp[1], r"^\d{8}T\d{6}Z$")
        self.assertEqual(got, [
            {"UID": ((), "%s@%s.campaigns.dre" % (p1["id"], c["id"])),
             "DTSTAMP": stamp, "DTSTART": ((), "20270301T060000Z"),
             "DTEND": ((), "20270315T220000Z"),
             "SUMMARY": ((), long_name.replace(";", "\\;").replace(",", "\\,")
                         .replace("\n", "\\n")),
             "DESCRIPTION": ((), "Zwei\\, drei\\; vier")},
            # validTo open: the day after the campaign's endDate.
            {"UID": ((), "%s@%s.campaigns.dre" % (p2["id"], c["id"])),
             "DTSTAMP": got[1]["DTSTAMP"], "DTSTART": ((), "20270401T000000Z"),
             "DTEND": ((), "20270501T000000Z"), "SUMMARY": ((), p2["name"])},
            # No validity at all: the campaign's days.
            {"UID": ((), "%s@%s.campaigns.dre" % (p4["id"], c["id"])),
             "DTSTAMP": got[2]["DTSTAMP"], "DTSTART": ((), "20270301T000000Z"),
             "DTEND": ((), "20270501T000000Z"), "SUMMARY": ((), p4["name"])}])
        self.assertEqual(ical_text(got[0]["SUMMARY"][1]), long_name)
        self.assertEqual(ical_text(props["X-WR-CALNAME"][0][1]), "Spring, 2027\nEaster")
        # The same export again is the same document (stable UIDs, stamps).
        self.assertEqual(s.get("/api/v1/Campaigns/%s/exportICS" % c["id"]).raw, raw)
        # An empty campaign is an empty calendar.
        e = self.campaign()
        cals = ical_parse(s.get("/api/v1/Campaigns/%s/exportICS" % e["id"]).raw)
        self.assertEqual(cals[0]["children"], [])


class Drfout(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = harness.shared_stack(opts={"catalog": [
            "masterdata.max_xml_bytes=%d" % MAX_XML]})

    def article(self, number, user="admin"):
        return self.stack.get("/api/v1/Articles/" + urllib.parse.quote(number), user=user)

    def assertArticle(self, p, user="admin"):
        r = self.article(p["number"], user)
        self.assertStatus(r, 200)
        self.assertJson(article_of(p), r.body, subset=True)

    def wait_job(self, job, user="admin"):
        """The import job once finished (GET /api/v1/ImportJobs/{id})."""
        def done():
            r = self.stack.get("/api/v1/ImportJobs/" + job, user=user)
            return r.status == 200 and r.body["status"] not in (
                "WAITING_FOR_DATA", "QUEUED", "RUNNING") and r.body
        return harness.wait_until(done, 10, what="import job %s finished" % job)

    def jobs(self, user="admin"):
        r = self.stack.get("/api/v1/ImportJobs?$top=1000", user=user)
        self.assertStatus(r, 200)
        return [j["id"] for j in r.body["value"]]

    def test_json(self):
        s = self.stack
        pre = uniq("DJ")
        ps = [product(pre, i) for i in range(3)]
        msg = {"MessageHeader": {"ID": uniq("MSG"), "CreationDateTime": "2026-12-06T07:30:00Z",
                                 "SenderBusinessSystemID": "S4HCLNT100"},
               "ProductMerchandiseView": [
                   {"Product": {"ProductID": p["number"], "GlobalTradeItemNumber": p["ean"],
                                "MerchandiseCategoryID": p["group"],
                                "ManufacturerID": p["mid"], "ManufacturerName": p["manufacturer"],
                                "Description": [{"languageCode": "DE", "Description": "x"},
                                                {"languageCode": "EN",
                                                 "Description": p["name"]}]}}
                   for p in ps]}
        path = "/api/v1/master-data/ProductMerchandiseViewReplicationBulkRequest"
        r = s.post(path, msg, user=ING)
        self.assertStatus(r, 202)
        job = r.body["jobId"]
        self.assertEqual(r.body, {"minorVersion": r.body["minorVersion"],
                                  "messageId": msg["MessageHeader"]["ID"],
                                  "status": "ACCEPTED", "jobId": job, "products": 3})
        self.assertTrue(job.startswith("catalog-"), job)
        self.assertJson({"id": job, "entity": "Articles", "mode": "UPSERT", "format": "JSON",
                         "name": "S/4HANA DRFOUT " + msg["MessageHeader"]["ID"],
                         "status": "COMPLETED", "total": 3, "processed": 3, "succeeded": 3,
                         "failed": 0}, self.wait_job(job), subset=True)
        for p in ps:
            self.assertArticle(p)
        # The same message id again: the first answer, no second job.
        jobs = self.jobs()
        changed = dict(msg, ProductMerchandiseView=[{"Product": {"ProductID": ps[0]["number"],
                                                                 "Description": "Changed"}}])
        r2 = s.post(path, changed, user=ING)
        self.assertEqual((r2.status, r2.raw), (202, r.raw))
        # ... also through SOAP: the first answer in SOAP's form.
        r3 = s.request("POST", "/api/v1/master-data/soap", raw=soap(
            msg["MessageHeader"]["ID"], ps[:1]), content_type="text/xml", user=ING)
        self.assertEqual((r3.status, r3.headers["content-type"]),
                         (202, "text/xml; charset=utf-8"))
        conf = ET.fromstring(r3.raw).find(".//{%s}ProductMerchandiseViewReplicationBulkConfirmation"
                                          % ACK_NS)
        self.assertEqual((conf.findtext("ImportJobID"), conf.findtext("ProductCount")),
                         (job, "3"))
        self.assertEqual(self.jobs(), jobs)
        self.assertArticle(ps[0])
        # The message kept: its record and the bytes as they came.
        mid = urllib.parse.quote(msg["MessageHeader"]["ID"])
        r = s.get("/api/v1/master-data/messages/" + mid, user=ING)
        self.assertStatus(r, 200)
        self.assertJson({"messageId": msg["MessageHeader"]["ID"], "format": "JSON",
                         "senderBusinessSystemId": "S4HCLNT100",
                         "creationDateTime": "2026-12-06T07:30:00Z", "products": 3,
                         "jobId": job, "job": {"id": job, "status": "COMPLETED",
                                               "succeeded": 3}}, r.body, subset=True)
        r = s.get("/api/v1/master-data/messages/%s/raw" % mid, user=ING)
        self.assertEqual((r.status, r.headers["content-type"]),
                         (200, "application/json; charset=utf-8"))
        self.assertEqual(r.body, msg)
        # A product without a name is a row error; the others go on. An
        # update replaces the article (the job's UPSERT): what the message
        # lacks is cleared.
        msg2 = {"MessageHeader": {"ID": uniq("MSG")},
                "ProductMerchandiseView": [{"Product": {"ProductID": pre + "-new"}},
                                           {"Product": {"ProductID": ps[1]["number"],
                                                        "Description": "Renamed"}}]}
        r = s.post(path, msg2, user=ING)
        self.assertStatus(r, 202)
        job2 = r.body["jobId"]
        self.assertJson({"status": "COMPLETED_WITH_ERRORS", "total": 2, "succeeded": 1,
                         "failed": 1}, self.wait_job(job2), subset=True)
        self.assertError(self.article(pre + "-new"), 404, "NOT_FOUND")
        self.assertArticle({"number": ps[1]["number"], "name": "Renamed", "ean": None,
                            "group": None, "mid": None, "manufacturer": None})
        r = s.get(q("/api/v1/ImportJobErrors?$filter=jobId eq '%s'" % job2))
        self.assertStatus(r, 200)
        self.assertEqual([(x["row"], x["key"], x["code"], x["target"]) for x in r.body["value"]],
                         [(1, pre + "-new", "VALIDATION_FAILED", "name")])
        r = s.get("/api/v1/master-data/messages/" + msg2["MessageHeader"]["ID"], user=ING)
        self.assertJson({"jobId": job2, "job": {"status": "COMPLETED_WITH_ERRORS",
                                                "failed": 1}}, r.body, subset=True)

    def soap_roundtrip(self, version, content_type):
        s = self.stack
        pre = uniq("DS")
        ps = [product(pre, i) for i in range(2)]
        mid = uniq("0050569A2B1C1EDDB")
        body = soap(mid, ps, version)
        r = s.request("POST", "/api/v1/master-data/soap", raw=body, content_type=content_type,
                      user=ING)
        self.assertStatus(r, 202)
        self.assertEqual(r.headers["content-type"],
                         ("text/xml" if version == SOAP11 else "application/soap+xml")
                         + "; charset=utf-8")
        ack = ET.fromstring(r.raw)
        self.assertEqual(ack.tag, "{%s}Envelope" % version)
        conf = ack.find("{%s}Body/{%s}ProductMerchandiseViewReplicationBulkConfirmation"
                        % (version, ACK_NS))
        self.assertIsNotNone(conf, r.raw)
        job = conf.findtext("ImportJobID")
        self.assertEqual([c_.tag for c_ in conf],
                         ["MessageHeader", "Status", "ImportJobID", "ProductCount"])
        self.assertEqual((conf.findtext("MessageHeader/ReferenceID"), conf.findtext("Status"),
                          conf.findtext("ProductCount")), (mid, "ACCEPTED", "2"))
        self.assertJson({"status": "COMPLETED", "succeeded": 2}, self.wait_job(job),
                        subset=True)
        for p in ps:
            self.assertArticle(p)
        jobs = self.jobs()
        r2 = s.request("POST", "/api/v1/master-data/soap", raw=body, content_type=content_type,
                       user=ING)
        self.assertEqual((r2.status, r2.raw), (202, r.raw))
        self.assertEqual(self.jobs(), jobs)
        r = s.get("/api/v1/master-data/messages/%s/raw" % mid, user=ING)
        self.assertEqual((r.status, r.raw), (200, body))
        self.assertEqual(r.headers["content-type"].split(";")[0], content_type.split(";")[0])
        r = s.get("/api/v1/master-data/messages/" + mid, user=ING)
        self.assertJson({"format": "SOAP 1.1" if version == SOAP11 else "SOAP 1.2",
                         "jobId": job, "job": {"id": job, "status": "COMPLETED"}}, r.body,
                        subset=True)
        return mid, ps

    def test_soap_11(self):
        self.soap_roundtrip(SOAP11, "text/xml; charset=utf-8")

    def test_soap_12_and_tenants(self):
        s = self.stack
        mid, ps = self.soap_roundtrip(SOAP12, "application/soap+xml; charset=utf-8")
        # Another tenant: A's message is none of its business, and the same
        # message id is a new message there.
        self.assertError(s.get("/api/v1/master-data/messages/" + mid, user=B), 404, "NOT_FOUND")
        self.assertError(self.article(ps[0]["number"], user=B), 404, "NOT_FOUND")
        r = s.request("POST", "/api/v1/master-data/soap", raw=soap(mid, ps[:1], SOAP12),
                      content_type="application/soap+xml", user=B)
        self.assertStatus(r, 202)
        job = ET.fromstring(r.raw).findtext(".//ImportJobID")
        self.assertError(s.get("/api/v1/ImportJobs/" + job), 404, "NOT_FOUND")
        self.wait_job(job, user=B)
        self.assertArticle(ps[0], user=B)
        self.assertError(s.request("POST", "/api/v1/master-data/soap", raw=soap(mid, ps),
                                   content_type="text/xml", user="pos-reader"), 403, "FORBIDDEN")

    def refused(self, body, status, code, contains, content_type="text/xml"):
        s = self.stack
        r = s.request("POST", "/api/v1/master-data/soap", raw=body, content_type=content_type,
                      user=ING)
        e = self.assertError(r, status, code)
        self.assertIn(contains, e["message"])
        return e

    def test_hostile_and_malformed_xml(self):
        s = self.stack
        pre = uniq("DH")
        jobs = self.jobs()
        ok = soap(uniq("MSG"), [product(pre, 0)]).decode()
        head, rest = ok.split("\n", 1)
        # Billion laughs and an external entity: refused at the DOCTYPE,
        # before any declaration is read; nothing stored or applied.
        lol = ["<!ENTITY lol0 \"lol\">"] + [
            "<!ENTITY lol%d \"%s\">" % (i, "&lol%d;" % (i - 1) * 10) for i in range(1, 10)]
        bomb = head + "\n<!DOCTYPE Envelope [\n%s\n]>\n" % "\n".join(lol) + rest.replace(
            "Cola &amp; Lemon 0", "&lol9;").replace("Cola & Lemon 0", "&lol9;")
        xxe = head + '\n<!DOCTYPE Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n' + \
            rest.replace("<ManufacturerName>", "<ManufacturerName>&xxe;")
        ext_dtd = head + '\n<!DOCTYPE Envelope SYSTEM "http://127.0.0.1:9/evil.dtd">\n' + rest
        for doc in (bomb, xxe, ext_dtd):
            mid = doc.split("<ID>")[1].split("</ID>")[0]
            self.refused(doc.encode(), 400, "MALFORMED_XML", "DOCTYPE")
            self.assertError(s.get("/api/v1/master-data/messages/" + mid, user=ING), 404,
                             "NOT_FOUND")
        self.assertError(self.article(pre + "-0"), 404, "NOT_FOUND")
        # Too large for the catalog's limit (the gateway's is 1 MiB).
        big = soap(uniq("MSG"), [product(pre, i) for i in range(40)])
        self.assertGreater(len(big), MAX_XML)
        self.refused(big, 413, "PAYLOAD_TOO_LARGE", "%d bytes" % MAX_XML)
        # Too deep: 40 nested elements in a product.
        deep = ok.replace("<BaseUnitOfMeasureCode>EA</BaseUnitOfMeasureCode>",
                          "<X>" * 40 + "</X>" * 40)
        self.refused(deep.encode(), 400, "MALFORMED_XML", "deeper than 32")
        # Malformed: where and why.
        bad = ok.replace("</ProductID>", "</ProductId>")
        line = bad[:bad.index("</ProductId>")].count("\n") + 1
        e = self.refused(bad.encode(), 400, "MALFORMED_XML", "malformed XML at line %d" % line)
        self.assertIn("ProductID", e["message"])
        self.refused(b"<?xml version='1.0'?><a>", 400, "MALFORMED_XML", "malformed XML at line 1")
        self.refused(b"", 400, "MALFORMED_XML", "empty")
        # Well-formed but not the message.
        self.refused(b"<Envelope><Body/></Envelope>", 400, "VALIDATION_FAILED", "SOAP 1.1")
        self.refused(ok.replace("ProductMerchandiseViewReplicationBulkRequest",
                                "SupplierReplicateBulkRequest").encode(), 400,
                     "VALIDATION_FAILED", "ProductMerchandiseViewReplicationBulkRequest")
        e = self.refused(ok.replace("<ID>", "<Id>").replace("</ID>", "</Id>").encode(), 400,
                         "VALIDATION_FAILED", "message id")
        self.assertEqual(e["target"], "MessageHeader/ID")
        self.refused(ok.encode(), 415, "UNSUPPORTED_MEDIA_TYPE", "text/xml",
                     content_type="application/json")
        # JSON: the same checks of the header.
        path = "/api/v1/master-data/ProductMerchandiseViewReplicationBulkRequest"
        self.assertError(s.post(path, {"ProductMerchandiseView": [{"Product": {}}]}, user=ING),
                         400, "VALIDATION_FAILED", "MessageHeader.ID")
        self.assertError(s.post(path, {"MessageHeader": {"ID": "M"},
                                       "ProductMerchandiseView": []}, user=ING),
                         400, "VALIDATION_FAILED", "ProductMerchandiseView")
        self.assertError(s.post(path, {"MessageHeader": {"ID": "M"},
                                       "ProductMerchandiseView": [{"Product": 5}]}, user=ING),
                         400, "VALIDATION_FAILED", "ProductMerchandiseView[0].Product")
        self.assertError(s.post(path, [1], user=ING), 400, "VALIDATION_FAILED")
        self.assertError(s.get("/api/v1/master-data/messages/" + new_id(), user=ING), 404,
                         "NOT_FOUND")
        # Nothing of it reached a job or the articles.
        self.assertEqual(self.jobs(), jobs)
        self.assertError(self.article(pre + "-0"), 404, "NOT_FOUND")


if __name__ == "__main__":
    harness.main()
