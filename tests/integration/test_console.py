#!/usr/bin/env python3
# test_console.py -- the browser console (issue 18): the gateway serves its
# files at /console without authentication (only names of console.dir, with
# their media type; anything else a 404), GET /api/v1/Me names the caller's
# roles, and tests/console/e2e.js drives the console in headless Chromium
# (puppeteer-core from tests/console/package-lock.json, installed with
# `npm ci` into the build tree): sign in, create a promotion with a
# validation error corrected, simulate a basket (discount and "why not?"),
# open the budget chart. Screenshots land in <build>/console-screenshots.
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import D, basket, item, pct_action, promotion, uniq  # noqa: E402

BUILD_DIR = os.environ.get("DRE_BUILD_DIR", os.path.dirname(harness.BIN_DIR))
E2E_SRC = os.path.join(harness.SOURCE_DIR, "tests", "console")
CONSOLE_SRC = os.path.join(harness.SOURCE_DIR, "services", "gateway", "console")
CHROMIUM = os.environ.get("DRE_CHROMIUM", "/usr/bin/chromium")


def npm_ci():
    """node_modules of tests/console/package-lock.json in the build tree
    (`npm ci`, again only when the lock file changed)."""
    work = os.path.join(BUILD_DIR, "console-e2e")
    lock = os.path.join(E2E_SRC, "package-lock.json")
    with open(lock, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    stamp = os.path.join(work, "lock.sha256")
    if os.path.exists(stamp) and open(stamp).read() == digest:
        return os.path.join(work, "node_modules")
    os.makedirs(work, exist_ok=True)
    for n in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(E2E_SRC, n), os.path.join(work, n))
    p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"],
                       cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=600)
    if p.returncode != 0:
        raise AssertionError("npm ci failed:\n" + p.stdout.decode()[-3000:])
    with open(stamp, "w") as f:
        f.write(digest)
    return os.path.join(work, "node_modules")


class Console(harness.TestCase):
    def test_files_served_without_auth(self):
        s = self.stack
        for path, name, ctype in (
                ("/console", "index.html", "text/html; charset=utf-8"),
                ("/console/", "index.html", "text/html; charset=utf-8"),
                ("/console/index.html", "index.html", "text/html; charset=utf-8"),
                ("/console/app.js", "app.js", "text/javascript; charset=utf-8"),
                ("/console/chart.js", "chart.js", "text/javascript; charset=utf-8"),
                ("/console/console.css", "console.css", "text/css; charset=utf-8")):
            for user, pw in ((None, None), ("admin", "wrong")):
                r = s.request("GET", path, user=user, password=pw)
                self.assertStatus(r, 200)
                self.assertEqual(r.headers.get("content-type"), ctype, path)
                self.assertNotIn("www-authenticate", r.headers)
                self.assertEqual(r.headers.get("x-content-type-options"), "nosniff")
                self.assertTrue(r.headers.get("content-security-policy", "")
                                .startswith("default-src 'self'"), r.headers)
                with open(os.path.join(CONSOLE_SRC, name), "rb") as f:
                    self.assertEqual(r.raw, f.read(), path)

    def test_other_names_not_found(self):
        s = self.stack
        for path in ("/console/nope.js", "/console/.hidden.js", "/console/app.exe",
                     "/console/CMakeLists.txt", "/console/app.js.map",
                     "/console/%2e%2e%2fCMakeLists.txt", "/console/a/b.js"):
            r = s.request("GET", path, user=None)
            self.assertError(r, 404, "NOT_FOUND")
        r = s.request("POST", "/console", body={}, user=None)
        self.assertError(r, 405, "METHOD_NOT_ALLOWED")

    def test_me(self):
        s = self.stack
        r = s.get("/api/v1/Me", user="promo-manager")
        self.assertOk(r)
        self.assertEqual(r.body, {"principal": "promo-manager", "tenant": "default",
                                  "roles": ["PromotionManager"]})
        self.assertEqual(r.headers.get("cache-control"), "no-store")
        r = s.get("/api/v1/Me", user="pos-reader")
        self.assertOk(r)
        self.assertEqual(r.body["roles"], ["POSReader"])
        self.assertError(s.get("/api/v1/Me", user=None), 401, "UNAUTHORIZED")
        r = s.get("/api/v1/Me", user="admin", password="wrong")
        self.assertError(r, 401, "UNAUTHORIZED")

    def test_browser(self):
        """The console end to end in headless Chromium."""
        s = self.stack
        self.assertTrue(os.access(CHROMIUM, os.X_OK), "no Chromium at " + CHROMIUM)
        modules = npm_ci()
        # A promotion to find, consuming a quarter of its budget, and one the
        # basket misses (receipt too small).
        pg = s.create_pos_group()
        art = uniq("ART")
        budget = s.create_budget("40.00", name=uniq("Console budget"))
        known = promotion(uniq("Console known"), [{"type": "ARTICLE", "values": [art]}],
                          [pct_action(10, articles=[art])], pos_groups=[pg["id"]],
                          budgetIds=[budget["id"]])
        s.create_promotion(known)
        missed = promotion(uniq("Console big basket"),
                           [{"type": "RECEIPT_AMOUNT", "min": D("1000.00")}],
                           [{"type": "RECEIPT", "discountType": "PERCENTAGE", "value": 5}],
                           pos_groups=[pg["id"]], ptype="RECEIPT",
                           valid_to="2030-12-31T23:59:59Z")
        s.create_promotion(missed)
        other = uniq("OTHER")
        req = basket(pg["id"], [item("L1", other, 2, "50.00")])
        s.wait_for_promotion(known["id"], dict(req, items=[item("L1", art, 2, "50.00")]))
        txn = uniq("TX")
        r = s.evaluate(dict(req, items=[item("L1", art, 2, "50.00")],
                            header={"transactionId": txn}))
        self.assertEval(r)
        self.assertOk(s.confirm(txn, 1, [{"promotionId": known["id"]}]))
        harness.wait_until(lambda: s.budget(budget["id"])["consumedAmount"] == D("10.00"),
                           10, what="the budget consumed")

        shots = os.path.join(BUILD_DIR, "console-screenshots")
        shutil.rmtree(shots, ignore_errors=True)
        os.makedirs(shots)
        data = {"posGroupId": pg["id"], "posGroupCode": pg["code"], "article": uniq("ART"),
                "budgetId": budget["id"], "budgetName": budget["name"],
                "knownName": known["name"], "missedName": missed["name"],
                "newName": uniq("Console new")}
        env = dict(os.environ, NODE_PATH=modules, DRE_SHOTS=shots, DRE_CHROMIUM=CHROMIUM,
                   DRE_URL="http://127.0.0.1:%d" % s.http_port, DRE_E2E=json.dumps(data))
        t0 = time.monotonic()
        p = subprocess.run(["node", os.path.join(E2E_SRC, "e2e.js")], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=harness.deadline(120))
        out = p.stdout.decode(errors="replace")
        sys.stderr.write(out + "e2e.js: %.1fs\n" % (time.monotonic() - t0))
        self.assertEqual(p.returncode, 0, out)
        for n in ("login", "promotions", "promotion-conflict", "promotion-error", "promotion-saved",
                  "simulator", "budgets"):
            f = os.path.join(shots, n + ".png")
            with open(f, "rb") as fh:
                self.assertEqual(fh.read(8), b"\x89PNG\r\n\x1a\n", f)


if __name__ == "__main__":
    harness.main()
