/* Completion for value fields: what may be written where (WORKFLOW_FORMAT.md "Values").
 *
 * `{{ … }}` CEL: inputs, upstream node ids and their output fields, params, run, item/index in a
 * loop body, error on an error branch, CEL and Weft functions. `${…}` parameters. `$[…]` time
 * macros. `{{{…}}}` date phrases. A credential field: the team's credential names. Anywhere else
 * Ctrl+Space offers whole `{{ … }}` references. */

export const WEFT_FUNCTIONS = [
  ["mask", "mask(value)", "hide all but the ends of a string"], ["upper", "upper(text)", "upper case"],
  ["lower", "lower(text)", "lower case"], ["trim", "trim(text)", "strip surrounding spaces"],
  ["regex_extract", "regex_extract(text, pattern)", "first match (or group 1)"],
  ["regex_replace", "regex_replace(text, pattern, replacement)", "replace every match"],
  ["format_date", "format_date(value, pattern)", "format a date/time"], ["now", "now()", "the current time"],
  ["json", "json(value)", "the value as JSON text"], ["default", "default(value, fallback)", "fallback when null"],
];
export const CEL_FUNCTIONS = [
  ["size", "size(x)", "length of a string, list or map"], ["has", "has(a.b)", "whether a field is present"],
  ["int", "int(x)", "to integer"], ["double", "double(x)", "to number"], ["string", "string(x)", "to string"],
  ["bool", "bool(x)", "to boolean"], ["matches", "s.matches(re)", "regular expression test"],
  ["contains", "s.contains(t)", "substring test"], ["startsWith", "s.startsWith(t)", "prefix test"],
  ["endsWith", "s.endsWith(t)", "suffix test"], ["exists", "list.exists(x, pred)", "any element matches"],
  ["all", "list.all(x, pred)", "every element matches"], ["map", "list.map(x, expr)", "transform each element"],
  ["filter", "list.filter(x, pred)", "keep matching elements"],
];
export const MACROS = [
  "yyyyMMdd", "yyyy-MM-dd", "HHmmss", "yyyyMMdd-1", "yyyyMMdd+7", "HHmmss-1/24", "add_months(yyyyMMdd,-1)",
  "this_day(yyyy-MM-dd)", "last_day(yyyy-MM-dd)", "month_first_day(yyyy-MM-dd,-1)", "month_last_day(yyyy-MM-dd,-1)",
  "week_first_day(yyyy-MM-dd,0)", "week_last_day(yyyy-MM-dd,0)", "year_week(yyyy-MM-dd)",
];
export const DATE_PHRASES = ["today", "yesterday", "yesterday - 6 days", "first day of last month", "last day of this month",
  "last day of this quarter", "Monday last week"];
export const BUILTIN_PARAMS = [["system.biz.date", "the day before the business time (yyyyMMdd)"],
  ["system.biz.curdate", "the business day (yyyyMMdd)"], ["system.datetime", "yyyyMMddHHmmss"]];
const RUN_FIELDS = { id: "the run's id", business_time: "the business time", started_at: "when it started" };
const ERROR_FIELDS = { code: "error code", message: "error message", detail: "details" };

function typeOf(v) {
  if (v === null || v === undefined) return "";
  if (Array.isArray(v)) return "list";
  return typeof v === "object" ? "object" : typeof v;
}

/** The value at a dotted path of a known shape (a last-run value or an example). */
function walkShape(shape, parts) {
  let cur = shape;
  for (const p of parts) {
    if (cur === null || cur === undefined) return undefined;
    if (Array.isArray(cur)) cur = cur[0];
    if (cur && typeof cur === "object") cur = cur[p];
    else return undefined;
  }
  return cur;
}

function fieldsOf(value) {
  if (Array.isArray(value)) value = value[0];
  if (!value || typeof value !== "object") return [];
  return Object.entries(value).map(([k, v]) => ({ label: k, type: "property", detail: typeOf(v) }));
}

/** Options for a dotted name inside an expression. */
function memberOptions(ctx, head, rest) {
  if (head === "inputs") {
    if (!rest.length) return Object.entries(ctx.inputs || {}).map(([k, d]) => ({ label: k, type: "variable", detail: (d && d.type) || "input", info: d && d.description }));
    return [];
  }
  if (head === "params") {
    if (!rest.length) return (ctx.params || []).map((k) => ({ label: k, type: "variable", detail: "parameter" }));
    return [];
  }
  if (head === "run" && !rest.length) return Object.entries(RUN_FIELDS).map(([k, d]) => ({ label: k, type: "property", detail: d }));
  if (head === "error" && ctx.onErrorBranch && !rest.length) return Object.entries(ERROR_FIELDS).map(([k, d]) => ({ label: k, type: "property", detail: d }));
  const node = (ctx.nodes || []).find((n) => n.id === head);
  if (node) return fieldsOf(walkShape(node.shape, rest));
  if (head === "item" && ctx.inLoop) return fieldsOf(walkShape(ctx.itemShape, rest));
  return [];
}

function topOptions(ctx) {
  const opts = [
    { label: "inputs", type: "namespace", detail: "the run's inputs", boost: 10 },
    { label: "params", type: "namespace", detail: "parameters" },
    { label: "run", type: "namespace", detail: "id, business_time, started_at" },
  ];
  Object.entries(ctx.inputs || {}).forEach(([k, d]) => opts.push({ label: `inputs.${k}`, type: "variable", detail: (d && d.type) || "input", boost: 8 }));
  (ctx.nodes || []).forEach((n) => {
    opts.push({ label: n.id, type: "class", detail: `node · ${n.title}`, boost: 6 });
    fieldsOf(n.shape).forEach((f) => opts.push({ label: `${n.id}.${f.label}`, type: "property", detail: f.detail || "output", boost: 4 }));
  });
  if (ctx.inLoop) opts.push({ label: "item", type: "variable", detail: "the current item", boost: 9 }, { label: "index", type: "variable", detail: "the item's index", boost: 9 });
  if (ctx.onErrorBranch) opts.push({ label: "error", type: "variable", detail: "the failed node's error", boost: 9 });
  [...WEFT_FUNCTIONS, ...CEL_FUNCTIONS].forEach(([name, sig, info]) => opts.push({ label: name, type: "function", detail: sig, info, apply: `${name}()`, boost: -1 }));
  return opts;
}

/** A CodeMirror CompletionSource over a context getter (so it always sees the current scope). */
export function completionSource(getCtx) {
  return (context) => {
    const ctx = getCtx() || {};
    const pos = context.pos;
    const before = context.state.sliceDoc(Math.max(0, pos - 500), pos);
    const lastOpen = before.lastIndexOf("{{");
    const lastClose = before.lastIndexOf("}}");
    // {{{ date phrases }}}
    const phrase = /\{\{\{([^}]*)$/.exec(before);
    if (phrase) {
      return { from: pos - phrase[1].length, options: DATE_PHRASES.map((p) => ({ label: p, type: "constant", apply: `${p}}}}`, detail: "date" })) };
    }
    if (lastOpen > lastClose || ctx.cel) {
      const word = /([A-Za-z_][\w]*(?:\.[\w]*)*|)$/.exec(before)[1];
      const dot = word.lastIndexOf(".");
      if (dot >= 0) {
        const parts = word.slice(0, dot).split(".");
        const options = memberOptions(ctx, parts[0], parts.slice(1));
        return options.length ? { from: pos - (word.length - dot - 1), options, validFor: /^\w*$/ } : null;
      }
      return { from: pos - word.length, options: topOptions(ctx), validFor: /^[\w.]*$/ };
    }
    const param = /\$\{([\w.]*)$/.exec(before);
    if (param) {
      const names = [...(ctx.params || []).map((p) => [p, "parameter"]), ...BUILTIN_PARAMS];
      return { from: pos - param[1].length, options: names.map(([p, d]) => ({ label: p, type: "variable", detail: d, apply: `${p}}` })) };
    }
    const macro = /\$\[([^\]]*)$/.exec(before);
    if (macro) {
      return { from: pos - macro[1].length, options: MACROS.map((m) => ({ label: m, type: "constant", detail: "time macro", apply: `${m}]` })) };
    }
    if (ctx.credentialField) {
      const word = /[\w.-]*$/.exec(before)[0];
      return { from: pos - word.length, options: (ctx.credentials || []).map((c) => ({ label: c.name, type: "keyword", detail: c.kind || "credential" })) };
    }
    if (context.explicit) {
      const word = /[\w.]*$/.exec(before)[0];
      const opts = topOptions(ctx).filter((o) => o.type !== "function" && o.type !== "namespace")
        .map((o) => ({ ...o, apply: `{{ ${o.label} }}` }));
      (ctx.params || []).forEach((p) => opts.push({ label: `\${${p}}`, type: "variable", detail: "parameter" }));
      MACROS.slice(0, 4).forEach((m) => opts.push({ label: `$[${m}]`, type: "constant", detail: "time macro" }));
      return { from: pos - word.length, options: opts };
    }
    return null;
  };
}
