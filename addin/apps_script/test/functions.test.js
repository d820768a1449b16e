"use strict";
// The custom functions against the real service: the same answers as the batch endpoint, the
// cache (one request for repeated calls, expiry, generations, the 100 KB limit), and the
// messages a cell shows when the service is unreachable, the token is refused or missing.

const assert = require("node:assert/strict");
const test = require("node:test");
const { createRuntime, sheetDate } = require("./gas_stubs.js");
const { service, SKIP, batch, signedIn } = require("./service.js");

const opts = { skip: SKIP };
const grid = (v) => (Array.isArray(v) ? (Array.isArray(v[0]) ? v : [v]) : [[v]]);
/** What the cell shows for a batch answer: the value for a single-value function, else rows. */
const shown = (answer, scalar) => {
  if (answer.error) return { error: `${answer.error.code}: ${answer.error.message}` };
  const rows = answer.result.map((r) => r.map((v) => (v === null ? "" : v)));
  return { value: scalar && rows.length === 1 && rows[0].length === 1 ? rows[0][0] : rows };
};

test("live functions answer exactly what the batch endpoint answers for the same arguments", opts, async () => {
  const { team, region } = service;
  const calls = [
    ["PS_PLANNED", [region]],
    ["PS_PLANNED", [region, "Q2"]],
    ["PS_PLANNED", [team, "m03", "Events"]],
    ["PS_PLANNED", [region, "FY", "", ""]],
    ["PS_ACTUAL", [region]],
    ["PS_ACTUAL", [team, "Events"]],
    ["PS_BUDGET", [region, "Q1"]],
    ["PS_BUDGET", [region]],
    ["PS_LIVE_VARIANCE", [region, "2026-09-30"]],
    ["PS_REMAINING_LIVE", [region]],
    ["PS_PLANNED", ["MARS"]], // #N/A
    ["PS_PLANNED", [region, "Q9"]], // #VALUE!
  ];
  for (const role of ["finance", "marketer"]) {
    const runtime = createRuntime(signedIn(service.tokens[role]));
    const expected = await batch(
      calls.map(([name, args]) => ({ name, args: args.map(grid) })),
      service.tokens[role]
    );
    const got = calls.map(([name, args]) => runtime.tryCall(name, ...args));
    assert.deepEqual(got, expected.map((a) => shown(a, true)), role);
    assert.equal(runtime.fetchLog.length, calls.length, "one request per distinct call");
    assert.ok(got.slice(0, 10).every((g) => typeof g.value === "number"), "real figures, not errors");
    assert.match(got[10].error, /^#N\/A: /);
    assert.match(got[11].error, /^#VALUE!: /);
  }
});

test("in a plan template of another fiscal year, a live call reads that year unless it names one", opts, async () => {
  const { region } = service;
  const template = { spreadsheet: { sheets: { Plan: {}, _plansheet: { values: [["fiscal_year", "2028"], ["region", region]] } } } };
  const runtime = createRuntime({ ...signedIn(), ...template });
  const [thisYear, nextYear, named] = await batch([
    { name: "PS_BUDGET", args: [[[region]], [["Q1"]]] },
    { name: "PS_BUDGET", args: [[[region]], [["Q1"]], [[""]], [[2028]]] },
    { name: "PS_BUDGET", args: [[[region]], [["Q1"]], [[""]], [["FY2027"]]] },
  ]);
  assert.notEqual(thisYear.result[0][0], nextYear.result[0][0], "the two years' allocations differ (or the test proves nothing)");
  assert.deepEqual(runtime.tryCall("PS_BUDGET", region, "Q1"), shown(nextYear, true), "the template's year");
  assert.ok(runtime.fetchLog[0].url.endsWith(`/api/v1/functions/PS_BUDGET?year=2028`), runtime.fetchLog[0].url);
  assert.deepEqual(runtime.tryCall("PS_BUDGET", region, "Q1", "", "FY2027"), shown(named, true), "a named year wins");
  const plain = createRuntime(signedIn());
  assert.deepEqual(plain.tryCall("PS_BUDGET", region, "Q1"), shown(thisYear, true), "no template: the service's year");
  assert.equal(plain.fetchLog[0].url, `${service.url}/api/v1/functions/PS_BUDGET`);
  assert.match(runtime.tryCall("PS_BUDGET", region, "Q1", "", 2041).error, /^#N\/A: FY2041 is not described.*\[years\.2041\]/);
});

test("each call is one POST /api/v1/functions/NAME with the arguments as 2-D arrays", opts, () => {
  const runtime = createRuntime(signedIn());
  runtime.call("PS_PLANNED", service.region, "Q1");
  runtime.call("PS_VARIANCE", [[100], [50]], [[90], [60]]);
  const [live, pure] = runtime.fetchLog;
  assert.equal(live.url, `${service.url}/api/v1/functions/PS_PLANNED`);
  assert.equal(live.method, "POST");
  assert.equal(live.headers.Authorization, `Bearer ${service.tokens.finance}`);
  assert.equal(live.headers["Content-Type"], "application/json");
  assert.deepEqual(JSON.parse(live.payload), { args: [[[service.region]], [["Q1"]]] });
  assert.deepEqual(JSON.parse(pure.payload), { args: [[[100], [50]], [[90], [60]]] });
});

test("pure functions: ranges in, rows out, single cells as 1x1 ranges", opts, async () => {
  const runtime = createRuntime(signedIn());
  const calls = [
    ["PS_VARIANCE", [[[100], [50]], [[90], [60]]]],
    ["PS_VARIANCE", [100, 90, "flag"]],
    ["PS_VARIANCE_PCT", [[[100, 0]], [[90, 10]]]],
    ["PS_REMAINING", [[[1000], [500]], [[100], [50]], [[200], [25]]]],
    ["PS_FX", [[[100], [200]], "EUR"]],
    ["PS_FX", [[[100]], "XYZ"]], // an unknown currency: an error
  ];
  const expected = await batch(calls.map(([name, args]) => ({ name, args: args.map(grid) })));
  const got = calls.map(([name, args]) => runtime.tryCall(name, ...args));
  assert.deepEqual(got, expected.map((a) => shown(a, false)));
  assert.deepEqual(got[0].value, [[10], [-10]]);
  assert.ok(Array.isArray(got[1].value), "a range function answers rows even for one cell");
  assert.match(got[5].error, /^#/);
});

test("a date cell is sent as the serial number Sheets stores, in the spreadsheet's time zone", opts, async () => {
  for (const timeZone of ["Etc/UTC", "Europe/Paris", "America/Los_Angeles", "Asia/Tokyo"]) {
    const runtime = createRuntime({ ...signedIn(), spreadsheet: { timeZone } });
    const got = runtime.call("PS_LIVE_VARIANCE", service.region, sheetDate("2026-09-30", timeZone));
    assert.deepEqual(JSON.parse(runtime.fetchLog[0].payload).args[1], [[46295]], timeZone); // 2026-09-30
    const [expected] = await batch([{ name: "PS_LIVE_VARIANCE", args: [[[service.region]], [["2026-09-30"]]] }]);
    assert.equal(got, expected.result[0][0], timeZone);
  }
});

test("omitted trailing arguments are not sent; blank ones are, and mean the default", opts, () => {
  const runtime = createRuntime(signedIn());
  const a = runtime.call("PS_PLANNED", service.region, undefined, undefined);
  const b = runtime.call("PS_PLANNED", service.region, "", "");
  const c = runtime.call("PS_PLANNED", service.region, "FY");
  assert.deepEqual(JSON.parse(runtime.fetchLog[0].payload).args, [[[service.region]]]);
  assert.deepEqual(JSON.parse(runtime.fetchLog[1].payload).args, [[[service.region]], [[""]], [[""]]]);
  assert.equal(a, b);
  assert.equal(a, c);
});

test("a repeated call is answered from the cache, without a second request", opts, () => {
  const runtime = createRuntime(signedIn());
  const first = runtime.call("PS_PLANNED", service.region, "Q1");
  assert.equal(runtime.fetchLog.length, 1);
  for (let i = 0; i < 5; i++) assert.equal(runtime.call("PS_PLANNED", service.region, "Q1"), first);
  assert.equal(runtime.fetchLog.length, 1, "five repeats, no request");
  runtime.call("PS_PLANNED", service.region, "Q2");
  assert.equal(runtime.fetchLog.length, 2, "other arguments are another answer");
  const range = [[100], [50]];
  runtime.call("PS_VARIANCE", range, [[90], [60]]);
  runtime.call("PS_VARIANCE", [[100], [50]], [[90], [60]]);
  assert.equal(runtime.fetchLog.length, 3, "ranges too");
  // The key is a digest: no token, argument or value in clear in the cache's keys.
  for (const key of runtime.caches.user.items.keys()) {
    assert.match(key, /^ps1:[A-Za-z0-9_-]+=*$/);
    assert.ok(key.length <= 250);
  }
  for (const { value } of runtime.caches.user.items.values()) assert.ok(!value.includes(service.tokens.finance));
});

test("another token, or another service, is another cache entry", opts, () => {
  const runtime = createRuntime(signedIn(service.tokens.finance));
  runtime.call("PS_PLANNED", service.region);
  runtime.userProperties.setProperty("PLANSHEET_TOKEN", service.tokens.marketer);
  runtime.call("PS_PLANNED", service.region);
  assert.equal(runtime.fetchLog.length, 2);
  assert.equal(runtime.fetchLog[1].headers.Authorization, `Bearer ${service.tokens.marketer}`);
});

test("live answers expire after 60 s, pure ones after 6 h; a new generation forgets them all", opts, () => {
  const runtime = createRuntime(signedIn());
  runtime.call("PS_PLANNED", service.region);
  runtime.call("PS_VARIANCE", 100, 90);
  assert.equal(runtime.fetchLog.length, 2);
  runtime.clock.advance(61);
  runtime.call("PS_PLANNED", service.region);
  runtime.call("PS_VARIANCE", 100, 90);
  assert.equal(runtime.fetchLog.length, 3, "the live answer is asked again, the pure one is not");
  runtime.clock.advance(6 * 3600);
  runtime.call("PS_VARIANCE", 100, 90);
  assert.equal(runtime.fetchLog.length, 4, "six hours later the pure one too");
  runtime.context.newGeneration_(); // what Refresh master and Settings do
  runtime.call("PS_PLANNED", service.region);
  runtime.call("PS_VARIANCE", 100, 90);
  assert.equal(runtime.fetchLog.length, 6);
});

test("an answer over CacheService's 100 KB limit is returned but not cached", opts, () => {
  const runtime = createRuntime(signedIn());
  const plan = Array.from({ length: 150 }, (_, r) => Array.from({ length: 100 }, (_, c) => 10000 + r * 100 + c + 0.37));
  const actual = plan.map((row) => row.map((v) => Math.round(v * 0.61 * 100) / 100));
  const first = runtime.call("PS_VARIANCE", plan, actual);
  assert.equal(first.length, 150);
  assert.ok(JSON.stringify(first).length > 100 * 1024, "the test's answer is over the limit");
  assert.equal(runtime.caches.user.items.size, 0);
  const second = runtime.call("PS_VARIANCE", plan, actual);
  assert.equal(runtime.fetchLog.length, 2);
  assert.deepEqual(JSON.stringify(second), JSON.stringify(first));
});

test("an error is shown with its Excel code and message, and not cached", opts, () => {
  const runtime = createRuntime(signedIn());
  for (let i = 0; i < 2; i++) {
    const { error } = runtime.tryCall("PS_PLANNED", "MARS");
    assert.equal(error, "#N/A: scope 'MARS' is not a region or one of your teams");
  }
  assert.equal(runtime.fetchLog.length, 2);
});

test("a marketer sees only their teams' figures (the token's own permissions)", opts, async () => {
  const runtime = createRuntime(signedIn(service.tokens.marketer));
  const other = service.team.startsWith("NA-") ? "EMEA-ENTERPRISE" : "NA-ENTERPRISE";
  const { error } = runtime.tryCall("PS_PLANNED", other);
  assert.match(error, /^#N\/A: .*not a region or one of your teams/);
  const [expected] = await batch([{ name: "PS_PLANNED", args: [[[service.team]]] }], service.tokens.marketer);
  assert.equal(runtime.call("PS_PLANNED", service.team), expected.result[0][0]);
});

test("service unreachable: the cell says so, with the address; nothing is cached", opts, () => {
  const runtime = createRuntime({ userProperties: { PLANSHEET_URL: service.deadUrl, PLANSHEET_TOKEN: service.tokens.finance } });
  for (let i = 0; i < 2; i++) {
    const { error } = runtime.tryCall("PS_PLANNED", service.region);
    assert.equal(error, `#N/A: Plansheet service unreachable at ${service.deadUrl}: Address unavailable`);
  }
  assert.equal(runtime.fetchLog.length, 2);
  assert.equal(runtime.caches.user.items.size, 0);
});

test("a refused token: the cell says to sign in through Plansheet → Settings", opts, () => {
  const runtime = createRuntime(signedIn("ps_this_token_does_not_exist"));
  const { error } = runtime.tryCall("PS_PLANNED", service.region);
  assert.match(error, /^#N\/A: sign in: Plansheet → Settings \(the service refused the token: .+\)$/);
  assert.equal(runtime.tryCall("PS_VARIANCE", 100, 90).error, error, "pure functions need a token too");
});

test("not set up: the cell says to sign in, and no request is made", () => {
  const runtime = createRuntime();
  const { error } = runtime.tryCall("PS_PLANNED", "EMEA");
  assert.equal(error, "#N/A: Plansheet is not set up: sign in: Plansheet → Settings");
  assert.equal(runtime.fetchLog.length, 0);
});

test("the formulas use the user properties, else the script properties", opts, () => {
  const fallback = createRuntime({
    scriptProperties: { PLANSHEET_URL: service.url + "/", PLANSHEET_TOKEN: ` ${service.tokens.marketer} ` },
  });
  assert.equal(typeof fallback.call("PS_PLANNED", service.team), "number");
  assert.equal(fallback.fetchLog[0].url, `${service.url}/api/v1/functions/PS_PLANNED`, "trailing / dropped");
  assert.equal(fallback.fetchLog[0].headers.Authorization, `Bearer ${service.tokens.marketer}`, "token trimmed");

  const both = createRuntime({
    ...signedIn(service.tokens.finance),
    scriptProperties: { PLANSHEET_URL: service.deadUrl, PLANSHEET_TOKEN: service.tokens.marketer },
  });
  both.call("PS_PLANNED", service.region);
  assert.equal(both.fetchLog[0].headers.Authorization, `Bearer ${service.tokens.finance}`);
});
