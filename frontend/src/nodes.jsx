/* Canvas nodes: a step (handles: one input on the left, one output per outcome port on the
 * right) and a loop, drawn as a frame whose body nodes live inside it (React Flow sub-flow). */
import React, { memo, useEffect } from "react";
import { Handle, Position, useUpdateNodeInternals } from "@xyflow/react";

const STATUS_WORDS = { running: "running", retrying: "retrying", succeeded: "succeeded", failed: "failed", skipped: "skipped",
  stopped: "stopped", waiting: "waiting", pending: "pending", timeout: "timed out", cancelled: "cancelled" };

// React Flow measures handles once; when a node's ports change (a case renamed, on_error set to
// branch) it must measure again, or connections from the new port find no handle.
function usePortsMeasured(flowId, ports) {
  const update = useUpdateNodeInternals();
  const key = ports.map((p) => p || "out").join("|");
  useEffect(() => { update(flowId); }, [flowId, key, update]);
}

function Ports({ ports, connectable }) {
  if (!ports.length) return null;
  return ports.map((p, i) => {
    const top = ports.length === 1 ? "50%" : `${((i + 1) * 100) / (ports.length + 1)}%`;
    const id = p || "out";
    return (
      <React.Fragment key={id}>
        <Handle type="source" position={Position.Right} id={id} style={{ top }} isConnectable={connectable}
          className={`port port-${id === "error" ? "error" : id === "else" ? "else" : p ? "case" : "normal"}`} data-port={id} title={p ? `outcome “${p}”: drag to a node` : "drag to the next node"} />
        {p ? <span className="port-label" style={{ top }}>{p}</span> : null}
      </React.Fragment>
    );
  });
}

function Body({ data }) {
  const st = data.status;
  return (
    <>
      <div className="wn-head">
        <span className={`wn-icon t-${data.type}`} aria-hidden="true">{(data.typeTitle || data.type).slice(0, 1)}</span>
        <span className="wn-title" title={data.title}>{data.title}</span>
      </div>
      <div className="wn-sub"><code>{data.id}</code> · {data.typeTitle}</div>
      {st ? <div className="wn-status"><span className={`badge st-${st.status}`} data-status={st.status}>{STATUS_WORDS[st.status] || st.status}</span>
        {st.elapsed != null ? <span className="muted"> {Number(st.elapsed).toFixed(2)} s</span> : null}</div> : null}
      {data.errors && data.errors.length ? (
        <ul className="wn-errors" title={data.errors.join("\n")}>
          {data.errors.slice(0, 2).map((m, i) => <li key={i}>{m}</li>)}
          {data.errors.length > 2 ? <li>and {data.errors.length - 2} more</li> : null}
        </ul>
      ) : null}
    </>
  );
}

export const StepNode = memo(function StepNode({ data, selected }) {
  const st = data.status;
  usePortsMeasured(data.flowId, data.ports);
  return (
    <div className={`wn${selected ? " selected" : ""}${data.errors && data.errors.length ? " has-errors" : ""}${st ? ` run-${st.status}` : ""}${data.skip ? " do-not-run" : ""}`}
      data-node-id={data.flowId} data-testid={`node-${data.flowId}`} data-status={st ? st.status : undefined}>
      {data.hasInput ? <Handle type="target" position={Position.Left} id="in" isConnectable={data.connectable} className="port port-in" /> : null}
      <Body data={data} />
      <Ports ports={data.ports} connectable={data.connectable} />
    </div>
  );
});

export const LoopNode = memo(function LoopNode({ data, selected }) {
  const st = data.status;
  usePortsMeasured(data.flowId, data.ports);
  return (
    <div className={`wn wn-loop${selected ? " selected" : ""}${data.errors && data.errors.length ? " has-errors" : ""}${st ? ` run-${st.status}` : ""}`}
      data-node-id={data.flowId} data-testid={`node-${data.flowId}`} data-status={st ? st.status : undefined} style={{ width: data.width, height: data.height }}>
      {data.hasInput ? <Handle type="target" position={Position.Left} id="in" isConnectable={data.connectable} className="port port-in" style={{ top: 28 }} /> : null}
      <div className="wn-loop-head"><Body data={data} /></div>
      {data.bodyEmpty ? <p className="wn-loop-hint">Drop nodes here: they run once per item (<code>item</code>, <code>index</code>).</p> : null}
      <Ports ports={data.ports} connectable={data.connectable} />
    </div>
  );
});

export const nodeTypes = { step: StepNode, loop: LoopNode };
