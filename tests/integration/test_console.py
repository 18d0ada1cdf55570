#!/usr/bin/env python3
# test_console.py -- the browser console (issue 18): the gateway serves its
# files at /console without authentication (only names of console.dir, with
# their media type; anything else a 404), GET /api/v1/Me names the caller's
# roles, and tests/console/e2e.js drives the console in headless Chromium
# (puppeteer-core from tests/console/package-lock.json, installed with
# `npm ci` into the build tree): sign in, create a promotion with a
# validation error corrected, simulate a basket (discount and "why not?"),
# open the budget chart, the reports (performance over time and per store
# after a confirm, CSV download, coupon funnel, burn-down), coupon batch
# generation to the end, a member lookup after a confirm, a webhook repost,
# the approval flow with two users, what a read-only role sees. With
# DRE_CONSOLE_BROWSERS=chromium,firefox the same script runs in Firefox ESR
# too (WebDriver BiDi; not by default: docs/console.md, "Firefox").
# Screenshots land in <build>/console-screenshots.
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
from test_webhook import Receiver  # noqa: E402

BUILD_DIR = os.environ.get("DRE_BUILD_DIR", os.path.dirname(harness.BIN_DIR))
E2E_SRC = os.path.join(harness.SOURCE_DIR, "tests", "console")
CONSOLE_SRC = os.path.join(harness.SOURCE_DIR, "services", "gateway", "console")
CHROMIUM = os.environ.get("DRE_CHROMIUM", "/usr/bin/chromium")
FIREFOX = os.environ.get("DRE_FIREFOX", "/usr/bin/firefox-esr")
SHOTS = ("login", "promotions", "promotion-conflict", "promotion-error", "promotion-saved",
         "simulator", "budgets", "reports", "coupons", "loyalty", "webhooks",
         "promotion-approval", "read-only")

# A tenant of its own that requires approval, with an editor and an
# approver (the four-eyes flow in the browser).
APPROVAL_USERS = ("con-editor:ed:PromotionManager:conappr,"
                  "con-approver:ap:PromotionApprover:conappr,"
                  "con-admin:ad:Admin:conappr")
harness.USERS.update({"con-editor": "ed", "con-approver": "ap", "con-admin": "ad"})


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
    # The registry is a network away: a failed download is tried again
    # (three times, 5 s apart) before the test gives up.
    for attempt in range(3):
        if attempt:
            time.sleep(5)
        p = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline"],
                           cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=600)
        if p.returncode == 0:
            break
    if p.returncode != 0:
        raise AssertionError("npm ci failed:\n" + p.stdout.decode()[-3000:])
    with open(stamp, "w") as f:
        f.write(digest)
    return os.path.join(work, "node_modules")


class Console(harness.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = harness.shared_stack(opts={"gateway": [
            "auth.users=" + harness.EXTRA_USERS + "," + APPROVAL_USERS]})

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
        data = {"posGroupId": pg["id"], "posGroupCode": pg["code"], "article": uniq("ART"),
                "budgetId": budget["id"], "budgetName": budget["name"],
                "knownName": known["name"], "missedName": missed["name"],
                "newName": uniq("Console new"), "knownId": known["id"]}
        data.update(self.report_fixture(pg, known))
        data.update(self.coupon_fixture())
        data.update(self.loyalty_fixture())
        rx = Receiver()
        self.addCleanup(rx.close)
        data.update(self.webhook_fixture(rx))
        data.update(self.approval_fixture())

        shots = os.path.join(BUILD_DIR, "console-screenshots")
        shutil.rmtree(shots, ignore_errors=True)
        os.makedirs(shots)
        browsers = os.environ.get("DRE_CONSOLE_BROWSERS", "chromium").split(",")
        if "chromium" in browsers:
            self.e2e("chromium", CHROMIUM, modules, shots, data)
        for n in SHOTS if "chromium" in browsers else ():
            f = os.path.join(shots, n + ".png")
            with open(f, "rb") as fh:
                self.assertEqual(fh.read(8), b"\x89PNG\r\n\x1a\n", f)
        data = dict(data, newName=uniq("Console new"), article=uniq("ART"),
                    couponTypeName=uniq("Console batch"))
        data.update(self.webhook_fixture(rx))
        data.update(self.approval_fixture())
        if "firefox" in browsers:
            ff_shots = os.path.join(BUILD_DIR, "console-screenshots-firefox")
            shutil.rmtree(ff_shots, ignore_errors=True)
            os.makedirs(ff_shots)
            self.e2e("firefox", FIREFOX, modules, ff_shots, data)

    def e2e(self, browser, exe, modules, shots, data):
        """tests/console/e2e.js in one browser against this stack."""
        s = self.stack
        self.assertTrue(os.access(exe, os.X_OK), "no %s at %s" % (browser, exe))
        # Firefox (opt-in) starts and opens tabs far slower on a busy machine.
        timeout = harness.deadline(120 if browser == "chromium" else 240)
        env = dict(os.environ, NODE_PATH=modules, DRE_BROWSER=browser, DRE_BROWSER_EXE=exe,
                   DRE_URL="http://127.0.0.1:%d" % s.http_port, DRE_E2E=json.dumps(data),
                   DRE_E2E_SCALE=str(harness.SCALE), DRE_E2E_DEADLINE_S=str(int(timeout - 10)))
        if shots:
            env["DRE_SHOTS"] = shots
        t0 = time.monotonic()
        try:
            p = subprocess.run(["node", os.path.join(E2E_SRC, "e2e.js")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("e2e.js (%s) timed out:\n%s" % (
                browser, (e.stdout or b"").decode(errors="replace")))
        out = p.stdout.decode(errors="replace")
        sys.stderr.write(out + "e2e.js (%s): %.1fs\n" % (browser, time.monotonic() - t0))
        self.assertEqual(p.returncode, 0, out)

    def report_fixture(self, pg, known):
        """What the reports page must show for the store of the confirm."""
        s = self.stack
        q = "/reporting/PromotionPerformance?groupBy=day,posGroup&posGroupId=" + pg["id"]
        rows = harness.wait_until(lambda: s.get(q).body["value"], 10, what="the report")
        self.assertEqual(1, len(rows), rows)
        row = rows[0]
        self.assertEqual((known["id"], 1, D("10.00")),
                         (row["promotionId"], row["applicationsCount"],
                          row["totalDiscountGiven"]))
        store = "%s (%s)" % (pg["name"], pg["code"])
        csv = ("day,store,posGroupId,promotionName,promotionId,applicationsCount,"
               "totalDiscountGiven,currency\r\n%s,%s,%s,%s,%s,1,10.00,EUR\r\n"
               % (row["day"], store, pg["id"], known["name"], known["id"]))
        return {"saleDay": row["day"], "storeName": store, "reportCsv": csv}

    def coupon_fixture(self):
        """A coupon type with three codes, one redeemed (the funnel), and
        the name of the type the browser creates for its batch."""
        s = self.stack
        t = s.post("/api/v1/CouponTypes", {"name": uniq("Console funnel"), "type": "INDIVIDUAL"})
        self.assertStatus(t, 201)
        codes = [uniq("CF").upper().replace("-", "")[:20] for _ in range(3)]
        r = s.post("/api/v1/CouponCodes/import", {"couponTypeId": t.body["id"], "codes": codes})
        self.assertEqual(3, self.assertOk(r)["imported"])
        tx = uniq("TX")
        res = self.assertOk(s.post("/pos/coupons/reserve", {"code": codes[0], "transactionId": tx}))
        self.assertTrue(res["reserved"], res)
        red = self.assertOk(s.post("/pos/coupons/redeem", {"reservationId": res["reservationId"],
                                                          "transactionId": tx}))
        self.assertTrue(red["redeemed"], red)
        return {"funnelType": t.body["name"], "couponTypeName": uniq("Console batch")}

    def loyalty_fixture(self):
        """A member who earned 92 points with a confirmed sale."""
        s = self.stack
        gid = s.create_pos_group()["id"]
        art = uniq("ART")
        p = promotion(uniq("Console points"), [{"type": "CUSTOMER_REQUIRED"}],
                      [{"type": "CURRENCY_TO_POINTS", "pointsPerUnit": 1}],
                      pos_groups=[gid], ptype="LOYALTY")
        s.create_promotion(p)
        mn = uniq("MN")
        c = s.post("/api/v3/contacts", {"memberNumber": mn, "firstName": "Ada",
                                        "lastName": "Lovelace"})
        self.assertIn(c.status, (200, 201), c)
        req = basket(gid, [item("L1", art, 2, "46.25")], customer={"customerId": c.body["id"]})
        harness.wait_until(
            lambda: self.assertEval(s.simulate(req), simulation=True)
            ["totals"]["savingsSummary"]["loyaltyPointsEarned"] == 92,
            10, what="the points promotion in effect")
        txn = uniq("TX")
        self.assertEval(s.evaluate(dict(req, header={"transactionId": txn})))
        self.assertOk(s.confirm(txn, 1, []))
        harness.wait_until(
            lambda: s.get("/api/v3/contactoverview?contactId=" + c.body["id"])
            .body["loyalty"]["pointsBalance"] == 92, 10, what="the points credited")
        return {"memberNumber": mn, "memberName": "Ada Lovelace", "points": "92"}

    def webhook_fixture(self, rx):
        """A subscription whose receiver failed the one attempt of a test
        event; the receiver answers again before the browser reposts."""
        s = self.stack
        path = "/" + uniq("hook")
        rx.mode[path] = "fail"
        sub = s.post("/api/v1/WebhookSubscriptions", {
            "url": rx.url(path), "eventTypes": ["WEBHOOK_TEST"], "description": uniq("Console hook"),
            "retryPolicy": {"maxAttempts": 1, "initialDelaySeconds": 1, "maxDelaySeconds": 60}})
        self.assertStatus(sub, 201)
        self.assertStatus(s.post("/api/v1/WebhookSubscriptions/%s/test" % sub.body["id"]), 202)
        q = "/api/v1/WebhookDeliveries?status=FAILED&subscriptionId=" + sub.body["id"]
        d = harness.wait_until(lambda: s.get(q).body["value"], 10, what="the failed delivery")
        self.assertEqual(500, d[0]["lastStatusCode"])
        rx.mode[path] = "ok"
        return {"hookDescription": sub.body["description"], "deliveryId": d[0]["id"]}

    def approval_fixture(self):
        """A DRAFT promotion of the tenant that requires approval."""
        s = self.stack
        r = s.request("PUT", "/api/v1/TenantSettings", {"requireApproval": True}, user="con-admin")
        self.assertOk(r)
        art = uniq("ART")
        p = promotion(uniq("Console approval"), [{"type": "ARTICLE", "values": [art]}],
                      [pct_action(10, articles=[art])], status="DRAFT")
        self.assertStatus(s.post("/api/v1/Promotions", p, user="con-editor"), 201)
        return {"approvalId": p["id"], "approvalName": p["name"]}


if __name__ == "__main__":
    harness.main()
