// taskpane.js in a stubbed Excel with a fake workbook, against the real service that PLANSHEET_URL names.
import assert from "node:assert/strict";
import { before, beforeEach, test } from "node:test";

import { FakeWorkbook, NO_SERVICE, installHost, loadScript, recordFetch, serviceUnderTest } from "./host_stubs.mjs";

const service = serviceUnderTest();
const skip = service ? false : NO_SERVICE;
let host;
let pane;
let recorder;

before(async () => {
  if (!service) return;
  host = installHost({ settings: { "plansheet.serviceUrl": service.url } });
  recorder = recordFetch();
  loadScript("functions.js");
  loadScript("taskpane.js");
  pane = globalThis.PlansheetTaskpane;
  await globalThis.PlansheetFunctions.ready;
});

/** A fresh workbook whose Plan sheet holds `rows`, with PS_BASED_ON when `basedOn` is given; signed in. */
async function workbook(rows, basedOn) {
  host.workbook = new FakeWorkbook({
    sheets: { Plan: { values: rows }, Summary: { values: [["Budget"]] } },
    names: basedOn === undefined ? {} : { PS_BASED_ON: basedOn },
  });
  await pane.saveSettings({ url: service.url, token: service.tokens.marketer, team: service.fixture.team });
  recorder.requests.length = 0;
}

beforeEach(() => {
  if (!service) return;
  host.localStorage.clear();
  host.officeStorage.items.clear();
  host.documentSettings.values.clear();
});

function letter(index) {
  let s = "";
  for (let n = index + 1; n > 0; n = Math.floor((n - 1) / 26)) s = String.fromCharCode(65 + ((n - 1) % 26)) + s;
  return s;
}

function submissions() {
  return recorder.requests.filter((r) => r.url.endsWith("/api/v1/submissions") && r.method === "POST");
}

test("Submit plan posts the Plan sheet's rows with PS_BASED_ON and reports the new submission", { skip }, async () => {
  const { rows, team, based_on: basedOn } = service.fixture;
  await workbook(rows, basedOn);
  const outcome = await pane.submitPlan();
  assert.equal(outcome.status, 201, JSON.stringify(outcome));
  assert.ok(outcome.ok);
  assert.match(outcome.title, new RegExp(`^Submitted: plan #\\d+ for ${team}, 6 lines`));
  const [sent] = submissions();
  assert.deepEqual(sent.body, { team, rows, based_on: { submission: basedOn } });
  assert.equal(outcome.submission.status, "submitted");
});

test("the team's approved plan submitted again is unchanged, and nothing waits for approval", { skip }, async () => {
  const { approved_rows: rows, team, based_on: basedOn } = service.fixture;
  await workbook(rows, basedOn);
  const outcome = await pane.submitPlan();
  assert.equal(outcome.status, 200, JSON.stringify(outcome));
  assert.ok(outcome.ok);
  assert.equal(outcome.title, `Unchanged: this is ${team}'s approved plan #${basedOn}; nothing was sent for approval.`);
  assert.equal(outcome.submission.status, "approved");
});

test("Submit plan lists every issue of a refused plan with its cell", { skip }, async () => {
  const rows = structuredClone(service.fixture.rows);
  const header = rows[0];
  const start = header.indexOf("Start date");
  const channel = header.indexOf("Channel");
  rows[2][start] = "not a date"; // sheet row 3
  rows[4][channel] = "Carrier pigeons"; // sheet row 5
  await workbook(rows, service.fixture.based_on);
  const outcome = await pane.submitPlan();
  assert.equal(outcome.status, 422, JSON.stringify(outcome));
  assert.equal(outcome.ok, false);
  assert.match(outcome.title, /^Not submitted: the plan has \d+ errors?; nothing was stored/);
  const dateIssue = outcome.lines.find((l) => l.startsWith(`Plan!${letter(start)}3 `));
  const channelIssue = outcome.lines.find((l) => l.startsWith(`Plan!${letter(channel)}5 `));
  assert.ok(dateIssue, `no issue at Plan!${letter(start)}3 in ${JSON.stringify(outcome.lines)}`);
  assert.ok(channelIssue, `no issue at Plan!${letter(channel)}5 in ${JSON.stringify(outcome.lines)}`);
  assert.match(dateIssue, /not a date/);
  assert.match(channelIssue, /Carrier pigeons/);
});

test("a Plan sheet whose used range does not start at A1 keeps its cell names", { skip }, async () => {
  // Column A left empty: the plan starts in column B, and the issues name the cells the user sees.
  const rows = structuredClone(service.fixture.rows);
  const start = rows[0].indexOf("Start date");
  rows[2][start] = "not a date";
  const last = `${letter(rows[0].length)}${rows.length}`;
  host.workbook = new FakeWorkbook({ sheets: { Plan: { values: rows, address: `B1:${last}` } } });
  await pane.saveSettings({ url: service.url, token: service.tokens.marketer, team: service.fixture.team });
  let outcome = await pane.submitPlan();
  assert.equal(outcome.status, 422);
  assert.ok(outcome.lines.some((l) => l.startsWith(`Plan!${letter(start + 1)}3 `)), JSON.stringify(outcome.lines));
  // Two blank rows above the header: the service says where the header is, by its real row.
  host.workbook = new FakeWorkbook({ sheets: { Plan: { values: rows, address: `A3:${letter(rows[0].length - 1)}${rows.length + 2}` } } });
  outcome = await pane.submitPlan();
  assert.equal(outcome.status, 422);
  assert.ok(outcome.lines.some((l) => /^Plan!A3 The header row must be row 1/.test(l)), JSON.stringify(outcome.lines));
});

test("a plan edited from an older approved plan is refused with what to do", { skip }, async () => {
  await workbook(service.fixture.rows, 0); // "the team had no approved plan", but it has one
  const outcome = await pane.submitPlan();
  assert.equal(outcome.status, 409, JSON.stringify(outcome));
  assert.match(outcome.title, /Download your team's current template \(it is based on plan #\d+\)/);
  await workbook(service.fixture.rows); // no PS_BASED_ON at all: no based_on sent
  const again = await pane.submitPlan();
  assert.equal(again.status, 409);
  assert.equal(submissions()[0].body.based_on, undefined);
});

test("Submit plan needs the team id, the token and a Plan sheet, and says so", { skip }, async () => {
  host.workbook = new FakeWorkbook({ sheets: { Sheet1: { values: [["x"]] } } });
  let outcome = await pane.submitPlan();
  assert.match(outcome.title, /Enter your team id/);
  await pane.saveTeam(service.fixture.team);
  outcome = await pane.submitPlan();
  assert.match(outcome.title, /no "Plan" sheet/);
  host.workbook = new FakeWorkbook({ sheets: { Plan: { values: service.fixture.rows } } });
  outcome = await pane.submitPlan();
  assert.match(outcome.title, /Enter the service address/);
  await globalThis.PlansheetFunctions.saveSettings({ url: service.url });
  outcome = await pane.submitPlan();
  assert.match(outcome.title, /Paste your API token/);
  await globalThis.PlansheetFunctions.saveSettings({ token: "ps_wrong" });
  outcome = await pane.submitPlan();
  assert.equal(outcome.status, 401);
  assert.match(outcome.title, /refused your API token/);
});

test("the team id is remembered in the workbook and the token in this browser", { skip }, async () => {
  const outcome = await pane.saveSettings({ url: service.url, token: service.tokens.marketer, team: service.fixture.team });
  assert.ok(outcome.ok, JSON.stringify(outcome));
  assert.match(outcome.title, /Signed in for team/);
  assert.equal(host.documentSettings.saved.get("plansheet.team"), service.fixture.team);
  assert.equal(host.localStorage.getItem("plansheet.token"), service.tokens.marketer);
  assert.equal(await host.officeStorage.getItem("plansheet.token"), service.tokens.marketer);
  assert.equal(await pane.teamId(), service.fixture.team);
  const refused = await pane.saveSettings({ url: service.url, token: "ps_wrong", team: service.fixture.team });
  assert.equal(refused.ok, false);
  assert.match(refused.title, /refused your API token/);
});

test("Refresh recalculates the whole workbook", { skip }, async () => {
  host.workbook = new FakeWorkbook();
  const outcome = await pane.refresh();
  assert.ok(outcome.ok);
  assert.deepEqual(host.workbook.calculations, [globalThis.Excel.CalculationType.full]);
});

test("PS_BASED_ON is read as Excel gives a defined name's value", { skip }, () => {
  assert.equal(pane.basedOnNumber(12), 12);
  assert.equal(pane.basedOnNumber("=12"), 12);
  assert.equal(pane.basedOnNumber('="7"'), 7);
  assert.equal(pane.basedOnNumber(0), 0);
  assert.equal(pane.basedOnNumber("#REF!"), null);
  assert.deepEqual(pane.fromA1([["a", "b"]], "Plan!B2:C2"), [["", "", ""], ["", "a", "b"]]);
});

// --- the page: fields and buttons wired through Office.onReady ------------------------------------

class Element {
  constructor(id) {
    this.id = id;
    this.value = "";
    this.textContent = "";
    this.className = "";
    this.disabled = false;
    this.children = [];
    this.listeners = {};
  }
  addEventListener(type, listener) {
    this.listeners[type] = listener;
  }
  appendChild(child) {
    this.children.push(child);
  }
  set textContent(text) {
    this._text = text;
    if (text === "") this.children = [];
  }
  get textContent() {
    return this._text;
  }
  fire(type) {
    return this.listeners[type]({ type, preventDefault() {} });
  }
}

function fakeDocument() {
  const elements = new Map();
  for (const id of ["settings", "service-url", "token", "team", "save", "submit-plan", "refresh", "status", "issues"]) {
    elements.set(id, new Element(id));
  }
  return { getElementById: (id) => elements.get(id) ?? null, createElement: (tag) => new Element(tag) };
}

test("the task pane's fields and buttons work", { skip }, async () => {
  const rows = structuredClone(service.fixture.rows);
  rows[2][rows[0].indexOf("Start date")] = "not a date";
  host.workbook = new FakeWorkbook({ sheets: { Plan: { values: rows } }, names: { PS_BASED_ON: service.fixture.based_on } });
  const document = fakeDocument();
  let started;
  await globalThis.Office.onReady(() => {
    started = pane.initialise(document);
  });
  await started;
  const field = (id) => document.getElementById(id);
  assert.equal(field("service-url").value, "", "no saved address and no page address in Node");
  field("service-url").value = service.url;
  field("token").value = service.tokens.marketer;
  field("team").value = service.fixture.team;
  await field("settings").fire("submit");
  assert.match(field("status").textContent, /Signed in/);
  assert.deepEqual(host.workbook.calculations, ["Full"], "saving recalculates: cells that asked to sign in ask again");
  await field("submit-plan").fire("click");
  assert.equal(field("status").className, "error");
  assert.match(field("status").textContent, /^Not submitted/);
  const column = letter(rows[0].indexOf("Start date"));
  assert.ok(field("issues").children.some((li) => li.textContent.startsWith(`Plan!${column}3 `)));
  await field("refresh").fire("click");
  assert.equal(field("status").className, "ok");
  assert.equal(field("issues").children.length, 0);
  assert.deepEqual(host.workbook.calculations, ["Full", "Full"]);
});
