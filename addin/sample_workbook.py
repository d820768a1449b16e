"""A sample workbook that calls every PS_ function, for trying the desktop Excel add-in.

Sheets: *Plan* (sample plan lines as an Excel table), *Functions* (each function in the
registry with its help and a live formula, entered as a dynamic array so results spill),
and *xlwings.conf* (tells the xlwings add-in to load `addin.udfs`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import xlsxwriter

from addin.hostvalues import ExcelError
from addin.sheet_functions import REGISTRY
from sheet_templates.cells import column_letter
from sheet_templates.formatting import excel_money_format
from sheet_templates.plan_figures import PlanFigures
from sheet_templates.samples import sample_lines
from sheet_templates.schema import ColumnType, PlanSchema

PLAN_RANGE = "Plan!$A$1:${last}${rows}"


PLAN = object()  # an argument: the whole Plan range, header included


def _calls(schema: PlanSchema) -> dict[str, list[Any]]:
    """Each registry function's sample call: its arguments as PLAN, a column's name (`("col", name)`) or text."""
    total, actual = ("col", "planned_total"), ("col", "actual")
    return {
        "PS_VALIDATE": [PLAN],
        "PS_ROLLUP": [PLAN, "channel", "quarter"],
        "PS_VARIANCE": [total, actual],
        "PS_VARIANCE_PCT": [total, actual],
        "PS_FX": [("col", schema.month_columns[0].name), ("col", "currency"), "m01"],
        "PS_FORECAST": [PLAN, "run_rate"],
        "PS_PACING": [actual, total],
        "PS_REMAINING": [total, ("col", "committed"), actual],
        "PS_KPI": [PLAN, "region"],
    }


def sheet_formulas(schema: PlanSchema, plan: str) -> dict[str, str]:
    """A working formula for each registry function, against a Plan sheet range `plan`."""
    col = {c.name: c.letter for c in schema.columns}
    rows = plan.rsplit("$", 1)[1]

    def text(arg: Any) -> str:
        if arg is PLAN:
            return plan
        if isinstance(arg, tuple):
            return f"Plan!${col[arg[1]]}$2:${col[arg[1]]}${rows}"
        return f'"{arg}"'

    return {name: f"={name}({', '.join(text(a) for a in args)})" for name, args in _calls(schema).items()}


def sheet_results(schema: PlanSchema, grid: list[list[Any]]) -> dict[str, Any]:
    """What each sample formula returns for the Plan sheet `grid` (rows of cell values as Excel passes them)."""
    index = {c.name: c.index - 1 for c in schema.columns}

    def value(arg: Any) -> Any:
        if arg is PLAN:
            return grid
        if isinstance(arg, tuple):
            return [[row[index[arg[1]]]] for row in grid[1:]]
        return arg

    return {name: REGISTRY[name].call(*(value(a) for a in args)) for name, args in _calls(schema).items()}


def build_sample_workbook(schema: PlanSchema, path: Path, region: str | None = None, lines: int = 40) -> Path:
    """Write the sample workbook to `path`."""
    region = region or schema.config.regions[0]
    data = sample_lines(schema, region, lines, seed=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    money = wb.add_format({"num_format": excel_money_format()})
    date = wb.add_format({"num_format": "yyyy-mm-dd"})
    bold = wb.add_format({"bold": True})
    wrap = wb.add_format({"text_wrap": True, "valign": "top"})
    plain = wb.add_format()  # an empty result cell is written blank (xlsxwriter skips a blank without a format)

    funcs = wb.add_worksheet("Functions")
    plan = wb.add_worksheet("Plan")
    conf = wb.add_worksheet("xlwings.conf")

    n_cols = len(schema.columns)
    figures = PlanFigures(schema, data, [])
    grid: list[list[Any]] = [[c.label for c in schema.columns]]  # the Plan as a host passes it to a function
    for r, line in enumerate(data, start=1):
        cells: list[Any] = []
        for col in schema.columns:
            c = col.index - 1
            if col.formula:
                cells.append(figures.row_value(r - 1, col))
                plan.write_formula(r, c, col.formula.format(row=r + 1), money, cells[-1])
            elif col.type is ColumnType.DATE and line.get(col.name):
                cells.append(dt.datetime.combine(line[col.name], dt.time()))
                plan.write_datetime(r, c, cells[-1], date)
            elif isinstance(line.get(col.name), Decimal):
                cells.append(float(line[col.name]))
                plan.write_number(r, c, cells[-1], money)
            elif line.get(col.name) is not None:
                cells.append(line[col.name])
                plan.write(r, c, line[col.name])
            else:
                cells.append(None)
        grid.append(cells)
    plan.add_table(
        0,
        0,
        len(data),
        n_cols - 1,
        {"name": "PlanLines", "style": "Table Style Light 9", "columns": [{"header": c.label} for c in schema.columns]},
    )
    plan.freeze_panes(1, 1)
    fx_rows = list(schema.config.plan_rates.items())
    plan_rates = wb.add_worksheet("Lists")
    for i, (code, rate) in enumerate(fx_rows, start=1):
        plan_rates.write(i, 0, code)
        plan_rates.write_number(i, 1, float(rate))
    wb.define_name("ps_fx_rates", f"=Lists!$A$2:$B${len(fx_rows) + 1}")

    plan_range = PLAN_RANGE.format(last=column_letter(n_cols), rows=len(data) + 1)
    formulas = sheet_formulas(schema, plan_range)
    results = sheet_results(schema, grid)
    funcs.write(0, 0, "Plansheet functions", wb.add_format({"bold": True, "font_size": 14}))
    funcs.write(
        1,
        0,
        "Each formula below is live once the xlwings add-in has imported the functions of "
        "addin.udfs (xlwings ribbon > Import Functions). Results spill to the right and down.",
    )
    funcs.write_row(3, 0, ["Function", "What it does", "Formula", "Result"], bold)
    row = 4
    for function in REGISTRY:
        formula = formulas[function.name]
        funcs.write(row, 0, function.name, bold)
        funcs.write(row, 1, function.help, wrap)
        funcs.write_string(row, 2, formula)
        spilled = _write_result(funcs, row, 3, formula, results[function.name], plain)
        row += max(len(data), spilled) + 4  # room for the longest spill: one value per plan line
    funcs.set_column(0, 0, 18)
    funcs.set_column(1, 1, 60)
    funcs.set_column(2, 2, 40)
    funcs.set_column(3, 30, 14)
    conf.write_row(0, 0, ["UDF Modules", "addin.udfs"])
    conf.write_row(1, 0, ["Show Console", "False"])
    wb.close()
    return path


def _write_result(sheet: Any, row: int, col: int, formula: str, result: Any, plain: Any) -> int:
    """The formula as a dynamic array with its result cached: the first cell's value, the spill as values beside it."""
    rows = [[str(result)]] if isinstance(result, ExcelError) else [list(r) for r in result] or [[""]]
    cells = [[_host(v) for v in r] for r in rows]
    width = max(len(r) for r in cells)
    sheet.write_dynamic_array_formula(row, col, row + len(cells) - 1, col + width - 1, formula, None, cells[0][0])
    for i, values in enumerate(cells):
        for j, v in enumerate(values):
            if (i or j) and v == "":
                sheet.write_blank(row + i, col + j, None, plain)
            elif i or j:
                sheet.write(row + i, col + j, v)
    return len(cells)


def _host(value: Any) -> Any:
    """A function's result as a cell holds it: numbers as floats, blanks as empty text, dates as dates."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, Decimal):
        return float(value)
    return value
