/* Run detail: colour the graph by node status and, while the run is active, follow its events
 * over the websocket (append to the event log, recolour nodes); reload once it has finished so
 * that the timeline and the node table are drawn from the record. */
(function () {
  "use strict";
  const data = JSON.parse(document.getElementById("run-data").textContent);
  const svg = document.getElementById("canvas");
  const status = {};
  data.nodeRuns.forEach((r) => {
    if (r.iterationId) return;
    status[r.nodeId] = { status: r.status, attempt: r.attempt, elapsed: r.elapsedTime, error: r.error };
  });
  const draw = () => WeftGraph.render(svg, data.graph, { status });
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
