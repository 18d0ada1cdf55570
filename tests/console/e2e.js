// e2e.js -- drives the console in a headless browser (Debian's chromium
// over CDP, or firefox-esr over WebDriver BiDi; puppeteer-core pinned by
// package-lock.json): sign in, find a promotion, see another user's change
// explained (412, reload), create a promotion with a validation error and
// correct it, simulate a basket and read the discount and a "why not?"
// reason, open the budget chart, the reports (a confirmed sale per day and
// per store, its CSV, the coupon funnel, the burn-down), generate a coupon
// batch to the end, look up a member's points, repost a failed webhook
// delivery, take a promotion through approval with two users, and check
// what a budget manager and a read-only user see. Saves a screenshot of
// each page into DRE_SHOTS (when set). Run by
// tests/integration/test_console.py, which starts the stack and passes:
//   DRE_URL          the gateway's base URL
//   DRE_BROWSER      chromium or firefox; DRE_BROWSER_EXE its executable
//   DRE_SHOTS        the screenshot directory (optional)
//   DRE_E2E          JSON: posGroupId, posGroupCode, article (of the new
//                    promotion, in no other), budgetId, budgetName,
//                    knownName, knownId, missedName, newName, saleDay,
//                    storeName, reportCsv, funnelType, couponTypeName,
//                    memberNumber, memberName, points, hookDescription,
//                    deliveryId, approvalId, approvalName
"use strict";
const puppeteer = require("puppeteer-core");
const fs = require("fs");
const os = require("os");
const path = require("path");

const base = process.env.DRE_URL;
const shots = process.env.DRE_SHOTS;
const data = JSON.parse(process.env.DRE_E2E);
const browserName = process.env.DRE_BROWSER || "chromium";
const exe = process.env.DRE_BROWSER_EXE || "/usr/bin/chromium";
// Waits scale like the harness's (DRE_E2E_SCALE: 3 under the sanitizers).
const scale = Number(process.env.DRE_E2E_SCALE || 1);
const T = 20000 * scale;
const t0 = Date.now();

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
  console.log("ok - [" + browserName + " " + ((Date.now() - t0) / 1000).toFixed(1) + "s] " + what);
}

async function shot(page, name) {
  if (!shots) return;
  await page.screenshot({ path: path.join(shots, name + ".png"), fullPage: true });
  console.log("screenshot " + name + ".png");
}

async function go(page, hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
}

async function cells(page, sel) {
  return page.$$eval(sel + " tbody tr", (rs) => rs.map((r) => Array.from(r.cells).map((c) => c.textContent)));
}

// csvOf clicks the button and answers the CSV it downloads: a real download
// into a directory in Chromium (CDP); in Firefox the Blob handed to the
// download link (BiDi has no download directory in puppeteer 23).
async function csvOf(page, button, name) {
  if (browserName === "chromium") {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dre-csv-"));
    const cdp = await page.createCDPSession();
    await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: dir });
    await page.click(button);
    const f = path.join(dir, name);
    const until = Date.now() + T;
    while (!fs.existsSync(f) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    const text = fs.readFileSync(f, "utf8");
    fs.rmSync(dir, { recursive: true });
    return text;
  }
  await page.evaluate(() => {
    window.__blobs = [];
    const orig = URL.createObjectURL;
    URL.createObjectURL = (b) => { window.__blobs.push(b); return orig(b); };
  });
  await page.click(button);
  await page.waitForFunction(() => window.__blobs.length > 0, { timeout: T, polling: 50 });
  return page.evaluate(() => window.__blobs[0].text());
}

async function text(page, sel) {
  return page.$eval(sel, (e) => e.textContent);
}

async function setValue(page, sel, v) {
  await page.$eval(sel, (e, v) => { e.value = v; e.dispatchEvent(new Event("change", { bubbles: true })); }, v);
}

// typeInto replaces a field's text by typing (emptied first: a triple
// click selects an input's text in Chromium, not in Firefox).
async function typeInto(page, sel, v) {
  await page.$eval(sel, (e) => { e.value = ""; });
  await page.type(sel, v);
}

async function signIn(page, user, pass) {
  await page.waitForSelector("#login-user", { visible: true, timeout: T });
  await typeInto(page, "#login-user", user);
  await typeInto(page, "#login-pass", pass);
  await page.keyboard.press("Enter"); // the form submits from the keyboard
  await page.waitForSelector("#nav:not([hidden])", { timeout: T });
}

async function visibleNav(page) {
  return page.$$eval("#nav button", (bs) => bs.filter((b) => !b.hidden).map((b) => b.textContent));
}

// A step that never ends fails the run (puppeteer closes the browser
// on exit) before the test's own timeout, with the steps so far printed.
const deadline = Number(process.env.DRE_E2E_DEADLINE_S || 100);
setTimeout(() => { console.error("FAIL: e2e.js did not finish in " + deadline + " s"); process.exit(1); }, deadline * 1000).unref();

(async () => {
  const browser = await puppeteer.launch(browserName === "firefox" ? {
    browser: "firefox",
    executablePath: exe,
    headless: true,
    protocolTimeout: 60000 * scale, // starting Firefox takes 7-65 s on a busy 2-core machine
  } : {
    executablePath: exe,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
    protocolTimeout: 60000 * scale, // a stuck protocol call fails the step instead of hanging
  });
  console.log("launched " + (await browser.version()) + " in " + ((Date.now() - t0) / 1000).toFixed(1) + "s");
  const errors = [];
  try {
    const page = await browser.newPage();
    page.on("pageerror", (e) => errors.push(String(e)));
    // The browser logs each 4xx as "Failed to load resource": the test
    // causes a 401 and a 400 on purpose; script errors are what counts.
    page.on("console", (m) => {
      if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
    });
    await page.setViewport({ width: 1280, height: 800 });
    await page.goto(base + "/console", { waitUntil: "load", timeout: T });
    await shot(page, "login");

    // A wrong password is refused on the form.
    await typeInto(page, "#login-user", "admin");
    await typeInto(page, "#login-pass", "wrong");
    await page.click("#login-form button[type=submit]");
    await page.waitForFunction(() => document.querySelector("#login-error").textContent.length > 0, { timeout: T, polling: 50 });
    check((await text(page, "#login-error")).startsWith("Sign-in failed"), "a wrong password is refused");

    // 1. Sign in; the promotion list, searched by name.
    await signIn(page, "admin", "admin");
    check(JSON.stringify(await visibleNav(page)) ===
      JSON.stringify(["Promotions", "Simulator", "Budgets", "Reports", "Coupons", "Loyalty", "Webhooks"]),
      "an admin sees every page");
    await page.waitForSelector("#promo-rows tr", { timeout: T });
    await typeInto(page, "#f-q", data.knownName);
    await page.click("#promo-search button[type=submit]");
    await page.waitForFunction((n) => {
      const rows = document.querySelectorAll("#promo-rows tr");
      return rows.length === 1 && rows[0].textContent.includes(n);
    }, { timeout: T, polling: 50 }, data.knownName);
    check((await text(page, "#promo-rows .badge")) === "ACTIVE", "the search finds the promotion, with its status badge");
    await shot(page, "promotions");

    // 2. Someone else changes the promotion while it is open: saving
    // explains the conflict, Reload shows their version.
    await page.click("#promo-rows a");
    await page.waitForSelector("#p-name", { visible: true, timeout: T });
    const id = (await page.evaluate(() => location.hash)).split("/")[2];
    const other = await fetch(base + "/api/v1/Promotions/" + id, {
      method: "PATCH",
      headers: { "Content-Type": "application/json", Authorization: "Basic " + Buffer.from("admin:admin").toString("base64") },
      body: JSON.stringify({ description: "changed elsewhere" }),
    });
    check(other.status === 200, "another user changed the promotion");
    await typeInto(page, "#p-priority", "7");
    await page.click("#promo-save");
    await page.waitForSelector("#promo-reload", { timeout: T });
    check((await text(page, "#promo-banner")).includes("changed by someone else"), "the 412 is explained");
    check(await page.$eval("#promo-reload", (e) => e === document.activeElement), "the Reload button has the focus");
    await shot(page, "promotion-conflict");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelector("#p-description").value === "changed elsewhere", { timeout: T, polling: 50 });
    check((await page.$eval("#p-priority", (e) => e.value)) === "100", "Reload shows the stored version");
    await page.click("#promo-back");
    await page.waitForSelector("#promo-new", { timeout: T });

    // 3. A new promotion: 150% is refused on the field, 10% is saved.
    await page.click("#promo-new");
    await page.waitForSelector("#p-name", { visible: true, timeout: T });
    await page.type("#p-name", data.newName);
    await setValue(page, "#p-status", "ACTIVE");
    await setValue(page, "#p-validFrom", "2026-01-01T00:00");
    await setValue(page, "#p-validTo", "2030-12-31T23:59");
    await page.type("#p-posGroups", data.posGroupId);
    await page.type("#p-budgetIds", data.budgetId);
    await page.click("#add-cond");
    await page.waitForSelector("#conditions-0-values", { timeout: T });
    await page.type("#conditions-0-values", data.article);
    await page.type("#actions-0-value", "150");
    await page.click("#promo-save");
    await page.waitForSelector("#actions-0-value[aria-invalid=true]", { timeout: T });
    const msg = await page.$eval("#actions-0-value", (e) => document.getElementById(e.getAttribute("aria-describedby")).textContent);
    check(msg === "actions[0].value must be greater than 0 and at most 100", "the server's error is shown on actions[0].value: " + msg);
    check(await page.$eval("#actions-0-value", (e) => e === document.activeElement), "the field in error has the focus");
    await shot(page, "promotion-error");
    await typeInto(page, "#actions-0-value", "10");
    await page.click("#promo-save");
    await page.waitForSelector("#promo-banner .banner.ok", { timeout: T });
    check((await text(page, "#promo-banner")).includes(data.newName), "the corrected promotion is saved");
    check(/^#\/promotions\/[0-9a-f-]{36}$/.test(await page.evaluate(() => location.hash)), "the editor now shows the stored promotion");
    await shot(page, "promotion-saved");

    // 4. Simulate a basket: the new promotion's discount, and why the
    // other one did not apply.
    await page.click("#nav button[data-page=simulator]");
    await page.waitForSelector("#s-art-1", { timeout: T });
    await page.type("#s-pos", data.posGroupCode);
    await page.type("#s-art-1", data.article);
    await typeInto(page, "#s-qty-1", "2");
    await page.type("#s-price-1", "5.00");
    await page.click("#s-run");
    await page.waitForSelector("#s-result", { timeout: T });
    check((await text(page, "#s-discount")) === "1.00 EUR", "the basket gets 10% of 10.00 off");
    const line = await page.$$eval("#s-result tbody tr td", (cs) => cs.map((c) => c.textContent));
    check(line[1] === data.article && line[2] === "2" && line[3] === "10.00 EUR" && line[4].includes(data.newName) &&
      line[5] === "1.00 EUR" && line[6] === "9.00 EUR", "the line: " + line.join(" | "));
    const missed = await page.$$eval("#s-missed tbody tr", (rs) => rs.map((r) => Array.from(r.cells).map((c) => c.textContent)));
    const row = missed.find((r) => r[0] === data.missedName);
    check(row !== undefined && row[1].length > 0 && row[2].length > 0,
      "why not: " + (row ? row.join(" | ") : JSON.stringify(missed)));
    await shot(page, "simulator");

    // 5. The budget chart.
    await page.click("#nav button[data-page=budgets]");
    await page.waitForSelector("#b-chart svg g.row", { timeout: T });
    const labels = await page.$$eval("#b-chart svg g.row", (gs) => gs.map((g) => g.getAttribute("data-label")));
    check(labels.includes(data.budgetName), "the chart has a bar for the budget");
    const used = await page.$eval("#b-chart svg g.row[data-label='" + data.budgetName + "'] text:last-of-type", (t) => t.textContent);
    check(used.startsWith("25.0%"), "the bar shows the budget's utilisation: " + used);
    await shot(page, "budgets");

    // 6. Coupons: a new type, a batch of its codes generated to the end
    // with the progress shown.
    await page.click("#nav button[data-page=coupons]");
    await page.waitForSelector("#ct-table tbody tr", { timeout: T });
    await page.type("#ct-name", data.couponTypeName);
    await page.type("#ct-prefix", "CON");
    await page.click("#ct-new");
    await page.waitForFunction((n) => document.querySelector("#ct-msg").textContent.includes(n), { timeout: T, polling: 50 }, data.couponTypeName);
    check((await page.$eval("#cb-type", (e) => e.options[e.selectedIndex].textContent)) === data.couponTypeName,
      "the new coupon type is listed and chosen for a batch");
    await typeInto(page, "#cb-count", "3000");
    await page.click("#cb-generate");
    await page.waitForSelector("#cb-progress:not([hidden])", { timeout: T });
    check(await page.$eval("#cb-generate", (e) => e.disabled), "Generate is disabled while the batch runs");
    await page.waitForFunction(() => document.querySelector("#cb-msg").textContent.startsWith("Done"), { timeout: T, polling: 50 });
    check((await text(page, "#cb-msg")) === "Done: 3000 codes generated.", "the batch ran to the end");
    check((await page.$eval("#cb-bar", (e) => e.value)) === 100 && (await text(page, "#cb-status")) === "COMPLETED: 3000 of 3000 codes (100%)",
      "the progress bar is full");
    await page.waitForFunction((n) => {
      const r = document.querySelector("#cb-table tbody tr");
      return r && r.cells[0].textContent === n && r.cells[4].textContent === "COMPLETED";
    }, { timeout: T, polling: 50 }, data.couponTypeName);
    const batch = (await cells(page, "#cb-table"))[0];
    check(batch[1] === "3000" && batch[2] === "3000" && batch[3] === "100%", "the batch row: " + batch.join(" | "));
    await shot(page, "coupons");

    // 7. Loyalty (before any CSV download: after one, headless Firefox
    // no longer activates a focused button from a synthesized key): the
    // member's points after the confirm, looked up by
    // member number from the keyboard (Tab to the button, Space).
    await page.click("#nav button[data-page=loyalty]");
    await page.waitForSelector("#l-q", { timeout: T });
    await setValue(page, "#l-by", "customKey");
    await page.type("#l-q", data.memberNumber);
    await page.keyboard.press("Tab");
    check(await page.$eval("#l-go", (e) => e === document.activeElement), "Tab reaches the Look up button");
    await page.keyboard.press(" "); // Space ("Space" is no key name over BiDi)
    await page.waitForSelector("#l-points", { timeout: T });
    check((await text(page, "#l-points")) === data.points && (await text(page, "#l-level")) === "BASE" &&
      (await text(page, "#l-name")) === data.memberName, "the member's points and level");
    await shot(page, "loyalty");
    await typeInto(page, "#l-q", "nobody-" + data.memberNumber);
    await page.keyboard.press("Enter");
    await page.waitForSelector("#l-none", { timeout: T });
    check((await text(page, "#l-none")).startsWith("No member found"), "an unknown member is said so");

    // 8. Reports: the confirmed sale of the store, per day and per store,
    // its CSV, the coupon funnel, the budget burn-down.
    await page.click("#nav button[data-page=reports]");
    await page.waitForSelector("#page[data-loaded=all]", { timeout: T });
    await setValue(page, "#r-from", data.saleDay);
    await setValue(page, "#r-store", data.posGroupId);
    await page.click("#r-run");
    await page.waitForFunction((d) => {
      const g = document.querySelectorAll("#r-days svg g.col");
      return g.length === 1 && g[0].getAttribute("data-label") === d;
    }, { timeout: T, polling: 50 }, data.saleDay);
    check((await page.$eval("#r-days svg g.col", (g) => g.getAttribute("data-value"))) === "10",
      "the day's column is the 10.00 discount of the confirm");
    check(JSON.stringify(await cells(page, "#r-days-table")) === JSON.stringify([[data.saleDay, "1", "10.00 EUR"]]), "the day's row");
    check(JSON.stringify(await cells(page, "#r-stores-table")) === JSON.stringify([[data.storeName, "1", "10.00 EUR"]]), "the store's row");
    check(JSON.stringify(await page.$$eval("#r-stores svg g.row", (gs) => gs.map((g) => g.getAttribute("data-label")))) ===
      JSON.stringify([data.storeName]), "the store's bar");
    const promoRow = (await cells(page, "#r-promos-table"))[0];
    check(promoRow[0] === data.knownName && promoRow[2] === "1" && promoRow[3] === "10.00 EUR" && promoRow[4] === "10.00",
      "the promotion's row: " + promoRow.join(" | "));
    const csv = await csvOf(page, "#r-csv", "promotion-performance.csv");
    check(csv === data.reportCsv, "the CSV download is what is shown: " + JSON.stringify(csv));
    const funnel = (await cells(page, "#r-funnel-table")).find((r) => r[0] === data.funnelType);
    check(funnel && funnel.join("|") === [data.funnelType, "3", "1", "33.3%"].join("|"), "the coupon funnel: 3 issued, 1 redeemed");
    const batchFunnel = (await cells(page, "#r-funnel-table")).find((r) => r[0] === data.couponTypeName);
    check(batchFunnel && batchFunnel[1] === "3000" && batchFunnel[2] === "0", "the funnel counts the batch's codes");
    await setValue(page, "#r-budget", data.budgetId);
    await page.waitForFunction((d) => document.querySelector("#r-burn circle[data-label='" + d + "']") !== null, { timeout: T, polling: 50 }, data.saleDay);
    const burn = await page.$$eval("#r-burn circle.actual", (cs) => cs.map((c) => c.getAttribute("data-label") + "=" + c.getAttribute("data-value")));
    check(burn[0] === "start=40" && burn.includes(data.saleDay + "=30") && burn[burn.length - 1].endsWith("=30"),
      "the burn-down: 40 before the sale, 30 after it: " + burn.join(", "));
    const util = (await cells(page, "#r-budgets-table")).find((r) => r[0] === data.budgetName);
    check(util && util[3] === "10.00" && util[4] === "30.00" && util[5] === "25.0%", "the budget's utilisation row");
    await shot(page, "reports");

    // 9. Webhooks: the failed delivery of the subscription, reposted.
    await page.click("#nav button[data-page=webhooks]");
    await page.waitForSelector("#w-subs button.log", { timeout: T });
    const logButton = await page.$$eval("#w-subs button.log", (bs, d) => bs.findIndex((b) => b.textContent === "Deliveries of " + d), data.hookDescription);
    check(logButton >= 0, "the subscription is listed");
    await (await page.$$("#w-subs button.log"))[logButton].click();
    const failed = "#w-log tr[data-id='" + data.deliveryId + "']";
    await page.waitForSelector(failed + " button.repost", { timeout: T });
    check((await page.$eval(failed, (r) => r.cells[1].textContent + "|" + r.cells[3].textContent)) === "FAILED|500",
      "the delivery log shows the failed delivery");
    await page.click(failed + " button.repost");
    await page.waitForFunction(() => document.querySelector("#w-msg").textContent.startsWith("Reposted"), { timeout: T, polling: 50 });
    check((await text(page, "#w-msg")) === "Reposted: DELIVERED (HTTP 204).", "the repost was delivered");
    await page.waitForFunction((s) => { const r = document.querySelector(s); return r && r.cells[1].textContent === "DELIVERED"; }, { timeout: T, polling: 50 }, failed);
    check((await page.$(failed + " button.repost")) === null, "a delivered delivery has no Repost button");
    await shot(page, "webhooks");

    // 10. A budget manager sees budgets and reports only.
    await page.click("#logout");
    await signIn(page, "budget-manager", "budget");
    check(JSON.stringify(await visibleNav(page)) === JSON.stringify(["Budgets", "Reports"]), "a budget manager sees Budgets and Reports");
    await page.waitForSelector("#b-chart svg", { timeout: T });

    // 11. A read-only user: no create buttons anywhere.
    await page.click("#logout");
    await signIn(page, "api-reader", "reader");
    check(JSON.stringify(await visibleNav(page)) === JSON.stringify(["Promotions", "Budgets", "Coupons"]), "a reader sees what it may read");
    await page.waitForSelector("#promo-rows tr", { timeout: T });
    check((await page.$("#promo-new")) === null, "a reader has no New promotion button");
    await page.click("#nav button[data-page=coupons]");
    await page.waitForSelector("#ct-table tbody tr", { timeout: T });
    check((await page.$("#ct-new")) === null && (await page.$("#cb-generate")) === null, "a reader has no coupon create buttons");
    await shot(page, "read-only");
    await go(page, "#/webhooks");
    await page.waitForFunction(() => document.querySelector("#page h1").textContent === "Not available", { timeout: T, polling: 50 });
    check(true, "a page the role may not use says so");

    // 12. Approval with two users of a tenant that requires it: the
    // editor submits, the approver rejects (a reason is required), the
    // editor submits again, the approver approves.
    await page.click("#logout");
    const editor = page;
    await signIn(editor, "con-editor", "ed");
    const approver = await browser.newPage();
    approver.on("pageerror", (e) => errors.push(String(e)));
    await approver.setViewport({ width: 1280, height: 800 });
    await approver.goto(base + "/console", { waitUntil: "load", timeout: T });
    await signIn(approver, "con-approver", "ap");
    const promo = "#/promotions/" + data.approvalId;
    async function open(p, st) {
      await p.bringToFront(); // a background tab is throttled: one tab at a time
      await go(p, "#/promotions");
      await p.waitForSelector("#promo-rows tr", { timeout: T });
      await go(p, promo);
      await p.waitForFunction((s) => { const b = document.querySelector("#page h1 .badge"); return b && b.textContent === s; }, { timeout: T, polling: 50 }, st);
    }
    await open(editor, "DRAFT");
    check((await editor.$("#promo-approve")) === null && (await editor.$("#promo-activate")) === null,
      "the editor cannot approve, nor activate before approval");
    await editor.click("#promo-submit");
    await editor.waitForFunction(() => document.querySelector("#page h1 .badge").textContent === "PENDING_APPROVAL", { timeout: T, polling: 50 });
    check((await editor.$("#promo-submit")) === null, "submitted: PENDING_APPROVAL");
    await open(approver, "PENDING_APPROVAL");
    check((await approver.$("#promo-save")) === null && (await approver.$("#promo-new")) === null, "the approver has no Save");
    await approver.click("#promo-reject");
    await approver.waitForSelector("#p-reason[aria-invalid=true]", { timeout: T });
    check(await approver.$eval("#p-reason", (e) => e === document.activeElement), "rejecting without a reason asks for one");
    await approver.type("#p-reason", "Ten percent is too deep for this article");
    await approver.click("#promo-reject");
    await approver.waitForFunction(() => document.querySelector("#page h1 .badge").textContent === "REJECTED", { timeout: T, polling: 50 });
    check(true, "the approver rejected it with a reason");
    await open(editor, "REJECTED");
    await editor.click("#promo-submit");
    await editor.waitForFunction(() => document.querySelector("#page h1 .badge").textContent === "PENDING_APPROVAL", { timeout: T, polling: 50 });
    await open(approver, "PENDING_APPROVAL");
    await shot(approver, "promotion-approval");
    await approver.click("#promo-approve");
    await approver.waitForFunction(() => document.querySelector("#page h1 .badge").textContent === "APPROVED", { timeout: T, polling: 50 });
    check((await text(approver, "#promo-banner")).includes("Approved."), "the approver approved it");
    await open(editor, "APPROVED");
    check((await editor.$("#promo-activate")) !== null, "approved: the editor may activate it");
    check(errors.length === 0, "no script errors: " + errors.join("; "));
  } catch (e) {
    // what the pages showed when it failed
    if (errors.length) console.error("script errors: " + errors.join("; "));
    if (shots) {
      const pages = await browser.pages();
      for (let i = 0; i < pages.length; i++)
        await pages[i].screenshot({ path: path.join(shots, "failure-" + i + ".png"), fullPage: true }).catch(() => {});
    }
    throw e;
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error("FAIL: " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
