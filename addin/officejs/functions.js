// @ts-check
/*
 * Plansheet custom functions for Excel (Office.js): =PLANSHEET.PS_PLANNED("EMEA","Q1") and the rest.
 *
 * Every function of the served metadata (/addin/functions.json, generated from the service's
 * function registry) is associated with one generic implementation: it queues the call, and all
 * calls queued within a few milliseconds go to the service in ONE request,
 * POST /api/v1/functions:batch (Excel calls a custom function once per cell, so a sheet
 * recalculating 1,000 cells sends one or two requests, not 1,000). Identical calls in a batch
 * are sent once. Each cell gets its own answer, or an Excel error with the service's message:
 * #N/A and #VALUE! as CustomFunctions.Error with the message; an unreachable service, a refused
 * token or no token at all as #N/A saying what to do.
 *
 * The live functions (PS_PLANNED, PS_BUDGET, ...) are streaming functions ("stream": true in the
 * metadata): a cell keeps its call open and updates by itself. ONE version check serves every
 * open live cell: GET /api/v1/master/version every `versionPollMs` (30 s), one request however
 * many cells are open, none while no live cell is. When the master version, the allocations or
 * the actuals change, every open live cell is evaluated again in one functions:batch request.
 * A cell Excel cancels (deleted, or its formula changed) leaves the set and is not asked again.
 *
 * Loaded by taskpane.html (the shared runtime: the task pane and the functions share this
 * page, its localStorage and the settings below) and by functions.html. A plain script, no
 * build step; it exposes `PlansheetFunctions` for the task pane and the tests.
 */
(function (root) {
  "use strict";

  const KEYS = { url: "plansheet.serviceUrl", token: "plansheet.token" };
  const options = {
    batchDelayMs: 15, // how long calls gather before the request goes (Excel hands over cells in bursts)
    maxCallsPerRequest: 2000, // the service takes up to 5,000 calls per request
    metadataRetries: 3,
    versionPollMs: 30000, // one version check per interval for all live cells, whatever their number
  };
  // The service's Excel error codes -> CustomFunctions.ErrorCode members. Excel shows a custom
  // message only with #VALUE! and #N/A, and does not take #NAME? or #REF! as a function's result
  // (only as an input error): a #NAME? from the service means the add-in and the service
  // disagree about the functions, which is "not available", so it becomes #N/A with the message.
  const ERROR_CODES = {
    "#N/A": "notAvailable",
    "#VALUE!": "invalidValue",
    "#NUM!": "invalidNumber",
    "#DIV/0!": "divisionByZero",
    "#NULL!": "nullReference",
    "#NAME?": "notAvailable",
    "#REF!": "notAvailable",
  };
  const WITH_MESSAGE = new Set(["notAvailable", "invalidValue"]);
  const SIGN_IN = "sign in in the Plansheet task pane (Home > Plansheet)";

  const script = root.document ? /** @type {HTMLScriptElement | null} */ (root.document.currentScript) : null;
  const scriptUrl = script ? script.src : "";

  // --- settings: shared with the task pane ---------------------------------------------------

  /** The service the add-in was loaded from: the address before /addin/officejs/ in this script's URL. */
  function defaultServiceUrl() {
    const from = (scriptUrl || (root.location && root.location.href) || "").split(/[?#]/)[0];
    const match = /^(https?:\/\/.+?)\/addin\/officejs\/[^/]*$/.exec(from);
    if (match) return match[1];
    try {
      return new URL(from).origin;
    } catch (_) {
      return "";
    }
  }

  function readLocal(key) {
    try {
      return root.localStorage ? root.localStorage.getItem(key) : null;
    } catch (_) {
      return null; // storage blocked (private mode, policies)
    }
  }

  function writeLocal(key, value) {
    try {
      if (!root.localStorage) return;
      if (value) root.localStorage.setItem(key, value);
      else root.localStorage.removeItem(key);
    } catch (_) {
      /* storage blocked: OfficeRuntime.storage below still holds it */
    }
  }

  function officeStorage() {
    return root.OfficeRuntime && root.OfficeRuntime.storage ? root.OfficeRuntime.storage : null;
  }

  /** A setting from localStorage (shared runtime) or OfficeRuntime.storage (either runtime). */
  async function readSetting(key) {
    const local = readLocal(key);
    if (local) return local;
    const storage = officeStorage();
    if (storage) {
      try {
        return (await storage.getItem(key)) || null;
      } catch (_) {
        return null;
      }
    }
    return null;
  }

  async function writeSetting(key, value) {
    const text = value ? String(value).trim() : "";
    writeLocal(key, text);
    const storage = officeStorage();
    if (storage) {
      try {
        if (text) await storage.setItem(key, text);
        else await storage.removeItem(key);
      } catch (_) {
        /* localStorage above still holds it */
      }
    }
  }

  function cleanUrl(url) {
    return String(url || "").trim().replace(/\/+$/, "");
  }

  async function serviceUrl() {
    return cleanUrl((await readSetting(KEYS.url)) || defaultServiceUrl());
  }

  async function token() {
    return (await readSetting(KEYS.token)) || "";
  }

  /**
   * Save the service URL and token (the task pane's Save); empty values clear them.
   * @param {{url?: string, token?: string}} [settings]
   */
  async function saveSettings({ url, token: newToken } = {}) {
    if (url !== undefined) await writeSetting(KEYS.url, cleanUrl(url) === cleanUrl(defaultServiceUrl()) ? "" : cleanUrl(url));
    if (newToken !== undefined) await writeSetting(KEYS.token, newToken);
  }

  // --- errors -------------------------------------------------------------------------------------

  /**
   * An Excel error for a cell: CustomFunctions.Error with the message where Excel shows one.
   * @param {string} code the service's Excel error code ("#N/A", "#VALUE!", ...)
   * @param {string} [message]
   * @returns {CustomFunctions.Error | Error}
   */
  function excelError(code, message) {
    const CF = root.CustomFunctions;
    const member = ERROR_CODES[code] || "notAvailable";
    let text = message || "";
    if (code === "#NAME?" || code === "#REF!") text = `${text} (${code} from the Plansheet service)`.trim();
    if (CF && typeof CF.Error === "function" && CF.ErrorCode && CF.ErrorCode[member]) {
      return WITH_MESSAGE.has(member) ? new CF.Error(CF.ErrorCode[member], text) : new CF.Error(CF.ErrorCode[member]);
    }
    return new Error(text || code); // CustomFunctionsRuntime 1.1: Excel shows #VALUE!
  }

  async function problemDetail(response) {
    try {
      const body = await response.json();
      return (body && (body.detail || body.title)) || `HTTP ${response.status}`;
    } catch (_) {
      return `HTTP ${response.status}`;
    }
  }

  // --- batching -----------------------------------------------------------------------------------

  let queue = [];
  let timer = null;

  /** A call's arguments as the service takes them: 2-D arrays; trailing omitted (null) ones dropped. */
  function encodeArgs(values) {
    const args = values.map((value) => {
      if (value === undefined) value = null;
      if (Array.isArray(value)) return value.map((row) => (Array.isArray(row) ? row : [row]));
      return [[value]];
    });
    while (args.length && args[args.length - 1].length === 1 && args[args.length - 1][0].length === 1 && args[args.length - 1][0][0] === null) {
      args.pop();
    }
    return args;
  }

  /** Queue one call; the promise settles with the cell's value or rejects with its Excel error. */
  function call(name, values, scalarResult) {
    return new Promise((resolve, reject) => {
      queue.push({ name, args: encodeArgs(values), scalarResult: !!scalarResult, resolve, reject });
      if (timer === null) timer = setTimeout(flush, options.batchDelayMs);
    });
  }

  /** Send everything queued now (normally run by the timer). */
  function flush() {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    const batch = queue;
    queue = [];
    const byKey = new Map();
    const unique = [];
    for (const item of batch) {
      const key = JSON.stringify([item.name, item.args]);
      let entry = byKey.get(key);
      if (!entry) {
        entry = { name: item.name, args: item.args, waiting: [] };
        byKey.set(key, entry);
        unique.push(entry);
      }
      entry.waiting.push(item);
    }
    const sends = [];
    for (let i = 0; i < unique.length; i += options.maxCallsPerRequest) {
      sends.push(send(unique.slice(i, i + options.maxCallsPerRequest)));
    }
    return Promise.all(sends);
  }

  const YEAR_NAME = "PS_FISCAL_YEAR"; // the defined name a plan template carries its fiscal year in

  /**
   * The fiscal year of the plan template this workbook is ("2028"), or "" (not a template, or no Excel.run):
   * a live function naming no year reads this one. One read per batch, beside the batch's own request.
   * @returns {Promise<string>}
   */
  async function workbookYear() {
    if (!root.Excel || typeof root.Excel.run !== "function") return "";
    try {
      return await root.Excel.run(async (context) => {
        const name = context.workbook.names.getItemOrNullObject(YEAR_NAME);
        name.load("value");
        await context.sync();
        if (name.isNullObject) return "";
        const text = String(name.value).trim().replace(/^=/, "").replace(/^"(.*)"$/, "$1").trim();
        return /^\d{4}$/.test(text) ? text : "";
      });
    } catch (_) {
      return "";
    }
  }

  async function send(entries) {
    const base = await serviceUrl();
    const year = await workbookYear();
    const key = await token();
    let failure = null;
    let results = null;
    if (!base) {
      failure = `Plansheet: no service address; enter it in the Plansheet task pane`;
    } else if (!key) {
      failure = `Plansheet: ${SIGN_IN} (no API token yet)`;
    } else {
      try {
        const response = await root.fetch(`${base}/api/v1/functions:batch${year ? `?year=${year}` : ""}`, {
          method: "POST",
          headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ calls: entries.map((e) => ({ name: e.name, args: e.args })) }),
        });
        if (response.status === 401) {
          failure = `Plansheet: ${SIGN_IN}; the service refused the API token (${await problemDetail(response)})`;
        } else if (response.status === 403) {
          failure = `Plansheet: not allowed with this API token (${await problemDetail(response)}); ${SIGN_IN} with another`;
        } else if (!response.ok) {
          failure = `Plansheet: the service answered ${response.status} (${await problemDetail(response)})`;
        } else {
          const body = await response.json();
          results = body && Array.isArray(body.results) ? body.results : null;
          if (!results || results.length !== entries.length) {
            failure = "Plansheet: the service's answer did not match the calls sent; reload the add-in";
            results = null;
          }
        }
      } catch (_) {
        failure = `Plansheet: service unreachable at ${base}; check your connection, or the service address in the Plansheet task pane`;
      }
    }
    entries.forEach((entry, i) => {
      for (const item of entry.waiting) {
        if (failure) item.reject(excelError("#N/A", failure));
        else settle(item, results[i]);
      }
    });
  }

  function settle(item, answer) {
    if (!answer || typeof answer !== "object") {
      item.reject(excelError("#N/A", "Plansheet: the service sent no answer for this call"));
    } else if (answer.error) {
      item.reject(excelError(answer.error.code, answer.error.message));
    } else {
      const grid = (Array.isArray(answer.result) ? answer.result : [[answer.result]]).map((row) =>
        (Array.isArray(row) ? row : [row]).map((v) => (v === null || v === undefined ? "" : v)),
      );
      const single = grid.length === 1 && grid[0].length === 1;
      item.resolve(item.scalarResult && single ? grid[0][0] : grid);
    }
  }

  // --- registration from the served metadata -----------------------------------------------------

  const registered = new Map(); // id -> { meta, implementation }

  /**
   * The implementation Excel calls for one function: its declared arguments, then the invocation
   * object Excel appends (a StreamingInvocation for a streaming function).
   */
  function implementationOf(meta) {
    const count = (meta.parameters || []).length;
    const scalarResult = !meta.result || meta.result.dimensionality !== "matrix";
    const streaming = !!(meta.options && meta.options.stream);
    const implementation = (...values) => {
      const args = values.slice(0, count);
      const invocation = values[count];
      if (streaming && invocation && typeof invocation.setResult === "function") {
        openStream(meta.id, args, scalarResult, invocation);
        return undefined; // a streaming function answers through invocation.setResult
      }
      return call(meta.id, args, scalarResult);
    };
    Object.defineProperty(implementation, "name", { value: meta.id });
    return implementation;
  }

  // --- live cells: streaming, one version check for all of them ------------------------------------

  /**
   * @typedef {object} LiveCell
   * @property {string} name
   * @property {unknown[]} args
   * @property {boolean} scalarResult
   * @property {CustomFunctions.StreamingInvocation<any>} invocation
   * @property {boolean} open false once Excel cancels the cell
   */

  /** @type {Set<LiveCell>} */
  const liveCells = new Set();
  const poll = {
    /** @type {ReturnType<typeof setTimeout> | null} */
    timer: null,
    /** @type {string | null} what the open cells were computed from (versions, service, token) */
    seen: null,
    stale: false, // the last check got no answer
    running: false,
    checks: 0,
    refreshes: 0,
  };

  /**
   * Start a live cell: evaluate it now (batched with the other cells Excel hands over), then keep
   * it in the set the version check re-evaluates, until Excel cancels it.
   * @param {string} name
   * @param {unknown[]} args
   * @param {boolean} scalarResult
   * @param {CustomFunctions.StreamingInvocation<any>} invocation
   */
  function openStream(name, args, scalarResult, invocation) {
    /** @type {LiveCell} */
    const cell = { name, args, scalarResult, invocation, open: true };
    liveCells.add(cell);
    invocation.onCanceled = () => {
      cell.open = false;
      liveCells.delete(cell);
      if (liveCells.size === 0) stopPolling();
    };
    evaluateCells([cell]);
    if (poll.timer === null && !poll.running) {
      poll.seen = null;
      poll.stale = false;
      schedulePoll(0); // learn the current version now; later checks compare with it
    }
  }

  /**
   * Evaluate cells and hand each its answer (value or Excel error); the calls go in one batch.
   * @param {LiveCell[]} cells
   */
  function evaluateCells(cells) {
    const answers = cells.map((cell) =>
      call(cell.name, cell.args, cell.scalarResult).then(
        (value) => cell.open && cell.invocation.setResult(value),
        (error) => cell.open && cell.invocation.setResult(error),
      ),
    );
    return Promise.all(answers);
  }

  /** @param {number} delay */
  function schedulePoll(delay) {
    if (poll.timer !== null) clearTimeout(poll.timer);
    poll.timer = setTimeout(checkVersion, delay);
  }

  function stopPolling() {
    if (poll.timer !== null) clearTimeout(poll.timer);
    poll.timer = null;
  }

  /**
   * The version check: one GET for all live cells. When what the cells were computed from has
   * changed (an approval, an allocation revision, an actuals import; or another service or token),
   * every open cell is evaluated again, in one functions:batch request. The next check is
   * scheduled only after this one ends, so checks never overlap and never run faster than the interval.
   */
  async function checkVersion() {
    poll.timer = null;
    if (liveCells.size === 0 || poll.running) return;
    poll.running = true;
    poll.checks++;
    try {
      await compareVersion();
    } finally {
      poll.running = false;
      if (liveCells.size > 0) schedulePoll(Math.max(options.versionPollMs, 0));
    }
  }

  async function compareVersion() {
    const base = await serviceUrl();
    const key = await token();
    let seen = null;
    if (base && key) {
      try {
        const year = await workbookYear();
        const response = await root.fetch(`${base}/api/v1/master/version${year ? `?year=${year}` : ""}`, {
          headers: { Authorization: `Bearer ${key}`, Accept: "application/json" },
        });
        if (response.ok) {
          const body = await response.json();
          // Every id the service answers (master, allocations, actuals, results...): any change re-evaluates.
          seen = JSON.stringify([base, key, Object.keys(body).sort().map((k) => [k, body[k]])]);
        }
      } catch (_) {
        seen = null; // unreachable: the cells say so already; ask again when it answers
      }
    }
    if (seen === null) {
      poll.stale = true; // no answer: once the service answers again, every cell asks again
    } else {
      const changed = (poll.seen !== null && seen !== poll.seen) || poll.stale;
      poll.seen = seen;
      poll.stale = false;
      if (changed) {
        poll.refreshes++;
        const done = evaluateCells([...liveCells]);
        flush(); // now, not after batchDelayMs: every cell is queued already
        await done;
      }
    }
  }

  /** Associate every function of a functions.json document; returns the ids. */
  function register(metadata) {
    const functions = metadata && Array.isArray(metadata.functions) ? metadata.functions : [];
    for (const meta of functions) {
      const implementation = implementationOf(meta);
      registered.set(meta.id, { meta, implementation });
      root.CustomFunctions.associate(meta.id, implementation);
    }
    return functions.map((meta) => meta.id);
  }

  function metadataUrl() {
    return `${cleanUrl(defaultServiceUrl() || readLocal(KEYS.url) || "")}/addin/functions.json`;
  }

  /** In a page, read the metadata synchronously so that every function is associated before Excel calls one. */
  function metadataNow() {
    if (typeof root.XMLHttpRequest !== "function" || !defaultServiceUrl()) return null;
    try {
      const request = new root.XMLHttpRequest();
      request.open("GET", metadataUrl(), false);
      request.send(null);
      return request.status === 200 ? JSON.parse(request.responseText) : null;
    } catch (_) {
      return null;
    }
  }

  async function metadataLater() {
    let lastError = null;
    for (let attempt = 0; attempt < options.metadataRetries; attempt++) {
      let url = metadataUrl();
      if (url.startsWith("/")) url = `${await serviceUrl()}/addin/functions.json`;
      try {
        const response = await root.fetch(url, { headers: { Accept: "application/json" } });
        if (response.ok) return await response.json();
        lastError = new Error(`${url} answered ${response.status}`);
      } catch (error) {
        lastError = error;
      }
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
    }
    throw lastError;
  }

  function start() {
    if (!root.CustomFunctions || typeof root.CustomFunctions.associate !== "function") {
      return Promise.resolve([]); // a page without the custom functions runtime (an old Excel): task pane only
    }
    const now = metadataNow();
    if (now) return Promise.resolve(register(now));
    return metadataLater().then(register, (error) => {
      if (root.console) root.console.error("Plansheet: could not load the functions' metadata", error);
      throw error;
    });
  }

  const ready = start();
  ready.catch(() => {}); // reported above; callers that await `ready` see the error

  root.PlansheetFunctions = {
    ready,
    registered,
    options,
    liveCells,
    poll,
    checkVersion,
    keys: KEYS,
    call,
    flush,
    encodeArgs,
    excelError,
    defaultServiceUrl,
    serviceUrl,
    token,
    readSetting,
    writeSetting,
    workbookYear,
    saveSettings,
    signInHint: SIGN_IN,
  };
})(typeof globalThis !== "undefined" ? globalThis : this);
