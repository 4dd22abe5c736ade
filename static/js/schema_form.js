/* A small generic JSON-Schema-to-form renderer.
 *
 * build(schema, value, {path, label, required, onChange, readOnly}) returns {el, read()}:
 * - enum -> <select>; string -> text; number/integer -> number; boolean -> checkbox;
 * - union types like ["number","string"] -> text (a number when it parses as one);
 * - object with properties -> fieldset of its properties (recursively);
 * - object without properties (a free map: headers, mapping, outputs) -> key/value rows, where a
 *   value is text, or JSON when it starts like JSON ({ [ true false null or a number);
 * - array of objects with properties -> a list of sub-forms with add/remove;
 * - anything else ({} , oneOf, arrays of scalars) -> a JSON textarea.
 * Every field carries data-path (a JSON pointer under `path`) so that validation errors such as
 * /nodes/3/config/url can be shown on the field they concern. read() omits empty optional values.
 */
(function () {
  "use strict";

  function h(tag, attrs, ...children) {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (v === undefined || v === null || v === false) return;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v === true ? "" : v);
    });
    children.flat().forEach((c) => { if (c !== null && c !== undefined) e.append(c); });
    return e;
  }

  function types(schema) {
    if (!schema) return [];
    if (Array.isArray(schema.type)) return schema.type;
    return schema.type ? [schema.type] : [];
  }

  function looksJson(text) { return /^\s*([[{]|true$|false$|null$|-?\d)/.test(text); }

  function parseLoose(text) {
    if (looksJson(text)) { try { return JSON.parse(text); } catch (e) { /* keep text */ } }
    return text;
  }

  function jsonArea(schema, value, o) {
    const ta = h("textarea", { rows: 3, "data-path": o.path, class: "json", disabled: o.readOnly, placeholder: "JSON" });
    ta.value = value === undefined ? "" : JSON.stringify(value, null, 2);
    const note = h("small", { class: "error local" });
    ta.addEventListener("input", () => {
      try { if (ta.value.trim()) JSON.parse(ta.value); note.textContent = ""; o.onChange(); } catch (e) { note.textContent = "Not valid JSON yet"; }
    });
    return {
      el: h("div", {}, ta, note),
      read: () => { const t = ta.value.trim(); if (!t) return undefined; try { return JSON.parse(t); } catch (e) { return t; } },
    };
  }

  function mapRows(schema, value, o) {
    const box = h("div", { class: "kv-rows", "data-path": o.path });
    const rows = [];
    const addRow = (k, v) => {
      const key = h("input", { class: "k", placeholder: "name", disabled: o.readOnly });
      const val = h("input", { class: "v", placeholder: "value, {{ expr }}, $.path or JSON", disabled: o.readOnly });
      key.value = k || "";
      val.value = v === undefined ? "" : typeof v === "string" ? v : JSON.stringify(v);
      const row = { key, val };
      const rm = h("button", { type: "button", class: "small link", title: "Remove", hidden: o.readOnly, onclick: () => { rows.splice(rows.indexOf(row), 1); line.remove(); o.onChange(); } }, "✕");
      const line = h("div", { class: "kv-row" }, key, val, rm);
      key.addEventListener("input", () => { line.dataset.path = `${o.path}/${key.value}`; o.onChange(); });
      val.addEventListener("input", o.onChange);
      line.dataset.path = `${o.path}/${key.value}`;
      rows.push(row);
      box.insertBefore(line, addBtn);
    };
    const addBtn = h("button", { type: "button", class: "small", hidden: o.readOnly, onclick: () => { addRow("", ""); } }, "+ entry");
    box.append(addBtn);
    Object.entries(value && typeof value === "object" && !Array.isArray(value) ? value : {}).forEach(([k, v]) => addRow(k, v));
    return {
      el: box,
      read: () => {
        const out = {};
        rows.forEach(({ key, val }) => { if (key.value.trim()) out[key.value.trim()] = parseLoose(val.value); });
        return Object.keys(out).length || o.required ? out : undefined;
      },
    };
  }

  function objectFields(schema, value, o) {
    const props = schema.properties || {};
    const req = new Set(schema.required || []);
    const box = h("div", { class: "obj", "data-path": o.path });
    const parts = {};
    value = value && typeof value === "object" ? value : {};
    Object.entries(props).forEach(([name, sub]) => {
      parts[name] = field(sub, value[name], { ...o, path: `${o.path}/${name}`, label: name, required: req.has(name), root: false });
      box.append(parts[name].el);
    });
    // Keys the schema does not name are kept as they are (the JSON view can edit them).
    const extra = Object.keys(value).filter((k) => !(k in props));
    return {
      el: box,
      read: () => {
        const out = {};
        extra.forEach((k) => { out[k] = value[k]; });
        Object.entries(parts).forEach(([k, p]) => { const v = p.read(); if (v !== undefined) out[k] = v; });
        return Object.keys(out).length || o.required || o.root ? out : undefined;
      },
    };
  }

  function arrayOfObjects(schema, value, o) {
    const box = h("div", { class: "arr", "data-path": o.path });
    const items = [];
    const addItem = (v) => {
      const idx = items.length;
      const sub = objectFields(schema.items, v, { ...o, path: `${o.path}/${idx}`, required: true, root: false });
      const item = { sub };
      const rm = h("button", { type: "button", class: "small link", hidden: o.readOnly, onclick: () => { items.splice(items.indexOf(item), 1); wrap.remove(); o.onChange(); } }, "Remove");
      const wrap = h("div", { class: "arr-item", "data-path": `${o.path}/${idx}` }, sub.el, rm);
      box.insertBefore(wrap, addBtn);
      items.push(item);
    };
    const addBtn = h("button", { type: "button", class: "small", hidden: o.readOnly, onclick: () => { addItem({}); o.onChange(); } }, "+ item");
    box.append(addBtn);
    (Array.isArray(value) ? value : []).forEach(addItem);
    return { el: box, read: () => { const out = items.map((i) => i.sub.read()); return out.length || o.required ? out : undefined; } };
  }

  function scalar(schema, value, o) {
    const t = types(schema);
    let input;
    if (schema.enum) {
      input = h("select", { "data-path": o.path, disabled: o.readOnly });
      input.append(h("option", { value: "" }, o.required ? "— choose —" : "(default)"));
      schema.enum.forEach((v) => input.append(h("option", { value: JSON.stringify(v), selected: JSON.stringify(v) === JSON.stringify(value) }, String(v))));
      input.addEventListener("change", o.onChange);
      return { el: input, read: () => (input.value ? JSON.parse(input.value) : undefined) };
    }
    if (t.length === 1 && t[0] === "boolean") {
      input = h("input", { type: "checkbox", "data-path": o.path, checked: value === true, disabled: o.readOnly });
      input.addEventListener("change", o.onChange);
      return { el: input, read: () => (input.checked ? true : o.required ? false : undefined) };
    }
    const numeric = t.length === 1 && (t[0] === "number" || t[0] === "integer");
    input = h("input", { type: numeric ? "number" : "text", step: t[0] === "integer" ? "1" : "any", "data-path": o.path, disabled: o.readOnly, placeholder: schema.description || "" });
    input.value = value === undefined || value === null ? "" : String(value);
    input.addEventListener("input", o.onChange);
    const mayNumber = t.includes("number") || t.includes("integer");
    return {
      el: input,
      read: () => {
        const v = input.value;
        if (v === "") return undefined;
        if (numeric || (mayNumber && /^-?\d+(\.\d+)?$/.test(v.trim()))) return Number(v);
        return v;
      },
    };
  }

  function field(schema, value, o) {
    schema = schema || {};
    const t = types(schema);
    let part;
    if (t.length === 1 && t[0] === "object" && schema.properties) part = objectFields(schema, value, o);
    else if (t.length === 1 && t[0] === "object") part = mapRows(schema, value, o);
    else if (t.length === 1 && t[0] === "array" && schema.items && schema.items.properties) part = arrayOfObjects(schema, value, o);
    else if (schema.enum || (t.length && t.every((x) => ["string", "number", "integer", "boolean"].includes(x)))) part = scalar(schema, value, o);
    else part = jsonArea(schema, value, o);
    const label = h("label", { class: "f-label" }, o.label || "", o.required ? h("span", { class: "req", title: "required" }, " *") : null);
    const nested = t.includes("object") || (t.includes("array") && schema.items && schema.items.properties);
    if (nested && !o.required) {
      // Optional sections (auth, poll, compensate, ...) stay folded until they hold something.
      const filled = value !== undefined && value !== null;
      const wrap = h("details", { class: "f nested", "data-field": o.path, open: filled }, h("summary", {}, label), part.el);
      return { el: wrap, read: part.read };
    }
    const wrap = h(nested ? "fieldset" : "div", { class: "f" + (nested ? " nested" : ""), "data-field": o.path },
      nested ? h("legend", {}, label) : label, schema.description && nested ? h("small", { class: "muted" }, schema.description) : null, part.el);
    return { el: wrap, read: part.read };
  }

  /* Entry point: a form for an object schema. */
  function build(schema, value, options) {
    const o = { path: "", onChange: () => {}, readOnly: false, ...options, root: true };
    if (!schema || (types(schema)[0] === "object" && !schema.properties && schema.additionalProperties === false)) {
      return { el: h("p", { class: "muted small" }, "Nothing to configure."), read: () => (value && Object.keys(value).length ? value : undefined) };
    }
    if (types(schema)[0] === "object" && schema.properties) return objectFields(schema, value, o);
    return field(schema, value, o);
  }

  /* Put errors ([{path, message}], paths relative to the form) on the deepest field they concern. */
  function showErrors(root, errors) {
    root.querySelectorAll(".field-error").forEach((e) => e.remove());
    root.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
    const unplaced = [];
    errors.forEach((err) => {
      let path = err.path;
      let target = null;
      while (path !== null) {
        target = root.querySelector(`[data-field="${CSS.escape(path)}"]`) || root.querySelector(`[data-path="${CSS.escape(path)}"]`);
        if (target || path === "") break;
        path = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : null;
      }
      if (!target || path === "") { unplaced.push(err); return; }
      if (/^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName)) { target.classList.add("invalid"); target = target.parentElement; }
      target.classList.add("invalid");
      for (let d = target.closest("details"); d; d = d.parentElement && d.parentElement.closest("details")) d.open = true;
      target.append(h("p", { class: "field-error error" }, err.message));
    });
    return unplaced;
  }

  window.WeftSchemaForm = { build, showErrors, h };
})();
