"use strict";
/**
 * A small Apps Script runtime for Node: loads Code.gs into a `vm` context with the services it
 * uses stubbed, close enough to Google's that the tests exercise the real code paths.
 *
 * - UrlFetchApp.fetch is synchronous like Google's, and does REAL HTTP: each call runs a child
 *   Node process (execFileSync) that performs the request and prints status, headers and body.
 *   Every request is logged in `runtime.fetchLog`, so a test can count them.
 * - CacheService: in memory, with expiry on an injectable clock and Google's limits (keys up to
 *   250 characters, values up to 100 KB, at most 6 hours); over a limit it throws, as Google does.
 * - PropertiesService: user, script and document properties, values kept as strings.
 * - SpreadsheetApp: an active spreadsheet built from plain data (sheets of values and formulas,
 *   protected cells),
 *   and a Ui recording menus, alerts and prompts (answers come from `runtime.answers`).
 * - Utilities: computeDigest (signed bytes, as Java gives them), base64Encode(WebSafe), formatDate
 *   (yyyy MM dd HH mm ss and 'quoted' text, in a time zone), getUuid; Session.getScriptTimeZone.
 *
 * Used by the tests in this folder and by tests/hosts/apps_script_harness.js. Not a test file.
 */

const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const { execFileSync } = require("node:child_process");

const CODE_PATH = path.resolve(__dirname, "..", "Code.gs");
const CACHE_MAX_VALUE_BYTES = 100 * 1024;
const CACHE_MAX_KEY_LENGTH = 250;
const CACHE_MAX_SECONDS = 21600;
const FETCH_TIMEOUT_MS = 60000;

// Run in a child process: read the request as JSON on stdin, print the answer as JSON. Plain
// node:http(s) rather than fetch(): a child starts for every request, and this starts faster.
const FETCH_HELPER = `
const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  const req = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const done = (answer) => process.stdout.write(JSON.stringify(answer));
  const send = (url, method, body, hops) => {
    const target = new URL(url);
    const lib = require(target.protocol === "https:" ? "node:https" : "node:http");
    const headers = { ...req.headers };
    if (body !== null) headers["Content-Length"] = Buffer.byteLength(body);
    const request = lib.request(target, { method, headers, timeout: req.timeoutMs }, (res) => {
      const parts = [];
      res.on("data", (c) => parts.push(c));
      res.on("end", () => {
        const location = res.headers.location;
        if (req.redirect === "follow" && location && [301, 302, 303, 307, 308].includes(res.statusCode) && hops < 5) {
          const keep = res.statusCode === 307 || res.statusCode === 308;
          return send(new URL(location, target).href, keep ? method : "GET", keep ? body : null, hops + 1);
        }
        done({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts).toString("utf8") });
      });
    });
    request.on("timeout", () => request.destroy(Object.assign(new Error("timed out"), { code: "TimeoutError" })));
    request.on("error", (e) => done({ error: e.code || e.name, message: String(e.message) }));
    if (body !== null) request.write(body);
    request.end();
  };
  send(req.url, req.method, req.body, 0);
});
`;

function httpInChild(request) {
  const out = execFileSync(process.execPath, ["-e", FETCH_HELPER], {
    input: JSON.stringify(request),
    encoding: "utf8",
    timeout: request.timeoutMs + 5000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(out);
}

// What Google's UrlFetchApp says when a host cannot be reached ("Exception: Address unavailable: URL").
const NETWORK_ERRORS = {
  ECONNREFUSED: "Address unavailable",
  ECONNRESET: "Address unavailable",
  EHOSTUNREACH: "Address unavailable",
  ENOTFOUND: "DNS error",
  EAI_AGAIN: "DNS error",
  TimeoutError: "Timeout",
  UND_ERR_CONNECT_TIMEOUT: "Timeout",
};

function titleCase(name) {
  return name.replace(/(^|-)([a-z])/g, (_, dash, c) => dash + c.toUpperCase());
}

class HTTPResponse {
  constructor(status, headers, body) {
    this._status = status;
    this._headers = headers;
    this._body = body;
  }
  getResponseCode() {
    return this._status;
  }
  getContentText() {
    return this._body;
  }
  getHeaders() {
    const out = {};
    for (const [k, v] of Object.entries(this._headers)) out[titleCase(k)] = v;
    return out;
  }
  getAllHeaders() {
    return this.getHeaders();
  }
}

function makeUrlFetchApp(runtime) {
  const methods = new Set(["get", "delete", "patch", "post", "put"]);
  return {
    fetch(url, params) {
      params = params || {};
      const method = String(params.method || "get").toLowerCase();
      if (!methods.has(method)) throw new Error(`Exception: Invalid argument: method (${params.method})`);
      if (!/^https?:\/\//i.test(String(url))) throw new Error(`Exception: Invalid argument: ${url}`);
      const headers = { ...(params.headers || {}) };
      let body = null;
      if (params.payload !== undefined && params.payload !== null) {
        if (typeof params.payload !== "string") throw new Error("stub: only string payloads are supported");
        body = params.payload;
        headers["Content-Type"] = params.contentType || "application/x-www-form-urlencoded";
      }
      const request = {
        url: String(url),
        method: method.toUpperCase(),
        headers,
        body,
        redirect: params.followRedirects === false ? "manual" : "follow",
        timeoutMs: runtime.fetchTimeoutMs,
      };
      runtime.fetchLog.push({ url: request.url, method: request.method, headers, payload: body });
      const answer = httpInChild(request);
      if (answer.error) {
        const kind = NETWORK_ERRORS[answer.error] || `${answer.error} (${answer.message})`;
        throw new Error(`Exception: ${kind}: ${url}`);
      }
      if (answer.status >= 400 && !params.muteHttpExceptions) {
        throw new Error(
          `Exception: Request failed for ${url} returned code ${answer.status}. ` +
            `Truncated server response: ${answer.body.slice(0, 100)} (use muteHttpExceptions option to examine full response)`
        );
      }
      return new HTTPResponse(answer.status, answer.headers, answer.body);
    },
  };
}

class Clock {
  constructor() {
    this.offsetMs = 0;
  }
  now() {
    return Date.now() + this.offsetMs;
  }
  advance(seconds) {
    this.offsetMs += seconds * 1000;
  }
}

class Cache {
  constructor(clock) {
    this.clock = clock;
    this.items = new Map();
  }
  _key(key) {
    key = String(key);
    if (key.length > CACHE_MAX_KEY_LENGTH) throw new Error("Exception: Argument too large: key");
    return key;
  }
  get(key) {
    key = this._key(key);
    const item = this.items.get(key);
    if (!item) return null;
    if (item.expires <= this.clock.now()) {
      this.items.delete(key);
      return null;
    }
    return item.value;
  }
  getAll(keys) {
    const out = {};
    for (const k of keys) {
      const v = this.get(k);
      if (v !== null) out[k] = v;
    }
    return out;
  }
  put(key, value, seconds) {
    key = this._key(key);
    value = String(value);
    if (seconds === undefined) seconds = 600;
    if (!(seconds >= 1 && seconds <= CACHE_MAX_SECONDS)) {
      throw new Error(`Exception: Invalid argument: expirationInSeconds (${seconds})`);
    }
    if (Buffer.byteLength(value, "utf8") > CACHE_MAX_VALUE_BYTES) throw new Error("Exception: Argument too large: value");
    this.items.set(key, { value, expires: this.clock.now() + seconds * 1000 });
  }
  putAll(values, seconds) {
    for (const [k, v] of Object.entries(values)) this.put(k, v, seconds);
  }
  remove(key) {
    this.items.delete(this._key(key));
  }
  removeAll(keys) {
    for (const k of keys) this.remove(k);
  }
}

class Properties {
  constructor(initial) {
    this.map = new Map(Object.entries(initial || {}).map(([k, v]) => [k, String(v)]));
  }
  getProperty(key) {
    return this.map.has(key) ? this.map.get(key) : null;
  }
  getProperties() {
    return Object.fromEntries(this.map);
  }
  getKeys() {
    return [...this.map.keys()];
  }
  setProperty(key, value) {
    this.map.set(String(key), String(value));
    return this;
  }
  setProperties(values, deleteAllOthers) {
    if (deleteAllOthers) this.map.clear();
    for (const [k, v] of Object.entries(values)) this.map.set(k, String(v));
    return this;
  }
  deleteProperty(key) {
    this.map.delete(key);
    return this;
  }
  deleteAllProperties() {
    this.map.clear();
    return this;
  }
}

// --- Utilities --------------------------------------------------------------------------------

const DIGESTS = { MD2: null, MD5: "md5", SHA_1: "sha1", SHA_256: "sha256", SHA_384: "sha384", SHA_512: "sha512" };

function toBuffer(value, charset) {
  if (typeof value === "string") return Buffer.from(value, charset === "US_ASCII" ? "latin1" : "utf8");
  if (Array.isArray(value)) return Buffer.from(value.map((b) => b & 0xff));
  throw new Error("stub: expected a string or a byte array");
}

function signedBytes(buffer) {
  return Array.from(buffer, (b) => (b > 127 ? b - 256 : b));
}

function formatDate(date, timeZone, pattern) {
  const parts = {};
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
  for (const p of format.formatToParts(date)) parts[p.type] = p.value;
  const fields = { yyyy: parts.year, MM: parts.month, dd: parts.day, HH: parts.hour, mm: parts.minute, ss: parts.second };
  return pattern.replace(/'([^']*)'|yyyy|MM|dd|HH|mm|ss/g, (m, quoted) => (quoted !== undefined ? quoted : fields[m]));
}

function makeUtilities() {
  return {
    DigestAlgorithm: Object.fromEntries(Object.keys(DIGESTS).map((k) => [k, k])),
    Charset: { US_ASCII: "US_ASCII", UTF_8: "UTF_8" },
    computeDigest(algorithm, value, charset) {
      const name = DIGESTS[algorithm];
      if (!name) throw new Error(`Exception: Invalid argument: algorithm (${algorithm})`);
      return signedBytes(crypto.createHash(name).update(toBuffer(value, charset)).digest());
    },
    base64Encode(data, charset) {
      return toBuffer(data, charset).toString("base64");
    },
    base64EncodeWebSafe(data, charset) {
      return toBuffer(data, charset).toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
    },
    formatDate,
    getUuid() {
      return crypto.randomUUID();
    },
    sleep() {},
  };
}

// --- SpreadsheetApp ---------------------------------------------------------------------------

const BUTTON = { CLOSE: "CLOSE", OK: "OK", CANCEL: "CANCEL", YES: "YES", NO: "NO" };
const BUTTON_SET = { OK: "ButtonSet.OK", OK_CANCEL: "ButtonSet.OK_CANCEL", YES_NO: "ButtonSet.YES_NO", YES_NO_CANCEL: "ButtonSet.YES_NO_CANCEL" };
const IS_BUTTON_SET = new Set(Object.values(BUTTON_SET));

function columnLetters(n) {
  let s = "";
  while (n > 0) {
    const r = (n - 1) % 26;
    s = String.fromCharCode(65 + r) + s;
    n = Math.floor((n - 1) / 26);
  }
  return s;
}

class Sheet {
  constructor(runtime, name, spec) {
    this.runtime = runtime;
    this.name = name;
    const values = (spec && spec.values) || [];
    const formulas = (spec && spec.formulas) || [];
    const rows = Math.max(values.length, formulas.length, 1);
    const cols = Math.max(1, ...values.map((r) => r.length), ...formulas.map((r) => r.length));
    this.values = Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => (values[r] && values[r][c] !== undefined ? values[r][c] : "")));
    this.formulas = Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => (formulas[r] && formulas[r][c]) || ""));
    this.protected = new Set((spec && spec.protected) || []); // A1 cells the user may not edit
  }
  getName() {
    return this.name;
  }
  getLastRow() {
    return this.values.length;
  }
  getLastColumn() {
    return this.values[0].length;
  }
  getDataRange() {
    return new Range(this, 1, 1, this.values.length, this.values[0].length);
  }
  getRange(row, column, numRows, numColumns) {
    return new Range(this, row, column, numRows || 1, numColumns || 1);
  }
  _grow(rows, cols) {
    while (this.values.length < rows) {
      this.values.push(Array(this.values[0].length).fill(""));
      this.formulas.push(Array(this.formulas[0].length).fill(""));
    }
    for (let r = 0; r < this.values.length; r++) {
      while (this.values[r].length < cols) {
        this.values[r].push("");
        this.formulas[r].push("");
      }
    }
  }
}

class Range {
  constructor(sheet, row, column, numRows, numColumns) {
    Object.assign(this, { sheet, row, column, numRows, numColumns });
  }
  _cells(grid) {
    const out = [];
    for (let r = 0; r < this.numRows; r++) {
      const line = [];
      for (let c = 0; c < this.numColumns; c++) {
        const row = grid[this.row - 1 + r];
        line.push(row && row[this.column - 1 + c] !== undefined ? row[this.column - 1 + c] : "");
      }
      out.push(line);
    }
    return out;
  }
  getValues() {
    return this._cells(this.sheet.values);
  }
  getFormulas() {
    return this._cells(this.sheet.formulas);
  }
  getFormula() {
    return this.getFormulas()[0][0];
  }
  getA1Notation() {
    const first = columnLetters(this.column) + this.row;
    if (this.numRows === 1 && this.numColumns === 1) return first;
    return `${first}:${columnLetters(this.column + this.numColumns - 1)}${this.row + this.numRows - 1}`;
  }
  _set(op, value) {
    for (let r = 0; r < this.numRows; r++) {
      for (let c = 0; c < this.numColumns; c++) {
        if (this.sheet.protected.has(columnLetters(this.column + c) + (this.row + r))) {
          throw new Error("Exception: You are trying to edit a protected cell or object.");
        }
      }
    }
    this.sheet._grow(this.row + this.numRows - 1, this.column + this.numColumns - 1);
    for (let r = 0; r < this.numRows; r++) {
      for (let c = 0; c < this.numColumns; c++) {
        const [rr, cc] = [this.row - 1 + r, this.column - 1 + c];
        if (op === "setFormula") {
          this.sheet.formulas[rr][cc] = value;
          this.sheet.values[rr][cc] = "";
        } else {
          this.sheet.formulas[rr][cc] = "";
          this.sheet.values[rr][cc] = value;
        }
      }
    }
    this.sheet.runtime.edits.push({ sheet: this.sheet.name, a1: this.getA1Notation(), op, value });
    return this;
  }
  setValue(value) {
    return this._set("setValue", value);
  }
  setFormula(formula) {
    return this._set("setFormula", formula);
  }
}

class Spreadsheet {
  constructor(runtime, spec) {
    this.timeZone = spec.timeZone || "Etc/UTC";
    this.sheets = Object.entries(spec.sheets || { Sheet1: {} }).map(([name, s]) => new Sheet(runtime, name, s));
  }
  getSheets() {
    return this.sheets.slice();
  }
  getSheetByName(name) {
    return this.sheets.find((s) => s.name === name) || null;
  }
  getSpreadsheetTimeZone() {
    return this.timeZone;
  }
}

class Menu {
  constructor(ui, caption) {
    this.ui = ui;
    this.caption = caption;
    this.items = [];
  }
  addItem(caption, functionName) {
    this.items.push({ caption, functionName });
    return this;
  }
  addSeparator() {
    this.items.push({ separator: true });
    return this;
  }
  addSubMenu(menu) {
    this.items.push({ caption: menu.caption, items: menu.items });
    return this;
  }
  addToUi() {
    this.ui.menus.push({ caption: this.caption, items: this.items });
  }
}

/** ScriptApp's installable triggers: newTrigger(name).timeBased().everyMinutes(n).create(), as Google checks them. */
class Trigger {
  constructor(id, handler, minutes) {
    this.id = id;
    this.handler = handler;
    this.minutes = minutes;
  }
  getUniqueId() {
    return this.id;
  }
  getHandlerFunction() {
    return this.handler;
  }
  getEventType() {
    return "CLOCK";
  }
}

function makeScriptApp(runtime) {
  const EVERY_MINUTES = new Set([1, 5, 10, 15, 30]); // what ClockTriggerBuilder.everyMinutes accepts
  return {
    EventType: { CLOCK: "CLOCK" },
    newTrigger(handler) {
      if (typeof handler !== "string" || !handler) throw new Error("newTrigger(functionName)");
      return {
        timeBased() {
          let minutes = null;
          const builder = {
            everyMinutes(n) {
              if (!EVERY_MINUTES.has(n)) throw new Error(`everyMinutes takes 1, 5, 10, 15 or 30, not ${n}`);
              minutes = n;
              return builder;
            },
            create() {
              if (minutes === null) throw new Error("stub: a time-based trigger needs its interval");
              if (typeof runtime.context[handler] !== "function") throw new Error(`Code.gs has no function ${handler}`);
              if (runtime.triggers.length >= 20) throw new Error("This script has too many triggers.");
              const trigger = new Trigger(`trigger-${++runtime.triggerIds}`, handler, minutes);
              runtime.triggers.push(trigger);
              return trigger;
            },
          };
          return builder;
        },
      };
    },
    getProjectTriggers() {
      return [...runtime.triggers];
    },
    deleteTrigger(trigger) {
      runtime.triggers = runtime.triggers.filter((t) => t.getUniqueId() !== trigger.getUniqueId());
    },
  };
}

/** Let one interval pass: every time-driven trigger runs once, as Google runs it; returns what each returned. */
function runTriggers(runtime) {
  const results = [];
  for (const trigger of [...runtime.triggers]) {
    results.push(runtime.call(trigger.getHandlerFunction(), { triggerUid: trigger.getUniqueId(), authMode: "FULL" }));
  }
  runtime.clock.advance(Math.max(...runtime.triggers.map((t) => t.minutes), 1) * 60);
  return results;
}

function makeUi(runtime) {
  const ui = runtime.ui;
  const nextAnswer = (what, text) => {
    if (!runtime.answers.length) throw new Error(`stub: the test queued no answer for the ${what} "${text}"`);
    return runtime.answers.shift();
  };
  const split = (a, b, c) => (c !== undefined || (b !== undefined && !IS_BUTTON_SET.has(b)) ? [a, b, c] : ["", a, b]);
  return {
    Button: BUTTON,
    ButtonSet: BUTTON_SET,
    createMenu(caption) {
      return new Menu(ui, caption);
    },
    createAddonMenu() {
      return new Menu(ui, "Add-on");
    },
    alert(a, b, c) {
      const [title, prompt, buttons] = split(a, b, c);
      const set = buttons || BUTTON_SET.OK;
      ui.alerts.push({ title, prompt, buttons: set });
      if (set === BUTTON_SET.OK) return BUTTON.OK;
      return nextAnswer("alert", prompt).button;
    },
    prompt(a, b, c) {
      const [title, prompt, buttons] = split(a, b, c);
      ui.prompts.push({ title, prompt, buttons: buttons || BUTTON_SET.OK });
      const answer = nextAnswer("prompt", prompt);
      return {
        getResponseText: () => answer.text || "",
        getSelectedButton: () => answer.button || BUTTON.OK,
      };
    },
  };
}

// --- the runtime ------------------------------------------------------------------------------

/**
 * A fresh runtime with Code.gs loaded. Options: userProperties, scriptProperties (objects),
 * spreadsheet ({timeZone, sheets: {name: {values, formulas}}}), scriptTimeZone, code (the path of
 * the .gs file), fetchTimeoutMs.
 */
function createRuntime(options) {
  options = options || {};
  const clock = new Clock();
  const runtime = {
    clock,
    fetchLog: [],
    fetchTimeoutMs: options.fetchTimeoutMs || FETCH_TIMEOUT_MS,
    answers: [],
    edits: [],
    flushes: 0,
    logs: [],
    ui: { menus: [], alerts: [], prompts: [] },
    triggers: [],
    triggerIds: 0,
    userProperties: new Properties(options.userProperties),
    scriptProperties: new Properties(options.scriptProperties),
    documentProperties: new Properties(options.documentProperties),
    caches: { user: new Cache(clock), script: new Cache(clock), document: new Cache(clock) },
  };
  runtime.spreadsheet = new Spreadsheet(runtime, options.spreadsheet || {});
  const uiObject = makeUi(runtime);
  const log = (...args) => runtime.logs.push(args.map(String).join(" "));
  const globals = {
    UrlFetchApp: makeUrlFetchApp(runtime),
    CacheService: {
      getUserCache: () => runtime.caches.user,
      getScriptCache: () => runtime.caches.script,
      getDocumentCache: () => runtime.caches.document,
    },
    PropertiesService: {
      getUserProperties: () => runtime.userProperties,
      getScriptProperties: () => runtime.scriptProperties,
      getDocumentProperties: () => runtime.documentProperties,
    },
    SpreadsheetApp: {
      getUi: () => uiObject,
      getActiveSpreadsheet: () => runtime.spreadsheet,
      getActive: () => runtime.spreadsheet,
      flush: () => {
        runtime.flushes += 1;
      },
    },
    ScriptApp: makeScriptApp(runtime),
    Utilities: makeUtilities(),
    Session: { getScriptTimeZone: () => options.scriptTimeZone || "Etc/UTC" },
    Logger: { log },
    console: { log, info: log, warn: log, error: log },
  };
  runtime.context = vm.createContext(globals);
  const file = options.code || CODE_PATH;
  vm.runInContext(fs.readFileSync(file, "utf8"), runtime.context, { filename: path.basename(file) });

  /** Calls a global function of the script as Sheets or a menu would; throws what it throws. */
  runtime.call = (name, ...args) => {
    const fn = runtime.context[name];
    if (typeof fn !== "function") throw new Error(`Code.gs has no function ${name}`);
    return fn(...args);
  };
  /** {value} (as plain JSON) or {error: the thrown message}. */
  runtime.tryCall = (name, ...args) => {
    try {
      return { value: plain(runtime.call(name, ...args)) };
    } catch (e) {
      return { error: e && e.message !== undefined ? String(e.message) : String(e) };
    }
  };
  return runtime;
}

/** A value from the script's realm as plain JSON data (arrays of another realm compare unequal). */
function plain(value) {
  return value === undefined ? undefined : JSON.parse(JSON.stringify(value));
}

/** A Date as Sheets passes a date cell: midnight of that day in the spreadsheet's time zone. */
function sheetDate(isoDay, timeZone) {
  const [y, m, d] = isoDay.split("-").map(Number);
  const guess = Date.UTC(y, m - 1, d);
  // The zone's offset at that moment, from how the instant reads there.
  const shown = formatDate(new Date(guess), timeZone || "Etc/UTC", "yyyy-MM-dd'T'HH:mm:ss");
  const [sy, sm, sd, sh, smin, ss] = shown.split(/[-T:]/).map(Number);
  const offset = Date.UTC(sy, sm - 1, sd, sh, smin, ss) - guess;
  return new Date(guess - offset);
}

module.exports = { createRuntime, plain, sheetDate, runTriggers, CODE_PATH, BUTTON, BUTTON_SET };
