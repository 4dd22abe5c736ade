/* A value field on CodeMirror 6: templates highlighted, completion (complete.js), `{{` closes
 * itself. The document is the field's text; `onChange(text)` on every edit. */
import React, { useEffect, useRef } from "react";
import { EditorState, Compartment } from "@codemirror/state";
import { EditorView, keymap, placeholder as cmPlaceholder, Decoration, MatchDecorator, ViewPlugin } from "@codemirror/view";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { autocompletion, completionKeymap, startCompletion } from "@codemirror/autocomplete";
import { completionSource } from "./complete.js";

const tokenMarks = new MatchDecorator({
  regexp: /\{\{\{[^}]*\}\}\}|\{\{[\s\S]*?\}\}|\$\{[^}]*\}|\$\[[^\]]*\]|^\$[.[][^\s]*/g,
  decoration: (m) => Decoration.mark({ class: m[0].startsWith("{{") ? "cm-weft-expr" : m[0].startsWith("${") ? "cm-weft-param" : m[0].startsWith("$[") ? "cm-weft-macro" : "cm-weft-path" }),
});
const highlight = ViewPlugin.fromClass(class {
  constructor(view) { this.decorations = tokenMarks.createDeco(view); }
  update(u) { this.decorations = tokenMarks.updateDeco(u, this.decorations); }
}, { decorations: (v) => v.decorations });

// Typing the second "{" of "{{" writes "{{  }}" with the cursor in the middle and opens completion.
const closeBraces = EditorView.inputHandler.of((view, from, to, text) => {
  if (text !== "{") return false;
  const prev = view.state.sliceDoc(from - 1, from);
  const prev2 = view.state.sliceDoc(from - 2, from - 1);
  const next = view.state.sliceDoc(to, to + 2);
  if (prev !== "{" || prev2 === "{" || next === "}}") return false;
  view.dispatch({ changes: { from, to, insert: "{  }}" }, selection: { anchor: from + 2 }, userEvent: "input.type" });
  setTimeout(() => startCompletion(view), 0);
  return true;
});

const theme = EditorView.theme({
  "&": { fontSize: "13px", border: "1px solid var(--line, #cbd5e1)", borderRadius: "6px", background: "var(--field, #fff)" },
  "&.cm-focused": { outline: "2px solid var(--accent, #4f46e5)", outlineOffset: "-1px" },
  ".cm-content": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, monospace", padding: "5px 2px", minHeight: "18px" },
  ".cm-line": { padding: "0 6px" },
  ".cm-scroller": { overflow: "auto", maxHeight: "180px" },
});

export default function ValueField({ value, onChange, getContext, readOnly, multiline, placeholder, id, label, invalid }) {
  const host = useRef(null);
  const view = useRef(null);
  const ro = useRef(new Compartment());
  const changeRef = useRef(onChange);
  changeRef.current = onChange;
  const ctxRef = useRef(getContext);
  ctxRef.current = getContext;

  useEffect(() => {
    const enterKeys = multiline ? [] : [{ key: "Enter", run: () => true }];
    const state = EditorState.create({
      doc: value == null ? "" : String(value),
      extensions: [
        history(),
        keymap.of([...completionKeymap, ...enterKeys, ...defaultKeymap, ...historyKeymap]),
        autocompletion({ override: [completionSource(() => (ctxRef.current ? ctxRef.current() : {}))], icons: false, activateOnTyping: true }),
        closeBraces, highlight, theme,
        EditorView.lineWrapping,
        cmPlaceholder(placeholder || ""),
        ro.current.of([EditorState.readOnly.of(!!readOnly), EditorView.editable.of(!readOnly)]),
        EditorView.contentAttributes.of({ "aria-label": label || "value", ...(id ? { "data-field-id": id } : {}) }),
        EditorView.updateListener.of((u) => { if (u.docChanged) changeRef.current && changeRef.current(u.state.doc.toString()); }),
      ],
    });
    view.current = new EditorView({ state, parent: host.current });
    return () => view.current.destroy();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  // Outside changes (undo on the canvas, a rename) replace the text when it differs.
  useEffect(() => {
    const v = view.current;
    const text = value == null ? "" : String(value);
    if (v && v.state.doc.toString() !== text) v.dispatch({ changes: { from: 0, to: v.state.doc.length, insert: text } });
  }, [value]);

  useEffect(() => {
    const v = view.current;
    if (v) v.dispatch({ effects: ro.current.reconfigure([EditorState.readOnly.of(!!readOnly), EditorView.editable.of(!readOnly)]) });
  }, [readOnly]);

  return <div className={`value-field${invalid ? " invalid" : ""}`} ref={host} id={id} />;
}
