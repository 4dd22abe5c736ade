/* Pure helpers over the workflow graph (WORKFLOW_FORMAT.md): ports, references, renames,
 * layout, error paths in words. Nothing here touches the DOM or React. */
import dagre from "@dagrejs/dagre";

export const NODE_ID_RE = /^[a-z][a-z0-9_]{0,63}$/;
export const VAR_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
export const NODE_W = 200;
export const NODE_H = 64;
export const LOOP_PAD = 24;
export const LOOP_HEAD = 56;

export const clone = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

export function normalise(g) {
  g = g && typeof g === "object" && !Array.isArray(g) ? g : {};
  return { ...g, inputs: g.inputs || {}, outputs: g.outputs || {}, params: g.params || {}, nodes: g.nodes || [], edges: g.edges || [] };
}

/** Outcome ports of a node: null is the normal outcome. */
export function nodePorts(node, edges) {
  const cfg = node.config || {};
  let ports;
  if (node.type === "end") ports = [];
  else if (node.type === "condition") {
    ports = (cfg.cases || []).filter((c) => c && c.id).map((c) => c.id);
    ports.push("else");
    // A normal edge out of a condition (allowed by the format) keeps a handle to hang on.
    if ((edges || []).some((e) => e.from === node.id && !e.port)) ports.unshift(null);
  } else ports = [null];
  if (node.on_error === "branch") ports.push("error");
  return ports;
}

export const hasInput = (node) => node.type !== "start";

/** The loop body of a node (created on demand), or null. */
export function bodyOf(node) {
  if (node.type !== "loop") return null;
  node.config = node.config || {};
  node.config.body = node.config.body || { nodes: [], edges: [] };
  node.config.body.nodes = node.config.body.nodes || [];
  node.config.body.edges = node.config.body.edges || [];
  return node.config.body;
}

/** The container (graph or loop body) a flow id lives in: {container, node, parentId}. */
export function locate(graph, flowId) {
  const parts = flowId.split("/");
  let container = graph, parentId = null, node = null;
  for (let i = 0; i < parts.length; i++) {
    node = container.nodes.find((n) => n.id === parts[i]);
    if (!node) return null;
    if (i < parts.length - 1) {
      parentId = parts.slice(0, i + 1).join("/");
      container = bodyOf(node);
    }
  }
  return { container, node, parentId };
}

export function containerOf(graph, parentId) {
  if (!parentId) return graph;
  const loc = locate(graph, parentId);
  return loc ? bodyOf(loc.node) : null;
}

export function uniqueId(graph, base) {
  const taken = new Set();
  const walk = (c) => c.nodes.forEach((n) => { taken.add(n.id); const b = n.type === "loop" && n.config && n.config.body; if (b && b.nodes) walk(b); });
  walk(graph);
  base = (base || "node").toLowerCase().replace(/[^a-z0-9_]/g, "_").replace(/^[^a-z]+/, "") || "node";
  if (!taken.has(base) && base !== "start") return base;
  let i = 1;
  while (taken.has(`${base}${i}`)) i++;
  return `${base}${i}`;
}

/** Ids of the nodes upstream of `id` inside one container. */
export function ancestors(container, id) {
  const seen = new Set();
  const stack = [id];
  while (stack.length) {
    const cur = stack.pop();
    container.edges.forEach((e) => { if (e.to === cur && !seen.has(e.from)) { seen.add(e.from); stack.push(e.from); } });
  }
  seen.delete(id);
  return [...seen];
}

/** Names in scope for a node's expressions: {nodes: [ids], inLoop: bool, onErrorBranch: bool}. */
export function scopeFor(graph, flowId) {
  const parts = flowId.split("/");
  const nodes = [];
  let container = graph;
  for (let i = 0; i < parts.length; i++) {
    nodes.push(...ancestors(container, parts[i]));
    const n = container.nodes.find((x) => x.id === parts[i]);
    if (!n) break;
    if (i < parts.length - 1) container = bodyOf(n);
  }
  const loc = locate(graph, flowId);
  const viaError = loc ? loc.container.edges.some((e) => e.to === loc.node.id && e.port === "error") : false;
  return { nodes: [...new Set(nodes)], inLoop: parts.length > 1, onErrorBranch: viaError };
}

/* ---------- references and renames ---------- */

// Splits a CEL source into code and string-literal pieces so renames never touch literals.
function mapCode(src, fn) {
  let out = "", i = 0, code = "";
  while (i < src.length) {
    const c = src[i];
    if (c === '"' || c === "'") {
      out += fn(code); code = "";
      let j = i + 1;
      while (j < src.length && src[j] !== c) j += src[j] === "\\" ? 2 : 1;
      out += src.slice(i, j + 1);
      i = j + 1;
    } else { code += c; i++; }
  }
  return out + fn(code);
}

export function renameInString(s, oldId, newId) {
  if (typeof s !== "string" || !s.includes(oldId)) return s;
  const re = new RegExp(`(^|[^\\w.$])${oldId.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}(?![\\w])`, "g");
  return s.replace(/\{\{(?!\{)([\s\S]*?)\}\}/g, (m, inner) => `{{${mapCode(inner, (code) => code.replace(re, `$1${newId}`))}}}`);
}

export function renameInValue(v, oldId, newId) {
  if (typeof v === "string") return renameInString(v, oldId, newId);
  if (Array.isArray(v)) return v.map((x) => renameInValue(x, oldId, newId));
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, renameInValue(x, oldId, newId)]));
  return v;
}

/** Rename node `flowId` to `newId`, rewriting edges and every expression that names it. */
export function renameNode(graph, flowId, newId) {
  const loc = locate(graph, flowId);
  if (!loc) return graph;
  const oldId = loc.node.id;
  loc.node.id = newId;
  loc.container.edges.forEach((e) => { if (e.from === oldId) e.from = newId; if (e.to === oldId) e.to = newId; });
  // Expressions anywhere may name it: the nodes after it, and bodies of loops after it.
  const walk = (c) => c.nodes.forEach((n) => {
    ["config", "compensate"].forEach((k) => { if (n[k] !== undefined) n[k] = renameInValue(n[k], oldId, newId); });
  });
  walk(graph);
  if (graph.outputs) graph.outputs = renameInValue(graph.outputs, oldId, newId);
  return graph;
}

/* ---------- layout (on request) ---------- */

export function nodeSize(node) {
  if (node.type !== "loop") return { width: NODE_W, height: NODE_H };
  const body = (node.config && node.config.body && node.config.body.nodes) || [];
  let w = 420, h = 220;
  body.forEach((b) => {
    const p = b.position || { x: 0, y: 0 };
    const s = nodeSize(b);
    w = Math.max(w, p.x + s.width + LOOP_PAD);
    h = Math.max(h, p.y + s.height + LOOP_PAD);
  });
  return { width: w, height: h };
}

/** Positions for every node of a container (left to right). `only` limits which nodes move. */
export function layoutContainer(container, { only = null, origin = { x: 0, y: 0 } } = {}) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 36, ranksep: 60, marginx: 0, marginy: 0 });
  g.setDefaultEdgeLabel(() => ({}));
  container.nodes.forEach((n) => { const s = nodeSize(n); g.setNode(n.id, { width: s.width, height: s.height }); });
  container.edges.forEach((e) => { if (g.hasNode(e.from) && g.hasNode(e.to)) g.setEdge(e.from, e.to); });
  dagre.layout(g);
  container.nodes.forEach((n) => {
    if (only && !only.has(n.id)) return;
    const p = g.node(n.id);
    const s = nodeSize(n);
    n.position = { x: Math.round(origin.x + p.x - s.width / 2), y: Math.round(origin.y + p.y - s.height / 2) };
  });
}

/** Lay out everything (loop bodies first, so that loops know their size). */
export function autoLayout(graph) {
  const walk = (c, inBody) => {
    c.nodes.forEach((n) => { const b = n.type === "loop" && n.config && n.config.body; if (b && b.nodes && b.nodes.length) walk(b, true); });
    layoutContainer(c, { origin: inBody ? { x: LOOP_PAD, y: LOOP_HEAD } : { x: 0, y: 0 } });
  };
  walk(graph, false);
  return graph;
}

/** Place nodes that have no position yet (graphs made through the API), leaving the rest alone. */
export function placeMissing(graph) {
  let changed = false;
  const walk = (c, inBody) => {
    c.nodes.forEach((n) => { const b = n.type === "loop" && n.config && n.config.body; if (b && b.nodes) walk(b, true); });
    const missing = new Set(c.nodes.filter((n) => !n.position || typeof n.position.x !== "number").map((n) => n.id));
    if (!missing.size) return;
    changed = true;
    if (missing.size === c.nodes.length) layoutContainer(c, { origin: inBody ? { x: LOOP_PAD, y: LOOP_HEAD } : { x: 0, y: 0 } });
    else {
      const maxY = Math.max(...c.nodes.filter((n) => !missing.has(n.id)).map((n) => n.position.y + nodeSize(n).height));
      let x = 0;
      c.nodes.forEach((n) => { if (missing.has(n.id)) { n.position = { x, y: maxY + 60 }; x += NODE_W + 40; } });
    }
  };
  walk(graph, false);
  return changed;
}

/* ---------- errors in words ---------- */

const FIELD_WORDS = {
  url: "URL", method: "method", args: "URL arguments", headers: "headers", query: "query", body: "body", auth: "authentication",
  credential: "credential", cases: "cases", when: "condition", mapping: "mapping", source: "source", outputs: "outputs",
  items: "items", parallelism: "parallelism", output: "output", on_item_error: "on item error", workflow: "workflow",
  inputs: "inputs", seconds: "seconds", mode: "mode", success: "success rule", poll: "polling", webhook: "webhook",
  timeout: "timeout", retry: "retry", on_error: "on error", run: "run", id: "id", name: "name", compensate: "compensation",
  params: "parameters", query_text: "query", message: "message", routing_key: "routing key", target: "target",
};

export const fieldWords = (key) => FIELD_WORDS[key] || String(key).replace(/_/g, " ");

/** A JSON-Schema or validator message rewritten for a person. */
export function humanMessage(msg) {
  if (!msg) return "";
  let m = String(msg);
  let r;
  if ((r = /^invalid expression '([\s\S]*)': syntax error: mismatched input '<EOF>'/.exec(m))) return `the expression {{ ${r[1]} }} is incomplete: something is missing at its end`;
  if ((r = /^invalid expression '([\s\S]*)': syntax error: (?:mismatched|extraneous) input '([^']*)'/.exec(m))) return `the expression {{ ${r[1]} }} has a syntax error near “${r[2]}”`;
  if ((r = /^invalid expression '([\s\S]*)': syntax error: token recognition error at: '([^']*)'/.exec(m))) return `the expression {{ ${r[1]} }} has a character it cannot read: “${r[2]}”`;
  if ((r = /^invalid expression '([\s\S]*)': ([\s\S]*)$/.exec(m))) return `the expression {{ ${r[1]} }} is not valid (${r[2].split(":")[0]})`;
  if ((r = /^unknown name '([^']*)'/.exec(m))) return `“${r[1]}” is not an input, an upstream node or a known name here`;
  if ((r = /^unknown parameter \$\{([^}]*)\}/.exec(m))) return `the parameter \${${r[1]}} is not defined (add it to the workflow's or the team's parameters)`;
  if ((r = /^'' should be non-empty/.exec(m))) return "must not be empty";
  if ((r = /^'([^']*)' is a required property/.exec(m))) return `“${fieldWords(r[1])}” is required`;
  if ((r = /^(.*) is not one of \[(.*)\]$/.exec(m))) return `must be one of ${r[2].replace(/'/g, "")}`;
  if ((r = /^(.*) is not of type '([^']*)'/.exec(m))) return `must be ${/^[aeiou]/.test(r[2]) ? "an" : "a"} ${r[2]}`;
  if ((r = /^Additional properties are not allowed \((.*) (?:was|were) unexpected\)/.exec(m))) return `unknown field${r[1].includes(",") ? "s" : ""} ${r[1].replace(/'/g, "")}`;
  if ((r = /^(.*) should be non-empty/.exec(m))) return "must not be empty";
  if ((r = /^(.*) is too short/.exec(m))) return "needs at least one entry";
  if ((r = /^invalid name '([^']*)'/.exec(m))) return `“${r[1]}” is not a valid name: use letters, digits and _ (not starting with a digit)`;
  return m.replace(/\/nodes\/\d+(\/[\w/]*)?/g, "this node");
}

/**
 * Where an error path points, in the graph it was computed for:
 * {flowId, field: "/config/url" (relative to the node) or null, place: words, scope: "node"|"edge"|"inputs"|...}
 */
export function errorPlace(graph, path) {
  const parts = (path || "").split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  let container = graph, flowPrefix = "", i = 0, node = null, flowId = null;
  while (parts[i] === "nodes" && parts[i + 1] !== undefined) {
    node = container.nodes[+parts[i + 1]];
    if (!node) break;
    flowId = flowPrefix + node.id;
    i += 2;
    if (parts[i] === "config" && parts[i + 1] === "body" && parts[i + 2] === "nodes" && node.type === "loop") {
      container = (node.config && node.config.body) || { nodes: [], edges: [] };
      container.nodes = container.nodes || [];
      flowPrefix = flowId + "/";
      i += 2;
      continue;
    }
    break;
  }
  if (flowId) {
    const rest = parts.slice(i);
    const field = rest.length ? "/" + rest.join("/") : null;
    const label = node.name || node.id;
    const words = rest.filter((p) => p !== "config" && !/^\d+$/.test(p)).map(fieldWords);
    return { flowId, field, scope: "node", place: `${label}${words.length ? " › " + words.join(" › ") : ""}` };
  }
  if (parts[0] === "edges") {
    const e = graph.edges[+parts[1]];
    return { scope: "edge", edge: e, place: e ? `the connection ${e.from} → ${e.to}` : "a connection" };
  }
  if (parts[0] === "inputs") return { scope: "inputs", field: path, place: parts[1] !== undefined ? `input “${parts[1]}”` : "inputs" };
  if (parts[0] === "params") return { scope: "params", field: path, place: parts[1] !== undefined ? `parameter “${parts[1]}”` : "parameters" };
  if (parts[0] === "outputs") return { scope: "outputs", field: path, place: parts[1] !== undefined ? `output “${parts[1]}”` : "outputs" };
  return { scope: "graph", place: "the workflow" };
}

/** Every error resolved against the graph it was computed for. */
export function placeErrors(graph, errors) {
  return (errors || []).map((e) => ({ ...errorPlace(graph, e.path), path: e.path, message: humanMessage(e.message), raw: e.message }));
}

/* ---------- output shapes for completion ---------- */

/** What is known of a node's output: an example value (from the last run) or a shape from its type. */
export function outputShape(node, catalog, lastOutputs) {
  if (lastOutputs && lastOutputs[node.id] !== undefined && lastOutputs[node.id] !== null) return lastOutputs[node.id];
  const t = catalog[node.type] || {};
  if (t.output) return t.output;
  const cfg = node.config || {};
  if (node.type === "transform" && cfg.mapping && typeof cfg.mapping === "object") return Object.fromEntries(Object.keys(cfg.mapping).map((k) => [k, null]));
  if (node.type === "end" && cfg.outputs) return Object.fromEntries(Object.keys(cfg.outputs).map((k) => [k, null]));
  return null;
}
