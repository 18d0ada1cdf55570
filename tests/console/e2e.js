// e2e.js -- drives the console in headless Chromium (Debian's chromium,
// puppeteer-core pinned by package-lock.json): sign in, find a promotion,
// see another user's change explained (412, reload), create a promotion
// with a validation error and correct it, simulate a basket and
// read the discount and a "why not?" reason, open the budget chart, and
// check that a budget manager sees only the budget page. Saves a
// screenshot of each page into DRE_SHOTS. Run by
// tests/integration/test_console.py, which starts the stack and passes:
//   DRE_URL    the gateway's base URL
//   DRE_SHOTS  the screenshot directory
//   DRE_E2E    JSON: posGroupId, posGroupCode, article (of the new
//              promotion, in no other), budgetId,
//              budgetName, knownName, missedName, newName
"use strict";
const puppeteer = require("puppeteer-core");
const path = require("path");

const base = process.env.DRE_URL;
const shots = process.env.DRE_SHOTS;
const data = JSON.parse(process.env.DRE_E2E);
const chromium = process.env.DRE_CHROMIUM || "/usr/bin/chromium";
const T = 10000;

function check(cond, what) {
  if (!cond) throw new Error("check failed: " + what);
  console.log("ok - " + what);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, name + ".png"), fullPage: true });
  console.log("screenshot " + name + ".png");
}

async function text(page, sel) {
  return page.$eval(sel, (e) => e.textContent);
}

async function setValue(page, sel, v) {
  await page.$eval(sel, (e, v) => { e.value = v; e.dispatchEvent(new Event("change", { bubbles: true })); }, v);
}

async function typeInto(page, sel, v) {
  await page.click(sel, { clickCount: 3 });
  await page.keyboard.press("Backspace");
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

(async () => {
  const browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
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
    await page.waitForFunction(() => document.querySelector("#login-error").textContent.length > 0, { timeout: T });
    check((await text(page, "#login-error")).startsWith("Sign-in failed"), "a wrong password is refused");

    // 1. Sign in; the promotion list, searched by name.
    await signIn(page, "admin", "admin");
    check(JSON.stringify(await visibleNav(page)) === JSON.stringify(["Promotions", "Simulator", "Budgets"]),
      "an admin sees every page");
    await page.waitForSelector("#promo-rows tr", { timeout: T });
    await typeInto(page, "#f-q", data.knownName);
    await page.click("#promo-search button[type=submit]");
    await page.waitForFunction((n) => {
      const rows = document.querySelectorAll("#promo-rows tr");
      return rows.length === 1 && rows[0].textContent.includes(n);
    }, { timeout: T }, data.knownName);
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
    await page.waitForFunction(() => document.querySelector("#p-description").value === "changed elsewhere", { timeout: T });
    check((await page.$eval("#p-priority", (e) => e.value)) === "100", "Reload shows the stored version");
    await page.click("#promo-back");
    await page.waitForSelector("#promo-new", { timeout: T });

    // 3. A new promotion: 150% is refused on the field, 10% is saved.
    await page.click("#promo-new");
    await page.waitForSelector("#p-name", { visible: true, timeout: T });
    await page.type("#p-name", data.newName);
    await page.select("#p-status", "ACTIVE");
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
    check(msg.length > 0, "the server's error is shown on actions[0].value: " + msg);
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

    // 6. A budget manager sees the budget page only.
    await page.click("#logout");
    await signIn(page, "budget-manager", "budget");
    check(JSON.stringify(await visibleNav(page)) === JSON.stringify(["Budgets"]), "a budget manager sees only Budgets");
    await page.waitForSelector("#b-chart svg", { timeout: T });
    check(errors.length === 0, "no script errors: " + errors.join("; "));
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error("FAIL: " + (e && e.stack ? e.stack : e));
  process.exit(1);
});
