/* Following a run over /ws/runs/{id}/?after=<seq> (replay, then live, closed after run_finished;
 * reconnects with the last seq seen), and folding its events into node states. */

export function followRun(runId, handlers) {
  let last = 0, finished = false, stopped = false, socket = null;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const connect = () => {
    if (stopped) return;
    socket = new WebSocket(`${scheme}//${location.host}/ws/runs/${runId}/?after=${last}`);
    socket.onmessage = (msg) => {
      const ev = JSON.parse(msg.data);
      if (ev.seq <= last) return;
      last = ev.seq;
      if (ev.type === "run_finished") finished = true;
      handlers.onEvent(ev);
    };
    socket.onclose = () => { if (!finished && !stopped) setTimeout(connect, 1000); };
  };
  connect();
  return { close: () => { stopped = true; if (socket) socket.close(); } };
}

/** Fold one event into {nodeId: {status, attempt, elapsed, inputs, outputs, error, port}} (top level only). */
export function foldNodeEvent(states, ev) {
  const d = ev.data || {};
  if (!d.node_id || d.iteration_id) return states;
  const cur = states[d.node_id] || {};
  let next = cur;
  if (ev.type === "node_started") next = { ...cur, status: "running", attempt: d.attempt || 1, inputs: d.inputs };
  else if (ev.type === "node_retry") next = { ...cur, status: "retrying", attempt: d.attempt || 1, error: d.error };
  else if (ev.type === "node_waiting" || ev.type === "node_parked") next = { ...cur, status: "waiting" };
  else if (ev.type === "node_finished") next = { ...cur, status: d.status, attempt: d.attempt || cur.attempt || 1, elapsed: d.elapsed_time,
    inputs: d.inputs !== undefined ? d.inputs : cur.inputs, outputs: d.outputs, error: d.error, port: d.port };
  return next === cur ? states : { ...states, [d.node_id]: next };
}

/** POST JSON with the CSRF token; always resolves to the JSON body plus httpStatus. */
export async function post(url, body) {
  const csrf = (document.querySelector("[name=csrfmiddlewaretoken]") || {}).value;
  const res = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" }, body: JSON.stringify(body || {}), credentials: "same-origin" });
  let json;
  try { json = await res.json(); } catch (e) { json = { ok: false, detail: `The server answered ${res.status}.`, errors: [] }; }
  json.httpStatus = res.status;
  return json;
}

