"""A sample workbook that calls every PS_ function, for trying the desktop Excel add-in.

Sheets: *Plan* (sample plan lines as an Excel table), *Functions* (each function in the
registry with its help and a live formula, entered as a dynamic array so results spill),
and *xlwings.conf* (tells the xlwings add-in to load `addin.udfs`).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import xlsxwriter

from addin.sheet_functions import REGISTRY
from sheet_templates.cells import column_letter
from sheet_templates.samples import sample_lines
from sheet_templates.schema import ColumnType, PlanSchema

PLAN_RANGE = "Plan!$A$1:${last}${rows}"


def sheet_formulas(schema: PlanSchema, plan: str) -> dict[str, str]:
    """A working formula for each registry function, against a Plan sheet range `plan`."""
    col = {c.name: c.letter for c in schema.columns}
    rows = plan.rsplit("$", 1)[1]

    def column(name: str) -> str:
        return f"Plan!${col[name]}$2:${col[name]}${rows}"

    total = column("planned_total")
    return {
        "PS_VALIDATE": f"=PS_VALIDATE({plan})",
        "PS_ROLLUP": f'=PS_ROLLUP({plan}, "channel", "quarter")',
        "PS_VARIANCE": f"=PS_VARIANCE({total}, {column('actual')})",
        "PS_VARIANCE_PCT": f"=PS_VARIANCE_PCT({total}, {column('actual')})",
        "PS_FX": f'=PS_FX({column(schema.month_columns[0].name)}, {column("currency")}, "m01")',
        "PS_FORECAST": f'=PS_FORECAST({plan}, "run_rate")',
        "PS_PACING": f"=PS_PACING({column('actual')}, {total})",
        "PS_REMAINING": f"=PS_REMAINING({total}, {column('committed')}, {column('actual')})",
        "PS_KPI": f'=PS_KPI({plan}, "region")',
    }


def build_sample_workbook(schema: PlanSchema, path: Path, region: str | None = None, lines: int = 40) -> Path:
    """Write the sample workbook to `path`."""
    region = region or schema.config.regions[0]
    data = sample_lines(schema, region, lines, seed=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False, "strings_to_urls": False})
    money = wb.add_format({"num_format": "#,##0.00"})
    date = wb.add_format({"num_format": "yyyy-mm-dd"})
    bold = wb.add_format({"bold": True})
    wrap = wb.add_format({"text_wrap": True, "valign": "top"})

    funcs = wb.add_worksheet("Functions")
    plan = wb.add_worksheet("Plan")
    conf = wb.add_worksheet("xlwings.conf")

    n_cols = len(schema.columns)
    for r, line in enumerate(data, start=1):
        for col in schema.columns:
            c = col.index - 1
            if col.formula:
                plan.write_formula(r, c, col.formula.format(row=r + 1), money)
            elif col.type is ColumnType.DATE and line.get(col.name):
                plan.write_datetime(r, c, dt.datetime.combine(line[col.name], dt.time()), date)
            elif isinstance(line.get(col.name), Decimal):
                plan.write_number(r, c, float(line[col.name]), money)
            elif line.get(col.name) is not None:
                plan.write(r, c, line[col.name])
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
        funcs.write_dynamic_array_formula(row, 3, row, 3, formula)
        row += len(data) + 4  # room for the longest spill: one value per plan line
    funcs.set_column(0, 0, 18)
    funcs.set_column(1, 1, 60)
    funcs.set_column(2, 2, 40)
    funcs.set_column(3, 30, 14)
    conf.write_row(0, 0, ["UDF Modules", "addin.udfs"])
    conf.write_row(1, 0, ["Show Console", "False"])
    wb.close()
    return path
