#!/usr/bin/env python3
# test_imports.py -- bulk import jobs (PRODUCT-DECISIONS §11, issue 17):
# POST /api/v1/ImportJobs + PUT <uploadUrl> (streamed through the gateway
# in chunks), POST /api/v1/<Entity>:bulk-import, JSON array / NDJSON / CSV,
# per-row errors with the single write's code and target, a malformed file
# FAILED with line and column, cancel, the signed callback and the
# IMPORT_JOB_FINISHED event, bad input (unknown entity or format, upload to
# a finished job, an upload past imports.max_upload, an API key revoked
# while its upload streams), tenant isolation,
# seed 002's import-batch / ArticleImportJobs / ArticleImportJobItems, and
# tools/dre import against the stack.
import hashlib
import hmac
import http.client
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import uniq  # noqa: E402

FINISHED = ("COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "CANCELLED")
SECRET = "import-callback-secret-0123456789"


def wait_job(s, jid, user="admin", timeout=20):
    out = {}

    def done():
        r = s.get("/api/v1/ImportJobs/" + jid, user=user)
        out["job"] = r.body
        return r.status == 200 and r.body["status"] in FINISHED
    harness.wait_until(done, harness.deadline(timeout), what="job " + jid)
    return out["job"]


def errors_of(s, jid, user="admin"):
    r = s.get("/api/v1/ImportJobErrors?$filter=jobId%20eq%20'" + jid + "'", user=user)
    assert r.status == 200, r
    return [(e["row"], e["key"], e["code"], e["target"]) for e in r.body["value"]]


class Receiver:
    """An http server on 127.0.0.1 keeping every POST (headers, body)."""

    def __init__(self):
        got = self.got = []

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                got.append((dict(self.headers), self.rfile.read(n)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a):
                pass
        self.srv = http.server.HTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/hook" % self.srv.server_port
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()


class Imports(harness.TestCase):
    def create(self, entity="Articles", fmt="NDJSON", user="admin", **kw):
        body = dict({"entity": entity, "format": fmt}, **kw)
        r = self.stack.post("/api/v1/ImportJobs", body, user=user)
        self.assertStatus(r, 201)
        return r.body

    def upload(self, job, data, user="admin", ctype="application/octet-stream"):
        return self.stack.request("PUT", job["uploadUrl"], raw=data, user=user,
                                  content_type=ctype)

    def test_ndjson_upload_row_errors_and_upsert(self):
        s, tag = self.stack, uniq("IMP")
        rows = [{"articleNumber": "%s-%d" % (tag, i), "name": "Article %d" % i,
                 "referencePrice": harness.D("%d.%02d" % (1 + i // 100, i % 100))} for i in range(300)]
        rows[7] = {"articleNumber": "%s-7" % tag}                     # name missing
        rows[9]["ean"] = "12ab"                                      # not digits
        lines = [harness.dumps(x) for x in rows]
        lines[11] = "{not json"                                      # a malformed row
        data = ("\n".join(lines) + "\n").encode()
        job = self.create(name="ndjson " + tag)
        self.assertEqual(job["status"], "WAITING_FOR_DATA")
        self.assertTrue(job["id"].startswith("catalog-"), job["id"])
        self.assertEqual(job["uploadUrl"], "/api/v1/ImportJobs/%s/data" % job["id"])
        r = self.upload(job, data)
        self.assertStatus(r, 202)
        self.assertEqual(r.body["status"], "QUEUED")
        j = wait_job(s, job["id"])
        self.assertJson({"id": job["id"], "entity": "Articles", "mode": "UPSERT",
                         "format": "NDJSON", "status": "COMPLETED_WITH_ERRORS",
                         "total": 300, "processed": 300, "succeeded": 297, "failed": 3,
                         "progressPercent": 100, "bytesTotal": len(data),
                         "bytesProcessed": len(data)}, j, subset=True)
        self.assertTrue(harness.ISO_RE.match(j["startedAt"]) and harness.ISO_RE.match(j["finishedAt"]))
        self.assertEqual(errors_of(s, job["id"]), [
            (8, "%s-7" % tag, "VALIDATION_FAILED", "name"),
            (10, "%s-9" % tag, "VALIDATION_FAILED", "ean"),
            (12, None, "MALFORMED_JSON", None)])
        a = self.assertOk(s.get("/api/v1/Articles/%s-42" % tag))
        self.assertEqual((a["name"], a["referencePrice"]), ("Article 42", harness.D("1.42")))
        # the same file again: UPSERT changes nothing, fails the same rows
        job2 = self.create()
        self.assertStatus(self.upload(job2, data), 202)
        j2 = wait_job(s, job2["id"])
        self.assertEqual((j2["succeeded"], j2["failed"]), (297, 3))
        self.assertEqual(s.get("/api/v1/Articles/%s-42" % tag).body["id"], a["id"])
        # upload to a finished job
        self.assertError(self.upload(job, b'{"articleNumber":"x","name":"y"}\n'), 409,
                         "CONFLICT", "status")
        # CREATE mode refuses what exists
        job3 = self.create(mode="CREATE")
        self.assertStatus(self.upload(job3, (lines[0] + "\n").encode()), 202)
        j3 = wait_job(s, job3["id"])
        self.assertEqual(j3["status"], "COMPLETED_WITH_ERRORS")
        self.assertEqual(errors_of(s, job3["id"]), [(1, "%s-0" % tag, "CONFLICT", "articleNumber")])
        # the list holds them, newest last
        ids = [x["id"] for x in self.assertOk(s.get("/api/v1/ImportJobs?$top=1000"))["value"]]
        self.assertEqual([i for i in ids if i in (job["id"], job2["id"], job3["id"])],
                         [job["id"], job2["id"], job3["id"]])

    def test_json_array_and_csv_bulk_import(self):
        s, tag = self.stack, uniq("BLK")
        # ~1 MB: several upload chunks and reads, rows across their edges
        arr = [{"articleNumber": "%s-J%d" % (tag, i), "name": "J %d" % i,
                "manufacturer": "M" * (100 + i % 150)} for i in range(3000)]
        r = s.request("POST", "/api/v1/Articles:bulk-import", raw=json.dumps(arr, indent=1).encode())
        self.assertStatus(r, 202)
        jid = r.body["jobId"]
        self.assertEqual(r.body, {"jobId": jid, "status": "QUEUED",
                                  "statusUrl": "/api/v1/ImportJobs/" + jid})
        j = wait_job(s, jid)
        self.assertEqual((j["status"], j["format"], j["total"], j["succeeded"]),
                         ("COMPLETED", "JSON", 3000, 3000))
        a = self.assertOk(s.get("/api/v1/Articles/%s-J2999" % tag))
        self.assertEqual(a["manufacturer"], "M" * (100 + 2999 % 150))
        csv = ('articleNumber,name,ean,referencePrice,manufacturer\r\n'
               '%s-C1,"Water, still",4001954600106,0.99,"Spring ""Best"" Corp"\r\n'
               '%s-C2,"Two\nlines",,12.50,\r\n'
               '%s-C3,,,1,\r\n' % (tag, tag, tag)).encode()
        r = s.request("POST", "/api/v1/Articles:bulk-import", raw=csv, content_type="text/csv")
        self.assertStatus(r, 202)
        j = wait_job(s, r.body["jobId"])
        self.assertEqual((j["status"], j["format"], j["succeeded"], j["failed"]),
                         ("COMPLETED_WITH_ERRORS", "CSV", 2, 1))
        self.assertEqual(errors_of(s, j["id"]), [(3, "%s-C3" % tag, "VALIDATION_FAILED", "name")])
        a = self.assertOk(s.get("/api/v1/Articles/%s-C1" % tag))
        self.assertJson({"name": "Water, still", "ean": "4001954600106", "referencePrice": harness.D("0.99"),
                         "manufacturer": 'Spring "Best" Corp'}, a, subset=True)
        self.assertEqual(s.get("/api/v1/Articles/%s-C2" % tag).body["name"], "Two\nlines")

    def test_csv_line_ends_and_header(self):
        s, tag = self.stack, uniq("CR")
        # bare CR line ends (old Mac exports), CRLF and LF: one row per record,
        # a quoted CR kept in its cell
        csv = ("articleNumber,name\r%s-1,one\r%s-2,\"two\rlines\"\r\n%s-3,three\n" % (tag, tag, tag))
        r = s.request("POST", "/api/v1/Articles:bulk-import", raw=csv.encode(), content_type="text/csv")
        self.assertStatus(r, 202)
        j = wait_job(s, r.body["jobId"])
        self.assertEqual((j["status"], j["succeeded"], j["failed"]), ("COMPLETED", 3, 0))
        self.assertEqual([s.get("/api/v1/Articles/%s-%d" % (tag, i)).body["name"] for i in (1, 2, 3)],
                         ["one", "two\rlines", "three"])
        # columns without a name (trailing commas) are ignored, even twice
        r = s.request("POST", "/api/v1/Articles:bulk-import", content_type="text/csv",
                      raw=("articleNumber,name,,\n%s-6,six,,\n%s-7,seven,x,\n" % (tag, tag)).encode())
        j = wait_job(s, r.body["jobId"])
        self.assertEqual((j["status"], j["succeeded"], j["failed"]), ("COMPLETED", 2, 0))
        self.assertEqual(s.get("/api/v1/Articles/%s-7" % tag).body["name"], "seven")
        # past 256 columns an empty cell still leaves its member out
        cols = ["c%d" % i for i in range(300)]
        r = s.request("POST", "/api/v1/Articles:bulk-import", content_type="text/csv",
                      raw=("articleNumber,name," + ",".join(cols) + "\n%s-8,eight," % tag
                           + "," * 299 + "\n").encode())
        j = wait_job(s, r.body["jobId"])
        self.assertEqual((j["status"], j["succeeded"], j["failed"]), ("COMPLETED", 1, 0))
        # a column named twice fails the file before any row
        r = s.request("POST", "/api/v1/Articles:bulk-import", content_type="text/csv",
                      raw=("articleNumber,name,name\n%s-4,a,b\n" % tag).encode())
        j = wait_job(s, r.body["jobId"])
        self.assertEqual((j["status"], j["succeeded"], j["failed"]), ("FAILED", 0, 0))
        self.assertEqual(j["errorMessage"],
                         "malformed CSV at line 1, column 1: the header names the column 'name' twice")
        self.assertError(s.get("/api/v1/Articles/%s-4" % tag), 404, "NOT_FOUND")
        # a header of 200,000 columns (950 KB), the last one named like the first:
        # found by sorting (comparing each column with all before it took minutes)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"

        def b36(i):
            out = ""
            while True:
                out, i = digits[i % 36] + out, i // 36
                if i == 0:
                    return out
        hdr = ",".join([b36(i) for i in range(200000)] + ["0"])
        r = s.request("POST", "/api/v1/Articles:bulk-import", content_type="text/csv",
                      raw=(hdr + "\nx\n").encode())
        self.assertStatus(r, 202)
        j = wait_job(s, r.body["jobId"])
        self.assertEqual(j["errorMessage"],
                         "malformed CSV at line 1, column 1: the header names the column '0' twice")
        # a header cell with a quote and a control character is a member name like
        # any other: the row is refused for it, with a JSON answer
        r = s.request("POST", "/api/v1/Articles:bulk-import", content_type="text/csv",
                      raw=('articleNumber,name,"a""b\x01"\n%s-5,x,y\n' % tag).encode())
        j = wait_job(s, r.body["jobId"])
        self.assertEqual((j["status"], j["succeeded"], j["failed"]), ("COMPLETED_WITH_ERRORS", 0, 1))
        self.assertEqual(errors_of(s, j["id"]), [(1, "%s-5" % tag, "VALIDATION_FAILED", 'a"b\x01')])
        # a rejected row's key longer than an error keeps (127 bytes) is cut
        # before a character: 100 two-byte characters keep 63
        r = s.request("POST", "/api/v1/Articles:bulk-import", content_type="application/x-ndjson",
                      raw=json.dumps({"articleNumber": "\u00e9" * 100, "name": "x"}).encode())
        j = wait_job(s, r.body["jobId"])
        self.assertEqual((j["status"], j["failed"]), ("COMPLETED_WITH_ERRORS", 1))
        e = s.get("/api/v1/ImportJobErrors?$filter=jobId%20eq%20'" + j["id"] + "'")
        self.assertEqual(e.raw.decode("utf-8"), e.text)
        self.assertEqual(e.body["value"][0]["key"], "\u00e9" * 63)

    def test_malformed_files_fail_with_line_and_column(self):
        s, tag = self.stack, uniq("BAD")
        cases = [
            ("JSON", b'[\n {"articleNumber": "%s-1", "name": "a"},\n {"articleNumber": ]\n' % tag.encode(),
             "malformed JSON at line 3, column 20", 1),
            ("JSON", b'{"articleNumber": "x"}', "malformed JSON at line 1, column 1", 0),
            ("CSV", b'articleNumber,name\n%s-2,ok\n%s-3,"bad"x\n' % (tag.encode(), tag.encode()),
             "malformed CSV at line 3", 1),
        ]
        for fmt, data, msg, ok in cases:
            job = self.create(fmt=fmt)
            self.assertStatus(self.upload(job, data), 202)
            j = wait_job(s, job["id"])
            self.assertEqual(j["status"], "FAILED", (fmt, data, j))
            self.assertTrue(j["errorMessage"].startswith(msg), (j["errorMessage"], msg))
            self.assertEqual(j["succeeded"], ok)

    def test_bad_input(self):
        s = self.stack
        self.assertError(s.post("/api/v1/ImportJobs", {"entity": "Widgets", "format": "CSV"}),
                         400, "VALIDATION_FAILED", "entity")
        self.assertError(s.post("/api/v1/ImportJobs", {"entity": "Articles", "format": "XLSX"}),
                         400, "VALIDATION_FAILED", "format")
        self.assertError(s.post("/api/v1/ImportJobs", {"entity": "Articles"}),
                         400, "VALIDATION_FAILED", "format")
        self.assertError(s.post("/api/v1/ImportJobs", {"entity": "Articles", "format": "CSV",
                                                       "mode": "MERGE"}),
                         400, "VALIDATION_FAILED", "mode")
        self.assertError(s.post("/api/v1/ImportJobs", {"entity": "Articles", "format": "CSV",
                                                       "sheet": 1}),
                         400, "VALIDATION_FAILED", "sheet")
        self.assertError(s.post("/api/v1/ImportJobs", {"entity": "Articles", "format": "CSV",
                                                       "callbackUrl": "ftp://x"}),
                         400, "VALIDATION_FAILED", "callbackUrl")
        self.assertError(s.request("POST", "/api/v1/Articles:bulk-import?format=XML", raw=b"[]"),
                         400, "VALIDATION_FAILED", "format")
        # a name is at most 255 characters, counted as characters (255 two-byte
        # ones are 510 bytes and kept whole); one more is refused
        j = self.create(name="\u00e9" * 255)
        self.assertEqual(j["name"], "\u00e9" * 255)
        r = s.get("/api/v1/ImportJobs/" + j["id"])
        self.assertEqual(r.raw.decode("utf-8"), r.text)
        self.assertEqual(r.body["name"], "\u00e9" * 255)
        self.assertError(s.post("/api/v1/ImportJobs", {"entity": "Articles", "format": "CSV",
                                                       "name": "\u00e9" * 256}),
                         400, "VALIDATION_FAILED", "name")
        self.assertError(s.post("/api/v1/ImportJobs", {"entity": "Articles", "format": "CSV",
                                                       "name": "n" * 256}),
                         400, "VALIDATION_FAILED", "name")
        self.assertError(s.get("/api/v1/ImportJobs/catalog-00000000-0000-4000-8000-000000000000"),
                         404, "NOT_FOUND")
        self.assertError(s.get("/api/v1/ImportJobs/nobody-1"), 404, "NOT_FOUND")
        self.assertError(s.get("/api/v1/ImportJobErrors"), 400, "VALIDATION_FAILED", "$filter")
        self.assertError(s.request("PUT", "/api/v1/ImportJobs/catalog-x/data", raw=b"x"),
                         404, "NOT_FOUND")
        # cancel a job waiting for data; then nothing more is accepted
        job = self.create()
        r = s.post("/api/v1/ImportJobs/%s/cancel" % job["id"])
        self.assertEqual(self.assertOk(r)["status"], "CANCELLED")
        self.assertError(s.post("/api/v1/ImportJobs/%s/cancel" % job["id"]), 409, "CONFLICT")
        self.assertError(self.upload(job, b"{}\n"), 409, "CONFLICT", "status")
        # another tenant sees none of it
        self.assertError(s.get("/api/v1/ImportJobs/" + job["id"], user="tenant-b-admin"),
                         404, "NOT_FOUND")
        self.assertError(s.get("/api/v1/ImportJobErrors?$filter=jobId%20eq%20'" + job["id"] + "'",
                               user="tenant-b-admin"), 404, "NOT_FOUND")

    def test_callback_and_event(self):
        s, tag = self.stack, uniq("CB")
        rcv = Receiver()
        try:
            job = self.create(callbackUrl=rcv.url, callbackSecret=SECRET)
            data = "".join(json.dumps({"articleNumber": "%s-%d" % (tag, i), "name": "n"}) + "\n"
                           for i in range(5)).encode()
            self.assertStatus(self.upload(job, data), 202)
            j = wait_job(s, job["id"])
            harness.wait_until(lambda: rcv.got, harness.deadline(10), what="callback")
            hdrs, body = rcv.got[0]
            sig = hdrs.get("X-DRE-Signature")
            t, v1 = [p.split("=", 1)[1] for p in sig.split(",")]
            want = hmac.new(SECRET.encode(), t.encode() + b"." + body, hashlib.sha256).hexdigest()
            self.assertEqual(v1, want)
            doc = json.loads(body)
            self.assertEqual((doc["id"], doc["status"], doc["succeeded"]), (job["id"], "COMPLETED", 5))
            self.assertEqual(j["status"], "COMPLETED")
        finally:
            rcv.close()
        evs = [e for e in s.events("dre.imports", wait_s=5) if e["value"]["jobId"] == job["id"]]
        self.assertEqual(len(evs), 1)
        v = evs[0]["value"]
        self.assertEqual((evs[0]["schema"], v["eventType"], v["status"], v["total"], v["succeeded"],
                          v["failed"], v["entity"]),
                         ("dre.ImportJobFinished", "IMPORT_JOB_FINISHED", "COMPLETED", 5, 5, 0, "Articles"))

    def test_api_key_revoked_mid_upload(self):
        # A bulk import streamed with an API key that is revoked while the
        # body is still arriving: the gateway asks the catalog about the key
        # again at every chunk, answers 401 with the error body once the
        # rest is read, and the job the first chunks created ends FAILED
        # with its data removed: no row imported, nothing left RUNNING.
        s, tag = self.stack, uniq("REV")
        k = s.post("/api/v1/ApiKeys", {"name": tag, "roles": ["PromotionManager"]})
        self.assertStatus(k, 201)
        before = {j["id"] for j in s.get("/api/v1/ImportJobs?$top=1000").body["value"]}
        line = lambda i: (json.dumps({"articleNumber": "%s-%d" % (tag, i), "name": "x" * 200})
                          + "\n").encode()
        data = b"".join(line(i) for i in range(5000))          # ~1.2 MB: several chunks
        half = 600 * 1024
        conn = http.client.HTTPConnection("127.0.0.1", s.http_port, timeout=harness.deadline(30))
        path = "/api/v1/Articles:bulk-import?format=NDJSON"
        try:
            conn.putrequest("POST", path)
            conn.putheader("X-Api-Key", k.body["key"])
            conn.putheader("Content-Type", "application/x-ndjson")
            conn.putheader("Content-Length", str(len(data)))
            conn.endheaders()
            conn.send(data[:half])
            got = {}

            def created():
                new = [j for j in s.get("/api/v1/ImportJobs?$top=1000").body["value"]
                       if j["id"] not in before]
                got["jobs"] = new
                return len(new) == 1
            harness.wait_until(created, harness.deadline(10), what="the job of the first chunk")
            jid = got["jobs"][0]["id"]
            self.assertEqual(got["jobs"][0]["status"], "WAITING_FOR_DATA")
            self.assertStatus(s.request("DELETE", "/api/v1/ApiKeys/" + k.body["id"]), 204)
            conn.send(data[half:])
            resp = conn.getresponse()
            raw = resp.read()
            hdrs = {a.lower(): b for a, b in resp.getheaders()}
            harness.record_answer("POST", path, resp.status, hdrs, raw)
            r = harness.Response(resp.status, hdrs, raw)
        finally:
            conn.close()
        self.assertError(r, 401, "UNAUTHORIZED")
        self.assertEqual(r.body, {"error": {"code": "UNAUTHORIZED",
                                            "message": "missing or invalid credentials"}})
        j = self.assertOk(s.get("/api/v1/ImportJobs/" + jid))
        self.assertJson({"status": "FAILED", "entity": "Articles", "processed": 0,
                         "succeeded": 0, "failed": 0,
                         "errorMessage": "the upload was refused part-way: the caller's "
                                         "credentials are no longer valid for it; nothing "
                                         "was imported"}, j, subset=True)
        self.assertEqual(os.listdir(os.path.join(s.data_dir, "catalog-imports")).count(
            jid + ".data"), 0)
        self.assertError(s.get("/api/v1/Articles/%s-0" % tag), 404, "NOT_FOUND")
        # the same key on the job's upload URL: refused before any data
        job = self.create()
        r = s.request("PUT", job["uploadUrl"], raw=data, user=None,
                      headers={"X-Api-Key": k.body["key"]}, content_type="application/x-ndjson")
        self.assertError(r, 401, "UNAUTHORIZED")
        self.assertEqual(s.get("/api/v1/ImportJobs/" + job["id"]).body["status"],
                         "WAITING_FOR_DATA")

    def test_coupon_codes(self):
        s, tag = self.stack, uniq("CPN")
        t = s.post("/api/v1/CouponTypes", {"name": tag, "type": "INDIVIDUAL"})
        self.assertStatus(t, 201)
        tid = t.body["id"]
        csv = "code,couponTypeId\n" + "".join("%s%04d,%s\n" % (tag, i, tid) for i in range(200))
        csv += "bad code!,%s\n" % tid
        r = s.request("POST", "/api/v1/CouponCodes:bulk-import", raw=csv.encode(), content_type="text/csv")
        self.assertStatus(r, 202)
        self.assertTrue(r.body["jobId"].startswith("coupon-"))
        j = wait_job(s, r.body["jobId"])
        self.assertEqual((j["entity"], j["succeeded"], j["failed"]), ("CouponCodes", 200, 1))
        self.assertEqual([e[:3] for e in errors_of(s, j["id"])], [(201, "bad code!", "VALIDATION_FAILED")])
        c = self.assertOk(s.get("/api/v1/CouponCodes/%s0007" % tag))
        self.assertEqual(c["couponTypeId"], tid)
        # again: the codes exist, UPSERT leaves them
        r = s.request("POST", "/api/v1/CouponCodes:bulk-import", raw=csv.encode(), content_type="text/csv")
        j = wait_job(s, r.body["jobId"])
        self.assertEqual((j["succeeded"], j["failed"]), (200, 1))
        ids = [x["id"] for x in self.assertOk(s.get("/api/v1/ImportJobs?$top=1000"))["value"]]
        self.assertIn(j["id"], ids)

    def test_budgets(self):
        s, tag = self.stack, uniq("BUD")
        bid = harness.new_id()
        rows = [{"id": bid, "name": tag + " a", "totalAmount": harness.D("100.00"), "currency": "EUR"},
                {"name": tag + " b", "totalAmount": harness.D("5.50"), "currency": "EUR"},
                {"name": tag + " c", "totalAmount": "lots", "currency": "EUR"}]
        data = "".join(harness.dumps(x) + "\n" for x in rows).encode()
        r = s.request("POST", "/api/v1/Budgets:bulk-import", raw=data,
                      content_type="application/x-ndjson", user="budget-manager")
        self.assertStatus(r, 202)
        self.assertTrue(r.body["jobId"].startswith("budget-"))
        j = wait_job(s, r.body["jobId"])
        self.assertEqual((j["entity"], j["succeeded"], j["failed"]), ("Budgets", 2, 1))
        self.assertEqual([(e[0], e[2], e[3]) for e in errors_of(s, j["id"])],
                         [(3, "VALIDATION_FAILED", "totalAmount")])
        b = self.assertOk(s.get("/api/v1/Budgets/" + bid))
        self.assertEqual((b["name"], b["totalAmount"]), (tag + " a", harness.D("100.00")))
        # UPSERT by id: the total changes, the budget stays one
        rows[0]["totalAmount"] = harness.D("150.00")
        r = s.request("POST", "/api/v1/Budgets:bulk-import", raw=(harness.dumps(rows[0]) + "\n").encode(),
                      content_type="application/x-ndjson")
        self.assertEqual(wait_job(s, r.body["jobId"])["status"], "COMPLETED")
        self.assertEqual(s.get("/api/v1/Budgets/" + bid).body["totalAmount"], harness.D("150.00"))

    def test_contacts_with_points_and_level(self):
        s, tag = self.stack, uniq("MIG")
        csv = ("memberNumber,email,firstName,pointsBalance,level\n"
               "%s-1,%s-1@mig.example.com,Ann,1200,SILVER\n"
               "%s-2,%s-2@mig.example.com,Bob,40,BASE\n"
               "%s-3,broken,Cid,7,BASE\n" % (tag, tag.lower(), tag, tag.lower(), tag))
        r = s.request("POST", "/api/v1/Contacts:bulk-import", raw=csv.encode(), content_type="text/csv")
        self.assertStatus(r, 202)
        self.assertTrue(r.body["jobId"].startswith("loyalty-"))
        j = wait_job(s, r.body["jobId"])
        self.assertEqual((j["entity"], j["succeeded"], j["failed"]), ("Contacts", 2, 1))
        self.assertEqual([(e[0], e[1], e[2]) for e in errors_of(s, j["id"])],
                         [(3, tag + "-3", "InvalidEmailAddress")])
        cid = s.get("/api/v3/contacts/id?customKey=%s-1" % tag).body
        o = self.assertOk(s.get("/api/v3/contactoverview?contactId=" + cid))
        self.assertEqual((o["loyalty"]["level"], o["loyalty"]["pointsBalance"]), ("SILVER", 1200))

    def test_upload_limit(self):
        # a stack whose catalog takes at most 4 KiB: the upload fails
        # cleanly, the job FAILED and nothing of it applied
        st = harness.Stack(opts={"catalog": ["imports.max_upload=4096"]})
        try:
            tag = uniq("BIG")
            data = "".join(json.dumps({"articleNumber": "%s-%d" % (tag, i), "name": "n" * 40}) + "\n"
                           for i in range(300)).encode()
            r = st.request("POST", "/api/v1/ImportJobs", {"entity": "Articles", "format": "NDJSON"})
            job = r.body
            r = st.request("PUT", job["uploadUrl"], raw=data, content_type="application/x-ndjson")
            self.assertError(r, 413, "PAYLOAD_TOO_LARGE")
            j = st.get("/api/v1/ImportJobs/" + job["id"]).body
            self.assertEqual((j["status"], j["processed"]), ("FAILED", 0))
            self.assertIn("imports.max_upload", j["errorMessage"])
            self.assertError(st.get("/api/v1/Articles/%s-0" % tag), 404, "NOT_FOUND")
            small = (json.dumps({"articleNumber": tag, "name": "n"}) + "\n").encode()
            r = st.request("POST", "/api/v1/Articles:bulk-import", raw=data,
                           content_type="application/x-ndjson")
            self.assertError(r, 413, "PAYLOAD_TOO_LARGE")
            r = st.request("POST", "/api/v1/Articles:bulk-import", raw=small,
                           content_type="application/x-ndjson")
            self.assertEqual(wait_job(st, r.body["jobId"])["status"], "COMPLETED")
        finally:
            st.stop()
            st.cleanup()

    def test_seed002_import_batch(self):
        s, tag = self.stack, uniq("POS")
        arts = [{"articleNumber": "%s-%d" % (tag, i), "name": "P %d" % i} for i in range(3)]
        arts.append({"articleNumber": "%s-x" % tag, "ean": "x"})
        r = s.post("/pos/articles/import-batch", {"name": "till 7", "articles": arts}, user="pos-reader")
        self.assertStatus(r, 202)
        jid = r.body["jobId"]
        self.assertEqual(r.body, {"minorVersion": r.body["minorVersion"], "jobId": jid,
                                  "status": "QUEUED",
                                  "message": "import job created: 4 articles queued"})
        wait_job(s, jid)
        for path, user in (("/api/v1/ArticleImportJobs(%s)", "admin"),
                           ("/admin/ArticleImportJobs(%s)", "admin"),
                           ("/api/v1/ArticleImportJobs('%s')", "pos-reader")):
            b = self.assertOk(s.get(path % jid, user=user))
            self.assertJson({"id": jid, "name": "till 7", "status": "COMPLETED_WITH_ERRORS",
                             "total": 4, "succeeded": 3, "failed": 1}, b, subset=True)
        items = self.assertOk(s.get("/api/v1/ArticleImportJobItems?$filter=jobId%20eq%20'" + jid + "'"))
        got = [(i["row"], i["articleNumber"], i["status"], i["error"] is not None) for i in items["value"]]
        self.assertEqual(got, [(1, tag + "-0", "created", False), (2, tag + "-1", "created", False),
                               (3, tag + "-2", "created", False), (4, tag + "-x", "failed", True)])
        a = self.assertOk(s.get("/api/v1/Articles/%s-1" % tag))
        self.assertEqual(items["value"][1]["articleId"], a["id"])
        # a job of /api/v1/ImportJobs is not an ArticleImportJob
        other = self.create()
        self.assertError(s.get("/api/v1/ArticleImportJobs(%s)" % other["id"]), 404, "NOT_FOUND")
        self.assertError(s.post("/pos/articles/import-batch", {"articles": {}}), 400,
                         "VALIDATION_FAILED", "articles")
        # the name's limit counts characters here too
        self.assertError(s.post("/pos/articles/import-batch", {"name": "\u00e9" * 256, "articles": []}),
                         400, "VALIDATION_FAILED", "name")
        r = s.post("/pos/articles/import-batch", {"name": "\u00e9" * 255, "articles": []})
        self.assertStatus(r, 202)
        self.assertEqual(self.assertOk(s.get("/api/v1/ArticleImportJobs(%s)" % r.body["jobId"]))["name"],
                         "\u00e9" * 255)

    def test_cli(self):
        s, tag = self.stack, uniq("CLI")
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
            f.write("articleNumber,name\n")
            for i in range(500):
                f.write("%s-%d,%s\n" % (tag, i, "" if i == 17 else "Name %d" % i))
            path = f.name
        try:
            env = dict(os.environ, DRE_URL=s.base_url, DRE_USER="admin", DRE_PASSWORD="admin")
            p = subprocess.run([os.path.join(harness.SOURCE_DIR, "tools", "dre"), "import", path,
                                "--entity", "Articles", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               timeout=harness.deadline(60))
            self.assertEqual(p.returncode, 1, p.stderr.decode())
            out = json.loads(p.stdout)
            self.assertJson({"status": "COMPLETED_WITH_ERRORS", "format": "CSV", "total": 500,
                             "succeeded": 499, "failed": 1}, out["job"], subset=True)
            self.assertEqual([(e["row"], e["target"]) for e in out["errors"]], [(18, "name")])
            p = subprocess.run([os.path.join(harness.SOURCE_DIR, "tools", "dre"), "import", path,
                                "--entity", "Articles"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               timeout=harness.deadline(60))
            self.assertEqual(p.returncode, 1)
            text = p.stdout.decode() + p.stderr.decode()
            self.assertIn("499 succeeded, 1 failed", text)
            self.assertIn("row 18", text)
            p = subprocess.run([os.path.join(harness.SOURCE_DIR, "tools", "dre"), "import", path,
                                "--entity", "Widgets"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               timeout=harness.deadline(60))
            self.assertEqual(p.returncode, 2)
            self.assertIn("entity", p.stderr.decode())
        finally:
            os.unlink(path)


if __name__ == "__main__":
    harness.main()
