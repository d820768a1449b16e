"use strict";
/**
 * The running Plansheet service the tests talk to, as tests/hosts/test_apps_script.py describes
 * it in the environment. Not a test file. Without PLANSHEET_TEST_URL the tests that need the
 * service skip with `SKIP` as the reason.
 *
 *   PLANSHEET_TEST_URL       http://127.0.0.1:PORT of a service with approved plans
 *   PLANSHEET_TEST_TOKENS    {"finance": "ps_...", "marketer": "ps_..."} (the marketer's teams:
 *                            PLANSHEET_TEST_TEAM and both sheets' teams)
 *   PLANSHEET_TEST_TEAM      a team with an approved plan, e.g. EMEA-ENTERPRISE; its region too
 *   PLANSHEET_TEST_LIVE      ["PS_BUDGET", ...]: the catalogue's live functions
 *   PLANSHEET_TEST_DEAD_URL  an address where nothing listens
 *   PLANSHEET_TEST_SHEETS    {"good": {"team", "meta", "lines"}, "bad": {"team", "meta", "cell"}}:
 *                            registered Google team sheets (meta: their _plansheet rows), one
 *                            that submits and one refused for `cell` (e.g. "Plan!G12")
 */

const env = process.env;
const json = (name, fallback) => (env[name] ? JSON.parse(env[name]) : fallback);

const service = {
  url: env.PLANSHEET_TEST_URL || null,
  tokens: json("PLANSHEET_TEST_TOKENS", {}),
  team: env.PLANSHEET_TEST_TEAM || "EMEA-ENTERPRISE",
  live: json("PLANSHEET_TEST_LIVE", []),
  deadUrl: env.PLANSHEET_TEST_DEAD_URL || "http://127.0.0.1:9",
  sheets: json("PLANSHEET_TEST_SHEETS", {}),
};
service.region = service.team.split("-")[0];

const SKIP = service.url ? false : "no service: run through pytest tests/hosts/test_apps_script.py (sets PLANSHEET_TEST_URL)";

async function request(method, path, token, body) {
  const response = await fetch(service.url + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** The batch endpoint's answers for calls whose args are already 2-D arrays. */
async function batch(calls, token) {
  const answer = await request("POST", "/api/v1/functions:batch", token || service.tokens.finance, { calls });
  if (answer.status !== 200) throw new Error(`batch answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  return answer.body.results;
}

/** The catalogue metadata (GET /api/v1/functions). */
async function metadata() {
  const answer = await request("GET", "/api/v1/functions", service.tokens.finance);
  if (answer.status !== 200) throw new Error(`metadata answered ${answer.status}`);
  return answer.body.functions;
}

/** Settings for a runtime: the service and a token in the user properties. */
function signedIn(token) {
  return { userProperties: { PLANSHEET_URL: service.url, PLANSHEET_TOKEN: token || service.tokens.finance } };
}

module.exports = { service, SKIP, request, batch, metadata, signedIn };
