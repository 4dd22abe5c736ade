/* Run detail: colour the graph by node status and, while the run is active, follow its events
 * over the websocket (append to the event log, recolour nodes); reload once it has finished so
 * that the timeline and the node table are drawn from the record. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("run-data").textContent);
  const svg = document.getElementById("canvas");
  const status = {};
  // Body nodes of a top-level loop: one summary per node over its iterations (the worst status,
  // the number of items, the total time), drawn inside the loop node.
  const bodyStatus = {};
  const RANK = { failed: 5, stopped: 4, running: 3, waiting: 2, succeeded: 1, skipped: 0 };
  data.nodeRuns.forEach((r) => {
    if (!r.iterationId) {
      status[r.nodeId] = { status: r.status, attempt: r.attempt, elapsed: r.elapsedTime, error: r.error };
      return;
    }
    if (r.iterationId.includes("[")) return;  // nested loops: shown in the node table only
    const loop = (bodyStatus[r.iterationId] = bodyStatus[r.iterationId] || {});
    const prev = loop[r.nodeId];
    if (!prev) {
      loop[r.nodeId] = { status: r.status, attempt: 1, elapsed: r.elapsedTime || 0, items: 1, error: r.error };
    } else {
      prev.items += 1;
      prev.elapsed += r.elapsedTime || 0;
      if ((RANK[r.status] || 0) > (RANK[prev.status] || 0)) { prev.status = r.status; prev.error = r.error; }
    }
  });
  Object.values(bodyStatus).forEach((loop) => Object.values(loop).forEach((st) => { st.attempt = st.items; }));
  // A click on a graph node opens its row(s) in the node table.
  const showNode = (id) => {
    const rows = document.querySelectorAll(`#node-runs tr[data-node-id="${CSS.escape(id)}"]`);
    document.querySelectorAll("#node-runs tr.highlight").forEach((r) => r.classList.remove("highlight"));
    rows.forEach((r) => { r.classList.add("highlight"); const d = r.querySelector("details"); if (d) d.open = true; });
    if (rows.length) rows[0].scrollIntoView({ behavior: "smooth", block: "center" });
  };
  const draw = () => WeftGraph.render(svg, data.graph, { status, bodyStatus, onNode: showNode });
  draw();
  if (data.final) return;
  // The timeline grows live: one bar per node execution, from its node_started to node_finished
  // (still growing while it runs), in percent of the time since the first event.
  const timelineBox = document.getElementById("timeline");
  const bars = {};
  let t0 = null;
  data.events.forEach((ev) => track(ev));
  function track(ev) {
    const d = ev.data || {};
    const at = Date.parse(ev.createdAt || "") || Date.now();
    if (t0 === null) t0 = at;
    if (!d.node_id) return;
    const key = d.iteration_id ? `${d.node_id}[${d.iteration_index}]` : d.node_id;
    if (ev.type === "node_started") bars[key] = { start: at, end: null, status: "running" };
    else if (ev.type === "node_finished") { const b = bars[key] || { start: at }; bars[key] = { ...b, end: at, status: d.status }; }
  }
  function drawTimeline() {
    const keys = Object.keys(bars);
    if (!keys.length) return;
    const now = Date.now();
    const span = Math.max(1, Math.max(...keys.map((k) => bars[k].end || now)) - t0);
    timelineBox.replaceChildren(...keys.map((k) => {
      const b = bars[k];
      const end = b.end || now;
      const row = document.createElement("div");
      row.className = "tl-row";
      const label = document.createElement("span"); label.className = "tl-label"; label.textContent = k;
      const lane = document.createElement("span"); lane.className = "tl-track";
      const bar = document.createElement("span"); bar.className = `tl-bar st-${b.status}`;
      bar.style.left = `${(100 * (b.start - t0)) / span}%`;
      bar.style.width = `${Math.max(0.5, (100 * (end - b.start)) / span)}%`;
      lane.append(bar);
      const val = document.createElement("span"); val.className = "tl-val muted"; val.textContent = `${((end - b.start) / 1000).toFixed(3)} s`;
      row.append(label, lane, val);
      return row;
    }));
  }
  const ticker = setInterval(drawTimeline, 500);
  const log = document.querySelector("#event-log tbody");
  const badge = document.getElementById("run-status");
  WeftRunLive.follow(data.runId, data.lastSeq, {
    onEvent: (ev) => {
      const d = ev.data || {};
      const tr = document.createElement("tr");
      [ev.seq, (ev.createdAt || "").slice(11, 23), ev.type, d.node_id || "", d.status || ""].forEach((v) => {
        const td = document.createElement("td");
        td.textContent = v;
        tr.append(td);
      });
      log.append(tr);
      WeftRunLive.nodeState(status, ev);
      track(ev);
      drawTimeline();
      if (ev.type === "run_started" || ev.type === "run_resumed") { badge.textContent = "running"; badge.className = "badge st-running"; }
      if (ev.type === "run_waiting") { badge.textContent = "waiting"; badge.className = "badge st-waiting"; }
      if (ev.type === "run_finished") {
        badge.textContent = d.status;
        badge.className = `badge st-${d.status}`;
        clearInterval(ticker);
        setTimeout(() => location.reload(), 600);
      }
      draw();
    },
  });
})();
