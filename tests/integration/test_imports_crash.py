#!/usr/bin/env python3
# test_imports_crash.py -- kill -9 of the owner in the middle of a bulk
# import (issue 17): a 200,000-row article job (NDJSON) is running when
# dre-catalog is killed; after the restart the job resumes at its cursor
# (committed in the same RocksDB batch as each row's effect) and finishes
# with exactly the file's state: 200,000 articles, each written once --
# article i carries catalog version base + i (the version counts every
# write, and each write queues exactly one event in its batch, so a row
# applied twice or skipped would shift every later version).
#
# DRE_CRASH_IMPORT_ROWS sets the rows (default 200000).
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

ROWS = int(os.environ.get("DRE_CRASH_IMPORT_ROWS", 200000))


def name(i):
    return "Article %d of the crash import" % i


class ImportCrash(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = harness.Stack()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()
        cls.stack.cleanup()

    def test_kill9_mid_import(self):
        s = self.stack
        data = "".join(json.dumps({"articleNumber": "K%07d" % i, "name": name(i),
                                   "ean": "%013d" % i}) + "\n" for i in range(ROWS)).encode()
        r = s.post("/api/v1/ImportJobs", {"entity": "Articles", "format": "NDJSON"})
        self.assertStatus(r, 201)
        jid = r.body["id"]
        t0 = time.time()
        self.assertStatus(s.request("PUT", r.body["uploadUrl"], raw=data,
                                    content_type="application/x-ndjson"), 202)
        seen = {}

        def midway():
            j = s.get("/api/v1/ImportJobs/" + jid).body
            seen.update(j)
            return j["processed"] >= ROWS // 4
        harness.wait_until(midway, harness.deadline(120), interval=0.02, what="a quarter done")
        s.kill9("catalog")
        s.start_service("catalog")
        out = {}

        def finished():
            r = s.get("/api/v1/ImportJobs/" + jid)
            out["job"] = r.body
            return r.status == 200 and r.body["status"] not in ("QUEUED", "RUNNING")
        harness.wait_until(finished, harness.deadline(300), interval=0.2, what="the job's end")
        el = time.time() - t0
        j = out["job"]
        self.assertJson({"status": "COMPLETED", "total": ROWS, "processed": ROWS,
                         "succeeded": ROWS, "failed": 0, "bytesProcessed": len(data)}, j, subset=True)
        print("\n%d rows (killed at row %d) in %.1f s: %.0f rows/s" % (
            ROWS, seen["processed"], el, ROWS / el), file=sys.stderr)
        lst = self.assertOk(s.get("/api/v1/Articles?$top=1"))
        self.assertEqual(lst["count"], ROWS)
        first = s.get("/api/v1/Articles/K0000000")
        base = int(first.headers["etag"].strip('"')) - 1
        for i in sorted({0, 1, ROWS // 4 - 1, ROWS // 4, ROWS // 4 + 1, seen["processed"] - 1,
                         seen["processed"], seen["processed"] + 1, ROWS // 2, ROWS - 1}):
            a = s.get("/api/v1/Articles/K%07d" % i)
            self.assertStatus(a, 200)
            self.assertEqual((a.body["name"], a.body["ean"]), (name(i), "%013d" % i))
            self.assertEqual(a.headers["etag"], '"%d"' % (base + i + 1), "article %d" % i)
        self.assertEqual(s.get("/api/v1/ImportJobErrors?$filter=jobId%20eq%20'" + jid + "'").body["count"], 0)


if __name__ == "__main__":
    harness.main()
