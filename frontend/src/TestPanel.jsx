/* The test panel: runs the saved draft (`draft: true`; the autosave is flushed first) with inputs
 * from a form generated from the draft's input declarations (defaults filled in), one run at a
 * time, followed live over the websocket, with a link to the run's page. "Run this node" runs
 * one node with its upstream outputs taken from the last test run. */
import React, { forwardRef, useEffect, useImperativeHandle, useRef, useState } from "react";
import { followRun, foldNodeEvent, post } from "./runs.js";
import { humanMessage } from "./graph.js";

const FINAL = new Set(["succeeded", "failed", "stopped", "timeout", "cancelled"]);

function initialValue(decl) {
  if (decl && decl.default !== undefined) return typeof decl.default === "string" ? decl.default : JSON.stringify(decl.default);
  if (decl && decl.type === "boolean") return "false";
  return "";
}

function parseInput(decl, text) {
  const t = (decl && decl.type) || "string";
  if (text === "" && t !== "string") return undefined;
  if (t === "number" || t === "integer") return /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(text.trim()) ? Number(text) : text;
  if (t === "boolean") return text === "true";
  if (t === "object" || t === "array" || t === "file") { try { return JSON.parse(text); } catch (e) { return text; } }
  return text;
}

const TestPanel = forwardRef(function TestPanel({ data, graph, flush, canRun, onStates, onOutputs, lastRunId }, ref) {
  const decls = graph.inputs || {};
  const [values, setValues] = useState(() => Object.fromEntries(Object.entries(decls).map(([k, d]) => [k, initialValue(d)])));
  const [run, setRun] = useState(null); // {id, status, stopping, outputs, error, node}
  const [problems, setProblems] = useState([]);
  const follower = useRef(null);
  const states = useRef({});

  // New declarations get their default; removed ones go.
  useEffect(() => {
    setValues((cur) => {
      const next = {};
      Object.entries(decls).forEach(([k, d]) => { next[k] = cur[k] !== undefined ? cur[k] : initialValue(d); });
      return next;
    });
  }, [JSON.stringify(decls)]); // eslint-disable-line react-hooks/exhaustive-deps

  useEffect(() => () => follower.current && follower.current.close(), []);

  const running = run && !FINAL.has(run.status);

  const follow = (runId, node) => {
    if (follower.current) follower.current.close();
    states.current = {};
    setRun({ id: runId, status: "pending", node });
    onStates({ nodes: {}, finished: false, status: "pending" });
    follower.current = followRun(runId, {
      onEvent: (ev) => {
        states.current = foldNodeEvent(states.current, ev);
        if (ev.type === "run_started" || ev.type === "run_resumed") setRun((r) => ({ ...r, status: "running" }));
        if (ev.type === "run_waiting") setRun((r) => ({ ...r, status: "waiting" }));
        let finished = false, status = null;
        if (ev.type === "run_finished") {
          const d = ev.data || {};
          finished = true; status = d.status;
          setRun((r) => ({ ...r, status: d.status, outputs: d.outputs, error: d.error, stopping: false }));
          const outs = {};
          Object.entries(states.current).forEach(([k, v]) => { if (v.outputs !== undefined) outs[k] = v.outputs; });
          if (!node) onOutputs(runId, outs);
        }
        onStates({ nodes: states.current, finished, status });
      },
    });
  };

  const start = async (url, body, node) => {
    setProblems([]);
    if (running) return;
    setRun({ id: null, status: "starting", node });
    await flush();
    const res = await post(url, body);
    if (!res.ok) {
      setRun(null);
      const list = (res.errors && res.errors.length ? res.errors : [{ path: "", message: res.detail || `HTTP ${res.httpStatus}` }]);
      setProblems([res.detail ? { path: "", message: res.detail } : null, ...list.filter((e) => e.message !== res.detail)].filter(Boolean));
      return;
    }
    follow(res.runId, node);
  };

  const runDraft = () => {
    const inputs = {};
    Object.entries(decls).forEach(([k, d]) => { const v = parseInput(d, values[k] || ""); if (v !== undefined && !(v === "" && !(d && d.required))) inputs[k] = v; });
    start(data.urls.run, { inputs, draft: true }, null);
  };

  useImperativeHandle(ref, () => ({
    runNode: (nodeId) => start(data.urls.runNode, { node: nodeId, runId: lastRunId }, nodeId),
  }));

  const stop = async () => {
    if (!run || !run.id) return;
    setRun((r) => ({ ...r, stopping: true }));
    await post(data.urls.stop.replace("__ID__", run.id), {});
  };

  const clear = () => { if (follower.current) follower.current.close(); setRun(null); onStates(null); };
  const inputProblems = (name) => problems.filter((p) => p.path === `/inputs/${name}` || p.path === `/${name}`);
  const otherProblems = problems.filter((p) => !Object.keys(decls).some((n) => p.path === `/inputs/${n}` || p.path === `/${n}`));

  return (
    <section className="test-panel" id="test-panel" aria-label="Test run">
      <h3>Test the draft</h3>
      <p className="muted small">Runs the saved draft (not a published version); test runs are marked “draft” and never reach Dify's logs or triggers.</p>
      <div id="test-inputs" className="test-inputs">
        {Object.keys(decls).length === 0 ? <p className="muted small">This workflow declares no inputs.</p> : null}
        {Object.entries(decls).map(([name, d]) => {
          const t = (d && d.type) || "string";
          const id = `test-input-${name}`;
          const set = (v) => setValues((cur) => ({ ...cur, [name]: v }));
          let field;
          if (d && Array.isArray(d.enum)) field = <select id={id} value={values[name] || ""} onChange={(e) => set(e.target.value)}><option value="">—</option>{d.enum.map((x) => <option key={String(x)} value={typeof x === "string" ? x : JSON.stringify(x)}>{String(x)}</option>)}</select>;
          else if (t === "boolean") field = <select id={id} value={values[name] || "false"} onChange={(e) => set(e.target.value)}><option value="true">true</option><option value="false">false</option></select>;
          else if (t === "object" || t === "array" || t === "file" || (d && d.format === "paragraph")) field = <textarea id={id} rows={3} value={values[name] || ""} onChange={(e) => set(e.target.value)} placeholder={t === "string" ? "" : t === "array" ? "[ … ] (JSON)" : "{ … } (JSON)"} />;
          else field = <input id={id} type={t === "string" ? "text" : "number"} step={t === "integer" ? 1 : "any"} value={values[name] || ""} onChange={(e) => set(e.target.value)} />;
          const ps = inputProblems(name);
          return (
            <div className="f" key={name} data-path={`/inputs/${name}`}>
              <label className="f-label" htmlFor={id}>{(d && d.title) || name}{d && d.required ? <span className="req"> *</span> : null} <span className="muted small">{t}</span></label>
              {field}
              {ps.length ? <ul className="field-errors">{ps.map((p, i) => <li key={i}>{humanMessage(p.message)}</li>)}</ul> : null}
            </div>
          );
        })}
      </div>
      {otherProblems.length ? <ul className="field-errors" id="run-problems" role="alert">{otherProblems.map((p, i) => <li key={i}>{humanMessage(p.message)}</li>)}</ul> : null}
      {canRun ? (
        <div className="row">
          <button type="button" className="primary" id="run-btn" onClick={runDraft} disabled={!!running} aria-busy={!!running}>
            {running ? "Running…" : "Run"}
          </button>
          {running && run.id ? <button type="button" className="danger" id="stop-btn" onClick={stop} disabled={run.stopping}>{run.stopping ? "Stopping…" : "Stop"}</button> : null}
          {run && !running ? <button type="button" className="link small" id="clear-run-btn" onClick={clear} title="Back to editing">clear</button> : null}
        </div>
      ) : <p className="muted small">Your role cannot run workflows.</p>}
      {run ? (
        <div className="run-info" id="run-info">
          <span className={`badge st-${run.status}`} id="run-status">{run.stopping && running ? "stopping" : run.status}</span>
          {run.node ? <span className="muted small"> node {run.node} only</span> : null}
          {run.id ? <> <a href={data.urls.runPage.replace("__ID__", run.id)} id="run-link">open the run ›</a></> : null}
          {run.error ? <pre className="code small run-error">{run.error.message || JSON.stringify(run.error)}</pre> : null}
          {run.outputs && !running ? <details open><summary>Outputs</summary><pre className="code small" id="run-outputs">{JSON.stringify(run.outputs, null, 2)}</pre></details> : null}
        </div>
      ) : null}
    </section>
  );
});

export default TestPanel;
