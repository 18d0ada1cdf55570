// app.js -- the DRE console: a small single-page application over the
// public API (the same calls an integration makes), with the signed-in
// user's own credentials. Pages: promotions (list + builder), simulator,
// budgets. No framework, no build step.
(function () {
  "use strict";

  // ------------------------------------------------------------ helpers
  var $ = function (sel, root) { return (root || document).querySelector(sel); };
  var $$ = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };
  var esc = DreChart.esc;

  var ROLES = {
    promoRead: ["Admin", "PromotionManager", "PromotionApprover", "PublicApiReader", "PublicApiWriter"],
    promoWrite: ["Admin", "PromotionManager", "PublicApiWriter"],
    simulate: ["Admin", "POSReader"],
    budgetRead: ["Admin", "BudgetManager", "PromotionManager", "PublicApiReader", "PublicApiWriter"],
    masterRead: ["Admin", "PromotionManager", "PromotionApprover", "PublicApiReader", "PublicApiWriter"]
  };
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
          session = { auth: auth, principal: b.principal, tenant: b.tenant, roles: b.roles };
          sessionStorage.setItem("dre.console", JSON.stringify(session));
        });
      });
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
    $$("#nav button").forEach(function (b) {
      var need = b.getAttribute("data-page") === "promotions" ? "promoRead" : b.getAttribute("data-needs");
      b.hidden = !can(need);
    });
    var parts = location.hash.replace(/^#\/?/, "").split("/");
    var page = parts[0] || (can("promoRead") ? "promotions" : can("simulate") ? "simulator" : "budgets");
    $$("#nav button").forEach(function (b) {
      if (b.getAttribute("data-page") === page) b.setAttribute("aria-current", "page");
      else b.removeAttribute("aria-current");
    });
    var el = $("#page");
    el.innerHTML = "";
    if (page === "promotions" && parts[1]) return promotionEditor(el, parts[1]);
    if (page === "promotions" && can("promoRead")) return promotionList(el);
    if (page === "simulator" && can("simulate")) return simulator(el);
    if (page === "budgets" && can("budgetRead")) return budgets(el);
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
        '<div class="toolbar">' + (writable ? '<button type="submit" class="primary" id="promo-save">Save</button>' : "") +
        (writable && !isNew ? '<button type="button" id="promo-activate">Activate</button><button type="button" id="promo-deactivate">Deactivate</button>' : "") +
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
    function showServerErrors(r) {
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
      banner("bad", "The promotion was not saved: " + esc(e.message) + (rest.length ? "<ul>" + rest.map(function (m) { return "<li>" + esc(m) + "</li>"; }).join("") + "</ul>" : ""));
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
    function wire() {
      $("#promo-back").addEventListener("click", function () { go("#/promotions"); });
      if (!writable) return;
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
      ["activate", "deactivate"].forEach(function (act) {
        var b = $("#promo-" + act);
        if (b) b.addEventListener("click", function () {
          clearErrors();
          api("POST", "/api/v1/Promotions/" + encodeURIComponent(id) + "/" + act, undefined, etag ? { "If-Match": etag } : {}).then(function (r) {
            if (r.status === 200) { doc = r.body; etag = r.etag || etag; draw(); banner("ok", "Status: " + esc(doc.status) + "."); }
            else if (r.status === 412) conflict();
            else banner("bad", esc(errorText(r)));
          });
        });
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
      var cols = ["id", "name", "status", "currency", "totalAmount", "consumedAmount", "remainingAmount", "utilizationPct", "transactionsCount"];
      var csv = [cols.join(",")].concat(rows.map(function (b) {
        return cols.map(function (c) { var v = b[c] === undefined || b[c] === null ? "" : String(b[c]); return /[",\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v; }).join(",");
      })).join("\n") + "\n";
      var a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
      a.download = "budgets.csv";
      document.body.appendChild(a); a.click(); a.remove();
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
