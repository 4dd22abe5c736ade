/* Forms generated from a node type's config JSON Schema (the server's node registry).
 *
 * enum → select; string → value field (CodeMirror, completion); number/integer → number field;
 * boolean → checkbox; object with properties → a section (optional ones folded while empty);
 * free map (headers, mapping, outputs) → key/value rows; array of objects → repeatable sub-forms;
 * anything else → a value field that also takes JSON. Keys the schema does not name are kept.
 * Every field carries data-path (its JSON pointer from the node) so errors land on it. */
import React, { useEffect, useState } from "react";
import ValueField from "./ValueField.jsx";
import { fieldWords } from "./graph.js";

const types = (s) => (s ? (Array.isArray(s.type) ? s.type : s.type ? [s.type] : []) : []);
const isEmpty = (v) => v === undefined || v === null || (typeof v === "object" && Object.keys(v).length === 0);

function FieldErrors({ errors, path }) {
  const list = (errors && errors[path]) || [];
  if (!list.length) return null;
  return <ul className="field-errors" role="alert">{list.map((m, i) => <li key={i}>{m}</li>)}</ul>;
}

function Label({ htmlFor, name, schema, required }) {
  return (
    <label className="f-label" htmlFor={htmlFor}>
      {(schema && schema.title) || fieldWords(name)}{required ? <span className="req" title="required"> *</span> : null}
      {schema && schema.description ? <span className="f-help">{schema.description}</span> : null}
    </label>
  );
}

const fid = (path) => "f" + path.replace(/[^A-Za-z0-9_]/g, "_");

/** Text for a value that may be JSON: strings as they are, anything else as JSON. */
function AnyField({ value, onChange, path, ctx, readOnly, name }) {
  const isText = value === undefined || typeof value === "string";
  const [json, setJson] = useState(!isText);
  const [text, setText] = useState(isText ? value || "" : JSON.stringify(value, null, 1));
  const [bad, setBad] = useState(false);
  useEffect(() => {
    const cur = json ? (() => { try { return JSON.parse(text); } catch (e) { return Symbol.for("bad"); } })() : text;
    if (JSON.stringify(cur) !== JSON.stringify(value === undefined ? (json ? undefined : "") : value)) {
      const nowText = value === undefined || typeof value === "string";
      setJson(!nowText);
      setText(nowText ? value || "" : JSON.stringify(value, null, 1));
      setBad(false);
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [value]);
  const change = (t) => {
    setText(t);
    if (!json) { onChange(t === "" ? undefined : t); return; }
    try { const v = JSON.parse(t); setBad(false); onChange(v); } catch (e) { setBad(true); }
  };
  return (
    <div className="any-field">
      <ValueField id={fid(path)} value={text} onChange={change} getContext={ctx} readOnly={readOnly} multiline={json} label={fieldWords(name)} invalid={bad} />
      <label className="json-toggle small"><input type="checkbox" checked={json} disabled={readOnly}
        onChange={(e) => { const on = e.target.checked; setJson(on); if (on) change(text && !/^\s*[[{"\d-]|true|false|null/.test(text) ? JSON.stringify(text) : text || "{}"); else change(typeof value === "string" ? value : text); }} /> JSON</label>
      {bad ? <span className="field-errors">not valid JSON yet</span> : null}
    </div>
  );
}

function MapField({ value, onChange, path, ctx, readOnly, errors, keyLabel }) {
  const obj = value && typeof value === "object" && !Array.isArray(value) ? value : {};
  const entries = Object.entries(obj);
  const setEntries = (list) => onChange(Object.fromEntries(list));
  const add = () => { let k = "field", i = 1; while (obj[k] !== undefined) k = `field${++i}`; setEntries([...entries, [k, ""]]); };
  return (
    <div className="map-field" data-path={path}>
      {entries.map(([k, v], i) => (
        <div className="map-row" key={i} data-path={`${path}/${k}`}>
          <input className="map-key" aria-label={keyLabel || "key"} value={k} disabled={readOnly}
            onChange={(e) => { const nk = e.target.value; if (nk !== k && obj[nk] !== undefined) return; const list = [...entries]; list[i] = [nk, v]; setEntries(list); }} />
          <AnyField value={v} path={`${path}/${k}`} name={k} ctx={ctx} readOnly={readOnly}
            onChange={(nv) => { const list = [...entries]; list[i] = [k, nv === undefined ? "" : nv]; setEntries(list); }} />
          {readOnly ? null : <button type="button" className="link small" title={`Remove ${k}`} onClick={() => setEntries(entries.filter((_, j) => j !== i))}>✕</button>}
          <FieldErrors errors={errors} path={`${path}/${k}`} />
        </div>
      ))}
      {readOnly ? null : <button type="button" className="small add-row" onClick={add}>+ {keyLabel || "entry"}</button>}
    </div>
  );
}

export function Field({ schema, value, onChange, path, name, required, ctx, readOnly, errors, special }) {
  schema = schema || {};
  const t = types(schema);
  const id = fid(path);
  const custom = special && special(name, schema, value, onChange, path);
  let body;
  if (custom) body = custom;
  else if (schema.enum) {
    body = (
      <select id={id} value={value === undefined ? "" : String(value)} disabled={readOnly}
        onChange={(e) => { const raw = e.target.value; const hit = schema.enum.find((x) => String(x) === raw); onChange(raw === "" ? undefined : hit); }}>
        {required && value !== undefined ? null : <option value="">(default)</option>}
        {schema.enum.map((x) => <option key={String(x)} value={String(x)}>{String(x)}</option>)}
      </select>
    );
  } else if (t.includes("boolean") && t.length === 1) {
    body = <input id={id} type="checkbox" checked={!!value} disabled={readOnly} onChange={(e) => onChange(e.target.checked)} />;
  } else if ((t.includes("number") || t.includes("integer")) && !t.includes("string")) {
    body = <input id={id} type="number" step={t.includes("integer") ? 1 : "any"} value={value === undefined ? "" : value} disabled={readOnly}
      onChange={(e) => onChange(e.target.value === "" ? undefined : Number(e.target.value))} />;
  } else if (t.includes("string")) {
    const numeric = t.includes("number") || t.includes("integer");
    // A condition (`when`) is CEL as a whole: completion everywhere in it, not only inside {{ }}.
    const fieldCtx = name === "when" && ctx ? () => ({ ...ctx(), cel: true }) : ctx;
    body = <ValueField id={id} value={value === undefined ? "" : String(value)} getContext={fieldCtx} readOnly={readOnly} label={fieldWords(name)}
      invalid={!!(errors && errors[path])}
      onChange={(s) => onChange(s === "" ? undefined : numeric && /^-?\d+(\.\d+)?$/.test(s.trim()) ? Number(s) : s)} />;
  } else if (t.includes("object") && schema.properties) {
    return <ObjectFields schema={schema} value={value} onChange={onChange} path={path} name={name} required={required} ctx={ctx} readOnly={readOnly} errors={errors} special={special} />;
  } else if (t.includes("object")) {
    body = <MapField value={value} onChange={(v) => onChange(isEmpty(v) && !required ? undefined : v)} path={path} ctx={ctx} readOnly={readOnly} errors={errors} keyLabel={name === "headers" ? "header" : name === "outputs" ? "output" : "field"} />;
  } else if (t.includes("array") && schema.items && schema.items.properties) {
    const list = Array.isArray(value) ? value : [];
    body = (
      <div className="array-field" data-path={path}>
        {list.map((item, i) => (
          <div className="array-item" key={i} data-path={`${path}/${i}`}>
            <ObjectFields schema={schema.items} value={item} path={`${path}/${i}`} name={`${name} ${i + 1}`} ctx={ctx} readOnly={readOnly} errors={errors} special={special} flat
              onChange={(v) => { const next = [...list]; next[i] = v || {}; onChange(next); }} />
            {readOnly ? null : <button type="button" className="link small" onClick={() => onChange(list.filter((_, j) => j !== i))}>Remove</button>}
          </div>
        ))}
        {readOnly ? null : <button type="button" className="small add-row" onClick={() => onChange([...list, {}])}>+ {name === "cases" ? "case" : "item"}</button>}
      </div>
    );
  } else {
    body = <AnyField value={value} onChange={onChange} path={path} ctx={ctx} readOnly={readOnly} name={name} />;
  }
  return (
    <div className="f" data-path={path}>
      <Label htmlFor={id} name={name} schema={schema} required={required} />
      {body}
      <FieldErrors errors={errors} path={path} />
    </div>
  );
}

export function ObjectFields({ schema, value, onChange, path, name, required, ctx, readOnly, errors, special, flat }) {
  const obj = value && typeof value === "object" && !Array.isArray(value) ? value : {};
  const req = new Set(schema.required || []);
  const set = (k, v) => {
    const next = { ...obj };
    if (v === undefined) delete next[k]; else next[k] = v;
    onChange(isEmpty(next) && !required && !flat ? undefined : next);
  };
  const fields = Object.entries(schema.properties || {}).map(([k, s]) => (
    <Field key={k} schema={s} value={obj[k]} onChange={(v) => set(k, v)} path={`${path}/${k}`} name={k} required={req.has(k)}
      ctx={ctx} readOnly={readOnly} errors={errors} special={special} />
  ));
  if (flat || !name) return <div className="fields" data-path={path}>{fields}<FieldErrors errors={errors} path={path} /></div>;
  const hasError = errors && Object.keys(errors).some((p) => p.startsWith(path));
  return (
    <details className="f section" data-path={path} open={required || !isEmpty(obj) || hasError}>
      <summary>{schema.title || fieldWords(name)}{required ? " *" : ""}</summary>
      {fields}
      <FieldErrors errors={errors} path={path} />
    </details>
  );
}
