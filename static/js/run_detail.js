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
  const draw = () => WeftGraph.render(svg, data.graph, { status, bodyStatus });
  draw();
  if (data.final) return;
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
      if (ev.type === "run_started" || ev.type === "run_resumed") { badge.textContent = "running"; badge.className = "badge st-running"; }
      if (ev.type === "run_waiting") { badge.textContent = "waiting"; badge.className = "badge st-waiting"; }
      if (ev.type === "run_finished") {
        badge.textContent = d.status;
        badge.className = `badge st-${d.status}`;
        setTimeout(() => location.reload(), 600);
      }
      draw();
    },
  });
})();
