"""Build the regional Excel plan template (`plan-<REGION>.xlsx`) from the schema with openpyxl.

The workbook has four sheets: Instructions; Plan (an Excel table with dropdowns, formats,
unlocked input cells and locked formula columns); Summary (planned spend by channel and fiscal
quarter against the region's allocation); Lists (the dropdown values and plan FX rates).
Protection has no password: it stops accidents, not people.

The Summary computes from the input cells (months, currency, channel) over the table's rows, at
the money grain of `addin.reporting` (each line's each month at the plan rate, to the cent), so
rows a planner inserts inside the table count even though they have no formulas. The defined
name `PS_PLAN_ROWS` spans the same rows; the reader refuses lines outside it, which the Summary
could not see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.filters import AutoFilter
from openpyxl.worksheet.table import Table, TableColumn, TableFormula, TableStyleInfo

from sheet_templates import cached_values, printing
from sheet_templates.cells import column_letter, excel_serial
from sheet_templates.config import QUARTERS
from sheet_templates.errors import PlansheetError
from sheet_templates.formatting import EXCEL_COUNT, EXCEL_PERCENT, excel_money_format
from sheet_templates.money import to_cents
from sheet_templates.plan_figures import PlanFigures
from sheet_templates.schema import (
    FIRST_DATA_ROW,
    HEADER_ROW,
    INSTRUCTIONS_SHEET,
    LISTS_SHEET,
    MAX_TEXT,
    NAME_BASED_ON,
    NAME_FISCAL_YEAR,
    NAME_REGION,
    NAME_TEMPLATE_ID,
    NAME_TEMPLATE_VERSION,
    PLAN_SHEET,
    SUMMARY_SHEET,
    Column,
    ColumnType,
    PlanSchema,
)
from sheet_templates.text import printable_value

MONEY_FORMAT = excel_money_format()  # accounting: negatives in parentheses, as finance writes them
COUNT_FORMAT = EXCEL_COUNT
DATE_FORMAT = "yyyy-mm-dd"
PLAN_TABLE = "PlanLines"
FX_RATES_NAME = "ps_fx_rates"
ALLOCATION_NAME = "ps_allocation_total"
# The Plan rows the table numbered (Plan!$A$2:$A$<last>). Excel and LibreOffice grow it when rows are
# inserted inside it; the reader refuses lines outside it because the Summary does not count them.
NAME_PLAN_ROWS = "PS_PLAN_ROWS"
# A reforecast template's closed months ("m01,m02,m03"): their cells show actual spend, locked, and are
# never read back as plan. And the reforecast cycle it was made for.
NAME_CLOSED = "PS_CLOSED"
NAME_CYCLE = "PS_CYCLE"

_HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
_HEADER_FONT = Font(bold=True, color="FFFFFF")
_FORMULA_FILL = PatternFill("solid", fgColor="EDEDED")
_CLOSED_FILL = PatternFill("solid", fgColor="DDEBF7")  # a closed month: actual spend, shown and locked
_RED = PatternFill("solid", fgColor="F8CBAD")
_GREEN = PatternFill("solid", fgColor="C6EFCE")
_UNLOCKED = Protection(locked=False)
_FORMATS = {ColumnType.MONEY: MONEY_FORMAT, ColumnType.COUNT: COUNT_FORMAT, ColumnType.DATE: DATE_FORMAT}


def template_filename(region: str) -> str:
    return f"plan-{region}.xlsx"


def build_templates(schema: PlanSchema, out_dir: Path, regions: Iterable[str] | None = None) -> list[Path]:
    """Write one template per region into `out_dir` and return their paths."""
    regions = list(regions) if regions else list(schema.config.regions)
    _check_regions(schema, regions)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for region in regions:
        path = out_dir / template_filename(region)
        build_template(schema, region, path)
        paths.append(path)
    return paths


def build_template(
    schema: PlanSchema,
    region: str,
    path: Path,
    lines: Iterable[Mapping[str, Any]] = (),
    spare_rows: int | None = None,
    *,
    based_on: int | None = None,
    allocations: Mapping[str, int] | None = None,
    team: str | None = None,
    closed: Iterable[str] = (),
    cycle: tuple[int, str] | None = None,
    booked: bool = True,
) -> Path:
    """Write the region's template to `path`, pre-filled with `lines` (dicts keyed by column name).

    A reforecast template names its `closed` months (m01..) and its `cycle` (id, name): those
    months' cells hold what `lines` gives for them (the actual spend) in locked, tinted cells, and
    the reader never takes them as plan. `booked` False: the finance export has no months, so the
    closed cells show the approved plan and the Summary stays planned spend, not an estimate.

    The table always has at least `config.template_rows` rows, and `spare_rows` empty
    pre-numbered rows after the pre-filled lines. `allocations` is the region's allocation per
    quarter ("Q1".."Q4") in reporting cents; None shows the organisation file's. Empty rows are
    numbered for `team` when one is given (`EMEA-ENTERPRISE-0042`), so the IDs a team's template
    hands out are not another team's of the region; else for the region (`EMEA-0042`).
    """
    _check_regions(schema, [region])
    lines = list(lines)
    keys = [c.name for c in schema.month_columns]
    closed = [m for m in keys if m in set(closed)]
    if closed != keys[: len(closed)]:
        raise ValueError(f"a reforecast closes the year's first months (m01 on), not {', '.join(closed)}")
    spare = schema.config.template_rows if spare_rows is None else spare_rows
    n_rows = max(schema.config.template_rows, len(lines) + spare) if spare_rows is None else len(lines) + spare
    n_rows = max(n_rows, 1)
    wb = Workbook()
    instructions = wb.active
    instructions.title = INSTRUCTIONS_SHEET
    plan = wb.create_sheet(PLAN_SHEET)
    summary = wb.create_sheet(SUMMARY_SHEET)
    lists = wb.create_sheet(LISTS_SHEET)

    rate_cells = _write_lists(wb, lists, schema)
    figures = PlanFigures(schema, lines, closed if booked else [])
    values: dict[str, dict[str, Any]] = {PLAN_SHEET: {}, SUMMARY_SHEET: {}}
    _write_plan(wb, plan, schema, region, lines, n_rows, team or region, closed, figures, values[PLAN_SHEET])
    units = _allocation_units(schema, region, allocations)
    _write_summary(
        wb,
        summary,
        schema,
        region,
        units,
        rate_cells,
        n_rows,
        closed if booked else None,
        figures,
        values[SUMMARY_SHEET],
    )
    _write_instructions(instructions, schema, region, closed, cycle, booked)
    what = f"{schema.config.org_name}, {region} {'reforecast' if closed else 'plan'}, {schema.calendar.label}"
    printing.setup_openpyxl(instructions, what, None)
    printing.setup_openpyxl(plan, what, (HEADER_ROW, HEADER_ROW))
    printing.setup_openpyxl(summary, what, (_SUMMARY_HEADER_ROW, _SUMMARY_HEADER_ROW))
    printing.setup_openpyxl(lists, what, (1, 1))
    _write_metadata(wb, schema, region)
    if based_on is not None:
        wb.defined_names[NAME_BASED_ON] = DefinedName(NAME_BASED_ON, attr_text=str(int(based_on)))
    if closed:
        wb.defined_names[NAME_CLOSED] = DefinedName(NAME_CLOSED, attr_text=f'"{",".join(closed)}"')
    if cycle is not None:
        wb.defined_names[NAME_CYCLE] = DefinedName(NAME_CYCLE, attr_text=str(int(cycle[0])))

    wb.active = wb.sheetnames.index(PLAN_SHEET)
    wb.properties.title = f"{schema.config.org_name} marketing plan {region} {schema.calendar.label}"
    wb.properties.creator = "Plansheet"
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return cached_values.fill(path, values)  # every formula carries the value it computes, for readers that do not


_SUMMARY_HEADER_ROW = 4


def _check_regions(schema: PlanSchema, regions: list[str]) -> None:
    unknown = [r for r in regions if r not in schema.config.regions]
    if unknown:
        raise PlansheetError(
            f"unknown region {', '.join(unknown)}; the configured regions are {', '.join(schema.config.regions)}"
        )


def _allocation_units(schema: PlanSchema, region: str, allocations: Mapping[str, int] | None) -> list[Decimal]:
    """The allocation per quarter in reporting units: the given cents, or the organisation file's."""
    if allocations is None:
        return [schema.config.allocation(region, q) for q in QUARTERS]
    unknown = sorted(set(allocations) - set(QUARTERS))
    if unknown:
        raise PlansheetError(f"allocations are per quarter (Q1 to Q4), not {', '.join(unknown)}")
    return [Decimal(int(allocations.get(q, 0))) / 100 for q in QUARTERS]


def _write_metadata(wb: Workbook, schema: PlanSchema, region: str) -> None:
    meta = schema.meta_for(region)
    for name, value in (
        (NAME_TEMPLATE_ID, f'"{meta.template_id}"'),
        (NAME_TEMPLATE_VERSION, f'"{meta.version}"'),
        (NAME_REGION, f'"{meta.region}"'),
        (NAME_FISCAL_YEAR, str(meta.fiscal_year)),
    ):
        wb.defined_names[name] = DefinedName(name, attr_text=value)


def _write_lists(wb: Workbook, ws: Any, schema: PlanSchema) -> dict[str, str]:
    """One column per dropdown list, each behind a defined name, and the plan FX rate table.

    Returns each currency's rate cell (`Lists!$H$3`) for the Summary's formulas.
    """
    list_columns = [c for c in schema.columns if c.list_name]
    for i, col in enumerate(list_columns, start=1):
        letter = column_letter(i)
        ws.cell(1, i, col.label).font = Font(bold=True)
        for r, value in enumerate(col.choices or (), start=2):
            ws.cell(r, i, value)
        last = 1 + len(col.choices or ())
        wb.defined_names[col.list_name] = DefinedName(
            col.list_name, attr_text=f"{LISTS_SHEET}!${letter}$2:${letter}${last}"
        )
        ws.column_dimensions[letter].width = max(14, len(col.label) + 2)
    rate_col = len(list_columns) + 2
    cur_letter, rate_letter = column_letter(rate_col), column_letter(rate_col + 1)
    ws.cell(1, rate_col, "Currency").font = Font(bold=True)
    ws.cell(1, rate_col + 1, f"Plan rate to {schema.config.reporting_currency}").font = Font(bold=True)
    rates = schema.config.plan_rates
    rate_cells = {}
    for r, (code, rate) in enumerate(rates.items(), start=2):
        ws.cell(r, rate_col, code)
        ws.cell(r, rate_col + 1, float(rate)).number_format = "0.0000####"
        rate_cells[code] = f"{LISTS_SHEET}!${rate_letter}${r}"
    wb.defined_names[FX_RATES_NAME] = DefinedName(
        FX_RATES_NAME, attr_text=f"{LISTS_SHEET}!${cur_letter}$2:${rate_letter}${1 + len(rates)}"
    )
    ws.column_dimensions[rate_letter].width = 20
    ws.protection.sheet = True
    return rate_cells


def _write_plan(
    wb: Workbook,
    ws: Any,
    schema: PlanSchema,
    region: str,
    lines: list[Mapping[str, Any]],
    n_rows: int,
    id_prefix: str,
    closed: list[str] | None,
    figures: PlanFigures,
    values: dict[str, Any],
) -> None:
    last_row = HEADER_ROW + n_rows
    shut = set(closed or ())
    for col in schema.columns:
        cell = ws.cell(HEADER_ROW, col.index, col.label)
        cell.font, cell.fill = _HEADER_FONT, _HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        ws.column_dimensions[col.letter].width = col.width
    ws.row_dimensions[HEADER_ROW].height = 32

    key, region_col = schema["line_id"], schema["region"]
    for i in range(n_rows):
        row = FIRST_DATA_ROW + i
        line = lines[i] if i < len(lines) else {}
        for col in schema.columns:
            cell = ws.cell(row, col.index)
            if col.is_input:
                value = line.get(col.name)
                if value is None and col is key:
                    value = f"{id_prefix}-{i + 1:04d}"
                elif value is None and col is region_col:
                    value = region
                cell.value = _excel_value(value)
                if isinstance(value, str) and value.startswith("="):
                    cell.data_type = "s"  # text that looks like a formula stays text
                if col.name in shut:
                    cell.fill = _CLOSED_FILL  # locked: the sheet's protection keeps it as shown
                else:
                    cell.protection = _UNLOCKED
            else:
                cell.value = col.formula.format(row=row)
                cell.fill = _FORMULA_FILL
                values[cell.coordinate] = figures.row_value(i, col)
            fmt = _FORMATS.get(col.type) or (MONEY_FORMAT if col.type is ColumnType.FORMULA else None)
            if fmt:
                cell.number_format = fmt

    last_letter = schema.columns[-1].letter
    ref = f"A{HEADER_ROW}:{last_letter}{last_row}"
    table = Table(displayName=PLAN_TABLE, ref=ref, autoFilter=AutoFilter(ref=ref))
    # Calculated columns: Excel fills the formula columns of rows inserted inside the table.
    table.tableColumns = [
        TableColumn(
            id=col.index,
            name=col.label,
            calculatedColumnFormula=None if col.is_input else TableFormula(attr_text=_row_formula(col)),
        )
        for col in schema.columns
    ]
    table.tableStyleInfo = TableStyleInfo(name="TableStyleLight9", showRowStripes=True)
    ws.add_table(table)
    wb.defined_names[NAME_PLAN_ROWS] = DefinedName(
        NAME_PLAN_ROWS, attr_text=f"{PLAN_SHEET}!$A${FIRST_DATA_ROW}:$A${last_row}"
    )
    ws.freeze_panes = ws.cell(FIRST_DATA_ROW, schema["region"].index).coordinate

    for col in schema.input_columns:
        dv = _validation_for(col, schema)
        if dv is not None:
            ws.add_data_validation(dv)
            dv.add(f"{col.letter}{FIRST_DATA_ROW}:{col.letter}{last_row}")

    variance = schema["variance"].letter
    rng = f"{variance}{FIRST_DATA_ROW}:{variance}{last_row}"
    ws.conditional_formatting.add(rng, CellIsRule(operator="lessThan", formula=["0"], fill=_RED))
    ws.conditional_formatting.add(rng, CellIsRule(operator="greaterThan", formula=["0"], fill=_GREEN))
    _protect(ws)


def _row_formula(col: Column) -> str:
    """A formula column's formula for the first data row, without "=", as a table's calculated column keeps it."""
    return (col.formula or "").format(row=FIRST_DATA_ROW).removeprefix("=")


def _validation_for(col: Column, schema: PlanSchema) -> DataValidation | None:
    cal = schema.calendar
    common = {"allow_blank": True, "showErrorMessage": True, "errorStyle": "stop"}
    if col.type is ColumnType.CHOICE:
        return DataValidation(
            type="list",
            formula1=col.list_name,
            error=f"Choose a {col.label.lower()} from the list.",
            errorTitle=col.label,
            **common,
        )
    if col.type is ColumnType.MONEY:
        return DataValidation(
            type="decimal",
            operator="greaterThanOrEqual",
            formula1="0",
            error="Enter an amount of zero or more.",
            errorTitle=col.label,
            **common,
        )
    if col.type is ColumnType.COUNT:
        return DataValidation(
            type="whole",
            operator="greaterThanOrEqual",
            formula1="0",
            error="Enter a whole number of zero or more.",
            errorTitle=col.label,
            **common,
        )
    if col.type is ColumnType.DATE:
        start, end = _serial(cal.start), _serial(cal.end)
        return DataValidation(
            type="date",
            operator="between",
            formula1=str(start),
            formula2=str(end),
            error=f"Enter a date inside {cal.label} ({cal.start:%Y-%m-%d} to {cal.end:%Y-%m-%d}).",
            errorTitle=col.label,
            **common,
        )
    if col.type in (ColumnType.TEXT, ColumnType.ID):
        return DataValidation(
            type="textLength",
            operator="lessThanOrEqual",
            formula1=str(MAX_TEXT),
            error=f"Keep {col.label.lower()} to {MAX_TEXT} characters.",
            errorTitle=col.label,
            **common,
        )
    return None


def _planned_formula(
    schema: PlanSchema,
    rate_cells: Mapping[str, str],
    last: int,
    quarter: int,
    channel: str,
    closed: list[str] | None = None,
) -> str:
    """Planned spend of one quarter in reporting units, from the input cells of the table's rows.

    For each currency, the lines in it (and in `channel`, a cell, unless empty) contribute each
    month of the quarter at its plan rate rounded to the cent: the money grain of
    `addin.reporting`. SUMPRODUCT over plain ranges computes the same in Excel and LibreOffice,
    and the ranges grow with rows inserted inside the table.

    A reforecast's `closed` months (m01 on, holding actual spend) are converted as the read model
    converts actual spend by month: the spend to the end of a month converted and rounded once,
    each month the difference. So the Summary's latest estimate is the service's to the cent.
    """

    def rows(letter: str) -> str:
        return f"{PLAN_SHEET}!${letter}${FIRST_DATA_ROW}:${letter}${last}"

    columns = list(schema.month_columns)
    shut = set(closed or ())
    months = [c for c in columns if c.quarter == quarter]
    open_months = [c.letter for c in months if c.name not in shut]
    closed_here = [c for c in months if c.name in shut]
    chosen = f"({rows(schema['channel'].letter)}={channel})*" if channel else ""
    terms = []
    for code, rate in rate_cells.items():
        parts = [f"ROUND({rows(m)}*{rate},2)" for m in open_months]
        if closed_here:
            first, end = columns.index(closed_here[0]), columns.index(closed_here[-1]) + 1
            through = "+".join(rows(c.letter) for c in columns[:end])
            parts.append(f"ROUND(({through})*{rate},2)")
            if first:
                before = "+".join(rows(c.letter) for c in columns[:first])
                parts.append(f"-ROUND(({before})*{rate},2)")
        converted = "+".join(parts).replace("+-", "-")
        terms.append(f'SUMPRODUCT({chosen}({rows(schema["currency"].letter)}="{code}")*({converted}))')
    return "=" + "+".join(terms)


def _write_summary(
    wb: Workbook,
    ws: Any,
    schema: PlanSchema,
    region: str,
    allocation: list[Decimal],
    rate_cells: Mapping[str, str],
    n_rows: int,
    closed: list[str] | None,
    figures: PlanFigures,
    values: dict[str, Any],
) -> None:
    """Planned spend by channel x fiscal quarter, computed from the Plan's input cells, against the allocation.

    In a reforecast (`closed` months) it is the latest estimate: the closed months' actual spend, then the plan.
    """
    cfg = schema.config
    cur = cfg.reporting_currency
    last = HEADER_ROW + n_rows
    ws["A1"] = f"{cfg.org_name}: {region} plan summary, {schema.calendar.label}"
    ws["A1"].font = Font(bold=True, size=14)
    ws["A2"] = f"Planned spend by channel and fiscal quarter, in {cur} at plan rates."
    if closed:
        ws["A2"] = (
            f"Latest estimate by channel and fiscal quarter, in {cur} at plan rates: the actual spend of the closed "
            f"months ({', '.join(schema[m].label for m in closed)}), then the plan of the open ones."
        )
    header_row = _SUMMARY_HEADER_ROW
    heads = ["Channel", *QUARTERS, "Total"]
    for i, text in enumerate(heads, start=1):
        c = ws.cell(header_row, i, text)
        c.font, c.fill = _HEADER_FONT, _HEADER_FILL
    row = header_row + 1
    first_channel_row = row
    grid: list[list[int]] = []  # the Summary's cents by row (channels, then no listed channel) and quarter
    for name in cfg.channels:
        ws.cell(row, 1, name)
        for q in range(1, 5):
            ws.cell(row, 1 + q, _planned_formula(schema, rate_cells, last, q, f"$A{row}", closed))
        ws.cell(row, 6, f"=SUM(B{row}:E{row})")
        grid.append(figures.planned(name))
        row += 1
    last_channel_row = row - 1
    ws.cell(row, 1, "No listed channel")
    for q in range(1, 5):
        letter = column_letter(1 + q)
        everything = _planned_formula(schema, rate_cells, last, q, "", closed)
        ws.cell(row, 1 + q, f"{everything}-SUM({letter}{first_channel_row}:{letter}{last_channel_row})")
    ws.cell(row, 6, f"=SUM(B{row}:E{row})")
    grid.append([a - sum(g[q] for g in grid) for q, a in enumerate(figures.planned(None))])
    unassigned_row = row
    for r, cents in enumerate(grid, start=first_channel_row):
        for q in range(4):
            values[f"{column_letter(2 + q)}{r}"] = cents[q] / 100
        values[f"F{r}"] = sum(cents) / 100
    rows = {}
    for label in ("Total planned", "Allocation", "Remaining (allocation - planned)", "Share of allocation planned"):
        row += 1
        rows[label] = row
        ws.cell(row, 1, label).font = Font(bold=True)
    for q in range(0, 5):
        letter = column_letter(2 + q)
        ws[f"{letter}{rows['Total planned']}"] = f"=SUM({letter}{first_channel_row}:{letter}{unassigned_row})"
        if q < 4:
            ws[f"{letter}{rows['Allocation']}"] = float(allocation[q])
        else:
            ws[f"{letter}{rows['Allocation']}"] = f"=SUM(B{rows['Allocation']}:E{rows['Allocation']})"
        ws[f"{letter}{rows['Remaining (allocation - planned)']}"] = (
            f"={letter}{rows['Allocation']}-{letter}{rows['Total planned']}"
        )
        ws[f"{letter}{rows['Share of allocation planned']}"] = (
            f"=IF({letter}{rows['Allocation']}=0,0,{letter}{rows['Total planned']}/{letter}{rows['Allocation']})"
        )
        planned = sum(g[q] for g in grid) if q < 4 else sum(map(sum, grid))
        allocated = to_cents(allocation[q]) if q < 4 else sum(to_cents(a) or 0 for a in allocation)
        values[f"{letter}{rows['Total planned']}"] = planned / 100
        if q == 4:
            values[f"{letter}{rows['Allocation']}"] = allocated / 100
        values[f"{letter}{rows['Remaining (allocation - planned)']}"] = (allocated - planned) / 100
        values[f"{letter}{rows['Share of allocation planned']}"] = planned / allocated if allocated else 0
    for r in range(first_channel_row, rows["Share of allocation planned"]):
        for c in range(2, 7):
            ws.cell(r, c).number_format = MONEY_FORMAT
    for c in range(2, 7):
        ws.cell(rows["Share of allocation planned"], c).number_format = EXCEL_PERCENT
    wb.defined_names[ALLOCATION_NAME] = DefinedName(
        ALLOCATION_NAME, attr_text=f"{SUMMARY_SHEET}!$F${rows['Allocation']}"
    )
    remaining = f"B{rows['Remaining (allocation - planned)']}:F{rows['Remaining (allocation - planned)']}"
    ws.conditional_formatting.add(remaining, CellIsRule(operator="lessThan", formula=["0"], fill=_RED))
    ws.column_dimensions["A"].width = 34
    for letter in "BCDEF":
        ws.column_dimensions[letter].width = 16
    ws.protection.sheet = True


def _write_instructions(
    ws: Any,
    schema: PlanSchema,
    region: str,
    closed: list[str] | None = None,
    cycle: tuple[int, str] | None = None,
    booked: bool = True,
) -> None:
    cal, cfg = schema.calendar, schema.config
    meta = schema.meta_for(region)
    text = [
        (f"{cfg.org_name} marketing plan: {region}, {cal.label}", True),
        (f"The fiscal year runs from {cal.start:%d %B %Y} to {cal.end:%d %B %Y}.", False),
        ("", False),
    ]
    if closed:
        labels = ", ".join(schema[m].label for m in closed)
        text += [
            (f"Reforecast{f': {cycle[1]}' if cycle else ''}", True),
            (
                (
                    f"The closed months ({labels}) show the actual spend booked, in tinted, locked cells: they are"
                    " not read back. Forecast the open months: change their amounts, add lines, or set a line's"
                    " open months to zero. Each line's planned spend total is then its latest estimate."
                )
                if booked
                else (
                    f"The closed months ({labels}) are locked and show the approved plan (the finance export has"
                    " no months to show); they are not read back. Forecast the open months."
                ),
                False,
            ),
            ("", False),
        ]
    text += [
        ("How to fill in this plan", True),
        ("1. Go to the Plan sheet. Each row is one plan line; its Line ID is already filled in - keep it.", False),
        (
            "2. Fill the white cells. Choose region, business unit, channel, currency and status from the dropdowns.",
            False,
        ),
        ("3. Enter planned spend per fiscal month in the line's currency; committed and actual spend to date.", False),
        ("4. Grey columns are calculated for you and locked. Leave unused rows empty.", False),
        (
            "   Need more rows? Insert rows inside the table (select a numbered row below the first, Insert rows"
            " above; in Excel unprotect the sheet first). Lines typed below the table are not counted by the"
            " Summary, and Plansheet refuses them.",
            False,
        ),
        ("5. The Summary sheet shows your plan by channel and quarter against your allocation.", False),
        ("6. Send the file back unchanged in structure: do not rename sheets or headers.", False),
        ("", False),
        ("Sheets are protected without a password to prevent accidents (Review > Unprotect Sheet).", False),
        ("", False),
        ("Columns", True),
    ]
    for col in schema.columns:
        need = "required" if col.required else ("calculated" if not col.is_input else "optional")
        allowed = f" One of: {', '.join(col.choices)}." if col.choices else ""
        text.append((f"{col.letter}  {col.label} ({need}). {col.help}{allowed}".rstrip(), False))
    text += [
        ("", False),
        ("Template", True),
        (
            f"Template {meta.template_id}, version {meta.version}, region {region}, fiscal year {meta.fiscal_year}.",
            False,
        ),
    ]
    for r, (line, bold) in enumerate(text, start=1):
        cell = ws.cell(r, 1, line)
        if bold:
            cell.font = Font(bold=True, size=13 if r == 1 else 11)
    ws.column_dimensions["A"].width = 120
    ws.protection.sheet = True


def _protect(ws: Any) -> None:
    """Lock formulas and headers; allow what a planner needs on the rest (no password)."""
    p = ws.protection
    p.sheet = True
    p.formatColumns = False
    p.formatRows = False
    p.autoFilter = False
    p.sort = False
    # Planners add lines by inserting rows inside the table (LibreOffice allows it on the protected
    # sheet; Excel asks to unprotect first, as it does for any change to a table's size).
    p.insertRows = False


def _excel_value(value: Any) -> Any:
    # A stored plan may hold text from before the control-character rule; the workbook must still be written.
    return float(value) if isinstance(value, Decimal) else printable_value(value)


def _serial(day: dt.date) -> int:
    return excel_serial(day)
