/* Live runs list: /ws/runs/ pushes {type: "run.status", runId, status}. A known row gets its
 * badge updated; an unknown run (a new one) reloads the rows with the current filters. */
(function () {
  "use strict";
  const tbody = document.getElementById("runs-rows");
  const dot = document.getElementById("live-dot");
  let refreshing = null;
  const refresh = () => {
    if (refreshing) return;
    refreshing = setTimeout(async () => {
      const url = new URL(location.href);
      if (url.searchParams.get("cursor")) { refreshing = null; return; } // older pages stay still
      url.searchParams.set("fragment", "1");
      const res = await fetch(url, { credentials: "same-origin" });
      if (res.ok) tbody.innerHTML = await res.text();
      refreshing = null;
    }, 300);
  };
  const connect = () => {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws/runs/`);
    ws.onopen = () => dot.classList.add("on");
    ws.onmessage = (msg) => {
      const ev = JSON.parse(msg.data);
      const row = tbody.querySelector(`tr[data-run-id="${ev.runId}"]`);
      if (!row) { refresh(); return; }
      const badge = row.querySelector(".run-status");
      const url = new URL(location.href);
      const wanted = url.searchParams.get("status");
      if (wanted && wanted !== ev.status) { refresh(); return; }
      badge.className = `badge st-${ev.status} run-status`;
      badge.textContent = ev.status;
    };
    ws.onclose = () => { dot.classList.remove("on"); setTimeout(connect, 2000); };
  };
  connect();
})();
