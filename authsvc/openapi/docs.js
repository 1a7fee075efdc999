"use strict";
(function () {
  var METHODS = ["get", "post", "put", "patch", "delete"];

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { e.textContent = attrs[k]; } else { e.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { e.appendChild(c); } });
    return e;
  }

  // resolve follows a local $ref ("#/components/…") in the document.
  function resolve(doc, obj) {
    var seen = 0;
    while (obj && typeof obj.$ref === "string" && seen < 16) {
      var parts = obj.$ref.replace(/^#\//, "").split("/");
      var cur = doc;
      for (var i = 0; i < parts.length && cur; i++) {
        cur = cur[parts[i].replace(/~1/g, "/").replace(/~0/g, "~")];
      }
      obj = cur;
      seen++;
    }
    return obj || {};
  }

  function refName(obj) {
    return obj && typeof obj.$ref === "string" ? obj.$ref.split("/").pop() : "";
  }

  // sketch writes a schema as an indented outline, following references
  // to a small depth (the envelope nests data in data).
  function sketch(doc, schema, depth, seen) {
    seen = seen || {};
    var name = refName(schema);
    var s = resolve(doc, schema);
    var pad = "  ".repeat(depth);
    if (name && (seen[name] || depth > 4)) { return name; }
    var next = Object.assign({}, seen);
    if (name) { next[name] = true; }
    var alts = s.oneOf || s.anyOf || s.allOf;
    if (alts) {
      var joiner = s.allOf ? " & " : " | ";
      return alts.map(function (a) { return sketch(doc, a, depth, next); }).join(joiner);
    }
    var type = Array.isArray(s.type) ? s.type.join("|") : (s.type || (s.properties ? "object" : "any"));
    if (s.enum) { return type + " (" + s.enum.map(String).join(", ") + ")"; }
    if (type === "array" || (Array.isArray(s.type) && s.items)) {
      return "[" + sketch(doc, s.items || {}, depth, next) + "]";
    }
    if (s.properties) {
      var req = s.required || [];
      var lines = Object.keys(s.properties).map(function (k) {
        return pad + "  " + k + (req.indexOf(k) >= 0 ? "" : "?") + ": " + sketch(doc, s.properties[k], depth + 1, next);
      });
      return "{\n" + lines.join("\n") + "\n" + pad + "}";
    }
    return type + (s.format ? " <" + s.format + ">" : "");
  }

  function renderParams(doc, params) {
    if (!params.length) { return null; }
    var body = el("tbody");
    params.forEach(function (p) {
      p = resolve(doc, p);
      body.appendChild(el("tr", {}, [
        el("td", {}, [el("code", { text: p.name })]),
        el("td", { text: p.in + (p.required ? ", required" : "") }),
        el("td", { text: sketch(doc, p.schema || {}, 0) }),
        el("td", { text: p.description || "" })
      ]));
    });
    return el("table", { class: "params" }, [
      el("thead", {}, [el("tr", {}, ["name", "in", "type", "description"].map(function (h) { return el("th", { text: h }); }))]),
      body
    ]);
  }

  function renderContent(doc, content) {
    var out = [];
    Object.keys(content || {}).forEach(function (ct) {
      out.push(el("div", {}, [el("span", { class: "badge", text: ct })]));
      if (content[ct].schema) { out.push(el("pre", { text: sketch(doc, content[ct].schema, 0) })); }
    });
    return out;
  }

  function renderOperation(doc, path, method, op, shared) {
    var params = (shared || []).concat(op.parameters || []);
    var body = el("div", { class: "op-body" }, []);
    if (op.description) { body.appendChild(el("p", { text: op.description })); }
    if (op.security && op.security.length === 0) {
      body.appendChild(el("p", { class: "badge", text: "no authentication" }));
    }
    var pt = renderParams(doc, params);
    if (pt) { body.appendChild(el("h4", { text: "Parameters" })); body.appendChild(pt); }
    if (op.requestBody) {
      var rb = resolve(doc, op.requestBody);
      body.appendChild(el("h4", { text: "Request body" + (rb.required ? "" : " (optional)") }));
      renderContent(doc, rb.content).forEach(function (n) { body.appendChild(n); });
    }
    body.appendChild(el("h4", { text: "Responses" }));
    var rows = el("tbody");
    Object.keys(op.responses || {}).forEach(function (code) {
      var r = resolve(doc, op.responses[code]);
      var cell = el("td", {}, [el("div", { text: r.description || "" })]);
      renderContent(doc, r.content).forEach(function (n) { cell.appendChild(n); });
      rows.appendChild(el("tr", {}, [el("td", {}, [el("code", { text: code })]), cell]));
    });
    body.appendChild(el("table", { class: "responses" }, [rows]));
    var summary = el("summary", {}, [
      el("span", { class: "method " + method, text: method }),
      el("span", { class: "path", text: path }),
      el("span", { class: "op-summary", text: op.summary || "" })
    ]);
    return el("details", { class: "op", id: op.operationId || (method + path), "data-method": method.toUpperCase(), "data-path": path }, [summary, body]);
  }

  function render(doc) {
    document.getElementById("title").textContent = (doc.info && doc.info.title || "API") + " " + (doc.info && doc.info.version || "");
    document.getElementById("summary").textContent = (doc.info && doc.info.description) || "";
    var groups = {};
    var order = (doc.tags || []).map(function (t) { return t.name; });
    var count = 0;
    Object.keys(doc.paths || {}).forEach(function (path) {
      var item = doc.paths[path];
      METHODS.forEach(function (m) {
        if (!item[m]) { return; }
        var tag = (item[m].tags && item[m].tags[0]) || "other";
        if (order.indexOf(tag) < 0) { order.push(tag); }
        (groups[tag] = groups[tag] || []).push(renderOperation(doc, path, m, item[m], item.parameters));
        count++;
      });
    });
    var main = document.getElementById("ops");
    var toc = document.getElementById("toc");
    order.forEach(function (tag) {
      if (!groups[tag]) { return; }
      var id = "tag-" + tag.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
      toc.appendChild(el("a", { href: "#" + id, text: tag }));
      var section = el("section", { id: id, class: "tag" }, [el("h2", { text: tag })]);
      groups[tag].forEach(function (n) { section.appendChild(n); });
      main.appendChild(section);
    });
    var codes = resolve(doc, { $ref: "#/components/schemas/ErrorCode" });
    if (codes.enum) {
      var tbody = document.querySelector("#error-codes tbody");
      var meanings = codes["x-meanings"] || {};
      codes.enum.forEach(function (c) {
        tbody.appendChild(el("tr", { class: "error-code" }, [el("td", {}, [el("code", { text: c })]), el("td", { text: meanings[c] || "" })]));
      });
      document.getElementById("errors").hidden = false;
    }
    document.body.setAttribute("data-operations", String(count));
    document.body.setAttribute("data-rendered", "true");
  }

  fetch("openapi.json", { headers: { Accept: "application/json" } })
    .then(function (r) {
      if (!r.ok) { throw new Error("openapi.json answered " + r.status); }
      return r.json();
    })
    .then(render)
    .catch(function (err) {
      var p = document.getElementById("summary");
      p.textContent = "Could not load the OpenAPI document: " + err.message;
      p.className = "error";
      document.body.setAttribute("data-rendered", "error");
    });
})();
