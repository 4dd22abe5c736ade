/* Weft graph view: a small layered (Sugiyama-style) layout and an SVG renderer.
 *
 * Layout: layers by longest path from the sources (Kahn order; nodes on a cycle go last), then a
 * few barycenter sweeps to reduce crossings, then left-to-right coordinates. A loop node is sized
 * to hold its body, laid out the same way and drawn inside it. Used by the editor
 * (editable: port handles, clicks) and by the run pages (coloured by node status).
 */
(function () {
  "use strict";
  const NODE_W = 168, NODE_H = 58, GAP_X = 70, GAP_Y = 28, PAD = 24;
  const SVG_NS = "http://www.w3.org/2000/svg";

  function nodePorts(node) {
    const ports = [null];
    const cfg = node.config || {};
    if (node.type === "condition") {
      (cfg.cases || []).forEach((c) => { if (c && c.id) ports.push(c.id); });
      ports.push("else");
    }
    if (node.on_error === "branch") ports.push("error");
    return ports;
  }

  const BODY_PAD = 10, BODY_TOP = NODE_H + 4;

  /* A loop node is drawn with its body sub-graph inside it (laid out the same way, recursively). */
  function bodyOf(node) {
    const body = node && node.type === "loop" && node.config && node.config.body;
    return body && Array.isArray(body.nodes) && body.nodes.length ? body : null;
  }

  function nodeSize(node) {
    const body = bodyOf(node);
    if (!body) return { w: NODE_W, h: NODE_H, inner: null };
    const inner = layout(body, true);
    return { w: Math.max(NODE_W, inner.width + 2 * BODY_PAD), h: BODY_TOP + inner.height + BODY_PAD, inner };
  }

  function layout(graph, nested) {
    const pad = nested ? 0 : PAD;
    const nodes = (graph.nodes || []).filter((n) => n && n.id);
    const ids = new Set(nodes.map((n) => n.id));
    const edges = (graph.edges || []).filter((e) => e && ids.has(e.from) && ids.has(e.to) && e.from !== e.to);
    const preds = {}, succs = {}, indeg = {};
    nodes.forEach((n) => { preds[n.id] = []; succs[n.id] = []; indeg[n.id] = 0; });
    edges.forEach((e) => { succs[e.from].push(e.to); preds[e.to].push(e.from); indeg[e.to] += 1; });
    const layer = {};
    const queue = nodes.filter((n) => indeg[n.id] === 0).map((n) => n.id);
    const seen = new Set();
    queue.forEach((id) => { layer[id] = 0; });
    while (queue.length) {
      const id = queue.shift();
      seen.add(id);
      succs[id].forEach((t) => {
        layer[t] = Math.max(layer[t] || 0, layer[id] + 1);
        indeg[t] -= 1;
        if (indeg[t] === 0) queue.push(t);
      });
    }
    let maxLayer = Math.max(0, ...Object.values(layer));
    nodes.forEach((n) => { if (!seen.has(n.id)) { layer[n.id] = ++maxLayer; } });
    const layers = [];
    nodes.forEach((n) => { (layers[layer[n.id]] = layers[layer[n.id]] || []).push(n.id); });
    for (let i = 0; i < layers.length; i++) layers[i] = layers[i] || [];
    const order = {};
    const reindex = () => layers.forEach((ids_) => ids_.forEach((id, i) => { order[id] = i; }));
    reindex();
    const bary = (id, nbrs) => {
      const xs = nbrs[id].map((o) => order[o]).filter((v) => v !== undefined);
      return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : order[id];
    };
    for (let sweep = 0; sweep < 4; sweep++) {
      const down = sweep % 2 === 0;
      const seq = down ? layers.slice(1) : layers.slice(0, -1).reverse();
      seq.forEach((ids_) => {
        const key = {};
        ids_.forEach((id) => { key[id] = bary(id, down ? preds : succs); });
        ids_.sort((a, b) => key[a] - key[b]);
        ids_.forEach((id, i) => { order[id] = i; });
      });
    }
    const size = {};
    nodes.forEach((n) => { size[n.id] = nodeSize(n); });
    const layerW = layers.map((ids_) => Math.max(NODE_W, ...ids_.map((id) => size[id].w)));
    const layerH = layers.map((ids_) => ids_.reduce((h, id) => h + size[id].h, 0) + GAP_Y * Math.max(0, ids_.length - 1));
    const tallest = Math.max(NODE_H, ...layerH);
    const pos = {};
    let x = pad;
    layers.forEach((ids_, li) => {
      let y = pad + (tallest - layerH[li]) / 2;
      ids_.forEach((id) => {
        pos[id] = { x, y, w: size[id].w, h: size[id].h, inner: size[id].inner };
        y += size[id].h + GAP_Y;
      });
      x += layerW[li] + GAP_X;
    });
    return {
      pos, edges,
      width: pad * 2 + Math.max(NODE_W, x - pad - GAP_X),
      height: pad * 2 + tallest,
    };
  }

  function el(name, attrs, parent) {
    const e = document.createElementNS(SVG_NS, name);
    Object.entries(attrs || {}).forEach(([k, v]) => { if (v !== undefined && v !== null) e.setAttribute(k, v); });
    if (parent) parent.appendChild(e);
    return e;
  }

  function portY(node, port) {
    const ports = nodePorts(node);
    const i = Math.max(0, ports.indexOf(port === undefined ? null : port));
    return ((i + 1) * NODE_H) / (ports.length + 1);
  }

  function trunc(text, n) { text = String(text); return text.length > n ? text.slice(0, n - 1) + "…" : text; }

  /* opts: {editable, selected, selectedEdge, status: {nodeId: {status, attempt, elapsed}},
   *        errors: {nodeId: [messages]}, edgeErrors: {index: [messages]}, titles: {type: title},
   *        onNode(id), onEdge(index), onHandle(id, port), onBackground()} */
  function render(svg, graph, opts) {
    opts = opts || {};
    const lay = layout(graph);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.setAttribute("viewBox", `0 0 ${lay.width} ${lay.height}`);
    svg.setAttribute("width", lay.width);
    svg.setAttribute("height", lay.height);
    const defs = el("defs", {}, svg);
    const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, defs);
    el("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrowhead" }, marker);
    const bg = el("rect", { x: 0, y: 0, width: lay.width, height: lay.height, class: "canvas-bg" }, svg);
    bg.addEventListener("click", () => opts.onBackground && opts.onBackground());
    draw(svg, graph, lay, opts);
    return lay;
  }

  /* Draws a laid-out graph into ``parent``. A loop's body is drawn inside its node, read-only, with
   * ``opts.bodyStatus[loopId][nodeId]`` (a summary over the iterations) as its colours. */
  function draw(parent, graph, lay, opts) {
    const byId = {};
    (graph.nodes || []).forEach((n) => { if (n && n.id) byId[n.id] = n; });
    const edgeLayer = el("g", { class: "edges" }, parent);
    (graph.edges || []).forEach((e, index) => {
      if (!e || !lay.pos[e.from] || !lay.pos[e.to] || e.from === e.to) return;
      const a = lay.pos[e.from], b = lay.pos[e.to];
      const x1 = a.x + a.w, y1 = a.y + portY(byId[e.from], e.port || null);
      const x2 = b.x, y2 = b.y + NODE_H / 2;
      const dx = Math.max(30, (x2 - x1) / 2);
      const cls = ["edge"];
      if (opts.selectedEdge === index) cls.push("selected");
      if (opts.edgeErrors && opts.edgeErrors[index]) cls.push("has-error");
      if (e.port === "error") cls.push("error-port");
      const g = el("g", { class: cls.join(" "), "data-edge": index }, edgeLayer);
      const d = `M ${x1} ${y1} C ${x1 + dx} ${y1}, ${x2 - dx} ${y2}, ${x2} ${y2}`;
      el("path", { d, class: "edge-hit" }, g);
      el("path", { d, class: "edge-line", "marker-end": "url(#arrow)" }, g);
      if (e.port) {
        const t = el("text", { x: x1 + 8, y: y1 - 5, class: "edge-label" }, g);
        t.textContent = e.port;
      }
      if (opts.edgeErrors && opts.edgeErrors[index]) {
        const title = el("title", {}, g);
        title.textContent = opts.edgeErrors[index].join("\n");
      }
      g.addEventListener("click", (ev) => { ev.stopPropagation(); opts.onEdge && opts.onEdge(index); });
    });
    const nodeLayer = el("g", { class: "nodes" }, parent);
    (graph.nodes || []).forEach((n) => {
      if (!n || !n.id || !lay.pos[n.id]) return;
      const p = lay.pos[n.id];
      const st = (opts.status && opts.status[n.id]) || null;
      const errs = (opts.errors && opts.errors[n.id]) || null;
      const cls = ["node", "type-" + n.type];
      if (st) cls.push("st-" + st.status);
      if (errs) cls.push("has-error");
      if (opts.selected === n.id) cls.push("selected");
      if (n.run === "skip") cls.push("run-skip");
      const g = el("g", { class: cls.join(" "), transform: `translate(${p.x},${p.y})`, "data-node-id": n.id, "data-status": st ? st.status : "" }, nodeLayer);
      el("rect", { width: p.w, height: p.h, rx: 8, class: "node-box" }, g);
      el("rect", { width: 6, height: p.h, rx: 3, class: "node-stripe" }, g);
      const title = el("text", { x: 14, y: 22, class: "node-title" }, g);
      title.textContent = trunc(n.name || n.id, 20);
      const sub = el("text", { x: 14, y: 42, class: "node-sub" }, g);
      let subText = (opts.titles && opts.titles[n.type]) || n.type;
      if (n.name) subText = n.id + " · " + subText;
      if (st) {
        subText = st.status + (st.attempt > 1 ? ` ×${st.attempt}` : "") + (st.elapsed ? ` · ${Number(st.elapsed).toFixed(2)}s` : "");
      }
      sub.textContent = trunc(subText, 26);
      if (errs) {
        const badge = el("g", { class: "err-badge", transform: `translate(${p.w - 12},0)` }, g);
        el("circle", { r: 9, cx: 0, cy: 0 }, badge);
        const t = el("text", { x: 0, y: 4, "text-anchor": "middle" }, badge);
        t.textContent = "!";
      }
      const tip = el("title", {}, g);
      tip.textContent = `${n.id} (${n.type})` + (errs ? "\n" + errs.join("\n") : "") + (st && st.error ? "\n" + JSON.stringify(st.error) : "");
      g.addEventListener("click", (ev) => { ev.stopPropagation(); opts.onNode && opts.onNode(n.id); });
      if (p.inner) {
        const body = el("g", { class: "loop-body", transform: `translate(${BODY_PAD},${BODY_TOP})` }, g);
        el("rect", { x: -4, y: -4, width: p.inner.width + 8, height: p.inner.height + 8, rx: 6, class: "loop-body-bg" }, body);
        const inner = (opts.bodyStatus && opts.bodyStatus[n.id]) || null;
        draw(body, bodyOf(n), p.inner, { status: inner, titles: opts.titles, onNode: () => opts.onNode && opts.onNode(n.id) });
      }
      if (opts.editable) {
        nodePorts(n).forEach((port) => {
          const h = el("circle", { cx: p.w, cy: portY(n, port), r: 6, class: "handle" + (opts.connectFrom && opts.connectFrom.id === n.id && opts.connectFrom.port === port ? " active" : ""), "data-port": port || "" }, g);
          const ht = el("title", {}, h);
          ht.textContent = port ? `Connect from port “${port}”` : "Connect (normal outcome)";
          h.addEventListener("click", (ev) => { ev.stopPropagation(); opts.onHandle && opts.onHandle(n.id, port); });
        });
      }
    });
  }

  window.WeftGraph = { layout, render, nodePorts, NODE_W, NODE_H };
})();
