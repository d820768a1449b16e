"use strict";
// Code.gs against the service's catalogue: one custom function per catalogue function, with the
// JSDoc Sheets shows as help (description and parameters as the metadata has them), and the
// manifest's runtime and scopes.

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const test = require("node:test");
const { createRuntime, plain, CODE_PATH } = require("./gas_stubs.js");
const { service, SKIP, metadata } = require("./service.js");

const CODE = fs.readFileSync(CODE_PATH, "utf8");
const MANIFEST = JSON.parse(fs.readFileSync(path.join(path.dirname(CODE_PATH), "appsscript.json"), "utf8"));

/** Every `/** ... *\/ function NAME(params)` of Code.gs: {name, params, description, tags}. */
function documentedFunctions(code) {
  const out = new Map();
  const pattern = /\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*function\s+([A-Za-z_$][\w$]*)\s*\(([^)]*)\)/g;
  let m;
  while ((m = pattern.exec(code))) {
    const lines = m[1].split("\n").map((l) => l.replace(/^\s*\*\s?/, "").trim());
    const description = [];
    const tags = [];
    for (const line of lines) {
      if (line.startsWith("@")) tags.push(line);
      else if (tags.length) tags[tags.length - 1] += line ? " " + line : "";
      else if (line) description.push(line);
    }
    const params = tags
      .filter((t) => t.startsWith("@param"))
      .map((t) => {
        const p = /^@param\s+\{([^}]+)\}\s+(\S+)\s+(.*)$/.exec(t);
        assert.ok(p, `malformed @param in ${m[2]}: ${t}`);
        return { type: p[1], name: p[2], description: p[3].trim() };
      });
    out.set(m[2], {
      name: m[2],
      signature: m[3].split(",").map((s) => s.trim()).filter(Boolean),
      description: description.join(" "),
      custom: tags.includes("@customfunction"),
      params,
    });
  }
  return out;
}

test("the manifest: V8, Stackdriver logging, and exactly the four scopes the script needs", () => {
  assert.equal(MANIFEST.runtimeVersion, "V8");
  assert.equal(MANIFEST.exceptionLogging, "STACKDRIVER");
  assert.equal(typeof MANIFEST.timeZone, "string");
  assert.deepEqual([...MANIFEST.oauthScopes].sort(), [
    "https://www.googleapis.com/auth/script.container.ui", // the menu and its dialogs
    "https://www.googleapis.com/auth/script.external_request", // UrlFetchApp
    "https://www.googleapis.com/auth/script.scriptapp", // the time-driven refresh trigger
    "https://www.googleapis.com/auth/spreadsheets.currentonly", // this spreadsheet only
  ]);
});

test("Code.gs loads, and its custom functions are the only @customfunction globals", () => {
  const runtime = createRuntime();
  const documented = documentedFunctions(CODE);
  const custom = [...documented.values()].filter((f) => f.custom).map((f) => f.name);
  assert.ok(custom.length > 0);
  for (const name of custom) {
    assert.equal(typeof runtime.context[name], "function", name);
    assert.ok(!name.endsWith("_"), `${name}: a custom function's name cannot end with _`);
  }
  assert.deepEqual(custom.sort(), Object.keys(plain(runtime.context.FUNCTIONS_)).sort());
});

test("every catalogue function has a custom function whose JSDoc matches the metadata", { skip: SKIP }, async () => {
  const functions = await metadata();
  const documented = documentedFunctions(CODE);
  const table = plain(createRuntime().context.FUNCTIONS_);
  assert.deepEqual(Object.keys(table).sort(), functions.map((f) => f.id).sort(), "FUNCTIONS_ is the catalogue");
  assert.deepEqual(functions.filter((f) => table[f.id].kind === "live").map((f) => f.id).sort(), [...service.live].sort());
  for (const f of functions) {
    const doc = documented.get(f.id);
    assert.ok(doc, `Code.gs has no documented function ${f.id}`);
    assert.ok(doc.custom, `${f.id} lacks @customfunction`);
    assert.equal(doc.description, f.description, `${f.id}: description`);
    assert.deepEqual(doc.signature, f.parameters.map((p) => p.name), `${f.id}: parameters of the function`);
    assert.deepEqual(doc.params.map((p) => p.name), f.parameters.map((p) => p.name), `${f.id}: @param names`);
    f.parameters.forEach((p, i) => {
      const d = doc.params[i];
      // Sheets ignores JSDoc's optional syntax ([name]), so optional parameters say so in words.
      assert.equal(d.description, (p.optional ? "(optional) " : "") + p.description, `${f.id}(${p.name})`);
      assert.equal(d.type.includes("[][]"), p.dimensionality === "matrix", `${f.id}(${p.name}): {${d.type}}`);
    });
    // Live functions stream in Excel (options.stream) and are recalculated on refresh here, as the volatile ones are.
    assert.equal(table[f.id].kind !== "pure", !!(f.options.volatile || f.options.stream), `${f.id}: volatile or streaming`);
    assert.equal(table[f.id].result, f.result.dimensionality, `${f.id}: result`);
  }
});
