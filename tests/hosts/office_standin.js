/*
 * A stand-in for office.js, served at Microsoft's CDN address by the browser test's route handler.
 *
 * It provides the parts of the Office JavaScript API the task pane and the functions use, as Excel
 * on the web's shared runtime does: Office.onReady, Office.context.document.settings, Excel.run
 * over an in-memory workbook (used range, defined names, calculate), CustomFunctions.associate
 * (recording every function that registers), CustomFunctions.Error and ErrorCode, and
 * OfficeRuntime.storage. What the add-in does with them is kept in `OfficeStandin` for the test.
 */
(function (root) {
  "use strict";

  const ErrorCode = Object.freeze({
    divisionByZero: "#DIV/0!",
    invalidName: "#NAME?",
    invalidNumber: "#NUM!",
    invalidReference: "#REF!",
    invalidValue: "#VALUE!",
    notAvailable: "#N/A",
    nullReference: "#NULL!",
  });

  class CustomFunctionError extends Error {
    constructor(code, message) {
      super(message || code);
      if (!Object.values(ErrorCode).includes(code)) throw new TypeError(`not a CustomFunctions.ErrorCode: ${code}`);
      this.code = code;
    }
  }

  const standin = {
    associated: {}, // id -> the implementation the add-in registered
    calculations: [], // Excel.CalculationType of each workbook.application.calculate
    syncs: 0,
    workbook: { sheets: {}, names: {} }, // sheets: name -> 2-D values; names: defined name -> value
    settingsSaved: {},
  };

  // --- Office ---------------------------------------------------------------------------------

  const values = new Map();
  const settings = {
    get: (name) => (values.has(name) ? values.get(name) : null),
    set: (name, value) => values.set(name, value),
    remove: (name) => values.delete(name),
    saveAsync(options, callback) {
      const done = typeof options === "function" ? options : callback;
      standin.settingsSaved = Object.fromEntries(values);
      setTimeout(() => done && done({ status: "succeeded" }), 0);
    },
  };

  const info = { host: "Excel", platform: "OfficeOnline" };
  let loaded = null;
  const whenLoaded = new Promise((resolve) => {
    loaded = resolve;
  });
  if (root.document && root.document.readyState !== "loading") setTimeout(loaded, 0);
  else if (root.document) root.document.addEventListener("DOMContentLoaded", () => loaded());
  else setTimeout(loaded, 0);

  root.Office = {
    HostType: { Excel: "Excel" },
    PlatformType: { OfficeOnline: "OfficeOnline" },
    context: { document: { settings }, requirements: { isSetSupported: () => true } },
    onReady(callback) {
      return whenLoaded.then(async () => {
        if (typeof callback === "function") await callback(info);
        return info;
      });
    },
  };

  // --- Excel.run over the in-memory workbook -------------------------------------------------------

  function columnLetters(n) {
    let letters = "";
    for (; n > 0; n = Math.floor((n - 1) / 26)) letters = String.fromCharCode(65 + ((n - 1) % 26)) + letters;
    return letters;
  }

  function notLoaded(what) {
    const error = new Error(`PropertyNotLoaded: load ${what} and sync before reading it`);
    error.code = "PropertyNotLoaded";
    return error;
  }

  /** An object whose listed properties can only be read after the sync that fills them. */
  function proxy(properties, fill, queue) {
    const state = { synced: false };
    const object = { load: () => object };
    queue.push(() => {
      Object.assign(state, fill());
      state.synced = true;
    });
    for (const property of properties) {
      Object.defineProperty(object, property, {
        get() {
          if (!state.synced) throw notLoaded(property);
          return state[property];
        },
      });
    }
    return object;
  }

  function requestContext() {
    const queue = [];
    const book = standin.workbook;
    return {
      workbook: {
        worksheets: {
          getItem(name) {
            return {
              getUsedRange() {
                return proxy(
                  ["values", "address"],
                  () => {
                    const sheet = book.sheets[name];
                    if (!sheet) {
                      const error = new Error(`The requested resource doesn't exist (worksheet ${name}).`);
                      error.code = "ItemNotFound";
                      throw error;
                    }
                    const rows = sheet.length || 1;
                    const columns = Math.max(1, ...sheet.map((r) => r.length));
                    return {
                      values: sheet.length ? sheet.map((r) => [...r]) : [[""]],
                      address: `${name}!A1:${columnLetters(columns)}${rows}`,
                    };
                  },
                  queue,
                );
              },
            };
          },
        },
        names: {
          getItemOrNullObject(name) {
            return proxy(
              ["value", "isNullObject"],
              () => ({ value: book.names[name] ?? null, isNullObject: !(name in book.names) }),
              queue,
            );
          },
        },
        application: {
          calculate(type) {
            queue.push(() => standin.calculations.push(type));
          },
        },
      },
      async sync() {
        standin.syncs += 1;
        const work = queue.splice(0);
        for (const step of work) step();
      },
    };
  }

  root.Excel = {
    CalculationType: { recalculate: "Recalculate", full: "Full", fullRebuild: "FullRebuild" },
    async run(batch) {
      const context = requestContext();
      const result = await batch(context);
      await context.sync();
      return result;
    },
  };

  // --- custom functions and storage ---------------------------------------------------------------

  root.CustomFunctions = {
    ErrorCode,
    Error: CustomFunctionError,
    associate(id, implementation) {
      if (typeof id === "object" && id !== null) {
        for (const [key, fn] of Object.entries(id)) standin.associated[key] = fn;
        return;
      }
      if (typeof implementation !== "function") throw new TypeError(`associate(${id}) needs a function`);
      standin.associated[id] = implementation;
    },
  };

  const stored = new Map();
  root.OfficeRuntime = {
    storage: {
      getItem: async (key) => (stored.has(key) ? stored.get(key) : null),
      setItem: async (key, value) => void stored.set(key, String(value)),
      removeItem: async (key) => void stored.delete(key),
    },
  };

  /** A cell's arguments as Excel passes them: every declared parameter, the omitted ones null. */
  function declared(args, parameterCount) {
    const padded = [...args];
    while (padded.length < parameterCount) padded.push(null);
    return padded;
  }

  /**
   * Evaluate a cell as Excel does: the declared arguments (omitted ones null), then an invocation
   * object; a streaming function answers through invocation.setResult, the others by promise.
   * Settles with {value} or {error, message}.
   */
  standin.evaluate = function evaluate(id, args, parameterCount) {
    const implementation = standin.associated[id];
    if (!implementation) return Promise.resolve({ error: "#NAME?", message: `${id} is not registered` });
    const padded = declared(args, parameterCount);
    return new Promise((resolve) => {
      const answer = (value) => {
        if (value instanceof Error) resolve({ error: value.code || "#VALUE!", message: value.message });
        else resolve({ value });
      };
      const invocation = { address: "Sheet1!A1", functionName: id, setResult: answer, onCanceled: null };
      let result;
      try {
        result = implementation(...padded, invocation);
      } catch (error) {
        answer(error);
        return;
      }
      if (result && typeof result.then === "function") result.then(answer, answer);
      else if (result !== undefined) answer(result);
    });
  };

  /**
   * A live cell as Excel keeps it: the function is called once with a StreamingInvocation, and every
   * setResult it makes afterwards is the cell's new value (kept in order in `cells[handle].results`,
   * each {value} or {error, message}). `cancel(handle)` is Excel deleting the cell: onCanceled runs.
   */
  standin.cells = [];
  standin.stream = function stream(id, args, parameterCount) {
    const implementation = standin.associated[id];
    if (!implementation) throw new Error(`${id} is not registered`);
    const padded = declared(args, parameterCount);
    const cell = { id, results: [], canceled: false };
    const invocation = {
      address: `Sheet1!A${standin.cells.length + 1}`,
      functionName: id,
      onCanceled: null,
      setResult(value) {
        if (cell.canceled) throw new Error("setResult after the cell was canceled");
        if (value instanceof Error) cell.results.push({ error: value.code || "#VALUE!", message: value.message });
        else cell.results.push({ value });
      },
    };
    cell.invocation = invocation;
    standin.cells.push(cell);
    const returned = implementation(...padded, invocation);
    if (returned !== undefined) throw new Error(`${id} is streaming: it must answer through setResult, not return`);
    return standin.cells.length - 1;
  };
  standin.cancel = function cancel(handle) {
    const cell = standin.cells[handle];
    cell.canceled = true;
    if (typeof cell.invocation.onCanceled === "function") cell.invocation.onCanceled();
  };

  root.OfficeStandin = standin;
})(window);
