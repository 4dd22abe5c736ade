/* Follow a run's events over the websocket /ws/runs/{id}/?after=<seq>.
 *
 * The server replays the log after `after`, then sends live events, and closes after
 * run_finished. If the socket drops before that, reconnect with the last seq seen: no gap, no
 * duplicate (events at or below the last seq are ignored here too).
 */
(function () {
  "use strict";

  function follow(runId, after, handlers) {
    let last = after || 0;
    let finished = false;
    let socket = null;
    let stopped = false;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const connect = () => {
      if (stopped) return;
      socket = new WebSocket(`${scheme}//${location.host}/ws/runs/${runId}/?after=${last}`);
      socket.onmessage = (msg) => {
        const ev = JSON.parse(msg.data);
        if (ev.seq <= last) return;
        last = ev.seq;
        if (ev.type === "run_finished") finished = true;
        handlers.onEvent && handlers.onEvent(ev);
      };
      socket.onclose = () => {
        if (!finished && !stopped) setTimeout(connect, 1000);
        else handlers.onClose && handlers.onClose();
      };
    };
    connect();
    return { close: () => { stopped = true; if (socket) socket.close(); }, last: () => last };
  }

  /* Fold an event into {nodeId: {status, attempt, elapsed, inputs, outputs, error}}. */
  function nodeState(state, ev) {
    const d = ev.data || {};
    if (!d.node_id || d.iteration_id) return state;
    const cur = state[d.node_id] || {};
    if (ev.type === "node_started") state[d.node_id] = { ...cur, status: "running", attempt: d.attempt || 1, inputs: d.inputs };
    else if (ev.type === "node_retry") state[d.node_id] = { ...cur, status: "retrying", attempt: (d.attempt || 1), error: d.error };
    else if (ev.type === "node_finished") {
      state[d.node_id] = { ...cur, status: d.status, attempt: d.attempt || cur.attempt || 1, elapsed: d.elapsed_time, inputs: d.inputs, outputs: d.outputs, error: d.error };
    }
    return state;
  }

  window.WeftRunLive = { follow, nodeState };
})();
