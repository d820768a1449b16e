// Evaluate Plansheet functions exactly as the Office.js add-in does in Excel, from the command line.
//
//   echo '{"url": "http://127.0.0.1:8000", "token": "ps_...",
//          "calls": [{"name": "PS_PLANNED", "args": ["EMEA", "Q1"]},
//                    {"name": "PS_ROLLUP", "args": [[["Line ID", "..."], ["..."]], "channel"]}]}' \
//     | node tests/hosts/officejs_harness.mjs
//
// Loads addin/officejs/functions.js unchanged with Office's globals stubbed, lets it associate its
// functions from the service's /addin/functions.json, then calls them as Excel calls a sheet's
// cells: all at once (so they are batched), each with its declared arguments (scalars for scalar
// parameters, 2-D arrays for matrix ones; null for omitted optional ones) and an invocation object.
// Prints a JSON list, one entry per call: the cell's value (a scalar, or a 2-D array for a matrix
// result) or {"error": "#N/A", "message": "..."} for an Excel error. A name the add-in does not
// define gives {"error": "#NAME?"}, as Excel does.
import { installHost, invokeAll, loadScript } from "../../addin/officejs/test/host_stubs.mjs";

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

async function main() {
  const input = JSON.parse(await readStdin());
  if (!input || typeof input.url !== "string" || !Array.isArray(input.calls)) {
    throw new Error('stdin must be {"url": "...", "token": "...", "calls": [{"name": "PS_...", "args": [...]}]}');
  }
  const host = installHost({
    settings: { "plansheet.serviceUrl": input.url.replace(/\/+$/, ""), "plansheet.token": input.token || "" },
  });
  loadScript("functions.js");
  const functions = globalThis.PlansheetFunctions;
  await functions.ready;
  const metadata = { functions: [...functions.registered.values()].map((r) => r.meta) };
  const answers = await invokeAll(host.associations, metadata, input.calls);
  process.stdout.write(`${JSON.stringify(answers)}\n`);
}

main().catch((error) => {
  process.stderr.write(`officejs_harness: ${(error && error.stack) || error}\n`);
  process.exit(1);
});
