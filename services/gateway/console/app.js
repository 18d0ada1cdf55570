// app.js -- the DRE console: a small single-page application over the
// public API (the same calls an integration makes), with the signed-in
// user's own credentials. Pages: promotions (list + builder + approval),
// simulator, budgets, reports, coupons, loyalty, webhooks. No framework, no
// build step. A role sees the pages and buttons its routes allow (ROLES
// mirrors services/gateway/routes.c; the gateway still decides).
(function () {
  "use strict";

  // ------------------------------------------------------------ helpers
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };
  var esc = DreChart.esc;

  var READ = ["Admin", "PromotionManager", "PromotionApprover", "PublicApiReader", "PublicApiWriter"];
  var WRITE = ["Admin", "PromotionManager", "PublicApiWriter"];
  var ROLES = {
    promoRead: READ, promoWrite: WRITE,
    approve: ["Admin", "PromotionApprover"],
    simulate: ["Admin", "POSReader"],
    budgetRead: ["Admin", "BudgetManager", "PromotionManager", "PublicApiReader", "PublicApiWriter"],
    masterRead: READ,
    reports: ["Admin", "PromotionManager", "BudgetManager"],
    couponRead: READ, couponWrite: WRITE,
    loyalty: ["Admin", "POSReader", "PromotionManager", "PublicApiWriter"],
    webhooks: ["Admin"]
  };
  var PAGES = ["promotions", "simulator", "budgets", "reports", "coupons", "loyalty", "webhooks"];
  var session = null; // {auth, principal, tenant, roles}

  function can(what) {
    return session !== null && session.roles.some(function (r) { return ROLES[what].indexOf(r) >= 0; });
  }

  function api(method, path, body, headers) {
    var h = { "Accept": "application/json" };
    if (session) h.Authorization = session.auth;
    Object.keys(headers || {}).forEach(function (k) { h[k] = headers[k]; });
    // credentials "omit": the Authorization header is ours, and a 401
    // never opens the browser's own sign-in dialog.
    var init = { method: method, headers: h, credentials: "omit" };
    if (body !== undefined) {
      h["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      return r.text().then(function (t) {
        var b = null;
        try { b = t ? JSON.parse(t) : null; } catch (e) { b = t; }
        if (r.status === 401 && session) { signOut("Your session has expired: sign in again."); }
        return { status: r.status, body: b, etag: r.headers.get("ETag") };
      });
    });
  }

  function errorText(r) {
    var e = r.body && r.body.error;
    if (!e) return "HTTP " + r.status;
    return e.message + (e.target ? " (" + e.target + ")" : "");
  }

  // cents of a decimal number of the API (integer minor units: sums never
  // drift), and back.
  function cents(x) { return Math.round(Number(x || 0) * 100); }
  function fromCents(c) { return (c / 100).toFixed(2); }

  function downloadCsv(name, cols, rows) {
    var a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([DreChart.csv(cols, rows)], { type: "text/csv" }));
    a.download = name;
    document.body.appendChild(a); a.click(); a.remove();
  }

  // poll calls fn every ms until it answers true, the page changes, or
  // the deadline (ms from now) passes; then done(ok).
  function poll(fn, ms, deadline, done) {
    var until = Date.now() + deadline, page = location.hash;
    (function step() {
      Promise.resolve(fn()).then(function (fin) {
        if (fin) return done(true);
        if (location.hash !== page || Date.now() > until) return done(false);
        setTimeout(step, ms);
      });
    })();
  }

  function today(offsetDays) {
    return new Date(Date.now() + (offsetDays || 0) * 86400000).toISOString().slice(0, 10);
  }

  function money(m) {
    if (m === null || m === undefined) return "";
    if (typeof m === "object") return Number(m.value).toFixed(2) + " " + (m.currency || "");
    return Number(m).toFixed(2);
  }

  function qty(q) {
    if (q && typeof q === "object") return q.value + (q.unit && q.unit !== "PCE" ? " " + q.unit : "");
    return q;
  }

  function list(s) {
    return String(s || "").split(",").map(function (x) { return x.trim(); }).filter(Boolean);
  }

  function toLocal(iso) { return iso ? String(iso).slice(0, 16) : ""; }
  function fromLocal(v) { return v ? v + ":00Z" : null; }

  // ------------------------------------------------------------ session
  function signIn(user, pass) {
    var auth = "Basic " + btoa(unescape(encodeURIComponent(user + ":" + pass)));
    return fetch("/api/v1/Me", { headers: { Authorization: auth, Accept: "application/json" }, credentials: "omit" })
      .then(function (r) {
        return r.json().then(function (b) {
          if (r.status !== 200) throw new Error(b && b.error ? b.error.message : "HTTP " + r.status);
          session = { auth: auth, principal: b.principal, tenant: b.tenant, roles: b.roles, requireApproval: false };
        });
      })
      .then(function () {
        // the tenant's approval setting decides which promotion actions show
        if (!can("promoRead")) return;
        return api("GET", "/api/v1/TenantSettings").then(function (r) {
          if (r.status === 200) session.requireApproval = r.body.requireApproval === true;
        });
      })
      .then(function () { sessionStorage.setItem("dre.console", JSON.stringify(session)); });
  }

  function signOut(why) {
    session = null;
    sessionStorage.removeItem("dre.console");
    $("#login-error").textContent = why || "";
    location.hash = "";
    render();
  }

  // ------------------------------------------------------------ router
  function render() {
    var signedIn = session !== null;
    $("#login").hidden = signedIn;
    $("#page").hidden = !signedIn;
    $("#nav").hidden = !signedIn;
    $("#logout").hidden = !signedIn;
    $("#who").textContent = signedIn ? session.principal + " · " + session.roles.join(", ") + " · " + session.tenant : "";
    if (!signedIn) { $("#login-user").focus(); return; }
    $$("#nav button").forEach(function (b) { b.hidden = !can(b.getAttribute("data-needs")); });
    var parts = location.hash.replace(/^#\/?/, "").split("/");
    var page = parts[0] || PAGES.filter(function (p) { return can($('#nav button[data-page="' + p + '"]').getAttribute("data-needs")); })[0] || "";
    $$("#nav button").forEach(function (b) {
      if (b.getAttribute("data-page") === page) b.setAttribute("aria-current", "page");
      else b.removeAttribute("aria-current");
    });
    var el = $("#page");
    el.innerHTML = "";
    el.removeAttribute("data-loaded"); // set by a page once its data is shown
    if (page === "promotions" && parts[1]) return promotionEditor(el, parts[1]);
    if (page === "promotions" && can("promoRead")) return promotionList(el);
    if (page === "simulator" && can("simulate")) return simulator(el);
    if (page === "budgets" && can("budgetRead")) return budgets(el);
    if (page === "reports" && can("reports")) return reports(el);
    if (page === "coupons" && can("couponRead")) return coupons(el);
    if (page === "loyalty" && can("loyalty")) return loyalty(el);
    if (page === "webhooks" && can("webhooks")) return webhooks(el);
    el.innerHTML = '<div class="card"><h1>Not available</h1><p>Your role cannot open this page.</p></div>';
  }

  function go(hash) {
    if (location.hash === hash) render(); else location.hash = hash;
  }

  // ------------------------------------------------------------ promotions
  var STATUSES = ["DRAFT", "PENDING_APPROVAL", "APPROVED", "REJECTED", "ACTIVE", "INACTIVE", "EXPIRED", "ARCHIVED", "PILOT"];
  var PTYPES = ["ARTICLE", "RECEIPT", "LOYALTY", "BUNDLE", "COUPON"];
  var CTYPES = {
    ARTICLE: ["values", "minQuantity"], ARTICLE_LIST: ["articleListId", "minQuantity"],
    ARTICLE_GROUP: ["values", "minQuantity"], MANUFACTURER: ["values", "minQuantity"],
    RECEIPT_AMOUNT: ["min"], ITEM_QUANTITY: ["min"], CUSTOMER_REQUIRED: [],
    CUSTOMER_GROUP: ["values"], LOYALTY_TIER: ["values"], CHANNEL: ["values"],
    PAYMENT_MEANS: ["values", "cardTypes"], USER_DEFINED: ["key", "values"],
    ADDITIONAL_FIELD: ["key", "values"], MANUAL_DISCOUNT: ["reasonCodes"]
  };
  var DISCOUNT = ["discountType", "value"];
  var ATYPES = {
    ARTICLE: DISCOUNT.concat(["maxQuantity", "target.articles", "target.articleGroups"]),
    ARTICLE_GROUP: DISCOUNT.concat(["maxQuantity", "target.articles", "target.articleGroups"]),
    ARTICLE_LIST: DISCOUNT.concat(["maxQuantity", "target.articleListId"]),
    QUANTITY_TIER: ["tiers"], BUNDLE: ["discountType", "value", "bundlePrice", "maxApplications", "components"],
    RECEIPT: DISCOUNT, SCALED_RECEIPT: ["tiers"],
    FREE_ITEM: ["articleNumber", "quantity", "referencePrice"],
    ADD_FIXED: ["points"], CURRENCY_TO_POINTS: ["pointsPerUnit"], MULTIPLY_POINTS: ["factor"],
    SUBTRACT_POINTS: ["points"], ISSUE_COUPON: ["couponTypeId", "quantity"]
  };
  // How a field is edited: list (comma-separated), number, json, choice.
  var KIND = {
    values: "list", cardTypes: "list", reasonCodes: "list", "target.articles": "list",
    "target.articleGroups": "list", minQuantity: "number", min: "number", value: "number",
    maxQuantity: "number", bundlePrice: "number", maxApplications: "number", quantity: "number",
    referencePrice: "number", points: "number", pointsPerUnit: "number", factor: "number",
    tiers: "json", components: "json", discountType: "choice"
  };
  var LABEL = {
    values: "Values (comma-separated)", minQuantity: "Minimum quantity", min: "Minimum",
    articleListId: "Article list id", cardTypes: "Card types", key: "Key", reasonCodes: "Reason codes",
    discountType: "Discount type", value: "Value", maxQuantity: "Max quantity",
    "target.articles": "Target articles", "target.articleGroups": "Target article groups",
    "target.articleListId": "Target article list", tiers: "Tiers (JSON)", components: "Components (JSON)",
    bundlePrice: "Bundle price", maxApplications: "Max applications", articleNumber: "Free article",
    quantity: "Quantity", referencePrice: "Reference price", points: "Points",
    pointsPerUnit: "Points per currency unit", factor: "Factor", couponTypeId: "Coupon type id"
  };

  function badge(status) {
    return '<span class="badge ' + esc(status) + '">' + esc(status) + "</span>";
  }

  function promotionList(el) {
    var state = { q: "", status: "", order: "modifiedAt desc", skip: 0, top: 20 };
    el.innerHTML =
      '<div class="card"><h1>Promotions</h1>' +
      '<form class="toolbar" id="promo-search" role="search">' +
      '<div><label for="f-q">Search name</label><input id="f-q" type="search"></div>' +
      '<div><label for="f-status">Status</label><select id="f-status"><option value="">Any</option>' +
      STATUSES.map(function (s) { return "<option>" + s + "</option>"; }).join("") + "</select></div>" +
      '<div><label for="f-order">Sort by</label><select id="f-order">' +
      '<option value="modifiedAt desc">Last changed</option><option value="name asc">Name</option>' +
      '<option value="priority desc">Priority</option><option value="validFrom desc">Start date</option></select></div>' +
      '<button type="submit">Search</button>' +
      (can("promoWrite") ? '<button type="button" class="primary" id="promo-new">New promotion</button>' : "") +
      "</form>" +
      '<p id="promo-msg" class="error" role="alert"></p>' +
      '<table><caption class="sr-only">Promotions</caption><thead><tr><th>Name</th><th>Type</th><th>Status</th>' +
      "<th>Valid</th><th class=num>Priority</th><th>Changed</th></tr></thead><tbody id=\"promo-rows\"></tbody></table>" +
      '<div class="toolbar"><button type="button" id="promo-prev">Previous</button>' +
      '<span id="promo-count" class="muted" aria-live="polite"></span>' +
      '<button type="button" id="promo-next">Next</button></div></div>';
    function load() {
      var qs = ["$top=" + state.top, "$skip=" + state.skip, "$count=true", "$orderby=" + encodeURIComponent(state.order)];
      if (state.q) qs.push("$filter=" + encodeURIComponent("contains(name,'" + state.q.replace(/'/g, "''") + "')"));
      if (state.status) qs.push("status=" + state.status);
      api("GET", "/api/v1/Promotions?" + qs.join("&")).then(function (r) {
        if (r.status !== 200) { $("#promo-msg").textContent = errorText(r); return; }
        $("#promo-msg").textContent = "";
        var rows = r.body.value || [];
        $("#promo-rows").innerHTML = rows.length ? rows.map(function (p) {
          return "<tr><td><a href=\"#/promotions/" + esc(p.id) + "\">" + esc(p.name) + "</a></td><td>" + esc(p.type || "") +
            "</td><td>" + badge(p.status) + "</td><td>" + esc(toLocal(p.validFrom).replace("T", " ")) + " – " +
            esc(toLocal(p.validTo).replace("T", " ")) + "</td><td class=num>" + esc(p.priority === undefined ? "" : p.priority) +
            "</td><td>" + esc(toLocal(p.modifiedAt).replace("T", " ")) + "</td></tr>";
        }).join("") : '<tr><td colspan="6" class="muted">No promotions match.</td></tr>';
        var n = r.body.count || 0;
        $("#promo-count").textContent = n ? (state.skip + 1) + "–" + (state.skip + rows.length) + " of " + n : "0 promotions";
        $("#promo-prev").disabled = state.skip === 0;
        $("#promo-next").disabled = state.skip + rows.length >= n;
      });
    }
    $("#promo-search").addEventListener("submit", function (ev) {
      ev.preventDefault();
      state.q = $("#f-q").value.trim(); state.status = $("#f-status").value; state.order = $("#f-order").value; state.skip = 0;
      load();
    });
    $("#f-status").addEventListener("change", function () { $("#promo-search").requestSubmit(); });
    $("#f-order").addEventListener("change", function () { $("#promo-search").requestSubmit(); });
    $("#promo-prev").addEventListener("click", function () { state.skip = Math.max(0, state.skip - state.top); load(); });
    $("#promo-next").addEventListener("click", function () { state.skip += state.top; load(); });
    if ($("#promo-new")) $("#promo-new").addEventListener("click", function () { go("#/promotions/new"); });
    load();
  }

  function input(id, label, value, attrs) {
    return '<div><label for="' + id + '">' + esc(label) + '</label><input id="' + id + '" ' + (attrs || "") +
      ' value="' + esc(value === undefined || value === null ? "" : value) + '"></div>';
  }

  function select(id, label, options, value, attrs) {
    return '<div><label for="' + id + '">' + esc(label) + '</label><select id="' + id + '" ' + (attrs || "") + ">" +
      options.map(function (o) { return "<option" + (o === value ? " selected" : "") + ">" + esc(o) + "</option>"; }).join("") +
      "</select></div>";
  }

  function getPath(obj, path) {
    return path.split(".").reduce(function (o, k) { return o === null || o === undefined ? undefined : o[k]; }, obj);
  }

  function setPath(obj, path, v) {
    var ks = path.split("."), o = obj;
    for (var i = 0; i < ks.length - 1; i++) { if (!o[ks[i]] || typeof o[ks[i]] !== "object") o[ks[i]] = {}; o = o[ks[i]]; }
    o[ks[ks.length - 1]] = v;
  }

  function fieldHtml(kind, i, f, obj) {
    var id = kind + "-" + i + "-" + f.replace(/\./g, "-"), tgt = kind + "[" + i + "]." + f, v = getPath(obj, f);
    var k = KIND[f];
    if (k === "choice")
      return select(id, LABEL[f], ["PERCENTAGE", "ABSOLUTE", "UNIT_PRICE"], v || "PERCENTAGE", 'data-target="' + tgt + '" data-f="' + f + '"');
    if (k === "list") v = (v || []).join(", ");
    if (k === "json") v = v ? JSON.stringify(v) : "";
    return input(id, LABEL[f] || f, v, 'data-target="' + tgt + '" data-f="' + f + '"' + (k === "number" ? ' inputmode="decimal"' : ""));
  }

  function rowHtml(kind, i, obj) {
    var types = kind === "conditions" ? CTYPES : ATYPES;
    var t = obj.type || Object.keys(types)[0];
    var noun = kind === "conditions" ? "Condition" : "Action";
    return '<fieldset class="item" data-kind="' + kind + '" data-i="' + i + '" data-target="' + kind + "[" + i + ']">' +
      "<legend>" + noun + " " + (i + 1) + '</legend><div class="row">' +
      select(kind + "-" + i + "-type", "Type", Object.keys(types), t, 'data-target="' + kind + "[" + i + '].type" data-f="type" class="type"') +
      types[t].map(function (f) { return fieldHtml(kind, i, f, obj); }).join("") +
      '<div><button type="button" class="remove">Remove ' + noun.toLowerCase() + " " + (i + 1) + "</button></div></div></fieldset>";
  }

  // readRow builds a condition or action from its fieldset, over the
  // fields the form does not show (kept from the loaded document).
  function readRow(fs, orig, errors) {
    var kind = fs.getAttribute("data-kind"), types = kind === "conditions" ? CTYPES : ATYPES;
    var t = $(".type", fs).value;
    var o = orig && orig.type === t ? JSON.parse(JSON.stringify(orig)) : {};
    o.type = t;
    types[t].forEach(function (f) {
      var inp = $('[data-f="' + f + '"]', fs), raw = inp.value.trim(), k = KIND[f], v;
      if (raw === "") {
        if (f.indexOf("target.") === 0 && o.target) delete o.target[f.slice(7)];
        else delete o[f];
        return;
      }
      if (k === "list") v = list(raw);
      else if (k === "number") { v = Number(raw); if (!isFinite(v)) { errors.push([inp, "Enter a number"]); return; } }
      else if (k === "json") { try { v = JSON.parse(raw); } catch (e) { errors.push([inp, "Enter valid JSON"]); return; } }
      else v = raw;
      setPath(o, f, v);
    });
    if (o.target && Object.keys(o.target).length === 0) delete o.target;
    return o;
  }

  function promotionEditor(el, id) {
    var isNew = id === "new", writable = can("promoWrite");
    var doc = { name: "", type: "ARTICLE", status: "DRAFT", currency: "EUR", conditions: [], actions: [{ type: "ARTICLE", discountType: "PERCENTAGE" }] };
    var etag = null;
    function draw() {
      // Approval (tenant setting requireApproval): writers submit, approvers
      // decide; without it, writers activate and deactivate.
      var ra = session.requireApproval, st = doc.status;
      var canSubmit = writable && !isNew && ra && ["DRAFT", "REJECTED", "INACTIVE"].indexOf(st) >= 0;
      var canDecide = can("approve") && !isNew && st === "PENDING_APPROVAL";
      var canActivate = writable && !isNew && st !== "ACTIVE" && (!ra || st === "APPROVED");
      var canDeactivate = writable && !isNew && st === "ACTIVE";
      el.innerHTML =
        '<div class="card"><h1>' + (isNew ? "New promotion" : "Promotion " + esc(doc.name)) + " " + (isNew ? "" : badge(doc.status)) + "</h1>" +
        '<div id="promo-banner" role="alert"></div>' +
        '<form id="promo-form" novalidate><fieldset' + (writable ? "" : " disabled") + "><legend>General</legend><div class=\"grid\">" +
        input("p-name", "Name", doc.name, 'data-target="name" required maxlength="255"') +
        input("p-description", "Description", doc.description, 'data-target="description"') +
        select("p-type", "Promotion type", PTYPES, doc.type, 'data-target="type"') +
        select("p-status", "Status", STATUSES, doc.status, 'data-target="status"') +
        input("p-validFrom", "Valid from (UTC)", toLocal(doc.validFrom), 'type="datetime-local" data-target="validFrom"') +
        input("p-validTo", "Valid to (UTC)", toLocal(doc.validTo), 'type="datetime-local" data-target="validTo"') +
        input("p-posGroups", "POS groups (ids or codes, comma-separated)", (doc.posGroups || []).join(", "), 'data-target="posGroups"') +
        input("p-currency", "Currency", doc.currency, 'data-target="currency" maxlength="3"') +
        input("p-priority", "Priority", doc.priority, 'data-target="priority" inputmode="numeric"') +
        select("p-exclusivity", "Exclusivity", ["NONE", "LINE", "RECEIPT"], doc.exclusivity || "NONE", 'data-target="exclusivity"') +
        input("p-budgetIds", "Budgets (ids, comma-separated)", (doc.budgetIds || []).join(", "), 'data-target="budgetIds"') +
        input("p-couponTypeIds", "Coupon types (ids)", (doc.couponTypeIds || []).join(", "), 'data-target="couponTypeIds"') +
        "</div></fieldset>" +
        '<fieldset' + (writable ? "" : " disabled") + '><legend>Conditions</legend><div id="conds">' +
        (doc.conditions || []).map(function (c, i) { return rowHtml("conditions", i, c); }).join("") +
        '</div><button type="button" id="add-cond">Add condition</button></fieldset>' +
        '<fieldset' + (writable ? "" : " disabled") + '><legend>Actions</legend><div id="acts">' +
        (doc.actions || []).map(function (a, i) { return rowHtml("actions", i, a); }).join("") +
        '</div><button type="button" id="add-act">Add action</button></fieldset>' +
        (canDecide ? '<fieldset id="approval"><legend>Approval</legend><p class="muted">Submitted for approval: approve it, or reject it with a reason for its editor.</p>' +
          '<div class="row"><button type="button" class="primary" id="promo-approve">Approve</button>' +
          '<div><label for="p-reason">Reason for rejecting</label><input id="p-reason" maxlength="1000" data-target="reason"></div>' +
          '<button type="button" id="promo-reject">Reject</button></div></fieldset>' : "") +
        '<div class="toolbar">' + (writable ? '<button type="submit" class="primary" id="promo-save">Save</button>' : "") +
        (canSubmit ? '<button type="button" id="promo-submit">Submit for approval</button>' : "") +
        (canActivate ? '<button type="button" id="promo-activate">Activate</button>' : "") +
        (canDeactivate ? '<button type="button" id="promo-deactivate">Deactivate</button>' : "") +
        '<button type="button" id="promo-back">Back to the list</button></div></form></div>';
      wire();
    }
    function collect(errors) {
      var d = JSON.parse(JSON.stringify(doc));
      ["minorVersion", "createdAt", "modifiedAt"].forEach(function (k) { delete d[k]; });
      d.name = $("#p-name").value.trim();
      var desc = $("#p-description").value.trim();
      if (desc) d.description = desc; else if (!isNew) d.description = null; else delete d.description;
      d.type = $("#p-type").value; d.status = $("#p-status").value;
      d.validFrom = fromLocal($("#p-validFrom").value); d.validTo = fromLocal($("#p-validTo").value);
      if (isNew && d.validFrom === null) delete d.validFrom;
      if (isNew && d.validTo === null) delete d.validTo;
      d.posGroups = list($("#p-posGroups").value);
      d.currency = $("#p-currency").value.trim() || "EUR";
      var pr = $("#p-priority").value.trim();
      if (pr === "") delete d.priority;
      else if (!/^-?\d+$/.test(pr)) errors.push([$("#p-priority"), "Enter a whole number"]);
      else d.priority = Number(pr);
      d.exclusivity = $("#p-exclusivity").value;
      d.budgetIds = list($("#p-budgetIds").value);
      d.couponTypeIds = list($("#p-couponTypeIds").value);
      d.conditions = $$("#conds fieldset.item").map(function (fs, i) { return readRow(fs, (doc.conditions || [])[i], errors); });
      d.actions = $$("#acts fieldset.item").map(function (fs, i) { return readRow(fs, (doc.actions || [])[i], errors); });
      if (!d.name) errors.push([$("#p-name"), "A name is required"]);
      return d;
    }
    function clearErrors() {
      $$("[aria-invalid]", el).forEach(function (x) { x.removeAttribute("aria-invalid"); x.removeAttribute("aria-describedby"); });
      $$(".field-error", el).forEach(function (x) { x.remove(); });
      $("#promo-banner").innerHTML = "";
    }
    function markField(inp, msg) {
      var n = $$(".field-error", el).length, eid = "err-" + n;
      var span = document.createElement("span");
      span.className = "field-error"; span.id = eid; span.textContent = msg;
      if (inp.tagName === "FIELDSET") { inp.insertBefore(span, inp.children[1] || null); inp = $("select", inp) || inp; }
      else inp.parentNode.appendChild(span);
      inp.setAttribute("aria-invalid", "true");
      inp.setAttribute("aria-describedby", eid);
      return inp;
    }
    // showServerErrors puts each error of the §1 body on the field its
    // target names; what names no field goes to the banner.
    function showServerErrors(r, what) {
      var e = r.body && r.body.error, first = null, rest = [];
      if (!e) { banner("bad", "The server answered HTTP " + r.status + "."); return; }
      var items = (e.details && e.details.length ? e.details : [e]);
      items.forEach(function (d) {
        var t = d.target || "", inp = null;
        while (t && !(inp = $('[data-target="' + t.replace(/"/g, "") + '"]', el))) {
          var cut = Math.max(t.lastIndexOf("."), t.lastIndexOf("["));
          t = cut > 0 ? t.slice(0, cut) : "";
        }
        if (inp) { var f = markField(inp, d.message); first = first || f; } else rest.push(d.message + (d.target ? " (" + d.target + ")" : ""));
      });
      banner("bad", esc(what || "The promotion was not saved") + ": " + esc(e.message) + (rest.length ? "<ul>" + rest.map(function (m) { return "<li>" + esc(m) + "</li>"; }).join("") + "</ul>" : ""));
      if (first) first.focus();
    }
    function banner(kind, html) {
      $("#promo-banner").innerHTML = '<div class="banner ' + kind + '">' + html + "</div>";
    }
    function conflict() {
      banner("bad", "<strong>This promotion was changed by someone else</strong> since you opened it. " +
        'Reload to see their version, then make your change again. <button type="button" id="promo-reload">Reload</button>');
      $("#promo-reload").addEventListener("click", load);
      $("#promo-reload").focus();
    }
    // act runs a state action (activate, deactivate, submit, approve,
    // reject) with the document's ETag; then the editor shows the answer.
    function act(name, body, done) {
      clearErrors();
      api("POST", "/api/v1/Promotions/" + encodeURIComponent(id) + "/" + name, body, etag ? { "If-Match": etag } : {}).then(function (r) {
        if (r.status === 200) {
          doc = r.body; etag = r.etag || etag; draw();
          banner("ok", esc(done) + " Status: " + badge(doc.status));
          $("#promo-banner .banner").setAttribute("tabindex", "-1");
          $("#promo-banner .banner").focus();
        } else if (r.status === 412) conflict();
        else if (r.status === 400 && name === "reject") showServerErrors(r, "The promotion was not rejected");
        else banner("bad", esc(errorText(r)));
      });
    }
    function wire() {
      $("#promo-back").addEventListener("click", function () { go("#/promotions"); });
      if ($("#promo-approve")) {
        $("#promo-approve").addEventListener("click", function () { act("approve", undefined, "Approved."); });
        $("#promo-reject").addEventListener("click", function () {
          var reason = $("#p-reason").value.trim();
          if (!reason) {
            clearErrors();
            markField($("#p-reason"), "Give the editor a reason for rejecting").focus();
            return;
          }
          act("reject", { reason: reason }, "Rejected.");
        });
      }
      if (!writable) return;
      if ($("#promo-submit")) $("#promo-submit").addEventListener("click", function () { act("submit", undefined, "Submitted for approval."); });
      function reread() {
        var errs = [];
        var d = collect(errs);
        doc.conditions = d.conditions; doc.actions = d.actions;
        ["name", "description", "type", "status", "validFrom", "validTo", "posGroups", "currency", "priority", "exclusivity", "budgetIds", "couponTypeIds"].forEach(function (k) {
          if (k in d) doc[k] = d[k];
        });
      }
      $("#add-cond").addEventListener("click", function () { reread(); doc.conditions.push({ type: "ARTICLE" }); draw(); $("#conditions-" + (doc.conditions.length - 1) + "-type").focus(); });
      $("#add-act").addEventListener("click", function () { reread(); doc.actions.push({ type: "ARTICLE", discountType: "PERCENTAGE" }); draw(); $("#actions-" + (doc.actions.length - 1) + "-type").focus(); });
      $$("fieldset.item", el).forEach(function (fs) {
        var kind = fs.getAttribute("data-kind"), i = Number(fs.getAttribute("data-i"));
        $(".remove", fs).addEventListener("click", function () { reread(); doc[kind].splice(i, 1); draw(); });
        $(".type", fs).addEventListener("change", function () { reread(); draw(); $("#" + kind + "-" + i + "-type").focus(); });
      });
      $("#promo-form").addEventListener("submit", function (ev) {
        ev.preventDefault();
        clearErrors();
        var errs = [], d = collect(errs);
        if (errs.length) {
          errs.forEach(function (x) { markField(x[0], x[1]); });
          banner("bad", "Correct the marked fields.");
          errs[0][0].focus();
          return;
        }
        var req = isNew ? api("POST", "/api/v1/Promotions", d) : api("PUT", "/api/v1/Promotions/" + encodeURIComponent(id), d, etag ? { "If-Match": etag } : {});
        $("#promo-save").disabled = true;
        req.then(function (r) {
          $("#promo-save").disabled = false;
          if (r.status === 200 || r.status === 201) {
            doc = r.body; etag = r.etag;
            if (isNew) { isNew = false; id = doc.id; history.replaceState(null, "", "#/promotions/" + doc.id); }
            draw();
            banner("ok", "Saved “" + esc(doc.name) + "”.");
            $("#promo-banner .banner").setAttribute("tabindex", "-1");
            $("#promo-banner .banner").focus();
          } else if (r.status === 412) conflict();
          else showServerErrors(r);
        });
      });
      ["activate", "deactivate"].forEach(function (name) {
        var b = $("#promo-" + name);
        if (b) b.addEventListener("click", function () { act(name, undefined, name === "activate" ? "Activated." : "Deactivated."); });
      });
    }
    function load() {
      api("GET", "/api/v1/Promotions/" + encodeURIComponent(id)).then(function (r) {
        if (r.status !== 200) { el.innerHTML = '<div class="card"><h1>Promotion</h1><p class="error" role="alert">' + esc(errorText(r)) + "</p></div>"; return; }
        doc = r.body; etag = r.etag; draw();
      });
    }
    if (isNew) { draw(); $("#p-name").focus(); } else load();
  }

  // ------------------------------------------------------------ simulator
  function simulator(el) {
    var saved = JSON.parse(localStorage.getItem("dre.console.baskets") || "{}");
    el.innerHTML =
      '<div class="card"><h1>Simulator</h1><p class="muted">Prices a basket like a till would, without recording anything, ' +
      "and tells why each other promotion did not apply.</p>" +
      '<form id="sim-form"><div class="grid">' +
      input("s-pos", "POS group code", "", 'list="s-pos-list" required') + '<datalist id="s-pos-list"></datalist>' +
      input("s-customer", "Customer id", "") + input("s-tier", "Loyalty tier", "") +
      input("s-coupons", "Coupons (comma-separated)", "") + input("s-channel", "Channel", "") +
      input("s-time", "Time (UTC, empty: now)", "", 'type="datetime-local"') +
      '<div class="check"><input type="checkbox" id="s-inactive"><label for="s-inactive">Include inactive promotions</label></div>' +
      '</div><h2>Lines</h2><table><thead><tr><th>Article</th><th>Quantity</th><th>Unit price</th><th><span class="sr-only">Remove</span></th></tr></thead>' +
      '<tbody id="s-lines"></tbody></table><div class="toolbar"><button type="button" id="s-add">Add line</button>' +
      '<button type="submit" class="primary" id="s-run">Simulate</button>' +
      '<div><label for="s-name">Save as test case</label><input id="s-name"></div><button type="button" id="s-save">Save</button>' +
      '<div><label for="s-load">Saved test cases</label><select id="s-load"><option value="">—</option>' +
      Object.keys(saved).map(function (k) { return "<option>" + esc(k) + "</option>"; }).join("") + "</select></div></div></form>" +
      '<div id="s-out" aria-live="polite"></div></div>';
    var n = 0;
    function addLine(a, q, p) {
      n++;
      var tr = document.createElement("tr");
      tr.innerHTML = "<td>" + input("s-art-" + n, "Article " + n, a || "", 'class="art"').replace("<label", '<label class="sr-only"') + "</td><td>" +
        input("s-qty-" + n, "Quantity " + n, q || "1", 'class="qty" inputmode="decimal"').replace("<label", '<label class="sr-only"') + "</td><td>" +
        input("s-price-" + n, "Unit price " + n, p || "", 'class="price" inputmode="decimal"').replace("<label", '<label class="sr-only"') + "</td>" +
        '<td><button type="button" class="remove">Remove line ' + n + "</button></td>";
      $(".remove", tr).addEventListener("click", function () { tr.remove(); });
      $("#s-lines").appendChild(tr);
      return tr;
    }
    function basket() {
      var req = { posGroupCode: $("#s-pos").value.trim(), items: [], includeMissedPromotions: true };
      $$("#s-lines tr").forEach(function (tr, i) {
        var a = $(".art", tr).value.trim();
        if (!a) return;
        req.items.push({ lineReference: "L" + (i + 1), articleNumber: a, quantity: Number($(".qty", tr).value), unitPrice: Number($(".price", tr).value) });
      });
      var c = $("#s-customer").value.trim(), t = $("#s-tier").value.trim();
      if (c || t) { req.customer = {}; if (c) req.customer.customerId = c; if (t) req.customer.loyalty = { tier: t }; }
      var cs = list($("#s-coupons").value);
      if (cs.length) req.coupons = cs.map(function (x) { return { code: x }; });
      if ($("#s-channel").value.trim()) req.channel = $("#s-channel").value.trim();
      if ($("#s-time").value) req.timestamp = fromLocal($("#s-time").value);
      if ($("#s-inactive").checked) req.includeInactive = true;
      return req;
    }
    function fill(req) {
      $("#s-pos").value = req.posGroupCode || "";
      $("#s-customer").value = (req.customer && req.customer.customerId) || "";
      $("#s-tier").value = (req.customer && req.customer.loyalty && req.customer.loyalty.tier) || "";
      $("#s-coupons").value = (req.coupons || []).map(function (x) { return x.code; }).join(", ");
      $("#s-channel").value = req.channel || "";
      $("#s-lines").innerHTML = "";
      req.items.forEach(function (it) { addLine(it.articleNumber, String(it.quantity), String(it.unitPrice)); });
    }
    $("#s-add").addEventListener("click", function () { $(".art", addLine()).focus(); });
    $("#s-save").addEventListener("click", function () {
      var name = $("#s-name").value.trim();
      if (!name) { $("#s-name").focus(); return; }
      saved[name] = basket();
      localStorage.setItem("dre.console.baskets", JSON.stringify(saved));
      if (!$$("#s-load option").some(function (o) { return o.value === name; })) {
        var o = document.createElement("option"); o.textContent = name; $("#s-load").appendChild(o);
      }
    });
    $("#s-load").addEventListener("change", function () { if (saved[this.value]) fill(saved[this.value]); });
    $("#sim-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var req = basket();
      $("#s-out").innerHTML = '<p class="muted">Simulating…</p>';
      api("POST", "/pos/v2/simulate", { request: req }).then(function (r) {
        if (r.status !== 200) { $("#s-out").innerHTML = '<p class="error" role="alert">' + esc(errorText(r)) + "</p>"; return; }
        showResult(r.body);
      });
    });
    function showResult(b) {
      var t = b.totals, s = t.savingsSummary || {};
      var h = '<h2>Lines</h2><table id="s-result"><thead><tr><th>Line</th><th>Article</th><th class=num>Qty</th><th class=num>Total</th>' +
        "<th>Discounts</th><th class=num>Discount</th><th class=num>Net</th></tr></thead><tbody>" +
        b.lineItems.map(function (l) {
          return "<tr><td>" + esc(l.lineReference) + "</td><td>" + esc(l.articleNumber) + "</td><td class=num>" + esc(qty(l.quantity)) +
            "</td><td class=num>" + money(l.lineTotal) + "</td><td>" +
            (l.discounts.length ? l.discounts.map(function (d) { return esc(d.promotionName) + " (" + esc(d.discountType) + " " + esc(d.discountValue) + ")"; }).join("<br>") : '<span class="muted">none</span>') +
            "</td><td class=num>" + money(l.lineDiscount) + "</td><td class=num>" + money(l.lineNet) + "</td></tr>";
        }).join("") + "</tbody></table>";
      h += '<h2>Totals</h2><dl class="grid" id="s-totals"><div><dt>Subtotal</dt><dd>' + money(t.subtotal) + "</dd></div><div><dt>Discount</dt><dd id=\"s-discount\">" +
        money(t.discount) + "</dd></div><div><dt>Grand total</dt><dd>" + money(t.grandTotal) + "</dd></div><div><dt>Points earned</dt><dd>" +
        esc(s.loyaltyPointsEarned === undefined ? 0 : s.loyaltyPointsEarned) + "</dd></div></dl>";
      if (b.grantedItems.length)
        h += "<h2>Free items</h2><ul>" + b.grantedItems.map(function (g) { return "<li>" + esc(g.quantity) + " × " + esc(g.articleNumber) + " (" + esc(g.promotionName) + ")</li>"; }).join("") + "</ul>";
      var hints = (b.nudges || []).map(function (x) { return x.message; }).concat((b.invalidCoupons || []).map(function (x) { return "Coupon " + x.code + ": " + x.reason; }))
        .concat((b.budgetLimitedPromotions || []).map(function (x) { return x.promotionName + ": " + x.reason; }));
      if (hints.length) h += "<h2>Hints</h2><ul>" + hints.map(function (x) { return "<li>" + esc(x) + "</li>"; }).join("") + "</ul>";
      var missed = b.missedPromotions || [];
      h += '<h2>Why not?</h2><table id="s-missed"><thead><tr><th>Promotion</th><th>Stage</th><th>Reason</th></tr></thead><tbody>' +
        (missed.length ? missed.map(function (m) {
          return "<tr><td>" + esc(m.promotionName) + "</td><td><span class=\"badge\">" + esc(m.stage) + "</span></td><td>" + esc(m.reason) + "</td></tr>";
        }).join("") : '<tr><td colspan="3" class="muted">Every candidate promotion applied.</td></tr>') + "</tbody></table>";
      $("#s-out").innerHTML = h;
    }
    addLine();
    if (can("masterRead"))
      api("GET", "/api/v1/PosGroups?$top=100&$select=code,name").then(function (r) {
        if (r.status === 200) $("#s-pos-list").innerHTML = r.body.value.map(function (g) { return '<option value="' + esc(g.code) + '">' + esc(g.name) + "</option>"; }).join("");
      });
  }

  // ------------------------------------------------------------ budgets
  function budgets(el) {
    el.innerHTML = '<div class="card"><h1>Budgets</h1><div class="toolbar"><button type="button" id="b-csv">Download CSV</button></div>' +
      '<p id="b-msg" class="error" role="alert"></p><h2 id="b-chart-h">Utilisation</h2><div class="chart" id="b-chart" aria-describedby="b-chart-h"></div>' +
      '<h2>All budgets</h2><table id="b-table"><thead><tr><th>Name</th><th>Status</th><th class=num>Total</th><th class=num>Consumed</th>' +
      "<th class=num>Remaining</th><th class=num>Used</th><th class=num>Transactions</th></tr></thead><tbody></tbody></table></div>";
    var rows = [];
    api("GET", "/api/v1/Budgets?$top=100&$orderby=" + encodeURIComponent("name asc")).then(function (r) {
      if (r.status !== 200) { $("#b-msg").textContent = errorText(r); return; }
      rows = r.body.value || [];
      $("#b-chart").innerHTML = DreChart.hbars(rows.map(function (b) {
        return { label: b.name, value: b.utilizationPct, text: Number(b.utilizationPct).toFixed(1) + "% of " + b.totalAmount + " " + b.currency };
      }), { title: "Budget utilisation (% of the total consumed)", width: 900, labelWidth: 220, textWidth: 200 });
      $("#b-table tbody").innerHTML = rows.map(function (b) {
        return "<tr><td>" + esc(b.name) + "</td><td>" + badge(b.status) + "</td><td class=num>" + money(b.totalAmount) + "</td><td class=num>" +
          money(b.consumedAmount) + "</td><td class=num>" + money(b.remainingAmount) + "</td><td class=num>" + Number(b.utilizationPct).toFixed(1) +
          "%</td><td class=num>" + esc(b.transactionsCount) + "</td></tr>";
      }).join("");
    });
    $("#b-csv").addEventListener("click", function () {
      downloadCsv("budgets.csv", ["id", "name", "status", "currency", "totalAmount", "consumedAmount", "remainingAmount", "utilizationPct", "transactionsCount"], rows);
    });
  }

  // ------------------------------------------------------------ reports
  // Promotion performance over time and per store (reporting's
  // PromotionPerformance grouped by day and POS group), the coupon
  // redemption funnel (codes of each coupon type: issued, redeemed), and
  // budget utilisation with a burn-down (BudgetUtilization; the measured
  // part from the daily discount of the budget's promotions, the projected
  // part from dailyBurnRate). Each table downloads as CSV, client-side from
  // the rows shown.
  function reports(el) {
    el.innerHTML =
      '<div class="card"><h1>Reports</h1><p class="muted">Confirmed sales only (evaluate and simulate never count); days in UTC.</p>' +
      '<form class="toolbar" id="r-form"><div><label for="r-from">From</label><input id="r-from" type="date" value="' + today(-29) + '"></div>' +
      '<div><label for="r-to">To</label><input id="r-to" type="date" value="' + today() + '"></div>' +
      '<div><label for="r-store">Store (POS group)</label><select id="r-store"><option value="">All stores</option></select></div>' +
      '<button type="submit" class="primary" id="r-run">Show</button></form>' +
      '<p id="r-msg" class="error" role="alert"></p>' +
      '<h2 id="r-days-h">Promotion performance over time</h2><div class="toolbar"><button type="button" id="r-csv">Download CSV</button></div>' +
      '<div class="chart" id="r-days"></div>' +
      '<table id="r-days-table"><caption class="sr-only">Per day</caption><thead><tr><th>Day</th><th class=num>Applications</th><th class=num>Discount given</th></tr></thead><tbody></tbody></table>' +
      '<h2>Per store</h2><div class="chart" id="r-stores"></div>' +
      '<table id="r-stores-table"><caption class="sr-only">Per store</caption><thead><tr><th>Store</th><th class=num>Applications</th><th class=num>Discount given</th></tr></thead><tbody></tbody></table>' +
      '<h2>Per promotion</h2><table id="r-promos-table"><caption class="sr-only">Per promotion</caption><thead><tr><th>Promotion</th><th>Status</th><th class=num>Applications</th><th class=num>Discount given</th><th class=num>Average per sale</th></tr></thead><tbody></tbody></table></div>' +
      (can("couponRead") ? '<div class="card"><h2 id="r-funnel-h">Coupon redemption funnel</h2><div class="toolbar"><button type="button" id="r-funnel-csv">Download CSV</button></div>' +
        '<div class="chart" id="r-funnel"></div><table id="r-funnel-table"><caption class="sr-only">Coupon funnel</caption><thead><tr><th>Coupon type</th><th class=num>Issued</th>' +
        '<th class=num>Redeemed</th><th class=num>Redemption rate</th></tr></thead><tbody></tbody></table></div>' : "") +
      '<div class="card"><h2>Budget utilisation</h2><div class="toolbar"><button type="button" id="r-budgets-csv">Download CSV</button></div>' +
      '<div class="chart" id="r-util"></div><table id="r-budgets-table"><caption class="sr-only">Budgets</caption><thead><tr><th>Budget</th><th>Status</th><th class=num>Total</th><th class=num>Consumed</th>' +
      '<th class=num>Remaining</th><th class=num>Used</th><th class=num>Burn per day</th><th>Runs out</th></tr></thead><tbody></tbody></table>' +
      '<h2 id="r-burn-h">Burn-down</h2><div class="toolbar"><div><label for="r-budget">Budget</label><select id="r-budget"></select></div></div>' +
      '<div class="chart" id="r-burn"></div><p class="muted" id="r-burn-note"></p></div>';
    var perf = [], stores = {}, shown = [], budgetRows = [], funnelRows = [];
    function storeName(id) { return id ? (stores[id] || id) : "(none)"; }
    function sumBy(rows, key) {
      var m = {}, order = [];
      rows.forEach(function (r) {
        var k = key(r) + "\u0000" + r.currency;
        if (!m[k]) { m[k] = { key: key(r), currency: r.currency, count: 0, cents: 0, row: r }; order.push(k); }
        m[k].count += r.applicationsCount; m[k].cents += cents(r.totalDiscountGiven);
      });
      return order.map(function (k) { return m[k]; });
    }
    function load() {
      var qs = ["groupBy=day,posGroup", "from=" + $("#r-from").value, "to=" + $("#r-to").value];
      if ($("#r-store").value) qs.push("posGroupId=" + encodeURIComponent($("#r-store").value));
      return api("GET", "/reporting/PromotionPerformance?" + qs.join("&")).then(function (r) {
        if (r.status !== 200) { $("#r-msg").textContent = errorText(r); return; }
        $("#r-msg").textContent = "";
        perf = r.body.value || [];
        var days = sumBy(perf, function (x) { return x.day; }).sort(function (a, b) { return a.key < b.key ? -1 : 1; });
        $("#r-days").innerHTML = DreChart.columns(days.map(function (d) {
          return { label: d.key, value: d.cents / 100, text: fromCents(d.cents) + " " + d.currency + ", " + d.count + " applications" };
        }), { id: "r-days-c", title: "Discount given per day", width: 900 });
        $("#r-days-table tbody").innerHTML = days.map(function (d) {
          return "<tr><td>" + esc(d.key) + "</td><td class=num>" + d.count + "</td><td class=num>" + fromCents(d.cents) + " " + esc(d.currency) + "</td></tr>";
        }).join("") || '<tr><td colspan="3" class="muted">No confirmed applications in these days.</td></tr>';
        var per = sumBy(perf, function (x) { return x.posGroupId || ""; });
        var top = per.reduce(function (m, x) { return Math.max(m, x.cents); }, 0);
        $("#r-stores").innerHTML = DreChart.hbars(per.map(function (x) {
          return { label: storeName(x.key), value: top ? 100 * x.cents / top : 0, text: fromCents(x.cents) + " " + x.currency };
        }), { id: "r-stores-c", title: "Discount given per store (bar: share of the largest)", width: 900, labelWidth: 260, textWidth: 140, plain: true });
        $("#r-stores-table tbody").innerHTML = per.map(function (x) {
          return "<tr><td>" + esc(storeName(x.key)) + "</td><td class=num>" + x.count + "</td><td class=num>" + fromCents(x.cents) + " " + esc(x.currency) + "</td></tr>";
        }).join("");
        var promos = sumBy(perf, function (x) { return x.promotionId; });
        $("#r-promos-table tbody").innerHTML = promos.map(function (x) {
          return "<tr><td>" + esc(x.row.promotionName || x.key) + "</td><td>" + (x.row.promotionStatus ? badge(x.row.promotionStatus) : "") +
            "</td><td class=num>" + x.count + "</td><td class=num>" + fromCents(x.cents) + " " + esc(x.currency) +
            "</td><td class=num>" + fromCents(x.count ? Math.round(x.cents / x.count) : 0) + "</td></tr>";
        }).join("");
        shown = perf.map(function (x) {
          return { day: x.day, posGroupId: x.posGroupId, store: storeName(x.posGroupId), promotionId: x.promotionId, promotionName: x.promotionName,
            applicationsCount: x.applicationsCount, totalDiscountGiven: fromCents(cents(x.totalDiscountGiven)), currency: x.currency };
        }).sort(function (a, b) { return a.day < b.day ? -1 : a.day > b.day ? 1 : a.promotionName < b.promotionName ? -1 : 1; });
        el.setAttribute("data-loaded", "performance");
      });
    }
    function funnel() {
      return api("GET", "/api/v1/CouponTypes?$top=20&$orderby=" + encodeURIComponent("name asc") + "&$select=id,name,type").then(function (r) {
        if (r.status !== 200) { $("#r-funnel").innerHTML = '<p class="error">' + esc(errorText(r)) + "</p>"; return; }
        var types = r.body.value || [];
        function count(t, status) {
          return api("GET", "/api/v1/CouponCodes?couponTypeId=" + encodeURIComponent(t.id) + (status ? "&status=" + status : "") + "&$count=true&$top=1&$select=code")
            .then(function (x) { return x.status === 200 ? x.body.count || 0 : 0; });
        }
        return Promise.all(types.map(function (t) {
          return Promise.all([count(t), count(t, "REDEEMED")]).then(function (n) { return { couponTypeId: t.id, couponType: t.name, issued: n[0], redeemed: n[1] }; });
        })).then(function (rows) {
          funnelRows = rows.filter(function (x) { return x.issued > 0; });
          funnelRows.forEach(function (x) { x.redemptionRate = (100 * x.redeemed / x.issued).toFixed(1); });
          var bars = [];
          funnelRows.forEach(function (x) {
            bars.push({ label: x.couponType + " · issued", value: 100, text: String(x.issued) });
            bars.push({ label: x.couponType + " · redeemed", value: 100 * x.redeemed / x.issued, text: x.redeemed + " (" + x.redemptionRate + "%)" });
          });
          $("#r-funnel").innerHTML = DreChart.hbars(bars, { id: "r-funnel-c", title: "Coupon codes issued, then redeemed", width: 900, labelWidth: 300, textWidth: 140, plain: true });
          $("#r-funnel-table tbody").innerHTML = funnelRows.map(function (x) {
            return "<tr><td>" + esc(x.couponType) + "</td><td class=num>" + x.issued + "</td><td class=num>" + x.redeemed + "</td><td class=num>" + x.redemptionRate + "%</td></tr>";
          }).join("") || '<tr><td colspan="4" class="muted">No coupon codes yet.</td></tr>';
        });
      });
    }
    function budgetsReport() {
      return api("GET", "/reporting/BudgetUtilization").then(function (r) {
        if (r.status !== 200) { $("#r-util").innerHTML = '<p class="error">' + esc(errorText(r)) + "</p>"; return; }
        budgetRows = (r.body.value || []).slice().sort(function (a, b) { return a.budgetName < b.budgetName ? -1 : 1; });
        $("#r-util").innerHTML = DreChart.hbars(budgetRows.map(function (b) {
          return { label: b.budgetName, value: b.utilizationPct, text: Number(b.utilizationPct).toFixed(1) + "% of " + money(b.totalAmount) + " " + b.currency };
        }), { id: "r-util-c", title: "Budget utilisation (% of the total consumed)", width: 900, labelWidth: 260, textWidth: 200 });
        $("#r-budgets-table tbody").innerHTML = budgetRows.map(function (b) {
          return "<tr><td>" + esc(b.budgetName) + "</td><td>" + badge(b.status) + "</td><td class=num>" + money(b.totalAmount) + "</td><td class=num>" +
            money(b.consumedAmount) + "</td><td class=num>" + money(b.remainingAmount) + "</td><td class=num>" + Number(b.utilizationPct).toFixed(1) +
            "%</td><td class=num>" + money(b.dailyBurnRate) + "</td><td>" + esc(b.projectedExhaustionDate || "—") + "</td></tr>";
        }).join("");
        var sel = $("#r-budget"), was = sel.value;
        sel.innerHTML = budgetRows.map(function (b) { return '<option value="' + esc(b.budgetId) + '">' + esc(b.budgetName) + "</option>"; }).join("");
        if (was) sel.value = was;
        return burndown();
      });
    }
    // burndown: remaining per day. Measured: walking back from today's
    // remaining amount through the daily discount of the promotions that
    // name the budget (they consume it); projected: dailyBurnRate a day
    // until projectedExhaustionDate (at most 60 days shown).
    function burndown() {
      var b = budgetRows.filter(function (x) { return x.budgetId === $("#r-budget").value; })[0];
      if (!b) { $("#r-burn").innerHTML = DreChart.line([], { id: "r-burn-c", title: "Burn-down" }); return; }
      var history = can("promoRead") ? Promise.all([
        api("GET", "/api/v1/Promotions?$top=1000&$select=id,budgetIds"),
        api("GET", "/reporting/PromotionPerformance?groupBy=day")
      ]) : Promise.resolve(null);
      return history.then(function (rs) {
        var perDay = {}, note = "";
        if (rs && rs[0].status === 200 && rs[1].status === 200) {
          var mine = {};
          rs[0].body.value.forEach(function (p) { if ((p.budgetIds || []).indexOf(b.budgetId) >= 0) mine[p.id] = true; });
          rs[1].body.value.forEach(function (x) {
            if (mine[x.promotionId] && x.currency === b.currency) perDay[x.day] = (perDay[x.day] || 0) + cents(x.totalDiscountGiven);
          });
        } else note = "Measured days need read access to the promotions; the projection is shown. ";
        var days = Object.keys(perDay).sort(), now = today(), remaining = cents(b.remainingAmount), points = [];
        if (days.length === 0 || days[days.length - 1] < now) days.push(now);
        var after = 0;
        for (var i = days.length - 1; i >= 0; i--) {
          points.unshift({ label: days[i], value: (remaining + after) / 100, text: fromCents(remaining + after) + " " + b.currency + " left" });
          after += perDay[days[i]] || 0;
        }
        if (days[0] !== now || points.length === 1)
          points.unshift({ label: "start", value: (remaining + after) / 100, text: fromCents(remaining + after) + " " + b.currency + " (total)" });
        var rate = cents(b.dailyBurnRate);
        if (rate > 0 && remaining > 0) {
          for (var d = 1, left = remaining; left > 0 && d <= 60; d++) {
            left = Math.max(0, left - rate);
            points.push({ label: today(d), value: left / 100, projected: true, text: fromCents(left) + " " + b.currency + " left (projected)" });
          }
          note += "Projected at " + money(b.dailyBurnRate) + " " + b.currency + " a day: runs out on " + (b.projectedExhaustionDate || "—") + ".";
        } else note += "No consumption in the last 7 days: no projection.";
        $("#r-burn").innerHTML = DreChart.line(points, { id: "r-burn-c", title: "Remaining budget of " + b.budgetName + " (" + b.currency + ")", width: 900 });
        $("#r-burn-note").textContent = note;
      });
    }
    $("#r-form").addEventListener("submit", function (ev) { ev.preventDefault(); load(); });
    $("#r-budget").addEventListener("change", burndown);
    $("#r-csv").addEventListener("click", function () {
      downloadCsv("promotion-performance.csv", ["day", "store", "posGroupId", "promotionName", "promotionId", "applicationsCount", "totalDiscountGiven", "currency"], shown);
    });
    if ($("#r-funnel-csv")) $("#r-funnel-csv").addEventListener("click", function () {
      downloadCsv("coupon-funnel.csv", ["couponType", "couponTypeId", "issued", "redeemed", "redemptionRate"], funnelRows);
    });
    $("#r-budgets-csv").addEventListener("click", function () {
      downloadCsv("budget-utilization.csv", ["budgetName", "budgetId", "status", "currency", "totalAmount", "consumedAmount", "remainingAmount",
        "utilizationPct", "dailyBurnRate", "projectedExhaustionDate"], budgetRows);
    });
    var names = can("masterRead") ? api("GET", "/api/v1/PosGroups?$top=200&$select=id,code,name").then(function (r) {
      if (r.status !== 200) return;
      r.body.value.forEach(function (g) {
        stores[g.id] = g.name ? g.name + " (" + g.code + ")" : g.code;
        var o = document.createElement("option"); o.value = g.id; o.textContent = stores[g.id]; $("#r-store").appendChild(o);
      });
    }) : Promise.resolve();
    names.then(function () {
      return Promise.all([load(), can("couponRead") ? funnel() : null, budgetsReport()]);
    }).then(function () { el.setAttribute("data-loaded", "all"); });
  }

  // ------------------------------------------------------------ coupons
  function coupons(el) {
    var writable = can("couponWrite");
    el.innerHTML =
      '<div class="card"><h1>Coupons</h1><h2>Coupon types</h2>' +
      (writable ? '<form class="toolbar" id="ct-form"><div><label for="ct-name">Name</label><input id="ct-name" required maxlength="100" data-target="name"></div>' +
        select("ct-type", "Kind", ["INDIVIDUAL", "GENERIC"], "INDIVIDUAL", 'data-target="type"') +
        '<div><label for="ct-prefix">Prefix</label><input id="ct-prefix" maxlength="20" data-target="prefix"></div>' +
        '<div><label for="ct-length">Code length</label><input id="ct-length" inputmode="numeric" value="10" data-target="codeLength"></div>' +
        '<button type="submit" class="primary" id="ct-new">New coupon type</button></form><p id="ct-msg" role="alert"></p>' : "") +
      '<table id="ct-table"><caption class="sr-only">Coupon types</caption><thead><tr><th>Name</th><th>Kind</th><th>Prefix</th><th class=num>Length</th><th>Status</th><th>Valid</th>' +
      '<th class=num>Promotions</th></tr></thead><tbody></tbody></table></div>' +
      '<div class="card"><h2>Batches</h2>' +
      (writable ? '<form class="toolbar" id="cb-form">' + '<div><label for="cb-type">Coupon type</label><select id="cb-type" required></select></div>' +
        '<div><label for="cb-count">Number of codes</label><input id="cb-count" inputmode="numeric" value="1000" data-target="numberOfCodes"></div>' +
        '<button type="submit" class="primary" id="cb-generate">Generate codes</button></form>' +
        '<div id="cb-progress" hidden><label for="cb-bar">Generating</label><progress id="cb-bar" max="100" value="0"></progress> <span id="cb-status" aria-live="polite"></span></div>' +
        '<p id="cb-msg" role="alert"></p>' : "") +
      '<table id="cb-table"><caption class="sr-only">Batches</caption><thead><tr><th>Coupon type</th><th class=num>Codes</th><th class=num>Generated</th><th class=num>Progress</th>' +
      '<th>Status</th><th>Started</th><th>Completed</th></tr></thead><tbody></tbody></table></div>';
    var typeName = {};
    function loadTypes() {
      return api("GET", "/api/v1/CouponTypes?$top=200&$orderby=" + encodeURIComponent("name asc")).then(function (r) {
        if (r.status !== 200) { $("#ct-table tbody").innerHTML = '<tr><td colspan="7" class="error">' + esc(errorText(r)) + "</td></tr>"; return; }
        var rows = r.body.value || [];
        rows.forEach(function (t) { typeName[t.id] = t.name; });
        $("#ct-table tbody").innerHTML = rows.map(function (t) {
          return "<tr><td>" + esc(t.name) + "</td><td>" + esc(t.type) + "</td><td>" + esc(t.prefix || "") + "</td><td class=num>" + esc(t.codeLength) +
            "</td><td>" + badge(t.status) + "</td><td>" + esc(toLocal(t.validFrom).replace("T", " ")) + (t.validTo ? " – " + esc(toLocal(t.validTo).replace("T", " ")) : "") +
            "</td><td class=num>" + (t.promotionIds || []).length + "</td></tr>";
        }).join("") || '<tr><td colspan="7" class="muted">No coupon types yet.</td></tr>';
        if ($("#cb-type")) {
          var was = $("#cb-type").value;
          $("#cb-type").innerHTML = rows.filter(function (t) { return t.status === "ACTIVE"; })
            .map(function (t) { return '<option value="' + esc(t.id) + '">' + esc(t.name) + "</option>"; }).join("");
          if (was) $("#cb-type").value = was;
        }
      });
    }
    function batchRow(b) {
      return "<tr data-id=\"" + esc(b.id) + "\"><td>" + esc(typeName[b.couponTypeId] || b.couponTypeId) + "</td><td class=num>" + esc(b.numberOfCodes) +
        "</td><td class=num>" + esc(b.generatedCount) + "</td><td class=num>" + esc(b.progress) + "%</td><td>" + badge(b.status) +
        (b.error ? " " + esc(b.error) : "") + "</td><td>" + esc(toLocal(b.startedAt).replace("T", " ")) + "</td><td>" + esc(toLocal(b.completedAt).replace("T", " ")) + "</td></tr>";
    }
    function loadBatches() {
      return api("GET", "/api/v1/CouponCodeBatches?$top=20&$orderby=" + encodeURIComponent("createdAt desc")).then(function (r) {
        if (r.status !== 200) return;
        $("#cb-table tbody").innerHTML = (r.body.value || []).map(batchRow).join("") || '<tr><td colspan="7" class="muted">No batches yet.</td></tr>';
      });
    }
    function fieldErrors(form, r, msgEl) {
      $$("[aria-invalid]", form).forEach(function (x) { x.removeAttribute("aria-invalid"); });
      var e = r.body && r.body.error, items = e ? (e.details && e.details.length ? e.details : [e]) : [];
      var first = null;
      items.forEach(function (d) {
        var inp = d.target ? $('[data-target="' + String(d.target).replace(/"/g, "") + '"]', form) : null;
        if (inp) { inp.setAttribute("aria-invalid", "true"); first = first || inp; }
      });
      msgEl.className = "error";
      msgEl.textContent = errorText(r);
      if (first) first.focus();
    }
    if (writable) {
      $("#ct-form").addEventListener("submit", function (ev) {
        ev.preventDefault();
        var body = { name: $("#ct-name").value.trim(), type: $("#ct-type").value };
        if ($("#ct-prefix").value.trim()) body.prefix = $("#ct-prefix").value.trim();
        if ($("#ct-length").value.trim()) body.codeLength = Number($("#ct-length").value.trim());
        api("POST", "/api/v1/CouponTypes", body).then(function (r) {
          if (r.status !== 201 && r.status !== 200) { fieldErrors($("#ct-form"), r, $("#ct-msg")); return; }
          $("#ct-name").value = ""; $("#ct-prefix").value = "";
          // said once the lists show it, chosen for a batch
          loadTypes().then(function () {
            $("#cb-type").value = r.body.id;
            $("#ct-msg").className = "ok"; $("#ct-msg").textContent = "Created “" + r.body.name + "”.";
          });
        });
      });
      $("#cb-form").addEventListener("submit", function (ev) {
        ev.preventDefault();
        var n = Number($("#cb-count").value.trim());
        $("#cb-msg").textContent = "";
        api("POST", "/api/v1/CouponCodeBatches", { couponTypeId: $("#cb-type").value, numberOfCodes: n }).then(function (r) {
          if (r.status !== 202 && r.status !== 201 && r.status !== 200) { fieldErrors($("#cb-form"), r, $("#cb-msg")); return; }
          var id = r.body.id, last = r.body;
          $("#cb-generate").disabled = true;
          $("#cb-progress").hidden = false;
          function show(b) {
            $("#cb-bar").value = b.progress;
            $("#cb-status").textContent = b.status + ": " + b.generatedCount + " of " + b.numberOfCodes + " codes (" + b.progress + "%)";
          }
          show(last);
          loadBatches();
          // the batch job writes chunks in the background: ask until it ends
          poll(function () {
            return api("GET", "/api/v1/CouponCodeBatches/" + encodeURIComponent(id)).then(function (x) {
              if (x.status !== 200) return false;
              last = x.body; show(last);
              return last.status === "COMPLETED" || last.status === "FAILED";
            });
          }, 250, 600000, function () {
            $("#cb-generate").disabled = false;
            $("#cb-msg").className = last.status === "COMPLETED" ? "ok" : "error";
            $("#cb-msg").textContent = last.status === "COMPLETED" ? "Done: " + last.generatedCount + " codes generated." :
              last.status === "FAILED" ? "The batch failed: " + (last.error || "") : "Still " + last.status + ": see the table.";
            loadBatches();
          });
        });
      });
    }
    loadTypes().then(loadBatches);
  }

  // ------------------------------------------------------------ loyalty
  function loyalty(el) {
    el.innerHTML =
      '<div class="card"><h1>Loyalty</h1><form class="toolbar" id="l-form" role="search">' +
      '<div><label for="l-by">Find by</label><select id="l-by"><option value="email">Email</option><option value="mobilePhone">Mobile phone</option>' +
      '<option value="customKey">Member number</option><option value="any">Any identifier</option></select></div>' +
      '<div><label for="l-q">Member</label><input id="l-q" required></div><button type="submit" class="primary" id="l-go">Look up</button></form>' +
      '<div id="l-out" aria-live="polite"></div></div>';
    $("#l-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var q = $("#l-q").value.trim();
      if (!q) { $("#l-q").focus(); return; }
      $("#l-out").innerHTML = '<p class="muted">Looking up…</p>';
      api("GET", "/api/v3/contactoverview?" + $("#l-by").value + "=" + encodeURIComponent(q)).then(function (r) {
        if (r.status === 404) { $("#l-out").innerHTML = '<p class="error" role="alert" id="l-none">No member found for “' + esc(q) + "”.</p>"; return; }
        if (r.status !== 200) { $("#l-out").innerHTML = '<p class="error" role="alert">' + esc(errorText(r)) + "</p>"; return; }
        var c = r.body, a = c.attributes || {}, l = c.loyalty || {};
        var name = [a.firstName, a.lastName].filter(Boolean).join(" ") || a.email || a.memberNumber || c.id;
        $("#l-out").innerHTML = '<h2 id="l-name">' + esc(name) + "</h2>" +
          '<dl class="grid" id="l-member"><div><dt>Member number</dt><dd>' + esc(a.memberNumber || "—") + "</dd></div><div><dt>Email</dt><dd>" + esc(a.email || "—") +
          "</dd></div><div><dt>Mobile phone</dt><dd>" + esc(a.mobilePhone || "—") + "</dd></div><div><dt>Level</dt><dd id=\"l-level\">" + esc(l.level) +
          '</dd></div><div><dt>Points balance</dt><dd id="l-points">' + esc(l.pointsBalance) + "</dd></div><div><dt>Earned in the last 365 days</dt><dd>" +
          esc(l.pointsEarnedLast365) + "</dd></div><div><dt>Next level</dt><dd>" + (l.nextLevel ? esc(l.nextLevel) + " in " + esc(l.pointsToNextLevel) + " points" : "—") +
          "</dd></div><div><dt>Contact id</dt><dd>" + esc(c.id) + "</dd></div></dl>" +
          '<h2>Vouchers</h2><table id="l-vouchers"><thead><tr><th>Voucher</th><th>Name</th><th class=num>Value</th><th class=num>Points</th><th>Expires</th></tr></thead><tbody>' +
          ((c.vouchers || []).map(function (v) {
            return "<tr><td>" + esc(v.voucherNumber) + "</td><td>" + esc(v.name) + "</td><td class=num>" + money(v.value && v.value.amount) + " " + esc(v.value ? v.value.currency : "") +
              "</td><td class=num>" + esc(v.points) + "</td><td>" + esc(toLocal(v.expiresOn).replace("T", " ")) + "</td></tr>";
          }).join("") || '<tr><td colspan="5" class="muted">No available vouchers.</td></tr>') + "</tbody></table>" +
          '<h2>Assigned promotions</h2><ul id="l-promos">' + ((c.promotions || []).map(function (p) {
            return "<li>" + esc(p.promotionName || p.promotionId || p.id) + "</li>";
          }).join("") || '<li class="muted">None.</li>') + "</ul>";
      });
    });
    $("#l-q").focus();
  }

  // ------------------------------------------------------------ webhooks
  function webhooks(el) {
    el.innerHTML =
      '<div class="card"><h1>Webhooks</h1><h2>Subscriptions</h2><table id="w-subs"><caption class="sr-only">Subscriptions</caption><thead><tr><th>URL</th><th>Events</th>' +
      '<th>Active</th><th>Description</th><th><span class="sr-only">Actions</span></th></tr></thead><tbody></tbody></table></div>' +
      '<div class="card" id="w-log-card" hidden><h2 id="w-log-h">Delivery log</h2><div class="toolbar">' +
      '<div><label for="w-status">Status</label><select id="w-status"><option value="">Any</option><option>PENDING</option><option>DELIVERED</option><option>FAILED</option></select></div></div>' +
      '<p id="w-msg" aria-live="polite"></p><table id="w-log"><caption class="sr-only">Deliveries</caption><thead><tr><th>Event</th><th>Status</th><th class=num>Attempts</th>' +
      "<th class=num>Last answer</th><th>Last error</th><th>Created</th><th>Last attempt</th><th><span class=\"sr-only\">Actions</span></th></tr></thead><tbody></tbody></table></div>";
    var sub = null, subs = [];
    function row(d) {
      return "<tr data-id=\"" + esc(d.id) + "\"><td>" + esc(d.eventType) + "</td><td>" + badge(d.status) + "</td><td class=num>" + esc(d.attempts) +
        (d.totalAttempts !== undefined && d.totalAttempts !== d.attempts ? " (" + esc(d.totalAttempts) + " in all)" : "") + "</td><td class=num>" +
        esc(d.lastStatusCode === null || d.lastStatusCode === undefined ? "—" : d.lastStatusCode) + "</td><td>" + esc(d.lastError || "") + "</td><td>" +
        esc(toLocal(d.createdAt).replace("T", " ")) + "</td><td>" + esc(toLocal(d.lastAttemptAt).replace("T", " ")) + "</td><td>" +
        (d.status === "FAILED" ? '<button type="button" class="repost">Repost ' + esc(d.eventType) + "</button>" : "") + "</td></tr>";
    }
    function loadLog() {
      var qs = ["subscriptionId=" + encodeURIComponent(sub.id), "$top=50", "$orderby=" + encodeURIComponent("createdAt desc")];
      if ($("#w-status").value) qs.push("status=" + $("#w-status").value);
      return api("GET", "/api/v1/WebhookDeliveries?" + qs.join("&")).then(function (r) {
        if (r.status !== 200) { $("#w-msg").textContent = errorText(r); return; }
        var ds = r.body.value || [];
        $("#w-log tbody").innerHTML = ds.map(row).join("") || '<tr><td colspan="8" class="muted">No deliveries.</td></tr>';
        $$("#w-log button.repost").forEach(function (b) {
          b.addEventListener("click", function () { repost(b.closest("tr").getAttribute("data-id")); });
        });
      });
    }
    function repost(id) {
      $("#w-msg").className = "muted";
      $("#w-msg").textContent = "Reposting…";
      api("POST", "/api/v1/WebhookDeliveries/" + encodeURIComponent(id) + "/repost").then(function (r) {
        if (r.status !== 202 && r.status !== 200) { $("#w-msg").className = "error"; $("#w-msg").textContent = errorText(r); return; }
        var last = r.body;
        function swap(d) {
          var tr = $('#w-log tr[data-id="' + id + '"]');
          if (tr) tr.outerHTML = row(d);
        }
        swap(last);
        // a new series of attempts: follow it until it ends
        poll(function () {
          return api("GET", "/api/v1/WebhookDeliveries/" + encodeURIComponent(id)).then(function (x) {
            if (x.status === 200) { last = x.body; swap(last); }
            return last.status !== "PENDING";
          });
        }, 250, 30000, function () {
          $("#w-msg").className = last.status === "DELIVERED" ? "ok" : "error";
          $("#w-msg").textContent = "Reposted: " + last.status + (last.lastStatusCode ? " (HTTP " + last.lastStatusCode + ")" : "") + ".";
          loadLog();
        });
      });
    }
    $("#w-status").addEventListener("change", function () { if (sub) loadLog(); });
    api("GET", "/api/v1/WebhookSubscriptions?$top=100").then(function (r) {
      if (r.status !== 200) { $("#w-subs tbody").innerHTML = '<tr><td colspan="5" class="error">' + esc(errorText(r)) + "</td></tr>"; return; }
      subs = r.body.value || [];
      $("#w-subs tbody").innerHTML = subs.map(function (x, i) {
        return "<tr data-id=\"" + esc(x.id) + "\"><td>" + esc(x.url) + "</td><td>" + esc((x.eventTypes || []).join(", ")) + "</td><td>" + (x.active === false ? "no" : "yes") +
          "</td><td>" + esc(x.description || "") + '</td><td><button type="button" class="log" data-i="' + i + '">Deliveries of ' + esc(x.description || x.url) + "</button></td></tr>";
      }).join("") || '<tr><td colspan="5" class="muted">No subscriptions.</td></tr>';
      $$("#w-subs button.log").forEach(function (b) {
        b.addEventListener("click", function () {
          sub = subs[Number(b.getAttribute("data-i"))];
          $("#w-log-card").hidden = false;
          $("#w-log-h").textContent = "Delivery log of " + (sub.description || sub.url);
          $("#w-msg").textContent = "";
          loadLog().then(function () { $("#w-log-h").setAttribute("tabindex", "-1"); $("#w-log-h").focus(); });
        });
      });
    });
  }

  // ------------------------------------------------------------ start
  $("#login-form").addEventListener("submit", function (ev) {
    ev.preventDefault();
    $("#login-error").textContent = "";
    signIn($("#login-user").value, $("#login-pass").value).then(function () {
      $("#login-pass").value = "";
      render();
      $("#main").focus();
    }, function (e) { $("#login-error").textContent = "Sign-in failed: " + e.message; });
  });
  $("#logout").addEventListener("click", function () { signOut(); });
  $$("#nav button").forEach(function (b) {
    b.addEventListener("click", function () { go("#/" + b.getAttribute("data-page")); });
  });
  window.addEventListener("hashchange", render);
  try { session = JSON.parse(sessionStorage.getItem("dre.console") || "null"); } catch (e) { session = null; }
  render();
})();
