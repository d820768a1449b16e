// @ts-check
/**
 * Plansheet for Google Sheets: the PS_ custom functions, answered by the Plansheet sync service,
 * and the Plansheet menu (Submit plan, Refresh master, automatic refresh on and off, Settings).
 *
 * Every function sends its arguments to POST /api/v1/functions/NAME as 2-D arrays (Sheets passes
 * a range as rows and a single cell as a value) and shows the service's answer: a value, rows
 * that spill into the neighbouring cells, or an error ("#N/A: ...") that Sheets shows as #ERROR!
 * with the message on hover. Answers are kept in the user cache (CacheService) for a while, see
 * CACHE_SECONDS_, so a sheet with the same call in many cells asks the service once.
 *
 * Where the address and token come from: the user properties (Plansheet → Settings), else the
 * script properties PLANSHEET_URL and PLANSHEET_TOKEN. Google runs custom functions with the
 * spreadsheet owner's user properties, so on a spreadsheet you do not own the formulas use the
 * script properties (Settings offers to store the sign-in there); the menu uses your own.
 *
 * Automatic refresh (Plansheet → Turn on automatic refresh) is a time-driven trigger: every
 * AUTO_REFRESH_MINUTES_ it asks the service for its master version (one small request) and, only
 * when that changed since the last run, recalculates the live cells as Refresh master does.
 *
 * Install: Extensions > Apps Script, paste this file and appsscript.json (Project Settings >
 * Show "appsscript.json"), save, reload the spreadsheet. See docs/google-sheets.md.
 */

var URL_PROPERTY_ = "PLANSHEET_URL";
var TOKEN_PROPERTY_ = "PLANSHEET_TOKEN";
// Part of every cache key: Refresh master and Settings change it, so no cached answer is reused.
var GENERATION_PROPERTY_ = "PLANSHEET_CACHE_GENERATION";
var META_SHEET_ = "_plansheet";
// Automatic refresh: the trigger's interval (everyMinutes takes 1, 5, 10, 15 or 30), the function it
// runs, and the document property holding the master version the cells were last refreshed at.
var AUTO_REFRESH_MINUTES_ = 5;
var AUTO_REFRESH_HANDLER_ = "autoRefresh";
var SEEN_VERSION_PROPERTY_ = "PLANSHEET_SEEN_VERSION";

// How long an answer is reused, in seconds. Live functions read the master budget, which changes
// when finance approves a plan: one minute, and Refresh master forgets them at once. Volatile pure
// functions depend on today's date: one hour, and never across a (UTC) day. Pure functions depend
// on their arguments only: six hours, the longest CacheService keeps anything.
var CACHE_SECONDS_ = { live: 60, volatile: 3600, pure: 21600 };
// CacheService keeps at most 100 KB per key; a longer answer is simply not cached.
var CACHE_MAX_BYTES_ = 100 * 1024;

// The catalogue (GET /api/v1/functions): kind decides the cache time, result whether a 1x1 answer
// is shown as a single value.
var FUNCTIONS_ = {
  PS_VALIDATE: { kind: "pure", result: "matrix" },
  PS_ROLLUP: { kind: "pure", result: "matrix" },
  PS_FORECAST: { kind: "volatile", result: "matrix" },
  PS_KPI: { kind: "pure", result: "matrix" },
  PS_VARIANCE: { kind: "pure", result: "matrix" },
  PS_VARIANCE_PCT: { kind: "pure", result: "matrix" },
  PS_FX: { kind: "pure", result: "matrix" },
  PS_PACING: { kind: "volatile", result: "matrix" },
  PS_REMAINING: { kind: "pure", result: "matrix" },
  PS_BUDGET: { kind: "live", result: "scalar" },
  PS_PLANNED: { kind: "live", result: "scalar" },
  PS_ESTIMATE: { kind: "live", result: "scalar" },
  PS_BASELINE: { kind: "live", result: "scalar" },
  PS_ACTUAL: { kind: "live", result: "scalar" },
  PS_COMMITTED: { kind: "live", result: "scalar" },
  PS_INVOICED: { kind: "live", result: "scalar" },
  PS_ACCRUED: { kind: "live", result: "scalar" },
  PS_LIVE_VARIANCE: { kind: "live", result: "scalar" },
  PS_REMAINING_LIVE: { kind: "live", result: "scalar" },
  PS_RESULT: { kind: "live", result: "scalar" },
  PS_EXPECTED: { kind: "live", result: "scalar" },
  PS_TARGET: { kind: "live", result: "scalar" },
};

// ----------------------------------------------------------------------------------------------
// The custom functions (one per catalogue function; the JSDoc is what Sheets shows as help)
// ----------------------------------------------------------------------------------------------

/**
 * Checks each plan line against the plan's rules; returns one message per row, empty when the line
 * is fine.
 *
 * @param {Object[][]} plan the Plan table, with or without its header row
 * @return {Array<Array<*>>} one message per row
 * @customfunction
 */
function PS_VALIDATE(plan) {
  return plansheet_("PS_VALIDATE", arguments);
}

/**
 * Totals of a measure by any dimensions and period (month, quarter or year), in the reporting
 * currency.
 *
 * @param {Object[][]} plan the Plan table, with or without its header row
 * @param {string} by (optional) dimensions, comma-separated: region, business_unit, team, campaign, channel, status...
 * @param {string} period (optional) month, quarter or year (for the planned measure)
 * @param {string} measure (optional) planned, committed, actual, leads, mqls, pipeline or revenue
 * @return {Array<Array<*>>} a table with a header row
 * @customfunction
 */
function PS_ROLLUP(plan, by, period, measure) {
  return plansheet_("PS_ROLLUP", arguments);
}

/**
 * Year-end spend per plan line, by run rate or by the remaining plan's phasing, in the line's
 * currency.
 *
 * @param {Object[][]} plan the Plan table, with or without its header row
 * @param {string} method (optional) phasing (actual + plan of open months) or run_rate (actual per closed month x 12)
 * @param {Date|string} as_of (optional) the date to forecast from (default today)
 * @return {Array<Array<*>>} one amount per plan line
 * @customfunction
 */
function PS_FORECAST(plan, method, as_of) {
  return plansheet_("PS_FORECAST", arguments);
}

/**
 * What the money buys by group: spend, expected leads, MQLs, pipeline and revenue, cost per lead
 * and MQL, pipeline and revenue per unit of spend, and the gap to the region's targets.
 *
 * @param {Object[][]} plan the Plan table, with or without its header row
 * @param {string} by (optional) dimensions, comma-separated (targets apply when grouped by region)
 * @param {string} period (optional) year or quarter
 * @return {Array<Array<*>>} a table with a header row
 * @customfunction
 */
function PS_KPI(plan, by, period) {
  return plansheet_("PS_KPI", arguments);
}

/**
 * Plan minus actual for each cell (finance's cost-line convention: positive means under-spent,
 * favourable); with output "flag", favourable / unfavourable / on plan; with "percent", the share
 * of the plan.
 *
 * @param {number[][]} plan planned amounts (or allocations)
 * @param {number[][]} actual actual amounts (or plans)
 * @param {string} output (optional) amount, percent or flag
 * @return {Array<Array<*>>} one value per cell
 * @customfunction
 */
function PS_VARIANCE(plan, actual, output) {
  return plansheet_("PS_VARIANCE", arguments);
}

/**
 * Plan minus actual as a share of the plan (0.1 = 10% under plan); blank where the plan is zero.
 *
 * @param {number[][]} plan planned amounts (or allocations)
 * @param {number[][]} actual actual amounts (or plans)
 * @return {Array<Array<*>>} one share per cell
 * @customfunction
 */
function PS_VARIANCE_PCT(plan, actual) {
  return plansheet_("PS_VARIANCE_PCT", arguments);
}

/**
 * Converts amounts from their currency to the reporting currency (or another), at the fiscal
 * month's rate when one is configured, else at the plan rate.
 *
 * @param {number[][]} amount amounts to convert
 * @param {string[][]} currency_code the currency of each amount (one code, or a range beside the amounts)
 * @param {Object[][]} period (optional) fiscal month (m01..m12, "Feb 2026" or a date); blank for the plan rate
 * @param {string} to_currency (optional) target currency (default: the reporting currency)
 * @return {Array<Array<*>>} one amount per cell
 * @customfunction
 */
function PS_FX(amount, currency_code, period, to_currency) {
  return plansheet_("PS_FX", arguments);
}

/**
 * Spend to date against time elapsed in the fiscal year: (actual / planned) / share of the year
 * gone; 1 is on pace, above 1 spending ahead of plan; blank where nothing is planned.
 *
 * @param {number[][]} actual actual spend to date
 * @param {number[][]} planned planned spend for the year
 * @param {Date|string} as_of (optional) the date (default today)
 * @return {Array<Array<*>>} one ratio per cell
 * @customfunction
 */
function PS_PACING(actual, planned, as_of) {
  return plansheet_("PS_PACING", arguments);
}

/**
 * What is left to spend: allocation minus committed minus actual, for each cell.
 *
 * @param {number[][]} allocation allocated amounts
 * @param {number[][]} committed committed spend
 * @param {number[][]} actual actual spend
 * @return {Array<Array<*>>} one amount per cell
 * @customfunction
 */
function PS_REMAINING(allocation, committed, actual) {
  return plansheet_("PS_REMAINING", arguments);
}

/**
 * Finance's allocation for a region (or a team's region) in a period, in the reporting currency
 *
 * @param {string} scope a region (EMEA) or a team (EMEA-ENTERPRISE)
 * @param {string} period (optional) FY (default) or Q1..Q4: allocations are by quarter
 * @param {string} channel (optional) only this channel (default: all)
 * @param {number|string} year (optional) the fiscal year, 2028 or FY2028 (default: the workbook's template year, else the year the service runs)
 * @return {number} the amount, from the service
 * @customfunction
 */
function PS_BUDGET(scope, period, channel, year) {
  return plansheet_("PS_BUDGET", arguments);
}

/**
 * Planned spend in the approved master budget, in the reporting currency
 *
 * @param {string} scope a region (EMEA) or a team (EMEA-ENTERPRISE)
 * @param {string} period (optional) FY (default), Q1..Q4, or a fiscal month m01..m12
 * @param {string} channel (optional) only this channel (default: all)
 * @param {string} campaign (optional) only this campaign, by name or code (default: all)
 * @param {number|string} year (optional) the fiscal year, 2028 or FY2028 (default: the workbook's template year, else the year the service runs)
 * @return {number} the amount, from the service
 * @customfunction
 */
function PS_PLANNED(scope, period, channel, campaign, year) {
  return plansheet_("PS_PLANNED", arguments);
}

/**
 * Actual spend to date (the finance system's import, else the plans'), in the reporting currency
 *
 * @param {string} scope a region (EMEA) or a team (EMEA-ENTERPRISE)
 * @param {string} channel (optional) only this channel (default: all)
 * @param {string} campaign (optional) only this campaign, by name or code (default: all)
 * @param {number|string} year (optional) the fiscal year, 2028 or FY2028 (default: the workbook's template year, else the year the service runs)
 * @return {number} the amount, from the service
 * @customfunction
 */
function PS_ACTUAL(scope, channel, campaign, year) {
  return plansheet_("PS_ACTUAL", arguments);
}

/**
 * Committed spend: the open purchase order balance once POs are imported (else what the plans typed), in the reporting currency
 *
 * @param {string} scope a region (EMEA) or a team (EMEA-ENTERPRISE)
 * @param {string} channel (optional) only this channel (default: all)
 * @param {string} campaign (optional) only this campaign, by name or code (default: all)
 * @param {number|string} year (optional) the fiscal year, 2028 or FY2028 (default: the workbook's template year, else the year the service runs)
 * @return {number} the amount, from the service
 * @customfunction
 */
function PS_COMMITTED(scope, channel, campaign, year) {
  return plansheet_("PS_COMMITTED", arguments);
}

/**
 * Invoiced against the purchase orders of the scope's lines, in the reporting currency
 *
 * @param {string} scope a region (EMEA) or a team (EMEA-ENTERPRISE)
 * @param {string} channel (optional) only this channel (default: all)
 * @param {string} campaign (optional) only this campaign, by name or code (default: all)
 * @param {number|string} year (optional) the fiscal year, 2028 or FY2028 (default: the workbook's template year, else the year the service runs)
 * @return {number} the amount, from the service
 * @customfunction
 */
function PS_INVOICED(scope, channel, campaign, year) {
  return plansheet_("PS_INVOICED", arguments);
}

/**
 * The month-end accrual: delivered but not yet invoiced on the scope's purchase orders, in the reporting currency
 *
 * @param {string} scope a region (EMEA) or a team (EMEA-ENTERPRISE)
 * @param {string} month (optional) the fiscal month m01..m12 whose month-end accrual (default: the month being closed)
 * @param {string} channel (optional) only this channel (default: all)
 * @param {string} campaign (optional) only this campaign, by name or code (default: all)
 * @param {number|string} year (optional) the fiscal year, 2028 or FY2028 (default: the workbook's template year, else the year the service runs)
 * @return {number} the amount, from the service
 * @customfunction
 */
function PS_ACCRUED(scope, month, channel, campaign, year) {
  return plansheet_("PS_ACCRUED", arguments);
}

/**
 * Planned spend of the closed months minus actual spend: positive is under plan (favourable)
 *
 * @param {string} scope a region (EMEA) or a team (EMEA-ENTERPRISE)
 * @param {Date|string} as_of (optional) the date that decides which months are closed (default today)
 * @param {string} channel (optional) only this channel (default: all)
 * @param {string} campaign (optional) only this campaign, by name or code (default: all)
 * @param {number|string} year (optional) the fiscal year, 2028 or FY2028 (default: the workbook's template year, else the year the service runs)
 * @return {number} the amount, from the service
 * @customfunction
 */
function PS_LIVE_VARIANCE(scope, as_of, channel, campaign, year) {
  return plansheet_("PS_LIVE_VARIANCE", arguments);
}

/**
 * The year's allocation minus committed and actual spend, in the reporting currency
 *
 * @param {string} scope a region (EMEA) or a team (EMEA-ENTERPRISE)
 * @param {string} channel (optional) only this channel (default: all)
 * @param {number|string} year (optional) the fiscal year, 2028 or FY2028 (default: the workbook's template year, else the year the service runs)
 * @return {number} the amount, from the service
 * @customfunction
 */
function PS_REMAINING_LIVE(scope, channel, year) {
  return plansheet_("PS_REMAINING_LIVE", arguments);
}

/**
 * The latest estimate: actual spend of the closed months plus the current plan of the open ones, in the reporting currency (#N/A for a period with closed months when the finance export has no months)
 *
 * @param {string} scope a region (EMEA) or a team (EMEA-ENTERPRISE)
 * @param {string} period (optional) FY (default), Q1..Q4, or a fiscal month m01..m12
 * @param {string} channel (optional) only this channel (default: all)
 * @param {string} campaign (optional) only this campaign, by name or code (default: all)
 * @param {number|string} year (optional) the fiscal year, 2028 or FY2028 (default: the workbook's template year, else the year the service runs)
 * @return {number} the figure, from the service
 * @customfunction
 */
function PS_ESTIMATE(scope, period, channel, campaign, year) {
  return plansheet_("PS_ESTIMATE", arguments);
}

/**
 * Planned spend in the locked budget (the newest baseline), in the reporting currency
 *
 * @param {string} scope a region (EMEA) or a team (EMEA-ENTERPRISE)
 * @param {string} period (optional) FY (default), Q1..Q4, or a fiscal month m01..m12
 * @param {string} channel (optional) only this channel (default: all)
 * @param {string} campaign (optional) only this campaign, by name or code (default: all)
 * @param {number|string} year (optional) the fiscal year, 2028 or FY2028 (default: the workbook's template year, else the year the service runs)
 * @return {number} the figure, from the service
 * @customfunction
 */
function PS_BASELINE(scope, period, channel, campaign, year) {
  return plansheet_("PS_BASELINE", arguments);
}

/**
 * What the spend bought, from the results imported from the CRM: a result, a unit cost, ROI or a conversion (#N/A when no results cover the period)
 *
 * @param {string} measure leads, mqls, sals, opportunities, won, pipeline, revenue, crm_cost, spend, cost_difference, cost_per_lead, cost_per_mql, pipeline_roi, revenue_roi, roi, lead_to_mql, mql_to_opportunity or opportunity_to_won
 * @param {string} scope a region (EMEA) or a team (EMEA-ENTERPRISE)
 * @param {string} period (optional) FY (default), Q1..Q4, or a fiscal month m01..m12
 * @param {string} channel (optional) only this channel (default: all)
 * @param {string} campaign (optional) only this campaign, by name or code (default: all)
 * @param {number|string} year (optional) the fiscal year, 2028 or FY2028 (default: the workbook's template year, else the year the service runs)
 * @return {number} the figure, from the service
 * @customfunction
 */
function PS_RESULT(measure, scope, period, channel, campaign, year) {
  return plansheet_("PS_RESULT", arguments);
}

/**
 * What the approved plan expects of a measure: expected leads, MQLs, pipeline, revenue, planned spend, and the unit costs and ratios they give
 *
 * @param {string} measure leads, mqls, sals, opportunities, won, pipeline, revenue, crm_cost, spend, cost_difference, cost_per_lead, cost_per_mql, pipeline_roi, revenue_roi, roi, lead_to_mql, mql_to_opportunity or opportunity_to_won
 * @param {string} scope a region (EMEA) or a team (EMEA-ENTERPRISE)
 * @param {string} period (optional) FY (default), Q1..Q4, or a fiscal month m01..m12
 * @param {string} channel (optional) only this channel (default: all)
 * @param {string} campaign (optional) only this campaign, by name or code (default: all)
 * @param {number|string} year (optional) the fiscal year, 2028 or FY2028 (default: the workbook's template year, else the year the service runs)
 * @return {number} the figure, from the service
 * @customfunction
 */
function PS_EXPECTED(measure, scope, period, channel, campaign, year) {
  return plansheet_("PS_EXPECTED", arguments);
}

/**
 * The target shared with sales for a region and quarter (or the year): leads, MQLs, pipeline, revenue, the allocation as spend, and the unit costs and conversions they give
 *
 * @param {string} measure leads, mqls, sals, opportunities, won, pipeline, revenue, crm_cost, spend, cost_difference, cost_per_lead, cost_per_mql, pipeline_roi, revenue_roi, roi, lead_to_mql, mql_to_opportunity or opportunity_to_won
 * @param {string} scope a region (EMEA) or a team (EMEA-ENTERPRISE)
 * @param {string} period (optional) FY (default) or Q1..Q4: allocations are by quarter
 * @param {number|string} year (optional) the fiscal year, 2028 or FY2028 (default: the workbook's template year, else the year the service runs)
 * @return {number} the figure, from the service
 * @customfunction
 */
function PS_TARGET(measure, scope, period, year) {
  return plansheet_("PS_TARGET", arguments);
}

// ----------------------------------------------------------------------------------------------
// The menu
// ----------------------------------------------------------------------------------------------

/** Adds the Plansheet menu when the spreadsheet opens (a simple trigger). */
function onOpen(e) {
  SpreadsheetApp.getUi()
    .createMenu("Plansheet")
    .addItem("Submit plan", "submitPlan")
    .addItem("Refresh master", "refreshMaster")
    .addItem("Turn on automatic refresh", "turnOnAutoRefresh")
    .addItem("Turn off automatic refresh", "turnOffAutoRefresh")
    .addSeparator()
    .addItem("Settings", "showSettings")
    .addToUi();
}

/** The same menu when the script is installed as an add-on. */
function onInstall(e) {
  onOpen(e);
}

/**
 * Plansheet → Submit plan: asks the service to read this team plan sheet and submit it, as
 * `plansheet gsheets pull` does, and shows what happened (the cells to fix when it is refused).
 */
function submitPlan() {
  var ui = SpreadsheetApp.getUi();
  var title = "Plansheet: submit plan";
  var config = config_();
  if (!config.url || !config.token) {
    ui.alert(title, "Sign in first: Plansheet → Settings.", ui.ButtonSet.OK);
    return;
  }
  var team = planMeta_().team;
  if (!team) {
    ui.alert(
      title,
      "This spreadsheet is not a Plansheet team plan: it has no " + META_SHEET_ + " sheet naming its team. " +
        "Open the plan sheet Plansheet created for your team (finance creates one per team).",
      ui.ButtonSet.OK
    );
    return;
  }
  var answer;
  try {
    answer = fetchJson_(config, "post", "/api/v1/gsheets/teams/" + encodeURIComponent(team) + "/pull", {});
  } catch (e) {
    ui.alert(title, messageOf_(e), ui.ButtonSet.OK);
    return;
  }
  ui.alert(title, describePull_(team, answer), ui.ButtonSet.OK);
}

/**
 * Plansheet → Refresh master: as finance, writes the current master budget to the finance master
 * spreadsheet; for everyone, recalculates this spreadsheet's Plansheet formulas with fresh answers.
 */
function refreshMaster() {
  var ui = SpreadsheetApp.getUi();
  var lines = [];
  var config = config_();
  if (config.url && config.token) {
    try {
      // The push is a background job: wait up to 25 s for it (RFC 7240 Prefer: wait), else say it is on its way.
      var answer = fetchJson_(config, "post", "/api/v1/gsheets/master/push", {}, { Prefer: "wait=25" });
      var body = answer.body || {};
      if (answer.status === 200 && body.status === "succeeded") {
        var result = body.result || {};
        var master = result.sheets && result.sheets.Master;
        lines.push(
          "The finance master spreadsheet now shows master version " + result.master_version +
            (master === undefined ? "" : " (" + master + " lines)") + "."
        );
      } else if (answer.status === 200 && body.status === "failed") {
        lines.push("The finance master spreadsheet was not updated: " + body.error);
      } else if (answer.status === 202) {
        lines.push("The push to the finance master spreadsheet is queued; it will show the new master shortly.");
      } else if (answer.status === 401) {
        lines.push(signInMessage_(answer));
      } else if (answer.status !== 403) {
        // 403: not finance. Only finance writes the master spreadsheet; the refresh below is for all.
        lines.push("The finance master spreadsheet was not updated: " + detailOf_(answer));
      }
    } catch (e) {
      lines.push(messageOf_(e));
    }
  } else {
    lines.push("Sign in to update the figures: Plansheet → Settings.");
  }
  var count = refreshLiveCells_();
  lines.push(
    count
      ? "Recalculated " + count + " Plansheet cell" + (count === 1 ? "" : "s") + " with the newest figures."
      : "This spreadsheet has no live Plansheet cells to recalculate."
  );
  ui.alert("Plansheet: refresh master", lines.join("\n\n"), ui.ButtonSet.OK);
}

/**
 * Plansheet → Turn on automatic refresh: a time-driven trigger (yours, for this spreadsheet) that
 * runs autoRefresh every AUTO_REFRESH_MINUTES_ minutes. Turning it on twice keeps one trigger.
 */
function turnOnAutoRefresh() {
  var ui = SpreadsheetApp.getUi();
  var title = "Plansheet: automatic refresh";
  var config = config_();
  if (!config.url || !config.token) {
    ui.alert(title, "Sign in first: Plansheet → Settings.", ui.ButtonSet.OK);
    return;
  }
  if (!autoRefreshTriggers_().length) {
    ScriptApp.newTrigger(AUTO_REFRESH_HANDLER_).timeBased().everyMinutes(AUTO_REFRESH_MINUTES_).create();
  }
  PropertiesService.getDocumentProperties().deleteProperty(SEEN_VERSION_PROPERTY_);
  ui.alert(
    title,
    "Automatic refresh is on: every " + AUTO_REFRESH_MINUTES_ + " minutes Plansheet checks the master version " +
      "and, when finance has approved a plan, changed an allocation or imported actuals, recalculates this " +
      "spreadsheet's live Plansheet cells. Turn it off from the Plansheet menu.",
    ui.ButtonSet.OK
  );
}

/** Plansheet → Turn off automatic refresh: deletes your automatic-refresh trigger(s). */
function turnOffAutoRefresh() {
  var triggers = autoRefreshTriggers_();
  triggers.forEach(function (trigger) {
    ScriptApp.deleteTrigger(trigger);
  });
  SpreadsheetApp.getUi().alert(
    "Plansheet: automatic refresh",
    triggers.length
      ? "Automatic refresh is off. Plansheet → Refresh master still recalculates the live cells."
      : "Automatic refresh was not on.",
    SpreadsheetApp.getUi().ButtonSet.OK
  );
}

/**
 * The time-driven trigger's function: one GET /api/v1/master/version; when the master version,
 * the allocations or the actuals changed since the last run, the live cells are recalculated.
 * Returns the number of cells recalculated (0 when nothing changed or the service did not answer).
 *
 * @param {GoogleAppsScript.Events.TimeDriven} [e] the trigger's event
 * @return {number}
 */
function autoRefresh(e) {
  var config = config_();
  if (!config.url || !config.token) return 0;
  var answer;
  try {
    answer = fetchJson_(config, "get", "/api/v1/master/version");
  } catch (err) {
    console.warn("Plansheet automatic refresh: " + messageOf_(err));
    return 0; // unreachable now: the next run asks again
  }
  if (answer.status !== 200 || !answer.body) {
    console.warn("Plansheet automatic refresh: the service answered " + answer.status + ": " + detailOf_(answer));
    return 0;
  }
  var body = answer.body;
  // Every id the service answers (master, allocations, actuals, results...): any change refreshes.
  var seen = [config.url].concat(
    Object.keys(body).sort().map(function (k) {
      return k + "=" + body[k];
    })
  ).join(" ");
  var properties = PropertiesService.getDocumentProperties();
  var before = properties.getProperty(SEEN_VERSION_PROPERTY_);
  properties.setProperty(SEEN_VERSION_PROPERTY_, seen);
  if (before === seen) return 0; // nothing changed: the cells stay as they are (the first run refreshes)
  return refreshLiveCells_();
}

/** @return {GoogleAppsScript.Script.Trigger[]} this project's automatic-refresh triggers (the user's own) */
function autoRefreshTriggers_() {
  return ScriptApp.getProjectTriggers().filter(function (trigger) {
    return trigger.getHandlerFunction() === AUTO_REFRESH_HANDLER_;
  });
}

/**
 * Plansheet → Settings: the service's address and your API token, kept in your user properties;
 * optionally also in the script properties, for the formulas of a spreadsheet you do not own.
 */
function showSettings() {
  var ui = SpreadsheetApp.getUi();
  var title = "Plansheet settings";
  var user = PropertiesService.getUserProperties();
  var currentUrl = user.getProperty(URL_PROPERTY_) || "";
  var currentToken = user.getProperty(TOKEN_PROPERTY_) || "";

  var asked = ui.prompt(
    title,
    "Address of the Plansheet service, e.g. https://plansheet.example.com" +
      (currentUrl ? "\n(now " + currentUrl + "; leave empty to keep it)" : ""),
    ui.ButtonSet.OK_CANCEL
  );
  if (asked.getSelectedButton() !== ui.Button.OK) return;
  var url = normalUrl_(asked.getResponseText() || currentUrl);
  if (!/^https?:\/\/[^\s\/?#]+/i.test(url)) {
    ui.alert(title, '"' + url + '" is not an address: use https://... as your admin gave it to you.', ui.ButtonSet.OK);
    return;
  }

  asked = ui.prompt(
    title,
    "Your Plansheet API token (ps_...), from your admin or `plansheet token create`." +
      (currentToken ? "\n(leave empty to keep the current one)" : ""),
    ui.ButtonSet.OK_CANCEL
  );
  if (asked.getSelectedButton() !== ui.Button.OK) return;
  var token = (asked.getResponseText() || "").trim() || currentToken;
  if (!token) {
    ui.alert(title, "No token given: nothing was changed.", ui.ButtonSet.OK);
    return;
  }

  user.setProperties(propertiesOf_(url, token));
  var check = checkSignIn_({ url: url, token: token });

  var share = ui.alert(
    title,
    "Also let this spreadsheet's formulas use this sign-in?\n\n" +
      "Google runs custom functions with the spreadsheet owner's settings, so on a spreadsheet you do " +
      "not own the PS_ formulas only work with a sign-in stored in the script's properties. Everyone who " +
      "can edit this spreadsheet can read those, and everyone who can open it sees what the formulas show.",
    ui.ButtonSet.YES_NO
  );
  if (share === ui.Button.YES) {
    PropertiesService.getScriptProperties().setProperties(propertiesOf_(url, token));
  }
  newGeneration_();
  ui.alert(title, check, ui.ButtonSet.OK);
}

// ----------------------------------------------------------------------------------------------
// Calling the service
// ----------------------------------------------------------------------------------------------

/** One custom function call: from the cache, else from the service; an error is thrown. */
function plansheet_(name, passed) {
  var spec = FUNCTIONS_[name];
  var args = sheetArgs_(passed);
  var config = config_();
  if (!config.url || !config.token) {
    throw new Error("#N/A: Plansheet is not set up: sign in: Plansheet → Settings");
  }
  // A live function about no named year reads the year of this spreadsheet's plan template, if it is one.
  var path = "/api/v1/functions/" + name + (spec.kind === "live" ? templateYearQuery_() : "");
  var cache = userCache_();
  var key = cacheKey_(config, name + path, args, spec);
  var hit = cacheGet_(cache, key);
  if (hit !== null) return shown_(hit, spec);

  var answer = fetchJson_(config, "post", path, { args: args });
  var body = answer.body;
  if (answer.status === 401) throw new Error("#N/A: " + signInMessage_(answer));
  if (answer.status !== 200 || !body || (!body.result && !body.error)) {
    throw new Error("#N/A: the Plansheet service answered " + answer.status + ": " + detailOf_(answer));
  }
  if (body.error) throw new Error((body.error.code || "#N/A") + ": " + body.error.message);
  cachePut_(cache, key, body.result, CACHE_SECONDS_[spec.kind]);
  return shown_(body.result, spec);
}

/**
 * A request to the service: {status, body (parsed JSON or null), text}. Throws (with a message for
 * a cell or an alert) only when the service cannot be reached.
 */
function fetchJson_(config, method, path, payload, extraHeaders) {
  var headers = { Authorization: "Bearer " + config.token, Accept: "application/json" };
  for (var name in extraHeaders || {}) headers[name] = extraHeaders[name];
  var options = {
    method: method,
    contentType: "application/json",
    headers: headers,
    muteHttpExceptions: true,
    followRedirects: false,
  };
  if (payload !== undefined) options.payload = JSON.stringify(payload);
  var response;
  try {
    response = UrlFetchApp.fetch(config.url + path, options);
  } catch (e) {
    // Google's message names the URL again ("Exception: Address unavailable: https://..."): keep the reason.
    var reason = messageOf_(e).replace(/^Exception: /, "").replace(/:\s*https?:\/\/\S*$/, "");
    throw new Error("#N/A: Plansheet service unreachable at " + config.url + ": " + reason);
  }
  var text = response.getContentText();
  var body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch (e) {
    body = null;
  }
  return { status: response.getResponseCode(), body: body, text: text, headers: response.getHeaders() || {} };
}

/** The address and token: the user properties, else the script properties (see the file's top). */
function config_() {
  var sources = [PropertiesService.getUserProperties(), PropertiesService.getScriptProperties()];
  for (var i = 0; i < sources.length; i++) {
    var url = sources[i].getProperty(URL_PROPERTY_);
    var token = sources[i].getProperty(TOKEN_PROPERTY_);
    if (url && token) return { url: normalUrl_(url), token: String(token).trim() };
  }
  return { url: null, token: null };
}

/**
 * @param {string} url the service's address
 * @param {string} token the API token
 * @return {Object<string, string>}
 */
function propertiesOf_(url, token) {
  /** @type {Object<string, string>} */
  var out = {};
  out[URL_PROPERTY_] = url;
  out[TOKEN_PROPERTY_] = token;
  return out;
}

function normalUrl_(url) {
  return String(url || "").trim().replace(/\/+$/, "");
}

/** Whether the service knows the token: a sentence for the Settings dialog. */
function checkSignIn_(config) {
  try {
    var answer = fetchJson_(config, "get", "/api/v1/functions");
    if (answer.status === 200) return "Signed in to " + config.url + ". The PS_ functions and the menu use it.";
    if (answer.status === 401) return "Saved, but " + signInMessage_(answer);
    return "Saved, but the service at " + config.url + " answered " + answer.status + ": " + detailOf_(answer);
  } catch (e) {
    return "Saved, but " + messageOf_(e).replace(/^#N\/A: /, "");
  }
}

function signInMessage_(answer) {
  var detail = answer.body && answer.body.detail;
  return "sign in: Plansheet → Settings (the service refused the token" + (detail ? ": " + detail : "") + ")";
}

function detailOf_(answer) {
  var body = answer.body;
  if (answer.status >= 300 && answer.status < 400) {
    var location = answer.headers && (answer.headers.Location || answer.headers.location);
    return "it redirects" + (location ? " to " + location : "") + ": use the service's https:// address in Plansheet → Settings";
  }
  if (body && (body.detail || body.title)) return String(body.detail || body.title);
  return answer.text ? String(answer.text).slice(0, 200) : "no answer";
}

function messageOf_(e) {
  return e && e.message ? String(e.message) : String(e);
}

// ----------------------------------------------------------------------------------------------
// Arguments and answers
// ----------------------------------------------------------------------------------------------

/** The arguments as the service takes them: each one a 2-D array; trailing omitted ones dropped. */
function sheetArgs_(passed) {
  var values = Array.prototype.slice.call(passed);
  while (values.length && values[values.length - 1] === undefined) values.pop();
  var zone = null;
  var timeZone = function () {
    if (zone === null) zone = spreadsheetTimeZone_();
    return zone;
  };
  return values.map(function (value) {
    var rows = Array.isArray(value) ? (Array.isArray(value[0]) ? value : [value]) : [[value]];
    return rows.map(function (row) {
      return row.map(function (cell) {
        return cellValue_(cell, timeZone);
      });
    });
  });
}

/** One cell: dates become serial numbers in the spreadsheet's time zone, as Sheets stores them. */
function cellValue_(cell, timeZone) {
  if (cell === undefined || cell === null) return "";
  if (Object.prototype.toString.call(cell) === "[object Date]") return dateSerial_(cell, timeZone());
  if (typeof cell === "number" && !isFinite(cell)) return "";
  return cell;
}

function dateSerial_(date, timeZone) {
  var text = Utilities.formatDate(date, timeZone, "yyyy-MM-dd'T'HH:mm:ss");
  var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})$/.exec(text);
  var utc = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  return (utc - Date.UTC(1899, 11, 30)) / 86400000;
}

function spreadsheetTimeZone_() {
  try {
    var spreadsheet = SpreadsheetApp.getActiveSpreadsheet();
    if (spreadsheet) return spreadsheet.getSpreadsheetTimeZone();
  } catch (e) {
    // no spreadsheet (e.g. run from the editor): the script's time zone
  }
  try {
    return Session.getScriptTimeZone();
  } catch (e) {
    return "Etc/UTC";
  }
}

/** The answer as a cell shows it: one value for a single-value function, else the rows. */
function shown_(rows, spec) {
  var out = rows.map(function (row) {
    return row.map(function (v) {
      return v === null || v === undefined ? "" : v;
    });
  });
  if (spec.result === "scalar" && out.length === 1 && out[0].length === 1) return out[0][0];
  return out;
}

// ----------------------------------------------------------------------------------------------
// The cache
// ----------------------------------------------------------------------------------------------

function userCache_() {
  try {
    return CacheService.getUserCache();
  } catch (e) {
    return null; // no cache: every call asks the service
  }
}

/**
 * SHA-256 of everything the answer depends on: the service, the token (whose data), the function,
 * its arguments, the cache generation and, for the volatile ones, the day. Never the token itself.
 */
function cacheKey_(config, name, args, spec) {
  var parts = [generation_(), config.url, config.token, name, args];
  if (spec.kind === "volatile") parts.push(new Date().toISOString().slice(0, 10));
  var digest = Utilities.computeDigest(
    Utilities.DigestAlgorithm.SHA_256,
    JSON.stringify(parts),
    Utilities.Charset.UTF_8
  );
  return "ps1:" + Utilities.base64EncodeWebSafe(digest);
}

function cacheGet_(cache, key) {
  if (!cache) return null;
  try {
    var text = cache.get(key);
    return text === null || text === undefined ? null : JSON.parse(text);
  } catch (e) {
    return null;
  }
}

function cachePut_(cache, key, rows, seconds) {
  if (!cache) return;
  var text = JSON.stringify(rows);
  if (utf8Bytes_(text) > CACHE_MAX_BYTES_) return; // over CacheService's limit per key
  try {
    cache.put(key, text, seconds);
  } catch (e) {
    // a full or unavailable cache only costs a request
  }
}

function utf8Bytes_(text) {
  var bytes = 0;
  for (var i = 0; i < text.length; i++) {
    var c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

function generation_() {
  try {
    return PropertiesService.getScriptProperties().getProperty(GENERATION_PROPERTY_) || "0";
  } catch (e) {
    return "0";
  }
}

/** A new cache generation: no answer cached before is used again (by anyone of this spreadsheet). */
function newGeneration_() {
  var value = String(new Date().getTime()) + "-" + Math.floor(Math.random() * 1e6);
  PropertiesService.getScriptProperties().setProperty(GENERATION_PROPERTY_, value);
  return value;
}

// ----------------------------------------------------------------------------------------------
// The spreadsheet
// ----------------------------------------------------------------------------------------------

/** The key/value rows of the hidden _plansheet sheet (template_id, region, team, ...), or {}. */
function planMeta_() {
  var sheet = SpreadsheetApp.getActiveSpreadsheet().getSheetByName(META_SHEET_);
  var meta = {};
  if (!sheet) return meta;
  sheet
    .getDataRange()
    .getValues()
    .forEach(function (row) {
      if (row.length >= 2 && row[0] !== "" && row[0] !== null) meta[String(row[0]).trim()] = String(row[1]).trim();
    });
  return meta;
}

/** "?year=2028" when this spreadsheet is a plan template of a fiscal year (its _plansheet fiscal_year), else "". */
function templateYearQuery_() {
  var year = planMeta_().fiscal_year;
  return year && /^\d{4}$/.test(year) ? "?year=" + year : "";
}

/** The alert after a pull: what was submitted, or why not and which cells to fix. */
function describePull_(team, answer) {
  var body = answer.body || {};
  if (answer.status === 200 && body.unchanged) {
    return "Unchanged: this sheet is " + team + "'s approved plan #" + body.id + "; nothing was sent for approval.";
  }
  if (answer.status === 201) {
    var report = body.report || {};
    var text =
      "Submitted the plan of " + team + ": " + body.lines + " lines, submission #" + body.id + " (" + body.status + "). " +
      "Finance reviews it next.";
    var warnings = (report.issues || []).filter(function (i) {
      return i.severity !== "error";
    });
    if (warnings.length) text += "\n\nWarnings:\n" + issueLines_(warnings);
    return text;
  }
  if (answer.status === 401) return "The plan was not submitted: " + signInMessage_(answer) + ".";
  var text2 = "The plan of " + team + " was not submitted: " + detailOf_(answer);
  if (answer.status === 422 && body.issues && body.issues.length) {
    var errors = body.issues.filter(function (i) {
      return i.severity === undefined || i.severity === "error";
    });
    text2 += "\n\nFix these cells and submit again:\n" + issueLines_(errors.length ? errors : body.issues);
  }
  return text2;
}

function issueLines_(issues) {
  var shown = issues.slice(0, 25).map(function (i) {
    var where = i.cell ? (i.sheet ? i.sheet + "!" : "") + i.cell + ": " : "";
    return where + i.message;
  });
  if (issues.length > shown.length) shown.push("... and " + (issues.length - shown.length) + " more");
  return shown.join("\n");
}

/**
 * Recalculates this spreadsheet's live Plansheet cells: a new cache generation (no cached answer
 * is reused), then each formula calling a live or date-dependent function is cleared and written
 * back, which makes Sheets evaluate it again. Returns the number of cells.
 */
function refreshLiveCells_() {
  newGeneration_();
  var names = Object.keys(FUNCTIONS_).filter(function (n) {
    return FUNCTIONS_[n].kind !== "pure";
  });
  var pattern = new RegExp("\\b(" + names.join("|") + ")\\s*\\(", "i");
  var cells = [];
  SpreadsheetApp.getActiveSpreadsheet()
    .getSheets()
    .forEach(function (sheet) {
      var formulas = sheet.getDataRange().getFormulas();
      for (var r = 0; r < formulas.length; r++) {
        for (var c = 0; c < formulas[r].length; c++) {
          if (formulas[r][c] && pattern.test(formulas[r][c])) {
            cells.push({ range: sheet.getRange(r + 1, c + 1), formula: formulas[r][c] });
          }
        }
      }
    });
  // A cell that cannot be cleared (a protected range) keeps its formula and is left out.
  var cleared = cells.filter(function (cell) {
    try {
      cell.range.setValue("");
      return true;
    } catch (e) {
      return false;
    }
  });
  if (!cleared.length) return 0;
  SpreadsheetApp.flush();
  cleared.forEach(function (cell) {
    cell.range.setFormula(cell.formula);
  });
  return cleared.length;
}
