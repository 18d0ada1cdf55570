// chart.js -- the console's charts: small hand-written SVG, no library (the
// build stays C-only; docs/console.md says why). Pure functions returning
// SVG markup: hbars (percentages: utilisation, funnels), columns (a value
// per day), line (a burn-down with its projection), csv (RFC 4180 text of
// what a table shows). tests/console/chart.test.js checks them under
// `node --test`.
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
  // figure). opts: {title, id, width, rowHeight, labelWidth, textWidth,
  // plain}. A bar at or past 80% gets class "high", at or past 100% "full"
  // (a budget running out), unless opts.plain (shares, funnels).
  function hbars(rows, opts) {
    opts = opts || {};
    var width = opts.width || 640, rh = opts.rowHeight || 28, lw = opts.labelWidth || 180;
    var tw = opts.textWidth || 70, bw = Math.max(40, width - lw - tw), top = 8;
    var height = top * 2 + Math.max(1, rows.length) * rh;
    var out = [open(width, height, opts)];
    if (rows.length === 0)
      out.push('<text x="0" y="' + (top + rh / 2) + '">No data</text>');
    rows.forEach(function (r, i) {
      var v = num(r.value), y = top + i * rh, w = Math.round(bw * Math.min(100, Math.max(0, v)) / 100);
      var cls = opts.plain ? "bar" : v >= 100 ? "bar full" : v >= 80 ? "bar high" : "bar";
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

  // open starts an <svg> with its <title> (id opts.id + "-title", so that
  // several charts can share a page).
  function open(width, height, opts) {
    var tid = esc((opts.id || "chart") + "-title");
    return '<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 ' + width + " " + height +
      '" width="' + width + '" height="' + height + '" aria-labelledby="' + tid + '"><title id="' + tid + '">' +
      esc(opts.title || "Chart") + "</title>";
  }

  // top of a scale: the smallest 1, 2 or 5 times a power of ten >= max.
  function niceMax(max) {
    if (!(max > 0)) return 1;
    var p = Math.pow(10, Math.floor(Math.log10(max)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= max) return steps[i] * p;
    return 10 * p;
  }

  // columns draws one vertical bar per point: points [{label, value,
  // text}], values >= 0 on a scale from 0 to niceMax(the largest). Each bar
  // is <g class="col" data-label data-value> with a <title> (text, or the
  // value) for a pointer and a screen reader. opts: {title, id, width,
  // height}.
  function columns(points, opts) {
    opts = opts || {};
    var width = opts.width || 640, height = opts.height || 220, left = 56, bottom = 40, top = 10;
    var ph = height - top - bottom, pw = width - left - 8;
    var max = niceMax(points.reduce(function (m, p) { return Math.max(m, num(p.value)); }, 0));
    var slot = pw / Math.max(1, points.length), bw = Math.max(2, Math.min(48, slot * 0.7));
    var out = [open(width, height, opts)];
    out.push('<text class="axis" x="' + (left - 6) + '" y="' + (top + 4) + '" text-anchor="end">' + esc(max) + "</text>");
    out.push('<text class="axis" x="' + (left - 6) + '" y="' + (top + ph) + '" text-anchor="end">0</text>');
    out.push('<line class="axis" x1="' + left + '" y1="' + (top + ph) + '" x2="' + (left + pw) + '" y2="' + (top + ph) + '"/>');
    if (points.length === 0)
      out.push('<text x="' + left + '" y="' + (top + ph / 2) + '">No data</text>');
    points.forEach(function (p, i) {
      var v = Math.max(0, num(p.value)), h = Math.round(ph * v / max), x = Math.round(left + i * slot + (slot - bw) / 2);
      out.push('<g class="col" data-label="' + esc(p.label) + '" data-value="' + esc(v) + '"><title>' +
        esc(p.label + ": " + (p.text !== undefined ? p.text : v)) + "</title>");
      out.push('<rect class="bar" x="' + x + '" y="' + (top + ph - h) + '" width="' + Math.round(bw) + '" height="' + h + '"/>');
      out.push('<text x="' + Math.round(x + bw / 2) + '" y="' + (top + ph + 16) + '" text-anchor="middle">' + esc(p.label) + "</text>");
      out.push("</g>");
    });
    out.push("</svg>");
    return out.join("");
  }

  // line draws a series of points [{label, value, projected}] left to
  // right on a scale from 0 to niceMax: the measured points as one
  // polyline (class "actual"), the projected ones continuing it dashed
  // (class "projected"); each point a <circle> with data-label and
  // data-value. opts: {title, id, width, height}.
  function line(points, opts) {
    opts = opts || {};
    var width = opts.width || 640, height = opts.height || 220, left = 64, bottom = 40, top = 10;
    var ph = height - top - bottom, pw = width - left - 40; // room for the last label
    var max = niceMax(points.reduce(function (m, p) { return Math.max(m, num(p.value)); }, 0));
    var step = points.length > 1 ? pw / (points.length - 1) : 0;
    var xy = points.map(function (p, i) {
      return [Math.round(left + i * step), Math.round(top + ph - ph * Math.max(0, num(p.value)) / max)];
    });
    var out = [open(width, height, opts)];
    out.push('<text class="axis" x="' + (left - 6) + '" y="' + (top + 4) + '" text-anchor="end">' + esc(max) + "</text>");
    out.push('<text class="axis" x="' + (left - 6) + '" y="' + (top + ph) + '" text-anchor="end">0</text>');
    out.push('<line class="axis" x1="' + left + '" y1="' + (top + ph) + '" x2="' + (left + pw) + '" y2="' + (top + ph) + '"/>');
    if (points.length === 0) {
      out.push('<text x="' + left + '" y="' + (top + ph / 2) + '">No data</text></svg>');
      return out.join("");
    }
    var actual = [], projected = [];
    points.forEach(function (p, i) {
      if (!p.projected) actual.push(xy[i].join(","));
      // the projection starts where the measured line ends
      if (p.projected || (i + 1 < points.length && points[i + 1].projected)) projected.push(xy[i].join(","));
    });
    if (actual.length) out.push('<polyline class="actual" points="' + actual.join(" ") + '"/>');
    if (projected.length > 1) out.push('<polyline class="projected" points="' + projected.join(" ") + '"/>');
    var every = Math.max(1, Math.ceil(points.length / 8));
    points.forEach(function (p, i) {
      out.push('<circle class="' + (p.projected ? "projected" : "actual") + '" cx="' + xy[i][0] + '" cy="' + xy[i][1] +
        '" r="3" data-label="' + esc(p.label) + '" data-value="' + esc(num(p.value)) + '"><title>' +
        esc(p.label + ": " + (p.text !== undefined ? p.text : num(p.value))) + "</title></circle>");
      if (i % every === 0 || i === points.length - 1)
        out.push('<text x="' + xy[i][0] + '" y="' + (top + ph + 16) + '" text-anchor="middle">' + esc(p.label) + "</text>");
    });
    out.push("</svg>");
    return out.join("");
  }

  // csv renders rows (objects) as RFC 4180 text: a header of cols, then
  // one line per row; null and undefined are empty; CRLF line ends.
  function csv(cols, rows) {
    function cell(v) {
      v = v === undefined || v === null ? "" : String(v);
      return /[",\r\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v;
    }
    return [cols.join(",")].concat(rows.map(function (r) {
      return cols.map(function (c) { return cell(r[c]); }).join(",");
    })).join("\r\n") + "\r\n";
  }

  var api = { hbars: hbars, columns: columns, line: line, csv: csv, niceMax: niceMax, esc: esc };
  if (typeof module !== "undefined" && module.exports)
    module.exports = api;
  else
    root.DreChart = api;
})(this);
