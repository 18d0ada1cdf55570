// chart.test.js -- the console's SVG chart module (services/gateway/console/
// chart.js), under `node --test` (ctest dre.console.chart).
"use strict";
const test = require("node:test");
const assert = require("node:assert");
const path = require("path");
const chart = require(path.join(__dirname, "..", "..", "services", "gateway", "console", "chart.js"));

test("one bar per row, scaled to the track", () => {
  const svg = chart.hbars([{ label: "A", value: 50 }, { label: "B", value: 0 }], { width: 400, labelWidth: 100, rowHeight: 20 });
  // track: 400 - 100 - 70 = 230 wide; 50% = 115
  assert.match(svg, /^<svg [^>]*viewBox="0 0 400 56"/);
  assert.strictEqual((svg.match(/<g class="row"/g) || []).length, 2);
  assert.match(svg, /<rect class="bar" x="100" y="12" width="115" height="12"\/>/);
  assert.match(svg, /<rect class="bar" x="100" y="32" width="0" height="12"\/>/);
  assert.match(svg, />50%<\/text>/);
});

test("bars clamp to 0..100 and mark high and full", () => {
  const svg = chart.hbars([{ label: "over", value: 130, text: "130%" }, { label: "high", value: 85 }, { label: "neg", value: -5 }],
    { width: 400, labelWidth: 100 });
  assert.match(svg, /<rect class="bar full" x="100" y="\d+" width="230"/);
  assert.match(svg, /<rect class="bar high" x="100" y="\d+" width="196"/);
  assert.match(svg, /<rect class="bar" x="100" y="\d+" width="0"/);
  assert.match(svg, />130%<\/text>/);
});

test("labels and the title are escaped", () => {
  const svg = chart.hbars([{ label: "<b>&\"x'", value: "abc" }], { title: "a<b" });
  assert.ok(!svg.includes("<b>"));
  assert.match(svg, /data-label="&lt;b&gt;&amp;&quot;x&#39;"/);
  assert.match(svg, /<title id="chart-title">a&lt;b<\/title>/);
  assert.match(svg, />0%<\/text>/, "a value that is not a number draws as 0");
});

test("no rows: an empty chart that says so", () => {
  const svg = chart.hbars([], {});
  assert.match(svg, /No data/);
  assert.match(svg, /role="img"/);
});

test("textWidth leaves room for longer figures", () => {
  const svg = chart.hbars([{ label: "A", value: 100, text: "100.0% of 40 EUR" }], { width: 400, labelWidth: 100, textWidth: 150 });
  assert.match(svg, /<rect class="bar full" x="100" y="12" width="150"/);
  assert.match(svg, /<text x="256" y="\d+(\.\d+)?">100.0% of 40 EUR<\/text>/);
});

test("niceMax: 1, 2 or 5 times a power of ten", () => {
  assert.deepStrictEqual([0, 0.3, 1, 7, 10, 11, 40, 250, 1001].map(chart.niceMax), [1, 0.5, 1, 10, 10, 20, 50, 500, 2000]);
});

test("columns: one bar per point on a 0..niceMax scale, with data-value", () => {
  const svg = chart.columns([{ label: "2026-12-05", value: 10, text: "10.00 EUR" }, { label: "2026-12-06", value: 5 }],
    { width: 300, height: 220, id: "days", title: "Discount per day" });
  // plot: 220 - 10 - 40 = 170 high, scale 0..10
  assert.match(svg, /aria-labelledby="days-title"><title id="days-title">Discount per day<\/title>/);
  assert.strictEqual((svg.match(/<g class="col"/g) || []).length, 2);
  assert.match(svg, /<g class="col" data-label="2026-12-05" data-value="10"><title>2026-12-05: 10.00 EUR<\/title><rect class="bar" x="\d+" y="10" width="\d+" height="170"\/>/);
  assert.match(svg, /data-value="5"><title>2026-12-06: 5<\/title><rect class="bar" x="\d+" y="95" width="\d+" height="85"\/>/);
  assert.match(chart.columns([], {}), /No data/);
  assert.match(chart.columns([{ label: "x", value: -3 }], {}), /data-value="0"/, "negative values draw as 0");
});

test("line: measured points solid, the projection dashed from the last measured one", () => {
  const svg = chart.line([{ label: "a", value: 40 }, { label: "b", value: 30 }, { label: "c", value: 0, projected: true }],
    { width: 400, height: 220 });
  // x: 64 .. 360, scale 0..50 over 170 px
  assert.match(svg, /<polyline class="actual" points="64,44 212,78"\/>/);
  assert.match(svg, /<polyline class="projected" points="212,78 360,180"\/>/);
  assert.strictEqual((svg.match(/<circle /g) || []).length, 3);
  assert.match(svg, /<circle class="projected" cx="360" cy="180" r="3" data-label="c" data-value="0">/);
  assert.ok(!/class="projected" points/.test(chart.line([{ label: "a", value: 1 }], {})), "no projection, no dashed line");
});

test("csv: RFC 4180 quoting, empty nulls, CRLF", () => {
  assert.strictEqual(chart.csv(["a", "b"], [{ a: "x,y", b: null }, { a: 1, b: 'q"' }, { a: "l\nm" }]),
    'a,b\r\n"x,y",\r\n1,"q"""\r\n"l\nm",\r\n');
  assert.strictEqual(chart.csv(["a"], []), "a\r\n");
});

test("plain bars never mark high or full (shares, funnels)", () => {
  const svg = chart.hbars([{ label: "issued", value: 100 }, { label: "redeemed", value: 90 }], { width: 400, labelWidth: 100, plain: true });
  assert.ok(!/bar (full|high)/.test(svg));
  assert.match(svg, /<rect class="bar" x="100" y="12" width="230"/);
});
