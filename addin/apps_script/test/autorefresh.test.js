"use strict";
// Automatic refresh in Google Sheets: Plansheet → Turn on automatic refresh sets up ONE
// time-driven trigger; each run asks the service for its master version (one request) and
// recalculates the live cells only when it changed, e.g. after an approval made meanwhile.

const assert = require("node:assert/strict");
const test = require("node:test");
const { createRuntime, runTriggers } = require("./gas_stubs.js");
const { service, SKIP, request, signedIn } = require("./service.js");

const plan = process.env.PLANSHEET_TEST_PLAN ? JSON.parse(process.env.PLANSHEET_TEST_PLAN) : null;
const opts = { skip: SKIP || (!plan && "no plan to approve (PLANSHEET_TEST_PLAN)") };

function liveSpreadsheet(region) {
  return {
    sheets: {
      Report: { values: [["", ""]], formulas: [[`=PS_PLANNED("${region}")`, `=PS_BUDGET("${region}")`]] },
    },
  };
}

const versionChecks = (runtime) => runtime.fetchLog.filter((f) => f.url.endsWith("/api/v1/master/version"));
const lastAlert = (runtime) => runtime.ui.alerts[runtime.ui.alerts.length - 1];

test("turning automatic refresh on needs a sign-in and sets up one 5-minute trigger, however often it is turned on", { skip: SKIP }, () => {
  const signedOut = createRuntime();
  signedOut.call("turnOnAutoRefresh");
  assert.match(lastAlert(signedOut).prompt, /Sign in first/);
  assert.equal(signedOut.triggers.length, 0);

  const runtime = createRuntime(signedIn(service.tokens.finance));
  runtime.call("turnOnAutoRefresh");
  runtime.call("turnOnAutoRefresh");
  assert.equal(runtime.triggers.length, 1);
  const [trigger] = runtime.triggers;
  assert.equal(trigger.getHandlerFunction(), "autoRefresh");
  assert.equal(trigger.minutes, 5);
  assert.ok(!trigger.getHandlerFunction().endsWith("_"), "a trigger runs a public function");
  assert.match(lastAlert(runtime).prompt, /^Automatic refresh is on: every 5 minutes/);
  assert.equal(runtime.fetchLog.length, 0, "turning it on asks nothing of the service");

  runtime.call("turnOffAutoRefresh");
  assert.equal(runtime.triggers.length, 0);
  assert.match(lastAlert(runtime).prompt, /^Automatic refresh is off/);
  runtime.call("turnOffAutoRefresh");
  assert.equal(lastAlert(runtime).prompt, "Automatic refresh was not on.");
});

test("each run costs one version check; an approval made meanwhile recalculates the live cells", opts, async () => {
  const region = plan.team.split("-")[0];
  const runtime = createRuntime({ ...signedIn(service.tokens.finance), spreadsheet: liveSpreadsheet(region) });
  const before = runtime.call("PS_PLANNED", region);
  runtime.call("turnOnAutoRefresh");

  assert.deepEqual(runTriggers(runtime), [2], "the first run brings the cells up to date");
  assert.equal(versionChecks(runtime).length, 1);
  const edits = runtime.edits.length;
  const fetches = runtime.fetchLog.length;
  assert.deepEqual(runTriggers(runtime), [0], "nothing changed: nothing recalculated");
  assert.deepEqual(runTriggers(runtime), [0]);
  assert.equal(runtime.fetchLog.length, fetches + 2, "one request per run, the version check");
  assert.equal(runtime.edits.length, edits, "no cell touched");

  const submitted = await request("POST", "/api/v1/submissions", plan.token, { team: plan.team, lines: plan.lines, based_on: { submission: plan.based_on } });
  assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
  const approved = await request("POST", `/api/v1/submissions/${submitted.body.id}/approve`, service.tokens.finance, {});
  assert.equal(approved.status, 200, JSON.stringify(approved.body));

  assert.deepEqual(runTriggers(runtime), [2], "the approval is seen at the next run");
  const rewritten = runtime.edits.slice(edits).filter((e) => e.op === "setFormula").map((e) => `${e.sheet}!${e.a1}`);
  assert.deepEqual(rewritten, ["Report!A1", "Report!B1"]);
  const after = runtime.call("PS_PLANNED", region); // Sheets evaluates the rewritten cell: a fresh answer
  assert.notEqual(after, before, "the recalculated cell shows the approved plan");
  assert.deepEqual(runTriggers(runtime), [0]);

  // Results the CRM pushes change no master version, and are seen at the next run all the same.
  const rows = [{ line_id: plan.lines[0].line_id, leads: 12 }];
  const pushed = await request("POST", "/api/v1/outcomes:push", service.tokens.finance, { source: "autorefresh-test", month: "m01", rows });
  assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
  assert.deepEqual(runTriggers(runtime), [2], "a results import is seen at the next run");
  assert.deepEqual(runTriggers(runtime), [0]);
});

test("a run while the service is unreachable changes nothing and is retried by the next run", { skip: SKIP }, () => {
  const runtime = createRuntime({
    userProperties: { PLANSHEET_URL: service.deadUrl, PLANSHEET_TOKEN: service.tokens.finance },
    spreadsheet: liveSpreadsheet(service.region),
  });
  assert.equal(runtime.call("autoRefresh", {}), 0);
  assert.equal(runtime.edits.length, 0);
  assert.ok(runtime.logs.some((l) => /automatic refresh: #N\/A: Plansheet service unreachable/.test(l)), runtime.logs.join("\n"));
});
