#!/usr/bin/env python3
# tools/bench/imports.py -- the bulk import figures (docs/imports.md): starts
# a private stack (tests/integration/harness.py), writes ROWS articles
# (NDJSON) and ROWS coupon codes (CSV) to files, imports each with
# `tools/dre import` and prints rows/s and the owner's peak RSS (sampled
# every 50 ms from /proc); then the codes again (rows left as they are) and
# a file of rejected rows. Not a test.
#   DRE_BIN_DIR=build/release/bin tools/bench/imports.py [ROWS]   (100000)
import json
import os
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
os.environ.setdefault("DRE_BIN_DIR", os.path.join(ROOT, "build", "release", "bin"))
import harness  # noqa: E402


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run(s, svc, path, entity, what=""):
    pid = s.procs[svc].pid
    base = rss_kb(pid)
    peak, stop = [base], threading.Event()

    def sample():
        while not stop.wait(0.05):
            peak.append(rss_kb(pid))
    th = threading.Thread(target=sample)
    th.start()
    env = dict(os.environ, DRE_URL=s.base_url, DRE_USER="admin", DRE_PASSWORD="admin")
    p = subprocess.run([os.path.join(ROOT, "tools", "dre"), "import", path, "--entity", entity,
                        "--json"], stdout=subprocess.PIPE, env=env, check=False)
    stop.set()
    th.join()
    out = json.loads(p.stdout)
    j = out["job"]
    print("%-21s %9d rows  %8.1f MB  %6.1f s  %7.0f rows/s  %s  dre-%s RSS %d MB before, "
          "peak %d MB" % ((entity + " " + what).strip(), j["processed"], j["bytesTotal"] / 1e6,
                          out["seconds"],
                          j["processed"] / out["seconds"], j["status"], svc, base // 1024,
                          max(peak) // 1024))


def main():
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    s = harness.Stack()
    d = tempfile.mkdtemp(prefix="dre-bench-imports-")
    try:
        arts = os.path.join(d, "articles.ndjson")
        with open(arts, "w") as f:
            for i in range(rows):
                f.write(json.dumps({"articleNumber": "B%08d" % i, "name": "Bench article %d" % i,
                                    "ean": "%013d" % i, "referencePrice": 1.99,
                                    "category": "Bench"}) + "\n")
        run(s, "catalog", arts, "Articles")
        r = s.post("/api/v1/CouponTypes", {"name": harness.uniq("Bench"), "type": "INDIVIDUAL"})
        codes = os.path.join(d, "codes.csv")
        with open(codes, "w") as f:
            f.write("code,couponTypeId\n")
            for i in range(rows):
                f.write("BENCH%08d,%s\n" % (i, r.body["id"]))
        run(s, "coupon", codes, "CouponCodes")
        # The same file again: every code exists and is left as it is,
        # rows without a write (their cursor is batched, 500 rows a write).
        run(s, "coupon", codes, "CouponCodes", "again")
        # A file of rows that are all rejected (an unknown coupon type).
        bad = os.path.join(d, "bad.csv")
        with open(bad, "w") as f:
            f.write("code,couponTypeId\n")
            for i in range(rows):
                f.write("BAD%08d,no-such-type\n" % i)
        run(s, "coupon", bad, "CouponCodes", "rejected")
    finally:
        s.stop()
        s.cleanup()
        for n in os.listdir(d):
            os.unlink(os.path.join(d, n))
        os.rmdir(d)


if __name__ == "__main__":
    main()
