// Office's globals as Excel's shared runtime provides them, stubbed for Node: CustomFunctions
// (associate, Error, ErrorCode, StreamingInvocation for streaming functions), Excel.run over a fake workbook (load/sync semantics), Office
// (onReady, document settings), OfficeRuntime.storage and localStorage. The add-in's scripts
// are then loaded unchanged into this context; network calls are real (Node's fetch).
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import vm from "node:vm";

export const ADDIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

// CustomFunctions.ErrorCode: the members and the values Excel shows in the cell.
export const ErrorCode = Object.freeze({
  divisionByZero: "#DIV/0!",
  invalidName: "#NAME?",
  invalidNumber: "#NUM!",
  invalidReference: "#REF!",
  invalidValue: "#VALUE!",
  notAvailable: "#N/A",
  nullReference: "#NULL!",
});

export class CustomFunctionsError {
  constructor(code, message) {
    if (!Object.values(ErrorCode).includes(code)) throw new TypeError(`not a CustomFunctions.ErrorCode: ${code}`);
    this.code = code;
    if (message !== undefined) this.message = message;
  }
}

export class MemoryStorage {
  constructor() {
    this.items = new Map();
  }
  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }
  setItem(key, value) {
    this.items.set(key, String(value));
  }
  removeItem(key) {
    this.items.delete(key);
  }
  clear() {
    this.items.clear();
  }
}

/** OfficeRuntime.storage: the same calls, asynchronous. */
export class AsyncStorage {
  constructor() {
    this.items = new Map();
  }
  async getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }
  async setItem(key, value) {
    this.items.set(key, String(value));
  }
  async removeItem(key) {
    this.items.delete(key);
  }
}

/** Office.context.document.settings: get/set/remove, saved with saveAsync. */
export class DocumentSettings {
  constructor() {
    this.values = new Map();
    this.saved = new Map();
  }
  get(name) {
    return this.values.has(name) ? this.values.get(name) : null;
  }
  set(name, value) {
    this.values.set(name, value);
  }
  remove(name) {
    this.values.delete(name);
  }
  saveAsync(callback) {
    this.saved = new Map(this.values);
    setTimeout(() => callback && callback({ status: "succeeded" }), 0);
  }
}

class NotLoaded extends Error {
  constructor(what) {
    super(`PropertyNotLoaded: load ${what} and call context.sync() before reading it`);
    this.code = "PropertyNotLoaded";
  }
}

/**
 * A workbook for Excel.run: `sheets` maps a name to {values (2-D), address (optional, default from A1)},
 * `names` maps a defined name to its value. Calculations requested are recorded in `calculations`.
 */
export class FakeWorkbook {
  constructor({ sheets = {}, names = {} } = {}) {
    this.sheets = sheets;
    this.names = names;
    this.calculations = [];
    this.syncs = 0;
  }
}

function a1(rows, columns) {
  let letters = "";
  for (let n = columns; n > 0; n = Math.floor((n - 1) / 26)) letters = String.fromCharCode(65 + ((n - 1) % 26)) + letters;
  return `A1:${letters}${rows}`;
}

class RequestContext {
  constructor(book) {
    this.book = book;
    this.queue = []; // what the next sync() does, in order
    const context = this;
    this.workbook = {
      worksheets: {
        getItem(name) {
          return {
            getUsedRange() {
              const range = { loaded: false };
              const state = { synced: false };
              range.load = () => range;
              context.queue.push(() => {
                const sheet = book.sheets[name];
                if (!sheet) {
                  const error = new Error(`The requested resource doesn't exist (worksheet ${name}).`);
                  error.code = "ItemNotFound";
                  throw error;
                }
                const rows = sheet.values.length || 1;
                const columns = Math.max(1, ...sheet.values.map((r) => r.length));
                state.values = sheet.values.length ? sheet.values.map((r) => [...r]) : [[""]];
                state.address = `${name}!${sheet.address || a1(rows, columns)}`;
                state.synced = true;
              });
              for (const property of ["values", "address"]) {
                Object.defineProperty(range, property, {
                  get() {
                    if (!state.synced) throw new NotLoaded(`range.${property}`);
                    return state[property];
                  },
                });
              }
              return range;
            },
          };
        },
      },
      names: {
        getItemOrNullObject(name) {
          const state = { synced: false };
          const item = { load: () => item };
          context.queue.push(() => {
            state.synced = true;
            state.isNullObject = !Object.prototype.hasOwnProperty.call(book.names, name);
            state.value = state.isNullObject ? undefined : book.names[name];
          });
          for (const property of ["isNullObject", "value"]) {
            Object.defineProperty(item, property, {
              get() {
                if (!state.synced) throw new NotLoaded(`namedItem.${property}`);
                return state[property];
              },
            });
          }
          return item;
        },
      },
      application: {
        calculate(type) {
          context.queue.push(() => book.calculations.push(type));
        },
      },
    };
  }

  async sync() {
    this.book.syncs++;
    const queue = this.queue;
    this.queue = [];
    for (const operation of queue) operation();
  }
}

/**
 * Install the host globals. Returns them, with the registry of associated functions.
 * `workbook` is a FakeWorkbook; `settings` are written to localStorage as the task pane saves them.
 */
export function installHost({ workbook = new FakeWorkbook(), settings = {} } = {}) {
  const associations = new Map();
  const host = {
    associations,
    workbook,
    localStorage: new MemoryStorage(),
    officeStorage: new AsyncStorage(),
    documentSettings: new DocumentSettings(),
  };
  globalThis.CustomFunctions = {
    associate(id, implementation) {
      if (typeof id !== "string" || typeof implementation !== "function") throw new TypeError("associate(id, function)");
      associations.set(id, implementation);
    },
    Error: CustomFunctionsError,
    ErrorCode,
  };
  globalThis.localStorage = host.localStorage;
  globalThis.OfficeRuntime = { storage: host.officeStorage };
  globalThis.Excel = {
    CalculationType: Object.freeze({ recalculate: "Recalculate", full: "Full", fullRebuild: "FullRebuild" }),
    async run(batch) {
      return batch(new RequestContext(host.workbook));
    },
  };
  globalThis.Office = {
    context: { document: { settings: host.documentSettings } },
    onReady(callback) {
      return Promise.resolve().then(() => {
        if (callback) callback({ host: "Excel", platform: "OfficeOnline" });
        return { host: "Excel", platform: "OfficeOnline" };
      });
    },
  };
  for (const [key, value] of Object.entries(settings)) if (value !== undefined) host.localStorage.setItem(key, value);
  return host;
}

/** Run one of the add-in's scripts (functions.js, taskpane.js) as a page would: a classic script in this context. */
export function loadScript(name) {
  const file = path.join(ADDIN, name);
  vm.runInThisContext(readFileSync(file, "utf8"), { filename: file });
}

/** Wrap fetch so that each request is recorded (url, method, parsed JSON body) before it goes out. */
export function recordFetch() {
  const original = globalThis.fetch;
  const requests = [];
  globalThis.fetch = (url, init = {}) => {
    let body = init.body;
    try {
      body = body === undefined ? undefined : JSON.parse(body);
    } catch (_) {
      /* not JSON */
    }
    requests.push({ url: String(url), method: init.method || "GET", body });
    return original(url, init);
  };
  return { requests, original, restore: () => (globalThis.fetch = original) };
}

/** A cell's value as the tests compare it: the value, or {error: code, message} for an Excel error. */
function shown(value) {
  if (value instanceof CustomFunctionsError) return { error: value.code, message: value.message ?? "" };
  if (value instanceof Error) return { error: ErrorCode.invalidValue, message: String(value.message || value) };
  return value;
}

/**
 * CustomFunctions.StreamingInvocation as Excel hands it to a streaming function: setResult
 * shows a value (or an Error) in the cell, any number of times; Excel calls onCanceled when the
 * cell is deleted or its formula changes, and ignores setResult after that.
 */
export class StreamingInvocation {
  constructor(functionName, address) {
    this.functionName = functionName;
    this.address = address;
    this.onCanceled = undefined;
    this.canceled = false;
    this.results = []; // every value the cell showed, in order
    this.waiters = [];
  }
  setResult(value) {
    if (this.canceled) return; // Excel drops results for a cancelled cell
    this.results.push(shown(value));
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
  /** The cell's current value (undefined before the first setResult). */
  get value() {
    return this.results[this.results.length - 1];
  }
  /** Resolve when the cell has shown `count` results in all (rejects after `timeoutMs`). */
  until(count, timeoutMs = 10000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.address}: ${this.results.length} results, waited for ${count}`)),
        timeoutMs,
      );
      const check = () => {
        if (this.results.length >= count) {
          clearTimeout(timer);
          resolve(this.value);
        } else this.waiters.push(check);
      };
      check();
    });
  }
  /** What Excel does when the cell is deleted or its formula replaced. */
  cancel() {
    if (this.canceled) return;
    this.canceled = true;
    if (typeof this.onCanceled === "function") this.onCanceled();
  }
}

function streaming(meta) {
  return !!(meta.options && meta.options.stream);
}

/**
 * Enter formulas as Excel does for a sheet's cells: every implementation called at once, with its
 * declared arguments (null for omitted optional ones) and an invocation object last (a
 * StreamingInvocation for a streaming function). Returns one cell per call: {invocation, first}
 * where `first` settles with the cell's first value.
 */
export function enterFormulas(associations, metadata, calls) {
  const byId = new Map(metadata.functions.map((f) => [f.id, f]));
  return calls.map((c, i) => {
    const meta = byId.get(String(c.name).toUpperCase());
    const implementation = meta && associations.get(meta.id);
    const address = `Sheet1!A${i + 1}`;
    if (!implementation) {
      // Excel's own answer for a name no add-in defines.
      return { invocation: null, first: Promise.resolve({ error: ErrorCode.invalidName, message: `${c.name} is not a PLANSHEET function` }) };
    }
    const args = [...(c.args || [])];
    while (args.length < meta.parameters.length) args.push(null);
    if (streaming(meta)) {
      const invocation = new StreamingInvocation(meta.id, address);
      const first = Promise.resolve()
        .then(() => implementation(...args, invocation))
        .then(() => invocation.until(1));
      return { invocation, first };
    }
    const invocation = { functionName: meta.id, address };
    const first = Promise.resolve()
      .then(() => implementation(...args, invocation))
      .then((value) => value, shown);
    return { invocation, first };
  });
}

/**
 * Call the associated functions as Excel does for a sheet's cells and wait for each cell's first
 * value; streaming cells are then cancelled (as if the formulas were deleted), so nothing keeps
 * running. Each answer is the value, or {error: code, message} for an Excel error.
 */
export async function invokeAll(associations, metadata, calls) {
  const cells = enterFormulas(associations, metadata, calls);
  try {
    return await Promise.all(cells.map((cell) => cell.first));
  } finally {
    for (const cell of cells) if (cell.invocation instanceof StreamingInvocation) cell.invocation.cancel();
  }
}

/** The service and tokens the Python test started (null when run on its own, e.g. `npm test`). */
export function serviceUnderTest() {
  const url = process.env.PLANSHEET_URL;
  if (!url) return null;
  return {
    url: url.replace(/\/+$/, ""),
    tokens: JSON.parse(process.env.PLANSHEET_TOKENS || "{}"),
    fixture: process.env.PLANSHEET_FIXTURE ? JSON.parse(readFileSync(process.env.PLANSHEET_FIXTURE, "utf8")) : {},
  };
}

export const NO_SERVICE = "needs a running service: run `pytest tests/hosts/test_officejs.py`, which starts one and sets PLANSHEET_URL";

/** POST /api/v1/functions:batch directly (the expected answers), with Node's own fetch. */
export async function batch(fetchImpl, url, token, calls) {
  const response = await fetchImpl(`${url}/api/v1/functions:batch`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ calls }),
  });
  if (response.status !== 200) throw new Error(`functions:batch answered ${response.status}: ${await response.text()}`);
  return (await response.json()).results;
}
