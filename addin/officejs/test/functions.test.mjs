// functions.js in a stubbed Excel runtime, against the real service that PLANSHEET_URL names.
import assert from "node:assert/strict";
import { before, beforeEach, test } from "node:test";

import { FakeWorkbook, NO_SERVICE, batch, installHost, invokeAll, loadScript, recordFetch, serviceUnderTest } from "./host_stubs.mjs";

const service = serviceUnderTest();
const skip = service ? false : NO_SERVICE;
const KEYS = { url: "plansheet.serviceUrl", token: "plansheet.token" };
let host;
let metadata;
let functions;
let recorder;

before(async () => {
  if (!service) return;
  host = installHost({ settings: { [KEYS.url]: service.url, [KEYS.token]: service.tokens.marketer } });
  recorder = recordFetch();
  loadScript("functions.js");
  functions = globalThis.PlansheetFunctions;
  await functions.ready;
  metadata = await (await recorder.original(`${service.url}/addin/functions.json`)).json();
});

beforeEach(() => {
  if (!service) return;
  signIn(service.tokens.marketer);
  recorder.requests.length = 0;
});

function signIn(token, url = service.url) {
  host.localStorage.setItem(KEYS.url, url);
  if (token) host.localStorage.setItem(KEYS.token, token);
  else host.localStorage.removeItem(KEYS.token);
}

function batchRequests() {
  return recorder.requests.filter((r) => /\/api\/v1\/functions:batch(\?|$)/.test(r.url));
}

/** A call as Excel makes it ({name, args}: scalars for scalar parameters) as the service takes it. */
function wrapped(calls) {
  return calls.map((c) => {
    const args = c.args.map((a) => (Array.isArray(a) ? a : [[a]]));
    while (args.length && args[args.length - 1][0][0] === null) args.pop();
    return { name: c.name, args };
  });
}

/** A functions:batch answer as the cell shows it. */
function asCell(answer, meta) {
  if (answer.error) return { error: answer.error.code, message: answer.error.message };
  const grid = answer.result.map((row) => row.map((v) => (v === null ? "" : v)));
  const scalar = meta.result.dimensionality !== "matrix" && grid.length === 1 && grid[0].length === 1;
  return scalar ? grid[0][0] : grid;
}

async function expected(token, calls) {
  const answers = await batch(recorder.original, service.url, token, wrapped(calls));
  const byId = new Map(metadata.functions.map((f) => [f.id, f]));
  return answers.map((a, i) => asCell(a, byId.get(calls[i].name)));
}

const LIVE = ["PS_BUDGET", "PS_PLANNED", "PS_ACTUAL", "PS_LIVE_VARIANCE", "PS_REMAINING_LIVE"];

test("every function of the served functions.json is associated, and nothing else", { skip }, () => {
  const ids = metadata.functions.map((f) => f.id).sort();
  assert.ok(ids.length >= 14, `only ${ids.length} functions served`);
  assert.deepEqual([...host.associations.keys()].sort(), ids);
  for (const id of LIVE) assert.ok(ids.includes(id), `${id} is served`);
  for (const [id, implementation] of host.associations) assert.equal(typeof implementation, "function", id);
  // The live functions stream (and, by Microsoft's rules, do not also say volatile): they update by themselves.
  for (const f of metadata.functions.filter((f) => LIVE.includes(f.id))) assert.deepEqual(f.options, { stream: true }, f.id);
});

const LIVE_CALLS = (team, other) => [
  { name: "PS_PLANNED", args: ["EMEA", "Q1", null, null] },
  { name: "PS_PLANNED", args: ["EMEA", null, null, null] },
  { name: "PS_PLANNED", args: [team, "m03", null, null] },
  { name: "PS_PLANNED", args: ["EMEA", "FY", "Events", null] },
  { name: "PS_BUDGET", args: ["EMEA", null, null] },
  { name: "PS_BUDGET", args: ["EMEA", "Q2", null] },
  { name: "PS_ACTUAL", args: [team, null, null] },
  { name: "PS_LIVE_VARIANCE", args: ["EMEA", "2026-06-30", null, null] },
  { name: "PS_LIVE_VARIANCE", args: ["EMEA", null, null, null] },
  { name: "PS_REMAINING_LIVE", args: ["EMEA", null] },
  { name: "PS_PLANNED", args: [other, null, null, null] },
];

test("the live functions answer what functions:batch answers for the same arguments", { skip }, async () => {
  const { team, other_team: other } = service.fixture;
  for (const who of ["marketer", "finance"]) {
    signIn(service.tokens[who]);
    const calls = LIVE_CALLS(team, other);
    const got = await invokeAll(host.associations, metadata, calls);
    assert.deepEqual(got, await expected(service.tokens[who], calls), who);
    assert.equal(typeof got[0], "number", "a scalar function gives a number, not [[n]]");
    assert.ok(got[1] > 0, `${who} sees EMEA's approved plan (PS_PLANNED("EMEA") = ${got[1]})`);
    if (who === "finance") assert.equal(typeof got[10], "number", "finance sees every team");
    else assert.equal(got[10].error, "#N/A", "a marketer does not see another team");
  }
});

test("in a plan template of another fiscal year, a live cell reads that year unless it names one", { skip }, async () => {
  const previous = host.workbook;
  const token = service.tokens.marketer;
  const budget = (year) => ({ name: "PS_BUDGET", args: ["EMEA", "Q1", null, year] });
  const [thisYear, nextYear] = await expected(token, [budget(null), budget(2028)]);
  assert.notEqual(thisYear, nextYear, "the two years' allocations differ (or this test proves nothing)");
  try {
    host.workbook = new FakeWorkbook({ names: { PS_FISCAL_YEAR: "=2028" } });
    const got = await invokeAll(host.associations, metadata, [budget(null), budget("FY2027")]);
    assert.deepEqual(got, [nextYear, thisYear], "the template's year; a year the cell names wins");
    assert.ok(batchRequests().length > 0 && batchRequests().every((r) => r.url.endsWith("/api/v1/functions:batch?year=2028")));
    recorder.requests.length = 0;
    host.workbook = new FakeWorkbook();
    assert.deepEqual(await invokeAll(host.associations, metadata, [budget(null)]), [thisYear], "no template: the service's year");
    assert.ok(batchRequests().length > 0, "asked again");
  } finally {
    host.workbook = previous;
  }
});

test("matrix arguments go as 2-D arrays and matrix results come back as 2-D arrays", { skip }, async () => {
  const rows = service.fixture.rows.slice(0, 7);
  const calls = [
    { name: "PS_VALIDATE", args: [rows] },
    { name: "PS_ROLLUP", args: [rows, "channel", null, null] },
    { name: "PS_FX", args: [[[100], [200]], [["EUR"], ["USD"]], null, "USD"] },
  ];
  const got = await invokeAll(host.associations, metadata, calls);
  assert.deepEqual(got, await expected(service.tokens.marketer, calls));
  for (const value of got) assert.ok(Array.isArray(value) && Array.isArray(value[0]), JSON.stringify(value));
  const [sent] = batchRequests();
  assert.deepEqual(sent.body.calls[0].args, [rows]);
  assert.deepEqual(sent.body.calls[1].args, [rows, [["channel"]]], "trailing omitted arguments are not sent");
  assert.deepEqual(sent.body.calls[2].args, [[[100], [200]], [["EUR"], ["USD"]], [[null]], [["USD"]]], "an omitted argument before a given one is [[null]]");
});

test("50 cells calculated together go to the service in at most 2 requests", { skip }, async () => {
  const scopes = ["EMEA", service.fixture.team];
  const periods = ["FY", "Q1", "Q2", "Q3", "Q4", "m01", "m02", "m03", "m04", "m05", "m06", "m07", "m08"];
  const calls = [];
  for (const scope of scopes) for (const period of periods) calls.push({ name: "PS_PLANNED", args: [scope, period, null, null] });
  for (const scope of scopes) for (const channel of ["Events", "Paid Search", "Content", "Webinars", "Email", "ABM"]) {
    calls.push({ name: "PS_ACTUAL", args: [scope, channel, null] });
  }
  while (calls.length < 50) calls.push({ name: "PS_BUDGET", args: ["EMEA", `Q${(calls.length % 4) + 1}`, null] });
  assert.equal(calls.length, 50);
  const got = await invokeAll(host.associations, metadata, calls);
  const requests = batchRequests();
  assert.ok(requests.length >= 1 && requests.length <= 2, `${requests.length} requests for 50 cells`);
  assert.equal(requests.reduce((n, r) => n + r.body.calls.length, 0), 50 - 12 + 4, "repeated calls are sent once");
  assert.deepEqual(got, await expected(service.tokens.marketer, calls));
});

test("1,000 cells recalculating send one request", { skip }, async () => {
  const calls = Array.from({ length: 1000 }, (_, i) => ({ name: "PS_PLANNED", args: ["EMEA", `m${String((i % 12) + 1).padStart(2, "0")}`, null, `campaign ${i}`] }));
  const got = await invokeAll(host.associations, metadata, calls);
  assert.equal(batchRequests().length, 1);
  assert.ok(got.every((v) => v === 0), "no campaign of that name: 0 everywhere");
});

test("service errors become Excel errors with the service's message", { skip }, async () => {
  const { other_team: other } = service.fixture;
  const [notMine, badPeriod, badChannel] = await invokeAll(host.associations, metadata, [
    { name: "PS_PLANNED", args: [other, null, null, null] },
    { name: "PS_PLANNED", args: ["EMEA", "Q7", null, null] },
    { name: "PS_BUDGET", args: ["EMEA", "m01", null] },
  ]);
  assert.equal(notMine.error, "#N/A");
  assert.match(notMine.message, /not a region or one of your teams/);
  assert.equal(badPeriod.error, "#VALUE!");
  assert.match(badPeriod.message, /period 'Q7'/);
  assert.equal(badChannel.error, "#VALUE!");

  // The errors are CustomFunctions.Error objects with the ErrorCode members.
  const thrown = await functions.call("PS_PLANNED", ["EMEA", "Q7"], true).catch((e) => e);
  assert.ok(thrown instanceof globalThis.CustomFunctions.Error);
  assert.equal(thrown.code, globalThis.CustomFunctions.ErrorCode.invalidValue);

  // #NAME? from the service (a function it does not know): Excel takes #NAME? only as an input
  // error, so the cell shows #N/A with the service's message and the code.
  const unknown = await functions.call("PS_NOT_A_FUNCTION", ["EMEA"], true).catch((e) => e);
  assert.equal(unknown.code, "#N/A");
  assert.match(unknown.message, /no function 'PS_NOT_A_FUNCTION'.*#NAME\?/);
});

test("a refused token gives #N/A asking to sign in in the task pane", { skip }, async () => {
  signIn("ps_this-is-not-a-token");
  const got = await invokeAll(host.associations, metadata, [
    { name: "PS_PLANNED", args: ["EMEA", "Q1", null, null] },
    { name: "PS_BUDGET", args: ["EMEA", null, null] },
  ]);
  assert.equal(batchRequests().length, 1);
  for (const answer of got) {
    assert.equal(answer.error, "#N/A");
    assert.match(answer.message, /sign in in the Plansheet task pane/);
    assert.match(answer.message, /refused the API token/);
  }
});

test("without a token nothing is sent and the cell asks to sign in", { skip }, async () => {
  signIn(null);
  const [answer] = await invokeAll(host.associations, metadata, [{ name: "PS_PLANNED", args: ["EMEA", null, null, null] }]);
  assert.equal(answer.error, "#N/A");
  assert.match(answer.message, /sign in in the Plansheet task pane/);
  assert.equal(batchRequests().length, 0);
  // OfficeRuntime.storage is read when localStorage has nothing (the non-shared runtime keeps settings there).
  await host.officeStorage.setItem(KEYS.token, service.tokens.marketer);
  const [value] = await invokeAll(host.associations, metadata, [{ name: "PS_PLANNED", args: ["EMEA", null, null, null] }]);
  assert.equal(typeof value, "number");
  await host.officeStorage.removeItem(KEYS.token);
});

test("an unreachable service gives #N/A saying so", { skip }, async () => {
  signIn(service.tokens.marketer, "http://127.0.0.1:9"); // the discard port: nothing listens
  const [answer] = await invokeAll(host.associations, metadata, [{ name: "PS_PLANNED", args: ["EMEA", "Q1", null, null] }]);
  assert.equal(answer.error, "#N/A");
  assert.match(answer.message, /service unreachable at http:\/\/127\.0\.0\.1:9/);
});
