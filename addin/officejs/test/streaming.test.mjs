// The live functions as streaming cells, against the real service that PLANSHEET_URL names:
// an approval made during the test shows in the open cells without any refresh, every live cell
// is re-evaluated in ONE functions:batch request, a cancelled cell is not asked again, and the
// version check runs at a bounded rate whatever the number of cells.
import assert from "node:assert/strict";
import { after, before, beforeEach, test } from "node:test";

import { NO_SERVICE, StreamingInvocation, batch, enterFormulas, installHost, loadScript, recordFetch, serviceUnderTest } from "./host_stubs.mjs";

const service = serviceUnderTest();
const skip = service ? false : NO_SERVICE;
const POLL_MS = 150; // the tests shorten the 30 s interval; what is bounded is the same
let host;
let metadata;
let functions;
let recorder;
let open = [];
let defaultPollMs;
let approvals = 0;
let basedOn;

before(async () => {
  if (!service) return;
  host = installHost({ settings: { "plansheet.serviceUrl": service.url, "plansheet.token": service.tokens.finance } });
  recorder = recordFetch();
  loadScript("functions.js");
  functions = globalThis.PlansheetFunctions;
  await functions.ready;
  defaultPollMs = functions.options.versionPollMs;
  functions.options.versionPollMs = POLL_MS;
  basedOn = service.fixture.other_based_on;
  metadata = await (await recorder.original(`${service.url}/addin/functions.json`)).json();
});

beforeEach(() => {
  if (!service) return;
  recorder.requests.length = 0;
});

function closeAll() {
  for (const cell of open) if (cell.invocation instanceof StreamingInvocation) cell.invocation.cancel();
  open = [];
}

after(closeAll);

function requests(path) {
  return recorder.requests.filter((r) => r.url.endsWith(path));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function enter(calls) {
  const cells = enterFormulas(host.associations, metadata, calls);
  open.push(...cells);
  return cells;
}

async function call(token, method, path, body) {
  const response = await recorder.original(`${service.url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

/** Submit the other team's new plan and approve it: the master version moves on. */
async function approveNewPlan() {
  const { other_team: team, other_plans: plans } = service.fixture;
  const lines = plans[approvals++ % plans.length];
  const submitted = await call(service.tokens.other, "POST", "/api/v1/submissions", { team, lines, based_on: { submission: basedOn } });
  assert.equal(submitted.status, 201, JSON.stringify(submitted.body));
  const approved = await call(service.tokens.finance, "POST", `/api/v1/submissions/${submitted.body.id}/approve`, {});
  assert.equal(approved.status, 200, JSON.stringify(approved.body));
  basedOn = submitted.body.id;
  return basedOn;
}

async function planned(scope) {
  const [answer] = await batch(recorder.original, service.url, service.tokens.finance, [{ name: "PS_PLANNED", args: [[[scope]]] }]);
  return answer.result[0][0];
}

test("the version route answers the ids the live answers come from", { skip }, async () => {
  const { status, body } = await call(service.tokens.marketer, "GET", "/api/v1/master/version");
  assert.equal(status, 200);
  assert.deepEqual(Object.keys(body).sort(), [
    "accruals_closed",
    "actuals_import",
    "allocation_revision",
    "baseline",
    "master_version",
    "outcomes_import",
    "spend_import",
  ]);
  assert.ok(body.master_version >= 2, "two approvals made by the fixture");
  assert.equal((await call("ps_not-a-token", "GET", "/api/v1/master/version")).status, 401);
});

test("an approval made meanwhile shows in every open live cell, re-evaluated in one batch request", { skip }, async () => {
  const { other_team: team } = service.fixture;
  const region = team.split("-")[0];
  const calls = [
    { name: "PS_PLANNED", args: [team, null, null, null] },
    { name: "PS_PLANNED", args: [region, null, null, null] },
    { name: "PS_PLANNED", args: [region, "Q1", null, null] },
    { name: "PS_PLANNED", args: ["EMEA", null, null, null] },
    { name: "PS_BUDGET", args: [region, null, null] },
    { name: "PS_ACTUAL", args: [team, null, null] },
    { name: "PS_LIVE_VARIANCE", args: [region, "2026-06-30", null, null] },
    { name: "PS_REMAINING_LIVE", args: [region, null] },
  ];
  const cells = enter(calls);
  const first = await Promise.all(cells.map((c) => c.first));
  assert.equal(first[0], await planned(team));
  assert.equal(requests("/api/v1/functions:batch").length, 1, "the cells entered together went in one request");
  await sleep(POLL_MS * 3); // a few version checks with nothing changed: no re-evaluation
  assert.equal(requests("/api/v1/functions:batch").length, 1, "an unchanged version asks nothing again");
  assert.ok(requests("/api/v1/master/version").length >= 2);

  recorder.requests.length = 0;
  const before = first[0];
  await approveNewPlan();
  const after = await planned(team);
  assert.notEqual(after, before, "the new plan changes the team's planned spend");
  // No refresh, no recalculation: the cell shows the new number by itself.
  assert.equal(await cells[0].invocation.until(2, POLL_MS * 20), after);
  await Promise.all(cells.map((c) => c.invocation.until(2, POLL_MS * 20)));
  const reevaluated = requests("/api/v1/functions:batch");
  assert.equal(reevaluated.length, 1, "every live cell re-evaluated in one request");
  assert.equal(reevaluated[0].body.calls.length, calls.length);
  assert.equal(cells[3].invocation.value, first[3], "another region's number is unchanged");
  assert.equal(host.workbook.calculations.length, 0, "no recalculation was requested");
  closeAll();
});

/** Push `leads` for one of the other team's approved lines as the CRM's figure for m01 (replacing the last push). */
async function pushLeads(leads) {
  const { other_team: team } = service.fixture;
  const master = await call(service.tokens.finance, "GET", "/api/v1/master");
  const line = master.body.lines.find((l) => l.team_id === team);
  const pushed = await call(service.tokens.finance, "POST", "/api/v1/outcomes:push", {
    source: "streaming-test",
    month: "m01",
    rows: [{ line_id: line.line_id, leads }],
  });
  assert.equal(pushed.status, 201, JSON.stringify(pushed.body));
}

test("a results import made meanwhile shows in an open PS_RESULT cell, with no refresh", { skip }, async () => {
  const { other_team: team } = service.fixture;
  await pushLeads(10);
  const [cell] = enter([{ name: "PS_RESULT", args: ["leads", team, "m01", null, null] }]);
  assert.equal(await cell.first, 10);
  recorder.requests.length = 0;
  await pushLeads(25); // the CRM's newer figure for the same month replaces the older
  assert.equal(await cell.invocation.until(2, POLL_MS * 20), 25);
  assert.equal(requests("/api/v1/functions:batch").length, 1);
  closeAll();
});

test("a cancelled cell is not re-evaluated and nothing polls once every live cell is gone", { skip }, async () => {
  const { other_team: team } = service.fixture;
  const [kept, dropped] = enter([
    { name: "PS_PLANNED", args: [team, "FY", null, null] },
    { name: "PS_ACTUAL", args: [team, null, null] },
  ]);
  await Promise.all([kept.first, dropped.first]);
  assert.equal(functions.liveCells.size, 2);
  dropped.invocation.cancel(); // the cell is deleted in Excel
  assert.equal(functions.liveCells.size, 1);
  await sleep(POLL_MS * 2); // the version check has seen the current version
  recorder.requests.length = 0;
  await approveNewPlan();
  await kept.invocation.until(2, POLL_MS * 20);
  const [sent] = requests("/api/v1/functions:batch");
  assert.deepEqual(
    sent.body.calls.map((c) => c.name),
    ["PS_PLANNED"],
    "only the open cell is asked again",
  );
  assert.equal(dropped.invocation.results.length, 1, "the cancelled cell got nothing more");

  kept.invocation.cancel();
  assert.equal(functions.liveCells.size, 0);
  recorder.requests.length = 0;
  await sleep(POLL_MS * 3);
  assert.equal(requests("/api/v1/master/version").length, 0, "no live cell, no version check");
  closeAll();
});

test("the version check runs once per interval for all cells, however many", { skip }, async () => {
  const calls = Array.from({ length: 300 }, (_, i) => ({ name: "PS_PLANNED", args: ["EMEA", `m${String((i % 12) + 1).padStart(2, "0")}`, null, `campaign ${i}`] }));
  const cells = enter(calls);
  await Promise.all(cells.map((c) => c.first));
  recorder.requests.length = 0;
  const started = Date.now();
  await sleep(POLL_MS * 8);
  const elapsed = Date.now() - started;
  const checks = requests("/api/v1/master/version").length;
  assert.ok(checks >= 2, `${checks} version checks in ${elapsed} ms`);
  assert.ok(checks <= Math.floor(elapsed / POLL_MS) + 1, `${checks} version checks in ${elapsed} ms for 300 cells: one per ${POLL_MS} ms at most`);
  assert.equal(requests("/api/v1/functions:batch").length, 0, "nothing changed: no cell asked again");
  assert.equal(functions.options.versionPollMs, POLL_MS);
  closeAll();
});

test("by default the version check runs every 30 seconds", { skip }, () => {
  assert.equal(defaultPollMs, 30000);
});
