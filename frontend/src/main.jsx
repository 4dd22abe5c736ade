/* Entry point: mounts the editor on #weft-editor with the page's embedded JSON (#editor-data). */
import React from "react";
import { createRoot } from "react-dom/client";
import EditorRoot from "./Editor.jsx";

const root = document.getElementById("weft-editor");
if (root) {
  const data = JSON.parse(document.getElementById("editor-data").textContent);
  createRoot(root).render(<EditorRoot data={data} />);
}
