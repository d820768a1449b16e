"""The monthly management pack: one workbook of a fiscal month's figures, each read from the read model.

Overview (the month's key figures and what each sheet holds), Budget (by region and by channel: the
allocation, the budget, the plan, the latest estimate, plan and actual spend to date and the variance),
Spend control (plan, committed, invoiced and accrued at the month's end by region; the month's accrual
by team) and Performance (results against the plan's expectation and the region's targets, by region
and by channel), with a chart on each. Every table is an answer of the API written out: the variance
(`reports.variance_json`, closed through the month), the budget (`baselines.budget_json`), the spend
view (`spend_report.spend_json`), the accrual (`accruals.report`) and performance
(`performance.performance_json`); totals are the same answers grouped by nothing. The pack computes no
figure of its own, so it and the API agree to the cent.

Cells hold values, never formulas (a phone's preview and pandas read them as written), in the Excel
number formats of the formatting module; months are named, and every sheet prints landscape, one
page wide, with a footer naming the organisation, the year, the month and the master version.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xlsxwriter

from sheet_templates import printing
from sheet_templates.calendar import FiscalMonth
from sheet_templates.formatting import EXCEL_COUNT, EXCEL_PERCENT, EXCEL_RATIO, Formats, excel_money_format
from sheet_templates.money import to_cents, units
from sheet_templates.schema import PlanSchema
from sheet_templates.text import printable
from sync_service.budget import baselines
from sync_service.master import model as master_model
from sync_service.master import performance, reports
from sync_service.master.model import Master
from sync_service.platform.errors import NotFound
from sync_service.platform.storage import Store, User
from sync_service.spend import accruals
from sync_service.spend import report as spend_report

TOTAL = ","  # `by` that groups by nothing: the API's grand total
BY = ("region", "channel", TOTAL)
SHEETS = (
    ("Overview", "The month's key figures and what each sheet holds"),
    ("Budget", "Allocation, budget, plan, latest estimate, actual spend and the variance, by region and by channel"),
    ("Spend control", "Planned, committed, invoiced and accrued at the month's end by region; the accrual by team"),
    ("Performance", "Leads, pipeline and revenue against the plan and the targets, by region and channel"),
)


@dataclass(frozen=True)
class Figures:
    """The API's answers a pack is written from, for one fiscal month as one user may see it."""

    schema: PlanSchema
    month: FiscalMonth
    as_of: dt.date  # the day after the month: the variance's plan to date runs through it
    view: Master
    variance: dict[str, dict[str, Any]]  # by -> GET /api/v1/variance?by=&as_of=
    budget: dict[str, dict[str, Any]] | None  # by -> GET /api/v1/budget?by=&period=year; None: no baseline
    spend: dict[str, Any]  # GET /api/v1/spend?by=region&month=
    accrual: dict[str, Any]  # GET /api/v1/accruals/<month>
    performance: dict[str, dict[str, Any]]  # by -> GET /api/v1/performance?by=&period=year

    @property
    def about(self) -> dict[str, Any]:
        """What the figures were computed from (the read model's ids, and the budget's baseline)."""
        baseline = self.budget[TOTAL]["baseline"]["id"] if self.budget else None
        return {**self.view.about, "baseline": baseline}


def gather(store: Store, schema: PlanSchema, user: User, month: str) -> Figures:
    """The answers of a pack for fiscal `month` (m01..m12; 404 for another) as `user` may see them."""
    fiscal = schema.calendar.months[accruals.month_index(schema, month)]
    as_of = fiscal.last_day + dt.timedelta(days=1)
    view = master_model.load(store, schema, user)
    try:
        budget: dict[str, dict[str, Any]] | None = {
            by: baselines.budget_json(store, schema, user, None, by, "year") for by in BY
        }
    except NotFound:  # no baseline locked yet: the pack says so
        budget = None
    per_view, per_line = performance.for_user(store, schema, user)
    return Figures(
        schema=schema,
        month=fiscal,
        as_of=as_of,
        view=view,
        variance={by: reports.variance_json(view, by, as_of.isoformat()) for by in BY},
        budget=budget,
        spend=spend_report.spend_json(view, "region", fiscal.name),
        accrual=accruals.report(store, view, fiscal.name),
        performance={by: performance.performance_json(per_view, per_line, by, "year") for by in BY},
    )


# --- the tables ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    header: str
    kind: str  # text, money (cents), count, ratio, percent


@dataclass
class Table:
    """A titled table: its columns, rows of values (money in cents, None for no figure) and the totals row."""

    title: str
    columns: list[Column]
    rows: list[list[Any]]
    total: list[Any] | None = None
    first_row: int = field(default=0, init=False)  # where its data rows were written (for the charts)

    def at(self, header: str) -> int:
        """The column whose header starts with `header`."""
        return next(k for k, c in enumerate(self.columns) if c.header.startswith(header))


def _cents(text: Any) -> int | None:
    return None if text is None else to_cents(text)


def _label(by: str) -> str:
    return by.replace("_", " ").capitalize()


def budget_table(f: Figures, by: str, month: str) -> Table:
    """By region or channel: the allocation (regions), budget, plan, estimate, and plan and actual to date.

    `month` is the pack's month by name, for the headers.
    """
    variance = {row[by]: row for row in f.variance[by]["rows"]}
    budget = {row[by]: row for row in f.budget[by]["rows"]} if f.budget else {}
    columns = [Column(_label(by), "text")]
    if by == "region":
        columns.append(Column("Allocation", "money"))
    columns += [
        Column("Budget", "money"),
        Column("Plan", "money"),
        Column("Latest estimate", "money"),
        Column("Estimate less budget", "money"),
        Column(f"Plan to the end of {month}", "money"),
        Column("Actual to date", "money"),
        Column("Variance (plan less actual)", "money"),
        Column("Variance %", "percent"),
    ]

    def cells(v: dict[str, Any] | None, b: dict[str, Any] | None, with_allocation: bool) -> list[Any]:
        v, b = v or {}, b or {}
        out: list[Any] = [_cents(v.get("allocation"))] if with_allocation else []
        out += [
            b.get("cents", {}).get("budget"),
            _cents(v.get("planned")),
            b.get("cents", {}).get("estimate"),
            _cents(b.get("estimate_vs_budget")),
            _cents(v.get("planned_to_date")),
            _cents(v.get("actual")),
            _cents(v.get("variance")),
            v.get("variance_pct"),
        ]
        return out

    keys = sorted(set(variance) | set(budget), key=str)
    rows = [[key, *cells(variance.get(key), budget.get(key), by == "region")] for key in keys]
    grand_v = next(iter(f.variance[TOTAL]["rows"]), None)
    grand_b = next(iter(f.budget[TOTAL]["rows"]), None) if f.budget else None
    total = ["Total", *cells(grand_v, grand_b, by == "region")] if grand_v or grand_b else None
    if total is not None and by == "region":
        total[1] = None  # the allocation is per region; the API gives no total of it
    return Table(f"By {by}", columns, rows, total)


SPEND_COLUMNS = (
    ("plan", "Planned (year)"),
    ("committed", "Committed (open PO)"),
    ("invoiced", "Invoiced"),
    ("accrued", "Accrued"),
    ("remaining", "Remaining"),
)


def spend_table(f: Figures, month: str) -> Table:
    """By region at the month's end: the year's plan, the open PO balance, invoiced, accrued and remaining."""
    columns = [Column("Region", "text")] + [
        Column(f"Accrued (end of {month})" if key == "accrued" else header, "money") for key, header in SPEND_COLUMNS
    ]
    sums = f.spend["cents"]
    rows = [[key, *(cents[k] for k, _ in SPEND_COLUMNS)] for key, cents in sums["rows"].items()]
    total = ["Total", *(sums["totals"][k] for k, _ in SPEND_COLUMNS)]
    return Table("By region", columns, rows, total)


def accrual_table(f: Figures, month: str) -> Table:
    """The month's accrual by team, what no plan line matches, and its total (reporting currency)."""
    cents = f.accrual["cents"]
    rows: list[list[Any]] = [[row["team"], cents["by_team"][row["team"]]] for row in f.accrual["by_team"]]
    if cents["not_on_a_line"]:
        rows.append(["Not on a plan line", cents["not_on_a_line"]])
    columns = [Column("Team", "text"), Column("Accrued", "money")]
    return Table(f"The accrual of {month} by team", columns, rows, ["Total", cents["total"]])


# (measure, which figure, header); a column of each for a table by region, and by channel (no targets there).
PERFORMANCE_COLUMNS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "region": (
        ("spend", "actual", "Actual spend"),
        ("leads", "actual", "Leads"),
        ("leads", "target", "Target leads"),
        ("pipeline", "actual", "Pipeline"),
        ("pipeline", "target", "Target pipeline"),
        ("revenue", "actual", "Revenue"),
        ("revenue", "target", "Target revenue"),
        ("cost_per_lead", "actual", "Cost per lead"),
        ("cost_per_lead", "target", "Target cost per lead"),
        ("pipeline_roi", "actual", "Pipeline per unit of spend"),
    ),
    "channel": (
        ("spend", "actual", "Actual spend"),
        ("leads", "actual", "Leads"),
        ("leads", "expected", "Expected leads"),
        ("pipeline", "actual", "Pipeline"),
        ("pipeline", "expected", "Expected pipeline"),
        ("revenue", "actual", "Revenue"),
        ("cost_per_lead", "actual", "Cost per lead"),
        ("cost_per_lead", "expected", "Expected cost per lead"),
        ("pipeline_roi", "actual", "Pipeline per unit of spend"),
    ),
}
_UNIT_KINDS = {performance.CENTS: "money", performance.PER_UNIT: "money", performance.COUNT: "count"}


def performance_value(answer: dict[str, Any], measure: str, which: str) -> Any:
    """One figure of a performance answer's row in the cell's units: money in cents, counts and ratios as answered."""
    unit = performance.BY_NAME[measure].unit
    shown = answer["measures"][measure]
    if unit in (performance.CENTS, performance.PER_UNIT):
        return shown["cents"][which]
    return shown[which]


def performance_table(f: Figures, by: str) -> Table:
    """The year's results by region (against the targets) or by channel (against the plan's expectation)."""
    chosen = PERFORMANCE_COLUMNS[by]
    columns = [Column(_label(by), "text")] + [
        Column(header, _UNIT_KINDS.get(performance.BY_NAME[m].unit, "ratio")) for m, _, header in chosen
    ]
    rows = [
        [row[by], *(performance_value(row, m, which) for m, which, _ in chosen)] for row in f.performance[by]["rows"]
    ]
    grand = next(iter(f.performance[TOTAL]["rows"]), None)
    total = ["Total", *(performance_value(grand, m, which) for m, which, _ in chosen)] if grand else None
    return Table(f"By {by}", columns, rows, total)


def key_figures(f: Figures, month: str) -> list[tuple[str, Any, str]]:
    """(label, value, kind) of the Overview: each a total the sheets show, from the same answers."""
    v = next(iter(f.variance[TOTAL]["rows"]), {})
    b = next(iter(f.budget[TOTAL]["rows"]), {}) if f.budget else {}
    p = next(iter(f.performance[TOTAL]["rows"]), None)
    spend = f.spend["cents"]["totals"]
    out: list[tuple[str, Any, str]] = [
        ("Budget for the year", b.get("cents", {}).get("budget"), "money"),
        ("Plan for the year", _cents(v.get("planned")), "money"),
        ("Latest estimate for the year", b.get("cents", {}).get("estimate"), "money"),
        (f"Plan to the end of {month}", _cents(v.get("planned_to_date")), "money"),
        ("Actual spend to date", _cents(v.get("actual")), "money"),
        ("Variance to date (plan less actual)", _cents(v.get("variance")), "money"),
        (f"Committed (open purchase orders) at the end of {month}", spend["committed"], "money"),
        ("Invoiced", spend["invoiced"], "money"),
        (f"Accrued at the end of {month}", f.accrual["cents"]["total"], "money"),
    ]
    if p is not None:
        out += [
            ("Leads (the year's results so far)", performance_value(p, "leads", "actual"), "count"),
            ("Pipeline", performance_value(p, "pipeline", "actual"), "money"),
            ("Revenue", performance_value(p, "revenue", "actual"), "money"),
            ("Cost per lead", performance_value(p, "cost_per_lead", "actual"), "money"),
        ]
    return out


# --- writing it ----------------------------------------------------------------------------------------------


class _Styles:
    """The workbook's cell formats: titles, headers, and each kind of number, plain or in a totals row."""

    def __init__(self, book: xlsxwriter.Workbook, currency: str) -> None:
        self.book = book
        self.numbers = {
            "money": excel_money_format(currency),
            "count": EXCEL_COUNT,
            "ratio": EXCEL_RATIO,
            "percent": EXCEL_PERCENT,
        }
        self.title = book.add_format({"bold": True, "font_size": 14})
        self.subtitle = book.add_format({"bold": True, "font_size": 11})
        self.note = book.add_format({"italic": True, "font_color": "#44546a"})
        self.link = book.add_format({"font_color": "#1f3b63", "underline": 1})
        self.header = book.add_format({"bold": True, "bottom": 1, "text_wrap": True, "valign": "bottom"})
        self.header_num = book.add_format(
            {"bold": True, "bottom": 1, "text_wrap": True, "valign": "bottom", "align": "right"}
        )
        self._cells: dict[tuple[str, bool], Any] = {}

    def cell(self, kind: str, total: bool = False) -> Any:
        key = (kind, total)
        if key not in self._cells:
            spec: dict[str, Any] = {"bold": True, "top": 1} if total else {}
            if kind in self.numbers:
                spec["num_format"] = self.numbers[kind]
            self._cells[key] = self.book.add_format(spec)
        return self._cells[key]


def _value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    return units(value) if kind == "money" else value


def _write_row(sheet: Any, row: int, columns: list[Column], values: list[Any], styles: _Styles, total: bool) -> None:
    for col, (column, value) in enumerate(zip(columns, values, strict=True)):
        style = styles.cell(column.kind, total)
        shown = _value(column.kind, value)
        if shown is None:
            sheet.write_blank(row, col, None, style)
        elif column.kind == "text":
            sheet.write_string(row, col, printable(str(shown)), style)
        else:
            sheet.write_number(row, col, shown, style)


def _write_table(sheet: Any, row: int, table: Table, styles: _Styles) -> int:
    """Write `table` from `row`: its title, header, rows and totals; the row after it (and a blank one)."""
    sheet.write_string(row, 0, table.title, styles.subtitle)
    for col, column in enumerate(table.columns):
        sheet.write_string(row + 1, col, column.header, styles.header if col == 0 else styles.header_num)
    table.first_row = row + 2
    at = row + 2
    for values in table.rows:
        _write_row(sheet, at, table.columns, values, styles, total=False)
        at += 1
    if not table.rows:
        sheet.write_string(at, 0, "No figures.", styles.note)
        at += 1
    if table.total is not None:
        _write_row(sheet, at, table.columns, table.total, styles, total=True)
        at += 1
    return at + 1


def _notes(sheet: Any, row: int, lines: list[str], styles: _Styles) -> int:
    for k, line in enumerate(lines):
        sheet.write_string(row + k, 0, printable(line), styles.note)
    return row + len(lines)


def _chart(
    book: xlsxwriter.Workbook,
    sheet: Any,
    table: Table,
    series: list[tuple[int, str]],
    title: str,
    axis: str,
    kind: str = "column",
) -> Any:
    """A chart of `table`'s rows: one series per (column, colour), the first column as the categories."""
    chart = book.add_chart({"type": kind})
    last = table.first_row + len(table.rows) - 1
    name = sheet.get_name()
    for col, colour in series:
        chart.add_series(
            {
                "name": [name, table.first_row - 1, col],
                "categories": [name, table.first_row, 0, last, 0],
                "values": [name, table.first_row, col, last, col],
                "fill": {"color": colour},
                "border": {"none": True},
            }
        )
    chart.set_title({"name": title, "name_font": {"size": 11}})
    grid = {"visible": True, "line": {"color": "#d9d9d9"}}
    value_axis = {"name": axis, "num_format": "#,##0", "major_gridlines": grid}
    (chart.set_x_axis if kind == "bar" else chart.set_y_axis)(value_axis)
    chart.set_legend({"position": "bottom"})
    chart.set_size({"width": 720, "height": 300})
    return chart


COLOURS = ("#1f3b63", "#7fa7d1", "#c55a11", "#a5a5a5")


def write_pack(
    f: Figures, out: Path, *, formats: Formats, built: dt.datetime, scope: str, pdf_note: str | None = None
) -> Path:
    """The pack's workbook at `out`: Overview, Budget, Spend control and Performance, as written above."""
    schema = f.schema
    cur = schema.config.reporting_currency
    month = formats.month(f.month)
    org = printable(schema.config.org_name)
    version = f"master version {f.view.version}"
    footer = f"{org[:80]}, {schema.calendar.label}, {month}, {version}"
    book = xlsxwriter.Workbook(str(out), {"in_memory": True})
    book.set_properties({"title": f"Management pack: {month}", "company": org, "comments": footer})
    styles = _Styles(book, cur)
    sheets = {name: book.add_worksheet(name) for name, _ in SHEETS}
    for name, sheet in sheets.items():
        printing.setup_xlsxwriter(sheet, footer, None if name == "Overview" else (0, 1))
        sheet.set_column(0, 0, 30)
        sheet.set_column(1, 16, 15)
    _overview(sheets["Overview"], f, styles, formats, month, built, scope, version, pdf_note)
    _budget(book, sheets["Budget"], f, styles, formats, month, cur)
    _spend(book, sheets["Spend control"], f, styles, month, formats, cur)
    _performance(book, sheets["Performance"], f, styles, formats, cur)
    book.close()
    return out


def _overview(
    sheet: Any,
    f: Figures,
    styles: _Styles,
    formats: Formats,
    month: str,
    built: dt.datetime,
    scope: str,
    version: str,
    pdf_note: str | None,
) -> None:
    sheet.set_column(0, 0, 52)
    sheet.set_column(1, 1, 18)
    schema = f.schema
    sheet.write_string(0, 0, f"Management pack: {month}", styles.title)
    closed = f.accrual["closed_at"]
    state = (
        f"The accrual of {month} was closed on {formats.date(closed)}: its figures never change."
        if f.accrual["closed"]
        else f"The accrual of {month} is not closed yet: its figures may still change."
    )
    lines = [
        f"{schema.config.org_name}, {schema.calendar.label}; the figures of {scope}, from {version}.",
        f"Built {formats.moment(built)} UTC; amounts in {schema.config.reporting_currency} at the plan rates.",
        state,
    ]
    if f.budget is None:
        lines.append("No budget baseline is locked yet, so there is no budget or latest estimate to show.")
    if pdf_note:
        lines.append(pdf_note[:1].upper() + pdf_note[1:] + ".")
    row = _notes(sheet, 1, lines, styles) + 1
    sheet.write_string(row, 0, "Key figures", styles.subtitle)
    row += 1
    for label, value, kind in key_figures(f, month):
        sheet.write_string(row, 0, label)
        shown = _value(kind, value)
        if shown is None:
            sheet.write_blank(row, 1, None, styles.cell(kind))
        else:
            sheet.write_number(row, 1, shown, styles.cell(kind))
        row += 1
    row += 1
    sheet.write_string(row, 0, "Contents", styles.subtitle)
    row += 1
    for name, what in SHEETS[1:]:
        sheet.write_url(row, 0, f"internal:'{name}'!A1", styles.link, name)
        sheet.write_string(row, 1, what)
        row += 1


def _budget(book: Any, sheet: Any, f: Figures, styles: _Styles, formats: Formats, month: str, cur: str) -> None:
    sheet.write_string(0, 0, f"Budget, latest estimate and actual spend: {month}", styles.title)
    baseline = f.budget[TOTAL]["baseline"] if f.budget else None
    locked = formats.date(baseline["locked_at"]) if baseline else ""
    lines = [
        f"{cur} at the plan rates. The plan to date runs through {month}; actual spend is the finance system's "
        "to date.",
        (
            f"The budget is baseline {baseline['id']} '{baseline['name']}' (locked {locked}); the "
            "latest estimate is actual spend in the closed months and the plan in the open ones."
            if baseline
            else "No budget baseline is locked yet: finance locks one on the Months and baselines page."
        ),
    ]
    row = _notes(sheet, 1, lines, styles) + 1
    tables = [budget_table(f, by, month) for by in ("region", "channel")]
    for table in tables:
        row = _write_table(sheet, row, table, styles)
    by_region = tables[0]
    if by_region.rows:
        chart = _chart(
            book,
            sheet,
            by_region,
            [(by_region.at(h), c) for h, c in zip(("Budget", "Latest estimate", "Actual"), COLOURS, strict=False)],
            "Budget, latest estimate and actual spend to date, by region",
            cur,
        )
        sheet.insert_chart(row, 0, chart)


def _spend(book: Any, sheet: Any, f: Figures, styles: _Styles, month: str, formats: Formats, cur: str) -> None:
    sheet.write_string(0, 0, f"Spend control and accruals: {month}", styles.title)
    accrual = f.accrual
    entries = formats.count(len(accrual["entries"]))
    lines = [
        f"{cur} at the plan rates, at the end of {month}: the year's plan, the open purchase order balance, "
        "invoiced, accrued and remaining (plan less committed and invoiced).",
        (
            f"The accrual of {month} was closed on {formats.date(accrual['closed_at'])}: {entries} purchase order(s)."
            if accrual["closed"]
            else f"The accrual of {month} is not closed yet: {entries} purchase order(s) accrue as things stand."
        ),
    ]
    if not f.spend["purchase_orders_tracked"]:
        lines.append("No purchase orders are imported yet: committed is what the plans typed.")
    row = _notes(sheet, 1, lines, styles) + 1
    by_region = spend_table(f, month)
    row = _write_table(sheet, row, by_region, styles)
    row = _write_table(sheet, row, accrual_table(f, month), styles)
    if by_region.rows:
        series = [(k + 1, COLOURS[k % len(COLOURS)]) for k in range(4)]
        title = f"Planned, committed, invoiced and accrued at the end of {month}, by region"
        sheet.insert_chart(row, 0, _chart(book, sheet, by_region, series, title, cur))


def _performance(book: Any, sheet: Any, f: Figures, styles: _Styles, formats: Formats, cur: str) -> None:
    year = f.schema.calendar.label
    sheet.write_string(0, 0, f"Performance against targets: {year} so far", styles.title)
    grand = next(iter(f.performance[TOTAL]["rows"]), None)
    covered = grand["measures"]["leads"]["months"] if grand else []
    months = [formats.month(m, f.schema.calendar) for m in covered]
    lines = [
        f"Results from the CRM imports in force ({', '.join(months) if months else 'no month imported yet'}); money in "
        f"{cur}. Targets are per region; unit costs over the months the results cover.",
        "A blank cell has no figure (no results imported, or no target set), never zero.",
    ]
    row = _notes(sheet, 1, lines, styles) + 1
    tables = [performance_table(f, by) for by in ("region", "channel")]
    for table in tables:
        row = _write_table(sheet, row, table, styles)
    by_region, by_channel = tables
    if by_region.rows:
        series = [(by_region.at("Pipeline"), COLOURS[0]), (by_region.at("Target pipeline"), COLOURS[1])]
        chart = _chart(book, sheet, by_region, series, "Pipeline against the target, by region", cur)
        sheet.insert_chart(row, 0, chart)
        row += 16
    if by_channel.rows:
        series = [(by_channel.at("Cost per lead"), COLOURS[0]), (by_channel.at("Expected cost per lead"), COLOURS[1])]
        chart = _chart(book, sheet, by_channel, series, "Cost per lead, by channel", cur, "bar")
        sheet.insert_chart(row, 0, chart)


def pack_file(
    store: Store,
    schema: PlanSchema,
    user: User,
    month: str,
    out: Path,
    *,
    formats: Formats,
    scope: str,
    pdf_note: str | None = None,
) -> Figures:
    """Gather the figures of `month` as `user` may see them and write the pack at `out`; the figures."""
    figures = gather(store, schema, user, month)
    write_pack(figures, out, formats=formats, built=dt.datetime.now(dt.UTC), scope=scope, pdf_note=pdf_note)
    return figures
