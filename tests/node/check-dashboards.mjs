// check-dashboards.mjs -- the Grafana dashboards against Grafana's published
// dashboard schema: the TypeScript types generated from its CUE schema in
// the @grafana/schema package (pinned in package-lock.json). Each file,
// without its import envelope (__inputs, __requires, which only the import
// UI reads), becomes an object literal typed as Dashboard and the
// TypeScript compiler checks it: unknown fields (excess property checks),
// wrong types and values outside the schema's enumerations are errors.
// Prints "dashboards: N match the Grafana dashboard schema" or the
// compiler's errors; exit 1 when any does not match.
//
// Two artifacts of TypeScript (not of the schema) are handled: a query's
// datasource-specific fields (rawSql, expr, ...) are allowed beside the
// DataQuery fields, as the schema's DataQuery is open to them (each query is
// wrapped in q(), whose parameter adds an index signature; the common fields
// such as refId stay checked), and annotation targets likewise (a()); and a
// string where the schema has an enumeration (MappingType "value") is
// accepted only when it is one of that enumeration's values, read from the
// package at run time.
// Usage: node check-dashboards.mjs FILE.json...
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as schema from "@grafana/schema";

// JSON as TypeScript source, with queries wrapped (see above).
function ts(v, key, inAnnotations) {
  if (Array.isArray(v)) {
    const items = v.map((x) => ts(x, null, inAnnotations || key === "annotations"));
    if (key === "targets") return "[" + items.map((x) => `q(${x})`).join(", ") + "]";
    return "[" + items.join(", ") + "]";
  }
  if (v && typeof v === "object") {
    const parts = Object.entries(v).map(([k, x]) => {
      let src = ts(x, k, inAnnotations || k === "annotations");
      if (k === "target" && inAnnotations) src = `a(${src})`;
      return `${JSON.stringify(k)}: ${src}`;
    });
    return "{" + parts.join(", ") + "}";
  }
  return JSON.stringify(v);
}

const here = path.dirname(fileURLToPath(import.meta.url));
const files = process.argv.slice(2);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "arbiter-dash-"));
const sources = [];
for (const f of files) {
  const d = JSON.parse(fs.readFileSync(f, "utf8"));
  for (const k of ["__inputs", "__requires"]) delete d[k];
  const name = path.basename(f).replace(/[^A-Za-z0-9]/g, "_") + ".ts";
  const src = path.join(dir, name);
  fs.writeFileSync(src,
    'import type { Dashboard, DataQuery } from "@grafana/schema";\n' +
    "type Query = DataQuery & { [k: string]: unknown };\n" +
    "const q = (x: Query): Query => x;\n" +
    "const a = q;\n" +
    `// ${f}\nexport const dashboard: Dashboard = ${ts(d, null, false)};\n`);
  sources.push(src);
}
fs.writeFileSync(path.join(dir, "tsconfig.json"), JSON.stringify({
  compilerOptions: {
    strict: true, noEmit: true, skipLibCheck: true, module: "nodenext",
    moduleResolution: "nodenext", target: "es2022",
    typeRoots: [], baseUrl: here,
    paths: { "@grafana/schema": [path.join(here, "node_modules/@grafana/schema")] },
  },
  files: sources,
}));
let out = "";
try {
  execFileSync(path.join(here, "node_modules/.bin/tsc"), ["-p", dir, "--pretty", "false"],
               { stdio: "pipe", cwd: here });
} catch (e) {
  out = `${e.stdout}${e.stderr}`;
}
fs.rmSync(dir, { recursive: true });
const errors = out.split("\n").filter((l) => l.includes("error TS")).filter((l) => {
  const m = l.match(/Type '"([^"]*)"' is not assignable to type '(\w+)'\.$/);
  return !(m && schema[m[2]] && Object.values(schema[m[2]]).includes(m[1]));
});
if (errors.length) {
  console.error(`dashboards: SCHEMA MISMATCH\n${errors.join("\n")}`);
  process.exit(1);
}
console.log(`dashboards: ${files.length} match the Grafana dashboard schema`);
