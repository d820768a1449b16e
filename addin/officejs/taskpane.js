// @ts-check
/*
 * The Plansheet task pane: sign in (service address, API token, team id), Submit plan, Refresh.
 *
 * Submit plan reads the Plan sheet's used range through the Excel JavaScript API, with the
 * template's PS_BASED_ON name (the approved submission the template was filled from), and posts
 * it as JSON rows to POST /api/v1/submissions; the answer is shown, with every issue located to
 * its cell ("Plan!L12 Start date must be a date ..."). Refresh recalculates the workbook in full,
 * which recomputes the volatile live functions (PS_BUDGET, PS_PLANNED, ...).
 *
 * Runs in the shared runtime after functions.js, whose settings (localStorage, OfficeRuntime.storage)
 * it shares. Exposes `PlansheetTaskpane` for the tests.
 */
(function (root) {
  "use strict";

  const PLAN_SHEET = "Plan";
  const BASED_ON_NAME = "PS_BASED_ON";
  const TEAM_KEY = "plansheet.team";

  function functions() {
    const api = root.PlansheetFunctions;
    if (!api) throw new Error("functions.js must be loaded before taskpane.js");
    return api;
  }

  // --- the team id: remembered in the workbook (one workbook, one team's plan) ---------------

  function documentSettings() {
    const office = root.Office;
    return office && office.context && office.context.document && office.context.document.settings
      ? office.context.document.settings
      : null;
  }

  async function teamId() {
    const settings = documentSettings();
    const inWorkbook = settings ? settings.get(TEAM_KEY) : null;
    return String(inWorkbook || (await functions().readSetting(TEAM_KEY)) || "").trim();
  }

  async function saveTeam(team) {
    const value = String(team || "").trim();
    const settings = documentSettings();
    if (settings) {
      if (value) settings.set(TEAM_KEY, value);
      else settings.remove(TEAM_KEY);
      await new Promise((resolve) => settings.saveAsync(() => resolve()));
    }
    await functions().writeSetting(TEAM_KEY, value); // the default for the next workbook
    return value;
  }

  // --- reading the plan -------------------------------------------------------------------------

  function columnNumber(letters) {
    let n = 0;
    for (const ch of letters.toUpperCase()) n = n * 26 + (ch.charCodeAt(0) - 64);
    return n;
  }

  /** (row, column), 1-based, of the top-left cell of an address such as "Plan!C3:AL301" or "'My plan'!A1". */
  function topLeft(address) {
    const cell = String(address || "A1").split("!").pop().split(":")[0].replace(/\$/g, "");
    const match = /^([A-Za-z]+)(\d+)$/.exec(cell);
    return match ? { row: Number(match[2]), column: columnNumber(match[1]) } : { row: 1, column: 1 };
  }

  /**
   * The used range's values as a grid whose row 0 is sheet row 1 and column 0 is column A (the
   * service names cells by their place in the grid), so the used range is padded when it starts
   * further down or right.
   */
  function fromA1(values, address) {
    const { row, column } = topLeft(address);
    const width = (values[0] || []).length + column - 1;
    const pad = new Array(column - 1).fill("");
    const blankRows = Array.from({ length: row - 1 }, () => new Array(width).fill(""));
    return [...blankRows, ...values.map((r) => [...pad, ...r])];
  }

  function basedOnNumber(value) {
    if (value === null || value === undefined) return null;
    const text = String(value).trim().replace(/^=/, "").replace(/^"(.*)"$/, "$1").trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  }

  /** The Plan sheet's rows (header first, values as Excel gives them) and the PS_BASED_ON number (null: none). */
  async function readPlan() {
    return root.Excel.run(async (context) => {
      const used = context.workbook.worksheets.getItem(PLAN_SHEET).getUsedRange();
      used.load("values,address");
      const name = context.workbook.names.getItemOrNullObject(BASED_ON_NAME);
      name.load("value");
      try {
        await context.sync();
      } catch (error) {
        if (error && error.code === "ItemNotFound") {
          throw new Error(`this workbook has no "${PLAN_SHEET}" sheet; open your team's Plansheet template`);
        }
        throw error;
      }
      const basedOn = name.isNullObject ? null : basedOnNumber(name.value);
      return { rows: fromA1(used.values, used.address), basedOn, address: used.address };
    });
  }

  // --- talking to the service ---------------------------------------------------------------------

  function where(issue) {
    if (!issue.cell) return "";
    const sheet = !issue.sheet || issue.sheet === "lines" ? PLAN_SHEET : issue.sheet; // JSON rows are the Plan sheet's
    return `${sheet}!${issue.cell} `;
  }

  /** One issue as the pane lists it: "Plan!G12 message" (warnings marked). */
  function formatIssue(issue) {
    const text = `${where(issue)}${issue.message || issue.rule || ""}`;
    return issue.severity === "warning" ? `${text} (warning)` : text;
  }

  async function request(method, path, body) {
    const api = functions();
    const base = await api.serviceUrl();
    const key = await api.token();
    if (!base) return { outcome: fail("Enter the service address first.") };
    if (!key) return { outcome: fail("Paste your API token and click Save first.") };
    let response;
    try {
      response = await root.fetch(`${base}${path}`, {
        method,
        headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", Accept: "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (_) {
      return { outcome: fail(`The Plansheet service is unreachable at ${base}; check the address and your connection.`) };
    }
    let data = {};
    try {
      data = await response.json();
    } catch (_) {
      data = {};
    }
    if (response.status === 401) {
      return { outcome: fail(`The service refused your API token (${data.detail || "not valid"}); paste a valid one and click Save.`, 401) };
    }
    return { response, data };
  }

  function fail(title, status = 0, lines = []) {
    return { ok: false, status, title, lines };
  }

  /** Submit the Plan sheet for the saved team; the outcome as {ok, status, title, lines}. */
  async function submitPlan() {
    const team = await teamId();
    if (!team) return fail("Enter your team id (for example EMEA-ENTERPRISE) and click Save first.");
    let plan;
    try {
      plan = await readPlan();
    } catch (error) {
      return fail(`Could not read the plan: ${error.message || error}`);
    }
    const body = { team, rows: plan.rows };
    if (plan.basedOn !== null) body.based_on = { submission: plan.basedOn };
    const { outcome, response, data } = await request("POST", "/api/v1/submissions", body);
    if (outcome) return outcome;
    const issues = Array.isArray(data.issues) ? data.issues : [];
    if (response.status === 200 && data.unchanged) {
      const title = `Unchanged: this is ${data.team}'s approved plan #${data.id}; nothing was sent for approval.`;
      return { ok: true, status: 200, title, lines: [], submission: data };
    }
    if (response.status === 201) {
      const report = (data.report && data.report.issues) || [];
      const title =
        `Submitted: plan #${data.id} for ${data.team}, ${data.lines} line${data.lines === 1 ? "" : "s"}` +
        `${report.length ? `, ${report.length} warning${report.length === 1 ? "" : "s"}` : ""}; finance reviews it next.`;
      return { ok: true, status: 201, title, lines: report.map(formatIssue), submission: data };
    }
    if (response.status === 422) {
      return fail(`Not submitted: ${data.detail || "the plan is not valid"}. Fix these cells and submit again:`, 422, issues.map(formatIssue));
    }
    if (response.status === 409) {
      const current = data.current_submission ? `plan #${data.current_submission}` : "another plan";
      return fail(
        `Not submitted: ${data.detail || "your team's plan changed"}. Download your team's current template ` +
          `(it is based on ${current}), copy your changes into it and submit again.`,
        409,
      );
    }
    return fail(`Not submitted: ${data.detail || data.title || `the service answered ${response.status}`}`, response.status, issues.map(formatIssue));
  }

  /** Recalculate everything: the live functions are volatile, so they ask the service again. */
  async function refresh() {
    await root.Excel.run(async (context) => {
      context.workbook.application.calculate(root.Excel.CalculationType.full);
      await context.sync();
    });
    return { ok: true, status: 0, title: "Recalculated: the live figures are the service's current ones.", lines: [] };
  }

  /** Save the settings, then check the token with the service. */
  async function saveSettings({ url, token, team }) {
    await functions().saveSettings({ url, token });
    const saved = await saveTeam(team);
    const { outcome, response, data } = await request("GET", "/api/v1/functions");
    if (outcome) return outcome;
    if (!response.ok) return fail(`The service answered ${response.status}: ${data.detail || data.title || ""}`, response.status);
    const teamNote = saved ? ` for team ${saved}` : "; enter your team id to submit plans";
    return { ok: true, status: response.status, title: `Signed in${teamNote}.`, lines: [] };
  }

  // --- the page -------------------------------------------------------------------------------------

  function show(document, outcome) {
    const status = document.getElementById("status");
    const list = document.getElementById("issues");
    status.textContent = outcome.title;
    status.className = outcome.ok ? "ok" : "error";
    list.textContent = "";
    for (const line of outcome.lines) {
      const item = document.createElement("li");
      item.textContent = line;
      list.appendChild(item);
    }
  }

  async function busy(document, run) {
    const buttons = ["save", "submit-plan", "refresh"].map((id) => document.getElementById(id));
    buttons.forEach((b) => (b.disabled = true));
    try {
      const outcome = await run();
      show(document, outcome);
      return outcome;
    } catch (error) {
      const outcome = fail(String((error && error.message) || error));
      show(document, outcome);
      return outcome;
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  async function initialise(document) {
    const api = functions();
    const field = (id) => document.getElementById(id);
    field("service-url").value = await api.serviceUrl();
    field("token").value = await api.token();
    field("team").value = await teamId();
    field("settings").addEventListener("submit", (event) => {
      event.preventDefault();
      return busy(document, async () => {
        const outcome = await saveSettings({ url: field("service-url").value, token: field("token").value, team: field("team").value });
        if (outcome.ok) await refresh(); // cells that said "sign in" ask again
        return outcome;
      });
    });
    field("submit-plan").addEventListener("click", () => busy(document, submitPlan));
    field("refresh").addEventListener("click", () => busy(document, refresh));
  }

  const pane = { submitPlan, refresh, saveSettings, readPlan, teamId, saveTeam, formatIssue, fromA1, basedOnNumber, initialise };
  root.PlansheetTaskpane = pane;

  if (root.Office && typeof root.Office.onReady === "function" && root.document && root.document.getElementById) {
    pane.started = root.Office.onReady(() => {
      if (root.document.getElementById("status")) return initialise(root.document);
      return undefined;
    });
  }
})(typeof globalThis !== "undefined" ? globalThis : this);
