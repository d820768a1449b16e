"""The master workbook finance consolidates: every accepted line, the rollup, the variance and a chart.

The small sheets are written with xlsxwriter; the Lines sheet's rows arrive as deflated
segments rendered in parallel by `lines_segment` (see `sheet_templates.xlsx_stream`).
Amounts are written from integer cents, so the workbook shows exactly what was summed.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import xlsxwriter

from sheet_templates import printing
from sheet_templates.cells import EXCEL_EPOCH, column_letter
from sheet_templates.config import QUARTERS
from sheet_templates.errors import PlansheetError
from sheet_templates.formatting import EXCEL_COUNT, EXCEL_PERCENT, EXCEL_RATIO, excel_money_format
from sheet_templates.schema import ColumnType, PlanSchema
from sheet_templates.text import printable, printable_value
from sheet_templates.xlsx_stream import Segment, deflate_segment, splice_sheet, xml_text

LINES_SHEET = "Lines"
SHEETS = ("Summary", LINES_SHEET, "Rollup", "Variance", "Chart", "Issues")
# xlsxwriter numbers cell formats in the order the sheets first use them: the Summary sheet's
# title and header, then the Lines sheet's column formats (dates, money, counts, in schema
# order). The streamed Lines rows refer to these numbers; `_write_skeleton` checks them.
STYLE_DATE, STYLE_MONEY, STYLE_COUNT = 3, 4, 5


@dataclass(frozen=True, slots=True)
class Table:
    """A table of values for a sheet of its own: a title, a header and rows, each column's kind."""

    title: str
    header: Sequence[str]
    kinds: Sequence[str]  # per column: "text", "money" (cents), "count" (hundredths) or "ratio"
    rows: Sequence[Sequence[object]]  # None is a blank cell: no data, never zero


@dataclass(frozen=True, slots=True)
class ValuesSheet:
    """A sheet of tables computed elsewhere (the performance figures), written after the others."""

    name: str
    note: str
    tables: Sequence[Table]


@dataclass(frozen=True, slots=True)
class LineColumn:
    """A column of the Lines sheet: its header, the table column it shows and how."""

    header: str
    source: str
    kind: str  # "text", "int", "money", "count", "date"
    width: float = 12


def line_columns(schema: PlanSchema) -> list[LineColumn]:
    kinds = {ColumnType.MONEY: "money", ColumnType.COUNT: "count", ColumnType.DATE: "date"}
    cols = [LineColumn("Source file", "source", "text", 18), LineColumn("Source row", "_row", "int", 8)]
    cols += [LineColumn(c.label, c.name, kinds.get(c.type, "text"), c.width) for c in schema.input_columns]
    cur = schema.config.reporting_currency
    cols.append(LineColumn("Planned total", "planned_total", "money", 14))
    cols += [LineColumn(f"{q} planned ({cur})", f"{q.lower()}_reporting", "money", 14) for q in QUARTERS]
    return cols


def lines_segment(table: pd.DataFrame, schema: PlanSchema) -> Segment:
    """Render the rows of a plan table (with `source`, `planned_total` and `qN_reporting`) as a deflated segment.

    One format string renders a whole row; text cells are rendered once per distinct value.
    """
    patterns, columns = [], []
    for col in line_columns(schema):
        values = table[col.source].to_numpy()
        if col.kind == "text":
            codes, uniques = pd.factorize(values.astype(object))
            cells = [f'<c t="inlineStr"><is><t>{xml_text(str(v))}</t></is></c>' if v != "" else "<c/>" for v in uniques]
            patterns.append("%s")
            columns.append(np.array([*cells, "<c/>"], dtype=object)[codes].tolist())
        elif col.kind == "money":
            patterns.append(f'<c s="{STYLE_MONEY}"><v>%r</v></c>')
            columns.append((values.astype(np.int64) / 100).tolist())
        elif col.kind == "date":
            days = (values.astype("datetime64[D]") - np.datetime64(EXCEL_EPOCH, "D")).astype(np.int64)
            nat = np.isnat(values.astype("datetime64[D]"))
            patterns.append("%s")
            columns.append(
                [
                    ("<c/>" if missing else f'<c s="{STYLE_DATE}"><v>{d}</v></c>')
                    for d, missing in zip(days.tolist(), nat.tolist(), strict=True)
                ]
            )
        else:
            style = f' s="{STYLE_COUNT}"' if col.kind == "count" else ""
            patterns.append(f"<c{style}><v>%d</v></c>")
            columns.append(values.astype(np.int64).tolist())
    row = "<row>" + "".join(patterns) + "</row>"  # %-formatting: a third faster than str.format here
    xml = "".join([row % cells for cells in zip(*columns, strict=True)])
    return deflate_segment(xml.encode(), rows=len(table))


@dataclass
class MasterContent:
    """What goes into the master workbook besides the streamed lines."""

    schema: PlanSchema
    segments: Sequence[Segment]
    rollup: pd.DataFrame  # region, channel, Q1..Q4 in cents (reporting currency)
    by_region: pd.DataFrame  # region, Q1..Q4, planned_to_date, committed, actual (cents, reporting currency), lines
    files: list[dict[str, object]] = field(default_factory=list)  # file, status, lines, errors, warnings
    issues: list[dict[str, object]] = field(default_factory=list)  # Issue.to_dict() rows
    as_of: dt.date = field(default_factory=dt.date.today)
    closed_months: int = 0  # fiscal months closed by `as_of`: what "to date" covers
    # region -> quarter -> reporting cents in force; None: the organisation file's allocations
    allocations: Mapping[str, Mapping[str, int]] | None = None
    extra: Sequence[ValuesSheet] = ()  # sheets after Issues (the service's Performance sheet)
    version: int | None = None  # the service's master version the workbook shows (None: consolidated from files)

    def allocation(self, region: str, quarter: str) -> int:
        """The region's allocation for a quarter in reporting cents (0 when none is set)."""
        if self.allocations is not None:
            return int(self.allocations.get(region, {}).get(quarter, 0))
        return int(self.schema.config.allocation(region, quarter) * 100)


def write_master(path: Path, content: MasterContent) -> Path:
    """Write the master workbook to `path` atomically (a temporary file renamed into place)."""
    if path.is_dir():
        raise PlansheetError(f"{path} is a folder; name the master workbook file, e.g. {path / 'master.xlsx'}")
    try:
        return _write_atomically(path, content)
    except OSError as exc:
        raise PlansheetError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _write_atomically(path: Path, content: MasterContent) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, skeleton = tempfile.mkstemp(suffix=".xlsx", dir=path.parent)
    os.close(fd)
    fd, final = tempfile.mkstemp(suffix=".xlsx.part", dir=path.parent)
    os.close(fd)
    try:
        last_cell = _write_skeleton(Path(skeleton), content)
        splice_sheet(
            Path(skeleton),
            Path(final),
            f"xl/worksheets/sheet{SHEETS.index(LINES_SHEET) + 1}.xml",
            content.segments,
            last_cell,
        )
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(final, 0o666 & ~umask)  # temporary files are private; the master is not
        os.replace(final, path)
    finally:
        for leftover in (skeleton, final):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return path


# The rows each sheet repeats at the top of every printed page (first, last; 0-based); others: a table's title rows.
_HEADER_ROWS = {"Summary": (3, 3), LINES_SHEET: (0, 0), "Rollup": (2, 2), "Variance": (2, 2), "Issues": (0, 0)}


def _print_setup(sheet: xlsxwriter.worksheet.Worksheet, content: MasterContent, header_rows: tuple[int, int]) -> None:
    """Landscape, one page wide (as many pages tall as it needs), the header repeated, a footer saying what it is."""
    version = f"master version {content.version}" if content.version is not None else "consolidated from plan files"
    org = printable(content.schema.config.org_name)[:80]
    printing.setup_xlsxwriter(sheet, f"{org}, {content.schema.calendar.label}, {version}", header_rows)


def _write_skeleton(path: Path, content: MasterContent) -> str:
    schema, cfg = content.schema, content.schema.config
    cur = cfg.reporting_currency
    # User text is never turned into formulas or links, whatever it starts with, and passes through
    # `printable`: a stored plan from before the control-character rule must not break the workbook.
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    money = wb.add_format({"num_format": excel_money_format(cur)})
    count = wb.add_format({"num_format": EXCEL_COUNT})
    date = wb.add_format({"num_format": "yyyy-mm-dd"})
    bold = wb.add_format({"bold": True})
    head = wb.add_format({"bold": True, "font_color": "#FFFFFF", "bg_color": "#1F4E78", "text_wrap": True})
    pct = wb.add_format({"num_format": EXCEL_PERCENT})
    red = wb.add_format({"bg_color": "#F8CBAD"})
    green = wb.add_format({"bg_color": "#C6EFCE"})
    title = wb.add_format({"bold": True, "font_size": 14})
    sheets = {name: wb.add_worksheet(name) for name in SHEETS}
    wb.set_properties(
        {"title": f"{cfg.org_name} master marketing budget {schema.calendar.label}", "author": "Plansheet"}
    )

    # Lines: header only; the rows are spliced in afterwards.
    lines = sheets[LINES_SHEET]
    cols = line_columns(schema)
    formats = {"money": money, "count": count, "date": date}
    for i, col in enumerate(cols):
        lines.write_string(0, i, col.header, head)
        lines.set_column(i, i, col.width, formats.get(col.kind))
    n_lines = sum(s.rows for s in content.segments)
    lines.freeze_panes(1, 2)
    last_cell = f"{column_letter(len(cols))}{n_lines + 1}"
    lines.autofilter(0, 0, max(n_lines, 1), len(cols) - 1)

    # Rollup: region x channel by fiscal quarter.
    ws = sheets["Rollup"]
    ws.write(0, 0, f"Planned spend by region, channel and fiscal quarter ({cur}, plan rates)", title)
    heads = ["Region", "Channel", *QUARTERS, "Total"]
    ws.write_row(2, 0, heads, head)
    r = 3
    for rec in content.rollup.itertuples(index=False):
        ws.write_row(r, 0, [printable(str(rec.region)), printable(str(rec.channel))])
        amounts = [getattr(rec, q) / 100 for q in QUARTERS]
        ws.write_row(r, 2, amounts, money)
        ws.write_formula(r, 6, f"=SUM(C{r + 1}:F{r + 1})", money, sum(amounts))
        r += 1
    ws.write(r, 0, "Total", bold)
    for c in range(2, 7):
        letter = column_letter(c + 1)
        ws.write_formula(
            r,
            c,
            f"=SUM({letter}4:{letter}{r})",
            money,
            content.rollup[QUARTERS[c - 2]].sum() / 100
            if c < 6
            else content.rollup[list(QUARTERS)].to_numpy().sum() / 100,
        )
    ws.set_column(0, 1, 16)
    ws.set_column(2, 6, 15)
    ws.freeze_panes(3, 2)

    # Variance: allocation vs plan by quarter; plan to date vs actual (under-spend is favourable).
    ws = sheets["Variance"]
    ws.write(0, 0, f"Plan against allocation and actual spend by region ({cur})", title)
    months = schema.calendar.months
    to_date = (
        f"to date: the {content.closed_months} fiscal months closed by {content.as_of:%Y-%m-%d} "
        f"({months[0].label} to {months[content.closed_months - 1].label})"
        if content.closed_months
        else f"to date: no fiscal month had closed by {content.as_of:%Y-%m-%d}"
    )
    ws.write(1, 0, f"Plan {to_date}. Variance = plan - actual; under-spend is favourable.")
    heads = [
        "Region",
        *(f"{q} allocation" for q in QUARTERS),
        *(f"{q} planned" for q in QUARTERS),
        "Allocation",
        "Planned",
        "Allocation - planned",
        "Planned % of allocation",
        "Planned to date",
        "Committed",
        "Actual",
        "Plan to date - actual",
        "Variance %",
        "Favourable",
        "Plan lines",
    ]
    ws.write_row(2, 0, heads, head)
    r = 3
    totals = dict.fromkeys((*range(1, 12), 13, 14, 15, 16), 0)  # column -> cents, summed as the rows are written
    for rec in content.by_region.itertuples(index=False):
        alloc_cents = [content.allocation(rec.region, q) for q in QUARTERS]
        planned_cents = [int(getattr(rec, q)) for q in QUARTERS]
        row_cents = [*alloc_cents, *planned_cents, sum(alloc_cents), sum(planned_cents)]
        row_cents.append(row_cents[8] - row_cents[9])
        for c, cents in zip(range(1, 12), row_cents, strict=True):
            totals[c] += cents
        totals[13] += int(rec.planned_to_date)
        totals[14] += int(rec.committed)
        totals[15] += int(rec.actual)
        totals[16] += int(rec.planned_to_date) - int(rec.actual)
        alloc = [content.allocation(rec.region, q) / 100 for q in QUARTERS]
        planned = [getattr(rec, q) / 100 for q in QUARTERS]
        plan_to_date, actual = rec.planned_to_date / 100, rec.actual / 100
        row = r + 1
        ws.write(r, 0, printable(str(rec.region)))
        ws.write_row(r, 1, alloc, money)
        ws.write_row(r, 5, planned, money)
        ws.write_formula(r, 9, f"=SUM(B{row}:E{row})", money, sum(alloc))
        ws.write_formula(r, 10, f"=SUM(F{row}:I{row})", money, sum(planned))
        ws.write_formula(r, 11, f"=J{row}-K{row}", money, sum(alloc) - sum(planned))
        ws.write_formula(r, 12, f"=IF(J{row}=0,0,K{row}/J{row})", pct, sum(planned) / sum(alloc) if sum(alloc) else 0)
        ws.write(r, 13, plan_to_date, money)
        ws.write(r, 14, rec.committed / 100, money)
        ws.write(r, 15, actual, money)
        variance = plan_to_date - actual
        ws.write_formula(r, 16, f"=N{row}-P{row}", money, variance)
        ws.write_formula(r, 17, f"=IF(N{row}=0,0,Q{row}/N{row})", pct, variance / plan_to_date if plan_to_date else 0)
        ws.write_formula(
            r,
            18,
            f'=IF(Q{row}>=0,"favourable","unfavourable")',
            None,
            "favourable" if variance >= 0 else "unfavourable",
        )
        lines = getattr(rec, "lines", None)  # accepted plan lines of the region, when known
        if lines is not None:
            ws.write(r, 19, int(lines) if lines else "no accepted plan")
        r += 1
    if r > 3:  # totals of the money columns, each with its value (sums of the cents written above)
        ws.write(r, 0, "Total", bold)
        for c in (*range(1, 12), 13, 14, 15, 16):
            letter = column_letter(c + 1)
            ws.write_formula(r, c, f"=SUM({letter}4:{letter}{r})", money, totals[c] / 100)
        allocated, planned_all, to_date_all = totals[9], totals[10], totals[13]
        ws.write_formula(
            r, 12, f"=IF(J{r + 1}=0,0,K{r + 1}/J{r + 1})", pct, planned_all / allocated if allocated else 0
        )
        ws.write_formula(
            r, 17, f"=IF(N{r + 1}=0,0,Q{r + 1}/N{r + 1})", pct, totals[16] / to_date_all if to_date_all else 0
        )
        ws.conditional_format(3, 11, r - 1, 11, {"type": "cell", "criteria": "<", "value": 0, "format": red})
        ws.conditional_format(3, 16, r - 1, 16, {"type": "cell", "criteria": "<", "value": 0, "format": red})
        ws.conditional_format(3, 16, r - 1, 16, {"type": "cell", "criteria": ">", "value": 0, "format": green})
    ws.set_column(0, 0, 12)
    ws.set_column(1, 19, 14)
    ws.freeze_panes(3, 1)

    # Chart: planned against allocation per region.
    n_regions = len(content.by_region)
    if n_regions:
        chart = wb.add_chart({"type": "column"})
        for name, column, colour in (("Allocation", 9, "#A6A6A6"), ("Planned", 10, "#1F4E78")):
            chart.add_series(
                {
                    "name": name,
                    "categories": ["Variance", 3, 0, 2 + n_regions, 0],
                    "values": ["Variance", 3, column, 2 + n_regions, column],
                    "fill": {"color": colour},
                }
            )
        chart.set_title({"name": f"Planned spend against allocation, {schema.calendar.label} ({cur})"})
        chart.set_y_axis({"num_format": "#,##0"})
        chart.set_size({"width": 860, "height": 420})
        sheets["Chart"].insert_chart("B2", chart)
    else:
        sheets["Chart"].write(1, 1, "No plan was accepted, so there is nothing to chart.")

    # Summary and issues.
    ws = sheets["Summary"]
    ws.write(0, 0, f"{cfg.org_name}: master marketing budget, {schema.calendar.label}", title)
    ws.write(
        1,
        0,
        f"Consolidated {dt.datetime.now():%Y-%m-%d %H:%M} from {len(content.files)} plan files; "
        f"amounts in {cur} at plan rates.",
    )
    ws.write_row(3, 0, ["File", "Status", "Lines", "Errors", "Warnings"], head)
    for i, f in enumerate(content.files, start=4):
        ws.write_row(i, 0, [printable_value(f[k]) for k in ("file", "status", "lines", "errors", "warnings")])
    ws.set_column(0, 0, 34)
    ws.set_column(1, 4, 12)
    ws = sheets["Issues"]
    heads = ["File", "Severity", "Rule", "Location", "Message"]
    ws.write_row(0, 0, heads, head)
    for i, issue in enumerate(content.issues, start=1):
        ws.write_row(i, 0, [printable_value(issue[k] or "") for k in ("file", "severity", "rule", "location")])
        ws.write_string(i, 4, printable(str(issue["message"])))  # as text, whatever it starts with
    ws.set_column(0, 0, 28)
    ws.set_column(1, 3, 18)
    ws.set_column(4, 4, 100)
    ws.autofilter(0, 0, max(len(content.issues), 1), len(heads) - 1)
    ratio = wb.add_format({"num_format": EXCEL_RATIO})
    units = {"money": money, "count": count, "ratio": ratio}
    for extra in content.extra:
        ws = wb.add_worksheet(extra.name)
        ws.write(0, 0, extra.note)
        r = 2
        for table in extra.tables:
            ws.write(r, 0, printable(table.title), title)
            ws.write_row(r + 1, 0, list(table.header), head)
            for values in table.rows:
                r_out = r + 2
                for c, (value, kind) in enumerate(zip(values, table.kinds, strict=True)):
                    if value is None:
                        continue
                    if kind == "text":
                        ws.write_string(r_out, c, printable(str(value)))
                    elif kind in ("money", "count"):
                        ws.write_number(r_out, c, int(value) / 100, units[kind])
                    else:
                        ws.write_number(r_out, c, float(value), ratio)
                r += 1
            r += 4
        ws.set_column(0, 1, 16)
        ws.set_column(2, 40, 13)
    for sheet in wb.worksheets():
        _print_setup(sheet, content, header_rows=_HEADER_ROWS.get(sheet.name, (2, 3)))
    wb.close()
    if (money.xf_index, count.xf_index, date.xf_index) != (STYLE_MONEY, STYLE_COUNT, STYLE_DATE):
        raise RuntimeError(
            f"xlsxwriter numbered the cell formats differently ({money.xf_index}, {count.xf_index}, "
            f"{date.xf_index}); update STYLE_* in master_workbook"
        )
    return last_cell
