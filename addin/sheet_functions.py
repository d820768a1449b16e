"""The PS_ spreadsheet functions: host values in, the pure core in between, rows (or an error) out.

Every host binding (xlwings UDFs, the HTTP function service, Office.js, Apps Script) calls
these through `REGISTRY`, so a function behaves the same in every host. Plan-table
arguments take the Plan table with or without its header row (without it, columns are in
the template's order); cell references in messages are relative to the range passed.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from addin import hostvalues as hv
from addin.coerce import ROW, Located, coerce
from addin.forecast import Method, closed_months, elapsed_fraction, forecast, pacing
from addin.fx import convert_between
from addin.hostvalues import ExcelError, HostValueError
from addin.issues import Issue, Rule, Severity
from addin.kpi import kpi_table
from addin.reader import PlanRead, plan_from_rows
from addin.registry import Arg, ArgType, Registry, Shape, SheetFunction
from addin.rollup import rollup
from addin.variance import remaining, variance, variance_flag, variance_pct
from sheet_templates.calendar import QUARTERS
from sheet_templates.cells import column_letter
from sheet_templates.config import CONFIG_ENV, load_config
from sheet_templates.errors import PlansheetError
from sheet_templates.schema import ColumnType, PlanSchema, build_schema

REGISTRY = Registry()
_PLAN_HELP = "the Plan table, with or without its header row"


@functools.lru_cache(maxsize=4)
def _schema_for(path: str | None, mtime: float) -> PlanSchema:
    return build_schema(load_config(path))


def current_schema() -> PlanSchema:
    """The schema of the configuration in $PLANSHEET_CONFIG (or the bundled one), reloaded when the file changes."""
    path = os.environ.get(CONFIG_ENV) or None
    mtime = Path(path).stat().st_mtime if path and Path(path).exists() else 0.0
    return _schema_for(path, mtime)


def sheet_function(
    name: str, help: str, *args: Arg, result: Shape = Shape.MATRIX, volatile: bool = False, example: str = ""
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `impl` as a spreadsheet function whose failures become cell errors, never exceptions."""

    def register(impl: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(impl)
        def safe(*values: Any) -> Any:
            try:
                return impl(*values)
            except HostValueError as exc:
                return exc.as_error()
            except PlansheetError as exc:
                return ExcelError("#VALUE!", exc.message)
            except Exception as exc:  # a bug must still not put a traceback in a cell
                return ExcelError("#VALUE!", f"internal error in {name} ({type(exc).__name__}: {exc})")

        REGISTRY.register(SheetFunction(name, help, tuple(args), safe, result, volatile, example))
        return safe

    return register


def _has_header(rows: list[list[Any]], schema: PlanSchema) -> bool:
    labels = {" ".join(c.label.split()).casefold() for c in schema.columns} | {c.name for c in schema.columns}
    first = [" ".join(str(v).split()).casefold() for v in rows[0] if not hv.is_blank(v)]
    return bool(first) and sum(v in labels for v in first) >= min(3, len(first))


def _check_template_order(rows: list[list[Any]], schema: PlanSchema) -> None:
    """Without a header row the columns must be the template's, from Line ID on: check the Region column."""
    if len(rows[0]) > len(schema.columns):
        raise HostValueError(f"the range has {len(rows[0])} columns but no header row; select the Plan table")
    pos = schema["region"].index - 1
    regions = {r.casefold() for r in schema.config.regions}
    if pos < len(rows[0]) and any(
        not hv.is_blank(r[pos]) and str(r[pos]).strip().casefold() not in regions for r in rows
    ):
        raise HostValueError(
            "without a header row the range must start at the Line ID column (A) and keep the template's "
            "columns; include the header row or start the range at column A"
        )


def read_table(value: Any, schema: PlanSchema) -> tuple[PlanRead, bool, int]:
    """A Plan range as a typed plan: (the plan, whether it had a header row, its number of data rows)."""
    rows = hv.grid(value)
    has_header = _has_header(rows, schema)
    if not has_header:
        _check_template_order(rows, schema)
        rows = [[c.label for c in schema.columns[: len(rows[0])]], *rows]
    grid = [[None if isinstance(v, float) and np.isnan(v) else v for v in row] for row in rows]
    read = plan_from_rows(grid, schema, sheet="", file=None)
    if not has_header:  # the header row was lent; cells are counted from the range's own first row
        read.issues = [_shift_up(i) for i in read.issues]
    return read, has_header, len(rows) - 1


def _shift_up(issue: Issue) -> Issue:
    if issue.row is None:
        return issue
    if issue.row == 1:  # about the lent header: there is no such cell in the range
        return dataclasses.replace(issue, row=None, cell=None)
    cell = issue.cell.rstrip("0123456789") + str(issue.row - 1) if issue.cell else None
    return dataclasses.replace(issue, row=issue.row - 1, cell=cell)


def columns_of(value: Any, schema: PlanSchema, names: list[str]) -> pd.DataFrame:
    """Only the named columns of a Plan range, typed by the reader's own conversion (fast: no line rules).

    Values are tidied exactly as the reader tidies them (list values matched whatever their case,
    codes typed as numbers, cells showing errors refused); blank lines drop out.
    """
    names = list(dict.fromkeys(names))
    rows = hv.grid(value)
    has_header = _has_header(rows, schema)
    if has_header:
        labels = {" ".join(c.label.split()).casefold(): c.name for c in schema.columns}
        labels |= {c.name: c.name for c in schema.columns}
        positions: dict[str, int] = {}
        for i, v in enumerate(rows[0]):
            name = labels.get(" ".join(str(v).split()).casefold()) if not hv.is_blank(v) else None
            if name is not None:
                positions.setdefault(name, i)
        data, start = rows[1:], 2
    else:
        _check_template_order(rows, schema)
        positions = {c.name: c.index - 1 for c in schema.columns}
        data, start = rows, 1
    raw: dict[str, np.ndarray] = {}
    for name in names:
        pos = positions.get(name)
        if pos is None or (data and pos >= len(data[0])):
            raise HostValueError(f'the range has no "{schema[name].label}" column')
        values = np.empty(len(data), dtype=object)
        values[:] = [r[pos] for r in data]
        raw[name] = values
    raw[ROW] = np.arange(start, start + len(data), dtype=np.int64)
    where = Located(sheet="", file=None, letters={n: column_letter(positions[n] + 1) for n in names})
    table = coerce(raw, schema, where, only=names)
    errors = [i for i in where.issues if i.severity is Severity.ERROR]
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise HostValueError(f"{errors[0].cell}: {errors[0].message}{more}")
    amount = np.zeros(len(table), dtype=bool)
    money = np.zeros(len(table), dtype=bool)
    content = np.zeros(len(table), dtype=bool)
    for name in names:
        col = schema[name]
        if col.type in (ColumnType.MONEY, ColumnType.COUNT):
            amount |= table[name].to_numpy() != 0
            if col.type is ColumnType.MONEY:
                money |= table[name].to_numpy() != 0
        elif col.type in (ColumnType.TEXT, ColumnType.CHOICE) and name != "region":
            content |= table[name].to_numpy(dtype=object) != ""
    content |= amount  # pre-numbered rows hold only a line ID and region: they are not lines
    if "currency" in table:
        for i in np.flatnonzero(money & (table["currency"].to_numpy(dtype=object) == "")):
            raise HostValueError(f"{where.letters['currency']}{start + i}: a line with amounts has no currency")
    return table.loc[content].reset_index(drop=True)


def period_labels(schema: PlanSchema, period: str) -> list[str]:
    """The period columns a planned rollup has, whether or not any line falls in them."""
    if period == "month":
        return [m.name for m in schema.calendar.months]
    if period == "quarter":
        return list(QUARTERS)
    if period == "year":
        return [schema.calendar.label]
    raise HostValueError('period must be "month", "quarter" or "year"')


def _usable(read: PlanRead, needed: Sequence[str]) -> None:
    """Refuse to compute from the `needed` columns' cells that could not be read: they would count as zero."""
    bad = [
        i
        for i in read.issues
        if i.severity is Severity.ERROR and i.rule in (Rule.TYPE, Rule.COLUMN_MISSING) and i.column in needed
    ]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        where = f"{bad[0].cell}: " if bad[0].cell else ""
        raise HostValueError(f"{where}{bad[0].message}{more}")


def _dims(value: Any, schema: PlanSchema, default: str) -> list[str]:
    text = hv.text(value, "by", default)
    names = list(dict.fromkeys(d.strip().lower().replace(" ", "_") for d in text.split(",") if d.strip()))
    for name in names:
        if name not in schema.dimension_names:
            raise HostValueError(f'by: "{name}" is not a dimension; use {", ".join(schema.dimension_names)}')
    return names


def _column(values: list[Any], header: str | None) -> list[list[Any]]:
    """One value per row as a column, under `header` when the input had a header row."""
    return ([[header]] if header is not None else []) + [[v] for v in values]


# --- plan-table functions -------------------------------------------------------------------------------------


@sheet_function(
    "PS_VALIDATE",
    "Checks each plan line against the plan's rules; returns one message per row, empty when the line is fine.",
    Arg("plan", _PLAN_HELP),
    example="=PS_VALIDATE(PlanLines[#All])",
)
def ps_validate(plan: Any) -> list[list[Any]]:
    schema = current_schema()
    read, has_header, n_rows = read_table(plan, schema)
    first_data_row = 2 if has_header else 1
    messages: dict[int, list[str]] = {}
    for issue in read.issues:
        row = issue.row if issue.row and issue.row >= first_data_row else first_data_row - 1
        messages.setdefault(row, []).append(f"{issue.message} ({issue.rule})" if issue.rule else issue.message)
    header_note = "; ".join(messages.get(first_data_row - 1, []))
    out = ["; ".join(messages.get(first_data_row + i, [])) for i in range(n_rows)]
    if has_header:
        return _column(out, header_note or "Validation")
    if header_note and out:
        out[0] = "; ".join(p for p in (header_note, out[0]) if p)
    return _column(out, None)


@sheet_function(
    "PS_ROLLUP",
    "Totals of a measure by any dimensions and period (month, quarter or year), in the reporting currency.",
    Arg("plan", _PLAN_HELP),
    Arg(
        "by",
        "dimensions, comma-separated: region, business_unit, team, campaign, channel, status...",
        ArgType.TEXT,
        Shape.SCALAR,
        optional=True,
        default="channel",
    ),
    Arg("period", "month, quarter or year (for the planned measure)", ArgType.TEXT, Shape.SCALAR, True, "quarter"),
    Arg(
        "measure",
        "planned, committed, actual, leads, mqls, pipeline or revenue",
        ArgType.TEXT,
        Shape.SCALAR,
        True,
        "planned",
    ),
    example='=PS_ROLLUP(PlanLines[#All], "region,channel", "quarter")',
)
def ps_rollup(plan: Any, by: Any, period: Any, measure: Any) -> list[list[Any]]:
    schema = current_schema()
    dims = _dims(by, schema, "channel")
    period_name = hv.text(period, "period", "quarter").lower()
    measure_name = hv.text(measure, "measure", "planned").lower()
    period_labels(schema, period_name)  # an unknown period is an error whatever the measure
    if measure_name == "planned":
        needed = [*dims, "currency", *(c.name for c in schema.month_columns)]
    elif measure_name in schema and schema[measure_name].type is ColumnType.MONEY:
        needed = [*dims, "currency", measure_name]
    elif measure_name in schema and schema[measure_name].type is ColumnType.COUNT:
        needed = [*dims, measure_name]  # counts need no currency
    else:
        raise HostValueError(f'measure: "{measure_name}" is not a measure; use planned, committed, actual or a KPI')
    long = rollup(columns_of(plan, schema, needed), schema, dims, period_name, measure_name)
    labels = period_labels(schema, period_name) if measure_name == "planned" else ["total"]
    if dims:
        wide = long.pivot_table(index=dims, columns="period", values="cents", aggfunc="sum", sort=True)
        wide = wide.reindex(columns=labels).fillna(0).astype(np.int64).reset_index()
    else:
        wide = pd.DataFrame([long.set_index("period")["cents"].reindex(labels).fillna(0).astype(np.int64)])
    month_labels = {m.name: m.label for m in schema.calendar.months}
    month_labels["total"] = "Total"
    header = [schema[d].label for d in dims] + [month_labels.get(p, p) for p in labels]
    money = schema[measure_name].type.value == "money" if measure_name in schema else True
    rows = []
    for rec in wide.itertuples(index=False):
        values = list(rec)
        amounts = [int(v) / 100 if money else int(v) for v in values[len(dims) :]]
        rows.append(values[: len(dims)] + amounts)
    if len(labels) > 1:
        header.append("Total")
        for row in rows:
            row.append(round(sum(row[len(dims) :]), 2))
    return [header, *rows]


@sheet_function(
    "PS_FORECAST",
    "Year-end spend per plan line, by run rate or by the remaining plan's phasing, in the line's currency.",
    Arg("plan", _PLAN_HELP),
    Arg(
        "method",
        "phasing (actual + plan of open months) or run_rate (actual per closed month x 12)",
        ArgType.TEXT,
        Shape.SCALAR,
        True,
        "phasing",
    ),
    Arg("as_of", "the date to forecast from (default today)", ArgType.ANY, Shape.SCALAR, True, None),
    volatile=True,  # by default it depends on today's date
    example='=PS_FORECAST(PlanLines[#All], "run_rate")',
)
def ps_forecast(plan: Any, method: Any, as_of: Any) -> list[list[Any]]:
    schema = current_schema()
    read, has_header, n_rows = read_table(plan, schema)
    _usable(read, ["actual", *(c.name for c in schema.month_columns)])
    how = hv.text(method, "method", "phasing").lower().replace(" ", "_").replace("-", "_")
    if how not in {m.value for m in Method}:
        raise HostValueError('method must be "phasing" or "run_rate"')
    closed = closed_months(schema.calendar, hv.date(as_of, "as_of"))
    table = read.table
    months = (
        np.column_stack([table[c.name].to_numpy(dtype=np.int64) for c in schema.month_columns])
        if len(table)
        else np.zeros((0, 12), dtype=np.int64)
    )
    result = forecast(months, table["actual"].to_numpy(dtype=np.int64), closed, how) / 100
    by_row = dict(zip(table["_row"].tolist(), result.tolist(), strict=True))
    values = [by_row.get(row) for row in range(2, 2 + n_rows)]
    return _column(values, f"Forecast ({how.replace('_', ' ')})" if has_header else None)


@sheet_function(
    "PS_KPI",
    "What the money buys by group: spend, expected leads, MQLs, pipeline and revenue, cost per lead and MQL, "
    "pipeline and revenue per unit of spend, and the gap to the region's targets.",
    Arg("plan", _PLAN_HELP),
    Arg(
        "by",
        "dimensions, comma-separated (targets apply when grouped by region)",
        ArgType.TEXT,
        Shape.SCALAR,
        True,
        "region",
    ),
    Arg("period", "year or quarter", ArgType.TEXT, Shape.SCALAR, True, "year"),
    example='=PS_KPI(PlanLines[#All], "region", "quarter")',
)
def ps_kpi(plan: Any, by: Any, period: Any) -> list[list[Any]]:
    schema = current_schema()
    read, _, _ = read_table(plan, schema)
    dims = _dims(by, schema, "region")
    _usable(
        read,
        [*dims, "currency", "actual", "leads", "mqls", "pipeline", "revenue", *(c.name for c in schema.month_columns)],
    )
    period_name = hv.text(period, "period", "year").lower()
    table = kpi_table(read.table, schema, dims, period_name)
    cur = schema.config.reporting_currency
    columns = [(d, schema[d].label) for d in dims]
    if period_name == "quarter":
        columns.append(("period", "Quarter"))
    columns += [
        ("spend", f"Planned spend ({cur})"),
        ("actual_spend", f"Actual spend ({cur})"),
        ("leads", "Expected leads"),
        ("mqls", "Expected MQLs"),
        ("pipeline", f"Expected pipeline ({cur})"),
        ("revenue", f"Expected revenue ({cur})"),
        ("cost_per_lead", "Cost per lead"),
        ("cost_per_mql", "Cost per MQL"),
        ("pipeline_roi", "Pipeline per unit of spend"),
        ("revenue_roi", "Revenue per unit of spend"),
        ("actual_cost_per_lead", "Actual spend per expected lead"),
    ]
    for m in ("leads", "mqls", "pipeline", "revenue"):
        label = {"leads": "leads", "mqls": "MQLs", "pipeline": "pipeline", "revenue": "revenue"}[m]
        columns += [(f"target_{m}", f"Target {label}"), (f"gap_{m}", f"Gap to target {label}")]
    rows = [[label for _, label in columns]]
    for rec in table[[name for name, _ in columns]].itertuples(index=False):
        rows.append([_cell(v) for v in rec])
    return rows


def _cell(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if np.isnan(value) else round(float(value), 4)
    return value.item() if isinstance(value, np.generic) else value


# --- cell-by-cell functions -----------------------------------------------------------------------------------


def _pair(plan: Any, actual: Any, names: tuple[str, str] = ("plan", "actual")) -> tuple[np.ndarray, np.ndarray]:
    a, b = hv.broadcast([hv.cents(plan, names[0]), hv.cents(actual, names[1])], names)
    return a, b


@sheet_function(
    "PS_VARIANCE",
    "Plan minus actual for each cell (finance's cost-line convention: positive means under-spent, favourable); "
    'with output "flag", favourable / unfavourable / on plan; with "percent", the share of the plan.',
    Arg("plan", "planned amounts (or allocations)", ArgType.NUMBER),
    Arg("actual", "actual amounts (or plans)", ArgType.NUMBER),
    Arg("output", "amount, percent or flag", ArgType.TEXT, Shape.SCALAR, True, "amount"),
    example="=PS_VARIANCE(AH2:AH301, AB2:AB301)",
)
def ps_variance(plan: Any, actual: Any, output: Any) -> list[list[Any]]:
    a, b = _pair(plan, actual)
    kind = hv.text(output, "output", "amount").lower()
    if kind == "amount":
        return hv.money_out(variance(a, b))
    if kind in ("percent", "pct", "%"):
        return hv.ratio_out(variance_pct(a, b))
    if kind == "flag":
        return variance_flag(a, b).tolist()
    raise HostValueError('output must be "amount", "percent" or "flag"')


@sheet_function(
    "PS_VARIANCE_PCT",
    "Plan minus actual as a share of the plan (0.1 = 10% under plan); blank where the plan is zero.",
    Arg("plan", "planned amounts (or allocations)", ArgType.NUMBER),
    Arg("actual", "actual amounts (or plans)", ArgType.NUMBER),
    example="=PS_VARIANCE_PCT(AH2:AH301, AB2:AB301)",
)
def ps_variance_pct(plan: Any, actual: Any) -> list[list[Any]]:
    a, b = _pair(plan, actual)
    return hv.ratio_out(variance_pct(a, b))


@sheet_function(
    "PS_FX",
    "Converts amounts from their currency to the reporting currency (or another), at the fiscal month's rate "
    "when one is configured, else at the plan rate.",
    Arg("amount", "amounts to convert", ArgType.NUMBER),
    # not "currency": Currency is a reserved word in VBA, where xlwings declares the arguments
    Arg("currency_code", "the currency of each amount (one code, or a range beside the amounts)", ArgType.TEXT),
    Arg(
        "period",
        'fiscal month (m01..m12, "Feb 2026" or a date); blank for the plan rate',
        ArgType.ANY,
        Shape.MATRIX,
        True,
        None,
    ),
    Arg("to_currency", "target currency (default: the reporting currency)", ArgType.TEXT, Shape.SCALAR, True, None),
    example='=PS_FX(N2:N301, J2:J301, "m01")',
)
def ps_fx(amount: Any, currency_code: Any, period: Any, to_currency: Any) -> list[list[Any]]:
    schema = current_schema()
    cfg = schema.config
    amounts = hv.cents(amount, "amount")
    codes = np.vectorize(str.upper, otypes=[object])(hv.texts(currency_code))
    months_in = hv.grid(period)
    months = np.array([[hv.fiscal_month(v, schema.calendar) for v in row] for row in months_in], dtype=object)
    amounts, codes, months = hv.broadcast([amounts, codes, months], ("amount", "currency", "period"))
    target = hv.text(to_currency, "to_currency", cfg.reporting_currency).upper()
    blank = codes == ""
    if (blank & (amounts != 0)).any():
        raise HostValueError("currency: an amount has no currency")
    codes = np.where(blank, target, codes)
    converted = convert_between(amounts.ravel(), codes.ravel(), target, cfg, months.ravel())
    return hv.money_out(converted.reshape(amounts.shape))


@sheet_function(
    "PS_PACING",
    "Spend to date against time elapsed in the fiscal year: (actual / planned) / share of the year gone; "
    "1 is on pace, above 1 spending ahead of plan; blank where nothing is planned.",
    Arg("actual", "actual spend to date", ArgType.NUMBER),
    Arg("planned", "planned spend for the year", ArgType.NUMBER),
    Arg("as_of", "the date (default today)", ArgType.ANY, Shape.SCALAR, True, None),
    volatile=True,  # by default it depends on today's date
    example="=PS_PACING(AB2:AB301, AH2:AH301)",
)
def ps_pacing(actual: Any, planned: Any, as_of: Any) -> list[list[Any]]:
    schema = current_schema()
    a, p = _pair(actual, planned, ("actual", "planned"))
    fraction = elapsed_fraction(schema.calendar, hv.date(as_of, "as_of"))
    return hv.ratio_out(pacing(a, p, fraction))


@sheet_function(
    "PS_REMAINING",
    "What is left to spend: allocation minus committed minus actual, for each cell.",
    Arg("allocation", "allocated amounts", ArgType.NUMBER),
    Arg("committed", "committed spend", ArgType.NUMBER),
    Arg("actual", "actual spend", ArgType.NUMBER),
    example="=PS_REMAINING(Summary!F15, SUM(AA2:AA301), SUM(AB2:AB301))",
)
def ps_remaining(allocation: Any, committed: Any, actual: Any) -> list[list[Any]]:
    names = ("allocation", "committed", "actual")
    arrays = hv.broadcast([hv.cents(v, n) for v, n in zip((allocation, committed, actual), names, strict=True)], names)
    return hv.money_out(remaining(*arrays))
