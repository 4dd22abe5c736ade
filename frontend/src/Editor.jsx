/* The workflow editor: the draft graph (WORKFLOW_FORMAT.md) is the only state; the canvas (React
 * Flow), the inspector and the test panel are views of it. Every edit goes through `commit`,
 * which keeps undo/redo history and autosaves the draft; the server answers with validation
 * errors, shown in words on the node and the field. */
import React, { useCallback, useEffect, useMemo, useRef, useState } from "react";
import {
  ReactFlow, ReactFlowProvider, Background, Controls, MiniMap, useReactFlow, MarkerType,
} from "@xyflow/react";
import { nodeTypes } from "./nodes.jsx";
import { Field, ObjectFields } from "./SchemaForm.jsx";
import ValueField from "./ValueField.jsx";
import TestPanel from "./TestPanel.jsx";
import { post } from "./runs.js";
import {
  NODE_ID_RE, VAR_NAME_RE, clone, normalise, nodePorts, hasInput, bodyOf, locate, containerOf, uniqueId, scopeFor,
  renameNode, renameInValue, autoLayout, placeMissing, nodeSize, placeErrors, outputShape, LOOP_PAD, LOOP_HEAD, NODE_W,
} from "./graph.js";

const DEFAULT_CONFIG = {
  transform: { mapping: {} }, end: { outputs: {} }, condition: { cases: [{ id: "yes", when: "true" }] },
  http: { method: "GET", url: "https://example.com" }, delay: { mode: "fixed", seconds: 1 },
  loop: { items: "{{ [] }}", body: { nodes: [], edges: [] } }, workflow: { workflow: "" },
};
const NODE_OPTIONS = {
  type: "object",
  properties: {
    run: { enum: ["normal", "skip"], description: "skip: recorded as skipped, the next nodes still run" },
    timeout: { type: "number", description: "seconds per attempt" },
    on_error: { enum: ["fail", "continue", "branch", "rollback"], description: "branch adds an “error” outcome" },
    retry: { type: "object", properties: { count: { type: "integer" }, interval: { type: "number" }, backoff: { enum: ["fixed", "exponential", "random"] }, max_interval: { type: "number" } } },
  },
};
const INPUT_TYPES = ["string", "number", "integer", "boolean", "object", "array", "file"];
const NARROW = "(max-width: 760px)";

function useNarrow() {
  const [narrow, setNarrow] = useState(() => window.matchMedia(NARROW).matches);
  useEffect(() => {
    const mq = window.matchMedia(NARROW);
    const on = () => setNarrow(mq.matches);
    mq.addEventListener("change", on);
    return () => mq.removeEventListener("change", on);
  }, []);
  return narrow;
}

const isTyping = (el) => el && (/INPUT|TEXTAREA|SELECT/.test(el.tagName) || el.isContentEditable || (el.closest && el.closest(".cm-editor")));

function Editor({ data }) {
  const narrow = useNarrow();
  const canEdit = data.canEdit && !narrow;
  const catalog = data.nodeTypes;
  const [graph, setGraph] = useState(() => { const g = normalise(clone(data.graph)); placeMissing(g); return g; });
  const [selection, setSelection] = useState({ nodes: [], edges: [] });
  const [errorsRaw, setErrorsRaw] = useState({ graph: normalise(clone(data.graph)), list: data.errors || [] });
  const [saveState, setSaveState] = useState("saved");
  const [notice, setNotice] = useState(null);
  const [runStates, setRunStates] = useState(null); // {nodes: {...}, finished, status}
  const [lastOutputs, setLastOutputs] = useState(data.lastRun ? data.lastRun.outputs || {} : {});
  const [lastRunId, setLastRunId] = useState(data.lastRun ? data.lastRun.id : null);
  const [activeVersion, setActiveVersion] = useState(data.activeVersion);
  const [jsonOpen, setJsonOpen] = useState(false);
  const [measured, setMeasured] = useState({});
  const history = useRef({ past: [], future: [], key: null, at: 0 });
  const graphRef = useRef(graph);
  graphRef.current = graph;
  const saveTimer = useRef(null);
  const savePromise = useRef(Promise.resolve(true));
  const flow = useReactFlow();
  const wrapper = useRef(null);
  const testPanel = useRef(null);

  /* ---------- history, autosave ---------- */
  const save = useCallback(async () => {
    clearTimeout(saveTimer.current);
    const snapshot = clone(graphRef.current);
    setSaveState("saving");
    const p = post(data.urls.save, { graph: snapshot }).then((res) => {
      if (res.ok) { setErrorsRaw({ graph: snapshot, list: res.errors || [] }); setSaveState(graphRef.current === snapshot ? "saved" : "saved"); return true; }
      setSaveState("error");
      setNotice({ kind: "error", text: res.detail || "The draft could not be saved." });
      return false;
    }).catch(() => { setSaveState("error"); setNotice({ kind: "error", text: "The draft could not be saved (network)." }); return false; });
    savePromise.current = p;
    return p;
  }, [data.urls.save]);

  const scheduleSave = useCallback(() => {
    if (!data.canEdit) return;
    setSaveState("dirty");
    clearTimeout(saveTimer.current);
    saveTimer.current = setTimeout(save, 700);
  }, [save, data.canEdit]);

  const flush = useCallback(async () => {
    if (saveTimer.current && (saveState === "dirty")) return save();
    return savePromise.current;
  }, [save, saveState]);

  /** Apply `mutate(draftCopy)`; `key` merges quick successive edits of one field into one undo step. */
  const commit = useCallback((mutate, { key = null, history: keep = true } = {}) => {
    const prev = graphRef.current;
    const next = clone(prev);
    if (mutate(next) === false) return;
    const h = history.current;
    const now = Date.now();
    if (keep && !(key && h.key === key && now - h.at < 1200)) { h.past.push(prev); if (h.past.length > 200) h.past.shift(); h.future = []; }
    h.key = key; h.at = now;
    graphRef.current = next;
    setGraph(next);
    scheduleSave();
  }, [scheduleSave]);

  const beginGesture = useCallback(() => { const h = history.current; h.past.push(graphRef.current); h.future = []; h.key = null; }, []);

  const undo = useCallback(() => {
    const h = history.current;
    if (!h.past.length) return;
    h.future.push(graphRef.current);
    const g = h.past.pop();
    h.key = null;
    graphRef.current = g; setGraph(g); scheduleSave();
  }, [scheduleSave]);
  const redo = useCallback(() => {
    const h = history.current;
    if (!h.future.length) return;
    h.past.push(graphRef.current);
    const g = h.future.pop();
    h.key = null;
    graphRef.current = g; setGraph(g); scheduleSave();
  }, [scheduleSave]);

  useEffect(() => {
    const warn = (ev) => { if (saveState === "dirty" || saveState === "saving") { ev.preventDefault(); ev.returnValue = ""; } };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [saveState]);

  /* ---------- errors placed on nodes and fields ---------- */
  const placed = useMemo(() => placeErrors(errorsRaw.graph, errorsRaw.list), [errorsRaw]);
  const errorsByNode = useMemo(() => {
    const out = {};
    placed.forEach((e) => { if (e.flowId) (out[e.flowId] = out[e.flowId] || []).push(e); });
    return out;
  }, [placed]);

  /* ---------- graph → React Flow ---------- */
  const selNodes = useMemo(() => new Set(selection.nodes), [selection.nodes]);
  const selEdges = useMemo(() => new Set(selection.edges), [selection.edges]);
  const runNodes = runStates ? runStates.nodes : null;

  const { rfNodes, rfEdges } = useMemo(() => {
    const nodes = [], edges = [];
    const add = (container, prefix, parentId) => {
      container.nodes.forEach((n) => {
        const flowId = prefix + n.id;
        const t = catalog[n.type] || { title: n.type };
        let st = runNodes && !prefix ? runNodes[n.id] : null;
        if (runStates && runStates.finished && !prefix && !st) st = { status: "skipped" };
        const size = nodeSize(n);
        const isLoop = n.type === "loop";
        const body = isLoop ? bodyOf(clone(n)) : null;
        nodes.push({
          id: flowId, type: isLoop ? "loop" : "step", position: n.position || { x: 0, y: 0 },
          ...(parentId ? { parentId, extent: "parent" } : {}),
          selected: selNodes.has(flowId), draggable: canEdit, connectable: canEdit, deletable: canEdit,
          ...(isLoop ? { style: { width: size.width, height: size.height } } : {}),
          ...(measured[flowId] ? { measured: measured[flowId] } : {}),
          data: {
            flowId, id: n.id, type: n.type, typeTitle: t.title, title: n.name || t.title || n.type, status: st,
            errors: (errorsByNode[flowId] || []).map((e) => (e.field ? `${e.place.split(" › ").slice(1).join(" › ") || "config"}: ` : "") + e.message),
            ports: nodePorts(n, container.edges), hasInput: hasInput(n), connectable: canEdit, skip: n.run === "skip",
            width: size.width, height: size.height, bodyEmpty: isLoop && !(body.nodes || []).length,
          },
        });
        if (isLoop && n.config && n.config.body && n.config.body.nodes) add(n.config.body, flowId + "/", flowId);
      });
      (container.edges || []).forEach((e, i) => {
        const id = `${prefix}${e.from}>${e.port || ""}>${e.to}#${i}`;
        const srcState = runNodes && !prefix ? runNodes[e.from] : null;
        const tgtState = runNodes && !prefix ? runNodes[e.to] : null;
        const taken = srcState && tgtState && tgtState.status !== "skipped" && (!srcState.port || (srcState.port || null) === (e.port || null) || !e.port);
        const untaken = runStates && runStates.finished && !prefix && !taken;
        edges.push({
          id, source: prefix + e.from, target: prefix + e.to, sourceHandle: e.port || "out", targetHandle: "in",
          selected: selEdges.has(id), deletable: canEdit,
          className: `${e.port === "error" ? "edge-error" : ""}${untaken ? " edge-skipped" : ""}${taken ? " edge-taken" : ""}`,
          markerEnd: { type: MarkerType.ArrowClosed, width: 16, height: 16 },
          data: { prefix, index: i },
        });
      });
    };
    add(graph, "", null);
    return { rfNodes: nodes, rfEdges: edges };
  }, [graph, catalog, selNodes, selEdges, errorsByNode, runNodes, runStates, canEdit, measured]);

  /* ---------- canvas events ---------- */
  const onNodesChange = useCallback((changes) => {
    let moved = null, sel = null, dims = null;
    changes.forEach((c) => {
      if (c.type === "position" && c.position) (moved = moved || {})[c.id] = c.position;
      else if (c.type === "select") (sel = sel || []).push(c);
      else if (c.type === "dimensions" && c.dimensions) (dims = dims || {})[c.id] = c.dimensions;
    });
    if (dims) setMeasured((m) => ({ ...m, ...dims }));
    if (moved && canEdit) {
      commit((g) => {
        Object.entries(moved).forEach(([id, p]) => { const loc = locate(g, id); if (loc) loc.node.position = { x: Math.round(p.x), y: Math.round(p.y) }; });
      }, { history: false });
    }
    if (sel) {
      setSelection((s) => {
        const set = new Set(s.nodes);
        sel.forEach((c) => (c.selected ? set.add(c.id) : set.delete(c.id)));
        return { ...s, nodes: [...set] };
      });
    }
  }, [commit, canEdit]);

  const onEdgesChange = useCallback((changes) => {
    const sel = changes.filter((c) => c.type === "select");
    if (sel.length) setSelection((s) => { const set = new Set(s.edges); sel.forEach((c) => (c.selected ? set.add(c.id) : set.delete(c.id))); return { ...s, edges: [...set] }; });
  }, []);

  const removeElements = useCallback((nodeIds, edgeIds) => {
    if (!canEdit) return;
    commit((g) => {
      // Edges first (their indexes are of the graph before any node goes).
      const byContainer = {};
      rfEdges.filter((e) => edgeIds.includes(e.id)).forEach((e) => { (byContainer[e.data.prefix] = byContainer[e.data.prefix] || new Set()).add(e.data.index); });
      Object.entries(byContainer).forEach(([prefix, idx]) => {
        const c = containerOf(g, prefix ? prefix.slice(0, -1) : null);
        if (c) c.edges = c.edges.filter((_, i) => !idx.has(i));
      });
      nodeIds.forEach((id) => {
        const loc = locate(g, id);
        if (!loc) return;
        loc.container.nodes = loc.container.nodes.filter((n) => n !== loc.node);
        loc.container.edges = loc.container.edges.filter((e) => e.from !== loc.node.id && e.to !== loc.node.id);
      });
    });
    setSelection({ nodes: [], edges: [] });
  }, [commit, rfEdges, canEdit]);

  const onDelete = useCallback(({ nodes, edges }) => removeElements(nodes.map((n) => n.id), edges.map((e) => e.id)), [removeElements]);

  const parentOf = (flowId) => (flowId.includes("/") ? flowId.slice(0, flowId.lastIndexOf("/")) : null);

  const connect = useCallback((source, target, port) => {
    if (source === target) { setNotice({ kind: "warn", text: "A node cannot connect to itself." }); return; }
    if (parentOf(source) !== parentOf(target)) { setNotice({ kind: "warn", text: "Nodes inside a loop connect only to nodes of the same loop body." }); return; }
    commit((g) => {
      const c = containerOf(g, parentOf(source));
      const from = source.split("/").pop(), to = target.split("/").pop();
      const tnode = c.nodes.find((n) => n.id === to);
      if (tnode && tnode.type === "start") { setNotice({ kind: "warn", text: "Nothing can lead into the Start node." }); return false; }
      if (c.edges.some((e) => e.from === from && e.to === to && (e.port || null) === (port || null))) return false;
      const edge = { from, to };
      if (port) edge.port = port;
      c.edges.push(edge);
    });
  }, [commit]);

  const onConnect = useCallback((p) => connect(p.source, p.target, p.sourceHandle && p.sourceHandle !== "out" ? p.sourceHandle : null), [connect]);
  const isValidConnection = useCallback((p) => p.source !== p.target && parentOf(p.source) === parentOf(p.target), []);

  /* ---------- adding nodes ---------- */
  const hasStart = graph.nodes.some((n) => n.type === "start");

  const addNode = useCallback((type, { at = null, into = undefined, after = undefined } = {}) => {
    if (!canEdit) return;
    const sel = selection.nodes.length === 1 ? selection.nodes[0] : null;
    const selLoc = sel ? locate(graphRef.current, sel) : null;
    let parent = into !== undefined ? into : selLoc ? (selLoc.node.type === "loop" && !at ? sel : parentOf(sel)) : null;
    if (type === "start" && (parent || graphRef.current.nodes.some((n) => n.type === "start"))) {
      setNotice({ kind: "warn", text: parent ? "A loop body needs no Start node: its first nodes get item and index." : "A workflow has exactly one Start node, and this one has it already." });
      return;
    }
    if (type === "loop" && parent) { setNotice({ kind: "warn", text: "Loops inside loops are edited in the outer loop's node table; add this loop on the main canvas." }); parent = null; }
    const prevId = after !== undefined ? after : (sel && !at && selLoc && parentOf(sel) === parent && selLoc.node.type !== "end") ? sel : null;
    let newFlowId = null;
    commit((g) => {
      const c = containerOf(g, parent);
      const id = type === "start" ? "start" : uniqueId(g, type);
      const node = { id, type };
      if (DEFAULT_CONFIG[type]) node.config = clone(DEFAULT_CONFIG[type]);
      if (at) node.position = at;
      else if (prevId) {
        const p = c.nodes.find((n) => n.id === prevId.split("/").pop());
        const s = nodeSize(p);
        const siblings = c.edges.filter((e) => e.from === p.id).length;
        node.position = { x: (p.position || { x: 0 }).x + s.width + 70, y: (p.position || { y: 0 }).y + siblings * 100 };
      } else if (parent) {
        node.position = { x: LOOP_PAD + c.nodes.length * 40, y: LOOP_HEAD + c.nodes.length * 20 };
      } else {
        const vp = flow.getViewport();
        const el = wrapper.current ? wrapper.current.getBoundingClientRect() : { width: 800, height: 500 };
        node.position = { x: Math.round((-vp.x + el.width / 2) / vp.zoom - NODE_W / 2), y: Math.round((-vp.y + el.height / 2) / vp.zoom) };
      }
      c.nodes.push(node);
      if (prevId) {
        const from = prevId.split("/").pop();
        const pnode = c.nodes.find((n) => n.id === from);
        const ports = nodePorts(pnode, c.edges);
        const used = new Set(c.edges.filter((e) => e.from === from).map((e) => e.port || null));
        const port = ports.find((p) => !used.has(p) && p !== "error");
        const edge = { from, to: id };
        if (port !== undefined ? port : ports[0]) edge.port = port !== undefined ? port : ports[0];
        if (ports.length) c.edges.push(edge);
      }
      newFlowId = (parent ? parent + "/" : "") + id;
    });
    if (newFlowId) setSelection({ nodes: [newFlowId], edges: [] });
  }, [canEdit, commit, selection.nodes, flow]);

  const onDragOver = useCallback((ev) => { ev.preventDefault(); ev.dataTransfer.dropEffect = "move"; }, []);
  const onDrop = useCallback((ev) => {
    ev.preventDefault();
    const type = ev.dataTransfer.getData("application/x-weft-node");
    if (!type) return;
    const p = flow.screenToFlowPosition({ x: ev.clientX, y: ev.clientY });
    // Dropped on a loop: into its body, at the drop point relative to the loop.
    const loop = graphRef.current.nodes.find((n) => {
      if (n.type !== "loop" || !n.position) return false;
      const s = nodeSize(n);
      return p.x >= n.position.x && p.x <= n.position.x + s.width && p.y >= n.position.y + LOOP_HEAD - 10 && p.y <= n.position.y + s.height;
    });
    if (loop && type !== "loop") addNode(type, { at: { x: Math.max(LOOP_PAD, Math.round(p.x - loop.position.x - NODE_W / 2)), y: Math.max(LOOP_HEAD, Math.round(p.y - loop.position.y - 20)) }, into: loop.id, after: null });
    else addNode(type, { at: { x: Math.round(p.x - NODE_W / 2), y: Math.round(p.y - 20) }, into: null, after: null });
  }, [flow, addNode]);

  /* ---------- copy, paste, undo by keyboard ---------- */
  const copy = useCallback(() => {
    const ids = selection.nodes;
    if (!ids.length) return false;
    const parent = parentOf(ids[0]);
    const c = containerOf(graphRef.current, parent);
    const names = new Set(ids.filter((i) => parentOf(i) === parent).map((i) => i.split("/").pop()));
    const nodes = c.nodes.filter((n) => names.has(n.id) && n.type !== "start");
    const edges = c.edges.filter((e) => names.has(e.from) && names.has(e.to));
    const clip = JSON.stringify({ weft: "nodes", nodes, edges });
    try { localStorage.setItem("weft-clipboard", clip); } catch (e) { /* private mode */ }
    setNotice({ kind: "info", text: `Copied ${nodes.length} node${nodes.length === 1 ? "" : "s"}.` });
    return true;
  }, [selection.nodes]);

  const paste = useCallback(() => {
    let clip;
    try { clip = JSON.parse(localStorage.getItem("weft-clipboard") || "null"); } catch (e) { clip = null; }
    if (!clip || clip.weft !== "nodes" || !clip.nodes.length || !canEdit) return;
    const sel = selection.nodes.length === 1 ? selection.nodes[0] : null;
    const selLoc = sel ? locate(graphRef.current, sel) : null;
    const parent = selLoc && selLoc.node.type === "loop" ? sel : sel ? parentOf(sel) : null;
    const newIds = [];
    commit((g) => {
      const c = containerOf(g, parent);
      const map = {};
      let nodes = clone(clip.nodes);
      // Reserve each new id before choosing the next one.
      nodes.forEach((n) => { const nid = uniqueId(g, n.id); map[n.id] = nid; c.nodes.push({ id: nid, type: "__placeholder" }); });
      c.nodes = c.nodes.filter((n) => n.type !== "__placeholder");
      nodes = nodes.map((n) => {
        let copyNode = { ...n, id: map[n.id], position: { x: ((n.position || {}).x || 0) + 40, y: ((n.position || {}).y || 0) + 40 } };
        Object.entries(map).forEach(([o, nn]) => { if (copyNode.config) copyNode.config = renameInValue(copyNode.config, o, nn); });
        return copyNode;
      });
      c.nodes.push(...nodes);
      clip.edges.forEach((e) => c.edges.push({ ...e, from: map[e.from], to: map[e.to] }));
      nodes.forEach((n) => newIds.push((parent ? parent + "/" : "") + n.id));
    });
    setSelection({ nodes: newIds, edges: [] });
  }, [commit, selection.nodes, canEdit]);

  useEffect(() => {
    const onKey = (ev) => {
      if (isTyping(document.activeElement)) return;
      const mod = ev.ctrlKey || ev.metaKey;
      if (!mod) { if (ev.key === "Escape") setSelection({ nodes: [], edges: [] }); return; }
      const k = ev.key.toLowerCase();
      if (k === "z" && !ev.shiftKey) { ev.preventDefault(); if (canEdit) undo(); }
      else if ((k === "z" && ev.shiftKey) || k === "y") { ev.preventDefault(); if (canEdit) redo(); }
      else if (k === "c") { if (copy()) ev.preventDefault(); }
      else if (k === "v") { ev.preventDefault(); paste(); }
      else if (k === "a") { ev.preventDefault(); setSelection({ nodes: rfNodes.filter((n) => !n.parentId).map((n) => n.id), edges: [] }); }
      else if (k === "s") { ev.preventDefault(); save(); }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [undo, redo, copy, paste, save, canEdit, rfNodes]);

  /* ---------- toolbar actions ---------- */
  // Fit the graph; when it is too wide to fit at the smallest readable zoom, show its start (left).
  const fit = useCallback((duration = 200) => {
    const minZoom = narrow ? 0.35 : 0.7;
    Promise.resolve(flow.fitView({ padding: 0.1, maxZoom: 1, minZoom })).then(() => {
      const vp = flow.getViewport();
      const nodes = flow.getNodes().filter((n) => !n.parentId);
      if (!nodes.length || vp.zoom > minZoom + 0.001) return;
      const b = flow.getNodesBounds(nodes);
      flow.setViewport({ x: 24 - b.x * vp.zoom, y: vp.y, zoom: vp.zoom }, duration ? { duration } : undefined);
    });
  }, [flow, narrow]);

  const tidy = () => { commit((g) => { autoLayout(g); }); setTimeout(() => fit(), 50); };

  const publish = async () => {
    await flush();
    const ok = await save();
    if (!ok) return;
    const res = await post(data.urls.publish, {});
    if (res.ok) {
      setActiveVersion(res.version);
      setNotice({ kind: "ok", text: `Published version ${res.version}: new runs use it.` });
      const chip = document.getElementById("active-version");
      if (chip) chip.textContent = `v${res.version}`;
    } else {
      setErrorsRaw({ graph: clone(graphRef.current), list: res.errors || [] });
      setNotice({ kind: "error", text: `Not published: ${res.errors && res.errors.length ? `${res.errors.length} problem${res.errors.length === 1 ? "" : "s"} to fix (listed under the canvas).` : res.detail || "error"}` });
    }
  };

  /* ---------- completion context ---------- */
  const completionCtx = useCallback((flowId) => () => {
    const g = graphRef.current;
    const scope = flowId ? scopeFor(g, flowId) : { nodes: g.nodes.map((n) => n.id), inLoop: false, onErrorBranch: false };
    const byId = {};
    const collect = (c) => c.nodes.forEach((n) => { byId[n.id] = n; if (n.type === "loop" && n.config && n.config.body && n.config.body.nodes) collect(n.config.body); });
    collect(g);
    const nodes = scope.nodes.map((id) => byId[id]).filter(Boolean).map((n) => ({
      id: n.id, title: n.name || (catalog[n.type] || {}).title || n.type,
      shape: n.type === "start" ? Object.fromEntries(Object.entries(g.inputs || {}).map(([k, d]) => [k, d && d.default !== undefined ? d.default : null]))
        : outputShape(n, catalog, lastOutputs),
    }));
    let itemShape = null;
    if (scope.inLoop) {
      const loopId = flowId.split("/")[0];
      const lo = lastOutputs && lastOutputs[`${loopId}.items`];
      itemShape = lo || null;
    }
    return {
      inputs: g.inputs || {}, params: [...Object.keys(g.params || {}), ...(data.params || [])], credentials: data.credentials || [],
      nodes, inLoop: scope.inLoop, onErrorBranch: scope.onErrorBranch, itemShape,
    };
  }, [catalog, lastOutputs, data.params, data.credentials]);

  /* ---------- layout ---------- */
  const selectedNode = selection.nodes.length === 1 ? selection.nodes[0] : null;
  const side = useRef(null);
  useEffect(() => { if (side.current) side.current.scrollTop = 0; }, [selectedNode]);
  const selectedEdge = !selectedNode && selection.edges.length === 1 ? rfEdges.find((e) => e.id === selection.edges[0]) : null;
  const errorCount = placed.length;

  return (
    <div className={`weft-editor${canEdit ? "" : " read-only"}${narrow ? " narrow" : ""}`}>
      <div className="ed-toolbar" role="toolbar" aria-label="Editor">
        <span className={`save-state s-${saveState}`} id="save-state" aria-live="polite">
          {{ saved: "All changes saved", dirty: "Unsaved changes…", saving: "Saving…", error: "Not saved" }[saveState]}
        </span>
        {canEdit ? <>
          <button type="button" onClick={undo} disabled={!history.current.past.length} title="Undo (Ctrl+Z)" id="undo-btn">Undo</button>
          <button type="button" onClick={redo} disabled={!history.current.future.length} title="Redo (Ctrl+Shift+Z)" id="redo-btn">Redo</button>
          <button type="button" onClick={tidy} title="Arrange every node left to right" id="tidy-btn">Tidy up</button>
        </> : null}
        <button type="button" onClick={() => fit()} id="fit-btn" title="Show the whole workflow">Fit</button>
        <button type="button" onClick={() => setJsonOpen(!jsonOpen)} id="json-btn" aria-pressed={jsonOpen}>JSON</button>
        {data.canEdit && !narrow ? <button type="button" className="primary" onClick={publish} id="publish-btn">Publish</button> : null}
        {!data.canEdit ? <span className="badge">read only</span> : null}
      </div>
      {narrow ? <p className="narrow-note" id="narrow-note">Open this page on a larger screen to edit the workflow. Here you can read it and test-run it.</p> : null}
      {notice ? <p className={`notice n-${notice.kind}`} role="status" id="editor-notice">{notice.text} <button type="button" className="link small" onClick={() => setNotice(null)} aria-label="Dismiss">✕</button></p> : null}
      {jsonOpen ? <JsonPanel graph={graph} canEdit={canEdit} onApply={(g) => { commit(() => {}, {}); commit((d) => { Object.keys(d).forEach((k) => delete d[k]); Object.assign(d, normalise(g)); placeMissing(d); }); setJsonOpen(false); }} onClose={() => setJsonOpen(false)} /> : null}
      <div className="ed-body">
        {canEdit ? <Palette catalog={catalog} hasStart={hasStart} onAdd={(t) => addNode(t)} selected={selectedNode} /> : null}
        <section className="ed-canvas" ref={wrapper} onDragOver={onDragOver} onDrop={onDrop} aria-label="Workflow canvas">
          <ReactFlow
            nodes={rfNodes} edges={rfEdges} nodeTypes={nodeTypes}
            onNodesChange={onNodesChange} onEdgesChange={onEdgesChange} onConnect={onConnect} onDelete={onDelete}
            onNodeDragStart={beginGesture} onSelectionDragStart={beginGesture}
            isValidConnection={isValidConnection} connectionRadius={24}
            nodesDraggable={canEdit} nodesConnectable={canEdit} elementsSelectable
            deleteKeyCode={canEdit ? ["Delete", "Backspace"] : null} multiSelectionKeyCode={["Shift", "Meta", "Control"]}
            selectionKeyCode="Shift" fitView fitViewOptions={{ padding: 0.1, maxZoom: 1, minZoom: narrow ? 0.35 : 0.7 }} minZoom={0.2} maxZoom={2}
            onPaneClick={() => setSelection({ nodes: [], edges: [] })}
            onInit={() => setTimeout(() => fit(0), 80)}
            proOptions={{ hideAttribution: true }}>
            <Background gap={20} />
            <Controls showInteractive={false} />
            <MiniMap pannable zoomable ariaLabel="Minimap" nodeStrokeWidth={2} style={{ width: 150, height: 100 }} />
          </ReactFlow>
        </section>
        <aside className="ed-side" ref={side}>
          <div className="inspector" id="inspector">
            {selectedNode ? <NodeInspector key={selectedNode} flowId={selectedNode} graph={graph} catalog={catalog} canEdit={canEdit}
              commit={commit} errors={errorsByNode[selectedNode] || []} ctx={completionCtx(selectedNode)} data={data}
              connect={connect} runState={runNodes && !selectedNode.includes("/") ? runNodes[selectedNode] : null}
              onSelect={(id) => setSelection({ nodes: id ? [id] : [], edges: [] })} onRemove={() => removeElements([selectedNode], [])}
              lastRunId={lastRunId} lastOutputs={lastOutputs} runNode={(id) => testPanel.current && testPanel.current.runNode(id)} />
              : selectedEdge ? <EdgeInspector edge={selectedEdge} canEdit={canEdit} onRemove={() => removeElements([], [selectedEdge.id])} />
                : selection.nodes.length > 1 ? <p className="muted">{selection.nodes.length} nodes selected. Ctrl+C copies them, Delete removes them.</p>
                  : <WorkflowSettings graph={graph} commit={commit} canEdit={canEdit} placed={placed} ctx={completionCtx(null)} />}
          </div>
          <TestPanel ref={testPanel} data={data} graph={graph} flush={flush} canRun={data.canRun}
            onStates={(s) => setRunStates(s)} onOutputs={(id, outs) => { setLastRunId(id); setLastOutputs(outs); }} lastRunId={lastRunId} />
        </aside>
      </div>
      <ErrorList placed={placed} onSelect={(id) => { setSelection({ nodes: [id], edges: [] }); const n = flow.getNode(id); if (n) flow.fitView({ nodes: [n], maxZoom: 1.1, duration: 200 }); }} />
    </div>
  );
}

function Palette({ catalog, hasStart, onAdd, selected }) {
  return (
    <aside className="palette" id="palette" aria-label="Node types">
      <h4>Add a node</h4>
      <p className="muted small">Drag onto the canvas (or into a loop), or press to add {selected ? "after the selected node" : "in the middle"}.</p>
      {Object.entries(catalog).map(([type, nt]) => {
        const disabled = type === "start" && hasStart;
        return (
          <button key={type} type="button" className={`palette-item pt-${type}`} data-type={type} draggable={!disabled}
            disabled={disabled} title={disabled ? "A workflow has exactly one Start node" : nt.description || `Add ${nt.title}`}
            onDragStart={(ev) => { ev.dataTransfer.setData("application/x-weft-node", type); ev.dataTransfer.effectAllowed = "move"; }}
            onClick={() => onAdd(type)}>
            <span className={`wn-icon t-${type}`} aria-hidden="true">{(nt.title || type).slice(0, 1)}</span> {nt.title || type}
            {disabled ? <span className="muted small"> (has one)</span> : null}
          </button>
        );
      })}
    </aside>
  );
}

function ErrorList({ placed, onSelect }) {
  return (
    <section className="errors-panel" id="errors" aria-live="polite">
      {!placed.length ? <p className="ok">✓ No problems: this draft can be published.</p> : <>
        <p className="error">{placed.length} problem{placed.length === 1 ? "" : "s"} to fix before publishing:</p>
        <ul className="error-list">
          {placed.map((e, i) => (
            <li key={i} className={e.flowId ? "clickable" : ""} onClick={e.flowId ? () => onSelect(e.flowId) : undefined}
              title={e.raw !== e.message ? e.raw : undefined}>
              <strong>{e.place}</strong>: {e.message}
            </li>
          ))}
        </ul>
      </>}
    </section>
  );
}

function EdgeInspector({ edge, canEdit, onRemove }) {
  return (
    <div>
      <h3>Connection</h3>
      <p><code>{edge.source.split("/").pop()}</code> → <code>{edge.target.split("/").pop()}</code>{edge.label ? ` on the outcome “${edge.label}”` : ""}</p>
      {canEdit ? <button type="button" className="danger" id="remove-edge" onClick={onRemove}>Remove connection</button> : null}
    </div>
  );
}

function NodeInspector({ flowId, graph, catalog, canEdit, commit, errors, ctx, data, connect, runState, onSelect, onRemove, lastRunId, lastOutputs, runNode }) {
  const loc = locate(graph, flowId);
  const [idText, setIdText] = useState(loc ? loc.node.id : "");
  const [idError, setIdError] = useState(null);
  const [target, setTarget] = useState("");
  const [port, setPort] = useState("");
  if (!loc) return <p className="muted">This node no longer exists.</p>;
  const node = loc.node;
  const type = catalog[node.type] || { title: node.type, schema: { type: "object" } };
  const parent = loc.parentId;
  const errMap = {};
  errors.forEach((e) => { const k = e.field || ""; (errMap[k] = errMap[k] || []).push(e.message); });
  const edit = (key, mutate) => commit((g) => { const l = locate(g, flowId); if (l) mutate(l.node, g); }, { key: `${flowId}:${key}` });

  const applyRename = () => {
    const v = idText.trim();
    if (v === node.id) { setIdError(null); return; }
    if (!NODE_ID_RE.test(v)) { setIdError("An id starts with a lower-case letter and has only a–z, 0–9 and _ (64 at most)."); return; }
    const taken = (c) => c.nodes.some((n) => n.id === v || (n.type === "loop" && n.config && n.config.body && n.config.body.nodes && taken(n.config.body)));
    if (taken(graph)) { setIdError(`Another node is already called “${v}”.`); return; }
    setIdError(null);
    commit((g) => { renameNode(g, flowId, v); });
    onSelect((parent ? parent + "/" : "") + v);
  };

  const special = (name, schema, value, onChange, path) => {
    if (path === "/config/body" && node.type === "loop") {
      return <p className="muted small">The body is edited on the canvas: drag nodes into the loop's frame and connect them there. It runs once per item, with <code>item</code> and <code>index</code> in scope.</p>;
    }
    if (node.type === "workflow" && path === "/config/workflow") {
      const list = (data.workflows || []).filter((w) => w.id !== data.workflowId);
      return (
        <select id="f_config_workflow" value={value === undefined ? "" : String(value)} disabled={!canEdit} onChange={(e) => onChange(e.target.value || undefined)}>
          <option value="">Choose a workflow…</option>
          {list.map((w) => <option key={w.id} value={w.id} disabled={!w.published}>{w.app} / {w.name}{w.published ? "" : " (not published)"}</option>)}
          {value && !list.some((w) => w.id === String(value)) ? <option value={String(value)}>{String(value)} (unknown)</option> : null}
        </select>
      );
    }
    if (name === "credential") {
      // A schema that names the credential kind ("of kind `database`") lists only those.
      const kind = /kind `(\w+)`/.exec((schema && schema.description) || "");
      const httpAuth = /^\/config(\/poll)?\/auth\/credential$/.test(path) || /\/compensate\/auth\/credential$/.test(path);
      const creds = (data.credentials || []).filter((c) => (kind ? c.kind === kind[1] : httpAuth ? ["api_key", "bearer", "basic"].includes(c.kind) : true));
      return (
        <select id={"f" + path.replace(/[^A-Za-z0-9_]/g, "_")} value={value || ""} disabled={!canEdit} onChange={(e) => onChange(e.target.value || undefined)}>
          <option value="">(none)</option>
          {creds.map((c) => <option key={c.name} value={c.name}>{c.name} ({c.kind})</option>)}
          {value && !creds.some((c) => c.name === value) ? <option value={value}>{value} (not defined)</option> : null}
        </select>
      );
    }
    return null;
  };

  const container = loc.container;
  const outs = container.edges.map((e, i) => ({ e, i })).filter(({ e }) => e.from === node.id);
  const ports = nodePorts(node, container.edges);
  const targets = container.nodes.filter((n) => n.id !== node.id && n.type !== "start");
  const opts = {};
  ["run", "timeout", "on_error", "retry"].forEach((k) => { if (node[k] !== undefined) opts[k] = node[k]; });
  const canRunNode = data.canRun && lastRunId && node.type !== "start" && !flowId.includes("/") && lastOutputs;

  return (
    <div className="node-inspector" data-flow-id={flowId}>
      <h3>{type.title} <span className="muted small">{node.type}</span></h3>
      {errors.length ? <ul className="node-errors" role="alert">{errors.map((e, i) => <li key={i}><strong>{e.place.split(" › ").slice(1).join(" › ") || "node"}</strong>: {e.message}</li>)}</ul> : null}
      <div className="f" data-path="/id">
        <label className="f-label" htmlFor="node-id">id <span className="f-help">expressions name the node by it; renaming rewrites them</span></label>
        <input id="node-id" value={idText} disabled={!canEdit} onChange={(e) => setIdText(e.target.value)} onBlur={applyRename}
          onKeyDown={(e) => { if (e.key === "Enter") { e.preventDefault(); applyRename(); } }} aria-invalid={!!idError} />
        {idError ? <ul className="field-errors" role="alert"><li>{idError}</li></ul> : null}
        {errMap["/id"] ? <ul className="field-errors">{errMap["/id"].map((m, i) => <li key={i}>{m}</li>)}</ul> : null}
      </div>
      <div className="f" data-path="/name">
        <label className="f-label" htmlFor="node-name">name</label>
        <input id="node-name" value={node.name || ""} placeholder="optional display name" disabled={!canEdit}
          onChange={(e) => { const v = e.target.value; edit("name", (n) => { if (v) n.name = v; else delete n.name; }); }} />
      </div>
      <fieldset className="config" data-path="/config">
        <legend>Configuration</legend>
        <ObjectFields schema={type.schema || { type: "object" }} value={node.config} path="/config" ctx={ctx} readOnly={!canEdit} errors={errMap} special={special} flat
          onChange={(v) => edit("config", (n) => { if (v === undefined || (!Object.keys(v).length && !(type.schema && type.schema.required))) delete n.config; else n.config = v; })} />
      </fieldset>
      {node.type !== "start" && node.type !== "end" ? (
        <details className="options" open={Object.keys(opts).length > 0}>
          <summary>Runtime options (retry, timeout, on error)</summary>
          <ObjectFields schema={NODE_OPTIONS} value={opts} path="" ctx={ctx} readOnly={!canEdit} errors={errMap} flat
            onChange={(v) => edit("options", (n) => { ["run", "timeout", "on_error", "retry"].forEach((k) => { if (!v || v[k] === undefined) delete n[k]; else n[k] = v[k]; }); })} />
        </details>
      ) : null}
      {ports.length ? <>
        <h4>Next nodes</h4>
        <ul className="edge-list" id="edge-list">
          {outs.length ? outs.map(({ e, i }) => (
            <li key={i}>→ <code>{e.to}</code>{e.port ? ` on “${e.port}”` : ""}
              {canEdit ? <button type="button" className="link small" title="Remove connection" onClick={() => commit((g) => { const c = containerOf(g, parent); c.edges.splice(i, 1); })}>✕</button> : null}</li>
          )) : <li className="muted">none yet</li>}
        </ul>
        {canEdit && targets.length ? (
          <div className="connect-row">
            <select id="connect-target" aria-label="Connect to" value={target} onChange={(e) => setTarget(e.target.value)}>
              <option value="">Connect to…</option>
              {targets.map((n) => <option key={n.id} value={n.id}>{n.name || n.id}</option>)}
            </select>
            {ports.length > 1 ? (
              <select id="connect-port" aria-label="On the outcome" value={port} onChange={(e) => setPort(e.target.value)}>
                {ports.map((p) => <option key={p || "out"} value={p || ""}>{p || "(normal)"}</option>)}
              </select>
            ) : null}
            <button type="button" className="small" id="connect-add" disabled={!target}
              onClick={() => { connect(flowId, (parent ? parent + "/" : "") + target, (ports.length > 1 ? port || ports[0] : ports[0]) || null); setTarget(""); }}>Connect</button>
          </div>
        ) : null}
      </> : null}
      <div className="row">
        {canRunNode ? <button type="button" className="small" id="run-node-btn" onClick={() => runNode(node.id)} title="Run only this node, its upstream outputs taken from the last test run">Run this node</button> : null}
        {canEdit ? <button type="button" className="danger small" id="remove-node" onClick={onRemove}>Remove node</button> : null}
      </div>
      {runState ? <NodeRunDetails st={runState} /> : null}
    </div>
  );
}

function NodeRunDetails({ st }) {
  const pre = (v) => <pre className="code small">{JSON.stringify(v, null, 2)}</pre>;
  return (
    <div className="run-node" id="node-run-details">
      <h4>Last test run</h4>
      <p><span className={`badge st-${st.status}`}>{st.status}</span>{st.attempt > 1 ? ` attempt ${st.attempt}` : ""}{st.elapsed != null ? ` · ${Number(st.elapsed).toFixed(3)} s` : ""}{st.port ? ` · outcome “${st.port}”` : ""}</p>
      {st.error ? <div><strong>Error</strong>{pre(st.error)}</div> : null}
      {st.inputs !== undefined ? <details><summary>Inputs</summary>{pre(st.inputs)}</details> : null}
      {st.outputs !== undefined ? <details open><summary>Outputs</summary>{pre(st.outputs)}</details> : null}
    </div>
  );
}

function WorkflowSettings({ graph, commit, canEdit, placed, ctx }) {
  const inputs = graph.inputs || {};
  const [draftNames, setDraftNames] = useState({});
  const errs = (path) => placed.filter((e) => e.path === path || (e.path || "").startsWith(path + "/")).map((e) => e.message);
  const setInputs = (fn) => commit((g) => { g.inputs = fn({ ...(g.inputs || {}) }); }, { key: "inputs" });
  const rename = (old, name) => {
    setDraftNames((d) => ({ ...d, [old]: name }));
    if (!VAR_NAME_RE.test(name) || (name !== old && inputs[name])) return;
    setInputs((cur) => Object.fromEntries(Object.entries(cur).map(([k, v]) => [k === old ? name : k, v])));
    setDraftNames((d) => { const n = { ...d }; delete n[old]; return n; });
  };
  const setDecl = (name, key, value) => setInputs((cur) => { const d = { ...(cur[name] || {}) }; if (value === undefined || value === "" || value === false) delete d[key]; else d[key] = value; cur[name] = d; return cur; });
  const addInput = () => setInputs((cur) => { let k = "input", i = 1; while (cur[k]) k = `input${++i}`; cur[k] = { type: "string" }; return cur; });
  const parseDefault = (type, text) => {
    if (text === "") return undefined;
    if (type === "number" || type === "integer") return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text;
    if (type === "boolean") return text === "true" ? true : text === "false" ? false : text;
    if (type === "object" || type === "array") { try { return JSON.parse(text); } catch (e) { return text; } }
    return text;
  };
  return (
    <div className="wf-settings">
      <h3>Workflow</h3>
      <p className="muted small">Select a node to configure it. Drag from a node's right-hand dot to another node to connect them.</p>
      <h4>Inputs</h4>
      <div className="decls" id="inputs-table">
        {Object.entries(inputs).map(([name, decl], i) => {
          const shown = draftNames[name] !== undefined ? draftNames[name] : name;
          const bad = draftNames[name] !== undefined && (!VAR_NAME_RE.test(shown) ? "letters, digits and _ only, not starting with a digit" : inputs[shown] && shown !== name ? "already used" : null);
          const e = errs(`/inputs/${name}`);
          return (
            <div className="decl" key={i} data-path={`/inputs/${name}`}>
              <input className="in-name" aria-label="input name" placeholder="name" value={shown} disabled={!canEdit} onChange={(ev) => rename(name, ev.target.value)} aria-invalid={!!bad} />
              <select className="in-type" aria-label="input type" value={(decl && decl.type) || "string"} disabled={!canEdit} onChange={(ev) => setDecl(name, "type", ev.target.value)}>
                {INPUT_TYPES.map((t) => <option key={t} value={t}>{t}</option>)}</select>
              <span className="decl-tail">
                <label className="in-req-label small"><input type="checkbox" className="in-req" aria-label="required" checked={!!(decl && decl.required)} disabled={!canEdit} onChange={(ev) => setDecl(name, "required", ev.target.checked)} /> required</label>
                {canEdit ? <button type="button" className="link small" title={`Remove ${name}`} onClick={() => setInputs((cur) => { delete cur[name]; return cur; })}>✕</button> : null}
              </span>
              <input className="in-default" aria-label="default" placeholder="default" value={decl && decl.default !== undefined ? (typeof decl.default === "string" ? decl.default : JSON.stringify(decl.default)) : ""} disabled={!canEdit}
                onChange={(ev) => setDecl(name, "default", parseDefault((decl && decl.type) || "string", ev.target.value))} />
              <input className="in-desc" aria-label="description" placeholder="description" value={(decl && decl.description) || ""} disabled={!canEdit} onChange={(ev) => setDecl(name, "description", ev.target.value)} />
              {bad || e.length ? <ul className="field-errors">{bad ? <li>{bad}</li> : null}{e.map((m, j) => <li key={j}>{m}</li>)}</ul> : null}
            </div>
          );
        })}
        {!Object.keys(inputs).length ? <p className="muted small">No inputs yet.</p> : null}
      </div>
      {canEdit ? <button type="button" className="small" id="add-input" onClick={addInput}>+ input</button> : null}
      <h4>Workflow parameters <span className="muted small">{"${name}"}</span></h4>
      <Field schema={{ type: "object" }} value={graph.params} path="/params" name="params" ctx={ctx} readOnly={!canEdit}
        errors={Object.fromEntries(placed.filter((e) => e.scope === "params").map((e) => [e.path, [e.message]]))}
        onChange={(v) => commit((g) => { g.params = v || {}; }, { key: "params" })} />
      <h4>Declared outputs <span className="muted small">checked when a run ends</span></h4>
      <div className="decls" id="outputs-table">
        {Object.entries(graph.outputs || {}).map(([name, decl], i) => (
          <div className="decl decl-out" key={i} data-path={`/outputs/${name}`}>
            <input className="out-name" aria-label="output name" value={name} disabled={!canEdit}
              onChange={(ev) => { const v = ev.target.value; if (!v || (v !== name && (graph.outputs || {})[v])) return; commit((g) => { g.outputs = Object.fromEntries(Object.entries(g.outputs || {}).map(([k, d]) => [k === name ? v : k, d])); }, { key: `out-name:${i}` }); }} />
            <select className="out-type" aria-label="output type" value={(decl && decl.type) || "string"} disabled={!canEdit}
              onChange={(ev) => { const t = ev.target.value; commit((g) => { g.outputs[name] = { ...(g.outputs[name] || {}), type: t }; }); }}>
              {INPUT_TYPES.filter((t) => t !== "file").map((t) => <option key={t} value={t}>{t}</option>)}</select>
            {canEdit ? <button type="button" className="link small" title={`Remove ${name}`} onClick={() => commit((g) => { delete g.outputs[name]; })}>✕</button> : <span />}
            {errs(`/outputs/${name}`).length ? <ul className="field-errors">{errs(`/outputs/${name}`).map((m, j) => <li key={j}>{m}</li>)}</ul> : null}
          </div>
        ))}
      </div>
      {canEdit ? <button type="button" className="small" id="add-output" onClick={() => commit((g) => { g.outputs = g.outputs || {}; let k = "output", n = 1; while (g.outputs[k]) k = `output${++n}`; g.outputs[k] = { type: "string" }; })}>+ output</button> : null}
    </div>
  );
}

function JsonPanel({ graph, canEdit, onApply, onClose }) {
  const [text, setText] = useState(() => JSON.stringify(graph, null, 2));
  const [err, setErr] = useState(null);
  return (
    <div className="json-panel" id="json-panel">
      <p className="muted small">The whole workflow as JSON (the management API's format).{canEdit ? " Apply replaces the graph (undo brings it back)." : ""}</p>
      <ValueField value={text} onChange={setText} multiline readOnly={!canEdit} label="workflow JSON" id="json-view" />
      {err ? <p className="error" id="json-error">{err}</p> : null}
      {canEdit ? <button type="button" className="primary" id="json-apply" onClick={() => { try { onApply(JSON.parse(text)); } catch (e) { setErr(`Not valid JSON: ${e.message}`); } }}>Apply</button> : null}
      <button type="button" onClick={onClose} id="json-cancel">Close</button>
    </div>
  );
}

export default function EditorRoot({ data }) {
  return <ReactFlowProvider><Editor data={data} /></ReactFlowProvider>;
}
