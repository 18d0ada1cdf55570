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
