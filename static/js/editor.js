/* The visual workflow editor.
 *
 * The draft graph lives in `state.graph` (the workflow JSON of WORKFLOW_FORMAT.md). The canvas is
 * redrawn from it with the automatic layout (graph_view.js); the inspector edits one node through
 * forms generated from its type's JSON Schema (schema_form.js); the JSON view edits it all at once.
 * Saving posts the graph and gets back every validation error as {path, message}; an error under
 * /nodes/<i>/... marks node i on the canvas and the field it names in the inspector.
 * The test panel runs the active version and follows the run over the websocket.
 */
(function () {
  "use strict";
  const { h, build, showErrors } = window.WeftSchemaForm;
  const data = JSON.parse(document.getElementById("editor-data").textContent);
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
  const state = {
    graph: normalise(data.graph), selected: null, selectedEdge: null, connectFrom: null,
    errors: data.errors || [], dirty: false, runStatus: null, runId: null, follower: null,
  };
  const $ = (sel) => document.querySelector(sel);
  const svg = $("#canvas");
  const titles = Object.fromEntries(Object.entries(data.nodeTypes).map(([k, v]) => [k, v.title]));

  const NODE_OPTIONS = {
    type: "object",
    properties: {
      run: { enum: ["normal", "skip"], description: "skip: recorded as skipped, successors still run" },
      timeout: { type: "number", description: "seconds per attempt" },
      on_error: { enum: ["fail", "continue", "branch", "rollback"] },
      retry: { type: "object", properties: { count: { type: "integer" }, interval: { type: "number" }, backoff: { enum: ["fixed", "exponential", "random"] }, max_interval: { type: "number" } } },
    },
  };
  const DEFAULT_CONFIG = {
    transform: { mapping: {} }, end: { outputs: {} }, condition: { cases: [{ id: "yes", when: "true" }] },
    http: { method: "GET", url: "https://example.com" }, delay: { mode: "fixed", seconds: 1 },
  };

  function normalise(g) {
    g = g && typeof g === "object" ? g : {};
    return { inputs: g.inputs || {}, outputs: g.outputs || {}, params: g.params || {}, ...g, nodes: g.nodes || [], edges: g.edges || [] };
  }

  async function post(url, body) {
    const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" }, body: JSON.stringify(body || {}), credentials: "same-origin" });
    let json = {};
    try { json = await res.json(); } catch (e) { json = { ok: false, errors: [{ path: "", message: `HTTP ${res.status}` }] }; }
    json.httpStatus = res.status;
    return json;
  }

  function setStatus(text, kind) {
    const s = $("#editor-status");
    s.textContent = text;
    s.className = "status-line " + (kind || "");
  }

  function markDirty() {
    state.dirty = true;
    setStatus("Unsaved changes", "warn");
  }

  /* ---------- errors by node and edge ---------- */
  function errorIndex() {
    const byNode = {}, byEdge = {}, general = [];
    state.errors.forEach((e) => {
      const m = /^\/nodes\/(\d+)(\/.*)?$/.exec(e.path || "");
      const em = /^\/edges\/(\d+)(\/.*)?$/.exec(e.path || "");
      if (m && state.graph.nodes[+m[1]]) {
        const id = state.graph.nodes[+m[1]].id || `#${m[1]}`;
        (byNode[id] = byNode[id] || []).push(`${m[2] || ""}: ${e.message}`.replace(/^: /, ""));
      } else if (em) {
        (byEdge[+em[1]] = byEdge[+em[1]] || []).push(e.message);
      } else general.push(e);
    });
    return { byNode, byEdge, general };
  }

  function renderErrors() {
    const box = $("#errors");
    box.innerHTML = "";
    if (!state.errors.length) {
      box.append(h("p", { class: "ok" }, "✓ No problems: this draft can be published."));
      return;
    }
    box.append(h("p", { class: "error" }, `${state.errors.length} problem${state.errors.length > 1 ? "s" : ""} to fix before publishing:`));
    const ul = h("ul", { class: "error-list" });
    state.errors.forEach((e) => {
      const m = /^\/nodes\/(\d+)/.exec(e.path || "");
      const node = m ? state.graph.nodes[+m[1]] : null;
      ul.append(h("li", { class: node ? "clickable" : "", onclick: node ? () => select(node.id) : null }, h("code", {}, e.path || "/"), " ", e.message));
    });
    box.append(ul);
  }

  /* ---------- canvas ---------- */
  function drawCanvas() {
    const idx = errorIndex();
    WeftGraph.render(svg, state.graph, {
      editable: data.canEdit && !state.runStatus, selected: state.selected, selectedEdge: state.selectedEdge,
      status: state.runStatus, errors: idx.byNode, edgeErrors: idx.byEdge, titles, connectFrom: state.connectFrom,
      onNode: (id) => {
        if (state.connectFrom) { connect(state.connectFrom.id, id, state.connectFrom.port); return; }
        select(id);
      },
      onEdge: (i) => { state.selected = null; state.selectedEdge = i; drawCanvas(); drawInspector(); },
      onHandle: (id, port) => {
        state.connectFrom = state.connectFrom && state.connectFrom.id === id && state.connectFrom.port === port ? null : { id, port };
        setStatus(state.connectFrom ? `Connecting from ${id}${port ? " (" + port + ")" : ""}: click the target node` : "", "info");
        drawCanvas();
      },
      onBackground: () => { state.connectFrom = null; select(null); },
    });
  }

  function select(id) {
    state.selected = id;
    state.selectedEdge = null;
    drawCanvas();
    drawInspector();
  }

  function connect(from, to, port) {
    state.connectFrom = null;
    if (from === to) { setStatus("A node cannot connect to itself.", "warn"); drawCanvas(); return; }
    const edge = { from, to };
    if (port) edge.port = port;
    if (!state.graph.edges.some((e) => e.from === from && e.to === to && (e.port || null) === (port || null))) state.graph.edges.push(edge);
    markDirty();
    drawCanvas();
    drawInspector();
  }

  function uniqueId(base) {
    const ids = new Set(state.graph.nodes.map((n) => n.id));
    let i = 1;
    while (ids.has(`${base}${i}`)) i++;
    return `${base}${i}`;
  }

  function addNode(type) {
    const id = type === "start" && !state.graph.nodes.some((n) => n.id === "start") ? "start" : uniqueId(type.replace(/[^a-z0-9_]/g, "_"));
    const node = { id, type };
    if (DEFAULT_CONFIG[type]) node.config = JSON.parse(JSON.stringify(DEFAULT_CONFIG[type]));
    state.graph.nodes.push(node);
    if (state.selected && state.selected !== id) {
      // Adding while a node is selected inserts the new node after it (the usual way to build a chain).
      const prev = state.selected;
      const out = state.graph.edges.filter((e) => e.from === prev && !e.port);
      state.graph.edges = state.graph.edges.filter((e) => !(e.from === prev && !e.port));
      state.graph.edges.push({ from: prev, to: id });
      out.forEach((e) => state.graph.edges.push({ ...e, from: id }));
    }
    markDirty();
    select(id);
  }

  function removeNode(id) {
    state.graph.nodes = state.graph.nodes.filter((n) => n.id !== id);
    state.graph.edges = state.graph.edges.filter((e) => e.from !== id && e.to !== id);
    markDirty();
    select(null);
  }

  function renameNode(node, newId) {
    const old = node.id;
    node.id = newId;
    state.graph.edges.forEach((e) => { if (e.from === old) e.from = newId; if (e.to === old) e.to = newId; });
    if (state.selected === old) state.selected = newId;
  }

  /* ---------- inspector ---------- */
  function drawInspector() {
    const box = $("#inspector");
    box.innerHTML = "";
    const ro = !data.canEdit;
    if (state.selectedEdge !== null && state.graph.edges[state.selectedEdge]) {
      const e = state.graph.edges[state.selectedEdge];
      box.append(h("h3", {}, "Edge"), h("p", {}, h("code", {}, e.from), " → ", h("code", {}, e.to), e.port ? ` on port “${e.port}”` : ""));
      if (!ro) box.append(h("button", { class: "danger", id: "remove-edge", onclick: () => { state.graph.edges.splice(state.selectedEdge, 1); state.selectedEdge = null; markDirty(); drawCanvas(); drawInspector(); } }, "Remove edge"));
      return;
    }
    const index = state.graph.nodes.findIndex((n) => n.id === state.selected);
    if (index < 0) { drawWorkflowSettings(box, ro); return; }
    const node = state.graph.nodes[index];
    const type = data.nodeTypes[node.type] || { title: node.type, schema: { type: "object" } };
    box.dataset.nodeIndex = index;
    box.append(h("h3", {}, type.title, " ", h("span", { class: "muted small" }, node.type)));
    const idInput = h("input", { value: node.id, "data-path": "/id", id: "node-id", disabled: ro, pattern: "[a-z][a-z0-9_]{0,63}" });
    idInput.addEventListener("change", () => { renameNode(node, idInput.value.trim()); markDirty(); drawCanvas(); });
    const nameInput = h("input", { value: node.name || "", "data-path": "/name", placeholder: "optional display name", disabled: ro });
    nameInput.addEventListener("input", () => { if (nameInput.value) node.name = nameInput.value; else delete node.name; markDirty(); drawCanvas(); });
    box.append(h("div", { class: "f", "data-field": "/id" }, h("label", { class: "f-label" }, "id"), idInput), h("div", { class: "f", "data-field": "/name" }, h("label", { class: "f-label" }, "name"), nameInput));
    const cfgForm = build(type.schema, node.config, {
      path: "/config", readOnly: ro,
      onChange: () => { const v = cfgForm.read(); if (v === undefined) delete node.config; else node.config = v; markDirty(); drawCanvas(); },
    });
    const cfgBox = h("fieldset", { class: "config", "data-field": "/config" }, h("legend", {}, "Configuration"), cfgForm.el);
    const optValue = {};
    ["run", "timeout", "on_error", "retry"].forEach((k) => { if (node[k] !== undefined) optValue[k] = node[k]; });
    const optForm = build(NODE_OPTIONS, optValue, {
      path: "", readOnly: ro,
      onChange: () => {
        const v = optForm.read() || {};
        ["run", "timeout", "on_error", "retry"].forEach((k) => { if (v[k] === undefined) delete node[k]; else node[k] = v[k]; });
        markDirty(); drawCanvas();
      },
    });
    box.append(cfgBox, h("details", { class: "options", open: Object.keys(optValue).length > 0 }, h("summary", {}, "Runtime options (retry, timeout, on error)"), optForm.el));
    // Outgoing edges and a keyboard-friendly way to connect.
    const outs = h("ul", { class: "edge-list" });
    state.graph.edges.forEach((e, i) => {
      if (e.from !== node.id) return;
      outs.append(h("li", {}, "→ ", h("code", {}, e.to), e.port ? ` (${e.port})` : "",
        ro ? null : h("button", { class: "link small", title: "Remove edge", onclick: () => { state.graph.edges.splice(i, 1); markDirty(); drawCanvas(); drawInspector(); } }, "✕")));
    });
    box.append(h("h4", {}, "Next nodes"), outs);
    if (!ro) {
      const target = h("select", { id: "connect-target" }, state.graph.nodes.filter((n) => n.id !== node.id).map((n) => h("option", { value: n.id }, n.id)));
      const port = h("select", { id: "connect-port" }, WeftGraph.nodePorts(node).map((p) => h("option", { value: p || "" }, p || "(normal)")));
      box.append(h("div", { class: "connect-row" }, target, port, h("button", { class: "small", id: "connect-add", onclick: () => connect(node.id, target.value, port.value || null) }, "Connect")));
      box.append(h("p", {}, h("button", { class: "danger small", id: "remove-node", onclick: () => removeNode(node.id) }, "Remove node")));
    }
    const rel = state.errors.filter((e) => (e.path || "").startsWith(`/nodes/${index}/`) || e.path === `/nodes/${index}`)
      .map((e) => ({ path: e.path.slice(`/nodes/${index}`.length), message: e.message }));
    const unplaced = showErrors(box, rel);
    if (unplaced.length) box.prepend(h("div", { class: "errors" }, unplaced.map((e) => h("p", {}, e.message))));
    if (state.runStatus && state.runStatus[node.id]) box.append(nodeRunDetails(state.runStatus[node.id]));
  }

  function nodeRunDetails(st) {
    const pre = (v) => h("pre", { class: "code small" }, JSON.stringify(v, null, 2));
    return h("div", { class: "run-node" }, h("h4", {}, "Last test run"),
      h("p", {}, h("span", { class: `badge st-${st.status}` }, st.status), ` attempt ${st.attempt || 1}`, st.elapsed ? ` · ${Number(st.elapsed).toFixed(3)} s` : ""),
      st.error ? h("div", {}, h("strong", {}, "Error"), pre(st.error)) : null,
      h("details", {}, h("summary", {}, "Inputs"), pre(st.inputs)),
      h("details", { open: true }, h("summary", {}, "Outputs"), pre(st.outputs)));
  }

  const INPUT_TYPES = ["string", "number", "integer", "boolean", "object", "array", "file"];

  function drawWorkflowSettings(box, ro) {
    box.append(h("h3", {}, "Workflow"), h("p", { class: "muted small" }, "Select a node to configure it. Click a node's right handle, then another node, to connect them."));
    const rows = h("tbody", {});
    const inputs = state.graph.inputs || {};
    const write = () => {
      const out = {};
      rows.querySelectorAll("tr").forEach((tr) => {
        const name = tr.querySelector(".in-name").value.trim();
        if (!name) return;
        const decl = { type: tr.querySelector(".in-type").value };
        if (tr.querySelector(".in-req").checked) decl.required = true;
        const desc = tr.querySelector(".in-desc").value;
        if (desc) decl.description = desc;
        const prev = inputs[tr.dataset.orig] || {};
        ["default", "enum"].forEach((k) => { if (prev[k] !== undefined) decl[k] = prev[k]; });
        out[name] = decl;
      });
      state.graph.inputs = out;
      markDirty();
    };
    const addRow = (name, decl) => {
      const tr = h("tr", { "data-orig": name || "", "data-field": `/inputs/${name || ""}` },
        h("td", {}, h("input", { class: "in-name", value: name || "", disabled: ro, oninput: write, placeholder: "name" })),
        h("td", {}, h("select", { class: "in-type", disabled: ro, onchange: write }, INPUT_TYPES.map((t) => h("option", { value: t, selected: (decl.type || "string") === t }, t)))),
        h("td", {}, h("input", { type: "checkbox", class: "in-req", checked: !!decl.required, disabled: ro, onchange: write })),
        h("td", {}, h("input", { class: "in-desc", value: decl.description || "", disabled: ro, oninput: write, placeholder: "description" })),
        h("td", {}, ro ? null : h("button", { class: "link small", onclick: () => { tr.remove(); write(); } }, "✕")));
      rows.append(tr);
    };
    Object.entries(inputs).forEach(([k, v]) => addRow(k, v || {}));
    box.append(h("h4", {}, "Inputs"), h("table", { class: "table compact", id: "inputs-table" }, h("thead", {}, h("tr", {}, ["name", "type", "req.", "description", ""].map((t) => h("th", {}, t)))), rows));
    if (!ro) box.append(h("button", { class: "small", id: "add-input", onclick: () => addRow("", { type: "string" }) }, "+ input"));
    const params = build({ type: "object" }, state.graph.params, { path: "/params", readOnly: ro, onChange: () => { state.graph.params = params.read() || {}; markDirty(); } });
    box.append(h("h4", {}, "Workflow parameters ", h("span", { class: "muted small" }, "${name}")), params.el);
    const outputs = build({}, state.graph.outputs, { path: "/outputs", readOnly: ro, onChange: () => { state.graph.outputs = outputs.read() || {}; markDirty(); } });
    box.append(h("h4", {}, "Declared outputs ", h("span", { class: "muted small" }, "JSON, like inputs")), outputs.el);
    const idx = errorIndex();
    showErrors(box, idx.general);
  }

  /* ---------- JSON view ---------- */
  function toggleJson(on) {
    const area = $("#json-view");
    $("#json-panel").hidden = !on;
    $("#visual-panel").hidden = on;
    if (on) area.value = JSON.stringify(state.graph, null, 2);
  }

  function applyJson() {
    try {
      state.graph = normalise(JSON.parse($("#json-view").value));
      $("#json-error").textContent = "";
      markDirty();
      toggleJson(false);
      select(null);
    } catch (e) {
      $("#json-error").textContent = "Invalid JSON: " + e.message;
    }
  }

  /* ---------- save, validate, publish ---------- */
  async function save() {
    setStatus("Saving…", "info");
    const res = await post(data.urls.save, { graph: state.graph });
    state.errors = res.errors || [];
    if (res.ok) { state.dirty = false; setStatus(state.errors.length ? "Draft saved (with problems)" : "Draft saved", state.errors.length ? "warn" : "ok"); }
    else setStatus(res.detail || "Could not save", "error");
    renderErrors(); drawCanvas(); drawInspector();
    return res.ok;
  }

  async function validate() {
    const res = await post(data.urls.validate, { graph: state.graph });
    state.errors = res.errors || [];
    setStatus(state.errors.length ? `${state.errors.length} problem(s)` : "Valid", state.errors.length ? "warn" : "ok");
    renderErrors(); drawCanvas(); drawInspector();
  }

  async function publish() {
    if (!(await save())) return;
    if (state.errors.length) { setStatus("Fix the problems before publishing", "error"); return; }
    const res = await post(data.urls.publish, {});
    if (res.ok) {
      data.activeVersion = res.version;
      data.inputsSchema = res.inputsSchema;
      setStatus(`Published version ${res.version}`, "ok");
      $("#active-version").textContent = `v${res.version}`;
      drawTestPanel();
    } else {
      state.errors = res.errors || [];
      setStatus(res.detail || "Could not publish", "error");
      renderErrors(); drawCanvas(); drawInspector();
    }
  }

  /* ---------- test panel ---------- */
  let inputsForm = null;
  function drawTestPanel() {
    const box = $("#test-inputs");
    box.innerHTML = "";
    if (!data.activeVersion) {
      box.append(h("p", { class: "muted" }, "Publish the workflow to test it."));
      $("#run-btn") && ($("#run-btn").disabled = true);
      return;
    }
    box.append(h("p", { class: "muted small" }, `Runs the active version (v${data.activeVersion}).`));
    inputsForm = build(data.inputsSchema || { type: "object", properties: {} }, {}, { path: "/inputs", onChange: () => {} });
    box.append(inputsForm.el);
    $("#run-btn") && ($("#run-btn").disabled = false);
  }

  function updateRunInfo(text, status) {
    const el = $("#run-info");
    el.innerHTML = "";
    el.append(status ? h("span", { class: `badge st-${status}`, id: "run-status" }, status) : "", " ", text || "");
  }

  async function runTest() {
    const inputs = (inputsForm && inputsForm.read()) || {};
    showErrors($("#test-inputs"), []);
    const res = await post(data.urls.run, { inputs });
    if (!res.ok) {
      const unplaced = showErrors($("#test-inputs"), res.errors || []);
      updateRunInfo(res.detail + (unplaced.length ? ": " + unplaced.map((e) => e.message).join("; ") : ""), "failed");
      return;
    }
    if (state.follower) state.follower.close();
    state.runId = res.runId;
    state.runStatus = {};
    $("#stop-btn").hidden = false;
    const link = h("a", { href: data.urls.runPage.replace("__ID__", res.runId), id: "run-link" }, "open run");
    updateRunInfo("", "pending");
    $("#run-info").append(link);
    drawCanvas();
    state.follower = WeftRunLive.follow(res.runId, 0, {
      onEvent: (ev) => {
        WeftRunLive.nodeState(state.runStatus, ev);
        if (ev.type === "run_started" || ev.type === "run_resumed") updateRunInfo("", "running");
        if (ev.type === "run_finished") {
          const d = ev.data || {};
          updateRunInfo(d.error ? JSON.stringify(d.error) : `outputs ${JSON.stringify(d.outputs)}`, d.status);
          $("#run-info").append(" ", link);
          $("#stop-btn").hidden = true;
        }
        drawCanvas();
        if (state.selected) drawInspector();
      },
    });
  }

  async function stopRun() {
    if (!state.runId) return;
    await post(data.urls.stop.replace("__ID__", state.runId), {});
    setStatus("Stop requested", "info");
  }

  function clearRun() {
    if (state.follower) state.follower.close();
    state.runStatus = null;
    state.runId = null;
    $("#stop-btn").hidden = true;
    updateRunInfo("");
    drawCanvas();
    drawInspector();
  }

  /* ---------- wiring ---------- */
  const palette = $("#palette");
  if (palette) {
    Object.entries(data.nodeTypes).forEach(([type, nt]) => {
      palette.append(h("button", { type: "button", class: `palette-item type-${type}`, "data-type": type, onclick: () => addNode(type) }, "+ ", nt.title));
    });
  }
  const on = (sel, ev, fn) => { const e = $(sel); if (e) e.addEventListener(ev, fn); };
  on("#save-btn", "click", save);
  on("#validate-btn", "click", validate);
  on("#publish-btn", "click", publish);
  on("#json-btn", "click", () => toggleJson($("#json-panel").hidden));
  on("#json-apply", "click", applyJson);
  on("#json-cancel", "click", () => toggleJson(false));
  on("#run-btn", "click", runTest);
  on("#stop-btn", "click", stopRun);
  on("#clear-run-btn", "click", clearRun);
  document.addEventListener("keydown", (ev) => {
    if (!data.canEdit || /INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName)) return;
    if (ev.key === "Delete" || ev.key === "Backspace") {
      if (state.selectedEdge !== null) { state.graph.edges.splice(state.selectedEdge, 1); state.selectedEdge = null; markDirty(); drawCanvas(); drawInspector(); }
      else if (state.selected) removeNode(state.selected);
    } else if (ev.key === "Escape") { state.connectFrom = null; select(null); }
  });
  window.addEventListener("beforeunload", (ev) => { if (state.dirty) { ev.preventDefault(); ev.returnValue = ""; } });
  window.weftEditor = { state, save, publish, select, connect, addNode };
  renderErrors();
  drawCanvas();
  drawInspector();
  drawTestPanel();
})();
