"use strict";
// The Plansheet menu: built in onOpen; Submit plan pulls the registered team sheet named in the
// hidden _plansheet sheet (a submission, or the cells to fix); Refresh master pushes the master
// (finance) and recalculates the live cells; Settings stores the address and token.

const assert = require("node:assert/strict");
const test = require("node:test");
const { createRuntime, BUTTON } = require("./gas_stubs.js");
const { service, SKIP, signedIn } = require("./service.js");

const opts = { skip: SKIP };
const sheetsOpts = { skip: SKIP || (!service.sheets.good && "no Google team sheets (PLANSHEET_TEST_SHEETS)") };

/** A team plan spreadsheet as Plansheet creates it: Plan, Lists and the hidden _plansheet. */
function teamSpreadsheet(meta) {
  return { sheets: { Plan: { values: [["Line ID", "Campaign"]] }, Lists: {}, _plansheet: { values: meta } } };
}

function lastAlert(runtime) {
  const alerts = runtime.ui.alerts;
  assert.ok(alerts.length, "an alert was shown");
  return alerts[alerts.length - 1];
}

test("onOpen adds the Plansheet menu: Submit plan, Refresh master, automatic refresh on and off, Settings", () => {
  const runtime = createRuntime();
  runtime.call("onOpen", { authMode: "LIMITED" });
  assert.equal(runtime.ui.menus.length, 1);
  const [menu] = runtime.ui.menus;
  assert.equal(menu.caption, "Plansheet");
  const items = menu.items.filter((i) => !i.separator);
  assert.deepEqual(
    items.map((i) => [i.caption, i.functionName]),
    [
      ["Submit plan", "submitPlan"],
      ["Refresh master", "refreshMaster"],
      ["Turn on automatic refresh", "turnOnAutoRefresh"],
      ["Turn off automatic refresh", "turnOffAutoRefresh"],
      ["Settings", "showSettings"],
    ]
  );
  for (const { functionName } of items) {
    // A menu can only run a global function whose name does not end with _ (those are private).
    assert.equal(typeof runtime.context[functionName], "function", functionName);
    assert.ok(!functionName.endsWith("_"), functionName);
  }
  assert.equal(runtime.fetchLog.length, 0, "opening the spreadsheet asks nothing of the service");
  runtime.call("onInstall", {});
  assert.equal(runtime.ui.menus.length, 2, "onInstall builds the same menu");
});

test("Submit plan pulls the team sheet named in _plansheet: submitted", sheetsOpts, () => {
  const { team, meta, lines } = service.sheets.good;
  const runtime = createRuntime({ ...signedIn(service.tokens.marketer), spreadsheet: teamSpreadsheet(meta) });
  runtime.call("submitPlan");
  assert.equal(runtime.fetchLog.length, 1);
  assert.equal(runtime.fetchLog[0].method, "POST");
  assert.equal(runtime.fetchLog[0].url, `${service.url}/api/v1/gsheets/teams/${team}/pull`);
  const alert = lastAlert(runtime);
  assert.equal(alert.title, "Plansheet: submit plan");
  assert.match(alert.prompt, new RegExp(`^Submitted the plan of ${team}: ${lines} lines, submission #\\d+ \\(submitted\\)`));
});

test("Submit plan with a bad cell: not submitted, and the alert names the cell as Plan!<cell>", sheetsOpts, () => {
  const { team, meta, cell } = service.sheets.bad;
  const runtime = createRuntime({ ...signedIn(service.tokens.marketer), spreadsheet: teamSpreadsheet(meta) });
  runtime.call("submitPlan");
  assert.equal(runtime.fetchLog[0].url, `${service.url}/api/v1/gsheets/teams/${team}/pull`);
  const { prompt } = lastAlert(runtime);
  assert.match(prompt, new RegExp(`^The plan of ${team} was not submitted: `));
  assert.match(prompt, /Fix these cells and submit again:\n/);
  const lines = prompt.split("\n");
  assert.ok(lines.some((l) => l.startsWith(`${cell}: `)), `no line for ${cell} in:\n${prompt}`);
});

test("Submit plan for a team that is not the user's: the service's refusal is shown", sheetsOpts, () => {
  const { meta } = service.sheets.good;
  const other = meta.map(([k, v]) => [k, k === "team" ? "NA-SMB" : v]);
  const runtime = createRuntime({ ...signedIn(service.tokens.marketer), spreadsheet: teamSpreadsheet(other) });
  runtime.call("submitPlan");
  assert.match(lastAlert(runtime).prompt, /^The plan of NA-SMB was not submitted: you may not submit plans for team NA-SMB/);
});

test("Submit plan for a team without a registered sheet: the service's 404 is shown", opts, () => {
  const meta = [["template_id", "x"], ["team", service.team]];
  const runtime = createRuntime({ ...signedIn(service.tokens.finance), spreadsheet: teamSpreadsheet(meta) });
  runtime.call("submitPlan");
  assert.match(lastAlert(runtime).prompt, new RegExp(`not submitted: team ${service.team} has no Google plan sheet`));
});

test("Submit plan outside a team plan spreadsheet, or signed out: says what to do, asks nothing", () => {
  const plain = createRuntime({ userProperties: { PLANSHEET_URL: "http://127.0.0.1:9", PLANSHEET_TOKEN: "ps_x" } });
  plain.call("submitPlan");
  assert.match(lastAlert(plain).prompt, /not a Plansheet team plan: it has no _plansheet sheet/);
  const signedOut = createRuntime({ spreadsheet: teamSpreadsheet([["team", "EMEA-SMB"]]) });
  signedOut.call("submitPlan");
  assert.equal(lastAlert(signedOut).prompt, "Sign in first: Plansheet → Settings.");
  assert.equal(plain.fetchLog.length + signedOut.fetchLog.length, 0);
});

test("Submit plan when the service is down, or the token refused: a clear alert", opts, () => {
  const meta = service.sheets.good ? service.sheets.good.meta : [["team", service.team]];
  const down = createRuntime({
    userProperties: { PLANSHEET_URL: service.deadUrl, PLANSHEET_TOKEN: "ps_x" },
    spreadsheet: teamSpreadsheet(meta),
  });
  down.call("submitPlan");
  assert.match(lastAlert(down).prompt, new RegExp(`Plansheet service unreachable at ${service.deadUrl}: `));
  const refused = createRuntime({ ...signedIn("ps_not_a_token"), spreadsheet: teamSpreadsheet(meta) });
  refused.call("submitPlan");
  assert.match(lastAlert(refused).prompt, /not submitted: sign in: Plansheet → Settings/);
});

/** A spreadsheet with live, date-dependent and pure Plansheet formulas, and plain ones. */
function reportSpreadsheet() {
  return {
    sheets: {
      Report: {
        formulas: [
          [`=PS_PLANNED("${service.region}")`, "=SUM(1,2)", `=ps_actual("${service.region}")`],
          ["=PS_VARIANCE(A1:A3, B1:B3)", `=PS_LIVE_VARIANCE("${service.region}")`, ""],
        ],
      },
      Notes: { values: [["", "PS_PLANNED( as text is not a formula"]], formulas: [["=PS_PACING(A1:A2, B1:B2)"]] },
    },
  };
}

test("Refresh master as finance: pushes the master, recalculates the live cells with fresh answers", opts, () => {
  const runtime = createRuntime({ ...signedIn(service.tokens.finance), spreadsheet: reportSpreadsheet() });
  runtime.call("PS_PLANNED", service.region);
  const before = runtime.scriptProperties.getProperty("PLANSHEET_CACHE_GENERATION");
  runtime.call("refreshMaster");
  const push = runtime.fetchLog[1];
  assert.equal(push.url, `${service.url}/api/v1/gsheets/master/push`);
  assert.equal(push.method, "POST");
  const { prompt, title } = lastAlert(runtime);
  assert.equal(title, "Plansheet: refresh master");
  assert.match(prompt, /^The finance master spreadsheet now shows master version \d+ \(\d+ lines\)\./);
  assert.match(prompt, /Recalculated 4 Plansheet cells with the newest figures\.$/);

  // The live and date-dependent cells were cleared, then given their formulas back, after a flush.
  const cleared = runtime.edits.filter((e) => e.op === "setValue").map((e) => `${e.sheet}!${e.a1}`);
  const rewritten = runtime.edits.filter((e) => e.op === "setFormula").map((e) => `${e.sheet}!${e.a1}=${e.value}`);
  assert.deepEqual(cleared, ["Report!A1", "Report!C1", "Report!B2", "Notes!A1"]);
  assert.deepEqual(rewritten, [
    `Report!A1==PS_PLANNED("${service.region}")`,
    `Report!C1==ps_actual("${service.region}")`,
    `Report!B2==PS_LIVE_VARIANCE("${service.region}")`,
    "Notes!A1==PS_PACING(A1:A2, B1:B2)",
  ]);
  assert.equal(runtime.flushes, 1);
  assert.equal(runtime.edits.findIndex((e) => e.op === "setFormula"), 4, "all cleared before any is written back");

  // A new cache generation: the recalculated cells ask the service again.
  assert.notEqual(runtime.scriptProperties.getProperty("PLANSHEET_CACHE_GENERATION"), before);
  runtime.call("PS_PLANNED", service.region);
  assert.equal(runtime.fetchLog.length, 3);
});

test("Refresh master as a marketer: no push (finance's), the live cells are recalculated", opts, () => {
  const runtime = createRuntime({ ...signedIn(service.tokens.marketer), spreadsheet: reportSpreadsheet() });
  runtime.call("refreshMaster");
  assert.equal(runtime.fetchLog.length, 1, "the push was tried and refused (403)");
  assert.equal(lastAlert(runtime).prompt, "Recalculated 4 Plansheet cells with the newest figures.");
});

test("Refresh master leaves a protected live cell as it is", () => {
  const spreadsheet = reportSpreadsheet();
  spreadsheet.sheets.Report.protected = ["C1"];
  const runtime = createRuntime({ spreadsheet }); // signed out: no push, the recalculation only
  runtime.call("refreshMaster");
  assert.match(lastAlert(runtime).prompt, /Recalculated 3 Plansheet cells/);
  assert.ok(!runtime.edits.some((e) => e.a1 === "C1" && e.sheet === "Report"));
  assert.equal(runtime.spreadsheet.getSheetByName("Report").getRange(1, 3).getFormula(), `=ps_actual("${service.region}")`);
});

test("Refresh master when the service is down: says so, still recalculates", opts, () => {
  const runtime = createRuntime({
    userProperties: { PLANSHEET_URL: service.deadUrl, PLANSHEET_TOKEN: "ps_x" },
    spreadsheet: { sheets: { Sheet1: {} } },
  });
  runtime.call("refreshMaster");
  const { prompt } = lastAlert(runtime);
  assert.match(prompt, new RegExp(`^#N/A: Plansheet service unreachable at ${service.deadUrl}: `));
  assert.match(prompt, /This spreadsheet has no live Plansheet cells to recalculate\.$/);
});

test("Settings: asks for the address and token, checks them, stores them in the user properties", opts, () => {
  const runtime = createRuntime({ spreadsheet: { sheets: { Sheet1: {} } } });
  runtime.answers.push(
    { text: ` ${service.url}/ `, button: BUTTON.OK },
    { text: service.tokens.marketer, button: BUTTON.OK },
    { button: BUTTON.NO } // not for the formulas of everyone
  );
  runtime.call("showSettings");
  assert.equal(runtime.ui.prompts.length, 2);
  assert.deepEqual(runtime.userProperties.getProperties(), {
    PLANSHEET_URL: service.url,
    PLANSHEET_TOKEN: service.tokens.marketer,
  });
  assert.equal(runtime.scriptProperties.getProperty("PLANSHEET_TOKEN"), null);
  assert.equal(lastAlert(runtime).prompt, `Signed in to ${service.url}. The PS_ functions and the menu use it.`);
  assert.equal(runtime.fetchLog[0].url, `${service.url}/api/v1/functions`, "checked with a GET");
  assert.equal(typeof runtime.call("PS_PLANNED", service.team), "number");
});

test("Settings: sharing the sign-in with the spreadsheet's formulas stores it in the script properties", opts, () => {
  const runtime = createRuntime({ ...signedIn(service.tokens.marketer) });
  runtime.answers.push({ text: "", button: BUTTON.OK }, { text: "", button: BUTTON.OK }, { button: BUTTON.YES });
  runtime.call("showSettings");
  assert.match(runtime.ui.prompts[0].prompt, new RegExp(`now ${service.url.replace(/[.]/g, "\\.")}; leave empty to keep it`));
  assert.equal(runtime.scriptProperties.getProperty("PLANSHEET_URL"), service.url, "empty answers keep the values");
  assert.equal(runtime.scriptProperties.getProperty("PLANSHEET_TOKEN"), service.tokens.marketer);
});

test("Settings: a refused token or an unreachable address is said at once; Cancel changes nothing", opts, () => {
  const refused = createRuntime();
  refused.answers.push({ text: service.url, button: BUTTON.OK }, { text: "ps_wrong", button: BUTTON.OK }, { button: BUTTON.NO });
  refused.call("showSettings");
  assert.match(lastAlert(refused).prompt, /^Saved, but sign in: Plansheet → Settings \(the service refused the token/);

  const down = createRuntime();
  down.answers.push({ text: service.deadUrl, button: BUTTON.OK }, { text: "ps_x", button: BUTTON.OK }, { button: BUTTON.NO });
  down.call("showSettings");
  assert.match(lastAlert(down).prompt, new RegExp(`^Saved, but Plansheet service unreachable at ${service.deadUrl}: `));

  const cancelled = createRuntime();
  cancelled.answers.push({ text: "https://elsewhere.example", button: BUTTON.CANCEL });
  cancelled.call("showSettings");
  assert.deepEqual(cancelled.userProperties.getProperties(), {});

  const notAnAddress = createRuntime();
  notAnAddress.answers.push({ text: "plansheet.example.com", button: BUTTON.OK });
  notAnAddress.call("showSettings");
  assert.match(lastAlert(notAnAddress).prompt, /is not an address/);
  assert.deepEqual(notAnAddress.userProperties.getProperties(), {});
});
