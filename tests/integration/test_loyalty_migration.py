#!/usr/bin/env python3
# test_loyalty_migration.py -- the bulk load of members (seed 003 §6)
# through tools/loyalty-import and POST /api/v3/contacts/import: 100,000
# members from an NDJSON file streamed in chunks (the tool and the service
# hold one chunk, never the file), per-row errors with their row numbers,
# balances and levels as loaded, a second run changes nothing (set, not
# add); a JSON array file loads the same way. Prints rows per second and
# the loyalty service's peak RSS.
#
# DRE_MIGRATION_ROWS sets the number of members (default 100000, 20000
# under sanitizers).
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import uniq  # noqa: E402

SANITIZED = bool(os.environ.get("DRE_SANITIZE"))
ROWS = int(os.environ.get("DRE_MIGRATION_ROWS", 20000 if SANITIZED else 100000))
TOOL = os.path.join(harness.SOURCE_DIR, "tools", "loyalty-import")
LEVELS = ("BASE", "SILVER", "GOLD")


def member(tag, i):
    m = {"memberNumber": "%s-%07d" % (tag, i), "email": "%s-%d@mig.example.com" % (tag.lower(), i),
         "firstName": "M%d" % i, "pointsBalance": i % 7000, "level": LEVELS[i % 3]}
    if i % 10007 == 5:
        m["email"] = "broken-at-%d" % i          # InvalidEmailAddress
    elif i % 10007 == 6:
        m["level"] = "PLATINUM"                   # not a level
    elif i % 10007 == 7:
        m["pointsBalance"] = "many"               # not an integer
    return m


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Migration(harness.TestCase):
    def run_tool(self, path):
        s = self.stack
        pid = s.procs["loyalty"].pid
        peak, stop = [rss_kb(pid)], threading.Event()

        def sample():
            while not stop.wait(0.05):
                peak.append(rss_kb(pid))
        th = threading.Thread(target=sample)
        th.start()
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, TOOL, "-u", s.base_url, path],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=harness.deadline(600))
        secs = time.monotonic() - t0
        stop.set()
        th.join()
        tot = json.loads(p.stdout)
        errors = [json.loads(x) for x in p.stderr.decode().splitlines() if x.startswith("{")]
        return p.returncode, tot, errors, secs, max(peak), peak[0]

    def test_bulk_load_streamed_and_rerun(self):
        s = self.stack
        tag = uniq("MIG")
        bad = {i for i in range(ROWS) if i % 10007 in (5, 6, 7)}
        with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as f:
            path = f.name
            for i in range(ROWS):
                f.write(json.dumps(member(tag, i)) + "\n")
        try:
            rc, tot, errors, secs, peak, before = self.run_tool(path)
            sys.stderr.write("migration: %d rows in %.1f s = %.0f rows/s; loyalty RSS %d kB "
                             "before, %d kB peak (file %d kB)\n" % (
                                 ROWS, secs, ROWS / secs, before, peak,
                                 os.path.getsize(path) // 1024))
            self.assertEqual(rc, 1)  # some rows failed
            self.assertEqual((tot["rows"], tot["created"], tot["updated"], tot["failed"]),
                             (ROWS, ROWS - len(bad), 0, len(bad)))
            self.assertEqual(sorted(e["row"] for e in errors), sorted(bad))
            codes = {e["row"] % 10007: (e["code"], e.get("target")) for e in errors}
            self.assertEqual(codes, {5: ("InvalidEmailAddress", "email"),
                                     6: ("VALIDATION_FAILED", "level"),
                                     7: ("VALIDATION_FAILED", "pointsBalance")})
            # streamed: the service holds a chunk, RocksDB its write buffers
            # (bounded), whatever the size of the file
            # (ASan's quarantine keeps freed memory: not measured there)
            if not SANITIZED:
                self.assertLess(peak - before, 160 * 1024)

            for i in (0, 1, 2, ROWS // 2, ROWS - 1):
                m = member(tag, i)
                cid = s.get("/api/v3/contacts/id?customKey=" + m["memberNumber"]).body
                self.assertEqual(s.get("/api/v3/contacts/id?email=" + m["email"]).body, cid)
                o = self.assertOk(s.get("/api/v3/contactoverview?contactId=" + cid))
                self.assertEqual(o["loyalty"]["pointsBalance"], m["pointsBalance"])
                self.assertEqual(o["loyalty"]["level"], m["level"])
                self.assertEqual(o["meta"]["source"], "MIGRATION")
            for i in sorted(bad)[:3]:
                r = s.get("/api/v3/contacts/id?customKey=" + member(tag, i)["memberNumber"])
                self.assertError(r, 404, "ContactNotFound")

            # again: the same members, nothing added
            rc, tot, errors, secs, peak, before = self.run_tool(path)
            self.assertEqual((tot["rows"], tot["created"], tot["updated"], tot["failed"]),
                             (ROWS, 0, ROWS - len(bad), len(bad)))
            m = member(tag, ROWS // 2)
            cid = s.get("/api/v3/contacts/id?customKey=" + m["memberNumber"]).body
            o = self.assertOk(s.get("/api/v3/contactoverview?contactId=" + cid))
            self.assertEqual(o["loyalty"]["pointsBalance"], m["pointsBalance"])
        finally:
            os.unlink(path)

    def test_json_array_file_and_refusals(self):
        s = self.stack
        tag = uniq("ARR")
        rows = [member(tag, i) for i in range(50)] + [
            # member 1's number with member 3's email
            {"memberNumber": "%s-%07d" % (tag, 1), "email": "%s-3@mig.example.com" % tag.lower()},
            {"firstName": "nobody"}, 7,
            {"memberNumber": tag + "-x", "level": "GOLD", "pointsEarnedLast365": 10},
            {"memberNumber": tag + "-y", "pointsEarnedLast365": 1200, "pointsBalance": 3}]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(rows, f, indent=2)
            path = f.name
        try:
            rc, tot, errors, _, _, _ = self.run_tool(path)
            self.assertEqual((tot["rows"], tot["created"], tot["updated"], tot["failed"]),
                             (55, 48, 0, 7))
            self.assertEqual([(e["row"], e["code"], e.get("target")) for e in errors],
                             [(5, "InvalidEmailAddress", "email"), (6, "VALIDATION_FAILED", "level"),
                              (7, "VALIDATION_FAILED", "pointsBalance"),
                              (50, "ContactAlreadyExists", "email"),
                              (51, "VALIDATION_FAILED", "memberNumber"),
                              (52, "VALIDATION_FAILED", None),
                              (53, "VALIDATION_FAILED", "level")])
            cid = s.get("/api/v3/contacts/id?customKey=" + tag + "-y").body
            o = self.assertOk(s.get("/api/v3/contactoverview?contactId=" + cid))
            self.assertJson({"level": "SILVER", "pointsBalance": 3, "pointsEarnedLast365": 1200,
                             "nextLevel": "GOLD", "pointsToNextLevel": 3800}, o["loyalty"])
        finally:
            os.unlink(path)
        # the endpoint itself: not an array, malformed
        self.assertError(s.post("/api/v3/contacts/import", {"members": []}), 400,
                         "VALIDATION_FAILED", "body")

    def test_chunk_sent_again_gets_its_first_answer(self):
        """The tool's retry after a lost answer (a 503 on a busy service):
        the same chunkId is answered as the first time and writes nothing,
        so the totals do not count the rows twice; another chunkId applies
        the rows again (updated)."""
        s = self.stack
        tag = uniq("CHK")
        rows = [member(tag, i) for i in range(4)] + [{"firstName": "nobody"}]
        url = "/api/v3/contacts/import?firstRow=10&chunkId=run-%s:10" % tag
        first = self.assertOk(s.post(url, rows))
        self.assertEqual((first["rows"], first["created"], first["updated"], first["failed"]),
                         (5, 4, 0, 1))
        self.assertEqual([(e["row"], e["code"]) for e in first["errors"]],
                         [(14, "VALIDATION_FAILED")])
        cid = s.get("/api/v3/contacts/id?customKey=" + member(tag, 2)["memberNumber"]).body
        before = self.assertOk(s.get("/api/v3/contactoverview?contactId=" + cid))
        # changed in between: the replay must not write the chunk's rows again
        self.assertOk(s.request("PATCH", "/api/v3/contacts/" + cid, {"firstName": "Changed"}))
        again = s.post(url, rows)
        self.assertEqual(again.status, 200)
        self.assertEqual(again.body, first)
        got = self.assertOk(s.get("/api/v3/contacts/" + cid))
        self.assertEqual(got["attributes"]["firstName"], "Changed")
        after = self.assertOk(s.get("/api/v3/contactoverview?contactId=" + cid))
        self.assertEqual(after["loyalty"], before["loyalty"])
        other = self.assertOk(s.post(url.replace(":10", ":10b"), rows))
        self.assertEqual((other["rows"], other["created"], other["updated"], other["failed"]),
                         (5, 0, 4, 1))
        for bad in ("a/b", "x" * 65, "a%20b"):
            self.assertError(s.post("/api/v3/contacts/import?chunkId=" + bad, rows), 400,
                             "VALIDATION_FAILED", "chunkId")


if __name__ == "__main__":
    harness.main()
