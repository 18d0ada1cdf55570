// chart.js -- the console's charts: small hand-written SVG, no library (the
// build stays C-only; docs/console.md says why). Pure functions returning
// SVG markup; tests/console/chart.test.js checks them under `node --test`.
(function (root) {
  "use strict";

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function num(x) {
    var v = Number(x);
    return isFinite(v) ? v : 0;
  }

  // hbars draws one horizontal bar per row: rows [{label, value, text}],
  // value a percentage (clamped to 0..100 for the bar, text shows the real
  // figure). opts: {title, width, rowHeight, labelWidth, textWidth}. A bar at or past
  // 80% gets class "high", at or past 100% "full".
  function hbars(rows, opts) {
    opts = opts || {};
    var width = opts.width || 640, rh = opts.rowHeight || 28, lw = opts.labelWidth || 180;
    var tw = opts.textWidth || 70, bw = Math.max(40, width - lw - tw), top = 8;
    var height = top * 2 + Math.max(1, rows.length) * rh;
    var title = opts.title || "Chart";
    var out = [];
    out.push('<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 ' + width + " " + height +
      '" width="' + width + '" height="' + height + '" aria-labelledby="chart-title">');
    out.push('<title id="chart-title">' + esc(title) + "</title>");
    if (rows.length === 0)
      out.push('<text x="0" y="' + (top + rh / 2) + '">No data</text>');
    rows.forEach(function (r, i) {
      var v = num(r.value), y = top + i * rh, w = Math.round(bw * Math.min(100, Math.max(0, v)) / 100);
      var cls = v >= 100 ? "bar full" : v >= 80 ? "bar high" : "bar";
      var text = r.text !== undefined ? r.text : v + "%";
      out.push('<g class="row" data-label="' + esc(r.label) + '">');
      out.push('<text x="0" y="' + (y + rh * 0.65) + '">' + esc(r.label) + "</text>");
      out.push('<rect class="track" x="' + lw + '" y="' + (y + 4) + '" width="' + bw + '" height="' + (rh - 8) + '"/>');
      out.push('<rect class="' + cls + '" x="' + lw + '" y="' + (y + 4) + '" width="' + w + '" height="' + (rh - 8) + '"/>');
      out.push('<text x="' + (lw + bw + 6) + '" y="' + (y + rh * 0.65) + '">' + esc(text) + "</text>");
      out.push("</g>");
    });
    out.push("</svg>");
    return out.join("");
  }

  var api = { hbars: hbars, esc: esc };
  if (typeof module !== "undefined" && module.exports)
    module.exports = api;
  else
    root.DreChart = api;
})(this);
