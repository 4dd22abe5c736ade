// Builds the editor into ../static/editor/ (editor.js, editor.css). Deterministic: the same
// sources and lock file give byte-identical files (no timestamps, no absolute paths, no hashes),
// so CI can rebuild and compare with the committed bundle.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
await build({
  absWorkingDir: here,
  entryPoints: { editor: "src/main.jsx", "editor-style": "src/style.css" },
  outdir: "../static/editor",
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  jsx: "automatic",
  loader: { ".js": "jsx" },
  legalComments: "linked",
  sourcemap: false,
  charset: "utf8",
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
});
