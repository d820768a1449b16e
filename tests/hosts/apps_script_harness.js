#!/usr/bin/env node
"use strict";
/**
 * Calls Plansheet's Apps Script custom functions (addin/apps_script/Code.gs) as Google Sheets
 * would, under Node with the Apps Script services stubbed and real HTTP to the service.
 *
 * stdin:  {"url": "http://127.0.0.1:PORT", "token": "ps_...",
 *          "calls": [{"name": "PS_PLANNED", "args": ["EMEA", "Q1"]}, ...],
 *          "timeZone": "Europe/Paris"}            (optional: the spreadsheet's, default Etc/UTC)
 *         Each argument as Sheets passes it: a value for a single cell, rows (a 2-D array) for a
 *         range; {"$date": "2026-09-30"} for a date cell (a Date at that midnight in timeZone).
 * stdout: a JSON list, one entry per call: what the function returned (a value, or rows), or
 *         {"error": message} when it threw (as Sheets shows #ERROR! with that message).
 *
 * All calls share one runtime, so a repeated call is answered from the cache as in Sheets.
 * Exit code 0 unless the input cannot be read.
 */

const path = require("node:path");
const { createRuntime, sheetDate } = require(path.resolve(__dirname, "..", "..", "addin", "apps_script", "test", "gas_stubs.js"));

function readStdin() {
  return require("node:fs").readFileSync(0, "utf8");
}

function asSheetsPasses(value, timeZone) {
  if (value && typeof value === "object" && !Array.isArray(value) && typeof value.$date === "string") {
    return sheetDate(value.$date, timeZone);
  }
  if (Array.isArray(value)) return value.map((v) => asSheetsPasses(v, timeZone));
  return value;
}

function main() {
  const input = JSON.parse(readStdin());
  if (!input || typeof input.url !== "string" || typeof input.token !== "string" || !Array.isArray(input.calls)) {
    process.stderr.write('expected {"url": ..., "token": ..., "calls": [{"name": ..., "args": [...]}]} on stdin\n');
    process.exit(2);
  }
  const timeZone = input.timeZone || "Etc/UTC";
  const runtime = createRuntime({
    userProperties: { PLANSHEET_URL: input.url, PLANSHEET_TOKEN: input.token },
    spreadsheet: { timeZone },
  });
  const results = input.calls.map((call) => {
    const args = (call.args || []).map((a) => asSheetsPasses(a, timeZone));
    const outcome = runtime.tryCall(call.name, ...args);
    return "error" in outcome ? { error: outcome.error } : outcome.value;
  });
  process.stdout.write(JSON.stringify(results) + "\n");
}

main();
